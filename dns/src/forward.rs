//! Forwarding names the snapshot does not know to the host's upstream resolvers.
//!
//! Docker's rules (`libnetwork/resolver.go`, `forwardExtDNS`): the upstreams are tried in order,
//! at most three, each for at most 4 seconds; SERVFAIL and REFUSED mean "try the next one",
//! every other answer (NXDOMAIN included) goes back to the client as it is; when none answers
//! the client gets SERVFAIL. A query goes upstream over the transport it came in on, so a
//! truncated UDP answer makes the client retry over TCP, which is then forwarded over TCP.
//!
//! Each attempt opens a fresh socket: a random source port and a random id make a spoofed answer
//! a 32-bit guess (RFC 5452 section 9.2), and answers that do not match the query are ignored
//! (section 9.1). The sockets are created normally, in the network namespace of the thread that
//! polls the future, which is the daemon's: loopback upstreams such as systemd-resolved's
//! 127.0.0.53 work, where Docker needs them reachable from the container.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::counters::{DnsCounters, Event};
use crate::message::{ForwardQuery, Transport, UpstreamReply};

/// The largest DNS message (RFC 1035 section 4.2.2's 16-bit length); an upstream UDP answer is
/// read whole even if the client did not ask for that much, then cut for it if needed.
const MAX_MESSAGE: usize = u16::MAX as usize;

/// The host's resolvers and how patiently to ask them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstreams {
    /// In the order of the host's resolv.conf (or `--dns`); port 53 unless given.
    pub servers: Vec<SocketAddr>,
    /// How long one upstream gets for one query before the next is tried.
    pub timeout: Duration,
    /// How many of `servers` are tried at most.
    pub max: usize,
}

impl Upstreams {
    /// Docker's timeout per upstream (`extIOTimeout`).
    pub const TIMEOUT: Duration = Duration::from_secs(4);
    /// Docker's number of upstreams tried (`maxExtDNS`).
    pub const MAX: usize = 3;

    /// `servers` with Docker's timeout and limit.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Self {
            servers,
            timeout: Self::TIMEOUT,
            max: Self::MAX,
        }
    }

    /// The servers that will be tried, in order: at most `max`, skipping `own` (a server must not
    /// forward to itself; Docker drops its own address from the list the same way).
    fn tried(&self, own: SocketAddr) -> impl Iterator<Item = SocketAddr> + '_ {
        self.servers
            .iter()
            .copied()
            .filter(move |s| *s != own)
            .take(self.max)
    }

    /// Whether any server would be tried for a socket at `own`.
    pub(crate) fn any(&self, own: SocketAddr) -> bool {
        self.tried(own).next().is_some()
    }
}

impl Default for Upstreams {
    /// No servers (every unknown name gets SERVFAIL), Docker's timeout and limit.
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// Asks the upstreams in turn; the reply for the client, or `None` when none of them answered
/// (the caller then sends SERVFAIL).
pub(crate) async fn forward(
    query: &ForwardQuery,
    upstreams: &Upstreams,
    own: SocketAddr,
    transport: Transport,
    counters: &DnsCounters,
) -> Option<Vec<u8>> {
    for server in upstreams.tried(own) {
        let id = rand::random::<u16>();
        let sent = query.upstream_query(id);
        let judge = |reply: &[u8]| query.judge(id, reply);
        let attempt = match transport {
            Transport::Udp => {
                tokio::time::timeout(upstreams.timeout, exchange_udp(server, &sent, judge)).await
            }
            Transport::Tcp => {
                tokio::time::timeout(upstreams.timeout, exchange_tcp(server, &sent, judge)).await
            }
        };
        match attempt {
            Ok(Ok(UpstreamReply::Answer(bytes))) => {
                counters.bump(Event::UpstreamAnswered);
                return Some(bytes);
            }
            Ok(Ok(UpstreamReply::Failed | UpstreamReply::Mismatch)) => {
                tracing::debug!(%server, question = %query.question(), "upstream failed");
            }
            Ok(Err(error)) => {
                tracing::debug!(%server, question = %query.question(), %error, "upstream unreachable");
            }
            Err(_) => {
                tracing::debug!(%server, question = %query.question(), "upstream timed out");
            }
        }
        counters.bump(Event::UpstreamFailed);
    }
    None
}

/// One UDP exchange: send once, then read until an answer matches (the caller's timeout ends
/// the wait). A connected socket only receives from `server`; other datagrams on it are ignored.
async fn exchange_udp(
    server: SocketAddr,
    query: &[u8],
    judge: impl Fn(&[u8]) -> UpstreamReply,
) -> io::Result<UpstreamReply> {
    let socket = UdpSocket::bind(unspecified(server)).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    // Capacity, not length: the read fills only what arrives, so no 64 KiB memset per query.
    let mut buf = Vec::with_capacity(MAX_MESSAGE);
    loop {
        buf.clear();
        socket.recv_buf(&mut buf).await?;
        match judge(&buf) {
            UpstreamReply::Mismatch => continue,
            decided => return Ok(decided),
        }
    }
}

/// One TCP exchange: connect, send the length-prefixed query, read one length-prefixed answer
/// (RFC 1035 section 4.2.2). A mismatching answer on a connection of our own is a failure.
async fn exchange_tcp(
    server: SocketAddr,
    query: &[u8],
    judge: impl Fn(&[u8]) -> UpstreamReply,
) -> io::Result<UpstreamReply> {
    let mut stream = TcpStream::connect(server).await?;
    stream.write_all(&framed(query)).await?;
    let len = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    Ok(match judge(&buf) {
        UpstreamReply::Mismatch => UpstreamReply::Failed,
        decided => decided,
    })
}

/// `message` behind its 2-byte length, in one buffer so it leaves in one write.
pub(crate) fn framed(message: &[u8]) -> Vec<u8> {
    // Every message we frame came from a 16-bit length or was encoded within 65535 bytes.
    let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(message.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&message[..usize::from(len)]);
    out
}

fn unspecified(server: SocketAddr) -> SocketAddr {
    match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn docker_defaults() {
        let u = Upstreams::default();
        assert_eq!(u.timeout, Duration::from_secs(4));
        assert_eq!(u.max, 3);
        assert!(u.servers.is_empty());
    }

    #[test]
    fn tries_at_most_max_and_never_itself() {
        let own = addr("127.0.0.11:53");
        let u = Upstreams::new(vec![
            addr("127.0.0.53:53"),
            own,
            addr("192.0.2.1:53"),
            addr("192.0.2.2:53"),
            addr("192.0.2.3:53"),
        ]);
        let tried: Vec<_> = u.tried(own).collect();
        assert_eq!(
            tried,
            [
                addr("127.0.0.53:53"),
                addr("192.0.2.1:53"),
                addr("192.0.2.2:53")
            ]
        );
        assert!(u.any(own));
        assert!(!Upstreams::new(vec![own]).any(own));
    }

    #[test]
    fn framing_prefixes_the_length() {
        assert_eq!(framed(&[1, 2, 3]), [0, 3, 1, 2, 3]);
        assert_eq!(framed(&[]), [0, 0]);
    }
}
