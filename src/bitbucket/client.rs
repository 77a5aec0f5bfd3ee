//! The transport under every call: one GET through the request budget and a short cache
//! revalidated with ETags, redirects followed by hand so that the credential never leaves the
//! API's origin, bounded retries with jittered back-off on 429/5xx/dropped connections, bodies
//! read up to a cap, and every failed answer turned into a typed [`ApiError`]. It knows
//! nothing of Bitbucket's JSON: `cloud.rs` and `datacenter.rs` build paths and read bodies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::Url;
use serde_json::Value;

use super::error;
use super::{ApiError, ApiErrorKind, Budget, Credential, Cursor, DEFAULT_PER_HOUR};
use crate::providers::RestForm;
use crate::spec::{AuthType, ProviderKind};

/// Redirect hops followed before giving up (Bitbucket uses one: diffstat, step logs).
const MAX_REDIRECTS: usize = 5;
/// Bodies larger than this are not read further: JSON pages are far smaller, logs are capped.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Only small bodies are cached, so that the cache stays small.
const MAX_CACHED_BYTES: usize = 512 * 1024;

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

/// A response as the transport hands it over: after redirects, retries and the cache.
#[derive(Debug, Clone)]
pub(crate) struct Response {
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

    /// Whether the server labelled the body JSON.
    pub(crate) fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|c| c.trim_start().starts_with("application/json"))
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

/// A path of several segments (`release/1.0`, `src/main.rs`), each escaped, `/` kept.
pub(crate) fn segs(path: &str) -> String {
    path.split('/').map(seg).collect::<Vec<_>>().join("/")
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

/// `path?query`, or `path` alone when there are no parameters.
pub(crate) fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query(pairs))
    }
}

#[derive(Clone)]
struct Cached {
    at: Instant,
    etag: Option<String>,
    response: Response,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cached")
    }
}

/// One provider's connection to its API root.
#[derive(Debug)]
pub(crate) struct Transport {
    /// The provider's name, for messages.
    pub name: String,
    product: ProviderKind,
    api_root: Url,
    credential: Option<Credential>,
    http: reqwest::Client,
    pub budget: Budget,
    cache: Mutex<HashMap<String, Cached>>,
    opts: Options,
}

impl Transport {
    pub fn new(
        name: &str,
        product: ProviderKind,
        api_root: Url,
        credential: Option<Credential>,
        opts: Options,
    ) -> Result<Transport, ApiError> {
        if !matches!(api_root.scheme(), "http" | "https") || api_root.host().is_none() {
            return Err(ApiError::new(
                ApiErrorKind::Invalid,
                format!("provider `{name}`: API root `{api_root}` is not an http(s) URL"),
            ));
        }
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
        Ok(Transport {
            name: name.to_string(),
            product,
            api_root,
            credential,
            http,
            budget: Budget::per_hour(DEFAULT_PER_HOUR),
            cache: Mutex::new(HashMap::new()),
            opts,
        })
    }

    pub fn api_root(&self) -> &Url {
        &self.api_root
    }

