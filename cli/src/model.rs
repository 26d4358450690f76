//! Typed control-plane state: identifiers, names and the records the store keeps.
//!
//! Everything the daemon receives is parsed into these types once, at the API edge.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use std::path::PathBuf;

use netloom_ipam::{MacAddr, Subnet};
use serde::{Deserialize, Serialize};

/// Why a user-supplied identifier or name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// An empty (or blank) network name.
    #[error("invalid name: name is empty")]
    EmptyName,
    /// A network name outside `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (names become DNS labels).
    #[error("Invalid network name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidNetworkName(String),
    /// An identifier that is not 64 lowercase hex characters.
    #[error("invalid identifier {0:?}: expected 64 lowercase hex characters")]
    InvalidId(String),
    /// A network driver netloom does not implement.
    #[error("plugin \"{0}\" not found")]
    UnknownDriver(String),
    /// A container (sandbox) name Docker would refuse.
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidContainerName(String),
}

/// A 64-hex-character object identifier, as Docker uses for networks, containers and endpoints.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectId(String);

impl ObjectId {
    /// A fresh random identifier (256 bits from the OS RNG, like Docker's `stringid.GenerateRandomID`).
    pub fn random() -> Self {
        use rand::RngExt as _;
        loop {
            let bytes: [u8; 32] = rand::rng().random();
            let mut s = String::with_capacity(64);
            for b in bytes {
                s.push_str(&format!("{b:02x}"));
            }
            // Like Docker: a short id of only digits could be mistaken for a number.
            if !s[..12].bytes().all(|b| b.is_ascii_digit()) {
                return ObjectId(s);
            }
        }
    }

    /// The full 64-character form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-character short form `docker ps` and `network ls` show.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl FromStr for ObjectId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(ObjectId(s.to_owned()))
        } else {
            Err(ModelError::InvalidId(s.to_owned()))
        }
    }
}

impl TryFrom<String> for ObjectId {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ObjectId> for String {
    fn from(id: ObjectId) -> String {
        id.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

/// A network identifier.
pub type NetworkId = ObjectId;
/// A container (sandbox) identifier.
pub type ContainerId = ObjectId;
/// An endpoint identifier.
pub type EndpointId = ObjectId;

/// A container (sandbox) name: Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading `/`, as the
/// Engine API shows names, is accepted and dropped).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerName(String);

impl ContainerName {
    /// The name as text, without a leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A generated `adjective_surname` name, as Docker makes when `--name` is omitted (the
    /// short id when every try is taken).
    pub fn generate(id: &ObjectId, taken: impl Fn(&str) -> bool) -> ContainerName {
        ContainerName(crate::containers::names::generate_name(id.as_str(), taken))
    }
}

impl FromStr for ContainerName {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::containers::names::validate_container_name(s)
            .map(|n| ContainerName(n.to_owned()))
            .map_err(|_| ModelError::InvalidContainerName(s.to_owned()))
    }
}

impl TryFrom<String> for ContainerName {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ContainerName> for String {
    fn from(n: ContainerName) -> String {
        n.0
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A network name that passes Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetworkName(String);

impl NetworkName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NetworkName {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(ModelError::EmptyName);
        }
        let mut bytes = s.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if first_ok && rest_ok {
            Ok(NetworkName(s.to_owned()))
        } else {
            Err(ModelError::InvalidNetworkName(s.to_owned()))
        }
    }
}

impl TryFrom<String> for NetworkName {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<NetworkName> for String {
    fn from(n: NetworkName) -> String {
        n.0
    }
}

impl fmt::Display for NetworkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The network drivers netloom implements, with Docker's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Driver {
    /// An L2 domain on netloom's userspace switch (Docker's `bridge`).
    #[serde(rename = "bridge")]
    Bridge,
    /// The host's own namespace.
    #[serde(rename = "host")]
    Host,
    /// No networking beyond `lo`.
    #[serde(rename = "null")]
    Null,
}

impl Driver {
    /// Docker's name for the driver.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

impl FromStr for Driver {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "bridge" => Ok(Driver::Bridge),
            "host" => Ok(Driver::Host),
            "null" => Ok(Driver::Null),
            other => Err(ModelError::UnknownDriver(other.to_owned())),
        }
    }
}

/// The address plan of a bridge network, as IPAM decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamRecord {
    /// The network's subnet.
    pub subnet: Subnet,
    /// The gateway address (netloom's userspace gateway answers on it).
    pub gateway: Ipv4Addr,
    /// Where container addresses come from, when narrower than the subnet.
    pub ip_range: Option<Subnet>,
    /// Addresses reserved by name (`--aux-address`), never handed out.
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// The user gave `--subnet`: inspect then shows the user's config as given (Docker omits
    /// the gateway it chose when `--gateway` was not given).
    #[serde(default)]
    pub user_subnet: bool,
    /// The user gave `--gateway`.
    #[serde(default)]
    pub user_gateway: bool,
}

/// A network as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// Identifier (64 hex).
    pub id: NetworkId,
    /// Unique name.
    pub name: NetworkName,
    /// Driver.
    pub driver: Driver,
    /// Creation time, with the daemon's local offset, as Docker reports it.
    pub created: DateTime<FixedOffset>,
    /// Address plan; `None` for `host` and `none`.
    pub ipam: Option<IpamRecord>,
    /// `--internal`: no traffic leaves the network.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options (`--opt`), as given.
    pub options: BTreeMap<String, String>,
    /// One of `bridge`, `host`, `none`: cannot be removed.
    pub builtin: bool,
}

