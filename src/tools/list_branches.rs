//! `list_branches`: the in-scope branches of a repository; those the checkout knows (local and
//! remote-tracking), or every one on the server through the API for a repository that is not
//! cloned.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::paging::{self, page_limit};
use super::source::checkout::{ADVERTISED_TTL, summary};
use super::source::remote::{MAX_PAGES, NOTE, time};
use super::source::{Checkout, Remote, Source};
use super::text::{self, rfc3339};
use super::{Context, Error, Result, Tool};
use crate::git::fetch::Depth;

/// Arguments of `list_branches`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Repository name.
    pub repo: String,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Branches per page, 1-100 (default 30).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One branch.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Branch {
    /// The branch name, usable as `ref` in the other tools.
    pub name: String,
    /// The full id of the commit at the branch head.
    pub commit: String,
    /// The head commit's committer date (RFC 3339).
    pub date: String,
    /// The head commit's message summary (first line).
    pub summary: String,
    /// True for the branch checked out in the working copy.
    pub checked_out: bool,
    /// True for the environment's default branch for this repo (the spec's `branch:`, else
    /// the remote's HEAD, else the checked-out branch).
    pub default: bool,
    /// True when the checkout has a local branch of this name (branches fetched on demand
    /// live in `refs/agentenv/branches/` and are not local branches).
    pub local: bool,
    /// The remote holding a remote-tracking ref of this name (`origin`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

/// Result of `list_branches`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub repo: String,
    /// This page of branches, sorted by name.
    pub branches: Vec<Branch>,
    /// In-scope branches, over all pages.
    pub total: usize,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Where the list comes from, and what answering it fetched.
    pub note: String,
}

/// One row per branch: name, short head id, date, then the flags (only where a branch has
/// any, so the many unflagged rows are not padded for the one that has them) and summary.
fn render(o: &Output) -> String {
    let mut t = format!(
        "{}: {} of {} in scope, by name (name, head, committed, summary)\n",
        o.repo,
        o.branches.len(),
        text::count(o.total as u64, "branch", "branches")
    );
    let rows: Vec<Vec<String>> = o
        .branches
        .iter()
        .map(|b| {
            let mut flags = Vec::new();
            if b.default {
                flags.push("default".to_string());
            }
            if b.checked_out {
                flags.push("checked out".to_string());
            }
            if b.local {
                flags.push("local".to_string());
            }
            if let Some(r) = &b.remote {
                flags.push(format!("remote {r}"));
            }
            let last = if flags.is_empty() {
                b.summary.clone()
            } else {
                format!("[{}] {}", flags.join(", "), b.summary)
            };
            vec![
                b.name.clone(),
                text::short_id(&b.commit).to_string(),
                text::when(&b.date),
                last.trim_end().to_string(),
            ]
        })
        .collect();
    t.push_str(&text::rows(&rows));
    text::footer(&mut t, o.next_cursor.as_deref(), Some(&o.note));
    t
}

pub struct ListBranches;

impl Tool for ListBranches {
    const NAME: &'static str = "list_branches";
    const DESCRIPTION: &'static str = "Every branch of a repository that the scope allows, by name (from the remote): head commit, date, summary, and which is the default. Names work as `ref` in the other tools.";
    type Args = Args;
    type Output = Output;

    fn render(out: &Output) -> String {
        render(out)
    }

    fn run(ctx: &Context, args: Args) -> Result<Output> {
        let limit = page_limit(args.limit)?;
        // The cursor is the last name shown, on either source.
        let after = args
            .cursor
            .as_deref()
            .map(|c| paging::decode(KIND, c))
            .transpose()?;
        let page = Page {
            after: after.as_deref(),
            limit,
        };
        match ctx.source(&args.repo)? {
            Source::Checkout(c) => checkout(&c, page),
            Source::Remote(r) => remote(&r, page),
        }
    }
}

const KIND: &str = "branches.v1";

/// Which page of the branches, sorted by name, a call asks for.
struct Page<'a> {
    after: Option<&'a str>,
    limit: usize,
}

impl Page<'_> {
    /// This page of `items` (sorted by name), and the cursor of the next one. A cursor past
    /// the last branch is refused: a next cursor is only given when more follow, so it was
    /// forged or the branches changed, and an empty page would read as "no more branches".
    fn of<T>(
        &self,
        items: impl Iterator<Item = T>,
        name: impl Fn(&T) -> &str,
    ) -> Result<(Vec<T>, Option<String>)> {
        let mut rest = items.filter(|t| self.after.is_none_or(|a| name(t) > a));
        let page: Vec<T> = rest.by_ref().take(self.limit).collect();
        if page.is_empty() && self.after.is_some() {
            return Err(Error::input(
                "invalid cursor: no branch follows it (the branches changed, or it is not a `next_cursor` of this tool); omit it to start over",
            ));
        }
        let next = match (rest.next(), page.last()) {
            (Some(_), Some(last)) => Some(paging::encode(KIND, name(last))),
            _ => None,
        };
        Ok((page, next))
    }
}

