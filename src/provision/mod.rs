//! Provision: make a workdir match a spec — plan → repositories (git2 clone/update) → setup
//! steps → state — under the workdir lock. A dry run walks the same plan through the same
//! loop and stops before each change: it asks the remotes and reads the state, and creates
//! and changes nothing.
//!
//! Nothing here prints. What happens is told to a [`Watcher`] as it happens (the command
//! line turns that into progress and `--json` events), and the outcome is a [`Report`].
//!
//! The workdir layout, which the tools read too:
//! - `WORKDIR/<repo.checkout_path()>`: the checkouts;
//! - `WORKDIR/.agentenv/state.json`: what the last provisions left in place (`state.rs`);
//! - `WORKDIR/.agentenv/logs/<step>.log`: each step's last output, secrets masked;
//! - `WORKDIR/.agentenv/lock` and `WORKDIR/.agentenv/fingerprint.key`.

pub mod auth;
pub mod crash;
pub mod credential_helper;
pub mod git;
pub mod lock;
pub mod plan;
pub mod report;
pub mod state;
pub mod status;
pub mod steps;

pub use report::{RepoAction, RepoReport, Report, StepAction, StepReport};
pub use status::{Status, status};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Kind, Result};
use crate::git::cache::{Cache, Limits};
use crate::secrets::ResolvedSecrets;
use crate::spec::{LoadedEnv, Step};
use git::GitAuth;
use plan::{RepoPlan, StepDecision};
use state::{RepoState, StartedStep, State, StepState};

/// How many repositories are cloned or fetched at once: enough to overlap network waits,
/// few enough not to starve a small CI machine.
const PARALLEL_REPOS: usize = 4;

/// What a provision is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where checkouts, logs and state go; by default the spec's ([`LoadedEnv::default_workdir`]).
    pub workdir: Option<PathBuf>,
    /// Plan only: ask the remotes and read the state; create and change nothing.
    pub dry_run: bool,
    /// Update checkouts even when their working tree has local changes (they are discarded).
    pub force: bool,
    /// Wait for another provision of the same workdir to finish instead of failing.
    pub wait: bool,
    /// The node-level clone cache new clones come through ([`crate::git::cache`]).
    pub cache_dir: Option<PathBuf>,
}

/// Told what a provision does, as it happens; repositories are reported from the threads
/// that sync them. Every method does nothing unless implemented.
pub trait Watcher: Sync {
    /// Another provision holds the workdir lock (`message` says which) and this one waits.
    fn waiting(&self, _message: &str) {}
    /// A clone or fetch of `repo` starts: where its transfer progress goes, if anywhere.
    /// The sink is dropped when the transfer ends.
    fn transfer(&self, _repo: &str) -> Option<Box<dyn Fn(git::Transfer) + Sync + '_>> {
        None
    }
    /// A repository is done (or, in a dry run, planned).
    fn repo(&self, _report: &RepoReport) {}
    /// A step starts to run, and why.
    fn step_started(&self, _step: &str, _reason: &str) {}
    /// One line of a running step's output, secrets already masked.
    fn step_output(&self, _step: &str, _line: &str) {}
    /// A step is done, skipped or not run (or, in a dry run, planned).
    fn step(&self, _report: &StepReport) {}
}

/// Provision the workdir of the spec at `env_path`, or with `opts.dry_run` plan it.
pub fn provision(env_path: &Path, opts: &Options, watcher: &dyn Watcher) -> Report {
    let mut report = Report::new(opts.dry_run);
    let result = Run {
        opts,
        watcher,
        report: &mut report,
    }
    .run(env_path);
    report.error = result.err();
    report
}

/// The workdir: the one given, else the spec's default; absolute. A path that is (or runs
/// through) a file is refused before anything is created.
fn workdir_of(env: &LoadedEnv, given: Option<&Path>) -> Result<PathBuf> {
    let dir = given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| env.default_workdir());
    let dir = std::path::absolute(&dir)
        .map_err(|e| Error::input(format!("workdir {}: {e}", dir.display())))?;
    if let Some(file) = dir.ancestors().find(|p| p.exists()).filter(|p| !p.is_dir()) {
        let what = if file == dir {
            "is a file, not a directory".to_string()
        } else {
            format!("is inside {}, which is a file", file.display())
        };
        return Err(
            Error::input(format!("workdir {} {what}", dir.display())).with_hint(
                "pass --workdir with a directory (it is created if missing), or move the file away",
            ),
        );
    }
    Ok(dir)
}

