//! [`AddressPool`]: which addresses of one network are in use, and the next one to hand out.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::bitmap::SparseBitmap;
use crate::plan::NetworkPlan;
use crate::subnet::Subnet;

/// Why an address could not be allocated or released. The first three texts are Docker's
/// (`libnetwork/ipamapi/contract.go`), which the daemon shows to users unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// Every address that may be handed out is taken.
    #[error("no available addresses on this pool")]
    NoAvailable,
    /// The requested address is taken, or is the network, broadcast, gateway or an auxiliary
    /// address.
    #[error("Address already in use")]
    AlreadyInUse {
        /// The requested address.
        address: Ipv4Addr,
    },
    /// The address is not in the network's subnet.
    #[error("requested address is out of range")]
    OutOfRange {
        /// The requested address.
        address: Ipv4Addr,
    },
    /// Release of the network, broadcast, gateway or an auxiliary address: those belong to the
    /// network for its whole life, and releasing one would let it be handed to a container.
    #[error("address {address} is reserved by the network and cannot be released")]
    Reserved {
        /// The address whose release was refused.
        address: Ipv4Addr,
    },
}

/// The address bookkeeping of one network.
///
/// Containers get the lowest free address (inside the `--ip-range` when there is one); a
/// released address is free again at once, so the next allocation returns it if it is the
/// lowest. The network and broadcast addresses (up to /30, RFC 3021), the gateway and the
/// auxiliary addresses are reserved and never handed out.
///
/// The state is not persisted: after a restart the daemon rebuilds it from the plan and
/// [`mark_allocated`](Self::mark_allocated) for each stored endpoint. Memory follows the
/// number of addresses in use, not the subnet size (a sparse chunked bitmap, see
/// `bitmap.rs`), so a /8 costs nothing until used; allocation skips full 64-address words
/// and full 4096-address chunks, so it stays fast in a nearly full /16.
#[derive(Clone, Debug)]
pub struct AddressPool {
    subnet: Subnet,
    ip_range: Option<Subnet>,
    /// Offsets `[lo, hi)` that dynamic allocation draws from.
    dynamic: (u64, u64),
    reserved: BTreeSet<u32>,
    used: SparseBitmap,
    allocated: u64,
}

impl AddressPool {
    /// The pool of a planned network, with its gateway and auxiliary addresses reserved.
    ///
    /// A plan from [`plan_network`](crate::plan_network) is consistent; for one built or
    /// deserialised by hand, reserved addresses outside the subnet are ignored (they could
    /// never be handed out anyway) and an ip-range is cut down to the subnet.
    pub fn new(plan: &NetworkPlan) -> Self {
        let mut pool = Self::empty(plan.subnet, plan.ip_range);
        let reserved = std::iter::once(plan.gateway).chain(plan.aux_addresses.values().copied());
        for address in reserved {
            // Only duplicates or out-of-subnet addresses fail; see the doc comment.
            let _ = pool.reserve(address);
        }
        pool
    }

    /// A pool with only the network and broadcast addresses reserved.
    pub(crate) fn empty(subnet: Subnet, ip_range: Option<Subnet>) -> Self {
        let dynamic = match ip_range {
            None => (0, subnet.size()),
            Some(range) if range.contains_subnet(&subnet) => (0, subnet.size()),
            Some(range) if subnet.contains_subnet(&range) => {
                let lo = u64::from(u32::from(range.network()) - u32::from(subnet.network()));
                (lo, lo + range.size())
            }
            Some(_) => (0, 0),
        };
        let mut pool = Self {
            subnet,
            ip_range,
            dynamic,
            reserved: BTreeSet::new(),
            used: SparseBitmap::default(),
            allocated: 0,
        };
        if subnet.reserves_network_and_broadcast() {
            let _ = pool.reserve(subnet.network());
            let _ = pool.reserve(subnet.broadcast());
        }
        pool
    }

    /// Marks `address` as belonging to the network itself (gateway, auxiliary address).
    pub(crate) fn reserve(&mut self, address: Ipv4Addr) -> Result<(), AllocError> {
        let offset = self.take(address)?;
        self.reserved.insert(offset);
        Ok(())
    }

    /// The address [`allocate(None)`](Self::allocate) would return.
    pub(crate) fn lowest_free(&self) -> Option<Ipv4Addr> {
        let (lo, hi) = self.dynamic;
        self.used
            .first_clear(lo, hi)
            .map(|offset| self.subnet.addr_at(offset))
    }

