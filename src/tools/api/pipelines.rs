//! `list_pipelines` and `get_pipeline_log`. Cloud has Pipelines; Data Center has no CI of its
//! own, so there `list_pipelines` shows the build statuses CI servers posted on a branch's
//! recent commits.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ApiRepo, Context, Error, Kind, api_error, api_repo, block_on, check_branch, decode_cursor,
    encode_cursor, millis_rfc3339, s,
};
use crate::bitbucket::{ApiError, ApiErrorKind, MAX_BODY_BYTES, query, seg};
use crate::tools::paging::page_limit;
use crate::tools::text::parse_time;
use crate::tools::text::{MAX_OUTPUT_BYTES, cut_chars};
use crate::tools::{Registered, ToolInfo, parse_args, schema_of};

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

pub fn list_tool() -> Registered {
    Registered {
        info: ToolInfo {
            name: "list_pipelines",
            description: "List CI runs of a repository. Bitbucket Cloud: Pipelines runs, newest first, with state, result, branch, commit, trigger, duration and creation time; filter by branch, state and since. Data Center: the build statuses CI servers posted on a branch's recent commits. Runs on branches outside the environment's scope are left out. From the Bitbucket API. Paginated: pass `next_cursor` back as `cursor`.",
            input_schema: schema_of::<ListArgs>(),
            output_schema: schema_of::<ListOutput>(),
            default: true,
            api_only: true,
        },
        call: run_list,
    }
}

const LIST_KIND: &str = "pipelines.v1";
const DC_MAX_COMMITS: usize = 20;

fn run_list(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: ListArgs = parse_args(args)?;
    let repo = api_repo(ctx, &args.repo)?;
    if let Some(b) = &args.branch {
        check_branch(ctx, b)?;
    }
    let since = args.since.as_deref().map(parse_since).transpose()?;
    if repo.is_cloud() {
        list_cloud(ctx, &repo, &args, since)
    } else {
        list_dc(ctx, &repo, &args, since)
    }
}

fn list_cloud(
    ctx: &Context,
    repo: &ApiRepo<'_>,
    args: &ListArgs,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<serde_json::Value, Error> {
    let limit = page_limit(args.limit)?;
    let state = args.state.as_deref().map(cloud_status).transpose()?;
    let binding = format!(
        "{}|{}|{}|{}",
        repo.name,
        args.branch.as_deref().unwrap_or(""),
        args.state.as_deref().unwrap_or(""),
        args.since.as_deref().unwrap_or("")
    );
    let after = decode_cursor(LIST_KIND, &binding, args.cursor.as_deref())?;
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
        next_cursor: encode_cursor(LIST_KIND, &binding, next),
    };
    Ok(serde_json::to_value(out).expect("json"))
}

type StateFilter = fn(&Pipeline) -> bool;

/// The Cloud `status` filter value for a state an agent names, and the same test done locally
/// (servers differ in what they accept).
fn cloud_status(state: &str) -> Result<(&'static str, StateFilter), Error> {
    Ok(match state.to_uppercase().as_str() {
        "PENDING" => ("PENDING", |p| p.state == "PENDING"),
        "IN_PROGRESS" | "BUILDING" | "RUNNING" => ("BUILDING", |p| p.state == "IN_PROGRESS"),
        "SUCCESSFUL" | "PASSED" => ("PASSED", |p| p.result.as_deref() == Some("SUCCESSFUL")),
        "FAILED" => ("FAILED", |p| p.result.as_deref() == Some("FAILED")),
        "ERROR" => ("ERROR", |p| p.result.as_deref() == Some("ERROR")),
        "STOPPED" => ("STOPPED", |p| p.result.as_deref() == Some("STOPPED")),
        other => {
            return Err(Error::new(
                Kind::Input,
                format!(
                    "state `{other}` is not known; use PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, ERROR or STOPPED"
                ),
            ));
        }
    })
}

