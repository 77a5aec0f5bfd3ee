//! Bitbucket Cloud REST 2.0 subset, in the shapes of Atlassian's schemas and recorded bodies.

use git2::{Oid, Repository};
use serde_json::{Value, json};

use crate::auth::{Need, Product, Surface};
use crate::gitdata::{self, EntryKind, Lookup, Status};
use crate::page;
use crate::server::{Reply, Req, check, refusal_reply};
use crate::{PullRequest, RepoEntry, Shared, Token, TokenKind};

pub fn error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"type": "error", "error": {"message": message}}),
    )
}

pub fn repo_not_found() -> Reply {
    error(
        404,
        "The requested repository either does not exist or you do not have access. If you believe \
         this repository exists and you have access, make sure you're authenticated.",
    )
}

/// The route template of a Cloud path (segments after `/2.0`), for counters and fault patterns.
pub fn template(segs: &[String]) -> String {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let sub = match s.as_slice() {
        ["user"] => return "/user".into(),
        ["workspaces", _] => return "/workspaces/{workspace}".into(),
        ["repositories", _] | ["repositories", _, ""] => return "/repositories/{workspace}".into(),
        ["repositories", _, _] => return "/repositories/{workspace}/{repo_slug}".into(),
        ["repositories", _, _, rest @ ..] => rest,
        _ => return format!("/{}", s.join("/")),
    };
    let rest = match sub {
        ["src"] => "src".to_string(),
        ["src", ..] => "src/{commit}/{path}".into(),
        ["commits"] | ["commits", ""] => "commits".into(),
        ["commits", ..] => "commits/{revision}".into(),
        ["commit", _] => "commit/{commit}".into(),
        ["diffstat", ..] => "diffstat/{spec}".into(),
        ["diff", ..] => "diff/{spec}".into(),
        ["refs", "branches"] => "refs/branches".into(),
        ["refs", "branches", ..] => "refs/branches/{name}".into(),
        ["pullrequests"] | ["pullrequests", ""] => "pullrequests".into(),
        ["pullrequests", _] => "pullrequests/{pull_request_id}".into(),
        ["pullrequests", _, tail] => format!("pullrequests/{{pull_request_id}}/{tail}"),
        ["pipelines"] | ["pipelines", ""] => "pipelines".into(),
        ["pipelines", _] => "pipelines/{pipeline_uuid}".into(),
        ["pipelines", _, "steps"] | ["pipelines", _, "steps", ""] => {
            "pipelines/{pipeline_uuid}/steps".into()
        }
        ["pipelines", _, "steps", _] => "pipelines/{pipeline_uuid}/steps/{step_uuid}".into(),
        ["pipelines", _, "steps", _, "log"] => {
            "pipelines/{pipeline_uuid}/steps/{step_uuid}/log".into()
        }
        other => other.join("/"),
    };
    format!("/repositories/{{workspace}}/{{repo_slug}}/{rest}")
}

fn need_for(segs: &[String]) -> Need {
    match segs.get(3).map(String::as_str) {
        _ if segs.first().map(String::as_str) == Some("user") => Need::Account,
        _ if segs.first().map(String::as_str) == Some("workspaces") => Need::Workspace,
        Some("pullrequests") => Need::PullRequest,
        Some("pipelines") => Need::Pipeline,
        _ => Need::Repository,
    }
}

/// Deterministic UUID-looking id for names that have none (users, workspaces).
pub fn uuid_for(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{{{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}}}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h & 0xffff_ffff_ffff
    )
}

struct Ctx<'a> {
    api: String,
    web: String,
    req: &'a Req,
}

