#[path = "it/git_semantics.rs"]
mod git_semantics;
