#[path = "it/git_transport.rs"]
mod git_transport;
