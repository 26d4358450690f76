//! The gateway's translator: outbound NAT and published ports, in userspace, the slirp/pasta
//! way. Containers' TCP is terminated on smoltcp and re-originated with the daemon's own
//! sockets; UDP datagrams and ICMP echo are carried by per-flow host sockets. Nothing touches
//! iptables or the kernel's forwarding, so it works rootless too.
//!
//! One gateway task per domain owns every flow of the domain ([`run`]). The port tasks hand it
//! the frames addressed to the gateway that [`crate::gateway`] does not answer itself; the
//! task parses them once ([`Ingress`]), routes them ([`NatConfig::route`]) and gives them to
//! the protocol's translator ([`tcp`], [`udp`], [`icmp`]). Host sockets are served by small
//! per-flow tasks that report back over one event channel, so the gateway task itself never
//! blocks on a socket. Packets toward containers leave through [`Egress`], which writes them
//! straight to the container's TAP.
//!
//! Connection tracking timeouts (documented in docs/architecture.md):
//! - TCP: a flow lives while either side is open; an idle established flow is closed after
//!   [`Timeouts::tcp_idle`] (2 h), a flow whose handshake or close does not finish after
//!   [`Timeouts::tcp_transitory`] (2 min);
//! - UDP: [`Timeouts::udp_unreplied`] (30 s) until a reply is seen, then
//!   [`Timeouts::udp_replied`] (180 s) of idleness, like Linux conntrack;
//! - ICMP echo: [`Timeouts::icmp`] (30 s).

pub(crate) mod fuzz;
pub(crate) mod icmp;
pub(crate) mod splice;
pub(crate) mod tcp;
mod timers;
pub(crate) mod udp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::counters::DropReason;
use crate::forward::PortId;
use crate::frame::MacAddr;
use crate::gateway::GatewayAddr;
use crate::vnet::VNET_HDR_LEN;

/// Bytes in front of an IP packet in an egress buffer: the virtio-net header and the Ethernet
/// header, filled in by [`Egress::send`] once it knows the destination.
pub(crate) const HEADROOM: usize = VNET_HDR_LEN + 14;

/// Frames waiting for the gateway task; beyond this the port tasks drop and count
/// ([`DropReason::GatewayBusy`]) rather than wait.
pub(crate) const FRAME_QUEUE: usize = 1024;

/// Events from flow tasks waiting for the gateway task. Flow tasks wait for room, which slows
/// the host side down instead of dropping what the kernel already acknowledged.
pub(crate) const EVENT_QUEUE: usize = 4096;

/// A published port's host socket, bound by the control plane (which reports bind errors in
/// Docker's words) and handed to the switch, which serves it until unpublished.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener; every accepted connection is carried to the container.
    Tcp(std::net::TcpListener),
    /// A UDP socket; every datagram is carried to the container and its replies back.
    Udp(std::net::UdpSocket),
}

pub use splice::Netns;

/// Identifies one publication (the listeners of one call to
/// [`crate::SwitchHandle::publish`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishId(pub u64);

/// A domain's live translation state, for `netloom stats` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatStats {
    /// TCP connections being carried (outbound and published).
    pub tcp_flows: usize,
    /// UDP flows being carried (outbound and published).
    pub udp_flows: usize,
    /// ICMP echo flows being carried.
    pub icmp_flows: usize,
    /// Published listeners being served.
    pub published: usize,
    /// Published TCP connections of loopback clients carried by splice (not in `tcp_flows`).
    pub tcp_spliced: usize,
    /// Loopback clients of published TCP ports whose spliced connection could not reach the
    /// container (refused, timed out, namespace unusable); each was reset. Since the start.
    pub tcp_splice_failures: u64,
}

/// Gauges the gateway task keeps current and anyone may read.
#[derive(Debug, Default)]
pub(crate) struct NatGauges {
    pub(crate) tcp_flows: AtomicUsize,
    pub(crate) udp_flows: AtomicUsize,
    pub(crate) icmp_flows: AtomicUsize,
    pub(crate) published: AtomicUsize,
    /// Shared with the spliced connections' tasks, which outlive the gateway task's borrow.
    pub(crate) tcp_spliced: Arc<AtomicUsize>,
    pub(crate) tcp_splice_failures: Arc<std::sync::atomic::AtomicU64>,
}

