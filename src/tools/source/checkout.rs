//! The local source: an in-scope repository cloned in the workdir, read from git's object
//! database. Here are the pool that keeps repositories open between calls, ref resolution
//! against the clone's own refs, and tree lookups.
//!
//! Everything is read from the tree of the requested commit, never from the working copy: the
//! answer is the committed state at that ref. With `ref` omitted it is the checked-out HEAD's
//! commit, so files that setup steps created or changed in the working copy are not shown.
//! Reading objects also means a symlink is only ever a blob holding its target text: nothing
//! is followed, inside or outside the repository.
//!
//! Ref rules, and why:
//! - A ref is an in-scope branch, `HEAD`, or a commit id (7 to 40 hex digits, resolved as
//!   `git rev-parse PREFIX^{commit}`), optionally followed by `~N`/`^N` ancestry (`main~3`,
//!   `HEAD^2`): an ancestor of an in-scope branch is in scope. Branches are exact reference
//!   lookups (`refs/heads/X`, `refs/remotes/R/X`, then `refs/agentenv/branches/X`); tags and
//!   other revision syntax are refused before any lookup.
//! - A commit id that no in-scope branch reaches gets the same `not_found` whether or not the
//!   object exists in the clone.
//!
//! Fetching on demand, and why: a checkout is a single-branch, usually shallow clone, and an
//! agent asks about other branches and older history. A branch the checkout lacks is fetched
//! (its tip; the whole branch when the checkout has full history) into
//! `refs/agentenv/branches/<name>` ([`crate::git::fetch`]); history past a shallow boundary is
//! fetched in rounds sized by what the answer still needs ([`Checkout::deepen`]); a commit id
//! the checkout lacks is searched for in the in-scope branches' tips, then their history. The
//! remote's branch list is read with `ls-remote` and kept [`ADVERTISED_TTL`] per server. All of
//! it under one [`Budget`] per call, and nothing ever asked of an out-of-scope branch.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{RepoRef, check_ref_syntax, looks_like_commit_id, out_of_scope_branch};
use crate::git::fetch::{self, Advertised, Budget, Depth, Fetcher, Origin, REF_PREFIX, Stopped};
use crate::git::objects::{Objects, parse_commit};
use crate::git::{HistoryError, NeedsHistory, rev};
use crate::scope::Scope;
use crate::tools::paths::tree_path;
use crate::tools::{Context, Error, Kind, Result};

/// Repositories opened by earlier calls, kept for the next ones: opening a repository (reading
/// its config, listing its packs) and dropping it (unmapping the pack windows, clearing the
/// object cache) cost more than a whole `read_file`. `git2::Repository` is `Send` but not
/// `Sync`, so a call takes one out for itself (or opens a new one when none is idle) and puts it
/// back when done: calls on one repository never wait for each other.
///
/// A kept repository sees later fetches: libgit2 reads refs from disk on every lookup and
/// rescans the pack directory when an object is missing.
///
/// It also keeps, per checkout, what the remote advertised (branches and tips) for
/// [`ADVERTISED_TTL`], so that a server asks the remote at most that often.
#[derive(Default)]
pub struct RepoPool {
    idle: Mutex<HashMap<PathBuf, Vec<git2::Repository>>>,
    advertised: Mutex<HashMap<PathBuf, (Instant, Arc<Advertised>)>>,
}

/// How long a remote's branch list is reused before it is asked again.
pub const ADVERTISED_TTL: Duration = Duration::from_secs(30);

/// Idle repositories kept per checkout; more concurrent calls than this open their own.
const MAX_IDLE: usize = 2;

/// A repository taken from the pool, returned to it on drop.
pub struct PooledRepo<'a> {
    git: Option<git2::Repository>,
    pool: &'a RepoPool,
    dir: PathBuf,
}

impl std::ops::Deref for PooledRepo<'_> {
    type Target = git2::Repository;
    fn deref(&self) -> &git2::Repository {
        self.git.as_ref().expect("taken only on drop")
    }
}

impl Drop for PooledRepo<'_> {
    fn drop(&mut self) {
        let (Some(git), Ok(mut idle)) = (self.git.take(), self.pool.idle.lock()) else {
            return;
        };
        let kept = idle.entry(std::mem::take(&mut self.dir)).or_default();
        if kept.len() < MAX_IDLE {
            kept.push(git);
        }
    }
}

