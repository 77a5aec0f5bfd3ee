//! `search_code`: ripgrep's crates over the checkouts — the committed tree of the checked-out
//! commit or of a `ref` (`tree.rs`: files git's index vouches for are read from disk, the rest
//! from the object store), or, with `working_tree: true`, the working tree (gitignore-aware,
//! parallel walk) — and over every other in-scope repository of the spec's providers, through a
//! shallow clone in the clone cache (`cache.rs`).
//!
//! A search without `repo` is bounded: at most `limits.search_clones` new clones and the fetch
//! budget's bytes and time for the clone cache, the search budget's bytes and time for reading
//! files, `limit` matches and 100 KB of lines in the answer. Past any of them it answers with
//! what it searched, names what it did not (`not_searched`) and gives a `next_cursor` that
//! continues with the rest: never a silent partial result.
//!
//! Results are deterministic whatever the walk order: every file is searched, and only the
//! first `limit` matches in (repo, path, line) order are kept. Memory stays bounded because
//! the collector drops whole files that sort after the first `limit` matches as it goes.

mod cache;
mod collect;
mod tree;

pub(crate) use cache::is_cached;

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
use super::source::{Checkout, RepoRef, check_branch, looks_like_commit_id};
use super::{Context, Error, Kind, Result, Tool, list_repositories, paging, text};
use cache::{CloneBudget, NotCloned};
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
    /// Repository name (default: every repository in scope, uncloned ones through the clone
    /// cache).
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
    /// `next_cursor` of the previous answer (same other arguments): search the repositories
    /// it did not reach.
    #[serde(default)]
    pub cursor: Option<String>,
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
    /// In-scope repositories this call did not reach (the first 100 named): pass
    /// `next_cursor` to search them, or name one `repo`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_searched: Vec<String>,
    /// How many repositories `not_searched` stands for (it names 100 at most).
    #[serde(skip_serializing_if = "is_zero")]
    pub not_searched_count: u64,
    /// Pass as `cursor` (same other arguments) to search the repositories not reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// `commit` (the default), `working_tree` when asked for, or `clone_cache` (a repository
    /// without a checkout: its branch's tree in the clone cache).
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
        // Without context lines each line stands alone: no `--` between runs, and no
        // indentation, which only means something next to its neighbours (the JSON keeps
        // the line as it is).
        let context = f.lines.iter().any(|l| l.context);
        let mut prev: Option<u64> = None;
        for l in &f.lines {
            if context && prev.is_some_and(|p| l.line > p + 1) {
                t.push_str("--\n");
            }
            let mark = if l.context { '-' } else { ':' };
            let line = if context {
                &l.text
            } else {
                l.text.trim_start()
            };
            let _ = writeln!(t, "{}{mark}{line}", l.line);
            prev = Some(l.line);
        }
    }
    if !o.not_searched.is_empty() {
        let more = o.not_searched_count - o.not_searched.len() as u64;
        let _ = write!(
            t,
            "not searched ({}): {}",
            o.not_searched_count,
            o.not_searched.join(", ")
        );
        if more > 0 {
            let _ = write!(t, " and {more} more");
        }
        t.push('\n');
    }
    text::footer(&mut t, o.next_cursor.as_deref(), o.note.as_deref());
    t
}

pub struct SearchCode;

impl Tool for SearchCode {
    const NAME: &'static str = "search_code";
    const HEAVY: bool = true;
    const DESCRIPTION: &'static str = "Search the committed files (checked-out commit or `ref`; `working_tree: true` for the files on disk) of every in-scope repository (uncloned ones via a clone cache; `next_cursor` continues), ripgrep-style: literal or `regex`, smart case, `include`/`exclude` globs, `context`. Grouped by file.";
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
    // Globs are the caller's mistake, not one repository's: refused before anything is read.
    overrides(&ctx.workdir, args)?;
    let collector = Mutex::new(Collector::new(plan.limit));
    let budget = SearchBudget::new(&ctx.limits);
    let mut searched = Vec::new();
    let mut skipped = Vec::new();

