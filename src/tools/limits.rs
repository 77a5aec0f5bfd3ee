//! What one server lets its calls cost: how many heavy calls (a search, a history walk) run at
//! once and how long an extra one waits for its turn ([`Limits`], [`Turns`]); how large one
//! search's compiled regex, DFA cache and line buffer may grow (the constants and
//! [`bound_matcher`]); and how long and how far one search may read before it answers with
//! what it found ([`SearchBudget`]). Defaults suit a small container; the time and size
//! budgets can be set with `AGENTENV_*` environment variables, read when the server starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use grep_regex::RegexMatcherBuilder;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Error, Result};

pub const HEAVY_CALLS_VAR: &str = "AGENTENV_HEAVY_CALLS";
pub const HEAVY_WAIT_VAR: &str = "AGENTENV_HEAVY_CALL_WAIT";
pub const SEARCH_TIMEOUT_VAR: &str = "AGENTENV_SEARCH_TIMEOUT";
pub const SEARCH_MAX_BYTES_VAR: &str = "AGENTENV_SEARCH_MAX_BYTES";
pub const SEARCH_MAX_CLONES_VAR: &str = "AGENTENV_SEARCH_MAX_CLONES";

/// How long a refused call is told to wait before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Heavy calls running at once. Each search already uses every core (ripgrep's parallel
    /// walk) and its own regex caches, so more at once only divides the machine further: 32
    /// searches of `a{1000}{1000}` at once reached 5 GB.
    pub heavy_calls: usize,
    /// How long a heavy call waits for a turn before it is refused as `unavailable`.
    pub heavy_wait: Duration,
    /// How long one search may walk before it answers with the matches found so far.
    pub search_time: Duration,
    /// How many bytes of files one search may read before it answers with what it found.
    pub search_bytes: u64,
    /// How many repositories one workspace-wide search may clone into the clone cache; the
    /// rest are named in its answer, with a cursor to continue.
    pub search_clones: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            heavy_calls: 4,
            heavy_wait: Duration::from_secs(5),
            search_time: Duration::from_secs(15),
            search_bytes: 1024 * 1024 * 1024,
            search_clones: 8,
        }
    }
}

impl Limits {
    /// The defaults, overridden by the `AGENTENV_*` variables above.
    pub fn from_env() -> Result<Limits> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Limits> {
        let mut l = Limits::default();
        let number = |name: &str, v: &str, what: &str| {
            v.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Error::input(format!("{name}=`{v}` is not valid: give {what} above 0"))
                })
        };
        let seconds = |name: &str, v: &str| {
            v.trim()
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    Error::input(format!(
                        "{name}=`{v}` is not valid: give a number of seconds (decimals allowed)"
                    ))
                })
        };
        if let Some(v) = var(HEAVY_CALLS_VAR) {
            l.heavy_calls = number(HEAVY_CALLS_VAR, &v, "a number of calls")? as usize;
        }
        if let Some(v) = var(HEAVY_WAIT_VAR) {
            l.heavy_wait = seconds(HEAVY_WAIT_VAR, &v)?;
        }
        if let Some(v) = var(SEARCH_TIMEOUT_VAR) {
            l.search_time = seconds(SEARCH_TIMEOUT_VAR, &v)?;
        }
        if let Some(v) = var(SEARCH_MAX_BYTES_VAR) {
            l.search_bytes = number(SEARCH_MAX_BYTES_VAR, &v, "a number of bytes")?;
        }
        if let Some(v) = var(SEARCH_MAX_CLONES_VAR) {
            l.search_clones = number(SEARCH_MAX_CLONES_VAR, &v, "a number of clones")? as usize;
        }
        Ok(l)
    }
}

/// The turns heavy calls take.
pub struct Turns {
    semaphore: Arc<Semaphore>,
    size: usize,
    wait: Duration,
}

impl Turns {
    pub fn new(limits: &Limits) -> Turns {
        Turns {
            semaphore: Arc::new(Semaphore::new(limits.heavy_calls)),
            size: limits.heavy_calls,
            wait: limits.heavy_wait,
        }
    }

