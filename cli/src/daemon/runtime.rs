//! Runs managed containers: prepares the network namespace and plugs endpoints into it, writes
//! the container's private files, spawns `netloom _shim` (which enters the namespaces and runs
//! the command), and reaps it: on exit the endpoints are unplugged and their addresses
//! released, as Docker does at stop.
//!
//! The shim, not the daemon, is the container's parent process, and it survives a daemon
//! crash; a restarted daemon adopts running shims again (their namespaces are reachable through
//! `/proc/PID/ns/net`, their persistent TAPs are re-opened by [`Planes::restore_ports`]).

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::sync::{Mutex, watch};
use tracing::{debug, info, warn};

use netloom_dns::{DnsServer, ServerConfig};
use tokio_util::sync::CancellationToken;

use crate::daemon::containers::StartPlan;
use crate::daemon::engine::{Attached, Engine, EngineError};
use crate::daemon::files::ContainerFiles;
use crate::daemon::netconf;
use crate::daemon::planes::Planes;
use crate::daemon::ports::{self, HostPort, PortTable, PortsError, PublishError};
use crate::model::{
    ContainerId, ContainerPort, ContainerRecord, NetworkMode, NetworkRecord, Publication, Status,
};
use netloom_switch::{Listener, PublishId};

pub mod tty;

/// How long `start` waits for the shim to report that the command runs.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an adopted container (whose shim is not our child) is checked for exit.
const ADOPTED_POLL: Duration = Duration::from_millis(200);

/// Why a container operation failed in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The control plane refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A step of starting failed.
    #[error("failed to set up container networking: {0}")]
    Setup(String),
    /// The container is not running.
    #[error("container {0} is not running")]
    NotRunning(String),
    /// Its ports could not be published (Docker's wording: the bridge driver programs the
    /// published ports as the endpoint's "external connectivity").
    #[error(
        "driver failed programming external connectivity on endpoint {endpoint} ({endpoint_id}): {source}"
    )]
    Ports {
        /// The endpoint's name (the container's).
        endpoint: String,
        /// The endpoint's id.
        endpoint_id: String,
        /// What failed.
        #[source]
        source: PortsError,
    },
}

/// The published ports of a start: bound, not yet handed to the data plane.
#[derive(Debug)]
struct PortPlan {
    /// What the store records (and inspect shows).
    publication: Publication,
    /// The network the ports forward to.
    network: NetworkRecord,
    /// The container's address there.
    ip: std::net::Ipv4Addr,
    /// The bound sockets.
    listeners: Vec<(ContainerPort, Listener)>,
}

/// A running container's live handles.
#[derive(Debug)]
struct Live {
    /// The shim's pid (also its process group).
    pid: u32,
    /// Becomes `Some(exit code)` when the container has exited and been cleaned up.
    exited: watch::Receiver<Option<i32>>,
}

/// The container runtime of one daemon.
#[derive(Debug)]
pub struct Runtime {
    engine: Arc<Engine>,
    planes: Arc<Planes>,
    exe: PathBuf,
    live: Mutex<HashMap<ContainerId, Live>>,
    hubs: tty::Hubs,
    /// Each running container's embedded DNS server, to follow connect/disconnect.
    dns: std::sync::Mutex<HashMap<ContainerId, DnsServer>>,
    /// The host ports containers hold (daemon-wide), and the dynamic-port allocator.
    ports: std::sync::Mutex<PortTable>,
    /// Each running container's publications in the data plane.
    published: std::sync::Mutex<HashMap<ContainerId, Vec<PublishId>>>,
    /// Whether loopback clients of published TCP ports are spliced into the container's
    /// namespace (`netloom daemon --no-port-splice` turns it off).
    port_splice: bool,
}

/// Creates a fresh network namespace and answers a descriptor that keeps it alive.
fn new_netns() -> std::io::Result<OwnedFd> {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
        Ok(File::open("/proc/thread-self/ns/net")?.into())
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}

/// The directory holding a container's files and log.
pub fn container_dir(data_root: &Path, id: &ContainerId) -> PathBuf {
    data_root.join("containers").join(id.as_str())
}

