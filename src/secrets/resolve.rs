//! Resolution: which names a spec uses, where each is declared, and where its value comes from.
//!
//! A spec uses the names in its provider auth fields (`token`, `client_id`, `client_secret`),
//! every name in its team file, and the names listed in `secrets.from_env` and
//! `secrets.personal`. The last three *declare* names, and can be checked without any value
//! (the team file lists its names in clear): [`declared`] is what `validate` checks by
//! default, where there are no keys and no tokens (a pull request's CI).
//!
//! Each name used takes its value from the personal file, else the team file, else — only
//! when listed in `secrets.from_env` — the process environment variable of that name. All must
//! resolve, or nothing runs. Names in the personal file that the spec does not use are left
//! alone: that file serves every spec one runs, and a spec's setup steps run its repositories'
//! code, so they get only what the spec asks for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::identity::{self, Identities};
use super::store::{self, Origin, SecretsFile};
use super::{Lookup, ResolvedSecrets};
use crate::error::{Error, Kind, Result};
use crate::spec::{Diagnostic, KeyPath, LoadedEnv};

/// Where a name's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Personal,
    Team,
    Env,
    Missing,
}

/// The names a spec itself mentions (no file read): provider auth fields and the two lists
/// under `secrets:`, each with the places that name it.
struct Refs {
    /// Names referred to by provider auth, with the field that refers to them.
    auth: BTreeMap<String, Vec<String>>,
    from_env: Vec<String>,
    personal: Vec<String>,
    /// Every place that names a secret, per name: auth fields first, then `from_env[i]`, then
    /// `personal[i]`. Messages about a name point at its first place.
    places: BTreeMap<String, Vec<KeyPath>>,
}

fn refs(env: &LoadedEnv) -> Result<Refs> {
    let mut r = Refs {
        auth: BTreeMap::new(),
        from_env: Vec::new(),
        personal: Vec::new(),
        places: BTreeMap::new(),
    };
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
            r.auth
                .entry(name.clone())
                .or_default()
                .push(format!("providers.{provider}.auth.{field}"));
            let at = KeyPath::root()
                .key("providers")
                .key(provider)
                .key("auth")
                .key(field);
            r.places.entry(name.clone()).or_default().push(at);
        }
    }
    if let Some(s) = env.spec.secrets.as_ref() {
        for (key, names, list) in [
            ("from_env", &s.from_env, &mut r.from_env),
            ("personal", &s.personal, &mut r.personal),
        ] {
            for (i, name) in names.iter().enumerate() {
                if !store::valid_name(name) {
                    return Err(Error::input(format!(
                        "{}: secrets.{key}[{i}] is not a secret name ([A-Z_][A-Z0-9_]*)",
                        env.path.display()
                    )));
                }
                list.push(name.clone());
                let at = KeyPath::root().key("secrets").key(key).index(i);
                r.places.entry(name.clone()).or_default().push(at);
            }
        }
        identity::parse_recipients(
            &s.recipients,
            &format!("{}: secrets.recipients", env.path.display()),
        )?;
    }
    Ok(r)
}

/// The files and references of one spec, loaded but not decrypted.
pub(crate) struct Plan {
    pub team: Option<SecretsFile>,
    pub personal: Option<SecretsFile>,
    pub from_env: Vec<String>,
    /// `secrets.personal`: names each person keeps in their personal file.
    pub declared_personal: Vec<String>,
    /// Every name the spec uses and where its value would come from.
    pub names: BTreeMap<String, Source>,
    /// Names referred to by provider auth, with the field that refers to them.
    pub auth_refs: BTreeMap<String, Vec<String>>,
    /// Where the spec names each secret (not for names only the team file holds).
    places: BTreeMap<String, Vec<KeyPath>>,
    /// The personal file's path, when there can be one (HOME or an override is set).
    personal_path: Option<PathBuf>,
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

pub(crate) fn load_personal_at(path: &Path) -> Result<SecretsFile> {
    let file = SecretsFile::load(path)?;
    if file.exists {
        identity::warn_if_shared(path, "personal secrets file");
    }
    Ok(file)
}

/// Load everything a resolution needs except the identities. The personal file is read only
/// when the spec uses a secret at all.
pub(crate) fn plan(env: &LoadedEnv, vars: Lookup) -> Result<Plan> {
    let refs = refs(env)?;
    let team = team_path(env).map(|p| SecretsFile::load(&p)).transpose()?;
    let mut all: BTreeSet<String> = refs.places.keys().cloned().collect();
    if let Some(f) = &team {
        all.extend(f.values.keys().cloned());
    }
    let personal_path = personal_path(vars);
    let personal = match &personal_path {
        Some(path) if !all.is_empty() => Some(load_personal_at(path)?),
        _ => None,
    };
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
            } else if refs.from_env.contains(&name) {
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
        from_env: refs.from_env,
        declared_personal: refs.personal,
        names,
        auth_refs: refs.auth,
        places: refs.places,
        personal_path,
    })
}

