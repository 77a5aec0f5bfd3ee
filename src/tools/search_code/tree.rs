//! The committed-tree search: every file of one commit, searched on every core.
//!
//! A file is read from the working tree when git's index vouches that the file on disk is the
//! commit's blob: the index entry has the blob's id and the file's stat data (size, modification
//! and change times to the nanosecond, inode) still equal what git recorded, and the entry is not racily
//! clean (modified in the same instant the index was written or later). This is the check `git status`
//! makes. Any other file — changed, missing, replaced by a symlink, or a blob of another commit
//! — is read from the object store. So the answer is the commit's content whatever a setup step
//! or an agent did to the working tree, at the speed of reading files.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ignore::overrides::Override;

use super::Plan;
use super::collect::{Collector, FileSink};
use super::limits::{self, SearchBudget};

/// What git's index recorded about one path (stage 0).
struct Recorded {
    oid: git2::Oid,
    size: u32,
    mtime: (i32, u32),
    ctime: (i32, u32),
    ino: u32,
}

/// One file of the commit to search.
struct Item {
    path: String,
    oid: git2::Oid,
    /// The index's record of the path, when it names the same blob.
    recorded: Option<Recorded>,
}

/// Search `tree` in `git`: the checkout at `dir` (whose index may vouch for files on disk), or
/// a bare mirror of the clone cache (no index: every file from the object store). Matches are
/// named `label`.
#[allow(clippy::too_many_arguments)]
pub(super) fn search(
    plan: &Plan,
    label: &str,
    dir: &Path,
    git: &git2::Repository,
    tree: &git2::Tree<'_>,
    ov: &Override,
    collector: &Mutex<Collector>,
    budget: &SearchBudget,
) {
    let items = files(git, tree, ov);
    let racy_after = index_mtime(git);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len())
        .max(1);
    let git_dir = git.path().to_path_buf();
    // The searcher is not Sync: each worker gets its own copy.
    let (matcher, context, limit) = (&plan.matcher, plan.context, plan.limit);
    let (items, next, git_dir) = (&items, &next, &git_dir);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let mut searcher = plan.searcher.clone();
            s.spawn(move || {
                let mut buf = Vec::new();
                // Opened only when a file must come from the object store: a repository is
                // not shared between threads.
                let mut odb: Option<git2::Repository> = None;
                while !budget.is_cut() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let from_disk = item.recorded.as_ref().is_some_and(|r| {
                        read_if_unchanged(&dir.join(&item.path), r, racy_after, &mut buf)
                    });
                    let blob;
                    let data: &[u8] = if from_disk {
                        &buf
                    } else {
                        if odb.is_none() {
                            odb = git2::Repository::open(git_dir).ok();
                        }
                        // A worker that cannot open the repository counts what it skips.
                        let Some(g) = odb.as_ref() else {
                            budget.skipped();
                            continue;
                        };
                        // A blob is read whole: its size, from the object header, comes first.
                        let size = g.odb().and_then(|o| o.read_header(item.oid));
                        if size.map_or(0, |(n, _)| n as u64) > limits::MAX_BLOB_BYTES {
                            budget.skipped();
                            continue;
                        }
                        let Ok(b) = g.find_blob(item.oid) else {
                            budget.skipped();
                            continue;
                        };
                        blob = b;
                        blob.content()
                    };
                    if !budget.file(data.len() as u64) {
                        break;
                    }
                    let mut sink = FileSink::new(context, limit);
                    if searcher.search_slice(matcher, data, &mut sink).is_ok() {
                        sink.deliver(collector, label, item.path.clone());
                    }
                }
            });
        }
    });
}

