//! ICMP translation: containers' echo requests to the outside (RFC 792), and the ICMP
//! destination unreachable messages the other translators send to containers.
//!
//! An echo flow is (container ip, echo identifier, destination), like Linux conntrack's ICMP
//! tuple. The host side prefers an unprivileged ICMP "ping socket" per flow (`SOCK_DGRAM` +
//! `IPPROTO_ICMP`, allowed when the daemon's group is in `net.ipv4.ping_group_range`): the
//! kernel picks the echo identifier, fills in the checksum and hands the socket only its own
//! replies. Where ping sockets are not allowed the domain falls back to one raw ICMP socket
//! (needs `CAP_NET_RAW`), which sees every ICMP packet of the namespace: each flow gets an
//! identifier of its own, and replies are matched by (source address, identifier).
//! Identifiers are drawn at random per domain, so another domain's or program's echo to the
//! same destination with the same identifier (a 1 in 65536 chance per pair of concurrent flows)
//! would also see this flow's replies, as with two `ping`s on one host; ping sockets have no
//! such overlap. The raw socket is closed again once the domain has no echo flows.
//!
//! Replies go back to the container from the destination's address with the container's own
//! identifier, sequence number and data (RFC 792 echo reply). Flows expire after
//! [`super::Timeouts::icmp`] without a request or reply.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use etherparse::{
    IcmpEchoHeader, Icmpv4Header, Icmpv4Slice, Icmpv4Type, Ipv4Slice, icmpv4::DestUnreachableHeader,
};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, warn};

use super::timers::LazyTimers;
use super::udp::Out;
use super::{Ctx, Event, Ingress, NatConfig, Route};
use crate::counters::DropReason;
use crate::forward::PortId;

/// IP protocol number of ICMP.
pub(super) const PROTO_ICMP: u8 = 1;

/// Bytes a host socket read may need beyond the domain's MTU: an IP header with options (raw
/// sockets receive it). Echo requests never exceed the MTU (fragments are refused), so neither
/// do the replies we carry.
const RECV_SLACK: usize = 64;

/// The destination unreachable codes the gateway sends (RFC 792).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unreachable {
    /// Code 0: no route to the destination's network.
    Net,
    /// Code 1: no route to the destination host.
    Host,
    /// Code 3: nothing listens on the destination port.
    Port,
}

impl Unreachable {
    /// The code that tells a container about a host socket's routing failure, if it is one.
    pub(super) fn of_error(e: &io::Error) -> Option<Unreachable> {
        match e.kind() {
            ErrorKind::NetworkUnreachable => Some(Unreachable::Net),
            ErrorKind::HostUnreachable => Some(Unreachable::Host),
            _ => None,
        }
    }

    fn header(self) -> DestUnreachableHeader {
        match self {
            Unreachable::Net => DestUnreachableHeader::Network,
            Unreachable::Host => DestUnreachableHeader::Host,
            Unreachable::Port => DestUnreachableHeader::Port,
        }
    }
}

/// Whether a socket error is one the kernel queued because an ICMP error arrived for an
/// earlier send (RFC 1122 4.1.3.3): reported once, the socket itself is fine.
pub(super) fn icmp_reported(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::TimedOut
    ) || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EMSGSIZE))
}

/// Writes an ICMP destination unreachable message quoting `quoted` (the offending packet's IP
/// header and first 8 payload bytes, RFC 792) into `out`, checksum included.
pub(super) fn write_unreachable(out: &mut Vec<u8>, code: Unreachable, quoted: &[u8]) {
    let header =
        Icmpv4Header::with_checksum(Icmpv4Type::DestinationUnreachable(code.header()), quoted);
    out.clear();
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(quoted);
}

/// Identifies one echo flow for its lifetime; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct EchoId(u64);

/// What an ICMP flow task reports to the gateway task.
#[derive(Debug)]
pub(crate) enum IcmpEvent {
    /// An echo reply on a flow's ping socket.
    Reply {
        flow: EchoId,
        seq: u16,
        data: Vec<u8>,
    },
    /// An echo reply the domain's raw socket saw, to be matched by source and identifier.
    RawReply {
        from: Ipv4Addr,
        ident: u16,
        seq: u16,
        data: Vec<u8>,
    },
}

