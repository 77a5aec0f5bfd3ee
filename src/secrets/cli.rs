//! `agentenv secret …`: create, update, remove, list, rekey. No command prints a value, and a
//! command that fails leaves every file as it was (all checks run before anything is
//! written, and files are replaced atomically).

use std::collections::BTreeSet;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::identity::{self, NewKey};
use super::resolve::{self, Source};
use super::store::{self, Origin, SecretsFile};
use super::{Lookup, process_env};
use crate::error::{Error, Result};
use crate::spec::LoadedEnv;

#[derive(Debug, clap::Subcommand)]
pub enum SecretCommand {
    /// Add a secret; the value is read from a no-echo prompt on a terminal, else stdin
    /// (one trailing newline is removed). Refuses a name that exists (use `update`).
    Create(SecretTarget),
    /// Replace a secret's value (read as for `create`). Refuses a name that does not exist.
    Update(SecretTarget),
    /// Delete a secret.
    Remove(SecretTarget),
    /// List secret names, where they live and who can decrypt them (never values).
    List {
        /// The environment spec (YAML).
        env: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Re-encrypt every team secret to the spec's current `secrets.recipients` (after adding
    /// or removing someone). Needs a key that can decrypt them.
    Rekey {
        /// The environment spec (YAML).
        env: PathBuf,
    },
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

/// `agentenv secret …`.
pub fn run(cmd: SecretCommand) -> Result<()> {
    let vars: Lookup = &process_env;
    match cmd {
        SecretCommand::Create(t) => change(Op::Create, &t, vars),
        SecretCommand::Update(t) => change(Op::Update, &t, vars),
        SecretCommand::Remove(t) => change(Op::Remove, &t, vars),
        SecretCommand::List { env, json } => list(&env, json, vars),
        SecretCommand::Rekey { env } => rekey(&env, vars),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Update,
    Remove,
}

/// The file a `create`/`update`/`remove` changes.
fn target_path(env: &LoadedEnv, t: &SecretTarget, vars: Lookup) -> Result<PathBuf> {
    if t.personal {
        return resolve::personal_path(vars).ok_or_else(|| {
            Error::input("cannot locate the personal secrets file: HOME is not set")
                .with_hint("set AGENTENV_PERSONAL_FILE, XDG_CONFIG_HOME or HOME")
        });
    }
    team_path(env)
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

/// `create`, `update` and `remove`.
fn change(op: Op, t: &SecretTarget, vars: Lookup) -> Result<()> {
    store::check_name(&t.name, "NAME")?;
    let env = LoadedEnv::load(&t.env)?;
    let personal = t.personal;
    let path = target_path(&env, t, vars)?;
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
    let scope = if personal { "personal" } else { "team" };
    let shown = file.path.display().to_string();
    let exists = file.values.contains_key(&t.name);
    match op {
        Op::Create if exists => {
            return Err(
                Error::input(format!("{} already exists in {shown}", t.name)).with_hint(format!(
                    "use `agentenv secret update {} --{scope} {}` to change it",
                    t.env.display(),
                    t.name
                )),
            );
        }
        Op::Update | Op::Remove if !exists => {
            return Err(
                Error::not_found(format!("{} is not in {shown}", t.name)).with_hint(format!(
                    "`agentenv secret list {}` shows the names; `create` adds one",
                    t.env.display()
                )),
            );
        }
        _ => {}
    }
    if op == Op::Remove {
        file.values.remove(&t.name);
        file.save(personal)?;
        println!("removed {scope} secret {} from {shown}", t.name);
        return Ok(());
    }
    let others = file.values.keys().any(|n| n != &t.name);
    let (recipients, new_key) = if personal {
        personal_recipients(&file, others, vars)?
    } else {
        (team_recipients(&env, &file, others)?, None)
    };
    let value = read_value(&t.name)?;
    store::check_value(&t.name, &value)?;
    let parsed = identity::parse_recipients(&recipients, "recipients")?;
    let armored = store::seal(&t.name, &value, &parsed)?;
    file.values.insert(t.name.clone(), armored);
    file.recipients = recipients;
    let mut key_written = None;
    if let Some(key) = new_key {
        let path = identity::default_key_file(vars).ok_or_else(|| {
            Error::input("cannot choose where to put a new key: HOME is not set")
                .with_hint("set AGENTENV_AGE_KEY_FILE, XDG_CONFIG_HOME or HOME")
        })?;
        key.write(&path)?;
        eprintln!(
            "generated a new age key at {} (public key {}); back it up: without it your personal secrets are lost",
            path.display(),
            key.public
        );
        key_written = Some(path);
    }
    if let Err(e) = file.save(personal) {
        if let Some(path) = key_written {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    let verb = if op == Op::Create {
        "created"
    } else {
        "updated"
    };
    println!(
        "{verb} {scope} secret {} in {shown} (encrypted to {} recipient{})",
        t.name,
        file.recipients.len(),
        if file.recipients.len() == 1 { "" } else { "s" }
    );
    Ok(())
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

/// `rekey`: decrypt every team value, then encrypt it to the spec's recipients; all or nothing.
fn rekey(env_path: &Path, vars: Lookup) -> Result<()> {
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
    println!(
        "re-encrypted {} team secret{} in {} to {} recipient{} (added {}, removed {})",
        file.values.len(),
        if file.values.len() == 1 { "" } else { "s" },
        file.path.display(),
        file.recipients.len(),
        if file.recipients.len() == 1 { "" } else { "s" },
        added.len(),
        removed.len()
    );
    if !removed.is_empty() && !file.values.is_empty() {
        eprintln!(
            "note: removed recipients could read these values before (they stay in git history): rotate them and `agentenv secret update` each"
        );
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct ListedSecret {
    name: String,
    /// Where the value is taken from: personal, team, env, or missing.
    source: Source,
    in_personal: bool,
    in_team: bool,
    from_env: bool,
    used_by: Vec<String>,
}

#[derive(serde::Serialize)]
struct ListedFile {
    file: String,
    exists: bool,
    recipients: Vec<String>,
}

/// `list`: names, where they come from, who can decrypt them. Decrypts nothing.
fn list(env_path: &Path, json: bool, vars: Lookup) -> Result<()> {
    let env = LoadedEnv::load(env_path)?;
    let plan = resolve::plan(&env, vars)?;
    let secrets: Vec<ListedSecret> = plan
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
    let rekey_needed = plan.team.as_ref().is_some_and(|f| {
        let (a, r) = diff(&f.recipients, &spec_recipients);
        !f.values.is_empty() && (!a.is_empty() || !r.is_empty())
    });
    if json {
        let out = serde_json::json!({
            "secrets": secrets,
            "team": plan.team.as_ref().map(|f| {
                let mut v = serde_json::to_value(listed(f)).expect("serializes");
                v["spec_recipients"] = serde_json::json!(spec_recipients);
                v["rekey_needed"] = serde_json::json!(rekey_needed);
                v
            }),
            "personal": plan.personal.as_ref().map(listed),
        });
        println!("{out}");
        return Ok(());
    }
    if secrets.is_empty() {
        println!(
            "{}: no secrets are referenced or stored",
            env.path.display()
        );
    } else {
        let width = secrets
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!("{:width$}  SOURCE", "NAME");
        for s in &secrets {
            let mut notes = Vec::new();
            if s.in_personal && s.in_team {
                notes.push("overrides team".to_string());
            }
            if s.source == Source::Env {
                let set = vars(&s.name).is_some_and(|v| !v.is_empty());
                notes.push(if set { "set" } else { "NOT set" }.to_string());
            }
            if !s.used_by.is_empty() {
                notes.push(format!("used by {}", s.used_by.join(", ")));
            }
            let source = serde_json::to_value(s.source).expect("serializes");
            let mut line = format!("{:width$}  {}", s.name, source.as_str().unwrap_or("?"));
            if !notes.is_empty() {
                line.push_str(&format!(" ({})", notes.join("; ")));
            }
            println!("{line}");
        }
    }
    for (label, f) in [("team", &plan.team), ("personal", &plan.personal)] {
        let Some(f) = f else { continue };
        if !f.exists {
            println!("{label} file: {} (does not exist yet)", f.path.display());
            continue;
        }
        println!(
            "{label} file: {} — encrypted to: {}",
            f.path.display(),
            f.recipients_text()
        );
    }
    if rekey_needed {
        println!(
            "secrets.recipients differs from the team file's recipients: run `agentenv secret rekey {}`",
            env.path.display()
        );
    }
    Ok(())
}

/// The value, from a no-echo prompt when stdin is a terminal, else all of stdin minus one
/// trailing newline. Never echoed, never logged.
fn read_value(name: &str) -> Result<Zeroizing<String>> {
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(0) } == 1;
    if tty {
        let first = prompt_hidden(&format!("value for {name} (input hidden): "))?;
        let again = prompt_hidden("again, to confirm: ")?;
        if first != again {
            return Err(Error::input("the two entries differ; nothing was changed"));
        }
        return Ok(first);
    }
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take((store::MAX_VALUE_BYTES + 2) as u64)
        .read_to_end(&mut buf)
        .map_err(|e| Error::failure(format!("reading the value from stdin: {e}")))?;
    let mut text = Zeroizing::new(
        std::str::from_utf8(&buf)
            .map_err(|_| Error::input(format!("the value of {name} on stdin is not UTF-8 text")))?
            .to_string(),
    );
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// Read one line from the terminal with echo off. Uses termios directly (libc is already a
/// dependency; a crate for these few lines would add more than it saves). Signals are off
/// too, so Ctrl-C arrives as a character and the terminal is always restored.
fn prompt_hidden(prompt: &str) -> Result<Zeroizing<String>> {
    struct Restore(libc::termios);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores the settings read by tcgetattr on the same descriptor.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
        }
    }
    // SAFETY: termios is plain data; tcgetattr fills it or fails.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(0, &mut term) } != 0 {
        return Err(Error::failure("cannot read the terminal settings"));
    }
    let restore = Restore(term);
    term.c_lflag &= !(libc::ECHO | libc::ISIG);
    term.c_lflag |= libc::ECHONL;
    // SAFETY: a valid termios for descriptor 0.
    if unsafe { libc::tcsetattr(0, libc::TCSANOW, &term) } != 0 {
        return Err(Error::failure("cannot turn off terminal echo"));
    }
    // Only now: whatever is typed (or pasted) once the prompt shows must not be echoed.
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = Zeroizing::new(String::new());
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::failure(format!("reading the value: {e}")))?;
    drop(restore);
    if line.contains('\u{3}') {
        return Err(Error::input("cancelled; nothing was changed"));
    }
    if n == 0 {
        return Err(Error::input("no value entered; nothing was changed"));
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(line)
}
