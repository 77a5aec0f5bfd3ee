//! Scope and confinement: traversal and scope-bypass attempts against the checkout tools, each
//! refused with the right error kind and without leaking content from outside the scope.
//!
//! The fixture's clone holds the out-of-scope branch `secret` (as a remote-tracking ref, so
//! its objects are in the clone), a tag on it, a symlink pointing out of the repository, and
//! an out-of-scope repository that is cloned as well: each carries a canary that must never
//! appear in any answer or error.

use std::path::Path;

use agentenv::tools::{Kind, paths};
use serde_json::{Value, json};

use crate::support::checkout::{CANARY, OUTSIDE_CANARY, build};
use crate::support::git::git;
use crate::support::{agentenv_cmd, canary};

use Kind::{Input as Invalid, NotFound, OutOfScope};

#[track_caller]
fn assert_no_leak(what: &str, text: &str) {
    canary::assert_absent(what, text, &[CANARY, OUTSIDE_CANARY, "root:x:0:0"]);
}

#[tokio::test]
async fn traversal_and_scope_bypass_attempts_are_refused() {
    let f = build();
    let secret = f.secret_head.clone();
    let secret_commit_tree = git(
        &f.workdir.join("payments-api"),
        &["rev-parse", &format!("{secret}^{{tree}}")],
    );
    let secret_blob = git(
        &f.workdir.join("payments-api"),
        &["rev-parse", &format!("{secret}:secret.txt")],
    );
    let secret_upper = secret.to_uppercase();

    let read = |path: &str| json!({"repo": "payments-api", "path": path});
    let read_at = |r: &str| json!({"repo": "payments-api", "path": "src/main.rs", "ref": r});
    let repo = |name: &str| json!({"repo": name});

    let attempts: Vec<(&str, Value, Kind)> = vec![
        // Path traversal, plain and encoded.
        ("read_file", read("../outside.txt"), Invalid),
        ("read_file", read("../../outside.txt"), Invalid),
        ("read_file", read("src/../../outside.txt"), Invalid),
        ("read_file", read("a/b/c/../../../../outside.txt"), Invalid),
        ("read_file", read("/etc/passwd"), Invalid),
        ("read_file", read("//etc/passwd"), Invalid),
        ("read_file", read("~/.ssh/id_rsa"), Invalid),
        ("read_file", read("C:/Windows/win.ini"), Invalid),
        ("read_file", read("%2e%2e/outside.txt"), Invalid),
        ("read_file", read("%2E%2E%2Foutside.txt"), Invalid),
        ("read_file", read("..%2foutside.txt"), Invalid),
        ("read_file", read("%2fetc%2fpasswd"), Invalid),
        ("read_file", read("..%5coutside.txt"), Invalid),
        ("read_file", read("src/main.rs%00.txt"), Invalid),
        // Decoded once, `%252e%252e` is the literal name `%2e%2e`: looked up as such, absent.
        ("read_file", read("%252e%252e/outside.txt"), NotFound),
        // Unicode look-alikes of dots and slashes.
        ("read_file", read("\u{FF0E}\u{FF0E}/outside.txt"), Invalid),
        ("read_file", read("\u{2025}/outside.txt"), Invalid),
        ("read_file", read("..\u{2215}outside.txt"), Invalid),
        ("read_file", read("..\u{FF0F}outside.txt"), Invalid),
        ("read_file", read("..\u{2044}outside.txt"), Invalid),
        ("read_file", read("\u{FE52}\u{FE52}/outside.txt"), Invalid),
        // Backslashes, NUL, control characters.
        ("read_file", read("..\\outside.txt"), Invalid),
        ("read_file", read("src\\..\\..\\outside.txt"), Invalid),
        (
            "read_file",
            read("src/main.rs\0/../../outside.txt"),
            Invalid,
        ),
        ("read_file", read("src/\nmain.rs"), Invalid),
        // git internals, in every spelling.
        ("read_file", read(".git/config"), Invalid),
        ("read_file", read(".GIT/config"), Invalid),
        ("read_file", read(".Git/HEAD"), Invalid),
        ("read_file", read("./.git/config"), Invalid),
        ("read_file", read("src/.git/config"), Invalid),
        ("read_file", read(".git./config"), Invalid),
        ("read_file", read("GIT~1/config"), Invalid),
        ("read_file", read("%2egit/config"), Invalid),
        (
            "browse",
            json!({"repo": "payments-api", "path": ".git"}),
            Invalid,
        ),
        (
            "browse",
            json!({"repo": "payments-api", "path": ".git/refs"}),
            Invalid,
        ),
        // Symlinks: a symlinked directory is not traversed, a working-copy-only link is absent.
        ("read_file", read("srclink/main.rs"), NotFound),
        ("read_file", read("link-outside/x"), NotFound),
        ("read_file", read("wc-escape"), NotFound),
        (
            "browse",
            json!({"repo": "payments-api", "path": "srclink"}),
            Invalid,
        ),
        (
            "browse",
            json!({"repo": "payments-api", "path": "../"}),
            Invalid,
        ),
        (
            "list_commits",
            json!({"repo": "payments-api", "path": "../../etc"}),
            Invalid,
        ),
        // Only on the out-of-scope branch.
        ("read_file", read("secret.txt"), NotFound),
        // Out-of-scope branches, in every spelling.
        ("read_file", read_at("secret"), OutOfScope),
        ("read_file", read_at("refs/heads/secret"), OutOfScope),
        (
            "read_file",
            read_at("refs/remotes/origin/secret"),
            OutOfScope,
        ),
        ("read_file", read_at("origin/secret"), OutOfScope),
        ("read_file", read_at("Main"), OutOfScope),
        ("read_file", read_at("FETCH_HEAD"), OutOfScope),
        ("read_file", read_at("ORIG_HEAD"), OutOfScope),
        ("read_file", read_at("refs/remotes/origin/HEAD"), OutOfScope),
        (
            "browse",
            json!({"repo": "payments-api", "ref": "refs/heads/secret"}),
            OutOfScope,
        ),
        (
            "list_commits",
            json!({"repo": "payments-api", "ref": "secret"}),
            OutOfScope,
        ),
        (
            "get_commit",
            json!({"repo": "payments-api", "commit": "secret"}),
            OutOfScope,
        ),
        // Tags and other refs are not branches, even when the commit is reachable.
        ("read_file", read_at("refs/tags/v-secret"), OutOfScope),
        ("read_file", read_at("v-secret"), OutOfScope),
        ("read_file", read_at("refs/tags/v-main"), OutOfScope),
        ("read_file", read_at("refs/stash"), OutOfScope),
        ("read_file", read_at("refs/notes/commits"), OutOfScope),
        // Revision syntax.
        // Ancestry is accepted on an in-scope branch (see `ancestry_of_an_in_scope_branch_is_in_scope`),
        // never on an out-of-scope one, and no other revision syntax follows a name.
        ("read_file", read_at("secret~1"), OutOfScope),
        ("read_file", read_at("secret^"), OutOfScope),
        ("read_file", read_at(&format!("{secret}~0")), NotFound),
        (
            "read_file",
            read_at(&format!("{}^", &secret[..10])),
            NotFound,
        ),
        ("read_file", read_at("main^2"), NotFound),
        ("read_file", read_at("main~99"), NotFound),
        ("read_file", read_at("main^{tree}"), Invalid),
        ("read_file", read_at("main^{/Secret}"), Invalid),
        ("read_file", read_at("main^!"), Invalid),
        ("read_file", read_at("main~1:src/main.rs"), Invalid),
        ("read_file", read_at("^main"), Invalid),
        ("read_file", read_at("~1"), Invalid),
        ("read_file", read_at("main@{1}~1"), Invalid),
        ("read_file", read_at("main@{1}"), Invalid),
        ("read_file", read_at("@{-1}"), Invalid),
        ("read_file", read_at("@{u}"), Invalid),
        ("read_file", read_at("@"), Invalid),
        ("read_file", read_at("main..secret"), Invalid),
        ("read_file", read_at("main...secret"), Invalid),
        ("read_file", read_at("release/../secret"), Invalid),
        ("read_file", read_at("secret:secret.txt"), Invalid),
        ("read_file", read_at(":/Secret"), Invalid),
        ("read_file", read_at("-main"), Invalid),
        ("read_file", read_at("--output=/tmp/x"), Invalid),
        ("read_file", read_at("main "), Invalid),
        ("read_file", read_at(" main"), Invalid),
        ("read_file", read_at("main\nsecret"), Invalid),
        ("read_file", read_at("release/*"), Invalid),
        ("read_file", read_at(""), Invalid),
        // Commit ids not reachable from an in-scope branch: the same answer as a missing id.
        ("read_file", read_at(&secret), NotFound),
        ("read_file", read_at(&secret[..7]), NotFound),
        ("read_file", read_at(&secret_upper), NotFound),
        ("read_file", read_at(&secret_commit_tree), NotFound),
        ("read_file", read_at(&secret_blob), NotFound),
        (
            "read_file",
            read_at("0123456789abcdef0123456789abcdef01234567"),
            NotFound,
        ),
        (
            "get_commit",
            json!({"repo": "payments-api", "commit": secret}),
            NotFound,
        ),
        (
            "get_commit",
            json!({"repo": "payments-api", "commit": &secret[..12]}),
            NotFound,
        ),
        (
            "list_commits",
            json!({"repo": "payments-api", "ref": secret}),
            NotFound,
        ),
        (
            "browse",
            json!({"repo": "payments-api", "ref": secret_commit_tree}),
            NotFound,
        ),
        // Out-of-scope repositories, with case and whitespace variations.
        ("list_branches", repo("internal-secrets"), OutOfScope),
        (
            "read_file",
            json!({"repo": "internal-secrets", "path": "keys.txt"}),
            OutOfScope,
        ),
        ("list_branches", repo("Payments-api"), OutOfScope),
        ("list_branches", repo("PAYMENTS-API"), OutOfScope),
        ("list_branches", repo(" payments-api"), OutOfScope),
        ("list_branches", repo("\u{FF50}ayments-api"), OutOfScope),
        ("list_branches", repo("../internal-secrets"), OutOfScope),
        ("list_branches", repo("acme/internal-secrets"), OutOfScope),
        (
            "list_branches",
            repo("internal-secrets#payments-api"),
            OutOfScope,
        ),
        ("list_branches", repo(""), OutOfScope),
        // Names the scope regex allows but the spec does not have: not found, never a path.
        ("list_branches", repo("payments-api "), NotFound),
        ("list_branches", repo("payments-api\n"), NotFound),
        (
            "list_branches",
            repo("payments-api/../internal-secrets"),
            NotFound,
        ),
        (
            "read_file",
            json!({"repo": "payments-../internal-secrets", "path": "keys.txt"}),
            NotFound,
        ),
    ];
    assert!(attempts.len() >= 50);
    let mut failures = Vec::new();
    for (tool, args, expected) in &attempts {
        match f.ctx.call(tool, args.clone()).await {
            Ok(v) => failures.push(format!("{tool} {args}: NOT refused: {v}")),
            Err(e) => {
                assert_no_leak(&format!("{tool} {args}"), &e.message);
                if e.kind != *expected {
                    failures.push(format!(
                        "{tool} {args}: {:?} instead of {expected:?}: {}",
                        e.kind, e.message
                    ));
                }
                // Refusals of names never reveal whether the out-of-scope thing exists.
                if e.kind == OutOfScope {
                    assert!(
                        !e.message.contains("not found") && !e.message.contains("exist"),
                        "{}",
                        e.message
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} attempts wrong:\n{}",
        failures.len(),
        attempts.len(),
        failures.join("\n")
    );

    // An existing out-of-scope commit and a made-up id get the very same answer.
    let a = f
        .err("read_file", read_at(&secret))
        .await
        .1
        .replace(&secret, "ID");
    let b = f
        .err(
            "read_file",
            read_at("0123456789abcdef0123456789abcdef01234567"),
        )
        .await
        .1
        .replace("0123456789abcdef0123456789abcdef01234567", "ID");
    assert_eq!(a, b);
    // As do an out-of-scope repository that is cloned and one that does not exist at all.
    let a = f
        .err("list_branches", repo("internal-secrets"))
        .await
        .1
        .replace("internal-secrets", "R");
    let b = f
        .err("list_branches", repo("internal-nothing"))
        .await
        .1
        .replace("internal-nothing", "R");
    assert_eq!(a, b);
}

#[tokio::test]
async fn symlinks_are_answered_as_links_and_listings_stay_in_scope() {
    let f = build();
    for path in ["link-outside", "link-abs"] {
        let v = f
            .ok("read_file", json!({"repo": "payments-api", "path": path}))
            .await;
        assert_eq!(v["symlink"], true);
        assert!(v.get("content").is_none());
        assert_no_leak(path, &v.to_string());
    }
    // Every answer about the repository is free of the out-of-scope branch.
    let answers = [
        f.ok(
            "list_branches",
            json!({"repo": "payments-api", "limit": 100}),
        )
        .await,
        f.ok(
            "list_commits",
            json!({"repo": "payments-api", "limit": 100}),
        )
        .await,
        f.ok("browse", json!({"repo": "payments-api"})).await,
        // A forged branches cursor only moves the start within the in-scope list.
        f.ok(
            "list_branches",
            json!({"repo": "payments-api", "cursor": "YnJhbmNoZXMudjF8"}),
        )
        .await,
    ];
    for v in &answers {
        assert_no_leak("listing", &v.to_string());
        assert!(!v.to_string().contains(&f.secret_head), "{v}");
        assert!(!v.to_string().contains("\"secret\""), "{v}");
    }
}

#[test]
fn working_copy_paths_are_confined_after_resolving_symlinks() {
    let f = build();
    let repo = f.ctx.cloned("payments-api").unwrap();
    let inside = paths::working_copy_path(&repo.dir, &repo.name, Path::new("src/main.rs")).unwrap();
    assert!(inside.ends_with("payments-api/src/main.rs"));
    let through_link =
        paths::working_copy_path(&repo.dir, &repo.name, Path::new("srclink/main.rs")).unwrap();
    assert_eq!(through_link, inside);
    for escaping in ["wc-escape", "link-outside", "link-abs"] {
        let e = paths::working_copy_path(&repo.dir, &repo.name, Path::new(escaping)).unwrap_err();
        assert_eq!(e.kind, Invalid, "{escaping}: {}", e.message);
        assert_no_leak(escaping, &e.message);
    }
    let e = paths::working_copy_path(&repo.dir, &repo.name, Path::new("missing")).unwrap_err();
    assert_eq!(e.kind, NotFound);
    // A link to the git directory resolves inside the checkout but is refused all the same.
    std::os::unix::fs::symlink(".git", f.workdir.join("payments-api/gitlink")).unwrap();
    let e =
        paths::working_copy_path(&repo.dir, &repo.name, Path::new("gitlink/config")).unwrap_err();
    assert_eq!(e.kind, Invalid);
}

#[test]
fn clean_path_normalises_what_it_accepts() {
    for (given, want) in [
        ("", ""),
        (".", ""),
        ("src/", "src"),
        ("./src//main.rs", "src/main.rs"),
        ("100%.txt", "100%.txt"),
        ("dir/file.git", "dir/file.git"),
        (".github/workflows", ".github/workflows"),
        ("\u{0440}aths/\u{0430}.txt", "\u{0440}aths/\u{0430}.txt"),
    ] {
        let got = paths::clean_path(given).unwrap_or_else(|e| panic!("{given}: {e}"));
        assert_eq!(paths::tree_path(&got), want, "{given}");
    }
}

/// The same refusals through the command line (`agentenv tool`).
#[test]
fn the_cli_tool_command_refuses_the_same_way() {
    let f = build();
    let run = |args: &[&str]| {
        agentenv_cmd(&["tool"])
            .arg(&f.cli_spec)
            .args(args)
            .arg("--workdir")
            .arg(&f.workdir)
            .output()
            .expect("agentenv runs")
    };
    let ok = run(&[
        "read_file",
        "--arg",
        "repo=payments-api",
        "--arg",
        "path=src/main.rs",
    ]);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("println!"));
    for args in [
        vec![
            "read_file",
            "--arg",
            "repo=payments-api",
            "--arg",
            "path=../outside.txt",
        ],
        vec![
            "read_file",
            "--arg",
            "repo=payments-api",
            "--arg",
            "path=src/main.rs",
            "--arg",
            "ref=secret",
        ],
        vec![
            "read_file",
            "--arg",
            "repo=payments-api",
            "--arg",
            "path=src/main.rs",
            "--arg",
            "ref=main@{1}",
        ],
        vec![
            "read_file",
            "--arg",
            "repo=internal-secrets",
            "--arg",
            "path=keys.txt",
        ],
        vec![
            "read_file",
            "--arg",
            "repo=payments-api",
            "--arg",
            "path=.git/config",
        ],
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_no_leak(&format!("{args:?}"), &String::from_utf8_lossy(&out.stdout));
        assert_no_leak(&format!("{args:?}"), &String::from_utf8_lossy(&out.stderr));
    }
}

/// `scope.repositories` may name a repository by `owner/slug` only: the tools accept what spec
/// validation accepts (the full name taken from the URL here), and refuse the rest.
#[tokio::test]
async fn scope_by_owner_and_slug_is_honoured_as_validation_honours_it() {
    use agentenv::secrets::ResolvedSecrets;
    use agentenv::spec::LoadedEnv;
    use agentenv::tools::Context;
    use std::sync::Arc;

    let f = build();
    let spec = f.tmp.path().join("owner-scope.yaml");
    std::fs::write(
        &spec,
        "version: 1\nname: owner-scope\nscope:\n  repositories: '^origin/payments-'\nrepos:\n  - url: origin/payments-api\n    branch: main\n",
    )
    .unwrap();
    // The bare name `payments-api` does not match the regex; `origin/payments-api` does.
    let env = LoadedEnv::load(&spec).expect("validation accepts the owner/slug scope");
    let read = |env: LoadedEnv| {
        let ctx = Arc::new(Context::open(env, &f.workdir, ResolvedSecrets::empty()).unwrap());
        let args = json!({"repo": "payments-api", "path": "src/main.rs"});
        async move { ctx.call("read_file", args).await }
    };
    let file = read(env).await.expect("in scope by its full name");
    assert!(file["content"].as_str().unwrap().contains("println!"));

    let narrowed = LoadedEnv::load(&spec)
        .unwrap()
        .with_scope(Some("^other/payments-"), None)
        .unwrap();
    let e = read(narrowed).await.unwrap_err();
    assert_eq!(e.kind, OutOfScope, "{}", e.message);
}

/// `~N`/`^N` on an in-scope branch, `HEAD` or a reachable commit id names an ancestor, which is
/// in scope; the answer names the commit git names.
#[tokio::test]
async fn ancestry_of_an_in_scope_branch_is_in_scope() {
    let f = build();
    let c = &f.main_commits;
    let dir = f.workdir.join("payments-api");
    for (r, want) in [
        ("HEAD~1", &c[2]),
        ("main~1", &c[2]),
        ("main^", &c[2]),
        ("main~2^", &c[0]),
        ("main^0", &c[3]),
        ("refs/heads/main~3", &c[0]),
        ("release/1.0~1", &c[1]),
    ] {
        let v = f
            .ok("browse", json!({"repo": "payments-api", "ref": r}))
            .await;
        assert_eq!(&v["commit"], want.as_str(), "{r}: {v}");
        // In the clone, release/1.0 is a remote-tracking branch.
        let theirs = r.replace("release/", "origin/release/");
        assert_eq!(
            git(&dir, &["rev-parse", &theirs]),
            **want,
            "git agrees on {r}"
        );
    }
    let short = format!("{}~1", &c[3][..7]);
    let v = f
        .ok(
            "get_commit",
            json!({"repo": "payments-api", "commit": short}),
        )
        .await;
    assert_eq!(v["hash"], c[2].as_str());
}
