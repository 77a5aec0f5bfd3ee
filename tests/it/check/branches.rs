//! `agentenv branches ENV REPO`: authenticated ls-remote, default marked, scope applied.

use crate::support::git::git;
use crate::support::remote::*;
use crate::support::{code, names, stderr, stdout};

fn branches(f: &Fixture, spec: &std::path::Path, token: &str, repo: &str) -> std::process::Output {
    let out = f.run(token, &["branches", spec.to_str().unwrap(), repo, "--json"]);
    assert_no_canary(&out);
    out
}

#[test]
fn lists_every_branch_with_the_default_marked() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let out = branches(&f, &spec, API_TOKEN, "payments-api");
    assert_eq!(code(&out), 0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&doc, "branches", "name"), ["dev", "feature", "main"]);
    assert_eq!(doc["default_branch"], "main");
    let main = &doc["branches"][2];
    assert_eq!(main["default"], true);
    assert_eq!(
        main["commit"].as_str().unwrap(),
        git(&f.upstream, &["rev-parse", "main"])
    );
    assert!(f.emu.count_token("cloud-api:acme-bot") > 0, "authenticated");
    let text = f.run(
        API_TOKEN,
        &["branches", spec.to_str().unwrap(), "payments-api"],
    );
    assert!(stdout(&text).contains("* main"), "{}", stdout(&text));
}

#[test]
fn scope_hides_branches_and_says_how_many() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "scope:\n  branches: '^(main|dev)$'\n");
    let out = branches(&f, &spec, DC_TOKEN, "payments-api");
    assert_eq!(code(&out), 0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&doc, "branches", "name"), ["dev", "main"]);
    assert_eq!(doc["outside_scope"], 1);
}

#[test]
fn an_unknown_repository_name_lists_the_known_ones() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let out = branches(&f, &spec, API_TOKEN, "ledger");
    assert_eq!(code(&out), 4);
    assert!(stderr(&out).contains("payments-api"), "{}", stderr(&out));
    assert_eq!(f.emu.count("*"), 0);
}

#[test]
fn a_refused_token_fails_with_the_fix() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let out = branches(&f, &spec, EXPIRED, "payments-api");
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
}

#[test]
fn transient_failures_are_retried() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "");
    f.emu.fail_next("*/info/refs*", 1, 500);
    let out = branches(&f, &spec, DC_TOKEN, "payments-api");
    assert_eq!(code(&out), 0);
    assert_eq!(f.emu.count("*/info/refs*"), 2);
}
