//! The MCP server: rmcp's `ServerHandler`, written by hand over the tool catalog so the
//! schemas an agent sees are exactly the ones `tools::catalog()` (and the snapshots) hold.
//!
//! What a client gets, and why:
//!
//! - `tools/list` sends each tool's name, a description of a sentence or two, its compact input
//!   schema and annotations (`readOnlyHint`, `destructiveHint: false`, `idempotentHint`,
//!   `openWorldHint` where an answer may come from the network) — and **no `outputSchema`**.
//!   Every client loads the list into its model's context on every turn, and output schemas
//!   were 55 % of it while the model never reads them; the spec makes `outputSchema` optional
//!   and allows `structuredContent` without one. Clients that do read it turn it into a
//!   validator that rejects the whole result on any mismatch (the TypeScript SDK, with Ajv,
//!   and the Python SDK both do), so a schema is a liability to every client for the benefit
//!   of a few programs. Those programs get the schema `structuredContent` conforms to from
//!   `tools::catalog()` (the snapshots in tests/__toolsnaps__ hold it, under
//!   `structuredContentSchema`, so a change to it shows in review).
//! - A successful call answers with one text block, the tool's `render` of its output — a
//!   compact text for a model to read, not JSON (the spec's "SHOULD also return the serialized
//!   JSON" is for clients without structured content; such clients get a better answer
//!   this way) — and `structuredContent`, the typed output as JSON, for programs.
//! - A tool error is a result with `isError: true` and one text block saying what failed and
//!   what to do (`tools::error_text`), and no `structuredContent`: a client that validates
//!   structured content cannot reject it, and none ignores it.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use crate::error::Kind;
use crate::error::{Error, Result};
use crate::tools::{self, Answer, Context, ToolInfo};

/// One server; cheap to clone (HTTP makes one per session).
#[derive(Clone)]
pub struct McpServer {
    ctx: Arc<Context>,
    tools: Arc<Vec<Tool>>,
}

fn object(schema: &serde_json::Value) -> Arc<JsonObject> {
    Arc::new(schema.as_object().cloned().unwrap_or_default())
}

/// What MCP clients see of a tool.
pub fn mcp_tool(info: &ToolInfo) -> Tool {
    Tool::new(info.name, info.description, object(&info.input_schema)).with_annotations(
        ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(info.open_world),
    )
}

/// The `tools/list` result for `tools`, as JSON: what a client receives.
pub fn tools_list_json(tools: &[ToolInfo]) -> serde_json::Value {
    let list = ListToolsResult::with_all_items(tools.iter().map(mcp_tool).collect());
    serde_json::to_value(list).expect("a tool list serializes")
}

/// A call's outcome as an MCP result: the text a model reads and `structuredContent` for
/// programs; a tool error is a result with `isError` and a text saying what to do, not a
/// protocol error, and carries no structured content.
pub fn call_result(outcome: Result<Answer>) -> CallToolResult {
    match outcome {
        Ok(answer) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(answer.text)]);
            result.structured_content = Some(answer.json);
            result
        }
        Err(e) => CallToolResult::error(vec![ContentBlock::text(tools::error_text(&e))]),
    }
}

impl McpServer {
    pub fn new(ctx: Arc<Context>, tools: &[ToolInfo]) -> Self {
        McpServer {
            ctx,
            tools: Arc::new(tools.iter().map(mcp_tool).collect()),
        }
    }

    pub fn tool_count(&self) -> usize {
        self.tools.len()
    }

    /// Serve one client over stdin/stdout until it disconnects; a line that is not JSON is
    /// answered with a parse error (`super::stdio`).
    pub async fn serve_stdio(self) -> Result<()> {
        let (stdin, stdout) = rmcp::transport::stdio_pipes();
        let (pipes, writer) = super::stdio::frame(stdin, stdout);
        let running = match self.serve(pipes).await {
            Ok(running) => running,
            // The client went away before the handshake: a normal end, like a broken pipe.
            Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => {
                let _ = writer.await;
                return Ok(());
            }
            Err(e) => {
                return Err(Error::failure(format!(
                    "MCP session over stdio failed to start: {e}"
                )));
            }
        };
        let ended = running.waiting().await;
        // Every answer the session wrote reaches stdout before the process ends.
        let _ = writer.await;
        ended
            .map_err(|e| Error::failure(format!("MCP session over stdio ended abnormally: {e}")))?;
        Ok(())
    }

    async fn call(&self, name: &str, args: serde_json::Value) -> CallToolResult {
        if !self.tools.iter().any(|t| t.name == name) {
            let names: Vec<&str> = self.tools.iter().map(|t| t.name.as_ref()).collect();
            return call_result(Err(Error::new(
                Kind::UnknownTool,
                format!(
                    "tool {} is not served here; available: {}",
                    tools::text::quote(name),
                    names.join(", ")
                ),
            )));
        }
        call_result(self.ctx.answer(name, args).await)
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agentenv", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Read-only tools over the repositories of the `{}` environment, answered from \
                 local checkouts or the Bitbucket API. Errors name their kind (out_of_scope, \
                 not_found, invalid_argument, not_cloned, …) and say what to do next.",
                self.ctx.env.spec.name
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, ErrorData> {
        let args = request
            .arguments
            .map_or(serde_json::Value::Null, serde_json::Value::Object);
        Ok(self.call(&request.name, args).await.into())
    }
}
