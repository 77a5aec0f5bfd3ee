//! git itself, over `git2::Repository`.
//!
//! History semantics (proven equal to the git CLI by `tests/it/git_semantics.rs`):
//! [`log`] walks history as `git log` does (order, default history simplification for paths,
//! `--since`/`--until`, `--author`, `--skip`, `-n`); [`diffstat`] lists a commit's changes as
//! `git diff-tree -r -M --numstat` does, with git's rename detection ([`similarity`] is
//! diffcore-delta's similarity estimate); [`rev`] resolves abbreviated ids and `~`/`^` ancestry
//! as `git rev-parse` does. [`objects`] reads commits and trees as git parses them and holds the
//! one error type of these modules, [`HistoryError`], whose [`NeedsHistory`] case tells a
//! caller on a shallow clone how much more history an answer needs.

pub mod diffstat;
pub mod log;
pub mod objects;
pub mod rev;
pub mod similarity;

pub use objects::{HistoryError, NeedsHistory};
