//! The gateway task's packet input without sockets or a runtime, for
//! [`crate::fuzzing::gateway`].

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use arc_swap::ArcSwap;
use etherparse::Ipv4Slice;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::udp::Out;
use super::{
    Ctx, Egress, GatewayFrame, HEADROOM, Limits, NatConfig, NatGauges, Neighbor, Proto, Route,
    Timeouts, Translators, TxOffload, icmp, parse, tcp, udp,
};
use crate::counters::DropReason;
use crate::forward::PortId;
use crate::frame::MacAddr;
use crate::gateway::GatewayAddr;

const PORT: PortId = PortId(2);

/// Checks what the gateway sends toward containers: a whole IPv4 packet behind the headroom,
/// within the MTU unless the receiving kernel is asked to segment it.
#[derive(Debug)]
struct CheckedEgress {
    mtu: usize,
}

impl Egress for CheckedEgress {
    fn neighbor(&self, ip: Ipv4Addr) -> Option<Neighbor> {
        let [_, _, c, d] = ip.octets();
        Some(Neighbor {
            mac: MacAddr([0x02, 0x42, 0xac, 0x11, c, d]),
            port: PORT,
        })
    }

    fn send(&self, buf: &mut [u8], offload: TxOffload) {
        let packet = buf
            .get(HEADROOM..)
            .expect("headroom in front of the packet");
        let ip = Ipv4Slice::from_slice(packet).expect("the gateway sends well-formed IPv4");
        assert_eq!(usize::from(ip.header().total_len()), packet.len());
        if !matches!(offload, TxOffload::Segment(_)) {
            assert!(
                packet.len() <= self.mtu,
                "{} > MTU {}",
                packet.len(),
                self.mtu
            );
        }
    }

    fn drop_frame(&self, _port: Option<PortId>, _reason: DropReason) {}
}

fn config(mtu: u16, internal: bool, host_loopback: bool) -> NatConfig {
    NatConfig {
        gateway: GatewayAddr::derived(Ipv4Addr::new(172, 17, 0, 1)),
        subnet: Ipv4Addr::new(172, 17, 0, 0),
        prefix: 16,
        mtu,
        internal,
        host_loopback,
        // A DNS address would route the gateway's port 53 to a host socket.
        dns: None,
        subnets: Arc::new(ArcSwap::from_pointee(vec![
            (Ipv4Addr::new(172, 17, 0, 0), 16),
            (Ipv4Addr::new(172, 18, 0, 0), 16),
        ])),
        timeouts: Timeouts::default(),
        limits: Limits::default(),
    }
}

/// See [`crate::fuzzing::gateway`].
pub(crate) fn gateway_input(data: &[u8]) {
    let frame = GatewayFrame {
        port: PORT,
        data: data.to_vec(),
    };
    if let Ok(p) = parse(&frame) {
        assert!(p.payload.len() <= p.packet.len());
        let proto = match p.protocol {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        };
        let port = p
            .payload
            .get(2..4)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        let dst = SocketAddrV4::new(p.dst, port);
        for (internal, loopback) in [(false, false), (false, true), (true, true)] {
            if let Route::Forward(addr) = config(1500, internal, loopback).route(proto, dst) {
                assert!(!internal || addr.ip().is_loopback());
            }
        }
    }

    let (events, _events_rx) = mpsc::channel(1);
    let gauges = NatGauges::default();
    let cancel = CancellationToken::new();
    for mtu in [1500, 68] {
        // Internal: every route ends at the gateway or in a drop, never at a host socket.
        let config = config(mtu, true, false);
        let egress = CheckedEgress {
            mtu: usize::from(mtu),
        };
        let ctx = Ctx {
            config: &config,
            egress: &egress,
            events: &events,
            gauges: &gauges,
            cancel: &cancel,
            now: Instant::now(),
        };
        let mut translators = Translators {
            tcp: tcp::TcpNat::new(&config),
            udp: udp::UdpNat::new(&config),
            icmp: icmp::IcmpNat::new(&config),
        };
        translators.on_frame(&ctx, &frame);
        translators.poll(&ctx);

        // A host-side datagram of any size on its way to a container, fragmented to the MTU.
        let (mut packet, mut ip_id) = (Vec::new(), 0);
        let mut out = Out {
            packet: &mut packet,
            ip_id: &mut ip_id,
        };
        let gw = config.gateway.ip;
        out.send(&ctx, Some(PORT), gw, Ipv4Addr::new(172, 17, 0, 2), 17, data);
    }

    // What the raw ICMP socket reads: anything the host's network sends.
    let _ = icmp::raw_reply(data);
}
