//! Who can decrypt (identities, private) and who things are encrypted to (recipients, public).
//!
//! Identities are looked up in this order; the first source that is set wins, so an explicit
//! setting is never silently mixed with keys lying around in the home directory:
//! 1. `AGENTENV_AGE_KEY`: the key text itself (for containers: a Kubernetes Secret or CI variable);
//! 2. `AGENTENV_AGE_KEY_FILE`: a path to a key file;
//! 3. the defaults, all of those that exist: `$XDG_CONFIG_HOME/agentenv/key.txt` (else
//!    `~/.config/agentenv/key.txt`), `~/.ssh/id_ed25519`, `~/.ssh/id_rsa`.
//!
//! A key file holds age X25519 identities (`AGE-SECRET-KEY-1…`, one per line, `#` comments, the
//! format `age-keygen` writes) or one unencrypted OpenSSH private key (ed25519 or RSA).

use std::io::Write;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;

use super::Lookup;
use crate::error::{Error, Result};

/// The identities available to this process, with their public keys for messages and for
/// encrypting personal secrets.
pub(crate) struct Identities {
    keys: Vec<Box<dyn age::Identity>>,
    /// Public keys (recipient strings) of `keys`, normalized.
    pub publics: Vec<String>,
    /// Where the keys came from, for messages: `AGENTENV_AGE_KEY`, or file paths.
    pub sources: Vec<String>,
    /// Default keys that exist but could not be used (passphrase-protected SSH keys), for messages.
    pub skipped: Vec<String>,
}

impl Identities {
    pub fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k.as_ref())
    }

    /// "your keys: age1… (from /home/me/.config/agentenv/key.txt)" for error messages.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "your key{} {} (from {})",
            if self.publics.len() == 1 { "" } else { "s" },
            self.publics.join(", "),
            self.sources.join(", ")
        );
        if !self.skipped.is_empty() {
            s.push_str(&format!("; skipped {}", self.skipped.join(", ")));
        }
        s
    }
}

/// `$XDG_CONFIG_HOME/agentenv`, else `$HOME/.config/agentenv`.
pub(crate) fn config_dir(vars: Lookup) -> Option<PathBuf> {
    if let Some(x) = vars("XDG_CONFIG_HOME").filter(|x| Path::new(x).is_absolute()) {
        return Some(PathBuf::from(x).join("agentenv"));
    }
    vars("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".config").join("agentenv"))
}

/// Where `secret create --personal` puts a new key when there is none.
pub(crate) fn default_key_file(vars: Lookup) -> Option<PathBuf> {
    match vars("AGENTENV_AGE_KEY_FILE").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => config_dir(vars).map(|d| d.join("key.txt")),
    }
}

/// Find and parse the identities. `Ok(None)` when no source is set and no default key exists.
pub(crate) fn discover(vars: Lookup) -> Result<Option<Identities>> {
    let mut ids = Identities {
        keys: Vec::new(),
        publics: Vec::new(),
        sources: Vec::new(),
        skipped: Vec::new(),
    };
    if let Some(text) = vars("AGENTENV_AGE_KEY").filter(|t| !t.trim().is_empty()) {
        parse_key_text(&text, "AGENTENV_AGE_KEY", &mut ids)?;
        ids.sources.push("AGENTENV_AGE_KEY".into());
        return Ok(Some(ids));
    }
    if let Some(file) = vars("AGENTENV_AGE_KEY_FILE").filter(|f| !f.is_empty()) {
        let path = PathBuf::from(file);
        let text = read_key_file(&path).map_err(|e| {
            e.with_hint("AGENTENV_AGE_KEY_FILE must name a readable age or SSH private key file")
        })?;
        parse_key_text(&text, &path.display().to_string(), &mut ids)?;
        ids.sources.push(path.display().to_string());
        return Ok(Some(ids));
    }
    let mut defaults = Vec::new();
    if let Some(dir) = config_dir(vars) {
        defaults.push((dir.join("key.txt"), false));
    }
    if let Some(home) = vars("HOME").filter(|h| !h.is_empty()) {
        let ssh = PathBuf::from(home).join(".ssh");
        defaults.push((ssh.join("id_ed25519"), true));
        defaults.push((ssh.join("id_rsa"), true));
    }
    for (path, is_ssh) in defaults {
        if !path.is_file() {
            continue;
        }
        let text = read_key_file(&path)?;
        let shown = path.display().to_string();
        if is_ssh {
            // A passphrase-protected or unsupported SSH key is common and must not stop a user
            // whose age key works: skip it, and mention it if nothing decrypts.
            match parse_ssh_key(&text, &shown) {
                Ok((key, public)) => {
                    ids.keys.push(key);
                    ids.publics.push(public);
                    ids.sources.push(shown);
                }
                Err(e) => ids.skipped.push(format!("{shown} ({})", e.message)),
            }
        } else {
            parse_key_text(&text, &shown, &mut ids)?;
            ids.sources.push(shown);
        }
    }
    Ok((!ids.keys.is_empty()).then_some(ids))
}

