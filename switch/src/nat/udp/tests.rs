//! UDP translation against real sockets on 127.0.0.1.

use std::net::{SocketAddrV4, UdpSocket as StdUdpSocket};
use std::time::Duration;

use etherparse::{IpNumber, Ipv4Slice, SlicedPacket, TransportSlice};

use super::testkit::{C, GW, Harness, config, ingress, udp_frame};
use super::*;

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// A loopback UDP server answering each datagram with `reply(datagram)`.
async fn server(reply: fn(&[u8]) -> Vec<u8>) -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = s.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&reply(&buf[..n]), from).await;
        }
    });
    port
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    StdUdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Parses a UDP packet sent to a container, checking its IP and UDP checksums.
fn parse_udp(packet: &[u8]) -> (SocketAddrV4, SocketAddrV4, Vec<u8>) {
    let sliced = SlicedPacket::from_ip(packet).expect("an IP packet");
    let Some(etherparse::NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IP checksum");
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        panic!("not UDP")
    };
    let header = udp.to_header();
    assert_eq!(
        header.checksum,
        header
            .calc_checksum_ipv4_raw(h.source, h.destination, udp.payload())
            .unwrap(),
        "UDP checksum"
    );
    (
        sa(h.source.into(), header.source_port),
        sa(h.destination.into(), header.destination_port),
        udp.payload().to_vec(),
    )
}

/// Parses an ICMP destination unreachable sent to a container: source, destination, code
/// and the quoted packet; checks the checksum.
fn parse_unreachable(packet: &[u8]) -> (Ipv4Addr, Ipv4Addr, u8, Vec<u8>) {
    let ip = Ipv4Slice::from_slice(packet).unwrap();
    assert_eq!(ip.header().protocol(), IpNumber::ICMP);
    let icmp = etherparse::Icmpv4Slice::from_slice(ip.payload().payload).unwrap();
    assert_eq!(icmp.type_u8(), 3, "destination unreachable");
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload()),
        "ICMP checksum"
    );
    (
        ip.header().source_addr(),
        ip.header().destination_addr(),
        icmp.code_u8(),
        icmp.payload().to_vec(),
    )
}

fn host_loopback() -> NatConfig {
    NatConfig {
        host_loopback: true,
        ..config()
    }
}

#[tokio::test]
async fn echo_round_trip_keeps_the_containers_view_of_addresses() {
    let port = server(|d| [b"re: ", d].concat()).await;
    let mut h = Harness::new(host_loopback());
    let mut nat = UdpNat::new(&h.config);
    let f = udp_frame(sa(C, 40000), sa(GW, port), b"hello");
    nat.on_packet(&h.ctx(), &ingress(&f));
    assert_eq!(h.gauges.udp_flows.load(Ordering::Relaxed), 1);
    let event = h.event().await;
    let Event::Udp(event) = event else { panic!() };
    nat.on_event(&h.ctx(), event);
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    // From the address the container sent to (not 127.0.0.1), to its own port.
    assert_eq!(
        parse_udp(&sent[0]),
        (sa(GW, port), sa(C, 40000), b"re: hello".to_vec())
    );
    // The same flow carries the next datagram.
    let f = udp_frame(sa(C, 40000), sa(GW, port), b"again");
    nat.on_packet(&h.ctx(), &ingress(&f));
    let Event::Udp(event) = h.event().await else {
        panic!()
    };
    nat.on_event(&h.ctx(), event);
    assert_eq!(parse_udp(&h.sent()[0]).2, b"re: again");
    assert_eq!(nat.out.len(), 1);
    assert!(h.drops().is_empty());
}

#[tokio::test]
async fn dns_to_the_gateway_goes_to_the_dns_server() {
    let port = server(|q| [q, b" answered"].concat()).await;
    let mut h = Harness::new(NatConfig {
        dns: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        ..config()
    });
    let mut nat = UdpNat::new(&h.config);
    let f = udp_frame(sa(C, 5353), sa(GW, 53), b"query");
    nat.on_packet(&h.ctx(), &ingress(&f));
    let Event::Udp(event) = h.event().await else {
        panic!()
    };
    nat.on_event(&h.ctx(), event);
    assert_eq!(
        parse_udp(&h.sent()[0]),
        (sa(GW, 53), sa(C, 5353), b"query answered".to_vec())
    );
}

