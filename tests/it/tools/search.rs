//! `search_code` through `Context::call` (the path `serve` and `tool` use), on real git
//! repositories: literal and regex, case, globs, context, .gitignore, refs, limits, errors.

use std::sync::Arc;

use agentenv::tools::{Context, Error, Kind};
use serde_json::{Value, json};

use crate::support::assert_fits_output_schema;
use crate::support::git::{git, write};
use crate::support::workspace::{Fixture, small_app};

fn call(ctx: &Arc<Context>, args: Value) -> Result<Value, Error> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(ctx.call("search_code", args))
}

/// A successful answer, checked against the tool's published output schema (clients such as
/// the Python SDK reject structured content that does not match it).
fn ok(ctx: &Arc<Context>, args: Value) -> Value {
    let v = call(ctx, args.clone()).unwrap_or_else(|e| panic!("search {args} failed: {e}"));
    assert_fits_output_schema("search_code", &v);
    v
}

fn err(ctx: &Arc<Context>, args: Value) -> Error {
    match call(ctx, args.clone()) {
        Ok(v) => panic!("search {args} should fail, got {v}"),
        Err(e) => e,
    }
}

/// Every matching line (not context) with its file, in answer order.
fn matches(result: &Value) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for f in result["files"].as_array().unwrap() {
        for l in f["lines"].as_array().unwrap() {
            if l.get("context").is_none() {
                out.push((f.clone(), l.clone()));
            }
        }
    }
    out
}

/// `path:line` of every match, in answer order.
fn hits(result: &Value) -> Vec<String> {
    matches(result)
        .iter()
        .map(|(f, l)| format!("{}:{}", f["path"].as_str().unwrap(), l["line"]))
        .collect()
}

#[test]
fn literal_query_escapes_regex_characters_and_regex_query_does_not() {
    let fx = small_app();
    let ctx = fx.context();
    let literal = ok(&ctx, json!({"query": "a.c"}));
    assert_eq!(hits(&literal), ["src/lib.rs:3"]);
    assert_eq!(
        literal["files"][0]["lines"][0]["text"],
        "pub const A_DOT_C: &str = \"a.c\";"
    );
    assert_eq!(literal["files"][0]["repo"], "app");

    let regex = ok(
        &ctx,
        json!({"query": "a.c", "regex": true, "case_sensitive": true}),
    );
    assert_eq!(
        hits(&regex),
        ["src/lib.rs:1", "src/lib.rs:3", "src/main.rs:3"]
    );
    assert_eq!(regex["total_matches"], 3);
    assert_eq!(regex["files_with_matches"], 2);
    assert_eq!(regex["truncated"], false);
}

#[test]
fn smart_case_by_default_and_explicit_case_options() {
    let fx = small_app();
    let ctx = fx.context();
    // Lowercase query: case-insensitive.
    let smart_lower = ok(&ctx, json!({"query": "todo"}));
    assert_eq!(
        hits(&smart_lower),
        ["README.md:2", "src/lib.rs:2", "src/main.rs:2"]
    );
    // An uppercase letter makes it case-sensitive.
    let smart_upper = ok(&ctx, json!({"query": "TODO"}));
    assert_eq!(hits(&smart_upper), ["README.md:2", "src/main.rs:2"]);
    let sensitive = ok(&ctx, json!({"query": "todo", "case_sensitive": true}));
    assert_eq!(hits(&sensitive), ["src/lib.rs:2"]);
    let insensitive = ok(&ctx, json!({"query": "TODO", "case_sensitive": false}));
    assert_eq!(insensitive["total_matches"], 3);
}

