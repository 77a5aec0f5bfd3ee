//! `agentenv provision ENV`: make the workdir match the spec — clone or update the
//! repositories, run the setup steps that need to run — idempotently; with `--dry-run`, show
//! that plan and change nothing. People get progress on stderr (bars on a terminal) and a
//! summary on stdout; `--json` prints one JSON object per repository and step as each is
//! done, then a `{"event":"summary",…}` line, also when the spec itself is wrong.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{SpecAndWorkdir, output, short_id};
use crate::error::{Error, Kind, Result};
use crate::provision::git::Transfer;
use crate::provision::{self, RepoAction, RepoReport, Report, StepAction, StepReport, Watcher};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: SpecAndWorkdir,
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
    /// The node-level clone cache: one bare mirror per repository, shared by provisions on
    /// this machine; new clones fetch only what it lacks.
    #[arg(long, value_name = "DIR", env = "AGENTENV_CACHE_DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
}

/// `agentenv provision ENV`.
pub fn run(args: Args) -> Result<()> {
    let printer = Printer::new(args.json, args.dry_run);
    // What `validate` warns about (a step expanding a secret-like variable that no secret
    // provides) is said here too, before anything runs; a spec that does not load is reported
    // by the provision itself.
    if let Ok(env) = crate::spec::LoadedEnv::load(&args.at.env) {
        for w in crate::secrets::declared(&env).warnings {
            printer.stderr_line(&super::validate::render_warning(&w, &args.at.env));
        }
    }
    let opts = provision::Options {
        workdir: args.at.workdir,
        dry_run: args.dry_run,
        force: args.force,
        wait: args.wait,
        cache_dir: args.cache_dir,
    };
    let mut report = provision::provision(&args.at.env, &opts, &printer);
    if args.json {
        printer.event(&Event::Summary(Summary::of(&report)));
    } else if report.planned {
        // Before there is a plan, the error is all there is to say.
        if let Err(e) = output::print(&summary_text(&report)) {
            printer.stdout_failed(e);
        }
    }
    match report.error.take() {
        Some(e) => Err(e),
        // The work is done; output that could not be written still makes it a failure.
        None => {
            let stdout_error = printer.stdout_error.into_inner();
            stdout_error
                .unwrap_or_else(|p| p.into_inner())
                .map_or(Ok(()), Err)
        }
    }
}

