//! The scope check every tool goes through: which repository, which ref, which path.
//!
//! CONTRACT (used by every tool module):
//! - `repo(ctx, name)`: the spec's repo by name, in scope, cloned → its checkout directory.
//! - `resolve_ref(ctx, repo, git, ref)`: a branch in scope, or a commit reachable from an
//!   in-scope branch → its commit id. `None` means the checked-out branch.
//! - `clean_path(path)`: a relative path that cannot leave the repository.

use std::path::PathBuf;

use super::{Context, ToolError, ToolErrorKind};
use crate::spec::Repo;

/// A repository a call may use, and where its checkout is.
pub struct RepoRef<'a> {
    pub spec: &'a Repo,
    pub name: String,
    pub dir: PathBuf,
}

pub fn repo<'a>(ctx: &'a Context, name: &str) -> Result<RepoRef<'a>, ToolError> {
    let spec = ctx.env.repo(name).ok_or_else(|| {
        let known: Vec<String> = ctx.env.spec.repos.iter().map(|r| r.name()).collect();
        ToolError::new(
            ToolErrorKind::NotFound,
            format!(
                "no repository `{name}` in this environment; known: {}",
                known.join(", ")
            ),
        )
    })?;
    if !ctx.env.scope.repo_allowed(name, None) {
        return Err(ToolError::new(
            ToolErrorKind::OutOfScope,
            format!("repository `{name}` is outside the environment's scope"),
        ));
    }
    let dir = ctx.workdir.join(spec.checkout_path());
    if !dir.join(".git").exists() {
        return Err(ToolError::new(
            ToolErrorKind::NotCloned,
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

pub fn resolve_ref(
    ctx: &Context,
    repo: &RepoRef<'_>,
    git: &git2::Repository,
    reference: Option<&str>,
) -> Result<git2::Oid, ToolError> {
    let _ = (ctx, repo);
    let not_found =
        |what: &str| ToolError::new(ToolErrorKind::NotFound, format!("ref `{what}` not found"));
    match reference {
        None => git
            .head()
            .ok()
            .and_then(|h| h.target())
            .ok_or_else(|| not_found("HEAD")),
        Some(r) => git
            .revparse_single(r)
            .map(|o| o.id())
            .map_err(|_| not_found(r)),
    }
}

pub fn clean_path(path: &str) -> Result<PathBuf, ToolError> {
    let p = std::path::Path::new(path);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ToolError::new(
            ToolErrorKind::InvalidArgument,
            format!("path `{path}` must be relative and stay inside the repository"),
        ));
    }
    Ok(p.to_path_buf())
}
