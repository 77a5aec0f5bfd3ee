//! The Bitbucket client against ground truth, on both products.
//!
//! 1. Every recorded response body in `$BITBUCKET_REFERENCE_DIR/samples/{cloud,datacenter}`
//!    that has a model decodes into it, checked field by field against the JSON (by pointer),
//!    and the recorded error bodies become the typed errors they mean.
//! 2. Every typed call round-trips through the loopback emulator over real HTTP, answers
//!    compared with the git CLI on the repository the emulator serves (pull requests,
//!    pipelines and build statuses with the fixtures seeded), across pages, with forged
//!    cursors refused and the credential kept to the API's origin.
//!
//! Self-contained: its own git and emulator set-up, no shared support module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use agentenv::bitbucket::{
    ApiError, ApiErrorKind, Branch, BuildStatus, ChangeStatus, ChangedFile, Client, Commit,
    CommitQuery, Credential, Cursor, DirEntry, EntryKind, FileRead, Flavor, FromCloud,
    FromDataCenter, Listing, Options, Page, Pipeline, PipelineId, PipelineQuery, PipelineStep,
    PrQuery, PrState, PullRequest, RepoId, Repository, Rev, RunStatus, Timestamp,
};
use agentenv::providers::RestForm;
use bitbucket_emulator::{Config, Emulator, Token};
use reqwest::Url;
use serde_json::Value;

use crate::support::skip_or_fail_in_ci;

// ---- Recorded samples ----------------------------------------------------------------------

/// The reference folder, or `None` with a notice (a failure under CI).
#[track_caller]
fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("BITBUCKET_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bitbucket-reference")
        });
    if dir.join("samples/cloud").is_dir() && dir.join("samples/datacenter").is_dir() {
        return Some(dir);
    }
    skip_or_fail_in_ci(&format!(
        "no recorded samples under {}: set BITBUCKET_REFERENCE_DIR",
        dir.display()
    ));
    None
}

