//! Hostile specs: an alias bomb, nesting deep enough to overflow a recursive reader, invalid
//! UTF-8, files far larger than a spec. Each is refused with exit code 2 and a
//! `file:line:column` (or the file, for its size) by the binary running under a 512 MiB
//! address-space ceiling, well within a hang guard. The figures (time, peak RSS) are printed
//! for the README; run with `--nocapture` to see them.

use std::path::Path;
use std::time::Duration;

use crate::support::agentenv_cmd;
use crate::support::bounded::{self, ADDRESS_SPACE, Bounded};

const DEADLINE: Duration = Duration::from_secs(60);

/// `agentenv ARGS` under the memory ceiling.
fn bounded(args: &[&str]) -> Bounded {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = agentenv_cmd(args);
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path());
    bounded::run(&mut cmd, ADDRESS_SPACE, DEADLINE)
}

/// `validate` and `provision --dry-run` both refuse the spec at `path` with exit code 2 and
/// say `want` after `path:`; prints the figures.
#[track_caller]
fn refused(label: &str, path: &Path, want: &str) {
    let shown = path.to_str().unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let runs = [
        ("validate", vec!["validate", shown]),
        (
            "provision --dry-run",
            vec![
                "provision",
                shown,
                "--dry-run",
                "--workdir",
                workdir.path().to_str().unwrap(),
            ],
        ),
    ];
    for (command, args) in runs {
        let run = bounded(&args);
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "figure: {label}: {command}: {size} bytes, exit {}, {:.3} s, peak RSS {} MiB",
            run.out.code,
            run.elapsed.as_secs_f64(),
            run.max_rss_kib / 1024
        );
        run.out.failed(2).says(&format!("{shown}:{want}"));
        assert!(!run.out.stderr.contains("panicked"), "{}", run.out.stderr);
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: impl AsRef<[u8]>) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const HEAD: &str = "version: 1\nname: hostile\n";

#[test]
fn an_alias_bomb_is_refused_at_the_alias_that_crosses_the_budget() {
    // Nine anchors, each a list of nine aliases of the one before: 9^9 values from ~300 bytes.
    // Before: 24 GB of memory and still growing when killed after 60 s.
    let mut text = String::from(HEAD);
    text.push_str("a: &a [x, x, x, x, x, x, x, x, x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let list = vec![format!("*{}", w[0]); 9].join(",");
        text.push_str(&format!("{}: &{} [{list}]\n", w[1], w[1]));
    }
    assert!(text.len() < 400, "{} bytes", text.len());
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bomb.yaml", &text);
    // The lists up to `e` hold 74,718 copied values; the first alias of `e` (66,430 values
    // each), on line 8, crosses 100,000.
    refused(
        "alias bomb",
        &path,
        "8:8: with the copies aliases (`*name`) make",
    );

    // One long string aliased a hundred times: few values, much text.
    let long = format!(
        "{HEAD}a: &s '{}'\nb: [{}]\n",
        "x".repeat(200_000),
        vec!["*s"; 100].join(", ")
    );
    let path = write(&dir, "strings.yaml", &long);
    refused("string alias bomb", &path, "4:");
}

#[test]
fn deep_nesting_is_refused_before_anything_recurses() {
    let dir = tempfile::tempdir().unwrap();
    let levels = 50_000;
    // Before: the block form overflowed the stack (exit 134), 100 KB of `- `.
    let block = format!("{HEAD}x:\n{}a\n", "- ".repeat(levels));
    // The root mapping is the first level: the 64th `-` opens the 65th.
    refused(
        "deep block lists",
        &write(&dir, "block.yaml", block),
        "4:127: lists and mappings nest more than 64 levels deep here",
    );
    let flow = format!("{HEAD}x: {}{}\n", "[".repeat(levels), "]".repeat(levels));
    refused(
        "deep flow lists",
        &write(&dir, "flow.yaml", flow),
        "3:259: lists and mappings nest more than 64 levels deep",
    );
    let maps = format!(
        "{HEAD}x: {}1{}\n",
        "{a: ".repeat(levels),
        "}".repeat(levels)
    );
    refused(
        "deep flow mappings",
        &write(&dir, "maps.yaml", maps),
        "3:256: lists and mappings nest more than 64 levels deep",
    );
    // Block mappings nest by indentation: 100 levels in 5 KB.
    let mut indented = format!("{HEAD}x:\n");
    for depth in 1..=100 {
        indented.push_str(&format!("{}k:\n", " ".repeat(depth)));
    }
    refused(
        "deep block mappings",
        &write(&dir, "indented.yaml", indented),
        "67:66: lists and mappings nest more than 64 levels deep",
    );
    // Just under the limit is still read (and refused for what it is: an unknown key).
    let fine = format!("{HEAD}x: {}1{}\n", "[".repeat(62), "]".repeat(62));
    let out = bounded(&["validate", write(&dir, "fine.yaml", fine).to_str().unwrap()]).out;
    out.failed(2).says("unknown key `x`");
}

#[test]
fn invalid_utf8_gets_its_byte_offset_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // Latin-1 é in a comment on line 3, after `# caf`.
    let path = write(&dir, "latin1.yaml", b"version: 1\nname: x\n# caf\xe9\n");
    refused(
        "Latin-1 byte",
        &path,
        "3:6: not UTF-8 text: the byte at offset 24 (0xe9) is not valid UTF-8",
    );
    let out = bounded(&["validate", path.to_str().unwrap()]).out;
    out.says("save the file as UTF-8");
    // A UTF-16 file (as some Windows editors save) is named as such.
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(HEAD.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let path = write(&dir, "utf16.yaml", utf16);
    refused("UTF-16", &path, "1:1: not UTF-8 text: the byte at offset 0");
    bounded(&["validate", path.to_str().unwrap()])
        .out
        .says("the file is UTF-16");
}

#[test]
fn files_larger_than_a_spec_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!("{HEAD}# {}\n", "x".repeat(2 * 1024 * 1024));
    let want = " the spec is larger than 1024 KiB";
    refused("2 MiB spec", &write(&dir, "big.yaml", big), want);
    // A device that never ends costs a read of 1 MiB.
    refused("/dev/zero", Path::new("/dev/zero"), want);
    // Under the size limit, a file of values is bounded by their number: 200,000 in 400 KB.
    let flat = format!("{HEAD}repos: [{}1]\n", "1,".repeat(200_000));
    refused(
        "200,000 values",
        &write(&dir, "flat.yaml", flat),
        "3:199995: this file holds more than 100000 values",
    );
    // A file with many problems reports the first hundred and how many more.
    let many = format!("{HEAD}repos: [{}1]\n", "1,".repeat(5_000));
    let out = bounded(&["validate", write(&dir, "many.yaml", many).to_str().unwrap()]).out;
    out.failed(2)
        .says("… and 4901 more problems (the first 100 are shown)");
    assert!(
        out.stderr.lines().count() < 300,
        "{} lines",
        out.stderr.lines().count()
    );
}
