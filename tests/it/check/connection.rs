//! `agentenv check`: every check OK or FAIL with the fix, against the emulator.

use crate::support::provision::spec;
use crate::support::remote::*;
use crate::support::{code, stdout};

fn check(
    f: &Fixture,
    spec: &std::path::Path,
    token: &str,
) -> (std::process::Output, serde_json::Value) {
    let out = f.run(token, &["check", spec.to_str().unwrap(), "--json"]);
    assert_no_canary(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
    (out, doc)
}

/// `(check, ok)` of every check, in order.
fn summary(doc: &serde_json::Value) -> Vec<(String, bool)> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn fix_of(doc: &serde_json::Value, check: &str) -> String {
    let c = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} check in {doc}"));
    format!("{} {}", c["detail"], c["fix"])
}

fn all_ok(names: &[&str]) -> Vec<(String, bool)> {
    names.iter().map(|n| (n.to_string(), true)).collect()
}

#[test]
fn cloud_api_token_passes_every_check() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let (out, doc) = check(&f, &spec, API_TOKEN);
    assert_eq!(code(&out), 0);
    assert_eq!(summary(&doc), all_ok(&["auth", "workspace", "git", "api"]));
    assert_eq!(f.emu.count("GET /2.0/user"), 1);
    assert_eq!(f.emu.count("GET /2.0/workspaces/acme"), 1);
    assert_eq!(f.emu.count("GET /2.0/repositories/acme/payments-api"), 1);
    // The human form: one line per check.
    let text = f.run(API_TOKEN, &["check", spec.to_str().unwrap()]);
    assert_eq!(code(&text), 0);
    assert_eq!(
        stdout(&text)
            .lines()
            .filter(|l| l.starts_with("OK "))
            .count(),
        4
    );
}

#[test]
fn cloud_access_token_checks_the_workspace() {
    let f = Fixture::new();
    let spec = f.cloud_spec(ACCESS_AUTH, ONE_REPO, "");
    let (out, doc) = check(&f, &spec, ACCESS_TOKEN);
    assert_eq!(code(&out), 0);
    assert_eq!(summary(&doc), all_ok(&["workspace", "git", "api"]));
    assert_eq!(f.emu.count("GET /2.0/user"), 0);
}

#[test]
fn datacenter_token_passes_every_check() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "");
    let (out, doc) = check(&f, &spec, DC_TOKEN);
    assert_eq!(code(&out), 0);
    assert_eq!(summary(&doc), all_ok(&["project", "git", "api"]));
}

#[test]
fn a_wrong_token_fails_with_the_fix_and_exit_code_3() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let (out, doc) = check(&f, &spec, "CANARY-api-wrong-000");
    assert_eq!(code(&out), 3);
    assert_eq!(doc["ok"], false);
    assert!(summary(&doc).iter().all(|(_, ok)| !ok), "{doc}");
    assert!(fix_of(&doc, "auth").contains("401"), "{doc}");
    assert!(fix_of(&doc, "git").contains("expired or revoked"), "{doc}");
    let text = f.run("CANARY-api-wrong-000", &["check", spec.to_str().unwrap()]);
    assert!(stdout(&text).contains("FAIL auth"), "{}", stdout(&text));
    assert!(stdout(&text).contains("fix: "), "{}", stdout(&text));
}

#[test]
fn a_token_without_repository_scope_names_the_scope() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let (out, doc) = check(&f, &spec, NO_SCOPE);
    assert_eq!(code(&out), 3);
    let s = summary(&doc);
    assert_eq!(
        s[0],
        ("auth".to_string(), true),
        "the token itself is valid"
    );
    assert!(
        fix_of(&doc, "git").contains("read:repository:bitbucket"),
        "{doc}"
    );
    assert!(
        fix_of(&doc, "api").contains("read:repository:bitbucket"),
        "{doc}"
    );
    // Every failed check carries its fix in its own field.
    for c in doc["checks"].as_array().unwrap() {
        if c["ok"] == false {
            assert!(c["fix"].as_str().is_some_and(|f| !f.is_empty()), "{c}");
        }
    }
    let api = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "api")
        .unwrap();
    assert!(
        api["fix"]
            .as_str()
            .unwrap()
            .contains("read:repository:bitbucket"),
        "{api}"
    );
}

#[test]
fn a_missing_repository_fails_git_and_api_with_exit_code_4() {
    let f = Fixture::new();
    let spec = f.dc_spec("  - provider: dc\n    slug: nope", "");
    let (out, doc) = check(&f, &spec, DC_TOKEN);
    assert_eq!(code(&out), 4);
    assert_eq!(
        summary(&doc),
        [
            ("project".into(), true),
            ("git".into(), false),
            ("api".into(), false)
        ]
    );
    assert!(fix_of(&doc, "api").contains("does not exist"), "{doc}");
    assert!(fix_of(&doc, "git").contains("check the slug"), "{doc}");
}

#[test]
fn a_datacenter_token_without_permission_is_explained() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "");
    let (out, doc) = check(&f, &spec, DC_NO_PERM);
    assert_eq!(code(&out), 3);
    assert!(fix_of(&doc, "api").contains("REPO_READ"), "{doc}");
    assert!(fix_of(&doc, "git").contains("REPO_READ"), "{doc}");
}

#[test]
fn rate_limiting_is_reported_with_exit_code_5() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    f.emu.fail_next("GET /2.0/*", 100, 429);
    let (out, doc) = check(&f, &spec, API_TOKEN);
    assert_eq!(code(&out), 5, "every failure is a rate limit");
    assert!(fix_of(&doc, "auth").contains("rate-limit"), "{doc}");
    assert_eq!(summary(&doc)[2], ("git".to_string(), true));
}

#[test]
fn an_unreachable_api_says_so() {
    let f = Fixture::new();
    let spec = spec(
        f.path(),
        &format!(
            "providers:\n  bb:\n    kind: cloud\n    workspace: acme\n    api_url: http://127.0.0.1:1/2.0\n    git_url: http://127.0.0.1:1\n    auth:\n{}\nsecrets:\n  from_env: [BB_TOKEN]\nrepos:\n{ONE_REPO}\n",
            indent(API_AUTH, 6)
        ),
    );
    let (out, doc) = check(&f, &spec, API_TOKEN);
    assert_eq!(code(&out), 5);
    assert!(summary(&doc).iter().all(|(_, ok)| !ok));
    assert!(fix_of(&doc, "auth").contains("network"), "{doc}");
    assert!(fix_of(&doc, "git").contains("reachable"), "{doc}");
}
