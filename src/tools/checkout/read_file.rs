//! `read_file`: a file's lines at a ref, numbered, capped, with binary detection.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AtPath, Context, Error, MODE_SYMLINK, Tool, at_path, open};
use crate::tools::scope;
use crate::tools::text::{check_range, is_binary, window};
use crate::tools::{Kind, ToolInfo, parse_args, schema_of};

/// Arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The repository, as the environment names it (see list_repositories).
    pub repo: String,
    /// File path relative to the repository root, like `src/main.rs`.
    pub path: String,
    /// A branch in scope (see list_branches) or a commit id reachable from one; omit (or pass
    /// `HEAD`) for the checked-out commit. For a repository that is not cloned: a branch name
    /// only, default the spec's `branch:` or the repository's default branch.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// First line to return (1-based, inclusive). Default 1.
    #[serde(default)]
    pub start_line: Option<usize>,
    /// Last line to return (1-based, inclusive). Default: the end of the file.
    #[serde(default)]
    pub end_line: Option<usize>,
}

/// Result of `read_file`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub repo: String,
    pub path: String,
    /// The ref answered: the branch name, or the commit id.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The full commit id the file was read at.
    pub commit: String,
    /// The file's size in bytes.
    pub size: u64,
    /// True when the file looks binary (a NUL byte in its first 8000 bytes): no content is
    /// returned, only `size` and `mime`.
    pub binary: bool,
    /// A MIME type guessed from the file's first bytes and its extension.
    pub mime: String,
    /// True when the path is a symbolic link: `symlink_target` holds its text; it is not followed.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub symlink: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
    /// Lines in the whole file (text files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_lines: Option<usize>,
    /// First line in `content`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_line: Option<usize>,
    /// Last line in `content` (it may be before the requested `end_line` when cut).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<usize>,
    /// The lines, each as `<number>\t<text>`, newline-terminated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// True when the requested range was cut at the 100 KB cap.
    pub truncated: bool,
    /// When cut: call read_file again with this `start_line` to continue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_start_line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub fn tool() -> Tool {
    Tool {
        info: ToolInfo {
            name: "read_file",
            description: "Read a file of a repository at a ref as numbered lines (`<n>\\t<text>`), optionally only `start_line`..`end_line` (1-based, inclusive), with `total_lines`. Output is capped at 100 KB, cut at a line boundary: `truncated` is true and `next_start_line` is where to continue. Binary files return `binary: true`, size and a MIME type instead of content. `ref` is a branch in scope or a commit id reachable from one (default: the checked-out commit). A cloned repository is read from its committed tree, not the working copy; symlinks are reported with their target, not followed. An in-scope repository that is not cloned is answered from the Bitbucket API, where `ref` must be a branch name (default: the spec's branch or the repository's default branch) and `note` says so.",
            input_schema: schema_of::<Args>(),
            output_schema: schema_of::<Output>(),
            default: true,
        },
        run,
    }
}

fn run(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: Args = parse_args(args)?;
    let path = scope::clean_path(&args.path)?;
    let shown = scope::tree_path(&path);
    if shown.is_empty() {
        return Err(Error::new(
            Kind::Input,
            "`path` names the repository root; call browse to list it, then read_file a file in it",
        ));
    }
    let start = check_range(args.start_line, args.end_line)?;
    let (repo, git) = open(ctx, &args.repo)?;
    let at = scope::resolve(ctx, &repo, &git, args.reference.as_deref())?;
    let label = at.label();
    let (id, mode) = match at_path(&git, &repo, at.commit, &label, &path)? {
        AtPath::Blob { id, mode } => (id, mode),
        AtPath::Tree(_) => {
            return Err(invalid(&format!(
                "`{shown}` is a directory; call browse to list it"
            )));
        }
        AtPath::Submodule(id) => {
            return Err(invalid(&format!(
                "`{shown}` is a submodule pinned at {id}; its content is not part of this repository"
            )));
        }
    };
    let blob = git.find_blob(id).map_err(super::git_error)?;
    let bytes = blob.content();
    let mut out = Output {
        repo: repo.name.clone(),
        path: shown.clone(),
        reference: label,
        commit: at.commit.to_string(),
        size: bytes.len() as u64,
        binary: false,
        mime: guess_mime(&shown, bytes),
        symlink: false,
        symlink_target: None,
        total_lines: None,
        start_line: None,
        end_line: None,
        content: None,
        truncated: false,
        next_start_line: None,
        note: None,
    };
    if mode == MODE_SYMLINK {
        out.symlink = true;
        out.mime = "inode/symlink".to_string();
        out.symlink_target = Some(super::cut_chars(&String::from_utf8_lossy(bytes), 1024));
        out.note = Some("this is a symbolic link; it is not followed. If its target is inside the repository, read_file that path".to_string());
        return Ok(serde_json::to_value(out).expect("json"));
    }
    if is_binary(bytes) {
        out.binary = true;
        out.note = Some("binary file: content not shown".to_string());
        return Ok(serde_json::to_value(out).expect("json"));
    }
    let w = window(bytes, &shown, start, args.end_line)?;
    out.total_lines = Some(w.total_lines);
    out.start_line = w.start_line;
    out.end_line = w.end_line;
    out.content = Some(w.content);
    out.truncated = w.truncated;
    out.next_start_line = w.next_start_line;
    out.note = (!w.notes.is_empty()).then(|| w.notes.join("; "));
    Ok(serde_json::to_value(out).expect("json"))
}

fn invalid(msg: &str) -> Error {
    Error::new(Kind::Input, msg.to_string())
}

/// A MIME type from magic numbers first, then the extension.
fn guess_mime(path: &str, bytes: &[u8]) -> String {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"\x7fELF", "application/x-elf"),
        (b"\0asm", "application/wasm"),
        (b"BZh", "application/x-bzip2"),
        (b"\xfd7zXZ\0", "application/x-xz"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"SQLite format 3\0", "application/vnd.sqlite3"),
        (b"\xca\xfe\xba\xbe", "application/java-vm"),
    ];
    if let Some((_, m)) = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return m.to_string();
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return "image/webp".to_string();
    }
    let ext = path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let by_ext = match ext.as_str() {
        "rs" => "text/x-rust",
        "py" => "text/x-python",
        "js" | "mjs" | "cjs" => "text/javascript",
        "ts" => "text/x-typescript",
        "java" => "text/x-java",
        "go" => "text/x-go",
        "c" | "h" => "text/x-c",
        "cc" | "cpp" | "hpp" => "text/x-c++",
        "sh" => "application/x-sh",
        "md" => "text/markdown",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "svg" => "image/svg+xml",
        "txt" | "log" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "zip" | "jar" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "wasm" => "application/wasm",
        _ => "",
    };
    if !by_ext.is_empty() {
        return by_ext.to_string();
    }
    if is_binary(bytes) {
        "application/octet-stream".to_string()
    } else {
        "text/plain".to_string()
    }
}
