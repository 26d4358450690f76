//! `netloom daemon`: the composition root (config → store → engine → API server).

pub mod containers;
pub mod engine;
pub mod files;
pub mod netconf;
pub mod planes;
pub mod ports;
pub mod rename;
pub mod runtime;
pub mod server;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::store::{Store, StoreError};
use engine::{Engine, EngineError, HostFiles};
use planes::Planes;

/// How the daemon is set up.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The API socket.
    pub socket: PathBuf,
    /// Where the state lives.
    pub data_root: PathBuf,
    /// Where host facts are read.
    pub host_files: HostFiles,
    /// `--host-dns`: serve container names to the host on this address.
    pub host_dns: Option<std::net::SocketAddr>,
    /// Splice loopback clients of published TCP ports into the container's namespace
    /// (`--no-port-splice` turns it off).
    pub port_splice: bool,
    /// `--busy-poll`: ports with sparse traffic poll for this long after each batch (`None`:
    /// they park when idle).
    pub busy_poll: Option<netloom_switch::BusyPoll>,
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The data root could not be created.
    #[error("cannot create the data root {path}: {source}")]
    DataRoot {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another daemon holds the data root.
    #[error(
        "another netloom daemon is using the data root {path} (lock {lock}); stop it or pass a different --data-root"
    )]
    DataRootBusy {
        /// The directory.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The lock file could not be opened.
    #[error("cannot open the lock file {path}: {source}")]
    Lock {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another daemon listens on the socket.
    #[error("another daemon is listening on {0}; stop it or pass a different -H unix:///path")]
    SocketBusy(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket; remove it or pass a different -H unix:///path")]
    NotASocket(PathBuf),
    /// Binding or preparing the socket failed.
    #[error("cannot listen on {path}: {source}")]
    Listen {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store failed to open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine failed to initialise.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The data plane could not be brought in line with the stored state.
    #[error(transparent)]
    Planes(#[from] planes::PlaneError),
}

/// Holds the data-root lock for the daemon's lifetime.
#[derive(Debug)]
pub struct DataRootLock {
    _lock: Flock<fs::File>,
}

/// Every translated connection holds a host socket (two for a published one), so the common
/// soft limit of 1024 open files would cap the gateway long before its flow limits: raise the
/// soft limit to the hard one, as Go (and so dockerd) does at start.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => info!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => {
                warn!(soft, hard, error = %e, "cannot raise the open-file limit; NAT flows may be refused beyond it")
            }
        },
        Ok(_) => {}
        Err(e) => warn!(error = %e, "cannot read the open-file limit"),
    }
}

/// Creates the data root and takes its exclusive lock, so two daemons never share one store.
pub fn lock_data_root(root: &Path) -> Result<DataRootLock, DaemonError> {
    fs::create_dir_all(root).map_err(|source| DaemonError::DataRoot {
        path: root.into(),
        source,
    })?;
    // The store holds every container's configuration: keep it private to the daemon's user.
    if let Err(e) = fs::set_permissions(root, fs::Permissions::from_mode(0o700)) {
        tracing::warn!(path = %root.display(), error = %e, "cannot make the data root private");
    }
    let path = root.join("daemon.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| DaemonError::Lock {
            path: path.clone(),
            source,
        })?;
    let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        DaemonError::DataRootBusy {
            path: root.into(),
            lock: path.clone(),
        }
    })?;
    // The pid is informational (for operators); the lock itself is what guards the root.
    if let Err(e) = lock
        .set_len(0)
        .and_then(|()| writeln!(*lock, "{}", std::process::id()))
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot record the daemon pid in the lock file");
    }
    Ok(DataRootLock { _lock: lock })
}

/// Prepares the socket path: refuses a live daemon's socket, removes a stale one.
fn prepare_socket(path: &Path) -> Result<(), DaemonError> {
    let listen_err = |source| DaemonError::Listen {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(listen_err)?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(DaemonError::SocketBusy(path.into()));
            }
            info!(socket = %path.display(), "removing stale socket");
            fs::remove_file(path).map_err(listen_err)?;
            Ok(())
        }
        Ok(_) => Err(DaemonError::NotASocket(path.into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(listen_err(e)),
    }
}

/// Removes the socket file when the daemon stops.
#[derive(Debug)]
struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Runs the daemon until `shutdown` is cancelled.
pub async fn run(config: DaemonConfig, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let _lock = lock_data_root(&config.data_root)?;
    raise_open_file_limit();
    let store = Store::open(&config.data_root.join("state.redb"))?;
    let engine = Arc::new(Engine::new(
        store,
        config.host_files.clone(),
        config.data_root.clone(),
    )?);
    let consistency = engine.store().check_consistency()?;
    for problem in &consistency {
        tracing::error!(%problem, "state inconsistency found at start");
    }
    let mut tasks = tokio::task::JoinSet::new();
    let switch = netloom_switch::spawn(
        &mut tasks,
        netloom_switch::Switch::new().with_busy_poll(config.busy_poll),
        shutdown.child_token(),
    );
    let planes = Arc::new(Planes::new(
        switch,
        Arc::new(netloom_dns::RecordStore::default()),
    ));
    let state = engine.store().snapshot()?;
    if let Some(addr) = config.host_dns {
        let listen_err = |source| DaemonError::Listen {
            path: format!("{addr} (--host-dns)").into(),
            source,
        };
        let udp = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(listen_err)?;
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(listen_err)?;
        planes.serve_host_dns(udp, tcp, shutdown.child_token());
        info!(%addr, "serving container names to the host");
    }
    planes.reconcile(&state).await?;
    planes.restore_ports(&state).await;
    prepare_socket(&config.socket)?;
    let listen_err = |source| DaemonError::Listen {
        path: config.socket.clone(),
        source,
    };
    // Create the socket with no permissions for others from the first instant, then open it to
    // the group: clients that lack permission are refused by the kernel.
    let old_umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = tokio::net::UnixListener::bind(&config.socket);
    nix::sys::stat::umask(old_umask);
    let listener = listener.map_err(listen_err)?;
    let _guard = SocketGuard(config.socket.clone());
    fs::set_permissions(&config.socket, fs::Permissions::from_mode(0o660)).map_err(listen_err)?;
    info!(
        socket = %config.socket.display(),
        data_root = %config.data_root.display(),
        version = env!("CARGO_PKG_VERSION"),
        "netloom daemon listening"
    );
    let runtime = runtime::Runtime::new(engine.clone(), planes.clone(), config.port_splice)
        .map_err(|source| DaemonError::Listen {
            path: config.socket.clone(),
            source,
        })?;
    runtime.adopt().await?;
    let app = Arc::new(server::App {
        engine,
        planes,
        runtime,
    });
    server::serve(listener, app, shutdown.clone()).await;
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(())
}
