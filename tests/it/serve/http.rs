//! `agentenv serve --http`: streamable HTTP on 127.0.0.1, spoken to with plain reqwest so the
//! wire (headers, status codes, SSE framing) is what is tested. DNS-rebinding protection
//! (Host, Origin), the bearer token, and the refusal to open a non-loopback port without one.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::raw::Server;
use crate::support::workspace::{Fixture, small_app};

const CANARY: &str = "canary-token-5f1e9c2b7d";

fn start(fx: &Fixture, extra: &[&str], env: &[(&str, &str)]) -> Server {
    Server::start(fx, extra, env)
}

fn initialize_body() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "serve_http test", "version": "0"}
        }
    })
}

fn post(url: &str, body: &Value) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .json(body)
}

/// The JSON-RPC message answering `id`, from a JSON or an SSE response body.
async fn rpc_result(resp: reqwest::Response, id: u64) -> Value {
    let sse = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    let body = resp.text().await.unwrap();
    let messages: Vec<Value> = if sse {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    } else {
        vec![serde_json::from_str(&body).unwrap()]
    };
    messages
        .into_iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no answer to request {id} in: {body}"))
}

/// initialize + initialized; returns the session id.
async fn handshake(server: &Server, auth: Option<&str>) -> String {
    let mut req = post(&server.url, &initialize_body());
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let session = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let init = rpc_result(resp, 1).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "agentenv");
    assert_eq!(
        init["result"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );

    let mut req = post(
        &server.url,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .header("mcp-session-id", &session)
    .header("mcp-protocol-version", "2025-06-18");
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    session
}

async fn call_search(server: &Server, session: &str, auth: Option<&str>) -> Value {
    let body = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "search_code", "arguments": {"query": "TODO", "repo": "app"}}
    });
    let mut req = post(&server.url, &body)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    rpc_result(resp, 2).await
}

#[tokio::test]
async fn initialize_and_call_a_tool_over_streamable_http() {
    let fx = small_app();
    let server = start(&fx, &[], &[]);
    assert!(server.url.starts_with("http://127.0.0.1:") && server.url.ends_with("/mcp"));
    let session = handshake(&server, None).await;
    let answer = call_search(&server, &session, None).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(answer["result"]["structuredContent"]["total_matches"], 2);
    // The text is the rendering for a model; the JSON is in structuredContent.
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("2 matches in 2 files"), "{text}");
    assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
}

#[tokio::test]
async fn a_foreign_host_or_origin_header_is_refused() {
    let fx = small_app();
    let server = start(&fx, &["--allow-origin", "http://localhost:6274"], &[]);
    let port = server
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();

    let resp = post(&server.url, &initialize_body())
        .header("host", format!("attacker.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let resp = post(&server.url, &initialize_body())
        .header("origin", "http://attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // localhost by name is a loopback Host; an allowed Origin passes.
    let resp = post(&server.url, &initialize_body())
        .header("host", format!("localhost:{port}"))
        .header("origin", "http://localhost:6274")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bearer_token_is_required_when_configured_and_never_echoed() {
    let fx = small_app();
    let server = start(
        &fx,
        &["--http-token-secret", "MCP_TEST_TOKEN"],
        &[("MCP_TEST_TOKEN", CANARY)],
    );
    let resp = post(&server.url, &initialize_body()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let resp = post(&server.url, &initialize_body())
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(!resp.text().await.unwrap().contains(CANARY));

    let session = handshake(&server, Some(CANARY)).await;
    let answer = call_search(&server, &session, Some(CANARY)).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert!(!server.stderr.lock().unwrap().contains(CANARY));
}

fn refused(fx: &Fixture, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = fx.command();
    cmd.arg("serve")
        .arg(&fx.spec)
        .arg("--workdir")
        .arg(&fx.workdir)
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty());
    err
}

#[test]
fn a_non_loopback_address_without_a_token_is_refused() {
    let fx = small_app();
    let err = refused(&fx, &["--http", "0.0.0.0:0"], &[]);
    assert!(
        err.contains("not a loopback address") && err.contains("--http-token-secret"),
        "{err}"
    );

    // A token but no Host name for clients to use on a wildcard address.
    let err = refused(
        &fx,
        &[
            "--http",
            "0.0.0.0:0",
            "--http-token-secret",
            "MCP_TEST_TOKEN",
        ],
        &[("MCP_TEST_TOKEN", CANARY)],
    );
    assert!(err.contains("--allow-host"), "{err}");
    assert!(!err.contains(CANARY));
}

#[test]
fn a_token_secret_without_a_value_or_a_bad_address_is_refused() {
    let fx = small_app();
    let err = refused(
        &fx,
        &[
            "--http",
            "127.0.0.1:0",
            "--http-token-secret",
            "AGENTENV_TEST_UNSET_TOKEN",
        ],
        &[],
    );
    assert!(err.contains("AGENTENV_TEST_UNSET_TOKEN"), "{err}");
    let err = refused(&fx, &["--http", "not an address"], &[]);
    assert!(err.contains("HOST:PORT"), "{err}");
}
