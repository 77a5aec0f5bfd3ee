//! `search_code`: ripgrep's crates over the checkouts — the working tree (gitignore-aware,
//! parallel walk) or, when a `ref` is given, that commit's tree read from the object store.
//!
//! Results are deterministic whatever the walk order: every file is searched, and only the
//! first `limit` matches in (repo, path, line) order are kept. Memory stays bounded because
//! the collector drops whole files that sort after the first `limit` matches as it goes.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;

use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkMatch};
use ignore::overrides::{Override, OverrideBuilder};
use ignore::{WalkBuilder, WalkState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source::{Checkout, RepoRef};
use super::{Context, Error, Kind, Registered, ToolInfo, output_schema_of, parse_args, schema_of};

/// Matches returned when the caller gives no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// The most matches one call may ask for.
pub const MAX_LIMIT: usize = 500;
/// The most context lines before and after each match.
pub const MAX_CONTEXT: usize = 10;
/// Longer lines are cut (minified files would otherwise fill the answer with one line).
pub const MAX_LINE_BYTES: usize = 400;
/// Total line text (matches and context) one answer may carry.
pub const MAX_RESULT_BYTES: usize = 100 * 1024;

/// Arguments of `search_code`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// What to look for: a literal string, or a regular expression when `regex` is true
    /// (Rust regex syntax, as ripgrep). Matched line by line.
    pub query: String,
    /// The repository to search (as the environment names it). Default: every cloned
    /// repository in scope.
    #[serde(default)]
    pub repo: Option<String>,
    /// Treat `query` as a regular expression. Default false (literal).
    #[serde(default)]
    pub regex: bool,
    /// true: match case exactly; false: ignore case. Default: smart case (case-insensitive
    /// unless the query has an uppercase letter).
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    /// Only search files matching these globs (gitignore syntax, e.g. `*.rs`, `src/**`).
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "Vec<String>")]
    pub include: Vec<String>,
    /// Skip files and directories matching these globs (e.g. `*.min.js`, `vendor/**`).
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<String>,
    /// Lines of context before and after each match (0–10, default 0).
    #[serde(default)]
    #[schemars(range(max = 10))]
    pub context: Option<u32>,
    /// Search this branch or commit's tree instead of the checked-out working tree.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// The most matches to return (1–500, default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

