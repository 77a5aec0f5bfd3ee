//! Repository data for the REST API, read with git2 from the seeded repositories.

use std::path::Path;

use git2::{Delta, DiffFindOptions, DiffOptions, ObjectType, Oid, Repository, Sort};

pub struct CommitInfo {
    pub hash: String,
    pub author_name: String,
    pub author_email: String,
    pub author_time: i64,
    pub author_offset: i32,
    pub committer_name: String,
    pub committer_email: String,
    pub committer_time: i64,
    pub message: String,
    pub parents: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EntryKind {
    File,
    Dir,
    Submodule,
}

pub struct Entry {
    pub name: String,
    /// Full path from the repository root, `/`-separated.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub oid: String,
    pub executable: bool,
    pub symlink: bool,
}

pub enum Lookup {
    Dir(Vec<Entry>),
    File(Entry, Vec<u8>),
    Missing,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Added,
    Removed,
    Modified,
    Renamed,
    Copied,
}

pub struct Change {
    pub status: Status,
    pub old_path: Option<String>,
    pub new_path: Option<String>,
    pub old_oid: String,
    pub new_oid: String,
    pub added: usize,
    pub removed: usize,
    pub executable: bool,
}

pub fn open(path: &Path) -> Result<Repository, String> {
    Repository::open(path).map_err(|e| e.message().to_string())
}

/// A commit for a revision: full or abbreviated hash, branch, tag or any rev-parse expression.
pub fn resolve(repo: &Repository, rev: &str) -> Option<Oid> {
    if rev.is_empty() || rev.starts_with('-') {
        return None;
    }
    repo.revparse_single(rev)
        .ok()?
        .peel_to_commit()
        .ok()
        .map(|c| c.id())
}

pub fn default_branch(repo: &Repository) -> Option<String> {
    let head = repo.find_reference("HEAD").ok()?;
    let target = head.symbolic_target().ok()??;
    target.strip_prefix("refs/heads/").map(str::to_string)
}

/// Branches sorted by name with their tip commits.
pub fn branches(repo: &Repository) -> Vec<(String, Oid)> {
    let mut out = Vec::new();
    if let Ok(iter) = repo.branches(Some(git2::BranchType::Local)) {
        for (b, _) in iter.flatten() {
            let name = b.name().ok().flatten().map(str::to_string);
            let oid = b.get().peel_to_commit().ok().map(|c| c.id());
            if let (Some(n), Some(o)) = (name, oid) {
                out.push((n, o));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub fn commit_info(repo: &Repository, oid: Oid) -> Option<CommitInfo> {
    let c = repo.find_commit(oid).ok()?;
    let a = c.author();
    let m = c.committer();
    Some(CommitInfo {
        hash: oid.to_string(),
        author_name: a.name().unwrap_or("").to_string(),
        author_email: a.email().unwrap_or("").to_string(),
        author_time: a.when().seconds(),
        author_offset: a.when().offset_minutes(),
        committer_name: m.name().unwrap_or("").to_string(),
        committer_email: m.email().unwrap_or("").to_string(),
        committer_time: m.when().seconds(),
        message: String::from_utf8_lossy(c.message_bytes()).into_owned(),
        parents: c.parent_ids().map(|p| p.to_string()).collect(),
    })
}

fn entry_id_at(repo: &Repository, commit: Oid, path: &str) -> Option<Oid> {
    let tree = repo.find_commit(commit).ok()?.tree().ok()?;
    if path.is_empty() {
        return Some(tree.id());
    }
    tree.get_path(Path::new(path)).ok().map(|e| e.id())
}

/// Commits reachable from `include` but not from `exclude`, newest first, optionally only
/// those that change `path` relative to their first parent.
pub fn log(repo: &Repository, include: &[Oid], exclude: &[Oid], path: Option<&str>) -> Vec<Oid> {
    let Ok(mut walk) = repo.revwalk() else {
        return Vec::new();
    };
    let _ = walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME);
    for o in include {
        let _ = walk.push(*o);
    }
    for o in exclude {
        let _ = walk.hide(*o);
    }
    let path = path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
    walk.flatten()
        .filter(|oid| {
            let Some(p) = path else { return true };
            let here = entry_id_at(repo, *oid, p);
            let parent = repo
                .find_commit(*oid)
                .ok()
                .and_then(|c| c.parent_id(0).ok());
            let before = parent.and_then(|pa| entry_id_at(repo, pa, p));
            here != before
        })
        .collect()
}

pub fn lookup(repo: &Repository, commit: Oid, path: &str) -> Lookup {
    let Ok(tree) = repo.find_commit(commit).and_then(|c| c.tree()) else {
        return Lookup::Missing;
    };
    let path = path.trim_matches('/');
    let (tree, dir_path) = if path.is_empty() {
        (tree, String::new())
    } else {
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Lookup::Missing;
        };
        match entry.kind() {
            Some(ObjectType::Tree) => match repo.find_tree(entry.id()) {
                Ok(t) => (t, path.to_string()),
                Err(_) => return Lookup::Missing,
            },
            Some(ObjectType::Blob) => {
                let Ok(blob) = repo.find_blob(entry.id()) else {
                    return Lookup::Missing;
                };
                let e = Entry {
                    name: entry.name().unwrap_or("").to_string(),
                    path: path.to_string(),
                    kind: EntryKind::File,
                    size: blob.size() as u64,
                    oid: entry.id().to_string(),
                    executable: entry.filemode() == 0o100755,
                    symlink: entry.filemode() == 0o120000,
                };
                return Lookup::File(e, blob.content().to_vec());
            }
            _ => return Lookup::Missing,
        }
    };
    let mut out = Vec::new();
    for e in tree.iter() {
        let name = e.name().unwrap_or("").to_string();
        let full = if dir_path.is_empty() {
            name.clone()
        } else {
            format!("{dir_path}/{name}")
        };
        let (kind, size) = match e.kind() {
            Some(ObjectType::Tree) => (EntryKind::Dir, 0),
            Some(ObjectType::Commit) => (EntryKind::Submodule, 0),
            _ => (
                EntryKind::File,
                repo.find_blob(e.id()).map(|b| b.size() as u64).unwrap_or(0),
            ),
        };
        out.push(Entry {
            name,
            path: full,
            kind,
            size,
            oid: e.id().to_string(),
            executable: e.filemode() == 0o100755,
            symlink: e.filemode() == 0o120000,
        });
    }
    Lookup::Dir(out)
}

fn diff_of<'r>(
    repo: &'r Repository,
    old: Option<Oid>,
    new: Oid,
    paths: &[&str],
) -> Option<git2::Diff<'r>> {
    let new_tree = repo.find_commit(new).ok()?.tree().ok()?;
    let old_tree = match old {
        Some(o) => Some(repo.find_commit(o).ok()?.tree().ok()?),
        None => None,
    };
    let mut opts = DiffOptions::new();
    for p in paths {
        opts.pathspec(p);
    }
    let mut diff = repo
        .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(&mut opts))
        .ok()?;
    let mut find = DiffFindOptions::new();
    find.renames(true);
    let _ = diff.find_similar(Some(&mut find));
    Some(diff)
}

