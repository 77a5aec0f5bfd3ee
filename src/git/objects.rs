//! Commits and trees read from the object database as git parses them, and the errors of
//! the history modules.
//!
//! The walk and the diff read raw objects instead of `git2::Commit`/`git2::Tree` for three
//! reasons. A commit's date is git's `commit->date` (the committer timestamp parsed the way
//! `parse_commit_date` parses it, an unsigned number), which is what git orders and filters
//! by. A shallow commit's real parent ids are in its header even where libgit2 hides them
//! behind the shallow graft, and the walk must know them to say which history is missing
//! rather than take the boundary for a root. And parsing only the fields a walk needs, into
//! buffers the caller reuses, keeps a walk over thousands of commits free of per-commit
//! allocations.

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use git2::{ObjectType, Oid};

/// Why a history question could not be answered (or not completely).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The answer needs commits that a shallow clone does not have.
    #[error("{0}")]
    NeedsHistory(NeedsHistory),
    /// An object the answer needs is not in the repository (and not behind a shallow
    /// boundary): a damaged or partial clone.
    #[error("{what} {id} is not in the repository")]
    Missing { what: &'static str, id: Oid },
    /// An object git would refuse to parse.
    #[error("{what} {id} is malformed: {why}")]
    Corrupt {
        what: &'static str,
        id: Oid,
        why: &'static str,
    },
    /// A hex prefix that names no object, or a name that names no commit.
    #[error("`{0}` does not name a commit in this repository")]
    NotFound(String),
    /// A hex prefix shared by more than one object git would accept.
    #[error("`{prefix}` is ambiguous: it is the start of {}", describe(.candidates))]
    Ambiguous {
        prefix: String,
        /// Every object starting with the prefix, with its type, in id order.
        candidates: Vec<(Oid, ObjectType)>,
    },
    /// An object that is not a commit where a commit is needed (`git rev-parse X^{commit}`).
    #[error("`{spec}` names a {kind}, not a commit")]
    NotACommit { spec: String, kind: ObjectType },
    /// `NAME~N`/`NAME^N` walked past the start of history or asked for a parent the commit
    /// does not have.
    #[error("`{spec}`: commit {at} has no parent {parent}")]
    NoSuchParent {
        spec: String,
        at: Oid,
        parent: usize,
    },
    /// Revision syntax outside what [`crate::git::rev`] accepts, or a malformed path.
    #[error("`{input}`: {why}")]
    Syntax { input: String, why: String },
    /// libgit2 failed to read the object database.
    #[error("reading the repository: {0}")]
    Git(#[from] git2::Error),
}

fn describe(candidates: &[(Oid, ObjectType)]) -> String {
    let list: Vec<String> = candidates
        .iter()
        .map(|(id, kind)| format!("{kind} {id}"))
        .collect();
    list.join(", ")
}

/// The walk reached commits whose parents are not in the repository (a shallow clone's
/// boundary, the commits `.git/shallow` lists) before it could finish the answer. What was
/// decided before that point is returned with it; deepen the clone and ask again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsHistory {
    /// Commits whose parents are missing and which the answer needs to look past, in the
    /// order the walk reached them (the first one stopped it).
    pub boundary: Vec<Oid>,
    /// How many more commits the answer still wants (`None`: everything to the start of
    /// history, as a walk without a limit does).
    pub wanted: Option<usize>,
    /// A lower bound on how many commits beyond the boundary must be fetched before the
    /// answer can be complete: at least one, and at least the wanted count less the boundary
    /// commit itself.
    pub at_least: usize,
}

impl NeedsHistory {
    pub(crate) fn new(boundary: Vec<Oid>, wanted: Option<usize>) -> Self {
        let at_least = wanted.map_or(1, |w| w.saturating_sub(1).max(1));
        NeedsHistory {
            boundary,
            wanted,
            at_least,
        }
    }
}

impl fmt::Display for NeedsHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self
            .boundary
            .first()
            .map_or_else(String::new, |id| format!(" at {id}"));
        write!(
            f,
            "the clone's history stops{first} (a shallow boundary); at least {} more commit(s) are needed",
            self.at_least
        )
    }
}

