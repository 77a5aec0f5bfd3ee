//! A real git repository for the checkout-tool tests, made with the git CLI: several branches
//! (some out of scope), several authors and dates, a binary file, a file over 100 KB, a single
//! line over 100 KB, nested directories, symlinks pointing inside and outside, a secret canary
//! only on an out-of-scope branch; cloned into a workdir next to a spec that names it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentenv::secrets::ResolvedSecrets;
use agentenv::spec::LoadedEnv;
use agentenv::tools::{Context, Kind};
use serde_json::Value;

use super::git::{commit_all_as, git, symlink, write};

/// Only on the out-of-scope branch `secret`, and in the out-of-scope repository.
pub const CANARY: &str = "CANARY-7f3a9c-out-of-scope-content";
/// Content outside every repository, that a symlink points at.
pub const OUTSIDE_CANARY: &str = "CANARY-outside-the-repository-91b2";

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    /// The scoped spec for `agentenv tool` (no out-of-scope repository in it).
    pub cli_spec: PathBuf,
    pub workdir: PathBuf,
    pub ctx: Arc<Context>,
    /// Commit ids by label.
    pub main_commits: Vec<String>,
    pub release_head: String,
    pub secret_head: String,
}

fn put(root: &Path, rel: &str, content: &[u8]) {
    write(&root.join(rel), content);
}

fn link(root: &Path, rel: &str, target: &str) {
    symlink(&root.join(rel), target);
}

const ALICE: (&str, &str) = ("Alice Anders", "alice@acme.example");
const BOB: (&str, &str) = ("Bob Builder", "bob@builders.example");
const CAROL: (&str, &str) = ("Carol Chen", "carol@acme.example");

/// The big text file: 3000 lines of 50 bytes = 150 KB.
pub fn big_line(n: usize) -> String {
    format!("line {n:05} of the big file, padded to fifty bytes\n")
}

