//! Provision: plan → repositories (git2 clone/update) → setup steps → state, under a workdir lock.
//!
//! CONTRACT used by main.rs: `ProvisionArgs` + `run`, `StatusArgs` + `status`.
//! CONTRACT used by serve/tools: the workdir layout —
//!   `WORKDIR/<repo.checkout_path()>`  the checkouts
//!   `WORKDIR/.agentenv/state.json`    state (see `state.rs`)
//!   `WORKDIR/.agentenv/logs/<step>.log`, `WORKDIR/.agentenv/lock`

pub mod auth;
pub mod credential_helper;
pub mod git;
pub mod lock;
pub mod output;
pub mod plan;
pub mod state;
pub mod steps;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Kind, Result};
use crate::secrets::ResolvedSecrets;
use crate::spec::LoadedEnv;
use git::{GitAuth, RepoAction, Synced};
use output::Output;
use plan::{RepoPlan, StepDecision};
use state::{RepoState, State, StepState};

#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// The environment spec (YAML).
    pub env: PathBuf,
    /// Where checkouts, logs and state go [default: $AGENTENV_WORKDIR or ./agentenv-work/NAME].
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Print the plan (what would be cloned, updated, run or skipped, and why); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Machine-readable events and summary on stdout, one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Update checkouts even when their working tree has local changes (they are discarded).
    #[arg(long)]
    pub force: bool,
    /// Wait for another provision of the same workdir to finish instead of failing.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The environment spec (YAML).
    pub env: PathBuf,
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// How many repositories are cloned or fetched at once: enough to overlap network waits,
/// few enough not to starve a small CI machine.
const PARALLEL_REPOS: usize = 4;

/// One repository in a report: what provision did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize)]
struct RepoReport {
    event: &'static str,
    name: String,
    path: String,
    url: String,
    /// cloned | updated | up-to-date | failed; with --dry-run: clone | update | up-to-date | failed
    action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One step in a report.
#[derive(Debug, Clone, Serialize)]
struct StepReport {
    event: &'static str,
    name: String,
    /// ran | skipped | failed | not-run; with --dry-run: run | skip
    action: String,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    event: &'static str,
    ok: bool,
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    workdir: Option<String>,
    repos: &'a [RepoReport],
    steps: &'a [StepReport],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorReport>,
}

#[derive(Debug, Serialize)]
struct ErrorReport {
    kind: Kind,
    exit_code: i32,
    message: String,
}

/// `agentenv provision ENV`: make the workdir match the spec, idempotently.
pub fn run(args: ProvisionArgs) -> Result<()> {
    let out = Output::new(args.json);
    let mut job = Job {
        env: None,
        workdir: None,
        out: &out,
        repo_reports: Vec::new(),
        step_reports: Vec::new(),
    };
    let result = job.run(&args);
    let summary = Summary {
        event: "summary",
        ok: result.is_ok(),
        dry_run: args.dry_run,
        workdir: job.workdir.as_ref().map(|w| w.display().to_string()),
        repos: &job.repo_reports,
        steps: &job.step_reports,
        error: result.as_ref().err().map(|e| ErrorReport {
            kind: e.kind,
            exit_code: e.exit_code(),
            message: e.to_string(),
        }),
    };
    if out.is_json() {
        // Also when the spec itself is wrong: a --json reader always gets its summary.
        out.event(&summary);
    } else if job.env.is_some() {
        print_summary(&summary);
    }
    result
}

fn workdir_of(env: &LoadedEnv, given: Option<&Path>) -> Result<PathBuf> {
    let dir = given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| env.default_workdir());
    std::path::absolute(&dir).map_err(|e| Error::input(format!("workdir {}: {e}", dir.display())))
}

/// One provision (or dry run): what it has learnt so far and the reports it fills in.
struct Job<'a> {
    env: Option<LoadedEnv>,
    workdir: Option<PathBuf>,
    out: &'a Output,
    repo_reports: Vec<RepoReport>,
    step_reports: Vec<StepReport>,
}

/// The inputs of a provision once the spec is loaded and resolved.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    env: &'a LoadedEnv,
    secrets: &'a ResolvedSecrets,
    workdir: &'a Path,
    repos: &'a [RepoPlan],
}

