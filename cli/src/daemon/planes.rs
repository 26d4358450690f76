//! Keeps the data plane (switch domains) and the DNS record snapshot in step with the store.
//!
//! The control plane reconciles instead of replaying events: after every change (and at start)
//! it hands the switch the typed commands that make its domains match the stored bridge
//! networks, and swaps in a DNS snapshot built from the store. A reconcile after a crash
//! therefore converges without knowing what happened before.

use std::collections::HashMap;
use std::sync::Arc;

use netloom_dns::{RecordStore, Records};
use netloom_switch::{DomainConfig, DomainId, HandleError, SwitchHandle};
use tokio::sync::Mutex;
use tracing::{debug, warn};

use crate::daemon::engine::MTU_OPTION;
use crate::model::{Driver, NetworkId, NetworkRecord};

/// The data-plane side of the composition root.
#[derive(Debug)]
pub struct Planes {
    switch: SwitchHandle,
    dns: Arc<RecordStore>,
    domains: Mutex<Domains>,
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

fn domain_config(n: &NetworkRecord) -> Option<DomainConfig> {
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
    })
}

impl Planes {
    /// Wraps a running switch and the DNS record store.
    pub fn new(switch: SwitchHandle, dns: Arc<RecordStore>) -> Self {
        Planes {
            switch,
            dns,
            domains: Mutex::new(Domains::default()),
        }
    }

    /// The DNS snapshot store (lookups never lock).
    pub fn dns(&self) -> &Arc<RecordStore> {
        &self.dns
    }

    /// Makes the switch's domains and the DNS snapshot match `networks`. Every difference is
    /// attempted; the first refusal is reported after the rest were applied.
    pub async fn reconcile(&self, networks: &[NetworkRecord]) -> Result<(), PlaneError> {
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
            let Some(config) = domain_config(n) else {
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
                    warn!(network = %n.name, error = %source, "switch domain add failed");
                    first_error.get_or_insert(PlaneError {
                        network: n.name.to_string(),
                        source,
                    });
                }
            }
        }
        drop(domains);
        self.dns.replace(dns_records(networks));
        first_error.map_or(Ok(()), Err)
    }

    /// The switch's domains, for tests and diagnostics.
    pub async fn switch_domains(&self) -> Result<usize, HandleError> {
        Ok(self.switch.domains().await?.len())
    }
}

/// The DNS snapshot of the stored state: every user network is served (containers add names
/// in the data-plane issue); the default bridge has no name service, as in Docker.
fn dns_records(networks: &[NetworkRecord]) -> Records {
    let mut b = Records::builder();
    for n in networks
        .iter()
        .filter(|n| n.driver == Driver::Bridge && !n.builtin)
    {
        if let Err(e) = b.add_network(n.name.as_str()) {
            warn!(network = %n.name, error = %e, "network left out of DNS");
        }
    }
    b.build()
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
            .reconcile(&[bridge.clone(), a.clone(), b.clone()])
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
            .reconcile(&[bridge.clone(), a.clone(), b])
            .await
            .unwrap();
        assert_eq!(planes.switch_domains().await.unwrap(), 3);
        planes.reconcile(&[bridge, a]).await.unwrap();
        assert_eq!(planes.switch_domains().await.unwrap(), 2);
        assert!(planes.dns().load().network("b").is_none());
        cancel.cancel();
        while tasks.join_next().await.is_some() {}
    }
}
