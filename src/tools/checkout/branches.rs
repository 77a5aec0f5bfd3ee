//! `list_branches`: the branches the checkout knows (local and remote-tracking), in scope.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Context, Error, Tool, cursor, open, page_limit};
use crate::tools::scope::{self, BranchHead};
use crate::tools::{ToolInfo, parse_args, schema_of};

/// Arguments of `list_branches`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The repository, as the environment names it (see list_repositories).
    pub repo: String,
    /// `next_cursor` from the previous page; omit for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Branches per page: 1 to 100, default 30.
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
    /// True when the checkout has a local branch of this name.
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
    /// In-scope branches known to the checkout, over all pages.
    pub total: usize,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Why the list may be short: clones are single-branch unless the spec says otherwise.
    pub note: String,
}

pub fn tool() -> Tool {
    Tool {
        info: ToolInfo {
            name: "list_branches",
            description: "List the branches of a repository that are in the environment's scope, sorted by name: name, head commit, date, summary, and which one is checked out and which is the default; names are usable as `ref` in the other tools. A cloned repository is answered from its checkout (local branches and remote-tracking refs: a single-branch clone knows only the branches it fetched); an in-scope repository that is not cloned is answered from the Bitbucket API (every in-scope branch on the server; Data Center gives no dates or summaries), and `note` says so. Paginated: `limit` 1-100 (default 30), pass `next_cursor` back as `cursor`.",
            input_schema: schema_of::<Args>(),
            output_schema: schema_of::<Output>(),
            default: true,
        },
        run,
    }
}

const KIND: &str = "branches.v1";

fn run(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: Args = parse_args(args)?;
    let limit = page_limit(args.limit)?;
    let after = args
        .cursor
        .as_deref()
        .map(|c| cursor::decode(KIND, c))
        .transpose()?;
    let (repo, git) = open(ctx, &args.repo)?;

    let checked_out = git.head().ok().and_then(|h| {
        h.name()
            .ok()
            .and_then(|n| n.strip_prefix("refs/heads/"))
            .map(str::to_string)
    });
    let default = repo
        .spec
        .branch
        .clone()
        .or_else(|| remote_default(&git))
        .or_else(|| checked_out.clone());

    // One entry per name: a local branch wins over its remote-tracking ref for the head.
    let mut by_name: BTreeMap<String, (Option<BranchHead>, Option<BranchHead>)> = BTreeMap::new();
    for h in scope::branch_heads(ctx, &git) {
        let slot = by_name.entry(h.name.clone()).or_default();
        match h.remote {
            None => slot.0 = Some(h),
            Some(_) => {
                if slot.1.is_none() {
                    slot.1 = Some(h)
                }
            }
        }
    }
    let total = by_name.len();
    let mut page = Vec::new();
    let mut next_cursor = None;
    let start = after.as_deref();
    for (name, (local, remote)) in by_name
        .iter()
        .filter(|(name, _)| start.is_none_or(|s| name.as_str() > s))
    {
        if page.len() == limit {
            next_cursor = page.last().map(|b: &Branch| cursor::encode(KIND, &b.name));
            break;
        }
        let Some(head) = local.as_ref().or(remote.as_ref()) else {
            continue;
        };
        let Ok(commit) = git.find_commit(head.commit) else {
            continue;
        };
        page.push(Branch {
            name: name.clone(),
            commit: head.commit.to_string(),
            date: super::rfc3339(commit.committer().when()),
            summary: super::summary(&commit),
            checked_out: checked_out.as_deref() == Some(name),
            default: default.as_deref() == Some(name),
            local: local.is_some(),
            remote: remote.as_ref().and_then(|r| r.remote.clone()),
        });
    }
    let out = Output {
        repo: repo.name.clone(),
        branches: page,
        total,
        next_cursor,
        note: "branches known to the local clone only (clones are single-branch unless the spec sets otherwise); out-of-scope branches are not listed".to_string(),
    };
    Ok(serde_json::to_value(out).expect("json"))
}

/// The branch `refs/remotes/<remote>/HEAD` points at, if the clone recorded one.
fn remote_default(git: &git2::Repository) -> Option<String> {
    let refs = git.references_glob("refs/remotes/*/HEAD").ok()?;
    for r in refs.flatten() {
        if let Ok(Some(target)) = r.symbolic_target() {
            let rest = target.strip_prefix("refs/remotes/")?;
            return rest.split_once('/').map(|(_, b)| b.to_string());
        }
    }
    None
}
