//! `deploy/Containerfile` and the exported manifests agree: the binary it builds and where it
//! puts it, the user the pod runs as, the toolchain the crate needs, git on board. (No
//! container engine here: the build itself is not run.)

use agentenv::export::kubernetes::{BINARY, RUN_AS};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn containerfile() -> String {
    std::fs::read_to_string(format!("{ROOT}/deploy/Containerfile")).unwrap()
}

/// The instructions (comments and continuations joined), as `(INSTRUCTION, rest)`.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        current.push_str(line.trim_end_matches('\\'));
        current.push(' ');
        if !line.ends_with('\\') {
            let (i, rest) = current
                .trim()
                .split_once(' ')
                .unwrap_or((current.trim(), ""));
            out.push((i.to_uppercase(), rest.trim().to_string()));
            current.clear();
        }
    }
    out
}

#[test]
fn the_image_builds_this_crates_binary_where_the_manifests_run_it() {
    let text = containerfile();
    let ins = instructions(&text);
    let bin = std::path::Path::new(crate::support::BIN)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        ins.iter().any(|(i, r)| i == "RUN"
            && r.contains("cargo build --release --locked")
            && r.contains(&format!("--bin {bin}"))),
        "the build stage builds --bin {bin}"
    );
    let copy = ins
        .iter()
        .find(|(i, r)| i == "COPY" && r.starts_with("--from=build"))
        .expect("the binary is copied from the build stage");
    assert_eq!(
        copy.1,
        format!("--from=build /src/target/release/{bin} {BINARY}")
    );
    let entry = ins.iter().find(|(i, _)| i == "ENTRYPOINT").unwrap();
    assert_eq!(entry.1, format!("[\"{BINARY}\"]"));
    let user = ins.iter().rev().find(|(i, _)| i == "USER").unwrap();
    assert_eq!(
        user.1,
        format!("{RUN_AS}:{RUN_AS}"),
        "the manifests' runAsUser"
    );
    assert!(
        ins.iter()
            .any(|(i, r)| i == "RUN" && r.contains("useradd --uid 10001 --gid 10001")),
        "the user exists in the image"
    );
    assert!(
        ins.iter().any(|(i, r)| i == "RUN"
            && r.contains("apt-get install")
            && r.split_whitespace().any(|w| w == "git")),
        "git is in the image"
    );
    // The build stage's toolchain is at least the crate's rust-version.
    let from = &ins.iter().find(|(i, _)| i == "FROM").unwrap().1;
    let tag = from.split(':').nth(1).unwrap().split('-').next().unwrap();
    let manifest = std::fs::read_to_string(format!("{ROOT}/Cargo.toml")).unwrap();
    let need = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    let v = |s: &str| -> Vec<u32> { s.split('.').map(|n| n.parse().unwrap()).collect() };
    assert!(v(tag) >= v(need), "rust {tag} < rust-version {need}");
    // The export's default image is what the comment tells people to build.
    assert!(text.contains(&format!("-t agentenv:{} .", env!("CARGO_PKG_VERSION"))));
}
