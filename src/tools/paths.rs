//! Path confinement: every path a call names stays inside its repository.
//!
//! Tools read paths from git trees, where a lookup is byte-exact and never follows a symlink,
//! so confinement is mostly about refusing what could mislead (look-alike dots and slashes,
//! percent-encoding) and what is never answered (`.git` internals). [`working_copy_path`] is
//! for the rare reader of the working copy, where symlinks are real.

use std::path::{Component, Path, PathBuf};

use super::{Error, Kind, Result};

/// Characters that render like `.`, `/` or `\` but are not: refused so that a path that looks
/// like `../x` to a human reviewing a log never reaches a lookup. (Tree lookups are byte-exact
/// and would treat them as ordinary names anyway; they could not escape.)
const LOOKALIKES: &[char] = &[
    '\u{2024}', // one dot leader
    '\u{2025}', // two dot leader
    '\u{2026}', // horizontal ellipsis
    '\u{FE52}', // small full stop
    '\u{FF0E}', // fullwidth full stop
    '\u{3002}', // ideographic full stop
    '\u{FF61}', // halfwidth ideographic full stop
    '\u{2215}', // division slash
    '\u{2044}', // fraction slash
    '\u{29F8}', // big solidus
    '\u{FF0F}', // fullwidth solidus
    '\u{29F5}', // reverse solidus operator
    '\u{29F9}', // big reverse solidus
    '\u{FE68}', // small reverse solidus
    '\u{FF3C}', // fullwidth reverse solidus
    '\u{2216}', // set minus
];

/// A relative path, normalised (`.` and empty components dropped, `/` separators), that
/// cannot leave the repository. The empty path is the repository root.
///
/// Refused: absolute paths, `..`, NUL and control characters, backslashes, `.git` in any
/// case (and NTFS spellings of it such as `.git.` or `GIT~1`), look-alike dots and slashes,
/// and any of those hidden behind one level of percent-encoding (`%2e%2e%2f`). A literal
/// `%` that does not decode to anything dangerous is kept as it is.
pub fn clean_path(path: &str) -> Result<PathBuf> {
    let refuse = |why: &str| {
        Err(Error::input(format!(
            "path `{}` is refused: {why}. Paths are relative to the repository root, like `src/main.rs` (call browse to list a directory)",
            path.escape_debug()
        )))
    };
    if path.len() > 4096 {
        return refuse("it is longer than 4096 bytes");
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    for candidate in [path, decoded.as_ref()] {
        if candidate.contains('\0') || candidate.chars().any(char::is_control) {
            return refuse("it contains NUL or control characters");
        }
        if candidate.contains('\\') {
            return refuse("backslashes are not path separators here");
        }
        if candidate.contains(LOOKALIKES) {
            return refuse("it contains a character that looks like `.` or `/` but is not");
        }
        if candidate.starts_with('/') || candidate.starts_with('~') {
            return refuse("it must be relative to the repository root");
        }
        // Windows drive letters (`C:`) would be absolute on the platforms that have them.
        if candidate.len() >= 2 && candidate.as_bytes()[1] == b':' {
            return refuse("it must be relative to the repository root");
        }
        for comp in candidate.split('/') {
            if comp == ".." {
                return refuse("`..` would leave the repository");
            }
            if is_git_dir_name(comp) {
                return refuse("`.git` internals are not readable");
            }
        }
    }
    let mut out = PathBuf::new();
    for comp in Path::new(path).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            _ => return refuse("it must be relative and stay inside the repository"),
        }
    }
    Ok(out)
}

fn is_git_dir_name(comp: &str) -> bool {
    let trimmed = comp.trim_end_matches(['.', ' ']);
    trimmed.eq_ignore_ascii_case(".git") || trimmed.eq_ignore_ascii_case("git~1")
}

/// The path as git stores it in trees: `/`-separated, no leading `./`.
pub fn tree_path(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// For tools that read the working copy: the canonical on-disk path of a cleaned relative
/// path, refused when a symlink anywhere along it resolves outside the checkout.
pub fn working_copy_path(dir: &Path, name: &str, path: &Path) -> Result<PathBuf> {
    let root = dir.canonicalize().map_err(|e| {
        Error::new(
            Kind::NotCloned,
            format!("the checkout of `{name}` is unreadable: {e}"),
        )
        .with_source(e)
    })?;
    let full = root.join(path).canonicalize().map_err(|e| {
        Error::not_found(format!(
            "`{}` does not exist in the working copy of `{name}`",
            tree_path(path)
        ))
        .with_source(e)
    })?;
    let inside = full.strip_prefix(&root).ok();
    let escapes = inside.is_none_or(|rel| {
        rel.components()
            .any(|c| is_git_dir_name(&c.as_os_str().to_string_lossy()))
    });
    if escapes {
        return Err(Error::input(format!(
            "`{}` resolves outside the repository (through a symlink) and is not readable",
            tree_path(path)
        )));
    }
    Ok(full)
}
