//! The forwarding state of one L2 domain: its ports with their policies, and its learning table.
//!
//! Policies and table live together because they share invariants: every endpoint's MAC is a
//! static table entry, every endpoint's address is owned by exactly one port, and the gateway
//! owns its MAC and address. Changing one without the other would open a hole, so only
//! [`Bridge::add_port`] and [`Bridge::remove_port`] change either.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use foldhash::fast::RandomState;

use super::table::{MacTable, TableConfig};
use super::{PortId, Timestamp};
use crate::domain::{ConfigError, DomainConfig};
use crate::frame::MacAddr;

/// The domain's userspace gateway as a port: frames to its MAC (and ARP requests for its
/// address) are handed to it; frames from it are trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gateway {
    /// The port the gateway's frames come in on.
    pub port: PortId,
    /// The MAC the gateway answers ARP with.
    pub mac: MacAddr,
}

/// What a port may send. The rules are L2 security Docker's bridge does not have: a container
/// controls every byte it sends, so the switch, not the container, decides who it may claim to
/// be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortPolicy {
    /// A container endpoint with its one MAC and IPv4 address. Strict, because Docker assigns
    /// both statically (there is no DHCP to wait for):
    /// - the Ethernet source must be `mac`;
    /// - an IPv4 source must be `ipv4` (0.0.0.0 too is refused: no DHCP client runs);
    /// - ARP must name `mac` as sender hardware address and `ipv4` as sender protocol address,
    ///   except that a request may use 0.0.0.0, the RFC 5227 address probe, which no receiver
    ///   caches;
    /// - only IPv4 and ARP are allowed: netloom has no IPv6 addresses to bind, and IPv6
    ///   neighbour discovery would be an unpoliced ARP.
    ///
    /// `mac` is a static table entry, so frames reach the container before it has spoken.
    Endpoint {
        /// The endpoint's MAC.
        mac: MacAddr,
        /// The endpoint's IPv4 address.
        ipv4: Ipv4Addr,
    },
    /// A port whose stations the switch learns, as a plain bridge port: a foreign runtime's
    /// namespace or a container running its own bridge or VMs. It may send from any unicast MAC
    /// and any address except those bound to another port or the gateway, and learns up to
    /// [`TableConfig::max_learned_per_port`] MACs. Learning ports are not protected from each
    /// other: a MAC learned on one may move to another, as on the Linux bridge.
    Open,
}

/// A port's policy as the data path sees it: the gateway is a port too, so that one lookup
/// classifies the ingress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PortKind {
    Gateway,
    Endpoint { mac: MacAddr, ipv4: Ipv4Addr },
    Open,
}

/// Why a [`Bridge`] refused a change; the bridge is unchanged when it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// The domain config breaks the switch's invariants.
    #[error("invalid domain config")]
    InvalidConfig(#[source] ConfigError),
    /// A multicast or broadcast MAC given to a port or the gateway: it could never be a source.
    #[error("{mac} is a group address and cannot identify a port")]
    GroupMac {
        /// The MAC given.
        mac: MacAddr,
    },
    /// A port id the bridge already has (the gateway's included).
    #[error("{port} already exists")]
    DuplicatePort {
        /// The id given.
        port: PortId,
    },
    /// A port id the bridge does not have.
    #[error("{port} does not exist")]
    UnknownPort {
        /// The id given.
        port: PortId,
    },
    /// Removing the gateway: it lives as long as its domain.
    #[error("{port} is the gateway")]
    GatewayPort {
        /// The id given.
        port: PortId,
    },
    /// An endpoint MAC already bound to another port or the gateway.
    #[error("{mac} is already bound to {owner}")]
    MacInUse {
        /// The MAC given.
        mac: MacAddr,
        /// The port that has it.
        owner: PortId,
    },
    /// An endpoint address already bound to another port or the gateway.
    #[error("{ip} is already bound to {owner}")]
    IpInUse {
        /// The address given.
        ip: Ipv4Addr,
        /// The port that has it.
        owner: PortId,
    },
    /// An endpoint address outside the domain's subnet: nothing could reach it on-link.
    #[error("{ip} is outside the domain's subnet")]
    IpOutsideSubnet {
        /// The address given.
        ip: Ipv4Addr,
    },
}

/// One L2 domain's ports, policies and learning table; the state [`crate::decide`] reads and
/// learns into. Owned by the task that forwards the domain's frames.
#[derive(Debug)]
pub struct Bridge {
    pub(super) gateway: Gateway,
    pub(super) gateway_ip: Ipv4Addr,
    pub(super) config: DomainConfig,
    pub(super) ports: HashMap<PortId, PortKind, RandomState>,
    /// Which port owns each bound address (endpoints and the gateway).
    pub(super) ip_owners: HashMap<Ipv4Addr, PortId, RandomState>,
    pub(super) table: MacTable,
}

