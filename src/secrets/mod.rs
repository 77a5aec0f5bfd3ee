//! Secrets: the age store (team and personal files), identities, resolution, redaction.
//!
//! What the other stages use: [`resolve`] (every secret the spec uses, decrypted; it fails
//! before anything runs when one cannot be resolved, at the line that names it), and on the
//! [`ResolvedSecrets`] it returns `env_vars()` for a setup step's environment, `digest(name)`
//! for fingerprints, `get(name)` for provider auth and `redactor()`, through which every
//! output path passes. Without keys or tokens: [`declared`] (every secret named is declared;
//! what `validate` checks by default), [`problems`] (what [`resolve`] would stop at, as spec
//! problems) and [`resolve_available`] (what can be resolved, and why not the rest: `check`).
//!
//! Layout: `store` (the YAML files, sealing and opening one value with its name binding),
//! `identity` (keys and recipients), `resolve` (names → values), `redact`, and `manage` (the
//! operations behind `agentenv secret …`).
//!
//! Files:
//! - team: `secrets.team` in the spec, relative to the spec's directory, committed to git,
//!   encrypted to `secrets.recipients`;
//! - personal: `$AGENTENV_PERSONAL_FILE`, else `$XDG_CONFIG_HOME/agentenv/personal.yaml`, else
//!   `~/.config/agentenv/personal.yaml`; encrypted to your own key; the same name there wins.
//!
//! Each file is a YAML mapping: `recipients:` (the public keys every value is encrypted to)
//! and `NAME: |` followed by one ASCII-armored age ciphertext whose plaintext is
//! `agentenv-secret/v1 NAME\n` + the value (see `store`).

mod identity;
pub mod manage;
mod redact;
mod resolve;
mod store;

pub use redact::{MASK, Redactor};
pub use resolve::{Declared, Partial, Source, Unresolved, declared, problems, resolve_available};
pub(crate) use store::MAX_VALUE_BYTES;
pub use store::valid_name;

use std::collections::BTreeMap;

use crate::error::Result;
use crate::spec::LoadedEnv;

/// Reads an environment variable. Resolution reads the process environment through this, so
/// callers (and tests) can supply another one without mutating the process's own.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`]; non-UTF-8 values count as unset. In a command
/// `agentenv run` configured for its agent (the MCP server, the git credential helper), the
/// variables `run` kept out of the agent's environment come from `run`'s handoff.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .or_else(|| crate::run::handoff::lookup(name))
}

/// The fingerprint key used when the caller sets none: fixed, so fingerprints stay stable
/// across runs and fresh containers. See [`ResolvedSecrets::with_digest_key`].
const DEFAULT_DIGEST_KEY: &[u8] = b"agentenv fingerprint v1";

/// Secret values resolved for one run. Never serialized, never printed.
#[derive(Clone, Default)]
pub struct ResolvedSecrets {
    values: BTreeMap<String, zeroize::Zeroizing<String>>,
    redactor: Redactor,
    digest_key: Option<zeroize::Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for ResolvedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedSecrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ResolvedSecrets {
    pub fn empty() -> Self {
        Self::default()
    }

    /// Build from name → value pairs (used by resolution and by tests).
    pub fn from_values(values: BTreeMap<String, String>) -> Self {
        let redactor = Redactor::new(values.values().map(String::as_str));
        let values = values
            .into_iter()
            .map(|(k, v)| (k, zeroize::Zeroizing::new(v)))
            .collect();
        ResolvedSecrets {
            values,
            redactor,
            digest_key: None,
        }
    }

    /// Use `key` for [`digest`](Self::digest) instead of the built-in one. With the built-in
    /// key a digest is an unkeyed hash in effect: whoever reads `state.json` can test guesses
    /// of a weak secret offline. A random key kept beside the state (see
    /// `provision::state::fingerprint_key`) removes that, and fingerprints stay as stable as
    /// the state itself.
    pub fn with_digest_key(mut self, key: &[u8]) -> Self {
        self.digest_key = Some(zeroize::Zeroizing::new(key.to_vec()));
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|v| v.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Environment variables for a setup step: every resolved secret under its own name.
    pub fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A keyed digest of a secret's value (HMAC-SHA256, hex), for step fingerprints: it
    /// changes when the value changes, and reveals nothing about the value.
    pub fn digest(&self, name: &str) -> Option<String> {
        use hmac::{Hmac, Mac};
        let value = self.values.get(name)?;
        let key = self.digest_key.as_deref().map_or(DEFAULT_DIGEST_KEY, |k| k);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        Some(
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// Resolve every secret the spec names (provider auth, `from_env`, team and personal files),
/// reading identities and `from_env` values from the process environment.
pub fn resolve(env: &LoadedEnv) -> Result<ResolvedSecrets> {
    resolve_with(env, &process_env)
}

/// [`resolve`] with another environment: `vars` supplies `AGENTENV_*`, `HOME`,
/// `XDG_CONFIG_HOME` and the `from_env` values.
pub fn resolve_with(env: &LoadedEnv, vars: Lookup) -> Result<ResolvedSecrets> {
    resolve::resolve(env, vars)
}
