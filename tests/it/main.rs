//! The integration tests, in one binary (as cargo's own `tests/testsuite`): one module per
//! stage, and `support` for what they share. One binary links the crate once, instead of once
//! per test file.
//!
//! Run one stage with a filter: `cargo test --test it secrets::`.

mod support;

/// The spec: the committed JSON Schema and `agentenv validate`.
mod spec {
    mod hostile;
    mod schema;
    mod secrets;
    mod validate;
}

/// The secrets store, resolution, redaction, and interoperability with the age CLI.
mod secrets {
    mod bad_input;
    mod canary;
    mod damage;
    mod interop;
    mod personal;
    mod prompt;
    mod redact;
    mod store;
    mod unresolved;
}

/// `agentenv provision`: repositories and setup steps.
mod provision {
    mod repos;
    mod steps;
}

/// `agentenv run` and the node-level clone cache it and `provision` share.
mod run {
    mod agent;
    mod cache;
}

/// `agentenv export kubernetes` and the container image it runs.
mod export {
    mod image;
    mod kubernetes;
}

/// Provision under faults: a full disk, permissions, SIGKILL at any point, racing runs.
mod reliability {
    mod crash;
    mod disk;
}

/// Authenticated clones against the emulator: every auth form, faults, secrets kept out of
/// argv and disk.
mod clone {
    mod auth;
    mod faults;
    mod secrets;
}

/// `agentenv check` and `agentenv branches`: asking the remote before provisioning.
mod check {
    mod bare_401;
    mod branches;
    mod connection;
}

/// The Bitbucket REST client and the tools that answer from the API.
mod api {
    mod checkout;
    mod client;
    mod logs;
    mod tools;
    mod workspace;
}

/// The tools that answer from a checkout: what they show, scope and confinement, search.
mod tools {
    mod bounds;
    mod checkout;
    mod conformance;
    mod one_view;
    mod search;
    mod security;
}

/// `agentenv serve` (stdio, streamable HTTP), `agentenv tool`, the text answers, and the
/// official MCP SDKs (Python, TypeScript) as clients.
mod serve {
    mod cli;
    mod http;
    mod http_wire;
    mod interop;
    mod pressure;
    mod raw;
    mod render;
    mod stdio;
}

/// The Bitbucket REST client against Atlassian's recorded samples and the emulator.
mod bitbucket_client;

/// Every command's output into a pipe nobody reads.
mod cli_pipe;

/// Every command the README shows, run as shown.
mod readme;

/// `agentenv::git` against the git CLI on the same repositories.
mod git_semantics;

/// git's network operations against hostile or broken servers.
mod git_transport;

mod toolsnaps;
