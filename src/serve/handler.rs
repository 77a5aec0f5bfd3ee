//! The MCP server: rmcp's `ServerHandler`, written by hand over the tool catalog so the
//! schemas an agent sees are exactly the ones `tools::catalog()` (and the snapshots) hold.

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
use crate::tools::{self, Context, ToolInfo};

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
    Tool::new(info.name, info.description, object(&info.input_schema))
        .with_raw_output_schema(object(&info.output_schema))
        .with_annotations(
            ToolAnnotations::new()
                .read_only(true)
                .destructive(false)
                .idempotent(true),
        )
}

/// A call's outcome as an MCP result: the JSON as text (for clients that ignore structured
/// content) and as `structuredContent`. A tool error is a result with `isError`, carrying
/// the typed error, so the agent can read it and act; it is not a protocol error.
pub fn call_result(outcome: Result<serde_json::Value>) -> CallToolResult {
    let (value, is_error) = match outcome {
        Ok(value) => (value, false),
        Err(e) => (tools::error_json(&e), true),
    };
    let mut result = if is_error {
        CallToolResult::error(vec![ContentBlock::text(value.to_string())])
    } else {
        CallToolResult::success(vec![ContentBlock::text(value.to_string())])
    };
    result.structured_content = Some(value);
    result
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

    /// Serve one client over stdin/stdout until it disconnects.
    pub async fn serve_stdio(self) -> Result<()> {
        let running = match self.serve(rmcp::transport::stdio_pipes()).await {
            Ok(running) => running,
            // The client went away before the handshake: a normal end, like a broken pipe.
            Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
            Err(e) => {
                return Err(Error::failure(format!(
                    "MCP session over stdio failed to start: {e}"
                )));
            }
        };
        running
            .waiting()
            .await
            .map_err(|e| Error::failure(format!("MCP session over stdio ended abnormally: {e}")))?;
        Ok(())
    }

    async fn call(&self, name: &str, args: serde_json::Value) -> CallToolResult {
        if !self.tools.iter().any(|t| t.name == name) {
            let names: Vec<&str> = self.tools.iter().map(|t| t.name.as_ref()).collect();
            return call_result(Err(Error::new(
                Kind::UnknownTool,
                format!(
                    "tool `{name}` is not served here; available: {}",
                    names.join(", ")
                ),
            )));
        }
        call_result(self.ctx.call(name, args).await)
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agentenv", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Read-only tools over the repositories of the `{}` environment, answered from \
                 local checkouts. Errors carry a `kind` (out_of_scope, not_found, \
                 invalid_argument, not_cloned, …) and a message saying what to do next.",
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
