//! Fetches on demand into an existing checkout: the branches a remote advertises
//! ([`Origin::advertised`]), a branch's tip or more of its history ([`Fetcher::fetch`]), under a
//! per-call [`Budget`] and a per-checkout lock ([`lock`]).
//!
//! What a fetch may change, and why:
//! - Fetched branches land in `refs/agentenv/branches/<name>`, never in `refs/heads/*` or
//!   `refs/remotes/*`: those belong to provision (the checked-out branch and its
//!   remote-tracking ref), and a tool must never move the working tree, the checked-out branch
//!   or what `git status` compares against. The namespace says who wrote it.
//! - Only branches are fetched, by name (`refs/heads/X`), and only those the caller has already
//!   checked against the scope: never a commit id, never a tag (`--no-tags`), so nothing that
//!   only an out-of-scope branch reaches can arrive.
//! - `origin`'s configuration is not touched (an anonymous remote with the same URL does the
//!   fetch): the checkout stays the single-branch clone provision made, and provision's next
//!   update works on it as before. A deeper `.git/shallow` is all it sees.
//! - Network fetches go through the provider's [`GitAuth`] (its credential to its origin only,
//!   the transport's timeouts) and retry transient failures as provision does. A local
//!   repository (`url:` a path) is copied from directly with a pack builder, whole branches:
//!   libgit2's local transport can neither fetch shallowly nor keep a shallow clone's
//!   `.git/shallow` right.
//!
//! Depths are absolute, as in the protocol (`deepen N`: N commits from each wanted tip); git's
//! `--deepen` (relative) is not in libgit2. Callers compute N from how far their boundary is.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::{AutotagOption, FetchOptions, Oid, RemoteCallbacks, Repository};

use crate::error::{Error, Result};
use crate::provision::auth;
use crate::provision::git::{GitAuth, git_error};
use crate::provision::plan::RepoPlan;

/// Where fetched branches live in a checkout.
pub const REF_PREFIX: &str = "refs/agentenv/branches/";

/// Seconds one tool call may spend fetching, over all its rounds.
pub const BUDGET_SECS_VAR: &str = "AGENTENV_FETCH_BUDGET_SECS";
/// Megabytes one tool call may download.
pub const BUDGET_MB_VAR: &str = "AGENTENV_FETCH_BUDGET_MB";
const DEFAULT_SECS: u64 = 60;
const DEFAULT_MB: u64 = 256;

/// How much one call may fetch: past either limit the call answers with what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub time: Duration,
    pub bytes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            time: Duration::from_secs(DEFAULT_SECS),
            bytes: DEFAULT_MB * 1024 * 1024,
        }
    }
}

impl Budget {
    /// The defaults (60 s, 256 MB), or what [`BUDGET_SECS_VAR`] and [`BUDGET_MB_VAR`] say.
    pub fn from_env() -> Result<Budget> {
        let read = |var: &str, default: u64| -> Result<u64> {
            match std::env::var(var) {
                Err(_) => Ok(default),
                Ok(v) => v.trim().parse::<u64>().map_err(|_| {
                    Error::input(format!(
                        "{var}=`{v}` is not a whole number; unset it for the default ({default})"
                    ))
                }),
            }
        };
        Ok(Budget {
            time: Duration::from_secs(read(BUDGET_SECS_VAR, DEFAULT_SECS)?),
            bytes: read(BUDGET_MB_VAR, DEFAULT_MB)?.saturating_mul(1024 * 1024),
        })
    }
}

/// What the fetches of one call cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    /// Fetches made (one per round).
    pub fetches: u32,
    /// Commits received.
    pub commits: usize,
    /// Bytes received (the packs as sent).
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Cost {
    /// `fetched 120 commits (1.4 MB) in 2 fetches, 850 ms`.
    pub fn describe(&self) -> String {
        let size = if self.bytes >= 1024 * 1024 {
            format!("{:.1} MB", self.bytes as f64 / (1024.0 * 1024.0))
        } else {
            format!("{} KB", self.bytes.div_ceil(1024))
        };
        format!(
            "fetched {} commit{} ({size}) in {} fetch{}, {} ms",
            self.commits,
            if self.commits == 1 { "" } else { "s" },
            self.fetches,
            if self.fetches == 1 { "" } else { "es" },
            self.elapsed.as_millis()
        )
    }
}

