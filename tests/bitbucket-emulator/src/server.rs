//! The two listeners, request recording, fault injection and dispatch to git / Cloud / DC.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;

use crate::auth::{self, Product, Refusal, Surface};
use crate::{FaultKind, RecordedRequest, Shared, Token};

pub fn run(
    shared: Arc<Shared>,
    main: std::net::TcpListener,
    logs: std::net::TcpListener,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bitbucket-emulator: cannot start its runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let (main, logs) = match (
            tokio::net::TcpListener::from_std(main),
            tokio::net::TcpListener::from_std(logs),
        ) {
            (Ok(m), Ok(l)) => (m, l),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("bitbucket-emulator: listener: {e}");
                return;
            }
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let log_app = Router::new().fallback(handle_log_host).with_state(shared);
        tokio::select! {
            _ = axum::serve(main, app) => {}
            _ = axum::serve(logs, log_app) => {}
            _ = stop => {}
        }
    });
    // Blocking REST handlers are short; git children are killed on drop.
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// A request as the REST handlers see it (they run on blocking threads).
pub struct Req {
    pub method: String,
    pub path: String,
    /// Percent-decoded path segments after the API prefix; a trailing slash leaves a final "".
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub raw_query: String,
    pub headers: HeaderMap,
}

impl Req {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A complete REST answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, v: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }
    pub fn is_json(&self) -> bool {
        self.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("content-type") && v.starts_with("application/json")
        })
    }
    pub fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// What a path addresses.
pub enum Target {
    Git {
        product: Product,
        owner: String,
        slug: String,
        rest: String,
    },
    Cloud(Vec<String>),
    Dc(Vec<String>),
    Unknown,
}

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |s: &str| decode(&s.replace('+', " "));
            (d(k), d(v))
        })
        .collect()
}

pub fn classify(path: &str) -> Target {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // `..` would let git http-backend wander from the seeded repository to any path on disk.
    if segs
        .iter()
        .any(|s| matches!(decode(s).as_str(), ".." | "."))
    {
        return Target::Unknown;
    }
    let owned = |s: &[&str]| s.iter().map(|x| decode(x)).collect::<Vec<_>>();
    match segs.as_slice() {
        ["2.0", rest @ ..] => Target::Cloud(owned(rest)),
        ["rest", rest @ ..] => Target::Dc(owned(rest)),
        ["scm", project, repo, rest @ ..] if repo.ends_with(".git") && !rest.is_empty() => {
            Target::Git {
                product: Product::Dc,
                owner: decode(project),
                slug: decode(repo.trim_end_matches(".git")),
                rest: rest.join("/"),
            }
        }
        [ws, repo, rest @ ..] if repo.ends_with(".git") && !rest.is_empty() => Target::Git {
            product: Product::Cloud,
            owner: decode(ws),
            slug: decode(repo.trim_end_matches(".git")),
            rest: rest.join("/"),
        },
        _ => Target::Unknown,
    }
}

/// `*` matches any run of characters (including `/`); an optional `METHOD ` prefix must match.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == t[ti] && p[pi] != b'*') {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn matches_parts(pattern: &str, method: &str, path: &str, route: &str) -> bool {
    let (m, pat) = match pattern.split_once(' ') {
        Some((m, rest)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            (Some(m), rest)
        }
        _ => (None, pattern),
    };
    if m.is_some_and(|m| m != method) {
        return false;
    }
    // Route templates carry the method; compare the pattern against their path part too.
    let route_path = route.split_once(' ').map_or(route, |(_, p)| p);
    glob(pat, path) || glob(pat, route_path) || glob(pattern, route)
}

pub fn matches(pattern: &str, r: &RecordedRequest) -> bool {
    matches_parts(pattern, &r.method, &r.path, &r.route)
}

