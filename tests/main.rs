//! netloom's integration tests: one binary, one module per area.
//!
//! Every daemon a test starts runs under `unshare -n` (its own empty network namespace), on a
//! socket and data root inside the test's temporary directory, and is killed when the test's
//! guard drops, so nothing leaks into the machine's namespace even when a test fails.

// Helpers are shared between the modules of this one test crate.
#![allow(unreachable_pub)]

mod api;
mod chaos;
mod common;
mod containers;
mod dataplane;
mod demo;
mod dns;
mod durability;
mod gateway;
mod interactive;
mod nat;
mod ports;
mod rename;
mod rootless;
mod soak;
