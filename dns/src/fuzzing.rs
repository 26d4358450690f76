//! Entry point for the `dns` fuzz target in `fuzz/` (cargo fuzz), and for the unit test that
//! replays its corpus on the stable toolchain. Not part of the crate's API.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};

use crate::message::{Handled, Transport, UpstreamReply};
use crate::records::Records;
use crate::server::{DnsServer, ServerConfig};
use crate::store::RecordStore;

fn records() -> Records {
    let mut b = Records::builder();
    let web = Ipv4Addr::new(172, 18, 0, 2);
    b.add_container("net", "web", web).expect("valid name");
    b.add_alias("net", "www", web).expect("valid name");
    // One name with many addresses, so that UDP replies get truncated.
    for n in 3..60 {
        let ip = Ipv4Addr::new(172, 18, 0, n);
        b.add_container("net", &format!("c{n}"), ip)
            .expect("valid name");
        b.add_alias("net", "many", ip).expect("valid name");
    }
    b.add_container("other", "db", Ipv4Addr::new(172, 19, 0, 2))
        .expect("valid name");
    b.add_network("empty").expect("valid name");
    b.build()
}

/// `dns` target. The first byte sets the transport (bit 0: TCP), forwarding (bit 1: off, as on
/// internal networks) and `ndots` (bit 2); the next two (big-endian) say how many of the
/// following bytes are the client's query; what follows the query is an upstream's reply to it,
/// judged if the query is forwarded.
///
/// Checks that every reply parses as a DNS response no larger than the transport allows, and
/// that a judged upstream answer keeps the client's id.
pub fn query(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let (query, upstream) = rest.split_at(usize::from(u16::from_be_bytes(*len)).min(rest.len()));
    // What a UDP reply must fit in: 512 bytes, or the client's EDNS payload size (RFC 6891).
    let udp_limit = Message::from_vec(query).map_or(512, |m| usize::from(m.max_payload()));
    let transport = if flags & 1 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let local: SocketAddr = ([127, 0, 0, 11], 53).into();
    let mut config = ServerConfig::new(
        vec!["net".to_owned(), "other".to_owned(), "empty".to_owned()],
        vec![([192, 0, 2, 53], 53).into()],
    );
    config.forward = flags & 2 == 0;
    config.ndots_set = flags & 4 != 0;
    let store = Arc::new(RecordStore::new(records()));
    let server = DnsServer::new(store, config, DnsServer::limiter());
    match server.handle(query, transport, local) {
        Handled::Reply { bytes, .. } => check_reply(&bytes, transport, udp_limit),
        Handled::Drop(_) => {}
        Handled::Forward(forward) => {
            let id = 0x5a5a;
            let sent = forward.upstream_query(id);
            assert_eq!(sent.len(), query.len());
            for rcode in [ResponseCode::ServFail, ResponseCode::Refused] {
                if let Some(bytes) = forward.error(rcode) {
                    check_reply(&bytes, transport, udp_limit);
                }
            }
            let _ = forward.question();
            if let UpstreamReply::Answer(bytes) = forward.judge(id, upstream) {
                assert_eq!(bytes[..2], query[..2], "the client's id");
                if transport == Transport::Udp {
                    assert!(bytes.len() <= udp_limit, "{} > {udp_limit}", bytes.len());
                }
            }
        }
    }
}

fn check_reply(bytes: &[u8], transport: Transport, udp_limit: usize) {
    let reply = Message::from_vec(bytes).expect("the server's reply parses");
    assert_eq!(
        reply.metadata.message_type,
        hickory_proto::op::MessageType::Response
    );
    if transport == Transport::Udp {
        assert!(bytes.len() <= udp_limit, "{} > {udp_limit}", bytes.len());
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays `fuzz/corpus/dns/` (when present) so `cargo test` runs what the fuzzer found.
    #[test]
    fn dns_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dns");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("readable corpus directory").path();
            let data = std::fs::read(&path).expect("readable corpus file");
            let outcome = std::panic::catch_unwind(|| super::query(&data));
            assert!(outcome.is_ok(), "{} panics", path.display());
        }
    }

    #[test]
    fn tiny_inputs() {
        for len in 0..40 {
            super::query(&vec![0; len]);
            super::query(&vec![0xff; len]);
        }
    }
}
