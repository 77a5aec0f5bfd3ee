//! The secrets files: a YAML mapping of NAME → one ASCII-armored age ciphertext, plus the
//! `recipients` list the values are encrypted to. One value per key keeps a change to one
//! secret a change to its own lines only, so files diff and merge cleanly in git.
//!
//! Every plaintext carries its name on a first line, `agentenv-secret/v1 NAME`, followed by the
//! value's bytes exactly (no trailing newline added). Decryption checks that name against the
//! key the ciphertext is stored under, so a ciphertext copied or moved to another name is
//! refused as tampering. Anyone can produce a valid value with the age CLI:
//! `printf 'agentenv-secret/v1 %s\n%s' NAME "$VALUE" | age -e -a -r RECIPIENT`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::identity::{Identities, Recipient};
use crate::error::{Error, Result};
use crate::spec::yaml::{self, Entry, Pos, ReadError, Value as YamlValue};

/// The first line of every plaintext, before the name.
pub(crate) const BINDING_PREFIX: &str = "agentenv-secret/v1 ";
/// The reserved key holding the recipients; it cannot clash with a name (names are upper case).
const RECIPIENTS_KEY: &str = "recipients";
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
const ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";
/// Larger values cannot be passed as one environment variable on Linux (MAX_ARG_STRLEN).
pub(crate) const MAX_VALUE_BYTES: usize = 128 * 1024;
/// The largest secrets file read: room for about ninety values of the largest size, armored.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Shorter values cannot be redacted without masking ordinary text everywhere.
pub(crate) const MIN_VALUE_CHARS: usize = 4;

/// Is `name` a valid secret name, `[A-Z_][A-Z0-9_]*`?
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

pub(crate) fn check_name(name: &str, what: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(Error::input(format!(
            "{what}: `{}` is not a valid secret name",
            name.escape_debug()
        ))
        .with_hint("names are upper-case letters, digits and `_`, not starting with a digit: [A-Z_][A-Z0-9_]*"))
    }
}

/// Check a value before it is stored or used. Errors never include the value.
pub(crate) fn check_value(name: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::input(format!("the value of {name} is empty")));
    }
    if value.chars().count() < MIN_VALUE_CHARS {
        return Err(Error::input(format!(
            "the value of {name} is shorter than {MIN_VALUE_CHARS} characters"
        ))
        .with_hint("so short a value cannot be masked in output without masking ordinary text; use a real secret"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::input(format!(
            "the value of {name} is larger than {} KiB, too large for an environment variable",
            MAX_VALUE_BYTES / 1024
        )));
    }
    if value.contains('\0') {
        return Err(Error::input(format!(
            "the value of {name} contains a NUL byte, which an environment variable cannot hold"
        )));
    }
    Ok(())
}

/// One secrets file, in memory.
#[derive(Debug, Clone)]
pub(crate) struct SecretsFile {
    pub path: PathBuf,
    pub exists: bool,
    /// The recipients every value is encrypted to, as recorded in the file.
    pub recipients: Vec<String>,
    /// NAME → armored ciphertext.
    pub values: BTreeMap<String, String>,
}

impl SecretsFile {
    /// Read a secrets file; a file that does not exist is an empty store.
    pub fn load(path: &Path) -> Result<SecretsFile> {
        match yaml::read_file(path, MAX_FILE_BYTES) {
            Ok(text) => Self::parse(path, &text),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(SecretsFile {
                path: path.to_path_buf(),
                exists: false,
                recipients: Vec::new(),
                values: BTreeMap::new(),
            }),
            Err(ReadError::Io(e)) => Err(Error::failure(format!(
                "cannot read the secrets file {}: {e}",
                path.display()
            ))),
            Err(e @ ReadError::TooLarge { .. }) => Err(Error::input(format!(
                "{}: not a secrets file: {e}",
                path.display()
            ))
            .with_hint("check that secrets.team names the right file")),
            Err(ReadError::NotUtf8 { pos, hint, .. }) => Err(Error::input(format!(
                "{}:{}:{}: not a secrets file: not UTF-8 text",
                path.display(),
                pos.line,
                pos.column
            ))
            .with_hint(hint)),
        }
    }

