//! `get_pipeline_log`: a Bitbucket Cloud Pipelines step log, from the API; refused when the
//! run's branch is outside the scope.
//!
//! What is shown: on a failed step, by default, the lines that explain the failure (found by
//! [`looks_like_error`]) with a few lines of context, and the last lines of the log, with the
//! gaps counted; otherwise the last lines. `grep`, `tail` and `start_line`/`end_line` choose
//! other lines, as the answer's note says.

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source::remote::{block_on, collect_pages};
use super::text::{self, MAX_OUTPUT_BYTES, cut_chars, quote};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::{ApiError, ApiErrorKind, MAX_BODY_BYTES, PipelineId, RunStatus};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogArgs {
    /// Repository name.
    pub repo: String,
    /// Run UUID (braces optional) or build number.
    pub pipeline: String,
    /// Step name or UUID (default: the first failed step, else the last).
    #[serde(default)]
    pub step: Option<String>,
    /// The last N lines (after `grep`), 1-5000.
    #[serde(default)]
    pub tail: Option<usize>,
    /// Only lines matching this regex.
    #[serde(default)]
    pub grep: Option<String>,
    /// First line of a range of the log (1-based).
    #[serde(default)]
    pub start_line: Option<usize>,
    /// Last line of the range, inclusive.
    #[serde(default)]
    pub end_line: Option<usize>,
}

