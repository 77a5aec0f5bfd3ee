//! The remote source: an in-scope repository (a `repos:` entry, or any other the scope admits on
//! a spec's provider) reached through its provider's REST client, and ref resolution through
//! the API.
//!
//! Every request goes through the provider's [`Client`], built once per server and kept in the
//! [`Context`]: its request budget and cache are shared by every tool. Refs are branch names
//! only, except where a tool can afford to check reachability (`get_commit`): the scope check
//! for a commit id is "reachable from an in-scope branch", which a clone answers locally but
//! the API only at the price of several requests.
//!
//! The tools read the client's typed model ([`crate::bitbucket`]): Bitbucket's JSON field names
//! and paths stay in `bitbucket/cloud.rs` and `bitbucket/datacenter.rs`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{RepoRef, check_branch, looks_like_commit_id, out_of_scope_branch};
use crate::bitbucket::{
    ApiError, ApiErrorKind, Branch, Budget, Client, Commit, Cursor, Options, Page, RepoId,
    Signature, Timestamp,
};
use crate::scope::Scope;
use crate::spec::Repo;
use crate::tools::text::Person;
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
        match block_on(client.repository(&client.repo(slug))) {
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

/// Every page of a collection, read up to `max` items, and whether that was all of them.
/// `fetch` reads one page of at most the given size from a cursor. A server whose pages stop
/// filling (an empty page that still links a next one) ends the reading, as not all: the
/// number of requests is bounded by `max / page_size` whatever the links say.
pub(crate) fn collect_pages<T>(
    max: usize,
    page_size: usize,
    mut fetch: impl FnMut(usize, Option<&Cursor>) -> std::result::Result<Page<T>, ApiError>,
) -> std::result::Result<(Vec<T>, bool), ApiError> {
    let mut all = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = fetch(page_size.min(max - all.len()).max(1), cursor.as_ref())?;
        let empty = page.values.is_empty();
        all.extend(page.values);
        match page.next {
            None => return Ok((all, true)),
            Some(_) if all.len() >= max || empty => {
                all.truncate(max);
                return Ok((all, false));
            }
            Some(next) => cursor = Some(next),
        }
    }
}

/// An in-scope repository, reached through its provider's API.
pub struct Remote<'a> {
    pub name: String,
    pub spec: Cow<'a, Repo>,
    pub client: Arc<Client>,
    /// The repository as the API addresses it.
    pub id: RepoId,
    scope: &'a Scope,
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
        let id = client.repo(&spec.name());
        Ok(Remote {
            name,
            spec,
            client,
            id,
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
        let branch =
            block_on(self.client.branch(&self.id, &name)).map_err(|e| api_error(e, &what))?;
        match branch {
            Some(b) => Ok((name, b.head)),
            None if looks_like_commit_id(&name) => Err(commit_id_refused()),
            None => Err(Error::not_found(format!(
                "no {what}; call list_branches to see the branches in scope"
            ))),
        }
    }

    /// The repository's default branch on the server.
    pub(crate) fn default_branch(&self) -> Result<String> {
        let what = format!("repository `{}`", self.name);
        block_on(self.client.default_branch(&self.id))
            .map_err(|e| api_error(e, &what))?
            .ok_or_else(|| Error::not_found(format!("{what} has no default branch; pass `ref`")))
    }

    /// Every branch on the server (up to `MAX_PAGES` pages of 100), and whether that was all
    /// of them.
    pub(crate) fn all_branches(&self) -> Result<(Vec<Branch>, bool)> {
        let what = format!("repository `{}`", self.name);
        collect_pages(MAX_PAGES * 100, 100, |limit, cursor| {
            block_on(self.client.branches(&self.id, None, limit, cursor))
        })
        .map_err(|e| api_error(e, &what))
    }

    /// The full id of `given`: a branch in scope, or a commit id an in-scope branch reaches.
    ///
    /// Cloud answers reachability in one request; Data Center needs one request per in-scope
    /// branch, so at most `MAX_DC_BRANCHES` are tried.
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
        let (all, _) = self.all_branches()?;
        let mut heads: Vec<Branch> = all
            .into_iter()
            .filter(|b| self.scope.branch(&b.name))
            .collect();
        let id = given.to_lowercase();
        if let Some(b) = heads.iter().find(|b| b.head.starts_with(&id)) {
            return Ok(b.head.clone());
        }
        if heads.is_empty() {
            return Err(not_found());
        }
        // The commit's own id, in full: the reachability question is asked about it.
        let full = match block_on(self.client.commit(&self.id, &id)) {
            Ok(c) => c.hash,
            Err(e) if e.kind == ApiErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        if !self.is_cloud() {
            heads.truncate(MAX_DC_BRANCHES);
        }
        if block_on(self.client.reachable_from(&self.id, &full, &heads))? {
            Ok(full)
        } else {
            Err(not_found())
        }
    }
}

/// A commit as the tools show it: author and committer as [`Person`]s. Cloud records one
/// person and one date per commit, so its committer is the author.
pub(crate) struct CommitPeople {
    pub author: Person,
    pub committer: Person,
}

impl CommitPeople {
    pub(crate) fn of(c: &Commit) -> CommitPeople {
        let person = |s: &Signature| Person {
            name: s.name.clone(),
            email: s.email.clone().unwrap_or_default(),
            date: time(s.date.as_ref()),
        };
        let author = person(&c.author);
        let committer = c.committer.as_ref().map(person).unwrap_or_else(|| Person {
            name: author.name.clone(),
            email: author.email.clone(),
            date: author.date.clone(),
        });
        CommitPeople { author, committer }
    }
}

/// A server time as RFC 3339 (`""` when the server gave none).
pub(crate) fn time(t: Option<&Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// A server time as RFC 3339, when it gave one.
pub(crate) fn opt_time(t: Option<&Timestamp>) -> Option<String> {
    t.map(|t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collecting_pages_ends_when_a_server_links_empty_pages_forever() {
        let mut calls = 0;
        let (all, whole) = collect_pages(50, 10, |_, _| {
            calls += 1;
            Ok::<_, ApiError>(Page {
                values: Vec::<u32>::new(),
                next: Some(Cursor::from("again")),
            })
        })
        .unwrap();
        assert_eq!((all.len(), whole, calls), (0, false, 1));
        // Full pages stop at `max`: five requests of ten.
        let mut calls = 0;
        let (all, whole) = collect_pages(50, 10, |n, _| {
            calls += 1;
            Ok::<_, ApiError>(Page {
                values: vec![0u32; n],
                next: Some(Cursor::from("more")),
            })
        })
        .unwrap();
        assert_eq!((all.len(), whole, calls), (50, false, 5));
    }
}
