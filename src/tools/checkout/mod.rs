//! Tools answered from the local checkout, at any in-scope ref: list_branches, browse,
//! read_file, list_commits, get_commit. For an in-scope repository that is not cloned,
//! `Context::call` falls back to their API back end (`tools::api::fallback`), which answers in
//! the same output shapes with branch refs only.
//!
//! Everything is read from git's object database (the tree of the requested commit), never
//! from the working copy: the answer is the committed state at that ref. With `ref` omitted it
//! is the checked-out HEAD's commit, so files that setup steps created or changed in the working
//! copy are not shown. Reading objects also means a symlink is only ever a blob holding its
//! target text: nothing is followed, inside or outside the repository.

mod branches;
mod browse;
mod commits;
mod read_file;

use super::scope::{self, RepoRef};
use super::{Context, Error, Kind, Tool};

pub fn tools() -> Vec<Tool> {
    vec![
        branches::tool(),
        browse::tool(),
        read_file::tool(),
        commits::list_tool(),
        commits::get_tool(),
    ]
}

pub(crate) use super::paging::page_limit;
pub(crate) use super::text::{MAX_OUTPUT_BYTES, Person, cut_chars, rfc3339};

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
    idle: std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, Vec<git2::Repository>>>,
}

/// Idle repositories kept per checkout; more concurrent calls than this open their own.
const MAX_IDLE: usize = 2;

/// A repository taken from the pool, returned to it on drop.
pub(crate) struct PooledRepo<'a> {
    git: Option<git2::Repository>,
    pool: &'a RepoPool,
    dir: std::path::PathBuf,
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
    pub(crate) fn take(&self, dir: &std::path::Path) -> Result<PooledRepo<'_>, git2::Error> {
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

/// An in-scope, cloned repository opened with git2 (or kept open from an earlier call).
pub(crate) fn open<'a>(
    ctx: &'a Context,
    name: &str,
) -> Result<(RepoRef<'a>, PooledRepo<'a>), Error> {
    let repo = scope::repo(ctx, name)?;
    let git = ctx.repos.take(&repo.dir).map_err(|e| {
        Error::new(
            Kind::NotCloned,
            format!(
                "the checkout of `{name}` is not a readable git repository ({}); run `agentenv provision` again",
                e.message()
            ),
        )
        .with_source(e)
    })?;
    Ok((repo, git))
}

pub(crate) fn git_error(e: git2::Error) -> Error {
    scope::internal(e)
}

pub(crate) mod cursor {
    pub(crate) use crate::tools::paging::{decode, encode};
}

/// The first line of a commit message, capped.
pub(crate) fn summary(commit: &git2::Commit<'_>) -> String {
    super::text::summary(&String::from_utf8_lossy(commit.message_bytes()))
}

/// The commit ids at the shallow boundary (their parents were not fetched).
pub(crate) fn shallow_commits(git: &git2::Repository) -> Vec<git2::Oid> {
    if !git.is_shallow() {
        return Vec::new();
    }
    std::fs::read_to_string(git.path().join("shallow"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| git2::Oid::from_str(l.trim()).ok())
        .collect()
}

pub(crate) const SHALLOW_NOTE: &str = "the clone is shallow: history stops at the clone's depth; set `depth: 0` on this repo in the spec and provision again for full history";

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

/// Look `path` up in the tree of `commit`. Tree lookups never follow symlinks: a path through
/// a symlinked directory is simply not found.
pub(crate) fn at_path<'r>(
    git: &'r git2::Repository,
    repo: &RepoRef<'_>,
    commit: git2::Oid,
    label: &str,
    path: &std::path::Path,
) -> Result<AtPath<'r>, Error> {
    let tree = git
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(git_error)?;
    if path.as_os_str().is_empty() {
        return Ok(AtPath::Tree(tree));
    }
    let entry = tree.get_path(path).map_err(|_| {
        Error::new(
            Kind::NotFound,
            format!(
                "`{}` does not exist in `{}` at `{label}`; call browse on its parent directory to see what is there",
                scope::tree_path(path),
                repo.name
            ),
        )
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