/// A step of the run.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    pub uuid: String,
    pub name: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct LogOutput {
    pub repo: String,
    pub pipeline: String,
    /// The step whose log this is.
    pub step: Step,
    /// Every step of the run.
    pub steps: Vec<Step>,
    /// The lines shown, each prefixed with its line number in the full log; where lines are
    /// left out between two shown ones, a line says how many.
    pub log: String,
    /// Lines in the full log.
    pub total_lines: usize,
    /// Lines matching `grep` and the range (all lines without them).
    pub matching_lines: usize,
    /// Lines shown.
    pub shown_lines: usize,
    /// Lines that look like errors, when the error region was looked for (a failed step,
    /// without `grep`, `tail` or a range).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_lines: Option<usize>,
    /// What was left out, and how to see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where the run and step are, the steps, the counts, then the lines as shown.
fn render(o: &LogOutput) -> String {
    let status = |s: &Step| match &s.result {
        Some(r) => format!("{}/{r}", s.state),
        None => s.state.clone(),
    };
    let mut t = format!(
        "{} pipeline {}, step {} {} {}\n",
        o.repo,
        o.pipeline,
        o.step.name,
        o.step.uuid,
        status(&o.step)
    );
    let steps: Vec<String> = o
        .steps
        .iter()
        .map(|s| format!("{} {} {}", s.name, s.uuid, status(s)))
        .collect();
    let _ = writeln!(t, "steps: {}", steps.join("; "));
    let _ = write!(
        t,
        "{} in the log",
        text::count(o.total_lines as u64, "line", "lines")
    );
    if o.matching_lines != o.total_lines {
        let _ = write!(t, ", {} selected", o.matching_lines);
    }
    if let Some(e) = o.error_lines {
        let _ = write!(t, ", {e} look like errors");
    }
    let _ = writeln!(t, ", {} shown", o.shown_lines);
    t.push_str(&o.log);
    text::footer(&mut t, None, o.note.as_deref());
    t
}

pub struct GetPipelineLog;

impl Tool for GetPipelineLog {
    const NAME: &'static str = "get_pipeline_log";
    const DESCRIPTION: &'static str = "A Bitbucket Cloud Pipelines step log. For a failed step (the default step) it shows the lines that explain the failure with context, and the last lines; `grep`, `tail` or `start_line`/`end_line` select other lines.";
    const API_ONLY: bool = true;
    type Args = LogArgs;
    type Output = LogOutput;

    fn render(out: &LogOutput) -> String {
        render(out)
    }

    fn run(ctx: &Context, args: LogArgs) -> Result<LogOutput> {
        let tail = match args.tail {
            None => None,
            Some(n) if (1..=MAX_TAIL).contains(&n) => Some(n),
            Some(n) => {
                return Err(Error::input(format!(
                    "tail {n} is out of range; use 1 to {MAX_TAIL}, with `grep` to narrow"
                )));
            }
        };
        let range = match (args.start_line, args.end_line) {
            (None, None) => None,
            (start, end) => {
                let start = text::check_range(start, end)?;
                Some((start, end.unwrap_or(usize::MAX)))
            }
        };
        let grep = args
            .grep
            .as_deref()
            .map(|g| {
                regex::RegexBuilder::new(g)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        Error::input(format!(
                            "grep {} is not a valid regex: {}",
                            quote(g),
                            cut_chars(&e.to_string(), 300)
                        ))
                    })
            })
            .transpose()?;
        let repo = ctx.remote(&args.repo)?;
        if !repo.is_cloud() {
            return Err(Error::input(
                "Data Center has no pipelines of its own: build logs live in the CI server; call list_pipelines for the build statuses and their URLs",
            ));
        }
        let id = PipelineId::parse(&args.pipeline).ok_or_else(|| {
            Error::input(format!(
                "pipeline {} is neither a UUID nor a build number; take `uuid` from list_pipelines",
                quote(&args.pipeline)
            ))
        })?;
        let client = &repo.client;
        let run = block_on(client.pipeline(&repo.id, &id)).map_err(run_error)?;
        if !run
            .branch
            .as_deref()
            .is_some_and(|b| ctx.env.scope.branch(b))
        {
            return Err(Error::out_of_scope(format!(
                "pipeline {} ran on a branch outside the environment's scope; call list_pipelines to see runs in scope",
                quote(&args.pipeline)
            )));
        }
        let uuid = run.uuid;
        let (all_steps, _) = collect_pages(MAX_STEPS, 100, |limit, cursor| {
            block_on(client.pipeline_steps(&repo.id, &uuid, limit, cursor))
        })
        .map_err(run_error)?;
        let first_failed = all_steps
            .iter()
            .position(|st| matches!(st.status, RunStatus::Failed | RunStatus::Error));
        let steps: Vec<Step> = all_steps
            .into_iter()
            .map(|st| Step {
                uuid: st.uuid,
                name: st.name.unwrap_or_default(),
                state: st.state,
                result: st.result,
            })
            .collect();
        let chosen = match &args.step {
            Some(want) => {
                let bare = |x: &str| x.trim_matches(['{', '}']).to_lowercase();
                steps.iter().position(|st| {
                    st.name.eq_ignore_ascii_case(want) || bare(&st.uuid) == bare(want)
                })
            }
            None => first_failed.or_else(|| steps.len().checked_sub(1)),
        };
        let Some(chosen) = chosen else {
            let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::not_found(match &args.step {
                Some(w) => format!(
                    "pipeline {} has no step {}; its steps: {}",
                    quote(&args.pipeline),
                    quote(w),
                    names.join(", ")
                ),
                None => format!("pipeline {} has no steps yet", quote(&args.pipeline)),
            }));
        };
        let step = &steps[chosen];
        // The log is redirected to object storage on another host; the client drops the
        // credential for that hop.
        let resp = block_on(client.step_log(&repo.id, &uuid, &step.uuid, MAX_BODY_BYTES)).map_err(
            |e| {
                if e.kind == ApiErrorKind::NotFound {
                    Error::not_found(format!(
                        "step `{}` of pipeline {} has no log (it has not started, or its log expired)",
                        step.name,
                        quote(&args.pipeline)
                    ))
                    .with_source(e)
                } else {
                    run_error(e)
                }
            },
        )?;
        let text = resp.text();
        let all: Vec<&str> = text.lines().collect();
        let failed = matches!(step.result.as_deref(), Some("FAILED" | "ERROR"));
        let pick = Pick {
            grep: grep.as_ref(),
            range,
            tail,
            errors: failed && grep.is_none() && range.is_none() && tail.is_none(),
        };
        let shown = pick.lines(&all);
        let mut notes = shown.notes;
        if resp.truncated {
            notes.push(format!(
                "the log is larger than {MAX_BODY_BYTES} bytes; only its beginning was read"
            ));
        }
        let out = LogOutput {
            repo: repo.name.clone(),
            pipeline: uuid,
            step: Step {
                uuid: step.uuid.clone(),
                name: step.name.clone(),
                state: step.state.clone(),
                result: step.result.clone(),
            },
            total_lines: all.len(),
            matching_lines: shown.matching,
            shown_lines: shown.count,
            error_lines: shown.error_lines,
            steps,
            log: shown.log,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        };
        Ok(out)
    }
}

