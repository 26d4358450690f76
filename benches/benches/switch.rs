//! Switch micro-benches: the per-frame work of the data plane.
//!
//! - `switch/parse/*`: [`FrameView::parse_vnet`] of a TAP read (virtio-net header included).
//! - `switch/decide/learning/{1,1000,100000}`: [`decide`] from a learning port, with that many
//!   learned MACs in the table; every frame refreshes its source's entry and looks up its
//!   destination, both drawn at random from the table, so the 100 000 case misses the cache the
//!   way a big table does. (With one MAC, the destination is a container endpoint.)
//! - `switch/decide/endpoint`: the everyday case, container to container among 1000 endpoints.
//! - `switch/segment/tso4_64k`: cutting a 64 KiB TCP super-frame into 1448-byte segments with
//!   their checksums, as the gateway path does.
//!
//! The frames are byte fixtures: the parser does not verify checksums, so none are filled in.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use netloom_switch::frame::{Csum, Gso, GsoKind, Offload};
use netloom_switch::{
    Action, Bridge, DomainConfig, FrameView, Gateway, MacAddr, PortId, PortPolicy, Segmenter,
    TableConfig, Timestamp, decide,
};

const GATEWAY: Gateway = Gateway {
    port: PortId(0),
    mac: MacAddr([0x02, 0x42, 0x0a, 0x00, 0x00, 0x01]),
};
/// Frames per bench, cycled through: enough to defeat branch prediction on the pattern.
const FRAMES: usize = 4096;

/// A /8, room for 100 000 endpoints.
fn config() -> DomainConfig {
    DomainConfig {
        subnet: Ipv4Addr::new(10, 0, 0, 0),
        prefix: 8,
        gateway: Ipv4Addr::new(10, 0, 0, 1),
        mtu: 1500,
        internal: false,
        host_loopback: false,
        dns: None,
    }
}

fn mac(n: u32) -> MacAddr {
    let [a, b, c, d] = n.to_be_bytes();
    MacAddr([0x06, 0x00, a, b, c, d])
}

fn endpoint_ip(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 0)) + n)
}

fn endpoint_mac(n: u32) -> MacAddr {
    let [a, b, c, d] = endpoint_ip(n).octets();
    MacAddr([0x02, 0x42, a, b, c, d])
}

/// A TAP read: a plain virtio-net header, then Ethernet/IPv4/UDP with `payload` bytes.
fn udp_read(
    src: MacAddr,
    dst: MacAddr,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    payload: u16,
) -> Vec<u8> {
    let mut buf = Offload::NONE.to_bytes().to_vec();
    buf.extend_from_slice(&dst.0);
    buf.extend_from_slice(&src.0);
    buf.extend_from_slice(&[0x08, 0x00]);
    buf.extend_from_slice(&[0x45, 0x00]);
    buf.extend_from_slice(&(28 + payload).to_be_bytes());
    buf.extend_from_slice(&[0x00, 0x01, 0x40, 0x00, 64, 17, 0, 0]);
    buf.extend_from_slice(&src_ip.octets());
    buf.extend_from_slice(&dst_ip.octets());
    buf.extend_from_slice(&[0x9c, 0x40, 0x00, 0x35]);
    buf.extend_from_slice(&(8 + payload).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.resize(buf.len() + usize::from(payload), 0xab);
    buf
}

/// A TAP read holding a 64 KiB TCP/IPv4 super-frame, MSS 1448, checksum partial.
fn tso4_64k_read() -> Vec<u8> {
    let payload: u16 = 65_535 - 40;
    let offload = Offload {
        data_valid: false,
        csum: Some(Csum {
            start: 34,
            offset: 16,
        }),
        gso: Some(Gso {
            kind: GsoKind::TcpV4,
            size: 1448,
            ecn: false,
        }),
        hdr_len: 54,
    };
    let mut buf = offload.to_bytes().to_vec();
    buf.extend_from_slice(&endpoint_mac(2).0);
    buf.extend_from_slice(&endpoint_mac(1).0);
    buf.extend_from_slice(&[0x08, 0x00]);
    buf.extend_from_slice(&[0x45, 0x00]);
    buf.extend_from_slice(&(40 + payload).to_be_bytes());
    buf.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 6, 0, 0]);
    buf.extend_from_slice(&endpoint_ip(1).octets());
    buf.extend_from_slice(&endpoint_ip(2).octets());
    // Ports 40000 → 5201, seq, ack, data offset 5, ACK|PSH, window, checksum, urgent.
    buf.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51]);
    buf.extend_from_slice(&0x1000_0000u32.to_be_bytes());
    buf.extend_from_slice(&0x2000_0000u32.to_be_bytes());
    buf.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    buf.extend((0..payload).map(|i| i as u8));
    buf
}

