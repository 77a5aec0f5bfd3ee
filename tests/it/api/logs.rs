//! `get_pipeline_log` on failed steps of realistic builds (cargo, npm, pytest, Maven, a shell
//! script under `set -e`), served by the emulator's log host: by default the answer shows the
//! lines that explain the failure — far from the end of the log, where a tail would miss them —
//! with their context and the last lines, is not fooled by words that contain "error" or by
//! counts of zero, and says what it left out and how to get it. `grep`, `tail` and line ranges
//! still choose other lines.

use bitbucket_emulator::{Pipeline, PipelineStep};
use serde_json::{Value, json};

use crate::support::api::{Fixture, Seen};

/// `n` lines of a build's ordinary chatter, including words that contain "error" and counts of
/// zero, none of which explain a failure.
fn noise(prefix: &str, n: usize) -> Vec<String> {
    let decoys = [
        "   Compiling thiserror v1.0.69",
        "   Compiling error-chain v0.12.4",
        "cc -Wall -Werror -O2 -c vendor/zlib/inflate.c",
        "found 0 vulnerabilities",
        "lint: 0 errors, 2 warnings",
        "error: 0",
        "Tests run: 12, Failures: 0, Errors: 0, Skipped: 0",
        "test result: ok. 40 passed; 0 failed; 0 ignored",
    ];
    (0..n)
        .map(|i| match i % 50 {
            7 => decoys[(i / 50) % decoys.len()].to_string(),
            _ => format!("{prefix} step {i}: ok"),
        })
        .collect()
}

/// A failed build's log: `before` lines of noise, the failure, then `after` lines of noise
/// (cache uploads, artifact steps): the failure is far from the end.
fn log(before: usize, failure: &[&str], after: usize) -> (String, usize) {
    let mut lines = noise("setup", before);
    let first = lines.len() + 1;
    lines.extend(failure.iter().map(|s| s.to_string()));
    lines.extend(noise("after-script", after));
    (lines.join("\n") + "\n", first)
}

struct Case {
    name: &'static str,
    failure: &'static [&'static str],
    /// Offsets (within `failure`) of the lines that must be found as errors.
    errors: &'static [usize],
}

const CASES: &[Case] = &[
    Case {
        name: "cargo",
        failure: &[
            "   Compiling ledger v0.3.0 (/opt/atlassian/pipelines/agent/build)",
            "error[E0308]: mismatched types",
            "  --> src/totals.rs:42:22",
            "   |",
            "42 |     let total: u32 = amounts.iter().sum::<u64>();",
            "   |                ---   ^^^^^^^^^^^^^^^^^^^^^^^^^ expected `u32`, found `u64`",
            "For more information about this error, try `rustc --explain E0308`.",
            "error: could not compile `ledger` (lib) due to 1 previous error",
        ],
        errors: &[1, 7],
    },
    Case {
        name: "npm",
        failure: &[
            "> ledger-web@1.4.0 build",
            "> tsc -p .",
            "src/totals.ts(42,7): error TS2322: Type 'string' is not assignable to type 'number'.",
            "npm ERR! code 2",
            "npm ERR! path /opt/atlassian/pipelines/agent/build",
            "npm ERR! command failed",
        ],
        errors: &[2, 3, 4, 5],
    },
    Case {
        name: "pytest",
        failure: &[
            "=================================== FAILURES ===================================",
            "___________________________________ test_total ___________________________________",
            "    def test_total():",
            ">       assert total([1, 2]) == 4",
            "E       assert 3 == 4",
            "tests/test_ledger.py:5: AssertionError",
            "=========================== short test summary info ============================",
            "FAILED tests/test_ledger.py::test_total - assert 3 == 4",
            "========================= 1 failed, 12 passed in 0.54s =========================",
        ],
        errors: &[4, 7, 8],
    },
    Case {
        name: "maven",
        failure: &[
            "[INFO] Running com.acme.LedgerTest",
            "[ERROR] Tests run: 4, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.05 s <<< FAILURE! - in com.acme.LedgerTest",
            "[ERROR] com.acme.LedgerTest.totals  Time elapsed: 0.01 s  <<< FAILURE!",
            "org.opentest4j.AssertionFailedError: expected: <4> but was: <3>",
            "[INFO] BUILD FAILURE",
            "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.2.5:test (default-test) on project ledger",
        ],
        errors: &[1, 2, 3, 4, 5],
    },
    Case {
        name: "shell",
        failure: &[
            "+ ./scripts/deploy.sh staging",
            "Deploying ledger to staging",
            "+ kubectl apply -f k8s/",
            "./scripts/deploy.sh: line 14: kubectl: command not found",
        ],
        errors: &[3],
    },
];

