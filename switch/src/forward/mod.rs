//! The forwarding decision: where a frame goes inside its L2 domain, or why it is dropped.
//!
//! [`decide`] is the whole data-plane policy in one pure function: no I/O, no clock (time is
//! passed in, as smoltcp's `poll(now)` takes it), no allocation. The runtime parses a read
//! into a [`FrameView`], calls `decide` with the domain's [`Bridge`], and carries out the
//! [`Action`]; tests and the simulation do the same with byte fixtures and a hand-driven clock.
//!
//! # Threat model
//!
//! A container controls every byte of every frame it sends, and, through packet sockets, what
//! its kernel puts in the virtio-net header in front of them. Whatever it sends, it must not be
//! able to:
//!
//! | attack | defence | drop reason |
//! |---|---|---|
//! | impersonate another container or the gateway by **source MAC** | an endpoint sends only from its MAC; bound MACs are static table entries that learning never moves | `SpoofedSourceMac`, `MacOwnedElsewhere` |
//! | spoof an **IPv4 source** address | an endpoint sends only from its address; nobody sends from an address bound to another port or the gateway | `SpoofedSourceIp` |
//! | **poison ARP caches** (forged replies, gratuitous ARP for another's address, claiming the gateway) | ARP sender MAC and address are checked like the frame's source | `SpoofedArpMac`, `SpoofedArpIp` |
//! | **flood the MAC table** so that everything is flooded | endpoints learn nothing (their MAC is static); learning ports are capped per port and per domain; the hasher is keyed per process | `PortMacLimit`, `TableFull` |
//! | reach **another network** | one [`Bridge`] per domain; `decide` only names ports of that bridge, and `Flood` means its ports | (by construction; the simulation checks it) |
//! | **hop VLANs** | tagged frames are dropped | `VlanTagged` |
//! | speak a protocol the switch cannot police (IPv6 neighbour discovery, STP, LLC) | endpoints may send IPv4 and ARP only | `DisallowedEtherType` |
//! | crash or confuse the switch, the gateway or a peer with **truncated, oversize or lying** frames | [`FrameView`] checks every length and every offload offset; the MTU is enforced per segment | `Runt`, `Oversize`, `Malformed*`, `BadVnetHeader`, `UnsupportedGso`, `OffloadMismatch`, `ExceedsMtu` |
//! | send from a **group address** or **reflect** a frame to itself | refused | `MulticastSource`, `Hairpin` |
//!
//! Out of scope here: rate limits (a container can still send broadcasts as fast as it can; the
//! runtime's bounded per-port queues are what limit it), policy between containers of one
//! network (Docker allows all of it), and payload contents.
//!
//! The gateway's port is trusted: its frames are the switch's own.

mod bridge;
mod table;

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

pub use bridge::{Bridge, BridgeError, Gateway, PortPolicy};
pub use table::TableConfig;

use crate::counters::DropReason;
use crate::frame::{ArpOp, FrameView, L3, MacAddr};
use bridge::PortKind;

/// Identifies a port on the switch: a TAP device or the gateway.
///
/// A `u32` chosen by the runtime (a slab index, say) and unique across domains, so that a
/// port id seen in one domain's table can never be mistaken for another domain's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u32);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}", self.0)
    }
}

/// A point on the switch's monotonic clock, in milliseconds since an epoch the runtime chooses
/// (its start, say).
///
/// Time is an argument rather than a clock read so that the decision is a pure function that
/// tests and the simulation drive by hand. Milliseconds in a `u64`: 8 bytes per table entry,
/// one-instruction comparisons, and far finer than the 300 s ageing needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch.
    pub const ZERO: Timestamp = Timestamp(0);

    /// `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp(millis)
    }

    /// `elapsed` after the epoch, e.g. `start.elapsed()` of a `std::time::Instant`; saturates
    /// after 584 million years.
    pub fn from_elapsed(elapsed: Duration) -> Timestamp {
        Timestamp(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> u64 {
        self.0
    }
}

/// `duration` later, saturating rather than overflowing: a clock that has run for 584 million
/// years is not worth a panic.
impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(Timestamp::from_elapsed(duration).0))
    }
}

