//! Network planning: from the IPAM options a user typed (`--subnet`, `--ip-range`, `--gateway`,
//! `--aux-address`) to a validated [`NetworkPlan`], failing exactly where and how Docker fails.
//!
//! Docker's order, which the checks here follow:
//! 1. `ValidateIPAM` (`api/types/network/ipam.go`) collects every syntax and containment
//!    problem and reports them together ("invalid network config:\n...").
//! 2. The default IPAM driver's `RequestPool` (`libnetwork/ipams/defaultipam/allocator.go`)
//!    picks or reserves the subnet; a user subnet overlapping another network fails with
//!    "invalid pool request: Pool overlaps with other one on this address space". With an
//!    ip-range this check is skipped (moby#46756), and the overlap is caught later by the bridge
//!    driver instead (step 4).
//! 3. `ipamAllocateVersion` (`libnetwork/network.go`) reserves the gateway, then each auxiliary
//!    address, in the subnet's address pool.
//! 4. The bridge driver's `checkConflict` refuses a subnet overlapping another bridge network.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::address_pool::{AddressPool, AllocError};
use crate::host::HostFacts;
use crate::parse::{Cidr, Parsed, parse_addr, parse_prefix};
use crate::pools::{ChooseSubnetError, choose_subnet};
use crate::subnet::Subnet;

/// The IPAM part of a network-create request, as the user typed it (strings are parsed here so
/// that errors carry Docker's texts). `None` and `Some("")` both mean "not given".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkRequest {
    /// `--subnet`; chosen from the default pools when absent.
    pub subnet: Option<String>,
    /// `--ip-range`: where container addresses are allocated from, inside the subnet.
    pub ip_range: Option<String>,
    /// `--gateway`; the subnet's first host address (`.1`) when absent, ip-range or not. (Docker
    /// 28 takes the lowest free address of the ip-range instead, e.g. `10.1.5.0` for
    /// `--ip-range 10.1.5.0/24`; netloom keeps the `.1` users expect, as SPEC section 2 says.)
    pub gateway: Option<String>,
    /// `--aux-address name=addr`: addresses the network must never hand out. When a name is
    /// repeated the last value wins, as in the Engine API's map.
    pub aux_addresses: Vec<(String, String)>,
}

/// A validated network addressing plan: what the daemon stores, shows in `network inspect`, and
/// builds the network's [`AddressPool`] from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPlan {
    /// The network's subnet.
    pub subnet: Subnet,
    /// The bridge's address, reserved in the pool.
    pub gateway: Ipv4Addr,
    /// Where container addresses are allocated from, if restricted.
    pub ip_range: Option<Subnet>,
    /// Auxiliary addresses by name, reserved in the pool.
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
}

/// Why a network could not be planned. Display texts are what Docker's daemon returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// One or more options are malformed or inconsistent (Docker's `ValidateIPAM`).
    #[error("invalid network config:\n{0}")]
    InvalidConfig(ConfigIssues),
    /// The subnet is an IPv6 prefix; netloom only does IPv4 for now.
    #[error("IPv6 is not supported by netloom yet")]
    Ipv6Unsupported {
        /// The subnet as given.
        subnet: String,
    },
    /// The requested subnet overlaps an existing network's subnet.
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    PoolOverlap {
        /// The requested subnet.
        subnet: Subnet,
        /// The first existing subnet it overlaps.
        existing: Subnet,
    },
    /// The requested subnet, given with an ip-range, overlaps an existing network's subnet.
    /// Docker's IPAM lets this through and its bridge driver refuses it instead, with
    /// "cannot create network {id} ({bridge}): conflicts with network {id} ({bridge}): " in
    /// front of this text; the API layer, which knows ids and bridge names, adds that prefix.
    #[error("networks have overlapping IPv4")]
    OverlapsNetwork {
        /// The requested subnet.
        subnet: Subnet,
        /// The first existing subnet it overlaps.
        existing: Subnet,
    },
    /// The gateway could not be reserved: it is the network or broadcast address, or (auto)
    /// there is no free address in the ip-range.
    #[error("failed to allocate gateway ({gateway}): {source}")]
    Gateway {
        /// The gateway as given, empty when it was to be chosen automatically.
        gateway: String,
        /// The pool's refusal.
        #[source]
        source: AllocError,
    },
    /// An auxiliary address could not be reserved: the gateway, another auxiliary address, or
    /// the network or broadcast address.
    #[error("failed to allocate secondary ip address ({name}:{address}): {source}")]
    AuxAddress {
        /// The auxiliary address's name.
        name: String,
        /// The address as given.
        address: String,
        /// The pool's refusal.
        #[source]
        source: AllocError,
    },
    /// An auxiliary address was given with an empty value (only possible through the API; the
    /// docker CLI refuses it first). Docker appends " passed for network {name}".
    #[error("non parsable secondary ip address ({name}:)")]
    EmptyAuxAddress {
        /// The auxiliary address's name.
        name: String,
    },
    /// No subnet was given and every default pool is taken.
    #[error(transparent)]
    NoSubnet(#[from] ChooseSubnetError),
}

