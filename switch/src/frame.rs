//! Typed views of the frames the switch reads from its ports.
//!
//! A read from a TAP opened with `IFF_VNET_HDR` (header size 12, little-endian) returns
//! `[virtio-net header: 12 bytes][Ethernet frame]`. [`FrameView::parse_vnet`] decodes and
//! validates both once, at the edge; the forwarding decision ([`crate::decide`]) and the
//! segmenter ([`crate::Segmenter`]) then work on the view and trust its offsets. Frames from a
//! port without a virtio-net header (the userspace gateway) go through
//! [`FrameView::parse_ethernet`].
//!
//! What is parsed is exactly what the switch acts on: the offload request, both MACs and the
//! EtherType; then for ARP its sender and target, for IPv4 its addresses and protocol, for IPv6
//! its next header and length; for a GSO super-frame the TCP header. The rest is payload the
//! switch forwards unread. Layers are read through etherparse's checked slices, never by
//! indexing the frame by hand.
//!
//! Nothing here panics, whatever the bytes: a property test feeds arbitrary input to the parser.
//!
//! The virtio-net header is untrusted input as much as the frame is. The kernel writes it, but it
//! describes bytes the container chose, and a container with `CAP_NET_RAW` can hand its kernel
//! GSO packets (a packet socket with `PACKET_VNET_HDR`) whose headers disagree with the offload
//! they ask for. So the header is checked against the frame, not just against itself.
//!
//! The header's wire layout ([`VnetHeader`], its flag and GSO constants) lives in
//! [`crate::vnet`]; this module gives its fields a meaning ([`Offload`]) and validates them.

use std::fmt;
use std::net::Ipv4Addr;

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacketSlice, EtherType, Ethernet2Header, IpNumber,
    Ipv4HeaderSlice, Ipv6HeaderSlice, TcpHeaderSlice,
};

use crate::vnet::{
    VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN,
    VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP, VIRTIO_NET_HDR_GSO_UDP_L4, VNET_HDR_LEN, VnetHeader,
};

/// Length of an untagged Ethernet II header.
pub const ETHERNET_HEADER_LEN: usize = Ethernet2Header::LEN;

/// The largest Ethernet frame the switch accepts: the header, a 40-byte IPv6 header and the
/// largest payload its 16-bit length field can describe. IPv4 super-frames end 40 bytes sooner,
/// because IPv4's total length counts its header. Anything longer cannot be a valid frame.
///
/// It is also more than a TAP can hand over: a GSO super-frame is bounded by the device's
/// `gso_max_size` (64 KiB; tun caps `tso_max_size` there, so it cannot be raised) plus the
/// Ethernet header and a VLAN tag the kernel may insert, and a non-GSO frame by the TAP's
/// largest MTU (65521) plus the same headers.
pub const MAX_FRAME_LEN: usize = ETHERNET_HEADER_LEN + 40 + u16::MAX as usize;

/// The read buffer a TAP port needs for one frame with its virtio-net header; smaller buffers
/// silently truncate large frames. A read that fills a buffer of exactly this size may have
/// been truncated by the kernel, so readers should allocate one byte more and let
/// [`FrameView::parse_vnet`] reject what does not fit as [`FrameError::Oversize`].
pub const MAX_READ_LEN: usize = VNET_HDR_LEN + MAX_FRAME_LEN;

/// `GSO_BY_FRAGS` (include/linux/netdevice.h): a `gso_size` that means "segment along the
/// fragment list", never a segment size; tun refuses it in a virtio-net header.
const GSO_BY_FRAGS: u16 = 0xffff;
/// The offset of the checksum field in a TCP header (RFC 9293, section 3.1).
const TCP_CHECKSUM_OFFSET: u16 = 16;
/// The fixed IPv6 header length (RFC 8200, section 3).
const IPV6_HEADER_LEN: usize = 40;

/// An Ethernet MAC address.
///
/// The switch's own type rather than `[u8; 6]` or a library's, so that the public API does not
/// change with the parsing library and so the learning table can key on a cheap `u64`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Whether this is a group address (multicast or broadcast): the I/G bit, the least
    /// significant bit of the first octet (IEEE 802-2014, section 8.2). Group addresses are
    /// never a valid source and are always flooded as a destination.
    pub const fn is_multicast(self) -> bool {
        let [first, ..] = self.0;
        first & 1 == 1
    }

    /// Whether this is the broadcast address.
    pub const fn is_broadcast(self) -> bool {
        let [a, b, c, d, e, f] = self.0;
        a & b & c & d & e & f == 0xff
    }

    /// The address as the low 48 bits of a `u64`: the learning table's key.
    pub(crate) const fn key(self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        u64::from_be_bytes([0, 0, a, b, c, d, e, f])
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> Self {
        MacAddr(bytes)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The kind of segmentation a GSO super-frame asks for (the `gso_type` field without its ECN
/// bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GsoKind {
    /// `VIRTIO_NET_HDR_GSO_TCPV4` (1): TCP segmentation over IPv4.
    TcpV4,
    /// `VIRTIO_NET_HDR_GSO_UDP` (3): UDP fragmentation offload; kernels no longer produce it.
    Udp,
    /// `VIRTIO_NET_HDR_GSO_TCPV6` (4): TCP segmentation over IPv6.
    TcpV6,
    /// `VIRTIO_NET_HDR_GSO_UDP_L4` (5): UDP segmentation offload; only with `TUN_F_USO*`, which
    /// netloom does not negotiate.
    UdpL4,
}

impl GsoKind {
    /// The `gso_type` value, without the ECN bit.
    fn code(self) -> u8 {
        match self {
            GsoKind::TcpV4 => VIRTIO_NET_HDR_GSO_TCPV4,
            GsoKind::Udp => VIRTIO_NET_HDR_GSO_UDP,
            GsoKind::TcpV6 => VIRTIO_NET_HDR_GSO_TCPV6,
            GsoKind::UdpL4 => VIRTIO_NET_HDR_GSO_UDP_L4,
        }
    }
}

/// A partial-checksum request (`VIRTIO_NET_HDR_F_NEEDS_CSUM`): the ones' complement sum from
/// `start` to the end of the frame is to be stored at `start + offset`; the field holds the
/// pseudo-header sum already (the kernel's `CHECKSUM_PARTIAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Csum {
    /// `csum_start`: from the start of the Ethernet frame.
    pub start: u16,
    /// `csum_offset`: from `start` to the checksum field.
    pub offset: u16,
}

/// A segmentation request: the frame is a super-frame to be cut into `size`-byte segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gso {
    /// What to segment.
    pub kind: GsoKind,
    /// `gso_size`: payload bytes per segment (the MSS for TCP); never 0.
    pub size: u16,
    /// `VIRTIO_NET_HDR_GSO_ECN`: the flow uses ECN, so CWR belongs on the first segment only.
    pub ecn: bool,
}

