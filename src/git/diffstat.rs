//! One commit's changes as git lists them, with git's rename detection.
//!
//! [`diff_commit`] equals, field by field (status, paths, modes, ids, rename score, line
//! counts, binary),
//!
//! ```text
//! git diff-tree -r -M --raw --numstat -z <first-parent> <commit>    # a commit with parents
//! git diff-tree -r -M --raw --numstat -z --root <commit>            # a root commit
//! ```
//!
//! (the first parent also for merges; `diff.renameLimit` and `core.bigFileThreshold` are read
//! from the repository's config as diff-tree reads them). It is a port of git's tree diff and
//! `diffcore-rename.c`:
//!
//! - **Pairs.** Both trees are walked in git's tree order (a directory sorts as its name
//!   followed by `/`), descending into subtrees whose ids differ. A path that is a file on one
//!   side and a directory on the other is a deletion plus additions; a file that becomes a
//!   symlink or a submodule is one type change (`T`); a mode change is a modification.
//! - **Renames** pair deletions (sources) with additions (destinations), in this order: exact
//!   renames (same blob id; non-regular files also need the same mode; among several sources
//!   the first unused one wins, one with the same basename first, at most 100 looked at);
//!   then files whose basename is unique among the remaining sources and among the remaining
//!   destinations, paired when at least 75 % similar (git ≥ 2.33); then, unless remaining
//!   destinations × sources exceed `diff.renameLimit`² (default 1000²), every remaining pair
//!   scored by [`super::similarity`], the best four sources kept per destination, all sorted
//!   by score then same-basename (ties keep destination order), and taken greedily from the
//!   top while at least 50 %. A rename is listed where its destination is; its deletion goes.
//!   Empty files take part, as in git (`rename_empty` is on for diff-tree).
//! - **Line counts** are xdiff's (libgit2 carries git's xdiff: Myers, indent heuristic) on the
//!   raw blob contents; a submodule side is the text `Subproject commit <id>`. A side is
//!   binary when its first 8000 bytes hold a NUL or it is larger than
//!   `core.bigFileThreshold`; a pair with a binary side has no counts (`-<TAB>-` in numstat),
//!   even when only renamed. `.gitattributes` (`binary`, `-diff`, `diff=` drivers) is not
//!   consulted: this is git's answer for paths without such attributes. Nor is a
//!   submodule's `ignore` setting in `.gitmodules` (git would hide that submodule's bump).
//!
//! [`write_patch`] renders the same changes as `git diff-tree -r -M -p` does (type changes as
//! a deletion and an addition, git's headers and path quoting, hunk headers with git's default
//! function-name rule), cut at a byte cap on a line boundary.

use git2::{ObjectType, Oid};

use super::objects::{
    HistoryError, NeedsHistory, Objects, OidMap, S_IFGITLINK, S_IFMT, is_dir, is_reg, parse_commit,
    tree_entries,
};
use super::similarity::{self, DEFAULT_RENAME_SCORE, MAX_SCORE, Spans};

/// The knobs of git's diff that come from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffOptions {
    /// `diff.renameLimit` (git's default 1000; 0: no limit).
    pub rename_limit: u64,
    /// `core.bigFileThreshold`: larger blobs are binary without being read (default 512 MiB).
    pub big_file_threshold: u64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            rename_limit: 1000,
            big_file_threshold: 512 * 1024 * 1024,
        }
    }
}

impl DiffOptions {
    /// The options git would use in this repository (its config, then the user's and the
    /// system's, as libgit2 finds them).
    pub fn from_config(repo: &git2::Repository) -> Self {
        let mut opts = DiffOptions::default();
        if let Ok(cfg) = repo.config() {
            if let Ok(n) = cfg.get_i64("diff.renameLimit") {
                opts.rename_limit = u64::try_from(n).unwrap_or(0);
            }
            if let Ok(n) = cfg.get_i64("core.bigFileThreshold") {
                opts.big_file_threshold = u64::try_from(n).unwrap_or(0);
            }
        }
        opts
    }
}

/// What happened to a path, as git's status letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `A`
    Added,
    /// `D`
    Deleted,
    /// `M`: content or mode changed.
    Modified,
    /// `R`: moved, possibly also edited; `score` says how similar.
    Renamed,
    /// `T`: between regular file, symlink and submodule.
    TypeChanged,
}

impl Status {
    pub fn letter(self) -> char {
        match self {
            Status::Added => 'A',
            Status::Deleted => 'D',
            Status::Modified => 'M',
            Status::Renamed => 'R',
            Status::TypeChanged => 'T',
        }
    }
}

/// One side of a change: the object and its mode (100644, 100755, 120000 symlink, 160000
/// submodule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub id: Oid,
    pub mode: u32,
}

