//! Configures an interface inside a network namespace over rtnetlink (never by running `ip`):
//! MAC, MTU, address, link up, `lo` up, and the default route through the network's gateway.
//!
//! A netlink socket belongs to the namespace it was created in, so the socket is made on a
//! short-lived thread that has entered the target namespace; the requests then run on tokio.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt as _;
use netloom_switch::tap::{TapError, in_netns};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

/// How to configure one interface.
#[derive(Debug, Clone)]
pub struct IfConfig {
    /// Interface name in the namespace (`eth0`).
    pub ifname: String,
    /// MAC address.
    pub mac: [u8; 6],
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// Prefix length of the network.
    pub prefix: u8,
    /// MTU of the network.
    pub mtu: u32,
    /// Install the default route through this gateway (the first network's).
    pub default_gateway: Option<Ipv4Addr>,
}

/// A configuration step that failed.
#[derive(Debug, thiserror::Error)]
pub enum NetconfError {
    /// The namespace could not be entered.
    #[error("cannot enter the network namespace: {0}")]
    Netns(#[source] TapError),
    /// No netlink socket could be made there.
    #[error("cannot open a netlink socket in {path}: {source}")]
    Socket {
        /// The namespace.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The helper thread failed.
    #[error("the netlink helper thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The interface is not there.
    #[error("interface {0} does not exist in the namespace")]
    NoSuchLink(String),
    /// A netlink request failed.
    #[error("{what} failed: {source}")]
    Request {
        /// Which request.
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
}

fn req(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetconfError {
    let what = what.into();
    move |source| NetconfError::Request { what, source }
}

/// Turns IPv6 off on an interface of an IPv4-only network before it comes up, as Docker does:
/// otherwise the container's kernel sends router solicitations and MLD reports that the switch
/// refuses (and counts as `disallowed_ethertype`) forever. Best effort: a kernel without IPv6
/// has no such setting, and the interface works without it.
async fn disable_ipv6(netns: &Path, ifname: &str) {
    let path = netns.to_owned();
    let knob = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
    // /proc/sys/net resolves to the namespace of the thread that opens it.
    let done =
        tokio::task::spawn_blocking(move || in_netns(&path, move || std::fs::write(&knob, "1")))
            .await;
    match done {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::debug!(ifname, error = %e, "IPv6 stays on"),
        Ok(Err(e)) => tracing::debug!(ifname, error = %e, "IPv6 stays on"),
        Err(e) => tracing::debug!(ifname, error = %e, "IPv6 stays on"),
    }
}

/// Opens a netlink handle bound to the namespace at `netns`; the connection task runs until
/// the returned guard drops.
async fn handle_in(netns: &Path) -> Result<(Handle, tokio::task::JoinHandle<()>), NetconfError> {
    let rt = tokio::runtime::Handle::current();
    let path = netns.to_owned();
    let made = tokio::task::spawn_blocking(move || {
        in_netns(&path, move || {
            let _enter = rt.enter();
            rtnetlink::new_connection()
        })
    })
    .await?
    .map_err(NetconfError::Netns)?
    .map_err(|source| NetconfError::Socket {
        path: netns.to_owned(),
        source,
    })?;
    let (conn, handle, _) = made;
    Ok((handle, tokio::spawn(conn)))
}

async fn link_index(handle: &Handle, name: &str) -> Result<u32, NetconfError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(NetconfError::NoSuchLink(name.to_owned())),
        // ENODEV comes back as an error message rather than an empty dump.
        Err(_) => Err(NetconfError::NoSuchLink(name.to_owned())),
    }
}

/// Applies `cfg` inside the namespace at `netns`.
pub async fn configure(netns: &Path, cfg: &IfConfig) -> Result<(), NetconfError> {
    disable_ipv6(netns, &cfg.ifname).await;
    let (handle, conn) = handle_in(netns).await?;
    let result = async {
        set_up(&handle, "lo").await?;
        let index = link_index(&handle, &cfg.ifname).await?;
        handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .address(cfg.mac.to_vec())
                    .mtu(cfg.mtu)
                    .build(),
            )
            .execute()
            .await
            .map_err(req(format!("setting MAC and MTU of {}", cfg.ifname)))?;
        handle
            .address()
            .add(index, cfg.ip.into(), cfg.prefix)
            .execute()
            .await
            .map_err(req(format!(
                "adding {}/{} to {}",
                cfg.ip, cfg.prefix, cfg.ifname
            )))?;
        set_up(&handle, &cfg.ifname).await?;
        if let Some(gw) = cfg.default_gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build();
            handle
                .route()
                .add(route)
                .execute()
                .await
                .map_err(req(format!("adding the default route via {gw}")))?;
        }
        Ok(())
    }
    .await;
    conn.abort();
    result
}

/// Sets an interface up.
async fn set_up(handle: &Handle, name: &str) -> Result<(), NetconfError> {
    let index = link_index(handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(req(format!("setting {name} up")))
}

/// Sets `lo` up inside the namespace (a new namespace starts with it down).
pub async fn lo_up(netns: &Path) -> Result<(), NetconfError> {
    let (handle, conn) = handle_in(netns).await?;
    let result = set_up(&handle, "lo").await;
    conn.abort();
    result
}

/// Deletes an interface inside the namespace (a missing one is not an error).
pub async fn delete_link(netns: &Path, ifname: &str) -> Result<(), NetconfError> {
    let (handle, conn) = handle_in(netns).await?;
    let result = match link_index(&handle, ifname).await {
        Ok(index) => handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(req(format!("deleting {ifname}"))),
        Err(NetconfError::NoSuchLink(_)) => Ok(()),
        Err(e) => Err(e),
    };
    conn.abort();
    result
}