    /// The network's subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// The `--ip-range` dynamic allocation is confined to, if any.
    pub fn ip_range(&self) -> Option<Subnet> {
        self.ip_range
    }

    /// Hands out an address: the lowest free one (in the ip-range if set) for `None`, or the
    /// requested one (`--ip`). As in Docker, a requested address only has to be in the subnet,
    /// not in the ip-range.
    pub fn allocate(&mut self, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr, AllocError> {
        let address = match requested {
            Some(address) => address,
            None => self.lowest_free().ok_or(AllocError::NoAvailable)?,
        };
        self.take(address)?;
        self.allocated += 1;
        Ok(address)
    }

    /// Records an address handed out before a restart (from the daemon's endpoint store);
    /// fails exactly when `allocate(Some(address))` would, which for stored state means the
    /// store is inconsistent.
    pub fn mark_allocated(&mut self, address: Ipv4Addr) -> Result<(), AllocError> {
        self.allocate(Some(address)).map(drop)
    }

    /// Returns an address to the pool, free for the very next allocation. Releasing a free
    /// address is not an error (as in Docker; teardown may run twice) and returns `false`.
    pub fn release(&mut self, address: Ipv4Addr) -> Result<bool, AllocError> {
        let offset = self
            .subnet
            .offset_of(address)
            .ok_or(AllocError::OutOfRange { address })?;
        if self.reserved.contains(&offset) {
            return Err(AllocError::Reserved { address });
        }
        let was_allocated = self.used.remove(offset);
        if was_allocated {
            self.allocated -= 1;
        }
        Ok(was_allocated)
    }

    /// Whether `address` is currently handed out to an endpoint (reserved addresses are not).
    pub fn is_allocated(&self, address: Ipv4Addr) -> bool {
        self.subnet
            .offset_of(address)
            .is_some_and(|offset| self.used.contains(offset) && !self.reserved.contains(&offset))
    }

    /// Whether `address` is the network, broadcast, gateway or an auxiliary address.
    pub fn is_reserved(&self, address: Ipv4Addr) -> bool {
        self.subnet
            .offset_of(address)
            .is_some_and(|offset| self.reserved.contains(&offset))
    }

    /// How many addresses are handed out to endpoints (reserved addresses not counted).
    pub fn allocated_count(&self) -> u64 {
        self.allocated
    }

    fn take(&mut self, address: Ipv4Addr) -> Result<u32, AllocError> {
        let offset = self
            .subnet
            .offset_of(address)
            .ok_or(AllocError::OutOfRange { address })?;
        if !self.used.insert(offset) {
            return Err(AllocError::AlreadyInUse { address });
        }
        Ok(offset)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use rstest::rstest;

    use super::*;
    use crate::{HostFacts, NetworkRequest, plan_network};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn pool(subnet: &str, ip_range: Option<&str>, gateway: &str, aux: &[&str]) -> AddressPool {
        AddressPool::new(&NetworkPlan {
            subnet: subnet.parse().unwrap(),
            gateway: ip(gateway),
            ip_range: ip_range.map(|r| r.parse().unwrap()),
            aux_addresses: aux
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("aux{i}"), ip(a)))
                .collect(),
        })
    }

