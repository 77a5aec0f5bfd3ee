//! `list_commits` and `get_commit`: history and one commit's details, from the checkout.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Context, Error, MAX_OUTPUT_BYTES, Person, SHALLOW_NOTE, Tool, cursor, git_error, open,
    page_limit,
};
use crate::tools::scope;
use crate::tools::text::parse_time;
use crate::tools::{Kind, ToolInfo, parse_args, schema_of};

/// Arguments of `list_commits`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// The repository, as the environment names it (see list_repositories).
    pub repo: String,
    /// Where to start: a branch in scope (see list_branches) or a commit id reachable from one;
    /// omit for the checked-out commit. For a repository that is not cloned: a branch name
    /// only, default the spec's `branch:` or the repository's default branch.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// Only commits that change this file or directory (relative to the repository root).
    #[serde(default)]
    pub path: Option<String>,
    /// Only commits whose author name or email contains this text (case-insensitive).
    #[serde(default)]
    pub author: Option<String>,
    /// Only commits authored at or after this time: RFC 3339 (`2024-05-01T12:00:00Z`) or a
    /// date (`2024-05-01`, start of that day UTC).
    #[serde(default)]
    pub since: Option<String>,
    /// Only commits authored at or before this time: RFC 3339 or a date (`2024-05-31`,
    /// through the end of that day UTC).
    #[serde(default)]
    pub until: Option<String>,
    /// `next_cursor` from the previous page, with the same other arguments; omit for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Commits per page: 1 to 100, default 30.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One commit in a list.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct CommitSummary {
    /// Full commit id (pass it to get_commit, or as `ref`).
    pub hash: String,
    /// The first line of the message (get_commit has all of it).
    pub summary: String,
    pub author: Person,
    /// When the commit was made (committer date, RFC 3339).
    pub committed: String,
    /// Parent commit ids (more than one for a merge).
    pub parents: Vec<String>,
}

/// Result of `list_commits`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ListOutput {
    pub repo: String,
    /// The ref the walk started from: the branch name, or the commit id.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Newest first (by commit time).
    pub commits: Vec<CommitSummary>,
    /// Pass as `cursor` (with the same other arguments) to get the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// True when the walk reached the shallow clone's depth: older history exists but is not
    /// in the checkout.
    pub history_truncated_by_depth: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub fn list_tool() -> Tool {
    Tool {
        info: ToolInfo {
            name: "list_commits",
            description: "List the commits of a repository from a ref, newest first: hash, summary, author, committer date, parents. Optional filters: `path` (commits touching a file or directory), `author` (name or email substring, case-insensitive), `since`/`until` (RFC 3339 or YYYY-MM-DD, on the author date). `ref` is a branch in scope or a commit id reachable from one (default: the checked-out commit). Paginated: `limit` 1-100 (default 30), pass `next_cursor` back as `cursor` with the same other arguments. In a shallow clone the history stops at the clone's depth and `history_truncated_by_depth` says so. An in-scope repository that is not cloned is answered from the Bitbucket API, where `ref` must be a branch name (default: the spec's branch or the repository's default branch) and `note` says so.",
            input_schema: schema_of::<ListArgs>(),
            output_schema: schema_of::<ListOutput>(),
            default: true,
        },
        run: run_list,
    }
}

const KIND: &str = "commits.v1";
/// A walk looks at no more commits than this per call, so one call stays bounded on huge
/// histories; the note says when it stopped early.
const MAX_SCAN: usize = 200_000;

fn run_list(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: ListArgs = parse_args(args)?;
    let limit = page_limit(args.limit)?;
    let path = args.path.as_deref().map(scope::clean_path).transpose()?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_time(s, "since", false))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|s| parse_time(s, "until", true))
        .transpose()?;
    let author = args.author.as_deref().map(str::to_lowercase);
    let (repo, git) = open(ctx, &args.repo)?;
    let at = scope::resolve(ctx, &repo, &git, args.reference.as_deref())?;

    // The cursor pins the walk's start commit and counts the matches already returned, and
    // carries a fingerprint of the filters so it cannot be replayed with other arguments.
    let fingerprint = fingerprint(&args, at.commit);
    let skip = match args.cursor.as_deref() {
        None => 0,
        Some(c) => {
            let payload = cursor::decode(KIND, c)?;
            let bad = || {
                Error::new(
                    Kind::Input,
                    "invalid cursor: it belongs to a list_commits call with other arguments (or the branch moved); omit it to start over",
                )
            };
            let (fp, n) = payload.split_once(':').ok_or_else(bad)?;
            if fp != fingerprint {
                return Err(bad());
            }
            n.parse::<usize>().map_err(|_| bad())?
        }
    };

    let mut walk = git.revwalk().map_err(git_error)?;
    walk.set_sorting(git2::Sort::TIME).map_err(git_error)?;
    walk.push(at.commit).map_err(git_error)?;
    let shallow = super::shallow_commits(&git);
    let path_str = path
        .as_deref()
        .map(scope::tree_path)
        .filter(|p| !p.is_empty());

    let mut commits = Vec::new();
    let mut matched = 0usize;
    let mut more = false;
    let mut reached_boundary = false;
    let mut scanned = 0usize;
    let mut scan_capped = false;
    for oid in walk {
        scanned += 1;
        if scanned > MAX_SCAN {
            scan_capped = true;
            break;
        }
        let Ok(oid) = oid else { break };
        let Ok(commit) = git.find_commit(oid) else {
            continue;
        };
        if shallow.contains(&oid) {
            reached_boundary = true;
        }
        let when = commit.author().when().seconds();
        if since.is_some_and(|s| when < s) || until.is_some_and(|u| when > u) {
            continue;
        }
        if let Some(a) = &author {
            let sig = commit.author();
            let name = String::from_utf8_lossy(sig.name_bytes()).to_lowercase();
            let email = String::from_utf8_lossy(sig.email_bytes()).to_lowercase();
            if !name.contains(a.as_str()) && !email.contains(a.as_str()) {
                continue;
            }
        }
        if let Some(p) = &path_str
            && !touches(&git, &commit, p)
        {
            continue;
        }
        matched += 1;
        if matched <= skip {
            continue;
        }
        if commits.len() == limit {
            more = true;
            break;
        }
        commits.push(CommitSummary {
            hash: oid.to_string(),
            summary: super::summary(&commit),
            author: Person::of(&commit.author()),
            committed: super::rfc3339(commit.committer().when()),
            parents: commit.parent_ids().map(|p| p.to_string()).collect(),
        });
    }
    let truncated_by_depth = !more && !scan_capped && reached_boundary;
    let mut notes = Vec::new();
    if truncated_by_depth {
        notes.push(SHALLOW_NOTE.to_string());
    }
    if scan_capped {
        notes.push(format!(
            "stopped after looking at {MAX_SCAN} commits; narrow the search with since/until or a ref"
        ));
    }
    let out = ListOutput {
        repo: repo.name.clone(),
        reference: at.label(),
        commits,
        next_cursor: more.then(|| cursor::encode(KIND, &format!("{fingerprint}:{}", skip + limit))),
        history_truncated_by_depth: truncated_by_depth,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    };
    Ok(serde_json::to_value(out).expect("json"))
}

