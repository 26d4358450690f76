//! Drop and refusal counters, one per reason, readable while the switch runs.
//!
//! Two reason enums, because they answer two different questions: [`Reason`] is why the
//! control plane's command was refused, [`DropReason`] is why a frame was dropped. Keeping
//! them apart means [`crate::Action::Drop`] can only carry a data-plane reason. [`Counters`]
//! holds one switch-wide counter for each; [`PortCounters`] adds rx/tx and drops per port.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the switch refused a command (frames have their own [`DropReason`]).
///
/// Adding a reason means adding a variant and listing it in [`Reason::ALL`]; [`Counters`] sizes
/// itself from that list, so nothing else changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `AddDomain` for an id the switch already has.
    DuplicateDomain,
    /// `RemoveDomain` (or any command naming a domain) for an id the switch does not have.
    UnknownDomain,
    /// `AddDomain` with a config that fails [`crate::DomainConfig::validate`].
    InvalidConfig,
    /// `RemovePort` (or a port query) for a port the switch does not have.
    UnknownPort,
    /// `AddPort` refused by the domain's bridge (MAC or address already bound, bad policy).
    PortRefused,
}

impl Reason {
    /// Every reason, in counter order, for exporting all counters.
    pub const ALL: [Reason; 5] = [
        Reason::DuplicateDomain,
        Reason::UnknownDomain,
        Reason::InvalidConfig,
        Reason::UnknownPort,
        Reason::PortRefused,
    ];

