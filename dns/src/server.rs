//! The server: sockets the daemon gives it, queries in, replies out.
//!
//! The daemon creates the sockets (inside a container's namespace on 127.0.0.11:53, or on a
//! network's gateway address) and hands them over, as hickory-server's `register_socket` does;
//! [`DnsServer::serve_udp`] and [`DnsServer::serve_tcp`] return futures that run until a
//! [`CancellationToken`] fires, for the caller to spawn into its `JoinSet`.
//!
//! A query answered from the snapshot is handled inline in the receive loop: one lock-free
//! snapshot load, one lookup, one reply buffer, no task. Only forwarded queries get a task, and
//! only with a permit from the shared in-flight limiter: without one the client gets REFUSED at
//! once (SPEC: more than 1024 queries in flight), so the number of tasks, sockets and buffers a
//! flood can cost is bounded by the limiter, not by the flood.
//!
//! Why not hickory-server's `Server` and hickory-resolver: the server spawns a task per UDP
//! datagram with no bound and only relays answers it re-encodes from records, and the resolver
//! caches, retries on its own schedule and turns NXDOMAIN into an error. Docker's behaviour is a
//! byte-for-byte relay (EDNS options, DNSSEC records and all) with its own failover rules, so
//! this module keeps the socket loops and uses hickory-proto for every message it reads or
//! writes.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::batch::{Inbox, Outbox};
use crate::counters::{DnsCounters, Event};
use crate::forward::{Upstreams, forward, framed};
use crate::message::{ForwardQuery, Handled, Policy, Transport, handle};
use crate::store::RecordStore;

/// Docker's limit on forwarded queries in flight (`maxConcurrent`); the size of the limiter
/// [`DnsServer::limiter`] makes.
pub const MAX_IN_FLIGHT: usize = 1024;

/// How many TCP connections one listener serves at once; more are closed at once. Stub resolvers
/// use TCP only after a truncated UDP answer, one query per connection.
pub const MAX_TCP_CONNECTIONS: usize = 128;

/// How long a TCP connection may sit idle, or take over one message, before it is closed
/// (RFC 7766 section 6.2.3 asks for idle timeouts "on the order of seconds").
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// How long to pause accepting after running out of file descriptors, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What one server answers for, besides the snapshot. Replaceable while serving, see
/// [`DnsServer::reconfigure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The networks (as named in the snapshot) whose names the clients of this socket may
    /// resolve, in the container's endpoint order: a name on several of them resolves on the
    /// first. Empty means nothing resolves locally.
    pub networks: Vec<String>,
    /// Where unknown names are forwarded.
    pub upstreams: Upstreams,
    /// False on `--internal` networks: unknown names then get SERVFAIL, as from Docker.
    pub forward: bool,
    /// True when the container's resolv.conf has an `ndots` option the user set (through
    /// `--dns-option` or the host's file). Docker then answers a single-label A or AAAA name it
    /// does not know with NOERROR and no records instead of forwarding it, so the client's
    /// resolver goes on to its search domains.
    pub ndots_set: bool,
}

impl ServerConfig {
    /// A container on `networks` that forwards to `upstreams` with Docker's limits.
    pub fn new(networks: Vec<String>, upstreams: Vec<SocketAddr>) -> Self {
        Self {
            networks,
            upstreams: Upstreams::new(upstreams),
            forward: true,
            ndots_set: false,
        }
    }
}

/// Why serving a socket stopped before its token was cancelled. Transient errors (a client gone
/// before its reply, a full file-descriptor table) are counted or waited out, not returned.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket has no local address (it was never bound).
    #[error("the DNS socket has no local address")]
    LocalAddr(#[source] io::Error),
    /// Receiving on the UDP socket failed for good.
    #[error("receiving DNS queries on udp {local} failed")]
    Receive {
        /// Where the socket is bound.
        local: SocketAddr,
        /// The error from the socket.
        #[source]
        source: io::Error,
    },
    /// Accepting on the TCP listener failed for good.
    #[error("accepting DNS connections on tcp {local} failed")]
    Accept {
        /// Where the listener is bound.
        local: SocketAddr,
        /// The error from the listener.
        #[source]
        source: io::Error,
    },
}

