//! `kill -9` chaos: the daemon is killed 50 times at random moments while a workload creates
//! and removes networks, runs, stops and removes containers (some publishing ports) and
//! connects and disconnects them. After each restart the store is consistent and two running
//! containers talk again; at the end nothing is leaked: no addresses, endpoints, listeners,
//! shim processes (and with them TAPs, namespaces and mounts) or container directories.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netloom::store::Store;

use crate::common::{Daemon, in_netns, netloom_bin, tempdir};

const ROUNDS: usize = 50;

/// A tiny deterministic generator (xorshift64*), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `netloom ARGS` against `socket`: its exit code. Failures are expected while the daemon is
/// being killed; the workload only needs to keep going. A client that has not finished after
/// 15 s is killed and counted as failed (a CLI stuck after its daemon died is a client bug,
/// but it must not hang this test).
fn cli(socket: &Path, args: &[&str]) -> i32 {
    let (code, _, _) = cli_bounded(socket, args, Duration::from_secs(15));
    code.unwrap_or_else(|| {
        eprintln!("netloom {args:?} did not finish within 15 s; killed");
        -1
    })
}

/// Random operations until `stop`: every kind of change the daemon persists.
fn workload(socket: PathBuf, seed: u64, stop: Arc<AtomicBool>) -> usize {
    let mut rng = Rng(seed | 1);
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = rng.below(4);
        let c = rng.below(6);
        let net = format!("chaos-n{n}");
        let name = format!("chaos-c{c}");
        let args: Vec<String> = match rng.below(8) {
            0 => vec!["network".into(), "create".into(), net],
            1 => vec!["network".into(), "rm".into(), net],
            2 => vec![
                "run".into(),
                "-d".into(),
                "--name".into(),
                name,
                "--network".into(),
                if rng.below(2) == 0 {
                    net
                } else {
                    "bridge".into()
                },
                "-p".into(),
                "80".into(),
                "--".into(),
                "sleep".into(),
                "3600".into(),
            ],
            3 => vec!["stop".into(), "-t".into(), "1".into(), name],
            4 => vec!["start".into(), name],
            5 => vec!["rm".into(), "-f".into(), name],
            6 => vec!["network".into(), "connect".into(), net, name],
            _ => vec!["network".into(), "disconnect".into(), net, name],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if cli(&socket, &args) == 0 {
            done += 1;
        }
    }
    done
}

