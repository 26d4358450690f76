//! netloom: the daemon (composition root, state store, Engine-API server), the client and the CLI.
#![deny(unsafe_code)]

pub mod api;
pub mod client;
pub mod commands;
pub mod containers;
pub mod daemon;
pub mod format;
pub mod model;
pub mod paths;
pub mod ports;
pub mod shim;
pub mod store;