    if let Some(name) = &args.repo {
        if args.cursor.is_some() {
            return Err(invalid(
                "`cursor` continues a search over every repository in scope; drop it when naming `repo`",
            ));
        }
        let repo = ctx.repo(name)?;
        if repo.is_cloned() || repo.spec.provider.is_none() {
            let repo = ctx.cloned(name)?;
            searched.push(search_checkout(
                ctx, &plan, &repo, args, &collector, &budget,
            )?);
        } else {
            let cache = cache::open(ctx)?;
            let mut clones = CloneBudget::new(1, crate::git::fetch::Budget::from_env()?);
            let label = repo.name.clone();
            match search_cached(
                ctx,
                &cache,
                &plan,
                &repo,
                &label,
                args,
                &collector,
                &budget,
                &mut clones,
            ) {
                Ok(s) => searched.push(s),
                Err(NotCloned::Failed(e)) => return Err(e),
                Err(NotCloned::Budget) => return Err(clone_budget_spent(name)),
            }
        }
        let collector = collector.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut result = collector.finish(searched, skipped, args);
        budget.annotate(&mut result.truncated, &mut result.note);
        return Ok(result);
    }

    let resume = paging::decode_bound(CURSOR_KIND, &binding(args), args.cursor.as_deref())?;
    // The checkouts in the spec's order, then every other in-scope repository of every
    // provider by provider and full name: one order, which the cursor resumes in.
    let mut items: Vec<Item<'_>> = Vec::new();
    let mut provisioned = Vec::new();
    for (n, spec) in ctx.env.spec.repos.iter().enumerate() {
        let name = spec.name();
        let repo = match ctx.repo(&name) {
            Ok(r) => r,
            // Out-of-scope repositories are not shown to the agent at all.
            Err(e) if e.kind == Kind::OutOfScope => continue,
            Err(e) => {
                if resume.is_none() {
                    skipped.push(Skipped {
                        repo: name,
                        reason: e.message,
                    });
                }
                continue;
            }
        };
        if repo.is_cloned() {
            if let Some(p) = &spec.provider {
                provisioned.push((p.clone(), name.to_lowercase()));
            }
            items.push(Item {
                key: format!("0:{n:05}"),
                label: name,
                what: What::Checkout(repo),
            });
        } else if spec.provider.is_none() && resume.is_none() {
            skipped.push(Skipped {
                repo: name,
                reason: repo_not_cloned(ctx, &spec.name()),
            });
        }
        // Not cloned but with a provider: reached through the clone cache, as listed below.
    }
    let mut elsewhere: Vec<Item<'_>> = Vec::new();
    for provider in ctx.env.spec.providers.keys() {
        match list_repositories::in_scope(ctx, provider) {
            Ok((repos, complete)) => {
                if !complete && resume.is_none() {
                    skipped.push(Skipped {
                        repo: format!("(provider `{provider}`)"),
                        reason: "its listing is longer than one search reads (2000 repositories); those past it are not searched: name one `repo`, or narrow scope.repositories".into(),
                    });
                }
                elsewhere.extend(
                    repos
                        .into_iter()
                        .filter(|(slug, _)| {
                            !provisioned.contains(&(provider.clone(), slug.to_lowercase()))
                        })
                        .map(|(slug, full_name)| Item {
                            key: format!("1:{provider}/{full_name}"),
                            label: full_name,
                            what: What::Cached {
                                provider: provider.clone(),
                                slug,
                            },
                        }),
                );
            }
            Err(e) => skipped.push(Skipped {
                repo: format!("(provider `{provider}`)"),
                reason: format!("its repositories could not be listed: {}", e.message),
            }),
        }
    }
    elsewhere.sort_by(|a, b| a.key.cmp(&b.key));
    // Only checkouts have files on disk.
    let without_files = if args.working_tree {
        std::mem::take(&mut elsewhere)
    } else {
        Vec::new()
    };
    items.extend(elsewhere);
    if let Some(after) = &resume {
        items.retain(|it| it.key >= *after);
    }

