//! `get_pull_request`: one pull request's details, diffstat and optionally its diff, from the
//! API; refused when its source or destination branch is outside the scope.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::list_pull_requests::{PullRequest, branches_in_scope, parse};
use super::source::remote::{api_error, block_on, str_at, values_and_more};
use super::text::{MAX_OUTPUT_BYTES, cut_chars};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::ApiErrorKind;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// The repository, as the environment names it.
    pub repo: String,
    /// The pull request's number.
    pub id: u64,
    /// Include the unified diff, capped at 100 KB (default false).
    #[serde(default)]
    pub diff: bool,
}

/// One changed file.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct FileChange {
    pub path: String,
    /// The path before a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// added, removed, modified, renamed (Cloud) or ADD, DELETE, MODIFY, MOVE, COPY (Data Center).
    pub status: String,
    /// Cloud only: Data Center's change list has no line counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_added: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_removed: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct GetOutput {
    pub repo: String,
    pub pull_request: PullRequest,
    /// The description, capped at 10 KB.
    pub description: String,
    /// The diffstat: files changed, with line counts where the server gives them.
    pub files: Vec<FileChange>,
    /// True when the server had more changed files than listed here.
    pub files_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_added: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_removed: Option<u64>,
    /// The unified diff when asked for, capped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why the diff is cut or missing, and how to see the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_note: Option<String>,
}

pub struct GetPullRequest;

impl Tool for GetPullRequest {
    const NAME: &'static str = "get_pull_request";
    const DESCRIPTION: &'static str = "Show one pull request: details, reviewers, the files it changes with line counts (diffstat), and optionally its unified diff (capped at 100 KB). Refused when its source or destination branch is outside the environment's scope. From the Bitbucket API.";
    const API_ONLY: bool = true;
    type Args = GetArgs;
    type Output = GetOutput;

    fn run(ctx: &Context, args: GetArgs) -> Result<GetOutput> {
        let repo = ctx.remote(&args.repo)?;
        let what = format!("pull request {} of `{}`", args.id, repo.name);
        let client = repo.client.clone();
        let cloud = repo.is_cloud();
        let pr_path = if cloud {
            format!("{}/pullrequests/{}", repo.base, args.id)
        } else {
            format!("{}/pull-requests/{}", repo.base, args.id)
        };
        let v = block_on(client.get_json(&pr_path)).map_err(|e| api_error(e, &what))?;
        let pr = parse(&repo, &v).ok_or_else(|| {
            Error::unavailable(format!(
                "the server's answer for {what} is not shaped like a pull request"
            ))
        })?;
        if !branches_in_scope(ctx, &pr) {
            return Err(Error::out_of_scope(format!(
                "{what} is between branches outside the environment's scope; call list_pull_requests to see the pull requests in scope"
            )));
        }
        let description = cut_chars(&str_at(&v, "/description").unwrap_or_default(), 10 * 1024);

        // Cloud redirects the pull request's diffstat and diff to the commit-range endpoints.
        let stat_path = if cloud {
            format!("{pr_path}/diffstat?pagelen={MAX_FILES}")
        } else {
            format!("{pr_path}/changes?limit={MAX_FILES}")
        };
        let stat = block_on(client.get_json(&stat_path)).map_err(|e| api_error(e, &what))?;
        let (entries, more) = values_and_more(&stat);
        let files: Vec<FileChange> = entries
            .iter()
            .take(MAX_FILES)
            .map(|e| if cloud { cloud_change(e) } else { dc_change(e) })
            .collect();
        let sum = |f: fn(&FileChange) -> Option<u64>| -> Option<u64> {
            cloud.then(|| files.iter().filter_map(f).sum())
        };
        let lines_added = sum(|f| f.lines_added);
        let lines_removed = sum(|f| f.lines_removed);

        let (diff, diff_note) = if args.diff {
            let path = if cloud {
                format!("{pr_path}/diff")
            } else {
                format!("{pr_path}.diff")
            };
            match block_on(client.get(&path, "text/plain", MAX_OUTPUT_BYTES + 1)) {
                Ok(r) => {
                    let text = r.text();
                    if r.truncated || text.len() > MAX_OUTPUT_BYTES {
                        (
                            Some(cut_chars(&text, MAX_OUTPUT_BYTES)),
                            Some(format!("the diff is longer than {MAX_OUTPUT_BYTES} bytes and was cut; read the changed files with get_commit or read_file on the source branch")),
                        )
                    } else {
                        (Some(text), None)
                    }
                }
                Err(e) if e.kind == ApiErrorKind::NotFound => (
                    None,
                    Some("the server offers no diff for this pull request; see `files` and read the files on the source branch".to_string()),
                ),
                Err(e) => return Err(api_error(e, &what)),
            }
        } else {
            (None, None)
        };
        let out = GetOutput {
            repo: repo.name.clone(),
            pull_request: pr,
            description,
            files,
            files_truncated: more || entries.len() > MAX_FILES,
            lines_added,
            lines_removed,
            diff,
            diff_note,
        };
        Ok(out)
    }
}

/// Changed files listed at most.
const MAX_FILES: usize = 500;

fn cloud_change(e: &Value) -> FileChange {
    let new = str_at(e, "/new/path");
    let old = str_at(e, "/old/path");
    let status = str_at(e, "/status").unwrap_or_default();
    FileChange {
        path: new.clone().or_else(|| old.clone()).unwrap_or_default(),
        old_path: if status == "renamed" { old } else { None },
        status,
        lines_added: e.get("lines_added").and_then(Value::as_u64),
        lines_removed: e.get("lines_removed").and_then(Value::as_u64),
    }
}

fn dc_change(e: &Value) -> FileChange {
    FileChange {
        path: str_at(e, "/path/toString").unwrap_or_default(),
        old_path: str_at(e, "/srcPath/toString"),
        status: str_at(e, "/type").unwrap_or_default(),
        lines_added: None,
        lines_removed: None,
    }
}