/// A repository in place (or, in a dry run, where it would be).
struct RepoDone {
    action: RepoAction,
    branch: String,
    head: String,
    /// In a dry run: what would stop the update.
    note: Option<String>,
}

/// The plan a provision works from: the spec, its secrets, the workdir, the repositories.
struct Workdir<'a> {
    env: &'a LoadedEnv,
    secrets: &'a ResolvedSecrets,
    path: &'a Path,
    repos: &'a [RepoPlan],
}

/// One provision or dry run, filling in its report.
struct Run<'a> {
    opts: &'a Options,
    watcher: &'a dyn Watcher,
    report: &'a mut Report,
}

impl Run<'_> {
    fn run(&mut self, env_path: &Path) -> Result<()> {
        let dry_run = self.opts.dry_run;
        let env = LoadedEnv::load(env_path)?;
        // Every secret resolves before anything is cloned or run, so a missing one changes nothing.
        let secrets = crate::secrets::resolve(&env)?;
        let workdir = workdir_of(&env, self.opts.workdir.as_deref())?;
        self.report.workdir = Some(workdir.clone());
        let repos = plan::repos(&env, &workdir)?;
        self.report.planned = true;

        // From here on, a dry run stops before each change.
        let _lock = if dry_run {
            None
        } else {
            Some(self.take_workdir(&workdir)?)
        };
        // Under the lock: two provisions starting on a fresh workdir must not both make a
        // key (the loser of the lock has stopped with `Busy` before reading any).
        let secrets = keyed(secrets, &workdir, dry_run)?;
        let at = Workdir {
            env: &env,
            secrets: &secrets,
            path: &workdir,
            repos: &repos,
        };
        let mut state = State::load(&workdir)?;
        let (heads, failures) = self.sync_repos(&at, &mut state)?;
        if !failures.is_empty() && !dry_run {
            for step in &env.spec.setup {
                let reason = "a repository failed";
                self.step_done(StepReport::new(step, StepAction::NotRun, reason));
            }
            return Err(combine(failures, "repositories"));
        }
        // A dry run plans the steps even when a repository failed: with the HEADs it has, it
        // still shows which would run.
        self.run_steps(&at, &heads, &mut state)?;
        if !failures.is_empty() {
            return Err(combine(failures, "repositories"));
        }
        Ok(())
    }

    /// Clone or update every repository (in a dry run: ask each remote) and record those in
    /// place in the state. Returns the HEAD of each repository in place, by name, and the
    /// failures of the others.
    fn sync_repos(
        &mut self,
        at: &Workdir<'_>,
        state: &mut State,
    ) -> Result<(BTreeMap<String, String>, Vec<Error>)> {
        let dry_run = self.opts.dry_run;
        let loaded = state.clone();
        if !dry_run {
            for r in at.repos {
                git::clean_leftovers(&r.target)?;
            }
        }
        let auths = repo_auths(at.env, at.secrets, at.repos)?;
        let cache = match &self.opts.cache_dir {
            Some(dir) if !dry_run => Some(Cache::open(dir, Limits::from_env()?)?),
            _ => None,
        };
        let (watcher, force, cache) = (self.watcher, self.opts.force, cache.as_ref());
        let results = parallel(&auths, |(r, auth)| {
            if dry_run {
                preview(r, auth)
            } else {
                sync(r, auth, force, watcher, cache)
            }
        });
        let mut heads = BTreeMap::new();
        let mut failures = Vec::new();
        for (r, result) in at.repos.iter().zip(results) {
            let mut report = RepoReport::new(r, RepoAction::Failed);
            match result {
                Ok(done) => {
                    if !dry_run {
                        record_repo(state, r, &done);
                    }
                    heads.insert(r.name.clone(), done.head.clone());
                    report.action = done.action;
                    report.branch = Some(done.branch);
                    report.head = Some(done.head);
                    report.error = done.note;
                }
                Err(e) => {
                    let e = redact(e, at.secrets);
                    report.error = Some(e.to_string());
                    failures.push(e);
                }
            }
            self.repo_done(report);
        }
        if !dry_run {
            let setup = &at.env.spec.setup;
            state
                .repos
                .retain(|name, _| at.repos.iter().any(|r| &r.name == name));
            state
                .steps
                .retain(|name, _| setup.iter().any(|s| &s.name == name));
            state
                .started
                .retain(|name, _| setup.iter().any(|s| &s.name == name));
            // A warm run with nothing changed writes nothing (no fsync on the hot path).
            if *state != loaded || !state::exists(at.path) {
                state.save(at.path)?;
            }
        }
        Ok((heads, failures))
    }

    /// Run or skip each step in order (in a dry run: say which would run, and why). A failed
    /// step stops the ones after it, unless it has `continue_on_error`.
    fn run_steps(
        &mut self,
        at: &Workdir<'_>,
        heads: &BTreeMap<String, String>,
        state: &mut State,
    ) -> Result<()> {
        let dry_run = self.opts.dry_run;
        let mut failed: Option<Error> = None;
        for step in &at.env.spec.setup {
            if failed.is_some() {
                let reason = "an earlier step failed";
                self.step_done(StepReport::new(step, StepAction::NotRun, reason));
                continue;
            }
            let heads = step_heads(step, at.repos, heads);
            let fingerprint = steps::fingerprint(step, at.secrets, &heads);
            let report = match plan::decide_step(step, &fingerprint, state, at.path) {
                StepDecision::Skip(reason) if dry_run => {
                    StepReport::new(step, StepAction::Skip, reason)
                }
                StepDecision::Skip(reason) => StepReport::new(step, StepAction::Skipped, reason),
                StepDecision::Satisfied(reason) | StepDecision::Finished(reason) if dry_run => {
                    StepReport::new(step, StepAction::Skip, reason)
                }
                StepDecision::Satisfied(reason) => {
                    record_step(state, at.path, step, fingerprint, "satisfied", 0)?;
                    StepReport::new(step, StepAction::Skipped, reason)
                }
                StepDecision::Finished(reason) => {
                    let ms = state.started.get(&step.name).map_or(0, |s| {
                        steps::ran_for(at.path, &step.name, &s.time).unwrap_or(0)
                    });
                    record_step(state, at.path, step, fingerprint, "ok", ms)?;
                    StepReport::new(step, StepAction::Skipped, reason)
                }
                StepDecision::Run(reason) if dry_run => {
                    StepReport::new(step, StepAction::Run, reason)
                }
                StepDecision::Run(reason) => {
                    let (report, error) = self.run_step(step, fingerprint, reason, at, state)?;
                    failed = error.filter(|_| !step.continue_on_error);
                    report
                }
            };
            self.step_done(report);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Make the workdir's `.agentenv/logs`, take its lock (waiting for it with `wait`), and
    /// remove what a killed provision left in `.agentenv`.
    fn take_workdir(&self, workdir: &Path) -> Result<lock::WorkdirLock> {
        let logs = state::agentenv_dir(workdir).join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| Error::failure(format!("cannot create {}: {e}", logs.display())))?;
        let lock = lock::acquire(workdir, self.opts.wait, |busy| self.watcher.waiting(busy))?;
        state::remove_leftovers(workdir)?;
        Ok(lock)
    }

    /// Run one step and record its success in the state (a failure records nothing, so the
    /// next provision runs it again). Its start is recorded first: if this provision is
    /// killed, the next one finds the step started and never ended, and says so (see
    /// [`plan::decide_step`]). The error is the step's own; `Err` is a state write that
    /// failed.
    fn run_step(
        &self,
        step: &Step,
        fingerprint: String,
        reason: String,
        at: &Workdir<'_>,
        state: &mut State,
    ) -> Result<(StepReport, Option<Error>)> {
        steps::clear_exit(at.path, &step.name)?;
        let start = StartedStep {
            fingerprint: fingerprint.clone(),
            time: state::now(),
        };
        state.started.insert(step.name.clone(), start);
        state.save(at.path)?;
        self.watcher.step_started(&step.name, &reason);
        let as_run = credential_helper::with_git_env(step, at.env);
        let on_line = |line: &str| {
            self.watcher.step_output(&step.name, line);
            crash::point("step-output");
        };
        let mut report = StepReport::new(step, StepAction::Ran, reason);
        let ran = steps::run(&as_run, at.path, at.secrets, &on_line);
        crash::point("step-exited");
        match ran {
            Ok(took) => {
                let ms = took.as_millis() as u64;
                record_step(state, at.path, step, fingerprint, "ok", ms)?;
                report.duration_ms = Some(ms);
                Ok((report, None))
            }
            Err(e) => {
                state.started.remove(&step.name);
                state.steps.remove(&step.name);
                state.save(at.path)?;
                let e = redact(e, at.secrets);
                report.action = StepAction::Failed;
                report.error = Some(e.to_string());
                Ok((report, Some(e)))
            }
        }
    }

    fn repo_done(&mut self, report: RepoReport) {
        self.watcher.repo(&report);
        self.report.repos.push(report);
    }

    fn step_done(&mut self, report: StepReport) {
        self.watcher.step(&report);
        self.report.steps.push(report);
    }
}

