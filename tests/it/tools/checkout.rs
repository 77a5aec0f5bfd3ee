//! The checkout tools against a real repository made with the git CLI and cloned into a
//! workdir: list_branches, browse, read_file, list_commits, get_commit.

use agentenv::tools::{Kind, catalog};
use serde_json::{Value, json};

use crate::support::checkout::{CANARY, OUTSIDE_CANARY, big_line, build};
use crate::support::names;

#[tokio::test]
async fn list_branches_shows_in_scope_branches_with_heads_and_pages() {
    let f = build();
    let v = f.ok("list_branches", json!({"repo": "payments-api"})).await;
    assert_eq!(names(&v, "branches", "name"), ["main", "release/1.0"]);
    assert_eq!(v["total"], 2);
    assert!(v.get("next_cursor").is_none());
    let main = &v["branches"][0];
    assert_eq!(main["commit"], f.main_commits[3]);
    assert_eq!(main["date"], "2024-04-05T17:45:00+00:00");
    assert_eq!(main["summary"], "Greet the world; drop old docs");
    assert_eq!(main["checked_out"], true);
    assert_eq!(main["default"], true);
    assert_eq!(main["local"], true);
    assert_eq!(main["remote"], "origin");
    let rel = &v["branches"][1];
    assert_eq!(rel["commit"], f.release_head);
    assert_eq!(rel["checked_out"], false);
    assert_eq!(
        rel["local"], false,
        "only a remote-tracking ref in the clone"
    );
    assert!(!v.to_string().contains("secret"), "{v}");

    // Pagination: one per page, the cursor carries us to the second and last page.
    let p1 = f
        .ok("list_branches", json!({"repo": "payments-api", "limit": 1}))
        .await;
    assert_eq!(names(&p1, "branches", "name"), ["main"]);
    let cursor = p1["next_cursor"].as_str().expect("a next page").to_string();
    let p2 = f
        .ok(
            "list_branches",
            json!({"repo": "payments-api", "limit": 1, "cursor": cursor}),
        )
        .await;
    assert_eq!(names(&p2, "branches", "name"), ["release/1.0"]);
    assert!(p2.get("next_cursor").is_none());

    for (args, kind) in [
        (
            json!({"repo": "payments-api", "cursor": "%%%not-base64"}),
            Kind::Input,
        ),
        (json!({"repo": "payments-api", "limit": 0}), Kind::Input),
        (json!({"repo": "payments-api", "limit": 101}), Kind::Input),
        (json!({"repo": "payments-api", "limit": "ten"}), Kind::Input),
        (json!({"repo": "payments-api", "bogus": 1}), Kind::Input),
        (json!({}), Kind::Input),
        (json!({"repo": "payments-ledger"}), Kind::NotCloned),
        (json!({"repo": "payments-nope"}), Kind::NotFound),
        (json!({"repo": "internal-secrets"}), Kind::OutOfScope),
    ] {
        let (k, msg) = f.err("list_branches", args.clone()).await;
        assert_eq!(k, kind, "{args}: {msg}");
    }
    // A commits cursor is not a branches cursor.
    let c = f
        .ok("list_commits", json!({"repo": "payments-api", "limit": 1}))
        .await;
    let (k, msg) = f
        .err(
            "list_branches",
            json!({"repo": "payments-api", "cursor": c["next_cursor"]}),
        )
        .await;
    assert_eq!(k, Kind::Input);
    assert!(msg.contains("next_cursor"), "{msg}");
    // The hints tell the agent what to do.
    let (_, msg) = f
        .err("list_branches", json!({"repo": "payments-ledger"}))
        .await;
    assert!(msg.contains("agentenv provision"), "{msg}");
    let (_, msg) = f
        .err("list_branches", json!({"repo": "payments-nope"}))
        .await;
    assert!(
        msg.contains("payments-api") && !msg.contains("internal-secrets"),
        "{msg}"
    );
}

