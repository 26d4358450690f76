//! The control plane's container operations: create, start (endpoints allocated), exit
//! (endpoints released), remove. Each is one store transaction; the process and the data plane
//! are driven by the runtime (`daemon/runtime.rs`) around them.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::daemon::engine::{
    Engine, EngineError, Lookup, allocate_address, find, find_container, now,
};
use crate::model::{
    ContainerConfig, ContainerId, ContainerName, ContainerRecord, Driver, EndpointRecord,
    EndpointSettings, Managed, NetworkMode, NetworkRecord, ObjectId, Publication, RunState,
    SandboxKind, Status, next_ifname,
};

/// What `POST /containers/create` asks for, parsed from the request.
#[derive(Debug, Clone, Default)]
pub struct CreateContainer {
    /// `--name` (generated when empty).
    pub name: String,
    /// `--network`: empty or `bridge`, a network name or id, `host`, `none`, `container:X`.
    pub network: String,
    /// Endpoint settings for that network.
    pub endpoint: EndpointSettings,
    /// Everything else.
    pub config: ContainerConfig,
    /// Whether `-p` was given (refused with `container:` mode).
    pub publishes: bool,
}

/// What starting a container needs, decided in one transaction.
#[derive(Debug, Clone)]
pub struct StartPlan {
    /// The container (state still as before the start).
    pub container: ContainerRecord,
    /// New endpoints, in interface order, with their networks.
    pub endpoints: Vec<(EndpointRecord, NetworkRecord)>,
    /// For `container:` mode, the owner's shim pid.
    pub join_pid: Option<u32>,
}

impl Engine {
    /// Records a new container (state Created); no address is taken until it starts.
    pub fn create_container(&self, req: CreateContainer) -> Result<ContainerRecord, EngineError> {
        if req.config.cmd.is_empty() {
            return Err(EngineError::NoCommand);
        }
        let name: Option<ContainerName> = if req.name.is_empty() {
            None
        } else {
            Some(req.name.parse()?)
        };
        self.store().write(|tx| {
            let containers = tx.containers()?;
            if let Some(n) = &name
                && let Some(c) = containers.iter().find(|c| &c.name == n)
            {
                return Err(EngineError::NameInUse {
                    name: c.name.to_string(),
                    id: c.id.to_string(),
                });
            }
            let networks = tx.networks()?;
            let mut config = req.config.clone();
            let mode = match req.network.as_str() {
                "host" => NetworkMode::Host,
                "none" => NetworkMode::None,
                m if m.starts_with("container:") => {
                    if req.publishes {
                        return Err(EngineError::PublishWithContainerMode);
                    }
                    let owner = find_container(&containers, &m["container:".len()..])?;
                    NetworkMode::Container(owner.id.clone())
                }
                other => {
                    let term = if other.is_empty() || other == "default" {
                        "bridge"
                    } else {
                        other
                    };
                    let n = find(&networks, term, Lookup::Inspect)?;
                    match n.driver {
                        Driver::Host => NetworkMode::Host,
                        Driver::Null => NetworkMode::None,
                        Driver::Bridge => {
                            let user_subnet = n.ipam.as_ref().is_some_and(|i| i.user_subnet);
                            if req.endpoint.ip.is_some() && !user_subnet {
                                return Err(EngineError::UserIpNeedsUserSubnet);
                            }
                            config.networks = vec![(n.id.clone(), req.endpoint.clone())];
                            NetworkMode::Bridge(n.id.clone())
                        }
                    }
                }
            };
            let id = ObjectId::random();
            let name = name.clone().unwrap_or_else(|| {
                ContainerName::generate(&id, |n| containers.iter().any(|c| c.name.as_str() == n))
            });
            let record = ContainerRecord {
                id,
                name,
                created: now(),
                kind: SandboxKind::Managed(Box::new(Managed {
                    mode,
                    config,
                    state: RunState::default(),
                })),
            };
            tx.insert_container(&record)?;
            Ok(record)
        })
    }

