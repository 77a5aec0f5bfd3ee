//! The MCP server under pressure, over real sockets to `agentenv serve --http`: a regex whose
//! compiled form would take hundreds of megabytes is refused before it is built, heavy calls
//! past the cap wait for a turn and are then refused with when to retry, and one search stops
//! at its byte or time budget and says so. The figures (peak memory of the server) are printed
//! for the README with `--nocapture`.

use std::sync::{Arc, Barrier};
use std::time::Instant;

use serde_json::{Value, json};

use super::raw::Server;
use crate::support::git::commit_all;
use crate::support::workspace::{Fixture, small_app};

/// `small_app` plus `files` files of `mib` MiB each under `app/big/`, committed in the
/// checkout (search_code reads the committed tree by default), none holding the absent regex
/// the tests search for, so a search of it reads every byte of them.
fn big_app(files: usize, mib: usize) -> Fixture {
    let fx = small_app();
    let app = fx.workdir.join("app");
    let dir = app.join("big");
    std::fs::create_dir_all(&dir).unwrap();
    let content = LINE.repeat(mib * LINES_PER_MIB);
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i:03}.txt")), &content).unwrap();
    }
    commit_all(&app, "big files");
    fx
}

const LINE: &str = "the quick brown fox jumps over the lazy dog 0123456789 abcdefghij\n";
/// Lines in each MiB of a `big_app` file (a little under a MiB).
const LINES_PER_MIB: usize = (1 << 20) / LINE.len();

/// A regex that occurs nowhere in `big_app`, so a search of it reads everything.
const ABSENT: &str = "zq[0-9]{3}jx";

