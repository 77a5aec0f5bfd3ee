//! The per-operation session the transport reads: the credential and the one origin it may go
//! to, and the timeouts; and the slot where the transport leaves the typed failure.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::Url;
use zeroize::Zeroizing;

use super::failure::Failure;

pub const CONNECT_TIMEOUT_VAR: &str = "AGENTENV_GIT_CONNECT_TIMEOUT";
pub const LOW_SPEED_LIMIT_VAR: &str = "AGENTENV_GIT_LOW_SPEED_LIMIT";
pub const LOW_SPEED_TIME_VAR: &str = "AGENTENV_GIT_LOW_SPEED_TIME";

/// A `Retry-After` up to this long is waited out; a longer one fails at once with the wait.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How long git network operations may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Settings {
    /// Opening the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Bytes per second a response must average over [`Settings::low_speed_time`]…
    pub low_speed_limit: u64,
    /// …or the operation fails. Also the longest wait for an answer or for any next byte.
    /// `None` (set to 0) lifts both limits.
    pub low_speed_time: Option<Duration>,
}

impl Default for Settings {
    /// git's `http.lowSpeedLimit`/`http.lowSpeedTime` are off by default; a provision that
    /// nobody watches must not hang, so agentenv's are on. 1 KiB/s over 30 s only catches a
    /// server that has all but stopped: progress messages alone keep a busy one above it.
    fn default() -> Settings {
        Settings {
            connect_timeout: Duration::from_secs(10),
            low_speed_limit: 1024,
            low_speed_time: Some(Duration::from_secs(30)),
        }
    }
}

impl Settings {
    /// The defaults, overridden by `AGENTENV_GIT_*` environment variables (read once).
    pub fn from_env() -> Result<Settings, Failure> {
        static FROM_ENV: OnceLock<Result<Settings, Failure>> = OnceLock::new();
        FROM_ENV
            .get_or_init(|| Settings::from_lookup(|name| std::env::var(name).ok()))
            .clone()
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Settings, Failure> {
        let mut s = Settings::default();
        if let Some(v) = var(CONNECT_TIMEOUT_VAR) {
            s.connect_timeout = seconds(CONNECT_TIMEOUT_VAR, &v)?
                .filter(|d| !d.is_zero())
                .ok_or_else(|| bad(CONNECT_TIMEOUT_VAR, &v, "a number of seconds above 0"))?;
        }
        if let Some(v) = var(LOW_SPEED_LIMIT_VAR) {
            s.low_speed_limit = v
                .trim()
                .parse()
                .map_err(|_| bad(LOW_SPEED_LIMIT_VAR, &v, "a number of bytes per second"))?;
        }
        if let Some(v) = var(LOW_SPEED_TIME_VAR) {
            s.low_speed_time = seconds(LOW_SPEED_TIME_VAR, &v)?.filter(|d| !d.is_zero());
        }
        Ok(s)
    }
}

/// Seconds, decimals allowed ("30", "2.5").
fn seconds(name: &'static str, v: &str) -> Result<Option<Duration>, Failure> {
    v.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(Some)
        .ok_or_else(|| bad(name, v, "a number of seconds"))
}

fn bad(name: &'static str, value: &str, expected: &'static str) -> Failure {
    Failure::Setting {
        name,
        value: value.chars().take(40).collect(),
        expected,
    }
}

/// A credential and the only origin it is sent to.
struct OriginCredential {
    origin: Url,
    /// The whole `Authorization` value: `Basic …` or `Bearer …`.
    authorization: Zeroizing<String>,
}

/// What one git network operation may do.
#[derive(Default)]
pub struct Session {
    credential: Option<OriginCredential>,
    pub settings: Settings,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field(
                "origin",
                &self.credential.as_ref().map(|c| c.origin.as_str()),
            )
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// No credential, the given timeouts.
    pub fn anonymous(settings: Settings) -> Session {
        Session {
            credential: None,
            settings,
        }
    }

