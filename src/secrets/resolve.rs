//! Resolution: which names a spec refers to, and where each value comes from.
//!
//! The names referred to are the provider auth fields (`token`, `client_id`, `client_secret`),
//! every name in the team and personal files, and `secrets.from_env`. Each is taken from the
//! personal file, else the team file, else — only when listed in `secrets.from_env` — the
//! process environment variable of that name. All must resolve, or nothing runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::identity::{self, Identities};
use super::store::{self, Origin, SecretsFile};
use super::{Lookup, ResolvedSecrets};
use crate::error::{Error, Result};
use crate::spec::LoadedEnv;

/// Where a name's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Personal,
    Team,
    Env,
    Missing,
}

/// The files and references of one spec, loaded but not decrypted.
pub(crate) struct Plan {
    pub team: Option<SecretsFile>,
    pub personal: Option<SecretsFile>,
    pub from_env: Vec<String>,
    /// Every referenced name and where its value would come from.
    pub names: BTreeMap<String, Source>,
    /// Names referred to by provider auth, with the field that refers to them.
    pub auth_refs: BTreeMap<String, Vec<String>>,
}

/// The personal file: `$AGENTENV_PERSONAL_FILE`, else `<config dir>/personal.yaml`.
pub(crate) fn personal_path(vars: Lookup) -> Option<PathBuf> {
    match vars("AGENTENV_PERSONAL_FILE").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => identity::config_dir(vars).map(|d| d.join("personal.yaml")),
    }
}

/// The team file named by the spec, relative to the spec's directory.
pub(crate) fn team_path(env: &LoadedEnv) -> Option<PathBuf> {
    let team = env.spec.secrets.as_ref()?.team.as_deref()?;
    Some(env.dir.join(team))
}

pub(crate) fn load_personal(vars: Lookup) -> Result<Option<SecretsFile>> {
    let Some(path) = personal_path(vars) else {
        return Ok(None);
    };
    load_personal_at(&path).map(Some)
}

pub(crate) fn load_personal_at(path: &Path) -> Result<SecretsFile> {
    let file = SecretsFile::load(path)?;
    if file.exists {
        identity::warn_if_shared(path, "personal secrets file");
    }
    Ok(file)
}

/// Load everything a resolution needs except the identities.
pub(crate) fn plan(env: &LoadedEnv, vars: Lookup) -> Result<Plan> {
    let secrets = env.spec.secrets.as_ref();
    let mut auth_refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (provider, p) in &env.spec.providers {
        let Some(auth) = &p.auth else { continue };
        for (field, name) in [
            ("token", &auth.token),
            ("client_id", &auth.client_id),
            ("client_secret", &auth.client_secret),
        ] {
            let Some(name) = name else { continue };
            let what = format!("{}: providers.{provider}.auth.{field}", env.path.display());
            if !store::valid_name(name) {
                // The text may be the token itself pasted by mistake: never echo it.
                return Err(Error::input(format!(
                    "{what} must be the NAME of a secret ([A-Z_][A-Z0-9_]*), not a value"
                ))
                .with_hint("store the value with `agentenv secret create ENV --team|--personal NAME` and write NAME here; if you pasted a real token, revoke it"));
            }
            auth_refs
                .entry(name.clone())
                .or_default()
                .push(format!("providers.{provider}.auth.{field}"));
        }
    }
    let mut from_env = Vec::new();
    if let Some(s) = secrets {
        for (i, name) in s.from_env.iter().enumerate() {
            if !store::valid_name(name) {
                return Err(Error::input(format!(
                    "{}: secrets.from_env[{i}] is not a secret name ([A-Z_][A-Z0-9_]*)",
                    env.path.display()
                )));
            }
            from_env.push(name.clone());
        }
        identity::parse_recipients(
            &s.recipients,
            &format!("{}: secrets.recipients", env.path.display()),
        )?;
    }
    if secrets.is_none() && auth_refs.is_empty() {
        return Ok(Plan {
            team: None,
            personal: None,
            from_env,
            names: BTreeMap::new(),
            auth_refs,
        });
    }
    let team = team_path(env).map(|p| SecretsFile::load(&p)).transpose()?;
    let personal = load_personal(vars)?;
    let mut all: BTreeSet<String> = auth_refs.keys().cloned().collect();
    all.extend(from_env.iter().cloned());
    for f in team.iter().chain(personal.iter()) {
        all.extend(f.values.keys().cloned());
    }
    let names = all
        .into_iter()
        .map(|name| {
            let source = if personal
                .as_ref()
                .is_some_and(|f| f.values.contains_key(&name))
            {
                Source::Personal
            } else if team.as_ref().is_some_and(|f| f.values.contains_key(&name)) {
                Source::Team
            } else if from_env.contains(&name) {
                Source::Env
            } else {
                Source::Missing
            };
            (name, source)
        })
        .collect();
    Ok(Plan {
        team,
        personal,
        from_env,
        names,
        auth_refs,
    })
}

