//! Containers: `netloom run` and friends, the network modes of SPEC section 3, the address
//! lifecycle of SPEC section 2 and hot-plugging with `network connect/disconnect`. Containers
//! run host commands (`sleep`, `ping`, `ip`) in their own namespaces; the daemon runs in a
//! network namespace of its own.

use crate::common::{Daemon, Run, link_names, tempdir};

fn run_d(d: &Daemon, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let r = d.netloom(&a).ok();
    let id = r.stdout.trim().to_owned();
    assert_eq!(id.len(), 64, "{r:?}");
    id
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

fn exec(d: &Daemon, args: &[&str]) -> Run {
    let mut a = vec!["exec"];
    a.extend_from_slice(args);
    d.netloom(&a)
}

fn links(d: &Daemon, name: &str) -> Vec<String> {
    link_names(&exec(d, &[name, "ip", "-o", "link", "show"]).ok().stdout)
}

#[test]
fn tutorial_address_sequence_and_lifecycle() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    run_d(&d, &["--name", "u1", "--", "sleep", "300"]);
    run_d(&d, &["--name", "u2", "--", "sleep", "300"]);
    assert_eq!(ip_of(&d, "u1"), "172.17.0.2");
    assert_eq!(ip_of(&d, "u2"), "172.17.0.3");
    let mac = d
        .netloom(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.bridge.MacAddress}}",
            "u2",
        ])
        .ok();
    assert_eq!(mac.stdout, "02:42:ac:11:00:03\n");
    assert_eq!(d.netloom(&["stop", "u2"]).ok().stdout, "u2\n");
    // A stopped container shows empty IP, MAC and gateway; its address is free at once.
    let stopped = d
        .netloom(&["inspect", "-f", "{{.State.Status}} [{{.NetworkSettings.Networks.bridge.IPAddress}}] [{{.NetworkSettings.Networks.bridge.MacAddress}}] [{{.NetworkSettings.Networks.bridge.Gateway}}]", "u2"])
        .ok();
    assert_eq!(stopped.stdout, "exited [] [] []\n");
    run_d(&d, &["--name", "u3", "--", "sleep", "300"]);
    assert_eq!(ip_of(&d, "u3"), "172.17.0.3");
    // Restarting u2 takes the lowest free address again.
    assert_eq!(d.netloom(&["start", "u2"]).ok().stdout, "u2\n");
    assert_eq!(ip_of(&d, "u2"), "172.17.0.4");

    let ps = d.netloom(&["ps"]).ok().stdout;
    let lines: Vec<&str> = ps.lines().collect();
    assert!(
        lines[0].starts_with("CONTAINER ID   COMMAND       CREATED"),
        "{ps}"
    );
    assert_eq!(lines.len(), 4, "{ps}");
    assert!(
        lines
            .iter()
            .skip(1)
            .all(|l| l.contains("\"sleep 300\"") && l.contains(" Up ")),
        "{ps}"
    );

    // On the default bridge containers reach each other by address, and the gateway.
    assert_eq!(
        exec(&d, &["u1", "ping", "-c", "1", "-W", "2", "172.17.0.3"]).code,
        0
    );
    assert_eq!(
        exec(&d, &["u1", "ping", "-c", "1", "-W", "2", "172.17.0.1"]).code,
        0
    );
    // Their private files, as Docker writes them.
    let hosts = exec(&d, &["u1", "cat", "/etc/hosts"]).ok().stdout;
    let short = d
        .netloom(&["inspect", "-f", "{{.Config.Hostname}}", "u1"])
        .ok()
        .stdout;
    assert_eq!(
        hosts,
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n172.17.0.2\t{}\n",
            short.trim()
        )
    );
    assert_eq!(exec(&d, &["u1", "hostname"]).ok().stdout, short);

    // rm of a running container is refused; -f kills it.
    let r = d.netloom(&["rm", "u1"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error response from daemon: cannot remove container \"u1\": container is running: stop the container before removing or force remove\n"
    );
    assert_eq!(
        d.netloom(&["rm", "-f", "u1", "u2", "u3"]).ok().stdout,
        "u1\nu2\nu3\n"
    );
    assert_eq!(d.netloom(&["ps", "-a", "-q"]).ok().stdout, "");
}

