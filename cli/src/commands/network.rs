//! `netloom network ...`: the same flags, output and exit codes as `docker network ...`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};
use std::net::IpAddr;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{StatusError, check_args};
use crate::api::filters::Filters;
use crate::api::types::{
    IpamConfig, IpamRequest, NetworkConnectRequest, NetworkCreateResponse,
    NetworkDisconnectRequest, NetworkPruneResponse,
};
use crate::client::{Client, escape};

/// `netloom network COMMAND`.
#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

/// `network create` flags (docker's names and defaults).
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network.
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Set driver specific options (key=value), e.g. com.docker.network.driver.mtu=9000.
    #[arg(short = 'o', long = "opt", value_name = "map")]
    opt: Vec<String>,
    /// Set metadata on a network (key=value).
    #[arg(long = "label", value_name = "list", value_parser = validate_label)]
    label: Vec<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    internal: bool,
    /// Enable or disable IPv4 address assignment.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "bool")]
    ipv4: Option<bool>,
    /// Enable or disable IPv6 address assignment (refused: netloom is IPv4-only for now).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "bool")]
    ipv6: Option<bool>,
    /// Enable manual container attachment.
    #[arg(long)]
    attachable: bool,
    /// Create swarm routing-mesh network (refused: no swarm).
    #[arg(long)]
    ingress: bool,
    /// Control the network's scope (only "local").
    #[arg(long, default_value = "")]
    scope: String,
    /// Create a configuration only network (refused).
    #[arg(long = "config-only")]
    config_only: bool,
    /// The network from which to copy the configuration (refused).
    #[arg(long = "config-from", default_value = "")]
    config_from: String,
    /// IP Address Management Driver.
    #[arg(long = "ipam-driver", default_value = "default")]
    ipam_driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long, value_delimiter = ',', value_name = "strings")]
    subnet: Vec<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long = "ip-range", value_delimiter = ',', value_name = "strings")]
    ip_range: Vec<String>,
    /// IPv4 Gateway for the master subnet.
    #[arg(long, value_delimiter = ',', value_name = "strings")]
    gateway: Vec<String>,
    /// Auxiliary IPv4 addresses used by Network driver (name=address).
    #[arg(long = "aux-address", value_name = "map")]
    aux_address: Vec<String>,
    /// Set IPAM driver specific options (key=value).
    #[arg(long = "ipam-opt", value_name = "map")]
    ipam_opt: Vec<String>,
    /// NETWORK.
    #[arg(value_name = "NETWORK")]
    args: Vec<String>,
}

