//! agentenv: one YAML file in git → a ready workspace for an AI agent on Bitbucket code.
//!
//! The stages, each one module: `spec` (parse, validate, schema) → `secrets` (age) →
//! `provision` (repos, steps, state) → `serve` (MCP) → `tools` (scope, checkout, API);
//! `run` (provision, then the agent with the tools wired in) and `export` (Kubernetes
//! manifests that run it on a schedule) put the stages together for scheduled agent runs;
//! `check` (the connection test) and `branches` (a remote's branches in scope) serve the
//! commands of those names. The stages return report values and never print: `cli` holds
//! each command's arguments and printing.

pub mod bitbucket;
pub mod branches;
pub mod check;
pub mod cli;
pub mod error;
pub mod export;
pub mod git;
pub mod providers;
pub mod provision;
pub mod run;
pub mod scope;
pub mod secrets;
pub mod serve;
pub mod spec;
pub mod tools;

pub use error::{Error, Kind, Result};