    /// A stable snake_case name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DuplicateDomain => "duplicate_domain",
            Reason::UnknownDomain => "unknown_domain",
            Reason::InvalidConfig => "invalid_config",
            Reason::UnknownPort => "unknown_port",
            Reason::PortRefused => "port_refused",
        }
    }

    /// The reason's slot in [`Counters`]; the `ALL` order, kept in one match so it cannot drift.
    fn index(self) -> usize {
        match self {
            Reason::DuplicateDomain => 0,
            Reason::UnknownDomain => 1,
            Reason::InvalidConfig => 2,
            Reason::UnknownPort => 3,
            Reason::PortRefused => 4,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the data plane dropped a frame. The container that sent it controls every byte (see the
/// threat model in [`crate::forward`]), so each way a frame can be refused has its own reason:
/// an operator reading the counters can tell a buggy guest (malformed, oversize) from a hostile
/// one (spoofed, forged) without a packet capture.
///
/// Adding a reason means adding a variant at the end and listing it in [`DropReason::ALL`]; the
/// counters size themselves from that list and a test checks the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than the 12-byte virtio-net header a TAP read must start with.
    TruncatedVnetHeader,
    /// A virtio-net header with unknown flags or GSO type, or self-contradictory values.
    BadVnetHeader,
    /// A GSO type netloom never negotiates (UDP fragmentation or UDP segmentation offload).
    UnsupportedGso,
    /// Fewer than 14 bytes of Ethernet header.
    Runt,
    /// Longer than [`crate::MAX_FRAME_LEN`]: no IP length field can describe it.
    Oversize,
    /// An 802.1Q / 802.1ad tag: containers are untagged, and a tag would let a frame hop VLANs
    /// on a trunk outside the switch.
    VlanTagged,
    /// EtherType ARP, but not an Ethernet/IPv4 request or reply of the right length.
    MalformedArp,
    /// EtherType IPv4, but a header that is cut short or has impossible lengths.
    MalformedIpv4,
    /// EtherType IPv6, but a header that is cut short or a payload length past the frame.
    MalformedIpv6,
    /// The virtio-net header's offload request does not match the frame it describes (GSO of
    /// a non-TCP packet, checksum offsets outside the frame or off the TCP header).
    OffloadMismatch,
    /// An IP packet, or a GSO segment, larger than the domain's MTU.
    ExceedsMtu,
    /// The ingress port is not (or no longer) a port of the domain.
    UnknownPort,
    /// A group (multicast or broadcast) source MAC, which no station may send from.
    MulticastSource,
    /// An endpoint port sent from a MAC that is not its own.
    SpoofedSourceMac,
    /// An IPv4 source address the port does not own.
    SpoofedSourceIp,
    /// An ARP sender hardware address the port does not own (ARP cache poisoning).
    SpoofedArpMac,
    /// An ARP sender protocol address the port does not own (gratuitous ARP for someone else's
    /// address).
    SpoofedArpIp,
    /// An EtherType an endpoint port may not send (only IPv4 and ARP are allowed).
    DisallowedEtherType,
    /// A source MAC that belongs to another port or to the gateway; learning refuses to move it.
    MacOwnedElsewhere,
    /// The port already has its maximum number of learned MACs (MAC flooding).
    PortMacLimit,
    /// The domain's learning table is at its overall cap.
    TableFull,
    /// The destination is the port the frame came in on.
    Hairpin,
    /// Addressed to the gateway, but not something it answers (only ARP for its address and
    /// ICMP echo requests so far; NAT and published ports come with the gateway issue).
    GatewayUnhandled,
    /// The destination TAP would not take the frame without waiting (`EAGAIN`).
    TxFull,
    /// The destination interface is down inside its namespace (`EIO`).
    TxDown,
    /// The destination kernel refused the frame (`EINVAL`).
    TxRejected,
    /// Writing to the destination failed otherwise (including a deleted device).
    TxError,
    /// Reading from the port failed with an error other than "no more frames".
    RxError,
    /// The domain's gateway task had no room for the frame (its queue was full).
    GatewayBusy,
    /// Addressed outside the domain, but the domain is `--internal`: nothing leaves it.
    NatInternal,
    /// Addressed to another network's subnet: networks are isolated from each other.
    NatIsolated,
    /// A new flow beyond the sending container's flow limit.
    NatFlowLimit,
    /// IPv4 the gateway does not translate: a protocol other than TCP, UDP and ICMP echo, a
    /// fragment, or a broadcast/multicast/reserved destination.
    NatUnsupported,
    /// A packet for a container the gateway has no port or MAC address for.
    NatNoNeighbor,
    /// A UDP or ICMP header cut short or inconsistent with its IP packet.
    NatMalformed,
    /// The daemon could not open or connect a host socket for a new flow (descriptor limit,
    /// no route to the destination, no permission for ICMP sockets).
    NatSocketFailed,
    /// A host socket would not take a datagram without waiting, or refused it.
    NatHostBusy,
    /// A TCP segment (a retransmitted SYN) for a flow whose host connection is still being
    /// opened; the container's retransmission comes again, or the connect's outcome answers it.
    NatConnecting,
}

impl DropReason {
    /// Every reason, in counter order, for exporting all counters.
    pub const ALL: [DropReason; 38] = [
        DropReason::TruncatedVnetHeader,
        DropReason::BadVnetHeader,
        DropReason::UnsupportedGso,
        DropReason::Runt,
        DropReason::Oversize,
        DropReason::VlanTagged,
        DropReason::MalformedArp,
        DropReason::MalformedIpv4,
        DropReason::MalformedIpv6,
        DropReason::OffloadMismatch,
        DropReason::ExceedsMtu,
        DropReason::UnknownPort,
        DropReason::MulticastSource,
        DropReason::SpoofedSourceMac,
        DropReason::SpoofedSourceIp,
        DropReason::SpoofedArpMac,
        DropReason::SpoofedArpIp,
        DropReason::DisallowedEtherType,
        DropReason::MacOwnedElsewhere,
        DropReason::PortMacLimit,
        DropReason::TableFull,
        DropReason::Hairpin,
        DropReason::GatewayUnhandled,
        DropReason::TxFull,
        DropReason::TxDown,
        DropReason::TxRejected,
        DropReason::TxError,
        DropReason::RxError,
        DropReason::GatewayBusy,
        DropReason::NatInternal,
        DropReason::NatIsolated,
        DropReason::NatFlowLimit,
        DropReason::NatUnsupported,
        DropReason::NatNoNeighbor,
        DropReason::NatMalformed,
        DropReason::NatSocketFailed,
        DropReason::NatHostBusy,
        DropReason::NatConnecting,
    ];

    /// A stable snake_case name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::TruncatedVnetHeader => "truncated_vnet_header",
            DropReason::BadVnetHeader => "bad_vnet_header",
            DropReason::UnsupportedGso => "unsupported_gso",
            DropReason::Runt => "runt",
            DropReason::Oversize => "oversize",
            DropReason::VlanTagged => "vlan_tagged",
            DropReason::MalformedArp => "malformed_arp",
            DropReason::MalformedIpv4 => "malformed_ipv4",
            DropReason::MalformedIpv6 => "malformed_ipv6",
            DropReason::OffloadMismatch => "offload_mismatch",
            DropReason::ExceedsMtu => "exceeds_mtu",
            DropReason::UnknownPort => "unknown_port",
            DropReason::MulticastSource => "multicast_source",
            DropReason::SpoofedSourceMac => "spoofed_source_mac",
            DropReason::SpoofedSourceIp => "spoofed_source_ip",
            DropReason::SpoofedArpMac => "spoofed_arp_mac",
            DropReason::SpoofedArpIp => "spoofed_arp_ip",
            DropReason::DisallowedEtherType => "disallowed_ethertype",
            DropReason::MacOwnedElsewhere => "mac_owned_elsewhere",
            DropReason::PortMacLimit => "port_mac_limit",
            DropReason::TableFull => "table_full",
            DropReason::Hairpin => "hairpin",
            DropReason::GatewayUnhandled => "gateway_unhandled",
            DropReason::TxFull => "tx_full",
            DropReason::TxDown => "tx_down",
            DropReason::TxRejected => "tx_rejected",
            DropReason::TxError => "tx_error",
            DropReason::RxError => "rx_error",
            DropReason::GatewayBusy => "gateway_busy",
            DropReason::NatInternal => "nat_internal",
            DropReason::NatIsolated => "nat_isolated",
            DropReason::NatFlowLimit => "nat_flow_limit",
            DropReason::NatUnsupported => "nat_unsupported",
            DropReason::NatNoNeighbor => "nat_no_neighbor",
            DropReason::NatMalformed => "nat_malformed",
            DropReason::NatSocketFailed => "nat_socket_failed",
            DropReason::NatHostBusy => "nat_host_busy",
            DropReason::NatConnecting => "nat_connecting",
        }
    }

    /// Whether this reason is a resource limit being reached (rather than bad input), which is
    /// worth a log line besides the counter.
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            DropReason::PortMacLimit
                | DropReason::TableFull
                | DropReason::NatFlowLimit
                | DropReason::GatewayBusy
        )
    }

    /// The reason's slot in the counter arrays: its discriminant, which `indices_follow_all`
    /// checks against [`DropReason::ALL`].
    fn index(self) -> usize {
        usize::from(self as u8)
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One array of counters indexed by [`DropReason`]; shared by [`Counters`] and [`PortCounters`].
#[derive(Debug)]
struct DropCounters([AtomicU64; DropReason::ALL.len()]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl DropCounters {
    fn count(&self, reason: DropReason) {
        self.0[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.index()].load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Vec<(DropReason, u64)> {
        DropReason::ALL.iter().map(|&r| (r, self.get(r))).collect()
    }
}

/// One counter per [`Reason`] and per [`DropReason`], shared (`Arc<Counters>`) between the
/// switch, which bumps them, and whoever reports them, which reads them without stopping the
/// switch.
#[derive(Debug, Default)]
pub struct Counters {
    by_reason: [AtomicU64; Reason::ALL.len()],
    drops: DropCounters,
    /// When each limit reason was last logged (ms since the Unix epoch; 0: never).
    last_logged: DropCounters,
    /// Frames that busy polling read (see [`crate::BusyPoll`]): each one a wake-up saved.
    polled: AtomicU64,
}

/// A limit being hit is logged at most this often per reason; the counters have the totals.
const LIMIT_LOG_EVERY_MS: u64 = 10_000;

impl Counters {
    /// Counts one refusal.
    pub fn count(&self, reason: Reason) {
        // Relaxed: each counter is an independent statistic; no other memory hangs off it.
        self.by_reason[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The current value of one counter.
    pub fn get(&self, reason: Reason) -> u64 {
        self.by_reason[reason.index()].load(Ordering::Relaxed)
    }

    /// Every counter with its reason, in [`Reason::ALL`] order.
    pub fn snapshot(&self) -> Vec<(Reason, u64)> {
        Reason::ALL.iter().map(|&r| (r, self.get(r))).collect()
    }

    /// Counts one dropped frame switch-wide; the ingress port's [`PortCounters`] count it too,
    /// so the total survives the port's removal.
    pub fn count_drop(&self, reason: DropReason) {
        self.drops.count(reason);
        if reason.is_limit() {
            self.log_limit(reason);
        }
    }

    /// Logs that a limit was hit, at most once per [`LIMIT_LOG_EVERY_MS`] per reason, so an
    /// operator sees it without a flood turning into a log flood.
    fn log_limit(&self, reason: DropReason) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let slot = &self.last_logged.0[reason.index()];
        let last = slot.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LIMIT_LOG_EVERY_MS
            && slot
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                %reason,
                total = self.drops.get(reason),
                "a limit was reached; frames or flows beyond it are dropped (totals in `netloom stats`; logged at most every 10 s)"
            );
        }
    }

    /// How many frames were dropped for `reason`, switch-wide.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.get(reason)
    }

    /// Every drop counter with its reason, in [`DropReason::ALL`] order.
    pub fn drop_snapshot(&self) -> Vec<(DropReason, u64)> {
        self.drops.snapshot()
    }

    /// Counts one frame read by busy polling rather than after a wake-up.
    pub fn count_polled(&self) {
        self.polled.fetch_add(1, Ordering::Relaxed);
    }

    /// How many frames busy polling has read, switch-wide.
    pub fn polled(&self) -> u64 {
        self.polled.load(Ordering::Relaxed)
    }
}

/// Traffic and drop counters of one port, shared (`Arc<PortCounters>`) between the tasks that
/// move its frames and whoever reports them.
///
/// The counters are atomics rather than plain integers owned by one task because a port's tx
/// counters are bumped by whichever task forwards to it. Like cloud-hypervisor's `NetCounters`.
#[derive(Debug, Default)]
pub struct PortCounters {
    rx_frames: AtomicU64,
    rx_bytes: AtomicU64,
    tx_frames: AtomicU64,
    tx_bytes: AtomicU64,
    drops: DropCounters,
}

/// A point-in-time copy of a port's [`PortCounters`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames read from the port, dropped or not (a GSO super-frame counts once).
    pub rx_frames: u64,
    /// Bytes of those frames, Ethernet header included, virtio-net header excluded.
    pub rx_bytes: u64,
    /// Frames written to the port (each GSO segment counts once).
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames from this port that were dropped, per reason, in [`DropReason::ALL`] order.
    pub drops: Vec<(DropReason, u64)>,
}

