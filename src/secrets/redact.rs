//! One redactor for every output path: step output, logs, errors, `--json`, tool results.
//!
//! For each secret it masks, as `***`:
//! - the whole value, and each line of a multi-line value (lines of 4+ characters);
//! - its base64 encodings (standard and URL-safe alphabets, padded or not), whole and as they
//!   appear inside a longer encoded text at each of the three byte offsets — so
//!   `base64("user:" + token)` is caught too (a character or two at the edges of such an
//!   embedded encoding also depends on the neighbouring bytes and stays visible);
//! - its URL-encoded forms (RFC 3986 unreserved kept, `encodeURIComponent`, form encoding with
//!   `+` for space, `/` kept; upper- and lower-case hex);
//! - its JSON-escaped forms (as serde/jq write them, with `\/`, and ASCII-only `\uXXXX`).
//!
//! All forms of all secrets go into one Aho-Corasick automaton (leftmost-longest), so a text is
//! scanned once however many secrets there are, and a secret that contains another is masked
//! whole. Not caught: other encodings (hex, base64 wrapped across lines, gzip…) — which is
//! why secrets reach steps only as environment variables and never appear in commands.

use std::collections::BTreeSet;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// What a masked secret prints as.
pub const MASK: &str = "***";

/// Derived forms shorter than this are not masked: they would mask ordinary text everywhere.
const MIN_FORM_LEN: usize = 4;

/// Masks secret values in text. `Redactor::default()` masks nothing.
#[derive(Clone, Default)]
pub struct Redactor {
    matcher: Option<Arc<AhoCorasick>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field(
                "patterns",
                &self.matcher.as_ref().map_or(0, |m| m.patterns_len()),
            )
            .finish()
    }
}

impl Redactor {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles = BTreeSet::new();
        for v in values.into_iter().filter(|v| !v.is_empty()) {
            // The whole value is masked however short: it is a secret, whatever it looks like.
            needles.insert(v.as_bytes().to_vec());
            if v.len() < MIN_FORM_LEN {
                continue;
            }
            let mut text_forms = vec![v.to_string()];
            if v.contains('\n') {
                text_forms.extend(
                    v.split('\n')
                        .map(|l| l.trim_end_matches('\r'))
                        .filter(|l| l.len() >= MIN_FORM_LEN)
                        .map(str::to_string),
                );
            }
            for form in &text_forms {
                needles.extend(url_forms(form).into_iter().map(String::into_bytes));
                needles.extend(json_forms(form).into_iter().map(String::into_bytes));
            }
            needles.extend(
                base64_forms(v.as_bytes())
                    .into_iter()
                    .map(String::into_bytes),
            );
            needles.extend(text_forms.into_iter().map(String::into_bytes));
        }
        needles.retain(|n| !n.is_empty());
        if needles.is_empty() {
            return Redactor::default();
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&needles)
            .expect("literal patterns of bounded size always build");
        Redactor {
            matcher: Some(Arc::new(matcher)),
        }
    }

    /// `text` with every secret form replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.matcher.is_none() {
            return text.to_string();
        }
        // Every form is valid UTF-8 and UTF-8 is self-synchronizing, so a match always starts
        // and ends on a character boundary and the result is UTF-8 again.
        String::from_utf8(self.redact_bytes(text.as_bytes())).expect("masking keeps UTF-8 valid")
    }

    /// The same for raw bytes (process output that need not be UTF-8).
    pub fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let Some(m) = &self.matcher else {
            return bytes.to_vec();
        };
        let mut out = Vec::with_capacity(bytes.len());
        let mut last = 0;
        for hit in m.find_iter(bytes) {
            out.extend_from_slice(&bytes[last..hit.start()]);
            out.extend_from_slice(MASK.as_bytes());
            last = hit.end();
        }
        out.extend_from_slice(&bytes[last..]);
        out
    }

    /// True when this redactor masks nothing.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }
}

/// RFC 3986 unreserved characters stay as they are; everything else is `%XX`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// JavaScript's `encodeURIComponent` also keeps `!'()*`.
const URI_COMPONENT: &AsciiSet = &UNRESERVED
    .remove(b'!')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*');
/// Python's `urllib.parse.quote` keeps `/` by default.
const PATH_SEGMENT: &AsciiSet = &UNRESERVED.remove(b'/');
/// `application/x-www-form-urlencoded` keeps `*-._` (space is handled as `+`).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b' ');

fn url_forms(v: &str) -> Vec<String> {
    let mut forms = Vec::new();
    for set in [UNRESERVED, URI_COMPONENT, PATH_SEGMENT, FORM] {
        let mut enc = percent_encoding::utf8_percent_encode(v, set).to_string();
        if std::ptr::eq(set, FORM) {
            enc = enc.replace(' ', "+");
        }
        if enc != v {
            forms.push(lower_hex_escapes(&enc));
            forms.push(enc);
        }
    }
    forms
}

/// `%2F` → `%2f`: some encoders write lower-case hex.
fn lower_hex_escapes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push('%');
            out.push((b[i + 1] as char).to_ascii_lowercase());
            out.push((b[i + 2] as char).to_ascii_lowercase());
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn json_forms(v: &str) -> Vec<String> {
    let quoted = serde_json::to_string(v).expect("a string serializes");
    let plain = quoted[1..quoted.len() - 1].to_string();
    let mut forms = Vec::new();
    if plain.contains('/') {
        forms.push(plain.replace('/', "\\/"));
    }
    if !v.is_ascii() {
        // Python's json.dumps default (ensure_ascii): non-ASCII as \uXXXX, UTF-16 pairs.
        let mut ascii = String::new();
        for c in plain.chars() {
            if c.is_ascii() {
                ascii.push(c);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    ascii.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
        forms.push(ascii.clone());
        forms.push(upper_hex_u_escapes(&ascii));
    }
    if plain != v {
        forms.push(plain);
    }
    forms
}

/// `\u00e9` → `\u00E9`: some encoders write upper-case hex.
fn upper_hex_u_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\u") {
        out.push_str(&rest[..i + 2]);
        let hex_end = (i + 6).min(rest.len());
        out.push_str(&rest[i + 2..hex_end].to_ascii_uppercase());
        rest = &rest[hex_end..];
    }
    out.push_str(rest);
    out
}

/// Base64 forms of `v`: whole (padded and not, with a trailing newline as `echo | base64`
/// adds), and the characters that depend only on `v` when it sits at byte offset 0, 1 or 2
/// (mod 3) of a longer encoded text.
fn base64_forms(v: &[u8]) -> Vec<String> {
    let mut forms = Vec::new();
    let mut with_newline = v.to_vec();
    with_newline.push(b'\n');
    for (padded, unpadded) in [(STANDARD, STANDARD_NO_PAD), (URL_SAFE, URL_SAFE_NO_PAD)] {
        forms.push(padded.encode(v));
        forms.push(padded.encode(&with_newline));
        for offset in 0..3usize {
            let mut buf = vec![0u8; offset];
            buf.extend_from_slice(v);
            let enc = unpadded.encode(&buf);
            // Character i carries bits 6i..6i+6 of the buffer; keep those wholly inside v.
            let start = (8 * offset).div_ceil(6);
            let end = (8 * (offset + v.len())) / 6;
            if end > start && end - start >= MIN_FORM_LEN {
                forms.push(enc[start..end].to_string());
            }
        }
    }
    forms
}
