//! `agentenv run`: one scheduled agent run — provision (blocking), then start the agent in the
//! workdir with the MCP server wired in and no secret values in its environment unless the
//! spec names them for it; its exit status is the run's.
//!
//! - [`agent_env`] decides the agent's environment: the inherited one minus every variable
//!   that holds a resolved secret value (and the age identity variables), plus `agent.env`,
//!   `AGENTENV_MCP_CONFIG`, and with `agent.git_credentials` the credential helper's
//!   `GIT_CONFIG_*`.
//! - [`mcp`] writes the MCP configuration (stdio server, and the HTTP one with `--http`) and
//!   starts and stops the HTTP server.
//! - [`handoff`] gives the variables taken from the agent back to the two commands `run`
//!   itself configured for the agent — the stdio MCP server and, when allowed, the git
//!   credential helper — over a Unix socket in the run's private directory, so they resolve
//!   the spec's secrets as `run` did.
//! - [`signals`] passes SIGINT, SIGTERM and SIGHUP on to the agent.
//!
//! The workdir lock is released when provisioning ends: the agent may run `agentenv
//! provision` itself, and a second run may provision while the first agent works.

pub mod handoff;
pub mod mcp;
pub mod signals;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::provision::{self, Watcher};
use crate::secrets::ResolvedSecrets;
use crate::spec::LoadedEnv;

/// The variable naming the MCP configuration file the agent reads.
pub const MCP_CONFIG_VAR: &str = "AGENTENV_MCP_CONFIG";
/// With `--http`: the URL of the streamable HTTP server.
pub const MCP_URL_VAR: &str = "AGENTENV_MCP_URL";
/// The age identity variables: the key itself, and where it is.
const IDENTITY_VARS: [&str; 2] = ["AGENTENV_AGE_KEY", "AGENTENV_AGE_KEY_FILE"];

/// What `agentenv run` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub env: PathBuf,
    pub workdir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    /// Also serve streamable HTTP on loopback, started by `run` itself.
    pub http: bool,
    /// The agent's command line; empty: the spec's `agent.command`.
    pub agent: Vec<String>,
}

/// Run the agent to its end and return its exit code (128+N when signal N ended it). A
/// provision that fails is an `Err` with its own exit code, and the agent never starts.
pub fn run(opts: &Options, watcher: &dyn Watcher) -> Result<i32> {
    let env = LoadedEnv::load(&opts.env)?;
    let spec_agent = env.spec.agent.clone().unwrap_or_default();
    let command = if opts.agent.is_empty() {
        spec_agent.command.clone()
    } else {
        opts.agent.clone()
    };
    if command.is_empty() {
        return Err(Error::input("no agent to run").with_hint(
            "give its command after `--` (`agentenv run ENV -- claude -p …`), or set `agent.command` in the spec",
        ));
    }
    // What the agent is handed is checked before anything is cloned.
    let secrets = crate::secrets::resolve(&env)?;
    for name in &spec_agent.env {
        if secrets.get(name).is_none() {
            return Err(Error::input(format!(
                "{}: agent.env names `{name}`, which is not one of the spec's secrets",
                env.path.display()
            ))
            .with_hint(
                "create it (`agentenv secret create ENV --team NAME`) or list it in secrets.from_env",
            ));
        }
    }
    let provisioned = provision::provision(
        &opts.env,
        &provision::Options {
            workdir: opts.workdir.clone(),
            cache_dir: opts.cache_dir.clone(),
            ..Default::default()
        },
        watcher,
    );
    if let Some(e) = provisioned.error {
        return Err(e);
    }
    let workdir = provisioned
        .workdir
        .ok_or_else(|| Error::failure("provision reported no workdir"))?;
    let spec_path = std::path::absolute(&opts.env)?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::failure(format!("cannot tell where agentenv is: {e}")))?;

    let dir = RunDir::create()?;
    let inherited: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let plan = agent_env(&inherited, &secrets, &spec_agent.env);
    let serve_args = mcp::serve_args(&spec_path, &workdir);
    let handoff = if plan.taken.is_empty() {
        None
    } else {
        let mut allowed = vec![serve_args.clone()];
        if spec_agent.git_credentials {
            allowed.push(vec![
                "git-credential".into(),
                "--env".into(),
                spec_path.to_string_lossy().into_owned(),
                "get".into(),
            ]);
        }
        Some(handoff::Server::start(
            &dir.path,
            plan.taken.clone(),
            exe.clone(),
            allowed,
        )?)
    };
    let socket = handoff.as_ref().map(|h| h.socket().to_path_buf());
    let http = if opts.http {
        Some(mcp::HttpServer::start(&exe, &serve_args)?)
    } else {
        None
    };
    let config = mcp::Config {
        exe: &exe,
        serve_args: &serve_args,
        handoff: socket.as_deref(),
        http: http.as_ref(),
    };
    let config_path = dir.path.join("mcp.json");
    config.write(&config_path)?;

    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..]).current_dir(&workdir).env_clear();
    cmd.envs(plan.vars);
    cmd.env(MCP_CONFIG_VAR, &config_path);
    cmd.env("AGENTENV_WORKDIR", &workdir);
    if let Some(h) = &http {
        cmd.env(MCP_URL_VAR, h.url());
    }
    if let Some(s) = &socket {
        cmd.env(handoff::HANDOFF_VAR, s);
    }
    if spec_agent.git_credentials {
        let mut existing = BTreeMap::new();
        if let Ok(n) = std::env::var("GIT_CONFIG_COUNT") {
            existing.insert("GIT_CONFIG_COUNT".to_string(), n);
        }
        for (k, v) in crate::provision::credential_helper::git_env(&env, &existing) {
            cmd.env(k, v);
        }
    }
    let forwarding = signals::Forwarding::install()?;
    let mut child = cmd.spawn().map_err(|e| {
        Error::failure(format!("cannot start the agent `{}`: {e}", command[0]))
            .with_hint("check the command: it runs in the workdir, found through PATH")
    })?;
    forwarding.forward_to(child.id() as i32);
    let status = child
        .wait()
        .map_err(|e| Error::failure(format!("waiting for the agent failed: {e}")))?;
    drop(forwarding);
    if let Some(h) = http {
        h.stop();
    }
    drop(handoff);
    drop(dir);
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    })
}

