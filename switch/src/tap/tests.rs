//! Tests against the real kernel.
//!
//! Each test runs on a thread of its own that first moves into a new, empty network namespace
//! (`unshare(CLONE_NEWNET)` changes only the calling thread), so the tests need root and never
//! see or touch the machine's interfaces. Everything they create lives in that namespace, which
//! the kernel destroys with all its devices once the thread has ended and the last TAP
//! descriptor is closed, also when a test fails half-way. Addresses are from 198.18.0.0/15 (the
//! RFC 2544 benchmarking range; never 192.0.2.0/24, which is this machine's uplink), and traffic
//! never leaves the namespace.

use std::fs::File;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use etherparse::{
    ArpEthIpv4Packet, ArpOperation, EtherType, LinkSlice, NetSlice, PacketBuilder, SlicedPacket,
    TcpOptionElement, TransportSlice,
};
use nix::sched::{CloneFlags, unshare};
use rstest::rstest;

use super::*;
use crate::MAX_READ_LEN;
use crate::vnet::{VIRTIO_NET_HDR_GSO_TCPV4, VnetHeader};

const TAP_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const NEIGHBOUR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const NEIGHBOUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const WAIT: Duration = Duration::from_secs(5);

/// Runs `f` on a new thread inside a new network namespace of its own.
fn in_private_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name("tap-test".into())
            .spawn_scoped(scope, || {
                unshare(CloneFlags::CLONE_NEWNET)
                    .expect("unshare(CLONE_NEWNET) failed: the TAP tests must run as root");
                f()
            })
            .expect("cannot spawn the test thread");
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Another network namespace, kept alive by an open descriptor; dropping it lets the kernel
/// destroy the namespace (with every device still in it) once nothing else holds it.
struct OtherNetns {
    file: File,
}

impl OtherNetns {
    fn new() -> OtherNetns {
        let file = in_private_netns(|| File::open("/proc/thread-self/ns/net"))
            .expect("cannot open the new namespace");
        OtherNetns { file }
    }

    /// A path that names this namespace for as long as `self` lives.
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }
}

/// Deletes the link on drop, so a failed assertion does not leave a persistent TAP behind even
/// before the namespace goes.
struct DeleteLink(&'static str);

impl Drop for DeleteLink {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", "dev", self.0])
            .output();
    }
}

/// Runs `ip` (iproute2) in the calling thread's namespace and returns its output.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("cannot run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("ip printed non-UTF-8")
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .expect("cannot run ip (iproute2)")
        .status
        .success()
}

fn current_netns() -> PathBuf {
    std::fs::read_link("/proc/thread-self/ns/net").expect("cannot read /proc/thread-self/ns/net")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime")
}

fn arp_of(frame: &[u8]) -> Option<ArpEthIpv4Packet> {
    match SlicedPacket::from_ethernet(frame).ok()?.net? {
        NetSlice::Arp(arp) => arp.to_packet().try_eth_ipv4().ok(),
        _ => None,
    }
}

