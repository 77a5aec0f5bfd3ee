//! `browse`: the entries of a directory at a ref; from the checkout's committed tree, or from
//! the API for a repository that is not cloned.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paths::{clean_path, tree_path};
use super::source::checkout::{AtPath, MODE_EXECUTABLE, MODE_SYMLINK, git_error};
use super::source::remote::{MAX_PAGES, NOTE, api_error, block_on, str_at};
use super::source::{Checkout, Remote, Source};
use super::text::cut_chars;
use super::{Context, Error, Result, Tool};
use crate::bitbucket::{ApiErrorKind, query, seg};

/// Arguments of `browse`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The repository, as the environment names it (see list_repositories).
    pub repo: String,
    /// Directory relative to the repository root, like `src/tools`; omit or `""` for the root.
    #[serde(default)]
    pub path: Option<String>,
    /// A branch in scope (see list_branches) or a commit id reachable from one; omit (or pass
    /// `HEAD`) for the checked-out commit. For a repository that is not cloned: a branch name
    /// only, default the spec's `branch:` or the repository's default branch.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    File,
    Dir,
    /// A symbolic link; `target` is its text. Links are never followed.
    Symlink,
    /// A git submodule; `commit` is the commit it pins (its content is not in this checkout).
    Submodule,
}

/// One directory entry.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    /// The entry's name.
    pub name: String,
    /// Its path from the repository root: pass it to read_file or browse.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryType,
    /// Size in bytes (files and symlinks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// True for an executable file.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub executable: bool,
    /// A symlink's target text, as committed (it may point anywhere; it is not followed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A submodule's pinned commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// Result of `browse`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub repo: String,
    /// The ref answered: the branch name, or the commit id.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The full commit id whose tree was listed.
    pub commit: String,
    /// The directory listed (`""` is the root).
    pub path: String,
    /// Directories first, then other entries, each group by name.
    pub entries: Vec<Entry>,
    /// Entries in the directory (all of them, even when `entries` is cut).
    pub total_entries: usize,
    /// True when `entries` was cut at the cap.
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct Browse;

impl Tool for Browse {
    const NAME: &'static str = "browse";
    const DESCRIPTION: &'static str = "List a directory of a repository at a ref: each entry's name, path, type (file, dir, symlink, submodule) and size, directories first; at most 1000 entries (`truncated` and `total_entries` tell when there are more). `path` is relative to the repository root (omit for the root); `ref` is a branch in scope, `HEAD` or a commit id reachable from one, optionally with `~N`/`^N` (`main~3`); a cloned repository fetches a branch or history it lacks on demand (default: the checked-out commit). A cloned repository is read from its committed tree, not the working copy; symlinks are shown with their target and never followed. An in-scope repository that is not cloned is answered from the Bitbucket API, where `ref` must be a branch name (default: the spec's branch or the repository's default branch) and `note` says so.";
    type Args = Args;
    type Output = Output;

    fn run(ctx: &Context, args: Args) -> Result<Output> {
        let path = tree_path(&clean_path(args.path.as_deref().unwrap_or(""))?);
        match ctx.source(&args.repo)? {
            Source::Checkout(c) => checkout(&c, args.reference.as_deref(), path),
            Source::Remote(r) => remote(&r, args.reference.as_deref(), path),
        }
    }
}

/// Past this many entries a listing is cut; a directory that large is better searched.
const MAX_ENTRIES: usize = 1000;

impl Output {
    /// A listing of `entries`, sorted and cut at the cap; `complete` is false when the source
    /// stopped before the end.
    fn new(
        repo: &str,
        reference: String,
        commit: String,
        path: String,
        mut entries: Vec<Entry>,
        complete: bool,
    ) -> Output {
        let total_entries = entries.len();
        entries.sort_by(|a, b| {
            (a.kind != EntryType::Dir, &a.name).cmp(&(b.kind != EntryType::Dir, &b.name))
        });
        let capped = total_entries > MAX_ENTRIES;
        entries.truncate(MAX_ENTRIES);
        Output {
            repo: repo.to_string(),
            reference,
            commit,
            path,
            entries,
            total_entries,
            truncated: capped || !complete,
            note: None,
        }
    }
}

impl Entry {
    fn new(name: String, path: String, kind: EntryType) -> Entry {
        Entry {
            name,
            path,
            kind,
            size: None,
            executable: false,
            target: None,
            commit: None,
        }
    }
}

