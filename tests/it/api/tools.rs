//! The API tools against the loopback Bitbucket emulator, Cloud and Data Center: what they
//! show, pagination over several pages, scope filtering, and the redirect of step logs.

use agentenv::tools::Kind;
use bitbucket_emulator::{BuildStatus, Pipeline, PipelineStep, PullRequest};
use serde_json::{Value, json};

use crate::support::api::{CANARY_CONTENT, CLOUD_TOKEN, Fixture, IN_SCOPE, Seen};
use crate::support::git::git;
use crate::support::names;

/// Follow `next_cursor` to the end; returns every page.
async fn all_pages(
    seen: &mut Seen,
    ctx: &std::sync::Arc<agentenv::tools::Context>,
    tool: &str,
    args: Value,
) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut args = args;
    loop {
        let page = seen.ok(ctx, tool, args.clone()).await;
        let next = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        pages.push(page);
        match next {
            Some(c) => args["cursor"] = json!(c),
            None => return pages,
        }
        assert!(pages.len() < 20, "pagination does not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_repositories_pages_through_cloud_and_dc_and_filters_by_scope() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    for provider in ["cloud", "dc"] {
        let pages = all_pages(
            &mut seen,
            &ctx,
            "list_repositories",
            json!({"provider": provider, "limit": 2}),
        )
        .await;
        assert!(pages.len() >= 3, "{provider}: {} pages", pages.len());
        let mut got: Vec<String> = pages
            .iter()
            .flat_map(|p| names(p, "repositories", "name"))
            .collect();
        got.sort();
        assert_eq!(got, IN_SCOPE, "{provider}");
        let skipped: u64 = pages
            .iter()
            .map(|p| p["out_of_scope"].as_u64().unwrap())
            .sum();
        // `^payments-.*` is filtered on the server (Cloud `q=full_name ~ "payments-"`, Data
        // Center `name=payments`): secret-repo never comes back to be counted.
        assert_eq!(skipped, 0, "{provider}: secret-repo is filtered upstream");
        let all: Vec<&Value> = pages
            .iter()
            .flat_map(|p| p["repositories"].as_array().unwrap())
            .collect();
        let api = all.iter().find(|r| r["name"] == "payments-api").unwrap();
        let web = all.iter().find(|r| r["name"] == "payments-web").unwrap();
        assert_eq!(web["in_environment"], false);
        assert_eq!(web["cloned"], false);
        assert_eq!(web["status"], "api_only");
        assert_eq!(api["visibility"], "private");
        if provider == "cloud" {
            assert_eq!(api["full_name"], "acme/payments-api");
            assert_eq!(api["in_environment"], true);
            assert_eq!(api["cloned"], true, "payments-api is cloned in the workdir");
            assert_eq!(api["status"], "provisioned");
            assert_eq!(api["default_branch"], "main");
            assert!(api["url"].as_str().unwrap().contains("acme/payments-api"));
        } else {
            assert_eq!(api["full_name"], "PAY/payments-api");
            let core = all.iter().find(|r| r["name"] == "payments-core").unwrap();
            assert_eq!(core["in_environment"], true);
            assert_eq!(core["cloned"], false);
        }
    }
    // A cursor of one provider is refused for the other.
    let first = seen
        .ok(
            &ctx,
            "list_repositories",
            json!({"provider": "cloud", "limit": 2}),
        )
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    seen.err(
        &ctx,
        "list_repositories",
        json!({"provider": "dc", "cursor": cursor}),
        Kind::Input,
    )
    .await;
    // Two providers: which one must be said.
    seen.err(&ctx, "list_repositories", json!({}), Kind::Input)
        .await;
    seen.assert_clean();
}