fn sample(dir: &Path, rel: &str) -> Value {
    let path = dir.join("samples").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The string at `pointer`, `None` when absent, null or empty (how the client reads "unset").
fn set(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn string(v: &Value, pointer: &str) -> String {
    set(v, pointer).unwrap_or_else(|| panic!("sample has no `{pointer}`: {v}"))
}

fn rfc3339(v: &Value, pointer: &str) -> Option<Timestamp> {
    set(v, pointer).map(|s| chrono::DateTime::parse_from_rfc3339(&s).unwrap())
}

fn millis(v: &Value, pointer: &str) -> Option<Timestamp> {
    v.pointer(pointer).and_then(Value::as_i64).map(|ms| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .fixed_offset()
    })
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A Cloud list sample decodes item by item with `check`, and its `next` survives as is.
fn cloud_page<T: FromCloud>(v: &Value, check: impl Fn(&Value, &T)) -> usize {
    let page: Page<T> = Page::from_cloud(v).unwrap();
    let values = list(v, "/values");
    assert_eq!(page.values.len(), values.len());
    for (json, typed) in values.iter().zip(&page.values) {
        check(json, typed);
    }
    assert_eq!(page.next.as_ref().map(Cursor::as_str), v["next"].as_str());
    values.len()
}

/// A Data Center list sample decodes item by item, and continues exactly when it says so.
fn dc_page<T: FromDataCenter>(v: &Value, check: impl Fn(&Value, &T)) -> usize {
    let page: Page<T> = Page::from_datacenter(v).unwrap();
    let values = list(v, "/values");
    assert_eq!(page.values.len(), values.len());
    for (json, typed) in values.iter().zip(&page.values) {
        check(json, typed);
    }
    let more = v["isLastPage"] == Value::Bool(false);
    assert_eq!(page.next.is_some(), more, "{}", v["nextPageStart"]);
    if let Some(next) = &page.next {
        let start = v["nextPageStart"].as_u64().unwrap();
        assert!(next.as_str().starts_with(&format!("{start}:")), "{next}");
    }
    values.len()
}

fn check_cloud_repository(v: &Value, r: &Repository) {
    assert_eq!(r.slug, string(v, "/slug"));
    assert_eq!(r.full_name, string(v, "/full_name"));
    assert_eq!(r.name, string(v, "/name"));
    assert_eq!(r.description, set(v, "/description"));
    assert_eq!(r.language, set(v, "/language"));
    assert_eq!(r.is_private, v["is_private"].as_bool().unwrap());
    assert_eq!(r.default_branch, set(v, "/mainbranch/name"));
    assert_eq!(r.web_url, set(v, "/links/html/href"));
    let clones: Vec<(String, String)> = list(v, "/links/clone")
        .iter()
        .map(|l| (string(l, "/name"), string(l, "/href")))
        .collect();
    let typed: Vec<(String, String)> = r
        .clone_urls
        .iter()
        .map(|c| (c.protocol.clone(), c.url.clone()))
        .collect();
    assert_eq!(typed, clones);
}

fn check_dc_repository(v: &Value, r: &Repository) {
    assert_eq!(r.slug, string(v, "/slug"));
    assert_eq!(
        r.full_name,
        format!("{}/{}", string(v, "/project/key"), string(v, "/slug"))
    );
    assert_eq!(r.name, string(v, "/name"));
    assert_eq!(r.description, set(v, "/description"));
    assert_eq!(r.language, None, "Data Center records no language");
    assert_eq!(r.is_private, !v["public"].as_bool().unwrap());
    assert_eq!(
        r.default_branch, None,
        "Data Center's repository object has no default branch"
    );
    assert_eq!(r.web_url, set(v, "/links/self/0/href"));
    let clones: Vec<(String, String)> = list(v, "/links/clone")
        .iter()
        .map(|l| (string(l, "/name"), string(l, "/href")))
        .collect();
    let typed: Vec<(String, String)> = r
        .clone_urls
        .iter()
        .map(|c| (c.protocol.clone(), c.url.clone()))
        .collect();
    assert_eq!(typed, clones);
    assert!(!clones.is_empty());
}

fn check_cloud_branch(v: &Value, b: &Branch) {
    assert_eq!(b.name, string(v, "/name"));
    assert_eq!(b.head, string(v, "/target/hash"));
    assert_eq!(b.date, rfc3339(v, "/target/date"));
    assert!(b.date.is_some());
    assert_eq!(
        b.message.as_deref(),
        v.pointer("/target/message").and_then(Value::as_str)
    );
    assert_eq!(b.is_default, None, "Cloud branch objects do not say");
}

fn check_dc_branch(v: &Value, b: &Branch) {
    assert_eq!(b.name, string(v, "/displayId"));
    assert_eq!(format!("refs/heads/{}", b.name), string(v, "/id"));
    assert_eq!(b.head, string(v, "/latestCommit"));
    assert_eq!(b.is_default, v["isDefault"].as_bool());
    assert!(b.is_default.is_some());
    assert_eq!(
        (b.date, &b.message),
        (None, &None),
        "Data Center lists carry no commit details"
    );
}

fn check_cloud_commit(v: &Value, c: &Commit) {
    assert_eq!(c.hash, string(v, "/hash"));
    let parents: Vec<String> = list(v, "/parents")
        .iter()
        .map(|p| string(p, "/hash"))
        .collect();
    assert_eq!(c.parents, parents);
    let email = c
        .author
        .email
        .as_deref()
        .expect("recorded authors have an email");
    assert_eq!(
        format!("{} <{email}>", c.author.name),
        string(v, "/author/raw")
    );
    assert_eq!(c.author.date, rfc3339(v, "/date"));
    assert!(c.author.date.is_some());
    assert_eq!(c.committer, None, "Cloud records one person per commit");
    assert_eq!(c.message, string(v, "/message"));
}

fn check_dc_commit(v: &Value, c: &Commit) {
    assert_eq!(c.hash, string(v, "/id"));
    let parents: Vec<String> = list(v, "/parents")
        .iter()
        .map(|p| string(p, "/id"))
        .collect();
    assert_eq!(c.parents, parents);
    // A mapped author shows the name they go by; an unmapped one git's name.
    let name = set(v, "/author/displayName").unwrap_or_else(|| string(v, "/author/name"));
    assert_eq!(c.author.name, name);
    assert_eq!(c.author.email, set(v, "/author/emailAddress"));
    assert_eq!(c.author.date, millis(v, "/authorTimestamp"));
    let committer = c
        .committer
        .as_ref()
        .expect("Data Center records the committer");
    let cname = set(v, "/committer/displayName").unwrap_or_else(|| string(v, "/committer/name"));
    assert_eq!(committer.name, cname);
    assert_eq!(committer.email, set(v, "/committer/emailAddress"));
    assert_eq!(committer.date, millis(v, "/committerTimestamp"));
    assert_eq!(c.message, string(v, "/message"));
}

fn check_cloud_change(v: &Value, f: &ChangedFile) {
    let status = string(v, "/status");
    let expected = match status.as_str() {
        "added" => ChangeStatus::Added,
        "removed" => ChangeStatus::Removed,
        "modified" => ChangeStatus::Modified,
        "renamed" => ChangeStatus::Renamed,
        other => panic!("unexpected recorded status {other}"),
    };
    assert_eq!(f.status, expected);
    let path = set(v, "/new/path").or_else(|| set(v, "/old/path")).unwrap();
    assert_eq!(f.path, path);
    let old = (status == "renamed").then(|| string(v, "/old/path"));
    assert_eq!(f.old_path, old);
    assert_eq!(f.lines_added, v["lines_added"].as_u64());
    assert_eq!(f.lines_removed, v["lines_removed"].as_u64());
    assert!(f.lines_added.is_some() && f.lines_removed.is_some());
}

fn check_dc_change(v: &Value, f: &ChangedFile) {
    let expected = match string(v, "/type").as_str() {
        "ADD" => ChangeStatus::Added,
        "DELETE" => ChangeStatus::Removed,
        "MODIFY" => ChangeStatus::Modified,
        "MOVE" => ChangeStatus::Renamed,
        "COPY" => ChangeStatus::Copied,
        other => panic!("unexpected recorded type {other}"),
    };
    assert_eq!(f.status, expected);
    assert_eq!(f.path, string(v, "/path/toString"));
    assert_eq!(f.old_path, set(v, "/srcPath/toString"));
    assert_eq!(
        (f.lines_added, f.lines_removed),
        (None, None),
        "no line counts on Data Center"
    );
    assert_eq!(f.binary, None);
}

fn check_cloud_entry(v: &Value, e: &DirEntry) {
    let path = string(v, "/path");
    assert_eq!(e.path, path);
    assert_eq!(e.name, path.rsplit('/').next().unwrap());
    let dir = string(v, "/type") == "commit_directory";
    assert_eq!(e.kind == EntryKind::Dir, dir);
    if dir {
        assert_eq!((e.size, e.executable), (None, None));
    } else {
        assert_eq!(e.size, v["size"].as_u64());
        let attrs: Vec<&str> = list(v, "/attributes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            e.executable,
            v.get("attributes").map(|_| attrs.contains(&"executable"))
        );
        assert_eq!(e.kind == EntryKind::Symlink, attrs.contains(&"link"));
    }
}

fn check_cloud_user(v: &Value, u: &agentenv::bitbucket::User) {
    assert_eq!(u.display_name, set(v, "/display_name"));
    assert_eq!(u.handle, set(v, "/nickname"));
    assert_eq!(u.username, set(v, "/username"));
    assert_eq!(u.id, set(v, "/uuid"));
}

fn check_cloud_pr(v: &Value, p: &PullRequest) {
    assert_eq!(p.id, v["id"].as_u64().unwrap());
    assert_eq!(p.title, string(v, "/title"));
    assert_eq!(p.description.as_deref(), v["description"].as_str());
    assert_eq!(p.state.as_str(), string(v, "/state"));
    assert_eq!(p.draft, v["draft"].as_bool().unwrap_or(false));
    check_cloud_user(&v["author"], p.author.as_ref().unwrap());
    for (side, r) in [("source", &p.source), ("destination", &p.destination)] {
        assert_eq!(r.branch, string(v, &format!("/{side}/branch/name")));
        assert_eq!(r.commit, set(v, &format!("/{side}/commit/hash")));
        assert_eq!(
            r.repository,
            set(v, &format!("/{side}/repository/full_name"))
        );
    }
    match v.get("reviewers").and_then(Value::as_array) {
        None => assert_eq!(p.reviewers, None),
        Some(list) => {
            let typed = p.reviewers.as_ref().unwrap();
            assert_eq!(typed.len(), list.len());
            for (json, r) in list.iter().zip(typed) {
                check_cloud_user(json, &r.user);
            }
        }
    }
    assert_eq!(p.comment_count, v["comment_count"].as_u64());
    assert_eq!(p.created, rfc3339(v, "/created_on"));
    assert_eq!(p.updated, rfc3339(v, "/updated_on"));
    assert!(p.created.is_some());
    assert_eq!(p.web_url, set(v, "/links/html/href"));
}

fn check_dc_pr(v: &Value, p: &PullRequest) {
    assert_eq!(p.id, v["id"].as_u64().unwrap());
    assert_eq!(p.title, string(v, "/title"));
    assert_eq!(p.description.as_deref(), v["description"].as_str());
    assert_eq!(p.state.as_str(), string(v, "/state"));
    assert_eq!(p.draft, v["draft"].as_bool().unwrap_or(false));
    let author = p.author.as_ref().unwrap();
    assert_eq!(author.display_name, set(v, "/author/user/displayName"));
    assert_eq!(author.username, set(v, "/author/user/name"));
    assert_eq!(author.email, set(v, "/author/user/emailAddress"));
    for (side, r) in [("fromRef", &p.source), ("toRef", &p.destination)] {
        assert_eq!(r.branch, string(v, &format!("/{side}/displayId")));
        assert_eq!(r.commit, set(v, &format!("/{side}/latestCommit")));
        let repo = format!(
            "{}/{}",
            string(v, &format!("/{side}/repository/project/key")),
            string(v, &format!("/{side}/repository/slug"))
        );
        assert_eq!(r.repository, Some(repo));
    }
    let reviewers = p.reviewers.as_ref().unwrap();
    assert_eq!(reviewers.len(), list(v, "/reviewers").len());
    assert_eq!(
        p.comment_count,
        Some(
            v.pointer("/properties/commentCount")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        )
    );
    assert_eq!(p.created, millis(v, "/createdDate"));
    assert_eq!(p.updated, millis(v, "/updatedDate"));
    assert!(p.created.is_some());
    assert_eq!(p.web_url, set(v, "/links/self/0/href"));
}

fn check_cloud_pipeline(v: &Value, p: &Pipeline) {
    assert_eq!(p.uuid, string(v, "/uuid"));
    assert_eq!(p.build_number, v["build_number"].as_u64());
    assert_eq!(p.state, string(v, "/state/name"));
    assert_eq!(p.result, set(v, "/state/result/name"));
    assert_eq!(
        p.status,
        RunStatus::Stopped,
        "both recorded runs were stopped"
    );
    assert_eq!(string(v, "/target/ref_type"), "branch");
    assert_eq!(p.branch, set(v, "/target/ref_name"));
    assert_eq!(p.commit, set(v, "/target/commit/hash"));
    assert_eq!(p.trigger, set(v, "/trigger/name"));
    check_cloud_user(&v["creator"], p.creator.as_ref().unwrap());
    assert_eq!(p.created, rfc3339(v, "/created_on"));
    assert_eq!(p.completed, rfc3339(v, "/completed_on"));
    assert_eq!(p.duration_secs, v["duration_in_seconds"].as_u64());
}

fn check_cloud_step(v: &Value, s: &PipelineStep) {
    assert_eq!(s.uuid, string(v, "/uuid"));
    assert_eq!(s.name, set(v, "/name"));
    assert_eq!(s.state, string(v, "/state/name"));
    assert_eq!(s.result, set(v, "/state/result/name"));
    assert_eq!(s.status, RunStatus::Stopped);
    assert_eq!(s.started, rfc3339(v, "/started_on"));
    assert_eq!(s.completed, rfc3339(v, "/completed_on"));
    assert!(s.started.is_some() && s.completed.is_some());
    assert_eq!(s.duration_secs, v["duration_in_seconds"].as_u64());
}

fn check_dc_build(v: &Value, b: &BuildStatus) {
    assert_eq!(b.key, string(v, "/key"));
    assert_eq!(b.name, set(v, "/name"));
    assert_eq!(b.state, string(v, "/state"));
    let status = match b.state.as_str() {
        "SUCCESSFUL" => RunStatus::Successful,
        "FAILED" => RunStatus::Failed,
        other => panic!("unexpected recorded state {other}"),
    };
    assert_eq!(b.status, status);
    assert_eq!(b.url, set(v, "/url"));
    assert_eq!(b.description, set(v, "/description"));
    assert_eq!(b.created, millis(v, "/dateAdded"));
    assert!(b.created.is_some());
    assert_eq!(
        (&b.build_number, b.duration_ms, &b.git_ref),
        (&None, None, &None),
        "legacy list"
    );
}

#[test]
fn recorded_cloud_bodies_decode_field_by_field() {
    let Some(dir) = reference_dir() else { return };
    let s = |rel: &str| sample(&dir, &format!("cloud/{rel}"));

    let v = s("repository.json");
    check_cloud_repository(&v, &Repository::from_cloud(&v).unwrap());
    assert_eq!(
        cloud_page(&s("repositories-list.json"), check_cloud_repository),
        1
    );
    assert_eq!(
        cloud_page(
            &s("repositories-list-workspace.json"),
            check_cloud_repository
        ),
        2
    );

    let v = s("branch.json");
    check_cloud_branch(&v, &Branch::from_cloud(&v).unwrap());
    assert_eq!(cloud_page(&s("branches-list.json"), check_cloud_branch), 4);

    let v = s("commit.json");
    check_cloud_commit(&v, &Commit::from_cloud(&v).unwrap());
    assert_eq!(cloud_page(&s("commits-list.json"), check_cloud_commit), 1);
    assert_eq!(
        cloud_page(&s("commits-list-include-exclude.json"), check_cloud_commit),
        2
    );

    assert_eq!(cloud_page(&s("diffstat.json"), check_cloud_change), 4);
    assert_eq!(
        cloud_page(&s("pullrequest-diffstat.json"), check_cloud_change),
        1
    );

    assert_eq!(
        cloud_page(&s("src-directory-listing.json"), check_cloud_entry),
        10
    );
    let v = s("src-file-meta.json");
    let meta = DirEntry::from_cloud(&v).unwrap();
    check_cloud_entry(&v, &meta);
    assert_eq!(
        (meta.kind, meta.size, meta.executable),
        (EntryKind::File, Some(35), Some(false))
    );

    for rel in ["pullrequest.json", "pullrequest-from-fork.json"] {
        let v = s(rel);
        check_cloud_pr(&v, &PullRequest::from_cloud(&v).unwrap());
    }
    let fork = PullRequest::from_cloud(&s("pullrequest-from-fork.json")).unwrap();
    assert_ne!(
        fork.source.repository, fork.destination.repository,
        "a fork's sides differ"
    );
    let drafts = cloud_page(&s("pullrequests-list.json"), check_cloud_pr);
    assert_eq!(drafts, 5);
    let listed: Page<PullRequest> = Page::from_cloud(&s("pullrequests-list.json")).unwrap();
    assert!(listed.values.iter().any(|p| p.draft));
    assert!(
        listed.values.iter().all(|p| p.reviewers.is_none()),
        "lists leave reviewers out"
    );

    let v = s("pipeline.json");
    check_cloud_pipeline(&v, &Pipeline::from_cloud(&v).unwrap());
    assert_eq!(
        cloud_page(&s("pipelines-list.json"), check_cloud_pipeline),
        1
    );
    assert_eq!(
        cloud_page(&s("pipeline-steps-list.json"), check_cloud_step),
        2
    );
}

#[test]
fn recorded_datacenter_bodies_decode_field_by_field() {
    let Some(dir) = reference_dir() else { return };
    let s = |rel: &str| sample(&dir, &format!("datacenter/{rel}"));

    let v = s("repo.json");
    check_dc_repository(&v, &Repository::from_datacenter(&v).unwrap());
    assert_eq!(dc_page(&s("repos-list.json"), check_dc_repository), 2);
    assert_eq!(
        dc_page(&s("repos-list-lastpage.json"), check_dc_repository),
        3
    );

    assert_eq!(dc_page(&s("branches-list.json"), check_dc_branch), 4);
    let v = s("default-branch.json");
    check_dc_branch(&v, &Branch::from_datacenter(&v).unwrap());

    let v = s("commit.json");
    check_dc_commit(&v, &Commit::from_datacenter(&v).unwrap());
    assert_eq!(dc_page(&s("commits-list.json"), check_dc_commit), 1);
    assert_eq!(
        dc_page(&s("commits-list-since-until.json"), check_dc_commit),
        2
    );

    assert_eq!(dc_page(&s("commit-changes.json"), check_dc_change), 4);
    assert_eq!(dc_page(&s("pull-request-changes.json"), check_dc_change), 4);

    let v = s("pull-request.json");
    check_dc_pr(&v, &PullRequest::from_datacenter(&v).unwrap());
    assert_eq!(dc_page(&s("pull-requests-list.json"), check_dc_pr), 2);

    assert_eq!(dc_page(&s("build-status-list.json"), check_dc_build), 2);
}

// ---- The emulator: a repository made with the git CLI --------------------------------------

const CLOUD_TOKEN: &str = "ATATT-CANARY-bbclient-7f3a91";
const DC_TOKEN: &str = "BBDC-CANARY-bbclient-91c2d4";
const WRONG_TOKEN: &str = "ATATT-CANARY-bbclient-wrong-55e0";
const EMAIL: &str = "bot@example.com";
const SLUGS: &[&str] = &["demo", "other-1", "other-2", "other-3", "other-4"];

/// Runs git with a fixed identity; `at` sets both dates (author and committer differ by one
/// hour, so that a client showing one for the other is caught).
fn git_at(dir: &Path, args: &[&str], at: Option<i64>) -> String {
    let mut cmd = Command::new("git");
    cmd.args(["-c", "init.defaultBranch=main", "-c", "core.symlinks=true"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ada Author")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Cy Committer")
        .env("GIT_COMMITTER_EMAIL", "cy@example.com");
    if let Some(t) = at {
        cmd.env("GIT_AUTHOR_DATE", format!("@{t} +0200"))
            .env("GIT_COMMITTER_DATE", format!("@{} +0000", t + 3600));
    }
    let out = cmd.output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    git_at(dir, args, None)
}

fn write(dir: &Path, path: &str, bytes: &[u8]) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn commit(dir: &Path, msg: &str, at: &mut i64) {
    git(dir, &["add", "-A"]);
    git_at(dir, &["commit", "-q", "-m", msg], Some(*at));
    *at += 86_400;
}

/// main: 5 commits (a binary file, an executable, a symlink, a submodule entry); feature: two
/// more (a rename, a removal); feature-2, hotfix-x, release/1.0 besides.
fn make_repo(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    let mut at = 1_735_689_600; // 2025-01-01
    write(dir, "README.md", b"# demo\n");
    for d in ["guide", "api", "faq"] {
        write(dir, &format!("docs/{d}.md"), format!("# {d}\n").as_bytes());
    }
    write(dir, "src/lib.rs", b"pub fn answer() -> u32 {\n    42\n}\n");
    write(
        dir,
        "logo.bin",
        &[0x89, b'P', b'N', b'G', 0, 1, 2, 3, 0, 255],
    );
    write(dir, "run.sh", b"#!/bin/sh\necho run\n");
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("README.md", dir.join("link")).unwrap();
    commit(dir, "Initial commit\n\nWith a body.", &mut at);
    write(dir, "notes.txt", b"one\ntwo\n");
    commit(dir, "Add notes", &mut at);
    git(dir, &["branch", "release/1.0"]);
    write(dir, "notes.txt", b"one\ntwo\nthree\nfour\n");
    commit(dir, "Grow notes", &mut at);
    write(dir, "docs/guide.md", b"# guide\n\nRead me.\n");
    commit(dir, "Touch the guide", &mut at);
    // A submodule entry; its empty directory is how git shows one not checked out.
    let head = git(dir, &["rev-parse", "HEAD"]);
    git(
        dir,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{head},vendor"),
        ],
    );
    std::fs::create_dir_all(dir.join("vendor")).unwrap();
    git_at(dir, &["commit", "-q", "-m", "Vendor a submodule"], Some(at));
    at += 86_400;
    git(dir, &["checkout", "-q", "-b", "feature"]);
    write(dir, "feature.txt", b"new feature\nline 2\n");
    commit(dir, "Add the feature", &mut at);
    git(dir, &["mv", "notes.txt", "NOTES.md"]);
    git(dir, &["rm", "-q", "docs/faq.md"]);
    write(dir, "README.md", b"# demo\n\nNow with a feature.\n");
    commit(dir, "Rename notes, drop the FAQ", &mut at);
    git(dir, &["branch", "feature-2"]);
    git(dir, &["checkout", "-q", "main"]);
    git(dir, &["branch", "hotfix-x"]);
    assert_eq!(
        git(dir, &["ls-tree", "HEAD", "vendor", "run.sh", "link"])
            .lines()
            .count(),
        3
    );
}

struct Fx {
    tmp: tempfile::TempDir,
    emu: Emulator,
    repo: PathBuf,
}

impl Fx {
    fn start() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("origin");
        make_repo(&repo);
        let mut config = Config::default()
            .token(Token::cloud_api(
                EMAIL,
                "bot",
                CLOUD_TOKEN,
                &[
                    "read:repository:bitbucket",
                    "read:pullrequest:bitbucket",
                    "read:pipeline:bitbucket",
                ],
            ))
            .token(Token::dc_personal("bot", DC_TOKEN, &["REPO_READ"]));
        for slug in SLUGS {
            config = config
                .cloud_repo("acme", slug, &repo)
                .dc_repo("PROJ", slug, &repo);
        }
        Fx {
            emu: Emulator::start(config),
            tmp,
            repo,
        }
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.repo, args)
    }

    fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", rev])
    }

    fn opts() -> Options {
        Options {
            cache_ttl: Duration::ZERO,
            backoff: Duration::from_millis(5),
            max_retries: 1,
            max_wait: Duration::from_secs(1),
            ..Options::default()
        }
    }

    fn cloud_with(&self, token: &str) -> Client {
        let credential = Credential::new(RestForm::BasicEmailToken, token, Some(EMAIL)).unwrap();
        Client::new(
            "cloud",
            Flavor::Cloud {
                workspace: "acme".into(),
            },
            Url::parse(&self.emu.cloud_api_url()).unwrap(),
            Some(credential),
            Fx::opts(),
        )
        .unwrap()
    }

    fn cloud(&self) -> Client {
        self.cloud_with(CLOUD_TOKEN)
    }

    fn dc(&self) -> Client {
        let credential = Credential::new(RestForm::Bearer, DC_TOKEN, None).unwrap();
        // The `{base}/rest/api/1.0` form of the root, as users often write it.
        Client::new(
            "dc",
            Flavor::DataCenter {
                project: "PROJ".into(),
            },
            Url::parse(&self.emu.dc_api_url()).unwrap(),
            Some(credential),
            Fx::opts(),
        )
        .unwrap()
    }

    fn both(&self) -> [Client; 2] {
        [self.cloud(), self.dc()]
    }
}

