//! [`MacAddr`]: an Ethernet address, derived from the container's IPv4 address or given by the
//! user with `--mac-address`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A 48-bit Ethernet (MAC) address, shown and serialised as `aa:bb:cc:dd:ee:ff` (lowercase,
/// as Docker shows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr(pub [u8; 6]);

/// Why a string is not a MAC address; the text is the daemon's
/// (`daemon/container_operations.go`, `validateEndpointSettings`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacParseError {
    /// Not six colon-separated pairs of hex digits.
    #[error("invalid MAC address {input}")]
    Invalid {
        /// The input as given.
        input: String,
    },
}

impl MacAddr {
    /// The MAC Docker derives from a container's IPv4 address: `02:42:` followed by the four
    /// address bytes (172.17.0.2 → `02:42:ac:11:00:02`). `0x02` marks it unicast and locally
    /// administered, so it cannot clash with a vendor-assigned address, and deriving it from
    /// the IP makes it unique on the network for as long as the IP is.
    pub fn from_ipv4(ip: Ipv4Addr) -> Self {
        let [a, b, c, d] = ip.octets();
        Self([0x02, 0x42, a, b, c, d])
    }

    /// The six bytes, in transmission order.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = MacParseError;

    /// Accepts exactly `aa:bb:cc:dd:ee:ff` in either case; the other spellings Go's
    /// `net.ParseMAC` knows (dashes, dots, 20-byte InfiniBand) are refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || MacParseError::Invalid {
            input: s.to_owned(),
        };
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self(bytes))
    }
}

impl TryFrom<String> for MacAddr {
    type Error = MacParseError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MacAddr> for String {
    fn from(mac: MacAddr) -> Self {
        mac.to_string()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rstest::rstest;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, StrDeserializer};

    use super::*;

    #[rstest]
    #[case([172, 17, 0, 2], "02:42:ac:11:00:02")]
    #[case([172, 18, 0, 3], "02:42:ac:12:00:03")]
    #[case([192, 168, 16, 255], "02:42:c0:a8:10:ff")]
    fn derived_from_ipv4(#[case] ip: [u8; 4], #[case] mac: &str) {
        assert_eq!(MacAddr::from_ipv4(Ipv4Addr::from(ip)).to_string(), mac);
    }

    #[rstest]
    #[case("02:42:ac:11:00:02", [0x02, 0x42, 0xac, 0x11, 0x00, 0x02])]
    #[case("AA:BB:CC:DD:EE:FF", [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])]
    #[case("aA:bB:cC:dD:eE:fF", [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])]
    fn parses(#[case] input: &str, #[case] bytes: [u8; 6]) {
        assert_eq!(input.parse(), Ok(MacAddr(bytes)));
    }

    #[rstest]
    #[case("")]
    #[case("02:42:ac:11:00")]
    #[case("02:42:ac:11:00:02:03")]
    #[case("02-42-ac-11-00-02")]
    #[case("0242.ac11.0002")]
    #[case("2:42:ac:11:00:02")]
    #[case("002:42:ac:11:00:02")]
    #[case("02:42:ac:11:00:0g")]
    #[case("02:42:ac:11:00:+2")]
    #[case("02:42:ac:11:00:02:")]
    #[case(" 02:42:ac:11:00:02")]
    fn refuses(#[case] input: &str) {
        assert_eq!(
            input.parse::<MacAddr>().unwrap_err().to_string(),
            format!("invalid MAC address {input}")
        );
    }

    #[test]
    fn serde_uses_the_string_form() {
        let de: StrDeserializer<'_, DeError> = "02:42:AC:11:00:02".into_deserializer();
        assert_eq!(
            MacAddr::deserialize(de),
            Ok(MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]))
        );
        assert_eq!(
            String::from(MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x02])),
            "02:42:ac:11:00:02"
        );
    }

    proptest! {
        #[test]
        fn display_from_str_round_trip(bytes: [u8; 6]) {
            let mac = MacAddr(bytes);
            prop_assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
            prop_assert_eq!(mac.to_string().to_uppercase().parse::<MacAddr>(), Ok(mac));
        }
    }
}
