//! Every git network operation against hostile or broken servers on loopback: the credential
//! never follows a redirect to another host, a silent or crawling server fails in bounded time
//! (exit 5, nothing left behind, the workdir lock released), and `Retry-After` is honoured.
//!
//! The servers are written here on `std::net` (127.0.0.1, and 127.0.0.2: loopback too, but
//! another host); those that must answer git forward to the Bitbucket emulator, which serves
//! git through the real `git http-backend`. Each agentenv runs under a watchdog, so a hang
//! fails the test instead of stalling the suite.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitbucket_emulator::{Config, Emulator, Token};

use crate::support::git::git;

const EMAIL: &str = "bot@acme.example";
const API_TOKEN: &str = "CANARY-gitapi-5c1e9a7b3d";
const DC_TOKEN: &str = "CANARY-gitdc-8e2a4c6f0b";
const CANARIES: &[&str] = &[API_TOKEN, DC_TOKEN];

/// A hanging agentenv is killed after this long and the test fails.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Short timeouts so that a stalled server fails in about a second per attempt; the shape of
/// each fault is the same as at the defaults (10 s connect, 1 KiB/s over 30 s).
const FAST: &[(&str, &str)] = &[
    ("AGENTENV_GIT_CONNECT_TIMEOUT", "1"),
    ("AGENTENV_GIT_LOW_SPEED_TIME", "1"),
    ("AGENTENV_GIT_LOW_SPEED_LIMIT", "1024"),
];

// ---------------------------------------------------------------------------------------------
// Repositories, the emulator, specs, the binary

/// Two commits on `main` and a `dev` branch; with `big`, a ~400 KB file that compresses badly,
/// so that the pack is far larger than what a stalling proxy lets through.
fn upstream(dir: &Path, big: bool) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    std::fs::write(dir.join("README.md"), "one\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "one"]);
    if big {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: String = (0..50_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{x:016x}")
            })
            .collect();
        std::fs::write(dir.join("noise.txt"), noise).unwrap();
    }
    std::fs::write(dir.join("README.md"), "two\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "two"]);
    git(dir, &["branch", "dev"]);
    dir.to_path_buf()
}

struct Fixture {
    dir: tempfile::TempDir,
    emu: Emulator,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(false)
    }

    fn with(big: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repo = upstream(&dir.path().join("upstream"), big);
        let emu = Emulator::start(
            Config::default()
                .token(Token::cloud_api(
                    EMAIL,
                    "acme-bot",
                    API_TOKEN,
                    &[
                        "read:repository:bitbucket",
                        "read:user:bitbucket",
                        "read:workspace:bitbucket",
                    ],
                ))
                .token(Token::dc_project("PAY", DC_TOKEN, &["REPO_READ"]))
                .cloud_repo("acme", "payments-api", &repo)
                .dc_repo("PAY", "payments-api", &repo),
        );
        Fixture { dir, emu }
    }

    fn workdir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn emu_addr(&self) -> SocketAddr {
        addr_of(&self.emu.base_url())
    }

    /// A Cloud provider whose git is at `git_url` (its REST API is the emulator's).
    fn cloud_spec(&self, git_url: &str) -> PathBuf {
        self.spec(&format!(
            "providers:\n  bb:\n    kind: cloud\n    workspace: acme\n    api_url: {}\n    git_url: {git_url}\n    auth:\n      type: api-token\n      email: {EMAIL}\n      token: BB_TOKEN\nsecrets:\n  from_env: [BB_TOKEN]\nrepos:\n  - provider: bb\n    slug: payments-api\n",
            self.emu.cloud_api_url()
        ))
    }

    /// A Data Center provider at `base_url` (git under `{base_url}/scm`).
    fn dc_spec(&self, base_url: &str) -> PathBuf {
        self.spec(&format!(
            "providers:\n  dc:\n    kind: datacenter\n    base_url: {base_url}\n    project: PAY\n    auth:\n      type: http-access-token\n      token: BB_TOKEN\nsecrets:\n  from_env: [BB_TOKEN]\nrepos:\n  - provider: dc\n    slug: payments-api\n"
        ))
    }

    fn spec(&self, body: &str) -> PathBuf {
        let path = self.dir.path().join("env.yaml");
        std::fs::write(&path, format!("version: 1\nname: test\n{body}")).unwrap();
        path
    }

    /// `agentenv CMD SPEC [--workdir WORK] [extra…]` with `BB_TOKEN=token` and `env`.
    fn run(
        &self,
        cmd: &str,
        spec: &Path,
        extra: &[&str],
        token: &str,
        env: &[(&str, &str)],
    ) -> Output {
        let work = self.workdir();
        let mut args = vec![cmd, spec.to_str().unwrap()];
        if cmd == "provision" {
            args.extend(["--workdir", work.to_str().unwrap()]);
        }
        args.extend(extra);
        let mut command = Command::new(env!("CARGO_BIN_EXE_agentenv"));
        command
            .args(&args)
            .env_remove("AGENTENV_WORKDIR")
            .env_remove("AGENTENV_AGE_KEY")
            .env_remove("AGENTENV_AGE_KEY_FILE")
            .env(
                "AGENTENV_PERSONAL_FILE",
                self.dir.path().join("no-personal.yaml"),
            )
            .env("BB_TOKEN", token)
            .envs(env.iter().copied());
        watchdog(command, &args)
    }
}

