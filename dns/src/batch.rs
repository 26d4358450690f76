//! Datagrams in and out in batches: `recvmmsg(2)` and `sendmmsg(2)` (through nix, so this crate
//! stays free of `unsafe`), so a busy UDP server pays one system call per batch of queries and
//! one per batch of replies instead of one per query and one per reply.
//!
//! Both calls are non-blocking (`MSG_DONTWAIT`); the server waits for readiness through tokio
//! and calls them inside `UdpSocket::try_io`, which clears tokio's readiness on `WouldBlock`.
//! A profile of the server at saturation (`benches/e2e/dns.sh`) was 87 % kernel, most of it the
//! two system calls per query; the batches cut their entry and exit, the epoll round trips and
//! tokio's per-call bookkeeping, not the kernel's per-datagram work.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};

/// Datagrams per system call. The kernel hands out what is queued, up to this many; 16 already
/// spreads a call's fixed cost thin, and keeps the replies of one batch from waiting long
/// behind the others.
pub(crate) const BATCH: usize = 16;

/// The largest UDP payload; every receive buffer holds one, so nothing is ever cut short.
const MAX_DATAGRAM: usize = u16::MAX as usize;

/// How many receives in a row must each fill every buffer before a server takes [`BATCH`]
/// buffers (1 MiB). A stub resolver's burst is two queries (A and AAAA), so the DNS server of a
/// quiet container keeps the single 64 KiB buffer it always had; only a server that keeps
/// finding queries queued pays for the batch.
const GROW_AFTER: u32 = 4;

/// Receive buffers for one socket, and what the last [`Inbox::receive`] put in them.
pub(crate) struct Inbox {
    /// `slots` buffers of [`MAX_DATAGRAM`] bytes, one after the other.
    buffers: Vec<u8>,
    slots: usize,
    /// Receives in a row that filled every slot.
    full_in_a_row: u32,
    received: [(usize, Option<SocketAddr>); BATCH],
    count: usize,
}

impl Inbox {
    /// One buffer to start with; see [`GROW_AFTER`].
    pub(crate) fn new() -> Self {
        Self {
            buffers: vec![0; MAX_DATAGRAM],
            slots: 1,
            full_in_a_row: 0,
            received: [(0, None); BATCH],
            count: 0,
        }
    }

    /// Reads the datagrams queued on `fd`, at most [`BATCH`], without blocking: the number read
    /// (at least one), or `WouldBlock` when none is queued.
    pub(crate) fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        self.count = 0;
        if self.slots < BATCH && self.full_in_a_row >= GROW_AFTER {
            self.buffers = vec![0; BATCH * MAX_DATAGRAM];
            self.slots = BATCH;
        }
        let mut chunks = self.buffers.chunks_exact_mut(MAX_DATAGRAM);
        let mut slices: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            [chunks
                .next()
                .map_or_else(|| IoSliceMut::new(&mut []), IoSliceMut::new)]
        });
        // The headers hold raw pointers (not `Send`), so they live for one call only; two small
        // allocations per batch, next to a system call.
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(self.slots, None);
        let messages = match recvmmsg(
            fd,
            &mut headers,
            slices[..self.slots].iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(messages) => messages,
            Err(errno) => {
                self.full_in_a_row = 0;
                return Err(io::Error::from(errno));
            }
        };
        for (slot, message) in self.received.iter_mut().zip(messages) {
            *slot = (message.bytes, message.address.and_then(std_address));
            self.count += 1;
        }
        if self.count == self.slots {
            self.full_in_a_row += 1;
        } else {
            self.full_in_a_row = 0;
        }
        Ok(self.count)
    }

    /// The datagrams the last [`Inbox::receive`] read, in arrival order, each with its sender
    /// (`None` if the kernel gave no address, which UDP always does).
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (&[u8], Option<SocketAddr>)> {
        self.buffers
            .chunks_exact(MAX_DATAGRAM)
            .zip(&self.received[..self.count])
            .map(|(buffer, &(len, peer))| (&buffer[..len], peer))
    }
}

/// Replies waiting to be sent, in order, at most [`BATCH`] per [`Outbox::send`].
pub(crate) struct Outbox {
    replies: Vec<(Vec<u8>, SocketAddr)>,
}

impl Outbox {
    pub(crate) fn new() -> Self {
        Self {
            replies: Vec::with_capacity(BATCH),
        }
    }

    pub(crate) fn push(&mut self, reply: Vec<u8>, peer: SocketAddr) {
        self.replies.push((reply, peer));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.replies.len()
    }

