//! `agentenv schema`: print the JSON Schema of the environment spec, the text that
//! `schema/environment.schema.json` holds (a test keeps the two equal), so that
//! `agentenv schema > schema/environment.schema.json` regenerates it.

use super::output;
use crate::error::Result;

/// `agentenv schema`.
pub fn run() -> Result<()> {
    output::print(&crate::spec::schema_text())
}
