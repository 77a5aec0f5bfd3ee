//! A loopback Bitbucket (the emulator) serving one real git repository, made with the git CLI,
//! as several Cloud and Data Center repositories; a spec naming two of them; a Context on it.
//! Branches: `main`, `feature` (in scope), `secret` (out of scope, holds a canary).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentenv::secrets::ResolvedSecrets;
use agentenv::spec::LoadedEnv;
use agentenv::tools::{Context, Error, Kind};
use bitbucket_emulator::{Config, Emulator, Token};
use serde_json::Value;

use super::git::{commit_all, git, write};
use super::{assert_fits_output_schema, assert_text_holds_json, canary};

pub const CLOUD_TOKEN: &str = "ATATT-CANARY-cloud-api-token-5c1e";
pub const DC_TOKEN: &str = "BBDC-CANARY-dc-http-token-8d2f";
pub const WRONG_TOKEN: &str = "ATATT-CANARY-wrong-token-0b7a";
pub const CANARY_CONTENT: &str = "CANARY-out-of-scope-branch-content-3e9d";
pub const EMAIL: &str = "bot@example.com";

pub const CLOUD_SCOPES: &[&str] = &[
    "read:repository:bitbucket",
    "read:pullrequest:bitbucket",
    "read:pipeline:bitbucket",
];

/// In-scope repositories served on each side (besides an out-of-scope one).
pub const IN_SCOPE: &[&str] = &[
    "payments-api",
    "payments-core",
    "payments-ledger",
    "payments-web",
    "payments-worker",
    "payments-x",
];

pub struct Fixture {
    /// Holds the repository, the workdir and the spec until the fixture is dropped.
    _tmp: tempfile::TempDir,
    pub emu: Emulator,
    pub repo: PathBuf,
    pub workdir: PathBuf,
    pub spec_path: PathBuf,
    pub spec_text: String,
    pub main_head: String,
}

fn commit(dir: &Path, file: &str, content: &str, msg: &str) {
    write(&dir.join(file), content);
    commit_all(dir, msg);
}

fn make_repo(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    commit(dir, "README.md", "# payments\n", "Initial commit");
    commit(dir, "src.txt", "one\ntwo\n", "Add src");
    commit(dir, "src.txt", "one\ntwo\nthree\n", "Grow src");
    git(dir, &["checkout", "-q", "-b", "feature"]);
    commit(
        dir,
        "feature.txt",
        "new feature\nline 2\n",
        "Add the feature",
    );
    git(dir, &["checkout", "-q", "-b", "secret", "main"]);
    commit(dir, "secret.txt", CANARY_CONTENT, "Secret work");
    git(dir, &["checkout", "-q", "main"]);
    git(dir, &["rev-parse", "HEAD"])
}

pub fn cloud_tokens() -> Vec<Token> {
    vec![Token::cloud_api(EMAIL, "bot", CLOUD_TOKEN, CLOUD_SCOPES)]
}

