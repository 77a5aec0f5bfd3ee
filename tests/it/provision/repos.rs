//! `agentenv provision` and repositories: clone defaults, depth, branches, updates, remote-side
//! errors, dirty trees, interrupted clones, dry runs. Against real git repositories on disk and
//! served over plain http on loopback by the Bitbucket emulator (real `git http-backend`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bitbucket_emulator::{Config, Emulator};

use crate::support::git::{commit, git, upstream};
use crate::support::provision::*;
use crate::support::{agentenv, agentenv_cmd, code, stderr, stdout};

/// An upstream repository in `dir/up`, served over http: (its path, the emulator, clone URL).
fn served(dir: &Path) -> (PathBuf, Emulator, String) {
    let up = upstream(&dir.join("up"));
    let emu = Emulator::start(
        Config::default()
            .anonymous(true)
            .cloud_repo("acme", "app", &up),
    );
    let url = emu.cloud_clone_url("acme", "app");
    (up, emu, url)
}

fn refs(checkout: &Path) -> Vec<String> {
    git(
        checkout,
        &[
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads",
            "refs/remotes",
        ],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn default_clone_over_http_is_the_default_branch_only_at_depth_one() {
    let t = tempfile::tempdir().unwrap();
    let (up, _emu, url) = served(t.path());
    let spec = spec(t.path(), &format!("repos:\n  - url: {url}\n"));
    let wd = t.path().join("wd");
    let (out, summary) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&summary, "repos", "app"), "cloned");
    let co = wd.join("app");
    assert_eq!(git(&co, &["rev-parse", "--is-shallow-repository"]), "true");
    assert_eq!(git(&co, &["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(refs(&co), ["refs/heads/main", "refs/remotes/origin/main"]);
    assert_eq!(
        git(&co, &["rev-parse", "HEAD"]),
        git(&up, &["rev-parse", "main"])
    );
    assert_eq!(git(&co, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(
        git(&co, &["config", "--get-all", "remote.origin.fetch"]),
        "+refs/heads/main:refs/remotes/origin/main"
    );
    assert_eq!(git(&co, &["status", "--porcelain"]), "");
    // The state records the repository without credentials, with branch and HEAD.
    let st = state(&wd);
    assert_eq!(st["repos"]["app"]["url"], url);
    assert_eq!(st["repos"]["app"]["branch"], "main");
}

#[test]
fn depth_zero_over_http_is_full_history_of_one_branch() {
    let t = tempfile::tempdir().unwrap();
    let (_up, _emu, url) = served(t.path());
    let spec = spec(
        t.path(),
        &format!("repos:\n  - url: {url}\n    branch: dev\n    depth: 0\n"),
    );
    let wd = t.path().join("wd");
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    let co = wd.join("app");
    assert_eq!(git(&co, &["rev-parse", "--is-shallow-repository"]), "false");
    assert_eq!(git(&co, &["rev-list", "--count", "HEAD"]), "4");
    assert_eq!(refs(&co), ["refs/heads/dev", "refs/remotes/origin/dev"]);
    assert!(co.join("dev.txt").exists());
}

#[test]
fn a_shallow_checkout_becomes_complete_when_depth_turns_zero() {
    let t = tempfile::tempdir().unwrap();
    let (_up, _emu, url) = served(t.path());
    let wd = t.path().join("wd");
    let shallow = spec(t.path(), &format!("repos:\n  - url: {url}\n"));
    assert_eq!(code(&provision(&shallow, &wd, &[])), 0);
    let full = spec(t.path(), &format!("repos:\n  - url: {url}\n    depth: 0\n"));
    let (out, summary) = provision_json(&full, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&summary, "repos", "app"), "updated");
    let co = wd.join("app");
    assert_eq!(git(&co, &["rev-parse", "--is-shallow-repository"]), "false");
    assert_eq!(git(&co, &["rev-list", "--count", "HEAD"]), "3");
}

#[test]
fn local_path_clone_is_single_branch_relative_to_the_spec_and_tracks_the_default_branch() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    // The remote's default branch is what its HEAD points at, not necessarily `main`.
    git(&up, &["symbolic-ref", "HEAD", "refs/heads/feature"]);
    let specs = t.path().join("specs");
    std::fs::create_dir(&specs).unwrap();
    let spec = spec(&specs, "repos:\n  - url: ../up\n    path: src/app\n");
    let wd = t.path().join("wd");
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    let co = wd.join("src/app");
    assert_eq!(
        refs(&co),
        ["refs/heads/feature", "refs/remotes/origin/feature"]
    );
    assert_eq!(
        git(&co, &["rev-parse", "HEAD"]),
        git(&up, &["rev-parse", "feature"])
    );
    // libgit2's local transport cannot fetch shallow: local sources come whole (documented).
    assert_eq!(git(&co, &["rev-list", "--count", "HEAD"]), "3");
}

#[test]
fn update_moves_to_the_new_upstream_head_and_a_second_run_is_up_to_date() {
    let t = tempfile::tempdir().unwrap();
    let (up, _emu, url) = served(t.path());
    let spec = spec(t.path(), &format!("repos:\n  - url: {url}\n"));
    let wd = t.path().join("wd");
    assert_eq!(code(&provision(&spec, &wd, &[])), 0);
    let new_head = commit(&up, "new.txt", "new\n");
    let (out, summary) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&summary, "repos", "app"), "updated");
    let co = wd.join("app");
    assert_eq!(git(&co, &["rev-parse", "HEAD"]), new_head);
    assert_eq!(
        std::fs::read_to_string(co.join("new.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(git(&co, &["status", "--porcelain"]), "");
    assert_eq!(state(&wd)["repos"]["app"]["head"], new_head);
    let before = std::fs::read(wd.join(".agentenv/state.json")).unwrap();
    let (out, summary) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&summary, "repos", "app"), "up-to-date");
    let after = std::fs::read(wd.join(".agentenv/state.json")).unwrap();
    assert_eq!(before, after, "nothing changed, nothing rewritten");
}

#[test]
fn unreachable_url_is_exit_5_naming_the_repository_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = spec(
        t.path(),
        &format!("repos:\n  - url: http://127.0.0.1:{port}/acme/gone.git\n"),
    );
    let wd = t.path().join("wd");
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 5);
    let err = stderr(&out);
    assert!(err.contains("repository gone"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(entries(&wd), [".agentenv"]);
    assert!(state(&wd)["repos"].as_object().unwrap().is_empty());
}

#[test]
fn missing_local_repository_is_exit_4() {
    let t = tempfile::tempdir().unwrap();
    let spec = spec(t.path(), "repos:\n  - url: ./nowhere\n");
    let wd = t.path().join("wd");
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 4);
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
    assert_eq!(entries(&wd), [".agentenv"]);
}

#[test]
fn missing_branch_is_exit_4_listing_the_branches_there_are() {
    let t = tempfile::tempdir().unwrap();
    let (_up, _emu, url) = served(t.path());
    let spec = spec(
        t.path(),
        &format!("repos:\n  - url: {url}\n    branch: nope\n"),
    );
    let wd = t.path().join("wd");
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 4);
    let err = stderr(&out);
    assert!(err.contains("branch `nope` does not exist"), "{err}");
    assert!(err.contains("dev, feature, main"), "{err}");
    assert_eq!(entries(&wd), [".agentenv"]);
}

