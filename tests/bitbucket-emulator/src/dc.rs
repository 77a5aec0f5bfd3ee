//! Bitbucket Data Center REST 1.0 subset (also under `latest`), plus legacy build status.

use git2::{Oid, Repository};
use serde_json::{Map, Value, json};

use crate::auth::{Need, Product, Refusal, Surface};
use crate::gitdata::{self, EntryKind, Lookup, Status};
use crate::page;
use crate::server::{Reply, Req, check, refusal_reply};
use crate::{PullRequest, RepoEntry, Shared, Token, TokenKind};

pub fn error(status: u16, message: &str, exception: Option<&str>) -> Reply {
    Reply::json(
        status,
        &json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]}),
    )
}

fn no_project(key: &str) -> Reply {
    error(
        404,
        &format!("Project {key} does not exist."),
        Some("com.atlassian.bitbucket.project.NoSuchProjectException"),
    )
}

fn no_repo(key: &str, slug: &str) -> Reply {
    error(
        404,
        &format!("Repository {key}/{slug} does not exist."),
        Some("com.atlassian.bitbucket.repository.NoSuchRepositoryException"),
    )
}

fn no_commit(rev: &str, slug: &str) -> Reply {
    error(
        404,
        &format!("Commit '{rev}' does not exist in repository '{slug}'."),
        Some("com.atlassian.bitbucket.commit.NoSuchCommitException"),
    )
}

fn no_path(path: &str, rev: &str) -> Reply {
    error(
        404,
        &format!("The path \"{path}\" does not exist at revision \"{rev}\""),
        Some("com.atlassian.bitbucket.content.NoSuchPathException"),
    )
}

/// Segments after `/rest`, without the API version, for route templates.
pub fn template(segs: &[String]) -> String {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (prefix, rest) = match s.as_slice() {
        ["api", v, rest @ ..] => (format!("/api/{v}"), rest),
        ["build-status", "1.0", "commits", "stats", _] => {
            return "/build-status/1.0/commits/stats/{commitId}".into();
        }
        ["build-status", "1.0", "commits", _] => {
            return "/build-status/1.0/commits/{commitId}".into();
        }
        _ => return format!("/{}", s.join("/")),
    };
    let t = match rest {
        ["projects", _] => "/projects/{projectKey}".to_string(),
        ["projects", _, "repos"] => "/projects/{projectKey}/repos".into(),
        ["projects", _, "repos", _] => "/projects/{projectKey}/repos/{repositorySlug}".into(),
        ["projects", _, "repos", _, sub @ ..] => {
            let tail = match sub {
                ["browse", ..] => "browse/{path}".to_string(),
                ["raw", ..] => "raw/{path}".into(),
                ["files", ..] => "files/{path}".into(),
                ["commits", _] => "commits/{commitId}".into(),
                ["commits", _, t] => format!("commits/{{commitId}}/{t}"),
                ["pull-requests", _] => "pull-requests/{pullRequestId}".into(),
                ["pull-requests", _, "diff", ..] => "pull-requests/{pullRequestId}/diff".into(),
                ["pull-requests", _, t] => format!("pull-requests/{{pullRequestId}}/{t}"),
                other => other.join("/"),
            };
            format!("/projects/{{projectKey}}/repos/{{repositorySlug}}/{tail}")
        }
        ["users", _] => "/users/{userSlug}".into(),
        other => format!("/{}", other.join("/")),
    };
    format!("{prefix}{t}")
}

fn ms(secs: i64) -> i64 {
    secs * 1000
}

struct Ctx<'a> {
    base: String,
    req: &'a Req,
}

fn rest_path(path: &str) -> Value {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let name = comps.last().copied().unwrap_or("");
    let mut v = json!({
        "components": comps, "parent": comps[..comps.len().saturating_sub(1)].join("/"),
        "name": name, "toString": comps.join("/"),
    });
    if let Some((_, ext)) = name.rsplit_once('.').filter(|(stem, _)| !stem.is_empty()) {
        v["extension"] = json!(ext);
    }
    v
}

