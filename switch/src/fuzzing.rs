//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz), and for the unit test that replays
//! their corpora on the stable toolchain. Not part of the switch's API.
//!
//! Each function takes arbitrary bytes, drives the code a container's frames reach with no I/O,
//! and asserts the invariants the rest of the data path relies on; a panic is a bug. See
//! docs/security.md for how to run them.

use std::net::Ipv4Addr;

use crate::forward::{Action, Bridge, Gateway, PortId, PortPolicy, TableConfig, Timestamp, decide};
use crate::frame::{FrameView, MAX_FRAME_LEN, MacAddr};
use crate::gateway::{self, GatewayAddr};
use crate::gso::Segmenter;
use crate::vnet::{VIRTIO_NET_HDR_F_NEEDS_CSUM, VNET_HDR_LEN, VnetHeader};
use crate::{DomainConfig, nat};

const GW_PORT: PortId = PortId(1);
const ENDPOINT_A: PortId = PortId(2);
const ENDPOINT_B: PortId = PortId(3);
const OPEN: PortId = PortId(4);
/// The ports an input may claim to come from: both endpoints, the learning port, the gateway,
/// and one that is not on the bridge.
const INGRESS: [PortId; 5] = [ENDPOINT_A, ENDPOINT_B, OPEN, GW_PORT, PortId(99)];

/// The domain every target runs in: 172.17.0.0/16, gateway .1, endpoints .2 and .3.
fn domain_config() -> DomainConfig {
    DomainConfig {
        subnet: Ipv4Addr::new(172, 17, 0, 0),
        prefix: 16,
        gateway: Ipv4Addr::new(172, 17, 0, 1),
        mtu: 1500,
        internal: false,
        host_loopback: false,
        dns: None,
    }
}

fn endpoint(n: u8) -> PortPolicy {
    PortPolicy::Endpoint {
        mac: MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, n]),
        ipv4: Ipv4Addr::new(172, 17, 0, n),
    }
}

/// A bridge with the gateway, two endpoints and one learning port, with a small table so that
/// the learning limits are reached too.
fn bridge() -> Bridge {
    let config = domain_config();
    let gw = GatewayAddr::derived(config.gateway);
    let table = TableConfig {
        max_learned_per_port: 4,
        ..TableConfig::default()
    };
    let gateway = Gateway {
        port: GW_PORT,
        mac: gw.mac,
    };
    let mut bridge = Bridge::new(&config, gateway, table).expect("valid config");
    for (port, policy) in [
        (ENDPOINT_A, endpoint(2)),
        (ENDPOINT_B, endpoint(3)),
        (OPEN, PortPolicy::Open),
    ] {
        bridge.add_port(port, policy).expect("distinct ports");
    }
    bridge
}

/// `frame` target: the first byte picks the ingress port, the rest is one TAP read (virtio-net
/// header and Ethernet frame). The read is parsed, decided on twice (the second time after the
/// learning table has aged out), and what the port task would do next is done: the gateway's
/// answer for [`Action::Gateway`], software offload for destinations that need it.
pub fn frame(data: &[u8]) {
    let Some((&selector, read)) = data.split_first() else {
        return;
    };
    let ingress = INGRESS[usize::from(selector) % INGRESS.len()];
    let Ok(view) = FrameView::parse_vnet(read) else {
        return;
    };
    assert!(view.frame_len() <= MAX_FRAME_LEN);
    assert!(view.largest_ip_packet() <= view.frame_len());
    let mut bridge = bridge();
    let later = Timestamp::from_millis(301_000);
    for now in [Timestamp::ZERO, Timestamp::from_millis(1), later] {
        let action = decide(&mut bridge, &view, ingress, now);
        match action {
            Action::Unicast(port) => {
                assert_ne!(port, ingress, "unicast back to the ingress port");
                assert_ne!(port, GW_PORT, "unicast to the gateway's port");
                assert!(bridge.has_port(port), "unicast to a foreign port");
            }
            Action::Gateway => {
                assert_ne!(ingress, GW_PORT, "the gateway's frame back to itself");
                let mut out = Vec::new();
                let gw = GatewayAddr::derived(domain_config().gateway);
                if let Ok(true) = gateway::respond(gw, &view, &mut out) {
                    FrameView::parse_ethernet(&out).expect("the gateway's reply parses");
                }
            }
            Action::Flood | Action::Drop(_) => {}
        }
        if view.needs_software_offload() && !matches!(action, Action::Drop(_)) {
            segment_all(&view);
        }
    }
    bridge.expire(later);
}

/// `gso` target: arbitrary super-frames. With the first byte even, the rest is a TAP read as
/// is; with it odd, the first byte's bits and the next two bytes (`gso_size`) build a virtio-net
/// header that matches the frame that follows (GSO type from the EtherType, checksum offsets
/// at the TCP header, IP lengths patched to the frame), so that random frames get past the
/// header checks and into the segmenter.
pub fn gso(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(view) = FrameView::parse_vnet(rest) {
            segment_all(&view);
        }
        return;
    }
    let Some((size, frame)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let mut frame = frame.to_vec();
    let header = matching_header(mode, u16::from_le_bytes(*size), &mut frame);
    let mut read = header.to_bytes().to_vec();
    read.extend_from_slice(&frame);
    if let Ok(view) = FrameView::parse_vnet(&read) {
        segment_all(&view);
    }
}