impl NatGauges {
    pub(crate) fn snapshot(&self) -> NatStats {
        NatStats {
            tcp_flows: self.tcp_flows.load(Ordering::Relaxed),
            udp_flows: self.udp_flows.load(Ordering::Relaxed),
            icmp_flows: self.icmp_flows.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            tcp_spliced: self.tcp_spliced.load(Ordering::Relaxed),
            tcp_splice_failures: self.tcp_splice_failures.load(Ordering::Relaxed),
        }
    }
}

/// Connection-tracking timeouts; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub(crate) tcp_idle: Duration,
    pub(crate) tcp_transitory: Duration,
    pub(crate) udp_unreplied: Duration,
    pub(crate) udp_replied: Duration,
    pub(crate) icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_idle: Duration::from_secs(2 * 60 * 60),
            tcp_transitory: Duration::from_secs(120),
            udp_unreplied: Duration::from_secs(30),
            udp_replied: Duration::from_secs(180),
            icmp: Duration::from_secs(30),
        }
    }
}

/// Flows one container may hold at once, per protocol; a new flow beyond it is refused
/// ([`DropReason::NatFlowLimit`]) so one container cannot exhaust the daemon's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) tcp_per_container: usize,
    pub(crate) udp_per_container: usize,
    pub(crate) icmp_per_container: usize,
    /// Published-port connections of loopback clients spliced at once, per network; beyond
    /// it they take the gateway path (one descriptor each instead of six).
    pub(crate) spliced_per_network: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tcp_per_container: 4096,
            udp_per_container: 1024,
            icmp_per_container: 64,
            spliced_per_network: 1024,
        }
    }
}

/// The subnets of every domain on the switch, shared by all gateway tasks: traffic from one
/// network to another's subnet is refused, networks are isolated (SPEC section 3).
pub(crate) type Subnets = Arc<ArcSwap<Vec<(Ipv4Addr, u8)>>>;

/// Transport protocols the gateway translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

/// What one domain's gateway knows about its network.
#[derive(Clone, Debug)]
pub(crate) struct NatConfig {
    pub(crate) gateway: GatewayAddr,
    pub(crate) subnet: Ipv4Addr,
    pub(crate) prefix: u8,
    pub(crate) mtu: u16,
    pub(crate) internal: bool,
    pub(crate) host_loopback: bool,
    pub(crate) dns: Option<SocketAddr>,
    pub(crate) subnets: Subnets,
    pub(crate) timeouts: Timeouts,
    pub(crate) limits: Limits,
}

/// Where a container's packet to a destination outside its network goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Re-originate toward this host-side address.
    Forward(SocketAddr),
    /// The gateway's own address, a port nothing serves: refuse like a closed port (TCP RST,
    /// ICMP port unreachable).
    Closed,
    /// Drop and count; nothing is reported to the container.
    Drop(DropReason),
}

fn in_subnet(ip: Ipv4Addr, subnet: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(subnet)
}

impl NatConfig {
    /// Whether `ip` is on the domain's own subnet.
    pub(crate) fn on_link(&self, ip: Ipv4Addr) -> bool {
        in_subnet(ip, self.subnet, self.prefix)
    }

    /// Where a container's `proto` packet for `dst` goes.
    pub(crate) fn route(&self, proto: Option<Proto>, dst: SocketAddrV4) -> Route {
        let ip = *dst.ip();
        if ip == self.gateway.ip {
            // The gateway's own services come first: they stay inside the daemon, so even an
            // internal network may use them.
            return match (proto, dst.port()) {
                (Some(_), 53) if self.dns.is_some() => {
                    Route::Forward(self.dns.expect("checked above"))
                }
                (Some(_), port) if self.host_loopback && !self.internal => {
                    Route::Forward(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
                }
                (Some(_), _) => Route::Closed,
                (None, _) => Route::Drop(DropReason::NatUnsupported),
            };
        }
        if ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_unspecified()
            || ip.is_loopback()
            || ip.octets()[0] == 0
            || ip.octets()[0] >= 240
        {
            return Route::Drop(DropReason::NatUnsupported);
        }
        if self.on_link(ip) {
            // On-link traffic never reaches the gateway from a well-behaved container (its own
            // subnet's broadcast address included); refuse to loop it through the host.
            return Route::Drop(DropReason::NatUnsupported);
        }
        if self.internal {
            return Route::Drop(DropReason::NatInternal);
        }
        if self
            .subnets
            .load()
            .iter()
            .any(|&(net, prefix)| in_subnet(ip, net, prefix))
        {
            return Route::Drop(DropReason::NatIsolated);
        }
        Route::Forward(SocketAddr::V4(dst))
    }
}

/// A container reachable on the domain: its MAC and the port its frames go out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Neighbor {
    pub(crate) mac: MacAddr,
    pub(crate) port: PortId,
}