impl Bridge {
    /// A domain with only its gateway, which owns `config.gateway` and `gateway.mac`.
    pub fn new(
        config: &DomainConfig,
        gateway: Gateway,
        table: TableConfig,
    ) -> Result<Bridge, BridgeError> {
        config.validate().map_err(BridgeError::InvalidConfig)?;
        if gateway.mac.is_multicast() {
            return Err(BridgeError::GroupMac { mac: gateway.mac });
        }
        let mut bridge = Bridge {
            gateway,
            gateway_ip: config.gateway,
            config: *config,
            ports: HashMap::default(),
            ip_owners: HashMap::default(),
            table: MacTable::new(table),
        };
        bridge.ports.insert(gateway.port, PortKind::Gateway);
        bridge.ip_owners.insert(config.gateway, gateway.port);
        bridge
            .table
            .add_static(gateway.mac, gateway.port)
            .map_err(|owner| BridgeError::MacInUse {
                mac: gateway.mac,
                owner,
            })?;
        Ok(bridge)
    }

    /// Attaches a port with its policy.
    pub fn add_port(&mut self, port: PortId, policy: PortPolicy) -> Result<(), BridgeError> {
        if self.ports.contains_key(&port) {
            return Err(BridgeError::DuplicatePort { port });
        }
        match policy {
            PortPolicy::Endpoint { mac, ipv4 } => {
                if mac.is_multicast() {
                    return Err(BridgeError::GroupMac { mac });
                }
                if !self.config.contains(ipv4) {
                    return Err(BridgeError::IpOutsideSubnet { ip: ipv4 });
                }
                if let Some(&owner) = self.ip_owners.get(&ipv4) {
                    return Err(BridgeError::IpInUse { ip: ipv4, owner });
                }
                self.table
                    .add_static(mac, port)
                    .map_err(|owner| BridgeError::MacInUse { mac, owner })?;
                self.ip_owners.insert(ipv4, port);
                self.ports.insert(port, PortKind::Endpoint { mac, ipv4 });
            }
            PortPolicy::Open => {
                self.table.add_learning_port(port);
                self.ports.insert(port, PortKind::Open);
            }
        }
        Ok(())
    }

    /// Detaches a port, forgetting its bindings and everything learned on it.
    pub fn remove_port(&mut self, port: PortId) -> Result<PortPolicy, BridgeError> {
        let policy = match self.ports.get(&port) {
            None => return Err(BridgeError::UnknownPort { port }),
            Some(PortKind::Gateway) => return Err(BridgeError::GatewayPort { port }),
            Some(&PortKind::Endpoint { mac, ipv4 }) => {
                self.ip_owners.remove(&ipv4);
                PortPolicy::Endpoint { mac, ipv4 }
            }
            Some(PortKind::Open) => PortPolicy::Open,
        };
        self.ports.remove(&port);
        self.table.remove_port(port);
        Ok(policy)
    }

    /// A port's policy; `None` for the gateway's port and for unknown ports.
    pub fn policy(&self, port: PortId) -> Option<PortPolicy> {
        match self.ports.get(&port)? {
            PortKind::Gateway => None,
            &PortKind::Endpoint { mac, ipv4 } => Some(PortPolicy::Endpoint { mac, ipv4 }),
            PortKind::Open => Some(PortPolicy::Open),
        }
    }

    /// Whether `port` belongs to this domain (the gateway's port included).
    pub fn has_port(&self, port: PortId) -> bool {
        self.ports.contains_key(&port)
    }

