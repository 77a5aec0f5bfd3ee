//! Crash convergence: a provision killed with SIGKILL at any point — during a clone or an
//! update (fetch, checkout, refs), in each step, at each state write, while making the
//! fingerprint key — converges on the next plain provision, and the workdir then equals a
//! clean provision's: the same HEAD and git config, a clean tree, `git fsck` content, each
//! step's effect exactly once, a valid state that a further run finds complete.
//!
//! The kill is real: `AGENTENV_CRASH_AT=POINT:N` makes the provision SIGKILL itself the Nth
//! time it passes a point (`src/provision/crash.rs`), so every trial stops where it says.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use bitbucket_emulator::{Config, Emulator};

use crate::support::git::{commit_all, git, write};
use crate::support::provision::{action, entries, spec};
use crate::support::{Out, agentenv_cmd};

/// Each step announces itself, works for a while (a kill during a step lands here), then
/// leaves its effect: one line naming the step and the commit it ran on.
const STEPS: &str = r#"setup:
  - name: one
    run: echo one started; sleep 0.1; echo "one $(git -C app rev-parse HEAD)" >> effects
  - name: two
    run: echo two started; sleep 0.1; echo "two $(git -C app rev-parse HEAD) $STEP_TOKEN" >> effects
  - name: made
    run: echo made started; sleep 0.1; echo "made $(git -C app rev-parse HEAD)" >> effects; touch made.flag
    creates: made.flag
"#;

/// The upstream: commit A, and commit B that changes most of A's files, adds some and
/// deletes some (so an update checks out many files). Returns (A, B); `main` is at B.
fn upstream(dir: &Path) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    for i in 0..40 {
        write(&dir.join(format!("src/f{i:02}.txt")), format!("A {i}\n"));
    }
    let a = commit_all(dir, "A");
    for i in 0..30 {
        write(&dir.join(format!("src/f{i:02}.txt")), format!("B {i}\n"));
    }
    for i in 0..10 {
        write(&dir.join(format!("new/n{i:02}.txt")), format!("new {i}\n"));
    }
    for i in 35..40 {
        std::fs::remove_file(dir.join(format!("src/f{i:02}.txt"))).unwrap();
    }
    let b = commit_all(dir, "B");
    (a, b)
}

struct World {
    _t: tempfile::TempDir,
    root: PathBuf,
    up: PathBuf,
    spec: PathBuf,
    a: String,
    b: String,
    _emu: Emulator,
}

impl World {
    fn new() -> World {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        let up = root.join("up");
        let (a, b) = upstream(&up);
        let emu = Emulator::start(
            Config::default()
                .anonymous(true)
                .cloud_repo("acme", "app", &up),
        );
        let url = emu.cloud_clone_url("acme", "app");
        let spec = spec(
            &root,
            &format!(
                "repos:\n  - url: {url}\n    path: app\nsecrets:\n  from_env: [STEP_TOKEN]\n{STEPS}"
            ),
        );
        World {
            _t: t,
            root,
            up,
            spec,
            a,
            b,
            _emu: emu,
        }
    }

    fn main_at(&self, commit: &str) {
        git(&self.up, &["update-ref", "refs/heads/main", commit]);
    }

    fn provision(&self, wd: &Path, crash_at: Option<&str>) -> Out {
        let mut cmd = agentenv_cmd(&[
            "provision",
            "--json",
            self.spec.to_str().unwrap(),
            "--workdir",
            wd.to_str().unwrap(),
        ]);
        let home = self.root.join("home");
        cmd.env("HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .env("STEP_TOKEN", "t0k3n");
        if let Some(point) = crash_at {
            cmd.env("AGENTENV_CRASH_AT", point);
        }
        let out = cmd.output().unwrap();
        if crash_at.is_some() {
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGKILL),
                "the provision was to be killed at {crash_at:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Out::from(out)
    }
}

/// What a provisioned workdir holds, as far as a user or a tool can tell.
#[derive(Debug, PartialEq)]
struct Outcome {
    head: String,
    config: Vec<String>,
    top: Vec<String>,
    /// Each effect line and how many times it happened.
    effects: BTreeMap<String, usize>,
    /// Step name → result in the state.
    steps: BTreeMap<String, String>,
}

fn outcome(wd: &Path) -> Outcome {
    let app = wd.join("app");
    assert_eq!(
        git(&app, &["status", "--porcelain", "--untracked-files=all"]),
        "",
        "a clean tree"
    );
    git(&app, &["fsck", "--full", "--no-progress"]);
    assert!(
        !app.join(".git/agentenv-update").exists(),
        "no update left unfinished"
    );
    let agentenv = entries(&wd.join(".agentenv"));
    assert!(
        agentenv.iter().all(|e| !e.starts_with(".tmp")),
        "no temporary files left: {agentenv:?}"
    );
    let key = std::fs::read(wd.join(".agentenv/fingerprint.key")).unwrap();
    assert_eq!(key.len(), 32, "a whole fingerprint key");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wd.join(".agentenv/state.json")).unwrap())
            .expect("a valid state file");
    assert!(
        state.get("started").is_none(),
        "no step left started: {state}"
    );
    let head = git(&app, &["rev-parse", "HEAD"]);
    assert_eq!(state["repos"]["app"]["head"], head.as_str());
    let config = [
        "branch.main.remote",
        "branch.main.merge",
        "remote.origin.url",
        "remote.origin.fetch",
    ]
    .iter()
    .map(|k| git(&app, &["config", "--get-all", k]))
    .collect();
    let mut effects = BTreeMap::new();
    for line in std::fs::read_to_string(wd.join("effects"))
        .unwrap_or_default()
        .lines()
    {
        *effects.entry(line.to_string()).or_insert(0) += 1;
    }
    let steps = state["steps"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["result"].as_str().unwrap().to_string()))
        .collect();
    Outcome {
        head,
        config,
        top: entries(wd),
        effects,
        steps,
    }
}

