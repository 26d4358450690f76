//! netloom's embedded DNS: what the server at 127.0.0.11 knows about each network.
//!
//! - [`Records`]: an immutable snapshot, per network, of the names containers may resolve
//!   (container names, aliases, short ids, hostnames) and of the reverse (PTR) names.
//!   Built with [`RecordsBuilder`], which normalizes names once so lookups only compare.
//! - [`RecordStore`]: holds the current snapshot. The control plane swaps in a whole new one on
//!   every change; the request handler loads it without locking, so a query never waits on a
//!   container starting or stopping.
//!
//! The request handler and upstream forwarding come in the DNS issue.
#![deny(unsafe_code)]

mod records;
mod store;

pub use records::{NetworkRecords, Records, RecordsBuilder, RecordsError};
pub use store::RecordStore;
