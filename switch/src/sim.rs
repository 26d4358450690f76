//! A deterministic simulation of the switch, in the manner of smoltcp's `tests/netsim.rs`.
//!
//! Three domains, each with a gateway, container endpoints, a learning port with a few stations
//! behind it (one of them has the same MAC in every domain) and a learning port that floods
//! random source MACs. A seeded RNG picks, step after step, a sender, a kind of traffic
//! (ordinary, cross-domain, spoofed, forged, malformed, GSO) and how much time passes; the
//! simulation plays the runtime (parse, decide, deliver, count) and checks every decision
//! against what it expects, with a reference model of the learned stations. At the end it
//! checks that:
//!
//! - no frame was ever delivered outside its ingress domain;
//! - every spoofed or forged frame was dropped, each counted under its reason, switch-wide and
//!   on its port;
//! - learned entries aged out (lookups of quiet stations flooded) and were expired;
//! - the flooding port never held more than its cap.
//!
//! A failure prints the seed and step; `SIM_SEED=<n> cargo test -p netloom-switch sim` replays
//! another seed.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::counters::{Counters, DropReason, PortCounters};
use crate::domain::DomainConfig;
use crate::forward::{Action, Bridge, Gateway, PortId, PortPolicy, TableConfig, Timestamp, decide};
use crate::frame::{ArpOp, FrameView, MacAddr, Offload};
use crate::gso::Segmenter;
use crate::testutil::{arp, tcp4_gso_between, udp4, vnet};

const DEFAULT_SEED: u64 = 0x6e65_746c_6f6f_6d21;
const STEPS: usize = 30_000;
const DOMAINS: u8 = 3;
const ENDPOINTS: u8 = 6;
const STATIONS: u8 = 4;
const PORT_CAP: usize = 16;
const AGEING: Duration = Duration::from_secs(300);
/// Sweep the tables every this many steps, as the runtime would every few seconds.
const EXPIRE_EVERY: usize = 25;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Gateway,
    Endpoint,
    /// A station behind a learning port (its `port` is that port).
    Station,
    /// A learning port sending from a fresh random MAC every time.
    Flooder,
}

#[derive(Clone, Copy, Debug)]
struct Host {
    domain: usize,
    port: PortId,
    mac: MacAddr,
    ip: Ipv4Addr,
    role: Role,
}

/// What the simulation expects of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Action(Action),
    /// Refused by the parser with this reason.
    Malformed(DropReason),
    /// Random bytes: anything, as long as the invariants hold.
    Anything,
}

struct Net {
    bridge: Bridge,
    hosts: Vec<Host>,
    gateway: Host,
}

