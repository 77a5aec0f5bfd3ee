//! `WORKDIR/.agentenv/state.json`: what the last provisions left in place, and the steps a
//! killed provision left running. Written atomically (temporary file, fsync, rename), so a
//! reader or a killed run never sees half a file. Also `WORKDIR/.agentenv/fingerprint.key`,
//! created atomically the same way, and the removal of the temporary files a killed run left.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// By repository name.
    #[serde(default)]
    pub repos: BTreeMap<String, RepoState>,
    /// By step name; only steps whose last run succeeded (or whose `creates:` path existed).
    #[serde(default)]
    pub steps: BTreeMap<String, StepState>,
    /// By step name: steps that started and whose end was never recorded — the provision
    /// running them was killed. Recorded before a step starts, removed when it ends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub started: BTreeMap<String, StartedStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoState {
    /// Relative to the workdir.
    pub path: String,
    /// Without credentials.
    pub url: String,
    pub branch: String,
    pub head: String,
    /// When provision last changed the checkout (RFC 3339, UTC).
    pub time: String,
}

impl RepoState {
    /// The same checkout, whenever it was recorded.
    pub fn same_checkout(&self, other: &RepoState) -> bool {
        (&self.path, &self.url, &self.branch, &self.head)
            == (&other.path, &other.url, &other.branch, &other.head)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    pub fingerprint: String,
    /// `ok` (it ran and succeeded) or `satisfied` (its `creates:` path existed, so it did not
    /// need to run).
    pub result: String,
    pub time: String,
    pub duration_ms: u64,
}

/// A step that started (with this fingerprint, at this time) and has not been recorded as
/// ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartedStep {
    pub fingerprint: String,
    pub time: String,
}

pub fn agentenv_dir(workdir: &Path) -> PathBuf {
    workdir.join(".agentenv")
}

fn state_path(workdir: &Path) -> PathBuf {
    agentenv_dir(workdir).join("state.json")
}

/// Whether a state file was ever written in this workdir.
pub fn exists(workdir: &Path) -> bool {
    state_path(workdir).exists()
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl State {
    /// The state of a workdir; empty when nothing was provisioned yet.
    pub fn load(workdir: &Path) -> Result<State> {
        let path = state_path(workdir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => {
                return Err(Error::failure(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        serde_json::from_str(&text).map_err(|e| {
            Error::failure(format!(
                "{}: not a valid agentenv state file: {e}",
                path.display()
            ))
            .with_hint(
                "delete it; the next provision re-checks every repository and re-runs every step",
            )
        })
    }

    /// Replace the state file atomically.
    pub fn save(&mut self, workdir: &Path) -> Result<()> {
        self.version = VERSION;
        let dir = agentenv_dir(workdir);
        let path = state_path(workdir);
        let fail =
            |e: std::io::Error| Error::failure(format!("cannot write {}: {e}", path.display()));
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(fail)?;
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        tmp.write_all(text.as_bytes()).map_err(fail)?;
        tmp.write_all(b"\n").map_err(fail)?;
        tmp.as_file().sync_all().map_err(fail)?;
        super::crash::point("state-write");
        tmp.persist(&path).map_err(|e| fail(e.error))?;
        // The rename itself is durable only once the directory is synced.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// The prefix of every temporary file in `.agentenv` (tempfile's default).
const TEMP_PREFIX: &str = ".tmp";

/// Remove the temporary files a killed provision left in `.agentenv` (a state or key file
/// written but never renamed into place). Only called while holding the workdir lock, so no
/// live provision owns them.
pub fn remove_leftovers(workdir: &Path) -> Result<()> {
    let dir = agentenv_dir(workdir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            std::fs::remove_file(entry.path()).map_err(|e| {
                Error::failure(format!(
                    "cannot remove {}, left by an interrupted provision: {e}",
                    entry.path().display()
                ))
            })?;
        }
    }
    Ok(())
}

/// The workdir's fingerprint key when it has one: a dry run reads it and creates nothing.
pub fn existing_fingerprint_key(workdir: &Path) -> Option<Vec<u8>> {
    std::fs::read(agentenv_dir(workdir).join("fingerprint.key"))
        .ok()
        .filter(|key| key.len() >= 16)
}

/// The workdir's fingerprint key (see `provision::keyed`), made on first use. Called under
/// the workdir lock, and the key appears whole or not at all (written to a temporary file,
/// synced, then linked into place), so no provision ever reads a half-written key.
pub fn fingerprint_key(workdir: &Path) -> Result<Vec<u8>> {
    let dir = agentenv_dir(workdir);
    let path = dir.join("fingerprint.key");
    match std::fs::read(&path) {
        Ok(key) if key.len() >= 16 => return Ok(key),
        // Only an agentenv that created the key in place, unlocked, and was killed while
        // writing it leaves a short key: fingerprints made with it are worthless anyway.
        Ok(_) => std::fs::remove_file(&path)
            .map_err(|e| Error::failure(format!("cannot remove {}: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::failure(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    }
    let fail = |e: std::io::Error| Error::failure(format!("cannot create {}: {e}", path.display()));
    let key: [u8; 32] = rand::random();
    // tempfile creates the file with mode 0600: the key is private to its owner.
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(&dir)
        .map_err(fail)?;
    tmp.write_all(&key).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    super::crash::point("key-write");
    tmp.persist_noclobber(&path).map_err(|e| fail(e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(key.to_vec())
}
