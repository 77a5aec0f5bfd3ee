//! `list_commits`: the history from a ref, newest first, filtered and paged; walked in the
//! checkout, or read page by page from the API for a repository that is not cloned.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::paging::{self, page_limit};
use super::paths::{clean_path, tree_path};
use super::source::checkout::{git_error, recorded_parents, summary};
use super::source::remote::{CommitPeople, NOTE, api_error, block_on};
use super::source::{Checkout, Remote, Source};
use super::text::{self, Person, parse_time, rfc3339};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::{CommitQuery, Cursor, Rev};
use crate::git::log::{self, LogEnd, LogQuery};

/// Arguments of `list_commits`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Repository name.
    pub repo: String,
    /// Branch in scope, `HEAD` or a commit id, `~N`/`^N` allowed (default: the checked-out
    /// commit; for a repository that is not cloned, a branch name only).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// Only commits that change this file or directory.
    #[serde(default)]
    pub path: Option<String>,
    /// Only commits whose author `Name <email>` contains this (case-insensitive).
    #[serde(default)]
    pub author: Option<String>,
    /// Committed at or after (committer date, as `git log --since`): RFC 3339 or YYYY-MM-DD (UTC).
    #[serde(default)]
    pub since: Option<String>,
    /// Committed at or before: RFC 3339 or YYYY-MM-DD (through that day, UTC).
    #[serde(default)]
    pub until: Option<String>,
    /// `next_cursor` of the previous page (same other arguments).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Commits per page, 1-100 (default 15).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One commit in a list.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct CommitSummary {
    /// Full commit id (pass it to get_commit, or as `ref`).
    pub hash: String,
    /// The first line of the message (get_commit has all of it).
    pub summary: String,
    pub author: Person,
    /// When the commit was made (committer date, RFC 3339).
    pub committed: String,
    /// Parent commit ids (more than one for a merge).
    pub parents: Vec<String>,
}

/// Result of `list_commits`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ListOutput {
    pub repo: String,
    /// The ref the walk started from: the branch name, or the commit id.
    #[serde(rename = "ref")]
    pub reference: String,
    /// In `git log`'s order: newest committer date first.
    pub commits: Vec<CommitSummary>,
    /// Pass as `cursor` (with the same other arguments) to get the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// True when the walk reached a shallow boundary that could not be deepened (the fetch
    /// budget ran out): older history exists but is not in the checkout; `note` says more.
    pub history_truncated_by_depth: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One row per commit: short id, committer date, author key, summary; the authors once, above
/// the rows. A commit's parent is the next row unless a `parents` line says otherwise; an
/// author date is shown where it differs from the commit date.
fn render(o: &ListOutput) -> String {
    // Each author once, in order of first appearance; a key per row only when there are
    // several (on most pages one or two people wrote every commit).
    let mut authors: Vec<String> = Vec::new();
    let keys: Vec<usize> = o
        .commits
        .iter()
        .map(|c| {
            let who = if c.author.email.is_empty() {
                c.author.name.clone()
            } else {
                format!("{} <{}>", c.author.name, c.author.email)
            };
            authors.iter().position(|a| *a == who).unwrap_or_else(|| {
                authors.push(who);
                authors.len() - 1
            })
        })
        .collect();
    let columns = if authors.len() > 1 {
        "id, committed, author, summary"
    } else {
        "id, committed, summary"
    };
    let mut t = format!(
        "{} at {}: {}, newest first ({columns}; a row's parent is the next row unless shown)\n",
        o.repo,
        o.reference,
        text::count(o.commits.len() as u64, "commit", "commits")
    );
    match authors.as_slice() {
        [] => {}
        [one] => {
            let _ = writeln!(t, "author of every commit: {one}");
        }
        many => {
            t.push_str("authors:\n");
            for (i, a) in many.iter().enumerate() {
                let _ = writeln!(t, "  {}  {a}", author_key(i));
            }
        }
    }
    let rows: Vec<Vec<String>> = o
        .commits
        .iter()
        .zip(&keys)
        .map(|(c, &k)| {
            let mut row = vec![
                text::short_id(&c.hash).to_string(),
                text::when(&c.committed),
            ];
            if authors.len() > 1 {
                row.push(author_key(k));
            }
            row.push(c.summary.clone());
            row
        })
        .collect();
    for (i, (line, c)) in text::aligned(&rows).into_iter().zip(&o.commits).enumerate() {
        t.push_str(&line);
        t.push('\n');
        if c.author.date != c.committed {
            let _ = writeln!(t, "  authored {}", text::when(&c.author.date));
        }
        let next = o.commits.get(i + 1).map(|n| n.hash.as_str());
        if c.parents.len() != 1 || Some(c.parents[0].as_str()) != next {
            let parents = if c.parents.is_empty() {
                "none".to_string()
            } else {
                let ids: Vec<&str> = c.parents.iter().map(|p| text::short_id(p)).collect();
                ids.join(" ")
            };
            let _ = writeln!(t, "  parents {parents}");
        }
    }
    if o.history_truncated_by_depth {
        t.push_str("history truncated by depth: older commits are not in the clone\n");
    }
    if let Some(c) = &o.next_cursor {
        let _ = writeln!(
            t,
            "more: pass cursor {c} for the next page, or a larger `limit` (up to 100)"
        );
    }
    text::footer(&mut t, None, o.note.as_deref());
    t
}

