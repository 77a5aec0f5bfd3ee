//! A typed REST client for Bitbucket Cloud 2.0 and Data Center 1.0. One [`Client`] per
//! provider, built from an API root and a [`Credential`] (or from a spec's provider and the
//! resolved secrets), answers typed calls — `pull_requests(repo, query, limit, cursor)` →
//! [`Page<PullRequest>`] — with the same model on both products.
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | [`Client`]: construction and the typed calls, each dispatched to one product |
//! | `client.rs` | the transport: budget, cache with ETags, manual redirects that never carry the credential off the API's origin, retries, status → [`ApiError`] |
//! | `cloud.rs` | Cloud's paths, parameters and quirks, and its JSON → model |
//! | `datacenter.rs` | Data Center's paths, parameters and quirks, and its JSON → model |
//! | `model.rs` | the typed values ([`Repository`], [`Branch`], [`Commit`], [`PullRequest`], …) |
//! | `page.rs` | [`Page`] and the opaque [`Cursor`] |
//! | `credential.rs` | [`Credential`]: the `Authorization` value, zeroed, never printed |
//! | `budget.rs` | the client-side request budget |
//! | `error.rs` | [`ApiError`] and its one conversion into [`crate::Error`] |
//! | `json.rs` | reading answer fields by JSON pointer (for `cloud.rs` and `datacenter.rs`) |
//!
//! Only `cloud.rs` and `datacenter.rs` know Bitbucket's JSON field names. A repository is
//! addressed by a [`RepoId`]; pages continue with the [`Cursor`] of the previous page, which
//! the client checks against the call it is given to, so a forged cursor cannot reach another
//! endpoint or repository.

mod budget;
mod client;
mod cloud;
mod credential;
mod datacenter;
mod error;
mod json;
mod model;
mod page;

use reqwest::Url;

pub use budget::{Budget, DEFAULT_PER_HOUR};
pub use client::{MAX_BODY_BYTES, Options, seg};
pub use credential::Credential;
pub use error::{ApiError, ApiErrorKind};
pub use model::{
    Branch, BuildStatus, ChangeStatus, ChangedFile, CloneUrl, Commit, CommitQuery, DirEntry,
    EntryKind, FileContent, FileRead, FromCloud, FromDataCenter, Listing, Pipeline, PipelineId,
    PipelineQuery, PipelineStep, PrQuery, PrRef, PrState, PullRequest, RawText, RepoId, Repository,
    Rev, Reviewer, RunStatus, Signature, Timestamp, User,
};
pub(crate) use page::At;
pub use page::{Cursor, Page};

use crate::secrets::ResolvedSecrets;
use crate::spec::{Provider, ProviderKind};
use client::Transport;

pub const CLOUD_API: &str = "https://api.bitbucket.org/2.0";

/// Which API a client speaks, and whose repositories it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    Cloud { workspace: String },
    DataCenter { project: String },
}

impl Flavor {
    /// The Cloud workspace or the Data Center project key.
    pub fn owner(&self) -> &str {
        match self {
            Flavor::Cloud { workspace } => workspace,
            Flavor::DataCenter { project } => project,
        }
    }

    fn kind(&self) -> ProviderKind {
        match self {
            Flavor::Cloud { .. } => ProviderKind::Cloud,
            Flavor::DataCenter { .. } => ProviderKind::Datacenter,
        }
    }
}

/// A REST client for one provider.
#[derive(Debug)]
pub struct Client {
    /// The provider's name, for messages.
    pub name: String,
    pub flavor: Flavor,
    t: Transport,
}

/// The same call on whichever product the client speaks.
macro_rules! dispatch {
    ($self:ident . $call:ident ( $($arg:expr),* )) => {
        match &$self.flavor {
            Flavor::Cloud { .. } => cloud::$call(&$self.t, $($arg),*).await,
            Flavor::DataCenter { .. } => datacenter::$call(&$self.t, $($arg),*).await,
        }
    };
}