/// The secrets with the workdir's fingerprint key. Secret digests in step fingerprints are
/// keyed per workdir: with a fixed key, anyone who can read state.json could test guesses of
/// a weak secret offline. A dry run creates nothing, so without a key yet it uses none (and
/// plans every step to run).
fn keyed(secrets: ResolvedSecrets, workdir: &Path, dry_run: bool) -> Result<ResolvedSecrets> {
    Ok(if dry_run {
        match state::existing_fingerprint_key(workdir) {
            Some(key) => secrets.with_digest_key(&key),
            None => secrets,
        }
    } else if secrets.is_empty() {
        secrets
    } else {
        let key = state::fingerprint_key(workdir)?;
        secrets.with_digest_key(&key)
    })
}

/// Record a step as done (`ok`: it ran and succeeded) or not needed (`satisfied`: its
/// `creates:` path exists), and no longer started. A step found satisfied again, with the
/// same fingerprint, changes nothing: a warm run writes no state.
fn record_step(
    state: &mut State,
    workdir: &Path,
    step: &Step,
    fingerprint: String,
    result: &str,
    duration_ms: u64,
) -> Result<()> {
    let was_started = state.started.remove(&step.name).is_some();
    let still = result == "satisfied"
        && state
            .steps
            .get(&step.name)
            .is_some_and(|s| s.fingerprint == fingerprint);
    if still && !was_started {
        return Ok(());
    }
    if !still {
        let done = StepState {
            fingerprint,
            result: result.into(),
            time: state::now(),
            duration_ms,
        };
        state.steps.insert(step.name.clone(), done);
    }
    state.save(workdir)
}

