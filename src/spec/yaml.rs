//! YAML with positions. serde alone stops at the first problem and forgets where values were;
//! validation wants every problem, each pointing at its line and column. So the spec is parsed
//! once into this small tree (yaml-rust2's marked events), checked against the schema on the
//! tree, and only then turned into JSON for serde.
//!
//! This is the one YAML reader for files a user hands us (the spec, the secrets files), so it
//! is also where hostile input stops: [`read_file`] reads at most a given size and points at
//! the first byte that is not UTF-8; the tree builder refuses nesting deeper than
//! [`MAX_DEPTH`] as the events arrive (everything after it — shape checks, JSON conversion,
//! even dropping the tree — recurses) and counts the values it holds, aliases' copies
//! included, against [`MAX_NODES`] and [`MAX_ALIAS_BYTES`], so a few hundred bytes of
//! `&a [*b, *b, …]` cannot expand into gigabytes.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::diagnostic::Diagnostic;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        // yaml-rust2 counts lines from 1 and columns from 0.
        Pos {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// The scalar as written (for messages and for "quote it" hints).
    pub text: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A path to a node, as messages show it: `repos[1].path`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> Self {
        KeyPath::default()
    }
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `self` is `other` or one of its ancestors.
    pub fn contains(&self, other: &KeyPath) -> bool {
        other.0.starts_with(&self.0)
    }

    /// The first key: the top-level section this path is in.
    pub fn section(&self) -> KeyPath {
        KeyPath(self.0.iter().take(1).cloned().collect())
    }

    /// Take the value at this path out of a JSON document. A list item takes its whole list
    /// with it: removing only the item would shift its siblings away from their YAML indexes.
    pub fn remove_from(&self, doc: &mut serde_json::Value) {
        let mut path = self.0.as_slice();
        while let [rest @ .., Seg::Index(_)] = path {
            path = rest;
        }
        let Some((last, parent)) = path.split_last() else {
            return;
        };
        let mut node = doc;
        for seg in parent {
            let next = match (seg, node) {
                (Seg::Key(k), serde_json::Value::Object(m)) => m.get_mut(k),
                (Seg::Index(i), serde_json::Value::Array(a)) => a.get_mut(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return,
            }
        }
        if let (Seg::Key(k), serde_json::Value::Object(m)) = (last, node) {
            m.remove(k);
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let plain = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if plain {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    fn step(&self, seg: &Seg) -> Option<&Node> {
        match (seg, &self.value) {
            (Seg::Key(k), _) => self.get(k),
            (Seg::Index(i), Value::Seq(items)) => items.get(*i),
            _ => None,
        }
    }

    /// Where to point a message about `path`: the node itself, or when it is absent (a
    /// missing key) the deepest node on the way to it.
    pub fn locate(&self, path: &KeyPath) -> Pos {
        let mut node = self;
        for seg in &path.0 {
            match node.step(seg) {
                Some(next) => node = next,
                None => break,
            }
        }
        node.pos
    }

    /// What kind of value this is, in words, for "expected …, found …".
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "an empty value (null)".into(),
            Value::Bool(b) => format!("`{b}`"),
            Value::Number(n) => format!(
                "the number `{}`",
                self.text.as_deref().unwrap_or(&n.to_string())
            ),
            Value::String(s) => format!("the string {s:?}"),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping (`key: value` pairs)".into(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => J::Number(n.clone()),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                let mut map = serde_json::Map::new();
                for e in entries {
                    // The first of duplicate keys wins; the duplicate is reported elsewhere.
                    map.entry(e.key.clone())
                        .or_insert_with(|| e.value.to_json());
                }
                J::Object(map)
            }
        }
    }
}

/// How deep lists and mappings may nest. A spec nests about five levels; the tree is walked
/// recursively afterwards, and 50,000 levels of `- - - …` (100 KB) overflowed the stack.
pub const MAX_DEPTH: usize = 64;
/// How many values (scalars, lists, mappings) the tree may hold, counting what aliases
/// (`*name`) copy. A spec holds hundreds; nine levels of nine aliases each copy 9^9 values
/// from 300 bytes of text, and even without aliases a 1 MiB file of `[1,1,1,…]` is half a
/// million values, each with its own checks and messages.
pub const MAX_NODES: usize = 100_000;
/// How much scalar text aliases may copy into the tree, in total: an alias of a long string,
/// repeated, grows the tree without adding many values.
pub const MAX_ALIAS_BYTES: usize = 1024 * 1024;

/// Why a file could not be read as text.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// Larger than the limit given to [`read_file`].
    TooLarge {
        limit: u64,
    },
    /// The first invalid byte: 0-based offset, where it is, and what the file probably is.
    NotUtf8 {
        offset: usize,
        byte: u8,
        pos: Pos,
        hint: &'static str,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::TooLarge { limit } => write!(f, "larger than {}", human_size(*limit)),
            ReadError::NotUtf8 { offset, byte, .. } => write!(
                f,
                "not UTF-8 text: the byte at offset {offset} (0x{byte:02x}) is not valid UTF-8"
            ),
        }
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Read a text file of at most `limit` bytes. Reading stops at `limit + 1` bytes, so a huge
/// file, a FIFO or a device costs no more than that.
pub fn read_file(path: &Path, limit: u64) -> Result<String, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line_start = bytes[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // The prefix is valid UTF-8, so the column counts characters as editors do.
        let column =
            std::str::from_utf8(&bytes[line_start..offset]).map_or(0, |s| s.chars().count()) + 1;
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        let utf16 = bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]);
        ReadError::NotUtf8 {
            offset,
            byte: bytes[offset],
            pos: Pos { line, column },
            hint: if utf16 {
                "the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8"
            } else {
                "save the file as UTF-8 (Latin-1 and other legacy encodings are not read)"
            },
        }
    })
}

