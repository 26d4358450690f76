//! Writes a container's private `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` (SPEC
//! section 4), which the shim bind-mounts over the host's; the contents come from the pure
//! generators in [`crate::containers::files`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::containers::files::{
    DnsMode, DnsOverrides, ExtraHost, HostResolvConf, HostsInput, Nameserver, etc_hosts,
    host_resolv_conf_path, hostname_file, resolv_conf, resolve_extra_hosts,
};
use crate::daemon::containers::StartPlan;
use crate::model::{ContainerRecord, NetworkMode};

/// What writing a container's files decided.
#[derive(Debug, Default)]
pub struct ContainerFiles {
    /// (file, target) bind mounts for the shim.
    pub binds: Vec<(PathBuf, &'static str)>,
    /// Where the embedded DNS forwards unknown names (user networks only).
    pub upstreams: Vec<std::net::SocketAddr>,
    /// The container sets `ndots` itself (the DNS server then answers unknown single-label
    /// names with no records instead of forwarding them, as Docker).
    pub ndots_set: bool,
}

/// The daemon namespace's resolv.conf as Docker picks it (systemd-resolved's upstream file
/// when `/etc/resolv.conf` points at its stub): its path and text.
fn host_resolv() -> (&'static str, Option<String>) {
    let etc = std::fs::read_to_string("/etc/resolv.conf").ok();
    let host_path = host_resolv_conf_path(etc.as_deref());
    let host_text = if host_path == "/etc/resolv.conf" {
        etc
    } else {
        std::fs::read_to_string(host_path).ok()
    };
    (host_path, host_text)
}

/// Where an embedded DNS server without container overrides forwards: the daemon's own
/// upstreams (loopback ones included, since forwarding happens in the daemon's namespace).
pub fn host_upstreams() -> Vec<std::net::SocketAddr> {
    let (path, text) = host_resolv();
    resolv_conf(
        &HostResolvConf {
            path,
            content: text.as_deref(),
        },
        &DnsOverrides::default(),
        DnsMode::Internal,
    )
    .upstreams
    .iter()
    .map(|u| std::net::SocketAddr::new(u.server.addr, 53))
    .collect()
}

/// Writes the files into `dir`.
pub fn write_container_files(
    c: &ContainerRecord,
    plan: &StartPlan,
    dir: &Path,
) -> std::io::Result<ContainerFiles> {
    let invalid = |e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
    };
    let m = c.managed().expect("only managed containers have files");
    if matches!(m.mode, NetworkMode::Host | NetworkMode::Container(_))
        && m.config.extra_hosts.is_empty()
    {
        // Host mode uses the host's files and container: mode the owner's, as Docker does.
        return Ok(ContainerFiles::default());
    }
    let hostname = c.hostname();
    let extra: Vec<ExtraHost> = m
        .config
        .extra_hosts
        .iter()
        .map(|h| ExtraHost::parse_api(h))
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(&e))?;
    // host-gateway: the gateway of the container's first network.
    let gateways: Vec<IpAddr> = plan
        .endpoints
        .first()
        .and_then(|(_, n)| n.ipam.as_ref())
        .map(|i| vec![IpAddr::V4(i.gateway)])
        .unwrap_or_default();
    let records = resolve_extra_hosts(&extra, &gateways).map_err(|e| invalid(&e))?;
    let addrs: Vec<IpAddr> = plan
        .endpoints
        .iter()
        .map(|(e, _)| IpAddr::V4(e.ip))
        .collect();
    let hosts = etc_hosts(&HostsInput {
        hostname: &hostname,
        domainname: "",
        extra_hosts: &records,
        endpoint_addrs: &addrs,
        ipv6: true,
    });
    let (host_path, host_text) = host_resolv();
    let servers = m
        .config
        .dns
        .iter()
        .map(|s| Nameserver::parse_override(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&e))?;
    let overrides = DnsOverrides {
        servers,
        search: m.config.dns_search.clone(),
        options: m.config.dns_options.clone(),
    };
    // User networks get the embedded DNS server (127.0.0.11); the default bridge and none get
    // the host's servers without loopback ones.
    let on_user_network = plan.endpoints.iter().any(|(_, n)| !n.builtin);
    let mode = if on_user_network {
        DnsMode::Internal
    } else {
        DnsMode::Legacy { ipv6: false }
    };
    let resolv = resolv_conf(
        &HostResolvConf {
            path: host_path,
            content: host_text.as_deref(),
        },
        &overrides,
        mode,
    );
    let files = [
        ("hosts", hosts, "/etc/hosts"),
        ("hostname", hostname_file(&hostname), "/etc/hostname"),
        ("resolv.conf", resolv.content, "/etc/resolv.conf"),
    ];
    let upstreams = resolv
        .upstreams
        .iter()
        .map(|u| std::net::SocketAddr::new(u.server.addr, 53))
        .collect();
    let mut binds = Vec::new();
    for (name, content, target) in files {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        binds.push((path, target));
    }
    let ndots_set = m.config.dns_options.iter().any(|o| o.starts_with("ndots:"));
    Ok(ContainerFiles {
        binds,
        upstreams,
        ndots_set,
    })
}