impl Job<'_> {
    fn run(&mut self, args: &ProvisionArgs) -> Result<()> {
        let env = LoadedEnv::load(&args.env)?;
        // Every secret resolves before anything is cloned or run, so a missing one changes nothing.
        let secrets = crate::secrets::resolve(&env)?;
        let workdir = workdir_of(&env, args.workdir.as_deref())?;
        self.workdir = Some(workdir.clone());
        // Secret digests in step fingerprints are keyed per workdir: with a fixed key, anyone
        // who can read state.json could test guesses of a weak secret offline. A dry run
        // creates nothing, so without a key yet it uses none (and plans every step to run).
        let key_path = state::agentenv_dir(&workdir).join("fingerprint.key");
        let secrets = if args.dry_run {
            match std::fs::read(&key_path) {
                Ok(key) if key.len() >= 16 => secrets.with_digest_key(&key),
                _ => secrets,
            }
        } else if secrets.is_empty() {
            secrets
        } else {
            let key = crate::secrets::load_or_create_digest_key(&key_path)?;
            secrets.with_digest_key(&key)
        };
        let repos = plan::repos(&env, &workdir)?;
        let inputs = Inputs {
            env: &env,
            secrets: &secrets,
            workdir: &workdir,
            repos: &repos,
        };
        let result = if args.dry_run {
            self.dry_run(&inputs)
        } else {
            self.provision(args, &inputs)
        };
        self.env = Some(env);
        result
    }

    fn repo_done(&mut self, report: RepoReport) {
        self.out.event(&report);
        self.repo_reports.push(report);
    }

    fn step_done(&mut self, report: StepReport) {
        self.out.event(&report);
        self.step_reports.push(report);
    }

    fn provision(&mut self, args: &ProvisionArgs, inputs: &Inputs<'_>) -> Result<()> {
        let Inputs {
            env,
            secrets,
            workdir,
            repos,
        } = *inputs;
        let out = self.out;
        let logs = state::agentenv_dir(workdir).join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| Error::failure(format!("cannot create {}: {e}", logs.display())))?;
        let _lock = lock::acquire(workdir, args.wait, |msg| {
            out.info(&format!("{msg}; waiting for it (--wait)"))
        })?;
        let mut state = State::load(workdir)?;
        let loaded = state.clone();
        for r in repos {
            git::clean_leftovers(&r.target)?;
        }

        let auths = repo_auths(env, secrets, repos)?;
        let results = parallel(&auths, |(r, auth)| {
            let bar = out.transfer_bar(&r.name);
            let report = |t: git::Transfer| {
                // libgit2 reports every object: redraw for a fraction of them only.
                let worth_drawing = t.received.is_multiple_of(256) || t.received == t.total;
                if let Some(bar) = bar.as_ref().filter(|_| worth_drawing) {
                    bar.set_length(t.total as u64);
                    bar.set_position(t.received as u64);
                    bar.set_message(format!("{:.1} MiB", t.bytes as f64 / 1048576.0));
                }
            };
            let res = sync_with_retries(r, auth, args.force, bar.as_ref().map(|_| &report as _));
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            res
        });
        let mut errors = Vec::new();
        let mut heads = BTreeMap::new();
        for (r, res) in repos.iter().zip(results) {
            let report = match res {
                Ok(Synced {
                    action,
                    branch,
                    head,
                }) => {
                    let word = match action {
                        RepoAction::Cloned => "cloned",
                        RepoAction::Updated => "updated",
                        RepoAction::UpToDate => "up-to-date",
                    };
                    out.info(&format!(
                        "{}: {word} ({branch} at {})",
                        r.name,
                        short(&head)
                    ));
                    let now = RepoState {
                        path: r.rel_path.clone(),
                        url: r.url.clone(),
                        branch: branch.clone(),
                        head: head.clone(),
                        time: state::now(),
                    };
                    // `time` says when the checkout last changed, so an unchanged one keeps it.
                    if !state
                        .repos
                        .get(&r.name)
                        .is_some_and(|was| was.same_checkout(&now))
                    {
                        state.repos.insert(r.name.clone(), now);
                    }
                    heads.insert(r.name.clone(), head.clone());
                    repo_report(r, word, Some(branch), Some(head), None)
                }
                Err(e) => {
                    let e = redact_error(e, secrets);
                    out.info(&format!("{}: failed: {e}", r.name));
                    let report = repo_report(r, "failed", None, None, Some(e.to_string()));
                    errors.push(e);
                    report
                }
            };
            self.repo_done(report);
        }
        state
            .repos
            .retain(|name, _| repos.iter().any(|r| &r.name == name));
        state
            .steps
            .retain(|name, _| env.spec.setup.iter().any(|s| &s.name == name));
        // A warm run with nothing changed writes nothing (no fsync on the hot path).
        if state != loaded || !state::exists(workdir) {
            state.save(workdir)?;
        }
        if !errors.is_empty() {
            for step in &env.spec.setup {
                let report = step_report(step, "not-run", "a repository failed", None, None);
                self.step_done(report);
            }
            return Err(combine(errors, "repositories"));
        }

        let mut failed: Option<Error> = None;
        for step in &env.spec.setup {
            if failed.is_some() {
                let report = step_report(step, "not-run", "an earlier step failed", None, None);
                self.step_done(report);
                continue;
            }
            let fp = steps::fingerprint(step, secrets, &step_heads(step, repos, &heads));
            let report = match plan::decide_step(step, &fp, &state, workdir) {
                StepDecision::Skip(reason) => {
                    out.info(&format!("{}: skipped ({reason})", step.name));
                    step_report(step, "skipped", &reason, None, None)
                }
                StepDecision::Run(reason) => {
                    out.info(&format!("{}: running ({reason})", step.name));
                    let step_run = credential_helper::with_git_env(step, env);
                    match steps::run(&step_run, workdir, secrets, out) {
                        Ok(took) => {
                            let ms = took.as_millis() as u64;
                            state.steps.insert(
                                step.name.clone(),
                                StepState {
                                    fingerprint: fp,
                                    result: "ok".into(),
                                    time: state::now(),
                                    duration_ms: ms,
                                },
                            );
                            state.save(workdir)?;
                            out.info(&format!("{}: ok in {:.1}s", step.name, took.as_secs_f64()));
                            step_report(step, "ran", &reason, Some(ms), None)
                        }
                        Err(e) => {
                            // Nothing recorded: the next provision runs it again.
                            if state.steps.remove(&step.name).is_some() {
                                state.save(workdir)?;
                            }
                            let e = redact_error(e, secrets);
                            out.info(&format!("{}: failed: {e}", step.name));
                            let report =
                                step_report(step, "failed", &reason, None, Some(e.to_string()));
                            if !step.continue_on_error {
                                failed = Some(e);
                            }
                            report
                        }
                    }
                }
            };
            self.step_done(report);
        }
        failed.map_or(Ok(()), Err)
    }

    /// `--dry-run`: ask the remotes, read the state, and report; create and change nothing.
    fn dry_run(&mut self, inputs: &Inputs<'_>) -> Result<()> {
        let Inputs {
            env,
            secrets,
            workdir,
            repos,
        } = *inputs;
        let state = if workdir.exists() {
            State::load(workdir)?
        } else {
            State::default()
        };
        let auths = repo_auths(env, secrets, repos)?;
        let results = parallel(
            &auths,
            |(r, auth)| -> Result<(String, git::RemoteTip, Option<String>)> {
                let tip = auth::with_retries(|| git::probe(r, auth))
                    .map_err(|e| auth::explain(auth.credential(), e))?;
                let occupied = r.target.exists()
                    && std::fs::read_dir(&r.target).is_ok_and(|mut d| d.next().is_some());
                if !occupied {
                    return Ok(("clone".into(), tip, None));
                }
                if !git::is_checkout(&r.target) {
                    return Err(Error::input(format!(
                        "repository {}: {} exists and is not a git checkout",
                        r.name,
                        r.target.display()
                    )));
                }
                if git::local_head(&r.target) == Some(tip.oid) {
                    return Ok(("up-to-date".into(), tip, None));
                }
                let changed = git2::Repository::open(&r.target)
                    .and_then(|repo| git::changed_files(&repo))
                    .unwrap_or_default();
                let note = (!changed.is_empty()).then(|| {
                    format!(
                        "has local changes ({}); provision would stop unless --force",
                        changed.join(", ")
                    )
                });
                let action = "update";
                Ok((action.into(), tip, note))
            },
        );
        let mut errors = Vec::new();
        let mut heads = BTreeMap::new();
        for (r, res) in repos.iter().zip(results) {
            let report = match res {
                Ok((action, tip, note)) => {
                    heads.insert(r.name.clone(), tip.oid.to_string());
                    repo_report(
                        r,
                        &action,
                        Some(tip.branch),
                        Some(tip.oid.to_string()),
                        note,
                    )
                }
                Err(e) => {
                    let e = redact_error(e, secrets);
                    let report = repo_report(r, "failed", None, None, Some(e.to_string()));
                    errors.push(e);
                    report
                }
            };
            self.repo_done(report);
        }
        for step in &env.spec.setup {
            let fp = steps::fingerprint(step, secrets, &step_heads(step, repos, &heads));
            let report = match plan::decide_step(step, &fp, &state, workdir) {
                StepDecision::Run(reason) => step_report(step, "run", &reason, None, None),
                StepDecision::Skip(reason) => step_report(step, "skip", &reason, None, None),
            };
            self.step_done(report);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(combine(errors, "repositories"))
        }
    }
}

