//! `agentenv validate`: every bad input is refused with exit code 2 and a message that says
//! where (`file:line:column`), what, and how to fix it.

use std::path::{Path, PathBuf};

use crate::support::{Out, agentenv_cmd};

/// A valid spec. Line numbers matter: the tests below point into it.
const BASE: &str = "\
version: 1
name: test-env
providers:
  bb:
    kind: cloud
    workspace: acme
    auth:
      type: api-token
      email: bot@acme.example
      token: BITBUCKET_API_TOKEN
scope:
  repositories: '^payments-.*'
  branches: '^(main|release/.*)$'
repos:
  - provider: bb
    slug: payments-api
    branch: main
    path: payments-api
setup:
  - name: deps
    run: cargo fetch
    dir: payments-api
    timeout: 10m
secrets:
  from_env: [BITBUCKET_API_TOKEN]
";

fn validate(args: &[&Path], json: bool) -> Out {
    let mut cmd = agentenv_cmd(&[]);
    // The spec's token comes from the environment (`secrets.from_env`); no real key files.
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("BITBUCKET_API_TOKEN", "canary-token-7f3a");
    cmd.arg("validate");
    if json {
        cmd.arg("--json");
    }
    Out::from(cmd.args(args).output().expect("agentenv runs"))
}

/// `BASE` with one piece of text replaced (it must be there).
fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE has no {from:?}");
    BASE.replacen(from, to, 1)
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Validate `text` and expect it refused with every `(line:column: message)` and hint given.
fn refused(text: &str, expected: &[&str]) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "spec.yaml", text);
    let run = validate(&[&path], false);
    assert_eq!(run.code, 2, "exit code; stderr:\n{}", run.stderr);
    assert!(!run.stdout.contains(": ok"), "stdout: {}", run.stdout);
    for e in expected {
        // `LINE:COLUMN: …` is prefixed with the file; anything else is matched as it is.
        let want = if e.starts_with(|c: char| c.is_ascii_digit()) {
            format!("{}:{e}", path.display())
        } else {
            e.to_string()
        };
        assert!(
            run.stderr.contains(&want),
            "expected {want:?} in:\n{}",
            run.stderr
        );
    }
    run
}

#[test]
fn a_good_spec_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "spec.yaml", BASE);
    let run = validate(&[&path], false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{}: ok\n", path.display()));
}

#[test]
fn malformed_yaml() {
    refused(
        &with("    branch: main\n", "    branch: [main\n"),
        &["18:9: not valid YAML", "  hint: check the indentation"],
    );
    refused(
        &with("name: test-env\n", "name: test-env\n  oops: 1\n"),
        &["3:7: not valid YAML"],
    );
    refused(
        "# nothing yet\n",
        &[
            "1:1: the spec is empty",
            "  hint: start it with `version: 1`",
        ],
    );
}

#[test]
fn wrong_types() {
    refused(
        &with(
            "    path: payments-api\n",
            "    path: payments-api\n    depth: \"1\"\n",
        ),
        &[
            "19:12: repos[0].depth: expected a whole number, found the string \"1\"",
            "  hint: remove the quotes: 1",
        ],
    );
    refused(
        &with(
            "    timeout: 10m\n",
            "    timeout: 10m\n    env: { RETRIES: 5 }\n",
        ),
        &[
            "24:21: setup[0].env.RETRIES: expected a string, found the number `5`",
            "  hint: quote it to make it a string: \"5\"",
        ],
    );
    refused(
        &with(
            "repos:\n  - provider: bb",
            "repos: payments-api\nx:\n  - provider: bb",
        ),
        &["14:8: repos: expected a list, found the string \"payments-api\""],
    );
    refused(
        "- version: 1\n",
        &[
            "1:1: expected a mapping (`key: value` pairs), found a list",
            "start it with `version: 1`",
        ],
    );
    refused(
        &with("version: 1\n", "version: 1.5\n"),
        &[
            "1:10: version: expected a whole number, found the number `1.5`",
            "  hint: The spec format version: write `1`",
        ],
    );
    refused(
        &with("    kind: cloud\n", "    kind: datacentre\n"),
        &[
            "5:11: providers.bb.kind: `datacentre` is not one of `cloud`, `datacenter`",
            "  hint: did you mean `datacenter`?",
        ],
    );
    refused(
        &with(
            "    path: payments-api\n",
            "    path: payments-api\n    depth: 3000000000\n",
        ),
        &["19:12: repos[0].depth: `3000000000` is out of range"],
    );
}