/// The largest key file read: an RSA-16384 OpenSSH key is 12 KB; a list of age keys a few KB.
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

fn read_key_file(path: &Path) -> Result<String> {
    warn_if_shared(path, "key file");
    // Bounded: AGENTENV_AGE_KEY_FILE pointed at a device or a large file must not hang.
    crate::spec::yaml::read_file(path, MAX_KEY_FILE_BYTES)
        .map_err(|e| Error::auth(format!("cannot read the key file {}: {e}", path.display())))
}

/// Print a warning when a file holding key material is readable by group or others.
pub(crate) fn warn_if_shared(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: the {what} {} is readable by others (mode {mode:03o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

/// Parse key text into `ids`. Error messages name the source and a line, never key material.
fn parse_key_text(text: &str, source: &str, ids: &mut Identities) -> Result<()> {
    if text.contains("-----BEGIN") {
        let (key, public) = parse_ssh_key(text, source)?;
        ids.keys.push(key);
        ids.publics.push(public);
        return Ok(());
    }
    let mut found = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key: age::x25519::Identity = line.parse().map_err(|_| {
            Error::auth(format!(
                "{source}: line {} is not an age identity (AGE-SECRET-KEY-1…)",
                i + 1
            ))
            .with_hint("a key file holds the output of `age-keygen`, or an unencrypted OpenSSH private key")
        })?;
        ids.publics.push(key.to_public().to_string());
        ids.keys.push(Box::new(key));
        found = true;
    }
    if !found {
        return Err(Error::auth(format!("{source}: holds no age identity"))
            .with_hint("a key file holds the output of `age-keygen`, or an unencrypted OpenSSH private key"));
    }
    Ok(())
}

fn parse_ssh_key(text: &str, source: &str) -> Result<(Box<dyn age::Identity>, String)> {
    let key = age::ssh::Identity::from_buffer(text.as_bytes(), Some(source.to_string()))
        .map_err(|_| Error::auth(format!("{source}: not a valid OpenSSH private key")))?;
    match &key {
        age::ssh::Identity::Unencrypted(_) => {}
        age::ssh::Identity::Encrypted(_) => {
            return Err(Error::auth(format!("{source}: passphrase-protected SSH keys are not supported"))
                .with_hint("use an age key (`age-keygen -o key.txt`) and AGENTENV_AGE_KEY_FILE, or an unencrypted SSH key"));
        }
        age::ssh::Identity::Unsupported(_) => {
            return Err(Error::auth(format!(
                "{source}: unsupported SSH key type (only ssh-ed25519 and ssh-rsa work with age)"
            )));
        }
    }
    let public = age::ssh::Recipient::try_from(key.clone())
        .map_err(|_| Error::auth(format!("{source}: cannot derive the SSH public key")))?
        .to_string();
    Ok((Box::new(key), public))
}

/// A recipient parsed from its public text form.
pub(crate) enum Recipient {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    /// Parse `age1…`, `ssh-ed25519 AAAA… [comment]` or `ssh-rsa AAAA… [comment]`. `what` says
    /// where the text came from (`secrets.recipients[2]`). The error never echoes the text in
    /// full: a private key pasted by mistake must not be printed back.
    pub fn parse(text: &str, what: &str) -> Result<Recipient> {
        let t = text.trim();
        let how = "use age X25519 recipients (`age1…`, from `age-keygen -y KEYFILE`) or SSH public keys (`ssh-ed25519 AAAA…`, `ssh-rsa AAAA…`)";
        if t.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") || t.contains("PRIVATE KEY") {
            return Err(Error::input(format!("{what} is a PRIVATE key, not a recipient"))
                .with_hint(format!("remove it from the file now, treat that key as leaked and generate a new one; {how}")));
        }
        if t.starts_with("age1") {
            return t
                .parse::<age::x25519::Recipient>()
                .map(Recipient::X25519)
                .map_err(|e| {
                    Error::input(format!("{what}: invalid age recipient: {e}")).with_hint(how)
                });
        }
        if t.starts_with("ssh-") {
            return t
                .parse::<age::ssh::Recipient>()
                .map(Recipient::Ssh)
                .map_err(|e| {
                    let why = match e {
                        age::ssh::ParseRecipientKeyError::RsaModulusTooSmall => {
                            "the RSA key is shorter than 2048 bits".to_string()
                        }
                        age::ssh::ParseRecipientKeyError::RsaModulusTooLarge => {
                            "the RSA key is too large".to_string()
                        }
                        age::ssh::ParseRecipientKeyError::Unsupported(kind) => {
                            format!("SSH key type `{kind}` is not supported by age")
                        }
                        _ => "not a valid SSH public key".to_string(),
                    };
                    Error::input(format!("{what}: {why}")).with_hint(how)
                });
        }
        let kind: String = t
            .split_whitespace()
            .next()
            .unwrap_or("")
            .chars()
            .take(24)
            .collect();
        Err(Error::input(format!("{what}: unknown recipient format `{kind}…`")).with_hint(how))
    }

    pub fn as_dyn(&self) -> &dyn age::Recipient {
        match self {
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
        }
    }

    /// The canonical text form (SSH comments dropped), for comparing recipient lists.
    pub fn canonical(&self) -> String {
        match self {
            Recipient::X25519(r) => r.to_string(),
            Recipient::Ssh(r) => r.to_string(),
        }
    }
}

/// Parse a list of recipient strings; `what` names the list (`secrets.recipients`).
pub(crate) fn parse_recipients(list: &[String], what: &str) -> Result<Vec<Recipient>> {
    list.iter()
        .enumerate()
        .map(|(i, r)| Recipient::parse(r, &format!("{what}[{i}]")))
        .collect()
}

/// Canonical form of a recipient string for comparisons; unparseable text compares as itself.
pub(crate) fn canonical(text: &str) -> String {
    Recipient::parse(text, "recipient")
        .map(|r| r.canonical())
        .unwrap_or_else(|_| text.trim().to_string())
}

/// Generate a new age key at `path` (mode 0600, never overwriting) and return its public key.
pub(crate) struct NewKey {
    pub identity: age::x25519::Identity,
    pub public: String,
}

impl NewKey {
    pub fn generate() -> NewKey {
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        NewKey { identity, public }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::failure(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                Error::failure(format!(
                    "cannot create the key file {}: {e}",
                    path.display()
                ))
            })?;
        let text = format!(
            "# created by agentenv: {}\n# public key: {}\n{}\n",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.public,
            self.identity.to_string().expose_secret()
        );
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| {
                let _ = std::fs::remove_file(path);
                Error::failure(format!("cannot write the key file {}: {e}", path.display()))
            })
    }
}
