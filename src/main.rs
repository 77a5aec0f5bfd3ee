//! The `agentenv` command line: parse, run one command (each is `agentenv::cli::<command>`),
//! turn its outcome into an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use agentenv::cli::{self, output};

/// A ready workspace for an AI agent on Bitbucket code, from one YAML file in git.
#[derive(Debug, Parser)]
#[command(name = "agentenv", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decrypt secrets, clone or update the repositories, run the setup steps (idempotent).
    Provision(cli::provision::Args),
    /// Show what is provisioned in the workdir: repositories, HEADs, steps.
    Status(cli::status::Args),
    /// Check specs: schema, regexes, paths, references, secrets, deprecated auth.
    Validate(cli::validate::Args),
    /// Print the JSON Schema of the environment spec.
    Schema,
    /// Provision, then run an agent in the workdir with the tools wired in (AGENTENV_MCP_CONFIG)
    /// and no secret in its environment unless the spec names it; exits with the agent's code.
    Run(cli::run::Args),
    /// Print manifests that run the agent elsewhere: `export kubernetes` (CronJob or Job).
    #[command(subcommand)]
    Export(cli::export::Command),
    /// Serve the read-only tools over MCP (stdio, or streamable HTTP with --http).
    Serve(cli::serve::Args),
    /// Call one tool once and print its JSON result (the same code path as `serve`).
    Tool(cli::tool::Args),
    /// Manage age-encrypted secrets.
    #[command(subcommand)]
    Secret(cli::secret::Command),
    /// Test the connection: auth, workspace/project, each repository by git and API.
    Check(cli::check::Args),
    /// List a repository's remote branches (in scope), the default one marked.
    Branches(cli::branches::Args),
    /// git's credential-helper protocol, answered from the spec's secrets (used by setup steps).
    #[command(name = "git-credential", hide = true)]
    GitCredential(cli::git_credential::Args),
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        // The agent's exit code is the run's, whatever it is.
        Command::Run(args) => return cli::run::run(args),
        Command::Provision(args) => cli::provision::run(args),
        Command::Status(args) => cli::status::run(args),
        Command::Validate(args) => cli::validate::run(args),
        Command::Schema => cli::schema::run(),
        Command::Export(cmd) => cli::export::run(cmd),
        Command::Serve(args) => cli::serve::run(args),
        Command::Tool(args) => cli::tool::run(args),
        Command::Secret(cmd) => cli::secret::run(cmd),
        Command::Check(args) => cli::check::run(args),
        Command::Branches(args) => cli::branches::run(args),
        Command::GitCredential(args) => cli::git_credential::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::eprint(&format!("error: {e}\n"));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