/// Changes from `old` (none: the empty tree) to `new`, with line counts.
pub fn changes(repo: &Repository, old: Option<Oid>, new: Oid, paths: &[&str]) -> Vec<Change> {
    let Some(diff) = diff_of(repo, old, new, paths) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, d) in diff.deltas().enumerate() {
        let status = match d.status() {
            Delta::Added | Delta::Untracked => Status::Added,
            Delta::Deleted => Status::Removed,
            Delta::Renamed => Status::Renamed,
            Delta::Copied => Status::Copied,
            _ => Status::Modified,
        };
        let path_of = |f: git2::DiffFile| f.path().map(|p| p.to_string_lossy().replace('\\', "/"));
        let (mut added, mut removed) = (0, 0);
        if let Ok(Some(patch)) = git2::Patch::from_diff(&diff, i)
            && let Ok((_, a, r)) = patch.line_stats()
        {
            added = a;
            removed = r;
        }
        out.push(Change {
            status,
            old_path: if status == Status::Added {
                None
            } else {
                path_of(d.old_file())
            },
            new_path: if status == Status::Removed {
                None
            } else {
                path_of(d.new_file())
            },
            old_oid: d.old_file().id().to_string(),
            new_oid: d.new_file().id().to_string(),
            added,
            removed,
            executable: u32::from(d.new_file().mode()) == 0o100755,
        });
    }
    out
}

/// `git diff`-style unified patch text.
pub fn patch_text(repo: &Repository, old: Option<Oid>, new: Oid, paths: &[&str]) -> String {
    let Some(diff) = diff_of(repo, old, new, paths) else {
        return String::new();
    };
    let mut out = Vec::new();
    let _ = diff.print(git2::DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            out.push(line.origin() as u8);
        }
        out.extend_from_slice(line.content());
        true
    });
    String::from_utf8_lossy(&out).into_owned()
}

pub struct Hunk {
    pub old_start: u32,
    pub old_lines: u32,
    pub new_start: u32,
    pub new_lines: u32,
    /// (origin `' '`/`'+'`/`'-'`, text without the newline)
    pub lines: Vec<(char, String)>,
}

pub struct FileDiff {
    pub old_path: Option<String>,
    pub new_path: Option<String>,
    pub binary: bool,
    pub hunks: Vec<Hunk>,
}