struct Sim {
    seed: u64,
    step: usize,
    rng: Xoshiro256PlusPlus,
    nets: Vec<Net>,
    now: Timestamp,
    counters: Counters,
    ports: HashMap<PortId, PortCounters>,
    /// The reference model: when each station was last learned, per domain.
    learned: Vec<HashMap<MacAddr, (PortId, Timestamp)>>,
    /// Hostile frames sent, per the reason they must be dropped with.
    hostile: HashMap<DropReason, u64>,
    /// Hostile frames sent, per ingress port.
    hostile_per_port: HashMap<PortId, u64>,
    segmenter: Segmenter,
    fresh_mac: u32,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Stats {
    unicast: u64,
    flood: u64,
    gateway: u64,
    dropped: u64,
    deliveries: u64,
    aged_lookups: u64,
    expired: u64,
    offloaded: u64,
    segments: u64,
    cross_domain_attempts: u64,
}

fn domain_config(d: usize) -> DomainConfig {
    DomainConfig {
        subnet: Ipv4Addr::new(172, 18 + d as u8, 0, 0),
        prefix: 16,
        gateway: Ipv4Addr::new(172, 18 + d as u8, 0, 1),
        mtu: 1500,
        internal: false,
        host_loopback: false,
        dns: None,
    }
}

/// Whether an entry last refreshed at `seen` is still fresh at `now`: ageing counts whole
/// seconds.
fn fresh(now: Timestamp, seen: Timestamp) -> bool {
    now.millis() / 1000 - seen.millis() / 1000 < AGEING.as_secs()
}

/// Docker's MAC for an address: 02:42 and the four address bytes.
fn docker_mac(ip: Ipv4Addr) -> MacAddr {
    let [a, b, c, d] = ip.octets();
    MacAddr([0x02, 0x42, a, b, c, d])
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut nets = Vec::new();
        let mut ports = HashMap::new();
        for d in 0..usize::from(DOMAINS) {
            let config = domain_config(d);
            let base = 100 * (d as u32 + 1);
            let gateway = Host {
                domain: d,
                port: PortId(base),
                mac: docker_mac(config.gateway),
                ip: config.gateway,
                role: Role::Gateway,
            };
            let table = TableConfig {
                ageing_time: AGEING,
                max_learned_per_port: PORT_CAP,
                max_learned: 4 * PORT_CAP,
            };
            let gw = Gateway {
                port: gateway.port,
                mac: gateway.mac,
            };
            let mut bridge = Bridge::new(&config, gw, table).unwrap();
            let mut hosts = vec![gateway];
            for i in 0..ENDPOINTS {
                let ip = Ipv4Addr::new(172, 18 + d as u8, 0, 10 + i);
                let host = Host {
                    domain: d,
                    port: PortId(base + 1 + u32::from(i)),
                    mac: docker_mac(ip),
                    ip,
                    role: Role::Endpoint,
                };
                let policy = PortPolicy::Endpoint {
                    mac: host.mac,
                    ipv4: ip,
                };
                bridge.add_port(host.port, policy).unwrap();
                hosts.push(host);
            }
            let open = PortId(base + 50);
            bridge.add_port(open, PortPolicy::Open).unwrap();
            for i in 0..STATIONS {
                // Station 0 has the same MAC in every domain: the domains must not share what
                // they learn about it.
                let mac = if i == 0 {
                    MacAddr([0x06, 0, 0, 0xff, 1, 0])
                } else {
                    MacAddr([0x06, 0, 0, d as u8, 1, i])
                };
                hosts.push(Host {
                    domain: d,
                    port: open,
                    mac,
                    ip: Ipv4Addr::new(172, 18 + d as u8, 1, 1 + i),
                    role: Role::Station,
                });
            }
            let flooder = PortId(base + 60);
            bridge.add_port(flooder, PortPolicy::Open).unwrap();
            hosts.push(Host {
                domain: d,
                port: flooder,
                mac: MacAddr([0x0a, 0, 0, 0, 0, 0]),
                ip: Ipv4Addr::new(172, 18 + d as u8, 2, 1),
                role: Role::Flooder,
            });
            for port in bridge.ports() {
                ports.insert(port, PortCounters::default());
            }
            nets.push(Net {
                bridge,
                hosts,
                gateway,
            });
        }
        Sim {
            seed,
            step: 0,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            learned: vec![HashMap::new(); nets.len()],
            nets,
            now: Timestamp::ZERO,
            counters: Counters::default(),
            ports,
            hostile: HashMap::new(),
            hostile_per_port: HashMap::new(),
            segmenter: Segmenter::new(),
            fresh_mac: 0,
            stats: Stats::default(),
        }
    }

