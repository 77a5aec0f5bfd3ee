//! `agentenv serve ENV`: serve the spec's read-only tools to an agent over the Model Context
//! Protocol, on stdio (the default) or as streamable HTTP with `--http ADDR`. Stdout carries
//! only the protocol; anything for people goes to stderr. The server is [`crate::serve`].

use std::path::PathBuf;

use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment spec (YAML).
    pub env: PathBuf,
    /// The workdir `provision` filled. Default: $AGENTENV_WORKDIR, else ./agentenv-work/<name>.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Serve streamable HTTP on this address instead of stdio, e.g. 127.0.0.1:8765
    /// (endpoint `/mcp`). A non-loopback address requires --http-token-secret.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// The NAME of the secret (or environment variable) holding the bearer token HTTP
    /// clients must send. Required on a non-loopback address; optional on loopback.
    #[arg(long, value_name = "NAME", env = "AGENTENV_HTTP_TOKEN_SECRET")]
    pub http_token_secret: Option<String>,
    /// A Host header value HTTP clients may use (repeatable), besides localhost, 127.0.0.1
    /// and ::1. Needed when clients reach the server by a name or a non-loopback address.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// A browser Origin allowed to call the HTTP server (repeatable), e.g.
    /// `http://localhost:6274`. Requests with any other Origin header are refused.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
    /// Expose only these tools (comma-separated; `default` is the default set); overrides
    /// the spec's `serve.tools`.
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Do not expose these tools (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude_tools: Vec<String>,
}

/// `agentenv serve ENV`.
pub fn run(args: Args) -> Result<()> {
    crate::serve::serve(args)
}