/// What kind of sandbox a container record describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxKind {
    /// A network namespace another runtime made (`netloom attach`): netloom plugs interfaces
    /// into it but does not own it.
    Foreign {
        /// The namespace file (`/proc/PID/ns/net`, `/run/netns/NAME`, ...).
        netns: PathBuf,
    },
    /// A container netloom runs (`netloom run`): a host command in its own namespaces.
    Managed(Box<Managed>),
}

/// `--network` of a container, parsed once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// The default bridge or a user network (given by name or id; stored as the network id).
    Bridge(NetworkId),
    /// The host's network namespace.
    Host,
    /// Its own namespace with only `lo`.
    None,
    /// Another container's namespace.
    Container(ContainerId),
}

/// Per-network settings a container asks for (`--ip`, `--mac-address`, `--network-alias`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSettings {
    /// A fixed address.
    pub ip: Option<Ipv4Addr>,
    /// A fixed MAC.
    pub mac: Option<MacAddr>,
    /// Extra DNS names.
    pub aliases: Vec<String>,
}

/// How a container was created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// `--hostname` (default: the 12-character short id).
    pub hostname: Option<String>,
    /// The networks it is connected to, in connection order (`eth0` first), with settings.
    pub networks: Vec<(NetworkId, EndpointSettings)>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--add-host`.
    pub extra_hosts: Vec<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// `Config.ExposedPorts`: the container ports it exposes (every published port is exposed;
    /// Docker publishes only exposed ports), sorted as Docker's JSON map keys sort.
    #[serde(default)]
    pub exposed_ports: Vec<ContainerPort>,
    /// `HostConfig.PortBindings` (`-p`), in the order given per container port.
    #[serde(default)]
    pub port_bindings: Vec<PortMapping>,
}

/// A transport protocol a port can be published for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Proto {
    /// TCP.
    #[serde(rename = "tcp")]
    Tcp,
    /// UDP.
    #[serde(rename = "udp")]
    Udp,
}

impl Proto {
    /// Docker's name (`tcp`, `udp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container port with its protocol: Docker's `nat.Port` (`80/tcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerPort {
    /// The port number inside the container.
    pub port: u16,
    /// Its protocol.
    pub proto: Proto,
}

