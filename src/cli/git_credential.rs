//! `agentenv git-credential --env SPEC get|store|erase` (hidden): git's credential-helper
//! protocol, which setup steps reach through the `GIT_CONFIG_*` variables provision gives
//! them. `get` reads git's request on stdin and answers on stdout from the spec's secrets;
//! `store` and `erase` are accepted and ignored, as the secrets file is the store. The
//! protocol itself is in [`crate::provision::credential_helper`].

use std::path::PathBuf;

use super::output;
use crate::error::Result;
use crate::provision::credential_helper;
use crate::spec::LoadedEnv;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment spec whose providers and secrets answer.
    #[arg(long)]
    pub env: PathBuf,
    /// What git asks: `get` is answered; `store` and `erase` are accepted and ignored.
    pub operation: String,
}

/// `agentenv git-credential --env SPEC OPERATION`.
pub fn run(args: Args) -> Result<()> {
    if args.operation != "get" {
        // Nothing is stored: the secrets file is the store.
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        return Ok(());
    }
    let request = credential_helper::read_request(std::io::stdin().lock())?;
    let env = LoadedEnv::load(&args.env)?;
    let vars = |name: &str| std::env::var(name).ok();
    match credential_helper::answer(&env, &request, &vars)? {
        Some(answer) => {
            output::print(&answer).map_err(|e| e.context("git-credential: cannot answer git"))
        }
        None => Ok(()),
    }
}
