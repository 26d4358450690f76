//! The container shim (`netloom _shim`) and the exec helper (`netloom _exec`).
//!
//! A netloom container is a host command run in its own network, mount and UTS namespaces. The
//! daemon prepares the network namespace (TAP `eth0` included) and the container's private
//! `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, then spawns `netloom _shim ...` with
//! stdout/stderr already pointing at the container log. The shim:
//!
//! 1. installs its signal handlers (so a stop signal sent during setup is not lost: it is
//!    forwarded once the command runs), starts a new session (`setsid`: its pid is the process
//!    group of the whole container) and becomes a child subreaper (orphans of the command are
//!    re-parented to it, not to the host's init);
//! 2. enters the network namespace (`--netns path:FILE`, a `setns`), then unshares a new mount
//!    namespace (and a UTS namespace with `--uts new`), makes every mount recursively private so
//!    nothing propagates back to the host, bind-mounts the `--bind` files, sets the hostname;
//! 3. runs the command with the shim's environment and stdio (PATH lookup like Docker/runc, whose
//!    error texts it prints), forwards the signals it receives to the command, waits for it;
//! 4. kills whatever the command left running (Docker: when PID 1 exits, the container's other
//!    processes die with it), writes the exit code to `--exit-file` atomically and exits with it.
//!
//! Exit codes (in the exit file and as the shim's own exit status), as `docker run` uses them:
//! the command's exit code; `128 + N` when the command died of signal N; [`EXIT_SETUP_FAILED`]
//! (125) when netloom itself could not set the container up (namespaces, mounts, hostname,
//! working directory, files); [`EXIT_CANNOT_INVOKE`] (126) when the command exists but cannot
//! be run (permission denied, a directory, exec format error); [`EXIT_NOT_FOUND`] (127) when it
//! does not exist. Every failure prints one line to stderr (the container log).
//!
//! `netloom _exec --pid PID -- CMD` enters the namespaces of a running container process
//! (the shim's pid will do: the shim lives in the container's namespaces) and runs CMD there.
//! It is a process of its own, not a thread of the daemon, because it changes process-wide
//! state: signal handlers, the reaping of children, its session.
//!
//! What the daemon must know:
//! - The shim's pid is also its session and process group, which holds the command and its
//!   children (unless they call setsid themselves).
//! - To stop a container, signal the shim alone (`kill(shim, SIGTERM)`): it forwards the signal
//!   to the command only, as Docker signals only PID 1. `killpg` would deliver it twice to the
//!   command (directly and forwarded) and to all of the command's children.
//! - SIGKILL cannot be forwarded. Send it to the command (its pid is in `--pid-file`): the shim
//!   then records 137, kills the rest and exits. `killpg(shim, SIGKILL)` also works but kills
//!   the shim first, so no exit file is written (record 128 + 9 = 137 yourself).
//! - If the shim dies, the command runs on (re-parented to the nearest subreaper or init):
//!   `killpg(shim_pid, SIGKILL)` ends it. A restarted daemon finds surviving shims by pid and
//!   the exit file once they are done.
//! - `--pid-file` appears only once the command has been executed, so "pid file exists" means
//!   the container runs; a shim that exits before that failed to set up or to start the command
//!   (exit file 125/126/127, the reason as the last line of its stderr).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{Signal, kill};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{AccessFlags, Pid, access, getpgrp, getpid, getsid, sethostname, setsid};
use signal_hook::iterator::Signals;

/// Exit code when netloom could not set the container up (Docker's 125 for its own errors).
pub const EXIT_SETUP_FAILED: u8 = 125;
/// Exit code when the command exists but cannot be invoked (Docker's 126).
pub const EXIT_CANNOT_INVOKE: u8 = 126;
/// Exit code when the command cannot be found (Docker's 127).
pub const EXIT_NOT_FOUND: u8 = 127;

/// The PATH searched when the shim's environment has none (Docker's default PATH).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Linux's limit on a hostname (HOST_NAME_MAX).
const HOST_NAME_MAX: usize = 64;

/// How long the shim keeps killing the command's leftover processes before it gives up.
const LEFTOVER_DEADLINE: Duration = Duration::from_secs(5);

/// Signals the shim forwards to the command (what `docker kill -s SIG` may send). The fault
/// signals (SEGV, BUS, ...) are about the shim itself, SIGCHLD is its own business, SIGPIPE is
/// raised by its own writes, SIGKILL and SIGSTOP cannot be caught.
///
/// Catching these also resets them for the command: a handled signal goes back to its default
/// action across `exec`, an ignored one would stay ignored (e.g. SIGINT and SIGQUIT in a daemon
/// started with `&` from a script), which runc avoids the same way.
const FORWARDED: &[libc::c_int] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGALRM,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGURG,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
];

/// Signals a controlling terminal generates for its foreground process group; with `--tty`
/// the command gets them from the terminal, so the shim does not forward them.
const TTY_SIGNALS: &[libc::c_int] = &[libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGWINCH];

/// `netloom _shim`: run a container's command in its namespaces (started by the daemon).
///
/// `netloom _shim --id ID --netns host|path:FILE [--uts new|host] [--hostname NAME]
/// [--bind SRC:DST[:ro]]... --exit-file PATH [--pid-file PATH] [--workdir DIR] [--tty PATH]
/// -- CMD [ARG]...`
#[derive(Args, Debug, Clone)]
pub struct ShimArgs {
    /// The container id (only used in log lines, and to recognise the shim in `ps`).
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// The network namespace: `host` (stay in the caller's) or `path:FILE` (enter the namespace
    /// FILE names: /proc/PID/ns/net, /proc/PID/fd/N, /run/netns/NAME).
    #[arg(long, value_name = "MODE")]
    pub netns: NetnsMode,
    /// The UTS namespace (hostname): `new` or `host`.
    #[arg(long, value_enum, default_value_t = UtsMode::New, value_name = "MODE")]
    pub uts: UtsMode,
    /// Hostname to set in the new UTS namespace (needs `--uts new`).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<Hostname>,
    /// Bind-mount SRC over DST inside the container's private mount namespace (repeatable);
    /// `:ro` makes it read-only. DST must exist.
    #[arg(long = "bind", value_name = "SRC:DST[:ro]")]
    pub binds: Vec<BindMount>,
    /// Where to write the command's exit code (written to PATH.tmp, then renamed).
    #[arg(long, value_name = "PATH")]
    pub exit_file: PathBuf,
    /// Where to write the command's pid once it runs (written to PATH.tmp, then renamed).
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Working directory of the command (absolute; default /).
    #[arg(long, value_name = "DIR", value_parser = absolute_path)]
    pub workdir: Option<PathBuf>,
    /// A terminal (pty slave, e.g. /dev/pts/3) to make the controlling terminal of the new
    /// session and the command's stdin, stdout and stderr; the shim's own messages still go
    /// to its stderr.
    #[arg(long, value_name = "PATH")]
    pub tty: Option<PathBuf>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `netloom _exec`: run a command inside a running container's namespaces.
///
/// `netloom _exec --pid PID [--workdir DIR] -- CMD [ARG]...`
#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// A process of the container (its shim will do).
    #[arg(long, value_name = "PID")]
    pub pid: u32,
    /// Working directory of the command (absolute; default /).
    #[arg(long, value_name = "DIR", value_parser = absolute_path)]
    pub workdir: Option<PathBuf>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Which network namespace the container's command runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsMode {
    /// The caller's (the host's, for `--network host`).
    Host,
    /// The namespace a file names (`/proc/PID/ns/net`, `/proc/PID/fd/N`, `/run/netns/NAME`).
    Path(PathBuf),
}

impl FromStr for NetnsMode {
    type Err = ShimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "host" {
            return Ok(NetnsMode::Host);
        }
        match s.strip_prefix("path:") {
            Some(p) if Path::new(p).is_absolute() => Ok(NetnsMode::Path(PathBuf::from(p))),
            _ => Err(ShimError::InvalidNetnsMode {
                value: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for NetnsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsMode::Host => f.write_str("host"),
            NetnsMode::Path(p) => write!(f, "path:{}", p.display()),
        }
    }
}

/// Whether the container gets its own hostname.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UtsMode {
    /// A new UTS namespace (the hostname can be set without touching the host's).
    New,
    /// The caller's UTS namespace (`--network host`, like Docker).
    Host,
}

