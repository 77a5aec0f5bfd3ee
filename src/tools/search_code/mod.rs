//! `search_code`: ripgrep's crates over the checkouts — the committed tree of the checked-out
//! commit or of a `ref` (`tree.rs`: files git's index vouches for are read from disk, the rest
//! from the object store), or, with `working_tree: true`, the working tree (gitignore-aware,
//! parallel walk).
//!
//! Results are deterministic whatever the walk order: every file is searched, and only the
//! first `limit` matches in (repo, path, line) order are kept. Memory stays bounded because
//! the collector drops whole files that sort after the first `limit` matches as it goes.

mod collect;
mod tree;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder};
use ignore::overrides::{Override, OverrideBuilder};
use ignore::{WalkBuilder, WalkState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::limits::{self, SearchBudget};
use super::source::{Checkout, RepoRef};
use super::{Context, Error, Kind, Result, Tool, text};
use collect::{Collector, FileSink};

/// Matches returned when the caller gives no `limit`.
const DEFAULT_LIMIT: usize = 50;
/// The most matches one call may ask for.
const MAX_LIMIT: usize = 500;
/// The most context lines before and after each match.
const MAX_CONTEXT: usize = 10;
/// Longer lines are cut (minified files would otherwise fill the answer with one line).
const MAX_LINE_BYTES: usize = 400;
/// Total line text (matches and context) one answer may carry.
const MAX_RESULT_BYTES: usize = 100 * 1024;

/// Arguments of `search_code`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Text to find, or a regex with `regex: true` (Rust syntax, as ripgrep), line by line.
    pub query: String,
    /// Repository name (default: every cloned repository in scope).
    #[serde(default)]
    pub repo: Option<String>,
    /// `query` is a regular expression.
    #[serde(default)]
    pub regex: bool,
    /// Match case exactly (true) or not (false); default: smart case.
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    /// Only files matching these globs (`*.rs`, `src/**`).
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "Vec<String>")]
    pub include: Vec<String>,
    /// Skip files matching these globs (`vendor/**`).
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<String>,
    /// Context lines around each match, 0-10 (default 0).
    #[serde(default)]
    #[schemars(range(max = 10))]
    pub context: Option<u32>,
    /// Search this branch or commit's tree instead of the checked-out commit's (`main~3`
    /// works; a branch the checkout lacks is fetched).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// Search the files on disk instead (local changes, untracked files; .gitignore
    /// honoured). Not with `ref`.
    #[serde(default)]
    pub working_tree: bool,
    /// Most matching lines returned, 1-500 (default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

/// The answer of `search_code`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchResult {
    /// The files with matching lines shown, by repository and path.
    pub files: Vec<FileMatches>,
    /// Every matching line found, including those not shown.
    pub total_matches: u64,
    /// Files with at least one matching line.
    pub files_with_matches: u64,
    /// Matching lines shown in `files`.
    pub shown_matches: u64,
    /// True when `files` does not show every match.
    pub truncated: bool,
    /// Why the answer is incomplete or empty, and what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The repositories searched, and at which tree.
    pub searched: Vec<Searched>,
    /// Repositories of the environment that could not be searched, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// One file's matching lines, with their context.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileMatches {
    pub repo: String,
    /// Path inside the repository, `/`-separated.
    pub path: String,
    /// Matching lines and the context around them, by line number; context windows that
    /// touch or overlap are merged, so each line appears once.
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Line {
    /// 1-based line number.
    pub line: u64,
    /// The line without its terminator; cut at 400 bytes.
    pub text: String,
    /// A context line (not a match).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub context: bool,
    /// `text` was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
}

/// A match with its own context window, as the searcher reports it (before merging).
#[derive(Debug, Clone)]
pub(crate) struct Match {
    pub line: u64,
    pub text: String,
    pub line_truncated: bool,
    pub before: Vec<ContextLine>,
    pub after: Vec<ContextLine>,
}

