//! Docker's default address pools and the automatic choice of a network's subnet.

use std::net::Ipv4Addr;

use crate::host::HostFacts;
use crate::subnet::Subnet;

/// Docker's local-scope default pools (`libnetwork/ipamutils/utils.go`): each base network is
/// split into subnets of the given length, tried in this order.
const DEFAULT_POOLS: [(Ipv4Addr, u8, u8); 7] = [
    (Ipv4Addr::new(172, 17, 0, 0), 16, 16),
    (Ipv4Addr::new(172, 18, 0, 0), 16, 16),
    (Ipv4Addr::new(172, 19, 0, 0), 16, 16),
    (Ipv4Addr::new(172, 20, 0, 0), 14, 16),
    (Ipv4Addr::new(172, 24, 0, 0), 14, 16),
    (Ipv4Addr::new(172, 28, 0, 0), 14, 16),
    (Ipv4Addr::new(192, 168, 0, 0), 16, 20),
];

/// Why no subnet could be chosen automatically; the text is Docker's
/// (`libnetwork/ipamapi/contract.go`, `ErrNoMoreSubnets`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChooseSubnetError {
    /// Every default pool overlaps an existing network, a nameserver or an on-link route.
    #[error("all predefined address pools have been fully subnetted")]
    Exhausted,
}

/// Every candidate subnet for a new network, in the order Docker tries them: 172.17.0.0/16 to
/// 172.31.0.0/16, then 192.168.0.0/20 to 192.168.240.0/20 (31 in all).
pub fn default_pools() -> impl Iterator<Item = Subnet> + Clone {
    DEFAULT_POOLS.into_iter().flat_map(|(base, base_len, len)| {
        let step = 1u32 << (32 - u32::from(len));
        (0..1u32 << (len - base_len))
            .map(move |i| Subnet::containing(Ipv4Addr::from(u32::from(base) + i * step), len))
    })
}

/// Picks the subnet for a network created without `--subnet`: the first default pool that
/// overlaps no existing network and contains no host nameserver and overlaps no on-link host
/// route (so the bridge cannot shadow the host's DNS server or LAN).
///
/// A pool freed by a removed network is simply absent from `existing`, so it is reused.
/// The result is the same first fit as Docker's `allocatePredefinedPool`, which computes it
/// with a merge over sorted allocations; with at most 31 candidates a plain scan is simpler.
pub fn choose_subnet(existing: &[Subnet], host: &HostFacts) -> Result<Subnet, ChooseSubnetError> {
    default_pools()
        .find(|candidate| {
            !existing.iter().any(|s| s.overlaps(candidate))
                && !host.nameservers.iter().any(|&ns| candidate.contains(ns))
                && !host.on_link_routes.iter().any(|r| r.overlaps(candidate))
        })
        .ok_or(ChooseSubnetError::Exhausted)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn nets(list: &[&str]) -> Vec<Subnet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn all_default() -> Vec<Subnet> {
        default_pools().collect()
    }

    #[test]
    fn default_pools_in_docker_order() {
        let pools: Vec<String> = default_pools().map(|s| s.to_string()).collect();
        let mut expected: Vec<String> = (17..=31).map(|b| format!("172.{b}.0.0/16")).collect();
        expected.extend((0..16).map(|i| format!("192.168.{}.0/20", i * 16)));
        assert_eq!(pools, expected);
    }

    #[rstest]
    #[case(&[], "172.17.0.0/16")]
    #[case(&["172.17.0.0/16"], "172.18.0.0/16")]
    #[case(&["172.17.0.0/16", "172.18.0.0/16"], "172.19.0.0/16")]
    #[case(&["172.18.0.0/16", "172.17.0.0/16", "172.19.0.0/16"], "172.20.0.0/16")]
    // A freed pool is reused: 172.18 is free again.
    #[case(&["172.17.0.0/16", "172.19.0.0/16", "172.20.0.0/16"], "172.18.0.0/16")]
    // A user network inside a pool blocks the whole pool.
    #[case(&["172.17.0.0/16", "172.18.5.0/24"], "172.19.0.0/16")]
    // A user network covering several pools blocks them all.
    #[case(&["172.16.0.0/12"], "192.168.0.0/20")]
    #[case(&["172.20.0.0/15"], "172.17.0.0/16")]
    #[case(&["172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16", "172.20.0.0/15"], "172.22.0.0/16")]
    #[case(&["172.16.0.0/12", "192.168.0.0/20"], "192.168.16.0/20")]
    #[case(&["172.16.0.0/12", "192.168.0.0/19"], "192.168.32.0/20")]
    #[case(&["10.0.0.0/8"], "172.17.0.0/16")]
    fn first_free_pool(#[case] existing: &[&str], #[case] expected: &str) {
        let chosen = choose_subnet(&nets(existing), &HostFacts::default()).unwrap();
        assert_eq!(chosen.to_string(), expected);
    }

    #[test]
    fn fills_every_pool_in_order_then_is_exhausted() {
        let mut existing = Vec::new();
        for expected in all_default() {
            let chosen = choose_subnet(&existing, &HostFacts::default()).unwrap();
            assert_eq!(chosen, expected);
            existing.push(chosen);
        }
        let err = choose_subnet(&existing, &HostFacts::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "all predefined address pools have been fully subnetted"
        );
    }

    #[rstest]
    #[case(&["172.17.0.1"], &[], "172.18.0.0/16")]
    #[case(&["172.17.255.255", "172.18.0.53"], &[], "172.19.0.0/16")]
    #[case(&["8.8.8.8"], &[], "172.17.0.0/16")]
    #[case(&[], &["172.17.0.0/16"], "172.18.0.0/16")]
    #[case(&[], &["172.17.3.0/24", "172.18.0.7/32"], "172.19.0.0/16")]
    #[case(&[], &["172.16.0.0/12", "192.168.0.0/24"], "192.168.16.0/20")]
    #[case(&["192.168.16.1"], &["172.16.0.0/12", "192.168.0.0/24"], "192.168.32.0/20")]
    fn skips_host_nameservers_and_routes(
        #[case] nameservers: &[&str],
        #[case] routes: &[&str],
        #[case] expected: &str,
    ) {
        let host = HostFacts {
            nameservers: nameservers.iter().map(|s| s.parse().unwrap()).collect(),
            on_link_routes: nets(routes),
        };
        assert_eq!(choose_subnet(&[], &host).unwrap().to_string(), expected);
    }

    #[test]
    fn host_facts_can_exhaust_the_pools() {
        let host = HostFacts {
            nameservers: vec![],
            on_link_routes: nets(&["172.16.0.0/12", "192.168.0.0/16"]),
        };
        assert_eq!(choose_subnet(&[], &host), Err(ChooseSubnetError::Exhausted));
    }
}