#[test]
fn a_connection_cut_mid_pack_fails_cleanly_and_the_next_run_clones() {
    let t = tempfile::tempdir().unwrap();
    let (_up, emu, url) = served(t.path());
    // Cut on every attempt: provision retries a dropped connection (up to 4 tries).
    emu.reset_next("POST */git-upload-pack", 4, 20);
    let spec = spec(t.path(), &format!("repos:\n  - url: {url}\n"));
    let wd = t.path().join("wd");
    let out = provision(&spec, &wd, &[]);
    assert_ne!(code(&out), 0);
    assert_eq!(
        entries(&wd),
        [".agentenv"],
        "no half checkout, no temporary clone"
    );
    assert_eq!(code(&provision(&spec, &wd, &[])), 0);
    assert_eq!(git(&wd.join("app"), &["status", "--porcelain"]), "");
}

/// An update whose fetch fails has changed nothing: edits made afterwards are the user's,
/// and the next update refuses to discard them (an update marker written before the fetch
/// made them look like the failed update's own).
#[test]
fn edits_after_a_failed_update_fetch_are_kept() {
    let t = tempfile::tempdir().unwrap();
    let (up, emu, url) = served(t.path());
    let shallow = spec(t.path(), &format!("repos:\n  - url: {url}\n"));
    let wd = t.path().join("wd");
    assert_eq!(code(&provision(&shallow, &wd, &[])), 0);
    commit(&up, "file2.txt", "upstream moved on\n");
    // The new tip is already in the checkout (as a tool's fetch on demand leaves it), so only
    // the history a `depth: 0` update asks for is fetched, and that fetch is cut.
    let co = wd.join("app");
    git(
        &co,
        &[
            "fetch",
            "-q",
            "--depth=1",
            up.to_str().unwrap(),
            "main:refs/agentenv/branches/main",
        ],
    );
    let full = spec(t.path(), &format!("repos:\n  - url: {url}\n    depth: 0\n"));
    emu.reset_next("POST */git-upload-pack", 4, 20);
    assert_ne!(code(&provision(&full, &wd, &[])), 0, "the fetch was cut");
    std::fs::write(co.join("file2.txt"), "my edit\n").unwrap();
    let out = provision(&full, &wd, &[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("local changes"), "{}", stderr(&out));
    let kept = std::fs::read_to_string(wd.join("app/file2.txt")).unwrap();
    assert_eq!(kept, "my edit\n");
}

#[test]
fn one_failing_repository_does_not_hide_the_others() {
    let t = tempfile::tempdir().unwrap();
    upstream(&t.path().join("a"));
    let b = upstream(&t.path().join("b"));
    let spec = spec(
        t.path(),
        "repos:\n  - url: ./a\n  - url: ./missing\n  - url: ./b\n    branch: dev\n",
    );
    let wd = t.path().join("wd");
    let (out, summary) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 4);
    assert_eq!(action(&summary, "repos", "a"), "cloned");
    assert_eq!(action(&summary, "repos", "missing"), "failed");
    assert_eq!(action(&summary, "repos", "b"), "cloned");
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["error"]["exit_code"], 4);
    assert_eq!(
        git(&wd.join("b"), &["rev-parse", "HEAD"]),
        git(&b, &["rev-parse", "dev"])
    );
}

