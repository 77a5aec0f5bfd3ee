//! `agentenv provision` and setup steps: idempotence, fingerprints, guards, failures,
//! timeouts that kill the process group, the workdir lock, and the offline example.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::git::{commit, upstream};
use crate::support::provision::*;
use crate::support::{agentenv_cmd, code, stderr, stdout};

fn steps_spec(dir: &Path, steps: &str) -> std::path::PathBuf {
    upstream(&dir.join("up"));
    spec(dir, &format!("repos:\n  - url: ./up\nsetup:\n{steps}"))
}

#[test]
fn a_second_run_skips_every_step_and_a_changed_fingerprint_reruns_one() {
    let t = tempfile::tempdir().unwrap();
    let steps = "  - name: in-repo\n    run: echo run >> ../in-repo.runs\n    dir: up\n    env: { MODE: one }\n  - name: root\n    run: echo run >> root.runs\n";
    let spec = steps_spec(t.path(), steps);
    let wd = t.path().join("wd");
    let (out, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&s, "steps", "in-repo"), "ran");
    assert_eq!(action(&s, "steps", "root"), "ran");
    let (out, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&s, "repos", "up"), "up-to-date");
    assert_eq!(action(&s, "steps", "in-repo"), "skipped");
    assert_eq!(action(&s, "steps", "root"), "skipped");
    let runs = |f: &str| std::fs::read_to_string(wd.join(f)).unwrap().lines().count();
    assert_eq!((runs("in-repo.runs"), runs("root.runs")), (1, 1));

    // A changed env reruns that step only.
    std::fs::write(
        &spec,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("one", "two"),
    )
    .unwrap();
    let (_, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(action(&s, "steps", "in-repo"), "ran");
    assert_eq!(action(&s, "steps", "root"), "skipped");

    // A new upstream HEAD reruns the steps that run inside that repository.
    commit(&t.path().join("up"), "more.txt", "more\n");
    let (_, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(action(&s, "repos", "up"), "updated");
    assert_eq!(action(&s, "steps", "in-repo"), "ran");
    assert_eq!(action(&s, "steps", "root"), "ran");
    assert_eq!((runs("in-repo.runs"), runs("root.runs")), (3, 2));
}

#[test]
fn creates_guard_and_always() {
    let t = tempfile::tempdir().unwrap();
    let steps = "  - name: guarded\n    run: echo x >> guarded.runs && touch made\n    creates: made\n  - name: every-time\n    run: echo x >> always.runs\n    always: true\n";
    let spec = steps_spec(t.path(), steps);
    let wd = t.path().join("wd");
    assert_eq!(code(&provision(&spec, &wd, &[])), 0);
    // Even with no recorded success, an existing `creates:` path skips the step.
    std::fs::remove_file(wd.join(".agentenv/state.json")).unwrap();
    let (out, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&s, "steps", "guarded"), "skipped");
    assert_eq!(action(&s, "steps", "every-time"), "ran");
    let runs = |f: &str| std::fs::read_to_string(wd.join(f)).unwrap().lines().count();
    assert_eq!((runs("guarded.runs"), runs("always.runs")), (1, 2));
}

#[test]
fn a_failing_step_records_nothing_stops_later_steps_and_is_retried() {
    let t = tempfile::tempdir().unwrap();
    let steps = "  - name: flaky\n    run: echo trying; test -f fixed || exit 3\n  - name: after\n    run: touch after-ran\n";
    let spec = steps_spec(t.path(), steps);
    let wd = t.path().join("wd");
    let (out, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("step flaky exited with status 3"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("[flaky] trying"),
        "output streams prefixed"
    );
    assert_eq!(action(&s, "steps", "flaky"), "failed");
    assert_eq!(action(&s, "steps", "after"), "not-run");
    assert!(!wd.join("after-ran").exists());
    assert!(state(&wd)["steps"].as_object().unwrap().is_empty());
    let log = std::fs::read_to_string(wd.join(".agentenv/logs/flaky.log")).unwrap();
    assert_eq!(log, "trying\n");

    std::fs::write(wd.join("fixed"), "").unwrap();
    let (out, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&s, "steps", "flaky"), "ran");
    assert_eq!(action(&s, "steps", "after"), "ran");
    assert_eq!(state(&wd)["steps"]["flaky"]["result"], "ok");
}

#[test]
fn continue_on_error_lets_later_steps_run() {
    let t = tempfile::tempdir().unwrap();
    let steps = "  - name: optional\n    run: exit 1\n    continue_on_error: true\n  - name: after\n    run: touch after-ran\n";
    let spec = steps_spec(t.path(), steps);
    let wd = t.path().join("wd");
    let (out, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&s, "steps", "optional"), "failed");
    assert_eq!(action(&s, "steps", "after"), "ran");
    assert!(wd.join("after-ran").exists());
    assert!(state(&wd)["steps"].get("optional").is_none());
}

