//! The typed model of an environment spec. The JSON Schema in `schema/` is generated from
//! these types (schemars), so a doc comment here is what an editor shows the user.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Secret names: what a step sees as an environment variable, so shell-safe upper case.
pub const SECRET_NAME_PATTERN: &str = "^[A-Z_][A-Z0-9_]*$";

/// An agentenv environment: which repositories an agent works on, how to reach them,
/// what to run to prepare them, and which tools the agent gets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "agentenv environment spec")]
pub struct Environment {
    /// The spec format version: write `1`, the only one so far.
    #[schemars(range(min = 1))]
    pub version: u32,
    /// A short name for this environment: letters, digits, `.`, `_`, `-` (it names the default
    /// workdir `agentenv-work/NAME` and appears in logs).
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    pub name: String,
    /// Where repositories live and how to authenticate, by a name of your choice.
    #[serde(default)]
    pub providers: BTreeMap<String, Provider>,
    /// Which repositories and branches provision and the tools may touch.
    #[serde(default)]
    pub scope: Scope,
    /// The repositories to clone into the workdir.
    #[serde(default)]
    pub repos: Vec<Repo>,
    /// Where the age-encrypted secrets live and who can decrypt them.
    #[serde(default)]
    pub secrets: Option<Secrets>,
    /// Setup steps, run in order after the repositories are in place.
    #[serde(default)]
    pub setup: Vec<Step>,
    /// What the MCP server exposes.
    #[serde(default)]
    pub serve: Serve,
    /// How `agentenv run` starts the agent: its command, and which secrets it may see.
    #[serde(default)]
    pub agent: Option<Agent>,
    /// Defaults for `agentenv export kubernetes`: when and where the agent runs on a cluster.
    #[serde(default)]
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Bitbucket Cloud (bitbucket.org).
    Cloud,
    /// Bitbucket Data Center / Server.
    Datacenter,
}

/// A Bitbucket instance and the credentials to use with it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// `cloud` (bitbucket.org; needs `workspace`) or `datacenter` (your own server; needs
    /// `base_url` and `project`).
    pub kind: ProviderKind,
    /// Cloud: the workspace slug.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Data Center: the server's base URL, e.g. `https://bitbucket.acme.example`.
    #[serde(default)]
    #[schemars(url)]
    pub base_url: Option<String>,
    /// Data Center: the project key, e.g. `PAY`.
    #[serde(default)]
    pub project: Option<String>,
    /// Override the REST API root (Cloud default `https://api.bitbucket.org/2.0`;
    /// Data Center default `{base_url}/rest`). For proxies and loopback emulators.
    #[serde(default)]
    #[schemars(url)]
    pub api_url: Option<String>,
    /// Override the git root (Cloud default `https://bitbucket.org`; Data Center default
    /// `{base_url}/scm`).
    #[serde(default)]
    #[schemars(url)]
    pub git_url: Option<String>,
    /// How to authenticate. Without it, repositories are cloned anonymously.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Client-side request budget for the REST API.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthType {
    /// Cloud API token: REST with Basic `email:token`, git with `x-bitbucket-api-token-auth`.
    ApiToken,
    /// Cloud repository/project/workspace access token or OAuth token: Bearer; git `x-token-auth`.
    AccessToken,
    /// Data Center HTTP access token: `Authorization: Bearer` on git and REST.
    HttpAccessToken,
    /// Cloud OAuth consumer, client-credentials grant.
    OauthClientCredentials,
    /// Removed: Atlassian turned off Bitbucket app passwords in 2026, so agentenv refuses it.
    /// Use `api-token` (Cloud API token with scopes) or `access-token` instead.
    #[schemars(extend("deprecated" = true))]
    AppPassword,
}

