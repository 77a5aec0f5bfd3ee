//! The REST client's guarantees, seen through the tools and the emulator's request counters:
//! the request budget, the cache and ETag revalidation, bounded retries on 429/5xx, typed
//! errors for 401/403/404, Pipelines not enabled, and malformed or truncated JSON. Every case is
//! the emulator's: its faults (`fail_next`, `rate_limit_next`, `respond_next`, `reset_next`) and
//! switches (`set_pipelines_enabled`) stand in for the server misbehaving.

use std::sync::Arc;
use std::time::Duration;

use agentenv::bitbucket::{Client, FileRead, Options};
use agentenv::secrets::ResolvedSecrets;
use agentenv::spec::LoadedEnv;
use agentenv::tools::{Context, Kind};
use bitbucket_emulator::{PullRequest, Token};
use serde_json::json;

use crate::support::api::{CLOUD_TOKEN, DC_TOKEN, EMAIL, Fixture, Seen, WRONG_TOKEN};

fn seed(f: &Fixture) {
    for id in 1..=3 {
        f.emu.add_cloud_pull_request(
            "acme",
            "payments-api",
            PullRequest {
                id,
                ..PullRequest::default()
            },
        );
        f.emu.add_dc_pull_request(
            "PAY",
            "payments-core",
            PullRequest {
                id,
                ..PullRequest::default()
            },
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_calls_never_exceeds_the_budget() {
    let f = Fixture::standard();
    seed(&f);
    let mut ctx = f.context_with(Duration::ZERO, &[]);
    ctx.api.budget_override = Some((5, Duration::from_secs(3600)));
    let ctx = Arc::new(ctx);
    let mut seen = Seen::default();
    let mut limited = 0;
    for i in 0..25 {
        let state = ["OPEN", "MERGED", "ALL"][i % 3];
        match seen
            .call(
                &ctx,
                "list_pull_requests",
                json!({"repo": "payments-api", "state": state}),
            )
            .await
        {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.kind, Kind::RateLimited, "{e}");
                let wait = e
                    .retry_after
                    .map(|d| d.as_secs().max(1))
                    .expect("a wait time");
                assert!(wait > 3500 && wait <= 3600, "{wait}");
                assert!(e.to_string().contains("budget"), "{e}");
                limited += 1;
            }
        }
    }
    assert_eq!(f.emu.requests().len(), 5, "exactly the budget was spent");
    assert_eq!(limited, 20);
    // The budget is per provider: Data Center still has its own.
    seen.ok(&ctx, "list_pull_requests", json!({"repo": "payments-core"}))
        .await;
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_call_within_the_ttl_makes_no_request() {
    let f = Fixture::standard();
    seed(&f);
    let ctx = Arc::new(f.context_with(Duration::from_secs(60), &[]));
    let mut seen = Seen::default();
    for repo in ["payments-api", "payments-core"] {
        f.emu.reset_counters();
        let a = seen
            .ok(&ctx, "list_pull_requests", json!({"repo": repo}))
            .await;
        let b = seen
            .ok(&ctx, "list_pull_requests", json!({"repo": repo}))
            .await;
        assert_eq!(a, b);
        assert_eq!(
            f.emu.requests().len(),
            1,
            "{repo}: the second call came from the cache"
        );
        seen.ok(
            &ctx,
            "list_pull_requests",
            json!({"repo": repo, "state": "MERGED"}),
        )
        .await;
        assert_eq!(
            f.emu.requests().len(),
            2,
            "{repo}: other arguments are another request"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_entry_is_revalidated_with_its_etag() {
    let f = Fixture::standard();
    let env = f.env();
    let secrets =
        ResolvedSecrets::from_values([("CLOUD_TOKEN".to_string(), CLOUD_TOKEN.to_string())].into());
    let opts = Options {
        cache_ttl: Duration::ZERO,
        ..Options::default()
    };
    let client =
        Client::from_provider("cloud", &env.spec.providers["cloud"], &secrets, opts).unwrap();
    let repo = client.repo("payments-api");
    let read = || client.file(&repo, "main", "README.md", 1 << 20);
    let bytes = |r: FileRead| match r {
        FileRead::Content(c) => c.bytes,
        FileRead::NotAFile => panic!("README.md is a file"),
    };
    let first = bytes(read().await.unwrap());
    let second = bytes(read().await.unwrap());
    assert_eq!(first, b"# payments\n");
    assert_eq!(second, first);
    let reqs = f.emu.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].header("if-none-match").is_none());
    assert!(reqs[1].header("if-none-match").is_some(), "{:?}", reqs[1]);
    assert_eq!(reqs[1].status, 304);
}

/// What a pull request list sees after a fault: an answer after `requests` requests, or an
/// error of `kind` whose message has `word`.
enum Then {
    Answer,
    Fails(Kind, &'static str),
}

type Fault = fn(&bitbucket_emulator::Emulator, &str);

/// Each fault on the pull request list of each back end: transient ones are retried (3 times
/// at most) and then answer, persistent ones end in a typed error, 404 is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_then_answer_or_end_in_a_typed_error() {
    let f = Fixture::standard();
    seed(&f);
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let cases: [(&str, Fault, Then, usize); 9] = [
        ("two 429s", |e, p| e.fail_next(p, 2, 429), Then::Answer, 3),
        ("two 503s", |e, p| e.fail_next(p, 2, 503), Then::Answer, 3),
        ("two 500s", |e, p| e.fail_next(p, 2, 500), Then::Answer, 3),
        // A short `Retry-After` (Data Center's limiter sends one) is waited out.
        (
            "two 429s, Retry-After: 1",
            |e, p| e.rate_limit_next(p, 2, 1),
            Then::Answer,
            3,
        ),
        (
            "a connection cut mid-JSON",
            |e, p| e.reset_next(p, 1, 40),
            Then::Answer,
            2,
        ),
        (
            "429 every time",
            |e, p| e.fail_next(p, 100, 429),
            Then::Fails(Kind::RateLimited, "429"),
            4,
        ),
        (
            "502 every time",
            |e, p| e.fail_next(p, 100, 502),
            Then::Fails(Kind::Unavailable, "502"),
            4,
        ),
        (
            "cut every time",
            |e, p| e.reset_next(p, 100, 40),
            Then::Fails(Kind::Unavailable, "dropped"),
            4,
        ),
        (
            "404",
            |e, p| e.fail_next(p, 100, 404),
            Then::Fails(Kind::NotFound, "404"),
            1,
        ),
    ];
    for (repo, list, _) in PR_ROUTES {
        for (fault, inject, then, requests) in &cases {
            f.emu.clear_faults();
            f.emu.reset_counters();
            inject(&f.emu, list);
            let args = json!({"repo": repo});
            match then {
                Then::Answer => {
                    let v = seen.ok(&ctx, "list_pull_requests", args).await;
                    assert_eq!(v["pull_requests"].as_array().unwrap().len(), 3, "{fault}");
                }
                Then::Fails(kind, word) => {
                    let e = seen.err(&ctx, "list_pull_requests", args, *kind).await;
                    assert!(e.to_string().contains(word), "{repo} {fault}: {e}");
                    if *kind == Kind::RateLimited {
                        assert!(e.retry_after.is_some_and(|d| !d.is_zero()), "{e:?}");
                    }
                }
            }
            assert_eq!(f.emu.count(list), *requests, "{repo} {fault}");
        }
    }
    f.emu.clear_faults();
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_credential_is_auth_failed_with_the_fix_and_no_retry() {
    let f = Fixture::standard();
    let ctx = Arc::new(f.context_with(
        Duration::ZERO,
        &[("CLOUD_TOKEN", WRONG_TOKEN), ("DC_TOKEN", WRONG_TOKEN)],
    ));
    let mut seen = Seen::default();
    let e = seen
        .err(
            &ctx,
            "list_repositories",
            json!({"provider": "cloud"}),
            Kind::Auth,
        )
        .await;
    assert!(e.to_string().contains("Atlassian account email"), "{e}");
    assert!(e.to_string().contains("scopes"), "{e}");
    assert!(e.to_string().contains("expired"), "{e}");
    assert_eq!(f.emu.requests().len(), 1);
    let e = seen
        .err(
            &ctx,
            "list_pull_requests",
            json!({"repo": "payments-core"}),
            Kind::Auth,
        )
        .await;
    assert!(e.to_string().contains("HTTP access token"), "{e}");
    assert_eq!(f.emu.requests().len(), 2);
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_scopes_and_permissions_are_forbidden_naming_what_is_missing() {
    let f = Fixture::start(vec![
        Token::cloud_api(
            EMAIL,
            "bot",
            CLOUD_TOKEN,
            &["read:repository:bitbucket", "read:pullrequest:bitbucket"],
        ),
        // A project token for another project: Data Center answers 401 AuthorisationException.
        Token::dc_project("OTHER", DC_TOKEN, &["PROJECT_READ"]),
    ]);
    f.emu.add_pipeline(
        "acme",
        "payments-api",
        bitbucket_emulator::Pipeline::default(),
    );
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let e = seen
        .err(
            &ctx,
            "list_pipelines",
            json!({"repo": "payments-api"}),
            Kind::Forbidden,
        )
        .await;
    assert!(e.to_string().contains("read:pipeline:bitbucket"), "{e}");
    // The scope the server named (its 403 body) is kept beside what pipelines need.
    assert!(e.to_string().contains("the token lacks the scope"), "{e}");
    assert_eq!(f.emu.requests().len(), 1, "403 is not retried");
    let e = seen
        .err(
            &ctx,
            "list_pull_requests",
            json!({"repo": "payments-core"}),
            Kind::Forbidden,
        )
        .await;
    assert!(e.to_string().contains("REPO_READ"), "{e}");
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_not_enabled_is_told_apart_from_a_missing_repository() {
    let f = Fixture::standard();
    f.emu.add_pipeline(
        "acme",
        "payments-api",
        bitbucket_emulator::Pipeline::default(),
    );
    f.emu.set_pipelines_enabled("acme", "payments-api", false);
    let ctx = f.ctx();
    let mut seen = Seen::default();
    let e = seen
        .err(
            &ctx,
            "list_pipelines",
            json!({"repo": "payments-api"}),
            Kind::NotFound,
        )
        .await;
    assert!(e.to_string().contains("Pipelines is not enabled"), "{e}");
    // A run asked for by number: the run lookup and the search through the list both 404.
    let e = seen
        .err(
            &ctx,
            "get_pipeline_log",
            json!({"repo": "payments-api", "pipeline": "1"}),
            Kind::NotFound,
        )
        .await;
    assert!(e.to_string().contains("Pipelines is not enabled"), "{e}");
    // Switched back on, the same run is there.
    f.emu.set_pipelines_enabled("acme", "payments-api", true);
    let v = seen
        .ok(&ctx, "list_pipelines", json!({"repo": "payments-api"}))
        .await;
    assert_eq!(v["pipelines"].as_array().unwrap().len(), 1, "{v}");
    // A repository that went away after the spec was written (a 404 on the repository too)
    // is not reported as Pipelines being off.
    f.emu
        .fail_next("GET /2.0/repositories/acme/payments-api*", 2, 404);
    let e = seen
        .err(
            &ctx,
            "list_pipelines",
            json!({"repo": "payments-api"}),
            Kind::NotFound,
        )
        .await;
    assert!(e.to_string().contains("repository `payments-api`"), "{e}");
    assert!(!e.message.contains("Pipelines is not enabled"), "{e}");
    seen.assert_clean();
}

/// The list and single-object routes of each back end's pull requests.
const PR_ROUTES: &[(&str, &str, &str)] = &[
    (
        "payments-api",
        "GET /2.0/repositories/acme/payments-api/pullrequests",
        "GET /2.0/repositories/acme/payments-api/pullrequests/1",
    ),
    (
        "payments-core",
        "GET /rest/api/*/projects/PAY/repos/payments-core/pull-requests",
        "GET /rest/api/*/projects/PAY/repos/payments-core/pull-requests/1",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_truncated_json_is_a_typed_error_on_both_back_ends() {
    let f = Fixture::standard();
    seed(&f);
    let ctx = f.ctx();
    let mut seen = Seen::default();
    for (content_type, body, word) in [
        // Complete responses (right Content-Length) whose JSON stops early.
        (
            "application/json",
            r#"{"values": [{"id": 1, "title": "#,
            "truncated",
        ),
        // A proxy's maintenance page with a 200.
        ("text/html", "<html>maintenance</html>", "malformed"),
        (
            "application/json",
            r#"{"unexpected": true}"#,
            "unexpected shape",
        ),
    ] {
        for (repo, list, one) in PR_ROUTES {
            f.emu.reset_counters();
            f.emu.respond_next(list, 100, 200, content_type, body);
            f.emu.respond_next(one, 100, 200, content_type, body);
            let e = seen
                .err(
                    &ctx,
                    "list_pull_requests",
                    json!({"repo": repo}),
                    Kind::Unavailable,
                )
                .await;
            assert!(e.to_string().contains(word), "{repo} {body}: {e}");
            let e = seen
                .err(
                    &ctx,
                    "get_pull_request",
                    json!({"repo": repo, "id": 1}),
                    Kind::Unavailable,
                )
                .await;
            assert!(!e.message.is_empty());
            assert!(f.emu.count(list) >= 1 && f.emu.count(one) >= 1, "{repo}");
            f.emu.clear_faults();
        }
    }
    // The faults gone, the same calls work: nothing bad was cached.
    for (repo, _, _) in PR_ROUTES {
        seen.ok(&ctx, "get_pull_request", json!({"repo": repo, "id": 1}))
            .await;
    }
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_to_another_host_is_not_followed() {
    let f = Fixture::standard();
    let ctx = f.ctx();
    f.emu.respond_next(
        "GET /2.0/repositories/acme",
        1,
        200,
        "application/json",
        r#"{"values": [], "next": "http://attacker.example/2.0/repositories/acme?page=2"}"#,
    );
    let mut seen = Seen::default();
    let e = seen
        .err(
            &ctx,
            "list_repositories",
            json!({"provider": "cloud"}),
            Kind::Unavailable,
        )
        .await;
    assert!(e.to_string().contains("outside the API root"), "{e}");
    assert_eq!(f.emu.requests().len(), 1);
    seen.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_cannot_work_are_refused_before_any_request() {
    let f = Fixture::standard();
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"version: 1
name: raw
providers:
  old:
    kind: cloud
    workspace: acme
    api_url: {url}/2.0
    auth: {{ type: access-token, token: CLOUD_TOKEN }}
  noemail:
    kind: cloud
    workspace: acme
    api_url: {url}/2.0
    auth: {{ type: api-token, email: bot@acme.example, token: CLOUD_TOKEN }}
  nosecret:
    kind: datacenter
    base_url: {url}
    project: PAY
    auth: {{ type: http-access-token, token: MISSING }}
"#,
        url = f.emu.base_url()
    );
    let mut env = LoadedEnv::from_str(&tmp.path().join("env.yaml"), &spec).unwrap();
    // Validation refuses these credentials already; the client must refuse them on its own
    // too (defence in depth), so they are broken after loading.
    let auth = |env: &mut LoadedEnv, p: &str| {
        env.spec
            .providers
            .get_mut(p)
            .unwrap()
            .auth
            .as_mut()
            .unwrap()
            .clone()
    };
    let mut old = auth(&mut env, "old");
    old.kind = agentenv::spec::AuthType::AppPassword;
    old.username = Some("bot".into());
    let mut noemail = auth(&mut env, "noemail");
    noemail.email = None;
    env.spec.providers.get_mut("old").unwrap().auth = Some(old);
    env.spec.providers.get_mut("noemail").unwrap().auth = Some(noemail);
    let secrets =
        ResolvedSecrets::from_values([("CLOUD_TOKEN".to_string(), CLOUD_TOKEN.to_string())].into());
    let ctx = Arc::new(Context::open(env, tmp.path(), secrets).unwrap());
    let mut seen = Seen::default();
    for (provider, word) in [
        ("old", "removed Bitbucket app passwords in 2026"),
        ("noemail", "auth.email"),
        ("nosecret", "secret `MISSING` is not available"),
    ] {
        let e = seen
            .err(
                &ctx,
                "list_repositories",
                json!({"provider": provider}),
                Kind::Auth,
            )
            .await;
        assert!(e.to_string().contains(word), "{provider}: {e}");
    }
    assert!(f.emu.requests().is_empty(), "{:?}", f.emu.requests());
    seen.err(
        &ctx,
        "list_repositories",
        json!({"provider": "nope"}),
        Kind::Input,
    )
    .await;
    seen.assert_clean();
}

#[test]
fn dc_token_and_cloud_token_are_sent_as_their_types_require() {
    // Checked through the emulator's auth: each side accepts only its own header form.
    let f = Fixture::standard();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ctx = f.ctx();
    rt.block_on(async {
        ctx.call("list_repositories", json!({"provider": "cloud"}))
            .await
            .unwrap();
        ctx.call("list_repositories", json!({"provider": "dc"}))
            .await
            .unwrap();
    });
    let reqs = f.emu.requests();
    let cloud = reqs.iter().find(|r| r.path.starts_with("/2.0")).unwrap();
    assert!(cloud.header("authorization").unwrap().starts_with("Basic "));
    assert_eq!(cloud.token.as_deref(), Some("cloud-api:bot"));
    let dc = reqs.iter().find(|r| r.path.starts_with("/rest")).unwrap();
    assert!(dc.header("authorization").unwrap().starts_with("Bearer "));
    assert_eq!(dc.token.as_deref(), Some("dc-personal:bot"));
    let _ = DC_TOKEN;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_retry_after_is_reported_not_slept_through() {
    let f = Fixture::standard();
    seed(&f);
    let ctx = f.ctx();
    let mut seen = Seen::default();
    for (repo, list, _) in PR_ROUTES {
        f.emu.reset_counters();
        f.emu.rate_limit_next(list, 10, 120);
        let e = seen
            .err(
                &ctx,
                "list_pull_requests",
                json!({"repo": repo}),
                Kind::RateLimited,
            )
            .await;
        assert_eq!(
            e.retry_after.map(|d| d.as_secs().max(1)),
            Some(120),
            "{e:?}"
        );
        assert_eq!(f.emu.count(list), 1, "no retry when the wait is too long");
        f.emu.clear_faults();
    }
    seen.assert_clean();
}
