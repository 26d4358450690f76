//! TAP devices: the switch's ports.
//!
//! For every container endpoint the daemon creates a TAP device *inside the container's network
//! namespace* (named `eth0`, `eth1`, ...), keeps the TAP's file descriptor, and switches the
//! frames it reads from one TAP into the others. The container sees an ordinary Ethernet
//! interface; the daemon sees one descriptor per port.
//!
//! # What a TAP looks like to the switch
//!
//! - Opened with `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`: every read returns one Ethernet frame
//!   behind a 12-byte virtio-net header ([`VnetHeader`](crate::VnetHeader), layout in
//!   [`crate::vnet`]), and every write must carry one. No packet-information prefix.
//! - Offloads `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`: the container's kernel may hand the switch
//!   TCP super-frames of up to 64 KiB (`gso_type` TCPV4/TCPV6) and frames whose transport
//!   checksum is only partial (`flags & NEEDS_CSUM`). Forwarding such a frame to another TAP
//!   with its header unchanged is correct: the receiving kernel finishes the work. Anything that
//!   terminates the frame in userspace (the gateway, smoltcp) must complete the checksum and
//!   segment first, or refuse it. TSO is only granted together with CSUM (the kernel requires it).
//! - Frames the switch writes are validated by the kernel against their header; a zero header
//!   ([`VnetHeader::NONE`](crate::VnetHeader::NONE)) means "a complete, ordinary frame".
//! - Buffers: a read needs room for [`MAX_READ_LEN`](crate::MAX_READ_LEN) bytes (header + the
//!   largest frame; see [`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN)). The kernel truncates a frame
//!   that does not fit *without an error* (the read returns the buffer's length), and drops the
//!   frame with `EINVAL` if the buffer cannot even hold the header.
//!
//! # Namespaces
//!
//! A TAP is created in the network namespace of the thread that opens `/dev/net/tun`.
//! [`Tap::create`] uses the calling thread's namespace; [`Tap::create_in_netns`] and
//! [`Tap::attach_existing`] run on a fresh thread that has entered the target namespace
//! ([`in_netns`]), so no tokio worker ever changes namespace. All of them block briefly; call
//! them from `spawn_blocking`, not from an async task.
//!
//! An open TAP descriptor holds a reference on the namespace it was created in: while the daemon
//! keeps the descriptor, the container's namespace (and its `eth0`) stays alive even after every
//! process in it has exited and its `/var/run/netns` mount is gone. Closing the descriptor of a
//! non-persistent TAP deletes the device; a persistent TAP stays (with no carrier) until it is
//! made non-persistent and closed, deleted with `ip link del`, or its namespace is destroyed.
//!
//! # Restart
//!
//! With `persist`, the device outlives the daemon. A restarted daemon gets its ports back with
//! [`Tap::attach_existing`] (a `TUNSETIFF` without `IFF_TUN_EXCL` on the same name attaches to
//! the existing device), which fails with [`TapError::NotFound`] rather than creating a new,
//! empty device when the old one is gone. [`Tap::create`] does set `IFF_TUN_EXCL`, so it never
//! silently takes over a device that already exists.
//!
//! # Hot path
//!
//! [`AsyncTap`] registers the descriptor (already `O_NONBLOCK`) with tokio for readability.
//! Reading: `readable().await`, then call [`AsyncTap::try_read`] until it returns `WouldBlock`,
//! handling each frame, then await again. Writing: [`AsyncTap::try_write`] is one `write(2)`
//! that never waits; `WouldBlock` means the kernel would not take the frame now, and the caller
//! counts a drop instead of waiting. [`IoFailure::of`] sorts errors into what the switch should
//! do about them: `WouldBlock` (end of batch / drop), `Down` (the container set its interface
//! down: drop), `Rejected` (a frame the kernel refused: drop), `Gone` (the device was deleted:
//! remove the port).
//!
//! # Why not a crate
//!
//! `tun-tap` (vorner) and `tun` (meh/rust-tun) cannot set `IFF_VNET_HDR` or `TUNSETOFFLOAD`, so
//! every frame would be segmented and checksummed by the container's kernel, at MTU size.
//! `tokio-tun` has no virtio-net header either. `tun-rs` (maintained, 2.x) does use
//! `IFF_VNET_HDR` and `TUNSETOFFLOAD` and can set persist, but its offload support is built for
//! layer-3 TUN devices in a VPN: it fixes the header at 10 bytes, splits super-frames and
//! coalesces them (GRO) in userspace, and also configures addresses through ioctls and pulls in
//! further dependencies; a switch wants the opposite (pass headers through untouched, create the
//! device in another namespace, re-attach by name). What netloom needs is about ten ioctls, so
//! they live in `sys.rs`, the one place with `unsafe`, each call documented.

