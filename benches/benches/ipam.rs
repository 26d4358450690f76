//! IPAM micro-benches: the two operations that sit on a user-visible path and could grow with
//! state — handing out a container address when the network is nearly full, and choosing the
//! subnet of a new network when many networks already exist.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, criterion_group, criterion_main};
use netloom_ipam::{
    AddressPool, HostFacts, NetworkRequest, Subnet, choose_subnet, default_pools, plan_network,
};

/// A /16 with 65 000 of its 65 534 host addresses taken, lowest first, so the free ones are at
/// the top: the worst case for a lowest-free scan.
fn nearly_full_slash_16() -> AddressPool {
    let request = NetworkRequest {
        subnet: Some("172.20.0.0/16".to_owned()),
        ..NetworkRequest::default()
    };
    let plan = plan_network(&request, &[], &HostFacts::default()).expect("valid plan");
    let mut pool = AddressPool::new(&plan);
    for _ in 0..65_000 {
        pool.allocate(None).expect("the /16 has room");
    }
    pool
}

fn allocate_release(c: &mut Criterion) {
    let mut pool = nearly_full_slash_16();
    c.bench_function("ipam/allocate_release_nearly_full_slash16", |b| {
        b.iter(|| {
            let address = pool.allocate(black_box(None)).expect("free address");
            pool.release(black_box(address)).expect("was allocated");
        })
    });
}

fn choose_with_30_networks(c: &mut Criterion) {
    // 30 of the 31 default pools taken: the answer is the very last one.
    let existing: Vec<Subnet> = default_pools().take(30).collect();
    let host = HostFacts {
        nameservers: vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(1, 1, 1, 1)],
        on_link_routes: vec![
            "10.0.0.0/24".parse().expect("valid"),
            "192.168.100.0/24".parse().expect("valid"),
        ],
    };
    c.bench_function("ipam/choose_subnet_30_existing", |b| {
        b.iter(|| choose_subnet(black_box(&existing), black_box(&host)).expect("one pool left"))
    });
}

criterion_group!(benches, allocate_release, choose_with_30_networks);
criterion_main!(benches);
