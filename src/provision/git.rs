//! Repositories with git2: probe a remote, clone into a temporary directory beside the target
//! and rename it into place, update an existing checkout, and report what changed.
//!
//! Every network operation opens its connection through [`GitAuth::connect`], which enters the
//! repository's git session (the provider's credential for its origin only, the timeouts) for
//! the HTTP transport in [`crate::git`]; a failure comes back typed to [`git_error`].

use std::path::Path;
use std::sync::Arc;

use git2::{
    AutotagOption, FetchOptions, RemoteCallbacks, Repository, StatusOptions, build::CheckoutBuilder,
};

use crate::error::{Error, Kind, Result};
use crate::git::cache::Cache;
use crate::git::{Connection, Session, Settings};
use crate::provision::plan::RepoPlan;

/// How to authenticate to one repository's remote: anonymously, or with a provider's
/// credential (see [`super::auth`]), which the transport sends to the provider's git origin
/// only. Added here and nowhere else.
#[derive(Debug, Clone, Default)]
pub struct GitAuth {
    credential: Option<std::sync::Arc<super::auth::GitCredential>>,
}

impl GitAuth {
    pub fn anonymous() -> Self {
        GitAuth::default()
    }

    pub fn with(credential: Option<std::sync::Arc<super::auth::GitCredential>>) -> Self {
        GitAuth { credential }
    }

    pub fn credential(&self) -> Option<&super::auth::GitCredential> {
        self.credential.as_deref()
    }

    /// The session of one network operation: the credential for its origin, the timeouts.
    fn session(&self) -> std::result::Result<Arc<Session>, git2::Error> {
        let settings = Settings::from_env().map_err(crate::git::fail)?;
        Ok(Arc::new(match &self.credential {
            Some(c) => Session::with_credential(&c.origin, c.authorization(), settings)
                .map_err(crate::git::fail)?,
            None => Session::anonymous(settings),
        }))
    }

    /// Open a fetch connection; fetching on it ([`Connection::remote`]) stays in its session.
    pub(crate) fn connect<'r, 'c>(
        &'c self,
        remote: &'c mut git2::Remote<'r>,
    ) -> std::result::Result<Connection<'r, 'c>, git2::Error> {
        Connection::open(remote, self.session()?)
    }

    /// Fetch options for one fetch on an open connection: progress, depth, tags.
    fn fetch_options<'a>(
        &'a self,
        progress: Option<&'a (dyn Fn(Transfer) + Sync)>,
        depth: i32,
    ) -> FetchOptions<'a> {
        let mut fo = FetchOptions::new();
        if progress.is_some() || super::crash::armed("fetch") {
            let mut cb = RemoteCallbacks::new();
            cb.transfer_progress(move |p| {
                if let Some(report) = progress {
                    report(Transfer {
                        received: p.received_objects(),
                        total: p.total_objects(),
                        bytes: p.received_bytes(),
                    });
                }
                super::crash::point("fetch");
                true
            });
            fo.remote_callbacks(cb);
        }
        // Tags that point into the fetched history come along, as with `git clone --depth 1`.
        fo.download_tags(AutotagOption::Auto);
        if depth != 0 {
            fo.depth(depth);
        }
        fo
    }
}

/// Transfer progress of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub received: usize,
    pub total: usize,
    pub bytes: usize,
}

/// What happened to one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RepoAction {
    Cloned,
    Updated,
    UpToDate,
}

/// A repository in place: the branch checked out and its HEAD.
#[derive(Debug, Clone)]
pub struct Synced {
    pub action: RepoAction,
    pub branch: String,
    pub head: String,
}

/// The branch a remote would give us and its tip.
#[derive(Debug, Clone)]
pub struct RemoteTip {
    /// The branch, or `HEAD` when the remote's HEAD is detached and on no branch.
    pub branch: String,
    pub oid: git2::Oid,
    /// A remote without a default branch (a work tree at a detached HEAD, as CI checkouts
    /// often are) is followed at its HEAD commit, checked out detached.
    pub detached: bool,
}

impl RemoteTip {
    /// What to fetch, into a ref of `origin` (single-branch, like `git clone --single-branch`).
    fn refspec(&self) -> String {
        match self.detached {
            true => "+HEAD:refs/remotes/origin/HEAD".to_string(),
            false => format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.branch),
        }
    }
}

