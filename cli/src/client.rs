//! The Engine-API client the `netloom` commands use: the same API the docker CLI speaks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::MAX_API_VERSION;
use crate::api::types::ErrorResponse;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers on the socket.
    #[error(
        "Cannot connect to the netloom daemon at unix://{path}. Is the netloom daemon running?"
    )]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The connection ended before the daemon's answer was complete: the daemon was killed,
    /// crashed or restarted mid-request. Whether the request took effect is unknown.
    #[error(
        "the netloom daemon at unix://{path} closed the connection before answering (the request may or may not have taken effect). Is the netloom daemon still running? Check its log, then retry"
    )]
    Closed {
        /// The socket.
        path: PathBuf,
        /// What the HTTP layer saw, when it saw an error (a connection can also just end).
        #[source]
        source: Option<hyper::Error>,
    },
    /// The daemon process exited while the connection stayed open (another process still
    /// holds the daemon's end of it), so no answer can come.
    #[error(
        "the netloom daemon at unix://{path} (pid {pid}) exited before answering (the request may or may not have taken effect). Restart the netloom daemon, then retry"
    )]
    Gone {
        /// The socket.
        path: PathBuf,
        /// The daemon's process id, as the kernel reported it for the socket.
        pid: i32,
    },
    /// The HTTP exchange failed midway.
    #[error("request to the netloom daemon failed: {0}")]
    Http(#[source] hyper::Error),
    /// The daemon answered with an error.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// HTTP status.
        status: StatusCode,
        /// The daemon's message.
        message: String,
    },
    /// The daemon's answer did not decode.
    #[error("cannot decode the daemon's answer: {0}")]
    Decode(#[from] serde_json::Error),
}

impl ClientError {
    /// Whether the daemon said "not found" (404), which `rm -f` ignores.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Daemon { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

/// How often a waiting request checks that the daemon process is still alive.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// How long an answer may still arrive once the daemon process is gone (what it wrote before
/// exiting is still readable) or once the connection ended.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// Whether a hyper error means the connection ended under the request (rather than, say, an
/// answer that is not HTTP).
fn connection_ended(e: &hyper::Error) -> bool {
    use std::io::ErrorKind;
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            );
        }
        source = cause.source();
    }
    false
}

/// The process that listens on the daemon socket, as the kernel names it (`SO_PEERCRED`), with
/// its start time so a recycled pid is not mistaken for it.
#[derive(Debug)]
struct Peer {
    pid: i32,
    start: u64,
}

impl Peer {
    /// The peer of `stream`; `None` when the kernel cannot name it in this pid namespace.
    fn of(stream: &tokio::net::UnixStream) -> Option<Peer> {
        let pid = stream.peer_cred().ok()?.pid().filter(|p| *p > 0)?;
        let start = live_start_time(pid)?;
        Some(Peer { pid, start })
    }

    /// Resolves once the process has exited (or is a zombie, whose descriptors are closed).
    async fn exited(&self) {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            if live_start_time(self.pid) != Some(self.start) {
                return;
            }
        }
    }
}

