//! git itself: over the network, and over `git2::Repository`.
//!
//! ## Transport
//!
//! agentenv's own smart-HTTP transport for libgit2, the per-operation
//! session it reads (which credential goes to which origin, the timeouts), and the typed
//! failure it records for the caller to classify.
//!
//! libgit2's built-in HTTP transport cannot keep the promises agentenv makes: its only timeout
//! is per read (a server that drips a byte every few seconds holds it forever), extra headers
//! and credentials follow a redirect to any host, and its failures come back as text. So
//! `http://` and `https://` are served by [`transport`] (reqwest, rustls), registered once with
//! libgit2 by [`init`]; local paths and `file://` never reach it.
//!
//! Settings reach the transport through a thread-local [`Session`]: libgit2 creates a
//! transport on the thread that opens the connection, so [`Connection::open`] enters the
//! session there and the transport keeps it for the connection's life. Without a session
//! (tests, anonymous use) the defaults apply and no credential is sent. After a failed git2
//! call, [`take_failure`] hands over what went wrong as a [`Failure`], on this thread.
//!
//! [`fetch`] brings more into an existing checkout on demand: another in-scope branch, or more
//! of a branch's history, into `refs/agentenv/branches/*`, under a per-call budget.
//!
//! ## Clone cache
//!
//! [`cache`]: the node-level clone cache (one bare mirror per repository URL, locked, bounded),
//! from which new checkouts are made without fetching what the node already has.
//!
//! ## History semantics
//!
//! Proven equal to the git CLI by `tests/it/git_semantics.rs`):
//! [`log`] walks history as `git log` does (order, default history simplification for paths,
//! `--since`/`--until`, `--author`, `--skip`, `-n`); [`diffstat`] lists a commit's changes as
//! `git diff-tree -r -M --numstat` does, with git's rename detection ([`similarity`] is
//! diffcore-delta's similarity estimate); [`rev`] resolves abbreviated ids and `~`/`^` ancestry
//! as `git rev-parse` does. [`objects`] reads commits and trees as git parses them and holds the
//! one error type of these modules, [`HistoryError`], whose [`NeedsHistory`] case tells a
//! caller on a shallow clone how much more history an answer needs.

pub mod cache;
pub mod diffstat;
mod failure;
pub mod fetch;
pub mod log;
pub mod objects;
pub mod rev;
mod session;
pub mod similarity;
mod transport;

pub use failure::{Failure, Waiting};
pub use objects::{HistoryError, NeedsHistory};
pub use session::{
    CONNECT_TIMEOUT_VAR, LOW_SPEED_LIMIT_VAR, LOW_SPEED_TIME_VAR, MAX_RETRY_AFTER, Session,
    SessionGuard, Settings, take_failure,
};

use std::sync::{Arc, OnceLock};

use git2::{Direction, Remote, RemoteConnection};

/// Register the HTTP(S) transport with libgit2, once per process.
pub fn init() -> Result<(), git2::Error> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            for scheme in ["http", "https"] {
                // SAFETY: libgit2 wants registration synchronised with transport creation.
                // This runs once, and every connection agentenv opens goes through
                // `Connection::open`, which waits here before creating a transport.
                unsafe { git2::transport::register(scheme, transport::factory) }
                    .map_err(|e| e.message().to_string())?;
            }
            Ok(())
        })
        .clone()
        .map_err(|m| git2::Error::from_str(&format!("cannot set up the git HTTP transport: {m}")))
}

/// Record `failure` for [`take_failure`] and turn it into the error libgit2 passes on.
pub(crate) fn fail(failure: Failure) -> git2::Error {
    let e = git2::Error::new(
        git2::ErrorCode::GenericError,
        failure.git2_class(),
        failure.to_string(),
    );
    session::record(failure);
    e
}

/// An open fetch connection to a remote, inside its session. Disconnects on drop.
pub struct Connection<'r, 'c> {
    // Dropped first: the disconnect still sees the session.
    conn: RemoteConnection<'r, 'c, 'static>,
    _session: SessionGuard,
}

impl<'r, 'c> Connection<'r, 'c> {
    /// Connect `remote` for fetching, with `session`'s credential and timeouts.
    pub fn open(
        remote: &'c mut Remote<'r>,
        session: Arc<Session>,
    ) -> Result<Connection<'r, 'c>, git2::Error> {
        init()?;
        let guard = session.enter();
        let conn = remote.connect_auth(Direction::Fetch, None, None)?;
        Ok(Connection {
            conn,
            _session: guard,
        })
    }

    pub fn list(&self) -> Result<&[git2::RemoteHead<'_>], git2::Error> {
        self.conn.list()
    }

    pub fn default_branch(&self) -> Result<git2::Buf, git2::Error> {
        self.conn.default_branch()
    }

    /// The connected remote, to fetch on this same connection.
    pub fn remote(&mut self) -> &mut Remote<'r> {
        self.conn.remote()
    }
}
