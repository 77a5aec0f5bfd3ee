//! The remote source: an in-scope repository (a `repos:` entry, or any other the scope admits on
//! a spec's provider) reached through its provider's REST client, and ref resolution through
//! the API.
//!
//! Every request goes through the provider's [`Client`], built once per server and kept in the
//! [`Context`]: its request budget and cache are shared by every tool. Refs are branch names
//! only, except where a tool can afford to check reachability (`get_commit`): the scope check
//! for a commit id is "reachable from an in-scope branch", which a clone answers locally but
//! the API only at the price of several requests.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{RepoRef, check_branch, looks_like_commit_id, out_of_scope_branch};
use crate::bitbucket::{ApiError, ApiErrorKind, Budget, Client, Flavor, Options, query, seg};
use crate::scope::Scope;
use crate::spec::Repo;
use crate::tools::text::millis_rfc3339;
use crate::tools::{Context, Error, Result};

/// The note every answer from the API carries.
pub(crate) const NOTE: &str = "answered from the Bitbucket API: this repository is not cloned in the workdir (list it in the spec's `repos:` and run `agentenv provision` for local, faster answers)";

/// Pages read at most for one answer (branches, directory entries).
pub(crate) const MAX_PAGES: usize = 10;

/// The REST clients of one server, one per provider, built on first use.
#[derive(Default)]
pub struct Clients {
    /// Used for clients built from now on (tests shorten back-offs and the cache TTL).
    pub options: Options,
    /// Replaces `rate_limit.per_hour` for clients built from now on: (requests, window).
    pub budget_override: Option<(u32, std::time::Duration)>,
    built: Mutex<HashMap<String, Arc<Client>>>,
    /// Bare slugs several providers could hold, and the provider found to have each.
    picked: Mutex<HashMap<String, String>>,
}

impl Clients {
    pub(super) fn picked(&self, name: &str) -> Option<String> {
        let picked = self.picked.lock().unwrap_or_else(|e| e.into_inner());
        picked.get(name).cloned()
    }

    pub(super) fn pick(&self, name: String, provider: String) {
        let mut picked = self.picked.lock().unwrap_or_else(|e| e.into_inner());
        picked.insert(name, provider);
    }
}

impl Context {
    /// The REST client of provider `name`, built once per server.
    pub fn api_client(&self, name: &str) -> Result<Arc<Client>> {
        let mut built = self.api.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = built.get(name) {
            return Ok(c.clone());
        }
        let provider = self.env.spec.providers.get(name).ok_or_else(|| {
            Error::input(format!(
                "no provider `{name}` in this environment; providers: {}",
                self.provider_names()
            ))
        })?;
        let mut client =
            Client::from_provider(name, provider, &self.secrets, self.api.options.clone())?;
        if let Some((n, window)) = self.api.budget_override {
            client = client.with_budget(Budget::new(n, window));
        }
        let client = Arc::new(client);
        built.insert(name.to_string(), client.clone());
        Ok(client)
    }

    pub(super) fn provider_names(&self) -> String {
        let names: Vec<&str> = self.env.spec.providers.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none (add `providers:` to the spec)".to_string()
        } else {
            names.join(", ")
        }
    }

    /// Whether provider `provider` has repository `slug` (one request; a 404 is "no").
    pub(super) fn repo_exists(&self, provider: &str, slug: &str) -> Result<bool> {
        let client = self.api_client(provider)?;
        match block_on(client.get_json(&repo_base(&client, slug))) {
            Ok(_) => Ok(true),
            Err(e) if e.kind == ApiErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Repository `name` through its provider's API, cloned or not (the API-only tools).
    pub fn remote(&self, name: &str) -> Result<Remote<'_>> {
        Remote::new(self, self.repo(name)?)
    }
}

/// Run an async API call from a synchronous tool. Tools run on tokio's blocking pool (see
/// `Context::call`), where blocking on the server's runtime is allowed; outside a runtime (a
/// direct call in a test) a small one is made for the call.
pub(crate) fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(fut),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime can be built")
            .block_on(fut),
    }
}