fn read_exit_code(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("exit"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Docker's code for a process's end: its exit code, or 128 + the signal that killed it.
fn exit_status_code(status: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt as _;
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// The shims of container `id` still alive, found by their command line.
fn orphan_shims(id: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_shim_of(*pid, id))
        .collect()
}

/// After a restart: the directories (and any process) of containers the store no longer has,
/// left by a removal the previous daemon did not finish.
fn remove_unknown_container_dirs(data_root: &Path, known: &[ContainerRecord]) {
    let Ok(entries) = std::fs::read_dir(data_root.join("containers")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if known.iter().any(|c| c.id.as_str() == name) {
            continue;
        }
        for pid in orphan_shims(&name) {
            kill_orphan(pid, &entry.path());
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => warn!(container = %name, "removed what an unfinished removal left behind"),
            Err(e) => {
                warn!(container = %name, error = %e, "cannot remove a removed container's directory")
            }
        }
    }
}

/// Kills an orphaned shim and the command it runs (its pid file names it; a pid whose parent
/// is not the shim is someone else's and is left alone).
fn kill_orphan(shim: u32, dir: &Path) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let command = std::fs::read_to_string(dir.join("pid"))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(shim));
    if let Some(pid) = command {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    if let Ok(pid) = i32::try_from(shim) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// The parent pid of `pid`, from `/proc/PID/stat` (the field after the parenthesised name).
fn parent_of(pid: i32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is the shim of container `id` (a recycled pid would not be).
fn is_our_shim(pid: u32, id: &ContainerId) -> bool {
    is_shim_of(pid, id.as_str())
}

fn is_shim_of(pid: u32, id: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.contains(&b"_shim".as_slice()) && args.contains(&id.as_bytes())
        })
        .unwrap_or(false)
}

impl Runtime {
    /// A runtime spawning shims from this same binary.
    pub fn new(
        engine: Arc<Engine>,
        planes: Arc<Planes>,
        port_splice: bool,
    ) -> std::io::Result<Arc<Runtime>> {
        Ok(Arc::new(Runtime {
            engine,
            planes,
            exe: std::env::current_exe()?,
            live: Mutex::new(HashMap::new()),
            hubs: tty::Hubs::default(),
            dns: std::sync::Mutex::new(HashMap::new()),
            ports: std::sync::Mutex::new(PortTable::new(ports::local_port_range())),
            published: std::sync::Mutex::new(HashMap::new()),
            port_splice,
        }))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| EngineError::Spawn(e.to_string()))?
    }

    /// Starts a created or exited container; answers once its command runs.
    pub async fn start(self: &Arc<Self>, term: &str) -> Result<ContainerRecord, RuntimeError> {
        let term = term.to_owned();
        let plan = self.blocking(move |e| e.begin_start(&term)).await?;
        let launched = match self.reserve_ports(&plan) {
            Ok(ports) => self.launch(&plan, ports).await,
            Err(e) => Err(e),
        };
        match launched {
            Ok(c) => Ok(c),
            Err(e) => {
                // Nothing of the attempt stays: no port held, no socket bound, no address.
                self.release_ports(&plan.container.id).await;
                let p = plan.clone();
                if let Err(undo) = self.blocking(move |e| e.abort_start(&p)).await {
                    warn!(error = %undo, "releasing the addresses of a failed start failed");
                }
                Err(e)
            }
        }
    }

    /// Allocates and binds the host ports of a starting container's `-p` mappings (Docker
    /// publishes only exposed ports, on the first network that is not `--internal`; a
    /// container on internal networks only publishes nothing).
    fn reserve_ports(&self, plan: &StartPlan) -> Result<Option<PortPlan>, RuntimeError> {
        let c = &plan.container;
        let Some(m) = c.managed() else {
            return Ok(None);
        };
        if !matches!(m.mode, NetworkMode::Bridge(_)) || m.config.exposed_ports.is_empty() {
            return Ok(None);
        }
        let Some((endpoint, network)) = plan.endpoints.iter().find(|(_, n)| !n.internal) else {
            return Ok(None);
        };
        let mappings: Vec<_> = m
            .config
            .port_bindings
            .iter()
            .filter(|b| m.config.exposed_ports.contains(&b.container))
            .copied()
            .collect();
        let ipv6 = mappings.iter().any(|b| b.host_ip.is_none()) && ports::ipv6_listenable();
        if !ipv6 && mappings.iter().any(|b| b.host_ip.is_none()) {
            debug!(container = %c.name, "IPv6 is unavailable: ports are published on 0.0.0.0 only");
        }
        let reserved = {
            let mut table = self.ports.lock().expect("port table lock poisoned");
            ports::reserve(&mut table, &c.id, &mappings, ipv6)
        }
        .map_err(|source| RuntimeError::Ports {
            endpoint: c.name.to_string(),
            endpoint_id: endpoint.id.to_string(),
            source,
        })?;
        Ok(Some(PortPlan {
            publication: Publication {
                network: network.id.clone(),
                ports: reserved.bound,
            },
            network: network.clone(),
            ip: endpoint.ip,
            listeners: reserved.listeners,
        }))
    }

    /// Hands bound sockets to the data plane, one publication per container port. `netns` is
    /// the container's network namespace, for the loopback clients' splice fast path.
    async fn publish(
        &self,
        id: &ContainerId,
        network: &NetworkRecord,
        ip: std::net::Ipv4Addr,
        listeners: Vec<(ContainerPort, Listener)>,
        netns: Option<OwnedFd>,
    ) -> Result<(), PublishError> {
        let netns = netns
            .filter(|_| self.port_splice)
            .map(netloom_switch::Netns::new);
        let mut groups: Vec<(ContainerPort, Vec<Listener>)> = Vec::new();
        for (port, l) in listeners {
            match groups.iter_mut().find(|(p, _)| *p == port) {
                Some((_, g)) => g.push(l),
                None => groups.push((port, vec![l])),
            }
        }
        for (port, listeners) in groups {
            let target = std::net::SocketAddrV4::new(ip, port.port);
            let pid = self
                .planes
                .publish(network, target, listeners, netns.clone())
                .await?;
            self.published
                .lock()
                .expect("publications lock poisoned")
                .entry(id.clone())
                .or_default()
                .push(pid);
        }
        Ok(())
    }

    /// Stops a container's publications and gives its host ports back. Keeps going after a
    /// failure (each is logged).
    async fn release_ports(&self, id: &ContainerId) {
        let ids = self
            .published
            .lock()
            .expect("publications lock poisoned")
            .remove(id)
            .unwrap_or_default();
        for p in ids {
            if let Err(e) = self.planes.unpublish(p).await {
                warn!(container = %id.short(), publication = ?p, error = %e, "unpublishing ports failed");
            }
        }
        self.ports
            .lock()
            .expect("port table lock poisoned")
            .release_owner(id);
    }

    /// After a restart: binds the host ports of a container that kept running again and hands
    /// them to the data plane. A port that cannot be bound is logged and left out.
    async fn republish(&self, c: &ContainerRecord) {
        let Some(p) = c.managed().and_then(|m| m.state.publication.clone()) else {
            return;
        };
        let id = c.id.clone();
        let state = match self.blocking(|e| Ok(e.store().snapshot()?)).await {
            Ok(s) => s,
            Err(e) => {
                warn!(container = %c.name, error = %e, "published ports not restored");
                return;
            }
        };
        let endpoint = state
            .endpoints
            .iter()
            .find(|e| e.container == id && e.network == p.network);
        let network = state.networks.iter().find(|n| n.id == p.network);
        let (Some(endpoint), Some(network)) = (endpoint, network) else {
            warn!(container = %c.name, "published ports not restored: the container left their network");
            return;
        };
        let mut listeners = Vec::new();
        {
            let mut table = self.ports.lock().expect("port table lock poisoned");
            for b in &p.ports {
                let key = HostPort {
                    proto: b.container.proto,
                    ip: b.host_ip,
                    port: b.host_port,
                };
                let port = format!(
                    "{}/{}",
                    ports::host_port(b.host_ip, b.host_port),
                    b.container.proto
                );
                if let Err(holder) = table.claim(key, &c.id) {
                    warn!(container = %c.name, port, holder = %holder.short(), "published port not restored: another container holds it");
                    continue;
                }
                match ports::bind(b.container.proto, b.host_ip, b.host_port) {
                    Ok(l) => listeners.push((b.container, l)),
                    Err(e) => {
                        table.release(&key);
                        warn!(container = %c.name, port, error = %ports::go_errno(&e), "published port not restored: cannot bind it again");
                    }
                }
            }
        }
        // The shim holds the container's namespace; if it cannot be opened, every client
        // takes the gateway path.
        let netns = c
            .managed()
            .and_then(|m| m.state.pid)
            .and_then(|pid| File::open(format!("/proc/{pid}/ns/net")).ok())
            .map(OwnedFd::from);
        if let Err(e) = self
            .publish(&c.id, network, endpoint.ip, listeners, netns)
            .await
        {
            warn!(container = %c.name, error = %e, "published ports not restored");
        }
    }

    async fn launch(
        self: &Arc<Self>,
        plan: &StartPlan,
        mut ports: Option<PortPlan>,
    ) -> Result<ContainerRecord, RuntimeError> {
        let c = &plan.container;
        let m = c
            .managed()
            .expect("begin_start only plans managed containers");
        let setup = |e: &dyn std::fmt::Display| RuntimeError::Setup(e.to_string());
        // The namespace the command will run in, and a descriptor pinning it until the shim
        // is inside.
        let (netns_arg, pin): (String, Option<OwnedFd>) = match &m.mode {
            NetworkMode::Host => ("host".into(), None),
            NetworkMode::Container(_) => {
                let pid = plan.join_pid.expect("begin_start resolves the owner");
                (format!("path:/proc/{pid}/ns/net"), None)
            }
            NetworkMode::Bridge(_) | NetworkMode::None => {
                let fd = tokio::task::spawn_blocking(new_netns)
                    .await
                    .map_err(|e| setup(&e))?
                    .map_err(|e| setup(&e))?;
                let path = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd());
                (format!("path:{path}"), Some(fd))
            }
        };
        let netns_path = netns_arg.strip_prefix("path:").map(PathBuf::from);
        if let (Some(path), Some(_)) = (&netns_path, &pin) {
            netconf::lo_up(path).await.map_err(|e| setup(&e))?;
            let mut plugged = Vec::new();
            for (i, (endpoint, network)) in plan.endpoints.iter().enumerate() {
                let a = Attached {
                    container: c.clone(),
                    endpoint: endpoint.clone(),
                    network: network.clone(),
                    first: i == 0,
                };
                if let Err(e) = self.planes.plug(path, &a).await {
                    self.planes.unplug_in(Some(path), &plugged).await;
                    return Err(setup(&e));
                }
                plugged.push(endpoint.clone());
            }
            if let Some(p) = ports.as_mut() {
                let listeners = std::mem::take(&mut p.listeners);
                let netns = pin.as_ref().and_then(|fd| fd.try_clone().ok());
                if let Err(e) = self
                    .publish(&c.id, &p.network, p.ip, listeners, netns)
                    .await
                {
                    self.planes.unplug_in(Some(path), &plugged).await;
                    return Err(setup(&e));
                }
            }
        }
        let dir = container_dir(self.engine.data_root(), &c.id);
        std::fs::create_dir_all(&dir).map_err(|e| setup(&e))?;
        let _ = std::fs::remove_file(dir.join("exit"));
        let files = self.write_files(c, plan, &dir).map_err(|e| setup(&e))?;
        let dns_stop = CancellationToken::new();
        if let (Some(path), Some(_)) = (&netns_path, &pin) {
            self.serve_dns(path, plan, &files, dns_stop.clone())
                .await
                .map_err(|e| setup(&e))?;
        }
        let binds = &files.binds;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("container.log"))
            .map_err(|e| setup(&e))?;
        // With `Tty`, the command's stdio is a pseudo-terminal whose master the daemon serves.
        let pty = if m.config.tty {
            Some(tty::Pty::open().map_err(|e| setup(&e))?)
        } else {
            None
        };
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("_shim")
            .arg("--id")
            .arg(c.id.as_str())
            .arg("--netns")
            .arg(&netns_arg);
        if m.mode == NetworkMode::Host {
            cmd.args(["--uts", "host"]);
        } else {
            cmd.args(["--uts", "new", "--hostname"]).arg(c.hostname());
        }
        for (src, dst) in binds {
            cmd.arg("--bind").arg(format!("{}:{}", src.display(), dst));
        }
        if let Some(p) = &pty {
            cmd.arg("--tty").arg(&p.path);
        }
        let _ = std::fs::remove_file(dir.join("pid"));
        cmd.arg("--exit-file")
            .arg(dir.join("exit"))
            .arg("--pid-file")
            .arg(dir.join("pid"))
            .arg("--")
            .args(&m.config.cmd);
        let tty_log = match &pty {
            Some(_) => Some(log.try_clone().map_err(|e| setup(&e))?),
            None => None,
        };
        cmd.stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(|e| setup(&e))?)
            .stderr(log)
            .kill_on_drop(false);
        let mut child = cmd
            .spawn()
            .map_err(|e| RuntimeError::Engine(EngineError::Spawn(e.to_string())))?;
        // The reader starts now, so output written before `start` answers is not lost; the
        // daemon's slave descriptor goes once the shim has opened its own (or has exited).
        let slave = match (pty, tty_log) {
            (Some(p), Some(log)) => {
                tty::serve(self.hubs.get(&c.id), p.master, log).map_err(|e| setup(&e))?;
                Some(p.slave)
            }
            _ => None,
        };
        let pid = child.id().expect("a just-spawned child has a pid");
        // The shim writes the pid file once the command runs; if it exits first, setup or exec
        // failed and the last log line says why (Docker fails `start` then, too).
        let started = tokio::time::timeout(START_TIMEOUT, async {
            loop {
                if dir.join("pid").exists() {
                    return None;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(status);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        drop(slave);
        if let Ok(Some(status)) = started {
            let log = std::fs::read_to_string(dir.join("container.log")).unwrap_or_default();
            let why = log
                .lines()
                .last()
                .unwrap_or("the container process exited")
                .to_owned();
            let code = read_exit_code(&dir).or(status.code()).unwrap_or(125);
            let cid = c.id.clone();
            // The process never ran: record the attempt like Docker (exited, with the code).
            if let Ok((_, endpoints)) = self.blocking(move |e| e.mark_exited(&cid, code)).await {
                self.planes
                    .unplug_in(netns_path.as_deref(), &endpoints)
                    .await;
            }
            return Err(RuntimeError::Engine(EngineError::Spawn(why)));
        }
        let id = c.id.clone();
        let publication = ports.map(|p| p.publication);
        let running = self
            .blocking(move |e| e.mark_running(&id, pid, publication))
            .await?;
        let (tx, rx) = watch::channel(None);
        self.live
            .lock()
            .await
            .insert(c.id.clone(), Live { pid, exited: rx });
        info!(container = %c.name, pid, "container started");
        let rt = self.clone();
        let id = c.id.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            // The namespace pin goes only now: until the shim has exited the TAPs live in it.
            let code = read_exit_code(&dir)
                .or_else(|| status.ok().and_then(exit_status_code))
                .unwrap_or(255);
            dns_stop.cancel();
            rt.finish(&id, code, tx).await;
            drop(pin);
        });
        Ok(running)
    }

    /// After the shim exited: records the exit, unplugs and releases the endpoints.
    async fn finish(&self, id: &ContainerId, code: i32, tx: watch::Sender<Option<i32>>) {
        // First: while the store still says "running" no new start can take the ports, and
        // once `stop` answers they are free again.
        self.release_ports(id).await;
        self.dns.lock().expect("dns map lock poisoned").remove(id);
        let cid = id.clone();
        match self.blocking(move |e| e.mark_exited(&cid, code)).await {
            Ok((c, endpoints)) => {
                self.planes.unplug_in(None, &endpoints).await;
                info!(container = %c.name, code, "container exited");
            }
            Err(e) => warn!(container = %id.short(), error = %e, "recording an exit failed"),
        }

        self.live.lock().await.remove(id);
        let _ = tx.send(Some(code));
        self.hubs.get(id).exited(code);
    }

    /// Stops a running container: SIGTERM to the shim (which forwards it to the command only,
    /// as Docker signals only the container's main process), SIGKILL to the command after
    /// `timeout` (the shim then records 137 and kills what the command left behind). Answers
    /// false when it was not running (Docker's 304).
    pub async fn stop(&self, term: &str, timeout: Duration) -> Result<bool, RuntimeError> {
        let c = self.engine.container(term)?;
        let Some((pid, mut exited)) = self
            .live
            .lock()
            .await
            .get(&c.id)
            .map(|l| (l.pid, l.exited.clone()))
        else {
            return Ok(false);
        };
        let shim = Pid::from_raw(pid as i32);
        let _ = kill(shim, Signal::SIGTERM);
        let done = tokio::time::timeout(timeout, exited.wait_for(Option::is_some))
            .await
            .is_ok();
        if !done {
            let dir = container_dir(self.engine.data_root(), &c.id);
            let command = std::fs::read_to_string(dir.join("pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok());
            match command {
                Some(p) => {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
                None => {
                    let _ = killpg(shim, Signal::SIGKILL);
                }
            }
            if tokio::time::timeout(Duration::from_secs(5), exited.wait_for(Option::is_some))
                .await
                .is_err()
            {
                // The shim itself hangs: end the whole group.
                let _ = killpg(shim, Signal::SIGKILL);
                let _ = exited.wait_for(Option::is_some).await;
            }
        }
        Ok(true)
    }

    /// Docker's `wait?condition=next-exit` (which the docker CLI sends before it starts a
    /// container it attaches to): answers a receiver of the exit code of the runs that end from
    /// now on, whether the container runs yet or not.
    pub fn next_exit(
        &self,
        term: &str,
    ) -> Result<tokio::sync::broadcast::Receiver<i32>, RuntimeError> {
        let c = self.engine.container(term)?;
        Ok(self.hubs.get(&c.id).subscribe_exits())
    }

    /// Waits until the container is not running; answers its exit code.
    pub async fn wait(&self, term: &str) -> Result<i32, RuntimeError> {
        let c = self.engine.container(term)?;
        let rx = self.live.lock().await.get(&c.id).map(|l| l.exited.clone());
        if let Some(mut rx) = rx {
            let _ = rx.wait_for(Option::is_some).await;
        }
        let c = self.engine.container(c.id.as_str())?;
        Ok(c.managed().map_or(0, |m| m.state.exit_code))
    }

    /// The pid to enter for `exec`.
    pub async fn pid(&self, id: &ContainerId) -> Option<u32> {
        self.live.lock().await.get(id).map(|l| l.pid)
    }

    /// At daemon start: watches containers whose shims survived the restart, and records the
    /// exit of those that ended while the daemon was away.
    pub async fn adopt(self: &Arc<Self>) -> Result<(), EngineError> {
        let containers = self
            .blocking(|e| Ok(e.store().snapshot()?.containers))
            .await?;
        // A start the previous daemon did not finish recording: its shim may run on, unknown
        // to the store, and its endpoints hold addresses. Neither was acknowledged, so both go.
        for c in containers.iter() {
            let Some(m) = c.managed() else { continue };
            if m.state.status == Status::Running {
                continue;
            }
            let dir = container_dir(self.engine.data_root(), &c.id);
            for pid in orphan_shims(c.id.as_str()) {
                kill_orphan(pid, &dir);
                warn!(container = %c.name, pid, "killed a container process whose start was never recorded");
            }
        }
        remove_unknown_container_dirs(self.engine.data_root(), &containers);
        match self.blocking(|e| e.release_stale_endpoints()).await {
            Ok(released) => {
                for (c, endpoints) in released {
                    self.planes.unplug_in(None, &endpoints).await;
                    warn!(container = %c.name, count = endpoints.len(), "released the addresses of an unfinished start");
                }
            }
            Err(e) => warn!(error = %e, "cannot release the endpoints of unfinished starts"),
        }
        for c in containers.iter().cloned() {
            let Some(m) = c.managed() else { continue };
            if m.state.status != Status::Running {
                continue;
            }
            let dir = container_dir(self.engine.data_root(), &c.id);
            let (tx, rx) = watch::channel(None);
            match m.state.pid.filter(|pid| is_our_shim(*pid, &c.id)) {
                Some(pid) => {
                    self.live
                        .lock()
                        .await
                        .insert(c.id.clone(), Live { pid, exited: rx });
                    info!(container = %c.name, pid, "container adopted");
                    self.republish(&c).await;
                    let dns_stop = CancellationToken::new();
                    if let Err(e) = self.resume_dns(&c, pid, &dir, dns_stop.clone()).await {
                        warn!(container = %c.name, error = %e, "embedded DNS not resumed");
                    }
                    let rt = self.clone();
                    tokio::spawn(async move {
                        while is_our_shim(pid, &c.id) {
                            tokio::time::sleep(ADOPTED_POLL).await;
                        }
                        dns_stop.cancel();
                        let code = read_exit_code(&dir).unwrap_or(255);
                        rt.finish(&c.id, code, tx).await;
                    });
                }
                None => {
                    let code = read_exit_code(&dir).unwrap_or(255);
                    self.finish(&c.id, code, tx).await;
                }
            }
        }
        Ok(())
    }

    /// Writes the container's hosts, hostname and resolv.conf.
    fn write_files(
        &self,
        c: &ContainerRecord,
        plan: &StartPlan,
        dir: &Path,
    ) -> std::io::Result<ContainerFiles> {
        crate::daemon::files::write_container_files(c, plan, dir)
    }

    /// After a restart: serves the embedded DNS of an adopted container again (its sockets
    /// closed with the old daemon).
    async fn resume_dns(
        &self,
        c: &ContainerRecord,
        pid: u32,
        dir: &Path,
        cancel: CancellationToken,
    ) -> Result<(), RuntimeError> {
        if !matches!(c.managed().map(|m| &m.mode), Some(NetworkMode::Bridge(_))) {
            return Ok(());
        }
        let id = c.id.clone();
        let state = self.blocking(move |e| Ok(e.store().snapshot()?)).await?;
        let endpoints = state
            .endpoints
            .iter()
            .filter(|e| e.container == id)
            .filter_map(|e| {
                let n = state.networks.iter().find(|n| n.id == e.network)?;
                Some((e.clone(), n.clone()))
            })
            .collect();
        let plan = StartPlan {
            container: c.clone(),
            endpoints,
            join_pid: None,
        };
        let setup = |e: &dyn std::fmt::Display| RuntimeError::Setup(e.to_string());
        let files = self.write_files(c, &plan, dir).map_err(|e| setup(&e))?;
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        self.serve_dns(&netns, &plan, &files, cancel)
            .await
            .map_err(|e| setup(&e))
    }

    /// Serves the embedded DNS on 127.0.0.11:53 (UDP and TCP) inside the container's
    /// namespace, for its user networks, until `cancel` fires. The sockets are made in the
    /// namespace; forwarding happens from the daemon's (so loopback upstreams work).
    async fn serve_dns(
        &self,
        netns: &Path,
        plan: &StartPlan,
        files: &ContainerFiles,
        cancel: CancellationToken,
    ) -> std::io::Result<()> {
        let networks: Vec<String> = plan
            .endpoints
            .iter()
            .filter(|(_, n)| !n.builtin)
            .map(|(_, n)| n.name.to_string())
            .collect();
        if networks.is_empty() {
            return Ok(());
        }
        let forward = plan
            .endpoints
            .iter()
            .any(|(_, n)| !n.builtin && !n.internal);
        let path = netns.to_owned();
        let (udp, tcp) = tokio::task::spawn_blocking(move || {
            netloom_switch::tap::in_netns(&path, || {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 11], 53));
                let udp = std::net::UdpSocket::bind(addr)?;
                let tcp = std::net::TcpListener::bind(addr)?;
                udp.set_nonblocking(true)?;
                tcp.set_nonblocking(true)?;
                Ok::<_, std::io::Error>((udp, tcp))
            })
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)??;
        let mut config = ServerConfig::new(networks, files.upstreams.clone());
        config.forward = forward;
        config.ndots_set = files.ndots_set;
        let server = DnsServer::new(self.planes.dns().clone(), config, DnsServer::limiter());
        self.dns
            .lock()
            .expect("dns map lock poisoned")
            .insert(plan.container.id.clone(), server.clone());
        let udp = tokio::net::UdpSocket::from_std(udp)?;
        let tcp = tokio::net::TcpListener::from_std(tcp)?;
        let (u, t) = (server.clone(), cancel.clone());
        tokio::spawn(async move {
            if let Err(e) = u.serve_udp(udp, t).await {
                warn!(error = %e, "embedded DNS (UDP) stopped");
            }
        });
        tokio::spawn(async move {
            if let Err(e) = server.serve_tcp(tcp, cancel).await {
                warn!(error = %e, "embedded DNS (TCP) stopped");
            }
        });
        Ok(())
    }

    /// After `network disconnect`: when a running container leaves the network its ports were
    /// published on, Docker moves its external connectivity, published ports included, to
    /// another of its networks. The same here: the ports are re-bound and forwarded to its
    /// address on the first of its networks that is not `--internal`, or dropped when none is
    /// left (the next start publishes them again).
    pub async fn follow_publication(&self, term: &str) -> Result<(), EngineError> {
        let c = self.engine.container(term)?;
        let Some(p) = c.managed().and_then(|m| m.state.publication.clone()) else {
            return Ok(());
        };
        let id = c.id.clone();
        let state = self.blocking(move |e| Ok(e.store().snapshot()?)).await?;
        let on_networks: Vec<&NetworkRecord> = state
            .endpoints
            .iter()
            .filter(|e| e.container == c.id)
            .filter_map(|e| state.networks.iter().find(|n| n.id == e.network))
            .collect();
        if on_networks.iter().any(|n| n.id == p.network) {
            return Ok(());
        }
        self.release_ports(&id).await;
        let next = on_networks
            .iter()
            .find(|n| !n.internal)
            .map(|n| n.id.clone());
        let moved = next.is_some();
        let c = self
            .blocking(move |e| e.move_publication(&id, next))
            .await?;
        if moved {
            info!(container = %c.name, "published ports moved to another network");
            self.republish(&c).await;
        } else {
            info!(container = %c.name, "published ports dropped: no network left to publish on");
        }
        Ok(())
    }

    /// After `network connect/disconnect`: the container's DNS server answers for the user
    /// networks it is on now.
    pub async fn refresh_dns(&self, term: &str) -> Result<(), EngineError> {
        let c = self.engine.container(term)?;
        let Some(server) = self
            .dns
            .lock()
            .expect("dns map lock poisoned")
            .get(&c.id)
            .cloned()
        else {
            return Ok(());
        };
        let id = c.id.clone();
        let state = self.blocking(move |e| Ok(e.store().snapshot()?)).await?;
        let networks = state
            .endpoints
            .iter()
            .filter(|e| e.container == id)
            .filter_map(|e| state.networks.iter().find(|n| n.id == e.network))
            .filter(|n| !n.builtin)
            .map(|n| n.name.to_string())
            .collect();
        let mut config = (*server.config()).clone();
        config.networks = networks;
        server.reconfigure(config);
        Ok(())
    }

    /// The attachment point of a container's terminal.
    pub fn hub(&self, id: &ContainerId) -> Arc<tty::Hub> {
        self.hubs.get(id)
    }

    /// Forgets a container's runtime state (after `rm`).
    pub async fn forget(&self, c: &ContainerRecord) {
        self.hubs.remove(&c.id);
        let dir = container_dir(self.engine.data_root(), &c.id);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(container = %c.name, error = %e, "cannot remove the container's directory");
        }
    }
}