impl Side {
    pub fn is_submodule(&self) -> bool {
        self.mode & S_IFMT == S_IFGITLINK
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub status: Status,
    /// The path before, for a rename.
    pub old_path: Option<Vec<u8>>,
    /// The path after (for a deletion: the deleted path).
    pub path: Vec<u8>,
    /// Before (absent for an addition).
    pub old: Option<Side>,
    /// After (absent for a deletion).
    pub new: Option<Side>,
    /// For a rename: git's similarity score, 0 to [`MAX_SCORE`]; see [`FileChange::similarity`].
    pub score: u32,
    pub additions: u64,
    pub deletions: u64,
    /// A side is binary: no line counts (numstat's `-<TAB>-`).
    pub binary: bool,
}

impl FileChange {
    /// The similarity percentage git shows (`R087`, `similarity index 87%`).
    pub fn similarity(&self) -> u32 {
        (f64::from(self.score) * 100.0 / f64::from(MAX_SCORE)) as u32
    }
    /// The path as text (invalid UTF-8 replaced).
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
    pub fn old_path_lossy(&self) -> Option<String> {
        self.old_path
            .as_deref()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }
}

/// The changes between two trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDiff {
    pub files: Vec<FileChange>,
    /// Inexact rename detection was skipped because destinations × sources exceeded
    /// `diff.renameLimit`²; the limit that would have been needed (git warns the same).
    pub renames_skipped: Option<u64>,
}

/// A commit's changes against its first parent (or the empty tree for a root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitDiff {
    pub commit: Oid,
    /// The first parent the diff is against; `None` for a root commit.
    pub parent: Option<Oid>,
    pub diff: TreeDiff,
}

/// Lists a commit's changes against its first parent as `git diff-tree -r -M --numstat`
/// does (see the module docs). A commit whose first parent is missing (a shallow boundary) is
/// [`HistoryError::NeedsHistory`], never a diff against the empty tree.
pub fn diff_commit(
    repo: &git2::Repository,
    commit: Oid,
    opts: &DiffOptions,
) -> Result<CommitDiff, HistoryError> {
    let objects = Objects::new(repo)?;
    let commit = objects
        .peel_to_commit(commit)?
        .ok_or(HistoryError::Missing {
            what: "commit",
            id: commit,
        })?;
    let obj = objects.read(commit)?.ok_or(HistoryError::Missing {
        what: "commit",
        id: commit,
    })?;
    let mut parents = Vec::new();
    let header = parse_commit(commit, obj.data(), &mut parents)?;
    let parent = parents.first().copied();
    let parent_tree = match parent {
        None => None,
        Some(p) => {
            let Some(pobj) = objects.read(p)? else {
                return Err(HistoryError::NeedsHistory(NeedsHistory::new(
                    vec![commit],
                    Some(1),
                )));
            };
            let mut scratch = Vec::new();
            Some(parse_commit(p, pobj.data(), &mut scratch)?.tree)
        }
    };
    let diff = diff_trees_with(&objects, parent_tree, Some(header.tree), opts)?;
    Ok(CommitDiff {
        commit,
        parent,
        diff,
    })
}

/// The changes from `old` to `new` (`None`: the empty tree), as `git diff-tree -r -M`.
pub fn diff_trees(
    repo: &git2::Repository,
    old: Option<Oid>,
    new: Option<Oid>,
    opts: &DiffOptions,
) -> Result<TreeDiff, HistoryError> {
    let objects = Objects::new(repo)?;
    diff_trees_with(&objects, old, new, opts)
}

/// A pair from the tree walk (git's `diff_filepair` before rename detection).
struct Pair {
    path: Vec<u8>,
    one: Option<Side>,
    two: Option<Side>,
}

fn diff_trees_with(
    objects: &Objects<'_>,
    old: Option<Oid>,
    new: Option<Oid>,
    opts: &DiffOptions,
) -> Result<TreeDiff, HistoryError> {
    let mut pairs = Vec::new();
    let mut prefix = Vec::new();
    if old != new {
        walk_trees(objects, old, new, &mut prefix, &mut pairs, 0)?;
    }
    let mut blobs = Blobs {
        objects,
        opts,
        info: OidMap::default(),
    };
    let renames = detect_renames(&mut blobs, &pairs, opts)?;
    let mut files = Vec::with_capacity(pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        let (status, old_path, one, score) = match (&p.one, &p.two) {
            (None, Some(_)) => match renames.dst_source.get(&i) {
                Some(&(src, score)) => {
                    let s = &pairs[src];
                    (Status::Renamed, Some(s.path.clone()), s.one, score)
                }
                None => (Status::Added, None, None, 0),
            },
            (Some(_), None) => {
                if renames.used_sources.contains(&i) {
                    continue;
                }
                (Status::Deleted, None, p.one, 0)
            }
            (Some(a), Some(b)) => {
                let status = if (a.mode ^ b.mode) & S_IFMT != 0 {
                    Status::TypeChanged
                } else {
                    Status::Modified
                };
                (status, None, p.one, 0)
            }
            (None, None) => continue,
        };
        let (additions, deletions, binary) = blobs.line_counts(one, p.two)?;
        files.push(FileChange {
            status,
            old_path,
            path: p.path.clone(),
            old: one,
            new: p.two,
            score,
            additions,
            deletions,
            binary,
        });
    }
    Ok(TreeDiff {
        files,
        renames_skipped: renames.skipped,
    })
}

