//! `netloom demo`: the Docker networking tutorial, replayed end to end against a private
//! daemon, printed as a transcript, then cleaned up.
//!
//! The daemon runs in its own network namespace (`unshare -n`) on a temporary socket and data
//! root, so the demo changes nothing on the machine. Each step runs this same binary as a
//! client, exactly as a user would type it, and checks that it behaved as the tutorial says
//! (including the step that must fail: names do not resolve on the default bridge).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;

/// `netloom demo`.
#[derive(Debug, Args)]
pub struct DemoCmd {
    /// Keep the private daemon's directory (its log and state) instead of removing it.
    #[arg(long)]
    keep: bool,
}

/// `netloom _http --port PORT`: the tiny web server the demo's container runs.
#[derive(Debug, Args)]
pub struct HttpCmd {
    /// The TCP port to listen on (all addresses).
    #[arg(long, default_value_t = 80)]
    port: u16,
}

impl HttpCmd {
    /// Answers every request with one line naming the address the client came from, which
    /// shows that a published port keeps the client's real address. Runs until killed.
    pub fn run(self) -> anyhow::Result<()> {
        let listener = std::net::TcpListener::bind(("0.0.0.0", self.port))
            .with_context(|| format!("cannot listen on port {}", self.port))?;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string());
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = format!("hello from the web container; you came from {peer}\n");
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
        Ok(())
    }
}

/// The private daemon and its directory; stopped and removed when dropped, also on failure.
struct Private {
    dir: PathBuf,
    socket: PathBuf,
    daemon: Child,
    keep: bool,
    exe: PathBuf,
}

