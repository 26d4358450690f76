//! `netloom daemon`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::daemon::engine::HostFiles;
use crate::daemon::{DaemonConfig, run};
use crate::paths;

/// `netloom daemon` flags.
#[derive(Debug, Args)]
pub struct DaemonCmd {
    /// Where the daemon keeps its state (default /var/lib/netloom as root,
    /// $XDG_DATA_HOME/netloom otherwise).
    #[arg(long = "data-root", value_name = "DIR")]
    data_root: Option<PathBuf>,
    /// Also answer `name.network` for every user network on this address (UDP and TCP, in the
    /// daemon's namespace), e.g. 127.0.0.153:53, so the host can resolve container names.
    /// Off by default.
    #[arg(long = "host-dns", value_name = "ADDR:PORT")]
    host_dns: Option<std::net::SocketAddr>,
    /// Carry every client of a published TCP port through the network's gateway. By default
    /// clients on the daemon's loopback take a faster path: the daemon connects to the
    /// container from inside its namespace and splices the two sockets, and the container sees
    /// those clients come from its own address instead of the gateway's.
    #[arg(long = "no-port-splice")]
    no_port_splice: bool,
    /// Busy polling, in microseconds (1 to 1000000; 0, the default, turns it off): a port whose
    /// frames come sparsely (1 ms or more apart) keeps reading its TAP for this long after
    /// each batch instead of sleeping, so the next frame skips a wake-up. Lowers the latency of
    /// sparse traffic (ping, request/response) at the cost of CPU: up to one core per such port
    /// while the traffic lasts, plus the window after it.
    #[arg(
        long = "busy-poll",
        value_name = "MICROSECONDS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=1_000_000)
    )]
    busy_poll: u64,
}

impl DaemonCmd {
    /// Runs the daemon until SIGINT or SIGTERM.
    pub async fn run(self, socket: PathBuf, log_level: &str) -> anyhow::Result<()> {
        let filter = tracing_subscriber::EnvFilter::try_new(log_level).map_err(|e| {
            anyhow::anyhow!(
                "invalid --log-level {log_level:?} ({e}): use error, warn, info, debug or trace"
            )
        })?;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutting down");
            signals.cancel();
        });
        let config = DaemonConfig {
            socket,
            data_root: self.data_root.unwrap_or_else(paths::default_data_root),
            host_files: HostFiles::default(),
            host_dns: self.host_dns,
            port_splice: !self.no_port_splice,
            busy_poll: match self.busy_poll {
                0 => None,
                us => Some(netloom_switch::BusyPoll::new(Duration::from_micros(us))?),
            },
        };
        run(config, shutdown).await?;
        Ok(())
    }
}
