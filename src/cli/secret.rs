//! `agentenv secret create|update|remove|list|rekey ENV …`: manage the age-encrypted
//! secrets a spec refers to, in the team file (committed to git, encrypted to
//! `secrets.recipients`) or your personal file (encrypted to your own key). A value is read
//! from a no-echo prompt on a terminal, else from stdin; no command ever prints one. The
//! operations themselves are in [`crate::secrets::manage`].

use std::io::{BufRead, Read};
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::output;
use crate::error::{Error, Result};
use crate::secrets::manage::{self, Change, Place};
use crate::secrets::{Lookup, Source, process_env};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a secret; the value is read from a no-echo prompt on a terminal, else stdin
    /// (one trailing newline is removed). Refuses a name that exists (use `update`).
    Create(Target),
    /// Replace a secret's value (read as for `create`). Refuses a name that does not exist.
    Update(Target),
    /// Delete a secret.
    Remove(Target),
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

/// The secret a `create`, `update` or `remove` is about.
#[derive(Debug, clap::Args)]
pub struct Target {
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
pub fn run(cmd: Command) -> Result<()> {
    let vars: Lookup = &process_env;
    match cmd {
        Command::Create(t) => change(Change::Create, &t, vars),
        Command::Update(t) => change(Change::Update, &t, vars),
        Command::Remove(t) => change(Change::Remove, &t, vars),
        Command::List { env, json } => list(&env, json, vars),
        Command::Rekey { env } => rekey(&env, vars),
    }
}

fn change(change: Change, t: &Target, vars: Lookup) -> Result<()> {
    let place = if t.personal {
        Place::Personal
    } else {
        Place::Team
    };
    let done = manage::change(change, &t.env, &t.name, place, &read_value, vars)?;
    let (scope, file) = (done.place.as_str(), done.file.display());
    if let Some((path, public)) = &done.new_key {
        output::eprint(&format!(
            "generated a new age key at {} (public key {public}); back it up: without it your personal secrets are lost\n",
            path.display()
        ));
    }
    let verb = match done.change {
        Change::Remove => {
            return output::print(&format!(
                "removed {scope} secret {} from {file}\n",
                done.name
            ));
        }
        Change::Create => "created",
        Change::Update => "updated",
    };
    output::print(&format!(
        "{verb} {scope} secret {} in {file} (encrypted to {} recipient{})\n",
        done.name,
        done.recipients,
        plural(done.recipients)
    ))
}

fn rekey(env: &std::path::Path, vars: Lookup) -> Result<()> {
    let done = manage::rekey(env, vars)?;
    output::print(&format!(
        "re-encrypted {} team secret{} in {} to {} recipient{} (added {}, removed {})\n",
        done.values,
        plural(done.values),
        done.file.display(),
        done.recipients,
        plural(done.recipients),
        done.added,
        done.removed
    ))?;
    if done.removed > 0 && done.values > 0 {
        output::eprint(
            "note: removed recipients could read these values before (they stay in git history): rotate them and `agentenv secret update` each\n",
        );
    }
    Ok(())
}

fn list(env: &std::path::Path, json: bool, vars: Lookup) -> Result<()> {
    let listing = manage::list(env, vars)?;
    if json {
        // Through a JSON value, so keys come out sorted, as they always have.
        let doc = serde_json::to_value(&listing).expect("a listing is plain data");
        return output::print_json_line(&doc);
    }
    let mut text = String::new();
    if listing.secrets.is_empty() {
        text.push_str(&format!(
            "{}: no secrets are referenced or stored\n",
            listing.spec.display()
        ));
    } else {
        let width = listing
            .secrets
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        text.push_str(&format!("{:width$}  SOURCE\n", "NAME"));
        for s in &listing.secrets {
            let mut notes = Vec::new();
            if s.in_personal && s.in_team {
                notes.push("overrides team".to_string());
            }
            if s.source == Source::Env {
                notes.push(if s.env_set { "set" } else { "NOT set" }.to_string());
            }
            if !s.used_by.is_empty() {
                notes.push(format!("used by {}", s.used_by.join(", ")));
            }
            let source = serde_json::to_value(s.source).expect("a source is a word");
            text.push_str(&format!(
                "{:width$}  {}",
                s.name,
                source.as_str().unwrap_or("?")
            ));
            if !notes.is_empty() {
                text.push_str(&format!(" ({})", notes.join("; ")));
            }
            text.push('\n');
        }
    }
    let team = listing.team.as_ref().map(|t| &t.listed);
    for (label, f) in [("team", team), ("personal", listing.personal.as_ref())] {
        let Some(f) = f else { continue };
        if f.exists {
            text.push_str(&format!(
                "{label} file: {} — encrypted to: {}\n",
                f.file,
                f.recipients_text()
            ));
        } else {
            text.push_str(&format!("{label} file: {} (does not exist yet)\n", f.file));
        }
    }
    if listing.team.as_ref().is_some_and(|t| t.rekey_needed) {
        text.push_str(&format!(
            "secrets.recipients differs from the team file's recipients: run `agentenv secret rekey {}`\n",
            listing.spec.display()
        ));
    }
    output::print(&text)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
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
        .take((crate::secrets::MAX_VALUE_BYTES + 2) as u64)
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
    output::eprint(prompt);
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
