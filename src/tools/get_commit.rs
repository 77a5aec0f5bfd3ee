//! `get_commit`: one commit's details and diffstat (optionally its patch); from the checkout,
//! or from the API for a repository that is not cloned.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source::checkout::{SHALLOW_NOTE, git_error};
use super::source::remote::{CommitPeople, NOTE, api_error, block_on, collect_pages};
use super::source::{Checkout, Remote, Source};
use super::text::{self, MAX_OUTPUT_BYTES, Person, cut_chars};
use super::{Context, Result, Tool};
use crate::bitbucket::{ApiErrorKind, ChangeStatus, ChangedFile};

/// Arguments of `get_commit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// Repository name.
    pub repo: String,
    /// Commit id (7-40 hex digits) or a branch for its head.
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
    /// added, deleted, modified, renamed, copied or type_changed.
    pub status: String,
    /// Lines added (0 for binary files).
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
    const DESCRIPTION: &'static str = "One commit: message, author, committer, parents, and the files it changes against its first parent with lines added and removed; `patch: true` adds the diff.";
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
    let tree = commit.tree().map_err(git_error)?;
    let parent_tree = commit.parent(0).ok().and_then(|p| p.tree().ok());
    let mut notes = Vec::new();
    let shallow = c.shallow_commits();
    if parent_tree.is_none() && shallow.contains(&commit.id()) {
        notes.push(format!(
            "this commit is at the shallow clone's boundary: its parent is not in the checkout, so the diffstat shows every file as added; {SHALLOW_NOTE}"
        ));
    }
    if commit.parent_count() > 1 {
        notes.push("merge commit: the diff is against the first parent".to_string());
    }
    let diff = diff_against_parent(git, parent_tree.as_ref(), &tree)?;

    let mut files = Vec::new();
    let mut totals = Totals {
        files_changed: 0,
        additions: 0,
        deletions: 0,
    };
    let deltas = diff.as_ref().map_or(0, |d| d.deltas().len());
    for idx in 0..deltas {
        let Some(diff) = diff.as_ref() else { break };
        let Some(delta) = diff.get_delta(idx) else {
            continue;
        };
        let (adds, dels) = git2::Patch::from_diff(diff, idx)
            .ok()
            .flatten()
            .and_then(|p| p.line_stats().ok())
            .map(|(_, a, d)| (a, d))
            .unwrap_or((0, 0));
        totals.files_changed += 1;
        totals.additions += adds;
        totals.deletions += dels;
        if files.len() >= MAX_FILES {
            continue;
        }
        let path_of = |f: git2::DiffFile<'_>| {
            f.path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let new_path = path_of(delta.new_file());
        let old = path_of(delta.old_file());
        let status = match delta.status() {
            git2::Delta::Added => "added",
            git2::Delta::Deleted => "deleted",
            git2::Delta::Renamed => "renamed",
            git2::Delta::Copied => "copied",
            git2::Delta::Typechange => "type_changed",
            _ => "modified",
        };
        let path = if delta.status() == git2::Delta::Deleted {
            old.clone()
        } else {
            new_path.clone()
        };
        files.push(FileChange {
            old_path: (matches!(status, "renamed" | "copied") && old != path).then_some(old),
            path,
            status: status.to_string(),
            additions: adds,
            deletions: dels,
            binary: delta.flags().is_binary(),
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
        let (p, cut) = diff.as_ref().map(patch_text).unwrap_or_default();
        if cut {
            notes.push(format!(
                "the patch is capped at 100 KB and was cut at a line boundary; read_file the changed files at `{}` and at its parent for the rest",
                commit.id()
            ));
        }
        (Some(p), cut)
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
        parents: commit.parent_ids().map(|p| p.to_string()).collect(),
        files,
        totals,
        files_truncated,
        patch,
        patch_truncated,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    };
    Ok(out)
}

/// The diff of a commit's tree against its first parent's, with renames found; `None` when
/// the trees are equal.
///
/// libgit2 walks both trees in full, loading and hashing every tree object on either side even
/// where a subtree did not change, which on a large checkout costs far more than the diff
/// itself. So the changed files are found first by a walk that skips subtrees whose ids are
/// equal, and libgit2 diffs only those paths: the same deltas (renames pair up deletions and
/// additions, both of which are listed) at the cost of the trees on the changed paths.
fn diff_against_parent<'r>(
    git: &'r git2::Repository,
    parent: Option<&git2::Tree<'_>>,
    tree: &git2::Tree<'_>,
) -> Result<Option<git2::Diff<'r>>> {
    let mut opts = git2::DiffOptions::new();
    if let Some(parent) = parent {
        let mut changed = Vec::new();
        changed_files(git, Some(parent), Some(tree), b"", &mut changed).map_err(git_error)?;
        if changed.is_empty() {
            return Ok(None);
        }
        // Exact paths, not globs: a path with `*` or `[` in it names only itself.
        opts.disable_pathspec_match(true);
        for path in changed {
            opts.pathspec(path);
        }
    }
    let mut diff = git
        .diff_tree_to_tree(parent, Some(tree), Some(&mut opts))
        .map_err(git_error)?;
    let _ = diff.find_similar(Some(git2::DiffFindOptions::new().renames(true)));
    Ok(Some(diff))
}

