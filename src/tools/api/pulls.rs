//! `list_pull_requests` and `get_pull_request`. A pull request whose source or destination
//! branch is outside the scope is not shown: the list leaves it out (and counts it), a lookup
//! by id answers `out_of_scope`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ApiRepo, Context, Error, Kind, api_error, api_repo, block_on, decode_cursor, encode_cursor,
    millis_rfc3339, s,
};
use crate::bitbucket::ApiErrorKind;
use crate::tools::paging::page_limit;
use crate::tools::text::{MAX_OUTPUT_BYTES, cut_chars};
use crate::tools::{Registered, ToolInfo, parse_args, schema_of};

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

pub fn list_tool() -> Registered {
    Registered {
        info: ToolInfo {
            name: "list_pull_requests",
            description: "List a repository's pull requests by state (OPEN, MERGED, DECLINED, SUPERSEDED, ALL) and optionally author: title, author, source and destination branch, reviewers, comment count, dates. Pull requests touching a branch outside the environment's scope are left out. From the Bitbucket API. Paginated: pass `next_cursor` back as `cursor`.",
            input_schema: schema_of::<ListArgs>(),
            output_schema: schema_of::<ListOutput>(),
            default: true,
            api_only: true,
        },
        call: run_list,
    }
}

const LIST_KIND: &str = "pulls.v1";
const MAX_PR_LIMIT: usize = 50;

