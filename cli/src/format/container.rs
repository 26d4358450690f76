//! `docker ps` and `docker port` rendering, byte-compatible with the docker
//! CLI v28.2.2 (cli/command/formatter/container.go, displayutils.go,
//! cli/command/container/list.go and port.go), except that netloom's
//! default `ps` table has no IMAGE column (netloom runs host commands, not
//! images).
//!
//! Also the pieces the daemon needs to fill in a `GET /containers/json`
//! summary the way Docker does: [`status_text`]/[`state_text`] (moby
//! `container/state.go`) and [`human_duration`] (go-units).
//!
//! The template engine knows no method-bearing row type for containers, so
//! the row is a struct of docker's method results, and:
//! * `.Label "key"` (and `$.Label "key"`) calls on the row are replaced by
//!   the label's quoted value before execution;
//! * `{{json .}}` escapes `<`, `>` and `&` like docker's `MarshalJSON` only
//!   when it is the whole format (as with `--format json`);
//! * known remaining differences: `{{.Platform}}` prints `<no value>`
//!   (docker: `<nil>`), `{{.}}` prints the struct differently, and
//!   `.Label` inside `with`/`range` fails with another message.
//!
//! Also unlike docker: NETWORKS lists names sorted (docker: map order),
//! CreatedAt is printed in UTC, and `.Image` is not normalised with
//! docker's reference parser (`docker.io/library/ubuntu` stays as is).

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;

use super::FormatError;
use super::gotime::GoTime;
use super::natsort::natural_cmp;
use super::template::gofmt::quote;
use super::template::value::{FieldDef, FieldTy, StructDef, StructVal, Val, encode_json};
use super::template::{ExecOptions, Template};
use super::width_tables::DOUBLEWIDTH;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Errors of `ps` rendering. The `Display` text is what docker prints on
/// stderr (exit status 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PsError {
    /// The `--format` template did not parse in docker's up-front check
    /// (`failed to parse template: template: :1: function "x" not defined`).
    #[error("failed to parse template: {0}")]
    PreParse(String),
    /// The `--format` template failed on an empty container in docker's
    /// up-front check (`failed to execute template: template: :1:2:
    /// executing "" at <.Foo>: can't evaluate field Foo in type
    /// *formatter.ContainerContext`).
    #[error("failed to execute template: {0}")]
    PreExec(String),
    /// Rendering failed (`template parsing error: ...`).
    #[error(transparent)]
    Render(#[from] FormatError),
}

impl PsError {
    /// docker's exit status for this error (always 1).
    pub fn exit_code(&self) -> i32 {
        1
    }
}

/// Errors of `docker port`. The `Display` text is what docker prints on
/// stderr (exit status 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The port number is not an unsigned 16-bit decimal number.
    #[error(
        "Error: invalid port ({port}): strconv.ParseUint: parsing {}: {reason}",
        quote(port)
    )]
    InvalidPort {
        /// The port part of the argument (before any `/`).
        port: String,
        /// Go's reason: `invalid syntax` or `value out of range`.
        reason: &'static str,
    },
    /// The container does not publish that port.
    #[error("Error: No public port '{port}' published for {container}")]
    NotPublished {
        /// The `PRIVATE_PORT[/PROTO]` argument as given.
        port: String,
        /// The container argument as given.
        container: String,
    },
}

// ---------------------------------------------------------------------------
// go-units and display helpers
// ---------------------------------------------------------------------------

/// go-units `HumanDuration` for a duration in whole seconds: `Less than a
/// second`, `1 second`, `N seconds`, `About a minute`, `N minutes`, `About
/// an hour`, `N hours`, `N days`, `N weeks`, `N months`, `N years`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // int(d.Hours() + 0.5)
    let hours = (seconds + 1800) / 3600;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// Go's `fmt.Sprintf("%.*g", prec, x)` for a finite `x >= 0`.
fn format_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let prec = prec.max(1);
    // Round to `prec` significant digits (exact decimal, half to even, as
    // Go's strconv does), then drop trailing zeros.
    let e = format!("{:.*e}", prec - 1, x);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let mut eprec = prec as i32;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if exp < -4 || exp >= eprec {
        let p = (prec as i32).min(nd);
        let mut s = digits[..1].to_string();
        if p > 1 {
            s.push('.');
            s.push_str(&digits[1..p as usize]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{s}e{sign}{:02}", exp.abs());
    }
    let p = if prec as i32 > dp { nd } else { prec as i32 };
    let decimals = (p - dp).max(0) as usize;
    // Integer part.
    let mut s = String::new();
    if dp <= 0 {
        s.push('0');
    } else {
        for i in 0..dp as usize {
            s.push(digits.as_bytes().get(i).map_or('0', |&b| b as char));
        }
    }
    if decimals > 0 {
        s.push('.');
        for i in 0..decimals as i32 {
            let idx = dp + i;
            let c = if idx < 0 {
                '0'
            } else {
                digits
                    .as_bytes()
                    .get(idx as usize)
                    .map_or('0', |&b| b as char)
            };
            s.push(c);
        }
    }
    s
}

/// go-units `HumanSizeWithPrecision(size, 3)`: decimal units (`B`, `kB`,
/// `MB`, ...), e.g. `0B`, `123B`, `12.3kB`, `10.7MB`.
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(size, 3), UNITS[i])
}

/// Display width as `golang.org/x/text/width` sees it: 2 for East Asian
/// Wide and Fullwidth characters, 1 for everything else.
fn wide_width(ch: char) -> usize {
    let c = ch as u32;
    let wide = DOUBLEWIDTH
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok();
    if wide { 2 } else { 1 }
}

/// docker's `formatter.Ellipsis`: truncates `s` to `max` display columns,
/// the last one being `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let chars: Vec<char> = s.chars().collect();
    if max == 1 {
        return chars.first().map(|c| c.to_string()).unwrap_or_default();
    }
    if s.is_ascii() {
        if s.len() <= max {
            return s.to_string();
        }
        return format!("{}…", &s[..max - 1]);
    }
    let mut display = Vec::with_capacity(chars.len());
    let mut total = 0;
    for &c in &chars {
        total += wide_width(c);
        display.push(total);
    }
    if total <= max {
        return s.to_string();
    }
    for i in 0..display.len().saturating_sub(1) {
        if display[i] < max && display[i + 1] >= max {
            let kept: String = chars[..=i].iter().collect();
            return format!("{kept}…");
        }
    }
    s.to_string()
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// ---------------------------------------------------------------------------
// Container state
// ---------------------------------------------------------------------------

/// The state fields `Status` and `State` are derived from (moby
/// `container.State`). Times are unix seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateInfo {
    /// The process runs.
    pub running: bool,
    /// Paused (only with `running`).
    pub paused: bool,
    /// Being restarted (only with `running`).
    pub restarting: bool,
    /// `rm` is in progress.
    pub removal_in_progress: bool,
    /// Dead.
    pub dead: bool,
    /// When it last started; `None` if it never did.
    pub started_at: Option<i64>,
    /// When it last stopped; `None` if it never did.
    pub finished_at: Option<i64>,
    /// The last exit code.
    pub exit_code: i64,
}

/// The summary's `Status` (moby `State.String()`) at time `now`: `Up 11
/// seconds`, `Up About a minute`, `Up 2 hours (Paused)`, `Restarting (1) 3
/// seconds ago`, `Removal In Progress`, `Dead`, `Created`, `Exited (0) 3
/// minutes ago`.
pub fn status_text(s: &StateInfo, now: i64) -> String {
    let since = |t: Option<i64>| human_duration(now - t.unwrap_or(0));
    if s.running {
        if s.paused {
            return format!("Up {} (Paused)", since(s.started_at));
        }
        if s.restarting {
            return format!("Restarting ({}) {} ago", s.exit_code, since(s.finished_at));
        }
        return format!("Up {}", since(s.started_at));
    }
    if s.removal_in_progress {
        return "Removal In Progress".to_string();
    }
    if s.dead {
        return "Dead".to_string();
    }
    if s.started_at.is_none() {
        return "Created".to_string();
    }
    if s.finished_at.is_none() {
        return String::new();
    }
    format!("Exited ({}) {} ago", s.exit_code, since(s.finished_at))
}

