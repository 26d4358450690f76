//! The Engine-API server: HTTP/1.1 on a Unix socket, routing, version prefix handling.
//!
//! Handlers run the engine's (blocking, fsyncing) operations on the blocking pool, so the
//! accept loop and other connections are never held up by a commit.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::api::containers::ContainerCreateBody;
use crate::api::filters::Filters;
use crate::api::types::{
    AttachRequestBody, AttachResponse, DetachRequestBody, DetachResponse, EndpointResource,
    ErrorResponse, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse,
    NetworkDisconnectRequest, NetworkPruneResponse, NetworkResource, to_go_json,
};
use crate::api::{ApiError, ApiVersion, MAX_API_VERSION};
use crate::daemon::containers::Connected;
use crate::daemon::engine::{AttachRequest, CreateNetwork, Engine, EngineError};
use crate::daemon::planes::Planes;
use crate::daemon::runtime::{Runtime, RuntimeError};
use crate::model::{ContainerRecord, Status};

/// Largest request body accepted (API bodies are small JSON documents).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most connections served at once; further clients wait in the accept backlog.
pub const MAX_CONNECTIONS: usize = 256;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A body of fixed bytes.
fn full(b: Bytes) -> Body {
    Full::new(b).boxed_unsync()
}

/// What request handlers work with: the control plane, the data plane and the runtime.
#[derive(Debug)]
pub struct App {
    /// Networks, containers, the store.
    pub engine: Arc<Engine>,
    /// Switch domains, ports, DNS snapshots.
    pub planes: Arc<Planes>,
    /// Container processes.
    pub runtime: Arc<Runtime>,
}

/// Serves the API on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: UnixListener, app: Arc<App>, shutdown: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!(error = %e, "accept on the API socket failed");
                    continue;
                }
            },
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(req, app).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                r = conn => if let Err(e) = r { debug!(error = %e, "API connection ended") },
                () = shutdown.cancelled() => {}
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    tasks.shutdown().await;
    info!("API server stopped");
}