const MAX_TAIL: usize = 5000;
/// Lines shown by default when the step did not fail, or no line looks like an error.
const DEFAULT_TAIL: usize = 200;
/// Lines shown before and after each error line.
const BEFORE_ERROR: usize = 3;
const AFTER_ERROR: usize = 6;
/// Error lines whose windows are shown at most; the rest are counted.
const MAX_ERROR_WINDOWS: usize = 20;
/// The end of a failed step's log, shown with its error region: the summary and the last
/// command are there.
const FAILED_TAIL: usize = 30;
/// Longer lines are cut.
const MAX_LINE: usize = 2000;

/// Steps read at most for one run.
const MAX_STEPS: usize = 100;

/// A failure reading a run: the client tells "Pipelines is off" and "no such run" apart.
fn run_error(e: ApiError) -> Error {
    let not_found = e.kind == ApiErrorKind::NotFound;
    let err = Error::from(e);
    if not_found {
        err.with_hint("call list_pipelines to see the runs in scope")
    } else {
        err
    }
}

/// Which lines of a log a call asks for.
struct Pick<'a> {
    grep: Option<&'a regex::Regex>,
    /// 1-based, inclusive.
    range: Option<(usize, usize)>,
    tail: Option<usize>,
    /// Look for the error region (a failed step and no other selection).
    errors: bool,
}

/// The lines chosen, as the log field shows them.
struct Shown {
    log: String,
    count: usize,
    matching: usize,
    error_lines: Option<usize>,
    notes: Vec<String>,
}

impl Pick<'_> {
    fn lines(&self, all: &[&str]) -> Shown {
        // 1-based numbers of the lines grep and the range select.
        let matching: Vec<usize> = (1..=all.len())
            .filter(|n| self.range.is_none_or(|(a, b)| (a..=b).contains(n)))
            .filter(|n| self.grep.is_none_or(|re| re.is_match(all[n - 1])))
            .collect();
        let mut notes = Vec::new();
        let how = "pass `tail: N` for the last N lines, `grep: REGEX` for matching lines, or `start_line`/`end_line` for a range";
        if self.errors {
            let errors: Vec<usize> = matching
                .iter()
                .copied()
                .filter(|n| looks_like_error(all[n - 1]))
                .collect();
            if !errors.is_empty() {
                let mut chosen = std::collections::BTreeSet::new();
                for &e in errors.iter().take(MAX_ERROR_WINDOWS) {
                    chosen.extend(
                        e.saturating_sub(BEFORE_ERROR).max(1)..=(e + AFTER_ERROR).min(all.len()),
                    );
                }
                chosen.extend(all.len().saturating_sub(FAILED_TAIL) + 1..=all.len());
                let chosen: Vec<usize> = chosen.into_iter().collect();
                let (log, count, cut) = numbered(all, &chosen, true, false);
                let left_out = all.len() - count;
                let mut note = format!(
                    "the step failed: showing {} that look like errors with {BEFORE_ERROR} lines before and {AFTER_ERROR} after",
                    text::count(errors.len().min(MAX_ERROR_WINDOWS) as u64, "line", "lines")
                );
                if errors.len() > MAX_ERROR_WINDOWS {
                    let _ = write!(note, " (the first {MAX_ERROR_WINDOWS} of {})", errors.len());
                }
                let _ = write!(note, ", and the last {FAILED_TAIL} lines");
                if cut {
                    let _ = write!(note, ", cut at {} KB", MAX_OUTPUT_BYTES / 1024);
                }
                if left_out > 0 {
                    let _ = write!(note, "; {left_out} lines left out: {how}");
                }
                notes.push(note);
                return Shown {
                    log,
                    count,
                    matching: matching.len(),
                    error_lines: Some(errors.len()),
                    notes,
                };
            }
            notes.push(
                "the step failed but no line looks like an error; showing the last lines".into(),
            );
        }
        let (chosen, from_start): (&[usize], bool) = match (self.range, self.tail) {
            (Some(_), None) => (&matching, true),
            (_, tail) => {
                let n = tail.unwrap_or(DEFAULT_TAIL);
                (&matching[matching.len().saturating_sub(n)..], false)
            }
        };
        let (log, count, cut) = numbered(all, chosen, false, !from_start);
        if cut {
            notes.push(if from_start {
                format!(
                    "only the first {count} selected lines fit in {MAX_OUTPUT_BYTES} bytes; continue with a later `start_line`"
                )
            } else {
                format!(
                    "only the last {count} lines fit in {MAX_OUTPUT_BYTES} bytes; narrow with `grep` or a smaller `tail`"
                )
            });
        } else if count < matching.len() {
            notes.push(format!(
                "showing the last {count} of {} lines; {how}",
                matching.len()
            ));
        }
        Shown {
            log,
            count,
            matching: matching.len(),
            error_lines: self.errors.then_some(0),
            notes,
        }
    }
}

