//! The two pieces of revision syntax the tools accept, resolved as `git rev-parse` resolves
//! them: abbreviated commit ids and `~`/`^` ancestry.
//!
//! - [`resolve_commit_prefix`] equals `git rev-parse --verify PREFIX^{commit}` for 4 to 40
//!   hex digits (git's minimum abbreviation is 4): when the prefix starts several objects and
//!   exactly one of them is a commit (or a tag of one), it is that commit, as git's
//!   committish disambiguation decides; two or more commits are [`HistoryError::Ambiguous`],
//!   listing every candidate. (Ref names are not looked at here: the caller decides whether
//!   `cafe` is a branch first, as git does.)
//! - [`parse_ancestry`] splits `NAME~N`, `NAME^N`, `NAME~`, `NAME^` and chains of them
//!   (`main~2^2`) into the name and its steps; [`walk_steps`] applies them as git does (`~N`
//!   follows the first parent N times, `^N` takes the Nth parent, `^0` the commit itself,
//!   a bare `~` or `^` means 1). Every other revision syntax (`@{…}`, `A..B`, `REV:path`,
//!   `^{…}`, `^!`, `^@`, `^-`, a leading `^`) is refused with [`HistoryError::Syntax`].
//!
//! In a shallow clone git takes a boundary commit for a root, so `main~N` past it fails;
//! here a step that needs a missing parent is [`HistoryError::NeedsHistory`].

use git2::{ObjectType, Oid};

use super::objects::{HistoryError, NeedsHistory, Objects, parse_commit};

/// git's `MINIMUM_ABBREV`.
pub const MIN_PREFIX: usize = 4;
/// More candidates than this for one prefix are not listed one by one.
const MAX_CANDIDATES: usize = 64;