/// Parse one YAML document. A syntax error comes back as a diagnostic with its position.
pub fn parse(text: &str) -> Result<Node, Diagnostic> {
    parse_document(text)?.ok_or_else(|| {
        Diagnostic::new(Pos { line: 1, column: 1 }, "", "the spec is empty")
            .with_hint("start it with `version: 1` and `name: …`")
    })
}

/// Parse one YAML document; `None` for a file with no content (empty, or only comments).
pub fn parse_document(text: &str) -> Result<Option<Node>, Diagnostic> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            let pos = Pos::from(*e.marker());
            if e.info() == "recursion limit exceeded" {
                // The scanner reads ahead of the events, so a run of `[[[…` can reach its own
                // limit (255 open brackets) before the builder counts MAX_DEPTH of them.
                return too_deep(pos);
            }
            Diagnostic::new(pos, "", format!("not valid YAML: {}", e.info())).with_hint(
                "check the indentation and quoting on this line and the one before it; \
                 quote values that contain `: `, `#` or start with `*`, `&`, `!`, `{`, `[`",
            )
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.event(event, mark)?;
    }
    Ok(builder.root)
}

fn too_deep(pos: Pos) -> Diagnostic {
    Diagnostic::new(
        pos,
        "",
        format!("lists and mappings nest more than {MAX_DEPTH} levels deep here"),
    )
    .with_hint("a file like this nests a few levels; check for a run of `- - -`, `[[[` or `{{{`")
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
        size: Size,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<(String, Pos)>,
        size: Size,
    },
}

/// How much a node holds, counting its descendants: what an alias to it copies.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, Size)>,
    root: Option<Node>,
    documents: usize,
    /// Values in the tree so far, aliases' copies included.
    nodes: usize,
    /// Text aliases have copied so far.
    copied_bytes: usize,
}

