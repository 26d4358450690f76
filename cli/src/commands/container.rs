//! Container commands: `run`, `create`, `start`, `stop`, `restart`, `rm`, `ps`, `inspect`,
//! `logs`, `exec`, with docker's output shapes and exit codes (125 for a failed `run`).
//! A container runs a host command (there are no images): `netloom run --name c1 -- sleep 60`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};

use super::{StatusError, check_args};

mod interactive;
use crate::client::{Client, ClientError, escape};

/// Flags shared by `run` and `create`.
#[derive(Debug, Args)]
pub struct CreateFlags {
    /// Assign a name to the container.
    #[arg(long, default_value = "")]
    name: String,
    /// Connect a container to a network: bridge (default), a network name, host, none, or
    /// container:NAME.
    #[arg(long, alias = "net", default_value = "")]
    network: String,
    /// IPv4 address (e.g., 172.30.100.104); only on networks created with --subnet.
    #[arg(long, default_value = "")]
    ip: String,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33).
    #[arg(long = "mac-address", default_value = "")]
    mac_address: String,
    /// Container host name.
    #[arg(short = 'h', long, default_value = "")]
    hostname: String,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    network_alias: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long, value_name = "list")]
    dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search", value_name = "list")]
    dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option", value_name = "list")]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host", value_name = "list")]
    add_host: Vec<String>,
    /// Publish a container's port(s) to the host: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO],
    /// ranges (8000-8010:80-90), IPv6 host addresses in brackets ([::1]:8080:80).
    #[arg(short = 'p', long = "publish", value_name = "list")]
    publish: Vec<String>,
    /// Expose a port or a range of ports (shown by inspect, published only with -p).
    #[arg(long, value_name = "list")]
    expose: Vec<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// The command and its arguments (after `--`).
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    cmd: Vec<String>,
}

/// `netloom run`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunCmd {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    rm: bool,
    #[command(flatten)]
    flags: CreateFlags,
}

/// `netloom create`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct CreateCmd {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    flags: CreateFlags,
}

/// `netloom start|stop|restart|rm|logs CONTAINER...`.
#[derive(Debug, Args)]
pub struct NamesCmd {
    /// Force the removal of a running container (uses SIGKILL) — `rm` only.
    #[arg(short = 'f', long, hide = true)]
    force: bool,
    /// Seconds to wait before killing the container — `stop` and `restart` only.
    #[arg(short = 't', long = "time", alias = "timeout", hide = true)]
    time: Option<u64>,
    /// CONTAINER [CONTAINER...].
    #[arg(value_name = "CONTAINER")]
    args: Vec<String>,
}

/// `netloom ps`.
#[derive(Debug, Args)]
pub struct PsCmd {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template.
    #[arg(long)]
    format: Option<String>,
    /// No positional arguments.
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `netloom inspect`.
#[derive(Debug, Args)]
pub struct InspectCmd {
    /// Format output using a custom template: 'json' or a Go template.
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// CONTAINER [CONTAINER...].
    #[arg(value_name = "CONTAINER")]
    args: Vec<String>,
}

/// `netloom port CONTAINER [PRIVATE_PORT[/PROTO]]`.
#[derive(Debug, Args)]
pub struct PortCmd {
    /// CONTAINER [PRIVATE_PORT[/PROTO]].
    #[arg(value_name = "CONTAINER [PRIVATE_PORT[/PROTO]]")]
    args: Vec<String>,
}

impl PortCmd {
    /// Prints a container's published ports like `docker port` (from its inspect data).
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        if self.args.is_empty() || self.args.len() > 2 {
            let path = "netloom port";
            return Err(StatusError {
                code: 1,
                message: format!(
                    "netloom: '{path}' requires at least 1 and at most 2 arguments\n\nUsage:  {}\n\nRun '{path} --help' for more information",
                    super::usage_line(path)
                ),
            }
            .into());
        }
        let name = &self.args[0];
        let info: Value = client
            .get(&format!("/containers/{}/json", escape(name)))
            .await?;
        let out = crate::format::container::container_port(
            &info,
            name,
            self.args.get(1).map(String::as_str),
        )
        .map_err(|e| StatusError {
            code: 1,
            message: e.to_string(),
        })?;
        print!("{out}");
        Ok(())
    }
}

