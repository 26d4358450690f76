//! TCP translation: containers' connections are terminated on smoltcp and carried over the
//! daemon's own sockets (the slirp/pasta model).
//!
//! One smoltcp [`Interface`] per domain (`Medium::Ip`, AnyIP) holds a socket for every carried
//! connection. Its "device" ([`GwDevice`]) receives the one packet the gateway task is
//! injecting and sends through [`Egress`], which adds the Ethernet header.
//!
//! # A flow's life
//!
//! Outbound (a container connects out):
//! 1. A pure SYN for a 4-tuple the gateway does not know is routed ([`NatConfig::route`]).
//!    `Forward` keeps the SYN and starts a flow task that connects the host socket; the
//!    container's retransmitted SYNs are dropped meanwhile ([`DropReason::NatConnecting`]).
//! 2. The task reports [`TcpEvent::Connected`]. Success: a socket listening on exactly the
//!    destination is created and the saved SYN injected at once, so smoltcp answers the
//!    SYN-ACK (and no other SYN can find the socket listening). Refused: the SYN is injected
//!    with no socket listening, and smoltcp answers with a RST (RFC 9293 section 3.10.7.1).
//!    Unreachable or timed out: an ICMP destination unreachable (RFC 792).
//!
//! Inbound (a client connects to a published port): the accept loop reports
//! [`TcpEvent::Inbound`]; the gateway opens a socket toward the container from the client's
//! address (or its own, see [`TcpNat::local_for`]).
//!
//! Then, for both: the flow task reads the host socket in chunks ([`TcpEvent::Data`]), at
//! most [`CREDITS`] chunks ahead of what smoltcp's send buffer took (the semaphore in
//! [`FlowShared`]); the gateway task moves what the container sent to the flow task over a
//! bounded channel ([`ToHost`]), and stops dequeuing when it is full, so smoltcp's window
//! closes. Closing is carried both ways, half-close included: host EOF → FIN to the container,
//! container FIN → `shutdown(Write)` on the host socket; a RST either way → RST the other way
//! (a host socket is reset by closing it with `SO_LINGER` 0). A flow is removed once both
//! directions are closed and its socket is CLOSED or in TIME-WAIT (TIME-WAIT is not kept: the
//! gateway has no port to protect from reuse, and a late FIN is answered with a RST).
//!
//! Timeouts (see the module documentation of [`super`]): an idle established flow is reset
//! after `tcp_idle`; a flow that is connecting, handshaking or closing after
//! `tcp_transitory` without activity.
//!
//! Large segments: the MSS option of the container's SYN and SYN-ACK is raised before smoltcp
//! sees it, so smoltcp emits segments of up to [`BIG_MSS`] bytes; they leave as GSO
//! super-frames (`gso_mss` of the real MSS) that the container's kernel takes whole.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etherparse::checksum::Sum16BitWords;
use etherparse::{Icmpv4Type, Ipv4HeaderSlice, PacketBuilder, TcpHeaderSlice, icmpv4};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpCidr, IpListenEndpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{Ctx, Egress, Event, HEADROOM, Ingress, NatConfig, Proto, PublishId, Route, TxOffload};
use crate::counters::DropReason;

/// Bytes of each smoltcp socket's receive and send buffers: enough window for a fast local
/// path (window scaling is negotiated whenever the container offers it, RFC 7323).
const SOCKET_BUFFER: usize = 256 * 1024;

/// Largest chunk a flow task reads from its host socket, and the largest the gateway hands it.
const CHUNK: usize = 64 * 1024;

/// Chunks a flow task may read ahead of smoltcp's send buffer.
const CREDITS: usize = 4;

/// Chunks queued toward a host socket before the gateway stops dequeuing from smoltcp.
const TO_HOST_QUEUE: usize = 8;

/// Chunk buffers a domain keeps for reuse (4 MiB at most).
const POOL_CHUNKS: usize = 64;

/// The MSS the gateway's stack is told the container accepts; the real one is applied by the
/// container's kernel when it takes the GSO super-frame apart (or not at all when it delivers
/// it locally). 65000 bytes of IP packet leave room for the headers of the tap's frame.
const BIG_MSS: u16 = 65000 - 40;

/// The IP packet size smoltcp may receive and send: anything an IPv4 length can describe, so
/// containers' TSO super-frames are taken whole.
const DEVICE_MTU: usize = 65535;

/// Bound on the egress passes of one poll; each pass sends at most one segment per socket.
const EGRESS_PASSES: usize = 256;

/// First and last port the gateway picks for its own address when it cannot show a client's
/// address to the container (Linux's default ephemeral range).
const EPHEMERAL: (u16, u16) = (32768, 60999);

/// Identifies a flow between the gateway task and the flow's task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlowId(u64);

/// Why a host connection could not be opened, in terms of what the container is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectFailure {
    /// Refused (`ECONNREFUSED`, or any error without a better answer): a RST.
    Refused,
    /// `EHOSTUNREACH` or no answer in time: ICMP host unreachable.
    HostUnreachable,
    /// `ENETUNREACH`: ICMP net unreachable.
    NetUnreachable,
}

impl ConnectFailure {
    fn of(e: &io::Error) -> ConnectFailure {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
            io::ErrorKind::HostUnreachable | io::ErrorKind::TimedOut => {
                ConnectFailure::HostUnreachable
            }
            io::ErrorKind::NetworkUnreachable => ConnectFailure::NetUnreachable,
            _ => match e.raw_os_error() {
                Some(libc::EHOSTUNREACH) | Some(libc::ETIMEDOUT) => ConnectFailure::HostUnreachable,
                Some(libc::ENETUNREACH) => ConnectFailure::NetUnreachable,
                _ => ConnectFailure::Refused,
            },
        }
    }
}

