//! What answers are made of, whichever source they come from: the output cap and how text is
//! cut to it, `read_file`'s line window and binary detection, and the people and times of
//! commits.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// Outputs larger than this many bytes are cut, with a note saying how to get the rest.
pub(crate) const MAX_OUTPUT_BYTES: usize = 100 * 1024;

/// git's own heuristic: a NUL in the first 8000 bytes means binary.
const BINARY_PROBE: usize = 8000;

/// At most `max` bytes of `s`, cut at a char boundary, with `…` when cut.
pub(crate) fn cut_chars(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The first line of a commit message, trimmed and capped: a commit's summary.
pub(crate) fn summary(message: &str) -> String {
    cut_chars(message.lines().next().unwrap_or("").trim(), 200)
}

/// git's own heuristic: a NUL in the first 8000 bytes means binary.
pub(crate) fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_PROBE)].contains(&0)
}

/// The first line a call asks for, once `start_line`/`end_line` are checked (1-based, in order).
pub(crate) fn check_range(start_line: Option<usize>, end_line: Option<usize>) -> Result<usize> {
    let start = start_line.unwrap_or(1);
    if start == 0 {
        return Err(Error::input(
            "start_line is 1-based; use 1 for the first line",
        ));
    }
    if let Some(end) = end_line
        && end < start
    {
        return Err(Error::input(format!(
            "end_line {end} is before start_line {start}"
        )));
    }
    Ok(start)
}

/// What `read_file` shows of a text file, wherever its bytes came from (checkout or API).
pub(crate) struct Window {
    pub total_lines: usize,
    /// First and last line in `content`; `None` for an empty file.
    pub start_line: Option<usize>,
    pub end_line: Option<usize>,
    /// The lines, each as `<number>\t<text>`, newline-terminated.
    pub content: String,
    /// True when the requested range was cut at the 100 KB cap.
    pub truncated: bool,
    pub next_start_line: Option<usize>,
    /// What the agent should know: invalid UTF-8, a cut line, the cap and how to continue.
    pub notes: Vec<String>,
}

/// Lines `start..=end_line` (default: to the end) of a text file `shown`, numbered, capped at
/// [`MAX_OUTPUT_BYTES`] at a line boundary. A first line longer than the cap alone is cut
/// rather than returned as nothing, so `next_start_line` always moves forward.
pub(crate) fn window(
    bytes: &[u8],
    shown: &str,
    start: usize,
    end_line: Option<usize>,
) -> Result<Window> {
    let mut notes = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    if matches!(text, std::borrow::Cow::Owned(_)) {
        notes.push("the file is not valid UTF-8; invalid bytes are shown as U+FFFD".to_string());
    }
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    if start > total.max(1) {
        return Err(Error::input(format!(
            "start_line {start} is past the end of `{shown}`, which has {total} lines"
        )));
    }
    let end = end_line.unwrap_or(total).min(total);
    let mut content = String::new();
    let mut last = start.saturating_sub(1);
    let mut truncated = false;
    for (n, line) in lines.iter().enumerate().take(end).skip(start - 1) {
        let n = n + 1;
        let before = content.len();
        let _ = writeln!(content, "{n}\t{line}");
        if content.len() > MAX_OUTPUT_BYTES {
            content.truncate(before);
            if n == start {
                // A single line longer than the cap: show its head, continue after it.
                let room = MAX_OUTPUT_BYTES.saturating_sub(before + 16);
                let _ = writeln!(content, "{n}\t{}", cut_chars(line, room));
                last = n;
                notes.push(format!("line {n} alone is longer than 100 KB and was cut"));
            }
            truncated = last < end;
            break;
        }
        last = n;
    }
    if truncated {
        notes.push(format!(
            "output capped at 100 KB: lines {start}-{last} of {total} shown; call read_file with start_line {} to continue",
            last + 1
        ));
    }
    Ok(Window {
        total_lines: total,
        start_line: (total > 0).then_some(start),
        end_line: (total > 0).then_some(last),
        content,
        truncated,
        next_start_line: truncated.then_some(last + 1),
        notes,
    })
}

/// A person and a time, as a commit records them.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Person {
    /// Name as recorded in the commit.
    pub name: String,
    /// Email as recorded in the commit.
    pub email: String,
    /// When, RFC 3339 with the recorded UTC offset.
    pub date: String,
}

impl Person {
    pub(crate) fn of(sig: &git2::Signature<'_>) -> Person {
        Person {
            name: String::from_utf8_lossy(sig.name_bytes()).into_owned(),
            email: String::from_utf8_lossy(sig.email_bytes()).into_owned(),
            date: rfc3339(sig.when()),
        }
    }
}

/// A git time as RFC 3339 with its recorded offset.
pub(crate) fn rfc3339(t: git2::Time) -> String {
    let offset = chrono::FixedOffset::east_opt(t.offset_minutes() * 60)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
    chrono::DateTime::from_timestamp(t.seconds(), 0)
        .map(|d| d.with_timezone(&offset).to_rfc3339())
        .unwrap_or_else(|| t.seconds().to_string())
}

/// Hex digits of a commit id that text answers show: git's own abbreviation length for
/// repositories of this size, and what every `ref`/`commit` argument accepts back (an
/// ambiguous abbreviation is refused, never guessed). The JSON keeps the full id.
pub(crate) const SHORT_ID: usize = 12;

