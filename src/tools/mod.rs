//! The read-only tools served to agents.
//!
//! Where things live:
//! - One file per tool (`read_file.rs`, `list_branches.rs`, …; `search_code/` is a folder):
//!   its `Args`, its `Output`, what agents are told about it, and its [`Tool`] impl, whose
//!   `run` checks the arguments, resolves the repository once to a [`source::Source`] and
//!   calls that source's back end. Both back ends of a tool are in its file.
//! - This module: the [`Tool`] trait and the registry that turns each tool into its catalog
//!   entry ([`catalog`]) and does the JSON conversion once (parse the arguments, run, serialize
//!   the answer); [`Context`] and [`Context::call`], which runs a tool off the async runtime
//!   (heavy ones one turn each, see [`limits`]) and redacts what it returns; [`error_json`], the
//!   one view of an error that agents see.
//! - [`source`]: where answers come from. `checkout` holds the repository pool, opening an
//!   in-scope clone, ref resolution against its refs and tree lookups; `remote` the REST
//!   clients, a repository reached through its provider and ref resolution through the API.
//!   [`Context::source`] picks one; every scope decision goes through `crate::scope`.
//! - [`paths`]: path confinement. [`paging`]: limits and cursors. [`text`]: output caps, the
//!   line window, binary detection, commit people and times, quoting arguments in messages,
//!   and the aligned rows the text answers are made of. [`schema`]: the compact JSON Schemas
//!   of arguments and answers, and the lenient reading of arguments they announce.
//!
//! Every answer has two forms: the typed `Output` as JSON (`structuredContent`, for programs)
//! and a compact text written for a model to read, made by the tool's `render` next to its
//! `Output`. The text holds every fact the JSON holds (tests/it/serve/render.rs checks it).

pub mod browse;
pub mod get_commit;
pub mod get_pipeline_log;
pub mod get_pull_request;
pub mod limits;
pub mod list_branches;
pub mod list_commits;
pub mod list_pipelines;
pub mod list_pull_requests;
pub mod list_repositories;
pub mod paging;
pub mod paths;
pub mod read_file;
pub mod schema;
pub mod search_code;
pub mod source;
pub mod text;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::secrets::ResolvedSecrets;
use crate::spec::LoadedEnv;

pub use crate::error::{Error, Kind, Result};

/// What an agent sees of a tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// As sent in `tools/list`: compact, integers and booleans also as strings.
    pub input_schema: serde_json::Value,
    /// The schema every `structuredContent` of the tool conforms to. Not sent in `tools/list`
    /// (see `serve::handler` for why); snapshot tests and programs read it here.
    pub output_schema: serde_json::Value,
    /// In the `default` tool set.
    pub default: bool,
    /// Answered from a provider's API only (pull requests, pipelines, repository listing).
    pub api_only: bool,
    /// An answer may come from the network (the provider's API, or a fetch): MCP's
    /// `openWorldHint`.
    pub open_world: bool,
}

/// A tool as its module defines it: what the agent sees (name, description, the schemas of
/// `Args` and `Output`), `run`, which answers a call, and `render`, the answer as text for a
/// model. Tools are synchronous (checkout work is blocking I/O); `Context::call` runs them off
/// the async runtime.
pub trait Tool {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// Answered from a provider's API only: left out of `default` when the spec has no provider.
    const API_ONLY: bool = false;
    /// Whether an answer may come from the network; only a tool that reads nothing but local
    /// checkouts says false.
    const OPEN_WORLD: bool = true;
    /// A call can read a whole checkout or walk a whole history: it takes one of the few
    /// turns heavy calls share (`limits::Turns`).
    const HEAVY: bool = false;
    type Args: serde::de::DeserializeOwned + schemars::JsonSchema;
    type Output: Serialize + schemars::JsonSchema;

    fn run(ctx: &Context, args: Self::Args) -> Result<Self::Output>;

    /// The answer as a model reads it: every fact of the JSON, once, without JSON syntax.
    fn render(out: &Self::Output) -> String;
}

/// One answer in its two forms.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The typed output as JSON: `structuredContent`, and what `agentenv tool` prints.
    pub json: serde_json::Value,
    /// The same facts written for a model: the text content.
    pub text: String,
}

/// A tool in the registry: its catalog entry, and the call that does the JSON conversion.
struct Registered {
    info: ToolInfo,
    /// Arguments read leniently from strings, as the input schema announces.
    lenient: Vec<(String, schema::Lenient)>,
    heavy: bool,
    call: fn(&Context, serde_json::Value) -> Result<Answer>,
}

/// The catalog entry of tool `T`, and its call: parse the arguments, run, serialize the answer.
fn register<T: Tool>() -> Registered {
    let (input_schema, lenient) = schema::input::<T::Args>();
    Registered {
        info: ToolInfo {
            name: T::NAME,
            description: T::DESCRIPTION,
            input_schema,
            output_schema: schema::output::<T::Output>(),
            default: true,
            api_only: T::API_ONLY,
            open_world: T::OPEN_WORLD,
        },
        lenient,
        heavy: T::HEAVY,
        call: call::<T>,
    }
}

