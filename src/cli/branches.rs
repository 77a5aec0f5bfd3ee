//! `agentenv branches ENV REPO`: list the branches a repository's remote has, inside the
//! spec's `scope.branches`, the default one marked — for picking a repository's `branch:`.
//! One line per branch with its commit, or with `--json` one document.

use std::path::PathBuf;

use super::{output, short_id};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment spec (YAML).
    pub env: PathBuf,
    /// The repository, as the spec names it (its slug, or the last segment of its URL).
    pub repo: String,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `agentenv branches ENV REPO`.
pub fn run(args: Args) -> Result<()> {
    let list = crate::branches::list(&args.env, &args.repo)?;
    if args.json {
        // Through a JSON value, so keys come out sorted, as they always have.
        let doc = serde_json::to_value(&list).expect("a branch list is plain data");
        return output::print_json_line(&doc);
    }
    let mut text = format!("{} ({})\n", list.repo, list.url);
    for b in &list.branches {
        let mark = if b.default { "* " } else { "  " };
        let note = if b.default { "  (default)" } else { "" };
        text.push_str(&format!(
            "{mark}{:<40} {}{note}\n",
            b.name,
            short_id(&b.commit)
        ));
    }
    let hidden = list.outside_scope;
    if list.branches.is_empty() {
        let in_scope = if hidden > 0 { " in scope" } else { "" };
        text.push_str(&format!("  (no branches{in_scope})\n"));
    }
    if hidden > 0 {
        text.push_str(&format!("{hidden} more outside scope.branches\n"));
    }
    output::print(&text)
}
