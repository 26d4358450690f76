//! The published-port fast path for clients on the daemon's loopback: instead of carrying the
//! connection through the gateway's TCP stack and the container's TAP, the daemon opens a
//! socket inside the container's network namespace, connects it to the container's address,
//! and moves the bytes between the two kernel sockets with `splice(2)` through a pipe, so they
//! never enter user space (pasta's "splice" path; Docker's userland proxy copies through user
//! space instead).
//!
//! What the container sees: the connection comes from its **own** address (the socket is made
//! in its namespace and connects to its address, so the kernel picks that address as the
//! source), not from the gateway as on the slow path. The socket connects to the container's
//! address on the published network, never to its loopback, so a service the container binds
//! to `127.0.0.1` only stays unreachable, as on the slow path.
//!
//! Each direction owns a pipe: it splices what the source socket has (up to the pipe's size)
//! into the pipe, then from the pipe into the destination socket until the pipe is empty, and
//! waits on the sockets' readiness in between. EOF is carried as `shutdown(Write)`
//! (half-close); an error on either side resets both (`SO_LINGER` 0 and close). The flow ends
//! when both directions are done, or when the gateway stops (domain removed, daemon shutdown).
//! Unpublishing stops new connections; carried ones finish, as on the slow path.

use std::io;
use std::net::{Shutdown, SocketAddrV4};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::tap::in_netns_fd;

/// How much one direction moves per round: the pipe's size is raised to this (1 MiB is the
/// default `fs.pipe-max-size`, so unprivileged daemons get it too); a smaller pipe still works.
const PIPE_SIZE: usize = 1 << 20;

/// How long the connection to the container may take before the client is reset.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A container's network namespace, held open by its publication so that loopback clients of
/// its published TCP ports can be spliced into it.
#[derive(Clone, Debug)]
pub struct Netns(Arc<OwnedFd>);

impl Netns {
    /// Takes a descriptor of a network namespace (e.g. `/proc/PID/ns/net` opened, or the
    /// descriptor that created it). The kernel checks it really is one on first use.
    pub fn new(fd: OwnedFd) -> Netns {
        Netns(Arc::new(fd))
    }
}

