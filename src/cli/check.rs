//! `agentenv check ENV`: test the connection before an agent depends on it — each
//! provider's authentication and workspace or project, each repository by git and by API.
//! One `OK`/`FAIL` line per check with the fix under a failure, or with `--json` one
//! document; the exit code is non-zero when any check fails. A secret that cannot be resolved
//! here fails the checks that need it, each naming the secret and how to provide it.

use std::path::PathBuf;

use super::output;
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment spec (YAML).
    pub env: PathBuf,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `agentenv check ENV`.
pub fn run(args: Args) -> Result<()> {
    let report = crate::check::check(&args.env)?;
    if args.json {
        let doc = serde_json::json!({ "ok": report.ok(), "checks": report.checks });
        output::print_json_pretty(&doc)?;
    } else {
        let mut text = String::new();
        for o in &report.checks {
            let subject = match (&o.provider, &o.repo, &o.secret) {
                (_, Some(r), _) => format!("repository {r}"),
                (Some(p), None, _) => format!("provider {p}"),
                (None, None, Some(s)) => s.clone(),
                (None, None, None) => String::new(),
            };
            text.push_str(&format!(
                "{} {:<9} {subject}: {}\n",
                if o.ok { "OK  " } else { "FAIL" },
                o.check,
                o.detail.replace('\n', "\n     ")
            ));
            if let Some(fix) = &o.fix {
                text.push_str(&format!("     fix: {fix}\n"));
            }
        }
        output::print(&text)?;
    }
    report.result()
}
