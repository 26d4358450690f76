//! The spine: `netloom network ...` and the stock docker CLI against the daemon's Engine API.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};

use crate::common::{Daemon, Run, tempdir};

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks one `network ls` row: 12-hex id, then the padded cells.
#[track_caller]
fn assert_row(line: &str, rest: &str) {
    let (id, tail) = line.split_at(12);
    assert!(is_hex(id, 12), "bad id in {line:?}");
    assert_eq!(tail, format!("   {rest}"), "row {line:?}");
}

#[test]
fn seed_sequence() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());

    let ls = d.netloom(&["network", "ls"]).ok().stdout;
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 4, "{ls}");
    assert_eq!(lines[0], "NETWORK ID     NAME      DRIVER    SCOPE");
    assert_row(lines[1], "bridge    bridge    local");
    assert_row(lines[2], "host      host      local");
    assert_row(lines[3], "none      null      local");
    assert!(ls.ends_with("local\n"));

    let id = d.netloom(&["network", "create", "mhk_network"]).ok().stdout;
    assert!(id.ends_with('\n') && is_hex(id.trim_end(), 64), "{id:?}");
    let id = id.trim_end().to_owned();

    let ls = d.netloom(&["network", "ls"]).ok().stdout;
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines[0], "NETWORK ID     NAME          DRIVER    SCOPE");
    assert_row(lines[1], "bridge        bridge    local");
    assert_row(lines[2], "host          host      local");
    assert_eq!(
        lines[3],
        format!("{}   mhk_network   bridge    local", &id[..12])
    );
    assert_row(lines[4], "none          null      local");

    let inspect = d
        .netloom(&["network", "inspect", "mhk_network"])
        .ok()
        .stdout;
    let created = d
        .netloom(&[
            "network",
            "inspect",
            "-f",
            "{{json .Created}}",
            "mhk_network",
        ])
        .ok()
        .stdout
        .trim_end()
        .trim_matches('"')
        .to_owned();
    let want = format!(
        r#"[
    {{
        "Name": "mhk_network",
        "Id": "{id}",
        "Created": "{created}",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {{
            "Driver": "default",
            "Options": {{}},
            "Config": [
                {{
                    "Subnet": "172.18.0.0/16",
                    "Gateway": "172.18.0.1"
                }}
            ]
        }},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {{
            "Network": ""
        }},
        "ConfigOnly": false,
        "Containers": {{}},
        "Options": {{}},
        "Labels": {{}}
    }}
]
"#,
    );
    assert_eq!(inspect, want);

    assert_eq!(
        d.netloom(&["network", "rm", "mhk_network"]).ok().stdout,
        "mhk_network\n"
    );
    assert_eq!(
        d.netloom(&["network", "ls", "-q"])
            .ok()
            .stdout
            .lines()
            .count(),
        3
    );

    // The freed pool is the first free one again.
    d.netloom(&["network", "create", "second"]).ok();
    let sub = d
        .netloom(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
            "second",
        ])
        .ok()
        .stdout;
    assert_eq!(sub, "172.18.0.0/16 172.18.0.1\n");
    d.netloom(&["network", "create", "third"]).ok();
    let sub = d
        .netloom(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "third",
        ])
        .ok()
        .stdout;
    assert_eq!(sub, "172.19.0.0/16\n");

    let pruned = d.netloom(&["network", "prune", "-f"]).ok().stdout;
    assert_eq!(pruned, "Deleted Networks:\nsecond\nthird\n\n");
    assert_eq!(d.netloom(&["network", "prune", "-f"]).ok().stdout, "");
    assert_eq!(
        d.netloom(&["network", "ls", "-q"])
            .ok()
            .stdout
            .lines()
            .count(),
        3
    );
}

/// Both CLIs, same daemon state: every byte and exit code must agree (docker's program name in
/// its usage hints aside).
#[track_caller]
fn assert_same(d: &Daemon, args: &[&str]) -> Run {
    let ours = d.netloom(args);
    let theirs = d.docker(args);
    let theirs = Run {
        stdout: theirs.stdout,
        stderr: theirs.stderr.replace("docker", "netloom"),
        code: theirs.code,
    };
    assert_eq!(ours, theirs, "netloom vs docker for {args:?}");
    ours
}

