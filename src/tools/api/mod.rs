//! Tools answered from the Bitbucket REST API only: list_repositories, list_pull_requests,
//! get_pull_request, list_pipelines, get_pipeline_log.
//!
//! Repositories are checked against the scope as every tool does (a repository that is in
//! scope but not cloned is fine here), and every branch a result names is checked too: results
//! on branches outside the scope are left out and counted.

mod pipelines;
mod pulls;
mod repos;

pub(crate) use super::paging::{decode_bound as decode_cursor, encode_bound as encode_cursor};
pub(crate) use super::source::remote::{Remote as ApiRepo, api_error, block_on, str_at as s};
pub(crate) use super::text::millis_rfc3339;
use super::{Context, Registered, Result};
pub(crate) use super::{Error, Kind};

pub fn tools() -> Vec<Registered> {
    vec![
        repos::tool(),
        pulls::list_tool(),
        pulls::get_tool(),
        pipelines::list_tool(),
        pipelines::log_tool(),
    ]
}

/// The spec's repository `name` if the scope allows it (cloned or not) and it has a provider.
pub(crate) fn api_repo<'a>(ctx: &'a Context, name: &str) -> Result<ApiRepo<'a>> {
    ctx.remote(name)
}

/// A branch a call names, refused when out of scope (before any request, like the checkout tools).
pub(crate) fn check_branch(ctx: &Context, branch: &str) -> Result<()> {
    super::source::check_branch(&ctx.env.scope, branch)
}