impl Private {
    fn start(keep: bool) -> anyhow::Result<Private> {
        let exe = std::env::current_exe().context("cannot find the netloom binary")?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "netloom-demo.{}.{}",
            std::process::id(),
            stamp % 1_000_000
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let socket = dir.join("netloom.sock");
        let log = std::fs::File::create(dir.join("daemon.log"))
            .with_context(|| format!("cannot create {}", dir.join("daemon.log").display()))?;
        let daemon = Command::new("unshare")
            .arg("-n")
            .arg("--")
            .arg(&exe)
            .arg("daemon")
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot run `unshare -n` (util-linux) to start the demo's private daemon")?;
        let private = Private {
            dir,
            socket,
            daemon,
            keep,
            exe,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !private.socket.exists() {
            if Instant::now() > deadline {
                bail!(
                    "the demo's daemon did not start within 10 s; its log: {}",
                    private.dir.join("daemon.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // A new namespace's loopback is down; published ports listen there too.
        let netns = PathBuf::from(format!("/proc/{}/ns/net", private.daemon.id()));
        tokio::runtime::Handle::current()
            .block_on(crate::daemon::netconf::lo_up(&netns))
            .context("cannot bring up loopback in the demo daemon's namespace")?;
        Ok(private)
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs `netloom ARGS` against the private daemon, printing the command and its output.
    fn step(&self, args: &[&str]) -> anyhow::Result<Outcome> {
        println!("$ netloom {}", shell_words(args));
        let out = Command::new(&self.exe)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run netloom {}", args.join(" ")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // A transcript: what the command printed on either stream, in one place.
        print!("{stdout}{stderr}");
        println!();
        Ok(Outcome {
            ok: out.status.success(),
            stdout,
            stderr,
        })
    }

    /// A step that must succeed.
    fn must(&self, args: &[&str]) -> anyhow::Result<Outcome> {
        let o = self.step(args)?;
        if !o.ok {
            bail!(
                "demo step `netloom {}` failed: {}",
                shell_words(args),
                o.stderr.trim()
            );
        }
        Ok(o)
    }

    /// Fetches `http://127.0.0.1:PORT/` from inside the daemon's namespace, where published
    /// ports listen.
    fn fetch(&self, port: u16) -> anyhow::Result<String> {
        let netns = PathBuf::from(format!("/proc/{}/ns/net", self.daemon.id()));
        netloom_switch::tap::in_netns(&netns, move || -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(5),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })
        .map_err(|e| anyhow::anyhow!("cannot enter the daemon's namespace: {e}"))?
        .map_err(|e| anyhow::anyhow!("cannot fetch http://127.0.0.1:{port}/: {e}"))
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        // Containers outlive a daemon by design: remove them first.
        let _ = Command::new(&self.exe)
            .arg("-H")
            .arg(self.host())
            .args(["rm", "-f", "tomcat81", "tomcat82", "u1", "u2", "web"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Ok(pid) = i32::try_from(self.daemon.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.daemon.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        if self.keep {
            eprintln!("kept the demo's daemon directory: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '{', '}', '\'', '"']) {
                format!("'{a}'")
            } else {
                (*a).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn say(text: &str) {
    println!("# {text}");
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

impl DemoCmd {
    /// Replays the tutorial; fails (non-zero) if any step does not behave as it should.
    pub fn run(self) -> anyhow::Result<()> {
        if !nix::unistd::geteuid().is_root() {
            bail!(
                "netloom demo must run as root: it starts a private daemon in its own network namespace (try: sudo netloom demo)"
            );
        }
        if which("ping").is_none() {
            bail!(
                "netloom demo needs `ping` on this machine (containers run host programs): install it, e.g. apt-get install -y iputils-ping"
            );
        }
        let p = Private::start(self.keep)?;
        let exe = p.exe.display().to_string();
        say(
            "A private netloom daemon runs in its own network namespace; nothing here touches the machine's network.",
        );
        p.must(&["network", "ls"])?;

        say("A user-defined network: containers on it find each other by name.");
        p.must(&["network", "create", "mhk_network"])?;
        for name in ["tomcat81", "tomcat82"] {
            p.must(&[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                "mhk_network",
                "--",
                "sleep",
                "600",
            ])?;
        }
        p.must(&["exec", "tomcat81", "ping", "-c", "2", "tomcat82"])?;

        say("On the default bridge, names do not resolve (as on Docker); addresses do.");
        for name in ["u1", "u2"] {
            p.must(&["run", "-d", "--name", name, "--", "sleep", "600"])?;
        }
        let by_name = p.step(&["exec", "u1", "ping", "-c", "1", "-W", "1", "u2"])?;
        if by_name.ok {
            bail!("`ping u2` on the default bridge should fail, as on Docker, but it worked");
        }
        let u2 = p
            .must(&[
                "inspect",
                "-f",
                "{{.NetworkSettings.Networks.bridge.IPAddress}}",
                "u2",
            ])?
            .stdout
            .trim()
            .to_owned();
        p.must(&["exec", "u1", "ping", "-c", "1", &u2])?;

        say("A published port: the container's web server, reached through the host's port 8080.");
        p.must(&[
            "run", "-d", "--name", "web", "-p", "8080:80", "--", &exe, "_http", "--port", "80",
        ])?;
        p.must(&["port", "web"])?;
        println!("$ curl http://127.0.0.1:8080/   (in the daemon's namespace)");
        let deadline = Instant::now() + Duration::from_secs(10);
        let page = loop {
            match p.fetch(8080) {
                Ok(page) if page.starts_with("HTTP/1.0 200") => break page,
                Ok(other) if Instant::now() > deadline => {
                    bail!("the published port answered something else: {other}")
                }
                Err(e) if Instant::now() > deadline => return Err(e),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let body = page.split("\r\n\r\n").nth(1).unwrap_or_default();
        println!("{body}");

        say("What the network looks like now.");
        p.must(&["network", "inspect", "mhk_network"])?;

        say("Cleaning up.");
        p.must(&["rm", "-f", "tomcat81", "tomcat82", "u1", "u2", "web"])?;
        p.must(&["network", "rm", "mhk_network"])?;
        say("Done: the tutorial behaved as on Docker.");
        drop(p);
        Ok(())
    }
}
