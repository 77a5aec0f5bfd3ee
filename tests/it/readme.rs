//! The README against the behaviour: every command it shows runs as shown.
//!
//! Conventions for the README:
//! - Commands are the lines of fenced `sh` blocks, and of indented code blocks whose first
//!   line starts with `agentenv ` or `cargo `; every line of such a block must. An indented
//!   block that starts otherwise shows output, and is not run.
//! - An HTML comment before a block (blank lines between allowed) says how to treat it:
//!   - `<!-- readme-test: skip: WHY -->`: not run (the test suite itself);
//!   - `<!-- readme-test: synopsis -->`: forms with placeholders (`ENV`, `[--json]`,
//!     `update|remove`): each subcommand must exist and its `--help` must name every `--flag`
//!     shown; not run;
//!   - `<!-- readme-test: emulator -->`: run against a loopback Bitbucket, in a directory whose
//!     example specs point their provider at it (only their `api_url`/`git_url` added), with
//!     the token stored as the README says (`secret create --personal`).
//! - Every other block runs, in README order, line by line with `sh -c`, in a scratch git
//!   repository holding the README, `environments/`, `schema/` and `src/` (so
//!   `environments/local.yaml`'s `url: ..` is a repository), with `agentenv` on `PATH` being
//!   the binary under test (and `cargo run -q --` running it too), an empty HOME and no
//!   `AGENTENV_*` variables: nothing from the network, nothing from the developer's machine.
//!   Each line must exit 0.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bitbucket_emulator::{Config, Emulator, Pipeline, PipelineStep, PullRequest, Token};

use crate::support::git::{commit_all, git, upstream};
use crate::support::{BIN, Out, canary};

const TOKEN: &str = "ATATT-readme-canary-6c1d9e";
const DSN: &str = "https://dsn-canary-4f7a@sentry.example/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Skip,
    Synopsis,
    Emulator,
}

#[derive(Debug)]
struct Block {
    /// 1-based line of the block's first command in the README.
    line: usize,
    mode: Mode,
    commands: Vec<String>,
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The command blocks of a README, in order, with how to treat each.
fn blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut pending: Option<(Mode, usize)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.trim().strip_prefix("<!-- readme-test:") {
            let what = rest.trim_end_matches("-->").trim();
            let mode = match what.split(':').next().unwrap_or("").trim() {
                "skip" => Mode::Skip,
                "synopsis" => Mode::Synopsis,
                "emulator" => Mode::Emulator,
                other => panic!("README line {}: unknown readme-test mode `{other}`", i + 1),
            };
            pending = Some((mode, i + 1));
            i += 1;
            continue;
        }
        let (start, body, next) = if let Some(info) = line.strip_prefix("```") {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].starts_with("```"))
                .unwrap_or_else(|| panic!("README line {}: unclosed fence", i + 1));
            let body: Vec<String> = lines[i + 1..end].iter().map(|l| l.to_string()).collect();
            let body = if info.trim() == "sh" {
                body
            } else {
                Vec::new()
            };
            (i + 2, body, end + 1)
        } else if line.starts_with("    ") && (i == 0 || lines[i - 1].trim().is_empty()) {
            let mut end = i;
            while end < lines.len() && (lines[end].starts_with("    ") || lines[end].is_empty()) {
                end += 1;
            }
            let body: Vec<String> = lines[i..end]
                .iter()
                .map(|l| l.strip_prefix("    ").unwrap_or(l).to_string())
                .filter(|l| !l.trim().is_empty())
                .collect();
            let is_commands = body
                .first()
                .is_some_and(|l| l.starts_with("agentenv ") || l.starts_with("cargo "));
            (i + 1, if is_commands { body } else { Vec::new() }, end)
        } else {
            if let Some((_, at)) = pending.filter(|_| !line.trim().is_empty()) {
                panic!("README line {at}: a readme-test comment not followed by a command block");
            }
            i += 1;
            continue;
        };
        if body.is_empty() {
            if let Some((_, at)) = pending {
                panic!(
                    "README line {at}: a readme-test comment before a block that is not commands"
                );
            }
        } else {
            for (k, c) in body.iter().enumerate() {
                assert!(
                    c.starts_with("agentenv ") || c.starts_with("cargo "),
                    "README line {}: `{c}` in a command block is not a command (split output into its own block)",
                    start + k
                );
            }
            out.push(Block {
                line: start,
                mode: pending.map_or(Mode::Run, |(m, _)| m),
                commands: body,
            });
        }
        pending = None;
        i = next;
    }
    out
}

/// A directory with `agentenv` (the binary under test) and a `cargo` that runs it for
/// `cargo run -q -- ARGS` and refuses anything else, to put first on `PATH`.
fn shims(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("agentenv")).unwrap();
    let cargo = bin.join("cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\nif [ \"$1 $2 $3\" = \"run -q --\" ]; then shift 3; exec agentenv \"$@\"; fi\necho \"readme test: only 'cargo run -q --' is run, not: cargo $*\" >&2\nexit 99\n",
    )
    .unwrap();
    crate::support::secrets::set_mode(&cargo, 0o755);
    bin
}

