//! The read-only tools served to agents: one module per tool family, a scope check on
//! every repository and ref a call names, local (checkout) back ends, and later API back ends.
//!
//! CONTRACT used by serve (keep these signatures):
//! - `catalog() -> Vec<ToolInfo>`: every tool's name, description, input and output schema.
//! - `Context::open(env, workdir, secrets)`: what a server needs to answer calls.
//! - `Context::call(name, args).await -> Result<Value, Error>`: one call; the result is
//!   the `structuredContent`, already passed through the redactor.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::secrets::ResolvedSecrets;
use crate::spec::LoadedEnv;

/// What an agent sees of a tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub input_schema: serde_json::Value,
    pub output_schema: serde_json::Value,
    /// In the `default` tool set.
    pub default: bool,
}

pub use crate::error::{Error, Kind, Result};

/// What an agent sees of a failed call: `{"kind", "message", "hint"?, "retry_after_secs"?}`.
/// The one conversion from an [`Error`] to the tool error JSON (`serve` and `agentenv tool`
/// both send this).
pub fn error_json(e: &Error) -> serde_json::Value {
    let mut v = serde_json::json!({"kind": e.kind.tool_name(), "message": e.message});
    if let Some(hint) = &e.hint {
        v["hint"] = serde_json::json!(hint);
    }
    if let Some(wait) = e.retry_after {
        v["retry_after_secs"] = serde_json::json!(wait.as_secs().max(1));
    }
    v
}

pub mod api;
pub mod checkout;
pub mod paging;
pub mod paths;
pub mod scope;
pub mod search;
pub mod text;

/// A tool: what the agent sees, and the function that answers it. Handlers are synchronous
/// (checkout work is blocking I/O); `Context::call` runs them off the async runtime.
#[derive(Clone)]
pub struct Tool {
    pub info: ToolInfo,
    pub run: fn(&Context, serde_json::Value) -> std::result::Result<serde_json::Value, Error>,
}

/// Every tool, in a stable order. Each family module contributes its own.
pub fn tools() -> Vec<Tool> {
    let mut all = checkout::tools();
    all.extend(search::tools());
    all.extend(api::tools());
    all
}

/// What agents see of every tool, in a stable order.
pub fn catalog() -> Vec<ToolInfo> {
    tools().into_iter().map(|t| t.info).collect()
}

/// Parse a call's arguments into the tool's typed argument struct, or say what is wrong.
pub fn parse_args<T: serde::de::DeserializeOwned>(
    args: serde_json::Value,
) -> std::result::Result<T, Error> {
    let args = if args.is_null() {
        serde_json::json!({})
    } else {
        args
    };
    serde_json::from_value(args)
        .map_err(|e| Error::new(Kind::Input, format!("invalid arguments: {e}")))
}

/// The JSON Schema of a type, as a tool's input or output schema.
pub fn schema_of<T: schemars::JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).expect("schema serializes")
}

/// The JSON Schema of what a tool returns, as it is serialized: a field skipped when empty
/// (`skip_serializing_if`) is optional here, so clients that validate `structuredContent`
/// against the output schema (the Python SDK does) accept every answer.
pub fn output_schema_of<T: schemars::JsonSchema>() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>();
    serde_json::to_value(schema).expect("schema serializes")
}

/// Everything a call needs: the spec, its workdir, the secrets (for the redactor and API auth).
pub struct Context {
    pub env: LoadedEnv,
    pub workdir: PathBuf,
    pub secrets: ResolvedSecrets,
    /// REST clients per provider, built on first use; each holds its provider's request budget
    /// and cache, so every tool of one server shares them.
    pub api: api::Clients,
    /// Repositories kept open between the checkout tools' calls.
    pub repos: checkout::RepoPool,
}

impl Context {
    pub fn open(env: LoadedEnv, workdir: &Path, secrets: ResolvedSecrets) -> Result<Context> {
        Ok(Context {
            env,
            workdir: workdir.to_path_buf(),
            secrets,
            api: api::Clients::default(),
            repos: checkout::RepoPool::default(),
        })
    }

    /// Run one tool. The returned value is the tool's structured result, redacted.
    pub async fn call(
        self: &std::sync::Arc<Self>,
        name: &str,
        args: serde_json::Value,
    ) -> std::result::Result<serde_json::Value, Error> {
        // Building the catalog renders every tool's JSON schemas: once per process, not per call.
        static TOOLS: std::sync::OnceLock<Vec<Tool>> = std::sync::OnceLock::new();
        let tool = TOOLS
            .get_or_init(tools)
            .iter()
            .find(|t| t.info.name == name)
            .cloned()
            .ok_or_else(|| Error::new(Kind::UnknownTool, format!("unknown tool `{name}`")))?;
        let ctx = self.clone();
        let out = tokio::task::spawn_blocking(move || match (tool.run)(&ctx, args.clone()) {
            // A repository in scope that is not cloned: the API answers where it can.
            Err(e) if e.kind == Kind::NotCloned => {
                api::checkout_fallback(&ctx, tool.info.name, args).unwrap_or(Err(e))
            }
            other => other,
        })
        .await
        .map_err(|e| Error::new(Kind::Failure, format!("tool panicked: {e}")))?;
        let redactor = self.secrets.redactor();
        match out {
            Ok(value) => {
                let text = serde_json::to_string(&value).expect("json");
                Ok(serde_json::from_str(&redactor.redact(&text)).unwrap_or(value))
            }
            Err(e) => Err(e.map_text(|t| redactor.redact(t))),
        }
    }
}