#[tokio::test]
async fn browse_lists_entries_with_types_and_sizes_at_any_ref() {
    let f = build();
    let v = f.ok("browse", json!({"repo": "payments-api"})).await;
    assert_eq!(v["ref"], "main");
    assert_eq!(v["commit"], f.main_commits[3]);
    assert_eq!(v["path"], "");
    let entries = v["entries"].as_array().unwrap();
    let find = |n: &str| {
        entries
            .iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {v}"))
    };
    assert_eq!(find("src")["type"], "dir");
    assert_eq!(find("a")["type"], "dir");
    assert_eq!(find("big.txt")["type"], "file");
    assert_eq!(find("big.txt")["size"], 150_000);
    assert_eq!(find("script.sh")["executable"], true);
    assert_eq!(find("link-inside")["type"], "symlink");
    assert_eq!(find("link-inside")["target"], "src/main.rs");
    assert_eq!(find("link-outside")["type"], "symlink");
    assert_eq!(find("srclink")["type"], "symlink");
    assert!(
        entries.iter().all(|e| e["name"] != "docs"),
        "docs was deleted on main"
    );
    assert!(
        entries.iter().all(|e| e["name"] != "wc-escape"),
        "working-copy files are not in the tree"
    );
    // Directories first.
    assert_eq!(entries[0]["type"], "dir");
    assert_eq!(v["total_entries"], entries.len());
    assert_eq!(v["truncated"], false);
    assert!(!v.to_string().contains(OUTSIDE_CANARY));

    let head = f
        .ok("browse", json!({"repo": "payments-api", "ref": "HEAD"}))
        .await;
    assert_eq!(
        head, v,
        "`HEAD` is the checked-out commit, as when ref is omitted"
    );

    let nested = f
        .ok("browse", json!({"repo": "payments-api", "path": "a/b/"}))
        .await;
    assert_eq!(nested["path"], "a/b");
    assert_eq!(nested["entries"][0]["path"], "a/b/c");
    let dot = f
        .ok("browse", json!({"repo": "payments-api", "path": "./a/./b"}))
        .await;
    assert_eq!(dot["entries"], nested["entries"]);

    // At the first commit, by abbreviated id: the old layout.
    let old = f
        .ok(
            "browse",
            json!({"repo": "payments-api", "ref": &f.main_commits[0][..10]}),
        )
        .await;
    assert_eq!(old["commit"], f.main_commits[0]);
    assert_eq!(old["ref"], f.main_commits[0]);
    let old_names = names(&old, "entries", "name");
    assert!(
        old_names.contains(&"docs".to_string()) && old_names.contains(&"README.md".to_string())
    );
    assert!(!old_names.contains(&"big.txt".to_string()));
    // On another in-scope branch, also by its refs/heads and refs/remotes spellings.
    for r in [
        "release/1.0",
        "refs/heads/release/1.0",
        "refs/remotes/origin/release/1.0",
    ] {
        let rel = f
            .ok("browse", json!({"repo": "payments-api", "ref": r}))
            .await;
        assert!(
            names(&rel, "entries", "name").contains(&"RELEASE".to_string()),
            "{r}: {rel}"
        );
        assert_eq!(rel["commit"], f.release_head);
    }

    for (args, kind, hint) in [
        (
            json!({"repo": "payments-api", "path": "big.txt"}),
            Kind::Input,
            "read_file",
        ),
        (
            json!({"repo": "payments-api", "path": "srclink"}),
            Kind::Input,
            "symlink",
        ),
        (
            json!({"repo": "payments-api", "path": "srclink/main.rs"}),
            Kind::NotFound,
            "browse",
        ),
        (
            json!({"repo": "payments-api", "path": "nope"}),
            Kind::NotFound,
            "browse",
        ),
        (
            json!({"repo": "payments-api", "ref": "release/none"}),
            Kind::NotFound,
            "list_branches",
        ),
        (
            json!({"repo": "payments-api", "ref": "secret"}),
            Kind::OutOfScope,
            "list_branches",
        ),
    ] {
        let (k, msg) = f.err("browse", args.clone()).await;
        assert_eq!(k, kind, "{args}: {msg}");
        assert!(msg.contains(hint), "{args}: {msg}");
    }
}