/// A validated virtio-net header: what the kernel asks of whoever delivers the frame.
///
/// Invalid combinations are refused by [`Offload::parse`] (a GSO request always comes with a
/// checksum request, as virtio 1.2 section 5.1.6.2 requires of a driver), so code holding an
/// `Offload` only has to check what depends on the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Offload {
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the kernel verified the checksum already. It vouches for
    /// nothing once the frame leaves for another port; see [`Offload::forwarded`].
    pub data_valid: bool,
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM` with its offsets.
    pub csum: Option<Csum>,
    /// `gso_type` other than `NONE`, with `gso_size`.
    pub gso: Option<Gso>,
    /// `hdr_len`: tun reports the length of the skb's linear part, which is only a hint of the
    /// header length, so the switch checks it against the frame but computes headers itself.
    pub hdr_len: u16,
}

/// Why [`Offload::parse`] refused a virtio-net header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VnetError {
    /// Flag bits other than `NEEDS_CSUM` and `DATA_VALID` (`RSC_INFO` is device-to-driver only).
    #[error("unknown virtio-net flags {0:#04x}")]
    UnknownFlags(u8),
    /// A `gso_type` no kernel defines.
    #[error("unknown GSO type {0:#04x}")]
    UnknownGsoType(u8),
    /// The ECN bit on a frame that is not a super-frame.
    #[error("ECN flag without GSO")]
    EcnWithoutGso,
    /// A super-frame without `NEEDS_CSUM` (virtio 1.2, section 5.1.6.2).
    #[error("GSO without NEEDS_CSUM")]
    GsoWithoutChecksum,
    /// A super-frame with `gso_size` 0, which would never end.
    #[error("GSO with a segment size of 0")]
    ZeroGsoSize,
    /// A super-frame with `gso_size` 0xffff, the kernel's `GSO_BY_FRAGS` marker, which no TCP
    /// segmentation request carries: `virtio_net_hdr_to_skb` refuses it, so every port the frame
    /// were forwarded to would refuse the write.
    #[error("GSO with the GSO_BY_FRAGS segment size")]
    GsoByFrags,
    /// `hdr_len` longer than the frame.
    #[error("header length {hdr_len} exceeds the {frame_len}-byte frame")]
    HdrLenPastFrame {
        /// `hdr_len` as given.
        hdr_len: u16,
        /// The Ethernet frame's length.
        frame_len: usize,
    },
}

impl Offload {
    /// A plain frame with complete checksums: what frames the switch makes up itself carry.
    pub const NONE: Offload = Offload {
        data_valid: false,
        csum: None,
        gso: None,
        hdr_len: 0,
    };

    /// Decodes and checks the 12 header bytes (little-endian, the byte order netloom sets with
    /// `TUNSETVNETLE`). `num_buffers` (bytes 10..12) is ignored: tun does not write it on reads.
    pub fn parse(bytes: &[u8; VNET_HDR_LEN]) -> Result<Offload, VnetError> {
        Offload::from_header(VnetHeader::from_bytes(bytes))
    }

    /// Checks a decoded header in itself (not yet against its frame; see
    /// [`FrameView::parse`]).
    pub fn from_header(header: VnetHeader) -> Result<Offload, VnetError> {
        let VnetHeader {
            flags,
            gso_type,
            hdr_len,
            gso_size: size,
            csum_start,
            csum_offset,
        } = header;
        if flags & !(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID) != 0 {
            return Err(VnetError::UnknownFlags(flags));
        }
        let ecn = gso_type & VIRTIO_NET_HDR_GSO_ECN != 0;
        let kind = match gso_type & !VIRTIO_NET_HDR_GSO_ECN {
            VIRTIO_NET_HDR_GSO_NONE => None,
            VIRTIO_NET_HDR_GSO_TCPV4 => Some(GsoKind::TcpV4),
            VIRTIO_NET_HDR_GSO_UDP => Some(GsoKind::Udp),
            VIRTIO_NET_HDR_GSO_TCPV6 => Some(GsoKind::TcpV6),
            VIRTIO_NET_HDR_GSO_UDP_L4 => Some(GsoKind::UdpL4),
            _ => return Err(VnetError::UnknownGsoType(gso_type)),
        };
        let csum = header.needs_csum().then_some(Csum {
            start: csum_start,
            offset: csum_offset,
        });
        let gso = match kind {
            None if ecn => return Err(VnetError::EcnWithoutGso),
            None => None,
            Some(_) if csum.is_none() => return Err(VnetError::GsoWithoutChecksum),
            Some(_) if size == 0 => return Err(VnetError::ZeroGsoSize),
            Some(_) if size == GSO_BY_FRAGS => return Err(VnetError::GsoByFrags),
            Some(kind) => Some(Gso { kind, size, ecn }),
        };
        Ok(Offload {
            data_valid: flags & VIRTIO_NET_HDR_F_DATA_VALID != 0,
            csum,
            gso,
            hdr_len,
        })
    }

    /// The request to write in front of the frame on another TAP: the same offload, but
    /// without `DATA_VALID`, so that the receiving kernel verifies what a container sent
    /// instead of trusting the sender's kernel.
    pub fn forwarded(self) -> Offload {
        Offload {
            data_valid: false,
            ..self
        }
    }

    /// Encodes the header, the inverse of [`Offload::parse`]; `num_buffers` is written as 0.
    /// `gso_size` is 0 for frames without GSO, as tun writes it.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        self.to_header().to_bytes()
    }

    /// The raw header, the inverse of [`Offload::from_header`].
    pub fn to_header(&self) -> VnetHeader {
        let mut flags = 0;
        if self.csum.is_some() {
            flags |= VIRTIO_NET_HDR_F_NEEDS_CSUM;
        }
        if self.data_valid {
            flags |= VIRTIO_NET_HDR_F_DATA_VALID;
        }
        let (gso_type, gso_size) = match self.gso {
            None => (VIRTIO_NET_HDR_GSO_NONE, 0),
            Some(g) if g.ecn => (g.kind.code() | VIRTIO_NET_HDR_GSO_ECN, g.size),
            Some(g) => (g.kind.code(), g.size),
        };
        let csum = self.csum.unwrap_or(Csum {
            start: 0,
            offset: 0,
        });
        VnetHeader {
            flags,
            gso_type,
            hdr_len: self.hdr_len,
            gso_size,
            csum_start: csum.start,
            csum_offset: csum.offset,
        }
    }
}

/// An ARP operation the switch accepts (RFC 826); others are dropped as malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOp {
    /// `1`: who has `target_ip`?
    Request,
    /// `2`: `sender_ip` is at `sender_mac`.
    Reply,
}

/// The fields of an Ethernet/IPv4 ARP packet the switch polices and routes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpInfo {
    /// Request or reply.
    pub op: ArpOp,
    /// Sender hardware address: what a receiver will cache for `sender_ip`.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub target_mac: MacAddr,
    /// Target protocol address: the address asked about.
    pub target_ip: Ipv4Addr,
}

/// The fields of an IPv4 header the switch polices, checks the MTU with, and segments by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Info {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// The protocol number of the payload (6 TCP, 17 UDP, ...).
    pub protocol: u8,
    /// Header length in bytes, options included (20..=60).
    pub header_len: u8,
    /// Total length of the packet, header included.
    pub total_len: u16,
    /// Whether this is a fragment (MF set or a non-zero offset).
    pub fragment: bool,
}

/// The fields of an IPv6 header the switch segments by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Info {
    /// The protocol number of the first header after the fixed header.
    pub next_header: u8,
    /// Length of everything after the fixed 40-byte header.
    pub payload_len: u16,
}

/// What the Ethernet frame carries, as far as the switch reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L3 {
    /// EtherType 0x0806, an Ethernet/IPv4 request or reply.
    Arp(ArpInfo),
    /// EtherType 0x0800.
    Ipv4(Ipv4Info),
    /// EtherType 0x86dd.
    Ipv6(Ipv6Info),
    /// Any other EtherType (see [`FrameView::ethertype`]), or an 802.3 length field.
    Other,
}

/// Where a validated TCP super-frame's layers are, for the segmenter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct GsoLayout {
    /// Offset of the TCP header (equal to `csum_start`).
    pub(crate) l4_start: usize,
    /// Offset of the TCP payload.
    pub(crate) payload_start: usize,
    /// End of the IP packet (any bytes after it are not part of it).
    pub(crate) packet_end: usize,
}

/// Why a frame could not be parsed. Each maps to one [`crate::DropReason`]; the variants carry
/// what a developer needs to see why (the counters only need the reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The read was shorter than the virtio-net header.
    #[error("{len} bytes is shorter than the 12-byte virtio-net header")]
    TruncatedVnetHeader {
        /// The read's length.
        len: usize,
    },
    /// The virtio-net header is invalid in itself.
    #[error("invalid virtio-net header")]
    BadVnetHeader(#[from] VnetError),
    /// A GSO type netloom never negotiates.
    #[error("unsupported GSO type {0:?}")]
    UnsupportedGso(GsoKind),
    /// Less than an Ethernet header.
    #[error("{len}-byte frame is shorter than an Ethernet header")]
    Runt {
        /// The frame's length.
        len: usize,
    },
    /// Longer than [`MAX_FRAME_LEN`].
    #[error("{len}-byte frame is longer than {MAX_FRAME_LEN}")]
    Oversize {
        /// The frame's length.
        len: usize,
    },
    /// An 802.1Q, 802.1ad or legacy double tag.
    #[error("VLAN-tagged frame (TPID {tpid:#06x})")]
    VlanTagged {
        /// The tag protocol identifier found in the EtherType position.
        tpid: u16,
    },
    /// Not an Ethernet/IPv4 ARP request or reply.
    #[error("malformed or unsupported ARP packet")]
    MalformedArp,
    /// An IPv4 header cut short, of the wrong version, or with impossible lengths.
    #[error("malformed IPv4 header")]
    MalformedIpv4,
    /// An IPv6 header cut short, of the wrong version, or with a payload past the frame.
    #[error("malformed IPv6 header")]
    MalformedIpv6,
    /// The offload request does not fit the frame.
    #[error("offload request does not match the frame")]
    OffloadMismatch(#[source] OffloadError),
}

/// How an offload request disagrees with the frame it describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// `csum_start` inside the Ethernet header, or the checksum field past the frame's end.
    #[error("checksum at {start}+{offset} lies outside the {frame_len}-byte frame")]
    ChecksumOutOfFrame {
        /// `csum_start`.
        start: u16,
        /// `csum_offset`.
        offset: u16,
        /// The frame's length.
        frame_len: usize,
    },
    /// A TCP GSO request on a frame that is not an unfragmented TCP packet of that IP version.
    #[error("GSO type does not match the packet's protocol")]
    NotTcp,
    /// A TCP GSO request whose checksum offsets do not point at the TCP checksum.
    #[error("checksum offsets do not point at the TCP checksum")]
    ChecksumNotTcp,
    /// A TCP super-frame whose TCP header is cut short or has a bad data offset.
    #[error("malformed TCP header in a GSO frame")]
    MalformedTcp,
}

impl FrameError {
    /// The counter this error is counted under.
    pub fn reason(&self) -> crate::DropReason {
        use crate::DropReason as R;
        match self {
            FrameError::TruncatedVnetHeader { .. } => R::TruncatedVnetHeader,
            FrameError::BadVnetHeader(_) => R::BadVnetHeader,
            FrameError::UnsupportedGso(_) => R::UnsupportedGso,
            FrameError::Runt { .. } => R::Runt,
            FrameError::Oversize { .. } => R::Oversize,
            FrameError::VlanTagged { .. } => R::VlanTagged,
            FrameError::MalformedArp => R::MalformedArp,
            FrameError::MalformedIpv4 => R::MalformedIpv4,
            FrameError::MalformedIpv6 => R::MalformedIpv6,
            FrameError::OffloadMismatch(_) => R::OffloadMismatch,
        }
    }
}

/// A validated, borrowed view of one frame: its offload request, Ethernet header and the L3
/// fields the switch acts on. Cheap to build (no allocation, a few dozen bytes read) and `Copy`.
#[derive(Clone, Copy, Debug)]
pub struct FrameView<'a> {
    frame: &'a [u8],
    offload: Offload,
    dst: MacAddr,
    src: MacAddr,
    ethertype: u16,
    l3: L3,
    gso: Option<GsoLayout>,
}

impl<'a> FrameView<'a> {
    /// Parses a TAP read: the virtio-net header, then the Ethernet frame behind it.
    pub fn parse_vnet(buf: &'a [u8]) -> Result<FrameView<'a>, FrameError> {
        let Some((header, frame)) = VnetHeader::split(buf) else {
            return Err(FrameError::TruncatedVnetHeader { len: buf.len() });
        };
        let offload = Offload::from_header(header)?;
        FrameView::parse(offload, frame)
    }

    /// Parses an Ethernet frame that came without a virtio-net header (checksums complete).
    pub fn parse_ethernet(frame: &'a [u8]) -> Result<FrameView<'a>, FrameError> {
        FrameView::parse(Offload::NONE, frame)
    }

    /// Parses an Ethernet frame with an offload request obtained separately.
    pub fn parse(offload: Offload, frame: &'a [u8]) -> Result<FrameView<'a>, FrameError> {
        let len = frame.len();
        if len > MAX_FRAME_LEN {
            return Err(FrameError::Oversize { len });
        }
        let Some((eth, payload)) = frame.split_first_chunk::<ETHERNET_HEADER_LEN>() else {
            return Err(FrameError::Runt { len });
        };
        let eth = Ethernet2Header::from_bytes(*eth);
        let ethertype = eth.ether_type;
        let l3 = match ethertype {
            EtherType::ARP => L3::Arp(parse_arp(payload)?),
            EtherType::IPV4 => L3::Ipv4(parse_ipv4(payload)?),
            EtherType::IPV6 => L3::Ipv6(parse_ipv6(payload)?),
            EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
                return Err(FrameError::VlanTagged { tpid: ethertype.0 });
            }
            _ => L3::Other,
        };
        let gso = check_offload(&offload, frame, &l3)?;
        Ok(FrameView {
            frame,
            offload,
            dst: MacAddr(eth.destination),
            src: MacAddr(eth.source),
            ethertype: ethertype.0,
            l3,
            gso,
        })
    }

    /// The whole Ethernet frame (without the virtio-net header).
    pub fn ethernet(&self) -> &'a [u8] {
        self.frame
    }

    /// The Ethernet frame's length in bytes, what the rx/tx byte counters count.
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// The validated offload request.
    pub fn offload(&self) -> &Offload {
        &self.offload
    }

    /// Destination MAC.
    pub fn dst(&self) -> MacAddr {
        self.dst
    }

    /// Source MAC.
    pub fn src(&self) -> MacAddr {
        self.src
    }

    /// The EtherType (or 802.3 length) field.
    pub fn ethertype(&self) -> u16 {
        self.ethertype
    }

    /// What the frame carries.
    pub fn l3(&self) -> &L3 {
        &self.l3
    }

    /// The ARP fields, for an ARP frame.
    pub fn arp(&self) -> Option<&ArpInfo> {
        match &self.l3 {
            L3::Arp(arp) => Some(arp),
            _ => None,
        }
    }

    /// The IPv4 source address, for an IPv4 frame.
    pub fn ipv4_src(&self) -> Option<Ipv4Addr> {
        match &self.l3 {
            L3::Ipv4(ip) => Some(ip.src),
            _ => None,
        }
    }

    /// Whether the frame is a GSO super-frame.
    pub fn is_gso(&self) -> bool {
        self.offload.gso.is_some()
    }

    /// Whether a destination that takes neither GSO nor partial checksums (the gateway, a port
    /// without a virtio-net header) needs the frame run through [`crate::Segmenter`] first.
    pub fn needs_software_offload(&self) -> bool {
        self.offload.csum.is_some() || self.offload.gso.is_some()
    }

    /// The largest IP packet this frame puts on the wire: the frame less its Ethernet header,
    /// or for a super-frame, the IP and TCP headers plus one full segment. What the MTU is
    /// checked against.
    pub fn largest_ip_packet(&self) -> usize {
        match (self.gso, self.offload.gso) {
            (Some(layout), Some(gso)) => {
                let payload = layout.packet_end - layout.payload_start;
                layout.payload_start - ETHERNET_HEADER_LEN + payload.min(usize::from(gso.size))
            }
            _ => self.frame.len() - ETHERNET_HEADER_LEN,
        }
    }

    /// The layer offsets of a TCP super-frame (for the segmenter).
    pub(crate) fn gso_layout(&self) -> Option<GsoLayout> {
        self.gso
    }
}

fn parse_arp(payload: &[u8]) -> Result<ArpInfo, FrameError> {
    let arp = ArpPacketSlice::from_slice(payload).map_err(|_| FrameError::MalformedArp)?;
    if arp.hw_addr_type() != ArpHardwareId::ETHERNET
        || arp.proto_addr_type() != EtherType::IPV4
        || arp.hw_addr_size() != 6
        || arp.proto_addr_size() != 4
    {
        return Err(FrameError::MalformedArp);
    }
    let op = match arp.operation() {
        ArpOperation::REQUEST => ArpOp::Request,
        ArpOperation::REPLY => ArpOp::Reply,
        _ => return Err(FrameError::MalformedArp),
    };
    let mac = |bytes: &[u8]| {
        <[u8; 6]>::try_from(bytes)
            .map(MacAddr)
            .map_err(|_| FrameError::MalformedArp)
    };
    let ip = |bytes: &[u8]| {
        <[u8; 4]>::try_from(bytes)
            .map(Ipv4Addr::from)
            .map_err(|_| FrameError::MalformedArp)
    };
    Ok(ArpInfo {
        op,
        sender_mac: mac(arp.sender_hw_addr())?,
        sender_ip: ip(arp.sender_protocol_addr())?,
        target_mac: mac(arp.target_hw_addr())?,
        target_ip: ip(arp.target_protocol_addr())?,
    })
}

fn parse_ipv4(payload: &[u8]) -> Result<Ipv4Info, FrameError> {
    let ip = Ipv4HeaderSlice::from_slice(payload).map_err(|_| FrameError::MalformedIpv4)?;
    let header_len = ip.slice().len();
    let total_len = ip.total_len();
    // The frame may be longer than the packet (Ethernet padding) but never shorter.
    if usize::from(total_len) < header_len || usize::from(total_len) > payload.len() {
        return Err(FrameError::MalformedIpv4);
    }
    Ok(Ipv4Info {
        src: ip.source_addr(),
        dst: ip.destination_addr(),
        protocol: ip.protocol().0,
        // `from_slice` checked the IHL: 20..=60 bytes.
        header_len: u8::try_from(header_len).map_err(|_| FrameError::MalformedIpv4)?,
        total_len,
        fragment: ip.is_fragmenting_payload(),
    })
}

fn parse_ipv6(payload: &[u8]) -> Result<Ipv6Info, FrameError> {
    let ip = Ipv6HeaderSlice::from_slice(payload).map_err(|_| FrameError::MalformedIpv6)?;
    let payload_len = ip.payload_length();
    if IPV6_HEADER_LEN + usize::from(payload_len) > payload.len() {
        return Err(FrameError::MalformedIpv6);
    }
    Ok(Ipv6Info {
        next_header: ip.next_header().0,
        payload_len,
    })
}

/// Checks the offload request against the frame; for a TCP super-frame, returns where its
/// layers are.
fn check_offload(
    offload: &Offload,
    frame: &[u8],
    l3: &L3,
) -> Result<Option<GsoLayout>, FrameError> {
    if usize::from(offload.hdr_len) > frame.len() {
        return Err(VnetError::HdrLenPastFrame {
            hdr_len: offload.hdr_len,
            frame_len: frame.len(),
        }
        .into());
    }
    let mismatch = FrameError::OffloadMismatch;
    if let Some(csum) = offload.csum {
        let start = usize::from(csum.start);
        if start < ETHERNET_HEADER_LEN || start + usize::from(csum.offset) + 2 > frame.len() {
            return Err(mismatch(OffloadError::ChecksumOutOfFrame {
                start: csum.start,
                offset: csum.offset,
                frame_len: frame.len(),
            }));
        }
    }
    let Some(gso) = offload.gso else {
        return Ok(None);
    };
    let (l4_start, packet_end) = match (gso.kind, l3) {
        (GsoKind::Udp | GsoKind::UdpL4, _) => return Err(FrameError::UnsupportedGso(gso.kind)),
        (GsoKind::TcpV4, L3::Ipv4(ip)) if ip.protocol == IpNumber::TCP.0 && !ip.fragment => (
            ETHERNET_HEADER_LEN + usize::from(ip.header_len),
            ETHERNET_HEADER_LEN + usize::from(ip.total_len),
        ),
        (GsoKind::TcpV6, L3::Ipv6(ip)) if ip.next_header == IpNumber::TCP.0 => (
            ETHERNET_HEADER_LEN + IPV6_HEADER_LEN,
            ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + usize::from(ip.payload_len),
        ),
        _ => return Err(mismatch(OffloadError::NotTcp)),
    };
    match offload.csum {
        Some(c) if usize::from(c.start) == l4_start && c.offset == TCP_CHECKSUM_OFFSET => {}
        _ => return Err(mismatch(OffloadError::ChecksumNotTcp)),
    }
    let segment = frame
        .get(l4_start..packet_end)
        .ok_or(mismatch(OffloadError::MalformedTcp))?;
    let tcp =
        TcpHeaderSlice::from_slice(segment).map_err(|_| mismatch(OffloadError::MalformedTcp))?;
    Ok(Some(GsoLayout {
        l4_start,
        payload_start: l4_start + tcp.slice().len(),
        packet_end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DropReason;
    use crate::testutil::{ARP_REQUEST, UDP4, tcp4_gso, tcp6_gso, vnet};
    use proptest::prelude::*;
    use rstest::rstest;

    const NEEDS_CSUM_UDP: Offload = Offload {
        csum: Some(Csum {
            start: 34,
            offset: 6,
        }),
        ..Offload::NONE
    };

    /// `frame` with byte `at` replaced by `value`.
    fn patched(frame: &[u8], patches: &[(usize, u8)]) -> Vec<u8> {
        let mut out = frame.to_vec();
        for &(at, value) in patches {
            out[at] = value;
        }
        out
    }

    #[test]
    fn arp_request_fixture() {
        let buf = vnet(Offload::NONE, &ARP_REQUEST);
        let view = FrameView::parse_vnet(&buf).unwrap();
        assert_eq!(view.dst(), MacAddr::BROADCAST);
        assert_eq!(view.src(), MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]));
        assert_eq!(view.ethertype(), 0x0806);
        assert_eq!(
            view.arp(),
            Some(&ArpInfo {
                op: ArpOp::Request,
                sender_mac: MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]),
                sender_ip: Ipv4Addr::new(172, 17, 0, 2),
                target_mac: MacAddr([0; 6]),
                target_ip: Ipv4Addr::new(172, 17, 0, 1),
            })
        );
        assert_eq!(view.ipv4_src(), None);
        assert_eq!(view.frame_len(), 42);
        assert!(!view.needs_software_offload());
    }

    #[test]
    fn ipv4_udp_fixture() {
        let view = FrameView::parse_ethernet(&UDP4).unwrap();
        assert_eq!(view.dst(), MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x03]));
        assert_eq!(view.ipv4_src(), Some(Ipv4Addr::new(172, 17, 0, 2)));
        assert_eq!(
            view.l3(),
            &L3::Ipv4(Ipv4Info {
                src: Ipv4Addr::new(172, 17, 0, 2),
                dst: Ipv4Addr::new(172, 17, 0, 3),
                protocol: 17,
                header_len: 20,
                total_len: 32,
                fragment: false,
            })
        );
        assert_eq!(view.largest_ip_packet(), 32);
    }

    #[test]
    fn ethernet_padding_is_accepted() {
        let mut padded = UDP4.to_vec();
        padded.resize(60, 0);
        let view = FrameView::parse_ethernet(&padded).unwrap();
        assert_eq!(view.frame_len(), 60);
    }

    #[test]
    fn udp_partial_checksum_is_accepted() {
        let buf = vnet(NEEDS_CSUM_UDP, &UDP4);
        let view = FrameView::parse_vnet(&buf).unwrap();
        assert!(view.needs_software_offload());
        assert!(!view.is_gso());
    }

    #[test]
    fn other_ethertypes_pass_unread() {
        // LLDP, EtherType 0x88cc.
        let frame = patched(&UDP4, &[(12, 0x88), (13, 0xcc)]);
        let view = FrameView::parse_ethernet(&frame).unwrap();
        assert_eq!(view.l3(), &L3::Other);
        assert_eq!(view.ethertype(), 0x88cc);
    }

    #[test]
    fn tcp_super_frames_have_their_layout() {
        let buf = tcp4_gso(10_000, 1448, &[]);
        let view = FrameView::parse_vnet(&buf).unwrap();
        assert_eq!(
            view.gso_layout(),
            Some(GsoLayout {
                l4_start: 34,
                payload_start: 54,
                packet_end: 54 + 10_000
            })
        );
        assert_eq!(view.largest_ip_packet(), 40 + 1448);
        let buf = tcp6_gso(3000, 1428);
        let view = FrameView::parse_vnet(&buf).unwrap();
        assert_eq!(view.gso_layout().unwrap().payload_start, 74);
        assert_eq!(view.largest_ip_packet(), 60 + 1428);
    }

    #[rstest]
    #[case::none(Offload::NONE, [0; 12])]
    #[case::data_valid(Offload { data_valid: true, ..Offload::NONE }, [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]
    #[case::partial_udp(NEEDS_CSUM_UDP, [1, 0, 0, 0, 0, 0, 34, 0, 6, 0, 0, 0])]
    #[case::tso4(
        Offload {
            csum: Some(Csum { start: 34, offset: 16 }),
            gso: Some(Gso { kind: GsoKind::TcpV4, size: 1448, ecn: false }),
            hdr_len: 66,
            ..Offload::NONE
        },
        [1, 1, 66, 0, 0xa8, 0x05, 34, 0, 16, 0, 0, 0],
    )]
    #[case::tso6_ecn(
        Offload {
            csum: Some(Csum { start: 54, offset: 16 }),
            gso: Some(Gso { kind: GsoKind::TcpV6, size: 1428, ecn: true }),
            hdr_len: 86,
            ..Offload::NONE
        },
        [1, 0x84, 86, 0, 0x94, 0x05, 54, 0, 16, 0, 0, 0],
    )]
    #[case::uso(
        Offload {
            csum: Some(Csum { start: 34, offset: 6 }),
            gso: Some(Gso { kind: GsoKind::UdpL4, size: 1472, ecn: false }),
            hdr_len: 42,
            ..Offload::NONE
        },
        [1, 5, 42, 0, 0xc0, 0x05, 34, 0, 6, 0, 0, 0],
    )]
    fn offload_round_trips(#[case] offload: Offload, #[case] bytes: [u8; 12]) {
        assert_eq!(offload.to_bytes(), bytes);
        assert_eq!(Offload::parse(&bytes), Ok(offload));
    }

    #[test]
    fn forwarding_drops_data_valid_only() {
        let offload = Offload {
            data_valid: true,
            ..NEEDS_CSUM_UDP
        };
        assert_eq!(offload.forwarded(), NEEDS_CSUM_UDP);
    }

    #[test]
    fn num_buffers_is_ignored() {
        let bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb];
        assert_eq!(Offload::parse(&bytes), Ok(Offload::NONE));
    }

    #[rstest]
    #[case::rsc_info_flag([4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], VnetError::UnknownFlags(4))]
    #[case::high_flag([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], VnetError::UnknownFlags(0x81))]
    #[case::gso_type_2([1, 2, 0, 0, 1, 0, 34, 0, 16, 0, 0, 0], VnetError::UnknownGsoType(2))]
    #[case::gso_type_6([1, 6, 0, 0, 1, 0, 34, 0, 16, 0, 0, 0], VnetError::UnknownGsoType(6))]
    #[case::ecn_alone([0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], VnetError::EcnWithoutGso)]
    #[case::gso_no_csum([0, 1, 0, 0, 0xa8, 5, 0, 0, 0, 0, 0, 0], VnetError::GsoWithoutChecksum)]
    #[case::gso_size_0([1, 1, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0], VnetError::ZeroGsoSize)]
    #[case::gso_by_frags([1, 1, 0, 0, 0xff, 0xff, 34, 0, 16, 0, 0, 0], VnetError::GsoByFrags)]
    fn bad_vnet_headers(#[case] bytes: [u8; 12], #[case] expected: VnetError) {
        assert_eq!(Offload::parse(&bytes), Err(expected));
        let mut buf = bytes.to_vec();
        buf.extend_from_slice(&UDP4);
        let err = FrameView::parse_vnet(&buf).unwrap_err();
        assert_eq!(err, FrameError::BadVnetHeader(expected));
        assert_eq!(err.reason(), DropReason::BadVnetHeader);
    }

    /// Every way a frame is refused, each from a byte fixture, with the counter it lands in.
    #[rstest]
    #[case::empty(vec![], DropReason::TruncatedVnetHeader)]
    #[case::vnet_11(vec![0; 11], DropReason::TruncatedVnetHeader)]
    #[case::no_ethernet(vec![0; 12], DropReason::Runt)]
    #[case::runt_13(vnet(Offload::NONE, &UDP4[..13]), DropReason::Runt)]
    #[case::oversize(vnet(Offload::NONE, &vec![0; MAX_FRAME_LEN + 1]), DropReason::Oversize)]
    #[case::hdr_len_past_frame(
        vnet(Offload { hdr_len: 47, ..Offload::NONE }, &UDP4), DropReason::BadVnetHeader
    )]
    #[case::vlan_8021q(vnet(Offload::NONE, &patched(&UDP4, &[(12, 0x81), (13, 0x00)])), DropReason::VlanTagged)]
    #[case::qinq(vnet(Offload::NONE, &patched(&UDP4, &[(12, 0x88), (13, 0xa8)])), DropReason::VlanTagged)]
    #[case::double_tag_9100(vnet(Offload::NONE, &patched(&UDP4, &[(12, 0x91), (13, 0x00)])), DropReason::VlanTagged)]
    #[case::arp_truncated(vnet(Offload::NONE, &ARP_REQUEST[..41]), DropReason::MalformedArp)]
    #[case::arp_header_only(vnet(Offload::NONE, &ARP_REQUEST[..22]), DropReason::MalformedArp)]
    #[case::arp_not_ethernet(vnet(Offload::NONE, &patched(&ARP_REQUEST, &[(15, 6)])), DropReason::MalformedArp)]
    #[case::arp_not_ipv4(vnet(Offload::NONE, &patched(&ARP_REQUEST, &[(16, 0x86), (17, 0xdd)])), DropReason::MalformedArp)]
    #[case::arp_hlen_8(vnet(Offload::NONE, &patched(&ARP_REQUEST, &[(18, 8)])), DropReason::MalformedArp)]
    #[case::arp_op_3(vnet(Offload::NONE, &patched(&ARP_REQUEST, &[(21, 3)])), DropReason::MalformedArp)]
    #[case::ipv4_truncated(vnet(Offload::NONE, &UDP4[..33]), DropReason::MalformedIpv4)]
    #[case::ipv4_version_6(vnet(Offload::NONE, &patched(&UDP4, &[(14, 0x65)])), DropReason::MalformedIpv4)]
    #[case::ipv4_ihl_4(vnet(Offload::NONE, &patched(&UDP4, &[(14, 0x44)])), DropReason::MalformedIpv4)]
    #[case::ipv4_ihl_past_frame(vnet(Offload::NONE, &patched(&UDP4, &[(14, 0x4f)])), DropReason::MalformedIpv4)]
    #[case::ipv4_total_len_past_frame(vnet(Offload::NONE, &patched(&UDP4, &[(17, 33)])), DropReason::MalformedIpv4)]
    #[case::ipv4_total_len_below_header(vnet(Offload::NONE, &patched(&UDP4, &[(17, 19)])), DropReason::MalformedIpv4)]
    #[case::ipv6_truncated(vnet(Offload::NONE, &tcp6_gso(100, 1428)[12..60]), DropReason::MalformedIpv6)]
    #[case::ipv6_payload_past_frame(
        vnet(Offload::NONE, &patched(&tcp6_gso(100, 1428)[12..], &[(18, 1)])), DropReason::MalformedIpv6
    )]
    #[case::csum_past_end(
        vnet(Offload { csum: Some(Csum { start: 34, offset: 11 }), ..Offload::NONE }, &UDP4),
        DropReason::OffloadMismatch
    )]
    #[case::csum_in_ethernet_header(
        vnet(Offload { csum: Some(Csum { start: 4, offset: 0 }), ..Offload::NONE }, &UDP4),
        DropReason::OffloadMismatch
    )]
    #[case::udp_gso(
        vnet(Offload { gso: Some(Gso { kind: GsoKind::UdpL4, size: 4, ecn: false }), ..NEEDS_CSUM_UDP }, &UDP4),
        DropReason::UnsupportedGso
    )]
    #[case::ufo(
        vnet(Offload { gso: Some(Gso { kind: GsoKind::Udp, size: 4, ecn: false }), ..NEEDS_CSUM_UDP }, &UDP4),
        DropReason::UnsupportedGso
    )]
    #[case::tso4_on_udp(
        vnet(Offload { gso: Some(Gso { kind: GsoKind::TcpV4, size: 4, ecn: false }), ..NEEDS_CSUM_UDP }, &UDP4),
        DropReason::OffloadMismatch
    )]
    #[case::tso6_on_ipv4(retype(tcp4_gso(3000, 1448, &[]), GsoKind::TcpV6), DropReason::OffloadMismatch)]
    #[case::tso4_on_ipv6(
        retype(tcp6_gso(3000, 1428), GsoKind::TcpV4),
        DropReason::OffloadMismatch
    )]
    #[case::tso4_fragment(patched(&tcp4_gso(3000, 1448, &[]), &[(12 + 20, 0x20)]), DropReason::OffloadMismatch)]
    #[case::tso4_csum_start_off(patched(&tcp4_gso(3000, 1448, &[]), &[(6, 35)]), DropReason::OffloadMismatch)]
    #[case::tso4_csum_offset_off(patched(&tcp4_gso(3000, 1448, &[]), &[(8, 6)]), DropReason::OffloadMismatch)]
    #[case::tso4_tcp_data_offset_4(patched(&tcp4_gso(3000, 1448, &[]), &[(12 + 46, 0x40)]), DropReason::OffloadMismatch)]
    #[case::tso4_tcp_truncated(tcp4_gso(0, 1448, &[])[..12 + 50].to_vec(), DropReason::MalformedIpv4)]
    fn refused(#[case] buf: Vec<u8>, #[case] expected: DropReason) {
        let err = FrameView::parse_vnet(&buf).unwrap_err();
        assert_eq!(err.reason(), expected, "{err:?}");
    }

    /// `buf` (a TAP read) with its GSO type replaced.
    fn retype(mut buf: Vec<u8>, kind: GsoKind) -> Vec<u8> {
        buf[1] = kind.code();
        buf
    }

    #[test]
    fn tcp_header_cut_by_ip_length_is_refused() {
        // The IP total length says 40 bytes (a 20-byte TCP header), but the header's data
        // offset says 24: the TCP header does not fit in the packet.
        let buf = patched(&tcp4_gso(0, 1448, &[]), &[(12 + 46, 0x60)]);
        assert_eq!(
            FrameView::parse_vnet(&buf).unwrap_err(),
            FrameError::OffloadMismatch(OffloadError::MalformedTcp)
        );
    }

    #[test]
    fn mac_addr_predicates_and_display() {
        let mac = MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
        assert_eq!(format!("{mac:?}"), "02:42:ac:11:00:02");
        assert!(!mac.is_multicast());
        assert!(MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]).is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast() && MacAddr::BROADCAST.is_broadcast());
        assert_eq!(mac.key(), 0x0242_ac11_0002);
    }

    proptest! {
        /// Whatever the bytes, parsing returns; it never panics or reads out of bounds.
        #[test]
        fn parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = FrameView::parse_vnet(&buf);
            let _ = FrameView::parse_ethernet(&buf);
        }

        /// Offload requests of every kind with arbitrary bytes behind them: whatever parses
        /// keeps its offsets inside the frame.
        #[test]
        fn offload_offsets_stay_in_frame(
            flags in 0u8..4,
            gso_type in prop_oneof![Just(0u8), Just(1), Just(4), Just(0x81)],
            size in 1u16..2000,
            start in 0u16..120,
            offset in 0u16..40,
            tail in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let [s0, s1] = start.to_le_bytes();
            let [o0, o1] = offset.to_le_bytes();
            let [g0, g1] = size.to_le_bytes();
            let mut buf = vec![flags, gso_type, 0, 0, g0, g1, s0, s1, o0, o1, 0, 0];
            buf.extend_from_slice(&UDP4[..14]);
            buf.extend_from_slice(&tail);
            if let Ok(view) = FrameView::parse_vnet(&buf) {
                if let Some(c) = view.offload().csum {
                    prop_assert!(usize::from(c.start) + usize::from(c.offset) + 2 <= view.frame_len());
                }
                if let Some(layout) = view.gso_layout() {
                    prop_assert!(layout.l4_start <= layout.payload_start);
                    prop_assert!(layout.payload_start <= layout.packet_end);
                    prop_assert!(layout.packet_end <= view.frame_len());
                }
            }
        }
    }
}