/// A further plain run finds everything in place: nothing is cloned, updated or run.
#[track_caller]
fn converged(w: &World, wd: &Path) {
    let out = w.provision(wd, None);
    out.ok();
    let summary: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(action(&summary, "repos", "app"), "up-to-date");
    for step in ["one", "two", "made"] {
        assert_eq!(action(&summary, "steps", step), "skipped", "{summary}");
    }
}

/// Where the trials kill a provision that clones (a fresh workdir) and one that updates (a
/// workdir provisioned at A, upstream moved to B). The state writes of a fresh provision:
/// the repository, then each step's start and end (`made` included); of an update: the
/// repository, the start and end of `one` and `two`, `made` found satisfied.
const CLONE_POINTS: &[&str] = &[
    "key-write",
    "fetch:1",
    "fetch:3",
    "checkout:1",
    "checkout:20",
    "checkout-done",
    "clone-rename",
    "state-write:1",
    "state-write:2",
    "step-output:1",
    "step-exited:1",
    "state-write:3",
    "state-write:4",
    "step-output:2",
    "step-exited:2",
    "state-write:5",
    "state-write:6",
    "step-output:3",
    "step-exited:3",
    "state-write:7",
];
const UPDATE_POINTS: &[&str] = &[
    "fetch:1",
    "checkout:1",
    "checkout:10",
    "checkout:30",
    "checkout-done",
    "state-write:1",
    "state-write:2",
    "step-output:1",
    "step-exited:1",
    "state-write:3",
    "state-write:4",
    "step-output:2",
    "step-exited:2",
    "state-write:5",
    "state-write:6",
];

#[test]
fn a_provision_killed_at_any_point_converges_on_the_next_plain_run() {
    let w = World::new();
    let effect = |step: &str, on: &str| {
        let token = if step == "two" { " t0k3n" } else { "" };
        (format!("{step} {on}{token}"), 1)
    };

    // The clean provisions every trial must end equal to.
    w.main_at(&w.b);
    let clean = w.root.join("clean-b");
    w.provision(&clean, None).ok();
    let fresh = outcome(&clean);
    assert_eq!(fresh.head, w.b);
    assert_eq!(
        fresh.effects,
        BTreeMap::from([
            effect("one", &w.b),
            effect("two", &w.b),
            effect("made", &w.b)
        ])
    );
    let mut updated = None;

    let mut trials = 0;
    for (scenario, points) in [("clone", CLONE_POINTS), ("update", UPDATE_POINTS)] {
        for point in points {
            let wd = w
                .root
                .join(format!("{scenario}-{}", point.replace(':', "-")));
            if scenario == "update" {
                w.main_at(&w.a);
                w.provision(&wd, None).ok();
                w.main_at(&w.b);
            }
            w.provision(&wd, Some(point));
            let out = w.provision(&wd, None);
            assert_eq!(
                out.code,
                0,
                "after a kill at {scenario} {point}:\n{}",
                out.all()
            );
            let got = outcome(&wd);
            let want = match scenario {
                "clone" => &fresh,
                _ => updated.get_or_insert_with(|| {
                    let clean = w.root.join("clean-a-b");
                    w.main_at(&w.a);
                    w.provision(&clean, None).ok();
                    w.main_at(&w.b);
                    w.provision(&clean, None).ok();
                    outcome(&clean)
                }),
            };
            assert_eq!(&got, want, "after a kill at {scenario} {point}");
            converged(&w, &wd);
            trials += 1;
        }
    }
    let updated = updated.unwrap();
    assert_eq!(
        updated.effects,
        BTreeMap::from([
            effect("one", &w.a),
            effect("two", &w.a),
            effect("made", &w.a),
            effect("one", &w.b),
            effect("two", &w.b),
        ])
    );
    assert_eq!(updated.steps["made"], "satisfied", "creates: recorded");
    assert!(trials >= 20);
}