/// The problems found by validation, shown the way Docker's `multierror.Join` shows them: a
/// single problem as is, several as a `* `-bulleted list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssues(pub Vec<ConfigIssue>);

impl fmt::Display for ConfigIssues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.0.as_slice() {
            return f.write_str(only.to_string().trim());
        }
        for (i, issue) in self.0.iter().enumerate() {
            let sep = if i == 0 { "* " } else { "\n* " };
            write!(f, "{sep}{}", issue.to_string().replace('\n', "\n\t"))?;
        }
        Ok(())
    }
}

/// One validation problem, with Docker's text (`api/types/network/ipam.go`). Subnets and
/// ranges in these texts are printed as typed, host bits included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigIssue {
    /// The subnet does not parse as a prefix (this includes a missing subnet).
    #[error("invalid subnet {subnet}: invalid CIDR block notation")]
    SubnetNotCidr {
        /// The subnet as given.
        subnet: String,
    },
    /// The subnet has host bits set.
    #[error("invalid subnet {subnet}: it should be {masked}")]
    SubnetNotMasked {
        /// The subnet as given.
        subnet: String,
        /// The subnet with host bits cleared.
        masked: Subnet,
    },
    /// The ip-range does not parse as a prefix.
    #[error("invalid ip-range {ip_range}: invalid CIDR block notation")]
    IpRangeNotCidr {
        /// The ip-range as given.
        ip_range: String,
    },
    /// The ip-range is IPv6 while the subnet is IPv4.
    #[error("invalid ip-range {ip_range}: parent subnet is an IPv4 block")]
    IpRangeNotIpv4 {
        /// The ip-range as given.
        ip_range: String,
    },
    /// The ip-range has a shorter prefix than the subnet.
    #[error("invalid ip-range {ip_range}: CIDR block is bigger than its parent subnet {subnet}")]
    IpRangeTooBig {
        /// The ip-range as given.
        ip_range: String,
        /// The subnet as given.
        subnet: String,
    },
    /// The ip-range has host bits set.
    #[error("invalid ip-range {ip_range}: it should be {masked}")]
    IpRangeNotMasked {
        /// The ip-range as given.
        ip_range: String,
        /// The ip-range with host bits cleared.
        masked: Subnet,
    },
    /// The ip-range and the subnet share no address.
    #[error("invalid ip-range {ip_range}: parent subnet {subnet} doesn't contain ip-range")]
    IpRangeOutsideSubnet {
        /// The ip-range as given.
        ip_range: String,
        /// The subnet as given.
        subnet: String,
    },
    /// The gateway is not a usable address.
    #[error("invalid gateway {gateway}: {problem}")]
    Gateway {
        /// The gateway as given.
        gateway: String,
        /// What is wrong with it.
        problem: AddressIssue,
    },
    /// An auxiliary address is not a usable address.
    #[error("invalid auxiliary address {name}: {problem}")]
    AuxAddress {
        /// The auxiliary address's name.
        name: String,
        /// What is wrong with it.
        problem: AddressIssue,
    },
}

