//! Shared by the provision tests: real git repositories made with the git CLI in tempdirs,
//! and the real `agentenv` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run git with a fixed identity and no user or system configuration.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
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

/// An upstream repository at `dir`: three commits on `main`, one more on `dev`, a `feature`
/// branch, and `main` as its default branch.
pub fn upstream(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    for i in 1..=3 {
        std::fs::write(dir.join("README.md"), format!("version {i}\n")).unwrap();
        std::fs::write(dir.join(format!("file{i}.txt")), format!("{i}\n")).unwrap();
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", &format!("commit {i}")]);
    }
    git(dir, &["branch", "feature"]);
    git(dir, &["checkout", "-qb", "dev"]);
    std::fs::write(dir.join("dev.txt"), "dev\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "dev work"]);
    git(dir, &["checkout", "-q", "main"]);
    dir.to_path_buf()
}

/// Add a commit on the checked-out branch of `dir`; returns the new HEAD.
pub fn commit(dir: &Path, file: &str, text: &str) -> String {
    std::fs::write(dir.join(file), text).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", &format!("change {file}")]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Write a spec file in `dir` (the fixed header is added).
pub fn spec(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("env.yaml");
    std::fs::write(&path, format!("version: 1\nname: test\n{body}")).unwrap();
    path
}

pub fn agentenv_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentenv"));
    cmd.args(args).env_remove("AGENTENV_WORKDIR");
    cmd
}

pub fn agentenv(args: &[&str]) -> Output {
    agentenv_cmd(args).output().expect("agentenv runs")
}

pub fn provision(spec: &Path, workdir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "provision",
        spec.to_str().unwrap(),
        "--workdir",
        workdir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    agentenv(&args)
}

/// `provision --json`: asserts every stdout line is JSON and returns the final summary.
pub fn provision_json(spec: &Path, workdir: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = provision(spec, workdir, &args);
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let summary = events.last().cloned().expect("a summary line");
    assert_eq!(summary["event"], "summary", "{stdout}");
    (out, summary)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit code, with the output shown when an assertion on it fails.
pub fn code(out: &Output) -> i32 {
    let c = out.status.code().unwrap_or(-1);
    eprintln!(
        "exit {c}\nstdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
    c
}

/// The action of the repo or step called `name` in a summary.
pub fn action(summary: &serde_json::Value, list: &str, name: &str) -> String {
    summary[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {summary}"))["action"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every entry of a directory (names), sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn state(workdir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(workdir.join(".agentenv/state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}
