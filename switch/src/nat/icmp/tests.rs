//! ICMP echo translation against the loopback, through a raw socket (the tests run as root)
//! and, in a private network namespace that allows them, through ping sockets.

use std::net::Ipv4Addr;
use std::process::Command;
use std::thread;
use std::time::Duration;

use etherparse::{IpNumber, Ipv4Slice};
use nix::sched::{CloneFlags, unshare};

use super::*;
use crate::nat::GatewayFrame;
use crate::nat::udp::testkit::{C, GW, Harness, config, frame, ingress};

const OTHER: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 3);

fn echo_frame(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16, data: &[u8]) -> GatewayFrame {
    frame(|b| {
        let mut v = Vec::new();
        b.ipv4(src.octets(), dst.octets(), 64)
            .icmpv4_echo_request(id, seq)
            .write(&mut v, data)
            .unwrap();
        v
    })
}

/// Sends an echo request from `src` to `dst` past routing (which refuses the loopback).
fn ping(nat: &mut IcmpNat, h: &Harness, src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16) {
    let f = echo_frame(src, dst, id, seq, b"netloom echo data");
    let i = ingress(&f);
    nat.echo(
        &h.ctx(),
        &i,
        dst,
        IcmpEchoHeader { id, seq },
        b"netloom echo data",
    );
}

/// Feeds events to `nat` until `n` packets went to containers.
async fn replies(nat: &mut IcmpNat, h: &mut Harness, n: usize) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    while sent.len() < n {
        let Event::Icmp(event) = h.event().await else {
            panic!("not an ICMP event")
        };
        nat.on_event(&h.ctx(), event);
        sent.extend(h.sent());
    }
    sent
}

/// Checks an echo reply to a container: (source, destination, id, seq), data and checksums.
fn parse_reply(packet: &[u8]) -> (Ipv4Addr, Ipv4Addr, u16, u16) {
    let ip = Ipv4Slice::from_slice(packet).unwrap();
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(h.protocol, IpNumber::ICMP);
    let icmp = Icmpv4Slice::from_slice(ip.payload().payload).unwrap();
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload()),
        "ICMP checksum"
    );
    let Icmpv4Type::EchoReply(echo) = icmp.icmp_type() else {
        panic!("not an echo reply: {:?}", icmp.icmp_type())
    };
    assert_eq!(icmp.payload(), b"netloom echo data");
    (
        ip.header().source_addr(),
        ip.header().destination_addr(),
        echo.id,
        echo.seq,
    )
}

/// Runs `f` on a tokio runtime on a new thread inside a new network namespace with its
/// loopback up and `ping_group_range` set to `range`.
fn in_private_netns(range: &str, f: impl AsyncFnOnce() + Send) {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET)
                    .expect("unshare(CLONE_NEWNET) failed: the ICMP tests must run as root");
                let up = Command::new("ip")
                    .args(["link", "set", "lo", "up"])
                    .status()
                    .unwrap();
                assert!(up.success());
                // /proc/sys/net belongs to the namespace of the thread that opens it.
                std::fs::write("/proc/sys/net/ipv4/ping_group_range", range).unwrap();
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(f());
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
}

#[tokio::test]
async fn raw_socket_flows_are_told_apart_by_identifier() {
    let mut h = Harness::new(config());
    let mut nat = IcmpNat::new(&h.config);
    nat.backend = nat.raw_backend(&h.ctx());
    assert!(
        matches!(nat.backend, Backend::Raw { .. }),
        "needs CAP_NET_RAW"
    );
    // Two containers using the same identifier toward the same destination.
    ping(&mut nat, &h, C, Ipv4Addr::LOCALHOST, 0x1234, 7);
    ping(&mut nat, &h, OTHER, Ipv4Addr::LOCALHOST, 0x1234, 9);
    assert_eq!(h.gauges.icmp_flows.load(Ordering::Relaxed), 2);
    assert_eq!(nat.idents.len(), 2);
    let mut got: Vec<_> = replies(&mut nat, &mut h, 2)
        .await
        .iter()
        .map(|p| parse_reply(p))
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            (Ipv4Addr::LOCALHOST, C, 0x1234, 7),
            (Ipv4Addr::LOCALHOST, OTHER, 0x1234, 9),
        ]
    );
    assert!(h.drops().is_empty());
}

#[test]
fn ping_sockets_are_preferred_where_allowed() {
    in_private_netns("0 0", async || {
        let mut h = Harness::new(config());
        let mut nat = IcmpNat::new(&h.config);
        ping(&mut nat, &h, C, Ipv4Addr::LOCALHOST, 0x4242, 1);
        assert!(matches!(nat.backend, Backend::Ping), "{:?}", nat.backend);
        let reply = replies(&mut nat, &mut h, 1).await;
        // The kernel chose the identifier on the wire; the container gets its own back.
        assert_eq!(parse_reply(&reply[0]), (Ipv4Addr::LOCALHOST, C, 0x4242, 1));
        ping(&mut nat, &h, C, Ipv4Addr::LOCALHOST, 0x4242, 2);
        let reply = replies(&mut nat, &mut h, 1).await;
        assert_eq!(parse_reply(&reply[0]).3, 2);
        assert_eq!(nat.flows.len(), 1);
    });
}

