//! Provider credentials for git: a spec provider and the resolved secrets become the one
//! `Authorization` value (Cloud: HTTP Basic `username:token`; Data Center: `Bearer`) that the
//! git transport ([`crate::git`]) sends, from the first request on, to the provider's git
//! origin and nowhere else. And what a failed git network operation means: its kind, whether
//! to try again (and when), and the fix, decided on the transport's typed [`Failure`].
//!
//! The token never goes into a URL, a remote's config, a process's argv or an error message.
//! A refused credential is an answer: it is tried once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use zeroize::Zeroizing;

use crate::error::{Error, Kind, Result};
use crate::git::{Failure, MAX_RETRY_AFTER};
use crate::secrets::ResolvedSecrets;
use crate::spec::{AuthType, LoadedEnv, Provider, ProviderKind, Repo};

pub use crate::providers::{ACCESS_TOKEN_GIT_USER, API_TOKEN_GIT_USER, auth_name};
use crate::providers::{GitForm, kind_name};

/// What git presents to one provider's host.
#[derive(Clone)]
pub enum Secret {
    /// HTTP Basic `username:token`.
    Basic {
        username: String,
        token: Zeroizing<String>,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Zeroizing<String>),
}

/// One provider's git credential, and what to say when it is refused.
#[derive(Clone)]
pub struct GitCredential {
    pub provider: String,
    pub kind: ProviderKind,
    pub auth_type: AuthType,
    /// `scheme://host[:port]` of the provider's git root: the only origin the credential goes to.
    pub origin: String,
    pub secret: Secret,
}

impl std::fmt::Debug for GitCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitCredential")
            .field("provider", &self.provider)
            .field("auth_type", &self.auth_type)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The git root of a provider: Cloud `git_url` or `https://bitbucket.org`; Data Center
/// `git_url` or `{base_url}/scm`.
pub fn git_root(provider: &Provider) -> String {
    let root = match provider.kind {
        ProviderKind::Cloud => provider
            .git_url
            .clone()
            .unwrap_or_else(|| "https://bitbucket.org".into()),
        ProviderKind::Datacenter => provider.git_url.clone().unwrap_or_else(|| {
            format!(
                "{}/scm",
                provider
                    .base_url
                    .as_deref()
                    .unwrap_or_default()
                    .trim_end_matches('/')
            )
        }),
    };
    root.trim_end_matches('/').to_string()
}

/// `scheme://host[:port]` of a URL (lower-cased), or `None` for a local path or scp-like URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(format!(
        "{}://{}",
        scheme.to_lowercase(),
        host.to_lowercase()
    ))
}

/// The git credential of provider `name`, or `None` when it has no `auth:` (anonymous).
pub fn credential(
    name: &str,
    provider: &Provider,
    secrets: &ResolvedSecrets,
) -> Result<Option<GitCredential>> {
    let Some(auth) = &provider.auth else {
        return Ok(None);
    };
    let what = format!(
        "provider `{name}` ({}, {})",
        kind_name(provider.kind),
        auth_name(auth.kind)
    );
    let token = || -> Result<Zeroizing<String>> {
        let secret = auth.token.as_deref().ok_or_else(|| {
            Error::input(format!("{what}: `auth.token` is missing"))
                .with_hint("set `auth.token` to the NAME of the secret that holds the token")
        })?;
        let value = secrets.get(secret).ok_or_else(|| {
            Error::input(format!("{what}: secret `{secret}` is not available"))
                .with_hint("create it with `agentenv secret create ENV --team|--personal NAME`")
        })?;
        Ok(Zeroizing::new(value.to_string()))
    };
    let rule = crate::providers::rule(provider.kind, auth.kind)
        .map_err(|r| Error::from(r).context(&what))?;
    let secret = match rule.git {
        GitForm::Basic { username } => Secret::Basic {
            username: auth.username.clone().unwrap_or_else(|| username.into()),
            token: token()?,
        },
        GitForm::Bearer => Secret::Bearer(token()?),
    };
    let root = git_root(provider);
    let origin = origin_of(&root).ok_or_else(|| {
        Error::input(format!("{what}: git root `{root}` is not an http(s) URL"))
            .with_hint("fix `git_url` (or `base_url`) in the spec")
    })?;
    Ok(Some(GitCredential {
        provider: name.to_string(),
        kind: provider.kind,
        auth_type: auth.kind,
        origin,
        secret,
    }))
}

