//! The data path: one task per port reads its TAP in batches, asks [`decide`] what to do with
//! each frame, and writes it to the destination TAPs; the gateway's own answers (ARP, ICMP
//! echo) go straight back to the asking port.
//!
//! Hot-path rules (STYLE.md): nothing is allocated per frame (each port task owns its read and
//! reply buffers; the port map is an `ArcSwap` snapshot), the bridge's mutex is held only
//! around `decide()` and never across a syscall, reads are batched until `EAGAIN`, a write the
//! kernel will not take at once is dropped and counted instead of waited for, and every drop
//! is counted switch-wide and on its port with its reason.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::counters::{Counters, DropReason, PortCounters, PortStats};
use crate::domain::{DomainConfig, DomainId};
use crate::forward::{
    Action, Bridge, BridgeError, Gateway, PortId, PortPolicy, TableConfig, Timestamp, decide,
};
use crate::frame::{FrameView, L3, MAX_READ_LEN};
use crate::gateway::{self, GatewayAddr};
use crate::nat::{
    self, GatewayFrame, GatewayTx, HEADROOM, Listener, NatCommand, NatConfig, NatStats, Neighbor,
    PublishId, Subnets,
};
use crate::poll::{BusyPoll, Contention, Pace};
use crate::tap::{AsyncTap, IoFailure};
use crate::vnet::VNET_HDR_LEN;
use crate::vnet::{
    VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VnetHeader,
};

/// How often a port task expires aged entries of its domain's learning table.
const EXPIRE_EVERY: Duration = Duration::from_secs(5);

/// Buffers kept for frames on their way to the gateway task, so the hot path does not allocate
/// once warm.
const GATEWAY_POOL: usize = 256;

/// One port's device and counters, shared by its reader task and by writers on other ports.
#[derive(Debug)]
struct PortIo {
    tap: AsyncTap,
    counters: PortCounters,
}

type PortMap = HashMap<PortId, Arc<PortIo>>;

/// What every port task of a domain shares.
#[derive(Debug)]
struct DomainShared {
    bridge: Mutex<Bridge>,
    ports: ArcSwap<PortMap>,
    gateway: GatewayAddr,
    gateway_port: PortId,
    counters: Arc<Counters>,
    epoch: Instant,
    last_expire_ms: AtomicU64,
    /// The endpoints' addresses, for the gateway's packets to them.
    neighbors: ArcSwap<HashMap<Ipv4Addr, Neighbor>>,
    /// The domain's gateway task; set once, right after the domain is created.
    nat: OnceLock<GatewayTx>,
    /// Recycled buffers for frames to the gateway task.
    pool: Mutex<Vec<Vec<u8>>>,
    /// The domain's MTU, above which the gateway's TCP packets are sent as GSO frames.
    mtu: u16,
    subnet: Ipv4Addr,
    prefix: u8,
}

impl DomainShared {
    fn now(&self) -> Timestamp {
        Timestamp::from_elapsed(self.epoch.elapsed())
    }

    fn drop_frame(&self, port: &PortIo, reason: DropReason) {
        self.counters.count_drop(reason);
        port.counters.count_drop(reason);
    }

    /// Writes one frame (virtio-net header included) to `dst`, counting the outcome on it.
    fn send(&self, dst: &PortIo, frame: &[u8]) {
        match dst.tap.try_write(frame) {
            Ok(_) => dst.counters.count_tx(frame.len() - VNET_HDR_LEN),
            Err(e) => {
                let reason = match IoFailure::of(&e) {
                    IoFailure::WouldBlock => DropReason::TxFull,
                    IoFailure::Down => DropReason::TxDown,
                    IoFailure::Rejected => DropReason::TxRejected,
                    IoFailure::Gone | IoFailure::Other => DropReason::TxError,
                };
                self.drop_frame(dst, reason);
            }
        }
    }

