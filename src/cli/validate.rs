//! `agentenv validate ENV…`: check one or more specs — shape, semantics, and their secrets —
//! and report every problem of every file, not just the first: as `file:line:column: key:
//! message` lines with hints on stderr (and `FILE: ok` on stdout for a good one), or with
//! `--json` as one document on stdout. The exit code is that of the worst problem, bad input
//! first; warnings do not change it.
//!
//! Secrets are checked without any value by default — every secret a provider names is
//! declared (team file, `secrets.from_env`, `secrets.personal`) — because validation belongs
//! where the specs are reviewed, which has no keys and no tokens. `--resolve-secrets` also
//! resolves every value as `provision` would, on a machine that has them.

use std::path::{Path, PathBuf};

use super::output;
use crate::error::{Error, Kind, Result};
use crate::spec::{Diagnostic, LoadedEnv};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One or more environment specs.
    #[arg(required = true)]
    pub envs: Vec<PathBuf>,
    /// Print one JSON document: every file with its problems and warnings (line, column,
    /// key, message, hint).
    #[arg(long)]
    pub json: bool,
    /// Also resolve every secret as `provision` would: decrypt the team and personal values
    /// (needs an age identity) and read the `secrets.from_env` variables. Without it, secrets
    /// are checked without any value: each one a provider names must be declared.
    #[arg(long)]
    pub resolve_secrets: bool,
}

/// `agentenv validate ENV…`.
pub fn run(args: Args) -> Result<()> {
    let mut report = Vec::new();
    let mut worst: Option<Kind> = None;
    for path in &args.envs {
        let checked = check_one(path, args.resolve_secrets);
        if let Some(kind) = checked.kind {
            // Bad input wins: it is what the user fixes first.
            worst = Some(match worst {
                Some(Kind::Input) => Kind::Input,
                _ => kind,
            });
        }
        if !args.json {
            let mut text = String::new();
            for d in &checked.warnings {
                text.push_str(&render_warning(d, path));
                text.push('\n');
            }
            for d in &checked.errors {
                text.push_str(&d.render(path));
                text.push('\n');
            }
            output::eprint(&text);
            if checked.errors.is_empty() {
                output::print(&format!("{}: ok\n", path.display()))?;
            }
        }
        report.push(serde_json::json!({
            "path": path,
            "ok": checked.errors.is_empty(),
            "errors": checked.errors,
            "warnings": checked.warnings,
        }));
    }
    if args.json {
        output::print_json_pretty(&serde_json::json!({ "ok": worst.is_none(), "files": report }))?;
    }
    match worst {
        None => Ok(()),
        Some(kind) => {
            let bad = report.iter().filter(|r| r["ok"] == false).count();
            let mut e = Error::new(
                kind,
                format!("{bad} of {} spec(s) did not validate", report.len()),
            );
            if args.resolve_secrets && kind == Kind::Auth {
                e = e.with_hint(
                    "without the keys, `agentenv validate` (no --resolve-secrets) still checks that every secret is declared",
                );
            }
            Err(e)
        }
    }
}

/// One file's problems and warnings, and the kind of failure the problems amount to.
struct Checked {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    kind: Option<Kind>,
}

fn check_one(path: &Path, resolve_secrets: bool) -> Checked {
    let env = match LoadedEnv::diagnose_file(path) {
        Ok(env) => env,
        Err(errors) => {
            return Checked {
                errors,
                warnings: Vec::new(),
                kind: Some(Kind::Input),
            };
        }
    };
    let declared = crate::secrets::declared(&env);
    let mut checked = Checked {
        kind: (!declared.errors.is_empty()).then_some(Kind::Input),
        errors: declared.errors,
        warnings: declared.warnings,
    };
    // An undeclared secret would only be reported again as unresolvable.
    if resolve_secrets && checked.errors.is_empty() {
        let problems = crate::secrets::problems(&env, &crate::secrets::process_env);
        checked.kind = problems.first().map(|(kind, _)| *kind);
        checked.errors = problems.into_iter().map(|(_, d)| d).collect();
    }
    checked
}

/// `file:line:column: warning: key: message` and the hint below, as compilers write them.
pub(crate) fn render_warning(d: &Diagnostic, file: &Path) -> String {
    let mut w = d.clone();
    w.message = if d.key.is_empty() {
        format!("warning: {}", d.message)
    } else {
        format!("warning: {}: {}", d.key, d.message)
    };
    w.key = String::new();
    w.render(file)
}