    let mut stopped_at = None;
    let mut why_stopped = None;
    let mut cache = None;
    let mut clones = CloneBudget::new(
        ctx.limits.search_clones,
        crate::git::fetch::Budget::from_env()?,
    );
    for (i, it) in items.iter().enumerate() {
        if budget.is_cut() {
            stopped_at = Some(i);
            break;
        }
        let outcome = match &it.what {
            What::Checkout(repo) => search_checkout(ctx, &plan, repo, args, &collector, &budget)
                .map_err(NotCloned::Failed),
            What::Cached { provider, slug } => {
                let cache = match &cache {
                    Some(c) => c,
                    None => cache.insert(cache::open(ctx)?),
                };
                // By its provider, as listed: a name lookup could find the slug on another
                // provider too and refuse it as ambiguous.
                ctx.on_provider(provider, slug)
                    .map_err(NotCloned::Failed)
                    .and_then(|repo| {
                        search_cached(
                            ctx,
                            cache,
                            &plan,
                            &repo,
                            &it.label,
                            args,
                            &collector,
                            &budget,
                            &mut clones,
                        )
                    })
            }
        };
        match outcome {
            Ok(s) => searched.push(s),
            Err(NotCloned::Failed(e)) => skipped.push(Skipped {
                repo: it.label.clone(),
                reason: e.message,
            }),
            // Alone over the budget: calling again would stop at it again, so it is skipped.
            Err(NotCloned::Budget) if i == 0 => skipped.push(Skipped {
                repo: it.label.clone(),
                reason: format!(
                    "its clone does not fit one call's fetch budget ({} MB, {} s); raise {} and {}, or list it in `repos:` and provision it",
                    clones.budget.bytes >> 20,
                    clones.budget.time.as_secs(),
                    crate::git::fetch::BUDGET_MB_VAR,
                    crate::git::fetch::BUDGET_SECS_VAR
                ),
            }),
            Err(NotCloned::Budget) => {
                stopped_at = Some(i);
                why_stopped = Some(if clones.clones_left == 0 {
                    format!(
                        "this call made its {} new clones into the clone cache ({})",
                        clones.new_clones,
                        crate::tools::limits::SEARCH_MAX_CLONES_VAR
                    )
                } else {
                    format!(
                        "this call's clones reached its fetch budget ({}, at most {} MB in {} s: {} and {})",
                        mb(clones.received),
                        clones.budget.bytes >> 20,
                        clones.budget.time.as_secs(),
                        crate::git::fetch::BUDGET_MB_VAR,
                        crate::git::fetch::BUDGET_SECS_VAR
                    )
                });
                break;
            }
        }
        if budget.is_cut() {
            if i == 0 {
                // Alone over the search budget: searching it again would cut it again, so
                // its partial answer stands (the note says so) and the cursor moves on.
                stopped_at = Some(i + 1).filter(|&n| n < items.len());
            } else {
                // Cut inside this repository: the next call searches it again, whole.
                stopped_at = Some(i);
                searched.pop_if(|s| s.repo == it.label);
            }
            break;
        }
    }

    let left: Vec<&Item<'_>> = match stopped_at {
        Some(i) => items[i..].iter().collect(),
        None => Vec::new(),
    };
    let nothing_yet = searched.is_empty() && skipped.is_empty();
    let collector = collector.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut result = collector.finish(searched, skipped, args);
    if nothing_yet && !(left.is_empty() && without_files.is_empty()) {
        // Not "nothing in scope": the notes below say what is left and how to reach it.
        result.note = None;
    }
    budget.annotate(&mut result.truncated, &mut result.note);
    let mut pending = Vec::new();
    if let Some(first) = left.first() {
        result.next_cursor =
            paging::encode_bound(CURSOR_KIND, &binding(args), Some(first.key.clone()));
        pending.push(format!(
            "{} in scope not searched: {}; pass `next_cursor` as `cursor` (same other arguments) to search them, or name one `repo`",
            text::count(left.len() as u64, "repository", "repositories"),
            why_stopped.unwrap_or_else(|| "the search budget is spent".to_string())
        ));
    }
    if !without_files.is_empty() {
        pending.push(format!(
            "`working_tree` searches the checkouts only: {} in scope without one not searched; drop `working_tree` to search their committed files",
            text::count(without_files.len() as u64, "repository", "repositories")
        ));
    }
    let all_left: Vec<&Item<'_>> = left.into_iter().chain(&without_files).collect();
    result.not_searched = all_left
        .iter()
        .take(MAX_NOT_SEARCHED)
        .map(|it| it.label.clone())
        .collect();
    result.not_searched_count = all_left.len() as u64;
    if !pending.is_empty() {
        let pending = pending.join(". ");
        result.note = Some(match result.note.take() {
            Some(n) => format!("{pending}. {n}"),
            None => pending,
        });
    }
    Ok(result)
}

/// One repository a search without `repo` covers, and where its files are.
struct Item<'a> {
    /// Its place in the search's order (what a cursor holds).
    key: String,
    /// How matches name it: a checkout by its spec name, others by `owner/slug` (a bare slug
    /// may be on two providers).
    label: String,
    what: What<'a>,
}

enum What<'a> {
    Checkout(RepoRef<'a>),
    /// Repository `slug` of `provider`, through the clone cache.
    Cached {
        provider: String,
        slug: String,
    },
}

fn repo_not_cloned(ctx: &Context, name: &str) -> String {
    ctx.cloned(name)
        .err()
        .map(|e| e.message)
        .unwrap_or_default()
}