/// An API failure looking up `what`: a 404 may also mean the credential cannot see it.
pub(crate) fn api_error(e: ApiError, what: &str) -> Error {
    let not_found = e.kind == ApiErrorKind::NotFound;
    let err = Error::from(e);
    if not_found {
        err.context(format_args!(
            "{what} does not exist or is not visible to the environment's credential"
        ))
    } else {
        err
    }
}

/// The string at a JSON pointer of an API answer.
pub(crate) fn str_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The `values` of a one-page list answer (diffstat, changes), and whether the server has more.
pub(crate) fn values_and_more(list: &Value) -> (Vec<Value>, bool) {
    let values = list
        .get("values")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let more = list.get("next").is_some()
        || list.get("isLastPage").and_then(Value::as_bool) == Some(false);
    (values, more)
}

/// A branch name with `/` kept as the path separator Bitbucket expects in ref URLs.
pub(crate) fn branch_path(name: &str) -> String {
    name.split('/').map(seg).collect::<Vec<_>>().join("/")
}

/// A repository's API path on `client`'s workspace or project.
pub(crate) fn repo_base(client: &Client, slug: &str) -> String {
    match &client.flavor {
        Flavor::Cloud { workspace } => format!("/repositories/{}/{}", seg(workspace), seg(slug)),
        Flavor::DataCenter { project } => {
            format!("/api/1.0/projects/{}/repos/{}", seg(project), seg(slug))
        }
    }
}

/// An in-scope repository, reached through its provider's API.
pub struct Remote<'a> {
    pub name: String,
    pub spec: Cow<'a, Repo>,
    pub client: Arc<Client>,
    /// The repository's API path: `/repositories/{ws}/{slug}` or
    /// `/api/1.0/projects/{KEY}/repos/{slug}`.
    pub base: String,
    scope: &'a Scope,
}

/// A commit from either API, in the fields the tools show.
pub(crate) struct Commit {
    pub hash: String,
    pub name: String,
    pub email: String,
    /// Author date, RFC 3339.
    pub date: String,
    /// Committer date (Cloud records one date: the same).
    pub committed: String,
    pub committer_name: String,
    pub committer_email: String,
    pub message: String,
    pub parents: Vec<String>,
}

/// Data Center branches tried at most to show that a commit is reachable (one request each).
const MAX_DC_BRANCHES: usize = 20;

impl<'a> Remote<'a> {
    /// The repository's API, when the spec gives it a provider.
    pub(crate) fn new(ctx: &'a Context, repo: RepoRef<'a>) -> Result<Self> {
        let RepoRef { spec, name, .. } = repo;
        let provider = spec.provider.as_deref().ok_or_else(|| {
            Error::input(format!(
                "repository `{name}` has no `provider:` in the spec, so it has no Bitbucket API; the checkout tools still work on it"
            ))
        })?;
        let client = ctx.api_client(provider)?;
        let base = repo_base(&client, &spec.name());
        Ok(Remote {
            name,
            spec,
            client,
            base,
            scope: &ctx.env.scope,
        })
    }

    pub fn is_cloud(&self) -> bool {
        self.client.is_cloud()
    }

    pub(crate) fn scope(&self) -> &Scope {
        self.scope
    }

