//! How `search_code` collects matches: each file's matches with their full context, then the
//! first `limit` of all of them in (repo, path, line) order, whatever order files arrive in.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use grep_searcher::{Searcher, Sink, SinkContext, SinkMatch};

use super::{
    ContextLine, FileMatches, Line, MAX_LIMIT, MAX_LINE_BYTES, MAX_RESULT_BYTES, Match, SearchArgs,
    SearchResult, Searched, Skipped,
};
use crate::tools::text::quote;

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
pub(super) struct FileSink {
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
    pub(super) fn new(context: usize, keep: usize) -> Self {
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

    pub(super) fn deliver(self, collector: &Mutex<Collector>, repo: &str, path: String) {
        if self.binary || self.count == 0 {
            return;
        }
        collector.lock().unwrap_or_else(|e| e.into_inner()).add(
            (repo.to_string(), path),
            self.matches,
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
pub(super) struct Collector {
    limit: usize,
    files: BTreeMap<(String, String), Vec<Match>>,
    kept: usize,
    total_matches: u64,
    files_with_matches: u64,
}

impl Collector {
    pub(super) fn new(limit: usize) -> Self {
        Collector {
            limit,
            files: BTreeMap::new(),
            kept: 0,
            total_matches: 0,
            files_with_matches: 0,
        }
    }

    pub(super) fn add(&mut self, key: (String, String), matches: Vec<Match>, count: u64) {
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

    pub(super) fn finish(
        self,
        searched: Vec<Searched>,
        skipped: Vec<Skipped>,
        args: &SearchArgs,
    ) -> SearchResult {
        let mut files = Vec::new();
        let mut shown = 0usize;
        let mut bytes = 0;
        let mut byte_capped = false;
        let mut last = None;
        'files: for ((repo, path), matches) in self.files {
            let mut lines: BTreeMap<u64, Line> = BTreeMap::new();
            for m in matches {
                if shown == self.limit {
                    break;
                }
                let size = m.text.len()
                    + m.before
                        .iter()
                        .chain(&m.after)
                        .map(|l| l.text.len())
                        .sum::<usize>();
                if bytes + size > MAX_RESULT_BYTES && shown > 0 {
                    byte_capped = true;
                    if !lines.is_empty() {
                        files.push(FileMatches {
                            repo,
                            path,
                            lines: lines.into_values().collect(),
                        });
                    }
                    break 'files;
                }
                bytes += size;
                shown += 1;
                last = Some(format!("{path}:{}", m.line));
                // A match wins over the same line seen as another match's context.
                for c in m.before.into_iter().chain(m.after) {
                    lines.entry(c.line).or_insert(Line {
                        line: c.line,
                        text: c.text,
                        context: true,
                        cut: false,
                    });
                }
                lines.insert(
                    m.line,
                    Line {
                        line: m.line,
                        text: m.text,
                        context: false,
                        cut: m.line_truncated,
                    },
                );
            }
            if !lines.is_empty() {
                files.push(FileMatches {
                    repo,
                    path,
                    lines: lines.into_values().collect(),
                });
            }
            if shown == self.limit {
                break;
            }
        }
        let truncated = (shown as u64) < self.total_matches;
        let note = if truncated {
            let why = if byte_capped {
                format!("the answer reached its {} KB cap", MAX_RESULT_BYTES / 1024)
            } else {
                format!("`limit` is {}", self.limit)
            };
            Some(format!(
                "showing {shown} of {} matching lines in {} files ({why}; last shown {}). Narrow \
                 the search with `include`/`exclude` globs, `repo` or a more specific query, or \
                 raise `limit` (max {MAX_LIMIT}).",
                self.total_matches,
                self.files_with_matches,
                last.unwrap_or_default(),
            ))
        } else if searched.is_empty() {
            Some(if skipped.is_empty() {
                "nothing was searched: no repository of this environment is in scope".to_string()
            } else {
                let why: Vec<String> = skipped
                    .iter()
                    .map(|s| format!("`{}`: {}", s.repo, s.reason))
                    .collect();
                format!("nothing was searched: {}", why.join("; "))
            })
        } else if shown == 0 {
            let mut why = format!("no line matches {}", quote(&args.query));
            if !args.include.is_empty() || !args.exclude.is_empty() {
                why.push_str(" in the files the include/exclude globs select");
            }
            why.push_str(" (files ignored by .gitignore, binary files and .git are not searched)");
            Some(why)
        } else {
            None
        };
        SearchResult {
            files,
            total_matches: self.total_matches,
            files_with_matches: self.files_with_matches,
            shown_matches: shown as u64,
            truncated,
            note,
            searched,
            skipped,
            not_searched: Vec::new(),
            not_searched_count: 0,
            next_cursor: None,
        }
    }
}