#[test]
fn local_changes_stop_the_update_unless_force() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    let spec = spec(t.path(), "repos:\n  - url: ./up\n");
    let wd = t.path().join("wd");
    assert_eq!(code(&provision(&spec, &wd, &[])), 0);
    let co = wd.join("up");
    std::fs::write(co.join("README.md"), "agent edit\n").unwrap();
    std::fs::write(co.join("notes.txt"), "agent notes\n").unwrap();
    // Nothing upstream: nothing to move, the changes are safe and stay.
    let (out, summary) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&summary, "repos", "up"), "up-to-date");
    assert!(co.join("notes.txt").exists());
    let new_head = commit(&up, "README.md", "upstream edit\n");
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("repository up"), "{err}");
    assert!(
        err.contains("README.md") && err.contains("notes.txt"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(co.join("README.md")).unwrap(),
        "agent edit\n"
    );
    assert!(co.join("notes.txt").exists());

    let out = provision(&spec, &wd, &["--force"]);
    assert_eq!(code(&out), 0);
    assert_eq!(git(&co, &["rev-parse", "HEAD"]), new_head);
    assert_eq!(
        std::fs::read_to_string(co.join("README.md")).unwrap(),
        "upstream edit\n"
    );
    assert!(!co.join("notes.txt").exists());
    assert_eq!(git(&co, &["status", "--porcelain"]), "");
}

