//! Engine API wire types: serde structs mirroring Docker's field names and order, so that the
//! stock docker CLI and `netloom` read the same bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{NetworkRecord, rfc3339_nano};

/// `IPAM.Config[]` of a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IpamConfig {
    /// The subnet in CIDR form.
    #[serde(rename = "Subnet", default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// Where container addresses come from.
    #[serde(rename = "IPRange", default, skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    /// The gateway address.
    #[serde(rename = "Gateway", default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// Named reserved addresses.
    #[serde(
        rename = "AuxiliaryAddresses",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aux_addresses: BTreeMap<String, String>,
}

/// `IPAM` of a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ipam {
    /// Always `default`.
    #[serde(rename = "Driver", default)]
    pub driver: String,
    /// IPAM driver options; `null` for built-in networks, `{}` for user networks (as Docker).
    #[serde(rename = "Options", default)]
    pub options: Option<BTreeMap<String, String>>,
    /// The address configs; `null` for `host` and `none`.
    #[serde(rename = "Config", default)]
    pub config: Option<Vec<IpamConfig>>,
}

/// `ConfigFrom` (always empty: netloom has no config-only networks).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigReference {
    /// The config network.
    #[serde(rename = "Network", default)]
    pub network: String,
}

/// One endpoint under a network's `Containers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndpointResource {
    /// Container name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Endpoint id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// MAC address.
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// `a.b.c.d/len`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// Empty: no IPv6 yet.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// A network as `GET /networks/{id}` and `GET /networks` return it (Docker's `network.Inspect`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkResource {
    /// Name.
    #[serde(rename = "Name")]
    pub name: String,
    /// 64-hex id.
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339 with nanoseconds, local offset.
    #[serde(rename = "Created")]
    pub created: String,
    /// Always `local`.
    #[serde(rename = "Scope")]
    pub scope: String,
    /// `bridge`, `host` or `null`.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// Whether IPv4 is enabled.
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    /// Whether IPv6 is enabled (never, yet).
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Addressing.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// `--internal`.
    #[serde(rename = "Internal")]
    pub internal: bool,
    /// `--attachable`.
    #[serde(rename = "Attachable")]
    pub attachable: bool,
    /// Always false (no swarm).
    #[serde(rename = "Ingress")]
    pub ingress: bool,
    /// Always empty.
    #[serde(rename = "ConfigFrom")]
    pub config_from: ConfigReference,
    /// Always false.
    #[serde(rename = "ConfigOnly")]
    pub config_only: bool,
    /// Endpoints by container id.
    #[serde(rename = "Containers")]
    pub containers: BTreeMap<String, EndpointResource>,
    /// Driver options.
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
    /// Labels.
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

impl NetworkResource {
    /// The API view of a stored network and its endpoints.
    pub fn new(n: &NetworkRecord, containers: BTreeMap<String, EndpointResource>) -> Self {
        let ipam = match &n.ipam {
            Some(i) => Ipam {
                driver: "default".into(),
                options: if n.builtin {
                    None
                } else {
                    Some(BTreeMap::new())
                },
                config: Some(vec![IpamConfig {
                    subnet: i.subnet.to_string(),
                    ip_range: i.ip_range.map(|r| r.to_string()).unwrap_or_default(),
                    gateway: if i.user_subnet && !i.user_gateway {
                        String::new()
                    } else {
                        i.gateway.to_string()
                    },
                    aux_addresses: i
                        .aux_addresses
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect(),
                }]),
            },
            None => Ipam {
                driver: "default".into(),
                options: None,
                config: None,
            },
        };
        NetworkResource {
            name: n.name.to_string(),
            id: n.id.to_string(),
            created: rfc3339_nano(&n.created),
            scope: "local".into(),
            driver: n.driver.as_str().into(),
            enable_ipv4: true,
            enable_ipv6: false,
            ipam,
            internal: n.internal,
            attachable: n.attachable,
            ingress: false,
            config_from: ConfigReference::default(),
            config_only: false,
            containers,
            options: n.options.clone(),
            labels: n.labels.clone(),
        }
    }
}

