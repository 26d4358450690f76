//! The request handler: one query's bytes in, what to do about it out.
//!
//! Pure: no I/O, no clock, no lock. [`handle`] reads the snapshot it is given and returns a
//! [`Handled`]: the reply to send, a [`ForwardQuery`] for the upstream servers, or a drop. That
//! keeps every protocol rule testable with byte fixtures, and makes it the fuzz target.
//!
//! # Threat model
//! Any process in a container sends us arbitrary bytes. Parsing goes through hickory-proto's
//! decoder, which bounds every read by the input; a query that does not parse gets FORMERR, and
//! one too short to carry an id, or that is itself a response, gets nothing (answering a response
//! could start a loop between two servers). Nothing here panics on input (a property test feeds
//! random bytes), and the work per query is bounded by its size.

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Header, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use rand::seq::SliceRandom;

use crate::counters::Event;
use crate::records::Records;

/// TTL of every record the server answers from its snapshot (Docker's `respTTL`).
pub const TTL: u32 = 600;

/// The largest UDP reply to a client that did not send EDNS (RFC 1035 section 4.2.1).
const UDP_PLAIN_MAX: usize = 512;

/// The UDP payload size the server advertises in its own OPT record: the DNS Flag Day 2020
/// value, which avoids IP fragmentation on any path (RFC 9715).
const ADVERTISED_PAYLOAD: u16 = 1232;

/// Bytes of our own OPT record (root name, type, class, TTL, empty RDATA; RFC 6891 section 6.1.2),
/// kept free when truncating so that the OPT is never the record that gets cut.
const OPT_LEN: usize = 11;

/// The longest name in presentation form, plus room for the separating dots (RFC 1035 section
/// 2.3.4); the stack buffer a query name is lowercased into.
const NAME_BUF: usize = 256;

/// The transport a query came in on; it decides how large the reply may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the client's EDNS payload size (RFC 1035 section 4.2.1, RFC 6891
    /// section 6.2.5); larger replies are cut and get the TC bit.
    Udp,
    /// TCP: up to 65535 bytes, each message behind a 2-byte length (RFC 1035 section 4.2.2,
    /// RFC 7766).
    Tcp,
}

/// What the server does with one query.
#[derive(Debug)]
pub enum Handled {
    /// Send `bytes` back to the client; `event` says what kind of reply it is.
    Reply {
        /// The encoded reply, without the TCP length prefix.
        bytes: Vec<u8>,
        /// The counter this reply goes under.
        event: Event,
    },
    /// The snapshot does not know the name: ask the upstream servers.
    Forward(ForwardQuery),
    /// Send nothing; `Event` says why.
    Drop(Event),
}

/// What decides answers besides the snapshot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// Whether unknown names may be forwarded (false on internal networks, or without upstreams).
    pub(crate) forward: bool,
    /// Whether the container's resolv.conf sets `ndots` itself; see [`handle`].
    pub(crate) ndots_set: bool,
}

/// A query for a name the snapshot does not know, kept for the upstream exchange: its bytes as
/// the client sent them (so EDNS options, the DO bit and cookies reach the upstream untouched)
/// and its parsed form, to check upstream answers and to build error replies.
#[derive(Debug)]
pub struct ForwardQuery {
    request: Message,
    raw: Vec<u8>,
    limit: usize,
}

/// What an upstream's reply means for a forwarded query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UpstreamReply {
    /// Not a reply to what we sent (wrong id, wrong question, not a response, does not parse):
    /// ignore it, as RFC 5452 section 9.1 asks, and keep waiting.
    Mismatch,
    /// SERVFAIL or REFUSED: try the next upstream (Docker treats REFUSED as possibly transient).
    Failed,
    /// Anything else (NOERROR, NXDOMAIN, ...): relay these bytes to the client.
    Answer(Vec<u8>),
}

impl ForwardQuery {
    /// The bytes to send upstream: the client's query under a fresh id, so a spoofer must guess
    /// the id as well as our random source port (RFC 5452 section 9.2).
    pub(crate) fn upstream_query(&self, id: u16) -> Vec<u8> {
        let mut query = self.raw.clone();
        // The id is the first field of the header (RFC 1035 section 4.1.1); the rest is relayed
        // byte for byte.
        query[..2].copy_from_slice(&id.to_be_bytes());
        query
    }