/// Run `command`, killing it (and failing the test) when it outlives [`WATCHDOG`].
fn watchdog(mut command: Command, args: &[&str]) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agentenv starts");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
            panic!("`agentenv {args:?}` still running after {WATCHDOG:?}; killed it\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn addr_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    rest.split('/').next().unwrap().parse().unwrap()
}

/// No canary in the output, and none in any file under the test's directory.
fn assert_no_canary(f: &Fixture, out: &Output) {
    let all = text(out);
    for c in CANARIES {
        assert!(!all.contains(c), "canary {c} in the output:\n{all}");
    }
    let mut stack = vec![f.workdir()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                for c in CANARIES {
                    assert!(
                        !bytes.windows(c.len()).any(|w| w == c.as_bytes()),
                        "canary {c} in {}",
                        p.display()
                    );
                }
            }
        }
    }
}

/// Nothing but agentenv's own directory in the workdir: no checkout, no temporary clone.
fn assert_nothing_checked_out(f: &Fixture) {
    let names: Vec<String> = std::fs::read_dir(f.workdir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".agentenv")
        .collect();
    assert!(names.is_empty(), "left in the workdir: {names:?}");
}

// ---------------------------------------------------------------------------------------------
// Loopback servers

/// One request as a server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a server does with one request.
enum Reply {
    /// Forward it to `to` (one request per connection); with `stall_after`, stop passing the
    /// response on after that many bytes and hold the connection open.
    Forward {
        to: SocketAddr,
        stall_after: Option<usize>,
    },
    /// Send these bytes and close.
    Raw(String),
    /// Send these bytes (maybe none), then say nothing more, holding the connection open.
    Stall(String),
    /// Send the head, then one byte of body every `every`.
    Drip { head: String, every: Duration },
}

