//! Default locations of the API socket and the data root, for root and rootless use.

use std::path::PathBuf;

/// Whether the process runs as root (decides the defaults).
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn rootless_base(var: &str, fallback: impl FnOnce(PathBuf) -> PathBuf) -> PathBuf {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| "/tmp".into());
            fallback(home)
        }
    }
}

/// `/run/netloom/netloom.sock` as root, `$XDG_RUNTIME_DIR/netloom/netloom.sock` otherwise
/// (falling back to `/tmp/netloom-$UID/netloom.sock` when `XDG_RUNTIME_DIR` is unset).
pub fn default_socket() -> PathBuf {
    if is_root() {
        return "/run/netloom/netloom.sock".into();
    }
    let uid = nix::unistd::getuid();
    rootless_base("XDG_RUNTIME_DIR", |_| format!("/tmp/netloom-{uid}").into())
        .join("netloom")
        .join("netloom.sock")
}

/// `/var/lib/netloom` as root, `$XDG_DATA_HOME/netloom` (or `~/.local/share/netloom`) otherwise.
pub fn default_data_root() -> PathBuf {
    if is_root() {
        return "/var/lib/netloom".into();
    }
    rootless_base("XDG_DATA_HOME", |home| home.join(".local/share")).join("netloom")
}

/// The `unix://` address of the default socket, as `-H` takes it.
pub fn default_host() -> String {
    format!("unix://{}", default_socket().display())
}

/// Parses `-H`: `unix:///path` or a bare absolute path.
pub fn parse_host(h: &str) -> Result<PathBuf, HostError> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.starts_with('/') {
            return Ok(p.into());
        }
    } else if h.starts_with('/') {
        return Ok(h.into());
    }
    Err(HostError(h.to_owned()))
}

/// An `-H` value netloom cannot use.
#[derive(Debug, thiserror::Error)]
#[error("unsupported host {0:?}: netloom listens only on Unix sockets; give unix:///absolute/path")]
pub struct HostError(pub String);
