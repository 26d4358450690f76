//! Published ports (SPEC section 5): `-p` parsing, host-port allocation from the daemon
//! namespace's `ip_local_port_range`, Docker's conflict texts (the container is not started and
//! nothing changes), release at stop, re-binding after a daemon restart, and the output of
//! `port`, `ps` and `inspect` against the stock docker CLI. Every socket lives in the test
//! daemon's own network namespace (entered with `nsenter -t PID -n`).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Daemon, Run, tempdir};

fn run_d(d: &Daemon, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let r = d.netloom(&a).ok();
    let id = r.stdout.trim().to_owned();
    assert_eq!(id.len(), 64, "{r:?}");
    id
}

/// Runs a command in the daemon's network namespace.
fn in_daemon_ns(d: &Daemon, args: &[&str]) -> Run {
    let out = Command::new("nsenter")
        .args(["-t", &d.pid().to_string(), "-n", "--"])
        .args(args)
        .output()
        .expect("run nsenter");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// A program (not a container) holding a TCP port in the daemon's namespace; killed on drop.
struct Holder(Child);

impl Holder {
    fn listen(d: &Daemon, host: &str, port: u16) -> Holder {
        let family = if host.contains(':') {
            "socket.AF_INET6"
        } else {
            "socket.AF_INET"
        };
        let code = format!(
            "import socket,sys,time\ns=socket.socket({family})\ns.bind(('{host}',{port}))\ns.listen(1)\nprint('ready',flush=True)\ntime.sleep(300)\n"
        );
        let mut child = Command::new("nsenter")
            .args([
                "-t",
                &d.pid().to_string(),
                "-n",
                "--",
                "python3",
                "-c",
                &code,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the port holder");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n", "the holder could not bind {host}:{port}");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a program can bind `host:port` (TCP) in the daemon's namespace right now.
fn bindable(d: &Daemon, host: &str, port: u16) -> bool {
    let family = if host.contains(':') {
        "socket.AF_INET6"
    } else {
        "socket.AF_INET"
    };
    // IPv6 sockets are v6-only, so `::` and `0.0.0.0` are checked apart (as netloom binds them).
    let v6only = if host.contains(':') {
        "s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,1)\n"
    } else {
        ""
    };
    let code = format!(
        "import socket\ns=socket.socket({family})\n{v6only}s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{host}',{port}))\ns.listen(1)\n"
    );
    in_daemon_ns(d, &["python3", "-c", &code]).code == 0
}

fn inspect_json(d: &Daemon, name: &str) -> serde_json::Value {
    let out = d.netloom(&["inspect", name]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

fn ports_of(d: &Daemon, name: &str) -> String {
    d.netloom(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", name])
        .ok()
        .stdout
}

/// The endpoint id a failed start names (it is released with the failed attempt).
fn assert_conflict(r: &Run, container: &str, text: &str) {
    assert_eq!(r.code, 125, "{r:?}");
    let prefix = format!(
        "netloom: Error response from daemon: failed to set up container networking: driver failed programming external connectivity on endpoint {container} ("
    );
    assert!(r.stderr.starts_with(&prefix), "{r:?}");
    assert!(r.stderr.ends_with(&format!("): {text}\n")), "{r:?}");
}

fn local_port_range(d: &Daemon) -> (u16, u16) {
    let text = in_daemon_ns(d, &["cat", "/proc/sys/net/ipv4/ip_local_port_range"])
        .ok()
        .stdout;
    let mut it = text.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn random_host_ports_come_from_the_local_port_range() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let (start, end) = local_port_range(&d);
    run_d(&d, &["--name", "c1", "-p", "80", "--", "sleep", "300"]);
    run_d(&d, &["--name", "c2", "-p", "80", "--", "sleep", "300"]);
    // The first port handed out is the range's first; the next is the one after the last.
    let want = format!("80/tcp -> 0.0.0.0:{start}\n80/tcp -> [::]:{start}\n");
    assert_eq!(d.netloom(&["port", "c1"]).ok().stdout, want);
    assert_eq!(d.docker(&["port", "c1"]).ok().stdout, want);
    let next = start + 1;
    assert!(next <= end);
    assert_eq!(
        d.netloom(&["port", "c2", "80"]).ok().stdout,
        format!("0.0.0.0:{next}\n[::]:{next}\n")
    );
    assert_eq!(
        d.docker(&["port", "c2", "80/tcp"]).ok().stdout,
        format!("0.0.0.0:{next}\n[::]:{next}\n")
    );
    // The daemon really holds them.
    assert!(!bindable(&d, "0.0.0.0", start));
    assert!(!bindable(&d, "::", next));
    // Errors of `port`, as docker prints them.
    for args in [
        &["port", "c1", "81"][..],
        &["port", "c1", "x"],
        &["port", "nope"],
    ] {
        let n = d.netloom(args);
        let k = d.docker(args);
        assert_eq!((n.code, &n.stderr), (k.code, &k.stderr), "{args:?}");
        assert_eq!(n.code, 1, "{n:?}");
    }
    d.netloom(&["rm", "-f", "c1", "c2"]).ok();
}

#[test]
fn a_port_another_container_holds_is_refused_and_nothing_changes() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    run_d(&d, &["--name", "c1", "-p", "8081:80", "--", "sleep", "300"]);
    d.netloom(&[
        "create", "--name", "c2", "-p", "8081:80", "--", "sleep", "300",
    ])
    .ok();
    let before = inspect_json(&d, "c2");
    let r = d.netloom(&["start", "c2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .ends_with("): Bind for 0.0.0.0:8081 failed: port is already allocated\nError: failed to start containers: c2\n"),
        "{r:?}"
    );
    assert_eq!(inspect_json(&d, "c2"), before);
    // `run` says it Docker's way, exit 125; the new container stays created, not running.
    let r = d.netloom(&[
        "run", "-d", "--name", "c3", "-p", "8081:80", "--", "sleep", "300",
    ]);
    assert_conflict(
        &r,
        "c3",
        "Bind for 0.0.0.0:8081 failed: port is already allocated",
    );
    // The stock docker CLI gets the same message (and its own run hint).
    let k = d.docker(&[
        "run", "-d", "--name", "c6", "-p", "8081:80", "none", "sleep", "300",
    ]);
    assert_eq!(k.code, 125, "{k:?}");
    assert!(
        k.stderr.starts_with("docker: Error response from daemon: failed to set up container networking: driver failed programming external connectivity on endpoint c6 ("),
        "{k:?}"
    );
    assert!(
        k.stderr.ends_with("): Bind for 0.0.0.0:8081 failed: port is already allocated\n\nRun 'docker run --help' for more information\n"),
        "{k:?}"
    );
    let c3 = inspect_json(&d, "c3");
    assert_eq!(c3["State"]["Status"], "created");
    assert_eq!(c3["NetworkSettings"]["Ports"], serde_json::json!({}));
    assert_eq!(c3["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], "");
    // The addresses of the failed attempts were given back: the next container gets .3.
    run_d(&d, &["--name", "c4", "--", "sleep", "300"]);
    assert_eq!(
        inspect_json(&d, "c4")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"],
        "172.17.0.3"
    );
    // A port only on another address is no conflict for the table.
    run_d(
        &d,
        &[
            "--name",
            "c5",
            "-p",
            "127.0.0.1:8082:80",
            "--",
            "sleep",
            "300",
        ],
    );
    d.netloom(&["rm", "-f", "c1", "c2", "c3", "c4", "c5", "c6"])
        .ok();
}

#[test]
fn a_port_another_program_holds_is_refused_and_nothing_stays_bound() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let holder = Holder::listen(&d, "0.0.0.0", 8081);
    d.netloom(&[
        "create", "--name", "c1", "-p", "8081:80", "--", "sleep", "300",
    ])
    .ok();
    let before = inspect_json(&d, "c1");
    let r = d.netloom(&["start", "c1"]);
    assert!(
        r.stderr.ends_with(
            "): failed to bind host port 0.0.0.0:8081/tcp: address already in use\nError: failed to start containers: c1\n"
        ),
        "{r:?}"
    );
    assert_eq!(inspect_json(&d, "c1"), before);
    let r = d.netloom(&[
        "run", "-d", "--name", "c2", "-p", "8081:80", "--", "sleep", "300",
    ]);
    assert_conflict(
        &r,
        "c2",
        "failed to bind host port 0.0.0.0:8081/tcp: address already in use",
    );
    // The IPv6 half was not left bound, and once the program is gone the port is free.
    assert!(bindable(&d, "::", 8081));
    drop(holder);
    d.netloom(&["start", "c1"]).ok();
    assert_eq!(
        d.netloom(&["port", "c1"]).ok().stdout,
        "80/tcp -> 0.0.0.0:8081\n80/tcp -> [::]:8081\n"
    );
    // A dynamic port skips a port a program holds (Docker retries the next one).
    let (start, _) = local_port_range(&d);
    let _h = Holder::listen(&d, "0.0.0.0", start);
    run_d(&d, &["--name", "c3", "-p", "80", "--", "sleep", "300"]);
    assert_eq!(
        d.netloom(&["port", "c3", "80"]).ok().stdout,
        format!("0.0.0.0:{0}\n[::]:{0}\n", start + 1)
    );
    d.netloom(&["rm", "-f", "c1", "c2", "c3"]).ok();
}

#[test]
fn ports_are_released_at_stop_and_rebound_after_a_daemon_restart() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path());
    run_d(
        &d,
        &[
            "--name",
            "c1",
            "-p",
            "8083:80",
            "-p",
            "8084:81/udp",
            "--",
            "sleep",
            "300",
        ],
    );
    assert!(!bindable(&d, "0.0.0.0", 8083));
    d.kill9();
    d.spawn();
    // Re-bound by the new daemon, and still in its table.
    assert!(!bindable(&d, "0.0.0.0", 8083));
    assert!(!bindable(&d, "::", 8083));
    assert_eq!(
        d.netloom(&["port", "c1"]).ok().stdout,
        "80/tcp -> 0.0.0.0:8083\n80/tcp -> [::]:8083\n81/udp -> 0.0.0.0:8084\n81/udp -> [::]:8084\n"
    );
    let r = d.netloom(&[
        "run", "-d", "--name", "c2", "-p", "8083:80", "--", "sleep", "300",
    ]);
    assert_conflict(
        &r,
        "c2",
        "Bind for 0.0.0.0:8083 failed: port is already allocated",
    );
    d.netloom(&["stop", "-t", "1", "c1"]).ok();
    assert!(bindable(&d, "0.0.0.0", 8083));
    assert!(bindable(&d, "::", 8083));
    assert_eq!(d.netloom(&["port", "c1"]).ok().stdout, "");
    assert_eq!(ports_of(&d, "c1"), "{}\n");
    d.netloom(&["start", "c2"]).ok();
    assert_eq!(
        d.netloom(&["port", "c2", "80"]).ok().stdout,
        "0.0.0.0:8083\n[::]:8083\n"
    );
    d.netloom(&["rm", "-f", "c1", "c2"]).ok();
}

#[test]
fn inspect_ps_and_port_match_the_docker_cli() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    run_d(
        &d,
        &[
            "--name",
            "web",
            "-p",
            "8085:80",
            "-p",
            "127.0.0.1:8086:81/udp",
            "-p",
            "[::1]:8087-8088:90-91",
            "--expose",
            "100",
            "--",
            "sleep",
            "300",
        ],
    );
    let ports = ports_of(&d, "web");
    assert_eq!(
        ports,
        "{\"100/tcp\":null,\"80/tcp\":[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"8085\"},{\"HostIp\":\"::\",\"HostPort\":\"8085\"}],\"81/udp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"8086\"}],\"90/tcp\":[{\"HostIp\":\"::1\",\"HostPort\":\"8087\"}],\"91/tcp\":[{\"HostIp\":\"::1\",\"HostPort\":\"8088\"}]}\n"
    );
    for format in [
        "{{json .NetworkSettings.Ports}}",
        "{{json .HostConfig.PortBindings}}",
        "{{json .Config.ExposedPorts}}",
    ] {
        let n = d.netloom(&["inspect", "-f", format, "web"]).ok().stdout;
        let k = d.docker(&["inspect", "-f", format, "web"]).ok().stdout;
        assert_eq!(n, k, "{format}");
    }
    assert_eq!(
        d.netloom(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", "web"])
            .ok()
            .stdout,
        "{\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"8085\"}],\"81/udp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"8086\"}],\"90/tcp\":[{\"HostIp\":\"::1\",\"HostPort\":\"8087\"}],\"91/tcp\":[{\"HostIp\":\"::1\",\"HostPort\":\"8088\"}]}\n"
    );
    let n = d.netloom(&["port", "web"]).ok().stdout;
    assert_eq!(n, d.docker(&["port", "web"]).ok().stdout);
    assert_eq!(
        n,
        "80/tcp -> 0.0.0.0:8085\n80/tcp -> [::]:8085\n81/udp -> 127.0.0.1:8086\n90/tcp -> [::1]:8087\n91/tcp -> [::1]:8088\n"
    );
    let n = d
        .netloom(&["ps", "--format", "{{.Names}} {{.Ports}}"])
        .ok()
        .stdout;
    let k = d
        .docker(&["ps", "--format", "{{.Names}} {{.Ports}}"])
        .ok()
        .stdout;
    assert_eq!(n, k);
    assert_eq!(
        n,
        "web 100/tcp, 0.0.0.0:8085->80/tcp, [::]:8085->80/tcp, 127.0.0.1:8086->81/udp, [::1]:8087->90/tcp, [::1]:8088->91/tcp\n"
    );
    // Nothing published or exposed.
    run_d(&d, &["--name", "plain", "--", "sleep", "300"]);
    for format in [
        "{{json .NetworkSettings.Ports}}",
        "{{json .HostConfig.PortBindings}}",
        "{{json .Config.ExposedPorts}}",
    ] {
        let n = d.netloom(&["inspect", "-f", format, "plain"]).ok().stdout;
        let k = d.docker(&["inspect", "-f", format, "plain"]).ok().stdout;
        assert_eq!(n, k, "{format}");
    }
    assert_eq!(d.netloom(&["port", "plain"]).ok().stdout, "");
    assert_eq!(d.docker(&["port", "plain"]).ok().stdout, "");
    // The default table's PORTS column too (docker's has IMAGE on top; compare the column).
    let table = d.netloom(&["ps"]).ok().stdout;
    assert!(
        table.contains("0.0.0.0:8085->80/tcp, [::]:8085->80/tcp"),
        "{table}"
    );
    d.netloom(&["rm", "-f", "web", "plain"]).ok();
}

#[test]
fn publish_specs_are_checked_like_docker() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    for (spec, text) in [
        ("8080:x", "invalid containerPort: x"),
        ("x:80", "invalid hostPort: x"),
        (
            "8000-8005:80-90",
            "invalid ranges specified for container and host Ports: 80-90 and 8000-8005",
        ),
        ("1.2.3.4.5:80:80", "invalid IP address: 1.2.3.4.5"),
        ("80/icmp", "invalid proto: icmp"),
    ] {
        let r = d.netloom(&["run", "-d", "-p", spec, "--", "true"]);
        assert_eq!(r.code, 125, "{spec}: {r:?}");
        assert_eq!(
            r.stderr,
            format!("netloom: {text}\n\nRun 'netloom run --help' for more information\n")
        );
        let k = d.docker(&["run", "-d", "-p", spec, "none", "true"]);
        assert_eq!(
            (k.code, k.stderr),
            (125, r.stderr.replace("netloom", "docker")),
            "{spec}"
        );
    }
    // Host mode: Docker's warning (from the daemon), nothing published.
    let r = d
        .netloom(&[
            "run",
            "-d",
            "--network",
            "host",
            "--name",
            "hostc",
            "-p",
            "8089:80",
            "--",
            "sleep",
            "300",
        ])
        .ok();
    assert_eq!(
        r.stderr,
        "WARNING: Published ports are discarded when using host network mode\n"
    );
    assert_eq!(ports_of(&d, "hostc"), "{}\n");
    assert!(bindable(&d, "0.0.0.0", 8089));
    // An internal network publishes nothing (Docker neither warns nor fails).
    d.netloom(&["network", "create", "--internal", "inside"])
        .ok();
    run_d(
        &d,
        &[
            "--network",
            "inside",
            "--name",
            "inner",
            "-p",
            "8090:80",
            "--",
            "sleep",
            "300",
        ],
    );
    assert_eq!(ports_of(&d, "inner"), "{}\n");
    assert_eq!(d.netloom(&["port", "inner"]).ok().stdout, "");
    assert!(bindable(&d, "0.0.0.0", 8090));
    d.netloom(&["rm", "-f", "hostc", "inner"]).ok();
}

#[test]
fn a_published_tcp_port_reaches_the_container() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let server = "import socket\nl=socket.socket()\nl.bind(('0.0.0.0',80))\nl.listen(8)\nwhile True:\n  c,_=l.accept()\n  c.sendall(b'hello through netloom')\n  c.close()\n";
    run_d(
        &d,
        &[
            "--name", "srv", "-p", "8091:80", "--", "timeout", "120", "python3", "-c", server,
        ],
    );
    let client = "import socket,time\nfor i in range(100):\n  try:\n    s=socket.create_connection(('127.0.0.1',8091),timeout=2)\n    b=s.recv(100)\n    if b: break\n  except OSError: pass\n  time.sleep(0.1)\nprint(b.decode())\n";
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let r = in_daemon_ns(&d, &["python3", "-c", client]);
        if r.stdout.trim() == "hello through netloom" || Instant::now() > deadline {
            break r;
        }
    };
    assert_eq!(got.stdout, "hello through netloom\n", "{got:?}");
    d.netloom(&["rm", "-f", "srv"]).ok();
}

/// Docker moves a running container's published ports with its external connectivity when the
/// network they forward to is disconnected; with no network left that publishes, they are
/// dropped (and come back at the next start).
#[test]
fn disconnecting_the_publishing_network_moves_the_ports() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "--subnet", "10.77.1.0/24", "first"])
        .ok();
    d.netloom(&["network", "create", "--subnet", "10.77.2.0/24", "second"])
        .ok();
    let server = "import socket\nl=socket.socket()\nl.bind(('0.0.0.0',80))\nl.listen(8)\nwhile True:\n  c,_=l.accept()\n  c.sendall(b'moved with the ports')\n  c.close()\n";
    run_d(
        &d,
        &[
            "--name",
            "srv",
            "--network",
            "first",
            "-p",
            "8093:80",
            "--",
            "timeout",
            "120",
            "python3",
            "-c",
            server,
        ],
    );
    d.netloom(&["network", "connect", "second", "srv"]).ok();
    d.netloom(&["network", "disconnect", "first", "srv"]).ok();
    let client = "import socket,time\nb=b''\nfor i in range(100):\n  try:\n    s=socket.create_connection(('127.0.0.1',8093),timeout=2)\n    b=s.recv(100)\n    if b: break\n  except OSError: pass\n  time.sleep(0.1)\nprint(b.decode())\n";
    let got = in_daemon_ns(&d, &["python3", "-c", client]);
    assert_eq!(got.stdout, "moved with the ports\n", "{got:?}");
    assert_eq!(
        d.netloom(&["port", "srv", "80"]).ok().stdout.trim(),
        "0.0.0.0:8093\n[::]:8093".trim(),
    );
    // Leaving the last network drops them: nothing listens on the host port any more.
    d.netloom(&["network", "disconnect", "second", "srv"]).ok();
    assert!(
        bindable(&d, "0.0.0.0", 8093),
        "the host port is released when no network is left"
    );
    d.netloom(&["rm", "-f", "srv"]).ok();
}

