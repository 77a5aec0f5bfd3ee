//! A sandbox for the secrets tests: its own HOME and XDG_CONFIG_HOME, the agentenv binary run
//! with a clean environment, age keys, and byte snapshots of files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use age::secrecy::ExposeSecret;

use super::{BIN, Out};

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub config: PathBuf,
    pub spec: PathBuf,
}

/// An age key pair written to a file.
pub struct Key {
    pub file: PathBuf,
    pub public: String,
    pub secret: String,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let config = dir.path().join("xdg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&config).unwrap();
        let spec = dir.path().join("repo/env.yaml");
        std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
        Sandbox {
            dir,
            home,
            config,
            spec,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn team_file(&self) -> PathBuf {
        self.path("repo/secrets/team.yaml")
    }

    pub fn personal_file(&self) -> PathBuf {
        self.config.join("agentenv/personal.yaml")
    }

    pub fn default_key_file(&self) -> PathBuf {
        self.config.join("agentenv/key.txt")
    }

    /// A spec with a provider whose token is `BB_TOKEN`, team file `secrets/team.yaml`.
    pub fn write_spec(&self, recipients: &[&str], from_env: &[&str]) {
        let yaml = format!(
            "version: 1\nname: sec\nproviders:\n  bb:\n    kind: cloud\n    workspace: acme\n    auth: {{type: api-token, email: bot@acme.example, token: BB_TOKEN}}\nsecrets:\n  recipients: {}\n  team: secrets/team.yaml\n  from_env: {}\n",
            serde_json::to_string(recipients).unwrap(),
            serde_json::to_string(from_env).unwrap()
        );
        self.write_spec_text(&yaml);
    }

    pub fn write_spec_text(&self, yaml: &str) {
        std::fs::write(&self.spec, yaml).unwrap();
    }

    /// A new age key in `rel` under the sandbox.
    pub fn key(&self, rel: &str) -> Key {
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        let secret = id.to_string().expose_secret().to_string();
        let file = self.path(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, format!("# public key: {public}\n{secret}\n")).unwrap();
        set_mode(&file, 0o600);
        Key {
            file,
            public,
            secret,
        }
    }

    /// Run `agentenv ARGS` with `stdin` (a pipe, never a terminal) and only the given variables
    /// besides PATH, HOME and XDG_CONFIG_HOME.
    pub fn run(&self, args: &[&str], stdin: &str, vars: &[(&str, &str)]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("agentenv runs");
        let mut input = child.stdin.take().unwrap();
        // A command that fails before reading stdin closes it: that is not a test failure.
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        Out::from(child.wait_with_output().unwrap())
    }

    /// `agentenv secret ARGS…` with the spec as ENV inserted after the subcommand.
    pub fn secret(&self, sub: &str, rest: &[&str], stdin: &str, vars: &[(&str, &str)]) -> Out {
        let spec = self.spec.to_str().unwrap().to_string();
        let mut args = vec!["secret", sub, spec.as_str()];
        args.extend_from_slice(rest);
        self.run(&args, stdin, vars)
    }

    /// The variables a resolution sees: the sandbox's HOME/XDG plus `vars`.
    pub fn vars(&self, vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("HOME".into(), self.home.display().to_string());
        m.insert("XDG_CONFIG_HOME".into(), self.config.display().to_string());
        for (k, v) in vars {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    /// Resolve the sandbox's spec in-process with `vars`.
    pub fn resolve(
        &self,
        vars: &[(&str, &str)],
    ) -> agentenv::Result<agentenv::secrets::ResolvedSecrets> {
        let env = agentenv::spec::LoadedEnv::load(&self.spec)?;
        let m = self.vars(vars);
        agentenv::secrets::resolve_with(&env, &|k| m.get(k).cloned())
    }

    /// Every file under the sandbox and its bytes.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(self.dir.path(), &mut out);
        out
    }
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The armored block stored under `name` in a secrets file, unindented.
pub fn armored(file: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line == format!("{name}: |") {
            inside = true;
            continue;
        }
        if inside {
            match line.strip_prefix("  ") {
                Some(l) => {
                    out.push_str(l);
                    out.push('\n');
                }
                None => break,
            }
        }
    }
    assert!(!out.is_empty(), "{name} not found in {}", file.display());
    out
}

/// Replace the armored block of `name` in a secrets file with `armor`.
pub fn replace_armored(file: &Path, name: &str, armor: &str) {
    let old = armored(file, name);
    let indent = |s: &str| s.lines().map(|l| format!("  {l}\n")).collect::<String>();
    let text = std::fs::read_to_string(file).unwrap();
    let new = text.replacen(&indent(&old), &indent(armor), 1);
    assert_ne!(text, new);
    std::fs::write(file, new).unwrap();
}