impl Ctx<'_> {
    fn project(&self, key: &str) -> Value {
        json!({"key": key, "id": id_for(key), "name": key, "description": format!("Project {key}"),
               "public": false, "type": "NORMAL",
               "links": {"self": [{"href": format!("{}/projects/{key}", self.base)}]}})
    }
    fn repo(&self, e: &RepoEntry) -> Value {
        json!({
            "slug": e.slug, "id": e.id, "name": e.slug, "hierarchyId": format!("{:020x}", e.id),
            "scmId": "git", "state": "AVAILABLE", "statusMessage": "Available", "forkable": true,
            "archived": false, "public": false, "project": self.project(&e.owner),
            "links": {
                "clone": [
                    {"href": format!("{}/scm/{}/{}.git", self.base, e.owner.to_lowercase(), e.slug), "name": "http"},
                    {"href": format!("ssh://git@127.0.0.1:7999/{}/{}.git", e.owner.to_lowercase(), e.slug), "name": "ssh"},
                ],
                "self": [{"href": format!("{}/projects/{}/repos/{}/browse", self.base, e.owner, e.slug)}],
            }
        })
    }
    fn user(&self, name: &str) -> Value {
        json!({"name": name, "emailAddress": format!("{name}@example.com"), "id": id_for(name),
               "displayName": name, "active": true, "slug": name.to_lowercase(), "type": "NORMAL",
               "links": {"self": [{"href": format!("{}/users/{}", self.base, name.to_lowercase())}]}})
    }
    /// A commit; its parents carry their own details, and theirs only ids (as recorded).
    fn commit(&self, repo: &Repository, oid: Oid) -> Value {
        let mut v = self.commit_shallow(repo, oid);
        if let Some(parents) = v.get_mut("parents").and_then(Value::as_array_mut) {
            for p in parents.iter_mut() {
                if let Some(full) = p["id"].as_str().and_then(|h| Oid::from_str(h).ok()) {
                    *p = self.commit_shallow(repo, full);
                }
            }
        }
        v
    }
    fn commit_shallow(&self, repo: &Repository, oid: Oid) -> Value {
        let Some(c) = gitdata::commit_info(repo, oid) else {
            return Value::Null;
        };
        json!({
            "id": c.hash, "displayId": &c.hash[..11],
            "author": {"name": c.author_name, "emailAddress": c.author_email},
            "authorTimestamp": ms(c.author_time),
            "committer": {"name": c.committer_name, "emailAddress": c.committer_email},
            "committerTimestamp": ms(c.committer_time),
            "message": c.message.trim_end(),
            "parents": c.parents.iter().map(|p| json!({"id": p, "displayId": &p[..11]})).collect::<Vec<_>>(),
        })
    }
    fn branch(&self, name: &str, oid: Oid, default: Option<&str>) -> Value {
        json!({"id": format!("refs/heads/{name}"), "displayId": name, "type": "BRANCH",
               "latestCommit": oid.to_string(), "latestChangeset": oid.to_string(),
               "isDefault": default == Some(name)})
    }
    fn change(&self, e: &RepoEntry, commit: &str, c: &gitdata::Change) -> Value {
        let (kind, path) = match c.status {
            Status::Added => ("ADD", c.new_path.clone()),
            Status::Removed => ("DELETE", c.old_path.clone()),
            Status::Renamed => ("MOVE", c.new_path.clone()),
            Status::Copied => ("COPY", c.new_path.clone()),
            Status::Modified => ("MODIFY", c.new_path.clone()),
        };
        let path = path.unwrap_or_default();
        let mut v = json!({
            "contentId": c.new_oid, "fromContentId": c.old_oid, "path": rest_path(&path),
            "executable": c.executable, "percentUnchanged": -1, "type": kind, "nodeType": "FILE",
            "links": {"self": [{"href": format!("{}/projects/{}/repos/{}/commits/{commit}#{path}", self.base, e.owner, e.slug)}]},
            "properties": {"gitChangeType": kind},
        });
        if matches!(c.status, Status::Renamed | Status::Copied)
            && let Some(src) = &c.old_path
        {
            v["srcPath"] = rest_path(src);
        }
        v
    }
}

