//! The server on real loopback sockets: a client and fake upstreams in this process, on
//! 127.0.0.0/8 only. Every wait is bounded, so a broken server fails a test instead of hanging it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use netloom_dns::{
    DnsServer, Event, RecordStore, Records, ServeError, ServerConfig, TTL, Transport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const WEB: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
const API: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 3);
const DB: Ipv4Addr = Ipv4Addr::new(172, 19, 0, 2);
/// An address only fake upstreams hand out (TEST-NET-2, never contacted).
const EXTERNAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// How long a test waits for a reply that must come.
const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure a reply does not come.
const SILENCE: Duration = Duration::from_millis(300);

/// What `docker run --name web --hostname webhost --network-alias www --network front` and
/// friends put into the snapshot.
fn records() -> Records {
    let mut b = Records::builder();
    b.add_container("front", "web", WEB)
        .unwrap()
        .add_alias("front", "www", WEB)
        .unwrap()
        .add_alias("front", "3f4e5a6b7c8d", WEB)
        .unwrap()
        .add_alias("front", "webhost", WEB)
        .unwrap()
        .add_container("front", "api", API)
        .unwrap()
        .add_alias("front", "svc", WEB)
        .unwrap()
        .add_alias("front", "svc", API)
        .unwrap()
        .add_container("back", "db", DB)
        .unwrap();
    b.build()
}

struct Harness {
    server: DnsServer,
    store: Arc<RecordStore>,
    udp: SocketAddr,
    tcp: SocketAddr,
    cancel: CancellationToken,
    tasks: JoinSet<Result<(), ServeError>>,
}

impl Harness {
    async fn start(config: ServerConfig) -> Self {
        Self::with_limiter(config, DnsServer::limiter()).await
    }

    async fn with_limiter(config: ServerConfig, limiter: Arc<Semaphore>) -> Self {
        let store = Arc::new(RecordStore::new(records()));
        let server = DnsServer::new(Arc::clone(&store), config, limiter);
        // As the daemon does: it binds, the library serves.
        let udp_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp = udp_socket.local_addr().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tasks.spawn(server.clone().serve_udp(udp_socket, cancel.clone()));
        tasks.spawn(server.clone().serve_tcp(listener, cancel.clone()));
        Self {
            server,
            store,
            udp,
            tcp,
            cancel,
            tasks,
        }
    }

    async fn ask(&self, msg: &Message) -> Message {
        ask_udp(self.udp, msg).await
    }

    fn count(&self, event: Event) -> u64 {
        self.server.counters().get(event)
    }
}

fn local_only() -> ServerConfig {
    ServerConfig {
        forward: false,
        ..ServerConfig::new(vec!["front".to_owned()], Vec::new())
    }
}

fn forwarding(upstreams: Vec<SocketAddr>, upstream_timeout: Duration) -> ServerConfig {
    let mut config = ServerConfig::new(vec!["front".to_owned()], upstreams);
    config.upstreams.timeout = upstream_timeout;
    config
}

fn query(name: &str, qtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    msg
}

async fn ask_udp_raw(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (len, _) = timeout(wait, socket.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    buf.truncate(len);
    Some(buf)
}

async fn ask_udp(server: SocketAddr, msg: &Message) -> Message {
    let bytes = ask_udp_raw(server, &msg.to_vec().unwrap(), WAIT)
        .await
        .expect("no reply over UDP");
    let reply = Message::from_vec(&bytes).unwrap();
    assert_eq!(reply.metadata.id, msg.metadata.id, "id not preserved");
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    reply
}

async fn ask_tcp(server: SocketAddr, msg: &Message) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let bytes = msg.to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).await.unwrap();
    let reply = timeout(WAIT, read_framed(&mut stream))
        .await
        .expect("no reply over TCP");
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.id, msg.metadata.id);
    reply
}

async fn read_framed(stream: &mut TcpStream) -> Vec<u8> {
    let len = stream.read_u16().await.unwrap();
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

fn addresses(msg: &Message) -> Vec<Ipv4Addr> {
    msg.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0,
            other => panic!("not an A record: {other:?}"),
        })
        .collect()
}

fn sorted(mut ips: Vec<Ipv4Addr>) -> Vec<Ipv4Addr> {
    ips.sort();
    ips
}