/// How the domain sends echo requests to the outside.
#[derive(Debug)]
enum Backend {
    /// Not decided: the next flow tries a ping socket.
    Untried,
    /// Ping sockets work: one per flow.
    Ping,
    /// Ping sockets are not allowed: one raw socket for every flow, served by one task.
    Raw {
        socket: Arc<UdpSocket>,
        _task: DropGuard,
    },
    /// Neither ping nor raw sockets are allowed; echo requests are dropped and counted.
    Unavailable,
}

/// A flow's key: the container, its echo identifier, the destination.
type Key = (Ipv4Addr, u16, Ipv4Addr);

#[derive(Debug)]
struct Flow {
    port: PortId,
    /// The flow's ping socket; `None` with the raw socket.
    socket: Option<Arc<UdpSocket>>,
    /// The identifier on the wire with the raw socket.
    ident: u16,
    deadline: Instant,
    /// Stops the ping socket's task when the flow goes.
    _task: Option<DropGuard>,
}

/// The domain's ICMP echo flows.
#[derive(Debug)]
pub(crate) struct IcmpNat {
    backend: Backend,
    flows: HashMap<Key, Flow>,
    ids: HashMap<EchoId, Key>,
    /// Raw-socket flows by their identifier on the wire.
    idents: HashMap<u16, Key>,
    per_container: HashMap<Ipv4Addr, usize>,
    timers: LazyTimers<EchoId>,
    next_id: u64,
    /// State of the generator of raw identifiers (xorshift64, randomly seeded): identifiers
    /// hard to guess and unlikely to collide with other domains' or programs' echo traffic.
    rng: u64,
    recv_len: usize,
    transport: Vec<u8>,
    packet: Vec<u8>,
    ip_id: u16,
}

impl IcmpNat {
    pub(crate) fn new(config: &NatConfig) -> Self {
        IcmpNat {
            backend: Backend::Untried,
            flows: HashMap::new(),
            ids: HashMap::new(),
            idents: HashMap::new(),
            per_container: HashMap::new(),
            timers: LazyTimers::default(),
            next_id: 0,
            rng: RandomState::new().hash_one(config.gateway.ip) | 1,
            recv_len: usize::from(config.mtu) + RECV_SLACK,
            transport: Vec::new(),
            packet: Vec::new(),
            ip_id: 0,
        }
    }

