//! The virtio-net header in front of every frame on a TAP opened with `IFF_VNET_HDR`.
//!
//! netloom sets the header size to 12 bytes (`TUNSETVNETHDRSZ`) and the byte order to
//! little-endian (`TUNSETVNETLE`), which is the layout of `struct virtio_net_hdr_v1` (virtio 1.x,
//! section 5.1.6) and of the legacy `struct virtio_net_hdr_mrg_rxbuf`:
//!
//! ```text
//! offset  size  field
//!      0     1  flags        VIRTIO_NET_HDR_F_NEEDS_CSUM (1), _DATA_VALID (2)
//!      1     1  gso_type     NONE (0), TCPV4 (1), UDP (3), TCPV6 (4), UDP_L4 (5); | ECN (0x80)
//!      2     2  hdr_len      le16: length of the headers to copy into each segment (a hint)
//!      4     2  gso_size     le16: payload bytes per segment (the MSS for TCP)
//!      6     2  csum_start   le16: offset from the start of the Ethernet frame where checksumming starts
//!      8     2  csum_offset  le16: where, after csum_start, the 16-bit checksum is stored
//!     10     2  num_buffers  le16: unused by tun; see below
//!     12        the Ethernet frame
//! ```
//!
//! The kernel's own `struct virtio_net_hdr` is the first 10 bytes. On a read, current kernels
//! (seen on 6.18) write zeros to the last two (`num_buffers`) while older ones skip them and
//! leave whatever the buffer held; on a write they are ignored. [`VnetHeader`] therefore has no
//! `num_buffers` field and emits zeros there. 12 rather
//! than 10 keeps the header identical to what virtio 1.x devices and vhost exchange, so a
//! header read from one TAP can be written unchanged to another.
//!
//! This module is the wire layout only: [`VnetHeader`] encodes and decodes the bytes and checks
//! nothing. The TAP layer ([`crate::tap`]) reads and writes it as is; what the switch acts on is
//! [`crate::frame::Offload`], which [`Offload::from_header`](crate::frame::Offload::from_header)
//! validates from a `VnetHeader` and checks against the frame behind it.

/// Size of the header netloom configures (`TUNSETVNETHDRSZ`).
pub const VNET_HDR_LEN: usize = 12;

/// `flags`: the checksum from `csum_start` on is partial and must be completed by whoever
/// finally delivers the frame (`CHECKSUM_PARTIAL` in the kernel).
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksum has been verified already.
pub const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;

/// `gso_type`: an ordinary frame, no segmentation.
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
/// `gso_type`: a TCP-over-IPv4 super-frame to be cut into `gso_size` segments.
pub const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
/// `gso_type`: UDP fragmentation offload (obsolete; kernels no longer produce it).
pub const VIRTIO_NET_HDR_GSO_UDP: u8 = 3;
/// `gso_type`: a TCP-over-IPv6 super-frame.
pub const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
/// `gso_type`: UDP segmentation offload (only with `TUN_F_USO4/6`, which netloom does not ask
/// for).
pub const VIRTIO_NET_HDR_GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: the TCP super-frame carries ECN (CWR must be set on the first segment only).
pub const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

/// A parsed virtio-net header (12-byte, little-endian layout; see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHeader {
    /// `VIRTIO_NET_HDR_F_*` bits.
    pub flags: u8,
    /// One `VIRTIO_NET_HDR_GSO_*` value, possibly with [`VIRTIO_NET_HDR_GSO_ECN`].
    pub gso_type: u8,
    /// Header length hint for segmentation.
    pub hdr_len: u16,
    /// Segment payload size; 0 unless `gso_type` asks for segmentation.
    pub gso_size: u16,
    /// Where checksumming starts, from the start of the Ethernet frame.
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHeader {
    /// The header for a plain frame whose checksums are complete: all zeros. Frames the switch
    /// makes up itself (ARP replies, gateway traffic) are written with this.
    pub const NONE: VnetHeader = VnetHeader {
        flags: 0,
        gso_type: VIRTIO_NET_HDR_GSO_NONE,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Splits a buffer read from a TAP into its header and the Ethernet frame behind it, or
    /// `None` if it is shorter than [`VNET_HDR_LEN`]. Checks nothing else: the values are the
    /// kernel's (or, for a frame from another port, a container's) and must be validated before
    /// they are acted on.
    pub fn split(buf: &[u8]) -> Option<(VnetHeader, &[u8])> {
        let (head, frame) = buf.split_first_chunk::<VNET_HDR_LEN>()?;
        Some((VnetHeader::from_bytes(head), frame))
    }

    /// Decodes the 12 header bytes.
    pub fn from_bytes(bytes: &[u8; VNET_HDR_LEN]) -> VnetHeader {
        let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        VnetHeader {
            flags: bytes[0],
            gso_type: bytes[1],
            hdr_len: le16(2),
            gso_size: le16(4),
            csum_start: le16(6),
            csum_offset: le16(8),
        }
    }

    /// Encodes the header; `num_buffers` (bytes 10..12) is written as zero.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut out = [0u8; VNET_HDR_LEN];
        out[0] = self.flags;
        out[1] = self.gso_type;
        out[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        out
    }

    /// Whether the frame is a segmentation super-frame (larger than the MTU).
    pub fn is_gso(&self) -> bool {
        self.gso_type & !VIRTIO_NET_HDR_GSO_ECN != VIRTIO_NET_HDR_GSO_NONE
    }

    /// Whether the frame's transport checksum is partial (see
    /// [`VIRTIO_NET_HDR_F_NEEDS_CSUM`]).
    pub fn needs_csum(&self) -> bool {
        self.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::none(VnetHeader::NONE, [0; 12])]
    #[case::partial_udp(
        VnetHeader { flags: 1, gso_type: 0, hdr_len: 0, gso_size: 0, csum_start: 34, csum_offset: 6 },
        [1, 0, 0, 0, 0, 0, 34, 0, 6, 0, 0, 0],
    )]
    #[case::tso4(
        VnetHeader { flags: 1, gso_type: 1, hdr_len: 66, gso_size: 1448, csum_start: 34, csum_offset: 16 },
        [1, 1, 66, 0, 0xa8, 0x05, 34, 0, 16, 0, 0, 0],
    )]
    fn vnet_header_round_trips(#[case] header: VnetHeader, #[case] bytes: [u8; 12]) {
        assert_eq!(header.to_bytes(), bytes);
        assert_eq!(VnetHeader::from_bytes(&bytes), header);
    }

    #[test]
    fn split_ignores_num_buffers_and_rejects_short_buffers() {
        let mut buf = [0u8; 20];
        buf[10] = 0xaa;
        buf[11] = 0xbb;
        buf[12] = 0xff;
        let (header, frame) = VnetHeader::split(&buf).unwrap();
        assert_eq!(header, VnetHeader::NONE);
        assert_eq!(frame.len(), 8);
        assert_eq!(frame[0], 0xff);
        assert!(VnetHeader::split(&buf[..11]).is_none());
    }

    #[test]
    fn gso_and_csum_predicates() {
        let ecn_only = VnetHeader {
            gso_type: VIRTIO_NET_HDR_GSO_ECN,
            ..VnetHeader::NONE
        };
        assert!(!ecn_only.is_gso());
        let tso6 = VnetHeader {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type: VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN,
            ..VnetHeader::NONE
        };
        assert!(tso6.is_gso());
        assert!(tso6.needs_csum());
        assert!(!VnetHeader::NONE.needs_csum());
    }
}