/// `netloom exec CONTAINER COMMAND...`.
#[derive(Debug, Args)]
pub struct ExecCmd {
    /// Keep STDIN open (accepted; exec is not interactive yet).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY (accepted; exec is not interactive yet).
    #[arg(short = 't', long)]
    tty: bool,
    /// CONTAINER COMMAND [ARG...].
    #[arg(
        value_name = "CONTAINER COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

/// A JSON object with sorted keys (Go's map encoding).
type JsonMap = BTreeMap<String, Value>;

/// `-p` values → Docker's `Config.ExposedPorts` and `HostConfig.PortBindings`, exactly as
/// the docker CLI builds them (`nat.ParsePortSpecs`): every published port is exposed, and each
/// container port lists its bindings in the order given.
fn port_bindings(publish: &[String]) -> Result<(JsonMap, JsonMap), crate::ports::SpecError> {
    let mut exposed: BTreeMap<String, Value> = BTreeMap::new();
    let mut bindings: BTreeMap<String, Value> = BTreeMap::new();
    for p in publish {
        for (port, proto, b) in crate::ports::parse_publish(p)? {
            let key = format!("{port}/{proto}");
            exposed.insert(key.clone(), json!({}));
            let entry = json!({
                "HostIp": b.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": b.host_port.map(|r| r.to_string()).unwrap_or_default(),
            });
            if let Value::Array(list) = bindings.entry(key).or_insert_with(|| json!([])) {
                list.push(entry);
            }
        }
    }
    Ok((exposed, bindings))
}

fn create_body(f: &CreateFlags, command: &str) -> Result<Value, String> {
    let hint = |e: &dyn std::fmt::Display| {
        format!("netloom: {e}\n\nRun 'netloom {command} --help' for more information")
    };
    let (mut exposed, bindings) = port_bindings(&f.publish).map_err(|e| hint(&e))?;
    for e in &f.expose {
        for (port, proto) in crate::ports::parse_expose(e).map_err(|e| hint(&e))? {
            exposed.insert(format!("{port}/{proto}"), json!({}));
        }
    }
    let mut endpoint = serde_json::Map::new();
    if !f.ip.is_empty() {
        endpoint.insert("IPAMConfig".into(), json!({"IPv4Address": f.ip}));
    }
    if !f.network_alias.is_empty() {
        endpoint.insert("Aliases".into(), json!(f.network_alias));
    }
    if !f.mac_address.is_empty() {
        endpoint.insert("MacAddress".into(), json!(f.mac_address));
    }
    let network = if f.network.is_empty() {
        "bridge".to_owned()
    } else {
        f.network.clone()
    };
    let mut endpoints = serde_json::Map::new();
    if !endpoint.is_empty() {
        endpoints.insert(network.clone(), Value::Object(endpoint));
    }
    Ok(json!({
        "Hostname": f.hostname,
        "Cmd": f.cmd,
        "Tty": f.tty,
        "OpenStdin": f.interactive,
        "ExposedPorts": exposed,
        "Image": "",
        "HostConfig": {
            "NetworkMode": network,
            "Dns": f.dns,
            "DnsSearch": f.dns_search,
            "DnsOptions": f.dns_option,
            "ExtraHosts": f.add_host,
            "PortBindings": bindings,
        },
        "NetworkingConfig": { "EndpointsConfig": endpoints },
    }))
}

/// Creates the container; answers its id. Docker prints the create warnings (from the
/// daemon) on stderr. `command` is `run` or `create`, for the help hint of a bad flag value.
async fn create(client: &Client, f: &CreateFlags, command: &str) -> anyhow::Result<String> {
    if f.cmd.is_empty() {
        return Err(StatusError {
            code: 125,
            message: "netloom: no command given: put the command to run after the options, e.g. netloom run --name c1 -- sleep 60\n\nRun 'netloom run --help' for more information".into(),
        }
        .into());
    }
    let body = create_body(f, command).map_err(|message| StatusError { code: 125, message })?;
    let path = if f.name.is_empty() {
        "/containers/create".to_owned()
    } else {
        format!("/containers/create?name={}", escape(&f.name))
    };
    let r: Value = client.post(&path, &body).await?;
    for w in r["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    Ok(r["Id"].as_str().unwrap_or_default().to_owned())
}

/// docker exits 125 when the daemon refuses a `run` or `create`, and 127 / 126 when the
/// command is missing or cannot be executed (as `docker run` does).
fn daemon_error_125(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<ClientError>() {
        Ok(c) => {
            let text = c.to_string();
            let code = if text.contains("executable file not found")
                || text.contains("no such file or directory")
            {
                127
            } else if text.contains("permission denied") {
                126
            } else {
                125
            };
            StatusError {
                code,
                message: format!("netloom: {text}"),
            }
            .into()
        }
        Err(e) => e,
    }
}

/// Splits Docker's multiplexed log stream (8-byte headers) into stdout and stderr bytes.
fn demux(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut rest = raw;
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let body = &rest[8..(8 + len).min(rest.len())];
        if rest[0] == 2 {
            err.extend_from_slice(body)
        } else {
            out.extend_from_slice(body)
        }
        rest = &rest[(8 + len).min(rest.len())..];
    }
    (out, err)
}

async fn print_logs(client: &Client, id: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let (_, raw) = client
        .request(
            hyper::Method::GET,
            &format!("/containers/{}/logs?stdout=1&stderr=1", escape(id)),
            None,
        )
        .await?;
    // A TTY container's log is one raw stream (Docker's too), without multiplexing headers.
    let info: Value = client
        .get(&format!("/containers/{}/json", escape(id)))
        .await?;
    let (out, err) = if info["Config"]["Tty"].as_bool() == Some(true) {
        (raw.to_vec(), Vec::new())
    } else {
        demux(&raw)
    };
    std::io::stdout().write_all(&out)?;
    std::io::stderr().write_all(&err)?;
    Ok(())
}

impl RunCmd {
    /// Creates and starts a container; without `-d`, waits for it and prints its output.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        if self.flags.tty && !self.detach {
            return self.run_attached(client).await;
        }
        let id = create(client, &self.flags, "run")
            .await
            .map_err(daemon_error_125)?;
        client
            .request(
                hyper::Method::POST,
                &format!("/containers/{id}/start"),
                None,
            )
            .await
            .map_err(|e| daemon_error_125(e.into()))?;
        if self.detach {
            println!("{id}");
            return Ok(());
        }
        finish_run(client, &id, self.rm, true).await
    }
}