impl Ctx<'_> {
    fn repo_api(&self, e: &RepoEntry) -> String {
        format!("{}/repositories/{}/{}", self.api, e.owner, e.slug)
    }
    fn user(&self, name: &str) -> Value {
        let uuid = uuid_for(name);
        json!({
            "type": "user", "uuid": uuid, "username": name, "display_name": name, "nickname": name,
            "account_id": format!("557058:{}", uuid.trim_matches(|c| c == '{' || c == '}')),
            "links": {
                "self": {"href": format!("{}/users/{}", self.api, enc(&uuid))},
                "html": {"href": format!("{}/{}/", self.web, enc(&uuid))},
                "avatar": {"href": format!("{}/account/{name}/avatar/", self.web)},
            }
        })
    }
    fn repo_ref(&self, e: &RepoEntry) -> Value {
        json!({
            "type": "repository", "name": e.slug, "full_name": format!("{}/{}", e.owner, e.slug), "uuid": e.uuid,
            "links": {
                "self": {"href": self.repo_api(e)},
                "html": {"href": format!("{}/{}/{}", self.web, e.owner, e.slug)},
                "avatar": {"href": format!("{}/ravatar/{}?ts=default", self.web, enc(&e.uuid))},
            }
        })
    }
    fn workspace(&self, slug: &str) -> Value {
        json!({
            "type": "workspace", "uuid": uuid_for(&format!("workspace:{slug}")), "name": slug, "slug": slug,
            "is_private": true, "created_on": "2020-01-01T00:00:00.000000+00:00",
            "links": {
                "self": {"href": format!("{}/workspaces/{slug}", self.api)},
                "html": {"href": format!("{}/{slug}/", self.web)},
                "avatar": {"href": format!("{}/workspaces/{slug}/avatar/?ts=1", self.web)},
                "members": {"href": format!("{}/workspaces/{slug}/members", self.api)},
                "owners": {"href": format!("{}/workspaces/{slug}/members?q=permission%3D%22owner%22", self.api)},
                "projects": {"href": format!("{}/workspaces/{slug}/projects", self.api)},
                "repositories": {"href": format!("{}/repositories/{slug}", self.api)},
                "snippets": {"href": format!("{}/snippets/{slug}", self.api)},
            }
        })
    }
    fn repository(&self, e: &RepoEntry, repo: &Repository) -> Value {
        let api = self.repo_api(e);
        let main = gitdata::default_branch(repo).unwrap_or_else(|| "main".into());
        let when = gitdata::resolve(repo, "HEAD")
            .and_then(|o| gitdata::commit_info(repo, o))
            .map(|c| gitdata::iso(c.committer_time, 0))
            .unwrap_or_else(|| "2020-01-01T00:00:00+00:00".into());
        let web = format!("{}/{}/{}", self.web, e.owner, e.slug);
        let link = |p: &str| json!({"href": format!("{api}/{p}")});
        json!({
            "type": "repository", "scm": "git", "uuid": e.uuid, "name": e.slug, "slug": e.slug,
            "full_name": format!("{}/{}", e.owner, e.slug), "description": "", "website": "", "language": "",
            "is_private": true, "fork_policy": "no_public_forks", "has_issues": false, "has_wiki": false,
            "size": 0, "created_on": when, "updated_on": when, "parent": null, "enforced_signed_commits": null,
            "mainbranch": {"type": "branch", "name": main},
            "owner": {"type": "team", "uuid": uuid_for(&format!("workspace:{}", e.owner)), "username": e.owner,
                      "display_name": e.owner, "nickname": e.owner,
                      "account_id": format!("557058:{}", uuid_for(&e.owner).trim_matches(|c| c == '{' || c == '}')),
                      "links": {
                          "self": {"href": format!("{}/workspaces/{}", self.api, e.owner)},
                          "html": {"href": format!("{}/{}/", self.web, e.owner)},
                          "avatar": {"href": format!("{}/account/{}/avatar/", self.web, e.owner)}}},
            "workspace": self.workspace(&e.owner),
            "project": {"type": "project", "key": "PROJ", "name": "Project", "uuid": uuid_for(&format!("project:{}", e.owner)),
                        "links": {"self": {"href": format!("{}/workspaces/{}/projects/PROJ", self.api, e.owner)},
                                  "html": {"href": format!("{}/{}/workspace/projects/PROJ", self.web, e.owner)},
                                  "avatar": {"href": format!("{}/{}/workspace/projects/PROJ/avatar/32", self.web, e.owner)}}},
            "override_settings": {"default_merge_strategy": false, "branching_model": false},
            "links": {
                "self": {"href": api}, "html": {"href": web},
                "avatar": {"href": format!("{}/ravatar/{}?ts=default", self.web, enc(&e.uuid))},
                "branches": link("refs/branches"), "tags": link("refs/tags"), "commits": link("commits"),
                "source": link("src"), "pullrequests": link("pullrequests"), "watchers": link("watchers"),
                "forks": link("forks"), "downloads": link("downloads"), "hooks": link("hooks"), "issues": link("issues"),
                "clone": [
                    {"name": "https", "href": format!("{}/{}/{}.git", self.web, e.owner, e.slug)},
                    {"name": "ssh", "href": format!("git@127.0.0.1:{}/{}.git", e.owner, e.slug)},
                ],
            }
        })
    }
    fn commit_ref(&self, e: &RepoEntry, hash: &str) -> Value {
        json!({"type": "commit", "hash": hash, "links": {
            "self": {"href": format!("{}/commit/{hash}", self.repo_api(e))},
            "html": {"href": format!("{}/{}/{}/commits/{hash}", self.web, e.owner, e.slug)}}})
    }
    fn commit(&self, e: &RepoEntry, repo: &Repository, oid: Oid) -> Value {
        let Some(c) = gitdata::commit_info(repo, oid) else {
            return Value::Null;
        };
        let api = format!("{}/commit/{}", self.repo_api(e), c.hash);
        let rendered = json!({"type": "rendered", "raw": c.message, "markup": "markdown",
                              "html": format!("<p>{}</p>", html_escape(c.message.trim_end()))});
        json!({
            "type": "commit", "hash": c.hash, "date": gitdata::iso(c.author_time, c.author_offset),
            "author": {"type": "author", "raw": format!("{} <{}>", c.author_name, c.author_email)},
            "message": c.message, "summary": rendered, "rendered": {"message": rendered},
            "parents": c.parents.iter().map(|p| self.commit_ref(e, p)).collect::<Vec<_>>(),
            "repository": self.repo_ref(e), "participants": [],
            "links": {
                "self": {"href": api}, "html": {"href": format!("{}/{}/{}/commits/{}", self.web, e.owner, e.slug, c.hash)},
                "diff": {"href": format!("{}/diff/{}", self.repo_api(e), c.hash)},
                "patch": {"href": format!("{}/patch/{}", self.repo_api(e), c.hash)},
                "approve": {"href": format!("{api}/approve")}, "comments": {"href": format!("{api}/comments")},
                "statuses": {"href": format!("{api}/statuses")},
            }
        })
    }
    fn branch(&self, e: &RepoEntry, repo: &Repository, name: &str, oid: Oid) -> Value {
        json!({
            "type": "branch", "name": name, "target": self.commit(e, repo, oid),
            "default_merge_strategy": "merge_commit", "merge_strategies": ["merge_commit", "squash", "fast_forward"],
            "sync_strategies": ["merge_commit", "rebase"],
            "links": {
                "self": {"href": format!("{}/refs/branches/{name}", self.repo_api(e))},
                "commits": {"href": format!("{}/commits/{name}", self.repo_api(e))},
                "html": {"href": format!("{}/{}/{}/branch/{name}", self.web, e.owner, e.slug)},
                "pullrequest_create": {"href": format!("{}/{}/{}/pull-requests/new?source={name}", self.web, e.owner, e.slug)},
            }
        })
    }
    fn src_link(&self, e: &RepoEntry, hash: &str, path: &str) -> String {
        format!("{}/src/{hash}/{}", self.repo_api(e), enc_path(path))
    }
    fn commit_file(&self, e: &RepoEntry, hash: &str, path: &str) -> Value {
        json!({"type": "commit_file", "path": path, "escaped_path": path,
               "links": {"self": {"href": self.src_link(e, hash, path)}}})
    }
    fn src_entry(&self, e: &RepoEntry, hash: &str, ent: &gitdata::Entry) -> Value {
        let commit = self.commit_ref(e, hash);
        if ent.kind == EntryKind::Dir {
            let href = format!("{}/", self.src_link(e, hash, &ent.path));
            return json!({"type": "commit_directory", "path": ent.path, "commit": commit,
                          "links": {"self": {"href": href}, "meta": {"href": format!("{href}?format=meta")}}});
        }
        let mut attributes = Vec::new();
        if ent.executable {
            attributes.push("executable");
        }
        if ent.symlink {
            attributes.push("link");
        }
        if ent.kind == EntryKind::Submodule {
            attributes.push("subrepository");
        }
        let href = self.src_link(e, hash, &ent.path);
        json!({
            "type": "commit_file", "path": ent.path, "escaped_path": ent.path, "size": ent.size,
            "mimetype": null, "attributes": attributes, "commit": commit,
            "links": {
                "self": {"href": href}, "meta": {"href": format!("{href}?format=meta")},
                "history": {"href": format!("{}/filehistory/{hash}/{}", self.repo_api(e), enc_path(&ent.path))},
            }
        })
    }
}

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn enc_path(p: &str) -> String {
    p.split('/').map(enc).collect::<Vec<_>>().join("/")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn handle(shared: &Shared, req: &Req) -> (Reply, Option<String>) {
    let segs = &req.segs;
    let repo_key = (segs.first().map(String::as_str) == Some("repositories")
        && segs.len() >= 3
        && !segs[2].is_empty())
    .then(|| (segs[1].as_str(), segs[2].as_str()));
    let token = match check(
        shared,
        &req.headers,
        Product::Cloud,
        Surface::Rest,
        need_for(segs),
        repo_key,
    ) {
        Ok(t) => t,
        Err(r) => return (refusal_reply(Product::Cloud, r), None),
    };
    let id = token.as_ref().map(|t| t.id.clone());
    if req.method != "GET" && req.method != "HEAD" {
        return (
            error(405, &format!("Method {} is not allowed here", req.method)),
            id,
        );
    }
    let ctx = Ctx {
        api: format!("{}/2.0", shared.base_url),
        web: shared.base_url.clone(),
        req,
    };
    let mut reply = route(shared, &ctx, token.as_ref());
    if reply.status == 200
        && req.param("fields").is_some()
        && reply.is_json()
        && let Ok(mut body) = serde_json::from_slice::<Value>(&reply.body)
    {
        apply_fields(req, &mut body);
        reply.body = serde_json::to_vec(&body).unwrap_or_default();
    }
    if let Some(t) = &token {
        reply
            .headers
            .push(("X-OAuth-Scopes".into(), t.scopes.join(", ")));
        // Only access tokens get the scaled rate-limit headers, on repository data.
        if matches!(t.kind, TokenKind::CloudAccess { .. }) && repo_key.is_some() {
            reply
                .headers
                .push(("X-RateLimit-Limit".into(), "1000".into()));
            reply
                .headers
                .push(("X-RateLimit-Resource".into(), "api-repository".into()));
            reply
                .headers
                .push(("X-RateLimit-NearLimit".into(), "false".into()));
        }
    }
    reply.headers.push((
        "Vary".into(),
        "Authorization, Origin, cookie, user-context".into(),
    ));
    reply
        .headers
        .push(("Cache-Control".into(), "private".into()));
    (reply, id)
}

fn json_ok(r: Result<Value, Reply>) -> Reply {
    match r {
        Ok(v) => Reply::json(200, &v),
        Err(e) => e,
    }
}

fn route(shared: &Shared, ctx: &Ctx, token: Option<&Token>) -> Reply {
    let segs: Vec<&str> = ctx.req.segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["user"] => match token {
            None => crate::server::cloud_unauthorized("authentication required"),
            Some(t) => Reply::json(200, &user_of(ctx, t)),
        },
        ["workspaces", ws] => match workspace(shared, ws) {
            Some(w) => Reply::json(200, &ctx.workspace(&w)),
            None => error(404, &format!("No workspace with identifier '{ws}'.")),
        },
        ["repositories", ws] | ["repositories", ws, ""] => {
            let Some(ws) = workspace(shared, ws) else {
                return error(404, &format!("No workspace with identifier '{ws}'."));
            };
            let ws = ws.as_str();
            let entries: Vec<RepoEntry> = shared
                .lock()
                .cloud_repos
                .values()
                .filter(|e| e.owner.eq_ignore_ascii_case(ws))
                .filter(|e| {
                    crate::auth::authorize(token, Need::Repository, Some((&e.owner, &e.slug)))
                        .is_ok()
                })
                .cloned()
                .collect();
            // BBQL on the repository's own fields, as Bitbucket filters the listing
            // (`q=full_name ~ "pay"`); an unknown field is a 400 there too.
            let q = ctx.req.param("q").unwrap_or("").trim().to_string();
            let field = |e: &RepoEntry, f: &str| match f {
                "name" | "slug" => Some(e.slug.clone()),
                "full_name" => Some(format!("{}/{}", e.owner, e.slug)),
                _ => None,
            };
            if !q.is_empty() {
                let f = q.split([' ', '~', '=', '!']).next().unwrap_or("");
                if !matches!(f, "name" | "slug" | "full_name") {
                    return error(400, &format!("Invalid field name '{f}'"));
                }
            }
            let items = entries
                .iter()
                .filter(|e| q.is_empty() || bbql_matches(&q, |f| field(e, f)))
                .filter_map(|e| gitdata::open(&e.path).ok().map(|r| ctx.repository(e, &r)))
                .collect();
            json_ok(page::cloud_list(ctx.req, &ctx.web, items, 10, 100))
        }
        ["repositories", ws, slug, rest @ ..] => {
            let Some(ws) = workspace(shared, ws) else {
                return repo_not_found();
            };
            let entry = shared
                .lock()
                .cloud_repos
                .get(&(ws.to_lowercase(), slug.to_lowercase()))
                .cloned();
            let Some(e) = entry else {
                return repo_not_found();
            };
            let Ok(repo) = gitdata::open(&e.path) else {
                return error(500, "repository unreadable");
            };
            repo_route(shared, ctx, &e, &repo, rest)
        }
        _ => error(404, "Resource not found"),
    }
}