// ---------------------------------------------------------------------------------------------
// Fake upstreams.

#[derive(Clone)]
enum Behaviour {
    /// NOERROR with one A record.
    Answer(Ipv4Addr),
    /// This response code, no records.
    Rcode(ResponseCode),
    /// Never answers.
    Silent,
    /// Answers after a delay.
    Slow(Duration, Ipv4Addr),
    /// NOERROR with an OPT of its own (payload 1400, DO, option 65002).
    WithEdns(Ipv4Addr),
}

struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<Vec<u8>>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn last_query(&self) -> Message {
        Message::from_vec(self.last.lock().unwrap().as_ref().expect("never asked")).unwrap()
    }
}

fn upstream_reply(request: &[u8], behaviour: &Behaviour) -> Vec<u8> {
    let request = Message::from_vec(request).unwrap();
    let mut reply = Message::response(request.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.queries = request.queries.clone();
    let owner = request.queries[0].name().clone();
    let a = |ip: Ipv4Addr| Record::from_rdata(owner.clone(), 42, RData::A(A(ip)));
    match behaviour {
        Behaviour::Answer(ip) | Behaviour::Slow(_, ip) => {
            reply.add_answer(a(*ip));
        }
        Behaviour::Rcode(rcode) => reply.metadata.response_code = *rcode,
        Behaviour::WithEdns(ip) => {
            reply.add_answer(a(*ip));
            let mut edns = Edns::new();
            edns.set_max_payload(1400).set_dnssec_ok(true);
            edns.options_mut()
                .insert(EdnsOption::Unknown(65002, b"upstream".to_vec()));
            reply.set_edns(edns);
        }
        Behaviour::Silent => unreachable!(),
    }
    reply.to_vec().unwrap()
}

/// A UDP upstream on `ip` (any 127.0.0.0/8 address), port chosen by the kernel.
async fn udp_upstream(ip: &str, behaviour: Behaviour) -> Upstream {
    let socket = Arc::new(UdpSocket::bind((ip, 0)).await.unwrap());
    let addr = socket.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(None));
    let (h, l) = (Arc::clone(&hits), Arc::clone(&last));
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            h.fetch_add(1, Ordering::SeqCst);
            let request = buf[..len].to_vec();
            *l.lock().unwrap() = Some(request.clone());
            let behaviour = behaviour.clone();
            let socket = Arc::clone(&socket);
            tokio::spawn(async move {
                match behaviour {
                    Behaviour::Silent => return,
                    Behaviour::Slow(delay, _) => tokio::time::sleep(delay).await,
                    _ => {}
                }
                let _ = socket
                    .send_to(&upstream_reply(&request, &behaviour), peer)
                    .await;
            });
        }
    });
    Upstream {
        addr,
        hits,
        last,
        _task: task,
    }
}

/// A TCP upstream: one length-prefixed query per connection.
async fn tcp_upstream(ip: &str, behaviour: Behaviour) -> Upstream {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(None));
    let (h, l) = (Arc::clone(&hits), Arc::clone(&last));
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let request = read_framed(&mut stream).await;
            *l.lock().unwrap() = Some(request.clone());
            let reply = upstream_reply(&request, &behaviour);
            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&reply);
            let _ = stream.write_all(&framed).await;
        }
    });
    Upstream {
        addr,
        hits,
        last,
        _task: task,
    }
}

// ---------------------------------------------------------------------------------------------
// Answers from the snapshot.

#[tokio::test]
async fn every_kind_of_name_resolves_case_insensitively() {
    let h = Harness::start(local_only()).await;
    for name in [
        "web.",
        "web.front.",
        "www.",
        "3f4e5a6b7c8d.",
        "webhost.",
        "WEB.",
        "Web.Front.",
        "wWw.",
        "3F4E5A6B7C8D.",
    ] {
        let reply = h.ask(&query(name, RecordType::A)).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert_eq!(addresses(&reply), [WEB], "{name}");
        assert_eq!(reply.answers[0].ttl, TTL);
        assert!(reply.metadata.recursion_desired, "RD not copied for {name}");
        assert!(reply.metadata.recursion_available, "RA not set for {name}");
        assert_eq!(reply.queries[0].name().to_ascii(), name);
    }
    // RD clear in the query stays clear in the reply.
    let mut no_rd = query("api.", RecordType::A);
    no_rd.metadata.recursion_desired = false;
    let reply = h.ask(&no_rd).await;
    assert!(!reply.metadata.recursion_desired);
    assert_eq!(addresses(&reply), [API]);
    assert_eq!(h.count(Event::Answered), 10);
}

