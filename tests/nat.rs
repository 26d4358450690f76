//! The userspace gateway (SPEC sections 3 and 5): outbound NAT (TCP, UDP and ICMP echo from a
//! container to an address outside its network leave through sockets the daemon opens in its
//! own namespace) and published ports (`-p`: the daemon binds host sockets and forwards to the
//! container, which sees the client's real address and port).
//!
//! Topology per test: the daemon in its own namespace; an [`Outside`] namespace joined to it by
//! a veth (daemon side 198.18.0.1, outside 198.18.0.2, .3 and 198.19.0.10 behind the daemon's
//! default route). Servers and clients are tokio or std sockets of this test process, created
//! on threads that joined the right namespace (`setns`), so each test knows exactly what the
//! peer saw. Containers run `sleep`; a socket bound in a container's namespace is, for the
//! network, that container's server. `ping` and one python client run inside containers
//! through `netloom exec`.

use std::io::{BufRead as _, BufReader, ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{
    DAEMON_VETH_ADDR, Daemon, NsTask, OUTSIDE_ADDR, OUTSIDE_FAR_ADDR, Outside, has_own_netns,
    in_netns, nsenter, tempdir,
};

// ---------------------------------------------------------------------------------------------
// Addresses, containers, daemon state
// ---------------------------------------------------------------------------------------------

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// `netloom run -d ARGS`, which must succeed.
fn run_d(d: &Daemon, args: &[&str]) {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    d.netloom(&a).ok();
}

/// `run -d --network NET --name NAME [EXTRA...] -- sleep 300`.
fn sleeper(d: &Daemon, net: &str, name: &str, extra: &[&str]) {
    let mut a = vec!["--network", net, "--name", name];
    a.extend_from_slice(extra);
    a.extend(["--", "sleep", "300"]);
    run_d(d, &a);
}

fn ip_of(d: &Daemon, name: &str) -> String {
    d.netloom(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        name,
    ])
    .ok()
    .stdout
    .trim()
    .to_owned()
}

/// The pid of a running container's process: its `/proc/PID/ns/net` is the container's
/// network namespace (neither the test's nor the daemon's).
/// A container's address on `net`.
fn container_ip(d: &Daemon, name: &str, net: &str) -> std::net::IpAddr {
    let format = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
    let out = d.netloom(&["inspect", "-f", &format, name]).ok().stdout;
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("the address of {name} on {net}: {out:?}"))
}

fn container_pid(d: &Daemon, name: &str) -> u32 {
    let out = d
        .netloom(&["inspect", "-f", "{{.State.Pid}}", name])
        .ok()
        .stdout;
    let pid: u32 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("State.Pid of {name}: {out:?}"));
    let ns = |p: u32| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
    assert!(
        pid != 0 && has_own_netns(pid) && ns(pid) != ns(d.pid()),
        "{name}: pid {pid} is not in a namespace of its own"
    );
    pid
}

/// Whether a container is running; a container that `run` refused to create is not.
fn is_running(d: &Daemon, name: &str) -> bool {
    let r = d.netloom(&["inspect", "-f", "{{.State.Running}}", name]);
    r.code == 0 && r.stdout.trim() == "true"
}

/// `netloom stats --format json`: the daemon's `GET /netloom/stats`, `{"Drops":{..},
/// "Refusals":{..},"Nat":{"<network>":{"TcpFlows","UdpFlows","IcmpFlows","Published"}}}`.
fn stats(d: &Daemon) -> serde_json::Value {
    let out = d.netloom(&["stats", "--format", "json"]).ok().stdout;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("netloom stats --format json: {e}: {out}"))
}

/// The gateway's counters for one network.
fn nat_stats(d: &Daemon, net: &str) -> serde_json::Value {
    stats(d)["Nat"][net].clone()
}