#[test]
fn a_path_that_is_not_a_checkout_is_refused() {
    let t = tempfile::tempdir().unwrap();
    upstream(&t.path().join("up"));
    let spec = spec(t.path(), "repos:\n  - url: ./up\n");
    let wd = t.path().join("wd");
    std::fs::create_dir_all(wd.join("up")).unwrap();
    std::fs::write(wd.join("up/keep.txt"), "mine").unwrap();
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("is not a git checkout"),
        "{}",
        stderr(&out)
    );
    assert_eq!(entries(&wd.join("up")), ["keep.txt"]);
}

#[test]
fn killed_during_a_clone_the_next_run_succeeds_with_a_complete_checkout() {
    let t = tempfile::tempdir().unwrap();
    let (up, emu, url) = served(t.path());
    // The pack request hangs, so the process is certainly killed mid-clone.
    emu.add_latency("POST */git-upload-pack", Duration::from_secs(60));
    let spec = spec(t.path(), &format!("repos:\n  - url: {url}\n"));
    let wd = t.path().join("wd");
    let mut child = agentenv_cmd(&[
        "provision",
        spec.to_str().unwrap(),
        "--workdir",
        wd.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // The emulator logs a request once answered: after the ref advertisement comes the
    // (delayed) pack request.
    while emu.count("GET */info/refs*") == 0
        || !entries(&wd)
            .iter()
            .any(|e| e.starts_with(".app.agentenv-clone-"))
    {
        assert!(Instant::now() < deadline, "the clone never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind runs.
    child.wait().unwrap();
    let left = entries(&wd);
    assert!(
        !left.contains(&"app".to_string()),
        "no half checkout: {left:?}"
    );
    assert!(
        left.iter().any(|e| e.starts_with(".app.agentenv-clone-")),
        "{left:?}"
    );

    emu.clear_faults();
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        entries(&wd),
        [".agentenv", "app"],
        "the leftover is cleaned"
    );
    let co = wd.join("app");
    assert_eq!(git(&co, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&co, &["rev-parse", "HEAD"]),
        git(&up, &["rev-parse", "main"])
    );
    git(&co, &["fsck", "--no-progress"]);
}

#[test]
fn dry_run_changes_nothing_and_says_what_would_happen() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    let spec = spec(
        t.path(),
        "repos:\n  - url: ./up\nsetup:\n  - name: hello\n    run: echo hi > hello.txt\n",
    );
    let wd = t.path().join("wd");
    let (out, summary) = provision_json(&spec, &wd, &["--dry-run"]);
    assert_eq!(code(&out), 0);
    assert!(!wd.exists(), "dry-run must not even create the workdir");
    assert_eq!(action(&summary, "repos", "up"), "clone");
    assert_eq!(action(&summary, "steps", "hello"), "run");

    assert_eq!(code(&provision(&spec, &wd, &[])), 0);
    let before = std::fs::read(wd.join(".agentenv/state.json")).unwrap();
    let (_, summary) = provision_json(&spec, &wd, &["--dry-run"]);
    assert_eq!(action(&summary, "repos", "up"), "up-to-date");
    assert_eq!(action(&summary, "steps", "hello"), "skip");

    let new_head = commit(&up, "x.txt", "x\n");
    let out = provision(&spec, &wd, &["--dry-run"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(text.contains("update"), "{text}");
    assert!(text.contains("run"), "{text}");
    assert_ne!(git(&wd.join("up"), &["rev-parse", "HEAD"]), new_head);
    assert_eq!(
        std::fs::read(wd.join(".agentenv/state.json")).unwrap(),
        before
    );
}

#[test]
fn status_shows_branch_head_dirtiness_and_steps() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    let spec = spec(
        t.path(),
        "repos:\n  - url: ./up\nsetup:\n  - name: hello\n    run: 'true'\n  - name: later\n    run: 'false'\n    continue_on_error: true\n",
    );
    let wd = t.path().join("wd");
    assert_eq!(code(&provision(&spec, &wd, &[])), 0);
    std::fs::write(wd.join("up/scratch.txt"), "x").unwrap();
    let out = agentenv(&[
        "status",
        spec.to_str().unwrap(),
        "--workdir",
        wd.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["repos"][0]["branch"], "main");
    assert_eq!(v["repos"][0]["head"], git(&up, &["rev-parse", "main"]));
    assert_eq!(v["repos"][0]["dirty"], true);
    assert_eq!(v["steps"][0]["last_result"], "ok");
    assert_eq!(v["steps"][1]["last_result"], "never");
    let out = agentenv(&[
        "status",
        spec.to_str().unwrap(),
        "--workdir",
        wd.to_str().unwrap(),
    ]);
    assert!(stdout(&out).contains("local changes"), "{}", stdout(&out));
}

#[test]
fn a_remote_at_a_detached_head_is_followed_at_that_commit() {
    let t = tempfile::tempdir().unwrap();
    let up = upstream(&t.path().join("up"));
    // A CI checkout: HEAD detached at a commit no branch has.
    git(&up, &["checkout", "-q", "--detach"]);
    let detached = commit(&up, "ci.txt", "merge result\n");
    let spec = spec(t.path(), "repos:\n  - url: ./up\n");
    let wd = t.path().join("wd");
    let (out, summary) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&summary, "repos", "up"), "cloned");
    let co = wd.join("up");
    assert_eq!(git(&co, &["rev-parse", "HEAD"]), detached);
    assert_eq!(refs(&co), ["refs/remotes/origin/HEAD"]);
    let (_, summary) = provision_json(&spec, &wd, &[]);
    assert_eq!(action(&summary, "repos", "up"), "up-to-date");
    let next = commit(&up, "ci.txt", "next\n");
    let (_, summary) = provision_json(&spec, &wd, &[]);
    assert_eq!(action(&summary, "repos", "up"), "updated");
    assert_eq!(git(&co, &["rev-parse", "HEAD"]), next);
}

#[test]
fn a_reader_that_goes_away_does_not_stop_provisioning() {
    let t = tempfile::tempdir().unwrap();
    upstream(&t.path().join("up"));
    let spec = spec(
        t.path(),
        "repos:\n  - url: ./up\nsetup:\n  - name: chatty\n    run: seq 1 2000\n  - name: last\n    run: touch last-ran\n",
    );
    let wd = t.path().join("wd");
    let mut child = agentenv_cmd(&[
        "provision",
        spec.to_str().unwrap(),
        "--workdir",
        wd.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Like `agentenv provision … | head -1`: both pipes close before anything is written.
    drop(child.stdout.take());
    drop(child.stderr.take());
    assert!(child.wait().unwrap().success());
    assert!(wd.join("last-ran").exists());
    assert_eq!(state(&wd)["steps"]["last"]["result"], "ok");
}

#[test]
fn a_default_branch_outside_scope_is_refused() {
    let t = tempfile::tempdir().unwrap();
    upstream(&t.path().join("up"));
    let out_of_scope = spec(
        t.path(),
        "scope:\n  branches: '^dev$'\nrepos:\n  - url: ./up\n",
    );
    let wd = t.path().join("wd");
    let out = provision(&out_of_scope, &wd, &[]);
    assert_eq!(code(&out), 4);
    assert!(
        stderr(&out).contains("`main` is outside the spec's scope.branches"),
        "{}",
        stderr(&out)
    );
    assert_eq!(entries(&wd), [".agentenv"]);
    let in_scope = spec(
        t.path(),
        "scope:\n  branches: '^dev$'\nrepos:\n  - url: ./up\n    branch: dev\n",
    );
    assert_eq!(code(&provision(&in_scope, &wd, &[])), 0);
}

#[test]
fn scope_by_owner_and_slug_admits_a_repository_as_validation_does() {
    // `scope.repositories` may name `owner/slug`; provision must agree with `validate`.
    let t = tempfile::tempdir().unwrap();
    upstream(&t.path().join("team/up"));
    let spec = spec(
        t.path(),
        "scope:\n  repositories: '^team/up$'\nrepos:\n  - url: ./team/up\n",
    );
    let out = agentenv(&["validate", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = provision(&spec, &t.path().join("wd"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(t.path().join("wd/up/.git").exists());
}

/// Every path under `root` except `.git`: (path, kind and mode, content or link target).
fn work_tree(root: &Path) -> Vec<(String, String, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".git" {
                continue;
            }
            let m = std::fs::symlink_metadata(&path).unwrap();
            if m.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((
                    rel,
                    "link".into(),
                    target.into_os_string().into_encoded_bytes(),
                ));
            } else if m.is_dir() {
                out.push((rel, "dir".into(), Vec::new()));
                dirs.push(path);
            } else {
                let mode = format!("file {:o}", m.permissions().mode() & 0o111);
                out.push((rel, mode, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_fresh_clone_writes_the_work_tree_and_index_git_clone_writes() {
    // Enough files for several checkout writers, in many directories, with what a writer must
    // get right: attributes from a `.gitattributes` at the root and in a subdirectory (eol and
    // ident filters), an executable, a symlink.
    let t = tempfile::tempdir().unwrap();
    let up = t.path().join("up");
    std::fs::create_dir_all(&up).unwrap();
    git(&up, &["init", "-q"]);
    for i in 0..400 {
        crate::support::git::write(
            &up.join(format!("d{}/s{}/f{i}.txt", i % 7, i % 3)),
            format!("line one {i}\nline two\n$Id$\n"),
        );
    }
    crate::support::git::write(&up.join(".gitattributes"), "*.txt eol=crlf\n");
    crate::support::git::write(&up.join("d3/.gitattributes"), "*.txt -text ident\n");
    crate::support::git::write(&up.join("bin/run.sh"), "#!/bin/sh\necho run\n");
    std::fs::set_permissions(
        up.join("bin/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    crate::support::git::symlink(&up.join("d0/link"), "s0/f0.txt");
    crate::support::git::commit_all(&up, "many files");
    let emu = Emulator::start(
        Config::default()
            .anonymous(true)
            .cloud_repo("acme", "app", &up),
    );
    let url = emu.cloud_clone_url("acme", "app");

    let wd = t.path().join("wd");
    let out = provision(
        &spec(t.path(), &format!("repos:\n  - url: {url}\n")),
        &wd,
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ours = wd.join("app");
    git(t.path(), &["clone", "-q", "--depth", "1", &url, "theirs"]);
    let theirs = t.path().join("theirs");

    let (a, b) = (work_tree(&ours), work_tree(&theirs));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, &x.1), (&y.0, &y.1));
        assert!(x.2 == y.2, "{} differs from git clone's", x.0);
    }
    assert!(
        a.iter()
            .any(|f| f.0 == "d1/s1/f1.txt" && f.2.ends_with(b"\r\n")),
        "the eol attribute applied"
    );
    assert_eq!(
        git(&ours, &["ls-files", "-s"]),
        git(&theirs, &["ls-files", "-s"])
    );
    // The index holds each file's stat data: git sees no change without re-reading anything.
    assert_eq!(git(&ours, &["diff-files", "--name-only"]), "");
    assert_eq!(git(&ours, &["status", "--porcelain"]), "");
}
