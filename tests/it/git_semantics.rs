//! `agentenv::git` against the git CLI on the same repositories, field by field.
//!
//! The fixture is built with the git CLI (fixed identities and dates, no user or system
//! config) in the shapes that broke the first tools: merges that discard a side branch's
//! change (`-s ours`, a revert during the merge), a merge that takes the side's version,
//! criss-cross and octopus merges, a second root, runs of commits in the same second,
//! committer dates older than the parent's, renames just above and below 50 %, several
//! candidate sources for one destination, basename moves, binary files, mode changes,
//! file ↔ symlink, a submodule bump, a file that becomes a directory, empty commits and files,
//! paths that git quotes. Then a shallow clone of it (`--depth` over `file://`).
//!
//! Every commit's diff is compared with
//! `git diff-tree -r -M --raw --numstat -z <parent> <commit>` (`--root` for roots) and its
//! patch with `git diff-tree -r -M -p`; every listed walk with
//! `git log --no-mailmap --format=%H [--skip] [-n] [--since=@T] [--until=@T]
//! [-i --fixed-strings --author=A] <tips> -- ':(literal)PATH'`; revisions with
//! `git rev-parse --verify`. The first mismatch is printed readably.
//!
//! `real_repository_conformance` (ignored) runs the same comparisons over a real history:
//! `GIT_SEMANTICS_REPO=/path/to/repo.git cargo test --release --test it
//! git_semantics::real_repository_conformance -- --ignored --nocapture` (see `bench/conformance.sh`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agentenv::git::HistoryError;
use agentenv::git::diffstat::{self, DiffOptions, FileChange, Status};
use agentenv::git::log::{self, LogEnd, LogQuery};
use agentenv::git::rev;
use git2::Oid;

const T0: i64 = 1_700_000_000;

/// A repository driven through the git CLI with controlled identities and dates.
struct Fx {
    _tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    author: (String, String),
    author_date: i64,
    committer_date: i64,
}

fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C.UTF-8")
        .env("GIT_MERGE_AUTOEDIT", "no")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_LITERAL_PATHSPECS");
    c
}