    /// One container (managed or attached) by id, name or id prefix.
    pub fn container(&self, term: &str) -> Result<ContainerRecord, EngineError> {
        let containers = self.store().containers_shared()?;
        find_container(&containers, term).cloned()
    }

    /// Checks that a container can start and allocates its endpoints' addresses (lowest free,
    /// or the `--ip` asked for), in one transaction.
    pub fn begin_start(&self, term: &str) -> Result<StartPlan, EngineError> {
        self.store().write(|tx| {
            let containers = tx.containers()?;
            let container = find_container(&containers, term)?.clone();
            let Some(m) = container.managed() else {
                return Err(EngineError::NotManaged(container.name.to_string()));
            };
            if m.state.status == Status::Running {
                return Err(EngineError::AlreadyRunning(container.id.to_string()));
            }
            let join_pid = match &m.mode {
                NetworkMode::Container(owner) => {
                    let o = containers.iter().find(|c| &c.id == owner);
                    let pid = o
                        .and_then(|o| o.managed())
                        .filter(|m| m.state.status == Status::Running)
                        .and_then(|m| m.state.pid);
                    match pid {
                        Some(pid) => Some(pid),
                        None => return Err(EngineError::OwnerNotRunning(owner.to_string())),
                    }
                }
                _ => None,
            };
            let networks = tx.networks()?;
            let mut endpoints = Arc::unwrap_or_clone(tx.endpoints()?);
            let mut planned = Vec::new();
            for (i, (net_id, settings)) in m.config.networks.iter().enumerate() {
                let Some(network) = networks.iter().find(|n| &n.id == net_id).cloned() else {
                    return Err(EngineError::NetworkNotFound(net_id.to_string()));
                };
                let Some(ipam) = network.ipam.clone() else {
                    return Err(EngineError::NotAttachable(network.name.to_string()));
                };
                let ip = allocate_address(&network, &ipam, &endpoints, settings.ip)?;
                let endpoint = EndpointRecord::new(
                    &container.id,
                    &network.id,
                    format!("eth{i}"),
                    ip,
                    settings,
                );
                tx.insert_endpoint(&endpoint)?;
                endpoints.push(endpoint.clone());
                planned.push((endpoint, network));
            }
            Ok(StartPlan {
                container,
                endpoints: planned,
                join_pid,
            })
        })
    }

    /// After a restart: releases the endpoints of managed containers the store does not say
    /// are running. They are what a start interrupted by a crash (between
    /// [`Engine::begin_start`] and [`Engine::mark_running`]) left behind; their addresses would
    /// otherwise stay taken. Answers the containers that had any, with those endpoints.
    pub fn release_stale_endpoints(
        &self,
    ) -> Result<Vec<(ContainerRecord, Vec<EndpointRecord>)>, EngineError> {
        self.store().write(|tx| {
            let endpoints = tx.endpoints()?;
            let mut released = Vec::new();
            for c in tx.containers()?.iter() {
                let Some(m) = c.managed() else { continue };
                if m.state.status == Status::Running {
                    continue;
                }
                let mine: Vec<EndpointRecord> = endpoints
                    .iter()
                    .filter(|e| e.container == c.id)
                    .cloned()
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                for e in &mine {
                    tx.remove_endpoint(e)?;
                }
                released.push((c.clone(), mine));
            }
            Ok(released)
        })
    }

    /// Undoes a [`Engine::begin_start`] whose process never ran: releases its endpoints.
    pub fn abort_start(&self, plan: &StartPlan) -> Result<(), EngineError> {
        self.store().write(|tx| {
            for (e, _) in &plan.endpoints {
                tx.remove_endpoint(e)?;
            }
            Ok(())
        })
    }

    /// Records that the container's shim runs as `pid`, publishing `publication`.
    pub fn mark_running(
        &self,
        id: &ContainerId,
        pid: u32,
        publication: Option<Publication>,
    ) -> Result<ContainerRecord, EngineError> {
        self.update_managed(id, |m| {
            m.state.status = Status::Running;
            m.state.pid = Some(pid);
            m.state.started_at = Some(now());
            m.state.publication = publication;
        })
    }

