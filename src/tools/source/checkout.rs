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
//! - A ref is a branch name or a commit id (DESIGN.md), resolved by exact reference lookups
//!   (`refs/heads/X`, `refs/remotes/R/X`) and exact commit-id lookups. Tags are not refs here;
//!   a tagged commit is still reachable by its id when an in-scope branch contains it.
//! - A commit id that no in-scope branch reaches gets the same `not_found` whether or not the
//!   object exists in the clone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{RepoRef, check_ref_syntax, looks_like_commit_id, out_of_scope_branch};
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
#[derive(Default)]
pub struct RepoPool {
    idle: Mutex<HashMap<PathBuf, Vec<git2::Repository>>>,
}

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

/// A cloned, in-scope repository opened with git2, and the scope its refs are checked against.
pub struct Checkout<'a> {
    pub repo: RepoRef<'a>,
    pub git: PooledRepo<'a>,
    scope: &'a Scope,
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

/// A branch the repository knows, locally or as a remote-tracking ref.
#[derive(Debug, Clone)]
pub struct BranchHead {
    /// The branch name without `refs/heads/` or `refs/remotes/<remote>/`.
    pub name: String,
    pub commit: git2::Oid,
    /// `None` for a local branch, else the remote's name.
    pub remote: Option<String>,
}

/// A ref resolved for a call: the commit, and how to name it back to the agent.
#[derive(Debug, Clone)]
pub struct ResolvedRef {
    pub commit: git2::Oid,
    /// The branch name when the ref was (or HEAD is) an in-scope branch.
    pub branch: Option<String>,
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

pub(crate) const SHALLOW_NOTE: &str = "the clone is shallow: history stops at the clone's depth; set `depth: 0` on this repo in the spec and provision again for full history";

impl<'a> Checkout<'a> {
    pub(crate) fn new(ctx: &'a Context, repo: RepoRef<'a>, git: PooledRepo<'a>) -> Self {
        Checkout {
            repo,
            git,
            scope: &ctx.env.scope,
        }
    }

    pub fn name(&self) -> &str {
        &self.repo.name
    }

    /// Every branch head (local and remote-tracking) whose name the scope allows, local ones
    /// first. A branch that exists both locally and on a remote appears twice, once per ref.
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
            let (name, remote) = if let Some(b) = refname.strip_prefix("refs/heads/") {
                (b.to_string(), None)
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
                (b.to_string(), Some(remote))
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
            });
        }
        heads.sort_by(|a, b| (a.remote.is_some(), &a.name).cmp(&(b.remote.is_some(), &b.name)));
        heads
    }

    /// A branch in scope, or a commit id an in-scope branch reaches; `None` (or `HEAD`) is the
    /// checked-out commit.
    pub fn resolve(&self, reference: Option<&str>) -> Result<ResolvedRef> {
        let reference = match reference {
            None | Some("HEAD") => return self.resolve_head(),
            Some(r) => r,
        };
        check_ref_syntax(reference)?;
        let heads = self.branch_heads();
        // Every valid string is first a candidate branch name; ids are tried after branches, so
        // a branch that happens to look like hex still wins.
        let name = branch_name_of(reference)?;
        if self.scope.branch(name) {
            if let Some(h) = heads.iter().find(|h| h.name == name) {
                return Ok(ResolvedRef {
                    commit: h.commit,
                    branch: Some(h.name.clone()),
                });
            }
        } else if !looks_like_commit_id(reference) {
            return Err(out_of_scope_branch(self.scope, name));
        }
        if looks_like_commit_id(reference) {
            return self.resolve_commit_id(&heads, reference);
        }
        Err(Error::not_found(format!(
            "no branch `{reference}` in the checkout of `{}`; call list_branches to see the branches in scope",
            self.repo.name
        )))
    }

    /// A commit id (full or abbreviated) that some in-scope branch head contains.
    fn resolve_commit_id(&self, heads: &[BranchHead], id: &str) -> Result<ResolvedRef> {
        let not_found = || {
            Error::not_found(format!(
                "no commit `{id}` is reachable from a branch in scope of `{}` (the clone may be shallow, or the id ambiguous: give more digits); call list_commits to see commits",
                self.repo.name
            ))
        };
        let commit = self
            .git
            .find_commit_by_prefix(id)
            .map(|c| c.id())
            // No cause kept: a missing object and an unreachable one must look the same.
            .map_err(|_| not_found())?;
        if self.reachable(heads, commit) {
            Ok(ResolvedRef {
                commit,
                branch: None,
            })
        } else {
            Err(not_found())
        }
    }

    /// Whether `commit` is one of the in-scope heads or an ancestor of one.
    fn reachable(&self, heads: &[BranchHead], commit: git2::Oid) -> bool {
        heads.iter().any(|h| {
            h.commit == commit
                || self
                    .git
                    .graph_descendant_of(h.commit, commit)
                    .unwrap_or(false)
        })
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
            });
        }
        if self.reachable(&self.branch_heads(), commit) {
            return Ok(ResolvedRef {
                commit,
                branch: None,
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

fn refs_refused(reference: &str) -> Error {
    Error::out_of_scope(format!(
        "`{reference}` is not a branch: only branches (`main` or `refs/heads/main`) and commit ids are accepted; call list_branches to see the branches in scope"
    ))
}

/// The first line of a commit's message, capped.
pub(crate) fn summary(commit: &git2::Commit<'_>) -> String {
    crate::tools::text::summary(&String::from_utf8_lossy(commit.message_bytes()))
}
