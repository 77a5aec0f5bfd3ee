//! Behaviour: git smart HTTP with every auth form, REST auth, pagination, quirks, faults,
//! counters, the log host, and the binary.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bitbucket_emulator::{
    BuildStatus, Config, Emulator, Pipeline, PipelineStep, PullRequest, Token,
};
use common::{Auth, Http, clone_basic, clone_bearer, fixture};

const API_TOKEN: &str = "ATATT-canary-api-token-0001";
const ACCESS_TOKEN: &str = "ATCTT-canary-access-token-0002";
const DC_PERSONAL: &str = "BBDC-canary-personal-0003";
const DC_PROJECT: &str = "BBDC-canary-project-0004";
const DC_REPO: &str = "BBDC-canary-repo-0005";
const ALL_CLOUD: &[&str] = &[
    "read:workspace:bitbucket",
    "read:repository:bitbucket",
    "read:pullrequest:bitbucket",
    "read:pipeline:bitbucket",
    "read:user:bitbucket",
];

fn emulator(f: &common::Fixture) -> Emulator {
    Emulator::start(
        Config::default()
            .cloud_repo("acme", "demo", &f.bare)
            .cloud_repo("other", "secret", &f.work)
            .dc_repo("PROJ", "demo", &f.work)
            .dc_repo("OTHER", "demo", &f.bare)
            .token(Token::cloud_api(
                "alice@example.com",
                "alice",
                API_TOKEN,
                ALL_CLOUD,
            ))
            .token(
                Token::cloud_access(ACCESS_TOKEN, &["repository", "pullrequest"])
                    .limited_to("acme", None),
            )
            .token(Token::dc_personal("bob", DC_PERSONAL, &["REPO_READ"]))
            .token(Token::dc_project("PROJ", DC_PROJECT, &["PROJECT_READ"]))
            .token(Token::dc_repo("PROJ", "demo", DC_REPO, &["REPO_READ"])),
    )
}

