//! `WORKDIR/.agentenv/lock`: one provision per workdir at a time (an advisory file lock that
//! the OS releases when the process dies, so a killed run never leaves the workdir locked).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

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

/// How long [`wait_for`] waits for another process's hold on a lock: longer than the
/// slowest clone or fetch a holder makes under its own timeouts, short enough that a stuck
/// holder does not hang a scheduled run.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(15 * 60);

/// The lock file at `path`, locked: waits while another process holds it, at most
/// [`LOCK_WAIT`] (then [`Kind::Busy`]). Dropping the file releases the lock.
pub(crate) fn wait_for(path: &Path) -> Result<File> {
    wait_until(path, Instant::now() + LOCK_WAIT)?.ok_or_else(|| {
        Error::new(
            Kind::Busy,
            format!(
                "{} is still held by another agentenv process after {} min",
                path.display(),
                LOCK_WAIT.as_secs() / 60
            ),
        )
        .with_hint(
            "find the agentenv process that holds it (it may be stuck) and stop it, then run again",
        )
    })
}

/// The lock file at `path`, locked, or `None` when another process still holds it at
/// `deadline`. The OS releases a dead holder's lock, so only a live holder makes this wait.
pub(crate) fn wait_until(path: &Path, deadline: Instant) -> Result<Option<File>> {
    let file = open(path)?;
    let mut pause = Duration::from_millis(10);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(lock_error(path, e)),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(250));
    }
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
        Err(TryLockError::WouldBlock) => {
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
        Err(TryLockError::Error(e)) => return Err(fail(e)),
    }
    // Who holds it, for the message a second provision prints.
    file.set_len(0).map_err(fail)?;
    file.rewind().map_err(fail)?;
    write!(file, "{}", std::process::id()).map_err(fail)?;
    Ok(WorkdirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_waited_for_until_the_deadline_and_taken_once_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let holder = wait_for(&path).unwrap();
        let soon = Instant::now() + Duration::from_millis(100);
        assert!(wait_until(&path, soon).unwrap().is_none());
        drop(holder);
        let later = Instant::now() + Duration::from_secs(5);
        assert!(wait_until(&path, later).unwrap().is_some());
    }
}
