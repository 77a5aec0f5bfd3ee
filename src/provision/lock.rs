//! `WORKDIR/.agentenv/lock`: one provision per workdir at a time (an advisory file lock that
//! the OS releases when the process dies, so a killed run never leaves the workdir locked).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Error, Kind, Result};

fn lock_error(path: &Path, e: std::io::Error) -> Error {
    Error::failure(format!("cannot lock {}: {e}", path.display()))
}

/// The lock file at `path`, created when missing (its content is never truncated: it names
/// the holder).
pub(crate) fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| lock_error(path, e))
}

/// The lock file at `path`, locked: waits while another process holds it (the holder's own
/// bounds — timeouts, budgets — end the wait). Dropping the file releases the lock.
pub(crate) fn wait_for(path: &Path) -> Result<File> {
    let file = open(path)?;
    file.lock().map_err(|e| lock_error(path, e))?;
    Ok(file)
}

/// Held for the whole provision; dropping it releases the lock.
#[derive(Debug)]
pub struct WorkdirLock {
    _file: File,
}

/// Take the workdir lock: fail fast with [`Kind::Busy`] when another process holds it, or
/// block until it is free when `wait` is set.
pub fn acquire(workdir: &Path, wait: bool, on_wait: impl FnOnce(&str)) -> Result<WorkdirLock> {
    let path = super::state::agentenv_dir(workdir).join("lock");
    let fail = |e: std::io::Error| lock_error(&path, e);
    let mut file = open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            let msg = format!(
                "workdir {} is busy: another agentenv provision{holder} is running in it",
                workdir.display()
            );
            if !wait {
                return Err(Error::new(Kind::Busy, msg)
                    .with_hint("wait for it to finish, or pass --wait to queue behind it"));
            }
            on_wait(&msg);
            file.lock().map_err(fail)?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(fail(e)),
    }
    // Who holds it, for the message a second provision prints.
    file.set_len(0).map_err(fail)?;
    file.rewind().map_err(fail)?;
    write!(file, "{}", std::process::id()).map_err(fail)?;
    Ok(WorkdirLock { _file: file })
}