/// The prefix of a clone's temporary directory, beside the target: `.NAME.agentenv-clone-`.
fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.agentenv-clone-")
}

/// Remove the temporary clone directories a killed run left beside `target`.
/// Only called while holding the workdir lock, so no live clone owns them.
pub fn clean_leftovers(target: &Path) -> Result<()> {
    let Some(parent) = target.parent() else {
        return Ok(());
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    let prefix = temp_prefix(target);
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_dir_all(entry.path()).map_err(|e| {
                Error::failure(format!(
                    "cannot remove the leftover of an interrupted clone {}: {e}",
                    entry.path().display()
                ))
            })?;
        }
    }
    Ok(())
}

/// Whether `target` holds a checkout (a non-bare repository whose work tree is `target`).
pub fn is_checkout(target: &Path) -> bool {
    Repository::open(target)
        .ok()
        .and_then(|r| r.workdir().map(|w| same_dir(w, target)))
        .unwrap_or(false)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Clone or update one repository so its checkout is at the tip of the planned branch. A new
/// clone of a network repository comes through `cache` when one is given.
pub fn sync(
    plan: &RepoPlan,
    auth: &GitAuth,
    force: bool,
    progress: Option<&(dyn Fn(Transfer) + Sync)>,
    cache: Option<&Cache>,
) -> Result<Synced> {
    if plan.target.exists() && !is_empty_dir(&plan.target) {
        if !is_checkout(&plan.target) {
            return Err(Error::input(format!(
                "repository {}: {} exists and is not a git checkout",
                plan.name,
                plan.target.display()
            ))
            .with_hint("move it away or choose another `path:` for this repository"));
        }
        update(plan, auth, force, progress)
    } else {
        clone(plan, auth, progress, cache)
    }
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// Ask the remote which branch to check out and where its tip is, on an open connection.
fn remote_tip(plan: &RepoPlan, conn: &Connection<'_, '_>) -> Result<RemoteTip> {
    let heads = conn.list().map_err(|e| git_error(plan, e))?;
    let branch = match &plan.branch {
        Some(b) => b.clone(),
        None => match conn.default_branch() {
            Ok(head) => {
                let head = head.as_str().unwrap_or_default();
                head.strip_prefix("refs/heads/").unwrap_or(head).to_string()
            }
            Err(e) => {
                return match heads.iter().find(|h| h.name() == "HEAD") {
                    Some(h) => Ok(RemoteTip {
                        branch: "HEAD".into(),
                        oid: h.oid(),
                        detached: true,
                    }),
                    None => Err(git_error(plan, e)
                        .context("asking the remote for its default branch")
                        .with_hint("set `branch:` for this repository")),
                };
            }
        },
    };
    if !plan.scope.branch(&branch) {
        return Err(Error::not_found(format!(
            "repository {}: its branch `{branch}` is outside the spec's scope.branches",
            plan.name
        ))
        .with_hint("set `branch:` to a branch in scope, or widen `scope.branches`"));
    }
    let refname = format!("refs/heads/{branch}");
    match heads.iter().find(|h| h.name() == refname) {
        Some(h) => Ok(RemoteTip {
            branch,
            oid: h.oid(),
            detached: false,
        }),
        None => {
            let mut names: Vec<&str> = heads
                .iter()
                .filter_map(|h| h.name().strip_prefix("refs/heads/"))
                .collect();
            names.sort_unstable();
            let shown = names
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            Err(Error::not_found(format!(
                "repository {}: branch `{branch}` does not exist on {}",
                plan.name, plan.url
            ))
            .with_hint(if names.is_empty() {
                "the remote has no branches yet; push one first".to_string()
            } else {
                format!("set `branch:` to one the remote has: {shown}")
            }))
        }
    }
}

/// Look at the remote without changing anything (for `--dry-run`).
pub fn probe(plan: &RepoPlan, auth: &GitAuth) -> Result<RemoteTip> {
    check_local_source(plan)?;
    let scratch = tempfile::tempdir()?;
    let repo = Repository::init_bare(scratch.path()).map_err(|e| git_error(plan, e))?;
    let mut remote = repo
        .remote_anonymous(&plan.fetch_url)
        .map_err(|e| git_error(plan, e))?;
    let conn = auth.connect(&mut remote).map_err(|e| git_error(plan, e))?;
    remote_tip(plan, &conn)
}

/// The HEAD commit of an existing checkout, if any.
pub fn local_head(target: &Path) -> Option<git2::Oid> {
    Repository::open(target).ok()?.head().ok()?.target()
}

fn check_local_source(plan: &RepoPlan) -> Result<()> {
    if let Some(path) = &plan.local_path
        && !path.exists()
    {
        return Err(Error::not_found(format!(
            "repository {}: {} does not exist",
            plan.name,
            path.display()
        ))
        .with_hint(
            "fix the repository's `url:` (relative paths start at the spec file's directory)",
        ));
    }
    Ok(())
}

/// The depth to ask for. libgit2's local transport (paths and `file://`) cannot serve shallow
/// fetches, so local sources are fetched whole, still one branch only.
fn fetch_depth(plan: &RepoPlan, repo: &Repository) -> i32 {
    if plan.local_path.is_some() {
        0
    } else if plan.depth == 0 {
        // A checkout made shallow by an earlier `depth: 1` becomes complete.
        if repo.is_shallow() { i32::MAX } else { 0 }
    } else {
        plan.depth.min(i32::MAX as u32) as i32
    }
}

fn clone(
    plan: &RepoPlan,
    auth: &GitAuth,
    progress: Option<&(dyn Fn(Transfer) + Sync)>,
    cache: Option<&Cache>,
) -> Result<Synced> {
    check_local_source(plan)?;
    let parent = plan.target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::failure(format!("cannot create {}: {e}", parent.display())))?;
    let tmp = parent.join(format!(
        "{}{}",
        temp_prefix(&plan.target),
        std::process::id()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    let result = clone_into(plan, auth, progress, &tmp, cache);
    match result {
        Ok(synced) => {
            super::crash::point("clone-rename");
            if plan.target.exists() {
                // An empty directory: rename(2) cannot replace it portably, so remove it first.
                std::fs::remove_dir(&plan.target)?;
            }
            std::fs::rename(&tmp, &plan.target).map_err(|e| {
                let _ = std::fs::remove_dir_all(&tmp);
                Error::failure(format!(
                    "repository {}: cannot move the clone into {}: {e}",
                    plan.name,
                    plan.target.display()
                ))
            })?;
            Ok(synced)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn clone_into(
    plan: &RepoPlan,
    auth: &GitAuth,
    progress: Option<&(dyn Fn(Transfer) + Sync)>,
    tmp: &Path,
    cache: Option<&Cache>,
) -> Result<Synced> {
    // Local sources are on this machine already: a mirror would only be a second copy.
    if let Some(cache) = cache.filter(|_| plan.local_path.is_none()) {
        if let Some(synced) = clone_from_cache(plan, auth, progress, tmp, cache)? {
            return Ok(synced);
        }
        if tmp.exists() {
            std::fs::remove_dir_all(tmp)?;
        }
    }
    let err = |e| git_error(plan, e);
    let repo = Repository::init(tmp).map_err(err)?;
    // One connection serves both the question (which branch, which tip) and the download.
    let mut remote = repo.remote_anonymous(&plan.fetch_url).map_err(err)?;
    let conn = auth.connect(&mut remote).map_err(err)?;
    let tip = remote_tip(plan, &conn)?;
    let refspec = fetch_branch(plan, auth, progress, &repo, conn, &tip)?;
    // `origin` fetches this branch only, as after `git clone --single-branch`.
    repo.remote_with_fetch("origin", &plan.url, &refspec)
        .map_err(err)?;
    checkout(plan, &repo, &tip, WorkTree::Fresh)?;
    Ok(Synced {
        action: RepoAction::Cloned,
        branch: tip.branch,
        head: tip.oid.to_string(),
    })
}

/// Clone through the node's clone cache: refresh the repository's mirror (asking the remote
/// with this repository's credential, fetching only what the mirror lacks), then make the
/// checkout from the mirror's objects. `None` when the remote's HEAD is on no branch, which
/// the cache does not keep: the caller clones directly.
fn clone_from_cache(
    plan: &RepoPlan,
    auth: &GitAuth,
    progress: Option<&(dyn Fn(Transfer) + Sync)>,
    tmp: &Path,
    cache: &Cache,
) -> Result<Option<Synced>> {
    let err = |e| git_error(plan, e);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mirror = cache.lock(&plan.url)?;
        let tip = {
            let mut remote = mirror.remote(&plan.fetch_url).map_err(err)?;
            let mut conn = auth.connect(&mut remote).map_err(err)?;
            let tip = remote_tip(plan, &conn)?;
            if tip.detached {
                return Ok(None);
            }
            // Depth and tags are the cache's to decide (a complete mirror stays complete).
            let fo = auth.fetch_options(progress, 0);
            mirror
                .fetch(&mut conn, &tip.branch, tip.oid, plan.depth, fo)
                .map_err(err)?;
            tip
        };
        match mirror.checkout_into(tmp, &tip.branch) {
            Ok(head) => {
                return Ok(Some(Synced {
                    action: RepoAction::Cloned,
                    branch: tip.branch,
                    head: head.to_string(),
                }));
            }
            // A full disk or a directory we may not write is not the mirror's fault: say so,
            // and keep the mirror (fetching it anew would fill the same disk).
            Err(e) if storage_problem(tmp).is_some() => {
                return Err(e
                    .context(format!("repository {}", plan.name))
                    .with_hint(storage_hint(plan)));
            }
            // An object the quick checks could not see is unreadable: rebuild the mirror
            // from the remote once.
            Err(_) if attempt == 1 => {
                mirror.invalidate();
                drop(mirror);
                if tmp.exists() {
                    std::fs::remove_dir_all(tmp)?;
                }
            }
            Err(e) => {
                return Err(e.context(format!("repository {}", plan.name)));
            }
        }
    }
}

/// Download the tip's branch on the open connection (closing it); returns the refspec used.
fn fetch_branch(
    plan: &RepoPlan,
    auth: &GitAuth,
    progress: Option<&(dyn Fn(Transfer) + Sync)>,
    repo: &Repository,
    mut conn: Connection<'_, '_>,
    tip: &RemoteTip,
) -> Result<String> {
    let refspec = tip.refspec();
    let mut fo = auth.fetch_options(progress, fetch_depth(plan, repo));
    conn.remote()
        .fetch(&[&refspec], Some(&mut fo), None)
        .map_err(|e| git_error(plan, e))?;
    Ok(refspec)
}

/// The work tree a checkout writes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkTree {
    /// The empty work tree of a new clone.
    Fresh,
    /// An existing checkout; untracked files stay.
    Existing,
    /// An existing checkout whose local changes and untracked files are discarded (`--force`).
    Discarding,
}

/// Point the local branch, its remote-tracking ref and HEAD at the tip, and check it out.
fn checkout(plan: &RepoPlan, repo: &Repository, tip: &RemoteTip, into: WorkTree) -> Result<()> {
    let err = |e| git_error(plan, e);
    let commit = repo.find_commit(tip.oid).map_err(err)?;
    let b = &tip.branch;
    repo.reference(
        &format!("refs/remotes/origin/{b}"),
        tip.oid,
        true,
        "agentenv: fetch",
    )
    .map_err(err)?;
    if into == WorkTree::Fresh {
        let tree = commit.tree().map_err(err)?;
        populate(repo, &tree).map_err(err)?;
    } else {
        let mut co = CheckoutBuilder::new();
        co.force();
        if into == WorkTree::Discarding {
            co.remove_untracked(true);
        }
        crash_hook(&mut co);
        repo.checkout_tree(commit.as_object(), Some(&mut co))
            .map_err(err)?;
    }
    super::crash::point("checkout-done");
    if tip.detached {
        return repo.set_head_detached(tip.oid).map_err(err);
    }
    repo.reference(
        &format!("refs/heads/{b}"),
        tip.oid,
        true,
        "agentenv: provision",
    )
    .map_err(err)?;
    let mut cfg = repo.config().map_err(err)?;
    cfg.set_str(&format!("branch.{b}.remote"), "origin")
        .map_err(err)?;
    cfg.set_str(&format!("branch.{b}.merge"), &format!("refs/heads/{b}"))
        .map_err(err)?;
    repo.set_head(&format!("refs/heads/{b}")).map_err(err)?;
    Ok(())
}

/// Files per writer below which a second writer is not worth its start.
const FILES_PER_WRITER: usize = 64;

/// Write a new clone's work tree and index from `tree`, several files at a time (also a
/// checkout from the clone cache, `git::cache`).
///
/// Creating files is most of a cold provision (on ext4, inode allocation alone was 60% of its
/// cycles on tokio) and the git CLI does it one file at a time (`checkout.workers` is 1 unless
/// configured). Here one libgit2 checkout per core writes its own run of paths (in tree order,
/// so writers rarely share a directory), each on its own repository handle, with libgit2's
/// filters and attributes as in a single checkout: the `.gitattributes` files are written
/// first, alone, so every writer finds them. The writers leave the index alone; it is built
/// once at the end from the tree and each file's stat data, as a checkout would write it.
pub(crate) fn populate(
    repo: &Repository,
    tree: &git2::Tree<'_>,
) -> std::result::Result<(), git2::Error> {
    let writers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let mut attributes = Vec::new();
    let mut paths = Vec::new();
    // The walk stops at a directory whose name is not UTF-8; one checkout then writes all.
    let walked = tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() != Some(git2::ObjectType::Tree) {
            let mut path = dir.as_bytes().to_vec();
            path.extend_from_slice(entry.name_bytes());
            if entry.name_bytes() == b".gitattributes" {
                attributes.push(path);
            } else {
                paths.push(path);
            }
        }
        git2::TreeWalkResult::Ok
    });
    let writers = writers.min(paths.len() / FILES_PER_WRITER).max(1);
    let workdir = match repo.workdir() {
        Some(w) if walked.is_ok() && writers > 1 && cfg!(unix) => w,
        _ => {
            let mut co = CheckoutBuilder::new();
            co.force();
            crash_hook(&mut co);
            return repo.checkout_tree(tree.as_object(), Some(&mut co));
        }
    };
    write_paths(repo, tree, &attributes)?;
    let tree_id = tree.id();
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(paths.len().div_ceil(writers))
            .map(|chunk| {
                s.spawn(move || {
                    let repo = Repository::open(workdir)?;
                    let tree = repo.find_tree(tree_id)?;
                    write_paths(&repo, &tree, chunk)
                })
            })
            .collect();
        // Every writer is joined before the first failure is returned.
        let done: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(git2::Error::from_str("a checkout writer panicked")))
            })
            .collect();
        done.into_iter().collect::<std::result::Result<(), _>>()
    })?;
    write_index(repo, workdir, tree)
}

