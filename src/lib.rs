//! agentenv: one YAML file in git → a ready workspace for an AI agent on Bitbucket code.
//!
//! The stages, each one module: `spec` (parse, validate, schema) → `secrets` (age) →
//! `provision` (repos, steps, state) → `serve` (MCP) → `tools` (scope, checkout, API).

pub mod bitbucket;
pub mod branches;
pub mod check;
pub mod error;
pub mod git;
pub mod providers;
pub mod provision;
pub mod scope;
pub mod secrets;
pub mod serve;
pub mod spec;
pub mod tools;

pub use error::{Error, Kind, Result};
