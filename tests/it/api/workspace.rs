//! The whole workspace in reach (issue 12): every repository of a spec's provider that the scope
//! admits answers the tools, whether or not `repos:` lists it; nothing out of scope is looked up,
//! and an out-of-scope name is refused the same way whether it exists or not.
//!
//! The emulator serves `payments-{api,core,ledger,web,worker,x}` and `secret-repo` on Cloud
//! (`acme`) and Data Center (`PAY`); the scope is `^payments-.*`; `repos:` lists
//! `payments-api` (cloned), `payments-core` (DC), `payments-ledger` and `secret-repo`.

use std::collections::BTreeMap;
use std::sync::Arc;

use agentenv::secrets::ResolvedSecrets;
use agentenv::spec::LoadedEnv;
use agentenv::tools::{Context, Kind};
use bitbucket_emulator::{Pipeline, PullRequest};
use serde_json::json;

use crate::support::api::{CLOUD_TOKEN, DC_TOKEN, Fixture, IN_SCOPE, Seen};
use crate::support::names;

/// The fixture's spec with one provider only (`cloud`) and nothing in `repos:`.
fn cloud_only_ctx(f: &Fixture) -> Arc<Context> {
    let text = f.spec_text.split("  dc:\n").next().unwrap().to_string() + "repos: []\n";
    let env = LoadedEnv::from_str(&f.spec_path, &text)
        .expect("spec loads")
        .with_scope(Some("^payments-.*"), Some("^(main|feature)$"))
        .unwrap();
    let values = BTreeMap::from([("CLOUD_TOKEN".to_string(), CLOUD_TOKEN.to_string())]);
    let mut ctx = Context::open(env, &f.workdir, ResolvedSecrets::from_values(values)).unwrap();
    ctx.api.options.cache_ttl = std::time::Duration::ZERO;
    Arc::new(ctx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_scope_names_are_refused_alike_before_any_request() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    f.emu.reset_counters();
    let mut messages = Vec::new();
    // `secret-repo` exists on both providers (and is even in `repos:`); `secret-nope` exists
    // nowhere: the answers differ only by the name.
    for name in [
        "secret-repo",
        "acme/secret-repo",
        "PAY/secret-repo",
        "secret-nope",
        "acme/secret-nope",
        "PAY/secret-nope",
    ] {
        for tool in ["browse", "list_pull_requests", "list_commits"] {
            let e = seen
                .err(&ctx, tool, json!({"repo": name}), Kind::OutOfScope)
                .await;
            messages.push(e.message.replace(name, "NAME"));
        }
    }
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        f.emu.requests().len(),
        0,
        "scope is decided from the name alone"
    );
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_slug_on_two_providers_is_refused_with_the_choices() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let e = seen
        .err(&ctx, "browse", json!({"repo": "payments-web"}), Kind::Input)
        .await;
    assert!(
        e.message.contains("`acme/payments-web`") && e.message.contains("`PAY/payments-web`"),
        "{e}"
    );
    // Named by `owner/slug`, each provider answers for its own (any case of the owner).
    for (name, full) in [
        ("acme/payments-web", "acme/payments-web"),
        ("pay/payments-web", "PAY/payments-web"),
    ] {
        let b = seen.ok(&ctx, "list_branches", json!({"repo": name})).await;
        assert_eq!(names(&b, "branches", "name"), ["feature", "main"], "{full}");
    }
    // A bare slug only one provider has is that provider's, looked up once per server.
    f.emu.add_cloud_repo("acme", "payments-solo", &f.repo);
    f.emu.reset_counters();
    for _ in 0..2 {
        let root = seen
            .ok(&ctx, "browse", json!({"repo": "payments-solo"}))
            .await;
        assert_eq!(names(&root, "entries", "path"), ["README.md", "src.txt"]);
    }
    assert_eq!(
        f.emu
            .count("GET /rest/api/*/projects/PAY/repos/payments-solo"),
        1,
        "{:?}",
        f.emu.counts_by_route()
    );
    // In scope, on neither provider: not found, naming where it was looked for.
    let e = seen
        .err(
            &ctx,
            "read_file",
            json!({"repo": "payments-nowhere", "path": "README.md"}),
            Kind::NotFound,
        )
        .await;
    assert!(
        e.message.contains("cloud") && e.message.contains("dc"),
        "{e}"
    );
    // An owner no provider has: not found without a request.
    f.emu.reset_counters();
    seen.err(
        &ctx,
        "browse",
        json!({"repo": "other/payments-web"}),
        Kind::OutOfScope,
    )
    .await;
    assert_eq!(f.emu.requests().len(), 0);
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_provider_and_empty_repos_every_in_scope_repository_answers() {
    let f = Fixture::standard();
    let ctx = cloud_only_ctx(&f);
    let mut seen = Seen::default();
    let file = seen
        .ok(
            &ctx,
            "read_file",
            json!({"repo": "payments-x", "path": "src.txt"}),
        )
        .await;
    assert_eq!(file["content"], "1\tone\n2\ttwo\n3\tthree\n");
    assert!(file["note"].as_str().unwrap().contains("repos:"), "{file}");
    // Pull requests and pipelines of a repository nobody listed.
    f.emu.add_cloud_pull_request(
        "acme",
        "payments-worker",
        PullRequest {
            id: 7,
            title: "Retry failed charges".into(),
            source_branch: "feature".into(),
            destination_branch: "main".into(),
            ..Default::default()
        },
    );
    f.emu.add_pipeline(
        "acme",
        "payments-worker",
        Pipeline {
            result: Some("FAILED".into()),
            ..Default::default()
        },
    );
    let prs = seen
        .ok(
            &ctx,
            "list_pull_requests",
            json!({"repo": "payments-worker"}),
        )
        .await;
    assert_eq!(
        names(&prs, "pull_requests", "title"),
        ["Retry failed charges"]
    );
    let pr = seen
        .ok(
            &ctx,
            "get_pull_request",
            json!({"repo": "payments-worker", "id": 7}),
        )
        .await;
    assert_eq!(pr["pull_request"]["id"], 7, "{pr}");
    let pipelines = seen
        .ok(&ctx, "list_pipelines", json!({"repo": "payments-worker"}))
        .await;
    assert_eq!(pipelines["pipelines"][0]["result"], "FAILED", "{pipelines}");
    // Outside the scope, or a Data Center name with no Data Center provider.
    for name in ["secret-repo", "PAY/payments-web"] {
        seen.err(&ctx, "browse", json!({"repo": name}), Kind::OutOfScope)
            .await;
    }
    seen.assert_clean();
}

/// The fixture's spec with its scope replaced.
fn ctx_with_scope(f: &Fixture, repositories: &str) -> Arc<Context> {
    let env = LoadedEnv::from_str(&f.spec_path, &f.spec_text)
        .expect("spec loads")
        .with_scope(Some(repositories), Some("^(main|feature)$"))
        .unwrap();
    let values = BTreeMap::from([
        ("CLOUD_TOKEN".to_string(), CLOUD_TOKEN.to_string()),
        ("DC_TOKEN".to_string(), DC_TOKEN.to_string()),
    ]);
    let mut ctx = Context::open(env, &f.workdir, ResolvedSecrets::from_values(values)).unwrap();
    ctx.api.options.cache_ttl = std::time::Duration::ZERO;
    Arc::new(ctx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_repositories_filters_on_the_server_and_says_what_each_repository_is() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    f.emu.reset_counters();
    for provider in ["cloud", "dc"] {
        let out = seen
            .ok(&ctx, "list_repositories", json!({"provider": provider}))
            .await;
        assert_eq!(names(&out, "repositories", "name"), IN_SCOPE, "{out}");
        assert_eq!(out["out_of_scope"], 0, "filtered upstream: {out}");
        let status = |name: &str| {
            out["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap()["status"]
                .clone()
        };
        let want = if provider == "cloud" {
            "provisioned"
        } else {
            "api_only"
        };
        assert_eq!(status("payments-api"), want, "{provider}");
        assert_eq!(status("payments-web"), "api_only");
        // Listed in `repos:` (payments-core on dc) but not cloned: still API only.
        assert_eq!(status("payments-core"), "api_only");
    }
    let queries: Vec<(String, String)> = f
        .emu
        .requests()
        .into_iter()
        .map(|r| (r.path, r.query))
        .collect();
    let cloud = queries
        .iter()
        .find(|(p, _)| p == "/2.0/repositories/acme")
        .expect("the workspace-scoped listing");
    let q = percent_encoding::percent_decode_str(&cloud.1.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned();
    assert!(q.contains(r#"q=full_name ~ "payments-""#), "{q}");
    assert!(
        queries.iter().any(|(p, q)| p == "/rest/api/1.0/repos"
            && q.contains("projectkey=PAY")
            && q.contains("name=payments")),
        "{queries:?}"
    );
    assert!(
        !queries.iter().any(|(p, _)| p == "/2.0/repositories"),
        "never the cross-workspace listing (410 since 2026)"
    );
    seen.assert_clean();
}

/// A Data Center before 8.0 ignores `projectkey` on `/repos`, and "matches" may be loose
/// (`PAY` ~ `PAYROLL`): repositories of other projects that the server lets through are
/// neither listed nor searched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_the_project_filter_reveals_no_other_project() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let other = |key: &str, slug: &str| {
        format!(
            r#"{{"slug": "{slug}", "name": "{slug}", "project": {{"key": "{key}"}}, "public": false, "links": {{}}}}"#
        )
    };
    let body = format!(
        r#"{{"size": 3, "limit": 100, "isLastPage": true, "start": 0, "values": [{}, {}, {}]}}"#,
        other("PAYROLL", "payments-payroll"),
        other("OTHER", "payments-leak"),
        other("PAY", "payments-web"),
    );
    f.emu
        .respond_next("GET /rest/api/1.0/repos", 1, 200, "application/json", body);
    let out = seen
        .ok(&ctx, "list_repositories", json!({"provider": "dc"}))
        .await;
    assert_eq!(
        names(&out, "repositories", "name"),
        ["payments-web"],
        "{out}"
    );
    let text = format!("{out}");
    assert!(
        !text.contains("payroll") && !text.contains("leak"),
        "{text}"
    );
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_repositories_reads_on_through_thin_pages_and_resumes_mid_page() {
    let f = Fixture::standard();
    // 120 out-of-scope repositories sort before the in-scope ones on both sides.
    for i in 0..120 {
        let slug = format!("other-{i:03}");
        f.emu.add_cloud_repo("acme", &slug, &f.repo);
        f.emu.add_dc_repo("PAY", &slug, &f.repo);
    }
    // No literal every match holds but `-`: nothing useful to filter on upstream.
    let ctx = ctx_with_scope(&f, "-(web|x)$");
    let mut seen = Seen::default();
    for provider in ["cloud", "dc"] {
        let first = seen
            .ok(
                &ctx,
                "list_repositories",
                json!({"provider": provider, "limit": 2}),
            )
            .await;
        assert_eq!(
            names(&first, "repositories", "name"),
            ["payments-web", "payments-x"],
            "{provider}: {first}"
        );
        assert!(
            first["out_of_scope"].as_u64().unwrap() >= 120,
            "{provider}: {first}"
        );
        assert!(first.get("note").is_none(), "a full page: {first}");
        // One at a time: the cursor resumes inside the upstream page.
        let mut got = Vec::new();
        let mut args = json!({"provider": provider, "limit": 1});
        for _ in 0..4 {
            let page = seen.ok(&ctx, "list_repositories", args.clone()).await;
            got.extend(names(&page, "repositories", "name"));
            match page.get("next_cursor") {
                Some(c) => args["cursor"] = c.clone(),
                None => break,
            }
        }
        assert_eq!(got, ["payments-web", "payments-x"], "{provider}");
    }
    seen.assert_clean();
}

/// Paths of the git requests the emulator served (smart HTTP: `info/refs`, `git-upload-pack`).
fn git_paths(f: &Fixture) -> Vec<String> {
    f.emu
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/info/refs") || r.path.ends_with("/git-upload-pack"))
        .map(|r| r.path)
        .collect()
}

/// A repository without a checkout whose default branch is out of scope is not cloned into
/// the cache: the search names why and how to pass an in-scope branch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_branch_out_of_scope_is_not_cloned_for_a_search() {
    let f = Fixture::standard();
    let text = f.spec_text.split("  dc:\n").next().unwrap().to_string() + "repos: []\n";
    let env = LoadedEnv::from_str(&f.spec_path, &text)
        .expect("spec loads")
        .with_scope(Some("^payments-.*"), Some("^feature$"))
        .unwrap();
    let values = BTreeMap::from([("CLOUD_TOKEN".to_string(), CLOUD_TOKEN.to_string())]);
    let ctx =
        Arc::new(Context::open(env, &f.workdir, ResolvedSecrets::from_values(values)).unwrap());
    let mut seen = Seen::default();
    f.emu.reset_counters();
    let e = seen
        .err(
            &ctx,
            "search_code",
            json!({"query": "three", "repo": "payments-web"}),
            Kind::OutOfScope,
        )
        .await;
    assert!(e.message.contains("default branch `main`"), "{e}");
    assert!(e.message.contains("`ref`"), "{e}");
    assert!(
        !git_paths(&f)
            .iter()
            .any(|p| p.ends_with("/git-upload-pack")),
        "nothing fetched"
    );
    // With the in-scope branch named, it is searched.
    let out = seen
        .ok(
            &ctx,
            "search_code",
            json!({"query": "feature", "repo": "payments-web", "ref": "feature"}),
        )
        .await;
    assert!(out["total_matches"].as_u64().unwrap() > 0, "{out}");
    seen.assert_clean();
}

/// A Cloud workspace and a Data Center project of the same name (`acme`, `ACME`) holding
/// the same slugs: a workspace-wide search reaches each repository by the provider that
/// listed it, not by a name both providers could hold (which would be refused as ambiguous).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_search_reaches_same_named_repositories_on_both_providers() {
    let f = Fixture::standard();
    for name in IN_SCOPE {
        f.emu.add_dc_repo("ACME", name, &f.repo);
    }
    let text = f
        .spec_text
        .split("repos:\n")
        .next()
        .unwrap()
        .replace("project: PAY", "project: ACME")
        + "repos: []\n";
    let env = LoadedEnv::from_str(&f.spec_path, &text)
        .expect("spec loads")
        .with_scope(Some("^payments-.*"), Some("^(main|feature)$"))
        .unwrap();
    let values = BTreeMap::from([
        ("CLOUD_TOKEN".to_string(), CLOUD_TOKEN.to_string()),
        ("DC_TOKEN".to_string(), DC_TOKEN.to_string()),
    ]);
    let mut ctx = Context::open(env, &f.workdir, ResolvedSecrets::from_values(values)).unwrap();
    ctx.limits.search_clones = 12;
    let ctx = Arc::new(ctx);
    let mut seen = Seen::default();
    let out = seen
        .ok(&ctx, "search_code", json!({"query": "three", "limit": 100}))
        .await;
    let mut want: Vec<String> = IN_SCOPE.iter().map(|r| format!("acme/{r}")).collect();
    want.extend(IN_SCOPE.iter().map(|r| format!("ACME/{r}")));
    let mut got = names(&out, "searched", "repo");
    got.sort();
    want.sort();
    assert_eq!(got, want, "{out}");
    // And one tool call names either by the owner's spelling.
    for (repo, api) in [
        ("acme/payments-web", "/2.0/"),
        ("ACME/payments-web", "/rest/"),
    ] {
        f.emu.reset_counters();
        let v = seen
            .ok(&ctx, "read_file", json!({"repo": repo, "path": "src.txt"}))
            .await;
        assert!(
            v["content"].as_str().is_some_and(|c| c.contains("three")),
            "{repo}: {v}"
        );
        let paths: Vec<String> = f.emu.requests().into_iter().map(|r| r.path).collect();
        assert!(
            !paths.is_empty() && paths.iter().all(|p| p.starts_with(api)),
            "{repo}: {paths:?}"
        );
    }
    assert!(
        out.get("skipped")
            .is_none_or(|s| s.as_array().is_some_and(Vec::is_empty)),
        "{out}"
    );
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_code_reaches_every_repository_in_scope_through_the_clone_cache() {
    let f = Fixture::standard();
    let ctx = cloud_only_ctx(&f);
    let mut seen = Seen::default();
    f.emu.reset_counters();
    // Nothing provisioned (`repos: []`), six repositories in scope: every one searched, named
    // by `owner/slug`, from a shallow clone in the workdir's clone cache.
    let out = seen
        .ok(&ctx, "search_code", json!({"query": "three"}))
        .await;
    let want: Vec<String> = IN_SCOPE.iter().map(|r| format!("acme/{r}")).collect();
    assert_eq!(names(&out, "searched", "repo"), want, "{out}");
    assert_eq!(out["total_matches"], 6);
    assert_eq!(out["files"][0]["repo"], "acme/payments-api");
    assert_eq!(out["files"][0]["path"], "src.txt");
    assert_eq!(out["searched"][0]["source"], "clone_cache");
    assert_eq!(out["searched"][0]["ref"], "main");
    assert_eq!(out["searched"][0]["commit"], f.main_head);
    assert!(out.get("next_cursor").is_none() && out.get("not_searched").is_none());
    let mirrors = f.workdir.join(".agentenv/cache/mirrors");
    assert_eq!(std::fs::read_dir(&mirrors).unwrap().count(), 6);
    // Scope is absolute: the out-of-scope repository was neither fetched nor named.
    let git = git_paths(&f);
    assert!(git.iter().any(|p| p.contains("payments-web")), "{git:?}");
    assert!(!git.iter().any(|p| p.contains("secret")), "{git:?}");
    assert!(!out.to_string().contains("secret"), "{out}");
    // The REST budget paid for the listing only: git traffic is not counted.
    let rest: Vec<String> = f
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/2.0/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(rest, ["/2.0/repositories/acme"], "{rest:?}");

    // The second search fetches nothing: the remote is asked for its tips, no pack is sent.
    f.emu.reset_counters();
    let again = seen
        .ok(&ctx, "search_code", json!({"query": "two", "ref": "main"}))
        .await;
    assert_eq!(again["total_matches"], 6, "{again}");
    assert!(
        !git_paths(&f)
            .iter()
            .any(|p| p.ends_with("/git-upload-pack")),
        "{:?}",
        f.emu.counts_by_route()
    );
    // list_repositories says which are cached now.
    let listed = seen.ok(&ctx, "list_repositories", json!({})).await;
    for r in listed["repositories"].as_array().unwrap() {
        assert_eq!(r["status"], "cached", "{r}");
    }
    // Another in-scope branch of one repository, named bare.
    let feature = seen
        .ok(
            &ctx,
            "search_code",
            json!({"query": "new feature", "repo": "payments-web", "ref": "feature"}),
        )
        .await;
    assert_eq!(feature["total_matches"], 1, "{feature}");
    assert_eq!(feature["searched"][0]["ref"], "feature");
    // Out of scope, by branch or by repository: refused before any git request.
    f.emu.reset_counters();
    seen.err(
        &ctx,
        "search_code",
        json!({"query": "CANARY", "repo": "payments-web", "ref": "secret"}),
        Kind::OutOfScope,
    )
    .await;
    for repo in ["secret-repo", "acme/secret-repo", "secret-nope"] {
        seen.err(
            &ctx,
            "search_code",
            json!({"query": "x", "repo": repo}),
            Kind::OutOfScope,
        )
        .await;
    }
    assert!(git_paths(&f).is_empty(), "{:?}", f.emu.requests());
    // Only checkouts have a working tree: the others are named, not silently left out.
    let wt = seen
        .ok(
            &ctx,
            "search_code",
            json!({"query": "three", "working_tree": true}),
        )
        .await;
    assert_eq!(names(&wt, "searched", "repo"), Vec::<String>::new(), "{wt}");
    assert_eq!(wt["not_searched_count"], 6, "{wt}");
    assert!(wt.get("next_cursor").is_none(), "{wt}");
    let note = wt["note"].as_str().unwrap();
    assert!(
        note.starts_with("`working_tree` searches the checkouts only: 6 repositories"),
        "{note}"
    );
    assert!(!note.contains("nothing was searched"), "{note}");
    // A clone in the cache has no files on disk, and is searched at a branch.
    seen.err(
        &ctx,
        "search_code",
        json!({"query": "x", "repo": "payments-web", "working_tree": true}),
        Kind::NotCloned,
    )
    .await;
    seen.err(
        &ctx,
        "search_code",
        json!({"query": "x", "repo": "payments-web", "ref": "main~1"}),
        Kind::Input,
    )
    .await;
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_past_its_clone_budget_says_what_is_left_and_continues_by_cursor() {
    let f = Fixture::standard();
    let mut ctx = f.context_with(std::time::Duration::ZERO, &[]);
    ctx.limits.search_clones = 4;
    // The REST budget cannot pay for a dozen clones; git traffic is not counted against it.
    ctx.api.budget_override = Some((6, std::time::Duration::from_secs(3600)));
    let ctx = Arc::new(ctx);
    let mut seen = Seen::default();
    let mut searched: Vec<String> = Vec::new();
    let mut args = json!({"query": "three"});
    let mut calls = 0;
    loop {
        calls += 1;
        let out = seen.ok(&ctx, "search_code", args.clone()).await;
        searched.extend(names(&out, "searched", "repo"));
        let Some(cursor) = out.get("next_cursor") else {
            assert!(out.get("not_searched").is_none(), "{out}");
            break;
        };
        let note = out["note"].as_str().unwrap();
        assert!(note.contains("next_cursor"), "{out}");
        assert!(note.contains("AGENTENV_SEARCH_MAX_CLONES"), "{out}");
        let left = out["not_searched"].as_array().unwrap();
        assert_eq!(out["not_searched_count"], left.len(), "{out}");
        assert!(!left.is_empty(), "{out}");
        // A cursor belongs to its search.
        seen.err(
            &ctx,
            "search_code",
            json!({"query": "other", "cursor": cursor}),
            Kind::Input,
        )
        .await;
        args["cursor"] = cursor.clone();
        assert!(calls < 5, "{searched:?}");
    }
    let mut want = vec!["payments-api".to_string()];
    for p in ["acme", "PAY"] {
        for r in IN_SCOPE {
            if !(p == "acme" && *r == "payments-api") {
                want.push(format!("{p}/{r}"));
            }
        }
    }
    assert_eq!(
        searched, want,
        "every repository once, in order: the checkout, then 11 through the cache by provider"
    );
    assert_eq!(calls, 3);
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_the_cache_a_damaged_mirror_is_rebuilt_and_a_cut_search_continues() {
    let f = Fixture::standard();
    let text_ctx = |bytes: u64| {
        let env = LoadedEnv::from_str(
            &f.spec_path,
            &(f.spec_text.split("  dc:\n").next().unwrap().to_string() + "repos: []\n"),
        )
        .unwrap()
        .with_scope(Some("^payments-.*"), Some("^(main|feature)$"))
        .unwrap();
        let values = BTreeMap::from([("CLOUD_TOKEN".to_string(), CLOUD_TOKEN.to_string())]);
        let mut ctx = Context::open(env, &f.workdir, ResolvedSecrets::from_values(values)).unwrap();
        ctx.limits.search_bytes = bytes;
        Arc::new(ctx)
    };
    // Two servers on one workdir (one cache), searching at once: the mirror locks keep them
    // apart, and each gets every answer.
    let (a, b) = (text_ctx(1 << 30), text_ctx(1 << 30));
    let (ra, rb) = tokio::join!(
        a.call("search_code", json!({"query": "three"})),
        b.call("search_code", json!({"query": "three"}))
    );
    for r in [ra, rb] {
        assert_eq!(r.unwrap()["total_matches"], 6);
    }
    let mirrors = f.workdir.join(".agentenv/cache/mirrors");
    assert_eq!(std::fs::read_dir(&mirrors).unwrap().count(), 6);
    // A damaged mirror (its pack cut short) is rebuilt from the remote, not searched.
    let mirror = std::fs::read_dir(&mirrors)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let pack = std::fs::read_dir(mirror.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .unwrap();
    let len = std::fs::metadata(&pack).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    f.emu.reset_counters();
    let again = a
        .call("search_code", json!({"query": "three"}))
        .await
        .unwrap();
    assert_eq!(again["total_matches"], 6, "{again}");
    assert!(
        git_paths(&f)
            .iter()
            .any(|p| p.ends_with("/git-upload-pack")),
        "the damaged mirror was fetched anew"
    );

    // Each repository holds 25 bytes of text (README.md, src.txt): 60 bytes read two whole
    // repositories and cut the third, which the cursor then searches again, whole.
    let small = text_ctx(60);
    let mut seen = Seen::default();
    let mut args = json!({"query": "three"});
    let mut searched = Vec::new();
    for _ in 0..6 {
        let out = seen.ok(&small, "search_code", args.clone()).await;
        searched.extend(names(&out, "searched", "repo"));
        match out.get("next_cursor") {
            Some(c) => {
                assert_eq!(out["truncated"], true, "{out}");
                assert!(
                    out["note"].as_str().unwrap().contains("search budget"),
                    "{out}"
                );
                args["cursor"] = c.clone();
            }
            None => break,
        }
    }
    let want: Vec<String> = IN_SCOPE.iter().map(|r| format!("acme/{r}")).collect();
    assert_eq!(searched, want);
    // A repository alone over the budget (20 bytes) would be cut again on every call: its
    // partial answer stands and the cursor moves on, so the search still ends.
    let tiny = text_ctx(20);
    let mut args = json!({"query": "three"});
    let mut searched = Vec::new();
    for calls in 1.. {
        let out = seen.ok(&tiny, "search_code", args.clone()).await;
        assert_eq!(names(&out, "searched", "repo").len(), 1, "{out}");
        searched.extend(names(&out, "searched", "repo"));
        match out.get("next_cursor") {
            Some(c) => args["cursor"] = c.clone(),
            None => break,
        }
        assert!(calls < 6, "{searched:?}");
    }
    assert_eq!(searched, want);
    seen.assert_clean();
}