impl PortCounters {
    /// Counts one frame read from the port.
    pub fn count_rx(&self, bytes: usize) {
        self.rx_frames.fetch_add(1, Ordering::Relaxed);
        self.rx_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts one frame written to the port.
    pub fn count_tx(&self, bytes: usize) {
        self.tx_frames.fetch_add(1, Ordering::Relaxed);
        self.tx_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts one frame from this port that was dropped.
    pub fn count_drop(&self, reason: DropReason) {
        self.drops.count(reason);
    }

    /// How many frames from this port were dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.get(reason)
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> PortStats {
        PortStats {
            rx_frames: self.rx_frames.load(Ordering::Relaxed),
            rx_bytes: self.rx_bytes.load(Ordering::Relaxed),
            tx_frames: self.tx_frames.load(Ordering::Relaxed),
            tx_bytes: self.tx_bytes.load(Ordering::Relaxed),
            drops: self.drops.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r}");
        }
    }

    #[test]
    fn drop_indices_follow_all() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r}");
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len(), "names are unique");
    }

    #[test]
    fn counts_drops_switch_wide_and_per_port() {
        let c = Counters::default();
        let port = PortCounters::default();
        for reason in [
            DropReason::SpoofedSourceMac,
            DropReason::SpoofedSourceMac,
            DropReason::Runt,
        ] {
            c.count_drop(reason);
            port.count_drop(reason);
        }
        port.count_rx(60);
        port.count_rx(1514);
        port.count_tx(42);
        assert_eq!(c.drops(DropReason::SpoofedSourceMac), 2);
        assert_eq!(c.drops(DropReason::Runt), 1);
        assert_eq!(c.drops(DropReason::Hairpin), 0);
        // Refusals and drops are separate counters.
        assert!(c.snapshot().iter().all(|&(_, n)| n == 0));
        let stats = port.snapshot();
        assert_eq!((stats.rx_frames, stats.rx_bytes), (2, 1574));
        assert_eq!((stats.tx_frames, stats.tx_bytes), (1, 42));
        assert_eq!(stats.drops, c.drop_snapshot());
    }

    #[test]
    fn counts_per_reason() {
        let c = Counters::default();
        c.count(Reason::UnknownDomain);
        c.count(Reason::UnknownDomain);
        c.count(Reason::InvalidConfig);
        assert_eq!(
            c.snapshot(),
            vec![
                (Reason::DuplicateDomain, 0),
                (Reason::UnknownDomain, 2),
                (Reason::InvalidConfig, 1),
                (Reason::UnknownPort, 0),
                (Reason::PortRefused, 0),
            ]
        );
    }
}
