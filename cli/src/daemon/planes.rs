//! Keeps the data plane (switch domains) and the DNS record snapshot in step with the store.
//!
//! The control plane reconciles instead of replaying events: after every change (and at start)
//! it hands the switch the typed commands that make its domains match the stored bridge
//! networks, and swaps in a DNS snapshot built from the store. A reconcile after a crash
//! therefore converges without knowing what happened before.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use netloom_dns::{DnsServer, RecordStore, Records, ServerConfig};
use netloom_switch::tap::{Tap, TapConfig, TapError};
use netloom_switch::{DomainConfig, DomainId, HandleError, PortId, PortPolicy, SwitchHandle};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::daemon::engine::{Attached, HOST_LOOPBACK_OPTION, MTU_OPTION, parse_bool_option};
use crate::daemon::netconf::{self, IfConfig, NetconfError};
use crate::model::{
    ContainerId, ContainerRecord, Driver, EndpointId, EndpointRecord, NetworkId, NetworkRecord,
};
use crate::store::Snapshot;

/// The data-plane side of the composition root.
#[derive(Debug)]
pub struct Planes {
    switch: SwitchHandle,
    dns: Arc<RecordStore>,
    domains: Mutex<Domains>,
    ports: Mutex<HashMap<EndpointId, PortId>>,
    /// `--host-dns`: the server answering every user network's names to the host.
    host_dns: std::sync::Mutex<Option<DnsServer>>,
    /// Each user network's DNS server behind its gateway address (`gateway:53`), stopped with
    /// the network.
    gateway_dns: std::sync::Mutex<HashMap<NetworkId, CancellationToken>>,
}

#[derive(Debug, Default)]
struct Domains {
    by_network: HashMap<NetworkId, DomainId>,
    next: u64,
}

/// A reconcile step the switch refused.
#[derive(Debug, thiserror::Error)]
#[error("the switch refused a change for network {network}: {source}")]
pub struct PlaneError {
    /// The network.
    network: String,
    /// Why.
    #[source]
    source: HandleError,
}

fn domain_config(n: &NetworkRecord, dns: Option<std::net::SocketAddr>) -> Option<DomainConfig> {
    let ipam = n.ipam.as_ref()?;
    let mtu = n
        .options
        .get(MTU_OPTION)
        .and_then(|m| m.parse().ok())
        .unwrap_or(1500);
    Some(DomainConfig {
        subnet: ipam.subnet.network(),
        prefix: ipam.subnet.prefix_len(),
        gateway: ipam.gateway,
        mtu,
        internal: n.internal,
        host_loopback: n
            .options
            .get(HOST_LOOPBACK_OPTION)
            .and_then(|v| parse_bool_option(v))
            .unwrap_or(false),
        dns,
    })
}

