//! A fake data path and gateway context for the translators' tests.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use arc_swap::ArcSwap;
use etherparse::PacketBuilder;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::counters::DropReason;
use crate::forward::PortId;
use crate::frame::MacAddr;
use crate::gateway::GatewayAddr;
use crate::nat::{
    Ctx, Egress, Event, GatewayFrame, HEADROOM, Ingress, Limits, NatConfig, NatGauges, Neighbor,
    Timeouts, TxOffload,
};

pub(crate) const GW: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 1);
pub(crate) const C: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
pub(crate) const PORT: PortId = PortId(7);
const WAIT: Duration = Duration::from_secs(5);

/// Records what the gateway sends and drops.
#[derive(Debug, Default)]
pub(crate) struct FakeEgress {
    /// IPv4 packets sent, headroom stripped.
    pub(crate) sent: Mutex<Vec<Vec<u8>>>,
    pub(crate) drops: Mutex<Vec<(Option<PortId>, DropReason)>>,
}

impl Egress for FakeEgress {
    fn neighbor(&self, ip: Ipv4Addr) -> Option<Neighbor> {
        let [_, _, c, d] = ip.octets();
        (ip == C || ip == Ipv4Addr::new(172, 18, 0, 3)).then_some(Neighbor {
            mac: MacAddr([2, 0x42, 172, 18, c, d]),
            port: PORT,
        })
    }

    fn send(&self, buf: &mut [u8], offload: TxOffload) {
        assert_eq!(offload, TxOffload::None);
        self.sent.lock().unwrap().push(buf[HEADROOM..].to_vec());
    }

    fn drop_frame(&self, port: Option<PortId>, reason: DropReason) {
        self.drops.lock().unwrap().push((port, reason));
    }
}

pub(crate) fn config() -> NatConfig {
    NatConfig {
        gateway: GatewayAddr::derived(GW),
        subnet: Ipv4Addr::new(172, 18, 0, 0),
        prefix: 16,
        mtu: 1500,
        internal: false,
        host_loopback: false,
        dns: None,
        subnets: std::sync::Arc::new(ArcSwap::from_pointee(vec![
            (Ipv4Addr::new(172, 18, 0, 0), 16),
            (Ipv4Addr::new(172, 19, 0, 0), 16),
        ])),
        timeouts: Timeouts::default(),
        limits: Limits::default(),
    }
}

/// Everything a [`Ctx`] borrows, and the receiving end of the event channel.
#[derive(Debug)]
pub(crate) struct Harness {
    pub(crate) config: NatConfig,
    pub(crate) egress: FakeEgress,
    pub(crate) events_tx: mpsc::Sender<Event>,
    pub(crate) events: mpsc::Receiver<Event>,
    pub(crate) gauges: NatGauges,
    pub(crate) cancel: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Harness {
    pub(crate) fn new(config: NatConfig) -> Harness {
        let (events_tx, events) = mpsc::channel(64);
        Harness {
            config,
            egress: FakeEgress::default(),
            events_tx,
            events,
            gauges: NatGauges::default(),
            cancel: CancellationToken::new(),
        }
    }

    pub(crate) fn ctx_at(&self, now: Instant) -> Ctx<'_> {
        Ctx {
            config: &self.config,
            egress: &self.egress,
            events: &self.events_tx,
            gauges: &self.gauges,
            cancel: &self.cancel,
            now,
        }
    }

    pub(crate) fn ctx(&self) -> Ctx<'_> {
        self.ctx_at(Instant::now())
    }

    /// The next flow event, failing the test if none comes in time.
    pub(crate) async fn event(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("no event in time")
            .expect("event channel closed")
    }

    /// The packets sent so far, taken.
    pub(crate) fn sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.egress.sent.lock().unwrap())
    }

    /// The drops counted so far, taken.
    pub(crate) fn drops(&self) -> Vec<DropReason> {
        std::mem::take(&mut *self.egress.drops.lock().unwrap())
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }
}

/// A frame from the container at `src` as its TAP delivers it: a zero virtio-net header
/// and an Ethernet frame to the gateway.
pub(crate) fn frame(build: impl FnOnce(PacketBuilderStep) -> Vec<u8>) -> GatewayFrame {
    let mut data = vec![0; crate::vnet::VNET_HDR_LEN];
    data.extend(build(PacketBuilder::ethernet2(
        [2, 0x42, 172, 18, 0, 2],
        GatewayAddr::derived(GW).mac.0,
    )));
    GatewayFrame { port: PORT, data }
}

pub(crate) type PacketBuilderStep = etherparse::PacketBuilderStep<etherparse::Ethernet2Header>;

/// A UDP datagram from `src` to `dst`.
pub(crate) fn udp_frame(
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    payload: &[u8],
) -> GatewayFrame {
    frame(|b| {
        let mut v = Vec::new();
        b.ipv4(src.ip().octets(), dst.ip().octets(), 64)
            .udp(src.port(), dst.port())
            .write(&mut v, payload)
            .unwrap();
        v
    })
}

/// Parses a frame as the gateway task does.
pub(crate) fn ingress(frame: &GatewayFrame) -> Ingress<'_> {
    crate::nat::parse(frame).expect("a valid frame")
}