#[test]
fn include_and_exclude_globs_select_files() {
    let fx = small_app();
    let ctx = fx.context();
    let rs_only = ok(&ctx, json!({"query": "todo", "include": "*.rs"}));
    assert_eq!(hits(&rs_only), ["src/lib.rs:2", "src/main.rs:2"]);
    let two = ok(
        &ctx,
        json!({"query": "todo", "include": ["*.md", "src/main.rs"]}),
    );
    assert_eq!(hits(&two), ["README.md:2", "src/main.rs:2"]);
    let no_src = ok(&ctx, json!({"query": "todo", "exclude": ["src/**"]}));
    assert_eq!(hits(&no_src), ["README.md:2"]);
    let both = ok(
        &ctx,
        json!({"query": "todo", "include": ["*.rs"], "exclude": "lib.rs"}),
    );
    assert_eq!(hits(&both), ["src/main.rs:2"]);
    let none = ok(&ctx, json!({"query": "todo", "include": "*.py"}));
    assert_eq!(hits(&none), Vec::<String>::new());
    let note = none["note"].as_str().unwrap();
    assert!(note.contains("include/exclude"), "{note}");
}

#[test]
fn invalid_glob_is_an_invalid_argument() {
    let fx = small_app();
    let e = err(&fx.context(), json!({"query": "x", "include": "src/[a"}));
    assert_eq!(e.kind, Kind::Input);
    assert!(e.message.contains("src/[a"), "{}", e.message);
}