/// The embedded DNS server for one container (or one gateway address): answers from the shared
/// [`RecordStore`], forwards the rest. Cheap to clone; clones share everything, counters
/// included.
///
/// The daemon binds the sockets where the clients are (for a container: 127.0.0.11:53, UDP and
/// TCP, created on a thread that has entered the container's network namespace, since a socket
/// stays in the namespace it was created in), makes them non-blocking, and hands them over.
/// Forwarding sockets are created in the namespace of the runtime thread polling the futures,
/// normally the daemon's own.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use netloom_dns::{DnsServer, RecordStore, ServeError, ServerConfig};
/// # use tokio::task::JoinSet;
/// # use tokio_util::sync::CancellationToken;
/// # async fn run(
/// #     store: Arc<RecordStore>,
/// #     udp: std::net::UdpSocket,
/// #     tcp: std::net::TcpListener,
/// # ) -> std::io::Result<()> {
/// let config = ServerConfig::new(vec!["mynet".into()], vec!["127.0.0.53:53".parse().unwrap()]);
/// let server = DnsServer::new(store, config, DnsServer::limiter());
/// let stop = CancellationToken::new();
/// let mut tasks: JoinSet<Result<(), ServeError>> = JoinSet::new();
/// udp.set_nonblocking(true)?;
/// tcp.set_nonblocking(true)?;
/// tasks.spawn(server.clone().serve_udp(tokio::net::UdpSocket::from_std(udp)?, stop.clone()));
/// tasks.spawn(server.clone().serve_tcp(tokio::net::TcpListener::from_std(tcp)?, stop.clone()));
/// // Container stopped:
/// stop.cancel();
/// while let Some(done) = tasks.join_next().await {
///     if let Ok(Err(e)) = done {
///         eprintln!("{e}");
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DnsServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<RecordStore>,
    config: ArcSwap<ServerConfig>,
    limiter: Arc<Semaphore>,
    counters: Arc<DnsCounters>,
}