/// `network ls` flags.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display network IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template.
    #[arg(long)]
    format: Option<String>,
    /// Provide filter values (e.g. "driver=bridge").
    #[arg(short, long, value_name = "filter")]
    filter: Vec<String>,
    /// No positional arguments.
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `network inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json' or a Go template.
    #[arg(short, long)]
    format: Option<String>,
    /// Verbose output for diagnostics.
    #[arg(short, long)]
    verbose: bool,
    /// NETWORK [NETWORK...].
    #[arg(value_name = "NETWORK")]
    args: Vec<String>,
}

/// `network rm` flags.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    force: bool,
    /// NETWORK [NETWORK...].
    #[arg(value_name = "NETWORK")]
    args: Vec<String>,
}

/// `network prune` flags.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long, value_name = "filter")]
    filter: Vec<String>,
    /// No positional arguments.
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `network connect` flags.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long, value_delimiter = ',', value_name = "strings")]
    alias: Vec<String>,
    /// driver options for the network.
    #[arg(long = "driver-opt", value_delimiter = ',', value_name = "strings")]
    driver_opt: Vec<String>,
    /// IPv4 address.
    #[arg(long, default_value = "")]
    ip: String,
    /// IPv6 address (refused: netloom is IPv4-only for now).
    #[arg(long, default_value = "")]
    ip6: String,
    /// NETWORK CONTAINER.
    #[arg(value_name = "NETWORK CONTAINER")]
    args: Vec<String>,
}

/// `network disconnect` flags.
#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    force: bool,
    /// NETWORK CONTAINER.
    #[arg(value_name = "NETWORK CONTAINER")]
    args: Vec<String>,
}

/// pflag's label check (`opts.ValidateLabel`).
fn validate_label(value: &str) -> Result<String, String> {
    const WS: &[char] = &[' ', '\t', '\n', '\u{b}', '\u{c}', '\r'];
    let key = value
        .split_once('=')
        .map_or(value, |(k, _)| k)
        .trim_start_matches(WS);
    if key.is_empty() {
        return Err(format!("invalid label '{value}': empty name"));
    }
    if key.contains(WS) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(value.to_owned())
}

/// `key=value` list → map (a missing `=` gives an empty value, as docker's MapOpts).
fn to_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (i.clone(), String::new()),
        })
        .collect()
}

/// Go's `net.ParseCIDR`: address (v4 or v6) and the prefix, or Go's error text.
fn parse_cidr(s: &str) -> Result<(IpAddr, IpAddr, u8), String> {
    let err = || format!("invalid CIDR address: {s}");
    let (addr, len) = s.split_once('/').ok_or_else(err)?;
    let ip: IpAddr = addr.parse().map_err(|_| err())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= max && !len.starts_with('+'))
        .ok_or_else(err)?;
    let masked = match ip {
        IpAddr::V4(v4) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    };
    Ok((ip, masked, len))
}

/// docker CLI's `subnetMatches`: does `subnet` contain the address (or CIDR's address) `data`?
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, String> {
    let (_, net, len) = parse_cidr(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
    let ip = if data.contains('/') {
        Some(parse_cidr(data)?.0)
    } else {
        data.parse::<IpAddr>().ok()
    };
    Ok(match (net, ip) {
        (IpAddr::V4(n), Some(IpAddr::V4(i))) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(i) & mask == u32::from(n)
        }
        (IpAddr::V6(n), Some(IpAddr::V6(i))) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(i) & mask == u128::from(n)
        }
        _ => false,
    })
}

/// The docker CLI's client-side IPAM checks (`createIPAMConfig`), with its texts.
fn ipam_configs(a: &CreateArgs) -> Result<Vec<IpamConfig>, String> {
    if a.subnet.len() < a.ip_range.len() || a.subnet.len() < a.gateway.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut configs: Vec<IpamConfig> = Vec::new();
    for s in &a.subnet {
        for k in &configs {
            if subnet_matches(s, &k.subnet)? || subnet_matches(&k.subnet, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        configs.push(IpamConfig {
            subnet: s.clone(),
            ..Default::default()
        });
    }
    for r in &a.ip_range {
        let mut matched = false;
        for c in configs.iter_mut() {
            parse_cidr(r)?;
            if !subnet_matches(&c.subnet, r)? {
                continue;
            }
            if !c.ip_range.is_empty() {
                return Err(format!(
                    "cannot configure multiple ranges ({r}, {}) on the same subnet ({})",
                    c.ip_range, c.subnet
                ));
            }
            c.ip_range = r.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in &a.gateway {
        let mut matched = false;
        for c in configs.iter_mut() {
            if !subnet_matches(&c.subnet, g)? {
                continue;
            }
            if !c.gateway.is_empty() {
                return Err(format!(
                    "cannot configure multiple gateways ({g}, {}) for the same subnet ({})",
                    c.gateway, c.subnet
                ));
            }
            c.gateway = g.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    for (name, addr) in to_map(&a.aux_address) {
        let mut matched = false;
        for c in configs.iter_mut() {
            if subnet_matches(&c.subnet, &addr)? {
                c.aux_addresses.insert(name.clone(), addr.clone());
                matched = true;
            }
        }
        if !matched {
            return Err(format!("no matching subnet for aux-address {addr}"));
        }
    }
    Ok(configs)
}

fn parse_filters(items: &[String]) -> Result<Filters, StatusError> {
    let mut f = Filters::default();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) => f.add(&k.trim().to_lowercase(), v.trim()),
            None => {
                return Err(StatusError {
                    code: 125,
                    message: format!(
                        "invalid argument {item:?} for \"-f, --filter\" flag: bad format of filter (expected name=value)\n\nSee '--help'."
                    ),
                });
            }
        }
    }
    Ok(f)
}

fn filter_query(f: &Filters) -> String {
    if f.is_empty() {
        String::new()
    } else {
        format!("?filters={}", escape(&f.to_json()))
    }
}

impl NetworkCmd {
    /// Runs the subcommand against the daemon.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        match self {
            NetworkCmd::Create(a) => create(client, a).await,
            NetworkCmd::Ls(a) => ls(client, a).await,
            NetworkCmd::Inspect(a) => inspect(client, a).await,
            NetworkCmd::Rm(a) => rm(client, a).await,
            NetworkCmd::Prune(a) => prune(client, a).await,
            NetworkCmd::Connect(a) => connect(client, a).await,
            NetworkCmd::Disconnect(a) => disconnect(client, a).await,
        }
    }
}

async fn create(client: &Client, a: CreateArgs) -> anyhow::Result<()> {
    check_args("netloom network create", &a.args, 1, Some(1))?;
    let config = ipam_configs(&a).map_err(|message| StatusError { code: 1, message })?;
    let mut body = json!({
        "Name": a.args[0],
        "Driver": a.driver,
        "Scope": a.scope,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": a.ingress,
        "ConfigOnly": a.config_only,
        "IPAM": IpamRequest {
            driver: a.ipam_driver.clone(),
            config: Some(config),
            options: Some(to_map(&a.ipam_opt)),
        },
        "Options": to_map(&a.opt),
        "Labels": to_map(&a.label),
    });
    if let Some(v4) = a.ipv4 {
        body["EnableIPv4"] = v4.into();
    }
    if let Some(v6) = a.ipv6 {
        body["EnableIPv6"] = v6.into();
    }
    if !a.config_from.is_empty() {
        body["ConfigFrom"] = json!({ "Network": a.config_from });
    }
    let resp: NetworkCreateResponse = client.post("/networks/create", &body).await?;
    println!("{}", resp.id);
    Ok(())
}

async fn ls(client: &Client, a: LsArgs) -> anyhow::Result<()> {
    check_args("netloom network ls", &a.args, 0, Some(0))?;
    let filters = parse_filters(&a.filter)?;
    let networks: Vec<serde_json::Value> = client
        .get(&format!("/networks{}", filter_query(&filters)))
        .await?;
    let out = crate::format::network_ls(&networks, a.quiet, a.no_trunc, a.format.as_deref())
        .map_err(|e| StatusError {
            code: 1,
            message: e.to_string(),
        })?;
    print!("{out}");
    Ok(())
}

async fn inspect(client: &Client, a: InspectArgs) -> anyhow::Result<()> {
    check_args("netloom network inspect", &a.args, 1, None)?;
    // A bad template fails before any request, with docker's exit status 64.
    let mut inspector =
        crate::format::Inspector::new(a.format.as_deref()).map_err(super::format_error)?;
    let verbose = if a.verbose { "?verbose=true" } else { "" };
    for name in &a.args {
        match client
            .get_raw(&format!("/networks/{}{verbose}", escape(name)))
            .await
        {
            Ok(raw) => inspector.add(&serde_json::from_slice::<serde_json::Value>(&raw)?),
            Err(e) => inspector.add_error(e.to_string()),
        }
    }
    super::finish_inspect(inspector)
}

async fn rm(client: &Client, a: RmArgs) -> anyhow::Result<()> {
    check_args("netloom network rm", &a.args, 1, None)?;
    let mut failed = false;
    for name in &a.args {
        match client.delete(&format!("/networks/{}", escape(name))).await {
            Ok(()) => println!("{name}"),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        // docker prints its StatusError text too.
        return Err(StatusError {
            code: 1,
            message: "exit status 1".into(),
        }
        .into());
    }
    Ok(())
}

/// Asks docker's prune question on stdout; only "y" or "Y" (trimmed) confirms.
fn confirm(message: &str) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    write!(out, "{message} [y/N] ")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the answer from stdin")?;
    Ok(line.trim().eq_ignore_ascii_case("y"))
}

async fn prune(client: &Client, a: PruneArgs) -> anyhow::Result<()> {
    check_args("netloom network prune", &a.args, 0, Some(0))?;
    let filters = parse_filters(&a.filter)?;
    if !a.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
        )?
    {
        return Ok(());
    }
    let resp: NetworkPruneResponse = client
        .post(
            &format!("/networks/prune{}", filter_query(&filters)),
            &json!({}),
        )
        .await?;
    let deleted = resp.networks_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        let mut out = String::from("Deleted Networks:\n");
        for n in &deleted {
            out.push_str(n);
            out.push('\n');
        }
        println!("{out}");
    }
    Ok(())
}

async fn connect(client: &Client, a: ConnectArgs) -> anyhow::Result<()> {
    check_args("netloom network connect", &a.args, 2, Some(2))?;
    let mut ipam = serde_json::Map::new();
    if !a.ip.is_empty() {
        ipam.insert("IPv4Address".into(), a.ip.clone().into());
    }
    if !a.ip6.is_empty() {
        ipam.insert("IPv6Address".into(), a.ip6.clone().into());
    }
    let endpoint = json!({
        "IPAMConfig": if ipam.is_empty() { serde_json::Value::Null } else { ipam.into() },
        "Aliases": a.alias,
        "DriverOpts": to_map(&a.driver_opt),
    });
    let body = NetworkConnectRequest {
        container: a.args[1].clone(),
        endpoint_config: Some(endpoint),
    };
    let _: serde_json::Value = client
        .post(&format!("/networks/{}/connect", escape(&a.args[0])), &body)
        .await?;
    Ok(())
}

async fn disconnect(client: &Client, a: DisconnectArgs) -> anyhow::Result<()> {
    check_args("netloom network disconnect", &a.args, 2, Some(2))?;
    let body = NetworkDisconnectRequest {
        container: a.args[1].clone(),
        force: a.force,
    };
    let _: serde_json::Value = client
        .post(
            &format!("/networks/{}/disconnect", escape(&a.args[0])),
            &body,
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn create_args(line: &str) -> CreateArgs {
        let argv: Vec<&str> = ["netloom", "network", "create"]
            .into_iter()
            .chain(line.split_whitespace())
            .collect();
        match crate::commands::Cli::try_parse_from(argv).unwrap().command {
            crate::commands::Command::Network(NetworkCmd::Create(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_side_ipam_checks_match_docker() {
        let err = |l: &str| ipam_configs(&create_args(l)).unwrap_err();
        assert_eq!(
            err("--gateway 1.2.3.4 x"),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            err("--subnet 10.0.0.0/8 --subnet 10.1.0.0/16 x"),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            err("--subnet 10.0.0.0/8 --gateway 11.0.0.1 x"),
            "no matching subnet for gateway 11.0.0.1"
        );
        assert_eq!(
            err("--subnet 10.0.0.0/8 --ip-range foo x"),
            "invalid CIDR address: foo"
        );
        assert_eq!(
            err("--subnet foo --gateway 1.1.1.1 x"),
            "invalid subnet: invalid CIDR address: foo"
        );
        assert_eq!(
            err("--subnet 10.0.0.0/8 --aux-address a=11.0.0.9 x"),
            "no matching subnet for aux-address 11.0.0.9"
        );
        let ok = ipam_configs(&create_args(
            "--subnet 10.1.0.0/16 --gateway 10.1.0.254 --ip-range 10.1.2.0/24 --aux-address r=10.1.0.9 x",
        ))
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].gateway, "10.1.0.254");
        assert_eq!(ok[0].ip_range, "10.1.2.0/24");
        assert_eq!(ok[0].aux_addresses["r"], "10.1.0.9");
        // A lone bad subnet is the daemon's to judge, as with docker.
        assert_eq!(
            ipam_configs(&create_args("--subnet foo x")).unwrap()[0].subnet,
            "foo"
        );
    }

    #[test]
    fn labels_are_checked_like_pflag() {
        assert!(validate_label("a=b").is_ok());
        assert_eq!(
            validate_label("=b").unwrap_err(),
            "invalid label '=b': empty name"
        );
        assert_eq!(
            validate_label("a b=c").unwrap_err(),
            "label 'a b' contains whitespaces"
        );
    }
}