fn demo(c: &Client) -> RepoId {
    c.repo("demo")
}

/// Every page of a listing, following cursors; panics past `max` pages.
async fn all_pages<T, F, Fut>(max: usize, mut call: F) -> (Vec<T>, usize)
where
    F: FnMut(Option<Cursor>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, ApiError>>,
{
    let mut out = Vec::new();
    let mut cursor = None;
    for n in 1..=max {
        // Through its text form, as a cursor travels out to an agent and back.
        let page = call(cursor.map(|c: Cursor| Cursor::from(c.as_str().to_string())))
            .await
            .unwrap();
        out.extend(page.values);
        match page.next {
            Some(c) => cursor = Some(c),
            None => return (out, n),
        }
    }
    panic!("more than {max} pages");
}

fn ts(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s).unwrap()
}

#[tokio::test]
async fn repositories_page_through_the_workspace_and_project() {
    let fx = Fx::start();
    for c in fx.both() {
        let (repos, pages) = all_pages(10, |cur| {
            let c = &c;
            async move { c.repositories(None, 2, cur.as_ref()).await }
        })
        .await;
        assert_eq!(pages, 3, "5 repositories, 2 per page");
        let mut slugs: Vec<&str> = repos.iter().map(|r| r.slug.as_str()).collect();
        slugs.sort();
        assert_eq!(slugs, SLUGS);
        let listed = repos.iter().find(|r| r.slug == "demo").unwrap();
        let one = c.repository(&demo(&c)).await.unwrap();
        assert_eq!(&one, listed);
        let (full, clone, default) = if c.is_cloud() {
            (
                "acme/demo",
                fx.emu.cloud_clone_url("acme", "demo"),
                Some("main".to_string()),
            )
        } else {
            ("PROJ/demo", fx.emu.dc_clone_url("PROJ", "demo"), None)
        };
        assert_eq!(one.full_name, full);
        assert_eq!(one.name, "demo");
        assert!(one.is_private);
        assert_eq!(one.default_branch, default);
        assert!(
            one.clone_urls.iter().any(|u| u.url == clone),
            "{:?}",
            one.clone_urls
        );
        assert!(one.web_url.is_some());
        assert_eq!(
            c.default_branch(&demo(&c)).await.unwrap().as_deref(),
            Some("main")
        );
        let missing = c.repository(&c.repo("nope")).await.unwrap_err();
        assert_eq!(
            (missing.kind, missing.status),
            (ApiErrorKind::NotFound, Some(404))
        );
        assert!(missing.server_message.is_some());
        let e = c.default_branch(&c.repo("nope")).await.unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::NotFound);
    }
    // An empty repository has no default branch: Data Center answers 404 there, read as none.
    let empty = fx.tmp.path().join("empty");
    git(
        fx.tmp.path(),
        &["init", "-q", "--bare", empty.to_str().unwrap()],
    );
    fx.emu.add_dc_repo("PROJ", "empty", &empty);
    let dc = fx.dc();
    assert_eq!(dc.default_branch(&dc.repo("empty")).await.unwrap(), None);
}