/// What to do with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deliver to this one port of the domain (never the ingress port, never the gateway).
    Unicast(PortId),
    /// Deliver to every port of the domain except the ingress port, the gateway's included
    /// (as the Linux bridge device itself receives broadcasts): broadcast, multicast and
    /// unknown unicast.
    Flood,
    /// Hand to the domain's gateway: frames to its MAC, and ARP requests for its address.
    Gateway,
    /// Drop, and count under this reason (switch-wide and on the ingress port).
    Drop(DropReason),
}

/// Decides where `frame`, read from `ingress`, goes inside `bridge`'s domain at `now`, learning
/// its source if `ingress` is a learning port.
///
/// In order: the ingress must be a port of the domain; the frame must fit the MTU; its source
/// must be a unicast MAC; then the ingress port's policy ([`PortPolicy`]) is applied; then the
/// destination is resolved: the gateway's MAC (or a broadcast ARP request for its address) goes
/// to the gateway, group addresses flood, known unicast goes to its port (its own ingress is a
/// hairpin), unknown unicast floods.
pub fn decide(
    bridge: &mut Bridge,
    frame: &FrameView<'_>,
    ingress: PortId,
    now: Timestamp,
) -> Action {
    match try_decide(bridge, frame, ingress, now) {
        Ok(action) => action,
        Err(reason) => Action::Drop(reason),
    }
}

fn try_decide(
    bridge: &mut Bridge,
    frame: &FrameView<'_>,
    ingress: PortId,
    now: Timestamp,
) -> Result<Action, DropReason> {
    let kind = *bridge.ports.get(&ingress).ok_or(DropReason::UnknownPort)?;
    if frame.largest_ip_packet() > usize::from(bridge.config.mtu) {
        return Err(DropReason::ExceedsMtu);
    }
    let src = frame.src();
    if src.is_multicast() {
        return Err(DropReason::MulticastSource);
    }
    match kind {
        PortKind::Gateway => {}
        PortKind::Endpoint { mac, ipv4 } => check_endpoint(frame, mac, ipv4)?,
        PortKind::Open => {
            check_open(bridge, frame, ingress)?;
            bridge.table.learn(src, ingress, now)?;
        }
    }

    let gateway = bridge.gateway;
    let dst = frame.dst();
    if dst == gateway.mac {
        return if ingress == gateway.port {
            Err(DropReason::Hairpin)
        } else {
            Ok(Action::Gateway)
        };
    }
    if dst.is_multicast() {
        let for_gateway = frame
            .arp()
            .is_some_and(|arp| arp.op == ArpOp::Request && arp.target_ip == bridge.gateway_ip);
        return Ok(if for_gateway && ingress != gateway.port {
            Action::Gateway
        } else {
            Action::Flood
        });
    }
    match bridge.table.lookup(dst, now) {
        Some(port) if port == ingress => Err(DropReason::Hairpin),
        Some(port) => Ok(Action::Unicast(port)),
        None => Ok(Action::Flood),
    }
}

/// The endpoint rules of [`PortPolicy::Endpoint`].
fn check_endpoint(frame: &FrameView<'_>, mac: MacAddr, ipv4: Ipv4Addr) -> Result<(), DropReason> {
    if frame.src() != mac {
        return Err(DropReason::SpoofedSourceMac);
    }
    match frame.l3() {
        L3::Ipv4(ip) if ip.src == ipv4 => Ok(()),
        L3::Ipv4(_) => Err(DropReason::SpoofedSourceIp),
        L3::Arp(arp) if arp.sender_mac != mac => Err(DropReason::SpoofedArpMac),
        L3::Arp(arp) => {
            // RFC 5227 probes ask with sender address 0.0.0.0 so that no one caches them.
            let probe = arp.op == ArpOp::Request && arp.sender_ip.is_unspecified();
            if arp.sender_ip == ipv4 || probe {
                Ok(())
            } else {
                Err(DropReason::SpoofedArpIp)
            }
        }
        L3::Ipv6(_) | L3::Other => Err(DropReason::DisallowedEtherType),
    }
}

