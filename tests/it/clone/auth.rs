//! Authenticated clones against the emulator: every auth form, the credential never leaving
//! the callback or header, refused credentials tried once with the fix in the error.

use crate::support::git::{commit, git};
use crate::support::provision::spec;
use crate::support::remote::*;
use crate::support::{code, stderr, stdout};

fn assert_clean_checkout(f: &Fixture) {
    let checkout = f.workdir().join("payments-api");
    assert!(checkout.join("README.md").exists(), "checked out");
    let config = std::fs::read_to_string(checkout.join(".git/config")).unwrap();
    assert!(
        !config.contains('@'),
        "no userinfo in .git/config:\n{config}"
    );
    assert!(
        files_with_canary(&f.workdir()).is_empty(),
        "a canary is on disk: {:?}",
        files_with_canary(&f.workdir())
    );
}

#[test]
fn cloud_api_token_clones_with_the_fixed_git_username() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let out = f.provision(&spec, API_TOKEN);
    assert_eq!(code(&out), 0);
    assert_no_canary(&out);
    assert_clean_checkout(&f);
    let git_reqs: Vec<_> = f
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/acme/payments-api.git"))
        .collect();
    assert!(
        git_reqs
            .iter()
            .any(|r| r.token.as_deref() == Some("cloud-api:acme-bot"))
    );
    for r in &git_reqs {
        assert!(!r.path.contains(API_TOKEN) && !r.query.contains(API_TOKEN));
    }
    let state = std::fs::read_to_string(f.workdir().join(".agentenv/state.json")).unwrap();
    assert!(state.contains(&f.emu.cloud_clone_url("acme", "payments-api")));
}

#[test]
fn cloud_api_token_with_the_bitbucket_username_works_too() {
    let f = Fixture::new();
    let auth = format!("{API_AUTH}\nusername: {USERNAME}");
    let spec = f.cloud_spec(&auth, ONE_REPO, "");
    let out = f.provision(&spec, API_TOKEN);
    assert_eq!(code(&out), 0);
    assert_clean_checkout(&f);
}

#[test]
fn cloud_access_token_clones_as_x_token_auth() {
    let f = Fixture::new();
    let spec = f.cloud_spec(ACCESS_AUTH, ONE_REPO, "");
    let out = f.provision(&spec, ACCESS_TOKEN);
    assert_eq!(code(&out), 0);
    assert_no_canary(&out);
    assert_clean_checkout(&f);
    assert!(f.emu.count_token("cloud-access") > 0);
}

#[test]
fn datacenter_token_is_sent_as_bearer_from_the_first_request() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "");
    let out = f.provision(&spec, DC_TOKEN);
    assert_eq!(code(&out), 0);
    assert_no_canary(&out);
    assert_clean_checkout(&f);
    let git_reqs: Vec<_> = f
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/scm/pay/payments-api.git"))
        .collect();
    assert!(!git_reqs.is_empty());
    // No anonymous round trip first: every request carried the header and was answered.
    for r in &git_reqs {
        assert_eq!(r.status, 200, "{} {}", r.method, r.path);
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {DC_TOKEN}").as_str())
        );
    }
}

#[test]
fn a_full_clone_url_with_a_provider_uses_its_auth() {
    let f = Fixture::new();
    let repos = format!(
        "  - provider: bb\n    url: git clone {}",
        f.emu.cloud_clone_url("acme", "payments-api")
    );
    let spec = f.cloud_spec(API_AUTH, &repos, "");
    let out = f.provision(&spec, API_TOKEN);
    assert_eq!(code(&out), 0);
    assert_clean_checkout(&f);
}

#[test]
fn a_url_on_another_host_is_not_sent_the_token() {
    let f = Fixture::new();
    let repos = "  - provider: bb\n    url: http://127.0.0.2:9/acme/payments-api.git";
    let spec = f.cloud_spec(API_AUTH, repos, "");
    let out = f.provision(&spec, API_TOKEN);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("its token is not sent elsewhere"),
        "{}",
        stderr(&out)
    );
    assert!(!f.workdir().join("payments-api").exists());
}

/// A refused credential: asked once, no loop, the error names provider, auth type and fix.
fn refused(f: &Fixture, spec: &std::path::Path, token: &str, expect: &[&str]) {
    let out = f.provision(spec, token);
    assert_eq!(code(&out), 3, "auth failure exit code");
    assert_no_canary(&out);
    let err = stderr(&out);
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in:\n{err}");
    }
    assert!(
        !f.workdir().join("payments-api").exists(),
        "no checkout left"
    );
    // The credential goes with the first request; refused, it is not offered again.
    let n = f.emu.count("*/info/refs*");
    assert_eq!(n, 1, "the credential was offered {n} times");
}