#[tokio::test]
async fn branches_match_git_for_each_ref() {
    let fx = Fx::start();
    let refs = fx.git(&[
        "for-each-ref",
        "refs/heads",
        "--format=%(refname:short) %(objectname)",
    ]);
    let expected: BTreeMap<String, String> = refs
        .lines()
        .map(|l| {
            let (n, h) = l.split_once(' ').unwrap();
            (n.to_string(), h.to_string())
        })
        .collect();
    assert_eq!(expected.len(), 5);
    for c in fx.both() {
        let r = demo(&c);
        let (branches, pages) = all_pages(10, |cur| {
            let (c, r) = (&c, &r);
            async move { c.branches(r, None, 2, cur.as_ref()).await }
        })
        .await;
        assert_eq!(pages, 3);
        let got: BTreeMap<String, String> = branches
            .iter()
            .map(|b| (b.name.clone(), b.head.clone()))
            .collect();
        assert_eq!(got, expected);
        for b in &branches {
            if c.is_cloud() {
                let date = fx.git(&["log", "-1", "--format=%aI", &b.head]);
                assert_eq!(b.date, Some(ts(&date)), "{}", b.name);
                let msg = fx.git(&["log", "-1", "--format=%B", &b.head]);
                assert_eq!(
                    b.message.as_deref().map(str::trim_end),
                    Some(msg.trim_end())
                );
                assert_eq!(b.is_default, None);
            } else {
                assert_eq!((b.date, &b.message), (None, &None));
                assert_eq!(b.is_default, Some(b.name == "main"));
            }
        }
        let filtered = c.branches(&r, Some("FEAT"), 10, None).await.unwrap();
        let mut names: Vec<&str> = filtered.values.iter().map(|b| b.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["feature", "feature-2"]);
        // An exact name among several that contain it, and a name with a slash.
        let feature = c.branch(&r, "feature").await.unwrap().unwrap();
        assert_eq!(feature.head, expected["feature"]);
        let release = c.branch(&r, "release/1.0").await.unwrap().unwrap();
        assert_eq!(release.head, expected["release/1.0"]);
        assert_eq!(c.branch(&r, "featur").await.unwrap(), None);
        assert_eq!(c.branch(&r, "nope").await.unwrap(), None);
    }
}

/// `git log` of a range: hashes newest first.
fn git_log(fx: &Fx, args: &[&str]) -> Vec<String> {
    let mut a = vec!["log", "--format=%H"];
    a.extend_from_slice(args);
    fx.git(&a).lines().map(str::to_string).collect()
}

