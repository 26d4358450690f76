//! The translator against real loopback sockets on the host side and, on the container side,
//! either crafted segments or a second smoltcp stack standing in for the container's kernel.

use std::collections::VecDeque;
use std::sync::Mutex;

use arc_swap::ArcSwap;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use smoltcp::iface::Interface;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::forward::PortId;
use crate::frame::MacAddr;
use crate::gateway::GatewayAddr;
use crate::nat::{GatewayFrame, Limits, NatGauges, Neighbor, Subnets, Timeouts};

const GW: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 1);
const C: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
const C_MAC: [u8; 6] = [0x02, 0x42, 172, 18, 0, 2];
const C_PORT: PortId = PortId(7);

/// Records what the gateway sends and drops.
#[derive(Debug, Default)]
struct FakeEgress {
    sent: Mutex<Vec<(Vec<u8>, TxOffload)>>,
    drops: Mutex<Vec<DropReason>>,
}

impl Egress for FakeEgress {
    fn neighbor(&self, ip: Ipv4Addr) -> Option<Neighbor> {
        (ip == C).then_some(Neighbor {
            mac: MacAddr(C_MAC),
            port: C_PORT,
        })
    }

    fn send(&self, buf: &mut [u8], offload: TxOffload) {
        self.sent
            .lock()
            .unwrap()
            .push((buf[HEADROOM..].to_vec(), offload));
    }

    fn drop_frame(&self, _port: Option<PortId>, reason: DropReason) {
        self.drops.lock().unwrap().push(reason);
    }
}

fn config(host_loopback: bool, limit: usize) -> NatConfig {
    let subnets: Subnets = Arc::new(ArcSwap::from_pointee(vec![(
        Ipv4Addr::new(172, 18, 0, 0),
        16,
    )]));
    NatConfig {
        gateway: GatewayAddr::derived(GW),
        subnet: Ipv4Addr::new(172, 18, 0, 0),
        prefix: 16,
        mtu: 1500,
        internal: false,
        host_loopback,
        dns: None,
        subnets,
        timeouts: Timeouts::default(),
        limits: Limits {
            tcp_per_container: limit,
            ..Limits::default()
        },
    }
}

/// A gateway's TCP translator with everything its task would give it.
struct Harness {
    nat: TcpNat,
    config: NatConfig,
    egress: Arc<FakeEgress>,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    gauges: NatGauges,
    cancel: CancellationToken,
    next: Option<Instant>,
}

impl Harness {
    fn new(host_loopback: bool, limit: usize) -> Harness {
        let config = config(host_loopback, limit);
        let (events_tx, events) = mpsc::channel(super::super::EVENT_QUEUE);
        Harness {
            nat: TcpNat::new(&config),
            config,
            egress: Arc::new(FakeEgress::default()),
            events_tx,
            events,
            gauges: NatGauges::default(),
            cancel: CancellationToken::new(),
            next: None,
        }
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut TcpNat, &Ctx<'_>) -> R) -> R {
        let ctx = Ctx {
            config: &self.config,
            egress: &*self.egress,
            events: &self.events_tx,
            gauges: &self.gauges,
            cancel: &self.cancel,
            now: Instant::now(),
        };
        let r = f(&mut self.nat, &ctx);
        self.next = self.nat.poll(&ctx);
        r
    }

    /// Hands the gateway an IPv4 packet from the container, as the port task would.
    fn packet(&mut self, ip: &[u8]) {
        let mut data = vec![0u8; VNET_HDR];
        data.extend_from_slice(&GW_MAC);
        data.extend_from_slice(&C_MAC);
        data.extend_from_slice(&[0x08, 0x00]);
        data.extend_from_slice(ip);
        let frame = GatewayFrame { port: C_PORT, data };
        let ingress = crate::nat::parse(&frame).expect("a valid frame");
        self.with(|nat, ctx| nat.on_packet(ctx, &ingress));
    }

    /// Handles every event already queued.
    fn events(&mut self) {
        while let Ok(Event::Tcp(e)) = self.events.try_recv() {
            self.with(|nat, ctx| nat.on_event(ctx, e));
        }
    }

    /// Waits a little for events (letting the flow tasks run), handles them, runs timers.
    async fn turn(&mut self) {
        let wait = tokio::time::timeout(Duration::from_millis(2), self.events.recv()).await;
        if let Ok(Some(Event::Tcp(e))) = wait {
            self.with(|nat, ctx| nat.on_event(ctx, e));
        }
        self.events();
        self.with(|_, _| ());
    }