/// Credentials. Every secret field holds the NAME of a secret, never its value.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// Which credential: `api-token` (Cloud, with `email` and `token`), `access-token` (Cloud,
    /// `token`), `http-access-token` (Data Center, `token`), `oauth-client-credentials` (Cloud,
    /// `client_id` and `client_secret`).
    #[serde(rename = "type")]
    pub kind: AuthType,
    /// Cloud `api-token`: the Atlassian account email (used for REST Basic auth). A plain
    /// address, not a secret name.
    #[serde(default)]
    #[schemars(email)]
    pub email: Option<String>,
    /// Cloud: the Bitbucket username (optional; git accepts it instead of the fixed API-token name).
    #[serde(default)]
    pub username: Option<String>,
    /// `api-token`, `access-token`, `http-access-token`: the NAME of the secret holding the
    /// token, e.g. `BITBUCKET_API_TOKEN`.
    #[serde(default)]
    #[schemars(with = "Option<SecretName>")]
    pub token: Option<String>,
    /// `oauth-client-credentials`: the NAME of the secret holding the client id (key).
    #[serde(default)]
    #[schemars(with = "Option<SecretName>")]
    pub client_id: Option<String>,
    /// `oauth-client-credentials`: the NAME of the secret holding the client secret.
    #[serde(default)]
    #[schemars(with = "Option<SecretName>")]
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per rolling hour this provider may spend (default 1000).
    #[schemars(range(min = 1))]
    pub per_hour: u32,
}

/// Regexes that bound what provision and the tools may touch. Absent means "everything".
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Regex matched against a repository's slug (and its full name `workspace/slug`).
    #[serde(default)]
    pub repositories: Option<String>,
    /// Regex matched against branch names.
    #[serde(default)]
    pub branches: Option<String>,
}

/// One repository to clone.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    /// The provider (a key of `providers`) this repository lives on. Required with `slug`.
    #[serde(default)]
    pub provider: Option<String>,
    /// The repository slug on the provider, e.g. `payments-api` (or its full clone URL; a pasted
    /// `git clone ` prefix is stripped). Needs `provider`. Give `slug` or `url`, not both.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub slug: Option<String>,
    /// A clone URL or a local path (relative paths are relative to the spec file). With
    /// `provider`, the provider's auth applies to it. Give `slug` or `url`, not both.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub url: Option<String>,
    /// The branch to check out (must match `scope.branches`). Default: the remote's default
    /// branch.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub branch: Option<String>,
    /// History depth: 1 (default) is the branch tip only; 0 is full history. Only the branch
    /// is fetched either way.
    #[serde(default = "default_depth")]
    #[schemars(range(max = MAX_DEPTH))]
    pub depth: u32,
    /// Where to put the checkout, relative to the workdir, without `..`. Default: the
    /// repository name.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub path: Option<String>,
}

/// libgit2 takes the depth as an `i32`.
pub const MAX_DEPTH: u32 = i32::MAX as u32;

fn default_depth() -> u32 {
    1
}

/// What a "clone" button or a terminal paste leaves around a URL: `git clone URL` → `URL`.
pub fn strip_clone_command(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix("git clone ").map(str::trim).unwrap_or(s)
}

/// Whether a `slug:` value is really a clone URL (`https://…`, `ssh://…`, `git@host:…`).
pub fn looks_like_url(s: &str) -> bool {
    s.contains("://") || (s.contains('@') && s.contains(':'))
}

impl Repo {
    /// Repository `slug` of `provider`, as a `repos:` entry with the defaults would name it
    /// (for the in-scope repositories the spec does not list).
    pub fn on_provider(provider: &str, slug: &str) -> Repo {
        Repo {
            provider: Some(provider.to_string()),
            slug: Some(slug.to_string()),
            url: None,
            branch: None,
            depth: 1,
            path: None,
        }
    }