#[test]
fn falls_back_to_a_raw_socket_and_closes_it_when_idle() {
    in_private_netns("1 0", async || {
        let mut h = Harness::new(config());
        let mut nat = IcmpNat::new(&h.config);
        let t0 = Instant::now();
        ping(&mut nat, &h, C, Ipv4Addr::LOCALHOST, 3, 1);
        assert!(
            matches!(nat.backend, Backend::Raw { .. }),
            "{:?}",
            nat.backend
        );
        let reply = replies(&mut nat, &mut h, 1).await;
        assert_eq!(parse_reply(&reply[0]), (Ipv4Addr::LOCALHOST, C, 3, 1));
        // 30 s without a request or reply.
        let next = nat.poll(&h.ctx_at(t0));
        assert!(next.is_some_and(|t| t > t0 + Duration::from_secs(29)));
        assert_eq!(nat.poll(&h.ctx_at(t0 + Duration::from_secs(60))), None);
        assert!(nat.flows.is_empty() && nat.idents.is_empty() && nat.ids.is_empty());
        assert_eq!(h.gauges.icmp_flows.load(Ordering::Relaxed), 0);
        assert!(matches!(nat.backend, Backend::Untried));
    });
}

#[tokio::test]
async fn the_flow_limit_is_per_container() {
    let mut config = config();
    config.limits.icmp_per_container = 1;
    let h = Harness::new(config);
    let mut nat = IcmpNat::new(&h.config);
    nat.backend = nat.raw_backend(&h.ctx());
    ping(&mut nat, &h, C, Ipv4Addr::LOCALHOST, 1, 1);
    ping(&mut nat, &h, C, Ipv4Addr::LOCALHOST, 1, 2);
    assert!(h.drops().is_empty(), "the same flow");
    ping(&mut nat, &h, C, Ipv4Addr::LOCALHOST, 2, 1);
    assert_eq!(h.drops(), [DropReason::NatFlowLimit]);
    ping(&mut nat, &h, OTHER, Ipv4Addr::LOCALHOST, 2, 1);
    assert!(h.drops().is_empty(), "another container's budget");
}

#[tokio::test]
async fn echo_follows_the_routing_rules() {
    let h = Harness::new(config());
    let mut nat = IcmpNat::new(&h.config);
    for (dst, reason) in [
        (Ipv4Addr::LOCALHOST, DropReason::NatUnsupported),
        (Ipv4Addr::new(172, 19, 0, 5), DropReason::NatIsolated),
        (Ipv4Addr::new(172, 18, 0, 9), DropReason::NatUnsupported),
        (Ipv4Addr::new(224, 0, 0, 1), DropReason::NatUnsupported),
        (GW, DropReason::NatUnsupported),
    ] {
        nat.on_packet(&h.ctx(), &ingress(&echo_frame(C, dst, 1, 1, b"x")));
        assert_eq!(h.drops(), [reason], "{dst}");
    }
    let internal = Harness::new(NatConfig {
        internal: true,
        ..config()
    });
    let outside = Ipv4Addr::new(198, 18, 0, 1);
    nat.on_packet(
        &internal.ctx(),
        &ingress(&echo_frame(C, outside, 1, 1, b"x")),
    );
    assert_eq!(internal.drops(), [DropReason::NatInternal]);
    assert!(nat.flows.is_empty());
    assert!(matches!(nat.backend, Backend::Untried), "no socket opened");
}

#[tokio::test]
async fn only_echo_requests_are_translated() {
    let h = Harness::new(config());
    let mut nat = IcmpNat::new(&h.config);
    let outside = Ipv4Addr::new(198, 18, 0, 1);
    let reply = frame(|b| {
        let mut v = Vec::new();
        b.ipv4(C.octets(), outside.octets(), 64)
            .icmpv4_echo_reply(1, 1)
            .write(&mut v, b"x")
            .unwrap();
        v
    });
    nat.on_packet(&h.ctx(), &ingress(&reply));
    let truncated = frame(|b| {
        let mut v = Vec::new();
        b.ipv4(C.octets(), outside.octets(), 64)
            .write(&mut v, IpNumber::ICMP, &[8, 0, 0])
            .unwrap();
        v
    });
    nat.on_packet(&h.ctx(), &ingress(&truncated));
    assert_eq!(
        h.drops(),
        [DropReason::NatUnsupported, DropReason::NatMalformed]
    );
    assert!(h.sent().is_empty());
}

#[test]
fn unreachable_messages_quote_the_packet() {
    let quoted: Vec<u8> = (0..28).collect();
    let mut out = Vec::new();
    write_unreachable(&mut out, Unreachable::Port, &quoted);
    let icmp = Icmpv4Slice::from_slice(&out).unwrap();
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (3, 3));
    assert_eq!(icmp.payload(), quoted);
    assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(&quoted));
    write_unreachable(&mut out, Unreachable::Net, &quoted);
    assert_eq!(Icmpv4Slice::from_slice(&out).unwrap().code_u8(), 0);
}
