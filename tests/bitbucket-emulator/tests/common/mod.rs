//! Shared helpers: a real git repository made with the git CLI, a small HTTP client, git runs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reqwest::header::HeaderMap;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub work: PathBuf,
    pub bare: PathBuf,
    /// Commit hashes on main, oldest first.
    pub main: Vec<String>,
    /// Commit hashes on `feature` beyond main, oldest first.
    pub feature: Vec<String>,
}

/// Runs git with a clean, prompt-free environment; `envs` add or override variables.
pub fn git(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let home = dir.join(".test-home");
    let _ = std::fs::create_dir_all(&home);
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env("HOME", &home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env_remove("SSH_ASKPASS")
        .env("GIT_AUTHOR_NAME", "Alice Example")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Alice Example")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("git runs")
}

fn ok(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = git(dir, args, envs);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One commit of the fast-import stream; `changes` are fast-import file commands.
fn commit_cmd(
    out: &mut Vec<u8>,
    branch: &str,
    mark: usize,
    from: Option<usize>,
    msg: &str,
    day: usize,
    changes: &[Change],
) {
    let when = 1_735_725_600 + day as i64 * 86_400; // 2025-01-01T10:00:00Z + days
    let ident = format!("Alice Example <alice@example.com> {when} +0000");
    out.extend_from_slice(
        format!("commit refs/heads/{branch}\nmark :{mark}\nauthor {ident}\ncommitter {ident}\n")
            .as_bytes(),
    );
    out.extend_from_slice(format!("data {}\n{msg}\n", msg.len()).as_bytes());
    if let Some(f) = from {
        out.extend_from_slice(format!("from :{f}\n").as_bytes());
    }
    for c in changes {
        match c {
            Change::Write(path, mode, bytes) => {
                out.extend_from_slice(
                    format!("M {mode} inline {path}\ndata {}\n", bytes.len()).as_bytes(),
                );
                out.extend_from_slice(bytes);
                out.push(b'\n');
            }
            Change::Delete(path) => out.extend_from_slice(format!("D {path}\n").as_bytes()),
            Change::Rename(from, to) => {
                out.extend_from_slice(format!("R {from} {to}\n").as_bytes())
            }
        }
    }
    out.push(b'\n');
}

enum Change {
    Write(&'static str, &'static str, Vec<u8>),
    Delete(&'static str),
    Rename(&'static str, &'static str),
}

/// main: 12 commits (README, src/, docs/, a binary, an executable); feature: add, modify,
/// delete and rename on top of main. Built with one `git fast-import` so tests stay fast.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    ok(&work, &["init", "-q", "-b", "main"], &[]);
    let mut stream = Vec::new();
    let w = |p, b: &[u8]| Change::Write(p, "100644", b.to_vec());
    commit_cmd(
        &mut stream,
        "main",
        1,
        None,
        "Initial import",
        0,
        &[
            w("README.md", b"# Demo\n\nA demo repository.\n"),
            w("src/lib.rs", b"pub fn one() -> u32 {\n    1\n}\n"),
            w("docs/guide.md", b"Guide\n"),
            w("data.bin", &[0u8, 1, 2, 3, 0, 255]),
            Change::Write("run.sh", "100755", b"#!/bin/sh\necho hi\n".to_vec()),
        ],
    );
    for i in 1..12 {
        let text: String = (0..=i).map(|k| format!("line {k}\n")).collect();
        let mut changes = vec![Change::Write("docs/guide.md", "100644", text.into_bytes())];
        if i % 3 == 0 {
            changes.push(Change::Write(
                "src/lib.rs",
                "100644",
                format!("pub fn one() -> u32 {{\n    {i}\n}}\n").into_bytes(),
            ));
        }
        commit_cmd(
            &mut stream,
            "main",
            i + 1,
            Some(i),
            &format!("Update guide {i}"),
            i,
            &changes,
        );
    }
    commit_cmd(
        &mut stream,
        "feature",
        13,
        Some(12),
        "Add new module and extend README",
        20,
        &[
            w("src/new.rs", b"pub fn two() -> u32 {\n    2\n}\n"),
            w(
                "README.md",
                b"# Demo\n\nA demo repository, changed.\nMore.\n",
            ),
        ],
    );
    commit_cmd(
        &mut stream,
        "feature",
        14,
        Some(13),
        "Remove binary, rename guide",
        21,
        &[
            Change::Delete("data.bin"),
            Change::Rename("docs/guide.md", "docs/manual.md"),
        ],
    );
    let mut import = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&work)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    std::io::Write::write_all(&mut import.stdin.take().unwrap(), &stream).unwrap();
    assert!(import.wait().unwrap().success(), "git fast-import failed");
    ok(&work, &["checkout", "-q", "-f", "main"], &[]);
    let list = |range: &str| -> Vec<String> {
        ok(&work, &["rev-list", "--reverse", range], &[])
            .lines()
            .map(str::to_string)
            .collect()
    };
    let main = list("main");
    let feature = list("main..feature");
    let bare = dir.path().join("bare.git");
    ok(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
        &[],
    );
    Fixture {
        dir,
        work,
        bare,
        main,
        feature,
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

/// A blocking HTTP client on its own small runtime (the tests themselves are synchronous).
pub struct Http {
    rt: tokio::runtime::Runtime,
    plain: reqwest::Client,
    follow: reqwest::Client,
}

impl Http {
    pub fn new() -> Http {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let build = |p| {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(p)
                .build()
                .unwrap()
        };
        Http {
            rt,
            plain: build(reqwest::redirect::Policy::none()),
            follow: build(reqwest::redirect::Policy::limited(5)),
        }
    }
    fn send(
        &self,
        client: &reqwest::Client,
        url: &str,
        auth: Auth,
        headers: &[(&str, &str)],
    ) -> Resp {
        self.rt.block_on(async {
            let mut rb = client.get(url);
            rb = match auth {
                Auth::None => rb,
                Auth::Basic(u, p) => rb.basic_auth(u, Some(p)),
                Auth::Bearer(t) => rb.bearer_auth(t),
            };
            for (k, v) in headers {
                rb = rb.header(*k, *v);
            }
            let r = rb.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            Resp {
                status,
                headers,
                body,
            }
        })
    }
    pub fn get(&self, url: &str, auth: Auth) -> Resp {
        self.send(&self.plain, url, auth, &[])
    }
    pub fn get_with(&self, url: &str, auth: Auth, headers: &[(&str, &str)]) -> Resp {
        self.send(&self.plain, url, auth, headers)
    }
    pub fn get_following(&self, url: &str, auth: Auth) -> Resp {
        self.send(&self.follow, url, auth, &[])
    }
    pub fn post(&self, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
        self.rt.block_on(async {
            let mut rb = self.plain.post(url).body(body);
            for (k, v) in headers {
                rb = rb.header(*k, *v);
            }
            let r = rb
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {url}: {e}"));
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            Resp {
                status,
                headers,
                body,
            }
        })
    }
    /// Sends a GET and reports whether the body could be read completely.
    pub fn get_body_result(&self, url: &str) -> Result<Vec<u8>, String> {
        self.rt.block_on(async {
            let r = self
                .plain
                .get(url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            r.bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string())
        })
    }
}

/// `git clone` with credentials from a credential helper reading them from the environment,
/// so no secret lands in argv.
pub fn clone_basic(dir: &Path, url: &str, dest: &str, user: &str, secret: &str) -> Output {
    let helper = "!f() { test \"$1\" = get && echo username=\"$EMU_USER\" && echo password=\"$EMU_SECRET\"; }; f";
    git(
        dir,
        &[
            "-c",
            "credential.helper=",
            "-c",
            &format!("credential.helper={helper}"),
            "clone",
            "-q",
            url,
            dest,
        ],
        &[("EMU_USER", user), ("EMU_SECRET", secret)],
    )
}

/// `git clone` with `http.extraHeader` set through GIT_CONFIG_* variables (not argv).
pub fn clone_bearer(dir: &Path, url: &str, dest: &str, secret: &str) -> Output {
    let header = format!("Authorization: Bearer {secret}");
    git(
        dir,
        &["clone", "-q", url, dest],
        &[
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "http.extraHeader"),
            ("GIT_CONFIG_VALUE_0", &header),
        ],
    )
}
