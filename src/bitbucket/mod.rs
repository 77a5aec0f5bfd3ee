//! REST client for Bitbucket Cloud 2.0 and Data Center 1.0: one [`Client`] per provider, with
//! auth per credential type, manual redirects that never carry the credential to another host,
//! one pagination interface over Cloud's `next` links and Data Center's `start`/`nextPageStart`,
//! a client-side request budget, bounded retries, and a short cache revalidated with ETags.

mod budget;
mod error;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::Url;
use serde_json::Value;
use zeroize::Zeroizing;

pub use budget::{Budget, DEFAULT_PER_HOUR};
pub use error::{ApiError, ApiErrorKind};

use crate::providers::RestForm;
use crate::secrets::ResolvedSecrets;
use crate::spec::{AuthType, Provider, ProviderKind};

pub const CLOUD_API: &str = "https://api.bitbucket.org/2.0";
/// Redirect hops followed before giving up (Bitbucket uses one: diffstat, step logs).
const MAX_REDIRECTS: usize = 5;
/// Bodies larger than this are not read further: JSON pages are far smaller, logs are capped.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Only small bodies are cached, so that the cache stays small.
const MAX_CACHED_BYTES: usize = 512 * 1024;

/// Which API a client speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    Cloud { workspace: String },
    DataCenter { project: String },
}

/// Tunables; the defaults suit Bitbucket Cloud, tests shorten the waits.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a response is reused without asking the server (then revalidated by ETag).
    pub cache_ttl: Duration,
    /// Retries after a 429, a 5xx or a dropped connection.
    pub max_retries: u32,
    /// First back-off; doubled per retry, with up to 50% jitter added.
    pub backoff: Duration,
    /// A `Retry-After` longer than this is not slept through: the caller gets `rate_limited`.
    pub max_wait: Duration,
    /// Per request.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        let ttl = std::env::var("AGENTENV_API_CACHE_TTL")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(30);
        Options {
            cache_ttl: Duration::from_secs(ttl),
            max_retries: 3,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

/// An `Authorization` header value. Never printed, zeroed when dropped.
struct Credential(Zeroizing<String>);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

#[derive(Clone)]
struct Cached {
    at: Instant,
    etag: Option<String>,
    response: Response,
}

/// A response as the client hands it over: after redirects, retries and the cache.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than the reader's cap and was cut.
    pub truncated: bool,
    /// Answered from the cache without a request.
    pub from_cache: bool,
}