fn id_for(name: &str) -> u64 {
    name.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 100_000
        + 1
}

fn ok(r: Result<Map<String, Value>, Reply>) -> Reply {
    match r {
        Ok(m) => Reply::json(200, &Value::Object(m)),
        Err(e) => e,
    }
}

pub fn handle(shared: &Shared, req: &Req) -> (Reply, Option<String>) {
    let s: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let (api, legacy_build): (&[&str], bool) = match s.as_slice() {
        ["api", "1.0" | "latest", rest @ ..] => (rest, false),
        ["build-status", "1.0", rest @ ..] => (rest, true),
        _ => return (error(404, "Not found", None), None),
    };
    if !legacy_build && api == ["application-properties"] {
        // Answered without authentication, like a real server (used for connection checks).
        let v = json!({"version": "9.4.0", "buildNumber": "9004000", "buildDate": "1700000000000", "displayName": "Bitbucket"});
        return (Reply::json(200, &v), None);
    }
    let need = match api.first() {
        Some(&"users") => Need::Account,
        _ if api.get(4) == Some(&"pull-requests") => Need::PullRequest,
        _ => Need::Repository,
    };
    let repo_key = match api {
        ["projects", key, "repos", slug, ..] => Some((*key, *slug)),
        _ => None,
    };
    let token = match check(
        shared,
        &req.headers,
        Product::Dc,
        Surface::Rest,
        need,
        repo_key,
    ) {
        Ok(t) => t,
        Err(r) => return (refusal_reply(Product::Dc, r), None),
    };
    let id = token.as_ref().map(|t| t.id.clone());
    if let (Some(t), ["projects", key, ..]) = (&token, api)
        && !project_allowed(t, key)
    {
        return (refusal_reply(Product::Dc, Refusal::OutOfResource), id);
    }
    if req.method != "GET" && req.method != "HEAD" {
        return (
            error(
                405,
                &format!("Method {} is not supported here", req.method),
                None,
            ),
            id,
        );
    }
    let ctx = Ctx {
        base: shared.base_url.clone(),
        req,
    };
    let reply = if legacy_build {
        build_status_legacy(shared, api)
    } else {
        route(shared, &ctx, token.as_ref(), api)
    };
    (reply, id)
}

fn project_allowed(t: &Token, key: &str) -> bool {
    match &t.kind {
        TokenKind::DcProject { project } | TokenKind::DcRepo { project, .. } => {
            project.eq_ignore_ascii_case(key)
        }
        _ => true,
    }
}

fn build_status_legacy(shared: &Shared, rest: &[&str]) -> Reply {
    let st = shared.lock();
    let of = |c: &str| {
        st.build_statuses
            .iter()
            .filter(|b| b.commit == c)
            .cloned()
            .collect::<Vec<_>>()
    };
    match rest {
        ["commits", "stats", c] => {
            let all = of(c);
            let count = |s: &str| all.iter().filter(|b| b.state == s).count();
            Reply::json(
                200,
                &json!({"successful": count("SUCCESSFUL"), "inProgress": count("INPROGRESS"),
                                     "failed": count("FAILED"), "cancelled": count("CANCELLED"), "unknown": count("UNKNOWN")}),
            )
        }
        ["commits", c] => {
            let mut list = of(c);
            list.sort_by_key(|b| std::cmp::Reverse(b.date_added));
            list.truncate(100);
            let items: Vec<Value> = list.iter().map(build_status_json).collect();
            let total = items.len();
            Reply::json(
                200,
                &json!({"size": total, "limit": 100, "start": 0, "isLastPage": true, "values": items}),
            )
        }
        _ => error(404, "Not found", None),
    }
}

fn build_status_json(b: &crate::BuildStatus) -> Value {
    json!({"state": b.state, "key": b.key, "name": b.name, "url": b.url, "description": b.description, "dateAdded": b.date_added})
}

