//! The branches a remote has (ls-remote through the same authenticated connection provision
//! uses), filtered by `scope.branches`, the default marked: what `agentenv branches` shows
//! for picking a repository's `branch:`, and the git half of `agentenv check`.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::provision::auth;
use crate::provision::git::GitAuth;
use crate::provision::plan::{self, RepoPlan};
use crate::secrets::ResolvedSecrets;
use crate::spec::LoadedEnv;

/// What a remote advertises.
#[derive(Debug, Clone)]
pub struct RemoteRefs {
    /// The branch HEAD points at, when the remote says.
    pub default: Option<String>,
    /// `(branch, commit)`, sorted by name.
    pub branches: Vec<(String, String)>,
}

/// List a remote's branches with its credential; transient failures are retried.
pub fn ls_remote(plan: &RepoPlan, auth: &GitAuth) -> Result<RemoteRefs> {
    auth::with_retries(|| ls_remote_once(plan, auth))
        .map_err(|e| auth::explain(auth.credential(), e))
}

fn ls_remote_once(plan: &RepoPlan, git_auth: &GitAuth) -> Result<RemoteRefs> {
    let err = |e| crate::provision::git::git_error(plan, e);
    let scratch = tempfile::tempdir()?;
    let repo = git2::Repository::init_bare(scratch.path()).map_err(err)?;
    let mut remote = repo.remote_anonymous(&plan.fetch_url).map_err(err)?;
    let conn = git_auth.connect(&mut remote).map_err(err)?;
    // The same listing the tools' on-demand fetches read (git::fetch).
    let advertised = crate::git::fetch::advertised_on(&conn).map_err(err)?;
    let default = advertised.default;
    let branches = advertised
        .branches
        .into_iter()
        .map(|(n, o)| (n, o.to_string()))
        .collect();
    Ok(RemoteRefs { default, branches })
}

/// The plan and credential of the repository the spec calls `name`.
pub fn repo_and_auth(
    env: &LoadedEnv,
    secrets: &ResolvedSecrets,
    name: &str,
) -> Result<(RepoPlan, GitAuth)> {
    // The workdir does not matter here: nothing is written.
    let plans = plan::repos(env, &env.default_workdir())?;
    let Some(i) = plans.iter().position(|p| p.name == name) else {
        let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        return Err(Error::not_found(format!(
            "{}: no repository named `{name}`",
            env.path.display()
        ))
        .with_hint(if names.is_empty() {
            "the spec has no `repos:`".to_string()
        } else {
            format!("the spec's repositories are: {}", names.join(", "))
        }));
    };
    let cred = auth::for_repo(env, &env.spec.repos[i], &plans[i].fetch_url, secrets)?;
    Ok((plans[i].clone(), GitAuth::with(cred)))
}

/// A repository's branches as `agentenv branches` shows them.
#[derive(Debug, Serialize)]
pub struct BranchList {
    /// The repository's name in the spec.
    pub repo: String,
    /// Its URL, without credentials.
    pub url: String,
    pub default_branch: Option<String>,
    /// The branches inside `scope.branches`, sorted by name.
    pub branches: Vec<Branch>,
    /// How many branches the remote has outside `scope.branches`.
    pub outside_scope: usize,
}

#[derive(Debug, Serialize)]
pub struct Branch {
    pub name: String,
    pub commit: String,
    /// The remote's HEAD points at it.
    pub default: bool,
}

/// The in-scope branches of the repository the spec at `env_path` calls `repo`.
pub fn list(env_path: &Path, repo: &str) -> Result<BranchList> {
    let env = LoadedEnv::load(env_path)?;
    let secrets = crate::secrets::resolve(&env)?;
    let (plan, git_auth) = repo_and_auth(&env, &secrets, repo)?;
    // Anything that echoes the server passes through the redactor before it is shown.
    let refs =
        ls_remote(&plan, &git_auth).map_err(|e| e.map_text(|t| secrets.redactor().redact(t)))?;
    let branches: Vec<Branch> = refs
        .branches
        .iter()
        .filter(|(n, _)| env.scope.branch(n))
        .map(|(n, c)| Branch {
            name: n.clone(),
            commit: c.clone(),
            default: refs.default.as_deref() == Some(n.as_str()),
        })
        .collect();
    Ok(BranchList {
        outside_scope: refs.branches.len() - branches.len(),
        repo: plan.name,
        url: plan.url,
        default_branch: refs.default,
        branches,
    })
}