/// Polls the stats until the network's NAT table holds no TCP flow (closed flows may linger
/// for a TIME-WAIT-like while), for at most 70 s.
fn wait_for_no_tcp_flows(d: &Daemon, net: &str) {
    let deadline = Instant::now() + Duration::from_secs(70);
    loop {
        let stats = stats(d);
        let gauges = &stats["Nat"][net];
        if gauges["TcpFlows"].as_u64() == Some(0) && gauges["TcpSpliced"].as_u64() == Some(0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the TCP flows of {net} were not released within 70 s: {stats}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The ports' lines of `netloom port NAME`.
fn port_lines(d: &Daemon, args: &[&str]) -> String {
    let mut a = vec!["port"];
    a.extend_from_slice(args);
    d.netloom(&a).ok().stdout
}

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

/// `len` pseudo-random bytes determined by `seed` (splitmix64).
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ 0x6e65_746c_6f6f_6d21;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Connection `id`'s payload: 4 to 64 KiB, its length and bytes fixed by `id`.
fn payload(id: u64) -> Vec<u8> {
    let r = u64::from_le_bytes(pseudo_random(!id, 8).try_into().unwrap());
    pseudo_random(id, 4096 + (r % (60 * 1024 + 1)) as usize)
}

/// FNV-1a (64 bits): a checksum the half-close servers report.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------------
// Servers (tokio, on a thread inside a namespace; stopped when their task drops)
// ---------------------------------------------------------------------------------------------

/// A listening TCP socket (backlog 2048); call inside a tokio runtime.
fn listen(addr: SocketAddr) -> tokio::net::TcpListener {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    s.bind(addr)
        .unwrap_or_else(|e| panic!("bind {addr} for a test server: {e}"));
    s.listen(2048).unwrap()
}

/// Accepts forever, handling each connection in its own task.
async fn accept_loop<F, Fut>(l: tokio::net::TcpListener, handle: F)
where
    F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match l.accept().await {
            Ok((s, peer)) => {
                tokio::spawn(handle(s, peer));
            }
            // E.g. EMFILE: let the test's own timeouts report it, without spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The peer-echo protocol: first a line `PEER LOCALPORT\n` (the address the server saw and the
/// port it was reached on), then everything received, echoed, until EOF; then FIN.
async fn peer_echo(mut s: tokio::net::TcpStream, peer: SocketAddr) {
    let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
    let (mut r, mut w) = s.split();
    if w.write_all(format!("{peer} {port}\n").as_bytes())
        .await
        .is_ok()
    {
        let _ = tokio::io::copy(&mut r, &mut w).await;
        let _ = w.shutdown().await;
    }
}

/// Plain echo until EOF, then FIN.
async fn echo(mut s: tokio::net::TcpStream, _peer: SocketAddr) {
    let (mut r, mut w) = s.split();
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

/// Half-close, client first: reads until the client's FIN, then answers `LEN FNV\n` and closes.
async fn reply_after_eof(mut s: tokio::net::TcpStream, _peer: SocketAddr) {
    let mut got = Vec::new();
    if s.read_to_end(&mut got).await.is_ok() {
        let _ = s
            .write_all(format!("{} {:016x}\n", got.len(), fnv(&got)).as_bytes())
            .await;
        let _ = s.shutdown().await;
    }
}

/// Starts `handler` servers on `addrs` in the namespace of `pid`.
fn tcp_server<F, Fut>(pid: u32, addrs: &[SocketAddr], handler: F) -> NsTask<()>
where
    F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let addrs = addrs.to_vec();
    NsTask::start(pid, move || {
        let listeners: Vec<_> = addrs.iter().map(|a| listen(*a)).collect();
        async move {
            let mut set = tokio::task::JoinSet::new();
            for l in listeners {
                set.spawn(accept_loop(l, handler.clone()));
            }
            while set.join_next().await.is_some() {}
        }
    })
}

/// Half-close, server first: sends `bye\n` and its FIN at once, then reads until the client's
/// FIN and reports `(length, FNV)` of what arrived after its own FIN.
fn fin_first_server(
    pid: u32,
    addr: SocketAddr,
) -> (NsTask<()>, std::sync::mpsc::Receiver<(usize, u64)>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let task = tcp_server(pid, &[addr], move |mut s, _peer| {
        let tx = tx.clone();
        async move {
            if s.write_all(b"bye\n").await.is_err() || s.shutdown().await.is_err() {
                return;
            }
            let mut got = Vec::new();
            if s.read_to_end(&mut got).await.is_ok() {
                let _ = tx.send((got.len(), fnv(&got)));
            }
        }
    });
    (task, rx)
}

/// UDP peer-echo: answers each datagram with `PEER LOCALPORT ` followed by the datagram.
fn udp_peer_echo_server(pid: u32, addr: SocketAddr) -> NsTask<()> {
    NsTask::start(pid, move || {
        let s = std::net::UdpSocket::bind(addr)
            .unwrap_or_else(|e| panic!("bind udp {addr} for a test server: {e}"));
        s.set_nonblocking(true).unwrap();
        let s = tokio::net::UdpSocket::from_std(s).unwrap();
        async move {
            let port = addr.port();
            let mut buf = vec![0; 65536];
            loop {
                if let Ok((n, peer)) = s.recv_from(&mut buf).await {
                    let mut out = format!("{peer} {port} ").into_bytes();
                    out.extend_from_slice(&buf[..n]);
                    let _ = s.send_to(&out, peer).await;
                }
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Clients (std, blocking, bounded; call inside `in_netns`)
// ---------------------------------------------------------------------------------------------

fn connect(target: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&target, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    Ok(s)
}

/// What a peer-echo server reported, and the client's own address.
#[derive(Debug)]
struct Seen {
    /// The client address the server saw.
    peer: SocketAddr,
    /// The port the server was reached on.
    server_port: u16,
    /// The client socket's own address.
    local: SocketAddr,
}

/// One peer-echo exchange with `target`: `msg` must come back unchanged after the first line.
fn peer_echo_client(target: SocketAddr, msg: &[u8]) -> std::io::Result<Seen> {
    let s = connect(target)?;
    let local = s.local_addr()?;
    let mut reader = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let (peer, port) = line
        .trim_end()
        .split_once(' ')
        .unwrap_or_else(|| panic!("{target}: not a peer-echo greeting: {line:?}"));
    // Send while reading the echo, so no buffer on the way has to hold all of `msg`.
    let mut w = s.try_clone()?;
    let rest = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            w.write_all(msg)?;
            w.shutdown(Shutdown::Write)
        });
        let mut rest = Vec::new();
        let read = reader.read_to_end(&mut rest);
        writer.join().unwrap()?;
        read.map(|_| rest)
    })?;
    if rest != msg {
        let at = rest.iter().zip(msg).position(|(a, b)| a != b);
        panic!(
            "{target}: sent {} bytes, got {} back, first difference at {at:?}",
            msg.len(),
            rest.len()
        );
    }
    Ok(Seen {
        peer: peer.parse().unwrap(),
        server_port: port.parse().unwrap(),
        local,
    })
}

/// Sends `msg` on a connected UDP socket until an answer comes (at most 5 tries of 2 s);
/// the first error other than a timeout is returned as is.
fn udp_ask(sock: &UdpSocket, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = vec![0; 65536];
    let mut last = None;
    for _ in 0..5 {
        sock.send(msg)?;
        match sock.recv(&mut buf) {
            Ok(n) => return Ok(buf[..n].to_vec()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                last = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap())
}

fn udp_connected(target: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect(target).unwrap();
    s
}

/// Half-close, client first: send `data`, FIN, then read the server's reply until its FIN.
fn client_fin_first(target: SocketAddr, data: &[u8]) {
    let mut s = connect(target).unwrap_or_else(|e| panic!("connect {target}: {e}"));
    s.write_all(data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .unwrap_or_else(|e| panic!("{target}: reading the reply after our FIN: {e}"));
    assert_eq!(
        reply,
        format!("{} {:016x}\n", data.len(), fnv(data)),
        "{target}: the server's reply after the client's FIN"
    );
}

/// Half-close, server first: read the server's greeting until its FIN, then still send
/// `data` and FIN (the server reports what it got).
fn server_fin_first(target: SocketAddr, data: &[u8]) {
    let mut s = connect(target).unwrap_or_else(|e| panic!("connect {target}: {e}"));
    let mut greeting = Vec::new();
    s.read_to_end(&mut greeting)
        .unwrap_or_else(|e| panic!("{target}: reading until the server's FIN: {e}"));
    assert_eq!(greeting, b"bye\n", "{target}");
    s.write_all(data)
        .unwrap_or_else(|e| panic!("{target}: sending after the server's FIN: {e}"));
    s.shutdown(Shutdown::Write).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Outbound NAT
// ---------------------------------------------------------------------------------------------

/// A daemon with an outside, network `net1` and a container `c1` on it.
fn nat_setup(dir: &std::path::Path) -> (Daemon, Outside) {
    let d = Daemon::start(dir);
    let outside = Outside::new(&d);
    d.netloom(&["network", "create", "net1"]).ok();
    sleeper(&d, "net1", "c1", &[]);
    (d, outside)
}

#[test]
fn nat_tcp_reaches_the_outside_from_the_daemons_address() {
    let dir = tempdir();
    let (d, outside) = nat_setup(dir.path());
    let server = tcp_server(outside.pid(), &[sa("0.0.0.0", 8000)], peer_echo);
    // The fixture: the daemon's namespace itself reaches the server (no netloom involved).
    let direct = in_netns(d.pid(), || {
        peer_echo_client(sa(OUTSIDE_ADDR, 8000), b"direct")
    })
    .expect("the daemon's namespace reaches the outside");
    assert_eq!(direct.peer.ip().to_string(), DAEMON_VETH_ADDR);

    let c1 = container_pid(&d, "c1");
    for (dest, what) in [
        (OUTSIDE_ADDR, "on the veth's subnet"),
        (OUTSIDE_FAR_ADDR, "behind the daemon's default route"),
    ] {
        let msg = pseudo_random(7, 100_000);
        let seen = in_netns(c1, || peer_echo_client(sa(dest, 8000), &msg))
            .unwrap_or_else(|e| panic!("c1 → {dest}:8000 ({what}): {e}"));
        // Masqueraded: the server sees the daemon's namespace, not 172.18.0.2.
        assert_eq!(
            seen.peer.ip().to_string(),
            DAEMON_VETH_ADDR,
            "{dest} ({what}): {seen:?}"
        );
        assert_eq!(seen.server_port, 8000);
        assert_eq!(seen.local.ip().to_string(), "172.18.0.2");
    }

    // A process of the container itself (python through `netloom exec`).
    let client = "import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=10)\nf=s.makefile('rb')\nline=f.readline().decode().strip()\ns.sendall(b'via-exec')\ns.shutdown(socket.SHUT_WR)\nprint(line.split(':')[0], s.getsockname()[0], f.read().decode())\n";
    let r = d.netloom(&[
        "exec",
        "c1",
        "timeout",
        "30",
        "python3",
        "-c",
        client,
        OUTSIDE_ADDR,
        "8000",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "198.18.0.1 172.18.0.2 via-exec\n"),
        "{r:?}"
    );
    drop(server);
}

#[test]
fn nat_udp_echo_from_a_container() {
    let dir = tempdir();
    let (d, outside) = nat_setup(dir.path());
    let _server = udp_peer_echo_server(outside.pid(), sa("0.0.0.0", 8053));
    let direct = in_netns(d.pid(), || {
        udp_ask(&udp_connected(sa(OUTSIDE_ADDR, 8053)), b"direct")
    })
    .expect("the daemon's namespace reaches the outside UDP server");
    assert!(direct.ends_with(b" 8053 direct"));

    let c1 = container_pid(&d, "c1");
    let answers: Vec<String> = in_netns(c1, || {
        let s = udp_connected(sa(OUTSIDE_ADDR, 8053));
        ["one", "two"]
            .iter()
            .map(|m| {
                let a = udp_ask(&s, m.as_bytes())
                    .unwrap_or_else(|e| panic!("c1 → {OUTSIDE_ADDR}:8053 udp: {e}"));
                String::from_utf8(a).unwrap()
            })
            .collect()
    });
    // Both datagrams of the flow leave from the daemon's address, and from one port.
    let seen: Vec<(String, &str)> = answers
        .iter()
        .map(|a| {
            let (peer, rest) = a.split_once(' ').unwrap();
            let peer: SocketAddr = peer.parse().unwrap();
            (peer.to_string(), rest)
        })
        .collect();
    assert!(
        seen[0].0.starts_with("198.18.0.1:"),
        "the server saw {answers:?}"
    );
    assert_eq!(seen[0].0, seen[1].0, "one flow, one outside port");
    assert_eq!((seen[0].1, seen[1].1), ("8053 one", "8053 two"));
}

#[test]
fn nat_ping_from_a_container() {
    let dir = tempdir();
    let (d, _outside) = nat_setup(dir.path());
    for dest in [OUTSIDE_ADDR, OUTSIDE_FAR_ADDR] {
        let r = d.netloom(&["exec", "c1", "ping", "-c", "1", "-W", "2", dest]);
        assert_eq!(r.code, 0, "c1 cannot ping {dest}: {r:?}");
        assert!(r.stdout.contains(&format!("from {dest}")), "{r:?}");
    }
}

#[test]
fn nat_tcp_refusal_reaches_the_container_at_once() {
    let dir = tempdir();
    let (d, _outside) = nat_setup(dir.path());
    // Nothing listens on 8009 outside: the fixture's kernel answers with a reset.
    let direct = in_netns(d.pid(), || connect(sa(OUTSIDE_ADDR, 8009)).map(drop));
    assert_eq!(
        direct.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused)
    );
    let c1 = container_pid(&d, "c1");
    // The reset is carried back: refused at once, not a timeout (10 s) nor an accepted
    // connection that breaks later.
    let started = Instant::now();
    let r = in_netns(c1, || connect(sa(OUTSIDE_ADDR, 8009)).map(drop));
    let took = started.elapsed();
    assert_eq!(
        r.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused),
        "after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "refused only after {took:?}");
}

#[test]
fn nat_udp_port_unreachable_reaches_the_container() {
    let dir = tempdir();
    let (d, _outside) = nat_setup(dir.path());
    let direct = in_netns(d.pid(), || {
        udp_ask(&udp_connected(sa(OUTSIDE_ADDR, 8009)), b"anyone?")
    });
    assert_eq!(
        direct.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused),
        "the fixture: the outside answers ICMP port unreachable"
    );
    let c1 = container_pid(&d, "c1");
    let r = in_netns(c1, || {
        udp_ask(&udp_connected(sa(OUTSIDE_ADDR, 8009)), b"anyone?")
    });
    assert_eq!(
        r.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused),
        "ICMP port unreachable carried back to the container's UDP socket"
    );
}

/// Either side may send its FIN first and still receive (RFC 9293 section 3.6): the client
/// closes first and the server answers after that; then the server closes first and the
/// client still sends.
#[test]
fn half_close_through_nat() {
    let dir = tempdir();
    let (d, outside) = nat_setup(dir.path());
    let data = pseudo_random(11, 200_000);
    let _eof_server = tcp_server(outside.pid(), &[sa("0.0.0.0", 8001)], reply_after_eof);
    let (_fin_server, fin_reports) = fin_first_server(outside.pid(), sa("0.0.0.0", 8002));
    let c1 = container_pid(&d, "c1");
    in_netns(c1, || client_fin_first(sa(OUTSIDE_ADDR, 8001), &data));
    in_netns(c1, || server_fin_first(sa(OUTSIDE_ADDR, 8002), &data));
    assert_eq!(
        fin_reports.recv_timeout(Duration::from_secs(20)),
        Ok((data.len(), fnv(&data))),
        "outside server: what c1 sent after the server's FIN"
    );
}

/// As [`half_close_through_nat`], from the outside to a container's published ports.
#[test]
fn half_close_through_a_published_port() {
    let dir = tempdir();
    let (d, outside) = nat_setup(dir.path());
    let data = pseudo_random(12, 200_000);
    sleeper(&d, "net1", "web", &["-p", "8081:81", "-p", "8082:82"]);
    let web = container_pid(&d, "web");
    let _web_eof = tcp_server(web, &[sa("0.0.0.0", 81)], reply_after_eof);
    let (_web_fin, web_reports) = fin_first_server(web, sa("0.0.0.0", 82));
    in_netns(outside.pid(), || {
        client_fin_first(sa(DAEMON_VETH_ADDR, 8081), &data)
    });
    in_netns(outside.pid(), || {
        server_fin_first(sa(DAEMON_VETH_ADDR, 8082), &data)
    });
    assert_eq!(
        web_reports.recv_timeout(Duration::from_secs(20)),
        Ok((data.len(), fnv(&data))),
        "container server: what the outside client sent after the server's FIN"
    );
}

// ---------------------------------------------------------------------------------------------
// Published ports
// ---------------------------------------------------------------------------------------------

#[test]
fn published_tcp_ports_reach_the_container_with_the_clients_address() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let outside = Outside::new(&d);
    d.netloom(&["network", "create", "pub"]).ok();
    sleeper(&d, "pub", "web1", &["-p", "8081:80"]);
    sleeper(&d, "pub", "web2", &["-p", "127.0.0.1:8082:80"]);
    sleeper(&d, "pub", "web3", &["-p", "80"]);
    sleeper(&d, "pub", "rng", &["-p", "8090-8091:90-91"]);
    let _servers: Vec<_> = [
        ("web1", vec![80]),
        ("web2", vec![80]),
        ("web3", vec![80]),
        ("rng", vec![90, 91]),
    ]
    .into_iter()
    .map(|(name, ports)| {
        let addrs: Vec<_> = ports.iter().map(|p| sa("0.0.0.0", *p)).collect();
        tcp_server(container_pid(&d, name), &addrs, peer_echo)
    })
    .collect();

    // `-p 80`: a host port from the daemon namespace's ephemeral range.
    let web3 = port_lines(&d, &["web3", "80"]);
    let random: u16 = web3
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("0.0.0.0:"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("netloom port web3 80: {web3:?}"));
    assert_eq!(web3, format!("0.0.0.0:{random}\n[::]:{random}\n"));
    let range = nsenter(d.pid(), &["cat", "/proc/sys/net/ipv4/ip_local_port_range"])
        .ok()
        .stdout;
    let (lo, hi) = range.trim().split_once('\t').unwrap();
    assert!(
        (lo.parse().unwrap()..=hi.parse().unwrap()).contains(&random),
        "{random} outside {range}"
    );

    let msg = pseudo_random(3, 50_000);
    let client = |pid: u32, target: SocketAddr| {
        in_netns(pid, || peer_echo_client(target, &msg))
            .unwrap_or_else(|e| panic!("{target} from the namespace of {pid}: {e}"))
    };
    let refused = |pid: u32, target: SocketAddr| {
        let r = in_netns(pid, || connect(target).map(drop));
        assert_eq!(
            r.map_err(|e| e.kind()),
            Err(ErrorKind::ConnectionRefused),
            "{target} must not be reachable from the namespace of {pid}"
        );
    };
    let gateway: std::net::IpAddr = "172.18.0.1".parse().unwrap();

    for (name, host, container) in [
        ("web1", 8081, 80),
        ("web3", random, 80),
        ("rng", 8090, 90),
        ("rng", 8091, 91),
    ] {
        // A client with a routable address (the daemon's veth address, the outside) is seen
        // as itself, address and port.
        for (pid, from) in [(d.pid(), "daemon"), (outside.pid(), "outside")] {
            let seen = client(pid, sa(DAEMON_VETH_ADDR, host));
            assert_eq!(seen.peer, seen.local, "{from} → {host}: {seen:?}");
            assert_eq!(seen.server_port, container, "{from} → {host}");
        }
        // A loopback client cannot be answered at its own address inside the container: it is
        // spliced in from the container's own namespace, so it is seen as the container's own
        // address (`--no-port-splice`: as the gateway, see tests/ports.rs).
        let seen = client(d.pid(), sa("127.0.0.1", host));
        assert_eq!(
            (seen.peer.ip(), seen.server_port),
            (container_ip(&d, name, "pub"), container),
            "127.0.0.1:{host}: {seen:?}"
        );
        assert_ne!(seen.peer.ip(), gateway);
    }
    // No host address: published on IPv6 too.
    let seen = client(d.pid(), sa("::1", 8081));
    assert_eq!(
        (seen.peer.ip(), seen.server_port),
        (container_ip(&d, "web1", "pub"), 80),
        "[::1]:8081: {seen:?}"
    );
    // 127.0.0.1:8082 from the daemon's namespace only.
    let seen = client(d.pid(), sa("127.0.0.1", 8082));
    assert_eq!(
        (seen.peer.ip(), seen.server_port),
        (container_ip(&d, "web2", "pub"), 80)
    );
    refused(d.pid(), sa(DAEMON_VETH_ADDR, 8082));
    refused(outside.pid(), sa(DAEMON_VETH_ADDR, 8082));
    refused(d.pid(), sa("::1", 8082));
    // Nothing else was opened.
    refused(outside.pid(), sa(DAEMON_VETH_ADDR, 8092));
}

#[test]
fn published_udp_port_reaches_the_container_with_the_clients_address() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let outside = Outside::new(&d);
    d.netloom(&["network", "create", "pub"]).ok();
    sleeper(&d, "pub", "dns1", &["-p", "5353:5353/udp"]);
    let _server = udp_peer_echo_server(container_pid(&d, "dns1"), sa("0.0.0.0", 5353));

    let (answer, local) = in_netns(outside.pid(), || {
        let s = udp_connected(sa(DAEMON_VETH_ADDR, 5353));
        let a = udp_ask(&s, b"q1").unwrap_or_else(|e| panic!("outside → 5353/udp: {e}"));
        (String::from_utf8(a).unwrap(), s.local_addr().unwrap())
    });
    assert_eq!(
        answer,
        format!("{} 5353 q1", sa(OUTSIDE_ADDR, local.port()))
    );
    // A second client socket is a second flow, seen with its own port.
    let (answer, local) = in_netns(outside.pid(), || {
        let s = udp_connected(sa(DAEMON_VETH_ADDR, 5353));
        let a = udp_ask(&s, b"q2").unwrap_or_else(|e| panic!("outside → 5353/udp: {e}"));
        (String::from_utf8(a).unwrap(), s.local_addr().unwrap())
    });
    assert_eq!(
        answer,
        format!("{} 5353 q2", sa(OUTSIDE_ADDR, local.port()))
    );
    for target in [sa("127.0.0.1", 5353), sa(DAEMON_VETH_ADDR, 5353)] {
        let a = in_netns(d.pid(), || udp_ask(&udp_connected(target), b"q3"))
            .unwrap_or_else(|e| panic!("daemon namespace → {target}/udp: {e}"));
        assert!(
            a.ends_with(b" 5353 q3"),
            "{target}: {}",
            String::from_utf8_lossy(&a)
        );
    }
    // TCP 5353 was not published.
    let r = in_netns(outside.pid(), || {
        connect(sa(DAEMON_VETH_ADDR, 5353)).map(drop)
    });
    assert_eq!(r.map_err(|e| e.kind()), Err(ErrorKind::ConnectionRefused));
}

#[test]
fn port_command_lists_the_bindings() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "pub"]).ok();
    sleeper(&d, "pub", "web1", &["-p", "8081:80"]);
    sleeper(&d, "pub", "web2", &["-p", "127.0.0.1:8082:80"]);
    sleeper(&d, "pub", "dns1", &["-p", "5353:5353/udp"]);
    sleeper(&d, "pub", "rng", &["-p", "8090-8091:90-91"]);
    assert_eq!(
        port_lines(&d, &["web1"]),
        "80/tcp -> 0.0.0.0:8081\n80/tcp -> [::]:8081\n"
    );
    assert_eq!(port_lines(&d, &["web1", "80"]), "0.0.0.0:8081\n[::]:8081\n");
    assert_eq!(port_lines(&d, &["web2"]), "80/tcp -> 127.0.0.1:8082\n");
    assert_eq!(
        port_lines(&d, &["dns1"]),
        "5353/udp -> 0.0.0.0:5353\n5353/udp -> [::]:5353\n"
    );
    assert_eq!(
        port_lines(&d, &["rng"]),
        "90/tcp -> 0.0.0.0:8090\n90/tcp -> [::]:8090\n91/tcp -> 0.0.0.0:8091\n91/tcp -> [::]:8091\n"
    );
}

#[test]
fn port_conflicts_and_release() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "pub"]).ok();
    sleeper(&d, "pub", "web1", &["-p", "8081:80"]);
    let server = tcp_server(container_pid(&d, "web1"), &[sa("0.0.0.0", 80)], peer_echo);
    let reach = |port: u16| in_netns(d.pid(), || peer_echo_client(sa("127.0.0.1", port), b"x"));
    reach(8081).expect("web1 through 8081");

    // Held by another container.
    let r = d.netloom(&[
        "run",
        "-d",
        "--network",
        "pub",
        "--name",
        "web1b",
        "-p",
        "8081:80",
        "--",
        "sleep",
        "300",
    ]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr
            .contains("Bind for 0.0.0.0:8081 failed: port is already allocated"),
        "{r:?}"
    );
    assert!(!is_running(&d, "web1b"));
    reach(8081).expect("web1 still served after the refused run");

    // Held by another program in the daemon's namespace (the host's, in production).
    let held = in_netns(d.pid(), || {
        std::net::TcpListener::bind("0.0.0.0:8083").unwrap()
    });
    let r = d.netloom(&[
        "run",
        "-d",
        "--network",
        "pub",
        "--name",
        "web2",
        "-p",
        "8083:80",
        "--",
        "sleep",
        "300",
    ]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr
            .contains("failed to bind host port 0.0.0.0:8083/tcp: address already in use"),
        "{r:?}"
    );
    assert!(!is_running(&d, "web2"));
    drop(held);

    // Released by stop: nothing answers there any more and another program may bind it.
    drop(server);
    d.netloom(&["stop", "-t", "1", "web1"]).ok();
    assert_eq!(
        reach(8081).map(drop).map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused)
    );
    in_netns(d.pid(), || {
        std::net::TcpListener::bind("0.0.0.0:8081").expect("8081 free after stop")
    });
    // And another container may publish it.
    sleeper(&d, "pub", "web4", &["-p", "8081:80"]);
    assert!(is_running(&d, "web4"));
}

