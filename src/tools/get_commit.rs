//! `get_commit`: one commit's details and diffstat (optionally its patch); from the checkout,
//! or from the API for a repository that is not cloned.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::source::checkout::{git_error, recorded_parents};
use super::source::remote::{NOTE, api_error, block_on, str_at, values_and_more};
use super::source::{Checkout, Remote, Source};
use super::text::{MAX_OUTPUT_BYTES, Person, cut_chars};
use super::{Context, Result, Tool};
use crate::bitbucket::{ApiErrorKind, seg};
use crate::git::HistoryError;
use crate::git::diffstat::{self, DiffOptions, Status};

/// Arguments of `get_commit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// The repository, as the environment names it (see list_repositories).
    pub repo: String,
    /// A commit id (full or at least 7 hex digits) reachable from a branch in scope, or a
    /// branch name (or `HEAD`) for its head commit, optionally with `~N`/`^N` (`main~3`).
    pub commit: String,
    /// Also return the patch (unified diff), capped at 100 KB.
    #[serde(default)]
    pub patch: bool,
}

/// One changed file.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct FileChange {
    /// The path after the change.
    pub path: String,
    /// The path before, for a rename or copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// added, deleted, modified, renamed, copied (API only) or type_changed.
    pub status: String,
    /// Lines added (0 for binary files; numstat's count).
    pub additions: usize,
    /// Lines removed (0 for binary files).
    pub deletions: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub binary: bool,
}

/// Totals over all changed files.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Totals {
    pub files_changed: usize,
    pub additions: usize,
    pub deletions: usize,
}

/// Result of `get_commit`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct GetOutput {
    pub repo: String,
    /// Full commit id.
    pub hash: String,
    /// The full message (capped at 64 KB).
    pub message: String,
    pub author: Person,
    pub committer: Person,
    /// Parent commit ids; the diff is against the first one.
    pub parents: Vec<String>,
    /// The changed files (at most 1000 listed; `totals` counts all).
    pub files: Vec<FileChange>,
    pub totals: Totals,
    /// True when `files` was cut at 1000 entries.
    pub files_truncated: bool,
    /// The unified diff, when `patch: true` was asked (capped at 100 KB, cut at a line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// True when the patch was cut at the cap.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub patch_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct GetCommit;

impl Tool for GetCommit {
    const NAME: &'static str = "get_commit";
    const DESCRIPTION: &'static str = "Show one commit of a repository: message, author, committer, dates, parents, and a diffstat against its first parent (each changed file's path, status and lines added/removed, at most 1000 files, with totals over all). `commit` is a commit id (7 to 40 hex digits, resolved as git resolves abbreviations) reachable from a branch in scope, or a branch name or `HEAD` for its head, optionally with `~N`/`^N` (`main~3`). From a checkout the diffstat equals `git diff-tree -M --numstat` (git's rename detection); history a shallow clone lacks is fetched on demand and `note` says what that cost. `patch: true` adds the unified diff, capped at 100 KB at a line boundary (`patch_truncated`). A cloned repository is answered from its checkout; an in-scope repository that is not cloned from the Bitbucket API (Data Center gives no line counts), and `note` says so.";
    type Args = GetArgs;
    type Output = GetOutput;

    fn run(ctx: &Context, args: GetArgs) -> Result<GetOutput> {
        match ctx.source(&args.repo)? {
            Source::Checkout(c) => checkout(&c, &args),
            Source::Remote(r) => remote(&r, &args),
        }
    }
}

const MAX_FILES: usize = 1000;
const MAX_MESSAGE: usize = 64 * 1024;