impl From<HistoryError> for crate::Error {
    fn from(e: HistoryError) -> Self {
        let message = e.to_string();
        let out = match &e {
            HistoryError::NeedsHistory(_) => crate::Error::failure(message)
                .with_hint("deepen the clone (git fetch --deepen) and ask again"),
            HistoryError::Missing { .. } | HistoryError::Corrupt { .. } | HistoryError::Git(_) => {
                crate::Error::failure(message)
            }
            HistoryError::NotFound(_) | HistoryError::NoSuchParent { .. } => {
                crate::Error::not_found(message)
            }
            HistoryError::Ambiguous { .. } => {
                crate::Error::input(message).with_hint("give more hex digits of the commit id")
            }
            HistoryError::NotACommit { .. } | HistoryError::Syntax { .. } => {
                crate::Error::input(message)
            }
        };
        out.with_source(e)
    }
}

pub(crate) const S_IFMT: u32 = 0o170000;
pub(crate) const S_IFREG: u32 = 0o100000;
pub(crate) const S_IFDIR: u32 = 0o040000;
pub(crate) const S_IFLNK: u32 = 0o120000;
pub(crate) const S_IFGITLINK: u32 = 0o160000;

/// git's `canon_mode`: the mode a tree entry is compared and shown with (a regular file is
/// 100755 when its owner-execute bit is set and 100644 otherwise; anything unknown is a
/// gitlink).
pub(crate) fn canon_mode(mode: u32) -> u32 {
    match mode & S_IFMT {
        S_IFREG => S_IFREG | if mode & 0o100 != 0 { 0o755 } else { 0o644 },
        S_IFLNK => S_IFLNK,
        S_IFDIR => S_IFDIR,
        _ => S_IFGITLINK,
    }
}

pub(crate) fn is_dir(mode: u32) -> bool {
    mode & S_IFMT == S_IFDIR
}

pub(crate) fn is_reg(mode: u32) -> bool {
    mode & S_IFMT == S_IFREG
}

/// Reads raw objects; a missing object is `None`, not an error, because on a shallow clone
/// it is an expected answer.
pub(crate) struct Objects<'r> {
    odb: git2::Odb<'r>,
}

impl<'r> Objects<'r> {
    pub(crate) fn new(repo: &'r git2::Repository) -> Result<Self, HistoryError> {
        Ok(Objects { odb: repo.odb()? })
    }

