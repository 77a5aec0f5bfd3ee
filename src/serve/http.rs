//! Streamable HTTP: rmcp's `StreamableHttpService` at `/mcp`, behind a bearer-token check.
//!
//! DNS-rebinding protection is on for every address: rmcp refuses a `Host` header that is not
//! in the allowed list (loopback names plus `--allow-host`) and, with origin validation
//! enforced, any `Origin` header not given with `--allow-origin`. A request with two `Host`
//! headers, or an absolute-form target (`POST http://other/mcp`) whose authority the Host
//! check would not see, is refused before that. A non-loopback address also needs a bearer
//! token, so the server is never open to a network without one.
//!
//! Connections are served by our own loop over hyper (axum's `serve` cannot set these):
//! TCP_NODELAY on every socket, a read timeout for a request's headers (which also ends a
//! connection idle between requests) and another for its body, and bodies capped in size and
//! checked to be JSON before rmcp sees them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use zeroize::Zeroizing;

use super::{McpServer, ServeArgs};
use crate::error::{Error, Result};
use crate::secrets::ResolvedSecrets;

pub const READ_TIMEOUT_VAR: &str = "AGENTENV_HTTP_READ_TIMEOUT";
/// How long a client may take to send a request's headers, and then its body. hyper's own
/// default for headers; an MCP client sends a request in one go.
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request body: a tools/call is a few hundred bytes, and rmcp would otherwise
/// read any size into memory.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long shutdown waits for answers under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The bearer token HTTP clients must present, if `--http-token-secret` names one: looked up
/// among the spec's resolved secrets first, then in the process environment.
pub fn bearer_token(
    args: &ServeArgs,
    secrets: &ResolvedSecrets,
) -> Result<Option<Zeroizing<String>>> {
    let Some(name) = &args.http_token_secret else {
        return Ok(None);
    };
    let value = secrets
        .get(name)
        .map(str::to_string)
        .or_else(|| std::env::var(name).ok())
        .filter(|v| !v.trim().is_empty());
    match value {
        Some(v) => Ok(Some(Zeroizing::new(v))),
        None => Err(Error::input(format!(
            "--http-token-secret names `{name}`, but no secret or environment variable of that name has a value"
        ))
        .with_hint(format!(
            "create it with `agentenv secret create {} {name} --team` or export {name}",
            args.env.display()
        ))),
    }
}

async fn resolve(addr: &str) -> Result<Vec<SocketAddr>> {
    let bad = |why: String| {
        Error::input(format!("--http `{addr}`: {why}"))
            .with_hint("give HOST:PORT, e.g. --http 127.0.0.1:8765")
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| bad(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(bad("it resolves to no address".into()));
    }
    Ok(addrs)
}

/// The rmcp service config for a bind address: allowed Host values and enforced Origin checks.
fn service_config(bind: SocketAddr, args: &ServeArgs) -> Result<StreamableHttpServerConfig> {
    let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| h.to_string()).collect();
    if !bind.ip().is_loopback() && !bind.ip().is_unspecified() {
        hosts.push(bind.ip().to_string());
    }
    if bind.ip().is_unspecified() && args.allow_hosts.is_empty() {
        return Err(Error::input(format!(
            "--http {bind} listens on every interface, but no --allow-host says which Host \
             header clients will send"
        ))
        .with_hint("add --allow-host NAME (the host name or address clients connect to)"));
    }
    hosts.extend(args.allow_hosts.iter().cloned());
    Ok(StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(args.allow_origins.iter().cloned())
        .enforce_origin_validation())
}

/// Refuse requests without the expected `Authorization: Bearer` token (constant-time compare).
/// The scheme is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` are the same.
async fn require_bearer(
    State(token): State<Arc<Zeroizing<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credential)
        .unwrap_or("");
    if constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "Unauthorized: send `Authorization: Bearer <token>`\n",
        )
            .into_response()
    }
}

/// The token of an `Authorization: Bearer TOKEN` value, whatever the scheme's case.
fn bearer_credential(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim_start())
}