/// Names listed in `not_searched` at most.
const MAX_NOT_SEARCHED: usize = 100;
const CURSOR_KIND: &str = "search.v1";

fn mb(bytes: u64) -> String {
    format!("{:.1} MB received", bytes as f64 / (1024.0 * 1024.0))
}

fn clone_budget_spent(name: &str) -> Error {
    Error::unavailable(format!(
        "`{name}` could not be cloned into the clone cache within this call's fetch budget"
    ))
    .with_hint(format!(
        "raise {} or {} (megabytes and seconds per call), or provision the repository",
        crate::git::fetch::BUDGET_MB_VAR,
        crate::git::fetch::BUDGET_SECS_VAR
    ))
}

/// What a cursor is bound to: the search itself, so it cannot be replayed for another.
fn binding(args: &SearchArgs) -> String {
    use sha2::Digest;
    let key = serde_json::json!([
        args.query,
        args.regex,
        args.case_sensitive,
        args.include,
        args.exclude,
        args.reference,
        args.working_tree,
    ]);
    let digest = sha2::Sha256::digest(key.to_string().as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Search one checkout: its committed tree (the checked-out commit or `ref`), or its working
/// tree.
fn search_checkout(
    ctx: &Context,
    plan: &Plan,
    repo: &RepoRef<'_>,
    args: &SearchArgs,
    collector: &Mutex<Collector>,
    budget: &SearchBudget,
) -> Result<Searched> {
    let ov = overrides(&repo.dir, args)?;
    if args.working_tree {
        search_working_tree(plan, repo, &ov, collector, budget);
        return Ok(Searched {
            repo: repo.name.clone(),
            source: "working_tree",
            reference: None,
            commit: None,
        });
    }
    let reference = args.reference.as_deref();
    let commit = search_commit(ctx, plan, repo, reference, &ov, collector, budget)?;
    Ok(Searched {
        repo: repo.name.clone(),
        source: "commit",
        reference: reference.map(str::to_string),
        commit: Some(commit),
    })
}

/// Search a repository without a checkout at its branch (`ref`, or the default branch) in the
/// clone cache, cloning or refreshing it first. `label` is how matches name it.
#[allow(clippy::too_many_arguments)]
fn search_cached(
    ctx: &Context,
    cache: &crate::git::cache::Cache,
    plan: &Plan,
    repo: &RepoRef<'_>,
    label: &str,
    args: &SearchArgs,
    collector: &Mutex<Collector>,
    budget: &SearchBudget,
    clones: &mut CloneBudget,
) -> std::result::Result<Searched, NotCloned> {
    if args.working_tree {
        return Err(NotCloned::Failed(Error::new(
            Kind::NotCloned,
            format!(
                "`{label}` has no checkout, so no files on disk: drop `working_tree` to search its committed files"
            ),
        )));
    }
    if let Some(r) = &args.reference {
        // A clone in the cache holds one branch: `ref` must name one, in scope.
        if looks_like_commit_id(r) || r.contains(['~', '^']) {
            return Err(NotCloned::Failed(invalid(format!(
                "`{label}` has no checkout: it is searched at a branch, so `ref` must be a branch name, not `{r}`"
            ))));
        }
        check_branch(&ctx.env.scope, r)?;
    }
    // `ref`, else the branch the spec pins for a `repos:` entry, else the default branch.
    let branch = args.reference.as_deref().or(repo.spec.branch.as_deref());
    let cached = cache::clone(ctx, cache, repo, branch, clones)?;
    let git = cached.mirror.repository();
    let tree = git
        .find_commit(cached.tip)
        .and_then(|c| c.tree())
        .map_err(|e| {
            // Unreadable: forget it, so that the next search clones it anew.
            cached.mirror.invalidate();
            Error::failure(format!(
                "the clone of `{label}` in the clone cache is unreadable ({}); it is rebuilt on the next search",
                e.message()
            ))
            .with_source(e)
        })?;
    let ov = overrides(cached.mirror.path(), args)?;
    tree::search(
        plan,
        label,
        cached.mirror.path(),
        git,
        &tree,
        &ov,
        collector,
        budget,
    );
    Ok(Searched {
        repo: label.to_string(),
        source: "clone_cache",
        reference: Some(cached.branch),
        commit: Some(cached.tip.to_string()),
    })
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
    tree::search(
        plan, &repo.name, &repo.dir, git, &tree, ov, collector, budget,
    );
    Ok(oid.to_string())
}