    fn maybe_expire(&self) {
        let now = self.now();
        let last = self.last_expire_ms.load(Ordering::Relaxed);
        let due = now.millis().saturating_sub(last) >= EXPIRE_EVERY.as_millis() as u64;
        if due
            && self
                .last_expire_ms
                .compare_exchange(last, now.millis(), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let expired = self
                .bridge
                .lock()
                .expect("bridge lock poisoned")
                .expire(now);
            if expired > 0 {
                debug!(expired, "learned MACs aged out");
            }
        }
    }

    /// Handles one frame read from `ingress` (`frame` starts with its virtio-net header).
    fn forward(&self, ingress: PortId, io: &PortIo, frame: &mut [u8], reply: &mut Vec<u8>) {
        io.counters
            .count_rx(frame.len().saturating_sub(VNET_HDR_LEN));
        if frame.len() > MAX_READ_LEN {
            return self.drop_frame(io, DropReason::Oversize);
        }
        let (action, header) = {
            let view = match FrameView::parse_vnet(frame) {
                Ok(v) => v,
                Err(e) => return self.drop_frame(io, e.reason()),
            };
            let now = self.now();
            let action = {
                let mut bridge = self.bridge.lock().expect("bridge lock poisoned");
                decide(&mut bridge, &view, ingress, now)
            };
            match action {
                Action::Drop(reason) => return self.drop_frame(io, reason),
                Action::Gateway => return self.answer(ingress, io, &view, frame, reply),
                Action::Unicast(dst) if dst == self.gateway_port => {
                    return self.answer(ingress, io, &view, frame, reply);
                }
                // Forwarded frames keep their offload request (TAP to TAP needs no software
                // segmentation), minus DATA_VALID: the receiving kernel must verify what a
                // container sent.
                _ => (action, view.offload().forwarded().to_bytes()),
            }
        };
        frame[..VNET_HDR_LEN].copy_from_slice(&header);
        let ports = self.ports.load();
        match action {
            Action::Unicast(dst) => match ports.get(&dst) {
                Some(p) => self.send(p, frame),
                None => self.drop_frame(io, DropReason::UnknownPort),
            },
            Action::Flood => {
                for (id, p) in ports.iter() {
                    if *id != ingress {
                        self.send(p, frame);
                    }
                }
            }
            Action::Gateway | Action::Drop(_) => unreachable!("handled above"),
        }
    }

    /// The gateway answers `view` back to the port it came from, if it has an answer; IPv4 it
    /// does not answer itself goes to the domain's gateway task (NAT, published ports, DNS).
    fn answer(
        &self,
        ingress: PortId,
        io: &PortIo,
        view: &FrameView<'_>,
        raw: &[u8],
        reply: &mut Vec<u8>,
    ) {
        reply.clear();
        reply.extend_from_slice(&[0; VNET_HDR_LEN]);
        match gateway::respond(self.gateway, view, reply) {
            Ok(true) => self.send(io, reply),
            Ok(false) => {}
            Err(DropReason::GatewayUnhandled) if matches!(view.l3(), L3::Ipv4(_)) => {
                self.to_gateway_task(ingress, io, raw);
            }
            Err(reason) => self.drop_frame(io, reason),
        }
    }

    /// Queues a copy of `raw` for the gateway task without waiting: a full queue drops.
    fn to_gateway_task(&self, ingress: PortId, io: &PortIo, raw: &[u8]) {
        let Some(nat) = self.nat.get() else {
            return self.drop_frame(io, DropReason::GatewayUnhandled);
        };
        let permit = match nat.frames.try_reserve() {
            Ok(p) => p,
            Err(_) => return self.drop_frame(io, DropReason::GatewayBusy),
        };
        let mut data = self
            .pool
            .lock()
            .expect("pool lock poisoned")
            .pop()
            .unwrap_or_default();
        data.clear();
        data.extend_from_slice(raw);
        permit.send(GatewayFrame {
            port: ingress,
            data,
        });
    }

    fn port_io(&self, port: PortId) -> Option<Arc<PortIo>> {
        self.ports.load().get(&port).cloned()
    }
}

impl nat::Egress for DomainShared {
    fn neighbor(&self, ip: Ipv4Addr) -> Option<Neighbor> {
        self.neighbors.load().get(&ip).copied()
    }

