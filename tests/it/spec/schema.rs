//! The committed JSON Schema is the one the model generates, and every spec in
//! `environments/` satisfies it according to an independent validator (the `jsonschema`
//! crate, not our own checker).

use std::path::{Path, PathBuf};

use crate::support::agentenv;

const MODELINE: &str = "# yaml-language-server: $schema=../schema/environment.schema.json";
const REGENERATE: &str = "cargo run -- schema > schema/environment.schema.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn committed_schema() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("schema/environment.schema.json"))
        .unwrap_or_else(|e| panic!("schema/environment.schema.json: {e}; run `{REGENERATE}`"));
    serde_json::from_str(&text).expect("the committed schema is JSON")
}

/// Independent of our YAML parser too: serde_yaml reads the spec, serde_json holds it.
fn yaml_to_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_value(yaml).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(schema: &serde_json::Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("the committed schema compiles")
}

fn schema_errors(v: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn example_specs() -> Vec<PathBuf> {
    let mut specs: Vec<PathBuf> = std::fs::read_dir(root().join("environments"))
        .expect("environments/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    specs.sort();
    specs
}

#[test]
fn committed_schema_is_the_generated_one() {
    let generated = agentenv::spec::schema_text();
    let committed =
        std::fs::read_to_string(root().join("schema/environment.schema.json")).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "schema/environment.schema.json is not what the model generates; regenerate it with\n    {REGENERATE}"
    );
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = agentenv(&["schema"]);
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, committed_schema());
}

#[test]
fn schema_is_a_valid_draft07_schema_for_editors() {
    let schema = committed_schema();
    jsonschema::meta::validate(&schema).expect("a valid JSON Schema");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    for (name, def) in schema["definitions"].as_object().unwrap() {
        if def["type"] == "object" {
            assert_eq!(
                def["additionalProperties"], false,
                "{name} allows unknown keys"
            );
        }
    }
    assert_eq!(
        schema.pointer("/definitions/SecretName/pattern"),
        Some(&serde_json::json!("^[A-Z_][A-Z0-9_]*$"))
    );
    assert_eq!(
        schema.pointer("/definitions/Repo/properties/depth/default"),
        Some(&serde_json::json!(1))
    );
    assert!(schema.pointer("/properties/repos/description").is_some());
}

#[test]
fn every_example_spec_has_the_modeline_and_fits_the_schema() {
    let v = validator(&committed_schema());
    let specs = example_specs();
    assert!(
        specs.len() >= 2,
        "expected example specs in environments/, found {specs:?}"
    );
    let mut failures = Vec::new();
    for spec in &specs {
        let text = std::fs::read_to_string(spec).unwrap();
        if text.lines().next() != Some(MODELINE) {
            failures.push(format!(
                "{}: first line must be `{MODELINE}`",
                spec.display()
            ));
        }
        for e in schema_errors(&v, &yaml_to_json(spec)) {
            failures.push(format!("{}: {e}", spec.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The check above could pass with a schema that accepts anything; it must not.
#[test]
fn the_schema_rejects_what_validate_rejects() {
    let v = validator(&committed_schema());
    let good = yaml_to_json(&root().join("environments/payments-cloud.yaml"));
    assert!(schema_errors(&v, &good).is_empty());
    type Mutation = fn(&mut serde_json::Value);
    let mutations: [(&str, Mutation); 6] = [
        ("unknown key", |d| d["repos"][0]["brnach"] = "main".into()),
        ("wrong type", |d| d["repos"][0]["depth"] = "1".into()),
        ("bad enum", |d| {
            d["providers"]["bb"]["kind"] = "datacentre".into()
        }),
        ("secret value", |d| {
            d["providers"]["bb"]["auth"]["token"] = "ATBB-abc".into()
        }),
        ("bad duration", |d| {
            d["setup"][0]["timeout"] = "10 minutes".into()
        }),
        ("missing name", |d| {
            d.as_object_mut().unwrap().remove("name");
        }),
    ];
    for (what, mutate) in mutations {
        let mut doc = good.clone();
        mutate(&mut doc);
        assert!(
            !schema_errors(&v, &doc).is_empty(),
            "the schema accepts a spec with a {what}"
        );
    }
}