fn route(shared: &Shared, ctx: &Ctx, token: Option<&Token>, api: &[&str]) -> Reply {
    let req = ctx.req;
    match api {
        ["projects"] => {
            let mut keys: Vec<String> = shared
                .lock()
                .dc_repos
                .values()
                .map(|e| e.owner.clone())
                .collect();
            keys.dedup();
            keys.retain(|k| token.is_none_or(|t| project_allowed(t, k)));
            ok(page::dc(
                req,
                keys.iter().map(|k| ctx.project(k)).collect(),
                "values",
                25,
                1000,
            ))
        }
        ["projects", key] => {
            let known = shared
                .lock()
                .dc_repos
                .keys()
                .any(|(p, _)| p.eq_ignore_ascii_case(key));
            if known {
                Reply::json(200, &ctx.project(&key.to_uppercase()))
            } else {
                no_project(key)
            }
        }
        ["projects", key, "repos"] => {
            let known = shared
                .lock()
                .dc_repos
                .keys()
                .any(|(p, _)| p.eq_ignore_ascii_case(key));
            if !known {
                return no_project(key);
            }
            repos_page(shared, ctx, token, |e| e.owner.eq_ignore_ascii_case(key))
        }
        ["projects", key, "repos", slug, rest @ ..] => {
            let entry = shared
                .lock()
                .dc_repos
                .get(&(key.to_uppercase(), slug.to_lowercase()))
                .cloned();
            let Some(e) = entry else {
                return no_repo(key, slug);
            };
            let Ok(repo) = gitdata::open(&e.path) else {
                return error(500, "repository unreadable", None);
            };
            repo_route(shared, ctx, &e, &repo, rest)
        }
        // Cross-project repository search.
        ["repos"] => {
            let name = req.param("name").unwrap_or("").to_lowercase();
            let project = req.param("projectkey").map(str::to_uppercase);
            repos_page(shared, ctx, token, |e| {
                e.slug.to_lowercase().contains(&name)
                    && project.as_ref().is_none_or(|p| *p == e.owner)
            })
        }
        ["users"] => {
            let filter = req.param("filter").unwrap_or("").to_lowercase();
            let mut names: Vec<String> = shared
                .lock()
                .tokens
                .iter()
                .filter_map(|t| match &t.kind {
                    TokenKind::DcPersonal { username } => Some(username.clone()),
                    _ => None,
                })
                .filter(|n| n.to_lowercase().contains(&filter))
                .collect();
            names.sort();
            names.dedup();
            ok(page::dc(
                req,
                names.iter().map(|n| ctx.user(n)).collect(),
                "values",
                25,
                1000,
            ))
        }
        ["users", slug] => {
            let known = shared.lock().tokens.iter().any(|t| {
                matches!(&t.kind, TokenKind::DcPersonal { username } if username.eq_ignore_ascii_case(slug))
            });
            if known {
                Reply::json(200, &ctx.user(slug))
            } else {
                error(
                    404,
                    &format!("User {slug} does not exist."),
                    Some("com.atlassian.bitbucket.user.NoSuchUserException"),
                )
            }
        }
        _ => error(404, "Not found", None),
    }
}

/// A page of the repositories `keep` selects that the caller's token may see.
fn repos_page(
    shared: &Shared,
    ctx: &Ctx,
    token: Option<&Token>,
    keep: impl Fn(&RepoEntry) -> bool,
) -> Reply {
    let entries: Vec<RepoEntry> = shared
        .lock()
        .dc_repos
        .values()
        .filter(|e| keep(e))
        .filter(|e| {
            crate::auth::authorize(token, Need::Repository, Some((&e.owner, &e.slug))).is_ok()
                && token.is_none_or(|t| project_allowed(t, &e.owner))
        })
        .cloned()
        .collect();
    ok(page::dc(
        ctx.req,
        entries.iter().map(|e| ctx.repo(e)).collect(),
        "values",
        25,
        1000,
    ))
}

fn resolve_or(repo: &Repository, e: &RepoEntry, rev: Option<&str>) -> Result<Oid, Reply> {
    let rev = rev.unwrap_or("HEAD");
    gitdata::resolve(repo, rev).ok_or_else(|| no_commit(rev, &e.slug))
}