/// git's `base_name_compare`: names compare as bytes, a directory as if followed by `/`.
fn base_name_cmp(a: &[u8], a_mode: u32, b: &[u8], b_mode: u32) -> std::cmp::Ordering {
    let len = a.len().min(b.len());
    match a[..len].cmp(&b[..len]) {
        std::cmp::Ordering::Equal => {}
        other => return other,
    }
    let end = |name: &[u8], mode: u32| match name.get(len) {
        Some(&c) => c,
        None if is_dir(mode) => b'/',
        None => 0,
    };
    end(a, a_mode).cmp(&end(b, b_mode))
}

fn entries_of<'a>(
    id: Option<Oid>,
    obj: Option<&'a git2::OdbObject<'_>>,
) -> Result<Vec<super::objects::TreeEntry<'a>>, HistoryError> {
    match (id, obj) {
        (Some(id), Some(o)) => tree_entries(id, o.data()).collect(),
        _ => Ok(Vec::new()),
    }
}

/// Which items have a name no other item has: name → `Some(index)` when unique, `None`
/// when shared.
fn unique_names<'a>(
    names: impl Iterator<Item = (usize, &'a [u8])>,
) -> std::collections::HashMap<&'a [u8], Option<usize>> {
    let mut map: std::collections::HashMap<&[u8], Option<usize>> = Default::default();
    for (i, name) in names {
        map.entry(name).and_modify(|v| *v = None).or_insert(Some(i));
    }
    map
}

/// git's default `core.maxTreeDepth`: deeper trees are refused rather than recursed into.
const MAX_TREE_DEPTH: usize = 4096;

/// Appends the file pairs that differ between two trees, in git's order.
fn walk_trees(
    objects: &Objects<'_>,
    old: Option<Oid>,
    new: Option<Oid>,
    prefix: &mut Vec<u8>,
    out: &mut Vec<Pair>,
    depth: usize,
) -> Result<(), HistoryError> {
    if depth > MAX_TREE_DEPTH {
        return Err(HistoryError::Corrupt {
            what: "tree",
            id: new.or(old).unwrap_or(Oid::ZERO_SHA1),
            why: "directories nest deeper than git's core.maxTreeDepth (4096)",
        });
    }
    let old_obj = old.map(|t| objects.tree(t)).transpose()?;
    let new_obj = new.map(|t| objects.tree(t)).transpose()?;
    let a = entries_of(old, old_obj.as_ref())?;
    let b = entries_of(new, new_obj.as_ref())?;
    let (mut i, mut j) = (0, 0);
    let base = prefix.len();
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => base_name_cmp(x.name, x.mode, y.name, y.mode),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (one, two) = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                (Some(a[i - 1]), None)
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                (None, Some(b[j - 1]))
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                (Some(a[i - 1]), Some(b[j - 1]))
            }
        };
        let name = one.or(two).map(|e| e.name).unwrap_or_default();
        prefix.truncate(base);
        prefix.extend_from_slice(name);
        let dir = one.or(two).is_some_and(|e| is_dir(e.mode));
        if dir {
            let (x, y) = (one.map(|e| e.id), two.map(|e| e.id));
            if x != y {
                prefix.push(b'/');
                walk_trees(objects, x, y, prefix, out, depth + 1)?;
            }
        } else {
            let side = |e: Option<super::objects::TreeEntry<'_>>| {
                e.map(|e| Side {
                    id: e.id,
                    mode: e.mode,
                })
            };
            let (x, y) = (side(one), side(two));
            if x != y {
                out.push(Pair {
                    path: prefix.clone(),
                    one: x,
                    two: y,
                });
            }
        }
    }
    prefix.truncate(base);
    Ok(())
}

/// What is known about a blob, filled in as needed.
#[derive(Default)]
struct BlobInfo {
    size: Option<u64>,
    binary: Option<bool>,
    spans: Option<Spans>,
}

struct Blobs<'a, 'r> {
    objects: &'a Objects<'r>,
    opts: &'a DiffOptions,
    info: OidMap<Oid, BlobInfo>,
}

