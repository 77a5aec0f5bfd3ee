//! The official MCP SDKs as clients of `agentenv serve`: the Python SDK
//! (tests/it/serve/mcp_smoke.py) and the TypeScript SDK (tests/it/serve/ts/ts_smoke.mjs). Both
//! list the tools and make, for every tool, a successful call and a failing call against a
//! workspace on the loopback Bitbucket (Cloud and Data Center, cloned and not), and assert the
//! SDK accepts each result. Some arguments are strings (`"2"`, `"true"`), as clients such as
//! the MCP Inspector send them.
//!
//! A missing SDK skips with a notice — except under CI, where it is a failure (`.ci/run`
//! installs both: `pip install mcp`, `npm ci` in tests/it/serve/ts).

use std::path::{Path, PathBuf};
use std::process::Command;

use bitbucket_emulator::{Pipeline, PipelineStep, PullRequest};
use serde_json::json;

use crate::support::api::{CLOUD_TOKEN, DC_TOKEN, Fixture};
use crate::support::{BIN, skip_or_fail_in_ci};

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/serve/mcp_smoke.py");
const TS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/serve/ts");

/// The emulator workspace both SDKs talk to, a spec `serve` can load on its own (secrets from
/// the environment, scope in the spec), and the calls to make.
struct World {
    fixture: Fixture,
    spec: PathBuf,
    cases: PathBuf,
}

fn world() -> World {
    let f = Fixture::standard();
    f.emu.add_cloud_pull_request(
        "acme",
        "payments-api",
        PullRequest {
            id: 1,
            title: "Add the feature".into(),
            reviewers: vec!["carol".into()],
            ..PullRequest::default()
        },
    );
    f.emu.add_pipeline(
        "acme",
        "payments-api",
        Pipeline {
            result: Some("FAILED".into()),
            steps: vec![PipelineStep {
                name: "Test".into(),
                result: Some("FAILED".into()),
                log: Some(b"running\nerror[E0308]: mismatched types\nfailed\n".to_vec()),
                ..PipelineStep::default()
            }],
            ..Pipeline::default()
        },
    );
    let dir = f.workdir.parent().unwrap().to_path_buf();
    let spec = dir.join("serve.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"version: 1
name: sdk-interop
providers:
  cloud:
    kind: cloud
    workspace: acme
    api_url: {cloud}
    auth: {{ type: api-token, email: bot@example.com, token: CLOUD_TOKEN }}
  dc:
    kind: datacenter
    base_url: {dc}
    project: PAY
    auth: {{ type: http-access-token, token: DC_TOKEN }}
secrets:
  from_env: [CLOUD_TOKEN, DC_TOKEN]
scope:
  repositories: '^payments-.*'
  branches: '^(main|feature|release/.*)$'
repos:
  - provider: cloud
    slug: payments-api
  - provider: dc
    slug: payments-core
    path: core
  - provider: cloud
    slug: payments-ledger
"#,
            cloud = f.emu.cloud_api_url(),
            dc = f.emu.dc_base_url(),
        ),
    )
    .unwrap();
    let head = f.main_head.clone();
    let cases = json!({
        "list_branches": {"ok": {"repo": "payments-core", "limit": "1"}, "error": {"repo": "secret-repo"}},
        "browse": {"ok": {"repo": "payments-ledger"}, "error": {"repo": "payments-api", "path": "no/such/dir"}},
        "read_file": {
            "ok": {"repo": "payments-api", "path": "src.txt", "start_line": "2"},
            "error": {"repo": "payments-api", "path": "../../etc/passwd"}
        },
        "list_commits": {"ok": {"repo": "payments-api", "limit": "2"}, "error": {"repo": "payments-api", "since": "yesterday"}},
        "get_commit": {
            "ok": {"repo": "payments-core", "commit": &head[..10], "patch": "true"},
            "error": {"repo": "payments-api", "commit": "0000000"}
        },
        "search_code": {"ok": {"query": "three", "context": "1"}, "error": {"query": "(", "regex": "true"}},
        "list_repositories": {"ok": {"provider": "dc", "limit": "3"}, "error": {}},
        "list_pull_requests": {"ok": {"repo": "payments-api"}, "error": {"repo": "payments-core", "state": "SUPERSEDED"}},
        "get_pull_request": {"ok": {"repo": "payments-api", "id": "1", "diff": "true"}, "error": {"repo": "payments-api", "id": 999}},
        "list_pipelines": {"ok": {"repo": "payments-api", "state": "FAILED"}, "error": {"repo": "payments-api", "limit": 0}},
        "get_pipeline_log": {"ok": {"repo": "payments-api", "pipeline": "1"}, "error": {"repo": "payments-api", "pipeline": "../x"}},
    });
    let cases_path = dir.join("cases.json");
    std::fs::write(&cases_path, cases.to_string()).unwrap();
    World {
        fixture: f,
        spec,
        cases: cases_path,
    }
}

/// `program script BIN SPEC WORKDIR CASES`, with the secrets the spec takes from the
/// environment and none of the developer's `AGENTENV_*` settings.
fn run(program: &str, script: &Path, w: &World) -> (bool, String) {
    let mut cmd = Command::new(program);
    cmd.arg(script).args([
        BIN,
        w.spec.to_str().unwrap(),
        w.fixture.workdir.to_str().unwrap(),
        w.cases.to_str().unwrap(),
    ]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AGENTENV_") {
            cmd.env_remove(name);
        }
    }
    let personal = w.spec.with_file_name("no-personal-secrets.yaml");
    let out = cmd
        .env("CLOUD_TOKEN", CLOUD_TOKEN)
        .env("DC_TOKEN", DC_TOKEN)
        .env("AGENTENV_PERSONAL_FILE", personal)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let all = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), all)
}

fn assert_every_tool_passed(ok: bool, output: &str) {
    println!("{output}");
    assert!(ok, "smoke test failed\n{output}");
    assert!(output.contains("connected to agentenv"), "{output}");
    for tool in agentenv::tools::catalog() {
        assert!(
            output.contains(&format!("ok {}\n", tool.name)),
            "{}: {output}",
            tool.name
        );
        assert!(
            output.contains(&format!("error {}: ", tool.name)),
            "{}: {output}",
            tool.name
        );
    }
    for canary in [CLOUD_TOKEN, DC_TOKEN] {
        assert!(!output.contains(canary), "a token leaked into the output");
    }
}

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn python_sdk_lists_and_calls_every_tool_and_accepts_every_result() {
    if !works("python3", &["-c", "import mcp"]) {
        return skip_or_fail_in_ci(
            "the MCP Python SDK is missing (`python3 -c 'import mcp'` fails): `pip install mcp`",
        );
    }
    let w = world();
    let (ok, output) = run("python3", Path::new(PYTHON), &w);
    assert_every_tool_passed(ok, &output);
}

#[test]
fn typescript_sdk_lists_and_calls_every_tool_and_accepts_every_result() {
    if !works("node", &["--version"]) {
        return skip_or_fail_in_ci("node is missing: install Node.js 18 or later");
    }
    let sdk = Path::new(TS_DIR).join("node_modules/@modelcontextprotocol/sdk/package.json");
    if !sdk.exists() {
        return skip_or_fail_in_ci(
            "the MCP TypeScript SDK is missing: run `npm ci` in tests/it/serve/ts (.ci/run does)",
        );
    }
    let w = world();
    let (ok, output) = run("node", &Path::new(TS_DIR).join("ts_smoke.mjs"), &w);
    assert_every_tool_passed(ok, &output);
}
