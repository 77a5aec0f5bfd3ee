//! What is provisioned in a workdir, as `agentenv status` shows it: each repository's
//! checkout (branch, HEAD, local changes) and each step's last successful run. Reads the
//! checkouts and the state file; changes nothing.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::state::State;
use super::{git, plan};
use crate::error::Result;
use crate::spec::LoadedEnv;

#[derive(Debug, Serialize)]
pub struct Status {
    pub workdir: PathBuf,
    /// In the spec's order.
    pub repos: Vec<RepoStatus>,
    /// In the spec's order.
    pub steps: Vec<StepStatus>,
}

/// One repository's checkout.
#[derive(Debug, Serialize)]
pub struct RepoStatus {
    pub name: String,
    /// Relative to the workdir.
    pub path: String,
    /// A checkout exists.
    pub present: bool,
    /// The branch checked out; `HEAD` when detached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The working tree has local changes.
    pub dirty: bool,
    /// When provision last changed the checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned_at: Option<String>,
}

/// One step's last successful run.
#[derive(Debug, Serialize)]
pub struct StepStatus {
    pub name: String,
    /// `ok`, `satisfied` (its `creates:` path existed), `interrupted` (a killed provision
    /// left it started), or `never` when no successful run is recorded.
    pub last_result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The status of the workdir of the spec at `env_path` (`workdir`, else the spec's default).
pub fn status(env_path: &Path, workdir: Option<&Path>) -> Result<Status> {
    let env = LoadedEnv::load(env_path)?;
    let workdir = super::workdir_of(&env, workdir)?;
    let repos = plan::repos(&env, &workdir)?;
    let state = State::load(&workdir)?;
    let repos = repos
        .iter()
        .map(|r| {
            let repo = git2::Repository::open(&r.target).ok();
            let head = repo.as_ref().and_then(|g| g.head().ok());
            RepoStatus {
                name: r.name.clone(),
                path: r.rel_path.clone(),
                present: repo.is_some(),
                branch: head
                    .as_ref()
                    .and_then(|h| h.shorthand().ok().map(str::to_string)),
                head: head
                    .as_ref()
                    .and_then(|h| h.target())
                    .map(|o| o.to_string()),
                dirty: repo
                    .as_ref()
                    .and_then(|g| git::changed_files(g).ok())
                    .is_some_and(|c| !c.is_empty()),
                provisioned_at: state.repos.get(&r.name).map(|s| s.time.clone()),
            }
        })
        .collect();
    let steps = env
        .spec
        .setup
        .iter()
        .map(|s| match state.steps.get(&s.name) {
            _ if state.started.contains_key(&s.name) => StepStatus {
                name: s.name.clone(),
                last_result: "interrupted".into(),
                time: state.started.get(&s.name).map(|st| st.time.clone()),
                duration_ms: None,
            },
            Some(st) => StepStatus {
                name: s.name.clone(),
                last_result: st.result.clone(),
                time: Some(st.time.clone()),
                duration_ms: Some(st.duration_ms),
            },
            None => StepStatus {
                name: s.name.clone(),
                last_result: "never".into(),
                time: None,
                duration_ms: None,
            },
        })
        .collect();
    Ok(Status {
        workdir,
        repos,
        steps,
    })
}