mod netns;
mod sys;
#[cfg(test)]
mod tests;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use libc::{c_int, c_short};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

pub use netns::{in_netns, in_netns_fd};

use crate::vnet::VNET_HDR_LEN;

/// The offloads netloom asks for: partial checksums, and TCP segmentation for IPv4 and IPv6.
const OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

/// How to create or attach a TAP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name inside the namespace, e.g. `eth0`: at most 15 bytes, no `/`, `:`, `%` or
    /// whitespace, not `.` or `..`.
    pub name: String,
    /// Prefix every frame with the 12-byte virtio-net header (`IFF_VNET_HDR`).
    pub vnet_hdr: bool,
    /// Accept partial checksums and TCP super-frames (`TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`).
    /// Requires `vnet_hdr`: without a header there is no way to tell such frames apart.
    pub offloads: bool,
    /// Keep the device when the descriptor is closed (`TUNSETPERSIST`), so a restarted daemon
    /// can re-attach. Applied last, so a failed create never leaves a persistent device behind.
    pub persist: bool,
}

impl TapConfig {
    /// netloom's port settings for `name`: virtio-net header and offloads on, not persistent.
    pub fn new(name: impl Into<String>) -> TapConfig {
        TapConfig {
            name: name.into(),
            vnet_hdr: true,
            offloads: true,
            persist: false,
        }
    }

    /// The same config with `persist` set.
    pub fn persistent(mut self, persist: bool) -> TapConfig {
        self.persist = persist;
        self
    }
}

