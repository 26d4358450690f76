//! netloom's data plane: the userspace switch that stands in for Docker's Linux bridge.
//!
//! - [`DomainId`] and [`DomainConfig`]: one L2 domain per bridge network, described with the
//!   switch's own types so that the switch never depends on `netloom-ipam`.
//! - [`Command`] and [`Switch`]: the control plane changes the data plane only through typed
//!   commands; [`Switch::apply`] is pure (no I/O, no clock) so it is tested without a runtime.
//! - [`spawn`] and [`SwitchHandle`]: the switch runs as one task that owns its state; callers
//!   send commands over a channel and wait for the reply, so they know a command took effect.
//! - [`Counters`] and [`Reason`]: every refusal (and later every dropped frame) is counted.
//! - [`FrameView`]: a frame read from a port, its virtio-net header and Ethernet/ARP/IP headers
//!   parsed and validated once, at the edge ([`frame`]).
//! - [`decide`] over a [`Bridge`]: the forwarding decision of one L2 domain, a pure function of
//!   the frame, the ingress port, the domain's ports and learning table, and the time passed in;
//!   the threat model it answers is in [`forward`]. Drops are counted per [`DropReason`],
//!   switch-wide and in each port's [`PortCounters`].
//! - [`VnetHeader`]: the raw 12-byte virtio-net header in front of every TAP frame, its
//!   layout and constants in one place ([`vnet`]), shared by the TAP layer and [`frame`].
//! - [`Segmenter`]: GSO segmentation and checksum completion for destinations that take only
//!   ordinary frames (the gateway, ports without a virtio-net header).
//!
//! - [`SwitchHandle::add_port`]: a TAP becomes a port of a domain; one task per port reads it
//!   in batches, runs [`decide`] and writes to the destination ports; the gateway answers ARP
//!   and ICMP echo for its address ([`GatewayAddr`]). [`BusyPoll`] (opt-in) keeps ports with
//!   sparse traffic polling for a while after each batch instead of parking: less latency for
//!   more CPU time.
#![deny(unsafe_code)]

mod counters;
mod domain;
pub mod forward;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod gso;
mod handle;
mod nat;
mod poll;
mod runtime;
#[cfg(test)]
mod sim;
mod switch;
pub mod tap;
#[cfg(test)]
mod testutil;
pub mod vnet;

pub use counters::{Counters, Reason};
pub use counters::{DropReason, PortCounters, PortStats};
pub use domain::{ConfigError, DomainConfig, DomainId};
pub use forward::{
    Action, Bridge, BridgeError, Gateway, PortId, PortPolicy, TableConfig, Timestamp, decide,
};
pub use frame::{FrameError, FrameView, MAX_FRAME_LEN, MAX_READ_LEN, MacAddr};
pub use gateway::GatewayAddr;
pub use gso::{GsoError, Segment, Segmenter, Segments};
pub use handle::{HandleError, SwitchHandle, spawn};
pub use nat::{Listener, NatStats, Netns, PublishId};
pub use poll::{BusyPoll, BusyPollError};
pub use runtime::PortError;
pub use switch::{Command, Switch, SwitchError};
pub use vnet::{VNET_HDR_LEN, VnetHeader};
