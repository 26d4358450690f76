//! TEMPORARY compile shim; replaced by the real formatter.
#![allow(missing_docs, unreachable_pub)]
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(String);
pub fn network_ls(
    n: &[serde_json::Value],
    _q: bool,
    _t: bool,
    _f: Option<&str>,
) -> Result<String, FormatError> {
    Ok(format!("{n:?}\n"))
}
pub fn inspect(n: &[serde_json::Value], _f: Option<&str>) -> Result<String, FormatError> {
    Ok(serde_json::to_string_pretty(n).unwrap() + "\n")
}
pub fn check_template(_f: Option<&str>) -> Result<(), FormatError> {
    Ok(())
}