/// A small deterministic generator, so the benches need no RNG crate.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n)) as u32
    }
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch/parse");
    let small = udp_read(
        endpoint_mac(1),
        endpoint_mac(2),
        endpoint_ip(1),
        endpoint_ip(2),
        64,
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("udp_106B", |b| {
        b.iter(|| FrameView::parse_vnet(black_box(&small)).expect("valid"))
    });
    let big = tso4_64k_read();
    group.bench_function("tso4_64k", |b| {
        b.iter(|| FrameView::parse_vnet(black_box(&big)).expect("valid"))
    });
    group.finish();
}

/// A domain whose table holds `macs` learned MACs (split between two learning ports), and
/// frames between them.
fn learning_domain(macs: u32) -> (Bridge, Vec<(Vec<u8>, PortId)>) {
    let table = TableConfig {
        max_learned_per_port: 100_000,
        max_learned: 100_000,
        ..TableConfig::default()
    };
    let mut bridge = Bridge::new(&config(), GATEWAY, table).expect("valid domain");
    let ports = [PortId(1), PortId(2)];
    for port in ports {
        bridge.add_port(port, PortPolicy::Open).expect("new port");
    }
    let endpoint = PortId(3);
    let policy = PortPolicy::Endpoint {
        mac: endpoint_mac(3),
        ipv4: endpoint_ip(3),
    };
    bridge.add_port(endpoint, policy).expect("new port");
    let port_of = |n: u32| ports[(n % 2) as usize];
    let ip = Ipv4Addr::new(10, 200, 0, 1);
    let now = Timestamp::from_millis(1000);
    for n in 0..macs {
        let read = udp_read(mac(n), MacAddr::BROADCAST, ip, Ipv4Addr::BROADCAST, 64);
        let view = FrameView::parse_vnet(&read).expect("valid");
        assert_eq!(decide(&mut bridge, &view, port_of(n), now), Action::Flood);
    }
    assert_eq!(bridge.learned_len(), macs as usize);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let frames = (0..FRAMES)
        .map(|_| {
            let src = rng.below(macs);
            let (dst_mac, dst_ip) = if macs == 1 {
                (endpoint_mac(3), endpoint_ip(3))
            } else {
                // A MAC on the other port.
                let dst = (src + 1 + 2 * rng.below(macs / 2)) % macs;
                (mac(dst), ip)
            };
            (udp_read(mac(src), dst_mac, ip, dst_ip, 64), port_of(src))
        })
        .collect();
    (bridge, frames)
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch/decide");
    group.throughput(Throughput::Elements(1));
    let now = Timestamp::from_millis(2000);
    for macs in [1, 1000, 100_000] {
        let (mut bridge, frames) = learning_domain(macs);
        let views: Vec<(FrameView<'_>, PortId)> = frames
            .iter()
            .map(|(read, port)| (FrameView::parse_vnet(read).expect("valid"), *port))
            .collect();
        for (view, port) in &views {
            assert!(matches!(
                decide(&mut bridge, view, *port, now),
                Action::Unicast(_)
            ));
        }
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("learning", macs), &macs, |b, _| {
            b.iter(|| {
                let (view, port) = &views[i % FRAMES];
                i += 1;
                decide(&mut bridge, black_box(view), *port, now)
            })
        });
    }

    // Container to container: static entries, strict policy.
    let endpoints = 1000;
    let mut bridge = Bridge::new(&config(), GATEWAY, TableConfig::default()).expect("valid");
    for n in 0..endpoints {
        let policy = PortPolicy::Endpoint {
            mac: endpoint_mac(n),
            ipv4: endpoint_ip(n),
        };
        bridge.add_port(PortId(10 + n), policy).expect("new port");
    }
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let frames: Vec<(Vec<u8>, PortId)> = (0..FRAMES)
        .map(|_| {
            let src = rng.below(endpoints);
            let dst = (src + 1 + rng.below(endpoints - 1)) % endpoints;
            let read = udp_read(
                endpoint_mac(src),
                endpoint_mac(dst),
                endpoint_ip(src),
                endpoint_ip(dst),
                64,
            );
            (read, PortId(10 + src))
        })
        .collect();
    let views: Vec<(FrameView<'_>, PortId)> = frames
        .iter()
        .map(|(read, port)| (FrameView::parse_vnet(read).expect("valid"), *port))
        .collect();
    let mut i = 0;
    group.bench_function("endpoint", |b| {
        b.iter(|| {
            let (view, port) = &views[i % FRAMES];
            i += 1;
            decide(&mut bridge, black_box(view), *port, now)
        })
    });
    group.finish();
}

fn segment(c: &mut Criterion) {
    let read = tso4_64k_read();
    let view = FrameView::parse_vnet(&read).expect("valid");
    let mut segmenter = Segmenter::new();
    let mut group = c.benchmark_group("switch/segment");
    group.throughput(Throughput::Bytes(view.frame_len() as u64));
    group.bench_function("tso4_64k", |b| {
        b.iter(|| {
            let mut segments = segmenter.segments(black_box(&view)).expect("valid");
            let mut bytes = 0;
            while let Some(segment) = segments.next_segment() {
                bytes += black_box(segment.ethernet()).len();
            }
            bytes
        })
    });
    group.finish();
}

criterion_group!(benches, parse, bench_decide, segment);
criterion_main!(benches);
