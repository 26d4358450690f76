//! Engine-API shapes for containers: the create body, `GET /containers/json` entries and
//! `GET /containers/{id}/json`, in Docker's field names and order (the subset netloom has: no
//! images, no volumes).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::daemon::containers::{CreateContainer, parse_ip};
use crate::daemon::engine::EngineError;
use crate::format::container::StateInfo;
use crate::model::{
    ContainerConfig, ContainerPort, ContainerRecord, EndpointRecord, EndpointSettings, NetworkMode,
    NetworkRecord, PortMapping, Status, rfc3339_nano,
};
use crate::ports::{parse_binding, parse_port_key};

/// `EndpointsConfig` entries of a create body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EndpointConfigBody {
    /// `--ip`.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfigBody>,
    /// `--network-alias`.
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    /// `--mac-address` (API ≥ 1.44).
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
}

/// `IPAMConfig` of an endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IpamConfigBody {
    /// The address asked for.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// `HostConfig` of a create body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HostConfigBody {
    /// `--network`.
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
    /// `--dns`.
    #[serde(rename = "Dns")]
    pub dns: Option<Vec<String>>,
    /// `--dns-search`.
    #[serde(rename = "DnsSearch")]
    pub dns_search: Option<Vec<String>>,
    /// `--dns-option`.
    #[serde(rename = "DnsOptions")]
    pub dns_options: Option<Vec<String>>,
    /// `--add-host`.
    #[serde(rename = "ExtraHosts")]
    pub extra_hosts: Option<Vec<String>>,
    /// `-p`: container port (`80/tcp`) → host bindings.
    #[serde(rename = "PortBindings")]
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBindingBody>>>>,
}

/// One `PortBindings` entry (Docker's `nat.PortBinding`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PortBindingBody {
    /// The host address (empty: `0.0.0.0` and `::`).
    #[serde(rename = "HostIp")]
    pub host_ip: Option<String>,
    /// The host port or range (empty: any free port).
    #[serde(rename = "HostPort")]
    pub host_port: Option<String>,
}

/// `NetworkingConfig` of a create body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NetworkingConfigBody {
    /// Per network.
    #[serde(rename = "EndpointsConfig")]
    pub endpoints_config: Option<BTreeMap<String, EndpointConfigBody>>,
}

/// The body of `POST /containers/create` (Docker's `container.CreateRequest` subset).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ContainerCreateBody {
    /// `--hostname`.
    #[serde(rename = "Hostname")]
    pub hostname: String,
    /// The command.
    #[serde(rename = "Cmd")]
    pub cmd: Option<Vec<String>>,
    /// `-t`.
    #[serde(rename = "Tty")]
    pub tty: bool,
    /// `-i`.
    #[serde(rename = "OpenStdin")]
    pub open_stdin: bool,
    /// The exposed container ports (`{"80/tcp": {}}`); the docker CLI adds every `-p` port.
    #[serde(rename = "ExposedPorts")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// Deprecated container-wide `--mac-address`.
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// Host settings.
    #[serde(rename = "HostConfig")]
    pub host_config: HostConfigBody,
    /// Network settings.
    #[serde(rename = "NetworkingConfig")]
    pub networking_config: NetworkingConfigBody,
}

impl ContainerCreateBody {
    /// The create request with `name` from the query.
    pub fn into_request(self, name: String) -> Result<CreateContainer, EngineError> {
        let network = self.host_config.network_mode.clone();
        let endpoint_body = self
            .networking_config
            .endpoints_config
            .as_ref()
            .and_then(|m| m.get(&network).or_else(|| m.values().next()))
            .cloned()
            .unwrap_or_default();
        let ip = parse_ip(
            endpoint_body
                .ipam_config
                .map(|c| c.ipv4_address)
                .unwrap_or_default()
                .as_str(),
        )?;
        let mac_text = if endpoint_body.mac_address.is_empty() {
            self.mac_address.clone()
        } else {
            endpoint_body.mac_address.clone()
        };
        let mac = match mac_text.trim() {
            "" => None,
            m => Some(m.parse().map_err(|_| EngineError::BadMac(m.to_owned()))?),
        };
        let publishes = self
            .host_config
            .port_bindings
            .as_ref()
            .is_some_and(|p| !p.is_empty());
        let (exposed_ports, port_bindings) = parse_ports(
            self.exposed_ports.as_ref(),
            self.host_config.port_bindings.as_ref(),
        )?;
        Ok(CreateContainer {
            name,
            network,
            endpoint: EndpointSettings {
                ip,
                mac,
                aliases: endpoint_body.aliases.unwrap_or_default(),
            },
            config: ContainerConfig {
                cmd: self.cmd.unwrap_or_default(),
                hostname: Some(self.hostname).filter(|h| !h.is_empty()),
                networks: Vec::new(),
                dns: self.host_config.dns.unwrap_or_default(),
                dns_search: self.host_config.dns_search.unwrap_or_default(),
                dns_options: self.host_config.dns_options.unwrap_or_default(),
                extra_hosts: self.host_config.extra_hosts.unwrap_or_default(),
                tty: self.tty,
                open_stdin: self.open_stdin,
                exposed_ports,
                port_bindings,
            },
            publishes,
        })
    }
}