/// The commit's files that `include`/`exclude` admit, in tree order, each with the index's
/// record of it when the index holds the same blob. Symlinks (mode 120000) are skipped as in
/// the working tree; submodules (commits) have no content here.
fn files(git: &git2::Repository, tree: &git2::Tree<'_>, ov: &Override) -> Vec<Item> {
    let mut recorded: HashMap<Vec<u8>, Recorded> = HashMap::new();
    if let Ok(index) = git.index() {
        for e in index.iter() {
            // Stage bits: a conflicted path has no single version on disk to trust.
            if e.flags & 0x3000 == 0 {
                recorded.insert(
                    e.path,
                    Recorded {
                        oid: e.id,
                        size: e.file_size,
                        mtime: (e.mtime.seconds(), e.mtime.nanoseconds()),
                        ctime: (e.ctime.seconds(), e.ctime.nanoseconds()),
                        ino: e.ino,
                    },
                );
            }
        }
    }
    let mut items = Vec::new();
    let mut stack = vec![(String::new(), tree.clone())];
    while let Some((prefix, tree)) = stack.pop() {
        for entry in tree.iter() {
            let name = String::from_utf8_lossy(entry.name_bytes());
            let path = format!("{prefix}{name}");
            match entry.kind() {
                Some(git2::ObjectType::Tree) => {
                    if ov.matched(&path, true).is_ignore() {
                        continue;
                    }
                    if let Ok(sub) = git.find_tree(entry.id()) {
                        stack.push((format!("{path}/"), sub));
                    }
                }
                Some(git2::ObjectType::Blob) if entry.filemode() != 0o120000 => {
                    if ov.matched(&path, false).is_ignore() {
                        continue;
                    }
                    let recorded = recorded
                        .remove(path.as_bytes())
                        .filter(|r| r.oid == entry.id());
                    items.push(Item {
                        path,
                        oid: entry.id(),
                        recorded,
                    });
                }
                _ => {}
            }
        }
    }
    items
}

/// When the index was last written, as (seconds, nanoseconds): a file modified at or after it
/// may have changed after git recorded its stat data without the stat data showing it.
fn index_mtime(git: &git2::Repository) -> (i64, i64) {
    std::fs::metadata(git.path().join("index")).map_or((0, 0), |m| (m.mtime(), m.mtime_nsec()))
}

/// Read `path` into `buf` when its stat data is what the index recorded and it is not racily
/// clean; false (and `buf` unspecified) otherwise.
fn read_if_unchanged(path: &Path, r: &Recorded, racy_after: (i64, i64), buf: &mut Vec<u8>) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let mtime = (meta.mtime(), meta.mtime_nsec());
    let ctime = (meta.ctime(), meta.ctime_nsec());
    let recorded = |t: (i32, u32)| (i64::from(t.0), i64::from(t.1));
    // The index keeps 32-bit sizes and inode numbers, truncated as git truncates them.
    // A file too large to hold is left to the object store's path, which skips it by size.
    let same = meta.file_type().is_file()
        && meta.size() <= limits::MAX_BLOB_BYTES
        && meta.size() as u32 == r.size
        && meta.ino() as u32 == r.ino
        && mtime == recorded(r.mtime)
        && ctime == recorded(r.ctime)
        && mtime < racy_after;
    if !same {
        return false;
    }
    buf.clear();
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    // A file that grew or shrank since the stat above is not the recorded one.
    file.read_to_end(buf).is_ok() && buf.len() as u64 == meta.size()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    /// The fast path is taken: a file git checked out and has not touched since is read from
    /// disk (so the search costs what reading files costs), and a changed one is not.
    #[test]
    fn unchanged_files_come_from_disk_and_changed_ones_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q"]);
        std::fs::write(dir.join("a.txt"), "alpha\n").unwrap();
        std::fs::write(dir.join("b.txt"), "beta\n").unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", "one"]);
        // A file written in the same instant as the index cannot be trusted (racily clean):
        // rewrite the index a little later, as any later git command would.
        std::thread::sleep(std::time::Duration::from_millis(20));
        git(dir, &["update-index", "--really-refresh"]);
        let repo = git2::Repository::open(dir).unwrap();
        let tree = repo.head().unwrap().peel_to_tree().unwrap();
        let ov = Override::empty();
        let items = files(&repo, &tree, &ov);
        assert_eq!(items.len(), 2);
        let racy_after = index_mtime(&repo);
        let mut buf = Vec::new();
        let a = items[0].recorded.as_ref().expect("a.txt is in the index");
        assert!(read_if_unchanged(
            &dir.join("a.txt"),
            a,
            racy_after,
            &mut buf
        ));
        assert_eq!(buf, b"alpha\n");
        std::fs::write(dir.join("b.txt"), "BETA\n").unwrap();
        let b = items[1].recorded.as_ref().expect("b.txt is in the index");
        assert!(!read_if_unchanged(
            &dir.join("b.txt"),
            b,
            racy_after,
            &mut buf
        ));
    }
}
