//! `get_pipeline_log`: a Bitbucket Cloud Pipelines step log with tail and grep, from the API;
//! refused when the run's branch is outside the scope.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source::remote::{block_on, collect_pages};
use super::text::{MAX_OUTPUT_BYTES, cut_chars};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::{ApiError, ApiErrorKind, MAX_BODY_BYTES, PipelineId, RunStatus};

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

pub struct GetPipelineLog;

impl Tool for GetPipelineLog {
    const NAME: &'static str = "get_pipeline_log";
    const DESCRIPTION: &'static str = "Read a Bitbucket Cloud Pipelines step log: the last `tail` lines (default 200), optionally only lines matching a `grep` regex, with line numbers; capped at 100 KB. Without `step`, the first failed step (else the last). Refused when the run's branch is outside the environment's scope. From the Bitbucket API.";
    const API_ONLY: bool = true;
    type Args = LogArgs;
    type Output = LogOutput;

    fn run(ctx: &Context, args: LogArgs) -> Result<LogOutput> {
        let tail = match args.tail {
            None => 200,
            Some(n) if (1..=MAX_TAIL).contains(&n) => n,
            Some(n) => {
                return Err(Error::input(format!(
                    "tail {n} is out of range; use 1 to {MAX_TAIL}, with `grep` to narrow"
                )));
            }
        };
        let grep = args
            .grep
            .as_deref()
            .map(|g| {
                regex::RegexBuilder::new(g)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| Error::input(format!("grep `{g}` is not a valid regex: {e}")))
            })
            .transpose()?;
        let repo = ctx.remote(&args.repo)?;
        if !repo.is_cloud() {
            return Err(Error::input(
                "Data Center has no pipelines of its own: build logs live in the CI server; call list_pipelines for the build statuses and their URLs",
            ));
        }
        let id = PipelineId::parse(&args.pipeline).ok_or_else(|| {
            Error::input(format!(
                "pipeline `{}` is neither a UUID nor a build number; take `uuid` from list_pipelines",
                args.pipeline.escape_debug()
            ))
        })?;
        let client = &repo.client;
        let run = block_on(client.pipeline(&repo.id, &id)).map_err(run_error)?;
        if !run
            .branch
            .as_deref()
            .is_some_and(|b| ctx.env.scope.branch(b))
        {
            return Err(Error::out_of_scope(format!(
                "pipeline `{}` ran on a branch outside the environment's scope; call list_pipelines to see runs in scope",
                args.pipeline
            )));
        }
        let uuid = run.uuid;
        let (all_steps, _) = collect_pages(MAX_STEPS, 100, |limit, cursor| {
            block_on(client.pipeline_steps(&repo.id, &uuid, limit, cursor))
        })
        .map_err(run_error)?;
        let first_failed = all_steps
            .iter()
            .position(|st| matches!(st.status, RunStatus::Failed | RunStatus::Error));
        let steps: Vec<Step> = all_steps
            .into_iter()
            .map(|st| Step {
                uuid: st.uuid,
                name: st.name.unwrap_or_default(),
                state: st.state,
                result: st.result,
            })
            .collect();
        let chosen = match &args.step {
            Some(want) => {
                let bare = |x: &str| x.trim_matches(['{', '}']).to_lowercase();
                steps.iter().position(|st| {
                    st.name.eq_ignore_ascii_case(want) || bare(&st.uuid) == bare(want)
                })
            }
            None => first_failed.or_else(|| steps.len().checked_sub(1)),
        };
        let Some(chosen) = chosen else {
            let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::not_found(match &args.step {
                Some(w) => format!(
                    "pipeline `{}` has no step `{w}`; its steps: {}",
                    args.pipeline,
                    names.join(", ")
                ),
                None => format!("pipeline `{}` has no steps yet", args.pipeline),
            }));
        };
        let step = &steps[chosen];
        // The log is redirected to object storage on another host; the client drops the
        // credential for that hop.
        let resp = block_on(client.step_log(&repo.id, &uuid, &step.uuid, MAX_BODY_BYTES)).map_err(
            |e| {
                if e.kind == ApiErrorKind::NotFound {
                    Error::not_found(format!(
                        "step `{}` of pipeline `{}` has no log (it has not started, or its log expired)",
                        step.name, args.pipeline
                    ))
                    .with_source(e)
                } else {
                    run_error(e)
                }
            },
        )?;
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
        Ok(out)
    }
}

const MAX_TAIL: usize = 5000;

/// Steps read at most for one run.
const MAX_STEPS: usize = 100;

/// A failure reading a run: the client tells "Pipelines is off" and "no such run" apart.
fn run_error(e: ApiError) -> Error {
    let not_found = e.kind == ApiErrorKind::NotFound;
    let err = Error::from(e);
    if not_found {
        err.with_hint("call list_pipelines to see the runs in scope")
    } else {
        err
    }
}
