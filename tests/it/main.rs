//! The integration tests, in one binary (as cargo's own `tests/testsuite`): one module per
//! stage, and `support` for what they share. One binary links the crate once, instead of once
//! per test file.
//!
//! Run one stage with a filter: `cargo test --test it secrets::`.

mod support;

/// The spec: the committed JSON Schema and `agentenv validate`.
mod spec {
    mod schema;
    mod validate;
}

/// The secrets store, resolution, redaction, and interoperability with the age CLI.
mod secrets {
    mod bad_input;
    mod canary;
    mod interop;
    mod prompt;
    mod redact;
    mod store;
}

mod toolsnaps;
