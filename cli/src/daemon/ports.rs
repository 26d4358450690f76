//! Published ports in the control plane: the daemon-wide table of host ports held by
//! containers with Docker's allocator (moby `libnetwork/portallocator`), and the binding of
//! the host sockets (moby `bindHostPorts`), which the data plane then serves.
//!
//! A port is held in two places: in the [`PortTable`] (so a second container asking for it is
//! refused with Docker's "port is already allocated" before any socket is touched) and by the
//! bound socket itself (so a port another program holds is refused by the kernel). The table
//! is pure and knows nothing of sockets; [`reserve`] ties the two together.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netloom_switch::Listener;
use socket2::{Domain, Socket, Type};
use tracing::{debug, warn};

use crate::model::{BoundPort, ContainerId, ContainerPort, PortMapping, PortRange, Proto};

/// Docker's fallback when `ip_local_port_range` cannot be read.
pub const DEFAULT_RANGE: PortRange = PortRange {
    start: 49153,
    end: 65535,
};

/// How often a port picked from a range is tried when its bind fails (moby
/// `maxAllocatePortAttempts`); an explicit port is tried once.
const MAX_ATTEMPTS: usize = 10;

/// The kernel's listen backlog for published TCP ports.
const BACKLOG: i32 = 1024;

/// Why a container's ports could not be published. The texts are Docker's.
#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    /// Another container holds the port (moby `alreadyAllocatedErr`).
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    Allocated {
        /// The host address.
        ip: IpAddr,
        /// The host port.
        port: u16,
    },
    /// No port of the range is free.
    #[error("all ports are allocated")]
    Exhausted,
    /// The kernel refused the bind (another program holds the port, or the address is not
    /// local).
    #[error("failed to bind host port {}/{proto}: {}", host_port(*ip, *port), go_errno(source))]
    Bind {
        /// The host address.
        ip: IpAddr,
        /// The host port.
        port: u16,
        /// The protocol.
        proto: Proto,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

/// A data-plane refusal to serve published ports.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The network has no switch domain (a failed reconcile).
    #[error("network {0} has no switch domain; check the daemon log")]
    NoDomain(String),
    /// The switch refused.
    #[error("the switch refused to publish the ports: {0}")]
    Switch(#[source] netloom_switch::HandleError),
}

/// `0.0.0.0:8081`, `[::]:8081` (libnetwork's `PortBinding` form).
pub fn host_port(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

/// An OS error as Go's `syscall.Errno` prints it (`address already in use`), which is what
/// Docker's messages carry.
pub fn go_errno(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One host port a container holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Protocol.
    pub proto: Proto,
    /// Host address (`0.0.0.0` and `::` are addresses of their own, as in Docker).
    pub ip: IpAddr,
    /// Port.
    pub port: u16,
}

/// The daemon-wide table of held host ports and Docker's dynamic-port allocator: a port asked
/// for by number is refused while another container holds it; a port left to the daemon is
/// the lowest free one after the last one handed out (per address, protocol and range),
/// wrapping once.
#[derive(Debug)]
pub struct PortTable {
    range: PortRange,
    owners: HashMap<HostPort, ContainerId>,
    last: HashMap<(Proto, IpAddr, PortRange), u16>,
}

impl PortTable {
    /// An empty table handing out dynamic ports from `range`.
    pub fn new(range: PortRange) -> PortTable {
        PortTable {
            range,
            owners: HashMap::new(),
            last: HashMap::new(),
        }
    }

    /// The dynamic range.
    pub fn range(&self) -> PortRange {
        self.range
    }

    /// Who holds a port.
    pub fn owner(&self, key: &HostPort) -> Option<&ContainerId> {
        self.owners.get(key)
    }

    /// Takes one port, the same on every address of `ips` (moby `RequestPortsInRange`):
    /// `wanted` as given when it is one port, else the next free port of `wanted` (or of the
    /// dynamic range when `None`).
    pub fn request(
        &mut self,
        ips: &[IpAddr],
        proto: Proto,
        wanted: Option<PortRange>,
        owner: &ContainerId,
    ) -> Result<u16, PortsError> {
        let Some(&first) = ips.first() else {
            return Err(PortsError::Exhausted);
        };
        let key = |ip, port| HostPort { proto, ip, port };
        if let Some(r) = wanted.filter(|r| r.is_single()) {
            if let Some(ip) = ips
                .iter()
                .find(|ip| self.owners.contains_key(&key(**ip, r.start)))
            {
                return Err(PortsError::Allocated {
                    ip: *ip,
                    port: r.start,
                });
            }
            for ip in ips {
                self.owners.insert(key(*ip, r.start), owner.clone());
            }
            return Ok(r.start);
        }
        let range = wanted.unwrap_or(self.range);
        // A range never used starts "after its end", so the first port handed out is its start.
        let mut port = self
            .last
            .get(&(proto, first, range))
            .copied()
            .unwrap_or(range.end);
        for _ in range.start..=range.end {
            port = if port >= range.end {
                range.start
            } else {
                port + 1
            };
            if ips
                .iter()
                .all(|ip| !self.owners.contains_key(&key(*ip, port)))
            {
                for ip in ips {
                    self.owners.insert(key(*ip, port), owner.clone());
                    self.last.insert((proto, *ip, range), port);
                }
                return Ok(port);
            }
        }
        Err(PortsError::Exhausted)
    }

    /// Records a port an adopted container already holds; answers the other holder, if any.
    pub fn claim(&mut self, port: HostPort, owner: &ContainerId) -> Result<(), ContainerId> {
        match self.owners.get(&port) {
            Some(o) if o != owner => Err(o.clone()),
            _ => {
                self.owners.insert(port, owner.clone());
                Ok(())
            }
        }
    }

    /// Gives one port back.
    pub fn release(&mut self, port: &HostPort) {
        self.owners.remove(port);
    }

    /// Gives back every port `owner` holds.
    pub fn release_owner(&mut self, owner: &ContainerId) {
        self.owners.retain(|_, o| o != owner);
    }
}

/// The dynamic range of the daemon's namespace (`/proc/sys/net/ipv4/ip_local_port_range`), or
/// Docker's fallback.
pub fn local_port_range() -> PortRange {
    const PATH: &str = "/proc/sys/net/ipv4/ip_local_port_range";
    match std::fs::read_to_string(PATH)
        .ok()
        .as_deref()
        .and_then(parse_port_range_file)
    {
        Some(r) => r,
        None => {
            warn!(
                path = PATH,
                "cannot read the dynamic port range; using {}-{}",
                DEFAULT_RANGE.start,
                DEFAULT_RANGE.end
            );
            DEFAULT_RANGE
        }
    }
}

/// `32768\t60999\n` → 32768-60999.
fn parse_port_range_file(text: &str) -> Option<PortRange> {
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    let (start, end) = (it.next()?.ok()?, it.next()?.ok()?);
    (start > 0 && end >= start).then_some(PortRange { start, end })
}

/// Whether IPv6 sockets can be bound here (moby `netutils.IsV6Listenable`).
pub fn ipv6_listenable() -> bool {
    std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Binds one host socket as Docker does: `SO_REUSEADDR` for TCP, `IPV6_V6ONLY` for IPv6 (so
/// `::` and `0.0.0.0` are separate bindings), non-blocking, TCP listening.
pub fn bind(proto: Proto, ip: IpAddr, port: u16) -> io::Result<Listener> {
    let addr = SocketAddr::new(ip, port);
    let ty = match proto {
        Proto::Tcp => Type::STREAM,
        Proto::Udp => Type::DGRAM,
    };
    let socket = Socket::new(Domain::for_address(addr), ty, None)?;
    if proto == Proto::Tcp {
        socket.set_reuse_address(true)?;
    }
    if ip.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(match proto {
        Proto::Tcp => {
            socket.listen(BACKLOG)?;
            Listener::Tcp(socket.into())
        }
        Proto::Udp => Listener::Udp(socket.into()),
    })
}

/// Ports bound for one container, not yet handed to the data plane.
#[derive(Debug, Default)]
pub struct Reserved {
    /// What `inspect` shows, in Docker's order.
    pub bound: Vec<BoundPort>,
    /// The sockets, with the container port each forwards to.
    pub listeners: Vec<(ContainerPort, Listener)>,
}

/// Docker's processing order (moby `cmpPortBinding`): explicit host ports before ranges, then
/// by container port, protocol, host port (range) and host address; mappings that differ only
/// in the host address end up adjacent and get the same port.
fn sort_mappings(mappings: &mut [PortMapping]) {
    mappings.sort_by(|a, b| {
        let is_range = |m: &PortMapping| m.host_port.is_none_or(|r| !r.is_single());
        let ports = |m: &PortMapping| m.host_port.map_or((0, 0), |r| (r.start, r.end));
        is_range(a)
            .cmp(&is_range(b))
            .then(a.container.port.cmp(&b.container.port))
            .then(a.container.proto.cmp(&b.container.proto))
            .then(ports(a).cmp(&ports(b)))
            .then(a.host_ip.cmp(&b.host_ip))
    });
}

/// The host addresses of one mapping: the one given, or `0.0.0.0` and (when IPv6 works) `::`.
fn addresses(m: &PortMapping, ipv6: bool) -> Vec<IpAddr> {
    match m.host_ip {
        Some(ip) => vec![ip],
        None if ipv6 => vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
        None => vec![Ipv4Addr::UNSPECIFIED.into()],
    }
}

/// Allocates and binds the host ports of `mappings` for `owner` (moby `addPortMappings`):
/// each group of mappings differing only in host address gets one port; a port from a range
/// whose bind fails is replaced by the next one, up to [`MAX_ATTEMPTS`] times. On failure every
/// port taken so far is given back and every socket closed.
pub fn reserve(
    table: &mut PortTable,
    owner: &ContainerId,
    mappings: &[PortMapping],
    ipv6: bool,
) -> Result<Reserved, PortsError> {
    let mut sorted = mappings.to_vec();
    sort_mappings(&mut sorted);
    let mut out = Reserved::default();
    let mut i = 0;
    while i < sorted.len() {
        let m = sorted[i];
        let mut ips: Vec<IpAddr> = Vec::new();
        let mut seen = HashSet::new();
        while i < sorted.len()
            && sorted[i].container == m.container
            && sorted[i].host_port == m.host_port
        {
            for ip in addresses(&sorted[i], ipv6) {
                if seen.insert(ip) {
                    ips.push(ip);
                }
            }
            i += 1;
        }
        match bind_group(table, owner, m, &ips) {
            Ok(group) => {
                for (bound, listener) in group {
                    out.bound.push(bound);
                    out.listeners.push((m.container, listener));
                }
            }
            Err(e) => {
                for b in &out.bound {
                    table.release(&HostPort {
                        proto: b.container.proto,
                        ip: b.host_ip,
                        port: b.host_port,
                    });
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// One group: one port for every address of `ips`.
fn bind_group(
    table: &mut PortTable,
    owner: &ContainerId,
    m: PortMapping,
    ips: &[IpAddr],
) -> Result<Vec<(BoundPort, Listener)>, PortsError> {
    let proto = m.container.proto;
    let explicit = m.host_port.is_some_and(|r| r.is_single());
    let attempts = if explicit { 1 } else { MAX_ATTEMPTS };
    let mut last_error = PortsError::Exhausted;
    for attempt in 1..=attempts {
        let port = table.request(ips, proto, m.host_port, owner)?;
        let mut group = Vec::with_capacity(ips.len());
        let mut failed = None;
        for ip in ips {
            match bind(proto, *ip, port) {
                Ok(l) => group.push((
                    BoundPort {
                        container: m.container,
                        host_ip: *ip,
                        host_port: port,
                    },
                    l,
                )),
                Err(source) => {
                    failed = Some(PortsError::Bind {
                        ip: *ip,
                        port,
                        proto,
                        source,
                    });
                    break;
                }
            }
        }
        match failed {
            None => return Ok(group),
            Some(e) => {
                for ip in ips {
                    table.release(&HostPort {
                        proto,
                        ip: *ip,
                        port,
                    });
                }
                if explicit {
                    warn!(error = %e, "failed to allocate and map port");
                } else {
                    warn!(error = %e, attempt, "failed to allocate and map port, retrying");
                }
                last_error = e;
            }
        }
    }
    debug!(container = %m.container, "no port could be bound");
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectId;
    use rstest::rstest;

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

    fn table(start: u16, end: u16) -> PortTable {
        PortTable::new(PortRange { start, end })
    }

    #[test]
    fn dynamic_ports_start_at_the_range_start_and_go_up() {
        let mut t = table(40000, 40002);
        let a = ObjectId::random();
        assert_eq!(t.request(&[V4, V6], Proto::Tcp, None, &a).unwrap(), 40000);
        assert_eq!(t.request(&[V4, V6], Proto::Tcp, None, &a).unwrap(), 40001);
        // Protocols and addresses are counted apart.
        assert_eq!(t.request(&[V4], Proto::Udp, None, &a).unwrap(), 40000);
    }

    #[test]
    fn the_next_port_is_after_the_last_even_when_a_lower_one_is_free_then_wraps() {
        let mut t = table(40000, 40002);
        let a = ObjectId::random();
        let p0 = t.request(&[V4], Proto::Tcp, None, &a).unwrap();
        let p1 = t.request(&[V4], Proto::Tcp, None, &a).unwrap();
        t.release(&HostPort {
            proto: Proto::Tcp,
            ip: V4,
            port: p0,
        });
        assert_eq!(t.request(&[V4], Proto::Tcp, None, &a).unwrap(), 40002);
        // Wraps around once to the freed port, skipping the held one.
        assert_eq!(t.request(&[V4], Proto::Tcp, None, &a).unwrap(), p0);
        assert_eq!(p1, 40001);
    }

    #[test]
    fn exhaustion_is_reported() {
        let mut t = table(40000, 40001);
        let a = ObjectId::random();
        t.request(&[V4], Proto::Tcp, None, &a).unwrap();
        t.request(&[V4], Proto::Tcp, None, &a).unwrap();
        let e = t.request(&[V4], Proto::Tcp, None, &a).unwrap_err();
        assert_eq!(e.to_string(), "all ports are allocated");
        t.release_owner(&a);
        assert_eq!(t.request(&[V4], Proto::Tcp, None, &a).unwrap(), 40000);
    }

    #[test]
    fn a_port_free_on_one_address_only_is_skipped() {
        let mut t = table(40000, 40005);
        let (a, b) = (ObjectId::random(), ObjectId::random());
        t.request(&[V6], Proto::Tcp, Some(PortRange::single(40000)), &a)
            .unwrap();
        assert_eq!(t.request(&[V4, V6], Proto::Tcp, None, &b).unwrap(), 40001);
    }

    #[test]
    fn user_ranges_have_their_own_cursor() {
        let mut t = table(40000, 40005);
        let a = ObjectId::random();
        let r = Some(PortRange {
            start: 8000,
            end: 8001,
        });
        assert_eq!(t.request(&[V4], Proto::Tcp, r, &a).unwrap(), 8000);
        assert_eq!(t.request(&[V4], Proto::Tcp, None, &a).unwrap(), 40000);
        assert_eq!(t.request(&[V4], Proto::Tcp, r, &a).unwrap(), 8001);
        assert!(matches!(
            t.request(&[V4], Proto::Tcp, r, &a),
            Err(PortsError::Exhausted)
        ));
    }

    #[rstest]
    #[case(&[V4, V6], &[V4], 8081, "Bind for 0.0.0.0:8081 failed: port is already allocated")]
    #[case(&[V4, V6], &[V6], 8081, "Bind for :::8081 failed: port is already allocated")]
    #[case(
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        80,
        "Bind for 127.0.0.1:80 failed: port is already allocated"
    )]
    fn conflicts_name_the_first_held_address(
        #[case] held: &[IpAddr],
        #[case] asked: &[IpAddr],
        #[case] port: u16,
        #[case] text: &str,
    ) {
        let mut t = table(40000, 40005);
        let (a, b) = (ObjectId::random(), ObjectId::random());
        t.request(held, Proto::Tcp, Some(PortRange::single(port)), &a)
            .unwrap();
        let e = t
            .request(asked, Proto::Tcp, Some(PortRange::single(port)), &b)
            .unwrap_err();
        assert_eq!(e.to_string(), text);
        // Nothing of the refused request was taken; the other protocol is free.
        assert!(
            t.request(asked, Proto::Udp, Some(PortRange::single(port)), &b)
                .is_ok()
        );
    }

    #[test]
    fn claims_refuse_another_owner() {
        let mut t = table(40000, 40005);
        let (a, b) = (ObjectId::random(), ObjectId::random());
        let p = HostPort {
            proto: Proto::Tcp,
            ip: V4,
            port: 8080,
        };
        t.claim(p, &a).unwrap();
        t.claim(p, &a).unwrap();
        assert_eq!(t.claim(p, &b).unwrap_err(), a);
        assert_eq!(t.owner(&p), Some(&a));
    }

    #[rstest]
    #[case("32768\t60999\n", Some((32768, 60999)))]
    #[case("1024 65535", Some((1024, 65535)))]
    #[case("60999 32768", None)]
    #[case("x", None)]
    fn port_range_file(#[case] text: &str, #[case] want: Option<(u16, u16)>) {
        assert_eq!(
            parse_port_range_file(text),
            want.map(|(start, end)| PortRange { start, end })
        );
    }

    #[test]
    fn bind_errors_read_like_go() {
        let e = PortsError::Bind {
            ip: V4,
            port: 8081,
            proto: Proto::Tcp,
            source: io::Error::from_raw_os_error(libc::EADDRINUSE),
        };
        assert_eq!(
            e.to_string(),
            "failed to bind host port 0.0.0.0:8081/tcp: address already in use"
        );
        let e = PortsError::Bind {
            ip: V6,
            port: 53,
            proto: Proto::Udp,
            source: io::Error::from_raw_os_error(libc::EADDRNOTAVAIL),
        };
        assert_eq!(
            e.to_string(),
            "failed to bind host port [::]:53/udp: cannot assign requested address"
        );
    }

    fn mapping(port: u16, ip: Option<IpAddr>, host: Option<(u16, u16)>) -> PortMapping {
        PortMapping {
            container: ContainerPort {
                port,
                proto: Proto::Tcp,
            },
            host_ip: ip,
            host_port: host.map(|(start, end)| PortRange { start, end }),
        }
    }

    #[test]
    fn explicit_ports_come_first_then_by_container_port() {
        let mut m = vec![
            mapping(80, None, None),
            mapping(90, None, Some((9000, 9000))),
            mapping(70, None, Some((7000, 7010))),
            mapping(60, Some(V6), Some((6000, 6000))),
            mapping(60, Some(V4), Some((6000, 6000))),
        ];
        sort_mappings(&mut m);
        let order: Vec<(u16, Option<IpAddr>)> =
            m.iter().map(|m| (m.container.port, m.host_ip)).collect();
        assert_eq!(
            order,
            vec![
                (60, Some(V4)),
                (60, Some(V6)),
                (90, None),
                (70, None),
                (80, None)
            ]
        );
    }

    #[test]
    fn reserve_binds_v4_and_v6_on_one_port_and_gives_everything_back_on_failure() {
        // Runs in the test's namespace on loopback only.
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let blocker = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let busy = blocker.local_addr().unwrap().port();
        let mut t = table(40000, 40005);
        let a = ObjectId::random();
        let ok = reserve(&mut t, &a, &[mapping(80, Some(lo), None)], false).unwrap();
        assert_eq!(ok.bound.len(), 1);
        assert_eq!(ok.listeners.len(), 1);
        let e = reserve(
            &mut t,
            &a,
            &[
                mapping(81, Some(lo), None),
                mapping(82, Some(lo), Some((busy, busy))),
            ],
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("failed to bind host port 127.0.0.1:{busy}/tcp: address already in use")
        );
        // Only the first reservation's port is still held.
        let held: Vec<_> = t.owners.keys().map(|k| k.port).collect();
        assert_eq!(held, vec![ok.bound[0].host_port]);
    }
}