/// The reliability tests' `checkout` crash point, at each file written (only when armed).
fn crash_hook(co: &mut CheckoutBuilder<'_>) {
    if super::crash::armed("checkout") {
        co.progress(|_, _, _| super::crash::point("checkout"));
    }
}

/// Write these paths of `tree` into the work tree, leaving the index alone.
fn write_paths(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    paths: &[Vec<u8>],
) -> std::result::Result<(), git2::Error> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut co = CheckoutBuilder::new();
    co.force().update_index(false).disable_pathspec_match(true);
    crash_hook(&mut co);
    for p in paths {
        co.path(p.as_slice());
    }
    repo.checkout_tree(tree.as_object(), Some(&mut co))
}

/// The index of a fresh checkout: the tree's entries with the stat data of the files written.
#[cfg(unix)]
fn write_index(
    repo: &Repository,
    workdir: &Path,
    tree: &git2::Tree<'_>,
) -> std::result::Result<(), git2::Error> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let mut index = repo.index()?;
    index.read_tree(tree)?;
    let entries: Vec<git2::IndexEntry> = index.iter().collect();
    for mut e in entries {
        let path = workdir.join(std::ffi::OsStr::from_bytes(&e.path));
        let m = std::fs::symlink_metadata(&path).map_err(|err| {
            git2::Error::from_str(&format!("cannot stat {}: {err}", path.display()))
        })?;
        // Truncated to 32 bits as git's index stores them.
        e.ctime = git2::IndexTime::new(m.ctime() as i32, m.ctime_nsec() as u32);
        e.mtime = git2::IndexTime::new(m.mtime() as i32, m.mtime_nsec() as u32);
        e.dev = m.dev() as u32;
        e.ino = m.ino() as u32;
        e.uid = m.uid();
        e.gid = m.gid();
        if e.mode != 0o160000 {
            e.file_size = m.size() as u32;
        }
        index.add(&e)?;
    }
    index.write()
}

