//! `netloom attach` and `netloom detach`: plug network namespaces that another runtime made
//! (slirp4netns-style sandboxes, rootless runtimes) into netloom networks.

use clap::Args;

use super::{StatusError, check_args};
use crate::api::types::{AttachRequestBody, AttachResponse, DetachRequestBody, DetachResponse};
use crate::client::Client;

/// `netloom attach [OPTIONS] NETWORK (--netns PATH | --pid PID)`.
#[derive(Debug, Args)]
pub struct AttachCmd {
    /// Name of the sandbox (generated when omitted); attach the same namespace to more networks
    /// by giving the same name again (it gets eth1, eth2, ...).
    #[arg(long, default_value = "")]
    name: String,
    /// The network namespace file, e.g. /run/netns/NAME or /proc/PID/ns/net.
    #[arg(long, value_name = "PATH")]
    netns: Option<String>,
    /// A process whose network namespace to use.
    #[arg(long)]
    pid: Option<u32>,
    /// IPv4 address (only on networks created with --subnet).
    #[arg(long, default_value = "")]
    ip: String,
    /// MAC address (default 02:42 + the IPv4 address).
    #[arg(long = "mac-address", default_value = "")]
    mac_address: String,
    /// Extra DNS names for the sandbox on this network.
    #[arg(long, value_delimiter = ',', value_name = "strings")]
    alias: Vec<String>,
    /// NETWORK.
    #[arg(value_name = "NETWORK")]
    args: Vec<String>,
}

/// `netloom detach [--network NET] NAME`.
#[derive(Debug, Args)]
pub struct DetachCmd {
    /// Only remove the interface on this network (default: all, and forget the sandbox).
    #[arg(long, default_value = "")]
    network: String,
    /// NAME.
    #[arg(value_name = "NAME")]
    args: Vec<String>,
}

impl AttachCmd {
    /// Asks the daemon to plug the namespace in; prints the sandbox id and the interface.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        check_args("netloom attach", &self.args, 1, Some(1))?;
        let (netns, pid) = match (self.netns, self.pid) {
            (Some(p), None) => (p, None),
            (None, Some(pid)) => (String::new(), Some(pid)),
            _ => {
                return Err(StatusError {
                    code: 125,
                    message: "give exactly one of --netns PATH or --pid PID\n\nUsage:  netloom attach [OPTIONS] NETWORK (--netns PATH | --pid PID)\n\nRun 'netloom attach --help' for more information".into(),
                }
                .into());
            }
        };
        let body = AttachRequestBody {
            network: self.args[0].clone(),
            name: self.name,
            netns,
            pid,
            ipv4_address: self.ip,
            mac_address: self.mac_address,
            aliases: self.alias,
        };
        let r: AttachResponse = client.post("/netloom/attach", &body).await?;
        println!("{}", r.id);
        eprintln!(
            "{}: {} {} (mac {}, gateway {})",
            r.name, r.interface, r.ipv4_address, r.mac_address, r.gateway
        );
        Ok(())
    }
}

impl DetachCmd {
    /// Asks the daemon to unplug; prints the removed interfaces.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        check_args("netloom detach", &self.args, 1, Some(1))?;
        let body = DetachRequestBody {
            name: self.args[0].clone(),
            network: self.network,
        };
        let r: DetachResponse = client.post("/netloom/detach", &body).await?;
        for i in r.interfaces {
            println!("{i}");
        }
        Ok(())
    }
}