/// The paths of the files (blobs and submodules) that differ between two trees, `None` being
/// the empty tree, in any order. Subtrees with equal ids are not read.
fn changed_files(
    git: &git2::Repository,
    old: Option<&git2::Tree<'_>>,
    new: Option<&git2::Tree<'_>>,
    prefix: &[u8],
    out: &mut Vec<Vec<u8>>,
) -> Result<(), git2::Error> {
    use std::collections::BTreeMap;
    let entries = |t: Option<&git2::Tree<'_>>| -> BTreeMap<Vec<u8>, (git2::Oid, i32, bool)> {
        t.into_iter()
            .flat_map(|t| t.iter())
            .map(|e| {
                let is_tree = e.kind() == Some(git2::ObjectType::Tree);
                (e.name_bytes().to_vec(), (e.id(), e.filemode(), is_tree))
            })
            .collect()
    };
    let (before, after) = (entries(old), entries(new));
    let names: std::collections::BTreeSet<&Vec<u8>> = before.keys().chain(after.keys()).collect();
    for name in names {
        let (b, a) = (before.get(name), after.get(name));
        if b == a {
            continue;
        }
        // Bytes, not text: a name that is not UTF-8 must still match itself.
        let path = [prefix, name.as_slice()].concat();
        let subtree = |side: Option<&(git2::Oid, i32, bool)>| match side {
            Some((id, _, true)) => git.find_tree(*id).map(Some),
            _ => Ok(None),
        };
        let (bt, at) = (subtree(b)?, subtree(a)?);
        if bt.is_some() || at.is_some() {
            changed_files(
                git,
                bt.as_ref(),
                at.as_ref(),
                &[&path[..], b"/"].concat(),
                out,
            )?;
        }
        // A file on either side (also where the other side is a directory: a type change).
        if b.is_some_and(|e| !e.2) || a.is_some_and(|e| !e.2) {
            out.push(path);
        }
    }
    Ok(())
}

/// The unified diff, at most [`MAX_OUTPUT_BYTES`], cut at a line boundary.
fn patch_text(diff: &git2::Diff<'_>) -> (String, bool) {
    let mut buf = String::new();
    let mut cut = false;
    // Returning false from the callback stops libgit2's printer: no need to render the rest.
    let _ = diff.print(git2::DiffFormat::Patch, |_, _, line| {
        let mut piece = String::new();
        if matches!(line.origin(), '+' | '-' | ' ') {
            piece.push(line.origin());
        }
        piece.push_str(&String::from_utf8_lossy(line.content()));
        if buf.len() + piece.len() > MAX_OUTPUT_BYTES {
            cut = true;
            return false;
        }
        buf.push_str(&piece);
        true
    });
    (buf, cut)
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
