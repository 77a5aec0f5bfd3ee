//! Provision: plan → repositories (git2 clone/update) → setup steps → state, under a workdir lock.
//!
//! CONTRACT used by main.rs: `ProvisionArgs` + `run`, `StatusArgs` + `status`.
//! CONTRACT used by serve/tools: the workdir layout —
//!   `WORKDIR/<repo.checkout_path()>`  the checkouts
//!   `WORKDIR/.agentenv/state.json`    state (see `state.rs`)
//!   `WORKDIR/.agentenv/logs/<step>.log`, `WORKDIR/.agentenv/lock`

use std::path::PathBuf;

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// The environment spec (YAML).
    pub env: PathBuf,
    /// Where checkouts, logs and state go [default: $AGENTENV_WORKDIR or ./agentenv-work/NAME].
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Print the plan (what would be cloned, updated, run or skipped, and why); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Machine-readable events and summary on stdout, one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Update checkouts even when their working tree has local changes (they are discarded).
    #[arg(long)]
    pub force: bool,
    /// Wait for another provision of the same workdir to finish instead of failing.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The environment spec (YAML).
    pub env: PathBuf,
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// `agentenv provision ENV`: make the workdir match the spec, idempotently.
pub fn run(args: ProvisionArgs) -> Result<()> {
    let _ = args;
    Err(Error::failure("provision is not implemented yet"))
}

/// `agentenv status ENV`: what is provisioned in the workdir.
pub fn status(args: StatusArgs) -> Result<()> {
    let _ = args;
    Err(Error::failure("status is not implemented yet"))
}