    fn is_cloud(&self) -> bool {
        self.product == ProviderKind::Cloud
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

    /// A Cloud `next` link as a cursor relative to the API root, refused when it leaves the API:
    /// the client would otherwise send the credential wherever a server's answer points.
    pub fn cloud_next(&self, next: Cursor) -> Result<Cursor, ApiError> {
        let off = || {
            ApiError::new(
                ApiErrorKind::BadResponse,
                "the server's `next` page link points outside the API root; refusing to follow it with credentials",
            )
        };
        let u = Url::parse(next.as_str()).map_err(|_| off())?;
        if !self.same_origin(&u) {
            return Err(off());
        }
        let root_path = self.api_root.path().trim_end_matches('/');
        let rel = u.path().strip_prefix(root_path).ok_or_else(off)?;
        if !rel.starts_with('/') {
            return Err(off());
        }
        Ok(Cursor::from(match u.query() {
            Some(q) => format!("{rel}?{q}"),
            None => rel.to_string(),
        }))
    }

    /// The path a Cloud cursor asks for, if it still addresses `endpoint` (exactly, or with
    /// `under`, any path below it: a pull request's diffstat pages live under the repository's
    /// `/diffstat/` after a redirect). A cursor comes back from an agent: a forged one must not
    /// reach a repository the scope check never saw.
    pub fn cloud_cursor_path(
        &self,
        cursor: &Cursor,
        endpoint: &str,
        under: bool,
    ) -> Result<String, ApiError> {
        let c = cursor.as_str();
        let (path, _) = c.split_once('?').unwrap_or((c, ""));
        let lower = path.to_ascii_lowercase();
        // Escaped dots and slashes could be decoded into `..` or `/` by a server or proxy
        // after this check; nothing the API links to needs them.
        if lower.contains("%2e") || lower.contains("%2f") || path.contains(['\\', '#']) {
            return Err(super::page::invalid_cursor());
        }
        // Resolve `.` and `..` segments the way the HTTP library will before comparing.
        let resolved = self.url(c).map_err(|_| super::page::invalid_cursor())?;
        let root_path = self.api_root.path().trim_end_matches('/');
        let rel = resolved
            .path()
            .strip_prefix(root_path)
            .ok_or_else(super::page::invalid_cursor)?;
        let ok = if under {
            endpoint.ends_with('/') && rel.starts_with(endpoint) && rel.len() > endpoint.len()
        } else {
            rel == endpoint
        };
        if !ok || rel != path {
            return Err(super::page::invalid_cursor());
        }
        Ok(c.to_string())
    }

    /// The request loop: cache, budget, redirects, retries, status → typed error.
    async fn fetch(&self, url: Url, accept: &str, max_bytes: usize) -> Result<Response, ApiError> {
        let key = format!("{accept} {url}");
        let cached = self.cached(&key);
        if let Some(c) = &cached
            && c.at.elapsed() < self.opts.cache_ttl
        {
            let mut r = capped(c.response.clone(), max_bytes);
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
                        let r = capped(fresh.response.clone(), max_bytes);
                        self.store(&key, fresh);
                        return Ok(r);
                    }
                    None => {
                        return Err(ApiError::new(
                            ApiErrorKind::BadResponse,
                            "the server answered 304 Not Modified to a request that was not conditional",
                        )
                        .answered(304, None));
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
                    return Ok(r.response);
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
                req = req.header("Authorization", c.header());
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
                        .answered(status, None)
                    })?;
                let next = url.join(location).map_err(|_| {
                    ApiError::new(
                        ApiErrorKind::BadResponse,
                        format!("the server redirected ({status}) to an invalid URL"),
                    )
                    .answered(status, None)
                })?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(ApiError::new(
                        ApiErrorKind::BadResponse,
                        format!("the server redirected ({status}) to a non-HTTP URL"),
                    )
                    .answered(status, None));
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

    /// What to do when the server refuses this provider's credential (401).
    fn rejected_hint(&self) -> &'static str {
        match &self.credential {
            None => crate::providers::NO_AUTH_HINT,
            Some(c) => rejected_hint(self.product, c.form()),
        }
    }

    fn status_error(&self, r: &RawResponse, retry_after: Option<Duration>) -> ApiError {
        let body = &r.response.body;
        let server = error::server_message(body);
        let said = server
            .as_deref()
            .map(|m| format!(" (server said: {m})"))
            .unwrap_or_default();
        let e = match r.status {
            401 if !self.is_cloud()
                && error::dc_exception(body)
                    .is_some_and(|e| e.ends_with("AuthorisationException")) =>
            {
                // Data Center answers 401, not 403, when the credential is fine but lacks permission.
                ApiError::new(
                    ApiErrorKind::Forbidden,
                    format!(
                        "the token of provider `{}` is valid but not permitted to read this{said}",
                        self.name
                    ),
                )
                .with_hint(
                    "it needs at least REPO_READ on the repository (PROJECT_READ to list a project)",
                )
            }
            401 => ApiError::new(
                ApiErrorKind::AuthFailed,
                format!(
                    "Bitbucket rejected the credential of provider `{}` (401){said}",
                    self.name,
                ),
            )
            .with_hint(self.rejected_hint()),
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
                        "Bitbucket refused access with the credential of provider `{}` (403){said}",
                        self.name
                    ),
                )
                .with_hint(need)
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
        };
        e.answered(r.status, server)
    }
}

/// The auth table's fix for a credential of `form` on `product` that the server rejected.
fn rejected_hint(product: ProviderKind, form: RestForm) -> &'static str {
    use AuthType::*;
    // Every auth type, so that the lookup covers the whole table: the match below stops
    // compiling when a type is added, as a reminder to list it here.
    let all = [
        ApiToken,
        AccessToken,
        HttpAccessToken,
        OauthClientCredentials,
        AppPassword,
    ];
    for t in all {
        match t {
            ApiToken | AccessToken | HttpAccessToken | OauthClientCredentials | AppPassword => {}
        }
    }
    all.into_iter()
        .filter_map(|t| crate::providers::rule(product, t).ok())
        .find(|r| r.rest == form)
        .map(|r| r.rejected_hint)
        .unwrap_or("the credential was rejected; check the provider's `auth:` in the spec")
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

