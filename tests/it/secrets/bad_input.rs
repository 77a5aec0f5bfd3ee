//! Every bad input to the secrets store: a clear error, no secret in any output, and the
//! files byte-for-byte unchanged.

use crate::support::secrets::*;

const VALUE: &str = "bad-input-canary-91c2e7";
const OTHER: &str = "bad-input-other-44d0a3";

/// A sandbox whose team file holds BB_TOKEN and OTHER, encrypted to `alice`.
fn populated() -> (Sandbox, Key) {
    let sb = Sandbox::new();
    let alice = sb.key("keys/alice.txt");
    sb.write_spec(&[&alice.public], &[]);
    sb.secret("create", &["--team", "BB_TOKEN"], VALUE, &[])
        .ok();
    sb.secret("create", &["--team", "OTHER"], OTHER, &[]).ok();
    (sb, alice)
}

fn key_var(k: &Key) -> [(&'static str, &str); 1] {
    [("AGENTENV_AGE_KEY_FILE", k.file.to_str().unwrap())]
}

/// The command fails with `code`, says `what`, prints nothing on stdout and no value, and
/// changes no file.
#[track_caller]
fn refused(
    sb: &Sandbox,
    sub: &str,
    rest: &[&str],
    stdin: &str,
    vars: &[(&str, &str)],
    code: i32,
    what: &str,
) {
    let before = sb.snapshot();
    let out = sb.secret(sub, rest, stdin, vars);
    out.failed(code).says(what).hides(&[VALUE, OTHER]);
    if stdin.trim().len() >= 4 {
        out.hides(&[stdin.trim()]);
    }
    assert!(out.stdout.is_empty(), "no partial output:\n{}", out.stdout);
    assert_eq!(sb.snapshot(), before, "files changed");
}

#[track_caller]
fn resolve_fails(sb: &Sandbox, vars: &[(&str, &str)], kind: agentenv::Kind, what: &[&str]) {
    let err = sb.resolve(vars).unwrap_err();
    assert_eq!(err.kind, kind, "{err}");
    let text = err.to_string();
    for w in what {
        assert!(text.contains(w), "expected {w:?} in:\n{text}");
    }
    assert!(!text.contains(VALUE) && !text.contains(OTHER), "{text}");
}

#[test]
fn wrong_identity_names_the_file_and_its_recipients() {
    let (sb, alice) = populated();
    let mallory = sb.key("keys/mallory.txt");
    let team = sb.team_file();
    let file = team.to_str().unwrap();
    resolve_fails(
        &sb,
        &key_var(&mallory),
        agentenv::Kind::Auth,
        &[file, &alice.public, &mallory.public],
    );
    refused(&sb, "rekey", &[], "", &key_var(&mallory), 3, &alice.public);
    // Key text in AGENTENV_AGE_KEY takes precedence over a working key file.
    let vars = [
        ("AGENTENV_AGE_KEY", mallory.secret.as_str()),
        ("AGENTENV_AGE_KEY_FILE", alice.file.to_str().unwrap()),
    ];
    resolve_fails(&sb, &vars, agentenv::Kind::Auth, &["AGENTENV_AGE_KEY"]);
    // A malformed key is an error that does not print the key.
    let err = sb
        .resolve(&[("AGENTENV_AGE_KEY", "AGE-SECRET-KEY-1NOTAKEY")])
        .unwrap_err();
    assert!(!err.to_string().contains("NOTAKEY"), "{err}");
    assert_eq!(err.kind, agentenv::Kind::Auth);
    // A key file that does not exist is an error, not a silent fallback.
    resolve_fails(
        &sb,
        &[("AGENTENV_AGE_KEY_FILE", "/nonexistent/key.txt")],
        agentenv::Kind::Auth,
        &["/nonexistent/key.txt"],
    );
}

#[test]
fn no_identity_says_what_needed_one_and_how_to_provide_it() {
    let (sb, alice) = populated();
    let file = sb.team_file();
    resolve_fails(
        &sb,
        &[],
        agentenv::Kind::Auth,
        &[file.to_str().unwrap(), &alice.public, "AGENTENV_AGE_KEY"],
    );
    refused(&sb, "rekey", &[], "", &[], 3, "no age identity");
}

#[test]
fn truncated_or_corrupted_armor_is_reported_and_can_be_replaced() {
    for damage in ["drop-lines", "flip-char", "no-end"] {
        let (sb, alice) = populated();
        let team = sb.team_file();
        let good = armored(&team, "BB_TOKEN");
        let lines: Vec<&str> = good.lines().collect();
        let bad = match damage {
            // Keep the BEGIN and END lines: the file still looks fine at a glance.
            "drop-lines" => format!("{}\n{}\n{}\n", lines[0], lines[1], lines[lines.len() - 1]),
            "flip-char" => {
                let mid = lines.len() / 2;
                let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
                let c = if l[mid].starts_with('A') { "B" } else { "A" };
                l[mid].replace_range(0..1, c);
                l.join("\n") + "\n"
            }
            _ => lines[..lines.len() - 2].join("\n") + "\n",
        };
        replace_armored(&team, "BB_TOKEN", &bad);
        let what: &[&str] = if damage == "no-end" {
            &["BB_TOKEN", "is cut short"]
        } else {
            &["BB_TOKEN", "damaged"]
        };
        resolve_fails(&sb, &key_var(&alice), agentenv::Kind::Input, what);
        refused(&sb, "rekey", &[], "", &key_var(&alice), 2, what[1]);
        if damage != "no-end" {
            // A damaged value can be replaced without decrypting it.
            sb.secret("update", &["--team", "BB_TOKEN"], "replacement-value", &[])
                .ok();
            let got = sb.resolve(&key_var(&alice)).unwrap();
            assert_eq!(got.get("BB_TOKEN"), Some("replacement-value"), "{damage}");
        }
    }
}

#[test]
fn a_value_moved_to_another_name_is_tampering() {
    let (sb, alice) = populated();
    let team = sb.team_file();
    // Put OTHER's ciphertext under BB_TOKEN (someone wants their value used as the token).
    let other = armored(&team, "OTHER");
    replace_armored(&team, "BB_TOKEN", &other);
    resolve_fails(
        &sb,
        &key_var(&alice),
        agentenv::Kind::Input,
        &["BB_TOKEN", "OTHER", "moved"],
    );
    refused(&sb, "rekey", &[], "", &key_var(&alice), 2, "moved");
    // Renaming the key in the file is caught the same way.
    let (sb, alice) = populated();
    let team = sb.team_file();
    let text = std::fs::read_to_string(&team).unwrap();
    std::fs::write(&team, text.replace("OTHER: |", "RENAMED: |")).unwrap();
    resolve_fails(&sb, &key_var(&alice), agentenv::Kind::Input, &["RENAMED"]);
}

#[test]
fn unknown_recipient_formats_are_refused_without_echoing_keys() {
    let sb = Sandbox::new();
    for (recipients, what) in [
        (&["pgp:0xDEADBEEF"][..], "unknown recipient format"),
        (
            &["ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY="],
            "secrets.recipients[0]",
        ),
        (&["age1notreallyarecipient"], "invalid age recipient"),
        (&[], "secrets.recipients is empty"),
    ] {
        sb.write_spec(recipients, &[]);
        refused(&sb, "create", &["--team", "BB_TOKEN"], VALUE, &[], 2, what);
    }
    assert!(!sb.team_file().exists());
    sb.write_spec(&["pgp:0xDEADBEEF"], &[]);
    resolve_fails(&sb, &[], agentenv::Kind::Input, &["secrets.recipients[0]"]);

    // A private key pasted as a recipient is called out and never printed back.
    let k = sb.key("keys/k.txt");
    sb.write_spec(&[&k.secret], &[]);
    let out = sb.secret("create", &["--team", "BB_TOKEN"], VALUE, &[]);
    out.failed(2)
        .says("PRIVATE key")
        .hides(&[&k.secret, &k.secret[15..]]);
}

#[test]
fn duplicate_names_in_a_file_are_refused() {
    let (sb, alice) = populated();
    let team = sb.team_file();
    let text = std::fs::read_to_string(&team).unwrap();
    let block = armored(&team, "OTHER");
    let dup: String = format!(
        "{text}OTHER: |\n{}",
        block
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    std::fs::write(&team, dup).unwrap();
    resolve_fails(
        &sb,
        &key_var(&alice),
        agentenv::Kind::Input,
        &["duplicate", "OTHER"],
    );
    refused(
        &sb,
        "create",
        &["--team", "NEW_ONE"],
        VALUE,
        &[],
        2,
        "duplicate",
    );
    refused(&sb, "list", &[], "", &[], 2, "duplicate");
}

#[test]
fn invalid_names_are_refused() {
    let (sb, alice) = populated();
    for bad in [
        "lower_case",
        "1STARTS_WITH_DIGIT",
        "HAS-DASH",
        "",
        "SPACE NAME",
    ] {
        refused(
            &sb,
            "create",
            &["--team", bad],
            VALUE,
            &[],
            2,
            "not a valid secret name",
        );
    }
    // In the file.
    let team = sb.team_file();
    let text = std::fs::read_to_string(&team).unwrap();
    std::fs::write(&team, text.replace("OTHER: |", "other-name: |")).unwrap();
    resolve_fails(
        &sb,
        &key_var(&alice),
        agentenv::Kind::Input,
        &["other-name", "not a valid secret name"],
    );
    refused(
        &sb,
        "create",
        &["--team", "NEW_ONE"],
        VALUE,
        &[],
        2,
        "not a valid secret name",
    );
}

#[test]
fn a_token_pasted_into_the_spec_is_not_echoed() {
    let sb = Sandbox::new();
    let pasted = "ATATT3xFfGF0-pasted-token-value";
    sb.write_spec_text(&format!(
        "version: 1\nname: x\nproviders:\n  bb:\n    kind: cloud\n    workspace: acme\n    auth: {{type: api-token, email: a@b.c, token: {pasted}}}\n"
    ));
    let err = sb.resolve(&[]).unwrap_err();
    assert_eq!(err.kind, agentenv::Kind::Input);
    assert!(err.to_string().contains("providers.bb.auth.token"), "{err}");
    assert!(!err.to_string().contains(pasted), "{err}");
}

#[test]
fn empty_and_short_values_are_refused_at_creation() {
    let sb = Sandbox::new();
    let alice = sb.key("keys/alice.txt");
    sb.write_spec(&[&alice.public], &[]);
    for (file, value, what) in [
        ("--team", "", "empty"),
        ("--team", "\n", "empty"),
        ("--personal", "", "empty"),
        ("--team", "abc", "shorter than 4"),
        ("--team", "nul\0value", "NUL"),
    ] {
        refused(&sb, "create", &[file, "BB_TOKEN"], value, &[], 2, what);
    }
    assert!(!sb.team_file().exists());
    // No key was generated for a refused personal value.
    assert!(!sb.default_key_file().exists());
    // An empty or short value from the environment is refused too.
    sb.write_spec(&[&alice.public], &["BB_TOKEN"]);
    resolve_fails(
        &sb,
        &[("BB_TOKEN", "")],
        agentenv::Kind::Input,
        &["BB_TOKEN"],
    );
    resolve_fails(
        &sb,
        &[("BB_TOKEN", "ab")],
        agentenv::Kind::Input,
        &["shorter than 4"],
    );
}

#[test]
fn a_secrets_file_that_is_not_yaml_or_holds_plain_values_is_refused() {
    let plain = "plain-value-in-the-file";
    for (label, text) in [
        ("syntax", "BB_TOKEN: [unclosed\n  - {\n".to_string()),
        ("string", format!("{plain}\n")),
        ("list", format!("- {plain}\n")),
        ("plain value", format!("BB_TOKEN: {plain}\n")),
        ("recipients not a list", "recipients: age1abc\n".to_string()),
    ] {
        let (sb, alice) = populated();
        std::fs::write(sb.team_file(), &text).unwrap();
        let err = sb.resolve(&key_var(&alice)).unwrap_err();
        assert_eq!(err.kind, agentenv::Kind::Input, "{label}: {err}");
        assert!(err.to_string().contains("team.yaml"), "{label}: {err}");
        assert!(!err.to_string().contains(plain), "{label} leaks: {err}");
        let before = sb.snapshot();
        for (sub, rest, stdin) in [
            ("create", &["--team", "NEW_ONE"][..], VALUE),
            ("list", &[][..], ""),
            ("rekey", &[][..], ""),
        ] {
            let out = sb.secret(sub, rest, stdin, &key_var(&alice));
            out.failed(2).says("team.yaml").hides(&[plain, VALUE]);
        }
        assert_eq!(sb.snapshot(), before, "{label}");
    }
}

#[test]
fn a_personal_file_readable_by_others_gives_a_warning() {
    let sb = Sandbox::new();
    let alice = sb.key("keys/alice.txt");
    sb.write_spec(&[&alice.public], &[]);
    sb.secret("create", &["--personal", "BB_TOKEN"], VALUE, &[])
        .ok();
    let quiet = sb.secret("list", &[], "", &[]);
    assert!(
        !quiet.stderr.contains("readable by others"),
        "{}",
        quiet.stderr
    );
    set_mode(&sb.personal_file(), 0o644);
    let before = sb.snapshot();
    sb.secret("list", &[], "", &[])
        .ok()
        .says("warning: the personal secrets file")
        .says("readable by others")
        .says("chmod 600")
        .hides(&[VALUE]);
    // Still usable: it is encrypted; the warning is the point.
    assert_eq!(sb.resolve(&[]).unwrap().get("BB_TOKEN"), Some(VALUE));
    // A key file readable by others is warned about too.
    set_mode(&sb.default_key_file(), 0o640);
    sb.secret("update", &["--personal", "BB_TOKEN"], "new-value-123", &[])
        .ok()
        .says("the key file");
    // update rewrote the file with mode 0600; nothing else changed.
    assert_eq!(mode(&sb.personal_file()), 0o600);
    let after = sb.snapshot();
    assert_eq!(before.len(), after.len());
}
