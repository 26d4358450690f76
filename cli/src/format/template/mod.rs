//! A Go `text/template` subset, as used by docker's `--format` flags.
//!
//! Supported: text, `{{.Field}}` / `{{.A.B}}` chains, method calls with
//! arguments (`{{.Label "k"}}`), variables (`$`, `$x := …`, `$x = …`),
//! pipelines (`|`), parenthesized pipelines, `if`/`else if`/`else`,
//! `with`/`else with`, `range` (slices, maps in sorted key order, integers;
//! one or two variables; `else`; `break`/`continue`), comments, trim
//! markers `{{-`/`-}}`, and literals (strings, raw strings, chars, numbers,
//! `true`/`false`/`nil`).
//!
//! Functions: docker's `json`, `split`, `join`, `title`, `lower`, `upper`,
//! `pad`, `truncate`, and Go's builtins `and`, `or`, `not`, `len`, `index`,
//! `slice`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `print`, `printf`,
//! `println`, `html`, `js`, `urlquery` (`call` always fails: the data has
//! no function values).
//!
//! Not supported: `{{define}}` and `{{block}}` (parse error
//! [`FormatError::Unsupported`]); `{{template "x"}}` parses but fails when
//! executed, as in docker (no associated templates exist); complex
//! number literals.
//!
//! Error texts follow Go's (`template: :1: function "foo" not defined`,
//! `template: :1:2: executing "" at <.Foo>: map has no entry for key
//! "Foo"`).

mod exec;
mod funcs;
pub(crate) mod gofmt;
mod lex;
mod methods;
mod parse;
pub(crate) mod value;

use serde_json::Value;

pub(crate) use exec::ExecOptions;
use value::Val;

use super::FormatError;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    text: String,
    root: Vec<parse::Node>,
}

impl Template {
    /// Parses `text` like docker's `templates.Parse` (Go's text/template
    /// with docker's functions). Errors carry Go's message, e.g.
    /// `template: :1: function "foo" not defined`.
    pub fn parse(text: &str) -> Result<Template, FormatError> {
        match parse::parse(text) {
            Ok(root) => Ok(Template {
                text: text.to_string(),
                root,
            }),
            Err(parse::ParseError::Syntax { line, msg }) => {
                Err(FormatError::Parse(format!("template: :{line}: {msg}")))
            }
            Err(parse::ParseError::Unsupported { line, what }) => Err(FormatError::Unsupported(
                format!("template: :{line}: {what} is not supported"),
            )),
        }
    }

    /// Executes the template on JSON data decoded as Go decodes into an
    /// `interface{}` (with `UseNumber`): objects are maps (printed and
    /// ranged in sorted key order), numbers keep their JSON text.
    /// `missing_key_error` selects Go's `missingkey=error` option.
    pub fn execute_json(
        &self,
        data: &Value,
        missing_key_error: bool,
    ) -> Result<String, FormatError> {
        let mut out = String::new();
        let opts = ExecOptions {
            header: false,
            missing_key_error,
        };
        self.execute_val(&mut out, &value::from_json_raw(data), opts)
            .map_err(FormatError::Exec)?;
        Ok(out)
    }

    /// Executes on a modelled value; output written before an error is
    /// left in `out`. The error is Go's message (without docker's prefix).
    pub(crate) fn execute_val(
        &self,
        out: &mut String,
        data: &Val,
        opts: ExecOptions,
    ) -> Result<(), String> {
        exec::execute(&self.text, &self.root, out, data, opts)
    }
}

#[cfg(test)]
mod tests;
