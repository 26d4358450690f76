//! The client side of `netloom run -t` / `run -it`: the local terminal in raw mode, and the
//! pump between the local stdio and an attachment to the container's terminal.

use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;

use hyper_util::rt::TokioIo;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Ctrl-P: the first key of the detach sequence.
const CTRL_P: u8 = 0x10;
/// Ctrl-Q: the second key of the detach sequence.
const CTRL_Q: u8 = 0x11;

/// Watches the input for the detach keys, Ctrl-P Ctrl-Q (docker's default).
#[derive(Debug, Default)]
pub(super) struct DetachKeys {
    /// A Ctrl-P was the last byte seen; it is held back until the next byte.
    pending: bool,
}

impl DetachKeys {
    /// Answers the bytes of `input` to forward to the container, and whether the detach
    /// sequence was typed (then what preceded it is forwarded, nothing after). A Ctrl-P not
    /// followed by Ctrl-Q is forwarded with the next byte.
    pub(super) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len() + 1);
        for &b in input {
            if self.pending {
                self.pending = false;
                if b == CTRL_Q {
                    return (out, true);
                }
                out.push(CTRL_P);
            }
            if b == CTRL_P {
                self.pending = true;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// The local terminal in raw mode (no echo, no line editing, no signals from ^C: every key
/// goes to the container's terminal); restores the saved settings when dropped.
#[derive(Debug)]
pub(super) struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin into raw mode when it is a terminal; `None` when it is not (a pipe, a file).
    pub(super) fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// The daemon closed the stream: the container's run is over.
    Exited,
    /// The user typed the detach keys; the container runs on.
    Detached,
}

/// Copies the stream's output to stdout and (with `stdin`) stdin to the stream until the
/// stream ends or the detach keys are typed. At the end of stdin the stream is half-closed
/// and the output still flows until the container's run ends.
pub(super) async fn pump(stream: hyper::upgrade::Upgraded, stdin: bool) -> std::io::Result<Ended> {
    let (mut rd, mut wr) = tokio::io::split(TokioIo::new(stream));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    if stdin {
        // A plain thread, not tokio's stdin: a read blocked on the terminal must not keep the
        // runtime (and so the process) from ending.
        std::thread::Builder::new()
            .name("netloom-stdin".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                let mut input = std::io::stdin().lock();
                loop {
                    match input.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if tx.blocking_send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            })?;
    } else {
        drop(tx);
    }
    let mut input_open = stdin;
    let mut keys = DetachKeys::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(Ended::Exited);
                }
                // The CLI's own stdout: a blocking write is fine (nothing else waits on it).
                let mut out = std::io::stdout().lock();
                out.write_all(&buf[..n])?;
                out.flush()?;
            }
            chunk = rx.recv(), if input_open => match chunk {
                Some(c) => {
                    let (forward, detach) = keys.feed(&c);
                    if !forward.is_empty() {
                        wr.write_all(&forward).await?;
                        wr.flush().await?;
                    }
                    if detach {
                        return Ok(Ended::Detached);
                    }
                }
                None => {
                    input_open = false;
                    let _ = wr.shutdown().await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        let mut k = DetachKeys::default();
        assert_eq!(k.feed(b"ls\n"), (b"ls\n".to_vec(), false));
        assert_eq!(k.feed(b"a\x10\x11b"), (b"a".to_vec(), true));
        let mut k = DetachKeys::default();
        // Split across reads.
        assert_eq!(k.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(k.feed(b"\x11"), (vec![], true));
        // A lone Ctrl-P goes through with the next byte.
        let mut k = DetachKeys::default();
        assert_eq!(k.feed(b"\x10a"), (b"\x10a".to_vec(), false));
        assert_eq!(k.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
    }
}