    /// An ICMP packet from a container.
    pub(crate) fn on_packet(&mut self, ctx: &Ctx<'_>, p: &Ingress<'_>) {
        // The checksum is not verified: the container's TAP may offload it.
        let Ok(icmp) = Icmpv4Slice::from_slice(p.payload) else {
            return ctx
                .egress
                .drop_frame(Some(p.port), DropReason::NatMalformed);
        };
        let Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
            // Only echo is translated; errors a container sends (port unreachable for a
            // published port's client, say) have no host socket to go to.
            return ctx
                .egress
                .drop_frame(Some(p.port), DropReason::NatUnsupported);
        };
        // Echo has no ports: route as a portless protocol, which applies the same
        // reserved/on-link/internal/isolation rules as TCP and UDP. Echo to the gateway itself
        // is answered by the data path and never gets here.
        let dst = match ctx.config.route(None, SocketAddrV4::new(p.dst, 0)) {
            Route::Forward(SocketAddr::V4(a)) => *a.ip(),
            Route::Forward(SocketAddr::V6(_)) | Route::Closed => {
                return ctx
                    .egress
                    .drop_frame(Some(p.port), DropReason::NatUnsupported);
            }
            Route::Drop(reason) => return ctx.egress.drop_frame(Some(p.port), reason),
        };
        self.echo(ctx, p, dst, echo, icmp.payload());
    }

    /// Sends a container's echo request to `dst` on its flow, creating the flow if needed.
    fn echo(
        &mut self,
        ctx: &Ctx<'_>,
        p: &Ingress<'_>,
        dst: Ipv4Addr,
        echo: IcmpEchoHeader,
        data: &[u8],
    ) {
        let key = (p.src, echo.id, dst);
        if !self.flows.contains_key(&key) {
            let count = self.per_container.get(&p.src).copied().unwrap_or(0);
            if count >= ctx.config.limits.icmp_per_container {
                return ctx
                    .egress
                    .drop_frame(Some(p.port), DropReason::NatFlowLimit);
            }
            if let Err(e) = self.open(ctx, p.port, key) {
                debug!(%dst, error = %e, "cannot open an ICMP echo flow");
                ctx.egress
                    .drop_frame(Some(p.port), DropReason::NatSocketFailed);
                return self.unreachable_for(ctx, p, &e);
            }
        }
        let flow = self.flows.get_mut(&key).expect("opened above");
        flow.deadline = ctx.now + ctx.config.timeouts.icmp;
        let sent = match (&flow.socket, &self.backend) {
            (Some(socket), _) => {
                // The kernel fills in the identifier and the checksum of a ping socket's echo.
                let request = echo_message(true, 0, echo.seq, data);
                SockRef::from(&**socket).send(&request)
            }
            (None, Backend::Raw { socket, .. }) => {
                let request = echo_message(true, flow.ident, echo.seq, data);
                let to = SockAddr::from(SocketAddrV4::new(dst, 0));
                SockRef::from(&**socket).send_to(&request, &to)
            }
            (None, _) => Err(io::Error::from(ErrorKind::NotConnected)),
        };
        if let Err(e) = sent {
            debug!(%dst, error = %e, "echo request not sent");
            ctx.egress.drop_frame(Some(p.port), DropReason::NatHostBusy);
            self.unreachable_for(ctx, p, &e);
        }
    }

    /// Tells the container its echo request has no route, when that is why it failed.
    fn unreachable_for(&mut self, ctx: &Ctx<'_>, p: &Ingress<'_>, e: &io::Error) {
        if let Some(code) = Unreachable::of_error(e) {
            let header = p.packet.len() - p.payload.len();
            let quoted = &p.packet[..(header + 8).min(p.packet.len())];
            write_unreachable(&mut self.transport, code, quoted);
            let mut out = Out {
                packet: &mut self.packet,
                ip_id: &mut self.ip_id,
            };
            out.send(
                ctx,
                Some(p.port),
                ctx.config.gateway.ip,
                p.src,
                PROTO_ICMP,
                &self.transport,
            );
        }
    }

    /// Opens the host side of a new flow and records the flow.
    fn open(&mut self, ctx: &Ctx<'_>, port: PortId, key: Key) -> io::Result<()> {
        let dst = key.2;
        let id = EchoId(self.next_id + 1);
        let (socket, ident, task) = loop {
            match &self.backend {
                Backend::Untried | Backend::Ping => match ping_socket(dst) {
                    Ok(socket) => {
                        self.backend = Backend::Ping;
                        let socket = Arc::new(socket);
                        let cancel = ctx.cancel.child_token();
                        tokio::spawn(ping_task(
                            id,
                            socket.clone(),
                            self.recv_len,
                            ctx.events.clone(),
                            cancel.clone(),
                        ));
                        break (Some(socket), 0, Some(cancel.drop_guard()));
                    }
                    Err(OpenError::Socket(e)) if matches!(self.backend, Backend::Untried) => {
                        debug!(error = %e, "no ICMP ping sockets; using a raw socket");
                        self.backend = self.raw_backend(ctx);
                    }
                    Err(OpenError::Socket(e) | OpenError::Connect(e)) => return Err(e),
                },
                Backend::Raw { .. } => {
                    let ident = self.free_ident().ok_or_else(|| {
                        io::Error::new(ErrorKind::AddrInUse, "every echo identifier is in use")
                    })?;
                    self.idents.insert(ident, key);
                    break (None, ident, None);
                }
                Backend::Unavailable => {
                    return Err(io::Error::from(ErrorKind::PermissionDenied));
                }
            }
        };
        self.next_id += 1;
        let deadline = ctx.now + ctx.config.timeouts.icmp;
        self.flows.insert(
            key,
            Flow {
                port,
                socket,
                ident,
                deadline,
                _task: task,
            },
        );
        self.ids.insert(id, key);
        *self.per_container.entry(key.0).or_default() += 1;
        self.timers.push(deadline, id);
        self.update_gauge(ctx);
        Ok(())
    }

    /// Opens the domain's raw socket and starts its task.
    fn raw_backend(&self, ctx: &Ctx<'_>) -> Backend {
        match raw_socket() {
            Ok(socket) => {
                let socket = Arc::new(socket);
                let cancel = ctx.cancel.child_token();
                tokio::spawn(raw_task(
                    socket.clone(),
                    self.recv_len,
                    ctx.events.clone(),
                    cancel.clone(),
                ));
                Backend::Raw {
                    socket,
                    _task: cancel.drop_guard(),
                }
            }
            Err(e) => {
                warn!(error = %e, "neither ICMP ping nor raw sockets are allowed: containers cannot ping the outside");
                Backend::Unavailable
            }
        }
    }

    /// An echo identifier no raw-socket flow uses.
    fn free_ident(&mut self) -> Option<u16> {
        if self.idents.len() > usize::from(u16::MAX) {
            return None;
        }
        loop {
            // xorshift64 (Marsaglia 2003).
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let ident = (self.rng >> 32) as u16;
            if !self.idents.contains_key(&ident) {
                return Some(ident);
            }
        }
    }

    fn update_gauge(&self, ctx: &Ctx<'_>) {
        ctx.gauges
            .icmp_flows
            .store(self.flows.len(), Ordering::Relaxed);
    }

    pub(crate) fn on_event(&mut self, ctx: &Ctx<'_>, event: IcmpEvent) {
        let (key, seq, data) = match event {
            IcmpEvent::Reply { flow, seq, data } => match self.ids.get(&flow) {
                Some(&key) => (key, seq, data),
                None => return,
            },
            IcmpEvent::RawReply {
                from,
                ident,
                seq,
                data,
            } => match self.idents.get(&ident) {
                // Another flow's (or another program's) identifier: not ours.
                Some(&key) if key.2 == from => (key, seq, data),
                _ => return,
            },
        };
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.deadline = ctx.now + ctx.config.timeouts.icmp;
        let port = flow.port;
        let (container, ident, dst) = key;
        let reply = echo_message(false, ident, seq, &data);
        let mut out = Out {
            packet: &mut self.packet,
            ip_id: &mut self.ip_id,
        };
        out.send(ctx, Some(port), dst, container, PROTO_ICMP, &reply);
    }

    /// Runs timers; returns when it must run next.
    pub(crate) fn poll(&mut self, ctx: &Ctx<'_>) -> Option<Instant> {
        let (ids, flows) = (&self.ids, &self.flows);
        let (due, next) = self.timers.expire(ctx.now, |id| {
            ids.get(&id)
                .and_then(|key| flows.get(key))
                .map(|f| f.deadline)
        });
        let expired = !due.is_empty();
        for id in due {
            self.remove(id);
        }
        if expired {
            self.update_gauge(ctx);
            if self.flows.is_empty() && matches!(self.backend, Backend::Raw { .. }) {
                // An idle raw socket still copies every ICMP packet of the namespace; close
                // it until the next echo flow.
                self.backend = Backend::Untried;
            }
        }
        next
    }

    fn remove(&mut self, id: EchoId) {
        let Some(key) = self.ids.remove(&id) else {
            return;
        };
        if let Some(flow) = self.flows.remove(&key)
            && flow.socket.is_none()
        {
            self.idents.remove(&flow.ident);
        }
        if let Some(n) = self.per_container.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                self.per_container.remove(&key.0);
            }
        }
    }
}

