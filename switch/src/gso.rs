//! Software offload: turning what a TAP hands over into frames any destination can take.
//!
//! With `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`, a container's kernel hands the switch TCP
//! super-frames of up to 64 KiB and packets whose transport checksum is only partial. Another
//! TAP takes those as they are (the virtio-net header travels with them), but the userspace
//! gateway and ports without a virtio-net header need ordinary frames. [`Segmenter`] makes them:
//!
//! - a TCP super-frame is cut into `gso_size`-byte segments, each with its own IPv4 total
//!   length, identification (incremented per segment, as Linux does without
//!   `SKB_GSO_TCP_FIXEDID`) and header checksum, or IPv6 payload length; its own sequence
//!   number; FIN and PSH on the last segment only and CWR on the first only (Linux
//!   `tcp_gso_segment`, RFC 3168 section 6.1.2); and a full TCP checksum;
//! - a partial checksum (`NEEDS_CSUM`) of a frame that is not a super-frame is completed
//!   exactly as the virtio spec defines it, whatever the protocol (TCP, UDP, or a tunnel's
//!   inner header): the ones' complement sum from `csum_start` to the end, stored at
//!   `csum_start + csum_offset`, 0 sent as 0xffff (as Linux's `skb_checksum_help` does, which is
//!   what UDP requires, RFC 768, and equivalent for TCP);
//! - any other frame is passed through.
//!
//! Segments are written one at a time into the segmenter's own buffer, allocated once, so
//! segmenting allocates nothing per frame. Each segment sits behind a zeroed virtio-net header,
//! so it can be written to a TAP as well as handed to the gateway.

use std::fmt;

use etherparse::checksum::Sum16BitWords;
use etherparse::{IpNumber, Ipv4Header, Ipv6Header, TcpHeader};

use crate::counters::DropReason;
use crate::frame::{Csum, ETHERNET_HEADER_LEN, FrameView, GsoLayout, L3, MAX_READ_LEN};
use crate::vnet::VNET_HDR_LEN;

/// Why a frame could not be segmented. [`FrameView`] has validated these headers already, so
/// this is a broken invariant rather than a hostile frame; it is still counted, as
/// [`DropReason::OffloadMismatch`], rather than panicking the switch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GsoError {
    /// The IPv4 header of a TCPv4 super-frame did not parse.
    #[error("IPv4 header of a GSO frame")]
    Ipv4(#[source] etherparse::err::ipv4::HeaderSliceError),
    /// The IPv6 header of a TCPv6 super-frame did not parse.
    #[error("IPv6 header of a GSO frame")]
    Ipv6(#[source] etherparse::err::ipv6::HeaderSliceError),
    /// A super-frame that is neither IPv4 nor IPv6.
    #[error("GSO frame without an IP header")]
    NotIp,
    /// The TCP header of a super-frame did not parse.
    #[error("TCP header of a GSO frame")]
    Tcp(#[source] etherparse::err::tcp::HeaderSliceError),
}

impl GsoError {
    /// The counter a frame that failed to segment is counted under.
    pub fn reason(&self) -> DropReason {
        DropReason::OffloadMismatch
    }
}

/// Cuts super-frames and completes checksums into a buffer it owns; see the module docs. One
/// per task that delivers to non-offload destinations, reused for every frame.
pub struct Segmenter {
    buf: Vec<u8>,
}

// By hand: the derived impls would print 64 KiB of buffer.
impl fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segmenter")
            .field("capacity", &self.buf.len())
            .finish()
    }
}

impl Default for Segmenter {
    fn default() -> Self {
        Segmenter::new()
    }
}

impl Segmenter {
    /// A segmenter with its ~64 KiB buffer: no segment is larger than the frame it comes from,
    /// and no frame is larger than [`crate::MAX_FRAME_LEN`].
    pub fn new() -> Segmenter {
        Segmenter {
            buf: vec![0; MAX_READ_LEN],
        }
    }