    /// Judges an upstream's reply to [`ForwardQuery::upstream_query`]`(sent_id)`. An accepted
    /// answer goes back byte for byte under the client's id, unless it is larger than the client
    /// can take over UDP: then it is cut to header and question with TC set, so the client
    /// retries over TCP (RFC 1035 section 4.2.1).
    pub(crate) fn judge(&self, sent_id: u16, bytes: &[u8]) -> UpstreamReply {
        let Ok(reply) = Message::from_vec(bytes) else {
            return UpstreamReply::Mismatch;
        };
        if reply.metadata.id != sent_id || reply.metadata.message_type != MessageType::Response {
            return UpstreamReply::Mismatch;
        }
        let rcode = reply.metadata.response_code;
        // Some servers leave the question out of error replies; a missing question is accepted
        // only there, never on an answer.
        let question_ok = match reply.queries.as_slice() {
            [q] => *q == self.request.queries[0],
            [] => rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain,
            _ => false,
        };
        if !question_ok {
            return UpstreamReply::Mismatch;
        }
        if matches!(rcode, ResponseCode::ServFail | ResponseCode::Refused) {
            return UpstreamReply::Failed;
        }
        let client_id = self.request.metadata.id;
        if bytes.len() <= self.limit {
            let mut out = bytes.to_vec();
            out[..2].copy_from_slice(&client_id.to_be_bytes());
            return UpstreamReply::Answer(out);
        }
        let mut cut = reply.truncate();
        cut.metadata.id = client_id;
        match emit(&cut, u16::MAX) {
            Ok(out) => UpstreamReply::Answer(out),
            // The header and question came in within the limit, so this cannot happen; if it
            // did, the next upstream gets its chance.
            Err(_) => UpstreamReply::Failed,
        }
    }

    /// An error reply (SERVFAIL, REFUSED) to the client, with its question and, if it sent EDNS,
    /// an OPT record.
    pub(crate) fn error(&self, rcode: ResponseCode) -> Option<Vec<u8>> {
        encode(response(&self.request, rcode), self.limit).ok()
    }

    /// The client's question, for logs.
    pub(crate) fn question(&self) -> String {
        let q = &self.request.queries[0];
        format!("{} {}", q.name(), q.query_type())
    }
}

