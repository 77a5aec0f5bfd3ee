//! Setup steps: fingerprints, and running one step as `sh -c RUN` in its own process group,
//! with a timeout that kills the whole group, its output redacted, logged and handed line by
//! line to the caller.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::provision::plan::normalize;
use crate::secrets::ResolvedSecrets;
use crate::spec::Step;

/// What a step's result depends on: its command, dir, env, the names and keyed digests of the
/// secrets it receives, and the HEAD of each repository it runs inside (name → commit).
pub fn fingerprint(
    step: &Step,
    secrets: &ResolvedSecrets,
    heads: &BTreeMap<String, String>,
) -> String {
    let secret_digests: BTreeMap<&str, String> = secrets
        .names()
        .map(|n| (n, secrets.digest(n).unwrap_or_default()))
        .collect();
    let inputs = serde_json::json!({
        "run": step.run,
        "dir": normalize(step.dir.as_deref().unwrap_or("")),
        "env": step.env,
        "secrets": secret_digests,
        "heads": heads,
    });
    let digest = Sha256::digest(inputs.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `WORKDIR/.agentenv/logs/<step>.log`, with the name made safe for a file name.
pub fn log_path(workdir: &Path, step: &str) -> PathBuf {
    let safe: String = step
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    super::state::agentenv_dir(workdir)
        .join("logs")
        .join(format!("{safe}.log"))
}

/// Run one step to completion; each line of its output (stdout and stderr), secrets masked,
/// goes to its log and to `on_line`. Its processes never outlive it: when the shell exits
/// (or the timeout fires) whatever it left running in its process group is killed.
pub fn run(
    step: &Step,
    workdir: &Path,
    secrets: &ResolvedSecrets,
    on_line: &(dyn Fn(&str) + Sync),
) -> Result<Duration> {
    let dir = workdir.join(normalize(step.dir.as_deref().unwrap_or("")));
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "step {}: its dir {} does not exist",
            step.name,
            dir.display()
        ))
        .with_hint("fix the step's `dir:` (relative to the workdir; a repository's `path:` is usually what you want)"));
    }
    let log_path = log_path(workdir, &step.name);
    let log = File::create(&log_path)
        .map_err(|e| Error::failure(format!("cannot create {}: {e}", log_path.display())))?;
    let log = Mutex::new(log);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&step.run)
        .current_dir(&dir)
        .envs(&step.env)
        // Secret values reach the step only through its environment, never its arguments.
        .envs(secrets.env_vars())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::failure(format!("step {}: cannot start sh: {e}", step.name)))?;
    let pgid = child.id() as libc::pid_t;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let timeout = step.timeout.map(|t| t.0);
    let (status, timed_out) = std::thread::scope(|s| {
        let pump = |stream: Box<dyn Read + Send>| {
            let log = &log;
            s.spawn(move || pump_lines(stream, log, secrets, on_line))
        };
        let readers = [pump(Box::new(stdout)), pump(Box::new(stderr))];
        let (tx, rx) = std::sync::mpsc::channel();
        s.spawn(move || {
            let _ = tx.send(child.wait());
        });
        let (status, timed_out) = match timeout {
            Some(limit) => match rx.recv_timeout(limit) {
                Ok(status) => (status, false),
                Err(_) => {
                    kill_group(pgid);
                    (
                        rx.recv().unwrap_or_else(|e| Err(std::io::Error::other(e))),
                        true,
                    )
                }
            },
            None => (
                rx.recv().unwrap_or_else(|e| Err(std::io::Error::other(e))),
                false,
            ),
        };
        // Background children would keep the pipes open (and the readers waiting) forever.
        kill_group(pgid);
        for r in readers {
            let _ = r.join();
        }
        (status, timed_out)
    });
    let elapsed = started.elapsed();
    let status = status
        .map_err(|e| Error::failure(format!("step {}: waiting for it failed: {e}", step.name)))?;
    let see_log = format!("its output is in {}", log_path.display());
    if timed_out {
        let limit = timeout.unwrap_or_default();
        return Err(Error::failure(format!(
            "step {} timed out after {}s and was killed with everything it started",
            step.name,
            limit.as_secs_f64()
        ))
        .with_hint(format!("raise its `timeout:` or make it faster; {see_log}")));
    }
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(Error::failure(format!("step {} {how}", step.name)).with_hint(see_log));
    }
    Ok(elapsed)
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: killpg has no memory effects; ESRCH (group already gone) is expected and ignored.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

fn pump_lines(
    stream: Box<dyn Read + Send>,
    log: &Mutex<File>,
    secrets: &ResolvedSecrets,
    on_line: &(dyn Fn(&str) + Sync),
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let line = secrets
                    .redactor()
                    .redact(text.trim_end_matches(['\n', '\r']));
                if let Ok(mut f) = log.lock() {
                    let _ = writeln!(f, "{line}");
                }
                on_line(&line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(run: &str) -> Step {
        serde_yaml::from_str(&format!("name: s\nrun: '{run}'\n")).unwrap()
    }

    fn secrets(value: &str) -> ResolvedSecrets {
        ResolvedSecrets::from_values(BTreeMap::from([(
            "API_TOKEN".to_string(),
            value.to_string(),
        )]))
    }

    #[test]
    fn secrets_reach_the_step_as_env_vars_and_never_its_log() {
        let canary = "canary-5f1d-value";
        let wd = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(wd.path().join(".agentenv/logs")).unwrap();
        let s = step("printf %s \"$API_TOKEN\" > got; echo token=$API_TOKEN");
        run(&s, wd.path(), &secrets(canary), &|_| {}).unwrap();
        assert_eq!(
            std::fs::read_to_string(wd.path().join("got")).unwrap(),
            canary
        );
        let log = std::fs::read_to_string(log_path(wd.path(), "s")).unwrap();
        assert_eq!(log, "token=***\n");
    }

    #[test]
    fn the_fingerprint_follows_secret_values_without_containing_them() {
        let s = step("true");
        let heads = BTreeMap::new();
        let a = fingerprint(&s, &secrets("one"), &heads);
        assert_eq!(a, fingerprint(&s, &secrets("one"), &heads));
        assert_ne!(a, fingerprint(&s, &secrets("two"), &heads));
        assert_ne!(a, fingerprint(&step("false"), &secrets("one"), &heads));
        let moved = BTreeMap::from([("r".to_string(), "abc".to_string())]);
        assert_ne!(a, fingerprint(&s, &secrets("one"), &moved));
    }
}
