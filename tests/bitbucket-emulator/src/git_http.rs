//! Git smart HTTP through the real `git http-backend` CGI, streamed both ways.

use std::process::Stdio;

use axum::body::Body;
use axum::http::request::Parts;
use axum::response::Response;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::Shared;
use crate::auth::{Need, Product, Refusal, Surface};
use crate::server::{Reply, check, to_response};

const NOT_FOUND: &str = "The requested repository either does not exist or you do not have access.";

fn refuse(product: Product, r: Refusal) -> Reply {
    match r {
        Refusal::Unauthenticated(_) => {
            let realm = match product {
                Product::Cloud => "Basic realm=\"Bitbucket.org HTTP\"",
                Product::Dc => "Basic realm=\"Bitbucket\"",
            };
            Reply::text(401, "Authentication failed\n").with_header("WWW-Authenticate", realm)
        }
        Refusal::MissingScope { .. } => match product {
            Product::Cloud => Reply::text(
                403,
                "Your credentials lack one or more required privilege scopes.\n",
            ),
            Product::Dc => Reply::text(401, "You are not permitted to access this resource\n")
                .with_header("WWW-Authenticate", "Basic realm=\"Bitbucket\""),
        },
        Refusal::OutOfResource => Reply::text(404, NOT_FOUND),
    }
}

pub async fn serve(
    shared: &std::sync::Arc<Shared>,
    parts: &Parts,
    body: Body,
    product: Product,
    owner: &str,
    slug: &str,
    rest: &str,
) -> (Response, Option<String>) {
    let token = match check(
        shared,
        &parts.headers,
        product,
        Surface::Git,
        Need::Repository,
        Some((owner, slug)),
    ) {
        Ok(t) => t,
        Err(r) => return (to_response(refuse(product, r)), None),
    };
    let token_id = token.as_ref().map(|t| t.id.clone());
    let query = parts.uri.query().unwrap_or("");
    if rest.ends_with("git-receive-pack") || query.contains("service=git-receive-pack") {
        let reply = Reply::text(
            403,
            "This emulator is read-only: pushing is not supported.\n",
        );
        return (to_response(reply), token_id);
    }
    let repo = {
        let st = shared.lock();
        let found = match product {
            Product::Cloud => st
                .cloud_repos
                .get(&(owner.to_lowercase(), slug.to_lowercase())),
            Product::Dc => st
                .dc_repos
                .get(&(owner.to_uppercase(), slug.to_lowercase())),
        };
        found.map(|r| r.path.clone())
    };
    let Some(repo) = repo else {
        return (to_response(Reply::text(404, NOT_FOUND)), token_id);
    };

    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &repo)
        .env("PATH_INFO", format!("/{rest}"))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", query)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env(
            "REMOTE_USER",
            token.as_ref().map_or("anonymous", |t| t.id.as_str()),
        )
        // Filters and reachable-SHA wants, as Bitbucket allows partial clones; any owner is fine.
        .env("GIT_CONFIG_COUNT", "3")
        .env("GIT_CONFIG_KEY_0", "uploadpack.allowFilter")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("GIT_CONFIG_KEY_1", "uploadpack.allowReachableSHA1InWant")
        .env("GIT_CONFIG_VALUE_1", "true")
        .env("GIT_CONFIG_KEY_2", "safe.directory")
        .env("GIT_CONFIG_VALUE_2", "*")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("CONTENT_LENGTH")
        .env_remove("GIT_PROTOCOL")
        .env_remove("HTTP_CONTENT_ENCODING")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (var, name) in [
        ("CONTENT_TYPE", "content-type"),
        ("CONTENT_LENGTH", "content-length"),
        ("GIT_PROTOCOL", "git-protocol"),
        ("HTTP_CONTENT_ENCODING", "content-encoding"),
    ] {
        if let Some(v) = header(name) {
            cmd.env(var, v);
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                to_response(Reply::text(
                    500,
                    &format!("cannot run git http-backend: {e}"),
                )),
                token_id,
            );
        }
    };
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return (
            to_response(Reply::text(500, "git http-backend pipes missing")),
            token_id,
        );
    };
    // Feed the request body as it arrives; the pack negotiation never sits whole in memory.
    // The `want` lines of a fetch are recorded on the way (the start of the body is enough:
    // wants come first), so tests can tell which commits a client asked for.
    let record = shared.clone();
    let repo_key = format!("{owner}/{slug}");
    let is_fetch = rest.ends_with("git-upload-pack") && parts.method == axum::http::Method::POST;
    tokio::spawn(async move {
        let mut frames = body.into_data_stream();
        let mut head: Vec<u8> = Vec::new();
        while let Some(Ok(chunk)) = frames.next().await {
            if is_fetch && head.len() < 1 << 20 {
                head.extend_from_slice(&chunk);
            }
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
        if is_fetch {
            let wants = wants_of(&head);
            if !wants.is_empty() {
                record.lock().git_wants.push((repo_key, wants));
            }
        }
    });
    tokio::spawn(async move {
        let _ = child.wait().await;
    });

    let mut out = BufReader::with_capacity(64 * 1024, stdout);
    let mut status = 200u16;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        match out.read_line(&mut line).await {
            Ok(0) => {
                return (
                    to_response(Reply::text(502, "git http-backend produced no response")),
                    token_id,
                );
            }
            Ok(_) => {}
            Err(e) => {
                return (
                    to_response(Reply::text(502, &format!("git http-backend: {e}"))),
                    token_id,
                );
            }
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("Status") {
                status = v
                    .split_whitespace()
                    .next()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(500);
            } else {
                headers.push((k.to_string(), v.to_string()));
            }
        }
    }
    let mut resp = Response::new(Body::from_stream(
        tokio_util::io::ReaderStream::with_capacity(out, 64 * 1024),
    ));
    *resp.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::try_from(k),
            axum::http::HeaderValue::try_from(v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    (resp, token_id)
}

/// The object ids of the `want` lines in an upload-pack request (pkt-lines, uncompressed as
/// libgit2 sends them).
fn wants_of(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(win) = body.get(at..) {
        let Some(i) = win.windows(5).position(|w| w == b"want ") else {
            break;
        };
        let id = win.get(i + 5..i + 45).unwrap_or_default();
        if id.len() == 40 && id.iter().all(u8::is_ascii_hexdigit) {
            out.push(String::from_utf8_lossy(id).into_owned());
        }
        at += i + 5;
    }
    out
}