impl Blobs<'_, '_> {
    fn read(&self, id: Oid) -> Result<git2::OdbObject<'_>, HistoryError> {
        self.objects
            .read(id)?
            .ok_or(HistoryError::Missing { what: "blob", id })
    }

    /// The bytes git diffs for a side: the blob, or `Subproject commit <id>` for a submodule.
    fn content(&self, side: Option<Side>) -> Result<Vec<u8>, HistoryError> {
        match side {
            None => Ok(Vec::new()),
            Some(s) if s.is_submodule() => Ok(format!("Subproject commit {}\n", s.id).into_bytes()),
            Some(s) => Ok(self.read(s.id)?.data().to_vec()),
        }
    }

    fn size(&mut self, id: Oid) -> Result<u64, HistoryError> {
        if let Some(size) = self.info.get(&id).and_then(|i| i.size) {
            return Ok(size);
        }
        let (size, kind) = self
            .objects
            .header(id)?
            .ok_or(HistoryError::Missing { what: "blob", id })?;
        if kind != ObjectType::Blob {
            return Err(HistoryError::Corrupt {
                what: "blob",
                id,
                why: "the object is not a blob",
            });
        }
        self.info.entry(id).or_default().size = Some(size as u64);
        Ok(size as u64)
    }

    /// git's `diff_filespec_is_binary` without attributes.
    fn is_binary(&mut self, side: Option<Side>) -> Result<bool, HistoryError> {
        let Some(side) = side else { return Ok(false) };
        if side.is_submodule() {
            return Ok(false);
        }
        if let Some(b) = self.info.get(&side.id).and_then(|i| i.binary) {
            return Ok(b);
        }
        let binary = if self.size(side.id)? > self.opts.big_file_threshold {
            true
        } else {
            let obj = self.read(side.id)?;
            let data = obj.data();
            data[..data.len().min(8000)].contains(&0)
        };
        self.info.entry(side.id).or_default().binary = Some(binary);
        Ok(binary)
    }

    /// git's `estimate_similarity`.
    fn similarity(&mut self, src: Side, dst: Side, minimum: u32) -> Result<u32, HistoryError> {
        if !is_reg(src.mode) || !is_reg(dst.mode) {
            return Ok(0);
        }
        let (ss, ds) = (self.size(src.id)?, self.size(dst.id)?);
        if !similarity::sizes_may_reach(ss, ds, minimum) {
            return Ok(0);
        }
        self.spans(src)?;
        self.spans(dst)?;
        let (Some(a), Some(b)) = (
            self.info.get(&src.id).and_then(|i| i.spans.as_ref()),
            self.info.get(&dst.id).and_then(|i| i.spans.as_ref()),
        ) else {
            return Ok(0);
        };
        Ok(similarity::score(a, ss, b, ds))
    }

    fn spans(&mut self, side: Side) -> Result<(), HistoryError> {
        if self.info.get(&side.id).is_some_and(|i| i.spans.is_some()) {
            return Ok(());
        }
        let text = !self.is_binary(Some(side))?;
        let spans = Spans::of(self.read(side.id)?.data(), text);
        self.info.entry(side.id).or_default().spans = Some(spans);
        Ok(())
    }

    /// git's `builtin_diffstat`: (added, deleted, binary).
    fn line_counts(
        &mut self,
        one: Option<Side>,
        two: Option<Side>,
    ) -> Result<(u64, u64, bool), HistoryError> {
        if self.is_binary(one)? || self.is_binary(two)? {
            return Ok((0, 0, true));
        }
        let may_differ = !matches!((one, two), (Some(a), Some(b)) if a.id == b.id);
        if !may_differ {
            return Ok((0, 0, false));
        }
        let (a, b) = (self.content(one)?, self.content(two)?);
        let patch = git2::Patch::from_buffers(&a, None, &b, None, Some(&mut xdiff_options()))?;
        let (_, added, deleted) = patch.line_stats()?;
        Ok((added as u64, deleted as u64, false))
    }
}

/// git's defaults for diff-tree's xdiff: Myers, indent heuristic, 3 lines of context, no
/// inter-hunk context; never libgit2's own binary guess.
fn xdiff_options() -> git2::DiffOptions {
    let mut o = git2::DiffOptions::new();
    o.force_text(true)
        .indent_heuristic(true)
        .context_lines(3)
        .interhunk_lines(0);
    o
}

/// Rename detection's result: destination pair → (source pair, score).
struct Renames {
    dst_source: OidMap<usize, (usize, u32)>,
    used_sources: std::collections::HashSet<usize>,
    skipped: Option<u64>,
}

/// git's `basename_same`: the paths end in the same file name.
fn basename_same(a: &[u8], b: &[u8]) -> bool {
    basename(a) == basename(b)
}

fn basename(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// A candidate in git's rename matrix (`struct diff_score`).
#[derive(Clone, Copy)]
struct Score {
    src: usize,
    /// `None`: an empty slot.
    dst: Option<usize>,
    score: u32,
    name_score: u8,
}

/// git's `score_compare`: positive when `a` sorts after `b` (is worse).
fn score_cmp(a: &Score, b: &Score) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.dst, b.dst) {
        (None, None) => Equal,
        (None, Some(_)) => Greater,
        (Some(_), None) => Less,
        _ if a.score == b.score => b.name_score.cmp(&a.name_score),
        _ => b.score.cmp(&a.score),
    }
}