/// The agent's environment, and what was taken out of it.
#[derive(Debug, Default)]
pub struct AgentEnv {
    /// Every variable the agent gets (besides those `run` adds for the MCP server).
    pub vars: Vec<(OsString, OsString)>,
    /// The variables taken out because they hold a secret value or the age identity.
    pub taken: BTreeMap<String, String>,
}

/// The agent's environment from the inherited one: without the age identity variables and
/// every variable that holds a resolved secret's value (under any name), with the secrets
/// `allowed` names (`agent.env`) set to their values.
pub fn agent_env(
    inherited: &[(OsString, OsString)],
    secrets: &ResolvedSecrets,
    allowed: &[String],
) -> AgentEnv {
    let mut out = AgentEnv::default();
    let names: Vec<&str> = secrets.names().collect();
    for (k, v) in inherited {
        let name = k.to_string_lossy();
        let value = v.to_string_lossy();
        let secret = IDENTITY_VARS.contains(&name.as_ref())
            || names.contains(&name.as_ref())
            || secrets.redactor().redact(&value) != value;
        if allowed.iter().any(|a| *a == name) {
            continue;
        }
        if secret {
            out.taken.insert(name.into_owned(), value.into_owned());
        } else {
            out.vars.push((k.clone(), v.clone()));
        }
    }
    for name in allowed {
        if let Some(v) = secrets.get(name) {
            out.vars.push((name.into(), v.into()));
        }
    }
    out
}

/// The run's private directory (mode 0700): the MCP configuration and the handoff socket.
/// Removed when the run ends.
struct RunDir {
    path: PathBuf,
}

impl RunDir {
    fn create() -> Result<RunDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let tag: u64 = rand::random();
        let path = base.join(format!("agentenv-run-{}-{tag:016x}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| {
                Error::failure(format!("cannot create {}: {e}", path.display()))
                    .with_hint("set TMPDIR (or XDG_RUNTIME_DIR) to a writable directory")
            })?;
        Ok(RunDir { path })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn secret_values_leave_the_agent_environment_unless_named() {
        let secrets = ResolvedSecrets::from_values(BTreeMap::from([
            ("BB_TOKEN".to_string(), "tok-1234567890".to_string()),
            ("NPM_TOKEN".to_string(), "npm-0987654321".to_string()),
        ]));
        let inherited = vars(&[
            ("PATH", "/usr/bin"),
            ("BB_TOKEN", "tok-1234567890"),
            ("COPY", "Bearer tok-1234567890"),
            ("AGENTENV_AGE_KEY", "AGE-SECRET-KEY-1XYZ"),
            ("AGENTENV_AGE_KEY_FILE", "/keys/key.txt"),
            ("HOME", "/home/a"),
        ]);
        let e = agent_env(&inherited, &secrets, &["NPM_TOKEN".to_string()]);
        let got: BTreeMap<String, String> = e
            .vars
            .iter()
            .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
            .collect();
        assert_eq!(
            got,
            BTreeMap::from([
                ("PATH".into(), "/usr/bin".into()),
                ("HOME".into(), "/home/a".into()),
                ("NPM_TOKEN".into(), "npm-0987654321".into()),
            ])
        );
        assert_eq!(
            e.taken.keys().collect::<Vec<_>>(),
            [
                "AGENTENV_AGE_KEY",
                "AGENTENV_AGE_KEY_FILE",
                "BB_TOKEN",
                "COPY"
            ]
        );
    }
}
