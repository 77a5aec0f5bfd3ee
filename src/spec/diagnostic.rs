//! One problem found in a spec: where (line, column, key path), what, and how to fix it.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::yaml::Pos;
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// 1-based; absent when the problem is not at one place (an unreadable file).
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The key path, e.g. `repos[1].path`; empty for the document as a whole.
    pub key: String,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(pos: Pos, key: impl ToString, message: impl Into<String>) -> Self {
        Diagnostic {
            line: Some(pos.line),
            column: Some(pos.column),
            key: key.to_string(),
            message: message.into(),
            hint: None,
        }
    }

    /// A problem with the file as a whole (it cannot be read, secrets do not resolve).
    pub fn whole_file(message: impl Into<String>) -> Self {
        Diagnostic {
            line: None,
            column: None,
            key: String::new(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:column: key: message` and, indented below, the hint.
    pub fn render(&self, file: &Path) -> String {
        let mut out = file.display().to_string();
        if let (Some(line), Some(column)) = (self.line, self.column) {
            let _ = write!(out, ":{line}:{column}");
        }
        out.push_str(": ");
        if !self.key.is_empty() {
            let _ = write!(out, "{}: ", self.key);
        }
        out.push_str(&self.message);
        if let Some(hint) = &self.hint {
            let _ = write!(out, "\n  hint: {hint}");
        }
        out
    }
}

/// All of a file's problems as one bad-input error (exit code 2).
pub fn into_error(file: &Path, diagnostics: &[Diagnostic]) -> Error {
    let text: Vec<String> = diagnostics.iter().map(|d| d.render(file)).collect();
    Error::input(text.join("\n"))
}

/// Damerau (optimal string alignment) distance: a swapped pair of letters counts once,
/// which is the typo people make most (`brnach`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known word closest to `word`, if it is close enough to be a typo of it.
/// Case and `-`/`_` differences count as typos too (`continue-on-error`).
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.to_lowercase().replace('-', "_");
    let w = norm(word);
    let limit = (w.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|k| (edit_distance(&w, &norm(k)), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `a`, `b`, `c` — for "valid keys here: …".
pub fn backticked<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_words_are_suggested() {
        let keys = ["branch", "depth", "path", "provider", "slug", "url"];
        assert_eq!(closest("brnach", keys), Some("branch"));
        assert_eq!(closest("Depth", keys), Some("depth"));
        assert_eq!(closest("providr", keys), Some("provider"));
        assert_eq!(closest("colour", keys), None);
        assert_eq!(
            closest("continue-on-error", ["continue_on_error", "creates"]),
            Some("continue_on_error")
        );
    }

    #[test]
    fn render_reads_file_line_column() {
        let d = Diagnostic::new(Pos { line: 3, column: 5 }, "repos[0]", "bad").with_hint("fix");
        assert_eq!(
            d.render(Path::new("e.yaml")),
            "e.yaml:3:5: repos[0]: bad\n  hint: fix"
        );
    }
}
