//! The immutable record snapshot and its builder.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::Ipv4Addr;

/// The longest name, in presentation form without the root dot (RFC 1035, section 2.3.4).
const MAX_NAME_LEN: usize = 253;
/// The longest label (RFC 1035, section 2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// Why [`RecordsBuilder`] refused an entry. The builder is unchanged, so the caller may skip the
/// entry and go on building.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// A network name that cannot be the last label(s) of a DNS name.
    #[error("network name {network:?} is not a valid DNS name")]
    InvalidNetwork {
        /// The name given.
        network: String,
    },
    /// A container name or alias that is not a valid DNS name: empty, non-ASCII, with spaces,
    /// empty labels (`a..b`, a leading or trailing dot) or over RFC 1035's length limits.
    #[error("{name:?} is not a valid DNS name")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// A second container for an address that already has a reverse name on that network
    /// (IPAM never hands out an address twice, so this is a bug in the caller).
    #[error("{ip} on network {network} already belongs to {existing}")]
    AddressTaken {
        /// The network.
        network: String,
        /// The contested address.
        ip: Ipv4Addr,
        /// The reverse name it already has.
        existing: String,
    },
}

/// What the server knows about one network at one moment. Immutable: changes build a new
/// snapshot (see [`crate::RecordStore`]), so lookups need no lock.
///
/// Keyed by network name as Docker spells it (network names are case-sensitive; `Web` and `web`
/// may be two networks). Names inside a network are case-insensitive (RFC 4343).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    networks: HashMap<String, NetworkRecords>,
}

/// The names and reverse names of one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRecords {
    /// `.` + the network name in lowercase: the suffix a query may carry (`web.mynet`).
    suffix: String,
    /// Lowercased name → addresses, in the order they were added, without duplicates.
    names: HashMap<String, Vec<Ipv4Addr>>,
    /// Address → `name.network.`, with the container name as it was given.
    reverse: HashMap<Ipv4Addr, String>,
}

impl Records {
    /// A builder for a new snapshot.
    pub fn builder() -> RecordsBuilder {
        RecordsBuilder::default()
    }

    /// One network's records; `None` for a network the server does not serve (such as the
    /// default `bridge`, where Docker resolves no container names).
    pub fn network(&self, network: &str) -> Option<&NetworkRecords> {
        self.networks.get(network)
    }

    /// The names of the networks in the snapshot, in no particular order.
    pub fn networks(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.networks.keys().map(String::as_str)
    }

    /// The addresses `name` resolves to for a container on `network`; see
    /// [`NetworkRecords::lookup`].
    pub fn lookup(&self, network: &str, name: &str) -> Option<&[Ipv4Addr]> {
        self.network(network)?.lookup(name)
    }

    /// The reverse name of `ip` for a container on `network`; see [`NetworkRecords::ptr`].
    pub fn ptr(&self, network: &str, ip: Ipv4Addr) -> Option<&str> {
        self.network(network)?.ptr(ip)
    }
}

impl NetworkRecords {
    fn new(network: &str) -> Self {
        Self {
            suffix: format!(".{}", network.to_ascii_lowercase()),
            names: HashMap::new(),
            reverse: HashMap::new(),
        }
    }

    /// The addresses `name` resolves to, in any letter case, as `name` or `name.network`, with or
    /// without the root dot. `None` means the network does not know the name (the server then
    /// forwards the query upstream).
    pub fn lookup(&self, name: &str) -> Option<&[Ipv4Addr]> {
        let name = name.strip_suffix('.').unwrap_or(name);
        let name = ascii_lowercase(name);
        // The whole name first: an alias may itself contain dots.
        self.names
            .get(&*name)
            .or_else(|| self.names.get(name.strip_suffix(self.suffix.as_str())?))
            .map(Vec::as_slice)
    }

    /// The reverse (PTR) name of a container address: `name.network.` (fully qualified).
    pub fn ptr(&self, ip: Ipv4Addr) -> Option<&str> {
        self.reverse.get(&ip).map(String::as_str)
    }
}

/// Lowercases only when needed, so the common all-lowercase query allocates nothing.
fn ascii_lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Whether `name` can be looked up as a DNS name: printable ASCII labels, none empty, within
/// RFC 1035's limits. Stricter than Docker for aliases, which it takes unchecked but can never
/// answer for if they break these rules.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_graphic())
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= MAX_LABEL_LEN)
}

/// Builds a [`Records`] snapshot, one entry at a time, normalizing names as they come in.
#[derive(Debug, Default)]
pub struct RecordsBuilder {
    networks: HashMap<String, NetworkRecords>,
}