#[test]
fn context_lines_are_complete_for_each_match_even_when_windows_overlap() {
    let fx = Fixture::new();
    let text: String = (1..=10)
        .map(|i| format!("line {i}{}\n", if i == 4 || i == 6 { " hit" } else { "" }))
        .collect();
    fx.repo("ctx", &[("f.txt", &text)]);
    fx.clone("ctx");
    fx.spec(&["ctx"], "");
    let r = ok(&fx.context(), json!({"query": "hit", "context": 2}));
    assert_eq!(hits(&r), ["f.txt:4", "f.txt:6"]);
    // The two windows (2-6 and 4-8) overlap: one file, each line once, in order.
    let files = r["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    let lines: Vec<(u64, bool)> = files[0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l.get("context").is_some()))
        .collect();
    assert_eq!(
        lines,
        [
            (2, true),
            (3, true),
            (4, false),
            (5, true),
            (6, false),
            (7, true),
            (8, true)
        ]
    );
    assert_eq!(files[0]["lines"][2]["text"], "line 4 hit");

    // Without context, every line shown is a match.
    let bare = ok(&fx.context(), json!({"query": "hit"}));
    assert_eq!(bare["files"][0]["lines"].as_array().unwrap().len(), 2);
    let e = err(&fx.context(), json!({"query": "hit", "context": 11}));
    assert_eq!(e.kind, Kind::Input);
}

#[test]
fn gitignored_files_git_internals_binaries_and_outside_symlinks_are_not_searched() {
    let fx = small_app();
    let dir = fx.workdir.join("app");
    write(&dir.join("target/debug/out.rs"), "needle in ignored dir\n");
    write(&dir.join("build.log"), "needle in ignored file\n");
    write(
        &dir.join(".github/workflows/ci.yml"),
        "run: needle hidden but tracked-style\n",
    );
    write(&dir.join("data.bin"), b"needle\0binary\n");
    write(&dir.join(".git/needle-note"), "needle inside .git\n");
    let outside = fx.tmp.path().join("outside");
    write(&outside.join("secret.txt"), "needle outside the repo\n");
    std::os::unix::fs::symlink(outside.join("secret.txt"), dir.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("linkdir")).unwrap();

    // These rules are the working tree's walk; the committed tree has none of these files.
    let r = ok(
        &fx.context(),
        json!({"query": "needle", "working_tree": true}),
    );
    assert_eq!(hits(&r), [".github/workflows/ci.yml:1"]);
    assert_eq!(r["searched"][0]["source"], "working_tree");
    let committed = ok(&fx.context(), json!({"query": "needle"}));
    assert_eq!(committed["total_matches"], 0);
    assert_eq!(committed["searched"][0]["source"], "commit");
}

#[test]
fn searches_another_ref_tree_without_touching_the_working_tree() {
    let fx = small_app();
    let feature = fx.branch(
        "app",
        "feature",
        &[("src/new.rs", "fn feature_only() {}\n")],
    );
    // Fetch the new branch into the clone; the working tree stays on main.
    let dir = fx.workdir.join("app");
    git(&dir, &["fetch", "-q", "origin", "feature:feature"]);
    let ctx = fx.context();

    let head = ok(&ctx, json!({"query": "feature_only"}));
    assert_eq!(head["total_matches"], 0);

    let at_branch = ok(
        &ctx,
        json!({"query": "feature_only", "repo": "app", "ref": "feature"}),
    );
    assert_eq!(hits(&at_branch), ["src/new.rs:1"]);
    assert_eq!(at_branch["searched"][0]["source"], "commit");
    assert_eq!(at_branch["searched"][0]["commit"], feature.as_str());

    let at_commit = ok(&ctx, json!({"query": "feature_only", "ref": feature}));
    assert_eq!(hits(&at_commit), ["src/new.rs:1"]);

    // Globs apply to tree searches as well.
    let excluded = ok(
        &ctx,
        json!({"query": "fn", "repo": "app", "ref": "feature", "exclude": "src/main.rs"}),
    );
    assert_eq!(hits(&excluded), ["src/lib.rs:1", "src/new.rs:1"]);

    let missing = err(
        &ctx,
        json!({"query": "x", "repo": "app", "ref": "no-such-branch"}),
    );
    assert_eq!(missing.kind, Kind::NotFound);
}

#[test]
fn limit_keeps_the_first_matches_in_path_order_with_a_truncation_note() {
    let fx = Fixture::new();
    let files: Vec<(String, String)> = (0..30)
        .map(|i| (format!("f{i:02}.txt"), "hit\nhit\n".to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    fx.repo("many", &refs);
    fx.clone("many");
    fx.spec(&["many"], "");
    let ctx = fx.context();

    let default = ok(&ctx, json!({"query": "hit"}));
    assert_eq!(hits(&default).len(), 50);
    assert_eq!(default["shown_matches"], 50);
    assert_eq!(default["total_matches"], 60);
    assert_eq!(default["files_with_matches"], 30);
    assert_eq!(default["truncated"], true);
    let note = default["note"].as_str().unwrap();
    assert!(
        note.contains("50 of 60") && note.contains("limit"),
        "{note}"
    );
    assert_eq!(hits(&default).last().unwrap(), "f24.txt:2");

    let three = ok(&ctx, json!({"query": "hit", "limit": 3}));
    assert_eq!(hits(&three), ["f00.txt:1", "f00.txt:2", "f01.txt:1"]);

    let all = ok(&ctx, json!({"query": "hit", "limit": 500}));
    assert_eq!(all["truncated"], false);
    assert!(all.get("note").is_none());

    for bad in [json!(0), json!(501), json!(-1), json!("ten")] {
        let e = err(&ctx, json!({"query": "hit", "limit": bad}));
        assert_eq!(e.kind, Kind::Input, "limit {bad}");
    }
}

#[test]
fn long_lines_are_cut_and_the_answer_has_a_byte_cap() {
    let fx = Fixture::new();
    let long = format!("{}\n", "hit ".repeat(300));
    let content = long.repeat(400);
    fx.repo("wide", &[("wide.txt", &content)]);
    fx.clone("wide");
    fx.spec(&["wide"], "");
    let r = ok(&fx.context(), json!({"query": "hit", "limit": 500}));
    let first = &r["files"][0]["lines"][0];
    assert_eq!(first["cut"], true);
    assert!(first["text"].as_str().unwrap().len() <= 400 + "…".len());
    let shown = hits(&r).len();
    assert!(
        shown < 400,
        "byte cap should stop before 400 long matches, got {shown}"
    );
    assert_eq!(r["total_matches"], 400);
    assert_eq!(r["truncated"], true);
    assert!(
        r["note"].as_str().unwrap().contains("KB cap"),
        "{}",
        r["note"]
    );
}

#[test]
fn invalid_regex_is_an_invalid_argument_with_the_regex_error() {
    let fx = small_app();
    let e = err(&fx.context(), json!({"query": "fn (", "regex": true}));
    assert_eq!(e.kind, Kind::Input);
    assert!(
        e.message.contains("not a valid regex") && e.message.contains("unclosed group"),
        "{}",
        e.message
    );
    // The same text is fine as a literal.
    assert_eq!(
        ok(&fx.context(), json!({"query": "fn ("}))["total_matches"],
        0
    );
}

#[test]
fn bad_arguments_are_invalid_arguments() {
    let fx = small_app();
    let ctx = fx.context();
    for args in [
        json!({}),
        json!({"query": ""}),
        json!({"query": 5}),
        json!({"query": "x", "regexp": true}),
        json!({"query": "x", "case_sensitive": "yes"}),
    ] {
        let e = err(&ctx, args.clone());
        assert_eq!(e.kind, Kind::Input, "{args}: {}", e.message);
    }
}

#[test]
fn scope_decides_which_repositories_are_searched() {
    let fx = Fixture::new();
    fx.repo("pay-api", &[("a.txt", "needle\n")]);
    fx.repo("pay-web", &[("b.txt", "needle\n")]);
    fx.repo("ledger", &[("c.txt", "needle\n")]);
    fx.clone("pay-api");
    fx.clone("ledger");
    // Validation refuses a spec naming an out-of-scope repository, so narrow the scope after
    // loading (as an environment whose scope changed under an existing workdir would be).
    fx.spec(&["pay-api", "pay-web", "ledger"], "");
    let ctx = fx.context_with_scope(Some("^pay-"), None);

    let e = err(&ctx, json!({"query": "needle", "repo": "ledger"}));
    assert_eq!(e.kind, Kind::OutOfScope);
    let e = err(&ctx, json!({"query": "needle", "repo": "pay-web"}));
    assert_eq!(e.kind, Kind::NotCloned);
    let e = err(&ctx, json!({"query": "needle", "repo": "pay-nope"}));
    assert_eq!(e.kind, Kind::NotFound);

    // Every repo: the out-of-scope one is not even mentioned; the uncloned one says why.
    let all = ok(&ctx, json!({"query": "needle"}));
    assert_eq!(hits(&all), ["a.txt:1"]);
    assert_eq!(all["searched"].as_array().unwrap().len(), 1);
    assert_eq!(all["skipped"][0]["repo"], "pay-web");
    assert!(!all.to_string().contains("ledger"));
}

#[test]
fn an_empty_search_says_why_nothing_was_searched() {
    let fx = Fixture::new();
    fx.repo("app", &[("a.txt", "x\n")]);
    fx.spec(&["app"], "");
    let r = ok(&fx.context(), json!({"query": "x"}));
    assert_eq!(r["total_matches"], 0);
    assert!(
        r["note"].as_str().unwrap().contains("provision"),
        "{}",
        r["note"]
    );
}

#[test]
fn every_cloned_repository_is_searched_in_name_order() {
    let fx = Fixture::new();
    fx.repo("zeta", &[("z.txt", "needle\n")]);
    fx.repo("alpha", &[("a.txt", "needle\n")]);
    fx.clone("zeta");
    fx.clone("alpha");
    fx.spec(&["zeta", "alpha"], "");
    let r = ok(&fx.context(), json!({"query": "needle"}));
    let repos: Vec<&str> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["repo"].as_str().unwrap())
        .collect();
    assert_eq!(repos, ["alpha", "zeta"]);
}

#[test]
fn a_ref_outside_the_branch_scope_is_refused() {
    let fx = small_app();
    fx.branch("app", "experiment", &[("x.txt", "needle\n")]);
    git(
        &fx.workdir.join("app"),
        &["fetch", "-q", "origin", "experiment:experiment"],
    );
    fx.spec(&["app"], "scope:\n  branches: '^main$'\n");
    let e = err(
        &fx.context(),
        json!({"query": "needle", "repo": "app", "ref": "experiment"}),
    );
    assert_eq!(e.kind, Kind::OutOfScope);
}
