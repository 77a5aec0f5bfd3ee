//! The git CLI, run with a fixed identity and date and without the user's or the system's
//! configuration, and what the repository builders share: writing files, symlinks, commits,
//! and the small upstream repository most provision and clone tests start from.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Who commits, and when: `(name, email, date)`.
pub type Identity<'a> = (&'a str, &'a str, &'a str);

/// The identity of every commit a builder does not attribute to someone else. The date is
/// fixed so that a builder makes the same commit ids on every run.
pub const TESTER: Identity<'static> = ("Test", "test@example.com", "2024-01-01T00:00:00Z");

/// Run git in `dir` as `TESTER`; panics on failure; returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_as(dir, args, TESTER)
}

/// Run git in `dir` as `who`; panics on failure; returns stdout, trimmed.
pub fn git_as(dir: &Path, args: &[&str], who: Identity) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
            "-c",
            "core.symlinks=true",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", who.0)
        .env("GIT_AUTHOR_EMAIL", who.1)
        .env("GIT_AUTHOR_DATE", who.2)
        .env("GIT_COMMITTER_NAME", who.0)
        .env("GIT_COMMITTER_EMAIL", who.1)
        .env("GIT_COMMITTER_DATE", who.2)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Write a file, creating its directories.
pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A symlink at `path` pointing at `target`, creating the directories of `path`.
pub fn symlink(path: &Path, target: impl AsRef<Path>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// Commit everything in the working tree of `dir` as `who`; returns the new HEAD.
pub fn commit_all_as(dir: &Path, msg: &str, who: Identity) -> String {
    git_as(dir, &["add", "-A"], who);
    git_as(dir, &["commit", "-q", "-m", msg], who);
    git(dir, &["rev-parse", "HEAD"])
}

/// Commit everything in the working tree of `dir`; returns the new HEAD.
pub fn commit_all(dir: &Path, msg: &str) -> String {
    commit_all_as(dir, msg, TESTER)
}

/// Add a commit on the checked-out branch of `dir` that writes `text` to `file`; returns the
/// new HEAD.
pub fn commit(dir: &Path, file: &str, text: &str) -> String {
    write(&dir.join(file), text);
    commit_all(dir, &format!("change {file}"))
}

/// An upstream repository at `dir`: three commits on `main`, one more on `dev`, a `feature`
/// branch, and `main` as its default branch.
pub fn upstream(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    for i in 1..=3 {
        write(&dir.join("README.md"), format!("version {i}\n"));
        write(&dir.join(format!("file{i}.txt")), format!("{i}\n"));
        commit_all(dir, &format!("commit {i}"));
    }
    git(dir, &["branch", "feature"]);
    git(dir, &["checkout", "-qb", "dev"]);
    write(&dir.join("dev.txt"), "dev\n");
    commit_all(dir, "dev work");
    git(dir, &["checkout", "-q", "main"]);
    dir.to_path_buf()
}
