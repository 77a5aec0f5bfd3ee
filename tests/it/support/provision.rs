//! Running `agentenv provision` on a spec written in a tempdir, and reading what it leaves:
//! the JSON summary, the workdir's entries, the state file.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::agentenv;

/// Write a spec file in `dir` (the fixed header is added).
pub fn spec(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("env.yaml");
    std::fs::write(&path, format!("version: 1\nname: test\n{body}")).unwrap();
    path
}

pub fn provision(spec: &Path, workdir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "provision",
        spec.to_str().unwrap(),
        "--workdir",
        workdir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    agentenv(&args)
}

/// `provision --json`: asserts every stdout line is JSON and returns the final summary.
pub fn provision_json(spec: &Path, workdir: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = provision(spec, workdir, &args);
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let summary = events.last().cloned().expect("a summary line");
    assert_eq!(summary["event"], "summary", "{stdout}");
    (out, summary)
}

/// The action of the repo or step called `name` in a summary.
pub fn action(summary: &serde_json::Value, list: &str, name: &str) -> String {
    summary[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {summary}"))["action"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every entry of a directory (names), sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn state(workdir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(workdir.join(".agentenv/state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}
