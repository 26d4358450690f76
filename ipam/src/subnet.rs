//! [`Subnet`]: an IPv4 network (masked address + prefix length), parsed once at the edge.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::parse::{Parsed, parse_prefix};

/// An IPv4 network such as `172.18.0.0/16`, with its host bits always clear.
///
/// This is the unit IPAM reasons about: network subnets, `--ip-range`, host routes. Parsing is
/// as strict as Docker's (`10.0.0.1/8` is refused with Docker's own message), and the serde form
/// is the same string the Engine API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix_len: u8,
}

/// Why a string or an (address, length) pair is not a [`Subnet`]; the texts are Docker's
/// (`api/types/network/ipam.go`) so they can be shown to users unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// The input is not `a.b.c.d/len` (or an IPv6 prefix).
    #[error("invalid subnet {input}: invalid CIDR block notation")]
    InvalidCidr {
        /// The input as given.
        input: String,
    },
    /// Host bits are set; Docker refuses rather than silently masking.
    #[error("invalid subnet {input}: it should be {masked}")]
    NotMasked {
        /// The input, in canonical form.
        input: String,
        /// What the user most likely meant.
        masked: Subnet,
    },
    /// A syntactically valid IPv6 prefix: netloom only does IPv4 for now.
    #[error("IPv6 is not supported by netloom yet")]
    Ipv6Unsupported {
        /// The input as given.
        input: String,
    },
}

impl Subnet {
    /// Builds a subnet from a network address and a prefix length, refusing host bits and
    /// lengths above 32 (Docker's rules, see [`SubnetError`]).
    pub fn new(network: Ipv4Addr, prefix_len: u8) -> Result<Self, SubnetError> {
        if prefix_len > 32 {
            return Err(SubnetError::InvalidCidr {
                input: format!("{network}/{prefix_len}"),
            });
        }
        let subnet = Self::containing(network, prefix_len);
        if subnet.network != network {
            return Err(SubnetError::NotMasked {
                input: format!("{network}/{prefix_len}"),
                masked: subnet,
            });
        }
        Ok(subnet)
    }

    /// The subnet of length `prefix_len` that contains `addr` (host bits cleared); for data that
    /// is trusted to be a prefix, like kernel routes. `prefix_len` is clamped to 32.
    pub fn containing(addr: Ipv4Addr, prefix_len: u8) -> Self {
        let prefix_len = prefix_len.min(32);
        Self {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix_len)),
            prefix_len,
        }
    }

    /// The network address (first address of the block).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The last address of the block: the broadcast address for prefixes up to /30. A /31 or
    /// /32 has no broadcast address (RFC 3021); this then is simply the last address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix_len))
    }

    /// The netmask, for interface configuration (`255.255.0.0` for a /16).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix_len))
    }

    /// The prefix length (0..=32).
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Number of addresses in the block, network and broadcast included (2^32 for a /0).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    /// Whether the network and broadcast addresses are unusable: true up to /30. A /31 is a
    /// point-to-point link where both addresses are hosts (RFC 3021), and a /32 is one host.
    pub fn reserves_network_and_broadcast(&self) -> bool {
        self.prefix_len <= 30
    }

    /// The first address a host can use, which Docker gives the bridge (gateway) by default:
    /// network + 1, or the network address itself for a /31 or /32.
    pub fn first_host(&self) -> Ipv4Addr {
        if self.reserves_network_and_broadcast() {
            Ipv4Addr::from(u32::from(self.network) + 1)
        } else {
            self.network
        }
    }

    /// Whether `addr` lies in this block (network and broadcast addresses included).
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix_len) == u32::from(self.network)
    }

    /// Whether every address of `other` lies in this block.
    pub fn contains_subnet(&self, other: &Subnet) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.network)
    }

    /// Whether the two blocks share any address; two prefixes overlap exactly when one
    /// contains the other.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains_subnet(other) || other.contains_subnet(self)
    }

    /// The offset of `addr` from the network address, if it is in this block.
    pub(crate) fn offset_of(&self, addr: Ipv4Addr) -> Option<u32> {
        self.contains(addr)
            .then(|| u32::from(addr) - u32::from(self.network))
    }

    /// The address at `offset` from the network address (the caller keeps it below `size`).
    pub(crate) fn addr_at(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + offset)
    }
}

/// The netmask of a prefix length as a host-order integer.
fn mask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match parse_prefix(s) {
            None => Err(SubnetError::InvalidCidr {
                input: s.to_owned(),
            }),
            Some(Parsed::V6) => Err(SubnetError::Ipv6Unsupported {
                input: s.to_owned(),
            }),
            Some(Parsed::V4(cidr)) if !cidr.is_masked() => Err(SubnetError::NotMasked {
                input: cidr.to_string(),
                masked: cidr.masked(),
            }),
            Some(Parsed::V4(cidr)) => Ok(cidr.masked()),
        }
    }
}

impl TryFrom<String> for Subnet {
    type Error = SubnetError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(subnet: Subnet) -> Self {
        subnet.to_string()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rstest::rstest;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, StrDeserializer};

    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[rstest]
    #[case("172.18.0.0/16", "172.18.0.0/16")]
    #[case("10.0.0.0/8", "10.0.0.0/8")]
    #[case("0.0.0.0/0", "0.0.0.0/0")]
    #[case("192.168.1.7/32", "192.168.1.7/32")]
    fn parses_and_displays(#[case] input: &str, #[case] shown: &str) {
        assert_eq!(net(input).to_string(), shown);
    }

