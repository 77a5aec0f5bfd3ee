//! Bitbucket Data Center REST 1.0 subset.

use crate::Shared;
use crate::server::{Reply, Req};

pub fn template(segs: &[String]) -> String {
    format!("/{}", segs.join("/"))
}

pub fn error(status: u16, message: &str, exception: Option<&str>) -> Reply {
    Reply::json(
        status,
        &serde_json::json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]}),
    )
}

pub fn handle(_shared: &Shared, _req: &Req) -> (Reply, Option<String>) {
    (error(404, "Not found", None), None)
}
