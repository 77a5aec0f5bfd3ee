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
        if let Some(report) = progress {
            let mut cb = RemoteCallbacks::new();
            cb.transfer_progress(move |p| {
                report(Transfer {
                    received: p.received_objects(),
                    total: p.total_objects(),
                    bytes: p.received_bytes(),
                });
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
    checkout(plan, &repo, &tip, false)?;
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

/// Point the local branch, its remote-tracking ref and HEAD at the tip, and check it out.
fn checkout(plan: &RepoPlan, repo: &Repository, tip: &RemoteTip, discard: bool) -> Result<()> {
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
    let mut co = CheckoutBuilder::new();
    co.force();
    if discard {
        co.remove_untracked(true);
    }
    repo.checkout_tree(commit.as_object(), Some(&mut co))
        .map_err(err)?;
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
    let current = on_branch && head == Some(tip.oid) && !needs_unshallow(plan, &repo);
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
    if !changed.is_empty() && !force {
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
    checkout(plan, &repo, &tip, force)?;
    Ok(Synced {
        action: RepoAction::Updated,
        branch: tip.branch,
        head: tip.oid.to_string(),
    })
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
        // Sockets report through the OS class ("connection refused").
        (_, ErrorClass::Os) if plan.local_path.is_none() => Kind::Unavailable,
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
