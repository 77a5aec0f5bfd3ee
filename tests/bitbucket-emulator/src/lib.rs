//! A loopback Bitbucket for agentenv's tests and benchmarks.
//!
//! One listener serves Bitbucket Cloud REST 2.0 (`/2.0/...`), Cloud git (`/{workspace}/{slug}.git`),
//! Data Center REST (`/rest/api/1.0/...`, `/rest/api/latest/...`, `/rest/build-status/1.0/...`) and
//! Data Center git (`/scm/{PROJECT}/{slug}.git`). A second listener plays the object-storage host
//! that Cloud pipeline step logs redirect to, and records the headers it receives.
//!
//! Git is served by the real `git http-backend`; repository data for the REST API is read from the
//! same repositories with git2. Pull requests, pipelines and build statuses are fixtures the test
//! seeds. Everything is synchronous for the caller: the server runs its own tokio runtime on a
//! background thread and stops when the [`Emulator`] is dropped.

// The Cloud repository object is one large json! literal.
#![recursion_limit = "256"]

mod auth;
mod cloud;
mod dc;
mod fixtures;
mod git_http;
mod gitdata;
mod page;
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use fixtures::{BuildStatus, Pipeline, PipelineStep, PullRequest};

/// What a token is, which decides where and how Bitbucket accepts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Cloud API token: REST as Basic `email:token`; git as Basic with `x-bitbucket-api-token-auth`
    /// or the account's username (never the email).
    CloudApi { email: String, username: String },
    /// Cloud repository/project/workspace access token: REST as Bearer; git as `x-token-auth`.
    /// `workspace`/`repo` restrict it to one workspace or one repository when set.
    CloudAccess {
        workspace: Option<String>,
        repo: Option<String>,
    },
    /// A Cloud app password: always refused, as Bitbucket refuses them since their removal.
    CloudAppPassword { username: String },
    /// Data Center personal HTTP access token: Bearer, or Basic `username:token`.
    DcPersonal { username: String },
    /// Data Center project token: Bearer only, limited to one project.
    DcProject { project: String },
    /// Data Center repository token: Bearer only, limited to one repository.
    DcRepo { project: String, repo: String },
}

/// A credential the emulator accepts (or deliberately refuses: expired, revoked, app password).
#[derive(Clone, Debug)]
pub struct Token {
    /// Name used by the per-token request counters ([`Emulator::count_token`]).
    pub id: String,
    pub secret: String,
    pub kind: TokenKind,
    /// Cloud: `read:repository:bitbucket`-style scopes (never implying each other) or, for access
    /// tokens, OAuth-style `repository`/`pullrequest`/`pipeline`/`account`.
    /// Data Center: `REPO_READ`, `PROJECT_READ`, ... (any read-or-higher grants the read endpoints).
    pub scopes: Vec<String>,
    pub expired: bool,
    pub revoked: bool,
}

impl Token {
    fn new(id: String, secret: &str, kind: TokenKind, scopes: &[&str]) -> Token {
        Token {
            id,
            secret: secret.to_string(),
            kind,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expired: false,
            revoked: false,
        }
    }
    pub fn cloud_api(email: &str, username: &str, secret: &str, scopes: &[&str]) -> Token {
        let kind = TokenKind::CloudApi {
            email: email.into(),
            username: username.into(),
        };
        Token::new(format!("cloud-api:{username}"), secret, kind, scopes)
    }
    pub fn cloud_access(secret: &str, scopes: &[&str]) -> Token {
        let kind = TokenKind::CloudAccess {
            workspace: None,
            repo: None,
        };
        Token::new("cloud-access".into(), secret, kind, scopes)
    }
    pub fn cloud_app_password(username: &str, secret: &str) -> Token {
        let kind = TokenKind::CloudAppPassword {
            username: username.into(),
        };
        Token::new(format!("cloud-app-password:{username}"), secret, kind, &[])
    }
    pub fn dc_personal(username: &str, secret: &str, scopes: &[&str]) -> Token {
        let kind = TokenKind::DcPersonal {
            username: username.into(),
        };
        Token::new(format!("dc-personal:{username}"), secret, kind, scopes)
    }
    pub fn dc_project(project: &str, secret: &str, scopes: &[&str]) -> Token {
        let kind = TokenKind::DcProject {
            project: project.to_uppercase(),
        };
        Token::new(format!("dc-project:{project}"), secret, kind, scopes)
    }
    pub fn dc_repo(project: &str, repo: &str, secret: &str, scopes: &[&str]) -> Token {
        let kind = TokenKind::DcRepo {
            project: project.to_uppercase(),
            repo: repo.into(),
        };
        Token::new(format!("dc-repo:{project}/{repo}"), secret, kind, scopes)
    }
    /// Restricts a Cloud access token to a workspace (and optionally one repository).
    pub fn limited_to(mut self, workspace: &str, repo: Option<&str>) -> Token {
        if let TokenKind::CloudAccess {
            workspace: w,
            repo: r,
        } = &mut self.kind
        {
            *w = Some(workspace.to_string());
            *r = repo.map(str::to_string);
        }
        self
    }
    pub fn with_id(mut self, id: &str) -> Token {
        self.id = id.to_string();
        self
    }
    pub fn expired(mut self) -> Token {
        self.expired = true;
        self
    }
    pub fn revoked(mut self) -> Token {
        self.revoked = true;
        self
    }