fn checkout(c: &Checkout<'_>, page: Page<'_>) -> Result<Output> {
    let git = &*c.git;
    let checked_out = c.checked_out_branch();
    let heads = c.branch_heads();
    // The remote's list (ls-remote, kept a short while per server) is the answer; without
    // the remote, what the checkout knows, said so.
    let (listed, remote_default, unreachable) = match c.advertised() {
        Ok(a) => (
            a.branches
                .iter()
                .filter(|(n, _)| c.scope().branch(n))
                .map(|(n, o)| (n.clone(), *o))
                .collect::<Vec<_>>(),
            a.default.clone(),
            None,
        ),
        Err(e) => {
            let mut known: BTreeMap<String, git2::Oid> = BTreeMap::new();
            for h in &heads {
                known.entry(h.name.clone()).or_insert(h.commit);
            }
            (known.into_iter().collect(), None, Some(e.message))
        }
    };
    let default = c
        .repo
        .spec
        .branch
        .clone()
        .or(remote_default)
        .or_else(|| remote_default_ref(git))
        .or_else(|| checked_out.clone());
    let total = listed.len();
    let (names, next_cursor) = page.of(listed.into_iter(), |(name, _)| name.as_str())?;

    // Tips this page shows that the checkout lacks: fetched (shallowly) to read their dates,
    // which also makes the next call on them local.
    let missing: Vec<String> = names
        .iter()
        .filter(|(_, o)| git.find_commit(*o).is_err())
        .map(|(n, _)| n.clone())
        .collect();
    if unreachable.is_none() && !missing.is_empty() {
        let depth = if git.is_shallow() {
            Depth::Commits(1)
        } else {
            Depth::Full
        };
        c.fetch(&missing, depth)?;
    }
    let branches = names
        .into_iter()
        .map(|(name, oid)| {
            let commit = git.find_commit(oid).ok();
            let is = |remote: bool| {
                heads
                    .iter()
                    .any(|h| h.name == name && !h.fetched && h.remote.is_some() == remote)
            };
            Branch {
                commit: oid.to_string(),
                date: commit
                    .as_ref()
                    .map(|c| rfc3339(c.committer().when()))
                    .unwrap_or_default(),
                summary: commit.as_ref().map(summary).unwrap_or_default(),
                checked_out: checked_out.as_deref() == Some(name.as_str()),
                default: default.as_deref() == Some(name.as_str()),
                local: is(false),
                remote: is(true).then(|| "origin".to_string()),
                name,
            }
        })
        .collect();
    let mut note = match &unreachable {
        None => format!(
            "every in-scope branch on the remote (git ls-remote, at most {} s old); out-of-scope branches are not listed",
            ADVERTISED_TTL.as_secs()
        ),
        Some(why) => format!(
            "the remote could not be asked ({why}): branches known to the checkout only; out-of-scope branches are not listed"
        ),
    };
    if let Some(n) = c.fetch_note() {
        note.push_str("; ");
        note.push_str(&n);
    }
    Ok(Output {
        repo: c.name().to_string(),
        branches,
        total,
        next_cursor,
        note,
    })
}

fn remote(r: &Remote<'_>, page: Page<'_>) -> Result<Output> {
    let (all, complete) = r.all_branches()?;
    // Data Center marks the default branch in its list; Cloud names it on the repository.
    let marked = all.iter().any(|b| b.is_default.is_some());
    let default = match &r.spec.branch {
        Some(b) => Some(b.clone()),
        None if marked => all
            .iter()
            .find(|b| b.is_default == Some(true))
            .map(|b| b.name.clone()),
        None => r.default_branch().ok(),
    };
    let mut branches = Vec::new();
    for b in all {
        if !r.scope().branch(&b.name) {
            continue;
        }
        branches.push(Branch {
            default: default.as_deref() == Some(b.name.as_str()),
            date: time(b.date.as_ref()),
            summary: text::summary(b.message.as_deref().unwrap_or("")),
            name: b.name,
            commit: b.head,
            checked_out: false,
            local: false,
            remote: None,
        });
    }
    branches.sort_by(|a, b| a.name.cmp(&b.name));
    let total = branches.len();
    let (branches, next_cursor) = page.of(branches.into_iter(), |b| b.name.as_str())?;
    let mut note = format!("{NOTE}; out-of-scope branches are not listed");
    if !r.is_cloud() {
        note.push_str(
            "; Data Center's branch list has no commit dates or messages (call list_commits)",
        );
    }
    if !complete {
        note.push_str(&format!(
            "; only the first {} branches on the server were read",
            MAX_PAGES * 100
        ));
    }
    Ok(Output {
        repo: r.name.clone(),
        branches,
        total,
        next_cursor,
        note,
    })
}

/// The branch `refs/remotes/<remote>/HEAD` points at, if the clone recorded one.
fn remote_default_ref(git: &git2::Repository) -> Option<String> {
    let refs = git.references_glob("refs/remotes/*/HEAD").ok()?;
    for r in refs.flatten() {
        if let Ok(Some(target)) = r.symbolic_target() {
            let rest = target.strip_prefix("refs/remotes/")?;
            return rest.split_once('/').map(|(_, b)| b.to_string());
        }
    }
    None
}
