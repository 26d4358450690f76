//! What the server did with each query, counted per outcome, readable while it runs.
//!
//! Every query ends in exactly one outcome counter (an answer, an error code, a drop), so an
//! operator can tell a misbehaving client (malformed, responses sent to us) from a sick upstream
//! (upstream failures, SERVFAIL) or an overload (refused) without a packet capture. Nothing the
//! server drops goes uncounted.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// One thing the server counts.
///
/// Adding an event means adding a variant at the end and listing it in [`Event::ALL`];
/// [`DnsCounters`] sizes itself from that list and a test checks the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Event {
    /// A datagram or TCP message received (every one, whatever became of it).
    Query,
    /// Answered from the snapshot with records (A, PTR).
    Answered,
    /// Answered from the snapshot with NOERROR and no records: the name exists but has no data
    /// of the asked type (RFC 2308 section 2.2, "NODATA").
    NoData,
    /// Sent on to the upstream servers.
    Forwarded,
    /// An upstream's answer relayed to the client (NOERROR, NXDOMAIN, ...).
    UpstreamAnswered,
    /// One upstream tried and given up on: timeout, I/O error, SERVFAIL or REFUSED, or an answer
    /// that did not match the query. Counted per upstream, so one query may count several.
    UpstreamFailed,
    /// SERVFAIL sent: forwarding is off, there are no upstreams, or none of them answered.
    ServFail,
    /// REFUSED sent: too many forwarded queries in flight.
    Refused,
    /// FORMERR sent: a query whose header parsed but whose body did not, or without exactly one
    /// question (RFC 1035 section 4.1.1, RFC 9619).
    FormErr,
    /// NOTIMP sent: an opcode other than QUERY (RFC 1035 section 4.1.1).
    NotImp,
    /// BADVERS sent: an EDNS version other than 0 (RFC 6891 section 6.1.3).
    BadVers,
    /// Dropped without a reply: shorter than the 12-byte header, so there is no id to answer to.
    DroppedShort,
    /// Dropped without a reply: a response (QR set) sent to us; answering could loop between
    /// two servers or reflect traffic.
    DroppedResponse,
    /// Dropped without a reply: the source port is 0, which cannot be answered.
    DroppedPortZero,
    /// A TCP connection closed at once because the listener already has its maximum.
    TcpRejected,
    /// A TCP connection closed for a framing error, a read error or idleness (RFC 7766 section
    /// 6.2.3 asks servers to close idle connections).
    TcpClosed,
    /// A reply that could not be sent (the socket refused it).
    SendFailed,
}

impl Event {
    /// Every event, in counter order, for exporting all counters.
    pub const ALL: [Event; 17] = [
        Event::Query,
        Event::Answered,
        Event::NoData,
        Event::Forwarded,
        Event::UpstreamAnswered,
        Event::UpstreamFailed,
        Event::ServFail,
        Event::Refused,
        Event::FormErr,
        Event::NotImp,
        Event::BadVers,
        Event::DroppedShort,
        Event::DroppedResponse,
        Event::DroppedPortZero,
        Event::TcpRejected,
        Event::TcpClosed,
        Event::SendFailed,
    ];

    /// A stable snake_case name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Query => "query",
            Event::Answered => "answered",
            Event::NoData => "no_data",
            Event::Forwarded => "forwarded",
            Event::UpstreamAnswered => "upstream_answered",
            Event::UpstreamFailed => "upstream_failed",
            Event::ServFail => "servfail",
            Event::Refused => "refused",
            Event::FormErr => "formerr",
            Event::NotImp => "notimp",
            Event::BadVers => "badvers",
            Event::DroppedShort => "dropped_short",
            Event::DroppedResponse => "dropped_response",
            Event::DroppedPortZero => "dropped_port_zero",
            Event::TcpRejected => "tcp_rejected",
            Event::TcpClosed => "tcp_closed",
            Event::SendFailed => "send_failed",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One counter per [`Event`]. Shared as `Arc<DnsCounters>`; relaxed atomics, since each counter
/// is read on its own and no other memory hangs on its value.
#[derive(Debug, Default)]
pub struct DnsCounters {
    counts: [AtomicU64; Event::ALL.len()],
}

impl DnsCounters {
    /// All zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// How often `event` happened so far.
    pub fn get(&self, event: Event) -> u64 {
        self.counts[event as usize].load(Ordering::Relaxed)
    }

    /// Every counter with its event, in [`Event::ALL`] order.
    pub fn snapshot(&self) -> [(Event, u64); Event::ALL.len()] {
        Event::ALL.map(|event| (event, self.get(event)))
    }

    pub(crate) fn bump(&self, event: Event) {
        self.counts[event as usize].fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_event_in_discriminant_order() {
        for (i, event) in Event::ALL.iter().enumerate() {
            assert_eq!(*event as usize, i, "{event} out of order");
        }
    }

    #[test]
    fn counts_per_event() {
        let c = DnsCounters::new();
        c.bump(Event::Refused);
        c.bump(Event::Refused);
        c.bump(Event::Query);
        assert_eq!(c.get(Event::Refused), 2);
        assert_eq!(c.get(Event::Query), 1);
        assert_eq!(c.get(Event::FormErr), 0);
        let snap = c.snapshot();
        assert_eq!(snap[Event::Refused as usize], (Event::Refused, 2));
    }
}
