//! One view of a repository: `search_code`, `read_file` and `browse` all answer from the
//! checked-out commit's files by default, whatever setup steps or an agent did on disk;
//! `search_code` with `working_tree: true` is the explicit way to the files on disk. The
//! committed-tree search reads unchanged files from disk (git's index vouches for them), so
//! it is tested against `git grep` on a working tree that differs from the commit in every way
//! the index check must catch.

use std::process::Command;
use std::sync::Arc;

use agentenv::tools::{Context, Error, Kind};
use serde_json::{Value, json};

use crate::support::git::{commit_all, git, write};
use crate::support::workspace::{Fixture, small_app};

fn call(ctx: &Arc<Context>, tool: &str, args: Value) -> Result<Value, Error> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(ctx.call(tool, args))
}

fn ok(ctx: &Arc<Context>, tool: &str, args: Value) -> Value {
    call(ctx, tool, args.clone()).unwrap_or_else(|e| panic!("{tool} {args} failed: {e}"))
}

/// `path:line` of every match of a search answer, sorted.
fn hits(result: &Value) -> Vec<String> {
    let mut v: Vec<String> = crate::support::search_matches(result)
        .into_iter()
        .map(|(path, line, _)| format!("{path}:{line}"))
        .collect();
    v.sort();
    v
}