    /// Records the container's exit and releases its addresses (SPEC section 2: an address is
    /// released when its container stops). Answers the released endpoints for the data plane.
    pub fn mark_exited(
        &self,
        id: &ContainerId,
        exit_code: i32,
    ) -> Result<(ContainerRecord, Vec<EndpointRecord>), EngineError> {
        self.store().write(|tx| {
            let containers = tx.containers()?;
            let Some(mut c) = containers.iter().find(|c| &c.id == id).cloned() else {
                return Err(EngineError::ContainerNotFound(id.to_string()));
            };
            let mine: Vec<EndpointRecord> = tx
                .endpoints()?
                .iter()
                .filter(|e| &e.container == id)
                .cloned()
                .collect();
            for e in &mine {
                tx.remove_endpoint(e)?;
            }
            let before = c.clone();
            if let SandboxKind::Managed(m) = &mut c.kind {
                m.state.status = Status::Exited;
                m.state.pid = None;
                m.state.exit_code = exit_code;
                m.state.finished_at = Some(now());
                m.state.publication = None;
            }
            tx.insert_container(&c)?;
            Ok((before, mine))
        })
    }

    /// Points a running container's published ports at another of its networks (`Some`), or
    /// drops the publication (`None`, none of its networks publishes), after the network they
    /// forwarded to was disconnected.
    pub fn move_publication(
        &self,
        id: &ContainerId,
        network: Option<crate::model::NetworkId>,
    ) -> Result<ContainerRecord, EngineError> {
        self.update_managed(id, |m| match network {
            Some(n) => {
                if let Some(p) = m.state.publication.as_mut() {
                    p.network = n;
                }
            }
            None => m.state.publication = None,
        })
    }

    fn update_managed(
        &self,
        id: &ContainerId,
        f: impl FnOnce(&mut Managed),
    ) -> Result<ContainerRecord, EngineError> {
        self.store().write(|tx| {
            let Some(mut c) = tx.containers()?.iter().find(|c| &c.id == id).cloned() else {
                return Err(EngineError::ContainerNotFound(id.to_string()));
            };
            if let SandboxKind::Managed(m) = &mut c.kind {
                f(m);
            }
            tx.insert_container(&c)?;
            Ok(c)
        })
    }

    /// Forgets a stopped container.
    pub fn remove_container(&self, term: &str) -> Result<ContainerRecord, EngineError> {
        self.store().write(|tx| {
            let containers = tx.containers()?;
            let c = find_container(&containers, term)?.clone();
            match c.managed() {
                None => return Err(EngineError::NotManaged(c.name.to_string())),
                Some(m) if m.state.status == Status::Running => {
                    return Err(EngineError::RemoveRunning(term.to_owned()));
                }
                Some(_) => {}
            }
            let mine: Vec<EndpointRecord> = tx
                .endpoints()?
                .iter()
                .filter(|e| e.container == c.id)
                .cloned()
                .collect();
            for e in &mine {
                tx.remove_endpoint(e)?;
            }
            tx.remove_container(&c)?;
            Ok(c)
        })
    }

    /// The endpoints of one container.
    pub fn container_endpoints(
        &self,
        id: &ContainerId,
    ) -> Result<Vec<EndpointRecord>, EngineError> {
        Ok(self
            .store()
            .snapshot()?
            .endpoints
            .iter()
            .filter(|e| &e.container == id)
            .cloned()
            .collect())
    }
}

/// What `network connect` decided.
#[derive(Debug, Clone)]
pub enum Connected {
    /// The container is stopped: the network is recorded and used at the next start.
    Recorded,
    /// The container (or attached namespace) runs: plug this endpoint into `netns`.
    Plug {
        /// Where.
        netns: std::path::PathBuf,
        /// What.
        attached: Box<crate::daemon::engine::Attached>,
    },
}