impl Client {
    /// A client for the API at `api_root` (Cloud: `https://api.bitbucket.org/2.0`; Data
    /// Center: `{base}/rest`, where `{base}/rest/api/1.0` is accepted too), sending
    /// `credential` (none: anonymous). The budget is [`DEFAULT_PER_HOUR`] until
    /// [`Client::with_budget`].
    pub fn new(
        name: &str,
        flavor: Flavor,
        api_root: Url,
        credential: Option<Credential>,
        opts: Options,
    ) -> Result<Client, ApiError> {
        let root = api_root.as_str().trim_end_matches('/');
        let root = match flavor {
            // Data Center calls reach `api/1.0` and `build-status/1.0`: the root is above both.
            Flavor::DataCenter { .. } => root
                .strip_suffix("/api/1.0")
                .or_else(|| root.strip_suffix("/api/latest"))
                .unwrap_or(root),
            Flavor::Cloud { .. } => root,
        };
        let api_root = Url::parse(root).map_err(|e| {
            ApiError::new(
                ApiErrorKind::Invalid,
                format!("provider `{name}`: API root `{root}` is not a URL: {e}"),
            )
        })?;
        let t = Transport::new(name, flavor.kind(), api_root, credential, opts)?;
        Ok(Client {
            name: name.to_string(),
            flavor,
            t,
        })
    }

