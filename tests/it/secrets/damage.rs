//! Damaged and truncated secrets files: a value damaged anywhere in its armor is reported as
//! damaged (naming the secret and the file), never as "your key is not a recipient" when it
//! is one; a file cut short anywhere but between two entries is refused — by `validate` too —
//! instead of read as the part that is left; hostile YAML in a secrets file is refused in
//! bounded memory like a hostile spec. Canary values are scanned for in every output.

use std::time::Duration;

use crate::support::bounded::{self, ADDRESS_SPACE};
use crate::support::canary::assert_absent;
use crate::support::secrets::*;

const FIRST: &str = "damage-canary-first-5b1d";
const SECOND: &str = "damage-canary-second-9e7c";
const CANARIES: [&str; 2] = [FIRST, SECOND];

/// A spec with no provider (so no name is required by auth: a dropped value would go
/// unnoticed), and a team file holding FIRST_ONE and SECOND_ONE encrypted to alice.
fn populated() -> (Sandbox, Key) {
    let sb = Sandbox::new();
    let alice = sb.key("keys/alice.txt");
    sb.write_spec_text(&format!(
        "version: 1\nname: sec\nsecrets:\n  recipients: [{}]\n  team: secrets/team.yaml\n",
        alice.public
    ));
    sb.secret("create", &["--team", "FIRST_ONE"], FIRST, &[])
        .ok();
    sb.secret("create", &["--team", "SECOND_ONE"], SECOND, &[])
        .ok();
    (sb, alice)
}

