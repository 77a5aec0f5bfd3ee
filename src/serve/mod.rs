//! MCP wiring (rmcp): stdio and streamable HTTP, and `agentenv tool` (the same code path).
//!
//! Both commands start the same way ([`Session::open`]): load the spec, resolve its secrets,
//! pick the workdir, choose the exposed tools. Then `serve` hands calls from an MCP client to
//! [`crate::tools::Context::call`], and `tool` makes exactly one such call itself.
//! `handler`: the MCP server over the tool catalog; `stdio`: the line framing in front of it
//! (a line that is not JSON gets a parse error); `http`: streamable HTTP.

mod cli;
mod handler;
mod http;
mod stdio;

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::spec::LoadedEnv;
use crate::tools::{self, Context, ToolInfo};

pub use crate::cli::serve::Args as ServeArgs;
pub use crate::cli::tool::Args as ToolArgs;
pub use cli::tool;
pub use handler::{McpServer, mcp_tool, tools_list_json};

/// What both commands need: the context calls run in, and the tools exposed.
struct Session {
    ctx: Arc<Context>,
    tools: Vec<ToolInfo>,
}

impl Session {
    fn open(
        env: &Path,
        workdir: Option<&Path>,
        only: &[String],
        exclude: &[String],
    ) -> Result<Self> {
        let env = LoadedEnv::load(env)?;
        let tools = select_tools(
            &env.spec.serve.tools,
            only,
            exclude,
            !env.spec.providers.is_empty(),
        )?;
        let secrets = crate::secrets::resolve(&env)?;
        let workdir = workdir.map_or_else(|| env.default_workdir(), Path::to_path_buf);
        let ctx = Arc::new(Context::open(env, &workdir, secrets)?);
        Ok(Session { ctx, tools })
    }
}

/// The tools to expose: the spec's `serve.tools` (or `--tools` when given), minus
/// `--exclude-tools`, in catalog order. `default` stands for every tool in the default set;
/// without a Bitbucket provider in the spec, the API-only tools (pull requests, pipelines,
/// repository listing) could never answer, so `default` leaves them out (naming one still
/// serves it). An unknown name is an error, so a typo never silently hides or exposes a tool.
pub fn select_tools(
    spec: &[String],
    only: &[String],
    exclude: &[String],
    has_providers: bool,
) -> Result<Vec<ToolInfo>> {
    let catalog = tools::catalog();
    let in_default = |t: &ToolInfo| t.default && (has_providers || !t.api_only);
    let known = || {
        let names: Vec<&str> = catalog.iter().map(|t| t.name).collect();
        format!("known tools: {} (or `default`)", names.join(", "))
    };
    let check = |names: &[String], origin: &str| -> Result<()> {
        for name in names.iter().filter(|n| !n.is_empty()) {
            if name != "default" && !catalog.iter().any(|t| t.name == name) {
                return Err(
                    Error::input(format!("unknown tool `{name}` in {origin}")).with_hint(known())
                );
            }
        }
        Ok(())
    };
    check(spec, "the spec's serve.tools")?;
    check(only, "--tools")?;
    check(exclude, "--exclude-tools")?;

    let only: Vec<&String> = only.iter().filter(|n| !n.is_empty()).collect();
    let wanted: Vec<&String> = if only.is_empty() {
        spec.iter().collect()
    } else {
        only
    };
    let picked = |t: &ToolInfo| {
        wanted
            .iter()
            .any(|n| *n == t.name || (*n == "default" && in_default(t)))
    };
    let selected: Vec<ToolInfo> = catalog
        .iter()
        .filter(|t| picked(t) && !exclude.iter().any(|n| n == t.name))
        .cloned()
        .collect();
    if selected.is_empty() {
        return Err(
            Error::input("no tool is left to serve after --tools/--exclude-tools")
                .with_hint(known()),
        );
    }
    Ok(selected)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("starting the async runtime: {e}")))
}

/// `agentenv serve ENV`: an MCP server over stdio or streamable HTTP. Stdout carries only the
/// protocol; anything for humans goes to stderr.
pub fn serve(args: ServeArgs) -> Result<()> {
    let session = Session::open(
        &args.env,
        args.workdir.as_deref(),
        &args.tools,
        &args.exclude_tools,
    )?;
    let ctx = &session.ctx;
    if !ctx.workdir.is_dir() {
        eprintln!(
            "agentenv: warning: workdir {} does not exist; tools on checkouts will answer \
             not_cloned until `agentenv provision {}` has run",
            ctx.workdir.display(),
            ctx.env.path.display()
        );
    }
    let server = McpServer::new(session.ctx.clone(), &session.tools);
    let rt = runtime()?;
    match &args.http {
        None => rt.block_on(async {
            eprintln!(
                "agentenv: serving {} tools for `{}` on stdio (workdir {})",
                session.tools.len(),
                ctx.env.spec.name,
                ctx.workdir.display()
            );
            server.serve_stdio().await
        }),
        Some(addr) => {
            let token = http::bearer_token(&args, &ctx.secrets)?;
            rt.block_on(http::serve(server, addr, token, &args))
        }
    }
}
