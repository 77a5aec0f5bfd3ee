//! The command line: one module per command, each holding the command's clap arguments, its
//! `run`, and its printing (human and `--json`). The stages return report values and never
//! print; every command writes through [`output`], which treats a closed pipe as success.

pub mod branches;
pub mod check;
pub mod output;
pub mod provision;
pub mod schema;
pub mod secret;
pub mod status;
pub mod validate;

/// A commit id as people read it: its first ten hex digits.
pub fn short_id(oid: &str) -> &str {
    oid.get(..10).unwrap_or(oid)
}
