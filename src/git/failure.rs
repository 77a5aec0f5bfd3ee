//! What went wrong in a git network operation, typed: the HTTP status, which timeout, a refused
//! redirect. The transport records it; callers decide on its fields, never on message text.

use std::time::Duration;

use crate::error::Kind;

use super::session::{CONNECT_TIMEOUT_VAR, LOW_SPEED_LIMIT_VAR, LOW_SPEED_TIME_VAR};

/// What the transport was waiting for when the server went quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The response's status and headers.
    Answer,
    /// More of a response that had started.
    MoreData,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The server answered with an error status.
    #[error("the git server at {origin} answered HTTP {status}")]
    Status {
        status: u16,
        origin: String,
        /// Whether this request carried the provider's credential.
        credential_sent: bool,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// A redirect to another origin: refused, nothing was sent there.
    #[error(
        "the git server at {from} redirected ({status}) to {to}: agentenv does not follow a git redirect to another host, scheme or port"
    )]
    Redirect {
        status: u16,
        from: String,
        /// Where it pointed, without query or userinfo.
        to: String,
    },
    #[error("timed out connecting to {host} after {} s ({CONNECT_TIMEOUT_VAR})", secs(*after))]
    ConnectTimeout { host: String, after: Duration },
    #[error("could not connect to {host}: {detail}")]
    Connect { host: String, detail: String },
    #[error(
        "timed out: the git server at {origin} sent nothing for {} s while {} ({LOW_SPEED_TIME_VAR})",
        secs(*after),
        match waiting { Waiting::Answer => "agentenv waited for its answer", Waiting::MoreData => "sending its answer" }
    )]
    Stalled {
        origin: String,
        after: Duration,
        waiting: Waiting,
    },
    #[error(
        "timed out: the git server at {origin} sent {bytes} bytes in {} s, below {limit} bytes/s ({LOW_SPEED_LIMIT_VAR} over {LOW_SPEED_TIME_VAR})",
        secs(*over)
    )]
    TooSlow {
        origin: String,
        bytes: u64,
        over: Duration,
        limit: u64,
    },
    #[error("the connection to the git server at {origin} dropped: {detail}")]
    Dropped { origin: String, detail: String },
    /// The server does not speak git's smart HTTP protocol (a login page, a dumb server).
    #[error("the server at {origin} did not answer as a git server: {what}")]
    Protocol { origin: String, what: String },
    #[error("agentenv only fetches: it does not push over its git transport")]
    Push,
    #[error("{name}={value:?} is not {expected}")]
    Setting {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("cannot set up HTTP for git: {0}")]
    Setup(String),
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

impl Failure {
    /// The error kind (and so the exit code) this failure has before the credential is known.
    pub fn kind(&self) -> Kind {
        match self {
            Failure::Status { status, .. } => match status {
                401 | 403 => Kind::Auth,
                404 => Kind::NotFound,
                429 => Kind::RateLimited,
                _ => Kind::Unavailable,
            },
            Failure::Push | Failure::Setup(_) => Kind::Failure,
            Failure::Setting { .. } => Kind::Input,
            Failure::Redirect { .. }
            | Failure::ConnectTimeout { .. }
            | Failure::Connect { .. }
            | Failure::Stalled { .. }
            | Failure::TooSlow { .. }
            | Failure::Dropped { .. }
            | Failure::Protocol { .. } => Kind::Unavailable,
        }
    }

    /// Whether trying again may succeed: a dropped or stalled connection, 429, 5xx. A status
    /// that answers the question (401, 403, 404) or a refused redirect would only repeat.
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Status { status, .. } => *status == 429 || *status >= 500,
            Failure::ConnectTimeout { .. }
            | Failure::Connect { .. }
            | Failure::Stalled { .. }
            | Failure::TooSlow { .. }
            | Failure::Dropped { .. } => true,
            _ => false,
        }
    }

    /// A limit of ours ran out (connect, silence, speed): the wait already happened.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Failure::ConnectTimeout { .. } | Failure::Stalled { .. } | Failure::TooSlow { .. }
        )
    }

    /// How long the server asked to be left alone.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// What to do about it, when it does not depend on the credential (see `provision::auth::explain`).
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Failure::Redirect { .. } => "the credential is only ever sent to the provider's git host, so agentenv stops here: if the repository really moved, put its new URL in the spec (the provider's `git_url`, or the repository's `url:`); if not, a proxy or login portal is rewriting requests".into(),
            Failure::ConnectTimeout { .. } => format!(
                "check the URL, the network and any firewall or proxy; {CONNECT_TIMEOUT_VAR} sets how many seconds to wait (default 10)"
            ),
            Failure::Stalled { .. } | Failure::TooSlow { .. } => format!(
                "the server or the network stalled; try again later. On a slow link raise {LOW_SPEED_TIME_VAR} (seconds, default 30) or lower {LOW_SPEED_LIMIT_VAR} (bytes/s, default 1024)"
            ),
            Failure::Connect { .. } | Failure::Dropped { .. } => {
                "check the URL and that the server is reachable, then run provision again".into()
            }
            Failure::Protocol { .. } => "check that the URL is a repository's clone URL; a login page or a proxy may be answering instead of Bitbucket".into(),
            Failure::Setting { name, .. } => format!("fix or unset {name}"),
            Failure::Status { status: 429, .. } => {
                "the server is rate-limiting; try again in a few minutes".into()
            }
            Failure::Status { status, .. } if *status >= 500 => {
                "the server failed; try again later".into()
            }
            _ => return None,
        })
    }

    /// The libgit2 error class this failure is reported under.
    pub(super) fn git2_class(&self) -> git2::ErrorClass {
        match self {
            Failure::Status { .. } | Failure::Redirect { .. } | Failure::Protocol { .. } => {
                git2::ErrorClass::Http
            }
            Failure::Setting { .. } => git2::ErrorClass::Config,
            _ => git2::ErrorClass::Net,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_kind_and_retry() {
        let status = |s| Failure::Status {
            status: s,
            origin: "https://h".into(),
            credential_sent: true,
            retry_after: None,
        };
        assert_eq!(status(401).kind(), Kind::Auth);
        assert_eq!(status(404).kind(), Kind::NotFound);
        assert_eq!(status(429).kind(), Kind::RateLimited);
        assert_eq!(status(502).kind(), Kind::Unavailable);
        assert!(status(503).is_transient() && status(429).is_transient());
        assert!(!status(401).is_transient() && !status(404).is_transient());
        let redirect = Failure::Redirect {
            status: 302,
            from: "https://h".into(),
            to: "https://other/x".into(),
        };
        assert!(!redirect.is_transient());
        assert_eq!(redirect.kind().exit_code(), 5);
    }

    #[test]
    fn timeouts_say_so_and_name_their_setting() {
        let slow = Failure::TooSlow {
            origin: "http://127.0.0.1:9".into(),
            bytes: 6,
            over: Duration::from_secs(30),
            limit: 1024,
        };
        assert_eq!(
            slow.to_string(),
            "timed out: the git server at http://127.0.0.1:9 sent 6 bytes in 30 s, below 1024 bytes/s (AGENTENV_GIT_LOW_SPEED_LIMIT over AGENTENV_GIT_LOW_SPEED_TIME)"
        );
        let quiet = Failure::Stalled {
            origin: "http://h".into(),
            after: Duration::from_millis(1500),
            waiting: Waiting::Answer,
        };
        assert!(quiet.to_string().contains("nothing for 1.5 s"));
        assert!(slow.is_transient() && quiet.is_transient());
    }
}