/// The UTS setup, checked once: a hostname only ever comes with a new namespace, so no code
/// path can rename the host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UtsPlan {
    /// Stay in the caller's UTS namespace.
    Host,
    /// A new UTS namespace, with this hostname (or the inherited one).
    New(Option<Hostname>),
}

impl UtsPlan {
    fn new(mode: UtsMode, hostname: Option<&Hostname>) -> Result<Self, ShimError> {
        match (mode, hostname) {
            (UtsMode::Host, Some(_)) => Err(ShimError::HostnameNeedsNewUts),
            (UtsMode::Host, None) => Ok(UtsPlan::Host),
            (UtsMode::New, name) => Ok(UtsPlan::New(name.cloned())),
        }
    }
}

/// A hostname the kernel accepts: 1 to 64 bytes, no NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostname(String);

impl Hostname {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Hostname {
    type Err = ShimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > HOST_NAME_MAX || s.contains('\0') {
            return Err(ShimError::InvalidHostname {
                value: s.to_owned(),
            });
        }
        Ok(Hostname(s.to_owned()))
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `--bind SRC:DST[:ro]`: both paths absolute (and free of `:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The host file or directory.
    pub src: PathBuf,
    /// Where it appears inside the container (must exist).
    pub dst: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

impl FromStr for BindMount {
    type Err = ShimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &'static str| ShimError::InvalidBind {
            value: s.to_owned(),
            reason,
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, read_only) = match parts.as_slice() {
            [src, dst] => (*src, *dst, false),
            [src, dst, "ro"] => (*src, *dst, true),
            [src, dst, "rw"] => (*src, *dst, false),
            [_, _, _] => return Err(invalid("the only options are `ro` and `rw`")),
            _ => return Err(invalid("use SRC:DST or SRC:DST:ro")),
        };
        if !Path::new(src).is_absolute() || !Path::new(dst).is_absolute() {
            return Err(invalid("SRC and DST must be absolute paths"));
        }
        Ok(BindMount {
            src: src.into(),
            dst: dst.into(),
            read_only,
        })
    }
}

impl fmt::Display for BindMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.src.display(), self.dst.display())?;
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}

fn absolute_path(s: &str) -> Result<PathBuf, ShimError> {
    if Path::new(s).is_absolute() {
        Ok(PathBuf::from(s))
    } else {
        Err(ShimError::RelativePath {
            value: s.to_owned(),
        })
    }
}

/// Why the command could not be started, worded like Go's `exec.LookPath` errors, which runc
/// and therefore Docker print (`exec: "foo": executable file not found in $PATH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecFailure {
    /// A bare name found in no PATH directory.
    NotFoundInPath,
    /// A path that cannot be stat'ed (does not exist, a component is not a directory, ...).
    Stat(Errno),
    /// Found but not runnable (EACCES: permission denied, EISDIR, ENOEXEC, ...).
    Os(Errno),
}

impl ExecFailure {
    /// 127 when the command does not exist, 126 when it exists but cannot be run.
    pub fn exit_code(self) -> u8 {
        match self {
            ExecFailure::NotFoundInPath
            | ExecFailure::Stat(Errno::ENOENT | Errno::ENOTDIR)
            | ExecFailure::Os(Errno::ENOENT | Errno::ENOTDIR) => EXIT_NOT_FOUND,
            ExecFailure::Stat(_) | ExecFailure::Os(_) => EXIT_CANNOT_INVOKE,
        }
    }
}

/// Go's text for an errno: the C library's, first letter lower-case ("no such file or directory").
fn go_errno_text(e: Errno) -> String {
    let desc = e.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Go's wording of `failure` for the command `name`.
fn exec_failure_text(name: &str, failure: ExecFailure) -> String {
    match failure {
        ExecFailure::NotFoundInPath => "executable file not found in $PATH".to_owned(),
        ExecFailure::Stat(e) => format!("stat {name}: {}", go_errno_text(e)),
        ExecFailure::Os(e) => go_errno_text(e),
    }
}

/// The failures of the shim and of `_exec`; [`ShimError::exit_code`] says which exit code each
/// one stands for.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// `--netns` is neither `host` nor `path:/absolute/file`.
    #[error("invalid network namespace mode {value:?}: use `host` or `path:/absolute/file`")]
    InvalidNetnsMode {
        /// What was given.
        value: String,
    },
    /// A `--bind` value that does not parse.
    #[error("invalid bind mount {value:?}: {reason}")]
    InvalidBind {
        /// What was given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A hostname the kernel would refuse.
    #[error("invalid hostname {value:?}: use 1 to 64 characters")]
    InvalidHostname {
        /// What was given.
        value: String,
    },
    /// A relative `--workdir`.
    #[error("the working directory {value:?} is invalid: it needs to be an absolute path")]
    RelativePath {
        /// What was given.
        value: String,
    },
    /// `--hostname` with `--uts host` would rename the host.
    #[error(
        "a hostname needs the container's own UTS namespace: pass --uts new, or drop --hostname"
    )]
    HostnameNeedsNewUts,
    /// `run` was called on another thread than the process's main one.
    #[error(
        "the shim must run on the process's main thread: dispatch `_shim` before starting \
         the async runtime"
    )]
    NotMainThread,
    /// The signal handlers could not be installed.
    #[error("cannot install the shim's signal handlers")]
    Signals(#[source] io::Error),
    /// `setsid` failed although the shim does not lead a process group already.
    #[error("cannot start a new session for the container (setsid)")]
    NewSession(#[source] Errno),
    /// The `--tty` terminal could not be opened.
    #[error("cannot open the container's terminal {}", path.display())]
    OpenTty {
        /// The terminal.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The network-namespace file could not be opened.
    #[error(
        "cannot open the network namespace {}: pass an existing /proc/PID/ns/net, \
         /proc/PID/fd/N or /run/netns/NAME (is the namespace's owner still alive?)",
        .path.display()
    )]
    OpenNetns {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `setns` into the network namespace failed.
    #[error(
        "cannot enter the network namespace {}: the file must be a network namespace and \
         the shim needs CAP_SYS_ADMIN (run the daemon as root)",
        .path.display()
    )]
    EnterNetns {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// `unshare` of the mount (and UTS) namespace failed.
    #[error(
        "cannot create the container's mount/UTS namespaces: the shim needs CAP_SYS_ADMIN \
         (run the daemon as root)"
    )]
    Unshare(#[source] Errno),
    /// `mount --make-rprivate /` failed in the new mount namespace.
    #[error("cannot make the container's mounts private (so they do not reach the host)")]
    MakePrivate(#[source] Errno),
    /// A `--bind` source is missing.
    #[error("bind mount source {} does not exist: the daemon must create it first", .src.display())]
    BindSourceMissing {
        /// The source.
        src: PathBuf,
    },
    /// A `--bind` target is missing (bind mounts need an existing file or directory to cover).
    #[error(
        "bind mount target {} does not exist in the container's filesystem: create it \
         (an empty file will do) or drop the mount",
        .dst.display()
    )]
    BindTargetMissing {
        /// The target.
        dst: PathBuf,
    },
    /// The bind mount itself failed.
    #[error(
        "cannot bind-mount {} over {}: both must be files or both directories",
        .src.display(),
        .dst.display()
    )]
    Bind {
        /// The source.
        src: PathBuf,
        /// The target.
        dst: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// Making a bind mount read-only failed.
    #[error("cannot make the bind mount on {} read-only", .dst.display())]
    RemountReadOnly {
        /// The target.
        dst: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// `sethostname` failed in the new UTS namespace.
    #[error("cannot set the container's hostname to {hostname:?}")]
    SetHostname {
        /// The name.
        hostname: String,
        /// Why.
        #[source]
        source: Errno,
    },
    /// The working directory is not an existing directory.
    #[error(
        "cannot use {} as the working directory: it must be an existing directory \
         in the container",
        .dir.display()
    )]
    Workdir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The command could not be found or started (Docker's text).
    #[error("exec: {name:?}: {}", exec_failure_text(.name, *.failure))]
    ExecFailed {
        /// The command as given.
        name: String,
        /// Why.
        failure: ExecFailure,
    },
    /// Spawning failed for a reason that is not about the command.
    #[error("cannot start the command {name:?}")]
    Spawn {
        /// The command as given.
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `waitpid` failed: the shim lost track of its command.
    #[error("cannot wait for the command (was its exit status collected by someone else?)")]
    Wait(#[source] Errno),
    /// The exit file or pid file could not be written.
    #[error(
        "cannot write {}: its directory must exist and be writable by the shim",
        .path.display()
    )]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A namespace of the target process could not be opened (`_exec`).
    #[error("cannot open /proc/{pid}/ns/{kind}: is the container still running?")]
    OpenTargetNamespace {
        /// The target process.
        pid: u32,
        /// `net`, `uts` or `mnt`.
        kind: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Giving the exec thread its own filesystem context failed (`_exec`).
    #[error("cannot unshare the filesystem context needed to enter a mount namespace")]
    UnshareFs(#[source] Errno),
    /// `setns` into a namespace of the target failed (`_exec`).
    #[error(
        "cannot enter /proc/{pid}/ns/{kind}: `netloom _exec` needs CAP_SYS_ADMIN (run as root)"
    )]
    EnterTargetNamespace {
        /// The target process.
        pid: u32,
        /// `net`, `uts` or `mnt`.
        kind: &'static str,
        /// Why.
        #[source]
        source: Errno,
    },
}