    /// Parse and check the structure (not the ciphertexts: those are checked on decryption, so
    /// a broken value can still be replaced or removed). Errors point at `file:line:column`
    /// and never quote values.
    ///
    /// A file cut short is refused, not read as the part that is left: every value must run
    /// to its END line, every recorded recipient must parse, and a file with nothing in it
    /// (we always write `recipients:`) is not an empty store.
    pub fn parse(path: &Path, text: &str) -> Result<SecretsFile> {
        let shown = path.display();
        let how = "a secrets file is a YAML mapping of NAME to an age-armored value, managed with `agentenv secret create|update|remove`";
        let at = |pos: Pos| format!("{shown}:{}:{}", pos.line, pos.column);
        let doc = yaml::parse_document(text).map_err(|d| {
            let place = match (d.line, d.column) {
                (Some(line), Some(column)) => format!("{shown}:{line}:{column}"),
                _ => shown.to_string(),
            };
            Error::input(format!("{place}: not a valid secrets file: {}", d.message))
                .with_hint(d.hint.unwrap_or_else(|| how.to_string()))
        })?;
        let mut file = SecretsFile {
            path: path.to_path_buf(),
            exists: true,
            recipients: Vec::new(),
            values: BTreeMap::new(),
        };
        let Some(doc) = doc else {
            return Err(Error::input(format!(
                "{shown}: the secrets file holds nothing (no `recipients:`, no values): it is empty or was cut short"
            ))
            .with_hint("restore it from git; if it is meant to be new, delete it and use `agentenv secret create`"));
        };
        let entries = match &doc.value {
            YamlValue::Map(entries) => entries,
            other => {
                let found = match other {
                    YamlValue::Seq(_) => "a list",
                    YamlValue::String(_) => "a plain string",
                    _ => "a scalar",
                };
                return Err(Error::input(format!(
                    "{}: expected a mapping of secret names to age-armored values, found {found}",
                    at(doc.pos)
                ))
                .with_hint(how));
            }
        };
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        for entry in entries {
            if let Some(first) = seen.insert(&entry.key, entry.key_pos) {
                return Err(Error::input(format!(
                    "{}: duplicate name {} (lines {}, {})",
                    at(entry.key_pos),
                    entry.key.escape_debug(),
                    first.line,
                    entry.key_pos.line
                ))
                .with_hint(how));
            }
        }
        for Entry {
            key,
            key_pos,
            value,
        } in entries
        {
            let here = at(*key_pos);
            if key == RECIPIENTS_KEY {
                let not_list = || {
                    Error::input(format!(
                        "{here}: `recipients` must be a list of public keys"
                    ))
                };
                let YamlValue::Seq(items) = &value.value else {
                    return Err(not_list());
                };
                for (i, item) in items.iter().enumerate() {
                    let YamlValue::String(r) = &item.value else {
                        return Err(not_list());
                    };
                    // A recipient line cut short (or edited) would otherwise only surface as a
                    // puzzling "rekey needed"; the values after it would be silently gone.
                    Recipient::parse(r, &format!("{}: recipients[{i}]", at(item.pos))).map_err(
                        |e| {
                            e.with_hint(format!(
                                "the file records a recipient that is not a valid public key: it was cut short or edited by hand; restore {shown} from git"
                            ))
                        },
                    )?;
                    file.recipients.push(r.clone());
                }
                continue;
            }
            check_name(key, &here)?;
            let text = match &value.value {
                YamlValue::String(v) => Some(v.trim()),
                _ => None,
            };
            match text {
                Some(v) if v.starts_with(ARMOR_BEGIN) && v.ends_with(ARMOR_END) => {
                    file.values.insert(key.clone(), format!("{v}\n"));
                }
                Some(v) if v.starts_with(ARMOR_BEGIN) => {
                    return Err(Error::input(format!(
                        "{here}: the value of {key} is cut short: it has no `{ARMOR_END}` line (was the file truncated?)"
                    ))
                    .with_hint(format!(
                        "restore {shown} from git, or replace the value with `agentenv secret update ENV --team|--personal {key}`"
                    )));
                }
                _ => {
                    return Err(Error::input(format!(
                        "{here}: the value of {key} is not an age-armored ciphertext ({ARMOR_BEGIN} … {ARMOR_END})"
                    ))
                    .with_hint("never put a plain value in this file; remove the entry and use `agentenv secret create`"));
                }
            }
        }
        Ok(file)
    }

