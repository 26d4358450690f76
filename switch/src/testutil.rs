//! Frame fixtures and builders shared by the unit tests and the simulation.

use std::net::Ipv4Addr;

use etherparse::{
    ArpEthIpv4Packet, ArpOperation, Ethernet2Header, IpNumber, Ipv4Header, Ipv6FlowLabel,
    Ipv6Header, PacketBuilder, TcpHeader, checksum::Sum16BitWords,
};

use crate::frame::{ArpOp, Csum, Gso, GsoKind, MacAddr, Offload};

/// 172.17.0.2 (`02:42:ac:11:00:02`) asks, by broadcast, who has 172.17.0.1.
pub(crate) const ARP_REQUEST: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination
    0x02, 0x42, 0xac, 0x11, 0x00, 0x02, // source
    0x08, 0x06, // EtherType ARP
    0x00, 0x01, // hardware type Ethernet
    0x08, 0x00, // protocol type IPv4
    0x06, 0x04, // address sizes
    0x00, 0x01, // request
    0x02, 0x42, 0xac, 0x11, 0x00, 0x02, // sender MAC
    0xac, 0x11, 0x00, 0x02, // sender IP
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC
    0xac, 0x11, 0x00, 0x01, // target IP
];

/// A 4-byte UDP datagram from 172.17.0.2:12345 to 172.17.0.3:53 (checksums not filled in).
pub(crate) const UDP4: [u8; 46] = [
    0x02, 0x42, 0xac, 0x11, 0x00, 0x03, // destination
    0x02, 0x42, 0xac, 0x11, 0x00, 0x02, // source
    0x08, 0x00, // EtherType IPv4
    0x45, 0x00, 0x00, 0x20, // version 4, IHL 5, total length 32
    0x00, 0x01, 0x40, 0x00, // id 1, DF
    0x40, 0x11, 0x00, 0x00, // TTL 64, UDP, checksum
    0xac, 0x11, 0x00, 0x02, // source
    0xac, 0x11, 0x00, 0x03, // destination
    0x30, 0x39, 0x00, 0x35, // ports
    0x00, 0x0c, 0x00, 0x00, // length 12, checksum
    0xde, 0xad, 0xbe, 0xef, // payload
];

/// The sequence number of the test super-frames: close to wrapping, to check segments wrap.
pub(crate) const GSO_SEQ: u32 = 0xffff_f000;
/// The IPv4 id of the test super-frames: segments must wrap it too.
pub(crate) const GSO_IP_ID: u16 = 0xfffe;

/// A TAP read: the virtio-net header for `offload`, then `frame`.
pub(crate) fn vnet(offload: Offload, frame: &[u8]) -> Vec<u8> {
    let mut buf = offload.to_bytes().to_vec();
    buf.extend_from_slice(frame);
    buf
}

/// A locally administered unicast MAC numbered `n`.
pub(crate) fn mac(n: u32) -> MacAddr {
    let [a, b, c, d] = n.to_be_bytes();
    MacAddr([0x06, 0x00, a, b, c, d])
}

/// A recognisable payload: byte `i` is `i mod 251`, so a misplaced chunk shows.
pub(crate) fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// An Ethernet/IPv4/UDP frame with correct checksums.
pub(crate) fn udp4(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    len: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ipv4(src_ip.octets(), dst_ip.octets(), 64)
        .udp(40_000, 53)
        .write(&mut out, &payload(len))
        .expect("small packet");
    out
}

/// An Ethernet/ARP frame.
pub(crate) fn arp(
    eth_src: MacAddr,
    eth_dst: MacAddr,
    op: ArpOp,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
) -> Vec<u8> {
    let packet = ArpEthIpv4Packet {
        operation: match op {
            ArpOp::Request => ArpOperation::REQUEST,
            ArpOp::Reply => ArpOperation::REPLY,
        },
        sender_mac: sender.0.0,
        sender_ipv4: sender.1.octets(),
        target_mac: target.0.0,
        target_ipv4: target.1.octets(),
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(eth_src.0, eth_dst.0)
        .arp(packet.into())
        .write(&mut out)
        .expect("small packet");
    out
}

/// The TCP header of the test super-frames: every flag GSO treats specially is set (FIN and
/// PSH belong on the last segment only, CWR on the first only), plus ECE and ACK which every
/// segment keeps.
fn gso_tcp_header(options: &[u8]) -> TcpHeader {
    let mut tcp = TcpHeader::new(40_000, 5201, GSO_SEQ, 64_240);
    tcp.acknowledgment_number = 0x1234_5678;
    tcp.ack = true;
    tcp.psh = true;
    tcp.fin = true;
    tcp.cwr = true;
    tcp.ece = true;
    tcp.set_options_raw(options).expect("options fit");
    tcp
}

/// The partial checksum the kernel leaves in a `CHECKSUM_PARTIAL` packet: the folded,
/// uncomplemented pseudo-header sum (RFC 793 section 3.1, RFC 8200 section 8.1).
fn pseudo_header_partial(sum: Sum16BitWords) -> u16 {
    (!sum.ones_complement()).to_be()
}

/// A TAP read holding a TCP/IPv4 super-frame from 172.17.0.2 to 172.17.0.3: `payload_len`
/// bytes of [`payload`] to be cut into `mss`-byte segments, with the TCP checksum left partial,
/// as the kernel hands it over.
pub(crate) fn tcp4_gso(payload_len: usize, mss: u16, tcp_options: &[u8]) -> Vec<u8> {
    let ends = (
        MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]),
        Ipv4Addr::new(172, 17, 0, 2),
    );
    let other = (
        MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x03]),
        Ipv4Addr::new(172, 17, 0, 3),
    );
    tcp4_gso_between(ends, other, payload_len, mss, tcp_options)
}

