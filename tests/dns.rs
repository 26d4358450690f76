//! Container names on user networks, served by the embedded DNS at 127.0.0.11 inside each
//! container (queried with the real `dig` and `ping`), and not on the default bridge.

use crate::common::{Daemon, OUTSIDE_ADDR, OUTSIDE_ADDR2, Outside, tempdir};

fn dig(d: &Daemon, from: &str, args: &[&str]) -> String {
    let mut a = vec!["exec", from, "dig", "+time=2", "+tries=1"];
    a.extend_from_slice(args);
    d.netloom(&a).stdout
}

fn short(d: &Daemon, from: &str, name: &str) -> String {
    dig(d, from, &["+short", name]).trim().to_owned()
}

#[test]
fn names_resolve_on_user_networks_only() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "mhk_network"]).ok();
    for (name, extra) in [
        ("tomcat81", vec![]),
        (
            "tomcat82",
            vec!["--network-alias", "web", "--hostname", "cat82"],
        ),
    ] {
        let mut a = vec!["run", "-d", "--network", "mhk_network", "--name", name];
        a.extend(extra);
        a.extend(["--", "sleep", "300"]);
        d.netloom(&a).ok();
    }
    // The tutorial: ping by name on a user network.
    let ping = d
        .netloom(&["exec", "tomcat81", "ping", "-c", "1", "tomcat82"])
        .ok()
        .stdout;
    assert!(
        ping.contains("from tomcat82.mhk_network (172.18.0.3)"),
        "{ping}"
    );
    let resolv = d
        .netloom(&["exec", "tomcat81", "cat", "/etc/resolv.conf"])
        .ok()
        .stdout;
    assert!(
        resolv.contains("nameserver 127.0.0.11\noptions ndots:0\n"),
        "{resolv}"
    );

    let id = d
        .netloom(&["inspect", "-f", "{{.Id}}", "tomcat82"])
        .ok()
        .stdout;
    for name in [
        "tomcat82",
        "TomCat82",
        "tomcat82.mhk_network",
        "web",
        "cat82",
        &id[..12],
    ] {
        assert_eq!(short(&d, "tomcat81", name), "172.18.0.3", "{name}");
    }
    let a = dig(&d, "tomcat81", &["tomcat82"]);
    assert!(a.contains("\t600\tIN\tA\t172.18.0.3"), "TTL 600: {a}");
    let aaaa = dig(&d, "tomcat81", &["tomcat82", "AAAA"]);
    assert!(
        aaaa.contains("status: NOERROR") && aaaa.contains("ANSWER: 0"),
        "{aaaa}"
    );
    assert_eq!(
        dig(&d, "tomcat81", &["+short", "-x", "172.18.0.3"]).trim(),
        "tomcat82.mhk_network."
    );

    // Connected to a second network, a container resolves names there at once; disconnected,
    // no longer.
    d.netloom(&["network", "create", "second"]).ok();
    d.netloom(&[
        "run",
        "-d",
        "--network",
        "second",
        "--name",
        "other1",
        "--",
        "sleep",
        "300",
    ])
    .ok();
    assert_eq!(short(&d, "tomcat81", "other1"), "");
    d.netloom(&["network", "connect", "second", "tomcat81"])
        .ok();
    assert_eq!(short(&d, "tomcat81", "other1"), "172.19.0.2");
    d.netloom(&["network", "disconnect", "second", "tomcat81"])
        .ok();
    assert_eq!(short(&d, "tomcat81", "other1"), "");
    d.netloom(&["rm", "-f", "other1"]).ok();

    // A stopped container is not found any more (the name goes upstream, which fails here).
    d.netloom(&["stop", "-t", "1", "tomcat82"]).ok();
    assert_eq!(short(&d, "tomcat81", "tomcat82"), "");
    d.netloom(&["start", "tomcat82"]).ok();
    assert_eq!(short(&d, "tomcat81", "tomcat82"), "172.18.0.3");

    // Names keep resolving after a daemon restart.
    d.kill9();
    d.spawn();
    assert_eq!(short(&d, "tomcat81", "tomcat82"), "172.18.0.3");

    // The default bridge has no name service: ping by name fails, by address works.
    d.netloom(&["run", "-d", "--name", "b1", "--", "sleep", "300"])
        .ok();
    d.netloom(&["run", "-d", "--name", "b2", "--", "sleep", "300"])
        .ok();
    let r = d.netloom(&["exec", "b1", "ping", "-c", "1", "-W", "1", "b2"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(
        d.netloom(&["exec", "b1", "ping", "-c", "1", "-W", "2", "172.17.0.3"])
            .code,
        0
    );
    d.netloom(&["rm", "-f", "tomcat81", "tomcat82", "b1", "b2"])
        .ok();
}

#[test]
fn host_dns_answers_name_dot_network() {
    let dir = tempdir();
    let d = Daemon::start_with(dir.path(), &["--host-dns", "127.0.0.153:53"]);
    d.netloom(&["network", "create", "mhk_network"]).ok();
    d.netloom(&[
        "run",
        "-d",
        "--network",
        "mhk_network",
        "--name",
        "web1",
        "--",
        "sleep",
        "300",
    ])
    .ok();
    // The listener lives in the daemon's namespace (the host's, in production).
    let dig = |name: &str| {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", d.pid()))
            .args([
                "--",
                "dig",
                "+short",
                "+time=2",
                "+tries=1",
                "@127.0.0.153",
                name,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(dig("web1.mhk_network"), "172.18.0.2");
    // A network created later is served at once.
    d.netloom(&["network", "create", "later"]).ok();
    d.netloom(&["network", "connect", "later", "web1"]).ok();
    assert_eq!(dig("web1.later"), "172.19.0.2");
    d.netloom(&["rm", "-f", "web1"]).ok();
    assert_eq!(dig("web1.mhk_network"), "");
}

/// A tiny upstream DNS server (UDP) for the forwarding tests: `ok.example` → 198.18.0.99,
/// `nx.example` → NXDOMAIN, `fail.example` → SERVFAIL (or, with `rescue`, 198.18.0.98),
/// `slow.example` → no answer at all.
const UPSTREAM: &str = r#"
import socket, sys, struct
addr, rescue = sys.argv[1], sys.argv[2] == "1"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
while True:
    q, peer = s.recvfrom(4096)
    qid = q[:2]
    i = 12
    labels = []
    while q[i] != 0:
        labels.append(q[i+1:i+1+q[i]].decode().lower()); i += 1 + q[i]
    name = ".".join(labels)
    question = q[12:i+5]
    def reply(rcode, answer=None):
        flags = 0x8180 | rcode
        an = 1 if answer else 0
        body = qid + struct.pack(">HHHHH", flags, 1, an, 0, 0) + question
        if answer:
            body += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(answer)
        s.sendto(body, peer)
    if name == "ok.example": reply(0, "198.18.0.99")
    elif name == "nx.example": reply(3)
    elif name == "fail.example": reply(0, "198.18.0.98") if rescue else reply(2)
    elif name == "slow.example": pass
    else: reply(5)
"#;

#[test]
fn forwarding_to_upstreams_in_an_outside_namespace() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    // The "outside": its own namespace joined to the daemon's by a veth (198.18.0.0/15 only).
    let outside = Outside::new(&d);
    let servers: Vec<_> = [(OUTSIDE_ADDR, "0"), (OUTSIDE_ADDR2, "1")]
        .into_iter()
        .map(|(addr, rescue)| outside.spawn(&["python3", "-c", UPSTREAM, addr, rescue]))
        .collect();
    // Ready once both sockets are bound (/proc/net/udp: local address in hex, port 53 = 0035).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !["020012C6:0035", "030012C6:0035"]
        .iter()
        .all(|a| outside.exec(&["cat", "/proc/net/udp"]).stdout.contains(a))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the upstream servers did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    d.netloom(&["network", "create", "net1"]).ok();
    d.netloom(&["network", "create", "--internal", "inside"])
        .ok();
    let run = |name: &str, net: &str| {
        d.netloom(&[
            "run",
            "-d",
            "--network",
            net,
            "--dns",
            "198.18.0.2",
            "--dns",
            "198.18.0.3",
            "--name",
            name,
            "--",
            "sleep",
            "120",
        ])
        .ok();
    };
    run("c1", "net1");
    run("c2", "inside");
    // The client waits longer than the server's 4 s per upstream.
    let status = |from: &str, name: &str| {
        let out = dig(&d, from, &["+time=12", name]);
        out.lines()
            .find_map(|l| {
                l.split("status: ")
                    .nth(1)
                    .map(|s| s.split(',').next().unwrap().to_owned())
            })
            .unwrap_or_else(|| format!("no answer: {out}"))
    };
    assert_eq!(short(&d, "c1", "ok.example"), "198.18.0.99");
    // NXDOMAIN is passed through; SERVFAIL moves on to the next upstream.
    assert_eq!(status("c1", "nx.example"), "NXDOMAIN");
    assert_eq!(short(&d, "c1", "fail.example"), "198.18.0.98");
    // An upstream that never answers: the next one is asked after the timeout; the second one
    // refuses the name (REFUSED), so the client gets SERVFAIL.
    assert_eq!(status("c1", "slow.example"), "SERVFAIL");
    // Internal networks do not forward.
    assert_eq!(status("c2", "ok.example"), "SERVFAIL");
    d.netloom(&["rm", "-f", "c1", "c2"]).ok();
    drop(servers);
    drop(outside);
}