/// The summary's `State` (moby `State.StateString()`): `running`,
/// `paused`, `restarting`, `removing`, `dead`, `created` or `exited`.
pub fn state_text(s: &StateInfo) -> &'static str {
    if s.running {
        if s.paused {
            return "paused";
        }
        if s.restarting {
            return "restarting";
        }
        return "running";
    }
    if s.removal_in_progress {
        return "removing";
    }
    if s.dead {
        return "dead";
    }
    if s.started_at.is_none() {
        return "created";
    }
    "exited"
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// One entry of a summary's `Ports` (`container.Port`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortSummary {
    /// Host address (`IP`); empty when the port is only exposed.
    pub ip: String,
    /// Container port (`PrivatePort`).
    pub private_port: u16,
    /// Host port (`PublicPort`); 0 when not published.
    pub public_port: u16,
    /// `tcp`, `udp` or `sctp` (`Type`).
    pub proto: String,
}

impl PortSummary {
    /// Reads an Engine-API `Port` object (missing fields are zero).
    pub fn from_json(v: &Value) -> PortSummary {
        let port = |key: &str| {
            get(v, key)
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(0)
        };
        PortSummary {
            ip: str_of(v, "IP").to_string(),
            private_port: port("PrivatePort"),
            public_port: port("PublicPort"),
            proto: str_of(v, "Type").to_string(),
        }
    }
}

/// docker's `DisplayablePorts`, the PORTS column: ports sorted by
/// container port, host address, host port and protocol; consecutive
/// exposed ports (or same-numbered published ports on one address) grouped
/// into ranges; published ports with a different host port listed last.
/// E.g. `0.0.0.0:8081->80/tcp, [::]:8081->80/tcp`.
pub fn displayable_ports(ports: &[PortSummary]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        a.private_port
            .cmp(&b.private_port)
            .then_with(|| a.ip.cmp(&b.ip))
            .then_with(|| a.public_port.cmp(&b.public_port))
            .then_with(|| a.proto.cmp(&b.proto))
    });
    let mut groups: BTreeMap<String, (u16, u16)> = BTreeMap::new();
    let mut group_keys: Vec<String> = Vec::new();
    let mut result: Vec<String> = Vec::new();
    let mut host_mappings: Vec<String> = Vec::new();
    for p in &ports {
        let current = p.private_port;
        let mut key = p.proto.clone();
        if !p.ip.is_empty() {
            if p.public_port != current {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip, &p.public_port.to_string()),
                    p.private_port,
                    p.proto
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.proto);
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(key.clone(), (current, current));
                group_keys.push(key);
            }
            Some(g) if current == g.1.wrapping_add(1) => g.1 = current,
            Some(g) => {
                result.push(form_group(&key, g.0, g.1));
                *g = (current, current);
            }
        }
    }
    for key in &group_keys {
        let (first, last) = groups[key];
        result.push(form_group(key, first, last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let parts: Vec<&str> = key.split('/').collect();
    let (ip, proto) = if parts.len() > 1 {
        (parts[0], parts[1])
    } else {
        ("", parts[0])
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", join_host_port(ip, &group));
    }
    format!("{group}/{proto}")
}

/// `strconv.ParseUint(s, 10, 16)`'s failure reason, if any.
fn parse_u16_error(s: &str) -> Option<&'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Some("invalid syntax");
    }
    match s.parse::<u64>() {
        Ok(n) if n <= u64::from(u16::MAX) => None,
        _ => Some("value out of range"),
    }
}

/// `docker port CONTAINER [PRIVATE_PORT[/PROTO]]` output from the
/// container's inspect object (`NetworkSettings.Ports`): all published
/// ports as `80/tcp -> 0.0.0.0:8081` lines, or for one port (protocol
/// `tcp` unless given) its `0.0.0.0:8081` host addresses; lines in natural
/// order, IPv6 hosts in brackets (`[::]:8081`), each ending in a newline.
/// Nothing when no port is published.
///
/// `container` is the argument as the user gave it (used in the error).
pub fn container_port(
    inspect: &Value,
    container: &str,
    port: Option<&str>,
) -> Result<String, PortError> {
    let ports = get(inspect, "NetworkSettings").and_then(|n| get(n, "Ports"));
    let frontends = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|b| join_host_port(str_of(b, "HostIp"), str_of(b, "HostPort")))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<String> = Vec::new();
    match port.filter(|p| !p.is_empty()) {
        Some(arg) => {
            let (num, proto) = arg.split_once('/').unwrap_or((arg, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if let Some(reason) = parse_u16_error(num) {
                return Err(PortError::InvalidPort {
                    port: num.to_string(),
                    reason,
                });
            }
            let key = format!("{num}/{proto}");
            out = ports
                .and_then(|p| p.get(&key))
                .map(frontends)
                .unwrap_or_default();
            if out.is_empty() {
                return Err(PortError::NotPublished {
                    port: arg.to_string(),
                    container: container.to_string(),
                });
            }
        }
        None => {
            if let Some(Value::Object(map)) = ports {
                for (from, list) in map {
                    for host in frontends(list) {
                        out.push(format!("{from} -> {host}"));
                    }
                }
            }
        }
    }
    if out.is_empty() {
        return Ok(String::new());
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out.join("\n") + "\n")
}

// ---------------------------------------------------------------------------
// The ps row context
// ---------------------------------------------------------------------------

const fn field(name: &'static str, ty: FieldTy) -> FieldDef {
    FieldDef {
        name,
        json: name,
        omitempty: false,
        ty,
    }
}

/// docker's `*formatter.ContainerContext`, as the struct of its method
/// results. The fields are in sorted order so that `{{json .}}` matches
/// `MarshalJSON` (a JSON object of the methods, keys sorted).
static CONTAINER_CONTEXT: StructDef = StructDef {
    name: "*formatter.ContainerContext",
    fields: &[
        field("Command", FieldTy::Str),
        field("CreatedAt", FieldTy::Str),
        field("ID", FieldTy::Str),
        field("Image", FieldTy::Str),
        field("Labels", FieldTy::Str),
        field("LocalVolumes", FieldTy::Str),
        field("Mounts", FieldTy::Str),
        field("Names", FieldTy::Str),
        field("Networks", FieldTy::Str),
        field("Platform", FieldTy::Any),
        field("Ports", FieldTy::Str),
        field("RunningFor", FieldTy::Str),
        field("Size", FieldTy::Str),
        field("State", FieldTy::Str),
        field("Status", FieldTy::Str),
    ],
};

/// Column titles (docker's `SubHeaderContext` for containers).
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
];

/// `Value::get` with `encoding/json`'s case-insensitive fallback.
fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let map = v.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    get(v, key).and_then(Value::as_str).unwrap_or("")
}

fn int_of(v: &Value, key: &str) -> i64 {
    get(v, key).and_then(Value::as_i64).unwrap_or(0)
}

/// The values docker's `ContainerContext` methods return for one summary.
#[derive(Debug)]
struct Row {
    fields: Vec<Val>,
    /// `Labels` as a map (`None` for a JSON null/missing map), for `.Label`.
    labels: Option<BTreeMap<String, String>>,
}

impl Row {
    fn new(c: &Value, trunc: bool, now: i64) -> Row {
        let id = str_of(c, "Id");
        let id = if trunc { short(id) } else { id }.to_string();

        let names: Vec<String> = get(c, "Names")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|n| {
                        let n = n.as_str().unwrap_or("");
                        n.char_indices()
                            .nth(1)
                            .map_or(String::new(), |(i, _)| n[i..].to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let names = match names.iter().find(|n| !n.contains('/')) {
            Some(n) if trunc => n.clone(),
            _ => names.join(","),
        };

        let image = str_of(c, "Image");
        let image = if image.is_empty() {
            "<no image>".to_string()
        } else if trunc && short(str_of(c, "ImageID")) == short(image) {
            short(image).to_string()
        } else {
            image.to_string()
        };

        let command = str_of(c, "Command");
        let command = if trunc {
            quote(&ellipsis(command, 20))
        } else {
            quote(command)
        };

        let created = int_of(c, "Created");
        let created_at = GoTime {
            unix: created,
            nanos: 0,
            offset: 0,
        }
        .go_string();
        let running_for = format!("{} ago", human_duration(now - created));

        let ports: Vec<PortSummary> = get(c, "Ports")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(PortSummary::from_json).collect())
            .unwrap_or_default();

        let size_rw = int_of(c, "SizeRw");
        let size_root = int_of(c, "SizeRootFs");
        let mut size = human_size(size_rw as f64);
        if size_root > 0 {
            size = format!("{size} (virtual {})", human_size(size_root as f64));
        }

        let labels: Option<BTreeMap<String, String>> =
            get(c, "Labels").and_then(Value::as_object).map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            });
        let labels_text = labels
            .as_ref()
            .map(|m| {
                let mut pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                pairs.sort();
                pairs.join(",")
            })
            .unwrap_or_default();

