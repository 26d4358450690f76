//! Helpers: a daemon under test, running `netloom` and the stock docker CLI against it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `netloom` binary cargo built for this test run.
pub fn netloom_bin() -> &'static str {
    env!("CARGO_BIN_EXE_netloom")
}

/// The stock docker CLI; tests that compare with it fail (never skip) when it is missing.
pub fn docker_bin() -> PathBuf {
    let p = PathBuf::from(
        std::env::var("NETLOOM_TEST_DOCKER").unwrap_or_else(|_| "/usr/local/bin/docker".into()),
    );
    assert!(
        p.exists(),
        "the docker CLI is required at {} (only the client; install docker-ce-cli or set NETLOOM_TEST_DOCKER)",
        p.display()
    );
    p
}

/// A daemon on a private socket and data root, in its own network namespace. Killed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    log: PathBuf,
    flags: Vec<String>,
    /// Size of a tmpfs mounted on the data root in the daemon's own mount namespace.
    tmpfs: Option<String>,
}

impl Daemon {
    /// Starts a daemon in a fresh temporary directory.
    pub fn start(dir: &Path) -> Daemon {
        Daemon::start_with(dir, &[])
    }

    /// Starts a daemon with extra `netloom daemon` flags.
    pub fn start_with(dir: &Path, flags: &[&str]) -> Daemon {
        Daemon::launch(dir, flags, None)
    }

    /// Starts a daemon whose data root is a tmpfs of `size` (e.g. `"4m"`) mounted in its own
    /// mount namespace (gone with the process): a disk that can be filled. A restart gets an
    /// empty one.
    pub fn start_on_tmpfs(dir: &Path, size: &str) -> Daemon {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        Daemon::launch(dir, &[], Some(size))
    }

    fn launch(dir: &Path, flags: &[&str], tmpfs: Option<&str>) -> Daemon {
        let mut d = Daemon {
            child: None,
            dir: dir.to_owned(),
            socket: dir.join("netloom.sock"),
            data_root: dir.join("data"),
            log: dir.join("daemon.log"),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            tmpfs: tmpfs.map(str::to_owned),
        };
        d.spawn();
        d
    }

    /// The daemon's pid (its network namespace is `/proc/PID/ns/net`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// (Re)starts the process on the same socket and data root, waiting until it answers.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // A fresh namespace has lo down; the host's is up, so bring it up as on a real host.
        let mut cmd = Command::new("unshare");
        match &self.tmpfs {
            None => cmd.args([
                "-n",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" \"$@\"",
            ]),
            Some(size) => cmd
                .args([
                    "-n",
                    "-m",
                    "--propagation",
                    "private",
                    "--",
                    "sh",
                    "-c",
                    "mount -t tmpfs -o size=\"$NL_TMPFS_SIZE\" tmpfs \"$NL_TMPFS_DIR\" \
                     && ip link set lo up && exec \"$0\" \"$@\"",
                ])
                .env("NL_TMPFS_SIZE", size)
                .env("NL_TMPFS_DIR", &self.data_root),
        };
        let child = cmd
            .arg(netloom_bin())
            .arg("daemon")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--log-level")
            .arg("debug")
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn netloom daemon under unshare -n (tests run as root)");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "daemon exited with {status} before listening:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not listen in time:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Runs `netloom ARGS` against this daemon.
    pub fn netloom(&self, args: &[&str]) -> Run {
        self.netloom_stdin(args, "")
    }

    /// Runs `netloom ARGS` with `stdin` as standard input.
    pub fn netloom_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = Command::new(netloom_bin());
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args);
        run(cmd, stdin)
    }

    /// Runs the stock `docker ARGS` against this daemon.
    pub fn docker(&self, args: &[&str]) -> Run {
        self.docker_stdin(args, "")
    }

    /// Runs `docker ARGS` with `stdin` as standard input.
    pub fn docker_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = Command::new(docker_bin());
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .args(args);
        run(cmd, stdin)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        // Container shims outlive the daemon by design; a test's containers must not outlive
        // the test. Each shim is its own process group (setsid), whose exit file is under this
        // daemon's data root.
        let marker = self.data_root.join("containers");
        let marker = marker.to_string_lossy();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.iter().any(|a| a == "_shim") && args.iter().any(|a| a.starts_with(&*marker)) {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
            }
        }
    }
}

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Run {
    /// Panics with everything printed unless the exit code is 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self
    }
}

fn run(mut cmd: Command, stdin: &str) -> Run {
    use std::io::Write as _;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn command");
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        code: status.code().unwrap_or(-1),
    }
}

/// A fresh temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("netloom-test-")
        .tempdir()
        .unwrap()
}

/// Interface names from `ip -o link show` output, in order (`eth0@if12` → `eth0`).
pub fn link_names(ip_o_link: &str) -> Vec<String> {
    ip_o_link
        .lines()
        .filter_map(|l| {
            l.split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        })
        .collect()
}

/// Runs `f` on a fresh thread that has joined the network namespace of process `pid`, and
/// returns what it returns. Sockets it creates belong to that namespace for their whole life,
/// whichever thread uses them later; the calling thread's namespace does not change.
pub fn in_netns<T: Send>(pid: u32, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(pid);
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Moves the calling thread into the network namespace of `pid` (setns(2) changes only the
/// calling thread's namespace).
fn enter_netns(pid: u32) {
    let path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("setns {path}: {e}"));
}

/// Whether process `pid` runs in a network namespace other than this test process's.
pub fn has_own_netns(pid: u32) -> bool {
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|l| l != own)
}