impl Builder {
    fn event(&mut self, event: Event, mark: Marker) -> Result<(), Diagnostic> {
        let pos = Pos::from(mark);
        if matches!(
            event,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        ) {
            self.nodes += 1;
            if self.nodes > MAX_NODES {
                return Err(Diagnostic::new(
                    pos,
                    "",
                    format!("this file holds more than {MAX_NODES} values"),
                )
                .with_hint("check that this is the right file; a spec holds hundreds of values"));
            }
        }
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diagnostic::new(
                        pos,
                        "",
                        "a file holds one YAML document, this is a second one",
                    )
                    .with_hint("remove the `---` and what follows, or put it in its own file"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let size = Size {
                    nodes: 1,
                    bytes: text.len(),
                };
                let node = scalar(text, style, tag.as_ref(), pos)?;
                self.finish(node, anchor, size)?;
            }
            Event::Alias(id) => {
                let (node, size) = self.anchors.get(&id).ok_or_else(|| {
                    Diagnostic::new(pos, "", "this alias (`*name`) refers to no anchor")
                })?;
                self.nodes = self.nodes.saturating_add(size.nodes);
                self.copied_bytes = self.copied_bytes.saturating_add(size.bytes);
                if self.nodes > MAX_NODES || self.copied_bytes > MAX_ALIAS_BYTES {
                    return Err(Diagnostic::new(
                        pos,
                        "",
                        format!(
                            "with the copies aliases (`*name`) make, this file holds more than \
                             {MAX_NODES} values or {} of copied text by here; it is refused \
                             before it grows further (aliases of aliases multiply)",
                            human_size(MAX_ALIAS_BYTES as u64)
                        ),
                    )
                    .with_hint("write the values out, or use fewer aliases of aliases"));
                }
                let (mut node, size) = (node.clone(), *size);
                node.pos = pos;
                self.finish(node, 0, size)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(too_deep(pos));
                }
                let size = Size { nodes: 1, bytes: 0 };
                self.stack.push(match event {
                    Event::SequenceStart(..) => Frame::Seq {
                        pos,
                        anchor,
                        items: Vec::new(),
                        size,
                    },
                    _ => Frame::Map {
                        pos,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                        size,
                    },
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, size) = match self.stack.pop() {
                    Some(Frame::Seq {
                        pos,
                        anchor,
                        items,
                        size,
                    }) => (
                        Node {
                            value: Value::Seq(items),
                            pos,
                            text: None,
                        },
                        anchor,
                        size,
                    ),
                    Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        size,
                        ..
                    }) => {
                        // A block mapping's start event sits after its first key; the first
                        // key is where a reader sees the mapping begin.
                        let pos = entries.first().map_or(pos, |e| e.key_pos.min(pos));
                        (
                            Node {
                                value: Value::Map(entries),
                                pos,
                                text: None,
                            },
                            anchor,
                            size,
                        )
                    }
                    None => return Ok(()),
                };
                self.finish(node, anchor, size)?;
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    /// A complete node: it is a list item, a key, a value, or the document.
    fn finish(&mut self, node: Node, anchor: usize, size: Size) -> Result<(), Diagnostic> {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq {
                items, size: total, ..
            }) => {
                total.add(size);
                items.push(node);
            }
            Some(Frame::Map {
                entries,
                key,
                size: total,
                ..
            }) => match key.take() {
                None => {
                    let name = match &node.value {
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(Diagnostic::new(
                                node.pos,
                                "",
                                "a key must be a plain word, not a list or a mapping",
                            ));
                        }
                        Value::String(s) => s.clone(),
                        _ => node.text.clone().unwrap_or_default(),
                    };
                    total.add(size);
                    *key = Some((name, node.pos));
                }
                Some((k, key_pos)) => {
                    total.add(size);
                    entries.push(Entry {
                        key: k,
                        key_pos,
                        value: node,
                    });
                }
            },
        }
        Ok(())
    }
}

fn scalar(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
    pos: Pos,
) -> Result<Node, Diagnostic> {
    let forced_string = tag.is_some_and(|t| t.suffix == "str");
    let value = if style != TScalarStyle::Plain || forced_string {
        Value::String(text.clone())
    } else {
        resolve_plain(&text).ok_or_else(|| {
            Diagnostic::new(pos, "", format!("`{text}` is a number JSON cannot hold"))
                .with_hint("quote it to make it a string")
        })?
    };
    Ok(Node {
        value,
        pos,
        text: Some(text),
    })
}

/// The YAML 1.2 core schema (what serde_yaml and editors use): `yes`/`on` stay strings.
fn resolve_plain(text: &str) -> Option<Value> {
    Some(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Some(n) = parse_int(text) {
                Value::Number(n)
            } else if is_float(text) {
                let f: f64 = text.parse().ok()?;
                Value::Number(serde_json::Number::from_f64(f)?)
            } else if matches!(
                text.trim_start_matches(['-', '+']),
                ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN"
            ) {
                return None;
            } else {
                Value::String(text.to_string())
            }
        }
    })
}