// ---------------------------------------------------------------------------------------------
// Internal networks
// ---------------------------------------------------------------------------------------------

#[test]
fn internal_networks_have_no_nat_and_no_published_ports() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let outside = Outside::new(&d);
    let _tcp = tcp_server(outside.pid(), &[sa("0.0.0.0", 8000)], peer_echo);
    let _udp = udp_peer_echo_server(outside.pid(), sa("0.0.0.0", 8053));
    d.netloom(&["network", "create", "--internal", "inner"])
        .ok();
    d.netloom(&["network", "create", "outer"]).ok();
    sleeper(&d, "inner", "i1", &[]);
    sleeper(&d, "inner", "i2", &[]);
    sleeper(&d, "outer", "o1", &["-p", "8085:80"]);
    // Docker starts such a container and publishes nothing; a refusal would publish nothing
    // too, so only the host side is checked below.
    let _ = d.netloom(&[
        "run",
        "-d",
        "--network",
        "inner",
        "--name",
        "i3",
        "-p",
        "8084:80",
        "--",
        "sleep",
        "300",
    ]);
    let (i1, i2, o1) = (
        container_pid(&d, "i1"),
        container_pid(&d, "i2"),
        container_pid(&d, "o1"),
    );
    let _o1_server = tcp_server(o1, &[sa("0.0.0.0", 80)], peer_echo);
    let _i3_server = is_running(&d, "i3")
        .then(|| tcp_server(container_pid(&d, "i3"), &[sa("0.0.0.0", 80)], peer_echo));

    // Controls: from a regular network the same outside and the same kind of port work.
    in_netns(o1, || peer_echo_client(sa(OUTSIDE_ADDR, 8000), b"o1"))
        .expect("control: o1 reaches the outside through NAT");
    in_netns(outside.pid(), || {
        peer_echo_client(sa(DAEMON_VETH_ADDR, 8085), b"o1")
    })
    .expect("control: the outside reaches o1's published port");

    // No outbound NAT: TCP, UDP and ping all fail.
    let r = in_netns(i1, || {
        TcpStream::connect_timeout(&sa(OUTSIDE_ADDR, 8000), Duration::from_secs(3))
    });
    assert!(
        r.is_err(),
        "i1 on an internal network reached the outside: {r:?}"
    );
    let r = in_netns(i1, || {
        udp_ask(&udp_connected(sa(OUTSIDE_ADDR, 8053)), b"leak?")
    });
    assert!(r.is_err(), "i1's datagram was answered from outside: {r:?}");
    let r = d.netloom(&["exec", "i1", "ping", "-c", "1", "-W", "2", OUTSIDE_ADDR]);
    assert_ne!(r.code, 0, "i1 pinged the outside: {r:?}");

    // No published port: nothing listens on 8084.
    for (pid, target) in [
        (d.pid(), sa("127.0.0.1", 8084)),
        (d.pid(), sa(DAEMON_VETH_ADDR, 8084)),
        (outside.pid(), sa(DAEMON_VETH_ADDR, 8084)),
    ] {
        let r = in_netns(pid, || connect(target).map(drop));
        assert_eq!(
            r.map_err(|e| e.kind()),
            Err(ErrorKind::ConnectionRefused),
            "{target} is published for a container on an internal network"
        );
    }

    // Inside the network, containers still talk (no NAT between them).
    let _i2_server = tcp_server(i2, &[sa("0.0.0.0", 7000)], peer_echo);
    let i2_ip = ip_of(&d, "i2");
    let msg = pseudo_random(5, 100_000);
    let seen = in_netns(i1, || peer_echo_client(sa(&i2_ip, 7000), &msg))
        .unwrap_or_else(|e| panic!("i1 → i2:7000: {e}"));
    assert_eq!(seen.peer.ip().to_string(), ip_of(&d, "i1"));
    let r = d.netloom(&["exec", "i1", "ping", "-c", "1", "-W", "2", &i2_ip]);
    assert_eq!(r.code, 0, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Load: 1000 concurrent connections
// ---------------------------------------------------------------------------------------------

const CONNECTIONS: u64 = 1000;
/// The bound on one load test's connections, from the first connect to the last byte.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Lifts this process's open-file limit to its hard limit when it is low: the load tests hold
/// 2000 sockets at once. (The daemon, already started, keeps its own limit.)
fn raise_nofile_limit() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut cols = line.split_whitespace().skip(3);
    let (soft, hard) = (cols.next().unwrap(), cols.next().unwrap());
    if soft.parse::<u64>().is_ok_and(|s| s < 4096) {
        let st = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--nofile={hard}:{hard}"))
            .status()
            .unwrap();
        assert!(st.success(), "prlimit --nofile");
    }
}

