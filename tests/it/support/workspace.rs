//! A workdir of small repositories, for the serve and search tests: real git repositories made
//! with the git CLI in a tempdir, cloned into a workdir at their checkout paths, and a spec
//! written next to them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use agentenv::secrets::ResolvedSecrets;
use agentenv::spec::LoadedEnv;
use agentenv::tools::Context;

use super::agentenv_cmd;
use super::git::{commit_all, git, write};

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub spec: PathBuf,
    pub workdir: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let workdir = tmp.path().join("work");
        std::fs::create_dir_all(&workdir).unwrap();
        std::fs::create_dir_all(tmp.path().join("origins")).unwrap();
        let spec = tmp.path().join("env.yaml");
        Fixture { tmp, spec, workdir }
    }

    pub fn origin(&self, name: &str) -> PathBuf {
        self.tmp.path().join("origins").join(name)
    }

    /// A repository `name` on branch `main` holding `files`, committed once.
    pub fn repo(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.origin(name);
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        for (path, content) in files {
            write(&dir.join(path), content);
        }
        commit_all(&dir, "initial");
        dir
    }

    /// Commit `files` on `branch` (created from main) in the origin, then go back to main.
    pub fn branch(&self, name: &str, branch: &str, files: &[(&str, &str)]) -> String {
        let dir = self.origin(name);
        git(&dir, &["checkout", "-q", "-b", branch]);
        for (path, content) in files {
            write(&dir.join(path), content);
        }
        let id = commit_all(&dir, &format!("work on {branch}"));
        git(&dir, &["checkout", "-q", "main"]);
        id
    }

    /// Clone the origin into the workdir at `name` (full history, every branch fetched).
    pub fn clone(&self, name: &str) -> PathBuf {
        let dest = self.workdir.join(name);
        git(
            self.tmp.path(),
            &[
                "clone",
                "-q",
                "--no-local",
                self.origin(name).to_str().unwrap(),
                dest.to_str().unwrap(),
            ],
        );
        dest
    }

    /// Write the spec: these repositories by URL, plus `extra` YAML (scope, serve, …).
    pub fn spec(&self, repos: &[&str], extra: &str) {
        let mut yaml = String::from("version: 1\nname: fixture\nrepos:\n");
        for r in repos {
            yaml.push_str(&format!("  - url: ./origins/{r}\n"));
        }
        yaml.push_str(extra);
        std::fs::write(&self.spec, yaml).unwrap();
    }

    pub fn context(&self) -> Arc<Context> {
        let env = LoadedEnv::load(&self.spec).unwrap();
        Arc::new(Context::open(env, &self.workdir, ResolvedSecrets::empty()).unwrap())
    }

    /// A context whose scope is narrowed after loading (validation refuses a spec that names
    /// an out-of-scope repository, so scope tests cannot write one).
    pub fn context_with_scope(
        &self,
        repositories: Option<&str>,
        branches: Option<&str>,
    ) -> Arc<Context> {
        let mut env = LoadedEnv::load(&self.spec).unwrap();
        let re = |r: Option<&str>| r.map(|r| regex::Regex::new(r).unwrap());
        env.scope = agentenv::scope::Scope::new(re(repositories), re(branches));
        Arc::new(Context::open(env, &self.workdir, ResolvedSecrets::empty()).unwrap())
    }

    /// `agentenv`, for a test to add the command, the spec and the workdir to.
    pub fn command(&self) -> Command {
        agentenv_cmd(&[])
    }
}

/// A fixture with one repository `app`, cloned, with a handful of files to search.
pub fn small_app() -> Fixture {
    let fx = Fixture::new();
    fx.repo(
        "app",
        &[
            (
                "src/main.rs",
                "fn main() {\n    // TODO: wire the server\n    let abc = 1;\n}\n",
            ),
            (
                "src/lib.rs",
                "pub fn a_c() {}\n// todo lower\npub const A_DOT_C: &str = \"a.c\";\n",
            ),
            ("README.md", "# App\nTODO: docs\n"),
            (".gitignore", "target/\n*.log\n"),
        ],
    );
    fx.clone("app");
    fx.spec(&["app"], "");
    fx
}
