//! A canary secret goes through `agentenv provision`: steps echo it, base64- and URL-encode
//! it, print it inside JSON, fail on purpose and time out. The canary must appear nowhere:
//! not in stdout or stderr (human and `--json`), step logs, the state file, or any other file
//! agentenv writes in the workdir.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::support::canary;
use crate::support::secrets::*;

/// Distinctive, with characters every encoding changes: `/`, `"`, `+`, space, `&`, `\`.
const CANARY: &str = "cAnArY-9d1e/\"x+ z&\\w";
/// A part of the canary no encoding touches, to catch partial leaks.
const CORE: &str = "cAnArY-9d1e";

/// Steps that print the canary in every way the redactor claims to mask; the failing and
/// timing-out ones continue so that every step runs.
const STEPS: &str = r#"
setup:
  - name: echo
    run: |
      echo "plain: $CANARY_TOKEN"; echo "stderr: $CANARY_TOKEN" >&2; echo step-echo-ran
    always: true
  - name: base64
    run: |
      printf '%s' "$CANARY_TOKEN" | base64
      echo "$CANARY_TOKEN" | base64
      printf 'user:%s' "$CANARY_TOKEN" | base64 | tr -d '\n'; echo
      printf 'x-token-auth:%s' "$CANARY_TOKEN" | base64 | tr -d '\n' | tr '+/' '-_' | tr -d '='; echo
      echo step-base64-ran
    always: true
  - name: urlencode
    run: |
      s="$CANARY_TOKEN"; out=""
      while [ -n "$s" ]; do
        rest="${s#?}"; c="${s%"$rest"}"; s="$rest"
        case "$c" in
          [A-Za-z0-9.~_-]) out="$out$c" ;;
          *) out="$out$(printf '%%%02X' "'$c")" ;;
        esac
      done
      echo "https://bitbucket.example/?token=$out&x=1"
      echo step-urlencode-ran
    always: true
  - name: json
    run: |
      printf '{"token":"%s"}\n' "$CANARY_TOKEN"
      escaped=$(printf '%s' "$CANARY_TOKEN" | sed 's/\\/\\\\/g; s/"/\\"/g')
      printf '{"token":"%s","ok":true}\n' "$escaped"
      echo step-json-ran
    always: true
  - name: fails
    run: |
      echo "about to fail with $CANARY_TOKEN" >&2; exit 7
    always: true
    continue_on_error: true
  - name: times-out
    run: |
      echo "waiting with $CANARY_TOKEN"; sleep 30
    timeout: 1s
    always: true
    continue_on_error: true
"#;

fn forms() -> Vec<String> {
    vec![
        CANARY.to_string(),
        CORE.to_string(),
        STANDARD.encode(CANARY),
        STANDARD.encode(format!("{CANARY}\n")),
        STANDARD.encode(format!("user:{CANARY}")),
        URL_SAFE_NO_PAD.encode(format!("x-token-auth:{CANARY}")),
        // the 12-character middle of the base64 text, whatever the offset
        STANDARD.encode(CANARY)[4..16].to_string(),
    ]
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    canary::assert_absent(what, text, &forms());
}

#[test]
fn the_canary_appears_nowhere() {
    let sb = Sandbox::new();
    let key = sb.key("keys/ci.txt");
    let spec = format!(
        "version: 1\nname: canary\nsecrets:\n  recipients: [\"{}\"]\n  team: secrets/team.yaml\n{STEPS}",
        key.public
    );
    sb.write_spec_text(&spec);
    sb.secret("create", &["--team", "CANARY_TOKEN"], CANARY, &[])
        .ok()
        .hides(&[CORE]);
    let wd = sb.path("work");
    let spec_path = sb.spec.to_str().unwrap().to_string();
    let wd_s = wd.to_str().unwrap().to_string();
    let vars = [("AGENTENV_AGE_KEY", key.secret.as_str())];

    let human = sb.run(&["provision", &spec_path, "--workdir", &wd_s], "", &vars);
    let json = sb.run(
        &["provision", &spec_path, "--workdir", &wd_s, "--json"],
        "",
        &vars,
    );
    let dry = sb.run(
        &["provision", &spec_path, "--workdir", &wd_s, "--dry-run"],
        "",
        &vars,
    );
    let status = sb.run(
        &["status", &spec_path, "--workdir", &wd_s, "--json"],
        "",
        &vars,
    );

    // The steps really ran and printed (masked) output, and provision reported the failures.
    for (label, out) in [("human", &human), ("json", &json)] {
        // The failures are reported; continue_on_error lets provision go on to the end.
        assert!(out.all().contains("status 7"), "{label}:\n{}", out.all());
        assert!(out.all().contains("timed out"), "{label}:\n{}", out.all());
        assert_clean(&format!("provision ({label}) stdout"), &out.stdout);
        assert_clean(&format!("provision ({label}) stderr"), &out.stderr);
    }
    assert!(human.all().contains("plain: ***"), "{}", human.all());
    for line in json.stdout.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "--json prints one JSON object per line: {line}"
        );
    }
    assert_clean("provision --dry-run", &dry.all());
    assert_clean("status --json", &status.all());

    // Every file agentenv wrote: logs, state, lock.
    let files = sb.snapshot();
    let mut logs = 0;
    for (path, bytes) in files.iter().filter(|(p, _)| p.starts_with(&wd)) {
        let text = String::from_utf8_lossy(bytes);
        assert_clean(&path.display().to_string(), &text);
        if path.extension().is_some_and(|e| e == "log") {
            logs += 1;
        }
    }
    assert!(
        logs >= 6,
        "one log per step: {files:#?}",
        files = files.keys().collect::<Vec<_>>()
    );
    let echo_log = std::fs::read_to_string(wd.join(".agentenv/logs/echo.log")).unwrap();
    assert!(echo_log.contains("plain: ***"), "{echo_log}");
    assert!(echo_log.contains("step-echo-ran"), "{echo_log}");
    for step in ["base64", "urlencode", "json"] {
        let log = std::fs::read_to_string(wd.join(format!(".agentenv/logs/{step}.log"))).unwrap();
        assert!(log.contains(&format!("step-{step}-ran")), "{log}");
        assert!(log.contains("***"), "{step}: {log}");
    }
    let state = std::fs::read_to_string(wd.join(".agentenv/state.json")).unwrap();
    assert_clean("state.json", &state);
}