    /// Prepares to produce `frame` as ordinary frames; take them with
    /// [`Segments::next_segment`].
    pub fn segments<'s, 'f>(
        &'s mut self,
        frame: &FrameView<'f>,
    ) -> Result<Segments<'s, 'f>, GsoError> {
        let plan = match (frame.gso_layout(), frame.offload()) {
            (Some(layout), offload) => {
                let mss = offload.gso.map_or(usize::MAX, |g| usize::from(g.size));
                Plan::Tcp(TcpPlan::new(frame, layout, mss)?)
            }
            (None, offload) => match offload.csum {
                Some(csum) => Plan::Checksum(csum),
                None => Plan::Copy,
            },
        };
        let total = match &plan {
            Plan::Tcp(tcp) => tcp.segment_count(),
            Plan::Copy | Plan::Checksum(_) => 1,
        };
        Ok(Segments {
            buf: &mut self.buf,
            frame: frame.ethernet(),
            plan,
            next: 0,
            total,
        })
    }
}

/// The ordinary frames one frame turns into, produced one at a time into the segmenter's
/// buffer (so each must be consumed before asking for the next).
pub struct Segments<'s, 'f> {
    buf: &'s mut [u8],
    frame: &'f [u8],
    plan: Plan,
    next: usize,
    total: usize,
}

impl fmt::Debug for Segments<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segments")
            .field("frame_len", &self.frame.len())
            .field("plan", &self.plan)
            .field("next", &self.next)
            .field("total", &self.total)
            .finish()
    }
}

/// One ordinary frame, behind a zeroed virtio-net header.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    bytes: &'a [u8],
}

impl<'a> Segment<'a> {
    /// The Ethernet frame, for the gateway or a port without a virtio-net header.
    pub fn ethernet(&self) -> &'a [u8] {
        self.bytes.get(VNET_HDR_LEN..).unwrap_or_default()
    }

    /// The frame behind an all-zero virtio-net header ("no offload, checksums complete"), for a
    /// TAP port that cannot take the original.
    pub fn with_vnet_header(&self) -> &'a [u8] {
        self.bytes
    }
}

#[derive(Debug)]
enum Plan {
    Copy,
    Checksum(Csum),
    Tcp(TcpPlan),
}

#[derive(Debug)]
enum IpHeader {
    V4(Ipv4Header),
    V6(Ipv6Header),
}

/// A TCP super-frame, parsed once and cut segment by segment.
#[derive(Debug)]
struct TcpPlan {
    ip: IpHeader,
    tcp: TcpHeader,
    payload_start: usize,
    payload_end: usize,
    mss: usize,
}

impl TcpPlan {
    fn new(view: &FrameView<'_>, layout: GsoLayout, mss: usize) -> Result<TcpPlan, GsoError> {
        let frame = view.ethernet();
        let l3 = frame.get(ETHERNET_HEADER_LEN..).unwrap_or_default();
        let ip = match view.l3() {
            L3::Ipv4(_) => IpHeader::V4(Ipv4Header::from_slice(l3).map_err(GsoError::Ipv4)?.0),
            L3::Ipv6(_) => IpHeader::V6(Ipv6Header::from_slice(l3).map_err(GsoError::Ipv6)?.0),
            L3::Arp(_) | L3::Other => return Err(GsoError::NotIp),
        };
        let l4 = frame.get(layout.l4_start..).unwrap_or_default();
        let (tcp, _) = TcpHeader::from_slice(l4).map_err(GsoError::Tcp)?;
        Ok(TcpPlan {
            ip,
            tcp,
            payload_start: layout.payload_start,
            payload_end: layout.packet_end,
            mss: mss.max(1),
        })
    }

    fn segment_count(&self) -> usize {
        (self.payload_end - self.payload_start)
            .div_ceil(self.mss)
            .max(1)
    }