fn pipeline(n: u64, log: &str) -> Pipeline {
    Pipeline {
        uuid: format!("{{22222222-2222-4333-8444-{n:012}}}"),
        build_number: n,
        result: Some("FAILED".into()),
        created_on: format!("2025-02-{:02}T03:04:05.000Z", n),
        steps: vec![
            PipelineStep {
                uuid: format!("{{aaaaaaaa-bbbb-4ccc-8ddd-{n:012}}}"),
                name: "Setup".into(),
                log: Some(b"installing\ndone\n".to_vec()),
                ..PipelineStep::default()
            },
            PipelineStep {
                uuid: format!("{{bbbbbbbb-bbbb-4ccc-8ddd-{n:012}}}"),
                name: "Build and test".into(),
                result: Some("FAILED".into()),
                log: Some(log.as_bytes().to_vec()),
                ..PipelineStep::default()
            },
        ],
        ..Pipeline::default()
    }
}

/// The line numbers the `log` field shows.
fn shown(out: &Value) -> Vec<usize> {
    out["log"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.trim_start().split_once("  ")?.0.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_shows_the_lines_that_explain_the_failure_and_the_end() {
    let f = Fixture::standard();
    let mut logs = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let n = i as u64 + 1;
        let (text, first) = log(400, case.failure, 550);
        f.emu
            .add_pipeline("acme", "payments-api", pipeline(n, &text));
        logs.push((n, first, text));
    }
    let ctx = f.ctx();
    let mut seen = Seen::default();
    for (case, (n, first, text)) in CASES.iter().zip(&logs) {
        let total = text.lines().count();
        let out = seen
            .ok(
                &ctx,
                "get_pipeline_log",
                json!({"repo": "payments-api", "pipeline": n.to_string()}),
            )
            .await;
        let name = case.name;
        assert_eq!(out["step"]["name"], "Build and test", "{name}");
        assert_eq!(out["total_lines"], total, "{name}");
        assert_eq!(
            out["error_lines"],
            case.errors.len(),
            "{name}: only the failure's lines look like errors, no decoy: {}",
            out["log"]
        );
        let lines = shown(&out);
        for e in case.errors {
            assert!(
                lines.contains(&(first + e)),
                "{name}: error line {} not shown",
                first + e
            );
        }
        // Context before the first error, and the end of the log.
        assert!(lines.contains(&(first + case.errors[0] - 1)), "{name}");
        assert_eq!(lines.last(), Some(&total), "{name}");
        assert!(lines.contains(&(total - 29)), "{name}: the last 30 lines");
        // The decoys are not among what is shown (they sit far from the failure).
        let log = out["log"].as_str().unwrap();
        for decoy in [
            "Compiling thiserror",
            "-Werror",
            "0 vulnerabilities",
            "error: 0",
        ] {
            assert!(!log.contains(decoy), "{name}: {decoy} shown:\n{log}");
        }
        // The gaps are counted, and the note says how to see the rest.
        assert!(log.contains("lines left out"), "{name}: {log}");
        let note = out["note"].as_str().unwrap();
        for how in ["tail", "grep", "start_line"] {
            assert!(note.contains(how), "{name}: {note}");
        }
        assert_eq!(
            out["shown_lines"],
            lines.len(),
            "{name}: shown_lines counts log lines, not gap markers"
        );
        assert!(
            log.len() < 6_000,
            "{name}: {} bytes for a {total}-line log",
            log.len()
        );
    }

    // grep and tail still work as before; a range reads any part.
    let (n, first, text) = &logs[0];
    let total = text.lines().count();
    let tail = seen
        .ok(
            &ctx,
            "get_pipeline_log",
            json!({"repo": "payments-api", "pipeline": n.to_string(), "tail": 3}),
        )
        .await;
    assert_eq!(shown(&tail), [total - 2, total - 1, total]);
    assert!(tail.get("error_lines").is_none(), "{tail}");
    let grep = seen
        .ok(
            &ctx,
            "get_pipeline_log",
            json!({"repo": "payments-api", "pipeline": n.to_string(), "grep": "^error(\\[E0308\\]|: could not)"}),
        )
        .await;
    assert_eq!(shown(&grep), [first + 1, first + 7], "{}", grep["log"]);
    let range = seen
        .ok(
            &ctx,
            "get_pipeline_log",
            json!({"repo": "payments-api", "pipeline": n.to_string(), "start_line": "10", "end_line": "12"}),
        )
        .await;
    assert_eq!(shown(&range), [10, 11, 12]);
    assert_eq!(range["matching_lines"], 3);
    // A step that did not fail: its last lines, as before.
    let setup = seen
        .ok(
            &ctx,
            "get_pipeline_log",
            json!({"repo": "payments-api", "pipeline": n.to_string(), "step": "Setup"}),
        )
        .await;
    assert_eq!(setup["log"], "     1  installing\n     2  done\n");
    seen.assert_clean();
}
