//! The command line: one module per command, each holding the command's clap arguments, its
//! `run`, and its printing (human and `--json`). The stages return report values and never
//! print; every command writes through [`output`], for which a closed pipe is a normal end.
//! (`serve` and `tool` still print from [`crate::serve`].)

pub mod branches;
pub mod check;
pub mod export;
pub mod git_credential;
pub mod output;
pub mod provision;
pub mod run;
pub mod schema;
pub mod secret;
pub mod serve;
pub mod status;
pub mod tool;
pub mod validate;

/// The spec and its workdir, as the commands that work in a workdir take them.
#[derive(Debug, clap::Args)]
pub struct SpecAndWorkdir {
    /// The environment spec (YAML).
    pub env: std::path::PathBuf,
    /// The workdir: checkouts, logs and state [default: $AGENTENV_WORKDIR or
    /// ./agentenv-work/NAME].
    #[arg(long)]
    pub workdir: Option<std::path::PathBuf>,
}

/// A commit id as people read it: its first ten hex digits.
pub fn short_id(oid: &str) -> &str {
    oid.get(..10).unwrap_or(oid)
}