#[tokio::test]
async fn a_closed_gateway_port_answers_port_unreachable() {
    let h = Harness::new(config());
    let mut nat = UdpNat::new(&h.config);
    let f = udp_frame(sa(C, 40000), sa(GW, 9999), b"anyone?");
    let i = ingress(&f);
    nat.on_packet(&h.ctx(), &i);
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    let (src, dst, code, quoted) = parse_unreachable(&sent[0]);
    assert_eq!((src, dst, code), (GW, C, 3));
    // RFC 792: the IP header and the first 8 bytes of the datagram.
    assert_eq!(quoted, &i.packet[..28]);
    assert_eq!(nat.out.len(), 0);
}

#[tokio::test]
async fn a_refusal_from_the_far_side_reaches_the_container_and_keeps_the_flow() {
    let port = closed_port();
    let mut h = Harness::new(host_loopback());
    let mut nat = UdpNat::new(&h.config);
    let f = udp_frame(sa(C, 40001), sa(GW, port), b"knock");
    nat.on_packet(&h.ctx(), &ingress(&f));
    // The loopback's ICMP port unreachable comes back as ECONNREFUSED, on the flow task's
    // receive (or, racing it, on the next send).
    let Event::Udp(event) = h.event().await else {
        panic!()
    };
    assert!(matches!(event, UdpEvent::Refused { .. }), "{event:?}");
    nat.on_event(&h.ctx(), event);
    let sent = h.sent();
    let (src, dst, code, quoted) = parse_unreachable(&sent[0]);
    assert_eq!((src, dst, code), (GW, C, 3));
    let quoted_ip = etherparse::Ipv4HeaderSlice::from_slice(&quoted).expect("a quoted IP header");
    assert_eq!(quoted_ip.source_addr(), C);
    assert_eq!(quoted_ip.destination_addr(), GW);
    assert_eq!(quoted_ip.total_len(), 20 + 8 + 5);
    let udp = &quoted[20..28];
    assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), 40001);
    assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), port);
    assert_eq!(u16::from_be_bytes([udp[4], udp[5]]), 8 + 5);
    assert_eq!(nat.out.len(), 1, "the flow stays");
}

#[tokio::test]
async fn flows_expire_unreplied_then_replied() {
    let port = server(|d| d.to_vec()).await;
    let mut h = Harness::new(host_loopback());
    let mut nat = UdpNat::new(&h.config);
    let t0 = Instant::now();
    // Unreplied: 30 s.
    let f = udp_frame(sa(C, 1000), sa(GW, closed_port()), b"x");
    nat.on_packet(&h.ctx_at(t0), &ingress(&f));
    // Replied: 180 s of idleness.
    let f = udp_frame(sa(C, 1001), sa(GW, port), b"y");
    nat.on_packet(&h.ctx_at(t0), &ingress(&f));
    loop {
        let Event::Udp(event) = h.event().await else {
            panic!()
        };
        if matches!(event, UdpEvent::Reply { .. }) {
            nat.on_event(&h.ctx_at(t0), event);
            break;
        }
    }
    assert_eq!(h.gauges.udp_flows.load(Ordering::Relaxed), 2);
    assert_eq!(nat.poll(&h.ctx_at(t0)), Some(t0 + Duration::from_secs(30)));
    let next = nat.poll(&h.ctx_at(t0 + Duration::from_secs(31)));
    assert_eq!(h.gauges.udp_flows.load(Ordering::Relaxed), 1);
    assert_eq!(next, Some(t0 + Duration::from_secs(180)));
    assert!(nat.out.contains_key(&(sa(C, 1001), sa(GW, port))));
    assert_eq!(nat.poll(&h.ctx_at(t0 + Duration::from_secs(181))), None);
    assert_eq!(h.gauges.udp_flows.load(Ordering::Relaxed), 0);
    assert!(nat.flows.is_empty() && nat.per_container.is_empty());
}