/// Why a TAP operation failed. Every variant names the operation; the OS error, where there is
/// one, is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The interface name is one the kernel would refuse (or would treat as a template).
    #[error(
        "invalid interface name {name:?}: {reason} (use 1 to 15 bytes without '/', ':', '%' or whitespace)"
    )]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `offloads` was requested without `vnet_hdr`.
    #[error(
        "TAP {name}: offloads need the virtio-net header (enable vnet_hdr, or turn offloads off)"
    )]
    OffloadsNeedVnetHdr {
        /// The TAP's name.
        name: String,
    },
    /// Opening the clone device failed.
    #[error(
        "cannot open {} (is the tun module loaded (modprobe tun), does the device node exist, and is the daemon root or does it have CAP_NET_ADMIN?)",
        sys::TUN_DEVICE
    )]
    OpenTun {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `TUNSETIFF` failed while creating a new TAP.
    #[error(
        "cannot create TAP {name} (EPERM: the daemon needs CAP_NET_ADMIN in the namespace's owning user namespace; EINVAL: the kernel refused the name or flags)"
    )]
    Create {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Creating a TAP failed because a device with that name already exists in the namespace.
    #[error(
        "a network device named {name} already exists in the target namespace (take over a persistent TAP from an earlier run with Tap::attach_existing; anything else must be removed first)"
    )]
    AlreadyExists {
        /// The TAP's name.
        name: String,
    },
    /// `TUNSETIFF` failed while attaching to an existing persistent TAP.
    #[error(
        "cannot attach to TAP {name} (EBUSY: another process, e.g. an earlier daemon, still has it open; EINVAL: the device is not a single-queue TAP or has different flags; EPERM: not its owner and no CAP_NET_ADMIN)"
    )]
    Attach {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// There was no persistent TAP of that name to attach to. Nothing was left behind.
    #[error(
        "no persistent TAP named {name} in the target namespace (it was deleted, its namespace was recreated, or it was never made persistent): create the port again"
    )]
    NotFound {
        /// The TAP's name.
        name: String,
    },
    /// `TUNSETVNETHDRSZ` failed.
    #[error("cannot set the virtio-net header size of TAP {name} to {VNET_HDR_LEN} bytes")]
    SetVnetHdrSize {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `TUNSETVNETLE` failed.
    #[error("cannot make the virtio-net header of TAP {name} little-endian")]
    SetVnetLe {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `TUNSETOFFLOAD` failed.
    #[error(
        "cannot set the checksum/TSO offloads of TAP {name} (turn offloads off in the port config if this kernel refuses them)"
    )]
    SetOffload {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `TUNSETPERSIST` failed.
    #[error("cannot change whether TAP {name} persists")]
    SetPersist {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `TUNSETSNDBUF` failed.
    #[error(
        "cannot set the send buffer of TAP {name} (it must be between 1 and {} bytes)",
        c_int::MAX
    )]
    SetSndbuf {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `TUNGETIFF` failed; `EBADFD` means the device has been deleted.
    #[error("cannot read the flags of TAP {name} (EBADFD: the device was deleted)")]
    GetIff {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Looking up the interface index failed.
    #[error("cannot find the interface index of TAP {name}")]
    Ifindex {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Registering the descriptor with the tokio reactor failed.
    #[error("cannot register TAP {name} with the async runtime")]
    Register {
        /// The TAP's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The namespace file could not be opened.
    #[error(
        "cannot open network namespace {} (has the container stopped, or its namespace mount been removed?)",
        path.display()
    )]
    OpenNetns {
        /// The path given.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `setns(2)` into the namespace failed.
    #[error(
        "cannot enter network namespace {netns} (EINVAL: not a network namespace file; EPERM: the daemon needs CAP_SYS_ADMIN)"
    )]
    EnterNetns {
        /// The path, or `<descriptor>`.
        netns: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The helper thread that enters the namespace could not be started.
    #[error("cannot start a thread to enter the network namespace")]
    SpawnThread {
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// What the switch should make of a failed read or write on a TAP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoFailure {
    /// `EAGAIN`. Read: no more frames now; await readability. Write: the kernel would not take
    /// the frame without waiting (only possible with a send buffer set, see
    /// [`Tap::set_sndbuf`]); count a drop.
    WouldBlock,
    /// `EIO` on a write: the interface is administratively down (it starts down, and the
    /// container may set it down at any time). Count a drop; the port stays, and works again
    /// once the interface is up.
    Down,
    /// `EBADFD`: the device has been deleted (`ip link del` by root in the container, or by
    /// anyone else in its namespace). The descriptor will never work again: remove the port
    /// and close it. (The namespace itself cannot go away under an open descriptor; see the
    /// module docs.)
    Gone,
    /// `EINVAL` (or `EFAULT`, `EMSGSIZE`). Write: the kernel refused this frame (shorter than
    /// the header plus an Ethernet header, or a virtio-net header that does not fit the frame);
    /// count a drop, the port is fine. Read: the buffer was shorter than the virtio-net header,
    /// and the kernel dropped the frame.
    Rejected,
    /// Anything else; report it with its error.
    Other,
}

impl IoFailure {
    /// Classifies an error returned by a TAP read or write.
    pub fn of(err: &io::Error) -> IoFailure {
        if err.kind() == io::ErrorKind::WouldBlock {
            return IoFailure::WouldBlock;
        }
        match err.raw_os_error() {
            Some(libc::EIO) => IoFailure::Down,
            Some(libc::EBADFD) => IoFailure::Gone,
            Some(libc::EINVAL | libc::EFAULT | libc::EMSGSIZE) => IoFailure::Rejected,
            _ => IoFailure::Other,
        }
    }
}

/// The `IFF_*` flags `TUNGETIFF` reports for a TAP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapFlags(u16);

impl TapFlags {
    /// The raw bits.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// `IFF_TAP`: an Ethernet (layer-2) device.
    pub fn tap(self) -> bool {
        self.has(libc::IFF_TAP)
    }

    /// `IFF_NO_PI`: no packet-information prefix.
    pub fn no_pi(self) -> bool {
        self.has(libc::IFF_NO_PI)
    }

    /// `IFF_VNET_HDR`: frames carry a virtio-net header.
    pub fn vnet_hdr(self) -> bool {
        self.has(libc::IFF_VNET_HDR)
    }

    /// `IFF_PERSIST`: the device outlives its descriptors.
    pub fn persist(self) -> bool {
        self.has(libc::IFF_PERSIST)
    }

    /// `IFF_MULTI_QUEUE` (netloom never sets it).
    pub fn multi_queue(self) -> bool {
        self.has(libc::IFF_MULTI_QUEUE)
    }

    fn has(self, flag: c_int) -> bool {
        // The IFF_* tun flags all fit in the 16-bit `ifr_flags`.
        u32::from(self.0) & flag as u32 != 0
    }
}

/// What `TUNGETIFF` reports about the device behind a descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapInfo {
    /// The interface name now (the container may rename its interface).
    pub name: String,
    /// The device's flags.
    pub flags: TapFlags,
}

/// What a port knows about itself, shared by [`Tap`] and [`AsyncTap`].
#[derive(Clone, Debug)]
struct Ident {
    name: String,
    ifindex: u32,
    vnet_hdr: bool,
}

/// An open TAP device: one descriptor attached to one device in some network namespace.
///
/// Dropping it closes the descriptor, which deletes the device unless it is persistent.
#[derive(Debug)]
pub struct Tap {
    fd: sys::TunFd,
    ident: Ident,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Create,
    Attach,
}

impl Tap {
    /// Creates a new TAP in the calling thread's network namespace. Fails with
    /// [`TapError::AlreadyExists`] if a device of that name exists there.
    pub fn create(config: &TapConfig) -> Result<Tap, TapError> {
        Tap::open(config, Mode::Create)
    }

    /// Creates a new TAP inside the network namespace at `netns`; see [`in_netns`]. For a
    /// namespace held as a descriptor, use `in_netns_fd(fd, || Tap::create(config))`.
    pub fn create_in_netns(netns: &Path, config: &TapConfig) -> Result<Tap, TapError> {
        in_netns(netns, || Tap::create(config))?
    }

    /// Attaches to an existing persistent TAP named `config.name` in the calling thread's
    /// network namespace, and applies `config` to it (header, offloads, and `persist`: pass
    /// `persist: false` to have the device deleted when this descriptor closes).
    pub fn attach(config: &TapConfig) -> Result<Tap, TapError> {
        Tap::open(config, Mode::Attach)
    }

    /// Re-attaches to the persistent TAP `config.name` in the namespace at `netns`, e.g. after
    /// a daemon restart; see [`Tap::attach`].
    pub fn attach_existing(netns: &Path, config: &TapConfig) -> Result<Tap, TapError> {
        in_netns(netns, || Tap::attach(config))?
    }

    fn open(config: &TapConfig, mode: Mode) -> Result<Tap, TapError> {
        let name = validate_name(&config.name)?;
        let err_name = || config.name.clone();
        if config.offloads && !config.vnet_hdr {
            return Err(TapError::OffloadsNeedVnetHdr { name: err_name() });
        }
        if mode == Mode::Attach
            && sys::if_nametoindex(&name).is_err_and(|e| e.raw_os_error() == Some(libc::ENODEV))
        {
            // Saves creating (and at once deleting) a device the container could see; the
            // check after TUNSETIFF below is what makes this race-free.
            return Err(TapError::NotFound { name: err_name() });
        }
        let fd = sys::TunFd::open().map_err(|source| TapError::OpenTun { source })?;

        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
        if config.vnet_hdr {
            flags |= libc::IFF_VNET_HDR;
        }
        if mode == Mode::Create {
            flags |= libc::IFF_TUN_EXCL;
        }
        // The flags are 16-bit in `ifr_flags`; IFF_TUN_EXCL (0x8000) is the sign bit.
        if let Err(source) = fd.set_iff(&name, flags as u16 as c_short) {
            return Err(match (mode, source.raw_os_error()) {
                (Mode::Create, Some(libc::EBUSY)) => TapError::AlreadyExists { name: err_name() },
                (Mode::Create, _) => TapError::Create {
                    name: err_name(),
                    source,
                },
                (Mode::Attach, _) => TapError::Attach {
                    name: err_name(),
                    source,
                },
            });
        }
        if mode == Mode::Attach {
            // Without IFF_TUN_EXCL, TUNSETIFF creates the device if it does not exist. A device
            // that existed with no descriptor attached must be persistent, so a non-persistent
            // one is the fresh device we just made: closing `fd` (on return) deletes it again.
            let (_, got) = fd.get_iff().map_err(|source| TapError::GetIff {
                name: err_name(),
                source,
            })?;
            if !TapFlags(got as u16).persist() {
                return Err(TapError::NotFound { name: err_name() });
            }
        }
        if config.vnet_hdr {
            fd.set_vnet_hdr_sz(VNET_HDR_LEN as c_int)
                .map_err(|source| TapError::SetVnetHdrSize {
                    name: err_name(),
                    source,
                })?;
            fd.set_vnet_le(true).map_err(|source| TapError::SetVnetLe {
                name: err_name(),
                source,
            })?;
        }
        // Always set, so attaching with offloads off clears what an earlier run enabled.
        let offloads = if config.offloads { OFFLOADS } else { 0 };
        fd.set_offload(offloads)
            .map_err(|source| TapError::SetOffload {
                name: err_name(),
                source,
            })?;
        let ifindex = sys::if_nametoindex(&name).map_err(|source| TapError::Ifindex {
            name: err_name(),
            source,
        })?;
        // Last: until here, a failure closes `fd` and a new device disappears with it.
        if config.persist || mode == Mode::Attach {
            fd.set_persist(config.persist)
                .map_err(|source| TapError::SetPersist {
                    name: err_name(),
                    source,
                })?;
        }
        Ok(Tap {
            fd,
            ident: Ident {
                name: config.name.clone(),
                ifindex,
                vnet_hdr: config.vnet_hdr,
            },
        })
    }

    /// The interface name the TAP was created or attached with.
    pub fn name(&self) -> &str {
        &self.ident.name
    }

    /// The interface index inside the TAP's namespace (stable for the device's lifetime).
    pub fn ifindex(&self) -> u32 {
        self.ident.ifindex
    }

    /// Whether frames carry the [`VNET_HDR_LEN`]-byte virtio-net header.
    pub fn vnet_hdr(&self) -> bool {
        self.ident.vnet_hdr
    }

    /// Makes the device persistent (it survives this descriptor) or not (it is deleted when
    /// the last descriptor closes).
    pub fn set_persist(&self, persist: bool) -> Result<(), TapError> {
        set_persist(&self.fd, &self.ident, persist)
    }

    /// Limits the bytes of written frames the kernel holds before a write returns
    /// `WouldBlock` (`TUNSETSNDBUF`; the default is unlimited). `bytes` must be at least 1.
    pub fn set_sndbuf(&self, bytes: u32) -> Result<(), TapError> {
        let err = |source| TapError::SetSndbuf {
            name: self.ident.name.clone(),
            source,
        };
        let bytes = c_int::try_from(bytes)
            .ok()
            .filter(|&b| b > 0)
            .ok_or_else(|| err(io::Error::from_raw_os_error(libc::EINVAL)))?;
        self.fd.set_sndbuf(bytes).map_err(err)
    }

    /// Reads the device's name and flags back from the kernel (`TUNGETIFF`).
    pub fn info(&self) -> Result<TapInfo, TapError> {
        info(&self.fd, &self.ident)
    }

    /// One non-blocking read: one frame (behind its header), or `WouldBlock`. `buf` must be
    /// at least [`MAX_READ_LEN`](crate::MAX_READ_LEN) bytes; see [`AsyncTap::try_read`].
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }

    /// One non-blocking write of one frame (behind its header); never waits.
    pub fn try_write(&self, frame: &[u8]) -> io::Result<usize> {
        self.fd.write(frame)
    }

    /// Registers the TAP with the current tokio runtime (panics outside one). On failure the
    /// descriptor is closed.
    pub fn into_async(self) -> Result<AsyncTap, TapError> {
        AsyncTap::new(self)
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A [`Tap`] registered with tokio: the switch's view of a port.
#[derive(Debug)]
pub struct AsyncTap {
    io: AsyncFd<sys::TunFd>,
    ident: Ident,
}

impl AsyncTap {
    /// Registers `tap` with the current tokio runtime for readability (panics outside one).
    pub fn new(tap: Tap) -> Result<AsyncTap, TapError> {
        let Tap { fd, ident } = tap;
        match sys::register(fd) {
            Ok(io) => Ok(AsyncTap { io, ident }),
            Err(source) => Err(TapError::Register {
                name: ident.name,
                source,
            }),
        }
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.ident.name
    }

    /// The interface index inside the TAP's namespace.
    pub fn ifindex(&self) -> u32 {
        self.ident.ifindex
    }

    /// Whether frames carry the virtio-net header.
    pub fn vnet_hdr(&self) -> bool {
        self.ident.vnet_hdr
    }

    /// Waits until a frame may be readable, or the device is gone. Then call
    /// [`try_read`](Self::try_read) until it returns `WouldBlock`. Once the device is gone this
    /// returns at once every time and `try_read` fails with `EBADFD` ([`IoFailure::Gone`]):
    /// remove the port rather than looping.
    ///
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn readable(&self) -> io::Result<()> {
        // ERROR too: a deleted device polls as EPOLLERR only, which would never wake a
        // READABLE-only waiter, and the port would hang instead of reporting `Gone`.
        let mut guard = self.io.ready(Interest::READABLE | Interest::ERROR).await?;
        guard.retain_ready();
        Ok(())
    }

    /// Reads one frame (behind its header) into `buf`, which must be at least
    /// [`MAX_READ_LEN`](crate::MAX_READ_LEN) bytes: a frame that does not fit is truncated to
    /// `buf.len()` without an error. `WouldBlock` means no more frames for now (and clears tokio's readiness, so the next
    /// [`readable`](Self::readable) waits); see [`IoFailure`] for the other errors.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.io.try_io(Interest::READABLE, |fd| fd.read(buf)) {
            // Not readable: if the device reported an error, the read surfaces it (EBADFD).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.io.try_io(Interest::ERROR, |fd| fd.read(buf))
            }
            other => other,
        }
    }

    /// Reads one frame like [`try_read`](Self::try_read), but whatever tokio thinks of the
    /// descriptor's readability, and without clearing it: for busy polling, which reads before
    /// the runtime has seen the kernel's readiness event. A stale readiness left behind only
    /// makes the next [`readable`](Self::readable) return at once, and `try_read` then clears it.
    pub fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.get_ref().read(buf)
    }

    /// Writes one frame (behind its header) with one `write(2)`; never waits, whatever tokio
    /// thinks of the descriptor's writability. `WouldBlock` means the kernel would not take the
    /// frame now: count it as dropped. See [`IoFailure`] for the other errors.
    pub fn try_write(&self, frame: &[u8]) -> io::Result<usize> {
        self.io.get_ref().write(frame)
    }

    /// Makes the device persistent or not; see [`Tap::set_persist`].
    pub fn set_persist(&self, persist: bool) -> Result<(), TapError> {
        set_persist(self.io.get_ref(), &self.ident, persist)
    }

    /// Reads the device's name and flags back from the kernel; see [`Tap::info`].
    pub fn info(&self) -> Result<TapInfo, TapError> {
        info(self.io.get_ref(), &self.ident)
    }

    /// Deregisters from tokio and returns the plain [`Tap`].
    pub fn into_inner(self) -> Tap {
        Tap {
            fd: self.io.into_inner(),
            ident: self.ident,
        }
    }
}

