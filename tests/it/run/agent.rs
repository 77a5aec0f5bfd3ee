//! `agentenv run`: the agent starts after a blocking provision, in the workdir, with the MCP
//! configuration a real client reads, no secret values in its environment unless the spec
//! names them, git credentials only when allowed, signals passed on, and its exit code as
//! the run's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::git::{git, upstream};
use crate::support::remote::*;
use crate::support::{BIN, Out, agentenv_cmd};

const FAKE_AGENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/run/fake_agent.py");
const AGE_KEY_CANARY: &str = "AGE-SECRET-KEY-1CANARYRUNAGEKEYVALUE";

fn python() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `agentenv run SPEC --workdir WORK ARGS… -- AGENT…` with the provider token and an age key
/// (unused, still a secret) in the environment.
fn run_cmd(f: &Fixture, spec: &Path, extra: &[&str], agent: &[&str]) -> Command {
    let work = f.workdir();
    let mut args = vec![
        "run",
        spec.to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(agent);
    let mut cmd = agentenv_cmd(&args);
    cmd.env("BB_TOKEN", API_TOKEN)
        .env("AGENTENV_AGE_KEY", AGE_KEY_CANARY)
        .env("AGENTENV_PERSONAL_FILE", f.path().join("no-personal.yaml"))
        .env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

fn result(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("result.json")).expect("the agent ran");
    serde_json::from_str(&text).unwrap()
}

fn out_dir(f: &Fixture) -> PathBuf {
    let d = f.path().join("agent-out");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_agent_gets_the_workdir_and_a_working_mcp_server_but_no_secret() {
    if !python() {
        return crate::support::skip_or_fail_in_ci("python3 is not installed");
    }
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let out_dir = out_dir(&f);
    let out: Out = run_cmd(
        &f,
        &spec,
        &[],
        &[
            "python3",
            FAKE_AGENT,
            out_dir.to_str().unwrap(),
            "stdio",
            "0",
        ],
    )
    .output()
    .unwrap()
    .into();
    out.ok().hides(CANARIES).hides(&[AGE_KEY_CANARY]);
    let r = result(&out_dir);
    let work = f.workdir().canonicalize().unwrap();
    assert_eq!(Path::new(r["cwd"].as_str().unwrap()), work);
    assert!(
        work.join("payments-api/README.md").exists(),
        "provisioned first"
    );

    // No secret value under any name; the provider token and the age key are gone.
    let env = r["env"].to_string();
    assert!(
        !env.contains(API_TOKEN),
        "the token is in the agent's environment"
    );
    assert!(
        !env.contains(AGE_KEY_CANARY),
        "the age key is in the agent's environment"
    );
    assert!(r["env"].get("BB_TOKEN").is_none());
    assert!(r["env"].get("AGENTENV_AGE_KEY").is_none());

    // The configuration starts this very binary over stdio, for this spec and workdir.
    let server = &r["config"]["mcpServers"]["agentenv"];
    assert_eq!(
        Path::new(server["command"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        Path::new(BIN).canonicalize().unwrap()
    );
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    assert_eq!(Path::new(args[1]), std::path::absolute(&spec).unwrap());
    assert_eq!(args[2], "--workdir");
    assert_eq!(Path::new(args[3]).canonicalize().unwrap(), work);
    let config_text = r["config"].to_string();
    assert!(!config_text.contains(API_TOKEN));

    // The server the agent started answers an API tool, so it has the token — from the
    // handoff, not from the agent's environment.
    assert!(
        r["initialize"]["result"]["serverInfo"].is_object(),
        "{}",
        r["initialize"]
    );
    let call = &r["call"]["result"];
    assert_ne!(
        call["isError"], true,
        "{}\n{}",
        r["call"], r["server_stderr"]
    );
    let repos = call["structuredContent"]["repositories"].to_string();
    assert!(repos.contains("payments-api"), "{call}");
    assert!(f.emu.count_token("cloud-api:acme-bot") > 0);
    // A process agentenv did not configure gets nothing from the handoff socket.
    assert_eq!(r["direct_handoff"], "", "{}", r["direct_handoff"]);
    // The run's private directory is gone.
    let config_path = r["env"]["AGENTENV_MCP_CONFIG"].as_str().unwrap();
    assert!(!Path::new(config_path).exists());
}

#[test]
fn the_agent_gets_the_secrets_the_spec_names_for_it() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "agent:\n  env: [BB_TOKEN]\n");
    let got = f.path().join("got");
    let script = format!("printf %s \"$BB_TOKEN\" > {}", got.display());
    run_cmd(&f, &spec, &[], &["sh", "-c", &script])
        .output()
        .map(Out::from)
        .unwrap()
        .ok()
        .hides(CANARIES);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), API_TOKEN);

    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "agent:\n  env: [NOT_A_SECRET]\n");
    let out: Out = run_cmd(&f, &spec, &[], &["sh", "-c", "touch started"])
        .output()
        .unwrap()
        .into();
    out.failed(2).says("NOT_A_SECRET");
    assert!(!f.workdir().join("started").exists());
}

