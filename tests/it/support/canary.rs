//! Scanning what a test can see — outputs, error messages, files — for canary values: secrets
//! and out-of-scope content that must never show up there.

use std::path::{Path, PathBuf};

/// Panics, naming `what` and the canary, when any canary occurs in `text`.
#[track_caller]
pub fn assert_absent<S: AsRef<str>>(what: &str, text: &str, canaries: &[S]) {
    for canary in canaries {
        let canary = canary.as_ref();
        assert!(
            !text.contains(canary),
            "{what} leaks the canary {canary:?}:\n{text}"
        );
    }
}

/// Every file under `dir` (recursively) that holds any canary, with the canary found.
pub fn files_holding<'c>(dir: &Path, canaries: &[&'c str]) -> Vec<(PathBuf, &'c str)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                for c in canaries {
                    if bytes.windows(c.len()).any(|w| w == c.as_bytes()) {
                        found.push((p.clone(), *c));
                    }
                }
            }
        }
    }
    found
}
