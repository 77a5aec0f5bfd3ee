//! A reader that goes away is a normal end: a command whose stdout is a pipe nobody reads
//! any more (`agentenv schema | head -1`) exits 0 with nothing on stderr, as a Unix filter
//! does, instead of panicking with a backtrace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::agentenv_cmd;
use crate::support::git::git;

/// A sandbox: one local upstream repository and a spec that clones it and runs one
/// quiet step.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path().join("up");
        std::fs::create_dir_all(&up).unwrap();
        std::fs::write(up.join("README.md"), "hello\n").unwrap();
        git(&up, &["init", "-q"]);
        git(&up, &["add", "-A"]);
        git(&up, &["commit", "-qm", "one"]);
        std::fs::write(
            dir.path().join("env.yaml"),
            "version: 1\nname: pipe\nrepos:\n  - url: ./up\nsetup:\n  - name: hello\n    run: touch ran\n",
        )
        .unwrap();
        Sandbox { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn spec(&self) -> PathBuf {
        self.path().join("env.yaml")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = agentenv_cmd(args);
        cmd.current_dir(self.path())
            .env("HOME", self.path().join("home"))
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        cmd
    }

    /// Run with stdout captured: what the command prints when someone reads it.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run with stdout a pipe whose reading end is already closed, so the first write fails
    /// with EPIPE whatever the timing.
    fn run_into_closed_pipe(&self, args: &[&str]) -> Output {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        self.command(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    }

    /// The command prints something when read, and ends normally when nobody reads: exit 0
    /// and nothing on stderr.
    fn assert_closed_pipe_is_a_normal_end(&self, args: &[&str]) {
        let stderr = self.assert_closed_pipe_exits_0(args);
        assert_eq!(stderr, "", "{args:?} into a closed pipe");
    }

    /// As above, for a command that reports progress on stderr: that is all it says there.
    fn assert_closed_pipe_exits_0(&self, args: &[&str]) -> String {
        let read = self.run(args);
        assert!(
            !read.stdout.is_empty(),
            "{args:?} prints nothing, so the pipe test proves nothing; stderr: {}",
            String::from_utf8_lossy(&read.stderr)
        );
        let out = self.run_into_closed_pipe(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} into a closed pipe; stderr: {stderr}"
        );
        for bad in ["panicked", "Broken pipe", "error"] {
            assert!(
                !stderr.contains(bad),
                "{args:?} into a closed pipe: {stderr}"
            );
        }
        stderr
    }
}

#[test]
fn schema_into_a_closed_pipe() {
    Sandbox::new().assert_closed_pipe_is_a_normal_end(&["schema"]);
}

#[test]
fn validate_into_a_closed_pipe() {
    let sb = Sandbox::new();
    let spec = sb.spec();
    let spec = spec.to_str().unwrap();
    sb.assert_closed_pipe_is_a_normal_end(&["validate", spec]);
    sb.assert_closed_pipe_is_a_normal_end(&["validate", "--json", spec]);
}

#[test]
fn secret_list_into_a_closed_pipe() {
    let sb = Sandbox::new();
    let spec = sb.spec();
    let spec = spec.to_str().unwrap();
    sb.assert_closed_pipe_is_a_normal_end(&["secret", "list", spec]);
    sb.assert_closed_pipe_is_a_normal_end(&["secret", "list", spec, "--json"]);
}

#[test]
fn check_and_branches_into_a_closed_pipe() {
    let sb = Sandbox::new();
    let spec = sb.spec();
    let spec = spec.to_str().unwrap();
    sb.assert_closed_pipe_is_a_normal_end(&["check", spec]);
    sb.assert_closed_pipe_is_a_normal_end(&["check", spec, "--json"]);
    sb.assert_closed_pipe_is_a_normal_end(&["branches", spec, "up"]);
    sb.assert_closed_pipe_is_a_normal_end(&["branches", spec, "up", "--json"]);
}

#[test]
fn provision_and_status_into_a_closed_pipe() {
    let sb = Sandbox::new();
    let spec = sb.spec();
    let spec = spec.to_str().unwrap();
    let wd = sb.path().join("wd");
    let wd = wd.to_str().unwrap();
    // The first provision, with nobody reading its events, does all its work.
    let out = sb.run_into_closed_pipe(&["provision", spec, "--workdir", wd, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(sb.path().join("wd/up/README.md").exists());
    assert!(sb.path().join("wd/ran").exists());
    for extra in [&["--dry-run", "--json"][..], &["--dry-run"], &["--json"]] {
        let mut args = vec!["provision", spec, "--workdir", wd];
        args.extend_from_slice(extra);
        sb.assert_closed_pipe_is_a_normal_end(&args);
    }
    // Without --json, progress lines go to stderr and the summary to stdout.
    let progress = sb.assert_closed_pipe_exits_0(&["provision", spec, "--workdir", wd]);
    assert!(progress.contains("up: up-to-date"), "{progress}");
    sb.assert_closed_pipe_is_a_normal_end(&["status", spec, "--workdir", wd]);
    sb.assert_closed_pipe_is_a_normal_end(&["status", spec, "--workdir", wd, "--json"]);
}