/// Decides what to do with `bytes`, a query received over `transport`, for a container on
/// `networks` (first match wins, as Docker tries a sandbox's endpoints in order).
///
/// - Fewer than 12 bytes, or a response: dropped.
/// - Opcode other than QUERY: NOTIMP. Body that does not parse, or not exactly one question:
///   FORMERR (RFC 1035 section 4.1.1, RFC 9619). EDNS version other than 0: BADVERS (RFC 6891
///   section 6.1.3).
/// - `d.c.b.a.in-addr.arpa.` PTR for a container address: `name.network.`, TTL 600.
/// - A known name (any letter case, RFC 4343): for A (and ANY, RFC 8482) all its addresses,
///   shuffled per query so clients that take the first spread their load, TTL 600; for any other
///   type NOERROR with no records, since the name exists (RFC 2308 section 2.2, NODATA). Not
///   NXDOMAIN: that would tell a resolver the A records do not exist either.
/// - Otherwise forwarded, or SERVFAIL when forwarding is off (Docker's answer on internal
///   networks). With `ndots` set by the user, a single-label A or AAAA name is answered NOERROR
///   with no records instead, so the client's resolver goes on to its search domains (Docker's
///   `NdotsSet` rule).
pub(crate) fn handle(
    records: &Records,
    networks: &[String],
    policy: Policy,
    bytes: &[u8],
    transport: Transport,
) -> Handled {
    let Ok(header) = Header::read(&mut BinDecoder::new(bytes)) else {
        return Handled::Drop(Event::DroppedShort);
    };
    if header.metadata.message_type == MessageType::Response {
        return Handled::Drop(Event::DroppedResponse);
    }
    if header.metadata.op_code != OpCode::Query {
        return header_only(&header.metadata, ResponseCode::NotImp, Event::NotImp);
    }
    let request = match Message::from_vec(bytes) {
        Ok(m) if m.queries.len() == 1 => m,
        _ => return header_only(&header.metadata, ResponseCode::FormErr, Event::FormErr),
    };
    let limit = match transport {
        // `max_payload` is 512 without EDNS and never less than 512 with it.
        Transport::Udp => usize::from(request.max_payload()),
        Transport::Tcp => usize::from(u16::MAX),
    };
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return reply(
            response(&request, ResponseCode::BADVERS),
            limit,
            Event::BadVers,
        );
    }

    let question = &request.queries[0];
    let qtype = question.query_type();
    if question.query_class() == DNSClass::IN {
        if qtype == RecordType::PTR
            && let Some(ip) = reverse_v4(question.name())
        {
            let target = networks.iter().find_map(|n| records.ptr(n, ip));
            // Snapshot names are validated when built, so this parse only fails on a bug; the
            // query is then forwarded like any unknown name.
            if let Some(Ok(target)) = target.map(Name::from_ascii) {
                let owner = question.name().clone();
                let mut msg = response(&request, ResponseCode::NoError);
                msg.answers = vec![Record::from_rdata(owner, TTL, RData::PTR(PTR(target)))];
                return reply(msg, limit, Event::Answered);
            }
        } else {
            let mut buf = [0u8; NAME_BUF];
            let found = lower_text(question.name(), &mut buf)
                .and_then(|name| networks.iter().find_map(|n| records.lookup(n, name)));
            if let Some(ips) = found {
                let mut msg = response(&request, ResponseCode::NoError);
                if matches!(qtype, RecordType::A | RecordType::ANY) {
                    let owner = question.name();
                    msg.answers = ips
                        .iter()
                        .map(|ip| Record::from_rdata(owner.clone(), TTL, RData::A(A(*ip))))
                        .collect();
                    msg.answers.shuffle(&mut rand::rng());
                    return reply(msg, limit, Event::Answered);
                }
                return reply(msg, limit, Event::NoData);
            }
        }
    }

    if policy.ndots_set
        && matches!(qtype, RecordType::A | RecordType::AAAA)
        && question.name().iter().count() == 1
    {
        return reply(
            response(&request, ResponseCode::NoError),
            limit,
            Event::NoData,
        );
    }
    if !policy.forward {
        return reply(
            response(&request, ResponseCode::ServFail),
            limit,
            Event::ServFail,
        );
    }
    Handled::Forward(ForwardQuery {
        request,
        raw: bytes.to_vec(),
        limit,
    })
}

/// A reply to `request` with its id, opcode, RD and CD (RFC 6895 section 2), RA set (we
/// recurse, through the upstreams), its question, and an OPT record if it had one (RFC 6891
/// section 6.1.1: a responder answers EDNS with EDNS).
fn response(request: &Message, rcode: ResponseCode) -> Message {
    let mut msg = Message::response(request.metadata.id, request.metadata.op_code);
    msg.metadata = Metadata::response_from_request(&request.metadata);
    msg.metadata.recursion_available = true;
    msg.metadata.response_code = rcode;
    msg.queries = request.queries.clone();
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(ADVERTISED_PAYLOAD).set_version(0);
        msg.edns = Some(edns);
    }
    msg
}

fn reply(msg: Message, limit: usize, event: Event) -> Handled {
    match encode(msg, limit) {
        Ok(bytes) => Handled::Reply { bytes, event },
        Err(_) => Handled::Drop(Event::SendFailed),
    }
}

/// A reply with the header alone, for queries whose question we cannot or will not read.
fn header_only(request: &Metadata, rcode: ResponseCode, event: Event) -> Handled {
    let mut msg = Message::response(request.id, request.op_code);
    msg.metadata = Metadata::response_from_request(request);
    msg.metadata.recursion_available = true;
    msg.metadata.response_code = rcode;
    reply(msg, UDP_PLAIN_MAX, event)
}

/// Encodes `msg` within `limit` bytes. What does not fit is cut: the answers that fit stay (RFC
/// 2181 section 9 allows a partial RRset, and stub resolvers that do not retry over TCP can
/// still use them), the rest goes, TC is set (RFC 1035 section 4.2.1), and the OPT record is
/// always kept.
fn encode(mut msg: Message, limit: usize) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let full = emit(&msg, u16::MAX)?;
    if full.len() <= limit {
        return Ok(full);
    }
    // First pass without the OPT, in `limit` less its size, tells how many answers fit; the
    // encoder rolls back the record that overflows and counts only whole ones.
    let edns = msg.edns.take();
    let room = limit.saturating_sub(if edns.is_some() { OPT_LEN } else { 0 });
    let fit = match emit(&msg, u16::try_from(room).unwrap_or(u16::MAX)) {
        Ok(bytes) => answer_count(&bytes),
        Err(_) => 0,
    };
    msg.edns = edns;
    msg.answers.truncate(fit);
    msg.authorities.clear();
    msg.additionals.clear();
    msg.metadata.truncation = true;
    emit(&msg, u16::MAX)
}