fn cloud_pipeline(v: &Value) -> Pipeline {
    let branch = s(v, "/target/ref_name")
        .filter(|_| s(v, "/target/ref_type").is_none_or(|t| t.eq_ignore_ascii_case("branch")))
        .or_else(|| s(v, "/target/source"));
    Pipeline {
        uuid: s(v, "/uuid").unwrap_or_default(),
        build_number: v.get("build_number").and_then(Value::as_u64),
        state: s(v, "/state/name").unwrap_or_default(),
        result: s(v, "/state/result/name"),
        branch,
        commit: s(v, "/target/commit/hash"),
        trigger: s(v, "/trigger/name"),
        creator: s(v, "/creator/display_name").or_else(|| s(v, "/creator/nickname")),
        created: s(v, "/created_on"),
        completed: s(v, "/completed_on"),
        duration_secs: v.get("duration_in_seconds").and_then(Value::as_u64),
    }
}

fn list_dc(
    ctx: &Context,
    repo: &ApiRepo<'_>,
    args: &ListArgs,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<serde_json::Value, Error> {
    let limit = match args.limit {
        None => 10,
        Some(n) if (1..=DC_MAX_COMMITS).contains(&n) => n,
        Some(n) => {
            return Err(Error::new(
                Kind::Input,
                format!(
                    "limit {n} is out of range on Data Center; use 1 to {DC_MAX_COMMITS} (each commit costs one request) and follow next_cursor for more"
                ),
            ));
        }
    };
    if args.state.is_some() {
        return Err(Error::new(
            Kind::Input,
            "`state` filters Cloud Pipelines runs; on Data Center the build statuses of every commit are shown",
        ));
    }
    let client = &repo.client;
    let branch = match args.branch.clone().or_else(|| repo.spec.branch.clone()) {
        Some(b) => b,
        None => {
            let v = block_on(client.get_json(&format!("{}/default-branch", repo.base)))
                .map_err(|e| api_error(e, &format!("repository `{}`", repo.name)))?;
            s(&v, "/displayId").ok_or_else(|| {
                Error::new(
                    Kind::NotFound,
                    format!(
                        "repository `{}` has no default branch; pass `branch`",
                        repo.name
                    ),
                )
            })?
        }
    };
    check_branch(ctx, &branch)?;
    let binding = format!(
        "{}|{branch}|{}",
        repo.name,
        args.since.as_deref().unwrap_or("")
    );
    let after = decode_cursor(LIST_KIND, &binding, args.cursor.as_deref())?;
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
        let Some(id) = s(c, "/id") else { continue };
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
                key: s(b, "/key").unwrap_or_default(),
                name: s(b, "/name"),
                state: s(b, "/state").unwrap_or_default(),
                url: s(b, "/url"),
                description: s(b, "/description"),
                date: millis_rfc3339(b.get("dateAdded").and_then(Value::as_i64)),
            })
            .collect();
        let message = s(c, "/message").unwrap_or_default();
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
        next_cursor: encode_cursor(LIST_KIND, &binding, next),
    };
    Ok(serde_json::to_value(out).expect("json"))
}

/// A time as the server writes it (RFC 3339).
fn server_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    let secs = parse_time(s, "since", false)?;
    chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| Error::new(Kind::Input, format!("`since` is `{s}`: out of range")))
}