/// True for clients the fast path is for: the daemon's own loopback.
pub(crate) fn is_loopback_client(client: std::net::SocketAddr) -> bool {
    match client.ip() {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Carries one accepted loopback client to `target` inside `netns`; returns when the
/// connection is over. `carried` counts the live spliced connections: the caller has counted
/// this one already, and it is uncounted here when the connection ends, however it ends.
/// `failures` counts the connections that could not reach the container (the client is reset).
pub(crate) async fn carry(
    client: TcpStream,
    netns: Netns,
    target: SocketAddrV4,
    carried: Arc<AtomicUsize>,
    failures: Arc<AtomicU64>,
    cancel: CancellationToken,
) {
    let _gauge = Decrement(carried);
    let server = tokio::select! {
        () = cancel.cancelled() => return reset(&client),
        r = tokio::time::timeout(CONNECT_TIMEOUT, connect_in(&netns, target)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                failures.fetch_add(1, Ordering::Relaxed);
                debug!(%target, error = %e, "spliced connection to the container failed");
                return reset(&client);
            }
            Err(_) => {
                failures.fetch_add(1, Ordering::Relaxed);
                debug!(%target, "spliced connection to the container timed out");
                return reset(&client);
            }
        },
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let up = pump(&client, &server);
    let down = pump(&server, &client);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let result = tokio::select! {
            () = cancel.cancelled() => Err(io::Error::other("the gateway stopped")),
            r = &mut up, if !up_done => { up_done = true; r }
            r = &mut down, if !down_done => { down_done = true; r }
        };
        if let Err(e) = result {
            debug!(%target, error = %e, "spliced connection reset");
            reset(&client);
            reset(&server);
            return;
        }
    }
}

/// Lowers the gauge when the connection ends, however it ends.
struct Decrement(Arc<AtomicUsize>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Makes the close of `s` (when it is dropped) a RST.
fn reset(s: &TcpStream) {
    let _ = SockRef::from(s).set_linger(Some(Duration::ZERO));
}

/// Opens a TCP socket inside `netns` (on a short-lived thread; see [`in_netns_fd`]) and
/// connects it to `target` from this runtime.
async fn connect_in(netns: &Netns, target: SocketAddrV4) -> io::Result<TcpStream> {
    let ns = netns.0.clone();
    let socket = tokio::task::spawn_blocking(move || {
        in_netns_fd(ns.as_fd(), || {
            socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::STREAM.nonblocking().cloexec(),
                Some(socket2::Protocol::TCP),
            )
        })
    })
    .await
    .map_err(io::Error::other)?
    .map_err(io::Error::other)??;
    let socket = TcpSocket::from_std_stream(socket.into());
    socket.connect(target.into()).await
}

/// Moves everything `src` sends to `dst` until `src`'s EOF (then half-closes `dst`).
async fn pump(src: &TcpStream, dst: &TcpStream) -> io::Result<()> {
    let (pipe_r, pipe_w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    let _ = fcntl(&pipe_w, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32));
    let size = fcntl(&pipe_w, FcntlArg::F_GETPIPE_SZ)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(65536);
    let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
    loop {
        // The pipe is empty here, so an EAGAIN can only mean that `src` has nothing.
        src.readable().await?;
        let filled = match src.try_io(Interest::READABLE, || {
            splice(src, None, &pipe_w, None, size, flags).map_err(io::Error::from)
        }) {
            Ok(0) => {
                SockRef::from(dst).shutdown(Shutdown::Write)?;
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut left = filled;
        while left > 0 {
            dst.writable().await?;
            // The pipe holds `left` bytes, so an EAGAIN can only mean that `dst` is full.
            match dst.try_io(Interest::WRITABLE, || {
                splice(&pipe_r, None, dst, None, left, flags).map_err(io::Error::from)
            }) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => left -= n.min(left),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn only_loopback_clients_take_the_fast_path() {
        for (client, want) in [
            ("127.0.0.1:5000", true),
            ("127.8.9.10:5000", true),
            ("[::1]:5000", true),
            ("[::ffff:127.0.0.1]:5000", true),
            ("10.0.0.1:5000", false),
            ("[::ffff:10.0.0.1]:5000", false),
            ("[2001:db8::1]:5000", false),
        ] {
            let client: SocketAddr = client.parse().unwrap();
            assert_eq!(is_loopback_client(client), want, "{client}");
        }
    }

    /// The test's own namespace stands in for the container's (entering it needs root, as
    /// the tests that create namespaces do).
    fn own_netns() -> Netns {
        Netns::new(
            std::fs::File::open("/proc/thread-self/ns/net")
                .unwrap()
                .into(),
        )
    }

    /// A client, the spliced connection to a server on `server`'s address, and the gauge.
    async fn spliced(
        server: &TcpListener,
    ) -> (
        TcpStream,
        TcpStream,
        Arc<AtomicUsize>,
        tokio::task::JoinHandle<()>,
    ) {
        let front = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let client = TcpStream::connect(front.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = front.accept().await.unwrap();
        let target = match server.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        // Counted by the caller, as the accept loop does.
        let gauge = Arc::new(AtomicUsize::new(1));
        let flow = tokio::spawn(carry(
            accepted,
            own_netns(),
            target,
            gauge.clone(),
            Arc::default(),
            CancellationToken::new(),
        ));
        let (inner, _) = server.accept().await.unwrap();
        (client, inner, gauge, flow)
    }

    #[tokio::test]
    async fn bytes_and_half_closes_cross_both_ways() {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let (mut client, mut inner, gauge, flow) = spliced(&server).await;
        assert_eq!(gauge.load(Ordering::Relaxed), 1);
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        inner.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "the client's bytes arrive intact, then EOF");
        inner
            .write_all(b"answer after the client's half-close")
            .await
            .unwrap();
        inner.shutdown().await.unwrap();
        assert_eq!(
            writer.await.unwrap(),
            b"answer after the client's half-close"
        );
        flow.await.unwrap();
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_reset_on_one_side_resets_the_other() {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let (mut client, inner, gauge, flow) = spliced(&server).await;
        reset(&inner);
        drop(inner);
        let mut buf = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
            .await
            .expect("the client learns of the reset");
        assert_eq!(
            r.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset),
            "a RST, not a clean EOF"
        );
        flow.await.unwrap();
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_refused_connection_resets_the_client() {
        // Bound but not listening: connecting to it is refused.
        let closed = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let target = match closed.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        drop(closed);
        let front = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let mut client = TcpStream::connect(front.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = front.accept().await.unwrap();
        let gauge = Arc::new(AtomicUsize::new(1));
        let failures = Arc::new(AtomicU64::new(0));
        carry(
            accepted,
            own_netns(),
            target,
            gauge.clone(),
            failures.clone(),
            CancellationToken::new(),
        )
        .await;
        let mut buf = [0u8; 16];
        let r = client.read(&mut buf).await.map_err(|e| e.kind());
        assert_eq!(r, Err(io::ErrorKind::ConnectionReset));
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
        assert_eq!(
            failures.load(Ordering::Relaxed),
            1,
            "the failure is counted"
        );
    }
}
