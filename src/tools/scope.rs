//! The scope check every tool goes through: which repository, which ref, which path.
//!
//! CONTRACT (used by every tool module):
//! - `repo(ctx, name)`: the spec's repo by name, in scope, cloned → its checkout directory.
//! - `resolve_ref(ctx, repo, git, ref)`: a branch in scope, or a commit reachable from an
//!   in-scope branch → its commit id. `None` means the checked-out branch.
//! Path confinement (`clean_path`, `working_copy_path`) is in `tools::paths`.
//!
//! Rules, and why:
//! - Refs are resolved by exact reference lookups (`refs/heads/X`, `refs/remotes/R/X`) and
//!   exact commit-id lookups, never `revparse` of the caller's string: revision syntax
//!   (`HEAD~2`, `main@{1}`, `a..b`, `X^`, `X:path`) would reach commits and blobs that no
//!   in-scope branch names. Such strings are refused before any lookup.
//! - Tags are not refs here: a ref is a branch name or a commit id (DESIGN.md). A tagged
//!   commit is still reachable by its id when an in-scope branch contains it.
//! - "Out of scope" is decided from the name alone (the scope regexes), before anything is
//!   looked up, so the answer never tells whether an out-of-scope thing exists. A commit id
//!   that no in-scope branch reaches gets the same `not_found` whether or not the object
//!   exists in the clone.

use std::path::PathBuf;

pub use super::paths::{clean_path, tree_path};

use super::{Context, Error, Kind};
use crate::spec::Repo;

/// A repository a call may use, and where its checkout is.
pub struct RepoRef<'a> {
    pub spec: &'a Repo,
    pub name: String,
    pub dir: PathBuf,
}

/// The spec's repository called `name`, if the scope allows it and it is cloned.
pub fn repo<'a>(ctx: &'a Context, name: &str) -> Result<RepoRef<'a>, Error> {
    let spec = ctx.env.repo(name);
    let full = spec.and_then(|r| full_name(ctx, r));
    if !ctx.env.scope.repo(name, full.as_deref()) {
        return Err(Error::new(
            Kind::OutOfScope,
            format!(
                "repository `{name}` is outside the environment's scope; {}",
                known_repos_hint(ctx)
            ),
        ));
    }
    let spec = spec.ok_or_else(|| {
        Error::new(
            Kind::NotFound,
            format!(
                "no repository `{name}` in this environment; {}",
                known_repos_hint(ctx)
            ),
        )
    })?;
    let rel = clean_path(&spec.checkout_path()).map_err(|_| {
        Error::new(
            Kind::Failure,
            format!("repository `{name}` has a checkout path outside the workdir; fix `path:` in the spec"),
        )
    })?;
    let dir = ctx.workdir.join(rel);
    if !dir.join(".git").exists() {
        return Err(Error::new(
            Kind::NotCloned,
            format!(
                "repository `{name}` is not cloned in the workdir; run `agentenv provision` first"
            ),
        ));
    }
    Ok(RepoRef {
        spec,
        name: name.to_string(),
        dir,
    })
}

/// `owner/slug`, which `scope.repositories` may match as well as the bare name: the same
/// name spec validation checks, so a spec that validates is answered by the tools.
fn full_name(ctx: &Context, repo: &Repo) -> Option<String> {
    repo.full_name(&ctx.env.spec.providers)
}

fn known_repos_hint(ctx: &Context) -> String {
    let known: Vec<String> = ctx
        .env
        .spec
        .repos
        .iter()
        .filter(|r| ctx.env.scope.repo(&r.name(), full_name(ctx, r).as_deref()))
        .map(|r| r.name())
        .collect();
    if known.is_empty() {
        "no repository of this environment is in scope".to_string()
    } else {
        format!("repositories in scope: {}", known.join(", "))
    }
}

/// A branch the repository knows, locally or as a remote-tracking ref.
#[derive(Debug, Clone)]
pub struct BranchHead {
    /// The branch name without `refs/heads/` or `refs/remotes/<remote>/`.
    pub name: String,
    pub commit: git2::Oid,
    /// The full reference name it was read from.
    pub refname: String,
    /// `None` for a local branch, else the remote's name.
    pub remote: Option<String>,
}

