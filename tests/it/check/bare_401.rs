//! A wrong Data Center token behind a server (or proxy) whose 401 carries no
//! `WWW-Authenticate` header: every command that talks to it names the credential and the fix,
//! as for Cloud's 401 with the header.

use crate::support::remote::*;
use crate::support::{code, stderr, stdout};

/// Data Center's own body for a wrong token, without the header a client could key on.
const BODY: &str = r#"{"errors":[{"context":null,"message":"Authentication failed. Please check your credentials and try again.","exceptionName":"com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}"#;

fn bare_401(f: &Fixture) {
    f.emu.clear_faults();
    f.emu.respond_next("*", 1000, 401, "application/json", BODY);
}

#[track_caller]
fn says_the_fix(what: &str, out: &std::process::Output) {
    assert_no_canary(out);
    let all = format!("{}\n{}", stdout(out), stderr(out));
    assert_eq!(code(out), 3, "{what}: exit code");
    for want in [
        "provider `dc`",
        "expired, revoked",
        "agentenv secret update",
    ] {
        assert!(all.contains(want), "{what}: expected {want:?} in:\n{all}");
    }
    assert!(
        all.contains("http-access-token") || all.contains("HTTP access token"),
        "{what}: the auth type is named:\n{all}"
    );
    assert!(
        !all.contains("not support"),
        "{what}: libgit2's `authentication that we do not support`:\n{all}"
    );
}

#[test]
fn a_datacenter_401_without_www_authenticate_names_the_fix_everywhere() {
    let f = Fixture::new();
    let spec = f.dc_spec(ONE_DC_REPO, "");
    let s = spec.to_str().unwrap();
    let token = "CANARY-dc-wrong-0000";

    bare_401(&f);
    says_the_fix("provision", &f.provision(&spec, token));
    assert!(!f.workdir().join("payments-api").exists());

    bare_401(&f);
    says_the_fix("check", &f.run(token, &["check", s]));

    bare_401(&f);
    says_the_fix("branches", &f.run(token, &["branches", s, "payments-api"]));

    bare_401(&f);
    let work = f.workdir();
    let out = f.run(
        token,
        &[
            "tool",
            s,
            "list_pull_requests",
            "--workdir",
            work.to_str().unwrap(),
            "--arg",
            "repo=payments-api",
        ],
    );
    says_the_fix("tool list_pull_requests", &out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("error JSON");
    assert_eq!(json["kind"], "auth_failed", "{json}");
}
