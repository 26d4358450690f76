//! Interactive containers: `netloom run -it` attaches to the container's pseudo-terminal
//! (`POST /containers/{id}/attach` upgraded to a raw stream), pumps stdin and stdout, exits with
//! the container's code, and detaches on Ctrl-P Ctrl-Q. Stdin is a pipe here, so the CLI does
//! not switch any local terminal to raw mode.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Daemon, Run, netloom_bin, tempdir};

/// Runs `netloom ARGS`, writing `input` to its stdin (kept open until it exits, unless
/// `close` is set, when stdin ends after the input); kills it after `limit`.
fn run_interactive(d: &Daemon, args: &[&str], input: &[u8], close: bool, limit: Duration) -> Run {
    let mut child = Command::new(netloom_bin())
        .arg("-H")
        .arg(format!("unix://{}", d.socket.display()))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    let stdin = if close {
        drop(stdin);
        None
    } else {
        Some(stdin)
    };
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "netloom {args:?} did not end within {limit:?}; stdout so far: {:?}\ndaemon log:\n{}",
                String::from_utf8_lossy(&out.join().unwrap()),
                d.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    Run {
        stdout: String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
        code: status.code().unwrap_or(-1),
    }
}

#[test]
fn run_it_pumps_stdin_and_exits_with_the_code() {
    let t = tempdir();
    let d = Daemon::start(t.path());
    let r = run_interactive(
        &d,
        &["run", "-it", "--name", "u1", "--", "sh"],
        b"echo hello-$((40+2))\nexit 3\n",
        true,
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 3, "{r:#?}");
    assert!(r.stdout.contains("hello-42"), "{r:#?}");
    let logs = d.netloom(&["logs", "u1"]).ok();
    assert!(logs.stdout.contains("hello-42"), "{logs:#?}");
    // The log is the terminal's raw stream: the echoed input is there too.
    assert!(logs.stdout.contains("exit 3"), "{logs:#?}");
    let state = d
        .netloom(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "u1",
        ])
        .ok();
    assert_eq!(state.stdout.trim(), "exited 3");
    // The command sees a terminal on stdin, stdout and stderr.
    let r = run_interactive(
        &d,
        &[
            "run",
            "-t",
            "--rm",
            "--",
            "sh",
            "-c",
            "test -t 0 && test -t 1 && test -t 2 && tty",
        ],
        b"",
        true,
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("/dev/pts/"), "{r:#?}");
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_leaves_the_container_running() {
    let t = tempdir();
    let d = Daemon::start(t.path());
    let r = run_interactive(
        &d,
        &["run", "-it", "--name", "u2", "--", "sh"],
        b"\x10\x11",
        false,
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 0, "{r:#?}");
    let ps = d
        .netloom(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .ok();
    assert!(ps.stdout.lines().any(|l| l.starts_with("u2 Up")), "{ps:#?}");
    // An interactive sh ignores SIGTERM, as in Docker: stop kills it after the timeout.
    d.netloom(&["stop", "-t", "1", "u2"]).ok();
    let state = d
        .netloom(&["inspect", "-f", "{{.State.Status}}", "u2"])
        .ok();
    assert_eq!(state.stdout.trim(), "exited");
}

/// Sends a raw attach request; answers the status line and headers.
fn raw_attach(d: &Daemon, name: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1.43/containers/{name}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n\
         Host: api.moby.localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn attach_upgrades_only_tty_containers() {
    let t = tempdir();
    let d = Daemon::start(t.path());
    d.netloom(&["create", "--name", "plain", "--", "true"]).ok();
    d.netloom(&["create", "-t", "--name", "term", "--", "true"])
        .ok();
    let head = raw_attach(&d, "plain");
    assert!(head.starts_with("HTTP/1.1 501"), "{head}");
    let head = raw_attach(&d, "term");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: tcp"), "{head}");
    assert!(
        lower.contains("application/vnd.docker.raw-stream"),
        "{head}"
    );
    // Without -t, `run -i` behaves as before: the output once the command ends.
    let r = d.netloom_stdin(&["run", "-i", "--", "sh", "-c", "echo out"], "ignored\n");
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "out\n");
}

#[test]
fn stock_docker_run_t_streams_and_exits_with_the_code() {
    let t = tempdir();
    let d = Daemon::start(t.path());
    // docker attaches, registers `wait?condition=next-exit` (headers first, the code at the
    // exit), then starts; the image name is ignored (no images).
    let r = d.docker(&[
        "run",
        "-t",
        "--name",
        "dt",
        "none",
        "sh",
        "-c",
        "echo from-docker; exit 4",
    ]);
    assert_eq!(r.code, 4, "{r:#?}");
    assert!(r.stdout.contains("from-docker"), "{r:#?}");
}