#[test]
fn unknown_keys_name_the_closest_known_one() {
    refused(
        &with("    branch: main\n", "    brnach: main\n"),
        &[
            "17:5: repos[0].brnach: unknown key `brnach`",
            "  hint: did you mean `branch`?",
        ],
    );
    refused(
        &with(
            "    timeout: 10m\n",
            "    timeout: 10m\n    continue-on-error: true\n",
        ),
        &[
            "24:5: setup[0].continue-on-error: unknown key",
            "  hint: did you mean `continue_on_error`?",
        ],
    );
    refused(
        &with("version: 1\n", "version: 1\ncolour: blue\n"),
        &[
            "2:1: colour: unknown key `colour`",
            "  hint: valid keys here: `name`, `providers`",
        ],
    );
}

#[test]
fn invalid_regex() {
    refused(
        &with("'^payments-.*'", "'^payments-(.*'"),
        &[
            "12:17: scope.repositories: invalid regex `^payments-(.*`: unclosed group",
            "  hint: it is a Rust regex",
        ],
    );
}

#[test]
fn duplicate_and_nested_repo_paths() {
    let second = "    path: payments-api\n  - url: ../payments-web\n    path: payments-api\n";
    refused(
        &with("    path: payments-api\n", second),
        &[
            "20:11: repos[1].path: repos[0] is already checked out at `payments-api`",
            "  hint: give each repository its own `path`",
        ],
    );
    let nested =
        "    path: payments-api\n  - url: ../payments-web\n    path: ./payments-api/web/\n";
    refused(
        &with("    path: payments-api\n", nested),
        &[
            "20:11: repos[1].path: `./payments-api/web/` and repos[0]'s `payments-api` are one inside the other",
        ],
    );
    let same_name =
        "    path: payments-api\n  - url: ../../elsewhere/payments-api.git\n    path: web\n";
    refused(
        &with("    path: payments-api\n", same_name),
        &["19:10: repos[1].url: a second repository named `payments-api` (the first is repos[0])"],
    );
}

#[test]
fn paths_and_dirs_that_leave_the_workdir() {
    refused(
        &with("    path: payments-api\n", "    path: ../payments-api\n"),
        &[
            "18:11: repos[0].path: `../payments-api` leaves the workdir (`..`)",
            "  hint: write it relative to the workdir",
        ],
    );
    refused(
        &with("    path: payments-api\n", "    path: /srv/payments-api\n"),
        &["18:11: repos[0].path: `/srv/payments-api` is absolute"],
    );
    refused(
        &with(
            "    dir: payments-api\n",
            "    dir: payments-api/../../etc\n",
        ),
        &["22:10: setup[0].dir: `payments-api/../../etc` leaves the workdir (`..`)"],
    );
    refused(
        &with(
            "    dir: payments-api\n",
            "    dir: /tmp\n    creates: /tmp/done\n",
        ),
        &[
            "22:10: setup[0].dir: `/tmp` is absolute",
            "23:14: setup[0].creates: `/tmp/done` is absolute",
        ],
    );
    refused(
        &with("    path: payments-api\n", "    path: .agentenv/x\n"),
        &["18:11: repos[0].path: `.agentenv/x` is inside `.agentenv`"],
    );
}

#[test]
fn missing_provider_reference() {
    refused(
        &with("  - provider: bb\n", "  - provider: bbb\n"),
        &[
            "15:15: repos[0].provider: no provider named `bbb`",
            "  hint: did you mean `bb`?",
        ],
    );
    refused(
        &with("  - provider: bb\n    slug", "  - slug"),
        &["15:11: repos[0].slug: `slug` needs `provider`"],
    );
    refused(
        &with(
            "    slug: payments-api\n",
            "    slug: payments-api\n    url: ../x\n",
        ),
        &["17:10: repos[0].url: give `slug` or `url`, not both"],
    );
}

#[test]
fn app_passwords_are_refused_with_what_to_use_instead() {
    let run = refused(
        &with("      type: api-token\n", "      type: app-password\n"),
        &[
            "8:13: providers.bb.auth.type: app passwords are no longer accepted: Atlassian removed Bitbucket app passwords in 2026",
            "`type: api-token`",
            "`type: access-token`",
        ],
    );
    assert!(
        run.stderr.contains("API token with scopes"),
        "{}",
        run.stderr
    );
    refused(
        &with(
            "      token: BITBUCKET_API_TOKEN\n",
            "      app_password: BB_PASSWORD\n",
        ),
        &[
            "10:7: providers.bb.auth.app_password: unknown key",
            "removed Bitbucket app passwords in 2026",
        ],
    );
}