fn call<T: Tool>(ctx: &Context, args: serde_json::Value) -> Result<Answer> {
    let out = T::run(ctx, parse_args(args)?)?;
    let json = serde_json::to_value(&out).map_err(|e| {
        Error::failure(format!("the answer of `{}` is not JSON: {e}", T::NAME)).with_source(e)
    })?;
    Ok(Answer {
        json,
        text: T::render(&out),
    })
}

/// Every tool, in a stable order (the catalog's and `tools/list`'s).
fn registry() -> &'static [Registered] {
    // Registering renders every tool's JSON schemas: once per process, not per call.
    static TOOLS: std::sync::OnceLock<Vec<Registered>> = std::sync::OnceLock::new();
    TOOLS.get_or_init(|| {
        vec![
            register::<list_branches::ListBranches>(),
            register::<browse::Browse>(),
            register::<read_file::ReadFile>(),
            register::<list_commits::ListCommits>(),
            register::<get_commit::GetCommit>(),
            register::<search_code::SearchCode>(),
            register::<list_repositories::ListRepositories>(),
            register::<list_pull_requests::ListPullRequests>(),
            register::<get_pull_request::GetPullRequest>(),
            register::<list_pipelines::ListPipelines>(),
            register::<get_pipeline_log::GetPipelineLog>(),
        ]
    })
}

/// What agents see of every tool, in a stable order.
pub fn catalog() -> Vec<ToolInfo> {
    registry().iter().map(|t| t.info.clone()).collect()
}

/// Parse a call's arguments into the tool's typed argument struct, or say what is wrong.
fn parse_args<T: serde::de::DeserializeOwned>(args: serde_json::Value) -> Result<T> {
    let args = if args.is_null() {
        serde_json::json!({})
    } else {
        args
    };
    serde_json::from_value(args).map_err(|e| {
        Error::input(format!(
            "invalid arguments: {}",
            text::cut_chars(&e.to_string(), 300)
        ))
    })
}

/// What an agent sees of a failed call: `{"kind", "message", "hint"?, "retry_after_secs"?}`.
/// The one conversion from an [`Error`] to the tool error JSON (`agentenv tool` prints it).
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

/// A failed call as the model reads it (an MCP error result's text): the kind, what failed
/// and what to do, and when to retry.
pub fn error_text(e: &Error) -> String {
    let mut t = format!("error ({}): {}", e.kind.tool_name(), e.message);
    if let Some(hint) = &e.hint {
        t.push_str("\nwhat to do: ");
        t.push_str(hint);
    }
    if let Some(wait) = e.retry_after {
        t.push_str(&format!("\nretry after {} s", wait.as_secs().max(1)));
    }
    t
}

/// Everything a call needs: the spec, its workdir, the secrets (for the redactor and API auth).
pub struct Context {
    pub env: LoadedEnv,
    pub workdir: PathBuf,
    pub secrets: ResolvedSecrets,
    /// REST clients per provider, built on first use; each holds its provider's request budget
    /// and cache, so every tool of one server shares them.
    pub api: source::remote::Clients,
    /// Repositories kept open between the checkout tools' calls.
    pub repos: source::checkout::RepoPool,
    /// What a call may cost; `turns` holds the heavy calls to `limits.heavy_calls` at once.
    pub limits: limits::Limits,
    turns: limits::Turns,
}

impl Context {
    pub fn open(env: LoadedEnv, workdir: &Path, secrets: ResolvedSecrets) -> Result<Context> {
        let limits = limits::Limits::from_env()?;
        Ok(Context {
            env,
            workdir: workdir.to_path_buf(),
            secrets,
            api: source::remote::Clients::default(),
            repos: source::checkout::RepoPool::default(),
            turns: limits::Turns::new(&limits),
            limits,
        })
    }

    /// Run one tool. The returned value is the tool's structured result, redacted.
    pub async fn call(
        self: &std::sync::Arc<Self>,
        name: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.answer(name, args).await.map(|a| a.json)
    }

    /// Run one tool: its answer in both forms, redacted. Arguments the input schema reads
    /// leniently are coerced first; a tool error's message is bounded.
    pub async fn answer(
        self: &std::sync::Arc<Self>,
        name: &str,
        mut args: serde_json::Value,
    ) -> Result<Answer> {
        let tool = registry()
            .iter()
            .find(|t| t.info.name == name)
            .ok_or_else(|| {
                Error::new(
                    Kind::UnknownTool,
                    format!("unknown tool {}", text::quote(name)),
                )
            })?;
        schema::coerce(&mut args, &tool.lenient);
        let turn = self.turns.take(name, tool.heavy).await?;
        let (call, ctx) = (tool.call, self.clone());
        let out = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            call(&ctx, args)
        })
        .await
        .map_err(|e| Error::failure(format!("tool panicked: {e}")))?;
        let redactor = self.secrets.redactor();
        let redact = |text: &str| redactor.redact(text);
        match out {
            Ok(answer) => {
                let json_text = serde_json::to_string(&answer.json).map_err(|e| {
                    Error::failure(format!("the answer of `{name}` is not JSON: {e}"))
                })?;
                Ok(Answer {
                    json: serde_json::from_str(&redact(&json_text)).unwrap_or(answer.json),
                    text: redact(&answer.text),
                })
            }
            Err(e) => Err(text::bound_error(e).map_text(redact)),
        }
    }
}
