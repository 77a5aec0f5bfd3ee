//! `agentenv run ENV [--workdir DIR] [--cache-dir DIR] [--http] -- AGENT [ARGS…]`: provision,
//! then run the agent with the MCP server wired in (see [`crate::run`]). Provisioning is told
//! on stderr (stdout is the agent's); the exit code is the agent's, 128+N when signal N ended
//! it, or the failed provision's, in which case the agent never started.

use std::path::PathBuf;
use std::process::ExitCode;

use super::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: super::SpecAndWorkdir,
    /// The node-level clone cache new clones come through (see `provision --cache-dir`).
    #[arg(long, value_name = "DIR", env = "AGENTENV_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Also serve the tools over streamable HTTP on loopback, started and stopped by `run`;
    /// its URL and a bearer token for this run go in the MCP configuration.
    #[arg(long)]
    pub http: bool,
    /// The agent's command line [default: the spec's `agent.command`].
    #[arg(last = true, value_name = "AGENT")]
    pub agent: Vec<String>,
}

/// `agentenv run ENV -- AGENT…`.
pub fn run(args: Args) -> ExitCode {
    let opts = crate::run::Options {
        env: args.at.env,
        workdir: args.at.workdir,
        cache_dir: args.cache_dir,
        http: args.http,
        agent: args.agent,
    };
    let printer = super::provision::Printer::new(false, false);
    match crate::run::run(&opts, &printer) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            output::eprint(&format!("error: {e}\n"));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
