//! UDP translation (RFC 768): containers' datagrams to the outside are re-sent from per-flow
//! host sockets, and published UDP ports carry clients' datagrams to a container and its
//! replies back.
//!
//! Outbound, a flow is (container ip:port, destination ip:port). Its host socket is a
//! *connected* UDP socket, so the kernel filters replies to the destination for us and reports
//! an ICMP port unreachable from the far side as `ECONNREFUSED` (RFC 1122 4.1.3.3), which the
//! gateway turns back into an ICMP port unreachable (RFC 792) toward the container: a
//! container's connected socket sees `ECONNREFUSED` exactly as behind a kernel NAT.
//!
//! Inbound (published ports), one host socket serves every client; a flow remembers the client
//! so the container's reply, which reaches the gateway because the client is off-link, goes
//! back with `send_to` on the published socket. Containers see the client's real address, like
//! Docker's iptables DNAT, unless the container could not route a reply to it (a loopback
//! client, a plain IPv6 one, or one on the container's own subnet): then the client is
//! masqueraded as the gateway address and a port chosen per client.
//!
//! Flows expire like Linux conntrack's: [`super::Timeouts::udp_unreplied`] until the first
//! reply, then [`super::Timeouts::udp_replied`] of idleness. Expiry is lazy: a min-heap holds
//! one entry per flow at a deadline that may have moved later since; an entry that comes due
//! early is pushed back at the flow's current deadline, so a busy flow costs nothing per packet
//! beyond storing its new deadline.
//!
//! The gateway task sends on host sockets straight through [`SockRef`] rather than tokio's
//! `try_send`, which answers `WouldBlock` until the reactor has once seen the socket writable
//! and so would drop the first datagram of every new flow. A would-block from the kernel
//! itself (a full send buffer) is dropped and counted, never waited for.

use std::collections::{HashMap, HashSet};
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use etherparse::{IpFragOffset, IpNumber, Ipv4Header, UdpHeader, UdpSlice};
use socket2::{SockAddr, SockRef};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, warn};

use super::icmp::{self, Unreachable};
use super::timers::LazyTimers;
use super::{Ctx, Event, HEADROOM, Ingress, NatConfig, Proto, PublishId, Route, TxOffload};
use crate::counters::DropReason;
use crate::forward::PortId;

/// IP protocol number of UDP.
const PROTO_UDP: u8 = 17;

/// Receive buffer of a host socket: the largest UDP payload there is (over IPv6; IPv4 allows 20
/// bytes less). Allocated per datagram and shrunk to fit, so idle flows hold no buffer.
const MAX_DATAGRAM: usize = 65_527;

/// Ports the gateway picks for masqueraded clients of published ports: the dynamic range of
/// RFC 6335, away from the gateway's own services (DNS on 53).
const MASK_PORTS: RangeInclusive<u16> = 49152..=65535;

/// Identifies one flow for its lifetime; never reused, so a late event of an expired flow
/// cannot reach a newer flow with the same addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FlowId(u64);

/// Identifies one published host socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SockId(u64);

/// What a UDP flow task reports to the gateway task.
#[derive(Debug)]
pub(crate) enum UdpEvent {
    /// A datagram from an outbound flow's destination.
    Reply { flow: FlowId, data: Vec<u8> },
    /// The destination answered an outbound flow's datagram with ICMP port unreachable.
    Refused { flow: FlowId },
    /// A datagram from a client of a published socket.
    Request {
        sock: SockId,
        client: SocketAddr,
        data: Vec<u8>,
    },
}

/// An outbound flow's key: the container's address and the destination it addressed.
type OutKey = (SocketAddrV4, SocketAddrV4);

/// An inbound flow's key: the container's (published) address and the client's address as the
/// container sees it.
type InKey = (SocketAddrV4, SocketAddrV4);

#[derive(Clone, Copy, Debug)]
enum FlowRef {
    Out(OutKey),
    In(InKey),
}

