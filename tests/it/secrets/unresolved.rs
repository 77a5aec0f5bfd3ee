//! Where the secrets are not: `check` tests what it can and says, per check, which secret is
//! missing and how to provide it; `provision` stops before anything runs, at the line that
//! names the secret.

use std::path::Path;

use crate::support::secrets::Sandbox;
use crate::support::{Out, agentenv_cmd};

fn check_example(vars: &[(&str, &str)]) -> (Out, serde_json::Value) {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/payments-cloud.yaml");
    let home = tempfile::tempdir().unwrap();
    let mut cmd = agentenv_cmd(&["check", "--json", spec.to_str().unwrap()]);
    cmd.env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SENTRY_DSN");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = Out::from(cmd.output().expect("agentenv runs"));
    let doc = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.all()));
    (out, doc)
}

fn find<'a>(doc: &'a serde_json::Value, check: &str, subject: &str) -> &'a serde_json::Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["check"] == check
                && [&c["provider"], &c["repo"], &c["secret"]]
                    .iter()
                    .any(|v| *v == subject)
        })
        .unwrap_or_else(|| panic!("no {check} check of {subject} in {doc:#}"))
}

#[test]
fn check_names_the_missing_secret_and_the_fix_in_each_check() {
    // The README's example spec on a machine with no age identity and no SENTRY_DSN.
    let (out, doc) = check_example(&[]);
    assert_eq!(
        out.code,
        1,
        "auth (3) and input (2) failures mixed:\n{}",
        out.all()
    );
    let auth = find(&doc, "auth", "bb");
    assert_eq!(auth["ok"], false);
    assert_eq!(auth["secret"], "BITBUCKET_API_TOKEN");
    let text = auth.to_string();
    assert!(
        text.contains("auth.token: cannot decrypt BITBUCKET_API_TOKEN"),
        "{text}"
    );
    assert!(text.contains("AGENTENV_AGE_KEY"), "the fix: {text}");
    let dsn = find(&doc, "secret", "SENTRY_DSN");
    assert_eq!(dsn["ok"], false);
    assert!(
        dsn["fix"]
            .as_str()
            .unwrap()
            .starts_with("set SENTRY_DSN in the environment"),
        "{dsn}"
    );
    for repo in ["payments-api", "payments-ledger"] {
        for check in ["git", "api"] {
            let c = find(&doc, check, repo);
            assert_eq!(c["ok"], false);
            assert_eq!(c["secret"], "BITBUCKET_API_TOKEN", "{c}");
            assert!(
                c["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("not checked: provider `bb` has no credential"),
                "{c}"
            );
        }
    }
    // The human form says the same, one FAIL line per check with its fix.
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/payments-cloud.yaml");
    let home = tempfile::tempdir().unwrap();
    let text = Out::from(
        agentenv_cmd(&["check", spec.to_str().unwrap()])
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("SENTRY_DSN")
            .output()
            .unwrap(),
    );
    text.failed(1)
        .says("FAIL secret    SENTRY_DSN: secret SENTRY_DSN is listed in `secrets.from_env`")
        .says("FAIL auth      provider bb: auth.token: cannot decrypt BITBUCKET_API_TOKEN");

    // Only the identity missing: the exit code is that of an auth failure.
    let (out, doc) = check_example(&[("SENTRY_DSN", "https://dsn-canary@example.invalid/1")]);
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(doc.to_string().find("SENTRY_DSN").is_none(), "{doc}");
}

#[test]
fn provision_points_at_the_line_that_names_an_unresolved_secret() {
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &["BB_TOKEN"]);
    let work = sb.path("work");
    let spec = sb.spec.to_str().unwrap();
    sb.run(&["provision", spec, "--workdir", work.to_str().unwrap()], "", &[])
        .failed(2)
        .says(&format!(
            "{spec}:7:61: providers.bb.auth.token: secret BB_TOKEN is listed in `secrets.from_env`, but the environment variable BB_TOKEN is not set"
        ))
        .says("hint: set BB_TOKEN in the environment agentenv runs in");
    assert!(!work.exists(), "nothing was created");
}