/// Refuse what the Host check cannot judge: two `Host` headers (which one would it check?),
/// and an HTTP/1 absolute-form target, whose authority names a host the `Host` header need
/// not. (HTTP/2 always carries an authority; it is not served here.)
async fn refuse_ambiguous_host(request: Request, next: Next) -> Response {
    let bad = |why: &str| (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response();
    if request.headers().get_all(header::HOST).iter().count() > 1 {
        return bad("Bad Request: more than one Host header");
    }
    if request.version() <= Version::HTTP_11 && request.uri().authority().is_some() {
        return bad("Bad Request: absolute-form request targets are not served; send `POST /mcp`");
    }
    next.run(request).await
}

/// Read a POST body within the read timeout and the size cap, and answer malformed JSON the
/// way JSON-RPC says (400 and a -32700 parse error) instead of rmcp's 415.
async fn read_body(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!(
                "Payload Too Large: a request body may hold {} MiB\n",
                MAX_BODY_BYTES >> 20
            ),
        )
            .into_response()
    };
    // An announced length over the cap is refused before a byte of it is read.
    if axum::body::HttpBody::size_hint(request.body()).lower() > MAX_BODY_BYTES as u64 {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(timeout, Limited::new(body, MAX_BODY_BYTES).collect());
    let bytes = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Ok(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONNECTION, "close")],
                "Bad Request: the body could not be read\n",
            )
                .into_response();
        }
        Err(_elapsed) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                format!(
                    "Request Timeout: the body did not arrive within {:.0} s\n",
                    timeout.as_secs_f64()
                ),
            )
                .into_response();
        }
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32700, "message": format!("Parse error: the body is not JSON: {e}")},
        });
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `AGENTENV_HTTP_READ_TIMEOUT` (seconds), else the default.
fn read_timeout() -> Result<Duration> {
    let Ok(v) = std::env::var(READ_TIMEOUT_VAR) else {
        return Ok(DEFAULT_READ_TIMEOUT);
    };
    v.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Error::input(format!(
                "{READ_TIMEOUT_VAR}=`{v}` is not valid: give a number of seconds above 0"
            ))
        })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Serve streamable HTTP on `addr` until SIGINT/SIGTERM.
pub async fn serve(
    server: McpServer,
    addr: &str,
    token: Option<Zeroizing<String>>,
    args: &ServeArgs,
) -> Result<()> {
    let addrs = resolve(addr).await?;
    let loopback = addrs.iter().all(|a| a.ip().is_loopback());
    if !loopback && token.is_none() {
        return Err(Error::input(format!(
            "--http {addr} is not a loopback address; serving it without a bearer token would \
             open the tools to the network"
        ))
        .with_hint(
            "add --http-token-secret NAME (a secret or environment variable holding the token), \
             or bind 127.0.0.1",
        ));
    }
    // Checked before binding, so a refused configuration never opens a port.
    let config = service_config(addrs[0], args)?;
    let read_timeout = read_timeout()?;
    let listener = tokio::net::TcpListener::bind(addrs.as_slice())
        .await
        .map_err(|e| Error::failure(format!("--http {addr}: cannot listen: {e}")))?;
    let bound = listener.local_addr()?;
    let cancel = config.cancellation_token.clone();
    let tools = server.tool_count();
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mut router = axum::Router::new().route_service("/mcp", service).layer(
        axum::middleware::from_fn_with_state(read_timeout, read_body),
    );
    if let Some(token) = token {
        router = router.layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            require_bearer,
        ));
    }
    let router = router.layer(axum::middleware::from_fn(refuse_ambiguous_host));

    let mut http = hyper::server::conn::http1::Builder::new();
    // The header timer starts when hyper waits for a request line, which it does as soon as
    // a connection opens and again after each answer: a client that connects and says
    // nothing, trickles its headers, or idles between requests is closed when it runs out.
    http.timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    eprintln!("agentenv: serving {tools} tools on http://{bound}/mcp");
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => tcp,
                // Out of descriptors (EMFILE) and the like: accepting again at once would spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // An answer leaves in two writes (headers, then body); with Nagle's algorithm the
        // second waited for the client's delayed ACK of the first: ~44 ms per call on a
        // kept-alive connection.
        let _ = tcp.set_nodelay(true);
        let conn =
            http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away or times out ends its own connection; nothing to report.
            let _ = conn.await;
        });
    }
    cancel.cancel();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}