fn checkout(c: &Checkout<'_>, reference: Option<&str>, shown: String) -> Result<Output> {
    let at = c.resolve(reference)?;
    let label = at.label();
    let git = &*c.git;
    let tree = match c.at_path(at.commit, &label, std::path::Path::new(&shown))? {
        AtPath::Tree(t) => t,
        AtPath::Blob { mode, .. } if mode == MODE_SYMLINK => {
            return Err(Error::input(format!(
                "`{shown}` is a symlink, not a directory; links are not followed (call browse on its parent to see its target)"
            )));
        }
        AtPath::Blob { .. } => {
            return Err(Error::input(format!(
                "`{shown}` is a file, not a directory; call read_file to read it"
            )));
        }
        AtPath::Submodule(id) => {
            return Err(Error::input(format!(
                "`{shown}` is a submodule pinned at {id}; its content is not part of this repository"
            )));
        }
    };
    let odb = git.odb().map_err(git_error)?;
    let mut entries: Vec<Entry> = Vec::with_capacity(tree.len().min(MAX_ENTRIES));
    for e in tree.iter() {
        let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
        let entry_path = if shown.is_empty() {
            name.clone()
        } else {
            format!("{shown}/{name}")
        };
        let mode = e.filemode();
        let mut entry = Entry::new(name, entry_path, EntryType::File);
        match e.kind() {
            Some(git2::ObjectType::Tree) => entry.kind = EntryType::Dir,
            Some(git2::ObjectType::Blob) => {
                entry.size = odb.read_header(e.id()).ok().map(|(n, _)| n as u64);
                if mode == MODE_SYMLINK {
                    entry.kind = EntryType::Symlink;
                    entry.target = git
                        .find_blob(e.id())
                        .ok()
                        .map(|b| cut_chars(&String::from_utf8_lossy(b.content()), 1024));
                } else {
                    entry.executable = mode == MODE_EXECUTABLE;
                }
            }
            _ => {
                entry.kind = EntryType::Submodule;
                entry.commit = Some(e.id().to_string());
            }
        }
        entries.push(entry);
    }
    let mut out = Output::new(c.name(), label, at.commit.to_string(), shown, entries, true);
    let mut notes: Vec<String> = c.fetch_note().into_iter().collect();
    if out.truncated {
        notes.push(format!(
            "only the first {MAX_ENTRIES} of {} entries are listed; browse a subdirectory or use search_code to find files",
            out.total_entries
        ));
    }
    out.note = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(out)
}

fn remote(r: &Remote<'_>, reference: Option<&str>, path: String) -> Result<Output> {
    let (branch, commit) = r.resolve(reference)?;
    let what = format!("`{path}` in `{}` at `{branch}`", r.name);
    let not_dir = || Error::input(format!("`{path}` is a file; call read_file to read it"));
    let mut entries: Vec<Entry> = Vec::new();
    let mut complete = false;
    let encoded: String = path.split('/').map(seg).collect::<Vec<_>>().join("/");
    let sized = |mut e: Entry, size: Option<u64>| {
        e.size = size.filter(|_| e.kind != EntryType::Dir);
        e
    };
    if r.is_cloud() {
        let endpoint = if path.is_empty() {
            format!("{}/src/{commit}/", r.base)
        } else {
            format!("{}/src/{commit}/{encoded}/", r.base)
        };
        let mut next = None;
        for _ in 0..MAX_PAGES {
            let page = block_on(r.client.page(&endpoint, &[], 100, next.as_deref())).map_err(
                |e| match e.kind {
                    ApiErrorKind::BadResponse => not_dir(),
                    _ => api_error(e, &what),
                },
            )?;
            for v in &page.values {
                let full = str_at(v, "/path").unwrap_or_default();
                let name = full.rsplit('/').next().unwrap_or("").to_string();
                let attrs: Vec<&str> = v
                    .get("attributes")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let has = |a: &str| attrs.contains(&a);
                let kind = if str_at(v, "/type").as_deref() == Some("commit_directory") {
                    EntryType::Dir
                } else if has("subrepository") {
                    EntryType::Submodule
                } else if has("link") {
                    EntryType::Symlink
                } else {
                    EntryType::File
                };
                let mut e = sized(
                    Entry::new(name, full, kind),
                    v.get("size").and_then(Value::as_u64),
                );
                e.executable = has("executable");
                entries.push(e);
            }
            next = page.next;
            if next.is_none() {
                complete = true;
                break;
            }
        }
    } else {
        let mut start = 0u64;
        for _ in 0..MAX_PAGES {
            let q = query(&[
                ("at", commit.clone()),
                ("start", start.to_string()),
                ("limit", "500".into()),
            ]);
            let v = block_on(
                r.client
                    .get_json(&format!("{}/browse/{encoded}?{q}", r.base)),
            )
            .map_err(|e| api_error(e, &what))?;
            if v.get("lines").is_some() {
                return Err(not_dir());
            }
            let children = v.get("children").cloned().unwrap_or(Value::Null);
            for c in children
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = str_at(c, "/path/toString").unwrap_or_default();
                let full = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                let kind = match str_at(c, "/type").as_deref() {
                    Some("DIRECTORY") => EntryType::Dir,
                    Some("SUBMODULE") => EntryType::Submodule,
                    _ => EntryType::File,
                };
                entries.push(sized(
                    Entry::new(name, full, kind),
                    c.get("size").and_then(Value::as_u64),
                ));
            }
            match children.get("nextPageStart").and_then(Value::as_u64) {
                Some(n)
                    if children.get("isLastPage").and_then(Value::as_bool) == Some(false)
                        && n > start =>
                {
                    start = n
                }
                _ => {
                    complete = true;
                    break;
                }
            }
        }
    }
    let mut out = Output::new(&r.name, branch, commit, path, entries, complete);
    out.note = Some(NOTE.to_string());
    Ok(out)
}