/// The start time (field 22 of `/proc/PID/stat`) of a process that has not exited.
fn live_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; the fields after it do not.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// A client bound to one daemon socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters stay).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for the daemon listening on `socket`.
    pub fn new(socket: &Path) -> Self {
        Client {
            socket: socket.to_owned(),
        }
    }

    /// Sends one request; answers the status and body, or the daemon's error.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/v{MAX_API_VERSION}{path}"))
            .header(HOST, "api.moby.localhost")
            .header("User-Agent", concat!("netloom/", env!("CARGO_PKG_VERSION")));
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("request parts are valid");
        let (status, bytes) = self.exchange(req).await?;
        if status.is_client_error() || status.is_server_error() {
            let message = serde_json::from_slice::<ErrorResponse>(&bytes)
                .map(|e| e.message.trim().to_owned())
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_owned());
            return Err(ClientError::Daemon { status, message });
        }
        Ok((status, bytes))
    }

    /// Connects, sends `req` and reads the whole answer. The connection is driven here rather
    /// than in a detached task, so its end is seen: when it ends, or when the daemon process
    /// exits while another process keeps its end of the socket open, the request fails instead
    /// of waiting for an answer that cannot come.
    async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let stream = self.connect().await?;
        let peer = Peer::of(&stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http_error(e))?;
        let answer = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, bytes))
        };
        let exchange = async {
            let (mut answer, mut conn) = (std::pin::pin!(answer), std::pin::pin!(conn));
            let ended = tokio::select! {
                biased;
                r = &mut answer => return r.map_err(|e| self.http_error(e)),
                r = &mut conn => r.err(),
            };
            // hyper fails a request whose connection has gone; bound the wait all the same.
            match tokio::time::timeout(LAST_WORDS, answer).await {
                Ok(r) => r.map_err(|e| self.http_error(e)),
                Err(_) => Err(ClientError::Closed {
                    path: self.socket.clone(),
                    source: ended,
                }),
            }
        };
        let mut exchange = std::pin::pin!(exchange);
        let Some(peer) = peer else {
            return exchange.await;
        };
        tokio::select! {
            r = &mut exchange => r,
            () = peer.exited() => tokio::time::timeout(LAST_WORDS, exchange)
                .await
                .unwrap_or_else(|_| Err(ClientError::Gone {
                    path: self.socket.clone(),
                    pid: peer.pid,
                })),
        }
    }

    async fn connect(&self) -> Result<tokio::net::UnixStream, ClientError> {
        tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: self.socket.clone(),
                source,
            })
    }

    /// A hyper error as [`ClientError::Closed`] when the connection ended under the request.
    fn http_error(&self, e: hyper::Error) -> ClientError {
        if connection_ended(&e) {
            ClientError::Closed {
                path: self.socket.clone(),
                source: Some(e),
            }
        } else {
            ClientError::Http(e)
        }
    }

    /// Attaches to a container's terminal (`POST /containers/{id}/attach` upgraded to a raw
    /// stream): answers the stream, which carries the terminal's output (and, with `stdin`,
    /// takes its input) until the container's run ends.
    pub async fn attach(
        &self,
        id: &str,
        stdin: bool,
    ) -> Result<hyper::upgrade::Upgraded, ClientError> {
        let stream = self.connect().await?;
        let peer = Peer::of(&stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http_error(e))?;
        // The upgraded stream needs the connection task to outlive this call.
        tokio::spawn(conn.with_upgrades());
        let stdin = if stdin { 1 } else { 0 };
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!(
                "/v{MAX_API_VERSION}/containers/{}/attach?stream=1&stdin={stdin}&stdout=1&stderr=1",
                escape(id)
            ))
            .header(HOST, "api.moby.localhost")
            .header("User-Agent", concat!("netloom/", env!("CARGO_PKG_VERSION")))
            .header(hyper::header::CONNECTION, "Upgrade")
            .header(hyper::header::UPGRADE, "tcp")
            .body(Full::new(Bytes::new()))
            .expect("request parts are valid");
        let answer = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            if status != StatusCode::SWITCHING_PROTOCOLS {
                let bytes = resp.into_body().collect().await?.to_bytes();
                return Ok(Err((status, bytes)));
            }
            hyper::upgrade::on(resp).await.map(Ok)
        };
        let mut answer = std::pin::pin!(answer);
        let answer = match &peer {
            None => answer.await,
            Some(peer) => tokio::select! {
                r = &mut answer => r,
                () = peer.exited() => match tokio::time::timeout(LAST_WORDS, answer).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(ClientError::Gone {
                            path: self.socket.clone(),
                            pid: peer.pid,
                        });
                    }
                },
            },
        };
        match answer.map_err(|e| self.http_error(e))? {
            Ok(upgraded) => Ok(upgraded),
            Err((status, bytes)) => {
                let message = serde_json::from_slice::<ErrorResponse>(&bytes)
                    .map(|e| e.message.trim().to_owned())
                    .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_owned());
                Err(ClientError::Daemon { status, message })
            }
        }
    }

    /// GET and decode.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (_, body) = self.request(Method::GET, path, None).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// GET the raw JSON bytes (inspect shows the daemon's bytes as they are).
    pub async fn get_raw(&self, path: &str) -> Result<Bytes, ClientError> {
        Ok(self.request(Method::GET, path, None).await?.1)
    }

    /// POST a JSON body and decode the answer (an empty answer decodes as `null`).
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let (_, bytes) = self
            .request(Method::POST, path, Some(serde_json::to_vec(body)?))
            .await?;
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"null")
        } else {
            bytes
        };
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.request(Method::DELETE, path, None).await.map(|_| ())
    }
}
