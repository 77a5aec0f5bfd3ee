//! A Bitbucket for the command line, shared by the clone, check and branches tests: an
//! emulator serving one upstream repository as Cloud `acme/payments-api` and Data Center
//! `PAY/payments-api`, tokens of every kind with canary values, specs whose secrets come from
//! the environment (`secrets.from_env`), and `agentenv` run with one of those tokens.

use std::path::{Path, PathBuf};
use std::process::Output;

use bitbucket_emulator::{Config, Emulator, Token};

use super::git::upstream;
use super::provision::spec;
use super::{agentenv_cmd, canary, stderr, stdout};

pub const EMAIL: &str = "bot@acme.example";
pub const USERNAME: &str = "acme-bot";
pub const API_TOKEN: &str = "CANARY-api-7f3a9c2e1b";
pub const ACCESS_TOKEN: &str = "CANARY-access-4d8e2f6a0c";
pub const DC_TOKEN: &str = "CANARY-dc-9b1c5e7d3f";
pub const EXPIRED: &str = "CANARY-expired-1a2b3c4d";
pub const NO_SCOPE: &str = "CANARY-noscope-5e6f7a8b";
pub const DC_NO_PERM: &str = "CANARY-dcnoperm-2c3d4e5f";
pub const CANARIES: &[&str] = &[
    API_TOKEN,
    ACCESS_TOKEN,
    DC_TOKEN,
    EXPIRED,
    NO_SCOPE,
    DC_NO_PERM,
];

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub emu: Emulator,
    pub upstream: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let upstream = upstream(&dir.path().join("upstream"));
        let config = Config::default()
            .token(Token::cloud_api(
                EMAIL,
                USERNAME,
                API_TOKEN,
                &[
                    "read:repository:bitbucket",
                    "read:user:bitbucket",
                    "read:workspace:bitbucket",
                ],
            ))
            .token(Token::cloud_access(ACCESS_TOKEN, &["repository"]))
            .token(
                Token::cloud_api(EMAIL, USERNAME, EXPIRED, &["read:repository:bitbucket"])
                    .with_id("expired")
                    .expired(),
            )
            .token(
                Token::cloud_api(EMAIL, USERNAME, NO_SCOPE, &["read:user:bitbucket"])
                    .with_id("noscope"),
            )
            .token(Token::dc_project("PAY", DC_TOKEN, &["REPO_READ"]))
            .token(Token::dc_project("PAY", DC_NO_PERM, &[]).with_id("dc-noperm"))
            .cloud_repo("acme", "payments-api", &upstream)
            .dc_repo("PAY", "payments-api", &upstream);
        let emu = Emulator::start(config);
        Fixture { dir, emu, upstream }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn workdir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A Cloud provider `bb` with `auth` (YAML lines under `auth:`), one repo, `extra` appended.
    pub fn cloud_spec(&self, auth: &str, repos: &str, extra: &str) -> PathBuf {
        let auth = indent(auth, 6);
        spec(
            self.path(),
            &format!(
                "providers:\n  bb:\n    kind: cloud\n    workspace: acme\n    api_url: {}\n    git_url: {}\n    auth:\n{auth}\nsecrets:\n  from_env: [BB_TOKEN]\nrepos:\n{repos}\n{extra}",
                self.emu.cloud_api_url(),
                self.emu.git_url()
            ),
        )
    }

    /// A Data Center provider `dc` (project PAY) with an http-access-token.
    pub fn dc_spec(&self, repos: &str, extra: &str) -> PathBuf {
        spec(
            self.path(),
            &format!(
                "providers:\n  dc:\n    kind: datacenter\n    base_url: {}\n    project: PAY\n    auth:\n      type: http-access-token\n      token: BB_TOKEN\nsecrets:\n  from_env: [BB_TOKEN]\nrepos:\n{repos}\n{extra}",
                self.emu.dc_base_url()
            ),
        )
    }

    /// Run agentenv with `BB_TOKEN=token` in its environment.
    pub fn run(&self, token: &str, args: &[&str]) -> Output {
        agentenv_cmd(args)
            .env("BB_TOKEN", token)
            .env(
                "AGENTENV_PERSONAL_FILE",
                self.path().join("no-personal.yaml"),
            )
            .output()
            .expect("agentenv runs")
    }

    pub fn provision(&self, spec: &Path, token: &str) -> Output {
        let work = self.workdir();
        self.run(
            token,
            &[
                "provision",
                spec.to_str().unwrap(),
                "--workdir",
                work.to_str().unwrap(),
            ],
        )
    }
}

pub const API_AUTH: &str = "type: api-token\nemail: bot@acme.example\ntoken: BB_TOKEN";
pub const ACCESS_AUTH: &str = "type: access-token\ntoken: BB_TOKEN";
pub const ONE_REPO: &str = "  - provider: bb\n    slug: payments-api";
pub const ONE_DC_REPO: &str = "  - provider: dc\n    slug: payments-api";

pub fn indent(text: &str, n: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}", " ".repeat(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every file under `dir` (recursively) that holds any canary, with the canary found.
pub fn files_with_canary(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    canary::files_holding(dir, CANARIES)
}

/// Assert no canary appears in a process's output.
#[track_caller]
pub fn assert_no_canary(out: &Output) {
    let all = format!("{}{}", stdout(out), stderr(out));
    canary::assert_absent("the output", &all, CANARIES);
}