impl Response {
    pub fn json(&self) -> Result<Value, ApiError> {
        if self.truncated {
            return Err(ApiError::new(
                ApiErrorKind::BadResponse,
                format!(
                    "the server's JSON answer is larger than {MAX_BODY_BYTES} bytes and was not read"
                ),
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            let what = if e.is_eof() {
                "truncated"
            } else {
                "malformed"
            };
            ApiError::new(
                ApiErrorKind::BadResponse,
                format!(
                    "the server answered with {what} JSON ({} bytes, {e}); the API or a proxy in between is misbehaving, try again later",
                    self.body.len()
                ),
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One page of a collection, and the opaque position of the next one.
#[derive(Debug)]
pub struct Page {
    pub values: Vec<Value>,
    /// Cloud: the `next` link relative to the API root; Data Center: `nextPageStart`.
    pub next: Option<String>,
}

/// A REST client for one provider.
#[derive(Debug)]
pub struct Client {
    pub name: String,
    pub flavor: Flavor,
    api_root: Url,
    auth_type: Option<AuthType>,
    credential: Option<Credential>,
    http: reqwest::Client,
    budget: Budget,
    cache: Mutex<HashMap<String, Cached>>,
    opts: Options,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cached")
    }
}

/// Characters escaped in one path segment (a slug, a branch, a UUID with braces).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'[')
    .add(b']')
    .add(b'^')
    .add(b'|')
    .add(b'\\');

/// `s` escaped as one URL path segment.
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Characters escaped in a query value.
const QUERY: &AsciiSet = &SEGMENT.add(b'&').add(b'=').add(b'+').add(b';');

/// `k=v&k=v`, values escaped.
pub fn query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Client {
    /// The client for provider `name` of the spec, with its credential resolved from `secrets`.
    pub fn new(
        name: &str,
        provider: &Provider,
        secrets: &ResolvedSecrets,
        opts: Options,
    ) -> Result<Client, ApiError> {
        let config = |m: String| ApiError::new(ApiErrorKind::Invalid, m);
        let flavor = match provider.kind {
            ProviderKind::Cloud => Flavor::Cloud {
                workspace: provider.workspace.clone().ok_or_else(|| {
                    config(format!("provider `{name}` (cloud) has no `workspace`; add the workspace slug to the spec"))
                })?,
            },
            ProviderKind::Datacenter => Flavor::DataCenter {
                project: provider.project.clone().ok_or_else(|| {
                    config(format!("provider `{name}` (datacenter) has no `project`; add the project key to the spec"))
                })?,
            },
        };
        let root = match (&provider.api_url, provider.kind, &provider.base_url) {
            (Some(u), ProviderKind::Datacenter, _) => {
                // `{base}/rest/api/1.0` is a common way to write it; the client wants `{base}/rest`.
                let u = u.trim_end_matches('/');
                u.strip_suffix("/api/1.0")
                    .or_else(|| u.strip_suffix("/api/latest"))
                    .unwrap_or(u)
                    .to_string()
            }
            (Some(u), ProviderKind::Cloud, _) => u.trim_end_matches('/').to_string(),
            (None, ProviderKind::Cloud, _) => CLOUD_API.to_string(),
            (None, ProviderKind::Datacenter, Some(b)) => {
                format!("{}/rest", b.trim_end_matches('/'))
            }
            (None, ProviderKind::Datacenter, None) => {
                return Err(config(format!(
                    "provider `{name}` (datacenter) has no `base_url`; add the server's URL to the spec"
                )));
            }
        };
        let api_root = Url::parse(&root)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                config(format!(
                    "provider `{name}`: API root `{root}` is not an http(s) URL; fix `api_url`/`base_url` in the spec"
                ))
            })?;
        let (auth_type, credential) = credential(name, provider, secrets)?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(opts.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("agentenv/", env!("CARGO_PKG_VERSION")));
        if api_root
            .host_str()
            .is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]")
        {
            // A loopback server (emulator, local proxy) must never go through a system proxy.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| {
            ApiError::new(
                ApiErrorKind::Unavailable,
                format!("cannot set up HTTP: {e}"),
            )
        })?;
        let per_hour = provider
            .rate_limit
            .as_ref()
            .map(|r| r.per_hour)
            .unwrap_or(DEFAULT_PER_HOUR);
        Ok(Client {
            name: name.to_string(),
            flavor,
            api_root,
            auth_type,
            credential,
            http,
            budget: Budget::per_hour(per_hour),
            cache: Mutex::new(HashMap::new()),
            opts,
        })
    }

    /// Replace the budget (tests use a short window).
    pub fn with_budget(mut self, budget: Budget) -> Client {
        self.budget = budget;
        self
    }

    pub fn is_cloud(&self) -> bool {
        matches!(self.flavor, Flavor::Cloud { .. })
    }

    /// Requests still available in the current budget window.
    pub fn budget_remaining(&self) -> u32 {
        self.budget.remaining()
    }

    /// The API root as configured, for messages.
    pub fn api_root(&self) -> &str {
        self.api_root.as_str()
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        let base = self.api_root.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).map_err(|e| {
            ApiError::new(
                ApiErrorKind::Invalid,
                format!("cannot build a URL for `{path}`: {e}"),
            )
        })
    }

    fn same_origin(&self, u: &Url) -> bool {
        u.scheme() == self.api_root.scheme()
            && u.host_str() == self.api_root.host_str()
            && u.port_or_known_default() == self.api_root.port_or_known_default()
    }