/// Resolves a hex prefix to the commit `git rev-parse --verify PREFIX^{commit}` names.
pub fn resolve_commit_prefix(repo: &git2::Repository, prefix: &str) -> Result<Oid, HistoryError> {
    let objects = Objects::new(repo)?;
    if !(MIN_PREFIX..=40).contains(&prefix.len()) || !prefix.bytes().all(|c| c.is_ascii_hexdigit())
    {
        return Err(HistoryError::Syntax {
            input: prefix.to_string(),
            why: format!("a commit id is {MIN_PREFIX} to 40 hex digits"),
        });
    }
    let prefix = prefix.to_ascii_lowercase();
    let mut candidates = Vec::new();
    if prefix.len() == 40 {
        let id = Oid::from_str(&prefix)?;
        if objects.exists(id) {
            candidates.push(id);
        }
    } else {
        let mut buf = prefix.clone();
        collect_prefix(objects.odb(), &mut buf, &mut candidates)?;
    }
    candidates.sort();
    candidates.dedup();
    let mut typed = Vec::with_capacity(candidates.len());
    let mut commits = Vec::new();
    for &id in &candidates {
        let kind = objects
            .header(id)?
            .map_or(ObjectType::Any, |(_, kind)| kind);
        typed.push((id, kind));
        let commit = match kind {
            ObjectType::Commit => Some(id),
            ObjectType::Tag => match objects.peel_to_commit(id) {
                Ok(c) => c,
                Err(HistoryError::NotACommit { .. }) => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        if let Some(c) = commit {
            commits.push(c);
        }
    }
    match (commits.as_slice(), typed.as_slice()) {
        ([one], _) => Ok(*one),
        ([], []) => Err(HistoryError::NotFound(prefix)),
        ([], [(_, kind)]) => Err(HistoryError::NotACommit {
            spec: prefix,
            kind: *kind,
        }),
        _ => Err(HistoryError::Ambiguous {
            prefix,
            candidates: typed,
        }),
    }
}

/// Every object id starting with `prefix`, found by lengthening the prefix one hex digit at
/// a time where libgit2 says it is ambiguous (libgit2 has no prefix listing).
fn collect_prefix(
    odb: &git2::Odb<'_>,
    prefix: &mut String,
    out: &mut Vec<Oid>,
) -> Result<(), HistoryError> {
    if out.len() >= MAX_CANDIDATES {
        return Ok(());
    }
    let mut padded = prefix.clone();
    padded.extend(std::iter::repeat_n('0', 40 - prefix.len()));
    let short = Oid::from_str(&padded)?;
    match odb.exists_prefix(short, prefix.len()) {
        Ok(id) => out.push(id),
        Err(e) if e.code() == git2::ErrorCode::NotFound => {}
        Err(e) if e.code() == git2::ErrorCode::Ambiguous && prefix.len() < 40 => {
            for digit in "0123456789abcdef".chars() {
                prefix.push(digit);
                let r = collect_prefix(odb, prefix, out);
                prefix.pop();
                r?;
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// One ancestry step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `^N`: the Nth parent (`^0`: the commit itself).
    Parent(u32),
    /// `~N`: the Nth first-parent ancestor.
    Ancestor(u32),
}

/// `NAME` and its steps, e.g. `main~2^2` → (`main`, [Ancestor(2), Parent(2)]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ancestry<'a> {
    pub name: &'a str,
    pub steps: Vec<Step>,
}

/// Splits a revision into a name and `~`/`^` steps, refusing any other revision syntax.
pub fn parse_ancestry(input: &str) -> Result<Ancestry<'_>, HistoryError> {
    let bad = |why: &str| HistoryError::Syntax {
        input: input.to_string(),
        why: why.to_string(),
    };
    let cut = input.find(['~', '^']).unwrap_or(input.len());
    let (name, mut rest) = input.split_at(cut);
    if name.is_empty() {
        return Err(bad(if input.starts_with('^') {
            "excluding commits (`^REV`) is not supported; give one branch or commit, optionally followed by ~N or ^N"
        } else {
            "a branch or commit must come before ~ or ^"
        }));
    }
    if name.contains("@{") {
        return Err(bad(
            "reflog and upstream syntax (`@{…}`) is not supported; use ~N or ^N on a branch",
        ));
    }
    if name.contains("..") {
        return Err(bad(
            "ranges (`A..B`, `A...B`) are not supported; give one branch or commit",
        ));
    }
    if name.contains(':') {
        return Err(bad(
            "`REV:path` is not supported; give the path as its own argument",
        ));
    }
    let mut steps = Vec::new();
    while let Some(op) = rest.chars().next() {
        rest = &rest[1..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (num, tail) = rest.split_at(digits);
        match tail.chars().next() {
            None | Some('~') | Some('^') => {}
            Some('{') => {
                return Err(bad(
                    "peeling (`^{…}`) is not supported; only ~N and ^N may follow the name",
                ));
            }
            Some(c) if num.is_empty() && op == '^' && matches!(c, '!' | '@' | '-') => {
                return Err(bad(&format!(
                    "`^{c}` is not supported; only ~N and ^N may follow the name"
                )));
            }
            Some(_) => return Err(bad("only ~N and ^N may follow the name")),
        }
        let n = if num.is_empty() {
            1
        } else {
            // git refuses numbers above INT_MAX.
            num.parse::<u32>()
                .ok()
                .filter(|n| *n <= i32::MAX as u32)
                .ok_or_else(|| bad("the number after ~ or ^ is too large"))?
        };
        steps.push(if op == '~' {
            Step::Ancestor(n)
        } else {
            Step::Parent(n)
        });
        rest = tail;
    }
    Ok(Ancestry { name, steps })
}

/// Applies steps to a commit as git does. `spec` is the revision as the user wrote it, for
/// error messages.
pub fn walk_steps(
    repo: &git2::Repository,
    start: Oid,
    steps: &[Step],
    spec: &str,
) -> Result<Oid, HistoryError> {
    let objects = Objects::new(repo)?;
    let mut at = objects
        .peel_to_commit(start)?
        .ok_or(HistoryError::Missing {
            what: "commit",
            id: start,
        })?;
    let mut parents = Vec::new();
    let remaining_ancestors = |from: usize| -> usize {
        steps[from..]
            .iter()
            .map(|s| match s {
                Step::Ancestor(n) => *n as usize,
                Step::Parent(n) => usize::from(*n > 0),
            })
            .sum()
    };
    for (i, step) in steps.iter().enumerate() {
        let (nth, times) = match *step {
            Step::Parent(0) | Step::Ancestor(0) => continue,
            Step::Parent(n) => (n as usize, 1),
            Step::Ancestor(n) => (1, n),
        };
        for t in 0..times {
            let obj = objects.read(at)?.ok_or(HistoryError::Missing {
                what: "commit",
                id: at,
            })?;
            parents.clear();
            parse_commit(at, obj.data(), &mut parents)?;
            let Some(&parent) = parents.get(nth - 1) else {
                return Err(HistoryError::NoSuchParent {
                    spec: spec.to_string(),
                    at,
                    parent: nth,
                });
            };
            if !objects.exists(parent) {
                let wanted = remaining_ancestors(i) - t as usize;
                return Err(HistoryError::NeedsHistory(NeedsHistory::new(
                    vec![at],
                    Some(wanted),
                )));
            }
            at = parent;
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestry_chains_parse_into_steps() {
        let a = parse_ancestry("main~2^2").unwrap();
        assert_eq!(a.name, "main");
        assert_eq!(a.steps, [Step::Ancestor(2), Step::Parent(2)]);
        let b = parse_ancestry("release/1.0^^~").unwrap();
        assert_eq!(b.name, "release/1.0");
        assert_eq!(
            b.steps,
            [Step::Parent(1), Step::Parent(1), Step::Ancestor(1)]
        );
        assert_eq!(parse_ancestry("HEAD").unwrap().steps, []);
        assert_eq!(parse_ancestry("abc^0").unwrap().steps, [Step::Parent(0)]);
    }

    #[test]
    fn other_revision_syntax_is_refused() {
        for bad in [
            "main@{1}",
            "@{u}",
            "a..b",
            "a...b",
            "main:README.md",
            "main^{tree}",
            "main^!",
            "main^@",
            "main^-",
            "^main",
            "~1",
            "main~x",
            "main~1x",
            "main~99999999999",
        ] {
            let e = parse_ancestry(bad).unwrap_err();
            assert!(matches!(e, HistoryError::Syntax { .. }), "{bad}: {e}");
        }
    }
}
