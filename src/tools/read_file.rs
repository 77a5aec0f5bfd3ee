//! `read_file`: a file's lines at a ref, numbered, capped, with binary detection; from the
//! checkout's committed tree, or from the API for a repository that is not cloned.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::paths::{clean_path, tree_path};
use super::source::checkout::{AtPath, MODE_SYMLINK, git_error};
use super::source::remote::{NOTE, api_error, block_on};
use super::source::{Checkout, Remote, Source};
use super::text::{self, check_range, cut_chars, is_binary, window};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::{FileRead, MAX_BODY_BYTES};

/// Arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Repository name.
    pub repo: String,
    /// File path from the repository root, like `src/main.rs`.
    pub path: String,
    /// Branch or commit id (default: the checked-out commit, else the default branch).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// First line (1-based; default 1).
    #[serde(default)]
    pub start_line: Option<usize>,
    /// Last line, inclusive (default: the end).
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

/// A header (where, size, type, which lines), then the numbered lines as they are.
fn render(o: &Output) -> String {
    let at = if o.reference == o.commit {
        o.commit.clone()
    } else {
        format!("{} ({})", o.reference, o.commit)
    };
    let mut t = format!(
        "{}/{} at {at}, {} bytes, {}",
        o.repo, o.path, o.size, o.mime
    );
    if o.binary {
        t.push_str(", binary");
    }
    if let Some(target) = &o.symlink_target {
        let _ = write!(t, ", symlink to {target}");
    }
    match (o.start_line, o.end_line, o.total_lines) {
        (Some(a), Some(b), Some(n)) => {
            let _ = write!(t, ", lines {a}-{b} of {n}");
        }
        (_, _, Some(n)) => {
            let _ = write!(t, ", {}", text::count(n as u64, "line", "lines"));
        }
        _ => {}
    }
    if o.truncated {
        t.push_str(", truncated");
    }
    t.push('\n');
    if let Some(content) = &o.content {
        t.push_str(content);
    }
    if let Some(n) = o.next_start_line {
        let _ = writeln!(t, "more: pass start_line {n} to continue");
    }
    text::footer(&mut t, None, o.note.as_deref());
    t
}

pub struct ReadFile;

impl Tool for ReadFile {
    const NAME: &'static str = "read_file";
    const DESCRIPTION: &'static str = "Read a committed file (checked-out commit or `ref`, not the working copy) as numbered lines, optionally `start_line`..`end_line`. Capped at 100 KB at a line boundary (the answer says where to continue); binary files give only size and type.";
    type Args = Args;
    type Output = Output;

    fn render(out: &Output) -> String {
        render(out)
    }

    fn run(ctx: &Context, args: Args) -> Result<Output> {
        let path = tree_path(&clean_path(&args.path)?);
        if path.is_empty() {
            return Err(Error::input(
                "`path` names the repository root; call browse to list it, then read_file a file in it",
            ));
        }
        let start = check_range(args.start_line, args.end_line)?;
        let at = Lines {
            path,
            start,
            end: args.end_line,
        };
        match ctx.source(&args.repo)? {
            Source::Checkout(c) => checkout(&c, args.reference.as_deref(), at),
            Source::Remote(r) => remote(&r, args.reference.as_deref(), at),
        }
    }
}

/// The file and lines a call asks for, checked.
struct Lines {
    /// `/`-separated, not the root.
    path: String,
    start: usize,
    end: Option<usize>,
}

impl Output {
    /// The answer before its content is known: a text file unless found otherwise.
    fn new(repo: &str, at: &Lines, reference: String, commit: String, bytes: &[u8]) -> Output {
        Output {
            repo: repo.to_string(),
            path: at.path.clone(),
            reference,
            commit,
            size: bytes.len() as u64,
            binary: false,
            mime: String::new(),
            symlink: false,
            symlink_target: None,
            total_lines: None,
            start_line: None,
            end_line: None,
            content: None,
            truncated: false,
            next_start_line: None,
            note: None,
        }
    }

    /// The lines of a text file; `notes` come first in `note`, then the window's own.
    fn with_lines(mut self, bytes: &[u8], at: &Lines, notes: &[String]) -> Result<Output> {
        let w = window(bytes, &at.path, at.start, at.end)?;
        self.total_lines = Some(w.total_lines);
        self.start_line = w.start_line;
        self.end_line = w.end_line;
        self.content = Some(w.content);
        self.truncated = w.truncated;
        self.next_start_line = w.next_start_line;
        let all: Vec<&str> = w.notes.iter().chain(notes).map(String::as_str).collect();
        self.note = (!all.is_empty()).then(|| all.join("; "));
        Ok(self)
    }
}

fn checkout(c: &Checkout<'_>, reference: Option<&str>, at: Lines) -> Result<Output> {
    let resolved = c.resolve(reference)?;
    let label = resolved.label();
    let shown = &at.path;
    let (id, mode) = match c.at_path(resolved.commit, &label, std::path::Path::new(shown))? {
        AtPath::Blob { id, mode } => (id, mode),
        AtPath::Tree(_) => {
            return Err(Error::input(format!(
                "`{shown}` is a directory; call browse to list it"
            )));
        }
        AtPath::Submodule(id) => {
            return Err(Error::input(format!(
                "`{shown}` is a submodule pinned at {id}; its content is not part of this repository"
            )));
        }
    };
    let blob = c.git.find_blob(id).map_err(git_error)?;
    let bytes = blob.content();
    let mut out = Output::new(c.name(), &at, label, resolved.commit.to_string(), bytes);
    out.mime = guess_mime(shown, bytes);
    if mode == MODE_SYMLINK {
        out.symlink = true;
        out.mime = "inode/symlink".to_string();
        out.symlink_target = Some(cut_chars(&String::from_utf8_lossy(bytes), 1024));
        out.note = Some("this is a symbolic link; it is not followed. If its target is inside the repository, read_file that path".to_string());
        return Ok(out);
    }
    if is_binary(bytes) {
        out.binary = true;
        out.note = Some("binary file: content not shown".to_string());
        return Ok(out);
    }
    let fetched: Vec<String> = c.fetch_note().into_iter().collect();
    out.with_lines(bytes, &at, &fetched)
}

fn remote(r: &Remote<'_>, reference: Option<&str>, at: Lines) -> Result<Output> {
    let (branch, commit) = r.resolve(reference)?;
    let path = &at.path;
    let what = format!("`{path}` in `{}` at `{branch}`", r.name);
    let read = block_on(r.client.file(&r.id, &commit, path, MAX_BODY_BYTES))
        .map_err(|e| api_error(e, &what))?;
    let file = match read {
        FileRead::Content(f) => f,
        FileRead::NotAFile => {
            return Err(Error::input(format!(
                "`{path}` is a directory; call browse to list it"
            )));
        }
    };
    let bytes = &file.bytes;
    let mut out = Output::new(&r.name, &at, branch, commit, bytes);
    out.mime = file
        .content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .unwrap_or_else(|| "application/octet-stream".into());
    if is_binary(bytes) {
        out.binary = true;
        out.note = Some(format!("binary file: content not shown; {NOTE}"));
        return Ok(out);
    }
    let mut notes = vec![NOTE.to_string()];
    if file.truncated {
        notes.push(format!(
            "only the first {MAX_BODY_BYTES} bytes of the file were read"
        ));
    }
    out.with_lines(bytes, &at, &notes)
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