    /// GET `path` (relative to the API root, starting with `/`, query included) as JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value, ApiError> {
        self.get(path, "application/json", MAX_BODY_BYTES)
            .await?
            .json()
    }

    /// GET `path`, reading at most `max_bytes` of the body (the rest is dropped, `truncated` set).
    pub async fn get(
        &self,
        path: &str,
        accept: &str,
        max_bytes: usize,
    ) -> Result<Response, ApiError> {
        let url = self.url(path)?;
        self.fetch(url, accept, max_bytes).await
    }

    /// One page of a collection at `endpoint` (a path without query) with `params`, `limit` items
    /// per page, from `cursor` (a [`Page::next`] of an earlier call on the same endpoint).
    pub async fn page(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, ApiError> {
        let bad_cursor = || {
            ApiError::new(
                ApiErrorKind::Invalid,
                "invalid cursor: pass the `next_cursor` of the previous page unchanged, with the same other arguments",
            )
        };
        match &self.flavor {
            Flavor::Cloud { .. } => {
                let path = match cursor {
                    // A cursor is the server's own `next` link. It came back from an agent, so it
                    // must still address this endpoint: otherwise a forged cursor could reach a
                    // repository the scope check never saw.
                    Some(c) => {
                        let rest = c.strip_prefix(endpoint).ok_or_else(bad_cursor)?;
                        if !(rest.is_empty() || rest.starts_with('?')) || c.contains("..") {
                            return Err(bad_cursor());
                        }
                        c.to_string()
                    }
                    None => {
                        let mut p = params.to_vec();
                        p.push(("pagelen", limit.to_string()));
                        format!("{endpoint}?{}", query(&p))
                    }
                };
                let v = self.get_json(&path).await?;
                let values = values_of(&v, "values")?;
                let next = match v.get("next").and_then(Value::as_str) {
                    None => None,
                    Some(n) => Some(self.relative_next(n)?),
                };
                Ok(Page { values, next })
            }
            Flavor::DataCenter { .. } => {
                let start: u64 = match cursor {
                    Some(c) => c.parse().map_err(|_| bad_cursor())?,
                    None => 0,
                };
                let mut p = params.to_vec();
                p.push(("start", start.to_string()));
                p.push(("limit", limit.to_string()));
                let v = self.get_json(&format!("{endpoint}?{}", query(&p))).await?;
                let values = values_of(&v, "values")?;
                let last = v.get("isLastPage").and_then(Value::as_bool).unwrap_or(true);
                let next = match v.get("nextPageStart").and_then(Value::as_u64) {
                    Some(n) if !last && n > start => Some(n.to_string()),
                    _ => None,
                };
                Ok(Page { values, next })
            }
        }
    }

    /// A Cloud `next` link as a path relative to the API root, refused when it leaves the API.
    fn relative_next(&self, next: &str) -> Result<String, ApiError> {
        let off = || {
            ApiError::new(
                ApiErrorKind::BadResponse,
                "the server's `next` page link points outside the API root; refusing to follow it with credentials",
            )
        };
        let u = Url::parse(next).map_err(|_| off())?;
        if !self.same_origin(&u) {
            return Err(off());
        }
        let root_path = self.api_root.path().trim_end_matches('/');
        let rel = u.path().strip_prefix(root_path).ok_or_else(off)?;
        if !rel.starts_with('/') {
            return Err(off());
        }
        Ok(match u.query() {
            Some(q) => format!("{rel}?{q}"),
            None => rel.to_string(),
        })
    }

    /// The request loop: cache, budget, redirects, retries, status → typed error.
    async fn fetch(&self, url: Url, accept: &str, max_bytes: usize) -> Result<Response, ApiError> {
        let key = format!("{accept} {url}");
        let cached = self.cached(&key);
        if let Some(c) = &cached
            && c.at.elapsed() < self.opts.cache_ttl
        {
            let mut r = c.response.clone();
            r.from_cache = true;
            return Ok(r);
        }
        let etag = cached.as_ref().and_then(|c| c.etag.clone());
        let mut attempt = 0u32;
        loop {
            let outcome = self
                .send_following(url.clone(), accept, etag.as_deref(), max_bytes)
                .await;
            let retry_wait = match outcome {
                Ok((r, _)) if r.status == 304 => match &cached {
                    Some(c) => {
                        let mut fresh = c.clone();
                        fresh.at = Instant::now();
                        let r = fresh.response.clone();
                        self.store(&key, fresh);
                        return Ok(r);
                    }
                    None => {
                        return Err(ApiError::new(
                            ApiErrorKind::BadResponse,
                            "the server answered 304 Not Modified to a request that was not conditional",
                        ));
                    }
                },
                Ok((r, etag)) if (200..300).contains(&r.status) => {
                    if !r.truncated && r.body.len() <= MAX_CACHED_BYTES {
                        self.store(
                            &key,
                            Cached {
                                at: Instant::now(),
                                etag,
                                response: r.response.clone(),
                            },
                        );
                    }
                    return Ok(r.into());
                }
                Ok((r, _)) => {
                    let retryable = r.status == 429 || (500..600).contains(&r.status);
                    if !retryable || attempt >= self.opts.max_retries {
                        return Err(self.status_error(&r, r.retry_after));
                    }
                    match r.retry_after {
                        Some(wait) if wait > self.opts.max_wait => {
                            return Err(self.status_error(&r, Some(wait)));
                        }
                        Some(wait) => wait,
                        None => self.backoff(attempt),
                    }
                }
                Err(e)
                    if e.kind == ApiErrorKind::Unavailable && attempt < self.opts.max_retries =>
                {
                    self.backoff(attempt)
                }
                Err(e) => return Err(e),
            };
            attempt += 1;
            tokio::time::sleep(retry_wait).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.opts.backoff.saturating_mul(1 << attempt.min(10));
        // Jitter keeps several agents that hit the limit together from retrying in lockstep.
        let jitter = rand::random_range(0.0..0.5);
        base + base.mul_f64(jitter)
    }

    fn cached(&self, key: &str) -> Option<Cached> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn store(&self, key: &str, c: Cached) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: expired entries go first, and past a size everything does.
        if cache.len() > 512 {
            let ttl = self.opts.cache_ttl;
            cache.retain(|_, v| v.at.elapsed() < ttl);
            if cache.len() > 512 {
                cache.clear();
            }
        }
        cache.insert(key.to_string(), c);
    }

    /// Send one GET, following redirects by hand: the credential goes only to the API's own
    /// origin, never to the host a redirect points at (object storage for step logs).
    async fn send_following(
        &self,
        mut url: Url,
        accept: &str,
        etag: Option<&str>,
        max_bytes: usize,
    ) -> Result<(RawResponse, Option<String>), ApiError> {
        for hop in 0..=MAX_REDIRECTS {
            let own = self.same_origin(&url);
            if own {
                self.budget.take().map_err(|wait| {
                    ApiError::rate_limited(
                        format!(
                            "the request budget of provider `{}` is spent (rate_limit.per_hour); no request was sent",
                            self.name
                        ),
                        wait,
                    )
                })?;
            }
            let mut req = self.http.get(url.clone()).header("Accept", accept);
            if own && let Some(c) = &self.credential {
                req = req.header("Authorization", c.0.as_str());
            }
            if hop == 0
                && let Some(e) = etag
            {
                req = req.header("If-None-Match", e);
            }
            let resp = req.send().await.map_err(|e| transport(&e))?;
            let status = resp.status().as_u16();
            if (300..400).contains(&status) && status != 304 {
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        ApiError::new(
                            ApiErrorKind::BadResponse,
                            format!("the server answered {status} without a Location"),
                        )
                    })?;
                let next = url.join(location).map_err(|_| {
                    ApiError::new(
                        ApiErrorKind::BadResponse,
                        format!("the server redirected ({status}) to an invalid URL"),
                    )
                })?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(ApiError::new(
                        ApiErrorKind::BadResponse,
                        format!("the server redirected ({status}) to a non-HTTP URL"),
                    ));
                }
                url = next;
                continue;
            }
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let content_type = header("content-type");
            let etag = header("etag");
            let retry_after = header("retry-after").and_then(|v| parse_retry_after(&v));
            let (body, truncated) = read_capped(resp, max_bytes).await?;
            return Ok((
                RawResponse {
                    status,
                    retry_after,
                    response: Response {
                        status,
                        content_type,
                        body,
                        truncated,
                        from_cache: false,
                    },
                },
                etag,
            ));
        }
        Err(ApiError::new(
            ApiErrorKind::BadResponse,
            format!("more than {MAX_REDIRECTS} redirects; giving up"),
        ))
    }

    fn status_error(&self, r: &RawResponse, retry_after: Option<Duration>) -> ApiError {
        let body = &r.response.body;
        let said = error::server_message(body)
            .map(|m| format!(" (server said: {m})"))
            .unwrap_or_default();
        let cloud = self.is_cloud();
        match r.status {
            401 if !cloud
                && error::dc_exception(body)
                    .is_some_and(|e| e.ends_with("AuthorisationException")) =>
            {
                // Data Center answers 401, not 403, when the credential is fine but lacks permission.
                ApiError::new(
                    ApiErrorKind::Forbidden,
                    format!(
                        "the token of provider `{}` is valid but not permitted to read this{said}; it needs at least REPO_READ on the repository (PROJECT_READ to list a project)",
                        self.name
                    ),
                )
            }
            401 => ApiError::new(
                ApiErrorKind::AuthFailed,
                format!(
                    "Bitbucket rejected the credential of provider `{}` (401){said}; {}",
                    self.name,
                    error::auth_fix(self.auth_type, cloud)
                ),
            ),
            403 => {
                let scopes = error::required_scopes(body);
                let need = if scopes.is_empty() {
                    "check the token's scopes or permissions".to_string()
                } else {
                    format!(
                        "the token lacks the scope {}; create a token with it and run `agentenv secret update`",
                        scopes.join(", ")
                    )
                };
                ApiError::new(
                    ApiErrorKind::Forbidden,
                    format!(
                        "Bitbucket refused access with the credential of provider `{}` (403){said}; {need}",
                        self.name
                    ),
                )
            }
            404 => ApiError::new(ApiErrorKind::NotFound, format!("not found (404){said}")),
            429 => {
                let wait = retry_after.unwrap_or(Duration::from_secs(60));
                ApiError::rate_limited(
                    format!(
                        "Bitbucket is rate-limiting provider `{}` (429) after {} retries; try again in {}s",
                        self.name,
                        self.opts.max_retries,
                        wait.as_secs().max(1)
                    ),
                    wait,
                )
            }
            s if s >= 500 => ApiError::new(
                ApiErrorKind::Unavailable,
                format!("Bitbucket answered {s}{said}; try again later"),
            ),
            s => ApiError::new(
                ApiErrorKind::Invalid,
                format!("Bitbucket refused the request ({s}){said}"),
            ),
        }
    }
}