/// The answer's facts: its structured content, or for an error (which is text only:
/// `error (KIND): MESSAGE`, then `what to do: …` and `retry after N s` lines) the same facts
/// read back from that text.
/// Thirty-two calls released at once, each on its own connection: the `i`-th is `call(i)`.
fn at_once(
    server: &Server,
    call: fn(usize) -> (&'static str, Value),
) -> Vec<(&'static str, Value)> {
    let barrier = Arc::new(Barrier::new(32));
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let mut conn = server.connect();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                conn.handshake(&[]);
                barrier.wait();
                let (tool, args) = call(i);
                (tool, conn.call(2, tool, args, &[]))
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn structured(answer: &Value) -> Value {
    let result = &answer["result"];
    if result["isError"] != true {
        return result["structuredContent"].clone();
    }
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let (kind, message) = first
        .strip_prefix("error (")
        .and_then(|r| r.split_once("): "))
        .unwrap_or_else(|| panic!("not an error text: {text}"));
    let mut out = serde_json::json!({"kind": kind, "message": message});
    for line in lines {
        if let Some(secs) = line
            .strip_prefix("retry after ")
            .and_then(|r| r.strip_suffix(" s"))
        {
            out["retry_after_secs"] = serde_json::json!(secs.parse::<u64>().unwrap());
        }
    }
    out
}

#[test]
fn a_regex_too_large_to_compile_is_refused_in_bounded_memory() {
    let fx = small_app();
    let server = Server::start(&fx, &[], &[]);
    let mut conn = server.connect();
    conn.handshake(&[]);
    let idle = server.peak_rss_kib();
    let started = Instant::now();
    let answer = conn.call(
        2,
        "search_code",
        json!({"query": "a{1000}{1000}", "regex": true}),
        &[],
    );
    eprintln!(
        "figure: search_code `a{{1000}}{{1000}}`: answered in {:.2} s, server peak RSS {} MiB -> {} MiB",
        started.elapsed().as_secs_f64(),
        idle >> 10,
        server.peak_rss_kib() >> 10
    );
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let err = structured(&answer);
    assert_eq!(err["kind"], "invalid_argument", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("larger than 10 MiB") && message.contains("smaller counts"),
        "{message}"
    );

    // A pattern that does not parse is still called invalid, not too large.
    let answer = conn.call(
        3,
        "search_code",
        json!({"query": "(unclosed", "regex": true}),
        &[],
    );
    let message = structured(&answer)["message"].as_str().unwrap().to_string();
    assert!(message.contains("not a valid regex"), "{message}");

    // A megabyte of query is refused by its length before anything is compiled.
    let answer = conn.call(4, "search_code", json!({"query": "x".repeat(1 << 20)}), &[]);
    let message = structured(&answer)["message"].as_str().unwrap().to_string();
    assert!(message.contains("the most is 4096"), "{message}");

    // Thirty-two at once, each on its own connection: all refused, none compiled.
    let answers = at_once(&server, |_| {
        (
            "search_code",
            json!({"query": "a{1000}{1000}", "regex": true}),
        )
    });
    for (_, answer) in answers {
        assert_eq!(structured(&answer)["kind"], "invalid_argument", "{answer}");
    }
    eprintln!(
        "figure: 32 concurrent `a{{1000}}{{1000}}` searches: server peak RSS {} MiB",
        server.peak_rss_kib() >> 10
    );
}

#[test]
fn heavy_calls_past_the_cap_wait_then_are_refused_with_a_retry_time() {
    let fx = big_app(48, 1);
    // One heavy call at a time, and a short wait, so the test sees refusals in seconds.
    let server = Server::start(
        &fx,
        &[],
        &[
            ("AGENTENV_HEAVY_CALLS", "1"),
            ("AGENTENV_HEAVY_CALL_WAIT", "0.05"),
        ],
    );
    let mut probe = server.connect();
    probe.handshake(&[]);
    let started = Instant::now();
    let alone = probe.call(
        2,
        "search_code",
        json!({"query": ABSENT, "regex": true, "repo": "app"}),
        &[],
    );
    assert_eq!(alone["result"]["isError"], false, "{alone}");
    let one = started.elapsed();

    // Heavy calls of three kinds share the turns; light ones never wait.
    let answers = at_once(&server, |i| match i % 4 {
        0 => ("list_commits", json!({"repo": "app"})),
        1 => ("read_file", json!({"repo": "app", "path": "README.md"})),
        _ => (
            "search_code",
            json!({"query": ABSENT, "regex": true, "repo": "app"}),
        ),
    });
    let (mut served, mut refused) = (0, 0);
    for (tool, answer) in answers {
        if answer["result"]["isError"] == false {
            served += 1;
            continue;
        }
        let err = structured(&answer);
        assert_ne!(tool, "read_file", "a light call waited for a turn: {err}");
        assert_eq!(err["kind"], "unavailable", "{tool}: {err}");
        assert_eq!(err["retry_after_secs"], 5, "{err}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains("busy") && message.contains(tool),
            "{message}"
        );
        refused += 1;
    }
    eprintln!(
        "figure: one search of 48 MiB (committed tree) took {:.2} s; 32 calls at once with 1 turn and a 0.05 s wait: {served} served, {refused} refused",
        one.as_secs_f64()
    );
    assert!(
        refused > 0,
        "no call was refused although one search takes {one:?} and a turn is waited for 0.05 s"
    );
    // Every light call (8) was served, and the turns were all given back.
    assert!(served >= 8, "{served} served");
    let after = probe.call(
        4,
        "search_code",
        json!({"query": "TODO", "repo": "app"}),
        &[],
    );
    assert_eq!(after["result"]["isError"], false, "{after}");
}

#[test]
fn a_search_stops_at_its_budget_and_says_so() {
    let fx = big_app(16, 1);
    // A byte budget of 3 MiB over 16 MiB of files.
    let server = Server::start(&fx, &[], &[("AGENTENV_SEARCH_MAX_BYTES", "3145728")]);
    let mut conn = server.connect();
    conn.handshake(&[]);
    // The committed tree (the default) and the working tree have each their own walk.
    for (id, working_tree) in [(2, false), (3, true)] {
        let answer = conn.call(
            id,
            "search_code",
            json!({"query": "lazy dog", "repo": "app", "include": ["big/**"],
                   "working_tree": working_tree}),
            &[],
        );
        let out = structured(&answer);
        assert_eq!(answer["result"]["isError"], false, "{answer}");
        assert_eq!(out["truncated"], true, "{out}");
        let note = out["note"].as_str().unwrap();
        assert!(
            note.contains("the search stopped early") && note.contains("may read 3 MiB"),
            "working_tree {working_tree}: {note}"
        );
        // Every line of every file matches: at most three files' worth were read.
        let total = out["total_matches"].as_u64().unwrap();
        assert!(
            total > 0 && total <= 3 * LINES_PER_MIB as u64,
            "working_tree {working_tree}: {total} matches counted"
        );
    }

    // A narrow search within the budget is whole, with no note.
    for (id, working_tree) in [(4, false), (5, true)] {
        let answer = conn.call(
            id,
            "search_code",
            json!({"query": "TODO", "repo": "app", "exclude": ["big/**"],
                   "working_tree": working_tree}),
            &[],
        );
        let out = structured(&answer);
        assert_eq!(out["truncated"], false, "{out}");
        assert!(out.get("note").is_none_or(Value::is_null), "{out}");
    }

    // A time budget already spent when the walk begins stops it at the first file.
    let server = Server::start(&fx, &[], &[("AGENTENV_SEARCH_TIMEOUT", "0.000001")]);
    let mut conn = server.connect();
    conn.handshake(&[]);
    for (id, working_tree) in [(2, false), (3, true)] {
        let answer = conn.call(
            id,
            "search_code",
            json!({"query": "lazy dog", "repo": "app", "working_tree": working_tree}),
            &[],
        );
        let out = structured(&answer);
        assert_eq!(out["truncated"], true, "{out}");
        assert_eq!(out["total_matches"], 0, "{out}");
        assert!(
            out["note"].as_str().unwrap().contains("stopped early"),
            "{out}"
        );
    }
}
