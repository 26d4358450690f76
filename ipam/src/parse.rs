//! Parsing of user-typed addresses and prefixes with the acceptance rules of Go's `net/netip`
//! (`ParseAddr`, `ParsePrefix`), because Docker validates `--subnet`, `--ip-range`, `--gateway`
//! and `--aux-address` with them and we must accept and reject exactly the same strings.
//!
//! Differences from Rust's `FromStr` impls that matter here: Go rejects a prefix length with a
//! sign or a leading zero (`/08`), rejects IPv6 zones in a prefix but accepts them in an address
//! (`fe80::1%eth0`), and classifies IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as IPv6.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::subnet::Subnet;

/// An IPv4 prefix exactly as the user typed it: host bits may be set (`10.0.0.1/8`).
///
/// Docker checks host bits separately from syntax and prints the unmasked form in its messages
/// ("invalid subnet 10.0.0.1/8: it should be 10.0.0.0/8"), so we keep it until validation is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    pub(crate) addr: Ipv4Addr,
    pub(crate) len: u8,
}

impl Cidr {
    /// The network this prefix denotes, host bits cleared.
    pub(crate) fn masked(self) -> Subnet {
        Subnet::containing(self.addr, self.len)
    }

    pub(crate) fn is_masked(self) -> bool {
        self.masked().network() == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The address family of something that parsed; IPv6 carries no payload because netloom only
/// needs to recognise it (to report "parent subnet is an IPv4 block" or "IPv6 is not supported").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed<T> {
    V4(T),
    V6,
}

/// Go `netip.ParseAddr`: `None` when Go would return an error.
pub(crate) fn parse_addr(s: &str) -> Option<Parsed<Ipv4Addr>> {
    // Go decides the family from the first of '.', ':' or '%' it meets.
    match s.find(['.', ':', '%']).map(|i| s.as_bytes()[i]) {
        Some(b'.') => s.parse::<Ipv4Addr>().ok().map(Parsed::V4),
        Some(b':') => {
            let addr = match s.split_once('%') {
                Some((_, "")) => return None,
                Some((addr, _zone)) => addr,
                None => s,
            };
            addr.parse::<Ipv6Addr>().ok().map(|_| Parsed::V6)
        }
        _ => None,
    }
}

/// Go `netip.ParsePrefix`: `None` when Go would return an error.
pub(crate) fn parse_prefix(s: &str) -> Option<Parsed<Cidr>> {
    let (addr, bits) = s.rsplit_once('/')?;
    if addr.contains('%') {
        // Zones are accepted by ParseAddr but refused in a prefix.
        return None;
    }
    match parse_addr(addr)? {
        Parsed::V4(addr) => {
            let len = parse_bits(bits, 32)?;
            Some(Parsed::V4(Cidr { addr, len }))
        }
        Parsed::V6 => parse_bits(bits, 128).map(|_| Parsed::V6),
    }
}

/// A prefix length: decimal digits only, no sign, no leading zero (except "0" itself).
fn parse_bits(s: &str, max: u8) -> Option<u8> {
    let valid_digits = !s.is_empty()
        && s.len() <= 3
        && s.bytes().all(|b| b.is_ascii_digit())
        && !(s.len() > 1 && s.starts_with('0'));
    if !valid_digits {
        return None;
    }
    s.parse::<u8>().ok().filter(|&bits| bits <= max)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn v4(a: [u8; 4], len: u8) -> Option<Parsed<Cidr>> {
        Some(Parsed::V4(Cidr {
            addr: Ipv4Addr::from(a),
            len,
        }))
    }

    #[rstest]
    #[case("10.0.0.0/8", v4([10, 0, 0, 0], 8))]
    #[case("10.0.0.1/8", v4([10, 0, 0, 1], 8))]
    #[case("0.0.0.0/0", v4([0, 0, 0, 0], 0))]
    #[case("1.2.3.4/32", v4([1, 2, 3, 4], 32))]
    #[case("1.2.3.4/33", None)]
    #[case("1.2.3.4/08", None)]
    #[case("1.2.3.4/+8", None)]
    #[case("1.2.3.4/-1", None)]
    #[case("1.2.3.4/", None)]
    #[case("1.2.3.4", None)]
    #[case("01.2.3.4/8", None)]
    #[case("1.2.3/8", None)]
    #[case("256.0.0.0/8", None)]
    #[case(" 10.0.0.0/8", None)]
    #[case("10.0.0.0/8 ", None)]
    #[case("10.0.0.0/8/8", None)]
    #[case("", None)]
    #[case("fd00::/64", Some(Parsed::V6))]
    #[case("::ffff:10.0.0.0/104", Some(Parsed::V6))]
    #[case("fd00::/129", None)]
    #[case("fe80::%eth0/64", None)]
    fn prefixes_follow_go_netip(#[case] input: &str, #[case] expected: Option<Parsed<Cidr>>) {
        assert_eq!(parse_prefix(input), expected);
    }

    #[rstest]
    #[case("10.0.0.1", Some(Parsed::V4(Ipv4Addr::new(10, 0, 0, 1))))]
    #[case("10.0.0.01", None)]
    #[case("10.0.0", None)]
    #[case("10.0.0.1%eth0", None)]
    #[case("fe80::1%eth0", Some(Parsed::V6))]
    #[case("fe80::1%", None)]
    #[case("::ffff:1.2.3.4", Some(Parsed::V6))]
    #[case("foo", None)]
    #[case("", None)]
    fn addresses_follow_go_netip(#[case] input: &str, #[case] expected: Option<Parsed<Ipv4Addr>>) {
        assert_eq!(parse_addr(input), expected);
    }
}