/// What a TCP flow task (or an accept loop) reports to the gateway task.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    /// An outbound flow's host connection is open, or why not.
    Connected {
        flow: FlowId,
        result: Result<(), ConnectFailure>,
    },
    /// Bytes the host sent, for the container.
    Data { flow: FlowId, data: Vec<u8> },
    /// The host closed its sending half.
    Eof { flow: FlowId },
    /// The host socket failed or was reset.
    Failed { flow: FlowId },
    /// A flow task's queue toward the host has room again (the next poll serves it).
    Writable,
    /// A client connected to a published port.
    Inbound {
        target: SocketAddrV4,
        stream: TcpStream,
        client: SocketAddr,
    },
}

/// What the gateway task hands a flow task for its host socket.
#[derive(Debug)]
enum ToHost {
    Data(Vec<u8>),
    /// The container closed its sending half: `shutdown(Write)`.
    Fin,
}

/// The chunk buffers that travel between the gateway task and the flow tasks: taken by whoever
/// fills one (a flow task reading its host socket, the gateway reading smoltcp), given back by
/// whoever empties it, so carrying bytes allocates nothing once the pool is warm. The lock is
/// held for a push or a pop, never across I/O.
#[derive(Debug, Default)]
pub(crate) struct ChunkPool(std::sync::Mutex<Vec<Vec<u8>>>);

impl ChunkPool {
    /// An empty buffer with room for a whole chunk.
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .expect("chunk pool lock poisoned")
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK))
    }

    /// Keeps `buf` for the next [`Self::take`], unless the pool is full.
    fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() < CHUNK {
            return;
        }
        buf.clear();
        let mut pool = self.0.lock().expect("chunk pool lock poisoned");
        if pool.len() < POOL_CHUNKS {
            pool.push(buf);
        }
    }
}

/// State shared between the gateway task and one flow task.
#[derive(Debug)]
struct FlowShared {
    /// Chunks the flow task may still read ahead; the gateway gives one back per chunk that
    /// smoltcp's send buffer took.
    credits: Semaphore,
    /// The gateway waits for room in the queue toward the host; the flow task reports
    /// [`TcpEvent::Writable`] when it takes the next chunk.
    wake: AtomicBool,
    /// When the flow task is cancelled: reset the host socket (`SO_LINGER` 0) rather than
    /// close it.
    reset: AtomicBool,
}

/// A connection's 4-tuple, as the container sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Tuple {
    container: SocketAddrV4,
    remote: SocketAddrV4,
}

/// A chunk from the host, partly copied into smoltcp's send buffer.
#[derive(Debug)]
struct Chunk {
    data: Vec<u8>,
    sent: usize,
}

/// One carried connection.
#[derive(Debug)]
struct Flow {
    tuple: Tuple,
    /// Opened by the container (counts against its limit).
    outbound: bool,
    /// `None` while the host connection is being opened.
    socket: Option<SocketHandle>,
    /// The container's SYN, kept while connecting.
    syn: Option<Vec<u8>>,
    to_host: mpsc::Sender<ToHost>,
    shared: Arc<FlowShared>,
    cancel: CancellationToken,
    /// Host chunks not yet (wholly) in smoltcp's send buffer.
    inbox: VecDeque<Chunk>,
    /// The host sent EOF.
    host_eof: bool,
    /// `close()` was called: our FIN is queued toward the container.
    tx_closed: bool,
    /// The container's FIN was received.
    container_fin: bool,
    /// The container's FIN was handed to the flow task.
    fin_to_host: bool,
    /// The handshake with the container completed.
    established: bool,
    /// The gateway reset the connection (timeout, host failure).
    aborted: bool,
    last_active: Instant,
}

impl Flow {
    /// When the flow expires without activity.
    fn deadline(&self, ctx: &Ctx<'_>) -> Instant {
        let t = &ctx.config.timeouts;
        let open = self.established
            && !self.host_eof
            && !self.container_fin
            && !self.aborted
            && self.socket.is_some();
        self.last_active + if open { t.tcp_idle } else { t.tcp_transitory }
    }

    /// Hands the container's FIN to the flow task; `false` when its queue is full (the flow
    /// task wakes the gateway when it has room).
    fn fin_to_host(&mut self) -> bool {
        if self.fin_to_host {
            return true;
        }
        let permit = match self.to_host.try_reserve() {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Closed(())) => {
                self.fin_to_host = true;
                return true;
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                self.shared.wake.store(true, Ordering::SeqCst);
                // Room may have appeared between the two; without a retry, the wake-up
                // could be missed.
                match self.to_host.try_reserve() {
                    Ok(p) => p,
                    Err(_) => return false,
                }
            }
        };
        permit.send(ToHost::Fin);
        self.fin_to_host = true;
        true
    }

    /// Resets the host side: the flow task closes its socket with `SO_LINGER` 0.
    fn reset_host(&self) {
        self.shared.reset.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }
}

/// The domain's TCP flows.
pub(crate) struct TcpNat {
    iface: Interface,
    sockets: SocketSet<'static>,
    flows: HashMap<FlowId, Flow>,
    tuples: HashMap<Tuple, FlowId>,
    /// Outbound flows per container address, for [`super::Limits::tcp_per_container`].
    per_container: HashMap<Ipv4Addr, usize>,
    publications: HashMap<PublishId, Vec<CancellationToken>>,
    next_flow: u64,
    next_port: u16,
    /// The egress buffer smoltcp writes into, behind [`HEADROOM`].
    tx: Vec<u8>,
    /// A copy of a SYN whose MSS is being raised.
    scratch: Vec<u8>,
    /// Flows found finished by the last poll.
    done: Vec<FlowId>,
    /// Chunk buffers shared with the flow tasks.
    pool: Arc<ChunkPool>,
    /// smoltcp's clock starts here.
    epoch: Instant,
    mtu: usize,
}

impl std::fmt::Debug for TcpNat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpNat")
            .field("flows", &self.flows.len())
            .field("publications", &self.publications.len())
            .finish_non_exhaustive()
    }
}

