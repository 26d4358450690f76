//! `netloom version` and `netloom info`.

use clap::Args;

use super::check_args;
use crate::api::{MAX_API_VERSION, MIN_API_VERSION};
use crate::client::Client;

/// `netloom version`.
#[derive(Debug, Args)]
pub struct VersionCmd {
    /// No positional arguments.
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `netloom stats`.
#[derive(Debug, Args)]
pub struct StatsCmd {
    /// `json`: print the daemon's counters as one JSON object (`GET /netloom/stats`).
    #[arg(long, value_name = "string")]
    format: Option<String>,
    /// No positional arguments.
    #[arg(hide = true)]
    args: Vec<String>,
}

impl StatsCmd {
    /// Prints the switch's drop and refusal counters, one `reason count` per line, then each
    /// network's gateway flows.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        check_args("netloom stats", &self.args, 0, Some(0))?;
        match self.format.as_deref() {
            None | Some("") => {}
            Some("json") => {
                let s: serde_json::Value = client.get("/netloom/stats").await?;
                println!("{s}");
                return Ok(());
            }
            Some(other) => anyhow::bail!(
                "unknown --format {other:?} for netloom stats: use --format json or leave it out"
            ),
        }
        let s: serde_json::Value = client.get("/netloom/stats").await?;
        for (group, title) in [
            ("Drops", "frames dropped"),
            ("Refusals", "commands refused"),
        ] {
            println!("{title}:");
            if let Some(map) = s[group].as_object() {
                for (reason, n) in map {
                    println!("  {reason:<24} {n}");
                }
            }
        }
        println!("gateway flows:");
        if let Some(map) = s["Nat"].as_object() {
            for (network, g) in map {
                println!(
                    "  {network:<24} tcp {} udp {} icmp {} published {} spliced {} (failed {})",
                    g["TcpFlows"],
                    g["UdpFlows"],
                    g["IcmpFlows"],
                    g["Published"],
                    g["TcpSpliced"],
                    g["TcpSpliceFailures"]
                );
            }
        }
        let b = &s["BusyPoll"];
        match b["WindowMicros"].as_u64() {
            Some(us) if us > 0 => println!(
                "busy polling: {us} us after each batch, {} frames read by polling",
                b["PolledFrames"]
            ),
            _ => println!("busy polling: off"),
        }
        Ok(())
    }
}

/// `netloom info`.
#[derive(Debug, Args)]
pub struct InfoCmd {
    /// No positional arguments.
    #[arg(hide = true)]
    args: Vec<String>,
}

fn os_arch() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    format!("linux/{arch}")
}

impl VersionCmd {
    /// Prints the client's versions, then asks the daemon for its own.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        check_args("netloom version", &self.args, 0, Some(0))?;
        println!("Client:");
        println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
        println!(" API version:       {MAX_API_VERSION}");
        println!(" OS/Arch:           {}", os_arch());
        println!();
        let v: serde_json::Value = client.get("/version").await?;
        let s = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        println!("Server: netloom");
        println!(" Engine:");
        println!("  Version:          {}", s("Version"));
        println!(
            "  API version:      {} (minimum version {})",
            s("ApiVersion"),
            s("MinAPIVersion")
        );
        println!("  Git commit:       {}", s("GitCommit"));
        println!("  OS/Arch:          {}/{}", s("Os"), s("Arch"));
        println!("  Kernel version:   {}", s("KernelVersion"));
        let _ = MIN_API_VERSION;
        Ok(())
    }
}

impl InfoCmd {
    /// Prints the daemon's `/info` in docker's layout (the parts netloom has).
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        check_args("netloom info", &self.args, 0, Some(0))?;
        let i: serde_json::Value = client.get("/info").await?;
        let s = |k: &str| match i.get(k) {
            Some(serde_json::Value::String(x)) => x.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let plugins = i["Plugins"]["Network"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        println!("Client:");
        println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
        println!();
        println!("Server:");
        println!(" Containers: {}", s("Containers"));
        println!("  Running: {}", s("ContainersRunning"));
        println!("  Paused: {}", s("ContainersPaused"));
        println!("  Stopped: {}", s("ContainersStopped"));
        println!(" Networks: {}", s("Networks"));
        println!(" Server Version: {}", s("ServerVersion"));
        println!(" Plugins:");
        println!("  Network: {plugins}");
        println!(" Kernel Version: {}", s("KernelVersion"));
        println!(" Operating System: {}", s("OperatingSystem"));
        println!(" OSType: {}", s("OSType"));
        println!(" Architecture: {}", s("Architecture"));
        println!(" CPUs: {}", s("NCPU"));
        println!(" Name: {}", s("Name"));
        println!(" Netloom Root Dir: {}", s("DockerRootDir"));
        Ok(())
    }
}
