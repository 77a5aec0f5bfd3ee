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

fn commit(work: &Path, msg: &str, n: usize) -> String {
    let date = format!("2025-01-{:02}T10:00:00+00:00", n + 1);
    ok(work, &["add", "-A"], &[]);
    ok(
        work,
        &["commit", "-q", "-m", msg],
        &[("GIT_AUTHOR_DATE", &date), ("GIT_COMMITTER_DATE", &date)],
    );
    ok(work, &["rev-parse", "HEAD"], &[])
}

/// main: 12 commits (README, src/, docs/, a binary, an executable); feature: add, modify,
/// delete and rename on top of main.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::create_dir_all(work.join("docs")).unwrap();
    ok(&work, &["init", "-q", "-b", "main"], &[]);
    let mut main = Vec::new();
    std::fs::write(work.join("README.md"), "# Demo\n\nA demo repository.\n").unwrap();
    std::fs::write(work.join("src/lib.rs"), "pub fn one() -> u32 {\n    1\n}\n").unwrap();
    std::fs::write(work.join("docs/guide.md"), "Guide\n").unwrap();
    std::fs::write(work.join("data.bin"), [0u8, 1, 2, 3, 0, 255]).unwrap();
    std::fs::write(work.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    ok(
        &work,
        &["update-index", "--add", "--chmod=+x", "run.sh"],
        &[],
    );
    main.push(commit(&work, "Initial import", 0));
    for i in 1..12 {
        let text: String = (0..=i).map(|k| format!("line {k}\n")).collect();
        std::fs::write(work.join("docs/guide.md"), text).unwrap();
        if i % 3 == 0 {
            std::fs::write(
                work.join("src/lib.rs"),
                format!("pub fn one() -> u32 {{\n    {i}\n}}\n"),
            )
            .unwrap();
        }
        main.push(commit(&work, &format!("Update guide {i}"), i));
    }
    ok(&work, &["checkout", "-q", "-b", "feature"], &[]);
    let mut feature = Vec::new();
    std::fs::write(work.join("src/new.rs"), "pub fn two() -> u32 {\n    2\n}\n").unwrap();
    std::fs::write(
        work.join("README.md"),
        "# Demo\n\nA demo repository, changed.\nMore.\n",
    )
    .unwrap();
    feature.push(commit(&work, "Add new module and extend README", 20));
    std::fs::remove_file(work.join("data.bin")).unwrap();
    ok(&work, &["mv", "docs/guide.md", "docs/manual.md"], &[]);
    feature.push(commit(&work, "Remove binary, rename guide", 21));
    ok(&work, &["checkout", "-q", "main"], &[]);
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

pub fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("BITBUCKET_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/bitbucket-reference"
            ))
        });
    if dir.join("bitbucket-openapi.json").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "NOTICE: Bitbucket reference folder not found at {} (set BITBUCKET_REFERENCE_DIR); \
             skipping the schema and sample checks",
            dir.display()
        );
        None
    }
}