#[test]
fn docker_cli_and_netloom_print_the_same() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());

    // docker creates, both read.
    let id = d.docker(&["network", "create", "mhk_network"]).ok().stdout;
    assert!(is_hex(id.trim_end(), 64), "{id}");
    d.docker(&[
        "network",
        "create",
        "--subnet",
        "10.10.0.0/16",
        "--gateway",
        "10.10.0.254",
        "--ip-range",
        "10.10.1.0/24",
        "--aux-address",
        "router=10.10.0.9",
        "--label",
        "team=blue",
        "--label",
        "tier",
        "--internal",
        "--attachable",
        "-o",
        "com.docker.network.driver.mtu=9000",
        "labelled",
    ])
    .ok();
    d.netloom(&["network", "create", "net10", "--label", "team=red"])
        .ok();
    d.netloom(&["network", "create", "net9"]).ok();

    for args in [
        &["network", "ls"][..],
        &["network", "ls", "-q"],
        &["network", "ls", "--no-trunc"],
        &["network", "ls", "-f", "driver=bridge"],
        &["network", "ls", "--filter", "name=net"],
        &["network", "ls", "--filter", "label=team=blue"],
        &["network", "ls", "--filter", "type=custom", "-q"],
        &["network", "ls", "--filter", "type=builtin"],
        &["network", "ls", "--filter", "dangling=true"],
        &["network", "ls", "--filter", "colour=red"],
        // (docker joins several labels in Go's random map order, so .Labels is compared on
        // networks with one label only.)
        &[
            "network",
            "ls",
            "--format",
            "{{.Name}}: {{.Driver}} {{.Internal}} {{.IPv4}}",
        ],
        &[
            "network",
            "ls",
            "-f",
            "name=net",
            "--format",
            "{{.Name}}: {{.Labels}} {{.Scope}}",
        ],
        &[
            "network",
            "ls",
            "--format",
            "table {{.Name}}\t{{.IPv6}}\t{{.Label \"team\"}}",
        ],
        &["network", "ls", "-f", "name=net", "--format", "json"],
        &["network", "inspect", "bridge", "host", "none"],
        &["network", "inspect", "mhk_network", "labelled"],
        &[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{json .IPAM.Config}}",
            "labelled",
            "net9",
        ],
        &["network", "inspect", "-f", "{{json .Options}}", "bridge"],
        &["network", "inspect", "nope"],
        &["network", "inspect", "net9", "nope", "net10"],
        &["network", "rm", "nope"],
        &["network", "rm", "bridge"],
        &["network", "rm", "-f", "nope"],
        &["network", "create", "mhk_network"],
        &["network", "create", "bad name"],
        &["network", "create", "--subnet", "10.0.0.0/33", "x"],
        &["network", "create", "--subnet", "10.20.0.1/16", "x"],
        &["network", "create", "--subnet", "10.10.5.0/24", "x"],
        &[
            "network",
            "create",
            "--subnet",
            "10.30.0.0/16",
            "--gateway",
            "10.31.0.1",
            "x",
        ],
        &["network", "create", "--gateway", "1.2.3.4", "x"],
        &["network", "create", "--foo", "x"],
        &["network", "create"],
        &["network", "rm"],
        &["network", "connect", "mhk_network", "c1"],
        &["network", "disconnect", "mhk_network", "c1"],
        &["network", "ls"],
    ] {
        assert_same(&d, args);
    }

    // Removal through either CLI prints the name, then the errors, from the same state.
    d.netloom(&["network", "create", "gone"]).ok();
    let ours = d.netloom(&["network", "rm", "gone", "nope"]);
    d.netloom(&["network", "create", "gone"]).ok();
    let theirs = d.docker(&["network", "rm", "gone", "nope"]);
    assert_eq!(ours, theirs);
    assert_eq!(
        (ours.stdout.as_str(), ours.stderr.as_str(), ours.code),
        (
            "gone\n",
            "Error response from daemon: network nope not found\nexit status 1\n",
            1
        )
    );

    // Prune: the prompt, a refusal, then a forced prune; same state before each pair.
    assert_same(&d, &["network", "prune"]);
    let ours = d.netloom_stdin(&["network", "prune"], "n\n");
    let theirs = d.docker_stdin(&["network", "prune"], "n\n");
    assert_eq!(ours, theirs);
    assert_eq!(
        ours.stdout,
        "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    let theirs = d.docker_stdin(&["network", "prune"], "y\n").ok();
    assert!(
        theirs.stdout.contains("[y/N] Deleted Networks:\n"),
        "{theirs:?}"
    );
    d.netloom(&["network", "create", "a1"]).ok();
    d.netloom(&["network", "create", "a2"]).ok();
    let ours = d.netloom_stdin(&["network", "prune"], "y\n").ok();
    d.docker(&["network", "create", "a1"]).ok();
    d.docker(&["network", "create", "a2"]).ok();
    let theirs = d.docker(&["network", "prune", "-f"]).ok();
    assert_eq!(
        ours.stdout,
        format!(
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] {}",
            theirs.stdout
        )
    );
    assert_eq!(theirs.stdout, "Deleted Networks:\na1\na2\n\n");
}