impl ShimError {
    /// The exit code this failure stands for: 127 (command not found), 126 (command not
    /// runnable) or 125 (netloom's own setup failed).
    pub fn exit_code(&self) -> u8 {
        match self {
            ShimError::ExecFailed { failure, .. } => failure.exit_code(),
            _ => EXIT_SETUP_FAILED,
        }
    }
}

/// The error and its causes on one line: "what failed (what to do): cause: cause".
fn error_chain(err: &ShimError) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Writes one line to stderr (the container log). Unlike `eprintln!` it cannot panic: a log
/// pipe whose reader died must not keep the shim from writing the exit file.
fn log_line(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Reports a failure on stderr. Exec failures use Docker's exact text.
fn report(context: &str, err: &ShimError) {
    match err {
        ShimError::ExecFailed { .. } => log_line(&err.to_string()),
        _ => log_line(&format!("{context}: {}", error_chain(err))),
    }
}

/// Runs the shim; never returns without writing the exit file (unless that file itself cannot
/// be written, which is reported on stderr). The process should exit with the answer.
///
/// Call it from `main`'s thread before anything else runs (before building the tokio
/// runtime): the shim reaps every child of the process, handles signals process-wide, and its
/// namespaces must be those of the main thread, the ones `/proc/SHIM_PID/ns/*` shows to
/// `_exec` (namespace changes apply to the calling thread only).
pub fn run(args: ShimArgs) -> ExitCode {
    let on_main_thread = nix::unistd::gettid() == getpid();
    ExitCode::from(run_code(&args, on_main_thread))
}

/// [`run`], answering the numeric exit code. Tests pass `on_main_thread` as true: they run on
/// libtest's threads and look at `/proc/thread-self`.
fn run_code(args: &ShimArgs, on_main_thread: bool) -> u8 {
    let context = format!("netloom shim for container {}", args.id);
    let result = if on_main_thread {
        shim(args)
    } else {
        Err(ShimError::NotMainThread)
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            report(&context, &e);
            e.exit_code()
        }
    };
    if let Err(e) = write_atomically(&args.exit_file, format!("{code}\n").as_bytes()) {
        report(&context, &e);
    }
    code
}

fn shim(args: &ShimArgs) -> Result<u8, ShimError> {
    let uts = UtsPlan::new(args.uts, args.hostname.as_ref())?;
    let mut signals = install_signals()?;
    new_session()?;
    // Opened by the session leader without O_NOCTTY, the terminal becomes the session's
    // controlling terminal (Linux), its foreground group the shim's, which the command joins:
    // the terminal's ^C, ^\, ^Z and window changes reach the command directly.
    let tty = match &args.tty {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|source| ShimError::OpenTty {
                    path: path.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    // Orphans of the command come to the shim, which kills them when the command exits.
    // Failure only costs that cleanup (kernels before 3.4), so it is not fatal.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log_line(&format!(
            "netloom shim for container {}: cannot become a child subreaper ({e}); processes \
             the command leaves behind may outlive the container",
            args.id
        ));
    }
    enter_namespaces(&args.netns, &uts, &args.binds)?;
    let child = spawn_command(&args.command, args.workdir.as_deref(), tty.as_ref())?;
    let pid = child_pid(&child);
    // The terminal sends its signals to the whole foreground group, the command included:
    // forwarding them too would deliver them twice.
    let skip: &[libc::c_int] = if tty.is_some() { TTY_SIGNALS } else { &[] };
    if let Some(path) = &args.pid_file
        && let Err(e) = write_atomically(path, format!("{pid}\n").as_bytes())
    {
        // The daemon relies on the pid file: a container it cannot see is worse than none.
        let _ = kill(pid, Signal::SIGKILL);
        let _ = wait_for(pid, &mut signals, skip);
        kill_leftovers();
        return Err(e);
    }
    let code = wait_for(pid, &mut signals, skip)?;
    kill_leftovers();
    Ok(code)
}

/// Catches the forwarded signals and SIGCHLD. Installed before anything else, so a signal that
/// arrives during setup waits in the queue and reaches the command once it runs.
fn install_signals() -> Result<Signals, ShimError> {
    Signals::new(FORWARDED.iter().copied().chain([libc::SIGCHLD])).map_err(ShimError::Signals)
}

/// Makes the shim the leader of a new session and process group, so the daemon can signal the
/// container's processes as one group. Already leading a group (started by a shell, or with
/// `process_group(0)`) is fine: the group is the shim's all the same.
fn new_session() -> Result<(), ShimError> {
    match setsid() {
        Ok(_) => Ok(()),
        Err(Errno::EPERM) if getpgrp() == getpid() || getsid(None).ok() == Some(getpid()) => Ok(()),
        Err(e) => Err(ShimError::NewSession(e)),
    }
}

/// Puts the calling thread into the container's namespaces: the network namespace first (its
/// file is named by a host path), then a new mount namespace (and UTS namespace), made
/// recursively private before any mount so nothing propagates back to the host, then the bind
/// mounts and the hostname.
fn enter_namespaces(
    netns: &NetnsMode,
    uts: &UtsPlan,
    binds: &[BindMount],
) -> Result<(), ShimError> {
    if let NetnsMode::Path(path) = netns {
        let file = File::open(path).map_err(|source| ShimError::OpenNetns {
            path: path.clone(),
            source,
        })?;
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| ShimError::EnterNetns {
            path: path.clone(),
            source,
        })?;
    }
    let mut flags = CloneFlags::CLONE_NEWNS;
    if let UtsPlan::New(_) = uts {
        flags |= CloneFlags::CLONE_NEWUTS;
    }
    unshare(flags).map_err(ShimError::Unshare)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(ShimError::MakePrivate)?;
    for b in binds {
        bind(b)?;
    }
    if let UtsPlan::New(Some(name)) = uts {
        sethostname(name.as_str()).map_err(|source| ShimError::SetHostname {
            hostname: name.as_str().to_owned(),
            source,
        })?;
    }
    Ok(())
}