/// `Config.ExposedPorts` and `HostConfig.PortBindings`, parsed once: exposed ports sorted as
/// Docker's map keys, bindings per container port in the order given.
type ParsedPorts = (Vec<ContainerPort>, Vec<PortMapping>);

/// Most port mappings one container may publish (Docker has no limit; a container asking
/// for all 65535 ports would hold 131070 host sockets).
pub const MAX_PUBLISHED_PER_CONTAINER: usize = 4096;

fn parse_ports(
    exposed: Option<&BTreeMap<String, Value>>,
    bindings: Option<&BTreeMap<String, Option<Vec<PortBindingBody>>>>,
) -> Result<ParsedPorts, EngineError> {
    let mut ports = Vec::new();
    for key in exposed.into_iter().flat_map(BTreeMap::keys) {
        ports.push(parse_port_key(key)?);
    }
    ports.sort();
    ports.dedup();
    let mut mappings = Vec::new();
    for (key, list) in bindings.into_iter().flatten() {
        let port = parse_port_key(key)?;
        for b in list.iter().flatten() {
            mappings.push(parse_binding(
                port,
                b.host_ip.as_deref().unwrap_or_default(),
                b.host_port.as_deref().unwrap_or_default(),
            )?);
        }
    }
    // Each mapping costs one or two host sockets for as long as the container runs.
    if mappings.len() > MAX_PUBLISHED_PER_CONTAINER {
        return Err(EngineError::TooManyPublished {
            count: mappings.len(),
            max: MAX_PUBLISHED_PER_CONTAINER,
        });
    }
    // Stable: the order given per port is kept.
    mappings.sort_by_key(|m| m.container);
    Ok((ports, mappings))
}

/// Docker's `NetworkMode` string of a container.
pub fn mode_name(mode: &NetworkMode, networks: &[NetworkRecord]) -> String {
    match mode {
        NetworkMode::Host => "host".into(),
        NetworkMode::None => "none".into(),
        NetworkMode::Container(id) => format!("container:{id}"),
        NetworkMode::Bridge(id) => networks
            .iter()
            .find(|n| &n.id == id)
            .map_or_else(|| id.to_string(), |n| n.name.to_string()),
    }
}

fn quote_command(cmd: &[String]) -> String {
    cmd.join(" ")
}

/// Docker's `Status` text for `ps` (`Up 5 seconds`, `Exited (0) 2 minutes ago`, `Created`).
fn status_text(c: &ContainerRecord) -> String {
    let Some(m) = c.managed() else {
        return "Up".into();
    };
    let st = &m.state;
    let info = StateInfo {
        running: st.status == Status::Running,
        started_at: st.started_at.map(|t| t.timestamp()),
        finished_at: st.finished_at.map(|t| t.timestamp()),
        exit_code: i64::from(st.exit_code),
        ..StateInfo::default()
    };
    crate::format::container::status_text(&info, chrono::Utc::now().timestamp())
}

fn endpoint_json(
    e: Option<&EndpointRecord>,
    n: &NetworkRecord,
    settings_aliases: &[String],
) -> Value {
    let prefix = n.ipam.as_ref().map_or(0, |i| i.subnet.prefix_len());
    let gateway = n
        .ipam
        .as_ref()
        .map(|i| i.gateway.to_string())
        .unwrap_or_default();
    json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": if settings_aliases.is_empty() { Value::Null } else { json!(settings_aliases) },
        "MacAddress": e.map(|e| e.mac.to_string()).unwrap_or_default(),
        "DriverOpts": null,
        "GwPriority": 0,
        "NetworkID": n.id.to_string(),
        "EndpointID": e.map(|e| e.id.to_string()).unwrap_or_default(),
        "Gateway": if e.is_some() { gateway } else { String::new() },
        "IPAddress": e.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": if e.is_some() { prefix } else { 0 },
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": null,
    })
}