    fn sent(&self) -> Vec<(Vec<u8>, TxOffload)> {
        std::mem::take(&mut *self.egress.sent.lock().unwrap())
    }

    fn drops(&self) -> Vec<DropReason> {
        self.egress.drops.lock().unwrap().clone()
    }

    fn flows(&self) -> usize {
        self.gauges.tcp_flows.load(Ordering::Relaxed)
    }
}

const VNET_HDR: usize = crate::vnet::VNET_HDR_LEN;
const GW_MAC: [u8; 6] = [0x02, 0x42, 172, 18, 0, 1];

/// A TCP segment from the container.
fn segment(
    src_port: u16,
    dst: SocketAddrV4,
    seq: u32,
    flags: &str,
    ack: Option<u32>,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(C.octets(), dst.ip().octets(), 64).tcp(
        src_port,
        dst.port(),
        seq,
        64240,
    );
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('R') {
        b = b.rst();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    if flags.contains('S') {
        b = b
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// The TCP header fields of a packet the gateway sent.
#[derive(Debug)]
struct Seen {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    syn: bool,
    ack: Option<u32>,
    rst: bool,
    seq: u32,
    payload: Vec<u8>,
    mss: Option<u16>,
}

fn tcp_of(packet: &[u8]) -> Option<Seen> {
    let sliced = SlicedPacket::from_ip(packet).ok()?;
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        return None;
    };
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return None;
    };
    let h = ip.header();
    let mss = tcp.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
        _ => None,
    });
    Some(Seen {
        src: SocketAddrV4::new(h.source_addr(), tcp.source_port()),
        dst: SocketAddrV4::new(h.destination_addr(), tcp.destination_port()),
        syn: tcp.syn(),
        ack: tcp.ack().then(|| tcp.acknowledgment_number()),
        rst: tcp.rst(),
        seq: tcp.sequence_number(),
        payload: tcp.payload().to_vec(),
        mss,
    })
}

/// What the container's kernel does with a packet sent with `NEEDS_CSUM`: the one's
/// complement sum from the TCP header on, added to what the field holds (the pseudo-header
/// sum), written back.
fn complete_checksum(p: &mut [u8]) {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let sum = Sum16BitWords::new()
        .add_slice(&p[ihl..])
        .ones_complement()
        .to_be();
    p[ihl + 16..ihl + 18].copy_from_slice(&sum.to_be_bytes());
}

/// Checks a packet's IPv4 and TCP checksums, as the container's kernel would.
fn checksums_ok(packet: &[u8]) -> bool {
    let ip = Ipv4HeaderSlice::from_slice(packet).unwrap();
    if ip.to_header().calc_header_checksum() != ip.header_checksum() {
        return false;
    }
    let sliced = SlicedPacket::from_ip(packet).unwrap();
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return true;
    };
    let expected = tcp
        .to_header()
        .calc_checksum_ipv4_raw(ip.source(), ip.destination(), tcp.payload())
        .unwrap();
    expected == tcp.checksum()
}

async fn host_listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn syn_ack_comes_back_once_the_host_connect_succeeds() {
    let (listener, port) = host_listener().await;
    let mut h = Harness::new(true, 16);
    let dst = SocketAddrV4::new(GW, port);
    let syn = segment(40000, dst, 1000, "S", None, b"");
    h.packet(&syn);
    // Nothing yet: the host connection is being opened, and a retransmitted SYN is dropped.
    assert!(h.sent().is_empty());
    h.packet(&syn);
    assert_eq!(h.drops(), vec![DropReason::NatConnecting]);
    assert_eq!(h.flows(), 1);
    let accept = tokio::spawn(async move { listener.accept().await.unwrap() });
    let mut synack = None;
    for _ in 0..500 {
        h.turn().await;
        if let Some((mut p, offload)) = h.sent().into_iter().next() {
            assert_eq!(offload, TxOffload::Checksum);
            complete_checksum(&mut p);
            synack = Some(p);
            break;
        }
    }
    let p = synack.expect("a SYN-ACK");
    assert!(checksums_ok(&p));
    let seen = tcp_of(&p).unwrap();
    assert!(seen.syn && !seen.rst, "{seen:?}");
    assert_eq!(seen.src, dst);
    assert_eq!(seen.dst, SocketAddrV4::new(C, 40000));
    assert_eq!(seen.ack, Some(1001));
    // Complete the handshake and send data by hand.
    let seq = seen.seq.wrapping_add(1);
    h.packet(&segment(40000, dst, 1001, "", Some(seq), b"hello"));
    let (mut host, peer) = accept.await.unwrap();
    assert!(peer.ip().is_loopback());
    let mut buf = [0u8; 5];
    let read = tokio::spawn(async move {
        host.read_exact(&mut buf).await.unwrap();
        (host, buf)
    });
    let mut done = None;
    for _ in 0..500 {
        h.turn().await;
        if read.is_finished() {
            done = Some(read.await.unwrap());
            break;
        }
    }
    let (mut host, buf) = done.expect("the host got the data");
    assert_eq!(&buf, b"hello");
    // Host → container.
    host.write_all(b"world").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..500 {
        h.turn().await;
        for (p, _) in h.sent() {
            let s = tcp_of(&p).unwrap();
            got.extend_from_slice(&s.payload);
        }
        if got.len() >= 5 {
            break;
        }
    }
    assert_eq!(got, b"world");
}