/// The workspace a path names, by slug (any case) or by `{uuid}`, as it was seeded.
fn workspace(shared: &Shared, ws: &str) -> Option<String> {
    shared
        .lock()
        .cloud_repos
        .values()
        .map(|e| e.owner.clone())
        .find(|o| {
            o.eq_ignore_ascii_case(ws)
                || uuid_for(&format!("workspace:{o}")).eq_ignore_ascii_case(ws)
        })
}

fn user_of(ctx: &Ctx, t: &Token) -> Value {
    let mut u = match &t.kind {
        TokenKind::CloudApi { username, .. } => ctx.user(username),
        _ => ctx.user(&t.id),
    };
    if let (Some(obj), TokenKind::CloudApi { username, .. }) = (u.as_object_mut(), &t.kind) {
        obj.insert("username".into(), json!(username));
        obj.insert("account_status".into(), json!("active"));
        obj.insert("is_staff".into(), json!(false));
        obj.insert(
            "created_on".into(),
            json!("2020-01-01T00:00:00.000000+00:00"),
        );
        obj.insert("has_2fa_enabled".into(), Value::Null);
    }
    u
}

fn commit_missing(rev: &str) -> Reply {
    error(404, &format!("Commit not found: {rev}"))
}

fn repo_route(
    shared: &Shared,
    ctx: &Ctx,
    e: &RepoEntry,
    repo: &Repository,
    rest: &[&str],
) -> Reply {
    let req = ctx.req;
    match rest {
        [] | [""] => Reply::json(200, &ctx.repository(e, repo)),
        ["refs", "branches"] => {
            let mut list = gitdata::branches(repo);
            if let Some(q) = req.param("q") {
                list.retain(|(n, _)| bbql_name_matches(q, n));
            }
            if req.param("sort") == Some("-name") {
                list.reverse();
            }
            let items = list
                .iter()
                .map(|(n, o)| ctx.branch(e, repo, n, *o))
                .collect();
            json_ok(page::cloud_list(req, &ctx.web, items, 10, 100))
        }
        ["refs", "branches", name @ ..] => {
            let name = name.join("/");
            match gitdata::branches(repo)
                .into_iter()
                .find(|(n, _)| *n == name)
            {
                Some((n, o)) => Reply::json(200, &ctx.branch(e, repo, &n, o)),
                None => error(404, &format!("Branch \"{name}\" does not exist.")),
            }
        }
        ["src"] => {
            let main = gitdata::resolve(repo, "HEAD")
                .map(|o| o.to_string())
                .unwrap_or_default();
            Reply::redirect(302, &format!("{}/src/{main}/", ctx.repo_api(e)))
        }
        ["src", rev, path @ ..] => src(ctx, e, repo, rev, path),
        ["commits"] | ["commits", ""] => commits(ctx, e, repo, None),
        ["commits", rev @ ..] => commits(ctx, e, repo, Some(&rev.join("/"))),
        ["commit", rev] => match gitdata::resolve(repo, rev) {
            Some(o) => Reply::json(200, &ctx.commit(e, repo, o)),
            None => commit_missing(rev),
        },
        ["diffstat", spec @ ..] => diffstat(ctx, e, repo, &spec.join("/")),
        ["diff", spec @ ..] => diff(ctx, repo, &spec.join("/")),
        ["pullrequests"] | ["pullrequests", ""] => {
            let mut states: Vec<String> = req
                .params("state")
                .iter()
                .map(|s| s.to_uppercase())
                .collect();
            if states.is_empty() {
                states.push("OPEN".into());
            }
            // Lists leave out what is expensive to compute unless `fields` asks for it.
            let hidden: Vec<&str> = ["reviewers", "participants"]
                .into_iter()
                .filter(|f| !fields_add(req, &format!("values.{f}")))
                .collect();
            let items = prs(shared, e)
                .into_iter()
                .filter(|p| states.contains(&p.state.to_uppercase()))
                .map(|p| {
                    let mut v = pull_request(ctx, e, repo, &p, true);
                    if let Some(obj) = v.as_object_mut() {
                        for f in &hidden {
                            obj.remove(*f);
                        }
                    }
                    v
                })
                .collect();
            json_ok(page::cloud_list(req, &ctx.web, items, 10, 50))
        }
        ["pullrequests", id, tail @ ..] => {
            let Some(pr) = prs(shared, e).into_iter().find(|p| p.id.to_string() == *id) else {
                return error(404, &format!("Pull request {id} not found"));
            };
            match tail {
                [] => Reply::json(200, &pull_request(ctx, e, repo, &pr, true)),
                [kind @ ("diffstat" | "diff")] => {
                    let src = gitdata::resolve(repo, &pr.source_branch)
                        .map(|o| o.to_string())
                        .unwrap_or_default();
                    let dst = gitdata::resolve(repo, &pr.destination_branch)
                        .map(|o| o.to_string())
                        .unwrap_or_default();
                    let spec = format!("{}..{}", &src, &dst);
                    let loc = format!(
                        "{}/{kind}/{spec}?from_pullrequest_id={}&topic=true",
                        ctx.repo_api(e),
                        pr.id
                    );
                    Reply::redirect(302, &loc)
                }
                _ => error(404, "Resource not found"),
            }
        }
        ["pipelines", ..] if pipelines_off(shared, e) => pipelines_not_enabled(),
        ["pipelines"] | ["pipelines", ""] => {
            let mut list = pipelines(shared, e);
            list.retain(|p| pipeline_filter(req, p));
            match req.param("sort") {
                Some("-created_on") | Some("-run_creation_date") => {
                    list.sort_by(|a, b| b.created_on.cmp(&a.created_on))
                }
                // Bitbucket lists pipelines oldest first unless told otherwise.
                _ => list.sort_by(|a, b| a.created_on.cmp(&b.created_on)),
            }
            let items = list.iter().map(|p| pipeline(ctx, e, repo, p)).collect();
            json_ok(page::cloud_list(req, &ctx.web, items, 10, 100))
        }
        ["pipelines", uuid, tail @ ..] => {
            let Some(p) = pipelines(shared, e)
                .into_iter()
                .find(|p| same_uuid(&p.uuid, uuid) || is_build_number(p, uuid))
            else {
                return error(404, &format!("Pipeline {uuid} not found"));
            };
            match tail {
                [] => Reply::json(200, &pipeline(ctx, e, repo, &p)),
                ["steps"] | ["steps", ""] => {
                    let items = p.steps.iter().map(|s| step(ctx, e, &p, s)).collect();
                    json_ok(page::cloud_list(req, &ctx.web, items, 10, 100))
                }
                ["steps", sid, more @ ..] => {
                    let Some(s) = p.steps.iter().find(|s| same_uuid(&s.uuid, sid)) else {
                        return error(404, &format!("Step {sid} not found"));
                    };
                    match more {
                        [] => Reply::json(200, &step(ctx, e, &p, s)),
                        // A running step's log is served here, in ranges as it grows.
                        ["log"] if s.state != "COMPLETED" => match &s.log {
                            Some(bytes) => ranged(ctx.req, bytes),
                            None => log_missing(),
                        },
                        ["log"] if s.log.is_some() => {
                            // Completed logs live in object storage: a presigned URL on another host.
                            let path = crate::fixtures::log_blob_path(&p.uuid, &s.uuid);
                            let loc = format!(
                                "{}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=60&X-Amz-Signature={}",
                                shared.log_host_url,
                                uuid_for(&path)
                                    .trim_matches(|c| c == '{' || c == '}')
                                    .replace('-', "")
                            );
                            Reply::redirect(307, &loc)
                        }
                        ["log"] => log_missing(),
                        _ => error(404, "Resource not found"),
                    }
                }
                _ => error(404, "Resource not found"),
            }
        }
        _ => error(404, "Resource not found"),
    }
}