    /// The client for provider `name` of a spec, its credential resolved from `secrets` and
    /// its budget from `rate_limit`.
    pub fn from_provider(
        name: &str,
        provider: &Provider,
        secrets: &ResolvedSecrets,
        opts: Options,
    ) -> Result<Client, ApiError> {
        let config = |m: String| ApiError::new(ApiErrorKind::Invalid, m);
        let flavor = match provider.kind {
            ProviderKind::Cloud => Flavor::Cloud {
                workspace: provider.workspace.clone().ok_or_else(|| {
                    config(format!("provider `{name}` (cloud) has no `workspace`; add the workspace slug to the spec"))
                })?,
            },
            ProviderKind::Datacenter => Flavor::DataCenter {
                project: provider.project.clone().ok_or_else(|| {
                    config(format!("provider `{name}` (datacenter) has no `project`; add the project key to the spec"))
                })?,
            },
        };
        let root = match (&provider.api_url, provider.kind, &provider.base_url) {
            (Some(u), _, _) => u.clone(),
            (None, ProviderKind::Cloud, _) => CLOUD_API.to_string(),
            (None, ProviderKind::Datacenter, Some(b)) => {
                format!("{}/rest", b.trim_end_matches('/'))
            }
            (None, ProviderKind::Datacenter, None) => {
                return Err(config(format!(
                    "provider `{name}` (datacenter) has no `base_url`; add the server's URL to the spec"
                )));
            }
        };
        let api_root = Url::parse(root.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                config(format!(
                    "provider `{name}`: API root `{root}` is not an http(s) URL; fix `api_url`/`base_url` in the spec"
                ))
            })?;
        let credential = Credential::of_provider(name, provider, secrets)?;
        let per_hour = provider
            .rate_limit
            .as_ref()
            .map(|r| r.per_hour)
            .unwrap_or(DEFAULT_PER_HOUR);
        Ok(Client::new(name, flavor, api_root, credential, opts)?
            .with_budget(Budget::per_hour(per_hour)))
    }

    /// Replace the request budget (`rate_limit.per_hour`; tests use a short window).
    pub fn with_budget(mut self, budget: Budget) -> Client {
        self.t.budget = budget;
        self
    }

    pub fn is_cloud(&self) -> bool {
        matches!(self.flavor, Flavor::Cloud { .. })
    }

    /// The API root as configured, for messages.
    pub fn api_root(&self) -> &str {
        self.t.api_root().as_str()
    }

    /// A repository of this provider's workspace or project.
    pub fn repo(&self, slug: &str) -> RepoId {
        RepoId::new(self.flavor.owner(), slug)
    }

    // ---- Repositories and branches ----------------------------------------------------

    /// The repositories of the workspace (Cloud) or project (Data Center); with `filter`, only
    /// those the server finds by that text: Cloud `full_name ~ "TEXT"` (a case-insensitive
    /// "contains" on `workspace/slug`), Data Center the cross-project search
    /// `/repos?projectkey=KEY&name=TEXT` (case-insensitive, on the repository's name).
    pub async fn repositories(
        &self,
        filter: Option<&str>,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Repository>, ApiError> {
        match &self.flavor {
            Flavor::Cloud { workspace } => {
                cloud::repositories(&self.t, workspace, filter, At::new(limit, cursor)).await
            }
            Flavor::DataCenter { project } => {
                datacenter::repositories(&self.t, project, filter, At::new(limit, cursor)).await
            }
        }
    }

    pub async fn repository(&self, repo: &RepoId) -> Result<Repository, ApiError> {
        dispatch!(self.repository(repo))
    }

    /// Whether the workspace (Cloud) or project (Data Center) can be read with this
    /// client's credential: `Ok` when it can.
    pub async fn owner(&self) -> Result<(), ApiError> {
        match &self.flavor {
            Flavor::Cloud { workspace } => cloud::workspace(&self.t, workspace).await,
            Flavor::DataCenter { project } => datacenter::project(&self.t, project).await,
        }
    }

    /// The Cloud user the credential belongs to (an API token names one; access tokens do not).
    pub async fn current_user(&self) -> Result<User, ApiError> {
        if !self.is_cloud() {
            return Err(ApiError::new(
                ApiErrorKind::Invalid,
                "the current user is asked of Bitbucket Cloud only",
            ));
        }
        cloud::current_user(&self.t).await
    }

    /// Branches, optionally only those whose name contains `filter` (case-insensitive).
    pub async fn branches(
        &self,
        repo: &RepoId,
        filter: Option<&str>,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Branch>, ApiError> {
        dispatch!(self.branches(repo, filter, At::new(limit, cursor)))
    }

    /// The branch named exactly `name`, or `None` when there is none.
    pub async fn branch(&self, repo: &RepoId, name: &str) -> Result<Option<Branch>, ApiError> {
        dispatch!(self.branch(repo, name))
    }

    /// The default branch's name; `None` when the server names none.
    pub async fn default_branch(&self, repo: &RepoId) -> Result<Option<String>, ApiError> {
        dispatch!(self.default_branch(repo))
    }

    // ---- Commits ----------------------------------------------------------------------

    /// Commits newest first, as [`CommitQuery`] selects them.
    pub async fn commits(
        &self,
        repo: &RepoId,
        query: &CommitQuery,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Commit>, ApiError> {
        dispatch!(self.commits(repo, query, At::new(limit, cursor)))
    }

    /// One commit by id (full or abbreviated; Data Center takes ids only, not ref names).
    pub async fn commit(&self, repo: &RepoId, id: &str) -> Result<Commit, ApiError> {
        dispatch!(self.commit(repo, id))
    }

    /// Whether one of `branches` reaches commit `id` (a full id): Cloud answers in one
    /// request, Data Center needs one per branch until one does.
    pub async fn reachable_from(
        &self,
        repo: &RepoId,
        id: &str,
        branches: &[Branch],
    ) -> Result<bool, ApiError> {
        dispatch!(self.reachable(repo, id, branches))
    }

    /// The files a commit changes against its first parent.
    pub async fn commit_changes(
        &self,
        repo: &RepoId,
        id: &str,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<ChangedFile>, ApiError> {
        dispatch!(self.commit_changes(repo, id, At::new(limit, cursor)))
    }

    /// A commit's unified diff against its first parent, read up to `max_bytes`.
    pub async fn commit_diff(
        &self,
        repo: &RepoId,
        id: &str,
        max_bytes: usize,
    ) -> Result<RawText, ApiError> {
        dispatch!(self.commit_diff(repo, id, max_bytes))
    }

    // ---- Files ------------------------------------------------------------------------

    /// The entries of directory `path` (`""`: the root) at `commit`, in the server's order.
    pub async fn directory(
        &self,
        repo: &RepoId,
        commit: &str,
        path: &str,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Listing, ApiError> {
        dispatch!(self.directory(repo, commit, path, At::new(limit, cursor)))
    }

    /// The bytes of file `path` at `commit`, read up to `max_bytes`.
    pub async fn file(
        &self,
        repo: &RepoId,
        commit: &str,
        path: &str,
        max_bytes: usize,
    ) -> Result<FileRead, ApiError> {
        dispatch!(self.file(repo, commit, path, max_bytes))
    }

    // ---- Pull requests ----------------------------------------------------------------

    /// Pull requests newest first, with reviewers and approvals.
    pub async fn pull_requests(
        &self,
        repo: &RepoId,
        query: &PrQuery,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<PullRequest>, ApiError> {
        dispatch!(self.pull_requests(repo, query, At::new(limit, cursor)))
    }

    pub async fn pull_request(&self, repo: &RepoId, id: u64) -> Result<PullRequest, ApiError> {
        dispatch!(self.pull_request(repo, id))
    }

    /// The files a pull request changes (against the merge base of its branches).
    pub async fn pull_request_changes(
        &self,
        repo: &RepoId,
        id: u64,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<ChangedFile>, ApiError> {
        dispatch!(self.pull_request_changes(repo, id, At::new(limit, cursor)))
    }

    /// A pull request's unified diff, read up to `max_bytes`.
    pub async fn pull_request_diff(
        &self,
        repo: &RepoId,
        id: u64,
        max_bytes: usize,
    ) -> Result<RawText, ApiError> {
        dispatch!(self.pull_request_diff(repo, id, max_bytes))
    }

    // ---- CI ---------------------------------------------------------------------------

    fn cloud_only(&self, what: &str) -> Result<(), ApiError> {
        if self.is_cloud() {
            Ok(())
        } else {
            Err(ApiError::new(
                ApiErrorKind::Invalid,
                format!(
                    "{what} exist on Bitbucket Cloud only: Data Center has no CI of its own (read the build statuses CI servers post on commits)"
                ),
            ))
        }
    }

    /// Cloud Pipelines runs, newest first.
    pub async fn pipelines(
        &self,
        repo: &RepoId,
        query: &PipelineQuery,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Pipeline>, ApiError> {
        self.cloud_only("pipelines")?;
        cloud::pipelines(&self.t, repo, query, At::new(limit, cursor)).await
    }

    /// One Cloud Pipelines run, by UUID or build number.
    pub async fn pipeline(&self, repo: &RepoId, id: &PipelineId) -> Result<Pipeline, ApiError> {
        self.cloud_only("pipelines")?;
        cloud::pipeline(&self.t, repo, id).await
    }

    /// The steps of run `pipeline` (its UUID, braces included).
    pub async fn pipeline_steps(
        &self,
        repo: &RepoId,
        pipeline: &str,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<PipelineStep>, ApiError> {
        self.cloud_only("pipeline steps")?;
        cloud::pipeline_steps(&self.t, repo, pipeline, At::new(limit, cursor)).await
    }

    /// A step's log, read up to `max_bytes` (from object storage, without the credential,
    /// once the step has completed).
    pub async fn step_log(
        &self,
        repo: &RepoId,
        pipeline: &str,
        step: &str,
        max_bytes: usize,
    ) -> Result<RawText, ApiError> {
        self.cloud_only("pipeline logs")?;
        cloud::step_log(&self.t, repo, pipeline, step, max_bytes).await
    }

    /// The build statuses CI servers posted on a Data Center commit, newest first.
    pub async fn build_statuses(
        &self,
        commit: &str,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<BuildStatus>, ApiError> {
        if self.is_cloud() {
            return Err(ApiError::new(
                ApiErrorKind::Invalid,
                "build statuses are read from Data Center here; on Cloud read its pipelines",
            ));
        }
        datacenter::build_statuses(&self.t, commit, At::new(limit, cursor)).await
    }
}
