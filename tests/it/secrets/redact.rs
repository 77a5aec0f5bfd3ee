//! The redactor: every form of a secret that tools commonly print is masked as `***`.

use agentenv::secrets::{Redactor, ResolvedSecrets};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const TOKEN: &str = "tok/en+with spaces&\"quotes\"?=é";

fn redactor() -> Redactor {
    Redactor::new([TOKEN])
}

#[track_caller]
fn masked(r: &Redactor, text: &str, secret_form: &str) {
    let out = r.redact(text);
    assert!(
        !out.contains(secret_form),
        "{secret_form:?} survives in {out:?}"
    );
    assert!(out.contains("***"), "{out:?}");
}

#[test]
fn the_whole_value_is_masked_and_the_rest_kept() {
    let r = redactor();
    assert_eq!(r.redact(&format!("token={TOKEN}; done")), "token=***; done");
    assert_eq!(r.redact("nothing secret here"), "nothing secret here");
    assert_eq!(r.redact(&format!("{TOKEN}{TOKEN}")), "******");
    assert_eq!(r.redact_bytes(format!("a{TOKEN}b").as_bytes()), b"a***b");
}

#[test]
fn default_masks_nothing() {
    let r = Redactor::default();
    assert!(r.is_empty());
    assert_eq!(r.redact(TOKEN), TOKEN);
    assert!(ResolvedSecrets::empty().redactor().is_empty());
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked() {
    let pem = "-----BEGIN KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAw\nggE8AgEAAkEAq7BFUpkGp3+LQmlQ\n-----END KEY-----";
    let r = Redactor::new([pem]);
    let out = r.redact("line: ggE8AgEAAkEAq7BFUpkGp3+LQmlQ\n");
    assert_eq!(out, "line: ***\n");
    let out = r.redact(&pem.replace('\n', "\r\n"));
    assert!(
        !out.contains("MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAw"),
        "{out}"
    );
    // JSON-escaped whole value, with \n escapes.
    let json = serde_json::to_string(pem).unwrap();
    assert!(
        !r.redact(&json)
            .contains("MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAw")
    );
}

#[test]
fn base64_at_every_offset_and_both_alphabets() {
    let r = redactor();
    masked(&r, &STANDARD.encode(TOKEN), &STANDARD.encode(TOKEN)[..8]);
    masked(
        &r,
        &URL_SAFE_NO_PAD.encode(TOKEN),
        &URL_SAFE_NO_PAD.encode(TOKEN)[..8],
    );
    // echo "$TOKEN" | base64 encodes a trailing newline too.
    let with_nl = STANDARD.encode(format!("{TOKEN}\n"));
    assert_eq!(r.redact(&with_nl), "***");
    for prefix in ["", "u", "us", "user:", "x-bitbucket-api-token-auth:"] {
        for engine in [&STANDARD, &URL_SAFE_NO_PAD] {
            let plain = format!("{prefix}{TOKEN}@suffix");
            let enc = engine.encode(&plain);
            let out = r.redact(&format!("Authorization: Basic {enc}"));
            assert!(out.contains("***"), "{prefix:?}: {out}");
            // What is left cannot be decoded back to the token.
            let left: String = out.chars().filter(|c| *c != '*').collect();
            assert!(
                left.len() < enc.len() + "Authorization: Basic ".len() - 20,
                "{out}"
            );
            for chunk in out.split("***") {
                let decoded = engine.decode(chunk.trim_start_matches("Authorization: Basic "));
                if let Ok(d) = decoded {
                    assert!(
                        !String::from_utf8_lossy(&d).contains("with spaces"),
                        "{prefix:?}: {out}"
                    );
                }
            }
        }
    }
}

#[test]
fn url_encoded_forms() {
    let r = redactor();
    let forms = [
        // RFC 3986 (curl --data-urlencode, jq @uri)
        "tok%2Fen%2Bwith%20spaces%26%22quotes%22%3F%3D%C3%A9",
        // lower-case hex
        "tok%2fen%2bwith%20spaces%26%22quotes%22%3f%3d%c3%a9",
        // Python quote(): '/' kept
        "tok/en%2Bwith%20spaces%26%22quotes%22%3F%3D%C3%A9",
        // form encoding: space as '+'
        "tok%2Fen%2Bwith+spaces%26%22quotes%22%3F%3D%C3%A9",
    ];
    for f in forms {
        assert_eq!(
            r.redact(&format!("https://h/?t={f}&x=1")),
            "https://h/?t=***&x=1",
            "{f}"
        );
    }
}

#[test]
fn json_escaped_forms() {
    let r = redactor();
    let serde = serde_json::to_string(TOKEN).unwrap();
    assert_eq!(r.redact(&format!("{{\"t\":{serde}}}")), "{\"t\":\"***\"}");
    // Python json.dumps: ensure_ascii, and escaped slashes from some encoders.
    let ascii = "tok/en+with spaces&\\\"quotes\\\"?=\\u00e9";
    assert_eq!(
        r.redact(&format!("{{\"t\":\"{ascii}\"}}")),
        "{\"t\":\"***\"}"
    );
    let slashed = "tok\\/en+with spaces&\\\"quotes\\\"?=é";
    assert_eq!(r.redact(slashed), "***");
}

#[test]
fn longest_secret_wins_when_one_contains_another() {
    let r = Redactor::new(["abcd", "xxabcdyy"]);
    assert_eq!(r.redact("1 xxabcdyy 2 abcd 3"), "1 *** 2 *** 3");
}

#[test]
fn short_secrets_mask_only_their_exact_value() {
    // Values under 4 characters are refused by the store; a redactor still masks them whole,
    // but derives no encoded forms that would mask ordinary text.
    let r = Redactor::new(["ab"]);
    assert_eq!(r.redact("xaby"), "x***y");
    assert_eq!(r.redact("YWI="), "YWI=");
}

#[test]
fn resolved_secrets_redact_every_value() {
    let s = ResolvedSecrets::from_values(
        [
            ("A".to_string(), "first-secret".to_string()),
            ("B".to_string(), "second-secret".to_string()),
        ]
        .into_iter()
        .collect(),
    );
    assert_eq!(s.redactor().redact("first-secret second-secret"), "*** ***");
    assert!(!format!("{s:?}").contains("first-secret"));
}