/// What the load clients share: how many have tried and managed to connect, the signal to
/// start sending (once all have tried, so all flows exist at once) and the overall deadline.
#[derive(Clone, Debug)]
struct Load {
    /// Clients whose connect has succeeded or failed.
    attempted: Arc<AtomicUsize>,
    /// Clients whose connect has succeeded.
    connected: Arc<AtomicUsize>,
    go: tokio::sync::watch::Receiver<bool>,
    deadline: Instant,
}

/// Clients `ids` in the namespace of `pid`, all at once, each: connect to `target`, wait for
/// the go, send its payload and FIN while reading the echo, compare. Returns the failures.
fn load_clients(
    pid: u32,
    target: SocketAddr,
    ids: std::ops::Range<u64>,
    load: Load,
) -> NsTask<Vec<String>> {
    NsTask::start(pid, move || async move {
        let mut set = tokio::task::JoinSet::new();
        for id in ids {
            set.spawn(load_client(id, target, load.clone()));
        }
        let mut failures = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(format!("task: {e}")),
            }
        }
        failures
    })
}

async fn load_client(id: u64, target: SocketAddr, mut load: Load) -> Result<(), String> {
    let deadline = tokio::time::Instant::from_std(load.deadline);
    let data = payload(id);
    let conn = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(target)).await;
    if matches!(conn, Ok(Ok(_))) {
        load.connected.fetch_add(1, Ordering::SeqCst);
    }
    load.attempted.fetch_add(1, Ordering::SeqCst);
    let mut s = match conn {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("#{id}: connect {target}: {e}")),
        Err(_) => return Err(format!("#{id}: connect {target}: timed out")),
    };
    tokio::time::timeout_at(deadline, load.go.wait_for(|go| *go))
        .await
        .map_err(|_| format!("#{id}: no go before the deadline"))?
        .map_err(|e| format!("#{id}: {e}"))?;
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&data).await?;
        w.shutdown().await
    };
    let receive = async {
        let mut got = Vec::with_capacity(data.len());
        r.read_to_end(&mut got).await.map(|_| got)
    };
    let (sent, got) = tokio::time::timeout_at(deadline, async { tokio::join!(send, receive) })
        .await
        .map_err(|_| format!("#{id}: transfer of {} bytes timed out", data.len()))?;
    sent.map_err(|e| format!("#{id}: send: {e}"))?;
    let got = got.map_err(|e| format!("#{id}: receive: {e}"))?;
    if got != data {
        let at = got.iter().zip(&data).position(|(a, b)| a != b);
        return Err(format!(
            "#{id}: sent {} bytes, got {} back, first difference at {at:?}",
            data.len(),
            got.len()
        ));
    }
    Ok(())
}