    /// Parses the binary's `--token` argument: `cloud-api:EMAIL:USERNAME:SECRET[:SCOPES]`
    /// (or `cloud-api:EMAIL:SECRET[:SCOPES]`, username = the email's local part),
    /// `cloud-access:SECRET[:SCOPES]`, `dc-personal:USERNAME:SECRET[:SCOPES]`,
    /// `dc-project:PROJECT:SECRET[:SCOPES]`, `dc-repo:PROJECT/REPO:SECRET[:SCOPES]`
    /// (SCOPES comma-separated; they may contain colons).
    pub fn parse(text: &str) -> Result<Token, String> {
        let kind = text.split(':').next().unwrap_or("");
        let bad = || {
            format!(
                "bad --token value (kind `{kind}`): expected cloud-api:EMAIL:USERNAME:SECRET[:SCOPES], \
                 cloud-access:SECRET[:SCOPES], dc-personal:USERNAME:SECRET[:SCOPES], \
                 dc-project:PROJECT:SECRET[:SCOPES] or dc-repo:PROJECT/REPO:SECRET[:SCOPES]"
            )
        };
        // Scopes themselves contain colons (`read:repository:bitbucket`), so they are the rest.
        let fields = match kind {
            // Short form cloud-api:EMAIL:SECRET[:SCOPES]: what follows the secret is a scope.
            "cloud-api" if short_cloud_api(text) => {
                let parts: Vec<&str> = text.splitn(4, ':').collect();
                let (email, secret) = match parts.as_slice() {
                    [_, e, s, ..] if !e.is_empty() && !s.is_empty() => (*e, *s),
                    _ => return Err(bad()),
                };
                let username = email.split('@').next().unwrap_or(email);
                let scopes = parts.get(3).map_or_else(Vec::new, |s| split_scopes(s));
                return Ok(Token::cloud_api(email, username, secret, &[]).scoped(scopes));
            }
            "cloud-api" => 3,
            "cloud-access" => 1,
            "dc-personal" | "dc-project" | "dc-repo" => 2,
            _ => return Err(bad()),
        };
        let parts: Vec<&str> = text.splitn(fields + 2, ':').collect();
        if parts.len() < fields + 1 || parts[1..=fields].iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let scopes = parts
            .get(fields + 1)
            .map_or_else(Vec::new, |s| split_scopes(s));
        let token = match parts[..=fields] {
            [_, email, user, secret] => Token::cloud_api(email, user, secret, &[]),
            [_, secret] => Token::cloud_access(secret, &[]),
            ["dc-personal", user, secret] => Token::dc_personal(user, secret, &[]),
            ["dc-project", project, secret] => Token::dc_project(project, secret, &[]),
            [_, pr, secret] => {
                let (project, repo) = pr.split_once('/').ok_or_else(bad)?;
                Token::dc_repo(project, repo, secret, &[])
            }
            _ => return Err(bad()),
        };
        Ok(token.scoped(scopes))
    }
    pub fn scoped(mut self, scopes: Vec<String>) -> Token {
        self.scopes = scopes;
        self
    }
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// `cloud-api:EMAIL:SECRET[:SCOPES]` rather than `cloud-api:EMAIL:USERNAME:SECRET[:SCOPES]`:
/// the fourth field is absent or starts a scope, which no secret looks like.
fn short_cloud_api(text: &str) -> bool {
    const SCOPE_STARTS: &[&str] = &[
        "read",
        "write",
        "admin",
        "delete",
        "repository",
        "pullrequest",
        "pipeline",
        "account",
        "project",
        "webhook",
        "issue",
        "wiki",
        "snippet",
        "email",
        "runner",
    ];
    let parts: Vec<&str> = text.splitn(5, ':').collect();
    match parts.get(3) {
        None => true,
        Some(f) => {
            let first = f.split(',').next().unwrap_or("");
            SCOPE_STARTS.contains(&first) || f.contains(',')
        }
    }
}

/// Initial settings; everything here can also be changed on a running [`Emulator`].
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Allow unauthenticated reads (public repositories): plain `http://` clones, benchmarks.
    pub anonymous: bool,
    pub tokens: Vec<Token>,
    /// `(workspace, slug, path)`
    pub cloud_repos: Vec<(String, String, PathBuf)>,
    /// `(PROJECT, slug, path)`
    pub dc_repos: Vec<(String, String, PathBuf)>,
}