#[tokio::test]
async fn commits_match_git_log() {
    let fx = Fx::start();
    for c in fx.both() {
        let r = demo(&c);
        let q = CommitQuery::from(Rev::Branch("feature".into()));
        let (commits, pages) = all_pages(10, |cur| {
            let (c, r, q) = (&c, &r, &q);
            async move { c.commits(r, q, 3, cur.as_ref()).await }
        })
        .await;
        assert_eq!(pages, 3, "7 commits, 3 per page");
        let hashes: Vec<String> = commits.iter().map(|c| c.hash.clone()).collect();
        assert_eq!(hashes, git_log(&fx, &["feature"]));
        for k in &commits {
            let f = |fmt: &str| fx.git(&["log", "-1", &format!("--format={fmt}"), &k.hash]);
            let parents: Vec<String> = f("%P").split_whitespace().map(str::to_string).collect();
            assert_eq!(k.parents, parents);
            assert_eq!(k.author.name, f("%an"));
            assert_eq!(k.author.email.as_deref(), Some(f("%ae").as_str()));
            assert_eq!(k.author.date, Some(ts(&f("%aI"))));
            assert_eq!(k.message.trim_end(), f("%B").trim_end());
            match &k.committer {
                None => assert!(c.is_cloud(), "Data Center records the committer"),
                Some(m) => {
                    assert!(!c.is_cloud());
                    assert_eq!(m.name, f("%cn"));
                    assert_eq!(m.email.as_deref(), Some(f("%ce").as_str()));
                    assert_eq!(m.date, Some(ts(&f("%cI"))));
                }
            }
        }
        // One commit, by full and by abbreviated id.
        let head = fx.rev("feature");
        let one = c.commit(&r, &head).await.unwrap();
        assert_eq!(&one, &commits[0]);
        assert_eq!(c.commit(&r, &head[..10]).await.unwrap().hash, head);
        let e = c
            .commit(&r, "0123456789abcdef0123456789abcdef01234567")
            .await
            .unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::NotFound);

        // A path, and a range with one exclusion: `git log feature -- notes.txt`, `main..feature`.
        let by_path = CommitQuery {
            path: Some("notes.txt".into()),
            ..CommitQuery::from(Rev::Branch("feature".into()))
        };
        let got = c.commits(&r, &by_path, 50, None).await.unwrap();
        let hashes: Vec<String> = got.values.iter().map(|c| c.hash.clone()).collect();
        assert_eq!(hashes, git_log(&fx, &["feature", "--", "notes.txt"]));
        let range = CommitQuery {
            exclude: vec![Rev::Branch("main".into())],
            ..CommitQuery::from(Rev::Branch("feature".into()))
        };
        let got = c.commits(&r, &range, 50, None).await.unwrap();
        let hashes: Vec<String> = got.values.iter().map(|c| c.hash.clone()).collect();
        assert_eq!(hashes, git_log(&fx, &["main..feature"]));
        assert_eq!(hashes.len(), 2);

        let two = CommitQuery {
            exclude: vec![
                Rev::Branch("main".into()),
                Rev::Branch("release/1.0".into()),
            ],
            ..CommitQuery::from(Rev::Branch("feature".into()))
        };
        match c.commits(&r, &two, 50, None).await {
            Ok(p) => {
                assert!(c.is_cloud());
                assert_eq!(p.values.len(), 2);
            }
            Err(e) => {
                assert!(!c.is_cloud());
                assert_eq!(e.kind, ApiErrorKind::Invalid, "{e}");
            }
        }
    }
}

#[tokio::test]
async fn reachability_matches_git_merge_base() {
    let fx = Fx::start();
    let first = fx.git(&["rev-list", "--max-parents=0", "main"]);
    let on_feature = fx.rev("feature~1");
    let ancestor = |a: &str, b: &str| {
        Command::new("git")
            .args(["merge-base", "--is-ancestor", a, b])
            .current_dir(&fx.repo)
            .status()
            .unwrap()
            .success()
    };
    assert!(ancestor(&first, "release/1.0") && !ancestor(&on_feature, "main"));
    for c in fx.both() {
        let r = demo(&c);
        let branch = |n: &str| {
            let (c, r) = (&c, &r);
            let n = n.to_string();
            async move { c.branch(r, &n).await.unwrap().unwrap() }
        };
        let (main, release, feature) = (
            branch("main").await,
            branch("release/1.0").await,
            branch("feature").await,
        );
        assert!(
            c.reachable_from(&r, &first, std::slice::from_ref(&release))
                .await
                .unwrap()
        );
        assert!(
            !c.reachable_from(&r, &on_feature, &[main.clone(), release.clone()])
                .await
                .unwrap()
        );
        assert!(
            c.reachable_from(&r, &on_feature, &[main, feature])
                .await
                .unwrap()
        );
        assert!(!c.reachable_from(&r, &on_feature, &[]).await.unwrap());
    }
}

/// Path → (git status letter, old path, lines added and removed unless binary).
type GitChanges = BTreeMap<String, (char, Option<String>, Option<(u64, u64)>)>;

/// `git diff-tree -r -M` of one commit (or a range): path → (status letter, old path, numstat).
fn git_changes(fx: &Fx, range: &[&str]) -> GitChanges {
    let mut name_status = vec![
        "diff-tree",
        "-r",
        "-M",
        "--root",
        "--no-commit-id",
        "--name-status",
    ];
    name_status.extend_from_slice(range);
    let mut numstat = vec![
        "diff-tree",
        "-r",
        "-M",
        "--root",
        "--no-commit-id",
        "--numstat",
    ];
    numstat.extend_from_slice(range);
    let mut counts = BTreeMap::new();
    for l in fx.git(&numstat).lines() {
        let f: Vec<&str> = l.split('\t').collect();
        // Binary files count `-`; a rename is written `old => new`.
        let lines = f[0].parse().ok().zip(f[1].parse().ok());
        let path = f[2].rsplit(" => ").next().unwrap();
        counts.insert(path.to_string(), lines);
    }
    fx.git(&name_status)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let letter = f[0].chars().next().unwrap();
            let (path, old) = match f.as_slice() {
                [_, old, new] => (new.to_string(), Some(old.to_string())),
                [_, p] => (p.to_string(), None),
                _ => panic!("{l}"),
            };
            let lines = counts.get(&path).copied().flatten();
            (path, (letter, old, lines))
        })
        .collect()
}

fn check_changes(cloud: bool, got: &[ChangedFile], expected: &GitChanges) {
    assert_eq!(got.len(), expected.len(), "{got:?}\n{expected:?}");
    for f in got {
        let (letter, old, lines) = expected
            .get(&f.path)
            .unwrap_or_else(|| panic!("{} not in git's answer", f.path));
        let status = match letter {
            'A' => ChangeStatus::Added,
            'D' => ChangeStatus::Removed,
            'M' | 'T' => ChangeStatus::Modified,
            'R' => ChangeStatus::Renamed,
            other => panic!("git status {other}"),
        };
        assert_eq!(&f.status, &status, "{}", f.path);
        assert_eq!(&f.old_path, old, "{}", f.path);
        if cloud {
            if let Some((a, r)) = lines {
                assert_eq!(
                    (f.lines_added, f.lines_removed),
                    (Some(*a), Some(*r)),
                    "{}",
                    f.path
                );
            }
        } else {
            assert_eq!((f.lines_added, f.lines_removed), (None, None));
        }
    }
}

#[tokio::test]
async fn commit_changes_and_diffs_match_git_diff_tree() {
    let fx = Fx::start();
    let head = fx.rev("feature");
    let root = fx.git(&["rev-list", "--max-parents=0", "main"]);
    for c in fx.both() {
        let r = demo(&c);
        for (commit, limit, pages) in [(&head, 2, 2), (&root, 3, 3)] {
            let (files, n) = all_pages(10, |cur| {
                let (c, r) = (&c, &r);
                async move { c.commit_changes(r, commit, limit, cur.as_ref()).await }
            })
            .await;
            check_changes(c.is_cloud(), &files, &git_changes(&fx, &[commit]));
            assert_eq!(n, pages, "{commit}");
        }
        let diff = c.commit_diff(&r, &head, 1 << 20).await.unwrap();
        assert!(!diff.truncated);
        let text = diff.text();
        assert!(
            text.contains("diff --git a/README.md b/README.md"),
            "{text}"
        );
        assert!(text.contains("+Now with a feature."), "{text}");
        let cut = c.commit_diff(&r, &head, 10).await.unwrap();
        assert!(cut.truncated);
        assert_eq!(cut.bytes.len(), 10);
    }
}

/// `git ls-tree -l` of a tree: name → (object type, mode, size).
fn git_tree(fx: &Fx, treeish: &str) -> BTreeMap<String, (String, String, Option<u64>)> {
    fx.git(&["ls-tree", "-l", treeish])
        .lines()
        .map(|l| {
            let (meta, path) = l.split_once('\t').unwrap();
            let f: Vec<&str> = meta.split_whitespace().collect();
            (
                path.to_string(),
                (f[1].to_string(), f[0].to_string(), f[3].parse().ok()),
            )
        })
        .collect()
}

