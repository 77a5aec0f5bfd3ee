//! `list_pipelines`: CI runs of a repository, from the API. Cloud has Pipelines; Data Center
//! has no CI of its own, so there it shows the build statuses CI servers posted on a branch's
//! recent commits. Runs on out-of-scope branches are left out and counted.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::paging::{self, page_limit};
use super::source::remote::{api_error, block_on, opt_time};
use super::source::{Remote, check_branch};
use super::text::{self, parse_time};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::{
    self, ApiError, ApiErrorKind, CommitQuery, Cursor, PipelineQuery, Rev, RunStatus,
};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Repository name.
    pub repo: String,
    /// Only runs on this branch (Data Center: whose commits to show; default the default branch).
    #[serde(default)]
    pub branch: Option<String>,
    /// Cloud: PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, ERROR or STOPPED.
    #[serde(default)]
    pub state: Option<String>,
    /// Created at or after: RFC 3339 or YYYY-MM-DD (UTC).
    #[serde(default)]
    pub since: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Cloud: runs per page, 1-100 (default 30). Data Center: commits, 1-20 (default 10).
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

/// Cloud: one row per run. Data Center: each commit, then its build statuses.
fn render(o: &ListOutput) -> String {
    let mut t = match &o.branch {
        Some(b) => format!(
            "{} {b}: {} and their build statuses, newest first\n",
            o.repo,
            text::count(o.commits.len() as u64, "commit", "commits")
        ),
        None => format!(
            "{}: {}, newest first\n",
            o.repo,
            text::count(o.pipelines.len() as u64, "pipeline run", "pipeline runs")
        ),
    };
    if o.out_of_scope > 0 {
        let _ = writeln!(
            t,
            "{} on out-of-scope branches left out",
            text::count(o.out_of_scope as u64, "run", "runs")
        );
    }
    let rows: Vec<Vec<String>> = o
        .pipelines
        .iter()
        .map(|p| {
            let opt = |v: &Option<String>| v.clone().unwrap_or_default();
            vec![
                p.build_number.map(|n| format!("#{n}")).unwrap_or_default(),
                match &p.result {
                    Some(r) => format!("{}/{r}", p.state),
                    None => p.state.clone(),
                },
                opt(&p.branch),
                p.commit
                    .as_deref()
                    .map(text::short_id)
                    .unwrap_or("")
                    .to_string(),
                opt(&p.trigger),
                p.creator
                    .as_ref()
                    .map(|c| format!("by {c}"))
                    .unwrap_or_default(),
                p.created
                    .as_ref()
                    .map(|c| format!("created {}", text::when(c)))
                    .unwrap_or_default(),
                p.completed
                    .as_ref()
                    .map(|c| format!("completed {}", text::when(c)))
                    .unwrap_or_default(),
                p.duration_secs.map(|d| format!("{d}s")).unwrap_or_default(),
                p.uuid.clone(),
            ]
        })
        .collect();
    t.push_str(&text::rows(&rows));
    for c in &o.commits {
        let _ = writeln!(
            t,
            "{}  {}  {}",
            text::short_id(&c.commit),
            c.date.as_deref().map(text::when).unwrap_or_default(),
            c.summary
        );
        if c.builds.is_empty() {
            t.push_str("  no build statuses\n");
        }
        for b in &c.builds {
            let date = b.date.as_deref().map(text::when);
            let parts: Vec<&str> = [
                Some(b.state.as_str()),
                Some(b.key.as_str()),
                b.name.as_deref(),
                date.as_deref(),
                b.url.as_deref(),
                b.description.as_deref(),
            ]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
            let _ = writeln!(t, "  {}", parts.join("  "));
        }
    }
    text::footer(&mut t, o.next_cursor.as_deref(), None);
    t
}

pub struct ListPipelines;

impl Tool for ListPipelines {
    const NAME: &'static str = "list_pipelines";
    const DESCRIPTION: &'static str = "CI runs of a repository, newest first. Cloud: Pipelines runs with result, branch, commit, trigger, duration. Data Center: the build statuses of a branch's recent commits. Runs on out-of-scope branches are left out.";
    const API_ONLY: bool = true;
    type Args = ListArgs;
    type Output = ListOutput;