/// A cached answer cut to what this caller reads: the entry may have been stored by a caller
/// that read more (cached bodies are always whole).
fn capped(mut r: Response, max_bytes: usize) -> Response {
    if r.body.len() > max_bytes {
        r.body.truncate(max_bytes);
        r.truncated = true;
    }
    r
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_queries_are_escaped() {
        assert_eq!(seg("{ab-1}"), "%7Bab-1%7D");
        assert_eq!(seg("release/1.0"), "release%2F1.0");
        assert_eq!(segs("release/1.0"), "release/1.0");
        assert_eq!(segs("a b/c?"), "a%20b/c%3F");
        assert_eq!(
            query(&[("q", "a=b&c".into()), ("n", "1".into())]),
            "q=a%3Db%26c&n=1"
        );
        assert_eq!(with_query("/x", &[]), "/x");
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn a_rejected_credential_gets_the_fix_of_its_row_in_the_auth_table() {
        let api = crate::providers::rule(ProviderKind::Cloud, AuthType::ApiToken).unwrap();
        assert_eq!(
            rejected_hint(ProviderKind::Cloud, RestForm::BasicEmailToken),
            api.rejected_hint
        );
        let access = crate::providers::rule(ProviderKind::Cloud, AuthType::AccessToken).unwrap();
        assert_eq!(
            rejected_hint(ProviderKind::Cloud, RestForm::Bearer),
            access.rejected_hint
        );
        let dc =
            crate::providers::rule(ProviderKind::Datacenter, AuthType::HttpAccessToken).unwrap();
        assert_eq!(
            rejected_hint(ProviderKind::Datacenter, RestForm::Bearer),
            dc.rejected_hint
        );
    }

    fn transport(root: &str) -> Transport {
        Transport::new(
            "t",
            ProviderKind::Cloud,
            Url::parse(root).unwrap(),
            None,
            Options::default(),
        )
        .unwrap()
    }

    #[test]
    fn cloud_cursors_must_stay_on_their_endpoint() {
        let t = transport("https://api.example.org/2.0");
        let ok = |c: &str, e: &str| {
            let under = e.ends_with("diffstat/");
            t.cloud_cursor_path(&Cursor::from(c), e, under).is_ok()
        };
        let ep = "/repositories/acme/a/commits/main";
        assert!(ok(&format!("{ep}?page=abc"), ep));
        assert!(ok(ep, ep));
        assert!(ok(
            "/repositories/acme/a/src/abc/?page=x",
            "/repositories/acme/a/src/abc/"
        ));
        for forged in [
            "/repositories/acme/b/commits/main?page=abc",
            "/repositories/acme/a/commits/main/../../../b/commits/main?page=x",
            "/repositories/acme/a/commits/main%2F..%2F..%2Fb?page=x",
            "/repositories/acme/a/commits/mainx?page=x",
            "/repositories/acme/a/commits/main/./?page=x",
            "https://evil.example/2.0/repositories/acme/a/commits/main",
            "//evil.example/2.0/repositories/acme/a/commits/main",
            "",
        ] {
            assert!(!ok(forged, ep), "{forged}");
        }
        // `under` admits what is below the endpoint (diffstat after a redirect).
        let under = "/repositories/acme/a/diffstat/";
        assert!(ok("/repositories/acme/a/diffstat/x..y?page=2", under));
        assert!(!ok("/repositories/acme/a/diffstat/", under));
        assert!(!ok("/repositories/acme/b/diffstat/x..y?page=2", under));
    }

    #[test]
    fn next_links_off_the_api_root_are_refused() {
        let t = transport("https://api.example.org/2.0");
        let rel = t
            .cloud_next(Cursor::from(
                "https://api.example.org/2.0/repositories/a/b/commits?page=x",
            ))
            .unwrap();
        assert_eq!(rel.as_str(), "/repositories/a/b/commits?page=x");
        for off in [
            "https://evil.example/2.0/repositories/a/b",
            "http://api.example.org/2.0/repositories/a/b",
            "https://api.example.org/1.0/repositories/a/b",
            "https://api.example.org/2.0x/repositories",
            "not a url",
        ] {
            let e = t.cloud_next(Cursor::from(off)).unwrap_err();
            assert_eq!(e.kind, ApiErrorKind::BadResponse, "{off}");
        }
    }
}
