//! `agentenv validate` where the secrets are not (a pull request's CI: no age identity, no
//! tokens): every secret a provider names must be *declared* — in the team file's names, in
//! `secrets.from_env` or in `secrets.personal` — and nothing needs a value. `--resolve-secrets`
//! resolves them as `provision` does. Problems point at the line that names the secret.

use std::path::{Path, PathBuf};

use crate::support::secrets::Sandbox;
use crate::support::{Out, agentenv_cmd};

/// A spec whose provider names `BB_TOKEN` (line 7, column 61); `secrets` is appended.
fn spec(secrets: &str) -> String {
    format!(
        "version: 1
name: sec
providers:
  bb:
    kind: cloud
    workspace: acme
    auth: {{type: api-token, email: bot@acme.example, token: BB_TOKEN}}
{secrets}"
    )
}

/// `agentenv validate ARGS…` with an empty HOME, no XDG_CONFIG_HOME and no `AGENTENV_*`.
fn validate(args: &[&str], paths: &[&Path]) -> Out {
    let home = tempfile::tempdir().unwrap();
    Out::from(
        agentenv_cmd(&["validate"])
            .args(args)
            .args(paths)
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("BB_TOKEN")
            .output()
            .expect("agentenv runs"),
    )
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("env.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_example_spec_validates_without_any_secret() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut specs: Vec<PathBuf> = std::fs::read_dir(root.join("environments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    specs.sort();
    assert!(specs.len() >= 3, "{specs:?}");
    let paths: Vec<&Path> = specs.iter().map(PathBuf::as_path).collect();
    let out = validate(&[], &paths);
    out.ok();
    for p in &specs {
        out.says(&format!("{}: ok", p.display()));
    }
    assert!(out.stderr.is_empty(), "no warnings either:\n{}", out.stderr);
    // The JSON form agrees, file by file.
    let out = validate(&["--json"], &paths);
    out.ok();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for f in doc["files"].as_array().unwrap() {
        assert_eq!(f["ok"], true, "{f}");
        assert_eq!(f["warnings"], serde_json::json!([]), "{f}");
    }
}

#[test]
fn an_undeclared_secret_is_refused_at_the_line_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &spec(""));
    let out = validate(&[], &[&path]);
    out.failed(2)
        .says(&format!(
            "{}:7:61: providers.bb.auth.token: secret BB_TOKEN is not declared: it is in neither `secrets.from_env` nor `secrets.personal`, and the spec has no team file (`secrets.team`)",
            path.display()
        ))
        .says("  hint: if each person uses their own, list it in `secrets.personal`")
        .says("list it in `secrets.from_env`");
    let out = validate(&["--json"], &[&path]);
    out.failed(2);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let e = &doc["files"][0]["errors"][0];
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_u64()),
        (Some(7), Some(61))
    );
    assert_eq!(e["key"], "providers.bb.auth.token");

    // With a team file that does not hold it, the file is named, and how to store it there.
    let path = write(
        dir.path(),
        &spec(
            "secrets:\n  team: secrets/team.yaml\n  recipients: [age10w3g5fvngc7ukyzytwxk8gl8e23gghw5qeu8zj2c2v6k29ndtyjqyhlucx]\n",
        ),
    );
    validate(&[], &[&path])
        .failed(2)
        .says("secret BB_TOKEN is not declared: it is in neither the team file")
        .says("secrets/team.yaml (which does not exist yet)")
        .says("--team BB_TOKEN");
}

#[test]
fn a_secret_is_declared_by_the_team_file_from_env_or_personal() {
    // The team file lists its names in clear: no identity is needed to see BB_TOKEN there.
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &[]);
    sb.secret("create", &["--team", "BB_TOKEN"], "team-canary-5e1f", &[])
        .ok();
    validate(&[], &[&sb.spec]).ok().hides(&["team-canary-5e1f"]);

    let dir = tempfile::tempdir().unwrap();
    for secrets in [
        "secrets:\n  from_env: [BB_TOKEN]\n",
        "secrets:\n  personal: [BB_TOKEN]\n",
    ] {
        let path = write(dir.path(), &spec(secrets));
        validate(&[], &[&path]).ok().says(": ok");
    }
}

#[test]
fn resolve_secrets_resolves_as_provision_does() {
    // Declared personal, but this machine's personal file does not have it: the line that
    // names it, and the command that adds it.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &spec("secrets:\n  personal: [BB_TOKEN]\n"));
    validate(&["--resolve-secrets"], &[&path])
        .failed(2)
        .says(&format!(
            "{}:7:61: providers.bb.auth.token: secret BB_TOKEN is declared in `secrets.personal`, but your personal file",
            path.display()
        ))
        .says(&format!(
            "hint: add your own value with `agentenv secret create {} --personal BB_TOKEN`",
            path.display()
        ));

    // In the team file, but no identity here: exit 3, and the hint says what still works.
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &[]);
    sb.secret("create", &["--team", "BB_TOKEN"], "team-canary-5e1f", &[])
        .ok();
    validate(&["--resolve-secrets"], &[&sb.spec])
        .failed(3)
        .says("cannot decrypt BB_TOKEN")
        .says("AGENTENV_AGE_KEY")
        .says("without the keys, `agentenv validate` (no --resolve-secrets)")
        .hides(&["team-canary-5e1f"]);
    // With the key it resolves.
    let out = agentenv_cmd(&["validate", "--resolve-secrets", sb.spec.to_str().unwrap()])
        .env("HOME", &sb.home)
        .env("AGENTENV_AGE_KEY_FILE", &key.file)
        .output()
        .unwrap();
    Out::from(out).ok().hides(&["team-canary-5e1f"]);
}

#[test]
fn a_step_using_a_secret_like_variable_nothing_provides_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{}setup:
  - name: publish
    run: 'curl -H "Authorization: Bearer $DEPLOY_TOKEN" https://example.invalid/${{BB_TOKEN}}'
  - name: quiet
    run: echo '$NOT_EXPANDED' $HOME $MY_API_KEY; LOCAL_SECRET=x; echo $LOCAL_SECRET
    env: {{ MY_API_KEY: not-a-secret }}
"#,
        spec("secrets:\n  from_env: [BB_TOKEN]\n")
    );
    let path = write(dir.path(), &text);
    let out = validate(&[], &[&path]);
    // A warning, not an error: the spec is still ok.
    out.ok()
        .says(&format!("{}: ok", path.display()))
        .says(&format!(
            "{}:12:10: warning: setup[0].run: step `publish` uses $DEPLOY_TOKEN, which no secret of this spec provides",
            path.display()
        ))
        .says("hint: declare it: list it in `secrets.personal`");
    assert_eq!(
        out.stderr.matches("warning:").count(),
        1,
        "only DEPLOY_TOKEN: BB_TOKEN is a secret, the rest are quoted, set in `env:`, set by the script or not secret-like:\n{}",
        out.stderr
    );
    let out = validate(&["--json"], &[&path]);
    out.ok();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let w = &doc["files"][0]["warnings"];
    assert_eq!(w.as_array().unwrap().len(), 1, "{w}");
    assert_eq!(w[0]["key"], "setup[0].run");
    assert_eq!(w[0]["line"], 12);

    // Declared, the warning goes away.
    let declared = text.replace("from_env: [BB_TOKEN]", "from_env: [BB_TOKEN, DEPLOY_TOKEN]");
    let path = write(dir.path(), &declared);
    let out = validate(&[], &[&path]);
    out.ok();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}