/// Each repository with the git credential of its provider (anonymous without one).
fn repo_auths<'a>(
    env: &LoadedEnv,
    secrets: &ResolvedSecrets,
    repos: &'a [RepoPlan],
) -> Result<Vec<(&'a RepoPlan, GitAuth)>> {
    // `plan::repos` keeps the spec's order, one plan per repository.
    repos
        .iter()
        .zip(&env.spec.repos)
        .map(|(r, repo)| {
            Ok((
                r,
                GitAuth::with(auth::for_repo(env, repo, &r.fetch_url, secrets)?),
            ))
        })
        .collect()
}

/// Clone or update, retrying transient failures (a failed clone leaves nothing behind, so
/// trying again starts clean), with the credential's fix on failure.
fn sync_with_retries(
    r: &RepoPlan,
    auth: &GitAuth,
    force: bool,
    progress: Option<&(dyn Fn(git::Transfer) + Sync)>,
) -> Result<Synced> {
    auth::with_retries(|| git::sync(r, auth, force, progress))
        .map_err(|e| auth::explain(auth.credential(), e))
}

/// Run `f` on every item with a bounded number of threads; results come back in order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_REPOS.min(items.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *slots[i].lock().expect("not poisoned") = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("not poisoned")
                .expect("every slot filled")
        })
        .collect()
}