/// A full commit id (40 or 64 hex digits) cut to [`SHORT_ID`] digits; anything else as is.
pub(crate) fn short_id(id: &str) -> &str {
    if matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        &id[..SHORT_ID]
    } else {
        id
    }
}

/// An RFC 3339 time as text answers show it: `2024-05-01 12:00:00Z`, or
/// `2024-05-01 14:00:00+02:00` — the same instant, precision and offset, with a space for the
/// `T` and `Z` for `+00:00`. Anything that is not RFC 3339 is returned as is.
pub(crate) fn when(t: &str) -> String {
    let b = t.as_bytes();
    let shaped = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':';
    if !shaped {
        return t.to_string();
    }
    let spaced = format!("{} {}", &t[..10], &t[11..]);
    match spaced.strip_suffix("+00:00") {
        Some(utc) => format!("{utc}Z"),
        None => spaced,
    }
}

/// Seconds since the epoch for RFC 3339 or `YYYY-MM-DD` (UTC; `end_of_day` for `until`).
pub(crate) fn parse_time(s: &str, field: &str, end_of_day: bool) -> Result<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end_of_day {
            d.and_hms_opt(23, 59, 59)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(t.and_utc().timestamp());
        }
    }
    Err(Error::input(format!(
        "`{field}` is `{s}`: use RFC 3339 like `2024-05-01T12:00:00Z` or a date like `2024-05-01`"
    )))
}

/// Bytes of an argument a message repeats at most: enough to recognise it, never the whole of
/// a huge one (a 1 MiB `path` must not come back twice in an error).
const QUOTE_MAX: usize = 80;

/// An argument as every message quotes it: in backticks, control characters escaped, and
/// past [`QUOTE_MAX`] bytes only its beginning, with its length.
pub(crate) fn quote(arg: &str) -> String {
    let mut shown = String::new();
    let mut cut = false;
    for c in arg.chars() {
        if shown.len() >= QUOTE_MAX {
            cut = true;
            break;
        }
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    if cut {
        format!("`{shown}…` ({} bytes)", arg.len())
    } else {
        format!("`{shown}`")
    }
}

/// The longest message or hint an error carries: a safety net behind [`quote`] for text that
/// is not ours (a regex parser's message repeats the whole pattern).
const MAX_MESSAGE: usize = 2000;

/// An error whose message and hint are at most [`MAX_MESSAGE`] bytes.
pub(crate) fn bound_error(e: Error) -> Error {
    let cut = |t: &str| {
        if t.len() > MAX_MESSAGE {
            format!("{} (message cut)", cut_chars(t, MAX_MESSAGE))
        } else {
            t.to_string()
        }
    };
    e.map_text(cut)
}

/// Rows of cells as aligned text: every column but the last padded to its widest cell, empty
/// trailing cells dropped, one row per line.
pub(crate) fn rows(rows: &[Vec<String>]) -> String {
    aligned(rows).into_iter().map(|l| l + "\n").collect()
}

/// The lines of [`rows`], without their line ends.
pub(crate) fn aligned(rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(x) => *x = (*x).max(w),
                None => widths.push(w),
            }
        }
    }
    rows.iter()
        .map(|row| {
            let last = row.iter().rposition(|c| !c.is_empty()).map_or(0, |i| i + 1);
            let mut line = String::new();
            for (i, cell) in row[..last].iter().enumerate() {
                line.push_str(cell);
                if i + 1 < last {
                    let pad = widths[i] - cell.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad + 2));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// How a text answer ends: where the next page starts, and the note.
pub(crate) fn footer(out: &mut String, next_cursor: Option<&str>, note: Option<&str>) {
    if let Some(c) = next_cursor {
        let _ = writeln!(out, "more: pass cursor {c} for the next page");
    }
    if let Some(n) = note.filter(|n| !n.is_empty()) {
        let _ = writeln!(out, "note: {n}");
    }
}

/// `n thing` or `n things`.
pub(crate) fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_short_and_escaped() {
        assert_eq!(quote("src/a.rs"), "`src/a.rs`");
        assert_eq!(quote("a\nb"), "`a\\nb`");
        let long = "x".repeat(1 << 20);
        let q = quote(&long);
        assert!(q.len() < 120, "{q}");
        assert!(q.ends_with("(1048576 bytes)"), "{q}");
    }

    #[test]
    fn ids_and_times_are_shown_short_but_whole() {
        let id = "6172f723ee73f9737d32a890dc9fce18ff5a6769";
        assert_eq!(short_id(id), "6172f723ee73");
        assert_eq!(short_id("main"), "main");
        assert_eq!(when("2026-11-29T16:52:18+00:00"), "2026-11-29 16:52:18Z");
        assert_eq!(
            when("2026-11-29T16:52:18.25+02:00"),
            "2026-11-29 16:52:18.25+02:00"
        );
        assert_eq!(when("2026-11-29T16:52:18Z"), "2026-11-29 16:52:18Z");
        assert_eq!(when("yesterday"), "yesterday");
    }

    #[test]
    fn rows_align_all_but_the_last_column() {
        let t = rows(&[
            vec!["a".into(), "bb".into(), "x".into()],
            vec!["ccc".into(), "d".into(), String::new()],
        ]);
        assert_eq!(t, "a    bb  x\nccc  d\n");
    }
}
