//! Reading fields out of an API answer by JSON pointer, for `cloud.rs` and `datacenter.rs`.

use serde_json::Value;

use super::page::bad_shape;
use super::{ApiError, CloneUrl, Timestamp};

/// The string at `pointer`.
pub(crate) fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The string at `pointer`, unless it is empty (Bitbucket writes `""` for "not set").
pub(crate) fn set(v: &Value, pointer: &str) -> Option<String> {
    text(v, pointer).filter(|s| !s.is_empty())
}

/// The string at `pointer`, which an object of this kind must have.
pub(crate) fn required(v: &Value, pointer: &str, what: &str) -> Result<String, ApiError> {
    set(v, pointer).ok_or_else(|| bad_shape(&format!("has {what} without `{pointer}`")))
}

pub(crate) fn uint(v: &Value, pointer: &str) -> Option<u64> {
    v.pointer(pointer).and_then(Value::as_u64)
}

pub(crate) fn boolean(v: &Value, pointer: &str) -> Option<bool> {
    v.pointer(pointer).and_then(Value::as_bool)
}

/// The strings of an array at `pointer` (e.g. Cloud's `attributes`); `None` when absent. A
/// lone string counts as a one-item list (the OpenAPI document types `attributes` as one).
pub(crate) fn strings(v: &Value, pointer: &str) -> Option<Vec<String>> {
    match v.pointer(pointer)? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
        ),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// The items of an array at `pointer`; empty when absent.
pub(crate) fn items<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// An RFC 3339 time at `pointer` (Cloud).
pub(crate) fn rfc3339(v: &Value, pointer: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(v.pointer(pointer)?.as_str()?).ok()
}

/// Milliseconds since the epoch at `pointer` (Data Center), as UTC.
pub(crate) fn millis(v: &Value, pointer: &str) -> Option<Timestamp> {
    let ms = v.pointer(pointer)?.as_i64()?;
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.fixed_offset())
}

/// A repository's clone links (`links.clone`: `{name, href}` on both products).
pub(crate) fn clone_urls(v: &Value) -> Vec<CloneUrl> {
    items(v, "/links/clone")
        .iter()
        .filter_map(|l| {
            Some(CloneUrl {
                protocol: text(l, "/name")?,
                url: text(l, "/href")?,
            })
        })
        .collect()
}