#[tokio::test]
async fn refused_host_connect_resets_the_container() {
    let port = closed_port();
    let mut h = Harness::new(true, 16);
    let dst = SocketAddrV4::new(GW, port);
    h.packet(&segment(40001, dst, 5000, "S", None, b""));
    let mut rst = None;
    for _ in 0..500 {
        h.turn().await;
        if let Some((mut p, offload)) = h.sent().into_iter().next() {
            assert_eq!(offload, TxOffload::Checksum);
            complete_checksum(&mut p);
            rst = Some(p);
            break;
        }
    }
    let p = rst.expect("a RST");
    assert!(checksums_ok(&p));
    let seen = tcp_of(&p).unwrap();
    assert!(seen.rst, "{seen:?}");
    assert_eq!(seen.src, dst);
    assert_eq!(seen.ack, Some(5001));
    assert_eq!(h.flows(), 0);
}

#[tokio::test]
async fn a_closed_gateway_port_is_reset_at_once() {
    let mut h = Harness::new(false, 16);
    let dst = SocketAddrV4::new(GW, 8080);
    h.packet(&segment(40002, dst, 7, "S", None, b""));
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    let seen = tcp_of(&sent[0].0).unwrap();
    assert!(seen.rst && seen.ack == Some(8), "{seen:?}");
    assert_eq!(h.flows(), 0);
    // A segment of no connection is reset too; a RST is not answered (RFC 9293 3.10.7.1).
    h.packet(&segment(40002, dst, 7, "", Some(99), b"x"));
    assert!(tcp_of(&h.sent()[0].0).unwrap().rst);
    h.packet(&segment(40002, dst, 7, "R", None, b""));
    assert!(h.sent().is_empty());
}

#[tokio::test]
async fn routes_that_drop_are_counted() {
    let mut h = Harness::new(false, 16);
    // Another container on the same network: never via the gateway.
    h.packet(&segment(
        40003,
        SocketAddrV4::new(Ipv4Addr::new(172, 18, 0, 9), 80),
        1,
        "S",
        None,
        b"",
    ));
    assert_eq!(h.drops(), vec![DropReason::NatUnsupported]);
    assert!(h.sent().is_empty());
}

#[tokio::test]
async fn the_flow_limit_refuses_with_a_rst() {
    let (_listener, port) = host_listener().await;
    let mut h = Harness::new(true, 1);
    let dst = SocketAddrV4::new(GW, port);
    h.packet(&segment(41000, dst, 1, "S", None, b""));
    assert_eq!(h.flows(), 1);
    h.packet(&segment(41001, dst, 1, "S", None, b""));
    assert_eq!(h.drops(), vec![DropReason::NatFlowLimit]);
    let sent = h.sent();
    let seen = tcp_of(&sent[0].0).unwrap();
    assert!(seen.rst && seen.dst.port() == 41001, "{seen:?}");
    assert_eq!(h.flows(), 1);
}

#[tokio::test]
async fn a_container_giving_up_while_connecting_removes_the_flow() {
    let (_listener, port) = host_listener().await;
    let mut h = Harness::new(true, 16);
    let dst = SocketAddrV4::new(GW, port);
    h.packet(&segment(41002, dst, 1, "S", None, b""));
    h.packet(&segment(41002, dst, 2, "R", None, b""));
    assert_eq!(h.flows(), 0);
}

