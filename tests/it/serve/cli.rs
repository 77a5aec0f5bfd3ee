//! `agentenv tool` (one call, JSON on stdout, exit code by error kind) and the start-up
//! failures of `agentenv serve` (unknown tool names, bad spec, nothing left to serve).

use std::process::{Output, Stdio};

use serde_json::Value;

use crate::support::stderr;
use crate::support::workspace::{Fixture, small_app};

fn tool(fx: &Fixture, name: &str, args: &[&str]) -> Output {
    let mut cmd = fx.command();
    cmd.arg("tool")
        .arg(&fx.spec)
        .arg(name)
        .arg("--workdir")
        .arg(&fx.workdir);
    for a in args {
        cmd.arg("--arg").arg(a);
    }
    cmd.output().unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn tool_prints_the_json_result_and_exits_0() {
    let fx = small_app();
    let out = tool(&fx, "search_code", &["query=TODO", "repo=app", "context=1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["total_matches"], 2);
    let lines = &v["files"][1]["lines"];
    assert_eq!(lines[0]["text"], "fn main() {", "{v}");
    assert_eq!(lines[0]["context"], true, "{v}");
}

#[test]
fn tool_args_follow_the_input_schema() {
    let fx = Fixture::new();
    fx.repo(
        "nums",
        &[
            ("a.txt", "42\nforty-two\n"),
            ("b.md", "42\n"),
            ("c.rs", "42\n"),
        ],
    );
    fx.clone("nums");
    fx.spec(&["nums"], "");
    // `query` is a string: 42 stays the text "42"; `limit` is a number; `include` repeats.
    let out = tool(
        &fx,
        "search_code",
        &[
            "query=42",
            "limit=5",
            "include=*.txt",
            "include=*.md",
            "regex=false",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = stdout_json(&out);
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["a.txt", "b.md"]);
    // A JSON array value works too.
    let out = tool(&fx, "search_code", &["query=42", r#"include=["*.rs"]"#]);
    assert_eq!(stdout_json(&out)["files"][0]["path"], "c.rs");
}

#[test]
fn tool_errors_print_the_typed_error_and_exit_with_its_code() {
    let fx = small_app();
    fx.spec(&["app", "other"], "");
    let cases: &[(&[&str], &[&str], i32)] = &[
        (&["query=(", "regex=true"], &["invalid_argument"], 2),
        (&["query=x", "limit=0"], &["invalid_argument"], 2),
        (&["query=x", "repo=other"], &["not_cloned"], 4),
        (&["query=x", "repo=nope"], &["not_found"], 4),
    ];
    for (args, kinds, code) in cases {
        let out = tool(&fx, "search_code", args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", stderr(&out));
        let v = stdout_json(&out);
        assert!(kinds.iter().any(|k| v["kind"] == *k), "{args:?}: {v}");
        assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    }
    // A repository the scope excludes (not named by the spec: a spec naming one is refused
    // when it is loaded). Scope is checked first, or the name is unknown: exit 4 either way.
    fx.spec(&["app"], "scope:\n  repositories: '^app$'\n");
    let out = tool(&fx, "search_code", &["query=x", "repo=ledger"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let kind = stdout_json(&out)["kind"].clone();
    assert!(kind == "out_of_scope" || kind == "not_found", "{kind}");
}

#[test]
fn every_tool_error_kind_has_its_documented_exit_code() {
    use agentenv::tools::Kind as K;
    let expected = [
        (K::Input, 2),
        (K::UnknownTool, 2),
        (K::OutOfScope, 4),
        (K::NotFound, 4),
        (K::NotCloned, 4),
        (K::RateLimited, 5),
        (K::Unavailable, 5),
        (K::Auth, 3),
        (K::Forbidden, 3),
        (K::Failure, 1),
    ];
    for (kind, code) in expected {
        assert_eq!(kind.exit_code(), code, "{kind:?}");
    }
}

#[test]
fn tool_usage_errors_exit_2() {
    let fx = small_app();
    let out = tool(&fx, "search_code", &["query"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("KEY=VALUE"), "{}", stderr(&out));

    let out = tool(&fx, "search_code", &["query=a", "query=b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("more than once"), "{}", stderr(&out));

    // An unknown tool is a tool error like any other: its JSON on stdout, as the README says.
    let out = tool(&fx, "no_such_tool", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("search_code"), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["kind"], "unknown_tool", "{json}");
    assert!(
        json["hint"].as_str().unwrap().contains("search_code"),
        "{json}"
    );
    // A tool this spec does not serve (no provider: no API tools) is unknown to it too.
    let out = tool(&fx, "list_pull_requests", &["repo=app"]);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["kind"], "unknown_tool", "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("not served"),
        "{json}"
    );

    let mut missing = Fixture::new();
    missing.spec = missing.tmp.path().join("absent.yaml");
    let out = tool(&missing, "search_code", &["query=x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("absent.yaml"), "{}", stderr(&out));
}

fn serve_start(fx: &Fixture, extra: &[&str]) -> Output {
    fx.command()
        .arg("serve")
        .arg(&fx.spec)
        .arg("--workdir")
        .arg(&fx.workdir)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn unknown_tool_names_fail_start_up_with_exit_2_listing_known_tools() {
    let fx = small_app();
    for extra in [
        &["--tools", "search_code,serch_code"][..],
        &["--exclude-tools", "nope"][..],
    ] {
        let out = serve_start(&fx, extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = stderr(&out);
        assert!(
            err.contains("unknown tool")
                && err.contains("known tools: ")
                && err.contains("search_code,")
                || err.contains("search_code (or `default`)"),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "stdout must stay clean");
    }
    fx.spec(&["app"], "serve:\n  tools: [default, grep]\n");
    let out = serve_start(&fx, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`grep` in the spec's serve.tools"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn excluding_every_tool_fails_start_up() {
    let fx = small_app();
    let out = serve_start(
        &fx,
        &["--tools", "search_code", "--exclude-tools", "search_code"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no tool is left"), "{}", stderr(&out));
}

#[test]
fn serve_over_stdio_ends_cleanly_when_the_client_closes_stdin() {
    let fx = small_app();
    let out = serve_start(&fx, &[]);
    // stdin is /dev/null: no client; the server must not hang or write junk to stdout.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr(&out).contains("on stdio"), "{}", stderr(&out));
}