#[cfg(not(unix))]
fn write_index(
    _: &Repository,
    _: &Path,
    _: &git2::Tree<'_>,
) -> std::result::Result<(), git2::Error> {
    Err(git2::Error::from_str(
        "the parallel checkout is for unix only",
    ))
}

/// Files with local changes: modified, staged, deleted or untracked (ignored files don't count).
pub fn changed_files(repo: &Repository) -> std::result::Result<Vec<String>, git2::Error> {
    let mut so = StatusOptions::new();
    so.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut so))?;
    Ok(statuses
        .iter()
        .filter_map(|s| s.path().ok().map(str::to_string))
        .collect())
}

fn update(
    plan: &RepoPlan,
    auth: &GitAuth,
    force: bool,
    progress: Option<&(dyn Fn(Transfer) + Sync)>,
) -> Result<Synced> {
    check_local_source(plan)?;
    let err = |e| git_error(plan, e);
    let repo = Repository::open(&plan.target).map_err(err)?;
    let interrupted = Interrupted::find(&repo);
    if interrupted.is_some() {
        remove_stale_locks(plan, &repo)?;
    }
    match repo.find_remote("origin") {
        Err(_) => {
            repo.remote_with_fetch("origin", &plan.url, "+refs/heads/*:refs/remotes/origin/*")
                .map_err(err)?;
        }
        Ok(r) if r.url().ok() != Some(plan.url.as_str()) => {
            repo.remote_set_url("origin", &plan.url).map_err(err)?;
        }
        Ok(_) => {}
    }
    let mut remote = repo.find_remote("origin").map_err(err)?;
    let conn = auth.connect(&mut remote).map_err(err)?;
    let tip = remote_tip(plan, &conn)?;
    let on_branch = if tip.detached {
        repo.head_detached().unwrap_or(false)
    } else {
        repo.head()
            .ok()
            .is_some_and(|h| h.name().ok() == Some(format!("refs/heads/{}", tip.branch).as_str()))
    };
    let head = repo.head().ok().and_then(|h| h.target());
    // An interrupted update may have moved HEAD but not yet the branch's config: finish it.
    let current = on_branch
        && head == Some(tip.oid)
        && !needs_unshallow(plan, &repo)
        && interrupted.is_none();
    let up_to_date = || Synced {
        action: RepoAction::UpToDate,
        branch: tip.branch.clone(),
        head: tip.oid.to_string(),
    };
    // Nothing to move and nothing to discard: local changes are safe, and the warm path
    // skips scanning the work tree.
    if current && !force {
        return Ok(up_to_date());
    }
    let changed = changed_files(&repo).map_err(err)?;
    if current && changed.is_empty() {
        return Ok(up_to_date());
    }
    // Changes an interrupted update left (files it had written, or begun to write, on its way
    // to its target) are ours to finish, not the user's to keep.
    let ours = !changed.is_empty()
        && interrupted
            .as_ref()
            .is_some_and(|i| i.made(&repo, &changed));
    if !changed.is_empty() && !force && !ours {
        let shown: Vec<&str> = changed.iter().take(20).map(String::as_str).collect();
        let more = changed.len().saturating_sub(shown.len());
        let mut list = shown.join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        return Err(Error::failure(format!(
            "repository {}: {} has local changes that an update would discard: {list}",
            plan.name,
            plan.target.display()
        ))
        .with_hint(
            "commit or copy them elsewhere, or run `agentenv provision --force` to discard them",
        ));
    }
    if repo.find_commit(tip.oid).is_err() || needs_unshallow(plan, &repo) {
        let refspec = fetch_branch(plan, auth, progress, &repo, conn, &tip)?;
        let known = repo
            .find_remote("origin")
            .and_then(|r| r.fetch_refspecs())
            .map(|specs| {
                specs
                    .iter()
                    .any(|s| matches!(s, Ok(Some(x)) if x == refspec))
            })
            .unwrap_or(false);
        if !known {
            repo.remote_add_fetch("origin", &refspec).map_err(err)?;
        }
    } else {
        drop(conn);
    }
    // Marked only now: a fetch never touches the work tree, so a fetch that fails must not
    // leave a marker that would later count someone's edits as ours to discard.
    Interrupted::begin(plan, &repo, head, tip.oid)?;
    // An interrupted update of ours is completed as a forced one would be.
    let into = if force || ours {
        WorkTree::Discarding
    } else {
        WorkTree::Existing
    };
    checkout(plan, &repo, &tip, into)?;
    Interrupted::end(&repo);
    Ok(Synced {
        action: RepoAction::Updated,
        branch: tip.branch,
        head: tip.oid.to_string(),
    })
}