/// One line of `--json` output.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Event<'a> {
    Repo(&'a RepoReport),
    Step(&'a StepReport),
    Summary(Summary<'a>),
}

#[derive(Serialize)]
struct Summary<'a> {
    ok: bool,
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    workdir: Option<String>,
    repos: Vec<Event<'a>>,
    steps: Vec<Event<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorReport>,
}

#[derive(Serialize)]
struct ErrorReport {
    kind: Kind,
    exit_code: i32,
    message: String,
}

impl<'a> Summary<'a> {
    fn of(report: &'a Report) -> Summary<'a> {
        Summary {
            ok: report.error.is_none(),
            dry_run: report.dry_run,
            workdir: report.workdir.as_ref().map(|w| w.display().to_string()),
            repos: report.repos.iter().map(Event::Repo).collect(),
            steps: report.steps.iter().map(Event::Step).collect(),
            error: report.error.as_ref().map(|e| ErrorReport {
                kind: e.kind,
                exit_code: e.exit_code(),
                message: e.to_string(),
            }),
        }
    }
}

/// Shows a provision as it happens: JSON events on stdout with `--json`; otherwise one line
/// per repository and step on stderr (above progress bars on a terminal), and nothing while
/// a dry run plans. Step output goes to stderr in every mode, so stdout stays parseable.
struct Printer {
    json: bool,
    dry_run: bool,
    /// On a terminal only, and never with `--json`.
    bars: Option<MultiProgress>,
    /// The running step's spinner.
    spinner: Mutex<Option<ProgressBar>>,
    /// The first stdout failure other than a closed pipe; provisioning goes on regardless.
    stdout_error: Mutex<Option<Error>>,
}

impl Printer {
    fn new(json: bool, dry_run: bool) -> Printer {
        use std::io::IsTerminal;
        let tty = !json && std::io::stderr().is_terminal();
        Printer {
            json,
            dry_run,
            bars: tty.then(MultiProgress::new),
            spinner: Mutex::new(None),
            stdout_error: Mutex::new(None),
        }
    }

    fn event(&self, event: &Event<'_>) {
        if let Err(e) = output::print_json_line(event) {
            self.stdout_failed(e);
        }
    }

    fn stdout_failed(&self, e: Error) {
        let mut first = self.stdout_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(e);
    }

    /// A progress line for people (not with `--json`, not while planning).
    fn info(&self, text: &str) {
        if !self.json && !self.dry_run {
            self.stderr_line(text);
        }
    }

    fn stderr_line(&self, text: &str) {
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => output::eprint(&format!("{text}\n")),
        }
    }
}

/// A progress bar that disappears when its transfer ends.
struct Bar(ProgressBar);

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl Watcher for Printer {
    fn waiting(&self, message: &str) {
        self.info(&format!("{message}; waiting for it (--wait)"));
    }

    fn transfer(&self, repo: &str) -> Option<Box<dyn Fn(Transfer) + Sync + '_>> {
        let m = self.bars.as_ref()?;
        let style =
            ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} objects {msg}")
                .expect("valid template")
                .progress_chars("=> ");
        let bar = Bar(m.add(ProgressBar::new(0).with_style(style)));
        bar.0.set_prefix(repo.to_string());
        Some(Box::new(move |t: Transfer| {
            // libgit2 reports every object: redraw for a fraction of them only.
            if t.received.is_multiple_of(256) || t.received == t.total {
                bar.0.set_length(t.total as u64);
                bar.0.set_position(t.received as u64);
                bar.0
                    .set_message(format!("{:.1} MiB", t.bytes as f64 / 1048576.0));
            }
        }))
    }

    fn repo(&self, r: &RepoReport) {
        if self.json {
            return self.event(&Event::Repo(r));
        }
        match (&r.branch, &r.head, &r.error) {
            (_, _, Some(e)) if r.action == RepoAction::Failed => {
                self.info(&format!("{}: failed: {e}", r.name));
            }
            (Some(branch), Some(head), _) => self.info(&format!(
                "{}: {} ({branch} at {})",
                r.name,
                r.action.as_str(),
                short_id(head)
            )),
            _ => {}
        }
    }

    fn step_started(&self, step: &str, reason: &str) {
        self.info(&format!("{step}: running ({reason})"));
        if let Some(m) = &self.bars {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_message(format!("running {step}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            *self.spinner.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
        }
    }

    fn step_output(&self, step: &str, line: &str) {
        self.stderr_line(&format!("[{step}] {line}"));
    }

    fn step(&self, s: &StepReport) {
        let spinner = self
            .spinner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        if self.json {
            return self.event(&Event::Step(s));
        }
        match s.action {
            StepAction::Ran => {
                let secs = s.duration_ms.unwrap_or_default() as f64 / 1000.0;
                self.info(&format!("{}: ok in {secs:.1}s", s.name));
            }
            StepAction::Failed => {
                let e = s.error.as_deref().unwrap_or_default();
                self.info(&format!("{}: failed: {e}", s.name));
            }
            StepAction::Skipped => self.info(&format!("{}: skipped ({})", s.name, s.reason)),
            StepAction::NotRun | StepAction::Run | StepAction::Skip => {}
        }
    }
}

/// The summary for people: every repository and step with what happened and why.
fn summary_text(report: &Report) -> String {
    let mut text = String::new();
    let title = if report.dry_run {
        "plan for"
    } else {
        "workdir"
    };
    let workdir = report.workdir.as_ref().map(|w| w.display().to_string());
    text.push_str(&format!("{title} {}\n", workdir.as_deref().unwrap_or("-")));
    if !report.repos.is_empty() {
        text.push_str("repositories:\n");
    }
    for r in &report.repos {
        let at = match (&r.branch, &r.head) {
            (Some(b), Some(h)) => format!("  {b} @ {}", short_id(h)),
            _ => String::new(),
        };
        text.push_str(&format!("  {:<24} {:<11}{at}\n", r.name, r.action.as_str()));
        if let Some(e) = &r.error {
            text.push_str(&format!("    {}\n", e.replace('\n', "\n    ")));
        }
    }
    if !report.steps.is_empty() {
        text.push_str("steps:\n");
    }
    for st in &report.steps {
        let took = st
            .duration_ms
            .map(|ms| format!(" in {:.1}s", ms as f64 / 1000.0))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {:<24} {:<8}{took}  ({})\n",
            st.name,
            st.action.as_str(),
            st.reason
        ));
        if let Some(e) = &st.error {
            text.push_str(&format!("    {}\n", e.replace('\n', "\n    ")));
        }
    }
    text
}