#[test]
fn unreachable_quotes_the_header_and_8_bytes() {
    let syn = segment(
        40000,
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 5), 80),
        1,
        "S",
        None,
        b"",
    );
    let mut buf = Vec::new();
    assert!(write_unreachable(
        &mut buf,
        GW,
        &syn,
        icmpv4::DestUnreachableHeader::Host
    ));
    let sliced = SlicedPacket::from_ip(&buf[HEADROOM..]).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4")
    };
    assert_eq!(ip.header().source_addr(), GW);
    assert_eq!(ip.header().destination_addr(), C);
    let Some(TransportSlice::Icmpv4(icmp)) = &sliced.transport else {
        panic!("not ICMP")
    };
    assert!(matches!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Host)
    ));
    assert_eq!(icmp.payload(), &syn[..28]);
    let header = icmp.header();
    assert_eq!(
        header.checksum,
        header.icmp_type.calc_checksum(icmp.payload())
    );
}

#[test]
fn mss_is_raised_never_lowered() {
    let syn = segment(1, SocketAddrV4::new(GW, 2), 0, "S", None, b"");
    let mut tcp = syn[20..].to_vec();
    raise_mss(&mut tcp);
    let h = TcpHeaderSlice::from_slice(&tcp).unwrap();
    let mss = h.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
        _ => None,
    });
    assert_eq!(mss, Some(BIG_MSS));
}

#[test]
fn large_packets_leave_as_super_frames_with_a_partial_checksum() {
    let payload = vec![0xab; 4000];
    let mut p = Vec::new();
    PacketBuilder::ipv4(GW.octets(), C.octets(), 64)
        .tcp(80, 40000, 1, 1000)
        .ack(1)
        .write(&mut p, &payload)
        .unwrap();
    let mut small = Vec::new();
    PacketBuilder::ipv4(GW.octets(), C.octets(), 64)
        .tcp(80, 40000, 1, 1000)
        .ack(1)
        .write(&mut small, b"abc")
        .unwrap();
    // What fits the MTU leaves whole, its checksum to complete; completing it the virtio way
    // (sum from csum_start, added to the field) gives the full checksum.
    let mut offloaded = small.clone();
    offloaded[36..38].copy_from_slice(&[0xde, 0xad]);
    assert_eq!(finish_tcp(&mut offloaded, 1500), TxOffload::Checksum);
    assert_ne!(offloaded, small, "the field holds the pseudo-header sum");
    complete_checksum(&mut offloaded);
    assert_eq!(offloaded, small, "completed, it is the full checksum");
    // A larger one leaves as a super-frame, cut at the MTU.
    let mut expected = p.clone();
    assert_eq!(finish_tcp(&mut p, 1500), TxOffload::Segment(1460));
    complete_checksum(&mut p);
    assert_eq!(p, expected);
    assert!(checksums_ok(&p));
    expected.truncate(19);
    assert_eq!(
        finish_tcp(&mut expected, 1500),
        TxOffload::None,
        "not TCP/IPv4"
    );
}

#[tokio::test]
async fn published_client_address_is_shown_unless_the_container_cannot_answer_it() {
    let mut h = Harness::new(false, 16);
    let target = SocketAddrV4::new(C, 80);
    let cases: [(&str, Option<&str>); 5] = [
        ("203.0.113.7:5555", Some("203.0.113.7:5555")),
        ("[::ffff:203.0.113.8]:5556", Some("203.0.113.8:5556")),
        ("127.0.0.1:5557", None),
        ("[2001:db8::1]:5558", None),
        ("172.18.0.9:5559", None),
    ];
    for (client, want) in cases {
        let client: SocketAddr = client.parse().unwrap();
        let local = h.with(|nat, ctx| nat.local_for(ctx, client, target));
        match want {
            Some(w) => assert_eq!(local, w.parse::<SocketAddrV4>().unwrap()),
            None => {
                assert_eq!(*local.ip(), GW, "{client}");
                assert!((EPHEMERAL.0..=EPHEMERAL.1).contains(&local.port()));
            }
        }
    }
}

// ---- End to end in memory: a second smoltcp stack plays the container's kernel. ----

/// The container's side of the wire.
#[derive(Debug, Default)]
struct Wire {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
    mtu: usize,
}

struct WireRx(Vec<u8>);
struct WireTx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::Device for Wire {
    type RxToken<'a> = WireRx;
    type TxToken<'a> = WireTx<'a>;