/// Lines `chosen` (1-based, ascending) of `all`, numbered, within the output cap — keeping
/// the end when `keep_end`, else the beginning — and, with `gaps`, a line saying how many
/// were left out between two shown ones. Returns the text, the lines shown and whether the
/// cap cut it.
fn numbered(all: &[&str], chosen: &[usize], gaps: bool, keep_end: bool) -> (String, usize, bool) {
    let entry = |n: usize| format!("{n:>6}  {}\n", cut_chars(all[n - 1], MAX_LINE));
    let mut pieces: Vec<String> = Vec::new();
    let mut size = 0;
    let mut count = 0;
    let mut cut = false;
    let order: Vec<usize> = if keep_end {
        chosen.iter().rev().copied().collect()
    } else {
        chosen.to_vec()
    };
    let mut taken = Vec::new();
    for n in order {
        let e = entry(n);
        if size + e.len() > MAX_OUTPUT_BYTES {
            cut = true;
            break;
        }
        size += e.len();
        count += 1;
        taken.push((n, e));
    }
    taken.sort_by_key(|(n, _)| *n);
    let mut prev = None;
    for (n, e) in taken {
        if gaps {
            let skipped = n - prev.map_or(1, |p: usize| p + 1);
            if skipped > 0 {
                pieces.push(format!("     …  {skipped} lines left out\n"));
            }
        }
        pieces.push(e);
        prev = Some(n);
    }
    (pieces.concat(), count, cut)
}

/// Lines that explain a failure, in the words of the common build tools: rustc and cargo,
/// npm and jest, pytest and Python tracebacks, Maven and Gradle, compilers, shells.
/// Non-zero counts: `2 failed`, `Failures: 1`, `1 error` (an error line, and what a zero-count
/// match on the same line does not cancel).
const NONZERO_COUNTS: [&str; 2] = [
    r"(?i)\b[1-9]\d* (failed|failures?|errors?)\b",
    r"(?i)\b(failed|failures?|errors?)\s*[:=]\s*[1-9]",
];

