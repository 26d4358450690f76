//! The raw tun/tap calls, and the only `unsafe` code in netloom.
//!
//! Everything here is a thin, typed wrapper around one system call on a `/dev/net/tun` file
//! descriptor. The rules these wrappers rely on:
//!
//! - The descriptor is owned by a [`std::fs::File`] inside [`TunFd`]; the field is private to
//!   this module and nothing here replaces it, so `as_raw_fd()` names the same open file
//!   description for as long as a `TunFd` lives. Every `ioctl` below therefore runs on a valid
//!   descriptor that stays open for the whole call.
//! - Each ioctl passes the argument type the kernel's `tun.c` expects for that request: a pointer
//!   to a `struct ifreq` (`TUNSETIFF`, `TUNGETIFF`), a pointer to an `int` (`TUNSETVNETHDRSZ`,
//!   `TUNGETVNETHDRSZ`, `TUNSETVNETLE`, `TUNSETSNDBUF`, `TUNGETSNDBUF`), or a plain value
//!   (`TUNSETOFFLOAD`, `TUNSETPERSIST`, which the kernel reads from the `unsigned long` argument
//!   itself and never dereferences). Request numbers come from `libc`, which encodes `_IOW`/`_IOR`
//!   for the target architecture.
//!
//! The safe layer in `tap/mod.rs` validates names and decides which calls to make; this module
//! only makes them.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use libc::{c_char, c_int, c_short, c_uint, c_ulong};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The clone device every TAP is created or attached through.
pub(super) const TUN_DEVICE: &str = "/dev/net/tun";

/// `struct ifreq` as `TUNSETIFF`/`TUNGETIFF` use it: the interface name, then the flags as the
/// first member of the union. The padding makes it at least as large as the kernel's
/// `struct ifreq` (40 bytes on 64-bit targets, 32 on 32-bit ones), because the kernel copies a
/// whole `struct ifreq` in and out; the assertion below ties that to libc's definition.
#[repr(C)]
struct IfReq {
    name: [c_char; libc::IFNAMSIZ],
    flags: c_short,
    _pad: [u8; 22],
}

const _: () = assert!(size_of::<IfReq>() >= size_of::<libc::ifreq>());

