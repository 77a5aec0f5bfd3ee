//! `get_pull_request`: one pull request's details, diffstat and optionally its diff, from the
//! API; refused when its source or destination branch is outside the scope.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::get_commit::status_name;
use super::list_pull_requests::{PullRequest, branches_in_scope, render_pr};
use super::source::remote::{api_error, block_on, collect_pages};
use super::text::{self, MAX_OUTPUT_BYTES, cut_chars};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::ApiErrorKind;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// Repository name.
    pub repo: String,
    /// Pull request number.
    pub id: u64,
    /// Add the unified diff (capped at 100 KB).
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
    /// added, deleted, modified, renamed or copied.
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
    const DESCRIPTION: &'static str = "One pull request: description, reviewers, and the files it changes with line counts; `diff: true` adds the diff.";
    const API_ONLY: bool = true;
    type Args = GetArgs;
    type Output = GetOutput;

    fn render(o: &GetOutput) -> String {
        let mut t = format!("{}: ", o.repo);
        render_pr(&mut t, &o.pull_request, None);
        if !o.description.is_empty() {
            let _ = writeln!(t, "\n{}\n", o.description.trim_end_matches('\n'));
        }
        t.push_str(&text::count(o.files.len() as u64, "file", "files"));
        if o.files_truncated {
            t.push_str(" (files truncated: the server has more)");
        }
        if let (Some(a), Some(d)) = (o.lines_added, o.lines_removed) {
            let _ = write!(t, ", +{a} -{d}");
        }
        t.push('\n');
        let count =
            |n: Option<u64>, sign: char| n.map(|n| format!("{sign}{n}")).unwrap_or_default();
        let rows: Vec<Vec<String>> = o
            .files
            .iter()
            .map(|f| {
                let path = match &f.old_path {
                    Some(old) => format!("{} <- {old}", f.path),
                    None => f.path.clone(),
                };
                vec![
                    f.status.clone(),
                    count(f.lines_added, '+'),
                    count(f.lines_removed, '-'),
                    path,
                ]
            })
            .collect();
        t.push_str(&text::rows(&rows));
        text::footer(&mut t, None, o.diff_note.as_deref());
        if let Some(diff) = &o.diff {
            t.push('\n');
            t.push_str(diff);
        }
        t
    }

    fn run(ctx: &Context, args: GetArgs) -> Result<GetOutput> {
        let repo = ctx.remote(&args.repo)?;
        let what = format!("pull request {} of `{}`", args.id, repo.name);
        let client = repo.client.clone();
        let got =
            block_on(client.pull_request(&repo.id, args.id)).map_err(|e| api_error(e, &what))?;
        let description = cut_chars(got.description.as_deref().unwrap_or(""), 10 * 1024);
        let pr = PullRequest::of(got);
        if !branches_in_scope(ctx, &pr) {
            return Err(Error::out_of_scope(format!(
                "{what} is between branches outside the environment's scope; call list_pull_requests to see the pull requests in scope"
            )));
        }
        let (changes, complete) = collect_pages(MAX_FILES, MAX_FILES, |limit, cursor| {
            block_on(client.pull_request_changes(&repo.id, args.id, limit, cursor))
        })
        .map_err(|e| api_error(e, &what))?;
        let counted = changes.iter().all(|f| f.lines_added.is_some());
        let files: Vec<FileChange> = changes
            .into_iter()
            .map(|f| FileChange {
                status: status_name(&f.status),
                path: f.path,
                old_path: f.old_path,
                lines_added: f.lines_added,
                lines_removed: f.lines_removed,
            })
            .collect();
        let sum = |f: fn(&FileChange) -> Option<u64>| -> Option<u64> {
            counted.then(|| files.iter().filter_map(f).sum())
        };
        let lines_added = sum(|f| f.lines_added);
        let lines_removed = sum(|f| f.lines_removed);

        let (diff, diff_note) = if args.diff {
            match block_on(client.pull_request_diff(&repo.id, args.id, MAX_OUTPUT_BYTES + 1)) {
                Ok(raw) => {
                    let text = raw.text();
                    if raw.truncated || text.len() > MAX_OUTPUT_BYTES {
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
            files_truncated: !complete,
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