#[test]
fn bad_durations() {
    refused(
        &with("    timeout: 10m\n", "    timeout: 10x\n"),
        &["23:14: setup[0].timeout: unknown duration unit `x` in `10x`"],
    );
    refused(
        &with("    timeout: 10m\n", "    timeout: 10 minutes\n"),
        &["23:14: setup[0].timeout: write `10m` instead of `10 minutes`"],
    );
    refused(
        &with("    timeout: 10m\n", "    timeout: 90\n"),
        &[
            "23:14: setup[0].timeout: expected a string, found the number `90`",
            "  hint: write a number and a unit, like `90s` or `10m`",
        ],
    );
}

#[test]
fn out_of_scope_repository_and_branch() {
    refused(
        &with("    slug: payments-api\n", "    slug: billing-api\n"),
        &[
            "16:11: repos[0].slug: repository `billing-api` is outside the scope: it does not match `scope.repositories` (`^payments-.*`)",
            "  hint: remove the repository, or widen `scope.repositories`",
        ],
    );
    refused(
        &with("    branch: main\n", "    branch: feature/x\n"),
        &[
            "17:13: repos[0].branch: branch `feature/x` is outside the scope: it does not match `scope.branches`",
            "`agentenv branches ENV REPO`",
        ],
    );
    // The full name `owner/slug` counts too, so a scope written for it admits the repo.
    let text = with("'^payments-.*'", "'^acme/payments-api$'");
    let dir = tempfile::tempdir().unwrap();
    let run = validate(&[&write(&dir, "spec.yaml", &text)], false);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn provider_and_auth_fields_by_kind_and_type() {
    refused(
        &with("    workspace: acme\n", ""),
        &["5:5: providers.bb: a `cloud` provider needs `workspace`"],
    );
    refused(
        &with(
            "    kind: cloud\n    workspace: acme\n",
            "    kind: datacenter\n    base_url: https://user:pw@bb.example\n",
        ),
        &[
            "5:5: providers.bb: a `datacenter` provider needs `project`",
            "6:15: providers.bb.base_url: the URL contains credentials",
            "8:13: providers.bb.auth.type: `api-token` is a Bitbucket Cloud auth type",
        ],
    );
    refused(
        &with("      email: bot@acme.example\n", ""),
        &["8:7: providers.bb.auth: `type: api-token` needs `email`"],
    );
    refused(
        &with("      type: api-token\n", "      type: http-access-token\n"),
        &["8:13: providers.bb.auth.type: `http-access-token` is a Data Center auth type"],
    );
    refused(
        &with("      type: api-token\n", "      type: access-token\n"),
        &["9:14: providers.bb.auth.email: `email` is not used by `type: access-token`"],
    );
    refused(
        &with(
            "      email: bot@acme.example\n",
            "      email: BOT_EMAIL\n",
        ),
        &["9:14: providers.bb.auth.email: `BOT_EMAIL` is not an email address"],
    );
}

#[test]
fn secret_fields_hold_names_not_values() {
    let run = refused(
        &with("BITBUCKET_API_TOKEN", "ATATT3xFfGF0-secret"),
        &[
            "10:14: providers.bb.auth.token: this is not a secret name",
            "  hint: write the NAME of a secret",
        ],
    );
    // What is not a name may be a pasted token: it is never echoed back, in any case.
    let all = format!("{}{}", run.stdout, run.stderr).to_lowercase();
    assert!(!all.contains("att3xffgf0"), "{all}");
    refused(
        &with(
            "  from_env: [BITBUCKET_API_TOKEN]\n",
            "  from_env: [bitbucket-token]\n  recipients: [age1nope]\n",
        ),
        &[
            "25:14: secrets.from_env[0]: this is not a secret name",
            "26:16: secrets.recipients[0]: invalid age recipient",
        ],
    );
}

#[test]
fn names_are_unique_and_keys_not_repeated() {
    refused(
        &with(
            "    timeout: 10m\n",
            "    timeout: 10m\n  - name: deps\n    run: echo\n",
        ),
        &["24:11: setup[1].name: a second step named `deps` (the first is setup[0])"],
    );
    refused(
        &with(
            "    branch: main\n",
            "    branch: main\n    branch: release/1\n",
        ),
        &["18:5: repos[0].branch: duplicate key (first at line 17)"],
    );
    refused(
        &with("version: 1\n", "version: 2\n"),
        &["1:10: version: spec version 2 is not supported"],
    );
    refused(
        &with(
            "    timeout: 10m\n",
            "    timeout: 10m\nserve:\n  tools: [default, \"\"]\n",
        ),
        &["25:20: serve.tools[1]: must not be empty"],
    );
}

#[test]
fn a_pasted_git_clone_prefix_is_stripped() {
    let text = with(
        "    slug: payments-api\n",
        "    slug: git clone https://bitbucket.org/acme/payments-api.git\n",
    );
    let env = agentenv::spec::LoadedEnv::from_str(Path::new("spec.yaml"), &text).unwrap();
    let repo = &env.spec.repos[0];
    assert_eq!(
        repo.slug.as_deref(),
        Some("https://bitbucket.org/acme/payments-api.git")
    );
    assert_eq!(repo.name(), "payments-api");
    assert!(env.repo("payments-api").is_some());
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = BASE
        .replace("    branch: main\n", "    brnach: main\n")
        .replace("    path: payments-api\n", "    path: ../payments-api\n")
        .replace("    timeout: 10m\n", "    timeout: 10x\n")
        .replace("'^payments-.*'", "'^(payments'");
    let run = refused(
        &text,
        &[
            "12:17: scope.repositories: invalid regex",
            "17:5: repos[0].brnach: unknown key",
            "18:11: repos[0].path: `../payments-api` leaves the workdir",
            "23:14: setup[0].timeout: unknown duration unit",
        ],
    );
    // In order of position, one message each.
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("spec.yaml:"))
        .collect();
    assert_eq!(lines.len(), 4, "{}", run.stderr);
    assert!(
        run.stderr
            .ends_with("error: 1 of 1 spec(s) did not validate\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn several_files_and_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "good.yaml", BASE);
    let bad = write(
        &dir,
        "bad.yaml",
        &with("    branch: main\n", "    brnach: main\n"),
    );
    let missing = dir.path().join("missing.yaml");

    let run = validate(&[&good, &bad, &missing], false);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains(&format!("{}: ok", good.display())));
    assert!(
        run.stderr
            .contains(&format!("{}:17:5: repos[0].brnach", bad.display()))
    );
    assert!(
        run.stderr
            .contains(&format!("{}: cannot read the spec", missing.display()))
    );
    assert!(run.stderr.contains("2 of 3 spec(s) did not validate"));

    let run = validate(&[&good, &bad], true);
    assert_eq!(run.code, 2);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["files"][0]["ok"], true);
    assert_eq!(doc["files"][0]["errors"], serde_json::json!([]));
    let e = &doc["files"][1]["errors"][0];
    assert_eq!(doc["files"][1]["path"], bad.display().to_string());
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_u64()),
        (Some(17), Some(5))
    );
    assert_eq!(e["key"], "repos[0].brnach");
    assert_eq!(e["message"], "unknown key `brnach`");
    assert_eq!(e["hint"], "did you mean `branch`?");
}