fn parse_int(text: &str) -> Option<serde_json::Number> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = i128::from_str_radix(digits, radix).ok()?;
    let n = if neg { -n } else { n };
    if let Ok(i) = i64::try_from(n) {
        Some(i.into())
    } else if let Ok(u) = u64::try_from(n) {
        Some(u.into())
    } else {
        serde_json::Number::from_f64(n as f64)
    }
}

fn is_float(text: &str) -> bool {
    let t = text.trim_start_matches(['-', '+']);
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => all_digits(int) && all_digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && all_digits(int),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.trim_start_matches(['-', '+']);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exp_ok && (frac.is_some() || exp.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> serde_json::Value {
        parse(text).unwrap().to_json()
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        assert_eq!(
            json("a: 1\nb: 1.5\nc: yes\nd: ~\ne: '1'\nf: true\ng: 0x10\nh: 1e3\ni: 1.2.3\n"),
            serde_json::json!({"a": 1, "b": 1.5, "c": "yes", "d": null, "e": "1",
                               "f": true, "g": 16, "h": 1000.0, "i": "1.2.3"})
        );
    }

    #[test]
    fn positions_are_one_based() {
        let tree = parse("version: 1\nrepos:\n  - slug: a\n    path: b\n").unwrap();
        let p = KeyPath::root().key("repos").index(0).key("path");
        assert_eq!(
            tree.locate(&p),
            Pos {
                line: 4,
                column: 11
            }
        );
        assert_eq!(
            tree.locate(&KeyPath::root().key("repos").index(0)),
            Pos { line: 3, column: 5 }
        );
        assert_eq!(p.to_string(), "repos[0].path");
    }

    #[test]
    fn a_str_tag_keeps_a_string() {
        assert_eq!(json("a: !!str 123\n"), serde_json::json!({"a": "123"}));
    }

    #[test]
    fn aliases_copy_their_anchor() {
        assert_eq!(
            json("a: &x [1, 2]\nb: *x\n"),
            serde_json::json!({"a": [1, 2], "b": [1, 2]})
        );
    }

    #[test]
    fn nesting_is_limited_where_it_goes_too_deep() {
        let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("x:\n{}a\n", "- ".repeat(MAX_DEPTH * 100));
        let d = parse(&deep).unwrap_err();
        assert_eq!((d.line, d.column), (Some(2), Some(2 * MAX_DEPTH - 1)));
        assert!(d.message.contains("nest more than 64"), "{}", d.message);
    }

    #[test]
    fn aliases_and_values_are_counted() {
        // Aliases within the budget are copied as before.
        let shared = "base: &b {x: 1, y: [1, 2]}\nl: [*b, *b, *b]\n";
        assert_eq!(json(shared)["l"][2]["y"][1], 2);
        // Ten aliases of a list of 20,000 values: over the budget at the fourth.
        let text = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["1"; 20_000].join(","),
            ["*a"; 10].join(", ")
        );
        let d = parse(&text).unwrap_err();
        assert_eq!((d.line, d.column), (Some(2), Some(5 + 3 * 4)));
        // Without aliases, the number of values is bounded too.
        let flat = format!("[{}]", vec!["1"; MAX_NODES].join(","));
        assert!(
            parse(&flat)
                .unwrap_err()
                .message
                .contains("more than 100000")
        );
    }

    #[test]
    fn invalid_utf8_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yaml");
        std::fs::write(&path, b"a: 1\nb: \xc3\xa9\xff\n").unwrap();
        match read_file(&path, 100) {
            Err(ReadError::NotUtf8 { offset, pos, .. }) => {
                assert_eq!(offset, 10);
                // `é` is one column.
                assert_eq!(pos, Pos { line: 2, column: 5 });
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_file(&path, 5),
            Err(ReadError::TooLarge { limit: 5 })
        ));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let d = parse("version: 1\n  name: x\n").unwrap_err();
        assert_eq!((d.line, d.column), (Some(2), Some(7)));
        assert!(parse("# nothing\n").is_err());
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
    }
}