fn key_var(k: &Key) -> [(&'static str, &str); 1] {
    [("AGENTENV_AGE_KEY_FILE", k.file.to_str().unwrap())]
}

/// A different base64 character in the same place.
fn flip(c: u8) -> char {
    if c == b'A' { 'B' } else { 'A' }
}

#[test]
fn a_value_damaged_on_any_line_is_reported_as_damaged() {
    let (sb, alice) = populated();
    let team = sb.team_file();
    let good = armored(&team, "FIRST_ONE");
    let lines: Vec<&str> = good.lines().collect();
    // Every line between BEGIN and END, damaged at its first and at its middle character:
    // the first line holds the header (recipient stanza, MAC), the rest the payload.
    for i in 1..lines.len() - 1 {
        for at in [0, lines[i].len() / 2] {
            let mut damaged: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            let c = damaged[i].as_bytes()[at];
            damaged[i].replace_range(at..at + 1, &flip(c).to_string());
            replace_armored(&team, "FIRST_ONE", &(damaged.join("\n") + "\n"));
            let err = sb.resolve(&key_var(&alice)).unwrap_err();
            let text = err.to_string();
            let label = format!("line {i}, column {at}");
            assert_eq!(err.kind, agentenv::Kind::Input, "{label}: {text}");
            for want in ["FIRST_ONE", team.to_str().unwrap(), "is damaged"] {
                assert!(
                    text.contains(want),
                    "{label}: expected {want:?} in:\n{text}"
                );
            }
            assert!(!text.contains("not one of them"), "{label}: {text}");
            assert_absent(&label, &text, &CANARIES);
            replace_armored(&team, "FIRST_ONE", &good);
        }
    }
    assert_eq!(
        sb.resolve(&key_var(&alice)).unwrap().get("FIRST_ONE"),
        Some(FIRST)
    );
}

#[test]
fn a_damaged_recipient_stanza_is_damage_not_a_wrong_key() {
    // The case that read "your key is not one of the recipients" before: the first armor
    // line's recipient stanza (its ephemeral share) altered, so age finds no stanza that
    // opens with alice's key — although the file lists her as the recipient.
    let (sb, alice) = populated();
    let team = sb.team_file();
    let good = armored(&team, "FIRST_ONE");
    replace_armored(&team, "FIRST_ONE", &damage_share(&good));
    let shown = team.display().to_string();
    for out in [
        // Found when a value is decrypted: plain `validate` reads no key.
        sb.run(
            &["validate", "--resolve-secrets", sb.spec.to_str().unwrap()],
            "",
            &key_var(&alice),
        ),
        sb.run(
            &["provision", sb.spec.to_str().unwrap(), "--dry-run"],
            "",
            &key_var(&alice),
        ),
    ] {
        out.failed(2)
            .says(&format!("{shown}: the value of FIRST_ONE is damaged"))
            .says(&alice.public)
            .says("restore the file from git");
        assert!(!out.all().contains("not one of them"), "{}", out.all());
        assert_absent("output", &out.all(), &CANARIES);
    }
    // A key that really is not a recipient still gets the recipients message.
    let mallory = sb.key("keys/mallory.txt");
    let err = sb.resolve(&key_var(&mallory)).unwrap_err();
    assert_eq!(err.kind, agentenv::Kind::Auth, "{err}");
    assert!(err.to_string().contains("not one of them"), "{err}");
}

/// `armor` with one character of its X25519 recipient stanza's ephemeral share replaced by
/// another valid one: the header still parses, but the stanza no longer opens with the key.
fn damage_share(armor: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let lines: Vec<&str> = armor.lines().collect();
    let body: String = lines[1..lines.len() - 1].concat();
    let mut bytes = STANDARD.decode(body).unwrap();
    let stanza = b"-> X25519 ";
    let at = bytes
        .windows(stanza.len())
        .position(|w| w == stanza)
        .unwrap()
        + stanza.len()
        + 5;
    bytes[at] = flip(bytes[at]) as u8;
    let encoded = STANDARD.encode(bytes);
    let mut out = format!("{}\n", lines[0]);
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(lines[lines.len() - 1]);
    out.push('\n');
    out
}

/// Where a file may be cut and still be a whole file: the end of a top-level entry (with or
/// without its newline). Anywhere else, the cut is visible.
fn entry_ends(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut ends = Vec::new();
    let mut offset = 0;
    for (i, line) in lines.iter().enumerate() {
        offset += line.len();
        let next_is_top = lines.get(i + 1).is_none_or(|l| !l.starts_with(' '));
        if i > 0 && line.starts_with(' ') && next_is_top {
            ends.push(offset - 1);
            ends.push(offset);
        }
    }
    ends
}

#[test]
fn a_file_cut_anywhere_but_between_entries_is_refused() {
    let (sb, alice) = populated();
    let team = sb.team_file();
    let full = std::fs::read_to_string(&team).unwrap();
    let whole = entry_ends(&full);
    // After the recipients, after FIRST_ONE, after SECOND_ONE; each with and without "\n".
    assert_eq!(whole.len(), 6, "{whole:?}");
    let mut refused = 0;
    for cut in 0..full.len() {
        std::fs::write(&team, &full[..cut]).unwrap();
        match sb.resolve(&key_var(&alice)) {
            Ok(got) => {
                assert!(
                    whole.contains(&cut),
                    "cut at {cut} was read as a whole file:\n{}",
                    &full[..cut]
                );
                // What is left of the file is what resolves, no more.
                let names: Vec<&str> = got.names().collect();
                assert!(names.len() < 2 || cut + 1 >= full.len(), "{cut}: {names:?}");
            }
            Err(e) => {
                assert!(!whole.contains(&cut), "cut at {cut} between entries: {e}");
                assert_eq!(e.kind, agentenv::Kind::Input, "cut at {cut}: {e}");
                let text = e.to_string();
                assert!(
                    text.contains(team.to_str().unwrap()),
                    "cut at {cut}: {text}"
                );
                assert_absent(&format!("cut at {cut}"), &text, &CANARIES);
                refused += 1;
            }
        }
    }
    eprintln!(
        "figure: secrets file of {} bytes cut at every offset: {refused} refused, {} whole (entry boundaries)",
        full.len(),
        full.len() - refused
    );
    assert_eq!(
        refused,
        full.len() - whole.iter().filter(|&&c| c < full.len()).count()
    );

    // validate says where, for the three kinds of cut: in the recipients, in a value, in the
    // header comment (before this change the first and the last validated as ok).
    let recipient_line = full.find("  - age1").unwrap();
    let in_value = full.find("SECOND_ONE: |").unwrap() + 100;
    for (cut, want) in [
        (
            recipient_line + 20,
            "team.yaml:3:5: recipients[0]: invalid age recipient",
        ),
        (in_value, "the value of SECOND_ONE is cut short"),
        (30, "the secrets file holds nothing"),
    ] {
        std::fs::write(&team, &full[..cut]).unwrap();
        let out = sb.run(
            &["validate", sb.spec.to_str().unwrap()],
            "",
            &key_var(&alice),
        );
        out.failed(2).says(want).hides(&CANARIES);
        assert!(!out.stdout.contains(": ok"), "{}", out.stdout);
    }
}

#[test]
fn hostile_yaml_in_a_secrets_file_is_refused_in_bounded_memory() {
    let (sb, alice) = populated();
    let team = sb.team_file();
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for w in ["a", "b", "c", "d", "e", "f", "g", "h", "i"].windows(2) {
        let list = vec![format!("*{}", w[0]); 9].join(",");
        bomb.push_str(&format!("{}: &{} [{list}]\n", w[1], w[1]));
    }
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "alias bomb",
            bomb.into_bytes(),
            "team.yaml:6:8: not a valid secrets file: with the copies aliases",
        ),
        (
            "deep nesting",
            format!("x:\n{}a\n", "- ".repeat(50_000)).into_bytes(),
            "team.yaml:2:127: not a valid secrets file: lists and mappings nest more than 64",
        ),
        (
            "invalid UTF-8",
            b"recipients: []\n# caf\xe9\n".to_vec(),
            "team.yaml:2:6: not a secrets file: not UTF-8 text",
        ),
        (
            "larger than 16 MiB",
            vec![b'#'; 17 * 1024 * 1024],
            "team.yaml: not a secrets file: larger than 16 MiB",
        ),
    ];
    for (label, bytes, want) in cases {
        std::fs::write(&team, bytes).unwrap();
        let mut cmd = std::process::Command::new(crate::support::BIN);
        cmd.args(["validate", sb.spec.to_str().unwrap()])
            .env_clear()
            .env("HOME", &sb.home)
            .env("XDG_CONFIG_HOME", &sb.config)
            .env("AGENTENV_AGE_KEY_FILE", &alice.file);
        let run = bounded::run(&mut cmd, ADDRESS_SPACE, Duration::from_secs(60));
        eprintln!(
            "figure: secrets file, {label}: exit {}, {:.3} s, peak RSS {} MiB",
            run.out.code,
            run.elapsed.as_secs_f64(),
            run.max_rss_kib / 1024
        );
        run.out.failed(2).says(want).hides(&CANARIES);
    }
}

#[test]
fn a_key_file_that_never_ends_is_refused_in_bounded_memory() {
    // Before: AGENTENV_AGE_KEY_FILE=/dev/zero grew to 8.9 GB in 10 s.
    let (sb, _alice) = populated();
    let mut cmd = std::process::Command::new(crate::support::BIN);
    cmd.args(["validate", "--resolve-secrets", sb.spec.to_str().unwrap()])
        .env_clear()
        .env("HOME", &sb.home)
        .env("XDG_CONFIG_HOME", &sb.config)
        .env("AGENTENV_AGE_KEY_FILE", "/dev/zero");
    let run = bounded::run(&mut cmd, ADDRESS_SPACE, Duration::from_secs(60));
    run.out
        .failed(3)
        .says("cannot read the key file /dev/zero: larger than 1 MiB")
        .hides(&CANARIES);
}
