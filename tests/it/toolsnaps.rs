//! Tool snapshots (as github-mcp-server's `__toolsnaps__`): what agents see of every tool —
//! name, description, input and output schema — is committed in tests/__toolsnaps__/<tool>.snap,
//! so any change to it is a visible diff in review. `UPDATE_TOOLSNAPS=1` rewrites them.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/__toolsnaps__");

fn snapshot(info: &agentenv::tools::ToolInfo) -> Value {
    json!({
        "name": info.name,
        "description": info.description,
        "inputSchema": info.input_schema,
        "outputSchema": info.output_schema,
    })
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
fn every_tool_schema_is_an_object_schema() {
    for info in agentenv::tools::catalog() {
        for (which, schema) in [
            ("input", &info.input_schema),
            ("output", &info.output_schema),
        ] {
            assert_eq!(
                schema["type"], "object",
                "{} {which} schema: {schema}",
                info.name
            );
        }
        assert!(
            !info.description.is_empty(),
            "{} has no description",
            info.name
        );
    }
}