fn octets(status: u16, body: Vec<u8>) -> Reply {
    Reply {
        status,
        headers: vec![("Content-Type".into(), "application/octet-stream".into())],
        body,
    }
}

fn log_missing() -> Reply {
    octets(404, b"Log not found".to_vec())
}

/// `Range: bytes=A-[B]` on raw bytes: 206 with `Content-Range`, 416 past the end.
fn ranged(req: &Req, bytes: &[u8]) -> Reply {
    let Some(spec) = req.header("range").and_then(|r| r.strip_prefix("bytes=")) else {
        return octets(200, bytes.to_vec());
    };
    let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
    let len = bytes.len();
    let start = a.trim().parse::<usize>().ok();
    let end = if b.trim().is_empty() {
        Some(len.saturating_sub(1))
    } else {
        b.trim().parse::<usize>().ok()
    };
    match (start, end) {
        (Some(s), Some(e)) if s < len && s <= e => {
            let e = e.min(len - 1);
            octets(206, bytes[s..=e].to_vec())
                .with_header("Content-Range", &format!("bytes {s}-{e}/{len}"))
        }
        _ => octets(416, Vec::new()).with_header("Content-Range", &format!("bytes */{len}")),
    }
}

/// `name ~ "x"`, `name = "x"`, `name != "x"` — the BBQL forms clients use on branches.
fn bbql_name_matches(q: &str, name: &str) -> bool {
    bbql_matches(q, |f| (f == "name").then(|| name.to_string()))
}

