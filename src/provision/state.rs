//! `WORKDIR/.agentenv/state.json`: what the last provisions left in place. Written atomically
//! (temporary file, fsync, rename), so a reader or a killed run never sees half a file.

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
    /// By step name; only steps whose last run succeeded.
    #[serde(default)]
    pub steps: BTreeMap<String, StepState>,
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
    pub result: String,
    pub time: String,
    pub duration_ms: u64,
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
        tmp.persist(&path).map_err(|e| fail(e.error))?;
        // The rename itself is durable only once the directory is synced.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