    /// A turn for a call of `tool`: none needed for a light one; for a heavy one, wait up to
    /// the configured time, then refuse with when to try again. The permit is owned, so the
    /// work holds it even when the caller stops waiting for the answer. Waiting needs tokio's
    /// timer (the server's runtime has it); a free turn is taken without it.
    pub async fn take(&self, tool: &str, heavy: bool) -> Result<Option<OwnedSemaphorePermit>> {
        if !heavy {
            return Ok(None);
        }
        if let Ok(permit) = self.semaphore.clone().try_acquire_owned() {
            return Ok(Some(permit));
        }
        let permit = tokio::time::timeout(self.wait, self.semaphore.clone().acquire_owned());
        match permit.await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            Ok(Err(_closed)) => Err(Error::failure("the server is shutting down")),
            Err(_elapsed) => Err(Error::unavailable(format!(
                "the server is busy: {} searches and history walks are running (the most at \
                 once), and this `{tool}` call waited {:.1} s for a turn",
                self.size,
                self.wait.as_secs_f64()
            ))
            .with_retry_after(RETRY_AFTER)
            .with_hint(format!(
                "retry in {} seconds; a narrower call (`repo`, `include`, `path`, a smaller \
                 `limit`) takes its turn for less time",
                RETRY_AFTER.as_secs()
            ))),
        }
    }
}

/// The longest `search_code` query. What an agent searches for is a line or a few; the
/// compiled regex, not this, is what bounds memory, but a megabyte of query is a mistake.
pub const MAX_QUERY_BYTES: usize = 4096;
/// The most memory one query's compiled regex may take (the regex crate's own default;
/// ripgrep's is 100 MiB). `a{1000}{1000}` compiled to 222 MB before this.
pub const REGEX_SIZE_LIMIT: usize = 10 << 20;
/// The lazy DFA's cache, per searching thread (ripgrep's: 1000 MiB). Past it the DFA clears
/// and refills, slower but never larger.
pub const DFA_CACHE_LIMIT: usize = 10 << 20;
/// The longest line a file may have to be searched: the searcher holds a whole line in memory.
pub const MAX_LINE_BUFFER: usize = 16 << 20;
/// The largest file searched in a committed tree (the default, or a `ref`'s): each file is
/// read into memory whole.
pub const MAX_BLOB_BYTES: u64 = 64 << 20;

/// Refuse a query longer than [`MAX_QUERY_BYTES`].
pub fn check_query(query: &str) -> Result<()> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(Error::input(format!(
            "`query` is {} bytes long; the most is {MAX_QUERY_BYTES}. Search for a distinctive part of it",
            query.len()
        )));
    }
    Ok(())
}

/// Bound the compiled regex and the DFA cache of a search's matcher.
pub fn bound_matcher(builder: &mut RegexMatcherBuilder) -> &mut RegexMatcherBuilder {
    builder
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(DFA_CACHE_LIMIT)
}

/// For a query whose matcher failed to build: when it failed because its compiled regex is
/// too large, the error that says so and what to do; `None` for any other failure. grep-regex keeps only the text of its
/// errors; the regex crate, asked to compile the same pattern within no space at all, says in
/// a typed error whether the pattern parses — so one that parses failed on its size.
pub fn regex_too_big(query: &str, is_regex: bool) -> Option<Error> {
    let pattern = if is_regex {
        query.to_string()
    } else {
        regex::escape(query)
    };
    let parses = matches!(
        regex::RegexBuilder::new(&pattern).size_limit(0).build(),
        Err(regex::Error::CompiledTooBig(_))
    );
    parses.then(|| {
        Error::input(format!(
            "`query` compiles to a regex larger than {} MiB, the most one search may use. \
             Counted repetitions multiply (`a{{1000}}{{1000}}` is a million states): use smaller \
             counts, `+`/`*` instead of large counts, or a literal search",
            REGEX_SIZE_LIMIT >> 20
        ))
    })
}

/// How far one search may read: [`Limits::search_time`] and [`Limits::search_bytes`].
/// Checked before each file, so a search stops within a file of its budget.
pub struct SearchBudget {
    deadline: Instant,
    bytes_left: AtomicU64,
    read: AtomicU64,
    cut: AtomicBool,
    /// Files not searched: a line too long, a blob too large, or unreadable.
    unsearched: AtomicU64,
    limits: Limits,
}

impl SearchBudget {
    pub fn new(limits: &Limits) -> SearchBudget {
        SearchBudget {
            deadline: Instant::now() + limits.search_time,
            bytes_left: AtomicU64::new(limits.search_bytes),
            read: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            unsearched: AtomicU64::new(0),
            limits: *limits,
        }
    }