/// One BBQL comparison `FIELD OP "value"` (`~`, `!~`: case-insensitive contains; `=`, `!=`),
/// with `field` giving a field's value; a query on a field `field` does not know matches
/// everything.
fn bbql_matches(q: &str, field: impl Fn(&str) -> Option<String>) -> bool {
    let q = q.trim();
    let end = q
        .find(|c: char| c.is_whitespace() || "~=!".contains(c))
        .unwrap_or(q.len());
    let Some(name) = field(&q[..end]) else {
        return true;
    };
    let name = name.as_str();
    let rest = q[end..].trim_start();
    let (op, val) = if let Some(v) = rest.strip_prefix("!~") {
        ("!~", v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        ("!=", v)
    } else if let Some(v) = rest.strip_prefix('~') {
        ("~", v)
    } else if let Some(v) = rest.strip_prefix('=') {
        ("=", v)
    } else {
        return true;
    };
    let val = val.trim().trim_matches('"');
    let contains = name.to_lowercase().contains(&val.to_lowercase());
    match op {
        "~" => contains,
        "!~" => !contains,
        "=" => name == val,
        _ => name != val,
    }
}

fn src(ctx: &Ctx, e: &RepoEntry, repo: &Repository, rev: &str, path: &[&str]) -> Reply {
    let Some(oid) = gitdata::resolve(repo, rev) else {
        return commit_missing(rev);
    };
    let hash = oid.to_string();
    let trailing = path.last() == Some(&"");
    let path_str = path
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    // The root listing needs its trailing slash, as on Bitbucket.
    if path_str.is_empty() && !trailing {
        return error(404, &format!("No such file or directory: {rev}"));
    }
    let meta = ctx.req.param("format") == Some("meta");
    match gitdata::lookup(repo, oid, &path_str) {
        Lookup::Missing => error(404, &format!("No such file or directory: {path_str}")),
        Lookup::Dir(_) if meta => {
            let d = gitdata::Entry {
                name: String::new(),
                path: path_str.clone(),
                kind: EntryKind::Dir,
                size: 0,
                oid: String::new(),
                executable: false,
                symlink: false,
            };
            Reply::json(200, &ctx.src_entry(e, &hash, &d))
        }
        Lookup::Dir(entries) => {
            let items = entries
                .iter()
                .map(|ent| ctx.src_entry(e, &hash, ent))
                .collect();
            json_ok(page::cloud_iter(ctx.req, &ctx.web, items, 10, 100))
        }
        Lookup::File(ent, _) if meta => Reply::json(200, &ctx.src_entry(e, &hash, &ent)),
        Lookup::File(ent, bytes) => {
            let etag = format!("\"{}\"", ent.oid);
            if ctx.req.header("if-none-match") == Some(etag.as_str()) {
                return Reply {
                    status: 304,
                    headers: vec![("ETag".into(), etag)],
                    body: Vec::new(),
                };
            }
            Reply {
                status: 200,
                headers: vec![
                    (
                        "Content-Type".into(),
                        content_type(&ent.name, &bytes).into(),
                    ),
                    (
                        "Content-Disposition".into(),
                        format!("attachment; filename=\"{}\"", ent.name),
                    ),
                    ("ETag".into(), etag),
                ],
                body: bytes,
            }
        }
    }
}

fn content_type(name: &str, bytes: &[u8]) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "json" => "application/json",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        _ if bytes.iter().take(8000).any(|b| *b == 0) => "application/octet-stream",
        _ => "text/plain",
    }
}

