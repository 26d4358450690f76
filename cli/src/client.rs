//! The Engine-API client the `netloom` commands use: the same API the docker CLI speaks.

use std::path::{Path, PathBuf};

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
    /// The HTTP exchange failed midway.
    #[error("request to the netloom daemon failed: {0}")]
    Http(#[from] hyper::Error),
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
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: self.socket.clone(),
                source,
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let conn = tokio::spawn(conn);
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
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        conn.abort();
        if status.is_client_error() || status.is_server_error() {
            let message = serde_json::from_slice::<ErrorResponse>(&bytes)
                .map(|e| e.message.trim().to_owned())
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_owned());
            return Err(ClientError::Daemon { status, message });
        }
        Ok((status, bytes))
    }

    /// Attaches to a container's terminal (`POST /containers/{id}/attach` upgraded to a raw
    /// stream): answers the stream, which carries the terminal's output (and, with `stdin`,
    /// takes its input) until the container's run ends.
    pub async fn attach(
        &self,
        id: &str,
        stdin: bool,
    ) -> Result<hyper::upgrade::Upgraded, ClientError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: self.socket.clone(),
                source,
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
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
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let bytes = resp.into_body().collect().await?.to_bytes();
            let message = serde_json::from_slice::<ErrorResponse>(&bytes)
                .map(|e| e.message.trim().to_owned())
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_owned());
            return Err(ClientError::Daemon { status, message });
        }
        Ok(hyper::upgrade::on(resp).await?)
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
