//! `list_pipelines`: CI runs of a repository, from the API. Cloud has Pipelines; Data Center
//! has no CI of its own, so there it shows the build statuses CI servers posted on a branch's
//! recent commits. Runs on out-of-scope branches are left out and counted.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paging::{self, page_limit};
use super::source::remote::{api_error, block_on, str_at};
use super::source::{Remote, check_branch};
use super::text::{cut_chars, millis_rfc3339, parse_time};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::{ApiError, ApiErrorKind, seg};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// The repository, as the environment names it.
    pub repo: String,
    /// Only runs on this branch. Data Center: the branch whose recent commits are shown
    /// (default: the spec's `branch:` for the repo, else the repository's default branch).
    #[serde(default)]
    pub branch: Option<String>,
    /// Cloud: PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, ERROR or STOPPED.
    #[serde(default)]
    pub state: Option<String>,
    /// Only runs created at or after this time (RFC 3339, or a date `YYYY-MM-DD`).
    #[serde(default)]
    pub since: Option<String>,
    /// `next_cursor` from the previous page; omit for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Cloud: runs per page, 1 to 100, default 30. Data Center: commits per page, 1 to 20,
    /// default 10 (each commit costs one request).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One Cloud pipeline run.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Pipeline {
    /// The run's UUID: pass it as `pipeline` to get_pipeline_log.
    pub uuid: String,
    pub build_number: Option<u64>,
    /// PENDING, IN_PROGRESS, COMPLETED, ...
    pub state: String,
    /// For completed runs: SUCCESSFUL, FAILED, ERROR, STOPPED, EXPIRED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// What started it: PUSH, MANUAL, SCHEDULE, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
}