/// An update that began and never ended: `.git/agentenv-update` holds the commit it moved
/// from (or `-` for none) and the one it moved to. Written before an update changes refs or
/// the work tree (after its fetch, which changes neither) and removed once it is done, so a
/// provision killed (or stopped by a full disk) half-way leaves it, and the next one knows
/// which changes are its own.
struct Interrupted {
    from: Option<git2::Oid>,
    to: git2::Oid,
}

impl Interrupted {
    fn marker(repo: &Repository) -> std::path::PathBuf {
        repo.path().join("agentenv-update")
    }

    /// The interrupted update of this checkout, if any. A marker cut short when it was
    /// written is none: nothing had been changed yet.
    fn find(repo: &Repository) -> Option<Interrupted> {
        let text = std::fs::read_to_string(Self::marker(repo)).ok()?;
        let (from, to) = text.trim().split_once(' ')?;
        Some(Interrupted {
            from: git2::Oid::from_str(from).ok(),
            to: git2::Oid::from_str(to).ok()?,
        })
    }

    fn begin(
        plan: &RepoPlan,
        repo: &Repository,
        from: Option<git2::Oid>,
        to: git2::Oid,
    ) -> Result<()> {
        let from = from.map_or("-".to_string(), |o| o.to_string());
        let path = Self::marker(repo);
        std::fs::write(&path, format!("{from} {to}\n")).map_err(|e| {
            Error::failure(format!(
                "repository {}: cannot write {}: {e}",
                plan.name,
                path.display()
            ))
        })
    }

