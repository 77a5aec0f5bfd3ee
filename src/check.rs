//! The connection test behind `agentenv check`: per provider, authenticate and confirm the
//! workspace or project; per repository, git access (ls-remote, with the credential provision
//! uses) and API access. Each check's outcome carries the fix when it failed.
//!
//! Secrets that cannot be resolved (not stored on this machine, no age identity, a variable
//! unset) do not stop the run: each check that needs one fails naming the secret and how to
//! provide it, the others still run, and a secret no provider uses gets a check of its own.

use std::path::Path;

use serde::Serialize;

use crate::bitbucket::{ApiError, ApiErrorKind, Client, Options, seg};
use crate::error::{Error, Kind, Result};
use crate::secrets::{ResolvedSecrets, Unresolved};
use crate::spec::{AuthType, LoadedEnv, Provider, ProviderKind};

/// One check's outcome.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// secret | auth | workspace | project | git | api
    pub check: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The secret that could not be resolved, when that is why the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub ok: bool,
    /// What was found, or what failed.
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The kind of a failure.
    #[serde(skip)]
    pub kind: Option<Kind>,
}

impl Outcome {
    fn new(check: &'static str, provider: Option<&str>, repo: Option<&str>) -> Outcome {
        Outcome {
            check,
            provider: provider.map(str::to_string),
            repo: repo.map(str::to_string),
            secret: None,
            ok: true,
            detail: String::new(),
            fix: None,
            kind: None,
        }
    }
    fn ok(mut self, detail: impl Into<String>) -> Outcome {
        self.detail = detail.into();
        self
    }
    fn fail(mut self, e: Error) -> Outcome {
        self.ok = false;
        self.kind = Some(e.kind);
        self.detail = e.message;
        self.fix = e.hint;
        self
    }
    /// Failed because `u` could not be resolved; `what` says what needed it.
    fn unresolved(mut self, u: &Unresolved, what: Option<String>) -> Outcome {
        let e = u.error();
        self.secret = Some(u.name.clone());
        match what {
            Some(what) => self.fail(e.context(what)),
            None => self.fail(e),
        }
    }
}

/// The plain-language fix for an API failure the client's own message does not already give.
fn api_error(e: ApiError, what: &str) -> Error {
    let hint = match e.kind {
        ApiErrorKind::NotFound => Some(format!(
            "{what} does not exist, or the token cannot see it: check the spelling in the spec; an access token limited to other repositories or another workspace/project gets 404 too"
        )),
        ApiErrorKind::RateLimited => Some(
            "Bitbucket is rate-limiting this account: wait (the message says how long) and run check again; lower `rate_limit.per_hour` if agents share the token".into(),
        ),
        ApiErrorKind::Unavailable => Some(
            "the server could not be reached or failed: check `api_url`/`base_url`, your network and proxy, then run check again".into(),
        ),
        ApiErrorKind::AuthFailed | ApiErrorKind::Forbidden => None,
        _ => None,
    };
    let mut err: Error = e.into();
    err = err.context(format!("GET {what}"));
    match hint {
        Some(h) => err.with_hint(h),
        None => err,
    }
}

async fn provider_checks(
    name: &str,
    provider: &Provider,
    secrets: &ResolvedSecrets,
    out: &mut Vec<Outcome>,
) -> Option<Client> {
    let p = Some(name);
    let client = match Client::from_provider(
        name,
        provider,
        secrets,
        Options {
            max_retries: 2,
            ..Options::default()
        },
    ) {
        Ok(c) => c,
        Err(e) => {
            out.push(Outcome::new("auth", p, None).fail(Error::from(e)));
            return None;
        }
    };
    let auth_type = provider.auth.as_ref().map(|a| a.kind);
    match (provider.kind, auth_type) {
        (ProviderKind::Cloud, Some(AuthType::ApiToken)) => match client.current_user().await {
            Ok(u) => {
                let who = u.label().unwrap_or("?");
                out.push(
                    Outcome::new("auth", p, None).ok(format!("API token accepted (user {who})")),
                );
            }
            Err(e) => out.push(Outcome::new("auth", p, None).fail(api_error(e, "/user"))),
        },
        (_, None) => out.push(Outcome::new("auth", p, None).ok("no `auth:`: anonymous access")),
        _ => {}
    }
    let (check, path, what) = match &client.flavor {
        crate::bitbucket::Flavor::Cloud { workspace } => (
            "workspace",
            format!("/workspaces/{}", seg(workspace)),
            format!("workspace `{workspace}`"),
        ),
        crate::bitbucket::Flavor::DataCenter { project } => (
            "project",
            format!("/api/1.0/projects/{}", seg(project)),
            format!("project `{project}`"),
        ),
    };
    match client.owner().await {
        Ok(()) => out.push(Outcome::new(check, p, None).ok(format!("{what} is reachable"))),
        Err(e) => out.push(Outcome::new(check, p, None).fail(api_error(e, &path))),
    }
    Some(client)
}

async fn repo_api_check(client: &Client, slug: &str) -> std::result::Result<String, Error> {
    let path = match &client.flavor {
        crate::bitbucket::Flavor::Cloud { workspace } => {
            format!("/repositories/{}/{}", seg(workspace), seg(slug))
        }
        crate::bitbucket::Flavor::DataCenter { project } => {
            format!("/api/1.0/projects/{}/repos/{}", seg(project), seg(slug))
        }
    };
    client
        .repository(&client.repo(slug))
        .await
        .map(|_| format!("GET {path} ok"))
        .map_err(|e| api_error(e, &path))
}