/// The gateway side of smoltcp: receives the packet being injected, sends through
/// [`Egress`].
struct GwDevice<'a> {
    rx: Option<&'a [u8]>,
    tx: &'a mut Vec<u8>,
    egress: Option<&'a dyn Egress>,
    mtu: usize,
}

/// The packet being injected.
struct RxToken<'a>(&'a [u8]);

/// Writes one packet behind [`HEADROOM`] and sends it.
struct TxToken<'a> {
    buf: &'a mut Vec<u8>,
    egress: Option<&'a dyn Egress>,
    mtu: usize,
}

impl phy::Device for GwDevice<'_> {
    type RxToken<'b>
        = RxToken<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b>
    where
        Self: 'b;

    fn receive(
        &mut self,
        _: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let packet = self.rx.take()?;
        Some((
            RxToken(packet),
            TxToken {
                buf: self.tx,
                egress: self.egress,
                mtu: self.mtu,
            },
        ))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken {
            buf: self.tx,
            egress: self.egress,
            mtu: self.mtu,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = DEVICE_MTU;
        // Containers' TAPs use checksum offload, so what they send may carry partial
        // checksums: never verify. TCP checksums are written by `finish_tcp`, which knows
        // whether the packet leaves as a super-frame.
        let mut checksum = ChecksumCapabilities::ignored();
        checksum.ipv4 = Checksum::Tx;
        checksum.icmpv4 = Checksum::Tx;
        caps.checksum = checksum;
        caps
    }
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let end = HEADROOM + len;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        let r = f(&mut self.buf[HEADROOM..end]);
        if let Some(egress) = self.egress {
            let offload = finish_tcp(&mut self.buf[HEADROOM..end], self.mtu);
            egress.send(&mut self.buf[..end], offload);
        }
        r
    }
}

/// Completes a TCP packet smoltcp emitted, leaving its checksum (RFC 9293 section 3.1) to
/// the receiving kernel: the checksum field gets the pseudo-header sum (virtio `NEEDS_CSUM`,
/// as a NIC's checksum offload), so the gateway never reads the payload again. A packet larger
/// than the MTU leaves as a GSO super-frame, cut into segments of the returned size.
fn finish_tcp(packet: &mut [u8], mtu: usize) -> TxOffload {
    let (src, dst, ihl) = match Ipv4HeaderSlice::from_slice(packet) {
        Ok(ip) if ip.protocol() == etherparse::IpNumber::TCP => {
            (ip.source(), ip.destination(), ip.slice().len())
        }
        _ => return TxOffload::None,
    };
    let segment = &mut packet[ihl..];
    let thl = match TcpHeaderSlice::from_slice(segment) {
        Ok(h) => h.slice().len(),
        Err(_) => return TxOffload::None,
    };
    let Ok(len) = u16::try_from(segment.len()) else {
        return TxOffload::None;
    };
    let pseudo = Sum16BitWords::new()
        .add_4bytes(src)
        .add_4bytes(dst)
        .add_2bytes([0, etherparse::IpNumber::TCP.0])
        .add_2bytes(len.to_be_bytes());
    // The folded pseudo-header sum, not complemented (Linux `~tcp_v4_check(len, ..)`).
    let partial = (!pseudo.ones_complement()).to_be();
    segment[16..18].copy_from_slice(&partial.to_be_bytes());
    if ihl + segment.len() <= mtu {
        return TxOffload::Checksum;
    }
    match mtu
        .checked_sub(ihl + thl)
        .and_then(|mss| u16::try_from(mss).ok())
    {
        Some(mss) => TxOffload::Segment(mss),
        // An MTU too small for the headers: nothing to cut it into.
        None => TxOffload::Checksum,
    }
}

/// Raises the MSS option (RFC 9293 section 3.7.1) of a SYN's TCP header to [`BIG_MSS`], so
/// smoltcp sends large segments; see the module documentation.
fn raise_mss(segment: &mut [u8]) {
    let Ok(header) = TcpHeaderSlice::from_slice(segment) else {
        return;
    };
    let thl = header.slice().len();
    let options = &mut segment[20..thl];
    let mut at = 0;
    // RFC 9293 section 3.1: kind 0 ends the list, kind 1 is one byte of padding, every other
    // option has a length byte covering kind and length.
    while at < options.len() {
        match options[at] {
            0 => break,
            1 => at += 1,
            kind => {
                let Some(&len) = options.get(at + 1) else {
                    break;
                };
                let len = usize::from(len);
                if len < 2 || at + len > options.len() {
                    break;
                }
                if kind == 2 && len == 4 {
                    let mss = u16::from_be_bytes([options[at + 2], options[at + 3]]);
                    // Never lower it (a container may run with a larger MTU than we think).
                    let mss = mss.max(BIG_MSS);
                    options[at + 2..at + 4].copy_from_slice(&mss.to_be_bytes());
                }
                at += len;
            }
        }
    }
}

/// Writes an ICMP destination unreachable (RFC 792) from the gateway to the sender of
/// `packet`, quoting its IP header and the first 8 bytes of its payload (RFC 792, RFC 1122
/// section 3.2.2), into `buf` behind [`HEADROOM`]. `false` if `packet` is not IPv4.
fn write_unreachable(
    buf: &mut Vec<u8>,
    gateway: Ipv4Addr,
    packet: &[u8],
    code: icmpv4::DestUnreachableHeader,
) -> bool {
    let Ok(ip) = Ipv4HeaderSlice::from_slice(packet) else {
        return false;
    };
    let quote = &packet[..packet.len().min(ip.slice().len() + 8)];
    buf.clear();
    buf.resize(HEADROOM, 0);
    PacketBuilder::ipv4(gateway.octets(), ip.source(), 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(code))
        .write(buf, quote)
        .is_ok()
}

