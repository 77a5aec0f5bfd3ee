//! The API back end of `list_commits` and `get_commit` for repositories that are not cloned,
//! in the checkout tools' output shapes.
//!
//! `get_commit` accepts a commit id only when an in-scope branch reaches it, as on a checkout.
//! Cloud answers that in one request (`commits?include=ID&exclude=<every in-scope branch>` is
//! empty exactly when every ancestor of ID is on one of them); Data Center needs one request per
//! in-scope branch (`commits?until=ID&since=BRANCH`), so at most `MAX_DC_BRANCHES` are tried.

use serde::Deserialize;
use serde_json::{Value, json};

use super::fallback::{NOTE, branch_heads, branch_path, looks_like_commit_id, resolve};
use super::{
    ApiRepo, Context, Error, Kind, api_error, api_repo, block_on, decode_cursor, encode_cursor,
    millis_rfc3339, s,
};
use crate::bitbucket::{ApiErrorKind, query, seg};
use crate::tools::checkout::{MAX_OUTPUT_BYTES, cut_chars, page_limit};
use crate::tools::text::parse_time;
use crate::tools::{parse_args, scope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    repo: String,
    #[serde(default, rename = "ref")]
    reference: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

const LIST_KIND: &str = "commits.api.v1";

pub(crate) fn list_commits(ctx: &Context, args: Value) -> Result<Value, Error> {
    let args: ListArgs = parse_args(args)?;
    let limit = page_limit(args.limit)?;
    let path = args
        .path
        .as_deref()
        .map(|p| scope::clean_path(p).map(|p| scope::tree_path(&p)))
        .transpose()?
        .filter(|p| !p.is_empty());
    let since = args
        .since
        .as_deref()
        .map(|s| parse_time(s, "since", false))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|s| parse_time(s, "until", true))
        .transpose()?;
    let repo = api_repo(ctx, &args.repo)?;
    let (branch, _) = resolve(ctx, &repo, args.reference.as_deref())?;
    let binding = format!(
        "{}|{branch}|{}|{}|{}|{}",
        repo.name,
        path.as_deref().unwrap_or(""),
        args.author.as_deref().unwrap_or(""),
        args.since.as_deref().unwrap_or(""),
        args.until.as_deref().unwrap_or("")
    );
    let after = decode_cursor(LIST_KIND, &binding, args.cursor.as_deref())?;
    let mut params: Vec<(&str, String)> = Vec::new();
    let endpoint = if repo.is_cloud() {
        if let Some(p) = &path {
            params.push(("path", p.clone()));
        }
        format!("{}/commits/{}", repo.base, branch_path(&branch))
    } else {
        params.push(("until", format!("refs/heads/{branch}")));
        if let Some(p) = &path {
            params.push(("path", p.clone()));
        }
        format!("{}/commits", repo.base)
    };
    let page = block_on(
        repo.client
            .page(&endpoint, &params, limit, after.as_deref()),
    )
    .map_err(|e| api_error(e, &format!("branch `{branch}` of `{}`", repo.name)))?;
    let who = args.author.as_deref().map(str::to_lowercase);
    let mut commits = Vec::new();
    let mut older_than_since = false;
    for v in &page.values {
        let c = commit_of(&repo, v);
        let time = chrono::DateTime::parse_from_rfc3339(&c.date)
            .map(|d| d.timestamp())
            .unwrap_or(0);
        if since.is_some_and(|t| time < t) {
            // Newest first: the rest of the history is older still.
            older_than_since = true;
            break;
        }
        if until.is_some_and(|t| time > t) {
            continue;
        }
        if let Some(w) = &who
            && !format!("{} {}", c.name, c.email).to_lowercase().contains(w)
        {
            continue;
        }
        commits.push(json!({
            "hash": c.hash,
            "summary": cut_chars(c.message.lines().next().unwrap_or("").trim(), 200),
            "author": {"name": c.name, "email": c.email, "date": c.date},
            "committed": c.committed,
            "parents": c.parents,
        }));
    }
    let next = if older_than_since { None } else { page.next };
    let mut out = json!({
        "repo": repo.name, "ref": branch, "commits": commits,
        "history_truncated_by_depth": false, "note": NOTE,
    });
    if let Some(c) = encode_cursor(LIST_KIND, &binding, next) {
        out["next_cursor"] = json!(c);
    }
    Ok(out)
}

/// A commit from either API, in the fields the checkout tools show.
struct Commit {
    hash: String,
    name: String,
    email: String,
    /// Author date, RFC 3339.
    date: String,
    /// Committer date (Cloud records one date: the same).
    committed: String,
    committer_name: String,
    committer_email: String,
    message: String,
    parents: Vec<String>,
}