/// git's `diffcore_rename` for `-M` without copies or break detection.
fn detect_renames(
    blobs: &mut Blobs<'_, '_>,
    pairs: &[Pair],
    opts: &DiffOptions,
) -> Result<Renames, HistoryError> {
    let mut out = Renames {
        dst_source: OidMap::default(),
        used_sources: Default::default(),
        skipped: None,
    };
    // rename_dst / rename_src, in queue order.
    let dsts: Vec<usize> = (0..pairs.len())
        .filter(|&i| pairs[i].one.is_none() && pairs[i].two.is_some())
        .collect();
    let mut srcs: Vec<usize> = (0..pairs.len())
        .filter(|&i| pairs[i].one.is_some() && pairs[i].two.is_none())
        .collect();
    if dsts.is_empty() || srcs.is_empty() {
        return Ok(out);
    }
    let one = |i: usize| pairs[i].one.expect("a source has a before side");
    let two = |i: usize| pairs[i].two.expect("a destination has an after side");
    let mut dst_done = vec![false; dsts.len()];
    let record = |out: &mut Renames, d: usize, s: usize, score: u32| {
        out.dst_source.insert(dsts[d], (s, score));
        out.used_sources.insert(s);
    };

    // find_exact_renames: per destination, sources with the same id in source order.
    let mut by_id: OidMap<Oid, Vec<usize>> = OidMap::default();
    for &s in &srcs {
        by_id.entry(one(s).id).or_default().push(s);
    }
    let mut renames = 0usize;
    for (d, &dp) in dsts.iter().enumerate() {
        let target = two(dp);
        let Some(cands) = by_id.get(&target.id) else {
            continue;
        };
        let mut best: Option<(usize, u8)> = None;
        let mut budget = 100;
        for &s in cands {
            let source = one(s);
            if (!is_reg(source.mode) || !is_reg(target.mode)) && source.mode != target.mode {
                continue;
            }
            if out.used_sources.contains(&s) {
                continue;
            }
            let score = 1 + u8::from(basename_same(&pairs[s].path, &pairs[dp].path));
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((s, score));
                if score == 2 {
                    break;
                }
            }
            budget -= 1;
            if budget == 0 {
                break;
            }
        }
        if let Some((s, _)) = best {
            record(&mut out, d, s, MAX_SCORE);
            dst_done[d] = true;
            renames += 1;
        }
    }

    // Cull the sources used by exact renames, then match unique basenames at a higher bar.
    srcs.retain(|s| !out.used_sources.contains(s));
    let min_basename_score =
        DEFAULT_RENAME_SCORE + (0.5 * f64::from(MAX_SCORE - DEFAULT_RENAME_SCORE)) as u32;
    let src_names = unique_names(
        srcs.iter()
            .enumerate()
            .map(|(i, &s)| (i, basename(&pairs[s].path))),
    );
    let dst_names = unique_names(
        dsts.iter()
            .enumerate()
            .filter(|(d, _)| !dst_done[*d])
            .map(|(d, &dp)| (d, basename(&pairs[dp].path))),
    );
    for (si, &s) in srcs.iter().enumerate() {
        let base = basename(&pairs[s].path);
        let Some(&dst_index) = dst_names.get(base) else {
            continue;
        };
        let (Some(Some(src_index)), Some(d)) = (src_names.get(base), dst_index) else {
            continue; // not unique on one side: git would guess from directory renames, off here
        };
        debug_assert_eq!(*src_index, si);
        if dst_done[d] {
            continue;
        }
        let score = blobs.similarity(one(s), two(dsts[d]), min_basename_score)?;
        if score < min_basename_score {
            continue;
        }
        record(&mut out, d, s, score);
        dst_done[d] = true;
        renames += 1;
    }
    srcs.retain(|s| !out.used_sources.contains(s));

    let num_dsts = dsts.len() - renames;
    let num_srcs = srcs.len();
    if num_dsts == 0 || num_srcs == 0 {
        return Ok(out);
    }
    let limit = opts.rename_limit;
    if limit > 0 && (num_dsts as u128) * (num_srcs as u128) > u128::from(limit) * u128::from(limit)
    {
        out.skipped = Some(num_dsts.max(num_srcs) as u64);
        return Ok(out);
    }

    // The matrix: the best four sources per remaining destination.
    const PER_DST: usize = 4;
    let empty = Score {
        src: 0,
        dst: None,
        score: 0,
        name_score: 0,
    };
    let mut mx: Vec<Score> = Vec::with_capacity(num_dsts * PER_DST);
    for (d, &dp) in dsts.iter().enumerate() {
        if dst_done[d] {
            continue;
        }
        let m = mx.len();
        mx.extend(std::iter::repeat_n(empty, PER_DST));
        for &s in &srcs {
            let this = Score {
                src: s,
                dst: Some(d),
                score: blobs.similarity(one(s), two(dp), DEFAULT_RENAME_SCORE)?,
                name_score: u8::from(basename_same(&pairs[s].path, &pairs[dp].path)),
            };
            // record_if_better: replace the first worst slot when strictly better.
            let slots = &mut mx[m..m + PER_DST];
            let mut worst = 0;
            for i in 1..PER_DST {
                if score_cmp(&slots[i], &slots[worst]).is_gt() {
                    worst = i;
                }
            }
            if score_cmp(&slots[worst], &this).is_gt() {
                slots[worst] = this;
            }
        }
    }
    mx.sort_by(score_cmp); // stable, as git's STABLE_QSORT
    for m in &mx {
        let Some(d) = m.dst else { break };
        if m.score < DEFAULT_RENAME_SCORE {
            break;
        }
        if dst_done[d] || out.used_sources.contains(&m.src) {
            continue;
        }
        record(&mut out, d, m.src, m.score);
        dst_done[d] = true;
    }
    Ok(out)
}

