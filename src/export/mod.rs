//! `agentenv export`: a spec turned into what another system runs. One module per target;
//! each returns the text to print and never prints.
//!
//! - [`kubernetes`]: a CronJob (or Job) whose pod runs `agentenv run`, with its ConfigMap.

pub mod kubernetes;