    fn receive(
        &mut self,
        _: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let p = self.rx.pop_front()?;
        Some((WireRx(p), WireTx(&mut self.tx)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(WireTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

impl phy::RxToken for WireRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for WireTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut v = vec![0; len];
        let r = f(&mut v);
        self.0.push(v);
        r
    }
}

/// The container's TCP stack.
struct Container {
    iface: Interface,
    sockets: SocketSet<'static>,
    wire: Wire,
    epoch: std::time::Instant,
    /// Packets the gateway sent as GSO super-frames.
    super_frames: usize,
}

impl Container {
    fn new() -> Container {
        Container::with_mtu(1500)
    }

    /// A container whose kernel sends segments of up to `mtu` bytes (like TSO super-frames
    /// when larger than the network's MTU).
    fn with_mtu(mtu: usize) -> Container {
        let mut wire = Wire {
            mtu,
            ..Wire::default()
        };
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ip),
            &mut wire,
            smoltcp::time::Instant::ZERO,
        );
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(C.into(), 16));
        });
        let _ = iface.routes_mut().add_default_ipv4_route(GW);
        Container {
            iface,
            sockets: SocketSet::new(Vec::new()),
            wire,
            epoch: std::time::Instant::now(),
            super_frames: 0,
        }
    }

    fn socket(&mut self) -> SocketHandle {
        self.sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 128 * 1024]),
            tcp::SocketBuffer::new(vec![0; 128 * 1024]),
        ))
    }

    fn get(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket<'static>>(h)
    }

    /// Reads everything socket `h` has received into `got`.
    fn drain(&mut self, h: SocketHandle, got: &mut Vec<u8>) {
        let sock = self.get(h);
        while sock.can_recv() {
            sock.recv(|b| {
                got.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
    }

    fn connect(&mut self, h: SocketHandle, port: u16, local: u16) {
        let cx = self.iface.context();
        self.sockets
            .get_mut::<tcp::Socket<'static>>(h)
            .connect(cx, (GW, port), local)
            .unwrap();
    }

    fn poll(&mut self) {
        let now = smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64);
        self.iface.poll(now, &mut self.wire, &mut self.sockets);
    }
}

/// Moves packets both ways and handles events until `done` holds (or panics after a while).
async fn run_until(
    h: &mut Harness,
    c: &mut Container,
    mut done: impl FnMut(&mut Harness, &mut Container) -> bool,
) {
    for _ in 0..5000 {
        c.poll();
        for p in std::mem::take(&mut c.wire.tx) {
            h.packet(&p);
        }
        for (mut p, offload) in h.sent() {
            if let TxOffload::Segment(mss) = offload {
                assert!(p.len() > 1500 && mss == 1460, "{} {mss}", p.len());
                c.super_frames += 1;
            }
            if offload != TxOffload::None {
                // What the container's kernel does with a partial checksum.
                complete_checksum(&mut p);
            }
            assert!(checksums_ok(&p), "bad checksum from the gateway");
            c.wire.rx.push_back(p);
        }
        c.poll();
        h.turn().await;
        if done(h, c) {
            return;
        }
    }
    panic!("timed out");
}

#[tokio::test]
async fn data_and_half_close_both_ways() {
    let (listener, port) = host_listener().await;
    let mut h = Harness::new(true, 16);
    let mut c = Container::new();
    let s = c.socket();
    c.connect(s, port, 49152);
    let accept = tokio::spawn(async move { listener.accept().await.unwrap().0 });
    run_until(&mut h, &mut c, |_, c| {
        c.get(s).state() == tcp::State::Established
    })
    .await;
    let mut host = accept.await.unwrap();
    assert_eq!(h.flows(), 1);

    // Container → host.
    c.get(s).send_slice(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 18];
        host.read_exact(&mut buf).await.unwrap();
        (host, buf)
    });
    run_until(&mut h, &mut c, |_, _| reader.is_finished()).await;
    let (mut host, buf) = reader.await.unwrap();
    assert_eq!(&buf, b"GET / HTTP/1.0\r\n\r\n");

    // The container half-closes; the host sees EOF and still answers with 1 MiB.
    c.get(s).close();
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let expected = body.clone();
    let writer = tokio::spawn(async move {
        let mut rest = Vec::new();
        host.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        host.write_all(&body).await.unwrap();
        host.shutdown().await.unwrap();
        host
    });
    let mut got = Vec::new();
    run_until(&mut h, &mut c, |_, c| {
        c.drain(s, &mut got);
        let sock = c.get(s);
        !sock.may_recv() && got.len() == expected.len()
    })
    .await;
    assert!(got == expected, "the body arrived intact");
    assert!(c.super_frames > 0, "large segments left as super-frames");
    let _host = writer.await.unwrap();
    run_until(&mut h, &mut c, |h, _| h.flows() == 0).await;
    assert!(h.nat.tuples.is_empty() && h.nat.sockets.iter().count() == 0);
}