impl Engine {
    /// `network connect`: the container is resolved first (Docker's order), then the network.
    /// A running container gets the next `ethN` at once; a stopped one at its next start.
    pub fn connect(
        &self,
        network: &str,
        container: &str,
        settings: EndpointSettings,
    ) -> Result<Connected, EngineError> {
        self.store().write(|tx| {
            let containers = tx.containers()?;
            let mut c = find_container(&containers, container)?.clone();
            let networks = tx.networks()?;
            let n = find(&networks, network, Lookup::Inspect)?.clone();
            let Some(ipam) = n.ipam.clone().filter(|_| n.driver == Driver::Bridge) else {
                return Err(EngineError::SharedNamespace);
            };
            if settings.ip.is_some() && !ipam.user_subnet {
                return Err(EngineError::UserIpNeedsUserSubnet);
            }
            let endpoints = tx.endpoints()?;
            let mine: Vec<&EndpointRecord> =
                endpoints.iter().filter(|e| e.container == c.id).collect();
            let running = match &mut c.kind {
                SandboxKind::Managed(m) => {
                    if !matches!(m.mode, NetworkMode::Bridge(_)) {
                        return Err(EngineError::SharedNamespace);
                    }
                    if m.config.networks.iter().any(|(id, _)| id == &n.id) {
                        return Err(EngineError::AlreadyAttached {
                            container: c.name.to_string(),
                            network: n.name.to_string(),
                        });
                    }
                    m.config.networks.push((n.id.clone(), settings.clone()));
                    m.state.status == Status::Running
                }
                SandboxKind::Foreign { .. } => {
                    if mine.iter().any(|e| e.network == n.id) {
                        return Err(EngineError::AlreadyAttached {
                            container: c.name.to_string(),
                            network: n.name.to_string(),
                        });
                    }
                    true
                }
            };
            tx.insert_container(&c)?;
            if !running {
                return Ok(Connected::Recorded);
            }
            let Some(netns) = c.netns() else {
                return Ok(Connected::Recorded);
            };
            let ip = allocate_address(&n, &ipam, &endpoints, settings.ip)?;
            let ifname = next_ifname(mine.iter().copied());
            let endpoint = EndpointRecord::new(&c.id, &n.id, ifname, ip, &settings);
            tx.insert_endpoint(&endpoint)?;
            let first = mine.is_empty();
            Ok(Connected::Plug {
                netns,
                attached: Box::new(crate::daemon::engine::Attached {
                    container: c,
                    endpoint,
                    network: n,
                    first,
                }),
            })
        })
    }

    /// `network disconnect`: removes the network from the container (and its endpoint, if
    /// running); answers what to unplug and where.
    pub fn disconnect(
        &self,
        network: &str,
        container: &str,
    ) -> Result<(Option<std::path::PathBuf>, Vec<EndpointRecord>), EngineError> {
        self.store().write(|tx| {
            let containers = tx.containers()?;
            let mut c = find_container(&containers, container)?.clone();
            let networks = tx.networks()?;
            let n = find(&networks, network, Lookup::Inspect)?.clone();
            let endpoints: Vec<EndpointRecord> = tx
                .endpoints()?
                .iter()
                .filter(|e| e.container == c.id && e.network == n.id)
                .cloned()
                .collect();
            let configured = match &mut c.kind {
                SandboxKind::Managed(m) => {
                    let before = m.config.networks.len();
                    m.config.networks.retain(|(id, _)| id != &n.id);
                    before != m.config.networks.len()
                }
                SandboxKind::Foreign { .. } => !endpoints.is_empty(),
            };
            if !configured {
                return Err(EngineError::NotConnected {
                    container: c.id.to_string(),
                    network: n.name.to_string(),
                });
            }
            for e in &endpoints {
                tx.remove_endpoint(e)?;
            }
            let netns = c.netns();
            let gone = c.managed().is_none() && tx.endpoints()?.iter().all(|e| e.container != c.id);
            if gone {
                tx.remove_container(&c)?;
            } else {
                tx.insert_container(&c)?;
            }
            Ok((netns, endpoints))
        })
    }
}

/// Parses `--ip` for a container.
pub fn parse_ip(s: &str) -> Result<Option<Ipv4Addr>, EngineError> {
    match s.trim() {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| EngineError::BadIp(s.to_owned())),
    }
}