/// The end of a foreground `run`: waits for the container, prints its log (when output was not
/// streamed), removes it with `--rm`, and exits with its code as docker does.
async fn finish_run(client: &Client, id: &str, rm: bool, print_log: bool) -> anyhow::Result<()> {
    let r: Value = client
        .post(&format!("/containers/{id}/wait"), &json!({}))
        .await?;
    if print_log {
        print_logs(client, id).await?;
    }
    let code = r["StatusCode"].as_i64().unwrap_or(0);
    if rm {
        client.delete(&format!("/containers/{id}")).await?;
    }
    if code != 0 {
        let code = u8::try_from(code).unwrap_or(125);
        return Err(StatusError {
            code,
            message: String::new(),
        }
        .into());
    }
    Ok(())
}

impl RunCmd {
    /// `run -t` / `run -it`: creates the container, attaches to its terminal, starts it, then
    /// copies the terminal's output to stdout (and, with `-i`, stdin to the terminal, the local
    /// terminal in raw mode) until the container exits, and exits with its code. Ctrl-P Ctrl-Q
    /// detaches: exit 0, the container runs on.
    async fn run_attached(self, client: &Client) -> anyhow::Result<()> {
        let id = create(client, &self.flags, "run")
            .await
            .map_err(daemon_error_125)?;
        let stream = client
            .attach(&id, self.flags.interactive)
            .await
            .map_err(|e| daemon_error_125(e.into()))?;
        let ended = {
            let _raw = if self.flags.interactive {
                interactive::RawMode::enter()
            } else {
                None
            };
            client
                .request(
                    hyper::Method::POST,
                    &format!("/containers/{id}/start"),
                    None,
                )
                .await
                .map_err(|e| daemon_error_125(e.into()))?;
            interactive::pump(stream, self.flags.interactive).await?
        };
        if ended == interactive::Ended::Detached {
            return Ok(());
        }
        finish_run(client, &id, self.rm, false).await
    }
}

