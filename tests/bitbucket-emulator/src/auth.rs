//! Who is calling, and may they: Bitbucket's credential forms per product and surface.

use base64::Engine;

use crate::{State, Token, TokenKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    Cloud,
    Dc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Rest,
    Git,
}

/// What an endpoint needs from a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Repository,
    PullRequest,
    Pipeline,
    Account,
    Workspace,
}

/// Why a request was refused; the server renders it in the product's format.
#[derive(Debug)]
pub enum Refusal {
    /// 401: no, wrong, expired or revoked credential.
    Unauthenticated(String),
    /// Cloud 403 / DC 401 AuthorisationException.
    MissingScope {
        granted: Vec<String>,
        required: Vec<String>,
    },
    /// Token limited to other resources: answered like a repository that does not exist.
    OutOfResource,
}

pub enum Credential {
    None,
    Basic(String, String),
    Bearer(String),
    Unparseable,
}

pub fn parse_authorization(value: Option<&str>) -> Credential {
    let Some(v) = value else {
        return Credential::None;
    };
    let v = v.trim();
    if let Some(rest) = strip_prefix_ci(v, "Bearer ") {
        return Credential::Bearer(rest.trim().to_string());
    }
    if let Some(rest) = strip_prefix_ci(v, "Basic ") {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
            return Credential::Unparseable;
        };
        let Ok(text) = String::from_utf8(raw) else {
            return Credential::Unparseable;
        };
        return match text.split_once(':') {
            Some((u, p)) => Credential::Basic(u.to_string(), p.to_string()),
            None => Credential::Unparseable,
        };
    }
    Credential::Unparseable
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// Authenticates; `Ok(None)` is an anonymous caller allowed because the emulator is public.
pub fn authenticate(
    st: &State,
    header: Option<&str>,
    product: Product,
    surface: Surface,
) -> Result<Option<Token>, Refusal> {
    let bad = |why: &str| Err(Refusal::Unauthenticated(why.to_string()));
    let (user, secret, bearer) = match parse_authorization(header) {
        Credential::None if st.anonymous => return Ok(None),
        Credential::None => return bad("authentication required"),
        Credential::Unparseable => return bad("malformed Authorization header"),
        Credential::Basic(u, p) => (Some(u), p, false),
        Credential::Bearer(t) => (None, t, true),
    };
    let Some(token) = st.tokens.iter().find(|t| t.secret == secret) else {
        return bad("invalid credentials");
    };
    let user = user.as_deref();
    let accepted = match (&token.kind, product, surface) {
        (TokenKind::CloudApi { email, .. }, Product::Cloud, Surface::Rest) => {
            !bearer && user == Some(email)
        }
        (TokenKind::CloudApi { username, .. }, Product::Cloud, Surface::Git) => {
            !bearer && (user == Some("x-bitbucket-api-token-auth") || user == Some(username))
        }
        (TokenKind::CloudAccess { .. }, Product::Cloud, Surface::Rest) => bearer,
        (TokenKind::CloudAccess { .. }, Product::Cloud, Surface::Git) => {
            user == Some("x-token-auth")
        }
        (TokenKind::CloudAppPassword { .. }, _, _) => {
            return bad("Bitbucket Cloud no longer supports app passwords; use an API token");
        }
        (TokenKind::DcPersonal { username }, Product::Dc, _) => bearer || user == Some(username),
        (TokenKind::DcProject { .. } | TokenKind::DcRepo { .. }, Product::Dc, _) => bearer,
        _ => false,
    };
    if !accepted {
        return bad("invalid credentials");
    }
    if token.revoked {
        return bad("token revoked");
    }
    if token.expired {
        return bad("token expired");
    }
    Ok(Some(token.clone()))
}

/// Checks the token's scopes and resource limits for a call on `owner/slug` (if any).
pub fn authorize(
    token: Option<&Token>,
    need: Need,
    repo: Option<(&str, &str)>,
) -> Result<(), Refusal> {
    let Some(token) = token else { return Ok(()) };
    if let Some((owner, slug)) = repo {
        let inside = match &token.kind {
            TokenKind::CloudAccess { workspace, repo } => {
                workspace
                    .as_deref()
                    .is_none_or(|w| w.eq_ignore_ascii_case(owner))
                    && repo.as_deref().is_none_or(|r| r.eq_ignore_ascii_case(slug))
            }
            TokenKind::DcProject { project } => project.eq_ignore_ascii_case(owner),
            TokenKind::DcRepo { project, repo } => {
                project.eq_ignore_ascii_case(owner) && repo.eq_ignore_ascii_case(slug)
            }
            _ => true,
        };
        if !inside {
            return Err(Refusal::OutOfResource);
        }
    }
    let has = |s: &str| token.scopes.iter().any(|g| g == s);
    let (ok, oauth_required): (bool, &[&str]) = match &token.kind {
        TokenKind::DcPersonal { .. } | TokenKind::DcProject { .. } | TokenKind::DcRepo { .. } => {
            const READ: &[&str] = &[
                "REPO_READ",
                "REPO_WRITE",
                "REPO_ADMIN",
                "PROJECT_READ",
                "PROJECT_WRITE",
                "PROJECT_ADMIN",
            ];
            // Account lookups need no repository permission on Data Center.
            (
                need == Need::Account || READ.iter().any(|s| has(s)),
                &["REPO_READ"][..],
            )
        }
        // API-token scopes never imply each other.
        TokenKind::CloudApi { .. } => (has(forge_scope(need)), &[]),
        TokenKind::CloudAccess { .. } => {
            // OAuth-style scopes imply lower ones (pullrequest → repository); forge-style ones do not.
            let ok = has(forge_scope(need))
                || match need {
                    Need::Repository => {
                        has("repository") || has("pullrequest") || has("repository:write")
                    }
                    Need::PullRequest => has("pullrequest") || has("pullrequest:write"),
                    Need::Pipeline => has("pipeline") || has("pipeline:write"),
                    // An access token is its own user and always may look itself up.
                    Need::Account => true,
                    Need::Workspace => true,
                };
            (
                ok,
                match need {
                    Need::Repository => &["repository"][..],
                    Need::PullRequest => &["pullrequest"],
                    Need::Pipeline => &["pipeline"],
                    Need::Account | Need::Workspace => &["account"],
                },
            )
        }
        TokenKind::CloudAppPassword { .. } => (false, &[][..]),
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::MissingScope {
            granted: token.scopes.clone(),
            required: if oauth_required.is_empty() {
                vec![forge_scope(need).to_string()]
            } else {
                oauth_required.iter().map(|s| s.to_string()).collect()
            },
        })
    }
}

fn forge_scope(need: Need) -> &'static str {
    match need {
        Need::Repository => "read:repository:bitbucket",
        Need::PullRequest => "read:pullrequest:bitbucket",
        Need::Pipeline => "read:pipeline:bitbucket",
        Need::Account => "read:user:bitbucket",
        Need::Workspace => "read:workspace:bitbucket",
    }
}