    /// The recipients for messages: "age1…, ssh-ed25519 …", or a note when none are recorded.
    pub fn recipients_text(&self) -> String {
        recipients_text(&self.recipients)
    }

    /// The file's text: a header comment, the recipients, then the values sorted by name.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# agentenv secrets: NAME -> age-encrypted value. Manage with `agentenv secret ...`.\n",
        );
        out.push_str(RECIPIENTS_KEY);
        out.push(':');
        if self.recipients.is_empty() {
            out.push_str(" []\n");
        } else {
            out.push('\n');
            for r in &self.recipients {
                out.push_str("  - ");
                out.push_str(&yaml_scalar(r));
                out.push('\n');
            }
        }
        for (name, armored) in &self.values {
            out.push_str(name);
            out.push_str(": |\n");
            for line in armored.lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Write the file atomically (a temporary file in the same directory, then rename), so an
    /// interrupted write never leaves half a file. `private` files get mode 0600 in a 0700
    /// directory; others keep the existing file's mode, or 0644.
    pub fn save(&self, private: bool) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let fail = |e: std::io::Error| {
            Error::failure(format!("cannot write {}: {e}", self.path.display()))
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(if private { 0o700 } else { 0o755 })
            .create(&dir)
            .map_err(fail)?;
        let mode = if private {
            0o600
        } else {
            std::fs::metadata(&self.path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o644)
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".agentenv-secrets-")
            .tempfile_in(&dir)
            .map_err(fail)?;
        tmp.write_all(self.render().as_bytes()).map_err(fail)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(fail)?;
        tmp.as_file().sync_all().map_err(fail)?;
        tmp.persist(&self.path).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

pub(crate) fn recipients_text(recipients: &[String]) -> String {
    if recipients.is_empty() {
        "(recipients not recorded in the file)".to_string()
    } else {
        recipients.join(", ")
    }
}

/// Serializes edits of secrets files between agentenv processes (read, change, write), so
/// two concurrent `secret create` runs cannot lose one another's value. It is an exclusive
/// `flock` on a directory that exists for the whole edit: the personal file's directory
/// (created first, mode 0700) or, for a team file, the spec's directory.
pub(crate) struct EditLock {
    /// Holding the descriptor holds the lock.
    _dir: std::fs::File,
}

impl EditLock {
    pub fn acquire(dir: &Path) -> Result<EditLock> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let handle = std::fs::File::open(dir).map_err(|e| {
            Error::failure(format!("cannot open {} to lock it: {e}", dir.display()))
        })?;
        // SAFETY: flock on a descriptor we own; released when the file is closed.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&handle), libc::LOCK_EX) } != 0 {
            return Err(Error::failure(format!(
                "cannot lock {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(EditLock { _dir: handle })
    }

    /// Lock the directory of the personal file `file`, creating it (0700) if needed.
    pub fn personal(file: &Path) -> Result<EditLock> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::failure(format!("cannot create {}: {e}", dir.display())))?;
        Self::acquire(dir)
    }
}

/// A recipient string as a YAML scalar: plain when that is unambiguous, else double-quoted.
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " +/=@._-".contains(c))
        && !s.ends_with(' ');
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

/// Encrypt `value` under `name` to `recipients`; returns the armored text.
pub(crate) fn seal(name: &str, value: &str, recipients: &[Recipient]) -> Result<String> {
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(Recipient::as_dyn))
        .map_err(|e| Error::input(format!("cannot encrypt to these recipients: {e}")))?;
    let plaintext = Zeroizing::new(format!("{BINDING_PREFIX}{name}\n{value}"));
    let mut out = Vec::new();
    let io = |e: std::io::Error| Error::failure(format!("encrypting {name}: {e}"));
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(io)?;
    let mut w = encryptor.wrap_output(armor).map_err(io)?;
    w.write_all(plaintext.as_bytes()).map_err(io)?;
    w.finish().and_then(|a| a.finish()).map_err(io)?;
    Ok(String::from_utf8(out).expect("armor is ASCII"))
}

/// What a failed decryption needs to say where it happened and who can read the value.
pub(crate) struct Origin<'a> {
    pub file: &'a Path,
    pub recipients: &'a [String],
}

