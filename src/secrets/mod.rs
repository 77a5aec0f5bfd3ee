//! Secrets: the age store (team and personal files), identities, resolution, redaction.
//!
//! CONTRACT used by the other modules (keep these signatures):
//! - `resolve(&LoadedEnv) -> Result<ResolvedSecrets>`: every secret the spec refers to,
//!   decrypted; fails before anything runs when one cannot be resolved.
//! - `ResolvedSecrets::env_vars()`: (NAME, value) pairs for a setup step's environment.
//! - `ResolvedSecrets::digest(name)`: a keyed digest of a value, for fingerprints.
//! - `ResolvedSecrets::get(name)`: a value, for provider auth.
//! - `Redactor::redact(&str)`: every output path passes text through it.

mod redact;

pub use redact::Redactor;

use std::collections::BTreeMap;

use crate::error::Result;
use crate::spec::LoadedEnv;

/// Secret values resolved for one run. Never serialized, never printed.
#[derive(Clone, Default)]
pub struct ResolvedSecrets {
    values: BTreeMap<String, String>,
    redactor: Redactor,
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
        ResolvedSecrets { values, redactor }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Environment variables for a setup step: every resolved secret under its own name.
    pub fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A keyed digest of a secret's value (hex), for step fingerprints: it changes when the
    /// value changes, and reveals nothing about the value.
    pub fn digest(&self, name: &str) -> Option<String> {
        use hmac::{Hmac, Mac};
        let value = self.values.get(name)?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"agentenv fingerprint v1")
            .expect("any key length");
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

/// Resolve every secret the spec names (provider auth, `from_env`, team and personal files).
pub fn resolve(env: &LoadedEnv) -> Result<ResolvedSecrets> {
    let _ = env;
    Ok(ResolvedSecrets::empty())
}

pub mod cli {
    //! `agentenv secret …`
    use std::path::PathBuf;

    use crate::error::{Error, Result};

    #[derive(Debug, clap::Subcommand)]
    pub enum SecretCommand {
        /// Add a secret; the value is read from a no-echo prompt on a terminal, else stdin.
        Create(SecretTarget),
        /// Replace a secret's value (read as for `create`).
        Update(SecretTarget),
        /// Delete a secret.
        Remove(SecretTarget),
        /// List secret names, where they live and who can decrypt them (never values).
        List {
            env: PathBuf,
            #[arg(long)]
            json: bool,
        },
        /// Re-encrypt every team secret to the spec's current `secrets.recipients`.
        Rekey { env: PathBuf },
    }

    #[derive(Debug, clap::Args)]
    pub struct SecretTarget {
        /// The environment spec (YAML).
        pub env: PathBuf,
        /// The secret's name: `[A-Z_][A-Z0-9_]*`.
        pub name: String,
        /// In the team file (committed to git, encrypted to `secrets.recipients`).
        #[arg(
            long,
            conflicts_with = "personal",
            required_unless_present = "personal"
        )]
        pub team: bool,
        /// In your personal file (outside the repository, encrypted to your own key).
        #[arg(long)]
        pub personal: bool,
    }

    pub fn run(cmd: SecretCommand) -> Result<()> {
        let _ = cmd;
        Err(Error::failure("secret commands are not implemented yet"))
    }
}
