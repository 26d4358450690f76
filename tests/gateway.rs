//! The gateway's own services and the paths through it that tests/nat.rs does not cover:
//! hairpin (a container reaching its own network's published port through the host's
//! address), opt-in host loopback, and the embedded DNS on the gateway address.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::common::{DAEMON_VETH_ADDR, Daemon, Outside, in_netns, netloom_bin, tempdir};

fn container_pid(d: &Daemon, name: &str) -> u32 {
    d.netloom(&["inspect", "-f", "{{.State.Pid}}", name])
        .ok()
        .stdout
        .trim()
        .parse()
        .expect("a running container has a pid")
}

fn ip_on(d: &Daemon, name: &str, net: &str) -> String {
    let f = format!("{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}");
    d.netloom(&["inspect", "-f", &f, name])
        .ok()
        .stdout
        .trim()
        .to_owned()
}

fn gateway_of(d: &Daemon, net: &str) -> String {
    d.netloom(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        net,
    ])
    .ok()
    .stdout
    .trim()
    .to_owned()
}

/// `GET /` from inside namespace `pid`, retried while the server starts (bounded).
fn http_get(pid: u32, target: SocketAddr) -> std::io::Result<String> {
    in_netns(pid, move || {
        let mut last = None;
        for _ in 0..50 {
            match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
                Ok(mut s) => {
                    s.set_read_timeout(Some(Duration::from_secs(10)))?;
                    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                    let mut out = String::new();
                    s.read_to_string(&mut out)?;
                    return Ok(out);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    })
}

#[test]
fn hairpin_reaches_the_own_networks_published_port() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let _outside = Outside::new(&d);
    d.netloom(&["network", "create", "hp"]).ok();
    d.netloom(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "hp",
        "-p",
        "8085:80",
        "--",
        netloom_bin(),
        "_http",
        "--port",
        "80",
    ])
    .ok();
    d.netloom(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "hp",
        "--",
        "sleep",
        "300",
    ])
    .ok();
    let host = SocketAddr::new(DAEMON_VETH_ADDR.parse().unwrap(), 8085);
    // Another container of the network, and the publishing container itself, both through the
    // host's address: out through NAT, back in through the published port.
    for from in ["peer", "web"] {
        let page = http_get(container_pid(&d, from), host)
            .unwrap_or_else(|e| panic!("{from} → {host}: {e}"));
        assert!(page.starts_with("HTTP/1.0 200"), "{from}: {page}");
        assert!(
            page.contains(&format!("you came from {DAEMON_VETH_ADDR}:")),
            "{from}: the connection is re-originated from the daemon's address: {page}"
        );
    }
}

#[test]
fn host_loopback_is_reached_through_the_gateway_only_when_enabled() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&[
        "network",
        "create",
        "-o",
        "com.netloom.network.host_loopback=true",
        "lb",
    ])
    .ok();
    d.netloom(&["network", "create", "closed"]).ok();
    for (name, net) in [("ca", "lb"), ("cb", "closed")] {
        d.netloom(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "--",
            "sleep",
            "300",
        ])
        .ok();
    }
    // A service on the daemon namespace's loopback only.
    let listener = in_netns(d.pid(), || TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"loopback service\n").unwrap();
    });

    let gw = SocketAddr::new(gateway_of(&d, "lb").parse().unwrap(), port);
    let got = in_netns(container_pid(&d, "ca"), move || {
        let mut s = TcpStream::connect_timeout(&gw, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok::<_, std::io::Error>(out)
    })
    .expect("the gateway reaches the host's loopback on an opted-in network");
    assert_eq!(got, "loopback service\n");
    server.join().unwrap();

    // Off by default: the same port on the other network's gateway is a closed port.
    let gw = SocketAddr::new(gateway_of(&d, "closed").parse().unwrap(), port);
    let refused = in_netns(container_pid(&d, "cb"), move || {
        TcpStream::connect_timeout(&gw, Duration::from_secs(5)).map(|_| ())
    });
    assert_eq!(
        refused.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused)
    );

    // A bad value is refused at create, in Docker's words for boolean options.
    let bad = d.netloom(&[
        "network",
        "create",
        "-o",
        "com.netloom.network.host_loopback=yes",
        "bad",
    ]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("strconv.ParseBool"), "{}", bad.stderr);
}

#[test]
fn embedded_dns_answers_on_the_gateway_address() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "gdns"]).ok();
    for name in ["g1", "g2"] {
        d.netloom(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "gdns",
            "--",
            "sleep",
            "300",
        ])
        .ok();
    }
    let gw = gateway_of(&d, "gdns");
    let want = ip_on(&d, "g2", "gdns");
    let at = format!("@{gw}");
    for transport in ["+notcp", "+tcp"] {
        for name in ["g2", "g2.gdns", "G2"] {
            let r = d.netloom(&[
                "exec", "g1", "dig", "+time=2", "+tries=3", transport, &at, "+short", name,
            ]);
            assert_eq!(r.stdout.trim(), want, "{transport} {name}: {r:?}");
        }
    }
    // The default bridge has no embedded DNS, on the gateway either.
    d.netloom(&["run", "-d", "--name", "b1", "--", "sleep", "300"])
        .ok();
    let bridge_gw = gateway_of(&d, "bridge");
    let r = d.netloom(&[
        "exec",
        "b1",
        "dig",
        "+time=1",
        "+tries=1",
        &format!("@{bridge_gw}"),
        "+short",
        "g2",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
}