fn bind(b: &BindMount) -> Result<(), ShimError> {
    // Checked first for a clear message; mount(2) would only say ENOENT. `exists` follows
    // symlinks as mount does (a symlinked /etc/resolv.conf gets its target covered).
    if !b.src.exists() {
        return Err(ShimError::BindSourceMissing { src: b.src.clone() });
    }
    if !b.dst.exists() {
        return Err(ShimError::BindTargetMissing { dst: b.dst.clone() });
    }
    mount(
        Some(&b.src),
        &b.dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| ShimError::Bind {
        src: b.src.clone(),
        dst: b.dst.clone(),
        source,
    })?;
    if b.read_only {
        // A bind remount replaces the per-mount flags: keep nosuid, nodev, noexec and the
        // atime flags of the mount the source lives on (runc does the same).
        let kept = statvfs(&b.dst)
            .map(|st| mount_flags(st.flags()))
            .unwrap_or(MsFlags::empty());
        mount(
            None::<&str>,
            &b.dst,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept,
            None::<&str>,
        )
        .map_err(|source| ShimError::RemountReadOnly {
            dst: b.dst.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The mount flags that a bind remount must repeat.
fn mount_flags(st: FsFlags) -> MsFlags {
    [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(s, _)| st.contains(*s))
    .fold(MsFlags::empty(), |acc, (_, m)| acc | m)
}

/// Why a candidate file cannot be executed (Go's `findExecutable`).
fn find_executable(path: &Path) -> Result<(), ExecFailure> {
    let meta = std::fs::metadata(path).map_err(|e| ExecFailure::Stat(errno_of(&e)))?;
    if meta.is_dir() {
        return Err(ExecFailure::Os(Errno::EISDIR));
    }
    match access(path, AccessFlags::X_OK) {
        Ok(()) => Ok(()),
        // access(2) unusable (seccomp): fall back to the mode bits, as Go does.
        Err(Errno::ENOSYS | Errno::EPERM) if meta.permissions().mode() & 0o111 != 0 => Ok(()),
        Err(Errno::ENOSYS | Errno::EPERM) => Err(ExecFailure::Os(Errno::EACCES)),
        Err(e) => Err(ExecFailure::Os(e)),
    }
}

fn errno_of(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Finds the file to execute for `name` the way runc does (Go's `exec.LookPath`): a name with
/// a `/` is taken as a path (relative to `base`, the command's working directory), a bare name
/// is searched in `path_var` (an empty entry meaning the working directory), skipping
/// candidates that are not executable. Answers an absolute path when `base` is absolute.
fn look_path(name: &str, path_var: &OsStr, base: &Path) -> Result<PathBuf, ExecFailure> {
    if name.contains('/') {
        let path = base.join(name);
        find_executable(&path)?;
        return Ok(path);
    }
    for dir in std::env::split_paths(path_var) {
        let candidate = base.join(dir).join(name);
        if !name.is_empty() && find_executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(ExecFailure::NotFoundInPath)
}

/// Starts the command with the shim's environment and stdio, in `workdir` (default `/`).
fn spawn_command(
    argv: &[String],
    workdir: Option<&Path>,
    tty: Option<&File>,
) -> Result<std::process::Child, ShimError> {
    let (name, rest) = argv.split_first().ok_or_else(|| ShimError::ExecFailed {
        name: String::new(),
        failure: ExecFailure::NotFoundInPath,
    })?;
    let dir = workdir.unwrap_or(Path::new("/"));
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(ShimError::Workdir {
                dir: dir.to_owned(),
                source: io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        Err(source) => {
            return Err(ShimError::Workdir {
                dir: dir.to_owned(),
                source,
            });
        }
    }
    let path_var: OsString = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    let program = look_path(name, &path_var, dir).map_err(|failure| ShimError::ExecFailed {
        name: name.clone(),
        failure,
    })?;
    // std resets the signal mask and SIGPIPE in the child; the caught signals are reset by
    // exec itself. The command is found already, so a failure here is about running it
    // (ENOEXEC, ETXTBSY, a vanished file).
    let mut cmd = Command::new(&program);
    cmd.arg0(name).args(rest).current_dir(dir);
    if let Some(t) = tty {
        let stdio = || {
            t.try_clone().map_err(|source| ShimError::Spawn {
                name: name.clone(),
                source,
            })
        };
        cmd.stdin(stdio()?).stdout(stdio()?).stderr(stdio()?);
    }
    cmd.spawn().map_err(|e| match e.raw_os_error() {
        Some(n) => ShimError::ExecFailed {
            name: name.clone(),
            failure: ExecFailure::Os(Errno::from_raw(n)),
        },
        None => ShimError::Spawn {
            name: name.clone(),
            source: e,
        },
    })
}

fn child_pid(child: &std::process::Child) -> Pid {
    // Pids fit in i32 (the kernel's pid_max is at most 2^22).
    Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
}

/// The exit code Docker reports for a wait status: the exit code, or 128 + the signal number.
/// `None` for statuses that are not a death (stopped, continued, still alive).
fn encode_exit(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, code) => Some((code & 0xff) as u8),
        WaitStatus::Signaled(_, sig, _) => Some(128u8.saturating_add(sig as u8)),
        _ => None,
    }
}

/// Forwards caught signals to `pid` until it dies; answers its exit code. Adopted orphans that
/// die meanwhile are reaped too. A signal is sent only while `pid` is unreaped, so it can never
/// hit a recycled pid.
fn wait_for(pid: Pid, signals: &mut Signals, skip: &[libc::c_int]) -> Result<u8, ShimError> {
    loop {
        if let Some(code) = reap(pid)? {
            return Ok(code);
        }
        for sig in signals.wait() {
            if sig == libc::SIGCHLD || skip.contains(&sig) {
                continue;
            }
            if let Ok(signal) = Signal::try_from(sig) {
                let _ = kill(pid, signal);
            }
        }
    }
}

/// Reaps every dead child without blocking; answers `pid`'s exit code once it is among them.
fn reap(pid: Pid) -> Result<Option<u8>, ShimError> {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(status) if status.pid() == Some(pid) => {
                if let Some(code) = encode_exit(status) {
                    return Ok(Some(code));
                }
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(ShimError::Wait(e)),
        }
    }
}

/// The parent pid in a `/proc/PID/stat` line; the command name may contain spaces and `)`.
fn parse_ppid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// The children of `parent`, from /proc (a process, not a thread, view).
fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_ppid(&s))
                == Some(parent.as_raw())
        })
        .map(Pid::from_raw)
        .collect()
}

/// Kills what the command left behind, as Docker does when a container's PID 1 exits. Being a
/// subreaper, the shim inherits every orphan, so killing its children round after round until
/// none is left reaches even daemons that double-forked and called setsid.
fn kill_leftovers() {
    let me = getpid();
    let deadline = Instant::now() + LEFTOVER_DEADLINE;
    loop {
        for pid in children_of(me) {
            let _ = kill(pid, Signal::SIGKILL);
        }
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                // ECHILD: nothing left.
                Err(_) => return,
            }
        }
        if Instant::now() >= deadline {
            log_line(&format!(
                "netloom shim: processes left by the command did not die within {}s; giving up",
                LEFTOVER_DEADLINE.as_secs()
            ));
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes `contents` to `path` atomically: to `path.tmp`, flushed, then renamed, so a reader
/// (or a daemon restarted after a crash) sees the old file or the whole new one.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ShimError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let wrap = |source| ShimError::WriteFile {
        path: path.to_owned(),
        source,
    };
    let mut f = File::create(&tmp).map_err(wrap)?;
    f.write_all(contents).map_err(wrap)?;
    f.sync_all().map_err(wrap)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(wrap)
}

/// Runs `netloom _exec`: enters the namespaces of `args.pid`, runs the command with inherited
/// stdio and environment, forwards signals to it, exits with its exit code (or 125/126/127).
/// Processes the command leaves behind are not killed (`docker exec` leaves them too).
pub fn exec_main(args: ExecArgs) -> ExitCode {
    ExitCode::from(exec_code(&args))
}

fn exec_code(args: &ExecArgs) -> u8 {
    let run = || -> Result<u8, ShimError> {
        let mut signals = install_signals()?;
        new_session()?;
        enter_container(args.pid)?;
        let child = spawn_command(&args.command, args.workdir.as_deref(), None)?;
        wait_for(child_pid(&child), &mut signals, &[])
    };
    match run() {
        Ok(code) => code,
        Err(e) => {
            report(&format!("netloom exec in process {}", args.pid), &e);
            e.exit_code()
        }
    }
}

/// Moves the calling thread into the network, UTS and mount namespaces of `pid`.
fn enter_container(pid: u32) -> Result<(), ShimError> {
    // All three are opened before entering any: the mount namespace changes what paths mean.
    let open = |kind: &'static str| {
        File::open(format!("/proc/{pid}/ns/{kind}"))
            .map_err(|source| ShimError::OpenTargetNamespace { pid, kind, source })
    };
    let namespaces = [
        (open("net")?, "net", CloneFlags::CLONE_NEWNET),
        (open("uts")?, "uts", CloneFlags::CLONE_NEWUTS),
        (open("mnt")?, "mnt", CloneFlags::CLONE_NEWNS),
    ];
    // setns(CLONE_NEWNS) refuses a thread whose root and cwd are shared with other threads;
    // giving this thread its own copy makes it work even in a multithreaded process.
    unshare(CloneFlags::CLONE_FS).map_err(ShimError::UnshareFs)?;
    for (file, kind, flag) in &namespaces {
        setns(file, *flag).map_err(|source| ShimError::EnterTargetNamespace {
            pid,
            kind,
            source,
        })?;
    }
    Ok(())
}