#[test]
fn foreground_run_exit_codes_and_logs() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let r = d.netloom(&[
        "run",
        "--name",
        "fg",
        "--",
        "sh",
        "-c",
        "echo hello; echo oops >&2; exit 3",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (3, "hello\noops\n"), "{r:?}");
    assert_eq!(d.netloom(&["logs", "fg"]).ok().stdout, "hello\noops\n");
    let ps = d
        .netloom(&["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"])
        .ok()
        .stdout;
    assert!(ps.starts_with("fg exited Exited (3) "), "{ps}");
    let r = d.netloom(&["run", "--", "no-such-command-here"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(
        r.stderr.contains("executable file not found in $PATH"),
        "{r:?}"
    );
    let r = d.netloom(&["run", "--name", "fg", "--", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr
            .contains("Conflict. The container name \"/fg\" is already in use"),
        "{r:?}"
    );
    let r = d
        .netloom(&["run", "--rm", "--name", "gone", "--", "true"])
        .ok();
    assert_eq!(r.stdout, "");
    assert_eq!(d.netloom(&["inspect", "gone"]).code, 1);
}

#[test]
fn network_modes() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    // host: a warning for -p, and the daemon's own namespace (here: only lo).
    let r = d
        .netloom(&[
            "run",
            "-d",
            "--network",
            "host",
            "-p",
            "8083:8080",
            "--name",
            "h1",
            "--",
            "sleep",
            "300",
        ])
        .ok();
    assert_eq!(
        r.stderr,
        "WARNING: Published ports are discarded when using host network mode\n"
    );
    assert_eq!(links(&d, "h1"), ["lo"]);
    let mode = d
        .netloom(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", "h1"])
        .ok()
        .stdout;
    assert_eq!(mode, "host\n");

    // none: only lo, and it is up.
    run_d(
        &d,
        &["--network", "none", "--name", "n1", "--", "sleep", "300"],
    );
    assert_eq!(links(&d, "n1"), ["lo"]);
    assert_eq!(
        exec(&d, &["n1", "ping", "-c", "1", "-W", "1", "127.0.0.1"]).code,
        0
    );

    // container:NAME shares the owner's namespace and address.
    run_d(&d, &["--name", "alpine1", "--", "sleep", "300"]);
    let r = d.netloom(&[
        "run",
        "-d",
        "-p",
        "8086:8080",
        "--network",
        "container:alpine1",
        "--name",
        "xx",
        "--",
        "sleep",
        "1",
    ]);
    assert_eq!(r.code, 125);
    assert_eq!(
        r.stderr,
        "netloom: Error response from daemon: conflicting options: port publishing and the container type network mode\n"
    );
    run_d(
        &d,
        &[
            "--network",
            "container:alpine1",
            "--name",
            "alpine2",
            "--",
            "sleep",
            "300",
        ],
    );
    let a1 = exec(&d, &["alpine1", "ip", "-o", "-4", "addr", "show", "eth0"])
        .ok()
        .stdout;
    let a2 = exec(&d, &["alpine2", "ip", "-o", "-4", "addr", "show", "eth0"])
        .ok()
        .stdout;
    assert!(a1.contains("172.17.0.2/16"), "{a1}");
    assert_eq!(a1, a2);
    // Connecting a namespace sharer to a network is refused.
    d.netloom(&["network", "create", "extra"]).ok();
    let r = d.netloom(&["network", "connect", "extra", "alpine2"]);
    assert_eq!(
        r.stderr,
        "Error response from daemon: container sharing network namespace with another container or host cannot be connected to any other network\n"
    );
    // When the owner stops, the joined container keeps only lo.
    d.netloom(&["stop", "alpine1"]).ok();
    assert_eq!(links(&d, "alpine2"), ["lo"]);
    // A joined container cannot start while its owner is stopped.
    d.netloom(&["stop", "alpine2"]).ok();
    let owner = d
        .netloom(&["inspect", "-f", "{{.Id}}", "alpine1"])
        .ok()
        .stdout;
    let r = d.netloom(&["start", "alpine2"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!(
            "Error response from daemon: cannot join network of a non running container: {}\nError: failed to start containers: alpine2\n",
            owner.trim()
        )
    );
}

#[test]
fn user_networks_connect_and_disconnect() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "mhk_network"]).ok();
    d.netloom(&["network", "create", "--subnet", "10.60.0.0/24", "other"])
        .ok();
    run_d(
        &d,
        &[
            "--network",
            "mhk_network",
            "--name",
            "tomcat81",
            "--",
            "sleep",
            "300",
        ],
    );
    // --ip needs a user-configured subnet (Docker refuses it at create).
    let r = d.netloom(&[
        "run",
        "-d",
        "--network",
        "mhk_network",
        "--ip",
        "172.18.0.50",
        "--name",
        "bad",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 125);
    assert_eq!(
        r.stderr,
        "netloom: Error response from daemon: user specified IP address is supported only when connecting to networks with user configured subnets\n"
    );
    assert_eq!(
        d.netloom(&["ps", "-a", "-q"]).ok().stdout.lines().count(),
        1
    );
    run_d(
        &d,
        &[
            "--network",
            "other",
            "--ip",
            "10.60.0.77",
            "--name",
            "tomcat82",
            "--",
            "sleep",
            "300",
        ],
    );
    assert_eq!(ip_of(&d, "tomcat81"), "172.18.0.2");
    assert_eq!(ip_of(&d, "tomcat82"), "10.60.0.77");
    // Different networks: no route through the gateway.
    assert_ne!(
        exec(
            &d,
            &["tomcat81", "ping", "-c", "1", "-W", "1", "10.60.0.77"]
        )
        .code,
        0
    );
    // Hot-plug: tomcat81 gets eth1 on `other` and reaches tomcat82 there.
    d.netloom(&[
        "network",
        "connect",
        "--ip",
        "10.60.0.5",
        "other",
        "tomcat81",
    ])
    .ok();
    assert_eq!(links(&d, "tomcat81"), ["lo", "eth0", "eth1"]);
    assert_eq!(
        exec(
            &d,
            &["tomcat81", "ping", "-c", "1", "-W", "2", "10.60.0.77"]
        )
        .code,
        0
    );
    let inspect = d
        .netloom(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            "other",
        ])
        .ok()
        .stdout;
    let mut names: Vec<&str> = inspect.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["tomcat81", "tomcat82"]);
    let r = d.netloom(&["network", "rm", "other"]);
    assert!(r.stderr.starts_with("Error response from daemon: error while removing network: network other has active endpoints ("), "{r:?}");
    d.netloom(&["network", "disconnect", "other", "tomcat81"])
        .ok();
    assert_eq!(links(&d, "tomcat81"), ["lo", "eth0"]);
    let r = d.netloom(&["network", "disconnect", "other", "tomcat81"]);
    assert!(
        r.stderr.contains("is not connected to network other"),
        "{r:?}"
    );
}

