//! Provider credentials for git: a spec provider and the resolved secrets become either a
//! username/token pair that libgit2 gets from its credential callback (Cloud), or an
//! `Authorization: Bearer` header sent from the first request on (Data Center).
//!
//! The token never goes into a URL, a remote's config, a process's argv or an error message.
//! A rejected credential is offered once: libgit2 asks the callback again after every 401,
//! forever, so the callback counts and gives up with an error that says what to fix.

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use git2::{Binding, Cred, CredentialType, Remote, RemoteCallbacks};
use zeroize::Zeroizing;

use crate::error::{Error, Kind, Result};
use crate::secrets::ResolvedSecrets;
use crate::spec::{AuthType, LoadedEnv, Provider, ProviderKind, Repo};

pub use crate::providers::{ACCESS_TOKEN_GIT_USER, API_TOKEN_GIT_USER, auth_name};
use crate::providers::{GitForm, kind_name};

/// What git presents to one provider's host.
#[derive(Clone)]
pub enum Secret {
    /// HTTP Basic through libgit2's credential callback.
    Basic {
        username: String,
        token: Zeroizing<String>,
    },
    /// `Authorization: Bearer` as an extra header on every request.
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
    /// Extra headers for every request (Data Center's Bearer), none for Cloud.
    pub fn headers(&self) -> Vec<Zeroizing<String>> {
        match &self.secret {
            Secret::Bearer(t) => vec![Zeroizing::new(format!("Authorization: Bearer {}", &**t))],
            Secret::Basic { .. } => Vec::new(),
        }
    }

