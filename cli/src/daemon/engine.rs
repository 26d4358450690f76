//! The control plane's operations on networks: validation, IPAM, the store, in that order.
//!
//! Each mutating operation runs inside one store write transaction, so checking (name taken,
//! subnet free) and writing happen atomically and a crash in between loses nothing acknowledged.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Local};
use netloom_ipam::{HostFacts, NetworkRequest, PlanError, Subnet};

use crate::api::filters::{FilterError, Filters};
use crate::model::{
    ContainerName, ContainerRecord, Driver, EndpointRecord, EndpointSettings, IpamRecord,
    ModelError, NetworkName, NetworkRecord, ObjectId, SandboxKind, next_ifname,
};
use crate::store::{Store, StoreError};

/// Docker's default bridge: fixed subnet and gateway, and the options `docker network inspect
/// bridge` shows.
const DEFAULT_BRIDGE_SUBNET: &str = "172.17.0.0/16";
const DEFAULT_BRIDGE_GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);

/// Why a network operation failed. The API layer maps each to Docker's text and HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No network matches the name, id or id prefix.
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// Several networks match an id prefix (Docker words this differently per endpoint).
    #[error("{}", match lookup {
        Lookup::Inspect => format!("{count} matches found based on ID prefix: network {term} is ambiguous"),
        Lookup::Remove => format!("network {term} is ambiguous ({count} matches found based on ID prefix)"),
    })]
    AmbiguousNetwork {
        /// What the user typed.
        term: String,
        /// How many matched.
        count: usize,
        /// Which request asked.
        lookup: Lookup,
    },
    /// `bridge`, `host`, `none` and `default` cannot be created.
    #[error("operation is not permitted on predefined {0} network ")]
    PredefinedName(String),
    /// The name is taken.
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    /// `bridge`, `host` and `none` cannot be removed.
    #[error("{0} is a pre-defined network and cannot be removed")]
    PredefinedNetwork(String),
    /// Only one network per host driver may exist.
    #[error("only one instance of \"{0}\" network is allowed")]
    SingleInstanceDriver(&'static str),
    /// The name or driver is not acceptable.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// IPv6 is not implemented yet.
    #[error("IPv6 networks are not supported by netloom yet: create the network without --ipv6")]
    Ipv6Unsupported,
    /// More than one IPAM config was given.
    #[error("netloom supports one IPv4 subnet per network: pass a single --subnet")]
    MultipleSubnets,
    /// An IPAM driver other than `default`.
    #[error("plugin \"{0}\" not found")]
    UnknownIpamDriver(String),
    /// A driver option that does not parse (Docker's text).
    #[error("failed to parse {key} value: {value} ({why})")]
    BadOption {
        /// The option.
        key: String,
        /// Its value.
        value: String,
        /// Go's parse error, as Docker shows it.
        why: String,
    },
    /// An MTU outside what a link can carry.
    #[error("invalid MTU number: {0} (netloom accepts 68 to 65535)")]
    BadMtu(i64),
    /// IPAM refused the request.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A bad `filters` argument.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// Containers do not exist yet in this version of the daemon.
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network still has endpoints (Docker's text; ids are 12-hex endpoint ids).
    #[error("error while removing network: network {network} has active endpoints ({})", endpoints.iter().map(|(n, id)| format!("name:\"{n}\" id:\"{id}\"")).collect::<Vec<_>>().join(", "))]
    ActiveEndpoints {
        /// The network's name.
        network: String,
        /// (container name, short endpoint id) per endpoint.
        endpoints: Vec<(String, String)>,
    },
    /// More `-p` mappings than one container may publish.
    #[error(
        "too many published ports: {count} (netloom publishes at most {max} per container): publish fewer ports or smaller ranges"
    )]
    TooManyPublished {
        /// How many were asked for.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// `rename` with an empty old or new name.
    #[error("Neither old nor new names may be empty")]
    RenameEmpty,
    /// `rename` to the name the container has.
    #[error("Renaming a container with the same name as its current name")]
    RenameSame,
    /// `rename` to a name that is invalid or taken.
    #[error("Error when allocating new name: {0}")]
    RenameTo(#[source] Box<EngineError>),
    /// The name is taken by another container or sandbox.
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse {
        /// The name.
        name: String,
        /// Who has it.
        id: String,
    },
    /// The sandbox already has an endpoint on the network.
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyAttached {
        /// Sandbox name.
        container: String,
        /// Network name.
        network: String,
    },
    /// Only bridge networks take foreign namespaces.
    #[error(
        "cannot attach to network {0}: only bridge networks (not host or none) take attached namespaces"
    )]
    NotAttachable(String),
    /// `--ip` on a network whose subnet IPAM chose.
    #[error(
        "user specified IP address is supported only when connecting to networks with user configured subnets"
    )]
    UserIpNeedsUserSubnet,
    /// `--ip` that does not parse.
    #[error("invalid IPv4 address: {0}")]
    BadIp(String),
    /// `--mac-address` that does not parse.
    #[error("{0} is not a valid mac address")]
    BadMac(String),
    /// The namespace path is unusable.
    #[error("network namespace {path} cannot be used: {why}")]
    BadNetns {
        /// The path.
        path: String,
        /// Why.
        why: String,
    },
    /// Address allocation failed.
    #[error("no available IPv4 addresses on this network's address pools: {network} ({id})")]
    PoolFull {
        /// Network name.
        network: String,
        /// Network id.
        id: String,
    },
    /// A specific address could not be had.
    #[error("{0}")]
    Address(#[source] netloom_ipam::AllocError),
    /// A container needs a command (netloom runs host commands; there are no images).
    #[error(
        "no command specified: give the command to run after the options, e.g. netloom run --name c1 -- sleep 60"
    )]
    NoCommand,
    /// `-p` with `--network container:X`.
    #[error("conflicting options: port publishing and the container type network mode")]
    PublishWithContainerMode,
    /// A `PortBindings` or `ExposedPorts` entry that is not a port (HTTP 400).
    #[error(transparent)]
    PortSpec(#[from] crate::ports::BindingError),
    /// `container:` mode whose owner does not run.
    #[error("cannot join network of a non running container: {0}")]
    OwnerNotRunning(String),
    /// `start` of a running container.
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    /// `rm` of a running container without `-f`.
    #[error(
        "cannot remove container \"{0}\": container is running: stop the container before removing or force remove"
    )]
    RemoveRunning(String),
    /// A container operation on a namespace attached with `netloom attach`.
    #[error("{0} is an attached namespace, not a container netloom runs: use netloom detach")]
    NotManaged(String),
    /// Connecting a container that shares another's (or the host's) namespace.
    #[error(
        "container sharing network namespace with another container or host cannot be connected to any other network"
    )]
    SharedNamespace,
    /// `detach` of a container netloom runs.
    #[error(
        "{0} is a container netloom runs, not an attached namespace: use netloom network disconnect, stop or rm"
    )]
    IsManaged(String),
    /// Starting the container's process failed.
    #[error("failed to create task for container: {0}")]
    Spawn(String),
    /// The sandbox is not on that network.
    #[error("container {container} is not connected to network {network}")]
    NotConnected {
        /// Sandbox id.
        container: String,
        /// Network name.
        network: String,
    },
}