/// What is wrong with a gateway or auxiliary address (Docker's `validateAddress`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressIssue {
    /// Not an IP address.
    #[error("invalid address")]
    Invalid,
    /// An IPv6 address for an IPv4 subnet.
    #[error("parent subnet is an IPv4 block")]
    NotIpv4,
    /// Outside the subnet.
    #[error("parent subnet {subnet} doesn't contain this address")]
    OutsideSubnet {
        /// The subnet as given.
        subnet: String,
    },
}

/// Validates a network-create request and settles its addressing: the subnet (the first free
/// default pool when none is given, see [`choose_subnet`]), the gateway, the ip-range and the
/// auxiliary addresses.
///
/// `existing` holds the subnets of all other networks. A user-given subnet may overlap host
/// routes or nameservers (Docker allows it); only automatic choice avoids them.
///
/// The default gateway is the lowest free address of the ip-range when one is given, else of
/// the subnet (so `.1`). That is what Docker does: it asks the pool for any address, and the
/// pool hands out from the ip-range, whose first address is free even when it ends in `.0`.
pub fn plan_network(
    req: &NetworkRequest,
    existing: &[Subnet],
    host: &HostFacts,
) -> Result<NetworkPlan, PlanError> {
    let ip_range_arg = non_empty(&req.ip_range);
    let gateway_arg = non_empty(&req.gateway);
    let aux_args: BTreeMap<&str, &str> = req
        .aux_addresses
        .iter()
        .map(|(name, addr)| (name.as_str(), addr.as_str()))
        .collect();

    let subnet_arg = match req.subnet.as_deref() {
        Some(subnet) => subnet,
        None if ip_range_arg.is_none() && gateway_arg.is_none() && aux_args.is_empty() => {
            let subnet = choose_subnet(existing, host)?;
            return Ok(NetworkPlan {
                subnet,
                gateway: subnet.first_host(),
                ip_range: None,
                aux_addresses: BTreeMap::new(),
            });
        }
        // The Engine API carries these in an IPAM config entry whose subnet is then empty,
        // which ValidateIPAM reports as an invalid subnet.
        None => "",
    };

    let cidr = match parse_prefix(subnet_arg) {
        Some(Parsed::V4(cidr)) => cidr,
        Some(Parsed::V6) => {
            return Err(PlanError::Ipv6Unsupported {
                subnet: subnet_arg.to_owned(),
            });
        }
        None => {
            // Docker checks nothing else in a config entry whose subnet does not parse.
            return Err(PlanError::InvalidConfig(ConfigIssues(vec![
                ConfigIssue::SubnetNotCidr {
                    subnet: subnet_arg.to_owned(),
                },
            ])));
        }
    };
    let subnet = cidr.masked();

    let mut issues = Vec::new();
    if !cidr.is_masked() {
        issues.push(ConfigIssue::SubnetNotMasked {
            subnet: cidr.to_string(),
            masked: subnet,
        });
    }
    let ip_range = ip_range_arg.and_then(|arg| validate_ip_range(arg, cidr, &mut issues));
    let gateway = gateway_arg.and_then(|arg| match validate_address(arg, cidr) {
        Ok(ip) => Some(ip),
        Err(problem) => {
            issues.push(ConfigIssue::Gateway {
                gateway: arg.to_owned(),
                problem,
            });
            None
        }
    });
    let mut aux_addresses = BTreeMap::new();
    for (&name, &arg) in &aux_args {
        if arg.is_empty() {
            continue; // ValidateIPAM skips it; reserving it fails below.
        }
        match validate_address(arg, cidr) {
            Ok(ip) => {
                aux_addresses.insert(name.to_owned(), ip);
            }
            Err(problem) => issues.push(ConfigIssue::AuxAddress {
                name: name.to_owned(),
                problem,
            }),
        }
    }
    if !issues.is_empty() {
        return Err(PlanError::InvalidConfig(ConfigIssues(issues)));
    }

    let overlapped = existing.iter().find(|e| e.overlaps(&subnet)).copied();
    if let (Some(existing), None) = (overlapped, ip_range) {
        return Err(PlanError::PoolOverlap { subnet, existing });
    }

    let mut pool = AddressPool::empty(subnet, ip_range);
    let gateway = match gateway {
        Some(ip) => pool.reserve(ip).map(|()| ip),
        None => {
            let ip = subnet.first_host();
            pool.reserve(ip).map(|()| ip)
        }
    }
    .map_err(|source| PlanError::Gateway {
        gateway: gateway_arg.unwrap_or_default().to_owned(),
        source,
    })?;
    for (&name, &arg) in &aux_args {
        let Some(&ip) = aux_addresses.get(name) else {
            return Err(PlanError::EmptyAuxAddress {
                name: name.to_owned(),
            });
        };
        pool.reserve(ip).map_err(|source| PlanError::AuxAddress {
            name: name.to_owned(),
            address: arg.to_owned(),
            source,
        })?;
    }

    if let Some(existing) = overlapped {
        return Err(PlanError::OverlapsNetwork { subnet, existing });
    }

    Ok(NetworkPlan {
        subnet,
        gateway,
        ip_range,
        aux_addresses,
    })
}