fn repo_route(
    shared: &Shared,
    ctx: &Ctx,
    e: &RepoEntry,
    repo: &Repository,
    rest: &[&str],
) -> Reply {
    let req = ctx.req;
    let default = gitdata::default_branch(repo);
    match rest {
        [] | [""] => Reply::json(200, &ctx.repo(e)),
        ["branches"] => {
            let filter = req.param("filterText").unwrap_or("").to_lowercase();
            let mut list = gitdata::branches(repo);
            list.retain(|(n, _)| n.to_lowercase().contains(&filter));
            if req.param("orderBy") == Some("MODIFICATION") {
                let time = |o: &Oid| {
                    repo.find_commit(*o)
                        .map(|c| c.time().seconds())
                        .unwrap_or(0)
                };
                list.sort_by_key(|(_, o)| std::cmp::Reverse(time(o)));
            }
            let items = list
                .iter()
                .map(|(n, o)| ctx.branch(n, *o, default.as_deref()))
                .collect();
            ok(page::dc(req, items, "values", 25, 1000))
        }
        ["branches", "default"] | ["default-branch"] => {
            let found = default
                .as_deref()
                .and_then(|d| gitdata::branches(repo).into_iter().find(|(n, _)| n == d));
            match found {
                Some((n, o)) => Reply::json(200, &ctx.branch(&n, o, Some(&n))),
                None => error(
                    404,
                    "The repository does not have a default branch",
                    Some("com.atlassian.bitbucket.repository.NoDefaultBranchException"),
                ),
            }
        }
        ["browse", path @ ..] => browse(ctx, e, repo, &path.join("/")),
        ["raw", path @ ..] => {
            let oid = match resolve_or(repo, e, req.param("at")) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let p = path.join("/");
            match gitdata::lookup(repo, oid, &p) {
                Lookup::File(_, bytes) => Reply {
                    status: 200,
                    headers: vec![("Content-Type".into(), "application/octet-stream".into())],
                    body: bytes,
                },
                _ => no_path(&p, req.param("at").unwrap_or("HEAD")),
            }
        }
        ["files", path @ ..] => {
            let oid = match resolve_or(repo, e, req.param("at")) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let base = path.join("/");
            let mut files = Vec::new();
            let mut stack = vec![base.trim_matches('/').to_string()];
            while let Some(dir) = stack.pop() {
                match gitdata::lookup(repo, oid, &dir) {
                    Lookup::Dir(entries) => {
                        for ent in entries {
                            match ent.kind {
                                EntryKind::Dir => stack.push(ent.path),
                                _ => files.push(ent.path),
                            }
                        }
                    }
                    _ if dir == base.trim_matches('/') => {
                        return no_path(&base, req.param("at").unwrap_or("HEAD"));
                    }
                    _ => {}
                }
            }
            files.sort();
            let prefix = if base.trim_matches('/').is_empty() {
                String::new()
            } else {
                format!("{}/", base.trim_matches('/'))
            };
            let items = files
                .iter()
                .map(|f| json!(f.strip_prefix(&prefix).unwrap_or(f)))
                .collect();
            ok(page::dc(req, items, "values", 25, 1000))
        }
        ["commits"] => {
            let until = match resolve_or(repo, e, req.param("until")) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let mut exclude = Vec::new();
            if let Some(s) = req.param("since") {
                match gitdata::resolve(repo, s) {
                    Some(o) => exclude.push(o),
                    None => return no_commit(s, &e.slug),
                }
            }
            let mut oids = gitdata::log(repo, &[until], &exclude, req.param("path"));
            let parents = |o: &Oid| repo.find_commit(*o).map(|c| c.parent_count()).unwrap_or(0);
            match req.param("merges") {
                Some("exclude") => oids.retain(|o| parents(o) < 2),
                Some("only") => oids.retain(|o| parents(o) >= 2),
                _ => {}
            }
            let placeholders = oids.iter().map(|o| json!(o.to_string())).collect();
            match page::dc(req, placeholders, "values", 25, 1000) {
                Ok(mut m) => {
                    if let Some(vals) = m.get_mut("values").and_then(Value::as_array_mut) {
                        for slot in vals.iter_mut() {
                            let oid = slot.as_str().and_then(|s| Oid::from_str(s).ok());
                            *slot = oid.map(|o| ctx.commit(repo, o)).unwrap_or(Value::Null);
                        }
                    }
                    Reply::json(200, &Value::Object(m))
                }
                Err(r) => r,
            }
        }
        ["commits", id, tail @ ..] => {
            // Commit IDs only: ref names are refused since Bitbucket Server 2.11.
            let looks_like_id = id.len() >= 4 && id.chars().all(|c| c.is_ascii_hexdigit());
            let Some(oid) = gitdata::resolve(repo, id).filter(|_| looks_like_id) else {
                return no_commit(id, &e.slug);
            };
            match tail {
                [] => Reply::json(200, &ctx.commit(repo, oid)),
                ["changes"] => {
                    let since = match req.param("since") {
                        Some(s) => match gitdata::resolve(repo, s) {
                            Some(o) => Some(o),
                            None => return no_commit(s, &e.slug),
                        },
                        None => repo.find_commit(oid).ok().and_then(|c| c.parent_id(0).ok()),
                    };
                    changes_page(ctx, e, repo, since, oid, json!({}))
                }
                ["builds"] => {
                    let hash = oid.to_string();
                    let key = req.param("key");
                    let mut list: Vec<_> = shared
                        .lock()
                        .build_statuses
                        .iter()
                        .filter(|b| b.commit == hash && key.is_none_or(|k| k == b.key))
                        .cloned()
                        .collect();
                    list.sort_by_key(|b| std::cmp::Reverse(b.date_added));
                    // With `key` the current API answers one status; without, a page (an extension).
                    match (key, list.first()) {
                        (Some(_), Some(b)) => Reply::json(200, &build_status_json(b)),
                        (Some(k), None) => error(
                            404,
                            &format!("No build status with key '{k}' on commit {hash}"),
                            Some("com.atlassian.bitbucket.build.status.NoSuchBuildStatusException"),
                        ),
                        (None, _) => ok(page::dc(
                            req,
                            list.iter().map(build_status_json).collect(),
                            "values",
                            25,
                            1000,
                        )),
                    }
                }
                _ => error(404, "Not found", None),
            }
        }
        ["compare", "changes"] => {
            let to = match resolve_or(repo, e, req.param("to")) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let from = match req.param("from") {
                Some(f) => match gitdata::resolve(repo, f) {
                    Some(o) => Some(o),
                    None => return no_commit(f, &e.slug),
                },
                None => None,
            };
            changes_page(ctx, e, repo, from, to, json!({}))
        }
        ["pull-requests"] => {
            let state = req.param("state").unwrap_or("OPEN").to_uppercase();
            let mut list: Vec<PullRequest> = prs(shared, e)
                .into_iter()
                .filter(|p| state == "ALL" || p.state.to_uppercase() == state)
                .collect();
            if req.param("order") == Some("OLDEST") {
                list.reverse();
            }
            if let Some(text) = req.param("filterText") {
                let t = text.to_lowercase();
                list.retain(|p| {
                    p.title.to_lowercase().contains(&t) || p.description.to_lowercase().contains(&t)
                });
            }
            let items = list.iter().map(|p| pull_request(ctx, e, repo, p)).collect();
            ok(page::dc(req, items, "values", 25, 1000))
        }
        ["pull-requests", id, tail @ ..] => {
            // `{id}.diff` and `{id}.patch` are the raw-text forms.
            let (id, raw) = match id.split_once('.') {
                Some((n, ext @ ("diff" | "patch"))) => (n, Some(ext)),
                _ => (*id, None),
            };
            let Some(pr) = prs(shared, e).into_iter().find(|p| p.id.to_string() == id) else {
                return error(
                    404,
                    &format!(
                        "Pull request {id} does not exist in {}/{}.",
                        e.owner, e.slug
                    ),
                    Some("com.atlassian.bitbucket.pull.NoSuchPullRequestException"),
                );
            };
            // A pull request compares its source tip with the merge base of both branches.
            let (Some(from), Some(to)) = (
                gitdata::resolve(repo, &pr.source_branch),
                gitdata::resolve(repo, &pr.destination_branch),
            ) else {
                return no_commit(&pr.source_branch, &e.slug);
            };
            let base = gitdata::merge_base(repo, from, to).unwrap_or(to);
            match (raw, tail) {
                (Some(_), []) => {
                    Reply::text(200, &gitdata::patch_text(repo, Some(base), from, &[]))
                }
                (None, []) => Reply::json(200, &pull_request(ctx, e, repo, &pr)),
                (None, ["changes"]) => {
                    let extra = json!({"fromHash": from.to_string(), "toHash": base.to_string(), "properties": {"changeScope": "ALL"}});
                    changes_page(ctx, e, repo, Some(base), from, extra)
                }
                (None, ["diff", path @ ..]) => {
                    let path = path.join("/");
                    let paths: Vec<&str> = if path.is_empty() {
                        Vec::new()
                    } else {
                        vec![path.as_str()]
                    };
                    let context = req
                        .param("contextLines")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(10);
                    let diffs = gitdata::file_diffs(repo, Some(base), from, &paths, context);
                    Reply::json(
                        200,
                        &json!({
                            "fromHash": base.to_string(), "toHash": from.to_string(), "contextLines": context,
                            "whitespace": "SHOW", "truncated": false,
                            "diffs": diffs.iter().map(diff_json).collect::<Vec<_>>(),
                        }),
                    )
                }
                _ => error(404, "Not found", None),
            }
        }
        _ => error(404, "Not found", None),
    }
}