    fn render(o: &ListOutput) -> String {
        render(o)
    }

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
    let status = args.state.as_deref().map(run_status).transpose()?;
    let binding = format!(
        "{}|{}|{}|{}",
        repo.name,
        args.branch.as_deref().unwrap_or(""),
        args.state.as_deref().unwrap_or(""),
        args.since.as_deref().unwrap_or("")
    );
    let after = paging::decode_bound(LIST_KIND, &binding, args.cursor.as_deref())?;
    let query = PipelineQuery {
        branch: args.branch.clone(),
        status,
    };
    let page =
        block_on(
            repo.client
                .pipelines(&repo.id, &query, limit, after.map(Cursor::from).as_ref()),
        )
        .map_err(|e| pipelines_error(repo, e))?;
    let mut out_of_scope = 0;
    let mut pipelines = Vec::new();
    let mut reached_since = false;
    for p in page.values {
        if let (Some(since), Some(created)) = (since, p.created)
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
        pipelines.push(Pipeline::of(p));
    }
    let next = if reached_since {
        None
    } else {
        page.next.map(Cursor::into_string)
    };
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

/// The run status a `state` argument names (several spellings are accepted for each).
fn run_status(state: &str) -> Result<RunStatus> {
    Ok(match state.to_uppercase().as_str() {
        "PENDING" => RunStatus::Pending,
        "IN_PROGRESS" | "BUILDING" | "RUNNING" => RunStatus::InProgress,
        "SUCCESSFUL" | "PASSED" => RunStatus::Successful,
        "FAILED" => RunStatus::Failed,
        "ERROR" => RunStatus::Error,
        "STOPPED" => RunStatus::Stopped,
        other => {
            return Err(Error::input(format!(
                "state `{other}` is not known; use PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, ERROR or STOPPED"
            )));
        }
    })
}

impl Pipeline {
    pub(crate) fn of(p: bitbucket::Pipeline) -> Pipeline {
        Pipeline {
            uuid: p.uuid,
            build_number: p.build_number,
            state: p.state,
            result: p.result,
            branch: p.branch,
            commit: p.commit,
            trigger: p.trigger,
            creator: p
                .creator
                .as_ref()
                .and_then(|u| u.label().map(str::to_string)),
            created: opt_time(p.created.as_ref()),
            completed: opt_time(p.completed.as_ref()),
            duration_secs: p.duration_secs,
        }
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
        None => block_on(client.default_branch(&repo.id))
            .map_err(|e| api_error(e, &format!("repository `{}`", repo.name)))?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "repository `{}` has no default branch; pass `branch`",
                    repo.name
                ))
            })?,
    };
    check_branch(&ctx.env.scope, &branch)?;
    let binding = format!(
        "{}|{branch}|{}",
        repo.name,
        args.since.as_deref().unwrap_or("")
    );
    let after = paging::decode_bound(LIST_KIND, &binding, args.cursor.as_deref())?;
    let page = block_on(client.commits(
        &repo.id,
        &CommitQuery::from(Rev::Branch(branch.clone())),
        limit,
        after.map(Cursor::from).as_ref(),
    ))
    .map_err(|e| api_error(e, &format!("branch `{branch}` of `{}`", repo.name)))?;
    let mut commits = Vec::new();
    let mut reached_since = false;
    for c in page.values {
        let when = c.committer.as_ref().and_then(|s| s.date).or(c.author.date);
        if let (Some(since), Some(d)) = (since, when)
            && d < since
        {
            reached_since = true;
            break;
        }
        let statuses = block_on(client.build_statuses(&c.hash, 100, None))
            .map_err(|e| api_error(e, &format!("commit {}", c.hash)))?;
        let builds = statuses
            .values
            .into_iter()
            .map(|b| Build {
                key: b.key,
                name: b.name,
                state: b.state,
                url: b.url,
                description: b.description,
                date: opt_time(b.created.as_ref()),
            })
            .collect();
        commits.push(CommitBuilds {
            summary: text::summary(&c.message),
            commit: c.hash,
            date: opt_time(when.as_ref()),
            builds,
        });
    }
    let next = if reached_since {
        None
    } else {
        page.next.map(Cursor::into_string)
    };
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

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    let secs = parse_time(s, "since", false)?;
    chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| Error::input(format!("`since` is `{s}`: out of range")))
}

/// A failure listing pipelines as the agent sees it: the client already tells "Pipelines is
/// off" apart; a plain 404 is then the repository itself.
fn pipelines_error(repo: &Remote<'_>, e: ApiError) -> Error {
    match e.kind {
        ApiErrorKind::NotFound => api_error(e, &format!("repository `{}`", repo.name)),
        _ => Error::from(e),
    }
}