impl RecordsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a network the server serves, even with no containers yet, so that its queries
    /// are told "unknown name" rather than "unknown network".
    pub fn add_network(&mut self, network: &str) -> Result<&mut Self, RecordsError> {
        self.network_mut(network)?;
        Ok(self)
    }

    /// A container's endpoint: `name` resolves to `ip` on `network`, and `ip` resolves back to
    /// `name.network.`. Other names of the same endpoint go through [`RecordsBuilder::add_alias`].
    pub fn add_container(
        &mut self,
        network: &str,
        name: &str,
        ip: Ipv4Addr,
    ) -> Result<&mut Self, RecordsError> {
        check_name(name)?;
        let records = self.network_mut(network)?;
        let fqdn = format!("{name}.{network}.");
        match records.reverse.entry(ip) {
            Entry::Occupied(e) if *e.get() != fqdn => {
                return Err(RecordsError::AddressTaken {
                    network: network.to_owned(),
                    ip,
                    existing: e.get().clone(),
                });
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(e) => {
                e.insert(fqdn);
            }
        }
        insert_name(records, name, ip);
        Ok(self)
    }

    /// Another name for an address on `network` (`--network-alias`, the short id, the hostname),
    /// without a reverse record. Several containers may share an alias; it then resolves to all
    /// of their addresses.
    pub fn add_alias(
        &mut self,
        network: &str,
        alias: &str,
        ip: Ipv4Addr,
    ) -> Result<&mut Self, RecordsError> {
        check_name(alias)?;
        insert_name(self.network_mut(network)?, alias, ip);
        Ok(self)
    }

    /// The finished snapshot.
    pub fn build(self) -> Records {
        Records {
            networks: self.networks,
        }
    }

    fn network_mut(&mut self, network: &str) -> Result<&mut NetworkRecords, RecordsError> {
        if !is_valid_name(network) {
            return Err(RecordsError::InvalidNetwork {
                network: network.to_owned(),
            });
        }
        Ok(self
            .networks
            .entry(network.to_owned())
            .or_insert_with(|| NetworkRecords::new(network)))
    }
}

fn check_name(name: &str) -> Result<(), RecordsError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(RecordsError::InvalidName {
            name: name.to_owned(),
        })
    }
}