    fn end(repo: &Repository) {
        let _ = std::fs::remove_file(Self::marker(repo));
    }

    /// Whether every changed path is one this update changes between its two commits: a
    /// file it wrote, removed, or was writing when it stopped. A change anywhere else is
    /// someone's own, and stops the update as any local change does.
    fn made(&self, repo: &Repository, changed: &[String]) -> bool {
        let tree = |oid: Option<git2::Oid>| -> Option<Option<git2::Tree<'_>>> {
            match oid {
                None => Some(None),
                Some(o) => Some(Some(repo.find_commit(o).ok()?.tree().ok()?)),
            }
        };
        let (Some(from), Some(Some(to))) = (tree(self.from), tree(Some(self.to))) else {
            return false;
        };
        let Ok(diff) = repo.diff_tree_to_tree(from.as_ref(), Some(&to), None) else {
            return false;
        };
        let mut touched = std::collections::HashSet::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(p) = file.path().and_then(Path::to_str) {
                    touched.insert(p.to_string());
                }
            }
        }
        changed.iter().all(|p| touched.contains(p))
    }
}

/// Remove the lock files a killed update left in the checkout's `.git` (the index, HEAD,
/// config, refs): git and libgit2 refuse to change a file whose `.lock` exists. Called only
/// for an interrupted update, under the workdir lock.
fn remove_stale_locks(plan: &RepoPlan, repo: &Repository) -> Result<()> {
    fn locks_in(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                locks_in(&path, found);
            } else if path.extension().is_some_and(|e| e == "lock") {
                found.push(path);
            }
        }
    }
    let git_dir = repo.path();
    let mut found = Vec::new();
    for top in [
        "index",
        "HEAD",
        "config",
        "packed-refs",
        "shallow",
        "FETCH_HEAD",
        "ORIG_HEAD",
    ] {
        let lock = git_dir.join(format!("{top}.lock"));
        if lock.exists() {
            found.push(lock);
        }
    }
    locks_in(&git_dir.join("refs"), &mut found);
    for lock in found {
        std::fs::remove_file(&lock).map_err(|e| {
            Error::failure(format!(
                "repository {}: cannot remove {}, left by an interrupted update: {e}",
                plan.name,
                lock.display()
            ))
        })?;
    }
    Ok(())
}

