//! The API back end of the checkout tools, for repositories in scope that are not cloned:
//! `list_branches`, `browse` and `read_file` answer from the REST API in the same output shape
//! as from a checkout (`Context::call` falls back here when the checkout answers `not_cloned`).
//!
//! Refs are branch names only: the scope check for a commit id is "reachable from an in-scope
//! branch", which a clone answers locally but the API only at the price of many requests.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiRepo, Context, Error, Kind, api_repo, block_on, check_branch, s};
use crate::bitbucket::{ApiErrorKind, MAX_BODY_BYTES, seg};
use crate::tools::checkout::{cursor, cut_chars, page_limit};
use crate::tools::text::{check_range, is_binary, window};
use crate::tools::{parse_args, scope};

/// The API answer for checkout tool `name`, or `None` when it has no API back end.
pub(crate) fn fallback(ctx: &Context, name: &str, args: Value) -> Option<Result<Value, Error>> {
    // Only repositories with a provider have an API; others keep their `not_cloned` answer.
    let repo = args.get("repo").and_then(Value::as_str)?;
    ctx.env.repo(repo)?.provider.as_ref()?;
    let run: fn(&Context, Value) -> Result<Value, Error> = match name {
        "list_branches" => list_branches,
        "browse" => browse,
        "read_file" => read_file,
        "list_commits" => super::fallback_commits::list_commits,
        "get_commit" => super::fallback_commits::get_commit,
        _ => return None,
    };
    Some(run(ctx, args))
}

pub(crate) const NOTE: &str = "answered from the Bitbucket API: this repository is not cloned in the workdir (run `agentenv provision` for local, faster answers)";

/// A branch name with `/` kept as the path separator Bitbucket expects in ref URLs.
pub(crate) fn branch_path(name: &str) -> String {
    name.split('/').map(seg).collect::<Vec<_>>().join("/")
}