/// The `netloom _exec` command line that runs `cmd` in the container whose process is
/// `target_pid`: spawn it with the stdio you want (`tokio::process::Command::from` works).
pub fn exec_command(
    netloom_exe: &Path,
    target_pid: u32,
    workdir: Option<&Path>,
    cmd: &[String],
) -> Command {
    let mut c = Command::new(netloom_exe);
    c.arg("_exec").arg("--pid").arg(target_pid.to_string());
    if let Some(dir) = workdir {
        c.arg("--workdir").arg(dir);
    }
    c.arg("--").args(cmd);
    c
}

/// Runs `cmd` in the container whose process is `target_pid` (through `netloom _exec`, this
/// same binary) and collects its output; stdin is empty. The exit status is the command's,
/// or 125/126/127 as for the shim.
pub fn exec_in(target_pid: u32, cmd: &[String]) -> io::Result<Output> {
    exec_command(&std::env::current_exe()?, target_pid, None, cmd).output()
}

#[cfg(test)]
mod tests {
    //! Pure parts are tested in-process. Namespace behaviour is tested by re-running one
    //! `#[ignore]`d test of this binary under `unshare --net --mount --uts --propagation private`
    //! (so nothing can reach the host's network, mounts or hostname even if the shim were
    //! wrong), with an environment variable that makes the ignored test run its body; the
    //! parent test checks the child's result and what the host sees.

    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::io::AsRawFd as _;
    use std::process::Stdio;

    use clap::Parser;
    use nix::unistd::{Uid, gethostname};
    use rstest::rstest;

    use super::*;

    #[derive(Parser, Debug)]
    struct ShimCli {
        #[command(flatten)]
        args: ShimArgs,
    }

    #[derive(Parser, Debug)]
    struct ExecCli {
        #[command(flatten)]
        args: ExecArgs,
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[rstest]
    #[case::host("host", Some(NetnsMode::Host))]
    #[case::proc_ns("path:/proc/1/ns/net", Some(NetnsMode::Path("/proc/1/ns/net".into())))]
    #[case::daemon_fd("path:/proc/42/fd/7", Some(NetnsMode::Path("/proc/42/fd/7".into())))]
    #[case::relative("path:run/netns/x", None)]
    #[case::empty_path("path:", None)]
    #[case::bare_path("/proc/1/ns/net", None)]
    #[case::none("none", None)]
    #[case::empty("", None)]
    fn netns_mode_parses_and_round_trips(#[case] s: &str, #[case] want: Option<NetnsMode>) {
        let got = s.parse::<NetnsMode>().ok();
        assert_eq!(got, want);
        if let Some(mode) = got {
            assert_eq!(mode.to_string(), s);
        }
    }

    #[rstest]
    #[case::plain("/a/b:/etc/hosts", Some(("/a/b", "/etc/hosts", false)))]
    #[case::ro("/a:/b:ro", Some(("/a", "/b", true)))]
    #[case::rw("/a:/b:rw", Some(("/a", "/b", false)))]
    #[case::one_part("/a", None)]
    #[case::relative_src("a:/b", None)]
    #[case::relative_dst("/a:b", None)]
    #[case::bad_option("/a:/b:rx", None)]
    #[case::too_many("/a:/b:ro:x", None)]
    #[case::empty("", None)]
    fn bind_parses(#[case] s: &str, #[case] want: Option<(&str, &str, bool)>) {
        let got = s.parse::<BindMount>().ok();
        let want = want.map(|(src, dst, read_only)| BindMount {
            src: src.into(),
            dst: dst.into(),
            read_only,
        });
        assert_eq!(got, want);
        if let Some(b) = got
            && !s.ends_with(":rw")
        {
            assert_eq!(b.to_string(), s);
        }
    }

    #[rstest]
    #[case::short("a", true)]
    #[case::short_id("0123456789ab", true)]
    #[case::max(&"h".repeat(64), true)]
    #[case::too_long(&"h".repeat(65), false)]
    #[case::empty("", false)]
    #[case::nul("a\0b", false)]
    fn hostname_is_validated(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(s.parse::<Hostname>().is_ok(), ok, "{s:?}");
    }