#[test]
fn bad_input_changes_nothing() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "keep", "--subnet", "10.50.0.0/16"])
        .ok();
    let before = d
        .netloom(&["network", "inspect", "bridge", "host", "none", "keep"])
        .ok();
    let cases: &[(&[&str], &str, i32)] = &[
        (
            &["network", "create", "--subnet", "nonsense", "x"],
            "Error response from daemon: ",
            1,
        ),
        (
            &[
                "network",
                "create",
                "--subnet",
                "10.60.0.0/16",
                "--gateway",
                "10.61.0.1",
                "x",
            ],
            "no matching subnet for gateway 10.61.0.1\n",
            1,
        ),
        (
            &["network", "create", "--subnet", "10.50.1.0/24", "x"],
            "Error response from daemon: ",
            1,
        ),
        (
            &["network", "create", "-x"],
            "unknown shorthand flag: 'x' in -x\n",
            125,
        ),
        (
            &["network", "create", "-bad"],
            "unknown shorthand flag: 'b' in -bad\n",
            125,
        ),
        (
            &["network", "create", "keep"],
            "Error response from daemon: network with name keep already exists\n",
            1,
        ),
        (
            &["network", "create", "_bad"],
            "Error response from daemon: ",
            1,
        ),
        (
            &["network", "create", "--ipv6", "v6"],
            "Error response from daemon: ",
            1,
        ),
        (
            &["network", "create", "-d", "overlay", "ov"],
            "Error response from daemon: ",
            1,
        ),
        (
            &[
                "network",
                "create",
                "-o",
                "com.docker.network.driver.mtu=huge",
                "m",
            ],
            "Error response from daemon: ",
            1,
        ),
        (
            &["network", "rm", "bridge"],
            "Error response from daemon: bridge is a pre-defined network and cannot be removed\n",
            1,
        ),
        (
            &["network", "rm", "host", "none"],
            "Error response from daemon: host is a pre-defined network and cannot be removed\n",
            1,
        ),
    ];
    for (args, stderr_start, code) in cases {
        let r = d.netloom(args);
        assert_eq!(r.code, *code, "{args:?}: {r:#?}");
        assert!(r.stderr.starts_with(stderr_start), "{args:?}: {r:#?}");
        assert!(r.stdout.is_empty(), "{args:?}: {r:#?}");
    }
    let after = d
        .netloom(&["network", "inspect", "bridge", "host", "none", "keep"])
        .ok();
    assert_eq!(before, after);
    assert_eq!(
        d.netloom(&["network", "ls", "-q"])
            .ok()
            .stdout
            .lines()
            .count(),
        4
    );
}

#[test]
fn connect_and_disconnect_know_no_containers_yet() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let r = d.netloom(&["network", "connect", "bridge", "c1"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Error response from daemon: No such container: c1\n")
    );
    let r = d.netloom(&["network", "disconnect", "-f", "bridge", "c1"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Error response from daemon: No such container: c1\n")
    );
}

#[test]
fn version_negotiation_and_ping() {
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let v = d
        .docker(&[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
        ])
        .ok();
    assert_eq!(v.stdout, "1.50 1.40 linux\n");
    let ours = d.netloom(&["version"]).ok().stdout;
    assert!(
        ours.contains("API version:      1.50 (minimum version 1.40)"),
        "{ours}"
    );
    let info = d.netloom(&["info"]).ok().stdout;
    assert!(info.contains(" Networks: 3\n"), "{info}");
    // An old docker CLI pinned to an older API still works; a too-new one gets docker's text.
    let mut cmd = std::process::Command::new(crate::common::docker_bin());
    let out = cmd
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .env("DOCKER_API_VERSION", "1.41")
        .args(["network", "ls", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

#[test]
fn socket_is_private_and_guarded() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path());
    let meta = std::fs::symlink_metadata(&d.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    // A second daemon on the same socket (other data root) refuses to start.
    let out = std::process::Command::new(crate::common::netloom_bin())
        .args(["daemon", "-H"])
        .arg(format!("unix://{}", d.socket.display()))
        .arg("--data-root")
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another daemon is listening on"),
        "{out:?}"
    );

    // ... and on the same data root (other socket) too.
    let out = std::process::Command::new(crate::common::netloom_bin())
        .args(["daemon", "-H"])
        .arg(format!(
            "unix://{}",
            dir.path().join("other.sock").display()
        ))
        .arg("--data-root")
        .arg(&d.data_root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("another netloom daemon is using the data root"),
        "{out:?}"
    );
    assert!(!dir.path().join("other.sock").exists());

    // kill -9 leaves a stale socket; the next start removes it and serves.
    d.kill9();
    assert!(d.socket.exists());
    d.spawn();
    d.netloom(&["network", "ls"]).ok();

    // A clean stop removes the socket.
    d.stop();
    assert!(!d.socket.exists());
    let r = d.netloom(&["network", "ls"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("Cannot connect to the netloom daemon at unix://"),
        "{r:?}"
    );
}