/// [`tcp4_gso`] between any two stations, each a (MAC, address) pair.
pub(crate) fn tcp4_gso_between(
    src: (MacAddr, Ipv4Addr),
    dst: (MacAddr, Ipv4Addr),
    payload_len: usize,
    mss: u16,
    tcp_options: &[u8],
) -> Vec<u8> {
    let mut tcp = gso_tcp_header(tcp_options);
    let tcp_len = tcp.header_len() + payload_len;
    let mut ip = Ipv4Header::new(
        u16::try_from(tcp_len).expect("fits an IPv4 packet"),
        64,
        IpNumber::TCP,
        src.1.octets(),
        dst.1.octets(),
    )
    .expect("fits an IPv4 packet");
    ip.identification = GSO_IP_ID;
    ip.dont_fragment = true;
    ip.header_checksum = ip.calc_header_checksum();
    tcp.checksum = pseudo_header_partial(
        Sum16BitWords::new()
            .add_4bytes(ip.source)
            .add_4bytes(ip.destination)
            .add_2bytes([0, IpNumber::TCP.0])
            .add_2bytes(u16::try_from(tcp_len).expect("fits").to_be_bytes()),
    );
    let l4_start = Ethernet2Header::LEN + ip.header_len();
    let offload = Offload {
        data_valid: false,
        csum: Some(Csum {
            start: l4_start as u16,
            offset: 16,
        }),
        gso: Some(Gso {
            kind: GsoKind::TcpV4,
            size: mss,
            ecn: true,
        }),
        hdr_len: (l4_start + tcp.header_len()) as u16,
    };
    let mut frame = Ethernet2Header {
        source: src.0.0,
        destination: dst.0.0,
        ether_type: 0x0800.into(),
    }
    .to_bytes()
    .to_vec();
    frame.extend_from_slice(&ip.to_bytes());
    frame.extend_from_slice(&tcp.to_bytes());
    frame.extend_from_slice(&payload(payload_len));
    vnet(offload, &frame)
}

/// A TAP read holding a TCP/IPv6 super-frame (see [`tcp4_gso`]).
pub(crate) fn tcp6_gso(payload_len: usize, mss: u16) -> Vec<u8> {
    let mut tcp = gso_tcp_header(&[]);
    let tcp_len = tcp.header_len() + payload_len;
    let ip = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::ZERO,
        payload_length: u16::try_from(tcp_len).expect("fits an IPv6 payload"),
        next_header: IpNumber::TCP,
        hop_limit: 64,
        source: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        destination: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
    };
    tcp.checksum = pseudo_header_partial(
        Sum16BitWords::new()
            .add_16bytes(ip.source)
            .add_16bytes(ip.destination)
            .add_4bytes(u32::try_from(tcp_len).expect("fits").to_be_bytes())
            .add_2bytes([0, IpNumber::TCP.0]),
    );
    let l4_start = Ethernet2Header::LEN + Ipv6Header::LEN;
    let offload = Offload {
        data_valid: false,
        csum: Some(Csum {
            start: l4_start as u16,
            offset: 16,
        }),
        gso: Some(Gso {
            kind: GsoKind::TcpV6,
            size: mss,
            ecn: true,
        }),
        hdr_len: (l4_start + tcp.header_len()) as u16,
    };
    let mut frame = ethernet_header(0x86dd).to_vec();
    frame.extend_from_slice(&ip.to_bytes());
    frame.extend_from_slice(&tcp.to_bytes());
    frame.extend_from_slice(&payload(payload_len));
    vnet(offload, &frame)
}

/// 02:42:ac:11:00:02 → 02:42:ac:11:00:03 with `ethertype`.
fn ethernet_header(ethertype: u16) -> [u8; 14] {
    Ethernet2Header {
        source: [0x02, 0x42, 0xac, 0x11, 0x00, 0x02],
        destination: [0x02, 0x42, 0xac, 0x11, 0x00, 0x03],
        ether_type: ethertype.into(),
    }
    .to_bytes()
}

/// `frame` (Ethernet/IPv4 with complete checksums) as a TAP would hand it over with
/// `NEEDS_CSUM`: the transport checksum at `start + offset` replaced by the pseudo-header sum.
/// Returns the TAP read and the frame as it should be once completed.
pub(crate) fn partial_checksum(frame: &[u8], start: u16, offset: u16) -> (Vec<u8>, Vec<u8>) {
    let (ip, _) = Ipv4Header::from_slice(&frame[Ethernet2Header::LEN..]).expect("IPv4");
    let l4_len = u16::try_from(usize::from(ip.total_len) - ip.header_len()).expect("fits");
    let partial = pseudo_header_partial(
        Sum16BitWords::new()
            .add_4bytes(ip.source)
            .add_4bytes(ip.destination)
            .add_2bytes([0, ip.protocol.0])
            .add_2bytes(l4_len.to_be_bytes()),
    );
    let mut read = frame.to_vec();
    let field = usize::from(start + offset);
    read[field..field + 2].copy_from_slice(&partial.to_be_bytes());
    let offload = Offload {
        csum: Some(Csum { start, offset }),
        ..Offload::NONE
    };
    (vnet(offload, &read), frame.to_vec())
}