    #[rstest]
    #[case(AllocError::NoAvailable, "no available addresses on this pool")]
    #[case(AllocError::AlreadyInUse { address: Ipv4Addr::LOCALHOST }, "Address already in use")]
    #[case(
        AllocError::OutOfRange { address: Ipv4Addr::LOCALHOST },
        "requested address is out of range"
    )]
    #[case(
        AllocError::Reserved { address: Ipv4Addr::LOCALHOST },
        "address 127.0.0.1 is reserved by the network and cannot be released"
    )]
    fn error_texts(#[case] err: AllocError, #[case] text: &str) {
        assert_eq!(err.to_string(), text);
    }

    #[test]
    fn hands_out_lowest_free_then_runs_out() {
        let mut p = pool("10.0.0.0/29", None, "10.0.0.1", &[]);
        let got: Vec<Ipv4Addr> = (0..5).map(|_| p.allocate(None).unwrap()).collect();
        let want: Vec<Ipv4Addr> = (2..=6).map(|d| Ipv4Addr::new(10, 0, 0, d)).collect();
        assert_eq!(got, want);
        assert_eq!(p.allocate(None), Err(AllocError::NoAvailable));
        assert_eq!(p.allocated_count(), 5);
    }

    #[test]
    fn released_address_comes_back_first() {
        let mut p = pool("172.18.0.0/16", None, "172.18.0.1", &[]);
        for _ in 0..4 {
            p.allocate(None).unwrap();
        }
        assert_eq!(p.release(ip("172.18.0.3")), Ok(true));
        assert_eq!(p.release(ip("172.18.0.3")), Ok(false));
        assert!(!p.is_allocated(ip("172.18.0.3")));
        assert_eq!(p.allocate(None), Ok(ip("172.18.0.3")));
        assert_eq!(p.allocate(None), Ok(ip("172.18.0.6")));
    }

    #[rstest]
    #[case("10.0.0.5", Ok(()))]
    #[case("10.0.0.200", Ok(()))] // outside the ip-range but inside the subnet: allowed
    #[case("10.0.0.0", Err("Address already in use"))]
    #[case("10.0.0.255", Err("Address already in use"))]
    #[case("10.0.0.1", Err("Address already in use"))]
    #[case("10.0.0.9", Err("Address already in use"))]
    #[case("10.0.1.1", Err("requested address is out of range"))]
    fn specific_address(#[case] requested: &str, #[case] expected: Result<(), &str>) {
        let mut p = pool(
            "10.0.0.0/24",
            Some("10.0.0.0/25"),
            "10.0.0.1",
            &["10.0.0.9"],
        );
        let got = p.allocate(Some(ip(requested)));
        match expected {
            Ok(()) => assert_eq!(got, Ok(ip(requested))),
            Err(text) => assert_eq!(got.unwrap_err().to_string(), text),
        }
    }

    #[test]
    fn specific_address_taken_twice() {
        let mut p = pool("10.0.0.0/24", None, "10.0.0.1", &[]);
        assert_eq!(p.allocate(Some(ip("10.0.0.7"))), Ok(ip("10.0.0.7")));
        assert_eq!(
            p.allocate(Some(ip("10.0.0.7"))),
            Err(AllocError::AlreadyInUse {
                address: ip("10.0.0.7")
            })
        );
    }

    #[test]
    fn ip_range_confines_dynamic_allocation() {
        let mut p = pool(
            "10.0.0.0/24",
            Some("10.0.0.128/30"),
            "10.0.0.1",
            &["10.0.0.129"],
        );
        assert_eq!(p.allocate(None), Ok(ip("10.0.0.128")));
        assert_eq!(p.allocate(None), Ok(ip("10.0.0.130")));
        assert_eq!(p.allocate(None), Ok(ip("10.0.0.131")));
        assert_eq!(p.allocate(None), Err(AllocError::NoAvailable));
        assert_eq!(p.ip_range(), Some("10.0.0.128/30".parse().unwrap()));
    }

    #[test]
    fn release_refuses_reserved_and_foreign_addresses() {
        let mut p = pool("10.0.0.0/24", None, "10.0.0.1", &["10.0.0.9"]);
        for reserved in ["10.0.0.0", "10.0.0.1", "10.0.0.9", "10.0.0.255"] {
            assert!(p.is_reserved(ip(reserved)));
            assert!(!p.is_allocated(ip(reserved)));
            assert_eq!(
                p.release(ip(reserved)),
                Err(AllocError::Reserved {
                    address: ip(reserved)
                })
            );
        }
        assert_eq!(
            p.release(ip("10.0.1.1")),
            Err(AllocError::OutOfRange {
                address: ip("10.0.1.1")
            })
        );
        assert_eq!(p.release(ip("10.0.0.50")), Ok(false));
    }

    #[test]
    fn rebuilds_after_restart() {
        let mut p = pool("10.0.0.0/24", None, "10.0.0.1", &[]);
        p.mark_allocated(ip("10.0.0.2")).unwrap();
        p.mark_allocated(ip("10.0.0.4")).unwrap();
        assert_eq!(
            p.mark_allocated(ip("10.0.0.4")),
            Err(AllocError::AlreadyInUse {
                address: ip("10.0.0.4")
            })
        );
        assert!(p.is_allocated(ip("10.0.0.4")));
        assert_eq!(p.allocated_count(), 2);
        assert_eq!(p.allocate(None), Ok(ip("10.0.0.3")));
        assert_eq!(p.allocate(None), Ok(ip("10.0.0.5")));
    }

    #[test]
    fn point_to_point_and_host_subnets() {
        // RFC 3021: a /31 has no network or broadcast address.
        let mut p = pool("10.0.0.0/31", None, "10.0.0.0", &[]);
        assert_eq!(p.allocate(None), Ok(ip("10.0.0.1")));
        assert_eq!(p.allocate(None), Err(AllocError::NoAvailable));
        let mut p = pool("10.0.0.7/32", None, "10.0.0.7", &[]);
        assert_eq!(p.allocate(None), Err(AllocError::NoAvailable));
    }

    #[test]
    fn hand_made_plans_are_tolerated() {
        // Gateway outside the subnet, duplicate aux, ip-range outside the subnet.
        let mut p = pool(
            "10.0.0.0/24",
            Some("10.9.0.0/24"),
            "10.1.0.1",
            &["10.0.0.3", "10.0.0.3"],
        );
        assert_eq!(p.allocate(None), Err(AllocError::NoAvailable));
        assert_eq!(p.allocate(Some(ip("10.0.0.1"))), Ok(ip("10.0.0.1")));
        // An ip-range larger than the subnet is the subnet.
        let mut p = pool("10.0.0.0/24", Some("10.0.0.0/16"), "10.0.0.1", &[]);
        assert_eq!(p.allocate(None), Ok(ip("10.0.0.2")));
    }

    #[test]
    fn a_slash_eight_is_cheap_and_works_at_both_ends() {
        let mut p = pool("10.0.0.0/8", None, "10.0.0.1", &[]);
        for _ in 0..10_000 {
            p.allocate(None).unwrap();
        }
        assert_eq!(p.allocate(None), Ok(ip("10.0.39.18")));
        assert_eq!(
            p.allocate(Some(ip("10.255.255.254"))),
            Ok(ip("10.255.255.254"))
        );
        assert_eq!(
            p.allocate(Some(ip("10.255.255.255"))),
            Err(AllocError::AlreadyInUse {
                address: ip("10.255.255.255")
            })
        );
        assert_eq!(p.allocated_count(), 10_002);
    }

    #[test]
    fn nearly_full_slash_sixteen() {
        let mut p = pool("172.20.0.0/16", None, "172.20.0.1", &[]);
        for _ in 0..65_000 {
            p.allocate(None).unwrap();
        }
        let next = p.allocate(None).unwrap();
        assert_eq!(next, Ipv4Addr::from(u32::from(ip("172.20.0.0")) + 65_002));
        assert_eq!(p.release(ip("172.20.100.100")), Ok(true));
        assert_eq!(p.allocate(None), Ok(ip("172.20.100.100")));
        for _ in 65_001..65_533 {
            p.allocate(None).unwrap();
        }
        assert_eq!(p.allocated_count(), 65_533);
        assert_eq!(p.allocate(None), Err(AllocError::NoAvailable));
    }

    /// A planned network from random but mostly valid options.
    fn planned() -> impl Strategy<Value = NetworkPlan> {
        let subnet = (any::<u16>(), 18u8..=32).prop_map(|(hi, len)| {
            let [a, b] = hi.to_be_bytes();
            Subnet::containing(Ipv4Addr::new(10, a, b, 0), len)
        });
        subnet
            .prop_flat_map(|subnet| {
                let size = subnet.size() as u32;
                let near = size.min(64);
                (
                    Just(subnet),
                    proptest::option::of((0u8..=6, 0..size)),
                    proptest::option::of(0..near),
                    proptest::collection::vec(0..near, 0..4),
                )
            })
            .prop_filter_map("options rejected", |(subnet, range, gateway, aux)| {
                let at = |offset: u32| subnet.addr_at(offset).to_string();
                let req = NetworkRequest {
                    subnet: Some(subnet.to_string()),
                    ip_range: range.map(|(extra, offset)| {
                        let len = (subnet.prefix_len() + extra).min(32);
                        Subnet::containing(subnet.addr_at(offset), len).to_string()
                    }),
                    gateway: gateway.map(at),
                    aux_addresses: aux
                        .into_iter()
                        .enumerate()
                        .map(|(i, offset)| (format!("aux{i}"), at(offset)))
                        .collect(),
                };
                plan_network(&req, &[], &HostFacts::default()).ok()
            })
    }

    #[derive(Clone, Debug)]
    enum Op {
        Any,
        Specific(u32),
        Release(u32),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        // Offsets are relative to the network address; some fall outside small subnets, and
        // u32::MAX wraps to just below the network (also outside).
        let offset = prop_oneof![8 => 0u32..200, 1 => Just(u32::MAX)];
        let op = prop_oneof![
            4 => Just(Op::Any),
            2 => offset.clone().prop_map(Op::Specific),
            3 => offset.prop_map(Op::Release),
        ];
        proptest::collection::vec(op, 0..200)
    }

    fn reserved_of(plan: &NetworkPlan) -> BTreeMap<Ipv4Addr, ()> {
        let mut reserved: BTreeMap<Ipv4Addr, ()> = BTreeMap::new();
        if plan.subnet.reserves_network_and_broadcast() {
            reserved.insert(plan.subnet.network(), ());
            reserved.insert(plan.subnet.broadcast(), ());
        }
        reserved.insert(plan.gateway, ());
        for aux in plan.aux_addresses.values() {
            reserved.insert(*aux, ());
        }
        reserved
    }

    proptest! {
        #[test]
        fn allocation_matches_a_lowest_free_model(plan in planned(), ops in ops()) {
            let mut pool = AddressPool::new(&plan);
            let reserved = reserved_of(&plan);
            let range = plan.ip_range.unwrap_or(plan.subnet);
            let mut handed_out = std::collections::BTreeSet::new();
            let addr = |offset: u32| Ipv4Addr::from(u32::from(plan.subnet.network()).wrapping_add(offset));

            for op in ops {
                match op {
                    Op::Any => {
                        // (c) lowest free first, including just-released addresses.
                        let lowest = (u32::from(range.network())..=u32::from(range.broadcast()))
                            .map(Ipv4Addr::from)
                            .find(|a| !handed_out.contains(a) && !reserved.contains_key(a));
                        let got = pool.allocate(None);
                        prop_assert_eq!(got.clone(), lowest.ok_or(AllocError::NoAvailable));
                        if let Ok(a) = got {
                            // (a) never twice, (b) never reserved.
                            prop_assert!(handed_out.insert(a));
                            prop_assert!(!reserved.contains_key(&a));
                        }
                    }
                    Op::Specific(offset) => {
                        let a = addr(offset);
                        let expected = if !plan.subnet.contains(a) {
                            Err(AllocError::OutOfRange { address: a })
                        } else if handed_out.contains(&a) || reserved.contains_key(&a) {
                            Err(AllocError::AlreadyInUse { address: a })
                        } else {
                            Ok(a)
                        };
                        prop_assert_eq!(pool.allocate(Some(a)), expected.clone());
                        if expected.is_ok() {
                            handed_out.insert(a);
                        }
                    }
                    Op::Release(offset) => {
                        let a = addr(offset);
                        let expected = if !plan.subnet.contains(a) {
                            Err(AllocError::OutOfRange { address: a })
                        } else if reserved.contains_key(&a) {
                            Err(AllocError::Reserved { address: a })
                        } else {
                            Ok(handed_out.remove(&a))
                        };
                        prop_assert_eq!(pool.release(a), expected);
                    }
                }
                prop_assert_eq!(pool.allocated_count(), handed_out.len() as u64);
            }
            for a in &handed_out {
                prop_assert!(pool.is_allocated(*a));
            }
            for a in reserved.keys() {
                prop_assert!(pool.is_reserved(*a) && !pool.is_allocated(*a));
            }
        }

        #[test]
        fn released_addresses_come_back_lowest_first(
            taken in 1usize..300,
            released in proptest::collection::btree_set(0usize..300, 1..20),
        ) {
            let mut pool = pool("172.18.0.0/16", None, "172.18.0.1", &[]);
            let got: Vec<Ipv4Addr> = (0..taken).map(|_| pool.allocate(None).unwrap()).collect();
            let released: Vec<Ipv4Addr> =
                released.into_iter().filter(|&i| i < taken).map(|i| got[i]).collect();
            for a in &released {
                prop_assert_eq!(pool.release(*a), Ok(true));
            }
            // Every released address comes back, in increasing order, before any new one.
            for a in &released {
                prop_assert_eq!(pool.allocate(None), Ok(*a));
            }
            let next = Ipv4Addr::from(u32::from(got[taken - 1]) + 1);
            prop_assert_eq!(pool.allocate(None), Ok(next));
        }
    }
}