impl DnsServer {
    /// A server answering from `store` as `config` says, forwarding under `limiter` (a
    /// semaphore; each forwarded query holds one permit until its reply is sent).
    ///
    /// Docker has one limit of 1024 per container: give each server its own
    /// [`DnsServer::limiter`] for that, or share one to cap the whole daemon.
    pub fn new(store: Arc<RecordStore>, config: ServerConfig, limiter: Arc<Semaphore>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                config: ArcSwap::from_pointee(config),
                limiter,
                counters: Arc::new(DnsCounters::new()),
            }),
        }
    }

    /// A limiter of [`MAX_IN_FLIGHT`] permits.
    pub fn limiter() -> Arc<Semaphore> {
        Arc::new(Semaphore::new(MAX_IN_FLIGHT))
    }

    /// This server's counters.
    pub fn counters(&self) -> &Arc<DnsCounters> {
        &self.inner.counters
    }

    /// The configuration queries are answered with now.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.inner.config.load_full()
    }

    /// Replaces the configuration, for a container connected to or disconnected from a network,
    /// or new upstreams. Takes effect for the next query; queries being forwarded finish with
    /// the upstreams they started with.
    pub fn reconfigure(&self, config: ServerConfig) {
        self.inner.config.store(Arc::new(config));
    }

    /// The reply to `query`, arriving over `transport` at `local`, forwarding if needed: the
    /// whole server for one message, for transports other than tokio sockets (a gateway whose
    /// sockets live in a userspace stack). `None` means send nothing. The caller frames TCP
    /// replies; UDP replies already respect the client's size limit.
    pub async fn answer(
        &self,
        query: &[u8],
        transport: Transport,
        local: SocketAddr,
    ) -> Option<Vec<u8>> {
        match self.handle(query, transport, local) {
            Handled::Reply { bytes, .. } => Some(bytes),
            Handled::Drop(_) => None,
            Handled::Forward(query) => self.forward_now(&query, local, transport).await,
        }
    }

    /// What the server does with `query` arriving over `transport` at a socket bound to `local`,
    /// without any I/O: the hot path of both loops, public for fuzzing and tests. Counts the query
    /// and its outcome, except for [`Handled::Forward`], whose outcome is counted when the
    /// upstreams have answered.
    pub fn handle(&self, query: &[u8], transport: Transport, local: SocketAddr) -> Handled {
        let counters = &self.inner.counters;
        counters.bump(Event::Query);
        let config = self.inner.config.load();
        let records = self.inner.store.load();
        let policy = Policy {
            forward: config.forward && config.upstreams.any(local),
            ndots_set: config.ndots_set,
        };
        let handled = handle(&records, &config.networks, policy, query, transport);
        match &handled {
            Handled::Reply { event, .. } | Handled::Drop(event) => counters.bump(*event),
            Handled::Forward(_) => {}
        }
        handled
    }

    /// Serves `socket` until `cancel` fires; forwarded queries still in flight are then
    /// abandoned. Returns an error only if the socket fails for good.
    ///
    /// Queries are read in batches (`recvmmsg`, up to 16 per call) and the replies answered from
    /// the snapshot leave together (`sendmmsg`), in the order the queries came.
    pub async fn serve_udp(
        self,
        socket: UdpSocket,
        cancel: CancellationToken,
    ) -> Result<(), ServeError> {
        let local = socket.local_addr().map_err(ServeError::LocalAddr)?;
        let socket = Arc::new(socket);
        let mut inbox = Inbox::new();
        let mut outbox = Outbox::new();
        let mut in_flight = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
                ready = socket.readable() => {
                    ready.map_err(|source| ServeError::Receive { local, source })?;
                }
            }
            let fd = socket.as_raw_fd();
            match socket.try_io(Interest::READABLE, || inbox.receive(fd)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || is_transient(&e) => continue,
                Err(source) => return Err(ServeError::Receive { local, source }),
            }
            for (query, peer) in inbox.datagrams() {
                let Some(peer) = peer.filter(|peer| peer.port() != 0) else {
                    self.inner.counters.bump(Event::Query);
                    self.inner.counters.bump(Event::DroppedPortZero);
                    continue;
                };
                let query = match self.handle(query, Transport::Udp, local) {
                    Handled::Reply { bytes, .. } => {
                        outbox.push(bytes, peer);
                        continue;
                    }
                    Handled::Drop(_) => continue,
                    Handled::Forward(query) => query,
                };
                match self.start_forward() {
                    Some(permit) => {
                        let server = self.clone();
                        let socket = Arc::clone(&socket);
                        in_flight.spawn(async move {
                            let reply = server.finish_forward(&query, local, Transport::Udp).await;
                            if let Some(reply) = reply {
                                server.send_udp(&socket, &reply, peer).await;
                            }
                            drop(permit);
                        });
                    }
                    None => {
                        if let Some(reply) = query.error(ResponseCode::Refused) {
                            outbox.push(reply, peer);
                        }
                    }
                }
            }
            self.flush(&socket, &mut outbox).await;
        }
        in_flight.shutdown().await;
        Ok(())
    }

    /// Sends every reply in `outbox`, in batches, waiting while the socket's buffer is full. A
    /// reply the kernel refuses is counted and skipped; the rest still go.
    async fn flush(&self, socket: &UdpSocket, outbox: &mut Outbox) {
        let fd = socket.as_raw_fd();
        while !outbox.is_empty() {
            match socket.try_io(Interest::WRITABLE, || outbox.send(fd)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if socket.writable().await.is_err() {
                        for _ in 0..outbox.drop_all() {
                            self.inner.counters.bump(Event::SendFailed);
                        }
                    }
                }
                Err(_) => {
                    outbox.drop_first();
                    self.inner.counters.bump(Event::SendFailed);
                }
            }
        }
    }

    /// Serves connections from `listener` until `cancel` fires; open connections are then
    /// closed. Queries on one connection are answered in order (RFC 7766 section 6.2.1.1 allows
    /// that); at most [`MAX_TCP_CONNECTIONS`] are served at once.
    pub async fn serve_tcp(
        self,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> Result<(), ServeError> {
        let local = listener.local_addr().map_err(ServeError::LocalAddr)?;
        let mut connections = JoinSet::new();
        loop {
            let stream = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) if is_transient(&e) => continue,
                    Err(e) if is_out_of_resources(&e) => {
                        tracing::warn!(%local, error = %e, "DNS listener out of resources");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                    Err(source) => return Err(ServeError::Accept { local, source }),
                },
            };
            if connections.len() >= MAX_TCP_CONNECTIONS {
                self.inner.counters.bump(Event::TcpRejected);
                continue;
            }
            connections.spawn(self.clone().serve_connection(stream, local));
        }
        connections.shutdown().await;
        Ok(())
    }

    /// One TCP connection: length-prefixed queries in, length-prefixed replies out, until the
    /// client closes, idles past [`TCP_IDLE`], or breaks the framing.
    async fn serve_connection(self, mut stream: TcpStream, local: SocketAddr) {
        loop {
            let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
                Ok(Ok(len)) => usize::from(len),
                // A clean close between messages is the normal end.
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return,
                Ok(Err(_)) | Err(_) => break,
            };
            let mut query = vec![0u8; len];
            match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => break,
            }
            let reply = match self.handle(&query, Transport::Tcp, local) {
                Handled::Reply { bytes, .. } => Some(bytes),
                // A TCP client gets a reply to every query or nothing more: keep the connection
                // for the next one.
                Handled::Drop(_) => None,
                Handled::Forward(query) => self.forward_now(&query, local, Transport::Tcp).await,
            };
            if let Some(reply) = reply
                && stream.write_all(&framed(&reply)).await.is_err()
            {
                self.inner.counters.bump(Event::SendFailed);
                return;
            }
        }
        self.inner.counters.bump(Event::TcpClosed);
    }

    /// Forwards `query` in this task if a permit is free, else REFUSED.
    async fn forward_now(
        &self,
        query: &ForwardQuery,
        local: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        match self.start_forward() {
            Some(permit) => {
                let reply = self.finish_forward(query, local, transport).await;
                drop(permit);
                reply
            }
            None => query.error(ResponseCode::Refused),
        }
    }

    /// A permit to forward a query, or `None` (counted as REFUSED) when the limiter is empty.
    fn start_forward(&self) -> Option<OwnedSemaphorePermit> {
        match Arc::clone(&self.inner.limiter).try_acquire_owned() {
            Ok(permit) => {
                self.inner.counters.bump(Event::Forwarded);
                Some(permit)
            }
            Err(_) => {
                self.inner.counters.bump(Event::Refused);
                None
            }
        }
    }

    /// The upstreams' reply for the client, or SERVFAIL when none answered.
    async fn finish_forward(
        &self,
        query: &ForwardQuery,
        local: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let config = self.inner.config.load_full();
        let counters = &self.inner.counters;
        match forward(query, &config.upstreams, local, transport, counters).await {
            Some(reply) => Some(reply),
            None => {
                counters.bump(Event::ServFail);
                query.error(ResponseCode::ServFail)
            }
        }
    }

    async fn send_udp(&self, socket: &UdpSocket, reply: &[u8], peer: SocketAddr) {
        if socket.send_to(reply, peer).await.is_err() {
            self.inner.counters.bump(Event::SendFailed);
        }
    }
}

/// Errors that concern one client or one moment, not the socket: the loop goes on.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// Out of file descriptors or buffers: waiting helps, giving up does not.
fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    ) || e.kind() == io::ErrorKind::OutOfMemory
}
