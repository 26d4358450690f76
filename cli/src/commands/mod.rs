//! The `netloom` command line: one file per command group, each a clap struct with `run`.
//!
//! Argument errors are reported the way the docker CLI (cobra/pflag) reports them, so scripts
//! that parse docker's messages and exit codes work unchanged.

pub mod attach;
pub mod container;
pub mod daemon;
pub mod demo;
pub mod network;
pub mod rename;
pub mod system;

use std::fmt;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::client::Client;
use crate::paths;
use container::NamesAction;

/// netloom: Docker-style container networking in userspace.
#[derive(Debug, Parser)]
#[command(
    name = "netloom",
    version,
    disable_help_subcommand = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Daemon socket to connect to (or, for `daemon`, to listen on): unix:///path.
    /// Defaults to /run/netloom/netloom.sock as root, $XDG_RUNTIME_DIR/netloom/netloom.sock
    /// otherwise; the NETLOOM_HOST environment variable overrides the default.
    #[arg(
        short = 'H',
        long = "host",
        global = true,
        env = "NETLOOM_HOST",
        value_name = "HOST"
    )]
    pub host: Option<String>,
    /// Log level of the daemon and of client diagnostics: error, warn, info, debug, trace.
    #[arg(short = 'l', long = "log-level", global = true, default_value = "info")]
    pub log_level: String,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
// Parsed once per process; boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the netloom daemon (the Engine-API server).
    Daemon(daemon::DaemonCmd),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Show the netloom version information.
    Version(system::VersionCmd),
    /// Display system-wide information.
    Info(system::InfoCmd),
    /// Plug a network namespace made by another runtime into a network.
    Attach(attach::AttachCmd),
    /// Unplug a namespace attached with `netloom attach`.
    Detach(attach::DetachCmd),
    /// Show the switch's drop counters by reason.
    Stats(system::StatsCmd),
    /// Create and run a new container from a host command.
    Run(container::RunCmd),
    /// Create a new container.
    Create(container::CreateCmd),
    /// Start one or more stopped containers.
    Start(container::NamesCmd),
    /// Stop one or more running containers.
    Stop(container::NamesCmd),
    /// Restart one or more containers.
    Restart(container::NamesCmd),
    /// Remove one or more containers.
    Rm(container::NamesCmd),
    /// Fetch the logs of a container.
    Logs(container::NamesCmd),
    /// List containers.
    Ps(container::PsCmd),
    /// Return low-level information on containers.
    Inspect(container::InspectCmd),
    /// Execute a command in a running container.
    Exec(container::ExecCmd),
    /// List port mappings or a specific mapping for the container.
    Port(container::PortCmd),
    /// Rename a container.
    Rename(rename::RenameCmd),
    /// Replay the Docker networking tutorial against a private daemon (needs root).
    Demo(demo::DemoCmd),
    /// Internal: the demo container's tiny web server.
    #[command(name = "_http", hide = true)]
    Http(demo::HttpCmd),
    /// Internal: the per-container process that enters the namespaces and runs the command.
    #[command(name = "_shim", hide = true)]
    Shim(crate::shim::ShimArgs),
    /// Internal: runs a command inside a running container's namespaces.
    #[command(name = "_exec", hide = true)]
    ExecIn(crate::shim::ExecArgs),
}