pub fn build() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let origin = base.join("origin/payments-api");
    std::fs::create_dir_all(&origin).unwrap();
    git(&origin, &["init", "-q"]);

    // Outside every repository: what an escaping symlink would reach.
    put(&base, "outside.txt", OUTSIDE_CANARY.as_bytes());

    let mut main_commits = Vec::new();
    put(&origin, "README.md", b"# payments-api\n\nHello.\n");
    put(
        &origin,
        "src/main.rs",
        b"fn main() {\n    println!(\"hi\");\n}\n",
    );
    put(&origin, "a/b/c/deep.txt", b"deep\n");
    put(&origin, "docs/old.md", b"old docs\n");
    main_commits.push(commit_all_as(
        &origin,
        "Initial import\n\nWith a body line.",
        (ALICE.0, ALICE.1, "2024-01-10T09:00:00+02:00"),
    ));

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0u8; 64]);
    png.extend_from_slice(&[1, 2, 3, 0, 255]);
    put(&origin, "assets/logo.png", &png);
    let big: String = (1..=3000).map(big_line).collect();
    put(&origin, "big.txt", big.as_bytes());
    let mut long = "x".repeat(120 * 1024);
    long.push_str("\nsecond line\n");
    put(&origin, "oneline.min.js", long.as_bytes());
    main_commits.push(commit_all_as(
        &origin,
        "Add assets and big files",
        (BOB.0, BOB.1, "2024-02-15T12:00:00Z"),
    ));

    // release/1.0 forks here.
    git(&origin, &["branch", "release/1.0"]);

    link(&origin, "link-inside", "src/main.rs");
    link(&origin, "link-outside", "../../outside.txt");
    link(&origin, "link-abs", "/etc/passwd");
    link(&origin, "srclink", "src");
    put(&origin, "script.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        origin.join("script.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    main_commits.push(commit_all_as(
        &origin,
        "Add symlinks and a script",
        (ALICE.0, ALICE.1, "2024-03-20T08:30:00Z"),
    ));

    put(
        &origin,
        "src/main.rs",
        b"fn main() {\n    println!(\"hello\");\n    println!(\"world\");\n}\n",
    );
    std::fs::remove_file(origin.join("docs/old.md")).unwrap();
    git(&origin, &["mv", "README.md", "README.markdown"]);
    main_commits.push(commit_all_as(
        &origin,
        "Greet the world; drop old docs",
        (CAROL.0, CAROL.1, "2024-04-05T17:45:00Z"),
    ));

    git(&origin, &["checkout", "-q", "release/1.0"]);
    put(&origin, "RELEASE", b"1.0\n");
    let release_head = commit_all_as(
        &origin,
        "Release 1.0",
        (BOB.0, BOB.1, "2024-02-20T10:00:00Z"),
    );

    git(&origin, &["checkout", "-q", "-b", "secret", "main"]);
    put(&origin, "secret.txt", format!("{CANARY}\n").as_bytes());
    put(&origin, "src/main.rs", format!("// {CANARY}\n").as_bytes());
    let secret_head = commit_all_as(
        &origin,
        "Secret work",
        (CAROL.0, CAROL.1, "2024-05-01T00:00:00Z"),
    );
    git(&origin, &["tag", "v-secret", &secret_head]);
    git(&origin, &["tag", "v-main", &main_commits[1]]);
    git(&origin, &["checkout", "-q", "main"]);

    // An out-of-scope repository that is cloned all the same.
    let other = base.join("origin/internal-secrets");
    std::fs::create_dir_all(&other).unwrap();
    git(&other, &["init", "-q"]);
    put(&other, "keys.txt", format!("{CANARY}\n").as_bytes());
    commit_all_as(&other, "keys", (ALICE.0, ALICE.1, "2024-01-01T00:00:00Z"));

    // A bare copy to clone shallowly (file:// so that --depth is honoured).
    git(
        &base,
        &[
            "clone",
            "-q",
            "--bare",
            "origin/payments-api",
            "origin/payments-shallow.git",
        ],
    );

    let workdir = base.join("work");
    std::fs::create_dir_all(&workdir).unwrap();
    // A full clone: every origin branch, `secret` included, is a remote-tracking ref, so its
    // objects are in the clone and scope must keep them out.
    git(
        &workdir,
        &["clone", "-q", "../origin/payments-api", "payments-api"],
    );
    git(
        &workdir,
        &[
            "clone",
            "-q",
            "../origin/internal-secrets",
            "internal-secrets",
        ],
    );
    let shallow_url = format!(
        "file://{}",
        base.join("origin/payments-shallow.git").display()
    );
    git(
        &workdir,
        &[
            "clone",
            "-q",
            "--depth",
            "2",
            "--single-branch",
            "--branch",
            "main",
            &shallow_url,
            "shallow",
        ],
    );
    // A symlink in the workdir pointing out of it, for working-copy confinement checks.
    link(
        &workdir.join("payments-api"),
        "wc-escape",
        "../../outside.txt",
    );

    let spec = base.join("env.yaml");
    std::fs::write(
        &spec,
        r#"version: 1
name: tools-test
repos:
  - url: origin/payments-api
    branch: main
    depth: 0
  - url: origin/payments-shallow.git
    path: shallow
    depth: 2
  - url: origin/payments-ledger
  - url: origin/internal-secrets
"#,
    )
    .unwrap();
    // For the command line: the same scope, written in the spec, without the
    // out-of-scope repository (validation refuses a spec that names one).
    let cli_spec = base.join("env-cli.yaml");
    std::fs::write(
        &cli_spec,
        r#"version: 1
name: tools-test
scope:
  repositories: '^payments-.*'
  branches: '^(main|release/.*)$'
repos:
  - url: origin/payments-api
    branch: main
    depth: 0
  - url: origin/payments-shallow.git
    path: shallow
    depth: 2
  - url: origin/payments-ledger
"#,
    )
    .unwrap();
    // The scope is narrowed after loading: validation refuses a spec that names an
    // out-of-scope repository, but the tools must still refuse one that is cloned (a spec
    // narrowed after provisioning), so the fixture keeps `internal-secrets` in the spec.
    let env = LoadedEnv::load(&spec)
        .expect("spec loads")
        .with_scope(Some("^payments-.*"), Some("^(main|release/.*)$"))
        .unwrap();
    let ctx = Arc::new(Context::open(env, &workdir, ResolvedSecrets::empty()).expect("context"));
    Fixture {
        tmp,
        cli_spec,
        workdir,
        ctx,
        main_commits,
        release_head,
        secret_head,
    }
}

impl Fixture {
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        match self.ctx.call(tool, args.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{tool} {args} failed: {e}"),
        }
    }

    pub async fn err(&self, tool: &str, args: Value) -> (Kind, String) {
        match self.ctx.call(tool, args.clone()).await {
            Ok(v) => panic!("{tool} {args} should fail, got {v}"),
            Err(e) => (e.kind, e.message),
        }
    }
}