fn needs_unshallow(plan: &RepoPlan, repo: &Repository) -> bool {
    plan.depth == 0 && repo.is_shallow()
}

/// Turn a git2 error into ours, with the exit code that fits and the repository named. A
/// failure the HTTP transport recorded on this thread decides (and is kept as the cause).
pub fn git_error(plan: &RepoPlan, e: git2::Error) -> Error {
    use git2::{ErrorClass, ErrorCode};
    if let Some(f) = crate::git::take_failure() {
        let mut err = Error::new(
            f.kind(),
            format!("repository {} ({}): {f}", plan.name, plan.url),
        );
        err.hint = f.hint();
        err.retry_after = f.retry_after();
        return err.with_source(f);
    }
    let kind = match (e.code(), e.class()) {
        (ErrorCode::Auth, _) | (ErrorCode::Certificate, _) => Kind::Auth,
        (ErrorCode::NotFound, _) => Kind::NotFound,
        (_, ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssl | ErrorClass::Ssh) => {
            Kind::Unavailable
        }
        // libgit2's own sockets (`git://`) report a refused connection through the OS class;
        // `http(s)://` goes through agentenv's transport, whose failures are typed above. Any
        // other OS error is a local file: a full disk, a permission.
        (_, ErrorClass::Os) if uses_libgit2_sockets(plan) => Kind::Unavailable,
        (_, ErrorClass::Os) => return local_failure(plan, e),
        _ => Kind::Failure,
    };
    let mut err = Error::new(
        kind,
        format!("repository {} ({}): {}", plan.name, plan.url, e.message()),
    );
    if kind == Kind::Unavailable {
        err = err
            .with_hint("check the URL and that the server is reachable, then run provision again");
    }
    err.with_source(e)
}

