//! Tools answered from the Bitbucket REST API: list_repositories, list_pull_requests,
//! get_pull_request, list_pipelines, get_pipeline_log.
//!
//! Every call goes through the provider's [`Client`], which lives in the [`Context`]: its request
//! budget and cache are shared by every tool of one server. Repositories are checked against the
//! scope with `scope::repo` exactly as the checkout tools do (a repo that is in scope but not
//! cloned is fine here), and every branch a result names is checked too: results on branches
//! outside the scope are left out and counted.

mod fallback;
mod fallback_commits;
mod pipelines;
mod pulls;
mod repos;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(crate) use fallback::fallback as checkout_fallback;

pub(crate) use super::paging::{decode_bound as decode_cursor, encode_bound as encode_cursor};
use super::scope;
pub(crate) use super::text::millis_rfc3339;
use super::{Context, Error, Kind, Tool};
use crate::bitbucket::{ApiError, ApiErrorKind, Budget, Client, Flavor, Options, seg};
use crate::spec::Repo;

pub fn tools() -> Vec<Tool> {
    vec![
        repos::tool(),
        pulls::list_tool(),
        pulls::get_tool(),
        pipelines::list_tool(),
        pipelines::log_tool(),
    ]
}

/// The REST clients of one server, one per provider, built on first use.
#[derive(Default)]
pub struct Clients {
    /// Used for clients built from now on (tests shorten back-offs and the cache TTL).
    pub options: Options,
    /// Replaces `rate_limit.per_hour` for clients built from now on: (requests, window).
    pub budget_override: Option<(u32, std::time::Duration)>,
    built: Mutex<HashMap<String, Arc<Client>>>,
}

impl Context {
    /// The REST client of provider `name`, built once per server.
    pub fn api_client(&self, name: &str) -> Result<Arc<Client>, Error> {
        let mut built = self.api.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = built.get(name) {
            return Ok(c.clone());
        }
        let provider = self.env.spec.providers.get(name).ok_or_else(|| {
            Error::new(
                Kind::Input,
                format!(
                    "no provider `{name}` in this environment; providers: {}",
                    self.provider_names()
                ),
            )
        })?;
        let mut client = Client::new(name, provider, &self.secrets, self.api.options.clone())
            .map_err(|e| Error::from(e))?;
        if let Some((n, window)) = self.api.budget_override {
            client = client.with_budget(Budget::new(n, window));
        }
        let client = Arc::new(client);
        built.insert(name.to_string(), client.clone());
        Ok(client)
    }

    fn provider_names(&self) -> String {
        let names: Vec<&str> = self.env.spec.providers.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none (add `providers:` to the spec)".to_string()
        } else {
            names.join(", ")
        }
    }
}

/// Run an async API call from a synchronous tool handler. Handlers run on tokio's blocking
/// pool (see `Context::call`), where blocking on the server's runtime is allowed; outside a
/// runtime (a direct call in a test) a small one is made for the call.
pub(crate) fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(fut),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime can be built")
            .block_on(fut),
    }
}

/// An API failure looking up `what`: a 404 may also mean the credential cannot see it.
pub(crate) fn api_error(e: ApiError, what: &str) -> Error {
    let not_found = e.kind == ApiErrorKind::NotFound;
    let err = Error::from(e);
    if not_found {
        err.context(format_args!(
            "{what} does not exist or is not visible to the environment's credential"
        ))
    } else {
        err
    }
}

/// An in-scope repository of the spec, reached through its provider's API.
pub(crate) struct ApiRepo<'a> {
    pub name: String,
    pub spec: &'a Repo,
    pub client: Arc<Client>,
    /// The repository's API path: `/repositories/{ws}/{slug}` or
    /// `/api/1.0/projects/{KEY}/repos/{slug}`.
    pub base: String,
}

impl ApiRepo<'_> {
    pub fn is_cloud(&self) -> bool {
        self.client.is_cloud()
    }
}

/// The spec's repository `name` if the scope allows it (cloned or not) and it has a provider.
pub(crate) fn api_repo<'a>(ctx: &'a Context, name: &str) -> Result<ApiRepo<'a>, Error> {
    // `scope::repo` decides scope and existence first and only then whether it is cloned, so
    // `not_cloned` means "in scope and in the spec": exactly what an API tool needs.
    let spec = match scope::repo(ctx, name) {
        Ok(r) => r.spec,
        Err(e) if e.kind == Kind::NotCloned => ctx.env.repo(name).ok_or(e)?,
        Err(e) => return Err(e),
    };
    let provider = spec.provider.as_deref().ok_or_else(|| {
        Error::new(
            Kind::Input,
            format!(
                "repository `{name}` has no `provider:` in the spec, so it has no Bitbucket API; the checkout tools still work on it"
            ),
        )
    })?;
    let client = ctx.api_client(provider)?;
    let slug = spec.name();
    let base = match &client.flavor {
        Flavor::Cloud { workspace } => format!("/repositories/{}/{}", seg(workspace), seg(&slug)),
        Flavor::DataCenter { project } => {
            format!("/api/1.0/projects/{}/repos/{}", seg(project), seg(&slug))
        }
    };
    Ok(ApiRepo {
        name: name.to_string(),
        spec,
        client,
        base,
    })
}

/// A branch a call names, refused when out of scope (before any request, like the checkout tools).
pub(crate) fn check_branch(ctx: &Context, branch: &str) -> Result<(), Error> {
    scope::check_ref_syntax(branch)?;
    if ctx.env.scope.branch(branch) {
        Ok(())
    } else {
        Err(scope::out_of_scope_branch(ctx, branch))
    }
}

/// A string at a JSON pointer.
pub(crate) fn s(v: &serde_json::Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}