fn set_persist(fd: &sys::TunFd, ident: &Ident, persist: bool) -> Result<(), TapError> {
    fd.set_persist(persist)
        .map_err(|source| TapError::SetPersist {
            name: ident.name.clone(),
            source,
        })
}

fn info(fd: &sys::TunFd, ident: &Ident) -> Result<TapInfo, TapError> {
    let (name, flags) = fd.get_iff().map_err(|source| TapError::GetIff {
        name: ident.name.clone(),
        source,
    })?;
    Ok(TapInfo {
        name,
        flags: TapFlags(flags as u16),
    })
}

/// Checks `name` the way the kernel's `dev_valid_name` does, and also refuses `%`, which would
/// make the kernel pick a name from a template instead of using this one.
fn validate_name(name: &str) -> Result<CString, TapError> {
    let invalid = |reason| {
        Err(TapError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() >= libc::IFNAMSIZ {
        return invalid("longer than 15 bytes (IFNAMSIZ)");
    }
    if name == "." || name == ".." {
        return invalid("reserved");
    }
    if name
        .bytes()
        .any(|b| matches!(b, b'/' | b':' | b'%' | 0) || b.is_ascii_whitespace() || b == 0x0b)
    {
        return invalid("contains '/', ':', '%', NUL or whitespace");
    }
    match CString::new(name) {
        Ok(c) => Ok(c),
        Err(_) => invalid("contains NUL"),
    }
}