#[tokio::test]
async fn traffic_pushes_expiry_back() {
    let h = Harness::new(host_loopback());
    let mut nat = UdpNat::new(&h.config);
    let t0 = Instant::now();
    let dst = sa(GW, closed_port());
    let f = udp_frame(sa(C, 1000), dst, b"x");
    nat.on_packet(&h.ctx_at(t0), &ingress(&f));
    let t1 = t0 + Duration::from_secs(20);
    nat.on_packet(&h.ctx_at(t1), &ingress(&f));
    assert_eq!(
        nat.poll(&h.ctx_at(t0 + Duration::from_secs(31))),
        Some(t1 + Duration::from_secs(30))
    );
    assert_eq!(nat.out.len(), 1);
}

#[tokio::test]
async fn the_flow_limit_is_per_container() {
    let mut config = host_loopback();
    config.limits.udp_per_container = 2;
    let h = Harness::new(config);
    let mut nat = UdpNat::new(&h.config);
    let dst = sa(GW, closed_port());
    for port in [1, 2, 3] {
        nat.on_packet(&h.ctx(), &ingress(&udp_frame(sa(C, port), dst, b"x")));
    }
    assert_eq!(h.drops(), [DropReason::NatFlowLimit]);
    assert_eq!(nat.out.len(), 2);
    // An existing flow still works, and another container has its own budget.
    nat.on_packet(&h.ctx(), &ingress(&udp_frame(sa(C, 1), dst, b"x")));
    let other = Ipv4Addr::new(172, 18, 0, 3);
    nat.on_packet(&h.ctx(), &ingress(&udp_frame(sa(other, 1), dst, b"x")));
    assert!(h.drops().is_empty());
    assert_eq!(nat.out.len(), 3);
}

#[tokio::test]
async fn refused_destinations_are_counted() {
    let h = Harness::new(config());
    let mut nat = UdpNat::new(&h.config);
    for (dst, reason) in [
        (sa(Ipv4Addr::LOCALHOST, 53), DropReason::NatUnsupported),
        (
            sa(Ipv4Addr::new(172, 19, 0, 5), 53),
            DropReason::NatIsolated,
        ),
        (
            sa(Ipv4Addr::new(224, 0, 0, 251), 5353),
            DropReason::NatUnsupported,
        ),
    ] {
        nat.on_packet(&h.ctx(), &ingress(&udp_frame(sa(C, 1), dst, b"x")));
        assert_eq!(h.drops(), [reason], "{dst}");
    }
    assert!(h.sent().is_empty());
}

#[tokio::test]
async fn published_port_round_trip_masquerades_a_loopback_client() {
    let mut h = Harness::new(config());
    let mut nat = UdpNat::new(&h.config);
    let published = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let public = published.local_addr().unwrap();
    let target = sa(C, 7000);
    nat.publish(&h.ctx(), PublishId(1), target, published);
    assert_eq!(h.gauges.published.load(Ordering::Relaxed), 1);

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"ping", public).await.unwrap();
    let Event::Udp(event) = h.event().await else {
        panic!()
    };
    nat.on_event(&h.ctx(), event);
    let (from, to, data) = parse_udp(&h.sent()[0]);
    assert_eq!((to, data.as_slice()), (target, &b"ping"[..]));
    // A loopback client cannot be answered by the container: the gateway stands in.
    assert_eq!(*from.ip(), GW);
    assert!(MASK_PORTS.contains(&from.port()));
    assert_eq!(h.gauges.udp_flows.load(Ordering::Relaxed), 1);

    // The container's reply goes back to the client through the published socket, not
    // through outbound NAT.
    nat.on_packet(&h.ctx(), &ingress(&udp_frame(target, from, b"pong")));
    let mut buf = [0; 16];
    let (n, sender) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&buf[..n], sender), (&b"pong"[..], public));
    assert!(nat.out.is_empty());
    assert!(h.drops().is_empty());

    // The same client keeps its gateway port.
    client.send_to(b"again", public).await.unwrap();
    let Event::Udp(event) = h.event().await else {
        panic!()
    };
    nat.on_event(&h.ctx(), event);
    assert_eq!(parse_udp(&h.sent()[0]).0, from);

    nat.unpublish(&h.ctx(), PublishId(1));
    assert_eq!(h.gauges.published.load(Ordering::Relaxed), 0);
    assert_eq!(h.gauges.udp_flows.load(Ordering::Relaxed), 0);
    assert!(nat.masked.is_empty() && nat.clients.is_empty());
    // The socket is closed: its port can be bound again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    StdUdpSocket::bind(public).expect("the published socket was closed");
}