/// A container's flow to the outside.
#[derive(Debug)]
struct OutFlow {
    port: PortId,
    socket: Arc<UdpSocket>,
    replied: bool,
    deadline: Instant,
    /// The UDP length of the last datagram sent, quoted in the ICMP error that reports a
    /// refusal (RFC 792 quotes the offending datagram's IP header and first 8 bytes).
    last_len: u16,
    /// Stops the flow's receive task when the flow goes.
    _task: DropGuard,
}

/// A client's flow to a published port.
#[derive(Debug)]
struct InFlow {
    id: FlowId,
    sock: SockId,
    client: SocketAddr,
    /// The container sees the gateway and a gateway port instead of the client.
    masked: bool,
    replied: bool,
    deadline: Instant,
}

/// One published host socket.
#[derive(Debug)]
struct Published {
    id: PublishId,
    target: SocketAddrV4,
    socket: Arc<UdpSocket>,
    flows: usize,
    _task: DropGuard,
}

/// The domain's UDP flows.
#[derive(Debug, Default)]
pub(crate) struct UdpNat {
    out: HashMap<OutKey, OutFlow>,
    inbound: HashMap<InKey, InFlow>,
    /// Inbound flows by the published socket and client they came from.
    clients: HashMap<(SockId, SocketAddr), InKey>,
    flows: HashMap<FlowId, FlowRef>,
    /// Outbound flows per container, for [`super::Limits::udp_per_container`].
    per_container: HashMap<Ipv4Addr, usize>,
    published: HashMap<SockId, Published>,
    /// Gateway ports in use by masqueraded clients.
    masked: HashSet<u16>,
    next_masked: u16,
    /// Flow deadlines, earliest first; entries may be stale (see the module documentation).
    timers: LazyTimers<FlowId>,
    next_id: u64,
    /// Scratch buffers: the transport message being built and the packet being sent.
    transport: Vec<u8>,
    packet: Vec<u8>,
    /// IPv4 identification of the next fragmented datagram.
    ip_id: u16,
}

impl UdpNat {
    pub(crate) fn new(_config: &NatConfig) -> Self {
        UdpNat {
            next_masked: *MASK_PORTS.start(),
            ..UdpNat::default()
        }
    }

    fn flow_id(&mut self) -> FlowId {
        self.next_id += 1;
        FlowId(self.next_id)
    }

    fn update_gauge(&self, ctx: &Ctx<'_>) {
        ctx.gauges
            .udp_flows
            .store(self.out.len() + self.inbound.len(), Ordering::Relaxed);
    }

    /// A UDP packet from a container.
    pub(crate) fn on_packet(&mut self, ctx: &Ctx<'_>, p: &Ingress<'_>) {
        // The checksum is not verified: the container's TAP offloads it, so it may be partial.
        let Ok(udp) = UdpSlice::from_slice(p.payload) else {
            return ctx
                .egress
                .drop_frame(Some(p.port), DropReason::NatMalformed);
        };
        let src = SocketAddrV4::new(p.src, udp.source_port());
        let dst = SocketAddrV4::new(p.dst, udp.destination_port());
        let payload = udp.payload();
        // A reply to a published port's client comes first: its destination may be the
        // gateway itself (a masqueraded client), which outbound routing would refuse.
        if self.inbound.contains_key(&(src, dst)) {
            return self.reply_inbound(ctx, p.port, (src, dst), payload);
        }
        match ctx.config.route(Some(Proto::Udp), dst) {
            Route::Drop(reason) => ctx.egress.drop_frame(Some(p.port), reason),
            Route::Closed => {
                // RFC 1122 3.2.2.1: a closed port on the gateway answers port unreachable.
                self.unreachable(ctx, Some(p.port), p.dst, p.src, Unreachable::Port, quote(p));
            }
            Route::Forward(addr) => self.forward(ctx, p, src, dst, addr, payload),
        }
    }