    fn domain_of(&self, port: PortId) -> Option<usize> {
        self.nets.iter().position(|n| n.bridge.has_port(port))
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    /// A host of domain `d` other than `not`, with one of `roles`.
    fn other(&mut self, d: usize, not: &Host, roles: &[Role]) -> Host {
        let candidates: Vec<Host> = self.nets[d]
            .hosts
            .iter()
            .filter(|h| roles.contains(&h.role) && h.mac != not.mac)
            .copied()
            .collect();
        self.pick(&candidates)
    }

    /// Any host of any domain other than `not` (for impersonation).
    fn anyone_but(&mut self, not: &Host) -> Host {
        let candidates: Vec<Host> = self
            .nets
            .iter()
            .flat_map(|n| n.hosts.iter())
            .filter(|h| h.mac != not.mac && h.ip != not.ip && h.role != Role::Flooder)
            .copied()
            .collect();
        self.pick(&candidates)
    }

    fn fresh_flooder_mac(&mut self) -> MacAddr {
        self.fresh_mac += 1;
        let [a, b, c, d] = self.fresh_mac.to_be_bytes();
        MacAddr([0x0a, 0, a, b, c, d])
    }

    /// The reference model's view of where `dst` goes from `ingress` in domain `d`.
    fn expect_dst(
        &self,
        d: usize,
        ingress: PortId,
        dst: MacAddr,
        arp_for: Option<Ipv4Addr>,
    ) -> Action {
        let net = &self.nets[d];
        let hairpin_or = |port: PortId| {
            if port == ingress {
                Action::Drop(DropReason::Hairpin)
            } else {
                Action::Unicast(port)
            }
        };
        if dst == net.gateway.mac {
            return if ingress == net.gateway.port {
                Action::Drop(DropReason::Hairpin)
            } else {
                Action::Gateway
            };
        }
        if dst.is_multicast() {
            return if arp_for == Some(net.gateway.ip) && ingress != net.gateway.port {
                Action::Gateway
            } else {
                Action::Flood
            };
        }
        if let Some(h) = net
            .hosts
            .iter()
            .find(|h| h.mac == dst && h.role == Role::Endpoint)
        {
            return hairpin_or(h.port);
        }
        match self.learned[d].get(&dst) {
            Some(&(port, seen)) if fresh(self.now, seen) => hairpin_or(port),
            _ => Action::Flood,
        }
    }

    /// Records that a station's frame passed its port's checks (so the switch learned it).
    fn learn(&mut self, host: &Host) {
        if host.role == Role::Station {
            self.learned[host.domain].insert(host.mac, (host.port, self.now));
        }
    }

    fn hostile(&mut self, host: &Host, reason: DropReason) -> Expect {
        *self.hostile.entry(reason).or_default() += 1;
        *self.hostile_per_port.entry(host.port).or_default() += 1;
        Expect::Action(Action::Drop(reason))
    }

    /// One frame from `host`: its bytes (a TAP read) and what must become of it.
    fn traffic(&mut self, host: Host) -> (Vec<u8>, Expect) {
        let d = host.domain;
        let plain = |frame: Vec<u8>| vnet(Offload::NONE, &frame);
        match host.role {
            Role::Gateway => {
                let to = self.other(d, &host, &[Role::Endpoint, Role::Station]);
                if self.rng.random_bool(0.3) {
                    let frame = arp(
                        host.mac,
                        MacAddr::BROADCAST,
                        ArpOp::Request,
                        (host.mac, host.ip),
                        (MacAddr::default(), to.ip),
                    );
                    return (plain(frame), Expect::Action(Action::Flood));
                }
                let frame = udp4(host.mac, to.mac, Ipv4Addr::new(8, 8, 8, 8), to.ip, 64);
                (
                    plain(frame),
                    Expect::Action(self.expect_dst(d, host.port, to.mac, None)),
                )
            }
            Role::Flooder => {
                let mac = self.fresh_flooder_mac();
                let to = self.other(d, &host, &[Role::Endpoint]);
                let frame = udp4(mac, to.mac, host.ip, to.ip, 16);
                let expect = if self.nets[d].bridge.learned_on(host.port) < PORT_CAP {
                    Action::Unicast(to.port)
                } else {
                    Action::Drop(DropReason::PortMacLimit)
                };
                (plain(frame), Expect::Action(expect))
            }
            Role::Station => match self.rng.random_range(0..10) {
                0 => {
                    // Claims a container's MAC.
                    let victim = self.other(d, &host, &[Role::Endpoint, Role::Gateway]);
                    let to = self.other(d, &host, &[Role::Endpoint]);
                    let frame = udp4(victim.mac, to.mac, host.ip, to.ip, 16);
                    (
                        plain(frame),
                        self.hostile(&host, DropReason::MacOwnedElsewhere),
                    )
                }
                1 => {
                    // Claims a container's (or the gateway's) address.
                    let victim = self.other(d, &host, &[Role::Endpoint, Role::Gateway]);
                    let to = self.other(d, &host, &[Role::Endpoint]);
                    let frame = udp4(host.mac, to.mac, victim.ip, to.ip, 16);
                    (
                        plain(frame),
                        self.hostile(&host, DropReason::SpoofedSourceIp),
                    )
                }
                _ => {
                    let to = self.other(d, &host, &[Role::Endpoint, Role::Station, Role::Gateway]);
                    let frame = udp4(host.mac, to.mac, host.ip, to.ip, 100);
                    self.learn(&host);
                    (
                        plain(frame),
                        Expect::Action(self.expect_dst(d, host.port, to.mac, None)),
                    )
                }
            },
            Role::Endpoint => self.endpoint_traffic(host),
        }
    }

    fn endpoint_traffic(&mut self, host: Host) -> (Vec<u8>, Expect) {
        let d = host.domain;
        let plain = |frame: Vec<u8>| vnet(Offload::NONE, &frame);
        let expect_to = |sim: &Sim, dst: MacAddr, arp_for| {
            Expect::Action(sim.expect_dst(d, host.port, dst, arp_for))
        };
        match self.rng.random_range(0..100) {
            0..30 => {
                let to = self.other(d, &host, &[Role::Endpoint, Role::Station, Role::Gateway]);
                let frame = udp4(
                    host.mac,
                    to.mac,
                    host.ip,
                    to.ip,
                    self.rng.random_range(0..1400),
                );
                (plain(frame), expect_to(self, to.mac, None))
            }
            30..40 => {
                // Who has some address of the domain (the gateway's too)?
                let to = self.other(d, &host, &[Role::Endpoint, Role::Station, Role::Gateway]);
                let frame = arp(
                    host.mac,
                    MacAddr::BROADCAST,
                    ArpOp::Request,
                    (host.mac, host.ip),
                    (MacAddr::default(), to.ip),
                );
                (
                    plain(frame),
                    expect_to(self, MacAddr::BROADCAST, Some(to.ip)),
                )
            }
            40..45 => {
                let to = self.other(d, &host, &[Role::Endpoint]);
                let frame = arp(
                    host.mac,
                    to.mac,
                    ArpOp::Reply,
                    (host.mac, host.ip),
                    (to.mac, to.ip),
                );
                (plain(frame), expect_to(self, to.mac, None))
            }
            45..55 => {
                // To a container of another domain, by its MAC: unknown here, so flooded, but
                // only inside this domain.
                let e = (d + self.rng.random_range(1..self.nets.len())) % self.nets.len();
                let to = self.other(e, &host, &[Role::Endpoint, Role::Gateway]);
                self.stats.cross_domain_attempts += 1;
                let frame = udp4(host.mac, to.mac, host.ip, to.ip, 64);
                (plain(frame), expect_to(self, to.mac, None))
            }
            55..62 => {
                let victim = self.anyone_but(&host);
                let to = self.other(d, &host, &[Role::Endpoint]);
                let frame = udp4(victim.mac, to.mac, host.ip, to.ip, 64);
                (
                    plain(frame),
                    self.hostile(&host, DropReason::SpoofedSourceMac),
                )
            }
            62..69 => {
                let victim = self.anyone_but(&host);
                let src = if self.rng.random_bool(0.2) {
                    Ipv4Addr::UNSPECIFIED
                } else {
                    victim.ip
                };
                let to = self.other(d, &host, &[Role::Endpoint, Role::Gateway]);
                let frame = udp4(host.mac, to.mac, src, to.ip, 64);
                (
                    plain(frame),
                    self.hostile(&host, DropReason::SpoofedSourceIp),
                )
            }
            69..73 => {
                // A forged ARP reply that would send a neighbour's traffic for the victim's
                // address (the gateway's, often) to us.
                let victim = self.anyone_but(&host);
                let to = self.other(d, &host, &[Role::Endpoint]);
                let frame = arp(
                    host.mac,
                    to.mac,
                    ArpOp::Reply,
                    (host.mac, victim.ip),
                    (to.mac, to.ip),
                );
                (plain(frame), self.hostile(&host, DropReason::SpoofedArpIp))
            }
            73..76 => {
                // Gratuitous ARP announcing the victim's address.
                let victim = self.anyone_but(&host);
                let frame = arp(
                    host.mac,
                    MacAddr::BROADCAST,
                    ArpOp::Request,
                    (host.mac, victim.ip),
                    (MacAddr::default(), victim.ip),
                );
                (plain(frame), self.hostile(&host, DropReason::SpoofedArpIp))
            }
            76..79 => {
                // An ARP reply naming another station's MAC as the sender's.
                let victim = self.anyone_but(&host);
                let to = self.other(d, &host, &[Role::Endpoint]);
                let frame = arp(
                    host.mac,
                    to.mac,
                    ArpOp::Reply,
                    (victim.mac, host.ip),
                    (to.mac, to.ip),
                );
                (plain(frame), self.hostile(&host, DropReason::SpoofedArpMac))
            }
            79..82 => {
                let to = self.other(d, &host, &[Role::Endpoint]);
                let frame = udp4(host.mac, to.mac, host.ip, to.ip, 1473);
                (plain(frame), self.hostile(&host, DropReason::ExceedsMtu))
            }
            82..85 => {
                let to = self.other(d, &host, &[Role::Endpoint]);
                let mut frame = udp4(host.mac, to.mac, host.ip, to.ip, 64);
                // An 802.1Q tag where the EtherType goes.
                frame.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
                (plain(frame), Expect::Malformed(DropReason::VlanTagged))
            }
            85..90 => {
                let len = self.rng.random_range(0..80);
                let bytes: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
                (bytes, Expect::Anything)
            }
            _ => {
                // A TCP super-frame to the gateway (or a neighbour): the segmenter runs on
                // what goes to the gateway.
                let to = self.other(d, &host, &[Role::Endpoint, Role::Gateway]);
                let len = self.rng.random_range(0..30_000);
                let mss = self.rng.random_range(500..=1460);
                let buf = tcp4_gso_between((host.mac, host.ip), (to.mac, to.ip), len, mss, &[]);
                (buf, expect_to(self, to.mac, None))
            }
        }
    }

    fn count_drop(&self, port: PortId, reason: DropReason) {
        self.counters.count_drop(reason);
        self.ports[&port].count_drop(reason);
    }

    /// Plays the runtime for one frame and checks the outcome.
    fn run(&mut self, host: Host, buf: Vec<u8>, expect: Expect) {
        let d = host.domain;
        let ctx = format!("seed {:#x} step {}: {host:?}", self.seed, self.step);
        self.ports[&host.port].count_rx(buf.len().saturating_sub(12));
        let view = match FrameView::parse_vnet(&buf) {
            Ok(view) => view,
            Err(e) => {
                match expect {
                    Expect::Malformed(reason) => assert_eq!(e.reason(), reason, "{ctx}"),
                    Expect::Anything => {}
                    Expect::Action(a) => panic!("{ctx}: expected {a:?}, parse failed: {e}"),
                }
                self.stats.dropped += 1;
                self.count_drop(host.port, e.reason());
                return;
            }
        };
        let action = decide(&mut self.nets[d].bridge, &view, host.port, self.now);
        match expect {
            Expect::Action(expected) => assert_eq!(action, expected, "{ctx}"),
            Expect::Malformed(reason) => panic!("{ctx}: expected {reason}, parsed"),
            Expect::Anything => {}
        }
        let targets: Vec<PortId> = match action {
            Action::Drop(reason) => {
                self.stats.dropped += 1;
                self.count_drop(host.port, reason);
                return;
            }
            Action::Unicast(port) => {
                self.stats.unicast += 1;
                vec![port]
            }
            Action::Flood => {
                self.stats.flood += 1;
                self.nets[d]
                    .bridge
                    .ports()
                    .filter(|&p| p != host.port)
                    .collect()
            }
            Action::Gateway => {
                self.stats.gateway += 1;
                vec![self.nets[d].gateway.port]
            }
        };
        for port in targets {
            assert_eq!(
                self.domain_of(port),
                Some(d),
                "{ctx}: {action:?} left the domain"
            );
            assert_ne!(port, host.port, "{ctx}: {action:?} back to the sender");
            self.stats.deliveries += 1;
            if port == self.nets[d].gateway.port && view.needs_software_offload() {
                // The gateway takes only ordinary frames.
                self.stats.offloaded += 1;
                let mut segments = self.segmenter.segments(&view).expect("validated frame");
                while let Some(segment) = segments.next_segment() {
                    let frame =
                        FrameView::parse_ethernet(segment.ethernet()).expect("segment parses");
                    assert!(frame.largest_ip_packet() <= 1500, "{ctx}");
                    assert_eq!(frame.src(), view.src());
                    self.ports[&port].count_tx(frame.frame_len());
                    self.stats.segments += 1;
                }
            } else {
                self.ports[&port].count_tx(view.frame_len());
            }
        }
    }

    /// The switch's table agrees with the model about every station, and the flooding ports
    /// stay within their cap.
    fn check_tables(&mut self) {
        for d in 0..self.nets.len() {
            let stations: Vec<Host> = self.nets[d]
                .hosts
                .iter()
                .filter(|h| h.role == Role::Station)
                .copied()
                .collect();
            for s in stations {
                let model = match self.learned[d].get(&s.mac) {
                    Some(&(port, seen)) if fresh(self.now, seen) => Some(port),
                    Some(_) => {
                        self.stats.aged_lookups += 1;
                        None
                    }
                    None => None,
                };
                let ctx = format!(
                    "seed {:#x} step {}: station {} in domain {d}",
                    self.seed, self.step, s.mac
                );
                assert_eq!(self.nets[d].bridge.lookup(s.mac, self.now), model, "{ctx}");
            }
            let flooder = self.nets[d]
                .hosts
                .iter()
                .find(|h| h.role == Role::Flooder)
                .unwrap()
                .port;
            assert!(self.nets[d].bridge.learned_on(flooder) <= PORT_CAP);
        }
    }

    fn expire(&mut self) {
        let now = self.now;
        for (d, net) in self.nets.iter_mut().enumerate() {
            self.stats.expired += net.bridge.expire(now) as u64;
            self.learned[d].retain(|_, &mut (_, seen)| fresh(now, seen));
            let open = net
                .hosts
                .iter()
                .find(|h| h.role == Role::Station)
                .unwrap()
                .port;
            let model = self.learned[d].len();
            assert_eq!(
                net.bridge.learned_on(open),
                model,
                "seed {:#x} step {}",
                self.seed,
                self.step
            );
        }
    }

    fn run_all(&mut self) {
        for step in 0..STEPS {
            self.step = step;
            // Mostly quick succession, sometimes long silences: both fresh and aged entries.
            let pause = if self.rng.random_bool(0.9) {
                self.rng.random_range(0..2_000)
            } else {
                self.rng.random_range(0..120_000)
            };
            self.now = self.now + Duration::from_millis(pause);
            let d = self.rng.random_range(0..self.nets.len());
            let hosts = self.nets[d].hosts.clone();
            let host = self.pick(&hosts);
            // A flooder sends bursts, to reach its cap within the ageing time.
            let frames = if host.role == Role::Flooder { 20 } else { 1 };
            for _ in 0..frames {
                let (buf, expect) = self.traffic(host);
                self.run(host, buf, expect);
            }
            self.check_tables();
            if step % EXPIRE_EVERY == 0 {
                self.expire();
            }
        }
    }
}

#[test]
fn simulation() {
    let seed = std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let mut sim = Sim::new(seed);
    sim.run_all();
    let s = &sim.stats;
    eprintln!("seed {seed:#x}: {s:?}");

    // Every spoofed or forged frame was dropped and counted under its reason.
    for (&reason, &sent) in &sim.hostile {
        assert_eq!(sim.counters.drops(reason), sent, "{reason}");
    }
    for (&port, &sent) in &sim.hostile_per_port {
        let stats = sim.ports[&port].snapshot();
        let dropped: u64 = stats.drops.iter().map(|&(_, n)| n).sum();
        assert!(dropped >= sent, "{port}: {dropped} < {sent}");
    }
    // The switch-wide counters are the sum of the ports'.
    for reason in DropReason::ALL {
        let per_port: u64 = sim.ports.values().map(|p| p.drops(reason)).sum();
        assert_eq!(sim.counters.drops(reason), per_port, "{reason}");
    }
    assert_eq!(
        sim.counters
            .drop_snapshot()
            .iter()
            .map(|&(_, n)| n)
            .sum::<u64>(),
        s.dropped
    );
    // Each delivery is one frame written, except to the gateway, which gets the segments.
    let tx: u64 = sim.ports.values().map(|p| p.snapshot().tx_frames).sum();
    assert_eq!(tx, s.deliveries - s.offloaded + s.segments);

    // The run exercised what it claims to.
    for reason in [
        DropReason::SpoofedSourceMac,
        DropReason::SpoofedSourceIp,
        DropReason::SpoofedArpMac,
        DropReason::SpoofedArpIp,
        DropReason::MacOwnedElsewhere,
        DropReason::PortMacLimit,
        DropReason::ExceedsMtu,
        DropReason::VlanTagged,
        DropReason::Hairpin,
    ] {
        assert!(sim.counters.drops(reason) > 0, "no {reason} drops");
    }
    assert!(s.unicast > 0 && s.flood > 0 && s.gateway > 0 && s.segments > 0);
    assert!(s.cross_domain_attempts > 0);
    assert!(s.aged_lookups > 0, "no entry aged out");
    assert!(s.expired > 0, "nothing expired");

    // After five quiet minutes, nothing learned is left.
    sim.now = sim.now + AGEING;
    sim.expire();
    for net in &sim.nets {
        assert_eq!(net.bridge.learned_len(), 0);
    }
}