#[derive(Debug, Clone)]
pub(crate) struct ContextLine {
    pub line: u64,
    pub text: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Searched {
    pub repo: String,
    /// `commit` (the default), or `working_tree` when asked for.
    pub source: &'static str,
    /// The ref as given.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The commit whose tree was searched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Skipped {
    pub repo: String,
    pub reason: String,
}

/// The header (counts, what was searched), then each file's path and its lines as ripgrep
/// prints them: `12:` a match, `13-` context, `--` between windows that do not touch.
fn render(o: &SearchResult) -> String {
    let mut t = format!(
        "{} in {}",
        text::count(o.total_matches, "match", "matches"),
        text::count(o.files_with_matches, "file", "files")
    );
    if o.truncated {
        let _ = write!(t, ", {} shown", o.shown_matches);
    }
    let searched: Vec<String> = o
        .searched
        .iter()
        .map(
            |s| match (&s.reference, s.commit.as_deref().map(text::short_id)) {
                (Some(r), Some(c)) if r != s.commit.as_deref().unwrap_or_default() => {
                    format!("{} ({} {c} at ref {r})", s.repo, s.source)
                }
                (_, Some(c)) => format!("{} ({} {c})", s.repo, s.source),
                _ => format!("{} ({})", s.repo, s.source),
            },
        )
        .collect();
    if !searched.is_empty() {
        let _ = write!(t, "; searched {}", searched.join(", "));
    }
    t.push('\n');
    for s in &o.skipped {
        let _ = writeln!(t, "skipped {}: {}", s.repo, s.reason);
    }
    let many_repos = o.searched.len() > 1;
    let mut repo = None;
    for f in &o.files {
        if many_repos && repo != Some(&f.repo) {
            let _ = writeln!(t, "== {} ==", f.repo);
            repo = Some(&f.repo);
        }
        t.push_str(&f.path);
        t.push('\n');
        let mut prev: Option<u64> = None;
        for l in &f.lines {
            if prev.is_some_and(|p| l.line > p + 1) {
                t.push_str("--\n");
            }
            let mark = if l.context { '-' } else { ':' };
            let _ = writeln!(t, "{}{mark}{}", l.line, l.text);
            prev = Some(l.line);
        }
    }
    text::footer(&mut t, None, o.note.as_deref());
    t
}

pub struct SearchCode;

impl Tool for SearchCode {
    const NAME: &'static str = "search_code";
    const DESCRIPTION: &'static str = "Search the committed files (checked-out commit or `ref`; `working_tree: true` for the files on disk) of the cloned repositories, ripgrep-style: literal or `regex`, smart case, `include`/`exclude` globs, `context`. Grouped by file; binary files skipped.";
    type Args = SearchArgs;
    type Output = SearchResult;

    fn run(ctx: &Context, args: SearchArgs) -> Result<SearchResult> {
        search(ctx, &args)
    }

    fn render(out: &SearchResult) -> String {
        render(out)
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::input(message)
}

/// The validated shape of one search, shared by every repository it runs on.
struct Plan {
    matcher: RegexMatcher,
    searcher: Searcher,
    context: usize,
    limit: usize,
}

fn plan(args: &SearchArgs) -> Result<Plan> {
    if args.query.is_empty() {
        return Err(invalid(
            "`query` is empty; give the text or regex to search for",
        ));
    }
    limits::check_query(&args.query)?;
    let limit = match args.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as u32).contains(&n) => n as usize,
        Some(n) => {
            return Err(invalid(format!(
                "`limit` is {n}; it must be between 1 and {MAX_LIMIT}"
            )));
        }
    };
    let context = match args.context {
        None => 0,
        Some(n) if n as usize <= MAX_CONTEXT => n as usize,
        Some(n) => {
            return Err(invalid(format!(
                "`context` is {n}; it must be between 0 and {MAX_CONTEXT}"
            )));
        }
    };
    let mut builder = RegexMatcherBuilder::new();
    builder
        .fixed_strings(!args.regex)
        // Lets the matcher search whole buffers for candidate lines, as ripgrep does.
        .line_terminator(Some(b'\n'));
    limits::bound_matcher(&mut builder);
    match args.case_sensitive {
        None => builder.case_smart(true),
        Some(sensitive) => builder.case_insensitive(!sensitive),
    };
    let matcher = builder.build(&args.query).map_err(|e| {
        limits::regex_too_big(&args.query, args.regex).unwrap_or_else(|| invalid(format!(
            "`query` is not a valid regex: {e}. Fix the pattern, or set `regex: false` to search for the text literally"
        )))
    })?;
    let searcher = SearcherBuilder::new()
        .line_number(true)
        .before_context(context)
        .after_context(context)
        .binary_detection(BinaryDetection::quit(0))
        .heap_limit(Some(limits::MAX_LINE_BUFFER))
        .build();
    Ok(Plan {
        matcher,
        searcher,
        context,
        limit,
    })
}

fn overrides(root: &Path, args: &SearchArgs) -> Result<Override> {
    let mut builder = OverrideBuilder::new(root);
    let globs = args
        .include
        .iter()
        .map(|g| (g.clone(), "include"))
        .chain(args.exclude.iter().map(|g| (format!("!{g}"), "exclude")));
    for (glob, field) in globs {
        if glob.trim_start_matches('!').is_empty() {
            return Err(invalid(format!("`{field}` holds an empty glob")));
        }
        builder
            .add(&glob)
            .map_err(|e| invalid(format!("`{field}` glob `{glob}` is invalid: {e}")))?;
    }
    builder
        .build()
        .map_err(|e| invalid(format!("invalid `include`/`exclude` globs: {e}")))
}