/// How long after the API is back a TCP connection from e1 to e2's listener succeeds.
fn resume_time(e1_pid: u32, target: SocketAddr) -> Duration {
    let start = Instant::now();
    in_netns(e1_pid, move || {
        loop {
            if let Ok(mut s) = TcpStream::connect_timeout(&target, Duration::from_millis(200)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut b = [0u8; 2];
                if s.read_exact(&mut b).is_ok() && &b == b"ok" {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "east-west traffic did not resume within 30 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    start.elapsed()
}

fn inspect(d: &Daemon, format: &str, what: &str) -> String {
    d.netloom(&["inspect", "-f", format, what])
        .ok()
        .stdout
        .trim()
        .to_owned()
}

/// TCP listeners of the daemon's namespace that are not on loopback (published ports; the
/// gateway DNS servers listen on 127.0.0.1).
fn public_listeners(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for file in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (f[1], f[3]);
            let loopback = local.starts_with("0100007F")
                || local.starts_with("00000000000000000000000001000000");
            if state == "0A" && !loopback {
                found.push(format!("{file} {local}"));
            }
        }
    }
    found
}

/// Shims (container supervisors) of this daemon still alive, by container id.
fn shims_of(data_root: &Path) -> BTreeSet<String> {
    let root = data_root.to_string_lossy().into_owned();
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "_shim")
            && args.iter().any(|a| a.contains(&root))
            && let Some(i) = args.iter().position(|a| a == "--id")
        {
            ids.insert(args[i + 1].clone());
        }
    }
    ids
}

#[test]
fn fifty_kill_nines_during_a_mixed_workload_leak_nothing() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path());
    d.netloom(&["network", "create", "east"]).ok();
    for name in ["e1", "e2"] {
        d.netloom(&[
            "run",
            "-d",
            "--network",
            "east",
            "--name",
            name,
            "--",
            "sleep",
            "3600",
        ])
        .ok();
    }
    let pid = |n: &str| -> u32 { inspect(&d, "{{.State.Pid}}", n).parse().unwrap() };
    let (e1, e2) = (pid("e1"), pid("e2"));
    let e2_ip = inspect(&d, "{{.NetworkSettings.Networks.east.IPAddress}}", "e2");
    // A listener inside e2's namespace, served by a thread of this test.
    let listener = in_netns(e2, || TcpListener::bind("0.0.0.0:7000").unwrap());
    listener.set_nonblocking(true).unwrap();
    let serving = Arc::new(AtomicBool::new(true));
    let server = {
        let serving = serving.clone();
        std::thread::spawn(move || {
            while serving.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(b"ok");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    let target = SocketAddr::new(e2_ip.parse().unwrap(), 7000);
    resume_time(e1, target);

    let mut rng = Rng(0x5eed_c4a0_5eed);
    let mut resumes = Vec::new();
    let mut acked = 0;
    let mut log_seen = d.log_text().len();
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (socket, stop) = (d.socket.clone(), stop.clone());
            let seed = rng.next();
            std::thread::spawn(move || workload(socket, seed, stop))
        };
        std::thread::sleep(Duration::from_millis(60 + rng.below(540)));
        d.kill9();
        stop.store(true, Ordering::Relaxed);
        acked += worker.join().unwrap();
        d.spawn();
        resumes.push(resume_time(e1, target));
        let log = d.log_text();
        let new = &log[log_seen..];
        assert!(
            !new.contains("inconsistency"),
            "round {round}: the store was inconsistent at start:\n{new}"
        );
        log_seen = log.len();
    }
    assert!(
        // On a loaded machine a CLI call takes tens of ms, so kills land mostly inside
        // requests, which is the point; the workload must still have changed state often.
        acked >= 20,
        "the workload barely ran ({acked} operations)"
    );

    // Clean up what the workload left, through the API, then look for leaks.
    let ps = d
        .netloom(&["ps", "-a", "--format", "{{.Names}}"])
        .ok()
        .stdout;
    for name in ps.lines().filter(|n| n.starts_with("chaos-")) {
        d.netloom(&["rm", "-f", name]).ok();
    }
    let nets = d
        .netloom(&["network", "ls", "--format", "{{.Name}}"])
        .ok()
        .stdout;
    for net in nets.lines().filter(|n| n.starts_with("chaos-")) {
        d.netloom(&["network", "rm", net]).ok();
    }
    let mut left: Vec<String> = d
        .netloom(&["ps", "-a", "--format", "{{.Names}} {{.State}}"])
        .ok()
        .stdout
        .lines()
        .map(str::to_owned)
        .collect();
    left.sort();
    assert_eq!(left, ["e1 running", "e2 running"]);
    let east = d
        .netloom(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            "east",
            "bridge",
        ])
        .ok()
        .stdout;
    // One line per network; the names in container-id order.
    let per_network: Vec<Vec<&str>> = east
        .lines()
        .map(|l| {
            let mut names: Vec<&str> = l.split_whitespace().collect();
            names.sort_unstable();
            names
        })
        .collect();
    assert_eq!(
        per_network,
        [vec!["e1", "e2"], vec![]],
        "endpoints left on east/bridge"
    );
    assert_eq!(
        public_listeners(d.pid()),
        Vec::<String>::new(),
        "published ports left bound"
    );
    let ids: BTreeSet<String> = ["e1", "e2"]
        .iter()
        .map(|n| inspect(&d, "{{.Id}}", n))
        .collect();
    assert_eq!(
        shims_of(&d.data_root),
        ids,
        "shims (namespaces, TAPs, mounts) left behind"
    );
    let dirs: BTreeSet<String> = std::fs::read_dir(d.data_root.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs, ids, "container directories left behind");

    // Traffic came back quickly after each restart: the median within 1 s (the bound;
    // the median, because a shared 2-core CI machine has outliers), all within 30 s (asserted
    // in resume_time).
    resumes.sort();
    let median = resumes[resumes.len() / 2];
    eprintln!(
        "east-west resumed after restart: median {median:?}, max {:?}, {acked} workload operations",
        resumes.last().unwrap()
    );
    assert!(median <= Duration::from_secs(1), "median resume {median:?}");

    serving.store(false, Ordering::Relaxed);
    server.join().unwrap();
    d.stop();
    let store = Store::open(&d.data_root.join("state.redb")).unwrap();
    let problems = store.check_consistency().unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Runs `netloom -H unix://SOCKET ARGS`, killing it after `bound`: its exit code (`None` when it
/// had to be killed), stderr, and how long it ran.
fn cli_bounded(socket: &Path, args: &[&str], bound: Duration) -> (Option<i32>, String, Duration) {
    let mut child = Command::new(netloom_bin())
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run netloom");
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for netloom") {
            break status.code();
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    (code, stderr, start.elapsed())
}

/// Reads a request's head (a body-less request ends there).
fn read_head(s: &mut impl Read) {
    let mut got = Vec::new();
    let mut b = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
}

#[test]
fn a_cli_whose_daemon_closes_the_connection_mid_request_fails_with_a_clear_error() {
    let dir = tempdir();
    let socket = dir.path().join("netloom.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // A daemon killed after reading the request: the connection ends without an answer.
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        read_head(&mut s);
    });
    let (code, stderr, _) =
        cli_bounded(&socket, &["stop", "-t", "1", "x"], Duration::from_secs(10));
    server.join().unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("closed the connection before answering")
            && stderr.contains("Is the netloom daemon still running?"),
        "{stderr}"
    );
}