fn fingerprint(args: &ListArgs, start: git2::Oid) -> String {
    use sha2::Digest;
    let key = serde_json::json!([
        args.repo,
        start.to_string(),
        args.path,
        args.author,
        args.since,
        args.until
    ]);
    let digest = sha2::Sha256::digest(key.to_string().as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a commit changes `path` (a file or a directory) compared with its parents: like
/// `git log -- path`, a merge that matches one of its parents there does not count. A commit
/// without parents in the clone (a root, or the shallow boundary) counts when it has the path.
fn touches(git: &git2::Repository, commit: &git2::Commit<'_>, path: &str) -> bool {
    let id_at = |c: &git2::Commit<'_>| {
        c.tree()
            .ok()
            .and_then(|t| t.get_path(std::path::Path::new(path)).ok())
            .map(|e| e.id())
    };
    let mine = id_at(commit);
    let parents: Vec<_> = commit
        .parent_ids()
        .filter_map(|p| git.find_commit(p).ok())
        .collect();
    if parents.is_empty() {
        return mine.is_some();
    }
    parents.iter().all(|p| id_at(p) != mine)
}

/// Arguments of `get_commit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// The repository, as the environment names it (see list_repositories).
    pub repo: String,
    /// A commit id (full or at least 7 hex digits) reachable from a branch in scope, or a
    /// branch name for its head commit.
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

pub fn get_tool() -> Tool {
    Tool {
        info: ToolInfo {
            name: "get_commit",
            description: "Show one commit of a repository: message, author, committer, dates, parents, and a diffstat against its first parent (each changed file's path, status and lines added/removed, at most 1000 files, with totals over all). `commit` is a commit id (7 to 40 hex digits) reachable from a branch in scope, or a branch name for its head. `patch: true` adds the unified diff, capped at 100 KB at a line boundary (`patch_truncated`). A cloned repository is answered from its checkout; an in-scope repository that is not cloned from the Bitbucket API (Data Center gives no line counts), and `note` says so.",
            input_schema: schema_of::<GetArgs>(),
            output_schema: schema_of::<GetOutput>(),
            default: true,
        },
        run: run_get,
    }
}

const MAX_FILES: usize = 1000;
const MAX_MESSAGE: usize = 64 * 1024;

fn run_get(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: GetArgs = parse_args(args)?;
    let (repo, git) = open(ctx, &args.repo)?;
    let at = scope::resolve(ctx, &repo, &git, Some(&args.commit))?;
    let commit = git.find_commit(at.commit).map_err(git_error)?;
    let tree = commit.tree().map_err(git_error)?;
    let parent_tree = commit.parent(0).ok().and_then(|p| p.tree().ok());
    let mut notes = Vec::new();
    let shallow = super::shallow_commits(&git);
    if parent_tree.is_none() && shallow.contains(&commit.id()) {
        notes.push(format!(
            "this commit is at the shallow clone's boundary: its parent is not in the checkout, so the diffstat shows every file as added; {SHALLOW_NOTE}"
        ));
    }
    if commit.parent_count() > 1 {
        notes.push("merge commit: the diff is against the first parent".to_string());
    }
    let diff = diff_against_parent(&git, parent_tree.as_ref(), &tree)?;

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
        repo: repo.name.clone(),
        hash: commit.id().to_string(),
        message: super::cut_chars(&message, MAX_MESSAGE),
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
    Ok(serde_json::to_value(out).expect("json"))
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
) -> Result<Option<git2::Diff<'r>>, Error> {
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
