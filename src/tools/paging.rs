//! Paging: the `limit` every list tool takes, and opaque cursors.
//!
//! A cursor is base64url of `kind|payload`. The kind stops a cursor of one tool from being
//! replayed into another; the payload is validated again by the tool that reads it. Cursors
//! over API pages are also bound to the call's other arguments (provider, repository,
//! filters), so a cursor replayed with other arguments is refused rather than misread.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{Error, Result};

const DEFAULT_LIMIT: usize = 30;
const MAX_LIMIT: usize = 100;

/// `limit` with its default (30) and bounds (1 to 100).
pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(Error::input(format!(
            "limit {n} is out of range; use 1 to {MAX_LIMIT} and follow next_cursor for more"
        ))),
    }
}

pub(crate) fn encode(kind: &str, payload: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}|{payload}"))
}

/// The payload of a cursor made by [`encode`] with the same `kind`.
pub(crate) fn decode(kind: &str, cursor: &str) -> Result<String> {
    let bad = || {
        Error::input(
            "invalid cursor: pass the `next_cursor` of the previous page unchanged, with the same other arguments, or omit it to start over",
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim_end_matches('='))
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let payload = text
        .strip_prefix(kind)
        .and_then(|t| t.strip_prefix('|'))
        .ok_or_else(bad)?;
    Ok(payload.to_string())
}

/// An API page position as an agent's cursor, bound to what the call asked for (`binding`).
pub(crate) fn encode_bound(kind: &str, binding: &str, next: Option<String>) -> Option<String> {
    next.map(|n| encode(kind, &format!("{binding}\n{n}")))
}

/// The page position inside a cursor made by [`encode_bound`] with the same binding.
pub(crate) fn decode_bound(
    kind: &str,
    binding: &str,
    given: Option<&str>,
) -> Result<Option<String>> {
    let Some(c) = given else { return Ok(None) };
    let payload = decode(kind, c)?;
    match payload.split_once('\n') {
        Some((b, rest)) if b == binding => Ok(Some(rest.to_string())),
        _ => Err(Error::input(
            "invalid cursor: it belongs to a call with other arguments; pass the `next_cursor` of the previous page with the same other arguments, or omit it to start over",
        )),
    }
}
