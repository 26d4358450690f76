//! The Docker Engine API subset netloom speaks: wire types, filters, and the one place where
//! typed errors become Docker's user-facing texts and HTTP statuses.

pub mod containers;
pub mod filters;
#[doc(hidden)]
pub mod fuzzing;
pub mod types;

use std::fmt;
use std::str::FromStr;

use hyper::StatusCode;
use serde::Serialize;

use crate::daemon::engine::{CreateNetwork, Engine, EngineError};
use filters::FilterError;
use types::NetworkCreateRequest;

/// The newest API version served; the docker CLI negotiates down to it.
pub const MAX_API_VERSION: &str = "1.50";
/// The oldest API version accepted in a `/v1.NN/` path prefix.
pub const MIN_API_VERSION: &str = "1.40";

/// An API version from a path prefix, e.g. `1.45`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(u32, u32);

impl FromStr for ApiVersion {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (a, b) = s.split_once('.').ok_or(())?;
        if a.is_empty() || b.is_empty() || !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
            return Err(());
        }
        Ok(ApiVersion(
            a.parse().map_err(|_| ())?,
            b.parse().map_err(|_| ())?,
        ))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl ApiVersion {
    /// Refuses versions outside [`MIN_API_VERSION`]..=[`MAX_API_VERSION`] with Docker's texts.
    pub fn check(self) -> Result<(), ApiError> {
        let max: ApiVersion = MAX_API_VERSION.parse().expect("valid constant");
        let min: ApiVersion = MIN_API_VERSION.parse().expect("valid constant");
        if self > max {
            return Err(ApiError::bad_request(format!(
                "client version {self} is too new. Maximum supported API version is {MAX_API_VERSION}"
            )));
        }
        if self < min {
            return Err(ApiError::bad_request(format!(
                "client version {self} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            )));
        }
        Ok(())
    }
}

/// A failed request: status and the message the client shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Docker's message.
    pub message: String,
}

impl ApiError {
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl From<crate::daemon::runtime::RuntimeError> for ApiError {
    fn from(e: crate::daemon::runtime::RuntimeError) -> Self {
        use crate::daemon::runtime::RuntimeError as R;
        match e {
            R::Engine(e) => e.into(),
            R::Setup(m) => {
                ApiError::internal(format!("failed to set up container networking: {m}"))
            }
            R::NotRunning(id) => ApiError {
                status: StatusCode::CONFLICT,
                message: format!("container {id} is not running"),
            },
            // Docker: `errdefs.System`, wrapped in `errSetupNetworking` by the start.
            e @ R::Ports { .. } => {
                ApiError::internal(format!("failed to set up container networking: {e}"))
            }
        }
    }
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        use netloom_ipam::PlanError as P;
        let status = match &e {
            EngineError::NetworkNotFound(_) | EngineError::ContainerNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            EngineError::RenameTo(inner) if matches!(**inner, EngineError::NameInUse { .. }) => {
                StatusCode::CONFLICT
            }
            EngineError::NetworkExists(_)
            | EngineError::NameInUse { .. }
            | EngineError::OwnerNotRunning(_)
            | EngineError::RemoveRunning(_) => StatusCode::CONFLICT,
            EngineError::Spawn(_) => StatusCode::INTERNAL_SERVER_ERROR,
            EngineError::ActiveEndpoints { .. } | EngineError::AlreadyAttached { .. } => {
                StatusCode::FORBIDDEN
            }
            EngineError::NotConnected { .. } | EngineError::PoolFull { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            EngineError::PredefinedNetwork(_)
            | EngineError::PredefinedName(_)
            | EngineError::SingleInstanceDriver(_)
            | EngineError::MultipleSubnets => StatusCode::FORBIDDEN,
            EngineError::UnknownIpamDriver(_) => StatusCode::NOT_FOUND,
            EngineError::Invalid(crate::model::ModelError::UnknownDriver(_)) => {
                StatusCode::NOT_FOUND
            }
            EngineError::Plan(P::PoolOverlap { .. } | P::OverlapsNetwork { .. }) => {
                StatusCode::FORBIDDEN
            }
            EngineError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let message = match &e {
            // Docker's bridge driver words this one with both networks; netloom names the
            // subnets, which is what the user can act on.
            EngineError::Plan(P::OverlapsNetwork { subnet, existing }) => format!(
                "cannot create network with subnet {subnet}: conflicts with the network on {existing}: networks have overlapping IPv4"
            ),
            _ => e.to_string(),
        };
        ApiError { status, message }
    }
}

impl TryFrom<NetworkCreateRequest> for CreateNetwork {
    type Error = ApiError;
    fn try_from(r: NetworkCreateRequest) -> Result<Self, ApiError> {
        if r.ingress {
            return Err(ApiError::bad_request(
                "ingress networks need swarm mode, which netloom does not have",
            ));
        }
        if r.config_only
            || r.config_from
                .as_ref()
                .is_some_and(|c| !c.network.is_empty())
        {
            return Err(ApiError::bad_request(
                "config-only networks are not supported by netloom",
            ));
        }
        if !r.scope.is_empty() && r.scope != "local" {
            return Err(ApiError::bad_request(format!(
                "scope {:?} is not supported by netloom: only \"local\" networks exist",
                r.scope
            )));
        }
        if r.enable_ipv4 == Some(false) {
            return Err(ApiError::bad_request(
                "IPv4 cannot be disabled: netloom networks are IPv4 networks",
            ));
        }
        let ipam = r.ipam.unwrap_or_default();
        let requests = ipam
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|c| netloom_ipam::NetworkRequest {
                subnet: Some(c.subnet).filter(|s| !s.is_empty()),
                gateway: Some(c.gateway).filter(|s| !s.is_empty()),
                ip_range: Some(c.ip_range).filter(|s| !s.is_empty()),
                aux_addresses: c.aux_addresses.into_iter().collect(),
            })
            .collect();
        Ok(CreateNetwork {
            name: r.name,
            driver: r.driver,
            internal: r.internal,
            attachable: r.attachable,
            enable_ipv6: r.enable_ipv6.unwrap_or(false),
            ipam_driver: ipam.driver,
            ipam: requests,
            labels: r.labels.unwrap_or_default(),
            options: r.options.unwrap_or_default(),
        })
    }
}

/// One entry of `/version`'s `Components`.
#[derive(Debug, Serialize)]
pub struct Component {
    /// Component name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Its version.
    #[serde(rename = "Version")]
    pub version: String,
    /// Extra facts.
    #[serde(rename = "Details")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// `/version`'s platform.
#[derive(Debug, Serialize)]
pub struct Platform {
    /// Product name.
    #[serde(rename = "Name")]
    pub name: String,
}

/// `GET /version`, in Docker's key order.
#[derive(Debug, Serialize)]
pub struct VersionInfo {
    /// Product.
    #[serde(rename = "Platform")]
    pub platform: Platform,
    /// Components.
    #[serde(rename = "Components")]
    pub components: Vec<Component>,
    /// netloom's version.
    #[serde(rename = "Version")]
    pub version: String,
    /// Newest API version.
    #[serde(rename = "ApiVersion")]
    pub api_version: String,
    /// Oldest API version.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// Source revision.
    #[serde(rename = "GitCommit")]
    pub git_commit: String,
    /// The toolchain (Docker reports Go's; netloom reports Rust's).
    #[serde(rename = "GoVersion")]
    pub go_version: String,
    /// `linux`.
    #[serde(rename = "Os")]
    pub os: String,
    /// CPU architecture, Go's names.
    #[serde(rename = "Arch")]
    pub arch: String,
    /// The running kernel.
    #[serde(rename = "KernelVersion")]
    pub kernel_version: String,
    /// Build time.
    #[serde(rename = "BuildTime")]
    pub build_time: String,
}

/// The kernel release, from uname.
pub fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// What `GET /version` answers.
pub fn version_info() -> VersionInfo {
    let version = env!("CARGO_PKG_VERSION").to_owned();
    let mut details = serde_json::Map::new();
    details.insert("ApiVersion".into(), MAX_API_VERSION.into());
    details.insert("MinAPIVersion".into(), MIN_API_VERSION.into());
    details.insert("Os".into(), "linux".into());
    details.insert("Arch".into(), go_arch().into());
    details.insert("KernelVersion".into(), kernel_version().into());
    VersionInfo {
        platform: Platform {
            name: "netloom".into(),
        },
        components: vec![Component {
            name: "Engine".into(),
            version: version.clone(),
            details,
        }],
        version,
        api_version: MAX_API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: option_env!("NETLOOM_GIT_COMMIT")
            .unwrap_or("unknown")
            .into(),
        go_version: "rust".into(),
        os: "linux".into(),
        arch: go_arch().into(),
        kernel_version: kernel_version(),
        build_time: String::new(),
    }
}

/// `GET /info`: the subset of Docker's `system.Info` that describes netloom.
pub fn system_info(engine: &Engine) -> Result<serde_json::Value, EngineError> {
    let networks = engine.list_networks(&filters::Filters::default())?;
    let host = nix::sys::utsname::uname().ok();
    Ok(serde_json::json!({
        "ID": "",
        "Containers": 0,
        "ContainersRunning": 0,
        "ContainersPaused": 0,
        "ContainersStopped": 0,
        "Images": 0,
        "Driver": "none",
        "Plugins": {"Network": ["bridge", "host", "null"], "Volume": [], "Log": ["json-file"]},
        "KernelVersion": kernel_version(),
        "OperatingSystem": "netloom",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "Name": host.map(|h| h.nodename().to_string_lossy().into_owned()).unwrap_or_default(),
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "DockerRootDir": engine.data_root().display().to_string(),
        "Networks": networks.len(),
    }))
}
