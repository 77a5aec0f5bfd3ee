//! The checkout tools on repositories that are in scope but not cloned: answered from the API
//! (Cloud and Data Center) in the same output shape (`Seen::ok` checks every output against the
//! tool's schema), with the same scope rules.

use agentenv::tools::Kind;
use agentenv::tools::Kind::{Input, NotFound, OutOfScope};
use serde_json::json;

use crate::support::api::{Fixture, Seen};
use crate::support::git::git;
use crate::support::names;

/// Not cloned: two `repos:` entries, and two in-scope repositories outside `repos:`, one per
/// provider, named by `owner/slug` (both providers have them).
const UNCLONED: [&str; 4] = [
    "payments-ledger",
    "payments-core",
    "acme/payments-web",
    "PAY/payments-worker",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_cloned_repositories_are_read_through_the_api_on_cloud_and_dc() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    // payments-ledger (Cloud) and payments-core (Data Center) are in the spec, not cloned;
    // payments-web and payments-worker are in scope but not in `repos:` at all.
    for repo in UNCLONED {
        let b = seen
            .ok(&ctx, "list_branches", json!({"repo": repo, "limit": 1}))
            .await;
        assert_eq!(b["total"], 2, "{repo}: main and feature, not secret: {b}");
        assert_eq!(names(&b, "branches", "name"), ["feature"]);
        let b2 = seen
            .ok(
                &ctx,
                "list_branches",
                json!({"repo": repo, "cursor": b["next_cursor"]}),
            )
            .await;
        assert_eq!(names(&b2, "branches", "name"), ["main"]);
        assert_eq!(b2["branches"][0]["default"], true);
        assert_eq!(b2["branches"][0]["commit"], f.main_head.as_str());
        assert!(b2["note"].as_str().unwrap().contains("not cloned"));

        let root = seen.ok(&ctx, "browse", json!({"repo": repo})).await;
        assert_eq!(root["ref"], "main");
        assert_eq!(root["commit"], f.main_head.as_str());
        assert_eq!(names(&root, "entries", "path"), ["README.md", "src.txt"]);
        assert_eq!(root["entries"][1]["size"], 14);
        let feature = seen
            .ok(&ctx, "browse", json!({"repo": repo, "ref": "feature"}))
            .await;
        assert_eq!(
            names(&feature, "entries", "path"),
            ["README.md", "feature.txt", "src.txt"]
        );

        let file = seen
            .ok(
                &ctx,
                "read_file",
                json!({"repo": repo, "path": "src.txt", "start_line": 2}),
            )
            .await;
        assert_eq!(file["content"], "2\ttwo\n3\tthree\n");
        assert_eq!(file["total_lines"], 3);
        assert_eq!(file["start_line"], 2);
        assert_eq!(file["end_line"], 3);
        assert_eq!(file["truncated"], false);

        // The same scope rules as on a checkout.
        let refused = [
            ("browse", json!({"ref": "secret"}), OutOfScope),
            (
                "read_file",
                json!({"path": "secret.txt", "ref": "secret"}),
                OutOfScope,
            ),
            ("read_file", json!({"path": "../etc/passwd"}), Input),
            (
                "read_file",
                json!({"path": "src.txt", "ref": &f.main_head}),
                Input,
            ),
            ("read_file", json!({"path": "nope.txt"}), NotFound),
            ("browse", json!({"ref": "release/9"}), NotFound),
        ];
        for (tool, mut args, kind) in refused {
            args["repo"] = json!(repo);
            seen.err(&ctx, tool, args, kind).await;
        }
    }
    // A cloned repository is still answered locally: no API request.
    f.emu.reset_counters();
    let local = seen
        .ok(&ctx, "browse", json!({"repo": "payments-api"}))
        .await;
    assert!(
        local
            .get("note")
            .is_none_or(|n| !n.as_str().unwrap_or("").contains("not cloned"))
    );
    assert_eq!(f.emu.requests().len(), 0);
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_of_not_cloned_repositories_come_from_the_api_within_scope() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let secret_head = git(&f.repo, &["rev-parse", "secret"]);
    let feature_head = git(&f.repo, &["rev-parse", "feature"]);
    for repo in UNCLONED {
        let first = seen
            .ok(&ctx, "list_commits", json!({"repo": repo, "limit": 2}))
            .await;
        assert_eq!(first["ref"], "main");
        assert_eq!(names(&first, "commits", "summary"), ["Grow src", "Add src"]);
        assert_eq!(first["commits"][0]["hash"], f.main_head.as_str());
        assert_eq!(first["commits"][0]["author"]["email"], "test@example.com");
        let rest = seen
            .ok(
                &ctx,
                "list_commits",
                json!({"repo": repo, "limit": 2, "cursor": first["next_cursor"]}),
            )
            .await;
        assert_eq!(names(&rest, "commits", "summary"), ["Initial commit"]);
        assert!(rest.get("next_cursor").is_none());
        let feature = seen
            .ok(
                &ctx,
                "list_commits",
                json!({"repo": repo, "ref": "feature", "path": "feature.txt"}),
            )
            .await;
        assert_eq!(names(&feature, "commits", "summary"), ["Add the feature"]);
        seen.err(
            &ctx,
            "list_commits",
            json!({"repo": repo, "ref": "secret"}),
            Kind::OutOfScope,
        )
        .await;

        let c = seen
            .ok(
                &ctx,
                "get_commit",
                json!({"repo": repo, "commit": &f.main_head[..10], "patch": true}),
            )
            .await;
        assert_eq!(c["hash"], f.main_head.as_str());
        assert_eq!(c["message"].as_str().unwrap().trim(), "Grow src");
        assert_eq!(names(&c, "files", "path"), ["src.txt"]);
        assert_eq!(c["files"][0]["status"], "modified");
        let by_branch = seen
            .ok(
                &ctx,
                "get_commit",
                json!({"repo": repo, "commit": "feature"}),
            )
            .await;
        assert_eq!(by_branch["hash"], feature_head.as_str());
        assert_eq!(by_branch["files"][0]["status"], "added");
        // An older commit reached by an in-scope branch is fine; the out-of-scope branch's
        // head is not, and is answered exactly like a commit that does not exist.
        let initial = git(&f.repo, &["rev-list", "--max-parents=0", "main"]);
        seen.ok(&ctx, "get_commit", json!({"repo": repo, "commit": initial}))
            .await;
        let hidden = seen
            .err(
                &ctx,
                "get_commit",
                json!({"repo": repo, "commit": &secret_head}),
                Kind::NotFound,
            )
            .await;
        let missing = seen
            .err(
                &ctx,
                "get_commit",
                json!({"repo": repo, "commit": "0123456789abcdef0123456789abcdef01234567"}),
                Kind::NotFound,
            )
            .await;
        assert_eq!(
            hidden.message.replace(&secret_head, "X"),
            missing
                .message
                .replace("0123456789abcdef0123456789abcdef01234567", "X")
        );
        if repo == "payments-ledger" {
            assert_eq!(c["totals"]["additions"], 1);
            assert!(c["patch"].as_str().unwrap().contains("+three"), "{c}");
        }
    }
    seen.assert_clean();
}

/// Data Center serves a commit's patch at `GET …/repos/{slug}/patch?until={id}` (`streamPatch`
/// in the 9.4 OpenAPI document); it has no `…/commits/{id}/patch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_commit_with_patch_on_a_not_cloned_dc_repository() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let c = seen
        .ok(
            &ctx,
            "get_commit",
            json!({"repo": "payments-core", "commit": &f.main_head[..10], "patch": true}),
        )
        .await;
    let patch = c["patch"]
        .as_str()
        .unwrap_or_else(|| panic!("no patch: {c}"));
    assert!(patch.contains("+three"), "{patch}");
    assert!(!patch.contains("+new feature"), "only this commit: {patch}");
    // `…/patch?until=` (a mail per commit) or `…/diff?until=` (a plain diff, like Cloud's).
    let repo = "GET /rest/api/*/projects/PAY/repos/payments-core";
    assert_eq!(
        f.emu.count(&format!("{repo}/patch")) + f.emu.count(&format!("{repo}/diff")),
        1,
        "{:?}",
        f.emu.counts_by_route()
    );
    seen.assert_clean();
}