fn emit(msg: &Message, max: u16) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut buf = Vec::with_capacity(UDP_PLAIN_MAX);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(max);
    msg.emit(&mut encoder)?;
    Ok(buf)
}

/// ANCOUNT of an encoded message we just emitted ourselves.
fn answer_count(bytes: &[u8]) -> usize {
    Header::from_bytes(bytes).map_or(0, |h| usize::from(h.counts.answers))
}

/// `name` as lowercase text without the root dot, written into `buf` so the common lookup
/// allocates nothing. `None` for names that cannot be in the snapshot: a label with a byte that
/// is not printable ASCII, or with a dot inside (a wire label `web.frontend` must not match the
/// two-label name).
fn lower_text<'b>(name: &Name, buf: &'b mut [u8; NAME_BUF]) -> Option<&'b str> {
    let mut len = 0;
    for (i, label) in name.iter().enumerate() {
        if label.iter().any(|b| !b.is_ascii_graphic() || *b == b'.') {
            return None;
        }
        let sep = usize::from(i > 0);
        let dst = buf.get_mut(len..len + sep + label.len())?;
        if sep == 1 {
            dst[0] = b'.';
        }
        for (d, s) in dst[sep..].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        len += sep + label.len();
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// The address of a `d.c.b.a.in-addr.arpa.` name (RFC 1035 section 3.5), octets written as
/// Docker writes them (decimal, no leading zeros). `None` for anything else, including the
/// shorter network names (`c.b.a.in-addr.arpa.`) and `ip6.arpa.` names, which are forwarded.
fn reverse_v4(name: &Name) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut labels = name.iter();
    for slot in octets.iter_mut().rev() {
        *slot = parse_octet(labels.next()?)?;
    }
    let in_addr = labels.next()?;
    let arpa = labels.next()?;
    (labels.next().is_none()
        && in_addr.eq_ignore_ascii_case(b"in-addr")
        && arpa.eq_ignore_ascii_case(b"arpa"))
    .then(|| Ipv4Addr::from(octets))
}

