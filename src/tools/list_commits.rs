//! `list_commits`: the history from a ref, newest first, filtered and paged; walked in the
//! checkout, or read page by page from the API for a repository that is not cloned.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::paging::{self, page_limit};
use super::paths::{clean_path, tree_path};
use super::source::checkout::{SHALLOW_NOTE, git_error, summary};
use super::source::remote::{CommitPeople, NOTE, api_error, block_on};
use super::source::{Checkout, Remote, Source};
use super::text::{self, Person, parse_time, rfc3339};
use super::{Context, Error, Result, Tool};
use crate::bitbucket::{CommitQuery, Cursor, Rev};

/// Arguments of `list_commits`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Repository name.
    pub repo: String,
    /// Branch or commit id to start from (default: the checked-out commit, else the default branch).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    /// Only commits that change this file or directory.
    #[serde(default)]
    pub path: Option<String>,
    /// Only commits whose author name or email contains this (case-insensitive).
    #[serde(default)]
    pub author: Option<String>,
    /// Authored at or after: RFC 3339 or YYYY-MM-DD (UTC).
    #[serde(default)]
    pub since: Option<String>,
    /// Authored at or before: RFC 3339 or YYYY-MM-DD (through that day, UTC).
    #[serde(default)]
    pub until: Option<String>,
    /// `next_cursor` of the previous page (same other arguments).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Commits per page, 1-100 (default 30).
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
    /// Newest first (by commit time).
    pub commits: Vec<CommitSummary>,
    /// Pass as `cursor` (with the same other arguments) to get the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// True when the walk reached the shallow clone's depth: older history exists but is not
    /// in the checkout.
    pub history_truncated_by_depth: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One row per commit: id, committer date, author, summary. A commit's parent is the next
/// row unless a `parents` line says otherwise; an author date is shown where it differs.
fn render(o: &ListOutput) -> String {
    let mut t = format!(
        "{} at {}: {}, newest first (each one's parent is the next unless shown)\n",
        o.repo,
        o.reference,
        text::count(o.commits.len() as u64, "commit", "commits")
    );
    let rows: Vec<Vec<String>> = o
        .commits
        .iter()
        .map(|c| {
            let who = if c.author.email.is_empty() {
                c.author.name.clone()
            } else {
                format!("{} <{}>", c.author.name, c.author.email)
            };
            vec![c.hash.clone(), c.committed.clone(), who, c.summary.clone()]
        })
        .collect();
    for (i, (line, c)) in text::aligned(&rows).into_iter().zip(&o.commits).enumerate() {
        t.push_str(&line);
        t.push('\n');
        if c.author.date != c.committed {
            let _ = writeln!(t, "  authored {}", c.author.date);
        }
        let next = o.commits.get(i + 1).map(|n| n.hash.as_str());
        if c.parents.len() != 1 || Some(c.parents[0].as_str()) != next {
            let parents = if c.parents.is_empty() {
                "none".to_string()
            } else {
                c.parents.join(" ")
            };
            let _ = writeln!(t, "  parents {parents}");
        }
    }
    if o.history_truncated_by_depth {
        t.push_str("history truncated by depth: older commits are not in the clone\n");
    }
    text::footer(&mut t, o.next_cursor.as_deref(), o.note.as_deref());
    t
}

pub struct ListCommits;

impl Tool for ListCommits {
    const NAME: &'static str = "list_commits";
    const DESCRIPTION: &'static str = "Commits reachable from a ref, newest first: id, date, author, summary. Filter by `path`, `author`, `since`/`until`.";
    type Args = ListArgs;
    type Output = ListOutput;

    fn render(out: &ListOutput) -> String {
        render(out)
    }