#[tokio::test]
async fn host_half_close_and_container_data_after_it() {
    let (listener, port) = host_listener().await;
    let mut h = Harness::new(true, 16);
    let mut c = Container::new();
    let s = c.socket();
    c.connect(s, port, 49153);
    let server = tokio::spawn(async move {
        let (mut host, _) = listener.accept().await.unwrap();
        host.write_all(b"banner").await.unwrap();
        host.shutdown().await.unwrap();
        let mut rest = Vec::new();
        host.read_to_end(&mut rest).await.unwrap();
        rest
    });
    let mut got = Vec::new();
    run_until(&mut h, &mut c, |_, c| {
        c.drain(s, &mut got);
        let sock = c.get(s);
        sock.state() == tcp::State::CloseWait
    })
    .await;
    assert_eq!(got, b"banner");
    c.get(s).send_slice(b"late reply").unwrap();
    c.get(s).close();
    run_until(&mut h, &mut c, |h, _| {
        server.is_finished() && h.flows() == 0
    })
    .await;
    assert_eq!(server.await.unwrap(), b"late reply");
}

#[tokio::test]
async fn resets_are_carried_both_ways() {
    let (listener, port) = host_listener().await;
    let mut h = Harness::new(true, 16);
    let mut c = Container::new();

    // The container resets: the host's read fails.
    let s = c.socket();
    c.connect(s, port, 49154);
    let accept = tokio::spawn(async move {
        let host = listener.accept().await.unwrap().0;
        (listener, host)
    });
    run_until(&mut h, &mut c, |_, c| {
        c.get(s).state() == tcp::State::Established
    })
    .await;
    let (listener, mut host) = accept.await.unwrap();
    c.get(s).abort();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 16];
        host.read(&mut buf).await
    });
    run_until(&mut h, &mut c, |h, _| {
        reader.is_finished() && h.flows() == 0
    })
    .await;
    let err = reader.await.unwrap().expect_err("a reset");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);

    // The host resets: the container's socket is closed without a FIN.
    let s = c.socket();
    c.connect(s, port, 49155);
    let accept = tokio::spawn(async move { listener.accept().await.unwrap().0 });
    run_until(&mut h, &mut c, |_, c| {
        c.get(s).state() == tcp::State::Established
    })
    .await;
    let host = accept.await.unwrap();
    socket2::SockRef::from(&host)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(host);
    run_until(&mut h, &mut c, |h, c| {
        c.get(s).state() == tcp::State::Closed && h.flows() == 0
    })
    .await;
}

#[tokio::test]
async fn many_connections_leave_no_flows_behind() {
    let (listener, port) = host_listener().await;
    let server = tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4];
                if s.read_exact(&mut buf).await.is_ok() {
                    let _ = s.write_all(&buf).await;
                }
            });
        }
    });
    let mut h = Harness::new(true, 8);
    let mut c = Container::new();
    for i in 0..100u16 {
        let s = c.socket();
        c.connect(s, port, 20000 + i);
        let mut got = Vec::new();
        let mut sent = false;
        run_until(&mut h, &mut c, |_, c| {
            let sock = c.get(s);
            if !sent && sock.may_send() {
                sock.send_slice(b"ping").unwrap();
                sent = true;
            }
            c.drain(s, &mut got);
            let sock = c.get(s);
            if got.len() == 4 && sock.state() == tcp::State::CloseWait {
                sock.close();
            }
            matches!(sock.state(), tcp::State::Closed | tcp::State::TimeWait)
        })
        .await;
        assert_eq!(got, b"ping");
        c.sockets.remove(s);
    }
    run_until(&mut h, &mut c, |h, _| h.flows() == 0).await;
    server.abort();
}