/// A random seed for smoltcp's initial sequence numbers (RFC 9293 section 3.4.1 wants them
/// unpredictable); std's per-process hash keys are random enough for that.
fn random_seed() -> u64 {
    RandomState::new().hash_one(std::process::id())
}

/// A socket for one flow; `timeout` bounds how long the container may leave a handshake or
/// sent data unanswered before smoltcp gives up and resets (a container that went away; RFC
/// 1122 section 4.2.3.5). [`TcpNat::service`] lifts it while there is nothing to answer, as
/// smoltcp would otherwise also end idle connections.
fn new_socket(timeout: Duration) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
    );
    // The host side already coalesces, and the gateway acknowledges once per batch of
    // frames: neither Nagle nor delayed ACKs would save anything.
    s.set_nagle_enabled(false);
    s.set_ack_delay(None);
    s.set_timeout(Some(smol_duration(timeout)));
    s
}

fn smol_duration(d: Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl TcpNat {
    pub(crate) fn new(config: &NatConfig) -> Self {
        let epoch = Instant::now();
        let mut tx = vec![0; HEADROOM + 2048];
        let mut device = GwDevice {
            rx: None,
            tx: &mut tx,
            egress: None,
            mtu: usize::from(config.mtu),
        };
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = random_seed();
        let mut iface = Interface::new(cfg, &mut device, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(config.gateway.ip.into(), config.prefix));
        });
        // AnyIP: smoltcp takes packets for any destination that is routed via one of its own
        // addresses, so a default route via the gateway's address makes it accept them all.
        let _ = iface.routes_mut().add_default_ipv4_route(config.gateway.ip);
        iface.set_any_ip(true);
        TcpNat {
            iface,
            sockets: SocketSet::new(Vec::new()),
            flows: HashMap::new(),
            tuples: HashMap::new(),
            per_container: HashMap::new(),
            publications: HashMap::new(),
            next_flow: 0,
            next_port: EPHEMERAL.0,
            tx,
            scratch: Vec::new(),
            done: Vec::new(),
            pool: Arc::new(ChunkPool::default()),
            epoch,
            mtu: usize::from(config.mtu),
        }
    }

    fn smol_now(&self, now: Instant) -> smoltcp::time::Instant {
        let micros = now.saturating_duration_since(self.epoch).as_micros();
        smoltcp::time::Instant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    /// Runs one packet through smoltcp.
    fn inject(&mut self, ctx: &Ctx<'_>, packet: &[u8]) {
        let now = self.smol_now(ctx.now);
        let mut device = GwDevice {
            rx: Some(packet),
            tx: &mut self.tx,
            egress: Some(ctx.egress),
            mtu: self.mtu,
        };
        self.iface
            .poll_ingress_single(now, &mut device, &mut self.sockets);
    }

    /// Runs a SYN through smoltcp with its MSS raised.
    fn inject_syn(&mut self, ctx: &Ctx<'_>, packet: &[u8]) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(packet);
        if let Ok(ip) = Ipv4HeaderSlice::from_slice(&scratch) {
            let ihl = ip.slice().len();
            raise_mss(&mut scratch[ihl..]);
        }
        self.inject(ctx, &scratch);
        self.scratch = scratch;
    }

    /// A TCP packet from a container.
    pub(crate) fn on_packet(&mut self, ctx: &Ctx<'_>, p: &Ingress<'_>) {
        let Ok(tcp) = TcpHeaderSlice::from_slice(p.payload) else {
            return ctx
                .egress
                .drop_frame(Some(p.port), DropReason::NatMalformed);
        };
        let (syn, ack, rst) = (tcp.syn(), tcp.ack(), tcp.rst());
        let tuple = Tuple {
            container: SocketAddrV4::new(p.src, tcp.source_port()),
            remote: SocketAddrV4::new(p.dst, tcp.destination_port()),
        };
        if let Some(&id) = self.tuples.get(&tuple) {
            return self.on_flow_packet(ctx, id, p, syn, rst);
        }
        if syn && !ack && !rst {
            return self.on_syn(ctx, p, tuple);
        }
        // A segment of no connection: smoltcp answers it with a RST unless it is one
        // (RFC 9293 section 3.10.7.1).
        self.inject(ctx, p.packet);
    }

    /// A packet of a known flow.
    fn on_flow_packet(&mut self, ctx: &Ctx<'_>, id: FlowId, p: &Ingress<'_>, syn: bool, rst: bool) {
        let flow = self.flows.get_mut(&id).expect("tuples index flows");
        flow.last_active = ctx.now;
        let Some(handle) = flow.socket else {
            if rst {
                // The container gave up on the connection.
                flow.cancel.cancel();
                self.remove(ctx, id);
            } else {
                ctx.egress
                    .drop_frame(Some(p.port), DropReason::NatConnecting);
            }
            return;
        };
        if syn {
            self.inject_syn(ctx, p.packet);
        } else {
            self.inject(ctx, p.packet);
        }
        self.observe(id, handle);
    }

    /// Notes what the last packet did to a flow's socket.
    fn observe(&mut self, id: FlowId, handle: SocketHandle) {
        let Some(flow) = self.flows.get_mut(&id) else {
            return;
        };
        let socket = self.sockets.get_mut::<tcp::Socket<'_>>(handle);
        match socket.state() {
            // RFC 9293 section 3.10.7.3: a RST in SYN-RECEIVED returns a passively opened
            // socket to LISTEN. This one listened for a single connection, which is over; it
            // must not stay listening for someone else's SYN.
            tcp::State::Listen => {
                socket.abort();
                flow.reset_host();
                flow.aborted = true;
            }
            tcp::State::CloseWait
            | tcp::State::LastAck
            | tcp::State::Closing
            | tcp::State::TimeWait => flow.container_fin = true,
            _ => {}
        }
    }

    /// A container's SYN for a 4-tuple the gateway does not know: a new outbound flow.
    fn on_syn(&mut self, ctx: &Ctx<'_>, p: &Ingress<'_>, tuple: Tuple) {
        match ctx.config.route(Some(Proto::Tcp), tuple.remote) {
            Route::Drop(reason) => ctx.egress.drop_frame(Some(p.port), reason),
            // Nothing listens there: RST, as a closed port does (RFC 9293 3.10.7.1).
            Route::Closed => self.inject(ctx, p.packet),
            Route::Forward(addr) => {
                let open = self.per_container.get(&p.src).copied().unwrap_or(0);
                if open >= ctx.config.limits.tcp_per_container {
                    ctx.egress
                        .drop_frame(Some(p.port), DropReason::NatFlowLimit);
                    // Refused at once rather than left to time out.
                    return self.inject(ctx, p.packet);
                }
                *self.per_container.entry(p.src).or_default() += 1;
                let id = self.add_flow(ctx, tuple, true, None, Start::Connect(addr));
                if let Some(flow) = self.flows.get_mut(&id) {
                    flow.syn = Some(p.packet.to_vec());
                }
            }
        }
    }

    /// Registers a flow and starts its task.
    fn add_flow(
        &mut self,
        ctx: &Ctx<'_>,
        tuple: Tuple,
        outbound: bool,
        socket: Option<SocketHandle>,
        start: Start,
    ) -> FlowId {
        self.next_flow += 1;
        let id = FlowId(self.next_flow);
        let (to_host, to_host_rx) = mpsc::channel(TO_HOST_QUEUE);
        let shared = Arc::new(FlowShared {
            credits: Semaphore::new(CREDITS),
            wake: AtomicBool::new(false),
            reset: AtomicBool::new(false),
        });
        let cancel = ctx.cancel.child_token();
        tokio::spawn(flow_task(FlowTask {
            id,
            start,
            events: ctx.events.clone(),
            to_host: to_host_rx,
            shared: shared.clone(),
            cancel: cancel.clone(),
            connect_timeout: ctx.config.timeouts.tcp_transitory,
            pool: self.pool.clone(),
        }));
        self.flows.insert(
            id,
            Flow {
                tuple,
                outbound,
                socket,
                syn: None,
                to_host,
                shared,
                cancel,
                inbox: VecDeque::new(),
                host_eof: false,
                tx_closed: false,
                container_fin: false,
                fin_to_host: false,
                established: false,
                aborted: false,
                last_active: ctx.now,
            },
        );
        self.tuples.insert(tuple, id);
        ctx.gauges.tcp_flows.fetch_add(1, Ordering::Relaxed);
        id
    }

    /// Forgets a flow; its task is left to finish what it was given (callers cancel it when
    /// the host side must go).
    fn remove(&mut self, ctx: &Ctx<'_>, id: FlowId) {
        let Some(flow) = self.flows.remove(&id) else {
            return;
        };
        self.tuples.remove(&flow.tuple);
        if let Some(handle) = flow.socket {
            self.sockets.remove(handle);
        }
        if flow.outbound {
            let ip = *flow.tuple.container.ip();
            if let Some(n) = self.per_container.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_container.remove(&ip);
                }
            }
        }
        ctx.gauges.tcp_flows.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn on_event(&mut self, ctx: &Ctx<'_>, event: TcpEvent) {
        match event {
            TcpEvent::Connected { flow, result } => self.on_connected(ctx, flow, result),
            TcpEvent::Data { flow, data } => {
                if let Some(f) = self.flows.get_mut(&flow) {
                    f.last_active = ctx.now;
                    f.inbox.push_back(Chunk { data, sent: 0 });
                }
            }
            TcpEvent::Eof { flow } => {
                if let Some(f) = self.flows.get_mut(&flow) {
                    f.last_active = ctx.now;
                    f.host_eof = true;
                }
            }
            TcpEvent::Failed { flow } => {
                if let Some(f) = self.flows.get_mut(&flow) {
                    // The host reset: reset the container (smoltcp sends the RST).
                    f.aborted = true;
                    f.inbox.clear();
                    if let Some(h) = f.socket {
                        self.sockets.get_mut::<tcp::Socket<'_>>(h).abort();
                    }
                }
            }
            TcpEvent::Writable => {}
            TcpEvent::Inbound {
                target,
                stream,
                client,
            } => self.on_inbound(ctx, target, stream, client),
        }
    }

    /// An outbound flow's host connection is open, or failed.
    fn on_connected(&mut self, ctx: &Ctx<'_>, id: FlowId, result: Result<(), ConnectFailure>) {
        let Some(flow) = self.flows.get_mut(&id) else {
            return;
        };
        let Some(syn) = flow.syn.take() else {
            return;
        };
        flow.last_active = ctx.now;
        let code = match result {
            Ok(()) => {
                let mut socket = new_socket(ctx.config.timeouts.tcp_transitory);
                let remote = flow.tuple.remote;
                let endpoint = IpListenEndpoint {
                    addr: Some((*remote.ip()).into()),
                    port: remote.port(),
                };
                if socket.listen(endpoint).is_err() {
                    flow.reset_host();
                    self.remove(ctx, id);
                    return self.inject(ctx, &syn);
                }
                let handle = self.sockets.add(socket);
                flow.socket = Some(handle);
                // At once: while this socket listens, any SYN for the destination would
                // land in it.
                self.inject_syn(ctx, &syn);
                self.observe(id, handle);
                let socket = self.sockets.get_mut::<tcp::Socket<'_>>(handle);
                if socket.state() == tcp::State::Listen {
                    socket.abort();
                }
                return;
            }
            Err(ConnectFailure::Refused) => {
                self.remove(ctx, id);
                return self.inject(ctx, &syn);
            }
            Err(ConnectFailure::HostUnreachable) => icmpv4::DestUnreachableHeader::Host,
            Err(ConnectFailure::NetUnreachable) => icmpv4::DestUnreachableHeader::Network,
        };
        self.remove(ctx, id);
        if write_unreachable(&mut self.tx, ctx.config.gateway.ip, &syn, code) {
            ctx.egress.send(&mut self.tx, TxOffload::None);
        }
    }

    /// The address and port the container sees a published port's client connect from.
    ///
    /// The client's own, unless the container could not answer it: a loopback source is a
    /// martian the container's kernel drops, an IPv6 one it cannot reach, one on the
    /// domain's subnet it would answer directly. Those connect from the gateway's address
    /// and a free port of its own.
    fn local_for(
        &mut self,
        ctx: &Ctx<'_>,
        client: SocketAddr,
        target: SocketAddrV4,
    ) -> SocketAddrV4 {
        let ip = match client {
            SocketAddr::V4(a) => Some(*a.ip()),
            SocketAddr::V6(a) => a.ip().to_ipv4_mapped(),
        };
        if let Some(ip) = ip
            && !ip.is_loopback()
            && !ip.is_unspecified()
            && !ip.is_broadcast()
            && !ip.is_multicast()
            && !ctx.config.on_link(ip)
        {
            let local = SocketAddrV4::new(ip, client.port());
            let tuple = Tuple {
                container: target,
                remote: local,
            };
            if client.port() != 0 && !self.tuples.contains_key(&tuple) {
                return local;
            }
        }
        let gw = ctx.config.gateway.ip;
        let span = usize::from(EPHEMERAL.1 - EPHEMERAL.0) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port >= EPHEMERAL.1 {
                EPHEMERAL.0
            } else {
                port + 1
            };
            let local = SocketAddrV4::new(gw, port);
            let tuple = Tuple {
                container: target,
                remote: local,
            };
            if !self.tuples.contains_key(&tuple) {
                return local;
            }
        }
        // Every port in use toward this one container port: reuse one; smoltcp's socket
        // for it will refuse the duplicate.
        SocketAddrV4::new(gw, EPHEMERAL.0)
    }

    /// A client connected to a published port: open a connection to the container.
    fn on_inbound(
        &mut self,
        ctx: &Ctx<'_>,
        target: SocketAddrV4,
        stream: TcpStream,
        client: SocketAddr,
    ) {
        let Some(neighbor) = ctx.egress.neighbor(*target.ip()) else {
            // The container is gone (or not up yet): refuse the client.
            ctx.egress.drop_frame(None, DropReason::NatNoNeighbor);
            return;
        };
        let local = self.local_for(ctx, client, target);
        let tuple = Tuple {
            container: target,
            remote: local,
        };
        if self.tuples.contains_key(&tuple) {
            ctx.egress
                .drop_frame(Some(neighbor.port), DropReason::NatFlowLimit);
            return;
        }
        let mut socket = new_socket(ctx.config.timeouts.tcp_transitory);
        if let Err(e) = socket.connect(self.iface.context(), target, local) {
            debug!(%client, %target, error = ?e, "cannot open a published connection");
            ctx.egress
                .drop_frame(Some(neighbor.port), DropReason::NatUnsupported);
            return;
        }
        let handle = self.sockets.add(socket);
        self.add_flow(ctx, tuple, false, Some(handle), Start::Accepted(stream));
    }

    /// Moves data between smoltcp and a flow task and closes what the other side closed.
    fn service(flow: &mut Flow, socket: &mut tcp::Socket<'_>, timeout: Duration, pool: &ChunkPool) {
        if flow.aborted {
            return;
        }
        // Host → container, as far as the send buffer takes it.
        while let Some(chunk) = flow.inbox.front_mut() {
            if !socket.may_send() {
                break;
            }
            let n = socket.send_slice(&chunk.data[chunk.sent..]).unwrap_or(0);
            chunk.sent += n;
            if chunk.sent < chunk.data.len() {
                break;
            }
            if let Some(done) = flow.inbox.pop_front() {
                pool.give(done.data);
            }
            flow.shared.credits.add_permits(1);
        }
        // RFC 9293 section 3.10.4: CLOSE once everything the host sent is queued.
        if flow.host_eof && !flow.tx_closed && flow.inbox.is_empty() && socket.may_send() {
            socket.close();
            flow.tx_closed = true;
        }
        // Container → host, as long as the flow task's queue has room.
        while socket.can_recv() {
            let permit = match flow.to_host.try_reserve() {
                Ok(p) => p,
                Err(mpsc::error::TrySendError::Full(())) => {
                    flow.shared.wake.store(true, Ordering::SeqCst);
                    match flow.to_host.try_reserve() {
                        Ok(p) => p,
                        Err(_) => break,
                    }
                }
                Err(mpsc::error::TrySendError::Closed(())) => {
                    // The flow task is gone: it reported why, or will.
                    break;
                }
            };
            let mut chunk = pool.take();
            let taken = socket.recv(|buf| {
                let n = buf.len().min(CHUNK);
                chunk.extend_from_slice(&buf[..n]);
                (n, ())
            });
            if taken.is_ok() && !chunk.is_empty() {
                permit.send(ToHost::Data(chunk));
            } else {
                pool.give(chunk);
                break;
            }
        }
        let state = socket.state();
        if matches!(
            state,
            tcp::State::CloseWait
                | tcp::State::LastAck
                | tcp::State::Closing
                | tcp::State::TimeWait
        ) {
            flow.container_fin = true;
        }
        // The container's FIN, once what came before it is delivered: half-close the host
        // socket.
        if flow.container_fin && socket.recv_queue() == 0 {
            flow.fin_to_host();
        }
        // Only while the container owes an answer for data or a handshake: smoltcp counts from
        // the container's last segment, which after an idle spell is long ago (an unanswered
        // FIN is left to the flow's own deadline).
        let waiting = socket.send_queue() > 0
            || matches!(state, tcp::State::SynSent | tcp::State::SynReceived);
        socket.set_timeout(waiting.then(|| smol_duration(timeout)));
    }

    /// Whether a flow is over, after the socket's egress; resets the host side when the
    /// container did.
    fn finished(flow: &mut Flow, socket: &mut tcp::Socket<'_>) -> bool {
        match socket.state() {
            tcp::State::Established
            | tcp::State::FinWait1
            | tcp::State::FinWait2
            | tcp::State::CloseWait
            | tcp::State::Closing
            | tcp::State::LastAck => {
                flow.established = true;
                false
            }
            tcp::State::TimeWait => {
                flow.established = true;
                flow.container_fin = true;
                socket.recv_queue() == 0 && flow.fin_to_host()
            }
            tcp::State::Closed if socket.remote_endpoint().is_some() => false, // RST to send
            tcp::State::Closed => {
                if !flow.aborted && flow.container_fin && flow.tx_closed {
                    // Closed after LAST-ACK: an orderly close.
                    socket.recv_queue() == 0 && flow.fin_to_host()
                } else {
                    if !flow.aborted {
                        // Reset by the container; refused, if it never accepted.
                        if flow.established {
                            flow.reset_host();
                        } else {
                            flow.cancel.cancel();
                        }
                    }
                    true
                }
            }
            tcp::State::Listen => {
                socket.abort();
                flow.reset_host();
                true
            }
            tcp::State::SynSent | tcp::State::SynReceived => false,
        }
    }

    /// Runs timers; returns when it must run next.
    pub(crate) fn poll(&mut self, ctx: &Ctx<'_>) -> Option<Instant> {
        let timeout = ctx.config.timeouts.tcp_transitory;
        for flow in self.flows.values_mut() {
            if let Some(h) = flow.socket {
                Self::service(
                    flow,
                    self.sockets.get_mut::<tcp::Socket<'_>>(h),
                    timeout,
                    &self.pool,
                );
            }
        }
        let now = self.smol_now(ctx.now);
        let mut device = GwDevice {
            rx: None,
            tx: &mut self.tx,
            egress: Some(ctx.egress),
            mtu: self.mtu,
        };
        for _ in 0..EGRESS_PASSES {
            if self.iface.poll_egress(now, &mut device, &mut self.sockets) == PollResult::None {
                break;
            }
        }
        let mut next: Option<Instant> = None;
        self.done.clear();
        for (&id, flow) in &mut self.flows {
            let finished = match flow.socket {
                Some(h) => Self::finished(flow, self.sockets.get_mut::<tcp::Socket<'_>>(h)),
                None => false,
            };
            if finished {
                self.done.push(id);
                continue;
            }
            let deadline = flow.deadline(ctx);
            if deadline <= ctx.now {
                // Expired: reset both sides (RFC 1122 section 4.2.3.5 leaves the limit to
                // the implementation).
                flow.aborted = true;
                flow.reset_host();
                match flow.socket {
                    Some(h) => {
                        self.sockets.get_mut::<tcp::Socket<'_>>(h).abort();
                        // The RST goes out on the next poll, right away.
                        next = Some(ctx.now);
                    }
                    None => self.done.push(id),
                }
                flow.last_active = ctx.now;
                continue;
            }
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
        let done = std::mem::take(&mut self.done);
        for &id in &done {
            self.remove(ctx, id);
        }
        self.done = done;
        if let Some(at) = self.iface.poll_at(now, &self.sockets) {
            let micros = u64::try_from(at.total_micros()).unwrap_or(0);
            let at = self.epoch + Duration::from_micros(micros);
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        next
    }

    /// Serves a published port's socket until [`Self::unpublish`].
    pub(crate) fn publish(
        &mut self,
        ctx: &Ctx<'_>,
        id: PublishId,
        target: SocketAddrV4,
        socket: std::net::TcpListener,
        netns: Option<super::Netns>,
    ) {
        let listener = match socket
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(socket))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(%target, error = %e, "cannot serve a published TCP port");
                return;
            }
        };
        let cancel = ctx.cancel.child_token();
        tokio::spawn(accept_loop(AcceptLoop {
            listener,
            target,
            events: ctx.events.clone(),
            cancel: cancel.clone(),
            splice: netns.map(|netns| SpliceTo {
                netns,
                carried: ctx.gauges.tcp_spliced.clone(),
                failures: ctx.gauges.tcp_splice_failures.clone(),
                limit: ctx.config.limits.spliced_per_network,
                flows: ctx.cancel.clone(),
            }),
        }));
        self.publications.entry(id).or_default().push(cancel);
        ctx.gauges.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops serving a publication's sockets; connections already carried may finish.
    pub(crate) fn unpublish(&mut self, ctx: &Ctx<'_>, id: PublishId) {
        if let Some(listeners) = self.publications.remove(&id) {
            for cancel in &listeners {
                cancel.cancel();
            }
            ctx.gauges
                .published
                .fetch_sub(listeners.len(), Ordering::Relaxed);
        }
    }
}