#[test]
fn git_in_the_workdir_authenticates_only_when_the_spec_allows_it() {
    let f = Fixture::new();
    let script = "cd payments-api && git ls-remote origin >/dev/null 2>&1; echo $? > ../ls-remote";
    for (allowed, expect_ok) in [(false, false), (true, true)] {
        let extra = format!("agent:\n  git_credentials: {allowed}\n");
        let spec = f.cloud_spec(API_AUTH, ONE_REPO, &extra);
        let out: Out = run_cmd(&f, &spec, &[], &["sh", "-c", script])
            .output()
            .unwrap()
            .into();
        out.ok().hides(CANARIES);
        let code = std::fs::read_to_string(f.workdir().join("ls-remote")).unwrap();
        assert_eq!(code.trim() == "0", expect_ok, "git_credentials: {allowed}");
    }
}

#[test]
fn the_exit_code_is_the_agents_and_a_failed_provision_starts_no_agent() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let code = |agent: &[&str]| -> i32 {
        run_cmd(&f, &spec, &[], agent)
            .output()
            .unwrap()
            .status
            .code()
            .unwrap()
    };
    assert_eq!(code(&["sh", "-c", "exit 7"]), 7);
    assert_eq!(code(&["sh", "-c", "kill -TERM $$"]), 128 + 15);
    assert_eq!(code(&["true"]), 0);
    let out: Out = run_cmd(&f, &spec, &[], &["/no/such/agent"])
        .output()
        .unwrap()
        .into();
    out.failed(1).says("/no/such/agent");

    let missing = f.cloud_spec(API_AUTH, "  - provider: bb\n    slug: no-such-repo", "");
    let started = f.path().join("started");
    let script = format!("touch {}", started.display());
    let out: Out = run_cmd(&f, &missing, &[], &["sh", "-c", &script])
        .output()
        .unwrap()
        .into();
    out.failed(4);
    assert!(
        !started.exists(),
        "the agent started after a failed provision"
    );

    let out: Out = agentenv_cmd(&["run", spec.to_str().unwrap()])
        .output()
        .unwrap()
        .into();
    out.failed(2).says("agent.command");
}

#[test]
fn signals_reach_the_agent_and_its_exit_is_the_runs() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    for (signal, name) in [
        (libc::SIGTERM, "TERM"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
    ] {
        let ready = f.path().join(format!("ready-{name}"));
        let got = f.path().join(format!("got-{name}"));
        let script = format!(
            "trap 'echo {name} > {got}; exit 3' {name}; touch {ready}; while :; do sleep 0.05; done",
            got = got.display(),
            ready = ready.display()
        );
        let mut child = run_cmd(&f, &spec, &[], &["sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&ready);
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "{name}");
        assert_eq!(std::fs::read_to_string(&got).unwrap().trim(), name);
    }
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_workdir_is_not_locked_while_the_agent_runs() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(&dir.path().join("up"));
    let spec = crate::support::provision::spec(
        dir.path(),
        &format!("repos:\n  - url: {}\n    path: up\n", up.display()),
    );
    let work = dir.path().join("work");
    let inner = format!(
        "{BIN} provision {} --workdir {} >/dev/null 2>&1; echo $? > inner-code",
        spec.display(),
        work.display()
    );
    let out: Out = agentenv_cmd(&[
        "run",
        spec.to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &inner,
    ])
    .output()
    .unwrap()
    .into();
    out.ok();
    let inner = std::fs::read_to_string(work.join("inner-code")).unwrap();
    assert_eq!(
        inner.trim(),
        "0",
        "a provision inside the run found the workdir locked"
    );
    assert_eq!(
        git(&work.join("up"), &["rev-parse", "HEAD"]),
        git(&up, &["rev-parse", "main"])
    );
}

#[test]
fn http_mode_serves_on_loopback_with_a_token_for_this_run_and_stops_after() {
    if !python() {
        return crate::support::skip_or_fail_in_ci("python3 is not installed");
    }
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let out_dir = out_dir(&f);
    let out: Out = run_cmd(
        &f,
        &spec,
        &["--http"],
        &["python3", FAKE_AGENT, out_dir.to_str().unwrap(), "http"],
    )
    .output()
    .unwrap()
    .into();
    out.ok().hides(CANARIES);
    let r = result(&out_dir);
    assert_eq!(r["http_status"], 200, "{r}");
    assert_eq!(r["without_token"], 401);
    let url = r["config"]["mcpServers"]["agentenv-http"]["url"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(r["env"]["AGENTENV_MCP_URL"], url);
    // Stopped with the run: nothing listens there any more.
    let addr = url.trim_start_matches("http://").trim_end_matches("/mcp");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "{addr} still listens"
    );
}

/// What `run` cannot start is refused before anything is cloned: no agent command, an
/// `agent.env` name that is not a secret of the spec.
#[test]
fn an_agent_that_cannot_start_is_refused_before_the_provision() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "agent:\n  env: [NOT_A_SECRET]\n");
    let out: Out = run_cmd(&f, &spec, &[], &["true"]).output().unwrap().into();
    out.failed(2).says("agent.env names `NOT_A_SECRET`");
    assert!(
        !f.workdir().join("payments-api").exists(),
        "nothing was cloned"
    );
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let mut cmd = agentenv_cmd(&["run", spec.to_str().unwrap(), "--workdir"]);
    let out: Out = cmd.arg(f.workdir()).output().unwrap().into();
    out.failed(2).says("no agent to run");
    assert!(
        !f.workdir().join("payments-api").exists(),
        "nothing was cloned"
    );
}
