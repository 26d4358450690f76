//! The data plane: namespaces attached with `netloom attach` talk through netloom's userspace
//! switch, using the kernel's own stack, `ping` and TCP; isolation and anti-spoofing hold.
//!
//! Sandboxes are `unshare -n sleep` processes (a fresh, empty network namespace each, reached
//! through `/proc/PID/ns/net`), killed by their guard; the daemon runs in a namespace of its
//! own. Nothing touches the machine's interfaces.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Daemon, Run, link_names, netloom_bin, tempdir};

/// A network namespace held by a sleeping process; killed on drop.
struct Sandbox {
    child: Child,
}

impl Sandbox {
    fn new() -> Sandbox {
        let child = Command::new("unshare")
            .args(["-n", "--", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare -n sleep");
        let s = Sandbox { child };
        // Wait until the process runs in its new namespace.
        let deadline = Instant::now() + Duration::from_secs(5);
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        while std::fs::read_link(s.netns())
            .map(|l| l == own)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "sandbox did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        s
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn netns(&self) -> String {
        format!("/proc/{}/ns/net", self.child.id())
    }

    /// Runs a command inside the sandbox's network namespace.
    fn exec(&self, args: &[&str]) -> Run {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.netns()))
            .arg("--")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter");
        Run {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    fn ping(&self, ip: &str) -> bool {
        self.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", ip])
            .code
            == 0
    }

    /// Sends `count` pings `interval` seconds apart; every one must come back.
    fn pings_all(&self, ip: &str, count: u32, interval: &str) {
        let count = count.to_string();
        let r = self.exec(&["ping", "-n", "-c", &count, "-i", interval, "-W", "2", ip]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout.contains(&format!("{count} received")),
            "{}",
            r.stdout
        );
    }

    fn rx_packets(&self) -> u64 {
        self.exec(&["cat", "/sys/class/net/eth0/statistics/rx_packets"])
            .stdout
            .trim()
            .parse()
            .unwrap()
    }

    /// Sends raw Ethernet frames (hex) out of eth0 with an AF_PACKET socket.
    fn send_raw(&self, frame: &[u8], count: usize) {
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        let script = format!(
            "import socket\ns=socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind(('eth0',0))\nfor _ in range({count}): s.send(bytes.fromhex('{hex}'))\n"
        );
        let r = self.exec(&["python3", "-c", &script]);
        assert_eq!(r.code, 0, "raw send failed: {r:?}");
    }

    fn links(&self) -> Vec<String> {
        link_names(&self.exec(&["ip", "-o", "link", "show"]).stdout)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends 4 MiB over TCP from `from` to a server in `to` listening on `to_ip`:7000 and checks
/// that every byte arrived, in order (the SHA-256 of both ends).
fn tcp_transfer_is_intact(from: &Sandbox, to: &Sandbox, to_ip: &str) {
    let server = "import socket,hashlib\nl=socket.socket()\nl.bind(('0.0.0.0',7000))\nl.listen(1)\nc,_=l.accept()\nh=hashlib.sha256()\nn=0\nwhile True:\n  b=c.recv(65536)\n  if not b: break\n  h.update(b); n+=len(b)\nprint(n, h.hexdigest())\n";
    let client = format!(
        "import socket,hashlib,time\ndata=bytes(range(256))*(16384)\nfor i in range(50):\n  try:\n    s=socket.create_connection(('{to_ip}',7000),timeout=1); break\n  except OSError: time.sleep(0.1)\ns.sendall(data)\ns.close()\nprint(len(data), hashlib.sha256(data).hexdigest())\n"
    );
    let netns = to.netns();
    let srv = std::thread::spawn(move || {
        let out = Command::new("nsenter")
            .arg(format!("--net={netns}"))
            .args(["--", "timeout", "30", "python3", "-c", server])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    let sent = from.exec(&["timeout", "30", "python3", "-c", &client]);
    let received = srv.join().unwrap();
    assert_eq!(sent.code, 0, "{sent:?}");
    assert_eq!(received.trim(), sent.stdout.trim());
    assert!(received.starts_with("4194304 "), "{received}");
}

fn attach(d: &Daemon, name: &str, net: &str, s: &Sandbox) -> Run {
    d.netloom(&["attach", "--name", name, net, "--pid", &s.pid()])
}

/// The switch's drop counter for one reason.
fn drops(d: &Daemon, reason: &str) -> u64 {
    let out = d.netloom(&["stats"]).ok().stdout;
    out.lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(reason)).then(|| it.next().unwrap().parse().unwrap())
        })
        .unwrap_or(0)
}

/// Waits until `f` holds (counters are updated by the switch task, asynchronously).
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

fn ip4(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().unwrap().octets()
}

/// An Ethernet + ARP frame (RFC 826), op 1 request or 2 reply.
fn arp_frame(
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    op: u8,
    smac: [u8; 6],
    sip: [u8; 4],
    tmac: [u8; 6],
    tip: [u8; 4],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0, op]);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&sip);
    f.extend_from_slice(&tmac);
    f.extend_from_slice(&tip);
    f.resize(60, 0);
    f
}

/// An Ethernet + IPv4 + UDP frame with a valid IPv4 header checksum (UDP checksum 0: none).
fn udp_frame(eth_src: [u8; 6], eth_dst: [u8; 6], src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let payload = b"netloom";
    let udp_len = 8 + payload.len() as u16;
    let total = 20 + udp_len;
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let csum = !(sum as u16);
    ip[10] = (csum >> 8) as u8;
    ip[11] = csum as u8;
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[
        0x13,
        0x88,
        0x13,
        0x89,
        (udp_len >> 8) as u8,
        udp_len as u8,
        0,
        0,
    ]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn attached_namespaces_talk_through_the_switch() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "net1"]).ok();
    let (s1, s2) = (Sandbox::new(), Sandbox::new());
    let r = attach(&d, "s1", "net1", &s1).ok();
    assert!(r.stdout.trim().len() == 64, "{r:?}");
    assert_eq!(
        r.stderr,
        "s1: eth0 172.18.0.2/16 (mac 02:42:ac:12:00:02, gateway 172.18.0.1)\n"
    );
    attach(&d, "s2", "net1", &s2).ok();

    let addr = s1
        .exec(&["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
        .stdout;
    assert!(addr.contains("inet 172.18.0.2/16"), "{addr}");
    let route = s1.exec(&["ip", "route", "show", "default"]).stdout;
    assert!(
        route.starts_with("default via 172.18.0.1 dev eth0"),
        "{route}"
    );
    let link = s1.exec(&["ip", "-o", "link", "show", "dev", "eth0"]).stdout;
    assert!(
        link.contains("mtu 1500") && link.contains("link/ether 02:42:ac:12:00:02"),
        "{link}"
    );

    assert!(s1.ping("172.18.0.3"), "s1 cannot ping s2");
    assert!(s2.ping("172.18.0.2"), "s2 cannot ping s1");
    assert!(s1.ping("172.18.0.1"), "s1 cannot ping its gateway");

    // TCP, several MB through GSO super-frames, checked end to end.
    tcp_transfer_is_intact(&s1, &s2, "172.18.0.3");

    // Inspect lists both endpoints, in Docker's shape.
    let inspect = d
        .netloom(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}}={{.IPv4Address}},{{.MacAddress}} {{end}}",
            "net1",
        ])
        .ok()
        .stdout;
    let mut got: Vec<&str> = inspect.split_whitespace().collect();
    got.sort();
    assert_eq!(
        got,
        [
            "s1=172.18.0.2/16,02:42:ac:12:00:02",
            "s2=172.18.0.3/16,02:42:ac:12:00:03"
        ]
    );
}

