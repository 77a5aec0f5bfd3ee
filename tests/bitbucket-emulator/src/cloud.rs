//! Bitbucket Cloud REST 2.0 subset.

use crate::Shared;
use crate::server::{Reply, Req};

pub fn template(segs: &[String]) -> String {
    format!("/{}", segs.join("/"))
}

pub fn error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        &serde_json::json!({"type": "error", "error": {"message": message}}),
    )
}

pub fn repo_not_found() -> Reply {
    error(
        404,
        "The requested repository either does not exist or you do not have access. If you believe this repository exists and you have access, make sure you're authenticated.",
    )
}

pub fn handle(_shared: &Shared, _req: &Req) -> (Reply, Option<String>) {
    (error(404, "Resource not found"), None)
}