pub(crate) fn looks_like_commit_id(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The branch a call names (or the default one) and its head commit, checked against the scope
/// before any request.
pub(crate) fn resolve(
    ctx: &Context,
    repo: &ApiRepo<'_>,
    reference: Option<&str>,
) -> Result<(String, String), Error> {
    let name = match reference {
        None | Some("HEAD") => match &repo.spec.branch {
            Some(b) => b.clone(),
            None => default_branch(repo)?,
        },
        Some(r) => r.strip_prefix("refs/heads/").unwrap_or(r).to_string(),
    };
    let commit_id_refused = || {
        Error::new(
            Kind::Input,
            format!(
                "`{}` is not cloned, and without a clone only branch names are accepted as `ref` (a commit id cannot be checked against the scope); pass a branch from list_branches",
                repo.name
            ),
        )
    };
    if looks_like_commit_id(&name) && !ctx.env.scope.branch(&name) {
        return Err(commit_id_refused());
    }
    check_branch(ctx, &name)?;
    let what = format!("branch `{name}` of `{}`", repo.name);
    let commit = if repo.is_cloud() {
        match block_on(repo.client.get_json(&format!(
            "{}/refs/branches/{}",
            repo.base,
            branch_path(&name)
        ))) {
            Ok(v) => s(&v, "/target/hash"),
            Err(e) if e.kind == ApiErrorKind::NotFound => None,
            Err(e) => return Err(super::api_error(e, &what)),
        }
    } else {
        let v = block_on(repo.client.get_json(&format!(
            "{}/branches?{}",
            repo.base,
            crate::bitbucket::query(&[("filterText", name.clone()), ("limit", "100".into())])
        )))
        .map_err(|e| super::api_error(e, &what))?;
        v.get("values")
            .and_then(Value::as_array)
            .and_then(|l| {
                l.iter()
                    .find(|b| s(b, "/displayId").as_deref() == Some(&name))
            })
            .and_then(|b| s(b, "/latestCommit"))
    };
    match commit {
        Some(c) => Ok((name, c)),
        None if looks_like_commit_id(&name) => Err(commit_id_refused()),
        None => Err(Error::new(
            Kind::NotFound,
            format!("no {what}; call list_branches to see the branches in scope"),
        )),
    }
}

fn default_branch(repo: &ApiRepo<'_>) -> Result<String, Error> {
    let what = format!("repository `{}`", repo.name);
    let (path, pointer) = if repo.is_cloud() {
        (repo.base.clone(), "/mainbranch/name")
    } else {
        (format!("{}/default-branch", repo.base), "/displayId")
    };
    let v = block_on(repo.client.get_json(&path)).map_err(|e| super::api_error(e, &what))?;
    s(&v, pointer).ok_or_else(|| {
        Error::new(
            Kind::NotFound,
            format!("{what} has no default branch; pass `ref`"),
        )
    })
}

/// Pages read at most for one answer (branches, directory entries).
const MAX_PAGES: usize = 10;

/// Every branch on the server as the API gives it (up to `MAX_PAGES` pages), and whether that
/// was all of them.
fn all_branches(repo: &ApiRepo<'_>) -> Result<(Vec<Value>, bool), Error> {
    let what = format!("repository `{}`", repo.name);
    let endpoint = if repo.is_cloud() {
        format!("{}/refs/branches", repo.base)
    } else {
        format!("{}/branches", repo.base)
    };
    let mut all = Vec::new();
    let mut next = None;
    for _ in 0..MAX_PAGES {
        let page = block_on(repo.client.page(&endpoint, &[], 100, next.as_deref()))
            .map_err(|e| super::api_error(e, &what))?;
        all.extend(page.values);
        next = page.next;
        if next.is_none() {
            return Ok((all, true));
        }
    }
    Ok((all, false))
}

/// The in-scope branches of [`all_branches`] as (name, head commit).
pub(crate) fn branch_heads(
    ctx: &Context,
    repo: &ApiRepo<'_>,
) -> Result<(Vec<(String, String)>, bool), Error> {
    let (all, complete) = all_branches(repo)?;
    let (name, head) = if repo.is_cloud() {
        ("/name", "/target/hash")
    } else {
        ("/displayId", "/latestCommit")
    };
    let heads = all
        .iter()
        .filter_map(|b| Some((s(b, name)?, s(b, head)?)))
        .filter(|(n, _)| ctx.env.scope.branch(n))
        .collect();
    Ok((heads, complete))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BranchesArgs {
    repo: String,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

fn list_branches(ctx: &Context, args: Value) -> Result<Value, Error> {
    let args: BranchesArgs = parse_args(args)?;
    let limit = page_limit(args.limit)?;
    // The same cursor as the checkout's list_branches: the last name shown.
    let after = args
        .cursor
        .as_deref()
        .map(|c| cursor::decode("branches.v1", c))
        .transpose()?;
    let repo = api_repo(ctx, &args.repo)?;
    let (all, complete) = all_branches(&repo)?;
    let default = if repo.is_cloud() {
        match &repo.spec.branch {
            Some(b) => Some(b.clone()),
            None => default_branch(&repo).ok(),
        }
    } else {
        repo.spec.branch.clone().or_else(|| {
            all.iter()
                .find(|b| b.get("isDefault").and_then(Value::as_bool) == Some(true))
                .and_then(|b| s(b, "/displayId"))
        })
    };
    let mut branches: Vec<Value> = all
        .iter()
        .filter_map(|b| {
            let (name, commit, date, message) = if repo.is_cloud() {
                (
                    s(b, "/name")?,
                    s(b, "/target/hash")?,
                    s(b, "/target/date").unwrap_or_default(),
                    s(b, "/target/message").unwrap_or_default(),
                )
            } else {
                (
                    s(b, "/displayId")?,
                    s(b, "/latestCommit")?,
                    String::new(),
                    String::new(),
                )
            };
            ctx.env.scope.branch(&name).then(|| {
                json!({
                    "name": name, "commit": commit, "date": date,
                    "summary": cut_chars(message.lines().next().unwrap_or("").trim(), 200),
                    "checked_out": false, "default": default.as_deref() == Some(name.as_str()),
                    "local": false,
                })
            })
        })
        .collect();
    branches.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let total = branches.len();
    let rest: Vec<Value> = branches
        .into_iter()
        .filter(|b| {
            after
                .as_deref()
                .is_none_or(|a| b["name"].as_str().unwrap_or("") > a)
        })
        .collect();
    let more = rest.len() > limit;
    let page: Vec<Value> = rest.into_iter().take(limit).collect();
    let next_cursor = more
        .then(|| page.last().and_then(|b| b["name"].as_str()))
        .flatten()
        .map(|n| cursor::encode("branches.v1", n));
    let mut note = format!("{NOTE}; out-of-scope branches are not listed");
    if !repo.is_cloud() {
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
    let mut out = json!({"repo": repo.name, "branches": page, "total": total, "note": note});
    if let Some(c) = next_cursor {
        out["next_cursor"] = json!(c);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowseArgs {
    repo: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default, rename = "ref")]
    reference: Option<String>,
}

/// Directory entries listed at most.
const MAX_ENTRIES: usize = 1000;

fn browse(ctx: &Context, args: Value) -> Result<Value, Error> {
    let args: BrowseArgs = parse_args(args)?;
    let path = scope::tree_path(&scope::clean_path(args.path.as_deref().unwrap_or(""))?);
    let repo = api_repo(ctx, &args.repo)?;
    let (branch, commit) = resolve(ctx, &repo, args.reference.as_deref())?;
    let what = format!("`{path}` in `{}` at `{branch}`", repo.name);
    let not_dir = || {
        Error::new(
            Kind::Input,
            format!("`{path}` is a file; call read_file to read it"),
        )
    };
    let mut entries: Vec<Value> = Vec::new();
    let mut complete = false;
    let encoded: String = path.split('/').map(seg).collect::<Vec<_>>().join("/");
    if repo.is_cloud() {
        let endpoint = if path.is_empty() {
            format!("{}/src/{commit}/", repo.base)
        } else {
            format!("{}/src/{commit}/{encoded}/", repo.base)
        };
        let mut next = None;
        for _ in 0..MAX_PAGES {
            let page =
                block_on(repo.client.page(&endpoint, &[], 100, next.as_deref())).map_err(|e| {
                    match e.kind {
                        ApiErrorKind::BadResponse => not_dir(),
                        _ => super::api_error(e, &what),
                    }
                })?;
            for v in &page.values {
                let full = s(v, "/path").unwrap_or_default();
                let name = full.rsplit('/').next().unwrap_or("").to_string();
                let attrs: Vec<String> = v
                    .get("attributes")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let has = |a: &str| attrs.iter().any(|x| x == a);
                let kind = if s(v, "/type").as_deref() == Some("commit_directory") {
                    "dir"
                } else if has("subrepository") {
                    "submodule"
                } else if has("link") {
                    "symlink"
                } else {
                    "file"
                };
                entries.push(entry(
                    name,
                    full,
                    kind,
                    v.get("size").and_then(Value::as_u64),
                    has("executable"),
                ));
            }
            next = page.next;
            if next.is_none() {
                complete = true;
                break;
            }
        }
    } else {
        let mut start = 0u64;
        for _ in 0..MAX_PAGES {
            let q = crate::bitbucket::query(&[
                ("at", commit.clone()),
                ("start", start.to_string()),
                ("limit", "500".into()),
            ]);
            let v = block_on(
                repo.client
                    .get_json(&format!("{}/browse/{encoded}?{q}", repo.base)),
            )
            .map_err(|e| super::api_error(e, &what))?;
            if v.get("lines").is_some() {
                return Err(not_dir());
            }
            let children = v.get("children").cloned().unwrap_or(Value::Null);
            for c in children
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = s(c, "/path/toString").unwrap_or_default();
                let full = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                let kind = match s(c, "/type").as_deref() {
                    Some("DIRECTORY") => "dir",
                    Some("SUBMODULE") => "submodule",
                    _ => "file",
                };
                entries.push(entry(
                    name,
                    full,
                    kind,
                    c.get("size").and_then(Value::as_u64),
                    false,
                ));
            }
            match children.get("nextPageStart").and_then(Value::as_u64) {
                Some(n)
                    if children.get("isLastPage").and_then(Value::as_bool) == Some(false)
                        && n > start =>
                {
                    start = n
                }
                _ => {
                    complete = true;
                    break;
                }
            }
        }
    }
    entries.sort_by(|a, b| {
        let dir = |e: &Value| e["type"] != "dir";
        (dir(a), a["name"].as_str()).cmp(&(dir(b), b["name"].as_str()))
    });
    let total = entries.len();
    let truncated = total > MAX_ENTRIES || !complete;
    entries.truncate(MAX_ENTRIES);
    Ok(json!({
        "repo": repo.name, "ref": branch, "commit": commit, "path": path,
        "entries": entries, "total_entries": total, "truncated": truncated, "note": NOTE,
    }))
}

fn entry(name: String, path: String, kind: &str, size: Option<u64>, executable: bool) -> Value {
    let mut e = json!({"name": name, "path": path, "type": kind});
    if let Some(n) = size.filter(|_| kind != "dir") {
        e["size"] = json!(n);
    }
    if executable {
        e["executable"] = json!(true);
    }
    e
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    repo: String,
    path: String,
    #[serde(default, rename = "ref")]
    reference: Option<String>,
    #[serde(default)]
    start_line: Option<usize>,
    #[serde(default)]
    end_line: Option<usize>,
}

fn read_file(ctx: &Context, args: Value) -> Result<Value, Error> {
    let args: ReadArgs = parse_args(args)?;
    let path = scope::tree_path(&scope::clean_path(&args.path)?);
    let invalid = |m: String| Error::new(Kind::Input, m);
    if path.is_empty() {
        return Err(invalid(
            "`path` names the repository root; call browse to list it".into(),
        ));
    }
    let start = check_range(args.start_line, args.end_line)?;
    let repo = api_repo(ctx, &args.repo)?;
    let (branch, commit) = resolve(ctx, &repo, args.reference.as_deref())?;
    let what = format!("`{path}` in `{}` at `{branch}`", repo.name);
    let encoded: String = path.split('/').map(seg).collect::<Vec<_>>().join("/");
    let url = if repo.is_cloud() {
        format!("{}/src/{commit}/{encoded}", repo.base)
    } else {
        format!(
            "{}/raw/{encoded}?{}",
            repo.base,
            crate::bitbucket::query(&[("at", commit.clone())])
        )
    };
    let resp = block_on(repo.client.get(&url, "*/*", MAX_BODY_BYTES))
        .map_err(|e| super::api_error(e, &what))?;
    let bytes = &resp.body;
    let is_listing = resp
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/json"))
        && serde_json::from_slice::<Value>(bytes)
            .is_ok_and(|v| v.get("values").is_some() && v.get("pagelen").is_some());
    if is_listing {
        return Err(invalid(format!(
            "`{path}` is a directory; call browse to list it"
        )));
    }
    let mime = resp
        .content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut out = json!({
        "repo": repo.name, "path": path, "ref": branch, "commit": commit,
        "size": bytes.len(), "binary": false, "mime": mime, "truncated": false,
    });
    if is_binary(bytes) {
        out["binary"] = json!(true);
        out["note"] = json!(format!("binary file: content not shown; {NOTE}"));
        return Ok(out);
    }
    let w = window(bytes, &path, start, args.end_line)?;
    let mut notes = w.notes;
    notes.push(NOTE.to_string());
    if resp.truncated {
        notes.push(format!(
            "only the first {MAX_BODY_BYTES} bytes of the file were read"
        ));
    }
    out["total_lines"] = json!(w.total_lines);
    out["truncated"] = json!(w.truncated);
    if let Some(n) = w.next_start_line {
        out["next_start_line"] = json!(n);
    }
    if let (Some(first), Some(last)) = (w.start_line, w.end_line) {
        out["start_line"] = json!(first);
        out["end_line"] = json!(last);
    }
    out["content"] = json!(w.content);
    out["note"] = json!(notes.join("; "));
    Ok(out)
}