/// A TCP GSO header for `frame`, whose IP lengths (and, with bit 1 of `mode`, protocol) are
/// patched to agree with it.
fn matching_header(mode: u8, gso_size: u16, frame: &mut [u8]) -> VnetHeader {
    const TCP: u8 = 6;
    let ethertype = frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]));
    let len = frame.len();
    let patch_proto = mode & 2 != 0;
    let (gso_type, csum_start) = match ethertype {
        Some(0x86dd) => {
            if let Some(l) = frame.get_mut(18..20) {
                let payload = u16::try_from(len.saturating_sub(54)).unwrap_or(u16::MAX);
                l.copy_from_slice(&payload.to_be_bytes());
            }
            if patch_proto && let Some(nh) = frame.get_mut(20) {
                *nh = TCP;
            }
            (4, 54)
        }
        _ => {
            let ihl = frame.get(14).map_or(20, |b| usize::from(b & 0x0f) * 4);
            if let Some(l) = frame.get_mut(16..18) {
                let total = u16::try_from(len.saturating_sub(14)).unwrap_or(u16::MAX);
                l.copy_from_slice(&total.to_be_bytes());
            }
            if patch_proto && let Some(p) = frame.get_mut(23) {
                *p = TCP;
            }
            (1, 14 + ihl as u16)
        }
    };
    VnetHeader {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        // Bit 2 of `mode` asks for ECN, bit 3 for a plain partial checksum without GSO.
        gso_type: if mode & 8 != 0 {
            0
        } else {
            gso_type | (mode & 4) << 5
        },
        hdr_len: 0,
        gso_size: if mode & 8 != 0 { 0 } else { gso_size },
        csum_start,
        csum_offset: if mode & 8 != 0 {
            u16::from(mode >> 4)
        } else {
            16
        },
    }
}

/// Runs `view` through the segmenter and checks every segment: an ordinary frame that parses,
/// no larger than its source, with at most one segment's worth of payload.
fn segment_all(view: &FrameView<'_>) {
    let mut segmenter = Segmenter::new();
    let Ok(mut segments) = segmenter.segments(view) else {
        return;
    };
    let total = segments.total();
    assert!(total >= 1);
    let mut produced = 0;
    while let Some(segment) = segments.next_segment() {
        produced += 1;
        let bytes = segment.with_vnet_header();
        assert_eq!(bytes[..VNET_HDR_LEN], [0; VNET_HDR_LEN]);
        let seg = FrameView::parse_ethernet(segment.ethernet()).expect("a segment parses");
        assert!(!seg.needs_software_offload());
        assert!(seg.frame_len() <= view.frame_len());
        assert!(seg.largest_ip_packet() <= view.largest_ip_packet());
    }
    assert_eq!(produced, total);
}

/// `gateway` target: one TAP read handed to the gateway, as the port task hands it: the data
/// path's own answers (ARP, echo of the gateway), then the gateway task's parse, routing under
/// every network option, and its translators on an internal network (where every route ends at
/// the gateway: closed-port answers, ICMP errors, TCP RSTs from smoltcp, drops; never a host
/// socket). The same bytes are also read as a packet from the raw ICMP socket and as a host-side
/// datagram to deliver (fragmented) to a container.
pub fn gateway(data: &[u8]) {
    if let Ok(view) = FrameView::parse_vnet(data) {
        let gw = GatewayAddr::derived(domain_config().gateway);
        let mut out = vec![0; VNET_HDR_LEN];
        if let Ok(true) = gateway::respond(gw, &view, &mut out) {
            FrameView::parse_vnet(&out).expect("the gateway's reply parses");
        }
    }
    nat::fuzz::gateway_input(data);
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    /// Runs `f` on every file of `fuzz/corpus/<target>/`, if the corpus is there (it is not in a
    /// packaged crate), so that `cargo test` replays what the fuzzers found on stable.
    pub(crate) fn replay(target: &str, f: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("readable corpus directory").path();
            let data = std::fs::read(&path).expect("readable corpus file");
            let outcome = std::panic::catch_unwind(|| f(&data));
            assert!(outcome.is_ok(), "{} panics", path.display());
        }
    }

    #[test]
    fn frame_corpus() {
        replay("frame", super::frame);
    }

    #[test]
    fn gso_corpus() {
        replay("gso", super::gso);
    }

    #[test]
    fn gateway_corpus() {
        replay("gateway", super::gateway);
    }

    #[test]
    fn empty_and_tiny_inputs() {
        for len in 0..80 {
            let data = vec![0xff; len];
            super::frame(&data);
            super::gso(&data);
            super::gateway(&data);
        }
    }
}