#[tokio::test]
async fn published_port_carries_a_client_to_the_container() {
    let mut h = Harness::new(false, 16);
    let mut c = Container::new();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let target = SocketAddrV4::new(C, 80);
    h.with(|nat, ctx| nat.publish(ctx, PublishId(1), target, std_listener, None));
    assert_eq!(h.gauges.published.load(Ordering::Relaxed), 1);

    let s = c.socket();
    c.get(s).listen(80).unwrap();
    let client = tokio::spawn(async move {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"ping").await.unwrap();
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf).await.unwrap();
        buf
    });
    // The SYN toward the container comes from the gateway (the client is on loopback).
    let mut syn = None;
    for _ in 0..500 {
        h.turn().await;
        let sent = h.sent();
        if let Some((p, _)) = sent.first() {
            syn = tcp_of(p);
            c.wire.rx.extend(sent.into_iter().map(|(p, _)| p));
            break;
        }
    }
    let syn = syn.expect("a SYN to the container");
    assert!(syn.syn && syn.ack.is_none(), "{syn:?}");
    assert_eq!(syn.dst, target);
    assert_eq!(*syn.src.ip(), GW);
    assert!(syn.mss.is_some());

    let mut got = Vec::new();
    run_until(&mut h, &mut c, |_, c| {
        c.drain(s, &mut got);
        got == b"ping"
    })
    .await;
    c.get(s).send_slice(b"pong").unwrap();
    c.get(s).close();
    run_until(&mut h, &mut c, |h, _| {
        client.is_finished() && h.flows() == 0
    })
    .await;
    assert_eq!(client.await.unwrap(), b"pong");

    // Nothing listens in the container: the client is closed.
    let client = tokio::spawn(async move {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf).await
    });
    run_until(&mut h, &mut c, |h, _| {
        client.is_finished() && h.flows() == 0
    })
    .await;
    assert!(client.await.unwrap().map_or(true, |n| n == 0));

    h.with(|nat, ctx| nat.unpublish(ctx, PublishId(1)));
    assert_eq!(h.gauges.published.load(Ordering::Relaxed), 0);
    let mut refused = false;
    for _ in 0..100 {
        h.turn().await;
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "the listener is closed after unpublish");
}