/// An echo request (`request`) or reply with its checksum (RFC 792).
fn echo_message(request: bool, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let echo = IcmpEchoHeader { id, seq };
    let icmp_type = if request {
        Icmpv4Type::EchoRequest(echo)
    } else {
        Icmpv4Type::EchoReply(echo)
    };
    let header = Icmpv4Header::with_checksum(icmp_type, data);
    let mut message = Vec::with_capacity(8 + data.len());
    message.extend_from_slice(&header.to_bytes());
    message.extend_from_slice(data);
    message
}

/// Why a ping socket could not be opened.
#[derive(Debug)]
enum OpenError {
    /// Creating it failed: ping sockets are not allowed (or not built in).
    Socket(io::Error),
    /// Connecting it to the destination failed (no route).
    Connect(io::Error),
}

/// A ping socket connected to `dst`.
fn ping_socket(dst: Ipv4Addr) -> Result<UdpSocket, OpenError> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4))
        .map_err(OpenError::Socket)?;
    socket
        .connect(&SockAddr::from(SocketAddrV4::new(dst, 0)))
        .map_err(OpenError::Connect)?;
    register(socket).map_err(OpenError::Socket)
}

/// The domain's raw ICMP socket.
fn raw_socket() -> io::Result<UdpSocket> {
    register(Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::ICMPV4),
    )?)
}

