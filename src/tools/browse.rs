//! `browse`: the entries of a directory at a ref; from the checkout's committed tree, or from
//! the API for a repository that is not cloned.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::paths::{clean_path, tree_path};
use super::source::checkout::{AtPath, MODE_EXECUTABLE, MODE_SYMLINK, git_error};
use super::source::remote::{MAX_PAGES, NOTE, api_error, block_on};
use super::source::{Checkout, Remote, Source};
use super::text::{self, cut_chars};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::{DirEntry, EntryKind, Listing};

/// Arguments of `browse`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Repository name.
    pub repo: String,
    /// Directory from the repository root, like `src/tools` (default: the root).
    #[serde(default)]
    pub path: Option<String>,
    /// Branch or commit id (default: the checked-out commit, else the default branch).
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

/// A header with the counts per type, then one row per entry: dirs end in `/`, files show
/// their size, symlinks their target, submodules their commit.
fn render(o: &Output) -> String {
    let mut counts: Vec<(EntryType, usize)> = Vec::new();
    for e in &o.entries {
        match counts.iter_mut().find(|(k, _)| *k == e.kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((e.kind, 1)),
        }
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(k, n)| {
            let word = match k {
                EntryType::Dir => "dir",
                EntryType::File => "file",
                EntryType::Symlink => "symlink",
                EntryType::Submodule => "submodule",
            };
            text::count(*n as u64, word, &format!("{word}s"))
        })
        .collect();
    let at = if o.reference == o.commit {
        o.commit.clone()
    } else {
        format!("{} ({})", o.reference, o.commit)
    };
    let dir = if o.path.is_empty() { "/" } else { &o.path };
    let mut t = format!("{} {dir} at {at}: ", o.repo);
    if o.truncated {
        let _ = write!(
            t,
            "first {} of {} entries",
            o.entries.len(),
            o.total_entries
        );
    } else {
        t.push_str(&text::count(o.total_entries as u64, "entry", "entries"));
    }
    let _ = writeln!(t, " ({})", counts.join(", "));
    let rows: Vec<Vec<String>> = o
        .entries
        .iter()
        .map(|e| {
            let size = e.size.map(|s| s.to_string()).unwrap_or_default();
            let (path, extra) = match e.kind {
                EntryType::Dir => (format!("{}/", e.path), String::new()),
                EntryType::File if e.executable => (e.path.clone(), "executable".into()),
                EntryType::File => (e.path.clone(), String::new()),
                EntryType::Symlink => (
                    e.path.clone(),
                    format!("-> {}", e.target.as_deref().unwrap_or("?")),
                ),
                EntryType::Submodule => (
                    e.path.clone(),
                    format!("at {}", e.commit.as_deref().unwrap_or("?")),
                ),
            };
            vec![path, size, extra]
        })
        .collect();
    t.push_str(&text::rows(&rows));
    text::footer(&mut t, None, o.note.as_deref());
    t
}

pub struct Browse;

impl Tool for Browse {
    const NAME: &'static str = "browse";
    const DESCRIPTION: &'static str = "List a committed directory (checked-out commit or `ref`, not the working copy): entries with type and size, directories first (at most 1000). Symlinks show their target and are not followed.";
    type Args = Args;
    type Output = Output;

    fn render(out: &Output) -> String {
        render(out)
    }

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
    let mut cursor = None;
    // Cloud serves at most 100 entries a page, Data Center 500 (its default limit).
    let page_size = if r.is_cloud() { 100 } else { 500 };
    for _ in 0..MAX_PAGES {
        let listing =
            block_on(
                r.client
                    .directory(&r.id, &commit, &path, page_size, cursor.as_ref()),
            )
            .map_err(|e| api_error(e, &what))?;
        let page = match listing {
            Listing::Entries(page) => page,
            Listing::NotADirectory => return Err(not_dir()),
        };
        entries.extend(page.values.into_iter().map(Entry::of));
        cursor = page.next;
        if cursor.is_none() {
            complete = true;
            break;
        }
    }
    let mut out = Output::new(&r.name, branch, commit, path, entries, complete);
    out.note = Some(NOTE.to_string());
    Ok(out)
}

impl Entry {
    fn of(e: DirEntry) -> Entry {
        let kind = match e.kind {
            EntryKind::Dir => EntryType::Dir,
            EntryKind::File => EntryType::File,
            EntryKind::Symlink => EntryType::Symlink,
            EntryKind::Submodule => EntryType::Submodule,
        };
        let mut entry = Entry::new(e.name, e.path, kind);
        entry.size = e.size.filter(|_| kind != EntryType::Dir);
        entry.executable = e.executable.unwrap_or(false);
        entry
    }
}
