//! `agentenv tool ENV NAME --arg k=v…`: call one tool once, through the same code path as
//! `serve`, and print its JSON result on stdout. A tool error puts its typed JSON on stdout
//! too, the message on stderr, and its kind in the exit code. The call and its printing are
//! in [`crate::serve`] for now.

use std::path::PathBuf;

use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment spec (YAML).
    pub env: PathBuf,
    /// The tool to call.
    pub name: String,
    /// The workdir `provision` filled. Default: $AGENTENV_WORKDIR, else ./agentenv-work/<name>.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// A tool argument, `key=value` (repeatable; repeat an array argument once per item).
    /// Values of string arguments are taken as given; others are parsed as JSON when they
    /// can be (numbers, booleans, arrays), else taken as strings.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub args: Vec<String>,
}

/// `agentenv tool ENV NAME`.
pub fn run(args: Args) -> Result<()> {
    crate::serve::tool(args)
}