    /// `authorization` (a whole `Authorization` header value) for requests to `origin`
    /// (`scheme://host[:port]`) and nowhere else.
    pub fn with_credential(
        origin: &str,
        authorization: Zeroizing<String>,
        settings: Settings,
    ) -> Result<Session, Failure> {
        let origin = Url::parse(origin)
            .ok()
            .filter(|u| u.has_host())
            .ok_or_else(|| Failure::Protocol {
                origin: origin.to_string(),
                what: "the credential's origin is not an http(s) URL".into(),
            })?;
        Ok(Session {
            credential: Some(OriginCredential {
                origin,
                authorization,
            }),
            settings,
        })
    }

    /// The `Authorization` value for a request to `url`: only on the credential's own origin.
    pub(super) fn authorization_for(&self, url: &Url) -> Option<&str> {
        self.credential
            .as_ref()
            .filter(|c| same_origin(&c.origin, url))
            .map(|c| c.authorization.as_str())
    }

    /// Make this the session of the git2 calls on this thread until the guard drops, and
    /// forget any failure an earlier operation left.
    pub fn enter(self: Arc<Session>) -> SessionGuard {
        LAST_FAILURE.with(|f| f.borrow_mut().take());
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self));
        SessionGuard {
            previous,
            _thread_bound: PhantomData,
        }
    }
}

/// Scheme, host and port (the default port of the scheme when none is written).
pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Session>>> = const { RefCell::new(None) };
    static LAST_FAILURE: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

/// Restores the previous session of this thread on drop.
pub struct SessionGuard {
    previous: Option<Arc<Session>>,
    // The session is per thread: a guard moved elsewhere would restore the wrong one.
    _thread_bound: PhantomData<*const ()>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// This thread's session, or the defaults.
pub(super) fn current() -> Arc<Session> {
    CURRENT
        .with(|c| c.borrow().clone())
        .unwrap_or_else(|| Arc::new(Session::anonymous(Settings::from_env().unwrap_or_default())))
}

pub(super) fn record(failure: Failure) {
    LAST_FAILURE.with(|f| *f.borrow_mut() = Some(failure));
}

/// What made the last git network call on this thread fail, typed; taken once.
pub fn take_failure() -> Option<Failure> {
    LAST_FAILURE.with(|f| f.borrow_mut().take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment_or_default() {
        let none = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(none, Settings::default());
        let set = Settings::from_lookup(|n| {
            Some(match n {
                CONNECT_TIMEOUT_VAR => "2.5".into(),
                LOW_SPEED_LIMIT_VAR => "0".into(),
                _ => "0".into(),
            })
        })
        .unwrap();
        assert_eq!(set.connect_timeout, Duration::from_millis(2500));
        assert_eq!(set.low_speed_limit, 0);
        assert_eq!(set.low_speed_time, None, "0 lifts the low-speed limit");
        let bad = Settings::from_lookup(|n| (n == LOW_SPEED_TIME_VAR).then(|| "soon".into()));
        assert!(matches!(bad, Err(Failure::Setting { name, .. }) if name == LOW_SPEED_TIME_VAR));
        let zero = Settings::from_lookup(|n| (n == CONNECT_TIMEOUT_VAR).then(|| "0".into()));
        assert!(zero.is_err(), "a connection cannot be given no time");
    }

    #[test]
    fn the_credential_goes_to_its_origin_only() {
        let s = Session::with_credential(
            "https://bitbucket.example",
            Zeroizing::new("Bearer t".into()),
            Settings::default(),
        )
        .unwrap();
        let at = |u: &str| s.authorization_for(&Url::parse(u).unwrap()).is_some();
        assert!(at("https://bitbucket.example/scm/p/r.git/info/refs"));
        assert!(at("https://BITBUCKET.example:443/x"));
        assert!(!at("http://bitbucket.example/x"), "another scheme");
        assert!(!at("https://bitbucket.example:8443/x"), "another port");
        assert!(!at("https://bitbucket.example.evil/x"), "another host");
        assert!(!at("https://127.0.0.2/x"));
    }

    #[test]
    fn entering_a_session_forgets_an_older_failure() {
        record(Failure::Push);
        let guard = Arc::new(Session::default()).enter();
        assert_eq!(take_failure(), None);
        record(Failure::Push);
        drop(guard);
        assert_eq!(take_failure(), Some(Failure::Push));
        assert_eq!(take_failure(), None, "taken once");
    }
}