    fn send(&self, buf: &mut [u8], offload: nat::TxOffload) {
        let Some(packet) = buf.get(HEADROOM..) else {
            return self.counters.count_drop(DropReason::Runt);
        };
        let Some(dst) = packet.get(16..20) else {
            return self.counters.count_drop(DropReason::MalformedIpv4);
        };
        let dst = Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]);
        let Some(n) = self.neighbor(dst) else {
            return self.counters.count_drop(DropReason::NatNoNeighbor);
        };
        let ihl = usize::from(packet[0] & 0x0f) * 4;
        let header = match offload {
            // A TCP super-frame: the receiving kernel segments it (and completes the checksum,
            // whose field holds the pseudo-header sum), the TSO the TAP was opened with.
            nat::TxOffload::Segment(mss)
                if packet.len() > usize::from(self.mtu) && packet.len() >= ihl + 20 =>
            {
                let thl = packet.get(ihl + 12).map_or(20, |b| usize::from(b >> 4) * 4);
                VnetHeader {
                    flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
                    gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
                    hdr_len: (14 + ihl + thl) as u16,
                    gso_size: mss,
                    csum_start: (14 + ihl) as u16,
                    csum_offset: 16,
                }
            }
            // Only the checksum (the TAP's checksum offload).
            nat::TxOffload::Checksum | nat::TxOffload::Segment(_) if packet.len() >= ihl + 20 => {
                VnetHeader {
                    flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
                    gso_type: VIRTIO_NET_HDR_GSO_NONE,
                    hdr_len: 0,
                    gso_size: 0,
                    csum_start: (14 + ihl) as u16,
                    csum_offset: 16,
                }
            }
            _ => VnetHeader::NONE,
        };
        buf[..VNET_HDR_LEN].copy_from_slice(&header.to_bytes());
        buf[VNET_HDR_LEN..VNET_HDR_LEN + 6].copy_from_slice(&n.mac.0);
        buf[VNET_HDR_LEN + 6..VNET_HDR_LEN + 12].copy_from_slice(&self.gateway.mac.0);
        buf[VNET_HDR_LEN + 12..HEADROOM].copy_from_slice(&[0x08, 0x00]);
        match self.port_io(n.port) {
            Some(io) => DomainShared::send(self, &io, buf),
            None => self.counters.count_drop(DropReason::NatNoNeighbor),
        }
    }

    fn drop_frame(&self, port: Option<PortId>, reason: DropReason) {
        match port.and_then(|p| self.port_io(p)) {
            Some(io) => DomainShared::drop_frame(self, &io, reason),
            None => self.counters.count_drop(reason),
        }
    }

    fn recycle(&self, buf: Vec<u8>) {
        let mut pool = self.pool.lock().expect("pool lock poisoned");
        if pool.len() < GATEWAY_POOL {
            pool.push(buf);
        }
    }
}

