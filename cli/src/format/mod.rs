//! Output formatting for `netloom network ...`, byte-compatible with the
//! docker CLI v28.2.2: table/`--format` rendering for `network ls`
//! ([`network_ls`]) and JSON/template output for `network inspect`
//! ([`inspect`], [`Inspector`]).
//!
//! Building blocks: [`tabwriter`] (docker's elastic tabstops), [`natsort`]
//! (name ordering), [`template`] (Go text/template subset) and [`json`]
//! (Go-compatible JSON encoding and indentation).

pub mod container;
mod gotime;
mod inspect;
pub mod json;
pub mod natsort;
mod network;
mod runewidth;
pub mod tabwriter;
pub mod template;
mod width_tables;

pub use inspect::{Inspector, inspect};
pub use natsort::natural_less;
pub use network::network_ls;

/// Errors of the formatting module.
///
/// The `Display` text is what docker prints on stderr (`docker` adds a
/// newline). [`FormatError::exit_code`] gives docker's exit status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The template failed to parse. The payload is Go's message, e.g.
    /// `template: :1: function "foo" not defined`.
    #[error("template parsing error: {0}")]
    Parse(String),
    /// The template failed while executing, e.g.
    /// `template: :1:2: executing "" at <.Foo>: can't evaluate field Foo in
    /// type *network.networkContext`. (docker uses the same prefix.)
    #[error("template parsing error: {0}")]
    Exec(String),
    /// The template uses a construct this port does not implement
    /// (`{{define}}`, `{{block}}`, complex numbers).
    #[error("template parsing error: {0}")]
    Unsupported(String),
    /// `network inspect` finished with errors. `stdout` is still printed by
    /// docker (before the errors); `message` is the joined error text
    /// (one error per line) and `code` the exit status: 64 when the
    /// template did not parse, 1 otherwise.
    #[error("{message}")]
    Inspect {
        /// What docker writes to stdout anyway.
        stdout: String,
        /// What docker writes to stderr (without the final newline).
        message: String,
        /// docker's exit status.
        code: i32,
    },
}

impl FormatError {
    /// docker's exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            FormatError::Inspect { code, .. } => *code,
            _ => 1,
        }
    }

    /// Output docker still writes to stdout despite the error.
    pub fn stdout(&self) -> &str {
        match self {
            FormatError::Inspect { stdout, .. } => stdout,
            _ => "",
        }
    }
}

/// Aligns a table like docker's formatter: the header row is the template run on the column
/// names with docker's header functions (errors ignored, partial output kept), then the body,
/// all through docker's tabwriter.
fn table_with_header(
    tmpl: &template::Template,
    header_ctx: &template::value::Val,
    body: &str,
) -> String {
    let mut header = String::new();
    let opts = template::ExecOptions {
        header: true,
        missing_key_error: false,
    };
    let _ = tmpl.execute_val(&mut header, header_ctx, opts);
    let mut tw = tabwriter::TabWriter::docker();
    tw.write(&header);
    tw.write("\n");
    tw.write(body);
    tw.finish()
}

#[cfg(test)]
mod tests;
