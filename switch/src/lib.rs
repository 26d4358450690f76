//! netloom's data plane: the userspace switch that stands in for Docker's Linux bridge.
//!
//! - [`DomainId`] and [`DomainConfig`]: one L2 domain per bridge network, described with the
//!   switch's own types so that the switch never depends on `netloom-ipam`.
//! - [`Command`] and [`Switch`]: the control plane changes the data plane only through typed
//!   commands; [`Switch::apply`] is pure (no I/O, no clock) so it is tested without a runtime.
//! - [`spawn`] and [`SwitchHandle`]: the switch runs as one task that owns its state; callers
//!   send commands over a channel and wait for the reply, so they know a command took effect.
//! - [`Counters`] and [`Reason`]: every refusal (and later every dropped frame) is counted.
//!
//! Ports (TAP devices), the forwarding decision and the gateway come in the data-plane issue.
#![deny(unsafe_code)]

mod counters;
mod domain;
mod handle;
mod switch;

pub use counters::{Counters, Reason};
pub use domain::{ConfigError, DomainConfig, DomainId};
pub use handle::{HandleError, SwitchHandle, spawn};
pub use switch::{Command, Switch, SwitchError};
