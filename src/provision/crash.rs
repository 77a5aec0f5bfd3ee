//! Fault injection for the reliability tests: with `AGENTENV_CRASH_AT=POINT[:N]` in its
//! environment, a provision kills itself with SIGKILL the Nth time (default: the first) it
//! passes the named point, so a test can stop it exactly there — in the middle of a fetch, a
//! checkout, a step or a state write — and check that the next plain provision converges.
//!
//! The points: `fetch` (each transfer progress report), `checkout` (each file checked out),
//! `checkout-done` (work tree written, refs not yet moved), `clone-rename` (a clone complete
//! in its temporary directory), `key-write` (the fingerprint key written, not yet in place),
//! `state-write` (a state file written, not yet renamed), `step-output` (each line a step
//! prints), `step-exited` (a step ended, its end not yet recorded).
//!
//! Unset, each point costs one load of an already-read variable.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The armed point and after how many passes it fires.
fn armed_point() -> Option<&'static (String, usize)> {
    static ARMED: OnceLock<Option<(String, usize)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("AGENTENV_CRASH_AT").ok()?;
            let (name, nth) = match spec.split_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().ok()?),
                None => (spec, 1),
            };
            Some((name, nth))
        })
        .as_ref()
}

/// Whether `point` is the armed one (to install a callback only when a test needs it).
pub fn armed(point: &str) -> bool {
    armed_point().is_some_and(|(name, _)| name == point)
}

/// Pass `point`: the Nth pass of the armed point kills this process.
pub fn point(point: &str) {
    static PASSES: AtomicUsize = AtomicUsize::new(0);
    if let Some((name, nth)) = armed_point()
        && name == point
        && PASSES.fetch_add(1, Ordering::SeqCst) + 1 == *nth
    {
        // SAFETY: kill(2) on our own pid; SIGKILL cannot be caught, nothing runs after it.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