/// A container server that tells each client the address it sees, then answers the SHA-256
/// and length of everything the client sent before half-closing (and also listens on its
/// loopback only, on port 81).
const ECHO_PEER_SERVER: &str = "import socket,threading,hashlib\n\
def serve(c):\n  c.sendall((c.getpeername()[0]+'\\n').encode())\n  h=hashlib.sha256();n=0\n  while True:\n    b=c.recv(65536)\n    if not b: break\n    h.update(b);n+=len(b)\n  c.sendall(f'{h.hexdigest()} {n}\\n'.encode())\n  c.close()\n\
lo=socket.socket();lo.bind(('127.0.0.1',81));lo.listen(8)\n\
l=socket.socket();l.bind(('0.0.0.0',80));l.listen(8)\n\
while True:\n  c,_=l.accept()\n  threading.Thread(target=serve,args=(c,)).start()\n";

/// A client on the daemon's loopback: prints the address the server saw, then the server's
/// answer for 4 MiB of seeded random bytes sent with a half-close, and the expected answer.
fn peer_and_digest_client(port: u16) -> String {
    format!(
        "import socket,time,hashlib,random\n\
for i in range(100):\n  try:\n    s=socket.create_connection(('127.0.0.1',{port}),timeout=5)\n    f=s.makefile('rb')\n    peer=f.readline().decode().strip()\n    if peer: break\n  except OSError: pass\n  time.sleep(0.1)\n\
data=random.Random(7).randbytes(4<<20)\n\
s.sendall(data)\ns.shutdown(socket.SHUT_WR)\n\
print(peer)\nprint(f.readline().decode().strip())\nprint(f'{{hashlib.sha256(data).hexdigest()}} {{len(data)}}')\n"
    )
}

