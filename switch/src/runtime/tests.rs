//! The port task's per-frame path, [`DomainShared::forward`], against malformed reads: each is
//! dropped with its own reason, counted switch-wide and on the ingress port, and nothing reaches
//! another port. The ports are real TAPs (the path writes to them), so the tests need root; each
//! runs on a thread of its own inside a new, empty network namespace, as in `tap::tests`.

use std::process::Command;
use std::thread;

use nix::sched::{CloneFlags, unshare};
use rstest::rstest;

use super::*;
use crate::domain::tests::bridge as bridge_config;
use crate::frame::{Csum, Gso, GsoKind, MAX_FRAME_LEN, MacAddr, Offload};
use crate::tap::{Tap, TapConfig};
use crate::testutil::{ARP_REQUEST, UDP4, tcp4_gso, udp4, vnet};

const GW_PORT: PortId = PortId(1);
/// 172.17.0.2, the sender of every fixture.
const A: PortId = PortId(2);
/// 172.17.0.3, the receiver of the fixtures that are addressed at all.
const B: PortId = PortId(3);

/// Runs `f` on a new thread inside a new network namespace of its own, with a tokio runtime
/// entered (ports register their TAPs with it).
fn in_private_netns(f: impl FnOnce() + Send) {
    in_private_netns_with(|_| f());
}

/// [`in_private_netns`], handing `f` the runtime (whose `block_on` drives I/O and timers).
fn in_private_netns_with(f: impl FnOnce(&tokio::runtime::Runtime) + Send) {
    thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name("runtime-test".into())
            .spawn_scoped(scope, || {
                unshare(CloneFlags::CLONE_NEWNET)
                    .expect("unshare(CLONE_NEWNET) failed: these tests must run as root");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("cannot build a tokio runtime");
                let _guard = rt.enter();
                f(&rt);
            })
            .expect("cannot spawn the test thread");
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
}

fn endpoint_mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, n])
}

/// A domain (172.17.0.0/16) with endpoints A (`a0`) and B (`b0`), B's link up so that what is
/// forwarded to it is written and checked by the kernel; no gateway task.
fn domain() -> (DomainShared, Arc<PortIo>, Arc<PortIo>) {
    let config = bridge_config();
    let gw = GatewayAddr::derived(config.gateway);
    let gateway = Gateway {
        port: GW_PORT,
        mac: gw.mac,
    };
    let mut bridge = Bridge::new(&config, gateway, TableConfig::default()).expect("bridge");
    let mut ports = PortMap::new();
    for (port, n, name) in [(A, 2, "a0"), (B, 3, "b0")] {
        let policy = PortPolicy::Endpoint {
            mac: endpoint_mac(n),
            ipv4: Ipv4Addr::new(172, 17, 0, n),
        };
        bridge.add_port(port, policy).expect("add port");
        let tap = Tap::create(&TapConfig::new(name))
            .and_then(Tap::into_async)
            .expect("create TAP");
        let io = Arc::new(PortIo {
            tap,
            counters: PortCounters::default(),
        });
        ports.insert(port, io);
    }
    let up = Command::new("ip")
        .args(["link", "set", "b0", "up"])
        .status()
        .expect("run ip");
    assert!(up.success(), "ip link set b0 up");
    let (a, b) = (ports[&A].clone(), ports[&B].clone());
    let shared = DomainShared {
        bridge: Mutex::new(bridge),
        ports: ArcSwap::from_pointee(ports),
        gateway: gw,
        gateway_port: GW_PORT,
        counters: Arc::new(Counters::default()),
        epoch: Instant::now(),
        last_expire_ms: AtomicU64::new(0),
        neighbors: ArcSwap::from_pointee(HashMap::new()),
        nat: OnceLock::new(),
        pool: Mutex::new(Vec::new()),
        mtu: config.mtu,
        subnet: config.subnet,
        prefix: config.prefix,
    };
    (shared, a, b)
}