/// The HEADs a step's fingerprint covers, by repository name.
fn step_heads(
    step: &crate::spec::Step,
    repos: &[RepoPlan],
    heads: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    plan::step_repos(step, repos)
        .into_iter()
        .filter_map(|r| heads.get(&r.name).map(|h| (r.name.clone(), h.clone())))
        .collect()
}

/// One error for several failures; its kind is theirs when they agree.
fn combine(mut errors: Vec<Error>, what: &str) -> Error {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    let kind = if errors
        .iter()
        .all(|e| e.exit_code() == errors[0].exit_code())
    {
        errors[0].kind
    } else {
        Kind::Failure
    };
    let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
    Error::new(
        kind,
        format!("{} {what} failed:\n{}", errors.len(), lines.join("\n")),
    )
}

fn redact_error(mut e: Error, secrets: &ResolvedSecrets) -> Error {
    e.message = secrets.redactor().redact(&e.message);
    e.hint = e.hint.map(|h| secrets.redactor().redact(&h));
    e
}

fn repo_report(
    r: &RepoPlan,
    action: &str,
    branch: Option<String>,
    head: Option<String>,
    error: Option<String>,
) -> RepoReport {
    RepoReport {
        event: "repo",
        name: r.name.clone(),
        path: r.rel_path.clone(),
        url: r.url.clone(),
        action: action.into(),
        branch,
        head,
        error,
    }
}

fn step_report(
    step: &crate::spec::Step,
    action: &str,
    reason: &str,
    duration_ms: Option<u64>,
    error: Option<String>,
) -> StepReport {
    StepReport {
        event: "step",
        name: step.name.clone(),
        action: action.into(),
        reason: reason.into(),
        duration_ms,
        error,
    }
}

fn short(oid: &str) -> &str {
    oid.get(..10).unwrap_or(oid)
}