fn run_list(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: ListArgs = parse_args(args)?;
    let limit = page_limit(args.limit)?;
    if limit > MAX_PR_LIMIT {
        return Err(Error::new(
            Kind::Input,
            format!(
                "limit {limit} is out of range; use 1 to {MAX_PR_LIMIT} and follow next_cursor for more"
            ),
        ));
    }
    let repo = api_repo(ctx, &args.repo)?;
    let state_name = serde_json::to_value(args.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let binding = format!(
        "{}|{state_name}|{}",
        repo.name,
        args.author.as_deref().unwrap_or("")
    );
    let after = decode_cursor(LIST_KIND, &binding, args.cursor.as_deref())?;
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
            return Err(Error::new(
                Kind::Input,
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
        next_cursor: encode_cursor(LIST_KIND, &binding, page.next),
    };
    Ok(serde_json::to_value(out).expect("json"))
}

fn branches_in_scope(ctx: &Context, pr: &PullRequest) -> bool {
    ctx.env.scope.branch(&pr.source_branch) && ctx.env.scope.branch(&pr.destination_branch)
}

fn author_matches(repo: &ApiRepo<'_>, v: &Value, who: &str) -> bool {
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
        .filter_map(|f| s(v, f))
        .any(|n| n.eq_ignore_ascii_case(who))
}

/// A pull request from either API's JSON.
fn parse(repo: &ApiRepo<'_>, v: &Value) -> Option<PullRequest> {
    let id = v.get("id").and_then(Value::as_u64)?;
    let title = s(v, "/title").unwrap_or_default();
    let state = s(v, "/state").unwrap_or_default().to_uppercase();
    let draft = v.get("draft").and_then(Value::as_bool).unwrap_or(false);
    if repo.is_cloud() {
        let reviewers = v.get("reviewers").and_then(Value::as_array).map(|list| {
            let participants = v.get("participants").and_then(Value::as_array);
            list.iter()
                .filter_map(|r| {
                    let name = s(r, "/display_name").or_else(|| s(r, "/nickname"))?;
                    let uuid = s(r, "/uuid");
                    let approved = participants.and_then(|ps| {
                        ps.iter()
                            .find(|p| uuid.is_some() && s(p, "/user/uuid") == uuid)
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
            author: s(v, "/author/display_name").or_else(|| s(v, "/author/nickname")),
            source_branch: s(v, "/source/branch/name")?,
            destination_branch: s(v, "/destination/branch/name")?,
            source_commit: s(v, "/source/commit/hash"),
            destination_commit: s(v, "/destination/commit/hash"),
            reviewers,
            comment_count: v.get("comment_count").and_then(Value::as_u64),
            created: s(v, "/created_on"),
            updated: s(v, "/updated_on"),
            url: s(v, "/links/html/href"),
        })
    } else {
        let reviewers = v.get("reviewers").and_then(Value::as_array).map(|list| {
            list.iter()
                .filter_map(|r| {
                    Some(Reviewer {
                        name: s(r, "/user/displayName").or_else(|| s(r, "/user/name"))?,
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
            author: s(v, "/author/user/displayName").or_else(|| s(v, "/author/user/name")),
            source_branch: s(v, "/fromRef/displayId")?,
            destination_branch: s(v, "/toRef/displayId")?,
            source_commit: s(v, "/fromRef/latestCommit"),
            destination_commit: s(v, "/toRef/latestCommit"),
            reviewers,
            // Data Center only records it once there are comments.
            comment_count: Some(
                v.pointer("/properties/commentCount")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            ),
            created: millis_rfc3339(v.get("createdDate").and_then(Value::as_i64)),
            updated: millis_rfc3339(v.get("updatedDate").and_then(Value::as_i64)),
            url: s(v, "/links/self/0/href"),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// The repository, as the environment names it.
    pub repo: String,
    /// The pull request's number.
    pub id: u64,
    /// Include the unified diff, capped at 100 KB (default false).
    #[serde(default)]
    pub diff: bool,
}

/// One changed file.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct FileChange {
    pub path: String,
    /// The path before a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// added, removed, modified, renamed (Cloud) or ADD, DELETE, MODIFY, MOVE, COPY (Data Center).
    pub status: String,
    /// Cloud only: Data Center's change list has no line counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_added: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_removed: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct GetOutput {
    pub repo: String,
    pub pull_request: PullRequest,
    /// The description, capped at 10 KB.
    pub description: String,
    /// The diffstat: files changed, with line counts where the server gives them.
    pub files: Vec<FileChange>,
    /// True when the server had more changed files than listed here.
    pub files_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_added: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_removed: Option<u64>,
    /// The unified diff when asked for, capped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why the diff is cut or missing, and how to see the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_note: Option<String>,
}

pub fn get_tool() -> Registered {
    Registered {
        info: ToolInfo {
            name: "get_pull_request",
            description: "Show one pull request: details, reviewers, the files it changes with line counts (diffstat), and optionally its unified diff (capped at 100 KB). Refused when its source or destination branch is outside the environment's scope. From the Bitbucket API.",
            input_schema: schema_of::<GetArgs>(),
            output_schema: schema_of::<GetOutput>(),
            default: true,
            api_only: true,
        },
        call: run_get,
    }
}

/// Changed files listed at most.
const MAX_FILES: usize = 500;

fn run_get(ctx: &Context, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    let args: GetArgs = parse_args(args)?;
    let repo = api_repo(ctx, &args.repo)?;
    let what = format!("pull request {} of `{}`", args.id, repo.name);
    let client = repo.client.clone();
    let cloud = repo.is_cloud();
    let pr_path = if cloud {
        format!("{}/pullrequests/{}", repo.base, args.id)
    } else {
        format!("{}/pull-requests/{}", repo.base, args.id)
    };
    let v = block_on(client.get_json(&pr_path)).map_err(|e| api_error(e, &what))?;
    let pr = parse(&repo, &v).ok_or_else(|| {
        Error::new(
            Kind::Unavailable,
            format!("the server's answer for {what} is not shaped like a pull request"),
        )
    })?;
    if !branches_in_scope(ctx, &pr) {
        return Err(Error::new(
            Kind::OutOfScope,
            format!(
                "{what} is between branches outside the environment's scope; call list_pull_requests to see the pull requests in scope"
            ),
        ));
    }
    let description = cut_chars(&s(&v, "/description").unwrap_or_default(), 10 * 1024);

    // Cloud redirects the pull request's diffstat and diff to the commit-range endpoints.
    let stat_path = if cloud {
        format!("{pr_path}/diffstat?pagelen={MAX_FILES}")
    } else {
        format!("{pr_path}/changes?limit={MAX_FILES}")
    };
    let stat = block_on(client.get_json(&stat_path)).map_err(|e| api_error(e, &what))?;
    let entries = stat
        .get("values")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let more = stat.get("next").is_some()
        || stat.get("isLastPage").and_then(Value::as_bool) == Some(false);
    let files: Vec<FileChange> = entries
        .iter()
        .take(MAX_FILES)
        .map(|e| if cloud { cloud_change(e) } else { dc_change(e) })
        .collect();
    let sum = |f: fn(&FileChange) -> Option<u64>| -> Option<u64> {
        cloud.then(|| files.iter().filter_map(f).sum())
    };
    let lines_added = sum(|f| f.lines_added);
    let lines_removed = sum(|f| f.lines_removed);

    let (diff, diff_note) = if args.diff {
        let path = if cloud {
            format!("{pr_path}/diff")
        } else {
            format!("{pr_path}.diff")
        };
        match block_on(client.get(&path, "text/plain", MAX_OUTPUT_BYTES + 1)) {
            Ok(r) => {
                let text = r.text();
                if r.truncated || text.len() > MAX_OUTPUT_BYTES {
                    (
                        Some(cut_chars(&text, MAX_OUTPUT_BYTES)),
                        Some(format!("the diff is longer than {MAX_OUTPUT_BYTES} bytes and was cut; read the changed files with get_commit or read_file on the source branch")),
                    )
                } else {
                    (Some(text), None)
                }
            }
            Err(e) if e.kind == ApiErrorKind::NotFound => (
                None,
                Some("the server offers no diff for this pull request; see `files` and read the files on the source branch".to_string()),
            ),
            Err(e) => return Err(api_error(e, &what)),
        }
    } else {
        (None, None)
    };
    let out = GetOutput {
        repo: repo.name.clone(),
        pull_request: pr,
        description,
        files,
        files_truncated: more || entries.len() > MAX_FILES,
        lines_added,
        lines_removed,
        diff,
        diff_note,
    };
    Ok(serde_json::to_value(out).expect("json"))
}

fn cloud_change(e: &Value) -> FileChange {
    let new = s(e, "/new/path");
    let old = s(e, "/old/path");
    let status = s(e, "/status").unwrap_or_default();
    FileChange {
        path: new.clone().or_else(|| old.clone()).unwrap_or_default(),
        old_path: if status == "renamed" { old } else { None },
        status,
        lines_added: e.get("lines_added").and_then(Value::as_u64),
        lines_removed: e.get("lines_removed").and_then(Value::as_u64),
    }
}

fn dc_change(e: &Value) -> FileChange {
    FileChange {
        path: s(e, "/path/toString").unwrap_or_default(),
        old_path: s(e, "/srcPath/toString"),
        status: s(e, "/type").unwrap_or_default(),
        lines_added: None,
        lines_removed: None,
    }
}
