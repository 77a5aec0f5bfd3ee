//! `agentenv serve` over stdio, driven by rmcp's client spawning the real binary:
//! handshake, server identity, tool list with schemas, calls, typed errors, tool selection.

use std::process::Stdio;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::support::BIN;
use crate::support::git::git;
use crate::support::workspace::{Fixture, small_app};

async fn connect(fx: &Fixture, extra: &[&str]) -> RunningService<RoleClient, ()> {
    let cmd = tokio::process::Command::new(BIN).configure(|cmd| {
        cmd.arg("serve")
            .arg(&fx.spec)
            .arg("--workdir")
            .arg(&fx.workdir)
            .args(extra)
            .env_remove("AGENTENV_WORKDIR");
    });
    let (transport, _stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agentenv serve");
    ().serve(transport).await.expect("MCP handshake")
}

async fn call(client: &RunningService<RoleClient, ()>, name: &str, args: Value) -> CallToolResult {
    let params = CallToolRequestParams::new(name.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    client.call_tool(params).await.expect("tools/call answered")
}

fn text_of(result: &CallToolResult) -> String {
    assert_eq!(
        result.content.len(),
        1,
        "one text block: {:?}",
        result.content
    );
    result.content[0]
        .as_text()
        .expect("the content block is text")
        .text
        .clone()
}

async fn tool_names(client: &RunningService<RoleClient, ()>) -> Vec<String> {
    let tools = client.list_all_tools().await.expect("tools/list");
    tools.iter().map(|t| t.name.to_string()).collect()
}

/// The default set for the fixture's spec, which names no Bitbucket provider.
fn default_tool_names() -> Vec<String> {
    agentenv::serve::select_tools(&["default".into()], &[], &[], false)
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect()
}

#[test]
fn the_default_set_leaves_out_api_tools_only_without_a_provider() {
    let with = |has: bool| -> Vec<&'static str> {
        agentenv::serve::select_tools(&["default".into()], &[], &[], has)
            .unwrap()
            .iter()
            .map(|t| t.name)
            .collect()
    };
    assert!(with(true).contains(&"list_pull_requests"));
    assert!(!with(false).contains(&"list_pull_requests"));
    assert!(with(false).contains(&"read_file") && with(false).contains(&"search_code"));
    // Named explicitly, an API tool is served all the same.
    let named = agentenv::serve::select_tools(&["list_pull_requests".into()], &[], &[], false);
    assert_eq!(named.unwrap()[0].name, "list_pull_requests");
}

#[tokio::test]
async fn handshake_reports_agentenv_and_lists_tools_with_schemas() {
    let fx = small_app();
    let client = connect(&fx, &[]).await;
    let info = client.peer_info().expect("server info after initialize");
    let server = info.server_info.as_ref().expect("server identity");
    assert_eq!(server.name, "agentenv");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some());

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, default_tool_names());
    for tool in &tools {
        let catalog = agentenv::tools::catalog();
        let info = catalog.iter().find(|c| c.name == tool.name).unwrap();
        assert_eq!(
            Value::Object((*tool.input_schema).clone()),
            info.input_schema
        );
        // Not sent: see serve::handler; structuredContent still conforms to it.
        assert!(tool.output_schema.is_none(), "{}", tool.name);
        let hints = tool.annotations.as_ref().expect("annotations");
        assert_eq!(hints.read_only_hint, Some(true));
        assert_eq!(hints.open_world_hint, Some(info.open_world));
        assert!(tool.description.as_deref().is_some_and(|d| !d.is_empty()));
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn search_code_answers_with_text_and_structured_content() {
    let fx = small_app();
    let client = connect(&fx, &[]).await;
    let result = call(
        &client,
        "search_code",
        json!({"query": "TODO", "repo": "app"}),
    )
    .await;
    assert_eq!(result.is_error, Some(false));
    let structured = result
        .structured_content
        .clone()
        .expect("structuredContent");
    assert_eq!(structured["total_matches"], 2);
    assert_eq!(structured["files"][0]["path"], "README.md");
    // The text is written for a model: each path once, then `line:text`.
    let text = text_of(&result);
    assert!(text.contains("README.md\n2:TODO: docs\n"), "{text}");
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "not JSON: {text}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tool_errors_are_error_results_carrying_the_typed_error() {
    let fx = small_app();
    let client = connect(&fx, &[]).await;
    let cases = [
        (json!({"query": "(", "regex": true}), "invalid_argument"),
        (json!({"query": "x", "repo": "missing"}), "not_found"),
        (json!({"nonsense": 1}), "invalid_argument"),
    ];
    for (args, kind) in cases {
        let result = call(&client, "search_code", args.clone()).await;
        assert_eq!(result.is_error, Some(true), "{args}");
        // No structured content: a client validating it against a schema cannot reject it.
        assert!(result.structured_content.is_none(), "{args}");
        let text = text_of(&result);
        assert!(
            text.starts_with(&format!("error ({kind}): ")),
            "{args}: {text}"
        );
    }
    // A tool that is not served is an error result too, naming what is available.
    let result = call(&client, "no_such_tool", json!({})).await;
    assert_eq!(result.is_error, Some(true));
    let text = text_of(&result);
    assert!(text.starts_with("error (unknown_tool): "), "{text}");
    assert!(text.contains("search_code"), "{text}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn every_served_tool_answers_a_call() {
    // The interop smoke test does the same with the Python SDK; this one needs no Python.
    let fx = small_app();
    let head = git(&fx.workdir.join("app"), &["rev-parse", "HEAD"]);
    let client = connect(&fx, &[]).await;
    for name in tool_names(&client).await {
        let args = match name.as_str() {
            "search_code" => json!({"query": "TODO"}),
            "read_file" => json!({"repo": "app", "path": "README.md"}),
            "get_commit" => json!({"repo": "app", "commit": head}),
            _ => json!({"repo": "app"}),
        };
        let result = call(&client, &name, args).await;
        assert_eq!(result.is_error, Some(false), "{name}: {:?}", result.content);
        assert!(result.structured_content.is_some(), "{name}");
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tools_flag_and_spec_choose_what_is_served() {
    let fx = small_app();
    let client = connect(&fx, &["--tools", "search_code"]).await;
    assert_eq!(tool_names(&client).await, ["search_code"]);
    client.cancel().await.unwrap();

    fx.spec(&["app"], "serve:\n  tools: [search_code]\n");
    let client = connect(&fx, &[]).await;
    assert_eq!(tool_names(&client).await, ["search_code"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn excluded_tools_are_neither_listed_nor_callable() {
    let fx = small_app();
    let rest: Vec<String> = default_tool_names()
        .into_iter()
        .filter(|n| n != "search_code")
        .collect();
    // With nothing left to serve, start-up refuses instead (checked in serve::cli).
    assert!(!rest.is_empty(), "the default set is more than search_code");
    let client = connect(&fx, &["--exclude-tools", "search_code"]).await;
    assert_eq!(tool_names(&client).await, rest);
    let result = call(&client, "search_code", json!({"query": "x"})).await;
    assert!(text_of(&result).starts_with("error (unknown_tool)"));
    client.cancel().await.unwrap();
}

/// A line that is not JSON gets JSON-RPC's parse error (-32700, id null), as the spec asks,
/// and the session goes on: the next request is answered.
#[test]
fn malformed_json_is_answered_with_a_parse_error_and_the_session_goes_on() {
    use std::io::{BufRead, BufReader, Write};
    let fx = small_app();
    let mut child = std::process::Command::new(BIN)
        .arg("serve")
        .arg(&fx.spec)
        .arg("--workdir")
        .arg(&fx.workdir)
        .env_remove("AGENTENV_WORKDIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agentenv serve");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || -> Value {
        let line = lines.next().expect("a line").expect("readable");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    stdin
        .write_all(b"{\"jsonrpc\": \"2.0\", \"id\": 1, oops\n")
        .unwrap();
    stdin.flush().unwrap();
    let err = next();
    assert_eq!(err["error"]["code"], -32700, "{err}");
    assert_eq!(err["id"], Value::Null, "{err}");
    // A line past the 16 MiB bound is refused by its length; a burst of broken lines, more
    // than the queue of pending errors holds, is answered line for line (stdin waits for
    // stdout instead of queueing without bound).
    let mut long = vec![b'x'; (16 << 20) + 1];
    long.push(b'\n');
    stdin.write_all(&long).unwrap();
    for _ in 0..200 {
        stdin.write_all(b"not json\n").unwrap();
    }
    stdin.flush().unwrap();
    let err = next();
    assert_eq!(err["error"]["code"], -32700, "{err}");
    assert!(err.to_string().contains("longer than 16 MiB"), "{err}");
    for _ in 0..200 {
        let err = next();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }
    let init = json!({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}});
    stdin.write_all(format!("{init}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let ok = next();
    assert_eq!(ok["id"], 2, "{ok}");
    assert_eq!(ok["result"]["serverInfo"]["name"], "agentenv", "{ok}");
    drop(stdin);
    let _ = child.wait();
}