struct RawResponse {
    status: u16,
    retry_after: Option<Duration>,
    response: Response,
}

impl std::ops::Deref for RawResponse {
    type Target = Response;
    fn deref(&self) -> &Response {
        &self.response
    }
}

impl From<RawResponse> for Response {
    fn from(r: RawResponse) -> Response {
        r.response
    }
}

/// `reqwest` errors carry the URL, which holds no credential; the message is kept short.
fn transport(e: &reqwest::Error) -> ApiError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection dropped mid-response"
    } else {
        // Headers cut off or the connection reset before a complete answer.
        "the connection dropped before a complete response"
    };
    let host = e
        .url()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    ApiError::new(
        ApiErrorKind::Unavailable,
        format!("{what} talking to {host}; try again later"),
    )
}

async fn read_capped(
    mut resp: reqwest::Response,
    max_bytes: usize,
) -> Result<(Vec<u8>, bool), ApiError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = max_bytes.saturating_sub(body.len());
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return Ok((body, true));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok((body, false)),
            Err(e) => {
                let host = e
                    .url()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default();
                return Err(ApiError::new(
                    ApiErrorKind::Unavailable,
                    format!("the connection to {host} dropped mid-response; try again later"),
                ));
            }
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare on APIs and read as absent).
fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `values` of a page, or a typed error when the page is not shaped like one.
fn values_of(v: &Value, key: &str) -> Result<Vec<Value>, ApiError> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                ApiErrorKind::BadResponse,
                format!(
                    "the server's page has no `{key}` list; the API answered in an unexpected shape"
                ),
            )
        })
}