impl CreateCmd {
    /// Creates a container and prints its id.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        let id = create(client, &self.flags, "create")
            .await
            .map_err(daemon_error_125)?;
        println!("{id}");
        Ok(())
    }
}

/// Which per-name action a [`NamesCmd`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamesAction {
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `restart`.
    Restart,
    /// `rm`.
    Rm,
    /// `logs`.
    Logs,
}

impl NamesCmd {
    /// Runs the action on each name, printing it on success and the error otherwise.
    pub async fn run(self, client: &Client, action: NamesAction) -> anyhow::Result<()> {
        let (path, min) = match action {
            NamesAction::Start => ("netloom start", 1),
            NamesAction::Stop => ("netloom stop", 1),
            NamesAction::Restart => ("netloom restart", 1),
            NamesAction::Rm => ("netloom rm", 1),
            NamesAction::Logs => ("netloom logs", 1),
        };
        check_args(
            path,
            &self.args,
            min,
            if action == NamesAction::Logs {
                Some(1)
            } else {
                None
            },
        )?;
        if action == NamesAction::Logs {
            return print_logs(client, &self.args[0]).await;
        }
        let t = self.time.map(|t| format!("?t={t}")).unwrap_or_default();
        let mut failed = Vec::new();
        for name in &self.args {
            let n = escape(name);
            let r = match action {
                NamesAction::Start => client
                    .request(hyper::Method::POST, &format!("/containers/{n}/start"), None)
                    .await
                    .map(drop),
                NamesAction::Stop => client
                    .request(
                        hyper::Method::POST,
                        &format!("/containers/{n}/stop{t}"),
                        None,
                    )
                    .await
                    .map(drop),
                NamesAction::Restart => client
                    .request(
                        hyper::Method::POST,
                        &format!("/containers/{n}/restart{t}"),
                        None,
                    )
                    .await
                    .map(drop),
                NamesAction::Rm => {
                    let force = if self.force { "?force=1" } else { "" };
                    client.delete(&format!("/containers/{n}{force}")).await
                }
                NamesAction::Logs => unreachable!("handled above"),
            };
            match r {
                Ok(()) => println!("{name}"),
                Err(e) => {
                    eprintln!("{e}");
                    failed.push(name.clone());
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        let message = match action {
            NamesAction::Start => {
                format!("Error: failed to start containers: {}", failed.join(", "))
            }
            _ => String::new(),
        };
        Err(StatusError { code: 1, message }.into())
    }
}

impl PsCmd {
    /// Lists containers like `docker ps` (without the IMAGE column).
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        check_args("netloom ps", &self.args, 0, Some(0))?;
        let all = if self.all { "?all=1" } else { "" };
        let list: Vec<Value> = client.get(&format!("/containers/json{all}")).await?;
        let now = chrono::Utc::now().timestamp();
        let out = crate::format::container::ps(
            &list,
            self.quiet,
            self.no_trunc,
            self.format.as_deref(),
            now,
        )
        .map_err(|e| StatusError {
            code: u8::try_from(e.exit_code()).unwrap_or(1),
            message: e.to_string(),
        })?;
        print!("{out}");
        Ok(())
    }
}

/// The docker CLI runs an inspect template on the decoded Go struct first, where a field the
/// daemon left out (`omitempty`) is a nil value, not a missing key: `{{json
/// .Config.ExposedPorts}}` prints `null` for a container that exposes nothing. The raw JSON
/// netloom templates run on gets those fields as `null`.
fn typed_defaults(v: &mut Value) {
    if let Some(config) = v.get_mut("Config").and_then(Value::as_object_mut) {
        config.entry("ExposedPorts").or_insert(Value::Null);
    }
}

impl InspectCmd {
    /// Prints containers' JSON like `docker inspect`.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        check_args("netloom inspect", &self.args, 1, None)?;
        let mut inspector = crate::format::Inspector::new_raw(self.format.as_deref())
            .map_err(super::format_error)?;
        let templated = !matches!(self.format.as_deref(), None | Some("" | "json"));
        for name in &self.args {
            match client
                .get_raw(&format!("/containers/{}/json", escape(name)))
                .await
            {
                Ok(raw) => {
                    let mut v =
                        serde_json::from_slice::<Value>(&raw).context("decoding the container")?;
                    if templated {
                        typed_defaults(&mut v);
                    }
                    inspector.add(&v)
                }
                Err(ClientError::Daemon { message, .. })
                    if message.starts_with("No such container") =>
                {
                    inspector.add_error(format!("Error: No such object: {name}"))
                }
                Err(e) => inspector.add_error(e.to_string()),
            }
        }
        super::finish_inspect(inspector)
    }
}

impl ExecCmd {
    /// Runs a command inside a running container and prints its output.
    pub async fn run(self, client: &Client) -> anyhow::Result<()> {
        use std::io::Write as _;
        check_args("netloom exec", &self.args, 2, None)?;
        let body = json!({ "Cmd": self.args[1..] });
        let r: Value = client
            .post(
                &format!("/netloom/containers/{}/exec", escape(&self.args[0])),
                &body,
            )
            .await?;
        std::io::stdout().write_all(r["Stdout"].as_str().unwrap_or_default().as_bytes())?;
        std::io::stderr().write_all(r["Stderr"].as_str().unwrap_or_default().as_bytes())?;
        let code = r["ExitCode"].as_i64().unwrap_or(0);
        if code != 0 {
            return Err(StatusError {
                code: u8::try_from(code).unwrap_or(1),
                message: String::new(),
            }
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        let (exposed, b) = port_bindings(&[
            "8081:80".into(),
            "127.0.0.1:8082:80".into(),
            "80".into(),
            "5353:5353/udp".into(),
            "[::1]:9000-9001:90-91".into(),
            "7000-7010:70".into(),
        ])
        .unwrap();
        assert_eq!(
            b["80/tcp"],
            json!([{"HostIp":"","HostPort":"8081"},{"HostIp":"127.0.0.1","HostPort":"8082"},{"HostIp":"","HostPort":""}])
        );
        assert_eq!(b["5353/udp"], json!([{"HostIp":"","HostPort":"5353"}]));
        assert_eq!(b["91/tcp"], json!([{"HostIp":"::1","HostPort":"9001"}]));
        assert_eq!(b["70/tcp"], json!([{"HostIp":"","HostPort":"7000-7010"}]));
        assert_eq!(
            exposed.keys().collect::<Vec<_>>(),
            ["5353/udp", "70/tcp", "80/tcp", "90/tcp", "91/tcp"]
        );
        assert_eq!(
            port_bindings(&["x:y".into()]).unwrap_err().to_string(),
            "invalid containerPort: y"
        );
    }

    #[test]
    fn demux_splits_streams() {
        let mut raw = vec![1, 0, 0, 0, 0, 0, 0, 3];
        raw.extend_from_slice(b"out");
        raw.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 3]);
        raw.extend_from_slice(b"err");
        assert_eq!(demux(&raw), (b"out".to_vec(), b"err".to_vec()));
    }
}