fn with_headers(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(MAX_API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("netloom/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(to_go_json(value))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(
        e.status,
        &ErrorResponse {
            message: e.message.clone(),
        },
    )
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

async fn handle(req: Request<Incoming>, app: Arc<App>) -> Response<Body> {
    let (engine, planes) = (app.engine.clone(), app.planes.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mutating = method != Method::GET && method != Method::HEAD;
    let resp = match route(req, &app).await {
        Ok(r) => r,
        Err(e) => {
            debug!(%method, %path, status = e.status.as_u16(), message = %e.message, "request failed");
            error_response(&e)
        }
    };
    if mutating && resp.status().is_success() {
        // The change is durable; now the data plane follows it. A failure here is logged and
        // retried by the next reconcile (every change and every start runs one).
        match blocking(engine, |e| {
            Ok(e.store().snapshot().map_err(EngineError::from)?)
        })
        .await
        {
            Ok(state) => {
                if let Err(e) = planes.reconcile(&state).await {
                    warn!(error = %e, "data plane reconcile failed");
                }
            }
            Err(e) => warn!(error = %e.message, "cannot read state for the data plane"),
        }
    }
    with_headers(resp)
}

/// The endpoint settings of a connect request (`--ip`, `--alias`, `--mac-address`), from its
/// `EndpointConfig`; a malformed address is a client error. Also run by the `api_bodies` fuzz
/// target.
pub(crate) fn connect_settings(
    config: Option<&serde_json::Value>,
) -> Result<crate::model::EndpointSettings, ApiError> {
    let Some(c) = config else {
        return Ok(Default::default());
    };
    let ip = c["IPAMConfig"]["IPv4Address"].as_str().unwrap_or_default();
    let ip = crate::daemon::containers::parse_ip(ip)?;
    let mac = match c["MacAddress"].as_str().unwrap_or_default().trim() {
        "" => None,
        m => Some(
            m.parse()
                .map_err(|_| ApiError::from(EngineError::BadMac(m.to_owned())))?,
        ),
    };
    let aliases = c["Aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(crate::model::EndpointSettings { ip, mac, aliases })
}

/// `?t=N` of stop and restart (Docker's default: 10 s).
fn stop_timeout(query: Option<&str>) -> Result<std::time::Duration, ApiError> {
    match query_param(query, "t")? {
        None => Ok(std::time::Duration::from_secs(10)),
        Some(t) => t
            .parse::<u64>()
            .map(std::time::Duration::from_secs)
            .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t}"))),
    }
}

/// Splits an optional `/v1.NN` prefix off the path.
fn split_version(path: &str) -> (Option<ApiVersion>, &str) {
    let Some(rest) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    match ver.parse::<ApiVersion>() {
        Ok(v) => (Some(v), tail),
        // Not a version: an ordinary path starting with "v".
        Err(()) => (None, path),
    }
}

/// The routes this server knows (method and path shape).
fn is_route(method: &Method, segments: &[&str]) -> bool {
    matches!(
        (method, segments),
        (&Method::GET | &Method::HEAD, ["_ping"])
            | (&Method::GET, ["version" | "info" | "networks"])
            | (&Method::GET | &Method::DELETE, ["networks", _])
            | (&Method::POST, ["networks", "create" | "prune"])
            | (&Method::POST, ["networks", _, "connect" | "disconnect"])
            | (&Method::POST, ["netloom", "attach" | "detach"])
            | (&Method::GET, ["netloom", "stats"])
            | (&Method::POST, ["containers", "create"])
            | (&Method::GET, ["containers", "json"])
            | (&Method::GET, ["containers", _, "json" | "logs"])
            | (
                &Method::POST,
                [
                    "containers",
                    _,
                    "start" | "stop" | "restart" | "wait" | "attach" | "resize" | "rename"
                ]
            )
            | (&Method::DELETE, ["containers", _])
            | (&Method::POST, ["netloom", "containers", _, "exec"])
    )
}

/// Percent-decodes one path segment (the CLI escapes names it puts in paths).
fn decode_segment(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => {
                    return Err(ApiError::bad_request(format!(
                        "invalid escape in path {s:?}"
                    )));
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request(format!("path {s:?} is not UTF-8")))
}

fn query_param(query: Option<&str>, key: &str) -> Result<Option<String>, ApiError> {
    let Some(q) = query else { return Ok(None) };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            let v = v.replace('+', " ");
            return decode_segment(&v).map(Some);
        }
    }
    Ok(None)
}

async fn read_json<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
) -> Result<T, ApiError> {
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            ApiError::bad_request(format!(
                "cannot read the request body (at most {MAX_BODY_BYTES} bytes): {e}"
            ))
        })?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Runs a blocking engine call on the blocking pool.
async fn blocking<T: Send + 'static>(
    engine: Arc<Engine>,
    f: impl FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
}

/// Whether a boolean query parameter (`stdin=1`, `stdout=true`) is set.
fn query_flag(query: Option<&str>, key: &str) -> Result<bool, ApiError> {
    Ok(query_param(query, key)?.is_some_and(|v| v == "1" || v == "true"))
}