#[test]
fn networks_are_isolated() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "neta"]).ok();
    d.netloom(&["network", "create", "netb"]).ok();
    let (a, b) = (Sandbox::new(), Sandbox::new());
    attach(&d, "sa", "neta", &a).ok();
    attach(&d, "sb", "netb", &b).ok();
    assert!(a.ping("172.18.0.1"));
    assert!(b.ping("172.19.0.1"));
    // By address: a's default route leads to its gateway, which forwards nothing yet.
    assert!(!a.ping("172.19.0.2"), "a reached b across networks");
    // By raw frames addressed straight to b's MAC: nothing arrives.
    let before = b.rx_packets();
    let frame = udp_frame(
        mac("02:42:ac:12:00:02"),
        mac("02:42:ac:13:00:02"),
        ip4("172.18.0.2"),
        ip4("172.19.0.2"),
    );
    a.send_raw(&frame, 20);
    let bcast = udp_frame(
        mac("02:42:ac:12:00:02"),
        [0xff; 6],
        ip4("172.18.0.2"),
        ip4("172.19.255.255"),
    );
    a.send_raw(&bcast, 20);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.rx_packets(), before, "frames crossed from neta to netb");
}

#[test]
fn spoofed_frames_are_dropped_and_counted() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "net1"]).ok();
    let (s1, s2) = (Sandbox::new(), Sandbox::new());
    attach(&d, "s1", "net1", &s1).ok();
    attach(&d, "s2", "net1", &s2).ok();
    assert!(s1.ping("172.18.0.3"));
    let (m1, m2) = (mac("02:42:ac:12:00:02"), mac("02:42:ac:12:00:03"));
    let (i1, i2) = (ip4("172.18.0.2"), ip4("172.18.0.3"));
    let evil = mac("02:42:de:ad:be:ef");

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("spoofed_source_mac", udp_frame(evil, m2, i1, i2)),
        (
            "spoofed_source_ip",
            udp_frame(m1, m2, ip4("172.18.0.99"), i2),
        ),
        // A forged ARP reply telling s2 that the gateway's address is at s1.
        (
            "spoofed_arp_ip",
            arp_frame(m1, m2, 2, m1, ip4("172.18.0.1"), m2, i2),
        ),
        // An ARP reply whose sender hardware address is someone else's.
        ("spoofed_arp_mac", arp_frame(m1, m2, 2, evil, i1, m2, i2)),
    ];
    for (reason, frame) in cases {
        let before_drops = drops(&d, reason);
        let before_rx = s2.rx_packets();
        s1.send_raw(&frame, 5);
        eventually(reason, || drops(&d, reason) >= before_drops + 5);
        assert_eq!(
            s2.rx_packets(),
            before_rx,
            "{reason}: a spoofed frame reached s2"
        );
    }
    // s2 still knows the gateway by its real MAC.
    let neigh = s2.exec(&["ip", "neigh", "show", "172.18.0.1"]).stdout;
    assert!(
        !neigh.contains("02:42:ac:12:00:02"),
        "ARP cache poisoned: {neigh}"
    );
    assert!(s1.ping("172.18.0.3"), "honest traffic still flows");
}