#[tokio::test]
async fn directories_and_files_match_git_ls_tree_and_show() {
    let fx = Fx::start();
    let head = fx.rev("main");
    for c in fx.both() {
        let r = demo(&c);
        for (dir, limit, pages) in [("", 3, 3), ("docs", 2, 2)] {
            let (entries, n) = all_pages(10, |cur| {
                let (c, r, head) = (&c, &r, &head);
                async move {
                    match c.directory(r, head, dir, limit, cur.as_ref()).await? {
                        Listing::Entries(p) => Ok(p),
                        Listing::NotADirectory => panic!("{dir} is a directory"),
                    }
                }
            })
            .await;
            assert_eq!(n, pages, "{dir}");
            let treeish = if dir.is_empty() {
                head.clone()
            } else {
                format!("{head}:{dir}")
            };
            let expected = git_tree(&fx, &treeish);
            assert_eq!(entries.len(), expected.len());
            for e in &entries {
                let (otype, mode, size) = &expected[&e.name];
                let full = if dir.is_empty() {
                    e.name.clone()
                } else {
                    format!("{dir}/{}", e.name)
                };
                assert_eq!(e.path, full);
                let kind = match (otype.as_str(), mode.as_str()) {
                    ("tree", _) => EntryKind::Dir,
                    ("commit", _) => EntryKind::Submodule,
                    ("blob", "120000") if c.is_cloud() => EntryKind::Symlink,
                    _ => EntryKind::File,
                };
                assert_eq!(e.kind, kind, "{}", e.path);
                if otype == "blob" {
                    assert_eq!(e.size, *size, "{}", e.path);
                    let exec = mode == "100755";
                    assert_eq!(e.executable, c.is_cloud().then_some(exec), "{}", e.path);
                } else if otype == "tree" {
                    assert_eq!(e.size, None);
                }
            }
        }
        let not_dir = c.directory(&r, &head, "README.md", 10, None).await.unwrap();
        assert!(matches!(not_dir, Listing::NotADirectory), "{not_dir:?}");

        for path in ["README.md", "logo.bin", "src/lib.rs"] {
            let want = Command::new("git")
                .args(["show", &format!("{head}:{path}")])
                .current_dir(&fx.repo)
                .output()
                .unwrap()
                .stdout;
            match c.file(&r, &head, path, 1 << 20).await.unwrap() {
                FileRead::Content(f) => {
                    assert_eq!(f.bytes, want, "{path}");
                    assert!(!f.truncated);
                    assert!(f.content_type.is_some());
                }
                FileRead::NotAFile => panic!("{path} is a file"),
            }
        }
        match c.file(&r, &head, "src/lib.rs", 5).await.unwrap() {
            FileRead::Content(f) => {
                assert_eq!((f.bytes.as_slice(), f.truncated), (&b"pub f"[..], true))
            }
            FileRead::NotAFile => panic!("a file"),
        }
        assert!(matches!(
            c.file(&r, &head, "docs", 1 << 20).await.unwrap(),
            FileRead::NotAFile
        ));
        let e = c.file(&r, &head, "nope.txt", 100).await.unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::NotFound);
    }
}

fn seed_pull_requests(fx: &Fx) {
    use bitbucket_emulator::PullRequest as Pr;
    let prs = [
        Pr {
            id: 1,
            title: "Open one".into(),
            description: "Why it matters".into(),
            source_branch: "feature".into(),
            reviewers: vec!["bob".into(), "carol".into()],
            draft: true,
            ..Pr::default()
        },
        Pr {
            id: 2,
            title: "Merged one".into(),
            state: "MERGED".into(),
            source_branch: "hotfix-x".into(),
            author: "dave".into(),
            ..Pr::default()
        },
        Pr {
            id: 3,
            title: "Declined one".into(),
            state: "DECLINED".into(),
            source_branch: "feature-2".into(),
            destination_branch: "release/1.0".into(),
            ..Pr::default()
        },
    ];
    for pr in prs {
        fx.emu.add_cloud_pull_request("acme", "demo", pr.clone());
        fx.emu.add_dc_pull_request("PROJ", "demo", pr);
    }
    fx.emu.add_cloud_pull_request(
        "acme",
        "demo",
        Pr {
            id: 4,
            title: "Superseded".into(),
            state: "SUPERSEDED".into(),
            ..Pr::default()
        },
    );
}

#[tokio::test]
async fn pull_requests_round_trip_with_their_changes() {
    let fx = Fx::start();
    seed_pull_requests(&fx);
    for c in fx.both() {
        let r = demo(&c);
        let every = PrQuery::default();
        let (prs, pages) = all_pages(10, |cur| {
            let (c, r, q) = (&c, &r, &every);
            async move { c.pull_requests(r, q, 2, cur.as_ref()).await }
        })
        .await;
        let ids: Vec<u64> = prs.iter().map(|p| p.id).collect();
        if c.is_cloud() {
            assert_eq!(
                (ids.as_slice(), pages),
                (&[4, 3, 2, 1][..], 2),
                "newest first, every state"
            );
        } else {
            assert_eq!((ids.as_slice(), pages), (&[3, 2, 1][..], 2));
        }
        let one = prs.iter().find(|p| p.id == 1).unwrap();
        assert_eq!(one.title, "Open one");
        assert_eq!(one.description.as_deref(), Some("Why it matters"));
        assert_eq!(one.state, PrState::Open);
        assert!(one.draft);
        assert!(one.author.as_ref().unwrap().answers_to("alice"));
        assert_eq!(
            (one.source.branch.as_str(), one.destination.branch.as_str()),
            ("feature", "main")
        );
        let (src, dst) = (fx.rev("feature"), fx.rev("main"));
        // Cloud abbreviates these to 12 digits.
        assert!(src.starts_with(one.source.commit.as_deref().unwrap()));
        assert!(dst.starts_with(one.destination.commit.as_deref().unwrap()));
        let reviewers = one
            .reviewers
            .as_ref()
            .expect("the client asks for reviewers");
        let names: Vec<&str> = reviewers.iter().map(|r| r.user.label().unwrap()).collect();
        assert_eq!(names, ["bob", "carol"]);
        assert!(reviewers.iter().all(|r| r.approved == Some(false)));
        assert_eq!(one.comment_count, Some(0));
        assert_eq!(one.created, Some(ts("2025-01-02T03:04:05+00:00")));
        assert_eq!(one.updated, Some(ts("2025-01-03T03:04:05+00:00")));
        assert!(one.web_url.as_deref().is_some_and(|u| u.ends_with("/1")));
        assert_eq!(c.pull_request(&r, 1).await.unwrap(), *one);
        assert_eq!(
            prs.iter().find(|p| p.id == 2).unwrap().state,
            PrState::Merged
        );

        let open = c
            .pull_requests(
                &r,
                &PrQuery {
                    state: Some(PrState::Open),
                },
                10,
                None,
            )
            .await
            .unwrap();
        assert_eq!(open.values.iter().map(|p| p.id).collect::<Vec<_>>(), [1]);
        let superseded = c
            .pull_requests(
                &r,
                &PrQuery {
                    state: Some(PrState::Superseded),
                },
                10,
                None,
            )
            .await;
        match superseded {
            Ok(p) => assert_eq!(p.values.iter().map(|p| p.id).collect::<Vec<_>>(), [4]),
            Err(e) => assert!(!c.is_cloud() && e.kind == ApiErrorKind::Invalid, "{e}"),
        }
        let missing = c.pull_request(&r, 99).await.unwrap_err();
        assert_eq!(missing.kind, ApiErrorKind::NotFound);

        // The changes against the merge base, as `git diff main...feature`.
        let base = fx.git(&["merge-base", "main", "feature"]);
        let expected = git_changes(&fx, &[&base, &src]);
        let (files, _) = all_pages(10, |cur| {
            let (c, r) = (&c, &r);
            async move { c.pull_request_changes(r, 1, 2, cur.as_ref()).await }
        })
        .await;
        check_changes(c.is_cloud(), &files, &expected);
        let diff = c.pull_request_diff(&r, 1, 1 << 20).await.unwrap().text();
        assert!(
            diff.contains("diff --git a/feature.txt b/feature.txt"),
            "{diff}"
        );
        assert!(diff.contains("+new feature"), "{diff}");
    }
}

