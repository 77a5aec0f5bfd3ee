//! The checkout tools on repositories that are in scope but not cloned: answered from the API
//! (Cloud and Data Center) in the same output shape (`Seen::ok` checks every output against the
//! tool's schema), with the same scope rules.

mod api_support;

use agentenv::tools::ToolErrorKind;
use api_support::{Fixture, Seen, names};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_cloned_repositories_are_read_through_the_api_on_cloud_and_dc() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    let mut seen = Seen::default();
    // payments-ledger (Cloud) and payments-core (Data Center) are in the spec, not cloned.
    for repo in ["payments-ledger", "payments-core"] {
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
        seen.err(
            &ctx,
            "browse",
            json!({"repo": repo, "ref": "secret"}),
            ToolErrorKind::OutOfScope,
        )
        .await;
        seen.err(
            &ctx,
            "read_file",
            json!({"repo": repo, "path": "secret.txt", "ref": "secret"}),
            ToolErrorKind::OutOfScope,
        )
        .await;
        seen.err(
            &ctx,
            "read_file",
            json!({"repo": repo, "path": "../etc/passwd"}),
            ToolErrorKind::InvalidArgument,
        )
        .await;
        seen.err(
            &ctx,
            "read_file",
            json!({"repo": repo, "path": "src.txt", "ref": &f.main_head}),
            ToolErrorKind::InvalidArgument,
        )
        .await;
        seen.err(
            &ctx,
            "read_file",
            json!({"repo": repo, "path": "nope.txt"}),
            ToolErrorKind::NotFound,
        )
        .await;
        seen.err(
            &ctx,
            "browse",
            json!({"repo": repo, "ref": "release/9"}),
            ToolErrorKind::NotFound,
        )
        .await;
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
