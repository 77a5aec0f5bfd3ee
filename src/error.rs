//! One error type for the whole tool: a category that decides the process exit code,
//! a message that says what failed, and an optional hint that says what to do about it.
//!
//! Messages must never contain a secret value: anything that may echo remote or step
//! output passes through the secrets redactor before it is put into an `Error`.

use std::fmt;

/// What kind of failure this is; each maps to one documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Something failed while doing the job (a step exited non-zero, a clone broke, I/O).
    Failure,
    /// The user's input is wrong: spec, arguments, regex, paths. Nothing was changed.
    Input,
    /// Authentication or authorisation failed (bad token, missing scope, no identity).
    Auth,
    /// A repository, branch, file or object does not exist, or is outside the spec's scope.
    NotFound,
    /// The remote is unavailable or rate-limited; trying again later may work.
    Unavailable,
    /// Another agentenv holds the workdir lock.
    Busy,
}

impl Kind {
    /// The process exit code for this kind (documented in the README).
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Failure => 1,
            Kind::Input => 2,
            Kind::Auth => 3,
            Kind::NotFound => 4,
            Kind::Unavailable => 5,
            Kind::Busy => 6,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// What the user can do about it, in one sentence.
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
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
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(Kind::Auth, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Kind::Unavailable, message)
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// Prefix the message with where it happened ("cloning payments-api: ...").
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
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

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::failure(e.to_string())
    }
}