fn commit_of(repo: &ApiRepo<'_>, v: &Value) -> Commit {
    let parents = |key: &str| -> Vec<String> {
        v.get("parents")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(|p| s(p, key)).collect())
            .unwrap_or_default()
    };
    if repo.is_cloud() {
        // `raw` is `Name <email>` as git recorded it.
        let raw = s(v, "/author/raw").unwrap_or_default();
        let (name, email) = match raw.rsplit_once('<') {
            Some((n, e)) => (
                n.trim().to_string(),
                e.trim_end_matches('>').trim().to_string(),
            ),
            None => (raw.trim().to_string(), String::new()),
        };
        let date = s(v, "/date").unwrap_or_default();
        Commit {
            hash: s(v, "/hash").unwrap_or_default(),
            committer_name: name.clone(),
            committer_email: email.clone(),
            name,
            email,
            committed: date.clone(),
            date,
            message: s(v, "/message").unwrap_or_default(),
            parents: parents("/hash"),
        }
    } else {
        let time = |k: &str| millis_rfc3339(v.get(k).and_then(Value::as_i64)).unwrap_or_default();
        Commit {
            hash: s(v, "/id").unwrap_or_default(),
            name: s(v, "/author/name").unwrap_or_default(),
            email: s(v, "/author/emailAddress").unwrap_or_default(),
            date: time("authorTimestamp"),
            committed: time("committerTimestamp"),
            committer_name: s(v, "/committer/name").unwrap_or_default(),
            committer_email: s(v, "/committer/emailAddress").unwrap_or_default(),
            message: s(v, "/message").unwrap_or_default(),
            parents: parents("/id"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    repo: String,
    commit: String,
    #[serde(default)]
    patch: bool,
}

const MAX_FILES: usize = 1000;
const MAX_DC_BRANCHES: usize = 20;

pub(crate) fn get_commit(ctx: &Context, args: Value) -> Result<Value, Error> {
    let args: GetArgs = parse_args(args)?;
    let repo = api_repo(ctx, &args.repo)?;
    let id = commit_in_scope(ctx, &repo, &args.commit)?;
    let what = format!("commit `{}` of `{}`", args.commit, repo.name);
    let cloud = repo.is_cloud();
    let path = if cloud {
        format!("{}/commit/{}", repo.base, seg(&id))
    } else {
        format!("{}/commits/{}", repo.base, seg(&id))
    };
    let v = block_on(repo.client.get_json(&path)).map_err(|e| api_error(e, &what))?;
    let c = commit_of(&repo, &v);
    let stat_path = if cloud {
        format!("{}/diffstat/{}?pagelen=500", repo.base, seg(&c.hash))
    } else {
        format!("{}/commits/{}/changes?limit=1000", repo.base, seg(&c.hash))
    };
    let stat = block_on(repo.client.get_json(&stat_path)).map_err(|e| api_error(e, &what))?;
    let entries = stat
        .get("values")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let more = stat.get("next").is_some()
        || stat.get("isLastPage").and_then(Value::as_bool) == Some(false);
    let files: Vec<Value> = entries
        .iter()
        .take(MAX_FILES)
        .map(|e| change(cloud, e))
        .collect();
    let sum = |k: &str| files.iter().filter_map(|f| f[k].as_u64()).sum::<u64>();
    let (additions, deletions) = (sum("additions"), sum("deletions"));
    let mut notes = vec![NOTE.to_string()];
    if !cloud {
        notes.push(
            "Data Center's change list has no line counts: additions and deletions are 0".into(),
        );
    }
    let mut out = json!({
        "repo": repo.name, "hash": c.hash,
        "message": cut_chars(&c.message, 64 * 1024),
        "author": {"name": c.name, "email": c.email, "date": c.date},
        "committer": {"name": c.committer_name, "email": c.committer_email, "date": c.committed},
        "parents": c.parents,
        "files": files,
        "totals": {"files_changed": entries.len(), "additions": additions, "deletions": deletions},
        "files_truncated": more || entries.len() > MAX_FILES,
    });
    if args.patch {
        let patch_path = if cloud {
            format!("{}/diff/{}", repo.base, seg(&c.hash))
        } else {
            // Data Center has no per-commit patch endpoint; its raw diff (`streamRawDiff`)
            // with only `until` diffs the commit against its first parent.
            format!("{}/diff?until={}", repo.base, seg(&c.hash))
        };
        match block_on(
            repo.client
                .get(&patch_path, "text/plain", MAX_OUTPUT_BYTES + 1),
        ) {
            Ok(r) => {
                let text = r.text();
                let cut = r.truncated || text.len() > MAX_OUTPUT_BYTES;
                let text = if cut {
                    // Cut at a line, as the checkout's patch is.
                    let head = cut_chars(&text, MAX_OUTPUT_BYTES);
                    head[..head.rfind('\n').map_or(0, |i| i + 1)].to_string()
                } else {
                    text
                };
                out["patch"] = json!(text);
                if cut {
                    out["patch_truncated"] = json!(true);
                }
            }
            Err(e) if e.kind == ApiErrorKind::NotFound => {
                notes.push("the server offers no patch for this commit".into());
            }
            Err(e) => return Err(api_error(e, &what)),
        }
    }
    out["note"] = json!(notes.join("; "));
    Ok(out)
}

fn change(cloud: bool, e: &Value) -> Value {
    let (path, old, status, add, del) = if cloud {
        let status = match s(e, "/status").as_deref() {
            Some("removed") => "deleted".to_string(),
            Some(other) => other.to_string(),
            None => "modified".to_string(),
        };
        let new = s(e, "/new/path");
        let old = s(e, "/old/path");
        (
            new.clone().or_else(|| old.clone()).unwrap_or_default(),
            if status == "renamed" { old } else { None },
            status,
            e.get("lines_added").and_then(Value::as_u64).unwrap_or(0),
            e.get("lines_removed").and_then(Value::as_u64).unwrap_or(0),
        )
    } else {
        let status = match s(e, "/type").as_deref() {
            Some("ADD") => "added",
            Some("DELETE") => "deleted",
            Some("MOVE") => "renamed",
            Some("COPY") => "copied",
            _ => "modified",
        };
        (
            s(e, "/path/toString").unwrap_or_default(),
            s(e, "/srcPath/toString"),
            status.to_string(),
            0,
            0,
        )
    };
    let mut v = json!({"path": path, "status": status, "additions": add, "deletions": del});
    if let Some(o) = old {
        v["old_path"] = json!(o);
    }
    v
}

/// The full id of `given` (a branch in scope, or a commit id an in-scope branch reaches).
fn commit_in_scope(ctx: &Context, repo: &ApiRepo<'_>, given: &str) -> Result<String, Error> {
    scope::check_ref_syntax(given)?;
    if ctx.env.scope.branch(given) {
        match resolve(ctx, repo, Some(given)) {
            Ok((_, head)) => return Ok(head),
            Err(e) if e.kind == Kind::NotFound && looks_like_commit_id(given) => {}
            Err(e) if e.kind == Kind::Input && looks_like_commit_id(given) => {}
            Err(e) => return Err(e),
        }
    } else if !looks_like_commit_id(given) {
        return Err(scope::out_of_scope_branch(ctx, given));
    }
    let not_found = || {
        Error::new(
            Kind::NotFound,
            format!(
                "no commit `{given}` is reachable from a branch in scope of `{}`; call list_commits to see commits",
                repo.name
            ),
        )
    };
    let (heads, _) = branch_heads(ctx, repo)?;
    let id = given.to_lowercase();
    if let Some((_, h)) = heads.iter().find(|(_, h)| h.starts_with(&id)) {
        return Ok(h.clone());
    }
    if heads.is_empty() {
        return Err(not_found());
    }
    // The commit's own id, in full: the reachability question is asked about it.
    let path = if repo.is_cloud() {
        format!("{}/commit/{}", repo.base, seg(&id))
    } else {
        format!("{}/commits/{}", repo.base, seg(&id))
    };
    let full = match block_on(repo.client.get_json(&path)) {
        Ok(v) => s(&v, if repo.is_cloud() { "/hash" } else { "/id" }).ok_or_else(not_found)?,
        Err(e) if e.kind == ApiErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(Error::from(e)),
    };
    let reachable = if repo.is_cloud() {
        let mut p: Vec<(&str, String)> = vec![("include", full.clone()), ("pagelen", "1".into())];
        for (name, _) in &heads {
            p.push(("exclude", name.clone()));
        }
        let v = block_on(
            repo.client
                .get_json(&format!("{}/commits?{}", repo.base, query(&p))),
        )
        .map_err(|e| Error::from(e))?;
        v.get("values")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    } else {
        let mut found = false;
        for (_, head) in heads.iter().take(MAX_DC_BRANCHES) {
            let q = query(&[
                ("until", full.clone()),
                ("since", head.clone()),
                ("limit", "1".into()),
            ]);
            let v = block_on(repo.client.get_json(&format!("{}/commits?{q}", repo.base)))
                .map_err(|e| Error::from(e))?;
            if v.get("values")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                found = true;
                break;
            }
        }
        found
    };
    if reachable {
        Ok(full)
    } else {
        Err(not_found())
    }
}