#[tokio::test]
async fn read_file_numbers_lines_ranges_and_caps() {
    let f = build();
    let v = f
        .ok(
            "read_file",
            json!({"repo": "payments-api", "path": "src/main.rs"}),
        )
        .await;
    assert_eq!(
        v["content"],
        "1\tfn main() {\n2\t    println!(\"hello\");\n3\t    println!(\"world\");\n4\t}\n"
    );
    assert_eq!(v["total_lines"], 4);
    assert_eq!(v["start_line"], 1);
    assert_eq!(v["end_line"], 4);
    assert_eq!(v["binary"], false);
    assert_eq!(v["truncated"], false);
    assert_eq!(v["mime"], "text/x-rust");
    assert_eq!(v["ref"], "main");

    let r = f
        .ok(
            "read_file",
            json!({"repo": "payments-api", "path": "src/main.rs", "start_line": 2, "end_line": 3}),
        )
        .await;
    assert_eq!(
        r["content"],
        "2\t    println!(\"hello\");\n3\t    println!(\"world\");\n"
    );
    let past = f
        .ok(
            "read_file",
            json!({"repo": "payments-api", "path": "src/main.rs", "start_line": 4, "end_line": 99}),
        )
        .await;
    assert_eq!(past["content"], "4\t}\n");
    assert_eq!(past["end_line"], 4);

    // At an older commit the file is different.
    let old = f
        .ok(
            "read_file",
            json!({"repo": "payments-api", "path": "src/main.rs", "ref": f.main_commits[0]}),
        )
        .await;
    assert_eq!(old["total_lines"], 3);

    // Binary: size and MIME, no bytes.
    let bin = f
        .ok(
            "read_file",
            json!({"repo": "payments-api", "path": "assets/logo.png"}),
        )
        .await;
    assert_eq!(bin["binary"], true);
    assert_eq!(bin["mime"], "image/png");
    assert_eq!(bin["size"], 77);
    assert!(bin.get("content").is_none());

    // 150 KB: cut at a line boundary under 100 KB, and the continuation reads the rest.
    let big = f
        .ok(
            "read_file",
            json!({"repo": "payments-api", "path": "big.txt"}),
        )
        .await;
    assert_eq!(big["truncated"], true);
    assert_eq!(big["total_lines"], 3000);
    let content = big["content"].as_str().unwrap();
    assert!(content.len() <= 100 * 1024, "{}", content.len());
    assert!(content.ends_with('\n'));
    let next = big["next_start_line"].as_u64().unwrap() as usize;
    assert_eq!(big["end_line"].as_u64().unwrap() as usize, next - 1);
    assert!(content.ends_with(&format!("{}\t{}", next - 1, big_line(next - 1))));
    assert!(
        big["note"]
            .as_str()
            .unwrap()
            .contains(&format!("start_line {next}"))
    );
    let rest = f
        .ok(
            "read_file",
            json!({"repo": "payments-api", "path": "big.txt", "start_line": next}),
        )
        .await;
    assert_eq!(rest["truncated"], false);
    assert_eq!(rest["end_line"], 3000);
    assert!(
        rest["content"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{next}\t{}", big_line(next)))
    );

    // A single line over the cap: its head, then continue after it.
    let long = f
        .ok(
            "read_file",
            json!({"repo": "payments-api", "path": "oneline.min.js"}),
        )
        .await;
    assert_eq!(long["truncated"], true);
    assert_eq!(long["next_start_line"], 2);
    assert!(long["content"].as_str().unwrap().len() <= 100 * 1024);
    assert!(long["note"].as_str().unwrap().contains("line 1"));

    // Symlinks are reported, never followed — inside or outside.
    for (path, target) in [
        ("link-inside", "src/main.rs"),
        ("link-outside", "../../outside.txt"),
        ("link-abs", "/etc/passwd"),
    ] {
        let l = f
            .ok("read_file", json!({"repo": "payments-api", "path": path}))
            .await;
        assert_eq!(l["symlink"], true, "{l}");
        assert_eq!(l["symlink_target"], target);
        assert!(l.get("content").is_none());
        assert!(!l.to_string().contains(OUTSIDE_CANARY) && !l.to_string().contains("root:"));
    }

    for (args, kind, hint) in [
        (
            json!({"repo": "payments-api", "path": "src"}),
            Kind::Input,
            "browse",
        ),
        (
            json!({"repo": "payments-api", "path": ""}),
            Kind::Input,
            "browse",
        ),
        (
            json!({"repo": "payments-api", "path": "missing.txt"}),
            Kind::NotFound,
            "browse",
        ),
        (
            json!({"repo": "payments-api", "path": "src/main.rs", "start_line": 0}),
            Kind::Input,
            "1-based",
        ),
        (
            json!({"repo": "payments-api", "path": "src/main.rs", "start_line": 3, "end_line": 2}),
            Kind::Input,
            "before",
        ),
        (
            json!({"repo": "payments-api", "path": "src/main.rs", "start_line": 50}),
            Kind::Input,
            "4 lines",
        ),
        (
            json!({"repo": "payments-api", "path": "src/main.rs", "start_line": -1}),
            Kind::Input,
            "invalid arguments",
        ),
        (json!({"repo": "payments-api"}), Kind::Input, "path"),
        (
            json!({"repo": "payments-api", "path": "secret.txt", "ref": "secret"}),
            Kind::OutOfScope,
            "list_branches",
        ),
    ] {
        let (k, msg) = f.err("read_file", args.clone()).await;
        assert_eq!(k, kind, "{args}: {msg}");
        assert!(msg.contains(hint), "{args}: {msg}");
        assert!(!msg.contains(CANARY));
    }
}

#[tokio::test]
async fn list_commits_filters_pages_and_reports_shallow_history() {
    let f = build();
    let v = f.ok("list_commits", json!({"repo": "payments-api"})).await;
    let hashes = names(&v, "commits", "hash");
    let expected: Vec<String> = f.main_commits.iter().rev().cloned().collect();
    assert_eq!(hashes, expected);
    assert_eq!(v["ref"], "main");
    assert_eq!(v["history_truncated_by_depth"], false);
    let first = &v["commits"][3];
    assert_eq!(first["summary"], "Initial import");
    assert_eq!(first["author"]["name"], "Alice Anders");
    assert_eq!(first["author"]["email"], "alice@acme.example");
    assert_eq!(first["author"]["date"], "2024-01-10T09:00:00+02:00");
    assert_eq!(first["parents"], json!([]));
    assert_eq!(v["commits"][0]["parents"], json!([f.main_commits[2]]));

    let fr = &f;
    let by = |args: Value| async move {
        let mut a = json!({"repo": "payments-api"});
        a.as_object_mut()
            .unwrap()
            .extend(args.as_object().unwrap().clone());
        names(&fr.ok("list_commits", a).await, "commits", "hash")
    };
    let c: Vec<&str> = f.main_commits.iter().map(String::as_str).collect();
    let release = f.release_head.as_str();
    for (filter, want) in [
        (json!({"author": "ALICE"}), vec![c[2], c[0]]),
        (json!({"author": "builders.example"}), vec![c[1]]),
        (json!({"author": "nobody"}), vec![]),
        (json!({"path": "src/main.rs"}), vec![c[3], c[0]]),
        (json!({"path": "assets"}), vec![c[1]]),
        (json!({"path": "docs/old.md"}), vec![c[3], c[0]]),
        (
            json!({"since": "2024-02-15", "until": "2024-03-20"}),
            vec![c[2], c[1]],
        ),
        (json!({"since": "2024-03-20T08:30:01Z"}), vec![c[3]]),
        (json!({"until": "2024-01-10T07:00:00Z"}), vec![c[0]]),
        (json!({"ref": "release/1.0"}), vec![release, c[1], c[0]]),
        (json!({"ref": c[1]}), vec![c[1], c[0]]),
    ] {
        assert_eq!(by(filter.clone()).await, want, "{filter}");
    }
    let c = &f.main_commits;

    // Pagination through all four, two at a time; the cursor is bound to its arguments.
    let p1 = f
        .ok("list_commits", json!({"repo": "payments-api", "limit": 2}))
        .await;
    assert_eq!(names(&p1, "commits", "hash"), [c[3].clone(), c[2].clone()]);
    let cur = p1["next_cursor"].as_str().unwrap().to_string();
    let p2 = f
        .ok(
            "list_commits",
            json!({"repo": "payments-api", "limit": 2, "cursor": cur}),
        )
        .await;
    assert_eq!(names(&p2, "commits", "hash"), [c[1].clone(), c[0].clone()]);
    assert!(p2.get("next_cursor").is_none());
    let (k, msg) = f
        .err(
            "list_commits",
            json!({"repo": "payments-api", "cursor": cur, "author": "alice"}),
        )
        .await;
    assert_eq!(k, Kind::Input, "{msg}");
    let (k, _) = f
        .err(
            "list_commits",
            json!({"repo": "payments-api", "cursor": cur, "ref": "release/1.0"}),
        )
        .await;
    assert_eq!(k, Kind::Input);
    let forged = base64_url(&format!("commits.v1|{}:0", "0".repeat(24)));
    let (k, _) = f
        .err(
            "list_commits",
            json!({"repo": "payments-api", "cursor": forged}),
        )
        .await;
    assert_eq!(k, Kind::Input);

    // The shallow clone (depth 2): a page that fits is answered without fetching; one that
    // reaches the boundary deepens the clone from its `url:` and says what that cost.
    let s1 = f
        .ok(
            "list_commits",
            json!({"repo": "payments-shallow", "limit": 1}),
        )
        .await;
    assert_eq!(names(&s1, "commits", "hash"), [c[3].clone()]);
    assert!(s1.get("note").is_none(), "{s1}");
    let s = f
        .ok("list_commits", json!({"repo": "payments-shallow"}))
        .await;
    let all: Vec<String> = c.iter().rev().cloned().collect();
    assert_eq!(names(&s, "commits", "hash"), all);
    assert_eq!(s["history_truncated_by_depth"], false);
    assert!(s["note"].as_str().unwrap().starts_with("fetched "), "{s}");
    // Now local: nothing more is fetched, and the first commit resolves.
    let again = f
        .ok(
            "list_commits",
            json!({"repo": "payments-shallow", "ref": c[0]}),
        )
        .await;
    assert_eq!(names(&again, "commits", "hash"), [c[0].clone()]);
    assert!(again.get("note").is_none(), "{again}");

    for (args, kind) in [
        (
            json!({"repo": "payments-api", "since": "yesterday"}),
            Kind::Input,
        ),
        (
            json!({"repo": "payments-api", "until": "2024-13-01"}),
            Kind::Input,
        ),
        (json!({"repo": "payments-api", "path": "../x"}), Kind::Input),
        (
            json!({"repo": "payments-api", "ref": "secret"}),
            Kind::OutOfScope,
        ),
        (
            json!({"repo": "payments-api", "ref": f.secret_head}),
            Kind::NotFound,
        ),
        (json!({"repo": "payments-api", "limit": 1000}), Kind::Input),
    ] {
        let (k, msg) = f.err("list_commits", args.clone()).await;
        assert_eq!(k, kind, "{args}: {msg}");
    }
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn get_commit_shows_details_diffstat_and_capped_patch() {
    let f = build();
    let c = &f.main_commits;
    let v = f
        .ok(
            "get_commit",
            json!({"repo": "payments-api", "commit": c[3]}),
        )
        .await;
    assert_eq!(v["hash"], c[3]);
    assert_eq!(v["message"], "Greet the world; drop old docs\n");
    assert_eq!(v["author"]["name"], "Carol Chen");
    assert_eq!(v["committer"]["email"], "carol@acme.example");
    assert_eq!(v["author"]["date"], "2024-04-05T17:45:00+00:00");
    assert_eq!(v["parents"], json!([c[2]]));
    assert!(v.get("patch").is_none());
    let files = v["files"].as_array().unwrap();
    let file = |p: &str| {
        files
            .iter()
            .find(|x| x["path"] == p)
            .unwrap_or_else(|| panic!("{p} in {v}"))
    };
    assert_eq!(file("src/main.rs")["status"], "modified");
    assert_eq!(file("src/main.rs")["additions"], 2);
    assert_eq!(file("src/main.rs")["deletions"], 1);
    assert_eq!(file("docs/old.md")["status"], "deleted");
    assert_eq!(file("docs/old.md")["deletions"], 1);
    assert_eq!(file("README.markdown")["status"], "renamed");
    assert_eq!(file("README.markdown")["old_path"], "README.md");
    assert_eq!(
        v["totals"],
        json!({"files_changed": 3, "additions": 2, "deletions": 2})
    );

    let p = f
        .ok(
            "get_commit",
            json!({"repo": "payments-api", "commit": &c[3][..7], "patch": true}),
        )
        .await;
    let patch = p["patch"].as_str().unwrap();
    assert!(patch.contains("+    println!(\"world\");\n"), "{patch}");
    assert!(patch.contains("-    println!(\"hi\");\n"));
    assert!(patch.contains("diff --git a/docs/old.md b/docs/old.md"));
    assert!(p.get("patch_truncated").is_none());

    // 150 KB + 120 KB of additions: the patch is capped with a note, the stats are complete.
    let big = f
        .ok(
            "get_commit",
            json!({"repo": "payments-api", "commit": c[1], "patch": true}),
        )
        .await;
    assert_eq!(big["patch_truncated"], true);
    assert!(big["patch"].as_str().unwrap().len() <= 100 * 1024);
    assert!(big["note"].as_str().unwrap().contains("100 KB"));
    let bfiles = big["files"].as_array().unwrap();
    let logo = bfiles
        .iter()
        .find(|x| x["path"] == "assets/logo.png")
        .unwrap();
    assert_eq!(logo["binary"], true);
    assert_eq!(logo["status"], "added");
    assert_eq!(big["totals"]["additions"], 3000 + 2);

    // The root commit: everything added, no parents.
    let root = f
        .ok(
            "get_commit",
            json!({"repo": "payments-api", "commit": c[0]}),
        )
        .await;
    assert_eq!(root["parents"], json!([]));
    assert_eq!(root["totals"]["files_changed"], 4);
    assert_eq!(root["message"], "Initial import\n\nWith a body line.\n");

    // A branch name names its head.
    let rel = f
        .ok(
            "get_commit",
            json!({"repo": "payments-api", "commit": "release/1.0"}),
        )
        .await;
    assert_eq!(rel["hash"], f.release_head);

    // The shallow boundary's true parent and diffstat, after fetching the parent.
    let s = f
        .ok(
            "get_commit",
            json!({"repo": "payments-shallow", "commit": c[2]}),
        )
        .await;
    assert_eq!(s["parents"], json!([c[1]]), "{s}");
    assert_eq!(s["totals"]["files_changed"], 5, "{s}");
    assert!(s["note"].as_str().unwrap().starts_with("fetched "), "{s}");

    for (args, kind) in [
        (
            json!({"repo": "payments-api", "commit": f.secret_head}),
            Kind::NotFound,
        ),
        (
            json!({"repo": "payments-api", "commit": "0000000000000000000000000000000000000000"}),
            Kind::NotFound,
        ),
        (
            json!({"repo": "payments-api", "commit": "secret"}),
            Kind::OutOfScope,
        ),
        (json!({"repo": "payments-api"}), Kind::Input),
        (
            json!({"repo": "payments-api", "commit": c[3], "patch": "yes"}),
            Kind::Input,
        ),
    ] {
        let (k, msg) = f.err("get_commit", args.clone()).await;
        assert_eq!(k, kind, "{args}: {msg}");
        assert!(!msg.contains(CANARY));
    }
}

#[test]
fn every_checkout_tool_has_documented_schemas() {
    let cat = catalog();
    for name in [
        "list_branches",
        "browse",
        "read_file",
        "list_commits",
        "get_commit",
    ] {
        let t = cat
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} listed"));
        assert!(t.default);
        assert!(t.description.len() > 40);
        let props = t.input_schema["properties"].as_object().unwrap();
        assert!(props.contains_key("repo"), "{name}");
        for (field, schema) in props {
            assert!(
                schema.get("description").is_some(),
                "{name}.{field} has no description"
            );
        }
        assert_eq!(t.input_schema["additionalProperties"], false, "{name}");
        assert_eq!(t.output_schema["type"], "object", "{name}");
    }
}

/// get_commit's file list agrees with `git diff-tree -r -M` on the changes a pruned tree walk
/// could miss: a mode change alone, a file turned into a directory, a deep change beside
/// unchanged sibling trees, a rename across directories, names with glob characters, and a
/// commit that changes nothing.
#[tokio::test]
async fn get_commit_lists_the_same_changes_as_git() {
    use crate::support::git::git;
    use agentenv::secrets::ResolvedSecrets;
    use agentenv::spec::LoadedEnv;
    use agentenv::tools::Context;
    use std::sync::Arc;

    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("work/edge");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    let put = |rel: &str, text: &str| {
        let p = repo.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let commit = |msg: &str| {
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "--allow-empty", "-m", msg]);
        git(&repo, &["rev-parse", "HEAD"])
    };
    for d in ["a", "b", "c"] {
        for i in 0..3 {
            put(&format!("{d}/deep/er/f{i}.txt"), &format!("{d} {i}\n"));
        }
    }
    put("t", "a file first\n");
    put("run.sh", "echo hi\n");
    put("w[1]*.txt", "glob name\n");
    put(
        "moved.txt",
        "to be renamed, long enough to be found as a rename\n",
    );
    commit("base");
    put("b/deep/er/f1.txt", "b 1 changed\n");
    std::fs::remove_file(repo.join("t")).unwrap();
    put("t/inner.txt", "now a directory\n");
    std::fs::set_permissions(
        repo.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    put("w[1]*.txt", "glob name, changed\n");
    git(&repo, &["mv", "moved.txt", "c/moved.txt"]);
    let changes = commit("many kinds of change");
    let empty = commit("nothing");

    let spec = tmp.path().join("env.yaml");
    std::fs::write(
        &spec,
        "version: 1\nname: edge\nrepos:\n  - url: origin/edge\n    path: edge\n",
    )
    .unwrap();
    let env = LoadedEnv::load(&spec).unwrap();
    let ctx =
        Arc::new(Context::open(env, &tmp.path().join("work"), ResolvedSecrets::empty()).unwrap());
    for id in [&changes, &empty] {
        let v = ctx
            .call("get_commit", json!({"repo": "edge", "commit": id}))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let mut ours: Vec<String> = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let status = match f["status"].as_str().unwrap() {
                    "added" => "A",
                    "deleted" => "D",
                    "renamed" => "R",
                    "type_changed" => "T",
                    _ => "M",
                };
                format!("{status} {}", f["path"].as_str().unwrap())
            })
            .collect();
        ours.sort();
        let listed = git(
            &repo,
            &[
                "diff-tree",
                "-r",
                "-M",
                "--name-status",
                "--no-commit-id",
                id,
            ],
        );
        let mut theirs: Vec<String> = listed
            .lines()
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                format!("{} {}", &cols[0][..1], cols[cols.len() - 1])
            })
            .collect();
        theirs.sort();
        assert_eq!(ours, theirs, "{id}: {v}");
        assert_eq!(v["totals"]["files_changed"], theirs.len());
    }
}