#[test]
fn detach_and_errors() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "net1"]).ok();
    d.netloom(&["network", "create", "--subnet", "10.40.0.0/24", "net2"])
        .ok();
    let (s1, s2) = (Sandbox::new(), Sandbox::new());
    attach(&d, "s1", "net1", &s1).ok();
    // A second network for the same namespace: eth1, with the address asked for.
    let r = d
        .netloom(&[
            "attach",
            "--name",
            "s1",
            "--ip",
            "10.40.0.77",
            "net2",
            "--pid",
            &s1.pid(),
        ])
        .ok();
    assert!(r.stderr.contains("eth1 10.40.0.77/24"), "{r:?}");
    assert_eq!(s1.links(), ["lo", "eth0", "eth1"]);
    // Only the first network's gateway is the default route.
    let routes = s1.exec(&["ip", "route", "show", "default"]).stdout;
    assert_eq!(routes.lines().count(), 1, "{routes}");

    let before = d
        .netloom(&["network", "inspect", "net1", "net2"])
        .ok()
        .stdout;
    let bad: &[(&[&str], &str)] = &[
        (
            &["attach", "host", "--pid", &s2.pid()],
            "only bridge networks",
        ),
        (
            &["attach", "--ip", "172.18.0.50", "net1", "--pid", &s2.pid()],
            "user specified IP address is supported only when connecting to networks with user configured subnets",
        ),
        (
            &["attach", "--ip", "10.40.0.77", "net2", "--pid", &s2.pid()],
            "Address already in use",
        ),
        (
            &["attach", "--ip", "10.99.0.1", "net2", "--pid", &s2.pid()],
            "requested address is out of range",
        ),
        (
            &["attach", "--name", "s1", "net1", "--pid", &s2.pid()],
            "is already in use by container",
        ),
        (
            &["attach", "--name", "s1", "net1", "--pid", &s1.pid()],
            "endpoint with name s1 already exists in network net1",
        ),
        (
            &["attach", "net1", "--netns", "/nonexistent/ns"],
            "cannot be used",
        ),
        (
            &["attach", "nonet", "--pid", &s2.pid()],
            "network nonet not found",
        ),
        (
            &["attach", "net1"],
            "give exactly one of --netns PATH or --pid PID",
        ),
        (&["detach", "nobody"], "No such container: nobody"),
    ];
    for (args, want) in bad {
        let r = d.netloom(args);
        assert_ne!(r.code, 0, "{args:?} succeeded");
        assert!(r.stderr.contains(want), "{args:?}: {r:?}");
    }
    assert_eq!(
        d.netloom(&["network", "inspect", "net1", "net2"])
            .ok()
            .stdout,
        before
    );
    assert_eq!(s2.links(), ["lo"]);

    // Networks in use cannot be removed.
    let r = d.netloom(&["network", "rm", "net2"]);
    assert!(r.stderr.starts_with("Error response from daemon: error while removing network: network net2 has active endpoints (name:\"s1\" id:\""), "{r:?}");
    assert_eq!(d.netloom(&["network", "prune", "-f"]).ok().stdout, "");

    // Detach from one network, then from all.
    assert_eq!(
        d.netloom(&["detach", "--network", "net2", "s1"])
            .ok()
            .stdout,
        "eth1\n"
    );
    eventually("eth1 to disappear", || s1.links() == ["lo", "eth0"]);
    assert_eq!(d.netloom(&["detach", "s1"]).ok().stdout, "eth0\n");
    eventually("eth0 to disappear", || s1.links() == ["lo"]);
    assert_eq!(
        d.netloom(&["network", "prune", "-f"]).ok().stdout,
        "Deleted Networks:\nnet1\nnet2\n\n"
    );
}