fn seed_pipelines(fx: &Fx) {
    use bitbucket_emulator::{Pipeline as P, PipelineStep as S};
    let step = |uuid: &str, name: &str, result: &str, log: &[u8]| S {
        uuid: uuid.into(),
        name: name.into(),
        result: Some(result.into()),
        log: Some(log.to_vec()),
        ..S::default()
    };
    fx.emu.add_pipeline(
        "acme",
        "demo",
        P {
            uuid: "{11111111-0000-4000-8000-000000000001}".into(),
            build_number: 1,
            created_on: "2025-01-01T10:00:00.000Z".into(),
            ..P::default()
        },
    );
    fx.emu.add_pipeline(
        "acme",
        "demo",
        P {
            uuid: "{11111111-0000-4000-8000-000000000002}".into(),
            build_number: 2,
            result: Some("FAILED".into()),
            ref_name: "feature".into(),
            commit: "feature".into(),
            created_on: "2025-01-02T10:00:00.000Z".into(),
            completed_on: Some("2025-01-02T10:01:40.000Z".into()),
            duration_in_seconds: 100,
            steps: vec![
                step(
                    "{22222222-0000-4000-8000-000000000001}",
                    "Build",
                    "SUCCESSFUL",
                    b"+ make\nok\n",
                ),
                step(
                    "{22222222-0000-4000-8000-000000000002}",
                    "Test",
                    "FAILED",
                    b"+ make test\nboom\n",
                ),
            ],
            ..P::default()
        },
    );
    fx.emu.add_pipeline(
        "acme",
        "demo",
        P {
            uuid: "{11111111-0000-4000-8000-000000000003}".into(),
            build_number: 3,
            state: "IN_PROGRESS".into(),
            result: None,
            completed_on: None,
            created_on: "2025-01-03T10:00:00.000Z".into(),
            ..P::default()
        },
    );
}

#[tokio::test]
async fn pipelines_steps_and_logs_round_trip_on_cloud() {
    let fx = Fx::start();
    seed_pipelines(&fx);
    let c = fx.cloud();
    let r = demo(&c);
    let every = PipelineQuery::default();
    let (runs, pages) = all_pages(10, |cur| {
        let (c, r, q) = (&c, &r, &every);
        async move { c.pipelines(r, q, 2, cur.as_ref()).await }
    })
    .await;
    assert_eq!(pages, 2);
    assert_eq!(
        runs.iter()
            .map(|p| p.build_number.unwrap())
            .collect::<Vec<_>>(),
        [3, 2, 1],
        "newest first"
    );
    let failed = &runs[1];
    assert_eq!(failed.uuid, "{11111111-0000-4000-8000-000000000002}");
    assert_eq!(
        (failed.state.as_str(), failed.result.as_deref()),
        ("COMPLETED", Some("FAILED"))
    );
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.branch.as_deref(), Some("feature"));
    assert_eq!(failed.commit, Some(fx.rev("feature")));
    assert_eq!(failed.trigger.as_deref(), Some("PUSH"));
    assert!(failed.creator.as_ref().unwrap().answers_to("alice"));
    assert_eq!(failed.created, Some(ts("2025-01-02T10:00:00Z")));
    assert_eq!(failed.completed, Some(ts("2025-01-02T10:01:40Z")));
    assert_eq!(failed.duration_secs, Some(100));
    assert_eq!(
        (runs[0].status, runs[0].result.as_deref(), runs[0].completed),
        (RunStatus::InProgress, None, None)
    );
    assert_eq!(runs[2].status, RunStatus::Successful);

    let on_main = c
        .pipelines(
            &r,
            &PipelineQuery {
                branch: Some("main".into()),
                status: None,
            },
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        on_main
            .values
            .iter()
            .map(|p| p.build_number.unwrap())
            .collect::<Vec<_>>(),
        [3, 1]
    );
    for (status, want) in [
        (RunStatus::Failed, vec![2]),
        (RunStatus::InProgress, vec![3]),
        (RunStatus::Successful, vec![1]),
        (RunStatus::Stopped, vec![]),
    ] {
        let q = PipelineQuery {
            branch: None,
            status: Some(status),
        };
        let got = c.pipelines(&r, &q, 10, None).await.unwrap();
        assert_eq!(
            got.values
                .iter()
                .map(|p| p.build_number.unwrap())
                .collect::<Vec<_>>(),
            want,
            "{status:?}"
        );
    }

    let by_uuid = c
        .pipeline(
            &r,
            &PipelineId::parse("11111111-0000-4000-8000-000000000002").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(&by_uuid, failed);
    assert_eq!(
        &c.pipeline(&r, &PipelineId::Number(2)).await.unwrap(),
        failed
    );
    let e = c.pipeline(&r, &PipelineId::Number(99)).await.unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::NotFound, "{e}");

    let (steps, _) = all_pages(10, |cur| {
        let (c, r) = (&c, &r);
        let uuid = failed.uuid.clone();
        async move { c.pipeline_steps(r, &uuid, 1, cur.as_ref()).await }
    })
    .await;
    let names: Vec<Option<&str>> = steps.iter().map(|s| s.name.as_deref()).collect();
    assert_eq!(names, [Some("Build"), Some("Test")]);
    assert_eq!(
        steps.iter().map(|s| s.status).collect::<Vec<_>>(),
        [RunStatus::Successful, RunStatus::Failed]
    );
    assert_eq!(steps[1].duration_secs, Some(50));
    assert!(steps[1].started.is_some() && steps[1].completed.is_some());

    fx.emu.reset_counters();
    let log = c
        .step_log(&r, &failed.uuid, &steps[1].uuid, 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        (log.bytes.as_slice(), log.truncated),
        (&b"+ make test\nboom\n"[..], false)
    );
    let cut = c
        .step_log(&r, &failed.uuid, &steps[1].uuid, 4)
        .await
        .unwrap();
    assert_eq!((cut.bytes.as_slice(), cut.truncated), (&b"+ ma"[..], true));
    // The log came from the other host, which never saw the credential.
    let storage = fx.emu.log_host_requests();
    assert_eq!(storage.len(), 2);
    assert!(
        storage
            .iter()
            .all(|q| q.header("authorization").is_none() && q.status == 200),
        "{storage:?}"
    );
    assert!(
        fx.emu
            .requests()
            .iter()
            .all(|q| q.token.as_deref() == Some("cloud-api:bot"))
    );
    let e = c
        .step_log(
            &r,
            &runs[2].uuid,
            "{33333333-0000-4000-8000-000000000000}",
            100,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::NotFound);

    // Pipelines switched off: every pipelines call says so; the repository is still there.
    fx.emu.set_pipelines_enabled("acme", "demo", false);
    let e = c.pipelines(&r, &every, 10, None).await.unwrap_err();
    assert_eq!(
        (e.kind, e.status),
        (ApiErrorKind::PipelinesDisabled, Some(404)),
        "{e}"
    );
    let e = c
        .pipeline(&r, &PipelineId::parse(&failed.uuid).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::PipelinesDisabled, "{e}");
    let e = c
        .pipeline_steps(&r, &failed.uuid, 10, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::PipelinesDisabled, "{e}");
    let e = c
        .pipelines(&c.repo("nope"), &every, 10, None)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        ApiErrorKind::NotFound,
        "a missing repository is not Pipelines being off"
    );

    let dc = fx.dc();
    let e = dc
        .pipelines(&demo(&dc), &every, 10, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::Invalid);
}

#[tokio::test]
async fn build_statuses_round_trip_on_datacenter() {
    let fx = Fx::start();
    let head = fx.rev("main");
    for (i, (key, state)) in [
        ("unit", "SUCCESSFUL"),
        ("lint", "FAILED"),
        ("deploy", "INPROGRESS"),
    ]
    .into_iter()
    .enumerate()
    {
        fx.emu.add_build_status(bitbucket_emulator::BuildStatus {
            commit: head.clone(),
            key: key.into(),
            state: state.into(),
            name: format!("{key} job"),
            url: format!("https://ci.example.com/{key}"),
            description: format!("{key} says {state}"),
            date_added: 1_735_787_045_000 + i as i64 * 1000,
        });
    }
    let c = fx.dc();
    // The emulator's legacy list is one page whatever `limit` says; real servers page it.
    let (builds, _) = all_pages(10, |cur| {
        let (c, head) = (&c, &head);
        async move { c.build_statuses(head, 2, cur.as_ref()).await }
    })
    .await;
    let keys: Vec<&str> = builds.iter().map(|b| b.key.as_str()).collect();
    assert_eq!(keys, ["deploy", "lint", "unit"], "newest first");
    let statuses: Vec<RunStatus> = builds.iter().map(|b| b.status).collect();
    assert_eq!(
        statuses,
        [
            RunStatus::InProgress,
            RunStatus::Failed,
            RunStatus::Successful
        ]
    );
    let lint = &builds[1];
    assert_eq!(lint.name.as_deref(), Some("lint job"));
    assert_eq!(lint.url.as_deref(), Some("https://ci.example.com/lint"));
    assert_eq!(lint.description.as_deref(), Some("lint says FAILED"));
    assert_eq!(
        lint.created.map(|t| t.timestamp_millis()),
        Some(1_735_787_046_000)
    );
    assert!(
        c.build_statuses(&fx.rev("feature"), 10, None)
            .await
            .unwrap()
            .values
            .is_empty()
    );
    let cloud = fx.cloud();
    assert_eq!(
        cloud
            .build_statuses(&head, 10, None)
            .await
            .unwrap_err()
            .kind,
        ApiErrorKind::Invalid
    );
}