fn non_empty(arg: &Option<String>) -> Option<&str> {
    arg.as_deref().filter(|s| !s.is_empty())
}

/// Docker's `validateIPRange`: several problems with one range are all reported.
fn validate_ip_range(arg: &str, subnet: Cidr, issues: &mut Vec<ConfigIssue>) -> Option<Subnet> {
    let range = match parse_prefix(arg) {
        Some(Parsed::V4(range)) => range,
        Some(Parsed::V6) => {
            issues.push(ConfigIssue::IpRangeNotIpv4 {
                ip_range: arg.to_owned(),
            });
            return None;
        }
        None => {
            issues.push(ConfigIssue::IpRangeNotCidr {
                ip_range: arg.to_owned(),
            });
            return None;
        }
    };
    let before = issues.len();
    if range.len < subnet.len {
        issues.push(ConfigIssue::IpRangeTooBig {
            ip_range: arg.to_owned(),
            subnet: subnet.to_string(),
        });
    }
    if !range.is_masked() {
        issues.push(ConfigIssue::IpRangeNotMasked {
            ip_range: range.to_string(),
            masked: range.masked(),
        });
    }
    if !subnet.masked().overlaps(&range.masked()) {
        issues.push(ConfigIssue::IpRangeOutsideSubnet {
            ip_range: arg.to_owned(),
            subnet: subnet.to_string(),
        });
    }
    (issues.len() == before).then(|| range.masked())
}