/// The body of `POST /networks/create` (fields the docker CLI sends; unknown ones are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NetworkCreateRequest {
    /// Name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Driver.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// Scope (only `local` or empty is accepted).
    #[serde(rename = "Scope")]
    pub scope: String,
    /// `--internal`.
    #[serde(rename = "Internal")]
    pub internal: bool,
    /// `--attachable`.
    #[serde(rename = "Attachable")]
    pub attachable: bool,
    /// `--ingress` (swarm only; refused).
    #[serde(rename = "Ingress")]
    pub ingress: bool,
    /// `--config-only` (refused).
    #[serde(rename = "ConfigOnly")]
    pub config_only: bool,
    /// `--ipv6`.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    /// `--ipv4`.
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: Option<bool>,
    /// Addressing.
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamRequest>,
    /// `--opt`.
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
    /// `--label`.
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `--config-from` (refused).
    #[serde(rename = "ConfigFrom")]
    pub config_from: Option<ConfigReference>,
}

/// `IPAM` in a create request.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct IpamRequest {
    /// IPAM driver.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// Configs.
    #[serde(rename = "Config")]
    pub config: Option<Vec<IpamConfig>>,
    /// IPAM options.
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
}

/// The answer to `POST /networks/create`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkCreateResponse {
    /// The new id.
    #[serde(rename = "Id")]
    pub id: String,
    /// Always empty.
    #[serde(rename = "Warning")]
    pub warning: String,
}

/// The answer to `POST /networks/prune`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkPruneResponse {
    /// Names of the removed networks; `null` when none (as Docker).
    #[serde(rename = "NetworksDeleted")]
    pub networks_deleted: Option<Vec<String>>,
}

/// Body of `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConnectRequest {
    /// Container name or id.
    #[serde(rename = "Container")]
    pub container: String,
    /// Endpoint settings (`--ip`, `--alias`, ...), kept as JSON until containers exist.
    #[serde(rename = "EndpointConfig", skip_serializing_if = "Option::is_none")]
    pub endpoint_config: Option<serde_json::Value>,
}

/// Body of `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkDisconnectRequest {
    /// Container name or id.
    #[serde(rename = "Container")]
    pub container: String,
    /// `-f`.
    #[serde(rename = "Force")]
    pub force: bool,
}

/// Body of `POST /netloom/attach` (a netloom extension: plug a foreign namespace into a network).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachRequestBody {
    /// Network name or id.
    #[serde(rename = "Network")]
    pub network: String,
    /// Sandbox name (generated when empty); reuse it to attach the same namespace to more
    /// networks.
    #[serde(rename = "Name")]
    pub name: String,
    /// The namespace file, e.g. `/run/netns/NAME`.
    #[serde(rename = "Netns", skip_serializing_if = "String::is_empty")]
    pub netns: String,
    /// Or the pid of a process in the namespace (the daemon reads `/proc/PID/ns/net`).
    #[serde(rename = "Pid", skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `--ip`.
    #[serde(rename = "IPv4Address", skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    /// `--mac-address`.
    #[serde(rename = "MacAddress", skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// `--alias`.
    #[serde(rename = "Aliases", skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// The answer to `POST /netloom/attach`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachResponse {
    /// The sandbox id.
    #[serde(rename = "Id")]
    pub id: String,
    /// The sandbox name.
    #[serde(rename = "Name")]
    pub name: String,
    /// The new endpoint's id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The interface inside the namespace.
    #[serde(rename = "Interface")]
    pub interface: String,
    /// `a.b.c.d/len`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// MAC address.
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// The network's gateway.
    #[serde(rename = "Gateway")]
    pub gateway: String,
}

/// Body of `POST /netloom/detach`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DetachRequestBody {
    /// Sandbox name or id.
    #[serde(rename = "Name")]
    pub name: String,
    /// Only this network (all when empty).
    #[serde(rename = "Network", skip_serializing_if = "String::is_empty")]
    pub network: String,
}

/// The answer to `POST /netloom/detach`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetachResponse {
    /// Interfaces removed from the namespace.
    #[serde(rename = "Interfaces")]
    pub interfaces: Vec<String>,
}

/// The JSON error body every failed request carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The message the CLI prints after `Error response from daemon: `.
    pub message: String,
}

/// Serializes like Go's `json.Encoder`: compact, HTML-sensitive characters escaped, a trailing
/// newline. The docker CLI re-indents these bytes as they are, so the escaping shows to users.
pub fn to_go_json<T: Serialize>(value: &T) -> Vec<u8> {
    let raw = serde_json::to_string(value).expect("API types always serialize");
    let mut out = String::with_capacity(raw.len() + 1);
    // These characters only occur inside JSON strings, so replacing them keeps the JSON valid.
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_html() {
        let v = ErrorResponse {
            message: "a<b>&c".into(),
        };
        assert_eq!(
            to_go_json(&v),
            b"{\"message\":\"a\\u003cb\\u003e\\u0026c\"}\n"
        );
    }
}