/// `frame` with the bytes at the given offsets replaced.
fn patched(frame: &[u8], patches: &[(usize, u8)]) -> Vec<u8> {
    let mut out = frame.to_vec();
    for &(at, value) in patches {
        out[at] = value;
    }
    out
}

/// A raw virtio-net header in front of [`UDP4`].
fn header(bytes: [u8; 12]) -> Vec<u8> {
    let mut read = bytes.to_vec();
    read.extend_from_slice(&UDP4);
    read
}

/// `gso` with a UDP-shaped partial checksum, in front of [`UDP4`].
fn udp_with_gso(kind: GsoKind) -> Vec<u8> {
    let offload = Offload {
        csum: Some(Csum {
            start: 34,
            offset: 6,
        }),
        gso: Some(Gso {
            kind,
            size: 4,
            ecn: false,
        }),
        hdr_len: 0,
        data_valid: false,
    };
    vnet(offload, &UDP4)
}

/// Every malformed read a container can hand its port, from a byte fixture, with the counter it
/// must land in. (The parser's own table in `frame::tests` has more variants of each; these go
/// through the whole per-frame path of the port task.)
#[rstest]
#[case::empty(vec![], DropReason::TruncatedVnetHeader)]
#[case::vnet_header_11_bytes(vec![0; 11], DropReason::TruncatedVnetHeader)]
#[case::header_without_frame(vec![0; 12], DropReason::Runt)]
#[case::runt_13_bytes(vnet(Offload::NONE, &UDP4[..13]), DropReason::Runt)]
#[case::oversize_frame(vnet(Offload::NONE, &vec![0; MAX_FRAME_LEN + 1]), DropReason::Oversize)]
#[case::oversize_read(vec![0; MAX_READ_LEN + 100], DropReason::Oversize)]
#[case::unknown_flag(header([4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), DropReason::BadVnetHeader)]
#[case::unknown_gso_type(header([1, 2, 0, 0, 1, 0, 34, 0, 16, 0, 0, 0]), DropReason::BadVnetHeader)]
#[case::ecn_without_gso(header([0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), DropReason::BadVnetHeader)]
#[case::gso_without_csum(header([0, 1, 0, 0, 0xa8, 5, 0, 0, 0, 0, 0, 0]), DropReason::BadVnetHeader)]
#[case::hdr_len_past_frame(header([0, 0, 47, 0, 0, 0, 0, 0, 0, 0, 0, 0]), DropReason::BadVnetHeader)]
#[case::gso_size_0(patched(&tcp4_gso(3000, 1448, &[]), &[(4, 0), (5, 0)]), DropReason::BadVnetHeader)]
#[case::gso_size_gso_by_frags(tcp4_gso(3000, u16::MAX, &[]), DropReason::BadVnetHeader)]
#[case::tso_on_udp(udp_with_gso(GsoKind::TcpV4), DropReason::OffloadMismatch)]
#[case::tso6_on_ipv4(patched(&tcp4_gso(3000, 1448, &[]), &[(1, 4)]), DropReason::OffloadMismatch)]
#[case::uso(udp_with_gso(GsoKind::UdpL4), DropReason::UnsupportedGso)]
#[case::ufo(udp_with_gso(GsoKind::Udp), DropReason::UnsupportedGso)]
#[case::csum_past_frame(header([1, 0, 0, 0, 0, 0, 34, 0, 11, 0, 0, 0]), DropReason::OffloadMismatch)]
#[case::vlan_8021q(vnet(Offload::NONE, &patched(&UDP4, &[(12, 0x81), (13, 0x00)])), DropReason::VlanTagged)]
#[case::vlan_8021ad(vnet(Offload::NONE, &patched(&UDP4, &[(12, 0x88), (13, 0xa8)])), DropReason::VlanTagged)]
#[case::arp_truncated(vnet(Offload::NONE, &ARP_REQUEST[..41]), DropReason::MalformedArp)]
#[case::arp_op_3(vnet(Offload::NONE, &patched(&ARP_REQUEST, &[(21, 3)])), DropReason::MalformedArp)]
#[case::ipv4_truncated(vnet(Offload::NONE, &UDP4[..33]), DropReason::MalformedIpv4)]
#[case::ipv4_ihl_4(vnet(Offload::NONE, &patched(&UDP4, &[(14, 0x44)])), DropReason::MalformedIpv4)]
#[case::ipv4_ihl_past_frame(vnet(Offload::NONE, &patched(&UDP4, &[(14, 0x4f)])), DropReason::MalformedIpv4)]
#[case::ipv4_total_len_past_frame(vnet(Offload::NONE, &patched(&UDP4, &[(17, 33)])), DropReason::MalformedIpv4)]
#[case::ipv4_total_len_below_header(vnet(Offload::NONE, &patched(&UDP4, &[(17, 19)])), DropReason::MalformedIpv4)]
#[case::tso_segments_over_mtu(tcp4_gso(20_000, 1461, &[]), DropReason::ExceedsMtu)]
#[case::frame_over_mtu(
    vnet(Offload::NONE, &udp4(endpoint_mac(2), endpoint_mac(3), Ipv4Addr::new(172, 17, 0, 2), Ipv4Addr::new(172, 17, 0, 3), 1473)),
    DropReason::ExceedsMtu
)]
fn malformed_reads_are_dropped_and_counted(#[case] read: Vec<u8>, #[case] expected: DropReason) {
    in_private_netns(|| {
        let (shared, a, b) = domain();
        let mut buf = read.clone();
        let mut reply = Vec::new();
        shared.forward(A, &a, &mut buf, &mut reply);

        let total = |drops: &[(DropReason, u64)]| drops.iter().map(|&(_, n)| n).sum::<u64>();
        assert_eq!(shared.counters.drops(expected), 1, "switch-wide {expected}");
        assert_eq!(total(&shared.counters.drop_snapshot()), 1, "one drop");
        let a = a.counters.snapshot();
        assert_eq!(a.rx_frames, 1);
        assert_eq!(a.drops, {
            let mut want = DropReason::ALL.map(|r| (r, 0)).to_vec();
            want.iter_mut()
                .find(|(r, _)| *r == expected)
                .expect("listed")
                .1 = 1;
            want
        });
        let b = b.counters.snapshot();
        assert_eq!((b.tx_frames, total(&b.drops)), (0, 0), "nothing reached B");
        assert!(reply.is_empty(), "no answer to a malformed frame");
    });
}