/// The credential for one repository of the spec: its provider's, when it has a `provider:`.
/// A `url:` on another host than the provider's git root is refused rather than sent the token.
pub fn for_repo(
    env: &LoadedEnv,
    repo: &Repo,
    fetch_url: &str,
    secrets: &ResolvedSecrets,
) -> Result<Option<Arc<GitCredential>>> {
    let Some(name) = repo.provider.as_deref() else {
        return Ok(None);
    };
    let Some(provider) = env.spec.providers.get(name) else {
        return Ok(None);
    };
    let Some(cred) = credential(name, provider, secrets)? else {
        return Ok(None);
    };
    if origin_of(fetch_url).as_deref() != Some(cred.origin.as_str()) {
        return Err(Error::input(format!(
            "{}: repository {} is on {}, but provider `{name}` serves git at {}: its token is not sent elsewhere",
            env.path.display(),
            repo.name(),
            origin_of(fetch_url).unwrap_or_else(|| "a local path".into()),
            cred.origin
        ))
        .with_hint("use `slug:` instead of `url:`, or set the provider's `git_url` to this host"));
    }
    Ok(Some(Arc::new(cred)))
}

impl GitCredential {
    /// The `Authorization` header value git requests to [`GitCredential::origin`] carry.
    pub fn authorization(&self) -> Zeroizing<String> {
        match &self.secret {
            Secret::Basic { username, token } => {
                let pair = Zeroizing::new(format!("{username}:{}", &**token));
                Zeroizing::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
                ))
            }
            Secret::Bearer(token) => Zeroizing::new(format!("Bearer {}", &**token)),
        }
    }

    /// "Bitbucket Cloud {verb} the api-token of provider `bb` (git username `…`)".
    fn describe(&self, verb: &str) -> String {
        let how = match &self.secret {
            Secret::Basic { username, .. } => format!("git username `{username}`"),
            Secret::Bearer(_) => "Bearer header".into(),
        };
        format!(
            "{} {verb} the {} of provider `{}` ({how})",
            kind_name(self.kind),
            auth_name(self.auth_type),
            self.provider
        )
    }

    /// The likely fix when the server refused the credential (401).
    fn rejected_hint(&self) -> String {
        match &self.secret {
            Secret::Basic { username, .. }
                if self.auth_type == AuthType::ApiToken && username.contains('@') =>
            {
                format!(
                    "the account email was used as git username; git needs `{API_TOKEN_GIT_USER}` (remove `auth.username`, or set it to the Bitbucket username): the email is only for the REST API (`auth.email`)"
                )
            }
            _ => self.rule().rejected_hint.to_string(),
        }
    }

    /// The scope a token needs to read repositories.
    fn read_scope(&self) -> &'static str {
        self.rule().read_scope
    }

    fn rule(&self) -> &'static crate::providers::AuthRule {
        crate::providers::rule(self.kind, self.auth_type)
            .expect("a GitCredential is only built from a usable rule")
    }
}

/// The typed transport failure behind a git error, when there is one.
pub fn failure_of(e: &Error) -> Option<&Failure> {
    e.cause().and_then(|c| c.downcast_ref::<Failure>())
}

/// Whether a failed network operation may succeed when tried again: a dropped or stalled
/// connection, a 5xx or a 429. A refused credential, 403, 404 and a refused redirect are
/// answers, not accidents.
pub fn is_transient(e: &Error) -> bool {
    match failure_of(e) {
        Some(f) => f.is_transient(),
        // Not from the HTTP transport (a local path, libgit2's own protocols).
        None => e.kind == Kind::Unavailable,
    }
}

