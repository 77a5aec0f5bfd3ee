//! One page of a collection and the opaque [`Cursor`] of the next one, over both paging
//! schemes: Cloud's `next` links and Data Center's `start`/`isLastPage`/`nextPageStart`.
//!
//! A cursor comes back from outside (an agent passes it to a tool), so the client never
//! trusts it: a Cloud cursor must still address the endpoint of the call it is given to (see
//! `client.rs`), a Data Center cursor is only a position and a page size.

use serde_json::Value;

use super::{ApiError, ApiErrorKind, FromCloud, FromDataCenter};

/// One page of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub values: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Which page of a list to read: the first, of `limit` items, or the one `cursor` names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub limit: usize,
    pub cursor: Option<&'a Cursor>,
}

impl<'a> At<'a> {
    pub(crate) fn new(limit: usize, cursor: Option<&'a Cursor>) -> At<'a> {
        At { limit, cursor }
    }

    /// The first page of `limit` items.
    pub(crate) fn first(limit: usize) -> At<'a> {
        At {
            limit,
            cursor: None,
        }
    }
}

/// Where the next page of a collection starts. Hand out [`Cursor::as_str`] and make it again
/// with `Cursor::from(text)`: the client checks it on use, against the call it is given to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// A Data Center position: the next page's `start` and the page size.
    pub(crate) fn datacenter(start: u64, limit: usize) -> Cursor {
        Cursor(format!("{start}:{limit}"))
    }

    /// The `start` and page size of a Data Center cursor, or an error for anything else.
    pub(crate) fn datacenter_position(&self) -> Result<(u64, usize), ApiError> {
        let (start, limit) = self.0.split_once(':').ok_or_else(invalid_cursor)?;
        let start = start.parse::<u64>().map_err(|_| invalid_cursor())?;
        let limit = limit
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(invalid_cursor)?;
        Ok((start, limit))
    }
}

impl From<String> for Cursor {
    fn from(s: String) -> Cursor {
        Cursor(s)
    }
}

impl From<&str> for Cursor {
    fn from(s: &str) -> Cursor {
        Cursor(s.to_string())
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn invalid_cursor() -> ApiError {
    ApiError::new(
        ApiErrorKind::Invalid,
        "invalid cursor: pass the `next` cursor of the previous page unchanged, to the same call with the same other arguments",
    )
}

pub(crate) fn bad_shape(what: &str) -> ApiError {
    ApiError::new(
        ApiErrorKind::BadResponse,
        format!("the server's answer {what}; the API answered in an unexpected shape"),
    )
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            values: self.values.into_iter().map(f).collect(),
            next: self.next,
        }
    }

    /// A Cloud page (`values`, `next`). `next` is kept as the server wrote it (an absolute
    /// URL); the client rewrites it relative to its API root after checking its origin.
    pub fn from_cloud(v: &Value) -> Result<Page<T>, ApiError>
    where
        T: FromCloud,
    {
        Page::decode_cloud(v, T::from_cloud)
    }

    /// A Data Center page (`values`, `isLastPage`, `nextPageStart`, `start`, `limit`).
    pub fn from_datacenter(v: &Value) -> Result<Page<T>, ApiError>
    where
        T: FromDataCenter,
    {
        Page::decode_datacenter(v, T::from_datacenter)
    }

    pub(crate) fn decode_cloud(
        v: &Value,
        decode: impl Fn(&Value) -> Result<T, ApiError>,
    ) -> Result<Page<T>, ApiError> {
        let values = decode_values(v, decode)?;
        let next = match v.get("next") {
            None | Some(Value::Null) => None,
            Some(Value::String(n)) => Some(Cursor(n.clone())),
            Some(_) => return Err(bad_shape("has a `next` that is not a link")),
        };
        Ok(Page { values, next })
    }

    pub(crate) fn decode_datacenter(
        v: &Value,
        decode: impl Fn(&Value) -> Result<T, ApiError>,
    ) -> Result<Page<T>, ApiError> {
        let values = decode_values(v, decode)?;
        let start = v.get("start").and_then(Value::as_u64).unwrap_or(0);
        // The server may cap the page size: read it back rather than trusting what was asked.
        let limit = v
            .get("limit")
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .filter(|n| *n > 0)
            .unwrap_or(values.len().max(1));
        let last = v.get("isLastPage").and_then(Value::as_bool).unwrap_or(true);
        // A `nextPageStart` that does not move forward would loop forever: read it as the end.
        let next = match v.get("nextPageStart").and_then(Value::as_u64) {
            Some(n) if !last && n > start => Some(Cursor::datacenter(n, limit)),
            _ => None,
        };
        Ok(Page { values, next })
    }
}

fn decode_values<T>(
    v: &Value,
    decode: impl Fn(&Value) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    v.get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_shape("has no `values` list"))?
        .iter()
        .map(decode)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datacenter_pages_stop_at_the_last_page_and_never_go_backwards() {
        let p: Page<Value> = Page::from_datacenter(&json!({
            "values": [1, 2], "start": 0, "limit": 2, "isLastPage": false, "nextPageStart": 2
        }))
        .unwrap();
        assert_eq!(p.next, Some(Cursor::from("2:2")));
        assert_eq!(p.next.unwrap().datacenter_position().unwrap(), (2, 2));
        for end in [
            json!({"values": [], "isLastPage": true, "nextPageStart": null}),
            json!({"values": [], "isLastPage": true}),
            json!({"values": [1], "start": 5, "isLastPage": false, "nextPageStart": 5}),
        ] {
            let p: Page<Value> = Page::from_datacenter(&end).unwrap();
            assert_eq!(p.next, None, "{end}");
        }
    }

    #[test]
    fn cursors_that_are_not_positions_are_refused() {
        for bad in ["", "2", "x:1", "1:0", "1:99999999", "-1:5", "1:5:6"] {
            let e = Cursor::from(bad).datacenter_position().unwrap_err();
            assert_eq!(e.kind, ApiErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn a_page_without_values_is_a_bad_response() {
        let e = Page::<Value>::from_cloud(&json!({"next": "x"})).unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::BadResponse);
        let e = Page::<Value>::from_cloud(&json!({"values": [], "next": 3})).unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::BadResponse);
    }
}