    /// The name the tools and the CLI use for this repository: the slug, or for a URL
    /// its last path segment without `.git`. A local path such as `..` says nothing, so
    /// then the last segment of `path` names it.
    pub fn name(&self) -> String {
        let raw = strip_clone_command(self.slug.as_deref().or(self.url.as_deref()).unwrap_or(""));
        let last = raw
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or(raw);
        let name = last.strip_suffix(".git").unwrap_or(last);
        if !matches!(name, "" | "." | "..") {
            return name.to_string();
        }
        self.path
            .as_deref()
            .and_then(|p| p.rsplit('/').find(|s| !s.is_empty() && *s != "."))
            .unwrap_or(name)
            .to_string()
    }

    /// The checkout's path relative to the workdir.
    pub fn checkout_path(&self) -> String {
        self.path.clone().unwrap_or_else(|| self.name())
    }

    /// `owner/slug`: the Cloud workspace or Data Center project and the slug, when known.
    /// `scope.repositories` may match it as well as the bare name.
    pub fn full_name(&self, providers: &BTreeMap<String, Provider>) -> Option<String> {
        match (self.slug.as_deref(), self.url.as_deref()) {
            (Some(slug), _) if !looks_like_url(slug) => {
                let provider = providers.get(self.provider.as_deref()?)?;
                let owner = match provider.kind {
                    ProviderKind::Cloud => provider.workspace.as_deref()?,
                    ProviderKind::Datacenter => provider.project.as_deref()?,
                };
                Some(format!("{owner}/{slug}"))
            }
            (Some(url), _) | (None, Some(url)) => {
                let url = url.trim_end_matches('/');
                let mut parts = url.rsplit(['/', ':']);
                let last = parts.next()?;
                let owner = parts.next().filter(|o| !o.is_empty() && !o.contains('.'))?;
                Some(format!(
                    "{owner}/{}",
                    last.strip_suffix(".git").unwrap_or(last)
                ))
            }
            (None, None) => None,
        }
    }
}

/// Where secrets live.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Who can decrypt team secrets: age X25519 recipients (`age1…`) or SSH public keys
    /// (`ssh-ed25519 …`, `ssh-rsa …`).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The team secrets file, relative to the spec file (committed to git).
    #[serde(default)]
    pub team: Option<String>,
    /// Secret names that may also come from the process environment (Kubernetes Secrets, CI).
    #[serde(default)]
    #[schemars(with = "Vec<SecretName>")]
    pub from_env: Vec<String>,
    /// Secret names each person keeps in their own personal file (`agentenv secret create ENV
    /// --personal NAME`), such as a per-user token. Declared here so that `validate` knows them
    /// without anyone's file, and so that the setup steps receive them.
    #[serde(default)]
    #[schemars(with = "Vec<SecretName>")]
    pub personal: Vec<String>,
}

/// One setup step: `sh -c RUN`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A unique name; it prefixes the step's output and names its log file (no `/`, not
    /// starting with `.`).
    #[schemars(regex(pattern = r"^[^./\\\x00-\x1f][^/\\\x00-\x1f]*$"))]
    pub name: String,
    /// The shell command (run with `sh -c`). Secrets are available as environment variables.
    #[schemars(length(min = 1))]
    pub run: String,
    /// Working directory relative to the workdir, without `..`. Default: the workdir.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub dir: Option<String>,
    /// Kill the step (and everything it started) after this long, e.g. `90s`, `10m`, `1h`.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Extra environment variables (values are strings: quote numbers, `"5"`).
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}))]
    pub env: BTreeMap<String, String>,
    /// Skip the step when this path (relative to the workdir, without `..`) exists.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub creates: Option<String>,
    /// Run even when the fingerprint is unchanged.
    #[serde(default)]
    pub always: bool,
    /// Go on with later steps when this one fails.
    #[serde(default)]
    pub continue_on_error: bool,
}

/// What `agentenv serve` exposes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Serve {
    /// Tool names, or `default` for the default set (`agentenv serve` refuses unknown names
    /// at start-up).
    #[serde(default = "default_tools")]
    #[schemars(inner(length(min = 1)))]
    pub tools: Vec<String>,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            tools: default_tools(),
        }
    }
}

fn default_tools() -> Vec<String> {
    vec!["default".to_string()]
}