/// Runs `CONNECTIONS` load clients split over `(pid, target)` groups; once all are connected,
/// waits until `net`'s NAT stats count them all as TCP flows, then lets them send, checks
/// every echo and waits until the network's flows are released.
fn run_load(d: &Daemon, net: &str, groups: &[(u32, SocketAddr)]) {
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let load = Load {
        attempted: Arc::new(AtomicUsize::new(0)),
        connected: Arc::new(AtomicUsize::new(0)),
        go,
        deadline: Instant::now() + LOAD_TIMEOUT,
    };
    let per_group = CONNECTIONS / groups.len() as u64;
    let tasks: Vec<_> = groups
        .iter()
        .enumerate()
        .map(|(i, (pid, target))| {
            let first = i as u64 * per_group;
            let last = if i + 1 == groups.len() {
                CONNECTIONS
            } else {
                first + per_group
            };
            load_clients(*pid, *target, first..last, load.clone())
        })
        .collect();
    while load.attempted.load(Ordering::SeqCst) < CONNECTIONS as usize
        && Instant::now() < load.deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Connected clients may wait in the daemon's accept queue a moment before their flows
    // exist: poll until all are counted, for at most 30 s (asserted below, after the data).
    // Loopback clients of a published port are spliced, the others carried by the gateway.
    let counted = |s: &serde_json::Value| {
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        n("TcpFlows") + n("TcpSpliced") >= CONNECTIONS
    };
    let stats_deadline = load.deadline.min(Instant::now() + Duration::from_secs(30));
    let mut while_open = nat_stats(d, net);
    while !counted(&while_open) && Instant::now() < stats_deadline {
        std::thread::sleep(Duration::from_millis(100));
        while_open = nat_stats(d, net);
    }
    let connected = load.connected.load(Ordering::SeqCst);
    let _ = go_tx.send(true);
    let failures: Vec<String> = tasks.into_iter().flat_map(NsTask::join).collect();
    assert!(
        failures.is_empty(),
        "{} of {CONNECTIONS} connections failed ({connected} had connected at the go; stats \
         then: {while_open}); by reason: {:#?}\nthe first ones: {:#?}",
        failures.len(),
        by_reason(&failures),
        &failures[..failures.len().min(10)]
    );
    assert!(
        counted(&while_open),
        "with {CONNECTIONS} connections open, the stats of {net} said {while_open}"
    );
    wait_for_no_tcp_flows(d, net);
}

