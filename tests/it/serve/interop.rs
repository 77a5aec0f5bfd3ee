//! Runs tests/it/serve/mcp_smoke.py (the official MCP Python SDK against `agentenv serve`).
//! Skipped with a notice when `python3 -c "import mcp"` fails — except under CI, where a
//! missing SDK is a failure (CI runs `pip install mcp`).

use std::process::Command;

use crate::support::git::git;
use crate::support::workspace::small_app;
use crate::support::{BIN, skip_or_fail_in_ci};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/serve/mcp_smoke.py");

fn python_has_mcp() -> bool {
    Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn python_sdk_lists_and_calls_every_tool() {
    if !python_has_mcp() {
        return skip_or_fail_in_ci(
            "the MCP Python SDK is missing (`python3 -c 'import mcp'` fails): `pip install mcp`",
        );
    }
    let fx = small_app();
    let head = git(&fx.workdir.join("app"), &["rev-parse", "HEAD"]);
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args([
            BIN,
            fx.spec.to_str().unwrap(),
            fx.workdir.to_str().unwrap(),
            "app",
            &head,
        ])
        .env_remove("AGENTENV_WORKDIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "smoke test failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("connected to agentenv"), "{stdout}");
    assert!(stdout.contains("ok search_code"), "{stdout}");
}