/// Reads frames (in batches, until `WouldBlock`) until one matches `want`; returns it with its
/// header. Panics after [`WAIT`]. The other frames (IPv6 router solicitations and the like)
/// are skipped.
async fn next_frame(
    port: &AsyncTap,
    buf: &mut [u8],
    want: impl Fn(&VnetHeader, &[u8]) -> bool,
) -> (VnetHeader, Vec<u8>) {
    let search = async {
        loop {
            port.readable().await.expect("readable");
            loop {
                match port.try_read(buf) {
                    Ok(n) => {
                        let (header, frame) = VnetHeader::split(&buf[..n])
                            .expect("a frame shorter than the virtio-net header");
                        if want(&header, frame) {
                            return (header, frame.to_vec());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("reading the TAP failed: {e}"),
                }
            }
        }
    };
    tokio::time::timeout(WAIT, search)
        .await
        .expect("no matching frame arrived on the TAP")
}

/// A UDP datagram from the neighbour to the TAP's address, as an Ethernet frame.
fn udp_frame() -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(NEIGHBOUR_MAC, [0x02, 0, 0, 0, 0, 1])
        .ipv4(NEIGHBOUR.octets(), TAP_ADDR.octets(), 64)
        .udp(4000, 4001)
        .write(&mut frame, b"x")
        .expect("build a UDP frame");
    frame
}

/// Polls a plain (non-async) [`Tap`] until a read does something other than `WouldBlock`.
fn read_blocking(tap: &Tap, buf: &mut [u8]) -> io::Result<usize> {
    let deadline = Instant::now() + WAIT;
    loop {
        match tap.try_read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn with_header(header: VnetHeader, frame: &[u8]) -> Vec<u8> {
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(frame);
    out
}

#[test]
fn frames_cross_the_tap_with_a_vnet_header() {
    in_private_netns(|| {
        let tap = Tap::create(&TapConfig::new("eth0")).expect("create eth0");
        ip(&["addr", "add", "198.18.0.1/24", "dev", "eth0"]);
        ip(&["link", "set", "eth0", "up"]);
        runtime().block_on(async move {
            let port = tap.into_async().expect("register");
            let mut buf = vec![0u8; MAX_READ_LEN];

            // Kernel -> switch: a datagram for a neighbour makes the kernel ask for its MAC.
            let sender = UdpSocket::bind((TAP_ADDR, 0)).expect("bind sender");
            sender
                .send_to(b"to the neighbour", (NEIGHBOUR, 7777))
                .expect("send");
            let (header, frame) = next_frame(&port, &mut buf, |_, f| {
                arp_of(f).is_some_and(|a| {
                    a.operation == ArpOperation::REQUEST && a.target_ipv4_addr() == NEIGHBOUR
                })
            })
            .await;
            assert_eq!(header, VnetHeader::NONE, "an ARP request needs no offload");
            let request = arp_of(&frame).expect("ARP");
            assert_eq!(request.sender_ipv4_addr(), TAP_ADDR);
            let tap_mac = request.sender_mac;
            let ethernet = SlicedPacket::from_ethernet(&frame).expect("Ethernet");
            let Some(LinkSlice::Ethernet2(eth)) = ethernet.link else {
                panic!("not an Ethernet II frame");
            };
            assert_eq!(eth.destination(), [0xff; 6]);
            assert_eq!(eth.source(), tap_mac);
            assert_eq!(eth.ether_type(), EtherType::ARP);

            // Switch -> kernel: answer it, with a zero header.
            let reply = ArpEthIpv4Packet {
                operation: ArpOperation::REPLY,
                sender_mac: NEIGHBOUR_MAC,
                sender_ipv4: NEIGHBOUR.octets(),
                target_mac: tap_mac,
                target_ipv4: TAP_ADDR.octets(),
            };
            let mut reply_frame = Vec::new();
            PacketBuilder::ethernet2(NEIGHBOUR_MAC, tap_mac)
                .arp(reply.into())
                .write(&mut reply_frame)
                .expect("build ARP reply");
            let written = with_header(VnetHeader::NONE, &reply_frame);
            assert_eq!(port.try_write(&written).expect("write"), written.len());

            // The kernel took it: it learnt the neighbour and sends the queued datagram there.
            let (header, frame) = next_frame(&port, &mut buf, |_, f| {
                SlicedPacket::from_ethernet(f).is_ok_and(|p| {
                    matches!(p.transport, Some(TransportSlice::Udp(u)) if u.destination_port() == 7777)
                })
            })
            .await;
            let packet = SlicedPacket::from_ethernet(&frame).expect("parse");
            let Some(LinkSlice::Ethernet2(eth)) = packet.link else {
                panic!("not an Ethernet II frame");
            };
            assert_eq!(eth.destination(), NEIGHBOUR_MAC);
            let Some(TransportSlice::Udp(udp)) = packet.transport else {
                panic!("not UDP");
            };
            assert_eq!(udp.payload(), b"to the neighbour");
            // With TUN_F_CSUM the kernel leaves the UDP checksum to whoever delivers the frame.
            assert!(header.needs_csum(), "offloads are not in effect: {header:?}");
            assert_eq!(header.csum_start, 14 + 20);
            assert_eq!(header.csum_offset, 6);
            assert!(!header.is_gso());
            let neighbours = ip(&["neigh", "show", "198.18.0.2", "dev", "eth0"]);
            assert!(
                neighbours.contains("02:00:00:00:00:02"),
                "ARP reply not accepted: {neighbours}"
            );

            // Switch -> kernel: a datagram for a socket in the namespace.
            let receiver = UdpSocket::bind((TAP_ADDR, 0)).expect("bind receiver");
            receiver.set_read_timeout(Some(WAIT)).expect("timeout");
            let to_port = receiver.local_addr().expect("addr").port();
            let mut datagram = Vec::new();
            PacketBuilder::ethernet2(NEIGHBOUR_MAC, tap_mac)
                .ipv4(NEIGHBOUR.octets(), TAP_ADDR.octets(), 64)
                .udp(4000, to_port)
                .write(&mut datagram, b"hello from the switch")
                .expect("build datagram");
            let written = with_header(VnetHeader::NONE, &datagram);
            assert_eq!(port.try_write(&written).expect("write"), written.len());
            let mut got = [0u8; 64];
            let (n, from) = receiver
                .recv_from(&mut got)
                .expect("the injected datagram did not arrive");
            assert_eq!(&got[..n], b"hello from the switch");
            assert_eq!(from, (NEIGHBOUR, 4000).into());
        });
    });
}

#[test]
fn tcp_leaves_the_container_as_tso_super_frames() {
    in_private_netns(|| {
        let tap = Tap::create(&TapConfig::new("eth0")).expect("create eth0");
        ip(&["addr", "add", "198.18.0.1/24", "dev", "eth0"]);
        ip(&["link", "set", "eth0", "up"]);
        // Skip ARP: the "neighbour" is whatever answers on the TAP, i.e. this test.
        let lladdr = "02:00:00:00:00:02";
        ip(&[
            "neigh",
            "replace",
            "198.18.0.2",
            "lladdr",
            lladdr,
            "dev",
            "eth0",
            "nud",
            "permanent",
        ]);
        runtime().block_on(async move {
            let port = tap.into_async().expect("register");
            let mut buf = vec![0u8; MAX_READ_LEN];
            let client = async {
                let stream = tokio::net::TcpStream::connect((NEIGHBOUR, 8080))
                    .await
                    .expect("connect through the TAP");
                stream.writable().await.expect("writable");
                // As much as the socket takes now; the peer (this test) never acknowledges it.
                let sent = stream.try_write(&[0x5a; 60_000]).expect("send");
                assert!(sent > 3 * 1460, "only {sent} bytes queued");
                stream
            };
            let switch = async {
                let is_syn = |_: &VnetHeader, f: &[u8]| {
                    SlicedPacket::from_ethernet(f).is_ok_and(|p| {
                        matches!(p.transport, Some(TransportSlice::Tcp(t)) if t.syn() && !t.ack())
                    })
                };
                let (_, syn) = next_frame(&port, &mut buf, is_syn).await;
                let syn = SlicedPacket::from_ethernet(&syn).expect("parse SYN");
                let (Some(LinkSlice::Ethernet2(eth)), Some(TransportSlice::Tcp(tcp))) =
                    (syn.link, syn.transport)
                else {
                    panic!("not an Ethernet TCP frame");
                };
                let mut syn_ack = Vec::new();
                PacketBuilder::ethernet2(NEIGHBOUR_MAC, eth.source())
                    .ipv4(NEIGHBOUR.octets(), TAP_ADDR.octets(), 64)
                    .tcp(8080, tcp.source_port(), 1_000_000, u16::MAX)
                    .syn()
                    .ack(tcp.sequence_number().wrapping_add(1))
                    .options(&[TcpOptionElement::MaximumSegmentSize(1460)])
                    .expect("MSS option")
                    .write(&mut syn_ack, &[])
                    .expect("build SYN-ACK");
                port.try_write(&with_header(VnetHeader::NONE, &syn_ack))
                    .expect("write SYN-ACK");
                next_frame(&port, &mut buf, |h, _| h.is_gso()).await
            };
            let (_stream, (header, frame)) = tokio::join!(client, switch);
            assert_eq!(header.gso_type, VIRTIO_NET_HDR_GSO_TCPV4, "{header:?}");
            assert!(header.gso_size > 0 && header.gso_size <= 1460, "{header:?}");
            assert!(
                frame.len() > 14 + 20 + 20 + usize::from(header.gso_size),
                "not a super-frame"
            );
            assert!(
                header.needs_csum(),
                "TSO without a partial checksum: {header:?}"
            );
            assert_eq!(header.csum_start, 14 + 20);
            assert_eq!(header.csum_offset, 16);
            let packet = SlicedPacket::from_ethernet(&frame).expect("parse the super-frame");
            let Some(TransportSlice::Tcp(tcp)) = packet.transport else {
                panic!("a TCPV4 super-frame that is not TCP");
            };
            assert!(tcp.payload().iter().all(|&b| b == 0x5a));
        });
    });
}

#[test]
fn bad_frames_short_buffers_and_a_downed_link_fail_softly() {
    in_private_netns(|| {
        let tap = Tap::create(&TapConfig::new("eth0")).expect("create eth0");
        let frame = udp_frame();

        // A new interface is down (and a container may set it down): writes fail with EIO.
        let err = tap
            .try_write(&with_header(VnetHeader::NONE, &frame))
            .expect_err("wrote to a TAP whose link is down");
        assert_eq!(IoFailure::of(&err), IoFailure::Down, "{err}");
        ip(&["addr", "add", "198.18.0.1/24", "dev", "eth0"]);
        ip(&["link", "set", "eth0", "up"]);
        tap.try_write(&with_header(VnetHeader::NONE, &frame))
            .expect("the port works once the link is up");

        // A segmentation request with no segment size.
        let bogus = VnetHeader {
            gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
            ..VnetHeader::NONE
        };
        let err = tap
            .try_write(&with_header(bogus, &frame))
            .expect_err("the kernel accepted a TSO frame with gso_size 0");
        assert_eq!(IoFailure::of(&err), IoFailure::Rejected, "{err}");
        // Header, but less than an Ethernet header behind it.
        let err = tap
            .try_write(&[0u8; VNET_HDR_LEN + 10])
            .expect_err("accepted a runt");
        assert_eq!(IoFailure::of(&err), IoFailure::Rejected, "{err}");
        // Less than the header itself.
        let err = tap.try_write(&[0u8; 4]).expect_err("accepted 4 bytes");
        assert_eq!(IoFailure::of(&err), IoFailure::Rejected, "{err}");
        // The port still works.
        tap.try_write(&with_header(VnetHeader::NONE, &frame))
            .expect("the port broke after refused writes");

        // Two neighbours to resolve: two ARP requests (at least) queue up on the TAP.
        let sender = UdpSocket::bind((TAP_ADDR, 0)).expect("bind sender");
        for neighbour in [NEIGHBOUR, Ipv4Addr::new(198, 18, 0, 3)] {
            sender.send_to(b"x", (neighbour, 7777)).expect("send");
        }
        // A buffer shorter than the header: EINVAL, and that frame is dropped.
        let err = read_blocking(&tap, &mut [0u8; 8]).expect_err("read into 8 bytes");
        assert_eq!(IoFailure::of(&err), IoFailure::Rejected, "{err}");
        // A buffer shorter than the frame: silently truncated.
        let mut short = [0u8; 20];
        assert_eq!(
            read_blocking(&tap, &mut short).expect("read into 20 bytes"),
            20
        );
    });
}

#[test]
fn tungetiff_reports_what_was_asked_for() {
    in_private_netns(|| {
        let tap = Tap::create(&TapConfig::new("eth0")).expect("create eth0");
        let info = tap.info().expect("TUNGETIFF");
        assert_eq!(info.name, "eth0");
        let flags = info.flags;
        assert!(
            flags.tap() && flags.no_pi() && flags.vnet_hdr(),
            "{flags:?}"
        );
        assert!(!flags.persist() && !flags.multi_queue(), "{flags:?}");
        assert_eq!(tap.fd.vnet_hdr_sz().expect("TUNGETVNETHDRSZ"), 12);
        assert!(tap.vnet_hdr());
        let listed = ip(&["-o", "link", "show", "dev", "eth0"]);
        assert!(
            listed.starts_with(&format!("{}: eth0:", tap.ifindex())),
            "{listed}"
        );

        tap.set_persist(true).expect("persist on");
        assert!(tap.info().expect("TUNGETIFF").flags.persist());
        tap.set_persist(false).expect("persist off");
        assert!(!tap.info().expect("TUNGETIFF").flags.persist());

        tap.set_sndbuf(1 << 20).expect("TUNSETSNDBUF");
        assert_eq!(tap.fd.sndbuf().expect("TUNGETSNDBUF"), 1 << 20);
        assert!(matches!(tap.set_sndbuf(0), Err(TapError::SetSndbuf { .. })));

        let plain = Tap::create(&TapConfig {
            name: "eth1".into(),
            vnet_hdr: false,
            offloads: false,
            persist: false,
        })
        .expect("create eth1");
        let flags = plain.info().expect("TUNGETIFF").flags;
        assert!(
            flags.tap() && flags.no_pi() && !flags.vnet_hdr(),
            "{flags:?}"
        );
        assert!(!plain.vnet_hdr());

        // The longest name the kernel allows.
        let longest = Tap::create(&TapConfig::new("abcdefghijklmno")).expect("15-byte name");
        assert_eq!(longest.info().expect("TUNGETIFF").name, "abcdefghijklmno");
    });
}

#[test]
fn a_persistent_tap_survives_its_descriptor_and_is_attached_again() {
    in_private_netns(|| {
        let _cleanup = DeleteLink("eth0");
        let here = Path::new("/proc/thread-self/ns/net");
        let config = TapConfig::new("eth0").persistent(true);
        let tap = Tap::create(&config).expect("create eth0");
        let ifindex = tap.ifindex();
        assert!(tap.info().expect("TUNGETIFF").flags.persist());

        // Nobody takes it over while it is in use, and create never attaches.
        let busy = Tap::attach(&config).expect_err("attached to a TAP in use");
        assert!(
            matches!(&busy, TapError::Attach { source, .. } if source.raw_os_error() == Some(libc::EBUSY)),
            "{busy:?}"
        );
        assert!(matches!(
            Tap::create(&config),
            Err(TapError::AlreadyExists { .. })
        ));

        // "The daemon restarts."
        drop(tap);
        assert!(
            link_exists("eth0"),
            "a persistent TAP vanished with its descriptor"
        );
        let back = Tap::attach_existing(here, &config).expect("re-attach eth0");
        assert_eq!(back.ifindex(), ifindex, "attached to a different device");
        let flags = back.info().expect("TUNGETIFF").flags;
        assert!(
            flags.persist() && flags.vnet_hdr() && flags.tap(),
            "{flags:?}"
        );
        assert_eq!(back.fd.vnet_hdr_sz().expect("TUNGETVNETHDRSZ"), 12);

        // Re-attaching to something that is not there fails and leaves nothing behind.
        let missing = Tap::attach_existing(here, &TapConfig::new("eth9").persistent(true));
        assert!(
            matches!(missing, Err(TapError::NotFound { .. })),
            "{missing:?}"
        );
        assert!(!link_exists("eth9"));

        // Not persistent any more: the device goes with its last descriptor.
        back.set_persist(false).expect("persist off");
        drop(back);
        assert!(!link_exists("eth0"));
    });
}

#[test]
fn create_in_netns_puts_the_device_in_that_namespace_only() {
    in_private_netns(|| {
        let other = OtherNetns::new();
        let before = current_netns();
        let tap = Tap::create_in_netns(&other.path(), &TapConfig::new("eth1"))
            .expect("create eth1 over there");
        assert_eq!(
            current_netns(),
            before,
            "the caller's thread changed namespace"
        );
        assert!(!link_exists("eth1"), "the TAP is in the caller's namespace");
        let listed = in_netns_fd(other.file.as_fd(), || {
            ip(&["-o", "link", "show", "dev", "eth1"])
        })
        .expect("enter the other namespace");
        assert!(
            listed.starts_with(&format!("{}: eth1:", tap.ifindex())),
            "{listed}"
        );
        drop(tap);
        assert!(
            !in_netns(&other.path(), || link_exists("eth1")).expect("enter"),
            "a non-persistent TAP outlived its descriptor"
        );
    });
}

#[test]
fn in_netns_reports_bad_namespaces_and_propagates_panics() {
    in_private_netns(|| {
        let missing = in_netns(Path::new("/nonexistent/netns"), || ());
        assert!(
            matches!(missing, Err(TapError::OpenNetns { .. })),
            "{missing:?}"
        );
        // A namespace file, but not a network namespace.
        let wrong = in_netns(Path::new("/proc/thread-self/ns/uts"), || ());
        assert!(
            matches!(&wrong, Err(TapError::EnterNetns { source, .. }) if source.raw_os_error() == Some(libc::EINVAL)),
            "{wrong:?}"
        );
        let here = Path::new("/proc/thread-self/ns/net");
        let panicked = std::panic::catch_unwind(|| in_netns(here, || panic!("boom")));
        assert!(panicked.is_err());
    });
}

#[test]
fn a_deleted_device_reads_and_writes_as_gone() {
    in_private_netns(|| {
        let tap = Tap::create(&TapConfig::new("eth0")).expect("create eth0");
        runtime().block_on(async move {
            let port = tap.into_async().expect("register");
            ip(&["link", "del", "dev", "eth0"]);
            let mut buf = vec![0u8; MAX_READ_LEN];
            let wait_for_error = async {
                loop {
                    port.readable().await.expect("readable");
                    match port.try_read(&mut buf) {
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => return e,
                    }
                }
            };
            let err = tokio::time::timeout(WAIT, wait_for_error)
                .await
                .expect("readable() did not wake up when the device was deleted");
            assert_eq!(IoFailure::of(&err), IoFailure::Gone, "{err}");
            assert_eq!(err.raw_os_error(), Some(libc::EBADFD));
            let err = port
                .try_write(&[0u8; 64])
                .expect_err("wrote to a deleted TAP");
            assert_eq!(IoFailure::of(&err), IoFailure::Gone, "{err}");
            assert!(matches!(port.info(), Err(TapError::GetIff { .. })));
        });
    });
}

#[test]
fn an_open_tap_keeps_its_namespace_alive() {
    // The only thread in the namespace ends here; the descriptor is all that is left.
    let tap = in_private_netns(|| Tap::create(&TapConfig::new("eth0")).expect("create eth0"));
    thread::sleep(Duration::from_millis(200));
    let info = tap
        .info()
        .expect("the TAP lost its device once its namespace had no threads left");
    assert_eq!(info.name, "eth0");
    // Dropping `tap` deletes the device and releases the namespace.
}

#[rstest]
#[case::empty("")]
#[case::too_long("abcdefghijklmnop")]
#[case::dot(".")]
#[case::dotdot("..")]
#[case::slash("a/b")]
#[case::colon("eth0:1")]
#[case::template("eth%d")]
#[case::space("eth 0")]
#[case::tab("eth\t0")]
#[case::nul("eth\0")]
fn invalid_names_are_refused_before_any_syscall(#[case] name: &str) {
    let err = Tap::create(&TapConfig::new(name)).expect_err("accepted an invalid name");
    assert!(matches!(err, TapError::InvalidName { .. }), "{err:?}");
}

#[test]
fn offloads_without_a_vnet_header_are_refused() {
    let config = TapConfig {
        vnet_hdr: false,
        ..TapConfig::new("eth0")
    };
    assert!(matches!(
        Tap::create(&config),
        Err(TapError::OffloadsNeedVnetHdr { .. })
    ));
}

#[rstest]
#[case::eagain(libc::EAGAIN, IoFailure::WouldBlock)]
#[case::eio(libc::EIO, IoFailure::Down)]
#[case::ebadfd(libc::EBADFD, IoFailure::Gone)]
#[case::einval(libc::EINVAL, IoFailure::Rejected)]
#[case::enomem(libc::ENOMEM, IoFailure::Other)]
fn io_failures_are_classified(#[case] errno: i32, #[case] want: IoFailure) {
    assert_eq!(IoFailure::of(&io::Error::from_raw_os_error(errno)), want);
}