/// The ten most frequent failure reasons (`#ID: REASON` without the id), with their counts.
fn by_reason(failures: &[String]) -> Vec<(usize, String)> {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for f in failures {
        let reason = f.split_once(": ").map_or(f.as_str(), |(_, r)| r);
        *counts.entry(reason).or_default() += 1;
    }
    let mut v: Vec<(usize, String)> = counts.into_iter().map(|(r, n)| (n, r.to_owned())).collect();
    v.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    v.truncate(10);
    v
}

#[test]
fn nat_carries_1000_concurrent_connections() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    raise_nofile_limit();
    let outside = Outside::new(&d);
    let _server = tcp_server(outside.pid(), &[sa("0.0.0.0", 9000)], echo);
    d.netloom(&["network", "create", "nat"]).ok();
    sleeper(&d, "nat", "c1", &[]);
    sleeper(&d, "nat", "c2", &[]);
    let groups = [
        (container_pid(&d, "c1"), sa(OUTSIDE_ADDR, 9000)),
        (container_pid(&d, "c2"), sa(OUTSIDE_FAR_ADDR, 9000)),
    ];
    run_load(&d, "nat", &groups);
}

#[test]
fn published_port_carries_1000_concurrent_connections() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    raise_nofile_limit();
    let outside = Outside::new(&d);
    d.netloom(&["network", "create", "pubs"]).ok();
    sleeper(&d, "pubs", "srv", &["-p", "8081:80"]);
    let _server = tcp_server(container_pid(&d, "srv"), &[sa("0.0.0.0", 80)], echo);
    let groups = [
        (outside.pid(), sa(DAEMON_VETH_ADDR, 8081)),
        (d.pid(), sa("127.0.0.1", 8081)),
    ];
    run_load(&d, "pubs", &groups);
}