/// An error that carries its own exit status, like docker's `cli.StatusError`: `message` is
/// printed to stderr as is (nothing when empty).
#[derive(Debug)]
pub struct StatusError {
    /// Process exit code.
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

/// Prints what an inspector gathered and turns its errors into docker's exit statuses (64 for
/// a template that does not parse, 1 otherwise); shared by `network inspect` and `inspect`.
pub(crate) fn finish_inspect(inspector: crate::format::Inspector) -> anyhow::Result<()> {
    match inspector.finish() {
        Ok(out) => {
            print!("{out}");
            Ok(())
        }
        Err(e) => {
            print!("{}", e.stdout());
            Err(format_error(e).into())
        }
    }
}

/// A formatting error as a [`StatusError`] with docker's exit status.
pub(crate) fn format_error(e: crate::format::FormatError) -> StatusError {
    StatusError {
        code: u8::try_from(e.exit_code()).unwrap_or(1),
        message: e.to_string(),
    }
}

/// The usage line and command path of each command, as cobra prints them in errors.
pub(crate) fn usage_line(path: &str) -> &'static str {
    match path {
        "netloom network create" => "netloom network create [OPTIONS] NETWORK",
        "netloom network ls" => "netloom network ls [OPTIONS]",
        "netloom network inspect" => "netloom network inspect [OPTIONS] NETWORK [NETWORK...]",
        "netloom network rm" => "netloom network rm NETWORK [NETWORK...]",
        "netloom network prune" => "netloom network prune [OPTIONS]",
        "netloom network connect" => "netloom network connect [OPTIONS] NETWORK CONTAINER",
        "netloom network disconnect" => "netloom network disconnect [OPTIONS] NETWORK CONTAINER",
        "netloom network" => "netloom network COMMAND",
        "netloom daemon" => "netloom daemon [OPTIONS]",
        "netloom version" => "netloom version [OPTIONS]",
        "netloom info" => "netloom info [OPTIONS]",
        "netloom attach" => "netloom attach [OPTIONS] NETWORK (--netns PATH | --pid PID)",
        "netloom detach" => "netloom detach [OPTIONS] NAME",
        "netloom stats" => "netloom stats",
        "netloom run" => "netloom run [OPTIONS] [--] COMMAND [ARG...]",
        "netloom create" => "netloom create [OPTIONS] [--] COMMAND [ARG...]",
        "netloom start" => "netloom start [OPTIONS] CONTAINER [CONTAINER...]",
        "netloom stop" => "netloom stop [OPTIONS] CONTAINER [CONTAINER...]",
        "netloom restart" => "netloom restart [OPTIONS] CONTAINER [CONTAINER...]",
        "netloom rm" => "netloom rm [OPTIONS] CONTAINER [CONTAINER...]",
        "netloom rename" => "netloom rename CONTAINER NEW_NAME",
        "netloom logs" => "netloom logs [OPTIONS] CONTAINER",
        "netloom ps" => "netloom ps [OPTIONS]",
        "netloom inspect" => "netloom inspect [OPTIONS] CONTAINER [CONTAINER...]",
        "netloom exec" => "netloom exec [OPTIONS] CONTAINER COMMAND [ARG...]",
        "netloom port" => "netloom port CONTAINER [PRIVATE_PORT[/PROTO]]",
        _ => "netloom [OPTIONS] COMMAND",
    }
}

/// Positional-argument count checks with cobra's texts (`cli.ExactArgs`, `RequiresMinArgs`).
pub(crate) fn check_args(
    path: &str,
    args: &[String],
    min: usize,
    max: Option<usize>,
) -> Result<(), StatusError> {
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let usage = usage_line(path);
    let message = match max {
        Some(max) if max == min && args.len() != min => format!(
            "netloom: '{path}' requires {min} {}\n\nUsage:  {usage}\n\nRun '{path} --help' for more information",
            plural(min)
        ),
        Some(0) if !args.is_empty() => format!(
            "netloom: '{path}' accepts no arguments\n\nUsage:  {usage}\n\nRun '{path} --help' for more information"
        ),
        _ if args.len() < min => format!(
            "netloom: '{path}' requires at least {min} {}\n\nUsage:  {usage}\n\nSee '{path} --help' for more information",
            plural(min)
        ),
        _ => return Ok(()),
    };
    Err(StatusError { code: 1, message })
}

/// The command path (`netloom network create`) named by the leading words of argv.
fn command_path(argv: &[String]) -> String {
    let mut path = vec!["netloom"];
    // Skip flags, and the values of the global flags that take one.
    let mut words_vec = Vec::new();
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        if matches!(a.as_str(), "-H" | "--host" | "-l" | "--log-level") {
            args.next();
        } else if !a.starts_with('-') {
            words_vec.push(a);
        }
    }
    let mut words = words_vec.into_iter();
    if let Some(first) = words.next() {
        match first.as_str() {
            "network" => {
                path.push("network");
                if let Some(sub) = words.next() {
                    let sub = match sub.as_str() {
                        "list" => "ls",
                        "remove" => "rm",
                        s => s,
                    };
                    if matches!(
                        sub,
                        "create" | "ls" | "inspect" | "rm" | "prune" | "connect" | "disconnect"
                    ) {
                        path.push(sub);
                    }
                }
            }
            "daemon" | "version" | "info" | "attach" | "detach" | "stats" | "run" | "create"
            | "start" | "stop" | "restart" | "rm" | "logs" | "ps" | "inspect" | "exec" | "port" => {
                path.push(first)
            }
            _ => {}
        }
    }
    path.join(" ")
}