fn head_of(dir: &std::path::Path) -> String {
    let out = common::git(dir, &["rev-parse", "HEAD"], &[]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_no_secret_in(text: &str) {
    for s in [API_TOKEN, ACCESS_TOKEN, DC_PERSONAL, DC_PROJECT, DC_REPO] {
        assert!(!text.contains(s), "secret leaked into: {text}");
    }
}

#[test]
fn cloud_git_accepts_each_auth_form_and_refuses_the_rest() {
    let f = fixture();
    let emu = emulator(&f);
    let url = emu.cloud_clone_url("acme", "demo");
    let d = f.dir.path();
    for (i, user, secret) in [
        (0, "x-bitbucket-api-token-auth", API_TOKEN),
        (1, "alice", API_TOKEN),
        (2, "x-token-auth", ACCESS_TOKEN),
    ] {
        let dest = format!("ok{i}");
        let out = clone_basic(d, &url, &dest, user, secret);
        assert!(
            out.status.success(),
            "{user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(head_of(&d.join(&dest)), f.main.last().unwrap().as_str());
    }
    for (i, user, secret) in [
        (0, "alice@example.com", API_TOKEN), // the email is refused as a git username
        (1, "x-bitbucket-api-token-auth", "wrong-secret"),
        (2, "x-bitbucket-api-token-auth", ACCESS_TOKEN), // access tokens need x-token-auth
        (3, "x-token-auth", API_TOKEN),
    ] {
        let out = clone_basic(d, &url, &format!("bad{i}"), user, secret);
        assert!(!out.status.success(), "{user} should be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("401") || err.contains("Authentication failed"),
            "{err}"
        );
        assert_no_secret_in(&err);
    }
    // The access token is limited to the `acme` workspace.
    let out = clone_basic(
        d,
        &emu.cloud_clone_url("other", "secret"),
        "outside",
        "x-token-auth",
        ACCESS_TOKEN,
    );
    assert!(!out.status.success());
    // Without credentials and without anonymous access: refused.
    let out = common::git(d, &["clone", "-q", &url, "anon"], &[]);
    assert!(!out.status.success());
    // Two clones with the API token, each at least info/refs + upload-pack; refusals carry no token.
    assert!(
        emu.count_token("cloud-api:alice") >= 4,
        "{:?}",
        emu.counts_by_route()
    );
    assert!(
        emu.requests()
            .iter()
            .filter(|r| r.status == 401)
            .all(|r| r.token.is_none())
    );
}

#[test]
fn dc_git_takes_bearer_tokens_and_personal_basic_only() {
    let f = fixture();
    let emu = emulator(&f);
    let url = emu.dc_clone_url("PROJ", "demo");
    let d = f.dir.path();
    for (i, secret) in [DC_PERSONAL, DC_PROJECT, DC_REPO].iter().enumerate() {
        let out = clone_bearer(d, &url, &format!("bearer{i}"), secret);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = clone_basic(d, &url, "basic-personal", "bob", DC_PERSONAL);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Project and repository tokens are Bearer only; wrong user or secret fails.
    for (i, user, secret) in [
        (0, "bob", DC_PROJECT),
        (1, "x-token-auth", DC_REPO),
        (2, "carol", DC_PERSONAL),
        (3, "bob", "nope"),
    ] {
        let out = clone_basic(d, &url, &format!("basic-bad{i}"), user, secret);
        assert!(!out.status.success(), "{user} should be refused");
        assert_no_secret_in(&String::from_utf8_lossy(&out.stderr));
    }
    // Tokens limited to PROJ (or PROJ/demo) cannot read OTHER/demo.
    for secret in [DC_PROJECT, DC_REPO] {
        let out = clone_bearer(d, &emu.dc_clone_url("OTHER", "demo"), "other-proj", secret);
        assert!(!out.status.success());
    }
    let out = clone_bearer(d, &url, "wrong-bearer", "BBDC-not-a-token");
    assert!(!out.status.success());
}

#[test]
fn anonymous_mode_clones_plainly_refuses_pushes_and_still_checks_presented_credentials() {
    let f = fixture();
    let emu = emulator(&f);
    emu.set_anonymous(true);
    let d = f.dir.path();
    let out = common::git(
        d,
        &["clone", "-q", &emu.cloud_clone_url("acme", "demo"), "anon"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Protocol v0 too (GIT_PROTOCOL is passed through only when the client sends it).
    let out = common::git(
        d,
        &[
            "-c",
            "protocol.version=0",
            "clone",
            "-q",
            &emu.dc_clone_url("PROJ", "demo"),
            "anon0",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v2 = emu
        .requests()
        .iter()
        .filter(|r| r.header("git-protocol") == Some("version=2"))
        .count();
    assert!(v2 >= 1, "a default clone speaks protocol v2");

    std::fs::write(d.join("anon/new.txt"), "x").unwrap();
    common::git(&d.join("anon"), &["add", "."], &[]);
    common::git(&d.join("anon"), &["commit", "-qm", "x"], &[]);
    let out = common::git(&d.join("anon"), &["push", "origin", "main"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));

    // git sends Basic credentials only after a 401, so present a wrong one proactively.
    let out = clone_bearer(
        d,
        &emu.dc_clone_url("PROJ", "demo"),
        "wrongcreds",
        "BBDC-wrong",
    );
    assert!(
        !out.status.success(),
        "a wrong credential is refused even when anonymous reads are allowed"
    );
}

#[test]
fn git_pack_cut_mid_body_fails_the_clone_once_then_recovers() {
    let f = fixture();
    let emu = emulator(&f);
    emu.set_anonymous(true);
    let d = f.dir.path();
    // Protocol v2 first POSTs ls-refs (short, passes whole); the pack response is cut.
    emu.reset_next("POST /*/git-upload-pack", 1, 1000);
    let out = common::git(
        d,
        &["clone", "-q", &emu.cloud_clone_url("acme", "demo"), "cut"],
        &[],
    );
    assert!(!out.status.success(), "the cut pack must fail the clone");
    let out = common::git(
        d,
        &["clone", "-q", &emu.cloud_clone_url("acme", "demo"), "whole"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        emu.count("POST /{workspace}/{repo_slug}.git/git-upload-pack"),
        4
    );
}

#[test]
fn gzip_request_bodies_and_git_protocol_reach_git_http_backend() {
    let f = fixture();
    let emu = emulator(&f);
    emu.set_anonymous(true);
    let tip = f.main.last().unwrap();
    // A protocol v0 negotiation: want the tip, done; gzip-compressed by the real gzip tool.
    let request = format!("0032want {tip}\n00000009done\n");
    let mut gz = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    gz.stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let compressed = gz.wait_with_output().unwrap().stdout;
    let http = Http::new();
    let url = format!("{}/git-upload-pack", emu.cloud_clone_url("acme", "demo"));
    let r = http.post(
        &url,
        &[
            ("Content-Type", "application/x-git-upload-pack-request"),
            ("Content-Encoding", "gzip"),
        ],
        compressed,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.body.starts_with(b"0008NAK\nPACK"),
        "{:?}",
        &r.body[..r.body.len().min(16)]
    );

    // Protocol v2 only happens when Git-Protocol reaches the backend.
    let r = http.get_with(
        &format!(
            "{}/info/refs?service=git-upload-pack",
            emu.cloud_clone_url("acme", "demo")
        ),
        Auth::None,
        &[("Git-Protocol", "version=2")],
    );
    assert!(r.text().contains("version 2"), "{}", r.text());
    let r = http.get(
        &format!(
            "{}/info/refs?service=git-upload-pack",
            emu.cloud_clone_url("acme", "demo")
        ),
        Auth::None,
    );
    assert!(!r.text().contains("version 2") && r.text().contains(tip.as_str()));
}

#[test]
fn rest_auth_follows_each_product_rules() {
    let f = fixture();
    let emu = emulator(&f);
    emu.add_token(Token::cloud_app_password("alice", "app-password-canary"));
    emu.add_token(
        Token::cloud_api("eve@example.com", "eve", "expired-canary", ALL_CLOUD).expired(),
    );
    emu.add_token(Token::dc_personal("dan", "revoked-canary", &["REPO_READ"]).with_id("dan"));
    emu.revoke_token("dan");
    let http = Http::new();
    let repo = format!("{}/repositories/acme/demo", emu.cloud_api_url());
    assert_eq!(
        http.get(&repo, Auth::Basic("alice@example.com", API_TOKEN))
            .status,
        200
    );
    assert_eq!(http.get(&repo, Auth::Bearer(ACCESS_TOKEN)).status, 200);
    for bad in [
        Auth::Basic("alice", API_TOKEN), // REST wants the email
        Auth::Bearer(API_TOKEN),
        Auth::Basic("x-token-auth", ACCESS_TOKEN),
        Auth::Basic("alice", "app-password-canary"),
        Auth::Basic("eve@example.com", "expired-canary"),
        Auth::None,
    ] {
        let r = http.get(&repo, bad);
        assert_eq!(r.status, 401);
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        assert_eq!(
            r.header("www-authenticate").as_deref(),
            Some("Basic realm=\"Bitbucket.org HTTP\"")
        );
        assert!(r.header("retry-after").is_none());
    }
    let user = http
        .get(
            &format!("{}/user", emu.cloud_api_url()),
            Auth::Basic("alice@example.com", API_TOKEN),
        )
        .json();
    assert_eq!(user["username"], "alice");

    let dc = format!("{}/projects/PROJ/repos/demo", emu.dc_api_url());
    let latest = format!(
        "{}/rest/api/latest/projects/PROJ/repos/demo",
        emu.base_url()
    );
    assert_eq!(http.get(&dc, Auth::Bearer(DC_PERSONAL)).status, 200);
    assert_eq!(
        http.get(&latest, Auth::Basic("bob", DC_PERSONAL)).status,
        200
    );
    assert_eq!(http.get(&dc, Auth::Bearer(DC_PROJECT)).status, 200);
    assert_eq!(http.get(&dc, Auth::Bearer(DC_REPO)).status, 200);
    for bad in [
        Auth::Basic("bob", DC_PROJECT),
        Auth::Basic("dan", "revoked-canary"),
        Auth::Bearer("revoked-canary"),
    ] {
        let r = http.get(&dc, bad);
        assert_eq!(r.status, 401);
        assert!(
            r.json()["errors"][0]["exceptionName"]
                .as_str()
                .unwrap()
                .contains("Exception")
        );
    }
    // A project token for PROJ cannot see OTHER: 401 AuthorisationException, as DC answers.
    let r = http.get(
        &format!("{}/projects/OTHER/repos/demo", emu.dc_api_url()),
        Auth::Bearer(DC_PROJECT),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["errors"][0]["exceptionName"],
        "com.atlassian.bitbucket.AuthorisationException"
    );
    // The server answers application properties without credentials.
    assert_eq!(
        http.get(
            &format!("{}/application-properties", emu.dc_api_url()),
            Auth::None
        )
        .json()["version"],
        "9.4.0"
    );
}

#[test]
fn missing_scopes_fail_as_bitbucket_fails_them() {
    let f = fixture();
    let emu = emulator(&f);
    emu.add_token(Token::cloud_api(
        "rita@example.com",
        "rita",
        "repo-only-canary",
        &["read:repository:bitbucket"],
    ));
    emu.add_token(Token::dc_personal("nobody", "no-perm-canary", &[]));
    let http = Http::new();
    let base = format!("{}/repositories/acme/demo", emu.cloud_api_url());
    let auth = || Auth::Basic("rita@example.com", "repo-only-canary");
    assert_eq!(http.get(&base, auth()).status, 200);
    for path in ["/pullrequests", "/pipelines/"] {
        let r = http.get(&format!("{base}{path}"), auth());
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(
            r.json()["error"]["message"],
            "Your credentials lack one or more required privilege scopes."
        );
    }
    // API-token scopes never imply each other: pullrequest does not grant repository.
    emu.add_token(Token::cloud_api(
        "pam@example.com",
        "pam",
        "pr-only-canary",
        &["read:pullrequest:bitbucket"],
    ));
    assert_eq!(
        http.get(&base, Auth::Basic("pam@example.com", "pr-only-canary"))
            .status,
        403
    );
    // OAuth-style access-token scopes do: `pullrequest` implies `repository`.
    emu.add_token(Token::cloud_access("oauth-pr-canary", &["pullrequest"]));
    assert_eq!(http.get(&base, Auth::Bearer("oauth-pr-canary")).status, 200);
    // The workspace-limited access token cannot see other workspaces' repositories.
    let r = http.get(
        &format!("{}/repositories/other/secret", emu.cloud_api_url()),
        Auth::Bearer(ACCESS_TOKEN),
    );
    assert_eq!(r.status, 404);

    let r = http.get(
        &format!("{}/projects/PROJ/repos/demo/commits", emu.dc_api_url()),
        Auth::Bearer("no-perm-canary"),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["errors"][0]["exceptionName"],
        "com.atlassian.bitbucket.AuthorisationException"
    );
    let out = clone_bearer(
        f.dir.path(),
        &emu.dc_clone_url("PROJ", "demo"),
        "noperm",
        "no-perm-canary",
    );
    assert!(!out.status.success());
}

#[test]
fn cloud_pages_with_next_links_and_opaque_tokens() {
    let f = fixture();
    let emu = emulator(&f);
    let http = Http::new();
    let auth = || Auth::Basic("alice@example.com", API_TOKEN);
    // List style: page numbers, size, previous.
    let first = http
        .get(
            &format!(
                "{}/repositories/acme/demo/refs/branches?pagelen=1",
                emu.cloud_api_url()
            ),
            auth(),
        )
        .json();
    assert_eq!(first["size"], 2);
    assert_eq!(first["values"][0]["name"], "feature");
    let second = http.get(first["next"].as_str().unwrap(), auth()).json();
    assert_eq!(second["values"][0]["name"], "main");
    assert!(second.get("next").is_none() && second["previous"].is_string());

    // Iterator style: commits walk with an opaque token, no size/page.
    let mut url = format!(
        "{}/repositories/acme/demo/commits/main?pagelen=5",
        emu.cloud_api_url()
    );
    let mut seen = Vec::new();
    loop {
        let page = http.get(&url, auth()).json();
        assert!(page.get("size").is_none() && page.get("previous").is_none());
        seen.extend(
            page["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["hash"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(n) => {
                let token = n.rsplit("page=").next().unwrap();
                assert!(
                    !token.chars().all(|c| c.is_ascii_digit()),
                    "next must be opaque: {n}"
                );
                url = n.to_string();
            }
            None => break,
        }
    }
    let expected: Vec<String> = f.main.iter().rev().cloned().collect();
    assert_eq!(seen, expected);
    // A token a client made up is refused.
    let r = http.get(
        &format!(
            "{}/repositories/acme/demo/commits/main?page=2",
            emu.cloud_api_url()
        ),
        auth(),
    );
    assert_eq!(r.status, 400);

    // include/exclude and a path filter.
    let url = format!(
        "{}/repositories/acme/demo/commits?include=feature&exclude=main&pagelen=50",
        emu.cloud_api_url()
    );
    let v = http.get(&url, auth()).json();
    let hashes: Vec<&str> = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, vec![f.feature[1].as_str(), f.feature[0].as_str()]);
    let url = format!(
        "{}/repositories/acme/demo/commits/main?path=src/lib.rs&pagelen=50",
        emu.cloud_api_url()
    );
    assert_eq!(
        http.get(&url, auth()).json()["values"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn dc_pages_with_start_limit_and_next_page_start() {
    let f = fixture();
    let emu = emulator(&f);
    let http = Http::new();
    let mut start = 0;
    let mut all = Vec::new();
    loop {
        let url = format!(
            "{}/projects/PROJ/repos/demo/commits?until=main&limit=5&start={start}",
            emu.dc_api_url()
        );
        let page = http.get(&url, Auth::Bearer(DC_PERSONAL)).json();
        assert_eq!(page["limit"], 5);
        all.extend(
            page["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        if page["isLastPage"] == true {
            assert!(page["nextPageStart"].is_null());
            break;
        }
        start = page["nextPageStart"].as_u64().unwrap() as usize;
    }
    assert_eq!(all.len(), 12);
    let since = format!(
        "{}/projects/PROJ/repos/demo/commits?until=feature&since=main",
        emu.dc_api_url()
    );
    assert_eq!(
        http.get(&since, Auth::Bearer(DC_PERSONAL)).json()["values"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // File lines page like the recorded bodies: `lines`, not `values`.
    let url = format!(
        "{}/projects/PROJ/repos/demo/browse/docs/guide.md?limit=4",
        emu.dc_api_url()
    );
    let page = http.get(&url, Auth::Bearer(DC_PERSONAL)).json();
    assert_eq!(page["lines"][0]["text"], "line 0");
    assert_eq!(page["nextPageStart"], 4);
    let url = format!("{}/projects/PROJ/repos/demo/browse/src", emu.dc_api_url());
    let dir = http.get(&url, Auth::Bearer(DC_PERSONAL)).json();
    assert_eq!(dir["children"]["values"][0]["path"]["toString"], "lib.rs");
}

#[test]
fn quirks_redirects_rate_limit_text_and_log_host() {
    let f = fixture();
    let emu = emulator(&f);
    emu.add_cloud_pull_request(
        "acme",
        "demo",
        PullRequest {
            id: 7,
            source_branch: "feature".into(),
            ..Default::default()
        },
    );
    emu.add_pipeline(
        "acme",
        "demo",
        Pipeline {
            steps: vec![PipelineStep {
                log: Some(b"+ cargo test\nok\n".to_vec()),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let http = Http::new();
    let auth = || Auth::Basic("alice@example.com", API_TOKEN);
    let base = format!("{}/repositories/acme/demo", emu.cloud_api_url());
    let r = http.get(&format!("{base}/pullrequests/7/diffstat"), auth());
    assert_eq!(r.status, 302);
    let loc = r.header("location").unwrap();
    assert!(loc.contains("/diffstat/"), "{loc}");
    let stat = http.get(&loc, auth()).json();
    let statuses: Vec<&str> = stat["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"added") && statuses.contains(&"modified"),
        "{statuses:?}"
    );
    let diff = http.get_following(&format!("{base}/pullrequests/7/diff"), auth());
    assert!(diff.text().contains("+pub fn two()"), "{}", diff.text());

    // Step log: 307 to the log host; following it with a client that drops credentials on
    // cross-origin redirects works, and the log host never sees Authorization.
    let step = "%7Baaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee%7D";
    let pipe = "%7B11111111-2222-4333-8444-555555555555%7D";
    let log_url = format!("{base}/pipelines/{pipe}/steps/{step}/log");
    let r = http.get(&log_url, auth());
    assert_eq!(r.status, 307);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with(&emu.log_host_url())
    );
    let log = http.get_following(&log_url, auth());
    assert_eq!(log.status, 200);
    assert_eq!(log.body, b"+ cargo test\nok\n");
    let seen = emu.log_host_requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].header("authorization").is_none());
    // A client that forwards the credential is refused by the storage host, and it is recorded.
    let forwarded = http.get(&r.header("location").unwrap(), Auth::Bearer("leaked"));
    assert_eq!(forwarded.status, 400);
    assert!(
        emu.log_host_requests()
            .iter()
            .any(|r| r.header("authorization").is_some())
    );

    // Raw files: attachment, content ETag, 304 on a match.
    let raw = http.get(&format!("{base}/src/main/src/lib.rs"), auth());
    assert_eq!(raw.text(), "pub fn one() -> u32 {\n    9\n}\n");
    assert_eq!(
        raw.header("content-disposition").as_deref(),
        Some("attachment; filename=\"lib.rs\"")
    );
    let etag = raw.header("etag").unwrap();
    assert_eq!(
        http.get_with(
            &format!("{base}/src/main/src/lib.rs"),
            auth(),
            &[("If-None-Match", &etag)]
        )
        .status,
        304
    );
    // The root listing needs its trailing slash.
    assert_eq!(http.get(&format!("{base}/src/main"), auth()).status, 404);
    // Dot segments never reach git http-backend (sent raw: HTTP clients would resolve them).
    emu.set_anonymous(true);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", emu.port())).unwrap();
    write!(tcp, "GET /acme/demo.git/../work/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut tcp, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    emu.set_anonymous(false);

    emu.fail_next("/2.0/repositories/*/pullrequests*", 1, 429);
    let r = http.get(&format!("{base}/pullrequests"), auth());
    assert_eq!(r.status, 429);
    assert_eq!(r.text(), "Rate limit for this resource has been exceeded");
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(r.header("retry-after").is_none());
    assert_eq!(
        http.get(&format!("{base}/pullrequests"), auth()).status,
        200
    );
}

#[test]
fn faults_latency_and_counters() {
    let f = fixture();
    let emu = emulator(&f);
    let http = Http::new();
    let dc = format!("{}/projects/PROJ/repos/demo/branches", emu.dc_api_url());
    emu.fail_next("GET /rest/api/*/branches", 2, 503);
    for _ in 0..2 {
        let r = http.get(&dc, Auth::Bearer(DC_PERSONAL));
        assert_eq!(r.status, 503);
        assert!(r.json()["errors"].is_array());
    }
    assert_eq!(http.get(&dc, Auth::Bearer(DC_PERSONAL)).status, 200);
    // A method in the pattern restricts it; this one never matches a GET.
    emu.fail_next("POST /rest/api/*/branches", 1, 500);
    assert_eq!(http.get(&dc, Auth::Bearer(DC_PERSONAL)).status, 200);

    emu.add_latency("/2.0/user", Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(
        http.get(
            &format!("{}/user", emu.cloud_api_url()),
            Auth::Basic("alice@example.com", API_TOKEN)
        )
        .status,
        200
    );
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "the injected delay is a lower bound"
    );
    emu.clear_faults();

    // A REST body cut after 10 bytes cannot be read whole.
    emu.set_anonymous(true);
    emu.reset_next("/2.0/repositories/acme/demo", 1, 10);
    assert!(
        http.get_body_result(&format!("{}/repositories/acme/demo", emu.cloud_api_url()))
            .is_err()
    );
    assert!(
        http.get_body_result(&format!("{}/repositories/acme/demo", emu.cloud_api_url()))
            .is_ok()
    );

    let routes = emu.counts_by_route();
    assert_eq!(
        routes["GET /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/branches"],
        4
    );
    assert_eq!(
        emu.count_token("dc-personal:bob"),
        2,
        "failed-by-fault calls carry no token"
    );
    assert_eq!(emu.count("/2.0/*"), 3);
    let rec = emu.requests();
    assert!(rec.iter().any(|r| {
        r.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
    }));
    emu.reset_counters();
    assert_eq!(emu.count("*"), 0);
}

#[test]
fn fixtures_feed_pull_requests_pipelines_and_build_statuses() {
    let f = fixture();
    let emu = emulator(&f);
    for (id, state) in [(1, "MERGED"), (2, "OPEN"), (3, "DECLINED")] {
        let pr = PullRequest {
            id,
            state: state.into(),
            ..Default::default()
        };
        emu.add_cloud_pull_request("acme", "demo", pr.clone());
        emu.add_dc_pull_request("PROJ", "demo", pr);
    }
    emu.add_build_status(BuildStatus {
        commit: f.main[11].clone(),
        ..Default::default()
    });
    emu.add_build_status(BuildStatus {
        commit: f.main[11].clone(),
        key: "lint".into(),
        state: "FAILED".into(),
        ..Default::default()
    });
    let http = Http::new();
    let cloud = format!(
        "{}/repositories/acme/demo/pullrequests",
        emu.cloud_api_url()
    );
    let auth = || Auth::Basic("alice@example.com", API_TOKEN);
    let ids = |v: serde_json::Value| -> Vec<u64> {
        v["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(http.get(&cloud, auth()).json()), vec![2]);
    assert_eq!(
        ids(http
            .get(&format!("{cloud}?state=MERGED&state=DECLINED"), auth())
            .json()),
        vec![3, 1]
    );
    let dc = format!(
        "{}/projects/PROJ/repos/demo/pull-requests",
        emu.dc_api_url()
    );
    assert_eq!(
        ids(http
            .get(&format!("{dc}?state=ALL"), Auth::Bearer(DC_PERSONAL))
            .json()),
        vec![3, 2, 1]
    );
    let one = http
        .get(&format!("{dc}/2"), Auth::Bearer(DC_PERSONAL))
        .json();
    assert_eq!(one["fromRef"]["latestCommit"], f.feature[1].as_str());
    // Raw and structured pull request diffs: source tip against the merge base.
    let raw = http.get(&format!("{dc}/2.diff"), Auth::Bearer(DC_PERSONAL));
    assert!(
        raw.text().contains("+pub fn two() -> u32 {"),
        "{}",
        raw.text()
    );
    let diff = http
        .get(&format!("{dc}/2/diff"), Auth::Bearer(DC_PERSONAL))
        .json();
    let new_rs = diff["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"]["toString"] == "src/new.rs")
        .unwrap();
    assert!(
        new_rs.get("source").is_none(),
        "an added file has no source"
    );
    assert_eq!(new_rs["hunks"][0]["segments"][0]["type"], "ADDED");
    assert_eq!(
        new_rs["hunks"][0]["segments"][0]["lines"][0]["line"],
        "pub fn two() -> u32 {"
    );
    let only = http
        .get(
            &format!("{dc}/2/diff/README.md?contextLines=0"),
            Auth::Bearer(DC_PERSONAL),
        )
        .json();
    assert_eq!(only["diffs"].as_array().unwrap().len(), 1);
    let kinds: Vec<&str> = only["diffs"][0]["hunks"][0]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["REMOVED", "ADDED"]);
    let legacy = http
        .get(
            &format!(
                "{}/rest/build-status/1.0/commits/{}",
                emu.base_url(),
                f.main[11]
            ),
            Auth::Bearer(DC_PERSONAL),
        )
        .json();
    assert_eq!(legacy["values"].as_array().unwrap().len(), 2);
    let url = format!(
        "{}/projects/PROJ/repos/demo/commits/{}/builds?key=lint",
        emu.dc_api_url(),
        f.main[11]
    );
    assert_eq!(
        http.get(&url, Auth::Bearer(DC_PERSONAL)).json()["state"],
        "FAILED"
    );
}

#[test]
fn running_step_logs_come_in_ranges_and_workspaces_resolve_by_uuid() {
    let f = fixture();
    let emu = emulator(&f);
    let running = PipelineStep {
        state: "IN_PROGRESS".into(),
        result: None,
        completed_on: None,
        log: Some(b"0123456789".to_vec()),
        ..Default::default()
    };
    emu.add_pipeline(
        "acme",
        "demo",
        Pipeline {
            state: "IN_PROGRESS".into(),
            result: None,
            steps: vec![running],
            ..Default::default()
        },
    );
    let http = Http::new();
    let auth = Auth::Basic("alice@example.com", API_TOKEN);
    let log = format!(
        "{}/repositories/acme/demo/pipelines/%7B11111111-2222-4333-8444-555555555555%7D/steps/%7Baaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee%7D/log",
        emu.cloud_api_url()
    );
    let whole = http.get(&log, auth);
    assert_eq!(
        (whole.status, whole.body.as_slice()),
        (200, &b"0123456789"[..])
    );
    let part = http.get_with(&log, auth, &[("Range", "bytes=4-")]);
    assert_eq!((part.status, part.body.as_slice()), (206, &b"456789"[..]));
    assert_eq!(
        part.header("content-range").as_deref(),
        Some("bytes 4-9/10")
    );
    assert_eq!(
        http.get_with(&log, auth, &[("Range", "bytes=10-")]).status,
        416
    );
    assert!(
        emu.log_host_requests().is_empty(),
        "running logs are not redirected"
    );

    let ws = http
        .get(&format!("{}/workspaces/acme", emu.cloud_api_url()), auth)
        .json();
    let by_uuid = format!(
        "{}/repositories/{}",
        emu.cloud_api_url(),
        ws["uuid"]
            .as_str()
            .unwrap()
            .replace('{', "%7B")
            .replace('}', "%7D")
    );
    assert_eq!(
        http.get(&by_uuid, auth).json()["values"][0]["full_name"],
        "acme/demo"
    );
    assert_eq!(
        http.get(
            &format!("{}/repositories/nobody", emu.cloud_api_url()),
            auth
        )
        .status,
        404
    );

    let found = http
        .get(
            &format!("{}/repos?name=dem&projectkey=proj", emu.dc_api_url()),
            Auth::Bearer(DC_PERSONAL),
        )
        .json();
    assert_eq!(found["size"], 1);
    assert_eq!(found["values"][0]["project"]["key"], "PROJ");
}

#[test]
fn binary_prints_its_url_first_serves_and_stops_when_stdin_closes() {
    let f = fixture();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bitbucket-emulator"))
        .args(["--anonymous", "--cloud-repo"])
        .arg(format!("acme/bench={}", f.bare.display()))
        .args(["--dc-repo"])
        .arg(format!("PROJ/bench={}", f.work.display()))
        .args([
            "--token",
            "cloud-api:a@example.com:alice:bin-canary:read:repository:bitbucket",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines.next().unwrap().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let d = f.dir.path();
    let out = common::git(
        d,
        &[
            "clone",
            "-q",
            &format!("{base}/acme/bench.git"),
            "bin-clone",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = clone_basic(
        d,
        &format!("{base}/acme/bench.git"),
        "bin-auth",
        "alice",
        "bin-canary",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::git(
        d,
        &[
            "clone",
            "-q",
            &format!("{base}/scm/proj/bench.git"),
            "bin-dc",
        ],
        &[],
    );
    assert!(out.status.success());
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.flush();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());

    let bad = Command::new(env!("CARGO_BIN_EXE_bitbucket-emulator"))
        .args(["--token", "cloud-api:oops"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--token"));
    let bad = Command::new(env!("CARGO_BIN_EXE_bitbucket-emulator"))
        .args(["--cloud-repo", "acme/x=/definitely/not/here"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/definitely/not/here"));
}

#[tokio::test]
async fn usable_from_async_tests_too() {
    let f = fixture();
    let emu = emulator(&f);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .get(format!(
            "{}/projects/PROJ/repos/demo/default-branch",
            emu.dc_api_url()
        ))
        .bearer_auth(DC_PERSONAL)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["displayId"], "main");
    drop(emu); // stops and joins without tripping over the caller's runtime
}