/// What the receiving kernel is asked to complete in a TCP packet the gateway sends (the
/// virtio-net offloads of the container's TAP), so the gateway neither checksums nor cuts
/// large segments itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxOffload {
    /// Nothing: the packet is complete.
    None,
    /// The TCP checksum, whose field holds the pseudo-header sum (`NEEDS_CSUM`).
    Checksum,
    /// The checksum, and segmentation into segments of this many payload bytes: a packet
    /// larger than the MTU (`GSO_TCPV4`).
    Segment(u16),
}

/// Where the gateway's packets to containers go: implemented by the data path, which knows the
/// ports and their TAPs.
pub(crate) trait Egress: Send + Sync + 'static {
    /// The container with address `ip`, if the domain has it.
    fn neighbor(&self, ip: Ipv4Addr) -> Option<Neighbor>;

    /// Sends the IPv4 packet in `buf[HEADROOM..]` to the container with its destination
    /// address, filling in the virtio-net and Ethernet headers in the headroom; `offload` says
    /// what the receiving kernel completes. Drops are counted by the implementation.
    fn send(&self, buf: &mut [u8], offload: TxOffload);

    /// Counts a drop of the domain's traffic.
    fn drop_frame(&self, port: Option<PortId>, reason: DropReason);

    /// Takes back a [`GatewayFrame`]'s buffer once the gateway is done with it.
    fn recycle(&self, _buf: Vec<u8>) {}
}

/// A frame the port tasks handed to the gateway task: the virtio-net header and the Ethernet
/// frame, as read from the ingress port's TAP.
#[derive(Debug)]
pub(crate) struct GatewayFrame {
    pub(crate) port: PortId,
    pub(crate) data: Vec<u8>,
}

/// Requests from the control plane, through the switch task.
#[derive(Debug)]
pub(crate) enum NatCommand {
    Publish {
        id: PublishId,
        target: SocketAddrV4,
        listeners: Vec<Listener>,
        /// The container's namespace, for loopback clients' TCP fast path; `None` carries
        /// every client through the gateway.
        netns: Option<Netns>,
    },
    Unpublish {
        id: PublishId,
    },
}

/// What a flow task tells the gateway task.
#[derive(Debug)]
pub(crate) enum Event {
    Tcp(tcp::TcpEvent),
    Udp(udp::UdpEvent),
    Icmp(icmp::IcmpEvent),
}

/// What every translator gets from the gateway task.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a NatConfig,
    pub(crate) egress: &'a dyn Egress,
    /// For flow tasks to report on; each flow task holds a clone.
    pub(crate) events: &'a mpsc::Sender<Event>,
    pub(crate) gauges: &'a NatGauges,
    pub(crate) cancel: &'a CancellationToken,
    pub(crate) now: Instant,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("gateway", &self.config.gateway)
            .finish_non_exhaustive()
    }
}

/// An IPv4 packet from a container, parsed once by the gateway task.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ingress<'a> {
    /// The port it came in on.
    pub(crate) port: PortId,
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
    /// IP protocol number.
    pub(crate) protocol: u8,
    /// The whole IPv4 packet (header included), trimmed to its total length.
    pub(crate) packet: &'a [u8],
    /// The transport header and payload.
    pub(crate) payload: &'a [u8],
}

/// Parses a frame for the gateway: IPv4 only, fragments refused (the translators need whole
/// transport headers; containers' kernels send TCP with DF and UDP below the MTU).
fn parse(frame: &GatewayFrame) -> Result<Ingress<'_>, DropReason> {
    use crate::vnet::VnetHeader;
    let (_, l2) = VnetHeader::split(&frame.data).ok_or(DropReason::TruncatedVnetHeader)?;
    let eth =
        etherparse::Ethernet2Slice::from_slice_without_fcs(l2).map_err(|_| DropReason::Runt)?;
    if eth.ether_type() != etherparse::EtherType::IPV4 {
        return Err(DropReason::NatUnsupported);
    }
    let ip = etherparse::Ipv4Slice::from_slice(eth.payload_slice())
        .map_err(|_| DropReason::MalformedIpv4)?;
    if ip.is_payload_fragmented() {
        return Err(DropReason::NatUnsupported);
    }
    let header = ip.header();
    let header_len = header.slice().len();
    let total = header_len + ip.payload().payload.len();
    let packet = &eth.payload_slice()[..total];
    Ok(Ingress {
        port: frame.port,
        src: header.source_addr(),
        dst: header.destination_addr(),
        protocol: header.protocol().0,
        packet,
        payload: &packet[header_len..],
    })
}

