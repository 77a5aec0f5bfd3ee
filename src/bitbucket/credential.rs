//! The credential the client sends: one `Authorization` header value built from the auth
//! table's REST form ([`RestForm`]) and a token. It is never printed (its `Debug` is redacted,
//! it has no `Display`), never cloned, and zeroed when dropped.

use base64::Engine;
use zeroize::Zeroizing;

use super::{ApiError, ApiErrorKind};
use crate::providers::RestForm;
use crate::secrets::ResolvedSecrets;
use crate::spec::Provider;

pub struct Credential {
    header: Zeroizing<String>,
    form: RestForm,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({:?}, <redacted>)", self.form)
    }
}

impl Credential {
    /// The header for `token` in `form`; Basic needs the account `email` as well.
    pub fn new(form: RestForm, token: &str, email: Option<&str>) -> Result<Credential, ApiError> {
        let invalid = |m: &str| ApiError::new(ApiErrorKind::AuthFailed, m);
        // A header value cannot hold line breaks; a pasted token with one would be cut or refused
        // by the HTTP library with an error that might quote it.
        if token.is_empty() || token.contains(['\r', '\n']) {
            return Err(invalid("the token is empty or contains a line break")
                .with_hint("store it again with `agentenv secret update`"));
        }
        let header = match form {
            RestForm::BasicEmailToken => {
                let email = email.filter(|e| !e.is_empty()).ok_or_else(|| {
                    invalid("an API token needs the Atlassian account email for the REST API")
                })?;
                if email.contains(['\r', '\n', ':']) {
                    return Err(invalid(
                        "the account email contains a line break or a colon; fix `auth.email` in the spec",
                    ));
                }
                let pair = Zeroizing::new(format!("{email}:{token}"));
                Zeroizing::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
                ))
            }
            RestForm::Bearer => Zeroizing::new(format!("Bearer {token}")),
        };
        Ok(Credential { header, form })
    }

    /// How the credential is presented (decides the fix a 401 names).
    pub fn form(&self) -> RestForm {
        self.form
    }

    pub(crate) fn header(&self) -> &str {
        &self.header
    }

    /// The credential of provider `name` of a spec, with its token taken from `secrets`;
    /// `None` for a provider without `auth:`.
    pub(crate) fn of_provider(
        name: &str,
        provider: &Provider,
        secrets: &ResolvedSecrets,
    ) -> Result<Option<Credential>, ApiError> {
        let Some(auth) = &provider.auth else {
            return Ok(None);
        };
        let auth_err = |m: String| ApiError::new(ApiErrorKind::AuthFailed, m);
        let rule = crate::providers::rule(provider.kind, auth.kind)
            .map_err(|r| auth_err(format!("provider `{name}`: {}", r.message)).with_hint(r.hint))?;
        if rule.rest == RestForm::BasicEmailToken && auth.email.is_none() {
            return Err(auth_err(format!(
                "provider `{name}`: an api-token needs `auth.email` (the Atlassian account email) for the REST API"
            )));
        }
        let secret = auth.token.as_deref().ok_or_else(|| {
            auth_err(format!(
                "provider `{name}`: `auth.token` is missing; set it to the NAME of the secret holding the token"
            ))
        })?;
        let token = secrets.get(secret).ok_or_else(|| {
            auth_err(format!(
                "provider `{name}`: secret `{secret}` is not available; create it with `agentenv secret create`"
            ))
        })?;
        Credential::new(rule.rest, token, auth.email.as_deref())
            .map(Some)
            .map_err(|e| e.context(format!("provider `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_rest_form_and_never_show_in_debug() {
        let c = Credential::new(RestForm::Bearer, "tok-CANARY", None).unwrap();
        assert_eq!(c.header(), "Bearer tok-CANARY");
        assert!(!format!("{c:?}").contains("CANARY"));
        let c =
            Credential::new(RestForm::BasicEmailToken, "tok-CANARY", Some("a@b.example")).unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("a@b.example:tok-CANARY");
        assert_eq!(c.header(), format!("Basic {expected}"));
        assert!(!format!("{c:?}").contains("CANARY"));
    }

    #[test]
    fn unusable_values_are_refused_without_quoting_them() {
        for (form, token, email) in [
            (RestForm::Bearer, "", None),
            (RestForm::Bearer, "a\nCANARY", None),
            (RestForm::BasicEmailToken, "CANARY", None),
            (RestForm::BasicEmailToken, "CANARY", Some("a:b")),
        ] {
            let e = Credential::new(form, token, email).unwrap_err();
            assert_eq!(e.kind, ApiErrorKind::AuthFailed);
            assert!(!e.message.contains("CANARY"), "{e}");
        }
    }
}