impl ContainerPort {
    /// Docker's map key, `80/tcp`.
    pub fn key(self) -> String {
        format!("{}/{}", self.port, self.proto)
    }
}

impl fmt::Display for ContainerPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

// Go's JSON writes map keys sorted as strings ("8080/tcp" < "80/tcp" is false: '/' < '8'), so
// the order of `ExposedPorts`, `PortBindings` and `NetworkSettings.Ports` is that of the key.
impl Ord for ContainerPort {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for ContainerPort {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// An inclusive range of host ports (`8000-8010`; one port when `start == end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (`>= start`).
    pub end: u16,
}

impl PortRange {
    /// One port.
    pub fn single(port: u16) -> PortRange {
        PortRange {
            start: port,
            end: port,
        }
    }

    /// Whether it names exactly one port.
    pub fn is_single(self) -> bool {
        self.start == self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// One `-p` binding of a container port: Docker's `PortBinding` of `HostConfig.PortBindings`,
/// parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The container port.
    pub container: ContainerPort,
    /// The host address; `None`: `0.0.0.0` and `::`.
    pub host_ip: Option<IpAddr>,
    /// The host port, or a range to pick one from; `None`: any free port.
    pub host_port: Option<PortRange>,
}

/// A host port a running container holds: Docker's `NetworkSettings.Ports` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BoundPort {
    /// The container port it forwards to.
    pub container: ContainerPort,
    /// The host address bound (`0.0.0.0`, `::` or the one asked for).
    pub host_ip: IpAddr,
    /// The host port bound.
    pub host_port: u16,
}

/// The ports a running container publishes, and where to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// The network whose address of the container the ports forward to.
    pub network: NetworkId,
    /// The host ports held, in Docker's order (per mapping: IPv4, then IPv6).
    pub ports: Vec<BoundPort>,
}

/// Where a container is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Created, never started.
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Its process ended.
    Exited,
}

impl Status {
    /// Docker's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// A managed container's run state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// Created, running or exited.
    pub status: Status,
    /// The shim's pid while running (the shim holds the namespaces).
    pub pid: Option<u32>,
    /// The last exit code.
    pub exit_code: i32,
    /// When it last started.
    pub started_at: Option<DateTime<FixedOffset>>,
    /// When it last stopped.
    pub finished_at: Option<DateTime<FixedOffset>>,
    /// While running on a network that publishes: its published ports (re-bound after a daemon
    /// restart).
    #[serde(default)]
    pub publication: Option<Publication>,
}

/// A container netloom runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Managed {
    /// `--network` mode.
    pub mode: NetworkMode,
    /// Create-time settings.
    pub config: ContainerConfig,
    /// Run state.
    pub state: RunState,
}

/// A container or foreign sandbox as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Identifier (64 hex).
    pub id: ContainerId,
    /// Unique name.
    pub name: ContainerName,
    /// Creation time.
    pub created: DateTime<FixedOffset>,
    /// What it is.
    pub kind: SandboxKind,
}

impl ContainerRecord {
    /// The network namespace its endpoints are plugged into: the foreign file, or the running
    /// shim's namespace (`None` for a managed container that is not running).
    pub fn netns(&self) -> Option<PathBuf> {
        match &self.kind {
            SandboxKind::Foreign { netns } => Some(netns.clone()),
            SandboxKind::Managed(m) => m.state.pid.map(|pid| format!("/proc/{pid}/ns/net").into()),
        }
    }

    /// The managed part, if netloom runs this container.
    pub fn managed(&self) -> Option<&Managed> {
        match &self.kind {
            SandboxKind::Managed(m) => Some(m),
            SandboxKind::Foreign { .. } => None,
        }
    }

    /// The hostname (`--hostname`, or the short id as Docker does).
    pub fn hostname(&self) -> String {
        self.managed()
            .and_then(|m| m.config.hostname.clone())
            .unwrap_or_else(|| self.id.short().to_owned())
    }
}