    /// The branch a call names (or the default one) and its head commit, checked against the
    /// scope before any request.
    pub(crate) fn resolve(&self, reference: Option<&str>) -> Result<(String, String)> {
        let name = match reference {
            None | Some("HEAD") => match &self.spec.branch {
                Some(b) => b.clone(),
                None => self.default_branch()?,
            },
            Some(r) => r.strip_prefix("refs/heads/").unwrap_or(r).to_string(),
        };
        let commit_id_refused = || {
            Error::input(format!(
                "`{}` is not cloned, and without a clone only branch names are accepted as `ref` (a commit id cannot be checked against the scope); pass a branch from list_branches",
                self.name
            ))
        };
        if looks_like_commit_id(&name) && !self.scope.branch(&name) {
            return Err(commit_id_refused());
        }
        check_branch(self.scope, &name)?;
        let what = format!("branch `{name}` of `{}`", self.name);
        let commit = if self.is_cloud() {
            match block_on(self.client.get_json(&format!(
                "{}/refs/branches/{}",
                self.base,
                branch_path(&name)
            ))) {
                Ok(v) => str_at(&v, "/target/hash"),
                Err(e) if e.kind == ApiErrorKind::NotFound => None,
                Err(e) => return Err(api_error(e, &what)),
            }
        } else {
            let v = block_on(self.client.get_json(&format!(
                "{}/branches?{}",
                self.base,
                query(&[("filterText", name.clone()), ("limit", "100".into())])
            )))
            .map_err(|e| api_error(e, &what))?;
            v.get("values")
                .and_then(Value::as_array)
                .and_then(|l| {
                    l.iter()
                        .find(|b| str_at(b, "/displayId").as_deref() == Some(&name))
                })
                .and_then(|b| str_at(b, "/latestCommit"))
        };
        match commit {
            Some(c) => Ok((name, c)),
            None if looks_like_commit_id(&name) => Err(commit_id_refused()),
            None => Err(Error::not_found(format!(
                "no {what}; call list_branches to see the branches in scope"
            ))),
        }
    }

    /// The repository's default branch on the server.
    pub(crate) fn default_branch(&self) -> Result<String> {
        let what = format!("repository `{}`", self.name);
        let (path, pointer) = if self.is_cloud() {
            (self.base.clone(), "/mainbranch/name")
        } else {
            (format!("{}/default-branch", self.base), "/displayId")
        };
        let v = block_on(self.client.get_json(&path)).map_err(|e| api_error(e, &what))?;
        str_at(&v, pointer)
            .ok_or_else(|| Error::not_found(format!("{what} has no default branch; pass `ref`")))
    }

    /// Every branch on the server as the API gives it (up to `MAX_PAGES` pages), and whether
    /// that was all of them.
    pub(crate) fn all_branches(&self) -> Result<(Vec<Value>, bool)> {
        let what = format!("repository `{}`", self.name);
        let endpoint = if self.is_cloud() {
            format!("{}/refs/branches", self.base)
        } else {
            format!("{}/branches", self.base)
        };
        let mut all = Vec::new();
        let mut next = None;
        for _ in 0..MAX_PAGES {
            let page = block_on(self.client.page(&endpoint, &[], 100, next.as_deref()))
                .map_err(|e| api_error(e, &what))?;
            all.extend(page.values);
            next = page.next;
            if next.is_none() {
                return Ok((all, true));
            }
        }
        Ok((all, false))
    }

    /// The in-scope branches of [`Remote::all_branches`] as (name, head commit).
    fn branch_heads(&self) -> Result<Vec<(String, String)>> {
        let (all, _) = self.all_branches()?;
        let (name, head) = if self.is_cloud() {
            ("/name", "/target/hash")
        } else {
            ("/displayId", "/latestCommit")
        };
        Ok(all
            .iter()
            .filter_map(|b| Some((str_at(b, name)?, str_at(b, head)?)))
            .filter(|(n, _)| self.scope.branch(n))
            .collect())
    }