#[test]
fn restart_keeps_the_data_plane() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "net1"]).ok();
    let (s1, s2) = (Sandbox::new(), Sandbox::new());
    attach(&d, "s1", "net1", &s1).ok();
    attach(&d, "s2", "net1", &s2).ok();
    assert!(s1.ping("172.18.0.3"));
    d.kill9();
    // The interfaces stay in the sandboxes while the daemon is away.
    assert_eq!(s1.links(), ["lo", "eth0"]);
    d.spawn();
    assert!(s1.ping("172.18.0.3"), "no traffic after the restart");
    assert!(s2.ping("172.18.0.1"), "no gateway after the restart");
    let ips = d
        .netloom(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
            "net1",
        ])
        .ok()
        .stdout;
    let mut got: Vec<&str> = ips.split_whitespace().collect();
    got.sort();
    assert_eq!(got, ["s1=172.18.0.2/16", "s2=172.18.0.3/16"]);
}

/// The switch's busy-polling figures from `netloom stats --format json`: (window, polled frames).
fn busy_poll_stats(d: &Daemon) -> (u64, u64) {
    let out = d.netloom(&["stats", "--format", "json"]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&out).expect("stats JSON");
    let b = &v["BusyPoll"];
    (
        b["WindowMicros"].as_u64().expect("WindowMicros"),
        b["PolledFrames"].as_u64().expect("PolledFrames"),
    )
}

/// `--busy-poll`: the daemon reports its window; sparse traffic (pings 20 ms apart, inside the
/// 200 ms window) and a bulk TCP transfer after it arrive intact; without the flag nothing is
/// polled; a window out of range is refused before the daemon starts.
#[test]
fn busy_polling_forwards_sparse_and_bulk_traffic_intact() {
    let dir = tempdir();
    let d = Daemon::start_with(dir.path(), &["--busy-poll", "200000"]);
    d.netloom(&["network", "create", "net1"]).ok();
    let (s1, s2) = (Sandbox::new(), Sandbox::new());
    attach(&d, "s1", "net1", &s1).ok();
    attach(&d, "s2", "net1", &s2).ok();
    assert_eq!(busy_poll_stats(&d).0, 200_000);
    // Sparse pings (20 ms apart, inside the window) all come back. Whether they were read by
    // polling depends on the machine: polling gives way when other threads want the CPU, as
    // the rest of the suite does here (switch/src/runtime/tests.rs checks that a sparse port
    // is polled, with that courtesy off).
    s1.pings_all("172.18.0.3", 20, "0.02");
    let text = d.netloom(&["stats"]).ok().stdout;
    assert!(
        text.contains("busy polling: 200000 us after each batch"),
        "{text}"
    );
    // Bulk after sparse traffic: every byte, in order (the digest), through GSO super-frames.
    tcp_transfer_is_intact(&s1, &s2, "172.18.0.3");
    drop(d);

    // Off by default: the same pings, nothing polled.
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "net1"]).ok();
    let (s3, s4) = (Sandbox::new(), Sandbox::new());
    attach(&d, "s3", "net1", &s3).ok();
    attach(&d, "s4", "net1", &s4).ok();
    s3.pings_all("172.18.0.3", 5, "0.02");
    assert_eq!(busy_poll_stats(&d), (0, 0));
    assert!(
        d.netloom(&["stats"])
            .ok()
            .stdout
            .contains("busy polling: off")
    );

    // Out of range: refused with the range, nothing started.
    let out = Command::new(netloom_bin())
        .args(["daemon", "--busy-poll", "1000001"])
        .output()
        .expect("run netloom daemon");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--busy-poll") && err.contains("0..=1000000"),
        "{err}"
    );
}