/// A container's attachment to one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// Identifier (64 hex).
    pub id: EndpointId,
    /// The container it belongs to.
    pub container: ContainerId,
    /// The network it is on.
    pub network: NetworkId,
    /// The interface inside the sandbox (`eth0`, `eth1`, ...).
    pub ifname: String,
    /// Its IPv4 address (the prefix length is the network's).
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: MacAddr,
    /// Extra DNS names on this network.
    pub aliases: Vec<String>,
}

impl EndpointRecord {
    /// A new endpoint with a fresh id; the MAC is the one asked for, else derived from the
    /// address (`02:42` + IPv4, SPEC section 2).
    pub fn new(
        container: &ContainerId,
        network: &NetworkId,
        ifname: String,
        ip: Ipv4Addr,
        settings: &EndpointSettings,
    ) -> EndpointRecord {
        EndpointRecord {
            id: ObjectId::random(),
            container: container.clone(),
            network: network.clone(),
            ifname,
            ip,
            mac: settings.mac.unwrap_or_else(|| MacAddr::from_ipv4(ip)),
            aliases: settings.aliases.clone(),
        }
    }
}

/// The lowest `ethN` not used by `taken` (a sandbox's existing endpoints).
pub fn next_ifname<'a>(taken: impl IntoIterator<Item = &'a EndpointRecord> + Clone) -> String {
    (0..)
        .map(|i| format!("eth{i}"))
        .find(|name| !taken.clone().into_iter().any(|e| &e.ifname == name))
        .expect("an unused interface name exists")
}

/// Formats a time the way Go's `time.RFC3339Nano` does: fractional seconds without trailing
/// zeros (none at all when zero) and `Z` for UTC.
pub fn rfc3339_nano(t: &DateTime<FixedOffset>) -> String {
    use chrono::{SecondsFormat, Timelike};
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut frac = format!("{:09}", t.nanosecond() % 1_000_000_000);
    while frac.ends_with('0') {
        frac.pop();
    }
    let offset = t.offset().local_minus_utc();
    let zone = if offset == 0 {
        "Z".to_owned()
    } else {
        // chrono prints "+08:00" for the offset part of a full RFC 3339 string.
        let full = t.to_rfc3339_opts(SecondsFormat::Secs, false);
        full[full.len() - 6..].to_owned()
    };
    if frac.is_empty() {
        format!("{base}{zone}")
    } else {
        format!("{base}.{frac}{zone}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("mhk_network", true)]
    #[case("a", true)]
    #[case("9a.b-c_d", true)]
    #[case("", false)]
    #[case("_x", false)]
    #[case("-x", false)]
    #[case("a b", false)]
    #[case("a/b", false)]
    #[case("é", false)]
    fn network_names(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(name.parse::<NetworkName>().is_ok(), ok, "{name}");
    }

    #[test]
    fn ids_are_64_hex_and_unique() {
        let a = ObjectId::random();
        let b = ObjectId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 64);
        assert_eq!(a.as_str().parse::<ObjectId>().unwrap(), a);
        assert_eq!(a.short().len(), 12);
        assert!("ABC".parse::<ObjectId>().is_err());
        assert!("A".repeat(64).parse::<ObjectId>().is_err());
    }

    #[rstest]
    #[case(
        "2022-02-11T14:25:58.492097368+08:00",
        "2022-02-11T14:25:58.492097368+08:00"
    )]
    #[case("2022-02-11T14:25:58.490000000+00:00", "2022-02-11T14:25:58.49Z")]
    #[case("2022-02-11T14:25:58+00:00", "2022-02-11T14:25:58Z")]
    #[case(
        "2022-02-11T14:25:58.000000001-05:30",
        "2022-02-11T14:25:58.000000001-05:30"
    )]
    fn go_rfc3339_nano(#[case] input: &str, #[case] want: &str) {
        let t = DateTime::parse_from_rfc3339(input).unwrap();
        assert_eq!(rfc3339_nano(&t), want);
    }
}