/// Every name the spec uses (its own references and its team file's names), for refusing to
/// store a personal value that no step or provider of it would ever receive. A team file that
/// cannot be read counts as empty here: resolution reports it.
pub(crate) fn used_names(env: &LoadedEnv) -> Result<BTreeSet<String>> {
    let refs = refs(env)?;
    let mut used: BTreeSet<String> = refs.places.into_keys().collect();
    if let Some(Ok(team)) = team_path(env).map(|p| SecretsFile::load(&p)) {
        used.extend(team.values.into_keys());
    }
    Ok(used)
}

/// A name the spec uses whose value cannot be had, and what to do about it.
pub struct Unresolved {
    pub name: String,
    /// The first place in the spec that names it (none for a name only the team file holds).
    at: Option<KeyPath>,
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl Unresolved {
    /// As a spec problem, at the line that names the secret.
    pub fn diagnostic(&self, env: &LoadedEnv) -> Diagnostic {
        let hint = self.hint.clone().unwrap_or_default();
        match &self.at {
            Some(at) => env.diagnostic(at, &self.message, hint),
            None => Diagnostic::whole_file(format!("secrets: {}", self.message)).with_hint(hint),
        }
    }

    /// As an error of its own (one `check` outcome).
    pub fn error(&self) -> Error {
        let e = Error::new(self.kind, self.message.clone());
        match &self.hint {
            Some(h) => e.with_hint(h.clone()),
            None => e,
        }
    }

    fn from_error(name: &str, at: Option<KeyPath>, e: &Error) -> Unresolved {
        Unresolved {
            name: name.to_string(),
            at,
            kind: e.kind,
            message: e.message.clone(),
            hint: e.hint.clone(),
        }
    }
}

/// How to store or provide `name` for the spec at `spec`: the three ways to declare it.
fn provide_hint(spec: &Path, name: &str, has_team: bool) -> String {
    let spec = spec.display();
    let team = if has_team {
        format!("store it for the team with `agentenv secret create {spec} --team {name}`; ")
    } else {
        String::new()
    };
    format!(
        "{team}if each person uses their own, list it in `secrets.personal` and run `agentenv secret create {spec} --personal {name}`; if the environment provides it (CI, a Kubernetes Secret), list it in `secrets.from_env`"
    )
}

/// Why the value of each name cannot be had without decrypting anything: not in any file and
/// not from the environment, or listed in `from_env` with the variable unset.
fn missing(env: &LoadedEnv, plan: &Plan, vars: Lookup) -> Vec<Unresolved> {
    let mut out = Vec::new();
    for (name, source) in &plan.names {
        let at = plan.places.get(name).and_then(|p| p.first()).cloned();
        let spec = env.path.display();
        let (message, hint) = match source {
            Source::Env if vars(name).is_none_or(|v| v.is_empty()) => (
                format!(
                    "secret {name} is listed in `secrets.from_env`, but the environment variable {name} is not set"
                ),
                format!(
                    "set {name} in the environment agentenv runs in (from the CI's secret variables, or a Kubernetes Secret), or store it in a file with `agentenv secret create {spec} --team|--personal {name}`"
                ),
            ),
            Source::Missing if plan.declared_personal.contains(name) => {
                let file = plan
                    .personal_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(none: HOME is not set)".into());
                (
                    format!(
                        "secret {name} is declared in `secrets.personal`, but your personal file {file} does not have it"
                    ),
                    format!(
                        "add your own value with `agentenv secret create {spec} --personal {name}` (AGENTENV_PERSONAL_FILE picks another file)"
                    ),
                )
            }
            Source::Missing => {
                let files: Vec<String> = [
                    plan.personal
                        .as_ref()
                        .map(|f| format!("your personal file {}", f.path.display())),
                    plan.team
                        .as_ref()
                        .map(|f| format!("the team file {}", f.path.display())),
                ]
                .into_iter()
                .flatten()
                .collect();
                let place = match files.as_slice() {
                    [] => "in no secrets file (HOME is not set and the spec has no `secrets.team`)"
                        .to_string(),
                    [one] => format!("not in {one}"),
                    [a, b, ..] => format!("in neither {a} nor {b}"),
                };
                (
                    format!("secret {name} is {place}"),
                    provide_hint(&env.path, name, plan.team.is_some()),
                )
            }
            _ => continue,
        };
        out.push(Unresolved {
            name: name.clone(),
            at,
            kind: Kind::Input,
            message,
            hint: Some(hint),
        });
    }
    out
}

/// What [`declared`] finds: problems (the spec names a secret it does not declare, its team
/// file cannot be read) and warnings (a step expands a secret-like variable nothing provides).
#[derive(Debug, Default)]
pub struct Declared {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// Check a spec's secrets without any value, key or environment: every name a provider's auth
/// names is declared — in the team file (whose names are in clear), in `secrets.from_env`, or
/// in `secrets.personal`.
pub fn declared(env: &LoadedEnv) -> Declared {
    let mut out = Declared::default();
    let refs = match refs(env) {
        Ok(r) => r,
        Err(e) => {
            let mut d = Diagnostic::whole_file(strip_file(env, &e.message));
            d.hint = e.hint;
            out.errors.push(d);
            return out;
        }
    };
    let team_at = KeyPath::root().key("secrets").key("team");
    let team = match team_path(env).map(|p| SecretsFile::load(&p)).transpose() {
        Ok(team) => team,
        Err(e) => {
            let hint = e.hint.clone().unwrap_or_default();
            out.errors
                .push(env.diagnostic(&team_at, strip_file(env, &e.message), hint));
            None
        }
    };
    let in_team = |name: &str| team.as_ref().is_some_and(|f| f.values.contains_key(name));
    for (name, fields) in &refs.auth {
        if in_team(name) || refs.from_env.contains(name) || refs.personal.contains(name) {
            continue;
        }
        let message = match &team {
            Some(f) => format!(
                "secret {name} is not declared: it is in neither the team file {}{}, `secrets.from_env` nor `secrets.personal`",
                f.path.display(),
                if f.exists {
                    ""
                } else {
                    " (which does not exist yet)"
                }
            ),
            None => format!(
                "secret {name} is not declared: it is in neither `secrets.from_env` nor `secrets.personal`, and the spec has no team file (`secrets.team`)"
            ),
        };
        let hint = provide_hint(&env.path, name, team.is_some());
        // Every field that names it, so each line shows up; usually there is one.
        for at in refs.places.get(name).into_iter().flatten() {
            if fields.contains(&at.to_string()) {
                out.errors
                    .push(env.diagnostic(at, message.clone(), hint.clone()));
            }
        }
    }
    let mut provided: BTreeSet<String> = refs.places.keys().cloned().collect();
    if let Some(f) = &team {
        provided.extend(f.values.keys().cloned());
    }
    out.warnings = unprovided_step_variables(env, &provided);
    out
}

/// The message without the spec path a secrets error starts with (a diagnostic names the file
/// once, itself).
fn strip_file(env: &LoadedEnv, message: &str) -> String {
    let prefix = format!("{}: ", env.path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// Parts of a variable name that say "this holds a secret".
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "TOKENS",
    "SECRET",
    "SECRETS",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PASSPHRASE",
    "KEY",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "CREDS",
    "AUTH",
    "DSN",
    "PAT",
];

/// Variables with a secret-sounding word that the system sets and that are not secrets.
const WELL_KNOWN: &[&str] = &["SSH_AUTH_SOCK"];

/// Does `name` look like it holds a secret (`MY_TOKEN`, `SENTRY_DSN`, `NPM_AUTH_TOKEN`)?
fn secret_like(name: &str) -> bool {
    store::valid_name(name)
        && !WELL_KNOWN.contains(&name)
        && !name.starts_with("AGENTENV_")
        && name.split('_').any(|part| {
            SECRET_WORDS.contains(&part)
                || ["TOKEN", "SECRET", "PASSWORD", "APIKEY"]
                    .iter()
                    .any(|w| part.ends_with(w))
        })
}

/// The variables a `sh -c` script expands (`$NAME`, `${NAME}`, `${NAME:-…}`), in order, once
/// each; not inside single quotes, not escaped (`\$NAME`).
fn expanded_variables(script: &str) -> Vec<String> {
    let chars: Vec<char> = script.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if !single => i += 1,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '$' if !single => {
                let start = i + 1 + usize::from(chars.get(i + 1) == Some(&'{'));
                let mut end = start;
                while end < chars.len()
                    && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                    && !(end == start && chars[end].is_ascii_digit())
                {
                    end += 1;
                }
                if end > start {
                    let name: String = chars[start..end].iter().collect();
                    if !out.contains(&name) {
                        out.push(name);
                    }
                    i = end - 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Does the script set `name` itself (`NAME=…`, `export NAME=…`, `for NAME in`, `read NAME`)?
fn assigned_in(script: &str, name: &str) -> bool {
    let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
    let mut from = 0;
    while let Some(i) = script[from..].find(name) {
        let at = from + i;
        let before = script[..at].chars().next_back();
        let after = &script[at + name.len()..];
        if boundary(before) && before != Some('$') && before != Some('{') {
            if after.starts_with('=') {
                return true;
            }
            let line_start = script[..at]
                .rfind(['\n', ';', '&', '|'])
                .map_or(0, |p| p + 1);
            let words: Vec<&str> = script[line_start..at].split_whitespace().collect();
            if matches!(words.first(), Some(&"read") | Some(&"for")) {
                return true;
            }
        }
        from = at + name.len();
    }
    false
}

/// Setup steps that expand a secret-like variable no secret of the spec provides, no `env:`
/// sets and the script does not set itself: the step would see it empty (or, if agentenv's own
/// environment happens to have it, unmasked in its output).
fn unprovided_step_variables(env: &LoadedEnv, provided: &BTreeSet<String>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, step) in env.spec.setup.iter().enumerate() {
        let names: Vec<String> = expanded_variables(&step.run)
            .into_iter()
            .filter(|n| {
                secret_like(n)
                    && !provided.contains(n)
                    && !step.env.contains_key(n)
                    && !assigned_in(&step.run, n)
            })
            .collect();
        if names.is_empty() {
            continue;
        }
        let shown = names
            .iter()
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let first = &names[0];
        let at = KeyPath::root().key("setup").index(i).key("run");
        out.push(env.diagnostic(
            &at,
            format!(
                "step `{}` uses {shown}, which no secret of this spec provides: the step sees it empty, or unmasked if agentenv's own environment has it",
                step.name
            ),
            format!(
                "declare it: list it in `secrets.personal` (each person's own, `agentenv secret create {spec} --personal {first}`) or `secrets.from_env` (from the environment, then masked in output), or store it with `agentenv secret create {spec} --team {first}`; if it is not a secret, set it in the step's `env:`",
                spec = env.path.display()
            ),
        ));
    }
    out
}

/// Resolve every name the spec uses, or fail: first, before anything is decrypted, with every
/// name whose value cannot be had (each at the line that names it); then with the first value
/// that cannot be decrypted.
pub(crate) fn resolve(env: &LoadedEnv, vars: Lookup) -> Result<ResolvedSecrets> {
    let plan = plan(env, vars)?;
    if plan.names.is_empty() {
        return Ok(ResolvedSecrets::empty());
    }
    let missing = missing(env, &plan, vars);
    if !missing.is_empty() {
        let text: Vec<String> = missing
            .iter()
            .map(|m| m.diagnostic(env).render(&env.path))
            .collect();
        return Err(Error::input(text.join("\n")));
    }
    let (values, mut failed) = open_all(&plan, vars);
    match failed.pop_first() {
        Some((_, e)) => Err(e),
        None => Ok(ResolvedSecrets::from_values(values)),
    }
}

/// Every problem [`resolve`] would stop at, as spec problems: each missing name at its line,
/// else the first value that cannot be decrypted. Empty when everything resolves.
pub fn problems(env: &LoadedEnv, vars: Lookup) -> Vec<(Kind, Diagnostic)> {
    let plan = match plan(env, vars) {
        Ok(p) => p,
        Err(e) => return vec![(e.kind, whole_file(env, &e))],
    };
    let missing = missing(env, &plan, vars);
    if !missing.is_empty() {
        return missing
            .iter()
            .map(|m| (m.kind, m.diagnostic(env)))
            .collect();
    }
    let (_, mut failed) = open_all(&plan, vars);
    match failed.pop_first() {
        Some((name, e)) => {
            let at = plan.places.get(&name).and_then(|p| p.first()).cloned();
            let u = Unresolved::from_error(&name, at, &e);
            vec![(e.kind, u.diagnostic(env))]
        }
        None => Vec::new(),
    }
}

fn whole_file(env: &LoadedEnv, e: &Error) -> Diagnostic {
    let mut d = Diagnostic::whole_file(format!("secrets: {}", strip_file(env, &e.message)));
    d.hint = e.hint.clone();
    d
}

/// What [`resolve_available`] could and could not resolve.
pub struct Partial {
    pub secrets: ResolvedSecrets,
    /// Each name whose value cannot be had, with why and what to do.
    pub unresolved: Vec<Unresolved>,
}

/// Resolve what can be resolved, and say for each other name why not: for `check`, which
/// tests what it can and names the missing secret in each check that needed it. Fails only
/// when the spec's secrets files cannot be read at all.
pub fn resolve_available(env: &LoadedEnv, vars: Lookup) -> Result<Partial> {
    let plan = plan(env, vars)?;
    let mut unresolved = missing(env, &plan, vars);
    let skip: BTreeSet<String> = unresolved.iter().map(|u| u.name.clone()).collect();
    let plan = Plan {
        names: plan
            .names
            .into_iter()
            .filter(|(n, _)| !skip.contains(n))
            .collect(),
        ..plan
    };
    let (values, failed) = open_all(&plan, vars);
    for (name, e) in failed {
        let at = plan.places.get(&name).and_then(|p| p.first()).cloned();
        unresolved.push(Unresolved::from_error(&name, at, &e));
    }
    Ok(Partial {
        secrets: ResolvedSecrets::from_values(values),
        unresolved,
    })
}

/// Decrypt or read every name of the plan that has a source; the values, and the names that
/// failed with why. Identities are looked for only when a file value is needed.
fn open_all(plan: &Plan, vars: Lookup) -> (BTreeMap<String, String>, BTreeMap<String, Error>) {
    let mut values = BTreeMap::new();
    let mut failed = BTreeMap::new();
    let file_of = |source: Source| match source {
        Source::Personal => plan.personal.as_ref(),
        Source::Team => plan.team.as_ref(),
        _ => None,
    };
    let first_encrypted = plan
        .names
        .iter()
        .find_map(|(name, s)| file_of(*s).map(|f| (name.as_str(), f)));
    let ids: Option<Result<Identities>> =
        first_encrypted.map(|(name, file)| require_identities(vars, name, file));
    for (name, source) in &plan.names {
        let value = match (source, file_of(*source)) {
            (Source::Personal | Source::Team, Some(file)) => match &ids {
                Some(Ok(ids)) => {
                    let origin = Origin {
                        file: &file.path,
                        recipients: &file.recipients,
                    };
                    store::open(name, &file.values[name], ids, &origin)
                }
                // No identity: every encrypted value fails for the same reason, said for each
                // with the file it is in.
                Some(Err(_)) | None => Err(require_identities(vars, name, file)
                    .err()
                    .unwrap_or_else(|| Error::auth("no age identity"))),
            },
            (Source::Env, _) => {
                let v = Zeroizing::new(vars(name).unwrap_or_default());
                store::check_value(name, &v)
                    .map(|()| v)
                    .map_err(|e| e.context(format!("environment variable {name}")))
            }
            _ => continue,
        };
        match value {
            Ok(v) => {
                values.insert(name.clone(), v.to_string());
            }
            Err(e) => {
                failed.insert(name.clone(), e);
            }
        }
    }
    (values, failed)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expanded_variables_follow_shell_quoting() {
        assert_eq!(
            expanded_variables(
                r#"curl -H "Bearer $MY_TOKEN" ${SENTRY_DSN:-x} $1 '$NOT_ME' \$ALSO_NOT"#
            ),
            ["MY_TOKEN", "SENTRY_DSN"]
        );
        assert_eq!(
            expanded_variables("echo \"it's $A_KEY\"; echo $A_KEY"),
            ["A_KEY"]
        );
        assert!(expanded_variables("echo $ $$ ${} $9").is_empty());
    }

    #[test]
    fn secret_like_names() {
        for yes in [
            "MY_TOKEN",
            "SENTRY_DSN",
            "NPM_AUTH_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "GHTOKEN",
            "DB_PASSWORD",
        ] {
            assert!(secret_like(yes), "{yes}");
        }
        for no in [
            "HOME",
            "PATH",
            "SSH_AUTH_SOCK",
            "CARGO_NET_RETRY",
            "my_token",
            "AGENTENV_AGE_KEY",
            "KEYBOARD",
        ] {
            assert!(!secret_like(no), "{no}");
        }
    }

    #[test]
    fn assignments_in_the_script_are_seen() {
        assert!(assigned_in("MY_TOKEN=$(cat f); use $MY_TOKEN", "MY_TOKEN"));
        assert!(assigned_in("export MY_TOKEN=x", "MY_TOKEN"));
        assert!(assigned_in(
            "for MY_KEY in a b; do echo $MY_KEY; done",
            "MY_KEY"
        ));
        assert!(assigned_in(
            "read -r MY_TOKEN < f; echo $MY_TOKEN",
            "MY_TOKEN"
        ));
        assert!(!assigned_in("curl -H \"$MY_TOKEN\"", "MY_TOKEN"));
        assert!(!assigned_in("echo X_MY_TOKEN=1 $MY_TOKEN", "MY_TOKEN"));
    }
}
