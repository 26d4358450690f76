//! netloom's embedded DNS: the server at 127.0.0.11 inside each container on a user network
//! (and on a network's gateway address), answering as Docker's embedded resolver does.
//!
//! - [`Records`]: an immutable snapshot, per network, of the names containers may resolve
//!   (container names, aliases, short ids, hostnames) and of the reverse (PTR) names.
//!   Built with [`RecordsBuilder`], which normalizes names once so lookups only compare.
//! - [`RecordStore`]: holds the current snapshot. The control plane swaps in a whole new one on
//!   every change; the server loads it without locking, so a query never waits on a
//!   container starting or stopping, and sees a change from the next query on.
//! - [`DnsServer`]: serves the UDP socket and TCP listener the daemon gives it until a
//!   cancellation token fires. Known names are answered from the snapshot; the rest is forwarded
//!   to the [`Upstreams`] (or refused with SERVFAIL on internal networks).
//!
//! # The rules, and where they come from
//! - Names compare case-insensitively (RFC 4343). A known name answers A queries with all its
//!   addresses, TTL 600, shuffled per query (Docker). Any other type for a known name is NOERROR
//!   with no records, "NODATA" (RFC 2308 section 2.2): NXDOMAIN would deny the A records too.
//! - `d.c.b.a.in-addr.arpa.` (RFC 1035 section 3.5) PTR for a container address answers
//!   `name.network.`.
//! - Unknown names go upstream byte for byte under a fresh random id and source port (RFC 5452),
//!   so EDNS options (RFC 6891) and DNSSEC records pass through; SERVFAIL and REFUSED move on to
//!   the next upstream, anything else (NXDOMAIN too) is relayed as is; no answer from any means
//!   SERVFAIL. More forwarded queries in flight than the limiter allows get REFUSED.
//! - Replies keep the query's id, opcode, RD and CD bits and set RA (RFC 6895 section 2). Over
//!   UDP a reply is at most 512 bytes, or the client's EDNS payload size; what does not fit is
//!   cut and TC is set so the client retries over TCP (RFC 1035 section 4.2.1, RFC 2181 section
//!   9). TCP messages carry a 2-byte length (RFC 1035 section 4.2.2, RFC 7766).
//! - Malformed queries get FORMERR, other opcodes NOTIMP (RFC 1035 section 4.1.1), more or fewer
//!   than one question FORMERR (RFC 9619), EDNS versions above 0 BADVERS (RFC 6891 section
//!   6.1.3). Queries too short to carry an id, and responses, are dropped and counted.
#![deny(unsafe_code)]

mod batch;
mod counters;
mod forward;
#[doc(hidden)]
pub mod fuzzing;
mod message;
mod records;
mod server;
mod store;

pub use counters::{DnsCounters, Event};
pub use forward::Upstreams;
pub use message::{ForwardQuery, Handled, TTL, Transport};
pub use records::{NetworkRecords, Records, RecordsBuilder, RecordsError};
pub use server::{
    DnsServer, MAX_IN_FLIGHT, MAX_TCP_CONNECTIONS, ServeError, ServerConfig, TCP_IDLE,
};
pub use store::RecordStore;