    /// Sends the replies at the front, at most [`BATCH`], without blocking, and forgets those
    /// sent: their number (at least one), or the error of the first reply, which stays queued
    /// (`WouldBlock`: the socket's buffer is full; anything else: see [`Outbox::drop_first`]).
    pub(crate) fn send(&mut self, fd: RawFd) -> io::Result<usize> {
        let count = self.replies.len().min(BATCH);
        let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|i| {
            [IoSlice::new(
                self.replies.get(i).map_or(&[][..], |(bytes, _)| bytes),
            )]
        });
        let addresses: [Option<SockaddrStorage>; BATCH] = std::array::from_fn(|i| {
            self.replies
                .get(i)
                .map(|&(_, peer)| SockaddrStorage::from(peer))
        });
        let no_control: [ControlMessage<'_>; 0] = [];
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let sent = sendmmsg(
            fd,
            &mut headers,
            &slices[..count],
            &addresses[..count],
            no_control,
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?
        .count();
        self.replies.drain(..sent);
        Ok(sent)
    }

    /// Gives up on the first reply (its send failed for good).
    pub(crate) fn drop_first(&mut self) {
        if !self.replies.is_empty() {
            self.replies.remove(0);
        }
    }

    /// Gives up on every reply (the socket itself failed); how many there were.
    pub(crate) fn drop_all(&mut self) -> usize {
        let dropped = self.replies.len();
        self.replies.clear();
        dropped
    }
}

fn std_address(address: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    use super::*;

    fn pair(bind: &str) -> (UdpSocket, UdpSocket) {
        let server = UdpSocket::bind(bind).unwrap();
        let client = UdpSocket::bind(bind).unwrap();
        (server, client)
    }

    #[test]
    fn nothing_queued_is_would_block() {
        let (server, _client) = pair("127.0.0.1:0");
        let err = Inbox::new().receive(server.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_burst_arrives_in_batches_whole_and_in_order_with_its_senders() {
        let (server, a) = pair("127.0.0.1:0");
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        // 40 datagrams from two senders; one of them as large as UDP allows.
        let mut sent = Vec::new();
        for i in 0..40u16 {
            let (from, len) = if i % 3 == 0 { (&b, 40) } else { (&a, 20) };
            let len = if i == 17 {
                65_507
            } else {
                len + usize::from(i)
            };
            let payload: Vec<u8> = (0..len).map(|j| (j as u8) ^ (i as u8)).collect();
            from.send_to(&payload, to).unwrap();
            sent.push((payload, from.local_addr().unwrap()));
        }
        let mut inbox = Inbox::new();
        let mut got = Vec::new();
        let mut per_call = Vec::new();
        while got.len() < sent.len() {
            let n = inbox.receive(server.as_raw_fd()).unwrap();
            got.extend(
                inbox
                    .datagrams()
                    .map(|(d, peer)| (d.to_vec(), peer.unwrap())),
            );
            per_call.push(n);
        }
        assert_eq!(got, sent);
        // One at a time until four receives in a row found more queued, then 16 at a time.
        assert_eq!(per_call, [1, 1, 1, 1, 16, 16, 4]);
        let err = inbox.receive(server.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_quiet_server_keeps_one_buffer() {
        let (server, client) = pair("127.0.0.1:0");
        let to = server.local_addr().unwrap();
        let mut inbox = Inbox::new();
        // A stub resolver's queries: A and AAAA together, then silence, many times over.
        for _ in 0..10 {
            client.send_to(b"A", to).unwrap();
            client.send_to(b"AAAA", to).unwrap();
            assert_eq!(inbox.receive(server.as_raw_fd()).unwrap(), 1);
            assert_eq!(inbox.receive(server.as_raw_fd()).unwrap(), 1);
            let err = inbox.receive(server.as_raw_fd()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        }
        assert_eq!(inbox.slots, 1);
        assert_eq!(inbox.buffers.len(), MAX_DATAGRAM);
    }

    #[test]
    fn replies_leave_in_order_to_their_peers_v4_and_v6() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let (server, a) = pair(bind);
            let b = UdpSocket::bind(bind).unwrap();
            let mut outbox = Outbox::new();
            for i in 0..20u8 {
                let to = if i % 2 == 0 { &a } else { &b };
                outbox.push(vec![i; usize::from(i) + 1], to.local_addr().unwrap());
            }
            assert_eq!(outbox.len(), 20);
            assert_eq!(outbox.send(server.as_raw_fd()).unwrap(), BATCH);
            assert_eq!(outbox.len(), 4);
            assert_eq!(outbox.send(server.as_raw_fd()).unwrap(), 4);
            assert!(outbox.is_empty());
            let mut buf = [0u8; 64];
            for i in 0..20u8 {
                let at = if i % 2 == 0 { &a } else { &b };
                let (n, from) = at.recv_from(&mut buf).unwrap();
                assert_eq!(
                    &buf[..n],
                    &vec![i; usize::from(i) + 1][..],
                    "{bind} reply {i}"
                );
                assert_eq!(from, server.local_addr().unwrap());
            }
        }
    }

    #[test]
    fn a_reply_that_cannot_be_sent_stays_first_until_dropped() {
        let (server, client) = pair("127.0.0.1:0");
        let mut outbox = Outbox::new();
        // A v6 peer on a v4 socket: the kernel refuses the first message, nothing is sent.
        outbox.push(vec![1], "[::1]:53".parse().unwrap());
        outbox.push(vec![2], client.local_addr().unwrap());
        let err = outbox.send(server.as_raw_fd()).unwrap_err();
        assert_ne!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(outbox.len(), 2);
        outbox.drop_first();
        assert_eq!(outbox.send(server.as_raw_fd()).unwrap(), 1);
        let mut buf = [0u8; 4];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[2]);
        outbox.push(vec![3], client.local_addr().unwrap());
        assert_eq!(outbox.drop_all(), 1);
        assert!(outbox.is_empty());
    }
}