    pub(crate) fn read(&self, id: Oid) -> Result<Option<git2::OdbObject<'_>>, HistoryError> {
        match self.odb.read(id) {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn exists(&self, id: Oid) -> bool {
        self.odb.exists(id)
    }

    /// The size and type of an object without loading it (`None`: missing).
    pub(crate) fn header(&self, id: Oid) -> Result<Option<(usize, ObjectType)>, HistoryError> {
        match self.odb.read_header(id) {
            Ok(h) => Ok(Some(h)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn odb(&self) -> &git2::Odb<'r> {
        &self.odb
    }

    /// Reads a tree, or fails: trees of commits that are present are never legitimately
    /// missing, even in a shallow clone.
    pub(crate) fn tree(&self, id: Oid) -> Result<git2::OdbObject<'_>, HistoryError> {
        let obj = self
            .read(id)?
            .ok_or(HistoryError::Missing { what: "tree", id })?;
        if obj.kind() != ObjectType::Tree {
            return Err(HistoryError::Corrupt {
                what: "tree",
                id,
                why: "the object is not a tree",
            });
        }
        Ok(obj)
    }

    /// Follows tags to the commit they point at; `None` when the object (or the one a tag
    /// names) is missing.
    pub(crate) fn peel_to_commit(&self, mut id: Oid) -> Result<Option<Oid>, HistoryError> {
        for _ in 0..64 {
            let Some(obj) = self.read(id)? else {
                return Ok(None);
            };
            match obj.kind() {
                ObjectType::Commit => return Ok(Some(id)),
                ObjectType::Tag => {
                    id = tag_target(obj.data()).ok_or(HistoryError::Corrupt {
                        what: "tag",
                        id,
                        why: "no `object` line",
                    })?;
                }
                kind => {
                    return Err(HistoryError::NotACommit {
                        spec: id.to_string(),
                        kind,
                    });
                }
            }
        }
        Err(HistoryError::Corrupt {
            what: "tag",
            id,
            why: "tags nest too deeply",
        })
    }
}

fn tag_target(data: &[u8]) -> Option<Oid> {
    let rest = data.strip_prefix(b"object ")?;
    parse_hex_oid(rest.get(..40)?)
}

pub(crate) fn parse_hex_oid(hex: &[u8]) -> Option<Oid> {
    if hex.len() != 40 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Oid::from_str(std::str::from_utf8(hex).ok()?).ok()
}

/// The fields of a commit the history modules use. `parents` go to a buffer the caller owns.
#[derive(Debug, Clone)]
pub(crate) struct CommitHeader {
    pub tree: Oid,
    /// git's `commit->date`: see [`parse_commit_date`].
    pub date: u64,
    /// Where `Name <email>` of the author line is in the object (what `git log --author`
    /// matches against: the line after `author `, cut after the last `>`).
    pub author: std::ops::Range<usize>,
}

/// Parses a commit as git's `parse_commit_buffer` does: `tree` must come first, the
/// `parent` lines follow it, and the date is read from the line after the author line.
pub(crate) fn parse_commit(
    id: Oid,
    data: &[u8],
    parents: &mut Vec<Oid>,
) -> Result<CommitHeader, HistoryError> {
    let bad = |why| HistoryError::Corrupt {
        what: "commit",
        id,
        why,
    };
    let rest = data.strip_prefix(b"tree ").ok_or(bad("no tree line"))?;
    if rest.get(40) != Some(&b'\n') {
        return Err(bad("bad tree line"));
    }
    let tree = parse_hex_oid(&rest[..40]).ok_or(bad("bad tree id"))?;
    let mut pos = 5 + 41;
    while let Some(line) = data[pos..].strip_prefix(b"parent ") {
        if line.get(40) != Some(&b'\n') {
            return Err(bad("bad parent line"));
        }
        parents.push(parse_hex_oid(&line[..40]).ok_or(bad("bad parent id"))?);
        pos += 7 + 41;
    }
    let date = parse_commit_date(&data[pos..]);
    Ok(CommitHeader {
        tree,
        date,
        author: author_ident(data),
    })
}

/// git's `parse_commit_date`: the number after the last `>` of the committer line, which
/// must directly follow the author line; 0 when the commit does not have that shape. The
/// number is read as `strtoumax` reads it, so a negative date wraps to a huge one, as in git.
pub(crate) fn parse_commit_date(buf: &[u8]) -> u64 {
    if buf.len() <= 6 || !buf.starts_with(b"author") {
        return 0;
    }
    let Some(nl) = buf.iter().position(|&c| c == b'\n') else {
        return 0;
    };
    let buf = &buf[nl + 1..];
    if buf.len() <= 9 || !buf.starts_with(b"committer") {
        return 0;
    }
    let Some(eol) = buf.iter().position(|&c| c == b'\n') else {
        return 0;
    };
    let Some(gt) = buf[..eol].iter().rposition(|&c| c == b'>') else {
        return 0;
    };
    let mut p = gt + 1;
    // git's isspace: space, \t, \n, \v, \f, \r.
    while p < eol && matches!(buf[p], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        p += 1;
    }
    let Some(&first) = buf.get(p) else { return 0 };
    if !first.is_ascii_digit() && first != b'-' {
        return 0;
    }
    let negative = first == b'-';
    if negative {
        p += 1;
    }
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(d) = buf.get(p).filter(|c| c.is_ascii_digit()) {
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
        p += 1;
    }
    if overflow {
        u64::MAX
    } else if negative {
        value.wrapping_neg()
    } else {
        value
    }
}

/// The `Name <email>` part of the first header line starting with `author `: what git's
/// header grep sees after `strip_timestamp`. Empty when there is none.
fn author_ident(data: &[u8]) -> std::ops::Range<usize> {
    let mut pos = 0;
    while pos < data.len() {
        let end = data[pos..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(data.len(), |i| pos + i);
        let line = &data[pos..end];
        if line.is_empty() {
            break; // end of the header
        }
        if let Some(rest) = line.strip_prefix(b"author ") {
            let start = pos + 7;
            // strip_timestamp: cut after the last '>' that is not the line's first byte.
            let cut = rest
                .iter()
                .enumerate()
                .skip(1)
                .rev()
                .find(|(_, c)| **c == b'>')
                .map_or(rest.len(), |(i, _)| i + 1);
            return start..start + cut;
        }
        pos = end + 1;
    }
    0..0
}

/// One entry of a raw tree object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeEntry<'a> {
    /// The mode canonicalized as git compares it ([`canon_mode`]).
    pub mode: u32,
    pub name: &'a [u8],
    pub id: Oid,
}

/// The entries of a raw tree object, in stored order.
pub(crate) struct TreeEntries<'a> {
    data: &'a [u8],
    id: Oid,
}

pub(crate) fn tree_entries(id: Oid, data: &[u8]) -> TreeEntries<'_> {
    TreeEntries { data, id }
}