/// A rendered patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// `git diff-tree -r -M -p` output (bytes: paths and contents need not be UTF-8).
    pub text: Vec<u8>,
    /// The text was cut at the cap, on a line boundary.
    pub truncated: bool,
}

/// Renders `diff` (from [`diff_commit`] or [`diff_trees`]) as `git diff-tree -r -M -p`
/// prints it, at most `max_bytes` bytes, cut at a line boundary.
pub fn write_patch(
    repo: &git2::Repository,
    diff: &TreeDiff,
    max_bytes: usize,
) -> Result<Patch, HistoryError> {
    let objects = Objects::new(repo)?;
    let opts = DiffOptions::from_config(repo);
    let mut blobs = Blobs {
        objects: &objects,
        opts: &opts,
        info: OidMap::default(),
    };
    let mut w = PatchWriter {
        out: Vec::new(),
        max: max_bytes,
        truncated: false,
        abbrev: Abbrev::new(repo, &objects),
    };
    for f in &diff.files {
        if w.truncated {
            break;
        }
        if f.status == Status::TypeChanged {
            // run_diff: a type change is shown as a deletion and an addition.
            let del = FileChange {
                status: Status::Deleted,
                new: None,
                ..f.clone()
            };
            let add = FileChange {
                status: Status::Added,
                old: None,
                ..f.clone()
            };
            w.file(&mut blobs, &del)?;
            w.file(&mut blobs, &add)?;
        } else {
            w.file(&mut blobs, f)?;
        }
    }
    Ok(Patch {
        text: w.out,
        truncated: w.truncated,
    })
}

struct PatchWriter<'a, 'r> {
    out: Vec<u8>,
    max: usize,
    truncated: bool,
    abbrev: Abbrev<'a, 'r>,
}

impl PatchWriter<'_, '_> {
    /// Appends whole lines while they fit under the cap.
    fn push(&mut self, text: &[u8]) {
        if self.truncated {
            return;
        }
        for line in text.split_inclusive(|&c| c == b'\n') {
            if self.out.len() + line.len() > self.max {
                self.truncated = true;
                return;
            }
            self.out.extend_from_slice(line);
        }
    }