/// Two provisions started together on a fresh workdir: one makes the key and provisions,
/// the other is told the workdir is busy (exit 6); never a key made twice, never a
/// fingerprint made with half a key.
#[test]
fn racing_provisions_on_a_fresh_workdir_make_one_key_and_the_loser_exits_6() {
    let w = World::new();
    for trial in 0..10 {
        let wd = w.root.join(format!("race-{trial}"));
        let run = || {
            let mut cmd = agentenv_cmd(&[
                "provision",
                w.spec.to_str().unwrap(),
                "--workdir",
                wd.to_str().unwrap(),
            ]);
            let home = w.root.join("home");
            cmd.env("HOME", &home)
                .env("XDG_CONFIG_HOME", &home)
                .env("STEP_TOKEN", "t0k3n");
            cmd
        };
        let children: Vec<std::process::Child> = (0..2)
            .map(|_| {
                run()
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<Out> = children
            .into_iter()
            .map(|c| Out::from(c.wait_with_output().unwrap()))
            .collect();
        let mut codes: Vec<i32> = outs.iter().map(|o| o.code).collect();
        codes.sort();
        assert!(
            codes == [0, 0] || codes == [0, 6],
            "trial {trial}: {codes:?}\n{}\n{}",
            outs[0].all(),
            outs[1].all()
        );
        for o in outs.iter().filter(|o| o.code == 6) {
            o.says("is busy");
        }
        converged(&w, &wd);
        let effects = outcome(&wd).effects;
        assert!(effects.values().all(|n| *n == 1), "{effects:?}");
    }
}

/// Temporary files a killed run left in `.agentenv` are removed by the next run.
#[test]
fn leftover_temporary_files_are_removed() {
    let w = World::new();
    let wd = w.root.join("wd");
    w.provision(&wd, None).ok();
    write(&wd.join(".agentenv/.tmpXy12ab"), "{\"half\": ");
    w.provision(&wd, None).ok();
    assert!(!wd.join(".agentenv/.tmpXy12ab").exists());
}

/// A process's state letter from /proc: running unless gone or a zombie.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

/// Kill a provision from outside while its step runs: the step and what it started die with
/// it, and the next provision says the step was interrupted and runs it once.
#[test]
fn a_step_dies_with_its_provision_and_the_next_run_says_it_was_interrupted() {
    let t = tempfile::tempdir().unwrap();
    crate::support::git::upstream(&t.path().join("up"));
    let spec = spec(
        t.path(),
        "repos:\n  - url: ./up\nsetup:\n  - name: slow\n    run: 'sleep 30 & echo $! > bg.pid; echo $$ > sh.pid; sleep 2; echo done >> effects'\n",
    );
    let wd = t.path().join("wd");
    let args = [
        "provision",
        "--json",
        spec.to_str().unwrap(),
        "--workdir",
        wd.to_str().unwrap(),
    ];
    let mut child = agentenv_cmd(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(wd.join("bg.pid").exists() && wd.join("sh.pid").exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    for pid_file in ["bg.pid", "sh.pid"] {
        let pid = std::fs::read_to_string(wd.join(pid_file)).unwrap();
        assert!(!alive(pid.trim()), "{pid_file} outlived its provision");
    }
    let status = Out::from(
        agentenv_cmd(&[
            "status",
            spec.to_str().unwrap(),
            "--workdir",
            wd.to_str().unwrap(),
        ])
        .output()
        .unwrap(),
    );
    status.ok().says("interrupted");

    let out = Out::from(agentenv_cmd(&args).output().unwrap());
    out.ok();
    let summary: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(action(&summary, "steps", "slow"), "ran");
    assert!(
        out.stdout
            .contains("was interrupted: the provision running it was killed"),
        "{}",
        out.all()
    );
    assert_eq!(
        std::fs::read_to_string(wd.join("effects")).unwrap(),
        "done\n",
        "the effect once: the killed run never reached it"
    );
}

/// A step that ended after its provision was killed (before the end was recorded) is
/// recorded, not run again, and the report says so.
#[test]
fn a_step_that_finished_unrecorded_is_not_run_twice() {
    let w = World::new();
    let wd = w.root.join("wd");
    w.provision(&wd, Some("step-exited:1"));
    let out = w.provision(&wd, None);
    out.ok();
    let summary: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(action(&summary, "steps", "one"), "skipped");
    assert!(
        out.stdout
            .contains("finished after the provision running it was killed; recorded now"),
        "{}",
        out.all()
    );
    assert_eq!(outcome(&wd).effects.values().sum::<usize>(), 3);
}
