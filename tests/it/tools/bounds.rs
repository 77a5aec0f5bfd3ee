//! Bounded echoes and honest answers (issue 13 item 6): an error repeats only a short prefix of
//! a huge argument, a cursor past the end is refused instead of answered with an empty page, and
//! a search that searched nothing says why.

use agentenv::tools::{Kind, error_text};
use serde_json::json;

use crate::support::checkout::build;
use crate::support::workspace::Fixture;

#[tokio::test]
async fn errors_quote_only_a_prefix_of_a_huge_argument() {
    let f = build();
    let huge = "a/".repeat(1 << 19); // 1 MiB
    let cases = [
        ("read_file", json!({"repo": "payments-api", "path": huge})),
        ("browse", json!({"repo": "payments-api", "path": huge})),
        ("read_file", json!({"repo": huge, "path": "x"})),
        (
            "get_commit",
            json!({"repo": "payments-api", "commit": huge}),
        ),
        ("list_commits", json!({"repo": "payments-api", "ref": huge})),
        (
            "search_code",
            json!({"query": format!("({huge}"), "regex": true}),
        ),
        (
            "list_branches",
            json!({"repo": "payments-api", "cursor": huge}),
        ),
    ];
    for (tool, args) in cases {
        let e = match f.ctx.call(tool, args).await {
            Ok(v) => panic!("{tool}: should fail, got {}", &v.to_string()[..200]),
            Err(e) => e,
        };
        let text = error_text(&e);
        assert!(
            text.len() < 3000,
            "{tool}: a {} byte error for a 1 MiB argument: {}…",
            text.len(),
            &text[..300]
        );
    }
}

#[tokio::test]
async fn cursors_past_the_end_are_refused_not_answered_with_an_empty_page() {
    let f = build();
    // A cursor of the right kind, naming a position after the last branch.
    let past = agentenv_cursor("branches.v1|zzzz");
    let (kind, message) = f
        .err(
            "list_branches",
            json!({"repo": "payments-api", "cursor": past}),
        )
        .await;
    assert_eq!(kind, Kind::Input, "{message}");
    assert!(message.contains("invalid cursor"), "{message}");

    // list_commits: a real cursor whose count is moved past the end of the history.
    let p1 = f
        .ok("list_commits", json!({"repo": "payments-api", "limit": 1}))
        .await;
    let cursor = p1["next_cursor"].as_str().expect("a next page");
    let payload = decode(cursor);
    let (head, _) = payload.rsplit_once(':').unwrap();
    let forged = agentenv_cursor(&format!("{head}:100000"));
    let (kind, message) = f
        .err(
            "list_commits",
            json!({"repo": "payments-api", "limit": 1, "cursor": forged}),
        )
        .await;
    assert_eq!(kind, Kind::Input, "{message}");
    assert!(message.contains("invalid cursor"), "{message}");
    // The real cursor still works.
    let p2 = f
        .ok(
            "list_commits",
            json!({"repo": "payments-api", "limit": 1, "cursor": cursor}),
        )
        .await;
    assert_eq!(p2["commits"].as_array().unwrap().len(), 1, "{p2}");
}

#[tokio::test]
async fn a_search_whose_only_repository_was_skipped_says_why() {
    let fx = Fixture::new();
    fx.repo("app", &[("a.rs", "x\n")]);
    fx.spec(&["app"], ""); // not cloned
    let v = fx
        .context()
        .call("search_code", json!({"query": "x"}))
        .await
        .expect("an answer, not an error");
    assert_eq!(v["total_matches"], 0, "{v}");
    let note = v["note"].as_str().expect("a note");
    assert!(note.contains("nothing was searched"), "{note}");
    assert!(note.contains("app"), "{note}");
    assert!(note.contains("provision"), "says what to do: {note}");
}

fn agentenv_cursor(payload: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload)
}

fn decode(cursor: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}