impl RepoPool {
    pub(crate) fn take(&self, dir: &Path) -> Result<PooledRepo<'_>, git2::Error> {
        let kept = self
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.get_mut(dir).and_then(Vec::pop));
        let git = match kept {
            Some(git) => git,
            None => git2::Repository::open(dir)?,
        };
        Ok(PooledRepo {
            git: Some(git),
            pool: self,
            dir: dir.to_path_buf(),
        })
    }
}

/// A cloned, in-scope repository opened with git2, the scope its refs are checked against,
/// and the fetches this call made into it.
pub struct Checkout<'a> {
    pub repo: RepoRef<'a>,
    pub git: PooledRepo<'a>,
    scope: &'a Scope,
    ctx: &'a Context,
    /// Built on the first fetch of the call.
    fetcher: RefCell<Option<Box<Fetcher>>>,
    /// The last depth asked for per branch, so that rounds without progress grow.
    depths: RefCell<HashMap<String, u32>>,
    /// Something this call wanted was not fetched because the budget ran out.
    budget_spent: Cell<bool>,
}

/// A checkout git2 cannot open: the tool answers as if it were not cloned.
pub(crate) fn unreadable(name: &str, e: git2::Error) -> Error {
    Error::new(
        Kind::NotCloned,
        format!(
            "the checkout of `{name}` is not a readable git repository ({}); run `agentenv provision` again",
            e.message()
        ),
    )
    .with_source(e)
}

/// A git failure on a readable checkout: not the caller's fault.
pub(crate) fn git_error(e: git2::Error) -> Error {
    Error::failure(format!("git error: {}", e.message())).with_source(e)
}

/// A branch the repository knows: local, remote-tracking, or fetched by a tool.
#[derive(Debug, Clone)]
pub struct BranchHead {
    /// The branch name without `refs/heads/`, `refs/remotes/<remote>/` or
    /// `refs/agentenv/branches/`.
    pub name: String,
    pub commit: git2::Oid,
    /// `None` for a local or fetched branch, else the remote's name.
    pub remote: Option<String>,
    /// Fetched on demand into `refs/agentenv/branches/`.
    pub fetched: bool,
}

/// A ref resolved for a call: the commit, and how to name it back to the agent.
#[derive(Debug, Clone)]
pub struct ResolvedRef {
    pub commit: git2::Oid,
    /// The branch name when the ref was (or HEAD is) an in-scope branch.
    pub branch: Option<String>,
    /// The in-scope branch whose history holds the commit: the one to deepen when an answer
    /// needs more of it.
    pub via: Option<String>,
}

impl ResolvedRef {
    /// The branch name, or the full commit id.
    pub fn label(&self) -> String {
        self.branch
            .clone()
            .unwrap_or_else(|| self.commit.to_string())
    }
}

/// What a cleaned path names in a commit's tree.
pub(crate) enum AtPath<'r> {
    Tree(git2::Tree<'r>),
    /// A blob; `mode` tells a regular file (0o100644/0o100755) from a symlink (0o120000).
    Blob {
        id: git2::Oid,
        mode: i32,
    },
    Submodule(git2::Oid),
}

pub(crate) const MODE_SYMLINK: i32 = 0o120000;
pub(crate) const MODE_EXECUTABLE: i32 = 0o100755;

impl<'a> Checkout<'a> {
    pub(crate) fn new(ctx: &'a Context, repo: RepoRef<'a>, git: PooledRepo<'a>) -> Self {
        Checkout {
            repo,
            git,
            scope: &ctx.env.scope,
            ctx,
            fetcher: RefCell::new(None),
            depths: RefCell::new(HashMap::new()),
            budget_spent: Cell::new(false),
        }
    }

    pub fn name(&self) -> &str {
        &self.repo.name
    }

    pub fn scope(&self) -> &Scope {
        self.scope
    }