/// Environment variable naming the socket [`fake_daemon_that_exits_mid_request`] listens on.
const FAKE_DAEMON: &str = "NETLOOM_TEST_FAKE_DAEMON";

/// Not a test: the fake daemon process of
/// [`a_cli_fails_when_its_daemon_exits_while_a_child_holds_the_connection`] (run through this
/// test binary with `--ignored`). It accepts one request, hands the connection to a child
/// process (as a daemon that leaks a descriptor into something it starts), writes the child's
/// pid next to the socket and exits without answering.
#[test]
#[ignore = "helper process of another test"]
// The child must outlive this process: it is what keeps the connection open.
#[allow(clippy::zombie_processes)]
fn fake_daemon_that_exits_mid_request() {
    let Some(socket) = std::env::var_os(FAKE_DAEMON).map(PathBuf::from) else {
        return;
    };
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    read_head(&mut s);
    let holder = Command::new("sleep")
        .arg("60")
        .stdin(std::os::fd::OwnedFd::from(s))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(socket.with_extension("holder"), holder.id().to_string()).unwrap();
}

#[test]
fn a_cli_fails_when_its_daemon_exits_while_a_child_holds_the_connection() {
    let dir = tempdir();
    let socket = dir.path().join("netloom.sock");
    let mut daemon = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "chaos::fake_daemon_that_exits_mid_request",
        ])
        .env(FAKE_DAEMON, &socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the fake daemon did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    let reaper = std::thread::spawn(move || daemon.wait().unwrap());
    let (code, stderr, took) =
        cli_bounded(&socket, &["stop", "-t", "1", "x"], Duration::from_secs(10));
    assert!(reaper.join().unwrap().success());
    if let Ok(pid) = std::fs::read_to_string(socket.with_extension("holder")) {
        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
    }
    // The connection is still open (the child holds it), so only noticing that the daemon
    // process is gone ends the wait.
    assert_eq!(
        code,
        Some(1),
        "netloom stop still waited after {took:?} for a daemon that had exited: {stderr}"
    );
    assert!(stderr.contains("exited before answering"), "{stderr}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}