/// Docker's `validateAddress` for a gateway or auxiliary address.
fn validate_address(arg: &str, subnet: Cidr) -> Result<Ipv4Addr, AddressIssue> {
    match parse_addr(arg) {
        None => Err(AddressIssue::Invalid),
        Some(Parsed::V6) => Err(AddressIssue::NotIpv4),
        Some(Parsed::V4(ip)) if subnet.masked().contains(ip) => Ok(ip),
        Some(Parsed::V4(_)) => Err(AddressIssue::OutsideSubnet {
            subnet: subnet.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn request(
        subnet: Option<&str>,
        ip_range: Option<&str>,
        gateway: Option<&str>,
        aux: &[(&str, &str)],
    ) -> NetworkRequest {
        NetworkRequest {
            subnet: subnet.map(str::to_owned),
            ip_range: ip_range.map(str::to_owned),
            gateway: gateway.map(str::to_owned),
            aux_addresses: aux
                .iter()
                .map(|&(name, addr)| (name.to_owned(), addr.to_owned()))
                .collect(),
        }
    }

    fn plan(req: &NetworkRequest, existing: &[&str]) -> Result<NetworkPlan, PlanError> {
        let existing: Vec<Subnet> = existing.iter().map(|s| net(s)).collect();
        plan_network(req, &existing, &HostFacts::default())
    }

    #[rstest]
    #[case(&[], "172.17.0.0/16", "172.17.0.1")]
    #[case(&["172.17.0.0/16", "172.18.0.0/16"], "172.19.0.0/16", "172.19.0.1")]
    #[case(&["172.16.0.0/12"], "192.168.0.0/20", "192.168.0.1")]
    fn automatic_subnet(#[case] existing: &[&str], #[case] subnet: &str, #[case] gateway: &str) {
        let plan = plan(&NetworkRequest::default(), existing).unwrap();
        assert_eq!(
            plan,
            NetworkPlan {
                subnet: net(subnet),
                gateway: ip(gateway),
                ip_range: None,
                aux_addresses: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn automatic_subnet_avoids_host_facts() {
        let host = HostFacts {
            nameservers: vec![ip("172.17.0.53")],
            on_link_routes: vec![net("172.18.0.0/24")],
        };
        let plan = plan_network(&NetworkRequest::default(), &[], &host).unwrap();
        assert_eq!(plan.subnet, net("172.19.0.0/16"));
    }

    #[test]
    fn automatic_subnet_exhausted() {
        let existing: Vec<Subnet> = crate::default_pools().collect();
        let err =
            plan_network(&NetworkRequest::default(), &existing, &HostFacts::default()).unwrap_err();
        assert_eq!(err, PlanError::NoSubnet(ChooseSubnetError::Exhausted));
        assert_eq!(
            err.to_string(),
            "all predefined address pools have been fully subnetted"
        );
    }

    #[rstest]
    #[case(request(Some("10.1.0.0/16"), None, None, &[]), "10.1.0.1", None)]
    #[case(request(Some("10.1.0.0/16"), Some(""), Some(""), &[]), "10.1.0.1", None)]
    #[case(request(Some("10.1.0.0/16"), None, Some("10.1.255.254"), &[]), "10.1.255.254", None)]
    // The default gateway is the subnet's .1 even with an ip-range (Docker would pick 10.1.5.0).
    #[case(request(Some("10.1.0.0/16"), Some("10.1.5.0/24"), None, &[]), "10.1.0.1", Some("10.1.5.0/24"))]
    #[case(request(Some("10.1.0.0/16"), Some("10.1.0.0/24"), None, &[]), "10.1.0.1", Some("10.1.0.0/24"))]
    #[case(request(Some("10.1.0.0/16"), Some("10.1.0.0/16"), None, &[]), "10.1.0.1", Some("10.1.0.0/16"))]
    #[case(request(Some("10.1.0.0/16"), Some("10.1.5.0/24"), Some("10.1.0.1"), &[]), "10.1.0.1", Some("10.1.5.0/24"))]
    #[case(request(Some("10.9.0.0/31"), None, None, &[]), "10.9.0.0", None)]
    #[case(request(Some("10.9.0.7/32"), None, None, &[]), "10.9.0.7", None)]
    // A user subnet may overlap host routes and nameservers (Docker allows it).
    #[case(request(Some("192.168.2.0/24"), None, None, &[]), "192.168.2.1", None)]
    fn user_subnet(
        #[case] req: NetworkRequest,
        #[case] gateway: &str,
        #[case] ip_range: Option<&str>,
    ) {
        let host = HostFacts {
            nameservers: vec![ip("192.168.2.1")],
            on_link_routes: vec![net("192.168.2.0/24")],
        };
        let plan = plan_network(&req, &[net("172.17.0.0/16")], &host).unwrap();
        assert_eq!(plan.subnet, net(req.subnet.as_deref().unwrap()));
        assert_eq!(plan.gateway, ip(gateway));
        assert_eq!(plan.ip_range, ip_range.map(net));
    }

    #[test]
    fn aux_addresses_are_kept_by_name_last_value_winning() {
        let req = request(
            Some("10.2.0.0/24"),
            None,
            Some("10.2.0.254"),
            &[
                ("router", "10.2.0.1"),
                ("nas", "10.2.0.9"),
                ("router", "10.2.0.2"),
            ],
        );
        let plan = plan(&req, &[]).unwrap();
        let expected: BTreeMap<String, Ipv4Addr> = [
            ("nas".to_owned(), ip("10.2.0.9")),
            ("router".to_owned(), ip("10.2.0.2")),
        ]
        .into();
        assert_eq!(plan.aux_addresses, expected);
    }

    #[rstest]
    #[case::subnet_not_masked(
        request(Some("10.0.0.1/8"), None, None, &[]),
        "invalid network config:\ninvalid subnet 10.0.0.1/8: it should be 10.0.0.0/8"
    )]
    #[case::subnet_garbage(
        request(Some("foo"), None, None, &[]),
        "invalid network config:\ninvalid subnet foo: invalid CIDR block notation"
    )]
    #[case::subnet_without_length(
        request(Some("10.0.0.0"), Some("10.0.0.0/8"), Some("bogus"), &[]),
        "invalid network config:\ninvalid subnet 10.0.0.0: invalid CIDR block notation"
    )]
    #[case::subnet_too_long(
        request(Some("10.0.0.0/33"), None, None, &[]),
        "invalid network config:\ninvalid subnet 10.0.0.0/33: invalid CIDR block notation"
    )]
    #[case::subnet_empty(
        request(Some(""), None, None, &[]),
        "invalid network config:\ninvalid subnet : invalid CIDR block notation"
    )]
    #[case::gateway_without_subnet(
        request(None, None, Some("10.0.0.1"), &[]),
        "invalid network config:\ninvalid subnet : invalid CIDR block notation"
    )]
    #[case::ip_range_without_subnet(
        request(None, Some("10.0.0.0/24"), None, &[]),
        "invalid network config:\ninvalid subnet : invalid CIDR block notation"
    )]
    #[case::aux_without_subnet(
        request(None, None, None, &[("a", "10.0.0.1")]),
        "invalid network config:\ninvalid subnet : invalid CIDR block notation"
    )]
    #[case::ipv6_subnet(
        request(Some("fd00:1::/64"), None, Some("fd00:1::1"), &[]),
        "IPv6 is not supported by netloom yet"
    )]
    #[case::gateway_outside(
        request(Some("10.0.0.0/24"), None, Some("10.0.1.1"), &[]),
        "invalid network config:\ninvalid gateway 10.0.1.1: parent subnet 10.0.0.0/24 doesn't contain this address"
    )]
    #[case::gateway_garbage(
        request(Some("10.0.0.0/24"), None, Some("foo"), &[]),
        "invalid network config:\ninvalid gateway foo: invalid address"
    )]
    #[case::gateway_ipv6(
        request(Some("10.0.0.0/24"), None, Some("fe80::1"), &[]),
        "invalid network config:\ninvalid gateway fe80::1: parent subnet is an IPv4 block"
    )]
    #[case::ip_range_bigger(
        request(Some("10.0.0.0/24"), Some("10.0.0.0/16"), None, &[]),
        "invalid network config:\ninvalid ip-range 10.0.0.0/16: CIDR block is bigger than its parent subnet 10.0.0.0/24"
    )]
    #[case::ip_range_bigger_and_outside(
        request(Some("10.0.0.0/24"), Some("10.1.0.0/16"), None, &[]),
        "invalid network config:\n\
         * invalid ip-range 10.1.0.0/16: CIDR block is bigger than its parent subnet 10.0.0.0/24\n\
         * invalid ip-range 10.1.0.0/16: parent subnet 10.0.0.0/24 doesn't contain ip-range"
    )]
    #[case::ip_range_outside(
        request(Some("10.0.0.0/24"), Some("10.0.1.0/25"), None, &[]),
        "invalid network config:\ninvalid ip-range 10.0.1.0/25: parent subnet 10.0.0.0/24 doesn't contain ip-range"
    )]
    #[case::ip_range_not_masked(
        request(Some("10.0.0.0/24"), Some("10.0.0.5/25"), None, &[]),
        "invalid network config:\ninvalid ip-range 10.0.0.5/25: it should be 10.0.0.0/25"
    )]
    #[case::ip_range_garbage(
        request(Some("10.0.0.0/24"), Some("bogus"), None, &[]),
        "invalid network config:\ninvalid ip-range bogus: invalid CIDR block notation"
    )]
    #[case::ip_range_ipv6(
        request(Some("10.0.0.0/24"), Some("fd00::/64"), None, &[]),
        "invalid network config:\ninvalid ip-range fd00::/64: parent subnet is an IPv4 block"
    )]
    #[case::aux_outside(
        request(Some("10.0.0.0/24"), None, None, &[("host1", "10.0.1.5")]),
        "invalid network config:\ninvalid auxiliary address host1: parent subnet 10.0.0.0/24 doesn't contain this address"
    )]
    #[case::everything_wrong(
        request(Some("10.0.0.1/24"), Some("10.0.1.0/24"), Some("10.0.2.1"), &[("b", "x"), ("a", "::1")]),
        "invalid network config:\n\
         * invalid subnet 10.0.0.1/24: it should be 10.0.0.0/24\n\
         * invalid ip-range 10.0.1.0/24: parent subnet 10.0.0.1/24 doesn't contain ip-range\n\
         * invalid gateway 10.0.2.1: parent subnet 10.0.0.1/24 doesn't contain this address\n\
         * invalid auxiliary address a: parent subnet is an IPv4 block\n\
         * invalid auxiliary address b: invalid address"
    )]
    #[case::pool_overlap_same(
        request(Some("172.17.0.0/16"), None, None, &[]),
        "invalid pool request: Pool overlaps with other one on this address space"
    )]
    #[case::pool_overlap_bigger(
        request(Some("172.16.0.0/12"), None, Some("172.16.0.1"), &[]),
        "invalid pool request: Pool overlaps with other one on this address space"
    )]
    #[case::pool_overlap_inside(
        request(Some("172.17.3.0/24"), None, None, &[]),
        "invalid pool request: Pool overlaps with other one on this address space"
    )]
    #[case::overlap_with_ip_range(
        request(Some("172.17.0.0/16"), Some("172.17.1.0/24"), None, &[]),
        "networks have overlapping IPv4"
    )]
    #[case::gateway_is_network_address(
        request(Some("10.0.0.0/24"), None, Some("10.0.0.0"), &[]),
        "failed to allocate gateway (10.0.0.0): Address already in use"
    )]
    #[case::gateway_is_broadcast_address(
        request(Some("10.0.0.0/24"), None, Some("10.0.0.255"), &[]),
        "failed to allocate gateway (10.0.0.255): Address already in use"
    )]
    #[case::aux_is_default_gateway(
        request(Some("10.0.0.0/24"), None, None, &[("router", "10.0.0.1")]),
        "failed to allocate secondary ip address (router:10.0.0.1): Address already in use"
    )]
    #[case::aux_is_network_address(
        request(Some("10.0.0.0/24"), None, None, &[("zero", "10.0.0.0")]),
        "failed to allocate secondary ip address (zero:10.0.0.0): Address already in use"
    )]
    #[case::aux_twice(
        request(Some("10.0.0.0/24"), None, None, &[("a", "10.0.0.5"), ("b", "10.0.0.5")]),
        "failed to allocate secondary ip address (b:10.0.0.5): Address already in use"
    )]
    #[case::aux_empty(
        request(Some("10.0.0.0/24"), None, None, &[("a", "")]),
        "non parsable secondary ip address (a:)"
    )]
    fn errors_have_docker_texts(#[case] req: NetworkRequest, #[case] text: &str) {
        let err = plan(&req, &["172.17.0.0/16"]).unwrap_err();
        assert_eq!(err.to_string(), text);
    }

    #[test]
    fn errors_carry_structured_details() {
        let req = request(Some("172.17.3.0/24"), None, None, &[]);
        assert_eq!(
            plan(&req, &["10.0.0.0/8", "172.17.0.0/16"]),
            Err(PlanError::PoolOverlap {
                subnet: net("172.17.3.0/24"),
                existing: net("172.17.0.0/16"),
            })
        );
        let req = request(Some("10.0.0.0/24"), None, Some("10.0.0.0"), &[]);
        let err = plan(&req, &[]).unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("Address already in use"));
    }

    #[test]
    fn plan_round_trips_through_its_pool() {
        let req = request(
            Some("10.3.0.0/24"),
            Some("10.3.0.0/28"),
            None,
            &[("a", "10.3.0.2"), ("b", "10.3.0.200")],
        );
        let plan = plan(&req, &[]).unwrap();
        assert_eq!(plan.gateway, ip("10.3.0.1"));
        let mut pool = AddressPool::new(&plan);
        assert_eq!(pool.allocate(None), Ok(ip("10.3.0.3")));
    }
}
