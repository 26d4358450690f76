//! The gateway's own answers on each L2 domain: ARP replies for the gateway address and ICMP
//! echo replies from it. Pure: a frame in, a reply frame written into a caller's buffer.
//!
//! NAT and published ports (the gateway issue) will terminate traffic here on smoltcp; until
//! then anything else addressed to the gateway is dropped and counted
//! ([`DropReason::GatewayUnhandled`]).

use std::net::Ipv4Addr;

use etherparse::{
    ArpEthIpv4Packet, ArpOperation, Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket,
    TransportSlice,
};

use crate::counters::DropReason;
use crate::frame::{ArpOp, FrameView, L3, MacAddr};

/// TTL of the gateway's own packets (Linux's default).
const TTL: u8 = 64;

/// The gateway's identity on one domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayAddr {
    /// Its MAC address.
    pub mac: MacAddr,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
}

impl GatewayAddr {
    /// The gateway's MAC, derived from its address like a container's (`02:42` + IPv4), so it is
    /// the same after every restart and containers' ARP caches stay right.
    pub fn derived(ip: Ipv4Addr) -> GatewayAddr {
        let [a, b, c, d] = ip.octets();
        GatewayAddr {
            mac: MacAddr([0x02, 0x42, a, b, c, d]),
            ip,
        }
    }
}

/// Appends the gateway's reply to `frame` to `out` (after whatever the caller put there, such
/// as a virtio-net header): `Ok(true)` when there is
/// a reply to send back to the sender, `Ok(false)` when the frame needs no answer (an ARP
/// request for another address, an ARP reply), or the reason to count when the gateway cannot
/// handle it.
pub(crate) fn respond(
    gw: GatewayAddr,
    frame: &FrameView<'_>,
    out: &mut Vec<u8>,
) -> Result<bool, DropReason> {
    match frame.l3() {
        L3::Arp(arp) => {
            if arp.op != ArpOp::Request || arp.target_ip != gw.ip {
                return Ok(false);
            }
            // RFC 826: answer with our hardware address, to the asker's.
            let reply = ArpEthIpv4Packet {
                operation: ArpOperation::REPLY,
                sender_mac: gw.mac.0,
                sender_ipv4: gw.ip.octets(),
                target_mac: arp.sender_mac.0,
                target_ipv4: arp.sender_ip.octets(),
            };
            PacketBuilder::ethernet2(gw.mac.0, arp.sender_mac.0)
                .arp(reply.into())
                .write(out)
                .map_err(|_| DropReason::GatewayUnhandled)?;
            Ok(true)
        }
        L3::Ipv4(ip) if ip.dst == gw.ip && ip.protocol == 1 && !ip.fragment => {
            echo_reply(gw, frame, out)
        }
        _ => Err(DropReason::GatewayUnhandled),
    }
}

/// RFC 792: an echo reply carries the request's identifier, sequence number and data.
fn echo_reply(
    gw: GatewayAddr,
    frame: &FrameView<'_>,
    out: &mut Vec<u8>,
) -> Result<bool, DropReason> {
    let sliced =
        SlicedPacket::from_ethernet(frame.ethernet()).map_err(|_| DropReason::MalformedIpv4)?;
    let Some(NetSlice::Ipv4(ipv4)) = &sliced.net else {
        return Err(DropReason::MalformedIpv4);
    };
    let Some(TransportSlice::Icmpv4(icmp)) = &sliced.transport else {
        return Err(DropReason::GatewayUnhandled);
    };
    let Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
        return Err(DropReason::GatewayUnhandled);
    };
    let src = ipv4.header().source();
    PacketBuilder::ethernet2(gw.mac.0, frame.src().0)
        .ipv4(gw.ip.octets(), src, TTL)
        .icmpv4_echo_reply(echo.id, echo.seq)
        .write(out, icmp.payload())
        .map_err(|_| DropReason::GatewayUnhandled)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameView;

    const GW: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 1);
    const C: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
    const C_MAC: [u8; 6] = [0x02, 0x42, 172, 18, 0, 2];

    fn arp_request(target: Ipv4Addr) -> Vec<u8> {
        let req = ArpEthIpv4Packet {
            operation: ArpOperation::REQUEST,
            sender_mac: C_MAC,
            sender_ipv4: C.octets(),
            target_mac: [0; 6],
            target_ipv4: target.octets(),
        };
        let mut v = Vec::new();
        PacketBuilder::ethernet2(C_MAC, [0xff; 6])
            .arp(req.into())
            .write(&mut v)
            .unwrap();
        v
    }

    #[test]
    fn answers_arp_for_its_address_only() {
        let gw = GatewayAddr::derived(GW);
        let mut out = Vec::new();
        let req = arp_request(GW);
        let view = FrameView::parse_ethernet(&req).unwrap();
        assert_eq!(respond(gw, &view, &mut out), Ok(true));
        let reply = FrameView::parse_ethernet(&out).unwrap();
        let arp = reply.arp().unwrap();
        assert_eq!(arp.op, ArpOp::Reply);
        assert_eq!((arp.sender_mac, arp.sender_ip), (gw.mac, GW));
        assert_eq!((arp.target_mac, arp.target_ip), (MacAddr(C_MAC), C));
        assert_eq!(reply.dst(), MacAddr(C_MAC));

        let other = arp_request(Ipv4Addr::new(172, 18, 0, 3));
        let view = FrameView::parse_ethernet(&other).unwrap();
        assert_eq!(respond(gw, &view, &mut out), Ok(false));
    }

    #[test]
    fn echoes_pings() {
        let gw = GatewayAddr::derived(GW);
        let mut req = Vec::new();
        PacketBuilder::ethernet2(C_MAC, gw.mac.0)
            .ipv4(C.octets(), GW.octets(), 64)
            .icmpv4_echo_request(7, 9)
            .write(&mut req, b"hello gateway")
            .unwrap();
        let view = FrameView::parse_ethernet(&req).unwrap();
        let mut out = Vec::new();
        assert_eq!(respond(gw, &view, &mut out), Ok(true));
        let sliced = SlicedPacket::from_ethernet(&out).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
            panic!("not IPv4")
        };
        assert_eq!(ip.header().source(), GW.octets());
        assert_eq!(ip.header().destination(), C.octets());
        let Some(TransportSlice::Icmpv4(icmp)) = &sliced.transport else {
            panic!("not ICMP")
        };
        assert!(matches!(icmp.icmp_type(), Icmpv4Type::EchoReply(e) if e.id == 7 && e.seq == 9));
        assert_eq!(icmp.payload(), b"hello gateway");
        // The checksum verifies.
        let header = icmp.header();
        assert_eq!(
            header.checksum,
            header.icmp_type.calc_checksum(icmp.payload())
        );
    }

    #[test]
    fn other_traffic_to_the_gateway_is_counted() {
        let gw = GatewayAddr::derived(GW);
        let mut req = Vec::new();
        PacketBuilder::ethernet2(C_MAC, gw.mac.0)
            .ipv4(C.octets(), GW.octets(), 64)
            .udp(5000, 53)
            .write(&mut req, b"q")
            .unwrap();
        let view = FrameView::parse_ethernet(&req).unwrap();
        assert_eq!(
            respond(gw, &view, &mut Vec::new()),
            Err(DropReason::GatewayUnhandled)
        );
    }
}