/// Maps clap's parse errors to pflag/cobra's texts and exit codes (125 for flag errors).
pub fn parse_error(err: clap::Error, argv: &[String]) -> StatusError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let path = command_path(argv);
    let usage = usage_line(&path);
    let arg = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let flag = arg.split([' ', '=']).next().unwrap_or_default().to_owned();
    let what = match err.kind() {
        ErrorKind::UnknownArgument => {
            if let Some(long) = flag.strip_prefix("--") {
                format!("unknown flag: --{long}")
            } else if let Some(short) = flag.strip_prefix('-') {
                let c = short.chars().next().unwrap_or('-');
                // pflag names the whole cluster the letter came from (`-bad`), clap only `-b`.
                let cluster = argv
                    .iter()
                    .skip(1)
                    .find(|a| a.starts_with('-') && !a.starts_with("--") && a[1..].contains(c))
                    .map_or(flag.as_str(), String::as_str);
                format!("unknown shorthand flag: '{c}' in {cluster}")
            } else {
                format!("unknown flag: {flag}")
            }
        }
        ErrorKind::InvalidSubcommand => {
            let sub = match err.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            return StatusError {
                code: 1,
                message: format!(
                    "netloom: unknown command: {path} {sub}\n\nUsage:  {usage}\n\nRun '{path} --help' for more information"
                ),
            };
        }
        ErrorKind::InvalidValue if err.get(ContextKind::InvalidValue).is_none() => {
            format!("flag needs an argument: {flag}")
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return StatusError {
                code: 0,
                message: err.render().to_string(),
            };
        }
        _ => {
            let text = err.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            first.to_owned()
        }
    };
    StatusError {
        code: 125,
        message: format!("{what}\n\nUsage:  {usage}\n\nRun '{path} --help' for more information"),
    }
}

impl Cli {
    /// The socket the client talks to (or the daemon listens on).
    pub fn socket(&self) -> anyhow::Result<PathBuf> {
        match &self.host {
            Some(h) => Ok(paths::parse_host(h)?),
            None => Ok(paths::default_socket()),
        }
    }

    /// Runs the parsed command.
    pub async fn run(self) -> anyhow::Result<()> {
        let socket = self.socket()?;
        match self.command {
            Command::Daemon(cmd) => cmd.run(socket, &self.log_level).await,
            Command::Network(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Version(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Info(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Attach(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Detach(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Stats(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Run(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Create(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Start(cmd) => cmd.run(&Client::new(&socket), NamesAction::Start).await,
            Command::Stop(cmd) => cmd.run(&Client::new(&socket), NamesAction::Stop).await,
            Command::Restart(cmd) => cmd.run(&Client::new(&socket), NamesAction::Restart).await,
            Command::Rm(cmd) => cmd.run(&Client::new(&socket), NamesAction::Rm).await,
            Command::Logs(cmd) => cmd.run(&Client::new(&socket), NamesAction::Logs).await,
            Command::Ps(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Inspect(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Exec(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Port(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Rename(cmd) => cmd.run(&Client::new(&socket)).await,
            Command::Demo(cmd) => tokio::task::spawn_blocking(move || cmd.run()).await?,
            Command::Http(cmd) => tokio::task::spawn_blocking(move || cmd.run()).await?,
            Command::Shim(_) | Command::ExecIn(_) => {
                unreachable!("main() runs _shim and _exec before starting the runtime")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_flag_matches_docker() {
        let a = argv("netloom network create --foo x");
        let err = Cli::try_parse_from(&a).unwrap_err();
        let e = parse_error(err, &a);
        assert_eq!(e.code, 125);
        assert_eq!(
            e.message,
            "unknown flag: --foo\n\nUsage:  netloom network create [OPTIONS] NETWORK\n\nRun 'netloom network create --help' for more information"
        );
        let a = argv("netloom network ls -x");
        let e = parse_error(Cli::try_parse_from(&a).unwrap_err(), &a);
        assert!(
            e.message.starts_with("unknown shorthand flag: 'x' in -x\n"),
            "{}",
            e.message
        );
    }

    #[test]
    fn argument_counts_match_cobra() {
        let e = check_args("netloom network rm", &[], 1, None).unwrap_err();
        assert_eq!(
            e.message,
            "netloom: 'netloom network rm' requires at least 1 argument\n\nUsage:  netloom network rm NETWORK [NETWORK...]\n\nSee 'netloom network rm --help' for more information"
        );
        let e = check_args("netloom network create", &[], 1, Some(1)).unwrap_err();
        assert!(
            e.message
                .starts_with("netloom: 'netloom network create' requires 1 argument\n")
        );
        assert!(check_args("netloom network ls", &["x".into()], 0, Some(0)).is_err());
        assert!(check_args("netloom network ls", &[], 0, Some(0)).is_ok());
    }
}