impl<'a> Iterator for TreeEntries<'a> {
    type Item = Result<TreeEntry<'a>, HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let bad = |why| {
            Some(Err(HistoryError::Corrupt {
                what: "tree",
                id: self.id,
                why,
            }))
        };
        let Some(sp) = self.data.iter().position(|&c| c == b' ') else {
            return bad("entry without a mode");
        };
        let mut mode: u32 = 0;
        if sp == 0 || sp > 7 {
            return bad("malformed mode");
        }
        for &c in &self.data[..sp] {
            if !(b'0'..=b'7').contains(&c) {
                return bad("malformed mode");
            }
            mode = (mode << 3) | u32::from(c - b'0');
        }
        let rest = &self.data[sp + 1..];
        let Some(nul) = rest.iter().position(|&c| c == 0) else {
            return bad("entry without a name end");
        };
        if nul == 0 {
            return bad("empty file name");
        }
        let Some(raw) = rest.get(nul + 1..nul + 21) else {
            return bad("truncated entry");
        };
        let Ok(id) = Oid::from_bytes(raw) else {
            return bad("truncated entry");
        };
        let entry = TreeEntry {
            mode: canon_mode(mode),
            name: &rest[..nul],
            id,
        };
        self.data = &rest[nul + 21..];
        Some(Ok(entry))
    }
}

/// A hasher for maps keyed by object ids: the id is already a uniform hash, so its first
/// eight bytes are a good enough key and far cheaper than SipHash.
#[derive(Default)]
pub(crate) struct OidHasher(u64);

impl Hasher for OidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = self.0.rotate_left(5) ^ u64::from(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = self.0.rotate_left(5) ^ n as u64;
    }
}

pub(crate) type OidMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<OidHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_dates_parse_as_git_parses_them() {
        let c =
            |line: &str| parse_commit_date(format!("author A <a> 1 +0000\n{line}\n").as_bytes());
        assert_eq!(c("committer C <c> 1700000000 +0100"), 1_700_000_000);
        assert_eq!(c("committer C <c>   42"), 42);
        assert_eq!(c("committer C <c> -1 +0000"), u64::MAX);
        assert_eq!(c("committer C <c> nope"), 0);
        assert_eq!(c("committer C c 5"), 0);
        assert_eq!(c("committer C <c> 99999999999999999999999"), u64::MAX);
        assert_eq!(parse_commit_date(b"committer C <c> 5\n"), 0);
    }

    #[test]
    fn the_author_ident_stops_at_the_last_angle_bracket() {
        let data = b"tree x\nauthor Jane Doe <jane@x> 1 +0000\ncommitter C <c> 1 +0000\n\nauthor Mallory <m>\n";
        let r = author_ident(data);
        assert_eq!(&data[r], b"Jane Doe <jane@x>");
        let none = b"tree x\ncommitter C <c> 1 +0000\n\nauthor M <m> 1\n";
        assert!(author_ident(none).is_empty());
    }

    #[test]
    fn modes_are_canonical() {
        assert_eq!(canon_mode(0o100664), 0o100644);
        assert_eq!(canon_mode(0o100755), 0o100755);
        assert_eq!(canon_mode(0o120000), 0o120000);
        assert_eq!(canon_mode(0o40000), 0o40000);
        assert_eq!(canon_mode(0o160000), 0o160000);
        assert_eq!(canon_mode(0o777), 0o160000);
    }
}
