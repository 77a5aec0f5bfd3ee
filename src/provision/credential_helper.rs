//! git's credential-helper protocol, answered from the spec's resolved secrets (the work of
//! `agentenv git-credential`), so that setup steps running `git` against a provider
//! authenticate without a token on any command line or in any file.
//!
//! Each step gets `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` that register this
//! binary as the credential helper for each provider's git origin only. The helper's command
//! line holds the spec path, never a value. For Data Center's Bearer tokens it answers with
//! `authtype=Bearer` when git announces `capability[]=authtype` (git ≥ 2.46); to older git it
//! answers nothing but an error on stderr naming the version needed (git shows it, then fails
//! as unauthenticated).

use std::io::BufRead;

use zeroize::Zeroizing;

use super::auth::{self, Secret};
use crate::error::{Error, Result};
use crate::spec::{LoadedEnv, Step};

/// Single-quote `s` for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `GIT_CONFIG_*` variables registering this binary as the credential helper for every
/// provider with `auth:` (and nothing else), plus `GIT_TERMINAL_PROMPT=0` so a refused
/// credential fails instead of waiting for a prompt nobody answers.
pub fn git_env(
    env: &LoadedEnv,
    existing: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let origins: Vec<String> = env
        .spec
        .providers
        .values()
        .filter(|p| p.auth.is_some())
        .filter_map(|p| auth::origin_of(&auth::git_root(p)))
        .collect();
    if origins.is_empty() {
        return Vec::new();
    }
    let (Ok(exe), Ok(spec)) = (std::env::current_exe(), std::path::absolute(&env.path)) else {
        return Vec::new();
    };
    let helper = format!(
        "!{} git-credential --env {}",
        sh_quote(&exe.to_string_lossy()),
        sh_quote(&spec.to_string_lossy())
    );
    // A step's own GIT_CONFIG_* entries come first and stay.
    let mut n: usize = existing
        .get("GIT_CONFIG_COUNT")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut vars = Vec::new();
    for origin in origins {
        // The empty value clears helpers configured elsewhere for this origin only, so no
        // other helper (a store, a keychain) is asked or handed the token.
        for value in [String::new(), helper.clone()] {
            vars.push((
                format!("GIT_CONFIG_KEY_{n}"),
                format!("credential.{origin}.helper"),
            ));
            vars.push((format!("GIT_CONFIG_VALUE_{n}"), value));
            n += 1;
        }
    }
    vars.push(("GIT_CONFIG_COUNT".into(), n.to_string()));
    vars.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
    vars
}

/// The step as it runs: its own `env:` plus [`git_env`]. The fingerprint is taken from the
/// step as written, so a new binary path does not re-run every step.
pub fn with_git_env(step: &Step, env: &LoadedEnv) -> Step {
    let mut s = step.clone();
    for (k, v) in git_env(env, &step.env) {
        s.env.insert(k, v);
    }
    s
}

/// `key=value` lines up to an empty line or the end; repeated keys (`capability[]`) all kept.
pub fn read_request(input: impl BufRead) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for line in input.lines() {
        let line = line
            .map_err(|e| Error::failure(format!("git-credential: reading git's request: {e}")))?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            pairs.push((k.to_string(), v.to_string()));
        }
    }
    Ok(pairs)
}

/// The answer for one request, or `None` when no provider with auth serves that origin.
/// Values come from the variable a step already holds (the secret under its own name),
/// else from resolving the spec's secrets.
pub fn answer(
    env: &LoadedEnv,
    request: &[(String, String)],
    vars: crate::secrets::Lookup,
) -> Result<Option<Zeroizing<String>>> {
    let get = |k: &str| {
        request
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let (Some(protocol), Some(host)) = (get("protocol"), get("host")) else {
        return Ok(None);
    };
    let origin = format!("{}://{}", protocol.to_lowercase(), host.to_lowercase());
    let Some((name, provider)) = env.spec.providers.iter().find(|(_, p)| {
        p.auth.is_some() && auth::origin_of(&auth::git_root(p)).as_deref() == Some(origin.as_str())
    }) else {
        return Ok(None);
    };
    let token_name = provider.auth.as_ref().and_then(|a| a.token.clone());
    let from_env = token_name
        .as_deref()
        .and_then(vars)
        .filter(|v| !v.is_empty());
    let secrets = match from_env {
        Some(v) => crate::secrets::ResolvedSecrets::from_values(
            [(token_name.clone().unwrap_or_default(), v)]
                .into_iter()
                .collect(),
        ),
        None => crate::secrets::resolve(env)?,
    };
    let Some(cred) = auth::credential(name, provider, &secrets)? else {
        return Ok(None);
    };
    let bearer_ok = request
        .iter()
        .any(|(k, v)| k == "capability[]" && v == "authtype");
    Ok(match &cred.secret {
        Secret::Basic { username, token } => Some(Zeroizing::new(format!(
            "username={username}\npassword={}\n",
            &**token
        ))),
        Secret::Bearer(token) if bearer_ok => Some(Zeroizing::new(format!(
            "capability[]=authtype\nauthtype=Bearer\ncredential={}\nephemeral=true\n",
            &**token
        ))),
        // Older git would send a Basic guess the server refuses; say why instead (git shows
        // a helper's stderr, then fails as unauthenticated).
        Secret::Bearer(_) => {
            return Err(Error::failure(format!(
                "provider `{name}` authenticates git with a Bearer token, which git sends from version 2.46 on (credential `authtype`); the git running this step is older"
            ))
            .with_hint("install git 2.46 or later where the setup steps run"));
        }
    })
}