    /// Sends a container's datagram on its outbound flow, creating the flow if needed.
    fn forward(
        &mut self,
        ctx: &Ctx<'_>,
        p: &Ingress<'_>,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        addr: SocketAddr,
        payload: &[u8],
    ) {
        let key = (src, dst);
        if !self.out.contains_key(&key) {
            let count = self.per_container.get(src.ip()).copied().unwrap_or(0);
            if count >= ctx.config.limits.udp_per_container {
                return ctx
                    .egress
                    .drop_frame(Some(p.port), DropReason::NatFlowLimit);
            }
            let socket = match open(addr) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    debug!(%addr, error = %e, "cannot open a UDP flow");
                    ctx.egress
                        .drop_frame(Some(p.port), DropReason::NatSocketFailed);
                    // Without a route the host kernel would have answered a forwarded
                    // packet with destination unreachable (RFC 1812 5.2.7.1); so do we.
                    if let Some(code) = Unreachable::of_error(&e) {
                        let gw = ctx.config.gateway.ip;
                        self.unreachable(ctx, Some(p.port), gw, p.src, code, quote(p));
                    }
                    return;
                }
            };
            let id = self.flow_id();
            let cancel = ctx.cancel.child_token();
            tokio::spawn(outbound_task(
                id,
                socket.clone(),
                ctx.events.clone(),
                cancel.clone(),
            ));
            let deadline = ctx.now + ctx.config.timeouts.udp_unreplied;
            self.out.insert(
                key,
                OutFlow {
                    port: p.port,
                    socket,
                    replied: false,
                    deadline,
                    last_len: 0,
                    _task: cancel.drop_guard(),
                },
            );
            self.flows.insert(id, FlowRef::Out(key));
            *self.per_container.entry(*src.ip()).or_default() += 1;
            self.timers.push(deadline, id);
            self.update_gauge(ctx);
        }
        let flow = self.out.get_mut(&key).expect("inserted above");
        flow.deadline = ctx.now
            + if flow.replied {
                ctx.config.timeouts.udp_replied
            } else {
                ctx.config.timeouts.udp_unreplied
            };
        flow.last_len = u16::try_from(UdpHeader::LEN + payload.len()).unwrap_or(u16::MAX);
        match SockRef::from(&*flow.socket).send(payload) {
            Ok(_) => {}
            // A refusal the flow task has not picked up yet is reported to whichever call
            // comes first; this datagram was not sent, the container learns why.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                self.unreachable(ctx, Some(p.port), p.dst, p.src, Unreachable::Port, quote(p));
            }
            Err(e) => {
                debug!(%addr, error = %e, "UDP send failed");
                ctx.egress.drop_frame(Some(p.port), DropReason::NatHostBusy);
            }
        }
    }

    /// Sends a container's reply to a published port's client.
    fn reply_inbound(&mut self, ctx: &Ctx<'_>, port: PortId, key: InKey, payload: &[u8]) {
        let flow = self.inbound.get_mut(&key).expect("checked by the caller");
        flow.replied = true;
        flow.deadline = ctx.now + ctx.config.timeouts.udp_replied;
        let Some(published) = self.published.get(&flow.sock) else {
            return ctx.egress.drop_frame(Some(port), DropReason::NatHostBusy);
        };
        let to = SockAddr::from(flow.client);
        if let Err(e) = SockRef::from(&*published.socket).send_to(payload, &to) {
            debug!(client = %flow.client, error = %e, "UDP reply to a published port's client failed");
            ctx.egress.drop_frame(Some(port), DropReason::NatHostBusy);
        }
    }

    pub(crate) fn on_event(&mut self, ctx: &Ctx<'_>, event: UdpEvent) {
        match event {
            UdpEvent::Reply { flow, data } => {
                let Some(&FlowRef::Out(key)) = self.flows.get(&flow) else {
                    return;
                };
                let Some(f) = self.out.get_mut(&key) else {
                    return;
                };
                f.replied = true;
                f.deadline = ctx.now + ctx.config.timeouts.udp_replied;
                let port = f.port;
                // The reply comes from the address the container sent to, whatever the host
                // socket was connected to (the DNS server behind the gateway's :53).
                self.send_udp(ctx, Some(port), key.1, key.0, &data);
            }
            UdpEvent::Refused { flow } => {
                let Some(&FlowRef::Out((src, dst))) = self.flows.get(&flow) else {
                    return;
                };
                let Some(f) = self.out.get(&(src, dst)) else {
                    return;
                };
                let port = f.port;
                // Rebuild the datagram the far side refused, as much as RFC 792 quotes: the
                // container's kernel finds its socket by the quoted addresses and ports.
                let quoted = quoted_datagram(src, dst, f.last_len);
                self.unreachable(
                    ctx,
                    Some(port),
                    *dst.ip(),
                    *src.ip(),
                    Unreachable::Port,
                    &quoted,
                );
            }
            UdpEvent::Request { sock, client, data } => self.request(ctx, sock, client, &data),
        }
    }

    /// Carries a published socket's datagram from `client` to the container.
    fn request(&mut self, ctx: &Ctx<'_>, sock: SockId, client: SocketAddr, data: &[u8]) {
        let Some(published) = self.published.get(&sock) else {
            return; // Unpublished while the datagram was queued.
        };
        let target = published.target;
        let Some(neighbor) = ctx.egress.neighbor(*target.ip()) else {
            return ctx.egress.drop_frame(None, DropReason::NatNoNeighbor);
        };
        let key = match self.clients.get(&(sock, client)) {
            Some(&key) => key,
            None => {
                if published.flows >= ctx.config.limits.udp_per_container {
                    return ctx
                        .egress
                        .drop_frame(Some(neighbor.port), DropReason::NatFlowLimit);
                }
                let (peer, masked) = match visible_peer(ctx.config, client) {
                    Some(peer) => (peer, false),
                    None => match self.mask_port() {
                        Some(port) => (SocketAddrV4::new(ctx.config.gateway.ip, port), true),
                        None => {
                            return ctx
                                .egress
                                .drop_frame(Some(neighbor.port), DropReason::NatFlowLimit);
                        }
                    },
                };
                let key = (target, peer);
                if let Some(old) = self.inbound.get(&key) {
                    // Two clients the container would see as one (the same real address
                    // through the IPv4 and IPv6 sockets): the newest wins.
                    let old = old.id;
                    self.remove(old);
                }
                let id = self.flow_id();
                let deadline = ctx.now + ctx.config.timeouts.udp_unreplied;
                self.inbound.insert(
                    key,
                    InFlow {
                        id,
                        sock,
                        client,
                        masked,
                        replied: false,
                        deadline,
                    },
                );
                self.clients.insert((sock, client), key);
                self.flows.insert(id, FlowRef::In(key));
                self.timers.push(deadline, id);
                if let Some(p) = self.published.get_mut(&sock) {
                    p.flows += 1;
                }
                self.update_gauge(ctx);
                key
            }
        };
        let flow = self.inbound.get_mut(&key).expect("inserted above");
        flow.deadline = ctx.now
            + if flow.replied {
                ctx.config.timeouts.udp_replied
            } else {
                ctx.config.timeouts.udp_unreplied
            };
        self.send_udp(ctx, Some(neighbor.port), key.1, key.0, data);
    }

    /// A gateway port for a masqueraded client, if any is free.
    fn mask_port(&mut self) -> Option<u16> {
        let span = usize::from(MASK_PORTS.end() - MASK_PORTS.start()) + 1;
        for _ in 0..span {
            let port = self.next_masked;
            self.next_masked = if port == *MASK_PORTS.end() {
                *MASK_PORTS.start()
            } else {
                port + 1
            };
            if self.masked.insert(port) {
                return Some(port);
            }
        }
        None
    }

    /// Forgets a flow (its task, if any, stops with it).
    fn remove(&mut self, id: FlowId) {
        match self.flows.remove(&id) {
            Some(FlowRef::Out(key)) => {
                self.out.remove(&key);
                if let Some(n) = self.per_container.get_mut(key.0.ip()) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_container.remove(key.0.ip());
                    }
                }
            }
            Some(FlowRef::In(key)) => {
                if let Some(flow) = self.inbound.remove(&key) {
                    self.clients.remove(&(flow.sock, flow.client));
                    if let Some(p) = self.published.get_mut(&flow.sock) {
                        p.flows -= 1;
                    }
                    if flow.masked {
                        self.masked.remove(&key.1.port());
                    }
                }
            }
            None => {}
        }
    }

    /// Runs timers; returns when it must run next.
    pub(crate) fn poll(&mut self, ctx: &Ctx<'_>) -> Option<Instant> {
        let (flows, out, inbound) = (&mut self.flows, &self.out, &self.inbound);
        let (due, next) = self.timers.expire(ctx.now, |id| {
            let deadline = match flows.get(&id)? {
                FlowRef::Out(key) => out.get(key).map(|f| f.deadline),
                FlowRef::In(key) => inbound.get(key).map(|f| f.deadline),
            };
            if deadline.is_none() {
                flows.remove(&id);
            }
            deadline
        });
        let expired = !due.is_empty();
        for id in due {
            self.remove(id);
        }
        if expired {
            self.update_gauge(ctx);
        }
        next
    }

    /// Serves a published port's socket until [`Self::unpublish`].
    pub(crate) fn publish(
        &mut self,
        ctx: &Ctx<'_>,
        id: PublishId,
        target: SocketAddrV4,
        socket: std::net::UdpSocket,
    ) {
        if ctx.config.internal {
            // SPEC 3: nothing from outside reaches an internal network.
            warn!(%target, "refusing to publish a UDP port on an internal network");
            return;
        }
        let socket = match socket
            .set_nonblocking(true)
            .and_then(|()| UdpSocket::from_std(socket))
        {
            Ok(s) => Arc::new(s),
            Err(e) => {
                warn!(%target, error = %e, "cannot serve a published UDP socket");
                return;
            }
        };
        let sock = SockId(self.flow_id().0);
        let cancel = ctx.cancel.child_token();
        tokio::spawn(published_task(
            sock,
            socket.clone(),
            ctx.events.clone(),
            cancel.clone(),
        ));
        self.published.insert(
            sock,
            Published {
                id,
                target,
                socket,
                flows: 0,
                _task: cancel.drop_guard(),
            },
        );
        ctx.gauges.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops serving a publication's sockets and forgets their flows.
    pub(crate) fn unpublish(&mut self, ctx: &Ctx<'_>, id: PublishId) {
        let socks: Vec<SockId> = self
            .published
            .iter()
            .filter(|(_, p)| p.id == id)
            .map(|(&s, _)| s)
            .collect();
        if socks.is_empty() {
            return;
        }
        let flows: Vec<FlowId> = self
            .inbound
            .values()
            .filter(|f| socks.contains(&f.sock))
            .map(|f| f.id)
            .collect();
        for flow in flows {
            self.remove(flow);
        }
        for sock in &socks {
            // Dropping the entry stops its task, which holds the socket's other reference.
            self.published.remove(sock);
        }
        ctx.gauges
            .published
            .fetch_sub(socks.len(), Ordering::Relaxed);
        self.update_gauge(ctx);
    }

    /// Sends a UDP datagram with a full checksum to a container.
    fn send_udp(
        &mut self,
        ctx: &Ctx<'_>,
        port: Option<PortId>,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) {
        let Ok(length) = u16::try_from(UdpHeader::LEN + payload.len()) else {
            return ctx.egress.drop_frame(port, DropReason::Oversize);
        };
        let mut header = UdpHeader {
            source_port: src.port(),
            destination_port: dst.port(),
            length,
            checksum: 0,
        };
        let Ok(checksum) =
            header.calc_checksum_ipv4_raw(src.ip().octets(), dst.ip().octets(), payload)
        else {
            return ctx.egress.drop_frame(port, DropReason::Oversize);
        };
        header.checksum = checksum;
        self.transport.clear();
        self.transport.extend_from_slice(&header.to_bytes());
        self.transport.extend_from_slice(payload);
        let mut out = Out {
            packet: &mut self.packet,
            ip_id: &mut self.ip_id,
        };
        out.send(ctx, port, *src.ip(), *dst.ip(), PROTO_UDP, &self.transport);
    }

    /// Sends an ICMP destination unreachable quoting `quoted` to a container.
    fn unreachable(
        &mut self,
        ctx: &Ctx<'_>,
        port: Option<PortId>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        code: Unreachable,
        quoted: &[u8],
    ) {
        icmp::write_unreachable(&mut self.transport, code, quoted);
        let mut out = Out {
            packet: &mut self.packet,
            ip_id: &mut self.ip_id,
        };
        out.send(ctx, port, src, dst, icmp::PROTO_ICMP, &self.transport);
    }
}