    /// Writes segment `index` of `total` into `out` (which starts at the Ethernet header);
    /// returns its length.
    fn write_segment(&self, frame: &[u8], index: usize, total: usize, out: &mut [u8]) -> usize {
        let start = self.payload_start + index * self.mss;
        let end = (start + self.mss).min(self.payload_end);
        let chunk = frame.get(start..end).unwrap_or_default();

        let mut tcp = self.tcp.clone();
        // Sequence numbers and IPv4 ids wrap (RFC 9293 section 3.4): truncation is the intent.
        tcp.sequence_number = tcp.sequence_number.wrapping_add((index * self.mss) as u32);
        let (first, last) = (index == 0, index + 1 == total);
        tcp.fin &= last;
        tcp.psh &= last;
        tcp.cwr &= first;
        tcp.checksum = 0;
        // No segment is longer than the packet it comes from, whose lengths fit in 16 bits.
        let tcp_len = (tcp.header_len() + chunk.len()) as u16;

        let mut at = ETHERNET_HEADER_LEN;
        out[..at].copy_from_slice(&frame[..at]);
        let pseudo = match &self.ip {
            IpHeader::V4(base) => {
                let mut ip = base.clone();
                ip.total_len = ip.header_len() as u16 + tcp_len;
                ip.identification = ip.identification.wrapping_add(index as u16);
                ip.header_checksum = ip.calc_header_checksum();
                let bytes = ip.to_bytes();
                out[at..at + bytes.len()].copy_from_slice(&bytes);
                at += bytes.len();
                // RFC 9293 section 3.1: source, destination, zero, protocol, TCP length.
                Sum16BitWords::new()
                    .add_4bytes(ip.source)
                    .add_4bytes(ip.destination)
                    .add_2bytes([0, IpNumber::TCP.0])
                    .add_2bytes(tcp_len.to_be_bytes())
            }
            IpHeader::V6(base) => {
                let mut ip = base.clone();
                ip.payload_length = tcp_len;
                let bytes = ip.to_bytes();
                out[at..at + bytes.len()].copy_from_slice(&bytes);
                at += bytes.len();
                // RFC 8200 section 8.1: source, destination, upper-layer length, next header.
                Sum16BitWords::new()
                    .add_16bytes(ip.source)
                    .add_16bytes(ip.destination)
                    .add_4bytes(u32::from(tcp_len).to_be_bytes())
                    .add_2bytes([0, IpNumber::TCP.0])
            }
        };
        tcp.checksum = pseudo
            .add_slice(&tcp.to_bytes())
            .add_slice(chunk)
            .ones_complement()
            .to_be();
        let bytes = tcp.to_bytes();
        out[at..at + bytes.len()].copy_from_slice(&bytes);
        at += bytes.len();
        out[at..at + chunk.len()].copy_from_slice(chunk);
        at + chunk.len()
    }
}

impl Segments<'_, '_> {
    /// How many frames this frame turns into.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The next frame, or `None` after the last. The returned segment borrows the segmenter's
    /// buffer, which the following call overwrites.
    pub fn next_segment(&mut self) -> Option<Segment<'_>> {
        if self.next == self.total {
            return None;
        }
        let index = self.next;
        self.next += 1;
        // The buffer holds a virtio-net header plus the largest frame FrameView accepts, and no
        // segment is longer than its frame, so the slicing below stays inside it.
        let (header, out) = self.buf.split_at_mut(VNET_HDR_LEN);
        header.fill(0);
        let len = match &self.plan {
            Plan::Copy => {
                out[..self.frame.len()].copy_from_slice(self.frame);
                self.frame.len()
            }
            Plan::Checksum(csum) => {
                let len = self.frame.len();
                out[..len].copy_from_slice(self.frame);
                complete_checksum(&mut out[..len], *csum);
                len
            }
            Plan::Tcp(tcp) => tcp.write_segment(self.frame, index, self.total, out),
        };
        Some(Segment {
            bytes: &self.buf[..VNET_HDR_LEN + len],
        })
    }
}