    fn run(ctx: &Context, args: ListArgs) -> Result<ListOutput> {
        let filters = Filters {
            limit: page_limit(args.limit)?,
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
    /// Seconds since the epoch, on the author date.
    since: Option<i64>,
    until: Option<i64>,
    /// Lowercase.
    author: Option<String>,
}

const KIND: &str = "commits.v1";
const API_KIND: &str = "commits.api.v1";
/// A walk looks at no more commits than this per call, so one call stays bounded on huge
/// histories; the note says when it stopped early.
const MAX_SCAN: usize = 200_000;

fn checkout(c: &Checkout<'_>, args: &ListArgs, f: &Filters) -> Result<ListOutput> {
    let limit = f.limit;
    let at = c.resolve(args.reference.as_deref())?;

    // The cursor pins the walk's start commit and counts the matches already returned, and
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

    let git = &*c.git;
    let mut walk = git.revwalk().map_err(git_error)?;
    walk.set_sorting(git2::Sort::TIME).map_err(git_error)?;
    walk.push(at.commit).map_err(git_error)?;
    let shallow = c.shallow_commits();

    let mut commits = Vec::new();
    let mut matched = 0usize;
    let mut more = false;
    let mut reached_boundary = false;
    let mut scanned = 0usize;
    let mut scan_capped = false;
    for oid in walk {
        scanned += 1;
        if scanned > MAX_SCAN {
            scan_capped = true;
            break;
        }
        let Ok(oid) = oid else { break };
        let Ok(commit) = git.find_commit(oid) else {
            continue;
        };
        if shallow.contains(&oid) {
            reached_boundary = true;
        }
        let when = commit.author().when().seconds();
        if f.since.is_some_and(|s| when < s) || f.until.is_some_and(|u| when > u) {
            continue;
        }
        if let Some(a) = &f.author {
            let sig = commit.author();
            let name = String::from_utf8_lossy(sig.name_bytes()).to_lowercase();
            let email = String::from_utf8_lossy(sig.email_bytes()).to_lowercase();
            if !name.contains(a.as_str()) && !email.contains(a.as_str()) {
                continue;
            }
        }
        if let Some(p) = &f.path
            && !touches(git, &commit, p)
        {
            continue;
        }
        matched += 1;
        if matched <= skip {
            continue;
        }
        if commits.len() == limit {
            more = true;
            break;
        }
        commits.push(CommitSummary {
            hash: oid.to_string(),
            summary: summary(&commit),
            author: Person::of(&commit.author()),
            committed: rfc3339(commit.committer().when()),
            parents: commit.parent_ids().map(|p| p.to_string()).collect(),
        });
    }
    // A cursor is only given when more commits follow: one past the end was forged (its
    // fingerprint matches, its count does not), and an empty page would read as the end.
    if skip > 0 && commits.is_empty() && !scan_capped {
        return Err(Error::input(
            "invalid cursor: no commit follows it; pass the `next_cursor` of the previous page unchanged, or omit it to start over",
        ));
    }
    let truncated_by_depth = !more && !scan_capped && reached_boundary;
    let mut notes = Vec::new();
    if truncated_by_depth {
        notes.push(SHALLOW_NOTE.to_string());
    }
    if scan_capped {
        notes.push(format!(
            "stopped after looking at {MAX_SCAN} commits; narrow the search with since/until or a ref"
        ));
    }
    let out = ListOutput {
        repo: c.name().to_string(),
        reference: at.label(),
        commits,
        next_cursor: more.then(|| paging::encode(KIND, &format!("{fingerprint}:{}", skip + limit))),
        history_truncated_by_depth: truncated_by_depth,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    };
    Ok(out)
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

/// Whether a commit changes `path` (a file or a directory) compared with its parents: like
/// `git log -- path`, a merge that matches one of its parents there does not count. A commit
/// without parents in the clone (a root, or the shallow boundary) counts when it has the path.
fn touches(git: &git2::Repository, commit: &git2::Commit<'_>, path: &str) -> bool {
    let id_at = |c: &git2::Commit<'_>| {
        c.tree()
            .ok()
            .and_then(|t| t.get_path(std::path::Path::new(path)).ok())
            .map(|e| e.id())
    };
    let mine = id_at(commit);
    let parents: Vec<_> = commit
        .parent_ids()
        .filter_map(|p| git.find_commit(p).ok())
        .collect();
    if parents.is_empty() {
        return mine.is_some();
    }
    parents.iter().all(|p| id_at(p) != mine)
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
        let time = c.author.date.map(|d| d.timestamp()).unwrap_or(0);
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