/// The translators of one domain.
#[derive(Debug)]
struct Translators {
    tcp: tcp::TcpNat,
    udp: udp::UdpNat,
    icmp: icmp::IcmpNat,
}

/// The sending side of a gateway task, kept by the data path.
#[derive(Debug, Clone)]
pub(crate) struct GatewayTx {
    pub(crate) frames: mpsc::Sender<GatewayFrame>,
    pub(crate) commands: mpsc::Sender<NatCommand>,
    pub(crate) gauges: Arc<NatGauges>,
}

/// Starts a domain's gateway task.
pub(crate) fn spawn(
    config: NatConfig,
    egress: Arc<dyn Egress>,
    cancel: CancellationToken,
) -> GatewayTx {
    let (frames, frames_rx) = mpsc::channel(FRAME_QUEUE);
    let (commands, commands_rx) = mpsc::channel(64);
    let gauges = Arc::new(NatGauges::default());
    tokio::spawn(run(
        config,
        egress,
        gauges.clone(),
        frames_rx,
        commands_rx,
        cancel,
    ));
    GatewayTx {
        frames,
        commands,
        gauges,
    }
}

/// The gateway task: frames and flow events in, translated packets out, until cancelled.
async fn run(
    config: NatConfig,
    egress: Arc<dyn Egress>,
    gauges: Arc<NatGauges>,
    mut frames: mpsc::Receiver<GatewayFrame>,
    mut commands: mpsc::Receiver<NatCommand>,
    cancel: CancellationToken,
) {
    let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let mut t = Translators {
        tcp: tcp::TcpNat::new(&config),
        udp: udp::UdpNat::new(&config),
        icmp: icmp::IcmpNat::new(&config),
    };
    let mut next: Option<Instant> = None;
    loop {
        let sleep = tokio::time::sleep_until(
            next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
        );
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                let ctx = ctx(&config, &*egress, &events_tx, &gauges, &cancel);
                t.on_frame(&ctx, &frame);
                egress.recycle(frame.data);
                // Batch: everything queued now, before polling the stacks.
                let mut budget = FRAME_QUEUE;
                while budget > 0 && let Ok(frame) = frames.try_recv() {
                    t.on_frame(&ctx, &frame);
                    egress.recycle(frame.data);
                    budget -= 1;
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                let ctx = ctx(&config, &*egress, &events_tx, &gauges, &cancel);
                t.on_event(&ctx, event);
                let mut budget = EVENT_QUEUE;
                while budget > 0 && let Ok(event) = events.try_recv() {
                    t.on_event(&ctx, event);
                    budget -= 1;
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { break };
                let ctx = ctx(&config, &*egress, &events_tx, &gauges, &cancel);
                t.on_command(&ctx, command);
            }
            () = sleep => {}
        }
        let ctx = ctx(&config, &*egress, &events_tx, &gauges, &cancel);
        next = t.poll(&ctx);
    }
    debug!(gateway = %config.gateway.ip, "gateway task stopped");
    // Dropping the translators drops their flow tasks' handles; the flow tasks end with the
    // cancellation token (a child of the switch's) or when their channels close.
}

fn ctx<'a>(
    config: &'a NatConfig,
    egress: &'a dyn Egress,
    events: &'a mpsc::Sender<Event>,
    gauges: &'a NatGauges,
    cancel: &'a CancellationToken,
) -> Ctx<'a> {
    Ctx {
        config,
        egress,
        events,
        gauges,
        cancel,
        now: Instant::now(),
    }
}

impl Translators {
    fn on_frame(&mut self, ctx: &Ctx<'_>, frame: &GatewayFrame) {
        let ingress = match parse(frame) {
            Ok(i) => i,
            Err(reason) => return ctx.egress.drop_frame(Some(frame.port), reason),
        };
        match ingress.protocol {
            6 => self.tcp.on_packet(ctx, &ingress),
            17 => self.udp.on_packet(ctx, &ingress),
            1 => self.icmp.on_packet(ctx, &ingress),
            _ => ctx
                .egress
                .drop_frame(Some(frame.port), DropReason::NatUnsupported),
        }
    }

