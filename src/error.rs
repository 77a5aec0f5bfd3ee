//! One error type for the whole tool: a kind that decides the process exit code and the
//! `kind` an agent sees in a tool error, a message that says what failed, a hint that says
//! what to do about it, and the typed cause it came from.
//!
//! Failures are classified where they happen, on typed fields (an HTTP status, git2's error
//! class, a refused credential), never by searching a message for a phrase later. The two
//! conversions users see are here and nowhere else: [`Kind::exit_code`] for the command line
//! and [`Kind::tool_name`] for agents.
//!
//! Messages must never contain a secret value: anything that may echo remote or step
//! output passes through the secrets redactor before it is put into an `Error`. A cause kept
//! in `source` is for programs and debugging; what is shown is `message` and `hint`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What kind of failure this is; each maps to one documented exit code and one tool error kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Something failed while doing the job (a step exited non-zero, a clone broke, I/O).
    Failure,
    /// The user's input is wrong: spec, arguments, regex, paths. Nothing was changed.
    Input,
    /// A tool name that no tool has.
    UnknownTool,
    /// Authentication failed: no identity, a rejected or missing credential.
    Auth,
    /// The credential is valid but lacks a scope or permission.
    Forbidden,
    /// A repository, branch, file or object does not exist.
    NotFound,
    /// A repository or branch outside the spec's scope (whether or not it exists).
    OutOfScope,
    /// An in-scope repository that has no checkout in the workdir.
    NotCloned,
    /// The remote is unavailable: unreachable, timed out, 5xx, cut connection.
    Unavailable,
    /// The remote (or our own request budget) is rate-limiting; `retry_after` says when.
    RateLimited,
    /// Another agentenv holds the workdir lock.
    Busy,
}

impl Kind {
    /// The process exit code for this kind (documented in the README).
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Failure => 1,
            Kind::Input | Kind::UnknownTool => 2,
            Kind::Auth | Kind::Forbidden => 3,
            Kind::NotFound | Kind::OutOfScope | Kind::NotCloned => 4,
            Kind::Unavailable | Kind::RateLimited => 5,
            Kind::Busy => 6,
        }
    }

    /// The `kind` of a tool error, as agents see it (documented in the README).
    pub fn tool_name(self) -> &'static str {
        match self {
            Kind::Failure | Kind::Busy => "internal",
            Kind::Input => "invalid_argument",
            Kind::UnknownTool => "unknown_tool",
            Kind::Auth => "auth_failed",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not_found",
            Kind::OutOfScope => "out_of_scope",
            Kind::NotCloned => "not_cloned",
            Kind::Unavailable => "unavailable",
            Kind::RateLimited => "rate_limited",
        }
    }
}

/// The cause an error came from, kept for programs and debugging.
pub type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Clone)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// What the user can do about it, in one sentence.
    pub hint: Option<String>,
    /// When trying again may succeed (rate limits, `Retry-After`).
    pub retry_after: Option<Duration>,
    source: Option<Source>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            retry_after: None,
            source: None,
        }
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(Kind::Input, message)
    }
    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(Kind::Failure, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    pub fn out_of_scope(message: impl Into<String>) -> Self {
        Self::new(Kind::OutOfScope, message)
    }
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(Kind::Auth, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Kind::Unavailable, message)
    }
    pub fn rate_limited(message: impl Into<String>, wait: Duration) -> Self {
        Self::new(Kind::RateLimited, message).with_retry_after(wait)
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }
    /// Keep the typed cause (a git2 error, an HTTP failure) behind this error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
    /// The kept cause, if any; `downcast_ref` it to decide on its typed fields.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
    /// Prefix the message with where it happened ("cloning payments-api: ...").
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }
    /// The same error with `f` applied to the text a user sees (message and hint), e.g. the
    /// secrets redactor.
    pub fn map_text(mut self, f: impl Fn(&str) -> String) -> Self {
        self.message = f(&self.message);
        self.hint = self.hint.as_deref().map(&f);
        self
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(h) = &self.hint {
            d.field("hint", h);
        }
        if let Some(w) = &self.retry_after {
            d.field("retry_after", w);
        }
        if let Some(s) = &self.source {
            d.field("source", &format_args!("{s}"));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::failure(e.to_string()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_exit_code_and_one_tool_name() {
        use Kind::*;
        let all = [
            Failure,
            Input,
            UnknownTool,
            Auth,
            Forbidden,
            NotFound,
            OutOfScope,
            NotCloned,
            Unavailable,
            RateLimited,
            Busy,
        ];
        let codes: Vec<i32> = all.iter().map(|k| k.exit_code()).collect();
        assert_eq!(codes, [1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6]);
        assert_eq!(RateLimited.tool_name(), "rate_limited");
        assert_eq!(Input.tool_name(), "invalid_argument");
    }

    #[test]
    fn the_cause_is_kept_and_typed() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let e = Error::from(io).context("writing state");
        let cause = e.cause().and_then(|c| c.downcast_ref::<std::io::Error>());
        assert_eq!(
            cause.map(|c| c.kind()),
            Some(std::io::ErrorKind::StorageFull)
        );
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.message, "writing state: disk full");
    }
}
