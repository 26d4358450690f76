//! Soak: minutes of mixed load against one daemon — east-west TCP between two containers,
//! connections through outbound NAT to an outside namespace, connections to a published port
//! (from the outside, through the gateway, and from the daemon's loopback, spliced), DNS
//! queries, containers churning — with no failed operation, and the daemon's resident memory
//! and open descriptors flat (within 10 %) after the warm-up.
//!
//! Too long for the default run; one command runs it (10 minutes by default):
//!
//! ```sh
//! sudo SOAK_SECS=600 cargo test -p netloom --test integration soak -- --ignored --nocapture
//! ```
//!
//! `SOAK_ONLY=nat,east` runs only some of the workers (`east`, `nat`, `published`, `spliced`,
//! `churn`), to chase one kind of failure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::{
    DAEMON_VETH_ADDR, Daemon, OUTSIDE_ADDR, Outside, in_netns, netloom_bin, tempdir,
};

/// Serves `echo` connections on `listener` until `stop`: reads everything, writes it back.
fn echo_server(listener: TcpListener, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    std::thread::spawn(move || {
                        let _ = s.set_nonblocking(false);
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match s.read(&mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if s.write_all(&buf[..n]).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

/// One echo round trip of `len` bytes to `target` from namespace `pid`.
fn echo_once(pid: u32, target: SocketAddr, len: usize) -> Result<(), String> {
    in_netns(pid, move || {
        let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(5))
            .map_err(|e| format!("connect {target}: {e}"))?;
        // Generous: a stall, not slowness, is what this looks for.
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let writer = {
            let mut w = s.try_clone().unwrap();
            let data = data.clone();
            std::thread::spawn(move || {
                w.write_all(&data)
                    .and_then(|()| w.shutdown(std::net::Shutdown::Write))
            })
        };
        let mut back = Vec::with_capacity(len);
        let read = s.read_to_end(&mut back);
        let wrote = writer.join().unwrap();
        let local = s
            .local_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string());
        if let Err(e) = wrote {
            return Err(format!("write {local} -> {target}: {e} (read: {read:?})"));
        }
        read.map_err(|e| format!("read {local} <- {target}: {e}"))?;
        if back != data {
            return Err(format!(
                "{local} -> {target}: {} bytes back, not the {len} sent",
                back.len()
            ));
        }
        Ok(())
    })
}

/// (resident KiB, open descriptors) of process `pid`.
fn footprint(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    (rss, fds)
}

#[test]
#[ignore = "a soak of SOAK_SECS (600) seconds; run it on purpose, see the module docs"]
fn soak_mixed_load_keeps_memory_and_descriptors_flat() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let dir = tempdir();
    let d = Daemon::start(dir.path());
    let outside = Outside::new(&d);
    d.netloom(&["network", "create", "soak"]).ok();
    for name in ["s1", "s2"] {
        d.netloom(&[
            "run",
            "-d",
            "--network",
            "soak",
            "--name",
            name,
            "--",
            "sleep",
            "infinity",
        ])
        .ok();
    }
    d.netloom(&[
        "run",
        "-d",
        "--network",
        "soak",
        "--name",
        "web",
        "-p",
        "8088:80",
        "--",
        netloom_bin(),
        "_http",
        "--port",
        "80",
    ])
    .ok();
    let pid_of = |n: &str| -> u32 {
        d.netloom(&["inspect", "-f", "{{.State.Pid}}", n])
            .ok()
            .stdout
            .trim()
            .parse()
            .unwrap()
    };
    let ip_of = |n: &str| -> String {
        d.netloom(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.soak.IPAddress}}",
            n,
        ])
        .ok()
        .stdout
        .trim()
        .to_owned()
    };
    let (s1, s2) = (pid_of("s1"), pid_of("s2"));
    let stop = Arc::new(AtomicBool::new(false));
    // The servers stop only after the workers: a connection still in a listener's accept
    // queue when it closes is reset, which would read as a failure of netloom.
    let stop_servers = Arc::new(AtomicBool::new(false));
    let east_server = echo_server(
        in_netns(s2, || TcpListener::bind("0.0.0.0:7100").unwrap()),
        stop_servers.clone(),
    );
    let out_server = echo_server(
        in_netns(outside.pid(), || TcpListener::bind("0.0.0.0:7200").unwrap()),
        stop_servers.clone(),
    );
    let east: SocketAddr = format!("{}:7100", ip_of("s2")).parse().unwrap();
    let out: SocketAddr = format!("{OUTSIDE_ADDR}:7200").parse().unwrap();
    let published: SocketAddr = format!("{DAEMON_VETH_ADDR}:8088").parse().unwrap();

    let only = std::env::var("SOAK_ONLY").ok();
    let wanted = |w: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x.trim() == w))
    };
    let ops = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    // East-west and NAT traffic from s1; published-port requests from the outside.
    for (what, pid, target, len) in [("east", s1, east, 1 << 20), ("nat", s1, out, 256 << 10)] {
        if !wanted(what) {
            continue;
        }
        let (stop, ops, failures) = (stop.clone(), ops.clone(), failures.clone());
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match echo_once(pid, target, len) {
                    Ok(()) => ops.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        failures.lock().unwrap().push(format!("{what}: {e}"));
                        0
                    }
                };
            }
        }));
    }
    // The same published port from the outside (through the gateway) and from the daemon's
    // loopback (the splice fast path).
    let spliced: SocketAddr = "127.0.0.1:8088".parse().unwrap();
    for (what, from, target) in [
        ("published", outside.pid(), published),
        ("spliced", d.pid(), spliced),
    ] {
        if !wanted(what) {
            continue;
        }
        let (stop, ops, failures) = (stop.clone(), ops.clone(), failures.clone());
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let got = in_netns(from, move || -> Result<String, String> {
                    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(5))
                        .map_err(|e| e.to_string())?;
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
                        .map_err(|e| e.to_string())?;
                    let mut page = String::new();
                    s.read_to_string(&mut page).map_err(|e| e.to_string())?;
                    Ok(page)
                });
                match got {
                    Ok(p) if p.starts_with("HTTP/1.0 200") => {
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                    other => failures.lock().unwrap().push(format!("{what}: {other:?}")),
                }
            }
        }));
    }
    // DNS queries and container churn through the CLI, as users would.
    if wanted("churn") {
        let (stop, ops, failures) = (stop.clone(), ops.clone(), failures.clone());
        let socket = d.socket.clone();
        let want = ip_of("s2");
        workers.push(std::thread::spawn(move || {
            let cli = |args: &[&str]| {
                std::process::Command::new(netloom_bin())
                    .arg("-H")
                    .arg(format!("unix://{}", socket.display()))
                    .args(args)
                    .output()
                    .unwrap()
            };
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let dig = cli(&["exec", "s1", "dig", "+time=2", "+tries=2", "+short", "s2"]);
                if String::from_utf8_lossy(&dig.stdout).trim() != want {
                    failures.lock().unwrap().push(format!("dns: {dig:?}"));
                }
                let name = format!("churn{}", i % 4);
                let run = cli(&[
                    "run",
                    "-d",
                    "--network",
                    "soak",
                    "--name",
                    &name,
                    "--",
                    "sleep",
                    "infinity",
                ]);
                let rm = cli(&["rm", "-f", &name]);
                if !run.status.success() || !rm.status.success() {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("churn: {run:?} {rm:?}"));
                }
                ops.fetch_add(3, Ordering::Relaxed);
                i += 1;
            }
        }));
    }

    // Sample the daemon's footprint every few seconds; the first fifth is the warm-up.
    let start = Instant::now();
    let total = Duration::from_secs(secs);
    let mut samples = Vec::new();
    while start.elapsed() < total {
        std::thread::sleep(Duration::from_secs(5).min(total));
        samples.push((start.elapsed(), footprint(d.pid())));
        if !failures.lock().unwrap().is_empty() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    stop_servers.store(true, Ordering::Relaxed);
    east_server.join().unwrap();
    out_server.join().unwrap();
    let failures = failures.lock().unwrap();
    if !failures.is_empty() {
        // The drop counters, and the whole log kept where it outlives the temporary directory.
        eprintln!("{}", d.netloom(&["stats", "--format", "json"]).stdout);
        let log = d.log_text();
        let kept = std::env::temp_dir().join("netloom-soak-daemon.log");
        if std::fs::write(&kept, &log).is_ok() {
            eprintln!("daemon log kept in {}", kept.display());
        }
        let notable: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("nat"))
            .collect();
        let from = notable.len().saturating_sub(60);
        eprintln!(
            "daemon log, warnings and NAT lines:\n{}",
            notable[from..].join("\n")
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    let warm = total / 5;
    let after: Vec<(u64, u64)> = samples
        .iter()
        .filter(|(t, _)| *t >= warm)
        .map(|(_, f)| *f)
        .collect();
    eprintln!(
        "soak: {secs} s, {} operations, footprint (RSS KiB, fds) over time: {samples:?}",
        ops.load(Ordering::Relaxed)
    );
    // Flat: the mean of the last third of the samples after the warm-up is within 10 % of
    // the mean of the first third (single samples swing with the connections in flight).
    assert!(after.len() >= 3, "too short to judge: {samples:?}");
    let third = after.len() / 3;
    let mean = |xs: &[(u64, u64)], f: fn(&(u64, u64)) -> u64| {
        xs.iter().map(f).sum::<u64>() as f64 / xs.len() as f64
    };
    let (early, late) = (&after[..third], &after[after.len() - third..]);
    let (rss0, rss1) = (mean(early, |s| s.0), mean(late, |s| s.0));
    let (fds0, fds1) = (mean(early, |s| s.1), mean(late, |s| s.1));
    assert!(
        rss1 <= rss0 * 1.10,
        "RSS grew from {rss0:.0} KiB to {rss1:.0} KiB after the warm-up: {samples:?}"
    );
    assert!(
        fds1 <= fds0 * 1.10 + 2.0,
        "open descriptors grew from {fds0:.1} to {fds1:.1} on average: {samples:?}"
    );
}