impl Planes {
    /// Wraps a running switch and the DNS record store.
    pub fn new(switch: SwitchHandle, dns: Arc<RecordStore>) -> Self {
        Planes {
            switch,
            dns,
            domains: Mutex::new(Domains::default()),
            ports: Mutex::new(HashMap::new()),
            host_dns: std::sync::Mutex::new(None),
            gateway_dns: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Starts a user network's DNS server for its gateway address: UDP and TCP on one
    /// loopback port of the daemon's namespace, where the gateway sends what containers (or
    /// foreign runtimes) ask `gateway:53`. Answers like the container's 127.0.0.11.
    fn start_gateway_dns(&self, n: &NetworkRecord) -> std::io::Result<std::net::SocketAddr> {
        // The TCP listener takes the UDP socket's port; another program may hold it on TCP,
        // so try a few ports.
        let mut last = None;
        for _ in 0..8 {
            let udp = std::net::UdpSocket::bind(("127.0.0.1", 0))?;
            let addr = udp.local_addr()?;
            match std::net::TcpListener::bind(addr) {
                Ok(tcp) => {
                    udp.set_nonblocking(true)?;
                    tcp.set_nonblocking(true)?;
                    let udp = tokio::net::UdpSocket::from_std(udp)?;
                    let tcp = tokio::net::TcpListener::from_std(tcp)?;
                    let mut config = ServerConfig::new(
                        vec![n.name.to_string()],
                        crate::daemon::files::host_upstreams(),
                    );
                    config.forward = !n.internal;
                    let server = DnsServer::new(self.dns.clone(), config, DnsServer::limiter());
                    let cancel = CancellationToken::new();
                    let (u, c) = (server.clone(), cancel.clone());
                    let name = n.name.to_string();
                    tokio::spawn(async move {
                        if let Err(e) = u.serve_udp(udp, c).await {
                            warn!(network = name, error = %e, "gateway DNS (UDP) stopped");
                        }
                    });
                    let c = cancel.clone();
                    let name = n.name.to_string();
                    tokio::spawn(async move {
                        if let Err(e) = server.serve_tcp(tcp, c).await {
                            warn!(network = name, error = %e, "gateway DNS (TCP) stopped");
                        }
                    });
                    if let Some(old) = self
                        .gateway_dns
                        .lock()
                        .expect("gateway DNS lock poisoned")
                        .insert(n.id.clone(), cancel)
                    {
                        old.cancel();
                    }
                    return Ok(addr);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no port for the gateway DNS")))
    }

    fn stop_gateway_dns(&self, network: &NetworkId) {
        if let Some(c) = self
            .gateway_dns
            .lock()
            .expect("gateway DNS lock poisoned")
            .remove(network)
        {
            c.cancel();
        }
    }

    /// Serves every user network's names on the given sockets (in the daemon's namespace) until
    /// `cancel` fires; unknown names are not forwarded (the host has its own resolver).
    pub fn serve_host_dns(
        &self,
        udp: tokio::net::UdpSocket,
        tcp: tokio::net::TcpListener,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let networks = self.dns.load().networks().map(str::to_owned).collect();
        let server = DnsServer::new(
            self.dns.clone(),
            host_dns_config(networks),
            DnsServer::limiter(),
        );
        let (u, t) = (server.clone(), server.clone());
        let c = cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = u.serve_udp(udp, c).await {
                warn!(error = %e, "host DNS (UDP) stopped");
            }
        });
        tokio::spawn(async move {
            if let Err(e) = t.serve_tcp(tcp, cancel).await {
                warn!(error = %e, "host DNS (TCP) stopped");
            }
        });
        *self.host_dns.lock().expect("host DNS lock poisoned") = Some(server);
    }

    /// The DNS snapshot store (lookups never lock).
    pub fn dns(&self) -> &Arc<RecordStore> {
        &self.dns
    }

    /// Makes the switch's domains and the DNS snapshot match `networks`. Every difference is
    /// attempted; the first refusal is reported after the rest were applied.
    pub async fn reconcile(&self, state: &Snapshot) -> Result<(), PlaneError> {
        let networks = &state.networks;
        let mut first_error = None;
        let mut domains = self.domains.lock().await;
        let wanted: HashMap<&NetworkId, &NetworkRecord> = networks
            .iter()
            .filter(|n| n.driver == Driver::Bridge && n.ipam.is_some())
            .map(|n| (&n.id, n))
            .collect();
        let stale: Vec<NetworkId> = domains
            .by_network
            .keys()
            .filter(|id| !wanted.contains_key(id))
            .cloned()
            .collect();
        for id in stale {
            let domain = domains.by_network[&id];
            match self.switch.remove_domain(domain).await {
                Ok(()) => {
                    domains.by_network.remove(&id);
                    self.stop_gateway_dns(&id);
                    debug!(network = %id.short(), %domain, "switch domain removed");
                }
                Err(source) => {
                    warn!(network = %id.short(), error = %source, "switch domain removal failed");
                    first_error.get_or_insert(PlaneError {
                        network: id.to_string(),
                        source,
                    });
                }
            }
        }
        for (id, n) in wanted {
            if domains.by_network.contains_key(id) {
                continue;
            }
            // Docker's default bridge has no embedded DNS; user networks serve it on the
            // gateway address too.
            let dns = if n.builtin {
                None
            } else {
                match self.start_gateway_dns(n) {
                    Ok(addr) => Some(addr),
                    Err(e) => {
                        warn!(network = %n.name, error = %e, "no DNS on the gateway address");
                        None
                    }
                }
            };
            let Some(config) = domain_config(n, dns) else {
                self.stop_gateway_dns(id);
                continue;
            };
            let domain = DomainId(domains.next);
            domains.next += 1;
            match self.switch.add_domain(domain, config).await {
                Ok(()) => {
                    domains.by_network.insert(id.clone(), domain);
                    debug!(network = %n.name, %domain, "switch domain added");
                }
                Err(source) => {
                    self.stop_gateway_dns(id);
                    warn!(network = %n.name, error = %source, "switch domain add failed");
                    first_error.get_or_insert(PlaneError {
                        network: n.name.to_string(),
                        source,
                    });
                }
            }
        }
        drop(domains);
        let records = dns_records(state);
        if let Some(server) = self
            .host_dns
            .lock()
            .expect("host DNS lock poisoned")
            .as_ref()
        {
            server.reconfigure(host_dns_config(
                records.networks().map(str::to_owned).collect(),
            ));
        }
        self.dns.replace(records);
        first_error.map_or(Ok(()), Err)
    }

    async fn domain_of(&self, network: &NetworkId) -> Option<DomainId> {
        self.domains.lock().await.by_network.get(network).copied()
    }

    /// Plumbs a new endpoint: a persistent TAP named after the endpoint's interface inside the
    /// sandbox's namespace, configured over netlink, then added to the network's switch domain
    /// under the endpoint's MAC/IP policy. On failure nothing is left behind.
    pub async fn plug(&self, netns: &Path, a: &Attached) -> Result<(), PlugError> {
        let domain = self
            .domain_of(&a.network.id)
            .await
            .ok_or_else(|| PlugError::NoDomain(a.network.name.to_string()))?;
        let netns = netns.to_owned();
        let config = TapConfig::new(a.endpoint.ifname.clone()).persistent(true);
        let tap = {
            let netns = netns.clone();
            tokio::task::spawn_blocking(move || Tap::create_in_netns(&netns, &config)).await??
        };
        let ipam = a
            .network
            .ipam
            .as_ref()
            .ok_or_else(|| PlugError::NoDomain(a.network.name.to_string()))?;
        let ifconfig = IfConfig {
            ifname: a.endpoint.ifname.clone(),
            mac: a.endpoint.mac.octets(),
            ip: a.endpoint.ip,
            prefix: ipam.subnet.prefix_len(),
            mtu: network_mtu(&a.network).into(),
            default_gateway: a.first.then_some(ipam.gateway),
        };
        let undo = |tap: &Tap| {
            // Clearing persist makes the device vanish when the descriptor closes.
            let _ = tap.set_persist(false);
        };
        if let Err(e) = netconf::configure(&netns, &ifconfig).await {
            undo(&tap);
            return Err(e.into());
        }
        let tap = tap.into_async().map_err(PlugError::Tap)?;
        let policy = PortPolicy::Endpoint {
            mac: netloom_switch::MacAddr(a.endpoint.mac.octets()),
            ipv4: a.endpoint.ip,
        };
        let port = self
            .switch
            .add_port(domain, policy, tap)
            .await
            .map_err(PlugError::Switch)?;
        self.ports.lock().await.insert(a.endpoint.id.clone(), port);
        Ok(())
    }

    /// Takes endpoints off the switch and deletes their interfaces. Keeps going after a failure
    /// and logs each one: an endpoint is gone from the store either way.
    pub async fn unplug(&self, container: &ContainerRecord, endpoints: &[EndpointRecord]) {
        self.unplug_in(container.netns().as_deref(), endpoints)
            .await;
    }

    /// Like [`Planes::unplug`], with the namespace given (or unknown: then only the switch
    /// ports are removed, which deletes the TAPs netloom holds).
    pub async fn unplug_in(&self, netns: Option<&Path>, endpoints: &[EndpointRecord]) {
        for e in endpoints {
            let port = self.ports.lock().await.remove(&e.id);
            match (port, netns) {
                (Some(port), _) => {
                    if let Err(err) = self.switch.remove_port(port, true).await {
                        warn!(endpoint = %e.id.short(), error = %err, "switch port removal failed");
                    }
                }
                (None, Some(netns)) => {
                    if let Err(err) = netconf::delete_link(netns, &e.ifname).await {
                        warn!(endpoint = %e.id.short(), error = %err, "interface removal failed");
                    }
                }
                (None, None) => {}
            }
        }
    }

    /// After a restart: re-opens the persistent TAPs of stored endpoints (their interfaces kept
    /// running in the sandboxes) and puts them back on the switch. Each failure is logged; the
    /// endpoint stays in the store for `detach` to clean up.
    pub async fn restore_ports(&self, state: &Snapshot) {
        let containers = containers_by_id(state);
        for e in state.endpoints.iter() {
            if self.ports.lock().await.contains_key(&e.id) {
                continue;
            }
            let Some(c) = containers.get(&e.container) else {
                continue;
            };
            let Some(domain) = self.domain_of(&e.network).await else {
                continue;
            };
            let Some(netns) = c.netns() else { continue };
            let config = TapConfig::new(e.ifname.clone()).persistent(true);
            let tap =
                tokio::task::spawn_blocking(move || Tap::attach_existing(&netns, &config)).await;
            let tap = match tap {
                Ok(Ok(tap)) => tap,
                Ok(Err(err)) => {
                    warn!(sandbox = %c.name, ifname = %e.ifname, error = %err, "cannot re-open the endpoint's TAP");
                    continue;
                }
                Err(err) => {
                    warn!(error = %err, "TAP re-open task failed");
                    continue;
                }
            };
            let policy = PortPolicy::Endpoint {
                mac: netloom_switch::MacAddr(e.mac.octets()),
                ipv4: e.ip,
            };
            let added = match tap.into_async() {
                Ok(tap) => self
                    .switch
                    .add_port(domain, policy, tap)
                    .await
                    .map_err(|x| x.to_string()),
                Err(err) => Err(err.to_string()),
            };
            match added {
                Ok(port) => {
                    self.ports.lock().await.insert(e.id.clone(), port);
                    debug!(sandbox = %c.name, ifname = %e.ifname, "endpoint restored");
                }
                Err(err) => {
                    warn!(sandbox = %c.name, ifname = %e.ifname, error = %err, "cannot restore the endpoint's port")
                }
            }
        }
    }

    /// The switch-wide counters: frame drops and command refusals by reason (zeros left out).
    pub async fn stats(&self, state: &Snapshot) -> serde_json::Value {
        let c = self.switch.counters();
        let drops: serde_json::Map<String, serde_json::Value> = c
            .drop_snapshot()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.as_str().to_owned(), n.into()))
            .collect();
        let refusals: serde_json::Map<String, serde_json::Value> = c
            .snapshot()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.as_str().to_owned(), n.into()))
            .collect();
        let by_network = self.domains.lock().await.by_network.clone();
        let mut nat = serde_json::Map::new();
        for n in state.networks.iter() {
            let Some(domain) = by_network.get(&n.id) else {
                continue;
            };
            if let Ok(Some(s)) = self.switch.nat_stats(*domain).await {
                nat.insert(
                    n.name.to_string(),
                    serde_json::json!({
                        "TcpFlows": s.tcp_flows,
                        "UdpFlows": s.udp_flows,
                        "IcmpFlows": s.icmp_flows,
                        "Published": s.published,
                        "TcpSpliced": s.tcp_spliced,
                        "TcpSpliceFailures": s.tcp_splice_failures,
                    }),
                );
            }
        }
        let busy_poll = serde_json::json!({
            "WindowMicros": self.switch.busy_poll().map_or(0, |b| b.window().as_micros() as u64),
            "PolledFrames": c.polled(),
        });
        serde_json::json!({ "Drops": drops, "Refusals": refusals, "Nat": nat, "BusyPoll": busy_poll })
    }

    /// Counters of an endpoint's port, for tests and diagnostics.
    pub async fn endpoint_stats(&self, endpoint: &EndpointId) -> Option<netloom_switch::PortStats> {
        let port = *self.ports.lock().await.get(endpoint)?;
        self.switch.port_stats(port).await.ok().flatten()
    }

    /// The switch's domains, for tests and diagnostics.
    pub async fn switch_domains(&self) -> Result<usize, HandleError> {
        Ok(self.switch.domains().await?.len())
    }

    /// The switch domain serving a network, if it has one.
    pub async fn domain(&self, network: &NetworkId) -> Option<DomainId> {
        self.domain_of(network).await
    }

    /// Hands published-port sockets (bound by the daemon) to the data plane, which forwards
    /// what they receive to `target` on the network's domain.
    pub async fn publish(
        &self,
        network: &NetworkRecord,
        target: std::net::SocketAddrV4,
        listeners: Vec<netloom_switch::Listener>,
        netns: Option<netloom_switch::Netns>,
    ) -> Result<netloom_switch::PublishId, crate::daemon::ports::PublishError> {
        use crate::daemon::ports::PublishError;
        let domain = self
            .domain_of(&network.id)
            .await
            .ok_or_else(|| PublishError::NoDomain(network.name.to_string()))?;
        self.switch
            .publish(domain, target, listeners, netns)
            .await
            .map_err(PublishError::Switch)
    }

    /// Stops a publication and closes its sockets.
    pub async fn unpublish(&self, id: netloom_switch::PublishId) -> Result<(), HandleError> {
        self.switch.unpublish(id).await
    }
}

