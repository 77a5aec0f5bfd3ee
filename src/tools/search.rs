//! `search_code`: ripgrep's crates over the checkouts (working tree or any ref's tree).

use super::Tool;

pub fn tools() -> Vec<Tool> {
    Vec::new()
}
