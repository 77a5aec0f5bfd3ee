//! `list_pull_requests`: a repository's pull requests by state and author, from the API. A
//! pull request whose source or destination branch is outside the scope is left out and
//! counted; `get_pull_request` refuses one.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::paging::{self, page_limit};
use super::source::remote::{api_error, block_on, opt_time};
use super::{Context, Error, Result, Tool, text};
use crate::bitbucket::{self, Cursor, PrQuery, PrState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    #[default]
    Open,
    Merged,
    Declined,
    Superseded,
    All,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Repository name.
    pub repo: String,
    /// Default OPEN; SUPERSEDED is Cloud only.
    #[serde(default)]
    pub state: State,
    /// Only by this author (display name, nickname or username).
    #[serde(default)]
    pub author: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Pull requests per page, 1-50 (default 30), before filtering.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A reviewer and whether they approved.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Reviewer {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
}

/// A pull request, as both tools show it.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PullRequest {
    pub id: u64,
    pub title: String,
    /// OPEN, MERGED, DECLINED or SUPERSEDED.
    pub state: String,
    pub draft: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub source_branch: String,
    pub destination_branch: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_commit: Option<String>,
    /// Absent when the server's list omits them (Cloud lists do unless asked): call
    /// get_pull_request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviewers: Option<Vec<Reviewer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_count: Option<u64>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ListOutput {
    pub repo: String,
    pub state: State,
    pub pull_requests: Vec<PullRequest>,
    /// Pull requests of this page left out because a branch is out of scope.
    pub out_of_scope: usize,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub struct ListPullRequests;

impl Tool for ListPullRequests {
    const NAME: &'static str = "list_pull_requests";
    const DESCRIPTION: &'static str = "Pull requests of a repository by state (default OPEN) and author: title, branches, author, reviewers and approvals, comment count, dates. Those touching an out-of-scope branch are left out.";
    const API_ONLY: bool = true;
    type Args = ListArgs;
    type Output = ListOutput;

    fn render(out: &ListOutput) -> String {
        let state = serde_json::to_value(out.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let shared = Shared::of(&out.pull_requests, &state);
        let mut t = format!(
            "{}: {} ({state})",
            out.repo,
            text::count(
                out.pull_requests.len() as u64,
                "pull request",
                "pull requests"
            )
        );
        if let Some((branch, commit)) = &shared.into {
            let _ = write!(t, ", all into {branch} {commit}");
        }
        if out.out_of_scope > 0 {
            let _ = write!(
                t,
                ", {} left out: a branch is out of scope",
                out.out_of_scope
            );
        }
        if !out.pull_requests.is_empty() {
            let into = if shared.into.is_some() {
                ""
            } else {
                " -> destination"
            };
            let _ = write!(
                t,
                "\nrows: #id title / author: source{into}; reviewers; comments where any / created -> updated"
            );
        }
        t.push('\n');
        if let Some(prefix) = &shared.links {
            let _ = writeln!(t, "links: {prefix}{{id}}");
        }
        for pr in &out.pull_requests {
            render_pr(&mut t, pr, Some(&shared));
        }
        text::footer(&mut t, out.next_cursor.as_deref(), None);
        t
    }

    fn run(ctx: &Context, args: ListArgs) -> Result<ListOutput> {
        let limit = page_limit(args.limit)?;
        if limit > MAX_PR_LIMIT {
            return Err(Error::input(format!(
                "limit {limit} is out of range; use 1 to {MAX_PR_LIMIT} and follow next_cursor for more"
            )));
        }
        let repo = ctx.remote(&args.repo)?;
        let state_name = serde_json::to_value(args.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let binding = format!(
            "{}|{state_name}|{}",
            repo.name,
            args.author.as_deref().unwrap_or("")
        );
        let after = paging::decode_bound(LIST_KIND, &binding, args.cursor.as_deref())?;
        let query = PrQuery {
            state: match args.state {
                State::All => None,
                State::Open => Some(PrState::Open),
                State::Merged => Some(PrState::Merged),
                State::Declined => Some(PrState::Declined),
                State::Superseded => Some(PrState::Superseded),
            },
        };
        let page = block_on(repo.client.pull_requests(
            &repo.id,
            &query,
            limit,
            after.map(Cursor::from).as_ref(),
        ))
        .map_err(|e| api_error(e, &format!("repository `{}`", repo.name)))?;
        let mut out_of_scope = 0;
        let mut pull_requests = Vec::new();
        for pr in page.values {
            let by_author = args
                .author
                .as_deref()
                .is_none_or(|a| pr.author.as_ref().is_some_and(|u| u.answers_to(a)));
            let pr = PullRequest::of(pr);
            if !branches_in_scope(ctx, &pr) {
                out_of_scope += 1;
                continue;
            }
            if !by_author {
                continue;
            }
            pull_requests.push(pr);
        }
        let out = ListOutput {
            repo: repo.name.clone(),
            state: args.state,
            pull_requests,
            out_of_scope,
            next_cursor: paging::encode_bound(
                LIST_KIND,
                &binding,
                page.next.map(Cursor::into_string),
            ),
        };
        Ok(out)
    }
}

const LIST_KIND: &str = "pulls.v1";
const MAX_PR_LIMIT: usize = 50;

/// What every pull request of a list shares, said once above the rows.
pub(crate) struct Shared {
    /// The list's state.
    state: String,
    /// The destination branch and short commit, when every one has the same.
    into: Option<(String, String)>,
    /// The link up to the id, when every link is that followed by the id.
    links: Option<String>,
}

impl Shared {
    fn of(prs: &[PullRequest], state: &str) -> Shared {
        let into = |pr: &PullRequest| {
            let commit = pr.destination_commit.as_deref().map(text::short_id);
            (
                pr.destination_branch.clone(),
                commit.unwrap_or("").to_string(),
            )
        };
        let first = prs.first();
        let same_into = first
            .map(into)
            .filter(|d| prs.len() > 1 && prs.iter().all(|pr| into(pr) == *d));
        let prefix = |pr: &PullRequest| {
            let url = pr.url.as_deref()?;
            url.strip_suffix(&pr.id.to_string()).map(str::to_string)
        };
        let links = first
            .and_then(prefix)
            .filter(|p| prs.len() > 1 && prs.iter().all(|pr| prefix(pr).as_ref() == Some(p)));
        Shared {
            state: state.to_string(),
            into: same_into,
            links,
        }
    }
}

/// A pull request in two or three lines: number, state and title; author, branches with
/// their short commit ids, reviewers and comments; dates and link. In a list, what the list
/// says once (its state, a shared destination, the link pattern) and a comment count of zero
/// go without saying.
pub(crate) fn render_pr(t: &mut String, pr: &PullRequest, listed: Option<&Shared>) {
    let _ = write!(t, "#{}", pr.id);
    if listed.map(|l| l.state.as_str()) != Some(pr.state.as_str()) {
        let _ = write!(t, " {}", pr.state);
    }
    if pr.draft {
        t.push_str(" draft");
    }
    let _ = writeln!(t, " {}", pr.title);
    let side = |branch: &str, commit: &Option<String>| match commit {
        Some(c) => format!("{branch} {}", text::short_id(c)),
        None => branch.to_string(),
    };
    let branches = if listed.is_some_and(|l| l.into.is_some()) {
        side(&pr.source_branch, &pr.source_commit)
    } else {
        format!(
            "{} -> {}",
            side(&pr.source_branch, &pr.source_commit),
            side(&pr.destination_branch, &pr.destination_commit)
        )
    };
    let mut line = vec![match &pr.author {
        Some(a) => format!("{a}: {branches}"),
        None => branches,
    }];
    if let Some(rs) = &pr.reviewers {
        let names: Vec<String> = rs
            .iter()
            .map(|r| match r.approved {
                Some(true) => format!("{} (approved)", r.name),
                _ => r.name.clone(),
            })
            .collect();
        line.push(if names.is_empty() {
            "no reviewers".to_string()
        } else {
            format!("reviewers {}", names.join(", "))
        });
    }
    match pr.comment_count {
        Some(0) if listed.is_some() => {}
        Some(n) => line.push(text::count(n, "comment", "comments")),
        None => {}
    }
    let _ = writeln!(t, "  {}", line.join("; "));
    let dates: Vec<String> = [
        match (&pr.created, &pr.updated, listed) {
            // The list's legend names the two.
            (Some(c), Some(u), Some(_)) => Some(format!("{} -> {}", text::when(c), text::when(u))),
            _ => None,
        },
        pr.created
            .as_deref()
            .filter(|_| listed.is_none() || pr.updated.is_none())
            .map(|d| format!("created {}", text::when(d))),
        pr.updated
            .as_deref()
            .filter(|_| listed.is_none() || pr.created.is_none())
            .map(|d| format!("updated {}", text::when(d))),
        pr.url
            .clone()
            .filter(|_| listed.is_none_or(|l| l.links.is_none())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !dates.is_empty() {
        let _ = writeln!(t, "  {}", dates.join(", "));
    }
}

pub(crate) fn branches_in_scope(ctx: &Context, pr: &PullRequest) -> bool {
    ctx.env.scope.branch(&pr.source_branch) && ctx.env.scope.branch(&pr.destination_branch)
}

impl PullRequest {
    /// A pull request as both tools show it.
    pub(crate) fn of(pr: bitbucket::PullRequest) -> PullRequest {
        let name = |u: &bitbucket::User| u.label().map(str::to_string);
        PullRequest {
            id: pr.id,
            title: pr.title,
            state: pr.state.as_str().to_string(),
            draft: pr.draft,
            author: pr.author.as_ref().and_then(name),
            source_branch: pr.source.branch,
            destination_branch: pr.destination.branch,
            source_commit: pr.source.commit,
            destination_commit: pr.destination.commit,
            reviewers: pr.reviewers.map(|list| {
                list.iter()
                    .filter_map(|r| {
                        Some(Reviewer {
                            name: name(&r.user)?,
                            approved: r.approved,
                        })
                    })
                    .collect()
            }),
            comment_count: pr.comment_count,
            created: opt_time(pr.created.as_ref()),
            updated: opt_time(pr.updated.as_ref()),
            url: pr.web_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(id: u64, into: &str, url: &str) -> PullRequest {
        PullRequest {
            id,
            title: format!("Change {id}"),
            state: "OPEN".into(),
            draft: false,
            author: Some("ann".into()),
            source_branch: format!("f{id}"),
            destination_branch: into.into(),
            source_commit: Some(format!("{id:0>40}")),
            destination_commit: Some("ab".repeat(20)),
            reviewers: Some(vec![]),
            comment_count: Some(0),
            created: None,
            updated: None,
            url: Some(format!("{url}{id}")),
        }
    }

    fn list(prs: Vec<PullRequest>) -> String {
        ListPullRequests::render(&ListOutput {
            repo: "r".into(),
            state: State::Open,
            pull_requests: prs,
            out_of_scope: 0,
            next_cursor: None,
        })
    }

    #[test]
    fn what_every_row_shares_is_said_once() {
        let t = list(vec![
            pr(1, "main", "https://h/pr/"),
            pr(2, "main", "https://h/pr/"),
        ]);
        assert!(
            t.contains(", all into main abababababab\nrows: #id title / author: source;"),
            "{t}"
        );
        assert!(t.contains("links: https://h/pr/{id}\n"), "{t}");
        assert!(
            !t.contains("https://h/pr/1") && !t.contains("-> main"),
            "{t}"
        );
        // Rows that differ keep their own destination and link.
        let t = list(vec![
            pr(1, "main", "https://h/pr/"),
            pr(2, "dev", "https://o/"),
        ]);
        assert!(!t.contains("all into") && !t.contains("links:"), "{t}");
        assert!(
            t.contains("-> main abababababab") && t.contains("-> dev"),
            "{t}"
        );
        assert!(
            t.contains("https://h/pr/1") && t.contains("https://o/2"),
            "{t}"
        );
    }
}