/// The host listener's configuration: every user network, nothing forwarded.
fn host_dns_config(networks: Vec<String>) -> ServerConfig {
    let mut config = ServerConfig::new(networks, Vec::new());
    config.forward = false;
    config
}

/// The network's MTU option, or Docker's 1500.
fn network_mtu(n: &NetworkRecord) -> u16 {
    n.options
        .get(MTU_OPTION)
        .and_then(|m| m.parse().ok())
        .unwrap_or(1500)
}

/// The DNS snapshot of the stored state: every user network with its sandboxes' names and
/// aliases; the default bridge has no name service, as in Docker.
fn dns_records(state: &Snapshot) -> Records {
    let mut b = Records::builder();
    // Runs after every change: an index, not a scan of every container per endpoint (which
    // made each change cost O(containers x endpoints)).
    let containers = containers_by_id(state);
    for n in state
        .networks
        .iter()
        .filter(|n| n.driver == Driver::Bridge && !n.builtin)
    {
        if let Err(e) = b.add_network(n.name.as_str()) {
            warn!(network = %n.name, error = %e, "network left out of DNS");
            continue;
        }
        for e in state.endpoints.iter().filter(|e| e.network == n.id) {
            let Some(c) = containers.get(&e.container) else {
                continue;
            };
            if let Err(err) = b.add_container(n.name.as_str(), c.name.as_str(), e.ip) {
                warn!(container = %c.name, error = %err, "name left out of DNS");
            }
            // SPEC section 4: the name, the aliases, the 12-character short id and the hostname.
            let hostname = c.hostname();
            let extra = e
                .aliases
                .iter()
                .map(String::as_str)
                .chain([c.id.short(), hostname.as_str()]);
            for alias in extra {
                if alias == c.name.as_str() {
                    continue;
                }
                if let Err(err) = b.add_alias(n.name.as_str(), alias, e.ip) {
                    warn!(alias, error = %err, "alias left out of DNS");
                }
            }
        }
    }
    b.build()
}

