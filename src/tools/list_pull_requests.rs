//! `list_pull_requests`: a repository's pull requests by state and author, from the API. A
//! pull request whose source or destination branch is outside the scope is left out and
//! counted; `get_pull_request` refuses one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paging::{self, page_limit};
use super::source::Remote;
use super::source::remote::{api_error, block_on, str_at};
use super::text::millis_rfc3339;
use super::{Context, Error, Result, Tool};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    #[default]
    Open,
    Merged,
    Declined,
    /// Cloud only.
    Superseded,
    All,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// The repository, as the environment names it (see list_repositories).
    pub repo: String,
    /// OPEN (default), MERGED, DECLINED, SUPERSEDED (Cloud only) or ALL.
    #[serde(default)]
    pub state: State,
    /// Only pull requests by this author (display name, nickname or username; case-insensitive).
    #[serde(default)]
    pub author: Option<String>,
    /// `next_cursor` from the previous page; omit for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Pull requests requested per page: 1 to 50, default 30 (filters may leave fewer).
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
    const DESCRIPTION: &'static str = "List a repository's pull requests by state (OPEN, MERGED, DECLINED, SUPERSEDED, ALL) and optionally author: title, author, source and destination branch, reviewers, comment count, dates. Pull requests touching a branch outside the environment's scope are left out. From the Bitbucket API. Paginated: pass `next_cursor` back as `cursor`.";
    const API_ONLY: bool = true;
    type Args = ListArgs;
    type Output = ListOutput;

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
        let mut params: Vec<(&str, String)> = Vec::new();
        let endpoint = if repo.is_cloud() {
            let one = [state_name.as_str()];
            let states: &[&str] = match args.state {
                State::All => &["OPEN", "MERGED", "DECLINED", "SUPERSEDED"],
                _ => &one,
            };
            for st in states {
                params.push(("state", st.to_string()));
            }
            // Cloud lists leave reviewers out unless asked for.
            params.push(("fields", "+values.reviewers,+values.participants".into()));
            format!("{}/pullrequests", repo.base)
        } else {
            if args.state == State::Superseded {
                return Err(Error::input(
                    "state SUPERSEDED exists on Bitbucket Cloud only; Data Center has OPEN, MERGED, DECLINED and ALL",
                ));
            }
            params.push(("state", state_name.clone()));
            format!("{}/pull-requests", repo.base)
        };
        let page = block_on(
            repo.client
                .page(&endpoint, &params, limit, after.as_deref()),
        )
        .map_err(|e| api_error(e, &format!("repository `{}`", repo.name)))?;
        let mut out_of_scope = 0;
        let mut pull_requests = Vec::new();
        for v in &page.values {
            let Some(pr) = parse(&repo, v) else { continue };
            if !branches_in_scope(ctx, &pr) {
                out_of_scope += 1;
                continue;
            }
            if let Some(a) = &args.author
                && !author_matches(&repo, v, a)
            {
                continue;
            }
            pull_requests.push(pr);
        }
        let out = ListOutput {
            repo: repo.name.clone(),
            state: args.state,
            pull_requests,
            out_of_scope,
            next_cursor: paging::encode_bound(LIST_KIND, &binding, page.next),
        };
        Ok(out)
    }
}

const LIST_KIND: &str = "pulls.v1";
const MAX_PR_LIMIT: usize = 50;

pub(crate) fn branches_in_scope(ctx: &Context, pr: &PullRequest) -> bool {
    ctx.env.scope.branch(&pr.source_branch) && ctx.env.scope.branch(&pr.destination_branch)
}

fn author_matches(repo: &Remote<'_>, v: &Value, who: &str) -> bool {
    let fields: &[&str] = if repo.is_cloud() {
        &[
            "/author/display_name",
            "/author/nickname",
            "/author/username",
        ]
    } else {
        &[
            "/author/user/name",
            "/author/user/displayName",
            "/author/user/slug",
        ]
    };
    fields
        .iter()
        .filter_map(|f| str_at(v, f))
        .any(|n| n.eq_ignore_ascii_case(who))
}

/// A pull request from either API's JSON.
pub(crate) fn parse(repo: &Remote<'_>, v: &Value) -> Option<PullRequest> {
    let id = v.get("id").and_then(Value::as_u64)?;
    let title = str_at(v, "/title").unwrap_or_default();
    let state = str_at(v, "/state").unwrap_or_default().to_uppercase();
    let draft = v.get("draft").and_then(Value::as_bool).unwrap_or(false);
    if repo.is_cloud() {
        let reviewers = v.get("reviewers").and_then(Value::as_array).map(|list| {
            let participants = v.get("participants").and_then(Value::as_array);
            list.iter()
                .filter_map(|r| {
                    let name = str_at(r, "/display_name").or_else(|| str_at(r, "/nickname"))?;
                    let uuid = str_at(r, "/uuid");
                    let approved = participants.and_then(|ps| {
                        ps.iter()
                            .find(|p| uuid.is_some() && str_at(p, "/user/uuid") == uuid)
                            .and_then(|p| p.get("approved").and_then(Value::as_bool))
                    });
                    Some(Reviewer { name, approved })
                })
                .collect()
        });
        Some(PullRequest {
            id,
            title,
            state,
            draft,
            author: str_at(v, "/author/display_name").or_else(|| str_at(v, "/author/nickname")),
            source_branch: str_at(v, "/source/branch/name")?,
            destination_branch: str_at(v, "/destination/branch/name")?,
            source_commit: str_at(v, "/source/commit/hash"),
            destination_commit: str_at(v, "/destination/commit/hash"),
            reviewers,
            comment_count: v.get("comment_count").and_then(Value::as_u64),
            created: str_at(v, "/created_on"),
            updated: str_at(v, "/updated_on"),
            url: str_at(v, "/links/html/href"),
        })
    } else {
        let reviewers = v.get("reviewers").and_then(Value::as_array).map(|list| {
            list.iter()
                .filter_map(|r| {
                    Some(Reviewer {
                        name: str_at(r, "/user/displayName").or_else(|| str_at(r, "/user/name"))?,
                        approved: r.get("approved").and_then(Value::as_bool),
                    })
                })
                .collect()
        });
        Some(PullRequest {
            id,
            title,
            state,
            draft,
            author: str_at(v, "/author/user/displayName")
                .or_else(|| str_at(v, "/author/user/name")),
            source_branch: str_at(v, "/fromRef/displayId")?,
            destination_branch: str_at(v, "/toRef/displayId")?,
            source_commit: str_at(v, "/fromRef/latestCommit"),
            destination_commit: str_at(v, "/toRef/latestCommit"),
            reviewers,
            // Data Center only records it once there are comments.
            comment_count: Some(
                v.pointer("/properties/commentCount")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            ),
            created: millis_rfc3339(v.get("createdDate").and_then(Value::as_i64)),
            updated: millis_rfc3339(v.get("updatedDate").and_then(Value::as_i64)),
            url: str_at(v, "/links/self/0/href"),
        })
    }
}