/// Reads `io` until cancelled or its device disappears. With `busy_poll`, a port whose frames
/// come sparsely keeps reading for up to the window after each batch before it parks (see
/// [`crate::poll`]).
async fn port_task(
    shared: Arc<DomainShared>,
    port: PortId,
    io: Arc<PortIo>,
    busy_poll: Option<BusyPoll>,
    cancel: CancellationToken,
) {
    // One frame more than the largest legal one, so an oversize read is recognised.
    let mut buf = vec![0u8; MAX_READ_LEN + 1];
    let mut reply = Vec::with_capacity(2048);
    let mut last_batch = Instant::now();
    let mut pace = Pace::default();
    let mut poll_next = false;
    loop {
        let mut frames = 0usize;
        let mut polled = false;
        if let Some(busy) = busy_poll.filter(|_| poll_next) {
            match poll_for_frame(&io, &mut buf, busy, &cancel).await {
                Polled::Frame(n) => {
                    shared.counters.count_polled();
                    shared.forward(port, &io, &mut buf[..n], &mut reply);
                    frames = 1;
                    polled = true;
                }
                // Nothing came: park until the next frame (after which the pace decides).
                Polled::Idle => poll_next = false,
                Polled::Cancelled => return,
                Polled::Failed(e) => {
                    if read_failed(&shared, port, &io, &e) == ReadOutcome::Stop {
                        return;
                    }
                }
            }
        }
        if !polled {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                r = io.tap.readable() => if let Err(e) = r {
                    warn!(port = port.0, error = %e, "port stopped: readiness failed");
                    return;
                },
            }
        }
        // How long the port was quiet before this batch (only busy polling asks).
        let gap = busy_poll.map(|_| last_batch.elapsed());
        loop {
            // After a polled frame tokio may not have seen the readiness yet: read directly.
            let read = if polled {
                io.tap.read_now(&mut buf)
            } else {
                io.tap.try_read(&mut buf)
            };
            match read {
                Ok(n) => {
                    frames += 1;
                    shared.forward(port, &io, &mut buf[..n], &mut reply);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    if read_failed(&shared, port, &io, &e) == ReadOutcome::Stop {
                        return;
                    }
                    break;
                }
            }
        }
        // A wake-up with nothing to read (stale readiness) leaves the port's pace unchanged.
        if let Some(gap) = gap.filter(|_| frames > 0) {
            poll_next = pace.batch(gap);
            last_batch = Instant::now();
        }
        shared.maybe_expire();
    }
}

/// What a failed read means for the port task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadOutcome {
    /// The device is gone: the task ends.
    Stop,
    /// Counted; the task goes on.
    Continue,
}

fn read_failed(
    shared: &DomainShared,
    port: PortId,
    io: &PortIo,
    e: &std::io::Error,
) -> ReadOutcome {
    if IoFailure::of(e) == IoFailure::Gone {
        warn!(
            port = port.0,
            tap = io.tap.name(),
            "port stopped: its device was deleted"
        );
        return ReadOutcome::Stop;
    }
    shared.drop_frame(io, DropReason::RxError);
    debug!(port = port.0, error = %e, "read failed");
    ReadOutcome::Continue
}

/// What busy polling a port found.
#[derive(Debug)]
enum Polled {
    /// A frame of this length, in the buffer.
    Frame(usize),
    /// Nothing within the window.
    Idle,
    /// The port is being removed.
    Cancelled,
    /// A read failed other than with `EAGAIN`.
    Failed(std::io::Error),
}