/// A published TCP listener's accept task.
struct AcceptLoop {
    listener: tokio::net::TcpListener,
    target: SocketAddrV4,
    events: mpsc::Sender<Event>,
    /// Stops accepting (unpublish).
    cancel: CancellationToken,
    /// Where loopback clients are spliced to, if anywhere.
    splice: Option<SpliceTo>,
}

/// The splice fast path of a publication (see [`super::splice`]).
struct SpliceTo {
    netns: super::Netns,
    /// The network's spliced connections (shared by its publications)...
    carried: Arc<std::sync::atomic::AtomicUsize>,
    /// ...and how many there may be; the clients beyond take the gateway path.
    limit: usize,
    /// Spliced connections that could not reach the container.
    failures: Arc<std::sync::atomic::AtomicU64>,
    /// Stops the carried connections (the gateway's own token: they outlive an unpublish).
    flows: CancellationToken,
}

impl SpliceTo {
    /// Whether `client` takes the fast path: it is on the daemon's loopback, and the network
    /// has room for another spliced connection, which this counts (see `splice::carry`).
    fn takes(&self, client: SocketAddr) -> bool {
        super::splice::is_loopback_client(client)
            && self
                .carried
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < self.limit).then_some(n + 1)
                })
                .is_ok()
    }
}