/// How much of a branch's history to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Everything (in a shallow checkout: unshallow along the branch).
    Full,
    /// This many commits from the tip (1: the tip alone).
    Commits(u32),
}

/// The branches a remote advertises and the branch its HEAD names.
#[derive(Debug, Clone, Default)]
pub struct Advertised {
    pub default: Option<String>,
    /// `(branch, commit)`, sorted by name.
    pub branches: Vec<(String, Oid)>,
}

impl Advertised {
    pub fn tip(&self, branch: &str) -> Option<Oid> {
        self.branches
            .iter()
            .find(|(n, _)| n == branch)
            .map(|(_, o)| *o)
    }
}

/// Where a checkout fetches from: provision's plan of the repository and its credential.
#[derive(Debug, Clone)]
pub struct Origin {
    pub plan: RepoPlan,
    pub auth: GitAuth,
}

/// The branches and default branch of an open connection.
pub(crate) fn advertised_on(
    conn: &super::Connection<'_, '_>,
) -> std::result::Result<Advertised, git2::Error> {
    let default = conn
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().ok().map(str::to_string))
        .map(|b| b.strip_prefix("refs/heads/").unwrap_or(&b).to_string());
    let mut branches: Vec<(String, Oid)> = conn
        .list()?
        .iter()
        .filter_map(|h| {
            h.name()
                .strip_prefix("refs/heads/")
                .map(|n| (n.to_string(), h.oid()))
        })
        .collect();
    branches.sort();
    Ok(Advertised { default, branches })
}

impl Origin {
    /// What the remote advertises (`git ls-remote --heads` and its HEAD), retried as provision
    /// retries.
    pub fn advertised(&self) -> Result<Advertised> {
        auth::with_retries(|| self.advertised_once())
            .map_err(|e| auth::explain(self.auth.credential(), e))
    }

    fn advertised_once(&self) -> Result<Advertised> {
        let err = |e| git_error(&self.plan, e);
        if let Some(path) = &self.plan.local_path {
            let src = Repository::open(path).map_err(err)?;
            return local_advertised(&src).map_err(err);
        }
        let scratch = tempfile::tempdir()?;
        let repo = Repository::init_bare(scratch.path()).map_err(err)?;
        let mut remote = repo.remote_anonymous(&self.plan.fetch_url).map_err(err)?;
        let conn = self.auth.connect(&mut remote).map_err(err)?;
        advertised_on(&conn).map_err(err)
    }
}

fn local_advertised(src: &Repository) -> std::result::Result<Advertised, git2::Error> {
    let default = src
        .find_reference("HEAD")
        .ok()
        .and_then(|h| h.symbolic_target().ok().flatten().map(str::to_string))
        .and_then(|t| t.strip_prefix("refs/heads/").map(str::to_string));
    let mut branches = Vec::new();
    for r in src.references_glob("refs/heads/*")?.flatten() {
        let (Ok(name), Ok(c)) = (r.name(), r.peel_to_commit()) else {
            continue;
        };
        if let Some(b) = name.strip_prefix("refs/heads/") {
            branches.push((b.to_string(), c.id()));
        }
    }
    branches.sort();
    Ok(Advertised { default, branches })
}

/// Held while a call fetches into one checkout: two calls (threads of one server, or two
/// processes) never write one object store's packs, refs and `.git/shallow` at once.
#[derive(Debug)]
pub struct FetchLock {
    _file: File,
}

/// Take the checkout's fetch lock (`.git/agentenv-fetch.lock`), waiting for a fetch in
/// progress until `deadline` (`None`: still held then; the caller's budget is spent).
pub fn lock(git_dir: &Path, deadline: Instant) -> Result<Option<FetchLock>> {
    let path = git_dir.join("agentenv-fetch.lock");
    let file = crate::provision::lock::wait_until(&path, deadline)?;
    Ok(file.map(|f| FetchLock { _file: f }))
}

/// Why a fetch did not happen or stopped.
#[derive(Debug)]
pub enum Stopped {
    /// The call's budget is spent (before or during the fetch); nothing was changed.
    Budget,
    Failed(Error),
}

impl From<Error> for Stopped {
    fn from(e: Error) -> Self {
        Stopped::Failed(e)
    }
}

/// The fetches of one call, and what they cost so far.
pub struct Fetcher {
    origin: Origin,
    budget: Budget,
    started: Instant,
    pub cost: Cost,
    /// The budget stopped a fetch of this call.
    pub exhausted: bool,
}