/// The networks a container is on, with its live endpoints (stopped: empty values, as Docker).
fn networks_json(
    c: &ContainerRecord,
    endpoints: &[EndpointRecord],
    networks: &[NetworkRecord],
) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    match c.managed() {
        Some(m) => match &m.mode {
            NetworkMode::Host | NetworkMode::None => {
                let name = if m.mode == NetworkMode::Host {
                    "host"
                } else {
                    "none"
                };
                if let Some(n) = networks.iter().find(|n| n.name.as_str() == name) {
                    out.insert(name.into(), endpoint_json(None, n, &[]));
                }
            }
            NetworkMode::Container(_) => {}
            NetworkMode::Bridge(_) => {
                for (net_id, settings) in &m.config.networks {
                    let Some(n) = networks.iter().find(|n| &n.id == net_id) else {
                        continue;
                    };
                    let e = endpoints.iter().find(|e| &e.network == net_id);
                    out.insert(n.name.to_string(), endpoint_json(e, n, &settings.aliases));
                }
            }
        },
        None => {
            for e in endpoints {
                if let Some(n) = networks.iter().find(|n| n.id == e.network) {
                    out.insert(n.name.to_string(), endpoint_json(Some(e), n, &e.aliases));
                }
            }
        }
    }
    out
}

/// `NetworkSettings.Ports` (Docker's `nat.PortMap`): while the container runs on a network
/// that publishes, every exposed port with its host bindings (`null` when it is not
/// published); otherwise `{}`.
fn ports_json(c: &ContainerRecord) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let Some(m) = c.managed().filter(|m| m.state.status == Status::Running) else {
        return out;
    };
    let Some(p) = &m.state.publication else {
        return out;
    };
    for port in &m.config.exposed_ports {
        let bound: Vec<Value> = p
            .ports
            .iter()
            .filter(|b| b.container == *port)
            .map(|b| json!({"HostIp": b.host_ip.to_string(), "HostPort": b.host_port.to_string()}))
            .collect();
        let v = if bound.is_empty() {
            Value::Null
        } else {
            Value::Array(bound)
        };
        out.insert(port.key(), v);
    }
    out
}

/// The `Ports` of a `GET /containers/json` entry (Docker's `container.Port`s), from
/// `NetworkSettings.Ports`.
fn ports_summary(c: &ContainerRecord) -> Vec<Value> {
    let Some(m) = c.managed() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let bound = m.state.publication.as_ref().map(|p| &p.ports[..]);
    if m.state.status != Status::Running || bound.is_none() {
        return out;
    }
    for port in &m.config.exposed_ports {
        let mine: Vec<_> = bound
            .into_iter()
            .flatten()
            .filter(|b| b.container == *port)
            .collect();
        if mine.is_empty() {
            out.push(json!({"PrivatePort": port.port, "Type": port.proto.as_str()}));
        }
        for b in mine {
            out.push(json!({
                "IP": b.host_ip.to_string(),
                "PrivatePort": port.port,
                "PublicPort": b.host_port,
                "Type": port.proto.as_str(),
            }));
        }
    }
    out
}

/// `HostConfig.PortBindings` as given (`{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}`).
fn port_bindings_json(config: &ContainerConfig) -> Value {
    let mut out = serde_json::Map::new();
    for m in &config.port_bindings {
        let entry = out.entry(m.container.key()).or_insert_with(|| json!([]));
        if let Value::Array(list) = entry {
            list.push(json!({
                "HostIp": m.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": m.host_port.map(|p| p.to_string()).unwrap_or_default(),
            }));
        }
    }
    Value::Object(out)
}

/// One entry of `GET /containers/json`.
pub fn summary(
    c: &ContainerRecord,
    endpoints: &[EndpointRecord],
    networks: &[NetworkRecord],
) -> Value {
    let (cmd, mode, state) = match c.managed() {
        Some(m) => (
            quote_command(&m.config.cmd),
            mode_name(&m.mode, networks),
            m.state.status.as_str(),
        ),
        None => (String::new(), String::new(), "running"),
    };
    json!({
        "Id": c.id.to_string(),
        "Names": [format!("/{}", c.name)],
        "Image": "",
        "ImageID": "",
        "Command": cmd,
        "Created": c.created.timestamp(),
        "Ports": ports_summary(c),
        "Labels": {},
        "State": state,
        "Status": status_text(c),
        "HostConfig": { "NetworkMode": mode },
        "NetworkSettings": { "Networks": networks_json(c, endpoints, networks) },
        "Mounts": [],
    })
}