/// `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1` with `Upgrade: tcp`:
/// answers `101 Switching Protocols`, then the connection carries the container terminal's raw
/// bytes both ways (no multiplexing headers: only `Tty` containers can be attached). Output
/// flows from the moment of the attach (attach before start to see everything) until the run
/// ends, when the daemon closes the stream; input goes to the terminal while the container runs.
async fn attach(
    mut req: Request<Incoming>,
    app: &App,
    id: String,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let c = blocking(app.engine.clone(), move |e| Ok(e.container(&id)?)).await?;
    let Some(m) = c.managed() else {
        return Err(ApiError::bad_request(format!(
            "{} is an attached namespace, not a container",
            c.name
        )));
    };
    if !m.config.tty {
        return Err(ApiError {
            status: StatusCode::NOT_IMPLEMENTED,
            message: "attach needs a container created with a TTY (-t); the output of \
                      others is in `netloom logs`"
                .into(),
        });
    }
    let upgrade = req
        .headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if !upgrade {
        return Err(ApiError::bad_request(
            "attach needs the headers Connection: Upgrade and Upgrade: tcp",
        ));
    }
    let stdin = query_flag(query, "stdin")?;
    let stdout = query_flag(query, "stdout")? || query_flag(query, "stderr")?;
    let hub = app.runtime.hub(&c.id);
    // Subscribed before answering: the client starts the container only after the 101.
    let mut output = hub.subscribe();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let name = c.name.to_string();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        let input_hub = hub.clone();
        let input = tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if !stdin {
                    continue;
                }
                let data = buf[..n].to_vec();
                let h = input_hub.clone();
                match tokio::task::spawn_blocking(move || h.write_input(&data)).await {
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
        });
        loop {
            match output.recv().await {
                Ok(crate::daemon::runtime::tty::Chunk::Data(d)) => {
                    if stdout && (wr.write_all(&d).await.is_err() || wr.flush().await.is_err()) {
                        break;
                    }
                }
                Ok(crate::daemon::runtime::tty::Chunk::End) => break,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    debug!(container = %name, chunks = n, "a slow attachment lost output");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
        let _ = wr.shutdown().await;
        input.abort();
        debug!(container = %name, "attachment ended");
    });
    let mut resp = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    h.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(hyper::header::UPGRADE, HeaderValue::from_static("tcp"));
    Ok(resp)
}