impl IfReq {
    fn zeroed() -> IfReq {
        IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        }
    }

    fn name(&self) -> String {
        // The kernel NUL-terminates the name (`strscpy`); stop at the first NUL or at the end of
        // the array, whichever comes first, so a malformed answer cannot read past it.
        let bytes: Vec<u8> = self
            .name
            .iter()
            .map(|&c| c as u8)
            .take_while(|&b| b != 0)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// An open `/dev/net/tun` descriptor (non-blocking, close-on-exec).
#[derive(Debug)]
pub(super) struct TunFd {
    file: File,
}

impl TunFd {
    /// Opens the clone device with `O_RDWR | O_NONBLOCK | O_CLOEXEC` (std always adds
    /// `O_CLOEXEC`). The TAP that a later `TUNSETIFF` creates or attaches lives in the network
    /// namespace of the thread that calls this, not of the one that calls `TUNSETIFF`.
    pub(super) fn open() -> io::Result<TunFd> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(TUN_DEVICE)?;
        Ok(TunFd { file })
    }

    /// `TUNSETIFF`: creates the TAP `name` with `flags`, or attaches to an existing persistent
    /// one of that name when `flags` lacks `IFF_TUN_EXCL`. Returns the name the kernel reports
    /// back.
    pub(super) fn set_iff(&self, name: &CStr, flags: c_short) -> io::Result<String> {
        let bytes = name.to_bytes();
        if bytes.len() >= libc::IFNAMSIZ {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut req = IfReq::zeroed();
        for (slot, &b) in req.name.iter_mut().zip(bytes) {
            *slot = b as c_char;
        }
        req.flags = flags;
        // SAFETY: `self.file` is an open descriptor (see the module docs). `req` is a live,
        // writable `IfReq` at least as large as the kernel's `struct ifreq`, its name is
        // NUL-terminated (checked length < IFNAMSIZ, rest zeroed), and TUNSETIFF reads and
        // writes exactly one `struct ifreq` through this pointer during the call only.
        let rc = unsafe { libc::ioctl(self.raw(), libc::TUNSETIFF, &mut req as *mut IfReq) };
        check(rc)?;
        Ok(req.name())
    }

    /// `TUNGETIFF`: the attached device's name and flags (`IFF_TAP`, `IFF_NO_PI`,
    /// `IFF_VNET_HDR`, `IFF_PERSIST`, ...).
    pub(super) fn get_iff(&self) -> io::Result<(String, c_short)> {
        let mut req = IfReq::zeroed();
        // SAFETY: open descriptor; `req` is a live, writable `IfReq` at least as large as the
        // kernel's `struct ifreq`, which TUNGETIFF fills during the call.
        let rc = unsafe { libc::ioctl(self.raw(), libc::TUNGETIFF, &mut req as *mut IfReq) };
        check(rc)?;
        Ok((req.name(), req.flags))
    }

    /// `TUNSETVNETHDRSZ`: the size of the virtio-net header in front of every frame.
    pub(super) fn set_vnet_hdr_sz(&self, size: c_int) -> io::Result<()> {
        // SAFETY: open descriptor; TUNSETVNETHDRSZ reads one `int` through the pointer, which
        // points at `size`, alive for the call.
        let rc = unsafe { libc::ioctl(self.raw(), libc::TUNSETVNETHDRSZ, &size as *const c_int) };
        check(rc).map(drop)
    }

    /// `TUNGETVNETHDRSZ` (tests check what the kernel kept).
    #[cfg(test)]
    pub(super) fn vnet_hdr_sz(&self) -> io::Result<c_int> {
        let mut size: c_int = 0;
        // SAFETY: open descriptor; TUNGETVNETHDRSZ writes one `int` through the pointer, which
        // points at the writable local `size`.
        let rc = unsafe { libc::ioctl(self.raw(), libc::TUNGETVNETHDRSZ, &mut size as *mut c_int) };
        check(rc)?;
        Ok(size)
    }

    /// `TUNSETVNETLE`: virtio-net header fields in little-endian whatever the host's byte order
    /// (virtio 1.x). A no-op on little-endian hosts, where legacy headers are little-endian too.
    pub(super) fn set_vnet_le(&self, on: bool) -> io::Result<()> {
        let value = c_int::from(on);
        // SAFETY: open descriptor; TUNSETVNETLE reads one `int` through the pointer, which
        // points at `value`, alive for the call.
        let rc = unsafe { libc::ioctl(self.raw(), libc::TUNSETVNETLE, &value as *const c_int) };
        check(rc).map(drop)
    }

    /// `TUNSETOFFLOAD`: which `TUN_F_*` offloads this reader accepts. The flags are the ioctl
    /// argument itself, not a pointer to them.
    pub(super) fn set_offload(&self, flags: c_uint) -> io::Result<()> {
        // SAFETY: open descriptor; the kernel takes TUNSETOFFLOAD's argument by value (it is
        // the `unsigned long arg` of the ioctl handler) and dereferences nothing.
        let rc = unsafe { libc::ioctl(self.raw(), libc::TUNSETOFFLOAD, c_ulong::from(flags)) };
        check(rc).map(drop)
    }

    /// `TUNSETPERSIST`: whether the device outlives the last descriptor attached to it. Taken by
    /// value, like `TUNSETOFFLOAD`.
    pub(super) fn set_persist(&self, on: bool) -> io::Result<()> {
        // SAFETY: open descriptor; TUNSETPERSIST's argument is a plain value (zero or not) and
        // the kernel dereferences nothing.
        let rc = unsafe { libc::ioctl(self.raw(), libc::TUNSETPERSIST, c_ulong::from(on)) };
        check(rc).map(drop)
    }

    /// `TUNSETSNDBUF`: how many bytes of frames written by us may be in flight in the kernel
    /// before a write fails with `EAGAIN`. The default is `INT_MAX`, i.e. writes never wait.
    pub(super) fn set_sndbuf(&self, bytes: c_int) -> io::Result<()> {
        // SAFETY: open descriptor; TUNSETSNDBUF reads one `int` through the pointer, which
        // points at `bytes`, alive for the call.
        let rc = unsafe { libc::ioctl(self.raw(), libc::TUNSETSNDBUF, &bytes as *const c_int) };
        check(rc).map(drop)
    }

    /// `TUNGETSNDBUF` (tests check what the kernel kept).
    #[cfg(test)]
    pub(super) fn sndbuf(&self) -> io::Result<c_int> {
        let mut bytes: c_int = 0;
        // SAFETY: open descriptor; TUNGETSNDBUF writes one `int` through the pointer, which
        // points at the writable local `bytes`.
        let rc = unsafe { libc::ioctl(self.raw(), libc::TUNGETSNDBUF, &mut bytes as *mut c_int) };
        check(rc)?;
        Ok(bytes)
    }

    /// One `read(2)`: one frame (with its virtio-net header, if enabled), or `WouldBlock`.
    pub(super) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// One `write(2)`: one frame (with its virtio-net header, if enabled), or `WouldBlock`.
    pub(super) fn write(&self, frame: &[u8]) -> io::Result<usize> {
        (&self.file).write(frame)
    }

    fn raw(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsRawFd for TunFd {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for TunFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Registers `fd` with the current tokio reactor for readability and errors.
///
/// Writes never wait for writability (the hot path drops instead), so there is no point in
/// waking the task for it. Errors matter because a deleted device polls as `EPOLLERR` only.
/// Must be called from within a tokio runtime; panics otherwise.
pub(super) fn register(fd: TunFd) -> io::Result<AsyncFd<TunFd>> {
    // SAFETY: `AsyncFd::register_with_interest` requires that `as_raw_fd()` returns the same
    // open descriptor for the whole life of the `AsyncFd`. `TunFd::as_raw_fd` returns its
    // `File`'s descriptor; that field is private to this module, `TunFd` has no `&mut self`
    // method, and nothing here swaps or closes it, so the descriptor stays open and unchanged
    // until the `AsyncFd` drops the `TunFd` (or hands it back through `into_inner`).
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::ERROR) }
        .map_err(|e| e.into_parts().1)
}

/// `if_nametoindex(3)` in the calling thread's network namespace (the lookup goes through a
/// socket, and a socket belongs to the namespace of the thread that created it).
pub(super) fn if_nametoindex(name: &CStr) -> io::Result<u32> {
    // SAFETY: `name` is a valid NUL-terminated C string that outlives the call, which only
    // reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

fn check(rc: c_int) -> io::Result<c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}