fn commits(ctx: &Ctx, e: &RepoEntry, repo: &Repository, rev: Option<&str>) -> Reply {
    let req = ctx.req;
    let mut include = Vec::new();
    for r in rev.into_iter().chain(req.params("include")) {
        match gitdata::resolve(repo, r) {
            Some(o) => include.push(o),
            None => return commit_missing(r),
        }
    }
    if include.is_empty() {
        include = gitdata::branches(repo)
            .into_iter()
            .map(|(_, o)| o)
            .collect();
    }
    let mut exclude = Vec::new();
    for r in req.params("exclude") {
        match gitdata::resolve(repo, r) {
            Some(o) => exclude.push(o),
            None => return commit_missing(r),
        }
    }
    let oids = gitdata::log(repo, &include, &exclude, req.param("path"));
    // Build only the requested page: large histories must not render every commit per call.
    let placeholders: Vec<Value> = oids.iter().map(|o| json!(o.to_string())).collect();
    match page::cloud_iter(req, &ctx.web, placeholders, 30, 100) {
        Ok(mut v) => {
            if let Some(vals) = v.get_mut("values").and_then(Value::as_array_mut) {
                for slot in vals.iter_mut() {
                    let oid = slot.as_str().and_then(|s| Oid::from_str(s).ok());
                    *slot = oid.map(|o| ctx.commit(e, repo, o)).unwrap_or(Value::Null);
                }
            }
            Reply::json(200, &v)
        }
        Err(r) => r,
    }
}

/// Cloud spec `A..B`: A is the new side, B the base. A single commit diffs against its first parent.
fn parse_spec(ctx: &Ctx, repo: &Repository, spec: &str) -> Result<(Option<Oid>, Oid), Reply> {
    let (new, old) = match spec.split_once("..") {
        Some((a, b)) => (a, Some(b)),
        None => (spec, None),
    };
    let new_oid = gitdata::resolve(repo, new).ok_or_else(|| commit_missing(new))?;
    let old_oid = match old {
        Some(b) => {
            let b = gitdata::resolve(repo, b).ok_or_else(|| commit_missing(b))?;
            if ctx.req.param("topic") == Some("true") {
                Some(gitdata::merge_base(repo, new_oid, b).unwrap_or(b))
            } else {
                Some(b)
            }
        }
        None => repo
            .find_commit(new_oid)
            .ok()
            .and_then(|c| c.parent_id(0).ok()),
    };
    Ok((old_oid, new_oid))
}

fn diffstat(ctx: &Ctx, e: &RepoEntry, repo: &Repository, spec: &str) -> Reply {
    let (old, new) = match parse_spec(ctx, repo, spec) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let paths = ctx.req.params("path");
    let old_hash = old.map(|o| o.to_string()).unwrap_or_default();
    let new_hash = new.to_string();
    let items = gitdata::changes(repo, old, new, &paths)
        .into_iter()
        .map(|c| {
            let status = match c.status {
                Status::Added => "added",
                Status::Removed => "removed",
                Status::Renamed => "renamed",
                Status::Modified | Status::Copied => "modified",
            };
            json!({
                "type": "diffstat", "status": status, "lines_added": c.added, "lines_removed": c.removed,
                "old": c.old_path.as_deref().map(|p| ctx.commit_file(e, &old_hash, p)),
                "new": c.new_path.as_deref().map(|p| ctx.commit_file(e, &new_hash, p)),
            })
        })
        .collect();
    json_ok(page::cloud_list(ctx.req, &ctx.web, items, 500, 500))
}