/// The answer of `search_code`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchResult {
    /// Matching lines, ordered by repository, path and line number.
    pub matches: Vec<Match>,
    /// Every matching line found, including those not returned.
    pub total_matches: u64,
    /// Files with at least one matching line.
    pub files_with_matches: u64,
    /// True when `matches` does not hold every match.
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

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Match {
    pub repo: String,
    /// Path inside the repository, `/`-separated.
    pub path: String,
    /// 1-based line number.
    pub line: u64,
    /// The line, without its line terminator; cut at 400 bytes.
    pub text: String,
    /// Set when `text` was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub line_truncated: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<ContextLine>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<ContextLine>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ContextLine {
    pub line: u64,
    pub text: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Searched {
    pub repo: String,
    /// `working_tree`, or `commit` when a ref was given.
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

pub fn tools() -> Vec<Registered> {
    vec![Registered {
        info: ToolInfo {
            name: "search_code",
            description: "Search file contents in the cloned repositories (ripgrep semantics). \
                Literal by default, or a regex with `regex: true`; smart case unless \
                `case_sensitive` is set; `include`/`exclude` path globs; `context` lines; one \
                `repo` or every cloned repository in scope. Honours .gitignore and skips .git \
                and binary files. With `ref`, searches that branch or commit's tree instead of \
                the working tree. Returns at most `limit` matches (default 50, max 500) ordered \
                by repo, path and line, with `total_matches` and a note when truncated.",
            input_schema: schema_of::<SearchArgs>(),
            output_schema: output_schema_of::<SearchResult>(),
            default: true,
            api_only: false,
        },
        call: run,
    }]
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
    Error::new(Kind::Input, message)
}

fn run(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: SearchArgs = parse_args(args)?;
    let result = search(ctx, &args)?;
    Ok(serde_json::to_value(result).expect("search result serializes"))
}

/// The validated shape of one search, shared by every repository it runs on.
struct Plan {
    matcher: RegexMatcher,
    searcher: Searcher,
    context: usize,
    limit: usize,
}

fn plan(args: &SearchArgs) -> Result<Plan, Error> {
    if args.query.is_empty() {
        return Err(invalid(
            "`query` is empty; give the text or regex to search for",
        ));
    }
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
    match args.case_sensitive {
        None => builder.case_smart(true),
        Some(sensitive) => builder.case_insensitive(!sensitive),
    };
    let matcher = builder.build(&args.query).map_err(|e| {
        invalid(format!(
            "`query` is not a valid regex: {e}. Fix the pattern, or set `regex: false` to search for the text literally"
        ))
    })?;
    let searcher = SearcherBuilder::new()
        .line_number(true)
        .before_context(context)
        .after_context(context)
        .binary_detection(BinaryDetection::quit(0))
        .build();
    Ok(Plan {
        matcher,
        searcher,
        context,
        limit,
    })
}

fn overrides(root: &Path, args: &SearchArgs) -> Result<Override, Error> {
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

/// Run `search_code` (also used directly by tests and benchmarks).
pub fn search(ctx: &Context, args: &SearchArgs) -> Result<SearchResult, Error> {
    let plan = plan(args)?;
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
    let mut searched = Vec::new();
    for repo in &repos {
        let ov = overrides(&repo.dir, args)?;
        match &args.reference {
            None => {
                search_working_tree(&plan, repo, &ov, &collector);
                searched.push(Searched {
                    repo: repo.name.clone(),
                    source: "working_tree",
                    reference: None,
                    commit: None,
                });
            }
            Some(reference) => {
                match search_commit(ctx, &plan, repo, reference, &ov, &collector) {
                    Ok(commit) => searched.push(Searched {
                        repo: repo.name.clone(),
                        source: "commit",
                        reference: Some(reference.clone()),
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
        }
    }

    let collector = collector.into_inner().expect("collector lock");
    Ok(collector.finish(searched, skipped, args))
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
            let mut sink = FileSink::new(context, limit);
            if searcher
                .search_path(matcher, entry.path(), &mut sink)
                .is_ok()
            {
                sink.deliver(collector, &repo.name, rel_path(rel));
            }
            WalkState::Continue
        })
    });
}

/// Search the tree of `reference` (scope-checked); returns the commit id searched.
fn search_commit(
    ctx: &Context,
    plan: &Plan,
    repo: &RepoRef<'_>,
    reference: &str,
    ov: &Override,
    collector: &Mutex<Collector>,
) -> Result<String, Error> {
    let internal = |e: git2::Error| {
        Error::new(
            Kind::Failure,
            format!("reading repository `{}`: {}", repo.name, e.message()),
        )
        .with_source(e)
    };
    let git = ctx.repos.take(&repo.dir).map_err(internal)?;
    let checkout = Checkout::new(ctx, repo.clone(), git);
    let oid = checkout.resolve(Some(reference))?.commit;
    let git = &*checkout.git;
    let tree = git
        .find_object(oid, None)
        .and_then(|o| o.peel_to_tree())
        .map_err(|_| {
            Error::new(
                Kind::NotFound,
                format!(
                    "`{reference}` in `{}` does not name a commit whose files are available locally",
                    repo.name
                ),
            )
        })?;
    let mut searcher = plan.searcher.clone();
    let mut stack = vec![(String::new(), tree)];
    while let Some((prefix, tree)) = stack.pop() {
        for entry in tree.iter() {
            let name = String::from_utf8_lossy(entry.name_bytes());
            let path = format!("{prefix}{name}");
            match entry.kind() {
                Some(git2::ObjectType::Tree) => {
                    if ov.matched(&path, true).is_ignore() {
                        continue;
                    }
                    if let Ok(sub) = git.find_tree(entry.id()) {
                        stack.push((format!("{path}/"), sub));
                    }
                }
                // Symlinks (mode 120000) are skipped as in the working tree; submodules
                // (commits) have no content here.
                Some(git2::ObjectType::Blob) if entry.filemode() != 0o120000 => {
                    if ov.matched(&path, false).is_ignore() {
                        continue;
                    }
                    let Ok(blob) = git.find_blob(entry.id()) else {
                        continue;
                    };
                    if blob.is_binary() {
                        continue;
                    }
                    let mut sink = FileSink::new(plan.context, plan.limit);
                    if searcher
                        .search_slice(&plan.matcher, blob.content(), &mut sink)
                        .is_ok()
                    {
                        sink.deliver(collector, &repo.name, path);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(oid.to_string())
}

/// Cut a line to `MAX_LINE_BYTES` at a character boundary; true when it was cut.
fn line_text(bytes: &[u8]) -> (String, bool) {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX_LINE_BYTES {
        return (text.into_owned(), false);
    }
    let mut end = MAX_LINE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}…", &text[..end]), true)
}

/// Collects one file's matches with their full context. The searcher prints a line shared by
/// two matches' context windows once; here each match gets its own complete window.
struct FileSink {
    context: usize,
    keep: usize,
    count: u64,
    binary: bool,
    matches: Vec<Match>,
    /// The last `context` lines seen (matched or context), for the next match's `before`.
    recent: VecDeque<ContextLine>,
    /// Kept matches whose `after` window is still open.
    open: Vec<usize>,
}

impl FileSink {
    fn new(context: usize, keep: usize) -> Self {
        FileSink {
            context,
            keep,
            count: 0,
            binary: false,
            matches: Vec::new(),
            recent: VecDeque::new(),
            open: Vec::new(),
        }
    }

    fn line(&mut self, number: u64, bytes: &[u8], is_match: bool) {
        let ctx = self.context as u64;
        if ctx == 0 && (!is_match || self.matches.len() >= self.keep) {
            // Past the per-file limit without context: only the count matters.
            self.count += u64::from(is_match);
            return;
        }
        let (text, cut) = line_text(bytes);
        if ctx > 0 {
            let matches = &mut self.matches;
            self.open.retain(|&i| {
                let m = &mut matches[i];
                if number > m.line && number <= m.line + ctx {
                    m.after.push(ContextLine {
                        line: number,
                        text: text.clone(),
                    });
                }
                number < m.line + ctx
            });
        }
        if is_match {
            self.count += 1;
            if self.matches.len() < self.keep {
                let before = self
                    .recent
                    .iter()
                    .filter(|l| l.line < number && l.line + ctx >= number)
                    .cloned()
                    .collect();
                self.matches.push(Match {
                    repo: String::new(),
                    path: String::new(),
                    line: number,
                    text: text.clone(),
                    line_truncated: cut,
                    before,
                    after: Vec::new(),
                });
                if ctx > 0 {
                    self.open.push(self.matches.len() - 1);
                }
            }
        }
        if ctx > 0 {
            if self.recent.len() == self.context {
                self.recent.pop_front();
            }
            self.recent.push_back(ContextLine { line: number, text });
        }
    }

    fn deliver(self, collector: &Mutex<Collector>, repo: &str, path: String) {
        if self.binary || self.count == 0 {
            return;
        }
        let mut matches = self.matches;
        for m in &mut matches {
            m.repo = repo.to_string();
            m.path.clone_from(&path);
        }
        collector.lock().expect("collector lock").add(
            (repo.to_string(), path),
            matches,
            self.count,
        );
    }
}

impl Sink for FileSink {
    type Error = std::io::Error;

    fn matched(&mut self, _: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, Self::Error> {
        for (number, line) in (mat.line_number().unwrap_or(0)..).zip(mat.lines()) {
            self.line(number, line, true);
        }
        Ok(true)
    }

    fn context(&mut self, _: &Searcher, ctx: &SinkContext<'_>) -> Result<bool, Self::Error> {
        self.line(ctx.line_number().unwrap_or(0), ctx.bytes(), false);
        Ok(true)
    }

    fn binary_data(&mut self, _: &Searcher, _: u64) -> Result<bool, Self::Error> {
        // As ripgrep without --text: a file with NUL bytes is binary and is not reported.
        self.binary = true;
        Ok(false)
    }
}

/// The first `limit` matches in (repo, path) order, whatever order files arrive in.
struct Collector {
    limit: usize,
    files: BTreeMap<(String, String), Vec<Match>>,
    kept: usize,
    total_matches: u64,
    files_with_matches: u64,
}

impl Collector {
    fn new(limit: usize) -> Self {
        Collector {
            limit,
            files: BTreeMap::new(),
            kept: 0,
            total_matches: 0,
            files_with_matches: 0,
        }
    }

    fn add(&mut self, key: (String, String), matches: Vec<Match>, count: u64) {
        self.total_matches += count;
        self.files_with_matches += 1;
        if self.kept >= self.limit
            && self
                .files
                .last_key_value()
                .is_some_and(|(last, _)| &key > last)
        {
            return;
        }
        self.kept += matches.len();
        self.files.insert(key, matches);
        // Drop files at the end that the first `limit` matches no longer reach.
        while let Some((_, last)) = self.files.last_key_value() {
            if self.kept - last.len() < self.limit {
                break;
            }
            self.kept -= last.len();
            self.files.pop_last();
        }
    }

    fn finish(
        self,
        searched: Vec<Searched>,
        skipped: Vec<Skipped>,
        args: &SearchArgs,
    ) -> SearchResult {
        let mut matches = Vec::new();
        let mut bytes = 0;
        let mut byte_capped = false;
        'files: for file in self.files.into_values() {
            for m in file {
                if matches.len() == self.limit {
                    break 'files;
                }
                let size = m.text.len()
                    + m.before
                        .iter()
                        .chain(&m.after)
                        .map(|l| l.text.len())
                        .sum::<usize>();
                if bytes + size > MAX_RESULT_BYTES && !matches.is_empty() {
                    byte_capped = true;
                    break 'files;
                }
                bytes += size;
                matches.push(m);
            }
        }
        let truncated = (matches.len() as u64) < self.total_matches;
        let note = if truncated {
            let last = matches.last().map(|m| format!("{}:{}", m.path, m.line));
            let why = if byte_capped {
                format!("the answer reached its {} KB cap", MAX_RESULT_BYTES / 1024)
            } else {
                format!("`limit` is {}", self.limit)
            };
            Some(format!(
                "showing {} of {} matching lines in {} files ({why}; last shown {}). Narrow the \
                 search with `include`/`exclude` globs, `repo` or a more specific query, or raise \
                 `limit` (max {MAX_LIMIT}).",
                matches.len(),
                self.total_matches,
                self.files_with_matches,
                last.unwrap_or_default(),
            ))
        } else if searched.is_empty() {
            Some(if skipped.is_empty() {
                "nothing was searched: no repository of this environment is in scope".to_string()
            } else {
                "nothing was searched: no repository is cloned; run `agentenv provision` first"
                    .to_string()
            })
        } else if matches.is_empty() {
            let mut why = format!("no line matches `{}`", args.query);
            if !args.include.is_empty() || !args.exclude.is_empty() {
                why.push_str(" in the files the include/exclude globs select");
            }
            why.push_str(" (files ignored by .gitignore, binary files and .git are not searched)");
            Some(why)
        } else {
            None
        };
        SearchResult {
            matches,
            total_matches: self.total_matches,
            files_with_matches: self.files_with_matches,
            truncated,
            note,
            searched,
            skipped,
        }
    }
}