/// Completes a `CHECKSUM_PARTIAL` checksum in place (virtio 1.2 section 5.1.6.2); `FrameView`
/// checked that the field lies inside the frame.
fn complete_checksum(frame: &mut [u8], csum: Csum) {
    let start = usize::from(csum.start);
    let field = start + usize::from(csum.offset);
    let sum = Sum16BitWords::new()
        .add_slice(frame.get(start..).unwrap_or_default())
        .ones_complement()
        .to_be();
    let sum = if sum == 0 { 0xffff } else { sum };
    if let Some(out) = frame.get_mut(field..field + 2) {
        out.copy_from_slice(&sum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{MAX_FRAME_LEN, Offload};
    use crate::testutil::{
        GSO_IP_ID, GSO_SEQ, UDP4, partial_checksum, payload, tcp4_gso, tcp6_gso, vnet,
    };
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    /// TCP timestamps, as Linux puts on every segment: NOP, NOP, kind 8, length 10.
    const TIMESTAMPS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];

    /// Segments `buf` (a TAP read) and checks every segment as a receiver would: it parses,
    /// its IP and TCP checksums verify, its lengths, sequence number, IPv4 id and flags are
    /// those of its place in the flow. Returns the payloads, concatenated.
    fn segment_and_check(buf: &[u8], mss: usize) -> Vec<u8> {
        let view = FrameView::parse_vnet(buf).unwrap();
        let mut segmenter = Segmenter::new();
        let mut segments = segmenter.segments(&view).unwrap();
        let total = segments.total();
        let mut joined = Vec::new();
        let mut index = 0;
        while let Some(segment) = segments.next_segment() {
            assert_eq!(
                &segment.with_vnet_header()[..VNET_HDR_LEN],
                &[0; VNET_HDR_LEN]
            );
            let frame = segment.ethernet();
            assert_eq!(
                &frame[..14],
                &view.ethernet()[..14],
                "Ethernet header copied"
            );
            let packet = SlicedPacket::from_ethernet(frame).expect("segment parses");
            let Some(TransportSlice::Tcp(tcp)) = packet.transport else {
                panic!("not TCP");
            };
            let payload = tcp.payload();
            assert!(payload.len() <= mss);
            assert!(
                index + 1 == total || payload.len() == mss,
                "only the last is short"
            );
            let tcp_header = tcp.to_header();
            match packet.net {
                Some(NetSlice::Ipv4(ip)) => {
                    let header = ip.header().to_header();
                    assert_eq!(header.header_checksum, header.calc_header_checksum());
                    assert_eq!(
                        usize::from(header.total_len),
                        header.header_len() + tcp_header.header_len() + payload.len()
                    );
                    assert_eq!(header.identification, GSO_IP_ID.wrapping_add(index as u16));
                    assert!(header.dont_fragment);
                    let expected = tcp_header.calc_checksum_ipv4(&header, payload).unwrap();
                    assert_eq!(
                        tcp_header.checksum, expected,
                        "TCP checksum of segment {index}"
                    );
                }
                Some(NetSlice::Ipv6(ip)) => {
                    let header = ip.header().to_header();
                    assert_eq!(
                        usize::from(header.payload_length),
                        tcp_header.header_len() + payload.len()
                    );
                    let expected = tcp_header.calc_checksum_ipv6(&header, payload).unwrap();
                    assert_eq!(
                        tcp_header.checksum, expected,
                        "TCP checksum of segment {index}"
                    );
                }
                _ => panic!("not IP"),
            }
            let offset = (index * mss) as u32;
            assert_eq!(tcp_header.sequence_number, GSO_SEQ.wrapping_add(offset));
            let last = index + 1 == total;
            assert_eq!(tcp_header.fin, last, "FIN on the last segment only");
            assert_eq!(tcp_header.psh, last, "PSH on the last segment only");
            assert_eq!(tcp_header.cwr, index == 0, "CWR on the first segment only");
            assert!(tcp_header.ece && tcp_header.ack);
            assert_eq!(tcp_header.acknowledgment_number, 0x1234_5678);
            joined.extend_from_slice(payload);
            index += 1;
        }
        assert_eq!(index, total);
        assert!(segments.next_segment().is_none());
        joined
    }

    #[test]
    fn a_64k_tcp4_super_frame() {
        // The largest payload an IPv4 packet with 20-byte IP and 32-byte TCP headers can carry.
        let len = 65_535 - 20 - 32;
        let buf = tcp4_gso(len, 1448, &TIMESTAMPS);
        assert_eq!(buf.len(), VNET_HDR_LEN + 14 + 65_535);
        let view = FrameView::parse_vnet(&buf).unwrap();
        let mut segmenter = Segmenter::new();
        assert_eq!(
            segmenter.segments(&view).unwrap().total(),
            len.div_ceil(1448)
        );
        assert_eq!(segment_and_check(&buf, 1448), payload(len));
    }

    #[test]
    fn a_64k_tcp6_super_frame() {
        let len = 65_535 - 20;
        let buf = tcp6_gso(len, 1428);
        assert_eq!(buf.len(), VNET_HDR_LEN + MAX_FRAME_LEN);
        assert_eq!(segment_and_check(&buf, 1428), payload(len));
    }

    #[test]
    fn edge_sizes() {
        for (len, mss) in [
            (0, 1448),
            (1, 1448),
            (1448, 1448),
            (1449, 1448),
            (2896, 1448),
            (5, 1),
        ] {
            assert_eq!(
                segment_and_check(&tcp4_gso(len, mss, &[]), mss as usize),
                payload(len)
            );
        }
    }

    #[test]
    fn partial_checksums_are_completed() {
        // UDP (the brief's case) and TCP, each with the pseudo-header sum the kernel leaves.
        let udp = crate::testutil::udp4(
            crate::testutil::mac(1),
            crate::testutil::mac(2),
            std::net::Ipv4Addr::new(172, 17, 0, 2),
            std::net::Ipv4Addr::new(172, 17, 0, 3),
            333,
        );
        let mut tcp = Vec::new();
        etherparse::PacketBuilder::ethernet2([6, 0, 0, 0, 0, 1], [6, 0, 0, 0, 0, 2])
            .ipv4([172, 17, 0, 2], [172, 17, 0, 3], 64)
            .tcp(40_000, 80, 7, 1000)
            .ack(9)
            .write(&mut tcp, &payload(777))
            .unwrap();
        let mut segmenter = Segmenter::new();
        for (frame, offset) in [(udp, 6), (tcp, 16)] {
            let (read, expected) = partial_checksum(&frame, 34, offset);
            assert_ne!(read[VNET_HDR_LEN..], expected[..]);
            let view = FrameView::parse_vnet(&read).unwrap();
            let mut segments = segmenter.segments(&view).unwrap();
            assert_eq!(segments.total(), 1);
            assert_eq!(segments.next_segment().unwrap().ethernet(), &expected[..]);
            assert!(segments.next_segment().is_none());
        }
    }

    #[test]
    fn plain_frames_pass_through() {
        let buf = vnet(Offload::NONE, &UDP4);
        let view = FrameView::parse_vnet(&buf).unwrap();
        let mut segmenter = Segmenter::new();
        let mut segments = segmenter.segments(&view).unwrap();
        let segment = segments.next_segment().unwrap();
        assert_eq!(segment.with_vnet_header(), &buf[..]);
        assert!(segments.next_segment().is_none());
    }

    #[test]
    fn a_computed_zero_is_sent_as_ffff() {
        // A "frame" whose bytes from csum_start sum to 0xffff, so the complement is 0.
        let mut frame = UDP4.to_vec();
        let start = 42;
        frame[start..].copy_from_slice(&[0xff, 0xff, 0, 0]);
        complete_checksum(
            &mut frame,
            Csum {
                start: 42,
                offset: 2,
            },
        );
        assert_eq!(&frame[42..], &[0xff, 0xff, 0xff, 0xff]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any payload length and MSS: segments verify and reassemble to the original.
        #[test]
        fn segments_reassemble(len in 0usize..6000, mss in 1u16..1600, v6 in any::<bool>()) {
            let buf = if v6 { tcp6_gso(len, mss) } else { tcp4_gso(len, mss, &TIMESTAMPS) };
            prop_assert_eq!(segment_and_check(&buf, usize::from(mss)), payload(len));
        }
    }
}