/// One file of a structured diff (`RestDiff`): hunks of ADDED/REMOVED/CONTEXT segments.
fn diff_json(f: &gitdata::FileDiff) -> Value {
    let hunks: Vec<Value> = f
        .hunks
        .iter()
        .map(|h| {
            let (mut src, mut dst) = (h.old_start, h.new_start);
            let mut segments: Vec<Value> = Vec::new();
            for (origin, text) in &h.lines {
                let kind = match origin {
                    '+' => "ADDED",
                    '-' => "REMOVED",
                    _ => "CONTEXT",
                };
                let line = json!({"source": src, "destination": dst, "line": text, "truncated": false});
                match *origin {
                    '+' => dst += 1,
                    '-' => src += 1,
                    _ => {
                        src += 1;
                        dst += 1;
                    }
                }
                match segments.last_mut() {
                    Some(seg) if seg["type"] == kind => {
                        if let Some(lines) = seg["lines"].as_array_mut() {
                            lines.push(line);
                        }
                    }
                    _ => segments.push(json!({"type": kind, "lines": [line], "truncated": false})),
                }
            }
            json!({"sourceLine": h.old_start, "sourceSpan": h.old_lines, "destinationLine": h.new_start,
                   "destinationSpan": h.new_lines, "segments": segments, "truncated": false})
        })
        .collect();
    // Added files have no `source`, deleted ones no `destination`.
    let mut v = json!({"hunks": hunks, "truncated": false, "binary": f.binary});
    if let Some(p) = &f.old_path {
        v["source"] = rest_path(p);
    }
    if let Some(p) = &f.new_path {
        v["destination"] = rest_path(p);
    }
    v
}