impl Fixture {
    /// The emulator with every token in `tokens`, the spec's Cloud provider using `CLOUD_TOKEN`
    /// and its Data Center provider `DC_TOKEN`.
    pub fn start(tokens: Vec<Token>) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("origin");
        let main_head = make_repo(&repo);
        let mut config = Config::default();
        for t in tokens {
            config = config.token(t);
        }
        for name in IN_SCOPE.iter().chain(["secret-repo"].iter()) {
            config = config
                .cloud_repo("acme", name, &repo)
                .dc_repo("PAY", name, &repo);
        }
        let emu = Emulator::start(config);
        let workdir = tmp.path().join("work");
        std::fs::create_dir_all(&workdir).unwrap();
        // One repository is cloned, so that `cloned` has both answers.
        git(
            tmp.path(),
            &[
                "clone",
                "-q",
                repo.to_str().unwrap(),
                workdir.join("payments-api").to_str().unwrap(),
            ],
        );
        let spec_text = format!(
            r#"version: 1
name: api-test
providers:
  cloud:
    kind: cloud
    workspace: acme
    api_url: {cloud}
    git_url: {git}
    auth: {{ type: api-token, email: {EMAIL}, token: CLOUD_TOKEN }}
  dc:
    kind: datacenter
    base_url: {dc}
    project: PAY
    auth: {{ type: http-access-token, token: DC_TOKEN }}
repos:
  - provider: cloud
    slug: payments-api
  - provider: cloud
    slug: secret-repo
  - provider: dc
    slug: payments-core
    path: core
  - provider: cloud
    slug: payments-ledger
"#,
            cloud = emu.cloud_api_url(),
            git = emu.git_url(),
            dc = emu.dc_base_url(),
        );
        let spec_path = tmp.path().join("env.yaml");
        std::fs::write(&spec_path, &spec_text).unwrap();
        Fixture {
            _tmp: tmp,
            emu,
            repo,
            workdir,
            spec_path,
            spec_text,
            main_head,
        }
    }

    /// The spec, with the scope narrowed after loading (validation refuses a spec that
    /// names an out-of-scope repository; the tools must refuse `secret-repo` all the same).
    pub fn env(&self) -> LoadedEnv {
        LoadedEnv::from_str(&self.spec_path, &self.spec_text)
            .expect("spec loads")
            .with_scope(Some("^payments-.*"), Some("^(main|feature|release/.*)$"))
            .unwrap()
    }

    pub fn standard() -> Fixture {
        let mut tokens = cloud_tokens();
        tokens.push(Token::dc_personal("bot", DC_TOKEN, &["REPO_READ"]));
        Fixture::start(tokens)
    }

    /// A Context with fast retries and the given cache TTL; `secrets` overrides the token values.
    pub fn context_with(&self, ttl: Duration, secrets: &[(&str, &str)]) -> Context {
        let env = self.env();
        let mut values = BTreeMap::new();
        values.insert("CLOUD_TOKEN".to_string(), CLOUD_TOKEN.to_string());
        values.insert("DC_TOKEN".to_string(), DC_TOKEN.to_string());
        for (k, v) in secrets {
            values.insert(k.to_string(), v.to_string());
        }
        let mut ctx = Context::open(env, &self.workdir, ResolvedSecrets::from_values(values))
            .expect("context opens");
        ctx.api.options.cache_ttl = ttl;
        ctx.api.options.backoff = Duration::from_millis(10);
        ctx.api.options.max_wait = Duration::from_secs(2);
        ctx
    }

    /// The usual context: no caching, so every call is visible in the emulator's counters.
    pub fn ctx(&self) -> Arc<Context> {
        Arc::new(self.context_with(Duration::ZERO, &[]))
    }
}

/// Every text an agent could see, collected to scan for canaries.
#[derive(Default)]
pub struct Seen(pub String);

impl Seen {
    pub async fn call(
        &mut self,
        ctx: &Arc<Context>,
        tool: &str,
        args: Value,
    ) -> Result<Value, Error> {
        let r = ctx.call(tool, args).await;
        match &r {
            Ok(v) => self.0.push_str(&v.to_string()),
            Err(e) => self.0.push_str(&format!("{e} {e:?}")),
        }
        r
    }

    /// A successful call, whose output also matches the tool's published output schema and
    /// whose text rendering holds every fact of its JSON.
    pub async fn ok(&mut self, ctx: &Arc<Context>, tool: &str, args: Value) -> Value {
        let answer = match ctx.answer(tool, args.clone()).await {
            Ok(a) => a,
            Err(e) => {
                self.0.push_str(&format!("{e} {e:?}"));
                panic!("{tool} {args} failed: {e}")
            }
        };
        self.0.push_str(&answer.json.to_string());
        self.0.push_str(&answer.text);
        assert_fits_output_schema(tool, &answer.json);
        assert_text_holds_json(tool, &answer.json, &answer.text);
        answer.json
    }

    pub async fn err(&mut self, ctx: &Arc<Context>, tool: &str, args: Value, kind: Kind) -> Error {
        match self.call(ctx, tool, args.clone()).await {
            Ok(v) => panic!("{tool} {args} should fail with {kind:?}, got {v}"),
            Err(e) => {
                assert_eq!(e.kind, kind, "{tool} {args}: {e}");
                e
            }
        }
    }

    /// No token value and no out-of-scope content in anything seen.
    #[track_caller]
    pub fn assert_clean(&self) {
        let canaries = [CLOUD_TOKEN, DC_TOKEN, WRONG_TOKEN, CANARY_CONTENT];
        canary::assert_absent("tool output", &self.0, &canaries);
    }
}