fn run(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = git_cmd(dir)
        .args(args)
        .output()
        .map_err(|e| format!("git {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

impl Fx {
    fn new() -> Fx {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("repo");
        std::fs::create_dir(&dir).unwrap();
        let fx = Fx {
            _tmp: Some(tmp),
            dir,
            author: ("Ada Lovelace".into(), "ada@example.com".into()),
            author_date: T0,
            committer_date: T0,
        };
        fx.git(&["init", "-q", "-b", "main"]);
        fx
    }

    fn git(&self, args: &[&str]) -> String {
        match self.try_git(args) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs git with this fixture's identities and dates; `Err` with its output on failure.
    fn try_git(&self, args: &[&str]) -> Result<String, String> {
        let mut c = git_cmd(&self.dir);
        c.args(args)
            .env("GIT_AUTHOR_NAME", &self.author.0)
            .env("GIT_AUTHOR_EMAIL", &self.author.1)
            .env("GIT_AUTHOR_DATE", format!("@{} +0000", self.author_date))
            .env("GIT_COMMITTER_NAME", "Commit Bot")
            .env("GIT_COMMITTER_EMAIL", "bot@example.com")
            .env(
                "GIT_COMMITTER_DATE",
                format!("@{} +0000", self.committer_date),
            );
        let out = c.output().map_err(|e| format!("git {args:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn write(&self, path: &str, data: impl AsRef<[u8]>) {
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        std::fs::write(p, data).unwrap();
    }

    fn rm(&self, path: &str) {
        self.git(&["rm", "-q", "-r", "--", path]);
    }

    /// Advances the clock by a minute (both dates) and commits everything.
    fn commit(&mut self, msg: &str) -> String {
        self.author_date += 60;
        self.committer_date = self.author_date;
        self.commit_as_is(msg)
    }

    /// Commits with the dates as they are set.
    fn commit_as_is(&mut self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn tick(&mut self) {
        self.author_date += 60;
        self.committer_date = self.author_date;
    }

    fn open(&self) -> git2::Repository {
        git2::Repository::open(&self.dir).expect("open")
    }
}

/// Forty distinct lines of about thirty bytes each.
fn lines(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{tag} line {i:03} with some filler text\n"))
        .collect()
}

/// `base` with the lines at `replace` swapped for new ones of the same length.
fn edited(base: &str, tag: &str, replace: impl Fn(usize) -> bool) -> String {
    base.lines()
        .enumerate()
        .map(|(i, l)| {
            if replace(i) {
                format!("{tag} LINE {i:03} WITH OTHER FILLER\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

fn binary(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i % 97 == 0 {
                0
            } else {
                (i as u8).wrapping_mul(seed)
            }
        })
        .collect()
}

/// The repository with every shape; returns it and the names of its interesting branches.
fn build_fixture() -> Fx {
    let mut fx = Fx::new();
    let util = lines("util", 40);
    let config = lines("config", 40);
    let story = lines("story", 40);
    let essay = lines("essay", 40);
    fx.write("README.md", "# Project\n\nIntro.\n");
    fx.write("src/lib.rs", lines("lib", 60));
    fx.write("src/other.rs", lines("other", 20));
    fx.write("docs/guide.md", lines("guide", 30));
    fx.write("old/util.rs", &util);
    fx.write("a/config.rs", &config);
    fx.write("story.txt", &story);
    fx.write("essay.txt", &essay);
    fx.write("bin.dat", binary(3, 3000));
    fx.write("script.sh", "#!/bin/sh\necho hi\n");
    fx.write("link-target.txt", "target\n");
    fx.write("thing", "a file that becomes a directory\n");
    fx.write("dup/x/one.txt", "duplicate content\n");
    fx.write("dup/y/two.txt", "duplicate content\n");
    fx.write("empty.txt", "");
    fx.write("crlf.txt", lines("crlf", 30).replace('\n', "\r\n"));
    fx.commit("root");

    // Same-second runs: equal committer dates, and equal author dates with committer
    // dates that differ, on a side branch and on main, merged so the walk interleaves them.
    fx.git(&["checkout", "-q", "-b", "same-second"]);
    fx.tick();
    let second = fx.committer_date;
    for i in 0..4 {
        fx.author_date = second + i;
        fx.committer_date = second;
        fx.write("same/a.txt", format!("a {i}\n"));
        fx.commit_as_is(&format!("same committer second {i}"));
    }
    fx.git(&["checkout", "-q", "main"]);
    for i in 0..3 {
        fx.author_date = second;
        fx.committer_date = second + (i % 2);
        fx.write("same/b.txt", format!("b {i}\n"));
        fx.commit_as_is(&format!("same author second {i}"));
    }
    fx.tick();
    fx.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge same-second",
        "same-second",
    ]);

    // -s ours: the side's README change never reaches main.
    fx.git(&["checkout", "-q", "-b", "discarded"]);
    fx.write(
        "README.md",
        "# Project\n\nIntro, rewritten on a branch main discards.\n",
    );
    fx.commit("side: README change that main discards");
    fx.git(&["checkout", "-q", "main"]);
    fx.write("src/other.rs", lines("other2", 20));
    fx.commit("main: other.rs");
    fx.tick();
    fx.git(&[
        "merge",
        "-q",
        "-s",
        "ours",
        "-m",
        "merge discarded (-s ours)",
        "discarded",
    ]);

    // A merge that reverts one of the side's files by hand.
    fx.git(&["checkout", "-q", "-b", "reverted", "HEAD~1"]);
    fx.write("docs/guide.md", lines("guide-changed", 30));
    fx.write("src/other.rs", lines("other3", 20));
    fx.commit("side: guide and other.rs");
    fx.git(&["checkout", "-q", "main"]);
    fx.tick();
    fx.git(&[
        "merge",
        "-q",
        "--no-ff",
        "--no-commit",
        "-X",
        "theirs",
        "reverted",
    ]);
    fx.git(&["checkout", "HEAD", "--", "docs/guide.md"]);
    fx.commit_as_is("merge reverted, keeping main's guide");

    // A merge that takes the side's version of a file both changed.
    fx.git(&["checkout", "-q", "-b", "theirs"]);
    fx.write(
        "src/lib.rs",
        edited(&lines("lib", 60), "theirs", |i| i == 5),
    );
    fx.commit("side: lib.rs line 5");
    fx.git(&["checkout", "-q", "main"]);
    fx.write("src/lib.rs", edited(&lines("lib", 60), "ours", |i| i == 5));
    fx.commit("main: lib.rs line 5");
    fx.tick();
    let conflict = fx
        .try_git(&["merge", "-q", "--no-commit", "theirs"])
        .unwrap_err();
    assert!(conflict.contains("CONFLICT"), "{conflict}");
    fx.git(&["checkout", "theirs", "--", "src/lib.rs"]);
    fx.commit_as_is("merge theirs, taking the side's lib.rs");

    // A merge that differs from both parents on one path.
    fx.git(&["checkout", "-q", "-b", "both"]);
    let lib_now = std::fs::read_to_string(fx.dir.join("src/lib.rs")).unwrap();
    fx.write("src/lib.rs", edited(&lib_now, "both-side", |i| i == 50));
    fx.commit("side: lib.rs line 50");
    fx.git(&["checkout", "-q", "main"]);
    fx.write("src/lib.rs", edited(&lib_now, "both-main", |i| i == 10));
    fx.commit("main: lib.rs line 10");
    fx.tick();
    fx.git(&["merge", "-q", "--no-ff", "-m", "merge both", "both"]);

    // Criss-cross.
    fx.git(&["checkout", "-q", "-b", "cross-x"]);
    fx.git(&["branch", "cross-y"]);
    fx.write("cross/x.txt", "x1\n");
    let x1 = fx.commit("x1");
    fx.git(&["checkout", "-q", "cross-y"]);
    fx.write("cross/y.txt", "y1\n");
    let y1 = fx.commit("y1");
    fx.git(&["checkout", "-q", "cross-x"]);
    fx.tick();
    fx.git(&["merge", "-q", "--no-ff", "-m", "x merges y1", &y1]);
    fx.git(&["checkout", "-q", "cross-y"]);
    fx.tick();
    fx.git(&["merge", "-q", "--no-ff", "-m", "y merges x1", &x1]);
    fx.write("cross/y.txt", "y2\n");
    fx.commit("y2");
    fx.git(&["checkout", "-q", "cross-x"]);
    fx.write("cross/x.txt", "x2\n");
    fx.commit("x2");
    fx.tick();
    fx.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "x merges y again",
        "cross-y",
    ]);
    fx.git(&["checkout", "-q", "main"]);
    fx.tick();
    fx.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge criss-cross",
        "cross-x",
    ]);

    // Octopus.
    for b in ["oct1", "oct2", "oct3"] {
        fx.git(&["checkout", "-q", "-b", b, "main"]);
        fx.write(&format!("octopus/{b}.txt"), format!("{b}\n"));
        fx.commit(b);
    }
    fx.git(&["checkout", "-q", "main"]);
    fx.tick();
    fx.git(&["merge", "-q", "-m", "octopus", "oct1", "oct2", "oct3"]);

    // Clock skew: a commit older than its parent, with a newer one after it.
    let before = fx.committer_date;
    fx.write("skew.txt", "one\n");
    fx.commit("skew: normal");
    fx.author_date = before - 10_000;
    fx.committer_date = before - 10_000;
    fx.write("skew.txt", "two\n");
    fx.commit_as_is("skew: committed in the past");
    fx.author_date = before + 500;
    fx.committer_date = before + 500;
    fx.write("skew.txt", "three\n");
    fx.commit_as_is("skew: back to now");

    // Renames around 50 %, basename moves, exact duplicates, copies, rename + edit.
    fx.rm("story.txt");
    fx.write("moved/story-52.txt", edited(&story, "s", |i| i % 40 < 19)); // 21 of 40 kept
    fx.rm("essay.txt");
    fx.write("moved/essay-47.txt", edited(&essay, "e", |i| i % 40 < 21)); // 19 of 40 kept
    fx.commit("renames just above and below 50 %");
    fx.rm("old/util.rs");
    fx.write("new/util.rs", edited(&util, "u", |i| i % 5 == 0)); // 80 %: basename pass
    fx.rm("a/config.rs");
    // c/config.rs is 78 % like a/config.rs; b/settings.rs (added earlier? no: deleted now)
    fx.write("c/config.rs", edited(&config, "c", |i| i % 9 == 0));
    fx.commit("basename moves");
    fx.rm("dup/x/one.txt");
    fx.rm("dup/y/two.txt");
    fx.write("dup/z/two.txt", "duplicate content\n");
    fx.write("dup/w/three.txt", "duplicate content\n");
    fx.write("copy-of-guide.md", lines("guide", 30));
    fx.commit("exact renames with several sources, and a copy");
    // Two sources equally similar to one destination; a same-basename source among equals.
    let tie = lines("tie", 40);
    fx.write("tie/left.txt", edited(&tie, "l", |i| i < 10));
    fx.write("tie/right.txt", edited(&tie, "r", |i| i < 10));
    fx.write("tie2/a/name.txt", edited(&tie, "n", |i| i >= 30));
    fx.write("tie2/b/else.txt", edited(&tie, "m", |i| i >= 30));
    fx.commit("tie sources");
    fx.rm("tie/left.txt");
    fx.rm("tie/right.txt");
    fx.write("tie/merged.txt", &tie);
    fx.rm("tie2/a/name.txt");
    fx.rm("tie2/b/else.txt");
    fx.write("tie2/c/name.txt", &tie);
    fx.commit("tied renames");
    let lib_now = std::fs::read_to_string(fx.dir.join("src/lib.rs")).unwrap();
    fx.rm("src/lib.rs");
    fx.write("src/core.rs", edited(&lib_now, "core", |i| i % 10 == 3));
    fx.commit("rename plus edit");

    // Binary, modes, symlinks, type changes, submodules, file → directory, empty files.
    fx.write("bin.dat", binary(5, 3000));
    fx.commit("binary change");
    fx.rm("bin.dat");
    fx.write("assets/bin.dat", binary(5, 3000));
    fx.commit("binary exact rename");
    fx.rm("assets/bin.dat");
    let mut b = binary(5, 3000);
    b[100..160].copy_from_slice(&[7u8; 60]);
    fx.write("assets/bin2.dat", b);
    fx.commit("binary inexact rename");
    let script = fx.dir.join("script.sh");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fx.commit("chmod +x");
    std::os::unix::fs::symlink("link-target.txt", fx.dir.join("link")).unwrap();
    fx.commit("add a symlink");
    std::fs::remove_file(fx.dir.join("link-target.txt")).unwrap();
    std::os::unix::fs::symlink("link", fx.dir.join("link-target.txt")).unwrap();
    fx.commit("file becomes a symlink");
    std::fs::remove_file(fx.dir.join("link")).unwrap();
    fx.write("link", "now a file\n");
    fx.commit("symlink becomes a file");
    let sub1 = x1.clone();
    let sub2 = y1.clone();
    fx.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{sub1},vendor/lib"),
    ]);
    fx.tick();
    fx.git(&["commit", "-q", "-m", "add a submodule"]);
    fx.git(&[
        "update-index",
        "--cacheinfo",
        &format!("160000,{sub2},vendor/lib"),
    ]);
    fx.tick();
    fx.git(&["commit", "-q", "-m", "bump the submodule"]);
    fx.git(&["rm", "-q", "--cached", "vendor/lib"]);
    fx.tick();
    fx.git(&["commit", "-q", "-m", "drop the submodule"]);
    fx.rm("thing");
    fx.write("thing/inner.txt", "a file that becomes a directory\n");
    fx.commit("file becomes a directory");
    fx.rm("empty.txt");
    fx.write("moved-empty.txt", "");
    fx.commit("empty file renamed");
    fx.rm("crlf.txt");
    fx.write(
        "crlf-moved.txt",
        edited(&lines("crlf", 30), "k", |i| i % 4 == 0).replace('\n', "\r\n"),
    );
    fx.commit("crlf rename");
    fx.write("docs/naïve file.txt", "quoted path\n");
    fx.write("docs/tab\tname.txt", "tab in the name\n");
    fx.write("docs/q\"uote.txt", "a quote\n");
    fx.commit("paths git quotes");
    fx.write(
        "docs/naïve file.txt",
        "quoted path, edited\nno newline at the end",
    );
    fx.commit("edit a quoted path, no trailing newline");
    fx.commit("an empty commit");

    // A second root, merged in.
    fx.git(&["checkout", "-q", "--orphan", "other-root"]);
    fx.git(&["rm", "-q", "-r", "--cached", "."]);
    for entry in std::fs::read_dir(&fx.dir).unwrap().flatten() {
        if entry.file_name() != ".git" {
            let p = entry.path();
            if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    fx.write("other-root/file.txt", "from another root\n");
    fx.write("README.md", "# Another root's README\n");
    fx.commit("second root");
    fx.git(&["checkout", "-q", "-f", "main"]);
    fx.tick();
    fx.git(&[
        "merge",
        "-q",
        "--allow-unrelated-histories",
        "-s",
        "ours",
        "-m",
        "merge the second root",
        "other-root",
    ]);

    // Another author, and a commit whose author line `git log --author` must split right.
    fx.author = ("Grace Hopper".into(), "grace@navy.example".into());
    fx.write("docs/guide.md", lines("guide-by-grace", 30));
    fx.commit("grace edits the guide");
    fx.author = ("Élodie Ünal".into(), "elodie@example.com".into());
    fx.write("docs/guide.md", lines("guide-by-elodie", 30));
    fx.commit("élodie edits the guide");
    fx.author = ("Ada Lovelace".into(), "ada@example.com".into());
    fx.write("README.md", "# Project\n\nIntro, final.\n");
    fx.commit("final README");
    fx
}

// ---------------------------------------------------------------------------------------
// Comparison with git diff-tree.

/// One file of `git diff-tree -r -M --raw --numstat -z`.
#[derive(Debug, PartialEq, Eq)]
struct GitFile {
    status: char,
    score: Option<u32>,
    old_mode: u32,
    new_mode: u32,
    old_id: String,
    new_id: String,
    old_path: Option<Vec<u8>>,
    path: Vec<u8>,
    /// None: binary (numstat's dashes).
    lines: Option<(u64, u64)>,
}

fn parse_diff_tree(out: &[u8]) -> Result<Vec<GitFile>, String> {
    let mut tokens = out.split(|&c| c == 0).peekable();
    let mut files = Vec::new();
    while let Some(t) = tokens.next_if(|t| t.starts_with(b":")) {
        let head = String::from_utf8_lossy(&t[1..]).into_owned();
        let f: Vec<&str> = head.split(' ').collect();
        if f.len() != 5 {
            return Err(format!("bad raw line {head:?}"));
        }
        let status = f[4].chars().next().ok_or("empty status")?;
        let score = f[4][1..].parse::<u32>().ok();
        let first = tokens.next().ok_or("raw line without a path")?.to_vec();
        let (old_path, path) = if matches!(status, 'R' | 'C') {
            (
                Some(first),
                tokens.next().ok_or("rename without a new path")?.to_vec(),
            )
        } else {
            (None, first)
        };
        files.push(GitFile {
            status,
            score,
            old_mode: u32::from_str_radix(f[0], 8).map_err(|e| e.to_string())?,
            new_mode: u32::from_str_radix(f[1], 8).map_err(|e| e.to_string())?,
            old_id: f[2].to_string(),
            new_id: f[3].to_string(),
            old_path,
            path,
            lines: None,
        });
    }
    for file in files.iter_mut() {
        let t = tokens.next().ok_or("fewer numstat lines than raw lines")?;
        let text = String::from_utf8_lossy(t).into_owned();
        let mut parts = text.splitn(3, '\t');
        let (a, d, rest) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if rest.is_empty() {
            let old = tokens.next().ok_or("numstat rename without paths")?;
            let new = tokens.next().ok_or("numstat rename without paths")?;
            if Some(old) != file.old_path.as_deref() || new != file.path.as_slice() {
                return Err(format!("numstat and raw disagree on {text:?}"));
            }
        }
        file.lines = match (a.parse(), d.parse()) {
            (Ok(a), Ok(d)) => Some((a, d)),
            _ if a == "-" && d == "-" => None,
            _ => return Err(format!("bad numstat {text:?}")),
        };
    }
    Ok(files)
}

fn ours_as_git(f: &FileChange) -> GitFile {
    let zero = "0".repeat(40);
    GitFile {
        status: f.status.letter(),
        score: (f.status == Status::Renamed).then(|| f.similarity()),
        old_mode: f.old.map_or(0, |s| s.mode),
        new_mode: f.new.map_or(0, |s| s.mode),
        old_id: f.old.map_or(zero.clone(), |s| s.id.to_string()),
        new_id: f.new.map_or(zero, |s| s.id.to_string()),
        old_path: f.old_path.clone(),
        path: f.path.clone(),
        lines: (!f.binary).then_some((f.additions, f.deletions)),
    }
}

fn first_parent(repo: &Path, commit: &str) -> Option<String> {
    run(
        repo,
        &["rev-parse", "--verify", "-q", &format!("{commit}^1")],
    )
    .ok()
    .map(|o| String::from_utf8_lossy(&o).trim().to_string())
}

/// Compares one commit's diff; `Err` describes the first difference.
fn check_diff(repo: &Path, git: &git2::Repository, commit: &str) -> Result<(), String> {
    let args: Vec<String> = match first_parent(repo, commit) {
        Some(p) => vec![p, commit.to_string()],
        None => vec!["--root".into(), commit.to_string()],
    };
    let mut cmd = vec![
        "diff-tree",
        "-r",
        "-M",
        "--raw",
        "--numstat",
        "-z",
        "--no-commit-id",
    ];
    cmd.extend(args.iter().map(String::as_str));
    let theirs = parse_diff_tree(&run(repo, &cmd)?)?;
    let ours = diffstat::diff_commit(
        git,
        Oid::from_str(commit).unwrap(),
        &DiffOptions::from_config(git),
    )
    .map_err(|e| format!("ours failed: {e}"))?;
    let ours: Vec<GitFile> = ours.diff.files.iter().map(ours_as_git).collect();
    compare_lists(&format!("git {}", cmd.join(" ")), &theirs, &ours)
}

fn compare_lists(what: &str, theirs: &[GitFile], ours: &[GitFile]) -> Result<(), String> {
    for (i, (t, o)) in theirs.iter().zip(ours).enumerate() {
        if t != o {
            return Err(format!(
                "{what}: file {i} differs\n  git:  {}\n  ours: {}",
                show(t),
                show(o)
            ));
        }
    }
    if theirs.len() != ours.len() {
        let (longer, who) = if theirs.len() > ours.len() {
            (theirs, "only git")
        } else {
            (ours, "only ours")
        };
        let n = theirs.len().min(ours.len());
        return Err(format!(
            "{what}: git lists {} files, ours {}; {who}: {}",
            theirs.len(),
            ours.len(),
            show(&longer[n])
        ));
    }
    Ok(())
}

fn show(f: &GitFile) -> String {
    let path = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    format!(
        "{}{} {:06o}->{:06o} {}..{} {}{} {}",
        f.status,
        f.score.map_or(String::new(), |s| format!("{s:03}")),
        f.old_mode,
        f.new_mode,
        &f.old_id[..7],
        &f.new_id[..7],
        f.old_path
            .as_deref()
            .map_or(String::new(), |p| format!("{} => ", path(p))),
        path(&f.path),
        f.lines
            .map_or("binary".to_string(), |(a, d)| format!("+{a} -{d}"))
    )
}

fn check_patch(repo: &Path, git: &git2::Repository, commit: &str) -> Result<(), String> {
    let mut cmd = vec!["diff-tree", "-r", "-M", "-p", "--no-commit-id"];
    let parent = first_parent(repo, commit);
    match &parent {
        Some(p) => cmd.push(p),
        None => cmd.push("--root"),
    }
    cmd.push(commit);
    let theirs = run(repo, &cmd)?;
    let diff = diffstat::diff_commit(
        git,
        Oid::from_str(commit).unwrap(),
        &DiffOptions::from_config(git),
    )
    .map_err(|e| e.to_string())?;
    let ours = diffstat::write_patch(git, &diff.diff, usize::MAX).map_err(|e| e.to_string())?;
    if ours.text != theirs {
        let (t, o) = (
            String::from_utf8_lossy(&theirs),
            String::from_utf8_lossy(&ours.text),
        );
        let line = t
            .lines()
            .zip(o.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(t.lines().count().min(o.lines().count()));
        return Err(format!(
            "patch of {commit} differs at line {}:\n  git:  {:?}\n  ours: {:?}",
            line + 1,
            t.lines().nth(line),
            o.lines().nth(line)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Comparison with git log.

fn git_log_args(tips: &[String], q: &LogQuery) -> Vec<String> {
    let mut a = vec![
        "log".to_string(),
        "--no-mailmap".into(),
        "--format=%H".into(),
    ];
    if q.skip > 0 {
        a.push(format!("--skip={}", q.skip));
    }
    if let Some(n) = q.limit {
        a.push(format!("-n{n}"));
    }
    if let Some(s) = q.since {
        a.push(format!("--since=@{s}"));
    }
    if let Some(u) = q.until {
        a.push(format!("--until=@{u}"));
    }
    if let Some(author) = &q.author {
        a.push("-i".into());
        a.push("--fixed-strings".into());
        a.push(format!("--author={author}"));
    }
    a.extend(tips.iter().cloned());
    a.push("--".into());
    a.extend(q.paths.iter().map(|p| format!(":(literal){p}")));
    a
}

fn git_log(repo: &Path, tips: &[String], q: &LogQuery) -> Result<Vec<String>, String> {
    let args = git_log_args(tips, q);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(repo, &args)?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_string)
        .collect())
}

fn ours_log(git: &git2::Repository, tips: &[String], q: &LogQuery) -> Result<log::Log, String> {
    let tips: Vec<Oid> = tips
        .iter()
        .map(|t| {
            git.revparse_single(t)
                .map(|o| o.id())
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    log::log(git, &tips, q).map_err(|e| format!("ours failed: {e}"))
}

fn check_log(
    repo: &Path,
    git: &git2::Repository,
    tips: &[String],
    q: &LogQuery,
) -> Result<(), String> {
    let theirs = git_log(repo, tips, q)?;
    let ours = ours_log(git, tips, q)?;
    let ours_ids: Vec<String> = ours.commits.iter().map(Oid::to_string).collect();
    if theirs != ours_ids {
        let at = theirs
            .iter()
            .zip(&ours_ids)
            .position(|(a, b)| a != b)
            .unwrap_or(theirs.len().min(ours_ids.len()));
        let subject = |id: Option<&String>| {
            id.map_or("(end)".to_string(), |id| {
                run(
                    repo,
                    &["log", "-1", "--format=%h %cd %s", "--date=unix", id],
                )
                .map(|o| String::from_utf8_lossy(&o).trim().to_string())
                .unwrap_or_default()
            })
        };
        return Err(format!(
            "git {} — {} commits from git, {} ours; first difference at {at}:\n  git:  {}\n  ours: {}",
            git_log_args(tips, q).join(" "),
            theirs.len(),
            ours_ids.len(),
            subject(theirs.get(at)),
            subject(ours_ids.get(at)),
        ));
    }
    let want_end = if q.limit.is_some_and(|l| ours_ids.len() >= l) {
        LogEnd::Limit
    } else {
        LogEnd::Complete
    };
    if ours.end != want_end {
        return Err(format!(
            "git {}: ended {:?}, expected {want_end:?}",
            git_log_args(tips, q).join(" "),
            ours.end
        ));
    }
    Ok(())
}

fn all_commits(repo: &Path, refs: &[&str]) -> Vec<String> {
    let mut args = vec!["rev-list"];
    args.extend(refs);
    String::from_utf8_lossy(&run(repo, &args).unwrap())
        .lines()
        .map(str::to_string)
        .collect()
}

fn commit_dates(repo: &Path) -> Vec<i64> {
    let out = run(repo, &["log", "--all", "--format=%ct"]).unwrap();
    let mut d: Vec<i64> = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    d.sort();
    d.dedup();
    d
}

/// Every failure, so one run shows them all.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn note(&mut self, r: Result<(), String>) {
        if let Err(e) = r {
            self.0.push(e);
        }
    }
    fn assert_none(&self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{} {what} mismatch(es); the first ones:\n\n{}",
            self.0.len(),
            self.0
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn every_commit_diffs_as_git_diff_tree_does() {
    let fx = build_fixture();
    let git = fx.open();
    let mut failures = Failures::default();
    let commits = all_commits(&fx.dir, &["--all"]);
    assert!(
        commits.len() > 60,
        "the fixture has {} commits",
        commits.len()
    );
    for c in &commits {
        failures.note(check_diff(&fx.dir, &git, c));
    }
    failures.assert_none("diff-tree");

    // The shapes are really there (a test that cannot fail is a defect).
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in &commits {
        let d = diffstat::diff_commit(&git, Oid::from_str(c).unwrap(), &DiffOptions::default())
            .unwrap();
        for f in &d.diff.files {
            let key = match f.status {
                Status::Renamed if f.similarity() == 100 => "exact rename",
                Status::Renamed if f.similarity() < 75 => "rename below 75 %",
                Status::Renamed => "rename",
                Status::TypeChanged => "type change",
                Status::Modified if f.old.map(|s| s.mode) != f.new.map(|s| s.mode) => "mode change",
                _ if f.binary => "binary",
                _ if f.new.is_some_and(|s| s.is_submodule()) => "submodule",
                _ => continue,
            };
            *seen.entry(key.to_string()).or_default() += 1;
        }
    }
    for key in [
        "exact rename",
        "rename below 75 %",
        "rename",
        "type change",
        "mode change",
        "binary",
        "submodule",
    ] {
        assert!(seen.contains_key(key), "no {key} in the fixture: {seen:?}");
    }
}

#[test]
fn renames_pair_as_git_pairs_them() {
    let fx = build_fixture();
    let git = fx.open();
    let find = |subject: &str| {
        fx.git(&[
            "log",
            "--all",
            "--format=%H",
            "--fixed-strings",
            &format!("--grep={subject}"),
        ])
    };
    let files = |subject: &str| -> Vec<(Status, Option<String>, String)> {
        let id = Oid::from_str(&find(subject)).unwrap();
        diffstat::diff_commit(&git, id, &DiffOptions::default())
            .unwrap()
            .diff
            .files
            .into_iter()
            .map(|f| (f.status, f.old_path_lossy(), f.path_lossy()))
            .collect()
    };
    let renamed = |from: &str, to: &str| (Status::Renamed, Some(from.to_string()), to.to_string());
    let plain = |s: Status, p: &str| (s, None, p.to_string());
    // 52 % is a rename, 47 % an addition and a deletion.
    assert_eq!(
        files("renames just above and below 50 %"),
        [
            plain(Status::Deleted, "essay.txt"),
            plain(Status::Added, "moved/essay-47.txt"),
            renamed("story.txt", "moved/story-52.txt"),
        ]
    );
    // Same content in two deleted files: the destination with the same basename takes that
    // source, the other destination the remaining one; an added copy of an unchanged file is
    // an addition (no copy detection in -M).
    assert_eq!(
        files("exact renames with several sources, and a copy"),
        [
            plain(Status::Added, "copy-of-guide.md"),
            renamed("dup/x/one.txt", "dup/w/three.txt"),
            renamed("dup/y/two.txt", "dup/z/two.txt"),
        ]
    );
    // Equal scores: the first source wins; among equal scores the same basename wins.
    assert_eq!(
        files("tied renames"),
        [
            renamed("tie/left.txt", "tie/merged.txt"),
            plain(Status::Deleted, "tie/right.txt"),
            plain(Status::Deleted, "tie2/b/else.txt"),
            renamed("tie2/a/name.txt", "tie2/c/name.txt"),
        ]
    );
}

#[test]
fn the_rename_limit_turns_off_inexact_renames_as_in_git() {
    let mut fx = Fx::new();
    for i in 0..3 {
        fx.write(&format!("from/f{i}.txt"), lines(&format!("f{i}"), 40));
    }
    fx.write("exact.txt", "moved as is\n");
    fx.commit("three files");
    for i in 0..3 {
        fx.rm(&format!("from/f{i}.txt"));
        fx.write(
            &format!("to/g{i}.txt"),
            edited(&lines(&format!("f{i}"), 40), "g", |l| l < 4),
        );
    }
    fx.rm("exact.txt");
    fx.write("exact-moved.txt", "moved as is\n");
    let head = fx.commit("move and edit them");
    fx.git(&["config", "diff.renameLimit", "2"]);
    let git = fx.open();
    check_diff(&fx.dir, &git, &head).unwrap();
    let d = diffstat::diff_commit(
        &git,
        Oid::from_str(&head).unwrap(),
        &DiffOptions::from_config(&git),
    )
    .unwrap();
    assert_eq!(d.diff.renames_skipped, Some(3));
    let renames = d
        .diff
        .files
        .iter()
        .filter(|f| f.status == Status::Renamed)
        .count();
    assert_eq!(renames, 1, "only the exact rename survives the limit");
    fx.git(&["config", "diff.renameLimit", "0"]);
    let git = fx.open();
    check_diff(&fx.dir, &git, &head).unwrap();
    let d = diffstat::diff_commit(
        &git,
        Oid::from_str(&head).unwrap(),
        &DiffOptions::from_config(&git),
    )
    .unwrap();
    assert_eq!(d.diff.renames_skipped, None);
    assert_eq!(
        d.diff
            .files
            .iter()
            .filter(|f| f.status == Status::Renamed)
            .count(),
        4
    );
}

#[test]
fn every_patch_prints_as_git_diff_tree_p_does() {
    let fx = build_fixture();
    let git = fx.open();
    let mut failures = Failures::default();
    for c in all_commits(&fx.dir, &["--all"]) {
        failures.note(check_patch(&fx.dir, &git, &c));
    }
    failures.assert_none("patch");

    // The cap cuts at a line boundary and says so.
    let head = Oid::from_str(&fx.git(&["rev-parse", "HEAD~1"])).unwrap();
    let d = diffstat::diff_commit(&git, head, &DiffOptions::default()).unwrap();
    let full = diffstat::write_patch(&git, &d.diff, usize::MAX).unwrap();
    let cut = diffstat::write_patch(&git, &d.diff, full.text.len() / 2).unwrap();
    assert!(cut.truncated && !full.truncated);
    assert!(full.text.starts_with(&cut.text));
    assert!(cut.text.ends_with(b"\n"));
}

/// Paths and filters to ask about, on several tips.
fn log_queries(repo: &Path) -> Vec<LogQuery> {
    let paths: &[&[&str]] = &[
        &[],
        &["README.md"],
        &["docs/guide.md"],
        &["docs"],
        &["src/lib.rs"],
        &["src/other.rs"],
        &["src"],
        &["same"],
        &["cross"],
        &["octopus/oct2.txt"],
        &["skew.txt"],
        &["story.txt"],
        &["moved/story-52.txt"],
        &["vendor/lib"],
        &["vendor"],
        &["thing"],
        &["thing/inner.txt"],
        &["link-target.txt"],
        &["other-root"],
        &["docs/naïve file.txt"],
        &["does/not/exist"],
        &["README.md", "src/other.rs"],
        &["src", "src/lib.rs"],
    ];
    let dates = commit_dates(repo);
    let mid = dates[dates.len() / 2];
    let late = dates[dates.len() * 3 / 4];
    let mut out = Vec::new();
    for p in paths {
        let base = LogQuery {
            paths: p.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        out.push(base.clone());
        out.push(LogQuery {
            since: Some(mid),
            ..base.clone()
        });
        out.push(LogQuery {
            until: Some(late),
            since: Some(mid - 600),
            ..base.clone()
        });
        out.push(LogQuery {
            author: Some("GRACE".into()),
            ..base.clone()
        });
        out.push(LogQuery {
            skip: 2,
            limit: Some(3),
            ..base.clone()
        });
    }
    for author in [
        "ada@EXAMPLE",
        "lovelace <ada",
        "élodie",
        "ÜNAL <ELO",
        "nobody",
        "",
        "bot@example.com",
    ] {
        out.push(LogQuery {
            author: Some(author.into()),
            ..Default::default()
        });
    }
    // Exact date boundaries, and a `since` that stops the walk at the skewed commit.
    for &d in dates.iter().step_by(7) {
        out.push(LogQuery {
            since: Some(d),
            ..Default::default()
        });
        out.push(LogQuery {
            until: Some(d),
            ..Default::default()
        });
    }
    out
}

#[test]
fn every_walk_lists_what_git_log_lists() {
    let fx = build_fixture();
    let git = fx.open();
    let tips: &[&[&str]] = &[
        &["main"],
        &["discarded"],
        &["cross-y"],
        &["same-second", "discarded"],
        &["oct3", "oct1", "theirs"],
        &["other-root", "main"],
    ];
    let mut failures = Failures::default();
    let mut checked = 0;
    for t in tips {
        let tips: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        for q in log_queries(&fx.dir) {
            failures.note(check_log(&fx.dir, &git, &tips, &q));
            checked += 1;
        }
    }
    failures.assert_none(&format!("log (of {checked} walks)"));
}

#[test]
fn walks_show_what_the_issue_found_wrong() {
    let fx = build_fixture();
    let git = fx.open();
    let main = vec!["main".to_string()];
    let subjects = |q: &LogQuery| -> Vec<String> {
        ours_log(&git, &main, q)
            .unwrap()
            .commits
            .iter()
            .map(|c| {
                String::from_utf8_lossy(
                    git.find_commit(*c)
                        .unwrap()
                        .summary_bytes()
                        .unwrap_or_default(),
                )
                .into_owned()
            })
            .collect()
    };
    let readme = LogQuery {
        paths: vec!["README.md".into()],
        ..Default::default()
    };
    let s = subjects(&readme);
    assert!(
        !s.iter().any(|s| s.contains("main discards")),
        "a change that never reached main is not listed: {s:?}"
    );
    assert_eq!(s, ["final README", "root"]);
    let guide = subjects(&LogQuery {
        paths: vec!["docs/guide.md".into()],
        ..Default::default()
    });
    assert_eq!(
        guide,
        ["élodie edits the guide", "grace edits the guide", "root"],
        "the reverted side change is hidden"
    );
    let by_elodie = subjects(&LogQuery {
        author: Some("ÜNAL <ELO".into()),
        ..Default::default()
    });
    assert_eq!(
        by_elodie,
        ["élodie edits the guide"],
        "case folds beyond ASCII"
    );
    let lib = subjects(&LogQuery {
        paths: vec!["src/lib.rs".into()],
        ..Default::default()
    });
    assert!(lib.contains(&"side: lib.rs line 5".to_string()), "{lib:?}");
    assert!(!lib.contains(&"main: lib.rs line 5".to_string()), "{lib:?}");
    assert!(lib.contains(&"merge both".to_string()), "{lib:?}");

    // Equal dates: child before parent, as git (the first tools put parents first).
    let same = subjects(&LogQuery {
        paths: vec!["same".into()],
        ..Default::default()
    });
    let pos = |s: &str| same.iter().position(|x| x == s).unwrap();
    assert!(
        pos("same committer second 3") < pos("same committer second 0"),
        "{same:?}"
    );
}

#[test]
fn since_stops_the_walk_where_git_stops_it() {
    let fx = build_fixture();
    let git = fx.open();
    let skewed = fx.git(&["log", "--format=%ct", "-1", "--grep=committed in the past"]);
    let normal = fx.git(&["log", "--format=%ct", "-1", "--grep=skew: normal"]);
    let since: i64 = skewed.parse::<i64>().unwrap() + 1;
    assert!(normal.parse::<i64>().unwrap() >= since);
    let q = LogQuery {
        since: Some(since),
        ..Default::default()
    };
    check_log(&fx.dir, &git, &["main".to_string()], &q).unwrap();
    let shown = ours_log(&git, &["main".to_string()], &q).unwrap().commits;
    let normal_id =
        Oid::from_str(&fx.git(&["log", "--format=%H", "-1", "--grep=skew: normal"])).unwrap();
    assert!(
        !shown.contains(&normal_id),
        "git does not look past a commit older than --since, even at newer parents"
    );
}

#[test]
fn a_shallow_clone_answers_what_it_can_and_says_what_it_needs() {
    let fx = build_fixture();
    let tmp = tempfile::tempdir().unwrap();
    let shallow = tmp.path().join("shallow");
    let url = format!("file://{}", fx.dir.display());
    run(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "3",
            "--branch",
            "main",
            &url,
            shallow.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert!(shallow.join(".git/shallow").exists());
    let main = vec!["main".to_string()];
    let queries = [
        LogQuery::default(),
        LogQuery {
            limit: Some(2),
            ..Default::default()
        },
        LogQuery {
            limit: Some(10),
            ..Default::default()
        },
        LogQuery {
            paths: vec!["README.md".into()],
            limit: Some(2),
            ..Default::default()
        },
        LogQuery {
            paths: vec!["docs".into()],
            ..Default::default()
        },
        LogQuery {
            author: Some("grace".into()),
            ..Default::default()
        },
    ];
    let full = fx.open();
    for q in &queries {
        let truth = git_log(&fx.dir, &main, q).unwrap();
        // Deepen as the answer asks until it is complete; every partial answer is a
        // prefix of the truth.
        let clone = tmp.path().join(format!("c{}", rand_suffix(q)));
        run(
            tmp.path(),
            &[
                "clone",
                "-q",
                "--depth",
                "2",
                "--branch",
                "main",
                &url,
                clone.to_str().unwrap(),
            ],
        )
        .unwrap();
        let mut rounds = 0;
        loop {
            let git = git2::Repository::open(&clone).unwrap();
            let got = ours_log(&git, &main, q).unwrap();
            let ids: Vec<String> = got.commits.iter().map(Oid::to_string).collect();
            assert!(
                truth.starts_with(&ids),
                "partial answer is not a prefix of git's: {ids:?} vs {truth:?}"
            );
            match got.end {
                LogEnd::NeedsHistory(n) => {
                    assert!(!n.boundary.is_empty() && n.at_least >= 1);
                    let shallow_list = std::fs::read_to_string(clone.join(".git/shallow")).unwrap();
                    assert!(shallow_list.contains(&n.boundary[0].to_string()));
                    // As a caller would: at least what is asked, doubling each round.
                    let by = n.at_least.max(1 << rounds);
                    run(&clone, &["fetch", "-q", &format!("--deepen={by}")]).unwrap();
                    rounds += 1;
                    assert!(
                        rounds < 20,
                        "deepening does not converge: {q:?}, {} commits",
                        ids.len()
                    );
                }
                _ => {
                    assert_eq!(ids, truth, "complete answer after {rounds} deepenings");
                    break;
                }
            }
        }
    }

    // A commit at the boundary: no diff against an empty tree, but "needs history"; after
    // deepening, git's diff.
    let git = git2::Repository::open(&shallow).unwrap();
    let boundary = std::fs::read_to_string(shallow.join(".git/shallow")).unwrap();
    let boundary = Oid::from_str(boundary.lines().next().unwrap()).unwrap();
    match diffstat::diff_commit(&git, boundary, &DiffOptions::default()) {
        Err(HistoryError::NeedsHistory(n)) => assert_eq!(n.boundary, [boundary]),
        other => panic!("expected NeedsHistory, got {other:?}"),
    }
    match rev::walk_steps(&git, boundary, &[rev::Step::Ancestor(2)], "x~2") {
        Err(HistoryError::NeedsHistory(n)) => assert_eq!(n.wanted, Some(2)),
        other => panic!("expected NeedsHistory, got {other:?}"),
    }
    run(&shallow, &["fetch", "-q", "--deepen=1"]).unwrap();
    let git = git2::Repository::open(&shallow).unwrap();
    check_diff(&fx.dir, &git, &boundary.to_string()).unwrap();
    // A `since` newer than the boundary needs nothing more.
    let since = full.find_commit(boundary).unwrap().time().seconds() + 1;
    let q = LogQuery {
        since: Some(since),
        ..Default::default()
    };
    let got = ours_log(&git, &main, &q).unwrap();
    assert_eq!(got.end, LogEnd::Complete);
    assert_eq!(
        got.commits.iter().map(Oid::to_string).collect::<Vec<_>>(),
        git_log(&fx.dir, &main, &q).unwrap()
    );
}

fn rand_suffix(q: &LogQuery) -> String {
    format!("{:x}", {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{q:?}").hash(&mut h);
        h.finish()
    })
}

#[test]
fn ancestry_resolves_as_git_rev_parse_does() {
    let fx = build_fixture();
    let git = fx.open();
    let mut failures = Failures::default();
    let names = [
        "main",
        "cross-x",
        "cross-y",
        "same-second",
        "oct1",
        "other-root",
    ];
    let suffixes = [
        "", "^", "^0", "^1", "^2", "^3", "^4", "~", "~0", "~1", "~3", "~2^2", "^2~1", "^^",
        "~1^2^", "~40", "~400",
    ];
    for name in names {
        for sfx in suffixes {
            let spec = format!("{name}{sfx}");
            let theirs = run(
                &fx.dir,
                &["rev-parse", "--verify", "-q", &format!("{spec}^{{commit}}")],
            )
            .ok()
            .map(|o| String::from_utf8_lossy(&o).trim().to_string());
            let parsed = rev::parse_ancestry(&spec).unwrap();
            let base = git.revparse_single(parsed.name).unwrap().id();
            let ours = rev::walk_steps(&git, base, &parsed.steps, &spec);
            let ours = match ours {
                Ok(id) => Some(id.to_string()),
                Err(HistoryError::NoSuchParent { .. }) => None,
                Err(e) => {
                    failures.0.push(format!("{spec}: {e}"));
                    continue;
                }
            };
            if ours != theirs {
                failures
                    .0
                    .push(format!("{spec}: git {theirs:?}, ours {ours:?}"));
            }
        }
    }
    failures.assert_none("rev-parse");
}

#[test]
fn abbreviated_ids_resolve_as_git_rev_parse_does() {
    // Enough commits and blobs that four-digit prefixes collide: commit with commit, and
    // commit with tree or blob.
    let fx = Fx::new();
    let mut script = String::new();
    for i in 0..1500 {
        let body = format!("blob {i}");
        script.push_str(&format!(
            "blob\nmark :{m}\ndata {len}\n{body}\n",
            m = i + 1,
            len = body.len(),
        ));
    }
    for i in 0..1500 {
        let msg = format!("c{i:04}");
        let parent = if i == 0 {
            String::new()
        } else {
            format!("from :{}\n", 100_000 + i - 1)
        };
        script.push_str(&format!(
            "commit refs/heads/main\nmark :{m}\ncommitter C <c@x> {t} +0000\ndata {}\n{msg}\n{parent}M 100644 :{b} f{}.txt\n\n",
            msg.len(),
            i % 50,
            m = 100_000 + i,
            t = T0 + (i as i64 / 7),
            b = i + 1,
        ));
    }
    let mut child = git_cmd(&fx.dir)
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let git = fx.open();

    let listing = run(
        &fx.dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objecttype)",
        ],
    )
    .unwrap();
    let mut by_prefix: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&listing).lines() {
        let (id, kind) = line.split_once(' ').unwrap();
        by_prefix
            .entry(id[..4].to_string())
            .or_default()
            .push((id.to_string(), kind.to_string()));
    }
    let mut failures = Failures::default();
    let (mut commit_vs_other, mut commit_vs_commit, mut unique) = (0, 0, 0);
    for objs in by_prefix.values() {
        let commits = objs.iter().filter(|(_, k)| k == "commit").count();
        let interesting = match (objs.len(), commits) {
            (1, _) if unique < 40 => {
                unique += 1;
                true
            }
            (n, 1) if n > 1 => {
                commit_vs_other += 1;
                true
            }
            (_, c) if c > 1 => {
                commit_vs_commit += 1;
                true
            }
            _ => false,
        };
        if !interesting {
            continue;
        }
        for len in [4, 5] {
            let p = &objs[0].0[..len];
            let theirs = run(
                &fx.dir,
                &["rev-parse", "--verify", "-q", &format!("{p}^{{commit}}")],
            )
            .ok()
            .map(|o| String::from_utf8_lossy(&o).trim().to_string());
            let ours = rev::resolve_commit_prefix(&git, p);
            let ok = match (&theirs, &ours) {
                (Some(t), Ok(o)) => *t == o.to_string(),
                (None, Err(HistoryError::Ambiguous { candidates, .. })) => candidates.len() >= 2,
                (None, Err(HistoryError::NotACommit { .. })) => true,
                _ => false,
            };
            if !ok {
                failures.0.push(format!(
                    "{p}: git {theirs:?}, ours {ours:?} (objects {objs:?})"
                ));
            }
        }
    }
    failures.assert_none("abbreviated id");
    assert!(
        commit_vs_other > 0 && commit_vs_commit > 0 && unique > 0,
        "the fixture lacks a collision kind: {commit_vs_other} commit/other, {commit_vs_commit} commit/commit"
    );
    // Full ids and bad input.
    let head = fx.git(&["rev-parse", "HEAD"]);
    assert_eq!(
        rev::resolve_commit_prefix(&git, &head.to_uppercase())
            .unwrap()
            .to_string(),
        head
    );
    for bad in [
        "abc",
        "xyz1234",
        "",
        "12345678901234567890123456789012345678901",
    ] {
        assert!(
            matches!(
                rev::resolve_commit_prefix(&git, bad),
                Err(HistoryError::Syntax { .. })
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        rev::resolve_commit_prefix(&git, "0000000000000000000000000000000000000000"),
        Err(HistoryError::NotFound(_))
    ));
}

#[test]
fn same_second_runs_come_out_in_gits_order() {
    // Many commits on several branches in one second, merged: only the queue order decides.
    let fx = Fx::new();
    let mut script = String::new();
    let mut mark = 1;
    let mut heads = Vec::new();
    for b in 0..4 {
        let mut prev: Option<usize> = None;
        for i in 0..25 {
            let from = prev.map_or(String::new(), |p| format!("from :{p}\n"));
            let date = T0 + if i % 5 == 0 { 1 } else { 0 } + (b % 2) as i64;
            script.push_str(&format!(
                "commit refs/heads/b{b}\nmark :{mark}\nauthor A{b} <a{b}@x> {date} +0000\ncommitter C <c@x> {date} +0000\ndata 5\nb{b}c{i:02}\n{from}M 100644 inline b{b}/f{}.txt\ndata 3\n{i:02}\n\n",
                i % 3
            ));
            prev = Some(mark);
            mark += 1;
        }
        heads.push(mark - 1);
    }
    script.push_str(&format!(
        "commit refs/heads/main\nmark :{mark}\ncommitter C <c@x> {T0} +0000\ndata 7\noctopus\nfrom :{}\nmerge :{}\nmerge :{}\nmerge :{}\n\n",
        heads[0], heads[1], heads[2], heads[3]
    ));
    let mut child = git_cmd(&fx.dir)
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let git = fx.open();
    let mut failures = Failures::default();
    for tips in [vec!["main"], vec!["b3", "b0", "b2"], vec!["b1"]] {
        let tips: Vec<String> = tips.into_iter().map(String::from).collect();
        for paths in [
            vec![],
            vec!["b1"],
            vec!["b2/f0.txt"],
            vec!["b0", "b3/f2.txt"],
        ] {
            for (skip, limit) in [(0, None), (3, Some(7))] {
                let q = LogQuery {
                    paths: paths.iter().map(|s: &&str| s.to_string()).collect(),
                    skip,
                    limit,
                    ..Default::default()
                };
                failures.note(check_log(&fx.dir, &git, &tips, &q));
            }
        }
    }
    failures.assert_none("same-second log");
}

// ---------------------------------------------------------------------------------------
// A real repository.

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Every commit's diff and a sample of walks on a real repository, with the time each side
/// took. Configured by environment: `GIT_SEMANTICS_REPO` (a git dir or work tree),
/// `GIT_SEMANTICS_REF` (default `master`), `GIT_SEMANTICS_MAX_COMMITS` (diff only the newest
/// N), `GIT_SEMANTICS_TIMED_PATHS` (comma-separated paths whose walks are timed; default: no
/// path, `README.md` and the directory of the newest commit's first file), `GIT_SEMANTICS_RUNS`
/// (timed runs, default 11), `GIT_SEMANTICS_PATCH_EVERY` (compare the patch of every Nth
/// commit, default 1).
#[test]
#[ignore = "needs GIT_SEMANTICS_REPO, a real repository; run by bench/conformance.sh"]
fn real_repository_conformance() {
    let Some(repo) = std::env::var_os("GIT_SEMANTICS_REPO").map(PathBuf::from) else {
        panic!("set GIT_SEMANTICS_REPO to a repository (a bare git dir works)");
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let branch = env("GIT_SEMANTICS_REF").unwrap_or_else(|| "master".into());
    let max_commits: usize = env("GIT_SEMANTICS_MAX_COMMITS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let patch_every: usize = env("GIT_SEMANTICS_PATCH_EVERY")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let runs: usize = env("GIT_SEMANTICS_RUNS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(11)
        .max(1);
    let git = git2::Repository::open(&repo).expect("open the repository");
    // Commits with their parents, newest first, in one git call.
    let listing = run(&repo, &["rev-list", "--parents", &branch]).unwrap();
    let commits: Vec<(String, Option<String>)> = String::from_utf8_lossy(&listing)
        .lines()
        .map(|l| {
            let mut ids = l.split(' ').map(str::to_string);
            (ids.next().unwrap(), ids.next())
        })
        .collect();
    println!("{}: {} commits on {branch}", repo.display(), commits.len());

    // Diffs of every commit.
    let mut diff_failures = Failures::default();
    let (mut ours_t, mut git_t) = (Duration::ZERO, Duration::ZERO);
    let (mut files, mut renames) = (0usize, 0usize);
    let opts = DiffOptions::from_config(&git);
    for (c, parent) in commits.iter().take(max_commits) {
        let mut cmd = vec![
            "diff-tree",
            "-r",
            "-M",
            "--raw",
            "--numstat",
            "-z",
            "--no-commit-id",
        ];
        match parent {
            Some(p) => cmd.extend([p.as_str(), c.as_str()]),
            None => cmd.extend(["--root", c.as_str()]),
        }
        let t = Instant::now();
        let theirs = run(&repo, &cmd);
        git_t += t.elapsed();
        let theirs = theirs.and_then(|o| parse_diff_tree(&o));
        let t = Instant::now();
        let ours = diffstat::diff_commit(&git, Oid::from_str(c).unwrap(), &opts);
        ours_t += t.elapsed();
        let r = match (theirs, ours) {
            (Ok(t), Ok(o)) => {
                files += o.diff.files.len();
                renames += o
                    .diff
                    .files
                    .iter()
                    .filter(|f| f.status == Status::Renamed)
                    .count();
                let o: Vec<GitFile> = o.diff.files.iter().map(ours_as_git).collect();
                compare_lists(c, &t, &o)
            }
            (Err(e), _) => Err(e),
            (_, Err(e)) => Err(format!("{c}: ours failed: {e}")),
        };
        diff_failures.note(r);
    }
    let n = commits.len().min(max_commits).max(1) as u32;
    println!(
        "diff-tree -r -M --numstat: {n} commits ({files} files, {renames} renames), {} mismatches\n  ours {:?} ({:?}/commit, in process) vs git CLI {:?} ({:?}/commit, a process each)",
        diff_failures.0.len(),
        ours_t,
        ours_t / n,
        git_t,
        git_t / n
    );
    for f in diff_failures.0.iter().take(5) {
        println!("{f}\n");
    }

    // Patches of every `patch_every`th commit.
    let mut patch_failures = Failures::default();
    let mut patched = 0;
    for (c, _) in commits.iter().take(max_commits).step_by(patch_every) {
        patch_failures.note(check_patch(&repo, &git, c));
        patched += 1;
    }
    println!(
        "diff-tree -r -M -p: {patched} commits, {} mismatches",
        patch_failures.0.len()
    );
    for f in patch_failures.0.iter().take(5) {
        println!("{f}\n");
    }

    // git log for a sample of paths: the top two levels of the tree and the paths the
    // newest commits touched (deleted and renamed ones included).
    let mut paths: Vec<String> = String::from_utf8_lossy(
        &run(&repo, &["ls-tree", "-r", "-t", "--name-only", &branch]).unwrap(),
    )
    .lines()
    .filter(|p| p.matches('/').count() <= 1)
    .map(str::to_string)
    .collect();
    let recent = run(
        &repo,
        &["log", "--format=", "--name-only", "-M", "-n", "40", &branch],
    )
    .unwrap();
    let recent: Vec<String> = String::from_utf8_lossy(&recent)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    paths.extend(recent.iter().cloned());
    paths.sort();
    paths.dedup();
    let stride = (paths.len() / 60).max(1);
    let paths: Vec<String> = paths.into_iter().step_by(stride).collect();
    let tips = vec![branch.clone()];
    let dates = {
        let out = run(&repo, &["log", "--format=%ct", &branch]).unwrap();
        let mut d: Vec<i64> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect();
        d.sort();
        d
    };
    let mut queries: Vec<LogQuery> = vec![LogQuery::default()];
    for p in &paths {
        queries.push(LogQuery {
            paths: vec![p.clone()],
            ..Default::default()
        });
    }
    queries.push(LogQuery {
        since: Some(dates[dates.len() / 2]),
        until: Some(dates[dates.len() * 9 / 10]),
        ..Default::default()
    });
    queries.push(LogQuery {
        paths: vec![paths[paths.len() / 2].clone()],
        skip: 3,
        limit: Some(30),
        ..Default::default()
    });
    let mut log_failures = Failures::default();
    for q in &queries {
        log_failures.note(check_log(&repo, &git, &tips, q));
    }
    println!(
        "git log: {} walks ({} paths), {} mismatches",
        queries.len(),
        paths.len(),
        log_failures.0.len()
    );
    for f in log_failures.0.iter().take(5) {
        println!("{f}\n");
    }

    // Timed walks: the median of `runs` runs of each side, alternating.
    let timed: Vec<Vec<String>> = match env("GIT_SEMANTICS_TIMED_PATHS") {
        Some(v) => v
            .split(',')
            .map(|p| {
                if p.is_empty() {
                    vec![]
                } else {
                    vec![p.to_string()]
                }
            })
            .collect(),
        None => {
            let mut t = vec![vec![], vec!["README.md".to_string()]];
            if let Some(dir) = recent.first().and_then(|p| p.rsplit_once('/')) {
                t.push(vec![dir.0.to_string()]);
            }
            t
        }
    };
    println!(
        "timed walks (median of {runs}; ours in process on an open repository, git a process):"
    );
    for paths in timed {
        let q = LogQuery {
            paths,
            ..Default::default()
        };
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let mut count = 0;
        for _ in 0..runs {
            let t = Instant::now();
            count = ours_log(&git, &tips, &q).unwrap().commits.len();
            ours.push(t.elapsed());
            let t = Instant::now();
            git_log(&repo, &tips, &q).unwrap();
            theirs.push(t.elapsed());
        }
        let (o, g) = (median(ours), median(theirs));
        println!(
            "  git log {branch} -- {:<30} {count:>5} commits: ours {:>8.2?}, git {:>8.2?}, ratio {:.2}",
            q.paths.join(" "),
            o,
            g,
            o.as_secs_f64() / g.as_secs_f64()
        );
    }
    diff_failures.assert_none("real-repository diff-tree");
    patch_failures.assert_none("real-repository patch");
    log_failures.assert_none("real-repository log");
}
