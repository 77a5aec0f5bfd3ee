//! `agentenv tool ENV NAME --arg k=v …`: one call through the same code as `serve`.
//!
//! The result's JSON goes to stdout. A tool error also puts its typed JSON
//! (`{"kind", "message", "hint"?, "retry_after_secs"?}`) on stdout — so a script parses stdout either
//! way, as with `gh api` — while the human message goes to stderr and the exit code says
//! which kind of failure it was.

use std::io::Write;

use serde_json::{Map, Value};

use super::{Session, ToolArgs};
use crate::error::{Error, Kind, Result};
use crate::tools::{self, ToolInfo};

/// `agentenv tool ENV NAME`: call one tool once and print its JSON result.
pub fn tool(args: ToolArgs) -> Result<()> {
    // A name no tool has is refused before the spec is loaded: the answer does not depend on it.
    let catalog = tools::catalog();
    if !catalog.iter().any(|t| t.name == args.name) {
        let names: Vec<&str> = catalog.iter().map(|t| t.name).collect();
        return unknown_tool(
            format!("there is no tool `{}`", args.name),
            format!("the tools: {}", names.join(", ")),
        );
    }
    let session = Session::open(&args.env, args.workdir.as_deref(), &[], &[])?;
    let Some(info) = session.tools.iter().find(|t| t.name == args.name) else {
        let names: Vec<&str> = session.tools.iter().map(|t| t.name).collect();
        return unknown_tool(
            format!(
                "tool `{}` is not served by {}",
                args.name,
                args.env.display()
            ),
            format!(
                "served: {}; add it to the spec's `serve.tools` to use it",
                names.join(", ")
            ),
        );
    };
    let call_args = parse_tool_args(info, &args.args)?;
    let outcome = super::runtime()?.block_on(session.ctx.call(&args.name, call_args));
    match outcome {
        Ok(value) => print_json(&value),
        Err(e) => {
            print_json(&tools::error_json(&e))?;
            Err(human(e))
        }
    }
}

/// An `unknown_tool` error: its JSON on stdout, as for any tool error, and exit code 2.
fn unknown_tool(message: String, hint: String) -> Result<()> {
    let e = Error::new(Kind::UnknownTool, message).with_hint(hint);
    print_json(&tools::error_json(&e))?;
    Err(human(e))
}

/// The tool error as stderr shows it: its kind first, and when to retry if nothing else
/// says what to do. The kind (and so the exit code) is unchanged.
fn human(e: Error) -> Error {
    let wait = e.retry_after;
    let kind = e.kind.tool_name();
    let e = e.context(kind);
    match wait {
        Some(w) if e.hint.is_none() => {
            e.with_hint(format!("retry in {} seconds", w.as_secs().max(1)))
        }
        _ => e,
    }
}

/// Print pretty JSON; a closed stdout (`| head`) is a normal end, not an error.
fn print_json(value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("json");
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The JSON types a property of the tool's input schema accepts.
fn property_types(info: &ToolInfo, key: &str) -> Vec<String> {
    let prop = &info.input_schema["properties"][key];
    match &prop["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Turn `--arg key=value` pairs into the call's JSON arguments, guided by the tool's input
/// schema: a string property keeps its text as given (`query=42` searches for "42"), an array
/// property collects repeated keys, anything else is parsed as JSON when it can be.
pub fn parse_tool_args(info: &ToolInfo, pairs: &[String]) -> Result<Value> {
    let mut args = Map::new();
    for pair in pairs {
        let Some((key, raw)) = pair.split_once('=') else {
            return Err(Error::input(format!("--arg `{pair}` is not KEY=VALUE"))
                .with_hint("write it as --arg name=value, e.g. --arg query=TODO"));
        };
        let types = property_types(info, key);
        let is = |t: &str| types.iter().any(|x| x == t);
        let json = serde_json::from_str::<Value>(raw).ok();
        if is("array") {
            let items = match json {
                Some(Value::Array(items)) => items,
                Some(v) if !is_string_items(info, key) => vec![v],
                _ => vec![Value::String(raw.to_string())],
            };
            let slot = args
                .entry(key.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = slot {
                list.extend(items);
            }
            continue;
        }
        let value = match json {
            Some(v) if !is("string") => v,
            _ => Value::String(raw.to_string()),
        };
        if args.insert(key.to_string(), value).is_some() {
            return Err(Error::input(format!(
                "--arg `{key}` is given more than once"
            )));
        }
    }
    Ok(Value::Object(args))
}

fn is_string_items(info: &ToolInfo, key: &str) -> bool {
    info.input_schema["properties"][key]["items"]["type"] == "string"
}