fn search(ctx: &Context, args: &SearchArgs) -> Result<SearchResult> {
    let plan = plan(args)?;
    if args.working_tree && args.reference.is_some() {
        return Err(invalid(
            "`working_tree` and `ref` exclude each other: the working tree holds one version of the files; drop `ref` to search it, or `working_tree` to search that commit's files",
        ));
    }
    let mut repos = Vec::new();
    let mut skipped = Vec::new();
    match &args.repo {
        Some(name) => repos.push(ctx.cloned(name)?),
        None => {
            for spec in &ctx.env.spec.repos {
                let name = spec.name();
                match ctx.cloned(&name) {
                    Ok(r) => repos.push(r),
                    // Out-of-scope repositories are not shown to the agent at all.
                    Err(e) if e.kind == Kind::OutOfScope => {}
                    Err(e) => skipped.push(Skipped {
                        repo: name,
                        reason: e.message,
                    }),
                }
            }
        }
    }

    let collector = Mutex::new(Collector::new(plan.limit));
    let budget = SearchBudget::new(&ctx.limits);
    let mut searched = Vec::new();
    for repo in &repos {
        if budget.is_cut() {
            break;
        }
        let ov = overrides(&repo.dir, args)?;
        if args.working_tree {
            search_working_tree(&plan, repo, &ov, &collector, &budget);
            searched.push(Searched {
                repo: repo.name.clone(),
                source: "working_tree",
                reference: None,
                commit: None,
            });
            continue;
        }
        let reference = args.reference.as_deref();
        match search_commit(ctx, &plan, repo, reference, &ov, &collector, &budget) {
            Ok(commit) => searched.push(Searched {
                repo: repo.name.clone(),
                source: "commit",
                reference: reference.map(str::to_string),
                commit: Some(commit),
            }),
            // Searching one named repository: its error is the answer.
            Err(e) if args.repo.is_some() => return Err(e),
            Err(e) => skipped.push(Skipped {
                repo: repo.name.clone(),
                reason: e.message,
            }),
        }
    }

    let collector = collector.into_inner().expect("collector lock");
    let mut result = collector.finish(searched, skipped, args);
    budget.annotate(&mut result.truncated, &mut result.note);
    Ok(result)
}

fn rel_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        s.into_owned()
    } else {
        s.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

fn search_working_tree(
    plan: &Plan,
    repo: &RepoRef<'_>,
    ov: &Override,
    collector: &Mutex<Collector>,
    budget: &SearchBudget,
) {
    let mut walk = WalkBuilder::new(&repo.dir);
    walk.hidden(false)
        // Only the repository's own ignore files: a workdir inside another project must not
        // inherit that project's .gitignore (which often ignores the workdir itself).
        .parents(false)
        .git_global(false)
        .follow_links(false)
        .overrides(ov.clone())
        .filter_entry(|e| e.file_name() != ".git");
    // The searcher is not Sync: each walker thread gets its own copy.
    let (matcher, context, limit) = (&plan.matcher, plan.context, plan.limit);
    walk.build_parallel().run(|| {
        let mut searcher = plan.searcher.clone();
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            // Symlinks are never followed: one could point outside the repository.
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&repo.dir) else {
                return WalkState::Continue;
            };
            let size = entry.metadata().map_or(0, |m| m.len());
            if !budget.file(size) {
                return WalkState::Quit;
            }
            let mut sink = FileSink::new(context, limit);
            if searcher
                .search_path(matcher, entry.path(), &mut sink)
                .is_ok()
            {
                sink.deliver(collector, &repo.name, rel_path(rel));
            } else {
                budget.skipped();
            }
            WalkState::Continue
        })
    });
}

/// Search the tree of `reference` (scope-checked; the checked-out commit when `None`);
/// returns the commit id searched.
fn search_commit(
    ctx: &Context,
    plan: &Plan,
    repo: &RepoRef<'_>,
    reference: Option<&str>,
    ov: &Override,
    collector: &Mutex<Collector>,
    budget: &SearchBudget,
) -> Result<String> {
    let internal = |e: git2::Error| {
        Error::failure(format!(
            "reading repository `{}`: {}",
            repo.name,
            e.message()
        ))
        .with_source(e)
    };
    let git = ctx.repos.take(&repo.dir).map_err(internal)?;
    let checkout = Checkout::new(ctx, repo.clone(), git);
    let oid = checkout.resolve(reference)?.commit;
    let git = &*checkout.git;
    let tree = git
        .find_object(oid, None)
        .and_then(|o| o.peel_to_tree())
        .map_err(|e| {
            Error::not_found(format!(
                "`{}` in `{}` does not name a commit whose files are available locally",
                reference.unwrap_or("HEAD"),
                repo.name
            ))
            .with_source(e)
        })?;
    tree::search(plan, repo, git, &tree, ov, collector, budget);
    Ok(oid.to_string())
}