pub(crate) fn resolve(env: &LoadedEnv, vars: Lookup) -> Result<ResolvedSecrets> {
    let plan = plan(env, vars)?;
    if plan.names.is_empty() {
        return Ok(ResolvedSecrets::empty());
    }
    // Every name is checked before anything is decrypted, so one message lists all problems.
    let mut missing = Vec::new();
    for (name, source) in &plan.names {
        let unset = *source == Source::Env && vars(name).is_none_or(|v| v.is_empty());
        if *source == Source::Missing || unset {
            let used_by = plan
                .auth_refs
                .get(name)
                .map(|r| format!(" (used by {})", r.join(", ")))
                .unwrap_or_default();
            let why = if unset {
                "listed in secrets.from_env but the environment variable is not set"
            } else {
                "in neither the personal nor the team secrets file"
            };
            missing.push(format!("{name}{used_by}: {why}"));
        }
    }
    if !missing.is_empty() {
        let files = [
            plan.personal.as_ref().map(|f| f.path.display().to_string()),
            plan.team.as_ref().map(|f| f.path.display().to_string()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        return Err(Error::input(format!(
            "{}: secrets that cannot be resolved:\n  {}",
            env.path.display(),
            missing.join("\n  ")
        ))
        .with_hint(format!(
            "add them with `agentenv secret create {} --team|--personal NAME`, or list them in secrets.from_env and set the variable{}",
            env.path.display(),
            if files.is_empty() { String::new() } else { format!(" (files read: {files})") }
        )));
    }
    let first_encrypted = plan.names.iter().find_map(|(name, s)| match s {
        Source::Personal => plan.personal.as_ref().map(|f| (name.as_str(), f)),
        Source::Team => plan.team.as_ref().map(|f| (name.as_str(), f)),
        _ => None,
    });
    let ids = match first_encrypted {
        Some((name, file)) => Some(require_identities(vars, name, file)?),
        None => None,
    };
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (name, source) in &plan.names {
        let value = match source {
            Source::Personal | Source::Team => {
                let file = if *source == Source::Personal {
                    plan.personal.as_ref()
                } else {
                    plan.team.as_ref()
                }
                .expect("the source file was loaded");
                let ids = ids
                    .as_ref()
                    .expect("identities are loaded when a file is used");
                let origin = Origin {
                    file: &file.path,
                    recipients: &file.recipients,
                };
                store::open(name, &file.values[name], ids, &origin)?
            }
            Source::Env => {
                let v = Zeroizing::new(vars(name).unwrap_or_default());
                store::check_value(name, &v)
                    .map_err(|e| e.context(format!("environment variable {name}")))?;
                v
            }
            Source::Missing => unreachable!("missing names were reported above"),
        };
        values.insert(name.clone(), value.to_string());
    }
    Ok(ResolvedSecrets::from_values(values))
}

/// The identities, or an error that says what needed them, where keys were looked for and how
/// to provide one. `name` in `file` is the first value that has to be decrypted.
pub(crate) fn require_identities(
    vars: Lookup,
    name: &str,
    file: &SecretsFile,
) -> Result<Identities> {
    identity::discover(vars)?.ok_or_else(|| {
        let default = identity::config_dir(vars)
            .map(|d| d.join("key.txt").display().to_string())
            .unwrap_or_else(|| "~/.config/agentenv/key.txt".into());
        Error::auth(format!(
            "cannot decrypt {name} in {} (encrypted to [{}]): no age identity: AGENTENV_AGE_KEY and AGENTENV_AGE_KEY_FILE are not set, and no default key exists",
            file.path.display(),
            file.recipients_text()
        ))
            .with_hint(format!(
                "set AGENTENV_AGE_KEY to the key text, AGENTENV_AGE_KEY_FILE to a key file, or put your key at {default} (~/.ssh/id_ed25519 and ~/.ssh/id_rsa are tried too)"
            ))
    })
}