/// Give a git failure the right kind and the fix, knowing which credential was used.
pub fn explain(cred: Option<&GitCredential>, mut e: Error) -> Error {
    let Some(failure) = failure_of(&e).cloned() else {
        if e.kind == Kind::Auth && cred.is_none() {
            e.hint = Some(crate::providers::NO_AUTH_HINT.into());
        }
        return e;
    };
    let Failure::Status {
        status,
        credential_sent,
        ..
    } = failure
    else {
        return e;
    };
    match (status, cred.filter(|_| credential_sent)) {
        (401, Some(c)) => {
            e.kind = Kind::Auth;
            e.message = format!("{}: {}", e.message, c.describe("rejected"));
            e.hint = Some(c.rejected_hint());
        }
        (401, None) => {
            e.kind = Kind::Auth;
            e.hint = Some(crate::providers::NO_AUTH_HINT.into());
        }
        (403, Some(c)) => {
            e.kind = Kind::Auth;
            e.message = format!("{}: {}", e.message, c.describe("refused access with"));
            e.hint = Some(format!(
                "the token lacks the scope {}: create a token with it and run `agentenv secret update ENV --team|--personal NAME`",
                c.read_scope()
            ));
        }
        (403, None) => {
            e.kind = Kind::Auth;
            e.hint =
                Some("the server refused anonymous access: add `auth:` to the provider".into());
        }
        (404, _) => {
            e.kind = Kind::NotFound;
            e.hint = Some(
                "check the slug and the provider's workspace/project; a token limited to other repositories sees 404 too".into(),
            );
        }
        _ => {}
    }
    e
}

/// Bounded retries of transient failures: exponential backoff with jitter, or the server's
/// `Retry-After` when it gives one (up to [`MAX_RETRY_AFTER`]).
pub const MAX_ATTEMPTS: u32 = 4;
/// A timeout already waited its whole limit: one more try, not three, so a dead server costs
/// two limits (about a minute at the defaults) before exit 5.
pub const TIMEOUT_ATTEMPTS: u32 = 2;
const BACKOFF_MS: u64 = 300;

/// Run `op` until it succeeds, fails for good, or [`MAX_ATTEMPTS`] are spent.
pub fn with_retries<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        let e = match op() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let asked = failure_of(&e).and_then(Failure::retry_after);
        if let Some(wait) = asked.filter(|w| *w > MAX_RETRY_AFTER) {
            return Err(wait_too_long(e, wait));
        }
        let limit = match failure_of(&e) {
            Some(f) if f.is_timeout() => TIMEOUT_ATTEMPTS,
            _ => MAX_ATTEMPTS,
        };
        if attempt + 1 >= limit || !is_transient(&e) {
            return Err(gave_up(e, attempt + 1));
        }
        let wait = asked.unwrap_or_else(|| {
            let base = BACKOFF_MS << attempt;
            // Jitter keeps many agents that failed together from retrying in lockstep.
            Duration::from_millis(base + rand::random_range(0..=base / 2))
        });
        std::thread::sleep(wait);
        attempt += 1;
    }
}

/// The server asked for a longer pause than a provision should sit through.
fn wait_too_long(mut e: Error, wait: Duration) -> Error {
    let secs = wait.as_secs().max(1);
    e.message = format!(
        "{} and asked to wait {secs} s before trying again (Retry-After), longer than agentenv waits ({} s)",
        e.message,
        MAX_RETRY_AFTER.as_secs()
    );
    e.hint = Some(format!("try again in {secs} s"));
    e.retry_after = Some(wait);
    e
}