impl Config {
    pub fn anonymous(mut self, yes: bool) -> Config {
        self.anonymous = yes;
        self
    }
    pub fn token(mut self, token: Token) -> Config {
        self.tokens.push(token);
        self
    }
    pub fn cloud_repo(mut self, workspace: &str, slug: &str, path: impl AsRef<Path>) -> Config {
        self.cloud_repos
            .push((workspace.into(), slug.into(), path.as_ref().to_path_buf()));
        self
    }
    pub fn dc_repo(mut self, project: &str, slug: &str, path: impl AsRef<Path>) -> Config {
        self.dc_repos
            .push((project.into(), slug.into(), path.as_ref().to_path_buf()));
        self
    }
}

/// One request as the emulator saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Route template, e.g. `GET /2.0/repositories/{workspace}/{repo_slug}/commits`.
    pub route: String,
    /// `Token::id` of the credential that authenticated the request, if any.
    pub token: Option<String>,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// Response body bytes sent so far (complete once the client has read the response).
    pub body_bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl RecordedRequest {
    /// Response body bytes sent.
    pub fn bytes_sent(&self) -> u64 {
        self.body_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug)]
pub(crate) enum FaultKind {
    Status(u16),
    /// Send this many body bytes, then drop the connection.
    Reset(usize),
    /// Answer exactly this, whatever the route would have said.
    Respond {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// 429 in the API's own format, with `Retry-After: secs`.
    RateLimit(u64),
}

#[derive(Clone, Debug)]
pub(crate) struct Fault {
    pattern: String,
    remaining: u32,
    kind: FaultKind,
}

/// A seeded repository.
#[derive(Clone, Debug)]
pub(crate) struct RepoEntry {
    pub owner: String,
    pub slug: String,
    pub path: PathBuf,
    pub uuid: String,
    pub id: u64,
}

#[derive(Default)]
pub(crate) struct State {
    pub anonymous: bool,
    pub tokens: Vec<Token>,
    /// Keyed by (workspace, slug), both lower-cased.
    pub cloud_repos: BTreeMap<(String, String), RepoEntry>,
    /// Keyed by (PROJECT upper-cased, slug lower-cased).
    pub dc_repos: BTreeMap<(String, String), RepoEntry>,
    pub pull_requests: Vec<(String, String, PullRequest)>,
    pub pipelines: Vec<(String, String, Pipeline)>,
    pub build_statuses: Vec<BuildStatus>,
    /// Cloud repositories (workspace, slug; lower-cased) where Pipelines is switched off.
    pub pipelines_disabled: std::collections::BTreeSet<(String, String)>,
    pub faults: Vec<Fault>,
    pub latency: Vec<(String, Duration)>,
    pub log: Vec<RecordedRequest>,
    /// `(owner/slug, wanted commit ids)` of every git fetch, oldest first.
    pub git_wants: Vec<(String, Vec<String>)>,
    pub log_host_log: Vec<RecordedRequest>,
    /// Paths on the log host and the bytes served there.
    pub log_blobs: BTreeMap<String, Vec<u8>>,
    next_id: u64,
}

pub(crate) struct Shared {
    pub base_url: String,
    pub log_host_url: String,
    pub state: Mutex<State>,
}

impl Shared {
    /// Seeded pull requests of one repository (`owner_key` is `cloud:ws` or `dc:PROJ`), newest first.
    pub fn pull_requests(&self, owner_key: &str, slug: &str) -> Vec<PullRequest> {
        let slug = slug.to_lowercase();
        let mut v: Vec<PullRequest> = self
            .lock()
            .pull_requests
            .iter()
            .filter(|(o, s, _)| o == owner_key && *s == slug)
            .map(|(_, _, p)| p.clone())
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.id));
        v
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in one handler must not take every later request down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running emulator; stops and joins its thread on drop.
pub struct Emulator {
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Emulator {
    /// Binds two loopback listeners and returns once both accept connections.
    /// Panics if the loopback ports cannot be bound or a seeded repository does not open:
    /// this is test infrastructure, and a test cannot proceed without it.
    pub fn start(config: Config) -> Emulator {
        Self::try_start(config).unwrap_or_else(|e| panic!("bitbucket-emulator: {e}"))
    }

    pub fn try_start(config: Config) -> Result<Emulator, String> {
        let main = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let logs = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        for l in [&main, &logs] {
            l.set_nonblocking(true)
                .map_err(|e| format!("listener: {e}"))?;
        }
        let port = main.local_addr().map_err(|e| e.to_string())?.port();
        let log_port = logs.local_addr().map_err(|e| e.to_string())?.port();
        let shared = Arc::new(Shared {
            base_url: format!("http://127.0.0.1:{port}"),
            log_host_url: format!("http://127.0.0.1:{log_port}"),
            state: Mutex::new(State {
                anonymous: config.anonymous,
                ..State::default()
            }),
        });
        let emu_shared = shared.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("bitbucket-emulator".into())
            .spawn(move || server::run(emu_shared, main, logs, stop_rx))
            .map_err(|e| format!("thread: {e}"))?;
        let emu = Emulator {
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        for t in config.tokens {
            emu.add_token(t);
        }
        for (w, s, p) in config.cloud_repos {
            emu.try_add_cloud_repo(&w, &s, &p)?;
        }
        for (w, s, p) in config.dc_repos {
            emu.try_add_dc_repo(&w, &s, &p)?;
        }
        Ok(emu)
    }

    /// `http://127.0.0.1:PORT`: Cloud git URL base and Data Center base URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }
    /// `http://127.0.0.1:PORT/2.0`
    pub fn cloud_api_url(&self) -> String {
        format!("{}/2.0", self.shared.base_url)
    }
    /// Cloud git base: clone URLs are `{git_url}/{workspace}/{slug}.git`.
    pub fn git_url(&self) -> String {
        self.shared.base_url.clone()
    }
    pub fn cloud_clone_url(&self, workspace: &str, slug: &str) -> String {
        format!("{}/{workspace}/{slug}.git", self.shared.base_url)
    }
    pub fn dc_base_url(&self) -> String {
        self.shared.base_url.clone()
    }
    pub fn dc_api_url(&self) -> String {
        format!("{}/rest/api/1.0", self.shared.base_url)
    }
    pub fn dc_clone_url(&self, project: &str, slug: &str) -> String {
        format!(
            "{}/scm/{}/{slug}.git",
            self.shared.base_url,
            project.to_lowercase()
        )
    }
    /// The second listener, where Cloud step logs are redirected.
    pub fn log_host_url(&self) -> String {
        self.shared.log_host_url.clone()
    }
    pub fn port(&self) -> u16 {
        self.shared
            .base_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    pub fn set_anonymous(&self, yes: bool) {
        self.shared.lock().anonymous = yes;
    }
    pub fn add_token(&self, token: Token) {
        let mut st = self.shared.lock();
        st.tokens.retain(|t| t.secret != token.secret);
        st.tokens.push(token);
    }
    /// Marks every token with this id revoked (the next request with it gets 401).
    pub fn revoke_token(&self, id: &str) {
        for t in self.shared.lock().tokens.iter_mut().filter(|t| t.id == id) {
            t.revoked = true;
        }
    }

    /// Serves an existing repository (bare or with a work tree) as Cloud `{workspace}/{slug}`.
    pub fn add_cloud_repo(&self, workspace: &str, slug: &str, path: impl AsRef<Path>) {
        self.try_add_cloud_repo(workspace, slug, path.as_ref())
            .unwrap_or_else(|e| panic!("{e}"))
    }
    /// Serves an existing repository as Data Center `{PROJECT}/{slug}`.
    pub fn add_dc_repo(&self, project: &str, slug: &str, path: impl AsRef<Path>) {
        self.try_add_dc_repo(project, slug, path.as_ref())
            .unwrap_or_else(|e| panic!("{e}"))
    }
    fn entry(&self, owner: &str, slug: &str, path: &Path) -> Result<RepoEntry, String> {
        git2::Repository::open(path).map_err(|e| {
            format!(
                "cannot open repository {} for {owner}/{slug}: {}",
                path.display(),
                e.message()
            )
        })?;
        let path = path
            .canonicalize()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut st = self.shared.lock();
        st.next_id += 1;
        let id = st.next_id;
        Ok(RepoEntry {
            owner: owner.to_string(),
            slug: slug.to_string(),
            path,
            uuid: format!("{{{:08x}-0000-4000-8000-{:012x}}}", id as u32 ^ 0x5eed, id),
            id,
        })
    }
    pub fn try_add_cloud_repo(
        &self,
        workspace: &str,
        slug: &str,
        path: &Path,
    ) -> Result<(), String> {
        let e = self.entry(workspace, slug, path)?;
        let key = (workspace.to_lowercase(), slug.to_lowercase());
        self.shared.lock().cloud_repos.insert(key, e);
        Ok(())
    }
    pub fn try_add_dc_repo(&self, project: &str, slug: &str, path: &Path) -> Result<(), String> {
        let e = self.entry(&project.to_uppercase(), slug, path)?;
        let key = (project.to_uppercase(), slug.to_lowercase());
        self.shared.lock().dc_repos.insert(key, e);
        Ok(())
    }

    /// A Cloud pull request on `workspace/slug`. Its commits come from the repository's branches.
    pub fn add_cloud_pull_request(&self, workspace: &str, slug: &str, pr: PullRequest) {
        self.shared.lock().pull_requests.push((
            format!("cloud:{}", workspace.to_lowercase()),
            slug.to_lowercase(),
            pr,
        ));
    }
    /// A Data Center pull request on `PROJECT/slug`.
    pub fn add_dc_pull_request(&self, project: &str, slug: &str, pr: PullRequest) {
        self.shared.lock().pull_requests.push((
            format!("dc:{}", project.to_uppercase()),
            slug.to_lowercase(),
            pr,
        ));
    }
    /// A Cloud pipeline with its steps; step logs are served from the log host.
    pub fn add_pipeline(&self, workspace: &str, slug: &str, pipeline: Pipeline) {
        let mut st = self.shared.lock();
        for step in &pipeline.steps {
            if let Some(log) = &step.log {
                st.log_blobs.insert(
                    fixtures::log_blob_path(&pipeline.uuid, &step.uuid),
                    log.clone(),
                );
            }
        }
        st.pipelines
            .push((workspace.to_lowercase(), slug.to_lowercase(), pipeline));
    }
    /// Switches Bitbucket Pipelines on or off for a Cloud repository (on by default). While it is
    /// off, every `/pipelines` endpoint of the repository answers 404, as Bitbucket does.
    pub fn set_pipelines_enabled(&self, workspace: &str, slug: &str, enabled: bool) {
        let key = (workspace.to_lowercase(), slug.to_lowercase());
        let mut st = self.shared.lock();
        if enabled {
            st.pipelines_disabled.remove(&key);
        } else {
            st.pipelines_disabled.insert(key);
        }
    }
    /// A Data Center build status on a commit.
    pub fn add_build_status(&self, status: BuildStatus) {
        self.shared.lock().build_statuses.push(status);
    }

    /// The next `n` requests whose path or route template matches `pattern` answer `status`
    /// (in the API's own error format: Cloud 429 is the plain-text rate-limit body).
    /// `pattern` is a glob (`*` matches anything, including `/`), optionally prefixed with a
    /// method: `"GET /2.0/repositories/*/commits*"`.
    pub fn fail_next(&self, pattern: &str, n: u32, status: u16) {
        self.shared.lock().faults.push(Fault {
            pattern: pattern.into(),
            remaining: n,
            kind: FaultKind::Status(status),
        });
    }
    /// The next `n` matching requests get exactly this answer (status, `Content-Type`, body)
    /// instead of the route's: malformed or truncated-but-complete JSON, HTML from a proxy, a
    /// body of the wrong shape. Like every fault it is served before authentication.
    pub fn respond_next(
        &self,
        pattern: &str,
        n: u32,
        status: u16,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) {
        self.shared.lock().faults.push(Fault {
            pattern: pattern.into(),
            remaining: n,
            kind: FaultKind::Respond {
                status,
                content_type: content_type.into(),
                body: body.into(),
            },
        });
    }
    /// The next `n` matching requests answer 429 in the API's own format with
    /// `Retry-After: retry_after_secs`, as Data Center's rate limiter does (Cloud's recorded
    /// 429s carry no `Retry-After`: use [`Emulator::fail_next`] with 429 for those).
    pub fn rate_limit_next(&self, pattern: &str, n: u32, retry_after_secs: u64) {
        self.shared.lock().faults.push(Fault {
            pattern: pattern.into(),
            remaining: n,
            kind: FaultKind::RateLimit(retry_after_secs),
        });
    }
    /// The next `n` matching responses send `after_bytes` bytes of body, then drop the connection.
    /// For git, this cuts `git-upload-pack`'s output, i.e. mid-pack for a large enough repository.
    pub fn reset_next(&self, pattern: &str, n: u32, after_bytes: usize) {
        self.shared.lock().faults.push(Fault {
            pattern: pattern.into(),
            remaining: n,
            kind: FaultKind::Reset(after_bytes),
        });
    }
    /// Every matching request waits this long before it is answered (until [`Emulator::clear_faults`]).
    pub fn add_latency(&self, pattern: &str, delay: Duration) {
        self.shared.lock().latency.push((pattern.into(), delay));
    }
    pub fn clear_faults(&self) {
        let mut st = self.shared.lock();
        st.faults.clear();
        st.latency.clear();
    }

    /// Every request the main listener received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }
    /// The commits every git fetch asked for (`want` lines), as `(owner/slug, ids)`, oldest
    /// first: what a client fetched, which the request log alone does not show.
    pub fn git_wants(&self) -> Vec<(String, Vec<String>)> {
        self.shared.lock().git_wants.clone()
    }
    /// Every request the log host received (to assert that credentials never reached it).
    pub fn log_host_requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log_host_log.clone()
    }
    /// Number of requests whose path or route matches the glob `pattern` (see [`Emulator::fail_next`]).
    pub fn count(&self, pattern: &str) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| server::matches(pattern, r))
            .count()
    }
    /// Response body bytes sent for requests whose path or route matches `pattern`: what a
    /// client downloaded (e.g. `POST */git-upload-pack` for the packs of git fetches).
    pub fn bytes_sent(&self, pattern: &str) -> u64 {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| server::matches(pattern, r))
            .map(RecordedRequest::bytes_sent)
            .sum()
    }
    /// Requests per route template.
    pub fn counts_by_route(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in self.shared.lock().log.iter() {
            *m.entry(r.route.clone()).or_default() += 1;
        }
        m
    }
    /// Number of requests authenticated by the token with this id.
    pub fn count_token(&self, id: &str) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.token.as_deref() == Some(id))
            .count()
    }
    pub fn reset_counters(&self) {
        let mut st = self.shared.lock();
        st.log.clear();
        st.log_host_log.clear();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Token, TokenKind};

    #[test]
    fn token_specs_parse_in_both_cloud_api_forms_and_refuse_garbage() {
        let t = Token::parse(
            "cloud-api:a@x.io:alice:S3CRET:read:repository:bitbucket,read:pullrequest:bitbucket",
        )
        .unwrap();
        assert_eq!(
            t.kind,
            TokenKind::CloudApi {
                email: "a@x.io".into(),
                username: "alice".into()
            }
        );
        assert_eq!((t.secret.as_str(), t.scopes.len()), ("S3CRET", 2));
        let t = Token::parse("cloud-api:a@x.io:S3CRET:read:repository:bitbucket").unwrap();
        assert_eq!(
            t.kind,
            TokenKind::CloudApi {
                email: "a@x.io".into(),
                username: "a".into()
            }
        );
        assert_eq!(
            (t.secret.as_str(), t.scopes.as_slice()),
            ("S3CRET", &["read:repository:bitbucket".to_string()][..])
        );
        let t = Token::parse("cloud-api:a@x.io:S3CRET").unwrap();
        assert!(t.scopes.is_empty() && t.secret == "S3CRET");
        let t = Token::parse("dc-repo:PROJ/demo:S3CRET:REPO_READ").unwrap();
        assert_eq!(
            t.kind,
            TokenKind::DcRepo {
                project: "PROJ".into(),
                repo: "demo".into()
            }
        );
        for bad in [
            "cloud-api:oops",
            "dc-repo:PROJ:S:REPO_READ",
            "nope:x:y",
            "dc-personal::S",
            "cloud-access:",
        ] {
            let e = Token::parse(bad).unwrap_err();
            assert!(e.contains("expected"), "{bad}: {e}");
            assert!(!e.contains("S3CRET"));
        }
    }
}
