//! `docker network inspect` output (cli/command/inspect/inspector.go).
//!
//! Default output: docker joins the raw JSON bodies it received as
//! `[` body `,` body `]` and runs Go's `json.Indent` with a 4-space indent.
//! Here each object is first encoded the way the daemon's Go encoder writes
//! it (compact, `SetEscapeHTML(false)`, Go string escaping and number
//! formatting; see [`super::json::encode`]; struct fields in the order
//! given, keys of Go-map fields such as `Labels`/`Options`/`Containers`
//! sorted as Go's encoder sorts them), then the same indentation is applied
//! — so string contents are exactly what the daemon would have sent, and
//! `{}`/`[]` stay on one line.
//!
//! `--format json`: the same array compacted (`json.Compact`).
//!
//! Other formats are templates (no `\t`/`\n` unescaping, unlike `ls`).
//! Each object is first executed against its typed form (`network.Inspect`,
//! so `{{.ID}}`, `{{.Created}}` as a time, structs printed as `{...}`), and
//! when that fails, against the raw decoded JSON with `missingkey=error`
//! (so `{{.Id}}` works too). Like docker, switching to `missingkey=error`
//! is sticky for the objects that follow.

use serde_json::Value;

use super::FormatError;
use super::json;
use super::network::{daemon_order, typed_network};
use super::template::value::from_json_raw;
use super::template::{ExecOptions, Template};

#[derive(Debug)]
enum Mode {
    Indented,
    Json,
    Template(Box<Template>),
}

/// Streaming form of [`inspect`], for interleaving lookup errors (e.g. a
/// network that does not exist) with the objects that were found, in
/// argument order, as docker does.
#[derive(Debug)]
pub struct Inspector {
    mode: Mode,
    raw: Vec<String>,
    buffer: String,
    errors: Vec<String>,
    missing_key_error: bool,
    /// Templates run on the decoded JSON only (objects other than networks: docker's typed
    /// first pass is network-specific here).
    raw_only: bool,
}

impl Inspector {
    /// Prepares an inspector for the `--format` value (`None` or `""`:
    /// indented JSON; `"json"`: compact JSON; anything else: a template).
    ///
    /// A template that does not parse gives [`FormatError::Inspect`] with
    /// exit code 64 and the message `template parsing error: template:
    /// :1: ...` (docker prints nothing on stdout then).
    pub fn new(format: Option<&str>) -> Result<Inspector, FormatError> {
        let mode = match format {
            None | Some("") => Mode::Indented,
            Some("json") => Mode::Json,
            Some(f) => match Template::parse(f) {
                Ok(t) => Mode::Template(Box::new(t)),
                Err(e) => {
                    return Err(FormatError::Inspect {
                        stdout: String::new(),
                        message: e.to_string(),
                        code: 64,
                    });
                }
            },
        };
        Ok(Inspector {
            mode,
            raw: Vec::new(),
            buffer: String::new(),
            errors: Vec::new(),
            missing_key_error: false,
            raw_only: false,
        })
    }

    /// Like [`Inspector::new`], for objects that are not networks (containers): templates run
    /// on the decoded JSON with missing keys as errors, as docker's raw pass does.
    pub fn new_raw(format: Option<&str>) -> Result<Inspector, FormatError> {
        let mut i = Inspector::new(format)?;
        i.raw_only = true;
        i.missing_key_error = true;
        Ok(i)
    }

    /// Adds one object (as the daemon returned it).
    pub fn add(&mut self, object: &Value) {
        match &self.mode {
            Mode::Indented | Mode::Json => {
                self.raw.push(json::encode(&daemon_order(object), false));
            }
            Mode::Template(t) => {
                let mut out = String::new();
                let opts = ExecOptions {
                    header: false,
                    missing_key_error: self.missing_key_error,
                };
                if !self.raw_only
                    && t.execute_val(&mut out, &typed_network(object), opts)
                        .is_ok()
                {
                    self.buffer.push_str(&out);
                    self.buffer.push('\n');
                    return;
                }
                // Raw fallback: decoded JSON, missingkey=error from now on.
                self.missing_key_error = true;
                let opts = ExecOptions {
                    header: false,
                    missing_key_error: true,
                };
                let mut out = String::new();
                match t.execute_val(&mut out, &from_json_raw(object), opts) {
                    Ok(()) => {
                        self.buffer.push_str(&out);
                        self.buffer.push('\n');
                    }
                    Err(e) => self.errors.push(FormatError::Exec(e).to_string()),
                }
            }
        }
    }

    /// Records an error for a reference that could not be inspected
    /// (docker prints the client's message, e.g. `Error: No such network:
    /// foo`; pass the exact text).
    pub fn add_error(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    /// Finishes: `Ok(stdout)` when there were no errors, otherwise
    /// [`FormatError::Inspect`] carrying the stdout docker still prints,
    /// the errors joined by newlines, and exit code 1.
    pub fn finish(self) -> Result<String, FormatError> {
        let stdout = match self.mode {
            Mode::Indented | Mode::Json if self.raw.is_empty() => "[]\n".to_string(),
            Mode::Indented => {
                let joined = format!("[{}]", self.raw.join(","));
                format!("{}\n", json::indent(&joined, "", "    "))
            }
            Mode::Json => format!("[{}]\n", self.raw.join(",")),
            Mode::Template(_) if self.buffer.is_empty() => "\n".to_string(),
            Mode::Template(_) => self.buffer,
        };
        if self.errors.is_empty() {
            Ok(stdout)
        } else {
            Err(FormatError::Inspect {
                stdout,
                message: self.errors.join("\n"),
                code: 1,
            })
        }
    }
}

/// Renders `docker network inspect` output for `objects` (Engine API
/// shape, key order preserved) with the `--format` value `format`.
///
/// Without a format: a JSON array indented with 4 spaces, `"Key": value`,
/// empty maps/arrays as `{}`/`[]`, objects separated by `},` + newline +
/// `{`, and a final newline. With a template: each object's output
/// followed by a newline (a lone newline when nothing was produced).
///
/// On template errors the `Err` is [`FormatError::Inspect`], which also
/// carries the stdout docker prints anyway and the exit code.
pub fn inspect(objects: &[Value], format: Option<&str>) -> Result<String, FormatError> {
    let mut inspector = Inspector::new(format)?;
    for o in objects {
        inspector.add(o);
    }
    inspector.finish()
}