/// Accepts a published port's clients until cancelled; the listener closes when it returns.
/// Loopback clients go to the splice fast path when the publication has one, every other
/// client to the gateway task.
async fn accept_loop(task: AcceptLoop) {
    let AcceptLoop {
        listener,
        target,
        events,
        cancel,
        splice,
    } = task;
    loop {
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, client)) => {
                if let Some(s) = splice.as_ref().filter(|s| s.takes(client)) {
                    tokio::spawn(super::splice::carry(
                        stream,
                        s.netns.clone(),
                        target,
                        s.carried.clone(),
                        s.failures.clone(),
                        s.flows.child_token(),
                    ));
                    continue;
                }
                let event = Event::Tcp(TcpEvent::Inbound {
                    target,
                    stream,
                    client,
                });
                if events.send(event).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of descriptors, most likely: back off instead of spinning.
                debug!(%target, error = %e, "accept failed");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}

/// How a flow task gets its host socket.
#[derive(Debug)]
enum Start {
    /// Connect to the destination (outbound).
    Connect(SocketAddr),
    /// An accepted client (published port).
    Accepted(TcpStream),
}

/// What a flow task is given.
#[derive(Debug)]
struct FlowTask {
    id: FlowId,
    start: Start,
    events: mpsc::Sender<Event>,
    to_host: mpsc::Receiver<ToHost>,
    shared: Arc<FlowShared>,
    cancel: CancellationToken,
    connect_timeout: Duration,
    pool: Arc<ChunkPool>,
}