/// One Data Center build status.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Build {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SUCCESSFUL, FAILED, INPROGRESS, CANCELLED, UNKNOWN.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// A Data Center commit and the builds posted on it.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct CommitBuilds {
    pub commit: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    pub builds: Vec<Build>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ListOutput {
    pub repo: String,
    /// Cloud pipeline runs, newest first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub pipelines: Vec<Pipeline>,
    /// Data Center: the branch shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Data Center: the branch's recent commits, newest first, with their build statuses.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub commits: Vec<CommitBuilds>,
    /// Runs of this page left out because their branch is out of scope.
    pub out_of_scope: usize,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub struct ListPipelines;

impl Tool for ListPipelines {
    const NAME: &'static str = "list_pipelines";
    const DESCRIPTION: &'static str = "List CI runs of a repository. Bitbucket Cloud: Pipelines runs, newest first, with state, result, branch, commit, trigger, duration and creation time; filter by branch, state and since. Data Center: the build statuses CI servers posted on a branch's recent commits. Runs on branches outside the environment's scope are left out. From the Bitbucket API. Paginated: pass `next_cursor` back as `cursor`.";
    const API_ONLY: bool = true;
    type Args = ListArgs;
    type Output = ListOutput;

    fn run(ctx: &Context, args: ListArgs) -> Result<ListOutput> {
        let repo = ctx.remote(&args.repo)?;
        if let Some(b) = &args.branch {
            check_branch(&ctx.env.scope, b)?;
        }
        let since = args.since.as_deref().map(parse_since).transpose()?;
        if repo.is_cloud() {
            list_cloud(ctx, &repo, &args, since)
        } else {
            list_dc(ctx, &repo, &args, since)
        }
    }
}

const LIST_KIND: &str = "pipelines.v1";
const DC_MAX_COMMITS: usize = 20;

fn list_cloud(
    ctx: &Context,
    repo: &Remote<'_>,
    args: &ListArgs,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<ListOutput> {
    let limit = page_limit(args.limit)?;
    let state = args.state.as_deref().map(cloud_status).transpose()?;
    let binding = format!(
        "{}|{}|{}|{}",
        repo.name,
        args.branch.as_deref().unwrap_or(""),
        args.state.as_deref().unwrap_or(""),
        args.since.as_deref().unwrap_or("")
    );
    let after = paging::decode_bound(LIST_KIND, &binding, args.cursor.as_deref())?;
    let mut params: Vec<(&str, String)> = vec![("sort", "-created_on".into())];
    if let Some(b) = &args.branch {
        params.push(("target.branch", b.clone()));
    }
    if let Some((status, _)) = &state {
        params.push(("status", status.to_string()));
    }
    let endpoint = format!("{}/pipelines", repo.base);
    let page = block_on(
        repo.client
            .page(&endpoint, &params, limit, after.as_deref()),
    )
    .map_err(|e| pipelines_error(repo, e, None))?;
    let mut out_of_scope = 0;
    let mut pipelines = Vec::new();
    let mut reached_since = false;
    for v in &page.values {
        let p = cloud_pipeline(v);
        if let (Some(since), Some(created)) = (since, p.created.as_deref().and_then(server_time))
            && created < since
        {
            // Newest first: everything after this is older still.
            reached_since = true;
            continue;
        }
        if !p.branch.as_deref().is_some_and(|b| ctx.env.scope.branch(b)) {
            out_of_scope += 1;
            continue;
        }
        if args.branch.is_some() && p.branch != args.branch {
            continue;
        }
        if let Some((_, want)) = &state
            && !want(&p)
        {
            continue;
        }
        pipelines.push(p);
    }
    let next = if reached_since { None } else { page.next };
    let out = ListOutput {
        repo: repo.name.clone(),
        pipelines,
        branch: None,
        commits: Vec::new(),
        out_of_scope,
        next_cursor: paging::encode_bound(LIST_KIND, &binding, next),
    };
    Ok(out)
}

type StateFilter = fn(&Pipeline) -> bool;

/// The Cloud `status` filter value for a state an agent names, and the same test done locally
/// (servers differ in what they accept).
fn cloud_status(state: &str) -> Result<(&'static str, StateFilter)> {
    Ok(match state.to_uppercase().as_str() {
        "PENDING" => ("PENDING", |p| p.state == "PENDING"),
        "IN_PROGRESS" | "BUILDING" | "RUNNING" => ("BUILDING", |p| p.state == "IN_PROGRESS"),
        "SUCCESSFUL" | "PASSED" => ("PASSED", |p| p.result.as_deref() == Some("SUCCESSFUL")),
        "FAILED" => ("FAILED", |p| p.result.as_deref() == Some("FAILED")),
        "ERROR" => ("ERROR", |p| p.result.as_deref() == Some("ERROR")),
        "STOPPED" => ("STOPPED", |p| p.result.as_deref() == Some("STOPPED")),
        other => {
            return Err(Error::input(format!(
                "state `{other}` is not known; use PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, ERROR or STOPPED"
            )));
        }
    })
}

pub(crate) fn cloud_pipeline(v: &Value) -> Pipeline {
    let branch = str_at(v, "/target/ref_name")
        .filter(|_| str_at(v, "/target/ref_type").is_none_or(|t| t.eq_ignore_ascii_case("branch")))
        .or_else(|| str_at(v, "/target/source"));
    Pipeline {
        uuid: str_at(v, "/uuid").unwrap_or_default(),
        build_number: v.get("build_number").and_then(Value::as_u64),
        state: str_at(v, "/state/name").unwrap_or_default(),
        result: str_at(v, "/state/result/name"),
        branch,
        commit: str_at(v, "/target/commit/hash"),
        trigger: str_at(v, "/trigger/name"),
        creator: str_at(v, "/creator/display_name").or_else(|| str_at(v, "/creator/nickname")),
        created: str_at(v, "/created_on"),
        completed: str_at(v, "/completed_on"),
        duration_secs: v.get("duration_in_seconds").and_then(Value::as_u64),
    }
}

fn list_dc(
    ctx: &Context,
    repo: &Remote<'_>,
    args: &ListArgs,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<ListOutput> {
    let limit = match args.limit {
        None => 10,
        Some(n) if (1..=DC_MAX_COMMITS).contains(&n) => n,
        Some(n) => {
            return Err(Error::input(format!(
                "limit {n} is out of range on Data Center; use 1 to {DC_MAX_COMMITS} (each commit costs one request) and follow next_cursor for more"
            )));
        }
    };
    if args.state.is_some() {
        return Err(Error::input(
            "`state` filters Cloud Pipelines runs; on Data Center the build statuses of every commit are shown",
        ));
    }
    let client = &repo.client;
    let branch = match args.branch.clone().or_else(|| repo.spec.branch.clone()) {
        Some(b) => b,
        None => {
            let v = block_on(client.get_json(&format!("{}/default-branch", repo.base)))
                .map_err(|e| api_error(e, &format!("repository `{}`", repo.name)))?;
            str_at(&v, "/displayId").ok_or_else(|| {
                Error::not_found(format!(
                    "repository `{}` has no default branch; pass `branch`",
                    repo.name
                ))
            })?
        }
    };
    check_branch(&ctx.env.scope, &branch)?;
    let binding = format!(
        "{}|{branch}|{}",
        repo.name,
        args.since.as_deref().unwrap_or("")
    );
    let after = paging::decode_bound(LIST_KIND, &binding, args.cursor.as_deref())?;
    let page = block_on(client.page(
        &format!("{}/commits", repo.base),
        &[("until", format!("refs/heads/{branch}"))],
        limit,
        after.as_deref(),
    ))
    .map_err(|e| api_error(e, &format!("branch `{branch}` of `{}`", repo.name)))?;
    let mut commits = Vec::new();
    let mut reached_since = false;
    for c in &page.values {
        let Some(id) = str_at(c, "/id") else { continue };
        let date = millis_rfc3339(c.get("committerTimestamp").and_then(Value::as_i64));
        if let (Some(since), Some(d)) = (since, date.as_deref().and_then(server_time))
            && d < since
        {
            reached_since = true;
            break;
        }
        let statuses = block_on(client.page(
            &format!("/build-status/1.0/commits/{}", seg(&id)),
            &[],
            100,
            None,
        ))
        .map_err(|e| api_error(e, &format!("commit {id}")))?;
        let builds = statuses
            .values
            .iter()
            .map(|b| Build {
                key: str_at(b, "/key").unwrap_or_default(),
                name: str_at(b, "/name"),
                state: str_at(b, "/state").unwrap_or_default(),
                url: str_at(b, "/url"),
                description: str_at(b, "/description"),
                date: millis_rfc3339(b.get("dateAdded").and_then(Value::as_i64)),
            })
            .collect();
        let message = str_at(c, "/message").unwrap_or_default();
        commits.push(CommitBuilds {
            commit: id,
            summary: cut_chars(message.lines().next().unwrap_or(""), 200),
            date,
            builds,
        });
    }
    let next = if reached_since { None } else { page.next };
    let out = ListOutput {
        repo: repo.name.clone(),
        pipelines: Vec::new(),
        branch: Some(branch),
        commits,
        out_of_scope: 0,
        next_cursor: paging::encode_bound(LIST_KIND, &binding, next),
    };
    Ok(out)
}

/// A time as the server writes it (RFC 3339).
fn server_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    let secs = parse_time(s, "since", false)?;
    chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| Error::input(format!("`since` is `{s}`: out of range")))
}

/// A pipelines error made specific: a 404 on a repository that exists means Pipelines is not
/// enabled (or the run does not exist); a 403 names the scope pipelines need.
pub(crate) fn pipelines_error(repo: &Remote<'_>, e: ApiError, run: Option<&str>) -> Error {
    match e.kind {
        ApiErrorKind::NotFound => {
            let repo_exists = block_on(repo.client.get_json(&repo.base)).is_ok();
            if !repo_exists {
                return api_error(e, &format!("repository `{}`", repo.name));
            }
            let message = match run {
                Some(id) => format!(
                    "pipeline `{id}` of `{}` was not found: the run does not exist, or Pipelines is not enabled for this repository; call list_pipelines to see runs",
                    repo.name
                ),
                None => format!(
                    "Pipelines is not enabled for repository `{}` (the repository exists but has no pipelines endpoint); enable it in the repository settings, or use list_commits instead",
                    repo.name
                ),
            };
            Error::not_found(message).with_source(e)
        }
        ApiErrorKind::Forbidden => {
            let mut t = Error::from(e);
            t.message.push_str(
                " — reading pipelines needs the `read:pipeline:bitbucket` scope on an API token, or `pipeline` on an access token",
            );
            t
        }
        _ => Error::from(e),
    }
}
