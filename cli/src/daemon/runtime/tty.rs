//! Pseudo-terminals of containers created with `Tty` (`-t`), and the attachments to them.
//!
//! At start the daemon allocates a pty ([`Pty::open`]): the shim gets the slave's path
//! (`--tty PATH`) and makes it the command's controlling terminal and stdio; the daemon keeps
//! the master. A thread reads the master until every slave descriptor is closed (the
//! container's processes are gone), appends what it reads to the container log and fans it out
//! to the attached clients through the container's [`Hub`]; attached clients' input is written
//! to the master. Each run ends with [`Chunk::End`], on which attachments close their stream.
//!
//! The master lives in the daemon only: a daemon restart hangs the terminal up (the command
//! gets SIGHUP), unlike a pipe-backed container, which runs on.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::pty::{Winsize, openpty};
use tokio::sync::broadcast;
use tracing::debug;

use crate::model::ContainerId;

/// How many output chunks an attachment may fall behind before it loses some.
const BACKLOG: usize = 1024;

/// A piece of a container's terminal output.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// Bytes the container wrote.
    Data(Bytes),
    /// The run is over: every process holding the terminal is gone.
    End,
}

/// The attachment point of one container: its output fan-out and its current terminal.
#[derive(Debug)]
pub struct Hub {
    out: broadcast::Sender<Chunk>,
    master: Mutex<Option<Arc<File>>>,
    /// The exit code of each run, for `wait?condition=next-exit` (any container, TTY or not).
    exits: broadcast::Sender<i32>,
}

impl Hub {
    fn new() -> Hub {
        Hub {
            out: broadcast::channel(BACKLOG).0,
            master: Mutex::new(None),
            exits: broadcast::channel(4).0,
        }
    }

    /// Receives the exit codes of the runs that end from now on.
    pub fn subscribe_exits(&self) -> broadcast::Receiver<i32> {
        self.exits.subscribe()
    }

    /// Announces the end of a run.
    pub fn exited(&self, code: i32) {
        let _ = self.exits.send(code);
    }

    /// Receives the output written from now on, then [`Chunk::End`] when the run ends.
    pub fn subscribe(&self) -> broadcast::Receiver<Chunk> {
        self.out.subscribe()
    }

    /// Writes input to the running container's terminal; answers false when none is open.
    /// Blocks while the terminal's input queue is full: call it off the async threads.
    pub fn write_input(&self, data: &[u8]) -> std::io::Result<bool> {
        let master = self.master.lock().expect("hub lock").clone();
        match master {
            Some(m) => {
                (&*m).write_all(data)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// The hubs of all containers, created on first use (an attach may precede the start).
#[derive(Debug, Default)]
pub struct Hubs(Mutex<HashMap<ContainerId, Arc<Hub>>>);

impl Hubs {
    /// The hub of container `id`.
    pub fn get(&self, id: &ContainerId) -> Arc<Hub> {
        self.0
            .lock()
            .expect("hubs lock")
            .entry(id.clone())
            .or_insert_with(|| Arc::new(Hub::new()))
            .clone()
    }

    /// Forgets a removed container's hub (its attachments see the channel close).
    pub fn remove(&self, id: &ContainerId) {
        self.0.lock().expect("hubs lock").remove(id);
    }
}

/// A freshly allocated pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    /// The daemon's side.
    pub master: OwnedFd,
    /// The container's side, held open by the daemon until the shim has opened it (so the
    /// master does not see a hang-up before the command runs).
    pub slave: OwnedFd,
    /// The slave's path (`/dev/pts/N`), for the shim's `--tty`.
    pub path: PathBuf,
}

fn cloexec(fd: impl AsFd) -> nix::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map(drop)
}

impl Pty {
    /// Allocates a pty of 24 rows and 80 columns; neither side leaks into child processes.
    pub fn open() -> std::io::Result<Pty> {
        let size = Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let p = openpty(&size, None)?;
        cloexec(&p.master)?;
        cloexec(&p.slave)?;
        let path = nix::unistd::ttyname(&p.slave)?;
        Ok(Pty {
            master: p.master,
            slave: p.slave,
            path,
        })
    }
}

/// Serves one run of a container's terminal: makes `master` the hub's input target, and
/// copies its output to `log` and to the attachments until the slave side is closed by all,
/// then sends [`Chunk::End`]. Runs on a thread of its own (the reads block).
pub fn serve(hub: Arc<Hub>, master: OwnedFd, mut log: File) -> std::io::Result<()> {
    let master = Arc::new(File::from(master));
    *hub.master.lock().expect("hub lock") = Some(master.clone());
    std::thread::Builder::new()
        .name("netloom-tty".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match (&*master).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Err(e) = log.write_all(&buf[..n]) {
                            debug!(error = %e, "writing the container log failed");
                        }
                        let _ = hub.out.send(Chunk::Data(Bytes::copy_from_slice(&buf[..n])));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // EIO: no slave descriptor is left open.
                    Err(_) => break,
                }
            }
            {
                let mut current = hub.master.lock().expect("hub lock");
                if current.as_ref().is_some_and(|m| Arc::ptr_eq(m, &master)) {
                    *current = None;
                }
            }
            let _ = hub.out.send(Chunk::End);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_fans_out_and_input_reaches_the_terminal() {
        let pty = Pty::open().unwrap();
        let hub = Arc::new(Hub::new());
        let mut rx = hub.subscribe();
        let log = tempfile::NamedTempFile::new().unwrap();
        serve(hub.clone(), pty.master, log.reopen().unwrap()).unwrap();
        let slave = File::from(pty.slave);
        // The terminal echoes input (canonical mode): what we type comes back as output.
        assert!(hub.write_input(b"hi\n").unwrap());
        let mut line = [0u8; 3];
        (&slave).read_exact(&mut line).unwrap();
        assert_eq!(&line, b"hi\n");
        (&slave).write_all(b"out").unwrap();
        drop(slave);
        let mut seen = Vec::new();
        while let Chunk::Data(d) = rx.blocking_recv().unwrap() {
            seen.extend_from_slice(&d);
        }
        let seen = String::from_utf8_lossy(&seen);
        assert!(seen.contains("hi") && seen.ends_with("out"), "{seen:?}");
        let logged = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(logged, seen);
        assert!(!hub.write_input(b"x").unwrap(), "no terminal after the end");
    }
}