/// `GET /containers/{id}/json`.
pub fn inspect(
    c: &ContainerRecord,
    endpoints: &[EndpointRecord],
    networks: &[NetworkRecord],
    dir: &std::path::Path,
) -> Value {
    let nets = networks_json(c, endpoints, networks);
    let (path, args, state, config, host_config) = match c.managed() {
        Some(m) => {
            let st = &m.state;
            let t = |x: &Option<chrono::DateTime<chrono::FixedOffset>>| {
                x.as_ref()
                    .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339_nano)
            };
            (
                m.config.cmd.first().cloned().unwrap_or_default(),
                m.config.cmd.iter().skip(1).cloned().collect::<Vec<_>>(),
                json!({
                    "Status": st.status.as_str(),
                    "Running": st.status == Status::Running,
                    "Paused": false,
                    "Restarting": false,
                    "OOMKilled": false,
                    "Dead": false,
                    "Pid": st.pid.unwrap_or(0),
                    "ExitCode": st.exit_code,
                    "Error": "",
                    "StartedAt": t(&st.started_at),
                    "FinishedAt": t(&st.finished_at),
                }),
                {
                    let mut config = json!({
                        "Hostname": c.hostname(),
                        "Domainname": "",
                        "User": "",
                        "AttachStdin": m.config.open_stdin,
                        "AttachStdout": true,
                        "AttachStderr": true,
                    });
                    // `omitempty`: absent when nothing is exposed.
                    if !m.config.exposed_ports.is_empty() {
                        let exposed: serde_json::Map<String, Value> = m
                            .config
                            .exposed_ports
                            .iter()
                            .map(|p| (p.key(), json!({})))
                            .collect();
                        config["ExposedPorts"] = Value::Object(exposed);
                    }
                    let rest = json!({
                    "Tty": m.config.tty,
                    "OpenStdin": m.config.open_stdin,
                    "StdinOnce": false,
                    "Env": null,
                    "Cmd": m.config.cmd,
                    "Image": "",
                    "Volumes": null,
                    "WorkingDir": "",
                    "Entrypoint": null,
                    "Labels": {},
                    });
                    if let (Value::Object(head), Value::Object(tail)) = (&mut config, rest) {
                        head.extend(tail);
                    }
                    config
                },
                json!({
                    "NetworkMode": mode_name(&m.mode, networks),
                    "PortBindings": port_bindings_json(&m.config),
                    "Dns": m.config.dns,
                    "DnsOptions": m.config.dns_options,
                    "DnsSearch": m.config.dns_search,
                    "ExtraHosts": if m.config.extra_hosts.is_empty() { Value::Null } else { json!(m.config.extra_hosts) },
                }),
            )
        }
        None => (
            String::new(),
            Vec::new(),
            json!({"Status": "running", "Running": true}),
            json!({}),
            json!({}),
        ),
    };
    let first = nets.values().next().cloned().unwrap_or(Value::Null);
    let on_default_bridge = nets.contains_key("bridge");
    let top = |k: &str| {
        if on_default_bridge {
            first[k].clone()
        } else {
            json!("")
        }
    };
    json!({
        "Id": c.id.to_string(),
        "Created": rfc3339_nano(&c.created),
        "Path": path,
        "Args": args,
        "State": state,
        "Image": "",
        "ResolvConfPath": dir.join("resolv.conf").display().to_string(),
        "HostnamePath": dir.join("hostname").display().to_string(),
        "HostsPath": dir.join("hosts").display().to_string(),
        "LogPath": dir.join("container.log").display().to_string(),
        "Name": format!("/{}", c.name),
        "RestartCount": 0,
        "Driver": "",
        "Platform": "linux",
        "HostConfig": host_config,
        "Mounts": [],
        "Config": config,
        "NetworkSettings": {
            "SandboxID": "",
            "SandboxKey": c.netns().map(|p| p.display().to_string()).unwrap_or_default(),
            "Ports": ports_json(c),
            "Gateway": top("Gateway"),
            "IPAddress": top("IPAddress"),
            "IPPrefixLen": if on_default_bridge { first["IPPrefixLen"].clone() } else { json!(0) },
            "MacAddress": top("MacAddress"),
            "Networks": nets,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        BoundPort, ContainerName, Managed, ObjectId, Proto, Publication, RunState, SandboxKind,
    };

    fn body(json: &str) -> ContainerCreateBody {
        serde_json::from_str(json).unwrap()
    }

    fn tcp(port: u16) -> ContainerPort {
        ContainerPort {
            port,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn ports_are_parsed_once_at_the_edge() {
        let req = body(
            r#"{"Cmd":["true"],"ExposedPorts":{"8080/tcp":{},"80/tcp":{},"53/udp":{}},
                "HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8081"},{"HostIp":"::1","HostPort":""}],"53/udp":null}}}"#,
        )
        .into_request(String::new())
        .unwrap();
        let keys: Vec<String> = req.config.exposed_ports.iter().map(|p| p.key()).collect();
        assert_eq!(keys, ["53/udp", "80/tcp", "8080/tcp"]);
        assert_eq!(req.config.port_bindings.len(), 2);
        assert_eq!(
            port_bindings_json(&req.config),
            json!({"80/tcp":[{"HostIp":"","HostPort":"8081"},{"HostIp":"::1","HostPort":""}]})
        );
        assert!(req.publishes);
    }

    #[test]
    fn bad_ports_are_refused_with_dockers_text() {
        let e = body(r#"{"Cmd":["true"],"HostConfig":{"PortBindings":{"80-81/tcp":[]}}}"#)
            .into_request(String::new())
            .unwrap_err();
        assert_eq!(e.to_string(), "invalid port specification: \"80-81\"");
        let e =
            body(r#"{"Cmd":["true"],"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"x"}]}}}"#)
                .into_request(String::new())
                .unwrap_err();
        assert_eq!(e.to_string(), "invalid port specification: \"x\"");
    }

    #[test]
    fn published_ports_per_container_are_limited() {
        let bindings = |n: u16| {
            let map: serde_json::Map<String, Value> = (1..=n)
                .map(|p| (format!("{p}/tcp"), json!([{"HostPort": ""}])))
                .collect();
            body(&json!({"Cmd": ["true"], "HostConfig": {"PortBindings": map}}).to_string())
                .into_request(String::new())
        };
        assert!(bindings(4096).is_ok());
        let e = bindings(4097).unwrap_err();
        assert_eq!(
            e.to_string(),
            "too many published ports: 4097 (netloom publishes at most 4096 per container): publish fewer ports or smaller ranges"
        );
    }

    #[test]
    fn running_containers_show_their_ports_like_docker() {
        let mut config = ContainerConfig {
            cmd: vec!["true".into()],
            exposed_ports: vec![tcp(80), tcp(90)],
            ..ContainerConfig::default()
        };
        config.exposed_ports.sort();
        let bound = |ip: &str| BoundPort {
            container: tcp(80),
            host_ip: ip.parse().unwrap(),
            host_port: 8081,
        };
        let mut c = ContainerRecord {
            id: ObjectId::random(),
            name: "c1".parse::<ContainerName>().unwrap(),
            created: crate::daemon::engine::now(),
            kind: SandboxKind::Managed(Box::new(Managed {
                mode: NetworkMode::Bridge(ObjectId::random()),
                config,
                state: RunState {
                    status: Status::Running,
                    publication: Some(Publication {
                        network: ObjectId::random(),
                        ports: vec![bound("0.0.0.0"), bound("::")],
                    }),
                    ..RunState::default()
                },
            })),
        };
        assert_eq!(
            Value::Object(ports_json(&c)),
            json!({"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8081"},{"HostIp":"::","HostPort":"8081"}],"90/tcp":null})
        );
        assert_eq!(
            serde_json::to_string(&ports_summary(&c)).unwrap(),
            r#"[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8081,"Type":"tcp"},{"IP":"::","PrivatePort":80,"PublicPort":8081,"Type":"tcp"},{"PrivatePort":90,"Type":"tcp"}]"#
        );
        if let SandboxKind::Managed(m) = &mut c.kind {
            m.state.status = Status::Exited;
        }
        assert_eq!(Value::Object(ports_json(&c)), json!({}));
        assert!(ports_summary(&c).is_empty());
    }
}