#[tokio::test]
async fn inbound_flows_expire() {
    let mut h = Harness::new(config());
    let mut nat = UdpNat::new(&h.config);
    let published = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let public = published.local_addr().unwrap();
    nat.publish(&h.ctx(), PublishId(1), sa(C, 7000), published);
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"ping", public).await.unwrap();
    let t0 = Instant::now();
    let Event::Udp(event) = h.event().await else {
        panic!()
    };
    nat.on_event(&h.ctx_at(t0), event);
    assert_eq!(nat.inbound.len(), 1);
    nat.poll(&h.ctx_at(t0 + Duration::from_secs(31)));
    assert!(nat.inbound.is_empty() && nat.masked.is_empty());
    assert_eq!(nat.published[&SockId(1)].flows, 0);
}

#[test]
fn clients_keep_their_address_when_the_container_can_answer_it() {
    let c = config();
    let v4 = |s: &str| -> SocketAddr { s.parse().unwrap() };
    assert_eq!(
        visible_peer(&c, v4("198.18.5.5:4000")),
        Some(sa(Ipv4Addr::new(198, 18, 5, 5), 4000))
    );
    assert_eq!(
        visible_peer(&c, v4("[::ffff:198.18.5.5]:4000")),
        Some(sa(Ipv4Addr::new(198, 18, 5, 5), 4000))
    );
    for masked in [
        "127.0.0.1:4000",
        "127.3.0.1:4000",
        "172.18.0.9:4000",
        "[::1]:4000",
        "[2001:db8::1]:4000",
        "[::ffff:127.0.0.1]:4000",
    ] {
        assert_eq!(visible_peer(&c, v4(masked)), None, "{masked}");
    }
}

#[tokio::test]
async fn large_datagrams_are_fragmented_to_the_mtu() {
    let h = Harness::new(NatConfig {
        mtu: 576,
        ..config()
    });
    let mut nat = UdpNat::new(&h.config);
    let payload: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
    nat.send_udp(&h.ctx(), None, sa(GW, 53), sa(C, 5353), &payload);
    let sent = h.sent();
    assert_eq!(sent.len(), 4);
    let mut transport = Vec::new();
    for (i, packet) in sent.iter().enumerate() {
        assert!(packet.len() <= 576);
        let ip = Ipv4Slice::from_slice(packet).unwrap();
        let header = ip.header().to_header();
        assert_eq!(header.header_checksum, header.calc_header_checksum());
        assert_eq!(
            usize::from(header.fragment_offset.byte_offset()),
            transport.len()
        );
        assert_eq!(header.more_fragments, i + 1 < sent.len());
        assert!(!header.dont_fragment);
        transport.extend_from_slice(ip.payload().payload);
    }
    let udp = UdpSlice::from_slice(&transport).unwrap();
    assert_eq!(udp.payload(), payload);
    let header = udp.to_header();
    assert_eq!(
        header.checksum,
        header
            .calc_checksum_ipv4_raw(GW.octets(), C.octets(), &payload)
            .unwrap()
    );
}