fn parse_octet(label: &[u8]) -> Option<u8> {
    let canonical = match label {
        [b'0'] => true,
        [first, ..] => (1..=3).contains(&label.len()) && *first != b'0',
        [] => false,
    };
    if !canonical || !label.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(label).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use proptest::prelude::*;
    use rstest::{fixture, rstest};
    use std::str::FromStr;

    const WEB: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
    const API: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 3);
    const DB: Ipv4Addr = Ipv4Addr::new(172, 19, 0, 2);

    const FORWARD: Policy = Policy {
        forward: true,
        ndots_set: false,
    };

    #[fixture]
    fn records() -> Records {
        let mut b = Records::builder();
        b.add_container("front", "Web", WEB)
            .unwrap()
            .add_alias("front", "www", WEB)
            .unwrap()
            .add_container("front", "api", API)
            .unwrap()
            .add_container("back", "db", DB)
            .unwrap()
            .add_alias("back", "web", DB)
            .unwrap();
        b.build()
    }

    fn nets(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn query(name: &str, qtype: RecordType) -> Message {
        let mut msg = Message::query();
        msg.metadata.id = 0xbeef;
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        msg
    }

    fn run(records: &Records, networks: &[&str], policy: Policy, msg: &Message) -> Handled {
        let bytes = msg.to_vec().unwrap();
        handle(records, &nets(networks), policy, &bytes, Transport::Udp)
    }

    fn reply_of(handled: Handled) -> (Message, Event) {
        match handled {
            Handled::Reply { bytes, event } => (Message::from_vec(&bytes).unwrap(), event),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn a_records(msg: &Message) -> Vec<Ipv4Addr> {
        msg.answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => a.0,
                other => panic!("not an A record: {other:?}"),
            })
            .collect()
    }

    #[rstest]
    #[case::name("web.", vec![WEB])]
    #[case::upper("WEB.", vec![WEB])]
    #[case::qualified("web.front.", vec![WEB])]
    #[case::qualified_mixed("Www.FRONT.", vec![WEB])]
    #[case::relative("aPi", vec![API])]
    fn a_answers(records: Records, #[case] name: &str, #[case] expected: Vec<Ipv4Addr>) {
        let (msg, event) = reply_of(run(
            &records,
            &["front"],
            FORWARD,
            &query(name, RecordType::A),
        ));
        assert_eq!(event, Event::Answered);
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert_eq!(a_records(&msg), expected);
        assert!(msg.answers.iter().all(|r| r.ttl == TTL));
        // The owner is the name as asked, letter case included.
        let asked = if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        };
        assert_eq!(msg.answers[0].name.to_ascii(), asked);
        assert_eq!(msg.metadata.id, 0xbeef);
        assert!(msg.metadata.recursion_desired && msg.metadata.recursion_available);
        assert!(!msg.metadata.truncation);
    }

    #[rstest]
    #[case::aaaa(RecordType::AAAA)]
    #[case::mx(RecordType::MX)]
    #[case::txt(RecordType::TXT)]
    #[case::ptr_on_a_name(RecordType::PTR)]
    fn known_name_other_type_is_nodata(records: Records, #[case] qtype: RecordType) {
        let (msg, event) = reply_of(run(&records, &["front"], FORWARD, &query("web.", qtype)));
        assert_eq!(event, Event::NoData);
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert!(msg.answers.is_empty());
        assert_eq!(msg.queries[0].query_type(), qtype);
    }

    #[rstest]
    fn first_network_wins(records: Records) {
        let (msg, _) = reply_of(run(
            &records,
            &["back", "front"],
            FORWARD,
            &query("web.", RecordType::A),
        ));
        assert_eq!(a_records(&msg), [DB]);
        let (msg, _) = reply_of(run(
            &records,
            &["front", "back"],
            FORWARD,
            &query("web.", RecordType::A),
        ));
        assert_eq!(a_records(&msg), [WEB]);
        // Names of either network resolve.
        let (msg, _) = reply_of(run(
            &records,
            &["front", "back"],
            FORWARD,
            &query("db.", RecordType::A),
        ));
        assert_eq!(a_records(&msg), [DB]);
    }

    #[rstest]
    #[case::container("2.0.18.172.in-addr.arpa.", Some("Web.front."))]
    #[case::upper("3.0.18.172.IN-ADDR.ARPA.", Some("api.front."))]
    #[case::other_network("2.0.19.172.in-addr.arpa.", None)]
    #[case::leading_zero("02.0.18.172.in-addr.arpa.", None)]
    #[case::short("0.18.172.in-addr.arpa.", None)]
    #[case::long("1.2.0.18.172.in-addr.arpa.", None)]
    #[case::ip6("2.0.0.0.ip6.arpa.", None)]
    fn ptr(records: Records, #[case] name: &str, #[case] expected: Option<&str>) {
        let handled = run(&records, &["front"], FORWARD, &query(name, RecordType::PTR));
        match expected {
            Some(target) => {
                let (msg, event) = reply_of(handled);
                assert_eq!(event, Event::Answered);
                assert_eq!(msg.answers.len(), 1);
                assert_eq!(msg.answers[0].ttl, TTL);
                match &msg.answers[0].data {
                    RData::PTR(ptr) => assert_eq!(ptr.0.to_ascii(), target),
                    other => panic!("not a PTR: {other:?}"),
                }
            }
            None => assert!(matches!(handled, Handled::Forward(_)), "{handled:?}"),
        }
    }

    #[rstest]
    #[case::unknown("nosuch.", RecordType::A)]
    #[case::other_network("db.", RecordType::A)]
    #[case::under_network_domain("nosuch.front.", RecordType::A)]
    #[case::external("example.com.", RecordType::AAAA)]
    #[case::chaos_class("web.", RecordType::A)]
    fn unknown_is_forwarded_or_servfail(
        records: Records,
        #[case] name: &str,
        #[case] qtype: RecordType,
    ) {
        let mut q = query(name, qtype);
        if name == "web." {
            q.queries[0].set_query_class(DNSClass::CH);
        }
        assert!(matches!(
            run(&records, &["front"], FORWARD, &q),
            Handled::Forward(_)
        ));
        let internal = Policy {
            forward: false,
            ndots_set: false,
        };
        let (msg, event) = reply_of(run(&records, &["front"], internal, &q));
        assert_eq!(event, Event::ServFail);
        assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(msg.queries, q.queries);
    }

    #[rstest]
    #[case::single_label_a("nosuch.", RecordType::A, true)]
    #[case::single_label_aaaa("nosuch", RecordType::AAAA, true)]
    #[case::dotted("nosuch.example.", RecordType::A, false)]
    #[case::mx("nosuch.", RecordType::MX, false)]
    fn ndots_set_keeps_single_labels_home(
        records: Records,
        #[case] name: &str,
        #[case] qtype: RecordType,
        #[case] nodata: bool,
    ) {
        let policy = Policy {
            forward: true,
            ndots_set: true,
        };
        let handled = run(&records, &["front"], policy, &query(name, qtype));
        if nodata {
            let (msg, event) = reply_of(handled);
            assert_eq!(event, Event::NoData);
            assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        } else {
            assert!(matches!(handled, Handled::Forward(_)));
        }
    }

    #[test]
    fn many_addresses_are_shuffled_and_truncated_without_edns() {
        let mut b = Records::builder();
        let ips: Vec<Ipv4Addr> = (1..=60).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        for ip in &ips {
            b.add_alias("net", "svc", *ip).unwrap();
        }
        let records = b.build();

        let (msg, _) = reply_of(run(
            &records,
            &["net"],
            FORWARD,
            &query("svc.", RecordType::A),
        ));
        let bytes = msg.to_vec().unwrap();
        assert!(bytes.len() <= UDP_PLAIN_MAX, "{} bytes", bytes.len());
        assert!(msg.metadata.truncation);
        assert!(!msg.answers.is_empty() && msg.answers.len() < ips.len());

        let mut big = query("svc.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        big.set_edns(edns);
        let (msg, _) = reply_of(run(&records, &["net"], FORWARD, &big));
        assert!(!msg.metadata.truncation);
        let mut got = a_records(&msg);
        assert_ne!(
            got, ips,
            "60 addresses came back in order (1 in 60! by chance)"
        );
        got.sort();
        assert_eq!(got, ips);
        assert_eq!(msg.edns.unwrap().max_payload(), ADVERTISED_PAYLOAD);

        // EDNS at 600 bytes: cut within 600, OPT kept.
        let mut mid = query("svc.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(600);
        mid.set_edns(edns);
        let bytes = match run(&records, &["net"], FORWARD, &mid) {
            Handled::Reply { bytes, .. } => bytes,
            other => panic!("{other:?}"),
        };
        assert!(
            bytes.len() <= 600 && bytes.len() > UDP_PLAIN_MAX,
            "{}",
            bytes.len()
        );
        let msg = Message::from_vec(&bytes).unwrap();
        assert!(msg.metadata.truncation && msg.edns.is_some());

        // TCP takes it all.
        let bytes = query("svc.", RecordType::A).to_vec().unwrap();
        let Handled::Reply { bytes, .. } =
            handle(&records, &nets(&["net"]), FORWARD, &bytes, Transport::Tcp)
        else {
            panic!("no reply over TCP");
        };
        let msg = Message::from_vec(&bytes).unwrap();
        assert!(!msg.metadata.truncation);
        assert_eq!(msg.answers.len(), ips.len());
    }

    #[rstest]
    #[case::empty(&[], Some(Event::DroppedShort))]
    #[case::eleven_bytes(&[0; 11], Some(Event::DroppedShort))]
    // A header saying one question, and no question.
    #[case::missing_question(&[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0], None)]
    // A label running past the end.
    #[case::truncated_label(&[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, b'a'], None)]
    // A compression pointer to itself.
    #[case::pointer_loop(&[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1], None)]
    // No question at all (QDCOUNT 0).
    #[case::no_question(&[0xab, 0xcd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], None)]
    fn malformed_queries(#[case] bytes: &[u8], #[case] dropped: Option<Event>) {
        let handled = handle(
            &Records::default(),
            &nets(&["net"]),
            FORWARD,
            bytes,
            Transport::Udp,
        );
        match dropped {
            Some(reason) => assert!(matches!(handled, Handled::Drop(r) if r == reason)),
            None => {
                let (msg, event) = reply_of(handled);
                assert_eq!(event, Event::FormErr);
                assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
                assert_eq!(msg.metadata.id, 0xabcd);
                assert_eq!(msg.metadata.message_type, MessageType::Response);
                assert!(msg.metadata.recursion_desired);
            }
        }
    }

    #[rstest]
    fn two_questions_are_formerr(records: Records) {
        let mut q = query("web.", RecordType::A);
        q.add_query(Query::query(Name::from_str("api.").unwrap(), RecordType::A));
        let (msg, event) = reply_of(run(&records, &["front"], FORWARD, &q));
        assert_eq!(event, Event::FormErr);
        assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
    }

    #[rstest]
    fn responses_are_dropped(records: Records) {
        let mut q = query("web.", RecordType::A);
        q.metadata.message_type = MessageType::Response;
        assert!(matches!(
            run(&records, &["front"], FORWARD, &q),
            Handled::Drop(Event::DroppedResponse)
        ));
    }

    #[rstest]
    #[case::status(OpCode::Status)]
    #[case::update(OpCode::Update)]
    #[case::notify(OpCode::Notify)]
    fn other_opcodes_are_notimp(records: Records, #[case] op: OpCode) {
        let mut q = query("web.", RecordType::A);
        q.metadata.op_code = op;
        let bytes = q.to_vec().unwrap();
        let handled = handle(&records, &nets(&["front"]), FORWARD, &bytes, Transport::Udp);
        let Handled::Reply { bytes, event } = handled else {
            panic!("{handled:?}");
        };
        assert_eq!(event, Event::NotImp);
        let h = Header::from_bytes(&bytes).unwrap();
        assert_eq!(h.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(h.metadata.op_code, op);
        assert_eq!(h.metadata.id, 0xbeef);
    }

    #[rstest]
    fn edns_version_one_is_badvers(records: Records) {
        let mut q = query("web.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_version(1);
        q.set_edns(edns);
        let (msg, event) = reply_of(run(&records, &["front"], FORWARD, &q));
        assert_eq!(event, Event::BadVers);
        // BADVERS shares code 16 with BADSIG (RFC 6891 section 9); the decoder names it BADSIG.
        assert_eq!(u16::from(msg.metadata.response_code), 16);
        assert_eq!(msg.edns.unwrap().version(), 0);
    }

    fn forward_query(q: &Message) -> ForwardQuery {
        match run(&Records::default(), &["net"], FORWARD, q) {
            Handled::Forward(f) => f,
            other => panic!("{other:?}"),
        }
    }

    fn upstream_reply(q: &Message, id: u16, rcode: ResponseCode) -> Message {
        let mut r = Message::response(id, OpCode::Query);
        r.metadata.response_code = rcode;
        r.queries = q.queries.clone();
        r
    }

    #[test]
    fn upstream_replies_are_judged() {
        let q = query("example.com.", RecordType::A);
        let fwd = forward_query(&q);
        let sent = fwd.upstream_query(0x1234);
        assert_eq!(&sent[..2], &[0x12, 0x34]);
        assert_eq!(sent[2..], q.to_vec().unwrap()[2..]);

        let mut ok = upstream_reply(&q, 0x1234, ResponseCode::NoError);
        ok.add_answer(Record::from_rdata(
            Name::from_str("example.com.").unwrap(),
            30,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        ));
        let ok_bytes = ok.to_vec().unwrap();
        let UpstreamReply::Answer(relayed) = fwd.judge(0x1234, &ok_bytes) else {
            panic!("answer not accepted");
        };
        assert_eq!(&relayed[..2], &[0xbe, 0xef]);
        assert_eq!(relayed[2..], ok_bytes[2..]);

        let nx = upstream_reply(&q, 0x1234, ResponseCode::NXDomain);
        assert!(matches!(
            fwd.judge(0x1234, &nx.to_vec().unwrap()),
            UpstreamReply::Answer(_)
        ));
        for rcode in [ResponseCode::ServFail, ResponseCode::Refused] {
            let r = upstream_reply(&q, 0x1234, rcode);
            assert_eq!(
                fwd.judge(0x1234, &r.to_vec().unwrap()),
                UpstreamReply::Failed
            );
        }
        // Wrong id, wrong question, a query instead of a response, garbage.
        assert_eq!(fwd.judge(0x4321, &ok_bytes), UpstreamReply::Mismatch);
        let other = upstream_reply(
            &query("example.org.", RecordType::A),
            0x1234,
            ResponseCode::NoError,
        );
        assert_eq!(
            fwd.judge(0x1234, &other.to_vec().unwrap()),
            UpstreamReply::Mismatch
        );
        let mut not_response = ok.clone();
        not_response.metadata.message_type = MessageType::Query;
        assert_eq!(
            fwd.judge(0x1234, &not_response.to_vec().unwrap()),
            UpstreamReply::Mismatch
        );
        assert_eq!(
            fwd.judge(0x1234, b"\x12\x34garbage"),
            UpstreamReply::Mismatch
        );
        // An error reply without a question is still an error reply.
        let mut bare = upstream_reply(&q, 0x1234, ResponseCode::ServFail);
        bare.queries.clear();
        assert_eq!(
            fwd.judge(0x1234, &bare.to_vec().unwrap()),
            UpstreamReply::Failed
        );
    }

    #[test]
    fn oversize_upstream_answer_is_cut_for_a_plain_udp_client() {
        let q = query("big.example.", RecordType::A);
        let fwd = forward_query(&q);
        let mut big = upstream_reply(&q, 7, ResponseCode::NoError);
        for i in 0..60 {
            big.add_answer(Record::from_rdata(
                Name::from_str("big.example.").unwrap(),
                30,
                RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
            ));
        }
        let bytes = big.to_vec().unwrap();
        assert!(bytes.len() > UDP_PLAIN_MAX);
        let UpstreamReply::Answer(cut) = fwd.judge(7, &bytes) else {
            panic!("not accepted");
        };
        assert!(cut.len() <= UDP_PLAIN_MAX);
        let cut = Message::from_vec(&cut).unwrap();
        assert!(cut.metadata.truncation);
        assert_eq!(cut.metadata.id, 0xbeef);
        assert_eq!(cut.queries, q.queries);
    }

    #[test]
    fn forward_error_replies_keep_question_and_edns() {
        let mut q = query("example.com.", RecordType::A);
        q.set_edns(Edns::new());
        let fwd = forward_query(&q);
        let msg = Message::from_vec(&fwd.error(ResponseCode::Refused).unwrap()).unwrap();
        assert_eq!(msg.metadata.response_code, ResponseCode::Refused);
        assert_eq!(msg.metadata.id, 0xbeef);
        assert_eq!(msg.queries, q.queries);
        assert!(msg.edns.is_some());
        assert_eq!(fwd.question(), "example.com. A");
    }

    #[test]
    fn lower_text_rejects_what_cannot_match() {
        let mut buf = [0u8; NAME_BUF];
        let name = Name::from_str("Web.FRONT.").unwrap();
        assert_eq!(lower_text(&name, &mut buf), Some("web.front"));
        let dotted = Name::from_labels([&b"web.front"[..]]).unwrap();
        assert_eq!(lower_text(&dotted, &mut buf), None);
        let binary = Name::from_labels([&b"w\x00b"[..]]).unwrap();
        assert_eq!(lower_text(&binary, &mut buf), None);
        assert_eq!(lower_text(&Name::root(), &mut buf), Some(""));
    }

    proptest! {
        /// Whatever the bytes, the handler returns (no panic), and any reply parses.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let records = records();
            for transport in [Transport::Udp, Transport::Tcp] {
                if let Handled::Reply { bytes: reply, .. } =
                    handle(&records, &nets(&["front"]), FORWARD, &bytes, transport)
                {
                    prop_assert!(Header::from_bytes(&reply).is_ok());
                }
            }
        }

        /// A valid header followed by random bytes (the interesting half of the input space).
        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300),
                                     qd in 0u16..3, an in 0u16..3, ar in 0u16..3) {
            let mut bytes = vec![0x12, 0x34, 0x01, 0x00];
            for count in [qd, an, 0, ar] {
                bytes.extend_from_slice(&count.to_be_bytes());
            }
            bytes.extend_from_slice(&body);
            let records = records();
            let handled = handle(&records, &nets(&["front"]), FORWARD, &bytes, Transport::Udp);
            if let Handled::Forward(fwd) = handled {
                // Judging garbage as an upstream reply must not panic either.
                let _ = fwd.judge(0x1234, &body);
            }
        }
    }
}
