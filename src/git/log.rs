//! The commits `git log` shows, in git's order.
//!
//! [`log`] equals, for tips `T…` and a [`LogQuery`],
//!
//! ```text
//! git log --no-mailmap --format=%H [--skip=S] [-n N] [--since=@SINCE] [--until=@UNTIL] \
//!         [-i --fixed-strings --author=AUTHOR] T… [-- ':(literal)PATH'…]
//! ```
//!
//! and is a port of what revision.c does for that command (no option there makes the walk
//! "limited", so commits are decided one at a time as they come off the queue):
//!
//! - **Order.** A queue sorted by committer date, newest first; a commit joins it *after*
//!   every queued commit of the same or a newer date (`commit_list_insert_by_date`), so among
//!   equal dates the one queued first comes out first. Tips are queued in the order given,
//!   parents in their order in the commit.
//! - **Dates** are git's `commit->date`: the committer timestamp, read as git reads it.
//!   `since` and `until` compare with it, as `--since`/`--until` do (not the author date).
//!   A commit older than `since` is dropped *without queueing its parents*, so the walk does
//!   not go past it on that line even where an older-dated commit has newer-dated parents
//!   (clock skew); `until` only hides commits.
//! - **Author** is a case-insensitive substring of the author's `Name <email>`, as `git log
//!   -i --fixed-strings --author=` matches it with mailmap off (`--no-mailmap`). Letters beyond
//!   ASCII fold by Unicode lowercase, as git's grep folds them (PCRE2).
//! - **Paths** switch on git's default history simplification (`prune`, `dense`,
//!   `simplify_history`): a commit is TREESAME to a parent when every path has the same entry
//!   (id and mode, or absent) in both trees. A commit TREESAME to one of its parents is hidden
//!   and the walk follows only the first such parent; a merge that differs from every parent
//!   is shown and all parents are followed; a root commit is shown when it has any of the
//!   paths. Paths are literal (no globs) and name a file, a directory or a submodule.
//! - **Skip and limit** apply to the commits shown, as `--skip` and `-n`; the walk stops as
//!   soon as the limit is reached.
//!
//! On a shallow clone git takes the boundary commits for roots. This walk does not guess:
//! when it needs the parents of a commit whose parents are missing, it stops and returns the
//! commits it could decide with [`LogEnd::NeedsHistory`]. A commit older than `since`, or a
//! merge simplified to a parent that is present, does not need the missing ones.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use git2::Oid;

use super::objects::{HistoryError, NeedsHistory, Objects, OidMap, parse_commit, tree_entries};

/// What to select from history; the default selects everything.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only commits that change one of these paths (`/`-separated, relative to the root, no
    /// leading or trailing `/`, no `.` or `..` components).
    pub paths: Vec<String>,
    /// Only commits whose author `Name <email>` contains this, ignoring case.
    pub author: Option<String>,
    /// Only commits with a committer date at or after this (seconds since the epoch).
    pub since: Option<i64>,
    /// Only commits with a committer date at or before this (seconds since the epoch).
    pub until: Option<i64>,
    /// Leave out this many of the commits that would be shown first.
    pub skip: usize,
    /// Show at most this many commits.
    pub limit: Option<usize>,
    /// Stop after taking this many commits off the queue (a bound on the work of one call).
    pub max_walk: Option<usize>,
}

/// The commits `git log` shows, and why the list ends where it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub commits: Vec<Oid>,
    pub end: LogEnd,
    /// Commits taken off the queue (decided) by the walk.
    pub walked: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// The walk reached the start of history: there is nothing more.
    Complete,
    /// `limit` commits were shown; there may be more.
    Limit,
    /// `max_walk` commits were looked at; there may be more.
    WalkCapped,
    /// The walk reached a shallow boundary it had to look past; `commits` is what it could
    /// decide before it.
    NeedsHistory(NeedsHistory),
}

const SEEN: u8 = 1;
const TREESAME: u8 = 2;

struct Node {
    id: Oid,
    tree: Oid,
    date: u64,
    /// Range in `Walk::parent_ids`.
    parents: (u32, u32),
    flags: u8,
    author_ok: bool,
}