fn diff(ctx: &Ctx, repo: &Repository, spec: &str) -> Reply {
    match parse_spec(ctx, repo, spec) {
        Ok((old, new)) => Reply::text(
            200,
            &gitdata::patch_text(repo, old, new, &ctx.req.params("path")),
        ),
        Err(r) => r,
    }
}

fn prs(shared: &Shared, e: &RepoEntry) -> Vec<PullRequest> {
    shared.pull_requests(&format!("cloud:{}", e.owner.to_lowercase()), &e.slug)
}

fn pull_request(ctx: &Ctx, e: &RepoEntry, repo: &Repository, p: &PullRequest, full: bool) -> Value {
    let api = format!("{}/pullrequests/{}", ctx.repo_api(e), p.id);
    let side = |branch: &str| {
        let hash = gitdata::resolve(repo, branch).map(|o| o.to_string()[..12].to_string());
        json!({
            "branch": {"name": branch, "links": {}},
            "commit": hash.map(|h| ctx.commit_ref(e, &h)),
            "repository": ctx.repo_ref(e),
        })
    };
    let rendered = json!({"type": "rendered", "raw": p.description, "markup": "markdown",
                          "html": format!("<p>{}</p>", html_escape(&p.description))});
    let mut v = json!({
        "type": "pullrequest", "id": p.id, "title": p.title, "description": p.description,
        "summary": rendered, "rendered": {"title": {"type": "rendered", "raw": p.title, "markup": "markdown",
            "html": format!("<p>{}</p>", html_escape(&p.title))}, "description": rendered},
        "state": p.state, "draft": p.draft, "author": ctx.user(&p.author),
        "source": side(&p.source_branch), "destination": side(&p.destination_branch),
        "merge_commit": null, "closed_by": null, "reason": "", "close_source_branch": false,
        "comment_count": 0, "task_count": 0, "created_on": p.created_on, "updated_on": p.updated_on,
        "links": {
            "self": {"href": api}, "html": {"href": format!("{}/{}/{}/pull-requests/{}", ctx.web, e.owner, e.slug, p.id)},
            "commits": {"href": format!("{api}/commits")}, "approve": {"href": format!("{api}/approve")},
            "request-changes": {"href": format!("{api}/request-changes")},
            "diff": {"href": format!("{api}/diff")}, "diffstat": {"href": format!("{api}/diffstat")},
            "comments": {"href": format!("{api}/comments")}, "activity": {"href": format!("{api}/activity")},
            "merge": {"href": format!("{api}/merge")}, "decline": {"href": format!("{api}/decline")},
            "statuses": {"href": format!("{api}/statuses")},
        }
    });
    if full && let Some(obj) = v.as_object_mut() {
        let reviewers: Vec<Value> = p.reviewers.iter().map(|r| ctx.user(r)).collect();
        let participants: Vec<Value> = p
            .reviewers
            .iter()
            .map(|r| {
                json!({"type": "participant", "user": ctx.user(r), "role": "REVIEWER",
                            "approved": false})
            })
            .collect();
        obj.insert("reviewers".into(), json!(reviewers));
        obj.insert("participants".into(), json!(participants));
    }
    v
}

/// Bitbucket takes a run's build number where the API documents `{pipeline_uuid}` (undocumented,
/// but relied on: atlassian-api/atlassian-python-api#667 "You could even use the build_number
/// instead of uuid. This works, too.").
fn is_build_number(p: &crate::Pipeline, given: &str) -> bool {
    !given.is_empty()
        && given.bytes().all(|b| b.is_ascii_digit())
        && given.parse::<u64>().ok() == Some(p.build_number)
}

fn pipelines_off(shared: &Shared, e: &RepoEntry) -> bool {
    let key = (e.owner.to_lowercase(), e.slug.to_lowercase());
    shared.lock().pipelines_disabled.contains(&key)
}

/// What the pipelines endpoints answer on a repository where Pipelines is off. Neither the
/// OpenAPI document nor a recording found here gives the body: Bitbucket's other "not found"
/// errors use this layout, and third-party reports show the message as "Not found"
/// (DrFaust92/terraform-provider-bitbucket#143, on `pipelines_config`). Clients must tell it
/// apart from a missing repository by asking for the repository, not by this text.
fn pipelines_not_enabled() -> Reply {
    error(404, "Not found")
}

/// `fields` terms (comma-separated, `+` arriving as `%2B`), in order.
fn fields_terms(req: &Req) -> Vec<String> {
    req.params("fields")
        .iter()
        .flat_map(|f| f.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether `fields` asks for `path` on top of the defaults (`+path`, `+values.*`, `*`).
fn fields_add(req: &Req, path: &str) -> bool {
    fields_terms(req).iter().any(|t| {
        let t = t.strip_prefix('+').unwrap_or(t);
        t == path
            || t == "*"
            || t.strip_suffix('*')
                .is_some_and(|pre| path.starts_with(pre) && pre.ends_with('.'))
    })
}

/// Applies `fields` to a JSON body: `-a.b` removes, plain `a.b` keeps only the named paths
/// (plus `+` additions), `*` matches any key. `+` additions of hidden fields are the routes' job
/// ([`fields_add`]); here they only count as kept paths.
fn apply_fields(req: &Req, body: &mut Value) {
    let terms = fields_terms(req);
    if terms.is_empty() {
        return;
    }
    let split = |t: &str| t.split('.').map(str::to_string).collect::<Vec<_>>();
    let keep: Vec<Vec<String>> = terms
        .iter()
        .filter(|t| !t.starts_with('-'))
        .map(|t| split(t.trim_start_matches('+')))
        .collect();
    if terms.iter().any(|t| !t.starts_with(['+', '-'])) {
        *body = project(body, &keep);
    }
    for t in terms.iter().filter_map(|t| t.strip_prefix('-')) {
        remove_path(body, &split(t));
    }
}

fn project(v: &Value, paths: &[Vec<String>]) -> Value {
    if paths.iter().any(|p| p.is_empty() || p == &["*"]) {
        return v.clone();
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|i| project(i, paths)).collect()),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, x) in map {
                let rest: Vec<Vec<String>> = paths
                    .iter()
                    .filter(|p| p[0] == *k || p[0] == "*")
                    .map(|p| p[1..].to_vec())
                    .collect();
                if !rest.is_empty() {
                    out.insert(k.clone(), project(x, &rest));
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn remove_path(v: &mut Value, path: &[String]) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| remove_path(i, path)),
        Value::Object(map) => match path {
            [] => {}
            [last] if last == "*" => map.clear(),
            [last] => {
                map.remove(last);
            }
            [first, rest @ ..] => {
                for (k, x) in map.iter_mut() {
                    if k == first || first == "*" {
                        remove_path(x, rest);
                    }
                }
            }
        },
        _ => {}
    }
}

