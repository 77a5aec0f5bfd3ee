//! `get_commit`: one commit's details and diffstat (optionally its patch); from the checkout,
//! or from the API for a repository that is not cloned.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source::checkout::{git_error, recorded_parents};
use super::source::remote::{CommitPeople, NOTE, api_error, block_on, collect_pages};
use super::source::{Checkout, Remote, Source};
use super::text::{self, MAX_OUTPUT_BYTES, Person, cut_chars};
use super::{Context, Result, Tool};
use crate::bitbucket::{ApiErrorKind, ChangeStatus, ChangedFile};
use crate::git::HistoryError;
use crate::git::diffstat::{self, DiffOptions, Status};

/// Arguments of `get_commit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// Repository name.
    pub repo: String,
    /// Commit id (7-40 hex digits), or a branch or `HEAD` for its head; `~N`/`^N` allowed.
    pub commit: String,
    /// Add the unified diff (capped at 100 KB).
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

/// Who and when, the message as written, then one row per changed file and the patch.
fn render(o: &GetOutput) -> String {
    let person = |p: &Person| {
        if p.email.is_empty() {
            format!("{} {}", p.name, p.date)
        } else {
            format!("{} <{}> {}", p.name, p.email, p.date)
        }
    };
    let mut t = format!("commit {} in {}\n", o.hash, o.repo);
    let _ = writeln!(t, "author: {}", person(&o.author));
    let same = (&o.author.name, &o.author.email, &o.author.date)
        == (&o.committer.name, &o.committer.email, &o.committer.date);
    if !same {
        let _ = writeln!(t, "committer: {}", person(&o.committer));
    }
    let parents = if o.parents.is_empty() {
        "none".to_string()
    } else {
        o.parents.join(" ")
    };
    let _ = writeln!(t, "parents: {parents}\n");
    t.push_str(o.message.trim_end_matches('\n'));
    t.push_str("\n\n");
    render_files(&mut t, &o.files, &o.totals, o.files_truncated);
    text::footer(&mut t, None, o.note.as_deref());
    if let Some(patch) = &o.patch {
        t.push('\n');
        t.push_str(patch);
        if o.patch_truncated {
            t.push_str("\n[patch truncated at 100 KB]\n");
        }
    }
    t
}

/// `N files changed, +A -D`, then `status  +a  -d  path` rows.
fn render_files(t: &mut String, files: &[FileChange], totals: &Totals, truncated: bool) {
    let _ = write!(
        t,
        "{} changed, +{} -{}",
        text::count(totals.files_changed as u64, "file", "files"),
        totals.additions,
        totals.deletions
    );
    if truncated {
        let _ = write!(t, " (files truncated: {} listed)", files.len());
    }
    t.push('\n');
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            let mut path = match &f.old_path {
                Some(old) => format!("{} <- {old}", f.path),
                None => f.path.clone(),
            };
            if f.binary {
                path.push_str(" (binary)");
            }
            vec![
                f.status.clone(),
                format!("+{}", f.additions),
                format!("-{}", f.deletions),
                path,
            ]
        })
        .collect();
    t.push_str(&text::rows(&rows));
}

pub struct GetCommit;

impl Tool for GetCommit {
    const NAME: &'static str = "get_commit";
    const HEAVY: bool = true;
    const DESCRIPTION: &'static str = "One commit: message, author, committer, parents, and the files it changes against its first parent with lines added and removed (as `git diff-tree -M --numstat`); `patch: true` adds the diff.";
    type Args = GetArgs;
    type Output = GetOutput;

    fn render(out: &GetOutput) -> String {
        render(out)
    }

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
    let c = block_on(r.client.commit(&r.id, &id)).map_err(|e| api_error(e, &what))?;
    let (changes, complete) = collect_pages(MAX_FILES, 500, |limit, cursor| {
        block_on(r.client.commit_changes(&r.id, &c.hash, limit, cursor))
    })
    .map_err(|e| api_error(e, &what))?;
    let files: Vec<FileChange> = changes.iter().map(FileChange::of).collect();
    let counted = changes.iter().all(|f| f.lines_added.is_some());
    let totals = Totals {
        files_changed: files.len(),
        additions: files.iter().map(|f| f.additions).sum(),
        deletions: files.iter().map(|f| f.deletions).sum(),
    };
    let mut notes = vec![NOTE.to_string()];
    if !counted {
        notes.push(
            "the server's change list has no line counts (Data Center): additions and deletions are 0"
                .into(),
        );
    }
    let people = CommitPeople::of(&c);
    let mut out = GetOutput {
        repo: r.name.clone(),
        hash: c.hash,
        message: cut_chars(&c.message, MAX_MESSAGE),
        author: people.author,
        committer: people.committer,
        parents: c.parents,
        files,
        totals,
        files_truncated: !complete,
        patch: None,
        patch_truncated: false,
        note: None,
    };
    if args.patch {
        match block_on(r.client.commit_diff(&r.id, &out.hash, MAX_OUTPUT_BYTES + 1)) {
            Ok(raw) => {
                let text = raw.text();
                let cut = raw.truncated || text.len() > MAX_OUTPUT_BYTES;
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

/// The name a file change's status has in every tool's answer.
pub(crate) fn status_name(s: &ChangeStatus) -> String {
    match s {
        ChangeStatus::Added => "added".into(),
        ChangeStatus::Removed => "deleted".into(),
        ChangeStatus::Modified => "modified".into(),
        ChangeStatus::Renamed => "renamed".into(),
        ChangeStatus::Copied => "copied".into(),
        ChangeStatus::Other(o) if o.is_empty() => "modified".into(),
        ChangeStatus::Other(o) => o.to_lowercase(),
    }
}

impl FileChange {
    fn of(f: &ChangedFile) -> FileChange {
        FileChange {
            path: f.path.clone(),
            old_path: f.old_path.clone(),
            status: status_name(&f.status),
            additions: f.lines_added.unwrap_or(0) as usize,
            deletions: f.lines_removed.unwrap_or(0) as usize,
            binary: f.binary.unwrap_or(false),
        }
    }
}