/// Gone, or a zombie waiting for a reaper: either way no longer running.
fn running(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

#[test]
fn a_timeout_kills_the_step_and_everything_it_started() {
    let t = tempfile::tempdir().unwrap();
    let steps = "  - name: hang\n    run: 'sleep 300 & echo $! >> pids; sh -c \"sleep 300 & echo \\$! >> pids; wait\" & wait'\n    timeout: 1s\n  - name: after\n    run: touch after-ran\n";
    let spec = steps_spec(t.path(), steps);
    let wd = t.path().join("wd");
    let started = Instant::now();
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 1);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        stderr(&out).contains("step hang timed out after 1s"),
        "{}",
        stderr(&out)
    );
    let pids = std::fs::read_to_string(wd.join("pids")).unwrap();
    let pids: Vec<&str> = pids.lines().collect();
    assert_eq!(pids.len(), 2, "both sleeps started");
    for pid in pids {
        assert!(!running(pid), "sleep {pid} outlived its step");
    }
    assert!(!wd.join("after-ran").exists());
    assert!(state(&wd)["steps"].as_object().unwrap().is_empty());
}

#[test]
fn a_second_concurrent_provision_is_busy_or_waits() {
    let t = tempfile::tempdir().unwrap();
    let steps = "  - name: hold\n    run: touch holding; while [ ! -f release ]; do sleep 0.05; done\n    timeout: 60s\n";
    let spec = steps_spec(t.path(), steps);
    let wd = t.path().join("wd");
    let args = [
        "provision",
        spec.to_str().unwrap(),
        "--workdir",
        wd.to_str().unwrap(),
    ];
    let mut first = agentenv_cmd(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wd.join("holding").exists() {
        assert!(
            Instant::now() < deadline,
            "the first provision never reached its step"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 6);
    let err = stderr(&out);
    assert!(
        err.contains("is busy") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    assert!(err.contains("--wait"), "{err}");

    let mut waiting = agentenv_cmd(&[&args[..], &["--wait", "--json"]].concat())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(waiting.try_wait().unwrap().is_none(), "--wait waits");
    std::fs::write(wd.join("release"), "").unwrap();
    assert!(first.wait().unwrap().success());
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(code(&out), 0);
    let last = stdout(&out).lines().last().unwrap().to_string();
    let s: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(action(&s, "steps", "hold"), "skipped");
}

#[test]
fn a_missing_step_dir_is_bad_input() {
    let t = tempfile::tempdir().unwrap();
    let spec = steps_spec(
        t.path(),
        "  - name: lost\n    run: 'true'\n    dir: up/nope\n",
    );
    let wd = t.path().join("wd");
    let out = provision(&spec, &wd, &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("up/nope"), "{}", stderr(&out));
}

#[test]
fn the_offline_example_provisions_this_repository_and_then_skips_everything() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/local.yaml");
    let first_line = std::fs::read_to_string(&spec)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        first_line,
        "# yaml-language-server: $schema=../schema/environment.schema.json"
    );
    let t = tempfile::tempdir().unwrap();
    let wd = t.path().join("wd");
    let (out, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&s, "repos", "agentenv"), "cloned");
    let sources = std::fs::read_to_string(wd.join("rust-sources.txt")).unwrap();
    assert!(sources.lines().any(|l| l == "src/main.rs"), "{sources}");
    let (out, s) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(action(&s, "repos", "agentenv"), "up-to-date");
    for step in s["steps"].as_array().unwrap() {
        assert_eq!(step["action"], "skipped", "{step}");
    }
    assert!(!s["steps"].as_array().unwrap().is_empty());
}

#[test]
fn a_bad_spec_is_exit_2_and_json_readers_still_get_a_summary() {
    let t = tempfile::tempdir().unwrap();
    let spec = t.path().join("env.yaml");
    std::fs::write(&spec, "version: 1\nname: [unclosed\n").unwrap();
    let wd = t.path().join("wd");
    let (out, summary) = provision_json(&spec, &wd, &[]);
    assert_eq!(code(&out), 2);
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["error"]["exit_code"], 2);
    assert!(
        summary["error"]["message"]
            .as_str()
            .unwrap()
            .contains("env.yaml")
    );
    assert!(!wd.exists());
}

#[test]
fn secret_digests_are_keyed_per_workdir_and_a_new_key_reruns_the_step() {
    let t = tempfile::tempdir().unwrap();
    upstream(&t.path().join("up"));
    let spec = spec(
        t.path(),
        "repos:\n  - url: ./up\nsecrets:\n  from_env: [STEP_TOKEN]\nsetup:\n  - name: uses-token\n    run: test -n \"$STEP_TOKEN\" && echo run >> runs\n",
    );
    let wd = t.path().join("wd");
    let home = t.path().join("home");
    let run = || {
        let out = agentenv_cmd(&[
            "provision",
            "--json",
            spec.to_str().unwrap(),
            "--workdir",
            wd.to_str().unwrap(),
        ])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &home)
        .env("STEP_TOKEN", "canary-step-token-91c2")
        .output()
        .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let last = stdout(&out).lines().last().unwrap().to_string();
        serde_json::from_str::<serde_json::Value>(&last).unwrap()
    };
    assert_eq!(action(&run(), "steps", "uses-token"), "ran");
    let key = wd.join(".agentenv/fingerprint.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the key is private to its owner: {mode:o}");
    assert_eq!(action(&run(), "steps", "uses-token"), "skipped");
    // Another key gives other digests: the step cannot be matched, so it runs again.
    std::fs::remove_file(&key).unwrap();
    assert_eq!(action(&run(), "steps", "uses-token"), "ran");
    let state = std::fs::read_to_string(wd.join(".agentenv/state.json")).unwrap();
    assert!(!state.contains("canary-step-token-91c2"));
}