/// What `netloom attach` asks for.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    /// Network name or id.
    pub network: String,
    /// Sandbox name (generated when empty).
    pub name: String,
    /// The foreign namespace file.
    pub netns: PathBuf,
    /// `--ip`.
    pub ip: String,
    /// `--mac-address`.
    pub mac: String,
    /// `--alias`.
    pub aliases: Vec<String>,
}

/// The result of an attach: what the data plane must plug.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The sandbox.
    pub container: ContainerRecord,
    /// The new endpoint.
    pub endpoint: EndpointRecord,
    /// Its network.
    pub network: NetworkRecord,
    /// Whether this is the sandbox's first endpoint (it then gets the default route).
    pub first: bool,
}

/// What `POST /networks/create` asks for, already parsed from the request body.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    /// The name (validated).
    pub name: String,
    /// Driver name as given (empty means bridge).
    pub driver: String,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// `--ipv6`.
    pub enable_ipv6: bool,
    /// IPAM driver name as given (empty means default).
    pub ipam_driver: String,
    /// IPAM configs as typed by the user.
    pub ipam: Vec<NetworkRequest>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--opt`.
    pub options: BTreeMap<String, String>,
}

/// Where the daemon reads the host facts IPAM needs.
#[derive(Debug, Clone)]
pub struct HostFiles {
    /// The daemon namespace's resolv.conf.
    pub resolv_conf: PathBuf,
    /// The kernel's IPv4 route table.
    pub proc_net_route: PathBuf,
}

impl Default for HostFiles {
    fn default() -> Self {
        HostFiles {
            resolv_conf: "/etc/resolv.conf".into(),
            proc_net_route: "/proc/net/route".into(),
        }
    }
}

impl HostFiles {
    /// Reads the nameservers and on-link routes; an unreadable file counts as empty, since a
    /// missing resolv.conf only means there is nothing to avoid.
    fn facts(&self) -> HostFacts {
        let resolv = std::fs::read_to_string(&self.resolv_conf).unwrap_or_default();
        let routes = std::fs::read_to_string(&self.proc_net_route).unwrap_or_default();
        HostFacts::from_host_files(&resolv, &routes)
    }
}

/// The control plane: owns the store.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    host: HostFiles,
    data_root: PathBuf,
}

/// The daemon's clock, with its local offset (as Docker reports times).
pub(crate) fn now() -> DateTime<FixedOffset> {
    Local::now().fixed_offset()
}

/// Which request looks a network up: Docker's ambiguity texts differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// `GET /networks/{id}` and most others.
    Inspect,
    /// `DELETE /networks/{id}`.
    Remove,
}

/// Finds a network the way Docker does: exact id, then exact name, then a unique id prefix.
pub(crate) fn find<'a>(
    networks: &'a [NetworkRecord],
    term: &str,
    lookup: Lookup,
) -> Result<&'a NetworkRecord, EngineError> {
    if let Some(n) = networks.iter().find(|n| n.id.as_str() == term) {
        return Ok(n);
    }
    if let Some(n) = networks.iter().find(|n| n.name.as_str() == term) {
        return Ok(n);
    }
    let by_prefix: Vec<_> = networks
        .iter()
        .filter(|n| n.id.as_str().starts_with(term))
        .collect();
    match by_prefix.as_slice() {
        [one] => Ok(one),
        [] => Err(EngineError::NetworkNotFound(term.to_owned())),
        many => Err(EngineError::AmbiguousNetwork {
            term: term.to_owned(),
            count: many.len(),
            lookup,
        }),
    }
}

/// Finds a container by exact id, exact name, or unique id prefix (Docker's order).
pub(crate) fn find_container<'a>(
    containers: &'a [ContainerRecord],
    term: &str,
) -> Result<&'a ContainerRecord, EngineError> {
    let term = term.strip_prefix('/').unwrap_or(term);
    if let Some(c) = containers
        .iter()
        .find(|c| c.id.as_str() == term || c.name.as_str() == term)
    {
        return Ok(c);
    }
    let by_prefix: Vec<_> = containers
        .iter()
        .filter(|c| c.id.as_str().starts_with(term))
        .collect();
    match by_prefix.as_slice() {
        [one] if !term.is_empty() => Ok(one),
        _ => Err(EngineError::ContainerNotFound(term.to_owned())),
    }
}

/// The lowest free address of the network (or the requested one), given every endpoint.
pub(crate) fn allocate_address(
    network: &NetworkRecord,
    ipam: &IpamRecord,
    endpoints: &[EndpointRecord],
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, EngineError> {
    let plan = netloom_ipam::NetworkPlan {
        subnet: ipam.subnet,
        gateway: ipam.gateway,
        ip_range: ipam.ip_range,
        aux_addresses: ipam.aux_addresses.clone(),
    };
    let mut pool = netloom_ipam::AddressPool::new(&plan);
    for e in endpoints.iter().filter(|e| e.network == network.id) {
        // A stored address always fits its pool; were the store corrupt, the allocation
        // below still never hands out an address twice.
        let _ = pool.mark_allocated(e.ip);
    }
    pool.allocate(requested).map_err(|e| match e {
        netloom_ipam::AllocError::NoAvailable if requested.is_none() => EngineError::PoolFull {
            network: network.name.to_string(),
            id: network.id.to_string(),
        },
        other => EngineError::Address(other),
    })
}

/// Checks that a namespace path names a network namespace, and makes it absolute.
fn check_netns(path: &std::path::Path) -> Result<PathBuf, EngineError> {
    let bad = |why: String| EngineError::BadNetns {
        path: path.display().to_string(),
        why,
    };
    if !path.is_absolute() {
        return Err(bad(
            "give an absolute path such as /run/netns/NAME or /proc/PID/ns/net".into(),
        ));
    }
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.is_dir() {
        return Err(bad("it is a directory, not a namespace file".into()));
    }
    Ok(path.to_owned())
}

/// The MTU option; Docker's default is 1500.
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// netloom's own option (`--opt com.netloom.network.host_loopback=true`): the gateway's
/// address reaches the daemon's 127.0.0.1 on ports the gateway does not serve itself. Off by
/// default, because it opens every loopback-only service of the daemon's host to containers.
pub const HOST_LOOPBACK_OPTION: &str = "com.netloom.network.host_loopback";

/// Go's `strconv.ParseBool`, which Docker uses for boolean driver options.
pub fn parse_bool_option(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Checks the bridge driver options netloom understands, with Docker's texts.
fn validate_options(options: &BTreeMap<String, String>) -> Result<(), EngineError> {
    if let Some(mtu) = options.get(MTU_OPTION) {
        let m: i64 = mtu.parse().map_err(|_| EngineError::BadOption {
            key: MTU_OPTION.into(),
            value: mtu.clone(),
            why: format!("strconv.Atoi: parsing {mtu:?}: invalid syntax"),
        })?;
        if !(68..=65535).contains(&m) {
            return Err(EngineError::BadMtu(m));
        }
    }
    for key in [
        "com.docker.network.bridge.enable_icc",
        "com.docker.network.bridge.enable_ip_masquerade",
        "com.docker.network.bridge.inhibit_ipv4",
        HOST_LOOPBACK_OPTION,
    ] {
        if let Some(v) = options.get(key)
            && parse_bool_option(v).is_none()
        {
            return Err(EngineError::BadOption {
                key: key.into(),
                value: v.clone(),
                why: format!("strconv.ParseBool: parsing {v:?}: invalid syntax"),
            });
        }
    }
    Ok(())
}

impl Engine {
    /// Opens the engine over a store, creating the built-in networks on the first start.
    pub fn new(store: Store, host: HostFiles, data_root: PathBuf) -> Result<Engine, EngineError> {
        let engine = Engine {
            store,
            host,
            data_root,
        };
        engine.ensure_builtin()?;
        Ok(engine)
    }

    /// Where the daemon keeps its state.
    pub fn data_root(&self) -> &std::path::Path {
        &self.data_root
    }

    /// The store, for consistency checks.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn ensure_builtin(&self) -> Result<(), EngineError> {
        self.store.write(|tx| {
            let existing = tx.networks()?;
            let has = |name: &str| existing.iter().any(|n| n.name.as_str() == name);
            let builtin =
                |name: &str, driver: Driver, ipam: Option<IpamRecord>, options| NetworkRecord {
                    id: ObjectId::random(),
                    name: name.parse().expect("built-in names are valid"),
                    driver,
                    created: now(),
                    ipam,
                    internal: false,
                    attachable: false,
                    labels: BTreeMap::new(),
                    options,
                    builtin: true,
                };
            if !has("bridge") {
                let options = [
                    ("com.docker.network.bridge.default_bridge", "true"),
                    ("com.docker.network.bridge.enable_icc", "true"),
                    ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                    ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                    ("com.docker.network.bridge.name", "netloom0"),
                    ("com.docker.network.driver.mtu", "1500"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
                let ipam = IpamRecord {
                    subnet: DEFAULT_BRIDGE_SUBNET
                        .parse::<Subnet>()
                        .expect("valid constant"),
                    gateway: DEFAULT_BRIDGE_GATEWAY,
                    ip_range: None,
                    aux_addresses: BTreeMap::new(),
                    user_subnet: false,
                    user_gateway: false,
                };
                tx.insert_network(&builtin("bridge", Driver::Bridge, Some(ipam), options))?;
            }
            if !has("host") {
                tx.insert_network(&builtin("host", Driver::Host, None, BTreeMap::new()))?;
            }
            if !has("none") {
                tx.insert_network(&builtin("none", Driver::Null, None, BTreeMap::new()))?;
            }
            Ok(())
        })
    }

    /// All networks matching the filters.
    pub fn list_networks(&self, filters: &Filters) -> Result<Vec<NetworkRecord>, EngineError> {
        filters.validate_network_filters()?;
        let snap = self.store.snapshot()?;
        let in_use = |n: &NetworkRecord| snap.endpoints.iter().any(|e| e.network == n.id);
        Ok(snap
            .networks
            .iter()
            .filter(|n| filters.matches_network(n, in_use(n)))
            .cloned()
            .collect())
    }

    /// One network by id, name or id prefix.
    pub fn network(&self, term: &str) -> Result<NetworkRecord, EngineError> {
        let all = self.store.networks()?;
        find(&all, term, Lookup::Inspect).cloned()
    }

    /// Creates a network; answers its record once it is durable. Checks run in Docker's order,
    /// so the same bad request gets the same error: predefined name, IPv6, address config,
    /// name, duplicate, driver, options, then the address allocation itself.
    pub fn create_network(&self, req: CreateNetwork) -> Result<NetworkRecord, EngineError> {
        if matches!(req.name.as_str(), "bridge" | "host" | "none" | "default") {
            return Err(EngineError::PredefinedName(req.name));
        }
        if req.enable_ipv6 {
            return Err(EngineError::Ipv6Unsupported);
        }
        if req.ipam.len() > 1 {
            return Err(EngineError::MultipleSubnets);
        }
        if !req.ipam_driver.is_empty() && req.ipam_driver != "default" {
            return Err(EngineError::UnknownIpamDriver(req.ipam_driver));
        }
        let request = req.ipam.first().cloned().unwrap_or_default();
        let user_subnet = request.subnet.as_deref().is_some_and(|s| !s.is_empty());
        let user_gateway = request.gateway.as_deref().is_some_and(|s| !s.is_empty());
        let host = self.host.facts();
        if user_subnet || user_gateway || request.ip_range.is_some() {
            // Malformed address options are reported before name problems, as Docker does;
            // overlaps are judged later, against the store.
            netloom_ipam::plan_network(&request, &[], &host)?;
        }
        let name: NetworkName = req.name.parse()?;
        validate_options(&req.options)?;
        self.store.write(|tx| {
            let existing = tx.networks()?;
            if existing.iter().any(|n| n.name == name) {
                return Err(EngineError::NetworkExists(name.to_string()));
            }
            let driver: Driver = req.driver.parse()?;
            match driver {
                Driver::Host => return Err(EngineError::SingleInstanceDriver("host")),
                Driver::Null => return Err(EngineError::SingleInstanceDriver("null")),
                Driver::Bridge => {}
            }
            let taken: Vec<Subnet> = existing
                .iter()
                .filter_map(|n| n.ipam.as_ref().map(|i| i.subnet))
                .collect();
            let plan = netloom_ipam::plan_network(&request, &taken, &host)?;
            let record = NetworkRecord {
                id: ObjectId::random(),
                name,
                driver,
                created: now(),
                ipam: Some(IpamRecord {
                    subnet: plan.subnet,
                    gateway: plan.gateway,
                    ip_range: plan.ip_range,
                    aux_addresses: plan.aux_addresses,
                    user_subnet,
                    user_gateway,
                }),
                internal: req.internal,
                attachable: req.attachable,
                labels: req.labels,
                options: req.options,
                builtin: false,
            };
            tx.insert_network(&record)?;
            Ok(record)
        })
    }

    /// Removes one network by id, name or id prefix.
    pub fn remove_network(&self, term: &str) -> Result<NetworkRecord, EngineError> {
        self.store.write(|tx| {
            let all = tx.networks()?;
            let n = find(&all, term, Lookup::Remove)?.clone();
            if n.builtin {
                return Err(EngineError::PredefinedNetwork(n.name.to_string()));
            }
            let endpoints: Vec<EndpointRecord> = tx
                .endpoints()?
                .iter()
                .filter(|e| e.network == n.id)
                .cloned()
                .collect();
            if !endpoints.is_empty() {
                let containers = tx.containers()?;
                let name_of = |e: &EndpointRecord| {
                    containers
                        .iter()
                        .find(|c| c.id == e.container)
                        .map_or_else(String::new, |c| c.name.to_string())
                };
                return Err(EngineError::ActiveEndpoints {
                    network: n.name.to_string(),
                    endpoints: endpoints
                        .iter()
                        .map(|e| (name_of(e), e.id.short().to_owned()))
                        .collect(),
                });
            }
            tx.remove_network(&n)?;
            Ok(n)
        })
    }

    /// The endpoints on a network, with their containers (for `network inspect`).
    pub fn network_endpoints(
        &self,
        network: &NetworkRecord,
    ) -> Result<Vec<(ContainerRecord, EndpointRecord)>, EngineError> {
        let snap = self.store.snapshot()?;
        Ok(snap
            .endpoints
            .iter()
            .filter(|e| e.network == network.id)
            .filter_map(|e| {
                let c = snap
                    .containers
                    .iter()
                    .find(|c| c.id == e.container)?
                    .clone();
                Some((c, e.clone()))
            })
            .collect())
    }

    /// Plugs a foreign network namespace into a network (`netloom attach`): records the
    /// sandbox (on first use of its name) and a new endpoint with an address, in one
    /// transaction. The data plane is plumbed afterwards; see [`Engine::detach`] for undoing.
    pub fn attach(&self, req: AttachRequest) -> Result<Attached, EngineError> {
        let requested_ip = match req.ip.trim() {
            "" => None,
            s => Some(
                s.parse::<Ipv4Addr>()
                    .map_err(|_| EngineError::BadIp(s.to_owned()))?,
            ),
        };
        let requested_mac = match req.mac.trim() {
            "" => None,
            s => Some(
                s.parse::<netloom_ipam::MacAddr>()
                    .map_err(|_| EngineError::BadMac(s.to_owned()))?,
            ),
        };
        let name: Option<ContainerName> = if req.name.is_empty() {
            None
        } else {
            Some(req.name.parse()?)
        };
        let netns = check_netns(&req.netns)?;
        self.store.write(|tx| {
            let networks = tx.networks()?;
            let network = find(&networks, &req.network, Lookup::Inspect)?.clone();
            let Some(ipam) = network
                .ipam
                .clone()
                .filter(|_| network.driver == Driver::Bridge)
            else {
                return Err(EngineError::NotAttachable(network.name.to_string()));
            };
            if requested_ip.is_some() && !ipam.user_subnet {
                return Err(EngineError::UserIpNeedsUserSubnet);
            }
            let containers = tx.containers()?;
            let existing = name
                .as_ref()
                .and_then(|n| containers.iter().find(|c| &c.name == n));
            let container = match existing {
                Some(c) if c.netns().as_ref() == Some(&netns) => c.clone(),
                Some(c) => {
                    return Err(EngineError::NameInUse {
                        name: c.name.to_string(),
                        id: c.id.to_string(),
                    });
                }
                None => {
                    let id = ObjectId::random();
                    let name = name.clone().unwrap_or_else(|| {
                        ContainerName::generate(&id, |n| {
                            containers.iter().any(|c| c.name.as_str() == n)
                        })
                    });
                    let c = ContainerRecord {
                        id,
                        name,
                        created: now(),
                        kind: SandboxKind::Foreign {
                            netns: netns.clone(),
                        },
                    };
                    tx.insert_container(&c)?;
                    c
                }
            };
            let endpoints = tx.endpoints()?;
            let mine: Vec<&EndpointRecord> = endpoints
                .iter()
                .filter(|e| e.container == container.id)
                .collect();
            if mine.iter().any(|e| e.network == network.id) {
                return Err(EngineError::AlreadyAttached {
                    container: container.name.to_string(),
                    network: network.name.to_string(),
                });
            }
            let ip = allocate_address(&network, &ipam, &endpoints, requested_ip)?;
            let settings = EndpointSettings {
                ip: Some(ip),
                mac: requested_mac,
                aliases: req.aliases.clone(),
            };
            let ifname = next_ifname(mine.iter().copied());
            let endpoint = EndpointRecord::new(&container.id, &network.id, ifname, ip, &settings);
            tx.insert_endpoint(&endpoint)?;
            Ok(Attached {
                first: mine.is_empty(),
                container,
                endpoint,
                network,
            })
        })
    }

    /// Removes a sandbox's endpoints (all, or the one on `network`), and the sandbox itself
    /// once it has none left. Answers the removed endpoints for the data plane to unplug.
    pub fn detach(
        &self,
        term: &str,
        network: Option<&str>,
    ) -> Result<(ContainerRecord, Vec<EndpointRecord>), EngineError> {
        self.store.write(|tx| {
            let containers = tx.containers()?;
            let container = find_container(&containers, term)?.clone();
            if container.managed().is_some() {
                return Err(EngineError::IsManaged(container.name.to_string()));
            }
            let endpoints: Vec<EndpointRecord> = tx
                .endpoints()?
                .iter()
                .filter(|e| e.container == container.id)
                .cloned()
                .collect();
            let chosen: Vec<EndpointRecord> = match network {
                None => endpoints.clone(),
                Some(term) => {
                    let networks = tx.networks()?;
                    let n = find(&networks, term, Lookup::Inspect)?;
                    let on: Vec<_> = endpoints
                        .iter()
                        .filter(|e| e.network == n.id)
                        .cloned()
                        .collect();
                    if on.is_empty() {
                        return Err(EngineError::NotConnected {
                            container: container.id.to_string(),
                            network: n.name.to_string(),
                        });
                    }
                    on
                }
            };
            for e in &chosen {
                tx.remove_endpoint(e)?;
            }
            if chosen.len() == endpoints.len() {
                tx.remove_container(&container)?;
            }
            Ok((container, chosen))
        })
    }

    /// Removes every custom network no container uses; answers the names removed, oldest first.
    pub fn prune_networks(&self, filters: &Filters) -> Result<Vec<NetworkName>, EngineError> {
        filters.validate_prune_filters()?;
        self.store.write(|tx| {
            let mut all = Arc::unwrap_or_clone(tx.networks()?);
            all.sort_by_key(|n| n.created);
            let endpoints = tx.endpoints()?;
            let in_use = |n: &NetworkRecord| endpoints.iter().any(|e| e.network == n.id);
            let mut removed = Vec::new();
            for n in all
                .iter()
                .filter(|n| !n.builtin && !in_use(n) && filters.matches_prune(n))
            {
                tx.remove_network(n)?;
                removed.push(n.name.clone());
            }
            Ok(removed)
        })
    }
}
