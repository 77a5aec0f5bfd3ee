//! `search_code` on repositories without a checkout: a shallow, single-branch clone in the
//! node's clone cache ([`crate::git::cache`]: one bare mirror per repository URL, locked, bounded
//! by size and count with the least recently used evicted first, rebuilt when broken), made on
//! first use and refreshed by fetch afterwards. Git traffic, not REST requests: it is not counted
//! against the provider's REST budget (Bitbucket counts git separately, with a far higher limit).
//!
//! The cache is `AGENTENV_CACHE_DIR` when set (shared by every server and provision of the
//! machine), else the workdir's `.agentenv/cache`. Each use asks the remote for the branch's tip
//! with the repository's provider credential, so a mirror another environment fetched is never
//! read for a credential that cannot read the repository; an out-of-scope repository or branch
//! never gets this far (the caller resolved both through the scope first).

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use git2::{FetchOptions, Oid, RemoteCallbacks};

use crate::git::cache::{CACHE_DIR_VAR, Cache, Limits, Mirror, remote_branch};
use crate::provision::git::{GitAuth, git_error};
use crate::spec::Repo;
use crate::tools::source::RepoRef;
use crate::tools::{Context, Error, Result};

/// The clone cache's directory for this server.
pub(crate) fn dir(ctx: &Context) -> PathBuf {
    match std::env::var_os(CACHE_DIR_VAR) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => ctx.workdir.join(".agentenv").join("cache"),
    }
}

pub(crate) fn open(ctx: &Context) -> Result<Cache> {
    Cache::open(&dir(ctx), Limits::from_env()?)
}

/// The credential-free URL the cache keys repository `slug` of `provider` by.
fn url_of(ctx: &Context, provider: &str, slug: &str) -> Option<String> {
    let repo = Repo::on_provider(provider, slug);
    crate::provision::plan::repo(&ctx.env, &repo, &ctx.workdir)
        .ok()
        .map(|p| p.url)
}

/// Whether repository `slug` of `provider` has a clone in the cache. Nothing is created or
/// locked to find out: listing repositories must not make a cache directory.
pub(crate) fn is_cached(ctx: &Context, provider: &str, slug: &str) -> bool {
    let Some(cache) = Cache::existing(&dir(ctx)) else {
        return false;
    };
    url_of(ctx, provider, slug).is_some_and(|url| cache.has(&url))
}

/// What one search call may spend on the clone cache: new clones (count), and the bytes and
/// time of all its fetches ([`crate::git::fetch::Budget`]: `AGENTENV_FETCH_BUDGET_MB`,
/// `AGENTENV_FETCH_BUDGET_SECS`, as for the other tools' fetches on demand).
pub(crate) struct CloneBudget {
    /// The fetch budget it started with, for messages.
    pub budget: crate::git::fetch::Budget,
    pub clones_left: usize,
    bytes_left: u64,
    deadline: Instant,
    /// What this call's fetches received.
    pub received: u64,
    pub new_clones: usize,
}

impl CloneBudget {
    pub fn new(clones: usize, fetch: crate::git::fetch::Budget) -> CloneBudget {
        CloneBudget {
            budget: fetch,
            clones_left: clones,
            bytes_left: fetch.bytes,
            deadline: Instant::now() + fetch.time,
            received: 0,
            new_clones: 0,
        }
    }

    fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Why a repository was not brought into the cache by this call.
pub(crate) enum NotCloned {
    /// The call's clone budget (count, bytes or time) is spent: the repository is left for the
    /// next call (`next_cursor`).
    Budget,
    Failed(Error),
}

impl From<Error> for NotCloned {
    fn from(e: Error) -> Self {
        NotCloned::Failed(e)
    }
}

/// A repository's clone in the cache, locked while this lives, at an in-scope branch.
pub(crate) struct Cached {
    pub mirror: Mirror,
    pub branch: String,
    pub tip: Oid,
}

/// The clone of `repo` in `cache` at `branch` (default: the remote's default branch, which
/// must be in scope), made or refreshed within `budget`. `branch` was checked against the
/// scope by the caller; the default branch is known only once the remote answers, and is
/// checked here before anything is fetched.
pub(crate) fn clone(
    ctx: &Context,
    cache: &Cache,
    repo: &RepoRef<'_>,
    branch: Option<&str>,
    budget: &mut CloneBudget,
) -> std::result::Result<Cached, NotCloned> {
    let env = &ctx.env;
    let plan = crate::provision::plan::repo(env, &repo.spec, &ctx.workdir)?;
    let cred = crate::provision::auth::for_repo(env, &repo.spec, &plan.fetch_url, &ctx.secrets)?;
    let auth = GitAuth::with(cred);
    let net = |e: git2::Error| {
        crate::provision::auth::explain(auth.credential(), git_error(&plan, e))
            .context(format_args!("cloning `{}` into the clone cache", repo.name))
    };
    let new = !cache.has(&plan.url);
    if new && budget.clones_left == 0 {
        return Err(NotCloned::Budget);
    }
    let time = budget.time_left();
    if time.is_zero() || budget.bytes_left == 0 {
        return Err(NotCloned::Budget);
    }
    // Another process cloning or fetching this repository is waited for within the budget.
    let Some(mirror) = cache.lock_until(&plan.url, budget.deadline)? else {
        return Err(NotCloned::Budget);
    };
    let (branch, tip) = {
        let mut remote = mirror.remote(&plan.fetch_url).map_err(net)?;
        let mut conn = auth.connect(&mut remote).map_err(net)?;
        let (branch, tip) = match remote_branch(&conn, branch) {
            Ok(found) => found,
            Err(e) if e.code() == git2::ErrorCode::NotFound && branch.is_some() => {
                return Err(NotCloned::Failed(Error::not_found(format!(
                    "no branch `{}` in `{}`; call list_branches to see the branches in scope",
                    branch.unwrap_or_default(),
                    repo.name
                ))));
            }
            Err(e) => return Err(NotCloned::Failed(net(e))),
        };
        if !env.scope.branch(&branch) {
            return Err(NotCloned::Failed(Error::out_of_scope(format!(
                "the default branch `{branch}` of `{}` is outside scope.branches; pass an in-scope branch as `ref`",
                repo.name
            ))));
        }
        let over = Cell::new(false);
        let received = Cell::new(0u64);
        let started = Instant::now();
        let bytes = budget.bytes_left;
        let mut cb = RemoteCallbacks::new();
        cb.transfer_progress(|p| {
            received.set(p.received_bytes() as u64);
            // Returning false makes libgit2 stop the download and discard the partial pack.
            if received.get() > bytes || started.elapsed() > time {
                over.set(true);
                return false;
            }
            true
        });
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(cb);
        let fetched = mirror.fetch(&mut conn, &branch, tip, 1, fo);
        budget.received += received.get();
        budget.bytes_left = budget.bytes_left.saturating_sub(received.get());
        if over.get() {
            // The mirror was not marked: the next call fetches it again from scratch.
            return Err(NotCloned::Budget);
        }
        fetched.map_err(net)?;
        (branch, tip)
    };
    if new {
        budget.clones_left = budget.clones_left.saturating_sub(1);
        budget.new_clones += 1;
    }
    Ok(Cached {
        mirror,
        branch,
        tip,
    })
}