    fn on_event(&mut self, ctx: &Ctx<'_>, event: Event) {
        match event {
            Event::Tcp(e) => self.tcp.on_event(ctx, e),
            Event::Udp(e) => self.udp.on_event(ctx, e),
            Event::Icmp(e) => self.icmp.on_event(ctx, e),
        }
    }

    fn on_command(&mut self, ctx: &Ctx<'_>, command: NatCommand) {
        match command {
            NatCommand::Publish {
                id,
                target,
                listeners,
                netns,
            } => {
                for listener in listeners {
                    match listener {
                        Listener::Tcp(l) => self.tcp.publish(ctx, id, target, l, netns.clone()),
                        Listener::Udp(s) => self.udp.publish(ctx, id, target, s),
                    }
                }
            }
            NatCommand::Unpublish { id } => {
                self.tcp.unpublish(ctx, id);
                self.udp.unpublish(ctx, id);
            }
        }
    }

    /// Runs timers and stacks; returns when the task must run next without any input.
    fn poll(&mut self, ctx: &Ctx<'_>) -> Option<Instant> {
        [self.tcp.poll(ctx), self.udp.poll(ctx), self.icmp.poll(ctx)]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Builds the IPv4 header of a packet the gateway sends to a container into `buf` (which must
/// hold at least 20 bytes), with the header checksum; `payload_len` is the transport length.
pub(crate) fn write_ipv4_header(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
) -> Result<(), DropReason> {
    let mut h = etherparse::Ipv4Header::new(
        u16::try_from(payload_len).map_err(|_| DropReason::Oversize)?,
        64,
        etherparse::IpNumber(protocol),
        src.octets(),
        dst.octets(),
    )
    .map_err(|_| DropReason::Oversize)?;
    h.dont_fragment = true;
    h.header_checksum = h.calc_header_checksum();
    let bytes = h.to_bytes();
    buf[..bytes.len()].copy_from_slice(&bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(internal: bool, host_loopback: bool) -> NatConfig {
        NatConfig {
            gateway: GatewayAddr::derived(Ipv4Addr::new(172, 18, 0, 1)),
            subnet: Ipv4Addr::new(172, 18, 0, 0),
            prefix: 16,
            mtu: 1500,
            internal,
            host_loopback,
            dns: Some("127.0.0.1:5300".parse().unwrap()),
            subnets: Arc::new(ArcSwap::from_pointee(vec![
                (Ipv4Addr::new(172, 18, 0, 0), 16),
                (Ipv4Addr::new(172, 19, 0, 0), 16),
            ])),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
        }
    }

    fn v4(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn routes() {
        let c = config(false, false);
        let tcp = Some(Proto::Tcp);
        assert_eq!(
            c.route(tcp, v4("198.18.0.2:80")),
            Route::Forward("198.18.0.2:80".parse().unwrap())
        );
        assert_eq!(
            c.route(tcp, v4("172.18.0.1:53")),
            Route::Forward("127.0.0.1:5300".parse().unwrap())
        );
        assert_eq!(c.route(tcp, v4("172.18.0.1:8080")), Route::Closed);
        assert_eq!(
            c.route(tcp, v4("172.19.0.5:80")),
            Route::Drop(DropReason::NatIsolated)
        );
        assert_eq!(
            c.route(tcp, v4("172.18.0.5:80")),
            Route::Drop(DropReason::NatUnsupported)
        );
        for bad in [
            "255.255.255.255:1",
            "224.0.0.1:1",
            "127.0.0.1:1",
            "0.0.0.0:1",
        ] {
            assert_eq!(
                c.route(tcp, v4(bad)),
                Route::Drop(DropReason::NatUnsupported),
                "{bad}"
            );
        }
    }

    #[test]
    fn internal_networks_only_reach_the_gateway_services() {
        let c = config(true, true);
        assert_eq!(
            c.route(Some(Proto::Udp), v4("198.18.0.2:53")),
            Route::Drop(DropReason::NatInternal)
        );
        assert_eq!(
            c.route(Some(Proto::Udp), v4("172.18.0.1:53")),
            Route::Forward("127.0.0.1:5300".parse().unwrap())
        );
        assert_eq!(
            c.route(Some(Proto::Tcp), v4("172.18.0.1:22")),
            Route::Closed
        );
    }

    #[test]
    fn host_loopback_is_opt_in() {
        let c = config(false, true);
        assert_eq!(
            c.route(Some(Proto::Tcp), v4("172.18.0.1:8080")),
            Route::Forward("127.0.0.1:8080".parse().unwrap())
        );
    }
}
