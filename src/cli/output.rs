//! The one way commands write: [`print`] and the JSON forms on stdout, [`eprint`] on stderr.
//!
//! A reader that goes away (`agentenv schema | head -1`) is a normal end, as it is for any
//! Unix filter: a closed pipe (EPIPE) counts as written, so no command panics or fails
//! because of it, and a provision keeps going, since its work does not depend on anyone
//! reading. Any other write error (a full disk behind `> file`) is a failure.

use std::io::Write;

use serde::Serialize;

use crate::error::{Error, Result};

/// Write `text` to stdout as it is, and flush.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::failure(format!("writing to stdout: {e}")).with_source(e))
        }
        _ => Ok(()),
    }
}

/// One JSON value on one line (events, documents a script reads line by line).
pub fn print_json_line(value: &impl Serialize) -> Result<()> {
    print(&format!("{}\n", to_json(value, false)))
}

/// One JSON document, indented for people.
pub fn print_json_pretty(value: &impl Serialize) -> Result<()> {
    print(&format!("{}\n", to_json(value, true)))
}

fn to_json(value: &impl Serialize, pretty: bool) -> String {
    // Every report is plain data (strings, numbers, maps with string keys): serialising it
    // cannot fail.
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    text.expect("reports serialize to JSON")
}

/// Write `text` to stderr. Errors are ignored: stderr is where failures would be reported,
/// so a closed one leaves nothing better to do.
pub fn eprint(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}