/// A pipelines error made specific: a 404 on a repository that exists means Pipelines is not
/// enabled (or the run does not exist); a 403 names the scope pipelines need.
fn pipelines_error(repo: &ApiRepo<'_>, e: ApiError, run: Option<&str>) -> Error {
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogArgs {
    /// The repository, as the environment names it.
    pub repo: String,
    /// The run's UUID from list_pipelines (braces optional) or its build number.
    pub pipeline: String,
    /// The step's name or UUID; default: the first failed step, else the last step.
    #[serde(default)]
    pub step: Option<String>,
    /// Show the last N lines (after `grep`): 1 to 5000, default 200.
    #[serde(default)]
    pub tail: Option<usize>,
    /// Only lines matching this regex.
    #[serde(default)]
    pub grep: Option<String>,
}

/// A step of the run.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    pub uuid: String,
    pub name: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct LogOutput {
    pub repo: String,
    pub pipeline: String,
    /// The step whose log this is.
    pub step: Step,
    /// Every step of the run.
    pub steps: Vec<Step>,
    /// Lines of the log (after `grep`), each prefixed with its line number in the full log.
    pub log: String,
    /// Lines in the full log.
    pub total_lines: usize,
    /// Lines matching `grep` (all lines without it).
    pub matching_lines: usize,
    /// Lines shown.
    pub shown_lines: usize,
    /// Why fewer lines are shown than match, and how to see others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub fn log_tool() -> Registered {
    Registered {
        info: ToolInfo {
            name: "get_pipeline_log",
            description: "Read a Bitbucket Cloud Pipelines step log: the last `tail` lines (default 200), optionally only lines matching a `grep` regex, with line numbers; capped at 100 KB. Without `step`, the first failed step (else the last). Refused when the run's branch is outside the environment's scope. From the Bitbucket API.",
            input_schema: schema_of::<LogArgs>(),
            output_schema: schema_of::<LogOutput>(),
            default: true,
            api_only: true,
        },
        call: run_log,
    }
}

const MAX_TAIL: usize = 5000;

fn run_log(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: LogArgs = parse_args(args)?;
    let tail = match args.tail {
        None => 200,
        Some(n) if (1..=MAX_TAIL).contains(&n) => n,
        Some(n) => {
            return Err(Error::new(
                Kind::Input,
                format!("tail {n} is out of range; use 1 to {MAX_TAIL}, with `grep` to narrow"),
            ));
        }
    };
    let grep = args
        .grep
        .as_deref()
        .map(|g| {
            regex::RegexBuilder::new(g)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    Error::new(Kind::Input, format!("grep `{g}` is not a valid regex: {e}"))
                })
        })
        .transpose()?;
    let repo = api_repo(ctx, &args.repo)?;
    if !repo.is_cloud() {
        return Err(Error::new(
            Kind::Input,
            "Data Center has no pipelines of its own: build logs live in the CI server; call list_pipelines for the build statuses and their URLs",
        ));
    }
    let id = pipeline_id(&args.pipeline)?;
    let client = &repo.client;
    let run_path = format!("{}/pipelines/{}", repo.base, seg(&id));
    let run = match block_on(client.get_json(&run_path)) {
        Ok(v) => v,
        // Not every server takes a build number where the API names a UUID: look it up
        // among the newest runs instead.
        Err(e) if e.kind == ApiErrorKind::NotFound && !id.starts_with('{') => {
            find_by_number(&repo, &id)?
                .ok_or_else(|| pipelines_error(&repo, e, Some(&args.pipeline)))?
        }
        Err(e) => return Err(pipelines_error(&repo, e, Some(&args.pipeline))),
    };
    let p = cloud_pipeline(&run);
    if !p.branch.as_deref().is_some_and(|b| ctx.env.scope.branch(b)) {
        return Err(Error::new(
            Kind::OutOfScope,
            format!(
                "pipeline `{}` ran on a branch outside the environment's scope; call list_pipelines to see runs in scope",
                args.pipeline
            ),
        ));
    }
    let uuid = if p.uuid.is_empty() {
        id
    } else {
        p.uuid.clone()
    };
    let steps_page = block_on(client.get_json(&format!(
        "{}/pipelines/{}/steps?{}",
        repo.base,
        seg(&uuid),
        query(&[("pagelen", "100".into())])
    )))
    .map_err(|e| pipelines_error(&repo, e, Some(&args.pipeline)))?;
    let steps: Vec<Step> = steps_page
        .get("values")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|v| Step {
                    uuid: s(v, "/uuid").unwrap_or_default(),
                    name: s(v, "/name").unwrap_or_default(),
                    state: s(v, "/state/name").unwrap_or_default(),
                    result: s(v, "/state/result/name"),
                })
                .collect()
        })
        .unwrap_or_default();
    let chosen = match &args.step {
        Some(want) => {
            let bare = |x: &str| x.trim_matches(['{', '}']).to_lowercase();
            steps
                .iter()
                .position(|st| st.name.eq_ignore_ascii_case(want) || bare(&st.uuid) == bare(want))
        }
        None => steps
            .iter()
            .position(|st| matches!(st.result.as_deref(), Some("FAILED" | "ERROR")))
            .or_else(|| steps.len().checked_sub(1)),
    };
    let Some(chosen) = chosen else {
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        return Err(Error::new(
            Kind::NotFound,
            match &args.step {
                Some(w) => format!(
                    "pipeline `{}` has no step `{w}`; its steps: {}",
                    args.pipeline,
                    names.join(", ")
                ),
                None => format!("pipeline `{}` has no steps yet", args.pipeline),
            },
        ));
    };
    let step = &steps[chosen];
    let log_path = format!(
        "{}/pipelines/{}/steps/{}/log",
        repo.base,
        seg(&uuid),
        seg(&step.uuid)
    );
    // The log is redirected to object storage on another host; the client drops the
    // credential for that hop.
    let resp = block_on(client.get(&log_path, "*/*", MAX_BODY_BYTES)).map_err(|e| {
        if e.kind == ApiErrorKind::NotFound {
            Error::new(
                Kind::NotFound,
                format!(
                    "step `{}` of pipeline `{}` has no log (it has not started, or its log expired)",
                    step.name, args.pipeline
                ),
            )
        } else {
            pipelines_error(&repo, e, Some(&args.pipeline))
        }
    })?;
    let text = resp.text();
    let all: Vec<&str> = text.lines().collect();
    let matching: Vec<(usize, &str)> = all
        .iter()
        .enumerate()
        .filter(|(_, l)| grep.as_ref().is_none_or(|re| re.is_match(l)))
        .map(|(i, l)| (i + 1, *l))
        .collect();
    let start = matching.len().saturating_sub(tail);
    let mut log = String::new();
    let mut shown = 0;
    let mut cut = false;
    // Keep the end of the log when capping: that is where failures are.
    for (n, line) in matching[start..].iter().rev() {
        let entry = format!("{n:>6}  {}\n", cut_chars(line, 2000));
        if log.len() + entry.len() > MAX_OUTPUT_BYTES {
            cut = true;
            break;
        }
        log.insert_str(0, &entry);
        shown += 1;
    }
    let note = if cut {
        Some(format!(
            "only the last {shown} lines fit in {MAX_OUTPUT_BYTES} bytes; narrow with `grep` or a smaller `tail`"
        ))
    } else if start > 0 {
        Some(format!(
            "showing the last {shown} of {} lines; raise `tail` (up to {MAX_TAIL}) or use `grep`",
            matching.len()
        ))
    } else if resp.truncated {
        Some(format!(
            "the log is larger than {MAX_BODY_BYTES} bytes; only its beginning was read"
        ))
    } else {
        None
    };
    let out = LogOutput {
        repo: repo.name.clone(),
        pipeline: uuid,
        step: Step {
            uuid: step.uuid.clone(),
            name: step.name.clone(),
            state: step.state.clone(),
            result: step.result.clone(),
        },
        total_lines: all.len(),
        matching_lines: matching.len(),
        shown_lines: shown,
        steps,
        log,
        note,
    };
    Ok(serde_json::to_value(out).expect("json"))
}

