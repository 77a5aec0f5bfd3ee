//! The typed model of an environment spec. The JSON Schema in `schema/` is generated from
//! these types (schemars), so a doc comment here is what an editor shows the user.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An agentenv environment: which repositories an agent works on, how to reach them,
/// what to run to prepare them, and which tools the agent gets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Spec format version. Only `1` exists.
    pub version: u32,
    /// A short name for this environment (used for the default workdir and in logs).
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
    pub kind: ProviderKind,
    /// Cloud: the workspace slug.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Data Center: the server's base URL, e.g. `https://bitbucket.acme.example`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Data Center: the project key, e.g. `PAY`.
    #[serde(default)]
    pub project: Option<String>,
    /// Override the REST API root (Cloud default `https://api.bitbucket.org/2.0`;
    /// Data Center default `{base_url}/rest`). For proxies and loopback emulators.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Override the git root (Cloud default `https://bitbucket.org`; Data Center default
    /// `{base_url}/scm`).
    #[serde(default)]
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
    /// Refused: Atlassian removed app passwords in 2026. Kept so the error can say what to use.
    AppPassword,
}

/// Credentials. Every secret field holds the NAME of a secret, never its value.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(rename = "type")]
    pub kind: AuthType,
    /// Cloud `api-token`: the Atlassian account email (used for REST Basic auth).
    #[serde(default)]
    pub email: Option<String>,
    /// Cloud: the Bitbucket username (optional; git accepts it instead of the fixed API-token name).
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the secret holding the token.
    #[serde(default)]
    pub token: Option<String>,
    /// `oauth-client-credentials`: name of the secret holding the client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// `oauth-client-credentials`: name of the secret holding the client secret.
    #[serde(default)]
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per rolling hour this provider may spend (default 1000).
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
    /// The provider (a key of `providers`) this repository lives on.
    #[serde(default)]
    pub provider: Option<String>,
    /// The repository slug on the provider (or a full clone URL).
    #[serde(default)]
    pub slug: Option<String>,
    /// A clone URL or a local path (relative paths are relative to the spec file).
    #[serde(default)]
    pub url: Option<String>,
    /// The branch to check out. Default: the remote's default branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// History depth: 1 (default) is the branch tip only; 0 is full history.
    #[serde(default = "default_depth")]
    pub depth: u32,
    /// Where to put the checkout, relative to the workdir. Default: the repository name.
    #[serde(default)]
    pub path: Option<String>,
}

fn default_depth() -> u32 {
    1
}

impl Repo {
    /// The name the tools and the CLI use for this repository: the slug, or for a URL
    /// its last path segment without `.git`.
    pub fn name(&self) -> String {
        let raw = self.slug.as_deref().or(self.url.as_deref()).unwrap_or("");
        let raw = raw.trim().trim_start_matches("git clone ").trim();
        let last = raw
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or(raw);
        let name = last.strip_suffix(".git").unwrap_or(last);
        // `url: ..` (a repository containing the spec) has no name of its own: use its path.
        match (name, &self.path) {
            ("" | "." | "..", Some(path)) => path.trim_end_matches('/').to_string(),
            _ => name.to_string(),
        }
    }

    /// The checkout's path relative to the workdir.
    pub fn checkout_path(&self) -> String {
        self.path.clone().unwrap_or_else(|| self.name())
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
    pub from_env: Vec<String>,
}

/// One setup step: `sh -c RUN`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A unique name; it prefixes the step's output and names its log file.
    pub name: String,
    /// The shell command (run with `sh -c`). Secrets are available as environment variables.
    pub run: String,
    /// Working directory relative to the workdir. Default: the workdir.
    #[serde(default)]
    pub dir: Option<String>,
    /// Kill the step (and everything it started) after this long, e.g. `90s`, `10m`, `1h`.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Skip the step when this path (relative to the workdir) exists.
    #[serde(default)]
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
    /// Tool names, or `default` for the default set.
    #[serde(default = "default_tools")]
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

/// A duration written as a number and a unit: `500ms`, `90s`, `10m`, `2h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

impl DurationSpec {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("`{s}` is not a duration; write a number and a unit, like `90s` or `10m`")
        })?;
        let d = match unit.trim() {
            "ms" => Duration::from_millis(n),
            "s" | "" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{s}`; use ms, s, m or h"
                ));
            }
        };
        if d.is_zero() {
            return Err(format!("duration `{s}` must be greater than zero"));
        }
        Ok(DurationSpec(d))
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
            "pattern": "^[0-9]+(ms|s|m|h)$",
            "description": "A number and a unit: ms, s, m or h (e.g. `90s`, `10m`)."
        })
    }
}
