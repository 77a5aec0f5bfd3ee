//! `agentenv branches ENV REPO`: the branches a remote has (ls-remote through the same
//! authenticated connection provision uses), filtered by `scope.branches`, the default marked —
//! for picking a repository's `branch:`.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::provision::auth;
use crate::provision::git::GitAuth;
use crate::provision::plan::{self, RepoPlan};
use crate::secrets::ResolvedSecrets;
use crate::spec::LoadedEnv;

#[derive(Debug, clap::Args)]
pub struct BranchesArgs {
    /// The environment spec (YAML).
    pub env: PathBuf,
    /// The repository, as the spec names it (its slug, or the last segment of its URL).
    pub repo: String,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

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
    let default = conn
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().ok().map(str::to_string))
        .map(|b| b.strip_prefix("refs/heads/").unwrap_or(&b).to_string());
    let mut branches: Vec<(String, String)> = conn
        .list()
        .map_err(err)?
        .iter()
        .filter_map(|h| {
            h.name()
                .strip_prefix("refs/heads/")
                .map(|n| (n.to_string(), h.oid().to_string()))
        })
        .collect();
    branches.sort();
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

#[derive(Debug, Serialize)]
struct Branch<'a> {
    name: &'a str,
    commit: &'a str,
    default: bool,
}

/// `agentenv branches ENV REPO`.
pub fn run(args: BranchesArgs) -> Result<()> {
    let env = LoadedEnv::load(&args.env)?;
    let secrets = crate::secrets::resolve(&env)?;
    let (plan, git_auth) = repo_and_auth(&env, &secrets, &args.repo)?;
    let refs = ls_remote(&plan, &git_auth).map_err(|e| redact(e, &secrets))?;
    let shown: Vec<Branch> = refs
        .branches
        .iter()
        .filter(|(n, _)| env.scope.branch(n))
        .map(|(n, c)| Branch {
            name: n,
            commit: c,
            default: refs.default.as_deref() == Some(n.as_str()),
        })
        .collect();
    let hidden = refs.branches.len() - shown.len();
    if args.json {
        let doc = serde_json::json!({
            "repo": plan.name,
            "url": plan.url,
            "default_branch": refs.default,
            "branches": shown,
            "outside_scope": hidden,
        });
        println!("{doc}");
        return Ok(());
    }
    println!("{} ({})", plan.name, plan.url);
    for b in &shown {
        let mark = if b.default { "* " } else { "  " };
        let note = if b.default { "  (default)" } else { "" };
        println!(
            "{mark}{:<40} {}{note}",
            b.name,
            &b.commit[..b.commit.len().min(10)]
        );
    }
    if shown.is_empty() {
        println!(
            "  (no branches{})",
            if hidden > 0 { " in scope" } else { "" }
        );
    }
    if hidden > 0 {
        println!("{hidden} more outside scope.branches");
    }
    Ok(())
}

/// Anything that echoes the server passes through the redactor before it is shown.
pub(crate) fn redact(mut e: Error, secrets: &ResolvedSecrets) -> Error {
    e.message = secrets.redactor().redact(&e.message);
    e.hint = e.hint.map(|h| secrets.redactor().redact(&h));
    e
}
