//! The handoff: the variables `run` took out of the agent's environment (secret values, the
//! age identity), given back to the commands `run` configured for the agent — the stdio MCP
//! server of `AGENTENV_MCP_CONFIG` and, with `agent.git_credentials`, the git credential
//! helper — so they resolve the spec's secrets as `run` did, without the values ever being in
//! the agent's environment, on a command line or on disk.
//!
//! `run` listens on a Unix socket in its private directory (mode 0700) and names it in
//! `AGENTENV_RUN_HANDOFF`. A connecting process gets the variables (one JSON object) only if
//! it runs as the same user, its executable is this agentenv, and its arguments are exactly
//! one of the command lines `run` configured; anything else gets nothing. The client side is
//! [`lookup`], which secret resolution consults for a variable the process environment
//! lacks ([`crate::secrets::process_env`]).
//!
//! This keeps secrets out of what agents commonly print, log or send along (their
//! environment, `env`, `/proc/self/environ`, their child processes); it is no boundary against
//! an agent that attaches a debugger to the server it started, as the same user can.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Names the socket in the environment of the agent (and so of what it starts).
pub const HANDOFF_VAR: &str = "AGENTENV_RUN_HANDOFF";

/// The listening side, in `run`. The socket goes away with the run's directory.
pub struct Server {
    socket: PathBuf,
}

impl Server {
    /// Listen at `dir/handoff.sock`, answering processes of `exe` whose arguments (without
    /// argv\[0\]) are one of `allowed`.
    pub fn start(
        dir: &Path,
        vars: BTreeMap<String, String>,
        exe: PathBuf,
        allowed: Vec<Vec<String>>,
    ) -> Result<Server> {
        let socket = dir.join("handoff.sock");
        let listener = UnixListener::bind(&socket)
            .map_err(|e| Error::failure(format!("cannot listen on {}: {e}", socket.display())))?;
        let payload = Zeroizing::new(serde_json::to_vec(&vars).expect("plain JSON"));
        let exe = exe.canonicalize().unwrap_or(exe);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if peer_allowed(&stream, &exe, &allowed) {
                    let _ = stream.write_all(&payload);
                }
            }
        });
        Ok(Server { socket })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

/// The peer runs as us, is this executable, and was started with an allowed command line.
fn peer_allowed(stream: &UnixStream, exe: &Path, allowed: &[Vec<String>]) -> bool {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    // SAFETY: getuid cannot fail.
    if rc != 0 || cred.uid != unsafe { libc::getuid() } || cred.pid <= 0 {
        return false;
    }
    let proc = PathBuf::from(format!("/proc/{}", cred.pid));
    let same_exe = std::fs::read_link(proc.join("exe"))
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .is_some_and(|p| p == exe);
    if !same_exe {
        return false;
    }
    let Ok(cmdline) = std::fs::read(proc.join("cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // cmdline ends with a NUL, so the split leaves one empty string at the end.
    let args = match args.split_last() {
        Some((last, rest)) if last.is_empty() => rest,
        _ => &args[..],
    };
    args.len() > 1 && allowed.iter().any(|a| a.as_slice() == &args[1..])
}

/// The value `run` handed over for `name`, if this process was given a handoff socket and
/// `run` answers it. Asked once per process; afterwards answered from memory.
pub fn lookup(name: &str) -> Option<String> {
    static VALUES: OnceLock<HashMap<String, Zeroizing<String>>> = OnceLock::new();
    VALUES
        .get_or_init(fetch)
        .get(name)
        .map(|v| v.as_str().to_string())
}

fn fetch() -> HashMap<String, Zeroizing<String>> {
    let Some(path) = std::env::var_os(HANDOFF_VAR) else {
        return HashMap::new();
    };
    let Ok(mut stream) = UnixStream::connect(&path) else {
        return HashMap::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Zeroizing::new(Vec::new());
    // Bounded: a handful of names and values.
    if (&mut stream).take(1 << 20).read_to_end(&mut buf).is_err() {
        return HashMap::new();
    }
    let parsed: BTreeMap<String, String> = serde_json::from_slice(&buf).unwrap_or_default();
    parsed
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v)))
        .collect()
}