#[test]
fn a_wrong_token_is_tried_once_and_explained() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    refused(
        &f,
        &spec,
        "CANARY-api-wrong-000",
        &["provider `bb`", "api-token", "expired or revoked"],
    );
}

#[test]
fn the_email_as_git_username_is_named_as_the_cause() {
    let f = Fixture::new();
    let auth = format!("{API_AUTH}\nusername: {EMAIL}");
    let spec = f.cloud_spec(&auth, ONE_REPO, "");
    refused(
        &f,
        &spec,
        API_TOKEN,
        &[
            "the account email was used as git username",
            "x-bitbucket-api-token-auth",
        ],
    );
}

#[test]
fn an_expired_token_is_refused_with_the_fix() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    refused(&f, &spec, EXPIRED, &["expired", "agentenv secret update"]);
}

#[test]
fn a_token_without_repository_scope_says_which_scope() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "");
    let out = f.provision(&spec, NO_SCOPE);
    assert_eq!(code(&out), 3);
    assert_no_canary(&out);
    assert!(
        stderr(&out).contains("read:repository:bitbucket"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        f.emu.count("*/info/refs*"),
        1,
        "the credential goes with the first request; 403 is an answer: not retried"
    );
}

#[test]
fn a_datacenter_token_without_permission_is_refused_once() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "");
    let out = f.provision(&spec, DC_NO_PERM);
    assert_eq!(code(&out), 3);
    assert_no_canary(&out);
    let err = stderr(&out);
    assert!(
        err.contains("http-access-token") && err.contains("REPO_READ"),
        "{err}"
    );
    assert_eq!(f.emu.count("*/info/refs*"), 1);
}

#[test]
fn out_of_scope_repositories_and_branches_are_refused_before_cloning() {
    let f = Fixture::new();
    let spec = f.cloud_spec(API_AUTH, ONE_REPO, "scope:\n  repositories: '^ledger$'\n");
    let out = f.provision(&spec, API_TOKEN);
    assert_eq!(code(&out), 2, "validation refuses it");
    assert!(stderr(&out).contains("scope"), "{}", stderr(&out));
    let repos = format!("{ONE_REPO}\n    branch: dev");
    let spec = f.cloud_spec(API_AUTH, &repos, "scope:\n  branches: '^main$'\n");
    let out = f.provision(&spec, API_TOKEN);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("scope"), "{}", stderr(&out));
    let validate = f.run(API_TOKEN, &["validate", spec.to_str().unwrap()]);
    assert_ne!(code(&validate), 0);
    assert_eq!(f.emu.count("*"), 0, "nothing was asked of the server");
    assert!(!f.workdir().join("payments-api").exists());
}

#[test]
fn an_update_fetches_with_the_same_credential() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "");
    assert_eq!(code(&f.provision(&spec, DC_TOKEN)), 0);
    let head = commit(&f.upstream, "new.txt", "new\n");
    let out = f.provision(&spec, DC_TOKEN);
    assert_eq!(code(&out), 0);
    assert_no_canary(&out);
    assert_eq!(
        git(&f.workdir().join("payments-api"), &["rev-parse", "HEAD"]),
        head
    );
    assert_clean_checkout(&f);
}

#[test]
fn a_private_repository_without_auth_says_to_add_it() {
    let f = Fixture::new();
    let spec = spec(
        f.path(),
        &format!(
            "providers:\n  bb:\n    kind: cloud\n    workspace: acme\n    git_url: {}\nrepos:\n{ONE_REPO}\n",
            f.emu.git_url()
        ),
    );
    let out = f.provision(&spec, API_TOKEN);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("add `auth:`"), "{}", stderr(&out));
}

#[test]
fn a_dry_run_asks_the_remote_with_the_credential_and_changes_nothing() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "");
    let work = f.workdir();
    let args = [
        "provision",
        spec.to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
        "--dry-run",
    ];
    let out = f.run(DC_TOKEN, &args);
    assert_eq!(code(&out), 0);
    assert_no_canary(&out);
    assert!(stdout(&out).contains("clone"), "{}", stdout(&out));
    assert!(!work.join("payments-api").exists());
    assert!(
        f.emu.count_token("dc-project:PAY") > 0,
        "authenticated probe"
    );
    let refused = f.run(DC_NO_PERM, &args);
    assert_eq!(code(&refused), 3);
    assert!(
        stderr(&refused).contains("REPO_READ"),
        "{}",
        stderr(&refused)
    );
}