/// Owns one host socket: connects it (outbound), then shuttles bytes until both directions
/// are done, the socket fails, or the gateway cancels it.
async fn flow_task(task: FlowTask) {
    let FlowTask {
        id,
        start,
        events,
        mut to_host,
        shared,
        cancel,
        connect_timeout,
        pool,
    } = task;
    let mut stream = match start {
        Start::Accepted(stream) => stream,
        Start::Connect(addr) => {
            let connected = tokio::select! {
                () = cancel.cancelled() => return,
                r = tokio::time::timeout(connect_timeout, TcpStream::connect(addr)) => r,
            };
            let (stream, result) = match connected {
                Ok(Ok(s)) => (Some(s), Ok(())),
                Ok(Err(e)) => {
                    debug!(%addr, error = %e, "outbound connect failed");
                    (None, Err(ConnectFailure::of(&e)))
                }
                Err(_) => (None, Err(ConnectFailure::HostUnreachable)),
            };
            let event = Event::Tcp(TcpEvent::Connected { flow: id, result });
            if events.send(event).await.is_err() {
                return;
            }
            match stream {
                Some(s) => s,
                None => return,
            }
        }
    };
    let _ = stream.set_nodelay(true);
    let outcome = {
        let (mut rd, mut wr) = stream.split();
        let up = async {
            loop {
                match shared.credits.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return Err(()),
                }
                // Reads into the buffer's spare capacity (one chunk): no zeroing, no copy.
                let mut data = pool.take();
                let event = match rd.read_buf(&mut data).await {
                    Ok(0) => {
                        let _ = events.send(Event::Tcp(TcpEvent::Eof { flow: id })).await;
                        return Ok(());
                    }
                    Ok(_) => TcpEvent::Data { flow: id, data },
                    Err(_) => return Err(()),
                };
                events.send(Event::Tcp(event)).await.map_err(|_| ())?;
            }
        };
        let down = async {
            while let Some(msg) = to_host.recv().await {
                if shared.wake.swap(false, Ordering::SeqCst) {
                    let event = Event::Tcp(TcpEvent::Writable);
                    events.send(event).await.map_err(|_| ())?;
                }
                match msg {
                    ToHost::Data(data) => {
                        wr.write_all(&data).await.map_err(|_| ())?;
                        pool.give(data);
                    }
                    ToHost::Fin => wr.shutdown().await.map_err(|_| ())?,
                }
            }
            Ok::<(), ()>(())
        };
        tokio::select! {
            () = cancel.cancelled() => None,
            r = async { tokio::try_join!(up, down) } => Some(r),
        }
    };
    match outcome {
        None => {
            if shared.reset.load(Ordering::SeqCst) {
                // RFC 9293 section 3.10.4 ABORT: closing with a zero linger time sends a
                // RST instead of a FIN.
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            }
        }
        Some(Ok(_)) => {}
        Some(Err(())) => {
            let _ = events.send(Event::Tcp(TcpEvent::Failed { flow: id })).await;
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod splice_choice_tests {
    use super::*;

    fn splice_to(limit: usize) -> SpliceTo {
        SpliceTo {
            netns: super::super::Netns::new(
                std::fs::File::open("/proc/self/ns/net").unwrap().into(),
            ),
            carried: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            failures: Arc::default(),
            limit,
            flows: CancellationToken::new(),
        }
    }

    #[test]
    fn loopback_clients_are_spliced_up_to_the_limit_then_take_the_gateway() {
        let s = splice_to(2);
        let lo: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let v6: SocketAddr = "[::1]:40000".parse().unwrap();
        let outside: SocketAddr = "198.18.0.9:40000".parse().unwrap();
        assert!(!s.takes(outside), "only loopback clients are spliced");
        assert!(s.takes(lo));
        assert!(s.takes(v6));
        assert_eq!(
            s.carried.load(Ordering::Relaxed),
            2,
            "each splice is counted"
        );
        assert!(
            !s.takes(lo),
            "at the limit the client takes the gateway path"
        );
        s.carried.fetch_sub(1, Ordering::Relaxed);
        assert!(s.takes(lo), "room again once a spliced connection ended");
    }
}
