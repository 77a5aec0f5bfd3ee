//! What can go wrong talking to Bitbucket, typed so that a caller (a tool, `check`) can tell an
//! agent or a user what to do. Messages never hold a credential: they are built from status
//! codes, our own wording and the server's error text, and the server never sees a token in a
//! URL, so it cannot echo one back.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// 401, or a credential that cannot be built (missing secret, removed auth type).
    AuthFailed,
    /// 403 (Cloud), or Data Center's 401 `AuthorisationException`.
    Forbidden,
    NotFound,
    /// Cloud answers 404 for the pipelines of a repository where Pipelines is off.
    PipelinesDisabled,
    /// 429 after bounded retries, or the client-side budget is spent.
    RateLimited,
    /// 5xx after bounded retries, connection failures, timeouts.
    Unavailable,
    /// A body that is not what the API promises: malformed or truncated JSON, a `next` link
    /// to another host, a redirect loop.
    BadResponse,
    /// A request the server refused as invalid (400), or an argument this back end cannot serve.
    Invalid,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ApiErrorKind,
    /// What failed, for people; decide on the typed fields, not on this text.
    pub message: String,
    /// What to do about it, when there is something to do.
    pub hint: Option<String>,
    /// The HTTP status the server answered, when the failure is an answer (not a refused
    /// connection, a spent budget or a malformed body).
    pub status: Option<u16>,
    /// The server's own error text (capped, one line), when it gave one.
    pub server_message: Option<String>,
    /// When a call may succeed again (rate limits).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(kind: ApiErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            hint: None,
            status: None,
            server_message: None,
            retry_after: None,
        }
    }

    pub fn rate_limited(message: impl Into<String>, wait: Duration) -> ApiError {
        ApiError {
            retry_after: Some(wait),
            ..ApiError::new(ApiErrorKind::RateLimited, message)
        }
    }

    /// The same error with the server's answer recorded on it.
    pub(crate) fn answered(mut self, status: u16, server_message: Option<String>) -> ApiError {
        self.status = Some(status);
        self.server_message = server_message;
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> ApiError {
        self.hint = Some(hint.into());
        self
    }

    pub fn context(mut self, what: impl std::fmt::Display) -> ApiError {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for crate::Error {
    fn from(e: ApiError) -> crate::Error {
        use crate::Kind;
        let kind = match e.kind {
            ApiErrorKind::AuthFailed => Kind::Auth,
            ApiErrorKind::Forbidden => Kind::Forbidden,
            ApiErrorKind::NotFound | ApiErrorKind::PipelinesDisabled => Kind::NotFound,
            ApiErrorKind::RateLimited => Kind::RateLimited,
            ApiErrorKind::Unavailable | ApiErrorKind::BadResponse => Kind::Unavailable,
            ApiErrorKind::Invalid => Kind::Input,
        };
        let mut err = crate::Error::new(kind, e.message.clone());
        if let Some(hint) = &e.hint {
            err = err.with_hint(hint.clone());
        }
        if let Some(wait) = e.retry_after {
            err = err.with_retry_after(wait);
        }
        err.with_source(e)
    }
}

/// The server's own error text, from either API's JSON layout or a plain-text body; capped,
/// single-line.
pub(crate) fn server_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let msg = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let cloud = v.pointer("/error/message").and_then(Value::as_str);
            let cloud_detail = v.pointer("/error/detail").and_then(Value::as_str);
            let dc = v.pointer("/errors/0/message").and_then(Value::as_str);
            match (cloud, cloud_detail, dc) {
                (Some(m), Some(d), _) => format!("{m} ({d})"),
                (Some(m), None, _) | (None, _, Some(m)) => m.to_string(),
                _ => return None,
            }
        }
        Err(_) => text.lines().next().unwrap_or("").to_string(),
    };
    let msg = msg.trim();
    if msg.is_empty() {
        return None;
    }
    let mut end = msg.len().min(300);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    Some(msg[..end].to_string())
}

/// Scopes the server says are required (Cloud 403 `error.detail.required`, a list), if any.
pub(crate) fn required_scopes(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/detail/required").cloned())
        .and_then(|r| r.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Data Center's exception class name, which tells a bad credential from missing permission.
pub(crate) fn dc_exception(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .pointer("/errors/0/exceptionName")?
        .as_str()
        .map(str::to_string)
}
