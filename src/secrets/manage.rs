//! The operations behind `agentenv secret …`: create, update, remove, list, rekey. None
//! returns or records a value, and one that fails leaves every file as it was (all checks run
//! before anything is written, and files are replaced atomically). A personal value is created
//! only for a name the spec uses (see `resolve`): anything else would never reach a step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use super::Lookup;
use super::identity::{self, NewKey};
use super::resolve::{self, Source};
use super::store::{self, Origin, SecretsFile};
use crate::error::{Error, Result};
use crate::spec::LoadedEnv;

/// Which file a secret lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `secrets.team`: committed to git, encrypted to `secrets.recipients`.
    Team,
    /// The personal file: outside the repository, encrypted to your own key.
    Personal,
}

impl Place {
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Team => "team",
            Place::Personal => "personal",
        }
    }
}

/// What `create`, `update` or `remove` does to a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Add it; refused when it exists.
    Create,
    /// Replace its value; refused when it does not exist.
    Update,
    /// Delete it; refused when it does not exist.
    Remove,
}

/// What a [`change`] did.
#[derive(Debug)]
pub struct Changed {
    pub change: Change,
    pub place: Place,
    pub name: String,
    /// The file changed.
    pub file: PathBuf,
    /// How many recipients the new value is encrypted to (0 for a removal).
    pub recipients: usize,
    /// A personal key generated because none existed: where it was written, and its public key.
    pub new_key: Option<(PathBuf, String)>,
}

/// Reads a secret's value (from a prompt or stdin), given its name; called once every check
/// that needs no value has passed.
pub type ReadValue<'a> = &'a dyn Fn(&str) -> Result<Zeroizing<String>>;