fn checkout(c: &Checkout<'_>, args: &GetArgs) -> Result<GetOutput> {
    let at = c.resolve(Some(&args.commit))?;
    let git = &*c.git;
    let commit = git.find_commit(at.commit).map_err(git_error)?;
    // git diff-tree -M --numstat against the first parent; at a shallow boundary the parent is
    // fetched first, never replaced by the empty tree.
    let opts = DiffOptions::from_config(git);
    let diff = loop {
        match diffstat::diff_commit(git, at.commit, &opts) {
            Ok(d) => break d,
            Err(HistoryError::NeedsHistory(needs)) => {
                if !c.deepen(at.via.as_deref(), &needs)? {
                    return Err(c.history_unavailable(&args.commit, &needs));
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    let parents = recorded_parents(git, at.commit)?;
    let mut notes = Vec::new();
    if let Some(n) = c.fetch_note() {
        notes.push(n);
    }
    if parents.len() > 1 {
        notes.push("merge commit: the diff is against the first parent".to_string());
    }
    if let Some(needed) = diff.diff.renames_skipped {
        notes.push(format!(
            "too many files for rename detection (git would need diff.renameLimit {needed}): renames show as deletions and additions"
        ));
    }

    let mut totals = Totals {
        files_changed: 0,
        additions: 0,
        deletions: 0,
    };
    let mut files = Vec::new();
    for f in &diff.diff.files {
        totals.files_changed += 1;
        totals.additions += f.additions as usize;
        totals.deletions += f.deletions as usize;
        if files.len() >= MAX_FILES {
            continue;
        }
        let status = match f.status {
            Status::Added => "added",
            Status::Deleted => "deleted",
            Status::Modified => "modified",
            Status::Renamed => "renamed",
            Status::TypeChanged => "type_changed",
        };
        files.push(FileChange {
            path: f.path_lossy(),
            old_path: f.old_path_lossy(),
            status: status.to_string(),
            additions: f.additions as usize,
            deletions: f.deletions as usize,
            binary: f.binary,
        });
    }
    let files_truncated = totals.files_changed > files.len();
    if files_truncated {
        notes.push(format!(
            "only the first {MAX_FILES} of {} changed files are listed",
            totals.files_changed
        ));
    }

    let (patch, patch_truncated) = if args.patch {
        let p = diffstat::write_patch(git, &diff.diff, MAX_OUTPUT_BYTES)?;
        if p.truncated {
            notes.push(format!(
                "the patch is capped at 100 KB and was cut at a line boundary; read_file the changed files at `{}` and at its parent for the rest",
                commit.id()
            ));
        }
        (
            Some(String::from_utf8_lossy(&p.text).into_owned()),
            p.truncated,
        )
    } else {
        (None, false)
    };

    let message = String::from_utf8_lossy(commit.message_bytes());
    let out = GetOutput {
        repo: c.name().to_string(),
        hash: commit.id().to_string(),
        message: cut_chars(&message, MAX_MESSAGE),
        author: Person::of(&commit.author()),
        committer: Person::of(&commit.committer()),
        parents: parents.iter().map(git2::Oid::to_string).collect(),
        files,
        totals,
        files_truncated,
        patch,
        patch_truncated,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    };
    Ok(out)
}

fn remote(r: &Remote<'_>, args: &GetArgs) -> Result<GetOutput> {
    let id = r.commit_in_scope(&args.commit)?;
    let what = format!("commit `{}` of `{}`", args.commit, r.name);
    let cloud = r.is_cloud();
    let v = block_on(r.client.get_json(&r.commit_path(&id))).map_err(|e| api_error(e, &what))?;
    let c = r.commit(&v);
    let stat_path = if cloud {
        format!("{}/diffstat/{}?pagelen=500", r.base, seg(&c.hash))
    } else {
        format!("{}/commits/{}/changes?limit=1000", r.base, seg(&c.hash))
    };
    let stat = block_on(r.client.get_json(&stat_path)).map_err(|e| api_error(e, &what))?;
    let (entries, more) = values_and_more(&stat);
    let files: Vec<FileChange> = entries
        .iter()
        .take(MAX_FILES)
        .map(|e| change(cloud, e))
        .collect();
    let totals = Totals {
        files_changed: entries.len(),
        additions: files.iter().map(|f| f.additions).sum(),
        deletions: files.iter().map(|f| f.deletions).sum(),
    };
    let mut notes = vec![NOTE.to_string()];
    if !cloud {
        notes.push(
            "Data Center's change list has no line counts: additions and deletions are 0".into(),
        );
    }
    let mut out = GetOutput {
        repo: r.name.clone(),
        hash: c.hash,
        message: cut_chars(&c.message, MAX_MESSAGE),
        author: Person {
            name: c.name,
            email: c.email,
            date: c.date,
        },
        committer: Person {
            name: c.committer_name,
            email: c.committer_email,
            date: c.committed,
        },
        parents: c.parents,
        files,
        totals,
        files_truncated: more || entries.len() > MAX_FILES,
        patch: None,
        patch_truncated: false,
        note: None,
    };
    if args.patch {
        let patch_path = if cloud {
            format!("{}/diff/{}", r.base, seg(&out.hash))
        } else {
            // Data Center has no per-commit patch endpoint; its raw diff (`streamRawDiff`)
            // with only `until` diffs the commit against its first parent.
            format!("{}/diff?until={}", r.base, seg(&out.hash))
        };
        match block_on(
            r.client
                .get(&patch_path, "text/plain", MAX_OUTPUT_BYTES + 1),
        ) {
            Ok(r) => {
                let text = r.text();
                let cut = r.truncated || text.len() > MAX_OUTPUT_BYTES;
                let text = if cut {
                    // Cut at a line, as the checkout's patch is.
                    let head = cut_chars(&text, MAX_OUTPUT_BYTES);
                    head[..head.rfind('\n').map_or(0, |i| i + 1)].to_string()
                } else {
                    text
                };
                out.patch = Some(text);
                out.patch_truncated = cut;
            }
            Err(e) if e.kind == ApiErrorKind::NotFound => {
                notes.push("the server offers no patch for this commit".into());
            }
            Err(e) => return Err(api_error(e, &what)),
        }
    }
    out.note = Some(notes.join("; "));
    Ok(out)
}

fn change(cloud: bool, e: &Value) -> FileChange {
    let count = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0) as usize;
    let (path, old, status, add, del) = if cloud {
        let status = match str_at(e, "/status").as_deref() {
            Some("removed") => "deleted".to_string(),
            Some(other) => other.to_string(),
            None => "modified".to_string(),
        };
        let new = str_at(e, "/new/path");
        let old = str_at(e, "/old/path");
        (
            new.clone().or_else(|| old.clone()).unwrap_or_default(),
            if status == "renamed" { old } else { None },
            status,
            count("lines_added"),
            count("lines_removed"),
        )
    } else {
        let status = match str_at(e, "/type").as_deref() {
            Some("ADD") => "added",
            Some("DELETE") => "deleted",
            Some("MOVE") => "renamed",
            Some("COPY") => "copied",
            _ => "modified",
        };
        (
            str_at(e, "/path/toString").unwrap_or_default(),
            str_at(e, "/srcPath/toString"),
            status.to_string(),
            0,
            0,
        )
    };
    FileChange {
        path,
        old_path: old,
        status,
        additions: add,
        deletions: del,
        binary: false,
    }
}