/// A queued commit: newest date first, then first queued first.
#[derive(PartialEq, Eq)]
struct Queued {
    date: u64,
    seq: u64,
    node: u32,
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        self.date
            .cmp(&other.date)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An entry at a path: (id, canonical mode).
type Entry = Option<(Oid, u32)>;

struct Walk<'r> {
    objects: Objects<'r>,
    nodes: Vec<Node>,
    index: OidMap<Oid, u32>,
    parent_ids: Vec<Oid>,
    queue: BinaryHeap<Queued>,
    seq: u64,
    /// Each path split into components.
    paths: Vec<Vec<Vec<u8>>>,
    /// (path, depth, tree at that depth) → the entry the path names below that tree.
    entries: OidMap<(u32, u32, Oid), Entry>,
    author: Option<AuthorMatch>,
    scratch: Vec<Oid>,
    visited: Vec<(u32, u32, Oid)>,
}

/// Lists the commits `git log` shows from `tips` for `query` (see the module docs for the
/// exact command). Tips that are tags are followed to their commits.
pub fn log(repo: &git2::Repository, tips: &[Oid], query: &LogQuery) -> Result<Log, HistoryError> {
    let mut walk = Walk {
        objects: Objects::new(repo)?,
        nodes: Vec::new(),
        index: OidMap::default(),
        parent_ids: Vec::new(),
        queue: BinaryHeap::new(),
        seq: 0,
        paths: query
            .paths
            .iter()
            .map(|p| split_path(p))
            .collect::<Result<_, _>>()?,
        entries: OidMap::default(),
        author: query.author.as_deref().map(AuthorMatch::new),
        scratch: Vec::new(),
        visited: Vec::new(),
    };
    walk.run(tips, query)
}

/// Splits a literal path into its components, refusing what git would not take literally.
pub(crate) fn split_path(path: &str) -> Result<Vec<Vec<u8>>, HistoryError> {
    let bad = |why: &str| HistoryError::Syntax {
        input: path.to_string(),
        why: why.to_string(),
    };
    if path.is_empty() {
        return Err(bad("a path must not be empty"));
    }
    if path.starts_with('/') || path.ends_with('/') {
        return Err(bad(
            "a path is relative to the repository root, without a leading or trailing `/`",
        ));
    }
    path.split('/')
        .map(|c| match c {
            "" => Err(bad("a path must not contain `//`")),
            "." | ".." => Err(bad("a path must not contain `.` or `..` components")),
            c => Ok(c.as_bytes().to_vec()),
        })
        .collect()
}

/// What processing a commit's parents found.
enum Parents {
    Done,
    /// A parent needed to decide whether the commit is shown is missing.
    Undecided,
    /// The commit is decided but a parent to queue is missing.
    Stop,
}

impl<'r> Walk<'r> {
    fn run(&mut self, tips: &[Oid], q: &LogQuery) -> Result<Log, HistoryError> {
        let mut out = Vec::new();
        let mut skipped = 0;
        let mut walked = 0;
        if q.limit == Some(0) {
            return Ok(Log {
                commits: out,
                end: LogEnd::Limit,
                walked,
            });
        }
        // prepare_revision_walk: tips in command-line order, sorted stably by date; the
        // sequence numbers keep their order among equal dates.
        for &tip in tips {
            let id = self
                .objects
                .peel_to_commit(tip)?
                .ok_or(HistoryError::Missing {
                    what: "commit",
                    id: tip,
                })?;
            let node = self
                .node(id)?
                .ok_or(HistoryError::Missing { what: "commit", id })?;
            self.push(node);
        }
        let wanted = |shown: usize| {
            q.limit
                .map(|l| l.saturating_add(q.skip).saturating_sub(shown))
        };
        while let Some(Queued { node, .. }) = self.queue.pop() {
            if q.max_walk.is_some_and(|m| walked >= m) {
                return Ok(Log {
                    commits: out,
                    end: LogEnd::WalkCapped,
                    walked,
                });
            }
            walked += 1;
            let date = self.nodes[node as usize].date;
            if q.since.is_some_and(|s| i128::from(date) < i128::from(s)) {
                continue;
            }
            let parents = self.process_parents(node)?;
            if let Parents::Undecided = parents {
                let needs = self.needs_history(node, wanted(skipped + out.len()))?;
                return Ok(Log {
                    commits: out,
                    end: LogEnd::NeedsHistory(needs),
                    walked,
                });
            }
            if self.shown(node, q) {
                if skipped < q.skip {
                    skipped += 1;
                } else {
                    out.push(self.nodes[node as usize].id);
                }
            }
            if q.limit.is_some_and(|l| out.len() >= l) {
                return Ok(Log {
                    commits: out,
                    end: LogEnd::Limit,
                    walked,
                });
            }
            if let Parents::Stop = parents {
                let needs = self.needs_history(node, wanted(skipped + out.len()))?;
                return Ok(Log {
                    commits: out,
                    end: LogEnd::NeedsHistory(needs),
                    walked,
                });
            }
        }
        Ok(Log {
            commits: out,
            end: LogEnd::Complete,
            walked,
        })
    }