type Handler = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Listen on `ip`; `None` accepts connections and never reads from them.
    fn start(ip: &str, handler: Option<Handler>) -> Server {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        let (h, s, st) = (handler.clone(), s.clone(), st.clone());
                        std::thread::spawn(move || serve(conn, h, &s, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server { addr, seen, stop }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn hold(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The request head (through the blank line) and whatever body bytes came with it.
fn read_head(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn serve(
    mut conn: TcpStream,
    handler: Option<Handler>,
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
) {
    let Some(handler) = handler else {
        return hold(stop);
    };
    let Some((head, rest)) = read_head(&mut conn) else {
        return;
    };
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split(' ');
    let request = Seen {
        method: first.next().unwrap_or_default().to_string(),
        target: first.next().unwrap_or_default().to_string(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
        at: Instant::now(),
    };
    let n = {
        let mut seen = seen.lock().unwrap();
        seen.push(request.clone());
        seen.len() - 1
    };
    match handler(&request, n) {
        Reply::Raw(bytes) => {
            let _ = conn.write_all(bytes.as_bytes());
        }
        Reply::Stall(bytes) => {
            let _ = conn.write_all(bytes.as_bytes());
            hold(stop);
        }
        Reply::Drip { head, every } => {
            let _ = conn.write_all(head.as_bytes());
            while !stop.load(Ordering::Relaxed) && conn.write_all(b"a").is_ok() {
                std::thread::sleep(every);
            }
        }
        Reply::Forward { to, stall_after } => forward(conn, &head, &rest, to, stall_after, stop),
    }
}

fn forward(
    mut conn: TcpStream,
    head: &str,
    rest: &[u8],
    to: SocketAddr,
    stall_after: Option<usize>,
    stop: &AtomicBool,
) {
    let Ok(mut up) = TcpStream::connect(to) else {
        return;
    };
    // One request per connection, so that the server sees (and can refuse) every request.
    let mut out: String = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str("Connection: close\r\n\r\n");
    if up.write_all(out.as_bytes()).is_err() || up.write_all(rest).is_err() {
        return;
    }
    let (mut from_client, mut to_up) = (conn.try_clone().unwrap(), up.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_up);
    });
    let mut sent = 0usize;
    let mut chunk = [0u8; 8192];
    loop {
        let n = match up.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let n = match stall_after {
            Some(limit) if sent + n >= limit => {
                let _ = conn.write_all(&chunk[..limit - sent]);
                return hold(stop);
            }
            _ => n,
        };
        if conn.write_all(&chunk[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
    let _ = up.shutdown(std::net::Shutdown::Both);
}

fn forward_to(to: SocketAddr) -> Handler {
    Arc::new(move |_, _| Reply::Forward {
        to,
        stall_after: None,
    })
}

fn redirect(location: &str) -> Reply {
    Reply::Raw(format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ))
}

// ---------------------------------------------------------------------------------------------
// 1. The credential never follows a redirect to another host

/// A git server on 127.0.0.1 that redirects everything to the same path on 127.0.0.2, where a
/// recording server forwards to the emulator (so that following the redirect would work).
fn redirect_to_other_host(f: &Fixture) -> (Server, Server) {
    let other = Server::start("127.0.0.2", Some(forward_to(f.emu_addr())));
    let target = other.url();
    let front = Server::start(
        "127.0.0.1",
        Some(Arc::new(move |req, _| {
            redirect(&format!("{target}{}", req.target))
        })),
    );
    (front, other)
}

fn assert_redirect_refused(f: &Fixture, out: &Output, other: &Server) {
    assert_eq!(code(out), 5, "{}", text(out));
    let said = text(out);
    assert!(
        said.contains("redirect") && said.contains(&other.addr.to_string()),
        "the error names the redirect and where it pointed:\n{said}"
    );
    let leaked: Vec<_> = other
        .seen()
        .into_iter()
        .filter(|r| r.header("authorization").is_some())
        .collect();
    assert!(
        leaked.is_empty(),
        "the other host got a credential: {leaked:?}"
    );
    assert!(
        other.seen().is_empty(),
        "the redirect was not followed at all"
    );
    assert_no_canary(f, out);
    assert_nothing_checked_out(f);
}

#[test]
fn a_cloud_redirect_to_another_host_is_refused_and_sent_no_credential() {
    let f = Fixture::new();
    let (front, other) = redirect_to_other_host(&f);
    let spec = f.cloud_spec(&front.url());
    let out = f.run("provision", &spec, &[], API_TOKEN, &[]);
    assert_redirect_refused(&f, &out, &other);
    assert!(
        text(&out).contains("git_url"),
        "the hint says what to change:\n{}",
        text(&out)
    );
    for (cmd, extra) in [
        ("provision", &["--dry-run"][..]),
        ("branches", &["payments-api"][..]),
        ("check", &[][..]),
    ] {
        let out = f.run(cmd, &spec, extra, API_TOKEN, &[]);
        assert_redirect_refused(&f, &out, &other);
    }
    assert_eq!(
        front.seen().len(),
        4,
        "one request per command: not retried"
    );
}

#[test]
fn a_datacenter_redirect_to_another_host_is_refused_and_sent_no_bearer() {
    let f = Fixture::new();
    let (front, other) = redirect_to_other_host(&f);
    let spec = f.dc_spec(&front.url());
    let out = f.run("provision", &spec, &[], DC_TOKEN, &[]);
    assert_redirect_refused(&f, &out, &other);
    let first = &front.seen()[0];
    assert_eq!(
        first.header("authorization"),
        Some(format!("Bearer {DC_TOKEN}").as_str()),
        "the provider's own host gets the Bearer from the first request"
    );
}

#[test]
fn a_same_origin_redirect_is_followed_with_the_credential() {
    let f = Fixture::new();
    let emu = f.emu_addr();
    // `/old/...` moved to `/...` on the same host; every later request goes to the new place.
    let front = Server::start(
        "127.0.0.1",
        Some(Arc::new(move |req, _| {
            match req.target.strip_prefix("/old") {
                Some(moved) => redirect(moved),
                None => Reply::Forward {
                    to: emu,
                    stall_after: None,
                },
            }
        })),
    );
    let spec = f.cloud_spec(&format!("{}/old", front.url()));
    let out = f.run("provision", &spec, &[], API_TOKEN, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(f.workdir().join("payments-api/README.md").exists());
    let seen = front.seen();
    assert!(seen[0].target.starts_with("/old/"), "{seen:?}");
    assert!(
        seen[1..].iter().all(|r| !r.target.starts_with("/old/")),
        "after the redirect, requests go to the new place: {seen:?}"
    );
    assert!(f.emu.count_token("cloud-api:acme-bot") > 0);
    assert_no_canary(&f, &out);
}

// ---------------------------------------------------------------------------------------------
// 2. A silent or crawling server fails in bounded time

const ADVERTISEMENT_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nContent-Length: 100000\r\n\r\n";

/// `provision` (twice: the lock was released), `--dry-run`, `check` and `branches` against a
/// Cloud provider whose git host is `server`: each exits 5 in bounded time, says it timed out and
/// where, and leaves nothing behind.
fn assert_every_command_gives_up(f: &Fixture, server: &Server) {
    assert_every_command_gives_up_with(f, server, FAST);
}

fn assert_every_command_gives_up_with(f: &Fixture, server: &Server, env: &[(&str, &str)]) {
    let spec = f.cloud_spec(&server.url());
    for (cmd, extra) in [
        ("provision", &[][..]),
        ("provision", &[][..]),
        ("provision", &["--dry-run"][..]),
        ("check", &[][..]),
        ("branches", &["payments-api"][..]),
    ] {
        let started = Instant::now();
        let out = f.run(cmd, &spec, extra, API_TOKEN, env);
        let said = text(&out);
        assert_eq!(code(&out), 5, "{cmd} {extra:?}:\n{said}");
        assert!(
            said.contains("timed out") && said.contains(&server.addr.to_string()),
            "{cmd} {extra:?} says it timed out and where:\n{said}"
        );
        assert!(
            said.contains("AGENTENV_GIT_LOW_SPEED_TIME"),
            "{cmd} {extra:?} names the setting:\n{said}"
        );
        assert!(!said.contains("busy"), "the lock was released:\n{said}");
        assert_no_canary(f, &out);
        assert_nothing_checked_out(f);
        eprintln!("{cmd} {extra:?}: exit 5 after {:?}", started.elapsed());
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    let f = Fixture::new();
    let server = Server::start(
        "127.0.0.1",
        Some(Arc::new(|_, _| Reply::Stall(String::new()))),
    );
    assert_every_command_gives_up(&f, &server);
}

#[test]
fn a_server_that_never_reads_times_out() {
    let f = Fixture::new();
    let server = Server::start("127.0.0.1", None);
    assert_every_command_gives_up(&f, &server);
}

#[test]
fn a_server_that_drips_bytes_is_too_slow() {
    let f = Fixture::new();
    // A byte every 100 ms never lets a read wait the 2 s allowed: only the low-speed limit
    // (1 KiB/s averaged over 2 s here) catches it, as it catches a byte every 5 s at 30 s.
    let slow: &[(&str, &str)] = &[
        ("AGENTENV_GIT_CONNECT_TIMEOUT", "1"),
        ("AGENTENV_GIT_LOW_SPEED_TIME", "2"),
        ("AGENTENV_GIT_LOW_SPEED_LIMIT", "1024"),
    ];
    let server = Server::start(
        "127.0.0.1",
        Some(Arc::new(|_, _| Reply::Drip {
            head: format!("{ADVERTISEMENT_HEAD}001e# service=git-upload-pack\n0000fff0"),
            every: Duration::from_millis(100),
        })),
    );
    assert_every_command_gives_up_with(&f, &server, slow);
    let out = f.run(
        "provision",
        &f.cloud_spec(&server.url()),
        &[],
        API_TOKEN,
        slow,
    );
    assert!(
        text(&out).contains("AGENTENV_GIT_LOW_SPEED_LIMIT") && text(&out).contains("bytes in"),
        "the low-speed limit caught it:\n{}",
        text(&out)
    );
}

#[test]
fn a_server_that_stalls_after_the_headers_times_out() {
    let f = Fixture::new();
    let server = Server::start(
        "127.0.0.1",
        Some(Arc::new(|_, _| Reply::Stall(ADVERTISEMENT_HEAD.into()))),
    );
    assert_every_command_gives_up(&f, &server);
}

#[test]
fn a_server_that_stalls_mid_pack_times_out_without_a_half_checkout() {
    let f = Fixture::with(true);
    let emu = f.emu_addr();
    let server = Server::start(
        "127.0.0.1",
        Some(Arc::new(move |req, _| Reply::Forward {
            to: emu,
            stall_after: (req.method == "POST").then_some(32 * 1024),
        })),
    );
    let spec = f.cloud_spec(&server.url());
    for _ in 0..2 {
        let out = f.run("provision", &spec, &[], API_TOKEN, FAST);
        let said = text(&out);
        assert_eq!(code(&out), 5, "{said}");
        assert!(
            said.contains("timed out") && said.contains(&server.addr.to_string()),
            "{said}"
        );
        assert!(!said.contains("busy"), "{said}");
        assert_no_canary(&f, &out);
        assert_nothing_checked_out(&f);
    }
    // Asking for the branches downloads no pack: those work through the same server.
    let out = f.run("provision", &spec, &["--dry-run"], API_TOKEN, FAST);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = f.run("branches", &spec, &["payments-api"], API_TOKEN, FAST);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        f.emu.count("POST */git-upload-pack") >= 2,
        "the pack was asked for"
    );
}

#[test]
fn a_connection_that_cannot_be_made_times_out() {
    let f = Fixture::new();
    // A listener whose backlog is full: further connections are never accepted.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _filled: Vec<TcpStream> = (0..512)
        .map_while(|_| {
            let s = socket_with_timeout(addr)?;
            Some(s)
        })
        .collect();
    let spec = f.cloud_spec(&format!("http://{addr}"));
    let started = Instant::now();
    let out = f.run("provision", &spec, &["--dry-run"], API_TOKEN, FAST);
    assert_eq!(code(&out), 5, "{}", text(&out));
    assert!(started.elapsed() < WATCHDOG);
    drop(listener);
}

fn socket_with_timeout(addr: SocketAddr) -> Option<TcpStream> {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
}

// ---------------------------------------------------------------------------------------------
// Retry-After

fn busy_then_forward(
    f: &Fixture,
    status: &'static str,
    wait: &'static str,
    times: usize,
) -> Server {
    let emu = f.emu_addr();
    Server::start(
        "127.0.0.1",
        Some(Arc::new(move |_, n| {
            if n < times {
                Reply::Raw(format!(
                    "HTTP/1.1 {status}\r\nRetry-After: {wait}\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
                ))
            } else {
                Reply::Forward {
                    to: emu,
                    stall_after: None,
                }
            }
        })),
    )
}

fn assert_waited_then_cloned(f: &Fixture, status: &'static str) {
    let server = busy_then_forward(f, status, "1", 1);
    let out = f.run(
        "provision",
        &f.cloud_spec(&server.url()),
        &[],
        API_TOKEN,
        &[],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(f.workdir().join("payments-api/README.md").exists());
    let refs: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|r| r.target.contains("/info/refs"))
        .collect();
    assert_eq!(refs.len(), 2, "one refusal, then the answer: {refs:?}");
    // The usual back-off is 300–450 ms; only `Retry-After: 1` makes the second try wait ~1 s.
    let gap = refs[1].at - refs[0].at;
    assert!(gap >= Duration::from_millis(900), "waited only {gap:?}");
}

#[test]
fn a_429_with_retry_after_is_waited_out() {
    assert_waited_then_cloned(&Fixture::new(), "429 Too Many Requests");
}

#[test]
fn a_503_with_retry_after_is_waited_out() {
    assert_waited_then_cloned(&Fixture::new(), "503 Service Unavailable");
}

#[test]
fn a_retry_after_beyond_the_bound_fails_at_once_with_the_wait() {
    let f = Fixture::new();
    let server = busy_then_forward(&f, "429 Too Many Requests", "120", usize::MAX);
    let started = Instant::now();
    let out = f.run(
        "provision",
        &f.cloud_spec(&server.url()),
        &[],
        API_TOKEN,
        &[],
    );
    let said = text(&out);
    assert_eq!(code(&out), 5, "{said}");
    assert!(
        said.contains("120 s"),
        "the message gives the wait:\n{said}"
    );
    assert_eq!(server.seen().len(), 1, "not tried again");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_nothing_checked_out(&f);
}

// ---------------------------------------------------------------------------------------------
// Where the transport may run

/// Tools run on tokio's blocking pool: a git network call must work there (reqwest's blocking
/// client refuses to run inside an async context, but `spawn_blocking` threads are not one).
#[test]
fn git_network_calls_work_on_tokio_blocking_threads() {
    let dir = tempfile::tempdir().unwrap();
    let repo = upstream(&dir.path().join("upstream"), false);
    let emu = Emulator::start(Config::default().anonymous(true).cloud_repo(
        "acme",
        "payments-api",
        &repo,
    ));
    let spec = dir.path().join("env.yaml");
    std::fs::write(
        &spec,
        format!(
            "version: 1\nname: test\nrepos:\n  - url: {}\n",
            emu.cloud_clone_url("acme", "payments-api")
        ),
    )
    .unwrap();
    let env = agentenv::spec::LoadedEnv::load(&spec).unwrap();
    let plans = agentenv::provision::plan::repos(&env, &dir.path().join("work")).unwrap();
    let plan = plans[0].clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let task = rt.spawn_blocking(move || {
        agentenv::provision::git::probe(&plan, &agentenv::provision::git::GitAuth::anonymous())
    });
    let tip = rt.block_on(task).unwrap().unwrap();
    assert_eq!(tip.branch, "main");
    assert_eq!(tip.oid.to_string(), git(&repo, &["rev-parse", "main"]));
}