    #[test]
    fn shim_args_parse() {
        let cli = ShimCli::try_parse_from([
            "_shim",
            "--id",
            "c0ffee",
            "--netns",
            "path:/proc/7/fd/3",
            "--uts",
            "new",
            "--hostname",
            "web",
            "--bind",
            "/var/lib/netloom/c/hosts:/etc/hosts",
            "--bind",
            "/r:/etc/resolv.conf:ro",
            "--exit-file",
            "/var/lib/netloom/c/exit",
            "--pid-file",
            "/var/lib/netloom/c/pid",
            "--workdir",
            "/srv",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .unwrap();
        let a = cli.args;
        assert_eq!(a.id, "c0ffee");
        assert_eq!(a.netns, NetnsMode::Path("/proc/7/fd/3".into()));
        assert_eq!(a.uts, UtsMode::New);
        assert_eq!(a.hostname.as_ref().map(Hostname::as_str), Some("web"));
        assert_eq!(a.binds.len(), 2);
        assert_eq!(a.binds[1].dst, Path::new("/etc/resolv.conf"));
        assert!(a.binds[1].read_only);
        assert_eq!(a.exit_file, Path::new("/var/lib/netloom/c/exit"));
        assert_eq!(
            a.pid_file.as_deref(),
            Some(Path::new("/var/lib/netloom/c/pid"))
        );
        assert_eq!(a.workdir.as_deref(), Some(Path::new("/srv")));
        assert_eq!(a.command, strings(&["sh", "-c", "exit 3"]));
    }

    #[rstest]
    #[case::after_dashes(&["--", "ls", "--id", "-l"], &["ls", "--id", "-l"])]
    #[case::without_dashes(&["sh", "-c", "exit 3"], &["sh", "-c", "exit 3"])]
    #[case::dashes_inside(&["--", "env", "--", "x"], &["env", "--", "x"])]
    fn shim_payload_flags_are_not_the_shims(#[case] tail: &[&str], #[case] want: &[&str]) {
        let mut argv = strings(&["_shim", "--id", "c", "--netns", "host", "--exit-file", "/e"]);
        argv.extend(strings(tail));
        let a = ShimCli::try_parse_from(argv).unwrap().args;
        assert_eq!(a.command, strings(want));
        assert_eq!(a.uts, UtsMode::New, "default");
        assert_eq!(a.hostname, None);
        assert!(a.binds.is_empty() && a.workdir.is_none() && a.pid_file.is_none());
    }

    #[rstest]
    #[case::no_command("--netns host --exit-file /e", "CMD")]
    #[case::no_exit_file("--netns host -- true", "--exit-file")]
    #[case::bad_netns("--netns /x --exit-file /e -- true", "use `host`")]
    #[case::bad_uts("--netns host --uts x --exit-file /e -- true", "new")]
    #[case::bad_bind("--netns host --bind x --exit-file /e -- true", "SRC:DST")]
    #[case::relative_workdir("--netns host --workdir w --exit-file /e -- true", "absolute")]
    fn shim_args_errors_say_what_to_do(#[case] args: &str, #[case] hint: &str) {
        let mut argv = vec!["_shim", "--id", "c"];
        argv.extend(args.split_whitespace());
        let err = ShimCli::try_parse_from(argv).unwrap_err().to_string();
        assert!(err.contains(hint), "{err}");
    }

    #[test]
    fn exec_args_parse() {
        let a = ExecCli::try_parse_from(["_exec", "--pid", "42", "--", "ip", "-br", "addr"])
            .unwrap()
            .args;
        assert_eq!(a.pid, 42);
        assert_eq!(a.workdir, None);
        assert_eq!(a.command, strings(&["ip", "-br", "addr"]));
        assert!(ExecCli::try_parse_from(["_exec", "--pid", "42"]).is_err());
        assert!(ExecCli::try_parse_from(["_exec", "--", "true"]).is_err());
    }

    #[test]
    fn exec_command_is_what_exec_args_parse() {
        let cmd = exec_command(
            Path::new("/usr/bin/netloom"),
            42,
            Some(Path::new("/srv")),
            &strings(&["sh", "-c", "--pid 1"]),
        );
        assert_eq!(cmd.get_program(), "/usr/bin/netloom");
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[0], "_exec");
        let a = ExecCli::try_parse_from(&args).unwrap().args;
        assert_eq!(a.pid, 42);
        assert_eq!(a.workdir.as_deref(), Some(Path::new("/srv")));
        assert_eq!(a.command, strings(&["sh", "-c", "--pid 1"]));
    }

    #[rstest]
    #[case::zero(WaitStatus::Exited(Pid::from_raw(9), 0), Some(0))]
    #[case::three(WaitStatus::Exited(Pid::from_raw(9), 3), Some(3))]
    #[case::max(WaitStatus::Exited(Pid::from_raw(9), 255), Some(255))]
    #[case::sigkill(
        WaitStatus::Signaled(Pid::from_raw(9), Signal::SIGKILL, false),
        Some(137)
    )]
    #[case::sigterm(
        WaitStatus::Signaled(Pid::from_raw(9), Signal::SIGTERM, false),
        Some(143)
    )]
    #[case::sigsegv_core(
        WaitStatus::Signaled(Pid::from_raw(9), Signal::SIGSEGV, true),
        Some(139)
    )]
    #[case::alive(WaitStatus::StillAlive, None)]
    #[case::stopped(WaitStatus::Stopped(Pid::from_raw(9), Signal::SIGSTOP), None)]
    fn exit_codes_are_dockers(#[case] status: WaitStatus, #[case] want: Option<u8>) {
        assert_eq!(encode_exit(status), want);
    }

    #[rstest]
    #[case::not_in_path(
        "foo",
        ExecFailure::NotFoundInPath,
        r#"exec: "foo": executable file not found in $PATH"#,
        127
    )]
    #[case::no_such_file(
        "/nope",
        ExecFailure::Stat(Errno::ENOENT),
        r#"exec: "/nope": stat /nope: no such file or directory"#,
        127
    )]
    #[case::permission(
        "/etc/passwd",
        ExecFailure::Os(Errno::EACCES),
        r#"exec: "/etc/passwd": permission denied"#,
        126
    )]
    #[case::directory(
        "/etc",
        ExecFailure::Os(Errno::EISDIR),
        r#"exec: "/etc": is a directory"#,
        126
    )]
    #[case::format(
        "/x",
        ExecFailure::Os(Errno::ENOEXEC),
        r#"exec: "/x": exec format error"#,
        126
    )]
    fn exec_failures_read_like_docker(
        #[case] name: &str,
        #[case] failure: ExecFailure,
        #[case] text: &str,
        #[case] code: u8,
    ) {
        let e = ShimError::ExecFailed {
            name: name.into(),
            failure,
        };
        assert_eq!(e.to_string(), text);
        assert_eq!(error_chain(&e), text);
        assert_eq!(e.exit_code(), code);
    }

    #[test]
    fn uts_plan_never_renames_the_host() {
        let name: Hostname = "web".parse().unwrap();
        assert!(matches!(
            UtsPlan::new(UtsMode::Host, Some(&name)),
            Err(ShimError::HostnameNeedsNewUts)
        ));
        assert_eq!(UtsPlan::new(UtsMode::Host, None).unwrap(), UtsPlan::Host);
        assert_eq!(
            UtsPlan::new(UtsMode::New, Some(&name)).unwrap(),
            UtsPlan::New(Some(name))
        );
        assert_eq!(
            UtsPlan::new(UtsMode::New, None).unwrap(),
            UtsPlan::New(None)
        );
    }

    #[test]
    fn read_only_remount_keeps_the_security_flags() {
        let st = FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_RDONLY | FsFlags::ST_RELATIME;
        assert_eq!(
            mount_flags(st),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME
        );
        assert_eq!(mount_flags(FsFlags::empty()), MsFlags::empty());
    }

    #[test]
    fn setup_failures_are_125_and_name_their_cause() {
        let e = ShimError::Unshare(Errno::EPERM);
        assert_eq!(e.exit_code(), EXIT_SETUP_FAILED);
        let text = error_chain(&e);
        assert!(text.starts_with("cannot create the container's mount/UTS namespaces"));
        assert!(text.ends_with(": EPERM: Operation not permitted"), "{text}");
        let e = ShimError::BindTargetMissing {
            dst: "/etc/hostname".into(),
        };
        assert_eq!(e.exit_code(), 125);
        assert!(e.to_string().contains("/etc/hostname does not exist"));
    }

    #[test]
    fn hostname_with_host_uts_is_refused_before_anything_happens() {
        let dir = tempfile::tempdir().unwrap();
        let args = ShimArgs {
            id: "c".into(),
            netns: NetnsMode::Host,
            uts: UtsMode::Host,
            hostname: Some("x".parse().unwrap()),
            binds: vec![],
            exit_file: dir.path().join("exit"),
            pid_file: None,
            workdir: None,
            tty: None,
            command: strings(&["true"]),
        };
        assert!(matches!(shim(&args), Err(ShimError::HostnameNeedsNewUts)));
    }

    #[test]
    fn run_refuses_other_threads_than_main() {
        let dir = tempfile::tempdir().unwrap();
        let args = ShimArgs {
            id: "c".into(),
            netns: NetnsMode::Host,
            uts: UtsMode::New,
            hostname: None,
            binds: vec![],
            exit_file: dir.path().join("exit"),
            pid_file: None,
            workdir: None,
            tty: None,
            command: strings(&["true"]),
        };
        let exit_file = args.exit_file.clone();
        // A thread of our own is certainly not the main one; run() must not touch anything.
        std::thread::spawn(move || run(args)).join().unwrap();
        assert_eq!(std::fs::read_to_string(exit_file).unwrap(), "125\n");
        assert_eq!(ShimError::NotMainThread.exit_code(), EXIT_SETUP_FAILED);
    }

    fn write_file(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn look_path_is_go_lookpath() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        write_file(&a.join("tool"), "", 0o644); // not executable: skipped
        write_file(&b.join("tool"), "#!/bin/sh\n", 0o755);
        write_file(&t.path().join("local"), "#!/bin/sh\n", 0o755);
        write_file(&t.path().join("data"), "", 0o600);
        let path = std::env::join_paths([&a, &b]).unwrap();
        let base = t.path();

        assert_eq!(look_path("tool", &path, base), Ok(b.join("tool")));
        assert_eq!(
            look_path("nothere", &path, base),
            Err(ExecFailure::NotFoundInPath)
        );
        assert_eq!(look_path("", &path, base), Err(ExecFailure::NotFoundInPath));
        // A name with a slash is a path, relative to the working directory.
        assert_eq!(look_path("./local", &path, base), Ok(base.join("./local")));
        assert_eq!(
            look_path("./a/tool", &path, base),
            Err(ExecFailure::Os(Errno::EACCES))
        );
        assert_eq!(
            look_path("./a", &path, base),
            Err(ExecFailure::Os(Errno::EISDIR))
        );
        assert_eq!(
            look_path("/no/such", &path, base),
            Err(ExecFailure::Stat(Errno::ENOENT))
        );
        assert_eq!(
            look_path("data/x", &path, base),
            Err(ExecFailure::Stat(Errno::ENOTDIR))
        );
        // An empty PATH entry means the working directory.
        let with_dot = std::env::join_paths([Path::new(""), a.as_path()]).unwrap();
        assert_eq!(look_path("local", &with_dot, base), Ok(base.join("local")));
    }

    #[test]
    fn files_are_written_atomically() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("exit");
        write_atomically(&path, b"3\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "3\n");
        write_atomically(&path, b"137\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "137\n");
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("exit")], "no .tmp left over");
        let err = write_atomically(&t.path().join("no/such/dir/exit"), b"1").unwrap_err();
        assert!(matches!(err, ShimError::WriteFile { .. }), "{err}");
    }

    #[rstest]
    #[case::plain("123 (sleep) S 45 123 123 0", Some(45))]
    #[case::odd_name("7 (a) b) (c) R 1 7 7 0", Some(1))]
    #[case::spaces("9 (my prog) S 300 9 9", Some(300))]
    #[case::truncated("9 (x) S", None)]
    #[case::garbage("", None)]
    fn ppid_is_read_after_the_last_paren(#[case] stat: &str, #[case] want: Option<i32>) {
        assert_eq!(parse_ppid(stat), want);
    }

    #[test]
    fn children_of_finds_a_child() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let kids = children_of(getpid());
        let pid = child_pid(&child);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(kids.contains(&pid), "{kids:?} lacks {pid}");
    }

    // ---- namespaced tests: a parent test and the `child_*` test it re-runs ----

    const CHILD_ENV: &str = "NETLOOM_SHIM_TEST_CHILD";

    /// The body of a `child_*` test runs only when a parent test started it.
    fn in_child() -> bool {
        std::env::var_os(CHILD_ENV).is_some()
    }

    fn var(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
    }

    fn is_root() -> bool {
        if Uid::effective().is_root() {
            return true;
        }
        eprintln!("skipped: namespace tests need root");
        false
    }

    /// The namespace a process (or `thread-self`, `self`) is in, e.g. `net:[4026531840]`.
    fn ns_of(who: &str, kind: &str) -> String {
        std::fs::read_link(format!("/proc/{who}/ns/{kind}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    struct ChildTest {
        child: std::process::Child,
        logs: tempfile::TempDir,
    }

    /// Re-runs `shim::tests::<name>` in private network, mount and UTS namespaces.
    fn spawn_child(name: &str, envs: &[(&str, String)]) -> ChildTest {
        let logs = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--net",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
        ])
        .arg(exe)
        .arg(format!("shim::tests::{name}"))
        .args(["--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(File::create(logs.path().join("out")).unwrap())
        .stderr(File::create(logs.path().join("err")).unwrap());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("unshare (util-linux) is needed");
        ChildTest { child, logs }
    }

    impl ChildTest {
        /// Waits (at most a minute) and checks that the child test passed; answers its stderr.
        fn finish(mut self) -> String {
            let deadline = Instant::now() + Duration::from_secs(60);
            let status = loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    break self.child.wait().unwrap();
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let read = |f: &str| std::fs::read_to_string(self.logs.path().join(f)).unwrap();
            let (out, err) = (read("out"), read("err"));
            assert!(
                status.success() && out.contains("1 passed"),
                "child test failed ({status}):\n--- stdout\n{out}\n--- stderr\n{err}"
            );
            err
        }
    }

    /// A process in its own namespaces (`unshare ARGS -- sleep 60`), killed on drop.
    struct Target(std::process::Child);

    impl Target {
        fn start(unshare_args: &[&str]) -> Target {
            let child = Command::new("unshare")
                .args(unshare_args)
                .args(["--", "sleep", "60"])
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let t = Target(child);
            let pid = t.pid().to_string();
            let deadline = Instant::now() + Duration::from_secs(10);
            // unshare execs sleep once the namespaces exist: wait for that.
            while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
                != "sleep\n"
            {
                assert!(Instant::now() < deadline, "unshare did not start sleep");
                std::thread::sleep(Duration::from_millis(5));
            }
            t
        }

        fn pid(&self) -> u32 {
            self.0.id()
        }
    }

    impl Drop for Target {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn bind_mounts_are_seen_inside_only() {
        if !is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let p = |n: &str| t.path().join(n);
        std::fs::write(p("src"), "inside").unwrap();
        std::fs::write(p("dst"), "outside").unwrap();
        std::fs::write(p("ro-src"), "read-only").unwrap();
        std::fs::write(p("ro-dst"), "outside").unwrap();
        let child = spawn_child(
            "child_bind",
            &[("NL_T_DIR", t.path().to_string_lossy().into_owned())],
        );
        child.finish();
        assert_eq!(std::fs::read_to_string(p("dst")).unwrap(), "outside");
        assert_eq!(std::fs::read_to_string(p("ro-dst")).unwrap(), "outside");
        assert_eq!(std::fs::read_to_string(p("src")).unwrap(), "inside");
    }

    #[test]
    #[ignore = "run by bind_mounts_are_seen_inside_only in private namespaces"]
    fn child_bind() {
        if !in_child() {
            return;
        }
        let dir = PathBuf::from(var("NL_T_DIR"));
        let p = |n: &str| dir.join(n);
        let mnt_before = ns_of("thread-self", "mnt");
        let binds = [
            format!("{}:{}", p("src").display(), p("dst").display()),
            format!("{}:{}:ro", p("ro-src").display(), p("ro-dst").display()),
        ]
        .map(|s| s.parse::<BindMount>().unwrap());
        enter_namespaces(&NetnsMode::Host, &UtsPlan::New(None), &binds).unwrap();
        assert_ne!(
            ns_of("thread-self", "mnt"),
            mnt_before,
            "a new mount namespace"
        );
        assert_eq!(std::fs::read_to_string(p("dst")).unwrap(), "inside");
        assert_eq!(std::fs::read_to_string(p("ro-dst")).unwrap(), "read-only");
        let e = std::fs::write(p("ro-dst"), "x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        // Every mount is private now: nothing propagates to or from the host.
        let mountinfo = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        for line in mountinfo.lines() {
            let optional = line.split(" - ").next().unwrap();
            assert!(!optional.contains("shared:"), "{line}");
        }
        let missing = BindMount {
            src: p("src"),
            dst: p("missing"),
            read_only: false,
        };
        let e = bind(&missing).unwrap_err();
        assert!(matches!(e, ShimError::BindTargetMissing { .. }), "{e}");
        assert!(!p("missing").exists(), "nothing created");
    }

    #[test]
    fn hostname_is_set_inside_only() {
        if !is_root() {
            return;
        }
        let host = gethostname().unwrap();
        spawn_child("child_hostname", &[]).finish();
        assert_eq!(gethostname().unwrap(), host);
    }

    #[test]
    #[ignore = "run by hostname_is_set_inside_only in private namespaces"]
    fn child_hostname() {
        if !in_child() {
            return;
        }
        let uts_before = ns_of("thread-self", "uts");
        let name: Hostname = "netloom-shim-test".parse().unwrap();
        enter_namespaces(&NetnsMode::Host, &UtsPlan::New(Some(name)), &[]).unwrap();
        assert_ne!(
            ns_of("thread-self", "uts"),
            uts_before,
            "a new UTS namespace"
        );
        assert_eq!(gethostname().unwrap(), "netloom-shim-test");
    }

    #[test]
    fn setns_enters_the_netns_file() {
        if !is_root() {
            return;
        }
        let target = Target::start(&["--net"]);
        let want = ns_of(&target.pid().to_string(), "net");
        assert_ne!(want, ns_of("self", "net"));
        // The daemon's way: a descriptor it holds, named through its own /proc/PID/fd.
        let pin = File::open(format!("/proc/{}/ns/net", target.pid())).unwrap();
        let via_fd = format!("/proc/{}/fd/{}", std::process::id(), pin.as_raw_fd());
        let not_netns = tempfile::NamedTempFile::new().unwrap();
        spawn_child(
            "child_setns",
            &[
                ("NL_T_NETNS", format!("/proc/{}/ns/net", target.pid())),
                ("NL_T_NETNS_FD", via_fd),
                ("NL_T_WANT", want),
                ("NL_T_NOT_NETNS", not_netns.path().to_string_lossy().into()),
            ],
        )
        .finish();
        drop(pin);
    }

    #[test]
    #[ignore = "run by setns_enters_the_netns_file in private namespaces"]
    fn child_setns() {
        if !in_child() {
            return;
        }
        let mode = |v: &str| NetnsMode::Path(var(v).into());
        let e = enter_namespaces(&mode("NL_T_NOT_NETNS"), &UtsPlan::New(None), &[]).unwrap_err();
        assert!(matches!(e, ShimError::EnterNetns { .. }), "{e}");
        let e = enter_namespaces(
            &NetnsMode::Path("/nonexistent/ns".into()),
            &UtsPlan::New(None),
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, ShimError::OpenNetns { .. }), "{e}");
        assert_ne!(ns_of("thread-self", "net"), var("NL_T_WANT"));
        enter_namespaces(&mode("NL_T_NETNS_FD"), &UtsPlan::New(None), &[]).unwrap();
        assert_eq!(ns_of("thread-self", "net"), var("NL_T_WANT"));
        enter_namespaces(&mode("NL_T_NETNS"), &UtsPlan::New(None), &[]).unwrap();
        assert_eq!(ns_of("thread-self", "net"), var("NL_T_WANT"));
    }

    #[test]
    fn run_writes_exit_codes() {
        if !is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let err = spawn_child(
            "child_exit_codes",
            &[("NL_T_DIR", t.path().to_string_lossy().into_owned())],
        )
        .finish();
        for text in [
            r#"exec: "netloom-no-such-command": executable file not found in $PATH"#,
            r#"exec: "/nonexistent/cmd": stat /nonexistent/cmd: no such file or directory"#,
            "\": permission denied",
            "netloom shim for container t-workdir: cannot use /nonexistent/dir as the working \
             directory",
        ] {
            assert!(err.contains(text), "stderr lacks {text:?}:\n{err}");
        }
    }

    #[test]
    #[ignore = "run by run_writes_exit_codes in private namespaces"]
    fn child_exit_codes() {
        if !in_child() {
            return;
        }
        let dir = PathBuf::from(var("NL_T_DIR"));
        let p = |n: &str| dir.join(n);
        std::fs::write(p("src"), "inside").unwrap();
        std::fs::write(p("dst"), "outside").unwrap();
        write_file(&p("noexec"), "#!/bin/sh\n", 0o644);
        write_file(&p("script"), "#!/bin/sh\nexit 9\n", 0o755);
        let args = |id: &str, cmd: &[&str]| ShimArgs {
            id: id.into(),
            netns: NetnsMode::Host,
            uts: UtsMode::New,
            hostname: None,
            binds: vec![],
            exit_file: p(&format!("exit-{id}")),
            pid_file: None,
            workdir: None,
            tty: None,
            command: strings(cmd),
        };
        let check = |a: &ShimArgs, want: u8| {
            assert_eq!(run_code(a, true), want, "{}", a.id);
            let written = std::fs::read_to_string(&a.exit_file).unwrap();
            assert_eq!(written, format!("{want}\n"), "{}", a.id);
        };
        check(&args("t-3", &["sh", "-c", "exit 3"]), 3);
        check(&args("t-0", &["true"]), 0);
        check(&args("t-kill", &["sh", "-c", "kill -9 $$"]), 137);
        check(&args("t-notfound", &["netloom-no-such-command"]), 127);
        check(&args("t-nofile", &["/nonexistent/cmd"]), 127);
        let noexec = p("noexec").to_string_lossy().into_owned();
        check(&args("t-noexec", &[&noexec]), 126);
        let mut a = args("t-workdir", &["true"]);
        a.workdir = Some("/nonexistent/dir".into());
        check(&a, 125);
        // A relative command runs from the working directory.
        let mut a = args("t-relative", &["./script"]);
        a.workdir = Some(dir.clone());
        check(&a, 9);
        // The command sees the bind mount, the hostname, the working directory.
        let script = format!(
            concat!(
                r#"test "$(cat {dst})" = inside && test "$(hostname)" = box"#,
                r#" && test "$(pwd -P)" = "{wd}""#
            ),
            dst = p("dst").display(),
            wd = dir.canonicalize().unwrap().display(),
        );
        let mut a = args("t-view", &["sh", "-c", &script]);
        a.binds = vec![
            format!("{}:{}", p("src").display(), p("dst").display())
                .parse()
                .unwrap(),
        ];
        a.hostname = Some("box".parse().unwrap());
        a.workdir = Some(dir.canonicalize().unwrap());
        a.pid_file = Some(p("pid"));
        check(&a, 0);
        let pid: i32 = std::fs::read_to_string(p("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(pid > 0);
        // A missing bind target is a setup failure; the command does not run.
        let mut a = args(
            "t-bind",
            &["sh", "-c", &format!("touch {}", p("ran").display())],
        );
        a.binds = vec![
            format!("{}:{}", p("src").display(), p("nodst").display())
                .parse()
                .unwrap(),
        ];
        check(&a, 125);
        assert!(!p("ran").exists());
    }

    #[test]
    fn sigterm_to_the_shim_reaches_the_command() {
        if !is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let child = spawn_child(
            "child_sigterm",
            &[("NL_T_DIR", t.path().to_string_lossy().into_owned())],
        );
        let pid_file = t.path().join("pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pid_file.exists() {
            assert!(Instant::now() < deadline, "the command never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let shim = Pid::from_raw(child.child.id() as i32);
        kill(shim, Signal::SIGTERM).unwrap();
        child.finish();
        assert_eq!(
            std::fs::read_to_string(t.path().join("exit")).unwrap(),
            "143\n"
        );
    }

    #[test]
    #[ignore = "run by sigterm_to_the_shim_reaches_the_command in private namespaces"]
    fn child_sigterm() {
        if !in_child() {
            return;
        }
        let dir = PathBuf::from(var("NL_T_DIR"));
        let a = ShimArgs {
            id: "t-term".into(),
            netns: NetnsMode::Host,
            uts: UtsMode::New,
            hostname: None,
            binds: vec![],
            exit_file: dir.join("exit"),
            pid_file: Some(dir.join("pid")),
            workdir: None,
            tty: None,
            command: strings(&["sleep", "30"]),
        };
        let started = Instant::now();
        assert_eq!(
            run_code(&a, true),
            143,
            "sleep died of the forwarded SIGTERM"
        );
        assert!(started.elapsed() < Duration::from_secs(25));
    }

    #[test]
    fn leftovers_die_with_the_command() {
        if !is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        spawn_child(
            "child_leftovers",
            &[("NL_T_DIR", t.path().to_string_lossy().into_owned())],
        )
        .finish();
        for f in ["bg", "daemon"] {
            let pid = std::fs::read_to_string(t.path().join(f)).unwrap();
            let comm = std::fs::read_to_string(format!("/proc/{}/comm", pid.trim()));
            assert!(comm.map_or(true, |c| c != "sleep\n"), "{f} {pid} survived");
        }
    }

    #[test]
    #[ignore = "run by leftovers_die_with_the_command in private namespaces"]
    fn child_leftovers() {
        if !in_child() {
            return;
        }
        let dir = PathBuf::from(var("NL_T_DIR"));
        let script = format!(
            "sleep 1000 & echo $! > {bg}; setsid sleep 1000 & echo $! > {daemon}; exit 5",
            bg = dir.join("bg").display(),
            daemon = dir.join("daemon").display(),
        );
        let a = ShimArgs {
            id: "t-left".into(),
            netns: NetnsMode::Host,
            uts: UtsMode::New,
            hostname: None,
            binds: vec![],
            exit_file: dir.join("exit"),
            pid_file: None,
            workdir: None,
            tty: None,
            command: strings(&["sh", "-c", &script]),
        };
        assert_eq!(run_code(&a, true), 5);
        assert!(children_of(getpid()).is_empty(), "all reaped");
    }

    #[test]
    fn exec_enters_the_containers_namespaces() {
        if !is_root() {
            return;
        }
        let target = Target::start(&["--net", "--uts", "--mount", "--propagation", "private"]);
        let pid = target.pid().to_string();
        let t = tempfile::tempdir().unwrap();
        let mut envs = vec![
            ("NL_T_PID", pid.clone()),
            ("NL_T_DIR", t.path().to_string_lossy().into_owned()),
        ];
        for kind in ["net", "uts", "mnt"] {
            let key = match kind {
                "net" => "NL_T_NET",
                "uts" => "NL_T_UTS",
                _ => "NL_T_MNT",
            };
            envs.push((key, ns_of(&pid, kind)));
        }
        spawn_child("child_exec", &envs).finish();
        let seen = std::fs::read_to_string(t.path().join("seen")).unwrap();
        assert_eq!(seen.trim(), ns_of(&pid, "net"));
    }

    #[test]
    #[ignore = "run by exec_enters_the_containers_namespaces in private namespaces"]
    fn child_exec() {
        if !in_child() {
            return;
        }
        let dir = PathBuf::from(var("NL_T_DIR"));
        let gone = ExecArgs {
            pid: i32::MAX as u32,
            workdir: None,
            command: strings(&["true"]),
        };
        assert_eq!(exec_code(&gone), EXIT_SETUP_FAILED);
        let a = ExecArgs {
            pid: var("NL_T_PID").parse().unwrap(),
            workdir: None,
            command: strings(&[
                "sh",
                "-c",
                &format!(
                    "readlink /proc/self/ns/net > {} && test \"$(pwd)\" = / && exit 7",
                    dir.join("seen").display()
                ),
            ]),
        };
        assert_eq!(exec_code(&a), 7);
        assert_eq!(ns_of("thread-self", "net"), var("NL_T_NET"));
        assert_eq!(ns_of("thread-self", "uts"), var("NL_T_UTS"));
        assert_eq!(ns_of("thread-self", "mnt"), var("NL_T_MNT"));
    }
}
