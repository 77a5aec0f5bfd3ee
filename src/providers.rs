//! The one auth table: for each (provider kind, auth type), how git authenticates, how the
//! REST API authenticates, which `auth:` fields the spec needs, which scope reading needs, and
//! what to tell the user when the server refuses the credential.
//!
//! `validate` (spec checks), git (clone, fetch, ls-remote) and the REST client all read this
//! table, so a spec that validates is one that provision and the tools can use, and a spec
//! they cannot use is refused by `validate` with the same words.

use crate::spec::{AuthType, ProviderKind};

/// Cloud API tokens over git: this fixed username, the token as password.
pub const API_TOKEN_GIT_USER: &str = "x-bitbucket-api-token-auth";
/// Cloud access tokens (repository/project/workspace, OAuth) over git.
pub const ACCESS_TOKEN_GIT_USER: &str = "x-token-auth";

/// How git presents the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitForm {
    /// HTTP Basic with this username (unless the spec gives `auth.username`) and the token.
    Basic { username: &'static str },
    /// `Authorization: Bearer <token>` on every request (Data Center).
    Bearer,
}

/// How the REST API is sent the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestForm {
    /// HTTP Basic `email:token` (Cloud API tokens).
    BasicEmailToken,
    /// `Authorization: Bearer <token>`.
    Bearer,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct AuthRule {
    pub provider: ProviderKind,
    pub auth: AuthType,
    pub git: GitForm,
    pub rest: RestForm,
    /// `auth:` fields the spec must give, and those it may give.
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
    /// The scope or permission that reading a repository needs.
    pub read_scope: &'static str,
    /// What to do when the server answers 401 to this credential.
    pub rejected_hint: &'static str,
}

const RULES: &[AuthRule] = &[
    AuthRule {
        provider: ProviderKind::Cloud,
        auth: AuthType::ApiToken,
        git: GitForm::Basic {
            username: API_TOKEN_GIT_USER,
        },
        rest: RestForm::BasicEmailToken,
        required: &["email", "token"],
        optional: &["username"],
        read_scope: "read:repository:bitbucket",
        rejected_hint: "check the three usual causes: `auth.email` must be the Atlassian account email (not the Bitbucket username or `x-bitbucket-api-token-auth`, which are for git); the token must be an API token created *with scopes* (read:repository:bitbucket at least; a token without scopes cannot call the REST API); and it must not be expired or revoked (create a new one and run `agentenv secret update ENV --team|--personal NAME`)",
    },
    AuthRule {
        provider: ProviderKind::Cloud,
        auth: AuthType::AccessToken,
        git: GitForm::Basic {
            username: ACCESS_TOKEN_GIT_USER,
        },
        rest: RestForm::Bearer,
        required: &["token"],
        optional: &[],
        read_scope: "repository",
        rejected_hint: "the access token was rejected: it may be wrong, expired or revoked (OAuth tokens last one hour); create a new repository/project/workspace access token with the `repository` scope and run `agentenv secret update ENV --team|--personal NAME`",
    },
    AuthRule {
        provider: ProviderKind::Datacenter,
        auth: AuthType::HttpAccessToken,
        git: GitForm::Bearer,
        rest: RestForm::Bearer,
        required: &["token"],
        optional: &[],
        read_scope: "REPO_READ",
        rejected_hint: "the HTTP access token was rejected: it may be wrong, expired, revoked or from another server, or lack REPO_READ on this repository (Data Center answers 401 for both); create one with at least repository read and run `agentenv secret update ENV --team|--personal NAME`",
    },
];

/// Why a (provider kind, auth type) pair cannot be used, with what to use instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub hint: String,
}

impl From<Refusal> for crate::Error {
    fn from(r: Refusal) -> crate::Error {
        crate::Error::input(r.message).with_hint(r.hint)
    }
}