fn seed_prs(f: &Fixture, cloud: bool) {
    let states = [
        "OPEN", "OPEN", "MERGED", "OPEN", "DECLINED", "OPEN", "OPEN", "OPEN",
    ];
    for (i, state) in states.iter().enumerate() {
        let id = i as u64 + 1;
        let pr = PullRequest {
            id,
            title: format!("Change {id}"),
            description: format!("Description of change {id}"),
            state: state.to_string(),
            source_branch: if id == 4 {
                "secret".into()
            } else {
                "feature".into()
            },
            destination_branch: "main".into(),
            author: if id.is_multiple_of(2) {
                "bob".into()
            } else {
                "alice".into()
            },
            reviewers: vec!["carol".into()],
            ..PullRequest::default()
        };
        if cloud {
            f.emu.add_cloud_pull_request("acme", "payments-api", pr);
        } else {
            f.emu.add_dc_pull_request("PAY", "payments-core", pr);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_on_cloud_and_dc_page_filter_and_show_details() {
    let f = Fixture::standard();
    seed_prs(&f, true);
    seed_prs(&f, false);
    let ctx = f.ctx();
    let mut seen = Seen::default();
    for repo in ["payments-api", "payments-core"] {
        let pages = all_pages(
            &mut seen,
            &ctx,
            "list_pull_requests",
            json!({"repo": repo, "limit": 2}),
        )
        .await;
        assert!(pages.len() >= 3, "{repo}: {} pages", pages.len());
        let mut ids: Vec<String> = pages
            .iter()
            .flat_map(|p| names(p, "pull_requests", "id"))
            .collect();
        ids.sort();
        // Open: 1, 2, 4, 6, 7, 8; 4 comes from the out-of-scope branch `secret`.
        assert_eq!(ids, ["1", "2", "6", "7", "8"], "{repo}");
        let skipped: u64 = pages
            .iter()
            .map(|p| p["out_of_scope"].as_u64().unwrap())
            .sum();
        assert_eq!(skipped, 1, "{repo}");
        let pr = pages
            .iter()
            .flat_map(|p| p["pull_requests"].as_array().unwrap().clone())
            .find(|p| p["id"] == 2)
            .unwrap();
        assert_eq!(pr["author"], "bob");
        assert_eq!(pr["source_branch"], "feature");
        assert_eq!(pr["destination_branch"], "main");
        assert_eq!(pr["state"], "OPEN");
        assert!(pr["comment_count"].is_u64(), "{pr}");
        // Cloud lists carry reviewers only when `fields` asks for them; the tool asks.
        assert_eq!(pr["reviewers"][0]["name"], "carol", "{repo}: {pr}");
        assert_eq!(pr["reviewers"][0]["approved"], false, "{repo}: {pr}");

        let all = seen
            .ok(
                &ctx,
                "list_pull_requests",
                json!({"repo": repo, "state": "ALL", "limit": 50}),
            )
            .await;
        assert_eq!(names(&all, "pull_requests", "id").len(), 7, "{repo}: {all}");
        let merged = seen
            .ok(
                &ctx,
                "list_pull_requests",
                json!({"repo": repo, "state": "MERGED"}),
            )
            .await;
        assert_eq!(names(&merged, "pull_requests", "id"), ["3"]);
        let by_alice = seen
            .ok(
                &ctx,
                "list_pull_requests",
                json!({"repo": repo, "author": "ALICE", "limit": 50}),
            )
            .await;
        let mut ids = names(&by_alice, "pull_requests", "id");
        ids.sort();
        assert_eq!(ids, ["1", "7"], "{repo}");

        let one = seen
            .ok(
                &ctx,
                "get_pull_request",
                json!({"repo": repo, "id": 1, "diff": true}),
            )
            .await;
        assert_eq!(one["pull_request"]["title"], "Change 1");
        assert_eq!(one["description"], "Description of change 1");
        assert_eq!(one["pull_request"]["reviewers"][0]["name"], "carol");
        let files = names(&one, "files", "path");
        assert_eq!(files, ["feature.txt"], "{one}");
        // The diff comes from the API on both sides (payments-core is not cloned): Cloud's
        // `/pullrequests/{id}/diff` redirect, Data Center's `/pull-requests/{id}.diff`.
        let diff = one["diff"].as_str().expect("diff");
        assert!(diff.contains("+new feature"), "{repo}: {diff}");
        assert!(
            diff.contains("feature.txt") && !diff.contains("src.txt"),
            "{diff}"
        );
        assert!(one.get("diff_note").is_none_or(|n| n.is_null()), "{one}");
        // One set of statuses on both products (and in get_commit).
        assert_eq!(one["files"][0]["status"], "added", "{repo}");
        if repo == "payments-api" {
            assert_eq!(one["lines_added"], 2);
        } else {
            assert!(one.get("lines_added").is_none(), "no line counts: {one}");
            let raw = "GET /rest/api/1.0/projects/PAY/repos/payments-core/pull-requests/1.diff";
            assert_eq!(f.emu.count(raw), 1, "{:?}", f.emu.counts_by_route());
        }
        let e = seen
            .err(
                &ctx,
                "get_pull_request",
                json!({"repo": repo, "id": 4}),
                Kind::OutOfScope,
            )
            .await;
        assert!(e.message.contains("scope"), "{e}");
        seen.err(
            &ctx,
            "get_pull_request",
            json!({"repo": repo, "id": 999}),
            Kind::NotFound,
        )
        .await;
    }
    for (args, kind) in [
        (
            json!({"repo": "payments-core", "state": "SUPERSEDED"}),
            Kind::Input,
        ),
        (json!({"repo": "secret-repo"}), Kind::OutOfScope),
        (json!({"repo": "nope"}), Kind::OutOfScope),
        (json!({"repo": "payments-ledger-x"}), Kind::NotFound),
    ] {
        seen.err(&ctx, "list_pull_requests", args, kind).await;
    }
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_cursor_cannot_be_replayed_on_another_repository() {
    let f = Fixture::standard();
    seed_prs(&f, true);
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let first = seen
        .ok(
            &ctx,
            "list_pull_requests",
            json!({"repo": "payments-api", "limit": 2}),
        )
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    seen.err(
        &ctx,
        "list_pull_requests",
        json!({"repo": "payments-ledger", "limit": 2, "cursor": cursor}),
        Kind::Input,
    )
    .await;
    seen.err(
        &ctx,
        "list_pull_requests",
        json!({"repo": "payments-api", "cursor": "not-a-cursor"}),
        Kind::Input,
    )
    .await;
    // A forged cursor with the right binding but another repository's page link: the client
    // refuses it before any request, so the scope check cannot be bypassed through a cursor.
    use base64::Engine;
    f.emu.reset_counters();
    for forged in [
        "/repositories/acme/secret-repo/pullrequests?page=2",
        "/repositories/acme/payments-api/pullrequests/../../secret-repo/pullrequests",
        "/repositories/acme/payments-api/pullrequestsX?page=2",
    ] {
        let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("pulls.v1|payments-api|OPEN|\n{forged}"));
        seen.err(
            &ctx,
            "list_pull_requests",
            json!({"repo": "payments-api", "cursor": cursor}),
            Kind::Input,
        )
        .await;
    }
    assert_eq!(f.emu.requests().len(), 0);
    // Control: the same construction with this endpoint's own link is accepted.
    let own = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        "pulls.v1|payments-api|OPEN|\n/repositories/acme/payments-api/pullrequests?state=OPEN&pagelen=2&page=2",
    );
    let page2 = seen
        .ok(
            &ctx,
            "list_pull_requests",
            json!({"repo": "payments-api", "cursor": own}),
        )
        .await;
    let shown = names(&page2, "pull_requests", "id").len() as u64;
    assert_eq!(
        shown + page2["out_of_scope"].as_u64().unwrap(),
        2,
        "{page2}"
    );
}

fn pipeline(n: u64, branch: &str, result: &str, log: &str) -> Pipeline {
    Pipeline {
        uuid: format!("{{11111111-2222-4333-8444-{n:012}}}"),
        build_number: n,
        state: "COMPLETED".into(),
        result: Some(result.into()),
        ref_name: branch.into(),
        commit: branch.into(),
        created_on: format!("2025-01-{:02}T03:04:05.000Z", n),
        steps: vec![
            PipelineStep {
                uuid: format!("{{aaaaaaaa-bbbb-4ccc-8ddd-{n:012}}}"),
                name: "Build".into(),
                log: Some(b"building\nbuilt ok\n".to_vec()),
                ..PipelineStep::default()
            },
            PipelineStep {
                uuid: format!("{{cccccccc-bbbb-4ccc-8ddd-{n:012}}}"),
                name: "Test".into(),
                result: Some(result.into()),
                log: Some(log.as_bytes().to_vec()),
                ..PipelineStep::default()
            },
        ],
        ..Pipeline::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_pipelines_list_filter_and_logs_without_leaking_credentials_to_the_log_host() {
    let f = Fixture::standard();
    let test_log: String = (1..=500)
        .map(|i| {
            if i == 420 {
                "error: assertion failed in ledger\n".to_string()
            } else {
                format!("test line {i}\n")
            }
        })
        .collect();
    for n in 1..=7 {
        let branch = match n {
            3 => "secret",
            5 => "feature",
            _ => "main",
        };
        let result = if n == 6 { "FAILED" } else { "SUCCESSFUL" };
        let log = if branch == "secret" {
            CANARY_CONTENT.to_string()
        } else {
            test_log.clone()
        };
        f.emu
            .add_pipeline("acme", "payments-api", pipeline(n, branch, result, &log));
    }
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let pages = all_pages(
        &mut seen,
        &ctx,
        "list_pipelines",
        json!({"repo": "payments-api", "limit": 2}),
    )
    .await;
    assert!(pages.len() >= 3);
    let numbers: Vec<String> = pages
        .iter()
        .flat_map(|p| names(p, "pipelines", "build_number"))
        .collect();
    assert_eq!(
        numbers,
        ["7", "6", "5", "4", "2", "1"],
        "newest first, #3 (secret) left out"
    );
    let first = &pages[0]["pipelines"][0];
    assert_eq!(first["branch"], "main");
    assert_eq!(first["state"], "COMPLETED");
    assert_eq!(first["result"], "SUCCESSFUL");
    assert_eq!(first["trigger"], "PUSH");
    assert_eq!(first["duration_secs"], 60);
    // Typed timestamps: the server's `…T03:04:05.000Z` is written with its offset.
    assert_eq!(first["created"], "2025-01-07T03:04:05+00:00");

    let feature = seen
        .ok(
            &ctx,
            "list_pipelines",
            json!({"repo": "payments-api", "branch": "feature"}),
        )
        .await;
    assert_eq!(names(&feature, "pipelines", "build_number"), ["5"]);
    let failed = seen
        .ok(
            &ctx,
            "list_pipelines",
            json!({"repo": "payments-api", "state": "FAILED"}),
        )
        .await;
    assert_eq!(names(&failed, "pipelines", "build_number"), ["6"]);
    let recent = seen
        .ok(
            &ctx,
            "list_pipelines",
            json!({"repo": "payments-api", "since": "2025-01-05"}),
        )
        .await;
    assert_eq!(names(&recent, "pipelines", "build_number"), ["7", "6", "5"]);
    seen.err(
        &ctx,
        "list_pipelines",
        json!({"repo": "payments-api", "branch": "secret"}),
        Kind::OutOfScope,
    )
    .await;
    seen.err(
        &ctx,
        "list_pipelines",
        json!({"repo": "payments-api", "since": "yesterday"}),
        Kind::Input,
    )
    .await;

    // Default step: the failed one; tail and grep.
    f.emu.reset_counters();
    let uuid = "{11111111-2222-4333-8444-000000000006}";
    let log = seen
        .ok(
            &ctx,
            "get_pipeline_log",
            json!({"repo": "payments-api", "pipeline": uuid, "tail": 5}),
        )
        .await;
    assert_eq!(log["step"]["name"], "Test");
    assert_eq!(log["total_lines"], 500);
    assert_eq!(log["shown_lines"], 5);
    assert!(
        log["log"]
            .as_str()
            .unwrap()
            .contains("   500  test line 500"),
        "{}",
        log["log"]
    );
    assert!(log["note"].as_str().unwrap().contains("last 5"));
    let grep = seen
        .ok(&ctx, "get_pipeline_log", json!({"repo": "payments-api", "pipeline": uuid.trim_matches(['{', '}']), "step": "Test", "grep": "^error"}))
        .await;
    assert_eq!(grep["matching_lines"], 1);
    assert_eq!(grep["log"], "   420  error: assertion failed in ledger\n");
    let list_route = "GET /2.0/repositories/{workspace}/{repo_slug}/pipelines";
    let lists_before = f.emu.count(list_route);
    let build = seen
        .ok(
            &ctx,
            "get_pipeline_log",
            json!({"repo": "payments-api", "pipeline": "6", "step": "build"}),
        )
        .await;
    assert_eq!(build["pipeline"], uuid, "found by its build number");
    // Bitbucket takes the build number in place of the UUID: no search through the list.
    assert_eq!(
        f.emu
            .count("GET /2.0/repositories/acme/payments-api/pipelines/6"),
        1
    );
    assert_eq!(f.emu.count(list_route), lists_before);
    assert_eq!(build["log"], "     1  building\n     2  built ok\n");

    // The log host got the requests, without the credential; the API got it.
    let on_log_host = f.emu.log_host_requests();
    assert_eq!(on_log_host.len(), 3, "{on_log_host:?}");
    for r in &on_log_host {
        assert!(
            r.header("authorization").is_none(),
            "Authorization leaked to the log host: {r:?}"
        );
        for (_, v) in &r.headers {
            assert!(!v.contains(CLOUD_TOKEN));
        }
    }
    assert!(
        f.emu
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_some())
    );

    for (args, kind) in [
        (
            json!({"repo": "payments-api", "pipeline": "{11111111-2222-4333-8444-000000000003}"}),
            Kind::OutOfScope,
        ),
        (
            json!({"repo": "payments-api", "pipeline": uuid, "step": "Deploy"}),
            Kind::NotFound,
        ),
        (
            json!({"repo": "payments-api", "pipeline": "../../x"}),
            Kind::Input,
        ),
        (
            json!({"repo": "payments-api", "pipeline": uuid, "grep": "("}),
            Kind::Input,
        ),
        (
            json!({"repo": "payments-core", "pipeline": uuid}),
            Kind::Input,
        ),
    ] {
        seen.err(&ctx, "get_pipeline_log", args, kind).await;
    }
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dc_list_pipelines_shows_build_statuses_of_recent_commits() {
    let f = Fixture::standard();
    let commits: Vec<String> = git(&f.repo, &["rev-list", "main"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(commits.len(), 3);
    f.emu.add_build_status(BuildStatus {
        commit: commits[0].clone(),
        key: "ci-main".into(),
        state: "FAILED".into(),
        ..BuildStatus::default()
    });
    f.emu.add_build_status(BuildStatus {
        commit: commits[1].clone(),
        ..BuildStatus::default()
    });
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let pages = all_pages(
        &mut seen,
        &ctx,
        "list_pipelines",
        json!({"repo": "payments-core", "branch": "main", "limit": 1}),
    )
    .await;
    assert_eq!(pages.len(), 3, "one commit per page");
    let got: Vec<&Value> = pages.iter().map(|p| &p["commits"][0]).collect();
    assert_eq!(got[0]["commit"], commits[0].as_str());
    assert_eq!(got[0]["builds"][0]["state"], "FAILED");
    assert_eq!(got[0]["builds"][0]["key"], "ci-main");
    assert_eq!(got[1]["builds"][0]["state"], "SUCCESSFUL");
    assert_eq!(got[2]["builds"].as_array().unwrap().len(), 0);
    assert_eq!(got[0]["summary"], "Grow src");
    // Without `branch`: the repository's default branch.
    let default = seen
        .ok(&ctx, "list_pipelines", json!({"repo": "payments-core"}))
        .await;
    assert_eq!(default["branch"], "main");
    assert_eq!(default["commits"].as_array().unwrap().len(), 3);
    seen.err(
        &ctx,
        "list_pipelines",
        json!({"repo": "payments-core", "branch": "secret"}),
        Kind::OutOfScope,
    )
    .await;
    seen.err(
        &ctx,
        "list_pipelines",
        json!({"repo": "payments-core", "limit": 50}),
        Kind::Input,
    )
    .await;
    seen.assert_clean();
}

/// `since`/`until` on the API path filter by the committer date, as `git log` does and the
/// argument says: a commit authored long ago and committed recently (a rebase, a cherry-pick)
/// is in, and the history after it is not cut short. Data Center records both dates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_commits_since_go_by_the_committer_date_as_git_log() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    for (i, (authored, committed)) in [
        ("2020-01-01T00:00:00Z", "2024-06-01T00:00:00Z"),
        ("2024-06-02T00:00:00Z", "2024-06-02T00:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(f.repo.join(format!("late{i}.txt")), "x\n").unwrap();
        git(&f.repo, &["add", "-A"]);
        let ok = std::process::Command::new("git")
            .current_dir(&f.repo)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@x",
                "commit",
                "-qm",
                "late",
            ])
            .env("GIT_AUTHOR_DATE", authored)
            .env("GIT_COMMITTER_DATE", committed)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let v = seen
        .ok(
            &ctx,
            "list_commits",
            json!({"repo": "payments-core", "since": "2024-03-01T00:00:00Z", "limit": 50}),
        )
        .await;
    let theirs = git(
        &f.repo,
        &["log", "--since=2024-01-01", "--format=%H", "main"],
    );
    assert_eq!(
        names(&v, "commits", "hash"),
        theirs.lines().collect::<Vec<_>>(),
        "{v}"
    );
    seen.assert_clean();
}