/// A future driven by a current-thread tokio runtime on its own thread inside a network
/// namespace: a server until dropped, or a client whose result [`NsTask::join`] returns.
#[derive(Debug)]
pub struct NsTask<T> {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Option<T>>>,
}

impl<T: Send + 'static> NsTask<T> {
    /// Joins the namespace of `pid`, calls `setup` there (inside the runtime, so it may bind
    /// tokio sockets synchronously) and returns once `setup` has returned: whatever it bound
    /// is ready. The future it returns then runs until done or until the task is dropped.
    pub fn start<F, Fut>(pid: u32, setup: F) -> NsTask<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            enter_netns(pid);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let fut = {
                let _in_runtime = rt.enter();
                setup()
            };
            let _ = ready_tx.send(());
            rt.block_on(async move {
                tokio::select! {
                    out = fut => Some(out),
                    _ = stopped => None,
                }
            })
        });
        if ready_rx.recv().is_err() {
            // `setup` panicked: show its message.
            match thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(_) => unreachable!("setup returned without signalling"),
            }
        }
        NsTask {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Waits for the future to finish and returns its output (a panic in it panics here).
    pub fn join(mut self) -> T {
        let thread = self.thread.take().unwrap();
        match thread.join() {
            Ok(out) => out.expect("the task was not stopped"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<T> Drop for NsTask<T> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon's side of the veth to the [`Outside`] (the address NAT'd traffic leaves from).
pub const DAEMON_VETH_ADDR: &str = "198.18.0.1";
/// The outside's first address on the veth (the daemon namespace's default gateway).
pub const OUTSIDE_ADDR: &str = "198.18.0.2";
/// A second address of the outside on the veth.
pub const OUTSIDE_ADDR2: &str = "198.18.0.3";
/// An outside address beyond the veth's subnet, reached through the daemon's default route.
pub const OUTSIDE_FAR_ADDR: &str = "198.19.0.10";

/// "The internet" for a daemon under test: a namespace of its own (held by a sleeping
/// process, killed on drop, which also removes the veth) joined to the daemon's namespace by
/// a veth pair `up0` (daemon side, [`DAEMON_VETH_ADDR`]/24) – `up1` ([`OUTSIDE_ADDR`]/24 and
/// [`OUTSIDE_ADDR2`]/24; [`OUTSIDE_FAR_ADDR`]/32 on its lo). The daemon namespace's default
/// route leads there. Only 198.18.0.0/15 (RFC 2544 benchmarking space) is used; nothing
/// touches the machine's own interfaces.
#[derive(Debug)]
pub struct Outside {
    sleeper: KillOnDrop,
    daemon_pid: u32,
}

impl Outside {
    /// Builds the outside namespace and its link to `d`'s namespace.
    pub fn new(d: &Daemon) -> Outside {
        let child = Command::new("unshare")
            .args(["-n", "--", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare -n sleep infinity");
        let o = Outside {
            sleeper: KillOnDrop(child),
            daemon_pid: d.pid(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !has_own_netns(o.pid()) {
            assert!(
                Instant::now() < deadline,
                "the outside namespace did not appear"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid = o.pid().to_string();
        o.in_daemon_ok(&[
            "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1", "netns", &pid,
        ]);
        o.in_daemon_ok(&["ip", "addr", "add", "198.18.0.1/24", "dev", "up0"]);
        o.in_daemon_ok(&["ip", "link", "set", "up0", "up"]);
        o.exec(&["ip", "link", "set", "lo", "up"]).ok();
        o.exec(&["ip", "addr", "add", "198.19.0.10/32", "dev", "lo"])
            .ok();
        o.exec(&["ip", "addr", "add", "198.18.0.2/24", "dev", "up1"])
            .ok();
        o.exec(&["ip", "addr", "add", "198.18.0.3/24", "dev", "up1"])
            .ok();
        o.exec(&["ip", "link", "set", "up1", "up"]).ok();
        o.in_daemon_ok(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            OUTSIDE_ADDR,
            "dev",
            "up0",
        ]);
        o
    }

    /// The pid whose `/proc/PID/ns/net` is the outside namespace.
    pub fn pid(&self) -> u32 {
        self.sleeper.0.id()
    }

    /// Runs a command in the outside namespace.
    pub fn exec(&self, args: &[&str]) -> Run {
        nsenter(self.pid(), args)
    }

    /// Starts a long-running process in the outside namespace, killed when the guard drops.
    pub fn spawn(&self, args: &[&str]) -> KillOnDrop {
        KillOnDrop(
            Command::new("nsenter")
                .arg(format!("--net=/proc/{}/ns/net", self.pid()))
                // nsenter execs the command, so the guard's kill reaches it.
                .arg("--")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn nsenter"),
        )
    }

    fn in_daemon_ok(&self, args: &[&str]) {
        nsenter(self.daemon_pid, args).ok();
    }
}

/// Runs a command in the network namespace of process `pid`.
pub fn nsenter(pid: u32, args: &[&str]) -> Run {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/proc/{pid}/ns/net"))
        .arg("--")
        .args(args);
    run(cmd, "")
}
