//! What a provision did or, with `--dry-run`, would do: one report per repository and per
//! step, in the spec's order, with the action words `--json` prints.

use std::path::PathBuf;

use serde::{Serialize, Serializer};

use super::plan::RepoPlan;
use crate::error::Error;
use crate::spec::Step;

/// The outcome of one provision or dry run.
#[derive(Debug)]
pub struct Report {
    pub dry_run: bool,
    /// Known once the spec is loaded and its secrets resolved.
    pub workdir: Option<PathBuf>,
    /// The spec, its secrets and its repositories resolved: from here on there is a plan
    /// to report on. Before that, the error is all there is.
    pub planned: bool,
    pub repos: Vec<RepoReport>,
    pub steps: Vec<StepReport>,
    /// Why the provision failed, if it did (redacted like everything else here).
    pub error: Option<Error>,
}

impl Report {
    pub fn new(dry_run: bool) -> Report {
        Report {
            dry_run,
            workdir: None,
            planned: false,
            repos: Vec::new(),
            steps: Vec::new(),
            error: None,
        }
    }
}

/// What happened to a repository, or with `--dry-run` would happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoAction {
    Cloned,
    Updated,
    /// Already at the remote's tip (applied or planned alike).
    UpToDate,
    /// Cloning, updating or (planned) asking the remote failed.
    Failed,
    /// Planned: would be cloned.
    Clone,
    /// Planned: would be updated.
    Update,
}

impl RepoAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RepoAction::Cloned => "cloned",
            RepoAction::Updated => "updated",
            RepoAction::UpToDate => "up-to-date",
            RepoAction::Failed => "failed",
            RepoAction::Clone => "clone",
            RepoAction::Update => "update",
        }
    }
}

impl Serialize for RepoAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What happened to a step, or with `--dry-run` would happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepAction {
    Ran,
    Skipped,
    Failed,
    /// Not started: a repository or an earlier step failed.
    NotRun,
    /// Planned: would run.
    Run,
    /// Planned: would be skipped.
    Skip,
}

impl StepAction {
    pub fn as_str(self) -> &'static str {
        match self {
            StepAction::Ran => "ran",
            StepAction::Skipped => "skipped",
            StepAction::Failed => "failed",
            StepAction::NotRun => "not-run",
            StepAction::Run => "run",
            StepAction::Skip => "skip",
        }
    }
}

impl Serialize for StepAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One repository in a report.
#[derive(Debug, Clone, Serialize)]
pub struct RepoReport {
    pub name: String,
    /// The checkout, relative to the workdir.
    pub path: String,
    /// Without credentials.
    pub url: String,
    pub action: RepoAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Why it failed; with `--dry-run`, also what would stop an update (local changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RepoReport {
    pub(crate) fn new(r: &RepoPlan, action: RepoAction) -> RepoReport {
        RepoReport {
            name: r.name.clone(),
            path: r.rel_path.clone(),
            url: r.url.clone(),
            action,
            branch: None,
            head: None,
            error: None,
        }
    }
}

/// One step in a report.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub name: String,
    pub action: StepAction,
    /// Why it runs, is skipped or is not run.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StepReport {
    pub(crate) fn new(step: &Step, action: StepAction, reason: impl Into<String>) -> StepReport {
        StepReport {
            name: step.name.clone(),
            action,
            reason: reason.into(),
            duration_ms: None,
            error: None,
        }
    }
}
