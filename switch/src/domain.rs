//! The identity and configuration of an L2 domain (one per bridge network).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

/// Identifies an L2 domain on the switch.
///
/// A `u64` chosen by the caller rather than Docker's 32-byte network id: the data plane tags every
/// port and table entry with its domain, so the key should be a cheap `Copy` word, and the switch
/// keeps no state across restarts, so the daemon may simply number domains as it rebuilds them
/// from its store and keep the network-id → `DomainId` map on its side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainId(pub u64);

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domain {}", self.0)
    }
}

/// What the switch needs to know about a network to forward within it and answer as its gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DomainConfig {
    /// The network address of the subnet (host bits zero).
    pub subnet: Ipv4Addr,
    /// The subnet's prefix length, 0..=32.
    pub prefix: u8,
    /// The address the switch's gateway answers on; must lie inside the subnet.
    pub gateway: Ipv4Addr,
    /// The largest IP packet the domain carries; oversize frames will be dropped against it.
    pub mtu: u16,
    /// `--internal`: no traffic leaves the domain (no NAT, no published ports).
    pub internal: bool,
    /// Whether the gateway's own address reaches the daemon's loopback (`127.0.0.1`) for TCP and
    /// UDP ports the gateway does not serve itself. Off by default: it exposes every
    /// loopback-only service of the daemon's host to the containers.
    pub host_loopback: bool,
    /// Where DNS queries to the gateway's address (port 53, UDP and TCP) go: the network's
    /// embedded DNS server, listening in the daemon's namespace. `None`: not served.
    pub dns: Option<SocketAddr>,
}

/// The smallest MTU every IPv4 host must accept (RFC 791, section 3.2).
const MIN_MTU: u16 = 68;

/// Why a [`DomainConfig`] is refused. The control plane has validated the plan already, so any of
/// these is a bug upstream; the switch checks anyway because it must not run on a config whose
/// invariants its forwarding code relies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A prefix length above 32.
    #[error("prefix length {0} is longer than 32")]
    PrefixTooLong(u8),
    /// A subnet address with bits set beyond its prefix (e.g. `10.0.0.5/24`).
    #[error("subnet {subnet}/{prefix} has host bits set")]
    HostBitsSet {
        /// The subnet address as given.
        subnet: Ipv4Addr,
        /// Its prefix length.
        prefix: u8,
    },
    /// A gateway outside the subnet: containers could not reach it on-link.
    #[error("gateway {gateway} is outside {subnet}/{prefix}")]
    GatewayOutsideSubnet {
        /// The gateway as given.
        gateway: Ipv4Addr,
        /// The subnet address.
        subnet: Ipv4Addr,
        /// Its prefix length.
        prefix: u8,
    },
    /// An MTU below the IPv4 minimum of 68 (RFC 791).
    #[error("MTU {0} is below the IPv4 minimum of 68")]
    MtuTooSmall(u16),
}

impl DomainConfig {
    /// The netmask of the subnet as a host-order word (the prefix must be at most 32).
    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `ip` lies inside the subnet; the forwarding code uses it to tell on-link
    /// destinations from those that go through the gateway.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.prefix <= 32 && u32::from(ip) & self.mask() == u32::from(self.subnet)
    }

    /// Checks the invariants the switch relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.prefix > 32 {
            return Err(ConfigError::PrefixTooLong(self.prefix));
        }
        if u32::from(self.subnet) & !self.mask() != 0 {
            return Err(ConfigError::HostBitsSet {
                subnet: self.subnet,
                prefix: self.prefix,
            });
        }
        if !self.contains(self.gateway) {
            return Err(ConfigError::GatewayOutsideSubnet {
                gateway: self.gateway,
                subnet: self.subnet,
                prefix: self.prefix,
            });
        }
        if self.mtu < MIN_MTU {
            return Err(ConfigError::MtuTooSmall(self.mtu));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rstest::rstest;

    /// Docker's default `bridge` network.
    pub(crate) fn bridge() -> DomainConfig {
        DomainConfig {
            subnet: Ipv4Addr::new(172, 17, 0, 0),
            prefix: 16,
            gateway: Ipv4Addr::new(172, 17, 0, 1),
            mtu: 1500,
            internal: false,
            host_loopback: false,
            dns: None,
        }
    }

    #[rstest]
    #[case::bridge(bridge(), Ok(()))]
    #[case::whole_space(DomainConfig { subnet: Ipv4Addr::UNSPECIFIED, prefix: 0, ..bridge() }, Ok(()))]
    #[case::host_route(DomainConfig {
        subnet: Ipv4Addr::new(172, 17, 0, 1), prefix: 32, ..bridge() }, Ok(()))]
    #[case::min_mtu(DomainConfig { mtu: 68, ..bridge() }, Ok(()))]
    #[case::prefix_33(DomainConfig { prefix: 33, ..bridge() }, Err(ConfigError::PrefixTooLong(33)))]
    #[case::host_bits(
        DomainConfig { subnet: Ipv4Addr::new(172, 17, 0, 5), ..bridge() },
        Err(ConfigError::HostBitsSet { subnet: Ipv4Addr::new(172, 17, 0, 5), prefix: 16 })
    )]
    #[case::gateway_outside(
        DomainConfig { gateway: Ipv4Addr::new(172, 18, 0, 1), ..bridge() },
        Err(ConfigError::GatewayOutsideSubnet {
            gateway: Ipv4Addr::new(172, 18, 0, 1),
            subnet: Ipv4Addr::new(172, 17, 0, 0),
            prefix: 16,
        })
    )]
    #[case::mtu_67(DomainConfig { mtu: 67, ..bridge() }, Err(ConfigError::MtuTooSmall(67)))]
    fn validate(#[case] config: DomainConfig, #[case] expected: Result<(), ConfigError>) {
        assert_eq!(config.validate(), expected);
    }

    #[rstest]
    #[case::network_address(Ipv4Addr::new(172, 17, 0, 0), true)]
    #[case::last(Ipv4Addr::new(172, 17, 255, 255), true)]
    #[case::below(Ipv4Addr::new(172, 16, 255, 255), false)]
    #[case::above(Ipv4Addr::new(172, 18, 0, 0), false)]
    fn contains(#[case] ip: Ipv4Addr, #[case] expected: bool) {
        assert_eq!(bridge().contains(ip), expected);
    }
}