fn gave_up(mut e: Error, attempts: u32) -> Error {
    if attempts > 1 {
        e.message = format!("{} (after {attempts} attempts)", e.message);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry_after: Option<u64>) -> Error {
        let f = Failure::Status {
            status,
            origin: "https://h".into(),
            credential_sent: true,
            retry_after: retry_after.map(Duration::from_secs),
        };
        Error::new(f.kind(), f.to_string()).with_source(f)
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(is_transient(&status(503, None)));
        assert!(is_transient(&status(429, None)));
        assert!(!is_transient(&status(404, None)));
        assert!(!is_transient(&status(403, None)));
        assert!(!is_transient(&status(401, None)));
        // Without a typed failure (not the HTTP transport), the kind decides.
        assert!(is_transient(&Error::unavailable("connection refused")));
        assert!(!is_transient(&Error::auth("no credential")));
        let mut n = 0;
        let r: Result<()> = with_retries(|| {
            n += 1;
            Err(status(404, None))
        });
        assert!(r.is_err());
        assert_eq!(n, 1);
    }

    #[test]
    fn a_timeout_is_tried_twice_and_a_5xx_four_times() {
        let tries = |f: Failure| {
            let mut n = 0;
            let _ = with_retries::<()>(|| {
                n += 1;
                Err(Error::new(f.kind(), f.to_string()).with_source(f.clone()))
            });
            n
        };
        let stalled = Failure::ConnectTimeout {
            host: "h".into(),
            after: Duration::from_secs(10),
        };
        assert_eq!(tries(stalled), TIMEOUT_ATTEMPTS);
        let busy = Failure::Status {
            status: 503,
            origin: "https://h".into(),
            credential_sent: true,
            retry_after: Some(Duration::ZERO),
        };
        assert_eq!(tries(busy), MAX_ATTEMPTS);
    }

    #[test]
    fn a_long_retry_after_fails_at_once_with_the_wait() {
        let mut n = 0;
        let e = with_retries::<()>(|| {
            n += 1;
            Err(status(429, Some(120)))
        })
        .unwrap_err();
        assert_eq!(n, 1);
        assert_eq!(e.kind, Kind::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(120)));
        assert!(e.message.contains("120 s"), "{}", e.message);
    }

    #[test]
    fn a_refused_credential_is_explained_with_the_fix() {
        let cred = GitCredential {
            provider: "bb".into(),
            kind: ProviderKind::Cloud,
            auth_type: AuthType::ApiToken,
            origin: "https://h".into(),
            secret: Secret::Basic {
                username: "bot@acme.example".into(),
                token: Zeroizing::new("t".into()),
            },
        };
        let e = explain(Some(&cred), status(401, None));
        assert_eq!(e.kind, Kind::Auth);
        assert!(
            e.message
                .contains("rejected the api-token of provider `bb`")
        );
        assert!(
            e.hint
                .unwrap()
                .contains("the account email was used as git username")
        );
        let anonymous = explain(None, status(401, None));
        assert_eq!(
            anonymous.hint.as_deref(),
            Some(crate::providers::NO_AUTH_HINT)
        );
    }

    #[test]
    fn the_authorization_value_has_the_form_of_the_rule() {
        let basic = Secret::Basic {
            username: "x-token-auth".into(),
            token: Zeroizing::new("tok".into()),
        };
        let cred = |secret| GitCredential {
            provider: "p".into(),
            kind: ProviderKind::Cloud,
            auth_type: AuthType::AccessToken,
            origin: "https://h".into(),
            secret,
        };
        assert_eq!(
            cred(basic).authorization().as_str(),
            "Basic eC10b2tlbi1hdXRoOnRvaw=="
        );
        assert_eq!(
            cred(Secret::Bearer(Zeroizing::new("tok".into())))
                .authorization()
                .as_str(),
            "Bearer tok"
        );
    }

    #[test]
    fn origins_ignore_userinfo_and_case() {
        assert_eq!(
            origin_of("https://u@Bitbucket.org/acme/x.git").as_deref(),
            Some("https://bitbucket.org")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/scm/p/x.git").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("../x"), None);
    }
}