        let mounts = get(c, "Mounts").and_then(Value::as_array);
        let mount_names: Vec<String> = mounts
            .map(|a| {
                a.iter()
                    .map(|m| {
                        let name = match str_of(m, "Name") {
                            "" => str_of(m, "Source"),
                            n => n,
                        };
                        if trunc {
                            ellipsis(name, 15)
                        } else {
                            name.to_string()
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let local_volumes = mounts
            .map(|a| a.iter().filter(|m| str_of(m, "Driver") == "local").count())
            .unwrap_or(0);

        // Go ranges over the map in random order; sorted here.
        let networks = get(c, "NetworkSettings")
            .and_then(|n| get(n, "Networks"))
            .and_then(Value::as_object)
            .map(|m| {
                let mut names: Vec<&str> = m.keys().map(String::as_str).collect();
                names.sort_unstable();
                names.join(",")
            })
            .unwrap_or_default();

        let s = |v: String| Val::str(v);
        let fields = vec![
            s(command),
            s(created_at),
            s(id),
            s(image),
            s(labels_text),
            s(local_volumes.to_string()),
            s(mount_names.join(",")),
            s(names),
            s(networks),
            Val::Nil,
            s(displayable_ports(&ports)),
            s(running_for),
            s(size),
            s(str_of(c, "State").to_string()),
            s(str_of(c, "Status").to_string()),
        ];
        Row { fields, labels }
    }

    fn val(&self) -> Val {
        Val::Struct(Rc::new(StructVal {
            def: &CONTAINER_CONTEXT,
            fields: self.fields.clone(),
        }))
    }

    fn label(&self, key: &str) -> String {
        self.labels
            .as_ref()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_default()
    }
}

/// moby `stringid.TruncateID`: without an `algo:` prefix, at most 12
/// characters.
fn short(id: &str) -> &str {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    match id.char_indices().nth(12) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

fn header_context() -> Val {
    Val::HeaderCtx(Rc::new(
        HEADERS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

// ---------------------------------------------------------------------------
// `.Label "key"` substitution
// ---------------------------------------------------------------------------

/// Go's `strconv.Unquote` for an interpreted (`"..."`) or raw (`` `...` ``)
/// string literal.
fn unquote(lit: &str) -> Option<String> {
    if let Some(raw) = lit.strip_prefix('`') {
        return raw.strip_suffix('`').map(str::to_string);
    }
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let mut hex = |n: usize| -> Option<char> {
            let s: String = (0..n).map(|_| chars.next()).collect::<Option<_>>()?;
            char::from_u32(u32::from_str_radix(&s, 16).ok()?)
        };
        match e {
            'a' => out.push('\u{07}'),
            'b' => out.push('\u{08}'),
            'f' => out.push('\u{0c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{0b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'x' => out.push(hex(2)?),
            'u' => out.push(hex(4)?),
            'U' => out.push(hex(8)?),
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + chars.next()?.to_digit(8)?;
                }
                out.push(char::from_u32(v).filter(|_| v < 256)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// End (exclusive) of the quoted item starting at `i` (`"`, `` ` `` or `'`).
fn skip_quoted(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && q != b'`' {
            j += 2;
            continue;
        }
        if b[j] == q {
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

/// Rewrites the template so that every `.Label "key"` (or `$.Label "key"`)
/// call on the row context becomes the Go-quoted label value (`""` when the
/// label is missing), as `ContainerContext.Label` would return it. Calls
/// inside `with`/`range` blocks (where dot is something else) are left
/// alone. Returns `None` when there is nothing to replace.
fn substitute_labels(src: &str, label: &dyn Fn(&str) -> String) -> Option<String> {
    let b = src.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut changed = false;
    // Per open block: whether it changes dot in the current branch.
    let mut blocks: Vec<bool> = Vec::new();
    let mut i = 0;
    while let Some(off) = src[i..].find("{{") {
        let start = i + off + 2;
        let mut j = start;
        if b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        let word = |from: usize| -> &str {
            let end = (from..b.len())
                .find(|&k| !b[k].is_ascii_alphabetic())
                .unwrap_or(b.len());
            &src[from..end]
        };
        let keyword = word(j);
        let mut second = "";
        if keyword == "else" {
            let mut k = j + 4;
            while b.get(k).is_some_and(u8::is_ascii_whitespace) {
                k += 1;
            }
            second = word(k);
        }
        // An `else` clause's pipeline is evaluated with the enclosing dot.
        let outer = if keyword == "else" && !blocks.is_empty() {
            &blocks[..blocks.len() - 1]
        } else {
            &blocks[..]
        };
        let dot_is_row = !outer.iter().any(|&changed| changed);

        let mut k = j;
        while k < b.len() {
            match b[k] {
                b'"' | b'`' | b'\'' => k = skip_quoted(b, k),
                b'/' if b.get(k + 1) == Some(&b'*') => {
                    k = src[k + 2..].find("*/").map_or(b.len(), |e| k + 2 + e + 2);
                }
                b'}' if b.get(k + 1) == Some(&b'}') => break,
                b'.' if src[k + 1..].starts_with("Label")
                    && !b.get(k + 6).copied().is_some_and(is_ident_byte) =>
                {
                    let prev = |n: usize| if k >= n { b.get(k - n).copied() } else { None };
                    let chained = prev(1)
                        .is_some_and(|p| is_ident_byte(p) || matches!(p, b')' | b']' | b'.'));
                    let root = prev(1) == Some(b'$') && !prev(2).is_some_and(is_ident_byte);
                    let mut m = k + 6;
                    while b
                        .get(m)
                        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                    {
                        m += 1;
                    }
                    let is_call = m > k + 6 && matches!(b.get(m), Some(b'"' | b'`'));
                    // `$.Label` is always the row; `.Label` only where dot is.
                    let applies = root || (!chained && dot_is_row);
                    if !applies || !is_call {
                        k += 6;
                        continue;
                    }
                    let end = skip_quoted(b, m);
                    let Some(key) = unquote(&src[m..end]) else {
                        k = end;
                        continue;
                    };
                    let from = if root { k - 1 } else { k };
                    out.push_str(&src[copied..from]);
                    out.push_str(&quote(&label(&key)));
                    copied = end;
                    changed = true;
                    k = end;
                }
                _ => k += 1,
            }
        }
        match (keyword, second) {
            ("if", _) => blocks.push(false),
            ("with" | "range", _) => blocks.push(true),
            ("else", "with") => {
                if let Some(top) = blocks.last_mut() {
                    *top = true;
                }
            }
            ("else", _) => {
                if let Some(top) = blocks.last_mut() {
                    *top = false;
                }
            }
            ("end", _) => {
                blocks.pop();
            }
            _ => {}
        }
        i = (k + 2).min(b.len());
    }
    if !changed {
        return None;
    }
    out.push_str(&src[copied..]);
    Some(out)
}

// ---------------------------------------------------------------------------
// docker ps
// ---------------------------------------------------------------------------

/// netloom's default `ps` table: docker's without `{{.Image}}`.
const DEFAULT_TABLE_FORMAT: &str =
    "table {{.ID}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// netloom's `raw` format: docker's without the `image:` line.
const RAW_FORMAT: &str = "container_id: {{.ID}}
command: {{.Command}}
created_at: {{.CreatedAt}}
state: {{- pad .State 1 0}}
status: {{- pad .Status 1 0}}
names: {{.Names}}
labels: {{- pad .Labels 1 0}}
ports: {{- pad .Ports 1 0}}
";

/// What docker prints on stderr when both `--format` and `-q` are given
/// (the quiet format wins).
pub const QUIET_FORMAT_WARNING: &str =
    "WARNING: Ignoring custom format, because both --format and --quiet are set.\n";

/// docker's `NewContainerFormat`.
fn resolve_format(source: &str, quiet: bool, size: bool) -> String {
    match source {
        "table" | "" if quiet => "{{.ID}}".to_string(),
        "table" | "" => {
            let mut f = DEFAULT_TABLE_FORMAT.to_string();
            if size {
                f.push_str("\\t{{.Size}}");
            }
            f
        }
        "raw" if quiet => "container_id: {{.ID}}".to_string(),
        "raw" => {
            let mut f = RAW_FORMAT.to_string();
            if size {
                f.push_str("size: {{.Size}}\\n");
            }
            f
        }
        _ if quiet => "{{.ID}}".to_string(),
        other => other.to_string(),
    }
}

/// Options of `docker ps`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PsOptions<'a> {
    /// `-q`: only IDs (overrides a custom `--format`; the CLI then prints
    /// [`QUIET_FORMAT_WARNING`] on stderr).
    pub quiet: bool,
    /// `--no-trunc`: full IDs, commands and mount names, all names.
    pub no_trunc: bool,
    /// `-s`: adds the SIZE column to the default table.
    pub size: bool,
    /// `--format` (or, when that is empty, `psFormat` from the CLI config
    /// file); `None`/empty means `table`.
    pub format: Option<&'a str>,
}

fn template_message(e: FormatError) -> String {
    match e {
        FormatError::Parse(m) | FormatError::Exec(m) | FormatError::Unsupported(m) => m,
        other => other.to_string(),
    }
}

/// [`container_ps`] with the flags as arguments (no `--size`).
pub fn ps(
    containers: &[Value],
    quiet: bool,
    no_trunc: bool,
    format: Option<&str>,
    now: i64,
) -> Result<String, PsError> {
    let opts = PsOptions {
        quiet,
        no_trunc,
        size: false,
        format,
    };
    container_ps(containers, &opts, now)
}

/// Renders `docker ps` output.
///
/// * `containers`: `GET /containers/json` summaries (`Id`, `Names`,
///   `Image`, `ImageID`, `Command`, `Created`, `Ports`, `Labels`, `State`,
///   `Status`, `SizeRw`, `SizeRootFs`, `HostConfig`, `NetworkSettings`,
///   `Mounts`), in the order to print (the daemon's: newest first). `-a`,
///   `-n`, `-l` and `--filter` are the daemon's business.
/// * `now`: the current unix time, for the CREATED column (`12 seconds
///   ago`). CreatedAt is printed in UTC.
///
/// Default table: `CONTAINER ID   COMMAND   CREATED   STATUS    PORTS
/// NAMES`, 12-char IDs, commands quoted and cut to 20 columns (`"sleep
/// infinity"`, `"python3 -m http.ser…"`), only the primary name. Formats
/// `table`, `table <template>`, `raw`, `json` and templates work as in
/// docker; the row fields are `.ID .Names .Image .Command .CreatedAt
/// .RunningFor .Ports .State .Status .Size .Labels .Label "k" .Mounts
/// .LocalVolumes .Networks .Platform`.
pub fn container_ps(
    containers: &[Value],
    opts: &PsOptions<'_>,
    now: i64,
) -> Result<String, PsError> {
    let source = opts.format.unwrap_or("");
    let no_label = |_: &str| String::new();
    // docker checks a given format up front on an empty container.
    if !source.is_empty() {
        let pre = substitute_labels(source, &no_label);
        let tmpl = Template::parse(pre.as_deref().unwrap_or(source))
            .map_err(|e| PsError::PreParse(template_message(e)))?;
        let zero = Row::new(&Value::Null, false, now);
        let mut sink = String::new();
        tmpl.execute_val(&mut sink, &zero.val(), ExecOptions::default())
            .map_err(PsError::PreExec)?;
    }

    let format = resolve_format(source, opts.quiet, opts.size);
    let is_table = format.starts_with("table");
    let mut fin: &str = &format;
    if is_table {
        fin = &fin["table".len()..];
    } else if format == "json" {
        fin = "{{json .}}";
    }
    let fin = fin
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    let tmpl = Template::parse(&fin)?;
    let whole_json = fin == "{{json .}}";
    let uses_label = substitute_labels(&fin, &no_label).is_some();

    let mut body = String::new();
    for c in containers {
        let row = Row::new(c, !opts.no_trunc, now);
        if whole_json {
            // MarshalJSON output: json.Marshal escapes <, > and &.
            let mut line = String::new();
            encode_json(&mut line, &row.val(), true).map_err(FormatError::Exec)?;
            body.push_str(&line);
        } else if uses_label {
            let src = substitute_labels(&fin, &|k| row.label(k)).unwrap_or_else(|| fin.clone());
            let t = Template::parse(&src)?;
            t.execute_val(&mut body, &row.val(), ExecOptions::default())
                .map_err(FormatError::Exec)?;
        } else {
            tmpl.execute_val(&mut body, &row.val(), ExecOptions::default())
                .map_err(FormatError::Exec)?;
        }
        body.push('\n');
    }
    if !is_table {
        return Ok(body);
    }
    Ok(super::table_with_header(&tmpl, &header_context(), &body))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn ps(containers: &[Value], quiet: bool, no_trunc: bool, size: bool, format: &str) -> String {
        let opts = PsOptions {
            quiet,
            no_trunc,
            size,
            format: Some(format),
        };
        container_ps(containers, &opts, NOW).expect("renders")
    }

    fn ps_err(containers: &[Value], format: &str) -> String {
        let opts = PsOptions {
            format: Some(format),
            ..PsOptions::default()
        };
        container_ps(containers, &opts, NOW)
            .expect_err("fails")
            .to_string()
    }

    /// The containers of docker's TestContainerContextWrite (a day old).
    fn formatter_containers() -> Vec<Value> {
        let created = NOW - 86_400;
        vec![
            json!({"Id": "containerID1", "Names": ["/foobar_baz"], "Image": "ubuntu",
                   "Created": created, "State": "running"}),
            json!({"Id": "containerID2", "Names": ["/foobar_bar"], "Image": "ubuntu",
                   "Created": created, "State": "running"}),
        ]
    }

    /// docker's `builders.Container` (cli/internal/test/builders).
    fn builder(name: &str) -> Value {
        json!({"Id": "container_id", "Names": [format!("/{name}")], "Command": "top",
               "Image": "busybox:latest", "Status": "Up 1 minute", "Created": NOW - 60})
    }

    fn port(ip: &str, private: u16, public: u16, proto: &str) -> PortSummary {
        PortSummary {
            ip: ip.to_string(),
            private_port: private,
            public_port: public,
            proto: proto.to_string(),
        }
    }

    // --- helpers -----------------------------------------------------------

    #[rstest]
    #[case(-5, "Less than a second")]
    #[case(0, "Less than a second")]
    #[case(1, "1 second")]
    #[case(12, "12 seconds")]
    #[case(59, "59 seconds")]
    #[case(60, "About a minute")]
    #[case(65, "About a minute")]
    #[case(119, "About a minute")]
    #[case(120, "2 minutes")]
    #[case(3599, "59 minutes")]
    #[case(3600, "About an hour")]
    #[case(5399, "About an hour")]
    #[case(5400, "2 hours")]
    #[case(86_400, "24 hours")]
    #[case(47 * 3600 + 1799, "47 hours")]
    #[case(47 * 3600 + 1800, "2 days")]
    #[case(13 * 86_400, "13 days")]
    #[case(14 * 86_400, "2 weeks")]
    #[case(59 * 86_400, "8 weeks")]
    #[case(60 * 86_400, "2 months")]
    #[case(365 * 86_400, "12 months")]
    #[case(729 * 86_400, "24 months")]
    #[case(730 * 86_400, "2 years")]
    fn human_durations(#[case] secs: i64, #[case] text: &str) {
        assert_eq!(human_duration(secs), text);
    }

    #[rstest]
    #[case(0.0, "0B")]
    #[case(10.0, "10B")]
    #[case(20.0, "20B")]
    #[case(123.0, "123B")]
    #[case(999.0, "999B")]
    #[case(1000.0, "1kB")]
    #[case(1500.0, "1.5kB")]
    #[case(12345.0, "12.3kB")]
    #[case(10_700_000.0, "10.7MB")]
    #[case(3_200_000.0, "3.2MB")]
    #[case(999_500.0, "1e+03kB")]
    #[case(100_000.0, "100kB")]
    fn human_sizes(#[case] size: f64, #[case] text: &str) {
        assert_eq!(human_size(size), text);
    }

    #[rstest]
    #[case("", 20, "")]
    #[case("bash", 20, "bash")]
    #[case("12345678901234567890", 20, "12345678901234567890")]
    #[case("python3 -m http.server 8080", 20, "python3 -m http.ser…")]
    #[case(
        "this-is-a-long-volume-name-and-will-be-truncated-if-trunc-is-set",
        15,
        "this-is-a-long…"
    )]
    #[case("你好世界你好世界你好世界", 20, "你好世界你好世界你…")]
    #[case("héllo wörld, how are you", 20, "héllo wörld, how ar…")]
    #[case("abc", 1, "a")]
    #[case("abc", 0, "")]
    fn ellipsis_cases(#[case] s: &str, #[case] max: usize, #[case] out: &str) {
        assert_eq!(ellipsis(s, max), out);
    }

    #[test]
    fn status_and_state() {
        let running = StateInfo {
            running: true,
            started_at: Some(NOW - 11),
            ..StateInfo::default()
        };
        assert_eq!(status_text(&running, NOW), "Up 11 seconds");
        assert_eq!(state_text(&running), "running");
        let paused = StateInfo {
            paused: true,
            started_at: Some(NOW - 7200),
            ..running
        };
        assert_eq!(status_text(&paused, NOW), "Up 2 hours (Paused)");
        assert_eq!(state_text(&paused), "paused");
        let restarting = StateInfo {
            restarting: true,
            exit_code: 1,
            finished_at: Some(NOW - 3),
            ..running
        };
        assert_eq!(
            status_text(&restarting, NOW),
            "Restarting (1) 3 seconds ago"
        );
        assert_eq!(state_text(&restarting), "restarting");
        let created = StateInfo::default();
        assert_eq!(status_text(&created, NOW), "Created");
        assert_eq!(state_text(&created), "created");
        let exited = StateInfo {
            started_at: Some(NOW - 400),
            finished_at: Some(NOW - 180),
            ..StateInfo::default()
        };
        assert_eq!(status_text(&exited, NOW), "Exited (0) 3 minutes ago");
        assert_eq!(state_text(&exited), "exited");
        let killed = StateInfo {
            exit_code: 137,
            ..exited
        };
        assert_eq!(status_text(&killed, NOW), "Exited (137) 3 minutes ago");
        let removing = StateInfo {
            removal_in_progress: true,
            ..exited
        };
        assert_eq!(status_text(&removing, NOW), "Removal In Progress");
        assert_eq!(state_text(&removing), "removing");
        let dead = StateInfo {
            dead: true,
            ..exited
        };
        assert_eq!(status_text(&dead, NOW), "Dead");
        assert_eq!(state_text(&dead), "dead");
    }

    // --- DisplayablePorts: docker's TestDisplayablePorts -------------------

    #[rstest]
    #[case(vec![port("", 9988, 0, "tcp")], "9988/tcp")]
    #[case(vec![port("", 9988, 0, "udp")], "9988/udp")]
    #[case(vec![port("0.0.0.0", 9988, 0, "tcp")], "0.0.0.0:0->9988/tcp")]
    #[case(vec![port("::", 9988, 0, "tcp")], "[::]:0->9988/tcp")]
    #[case(vec![port("", 9988, 8899, "tcp")], "9988/tcp")]
    #[case(vec![port("4.3.2.1", 9988, 8899, "tcp")], "4.3.2.1:8899->9988/tcp")]
    #[case(vec![port("::1", 9988, 8899, "tcp")], "[::1]:8899->9988/tcp")]
    #[case(vec![port("4.3.2.1", 9988, 9988, "tcp")], "4.3.2.1:9988->9988/tcp")]
    #[case(vec![port("::1", 9988, 9988, "tcp")], "[::1]:9988->9988/tcp")]
    #[case(vec![port("", 9988, 0, "udp"), port("", 9988, 0, "udp")], "9988/udp, 9988/udp")]
    #[case(vec![port("1.2.3.4", 9998, 9998, "udp"), port("1.2.3.4", 9999, 9999, "udp")], "1.2.3.4:9998-9999->9998-9999/udp")]
    #[case(vec![port("::1", 9998, 9998, "udp"), port("::1", 9999, 9999, "udp")], "[::1]:9998-9999->9998-9999/udp")]
    #[case(vec![port("1.2.3.4", 9998, 8887, "udp"), port("1.2.3.4", 9999, 8888, "udp")], "1.2.3.4:8887->9998/udp, 1.2.3.4:8888->9999/udp")]
    #[case(vec![port("::1", 9998, 8887, "udp"), port("::1", 9999, 8888, "udp")], "[::1]:8887->9998/udp, [::1]:8888->9999/udp")]
    #[case(vec![port("", 9998, 0, "udp"), port("", 9999, 0, "udp")], "9998-9999/udp")]
    #[case(vec![port("1.2.3.4", 6677, 7766, "tcp"), port("", 9988, 8899, "udp")], "9988/udp, 1.2.3.4:7766->6677/tcp")]
    #[case(vec![port("1.2.3.4", 9988, 8899, "udp"), port("1.2.3.4", 9988, 8899, "tcp"), port("4.3.2.1", 2233, 3322, "tcp"), port("::1", 2233, 3322, "tcp")], "4.3.2.1:3322->2233/tcp, [::1]:3322->2233/tcp, 1.2.3.4:8899->9988/tcp, 1.2.3.4:8899->9988/udp")]
    #[case(vec![port("", 9988, 8899, "udp"), port("1.2.3.4", 6677, 7766, "tcp"), port("4.3.2.1", 2233, 3322, "tcp")], "9988/udp, 4.3.2.1:3322->2233/tcp, 1.2.3.4:7766->6677/tcp")]
    #[case(vec![
        port("", 80, 0, "tcp"), port("", 1024, 0, "tcp"), port("", 80, 0, "udp"), port("", 1024, 0, "udp"),
        port("1.1.1.1", 1024, 80, "tcp"), port("1.1.1.1", 1024, 80, "udp"), port("1.1.1.1", 80, 1024, "tcp"), port("1.1.1.1", 80, 1024, "udp"),
        port("2.1.1.1", 1024, 80, "tcp"), port("2.1.1.1", 1024, 80, "udp"), port("2.1.1.1", 80, 1024, "tcp"), port("2.1.1.1", 80, 1024, "udp"),
        port("", 12345, 0, "sctp"),
    ], "80/tcp, 80/udp, 1024/tcp, 1024/udp, 12345/sctp, 1.1.1.1:1024->80/tcp, 1.1.1.1:1024->80/udp, 2.1.1.1:1024->80/tcp, 2.1.1.1:1024->80/udp, 1.1.1.1:80->1024/tcp, 1.1.1.1:80->1024/udp, 2.1.1.1:80->1024/tcp, 2.1.1.1:80->1024/udp")]
    // netloom's usual `-p 8081:80` and `-p 8000-8002:8000-8002`.
    #[case(vec![port("::", 80, 8081, "tcp"), port("0.0.0.0", 80, 8081, "tcp")], "0.0.0.0:8081->80/tcp, [::]:8081->80/tcp")]
    #[case(vec![
        port("0.0.0.0", 8000, 8000, "tcp"), port("::", 8000, 8000, "tcp"),
        port("0.0.0.0", 8001, 8001, "tcp"), port("::", 8001, 8001, "tcp"),
        port("0.0.0.0", 8002, 8002, "tcp"), port("::", 8002, 8002, "tcp"),
    ], "0.0.0.0:8000-8002->8000-8002/tcp, [::]:8000-8002->8000-8002/tcp")]
    #[case(vec![port("", 80, 0, "tcp"), port("", 81, 0, "tcp"), port("", 83, 0, "tcp")], "80-81/tcp, 83/tcp")]
    #[case(vec![], "")]
    fn displayable_ports_cases(#[case] ports: Vec<PortSummary>, #[case] expected: &str) {
        assert_eq!(displayable_ports(&ports), expected);
    }

    #[test]
    fn port_summary_from_json() {
        let p = PortSummary::from_json(
            &json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"}),
        );
        assert_eq!(p, port("0.0.0.0", 80, 8081, "tcp"));
        let p = PortSummary::from_json(&json!({"PrivatePort": 53, "Type": "udp"}));
        assert_eq!(p, port("", 53, 0, "udp"));
    }

    // --- docker ps: TestContainerContextWrite & friends --------------------

    #[rstest]
    #[case::table_size(
        "table",
        false,
        true,
        "CONTAINER ID   COMMAND   CREATED        STATUS    PORTS     NAMES        SIZE\ncontainerID1   \"\"        24 hours ago                       foobar_baz   0B\ncontainerID2   \"\"        24 hours ago                       foobar_bar   0B\n"
    )]
    #[case::table(
        "table",
        false,
        false,
        "CONTAINER ID   COMMAND   CREATED        STATUS    PORTS     NAMES\ncontainerID1   \"\"        24 hours ago                       foobar_baz\ncontainerID2   \"\"        24 hours ago                       foobar_bar\n"
    )]
    #[case::default_is_table(
        "",
        false,
        false,
        "CONTAINER ID   COMMAND   CREATED        STATUS    PORTS     NAMES\ncontainerID1   \"\"        24 hours ago                       foobar_baz\ncontainerID2   \"\"        24 hours ago                       foobar_bar\n"
    )]
    #[case::table_image("table {{.Image}}", false, false, "IMAGE\nubuntu\nubuntu\n")]
    #[case::table_image_size("table {{.Image}}", false, true, "IMAGE\nubuntu\nubuntu\n")]
    #[case::table_image_quiet("table {{.Image}}", true, false, "containerID1\ncontainerID2\n")]
    #[case::table_quiet("table", true, false, "containerID1\ncontainerID2\n")]
    #[case::table_state("table {{.State}}", false, true, "STATE\nrunning\nrunning\n")]
    #[case::raw_quiet(
        "raw",
        true,
        false,
        "container_id: containerID1\ncontainer_id: containerID2\n"
    )]
    #[case::custom("{{.Image}}", false, false, "ubuntu\nubuntu\n")]
    #[case::custom_size("{{.Image}}", false, true, "ubuntu\nubuntu\n")]
    #[case::special_headers(
        r"table {{truncate .ID 5}}\t{{json .Image}} {{.RunningFor}}/{{title .Status}}/{{pad .Ports 2 2}}.{{upper .Names}} {{lower .Status}}",
        false, true,
        "CONTAINER ID   IMAGE CREATED/STATUS/  PORTS  .NAMES STATUS\nconta          \"ubuntu\" 24 hours ago//.FOOBAR_BAZ \nconta          \"ubuntu\" 24 hours ago//.FOOBAR_BAR \n"
    )]
    #[case::split_header(
        r#"table {{split .Image ":"}}"#,
        false,
        false,
        "IMAGE\n[ubuntu]\n[ubuntu]\n"
    )]
    fn ps_formatter_write(
        #[case] format: &str,
        #[case] quiet: bool,
        #[case] size: bool,
        #[case] expected: &str,
    ) {
        assert_eq!(
            ps(&formatter_containers(), quiet, false, size, format),
            expected
        );
    }

    #[test]
    fn ps_raw() {
        let created = GoTime {
            unix: NOW - 86_400,
            nanos: 0,
            offset: 0,
        }
        .go_string();
        let one = |id: &str, name: &str, size: &str| {
            format!(
                "container_id: {id}\ncommand: \"\"\ncreated_at: {created}\nstate: running\nstatus:\nnames: {name}\nlabels:\nports:\n{size}\n"
            )
        };
        assert_eq!(
            ps(&formatter_containers(), false, false, false, "raw"),
            one("containerID1", "foobar_baz", "") + &one("containerID2", "foobar_bar", "")
        );
        assert_eq!(
            ps(&formatter_containers(), false, false, true, "raw"),
            one("containerID1", "foobar_baz", "size: 0B\n")
                + &one("containerID2", "foobar_bar", "size: 0B\n")
        );
    }

    #[rstest]
    #[case("{{.Image}}", "")]
    #[case("table {{.Image}}", "IMAGE\n")]
    #[case("table {{.Image}}\t{{.Size}}", "IMAGE     SIZE\n")]
    #[case(
        "table",
        "CONTAINER ID   COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    )]
    fn ps_no_containers(#[case] format: &str, #[case] expected: &str) {
        assert_eq!(ps(&[], false, false, false, format), expected);
    }

    #[rstest]
    #[case(
        "{{InvalidFunction}}",
        r#"failed to parse template: template: :1: function "InvalidFunction" not defined"#
    )]
    #[case("{{nil}}", r#"failed to execute template: template: :1:2: executing "" at <nil>: nil is not a command"#)]
    #[case("{{.Foo}}", r#"failed to execute template: template: :1:2: executing "" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext"#)]
    #[case("{{join}}", r#"failed to execute template: template: :1:2: executing "" at <join>: wrong number of args for join: want 2 got 0"#)]
    fn ps_template_errors(#[case] format: &str, #[case] message: &str) {
        // Errors come from docker's up-front check, even with no containers.
        assert_eq!(ps_err(&[], format), message);
        assert_eq!(ps_err(&formatter_containers(), format), message);
    }

    #[test]
    fn ps_json() {
        let created = NOW - 65;
        let containers = vec![
            json!({"Id": "containerID1", "Names": ["/foobar_baz"], "Image": "ubuntu",
                   "Created": created, "State": "running"}),
            json!({"Id": "f".repeat(64), "Names": ["/web"], "Image": "", "Created": created,
                   "Command": "sh -c 'a && b > /tmp/x'", "State": "exited",
                   "Status": "Exited (0) 3 minutes ago",
                   "Labels": {"b": "2", "a": "1"},
                   "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"}],
                   "NetworkSettings": {"Networks": {"front": {}, "back": {}}}}),
        ];
        let created_at = GoTime {
            unix: created,
            nanos: 0,
            offset: 0,
        }
        .go_string();
        let expected = format!(
            concat!(
                r#"{{"Command":"\"\"","CreatedAt":"{c}","ID":"containerID1","Image":"ubuntu","Labels":"","LocalVolumes":"0","Mounts":"","Names":"foobar_baz","Networks":"","Platform":null,"Ports":"","RunningFor":"About a minute ago","Size":"0B","State":"running","Status":""}}"#,
                "\n",
                r#"{{"Command":"\"sh -c 'a \u0026\u0026 b \u003e /tm…\"","CreatedAt":"{c}","ID":"ffffffffffff","Image":"\u003cno image\u003e","Labels":"a=1,b=2","LocalVolumes":"0","Mounts":"","Names":"web","Networks":"back,front","Platform":null,"Ports":"0.0.0.0:8081-\u003e80/tcp","RunningFor":"About a minute ago","Size":"0B","State":"exited","Status":"Exited (0) 3 minutes ago"}}"#,
                "\n"
            ),
            c = created_at
        );
        assert_eq!(ps(&containers, false, false, false, "json"), expected);
        assert_eq!(ps(&containers, false, false, false, "{{json .}}"), expected);
        assert_eq!(
            ps(&containers, false, false, false, "{{json .ID}}"),
            "\"containerID1\"\n\"ffffffffffff\"\n"
        );
    }

    #[test]
    fn ps_back_compat_fields() {
        // docker's TestContainerBackCompat.
        let c = json!({
            "Id": "aabbccddeeff", "Names": ["/foobar_baz"], "Image": "docker.io/library/ubuntu",
            "ImageID": "sha256:a5a665ff33eced1e0803148700880edab4269067ed77e27737a708d0d293fbf5",
            "Command": "/bin/sh", "Created": NOW - 365 * 86_400,
            "Ports": [{"PrivatePort": 8080, "PublicPort": 8080, "Type": "tcp"}],
            "SizeRw": 123, "SizeRootFs": 12345,
            "Labels": {"label1": "value1", "label2": "value2"},
            "State": "running", "Status": "running",
            "HostConfig": {"NetworkMode": "bridge"}
        });
        for (field, expected) in [
            ("ID", "aabbccddeeff"),
            ("Names", "foobar_baz"),
            ("Image", "docker.io/library/ubuntu"),
            ("Command", "\"/bin/sh\""),
            ("RunningFor", "12 months ago"),
            ("Ports", "8080/tcp"),
            ("Status", "running"),
            ("Size", "123B (virtual 12.3kB)"),
            ("Labels", "label1=value1,label2=value2"),
            ("Mounts", ""),
            ("Networks", ""),
            ("LocalVolumes", "0"),
        ] {
            let out = ps(
                std::slice::from_ref(&c),
                false,
                false,
                false,
                &format!("{{{{ .{field} }}}}"),
            );
            assert_eq!(out.trim(), expected, "{field}");
        }
    }

    #[test]
    fn ps_context_fields() {
        // docker's TestContainerPsContext cases.
        let id = "ab".repeat(32);
        let cases = [
            (
                json!({"Id": id}),
                true,
                "{{.ID}}",
                "abababababab".to_string(),
            ),
            (json!({"Id": id}), false, "{{.ID}}", id.clone()),
            (
                json!({"Names": ["/foobar_baz"]}),
                true,
                "{{.Names}}",
                "foobar_baz".into(),
            ),
            (
                json!({"Image": "ubuntu"}),
                true,
                "{{.Image}}",
                "ubuntu".into(),
            ),
            (
                json!({"Image": "a5a665ff33eced1e0803148700880edab4",
                       "ImageID": "a5a665ff33eced1e0803148700880edab4269067ed77e27737a708d0d293fbf5"}),
                true,
                "{{.Image}}",
                "a5a665ff33ec".into(),
            ),
            (
                json!({"Image": "a5a665ff33eced1e0803148700880edab4",
                       "ImageID": "a5a665ff33eced1e0803148700880edab4269067ed77e27737a708d0d293fbf5"}),
                false,
                "{{.Image}}",
                "a5a665ff33eced1e0803148700880edab4".into(),
            ),
            (
                json!({"Image": ""}),
                true,
                "{{.Image}}",
                "<no image>".into(),
            ),
            (
                json!({"Command": "sh -c 'ls -la'"}),
                true,
                "{{.Command}}",
                "\"sh -c 'ls -la'\"".into(),
            ),
            (
                json!({"Created": 1_700_000_000}),
                true,
                "{{.CreatedAt}}",
                "2023-11-14 22:13:20 +0000 UTC".into(),
            ),
            (
                json!({"Ports": [{"PrivatePort": 8080, "PublicPort": 8080, "Type": "tcp"}]}),
                true,
                "{{.Ports}}",
                "8080/tcp".into(),
            ),
            (
                json!({"Status": "Up 123 seconds"}),
                true,
                "{{.Status}}",
                "Up 123 seconds".into(),
            ),
            (
                json!({"State": "running"}),
                true,
                "{{.State}}",
                "running".into(),
            ),
            (json!({"SizeRw": 10}), true, "{{.Size}}", "10B".into()),
            (
                json!({"SizeRw": 10, "SizeRootFs": 20}),
                true,
                "{{.Size}}",
                "10B (virtual 20B)".into(),
            ),
            (json!({}), true, "{{.Labels}}", "".into()),
            (
                json!({"Labels": {"cpu": "6", "storage": "ssd"}}),
                true,
                "{{.Labels}}",
                "cpu=6,storage=ssd".into(),
            ),
            // Sorted as "k=v" strings, like docker: "a.b=1" < "a=2".
            (
                json!({"Labels": {"a": "2", "a.b": "1"}}),
                true,
                "{{.Labels}}",
                "a.b=1,a=2".into(),
            ),
            (
                json!({"Created": NOW - 65}),
                true,
                "{{.RunningFor}}",
                "About a minute ago".into(),
            ),
            (
                json!({"Mounts": [{"Name": "this-is-a-long-volume-name-and-will-be-truncated-if-trunc-is-set", "Driver": "local", "Source": "/a/path"}]}),
                true,
                "{{.Mounts}} {{.LocalVolumes}}",
                "this-is-a-long… 1".into(),
            ),
            (
                json!({"Mounts": [{"Driver": "local", "Source": "/a/path"}]}),
                false,
                "{{.Mounts}}",
                "/a/path".into(),
            ),
            (
                json!({"Mounts": [{"Name": "733908409c91817de8e92b0096373245f329f19a88e2c849f02460e9b3d1c203", "Driver": "local", "Source": "/a/path"}]}),
                false,
                "{{.Mounts}}",
                "733908409c91817de8e92b0096373245f329f19a88e2c849f02460e9b3d1c203".into(),
            ),
            (
                json!({"Labels": {"com.docker.swarm.swarm-id": "33", "com.docker.swarm.node_name": "ubuntu"}}),
                true,
                r#"{{.Label "com.docker.swarm.swarm-id"}} {{.Label "com.docker.swarm.node_name"}}"#,
                "33 ubuntu".into(),
            ),
            (
                json!({}),
                true,
                r#"[{{.Label "anything.really"}}]"#,
                "[]".into(),
            ),
        ];
        for (c, trunc, format, expected) in cases {
            let out = ps(&[c], false, !trunc, false, format);
            assert_eq!(out, format!("{expected}\n"), "{format}");
        }
    }

    // --- docker ps: cli/command/container/testdata goldens -----------------

    #[test]
    fn ps_list_without_format() {
        let mut c3 = builder("c3");
        c3["Ports"] = json!([{"PrivatePort": 80, "PublicPort": 80, "Type": "tcp"},
                             {"PrivatePort": 81, "PublicPort": 81, "Type": "tcp"},
                             {"PrivatePort": 82, "PublicPort": 82, "Type": "tcp"}]);
        let mut c4 = builder("c4");
        c4["Ports"] = json!([{"PrivatePort": 81, "PublicPort": 81, "Type": "udp"}]);
        let mut c5 = builder("c5");
        c5["Ports"] =
            json!([{"IP": "8.8.8.8", "PrivatePort": 82, "PublicPort": 82, "Type": "tcp"}]);
        let mut c2 = builder("c2");
        c2["Names"] = json!(["/c2", "/foo"]);
        let containers = vec![builder("c1"), c2, c3, c4, c5];
        // container-list-without-format.golden, without the IMAGE column.
        let expected = "\
CONTAINER ID   COMMAND   CREATED              STATUS        PORTS                NAMES
container_id   \"top\"     About a minute ago   Up 1 minute                        c1
container_id   \"top\"     About a minute ago   Up 1 minute                        c2
container_id   \"top\"     About a minute ago   Up 1 minute   80-82/tcp            c3
container_id   \"top\"     About a minute ago   Up 1 minute   81/udp               c4
container_id   \"top\"     About a minute ago   Up 1 minute   8.8.8.8:82->82/tcp   c5
";
        let opts = PsOptions::default();
        assert_eq!(
            container_ps(&containers, &opts, NOW).expect("renders"),
            expected
        );
    }

    #[test]
    fn ps_list_no_trunc_and_names() {
        let mut c2 = builder("c2");
        c2["Names"] = json!(["/c2", "/foo/bar"]);
        let containers = vec![builder("c1"), c2];
        // container-list-without-format-no-trunc.golden, without IMAGE.
        let expected = "\
CONTAINER ID   COMMAND   CREATED              STATUS        PORTS     NAMES
container_id   \"top\"     About a minute ago   Up 1 minute             c1
container_id   \"top\"     About a minute ago   Up 1 minute             c2,foo/bar
";
        let opts = PsOptions {
            no_trunc: true,
            ..PsOptions::default()
        };
        assert_eq!(
            container_ps(&containers, &opts, NOW).expect("renders"),
            expected
        );
        // container-list-format-name-name.golden
        assert_eq!(
            ps(&containers, false, false, false, "{{.Names}} {{.Names}}"),
            "c1 c1\nc2 c2\n"
        );
    }

    #[test]
    fn ps_list_label_arg_and_quiet() {
        let mut c1 = builder("c1");
        c1["Labels"] = json!({"some.label": "value"});
        let mut c2 = builder("c2");
        c2["Names"] = json!(["/c2", "/foo/bar"]);
        c2["Labels"] = json!({"foo": "bar"});
        let containers = vec![c1, c2];
        // container-list-format-with-arg.golden
        assert_eq!(
            ps(
                &containers,
                false,
                false,
                false,
                r#"{{.Names}} {{.Label "some.label"}}"#
            ),
            "c1 value\nc2 \n"
        );
        // container-list-with-format.golden
        assert_eq!(
            ps(
                &containers,
                false,
                false,
                false,
                "{{ .Names }} {{ .Image }} {{ .Labels }}"
            ),
            "c1 busybox:latest some.label=value\nc2 busybox:latest foo=bar\n"
        );
        // container-list-quiet.golden: -q wins over --format.
        assert_eq!(
            ps(
                &containers,
                true,
                false,
                false,
                "{{ .Names }} {{ .Image }} {{ .Labels }}"
            ),
            "container_id\ncontainer_id\n"
        );
        // A table with a label column: the header is SubHeaderContext.Label.
        assert_eq!(
            ps(
                &containers,
                false,
                false,
                false,
                r#"table {{.Names}}\t{{.Label "some.label"}}"#
            ),
            "NAMES     label\nc1        value\nc2        \n"
        );
    }

    #[test]
    fn ps_netloom_default_table() {
        let containers = vec![
            json!({"Id": "3f4e1a2b5c6d7e8f".repeat(4), "Names": ["/web"],
                   "Image": "", "Command": "python3 -m http.server 80", "Created": NOW - 12,
                   "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"},
                             {"IP": "::", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"}],
                   "State": "running", "Status": "Up 11 seconds",
                   "HostConfig": {"NetworkMode": "mynet"},
                   "NetworkSettings": {"Networks": {"mynet": {}}}, "Mounts": []}),
            json!({"Id": "0123456789abcdef".repeat(4), "Names": ["/u1"],
                   "Image": "", "Command": "sleep infinity", "Created": NOW - 300,
                   "Ports": [], "State": "exited", "Status": "Exited (0) 3 minutes ago"}),
        ];
        let expected = "\
CONTAINER ID   COMMAND                  CREATED          STATUS                     PORTS                                     NAMES
3f4e1a2b5c6d   \"python3 -m http.ser…\"   12 seconds ago   Up 11 seconds              0.0.0.0:8081->80/tcp, [::]:8081->80/tcp   web
0123456789ab   \"sleep infinity\"         5 minutes ago    Exited (0) 3 minutes ago                                             u1
";
        assert_eq!(
            super::ps(&containers, false, false, None, NOW).expect("renders"),
            expected
        );
        assert_eq!(
            ps(&containers, false, false, false, "{{.Networks}}|{{.State}}"),
            "mynet|running\n|exited\n"
        );
    }

    #[test]
    fn ps_exec_error_in_rows() {
        // Passes docker's up-front check on an empty context (Labels is
        // "" there) but fails on a real row.
        let c = json!({"Names": ["/x1"], "Labels": {"a": "1"}});
        let err = ps_err(&[c], r#"{{if .Labels}}{{index .Labels "a"}}{{end}}"#);
        assert_eq!(
            err,
            r#"template parsing error: template: :1:16: executing "" at <index .Labels "a">: error calling index: cannot index slice/array with type string"#
        );
    }

    // --- .Label substitution ----------------------------------------------

    #[rstest]
    #[case(r#"{{.Label "k"}}"#, Some(r#"{{"v"}}"#))]
    #[case(r#"{{ .Label `k` | upper }}"#, Some(r#"{{ "v" | upper }}"#))]
    #[case(r#"{{$.Label "k"}}"#, Some(r#"{{"v"}}"#))]
    #[case(r#"{{printf "%s" (.Label "k")}}"#, Some(r#"{{printf "%s" ("v")}}"#))]
    #[case(r#"{{.Label "missing"}}"#, Some(r#"{{""}}"#))]
    #[case(r#"{{.Label "q\"\x41"}}"#, Some(r#"{{"quote"}}"#))]
    #[case(r#"x .Label "k" {{.Labels}}"#, None)]
    #[case(r#"{{.Label}}"#, None)]
    #[case(r#"{{$x.Label "k"}}"#, None)]
    #[case(r#"{{.Foo.Label "k"}}"#, None)]
    #[case(r#"{{.Labelx "k"}}"#, None)]
    #[case(r#"{{" .Label \"k\" "}}"#, None)]
    #[case(r#"{{/* .Label "k" */}}"#, None)]
    #[case(r#"{{with .Names}}{{.Label "k"}}{{end}}"#, None)]
    #[case(
        r#"{{with .Label "k"}}{{.}}{{end}}"#,
        Some(r#"{{with "v"}}{{.}}{{end}}"#)
    )]
    #[case(
        r#"{{range .X}}{{$.Label "k"}}{{end}}"#,
        Some(r#"{{range .X}}{{"v"}}{{end}}"#)
    )]
    #[case(
        r#"{{with .A}}{{else}}{{.Label "k"}}{{end}}"#,
        Some(r#"{{with .A}}{{else}}{{"v"}}{{end}}"#)
    )]
    #[case(
        r#"{{if .A}}{{.Label "k"}}{{end}}{{- .Label "k" -}}"#,
        Some(r#"{{if .A}}{{"v"}}{{end}}{{- "v" -}}"#)
    )]
    fn label_substitution(#[case] src: &str, #[case] expected: Option<&str>) {
        let labels = |k: &str| match k {
            "k" => "v".to_string(),
            "q\"A" => "quote".to_string(),
            _ => String::new(),
        };
        assert_eq!(substitute_labels(src, &labels).as_deref(), expected);
    }

    // --- docker port: cli/command/container/testdata goldens ---------------

    fn port_inspect(ips: &[&str]) -> Value {
        let bindings = |port: &str| -> Value {
            ips.iter()
                .map(|ip| json!({"HostIp": ip, "HostPort": port}))
                .collect()
        };
        json!({"NetworkSettings": {"Ports": {
            "80/tcp": bindings("3456"),
            "443/tcp": bindings("4567"),
            "443/udp": bindings("5678"),
        }}})
    }

    #[rstest]
    #[case(&["0.0.0.0"], Some("80"), "0.0.0.0:3456\n")]
    #[case(&["::"], Some("80"), "[::]:3456\n")]
    #[case(&["::", "0.0.0.0"], Some("80"), "0.0.0.0:3456\n[::]:3456\n")]
    #[case(&["::", "0.0.0.0"], Some("443/udp"), "0.0.0.0:5678\n[::]:5678\n")]
    #[case(&["::", "0.0.0.0"], None, "80/tcp -> 0.0.0.0:3456\n80/tcp -> [::]:3456\n443/tcp -> 0.0.0.0:4567\n443/tcp -> [::]:4567\n443/udp -> 0.0.0.0:5678\n443/udp -> [::]:5678\n")]
    #[case(&[""], Some("80/tcp"), ":3456\n")]
    fn port_output(#[case] ips: &[&str], #[case] arg: Option<&str>, #[case] expected: &str) {
        assert_eq!(
            container_port(&port_inspect(ips), "some_container", arg).expect("published"),
            expected
        );
    }

    #[test]
    fn port_nothing_published() {
        let inspect = json!({"NetworkSettings": {"Ports": {"80/tcp": null}}});
        assert_eq!(container_port(&inspect, "c1", None).expect("ok"), "");
        let inspect = json!({"NetworkSettings": {"Ports": {}}});
        assert_eq!(container_port(&inspect, "c1", None).expect("ok"), "");
    }

    #[rstest]
    #[case("8080", "Error: No public port '8080' published for c1")]
    #[case("80/udp", "Error: No public port '80/udp' published for c1")]
    #[case("81", "Error: No public port '81' published for c1")]
    #[case("81/tcp", "Error: No public port '81/tcp' published for c1")]
    #[case(
        "http",
        r#"Error: invalid port (http): strconv.ParseUint: parsing "http": invalid syntax"#
    )]
    #[case(
        "70000/tcp",
        r#"Error: invalid port (70000): strconv.ParseUint: parsing "70000": value out of range"#
    )]
    #[case(
        "/tcp",
        r#"Error: invalid port (): strconv.ParseUint: parsing "": invalid syntax"#
    )]
    #[case(
        "-1",
        r#"Error: invalid port (-1): strconv.ParseUint: parsing "-1": invalid syntax"#
    )]
    fn port_errors(#[case] arg: &str, #[case] message: &str) {
        let inspect = json!({"NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8081"}], "81/tcp": null}}});
        assert_eq!(
            container_port(&inspect, "c1", Some(arg))
                .expect_err("fails")
                .to_string(),
            message
        );
    }
}
