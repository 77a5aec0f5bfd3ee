//! Tools answered from the local checkout, at any ref: list_branches, browse, read_file,
//! list_commits, get_commit.

use super::Tool;

pub fn tools() -> Vec<Tool> {
    Vec::new()
}