static ERROR_PATTERNS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(NONZERO_COUNTS.into_iter().chain([
        // `error: …`, `error[E0425]: …`, `fatal: …`, `Error: …` at the start of a line.
        r"(?i)^\s*(error|fatal)(\[[a-z]*\d+\])?\s*:",
        // A compiler's `file:3:5: error: …`, tsc's `file(12,5): error TS2322: …`.
        r"(?i)[:)]\s*(error|fatal)( [a-z]+\d+)?:\s",
        // Log levels and Maven's `[ERROR]`.
        r"\b(ERROR|FATAL|CRITICAL)\b",
        r"(?i)\bpanicked at\b",
        r"(?i)^\s*traceback \(most recent call last\)",
        // Exceptions: `AssertionError: …`, `java.lang.IllegalStateException: …`.
        r"^\s*([\w$]+\.)*\w*(Error|Exception)(:|$)",
        // pytest's assertion detail and summary.
        r"^E\s{2,}\S",
        r"^(FAILED|FAIL)\b",
        r"\.\.\. FAILED\s*$",
        r"(?i)\bnpm (ERR!|error)",
        r"(?i)\bBUILD (FAILURE|FAILED)\b",
        r"(?i)\bcould not compile\b",
        r"(?i)^\s*failures:\s*$",
        r"(?i)\btest result: FAILED",
        r"(?i)\bcommand not found\b",
        r"(?i)\bno such file or directory\b",
        r"(?i)\b(exit(ed)?( with)? (code|status)|returned non-zero exit status)\s*[1-9]",
        r"(?i)\bassertion\w* failed\b",
    ]))
    .expect("the error patterns compile")
});

/// Counts of nothing (`0 errors`, `error: 0`, `Failures: 0`), which match the patterns above
/// through their words but say that nothing failed.
static ZERO_COUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b0 (failed|failures?|errors?)\b|\b(failed|failures?|errors?)\s*[:=]?\s*0\b")
        .expect("the zero-count pattern compiles")
});
static NONZERO_COUNT: LazyLock<RegexSet> =
    LazyLock::new(|| RegexSet::new(NONZERO_COUNTS).expect("the count patterns compile"));

/// Whether a log line explains a failure. Words inside other words do not count
/// (`Compiling thiserror`, `-Werror`), nor do counts of zero (`0 errors`, `error: 0`).
pub(crate) fn looks_like_error(line: &str) -> bool {
    ERROR_PATTERNS.is_match(line) && (NONZERO_COUNT.is_match(line) || !ZERO_COUNT.is_match(line))
}

#[cfg(test)]
mod tests {
    use super::looks_like_error;

    #[test]
    fn errors_are_told_from_words_that_contain_them_and_zero_counts() {
        for yes in [
            "error[E0425]: cannot find value `x` in this scope",
            "error: could not compile `app` (lib) due to 1 previous error",
            "thread 'main' panicked at src/main.rs:2:5:",
            "test tests::it_works ... FAILED",
            "npm ERR! code ELIFECYCLE",
            "npm error Missing script: \"build\"",
            "FAILED tests/test_app.py::test_add - assert 3 == 4",
            "E       assert 3 == 4",
            "Traceback (most recent call last):",
            "ModuleNotFoundError: No module named 'requests'",
            "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin",
            "[INFO] BUILD FAILURE",
            "Tests run: 4, Failures: 1, Errors: 0, Skipped: 0",
            "./deploy.sh: line 3: kubectl: command not found",
            "Tests:       1 failed, 3 passed, 4 total",
            "src/index.ts(12,5): error TS2322: Type 'string' is not assignable to type 'number'.",
            "ledger.c:3:5: error: expected ';' before 'return'",
        ] {
            assert!(looks_like_error(yes), "{yes}");
        }
        for no in [
            "   Compiling thiserror v1.0.69",
            "   Compiling error-chain v0.12.4",
            "cc -Wall -Werror -o app main.c",
            "Finished with 0 errors and 0 warnings",
            "error: 0",
            "Tests run: 4, Failures: 0, Errors: 0, Skipped: 0",
            "test result: ok. 12 passed; 0 failed; 0 ignored",
            "found 0 vulnerabilities",
            "warning: unused variable: `x`",
            "   Downloaded anyhow v1.0.86",
            "running 12 tests",
        ] {
            assert!(!looks_like_error(no), "{no}");
        }
    }
}