/// The rule for `auth` on a `provider` kind, or why there is none.
pub fn rule(provider: ProviderKind, auth: AuthType) -> Result<&'static AuthRule, Refusal> {
    if let Some(r) = RULES
        .iter()
        .find(|r| r.provider == provider && r.auth == auth)
    {
        return Ok(r);
    }
    let refuse = |message: String, hint: &str| Refusal {
        message,
        hint: hint.to_string(),
    };
    Err(match (provider, auth) {
        (ProviderKind::Cloud, AuthType::AppPassword) => refuse(
            "app passwords are no longer accepted: Atlassian removed Bitbucket app passwords in 2026".into(),
            "create an API token with scopes (Atlassian account settings → Security → API tokens; scopes read:repository:bitbucket, plus read:pullrequest:bitbucket and read:pipeline:bitbucket for those tools) and write `type: api-token` with `email` and `token`; or use a repository, project or workspace access token with `type: access-token`",
        ),
        (ProviderKind::Datacenter, AuthType::AppPassword) => refuse(
            "app passwords are no longer accepted: Atlassian removed Bitbucket app passwords in 2026".into(),
            "create an HTTP access token (personal, project or repository) and write `type: http-access-token` with `token`",
        ),
        (_, AuthType::OauthClientCredentials) => refuse(
            "`oauth-client-credentials` is not supported by agentenv".into(),
            "on Cloud use a workspace, project or repository access token (`type: access-token` with `token`), or an API token with scopes (`type: api-token` with `email` and `token`); on Data Center `type: http-access-token`",
        ),
        (ProviderKind::Datacenter, t) => refuse(
            format!("`{}` is a Bitbucket Cloud auth type", auth_name(t)),
            "Data Center uses HTTP access tokens: `type: http-access-token` with `token`",
        ),
        (ProviderKind::Cloud, t) => refuse(
            format!("`{}` is a Data Center auth type", auth_name(t)),
            "on Cloud use `type: api-token` (with `email` and `token`) or `type: access-token` (with `token`)",
        ),
    })
}

/// The auth type as the spec writes it.
pub fn auth_name(t: AuthType) -> &'static str {
    match t {
        AuthType::ApiToken => "api-token",
        AuthType::AccessToken => "access-token",
        AuthType::HttpAccessToken => "http-access-token",
        AuthType::OauthClientCredentials => "oauth-client-credentials",
        AuthType::AppPassword => "app-password",
    }
}

/// The provider kind as users call it.
pub fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Cloud => "Bitbucket Cloud",
        ProviderKind::Datacenter => "Bitbucket Data Center",
    }
}

/// What to do when a server answers 401 and the provider has no `auth:` at all.
pub const NO_AUTH_HINT: &str = "the repository needs credentials: add `auth:` to its provider (api-token for Cloud, http-access-token for Data Center) and `provider:` to the repository";

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ProviderKind; 2] = [ProviderKind::Cloud, ProviderKind::Datacenter];
    const TYPES: [AuthType; 5] = [
        AuthType::ApiToken,
        AuthType::AccessToken,
        AuthType::HttpAccessToken,
        AuthType::OauthClientCredentials,
        AuthType::AppPassword,
    ];

    #[test]
    fn every_pair_is_either_a_rule_or_a_refusal_with_a_hint() {
        let mut usable = Vec::new();
        for k in KINDS {
            for t in TYPES {
                match rule(k, t) {
                    Ok(r) => {
                        assert!(r.required.contains(&"token"));
                        usable.push((k, t));
                    }
                    Err(refusal) => assert!(!refusal.hint.is_empty()),
                }
            }
        }
        assert_eq!(
            usable,
            [
                (ProviderKind::Cloud, AuthType::ApiToken),
                (ProviderKind::Cloud, AuthType::AccessToken),
                (ProviderKind::Datacenter, AuthType::HttpAccessToken),
            ]
        );
    }

    #[test]
    fn cloud_tokens_use_bitbuckets_fixed_git_usernames() {
        let api = rule(ProviderKind::Cloud, AuthType::ApiToken).unwrap();
        assert_eq!(
            api.git,
            GitForm::Basic {
                username: "x-bitbucket-api-token-auth"
            }
        );
        assert_eq!(api.rest, RestForm::BasicEmailToken);
        let access = rule(ProviderKind::Cloud, AuthType::AccessToken).unwrap();
        assert_eq!(
            access.git,
            GitForm::Basic {
                username: "x-token-auth"
            }
        );
        let dc = rule(ProviderKind::Datacenter, AuthType::HttpAccessToken).unwrap();
        assert_eq!((dc.git, dc.rest), (GitForm::Bearer, RestForm::Bearer));
    }
}