    /// Install the credential callback. It answers the first 401 with the credential and
    /// fails every later one: the credential was refused, asking again cannot help.
    pub fn install<'a>(self: &Arc<Self>, cb: &mut RemoteCallbacks<'a>) {
        let me = self.clone();
        let asked = AtomicU32::new(0);
        cb.credentials(move |_url, _user, allowed| {
            let n = asked.fetch_add(1, Ordering::Relaxed);
            match &me.secret {
                Secret::Basic { username, token }
                    if n == 0 && allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
                {
                    Cred::userpass_plaintext(username, token)
                }
                _ => Err(git2::Error::new(
                    git2::ErrorCode::Auth,
                    git2::ErrorClass::Http,
                    me.rejected_text(),
                )),
            }
        });
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

    fn rejected_text(&self) -> String {
        format!("{}: {}", self.describe("rejected"), AUTH_MARK)
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

/// Marks the message of a credential refused by the callback, so that it is told apart from
/// libgit2's own auth errors (which have other causes: no callback, unsupported scheme).
const AUTH_MARK: &str = "the credential was refused";

/// The HTTP status in a libgit2 error message ("unexpected http status code: 502").
pub fn http_status(message: &str) -> Option<u16> {
    let at = message.find("unexpected http status code: ")?;
    message[at + "unexpected http status code: ".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Whether a failed network operation may succeed when tried again: a dropped connection,
/// a 5xx or a 429. A refused credential, 403 and 404 are answers, not accidents.
pub fn is_transient(e: &Error) -> bool {
    match http_status(&e.message) {
        Some(s) => s == 429 || s >= 500,
        None => e.kind == Kind::Unavailable && !e.message.contains(AUTH_MARK),
    }
}

/// Give a git failure the right kind and the fix, knowing which credential was used.
pub fn explain(cred: Option<&GitCredential>, mut e: Error) -> Error {
    if e.message.contains(AUTH_MARK) {
        e.kind = Kind::Auth;
        if let Some(c) = cred {
            e.hint = Some(c.rejected_hint());
        }
        return e;
    }
    let status = http_status(&e.message);
    if let Some(s) = status {
        e.message = e.message.replace(
            &format!("unexpected http status code: {s}"),
            &format!("the server answered HTTP {s}"),
        );
    }
    match (status, cred) {
        (Some(401), _) | (None, None) if e.kind == Kind::Auth => {
            e.kind = Kind::Auth;
            e.hint = Some(crate::providers::NO_AUTH_HINT.into());
        }
        (Some(403), Some(c)) => {
            e.kind = Kind::Auth;
            e.message = format!("{}: {}", e.message, c.describe("refused access with"));
            e.hint = Some(format!(
                "the token lacks the scope {}: create a token with it and run `agentenv secret update ENV --team|--personal NAME`",
                c.read_scope()
            ));
        }
        (Some(403), None) => {
            e.kind = Kind::Auth;
            e.hint =
                Some("the server refused anonymous access: add `auth:` to the provider".into());
        }
        (Some(404), _) => {
            e.kind = Kind::NotFound;
            e.hint = Some(
                "check the slug and the provider's workspace/project; a token limited to other repositories sees 404 too".into(),
            );
        }
        (Some(429), _) => {
            e.kind = Kind::Unavailable;
            e.hint = Some("the server is rate-limiting; try again in a few minutes".into());
        }
        (Some(s), _) if s >= 500 => {
            e.kind = Kind::Unavailable;
            e.hint = Some("the server failed; try again later".into());
        }
        _ => {}
    }
    e
}

/// Bounded retries of transient failures: exponential backoff with jitter.
pub const MAX_ATTEMPTS: u32 = 4;
const BACKOFF_MS: u64 = 300;

/// Run `op` until it succeeds, fails for good, or [`MAX_ATTEMPTS`] are spent.
pub fn with_retries<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if attempt + 1 < MAX_ATTEMPTS && is_transient(&e) => {
                let base = BACKOFF_MS << attempt;
                // Jitter keeps many agents that failed together from retrying in lockstep.
                let wait = base + rand::random_range(0..=base / 2);
                std::thread::sleep(std::time::Duration::from_millis(wait));
                attempt += 1;
            }
            Err(e) => {
                return Err(if attempt > 0 {
                    let mut e = e;
                    e.message = format!("{} (after {} attempts)", e.message, attempt + 1);
                    e
                } else {
                    e
                });
            }
        }
    }
}

/// An open fetch connection whose requests all carry `headers` — which `Remote::connect_auth`
/// cannot do, and Data Center's Bearer must be on the very first request. Disconnects on drop.
pub struct Connection<'r, 'c> {
    remote: &'c mut Remote<'r>,
    // libgit2 holds pointers into these until the connection ends.
    _callbacks: Box<RemoteCallbacks<'c>>,
    _proxy: git2::ProxyOptions<'c>,
    _headers: Vec<CString>,
}

impl<'r, 'c> Connection<'r, 'c> {
    pub fn open(
        remote: &'c mut Remote<'r>,
        callbacks: RemoteCallbacks<'c>,
        headers: &[Zeroizing<String>],
    ) -> std::result::Result<Connection<'r, 'c>, git2::Error> {
        let callbacks = Box::new(callbacks);
        let headers: Vec<CString> = headers
            .iter()
            .map(|h| CString::new(h.as_bytes()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| git2::Error::from_str("a header holds a NUL byte"))?;
        let mut ptrs: Vec<*mut std::os::raw::c_char> =
            headers.iter().map(|h| h.as_ptr() as *mut _).collect();
        let array = libgit2_sys::git_strarray {
            strings: ptrs.as_mut_ptr(),
            count: ptrs.len(),
        };
        let raw_callbacks = callbacks.raw();
        let proxy = git2::ProxyOptions::new();
        let raw_proxy = proxy.raw();
        // SAFETY: the remote, callbacks, proxy options and header strings outlive the
        // connection (it owns them, as git2's own `RemoteConnection` does); libgit2 copies
        // the header array itself.
        let rc = unsafe {
            libgit2_sys::git_remote_connect(
                remote.raw(),
                libgit2_sys::GIT_DIRECTION_FETCH,
                &raw_callbacks,
                &raw_proxy,
                &array,
            )
        };
        if rc < 0 {
            return Err(git2::Error::last_error(rc));
        }
        Ok(Connection {
            remote,
            _callbacks: callbacks,
            _proxy: proxy,
            _headers: headers,
        })
    }

    pub fn list(&self) -> std::result::Result<&[git2::RemoteHead<'_>], git2::Error> {
        self.remote.list()
    }

    pub fn default_branch(&self) -> std::result::Result<git2::Buf, git2::Error> {
        self.remote.default_branch()
    }

    pub fn remote(&mut self) -> &mut Remote<'r> {
        self.remote
    }
}

impl Drop for Connection<'_, '_> {
    fn drop(&mut self) {
        let _ = self.remote.disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_from_libgit2_messages() {
        assert_eq!(http_status("unexpected http status code: 502"), Some(502));
        assert_eq!(
            http_status("x: unexpected http status code: 404 (y)"),
            Some(404)
        );
        assert_eq!(http_status("early EOF"), None);
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let e = |k, m: &str| Error::new(k, m);
        assert!(is_transient(&e(
            Kind::Unavailable,
            "unexpected http status code: 503"
        )));
        assert!(is_transient(&e(
            Kind::Unavailable,
            "unexpected http status code: 429"
        )));
        assert!(is_transient(&e(
            Kind::Unavailable,
            "connection reset by peer"
        )));
        assert!(!is_transient(&e(
            Kind::Unavailable,
            "unexpected http status code: 404"
        )));
        assert!(!is_transient(&e(
            Kind::Unavailable,
            "unexpected http status code: 403"
        )));
        assert!(!is_transient(&e(Kind::Auth, AUTH_MARK)));
        let mut n = 0;
        let r: Result<()> = with_retries(|| {
            n += 1;
            Err(e(Kind::NotFound, "unexpected http status code: 404"))
        });
        assert!(r.is_err());
        assert_eq!(n, 1);
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