    /// Take a file of `size` bytes from the budget: true to search it; false when the time is
    /// up or the bytes are not there, and the search stops with what it found.
    pub fn file(&self, size: u64) -> bool {
        let taken = Instant::now() < self.deadline
            && self
                .bytes_left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(size)
                })
                .is_ok();
        if taken {
            self.read.fetch_add(size, Ordering::Relaxed);
        } else {
            self.cut.store(true, Ordering::Relaxed);
        }
        taken
    }

    /// A file that could not be searched: unreadable, a line over [`MAX_LINE_BUFFER`], or in a
    /// committed tree over [`MAX_BLOB_BYTES`].
    pub fn skipped(&self) {
        self.unsearched.fetch_add(1, Ordering::Relaxed);
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    /// Tell the agent about a search its budget cut short, or that left files unsearched:
    /// marks the answer truncated when cut, and puts the reason before any note it has.
    pub fn annotate(&self, truncated: &mut bool, note: &mut Option<String>) {
        let mut notes = Vec::new();
        if self.is_cut() {
            *truncated = true;
            notes.push(format!(
                "the search stopped early: it had read {} MiB of files, and one search may read \
                 {} MiB for {} s. The matches and counts are from the files read so far, not \
                 all of them. Narrow it with `repo`, `include`/`exclude` globs (e.g. `src/**`, \
                 `*.rs`) or a more specific query",
                self.read.load(Ordering::Relaxed) >> 20,
                self.limits.search_bytes >> 20,
                self.limits.search_time.as_secs_f64()
            ));
        }
        let unsearched = self.unsearched.load(Ordering::Relaxed);
        if unsearched > 0 {
            notes.push(format!(
                "{unsearched} files were not searched: unreadable, a line longer than {} MiB, \
                 or (in a committed tree) larger than {} MiB",
                MAX_LINE_BUFFER >> 20,
                MAX_BLOB_BYTES >> 20
            ));
        }
        if let Some(before) = note.take() {
            notes.push(before);
        }
        *note = (!notes.is_empty()).then(|| notes.join(". "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_heavy_call_past_the_limit_waits_then_is_refused() {
        let limits = Limits {
            heavy_calls: 1,
            heavy_wait: Duration::from_millis(50),
            ..Limits::default()
        };
        let turns = Turns::new(&limits);
        let held = turns.take("search_code", true).await.unwrap();
        assert!(held.is_some());
        // Light calls never wait.
        assert!(turns.take("read_file", false).await.unwrap().is_none());
        let refused = turns.take("list_commits", true).await.unwrap_err();
        assert_eq!(refused.kind, crate::error::Kind::Unavailable);
        assert_eq!(refused.retry_after, Some(RETRY_AFTER));
        assert!(
            refused.message.contains("list_commits"),
            "{}",
            refused.message
        );
        drop(held);
        assert!(turns.take("get_commit", true).await.unwrap().is_some());
    }

    #[test]
    fn limits_come_from_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let l = Limits::from_lookup(vars(&[
            (HEAVY_CALLS_VAR, "2"),
            (SEARCH_TIMEOUT_VAR, "0.5"),
            (SEARCH_MAX_BYTES_VAR, "1000"),
        ]))
        .unwrap();
        assert_eq!(
            (l.heavy_calls, l.search_time, l.search_bytes),
            (2, Duration::from_millis(500), 1000)
        );
        let e = Limits::from_lookup(vars(&[(HEAVY_CALLS_VAR, "0")])).unwrap_err();
        assert!(e.message.contains(HEAVY_CALLS_VAR), "{}", e.message);
    }

    #[test]
    fn a_search_budget_stops_at_its_bytes_and_counts_skipped_files() {
        let limits = Limits {
            search_bytes: 100,
            ..Limits::default()
        };
        let budget = SearchBudget::new(&limits);
        assert!(budget.file(60));
        budget.skipped();
        assert!(!budget.is_cut());
        assert!(!budget.file(60));
        assert!(budget.is_cut());
        let (mut truncated, mut note) = (false, Some("earlier note".to_string()));
        budget.annotate(&mut truncated, &mut note);
        let note = note.unwrap();
        assert!(truncated);
        assert!(note.starts_with("the search stopped early"), "{note}");
        assert!(note.contains("1 files were not searched"), "{note}");
        assert!(note.ends_with("earlier note"), "{note}");
    }

    #[test]
    fn only_a_regex_that_parses_is_called_too_big() {
        assert!(regex_too_big("a{1000}{1000}", true).is_some());
        assert!(regex_too_big("(unclosed", true).is_none());
        assert!(check_query(&"x".repeat(MAX_QUERY_BYTES + 1)).is_err());
        assert!(check_query("fn main").is_ok());
    }
}