async fn route(req: Request<Incoming>, app: &App) -> Result<Response<Body>, ApiError> {
    let engine = app.engine.clone();
    let planes = &*app.planes;
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let query = query.as_deref();
    let (version, path) = split_version(&path);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    // Like Docker, an unknown route is "page not found" whatever the version says.
    if !is_route(&method, &segments) {
        return Err(ApiError::not_found("page not found"));
    }
    if let Some(v) = version {
        v.check()?;
    }
    match (&method, segments.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => {
            let mut resp = if method == Method::HEAD {
                empty(StatusCode::OK)
            } else {
                Response::new(full(Bytes::from_static(b"OK")))
            };
            let h = resp.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(
                "Cache-Control",
                HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            );
            h.insert("Pragma", HeaderValue::from_static("no-cache"));
            h.insert("Swarm", HeaderValue::from_static("inactive"));
            Ok(resp)
        }
        (&Method::GET, ["version"]) => {
            Ok(json_response(StatusCode::OK, &crate::api::version_info()))
        }
        (&Method::GET, ["info"]) => {
            let info = blocking(engine, |e| Ok(crate::api::system_info(e)?)).await?;
            Ok(json_response(StatusCode::OK, &info))
        }
        (&Method::GET, ["networks"]) => {
            let filters = Filters::parse(&query_param(query, "filters")?.unwrap_or_default())?;
            let list = blocking(engine, move |e| {
                let nets = e.list_networks(&filters)?;
                Ok(nets
                    .iter()
                    .map(|n| NetworkResource::new(n, Default::default()))
                    .collect::<Vec<_>>())
            })
            .await?;
            Ok(json_response(StatusCode::OK, &list))
        }
        (&Method::POST, ["networks", "create"]) => {
            let body: NetworkCreateRequest = read_json(req).await?;
            let create = CreateNetwork::try_from(body)?;
            let n = blocking(engine, move |e| Ok(e.create_network(create)?)).await?;
            info!(network = %n.name, id = %n.id, "network created");
            let resp = NetworkCreateResponse {
                id: n.id.to_string(),
                warning: String::new(),
            };
            Ok(json_response(StatusCode::CREATED, &resp))
        }
        (&Method::POST, ["networks", "prune"]) => {
            let filters = Filters::parse(&query_param(query, "filters")?.unwrap_or_default())?;
            let removed = blocking(engine, move |e| Ok(e.prune_networks(&filters)?)).await?;
            info!(count = removed.len(), "networks pruned");
            let resp = NetworkPruneResponse {
                networks_deleted: (!removed.is_empty())
                    .then(|| removed.iter().map(ToString::to_string).collect()),
            };
            Ok(json_response(StatusCode::OK, &resp))
        }
        (&Method::GET, ["networks", id]) => {
            let id = decode_segment(id)?;
            let resource = blocking(engine, move |e| {
                let n = e.network(&id)?;
                let endpoints = e.network_endpoints(&n)?;
                let prefix = n.ipam.as_ref().map_or(32, |i| i.subnet.prefix_len());
                let containers = endpoints
                    .into_iter()
                    .map(|(c, ep)| {
                        let r = EndpointResource {
                            name: c.name.to_string(),
                            endpoint_id: ep.id.to_string(),
                            mac_address: ep.mac.to_string(),
                            ipv4_address: format!("{}/{prefix}", ep.ip),
                            ipv6_address: String::new(),
                        };
                        (c.id.to_string(), r)
                    })
                    .collect();
                Ok(NetworkResource::new(&n, containers))
            })
            .await?;
            Ok(json_response(StatusCode::OK, &resource))
        }
        (&Method::POST, ["netloom", "attach"]) => {
            let body: AttachRequestBody = read_json(req).await?;
            let netns: std::path::PathBuf = match (body.netns.is_empty(), body.pid) {
                (false, None) => body.netns.clone().into(),
                (true, Some(pid)) => format!("/proc/{pid}/ns/net").into(),
                _ => {
                    return Err(ApiError::bad_request(
                        "give exactly one of Netns (a namespace file) or Pid",
                    ));
                }
            };
            let request = AttachRequest {
                network: body.network,
                name: body.name,
                netns,
                ip: body.ipv4_address,
                mac: body.mac_address,
                aliases: body.aliases,
            };
            let a = blocking(engine.clone(), move |e| Ok(e.attach(request)?)).await?;
            let netns = a.container.netns().unwrap_or_default();
            if let Err(err) = planes.plug(&netns, &a).await {
                // Undo the record so that nothing half-done stays behind.
                let (id, net) = (a.container.id.to_string(), a.network.id.to_string());
                if let Err(undo) = blocking(engine, move |e| Ok(e.detach(&id, Some(&net))?)).await {
                    warn!(error = %undo.message, "undoing a failed attach failed");
                }
                return Err(ApiError::internal(format!(
                    "cannot plug {} into {}: {err}",
                    a.endpoint.ifname,
                    netns.display()
                )));
            }
            info!(sandbox = %a.container.name, network = %a.network.name, ip = %a.endpoint.ip, "namespace attached");
            let prefix = a
                .network
                .ipam
                .as_ref()
                .map_or(32, |i| i.subnet.prefix_len());
            let resp = AttachResponse {
                id: a.container.id.to_string(),
                name: a.container.name.to_string(),
                endpoint_id: a.endpoint.id.to_string(),
                interface: a.endpoint.ifname.clone(),
                ipv4_address: format!("{}/{prefix}", a.endpoint.ip),
                mac_address: a.endpoint.mac.to_string(),
                gateway: a
                    .network
                    .ipam
                    .as_ref()
                    .map(|i| i.gateway.to_string())
                    .unwrap_or_default(),
            };
            Ok(json_response(StatusCode::CREATED, &resp))
        }
        (&Method::POST, ["containers", "create"]) => {
            let name = query_param(query, "name")?.unwrap_or_default();
            let body: ContainerCreateBody = read_json(req).await?;
            let request = body.into_request(name)?;
            let publishes = request.publishes;
            let c = blocking(engine, move |e| Ok(e.create_container(request)?)).await?;
            info!(container = %c.name, id = %c.id.short(), "container created");
            let host_mode = c
                .managed()
                .is_some_and(|m| m.mode == crate::model::NetworkMode::Host);
            // Docker's `verifyPlatformContainerSettings` warning; the clients print it.
            let warnings: Vec<&str> = if host_mode && publishes {
                vec!["Published ports are discarded when using host network mode"]
            } else {
                Vec::new()
            };
            let resp = serde_json::json!({"Id": c.id.to_string(), "Warnings": warnings});
            Ok(json_response(StatusCode::CREATED, &resp))
        }
        (&Method::GET, ["containers", "json"]) => {
            let all = query_param(query, "all")?.is_some_and(|v| v == "1" || v == "true");
            let list = blocking(engine, move |e| {
                let s = e.store().snapshot().map_err(EngineError::from)?;
                let running = |c: &&ContainerRecord| {
                    c.managed()
                        .is_some_and(|m| all || m.state.status == Status::Running)
                };
                let mut out: Vec<&ContainerRecord> = s.containers.iter().filter(running).collect();
                out.sort_by_key(|c| std::cmp::Reverse(c.created));
                Ok(out
                    .into_iter()
                    .map(|c| {
                        let eps: Vec<_> = s
                            .endpoints
                            .iter()
                            .filter(|e| e.container == c.id)
                            .cloned()
                            .collect();
                        crate::api::containers::summary(c, &eps, &s.networks)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
            Ok(json_response(StatusCode::OK, &list))
        }
        (&Method::GET, ["containers", id, "json"]) => {
            let id = decode_segment(id)?;
            let v = blocking(engine, move |e| {
                let c = e.container(&id)?;
                let s = e.store().snapshot().map_err(EngineError::from)?;
                let eps: Vec<_> = s
                    .endpoints
                    .iter()
                    .filter(|x| x.container == c.id)
                    .cloned()
                    .collect();
                let dir = crate::daemon::runtime::container_dir(e.data_root(), &c.id);
                Ok(crate::api::containers::inspect(&c, &eps, &s.networks, &dir))
            })
            .await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        (&Method::GET, ["containers", id, "logs"]) => {
            let id = decode_segment(id)?;
            let (c, path) = blocking(engine, move |e| {
                let c = e.container(&id)?;
                let dir = crate::daemon::runtime::container_dir(e.data_root(), &c.id);
                Ok((c, dir.join("container.log")))
            })
            .await?;
            let data = tokio::fs::read(&path).await.unwrap_or_default();
            let tty = c.managed().is_some_and(|m| m.config.tty);
            let mut body = Vec::with_capacity(data.len() + 8);
            if tty {
                body.extend_from_slice(&data);
            } else {
                // Docker's multiplexed stream: [stream, 0, 0, 0, len (u32 BE)] + payload.
                for chunk in data.chunks(1 << 20) {
                    body.extend_from_slice(&[1, 0, 0, 0]);
                    body.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
                    body.extend_from_slice(chunk);
                }
            }
            let mut resp = Response::new(full(Bytes::from(body)));
            let ct = if tty {
                "application/vnd.docker.raw-stream"
            } else {
                "application/vnd.docker.multiplexed-stream"
            };
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            Ok(resp)
        }
        (&Method::POST, ["containers", id, "start"]) => {
            let id = decode_segment(id)?;
            match app.runtime.start(&id).await {
                Ok(_) => Ok(empty(StatusCode::NO_CONTENT)),
                Err(RuntimeError::Engine(EngineError::AlreadyRunning(_))) => {
                    Ok(empty(StatusCode::NOT_MODIFIED))
                }
                Err(e) => Err(e.into()),
            }
        }
        (&Method::POST, ["containers", id, "stop"]) => {
            let id = decode_segment(id)?;
            let t = stop_timeout(query)?;
            if app.runtime.stop(&id, t).await? {
                Ok(empty(StatusCode::NO_CONTENT))
            } else {
                Ok(empty(StatusCode::NOT_MODIFIED))
            }
        }
        (&Method::POST, ["containers", id, "restart"]) => {
            let id = decode_segment(id)?;
            let t = stop_timeout(query)?;
            app.runtime.stop(&id, t).await?;
            app.runtime.start(&id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "attach"]) => {
            let id = decode_segment(id)?;
            attach(req, app, id, query).await
        }
        (&Method::POST, ["containers", id, "rename"]) => {
            let id = decode_segment(id)?;
            let name = query_param(query, "name")?.unwrap_or_default();
            blocking(engine, move |e| Ok(e.rename_container(&id, &name)?)).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["containers", id, "resize"]) => {
            // Accepted so that clients which resize after attaching go on; the terminal keeps
            // its 80x24 (setting a window size needs an ioctl nix has no safe call for).
            let id = decode_segment(id)?;
            blocking(engine, move |e| Ok(e.container(&id)?)).await?;
            Ok(empty(StatusCode::OK))
        }
        (&Method::POST, ["containers", id, "wait"]) => {
            let id = decode_segment(id)?;
            match query_param(query, "condition")?.as_deref() {
                None | Some("" | "not-running") => {}
                Some("next-exit") => {
                    // Docker answers the headers at once and the body at the exit: the docker
                    // CLI starts the container only once the wait is registered.
                    let id2 = id.clone();
                    let mut exits = blocking(engine, move |e| Ok(e.container(&id2)?))
                        .await
                        .and_then(|c| Ok(app.runtime.next_exit(c.id.as_str())?))?;
                    let body = futures_util::stream::once(async move {
                        let code = loop {
                            match exits.recv().await {
                                Ok(code) => break code,
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                                Err(tokio::sync::broadcast::error::RecvError::Closed) => break 0,
                            }
                        };
                        let resp = serde_json::json!({"StatusCode": code, "Error": null});
                        Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from(to_go_json(
                            &resp,
                        ))))
                    });
                    let mut resp =
                        Response::new(http_body_util::StreamBody::new(body).boxed_unsync());
                    resp.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    return Ok(resp);
                }
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid condition: \"{other}\""
                    )));
                }
            }
            let code = app.runtime.wait(&id).await?;
            let resp = serde_json::json!({"StatusCode": code, "Error": null});
            Ok(json_response(StatusCode::OK, &resp))
        }
        (&Method::DELETE, ["containers", id]) => {
            let id = decode_segment(id)?;
            let force = query_param(query, "force")?.is_some_and(|v| v == "1" || v == "true");
            if force {
                app.runtime.stop(&id, std::time::Duration::ZERO).await?;
            }
            let c = blocking(engine, move |e| Ok(e.remove_container(&id)?)).await?;
            app.runtime.forget(&c).await;
            info!(container = %c.name, "container removed");
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["netloom", "containers", id, "exec"]) => {
            let id = decode_segment(id)?;
            let body: serde_json::Value = read_json(req).await?;
            let cmd: Vec<String> = serde_json::from_value(body["Cmd"].clone())
                .map_err(|_| ApiError::bad_request("Cmd must be an array of strings"))?;
            if cmd.is_empty() {
                return Err(ApiError::bad_request("no exec command specified"));
            }
            let c = blocking(engine, move |e| Ok(e.container(&id)?)).await?;
            let Some(pid) = app.runtime.pid(&c.id).await else {
                return Err(ApiError {
                    status: StatusCode::CONFLICT,
                    message: format!("container {} is not running", c.id),
                });
            };
            let exe = std::env::current_exe().map_err(|e| ApiError::internal(e.to_string()))?;
            let out = tokio::process::Command::new(exe)
                .arg("_exec")
                .arg("--pid")
                .arg(pid.to_string())
                .arg("--")
                .args(&cmd)
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .map_err(|e| ApiError::internal(format!("cannot run exec: {e}")))?;
            let v = serde_json::json!({
                "ExitCode": out.status.code().unwrap_or(255),
                "Stdout": String::from_utf8_lossy(&out.stdout),
                "Stderr": String::from_utf8_lossy(&out.stderr),
            });
            Ok(json_response(StatusCode::OK, &v))
        }
        (&Method::GET, ["netloom", "stats"]) => {
            let state = blocking(engine, |e| {
                Ok(e.store().snapshot().map_err(EngineError::from)?)
            })
            .await?;
            Ok(json_response(StatusCode::OK, &planes.stats(&state).await))
        }
        (&Method::POST, ["netloom", "detach"]) => {
            let body: DetachRequestBody = read_json(req).await?;
            let network = Some(body.network).filter(|n| !n.is_empty());
            let (c, endpoints) = blocking(engine, move |e| {
                Ok(e.detach(&body.name, network.as_deref())?)
            })
            .await?;
            planes.unplug(&c, &endpoints).await;
            info!(sandbox = %c.name, count = endpoints.len(), "namespace detached");
            let resp = DetachResponse {
                interfaces: endpoints.iter().map(|e| e.ifname.clone()).collect(),
            };
            Ok(json_response(StatusCode::OK, &resp))
        }
        (&Method::DELETE, ["networks", id]) => {
            let id = decode_segment(id)?;
            let n = blocking(engine, move |e| Ok(e.remove_network(&id)?)).await?;
            info!(network = %n.name, id = %n.id, "network removed");
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["networks", id, "connect"]) => {
            let id = decode_segment(id)?;
            let body: NetworkConnectRequest = read_json(req).await?;
            let settings = connect_settings(body.endpoint_config.as_ref())?;
            let container = body.container.clone();
            let r = blocking(engine.clone(), move |e| {
                Ok(e.connect(&id, &container, settings)?)
            })
            .await?;
            if let Connected::Plug { netns, attached } = r
                && let Err(err) = planes.plug(&netns, &attached).await
            {
                let (n, c) = (
                    attached.network.id.to_string(),
                    attached.container.id.to_string(),
                );
                if let Err(undo) = blocking(engine, move |e| Ok(e.disconnect(&n, &c)?)).await {
                    warn!(error = %undo.message, "undoing a failed connect failed");
                }
                return Err(ApiError::internal(format!(
                    "failed to set up container networking: cannot plug {}: {err}",
                    attached.endpoint.ifname
                )));
            }
            if let Err(e) = app.runtime.refresh_dns(&body.container).await {
                warn!(error = %e, "embedded DNS not updated after connect");
            }
            Ok(empty(StatusCode::OK))
        }
        (&Method::POST, ["networks", id, "disconnect"]) => {
            let id = decode_segment(id)?;
            let body: NetworkDisconnectRequest = read_json(req).await?;
            let container = body.container.clone();
            let (netns, endpoints) =
                blocking(engine, move |e| Ok(e.disconnect(&id, &body.container)?)).await?;
            planes.unplug_in(netns.as_deref(), &endpoints).await;
            if let Err(e) = app.runtime.refresh_dns(&container).await {
                warn!(error = %e, "embedded DNS not updated after disconnect");
            }
            if let Err(e) = app.runtime.follow_publication(&container).await {
                warn!(error = %e, "published ports not moved after disconnect");
            }
            Ok(empty(StatusCode::OK))
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix() {
        assert_eq!(split_version("/v1.45/networks").1, "/networks");
        assert_eq!(split_version("/networks"), (None, "/networks"));
        assert_eq!(split_version("/version"), (None, "/version"));
        let (v, _) = split_version("/v1.99/networks");
        assert_eq!(
            v.unwrap().check().unwrap_err().message,
            "client version 1.99 is too new. Maximum supported API version is 1.50"
        );
        let (v, _) = split_version("/v1.12/networks");
        assert_eq!(
            v.unwrap().check().unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn routes() {
        assert!(is_route(&Method::GET, &["networks"]));
        assert!(is_route(&Method::POST, &["networks", "x", "connect"]));
        assert!(!is_route(&Method::PUT, &["networks"]));
        assert!(is_route(&Method::GET, &["containers", "json"]));
        assert!(!is_route(&Method::GET, &["images", "json"]));
    }

    #[test]
    fn path_decoding() {
        assert_eq!(decode_segment("a%20b").unwrap(), "a b");
        assert!(decode_segment("a%zz").is_err());
    }
}