/// Every check's outcome, in order: providers first, then repositories.
#[derive(Debug, Serialize)]
pub struct Report {
    pub checks: Vec<Outcome>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|o| o.ok)
    }

    /// `Ok` when every check passed; else one error whose kind is that of the failures when
    /// they agree.
    pub fn result(&self) -> Result<()> {
        let failed: Vec<&Outcome> = self.checks.iter().filter(|o| !o.ok).collect();
        let Some(first) = failed.first() else {
            return Ok(());
        };
        let kind = first.kind.unwrap_or(Kind::Failure);
        // Kinds that share an exit code (auth failed, forbidden) are one family here.
        let same = |o: &Outcome| o.kind.map(Kind::exit_code) == Some(kind.exit_code());
        let kind = if failed.iter().all(|o| same(o)) {
            kind
        } else {
            Kind::Failure
        };
        Err(Error::new(
            kind,
            format!("{} of {} checks failed", failed.len(), self.checks.len()),
        ))
    }
}

/// Run every check of the spec at `env_path`. Only a spec that does not load or secrets files
/// that cannot be read are an `Err`; a failed check, a missing secret included, is an outcome
/// in the report.
pub fn check(env_path: &Path) -> Result<Report> {
    let env = LoadedEnv::load(env_path)?;
    let partial = crate::secrets::resolve_available(&env, &crate::secrets::process_env)?;
    let secrets = &partial.secrets;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("cannot start the async runtime: {e}")))?;
    let mut out: Vec<Outcome> = Vec::new();
    // The first secret of each provider's auth that is missing: its checks cannot run.
    let mut uncredentialed: std::collections::BTreeMap<&str, &Unresolved> = Default::default();
    for (name, provider) in &env.spec.providers {
        let missing = auth_secrets(provider).find_map(|(field, secret)| {
            let u = partial.unresolved.iter().find(|u| u.name == secret)?;
            Some((field, u))
        });
        if let Some((field, u)) = missing {
            out.push(
                Outcome::new("auth", Some(name), None).unresolved(u, Some(format!("auth.{field}"))),
            );
            uncredentialed.insert(name, u);
        }
    }
    for u in &partial.unresolved {
        let by_provider = env
            .spec
            .providers
            .values()
            .any(|p| auth_secrets(p).any(|(_, s)| s == u.name));
        if !by_provider {
            out.push(Outcome::new("secret", None, None).unresolved(u, None));
        }
    }
    let mut clients = std::collections::BTreeMap::new();
    for (name, provider) in &env.spec.providers {
        if uncredentialed.contains_key(name.as_str()) {
            continue;
        }
        if let Some(c) = rt.block_on(provider_checks(name, provider, secrets, &mut out)) {
            clients.insert(name.clone(), c);
        }
    }
    for repo in &env.spec.repos {
        let name = repo.name();
        let provider = repo.provider.as_deref();
        if let Some(u) = provider.and_then(|p| uncredentialed.get(p)) {
            let e = Error::new(
                u.kind,
                format!(
                    "not checked: provider `{}` has no credential (secret {} cannot be resolved here)",
                    provider.unwrap_or_default(),
                    u.name
                ),
            );
            let e = match &u.hint {
                Some(h) => e.with_hint(h.clone()),
                None => e,
            };
            for check in ["git", "api"] {
                let mut o = Outcome::new(check, provider, Some(&name));
                o.secret = Some(u.name.clone());
                out.push(o.fail(e.clone()));
            }
            continue;
        }
        let git = match crate::branches::repo_and_auth(&env, secrets, &name)
            .and_then(|(plan, auth)| crate::branches::ls_remote(&plan, &auth))
        {
            Ok(refs) => Outcome::new("git", provider, Some(&name)).ok(format!(
                "ls-remote ok: {} branches{}",
                refs.branches.len(),
                refs.default
                    .map(|d| format!(", default {d}"))
                    .unwrap_or_default()
            )),
            Err(e) => Outcome::new("git", provider, Some(&name)).fail(e),
        };
        out.push(git);
        // The API knows repositories by slug; a plain URL without a provider has no API.
        let slug = repo
            .slug
            .as_deref()
            .filter(|s| !crate::spec::looks_like_url(s))
            .map(str::to_string)
            .or_else(|| repo.provider.as_ref().map(|_| name.clone()));
        if let (Some(client), Some(slug)) = (provider.and_then(|p| clients.get(p)), slug) {
            let api = match rt.block_on(repo_api_check(client, &slug)) {
                Ok(d) => Outcome::new("api", provider, Some(&name)).ok(d),
                Err(e) => Outcome::new("api", provider, Some(&name)).fail(e),
            };
            out.push(api);
        }
    }
    for o in &mut out {
        o.detail = secrets.redactor().redact(&o.detail);
        o.fix = o.fix.take().map(|f| secrets.redactor().redact(&f));
    }
    Ok(Report { checks: out })
}

/// The secret names a provider's auth refers to, with their fields.
fn auth_secrets(p: &Provider) -> impl Iterator<Item = (&'static str, &str)> {
    p.auth.iter().flat_map(|a| {
        [
            ("token", &a.token),
            ("client_id", &a.client_id),
            ("client_secret", &a.client_secret),
        ]
        .into_iter()
        .filter_map(|(field, name)| Some((field, name.as_deref()?)))
    })
}