    /// git's `builtin_diff` for one pair.
    fn file(&mut self, blobs: &mut Blobs<'_, '_>, f: &FileChange) -> Result<(), HistoryError> {
        let name_a = f.old_path.as_deref().unwrap_or(&f.path);
        let name_b = &f.path;
        let a = quote_two(b"a/", name_a);
        let b = quote_two(b"b/", name_b);
        let mut header = Vec::new();
        header.extend_from_slice(b"diff --git ");
        header.extend_from_slice(&a);
        header.push(b' ');
        header.extend_from_slice(&b);
        header.push(b'\n');
        let mut must_show = false;
        let mut meta = Vec::new();
        if f.status == Status::Renamed {
            must_show = true;
            meta.extend_from_slice(format!("similarity index {}%\n", f.similarity()).as_bytes());
            meta.extend_from_slice(b"rename from ");
            meta.extend_from_slice(&quote_c(name_a));
            meta.extend_from_slice(b"\nrename to ");
            meta.extend_from_slice(&quote_c(name_b));
            meta.push(b'\n');
        }
        let (one_id, one_mode) = f.old.map_or((Oid::ZERO_SHA1, 0), |s| (s.id, s.mode));
        let (two_id, two_mode) = f.new.map_or((Oid::ZERO_SHA1, 0), |s| (s.id, s.mode));
        if one_id != two_id {
            meta.extend_from_slice(b"index ");
            meta.extend_from_slice(self.abbrev.of(one_id)?.as_bytes());
            meta.extend_from_slice(b"..");
            meta.extend_from_slice(self.abbrev.of(two_id)?.as_bytes());
            if one_mode == two_mode {
                meta.extend_from_slice(format!(" {one_mode:06o}").as_bytes());
            }
            meta.push(b'\n');
        }
        match (f.old, f.new) {
            (None, _) => {
                header.extend_from_slice(format!("new file mode {two_mode:06o}\n").as_bytes());
                must_show = true;
            }
            (_, None) => {
                header.extend_from_slice(format!("deleted file mode {one_mode:06o}\n").as_bytes());
                must_show = true;
            }
            _ if one_mode != two_mode => {
                header.extend_from_slice(
                    format!("old mode {one_mode:06o}\nnew mode {two_mode:06o}\n").as_bytes(),
                );
                must_show = true;
            }
            _ => {}
        }
        header.extend_from_slice(&meta);
        let lbl_a = if f.old.is_some() {
            a
        } else {
            b"/dev/null".to_vec()
        };
        let lbl_b = if f.new.is_some() {
            b
        } else {
            b"/dev/null".to_vec()
        };

        if blobs.is_binary(f.old)? || blobs.is_binary(f.new)? {
            if one_id == two_id {
                if must_show {
                    self.push(&header);
                }
                return Ok(());
            }
            self.push(&header);
            let mut line = b"Binary files ".to_vec();
            line.extend_from_slice(&lbl_a);
            line.extend_from_slice(b" and ");
            line.extend_from_slice(&lbl_b);
            line.extend_from_slice(b" differ\n");
            self.push(&line);
            return Ok(());
        }
        let (old, new) = (blobs.content(f.old)?, blobs.content(f.new)?);
        let patch = git2::Patch::from_buffers(&old, None, &new, None, Some(&mut xdiff_options()))?;
        if patch.num_hunks() == 0 {
            if must_show {
                self.push(&header);
            }
            return Ok(());
        }
        self.push(&header);
        // git ends a label that contains a space with a tab.
        let mut labels = Vec::new();
        for (mark, label) in [(&b"--- "[..], &lbl_a), (&b"+++ "[..], &lbl_b)] {
            labels.extend_from_slice(mark);
            labels.extend_from_slice(label);
            if label.contains(&b' ') {
                labels.push(b'\t');
            }
            labels.push(b'\n');
        }
        self.push(&labels);
        let old_lines: Vec<&[u8]> = old.split_inclusive(|&c| c == b'\n').collect();
        for h in 0..patch.num_hunks() {
            if self.truncated {
                break;
            }
            let (hunk, n) = patch.hunk(h)?;
            let mut line = hunk_header(&hunk, &old_lines);
            for l in 0..n {
                let dl = patch.line_in_hunk(h, l)?;
                if let c @ ('+' | '-' | ' ') = dl.origin() {
                    line.push(c as u8);
                }
                line.extend_from_slice(dl.content());
                if line.ends_with(b"\n") {
                    self.push(&line);
                    line.clear();
                }
            }
            if !line.is_empty() {
                self.push(&line);
            }
        }
        Ok(())
    }
}

/// `@@ -a,b +c,d @@ func` with the function line found as xdiff's default `def_ff` finds it:
/// the nearest line above the hunk in the old file that starts with a letter, `_` or `$`,
/// cut at 80 bytes, trailing whitespace removed.
fn hunk_header(hunk: &git2::DiffHunk<'_>, old_lines: &[&[u8]]) -> Vec<u8> {
    let range = |start: u32, lines: u32| {
        if lines == 1 {
            format!("{start}")
        } else {
            format!("{start},{lines}")
        }
    };
    let mut out = format!(
        "@@ -{} +{} @@",
        range(hunk.old_start(), hunk.old_lines()),
        range(hunk.new_start(), hunk.new_lines())
    )
    .into_bytes();
    let s1 = if hunk.old_lines() > 0 {
        hunk.old_start() as usize - 1
    } else {
        hunk.old_start() as usize
    };
    for l in (0..s1.min(old_lines.len())).rev() {
        let rec = old_lines[l];
        if rec
            .first()
            .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_' || c == b'$')
        {
            let mut len = rec.len().min(80);
            while len > 0 && matches!(rec[len - 1], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
                len -= 1;
            }
            if len > 0 {
                out.push(b' ');
                out.extend_from_slice(&rec[..len]);
            }
            break;
        }
    }
    out.push(b'\n');
    out
}

/// git's `cq_must_quote` with `core.quotePath` on: control bytes, `"`, `\`, DEL and every
/// byte ≥ 0x80.
fn must_quote(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\' || c >= 0x7f
}

fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        if !must_quote(c) {
            out.push(c);
            continue;
        }
        out.push(b'\\');
        match c {
            0x07 => out.push(b'a'),
            0x08 => out.push(b'b'),
            b'\t' => out.push(b't'),
            b'\n' => out.push(b'n'),
            0x0b => out.push(b'v'),
            0x0c => out.push(b'f'),
            b'\r' => out.push(b'r'),
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            _ => out.extend_from_slice(format!("{c:03o}").as_bytes()),
        }
    }
}

/// git's `quote_c_style`: the path as is, or in double quotes with C escapes.
fn quote_c(path: &[u8]) -> Vec<u8> {
    if !path.iter().any(|&c| must_quote(c)) {
        return path.to_vec();
    }
    let mut out = vec![b'"'];
    escape_into(&mut out, path);
    out.push(b'"');
    out
}

