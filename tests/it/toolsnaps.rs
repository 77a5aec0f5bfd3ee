//! Tool snapshots (as github-mcp-server's `__toolsnaps__`): every tool exactly as `tools/list`
//! sends it — name, description, input schema, annotations — plus, under
//! `structuredContentSchema`, the schema its `structuredContent` conforms to (not sent; see
//! `serve::handler`), committed in tests/__toolsnaps__/<tool>.snap so that any change to what
//! agents or programs see is a visible diff in review. `UPDATE_TOOLSNAPS=1` rewrites them.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/__toolsnaps__");

/// The most `tools/list` may weigh with every tool served: every client loads it into its
/// model's context on every turn.
const MAX_TOOLS_LIST_BYTES: usize = 15_000;

fn snapshot(info: &agentenv::tools::ToolInfo) -> Value {
    let mut v = serde_json::to_value(agentenv::serve::mcp_tool(info)).unwrap();
    v["structuredContentSchema"] = info.output_schema.clone();
    v
}

#[test]
fn every_tool_matches_its_committed_snapshot() {
    let update = std::env::var("UPDATE_TOOLSNAPS").is_ok_and(|v| v == "1");
    let dir = Path::new(DIR);
    std::fs::create_dir_all(dir).unwrap();
    let catalog = agentenv::tools::catalog();
    let mut problems = Vec::new();

    let expected: BTreeSet<String> = catalog.iter().map(|t| format!("{}.snap", t.name)).collect();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".snap") && !expected.contains(&name) {
            if update {
                std::fs::remove_file(dir.join(&name)).unwrap();
            } else {
                problems.push(format!("{name}: snapshot of a tool that no longer exists"));
            }
        }
    }

    for info in &catalog {
        let path = dir.join(format!("{}.snap", info.name));
        let current = snapshot(info);
        let text = serde_json::to_string_pretty(&current).unwrap() + "\n";
        if update {
            std::fs::write(&path, text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Err(_) => problems.push(format!("{}: no snapshot at {}", info.name, path.display())),
            Ok(saved) => match serde_json::from_str::<Value>(&saved) {
                Ok(saved) if saved == current => {}
                Ok(saved) => problems.push(format!(
                    "{}: differs from its snapshot\n--- saved\n{}\n+++ current\n{}",
                    info.name,
                    serde_json::to_string_pretty(&saved).unwrap(),
                    text
                )),
                Err(e) => problems.push(format!("{}: snapshot is not JSON: {e}", path.display())),
            },
        }
    }
    assert!(
        problems.is_empty(),
        "tool snapshots are out of date:\n{}\n\nIf the change is intended, regenerate them with \
         `UPDATE_TOOLSNAPS=1 cargo test --test it toolsnaps` and commit tests/__toolsnaps__/.",
        problems.join("\n")
    );
}

#[test]
fn tools_list_with_every_tool_fits_its_budget() {
    let catalog = agentenv::tools::catalog();
    let list = agentenv::serve::tools_list_json(&catalog);
    assert_eq!(list["tools"].as_array().unwrap().len(), catalog.len());
    let bytes = serde_json::to_string(&list).unwrap().len();
    let mut sizes: Vec<(usize, &str)> = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t.to_string().len(), t["name"].as_str().unwrap()))
        .collect();
    sizes.sort();
    assert!(
        bytes <= MAX_TOOLS_LIST_BYTES,
        "tools/list is {bytes} bytes, over its {MAX_TOOLS_LIST_BYTES}-byte budget; per tool: {sizes:?}"
    );
}

#[test]
fn every_tool_is_described_annotated_and_uses_standard_schema_keywords_only() {
    let list = agentenv::serve::tools_list_json(&agentenv::tools::catalog());
    for tool in list["tools"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        let description = tool["description"].as_str().unwrap_or("");
        assert!(
            !description.is_empty() && description.len() <= 300,
            "{name}: a description of a sentence or two, got {} bytes",
            description.len()
        );
        assert_eq!(tool["inputSchema"]["type"], "object", "{name}");
        assert!(
            tool.get("outputSchema").is_none(),
            "{name}: see serve::handler"
        );
        let a = &tool["annotations"];
        assert_eq!(a["readOnlyHint"], true, "{name}");
        assert_eq!(a["destructiveHint"], false, "{name}");
        assert_eq!(a["idempotentHint"], true, "{name}");
        assert!(a["openWorldHint"].is_boolean(), "{name}");
        // Ajv (the TypeScript SDK's validator) warns on formats it does not know.
        let text = tool.to_string();
        for bad in [
            "\"uint",
            "\"int64",
            "\"int32",
            "\"double",
            "\"float",
            "$schema",
            "\"title\"",
        ] {
            assert!(!text.contains(bad), "{name} has {bad}: {text}");
        }
    }
    // What answers from the network says so: the API tools, and the checkout tools too,
    // which fetch a branch or history the checkout lacks (search_code with `ref`).
    for tool in list["tools"].as_array().unwrap() {
        assert_eq!(
            tool["annotations"]["openWorldHint"], true,
            "{}",
            tool["name"]
        );
    }
}

#[test]
fn every_structured_content_schema_is_an_object_schema() {
    for info in agentenv::tools::catalog() {
        assert_eq!(
            info.output_schema["type"], "object",
            "{} output schema: {}",
            info.name, info.output_schema
        );
    }
}
