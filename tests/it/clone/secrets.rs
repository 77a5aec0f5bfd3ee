//! The token never leaves memory: not in any process's argv while a clone and a step that runs
//! `git ls-remote` through `agentenv git-credential` run, not in `.git/config`, logs, state,
//! stdout or stderr. And the helper answers only for the provider's own host.

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::remote::*;
use crate::support::{agentenv_cmd, code, stderr, stdout};

/// Read every process's argv until `stop`; returns the command lines that held a canary and
/// every distinct command line seen.
type Sampled = (Vec<String>, std::collections::HashSet<(String, String)>);

fn sample_argv(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Sampled> {
    std::thread::spawn(move || {
        let mut leaks = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while !stop.load(Ordering::Relaxed) {
            let Ok(procs) = std::fs::read_dir("/proc") else {
                break;
            };
            for p in procs.flatten() {
                let name = p.file_name().to_string_lossy().into_owned();
                if !name.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                if let Ok(cmd) = std::fs::read(p.path().join("cmdline")) {
                    let text = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    if CANARIES.iter().any(|c| text.contains(c)) {
                        leaks.push(text.clone());
                    }
                    seen.insert((name, text));
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (leaks, seen)
    })
}

fn step(url: &str) -> String {
    format!(
        "setup:\n  - name: refs\n    run: for i in 1 2 3 4 5; do git ls-remote {url} > refs.txt || exit 1; done\n"
    )
}

fn provision_sampled(f: &Fixture, spec: &std::path::Path, token: &str) {
    // Slow the server down so the clone and the step are alive while being sampled.
    f.emu.add_latency("*", Duration::from_millis(100));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_argv(stop.clone());
    let out = f.provision(spec, token);
    stop.store(true, Ordering::Relaxed);
    let (leaks, seen) = sampler.join().unwrap();
    assert_eq!(code(&out), 0);
    assert!(leaks.is_empty(), "canary in argv: {leaks:?}");
    let saw = |what: &str| seen.iter().any(|(_, cmd)| cmd.contains(what));
    assert!(saw("agentenv provision"), "the sampler saw the provision");
    assert!(saw("ls-remote"), "the sampler saw the step's git");
    assert!(saw("git-credential"), "the sampler saw the helper");
    assert_no_canary(&out);
    let refs = std::fs::read_to_string(f.workdir().join("refs.txt")).unwrap();
    assert!(
        refs.contains("refs/heads/main"),
        "the step's git authenticated: {refs}"
    );
    assert!(
        files_with_canary(&f.workdir()).is_empty(),
        "canary on disk: {:?}",
        files_with_canary(&f.workdir())
    );
    let config = std::fs::read_to_string(f.workdir().join("payments-api/.git/config")).unwrap();
    assert!(
        config.contains(&format!("url = {}", f.emu.base_url())),
        "{config}"
    );
}

#[test]
fn cloud_clone_and_step_keep_the_token_out_of_argv_and_disk() {
    let f = Fixture::new();
    let url = f.emu.cloud_clone_url("acme", "payments-api");
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, &step(&url));
    provision_sampled(&f, &spec, API_TOKEN);
}

#[test]
fn datacenter_bearer_reaches_step_git_through_the_helper() {
    let f = Fixture::new();
    let url = f.emu.dc_clone_url("PAY", "payments-api");
    let spec = f.dc_spec(ONE_DC_REPO, &step(&url));
    provision_sampled(&f, &spec, DC_TOKEN);
    let step_reqs: Vec<_> = f
        .emu
        .requests()
        .into_iter()
        .filter(|r| {
            r.header("user-agent")
                .is_some_and(|u| u.starts_with("git/"))
        })
        .collect();
    assert!(
        step_reqs
            .iter()
            .any(|r| r.header("authorization") == Some(format!("Bearer {DC_TOKEN}").as_str())),
        "git sent the Bearer token the helper gave it"
    );
}

fn helper(f: &Fixture, spec: &std::path::Path, token: &str, request: &str) -> String {
    let out = helper_output(f, spec, token, request);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn helper_output(
    f: &Fixture,
    spec: &std::path::Path,
    token: &str,
    request: &str,
) -> std::process::Output {
    let mut child = agentenv_cmd(&["git-credential", "--env", spec.to_str().unwrap(), "get"])
        .env("BB_TOKEN", token)
        .env("AGENTENV_PERSONAL_FILE", f.path().join("none.yaml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_helper_answers_only_for_the_providers_host() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let host = f.emu.base_url().trim_start_matches("http://").to_string();
    let ours = helper(
        &f,
        &spec,
        API_TOKEN,
        &format!("protocol=http\nhost={host}\n\n"),
    );
    assert_eq!(
        ours,
        format!("username=x-bitbucket-api-token-auth\npassword={API_TOKEN}\n")
    );
    let other = helper(&f, &spec, API_TOKEN, "protocol=https\nhost=github.com\n\n");
    assert_eq!(other, "", "nothing for another host");
    let other_port = helper(&f, &spec, API_TOKEN, "protocol=http\nhost=127.0.0.1:1\n\n");
    assert_eq!(other_port, "");
    let https = helper(
        &f,
        &spec,
        API_TOKEN,
        &format!("protocol=https\nhost={host}\n\n"),
    );
    assert_eq!(https, "", "nothing over another scheme");
}

#[test]
fn the_helper_gives_bearer_only_to_git_that_understands_it() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "");
    let host = f.emu.base_url().trim_start_matches("http://").to_string();
    // Git before 2.46 (no `capability[]=authtype`): no Basic guess for a Bearer token, and
    // a message git shows in the step's output.
    let request = format!("protocol=http\nhost={host}\n\n");
    let old_git = helper_output(&f, &spec, DC_TOKEN, &request);
    assert_eq!(stdout(&old_git), "", "no Basic guess for a Bearer token");
    let said = stderr(&old_git);
    assert!(said.contains("2.46") && said.contains("Bearer"), "{said}");
    assert!(!said.contains(DC_TOKEN), "{said}");
    let new_git = helper(
        &f,
        &spec,
        DC_TOKEN,
        &format!("capability[]=authtype\nprotocol=http\nhost={host}\n\n"),
    );
    assert!(new_git.contains("authtype=Bearer\n"), "{new_git}");
    assert!(new_git.contains(&format!("credential={DC_TOKEN}\n")));
}
