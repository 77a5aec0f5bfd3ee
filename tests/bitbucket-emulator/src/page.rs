//! Cloud and Data Center pagination.

use serde_json::{Map, Value, json};

use crate::server::{Reply, Req};

fn with_param(req: &Req, base_url: &str, name: &str, value: &str) -> String {
    let mut parts: Vec<String> = req
        .raw_query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(name))
        .map(str::to_string)
        .collect();
    parts.push(format!("{name}={value}"));
    format!("{base_url}{}?{}", req.path, parts.join("&"))
}

fn bad_request(message: &str) -> Reply {
    crate::cloud::error(400, message)
}

fn cloud_pagelen(req: &Req, default: usize, max: usize) -> Result<usize, Reply> {
    match req.param("pagelen") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(max)),
            _ => Err(bad_request(&format!("Invalid pagelen: {v}"))),
        },
    }
}

/// List-style pages (`?page=N`): `size`, `page`, `pagelen`, `next`, `previous`, `values`.
pub fn cloud_list(
    req: &Req,
    base_url: &str,
    items: Vec<Value>,
    default: usize,
    max: usize,
) -> Result<Value, Reply> {
    let pagelen = cloud_pagelen(req, default, max)?;
    let page = match req.param("page") {
        None => 1,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(bad_request(&format!("Invalid page: {v}"))),
        },
    };
    let size = items.len();
    let start = (page - 1).saturating_mul(pagelen);
    let values: Vec<Value> = items.into_iter().skip(start).take(pagelen).collect();
    let mut out = Map::new();
    out.insert("size".into(), json!(size));
    out.insert("page".into(), json!(page));
    out.insert("pagelen".into(), json!(pagelen));
    if start + pagelen < size {
        out.insert(
            "next".into(),
            json!(with_param(req, base_url, "page", &(page + 1).to_string())),
        );
    }
    if page > 1 {
        out.insert(
            "previous".into(),
            json!(with_param(req, base_url, "page", &(page - 1).to_string())),
        );
    }
    out.insert("values".into(), Value::Array(values));
    Ok(Value::Object(out))
}

/// Iterator-style pages (commits, src): only `pagelen`, `values` and an opaque `next`.
pub fn cloud_iter(
    req: &Req,
    base_url: &str,
    items: Vec<Value>,
    default: usize,
    max: usize,
) -> Result<Value, Reply> {
    let pagelen = cloud_pagelen(req, default, max)?;
    let start = match req.param("page") {
        None => 0,
        Some(t) => {
            decode_token(t).ok_or_else(|| bad_request(&format!("Invalid page token: {t}")))?
        }
    };
    let more = start + pagelen < items.len();
    let values: Vec<Value> = items.into_iter().skip(start).take(pagelen).collect();
    let mut out = Map::new();
    // Recorded iterator pages still carry `page`; never `size` or `previous`.
    out.insert("page".into(), json!(start / pagelen + 1));
    out.insert("pagelen".into(), json!(pagelen));
    out.insert("values".into(), Value::Array(values));
    if more {
        out.insert(
            "next".into(),
            json!(with_param(
                req,
                base_url,
                "page",
                &encode_token(start + pagelen)
            )),
        );
    }
    Ok(Value::Object(out))
}

/// Tokens look like Bitbucket's (`8xhd`): short, lower-case, not a page number a client could
/// compute, so a client that builds page URLs itself breaks here as it would there.
fn encode_token(offset: usize) -> String {
    let mut n = (offset as u64) * 7 + 3;
    let mut s = String::new();
    loop {
        let d = (n % 36) as u32;
        s.push(char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    format!("{s}x")
}

fn decode_token(t: &str) -> Option<usize> {
    let body = t.strip_suffix('x')?;
    let mut n: u64 = 0;
    for c in body.chars().rev() {
        n = n.checked_mul(36)?.checked_add(u64::from(c.to_digit(36)?))?;
    }
    (n >= 3 && (n - 3).is_multiple_of(7)).then(|| ((n - 3) / 7) as usize)
}

/// Data Center `start`/`limit` pages under `key` (`values`, or `lines` for file browse pages).
pub fn dc(
    req: &Req,
    items: Vec<Value>,
    key: &str,
    default_limit: usize,
    max_limit: usize,
) -> Result<Map<String, Value>, Reply> {
    let num = |name: &str, default: usize| -> Result<usize, Reply> {
        match req.param(name) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| {
                crate::dc::error(400, &format!("Invalid value for '{name}': {v}"), None)
            }),
        }
    };
    let start = num("start", 0)?;
    let limit = num("limit", default_limit)?.clamp(1, max_limit);
    let total = items.len();
    let values: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let last = start + limit >= total;
    let mut out = Map::new();
    out.insert("size".into(), json!(values.len()));
    out.insert("limit".into(), json!(limit));
    out.insert("start".into(), json!(start));
    out.insert("isLastPage".into(), json!(last));
    out.insert(key.into(), Value::Array(values));
    // Recorded last pages carry `nextPageStart: null` (some omit it); clients must accept both.
    out.insert(
        "nextPageStart".into(),
        if last {
            Value::Null
        } else {
            json!(start + limit)
        },
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for n in [0, 1, 10, 30, 99_999] {
            assert_eq!(super::decode_token(&super::encode_token(n)), Some(n));
        }
        assert_eq!(super::decode_token("2"), None);
        assert_eq!(super::decode_token("zzzx"), None);
        assert_eq!(super::decode_token("!x"), None);
    }
}