#[tokio::test]
async fn a_shared_alias_answers_all_addresses_shuffled() {
    let h = Harness::start(local_only()).await;
    let reply = h.ask(&query("svc.", RecordType::A)).await;
    assert_eq!(sorted(addresses(&reply)), [WEB, API]);

    // Eight containers behind one alias: the order changes between queries.
    let mut b = Records::builder();
    let ips: Vec<Ipv4Addr> = (2..10).map(|i| Ipv4Addr::new(172, 18, 0, i)).collect();
    for ip in &ips {
        b.add_alias("front", "pool", *ip).unwrap();
    }
    h.store.replace(b.build());
    let mut orders = std::collections::HashSet::new();
    for _ in 0..20 {
        let got = addresses(&h.ask(&query("pool.", RecordType::A)).await);
        assert_eq!(sorted(got.clone()), ips);
        orders.insert(got);
    }
    assert!(orders.len() > 1, "20 queries, one order: not shuffled");
}

#[tokio::test]
async fn a_known_name_without_that_type_is_nodata() {
    let h = Harness::start(local_only()).await;
    for qtype in [
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::SRV,
    ] {
        let reply = h.ask(&query("web.", qtype)).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{qtype}"
        );
        assert!(reply.answers.is_empty(), "{qtype}");
    }
    assert_eq!(h.count(Event::NoData), 4);
}

#[tokio::test]
async fn ptr_answers_name_dot_network() {
    let h = Harness::start(local_only()).await;
    let reply = h
        .ask(&query("3.0.18.172.in-addr.arpa.", RecordType::PTR))
        .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(reply.answers[0].ttl, TTL);
    match &reply.answers[0].data {
        RData::PTR(ptr) => assert_eq!(ptr.0.to_ascii(), "api.front."),
        other => panic!("not a PTR: {other:?}"),
    }
}

#[tokio::test]
async fn other_networks_and_unknown_names_are_not_answered_locally() {
    // Internal network: nothing is forwarded, unknown names get SERVFAIL (Docker's answer).
    let h = Harness::start(local_only()).await;
    for (name, qtype) in [
        ("db.", RecordType::A),
        ("db.back.", RecordType::A),
        ("nosuch.front.", RecordType::A),
        ("example.com.", RecordType::A),
        ("2.0.19.172.in-addr.arpa.", RecordType::PTR),
    ] {
        let reply = h.ask(&query(name, qtype)).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::ServFail,
            "{name}"
        );
        assert!(reply.answers.is_empty());
    }
    assert_eq!(h.count(Event::Forwarded), 0);
}