    #[rstest]
    #[case("10.0.0.1/8", "invalid subnet 10.0.0.1/8: it should be 10.0.0.0/8")]
    #[case(
        "172.18.0.1/16",
        "invalid subnet 172.18.0.1/16: it should be 172.18.0.0/16"
    )]
    #[case("10.0.0.0", "invalid subnet 10.0.0.0: invalid CIDR block notation")]
    #[case(
        "10.0.0.0/33",
        "invalid subnet 10.0.0.0/33: invalid CIDR block notation"
    )]
    #[case(
        "10.0.0.0/08",
        "invalid subnet 10.0.0.0/08: invalid CIDR block notation"
    )]
    #[case("foo", "invalid subnet foo: invalid CIDR block notation")]
    #[case("", "invalid subnet : invalid CIDR block notation")]
    #[case("fd00::/64", "IPv6 is not supported by netloom yet")]
    fn refuses_with_docker_texts(#[case] input: &str, #[case] text: &str) {
        assert_eq!(input.parse::<Subnet>().unwrap_err().to_string(), text);
    }

    #[test]
    fn new_refuses_host_bits_and_long_prefixes() {
        let err = Subnet::new(Ipv4Addr::new(10, 0, 0, 1), 8).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid subnet 10.0.0.1/8: it should be 10.0.0.0/8"
        );
        assert!(Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 33).is_err());
        assert_eq!(
            Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 8),
            Ok(net("10.0.0.0/8"))
        );
    }

    #[rstest]
    #[case("172.17.0.0/16", [172, 17, 0, 0], [172, 17, 255, 255], [172, 17, 0, 1], 65536)]
    #[case("192.168.16.0/20", [192, 168, 16, 0], [192, 168, 31, 255], [192, 168, 16, 1], 4096)]
    #[case("10.1.2.4/30", [10, 1, 2, 4], [10, 1, 2, 7], [10, 1, 2, 5], 4)]
    #[case("10.1.2.4/31", [10, 1, 2, 4], [10, 1, 2, 5], [10, 1, 2, 4], 2)]
    #[case("10.1.2.4/32", [10, 1, 2, 4], [10, 1, 2, 4], [10, 1, 2, 4], 1)]
    #[case("0.0.0.0/0", [0, 0, 0, 0], [255, 255, 255, 255], [0, 0, 0, 1], 1 << 32)]
    fn block_arithmetic(
        #[case] input: &str,
        #[case] network: [u8; 4],
        #[case] broadcast: [u8; 4],
        #[case] first_host: [u8; 4],
        #[case] size: u64,
    ) {
        let s = net(input);
        assert_eq!(s.network(), Ipv4Addr::from(network));
        assert_eq!(s.broadcast(), Ipv4Addr::from(broadcast));
        assert_eq!(s.first_host(), Ipv4Addr::from(first_host));
        assert_eq!(s.size(), size);
    }

    #[rstest]
    #[case("172.17.0.0/16", "172.17.5.0/24", true)]
    #[case("172.17.5.0/24", "172.17.0.0/16", true)]
    #[case("172.16.0.0/12", "172.31.0.0/16", true)]
    #[case("172.17.0.0/16", "172.18.0.0/16", false)]
    #[case("192.168.0.0/20", "192.168.16.0/20", false)]
    #[case("0.0.0.0/0", "10.0.0.0/8", true)]
    fn overlap(#[case] a: &str, #[case] b: &str, #[case] expected: bool) {
        assert_eq!(net(a).overlaps(&net(b)), expected);
        assert_eq!(net(b).overlaps(&net(a)), expected);
    }

    #[test]
    fn contains_is_inclusive_of_network_and_broadcast() {
        let s = net("172.18.0.0/16");
        assert!(s.contains(Ipv4Addr::new(172, 18, 0, 0)));
        assert!(s.contains(Ipv4Addr::new(172, 18, 255, 255)));
        assert!(!s.contains(Ipv4Addr::new(172, 19, 0, 0)));
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 0, 0));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let de: StrDeserializer<'_, DeError> = "172.18.0.0/16".into_deserializer();
        assert_eq!(Subnet::deserialize(de), Ok(net("172.18.0.0/16")));
        let bad: StrDeserializer<'_, DeError> = "10.0.0.1/8".into_deserializer();
        assert!(Subnet::deserialize(bad).is_err());
        assert_eq!(String::from(net("172.18.0.0/16")), "172.18.0.0/16");
    }

    proptest! {
        #[test]
        fn display_from_str_round_trip(addr: u32, len in 0u8..=32) {
            let subnet = Subnet::containing(Ipv4Addr::from(addr), len);
            prop_assert_eq!(subnet.to_string().parse::<Subnet>(), Ok(subnet));
        }

        #[test]
        fn contains_matches_range(addr: u32, probe: u32, len in 0u8..=32) {
            let subnet = Subnet::containing(Ipv4Addr::from(addr), len);
            let lo = u32::from(subnet.network());
            let hi = u32::from(subnet.broadcast());
            prop_assert_eq!(subnet.contains(Ipv4Addr::from(probe)), (lo..=hi).contains(&probe));
        }
    }
}