/// `create`, `update` or `remove` the secret `name` in the team or personal file of the spec
/// at `env_path`.
pub fn change(
    change: Change,
    env_path: &Path,
    name: &str,
    place: Place,
    read_value: ReadValue,
    vars: Lookup,
) -> Result<Changed> {
    store::check_name(name, "NAME")?;
    let env = LoadedEnv::load(env_path)?;
    let personal = place == Place::Personal;
    if personal && change == Change::Create && !resolve::used_names(&env)?.contains(name) {
        // The personal file serves every spec; a spec passes on only the names it uses, so a
        // value stored for this one would silently reach nothing.
        return Err(Error::input(format!(
            "{} does not use {name}: its setup steps and providers would never receive a personal value of it",
            env_path.display()
        ))
        .with_hint(format!(
            "declare it first: add `personal: [{name}]` under `secrets:` in {} (or name it in a provider's `auth`), then run this again",
            env_path.display()
        )));
    }
    let path = target_path(&env, place, vars)?;
    let _lock = if personal {
        store::EditLock::personal(&path)?
    } else {
        store::EditLock::acquire(&env.dir)?
    };
    let mut file = if personal {
        resolve::load_personal_at(&path)?
    } else {
        SecretsFile::load(&path)?
    };
    let scope = place.as_str();
    let shown = file.path.display().to_string();
    let exists = file.values.contains_key(name);
    match change {
        Change::Create if exists => {
            return Err(
                Error::input(format!("{name} already exists in {shown}")).with_hint(format!(
                    "use `agentenv secret update {} --{scope} {name}` to change it",
                    env_path.display(),
                )),
            );
        }
        Change::Update | Change::Remove if !exists => {
            return Err(
                Error::not_found(format!("{name} is not in {shown}")).with_hint(format!(
                    "`agentenv secret list {}` shows the names; `create` adds one",
                    env_path.display()
                )),
            );
        }
        _ => {}
    }
    let mut changed = Changed {
        change,
        place,
        name: name.to_string(),
        file: file.path.clone(),
        recipients: 0,
        new_key: None,
    };
    if change == Change::Remove {
        file.values.remove(name);
        file.save(personal)?;
        return Ok(changed);
    }
    let others = file.values.keys().any(|n| n != name);
    let (recipients, new_key) = if personal {
        personal_recipients(&file, others, vars)?
    } else {
        (team_recipients(&env, &file, others)?, None)
    };
    let value = read_value(name)?;
    store::check_value(name, &value)?;
    let parsed = identity::parse_recipients(&recipients, "recipients")?;
    let armored = store::seal(name, &value, &parsed)?;
    file.values.insert(name.to_string(), armored);
    file.recipients = recipients;
    if let Some(key) = new_key {
        let path = identity::default_key_file(vars).ok_or_else(|| {
            Error::input("cannot choose where to put a new key: HOME is not set")
                .with_hint("set AGENTENV_AGE_KEY_FILE, XDG_CONFIG_HOME or HOME")
        })?;
        key.write(&path)?;
        changed.new_key = Some((path, key.public));
    }
    if let Err(e) = file.save(personal) {
        if let Some((path, _)) = &changed.new_key {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    changed.recipients = file.recipients.len();
    Ok(changed)
}

/// The file a change applies to.
fn target_path(env: &LoadedEnv, place: Place, vars: Lookup) -> Result<PathBuf> {
    match place {
        Place::Personal => resolve::personal_path(vars).ok_or_else(|| {
            Error::input("cannot locate the personal secrets file: HOME is not set")
                .with_hint("set AGENTENV_PERSONAL_FILE, XDG_CONFIG_HOME or HOME")
        }),
        Place::Team => team_path(env),
    }
}

fn team_path(env: &LoadedEnv) -> Result<PathBuf> {
    resolve::team_path(env).ok_or_else(|| {
        Error::input(format!(
            "{}: the spec has no team secrets file (secrets.team)",
            env.path.display()
        ))
        .with_hint("add `secrets: {team: secrets/NAME.team.yaml, recipients: [age1…]}` to the spec, or use --personal")
    })
}

/// The spec's recipients, which must be those the file's other values are encrypted to: a
/// file whose values have different readers is a file nobody can reason about.
fn team_recipients(env: &LoadedEnv, file: &SecretsFile, others: bool) -> Result<Vec<String>> {
    let spec = spec_recipients(env)?;
    if others {
        let (added, removed) = diff(&file.recipients, &spec);
        if !added.is_empty() || !removed.is_empty() {
            return Err(Error::input(format!(
                "{}: the values in it are encrypted to other recipients than secrets.recipients (added in the spec: [{}]; removed: [{}])",
                file.path.display(),
                added.join(", "),
                removed.join(", ")
            ))
            .with_hint(format!(
                "run `agentenv secret rekey {}` first (with a key that can decrypt them)",
                env.path.display()
            )));
        }
    }
    Ok(spec)
}

fn spec_recipients(env: &LoadedEnv) -> Result<Vec<String>> {
    let list = env
        .spec
        .secrets
        .as_ref()
        .map(|s| s.recipients.clone())
        .unwrap_or_default();
    let what = format!("{}: secrets.recipients", env.path.display());
    if list.is_empty() {
        return Err(Error::input(format!(
            "{what} is empty: nobody could decrypt team secrets"
        ))
        .with_hint(
            "list the team's public keys: `age1…` (age-keygen -y KEYFILE) or `ssh-ed25519 AAAA…`",
        ));
    }
    identity::parse_recipients(&list, &what)?;
    Ok(list.iter().map(|r| r.trim().to_string()).collect())
}

/// Recipients in `want` and not in `have`, and the reverse, compared in canonical form.
fn diff(have: &[String], want: &[String]) -> (Vec<String>, Vec<String>) {
    let h: BTreeSet<String> = have.iter().map(|r| identity::canonical(r)).collect();
    let w: BTreeSet<String> = want.iter().map(|r| identity::canonical(r)).collect();
    let added = want
        .iter()
        .filter(|r| !h.contains(&identity::canonical(r)))
        .cloned()
        .collect();
    let removed = have
        .iter()
        .filter(|r| !w.contains(&identity::canonical(r)))
        .cloned()
        .collect();
    (added, removed)
}

/// Personal values are encrypted to your own key: the recipients already recorded when the
/// file has other values (and you hold one of those keys), else your keys' public keys — or a
/// newly generated key when you have none.
fn personal_recipients(
    file: &SecretsFile,
    others: bool,
    vars: Lookup,
) -> Result<(Vec<String>, Option<NewKey>)> {
    let Some(ids) = identity::discover(vars)? else {
        if others {
            return Err(Error::auth(format!(
                "{} holds values encrypted to [{}], and no age identity is available",
                file.path.display(),
                file.recipients.join(", ")
            ))
            .with_hint("set AGENTENV_AGE_KEY_FILE to the key you used for it"));
        }
        let key = NewKey::generate();
        return Ok((vec![key.public.clone()], Some(key)));
    };
    if others && !file.recipients.is_empty() {
        let recorded: BTreeSet<String> = file
            .recipients
            .iter()
            .map(|r| identity::canonical(r))
            .collect();
        if ids.publics.iter().any(|p| recorded.contains(p)) {
            return Ok((file.recipients.clone(), None));
        }
        return Err(Error::auth(format!(
            "{} is encrypted to [{}], and {} is not one of them",
            file.path.display(),
            file.recipients.join(", "),
            ids.describe()
        ))
        .with_hint("use the key you created it with (AGENTENV_AGE_KEY_FILE), or move the file away to start a new one"));
    }
    Ok((ids.publics.clone(), None))
}

/// What [`rekey`] did.
#[derive(Debug)]
pub struct Rekeyed {
    pub file: PathBuf,
    /// How many values were re-encrypted.
    pub values: usize,
    pub recipients: usize,
    pub added: usize,
    pub removed: usize,
}

/// Decrypt every team value, then encrypt it to the spec's recipients; all or nothing.
pub fn rekey(env_path: &Path, vars: Lookup) -> Result<Rekeyed> {
    let env = LoadedEnv::load(env_path)?;
    let path = team_path(&env)?;
    let _lock = store::EditLock::acquire(&env.dir)?;
    let mut file = SecretsFile::load(&path)?;
    let recipients = spec_recipients(&env)?;
    let parsed = identity::parse_recipients(&recipients, "secrets.recipients")?;
    let (added, removed) = diff(&file.recipients, &recipients);
    if let Some(first) = file.values.keys().next() {
        let ids = resolve::require_identities(vars, first, &file)?;
        let origin = Origin {
            file: &file.path,
            recipients: &file.recipients,
        };
        let mut sealed = Vec::new();
        for (name, armored) in &file.values {
            let value = store::open(name, armored, &ids, &origin)?;
            sealed.push((name.clone(), store::seal(name, &value, &parsed)?));
        }
        file.values.extend(sealed);
    }
    file.recipients = recipients;
    file.save(false)?;
    Ok(Rekeyed {
        file: file.path.clone(),
        values: file.values.len(),
        recipients: file.recipients.len(),
        added: added.len(),
        removed: removed.len(),
    })
}

/// What [`list`] finds: names, where their values come from, who can decrypt the files.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub secrets: Vec<ListedSecret>,
    pub team: Option<TeamFile>,
    pub personal: Option<ListedFile>,
    /// The spec, as given.
    #[serde(skip)]
    pub spec: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct ListedSecret {
    pub name: String,
    /// Where the value is taken from: personal, team, env, or missing.
    pub source: Source,
    pub in_personal: bool,
    pub in_team: bool,
    pub from_env: bool,
    /// The spec fields that name it (`providers.bb.auth.token`).
    pub used_by: Vec<String>,
    /// For a value taken from the environment: whether the variable is set (and not empty).
    #[serde(skip)]
    pub env_set: bool,
}

#[derive(Debug, Serialize)]
pub struct ListedFile {
    pub file: String,
    pub exists: bool,
    pub recipients: Vec<String>,
}

impl ListedFile {
    /// The recipients for people, or a note that the file records none.
    pub fn recipients_text(&self) -> String {
        store::recipients_text(&self.recipients)
    }
}

#[derive(Debug, Serialize)]
pub struct TeamFile {
    #[serde(flatten)]
    pub listed: ListedFile,
    /// `secrets.recipients` in the spec.
    pub spec_recipients: Vec<String>,
    /// The file's values are encrypted to other recipients than the spec lists.
    pub rekey_needed: bool,
}

/// Names, where they come from, who can decrypt them. Decrypts nothing.
pub fn list(env_path: &Path, vars: Lookup) -> Result<Listing> {
    let env = LoadedEnv::load(env_path)?;
    let plan = resolve::plan(&env, vars)?;
    let secrets = plan
        .names
        .iter()
        .map(|(name, source)| ListedSecret {
            name: name.clone(),
            source: *source,
            in_personal: plan
                .personal
                .as_ref()
                .is_some_and(|f| f.values.contains_key(name)),
            in_team: plan
                .team
                .as_ref()
                .is_some_and(|f| f.values.contains_key(name)),
            from_env: plan.from_env.contains(name),
            used_by: plan.auth_refs.get(name).cloned().unwrap_or_default(),
            env_set: vars(name).is_some_and(|v| !v.is_empty()),
        })
        .collect();
    let listed = |f: &SecretsFile| ListedFile {
        file: f.path.display().to_string(),
        exists: f.exists,
        recipients: f.recipients.clone(),
    };
    let spec_recipients: Vec<String> = env
        .spec
        .secrets
        .as_ref()
        .map(|s| s.recipients.clone())
        .unwrap_or_default();
    let team = plan.team.as_ref().map(|f| {
        let (a, r) = diff(&f.recipients, &spec_recipients);
        TeamFile {
            listed: listed(f),
            rekey_needed: !f.values.is_empty() && (!a.is_empty() || !r.is_empty()),
            spec_recipients: spec_recipients.clone(),
        }
    });
    Ok(Listing {
        secrets,
        team,
        personal: plan.personal.as_ref().map(listed),
        spec: env.path.clone(),
    })
}
