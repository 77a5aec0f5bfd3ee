//! MCP wiring (rmcp): stdio and streamable HTTP, and `agentenv tool` (the same code path).

use std::path::PathBuf;

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The environment spec (YAML).
    pub env: PathBuf,
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Serve streamable HTTP on this address instead of stdio, e.g. 127.0.0.1:8765.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Expose only these tools (comma-separated); overrides the spec's `serve.tools`.
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Do not expose these tools (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude_tools: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ToolArgs {
    /// The environment spec (YAML).
    pub env: PathBuf,
    /// The tool to call.
    pub name: String,
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// A tool argument, `key=value` (repeatable). Values that parse as JSON are used as JSON.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub args: Vec<String>,
}

/// `agentenv serve ENV`: an MCP server over stdio or streamable HTTP.
pub fn serve(args: ServeArgs) -> Result<()> {
    let _ = args;
    Err(Error::failure("serve is not implemented yet"))
}

/// `agentenv tool ENV NAME`: call one tool once and print its JSON result.
pub fn tool(args: ToolArgs) -> Result<()> {
    let _ = args;
    Err(Error::failure("tool is not implemented yet"))
}
