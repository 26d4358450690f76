//! IP address management for netloom, with Docker's behaviour and error texts.
//!
//! - [`Subnet`] and [`MacAddr`]: newtypes parsed once at the edge.
//! - [`choose_subnet`]: the subnet of a network created without `--subnet`, from Docker's
//!   default pools, avoiding other networks and the host's nameservers and on-link routes
//!   ([`HostFacts`]).
//! - [`plan_network`]: validates `--subnet`, `--ip-range`, `--gateway`, `--aux-address` into a
//!   [`NetworkPlan`].
//! - [`AddressPool`]: hands out container addresses, lowest free first.
//!
//! The crate is pure: no I/O, no async, no clock. Host facts come in as data (the daemon reads
//! resolv.conf and `/proc/net/route` and passes their text to [`HostFacts`]'s parsers), and
//! state that must survive a restart is rebuilt by the caller from its store.
//!
//! Docker is IPv4-only here: an IPv6 subnet is refused with its own error variant.
#![deny(unsafe_code)]

mod address_pool;
mod bitmap;
mod host;
mod mac;
mod parse;
mod plan;
mod pools;
mod subnet;

pub use address_pool::{AddressPool, AllocError};
pub use host::HostFacts;
pub use mac::{MacAddr, MacParseError};
pub use plan::{
    AddressIssue, ConfigIssue, ConfigIssues, NetworkPlan, NetworkRequest, PlanError, plan_network,
};
pub use pools::{ChooseSubnetError, choose_subnet, default_pools};
pub use subnet::{Subnet, SubnetError};