#[tokio::test]
async fn forged_cursors_are_refused_before_any_request() {
    let fx = Fx::start();
    let c = fx.cloud();
    let q = CommitQuery::from(Rev::Branch("main".into()));
    let first = c.commits(&demo(&c), &q, 2, None).await.unwrap();
    let next = first.next.unwrap();
    assert!(
        next.as_str()
            .starts_with("/repositories/acme/demo/commits/main?"),
        "{next}"
    );
    let other = c.repo("other-1");
    let swapped = next.as_str().replace("/demo/", "/other-1/");
    let forged = [
        next.as_str().to_string(), // another repository's call
        swapped.replace("/commits/main", "/refs/branches"), // another endpoint
        next.as_str().replace(
            "/commits/main",
            "/commits/main/../../../other-1/commits/main",
        ),
        next.as_str().replace("/demo/", "/demo%2F..%2Fother-1/"),
        format!(
            "{}/repositories/acme/other-1/commits/main?page=2",
            fx.emu.cloud_api_url()
        ),
        "http://evil.example/2.0/repositories/acme/other-1/commits/main".into(),
        String::new(),
    ];
    fx.emu.reset_counters();
    for f in &forged {
        let e = c
            .commits(&other, &q, 2, Some(&Cursor::from(f.as_str())))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::Invalid, "{f}: {e}");
        assert!(e.to_string().contains("cursor"), "{e}");
    }
    assert!(
        fx.emu.requests().is_empty(),
        "a forged cursor sent a request"
    );
    // The genuine one still works, on its own call, and matches git.
    let second = c
        .commits(&other, &q, 2, Some(&Cursor::from(swapped.as_str())))
        .await
        .unwrap();
    let page2 = c.commits(&demo(&c), &q, 2, Some(&next)).await.unwrap();
    assert_eq!(
        second.values, page2.values,
        "the same repository behind both slugs"
    );
    assert_eq!(page2.values[0].hash, git_log(&fx, &["main"])[2]);

    let dc = fx.dc();
    fx.emu.reset_counters();
    for f in [
        "",
        "2",
        "abc",
        "-1:2",
        "2:0",
        "/api/1.0/projects/X/repos/y/commits",
    ] {
        let e = dc
            .commits(&demo(&dc), &q, 2, Some(&Cursor::from(f)))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::Invalid, "{f}");
    }
    assert!(fx.emu.requests().is_empty());
}

#[tokio::test]
async fn credentials_stay_on_the_origin_and_out_of_every_message() {
    let fx = Fx::start();
    let wrong = fx.cloud_with(WRONG_TOKEN);
    let e = wrong.repository(&demo(&wrong)).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ApiErrorKind::AuthFailed, Some(401)));
    assert!(
        e.to_string().contains("auth.email"),
        "the api-token fix: {e}"
    );
    let dc = fx.dc();
    // A Data Center token without the permission: 401 with AuthorisationException.
    fx.emu
        .add_token(Token::dc_personal("weak", "BBDC-CANARY-weak-0aa1", &[]));
    let weak = Client::new(
        "weak",
        Flavor::DataCenter {
            project: "PROJ".into(),
        },
        Url::parse(&fx.emu.dc_base_url())
            .unwrap()
            .join("rest")
            .unwrap(),
        Some(Credential::new(RestForm::Bearer, "BBDC-CANARY-weak-0aa1", None).unwrap()),
        Fx::opts(),
    )
    .unwrap();
    let forbidden = weak.repository(&demo(&weak)).await.unwrap_err();
    assert_eq!(
        (forbidden.kind, forbidden.status),
        (ApiErrorKind::Forbidden, Some(401)),
        "{forbidden}"
    );
    let mut seen = format!("{e} {e:?} {forbidden} {forbidden:?} {wrong:?} {dc:?} {weak:?}");
    let ok = fx.cloud();
    seen.push_str(&format!("{ok:?}"));
    for canary in [CLOUD_TOKEN, DC_TOKEN, WRONG_TOKEN, "BBDC-CANARY-weak-0aa1"] {
        assert!(!seen.contains(canary), "{canary} leaked");
    }
    let agentenv_error: agentenv::Error = forbidden.into();
    assert_eq!(agentenv_error.kind, agentenv::Kind::Forbidden);
}

/// The emulator answers exactly the recorded error body; the client types it.
#[tokio::test]
async fn recorded_error_bodies_become_typed_errors() {
    let Some(dir) = reference_dir() else { return };
    let fx = Fx::start();
    let read = |rel: &str| std::fs::read(dir.join("samples").join(rel)).unwrap();
    let cases: [(&str, u16, &str, &str, ApiErrorKind); 8] = [
        (
            "cloud/errors/error-404-repository.json",
            404,
            "application/json",
            "GET /2.0/repositories/acme/demo",
            ApiErrorKind::NotFound,
        ),
        (
            "cloud/errors/error-404-src-path.json",
            404,
            "application/json",
            "GET /2.0/repositories/acme/demo",
            ApiErrorKind::NotFound,
        ),
        (
            "cloud/errors/error-400-fields.json",
            400,
            "application/json",
            "GET /2.0/repositories/acme/demo",
            ApiErrorKind::Invalid,
        ),
        (
            "cloud/errors/error-429-rate-limit.txt",
            429,
            "text/plain",
            "GET /2.0/repositories/acme/demo",
            ApiErrorKind::RateLimited,
        ),
        (
            "datacenter/errors/error-404-repository.json",
            404,
            "application/json",
            "GET /rest/api/1.0/projects/PROJ/repos/demo",
            ApiErrorKind::NotFound,
        ),
        (
            "datacenter/errors/error-404-project.json",
            404,
            "application/json",
            "GET /rest/api/1.0/projects/PROJ/repos/demo",
            ApiErrorKind::NotFound,
        ),
        (
            "datacenter/errors/error-400-validation.json",
            400,
            "application/json",
            "GET /rest/api/1.0/projects/PROJ/repos/demo",
            ApiErrorKind::Invalid,
        ),
        // Recorded without an exception name, so it cannot be told from a rejected token:
        // auth failed, with a fix that names both causes.
        (
            "datacenter/errors/error-401-not-permitted.json",
            401,
            "application/json",
            "GET /rest/api/1.0/projects/PROJ/repos/demo",
            ApiErrorKind::AuthFailed,
        ),
    ];
    for (rel, status, content_type, pattern, kind) in cases {
        let body = read(rel);
        let c = if rel.starts_with("cloud") {
            fx.cloud()
        } else {
            fx.dc()
        };
        // Retries see the same body again.
        fx.emu
            .respond_next(pattern, 2, status, content_type, body.clone());
        let e = c.repository(&demo(&c)).await.unwrap_err();
        fx.emu.clear_faults();
        assert_eq!((e.kind, e.status), (kind, Some(status)), "{rel}: {e}");
        let said = e
            .server_message
            .clone()
            .unwrap_or_else(|| panic!("{rel}: no server message"));
        let text = String::from_utf8_lossy(&body);
        let first = match serde_json::from_slice::<Value>(&body) {
            Ok(v) => set(&v, "/error/message")
                .or_else(|| set(&v, "/errors/0/message"))
                .unwrap(),
            Err(_) => text.trim().to_string(),
        };
        assert_eq!(said, first, "{rel}");
        if kind == ApiErrorKind::AuthFailed {
            assert!(e.to_string().contains("REPO_READ"), "{e}");
        }
        if kind == ApiErrorKind::RateLimited {
            assert!(e.retry_after.is_some());
        }
    }
}