/// The provider's credential as an `Authorization` value.
fn credential(
    name: &str,
    provider: &Provider,
    secrets: &ResolvedSecrets,
) -> Result<(Option<AuthType>, Option<Credential>), ApiError> {
    let Some(auth) = &provider.auth else {
        return Ok((None, None));
    };
    let auth_err = |m: String| ApiError::new(ApiErrorKind::AuthFailed, m);
    let token = || -> Result<&str, ApiError> {
        let secret = auth.token.as_deref().ok_or_else(|| {
            auth_err(format!(
                "provider `{name}`: `auth.token` is missing; set it to the NAME of the secret holding the token"
            ))
        })?;
        secrets.get(secret).ok_or_else(|| {
            auth_err(format!(
                "provider `{name}`: secret `{secret}` is not available; create it with `agentenv secret create`"
            ))
        })
    };
    let rule = crate::providers::rule(provider.kind, auth.kind)
        .map_err(|r| auth_err(format!("provider `{name}`: {}; {}", r.message, r.hint)))?;
    let value = match rule.rest {
        RestForm::BasicEmailToken => {
            let email = auth.email.as_deref().ok_or_else(|| {
                auth_err(format!(
                    "provider `{name}`: an api-token needs `auth.email` (the Atlassian account email) for the REST API"
                ))
            })?;
            let pair = Zeroizing::new(format!("{email}:{}", token()?));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
            )
        }
        RestForm::Bearer => format!("Bearer {}", token()?),
    };
    Ok((Some(auth.kind), Some(Credential(Zeroizing::new(value)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_queries_are_escaped() {
        assert_eq!(seg("{ab-1}"), "%7Bab-1%7D");
        assert_eq!(seg("release/1.0"), "release%2F1.0");
        assert_eq!(
            query(&[("q", "a=b&c".into()), ("n", "1".into())]),
            "q=a%3Db%26c&n=1"
        );
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