#[test]
fn loading_refuses_what_validate_refuses() {
    let text = with("    branch: main\n", "    branch: feature/x\n");
    let err = agentenv::spec::LoadedEnv::from_str(Path::new("e.yaml"), &text).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.message
            .starts_with("e.yaml:17:13: repos[0].branch: branch `feature/x` is outside the scope"),
        "{}",
        err.message
    );
}

#[test]
fn missing_keys_and_nameless_local_paths() {
    refused(
        &with("name: test-env\n", ""),
        &[
            "1:1: missing key `name`",
            "  hint: add `name:` — A short name",
        ],
    );
    let text = "version: 1\nname: self\nrepos:\n  - url: ..\n";
    refused(
        text,
        &[
            "4:10: repos[0].url: cannot tell the repository's name from `..`",
            "  hint: add `path: NAME`",
        ],
    );
    let text = "version: 1\nname: self\nrepos:\n  - url: ..\n    path: agentenv\n";
    let env = agentenv::spec::LoadedEnv::from_str(Path::new("spec.yaml"), text).unwrap();
    assert_eq!(env.spec.repos[0].name(), "agentenv");
    assert!(env.repo("agentenv").is_some());
}

#[test]
fn an_unresolvable_secret_fails_validation_with_resolve_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "spec.yaml", BASE);
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Out::from(
            agentenv_cmd(&["validate"])
                .args(args)
                .arg(&path)
                .env("HOME", home.path())
                .env("XDG_CONFIG_HOME", home.path())
                .env_remove("BITBUCKET_API_TOKEN")
                .output()
                .unwrap(),
        )
    };
    // Declared in `secrets.from_env`: that is all validate asks without --resolve-secrets.
    run(&[]).ok().says(": ok");
    let out = run(&["--resolve-secrets"]);
    out.failed(2).says(&format!(
        "{}:10:14: providers.bb.auth.token: secret BITBUCKET_API_TOKEN is listed in `secrets.from_env`, but the environment variable BITBUCKET_API_TOKEN is not set\n  hint: set BITBUCKET_API_TOKEN in the environment",
        path.display()
    ));
    // The file prefixes the message once, not twice.
    assert!(
        !out.stderr.contains(&format!("secrets: {}", path.display())),
        "{}",
        out.stderr
    );
}