    /// Every branch head (local, remote-tracking and fetched) whose name the scope allows,
    /// local ones first, fetched ones last. A branch known in several places appears once per
    /// ref.
    pub fn branch_heads(&self) -> Vec<BranchHead> {
        let git = &*self.git;
        let remotes: Vec<String> = git
            .remotes()
            .map(|r| {
                r.iter()
                    .filter_map(|n| n.ok().flatten())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut heads = Vec::new();
        let Ok(refs) = git.references() else {
            return heads;
        };
        for r in refs.flatten() {
            let Ok(refname) = r.name() else {
                continue;
            };
            let (name, remote, fetched) = if let Some(b) = refname.strip_prefix("refs/heads/") {
                (b.to_string(), None, false)
            } else if let Some(b) = refname.strip_prefix(REF_PREFIX) {
                (b.to_string(), None, true)
            } else if let Some(rest) = refname.strip_prefix("refs/remotes/") {
                // Remote names may contain `/`: prefer the longest known remote that prefixes it.
                let remote = remotes
                    .iter()
                    .filter(|rm| {
                        rest.strip_prefix(rm.as_str())
                            .is_some_and(|t| t.starts_with('/'))
                    })
                    .max_by_key(|rm| rm.len())
                    .cloned()
                    .or_else(|| rest.split('/').next().map(str::to_string));
                let Some(remote) = remote else { continue };
                let b = rest.get(remote.len() + 1..).unwrap_or("");
                // `origin/HEAD` is a pointer to the default branch, not a branch.
                if b == "HEAD" || b.is_empty() {
                    continue;
                }
                (b.to_string(), Some(remote), false)
            } else {
                continue;
            };
            if !self.scope.branch(&name) {
                continue;
            }
            let Ok(commit) = r.peel_to_commit() else {
                continue;
            };
            heads.push(BranchHead {
                name,
                commit: commit.id(),
                remote,
                fetched,
            });
        }
        heads.sort_by(|a, b| {
            (a.fetched, a.remote.is_some(), &a.name).cmp(&(b.fetched, b.remote.is_some(), &b.name))
        });
        heads
    }

    /// The branch checked out in the working copy, if HEAD is on one.
    pub fn checked_out_branch(&self) -> Option<String> {
        self.git.head().ok().and_then(|h| {
            h.name()
                .ok()
                .and_then(|n| n.strip_prefix("refs/heads/"))
                .map(str::to_string)
        })
    }

    /// An in-scope branch, `HEAD`, or a commit id an in-scope branch reaches, each optionally
    /// followed by `~N`/`^N`; `None` is `HEAD`, the checked-out commit. Fetches what the
    /// checkout lacks (see the module docs).
    pub fn resolve(&self, reference: Option<&str>) -> Result<ResolvedRef> {
        let reference = reference.unwrap_or("HEAD");
        let cut = reference.find(['~', '^']).unwrap_or(reference.len());
        let (name, suffix) = reference.split_at(cut);
        if name.is_empty() || !suffix.is_empty() {
            // Refusals of the name's own syntax first (`main@{1}~2` is reflog syntax), then
            // what may follow it.
            if !name.is_empty() && name != "HEAD" {
                check_ref_syntax(name)?;
            }
            rev::parse_ancestry(reference).map_err(|e| syntax_error(reference, e))?;
        }
        let base = self.resolve_name(name)?;
        if suffix.is_empty() {
            return Ok(base);
        }
        let steps = rev::parse_ancestry(reference)
            .map_err(|e| syntax_error(reference, e))?
            .steps;
        loop {
            match rev::walk_steps(&self.git, base.commit, &steps, reference) {
                Ok(commit) => {
                    return Ok(ResolvedRef {
                        commit,
                        branch: None,
                        via: base.via.clone(),
                    });
                }
                Err(HistoryError::NeedsHistory(needs)) => {
                    if !self.deepen(base.via.as_deref(), &needs)? {
                        return Err(self.history_unavailable(reference, &needs));
                    }
                }
                Err(e @ HistoryError::NoSuchParent { .. }) => {
                    return Err(Error::not_found(format!(
                        "{e} in `{}`; call list_commits to see its history",
                        self.repo.name
                    ))
                    .with_source(e));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A ref without ancestry.
    fn resolve_name(&self, reference: &str) -> Result<ResolvedRef> {
        if reference == "HEAD" {
            return self.resolve_head();
        }
        check_ref_syntax(reference)?;
        // Every valid string is first a candidate branch name; ids are tried after branches, so
        // a branch that happens to look like hex still wins.
        let name = branch_name_of(reference)?;
        let hex = looks_like_commit_id(reference);
        if self.scope.branch(name) {
            if let Some(h) = self
                .branch_heads()
                .into_iter()
                .find(|h| h.name == name && !h.fetched)
            {
                return Ok(ResolvedRef {
                    commit: h.commit,
                    branch: Some(h.name.clone()),
                    via: Some(h.name),
                });
            }
            // A hex string is far more often a commit id than a branch: the ids present are
            // looked at before the remote is asked for a branch of that name.
            if hex && let Some(r) = self.lookup_commit(reference)? {
                return Ok(r);
            }
            match self.fetched_branch(name) {
                Ok(Some(commit)) => {
                    return Ok(ResolvedRef {
                        commit,
                        branch: Some(name.to_string()),
                        via: Some(name.to_string()),
                    });
                }
                Ok(None) => {}
                Err(e) if !hex => return Err(e),
                Err(_) => {}
            }
        } else if !hex {
            return Err(out_of_scope_branch(self.scope, name));
        }
        if hex {
            return self.resolve_commit_id(reference);
        }
        Err(Error::not_found(format!(
            "no branch `{reference}` in `{}` (neither in the checkout nor on the remote); call list_branches to see the branches in scope",
            self.repo.name
        )))
    }

    /// An in-scope branch the checkout has no local or remote-tracking ref for: its fetched
    /// ref, brought up to the remote's tip (fetched now when missing or moved). `None` when the
    /// remote has no such branch.
    fn fetched_branch(&self, name: &str) -> Result<Option<git2::Oid>> {
        let advertised = self.advertised()?;
        let Some(tip) = advertised.tip(name) else {
            return Ok(None);
        };
        let refname = format!("{REF_PREFIX}{name}");
        let have = |git: &git2::Repository| {
            git.refname_to_id(&refname).ok() == Some(tip) && git.find_commit(tip).is_ok()
        };
        if !have(&self.git) {
            let depth = self.tip_depth();
            if !self.fetch(&[name.to_string()], depth)? || !have(&self.git) {
                return Err(self.budget_error(&format!("fetching branch `{name}`")));
            }
        }
        Ok(Some(tip))
    }

    /// How deep to fetch a branch the checkout does not have: its tip in a shallow checkout
    /// (more comes on demand), all of it in a complete one (which must stay complete).
    fn tip_depth(&self) -> Depth {
        if self.git.is_shallow() {
            Depth::Commits(1)
        } else {
            Depth::Full
        }
    }

    /// What the remote advertises, at most [`ADVERTISED_TTL`] old.
    pub fn advertised(&self) -> Result<Arc<Advertised>> {
        let pool = &self.ctx.repos;
        if let Ok(cache) = pool.advertised.lock()
            && let Some((at, a)) = cache.get(&self.repo.dir)
            && at.elapsed() < ADVERTISED_TTL
        {
            return Ok(a.clone());
        }
        let origin = self.origin()?;
        let a = Arc::new(origin.advertised()?);
        if let Ok(mut cache) = pool.advertised.lock() {
            cache.insert(self.repo.dir.clone(), (Instant::now(), a.clone()));
        }
        Ok(a)
    }

    /// Where this checkout fetches from: provision's plan and credential for the repository.
    fn origin(&self) -> Result<Origin> {
        let env = &self.ctx.env;
        let plan = crate::provision::plan::repo(env, &self.repo.spec, &self.ctx.workdir)?;
        let cred = crate::provision::auth::for_repo(
            env,
            &self.repo.spec,
            &plan.fetch_url,
            &self.ctx.secrets,
        )?;
        Ok(Origin {
            plan,
            auth: crate::provision::git::GitAuth::with(cred),
        })
    }

    /// Fetch in-scope `branches` under the call's budget and the checkout's lock. `Ok(false)`:
    /// the budget is spent.
    pub(crate) fn fetch(&self, branches: &[String], depth: Depth) -> Result<bool> {
        debug_assert!(branches.iter().all(|b| self.scope.branch(b)));
        let branches: Vec<String> = branches
            .iter()
            .filter(|b| self.scope.branch(b))
            .cloned()
            .collect();
        if branches.is_empty() {
            return Ok(true);
        }
        let mut slot = self.fetcher.borrow_mut();
        if slot.is_none() {
            *slot = Some(Box::new(Fetcher::new(self.origin()?, Budget::from_env()?)));
        }
        let fetcher = slot.as_mut().expect("set above");
        // Another call fetching into this checkout is waited for within this call's budget.
        let Some(_lock) = fetch::lock(self.git.path(), fetcher.deadline())? else {
            fetcher.exhausted = true;
            self.budget_spent.set(true);
            return Ok(false);
        };
        match fetcher.fetch(&self.git, &branches, depth) {
            Ok(()) => Ok(true),
            Err(Stopped::Budget) => {
                self.budget_spent.set(true);
                Ok(false)
            }
            Err(Stopped::Failed(e)) => Err(e),
        }
    }

    /// `fetched …` when this call fetched, and what the budget cut short; for the answer's note.
    pub fn fetch_note(&self) -> Option<String> {
        let slot = self.fetcher.borrow();
        let mut parts = Vec::new();
        if let Some(f) = slot.as_ref()
            && f.cost.fetches > 0
        {
            parts.push(format!("{} to answer", f.cost.describe()));
        }
        if self.budget_spent.get() {
            parts.push(budget_text());
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The budget ran out before the call had what it needed.
    fn budget_error(&self, what: &str) -> Error {
        Error::new(
            Kind::Unavailable,
            format!(
                "{what} of `{}` was stopped: {}",
                self.repo.name,
                self.fetch_note().unwrap_or_else(budget_text)
            ),
        )
    }

    /// History an answer needs could not be fetched.
    pub(crate) fn history_unavailable(&self, what: &str, needs: &NeedsHistory) -> Error {
        let why = match self.fetch_note() {
            Some(n) => n,
            None => "the remote has no more of it on an in-scope branch".to_string(),
        };
        Error::new(
            Kind::Unavailable,
            format!(
                "`{what}` in `{}` needs history past commit {} that could not be fetched: {why}",
                self.repo.name,
                needs
                    .boundary
                    .first()
                    .map_or_else(String::new, git2::Oid::to_string)
            ),
        )
    }

    /// Fetch more history of the in-scope branch `via` (default: the checked-out branch),
    /// enough for `needs`; doubling when a round did not move the boundary. `Ok(false)`: no
    /// more can be had (budget spent, the branch is gone, or the history is complete).
    pub fn deepen(&self, via: Option<&str>, needs: &NeedsHistory) -> Result<bool> {
        if !self.git.is_shallow() {
            return Ok(false);
        }
        let Some(branch) = via
            .map(str::to_string)
            .or_else(|| self.checked_out_branch())
        else {
            return Ok(false);
        };
        if !self.scope.branch(&branch) {
            return Ok(false);
        }
        let advertised = self.advertised()?;
        let Some(remote_tip) = advertised.tip(&branch) else {
            return Ok(false);
        };
        // Depths count from the tip the server has, which may be ahead of the local one.
        let from = if self.git.find_commit(remote_tip).is_ok() {
            remote_tip
        } else {
            self.branch_heads()
                .into_iter()
                .find(|h| h.name == branch)
                .map_or(remote_tip, |h| h.commit)
        };
        let distance = self.distance(from, &needs.boundary).unwrap_or(0);
        let wanted = u32::try_from(needs.at_least).unwrap_or(u32::MAX);
        let mut depth = distance
            .saturating_add(wanted)
            .saturating_add(1)
            .max(self.current_depth(&branch).unwrap_or(0).saturating_add(1));
        let before = self.shallow_commits();
        if let Some(last) = self.depths.borrow().get(&branch)
            && depth <= *last
        {
            depth = last.saturating_mul(2);
        }
        self.depths.borrow_mut().insert(branch.clone(), depth);
        if !self.fetch(&[branch], Depth::Commits(depth))? {
            return Ok(false);
        }
        // No progress: the boundary the answer stopped at is still there and nothing moved.
        let after = self.shallow_commits();
        Ok(after != before || needs.boundary.iter().any(|b| !after.contains(b)))
    }

    /// How deep the checkout holds branch `name`'s history, counted as the protocol counts
    /// (`deepen N`: the tip is 1): `None` when no shallow boundary is in it (complete), 0 when
    /// its tip is missing. A fetch with a smaller depth would make git record the history as
    /// shorter than it is (`--depth` also shortens), so rounds never ask for less.
    fn current_depth(&self, name: &str) -> Option<u32> {
        let Some(tip) = self
            .branch_heads()
            .into_iter()
            .find(|h| h.name == name)
            .map(|h| h.commit)
        else {
            return Some(0);
        };
        let shallow = self.shallow_commits();
        if shallow.is_empty() {
            return None;
        }
        self.distance(tip, &shallow).map(|d| d + 1)
    }

    /// The fewest first-or-other-parent steps from `tip` to the farthest of `targets` that
    /// it reaches in the commits present.
    fn distance(&self, tip: git2::Oid, targets: &[git2::Oid]) -> Option<u32> {
        let objects = Objects::new(&self.git).ok()?;
        let wanted: HashSet<git2::Oid> = targets.iter().copied().collect();
        let mut seen = HashSet::from([tip]);
        let mut queue = VecDeque::from([(tip, 0u32)]);
        let mut found = 0;
        let mut best = None;
        let mut parents = Vec::new();
        while let Some((id, d)) = queue.pop_front() {
            if wanted.contains(&id) {
                best = Some(d);
                found += 1;
                if found == wanted.len() {
                    break;
                }
            }
            if !read_parents(&objects, id, &mut parents) {
                continue;
            }
            for p in &parents {
                if seen.insert(*p) {
                    queue.push_back((*p, d + 1));
                }
            }
            if seen.len() > 2_000_000 {
                break;
            }
        }
        best
    }

    /// A commit id (full or abbreviated) that some in-scope branch contains; searched for on
    /// the remote when the checkout lacks it, cheapest places first:
    ///
    /// 1. an in-scope branch whose advertised tip starts with the id (a pull request's head);
    /// 2. the checked-out branch's history, 64, 256 then 1,024 commits deep (ids an agent asks
    ///    about are mostly recent commits of the default branch);
    /// 3. the tips of the other in-scope branches;
    /// 4. the checked-out branch's history, four times deeper each round, to its start;
    /// 5. the other in-scope branches' histories, 8 commits deep, then four times deeper.
    ///
    /// Each step ends the search as soon as the id resolves; the call's budget bounds it all.
    fn resolve_commit_id(&self, id: &str) -> Result<ResolvedRef> {
        let not_found = |searched: &str| {
            Error::not_found(format!(
                "no commit `{id}` is reachable from a branch in scope of `{}`{searched}; call list_commits to see commits",
                self.repo.name
            ))
        };
        let stopped = || not_found(&format!(" (the search stopped: {})", budget_text()));
        if let Some(r) = self.lookup_commit(id)? {
            return Ok(r);
        }
        let advertised = match self.advertised() {
            Ok(a) => a,
            Err(e) => {
                return Err(not_found(&format!(
                    " (the remote could not be searched: {})",
                    e.message
                )));
            }
        };
        let in_scope: Vec<(String, git2::Oid)> = advertised
            .branches
            .iter()
            .filter(|(name, _)| self.scope.branch(name))
            .cloned()
            .collect();
        let heads = self.branch_heads();
        let lacks =
            |name: &str, tip: git2::Oid| !heads.iter().any(|h| h.name == name && h.commit == tip);
        let lower = id.to_ascii_lowercase();
        // Step 1.
        let named: Vec<String> = in_scope
            .iter()
            .filter(|(n, tip)| tip.to_string().starts_with(&lower) && lacks(n, *tip))
            .map(|(n, _)| n.clone())
            .collect();
        if !named.is_empty() {
            if !self.fetch(&named, self.tip_depth())? {
                return Err(stopped());
            }
            if let Some(r) = self.lookup_commit(id)? {
                return Ok(r);
            }
        }
        let main = self
            .checked_out_branch()
            .filter(|m| in_scope.iter().any(|(n, _)| n == m));
        // One round of a branch's history: `Ok(None)` when it made no progress.
        let round = |branches: &[String], depth: u32| -> Result<Option<Option<ResolvedRef>>> {
            if branches.is_empty() || !self.git.is_shallow() {
                return Ok(None);
            }
            let depths: Vec<(String, Option<u32>)> = branches
                .iter()
                .map(|b| (b.clone(), self.current_depth(b)))
                .collect();
            if depths.iter().all(|(_, d)| d.is_none()) {
                return Ok(None);
            }
            let deeper: Vec<String> = depths
                .into_iter()
                .filter(|(_, d)| d.is_some_and(|d| d < depth))
                .map(|(b, _)| b)
                .collect();
            if deeper.is_empty() {
                // Already this deep: the next round goes further.
                return Ok(Some(None));
            }
            let before = self.shallow_commits();
            if !self.fetch(&deeper, Depth::Commits(depth))? {
                return Err(stopped());
            }
            let found = self.lookup_commit(id)?;
            if found.is_none() && self.shallow_commits() == before {
                return Ok(None);
            }
            Ok(Some(found))
        };
        let main: Vec<String> = main.into_iter().collect();
        // Step 2.
        for depth in [64, 256, 1024] {
            match round(&main, depth)? {
                Some(Some(r)) => return Ok(r),
                Some(None) => {}
                None => break,
            }
        }
        // Step 3.
        let tips: Vec<String> = in_scope
            .iter()
            .filter(|(n, tip)| lacks(n, *tip) && !main.contains(n))
            .map(|(n, _)| n.clone())
            .collect();
        if !tips.is_empty() {
            if !self.fetch(&tips, self.tip_depth())? {
                return Err(stopped());
            }
            if let Some(r) = self.lookup_commit(id)? {
                return Ok(r);
            }
        }
        // Steps 4 and 5.
        let others: Vec<String> = in_scope
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !main.contains(n))
            .collect();
        for (branches, start) in [(&main, 4096u32), (&others, 8)] {
            let mut depth = start;
            loop {
                match round(branches, depth)? {
                    Some(Some(r)) => return Ok(r),
                    Some(None) => depth = depth.saturating_mul(4),
                    None => break,
                }
            }
        }
        Err(not_found(""))
    }

    /// A commit id resolved in the objects present, if an in-scope branch reaches it.
    fn lookup_commit(&self, id: &str) -> Result<Option<ResolvedRef>> {
        let heads = self.branch_heads();
        let found = |commit: git2::Oid| {
            self.containing(&heads, commit).map(|h| ResolvedRef {
                commit,
                branch: None,
                via: Some(h.name.clone()),
            })
        };
        match rev::resolve_commit_prefix(&self.git, id) {
            Ok(commit) => Ok(found(commit)),
            // No cause kept: a missing object and an unreachable one must look the same.
            Err(HistoryError::NotFound(_) | HistoryError::NotACommit { .. }) => Ok(None),
            Err(HistoryError::Ambiguous { candidates, .. }) => {
                // Only what an in-scope branch reaches counts: an out-of-scope commit sharing
                // the prefix is neither shown nor allowed to make the id ambiguous.
                let visible: Vec<ResolvedRef> = candidates
                    .iter()
                    .filter(|(_, kind)| *kind == git2::ObjectType::Commit)
                    .filter_map(|(c, _)| found(*c))
                    .collect();
                match visible.len() {
                    0 => Ok(None),
                    1 => Ok(visible.into_iter().next()),
                    _ => Err(Error::input(format!(
                        "commit id `{id}` is ambiguous in `{}`: it starts {}; give more hex digits",
                        self.repo.name,
                        visible
                            .iter()
                            .map(|r| r.commit.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The in-scope head that is `commit` or has it in its history, walking the parents the
    /// commits record (libgit2's own graph walks keep a repository's shallow boundaries from
    /// when it was opened, and a pooled repository outlives a fetch).
    fn containing<'h>(&self, heads: &'h [BranchHead], commit: git2::Oid) -> Option<&'h BranchHead> {
        if let Some(h) = heads.iter().find(|h| h.commit == commit) {
            return Some(h);
        }
        let objects = Objects::new(&self.git).ok()?;
        // One walk from every head at once; each commit remembers the first head that reached it.
        let mut seen: HashMap<git2::Oid, usize> = HashMap::new();
        let mut queue = VecDeque::new();
        for (i, h) in heads.iter().enumerate() {
            if seen.insert(h.commit, i).is_none() {
                queue.push_back(h.commit);
            }
        }
        let mut parents = Vec::new();
        while let Some(id) = queue.pop_front() {
            let from = seen[&id];
            if id == commit {
                return heads.get(from);
            }
            if !read_parents(&objects, id, &mut parents) {
                continue;
            }
            for p in &parents {
                if !seen.contains_key(p) {
                    seen.insert(*p, from);
                    queue.push_back(*p);
                }
            }
        }
        None
    }

    /// The checked-out commit, when its branch is in scope or an in-scope branch contains it.
    fn resolve_head(&self) -> Result<ResolvedRef> {
        let head = self.git.head().map_err(|e| {
            Error::not_found(format!(
                "the checkout of `{}` has no commit checked out; pass `ref` (call list_branches)",
                self.repo.name
            ))
            .with_source(e)
        })?;
        let commit = head.peel_to_commit().map_err(git_error)?.id();
        let branch = head
            .name()
            .ok()
            .and_then(|n| n.strip_prefix("refs/heads/"))
            .map(str::to_string);
        if let Some(b) = &branch
            && self.scope.branch(b)
        {
            return Ok(ResolvedRef {
                commit,
                branch: Some(b.clone()),
                via: Some(b.clone()),
            });
        }
        if let Some(h) = self.containing(&self.branch_heads(), commit) {
            return Ok(ResolvedRef {
                commit,
                branch: None,
                via: Some(h.name.clone()),
            });
        }
        Err(Error::out_of_scope(format!(
            "the checked-out commit of `{}` is not on a branch in scope; pass `ref` (call list_branches to see the branches in scope)",
            self.repo.name
        )))
    }

    /// Look `path` up in the tree of `commit`. Tree lookups never follow symlinks: a path
    /// through a symlinked directory is simply not found.
    pub(crate) fn at_path(
        &self,
        commit: git2::Oid,
        label: &str,
        path: &Path,
    ) -> Result<AtPath<'_>> {
        let git = &*self.git;
        let tree = git
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(git_error)?;
        if path.as_os_str().is_empty() {
            return Ok(AtPath::Tree(tree));
        }
        let entry = tree.get_path(path).map_err(|e| {
            Error::not_found(format!(
                "`{}` does not exist in `{}` at `{label}`; call browse on its parent directory to see what is there",
                tree_path(path),
                self.repo.name
            ))
            .with_source(e)
        })?;
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                Ok(AtPath::Tree(git.find_tree(entry.id()).map_err(git_error)?))
            }
            Some(git2::ObjectType::Blob) => Ok(AtPath::Blob {
                id: entry.id(),
                mode: entry.filemode(),
            }),
            _ => Ok(AtPath::Submodule(entry.id())),
        }
    }

    /// The commit ids at the shallow boundary (their parents were not fetched).
    pub(crate) fn shallow_commits(&self) -> Vec<git2::Oid> {
        if !self.git.is_shallow() {
            return Vec::new();
        }
        std::fs::read_to_string(self.git.path().join("shallow"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| git2::Oid::from_str(l.trim()).ok())
            .collect()
    }
}

/// The branch a ref string names, after stripping an explicit `refs/heads/` or
/// `refs/remotes/<remote>/`; any other `refs/…` is refused.
fn branch_name_of(reference: &str) -> Result<&str> {
    if let Some(b) = reference.strip_prefix("refs/heads/") {
        return Ok(b);
    }
    if let Some(rest) = reference.strip_prefix("refs/remotes/") {
        return match rest.split_once('/') {
            Some((_, b)) if !b.is_empty() => Ok(b),
            _ => Err(refs_refused(reference)),
        };
    }
    if reference.starts_with("refs/") {
        // Tags, notes, stash, replace refs…: not branches, whatever exists under them.
        return Err(refs_refused(reference));
    }
    Ok(reference)
}

/// A refusal of revision syntax, worded as the other ref refusals.
fn syntax_error(reference: &str, e: HistoryError) -> Error {
    let why = match &e {
        HistoryError::Syntax { why, .. } => why.clone(),
        other => other.to_string(),
    };
    Error::input(format!(
        "ref `{}` is not accepted: {why}. Pass a branch name from list_branches or a commit id from list_commits, optionally followed by ~N or ^N",
        reference.escape_debug()
    ))
}

/// What the budget note says, and how to change it.
fn budget_text() -> String {
    let b = Budget::from_env().unwrap_or_default();
    format!(
        "the fetch budget of one call ({} s, {} MB) ran out; call again to continue from what was fetched, or raise {} / {}",
        b.time.as_secs(),
        b.bytes / (1024 * 1024),
        fetch::BUDGET_SECS_VAR,
        fetch::BUDGET_MB_VAR
    )
}

fn refs_refused(reference: &str) -> Error {
    Error::out_of_scope(format!(
        "`{reference}` is not a branch: only branches (`main` or `refs/heads/main`) and commit ids are accepted; call list_branches to see the branches in scope"
    ))
}

/// A commit's parents as its header records them: libgit2 hides a shallow boundary's.
pub(crate) fn recorded_parents(git: &git2::Repository, id: git2::Oid) -> Result<Vec<git2::Oid>> {
    let objects = Objects::new(git)?;
    let obj = objects
        .read(id)?
        .ok_or(HistoryError::Missing { what: "commit", id })?;
    let mut parents = Vec::new();
    parse_commit(id, obj.data(), &mut parents)?;
    Ok(parents)
}

/// The first line of a commit's message, capped.
pub(crate) fn summary(commit: &git2::Commit<'_>) -> String {
    crate::tools::text::summary(&String::from_utf8_lossy(commit.message_bytes()))
}

/// The parents commit `id` records, into `parents`: false when the commit is missing (beyond
/// a shallow boundary) or unreadable.
fn read_parents(objects: &Objects, id: git2::Oid, parents: &mut Vec<git2::Oid>) -> bool {
    parents.clear();
    match objects.read(id) {
        Ok(Some(obj)) => parse_commit(id, obj.data(), parents).is_ok(),
        _ => false,
    }
}
