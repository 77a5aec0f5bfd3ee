//! What the stage modules share: the `agentenv` binary and its output, tool answers checked
//! against their schemas, and one fixture module per kind of world a test needs.

pub mod api;
pub mod bounded;
pub mod canary;
pub mod checkout;
pub mod git;
pub mod provision;
pub mod remote;
pub mod secrets;
pub mod workspace;

use std::io::Write;
use std::process::{Command, Output};

use serde_json::Value;

/// The binary under test, built by cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_agentenv");

/// Skips the calling test, which cannot run on this machine for `reason` (a missing tool or
/// package, and how to install it). The notice goes straight to the process's stderr: the
/// harness shows `eprintln!` only for failing tests, so a skipped test would look like a pass.
/// Under `CI=true` (or `1`) the skip is a failure instead: CI installs everything the tests
/// need (`.ci/run`), and a test that silently stopped running would hide what it guards.
#[track_caller]
pub fn skip_or_fail_in_ci(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "{test} cannot run under CI: {reason}");
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// `agentenv ARGS` without the test process's own `AGENTENV_*` variables (a developer's
/// workdir or key must not change what a test sees); tests add what they need.
pub fn agentenv_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AGENTENV_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

pub fn agentenv(args: &[&str]) -> Output {
    agentenv_cmd(args).output().expect("agentenv runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit code, with the output shown when an assertion on it fails.
pub fn code(out: &Output) -> i32 {
    let c = out.status.code().unwrap_or(-1);
    eprintln!(
        "exit {c}\nstdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
    c
}

/// A finished process's exit code and output as text, with fluent assertions on them.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(out: Output) -> Out {
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success:\n{}", self.all());
        self
    }
    #[track_caller]
    pub fn failed(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            code,
            "expected exit code {code}:\n{}",
            self.all()
        );
        self
    }
    #[track_caller]
    pub fn says(&self, what: &str) -> &Self {
        assert!(
            self.all().contains(what),
            "expected output to contain {what:?}:\n{}",
            self.all()
        );
        self
    }
    /// No value appears anywhere in the output.
    #[track_caller]
    pub fn hides(&self, values: &[&str]) -> &Self {
        for v in values {
            assert!(
                !self.all().contains(v),
                "output leaks {v:?}:\n{}",
                self.all()
            );
        }
        self
    }
}

/// Panics unless `out` matches the output schema `tool` publishes (clients such as the Python
/// SDK reject structured content that does not match it).
#[track_caller]
pub fn assert_fits_output_schema(tool: &str, out: &Value) {
    let info = agentenv::tools::catalog()
        .into_iter()
        .find(|t| t.name == tool)
        .unwrap_or_else(|| panic!("{tool} is not in the catalog"));
    if let Err(e) = jsonschema::validate(&info.output_schema, out) {
        panic!("{tool} output does not match its schema: {e}\n{out}");
    }
}

/// The `field` of every entry of the list `list` in a tool's output, as text.
pub fn names(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no `{list}` in {v}"))
        .iter()
        .map(|x| match &x[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// The matches of a `search_code` answer as `(path, line, text)`, in answer order (context
/// lines are not matches).
pub fn search_matches(result: &Value) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    for f in result["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        for l in f["lines"].as_array().unwrap() {
            if l["context"] != true {
                let text = l["text"].as_str().unwrap().to_string();
                out.push((path.to_string(), l["line"].as_u64().unwrap(), text));
            }
        }
    }
    out
}

/// Panics unless the text rendering of an answer holds every fact its JSON holds: each
/// string leaf (other than keys; trimmed, when not empty) appears verbatim, and each number
/// leaf (when not 0: zero counts are left unsaid) appears as a whole number, not inside a
/// longer one. Booleans are the renderer's to word; callers check those they care about.
#[track_caller]
pub fn assert_text_holds_json(tool: &str, json: &Value, text: &str) {
    fn leaves<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    leaves(x, format!("{path}.{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    leaves(x, format!("{path}[{i}]"), out);
                }
            }
            _ => out.push((path, v)),
        }
    }
    fn has_number(text: &str, n: &str) -> bool {
        text.match_indices(n).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + n.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    }
    // Text answers abbreviate full commit ids to their first 12 hex digits and write RFC 3339
    // times as `2024-05-01 12:00:00Z` (src/tools/text.rs `short_id`, `when`): the same facts,
    // which must still be there in that form.
    fn held(text: &str, s: &str) -> bool {
        let hex = matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
        let b = s.as_bytes();
        let time = b.len() >= 20 && b[4] == b'-' && b[10] == b'T' && b[13] == b':';
        // A list whose links all end in their id says the pattern once: `links: …/{id}`.
        let linked = s.starts_with("http")
            && s.rsplit_once('/').is_some_and(|(prefix, id)| {
                id.bytes().all(|b| b.is_ascii_digit())
                    && text.contains(&format!("{prefix}/{{id}}"))
                    && text.contains(&format!("#{id} "))
            });
        text.contains(s)
            || linked
            || (hex && text.contains(&s[..12]))
            || (time && {
                let spaced = format!("{} {}", &s[..10], &s[11..]);
                let compact = match spaced.strip_suffix("+00:00") {
                    Some(utc) => format!("{utc}Z"),
                    None => spaced,
                };
                text.contains(&compact)
            })
    }
    let mut all = Vec::new();
    leaves(json, String::new(), &mut all);
    let missing: Vec<String> = all
        .into_iter()
        .filter_map(|(path, v)| match v {
            Value::String(s) if !s.trim().is_empty() && !held(text, s.trim()) => {
                Some(format!("{path} = {s:?}"))
            }
            Value::Number(n) if n.as_f64() != Some(0.0) && !has_number(text, &n.to_string()) => {
                Some(format!("{path} = {n}"))
            }
            _ => None,
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{tool}: the text leaves out facts of the JSON:\n  {}\ntext:\n{text}\njson: {json}",
        missing.join("\n  ")
    );
}