/// Every branch head (local and remote-tracking) whose name the scope allows, local ones
/// first. A branch that exists both locally and on a remote appears twice, once per ref.
pub fn branch_heads(ctx: &Context, git: &git2::Repository) -> Vec<BranchHead> {
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
        let Ok(refname) = r.name().map(str::to_string) else {
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
        if !ctx.env.scope.branch(&name) {
            continue;
        }
        let Ok(commit) = r.peel_to_commit() else {
            continue;
        };
        heads.push(BranchHead {
            name,
            commit: commit.id(),
            refname,
            remote,
        });
    }
    heads.sort_by(|a, b| (a.remote.is_some(), &a.name).cmp(&(b.remote.is_some(), &b.name)));
    heads
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

pub fn resolve_ref(
    ctx: &Context,
    repo: &RepoRef<'_>,
    git: &git2::Repository,
    reference: Option<&str>,
) -> Result<git2::Oid, Error> {
    resolve(ctx, repo, git, reference).map(|r| r.commit)
}

/// As [`resolve_ref`], with the branch name kept.
pub fn resolve(
    ctx: &Context,
    repo: &RepoRef<'_>,
    git: &git2::Repository,
    reference: Option<&str>,
) -> Result<ResolvedRef, Error> {
    let reference = match reference {
        None | Some("HEAD") => return resolve_head(ctx, repo, git),
        Some(r) => r,
    };
    check_ref_syntax(reference)?;
    let heads = branch_heads(ctx, git);
    // Every valid string is first a candidate branch name; ids are tried after branches, so a
    // branch that happens to look like hex still wins.
    let name = branch_name_of(reference)?;
    if ctx.env.scope.branch(name) {
        if let Some(h) = heads.iter().find(|h| h.name == name) {
            return Ok(ResolvedRef {
                commit: h.commit,
                branch: Some(h.name.clone()),
            });
        }
    } else if !looks_like_commit_id(reference) {
        return Err(out_of_scope_branch(ctx, name));
    }
    if looks_like_commit_id(reference) {
        return resolve_commit_id(git, &heads, reference, &repo.name);
    }
    Err(Error::new(
        Kind::NotFound,
        format!(
            "no branch `{reference}` in the checkout of `{}`; call list_branches to see the branches in scope",
            repo.name
        ),
    ))
}

/// The branch a ref string names, after stripping an explicit `refs/heads/` or
/// `refs/remotes/<remote>/`; any other `refs/…` is refused.
fn branch_name_of(reference: &str) -> Result<&str, Error> {
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
    Error::new(
        Kind::OutOfScope,
        format!(
            "`{reference}` is not a branch: only branches (`main` or `refs/heads/main`) and commit ids are accepted; call list_branches to see the branches in scope"
        ),
    )
}

pub(crate) fn out_of_scope_branch(ctx: &Context, name: &str) -> Error {
    let rule = ctx
        .env
        .scope
        .branches_rule()
        .map(|r| format!(" (scope.branches is `{r}`)"))
        .unwrap_or_default();
    Error::new(
        Kind::OutOfScope,
        format!(
            "branch `{name}` is outside the environment's scope{rule}; call list_branches to see the branches in scope"
        ),
    )
}

/// 7 to 40 hex digits: git's shortest default abbreviation up to a full SHA-1.
fn looks_like_commit_id(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Refuse revision syntax and anything git itself would not accept as a branch name.
pub fn check_ref_syntax(reference: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::new(
            Kind::Input,
            format!(
                "ref `{}` is not accepted: {why}. Pass a branch name from list_branches or a commit id from list_commits",
                reference.escape_debug()
            ),
        ))
    };
    if reference.is_empty() {
        return bad("it is empty");
    }
    if reference.len() > 255 {
        return bad("it is longer than 255 bytes");
    }
    if reference.starts_with('-') {
        return bad("it starts with `-`");
    }
    if reference
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return bad("it contains whitespace or control characters");
    }
    for (pat, why) in [
        ("@{", "reflog syntax (`@{…}`) is not supported"),
        ("..", "ranges (`a..b`, `a...b`) are not supported"),
        ("~", "ancestry syntax (`~N`) is not supported"),
        ("^", "parent syntax (`^`) is not supported"),
        (
            ":",
            "`rev:path` syntax is not supported; pass the path separately",
        ),
        ("\\", "backslashes are not allowed"),
    ] {
        if reference.contains(pat) {
            return bad(why);
        }
    }
    if reference == "@" || reference.contains(['?', '*', '[']) {
        return bad("revision shortcuts and glob characters are not supported");
    }
    if !git2::Reference::is_valid_name(&format!("refs/heads/{reference}")) {
        return bad("it is not a valid branch name");
    }
    Ok(())
}

/// A commit id (full or abbreviated) that some in-scope branch head contains.
fn resolve_commit_id(
    git: &git2::Repository,
    heads: &[BranchHead],
    id: &str,
    repo_name: &str,
) -> Result<ResolvedRef, Error> {
    let not_found = || {
        Error::new(
            Kind::NotFound,
            format!(
                "no commit `{id}` is reachable from a branch in scope of `{repo_name}` (the clone may be shallow, or the id ambiguous: give more digits); call list_commits to see commits"
            ),
        )
    };
    let commit = git
        .find_commit_by_prefix(id)
        .map(|c| c.id())
        .map_err(|_| not_found())?;
    if reachable(git, heads, commit) {
        Ok(ResolvedRef {
            commit,
            branch: None,
        })
    } else {
        Err(not_found())
    }
}

/// Whether `commit` is one of the in-scope heads or an ancestor of one.
pub fn reachable(git: &git2::Repository, heads: &[BranchHead], commit: git2::Oid) -> bool {
    heads
        .iter()
        .any(|h| h.commit == commit || git.graph_descendant_of(h.commit, commit).unwrap_or(false))
}

/// The checked-out commit, when its branch is in scope or an in-scope branch contains it.
fn resolve_head(
    ctx: &Context,
    repo: &RepoRef<'_>,
    git: &git2::Repository,
) -> Result<ResolvedRef, Error> {
    let head = git.head().map_err(|_| {
        Error::new(
            Kind::NotFound,
            format!(
                "the checkout of `{}` has no commit checked out; pass `ref` (call list_branches)",
                repo.name
            ),
        )
    })?;
    let commit = head.peel_to_commit().map_err(internal)?.id();
    let branch = head
        .name()
        .ok()
        .and_then(|n| n.strip_prefix("refs/heads/"))
        .map(str::to_string);
    if let Some(b) = &branch
        && ctx.env.scope.branch(b)
    {
        return Ok(ResolvedRef {
            commit,
            branch: Some(b.clone()),
        });
    }
    if reachable(git, &branch_heads(ctx, git), commit) {
        return Ok(ResolvedRef {
            commit,
            branch: None,
        });
    }
    Err(Error::new(
        Kind::OutOfScope,
        format!(
            "the checked-out commit of `{}` is not on a branch in scope; pass `ref` (call list_branches to see the branches in scope)",
            repo.name
        ),
    ))
}

pub(crate) fn internal(e: git2::Error) -> Error {
    Error::failure(format!("git error: {}", e.message())).with_source(e)
}