/// A local file failure while cloning or updating (libgit2's OS class, on a connection that
/// is not libgit2's own socket): exit 1 with libgit2's words (the file and the OS's reason)
/// and what to do. Never retried: trying again cannot make room or grant permission.
///
/// libgit2 keeps the OS error only as text (it clears `errno` once it has written the
/// message), so the hint comes from asking the file system about the target directly.
fn local_failure(plan: &RepoPlan, e: git2::Error) -> Error {
    Error::failure(format!(
        "repository {} ({}): {}",
        plan.name,
        plan.url,
        e.message()
    ))
    .with_hint(storage_hint(plan))
    .with_source(e)
}

/// What to do about a local failure at the plan's target, from what its file system says.
fn storage_hint(plan: &RepoPlan) -> String {
    let target = plan.target.display();
    match storage_problem(&plan.target).and_then(|io| io.raw_os_error()) {
        Some(libc::ENOSPC) => format!(
            "the file system that holds {target} is full: free space (or pass another --workdir), then run provision again — an interrupted update is completed, an interrupted clone starts over"
        ),
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => format!(
            "{target} or its parent directory is not writable by this user: fix its permissions (or pass another --workdir)"
        ),
        _ => match &plan.local_path {
            Some(source) => format!(
                "check the free space and permissions of {target}, and that {} is readable",
                source.display()
            ),
            None => format!("check the free space and permissions of {target}"),
        },
    }
}

/// What keeps anything from being written at `target` (or its nearest existing ancestor):
/// a full file system (`ENOSPC`), or a directory this process may not write (`EACCES`,
/// `EROFS`); `None` when nothing does, now.
fn storage_problem(target: &Path) -> Option<std::io::Error> {
    use std::os::unix::ffi::OsStrExt;
    let dir = target.ancestors().find(|p| p.is_dir())?;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid C string; access(2) and statvfs(2) only read it.
    unsafe {
        if libc::access(c.as_ptr(), libc::W_OK) != 0 {
            return Some(std::io::Error::last_os_error());
        }
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) == 0 && st.f_bavail == 0 {
            return Some(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
    }
    None
}

/// Whether libgit2 opens the connection itself (`git://`), rather than agentenv's HTTP
/// transport (`http(s)://`) or the local transport (paths, `file://`).
fn uses_libgit2_sockets(plan: &RepoPlan) -> bool {
    plan.local_path.is_none()
        && !plan.fetch_url.starts_with("http://")
        && !plan.fetch_url.starts_with("https://")
}
