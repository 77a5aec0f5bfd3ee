//! `agentenv validate ENV…`: check one or more specs — shape, semantics, and that their
//! secrets resolve — and report every problem of every file, not just the first: as
//! `file:line:column: key: message` lines with hints on stderr (and `FILE: ok` on stdout for
//! a good one), or with `--json` as one document on stdout. The exit code is that of the
//! worst problem, bad input first.

use std::path::{Path, PathBuf};

use super::output;
use crate::error::{Error, Kind, Result};
use crate::spec::{Diagnostic, LoadedEnv};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One or more environment specs.
    #[arg(required = true)]
    pub envs: Vec<PathBuf>,
    /// Print one JSON document: every file with its problems (line, column, key,
    /// message, hint).
    #[arg(long)]
    pub json: bool,
}

/// `agentenv validate ENV…`.
pub fn run(args: Args) -> Result<()> {
    let mut report = Vec::new();
    let mut worst: Option<Kind> = None;
    for path in &args.envs {
        let (problems, kind) = check_one(path);
        if let Some(kind) = kind {
            // Bad input wins: it is what the user fixes first.
            worst = Some(match worst {
                Some(Kind::Input) => Kind::Input,
                _ => kind,
            });
        }
        if !args.json {
            if problems.is_empty() {
                output::print(&format!("{}: ok\n", path.display()))?;
            } else {
                for d in &problems {
                    output::eprint(&format!("{}\n", d.render(path)));
                }
            }
        }
        report.push(serde_json::json!({
            "path": path,
            "ok": problems.is_empty(),
            "errors": problems,
        }));
    }
    if args.json {
        output::print_json_pretty(&serde_json::json!({ "ok": worst.is_none(), "files": report }))?;
    }
    match worst {
        None => Ok(()),
        Some(kind) => {
            let bad = report.iter().filter(|r| r["ok"] == false).count();
            Err(Error::new(
                kind,
                format!("{bad} of {} spec(s) did not validate", report.len()),
            ))
        }
    }
}

/// One file's problems, and the kind of failure they amount to (`None` when it is good).
fn check_one(path: &Path) -> (Vec<Diagnostic>, Option<Kind>) {
    match LoadedEnv::diagnose_file(path) {
        Err(problems) => (problems, Some(Kind::Input)),
        Ok(env) => match crate::secrets::resolve(&env) {
            Ok(_) => (Vec::new(), None),
            Err(e) => {
                // The secrets error names the file already; the report prefixes it once.
                let prefix = format!("{}: ", path.display());
                let msg = e.message.strip_prefix(&prefix).unwrap_or(&e.message);
                let mut d = Diagnostic::whole_file(format!("secrets: {msg}"));
                d.hint = e.hint.clone();
                (vec![d], Some(e.kind))
            }
        },
    }
}