/// Copy `rel` (a file or a directory tree) from the repository into `to`.
fn copy(rel: &str, to: &Path) {
    let from = repo_root().join(rel);
    let dest = to.join(rel);
    if from.is_dir() {
        std::fs::create_dir_all(&dest).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let name = e.unwrap().file_name();
            copy(&format!("{rel}/{}", name.to_string_lossy()), to);
        }
    } else {
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, &dest).unwrap();
    }
}

/// Where the commands run: a scratch repository, an empty HOME, the shims first on PATH.
struct Place {
    dir: PathBuf,
    home: PathBuf,
    path: String,
    vars: Vec<(String, String)>,
}

impl Place {
    fn command(&self, line: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(line)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    #[track_caller]
    fn run(&self, block: &Block, line: &str) -> Out {
        let out = Out::from(self.command(line).output().expect("sh runs"));
        assert_eq!(
            out.code,
            0,
            "README block at line {}: `{line}` exited {}:\n{}",
            block.line,
            out.code,
            out.all()
        );
        canary::assert_absent(&format!("`{line}`"), &out.all(), &[TOKEN, DSN]);
        out
    }
}

fn scratch(root: &Path, name: &str, bin: &Path) -> Place {
    let dir = root.join(name);
    let home = root.join(format!("{name}-home"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Place {
        dir,
        home,
        path,
        vars: Vec::new(),
    }
}

/// The offline place: this repository's README, example specs, schema and sources, committed.
fn offline(root: &Path, bin: &Path) -> Place {
    let place = scratch(root, "repo", bin);
    for rel in ["README.md", "environments", "schema", "src"] {
        copy(rel, &place.dir);
    }
    git(&place.dir, &["init", "-q"]);
    commit_all(&place.dir, "the repository, as far as the README needs it");
    place
}

/// The emulator place: the example specs pointing at `emu`, the token stored in the personal
/// file (`secret create --personal`, which makes the key), SENTRY_DSN in the environment.
fn emulated(root: &Path, bin: &Path, emu: &Emulator) -> Place {
    let mut place = scratch(root, "emulated", bin);
    copy("environments", &place.dir);
    let spec = place.dir.join("environments/payments-cloud.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let anchor = "    workspace: acme\n";
    assert!(
        text.contains(anchor),
        "payments-cloud.yaml changed: teach readme.rs where its provider is"
    );
    let text = text.replacen(
        anchor,
        &format!(
            "{anchor}    api_url: {}\n    git_url: {}\n",
            emu.cloud_api_url(),
            emu.git_url()
        ),
        1,
    );
    std::fs::write(&spec, text).unwrap();
    place.vars.push(("SENTRY_DSN".into(), DSN.into()));
    let mut create = place.command(
        "agentenv secret create environments/payments-cloud.yaml --personal BITBUCKET_API_TOKEN",
    );
    create
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = create.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(TOKEN.as_bytes())
        .unwrap();
    let out = Out::from(child.wait_with_output().unwrap());
    out.ok().hides(&[TOKEN]);
    place
}

/// A Bitbucket Cloud workspace `acme` with the two repositories of payments-cloud.yaml, a pull
/// request and a pipeline run #42 whose log has an error.
fn emulator(root: &Path) -> Emulator {
    let up = upstream(&root.join("upstream"));
    git(&up, &["branch", "release/1.0"]);
    let emu = Emulator::start(
        Config::default()
            .token(Token::cloud_api(
                "payments-bot@acme.example",
                "payments-bot",
                TOKEN,
                &[
                    "read:user:bitbucket",
                    "read:workspace:bitbucket",
                    "read:repository:bitbucket",
                    "read:pullrequest:bitbucket",
                    "read:pipeline:bitbucket",
                ],
            ))
            .cloud_repo("acme", "payments-api", &up)
            .cloud_repo("acme", "payments-ledger", &up),
    );
    emu.add_cloud_pull_request(
        "acme",
        "payments-api",
        PullRequest {
            id: 7,
            title: "Release 1.0".into(),
            source_branch: "release/1.0".into(),
            destination_branch: "main".into(),
            ..Default::default()
        },
    );
    emu.add_pipeline(
        "acme",
        "payments-api",
        Pipeline {
            build_number: 42,
            steps: vec![PipelineStep {
                log: Some(b"+ cargo test\nerror: 1 test failed\n".to_vec()),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    emu
}

/// The subcommand words of a synopsis line (`secret`, `update|remove`) and its `--flags`.
fn synopsis(line: &str) -> (Vec<String>, Vec<String>) {
    let line = line.split(" #").next().unwrap_or(line);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"agentenv"), "{line}");
    let path: Vec<String> = words[1..]
        .iter()
        .take_while(|w| {
            w.chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c == '|')
                && !w.starts_with('-')
        })
        .map(|w| w.to_string())
        .collect();
    let flags = words
        .iter()
        .map(|w| w.trim_matches(['[', ']']))
        .filter(|w| w.starts_with("--"))
        .flat_map(|w| w.split('|'))
        .map(|w| w.split('=').next().unwrap_or(w).to_string())
        .collect();
    (path, flags)
}

/// Every subcommand a synopsis line names exists, and its help names each flag shown.
#[track_caller]
fn check_synopsis(block: &Block, line: &str) {
    let (path, flags) = synopsis(line);
    assert!(
        !path.is_empty(),
        "README line {}: no subcommand in `{line}`",
        block.line
    );
    let mut forms: Vec<Vec<String>> = vec![Vec::new()];
    for word in &path {
        forms = forms
            .into_iter()
            .flat_map(|f| {
                word.split('|').map(move |alt| {
                    let mut f = f.clone();
                    f.push(alt.to_string());
                    f
                })
            })
            .collect();
    }
    for form in forms {
        let out = Out::from(
            Command::new(BIN)
                .args(&form)
                .arg("--help")
                .output()
                .unwrap(),
        );
        assert_eq!(
            out.code,
            0,
            "README line {}: `agentenv {}` is not a command:\n{}",
            block.line,
            form.join(" "),
            out.all()
        );
        for flag in &flags {
            assert!(
                out.stdout.contains(flag.as_str()),
                "README line {}: `agentenv {}` has no {flag}:\n{}",
                block.line,
                form.join(" "),
                out.stdout
            );
        }
    }
}

#[test]
fn every_command_the_readme_shows_runs_as_shown() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let blocks = blocks(&readme);
    let root = tempfile::tempdir().unwrap();
    let bin = shims(root.path());
    let offline = offline(root.path(), &bin);
    let emu = emulator(root.path());
    let emulated = emulated(root.path(), &bin, &emu);

    let first = blocks.first().expect("the README shows commands");
    assert!(
        first.mode == Mode::Run
            && first.commands[0].starts_with("cargo run -q -- provision environments/local.yaml"),
        "the README's first command provisions environments/local.yaml offline: {first:?}"
    );
    let mut ran: Vec<(&str, Out)> = Vec::new();
    for block in &blocks {
        for line in &block.commands {
            match block.mode {
                Mode::Skip => {}
                Mode::Synopsis => check_synopsis(block, line),
                Mode::Run => ran.push((line, offline.run(block, line))),
                Mode::Emulator => ran.push((line, emulated.run(block, line))),
            }
        }
    }
    assert!(ran.len() >= 8, "{} commands ran: {blocks:#?}", ran.len());
    let output = |prefix: &str| {
        ran.iter()
            .find(|(line, _)| line.starts_with(prefix))
            .map(|(_, out)| out.stdout.clone())
            .unwrap_or_else(|| panic!("the README no longer runs `{prefix}…`"))
    };

    // What the commands answered is what the README says they do.
    assert!(
        output("cargo run -q -- provision").contains("\"content\": \"1\\t# agentenv\\n"),
        "the first command reads the README's first lines, numbered"
    );
    let check = output("agentenv check environments/payments-cloud.yaml");
    assert_eq!(
        check.lines().filter(|l| l.starts_with("OK ")).count(),
        6,
        "auth, workspace, and git and api for both repositories:\n{check}"
    );
    assert!(output("agentenv branches").contains("main"));
    assert!(
        output("agentenv tool environments/payments-cloud.yaml list_pull_requests")
            .contains("Release 1.0")
    );
    assert!(
        output("agentenv tool environments/payments-cloud.yaml get_pipeline_log")
            .contains("error: 1 test failed")
    );
    // The network ones reached the emulator with the stored token.
    assert!(emu.count_token("cloud-api:payments-bot") > 0);
}

#[test]
fn the_conventions_are_read_as_documented() {
    let text = "intro\n\n```sh\ncargo run -q -- x\n```\n\n<!-- readme-test: skip: why -->\n\n    cargo test\n\noutput:\n\n    spec.yaml:1:1: x\n      hint: y\n\n```yaml\nagentenv: no\n```\n\n<!-- readme-test: synopsis -->\n\n    agentenv secret update|remove ENV --personal NAME   # comment\n";
    let b = blocks(text);
    assert_eq!(b.len(), 3, "{b:#?}");
    assert_eq!((b[0].mode, b[0].line), (Mode::Run, 4));
    assert_eq!(
        (b[1].mode, b[1].commands[0].as_str()),
        (Mode::Skip, "cargo test")
    );
    assert_eq!(b[2].mode, Mode::Synopsis);
    let (path, flags) = synopsis(&b[2].commands[0]);
    assert_eq!(path, ["secret", "update|remove"]);
    assert_eq!(flags, ["--personal"]);
    let (path, flags) =
        synopsis("agentenv provision environments/local.yaml [--workdir DIR] [--json]");
    assert_eq!(path, ["provision"]);
    assert_eq!(flags, ["--workdir", "--json"]);
}

#[test]
#[should_panic(expected = "not followed by a command block")]
fn a_dangling_readme_test_comment_is_an_error() {
    blocks("<!-- readme-test: skip: x -->\n\nprose\n");
}