    /// Every port of the domain, the gateway's included, in no particular order: the flood set
    /// of a frame is this less its ingress.
    pub fn ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.ports.keys().copied()
    }

    /// The domain's gateway.
    pub fn gateway(&self) -> Gateway {
        self.gateway
    }

    /// The domain's config (subnet, gateway address, MTU).
    pub fn config(&self) -> &DomainConfig {
        &self.config
    }

    /// Where frames to `mac` would go now: its bound port, or where it was learned if that
    /// entry has not aged out.
    pub fn lookup(&self, mac: MacAddr, now: Timestamp) -> Option<PortId> {
        self.table.lookup(mac, now)
    }

    /// Frees learned entries that have aged out; returns how many. Call it every few seconds.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        self.table.expire(now)
    }

    /// How many MACs are learned (aged-out ones not yet expired included).
    pub fn learned_len(&self) -> usize {
        self.table.learned_len()
    }

    /// How many MACs are learned on `port`.
    pub fn learned_on(&self, port: PortId) -> usize {
        self.table.learned_on(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::bridge as bridge_config;
    use crate::testutil::mac;

    const GW: Gateway = Gateway {
        port: PortId(0),
        mac: MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x01]),
    };

    fn endpoint(n: u8) -> PortPolicy {
        PortPolicy::Endpoint {
            mac: MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, n]),
            ipv4: Ipv4Addr::new(172, 17, 0, n),
        }
    }

    fn new_bridge() -> Bridge {
        Bridge::new(&bridge_config(), GW, TableConfig::default()).unwrap()
    }

    #[test]
    fn bindings_are_exclusive() {
        let mut b = new_bridge();
        b.add_port(PortId(2), endpoint(2)).unwrap();
        assert_eq!(
            b.add_port(PortId(2), endpoint(3)),
            Err(BridgeError::DuplicatePort { port: PortId(2) })
        );
        assert_eq!(
            b.add_port(PortId(0), PortPolicy::Open),
            Err(BridgeError::DuplicatePort { port: PortId(0) })
        );
        let same_mac = PortPolicy::Endpoint {
            mac: MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 2]),
            ipv4: Ipv4Addr::new(172, 17, 0, 9),
        };
        assert_eq!(
            b.add_port(PortId(3), same_mac),
            Err(BridgeError::MacInUse {
                mac: MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 2]),
                owner: PortId(2)
            })
        );
        let same_ip = PortPolicy::Endpoint {
            mac: mac(9),
            ipv4: Ipv4Addr::new(172, 17, 0, 2),
        };
        assert_eq!(
            b.add_port(PortId(3), same_ip),
            Err(BridgeError::IpInUse {
                ip: Ipv4Addr::new(172, 17, 0, 2),
                owner: PortId(2)
            })
        );
        // The gateway owns its MAC and address like any endpoint.
        assert_eq!(
            b.add_port(PortId(3), endpoint(1)),
            Err(BridgeError::IpInUse {
                ip: Ipv4Addr::new(172, 17, 0, 1),
                owner: PortId(0)
            })
        );
        let gateway_mac = PortPolicy::Endpoint {
            mac: GW.mac,
            ipv4: Ipv4Addr::new(172, 17, 0, 9),
        };
        assert_eq!(
            b.add_port(PortId(3), gateway_mac),
            Err(BridgeError::MacInUse {
                mac: GW.mac,
                owner: PortId(0)
            })
        );
        let outside = PortPolicy::Endpoint {
            mac: mac(9),
            ipv4: Ipv4Addr::new(10, 0, 0, 2),
        };
        assert_eq!(
            b.add_port(PortId(3), outside),
            Err(BridgeError::IpOutsideSubnet {
                ip: Ipv4Addr::new(10, 0, 0, 2)
            })
        );
        let group = PortPolicy::Endpoint {
            mac: MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
            ipv4: Ipv4Addr::new(172, 17, 0, 9),
        };
        assert!(matches!(
            b.add_port(PortId(3), group),
            Err(BridgeError::GroupMac { .. })
        ));
        // Nothing of the refused attempts stuck.
        assert_eq!(b.ports().count(), 2);
        assert_eq!(b.lookup(mac(9), Timestamp::ZERO), None);
    }

    #[test]
    fn removal_frees_bindings() {
        let mut b = new_bridge();
        b.add_port(PortId(2), endpoint(2)).unwrap();
        assert_eq!(b.remove_port(PortId(2)), Ok(endpoint(2)));
        assert_eq!(
            b.remove_port(PortId(2)),
            Err(BridgeError::UnknownPort { port: PortId(2) })
        );
        assert_eq!(
            b.remove_port(PortId(0)),
            Err(BridgeError::GatewayPort { port: PortId(0) })
        );
        // The MAC and address can be bound again, to another port.
        b.add_port(PortId(3), endpoint(2)).unwrap();
        assert_eq!(b.policy(PortId(3)), Some(endpoint(2)));
        assert_eq!(b.policy(PortId(0)), None);
        assert_eq!(
            b.lookup(MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 2]), Timestamp::ZERO),
            Some(PortId(3))
        );
    }

    #[test]
    fn invalid_domains_are_refused() {
        let bad = DomainConfig {
            mtu: 10,
            ..bridge_config()
        };
        assert_eq!(
            Bridge::new(&bad, GW, TableConfig::default()).unwrap_err(),
            BridgeError::InvalidConfig(ConfigError::MtuTooSmall(10))
        );
        let group_gateway = Gateway {
            mac: MacAddr::BROADCAST,
            ..GW
        };
        assert!(matches!(
            Bridge::new(&bridge_config(), group_gateway, TableConfig::default()),
            Err(BridgeError::GroupMac { .. })
        ));
    }
}