#[tokio::test]
async fn a_container_on_two_networks_resolves_both_first_match_wins() {
    let mut b = Records::builder();
    b.add_container("front", "web", WEB)
        .unwrap()
        .add_container("back", "web", DB)
        .unwrap()
        .add_container("back", "db", Ipv4Addr::new(172, 19, 0, 3))
        .unwrap();
    let mut config = local_only();
    config.networks = vec!["back".to_owned(), "front".to_owned()];
    let h = Harness::start(config).await;
    h.store.replace(b.build());
    assert_eq!(addresses(&h.ask(&query("web.", RecordType::A)).await), [DB]);
    assert_eq!(
        addresses(&h.ask(&query("web.front.", RecordType::A)).await),
        [WEB]
    );
    assert_eq!(
        addresses(&h.ask(&query("db.", RecordType::A)).await),
        [Ipv4Addr::new(172, 19, 0, 3)]
    );

    // Disconnected from `back`: its names are gone at the next query.
    let mut config = local_only();
    config.networks = vec!["front".to_owned()];
    h.server.reconfigure(config);
    assert_eq!(
        addresses(&h.ask(&query("web.", RecordType::A)).await),
        [WEB]
    );
    let reply = h.ask(&query("db.", RecordType::A)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn a_snapshot_swap_changes_answers_at_once() {
    let h = Harness::start(local_only()).await;
    assert_eq!(
        addresses(&h.ask(&query("web.", RecordType::A)).await),
        [WEB]
    );

    // `web` stops, `cache` starts on the address.
    let mut b = Records::builder();
    b.add_container("front", "cache", WEB).unwrap();
    h.store.replace(b.build());

    let gone = h.ask(&query("web.", RecordType::A)).await;
    assert_eq!(gone.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        addresses(&h.ask(&query("cache.", RecordType::A)).await),
        [WEB]
    );
    let ptr = h
        .ask(&query("2.0.18.172.in-addr.arpa.", RecordType::PTR))
        .await;
    match &ptr.answers[0].data {
        RData::PTR(p) => assert_eq!(p.0.to_ascii(), "cache.front."),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tcp_answers_with_length_prefix_and_without_truncation() {
    let h = Harness::start(local_only()).await;
    let reply = ask_tcp(h.tcp, &query("web.", RecordType::A)).await;
    assert_eq!(addresses(&reply), [WEB]);

    // Sixty containers behind one alias: too big for 512 bytes.
    let mut b = Records::builder();
    let ips: Vec<Ipv4Addr> = (1..=60).map(|i| Ipv4Addr::new(172, 18, 1, i)).collect();
    for ip in &ips {
        b.add_alias("front", "big", *ip).unwrap();
    }
    h.store.replace(b.build());

    let over_tcp = ask_tcp(h.tcp, &query("big.", RecordType::A)).await;
    assert!(!over_tcp.metadata.truncation);
    assert_eq!(sorted(addresses(&over_tcp)), ips);

    // Over UDP without EDNS: at most 512 bytes, TC set, the addresses that fit.
    let msg = query("big.", RecordType::A);
    let raw = ask_udp_raw(h.udp, &msg.to_vec().unwrap(), WAIT)
        .await
        .unwrap();
    assert!(raw.len() <= 512, "{} bytes over UDP", raw.len());
    let over_udp = Message::from_vec(&raw).unwrap();
    assert!(over_udp.metadata.truncation);
    assert!(!over_udp.answers.is_empty());

    // With EDNS and a 4096-byte buffer it all fits.
    let mut msg = query("big.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    msg.set_edns(edns);
    let reply = h.ask(&msg).await;
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 60);
    assert!(reply.edns.is_some());

    // Several queries on one connection, answered in order.
    let mut stream = TcpStream::connect(h.tcp).await.unwrap();
    let mut ids = Vec::new();
    for name in ["big.", "nosuch.", "big."] {
        let q = query(name, RecordType::A);
        ids.push(q.metadata.id);
        let bytes = q.to_vec().unwrap();
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await.unwrap();
    }
    for id in ids {
        let reply = timeout(WAIT, read_framed(&mut stream)).await.unwrap();
        assert_eq!(Message::from_vec(&reply).unwrap().metadata.id, id);
    }
}

#[tokio::test]
async fn garbage_gets_formerr_or_nothing_and_the_server_goes_on() {
    let h = Harness::start(local_only()).await;
    // Too short for a header: no reply.
    assert_eq!(ask_udp_raw(h.udp, b"\x01\x02\x03", SILENCE).await, None);
    // A header and a broken question: FORMERR with our id.
    let garbage = [
        0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x3f, b'x',
    ];
    let reply = ask_udp_raw(h.udp, &garbage, WAIT).await.unwrap();
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(reply.metadata.id, 0xabcd);
    // A response sent to us: no reply.
    let mut response = query("web.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    assert_eq!(
        ask_udp_raw(h.udp, &response.to_vec().unwrap(), SILENCE).await,
        None
    );
    // Garbage over TCP too, a short message and an empty one: dropped, and the connection still
    // answers the query that follows.
    for garbage in [&[0u8, 5, 1, 2, 3, 4, 5][..], &[0, 0][..]] {
        let mut stream = TcpStream::connect(h.tcp).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        let q = query("web.", RecordType::A);
        let bytes = q.to_vec().unwrap();
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await.unwrap();
        let reply = timeout(WAIT, read_framed(&mut stream)).await.unwrap();
        assert_eq!(addresses(&Message::from_vec(&reply).unwrap()), [WEB]);
    }

    let reply = h.ask(&query("web.", RecordType::A)).await;
    assert_eq!(addresses(&reply), [WEB]);
    assert_eq!(h.count(Event::DroppedShort), 3);
    assert_eq!(h.count(Event::DroppedResponse), 1);
    assert_eq!(h.count(Event::FormErr), 1);
}

#[tokio::test]
async fn cancellation_stops_both_loops() {
    let mut h = Harness::start(local_only()).await;
    h.ask(&query("web.", RecordType::A)).await;
    h.cancel.cancel();
    for _ in 0..2 {
        let done = timeout(WAIT, h.tasks.join_next()).await.unwrap().unwrap();
        assert!(matches!(done, Ok(Ok(()))), "{done:?}");
    }
    // Nobody reads the sockets any more.
    let msg = query("web.", RecordType::A).to_vec().unwrap();
    assert_eq!(ask_udp_raw(h.udp, &msg, SILENCE).await, None);
}

// ---------------------------------------------------------------------------------------------
// Forwarding.

#[tokio::test]
async fn servfail_and_refused_move_on_to_the_next_upstream() {
    let first = udp_upstream("127.0.0.2", Behaviour::Rcode(ResponseCode::ServFail)).await;
    let second = udp_upstream("127.0.0.3", Behaviour::Rcode(ResponseCode::Refused)).await;
    let third = udp_upstream("127.0.0.4", Behaviour::Answer(EXTERNAL)).await;
    let h = Harness::start(forwarding(
        vec![first.addr, second.addr, third.addr],
        Duration::from_secs(4),
    ))
    .await;
    let msg = query("example.com.", RecordType::A);
    let reply = h.ask(&msg).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&reply), [EXTERNAL]);
    assert_eq!((first.hits(), second.hits(), third.hits()), (1, 1, 1));
    // Upstreams saw the client's question under ids of our own.
    assert_eq!(third.last_query().queries, msg.queries);
    assert_eq!(h.count(Event::UpstreamFailed), 2);
    assert_eq!(h.count(Event::UpstreamAnswered), 1);
}

#[tokio::test]
async fn nxdomain_is_passed_through_without_trying_further() {
    let first = udp_upstream("127.0.0.2", Behaviour::Rcode(ResponseCode::NXDomain)).await;
    let second = udp_upstream("127.0.0.3", Behaviour::Answer(EXTERNAL)).await;
    let h = Harness::start(forwarding(
        vec![first.addr, second.addr],
        Duration::from_secs(4),
    ))
    .await;
    let reply = h.ask(&query("nosuch.example.", RecordType::A)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!((first.hits(), second.hits()), (1, 0));
    // Names under the network's own domain are forwarded too, as by Docker.
    let reply = h.ask(&query("nosuch.front.", RecordType::A)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn a_silent_upstream_times_out_and_the_next_answers() {
    let silent = udp_upstream("127.0.0.2", Behaviour::Silent).await;
    let second = udp_upstream("127.0.0.3", Behaviour::Answer(EXTERNAL)).await;
    let h = Harness::start(forwarding(
        vec![silent.addr, second.addr],
        Duration::from_millis(200),
    ))
    .await;
    let started = tokio::time::Instant::now();
    let reply = h.ask(&query("example.com.", RecordType::A)).await;
    assert_eq!(addresses(&reply), [EXTERNAL]);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!((silent.hits(), second.hits()), (1, 1));
}

#[tokio::test]
async fn no_upstream_answering_means_servfail_and_at_most_three_are_tried() {
    let failing = [
        udp_upstream("127.0.0.2", Behaviour::Rcode(ResponseCode::ServFail)).await,
        udp_upstream("127.0.0.3", Behaviour::Silent).await,
        udp_upstream("127.0.0.4", Behaviour::Rcode(ResponseCode::Refused)).await,
    ];
    let fourth = udp_upstream("127.0.0.5", Behaviour::Answer(EXTERNAL)).await;
    let mut servers: Vec<SocketAddr> = failing.iter().map(|u| u.addr).collect();
    servers.push(fourth.addr);
    let h = Harness::start(forwarding(servers, Duration::from_millis(200))).await;
    let msg = query("example.com.", RecordType::A);
    let reply = h.ask(&msg).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(reply.queries, msg.queries);
    assert!(failing.iter().all(|u| u.hits() == 1));
    assert_eq!(fourth.hits(), 0, "a fourth upstream was asked");
    assert_eq!(h.count(Event::ServFail), 1);

    // An upstream with nobody listening fails fast (ICMP port unreachable) rather than by timeout.
    let closed = UdpSocket::bind("127.0.0.6:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    h.server.reconfigure(forwarding(
        vec![closed_addr, fourth.addr],
        Duration::from_secs(4),
    ));
    let started = tokio::time::Instant::now();
    let reply = h.ask(&query("example.com.", RecordType::A)).await;
    assert_eq!(addresses(&reply), [EXTERNAL]);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn internal_networks_and_empty_upstream_lists_do_not_forward() {
    let upstream = udp_upstream("127.0.0.2", Behaviour::Answer(EXTERNAL)).await;
    let mut internal = forwarding(vec![upstream.addr], Duration::from_secs(4));
    internal.forward = false;
    let h = Harness::start(internal).await;
    let reply = h.ask(&query("example.com.", RecordType::A)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    // Local names still resolve.
    assert_eq!(
        addresses(&h.ask(&query("web.", RecordType::A)).await),
        [WEB]
    );

    h.server
        .reconfigure(forwarding(Vec::new(), Duration::from_secs(4)));
    let reply = h.ask(&query("example.com.", RecordType::A)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn edns_passes_through_both_ways() {
    let upstream = udp_upstream("127.0.0.2", Behaviour::WithEdns(EXTERNAL)).await;
    let h = Harness::start(forwarding(vec![upstream.addr], Duration::from_secs(4))).await;
    let mut msg = query("example.com.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4000).set_dnssec_ok(true);
    edns.options_mut()
        .insert(EdnsOption::Unknown(65001, b"client".to_vec()));
    msg.set_edns(edns.clone());

    let reply = h.ask(&msg).await;
    // The upstream saw the client's OPT as sent...
    assert_eq!(upstream.last_query().edns, Some(edns));
    // ...and the client sees the upstream's, not ours.
    let got = reply.edns.clone().expect("no OPT in the reply");
    assert_eq!(got.max_payload(), 1400);
    assert!(got.flags().dnssec_ok);
    assert_eq!(
        got.options().get(65002.into()),
        Some(&EdnsOption::Unknown(65002, b"upstream".to_vec()))
    );
    assert_eq!(addresses(&reply), [EXTERNAL]);
}

#[tokio::test]
async fn tcp_queries_are_forwarded_over_tcp() {
    let upstream = tcp_upstream("127.0.0.2", Behaviour::Answer(EXTERNAL)).await;
    let h = Harness::start(forwarding(vec![upstream.addr], Duration::from_secs(4))).await;
    let reply = ask_tcp(h.tcp, &query("example.com.", RecordType::A)).await;
    assert_eq!(addresses(&reply), [EXTERNAL]);
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test]
async fn more_queries_in_flight_than_the_limit_are_refused() {
    let slow = udp_upstream(
        "127.0.0.2",
        Behaviour::Slow(Duration::from_millis(700), EXTERNAL),
    )
    .await;
    let limiter = Arc::new(Semaphore::new(4));
    let h = Harness::with_limiter(
        forwarding(vec![slow.addr], Duration::from_secs(4)),
        Arc::clone(&limiter),
    )
    .await;

    // Four forwarded queries take the four permits; the server reads datagrams in order, so
    // the fifth, sent after them, finds none.
    let mut clients = JoinSet::new();
    for i in 0..4 {
        let server = h.udp;
        clients.spawn(async move {
            ask_udp(server, &query(&format!("host{i}.example."), RecordType::A)).await
        });
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while slow.hits() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream never saw 4 queries"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(limiter.available_permits(), 0);

    let started = tokio::time::Instant::now();
    let refused = h.ask(&query("host4.example.", RecordType::A)).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "REFUSED should be immediate"
    );
    // Local names do not need a permit.
    assert_eq!(
        addresses(&h.ask(&query("web.", RecordType::A)).await),
        [WEB]
    );

    while let Some(reply) = clients.join_next().await {
        assert_eq!(addresses(&reply.unwrap()), [EXTERNAL]);
    }
    // The permits come back once the replies are out.
    let deadline = tokio::time::Instant::now() + WAIT;
    while limiter.available_permits() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "permits not returned"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let again = h.ask(&query("host5.example.", RecordType::A)).await;
    assert_eq!(addresses(&again), [EXTERNAL]);
    assert_eq!(h.count(Event::Refused), 1);
    assert_eq!(h.count(Event::Forwarded), 5);
}

#[tokio::test]
async fn answer_serves_any_transport() {
    let upstream = udp_upstream("127.0.0.2", Behaviour::Answer(EXTERNAL)).await;
    let store = Arc::new(RecordStore::new(records()));
    let server = DnsServer::new(
        store,
        forwarding(vec![upstream.addr], Duration::from_secs(4)),
        DnsServer::limiter(),
    );
    let local: SocketAddr = "172.18.0.1:53".parse().unwrap();
    let ask = |name: &str| query(name, RecordType::A).to_vec().unwrap();

    let reply = server.answer(&ask("web."), Transport::Udp, local).await;
    assert_eq!(
        addresses(&Message::from_vec(&reply.unwrap()).unwrap()),
        [WEB]
    );
    let reply = server
        .answer(&ask("example.com."), Transport::Udp, local)
        .await;
    assert_eq!(
        addresses(&Message::from_vec(&reply.unwrap()).unwrap()),
        [EXTERNAL]
    );
    assert_eq!(server.answer(b"short", Transport::Udp, local).await, None);
}

/// Queries are read and answered in batches (`recvmmsg`/`sendmmsg`): a burst from several
/// clients, sent without waiting, is answered in full, each client's replies in the order of
/// its queries, and a forwarded query in the middle neither holds back the local answers behind
/// it nor loses its own reply.
#[tokio::test]
async fn a_burst_is_answered_in_full_and_in_order() {
    let slow = udp_upstream(
        "127.0.0.2",
        Behaviour::Slow(Duration::from_millis(300), EXTERNAL),
    )
    .await;
    let h = Harness::start(forwarding(vec![slow.addr], Duration::from_secs(4))).await;
    const CLIENTS: usize = 3;
    const PER_CLIENT: u16 = 100;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    // Interleaved, as many clients' queries arrive at a busy server; the 50th query of client
    // 0 goes upstream.
    for i in 0..PER_CLIENT {
        for (c, client) in clients.iter().enumerate() {
            let name = if c == 0 && i == 50 {
                "far.example."
            } else if i % 2 == 0 {
                "web."
            } else {
                "api."
            };
            let mut msg = query(name, RecordType::A);
            msg.metadata.id = i;
            client.send_to(&msg.to_vec().unwrap(), h.udp).await.unwrap();
        }
    }
    let mut buf = vec![0u8; 65535];
    for (c, client) in clients.iter().enumerate() {
        let mut ids = Vec::new();
        while ids.len() < usize::from(PER_CLIENT) {
            let (len, _) = timeout(WAIT, client.recv_from(&mut buf))
                .await
                .expect("a reply of the burst is missing")
                .unwrap();
            let reply = Message::from_vec(&buf[..len]).unwrap();
            let id = reply.metadata.id;
            let expected = if c == 0 && id == 50 {
                EXTERNAL
            } else if id.is_multiple_of(2) {
                WEB
            } else {
                API
            };
            assert_eq!(addresses(&reply), [expected], "client {c}, query {id}");
            ids.push(id);
        }
        let mut local: Vec<u16> = (0..PER_CLIENT).collect();
        if c == 0 {
            // The forwarded reply comes last, after the 300 ms upstream.
            local.retain(|&id| id != 50);
            local.push(50);
        }
        assert_eq!(ids, local, "client {c}: replies out of order");
    }
    assert_eq!(
        h.count(Event::Query),
        u64::from(PER_CLIENT) * CLIENTS as u64
    );
    assert_eq!(h.count(Event::Forwarded), 1);
    assert_eq!(h.count(Event::SendFailed), 0);
}
