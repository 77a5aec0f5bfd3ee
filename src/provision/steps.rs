//! Setup steps: fingerprints, and running one step as `sh -c RUN` in its own process group,
//! with a timeout that kills the whole group, its output redacted, logged and handed line by
//! line to the caller.
//!
//! A step never outlives the provision that runs it, however that provision ends: the group's
//! leader is a supervisor that kills the group when the provision's end of a pipe closes,
//! which the kernel does when the provision dies (a SIGKILL included). And a step that ends
//! leaves its exit status in `WORKDIR/.agentenv/logs/<step>.exit`, so a provision killed
//! between the end of a step and the record of it learns on its next run that the step did
//! finish, instead of running it twice.

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
    step_file(workdir, step, "log")
}

/// `WORKDIR/.agentenv/logs/<step>.exit`: the exit status of the step's last run, written by
/// the step's own shell once its command ended.
fn exit_path(workdir: &Path, step: &str) -> PathBuf {
    step_file(workdir, step, "exit")
}

/// Forget how the step's last run ended: called before it starts again (and before that
/// start is recorded), so a status found later belongs to this run.
pub fn clear_exit(workdir: &Path, step: &str) -> Result<()> {
    let path = exit_path(workdir, step);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::failure(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Whether the step's last run ran to its end and succeeded (its shell wrote status 0),
/// whether or not the provision that started it lived to see that.
pub fn finished_ok(workdir: &Path, step: &str) -> bool {
    std::fs::read_to_string(exit_path(workdir, step)).is_ok_and(|s| s.trim() == "0")
}

/// How long the step's last run took, in ms: from its recorded start (RFC 3339) to the
/// moment its shell wrote its exit status.
pub fn ran_for(workdir: &Path, step: &str, started: &str) -> Option<u64> {
    let ended = std::fs::metadata(exit_path(workdir, step))
        .ok()?
        .modified()
        .ok()?;
    let started: std::time::SystemTime = chrono::DateTime::parse_from_rfc3339(started).ok()?.into();
    ended
        .duration_since(started)
        .ok()
        .map(|d| d.as_millis() as u64)
}

fn step_file(workdir: &Path, step: &str, ext: &str) -> PathBuf {
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
        .join(format!("{safe}.{ext}"))
}

/// The shell that runs a step (`$1`, as `sh -c RUN` did before) and then writes its exit
/// status to `$2`. Killed with its group, it writes nothing: the run counts as interrupted.
const WRAPPER: &str = r#"sh -c "$1"; s=$?; echo "$s" > "$2"; exit "$s""#;

/// The supervisor, leader of the step's process group: it reads its stdin until end of file
/// and then kills the whole group, itself included. Only the provision holds the other end
/// of that pipe (std opens pipes close-on-exec, so no step inherits it), and the kernel closes
/// it when the provision exits or is killed. A supervisor rather than `PR_SET_PDEATHSIG`:
/// that signal reaches one process (not the grandchildren a step starts) and fires when the
/// *thread* that forked it ends.
const SUPERVISOR: &str = "read _ignored; kill -KILL 0";

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
    let cannot_start =
        |e: std::io::Error| Error::failure(format!("step {}: cannot start sh: {e}", step.name));
    let mut supervisor = Command::new("sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(cannot_start)?;
    let pgid = supervisor.id() as libc::pid_t;
    // Dropped (closed) only once the group is dead.
    let lifeline = supervisor.stdin.take();
    let end_supervisor = |mut supervisor: std::process::Child| {
        kill_group(pgid);
        drop(lifeline);
        let _ = supervisor.wait();
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(WRAPPER)
        .arg("sh")
        .arg(&step.run)
        .arg(exit_path(workdir, &step.name))
        .current_dir(&dir)
        .envs(&step.env)
        // Secret values reach the step only through its environment, never its arguments.
        .envs(secrets.env_vars())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(pgid);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            end_supervisor(supervisor);
            return Err(cannot_start(e));
        }
    };
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
    end_supervisor(supervisor);
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
            // The wrapper shell reports a command killed by signal N as status 128 + N.
            Some(code) if code > 128 && code < 160 => {
                format!("was killed by signal {} (status {code})", code - 128)
            }
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