#[test]
fn containers_survive_a_daemon_restart() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "net1"]).ok();
    run_d(
        &d,
        &["--network", "net1", "--name", "c1", "--", "sleep", "300"],
    );
    run_d(
        &d,
        &["--network", "net1", "--name", "c2", "--", "sleep", "300"],
    );
    assert_eq!(
        exec(&d, &["c1", "ping", "-c", "1", "-W", "2", "172.18.0.3"]).code,
        0
    );
    d.kill9();
    d.spawn();
    assert_eq!(
        exec(&d, &["c1", "ping", "-c", "1", "-W", "2", "172.18.0.3"]).code,
        0
    );
    assert_eq!(ip_of(&d, "c1"), "172.18.0.2");
    assert_eq!(ip_of(&d, "c2"), "172.18.0.3");
    // The adopted containers still stop and release their addresses.
    d.netloom(&["stop", "-t", "1", "c2"]).ok();
    run_d(
        &d,
        &["--network", "net1", "--name", "c3", "--", "sleep", "300"],
    );
    assert_eq!(ip_of(&d, "c3"), "172.18.0.3");
    d.netloom(&["rm", "-f", "c1", "c2", "c3"]).ok();
}

#[test]
fn tcp_between_containers() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "net1"]).ok();
    let server = "import socket,hashlib\nl=socket.socket()\nl.bind(('0.0.0.0',7000))\nl.listen(1)\nc,_=l.accept()\nh=hashlib.sha256()\nn=0\nwhile True:\n  b=c.recv(65536)\n  if not b: break\n  h.update(b); n+=len(b)\nprint(n, h.hexdigest(), flush=True)\n";
    run_d(
        &d,
        &[
            "--network",
            "net1",
            "--name",
            "srv",
            "--",
            "timeout",
            "60",
            "python3",
            "-c",
            server,
        ],
    );
    run_d(
        &d,
        &["--network", "net1", "--name", "cli", "--", "sleep", "300"],
    );
    let client = "import socket,hashlib,time\ndata=bytes(range(256))*16384\nfor i in range(50):\n  try:\n    s=socket.create_connection(('172.18.0.2',7000),timeout=1); break\n  except OSError: time.sleep(0.1)\ns.sendall(data)\ns.close()\nprint(len(data), hashlib.sha256(data).hexdigest())\n";
    let sent = exec(&d, &["cli", "python3", "-c", client]).ok().stdout;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let state = d
            .netloom(&["inspect", "-f", "{{.State.Status}}", "srv"])
            .ok()
            .stdout;
        if state.trim() == "exited" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let received = d.netloom(&["logs", "srv"]).ok().stdout;
    assert_eq!(received.trim(), sent.trim());
    assert!(received.starts_with("4194304 "), "{received}");
}