/// The learning-port rules of [`PortPolicy::Open`]: anything but what others own.
fn check_open(bridge: &Bridge, frame: &FrameView<'_>, ingress: PortId) -> Result<(), DropReason> {
    let owned_elsewhere = |ip| bridge.ip_owners.get(&ip).is_some_and(|&o| o != ingress);
    match frame.l3() {
        L3::Ipv4(ip) if owned_elsewhere(ip.src) => Err(DropReason::SpoofedSourceIp),
        L3::Arp(arp) => {
            if bridge
                .table
                .static_owner(arp.sender_mac)
                .is_some_and(|o| o != ingress)
            {
                Err(DropReason::SpoofedArpMac)
            } else if owned_elsewhere(arp.sender_ip) {
                Err(DropReason::SpoofedArpIp)
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::bridge as bridge_config;
    use crate::testutil::{arp, mac, tcp4_gso, udp4};
    use rstest::rstest;

    const GW_PORT: PortId = PortId(100);
    const GW_MAC: MacAddr = MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x01]);
    const GW_IP: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
    const A: PortId = PortId(2);
    const B: PortId = PortId(3);
    const OPEN: PortId = PortId(7);
    const STRANGER: MacAddr = MacAddr([0x06, 0, 0, 0, 0xee, 0xee]);
    const ZERO: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

    fn ep_mac(port: PortId) -> MacAddr {
        MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, port.0 as u8])
    }

    fn ep_ip(port: PortId) -> Ipv4Addr {
        Ipv4Addr::new(172, 17, 0, port.0 as u8)
    }

    /// A domain with the gateway, endpoints A and B, and one learning port.
    fn domain() -> Bridge {
        let gateway = Gateway {
            port: GW_PORT,
            mac: GW_MAC,
        };
        let mut b = Bridge::new(&bridge_config(), gateway, TableConfig::default()).unwrap();
        for port in [A, B] {
            let policy = PortPolicy::Endpoint {
                mac: ep_mac(port),
                ipv4: ep_ip(port),
            };
            b.add_port(port, policy).unwrap();
        }
        b.add_port(OPEN, PortPolicy::Open).unwrap();
        b
    }

    fn run(b: &mut Bridge, frame: &[u8], ingress: PortId) -> Action {
        let view = FrameView::parse_ethernet(frame).unwrap();
        decide(b, &view, ingress, Timestamp::ZERO)
    }

    fn ip_from(port: PortId, dst_mac: MacAddr) -> Vec<u8> {
        udp4(ep_mac(port), dst_mac, ep_ip(port), ep_ip(B), 32)
    }

    fn arp_from(port: PortId, dst: MacAddr, op: ArpOp, sender: (MacAddr, Ipv4Addr)) -> Vec<u8> {
        arp(
            ep_mac(port),
            dst,
            op,
            sender,
            (MacAddr::default(), ep_ip(B)),
        )
    }

    #[rstest]
    // Legitimate traffic from endpoint A.
    #[case::unicast_to_b(ip_from(A, ep_mac(B)), A, Action::Unicast(B))]
    #[case::to_gateway_mac(ip_from(A, GW_MAC), A, Action::Gateway)]
    #[case::broadcast(ip_from(A, MacAddr::BROADCAST), A, Action::Flood)]
    #[case::multicast(ip_from(A, MacAddr([0x01, 0, 0x5e, 0, 0, 0xfb])), A, Action::Flood)]
    #[case::unknown_unicast(ip_from(A, STRANGER), A, Action::Flood)]
    #[case::to_itself(ip_from(A, ep_mac(A)), A, Action::Drop(DropReason::Hairpin))]
    #[case::arp_for_b(
        arp_from(A, MacAddr::BROADCAST, ArpOp::Request, (ep_mac(A), ep_ip(A))), A, Action::Flood
    )]
    #[case::arp_for_gateway(
        arp(ep_mac(A), MacAddr::BROADCAST, ArpOp::Request, (ep_mac(A), ep_ip(A)), (MacAddr::default(), GW_IP)),
        A, Action::Gateway
    )]
    #[case::arp_reply_to_b(
        arp_from(A, ep_mac(B), ArpOp::Reply, (ep_mac(A), ep_ip(A))), A, Action::Unicast(B)
    )]
    #[case::arp_probe(
        arp_from(A, MacAddr::BROADCAST, ArpOp::Request, (ep_mac(A), ZERO)), A, Action::Flood
    )]
    // Spoofing and forging from endpoint A.
    #[case::spoofed_mac(
        udp4(ep_mac(B), ep_mac(B), ep_ip(A), ep_ip(B), 8),
        A,
        Action::Drop(DropReason::SpoofedSourceMac)
    )]
    #[case::gateway_mac(
        udp4(GW_MAC, ep_mac(B), ep_ip(A), ep_ip(B), 8),
        A,
        Action::Drop(DropReason::SpoofedSourceMac)
    )]
    #[case::spoofed_ip(
        udp4(ep_mac(A), ep_mac(B), ep_ip(B), ep_ip(B), 8),
        A,
        Action::Drop(DropReason::SpoofedSourceIp)
    )]
    #[case::unspecified_ip(
        udp4(ep_mac(A), MacAddr::BROADCAST, ZERO, Ipv4Addr::BROADCAST, 8),
        A,
        Action::Drop(DropReason::SpoofedSourceIp)
    )]
    #[case::group_source(
        udp4(MacAddr::BROADCAST, ep_mac(B), ep_ip(A), ep_ip(B), 8),
        A,
        Action::Drop(DropReason::MulticastSource)
    )]
    #[case::forged_arp_mac(
        arp_from(A, ep_mac(B), ArpOp::Reply, (ep_mac(B), ep_ip(A))), A, Action::Drop(DropReason::SpoofedArpMac)
    )]
    #[case::gratuitous_arp_for_b(
        arp_from(A, MacAddr::BROADCAST, ArpOp::Request, (ep_mac(A), ep_ip(B))), A,
        Action::Drop(DropReason::SpoofedArpIp)
    )]
    #[case::arp_reply_claiming_gateway(
        arp_from(A, ep_mac(B), ArpOp::Reply, (ep_mac(A), GW_IP)), A, Action::Drop(DropReason::SpoofedArpIp)
    )]
    #[case::arp_reply_from_nobody(
        arp_from(A, ep_mac(B), ArpOp::Reply, (ep_mac(A), ZERO)), A, Action::Drop(DropReason::SpoofedArpIp)
    )]
    #[case::unknown_port(
        ip_from(A, ep_mac(B)),
        PortId(55),
        Action::Drop(DropReason::UnknownPort)
    )]
    #[case::frame_of_a_from_b(ip_from(A, ep_mac(B)), B, Action::Drop(DropReason::SpoofedSourceMac))]
    // The gateway is trusted.
    #[case::gateway_to_a(
        udp4(GW_MAC, ep_mac(A), Ipv4Addr::new(8, 8, 8, 8), ep_ip(A), 8),
        GW_PORT,
        Action::Unicast(A)
    )]
    #[case::gateway_broadcast_arp(
        arp(GW_MAC, MacAddr::BROADCAST, ArpOp::Request, (GW_MAC, GW_IP), (MacAddr::default(), GW_IP)),
        GW_PORT, Action::Flood
    )]
    #[case::gateway_to_itself(
        udp4(GW_MAC, GW_MAC, GW_IP, GW_IP, 8),
        GW_PORT,
        Action::Drop(DropReason::Hairpin)
    )]
    // A learning port may be anyone but someone else.
    #[case::open_any_mac(
        udp4(STRANGER, ep_mac(A), Ipv4Addr::new(172, 17, 9, 9), ep_ip(A), 8),
        OPEN,
        Action::Unicast(A)
    )]
    #[case::open_claims_a_mac(
        udp4(ep_mac(A), ep_mac(B), Ipv4Addr::new(172, 17, 9, 9), ep_ip(B), 8),
        OPEN,
        Action::Drop(DropReason::MacOwnedElsewhere)
    )]
    #[case::open_claims_gateway_mac(
        udp4(GW_MAC, ep_mac(B), Ipv4Addr::new(172, 17, 9, 9), ep_ip(B), 8),
        OPEN,
        Action::Drop(DropReason::MacOwnedElsewhere)
    )]
    #[case::open_claims_a_ip(
        udp4(STRANGER, ep_mac(B), ep_ip(A), ep_ip(B), 8),
        OPEN,
        Action::Drop(DropReason::SpoofedSourceIp)
    )]
    #[case::open_arp_claims_gateway(
        arp(STRANGER, MacAddr::BROADCAST, ArpOp::Reply, (STRANGER, GW_IP), (MacAddr::default(), ep_ip(B))),
        OPEN, Action::Drop(DropReason::SpoofedArpIp)
    )]
    #[case::open_arp_claims_a_mac(
        arp(STRANGER, MacAddr::BROADCAST, ArpOp::Reply, (ep_mac(A), Ipv4Addr::new(172, 17, 9, 9)), (MacAddr::default(), ep_ip(B))),
        OPEN, Action::Drop(DropReason::SpoofedArpMac)
    )]
    #[case::open_ipv6(ipv6(STRANGER), OPEN, Action::Flood)]
    #[case::endpoint_ipv6(ipv6(ep_mac(A)), A, Action::Drop(DropReason::DisallowedEtherType))]
    #[case::endpoint_lldp(lldp(ep_mac(A)), A, Action::Drop(DropReason::DisallowedEtherType))]
    fn decides(#[case] frame: Vec<u8>, #[case] ingress: PortId, #[case] expected: Action) {
        assert_eq!(run(&mut domain(), &frame, ingress), expected);
    }

    fn ipv6(src: MacAddr) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(src.0, [0x33, 0x33, 0, 0, 0, 1])
            .ipv6(
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                255,
            )
            .udp(5353, 5353)
            .write(&mut out, &[0; 8])
            .unwrap();
        out
    }

    fn lldp(src: MacAddr) -> Vec<u8> {
        let mut frame = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
        frame.extend_from_slice(&src.0);
        frame.extend_from_slice(&[0x88, 0xcc, 0, 0, 0, 0]);
        frame
    }

    #[test]
    fn learning_ports_are_learned_and_age_out() {
        let mut b = domain();
        let from_stranger = udp4(
            STRANGER,
            ep_mac(A),
            Ipv4Addr::new(172, 17, 9, 9),
            ep_ip(A),
            8,
        );
        let to_stranger = ip_from(A, STRANGER);
        let view = FrameView::parse_ethernet(&to_stranger).unwrap();
        assert_eq!(decide(&mut b, &view, A, Timestamp::ZERO), Action::Flood);
        let t1 = Timestamp::from_millis(1000);
        let v = FrameView::parse_ethernet(&from_stranger).unwrap();
        assert_eq!(decide(&mut b, &v, OPEN, t1), Action::Unicast(A));
        assert_eq!(b.learned_on(OPEN), 1);
        assert_eq!(decide(&mut b, &view, A, t1), Action::Unicast(OPEN));
        let later = t1 + Duration::from_secs(299);
        assert_eq!(decide(&mut b, &view, A, later), Action::Unicast(OPEN));
        let aged = t1 + Duration::from_secs(300);
        assert_eq!(decide(&mut b, &view, A, aged), Action::Flood);
        assert_eq!(b.expire(aged), 1);
        assert_eq!(b.learned_len(), 0);
    }

    /// A frame from a learning port to its own source MAC is a hairpin, also when that MAC was
    /// last seen elsewhere or has aged out, and learning still moves it.
    #[test]
    fn a_learning_port_sending_to_its_own_mac_is_a_hairpin() {
        let mut b = domain();
        let other = PortId(8);
        b.add_port(other, PortPolicy::Open).unwrap();
        let to_itself = udp4(
            STRANGER,
            STRANGER,
            Ipv4Addr::new(172, 17, 9, 9),
            Ipv4Addr::new(172, 17, 9, 9),
            8,
        );
        let v = FrameView::parse_ethernet(&to_itself).unwrap();
        let t = Timestamp::from_millis(1000);
        // Unknown before: learned now, so a hairpin.
        assert_eq!(
            decide(&mut b, &v, OPEN, t),
            Action::Drop(DropReason::Hairpin)
        );
        assert_eq!(b.lookup(STRANGER, t), Some(OPEN));
        // Known on OPEN, sent from `other`: the MAC moves, still a hairpin.
        assert_eq!(
            decide(&mut b, &v, other, t),
            Action::Drop(DropReason::Hairpin)
        );
        assert_eq!(b.lookup(STRANGER, t), Some(other));
        // Aged out on `other`, sent from OPEN: learned again, a hairpin.
        let aged = t + Duration::from_secs(300);
        assert_eq!(
            decide(&mut b, &v, OPEN, aged),
            Action::Drop(DropReason::Hairpin)
        );
        assert_eq!(b.lookup(STRANGER, aged), Some(OPEN));
    }

    #[test]
    fn a_learning_port_is_capped() {
        let gateway = Gateway {
            port: GW_PORT,
            mac: GW_MAC,
        };
        let config = TableConfig {
            max_learned_per_port: 3,
            ..TableConfig::default()
        };
        let mut b = Bridge::new(&bridge_config(), gateway, config).unwrap();
        b.add_port(OPEN, PortPolicy::Open).unwrap();
        let actions: Vec<Action> = (0..5)
            .map(|n| {
                let frame = udp4(mac(n), GW_MAC, ep_ip(OPEN), GW_IP, 8);
                run(&mut b, &frame, OPEN)
            })
            .collect();
        assert_eq!(
            actions,
            [
                Action::Gateway,
                Action::Gateway,
                Action::Gateway,
                Action::Drop(DropReason::PortMacLimit),
                Action::Drop(DropReason::PortMacLimit),
            ]
        );
    }

    #[test]
    fn the_mtu_holds_for_frames_and_for_segments() {
        let mut b = domain();
        let fits = udp4(ep_mac(A), ep_mac(B), ep_ip(A), ep_ip(B), 1500 - 28);
        assert_eq!(run(&mut b, &fits, A), Action::Unicast(B));
        let jumbo = udp4(ep_mac(A), ep_mac(B), ep_ip(A), ep_ip(B), 1500 - 27);
        assert_eq!(run(&mut b, &jumbo, A), Action::Drop(DropReason::ExceedsMtu));

        // The test super-frames come from A (172.17.0.2) to B: their segments must fit.
        let decide_gso = |b: &mut Bridge, mss| {
            let buf = tcp4_gso(20_000, mss, &[]);
            let view = FrameView::parse_vnet(&buf).unwrap();
            decide(b, &view, A, Timestamp::ZERO)
        };
        assert_eq!(decide_gso(&mut b, 1460), Action::Unicast(B));
        assert_eq!(
            decide_gso(&mut b, 1461),
            Action::Drop(DropReason::ExceedsMtu)
        );
    }
}
