//! [`HostFacts`]: what the host's own networking occupies, so automatic subnet choice avoids it.
//!
//! Docker (`libnetwork/netutils/utils_linux.go`, `InferReservedNetworks`) skips default pools
//! that contain a resolv.conf nameserver or overlap an on-link route, because a bridge there
//! would shadow the host's DNS server or LAN. This crate does no I/O: the daemon reads the files
//! and hands their text to the parsers here.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::subnet::Subnet;

/// Route flags from `<linux/route.h>`.
const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;

/// Host networking facts that automatic subnet choice must steer clear of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// IPv4 nameservers from the host's resolv.conf.
    pub nameservers: Vec<Ipv4Addr>,
    /// Destinations the host reaches directly on a link (no gateway), default route excluded.
    pub on_link_routes: Vec<Subnet>,
}

impl HostFacts {
    /// Builds the facts from the text of the host's resolv.conf and of `/proc/net/route`.
    ///
    /// Which resolv.conf is meant is the caller's business: like Docker, it should be the one
    /// with the real upstream servers (`/run/systemd/resolve/resolv.conf` when
    /// `/etc/resolv.conf` only names systemd-resolved's 127.0.0.53).
    pub fn from_host_files(resolv_conf: &str, proc_net_route: &str) -> Self {
        Self {
            nameservers: Self::parse_resolv_conf(resolv_conf),
            on_link_routes: Self::parse_proc_net_route(proc_net_route),
        }
    }

    /// The IPv4 `nameserver` entries of a resolv.conf, in file order.
    ///
    /// Parsed like Docker's resolv.conf reader: fields split on whitespace, lines whose first
    /// field starts with `#` or `;` are comments, unparsable or IPv6 servers are skipped (they
    /// cannot collide with an IPv4 pool).
    pub fn parse_resolv_conf(text: &str) -> Vec<Ipv4Addr> {
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                if fields.next()? != "nameserver" {
                    return None;
                }
                fields.next()?.parse::<Ipv4Addr>().ok()
            })
            .collect()
    }

    /// The on-link routes of the main table, from the text of `/proc/net/route`.
    ///
    /// Docker asks netlink for routes with link scope; `/proc/net/route` has no scope column,
    /// so "on-link" here means: up, no gateway, not a reject (unreachable/prohibit) route.
    /// Routes to 0.0.0.0 (the default route) are excluded as Docker excludes them. Malformed
    /// lines, including the header, are skipped.
    ///
    /// The kernel prints each address as the hex of its in-memory (network order) bytes read
    /// as a native integer, so decoding uses native byte order: the text must come from this
    /// host, which is the only place it can come from.
    pub fn parse_proc_net_route(text: &str) -> Vec<Subnet> {
        text.lines().filter_map(parse_route_line).collect()
    }
}

/// One `/proc/net/route` line: `Iface Destination Gateway Flags RefCnt Use Metric Mask ...`.
fn parse_route_line(line: &str) -> Option<Subnet> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [
        _iface,
        dest,
        gateway,
        flags,
        _refcnt,
        _use,
        _metric,
        mask,
        ..,
    ] = fields.as_slice()
    else {
        return None;
    };
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let (dest, gateway, flags, mask) = (
        kernel_addr(hex(dest)?),
        kernel_addr(hex(gateway)?),
        hex(flags)?,
        kernel_addr(hex(mask)?),
    );
    let on_link =
        flags & RTF_UP != 0 && flags & (RTF_GATEWAY | RTF_REJECT) == 0 && gateway.is_unspecified();
    if !on_link || dest.is_unspecified() {
        return None;
    }
    let mask = u32::from(mask);
    let prefix_len = u8::try_from(mask.leading_ones()).ok()?;
    if mask.count_ones() != mask.leading_ones() {
        // Non-contiguous masks cannot be set through netlink; treat as garbage.
        return None;
    }
    Some(Subnet::containing(dest, prefix_len))
}

fn kernel_addr(raw: u32) -> Ipv4Addr {
    Ipv4Addr::from(raw.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("nameserver 10.0.0.2\n", vec![[10, 0, 0, 2]])]
    #[case(
        "# generated\nsearch lan\nnameserver 192.168.1.1\n\tnameserver   1.1.1.1  # cloudflare\n",
        vec![[192, 168, 1, 1], [1, 1, 1, 1]]
    )]
    #[case("nameserver 2001:4860:4860::8888\nnameserver 8.8.8.8\n", vec![[8, 8, 8, 8]])]
    #[case("#nameserver 10.0.0.1\n;nameserver 10.0.0.2\nnameserver\n", vec![])]
    #[case("nameservers 10.0.0.1\nnameserver 10.0.0.01\nnameserver bogus\n", vec![])]
    #[case("options ndots:0\n", vec![])]
    #[case("", vec![])]
    fn resolv_conf(#[case] text: &str, #[case] expected: Vec<[u8; 4]>) {
        let expected: Vec<Ipv4Addr> = expected.into_iter().map(Ipv4Addr::from).collect();
        assert_eq!(HostFacts::parse_resolv_conf(text), expected);
    }

    /// Captured from a little-endian host (`ip route`: default via 192.168.2.1 dev eth0;
    /// 192.168.2.0/24 dev eth0; 10.9.0.0/16 via 192.168.2.254; unreachable 10.66.0.0/16;
    /// 172.17.0.0/16 dev docker0 linkdown (flags U only); 10.1.2.3 dev tun0 host route;
    /// a route that is down).
    const PROC_NET_ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       
eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0                                                                               
eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0                                                                               
eth0\t0000090A\tFE02A8C0\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0                                                                               
*\t0000420A\t00000000\t0201\t0\t0\t0\t0000FFFF\t0\t0\t0                                                                               
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0                                                                               
tun0\t0302010A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0                                                                               
eth1\t0000A8C0\t00000000\t0000\t0\t0\t0\t0000FFFF\t0\t0\t0                                                                               
garbage line
eth2\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0
";

    #[cfg(target_endian = "little")]
    #[test]
    fn proc_net_route_keeps_on_link_routes_only() {
        let routes: Vec<String> = HostFacts::parse_proc_net_route(PROC_NET_ROUTE)
            .iter()
            .map(Subnet::to_string)
            .collect();
        assert_eq!(routes, ["192.168.2.0/24", "172.17.0.0/16", "10.1.2.3/32"]);
    }

    #[test]
    fn proc_net_route_of_nothing_is_empty() {
        assert!(HostFacts::parse_proc_net_route("").is_empty());
        assert!(HostFacts::parse_proc_net_route("Iface\tDestination\tGateway\n").is_empty());
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn from_host_files_combines_both() {
        let facts = HostFacts::from_host_files("nameserver 172.20.0.53\n", PROC_NET_ROUTE);
        assert_eq!(facts.nameservers, [Ipv4Addr::new(172, 20, 0, 53)]);
        assert_eq!(facts.on_link_routes.len(), 3);
    }
}