    /// `get_commit_action` for this walk's options.
    fn shown(&self, node: u32, q: &LogQuery) -> bool {
        let n = &self.nodes[node as usize];
        if q.until.is_some_and(|u| i128::from(n.date) > i128::from(u)) {
            return false;
        }
        if !n.author_ok {
            return false;
        }
        self.paths.is_empty() || n.flags & TREESAME == 0
    }

    /// `process_parents` with `try_to_simplify_commit`: decide TREESAME, then queue the
    /// parents the walk follows.
    fn process_parents(&mut self, node: u32) -> Result<Parents, HistoryError> {
        let (start, len) = self.nodes[node as usize].parents;
        let mut follow = start..start + len;
        if !self.paths.is_empty() {
            let tree = self.nodes[node as usize].tree;
            if len == 0 {
                if self.all_absent(tree)? {
                    self.nodes[node as usize].flags |= TREESAME;
                }
            } else {
                for i in start..start + len {
                    let Some(parent) = self.node(self.parent_ids[i as usize])? else {
                        return Ok(Parents::Undecided);
                    };
                    let parent_tree = self.nodes[parent as usize].tree;
                    if self.same_paths(parent_tree, tree)? {
                        // TREESAME to this parent: follow it alone; the commit is hidden.
                        self.nodes[node as usize].flags |= TREESAME;
                        follow = i..i + 1;
                        break;
                    }
                }
            }
        }
        for i in follow {
            let Some(parent) = self.node(self.parent_ids[i as usize])? else {
                return Ok(Parents::Stop);
            };
            if self.nodes[parent as usize].flags & SEEN == 0 {
                self.push(parent);
            }
        }
        Ok(Parents::Done)
    }

    fn push(&mut self, node: u32) {
        let n = &mut self.nodes[node as usize];
        if n.flags & SEEN != 0 {
            return;
        }
        n.flags |= SEEN;
        self.queue.push(Queued {
            date: n.date,
            seq: self.seq,
            node,
        });
        self.seq += 1;
    }

    /// The node of a commit, parsing it the first time; `None` when it is not in the
    /// repository.
    fn node(&mut self, id: Oid) -> Result<Option<u32>, HistoryError> {
        if let Some(&n) = self.index.get(&id) {
            return Ok(Some(n));
        }
        let Some(obj) = self.objects.read(id)? else {
            return Ok(None);
        };
        if obj.kind() != git2::ObjectType::Commit {
            return Err(HistoryError::NotACommit {
                spec: id.to_string(),
                kind: obj.kind(),
            });
        }
        let data = obj.data();
        let start = self.parent_ids.len() as u32;
        let header = parse_commit(id, data, &mut self.parent_ids)?;
        let len = self.parent_ids.len() as u32 - start;
        let author_ok = self
            .author
            .as_ref()
            .is_none_or(|a| a.matches(&data[header.author.clone()]));
        let n = self.nodes.len() as u32;
        self.nodes.push(Node {
            id,
            tree: header.tree,
            date: header.date,
            parents: (start, len),
            flags: 0,
            author_ok,
        });
        self.index.insert(id, n);
        Ok(Some(n))
    }