/// A `gso_size` larger than the payload is no segmentation request at all: the kernel treats such
/// a frame as an ordinary one ("too small packets are not really GSO ones",
/// `virtio_net_hdr_to_skb`), so the switch forwards it with its header and the receiving TAP
/// takes it. It is not malformed, unlike `gso_size` 0 or 0xffff.
#[test]
fn gso_size_beyond_the_payload_is_forwarded() {
    in_private_netns(|| {
        let (shared, a, b) = domain();
        for mss in [4000, u16::MAX - 1] {
            let mut read = tcp4_gso(100, mss, &[]);
            shared.forward(A, &a, &mut read, &mut Vec::new());
        }
        let dropped: u64 = shared
            .counters
            .drop_snapshot()
            .iter()
            .map(|&(_, n)| n)
            .sum();
        assert_eq!(dropped, 0, "{:?}", shared.counters.drop_snapshot());
        assert_eq!(b.counters.snapshot().tx_frames, 2);
    });
}

/// Sets up b0 to send: IPv6 off (no spontaneous frames), an address, and a static neighbour
/// so that every datagram to 10.9.0.2 leaves b0 at once; then empties the TAP.
fn b0_sends(b: &PortIo) -> std::net::UdpSocket {
    for args in [
        &["sysctl", "-qw", "net.ipv6.conf.b0.disable_ipv6=1"][..],
        &["ip", "addr", "add", "10.9.0.1/24", "dev", "b0"],
        &[
            "ip",
            "neigh",
            "add",
            "10.9.0.2",
            "lladdr",
            "02:42:ac:11:00:02",
            "dev",
            "b0",
        ],
    ] {
        let status = Command::new(args[0]).args(&args[1..]).status();
        assert!(status.expect("run").success(), "{args:?}");
    }
    let mut buf = vec![0u8; MAX_READ_LEN + 1];
    while b.tap.read_now(&mut buf).is_ok() {}
    std::net::UdpSocket::bind("10.9.0.1:0").expect("bind in the test namespace")
}