/// How `agentenv run` starts the agent. Secret values stay out of the agent's environment
/// unless named here; setup steps and the MCP server get theirs regardless.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The agent's command line (program and arguments), used when `agentenv run` and
    /// `agentenv export kubernetes` are given none after `--`.
    #[serde(default)]
    #[schemars(inner(length(min = 1)))]
    pub command: Vec<String>,
    /// NAMES of secrets the agent gets as environment variables of the same name. Every
    /// other variable holding a secret value is removed from the agent's environment.
    #[serde(default)]
    #[schemars(with = "Vec<SecretName>")]
    pub env: Vec<String>,
    /// Let git inside the workdir keep authenticating to the providers, through
    /// `agentenv git-credential`. Off by default: a credential helper hands the token to any
    /// process that asks for it, so this gives the agent the token in effect.
    #[serde(default)]
    pub git_credentials: bool,
}

/// Defaults for `agentenv export kubernetes` (its flags override them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// When to run, in cron syntax (five fields, e.g. `0 6 * * 1-5`, or `@hourly`, `@daily`…).
    /// Without it (and without `--schedule`) the export is a one-off Job.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub cron: Option<String>,
    /// The time zone the cron expression is read in (IANA name, e.g. `Europe/Berlin`).
    /// Default: the cluster's (UTC on most).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub time_zone: Option<String>,
    /// The container image: agentenv, git and the agent (see `deploy/Containerfile`).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub image: Option<String>,
    /// The node-level clone cache: `hostpath:/var/cache/agentenv` (the default, one
    /// directory per environment below it) or `pvc:CLAIM`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^(hostpath:/.+|pvc:[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$"))]
    pub cache: Option<String>,
    /// CPU and memory the pod asks for and may not exceed.
    #[serde(default)]
    pub resources: Option<Resources>,
    /// Stop the run after this long (`activeDeadlineSeconds`), e.g. `30m`, `2h`. Default `1h`.
    #[serde(default)]
    pub deadline: Option<DurationSpec>,
    /// How many times a failed run is retried (`backoffLimit`). Default 0: a scheduled agent
    /// run that failed is looked at, not repeated.
    #[serde(default)]
    pub backoff_limit: Option<u32>,
    /// The Kubernetes Secret holding the age identity (key `key.txt`), mounted as a file.
    /// Default: `NAME-age-key`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub age_key_secret: Option<String>,
    /// The Kubernetes Secret holding the values of `secrets.from_env`, one key per name.
    /// Default: `NAME-secrets`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub env_secret: Option<String>,
}

/// Kubernetes resource requests and limits of the run's container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// What the scheduler reserves, e.g. `{cpu: 500m, memory: 1Gi}`.
    #[serde(default)]
    pub requests: Option<ResourceAmounts>,
    /// What the container may not exceed, e.g. `{cpu: "2", memory: 4Gi}`.
    #[serde(default)]
    pub limits: Option<ResourceAmounts>,
}

/// Amounts in Kubernetes quantity syntax (quote plain numbers: `"2"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceAmounts {
    /// Cores: `500m`, `"2"`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?m?$"))]
    pub cpu: Option<String>,
    /// Bytes: `512Mi`, `4Gi`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?([EPTGMK]i?|[mk])?$"))]
    pub memory: Option<String>,
    /// Local scratch space: the workdir and the temporary directories (`emptyDir`s), e.g. `10Gi`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?([EPTGMK]i?|[mk])?$"))]
    pub ephemeral_storage: Option<String>,
}

/// A duration written as numbers with units: `500ms`, `90s`, `10m`, `2h`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

/// The JSON Schema pattern of [`DurationSpec`]; `DurationSpec::parse` accepts exactly these.
pub const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";

