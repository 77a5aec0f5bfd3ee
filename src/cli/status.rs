//! `agentenv status ENV`: show what is provisioned in the workdir — each repository's
//! branch, HEAD and local changes, each step's last successful run — from the checkouts and
//! the state file, changing nothing. Human lines, or with `--json` one document.

use super::{SpecAndWorkdir, output, short_id};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub at: SpecAndWorkdir,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `agentenv status ENV`.
pub fn run(args: Args) -> Result<()> {
    let status = crate::provision::status(&args.at.env, args.at.workdir.as_deref())?;
    if args.json {
        // Through a JSON value, so keys come out sorted, as they always have.
        let doc = serde_json::to_value(&status).expect("a status is plain data");
        return output::print_json_line(&doc);
    }
    let mut text = format!("workdir {}\n", status.workdir.display());
    if !status.repos.is_empty() {
        text.push_str("repositories:\n");
    }
    for r in &status.repos {
        if !r.present {
            text.push_str(&format!("  {:<24} not cloned\n", r.name));
            continue;
        }
        text.push_str(&format!(
            "  {:<24} {} @ {}{}\n",
            r.name,
            r.branch.as_deref().unwrap_or("(detached)"),
            r.head.as_deref().map(short_id).unwrap_or("-"),
            if r.dirty { "  (local changes)" } else { "" }
        ));
    }
    if !status.steps.is_empty() {
        text.push_str("steps:\n");
    }
    for s in &status.steps {
        match &s.time {
            Some(t) => text.push_str(&format!("  {:<24} {} at {t}\n", s.name, s.last_result)),
            None => text.push_str(&format!("  {:<24} never ran successfully\n", s.name)),
        }
    }
    output::print(&text)
}