fn changes_page(
    ctx: &Ctx,
    e: &RepoEntry,
    repo: &Repository,
    from: Option<Oid>,
    to: Oid,
    extra: Value,
) -> Reply {
    let to_hash = to.to_string();
    let items = gitdata::changes(repo, from, to, &[])
        .iter()
        .map(|c| ctx.change(e, &to_hash, c))
        .collect();
    match page::dc(ctx.req, items, "values", 25, 1000) {
        Ok(mut m) => {
            m.insert(
                "fromHash".into(),
                from.map(|f| json!(f.to_string())).unwrap_or(Value::Null),
            );
            m.insert("toHash".into(), json!(to_hash));
            m.insert("properties".into(), json!({}));
            if let Value::Object(x) = extra {
                m.extend(x);
            }
            Reply::json(200, &Value::Object(m))
        }
        Err(r) => r,
    }
}

fn browse(ctx: &Ctx, e: &RepoEntry, repo: &Repository, path: &str) -> Reply {
    let req = ctx.req;
    let at = req.param("at");
    let oid = match resolve_or(repo, e, at) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let path = path.trim_matches('/');
    let found = gitdata::lookup(repo, oid, path);
    if req.param("type") == Some("true") {
        return match found {
            Lookup::Dir(_) => Reply::json(200, &json!({"type": "DIRECTORY"})),
            Lookup::File(..) => Reply::json(200, &json!({"type": "FILE"})),
            Lookup::Missing => no_path(path, at.unwrap_or("HEAD")),
        };
    }
    if req.param("size") == Some("true") {
        return match found {
            Lookup::File(ent, _) => Reply::json(200, &json!({"size": ent.size})),
            _ => no_path(path, at.unwrap_or("HEAD")),
        };
    }
    match found {
        Lookup::Missing => no_path(path, at.unwrap_or("HEAD")),
        Lookup::File(_, bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<Value> = text.lines().map(|l| json!({"text": l})).collect();
            ok(page::dc(req, lines, "lines", 500, 5000))
        }
        Lookup::Dir(entries) => {
            let children: Vec<Value> = entries
                .iter()
                .map(|ent| {
                    let mut v = json!({"path": rest_path(&ent.name), "contentId": ent.oid,
                                       "type": match ent.kind { EntryKind::Dir => "DIRECTORY", EntryKind::File => "FILE", EntryKind::Submodule => "SUBMODULE" }});
                    if ent.kind == EntryKind::File {
                        v["size"] = json!(ent.size);
                    }
                    v
                })
                .collect();
            match page::dc(req, children, "values", 500, 5000) {
                Ok(m) => Reply::json(
                    200,
                    &json!({
                        "path": rest_path(path),
                        "revision": at.map(str::to_string).or_else(|| gitdata::default_branch(repo).map(|b| format!("refs/heads/{b}"))),
                        "children": Value::Object(m),
                    }),
                ),
                Err(r) => r,
            }
        }
    }
}

