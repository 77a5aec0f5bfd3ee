//! Transient failures are retried (bounded, with backoff), answers are not; a clone cut
//! mid-pack leaves no half checkout. Counted at the emulator.

use crate::support::git::commit;
use crate::support::remote::*;
use crate::support::{code, stderr};

fn dc(f: &Fixture, repos: &str) -> std::process::Output {
    let spec = f.dc_spec(repos, "");
    f.provision(&spec, DC_TOKEN)
}

/// Only the checkout and agentenv's own directory: no temporary clone left behind.
fn assert_tidy(f: &Fixture) {
    let mut names: Vec<String> = std::fs::read_dir(f.workdir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".agentenv", "payments-api"]);
}

#[test]
fn server_errors_then_success_are_retried() {
    let f = Fixture::new();
    f.emu.fail_next("*/info/refs*", 2, 503);
    let out = dc(&f, ONE_DC_REPO);
    assert_eq!(code(&out), 0);
    assert_eq!(f.emu.count("*/info/refs*"), 3, "two 503s, then the answer");
    assert!(f.workdir().join("payments-api/README.md").exists());
    assert_tidy(&f);
}

#[test]
fn rate_limiting_is_retried() {
    let f = Fixture::new();
    f.emu.fail_next("*/info/refs*", 1, 429);
    let out = dc(&f, ONE_DC_REPO);
    assert_eq!(code(&out), 0);
    assert_eq!(f.emu.count("*/info/refs*"), 2);
}

#[test]
fn retries_are_bounded() {
    let f = Fixture::new();
    f.emu.fail_next("*/info/refs*", 100, 502);
    let out = dc(&f, ONE_DC_REPO);
    assert_eq!(code(&out), 5, "remote unavailable");
    assert!(stderr(&out).contains("HTTP 502"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("after 4 attempts"),
        "{}",
        stderr(&out)
    );
    assert_eq!(f.emu.count("*/info/refs*"), 4);
    assert!(!f.workdir().join("payments-api").exists());
}

#[test]
fn a_missing_repository_is_not_retried() {
    let f = Fixture::new();
    let out = dc(&f, "  - provider: dc\n    slug: no-such-repo");
    assert_eq!(code(&out), 4, "not found");
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));
    assert!(stderr(&out).contains("check the slug"), "{}", stderr(&out));
    assert_eq!(f.emu.count("*/info/refs*"), 1, "404 is an answer");
}

/// A full clone: one upload-pack POST whose response is the pack (a shallow one negotiates
/// first), so cutting its body after a few hundred bytes cuts the pack itself.
const FULL_DC_REPO: &str = "  - provider: dc\n    slug: payments-api\n    depth: 0";

#[test]
fn a_connection_reset_mid_pack_is_retried_without_a_half_checkout() {
    let f = Fixture::new();
    let noise: String = (0..20_000).map(|i| format!("{i:x}")).collect();
    commit(&f.upstream, "big.txt", &noise);
    f.emu.reset_next("POST */git-upload-pack", 1, 300);
    let out = dc(&f, FULL_DC_REPO);
    assert_eq!(code(&out), 0);
    assert_eq!(
        f.emu.count("POST */git-upload-pack"),
        2,
        "cut once, then whole"
    );
    assert!(f.workdir().join("payments-api/file3.txt").exists());
    assert_tidy(&f);
}

#[test]
fn a_reset_on_every_try_leaves_nothing_behind() {
    let f = Fixture::new();
    f.emu.reset_next("POST */git-upload-pack", 100, 300);
    let out = dc(&f, FULL_DC_REPO);
    assert_ne!(code(&out), 0);
    assert_eq!(f.emu.count("POST */git-upload-pack"), 4);
    let names: Vec<_> = std::fs::read_dir(f.workdir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [".agentenv"], "no partial clone");
}