/// `git grep`'s `path:line` for a query on the checked-out commit, sorted.
fn git_grep(dir: &std::path::Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["grep", "-n", "-I", "--no-color"])
        .args(args)
        .arg("HEAD")
        .output()
        .unwrap();
    // Exit 1 is "no match".
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "git grep {args:?}: {out:?}"
    );
    let mut v: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let rest = l.strip_prefix("HEAD:").unwrap();
            let mut parts = rest.splitn(3, ':');
            format!("{}:{}", parts.next().unwrap(), parts.next().unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn search_read_file_and_browse_agree_on_the_committed_tree_after_a_setup_step_wrote_files() {
    let fx = small_app();
    let dir = fx.workdir.join("app");
    // What a setup step (or an agent) leaves behind: an untracked file, a tracked file
    // changed, a tracked file removed.
    write(&dir.join("scratch.txt"), "needle from a setup step\n");
    write(&dir.join("src/lib.rs"), "pub fn changed() {} // needle\n");
    std::fs::remove_file(dir.join("README.md")).unwrap();
    let ctx = fx.context();

    let search = ok(&ctx, "search_code", json!({"query": "needle"}));
    assert_eq!(search["total_matches"], 0, "{search}");
    let read = call(
        &ctx,
        "read_file",
        json!({"repo": "app", "path": "scratch.txt"}),
    );
    assert_eq!(read.unwrap_err().kind, Kind::NotFound);
    let listing = ok(&ctx, "browse", json!({"repo": "app"})).to_string();
    assert!(!listing.contains("scratch.txt"), "{listing}");
    assert!(listing.contains("README.md"), "{listing}");

    // The committed content of the changed and the removed file, as read_file shows it.
    let committed = ok(
        &ctx,
        "search_code",
        json!({"query": "A_DOT_C", "case_sensitive": true}),
    );
    assert_eq!(hits(&committed), ["src/lib.rs:3"]);
    let lib = ok(
        &ctx,
        "read_file",
        json!({"repo": "app", "path": "src/lib.rs"}),
    )
    .to_string();
    assert!(lib.contains("A_DOT_C") && !lib.contains("changed"), "{lib}");
    let readme = ok(&ctx, "search_code", json!({"query": "docs"}));
    assert_eq!(hits(&readme), ["README.md:2"]);

    // The files on disk, when asked for.
    let disk = ok(
        &ctx,
        "search_code",
        json!({"query": "needle", "working_tree": true}),
    );
    assert_eq!(hits(&disk), ["scratch.txt:1", "src/lib.rs:1"]);
    assert_eq!(disk["searched"][0]["source"], "working_tree");
    let both = call(
        &ctx,
        "search_code",
        json!({"query": "x", "working_tree": true, "ref": "main"}),
    );
    assert_eq!(both.unwrap_err().kind, Kind::Input);
}

#[test]
fn a_same_size_edit_with_its_modification_time_put_back_is_still_not_the_commit() {
    let fx = small_app();
    let dir = fx.workdir.join("app");
    let path = dir.join("src/main.rs");
    let before = std::fs::metadata(&path).unwrap();
    let original = std::fs::read(&path).unwrap();
    // Same length, other text, and the recorded modification time restored: only the change
    // time (and the content) tell.
    let edited = String::from_utf8(original.clone())
        .unwrap()
        .replace("TODO: wire the server", "XYZZY edited on disk!");
    assert_eq!(edited.len(), original.len());
    std::fs::write(&path, edited).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    let ctx = fx.context();
    let search = ok(&ctx, "search_code", json!({"query": "XYZZY"}));
    assert_eq!(search["total_matches"], 0, "{search}");
    let original = ok(&ctx, "search_code", json!({"query": "wire the server"}));
    assert_eq!(hits(&original), ["src/main.rs:2"]);
}

/// A repository with nested directories, a binary file, a symlink and many same-named files,
/// whose working tree then differs from its commit: the committed-tree search equals `git grep
/// HEAD` for literal and regex queries, and the working-tree search still sees the disk.
#[test]
fn the_committed_tree_search_equals_git_grep_on_head() {
    let fx = Fixture::new();
    let mut files: Vec<(String, String)> = Vec::new();
    for d in 0..6 {
        for f in 0..8 {
            files.push((
                format!("pkg{d}/sub{}/file{f}.rs", f % 3),
                format!(
                    "// file {d}/{f}\nfn handler_{f}() {{}}\nlet needle = \"Needle {d}\";\nfn other_{d}_mut() {{}}\n"
                ),
            ));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let origin = fx.repo("mono", &refs);
    write(&origin.join("bin/blob.dat"), b"needle\0binary\n");
    std::os::unix::fs::symlink("pkg0/sub0/file0.rs", origin.join("link.rs")).unwrap();
    commit_all(&origin, "binary and symlink");
    fx.clone("mono");
    fx.spec(&["mono"], "");
    let dir = fx.workdir.join("mono");
    // The working tree drifts: changed, removed, untracked, and a file replaced by a symlink.
    write(
        &dir.join("pkg1/sub1/file1.rs"),
        "fn replaced() { needle }\n",
    );
    std::fs::remove_file(dir.join("pkg2/sub2/file2.rs")).unwrap();
    write(&dir.join("pkg3/new.rs"), "needle untracked\n");
    std::fs::remove_file(dir.join("pkg4/sub0/file3.rs")).unwrap();
    std::os::unix::fs::symlink("../../pkg1/sub1/file1.rs", dir.join("pkg4/sub0/file3.rs")).unwrap();
    let ctx = fx.context();

    let cases: [(Value, &[&str]); 4] = [
        (
            json!({"query": "needle", "case_sensitive": true}),
            &["-F", "-e", "needle"],
        ),
        (
            json!({"query": "Needle 3", "case_sensitive": true}),
            &["-F", "-e", "Needle 3"],
        ),
        (
            json!({"query": "fn [a-z]+_[0-9]_mut\\(", "regex": true, "case_sensitive": true}),
            &["-E", "-e", "fn [a-z]+_[0-9]_mut\\("],
        ),
        (
            json!({"query": "needle", "case_sensitive": false}),
            &["-F", "-i", "-e", "needle"],
        ),
    ];
    for (mut args, grep) in cases {
        args["limit"] = json!(500);
        let ours = ok(&ctx, "search_code", args.clone());
        let theirs = git_grep(&dir, grep);
        assert!(!theirs.is_empty(), "{grep:?} finds nothing: a vacuous case");
        assert_eq!(hits(&ours), theirs, "{args}");
        assert_eq!(ours["total_matches"], theirs.len(), "{args}");
    }
    let disk = ok(
        &ctx,
        "search_code",
        json!({"query": "needle untracked", "working_tree": true}),
    );
    assert_eq!(hits(&disk), ["pkg3/new.rs:1"]);
    git(&dir, &["status", "--short"]);
}
