//! Every checkout tool against the git CLI, field by field, on a repository with the shapes
//! that broke on real repositories: a merge that discards a side branch's change to a path,
//! commits with equal timestamps (and committer dates apart from author dates), renames just
//! above and below git's 50 % similarity, binary and mode changes, an in-scope side branch
//! with commits no other branch has, and an out-of-scope branch.
//!
//! The repository is served by the emulator (git over `git http-backend`, a Cloud API token)
//! and provisioned with the default spec: depth 1, the default branch only. Every answer that
//! needs more (other branches, older history, the boundary commit's parent) must fetch it, and
//! the reference is the git CLI on the full repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use agentenv::secrets::ResolvedSecrets;
use agentenv::spec::LoadedEnv;
use agentenv::tools::{Context, Kind};
use bitbucket_emulator::{Config, Emulator, Token};
use serde_json::{Value, json};

use crate::support::{agentenv_cmd, assert_fits_output_schema, canary};

const TOKEN: &str = "ATATT-CANARY-conformance-token-71c4";
const SECRET_CONTENT: &str = "CANARY-conformance-out-of-scope-5d20";
const EMAIL: &str = "bot@acme.example";
const SCOPE: &str = "^(main|feature/.*)$";

/// git with no user or system configuration; `env` adds identities and dates.
fn git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new("git")
        .args(["-c", "init.defaultBranch=main", "-c", "core.quotePath=true"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .envs(env.iter().copied())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git(dir: &Path, args: &[&str]) -> String {
    git_env(dir, args, &[]).trim_end().to_string()
}

/// git writes a UTC offset as `Z` in strict ISO dates; the tools write `+00:00` (the same
/// instant and offset in RFC 3339).
fn iso(date: &str) -> String {
    match date.strip_suffix('Z') {
        Some(d) => format!("{d}+00:00"),
        None => date.to_string(),
    }
}

/// The builder of the upstream repository: commits with chosen people and dates.
struct Builder {
    dir: PathBuf,
    /// Seconds since the epoch of the next commit.
    clock: i64,
}

const BASE: i64 = 1_709_251_200; // 2024-03-01T00:00:00Z

const PEOPLE: &[(&str, &str)] = &[
    ("Alice Anders", "alice@acme.example"),
    ("Bob Builder", "bob@builders.example"),
    ("Élodie Durand", "elodie@acme.example"),
];

impl Builder {
    fn put(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.dir, args)
    }

    /// Commit everything; `same_second` keeps the clock (a commit with the date of the last);
    /// the author date runs an hour behind the committer date for odd `who`.
    fn commit(&mut self, msg: &str, who: usize, same_second: bool) -> String {
        if !same_second {
            self.clock += 60;
        }
        let (name, email) = PEOPLE[who % PEOPLE.len()];
        let committed = format!("@{} +0000", self.clock);
        let authored = format!("@{} +0200", self.clock - 3600 * (who as i64 % 2));
        self.git(&["add", "-A"]);
        git_env(
            &self.dir,
            &["commit", "-q", "--allow-empty", "-m", msg],
            &[
                ("GIT_AUTHOR_NAME", name),
                ("GIT_AUTHOR_EMAIL", email),
                ("GIT_AUTHOR_DATE", &authored),
                ("GIT_COMMITTER_NAME", "Committer"),
                ("GIT_COMMITTER_EMAIL", "ci@acme.example"),
                ("GIT_COMMITTER_DATE", &committed),
            ],
        );
        self.git(&["rev-parse", "HEAD"])
    }

    fn merge(&mut self, branch: &str, msg: &str, keep_ours: &[&str]) -> String {
        self.clock += 60;
        let committed = format!("@{} +0000", self.clock);
        let env = [
            ("GIT_AUTHOR_NAME", PEOPLE[0].0),
            ("GIT_AUTHOR_EMAIL", PEOPLE[0].1),
            ("GIT_AUTHOR_DATE", committed.as_str()),
            ("GIT_COMMITTER_NAME", "Committer"),
            ("GIT_COMMITTER_EMAIL", "ci@acme.example"),
            ("GIT_COMMITTER_DATE", committed.as_str()),
        ];
        git_env(
            &self.dir,
            &["merge", "-q", "--no-ff", "--no-commit", branch],
            &env,
        );
        for path in keep_ours {
            // The merge keeps the first parent's version: the side branch's change is dropped.
            self.git(&["checkout", "HEAD", "--", path]);
        }
        git_env(&self.dir, &["commit", "-q", "-m", msg], &env);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// Twenty lines of forty bytes; `changed` of them rewritten.
fn lines(tag: &str, changed: usize) -> String {
    (0..20)
        .map(|i| {
            if i < changed {
                format!("{tag} rewritten line {i:02} ..................\n")
            } else {
                format!("original line {i:02} of the renamed file ....\n")
            }
        })
        .collect()
}

struct Upstream {
    dir: PathBuf,
    /// Commits only `feature/open` reaches (not its tip).
    side_only: Vec<String>,
    /// The commit only the out-of-scope branch reaches.
    secret_only: String,
}

fn build_upstream(dir: &Path) -> Upstream {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    let mut b = Builder {
        dir: dir.to_path_buf(),
        clock: BASE,
    };
    b.put("src/lib.rs", "pub fn one() -> u32 {\n    1\n}\n");
    b.put("path/keep.txt", "kept as main has it\n");
    b.put("docs/guide.md", "# Guide\n\nFirst words.\n");
    b.put("bin/logo.bin", b"\x89PNG\0\0\x01binary");
    b.put("tools/run.sh", "#!/bin/sh\necho run\n");
    b.put("r/above.txt", lines("x", 0));
    b.put("r/below.txt", lines("x", 0));
    b.commit("Initial import", 0, false);
    for i in 0..6 {
        b.put(
            "src/lib.rs",
            format!("pub fn one() -> u32 {{\n    {i}\n}}\n"),
        );
        b.commit(&format!("Tune one() to {i}"), i, false);
    }

    // A side branch whose change to path/keep.txt the merge discards.
    b.git(&["checkout", "-q", "-b", "feature/merged"]);
    b.put("path/keep.txt", "the side branch's version\n");
    b.put("feature.txt", "merged feature\n");
    b.commit("Side: change keep.txt and add feature.txt", 1, false);
    b.put("side2.txt", "more side words\n");
    // Same second as the one before, on the side branch.
    b.commit("Side: more words", 2, true);
    b.git(&["checkout", "-q", "main"]);
    b.put("docs/guide.md", "# Guide\n\nMain words first.\n");
    // And the same second again on main.
    b.commit("Main: reword the guide", 0, true);
    b.merge(
        "feature/merged",
        "Merge feature/merged, keeping main's keep.txt",
        &["path/keep.txt"],
    );

    // Renames just above and below 50 % similarity, a binary change, a mode change.
    std::fs::create_dir_all(dir.join("r2")).unwrap();
    b.git(&["mv", "r/above.txt", "r2/above.txt"]);
    b.git(&["mv", "r/below.txt", "r2/below.txt"]);
    b.put("r2/above.txt", lines("a", 8));
    b.put("r2/below.txt", lines("b", 11));
    b.commit("Move r/ to r2/ and rewrite", 1, false);
    b.put("bin/logo.bin", b"\x89PNG\0\0\x02binary, changed");
    b.commit("New logo", 2, false);
    std::fs::set_permissions(
        dir.join("tools/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b.commit("Make run.sh executable", 0, false);

    // An in-scope branch nobody merged, forked a few commits back.
    let fork = b.git(&["rev-parse", "HEAD~2"]);
    b.git(&["checkout", "-q", "-b", "feature/open", &fork]);
    let mut side_only = Vec::new();
    for i in 0..3 {
        b.put(
            "open.txt",
            format!("open work {i}\nneedle-on-the-side {i}\n"),
        );
        side_only.push(b.commit(&format!("Open work {i}"), i, i == 1));
    }
    side_only.pop(); // the tip is the tip, not only reachable
    // An out-of-scope branch with content that must never arrive.
    b.git(&["checkout", "-q", "-b", "secret/x", "main"]);
    b.put("secret.txt", format!("{SECRET_CONTENT}\n"));
    let secret_only = b.commit("Secret work", 0, false);
    b.git(&["checkout", "-q", "main"]);

    // More history on main, so that pages and deepening take several rounds.
    for i in 0..24 {
        b.put(
            "src/lib.rs",
            format!("pub fn one() -> u32 {{\n    {}\n}}\n", 100 + i),
        );
        if i % 5 == 0 {
            b.put(
                "docs/guide.md",
                format!("# Guide\n\nMain words, take {i}.\n"),
            );
        }
        b.commit(&format!("Main work {i}"), i, i % 7 == 3);
    }
    Upstream {
        dir: dir.to_path_buf(),
        side_only,
        secret_only,
    }
}

struct World {
    _tmp: tempfile::TempDir,
    emu: Emulator,
    up: Upstream,
    spec: PathBuf,
    base: PathBuf,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let up = build_upstream(&base.join("upstream"));
        let config = Config::default()
            .token(Token::cloud_api(
                EMAIL,
                "bot",
                TOKEN,
                &["read:repository:bitbucket"],
            ))
            .cloud_repo("acme", "conform", &up.dir);
        let emu = Emulator::start(config);
        let spec = base.join("env.yaml");
        std::fs::write(
            &spec,
            format!(
                "version: 1\nname: conform\nproviders:\n  bb:\n    kind: cloud\n    workspace: acme\n    api_url: {}\n    git_url: {}\n    auth: {{ type: api-token, email: {EMAIL}, token: BB_TOKEN }}\nsecrets:\n  from_env: [BB_TOKEN]\nscope:\n  branches: '{SCOPE}'\nrepos:\n  - provider: bb\n    slug: conform\n",
                emu.cloud_api_url(),
                emu.git_url()
            ),
        )
        .unwrap();
        World {
            _tmp: tmp,
            emu,
            up,
            spec,
            base,
        }
    }

    /// `agentenv provision` of the default spec into `work-NAME`.
    fn provision(&self, name: &str) -> PathBuf {
        let work = self.base.join(format!("work-{name}"));
        let out = agentenv_cmd(&[
            "provision",
            self.spec.to_str().unwrap(),
            "--workdir",
            work.to_str().unwrap(),
        ])
        .env("BB_TOKEN", TOKEN)
        .env("AGENTENV_PERSONAL_FILE", self.base.join("none.yaml"))
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "provision: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        work
    }

    fn context(&self, work: &Path) -> Arc<Context> {
        let env = LoadedEnv::load(&self.spec).unwrap();
        let secrets =
            ResolvedSecrets::from_values([("BB_TOKEN".to_string(), TOKEN.to_string())].into());
        Arc::new(Context::open(env, work, secrets).unwrap())
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.up.dir, args)
    }
}

async fn ok(ctx: &Arc<Context>, seen: &mut String, tool: &str, args: Value) -> Value {
    match ctx.call(tool, args.clone()).await {
        Ok(v) => {
            assert_fits_output_schema(tool, &v);
            seen.push_str(&v.to_string());
            v
        }
        Err(e) => panic!("{tool} {args} failed: {e}"),
    }
}

async fn err(ctx: &Arc<Context>, seen: &mut String, tool: &str, args: Value) -> Kind {
    match ctx.call(tool, args.clone()).await {
        Ok(v) => panic!("{tool} {args} should fail, got {v}"),
        Err(e) => {
            seen.push_str(&format!("{e}"));
            e.kind
        }
    }
}

/// `git log` as the tool's fields: hash, summary, author, dates, parents.
fn git_log(w: &World, rev: &str, extra: &[&str], paths: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "log",
        "--no-mailmap",
        "--format=%H%x00%s%x00%an%x00%ae%x00%aI%x00%cI%x00%P",
    ];
    args.extend_from_slice(extra);
    args.push(rev);
    let specs: Vec<String> = paths.iter().map(|p| format!(":(literal){p}")).collect();
    if !specs.is_empty() {
        args.push("--");
        args.extend(specs.iter().map(String::as_str));
    }
    w.git(&args)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\0').collect();
            json!({
                "hash": f[0],
                "summary": f[1],
                "author": {"name": f[2], "email": f[3], "date": iso(f[4])},
                "committed": iso(f[5]),
                "parents": f[6].split_whitespace().collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Every page of `list_commits` for `args`, `limit` at a time.
async fn all_pages(ctx: &Arc<Context>, seen: &mut String, args: Value, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut a = args.clone();
        a["limit"] = json!(limit);
        if let Some(c) = &cursor {
            a["cursor"] = json!(c);
        }
        let v = ok(ctx, seen, "list_commits", a).await;
        assert_eq!(v["history_truncated_by_depth"], false, "{v}");
        out.extend(v["commits"].as_array().unwrap().iter().cloned());
        match v.get("next_cursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("more than 100 pages for {args}");
}

/// A commit's changes as `git diff-tree -r -M --raw --numstat -z` lists them against its
/// first parent, in the tool's fields.
fn git_changes(w: &World, commit: &str) -> Vec<Value> {
    let parents = w.git(&["rev-list", "--parents", "-n1", commit]);
    let first = parents.split_whitespace().nth(1).map(str::to_string);
    let range: Vec<&str> = match &first {
        Some(p) => vec![p.as_str(), commit],
        None => vec!["--root", commit],
    };
    let run = |fmt: &str| {
        let mut a = vec!["diff-tree", "-r", "-M", "--no-commit-id", "-z", fmt];
        a.extend(range.iter().copied());
        git_env(&w.up.dir, &a, &[])
    };
    let raw = run("--raw");
    let mut raw = raw.split('\0').filter(|s| !s.is_empty());
    let mut files = Vec::new();
    while let Some(meta) = raw.next() {
        let status = meta.split_whitespace().last().unwrap();
        let first_path = raw.next().unwrap().to_string();
        let (old, path) = if status.starts_with('R') || status.starts_with('C') {
            (Some(first_path), raw.next().unwrap().to_string())
        } else {
            (None, first_path)
        };
        files.push((status.chars().next().unwrap(), old, path));
    }
    let numstat = run("--numstat");
    let mut num = numstat.split('\0').filter(|s| !s.is_empty());
    let mut counts = Vec::new();
    while let Some(rec) = num.next() {
        let f: Vec<&str> = rec.splitn(3, '\t').collect();
        if f[2].is_empty() {
            num.next();
            num.next();
        }
        counts.push((f[0].to_string(), f[1].to_string()));
    }
    assert_eq!(files.len(), counts.len(), "{commit}");
    files
        .into_iter()
        .zip(counts)
        .map(|((status, old, path), (a, d))| {
            let status = match status {
                'A' => "added",
                'D' => "deleted",
                'R' => "renamed",
                'T' => "type_changed",
                _ => "modified",
            };
            let binary = a == "-";
            let mut v = json!({
                "path": path,
                "status": status,
                "additions": if binary { 0 } else { a.parse::<u64>().unwrap() },
                "deletions": if binary { 0 } else { d.parse::<u64>().unwrap() },
            });
            if let Some(o) = old {
                v["old_path"] = json!(o);
            }
            if binary {
                v["binary"] = json!(true);
            }
            v
        })
        .collect()
}

fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[tokio::test]
async fn checkout_tools_answer_as_git_does_on_a_shallow_provisioned_clone() {
    let w = World::new();
    let work = w.provision("main");
    let checkout = work.join("conform");
    assert_eq!(
        git(&checkout, &["rev-parse", "--is-shallow-repository"]),
        "true"
    );
    let ctx = w.context(&work);
    let mut seen = String::new();
    let repo = "conform";

    // The boundary commit itself, first: its true parents and git's diffstat.
    let head = w.git(&["rev-parse", "main"]);
    let v = ok(
        &ctx,
        &mut seen,
        "get_commit",
        json!({"repo": repo, "commit": "HEAD"}),
    )
    .await;
    assert_eq!(v["hash"], head.as_str());
    assert_eq!(v["parents"], json!([w.git(&["rev-parse", "main^"])]));
    assert_eq!(v["files"], json!(git_changes(&w, &head)), "{v}");
    assert!(v["note"].as_str().unwrap().starts_with("fetched "), "{v}");

    // list_branches: every in-scope branch on the remote, with its tip and date.
    let v = ok(&ctx, &mut seen, "list_branches", json!({"repo": repo})).await;
    let theirs: Vec<Value> = w
        .git(&[
            "for-each-ref",
            "--format=%(refname:short)%00%(objectname)%00%(committerdate:iso-strict)",
            "refs/heads",
        ])
        .lines()
        .filter(|l| {
            regex::Regex::new(SCOPE)
                .unwrap()
                .is_match(l.split('\0').next().unwrap())
        })
        .map(|l| {
            let f: Vec<&str> = l.split('\0').collect();
            json!({"name": f[0], "commit": f[1], "date": iso(f[2])})
        })
        .collect();
    let ours: Vec<Value> = v["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| json!({"name": b["name"], "commit": b["commit"], "date": b["date"]}))
        .collect();
    assert_eq!(ours, theirs, "{v}");
    assert_eq!(v["total"], theirs.len());
    assert!(!v["note"].as_str().unwrap().contains("spec sets"), "{v}");

    // list_commits: git log's commits and order, across pages, with and without filters.
    let since = rfc3339(BASE + 60 * 12);
    let until = rfc3339(BASE + 60 * 30);
    let since_git = format!("--since=@{}", BASE + 60 * 12);
    let until_git = format!("--until=@{}", BASE + 60 * 30);
    for rev in [
        "main",
        "HEAD",
        "feature/open",
        "feature/merged",
        "main~5",
        "main~27^2",
    ] {
        let cases: Vec<(Value, Vec<&str>, Vec<&str>)> = vec![
            (json!({}), vec![], vec![]),
            (
                json!({"path": "path/keep.txt"}),
                vec![],
                vec!["path/keep.txt"],
            ),
            (json!({"path": "docs"}), vec![], vec!["docs"]),
            (json!({"path": "r2"}), vec![], vec!["r2"]),
            (
                json!({"author": "ALICE"}),
                vec!["-i", "--fixed-strings", "--author=ALICE"],
                vec![],
            ),
            (
                json!({"author": "builders.example>"}),
                vec!["-i", "--fixed-strings", "--author=builders.example>"],
                vec![],
            ),
            (
                json!({"since": since, "until": until}),
                vec![since_git.as_str(), until_git.as_str()],
                vec![],
            ),
        ];
        for (filter, extra, paths) in cases {
            let mut args = json!({"repo": repo, "ref": rev});
            args.as_object_mut()
                .unwrap()
                .extend(filter.as_object().unwrap().clone());
            let ours = all_pages(&ctx, &mut seen, args.clone(), 7).await;
            let theirs = git_log(&w, rev, &extra, &paths);
            assert_eq!(ours, theirs, "list_commits {args}");
        }
    }
    // The page size does not change the answer.
    let one = all_pages(&ctx, &mut seen, json!({"repo": repo}), 100).await;
    assert_eq!(one, git_log(&w, "main", &[], &[]));

    // get_commit on every commit an in-scope branch reaches.
    let all = w.git(&["rev-list", "main", "feature/open", "feature/merged"]);
    for id in all.lines() {
        let v = ok(
            &ctx,
            &mut seen,
            "get_commit",
            json!({"repo": repo, "commit": id}),
        )
        .await;
        assert_eq!(
            v["files"],
            json!(git_changes(&w, id)),
            "get_commit {id}: {v}"
        );
        let parents: Vec<String> = w
            .git(&["rev-list", "--parents", "-n1", id])
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect();
        assert_eq!(v["parents"], json!(parents), "{id}");
        let who = w.git(&[
            "log",
            "-1",
            "--no-mailmap",
            "--format=%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI",
            id,
        ]);
        let f: Vec<&str> = who.split('\0').collect();
        assert_eq!(
            (
                &v["author"]["name"],
                &v["author"]["email"],
                &v["author"]["date"]
            ),
            (&json!(f[0]), &json!(f[1]), &json!(iso(f[2]))),
            "{id}"
        );
        assert_eq!(v["committer"]["date"], iso(f[5]), "{id}");
    }
    // Patches equal git's, for the shapes that are easy to get wrong.
    for rev in ["main~24", "main~25", "main~26", "main~27"] {
        let id = w.git(&["rev-parse", rev]);
        let v = ok(
            &ctx,
            &mut seen,
            "get_commit",
            json!({"repo": repo, "commit": &id[..9], "patch": true}),
        )
        .await;
        let theirs = git_env(
            &w.up.dir,
            &["diff-tree", "-r", "-M", "-p", &format!("{id}^"), &id],
            &[],
        );
        assert_eq!(v["patch"], theirs.as_str(), "patch of {rev}");
    }
    // The fixture has the shapes it claims.
    let renames = git_changes(&w, &w.git(&["rev-parse", "main~26"]));
    assert!(
        renames
            .iter()
            .any(|f| f["status"] == "renamed" && f["path"] == "r2/above.txt")
    );
    assert!(
        !renames
            .iter()
            .any(|f| f["status"] == "renamed" && f["path"] == "r2/below.txt")
    );

    // read_file and browse at a side branch and at main~N, as git show / ls-tree.
    for rev in [
        "feature/open",
        "feature/merged",
        "main~3",
        "main~27",
        "HEAD^",
    ] {
        for path in ["docs/guide.md", "path/keep.txt", "src/lib.rs"] {
            let v = ok(
                &ctx,
                &mut seen,
                "read_file",
                json!({"repo": repo, "path": path, "ref": rev}),
            )
            .await;
            let theirs = w.git(&["show", &format!("{rev}:{path}")]);
            let text: String = v["content"]
                .as_str()
                .unwrap()
                .lines()
                .map(|l| l.split_once('\t').unwrap().1.to_string() + "\n")
                .collect();
            assert_eq!(text.trim_end(), theirs, "read_file {rev}:{path}");
            assert_eq!(v["commit"], w.git(&["rev-parse", rev]), "{rev}");
        }
        let v = ok(&ctx, &mut seen, "browse", json!({"repo": repo, "ref": rev})).await;
        let ours: BTreeSet<String> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        let theirs: BTreeSet<String> = w
            .git(&["ls-tree", "--name-only", rev])
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(ours, theirs, "browse {rev}");
    }

    // search_code at a side branch: git grep's lines.
    let v = ok(
        &ctx,
        &mut seen,
        "search_code",
        json!({"repo": repo, "query": "needle-on-the-side", "ref": "feature/open"}),
    )
    .await;
    let ours: Vec<String> = crate::support::search_matches(&v)
        .into_iter()
        .map(|(path, line, text)| format!("{path}:{line}:{text}"))
        .collect();
    let theirs: Vec<String> = w
        .git(&["grep", "-n", "needle-on-the-side", "feature/open"])
        .lines()
        .map(|l| l.strip_prefix("feature/open:").unwrap().to_string())
        .collect();
    assert_eq!(ours, theirs);

    // Scope is absolute: the out-of-scope branch and what only it reaches stay out.
    let secret = &w.up.secret_only;
    for (tool, args, kind) in [
        (
            "get_commit",
            json!({"repo": repo, "commit": secret}),
            Kind::NotFound,
        ),
        (
            "get_commit",
            json!({"repo": repo, "commit": &secret[..8]}),
            Kind::NotFound,
        ),
        (
            "list_commits",
            json!({"repo": repo, "ref": secret}),
            Kind::NotFound,
        ),
        (
            "read_file",
            json!({"repo": repo, "path": "secret.txt", "ref": "secret/x"}),
            Kind::OutOfScope,
        ),
        (
            "browse",
            json!({"repo": repo, "ref": "secret/x~1"}),
            Kind::OutOfScope,
        ),
    ] {
        assert_eq!(
            err(&ctx, &mut seen, tool, args.clone()).await,
            kind,
            "{tool} {args}"
        );
    }
    assert_no_secret_fetched(&w, &checkout);
    canary::assert_absent("tool output", &seen, &[TOKEN, SECRET_CONTENT]);
    // Fetched branches live apart from provision's refs.
    let refs = git(&checkout, &["for-each-ref", "--format=%(refname)"]);
    assert!(
        refs.contains("refs/agentenv/branches/feature/open"),
        "{refs}"
    );
    assert!(!refs.contains("refs/heads/feature"), "{refs}");
    assert!(!refs.contains("refs/remotes/origin/feature"), "{refs}");
    assert_eq!(git(&checkout, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&checkout, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "main"
    );

    // Provision after the deepening: up to date, then an update, on a clone that stays sound.
    w.provision("main");
    let mut b = Builder {
        dir: w.up.dir.clone(),
        clock: BASE + 60 * 100,
    };
    b.put("after.txt", "after the deepening\n");
    let new_head = b.commit("After the deepening", 0, false);
    w.provision("main");
    assert_eq!(git(&checkout, &["rev-parse", "HEAD"]), new_head);
    git(&checkout, &["fsck", "--connectivity-only", "--no-progress"]);
    let ctx = w.context(&work);
    let ours = all_pages(&ctx, &mut seen, json!({"repo": repo}), 50).await;
    assert_eq!(ours, git_log(&w, "main", &[], &[]));
}

/// No fetch asked for a commit that only the out-of-scope branch reaches, and the checkout does
/// not hold it.
#[track_caller]
fn assert_no_secret_fetched(w: &World, checkout: &Path) {
    let secret = &w.up.secret_only;
    let fetches = w.emu.git_wants();
    assert!(
        !fetches.is_empty(),
        "the emulator records every fetch's wants"
    );
    for (repo, wants) in fetches {
        assert!(
            !wants.contains(secret),
            "{repo} fetched {secret}: {wants:?}"
        );
    }
    let present = Command::new("git")
        .args(["cat-file", "-e", secret])
        .current_dir(checkout)
        .status()
        .unwrap();
    assert!(
        !present.success(),
        "the out-of-scope commit is in the checkout"
    );
}

/// A commit only an in-scope side branch reaches, asked for first thing: found by fetching the
/// side branch; and two calls fetching into one checkout at once, whose pooled repositories
/// then see each other's fetches.
#[tokio::test]
async fn side_branch_commits_are_found_and_concurrent_fetches_are_safe() {
    let w = World::new();
    let work = w.provision("side");
    let ctx = w.context(&work);
    let mut seen = String::new();
    let id = w.up.side_only[0].clone();
    let v = ok(
        &ctx,
        &mut seen,
        "get_commit",
        json!({"repo": "conform", "commit": &id[..10]}),
    )
    .await;
    assert_eq!(v["hash"], id.as_str());
    assert_eq!(v["files"], json!(git_changes(&w, &id)));
    assert!(v["note"].as_str().unwrap().contains("fetched"), "{v}");

    let work = w.provision("concurrent");
    let ctx = w.context(&work);
    let read = |r: &'static str| {
        let ctx = ctx.clone();
        async move {
            ctx.call(
                "read_file",
                json!({"repo": "conform", "path": "docs/guide.md", "ref": r}),
            )
            .await
        }
    };
    for _ in 0..2 {
        let (a, b, c) = tokio::join!(
            read("feature/open"),
            read("feature/merged"),
            read("main~20")
        );
        for (r, v) in [("feature/open", a), ("feature/merged", b), ("main~20", c)] {
            let v = v.unwrap_or_else(|e| panic!("{r}: {e}"));
            assert_eq!(v["commit"], w.git(&["rev-parse", r]), "{r}");
        }
    }
    assert_no_secret_fetched(&w, &work.join("conform"));
    git(
        &work.join("conform"),
        &["fsck", "--connectivity-only", "--no-progress"],
    );
}

/// A fetch budget of nothing: the answer is what the clone already has, and says how to get
/// the rest (`agentenv tool`, the budget set through its environment variable).
#[test]
fn a_spent_fetch_budget_answers_what_it_has_and_says_how_to_get_more() {
    let w = World::new();
    let work = w.provision("budget");
    let tool = |budget_mb: &str, name: &str, args: &[&str]| {
        let mut cmd = agentenv_cmd(&["tool", w.spec.to_str().unwrap(), name, "--workdir"]);
        cmd.arg(&work);
        for a in args {
            cmd.args(["--arg", a]);
        }
        let out = cmd
            .env("BB_TOKEN", TOKEN)
            .env("AGENTENV_PERSONAL_FILE", w.base.join("none.yaml"))
            .env("AGENTENV_FETCH_BUDGET_MB", budget_mb)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = tool("0", "list_commits", &["repo=conform", "limit=10"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["commits"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["history_truncated_by_depth"], true, "{v}");
    let note = v["note"].as_str().unwrap();
    assert!(note.contains("AGENTENV_FETCH_BUDGET_MB"), "{note}");
    // The cursor goes on from there once the budget allows.
    let cursor = v["next_cursor"]
        .as_str()
        .expect("a cursor to continue")
        .to_string();
    let (code, stdout, stderr) = tool(
        "64",
        "list_commits",
        &["repo=conform", "limit=10", &format!("cursor={cursor}")],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let rest: Vec<&str> = v["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hash"].as_str().unwrap())
        .collect();
    let theirs = w.git(&["log", "--format=%H", "--skip=1", "-n10", "main"]);
    assert_eq!(rest, theirs.lines().collect::<Vec<_>>());

    // The boundary commit's diff cannot be had without its parent: an error, not a guess.
    let work2 = w.provision("budget2");
    let mut cmd = agentenv_cmd(&["tool", w.spec.to_str().unwrap(), "get_commit", "--workdir"]);
    let out = cmd
        .arg(&work2)
        .args(["--arg", "repo=conform", "--arg", "commit=HEAD"])
        .env("BB_TOKEN", TOKEN)
        .env("AGENTENV_PERSONAL_FILE", w.base.join("none.yaml"))
        .env("AGENTENV_FETCH_BUDGET_MB", "0")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("fetch budget"), "{all}");
    assert!(!all.contains(TOKEN));
}

/// A fetch that another process holds the checkout's fetch lock for is waited for within the
/// call's time budget, not forever: the call answers what the clone has and says the budget
/// was spent.
#[test]
fn a_held_fetch_lock_is_waited_for_within_the_budget() {
    let w = World::new();
    let work = w.provision("held");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(work.join("conform/.git/agentenv-fetch.lock"))
        .unwrap();
    lock.lock().unwrap();
    let started = std::time::Instant::now();
    let mut cmd = agentenv_cmd(&[
        "tool",
        w.spec.to_str().unwrap(),
        "list_commits",
        "--workdir",
    ]);
    let out = cmd
        .arg(&work)
        .args(["--arg", "repo=conform", "--arg", "limit=10"])
        .env("BB_TOKEN", TOKEN)
        .env("AGENTENV_PERSONAL_FILE", w.base.join("none.yaml"))
        .env("AGENTENV_FETCH_BUDGET_SECS", "2")
        .output()
        .unwrap();
    let waited = started.elapsed();
    drop(lock);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["commits"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["note"].as_str().unwrap().contains("budget"), "{v}");
    // Bounded by the budget (2 s), not by the holder: generous slack for a loaded machine.
    assert!(waited < std::time::Duration::from_secs(60), "{waited:?}");
}

/// A server keeps repositories open between calls: one opened before another process fetched
/// into the checkout sees the fetched branch and history, without fetching them again.
#[tokio::test]
async fn pooled_repositories_see_what_another_process_fetched() {
    let w = World::new();
    let work = w.provision("pool");
    let server = w.context(&work);
    let mut seen = String::new();
    // The server opens the checkout and keeps it.
    let v = ok(&server, &mut seen, "browse", json!({"repo": "conform"})).await;
    assert!(v.get("note").is_none(), "{v}");

    // Another process (here: another context on the same workdir) fetches a branch and history.
    let other = w.context(&work);
    ok(
        &other,
        &mut seen,
        "read_file",
        json!({"repo": "conform", "path": "open.txt", "ref": "feature/open"}),
    )
    .await;
    let all = all_pages(&other, &mut seen, json!({"repo": "conform"}), 100).await;
    assert_eq!(all, git_log(&w, "main", &[], &[]));

    // The server's open repository answers from what is on disk now: nothing is fetched again.
    let v = ok(
        &server,
        &mut seen,
        "read_file",
        json!({"repo": "conform", "path": "open.txt", "ref": "feature/open"}),
    )
    .await;
    assert!(v.get("note").is_none(), "fetched again: {v}");
    let v = ok(
        &server,
        &mut seen,
        "list_commits",
        json!({"repo": "conform", "limit": 100}),
    )
    .await;
    assert!(v.get("note").is_none(), "fetched again: {v}");
    assert_eq!(v["commits"], json!(git_log(&w, "main", &[], &[])));
    let old = w.git(&["rev-parse", "main~30"]);
    let v = ok(
        &server,
        &mut seen,
        "get_commit",
        json!({"repo": "conform", "commit": old}),
    )
    .await;
    assert!(v.get("note").is_none(), "fetched again: {v}");
    assert_eq!(v["files"], json!(git_changes(&w, &old)));
}