    /// The full id of `given`: a branch in scope, or a commit id an in-scope branch reaches.
    ///
    /// Cloud answers reachability in one request (`commits?include=ID&exclude=<every in-scope
    /// branch>` is empty exactly when every ancestor of ID is on one of them); Data Center needs
    /// one request per in-scope branch (`commits?until=ID&since=BRANCH`), so at most
    /// `MAX_DC_BRANCHES` are tried.
    pub(crate) fn commit_in_scope(&self, given: &str) -> Result<String> {
        super::check_ref_syntax(given)?;
        if self.scope.branch(given) {
            match self.resolve(Some(given)) {
                Ok((_, head)) => return Ok(head),
                Err(e)
                    if matches!(e.kind, crate::Kind::NotFound | crate::Kind::Input)
                        && looks_like_commit_id(given) => {}
                Err(e) => return Err(e),
            }
        } else if !looks_like_commit_id(given) {
            return Err(out_of_scope_branch(self.scope, given));
        }
        let not_found = || {
            Error::not_found(format!(
                "no commit `{given}` is reachable from a branch in scope of `{}`; call list_commits to see commits",
                self.name
            ))
        };
        let heads = self.branch_heads()?;
        let id = given.to_lowercase();
        if let Some((_, h)) = heads.iter().find(|(_, h)| h.starts_with(&id)) {
            return Ok(h.clone());
        }
        if heads.is_empty() {
            return Err(not_found());
        }
        // The commit's own id, in full: the reachability question is asked about it.
        let full = match block_on(self.client.get_json(&self.commit_path(&id))) {
            Ok(v) => {
                str_at(&v, if self.is_cloud() { "/hash" } else { "/id" }).ok_or_else(not_found)?
            }
            Err(e) if e.kind == ApiErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let is_empty = |v: &Value| {
            v.get("values")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        };
        let reachable = if self.is_cloud() {
            let mut p: Vec<(&str, String)> =
                vec![("include", full.clone()), ("pagelen", "1".into())];
            for (name, _) in &heads {
                p.push(("exclude", name.clone()));
            }
            let path = format!("{}/commits?{}", self.base, query(&p));
            is_empty(&block_on(self.client.get_json(&path))?)
        } else {
            let mut found = false;
            for (_, head) in heads.iter().take(MAX_DC_BRANCHES) {
                let q = query(&[
                    ("until", full.clone()),
                    ("since", head.clone()),
                    ("limit", "1".into()),
                ]);
                let v = block_on(self.client.get_json(&format!("{}/commits?{q}", self.base)))?;
                if is_empty(&v) {
                    found = true;
                    break;
                }
            }
            found
        };
        if reachable {
            Ok(full)
        } else {
            Err(not_found())
        }
    }

    /// The API path of one commit.
    pub(crate) fn commit_path(&self, id: &str) -> String {
        if self.is_cloud() {
            format!("{}/commit/{}", self.base, seg(id))
        } else {
            format!("{}/commits/{}", self.base, seg(id))
        }
    }

    /// A commit from this provider's JSON.
    pub(crate) fn commit(&self, v: &Value) -> Commit {
        let parents = |key: &str| -> Vec<String> {
            v.get("parents")
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(|p| str_at(p, key)).collect())
                .unwrap_or_default()
        };
        let text = |pointer: &str| str_at(v, pointer).unwrap_or_default();
        if self.is_cloud() {
            // `raw` is `Name <email>` as git recorded it.
            let raw = text("/author/raw");
            let (name, email) = match raw.rsplit_once('<') {
                Some((n, e)) => (
                    n.trim().to_string(),
                    e.trim_end_matches('>').trim().to_string(),
                ),
                None => (raw.trim().to_string(), String::new()),
            };
            let date = text("/date");
            Commit {
                hash: text("/hash"),
                committer_name: name.clone(),
                committer_email: email.clone(),
                name,
                email,
                committed: date.clone(),
                date,
                message: text("/message"),
                parents: parents("/hash"),
            }
        } else {
            let time =
                |k: &str| millis_rfc3339(v.get(k).and_then(Value::as_i64)).unwrap_or_default();
            Commit {
                hash: text("/id"),
                name: text("/author/name"),
                email: text("/author/emailAddress"),
                date: time("authorTimestamp"),
                committed: time("committerTimestamp"),
                committer_name: text("/committer/name"),
                committer_email: text("/committer/emailAddress"),
                message: text("/message"),
                parents: parents("/id"),
            }
        }
    }
}