fn print_summary(s: &Summary<'_>) {
    let mut text = String::new();
    let title = if s.dry_run { "plan for" } else { "workdir" };
    let _ = writeln!(text, "{title} {}", s.workdir.as_deref().unwrap_or("-"));
    if !s.repos.is_empty() {
        let _ = writeln!(text, "repositories:");
    }
    for r in s.repos {
        let at = match (&r.branch, &r.head) {
            (Some(b), Some(h)) => format!("  {b} @ {}", short(h)),
            _ => String::new(),
        };
        let _ = writeln!(text, "  {:<24} {:<11}{at}", r.name, r.action);
        if let Some(e) = &r.error {
            let _ = writeln!(text, "    {}", e.replace('\n', "\n    "));
        }
    }
    if !s.steps.is_empty() {
        let _ = writeln!(text, "steps:");
    }
    for st in s.steps {
        let took = st
            .duration_ms
            .map(|ms| format!(" in {:.1}s", ms as f64 / 1000.0))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "  {:<24} {:<8}{took}  ({})",
            st.name, st.action, st.reason
        );
        if let Some(e) = &st.error {
            let _ = writeln!(text, "    {}", e.replace('\n', "\n    "));
        }
    }
    print_stdout(&text);
}

/// What `status` shows of one repository.
#[derive(Debug, Serialize)]
struct RepoStatus {
    name: String,
    path: String,
    present: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<String>,
    dirty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    provisioned_at: Option<String>,
}

/// What `status` shows of one step.
#[derive(Debug, Serialize)]
struct StepStatus {
    name: String,
    /// ok, or `never` when no successful run is recorded.
    last_result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
}

/// `agentenv status ENV`: what is provisioned in the workdir.
pub fn status(args: StatusArgs) -> Result<()> {
    let env = LoadedEnv::load(&args.env)?;
    let workdir = workdir_of(&env, args.workdir.as_deref())?;
    let repos = plan::repos(&env, &workdir)?;
    let state = if workdir.exists() {
        State::load(&workdir)?
    } else {
        State::default()
    };
    let repo_status: Vec<RepoStatus> = repos
        .iter()
        .map(|r| {
            let repo = git2::Repository::open(&r.target).ok();
            let head = repo.as_ref().and_then(|g| g.head().ok());
            RepoStatus {
                name: r.name.clone(),
                path: r.rel_path.clone(),
                present: repo.is_some(),
                branch: head
                    .as_ref()
                    .and_then(|h| h.shorthand().ok().map(str::to_string)),
                head: head
                    .as_ref()
                    .and_then(|h| h.target())
                    .map(|o| o.to_string()),
                dirty: repo
                    .as_ref()
                    .and_then(|g| git::changed_files(g).ok())
                    .is_some_and(|c| !c.is_empty()),
                provisioned_at: state.repos.get(&r.name).map(|s| s.time.clone()),
            }
        })
        .collect();
    let step_status: Vec<StepStatus> = env
        .spec
        .setup
        .iter()
        .map(|s| match state.steps.get(&s.name) {
            Some(st) => StepStatus {
                name: s.name.clone(),
                last_result: st.result.clone(),
                time: Some(st.time.clone()),
                duration_ms: Some(st.duration_ms),
            },
            None => StepStatus {
                name: s.name.clone(),
                last_result: "never".into(),
                time: None,
                duration_ms: None,
            },
        })
        .collect();
    if args.json {
        let v = serde_json::json!({
            "workdir": workdir.display().to_string(),
            "repos": repo_status,
            "steps": step_status,
        });
        print_stdout(&format!("{v}\n"));
        return Ok(());
    }
    let mut text = String::new();
    let _ = writeln!(text, "workdir {}", workdir.display());
    if !repo_status.is_empty() {
        let _ = writeln!(text, "repositories:");
    }
    for r in &repo_status {
        if !r.present {
            let _ = writeln!(text, "  {:<24} not cloned", r.name);
            continue;
        }
        let _ = writeln!(
            text,
            "  {:<24} {} @ {}{}",
            r.name,
            r.branch.as_deref().unwrap_or("(detached)"),
            r.head.as_deref().map(short).unwrap_or("-"),
            if r.dirty { "  (local changes)" } else { "" }
        );
    }
    if !step_status.is_empty() {
        let _ = writeln!(text, "steps:");
    }
    for s in &step_status {
        let _ = match &s.time {
            Some(t) => writeln!(text, "  {:<24} {} at {t}", s.name, s.last_result),
            None => writeln!(text, "  {:<24} never ran successfully", s.name),
        };
    }
    print_stdout(&text);
    Ok(())
}

/// Human output on stdout. A reader that went away (`| head`) is a normal end, not a reason
/// to stop provisioning halfway.
fn print_stdout(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
