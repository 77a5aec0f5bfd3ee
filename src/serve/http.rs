//! Streamable HTTP: rmcp's `StreamableHttpService` at `/mcp`, behind a bearer-token check.
//!
//! DNS-rebinding protection is on for every address: rmcp refuses a `Host` header that is not
//! in the allowed list (loopback names plus `--allow-host`) and, with origin validation
//! enforced, any `Origin` header not given with `--allow-origin`. A non-loopback address
//! also needs a bearer token, so the server is never open to a network without one.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use zeroize::Zeroizing;

use super::{McpServer, ServeArgs};
use crate::error::{Error, Result};
use crate::secrets::ResolvedSecrets;

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
async fn require_bearer(
    State(token): State<Arc<Zeroizing<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
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
    let mut router = axum::Router::new().route_service("/mcp", service);
    if let Some(token) = token {
        router = router.layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            require_bearer,
        ));
    }
    eprintln!("agentenv: serving {tools} tools on http://{bound}/mcp");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            cancel.cancel();
        })
        .await
        .map_err(|e| Error::failure(format!("HTTP server on {bound} failed: {e}")))
}
