//! The MCP wiring of a run: the configuration file the agent reads (`AGENTENV_MCP_CONFIG`, the
//! `mcpServers` JSON that Claude Code, Codex and Cursor take), and with `--http` the
//! streamable HTTP server `run` starts on loopback and stops at the end.
//!
//! The file holds an `agentenv` server started over stdio by the agent (this executable's
//! absolute path, `serve`, the spec, `--workdir`) and, with `--http`, an `agentenv-http` entry
//! with the URL and a bearer token made for this run alone. It holds no secret of the spec.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use zeroize::Zeroizing;

use super::handoff::HANDOFF_VAR;
use crate::error::{Error, Result};

/// How long the HTTP server may take to listen (loading the spec, resolving secrets).
const HTTP_START: Duration = Duration::from_secs(30);
/// The variable through which `run` gives the HTTP server its bearer token (the server is
/// `run`'s child, not the agent's).
const TOKEN_VAR: &str = "AGENTENV_RUN_HTTP_TOKEN";

/// `serve SPEC --workdir WORKDIR`: the server's arguments, the same in the configuration, for
/// the HTTP server, and in the handoff's list of allowed command lines.
pub fn serve_args(spec: &Path, workdir: &Path) -> Vec<String> {
    vec![
        "serve".into(),
        spec.to_string_lossy().into_owned(),
        "--workdir".into(),
        workdir.to_string_lossy().into_owned(),
    ]
}

/// The configuration file's content.
pub struct Config<'a> {
    pub exe: &'a Path,
    pub serve_args: &'a [String],
    pub handoff: Option<&'a Path>,
    pub http: Option<&'a HttpServer>,
}

impl Config<'_> {
    pub fn to_json(&self) -> serde_json::Value {
        let mut env = serde_json::Map::new();
        if let Some(h) = self.handoff {
            env.insert(HANDOFF_VAR.into(), h.to_string_lossy().into());
        }
        let mut servers = serde_json::Map::new();
        servers.insert(
            "agentenv".into(),
            json!({
                "type": "stdio",
                "command": self.exe.to_string_lossy(),
                "args": self.serve_args,
                "env": env,
            }),
        );
        if let Some(http) = self.http {
            servers.insert(
                "agentenv-http".into(),
                json!({
                    "type": "http",
                    "url": http.url(),
                    "headers": {"Authorization": format!("Bearer {}", http.token.as_str())},
                }),
            );
        }
        json!({ "mcpServers": servers })
    }

    /// Write the file, readable by this user only (it may hold the run's HTTP token).
    pub fn write(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string_pretty(&self.to_json()).expect("plain JSON");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Error::failure(format!("cannot write {}: {e}", path.display())))
    }
}

/// The streamable HTTP server `run` started on loopback.
pub struct HttpServer {
    child: Option<Child>,
    url: String,
    token: Zeroizing<String>,
}

impl HttpServer {
    /// Start `agentenv serve … --http 127.0.0.1:0` with a bearer token made for this run, and
    /// wait until it listens. It gets its own process group, so a terminal's ^C reaches the
    /// agent, not the server the agent is using; `run` stops it at the end.
    pub fn start(exe: &Path, serve_args: &[String]) -> Result<HttpServer> {
        use std::os::unix::process::CommandExt;
        let token: [u8; 32] = rand::random();
        let token = Zeroizing::new(token.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let mut child = Command::new(exe)
            .args(serve_args)
            .args(["--http", "127.0.0.1:0", "--http-token-secret", TOKEN_VAR])
            .env(TOKEN_VAR, token.as_str())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::failure(format!("cannot start the MCP HTTP server: {e}")))?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // The server names its address on stderr; the rest of its stderr is passed on.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(url) = listening_url(&line) {
                    sent = true;
                    let _ = tx.send(url);
                    continue;
                }
                crate::cli::output::eprint(&format!("{line}\n"));
            }
        });
        let mut server = HttpServer {
            child: Some(child),
            url: String::new(),
            token,
        };
        match rx.recv_timeout(HTTP_START) {
            Ok(url) => {
                server.url = url;
                Ok(server)
            }
            Err(_) => {
                let status = server
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                let why = match status.and_then(|s| s.code()) {
                    Some(code) => format!("it exited with status {code}"),
                    None => format!("it did not listen within {}s", HTTP_START.as_secs()),
                };
                Err(Error::failure(format!(
                    "the MCP HTTP server did not start: {why}"
                )))
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// SIGTERM (the server shuts down gracefully), then SIGKILL after 5 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill has no memory effects; the pid is our child's, not yet reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// `agentenv: serving N tools on http://ADDR/mcp` → the URL.
fn listening_url(line: &str) -> Option<String> {
    let at = line.find(" on http://")?;
    line.starts_with("agentenv: serving ")
        .then(|| line[at + 4..].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_line_gives_the_url() {
        assert_eq!(
            listening_url("agentenv: serving 6 tools on http://127.0.0.1:4321/mcp").as_deref(),
            Some("http://127.0.0.1:4321/mcp")
        );
        assert_eq!(listening_url("warning: something"), None);
    }

    #[test]
    fn the_configuration_starts_this_server_over_stdio() {
        let args = serve_args(Path::new("/s/env.yaml"), Path::new("/w"));
        let cfg = Config {
            exe: Path::new("/bin/agentenv"),
            serve_args: &args,
            handoff: Some(Path::new("/tmp/r/handoff.sock")),
            http: None,
        };
        assert_eq!(
            cfg.to_json(),
            json!({"mcpServers": {"agentenv": {
                "type": "stdio",
                "command": "/bin/agentenv",
                "args": ["serve", "/s/env.yaml", "--workdir", "/w"],
                "env": {"AGENTENV_RUN_HANDOFF": "/tmp/r/handoff.sock"},
            }}})
        );
    }
}
