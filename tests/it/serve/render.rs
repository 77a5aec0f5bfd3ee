//! The text answers (MCP text content) of the checkout tools: each holds every fact of the
//! JSON answer (`support::assert_text_holds_json`; the API tools are checked the same way by
//! every `Seen::ok` in tests/it/api), says what its flags say in words, is not JSON, and is
//! smaller than the JSON it renders.

use std::sync::Arc;

use agentenv::tools::{Answer, Context};
use serde_json::{Value, json};

use crate::support::assert_text_holds_json;
use crate::support::git::git;
use crate::support::workspace::{Fixture, small_app};

fn answer(ctx: &Arc<Context>, tool: &str, args: Value) -> Answer {
    let a = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(ctx.answer(tool, args.clone()))
        .unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
    assert_text_holds_json(tool, &a.json, &a.text);
    assert!(
        serde_json::from_str::<Value>(&a.text).is_err(),
        "{tool}: the text is not JSON"
    );
    println!("--- {tool} {args}\n{}", a.text);
    a
}

#[test]
fn checkout_tools_render_every_fact_of_their_answer() {
    let fx = small_app();
    fx.branch("app", "feature", &[("feature.txt", "new\n")]);
    let dir = fx.workdir.join("app");
    git(&dir, &["fetch", "-q", "origin", "feature:feature"]);
    let head = git(&dir, &["rev-parse", "HEAD"]);
    let ctx = fx.context();

    let b = answer(&ctx, "list_branches", json!({"repo": "app"}));
    assert!(
        b.text.contains("default") && b.text.contains("checked out"),
        "{}",
        b.text
    );
    answer(&ctx, "list_branches", json!({"repo": "app", "limit": 1}));
    answer(&ctx, "browse", json!({"repo": "app"}));
    answer(
        &ctx,
        "browse",
        json!({"repo": "app", "path": "src", "ref": "feature"}),
    );
    let r = answer(
        &ctx,
        "read_file",
        json!({"repo": "app", "path": "src/main.rs", "start_line": 2, "end_line": 3}),
    );
    assert!(r.text.contains("lines 2-3 of 4"), "{}", r.text);
    let l = answer(&ctx, "list_commits", json!({"repo": "app"}));
    // Each author once, above the rows; ids as git abbreviates them.
    let email = l.json["commits"][0]["author"]["email"].as_str().unwrap();
    assert_eq!(l.text.matches(email).count(), 1, "{}", l.text);
    assert!(
        l.text.contains(&head[..12]) && !l.text.contains(&head),
        "{}",
        l.text
    );
    answer(
        &ctx,
        "list_commits",
        json!({"repo": "app", "ref": "feature"}),
    );
    let c = answer(
        &ctx,
        "get_commit",
        json!({"repo": "app", "commit": head, "patch": true}),
    );
    assert!(c.text.contains("+++ b/"), "the patch: {}", c.text);
    let s = answer(&ctx, "search_code", json!({"query": "TODO", "context": 1}));
    // Each path once, then ripgrep's `line:match` / `line-context`.
    assert_eq!(s.text.matches("src/main.rs\n").count(), 1, "{}", s.text);
    assert!(
        s.text.contains("2:    // TODO: wire the server\n3-"),
        "{}",
        s.text
    );
    let none = answer(
        &ctx,
        "search_code",
        json!({"query": "no such text anywhere"}),
    );
    assert!(none.text.contains("no line matches"), "{}", none.text);
}

#[test]
fn search_text_names_each_file_once_and_merges_context() {
    let fx = Fixture::new();
    let body: String = (1..=40)
        .map(|i| {
            if [5, 7, 30].contains(&i) {
                format!("let hit_{i} = 1;\n")
            } else {
                format!("line {i}\n")
            }
        })
        .collect();
    fx.repo("app", &[("a.rs", &body), ("b.rs", "    hit\n")]);
    fx.clone("app");
    fx.spec(&["app"], "");
    let ctx = fx.context();
    let s = answer(&ctx, "search_code", json!({"query": "hit", "context": 2}));
    let expected = "a.rs\n3-line 3\n4-line 4\n5:let hit_5 = 1;\n6-line 6\n7:let hit_7 = 1;\n\
                    8-line 8\n9-line 9\n--\n28-line 28\n29-line 29\n30:let hit_30 = 1;\n\
                    31-line 31\n32-line 32\nb.rs\n1:hit\n";
    assert!(s.text.contains(expected), "{}", s.text);
    // Without context, lines stand alone: no `--` between runs, no indentation.
    let bare = answer(&ctx, "search_code", json!({"query": "hit"}));
    let expected = "a.rs\n5:let hit_5 = 1;\n7:let hit_7 = 1;\n30:let hit_30 = 1;\nb.rs\n1:hit\n";
    assert!(bare.text.contains(expected), "{}", bare.text);
    assert_eq!(
        bare.json["files"][1]["lines"][0]["text"], "    hit",
        "{}",
        bare.json
    );
    assert!(
        s.text.len() < s.json.to_string().len(),
        "text {} bytes, JSON {}",
        s.text.len(),
        s.json.to_string().len()
    );
}
