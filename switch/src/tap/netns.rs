//! Running a closure inside another network namespace, on a thread of its own.
//!
//! A network namespace is a per-thread attribute: `setns(2)` changes it for the calling thread
//! only, and a TAP (like a socket) belongs to the namespace its creating thread was in when it
//! opened `/dev/net/tun`. So netloom never switches a long-lived thread: [`in_netns`] spawns a
//! fresh std thread, moves it into the target namespace, runs the closure there, and lets the
//! thread end. Tokio workers and the caller's thread keep the namespace they had, and no thread
//! is ever left behind in a container's namespace.
//!
//! The closure runs on a blocking std thread, so call this from async code through
//! `tokio::task::spawn_blocking` (creating a TAP takes a few syscalls, but spawning a thread is
//! still not something to do on a worker).

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::thread;

use nix::sched::{CloneFlags, setns};

use super::TapError;

/// Runs `f` on a fresh thread inside the network namespace at `netns` (a file such as
/// `/var/run/netns/NAME`, `/proc/PID/ns/net`, or a bind mount of one) and returns its result.
///
/// A panic in `f` is resumed on the caller's thread.
pub fn in_netns<T, F>(netns: &Path, f: F) -> Result<T, TapError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let file = File::open(netns).map_err(|source| TapError::OpenNetns {
        path: netns.to_owned(),
        source,
    })?;
    run_in(file.as_fd(), &netns.display().to_string(), f)
}

/// Like [`in_netns`], for a namespace the caller already holds open (e.g. a descriptor kept
/// since the container started, which keeps the namespace alive and cannot be swapped for
/// another namespace by a re-mounted path).
pub fn in_netns_fd<T, F>(netns: BorrowedFd<'_>, f: F) -> Result<T, TapError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    run_in(netns, "<descriptor>", f)
}

fn run_in<T, F>(netns: BorrowedFd<'_>, what: &str, f: F) -> Result<T, TapError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name("netloom-netns".into())
            .spawn_scoped(scope, move || {
                // CLONE_NEWNET makes the kernel check that the descriptor really is a network
                // namespace (EINVAL otherwise), so a wrong path cannot move us elsewhere.
                setns(netns, CloneFlags::CLONE_NEWNET).map_err(|errno| TapError::EnterNetns {
                    netns: what.to_owned(),
                    source: errno.into(),
                })?;
                Ok(f())
            })
            .map_err(|source| TapError::SpawnThread { source })?;
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