fn same_uuid(a: &str, b: &str) -> bool {
    let t = |s: &str| s.trim_matches(|c| c == '{' || c == '}').to_lowercase();
    t(a) == t(b)
}

fn pipelines(shared: &Shared, e: &RepoEntry) -> Vec<crate::Pipeline> {
    let (o, s) = (e.owner.to_lowercase(), e.slug.to_lowercase());
    shared
        .lock()
        .pipelines
        .iter()
        .filter(|(w, r, _)| *w == o && *r == s)
        .map(|(_, _, p)| p.clone())
        .collect()
}

fn pipeline_filter(req: &Req, p: &crate::Pipeline) -> bool {
    let status_ok = req.params("status").is_empty()
        || req.params("status").iter().any(|s| {
            let r = p.result.as_deref().unwrap_or("");
            match *s {
                "PASSED" | "SUCCESSFUL" => r == "SUCCESSFUL",
                "BUILDING" | "IN_PROGRESS" => p.state == "IN_PROGRESS",
                "PENDING" => p.state == "PENDING",
                other => r == other || p.state == other,
            }
        });
    let ref_ok = ["target.ref_name", "target.branch"]
        .iter()
        .all(|k| req.param(k).is_none_or(|v| v == p.ref_name));
    status_ok && ref_ok
}

fn state_obj(prefix: &str, state: &str, result: Option<&str>, terminator: Option<Value>) -> Value {
    let lower = state.to_lowercase();
    let mut v = json!({"name": state, "type": format!("{prefix}_{lower}")});
    if state == "COMPLETED"
        && let Some(r) = result
    {
        v["result"] =
            json!({"name": r, "type": format!("{prefix}_completed_{}", r.to_lowercase())});
        // A stopped pipeline names who stopped it.
        if let (Some(t), "STOPPED") = (terminator, r) {
            v["result"]["terminator"] = t;
        }
    }
    if state == "IN_PROGRESS" && prefix == "pipeline_state" {
        v["stage"] = json!({"name": "RUNNING", "type": "pipeline_state_in_progress_running"});
    }
    v
}

fn pipeline(ctx: &Ctx, e: &RepoEntry, repo: &Repository, p: &crate::Pipeline) -> Value {
    let hash = gitdata::resolve(repo, &p.commit)
        .map(|o| o.to_string())
        .unwrap_or_else(|| p.commit.clone());
    let api = format!("{}/pipelines/{}", ctx.repo_api(e), enc(&p.uuid));
    let mut v = json!({
        "type": "pipeline", "uuid": p.uuid, "build_number": p.build_number, "run_number": 1,
        "creator": ctx.user(&p.creator), "repository": ctx.repo_ref(e),
        "target": {"type": "pipeline_ref_target", "ref_type": "branch", "ref_name": p.ref_name,
                   "selector": {"type": "branches", "pattern": p.ref_name}, "commit": ctx.commit_ref(e, &hash)},
        "trigger": {"name": "PUSH", "type": "pipeline_trigger_push"},
        "state": state_obj("pipeline_state", &p.state, p.result.as_deref(), Some(ctx.user(&p.creator))),
        "created_on": p.created_on, "duration_in_seconds": p.duration_in_seconds,
        "build_seconds_used": p.duration_in_seconds, "first_successful": false, "expired": false,
        "has_variables": false,
        "links": {"self": {"href": api}, "steps": {"href": format!("{api}/steps/")}},
    });
    if let Some(c) = &p.completed_on {
        v["completed_on"] = json!(c);
    }
    v
}

fn step(ctx: &Ctx, e: &RepoEntry, p: &crate::Pipeline, s: &crate::PipelineStep) -> Value {
    let mut v = json!({
        "type": "pipeline_step", "uuid": s.uuid, "name": s.name, "run_number": 1,
        "pipeline": {"type": "pipeline", "uuid": p.uuid},
        "state": state_obj("pipeline_step_state", &s.state, s.result.as_deref(), None),
        "image": {"name": "atlassian/default-image:4"}, "maxTime": 120,
        "setup_commands": [], "script_commands": [], "teardown_commands": [],
        "trigger": {"type": "pipeline_step_trigger_automatic"},
        "duration_in_seconds": s.duration_in_seconds, "build_seconds_used": s.duration_in_seconds,
        "links": {"self": {"href": format!("{}/pipelines/{}/steps/{}", ctx.repo_api(e), enc(&p.uuid), enc(&s.uuid))}},
    });
    if let Some(t) = &s.started_on {
        v["started_on"] = json!(t);
    }
    if let Some(t) = &s.completed_on {
        v["completed_on"] = json!(t);
    }
    v
}