impl Fetcher {
    pub fn new(origin: Origin, budget: Budget) -> Self {
        Fetcher {
            origin,
            budget,
            started: Instant::now(),
            cost: Cost::default(),
            exhausted: false,
        }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// When this call's time budget ends.
    pub fn deadline(&self) -> Instant {
        self.started + self.budget.time
    }

    fn remaining(&self) -> Option<(Duration, u64)> {
        let time = self.budget.time.checked_sub(self.started.elapsed())?;
        let bytes = self.budget.bytes.checked_sub(self.cost.bytes)?;
        (!time.is_zero() && bytes > 0).then_some((time, bytes))
    }

    /// Fetch `branches` (already checked against the scope) into `REF_PREFIX<name>` of `repo`,
    /// `depth` commits deep (a local origin: always whole). Hold [`lock`] around it.
    pub fn fetch(
        &mut self,
        repo: &Repository,
        branches: &[String],
        depth: Depth,
    ) -> std::result::Result<(), Stopped> {
        if branches.is_empty() {
            return Ok(());
        }
        let Some((time, bytes)) = self.remaining() else {
            self.exhausted = true;
            return Err(Stopped::Budget);
        };
        let packs_before = pack_indexes(repo);
        let t0 = Instant::now();
        let over = Cell::new(false);
        let received = Cell::new(0u64);
        let result = if let Some(path) = &self.origin.plan.local_path {
            copy_local(repo, path, branches, bytes, &over, &received)
                .map_err(|e| git_error(&self.origin.plan, e))
        } else {
            auth::with_retries(|| {
                self.fetch_remote(repo, branches, depth, (t0, time, bytes), &over, &received)
            })
            .map_err(|e| auth::explain(self.origin.auth.credential(), e))
        };
        self.cost.fetches += 1;
        self.cost.bytes += received.get();
        self.cost.elapsed += t0.elapsed();
        if over.get() {
            self.exhausted = true;
            return Err(Stopped::Budget);
        }
        result?;
        self.cost.commits += new_commits(repo, &packs_before);
        Ok(())
    }

    fn fetch_remote(
        &self,
        repo: &Repository,
        branches: &[String],
        depth: Depth,
        (t0, time, bytes): (Instant, Duration, u64),
        over: &Cell<bool>,
        received: &Cell<u64>,
    ) -> Result<()> {
        let plan = &self.origin.plan;
        let err = |e| git_error(plan, e);
        let mut remote = repo.remote_anonymous(&plan.fetch_url).map_err(err)?;
        let mut conn = self.origin.auth.connect(&mut remote).map_err(err)?;
        let refspecs: Vec<String> = branches
            .iter()
            .map(|b| format!("+refs/heads/{b}:{REF_PREFIX}{b}"))
            .collect();
        let mut cb = RemoteCallbacks::new();
        cb.transfer_progress(|p| {
            received.set(p.received_bytes() as u64);
            // Returning false makes libgit2 stop the download and discard the partial pack.
            if received.get() > bytes || t0.elapsed() > time {
                over.set(true);
                return false;
            }
            true
        });
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(cb);
        fo.download_tags(AutotagOption::None);
        fo.update_fetchhead(false);
        match depth {
            Depth::Commits(n) => {
                fo.depth(n.clamp(1, i32::MAX as u32) as i32);
            }
            // GIT_FETCH_DEPTH_UNSHALLOW: libgit2 asks the server for everything behind the
            // shallow boundary.
            Depth::Full if repo.is_shallow() => {
                fo.depth(i32::MAX);
            }
            Depth::Full => {}
        }
        let refs: Vec<&str> = refspecs.iter().map(String::as_str).collect();
        conn.remote()
            .fetch(&refs, Some(&mut fo), None)
            .map_err(|e| {
                if over.get() {
                    Error::failure("the fetch budget is spent")
                } else {
                    git_error(plan, e)
                }
            })
    }
}

/// Copy whole branches from a repository on disk: their commits and everything they reach that
/// `repo` lacks, as one pack; then point the fetched refs at them and drop the shallow
/// boundaries the copy filled in.
fn copy_local(
    repo: &Repository,
    source: &Path,
    branches: &[String],
    max_bytes: u64,
    over: &Cell<bool>,
    received: &Cell<u64>,
) -> std::result::Result<(), git2::Error> {
    let src = Repository::open(source)?;
    let mut walk = src.revwalk()?;
    let mut tips = Vec::new();
    for b in branches {
        if let Ok(tip) = src.refname_to_id(&format!("refs/heads/{b}")) {
            walk.push(tip)?;
            tips.push((b, tip));
        }
    }
    // What `repo` has whole need not be sent; in a shallow checkout "has" is not "has
    // everything behind", so nothing is hidden there.
    if !repo.is_shallow() {
        for r in repo.references()?.flatten() {
            if let Some(id) = r.target() {
                let _ = walk.hide(id);
            }
        }
    }
    let mut pack = src.packbuilder()?;
    pack.insert_walk(&mut walk)?;
    if pack.object_count() > 0 {
        let odb = repo.odb()?;
        let mut writer = odb.packwriter()?;
        let mut failed = None;
        pack.foreach(|chunk| {
            received.set(received.get() + chunk.len() as u64);
            if received.get() > max_bytes {
                over.set(true);
                return false;
            }
            match writer.write_all(chunk) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        if over.get() {
            return Ok(());
        }
        if let Some(e) = failed {
            return Err(git2::Error::from_str(&format!("writing the pack: {e}")));
        }
        writer.commit()?;
    }
    for (b, tip) in tips {
        repo.reference(&format!("{REF_PREFIX}{b}"), tip, true, "agentenv: fetch")?;
    }
    if repo.is_shallow() {
        drop_filled_boundaries(repo)?;
    }
    Ok(())
}

/// Rewrite `.git/shallow` without the commits whose parents are all present now.
fn drop_filled_boundaries(repo: &Repository) -> std::result::Result<(), git2::Error> {
    let path = repo.path().join("shallow");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let odb = repo.odb()?;
    let mut keep = Vec::new();
    for line in text.lines() {
        let Ok(id) = Oid::from_str(line.trim()) else {
            continue;
        };
        let mut parents = Vec::new();
        let filled = odb.read(id).is_ok_and(|o| {
            super::objects::parse_commit(id, o.data(), &mut parents).is_ok()
                && parents.iter().all(|p| odb.exists(*p))
        });
        if !filled {
            keep.push(id.to_string());
        }
    }
    let io = |e: std::io::Error| git2::Error::from_str(&format!("rewriting .git/shallow: {e}"));
    if keep.is_empty() {
        std::fs::remove_file(&path).map_err(io)?;
    } else {
        let tmp = repo.path().join("shallow.agentenv");
        std::fs::write(&tmp, keep.join("\n") + "\n").map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
    }
    Ok(())
}

/// The pack indexes in the object store.
fn pack_indexes(repo: &Repository) -> HashSet<PathBuf> {
    std::fs::read_dir(repo.path().join("objects/pack"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "idx"))
                .collect()
        })
        .unwrap_or_default()
}

/// The commits in the packs a fetch added (read from their indexes: libgit2's progress counts
/// objects of every kind).
fn new_commits(repo: &Repository, before: &HashSet<PathBuf>) -> usize {
    let Ok(odb) = repo.odb() else { return 0 };
    let mut n = 0;
    for idx in pack_indexes(repo).difference(before) {
        for id in pack_ids(idx) {
            if odb
                .read_header(id)
                .is_ok_and(|(_, kind)| kind == git2::ObjectType::Commit)
            {
                n += 1;
            }
        }
    }
    n
}

/// The object ids a version 2 pack index lists.
fn pack_ids(idx: &Path) -> Vec<Oid> {
    let Ok(data) = std::fs::read(idx) else {
        return Vec::new();
    };
    if data.len() < 8 + 256 * 4 || data[..4] != [0xff, b't', b'O', b'c'] {
        return Vec::new();
    }
    let fan = 8 + 255 * 4;
    let count = u32::from_be_bytes([data[fan], data[fan + 1], data[fan + 2], data[fan + 3]]);
    let start = 8 + 256 * 4;
    (0..count as usize)
        .filter_map(|i| data.get(start + i * 20..start + i * 20 + 20))
        .filter_map(|b| Oid::from_bytes(b).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_read_as_a_sentence() {
        let c = Cost {
            fetches: 2,
            commits: 120,
            bytes: 3 * 1024 * 1024 / 2,
            elapsed: Duration::from_millis(850),
        };
        assert_eq!(
            c.describe(),
            "fetched 120 commits (1.5 MB) in 2 fetches, 850 ms"
        );
    }
}