async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let target = classify(&path);
    let route = match &target {
        Target::Git {
            product: Product::Cloud,
            rest,
            ..
        } => format!("{method} /{{workspace}}/{{repo_slug}}.git/{rest}"),
        Target::Git {
            product: Product::Dc,
            rest,
            ..
        } => format!("{method} /scm/{{projectKey}}/{{repositorySlug}}.git/{rest}"),
        Target::Cloud(segs) => format!("{method} /2.0{}", crate::cloud::template(segs)),
        Target::Dc(segs) => format!("{method} /rest{}", crate::dc::template(segs)),
        Target::Unknown => format!("{method} (unknown)"),
    };

    let (delay, fault_and_pattern) = {
        let mut st = shared.lock();
        let delay: Duration = st
            .latency
            .iter()
            .filter(|(p, _)| matches_parts(p, &method, &path, &route))
            .map(|(_, d)| *d)
            .sum();
        let fault = st
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && matches_parts(&f.pattern, &method, &path, &route))
            .map(|f| {
                f.remaining -= 1;
                (f.kind.clone(), f.pattern.clone())
            });
        st.faults.retain(|f| f.remaining > 0);
        (delay, fault)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (fault, fault_pattern) = match fault_and_pattern {
        Some((k, p)) => (Some(k), p),
        None => (None, String::new()),
    };

    let headers_rec: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let product = match &target {
        Target::Git { product, .. } => Some(*product),
        Target::Cloud(_) => Some(Product::Cloud),
        Target::Dc(_) => Some(Product::Dc),
        Target::Unknown => None,
    };

    let git = matches!(target, Target::Git { .. });
    let injected = match &fault {
        Some(FaultKind::Status(code)) => Some(fault_reply(product, git, *code)),
        Some(FaultKind::RateLimit(secs)) => {
            Some(fault_reply(product, git, 429).with_header("Retry-After", &secs.to_string()))
        }
        Some(FaultKind::Respond {
            status,
            content_type,
            body,
        }) => Some(Reply {
            status: *status,
            headers: vec![("Content-Type".into(), content_type.clone())],
            body: body.clone(),
        }),
        Some(FaultKind::Reset(_)) | None => None,
    };
    let (response, token) = if let Some(reply) = injected {
        (to_response(reply), None)
    } else {
        match target {
            Target::Git {
                product,
                owner,
                slug,
                rest,
            } => crate::git_http::serve(&shared, &parts, body, product, &owner, &slug, &rest).await,
            Target::Cloud(segs) | Target::Dc(segs) => {
                let req = Req {
                    method: method.clone(),
                    path: path.clone(),
                    segs,
                    query: parse_query(&raw_query),
                    raw_query: raw_query.clone(),
                    headers: parts.headers.clone(),
                };
                let sh = shared.clone();
                let is_cloud = product == Some(Product::Cloud);
                let res = tokio::task::spawn_blocking(move || {
                    if is_cloud {
                        crate::cloud::handle(&sh, &req)
                    } else {
                        crate::dc::handle(&sh, &req)
                    }
                })
                .await;
                match res {
                    Ok((reply, token)) => (to_response(reply), token),
                    Err(e) => (
                        to_response(Reply::text(500, &format!("emulator handler failed: {e}"))),
                        None,
                    ),
                }
            }
            Target::Unknown => (to_response(Reply::text(404, "Not Found")), None),
        }
    };

    let body_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    shared.lock().log.push(RecordedRequest {
        method,
        path,
        query: raw_query,
        route,
        token,
        headers: headers_rec,
        status: response.status().as_u16(),
        body_bytes: body_bytes.clone(),
    });
    // git's answers are streams already; the others keep their Content-Length.
    let response = if git {
        count_body(response, body_bytes)
    } else {
        let size = axum::body::HttpBody::size_hint(response.body()).exact();
        body_bytes.store(size.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
        response
    };
    match fault {
        Some(FaultKind::Reset(after)) => cut_after(response, after, shared.clone(), fault_pattern),
        _ => response,
    }
}

/// An injected failure, in the format the addressed API uses for that status.
pub fn fault_reply(product: Option<Product>, git: bool, code: u16) -> Reply {
    if git {
        return Reply::text(code, "injected failure");
    }
    match (product, code) {
        (Some(Product::Cloud), 429) => rate_limited(),
        (Some(Product::Cloud), 401) => cloud_unauthorized("injected failure"),
        (Some(Product::Cloud), _) => {
            crate::cloud::error(code, "Something went wrong (injected failure).")
        }
        (Some(Product::Dc), _) => {
            crate::dc::error(code, "Something went wrong (injected failure).", None)
        }
        (None, _) => Reply::text(code, "injected failure"),
    }
}

/// Cloud's 429: plain text, exactly this body, no Retry-After.
pub fn rate_limited() -> Reply {
    Reply::text(429, "Rate limit for this resource has been exceeded")
}

pub fn cloud_unauthorized(why: &str) -> Reply {
    Reply::text(
        401,
        &format!("Bitbucket Cloud could not authenticate this request: {why}.\n"),
    )
    .with_header("WWW-Authenticate", "Basic realm=\"Bitbucket.org HTTP\"")
}