/// Registers an ICMP socket with the runtime.
///
/// Tokio's `UdpSocket` is a registered datagram descriptor whose calls are plain `send`,
/// `sendto` and `recv`, which is all an ICMP socket needs; it owns the descriptor, so unlike
/// `AsyncFd` (whose safe constructors are deprecated for I/O safety) it needs no `unsafe`.
fn register(socket: Socket) -> io::Result<UdpSocket> {
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(std::net::UdpSocket::from(socket))
}

/// Hands an event to the gateway task, waiting for room; `false` once the task must end.
async fn report(
    events: &mpsc::Sender<Event>,
    cancel: &CancellationToken,
    event: IcmpEvent,
) -> bool {
    tokio::select! {
        biased;
        () = cancel.cancelled() => false,
        sent = events.send(Event::Icmp(event)) => sent.is_ok(),
    }
}

/// A ping socket's receive side: the kernel delivers only replies to this socket's
/// identifier, ICMP header first.
async fn ping_task(
    flow: EchoId,
    socket: Arc<UdpSocket>,
    recv_len: usize,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    let parse = move |packet: &[u8]| {
        let icmp = Icmpv4Slice::from_slice(packet).ok()?;
        let Icmpv4Type::EchoReply(echo) = icmp.icmp_type() else {
            return None;
        };
        Some(IcmpEvent::Reply {
            flow,
            seq: echo.seq,
            data: icmp.payload().to_vec(),
        })
    };
    receive(socket, recv_len, events, cancel, parse, "ping socket").await;
}

/// The raw socket's receive side: every ICMP packet of the namespace, IP header first; only
/// echo replies with a valid checksum are passed on (a raw socket gets packets before the
/// kernel's ICMP code checks them).
async fn raw_task(
    socket: Arc<UdpSocket>,
    recv_len: usize,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    receive(
        socket,
        recv_len,
        events,
        cancel,
        raw_reply,
        "raw ICMP socket",
    )
    .await;
}

/// Reads `socket` until cancelled or broken, reporting what `parse` makes of each packet.
async fn receive(
    socket: Arc<UdpSocket>,
    recv_len: usize,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
    parse: impl Fn(&[u8]) -> Option<IcmpEvent>,
    what: &'static str,
) {
    let mut buf = vec![0; recv_len];
    loop {
        let n = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            r = socket.recv(&mut buf) => match r {
                Ok(n) => n,
                Err(e) if icmp_reported(&e) => continue,
                Err(e) => {
                    warn!(socket = what, error = %e, "ICMP socket stopped receiving");
                    return;
                }
            },
        };
        let Some(event) = parse(&buf[..n]) else {
            continue;
        };
        if !report(&events, &cancel, event).await {
            return;
        }
    }
}

/// The echo reply in an IPv4 packet read from the raw socket, if it is one.
pub(super) fn raw_reply(packet: &[u8]) -> Option<IcmpEvent> {
    let ip = Ipv4Slice::from_slice(packet).ok()?;
    if ip.is_payload_fragmented() || ip.header().protocol().0 != PROTO_ICMP {
        return None;
    }
    let icmp = Icmpv4Slice::from_slice(ip.payload().payload).ok()?;
    let Icmpv4Type::EchoReply(echo) = icmp.icmp_type() else {
        return None;
    };
    if icmp.icmp_type().calc_checksum(icmp.payload()) != icmp.checksum() {
        return None;
    }
    Some(IcmpEvent::RawReply {
        from: ip.header().source_addr(),
        ident: echo.id,
        seq: echo.seq,
        data: icmp.payload().to_vec(),
    })
}

#[cfg(test)]
mod tests;