/// The first bytes of a container's packet that an ICMP error quotes (RFC 792: the IP header
/// and the first 64 bits of the datagram).
fn quote<'a>(p: &Ingress<'a>) -> &'a [u8] {
    let header = p.packet.len() - p.payload.len();
    &p.packet[..(header + 8).min(p.packet.len())]
}

/// The IP and UDP headers of a datagram from `src` to `dst` of `udp_len` UDP bytes, for quoting.
fn quoted_datagram(src: SocketAddrV4, dst: SocketAddrV4, udp_len: u16) -> Vec<u8> {
    let mut quoted = vec![0; 28];
    // Cannot fail: 20 + 8 bytes, a u16 length that the packet itself carried.
    let _ = super::write_ipv4_header(
        &mut quoted,
        *src.ip(),
        *dst.ip(),
        PROTO_UDP,
        usize::from(udp_len.max(8)),
    );
    let header = UdpHeader {
        source_port: src.port(),
        destination_port: dst.port(),
        length: udp_len.max(8),
        checksum: 0,
    };
    quoted[20..].copy_from_slice(&header.to_bytes());
    quoted
}

/// The address a published port's client has in the container's eyes: its own, when the
/// container can route a reply to it through the gateway; `None` when the gateway must stand
/// in for it (a loopback client, a plain IPv6 one, or one on the container's own subnet, which
/// the container would try to reach on-link).
fn visible_peer(config: &NatConfig, client: SocketAddr) -> Option<SocketAddrV4> {
    let ip = match client.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip.to_ipv4_mapped()?,
    };
    let unroutable = ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip == config.gateway.ip
        || config.on_link(ip);
    (!unroutable).then(|| SocketAddrV4::new(ip, client.port()))
}