/// Renders an authentication/authorization refusal for REST.
pub fn refusal_reply(product: Product, r: Refusal) -> Reply {
    match (product, r) {
        (Product::Cloud, Refusal::Unauthenticated(why)) => cloud_unauthorized(&why),
        (Product::Cloud, Refusal::MissingScope { granted, required }) => Reply::json(
            403,
            &serde_json::json!({"type": "error", "error": {
                "message": "Your credentials lack one or more required privilege scopes.",
                "detail": {"granted": granted, "required": required}}}),
        ),
        (Product::Cloud, Refusal::OutOfResource) => crate::cloud::repo_not_found(),
        (Product::Dc, Refusal::Unauthenticated(why)) => crate::dc::error(
            401,
            &format!("Authentication failed. Please check your credentials and try again ({why})."),
            Some("com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"),
        )
        .with_header("WWW-Authenticate", "Basic realm=\"Bitbucket\""),
        (Product::Dc, Refusal::MissingScope { .. } | Refusal::OutOfResource) => crate::dc::error(
            401,
            "You are not permitted to access this resource",
            Some("com.atlassian.bitbucket.AuthorisationException"),
        ),
    }
}

pub fn to_response(reply: Reply) -> Response {
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::try_from(k),
            HeaderValue::try_from(v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

/// Counts the body bytes as they are sent (for [`crate::Emulator::bytes_sent`]).
fn count_body(resp: Response, counter: Arc<std::sync::atomic::AtomicU64>) -> Response {
    let (parts, body) = resp.into_parts();
    let counted = body.into_data_stream().inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            counter.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    });
    Response::from_parts(parts, Body::from_stream(counted))
}

/// Sends `after` body bytes, then fails the body so hyper drops the connection mid-response.
/// A body that ends before the cut point passes whole and gives the fault back, so "cut the
/// pack" is not used up by the short ref advertisement before it.
fn cut_after(resp: Response, after: usize, shared: Arc<Shared>, pattern: String) -> Response {
    let (mut parts, body) = resp.into_parts();
    // Without a length the cut shows as a chunked body that never ends.
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let reset = || {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        ))
    };
    let mut left = after;
    let mut done = false;
    let stream = body
        .into_data_stream()
        .map(Some)
        .chain(futures_util::stream::once(async { None }));
    let cut = stream.flat_map(move |item| {
        let out: Vec<std::io::Result<Bytes>> = match item {
            _ if done => Vec::new(),
            Some(Ok(chunk)) if chunk.len() <= left => {
                left -= chunk.len();
                vec![Ok(chunk)]
            }
            Some(Ok(chunk)) => {
                done = true;
                let head = chunk.slice(..left);
                if head.is_empty() {
                    vec![reset()]
                } else {
                    vec![Ok(head), reset()]
                }
            }
            Some(Err(e)) => {
                done = true;
                vec![Err(std::io::Error::other(e.to_string()))]
            }
            None => {
                done = true;
                shared.lock().faults.push(crate::Fault {
                    pattern: pattern.clone(),
                    remaining: 1,
                    kind: FaultKind::Reset(after),
                });
                Vec::new()
            }
        };
        futures_util::stream::iter(out)
    });
    Response::from_parts(parts, Body::from_stream(cut))
}

async fn handle_log_host(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut st = shared.lock();
    let reply = match st.log_blobs.get(&path) {
        // Object storage refuses requests that carry a second credential, like S3 does.
        Some(_) if req.headers().contains_key("authorization") => Reply::text(
            400,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature \
             query string parameter or the Authorization header should be specified",
        ),
        Some(bytes) => Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: bytes.clone(),
        },
        None => Reply::text(404, "NoSuchKey"),
    };
    st.log_host_log.push(RecordedRequest {
        method: req.method().as_str().to_string(),
        path,
        query: req.uri().query().unwrap_or("").to_string(),
        route: "GET /logs/{pipeline}/{step}".into(),
        token: None,
        headers,
        status: reply.status,
        body_bytes: Arc::new(std::sync::atomic::AtomicU64::new(reply.body.len() as u64)),
    });
    to_response(reply)
}

/// Authentication + authorization for a request; returns the token on success.
pub fn check(
    shared: &Shared,
    headers: &HeaderMap,
    product: Product,
    surface: Surface,
    need: auth::Need,
    repo: Option<(&str, &str)>,
) -> Result<Option<Token>, Refusal> {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    let st = shared.lock();
    let token = auth::authenticate(&st, header, product, surface)?;
    auth::authorize(token.as_ref(), need, repo)?;
    Ok(token)
}