/// Per-file hunks with `context` lines around changes, for structured (JSON) diffs.
pub fn file_diffs(
    repo: &Repository,
    old: Option<Oid>,
    new: Oid,
    paths: &[&str],
    context: u32,
) -> Vec<FileDiff> {
    let new_tree = repo.find_commit(new).and_then(|c| c.tree()).ok();
    let old_tree = old.and_then(|o| repo.find_commit(o).and_then(|c| c.tree()).ok());
    let mut opts = DiffOptions::new();
    opts.context_lines(context);
    for p in paths {
        opts.pathspec(p);
    }
    let Ok(mut diff) =
        repo.diff_tree_to_tree(old_tree.as_ref(), new_tree.as_ref(), Some(&mut opts))
    else {
        return Vec::new();
    };
    let _ = diff.find_similar(Some(DiffFindOptions::new().renames(true)));
    let mut out = Vec::new();
    for i in 0..diff.deltas().len() {
        let Ok(Some(patch)) = git2::Patch::from_diff(&diff, i) else {
            continue;
        };
        let d = patch.delta();
        let path_of = |f: git2::DiffFile| f.path().map(|p| p.to_string_lossy().replace('\\', "/"));
        let mut hunks = Vec::new();
        for h in 0..patch.num_hunks() {
            let Ok((hunk, n)) = patch.hunk(h) else {
                continue;
            };
            let lines = (0..n)
                .filter_map(|l| patch.line_in_hunk(h, l).ok())
                .filter(|l| matches!(l.origin(), ' ' | '+' | '-'))
                .map(|l| {
                    (
                        l.origin(),
                        String::from_utf8_lossy(l.content())
                            .trim_end_matches(['\n', '\r'])
                            .to_string(),
                    )
                })
                .collect();
            hunks.push(Hunk {
                old_start: hunk.old_start(),
                old_lines: hunk.old_lines(),
                new_start: hunk.new_start(),
                new_lines: hunk.new_lines(),
                lines,
            });
        }
        out.push(FileDiff {
            old_path: (d.status() != Delta::Added)
                .then(|| path_of(d.old_file()))
                .flatten(),
            new_path: (d.status() != Delta::Deleted)
                .then(|| path_of(d.new_file()))
                .flatten(),
            binary: d.flags().is_binary(),
            hunks,
        });
    }
    out
}

pub fn merge_base(repo: &Repository, a: Oid, b: Oid) -> Option<Oid> {
    repo.merge_base(a, b).ok()
}

/// `2018-09-21T14:09:51+00:00` for a git timestamp and its UTC offset in minutes.
pub fn iso(secs: i64, offset_min: i32) -> String {
    let local = secs + i64::from(offset_min) * 60;
    let days = local.div_euclid(86_400);
    let rem = local.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let sign = if offset_min < 0 { '-' } else { '+' };
    let off = offset_min.abs();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        off / 60,
        off % 60
    )
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch for a fixture date like `2025-01-02T03:04:05.000000+00:00`
/// (fraction and a `Z`/`+HH:MM` offset honoured); 0 when it does not parse.
pub fn parse_iso_ms(s: &str) -> i64 {
    let num = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) = (
        num(0, 4),
        num(5, 7),
        num(8, 10),
        num(11, 13),
        num(14, 16),
        num(17, 19),
    ) else {
        return 0;
    };
    let rest = s.get(19..).unwrap_or("");
    let (frac, tz) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            let digits = &r[..end];
            let millis = format!("{digits:0<3}")[..3].parse::<i64>().unwrap_or(0);
            (millis, &r[end..])
        }
        None => (0, rest),
    };
    let offset = match tz.as_bytes().first() {
        Some(b'+') | Some(b'-') => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let h = tz
                .get(1..3)
                .and_then(|x| x.parse::<i64>().ok())
                .unwrap_or(0);
            let m = tz
                .get(4..6)
                .and_then(|x| x.parse::<i64>().ok())
                .unwrap_or(0);
            sign * (h * 3600 + m * 60)
        }
        _ => 0,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    secs * 1000 + frac
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_fixture_dates() {
        assert_eq!(super::parse_iso_ms("1970-01-01T00:00:01.5Z"), 1500);
        assert_eq!(
            super::parse_iso_ms("2018-09-21T14:49:51.000000+00:00"),
            1_537_541_391_000
        );
        assert_eq!(
            super::parse_iso_ms("2018-09-21T16:49:51+02:00"),
            1_537_541_391_000
        );
        assert_eq!(super::parse_iso_ms("garbage"), 0);
    }

    #[test]
    fn iso_formats_dates_with_offsets() {
        assert_eq!(super::iso(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(super::iso(1_537_541_391, 0), "2018-09-21T14:49:51+00:00");
        assert_eq!(super::iso(1_537_541_391, -150), "2018-09-21T12:19:51-02:30");
    }
}