/// Opens an outbound flow's host socket, connected so the kernel keeps only the destination's
/// replies and reports its ICMP port unreachable. Connecting a UDP socket never blocks.
fn open(addr: SocketAddr) -> io::Result<UdpSocket> {
    let any: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(any)?;
    socket.connect(addr)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Receives one datagram, allocating its buffer only once one is there.
///
/// A refusal (ICMP port unreachable) is a pending socket error, which epoll reports as
/// `EPOLLERR`, not as readable: so wait for either, and take the error when that is what came.
async fn recv(socket: &UdpSocket) -> io::Result<Vec<u8>> {
    loop {
        let ready = socket.ready(Interest::READABLE | Interest::ERROR).await?;
        if ready.is_error() {
            // `WouldBlock` when no error is pending clears the error readiness.
            let pending = socket.try_io(Interest::ERROR, || {
                SockRef::from(socket)
                    .take_error()?
                    .ok_or_else(|| io::Error::from(ErrorKind::WouldBlock))
            });
            if let Ok(e) = pending {
                return Err(e);
            }
        }
        if !ready.is_readable() {
            continue;
        }
        let mut buf = Vec::with_capacity(MAX_DATAGRAM);
        match socket.try_recv_buf(&mut buf) {
            Ok(_) => {
                buf.shrink_to_fit();
                return Ok(buf);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Receives one datagram and its sender, allocating its buffer only once one is there.
async fn recv_from(socket: &UdpSocket) -> io::Result<(Vec<u8>, SocketAddr)> {
    loop {
        socket.readable().await?;
        let mut buf = Vec::with_capacity(MAX_DATAGRAM);
        match socket.try_recv_buf_from(&mut buf) {
            Ok((_, from)) => {
                buf.shrink_to_fit();
                return Ok((buf, from));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Hands an event to the gateway task, waiting for room; `false` once the flow must end.
async fn report(events: &mpsc::Sender<Event>, cancel: &CancellationToken, event: UdpEvent) -> bool {
    tokio::select! {
        biased;
        () = cancel.cancelled() => false,
        sent = events.send(Event::Udp(event)) => sent.is_ok(),
    }
}

/// An outbound flow's receive side, until the flow expires.
async fn outbound_task(
    flow: FlowId,
    socket: Arc<UdpSocket>,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            r = recv(&socket) => r,
        };
        let event = match received {
            Ok(data) => UdpEvent::Reply { flow, data },
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => UdpEvent::Refused { flow },
            Err(e) => {
                // No other error is reported on a connected UDP socket without IP_RECVERR;
                // stop receiving rather than risk spinning. The flow expires as usual.
                debug!(error = %e, "UDP flow stopped receiving");
                return;
            }
        };
        if !report(&events, &cancel, event).await {
            return;
        }
    }
}

/// A published socket's receive side, until unpublished.
async fn published_task(
    sock: SockId,
    socket: Arc<UdpSocket>,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            r = recv_from(&socket) => r,
        };
        let (data, client) = match received {
            Ok(r) => r,
            Err(e) if icmp::icmp_reported(&e) => continue,
            Err(e) => {
                warn!(error = %e, "published UDP socket stopped receiving");
                return;
            }
        };
        if !report(&events, &cancel, UdpEvent::Request { sock, client, data }).await {
            return;
        }
    }
}

/// Writes IPv4 packets toward containers.
#[derive(Debug)]
pub(super) struct Out<'a> {
    /// The buffer the packet is built in, headroom included.
    pub(super) packet: &'a mut Vec<u8>,
    /// Identification of the next fragmented datagram.
    pub(super) ip_id: &'a mut u16,
}

impl Out<'_> {
    /// Sends `transport` from `src` to the container at `dst`, fragmented to the domain's MTU
    /// when it is larger (RFC 791): the container's kernel reassembles it, as it would behind a
    /// router. Only datagrams from the host side can be that large (a reply to a large DNS
    /// query, a client's datagram to a published port).
    pub(super) fn send(
        &mut self,
        ctx: &Ctx<'_>,
        port: Option<PortId>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        transport: &[u8],
    ) {
        let mtu = usize::from(ctx.config.mtu);
        let buf = &mut *self.packet;
        if Ipv4Header::MIN_LEN + transport.len() <= mtu {
            buf.clear();
            buf.resize(HEADROOM + Ipv4Header::MIN_LEN, 0);
            if let Err(reason) =
                super::write_ipv4_header(&mut buf[HEADROOM..], src, dst, protocol, transport.len())
            {
                return ctx.egress.drop_frame(port, reason);
            }
            buf.extend_from_slice(transport);
            return ctx.egress.send(buf, TxOffload::None);
        }
        // Fragment payloads are multiples of 8 bytes but the last.
        let chunk = mtu.saturating_sub(Ipv4Header::MIN_LEN) & !7;
        if chunk == 0 || Ipv4Header::MIN_LEN + transport.len() > usize::from(u16::MAX) {
            return ctx.egress.drop_frame(port, DropReason::Oversize);
        }
        *self.ip_id = self.ip_id.wrapping_add(1);
        for (i, piece) in transport.chunks(chunk).enumerate() {
            let offset = i * chunk;
            let header = fragment_header(
                src,
                dst,
                protocol,
                *self.ip_id,
                offset,
                piece.len(),
                offset + piece.len() < transport.len(),
            );
            let Some(header) = header else {
                return ctx.egress.drop_frame(port, DropReason::Oversize);
            };
            buf.clear();
            buf.resize(HEADROOM, 0);
            buf.extend_from_slice(&header.to_bytes());
            buf.extend_from_slice(piece);
            ctx.egress.send(buf, TxOffload::None);
        }
    }
}

/// The header of one fragment of `offset..offset + len` of a datagram.
fn fragment_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    id: u16,
    offset: usize,
    len: usize,
    more: bool,
) -> Option<Ipv4Header> {
    let mut h = Ipv4Header::new(
        u16::try_from(len).ok()?,
        64,
        IpNumber(protocol),
        src.octets(),
        dst.octets(),
    )
    .ok()?;
    h.identification = id;
    h.dont_fragment = false;
    h.more_fragments = more;
    h.fragment_offset = IpFragOffset::try_new(u16::try_from(offset / 8).ok()?).ok()?;
    h.header_checksum = h.calc_header_checksum();
    Some(h)
}

/// A fake data path and gateway context for the translators' tests.
#[cfg(test)]
pub(super) mod testkit;
#[cfg(test)]
mod tests;
