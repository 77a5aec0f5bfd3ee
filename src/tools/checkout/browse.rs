//! `browse`: the entries of a directory at a ref.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AtPath, Context, Error, MODE_EXECUTABLE, MODE_SYMLINK, Tool, at_path, open};
use crate::tools::scope;
use crate::tools::{Kind, ToolInfo, parse_args, schema_of};

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

pub fn tool() -> Tool {
    Tool {
        info: ToolInfo {
            name: "browse",
            description: "List a directory of a repository at a ref: each entry's name, path, type (file, dir, symlink, submodule) and size, directories first; at most 1000 entries (`truncated` and `total_entries` tell when there are more). `path` is relative to the repository root (omit for the root); `ref` is a branch in scope or a commit id reachable from one (default: the checked-out commit). A cloned repository is read from its committed tree, not the working copy; symlinks are shown with their target and never followed. An in-scope repository that is not cloned is answered from the Bitbucket API, where `ref` must be a branch name (default: the spec's branch or the repository's default branch) and `note` says so.",
            input_schema: schema_of::<Args>(),
            output_schema: schema_of::<Output>(),
            default: true,
        },
        run,
    }
}

/// Past this many entries a listing is cut; a directory that large is better searched.
const MAX_ENTRIES: usize = 1000;

fn run(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: Args = parse_args(args)?;
    let path = scope::clean_path(args.path.as_deref().unwrap_or(""))?;
    let (repo, git) = open(ctx, &args.repo)?;
    let at = scope::resolve(ctx, &repo, &git, args.reference.as_deref())?;
    let label = at.label();
    let shown = scope::tree_path(&path);
    let tree = match at_path(&git, &repo, at.commit, &label, &path)? {
        AtPath::Tree(t) => t,
        AtPath::Blob { mode, .. } if mode == MODE_SYMLINK => {
            return Err(Error::new(
                Kind::Input,
                format!(
                    "`{shown}` is a symlink, not a directory; links are not followed (call browse on its parent to see its target)"
                ),
            ));
        }
        AtPath::Blob { .. } => {
            return Err(Error::new(
                Kind::Input,
                format!("`{shown}` is a file, not a directory; call read_file to read it"),
            ));
        }
        AtPath::Submodule(id) => {
            return Err(Error::new(
                Kind::Input,
                format!(
                    "`{shown}` is a submodule pinned at {id}; its content is not part of this repository"
                ),
            ));
        }
    };
    let odb = git.odb().map_err(super::git_error)?;
    let mut entries: Vec<Entry> = Vec::with_capacity(tree.len().min(MAX_ENTRIES));
    for e in tree.iter() {
        let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
        let entry_path = if shown.is_empty() {
            name.clone()
        } else {
            format!("{shown}/{name}")
        };
        let mode = e.filemode();
        let mut entry = Entry {
            name,
            path: entry_path,
            kind: EntryType::File,
            size: None,
            executable: false,
            target: None,
            commit: None,
        };
        match e.kind() {
            Some(git2::ObjectType::Tree) => entry.kind = EntryType::Dir,
            Some(git2::ObjectType::Blob) => {
                entry.size = odb.read_header(e.id()).ok().map(|(n, _)| n as u64);
                if mode == MODE_SYMLINK {
                    entry.kind = EntryType::Symlink;
                    entry.target = git
                        .find_blob(e.id())
                        .ok()
                        .map(|b| super::cut_chars(&String::from_utf8_lossy(b.content()), 1024));
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
    let total_entries = entries.len();
    entries.sort_by(|a, b| {
        (a.kind != EntryType::Dir, &a.name).cmp(&(b.kind != EntryType::Dir, &b.name))
    });
    let truncated = total_entries > MAX_ENTRIES;
    entries.truncate(MAX_ENTRIES);
    let out = Output {
        repo: repo.name.clone(),
        reference: label,
        commit: at.commit.to_string(),
        path: shown,
        entries,
        total_entries,
        truncated,
        note: truncated.then(|| {
            format!("only the first {MAX_ENTRIES} of {total_entries} entries are listed; browse a subdirectory or use search_code to find files")
        }),
    };
    Ok(serde_json::to_value(out).expect("json"))
}
