//! The embedded DNS server's hot path without sockets: one query in, one reply out
//! (`DnsServer::handle`), for a local container name among 1000 on the network, the AAAA
//! NODATA answer, a PTR, and a name that would be forwarded.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use netloom_dns::{DnsServer, Handled, RecordStore, Records, ServerConfig, Transport};

fn query(name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x1234;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.to_vec().unwrap()
}

fn server() -> DnsServer {
    let mut b = Records::builder();
    for i in 0..1000u32 {
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 18, 0, 2)) + i);
        b.add_container("benchnet", &format!("c{i}"), ip).unwrap();
    }
    let store = Arc::new(RecordStore::new(b.build()));
    // Upstreams are never contacted: `handle` only decides to forward.
    let config = ServerConfig::new(
        vec!["benchnet".to_owned()],
        vec![([198, 18, 0, 53], 53).into()],
    );
    DnsServer::new(store, config, DnsServer::limiter())
}

fn answer(c: &mut Criterion) {
    let server = server();
    let local: SocketAddr = ([127, 0, 0, 11], 53).into();
    let mut group = c.benchmark_group("dns/handle");
    for (label, q) in [
        ("a_local_name", query("c500.", RecordType::A)),
        ("a_name_dot_network", query("c500.benchnet.", RecordType::A)),
        ("aaaa_nodata", query("c500.", RecordType::AAAA)),
        ("ptr", query("246.1.18.172.in-addr.arpa.", RecordType::PTR)),
        ("forwarded_name", query("example.com.", RecordType::A)),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| match server.handle(&q, Transport::Udp, local) {
                Handled::Reply { bytes, .. } => bytes.len(),
                Handled::Forward(_) => 1,
                Handled::Drop(_) => 0,
            })
        });
    }
    group.finish();
}

criterion_group!(benches, answer);
criterion_main!(benches);