#[tokio::test]
async fn bulk_upload_with_a_slow_host_reader_and_super_frames() {
    let (listener, port) = host_listener().await;
    let mut h = Harness::new(true, 16);
    let mut c = Container::with_mtu(65535);
    let s = c.socket();
    c.connect(s, port, 49160);
    let total = 4 * 1024 * 1024;
    let reader = tokio::spawn(async move {
        let (mut host, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 7000];
        loop {
            // A slow reader: the gateway's queue and smoltcp's window must hold the rest.
            tokio::time::sleep(Duration::from_micros(200)).await;
            match host.read(&mut buf).await.unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    });
    let body: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
    let mut off = 0;
    run_until(&mut h, &mut c, |_, c| {
        let sock = c.get(s);
        if sock.may_send() && off < body.len() {
            off += sock.send_slice(&body[off..]).unwrap();
            if off == body.len() {
                sock.close();
            }
        }
        off == body.len() && reader.is_finished()
    })
    .await;
    let got = reader.await.unwrap();
    assert_eq!(got.len(), body.len());
    assert!(got == body, "the upload arrived intact");
    run_until(&mut h, &mut c, |h, _| h.flows() == 0).await;
}

/// The container's window update after a zero window is lost (a full TAP queue, say): the
/// gateway must probe the window (RFC 9293 section 3.8.6.1) instead of waiting forever. This is
/// the stall the soak test found with smoltcp 0.12, which had no zero-window probes.
#[tokio::test]
async fn a_lost_window_update_is_recovered_by_a_zero_window_probe() {
    let (listener, port) = host_listener().await;
    let mut h = Harness::new(true, 16);
    let mut c = Container::new();
    let s = c.socket();
    // Every segment acknowledged at once (as Linux does when its window closes): nothing is
    // in flight when the window is zero, so no retransmission can rescue the flow.
    c.get(s).set_ack_delay(None);
    c.connect(s, port, 49170);
    let total = 1024 * 1024;
    let body: Vec<u8> = (0..total).map(|i| (i % 249) as u8).collect();
    let expected = body.clone();
    let writer = tokio::spawn(async move {
        let (mut host, _) = listener.accept().await.unwrap();
        host.write_all(&body).await.unwrap();
        host.shutdown().await.unwrap();
        host
    });
    // The container does not read: its window closes.
    run_until(&mut h, &mut c, |_, c| {
        let sock = c.get(s);
        sock.recv_queue() == sock.recv_capacity()
    })
    .await;
    let mut got = Vec::new();
    // Its acknowledgement of everything, with a zero window, reaches the gateway.
    for p in std::mem::take(&mut c.wire.tx) {
        h.packet(&p);
    }
    assert!(h.sent().is_empty(), "nothing is sent into a zero window");
    // It reads everything, and the window update it sends is lost.
    c.drain(s, &mut got);
    c.poll();
    let lost = std::mem::take(&mut c.wire.tx);
    assert!(!lost.is_empty(), "the container announced its open window");
    eprintln!(
        "lost {} packets: {:?}",
        lost.len(),
        lost.iter()
            .filter_map(|p| tcp_of(p))
            .map(|t| (t.seq, t.ack, t.payload.len()))
            .collect::<Vec<_>>()
    );
    run_until(&mut h, &mut c, |_, c| {
        c.drain(s, &mut got);
        !c.get(s).may_recv()
    })
    .await;
    assert!(got == expected, "the whole body arrived after the probe");
    let _host = writer.await.unwrap();
}

/// Rough throughput of the translator with an in-memory container (whose smoltcp stack costs
/// as much again): `cargo test --release -p netloom-switch nat::tcp::tests::throughput --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn throughput() {
    const TOTAL: usize = 64 * 1024 * 1024;
    for upload in [false, true] {
        let (listener, port) = host_listener().await;
        let mut h = Harness::new(true, 16);
        let mut c = Container::with_mtu(65535);
        let s = c.sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 1024 * 1024]),
            tcp::SocketBuffer::new(vec![0; 1024 * 1024]),
        ));
        c.get(s).set_ack_delay(None);
        c.connect(s, port, 49170);
        let host = tokio::spawn(async move {
            let (mut host, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let mut n = 0;
            if upload {
                while n < TOTAL {
                    n += host.read(&mut buf).await.unwrap();
                }
            } else {
                while n < TOTAL {
                    host.write_all(&buf).await.unwrap();
                    n += buf.len();
                }
            }
        });
        let chunk = vec![0u8; 256 * 1024];
        let start = std::time::Instant::now();
        let mut moved = 0usize;
        let mut last = (0, std::time::Instant::now());
        while moved < TOTAL {
            if last.1.elapsed() > Duration::from_secs(1) {
                eprintln!(
                    "moved {moved} (+{}) state {} flows {} sent {}",
                    moved - last.0,
                    c.get(s).state(),
                    h.flows(),
                    h.egress.sent.lock().unwrap().len()
                );
                last = (moved, std::time::Instant::now());
            }
            c.poll();
            let mut busy = false;
            for p in std::mem::take(&mut c.wire.tx) {
                h.packet(&p);
                busy = true;
            }
            for (mut p, offload) in h.sent() {
                if offload != TxOffload::None {
                    complete_checksum(&mut p);
                }
                c.wire.rx.push_back(p);
                busy = true;
            }
            c.poll();
            let sock = c.get(s);
            if upload {
                if sock.can_send() {
                    moved += sock.send_slice(&chunk).unwrap();
                }
            } else {
                while sock.can_recv() {
                    moved += sock.recv(|b| (b.len(), b.len())).unwrap();
                }
            }
            while let Ok(Event::Tcp(e)) = h.events.try_recv() {
                h.with(|nat, ctx| nat.on_event(ctx, e));
                busy = true;
            }
            h.with(|_, _| ());
            if !busy {
                tokio::task::yield_now().await;
            }
        }
        if upload {
            while !host.is_finished() {
                c.poll();
                for p in std::mem::take(&mut c.wire.tx) {
                    h.packet(&p);
                }
                for (p, _) in h.sent() {
                    c.wire.rx.push_back(p);
                }
                while let Ok(Event::Tcp(e)) = h.events.try_recv() {
                    h.with(|nat, ctx| nat.on_event(ctx, e));
                }
                h.with(|_, _| ());
                tokio::task::yield_now().await;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!("stats: {:?}", h.nat);
        println!(
            "{}: {:.2} Gbit/s",
            if upload {
                "container → host"
            } else {
                "host → container"
            },
            TOTAL as f64 * 8.0 / secs / 1e9
        );
        host.abort();
    }
}

#[test]
fn chunk_buffers_are_reused_and_the_pool_is_bounded() {
    let pool = ChunkPool::default();
    let mut a = pool.take();
    assert!(a.is_empty() && a.capacity() >= CHUNK);
    a.extend_from_slice(b"payload");
    let ptr = a.as_ptr();
    pool.give(a);
    let b = pool.take();
    assert!(b.is_empty(), "a reused buffer comes back empty");
    assert_eq!(b.as_ptr(), ptr, "the same allocation is reused");
    // Buffers too small to hold a chunk are not kept.
    pool.give(Vec::with_capacity(16));
    assert!(pool.0.lock().unwrap().is_empty());
    // At most POOL_CHUNKS are kept.
    for _ in 0..POOL_CHUNKS + 10 {
        pool.give(Vec::with_capacity(CHUNK));
    }
    assert_eq!(pool.0.lock().unwrap().len(), POOL_CHUNKS);
}