/// git's `quote_two_c_style`: `a/path`, quoted as a whole when the path needs it.
fn quote_two(prefix: &[u8], path: &[u8]) -> Vec<u8> {
    if !path.iter().any(|&c| must_quote(c)) {
        return [prefix, path].concat();
    }
    let mut out = vec![b'"'];
    escape_into(&mut out, prefix);
    escape_into(&mut out, path);
    out.push(b'"');
    out
}

/// Abbreviated ids as git's `find_unique_abbrev` with `core.abbrev` unset: the length
/// grows with the number of packed objects (7 up to 2^14, then half the bits rounded up, in
/// hex digits), and further until no other object shares the prefix.
struct Abbrev<'a, 'r> {
    objects: &'a Objects<'r>,
    len: usize,
}

impl<'a, 'r> Abbrev<'a, 'r> {
    fn new(repo: &git2::Repository, objects: &'a Objects<'r>) -> Self {
        let fixed = repo
            .config()
            .ok()
            .and_then(|c| c.get_string("core.abbrev").ok())
            .and_then(|v| match v.as_str() {
                "no" | "false" | "off" => Some(40),
                v => v.parse::<usize>().ok().map(|n| n.clamp(4, 40)),
            });
        let len = fixed.unwrap_or_else(|| {
            let count = packed_object_count(repo.path());
            let bits = if count == 0 {
                1
            } else {
                64 - count.leading_zeros() as usize
            };
            bits.div_ceil(2).max(7)
        });
        Abbrev { objects, len }
    }

    fn of(&self, id: Oid) -> Result<String, HistoryError> {
        let hex = id.to_string();
        let mut len = self.len.min(40);
        if id.is_zero() {
            return Ok(hex[..len].to_string());
        }
        while len < 40 {
            let mut padded = hex[..len].to_string();
            padded.extend(std::iter::repeat_n('0', 40 - len));
            match self
                .objects
                .odb()
                .exists_prefix(Oid::from_str(&padded)?, len)
            {
                Err(e) if e.code() == git2::ErrorCode::Ambiguous => len += 1,
                _ => break,
            }
        }
        Ok(hex[..len].to_string())
    }
}

/// The objects in the repository's pack indexes (and its alternates'), as git's
/// `approximate_object_count` counts them.
fn packed_object_count(git_dir: &std::path::Path) -> u64 {
    let mut dirs = vec![git_dir.join("objects")];
    if let Ok(alt) = std::fs::read_to_string(git_dir.join("objects/info/alternates")) {
        for line in alt.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let p = std::path::Path::new(line);
            dirs.push(if p.is_absolute() {
                p.to_path_buf()
            } else {
                git_dir.join("objects").join(p)
            });
        }
    }
    let mut count = 0u64;
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir.join("pack")) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "idx") {
                count += idx_object_count(&path).unwrap_or(0);
            }
        }
    }
    count
}

/// The object count in a pack index's header (v1 and v2: the last fan-out entry).
fn idx_object_count(path: &std::path::Path) -> Option<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 8 + 256 * 4];
    f.read_exact(&mut head).ok()?;
    let fanout_at = if head[..4] == [0xff, b't', b'O', b'c'] {
        8
    } else {
        0
    };
    let last = fanout_at + 255 * 4;
    Some(u64::from(u32::from_be_bytes(
        head[last..last + 4].try_into().ok()?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn directories_sort_as_if_followed_by_a_slash() {
        const F: u32 = 0o100644;
        const D: u32 = 0o040000;
        assert_eq!(base_name_cmp(b"a", F, b"a", D), Ordering::Less);
        assert_eq!(base_name_cmp(b"a-b", F, b"a", D), Ordering::Less);
        assert_eq!(base_name_cmp(b"a0", F, b"a", D), Ordering::Greater);
        assert_eq!(base_name_cmp(b"a", F, b"a", F), Ordering::Equal);
    }

    #[test]
    fn paths_are_quoted_as_git_quotes_them() {
        assert_eq!(quote_two(b"a/", b"plain.txt"), b"a/plain.txt");
        assert_eq!(quote_two(b"a/", b"tab\there"), b"\"a/tab\\there\"");
        assert_eq!(quote_c("é".as_bytes()), b"\"\\303\\251\"");
        assert_eq!(quote_c(b"q\"b\\"), b"\"q\\\"b\\\\\"");
    }

    #[test]
    fn the_matrix_sorts_by_score_then_basename_with_empty_slots_last() {
        let s = |dst: Option<usize>, score, name_score| Score {
            src: 0,
            dst,
            score,
            name_score,
        };
        assert!(score_cmp(&s(Some(0), 40_000, 0), &s(Some(1), 50_000, 0)).is_gt());
        assert!(score_cmp(&s(Some(0), 40_000, 0), &s(Some(1), 40_000, 1)).is_gt());
        assert!(score_cmp(&s(None, 0, 0), &s(Some(1), 0, 0)).is_gt());
        assert!(score_cmp(&s(None, 0, 0), &s(None, 0, 0)).is_eq());
    }
}