fn insert_name(records: &mut NetworkRecords, name: &str, ip: Ipv4Addr) {
    let ips = records.names.entry(name.to_ascii_lowercase()).or_default();
    // The hostname often equals the container name; one endpoint must not answer twice.
    if !ips.contains(&ip) {
        ips.push(ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::{fixture, rstest};

    const WEB: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
    const API: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 3);
    const WORKER: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 4);
    const DB: Ipv4Addr = Ipv4Addr::new(172, 19, 0, 2);
    const API_BACK: Ipv4Addr = Ipv4Addr::new(172, 19, 0, 3);

    /// Two user networks with a container on both, a shared alias and an empty network.
    #[fixture]
    fn records() -> Records {
        let mut b = Records::builder();
        b.add_container("frontend", "Web", WEB)
            .unwrap()
            .add_alias("frontend", "www", WEB)
            .unwrap()
            .add_alias("frontend", "3f4e5a6b7c8d", WEB)
            .unwrap()
            .add_alias("frontend", "web", WEB)
            .unwrap()
            .add_container("frontend", "api", API)
            .unwrap()
            .add_alias("frontend", "shared", API)
            .unwrap()
            .add_container("frontend", "worker", WORKER)
            .unwrap()
            .add_alias("frontend", "SHARED", WORKER)
            .unwrap()
            .add_container("backend", "db", DB)
            .unwrap()
            .add_container("backend", "api", API_BACK)
            .unwrap()
            .add_network("quiet")
            .unwrap();
        b.build()
    }

    #[rstest]
    #[case::name("frontend", "web", Some(vec![WEB]))]
    #[case::upper("frontend", "WEB", Some(vec![WEB]))]
    #[case::as_given("frontend", "Web", Some(vec![WEB]))]
    #[case::alias("frontend", "www", Some(vec![WEB]))]
    #[case::short_id("frontend", "3f4e5a6b7c8d", Some(vec![WEB]))]
    #[case::root_dot("frontend", "web.", Some(vec![WEB]))]
    #[case::with_network("frontend", "web.frontend", Some(vec![WEB]))]
    #[case::with_network_mixed_case("frontend", "wWw.FrontEnd.", Some(vec![WEB]))]
    #[case::shared_alias("frontend", "Shared", Some(vec![API, WORKER]))]
    #[case::per_network_address("backend", "api", Some(vec![API_BACK]))]
    #[case::per_network_address_front("frontend", "api.frontend", Some(vec![API]))]
    #[case::other_network("frontend", "db", None)]
    #[case::other_network_suffix("frontend", "db.backend", None)]
    #[case::wrong_suffix("backend", "db.frontend", None)]
    #[case::network_alone("frontend", "frontend", None)]
    #[case::empty_stem("frontend", ".frontend", None)]
    #[case::empty("frontend", "", None)]
    #[case::root("frontend", ".", None)]
    #[case::external("frontend", "example.com", None)]
    #[case::unknown_network("nosuch", "web", None)]
    #[case::network_is_case_sensitive("Frontend", "web", None)]
    #[case::empty_network("quiet", "web", None)]
    fn lookup(
        records: Records,
        #[case] network: &str,
        #[case] name: &str,
        #[case] expected: Option<Vec<Ipv4Addr>>,
    ) {
        assert_eq!(records.lookup(network, name), expected.as_deref());
    }

    #[rstest]
    #[case::container("frontend", WEB, Some("Web.frontend."))]
    #[case::second("frontend", API, Some("api.frontend."))]
    #[case::per_network("backend", API_BACK, Some("api.backend."))]
    #[case::address_on_other_network("frontend", DB, None)]
    #[case::unassigned("frontend", Ipv4Addr::new(172, 18, 0, 9), None)]
    #[case::unknown_network("nosuch", WEB, None)]
    fn ptr(
        records: Records,
        #[case] network: &str,
        #[case] ip: Ipv4Addr,
        #[case] expected: Option<&str>,
    ) {
        assert_eq!(records.ptr(network, ip), expected);
    }

    #[rstest]
    fn known_and_unknown_networks(records: Records) {
        assert!(records.network("quiet").is_some());
        assert!(records.network("nosuch").is_none());
        let mut names: Vec<&str> = records.networks().collect();
        names.sort_unstable();
        assert_eq!(names, ["backend", "frontend", "quiet"]);
    }

    #[rstest]
    fn alias_without_container_has_no_ptr() {
        let mut b = Records::builder();
        b.add_alias("net", "svc", WEB).unwrap();
        let records = b.build();
        assert_eq!(records.lookup("net", "svc"), Some(&[WEB][..]));
        assert_eq!(records.ptr("net", WEB), None);
    }

    #[rstest]
    #[case::empty("")]
    #[case::leading_dot(".web")]
    #[case::trailing_dot("web.")]
    #[case::empty_label("a..b")]
    #[case::space("my web")]
    #[case::non_ascii("wéb")]
    #[case::long_label(&"a".repeat(64))]
    #[case::long_name(&["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join("."))]
    fn invalid_names_are_refused(#[case] name: &str) {
        let mut b = Records::builder();
        let expected = RecordsError::InvalidName {
            name: name.to_owned(),
        };
        assert_eq!(
            b.add_container("net", name, WEB).err(),
            Some(expected.clone())
        );
        assert_eq!(b.add_alias("net", name, WEB).err(), Some(expected));
        // A refused entry leaves the builder as it was, not even declaring the network.
        assert_eq!(b.build(), Records::default());
    }

    #[rstest]
    #[case::longest_label(&"a".repeat(63))]
    #[case::longest_name(&["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join("."))]
    #[case::docker_name("my_app-1.v2")]
    fn names_at_the_limits_are_accepted(#[case] name: &str) {
        let mut b = Records::builder();
        b.add_container("net", name, WEB).unwrap();
        assert_eq!(b.build().lookup("net", name), Some(&[WEB][..]));
    }

    #[rstest]
    #[case::empty("")]
    #[case::space("my net")]
    fn invalid_networks_are_refused(#[case] network: &str) {
        let mut b = Records::builder();
        let expected = RecordsError::InvalidNetwork {
            network: network.to_owned(),
        };
        assert_eq!(b.add_network(network).err(), Some(expected.clone()));
        assert_eq!(b.add_container(network, "web", WEB).err(), Some(expected));
    }

    #[test]
    fn an_address_has_one_container() {
        let mut b = Records::builder();
        b.add_container("net", "web", WEB).unwrap();
        // Adding the same endpoint again is harmless and answers once.
        b.add_container("net", "web", WEB).unwrap();
        assert_eq!(
            b.add_container("net", "other", WEB).err(),
            Some(RecordsError::AddressTaken {
                network: "net".to_owned(),
                ip: WEB,
                existing: "web.net.".to_owned(),
            })
        );
        let records = b.build();
        assert_eq!(records.lookup("net", "web"), Some(&[WEB][..]));
        assert_eq!(records.lookup("net", "other"), None);
        assert_eq!(records.ptr("net", WEB), Some("web.net."));
    }
}