/// Record a repository in place; `time` says when the checkout last changed, so an
/// unchanged one keeps it.
fn record_repo(state: &mut State, r: &RepoPlan, done: &RepoDone) {
    let now = RepoState {
        path: r.rel_path.clone(),
        url: r.url.clone(),
        branch: done.branch.clone(),
        head: done.head.clone(),
        time: state::now(),
    };
    if !state
        .repos
        .get(&r.name)
        .is_some_and(|was| was.same_checkout(&now))
    {
        state.repos.insert(r.name.clone(), now);
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
fn sync(
    r: &RepoPlan,
    auth: &GitAuth,
    force: bool,
    watcher: &dyn Watcher,
    cache: Option<&Cache>,
) -> Result<RepoDone> {
    let progress = watcher.transfer(&r.name);
    let synced = auth::with_retries(|| git::sync(r, auth, force, progress.as_deref(), cache))
        .map_err(|e| auth::explain(auth.credential(), e))?;
    Ok(RepoDone {
        action: match synced.action {
            git::RepoAction::Cloned => RepoAction::Cloned,
            git::RepoAction::Updated => RepoAction::Updated,
            git::RepoAction::UpToDate => RepoAction::UpToDate,
        },
        branch: synced.branch,
        head: synced.head,
        note: None,
    })
}

/// What [`sync`] would do, from the remote's tip and the checkout as it is; changes nothing.
fn preview(r: &RepoPlan, auth: &GitAuth) -> Result<RepoDone> {
    let tip = auth::with_retries(|| git::probe(r, auth))
        .map_err(|e| auth::explain(auth.credential(), e))?;
    let mut done = RepoDone {
        action: RepoAction::Clone,
        branch: tip.branch,
        head: tip.oid.to_string(),
        note: None,
    };
    let occupied =
        r.target.exists() && std::fs::read_dir(&r.target).is_ok_and(|mut d| d.next().is_some());
    if !occupied {
        return Ok(done);
    }
    if !git::is_checkout(&r.target) {
        return Err(Error::input(format!(
            "repository {}: {} exists and is not a git checkout",
            r.name,
            r.target.display()
        )));
    }
    if git::local_head(&r.target) == Some(tip.oid) {
        done.action = RepoAction::UpToDate;
        return Ok(done);
    }
    let changed = git2::Repository::open(&r.target)
        .and_then(|repo| git::changed_files(&repo))
        .unwrap_or_default();
    done.action = RepoAction::Update;
    done.note = (!changed.is_empty()).then(|| {
        format!(
            "has local changes ({}); provision would stop unless --force",
            changed.join(", ")
        )
    });
    Ok(done)
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
    step: &Step,
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

/// Anything that may echo a remote or a step passes through the redactor before it is shown.
fn redact(e: Error, secrets: &ResolvedSecrets) -> Error {
    e.map_text(|t| secrets.redactor().redact(t))
}