fn prs(shared: &Shared, e: &RepoEntry) -> Vec<PullRequest> {
    shared.pull_requests(&format!("dc:{}", e.owner.to_uppercase()), &e.slug)
}

fn pull_request(ctx: &Ctx, e: &RepoEntry, repo: &Repository, p: &PullRequest) -> Value {
    let side = |branch: &str| {
        json!({"id": format!("refs/heads/{branch}"), "displayId": branch, "type": "BRANCH",
               "latestCommit": gitdata::resolve(repo, branch).map(|o| o.to_string()),
               "repository": ctx.repo(e)})
    };
    let state = p.state.to_uppercase();
    let participant = |name: &str, role: &str| json!({"user": ctx.user(name), "role": role, "approved": false, "status": "UNAPPROVED"});
    json!({
        "id": p.id, "version": 0, "title": p.title, "description": p.description, "state": state,
        "open": state == "OPEN", "closed": state != "OPEN", "draft": p.draft,
        "createdDate": gitdata::parse_iso_ms(&p.created_on), "updatedDate": gitdata::parse_iso_ms(&p.updated_on),
        "fromRef": side(&p.source_branch), "toRef": side(&p.destination_branch), "locked": false,
        "author": participant(&p.author, "AUTHOR"),
        "reviewers": p.reviewers.iter().map(|r| participant(r, "REVIEWER")).collect::<Vec<_>>(),
        "participants": [],
        "properties": {"mergeResult": {"outcome": "CLEAN", "current": true}, "resolvedTaskCount": 0, "openTaskCount": 0},
        "links": {"self": [{"href": format!("{}/projects/{}/repos/{}/pull-requests/{}", ctx.base, e.owner, e.slug, p.id)}]},
    })
}
