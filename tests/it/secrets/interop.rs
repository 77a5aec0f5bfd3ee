//! Interoperability with the reference age CLI (Debian package `age`): what agentenv encrypts,
//! `age -d` decrypts, and what `age -e -a` encrypts in agentenv's plaintext format, agentenv
//! accepts. Skipped with a notice when `age` is missing, except under CI, where that fails.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::secrets::*;
use crate::support::skip_or_fail_in_ci;

const VALUE: &str = "interop-canary-3e9f60\nsecond line";

/// Is the age CLI installed? If not, the test is skipped with a notice (a failure under CI).
#[track_caller]
fn have_age() -> bool {
    let found = Command::new("age")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip_or_fail_in_ci("the `age` CLI is not installed: `apt-get install age`");
    }
    found
}

fn age(args: &[&str], stdin: &[u8]) -> (bool, Vec<u8>, String) {
    let mut child = Command::new("age")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn age_cli_decrypts_what_agentenv_encrypts() {
    if !have_age() {
        return;
    }
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &[]);
    sb.secret("create", &["--team", "BB_TOKEN"], VALUE, &[])
        .ok();
    let block = armored(&sb.team_file(), "BB_TOKEN");
    let (ok, plain, err) = age(&["-d", "-i", key.file.to_str().unwrap()], block.as_bytes());
    assert!(ok, "age -d failed: {err}");
    // The documented plaintext: the name binding line, then the value exactly.
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        format!("agentenv-secret/v1 BB_TOKEN\n{VALUE}")
    );
}

#[test]
fn agentenv_accepts_what_age_cli_encrypts_in_its_format() {
    if !have_age() {
        return;
    }
    let sb = Sandbox::new();
    let key = sb.key("keys/alice.txt");
    sb.write_spec(&[&key.public], &[]);
    // A placeholder entry, then the value produced by age replaces it.
    sb.secret("create", &["--team", "BB_TOKEN"], "placeholder", &[])
        .ok();
    let plaintext = format!("agentenv-secret/v1 BB_TOKEN\n{VALUE}");
    let (ok, armor, err) = age(&["-e", "-a", "-r", &key.public], plaintext.as_bytes());
    assert!(ok, "age -e failed: {err}");
    replace_armored(
        &sb.team_file(),
        "BB_TOKEN",
        &String::from_utf8(armor).unwrap(),
    );
    let vars = [("AGENTENV_AGE_KEY_FILE", key.file.to_str().unwrap())];
    let got = sb.resolve(&vars).unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some(VALUE));

    // Without the binding line the value is refused, with the way to fix it — and the
    // plaintext is not echoed.
    let (ok, armor, _) = age(&["-e", "-a", "-r", &key.public], VALUE.as_bytes());
    assert!(ok);
    replace_armored(
        &sb.team_file(),
        "BB_TOKEN",
        &String::from_utf8(armor).unwrap(),
    );
    let err = sb.resolve(&vars).unwrap_err();
    assert!(err.to_string().contains("not bound to a name"), "{err}");
    assert!(err.to_string().contains("agentenv-secret/v1"), "{err}");
    assert!(!err.to_string().contains("interop-canary"), "{err}");

    // The import path for an existing age file: decrypt with age, pipe into `secret update`.
    let bare = armored(&sb.team_file(), "BB_TOKEN");
    let (ok, plain, _) = age(&["-d", "-i", key.file.to_str().unwrap()], bare.as_bytes());
    assert!(ok);
    sb.secret(
        "update",
        &["--team", "BB_TOKEN"],
        &String::from_utf8(plain).unwrap(),
        &[],
    )
    .ok()
    .hides(&["interop-canary"]);
    assert_eq!(sb.resolve(&vars).unwrap().get("BB_TOKEN"), Some(VALUE));
}

#[test]
fn keys_made_by_age_keygen_are_identities() {
    if !have_age() {
        return;
    }
    let sb = Sandbox::new();
    let keyfile = sb.path("keys/keygen.txt");
    std::fs::create_dir_all(keyfile.parent().unwrap()).unwrap();
    let status = Command::new("age-keygen")
        .arg("-o")
        .arg(&keyfile)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&keyfile)
        .output()
        .unwrap();
    let public = String::from_utf8(public.stdout).unwrap();
    sb.write_spec(&[public.trim()], &[]);
    sb.secret("create", &["--team", "BB_TOKEN"], VALUE, &[])
        .ok();
    let key_text = std::fs::read_to_string(&keyfile).unwrap();
    let got = sb
        .resolve(&[("AGENTENV_AGE_KEY", key_text.as_str())])
        .unwrap();
    assert_eq!(got.get("BB_TOKEN"), Some(VALUE));
}