/// Busy polling reads what the kernel sends out of the port while it polls, gives up after its
/// window when nothing comes, and stops at once when the port is removed.
#[test]
fn busy_polling_reads_frames_and_gives_up_after_its_window() {
    in_private_netns_with(|rt| {
        let (_shared, _a, b) = domain();
        let socket = b0_sends(&b);
        let mut buf = vec![0u8; MAX_READ_LEN + 1];
        let cancel = CancellationToken::new();
        let busy = BusyPoll::new(Duration::from_millis(20)).expect("window");

        // (Idle at the window's end, or earlier if the test's CPU is contended.)
        let idle = rt.block_on(poll_for_frame(&b, &mut buf, busy, &cancel));
        assert!(matches!(idle, Polled::Idle), "{idle:?}");

        socket.send_to(b"polled", "10.9.0.2:9").expect("send");
        let mut frame = None;
        let deadline = Instant::now() + Duration::from_secs(2);
        while frame.is_none() && Instant::now() < deadline {
            match rt.block_on(poll_for_frame(&b, &mut buf, busy, &cancel)) {
                Polled::Frame(n) => frame = Some(buf[..n].to_vec()),
                Polled::Idle => {}
                other => panic!("{other:?}"),
            }
        }
        let frame = frame.expect("no frame read by polling within 2 s");
        assert!(frame.ends_with(b"polled"), "the datagram: {frame:02x?}");

        cancel.cancel();
        let started = Instant::now();
        let long = BusyPoll::new(Duration::from_secs(1)).expect("window");
        let cancelled = rt.block_on(poll_for_frame(&b, &mut buf, long, &cancel));
        assert!(matches!(cancelled, Polled::Cancelled), "{cancelled:?}");
        assert!(started.elapsed() < Duration::from_millis(500));
    });
}

/// A port task with busy polling: after two sparse batches it polls, and the frames that come
/// while it polls are read (counted as polled) and forwarded like any other, in order. Polling
/// here keeps going however busy the machine is (the rest of the suite runs beside it).
#[test]
fn a_port_with_sparse_traffic_is_polled() {
    in_private_netns_with(|rt| {
        let (shared, _a, b) = domain();
        let socket = b0_sends(&b);
        let shared = Arc::new(shared);
        let cancel = CancellationToken::new();
        let busy = BusyPoll::regardless_of_load(Duration::from_secs(1));
        rt.block_on(async {
            let task = tokio::spawn(port_task(
                shared.clone(),
                B,
                b.clone(),
                Some(busy),
                cancel.clone(),
            ));
            for i in 0..10u8 {
                socket.send_to(&[i; 8], "10.9.0.2:9").expect("send");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while b.counters.snapshot().rx_frames < 10 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            cancel.cancel();
            task.await.expect("port task");
        });
        assert_eq!(b.counters.snapshot().rx_frames, 10);
        // The first two batches made the port sparse; each later one came while it polled.
        assert!(shared.counters.polled() >= 1, "nothing was polled");
        assert!(
            shared.counters.polled() <= 8,
            "{}",
            shared.counters.polled()
        );
    });
}