impl DurationSpec {
    pub fn parse(text: &str) -> Result<Self, String> {
        let s = text.trim();
        let how = "write a number and a unit (ms, s, m or h), like `90s`, `10m` or `1h30m`";
        if s.is_empty() {
            return Err(format!("the duration is empty; {how}"));
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("`{s}` is not a duration; {how}"));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{s}` is too long a duration"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (unit, after) = rest.split_at(unit_len);
            let millis_per_unit: u64 = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "" => return Err(format!("`{s}` has no unit; {how}")),
                other => {
                    let short = match other.trim().trim_end_matches('s') {
                        "sec" | "second" => Some("s"),
                        "min" | "minute" => Some("m"),
                        "hr" | "hour" => Some("h"),
                        "millisecond" | "msec" => Some("ms"),
                        _ => None,
                    };
                    return Err(match short {
                        Some(u) => format!(
                            "write `{n}{u}` instead of `{s}`: units are ms, s, m or h, with no space"
                        ),
                        None => format!("unknown duration unit `{}` in `{s}`; {how}", other.trim()),
                    });
                }
            };
            let part = n
                .checked_mul(millis_per_unit)
                .ok_or_else(|| format!("`{s}` is too long a duration"))?;
            total = total
                .checked_add(Duration::from_millis(part))
                .ok_or_else(|| format!("`{s}` is too long a duration"))?;
            rest = after;
        }
        if total.is_zero() {
            return Err(format!("duration `{s}` must be greater than zero"));
        }
        Ok(DurationSpec(total))
    }
}

/// Schema-only stand-in for a field holding the NAME of a secret (the Rust field stays a
/// `String`): editors see the pattern, validation points at the offending value.
pub struct SecretName;

impl JsonSchema for SecretName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretName".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": SECRET_NAME_PATTERN,
            "description": "The NAME of a secret (upper case, digits, `_`), never its value, e.g. `BITBUCKET_API_TOKEN`. Values live in the age-encrypted team file, the personal file, or the environment (`secrets.from_env`)."
        })
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DurationSpec::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "Numbers with units ms, s, m or h, e.g. `90s`, `10m`, `1h30m`."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let secs = |s: &str| DurationSpec::parse(s).map(|d| d.0.as_millis());
        assert_eq!(secs("90s"), Ok(90_000));
        assert_eq!(secs("10m"), Ok(600_000));
        assert_eq!(secs("1h30m"), Ok(5_400_000));
        assert_eq!(secs("500ms"), Ok(500));
        assert!(secs("90").unwrap_err().contains("no unit"));
        assert!(secs("10 minutes").unwrap_err().contains("`10m`"));
        assert!(secs("0s").unwrap_err().contains("greater than zero"));
        assert!(secs("99999999999999999999h").is_err());
        assert!(secs("1.5h").is_err());
        assert!(secs("").is_err());
        let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
        for ok in ["90s", "10m", "1h30m", "500ms"] {
            assert!(pattern.is_match(ok), "{ok}");
        }
    }

    #[test]
    fn repo_names_ignore_a_pasted_clone_command() {
        let repo = |slug: Option<&str>, url: Option<&str>| Repo {
            provider: None,
            slug: slug.map(String::from),
            url: url.map(String::from),
            branch: None,
            depth: 1,
            path: None,
        };
        assert_eq!(repo(Some("payments-api"), None).name(), "payments-api");
        assert_eq!(
            repo(
                Some("git clone https://bitbucket.org/acme/payments-api.git"),
                None
            )
            .name(),
            "payments-api"
        );
        assert_eq!(
            repo(None, Some("git@host:team/ledger.git")).name(),
            "ledger"
        );
        assert_eq!(repo(None, Some("../ledger/")).name(), "ledger");
        let this_repo = Repo {
            path: Some("./agentenv/".into()),
            ..repo(None, Some(".."))
        };
        assert_eq!(this_repo.name(), "agentenv");
        assert_eq!(
            repo(None, Some("https://bitbucket.org/acme/ledger.git"))
                .full_name(&BTreeMap::new())
                .as_deref(),
            Some("acme/ledger")
        );
    }
}