/// The snapshot's containers by id.
fn containers_by_id(state: &Snapshot) -> HashMap<&ContainerId, &ContainerRecord> {
    state.containers.iter().map(|c| (&c.id, c)).collect()
}

/// Why an endpoint could not be plumbed.
#[derive(Debug, thiserror::Error)]
pub enum PlugError {
    /// The network has no switch domain (a failed reconcile).
    #[error("network {0} has no switch domain; check the daemon log")]
    NoDomain(String),
    /// The TAP could not be made.
    #[error(transparent)]
    Tap(#[from] TapError),
    /// The interface could not be configured.
    #[error(transparent)]
    Netconf(#[from] NetconfError),
    /// The switch refused the port.
    #[error("the switch refused the port: {0}")]
    Switch(#[source] HandleError),
    /// A helper task failed.
    #[error("a helper task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{IpamRecord, ObjectId};

    fn net(name: &str, subnet: &str, builtin: bool) -> NetworkRecord {
        let subnet: netloom_ipam::Subnet = subnet.parse().unwrap();
        NetworkRecord {
            id: ObjectId::random(),
            name: name.parse().unwrap(),
            driver: Driver::Bridge,
            created: chrono::Local::now().fixed_offset(),
            ipam: Some(IpamRecord {
                subnet,
                gateway: subnet.first_host(),
                ip_range: None,
                aux_addresses: BTreeMap::new(),
                user_subnet: false,
                user_gateway: false,
            }),
            internal: false,
            attachable: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            builtin,
        }
    }

    fn snap(networks: &[NetworkRecord]) -> Snapshot {
        Snapshot {
            networks: Arc::new(networks.to_vec()),
            ..Snapshot::default()
        }
    }

    #[tokio::test]
    async fn reconcile_follows_the_store() {
        let mut tasks = tokio::task::JoinSet::new();
        let cancel = tokio_util::sync::CancellationToken::new();
        let switch =
            netloom_switch::spawn(&mut tasks, netloom_switch::Switch::new(), cancel.clone());
        let planes = Planes::new(switch, Arc::new(RecordStore::default()));
        let bridge = net("bridge", "172.17.0.0/16", true);
        let a = net("a", "172.18.0.0/16", false);
        let b = net("b", "172.19.0.0/16", false);
        planes
            .reconcile(&snap(&[bridge.clone(), a.clone(), b.clone()]))
            .await
            .unwrap();
        assert_eq!(planes.switch_domains().await.unwrap(), 3);
        assert!(planes.dns().load().network("a").is_some());
        assert!(
            planes.dns().load().network("bridge").is_none(),
            "no names on the default bridge"
        );
        // Idempotent, then follows a removal.
        planes
            .reconcile(&snap(&[bridge.clone(), a.clone(), b]))
            .await
            .unwrap();
        assert_eq!(planes.switch_domains().await.unwrap(), 3);
        planes.reconcile(&snap(&[bridge, a])).await.unwrap();
        assert_eq!(planes.switch_domains().await.unwrap(), 2);
        assert!(planes.dns().load().network("b").is_none());
        cancel.cancel();
        while tasks.join_next().await.is_some() {}
    }
}