    /// The commit that stopped the walk, then every other queued commit with a missing
    /// parent, in queue order.
    fn needs_history(
        &mut self,
        stopped: u32,
        wanted: Option<usize>,
    ) -> Result<NeedsHistory, HistoryError> {
        let mut boundary = vec![self.nodes[stopped as usize].id];
        let mut queued: Vec<&Queued> = self.queue.iter().collect();
        queued.sort_by(|a, b| b.cmp(a));
        for q in queued {
            let n = &self.nodes[q.node as usize];
            let (start, len) = n.parents;
            let missing = self.parent_ids[start as usize..(start + len) as usize]
                .iter()
                .any(|p| !self.index.contains_key(p) && !self.objects.exists(*p));
            if missing {
                boundary.push(n.id);
            }
        }
        Ok(NeedsHistory::new(boundary, wanted))
    }

    fn all_absent(&mut self, tree: Oid) -> Result<bool, HistoryError> {
        for p in 0..self.paths.len() as u32 {
            if self.entry(tree, p)?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn same_paths(&mut self, a: Oid, b: Oid) -> Result<bool, HistoryError> {
        if a == b {
            return Ok(true);
        }
        for p in 0..self.paths.len() as u32 {
            if self.entry(a, p)? != self.entry(b, p)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The entry path `p` names in `root`, remembered per subtree so that a subtree shared by
    /// many commits is read once.
    fn entry(&mut self, root: Oid, p: u32) -> Result<Entry, HistoryError> {
        self.scratch.clear();
        self.visited.clear();
        let depth_max = self.paths[p as usize].len() as u32;
        let mut tree = root;
        let mut result: Entry = None;
        let mut depth = 0;
        loop {
            let key = (p, depth, tree);
            if let Some(&known) = self.entries.get(&key) {
                result = known;
                break;
            }
            self.visited.push(key);
            let obj = self.objects.tree(tree)?;
            let name = &self.paths[p as usize][depth as usize];
            let mut found = None;
            for e in tree_entries(tree, obj.data()) {
                let e = e?;
                if e.name == name.as_slice() {
                    found = Some((e.id, e.mode));
                    break;
                }
            }
            match found {
                Some((id, mode)) if depth + 1 < depth_max => {
                    if super::objects::is_dir(mode) {
                        tree = id;
                        depth += 1;
                    } else {
                        break;
                    }
                }
                found => {
                    result = found;
                    break;
                }
            }
        }
        for key in self.visited.drain(..) {
            self.entries.insert(key, result);
        }
        Ok(result)
    }
}

/// `-i --fixed-strings --author=NEEDLE`.
struct AuthorMatch {
    needle: Vec<u8>,
    ascii: bool,
    lower: String,
}

impl AuthorMatch {
    fn new(needle: &str) -> Self {
        AuthorMatch {
            needle: needle.as_bytes().to_ascii_lowercase(),
            ascii: needle.is_ascii(),
            lower: needle.to_lowercase(),
        }
    }

    fn matches(&self, ident: &[u8]) -> bool {
        if self.needle.is_empty() {
            return true;
        }
        if self.ascii && ident.is_ascii() {
            return ident
                .windows(self.needle.len())
                .any(|w| w.eq_ignore_ascii_case(&self.needle));
        }
        String::from_utf8_lossy(ident)
            .to_lowercase()
            .contains(&self.lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_dates_come_out_in_queue_order() {
        let mut h = BinaryHeap::new();
        for (seq, date) in [(0, 5), (1, 7), (2, 5), (3, 7)] {
            h.push(Queued {
                date,
                seq,
                node: seq as u32,
            });
        }
        let order: Vec<u32> = std::iter::from_fn(|| h.pop().map(|q| q.node)).collect();
        assert_eq!(order, [1, 3, 0, 2]);
    }

    #[test]
    fn paths_are_literal_and_relative() {
        assert_eq!(split_path("a/b").unwrap(), [b"a".to_vec(), b"b".to_vec()]);
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a"] {
            assert!(split_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn author_matching_ignores_case() {
        let m = AuthorMatch::new("JANE <j");
        assert!(m.matches(b"jane <jane@x>"));
        assert!(!m.matches(b"Jane Doe <jane@x>"));
        let u = AuthorMatch::new("élodie");
        assert!(u.matches("Élodie <e@x>".as_bytes()));
    }
}