/// `a`, `b`, … `z`, `aa`, `ab`, …: the key of the `i`-th author of a page.
fn author_key(i: usize) -> String {
    let mut key = Vec::new();
    let mut n = i + 1;
    while n > 0 {
        n -= 1;
        key.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    key.reverse();
    String::from_utf8(key).unwrap_or_default()
}

pub struct ListCommits;

impl Tool for ListCommits {
    const NAME: &'static str = "list_commits";
    const HEAVY: bool = true;
    const DESCRIPTION: &'static str = "Commits reachable from a ref, newest first, as `git log` lists them: id, date, author, summary. Filter by `path`, `author`, `since`/`until`.";
    type Args = ListArgs;
    type Output = ListOutput;

    fn render(out: &ListOutput) -> String {
        render(out)
    }

    fn run(ctx: &Context, args: ListArgs) -> Result<ListOutput> {
        let filters = Filters {
            limit: page_limit(Some(args.limit.unwrap_or(DEFAULT_LIMIT)))?,
            path: args
                .path
                .as_deref()
                .map(|p| clean_path(p).map(|p| tree_path(&p)))
                .transpose()?
                .filter(|p| !p.is_empty()),
            since: args
                .since
                .as_deref()
                .map(|s| parse_time(s, "since", false))
                .transpose()?,
            until: args
                .until
                .as_deref()
                .map(|s| parse_time(s, "until", true))
                .transpose()?,
            author: args.author.as_deref().map(str::to_lowercase),
        };
        match ctx.source(&args.repo)? {
            Source::Checkout(c) => checkout(&c, &args, &filters),
            Source::Remote(r) => remote(&r, &args, &filters),
        }
    }
}

/// A call's filters, checked.
struct Filters {
    limit: usize,
    /// `/`-separated; `None` for the whole tree.
    path: Option<String>,
    /// Seconds since the epoch, on the committer date (as `git log --since/--until`).
    since: Option<i64>,
    until: Option<i64>,
    /// Lowercase; the checkout matches it, case-insensitively, in the author's `Name <email>`.
    author: Option<String>,
}

/// Commits per page when the call gives no `limit`: a screenful of recent history, 2-3 KB of
/// text; `limit` (up to 100) and the cursor fetch more.
const DEFAULT_LIMIT: usize = 15;

const KIND: &str = "commits.v1";
const API_KIND: &str = "commits.api.v1";
/// A walk looks at no more commits than this per call, so one call stays bounded on huge
/// histories; the note says when it stopped early.
const MAX_SCAN: usize = 200_000;

fn checkout(c: &Checkout<'_>, args: &ListArgs, f: &Filters) -> Result<ListOutput> {
    let limit = f.limit;
    let at = c.resolve(args.reference.as_deref())?;

    // The cursor pins the walk's start commit and counts the commits already returned, and
    // carries a fingerprint of the filters so it cannot be replayed with other arguments.
    let fingerprint = fingerprint(args, at.commit);
    let skip = match args.cursor.as_deref() {
        None => 0,
        Some(c) => {
            let payload = paging::decode(KIND, c)?;
            let bad = || {
                Error::input(
                    "invalid cursor: it belongs to a list_commits call with other arguments (or the branch moved); omit it to start over",
                )
            };
            let (fp, n) = payload.split_once(':').ok_or_else(bad)?;
            if fp != fingerprint {
                return Err(bad());
            }
            n.parse::<usize>().map_err(|_| bad())?
        }
    };

    // git log's walk; one more than the page tells whether there is a next page. A walk that
    // reaches the shallow boundary before it has the page deepens the clone and walks again.
    let query = LogQuery {
        paths: f.path.iter().cloned().collect(),
        author: args.author.clone(),
        since: f.since,
        until: f.until,
        skip,
        limit: Some(limit + 1),
        max_walk: Some(MAX_SCAN),
    };
    let mut truncated_by_depth = false;
    let log = loop {
        let log = log::log(&c.git, &[at.commit], &query)?;
        match &log.end {
            LogEnd::NeedsHistory(needs) => {
                if !c.deepen(at.via.as_deref(), needs)? {
                    truncated_by_depth = true;
                    break log;
                }
            }
            _ => break log,
        }
    };
    let more = log.commits.len() > limit;
    let scan_capped = log.end == LogEnd::WalkCapped;
    let git = &*c.git;
    let commits = log
        .commits
        .iter()
        .take(limit)
        .map(|&oid| summary_of(git, oid))
        .collect::<Result<Vec<_>>>()?;
    // A cursor is only given when more commits follow: one past the end was forged (its
    // fingerprint matches, its count does not), and an empty page would read as the end.
    if skip > 0 && commits.is_empty() && !scan_capped && !truncated_by_depth {
        return Err(Error::input(
            "invalid cursor: no commit follows it; pass the `next_cursor` of the previous page unchanged, or omit it to start over",
        ));
    }
    let mut notes = Vec::new();
    if let Some(n) = c.fetch_note() {
        notes.push(n);
    }
    if truncated_by_depth {
        notes.push(
            "the history stops here: the checkout's history ends at a shallow boundary that could not be deepened"
                .to_string(),
        );
    }
    if scan_capped {
        notes.push(format!(
            "stopped after looking at {MAX_SCAN} commits; narrow the search with since/until or a ref"
        ));
    }
    let shown = commits.len();
    let out = ListOutput {
        repo: c.name().to_string(),
        reference: at.label(),
        commits,
        next_cursor: (more || (truncated_by_depth && shown > 0))
            .then(|| paging::encode(KIND, &format!("{fingerprint}:{}", skip + shown))),
        history_truncated_by_depth: truncated_by_depth,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    };
    Ok(out)
}

/// One listed commit, with its parents as recorded (also at a shallow boundary).
fn summary_of(git: &git2::Repository, oid: git2::Oid) -> Result<CommitSummary> {
    let commit = git.find_commit(oid).map_err(git_error)?;
    Ok(CommitSummary {
        hash: oid.to_string(),
        summary: summary(&commit),
        author: Person::of(&commit.author()),
        committed: rfc3339(commit.committer().when()),
        parents: recorded_parents(git, oid)?
            .iter()
            .map(git2::Oid::to_string)
            .collect(),
    })
}

fn fingerprint(args: &ListArgs, start: git2::Oid) -> String {
    use sha2::Digest;
    let key = serde_json::json!([
        args.repo,
        start.to_string(),
        args.path,
        args.author,
        args.since,
        args.until
    ]);
    let digest = sha2::Sha256::digest(key.to_string().as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

fn remote(r: &Remote<'_>, args: &ListArgs, f: &Filters) -> Result<ListOutput> {
    let (branch, _) = r.resolve(args.reference.as_deref())?;
    let binding = format!(
        "{}|{branch}|{}|{}|{}|{}",
        r.name,
        f.path.as_deref().unwrap_or(""),
        args.author.as_deref().unwrap_or(""),
        args.since.as_deref().unwrap_or(""),
        args.until.as_deref().unwrap_or("")
    );
    let after = paging::decode_bound(API_KIND, &binding, args.cursor.as_deref())?;
    let query = CommitQuery {
        path: f.path.clone(),
        ..CommitQuery::from(Rev::Branch(branch.clone()))
    };
    let page = block_on(
        r.client
            .commits(&r.id, &query, f.limit, after.map(Cursor::from).as_ref()),
    )
    .map_err(|e| api_error(e, &format!("branch `{branch}` of `{}`", r.name)))?;
    let mut commits = Vec::new();
    let mut older_than_since = false;
    for c in &page.values {
        // The committer date, as `since`/`until` say (Cloud records only the author's).
        let date = c.committer.as_ref().and_then(|s| s.date).or(c.author.date);
        let time = date.map(|d| d.timestamp()).unwrap_or(0);
        if f.since.is_some_and(|t| time < t) {
            // Newest first: the rest of the history is older still.
            older_than_since = true;
            break;
        }
        if f.until.is_some_and(|t| time > t) {
            continue;
        }
        let people = CommitPeople::of(c);
        if let Some(w) = &f.author
            && !format!("{} {}", people.author.name, people.author.email)
                .to_lowercase()
                .contains(w)
        {
            continue;
        }
        commits.push(CommitSummary {
            summary: text::summary(&c.message),
            hash: c.hash.clone(),
            author: people.author,
            committed: people.committer.date,
            parents: c.parents.clone(),
        });
    }
    let next = if older_than_since {
        None
    } else {
        page.next.map(Cursor::into_string)
    };
    Ok(ListOutput {
        repo: r.name.clone(),
        reference: branch,
        commits,
        next_cursor: paging::encode_bound(API_KIND, &binding, next),
        history_truncated_by_depth: false,
        note: Some(NOTE.to_string()),
    })
}