/// Runs searched for a build number: the newest few pages.
const NUMBER_SEARCH_PAGES: usize = 3;

/// The run with build number `number` among the newest runs, if any.
fn find_by_number(repo: &ApiRepo<'_>, number: &str) -> Result<Option<Value>, Error> {
    let endpoint = format!("{}/pipelines", repo.base);
    let params = [("sort", "-created_on".to_string())];
    let mut cursor = None;
    for _ in 0..NUMBER_SEARCH_PAGES {
        let page = block_on(repo.client.page(&endpoint, &params, 100, cursor.as_deref()))
            .map_err(|e| pipelines_error(repo, e, None))?;
        let hit = page.values.into_iter().find(|v| {
            v.get("build_number")
                .and_then(Value::as_u64)
                .map(|n| n.to_string())
                .as_deref()
                == Some(number)
        });
        if hit.is_some() || page.next.is_none() {
            return Ok(hit);
        }
        cursor = page.next;
    }
    Ok(None)
}

/// A run id as the API takes it: a build number as is, a UUID in braces.
fn pipeline_id(given: &str) -> Result<String, Error> {
    let g = given.trim();
    if !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(g.to_string());
    }
    let bare = g.trim_start_matches('{').trim_end_matches('}');
    if bare.len() == 36 && bare.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Ok(format!("{{{bare}}}"));
    }
    Err(Error::new(
        Kind::Input,
        format!(
            "pipeline `{}` is neither a UUID nor a build number; take `uuid` from list_pipelines",
            given.escape_debug()
        ),
    ))
}