/// Reads `io` until a frame comes or the window of `busy` passes. Between reads the task yields
/// to the runtime (whose I/O driver then runs, and other tasks of this worker) and the thread
/// yields the CPU to any other runnable thread. Polling stops when those yields have handed out more
/// than half of the time polled so far (see [`Contention`]): other threads want this CPU, and
/// a spinning thread would keep the scheduler from moving work to it, so the port parks as
/// without busy polling.
async fn poll_for_frame(
    io: &PortIo,
    buf: &mut [u8],
    busy: BusyPoll,
    cancel: &CancellationToken,
) -> Polled {
    let start = Instant::now();
    let deadline = start + busy.window();
    let mut contention = Contention::default();
    loop {
        match io.tap.read_now(buf) {
            Ok(n) => return Polled::Frame(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Polled::Failed(e),
        }
        let yielded = Instant::now();
        if yielded >= deadline {
            return Polled::Idle;
        }
        tokio::task::yield_now().await;
        std::thread::yield_now();
        if cancel.is_cancelled() {
            return Polled::Cancelled;
        }
        let now = Instant::now();
        if contention.yielded(now - yielded, now - start) && busy.yields_to_others() {
            return Polled::Idle;
        }
    }
}

/// A domain's live data path: its shared state, its port tasks and its gateway task.
#[derive(Debug)]
struct DomainPath {
    shared: Arc<DomainShared>,
    tasks: HashMap<PortId, CancellationToken>,
    gateway: CancellationToken,
}

/// Every domain's data path; owned by the switch task.
#[derive(Debug)]
pub(crate) struct DataPath {
    domains: HashMap<DomainId, DomainPath>,
    port_domain: HashMap<PortId, DomainId>,
    next_port: u32,
    counters: Arc<Counters>,
    epoch: Instant,
    cancel: CancellationToken,
    /// Every domain's subnet, for the gateways' isolation rule.
    subnets: Subnets,
    publications: HashMap<PublishId, DomainId>,
    next_publication: u64,
    /// Every port task's busy polling (`None`: ports park when idle).
    busy_poll: Option<BusyPoll>,
}

impl DataPath {
    pub(crate) fn new(
        counters: Arc<Counters>,
        busy_poll: Option<BusyPoll>,
        cancel: CancellationToken,
    ) -> DataPath {
        DataPath {
            domains: HashMap::new(),
            port_domain: HashMap::new(),
            next_port: 0,
            busy_poll,
            counters,
            epoch: Instant::now(),
            cancel,
            subnets: Subnets::default(),
            publications: HashMap::new(),
            next_publication: 0,
        }
    }

    fn publish_subnets(&self) {
        let subnets = self
            .domains
            .values()
            .map(|d| (d.shared.subnet, d.shared.prefix))
            .collect();
        self.subnets.store(Arc::new(subnets));
    }

    fn port_id(&mut self) -> PortId {
        self.next_port += 1;
        PortId(self.next_port)
    }

    /// Sets up the data path of a domain the switch has just accepted.
    pub(crate) fn add_domain(
        &mut self,
        id: DomainId,
        config: &DomainConfig,
    ) -> Result<(), BridgeError> {
        let gw = GatewayAddr::derived(config.gateway);
        let gateway_port = self.port_id();
        let bridge = Bridge::new(
            config,
            Gateway {
                port: gateway_port,
                mac: gw.mac,
            },
            TableConfig::default(),
        )?;
        let shared = Arc::new(DomainShared {
            bridge: Mutex::new(bridge),
            ports: ArcSwap::from_pointee(PortMap::new()),
            gateway: gw,
            gateway_port,
            counters: self.counters.clone(),
            epoch: self.epoch,
            last_expire_ms: AtomicU64::new(0),
            neighbors: ArcSwap::from_pointee(HashMap::new()),
            nat: OnceLock::new(),
            pool: Mutex::new(Vec::new()),
            mtu: config.mtu,
            subnet: config.subnet,
            prefix: config.prefix,
        });
        let gateway = self.cancel.child_token();
        let nat_config = NatConfig {
            gateway: gw,
            subnet: config.subnet,
            prefix: config.prefix,
            mtu: config.mtu,
            internal: config.internal,
            host_loopback: config.host_loopback,
            dns: config.dns,
            subnets: self.subnets.clone(),
            timeouts: nat::Timeouts::default(),
            limits: nat::Limits::default(),
        };
        let tx = nat::spawn(nat_config, shared.clone(), gateway.clone());
        let _ = shared.nat.set(tx);
        self.domains.insert(
            id,
            DomainPath {
                shared,
                tasks: HashMap::new(),
                gateway,
            },
        );
        self.publish_subnets();
        Ok(())
    }

    /// Hands published sockets to a domain's gateway task.
    pub(crate) async fn publish(
        &mut self,
        domain: DomainId,
        target: SocketAddrV4,
        listeners: Vec<Listener>,
        netns: Option<nat::Netns>,
    ) -> Result<PublishId, PortError> {
        let d = self.domains.get(&domain).ok_or(PortError::UnknownDomain)?;
        let tx = d.shared.nat.get().ok_or(PortError::UnknownDomain)?.clone();
        self.next_publication += 1;
        let id = PublishId(self.next_publication);
        tx.commands
            .send(NatCommand::Publish {
                id,
                target,
                listeners,
                netns,
            })
            .await
            .map_err(|_| PortError::UnknownDomain)?;
        self.publications.insert(id, domain);
        Ok(id)
    }

    /// Stops a publication; unknown ids (their domain is gone) are not an error.
    pub(crate) async fn unpublish(&mut self, id: PublishId) {
        let Some(domain) = self.publications.remove(&id) else {
            return;
        };
        if let Some(tx) = self.domains.get(&domain).and_then(|d| d.shared.nat.get()) {
            let _ = tx.commands.send(NatCommand::Unpublish { id }).await;
        }
    }

    /// A domain's translation gauges.
    pub(crate) fn nat_stats(&self, domain: DomainId) -> Option<NatStats> {
        let d = self.domains.get(&domain)?;
        Some(d.shared.nat.get()?.gauges.snapshot())
    }

    /// Stops every port of a removed domain.
    pub(crate) fn remove_domain(&mut self, id: DomainId) {
        if let Some(d) = self.domains.remove(&id) {
            d.gateway.cancel();
            for (port, token) in d.tasks {
                token.cancel();
                self.port_domain.remove(&port);
            }
            self.publications.retain(|_, domain| *domain != id);
            self.publish_subnets();
        }
    }

    /// Adds a TAP as a port of `domain` under `policy` and starts reading it.
    pub(crate) fn add_port(
        &mut self,
        domain: DomainId,
        policy: PortPolicy,
        tap: AsyncTap,
    ) -> Result<PortId, PortError> {
        let port = self.port_id();
        let d = self
            .domains
            .get_mut(&domain)
            .ok_or(PortError::UnknownDomain)?;
        d.shared
            .bridge
            .lock()
            .expect("bridge lock poisoned")
            .add_port(port, policy)
            .map_err(PortError::Bridge)?;
        let io = Arc::new(PortIo {
            tap,
            counters: PortCounters::default(),
        });
        if let PortPolicy::Endpoint { mac, ipv4 } = policy {
            d.shared.neighbors.rcu(|map| {
                let mut map = HashMap::clone(map);
                map.insert(ipv4, Neighbor { mac, port });
                map
            });
        }
        d.shared.ports.rcu(|map| {
            let mut map = PortMap::clone(map);
            map.insert(port, io.clone());
            map
        });
        let token = self.cancel.child_token();
        tokio::spawn(port_task(
            d.shared.clone(),
            port,
            io,
            self.busy_poll,
            token.clone(),
        ));
        d.tasks.insert(port, token);
        self.port_domain.insert(port, domain);
        Ok(port)
    }

    /// Stops and forgets a port; with `delete`, its device disappears once closed.
    pub(crate) fn remove_port(&mut self, port: PortId, delete: bool) -> Result<(), PortError> {
        let domain = self
            .port_domain
            .remove(&port)
            .ok_or(PortError::UnknownPort)?;
        let d = self
            .domains
            .get_mut(&domain)
            .ok_or(PortError::UnknownDomain)?;
        if let Some(token) = d.tasks.remove(&port) {
            token.cancel();
        }
        let _ = d
            .shared
            .bridge
            .lock()
            .expect("bridge lock poisoned")
            .remove_port(port);
        d.shared.neighbors.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.retain(|_, n| n.port != port);
            map
        });
        let mut removed = None;
        d.shared.ports.rcu(|map| {
            let mut map = PortMap::clone(map);
            removed = map.remove(&port);
            map
        });
        if let (true, Some(io)) = (delete, removed)
            && let Err(e) = io.tap.set_persist(false)
        {
            warn!(port = port.0, error = %e, "cannot clear the persist flag; the device stays");
        }
        Ok(())
    }

    /// A port's counters.
    pub(crate) fn port_stats(&self, port: PortId) -> Option<PortStats> {
        let domain = self.port_domain.get(&port)?;
        let d = self.domains.get(domain)?;
        d.shared
            .ports
            .load()
            .get(&port)
            .map(|io| io.counters.snapshot())
    }
}

/// Why a port could not be added or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The domain does not exist.
    #[error("the domain does not exist")]
    UnknownDomain,
    /// The port does not exist.
    #[error("the port does not exist")]
    UnknownPort,
    /// The bridge refused the port's policy.
    #[error("the bridge refused the port")]
    Bridge(#[source] BridgeError),
}

#[cfg(test)]
mod tests;