/// A client of a port whose container service listens on its loopback only: prints what
/// the connection gave (nothing: the splice path connects to the container's address, not
/// to its loopback).
fn loopback_only_client(port: u16) -> String {
    format!(
        "import socket\ntry:\n  s=socket.create_connection(('127.0.0.1',{port}),timeout=5)\n  s.settimeout(5)\n  print('got', s.recv(100))\nexcept OSError as e:\n  print('refused', type(e).__name__)\n"
    )
}

/// Loopback clients of a published TCP port take the splice fast path: the container sees
/// them come from its own address (pasta's splice path shows 127.0.0.1 instead), the bytes
/// and the half-close arrive intact, and a service bound to the container's loopback stays
/// out of reach. `--no-port-splice` carries them through the gateway, which they then appear
/// to come from.
#[test]
fn loopback_clients_are_spliced_unless_the_daemon_is_told_not_to() {
    for (flags, splice) in [(&[][..], true), (&["--no-port-splice"][..], false)] {
        let dir = tempdir();
        let d = Daemon::start_with(dir.path(), flags);
        run_d(
            &d,
            &[
                "--name",
                "srv",
                "-p",
                "8096:80",
                "-p",
                "8097:81",
                "--",
                "timeout",
                "120",
                "python3",
                "-c",
                ECHO_PEER_SERVER,
            ],
        );
        let net = &inspect_json(&d, "srv")["NetworkSettings"]["Networks"]["bridge"];
        let own = net["IPAddress"].as_str().unwrap().to_owned();
        let gateway = net["Gateway"].as_str().unwrap().to_owned();
        let got = in_daemon_ns(&d, &["python3", "-c", &peer_and_digest_client(8096)]);
        let lines: Vec<&str> = got.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{got:?}");
        let want_peer = if splice { &own } else { &gateway };
        assert_eq!(lines[0], want_peer, "splice={splice}: {got:?}");
        assert_eq!(lines[1], lines[2], "the bytes arrived intact: {got:?}");
        let lo = in_daemon_ns(&d, &["python3", "-c", &loopback_only_client(8097)]);
        assert!(
            lo.stdout.starts_with("refused") || lo.stdout.trim() == "got b''",
            "the container's loopback-only service must stay unreachable: {lo:?}"
        );
        let stats = d.netloom(&["stats", "--format", "json"]).ok().stdout;
        let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
        assert_eq!(stats["Nat"]["bridge"]["TcpSpliced"], 0, "{stats}");
        // The loopback-only service refused the one spliced connection to it: counted.
        assert_eq!(
            stats["Nat"]["bridge"]["TcpSpliceFailures"],
            u64::from(splice),
            "{stats}"
        );
        d.netloom(&["rm", "-f", "srv"]).ok();
    }
}