/// What is wrong with a value age refuses, in a few words (age's own texts run to several
/// lines and suggest upgrading, which never helps with a damaged file).
fn damage(e: &age::DecryptError) -> String {
    use age::DecryptError as E;
    match e {
        E::InvalidHeader | E::UnknownFormat => "its header is not a valid age header".into(),
        E::InvalidMac => "its header fails its integrity check".into(),
        E::DecryptionFailed | E::KeyDecryptionFailed => {
            "its contents fail their integrity check".into()
        }
        E::Io(io) => format!("its armor cannot be read: {io}"),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// The first of our public keys that the file lists as a recipient.
fn listed_key(ids: &Identities, origin: &Origin) -> Option<String> {
    let listed: Vec<String> = origin
        .recipients
        .iter()
        .map(|r| super::identity::canonical(r))
        .collect();
    ids.publics.iter().find(|p| listed.contains(p)).cloned()
}

/// Decrypt the value stored under `name` and check its name binding.
pub(crate) fn open(
    name: &str,
    armored: &str,
    ids: &Identities,
    origin: &Origin,
) -> Result<Zeroizing<String>> {
    let file = origin.file.display();
    let corrupt = |why: String| {
        Error::input(format!(
            "{file}: the value of {name} is damaged ({why}); it cannot be decrypted"
        ))
        .with_hint(format!(
            "restore the file from git, or replace the value with `agentenv secret update ENV --team|--personal {name}`"
        ))
    };
    let reader = age::armor::ArmoredReader::new(armored.as_bytes());
    let decryptor = age::Decryptor::new_buffered(reader).map_err(|e| corrupt(damage(&e)))?;
    // age cannot tell a damaged recipient stanza from one for another key: both just fail to
    // open. When the file lists one of our keys, a value that does not open with it is
    // damaged (or was re-encrypted behind the file's back), not "not for you".
    let mut stream = decryptor
        .decrypt(ids.iter())
        .map_err(|e| match (e, listed_key(ids, origin)) {
            (age::DecryptError::NoMatchingKeys, Some(key)) => corrupt(format!(
                "its header does not open with your key {key}, which the file lists as a recipient"
            )),
            (age::DecryptError::NoMatchingKeys, None) => {
                let to = recipients_text(origin.recipients);
                Error::auth(format!(
                    "cannot decrypt {name} in {file}: it is encrypted to [{to}], and {} is not one of them",
                    ids.describe()
                ))
                .with_hint("use a key it is encrypted to (AGENTENV_AGE_KEY or AGENTENV_AGE_KEY_FILE), or ask someone who can decrypt it to add your public key to secrets.recipients and run `agentenv secret rekey ENV`")
            }
            (other, _) => corrupt(damage(&other)),
        })?;
    let mut plain = Zeroizing::new(Vec::new());
    stream
        .read_to_end(&mut plain)
        .map_err(|e| corrupt(format!("its contents cannot be decrypted: {e}")))?;
    let text = std::str::from_utf8(&plain)
        .map_err(|_| Error::input(format!("{file}: the value of {name} is not UTF-8 text")))?;
    let unbound = || {
        Error::input(format!(
            "{file}: the value of {name} is not bound to a name (encrypted by another tool?)"
        ))
        .with_hint(format!(
            "every value starts with the line `{BINDING_PREFIX}NAME`; re-add it with `agentenv secret update ENV --team|--personal {name}` (pipe the value in, e.g. `age -d -i KEY old.age | agentenv secret update …`), or encrypt `printf '{BINDING_PREFIX}%s\\n%s' {name} \"$VALUE\"`"
        ))
    };
    let rest = text.strip_prefix(BINDING_PREFIX).ok_or_else(unbound)?;
    let (bound, value) = rest.split_once('\n').ok_or_else(unbound)?;
    if bound != name {
        let shown = if valid_name(bound) {
            bound
        } else {
            "another name"
        };
        return Err(Error::input(format!(
            "{file}: the value stored as {name} was encrypted for {shown}: it was copied or moved to another name (tampering?)"
        ))
        .with_hint(format!("restore the file from git, or set {name} again with `agentenv secret update`")));
    }
    check_value(name, value).map_err(|e| e.context(file.to_string()))?;
    Ok(Zeroizing::new(value.to_string()))
}
