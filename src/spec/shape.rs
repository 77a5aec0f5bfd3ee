//! The spec's shape, checked on the positioned YAML tree against the generated JSON Schema:
//! unknown keys (with "did you mean"), missing keys, wrong types, values outside an enum,
//! empty strings, patterns. Walking the schema rather than relying on serde gives every
//! such problem at once, each at its own line and column, and keeps one source of truth:
//! what an editor flags from `schema/environment.schema.json` is what `validate` flags.
//!
//! Only the keywords schemars emits for the model are understood; anything else is ignored
//! here and still enforced by serde afterwards.

use serde_json::Value as J;

use super::diagnostic::{Diagnostic, backticked, closest};
use super::model::{DurationSpec, SECRET_NAME_PATTERN};
use super::yaml::{KeyPath, Node, Value};

/// Every problem, with the path of the node it is about.
pub fn check(schema: &J, tree: &Node) -> Vec<(KeyPath, Diagnostic)> {
    let mut walker = Walker {
        root: schema,
        out: Vec::new(),
    };
    walker.node(schema, tree, &KeyPath::root(), None);
    walker.out
}

struct Walker<'s> {
    root: &'s J,
    out: Vec<(KeyPath, Diagnostic)>,
}

/// The JSON types a node can satisfy.
fn kinds(node: &Node) -> &'static [&'static str] {
    match &node.value {
        Value::Null => &["null"],
        Value::Bool(_) => &["boolean"],
        Value::Number(n) if n.is_i64() || n.is_u64() => &["integer", "number"],
        Value::Number(_) => &["number"],
        Value::String(_) => &["string"],
        Value::Seq(_) => &["array"],
        Value::Map(_) => &["object"],
    }
}

fn type_words(t: &str) -> &'static str {
    match t {
        "null" => "nothing",
        "boolean" => "`true` or `false`",
        "integer" => "a whole number",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping (`key: value` pairs)",
        _ => "something else",
    }
}

/// The first sentence of a description, as a hint.
fn first_sentence(desc: &str) -> String {
    let one_line = desc.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.find(". ") {
        Some(i) => one_line[..=i].to_string(),
        None => one_line,
    }
}

impl<'s> Walker<'s> {
    fn push(&mut self, path: &KeyPath, d: Diagnostic) {
        self.out.push((path.clone(), d));
    }

    /// Follow `$ref` (and draft-07's `allOf: [{$ref}]` wrapper) to the schema that says
    /// something, and the name of the last definition on the way.
    fn resolve(&self, schema: &'s J) -> (&'s J, Option<&'s str>) {
        if let Some([only]) = schema.get("allOf").and_then(J::as_array).map(Vec::as_slice) {
            return self.resolve(only);
        }
        match schema.get("$ref").and_then(J::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next();
                let target = r
                    .strip_prefix('#')
                    .and_then(|p| self.root.pointer(p))
                    .unwrap_or(&J::Null);
                let (target, inner) = self.resolve(target);
                (target, inner.or(name))
            }
            None => (schema, None),
        }
    }

    /// The types a schema accepts, looking through `$ref`, `anyOf`, `oneOf` and `const`.
    fn accepted_types(&self, schema: &'s J) -> Vec<&'s str> {
        let (schema, _) = self.resolve(schema);
        if let Some(branches) = branches(schema) {
            let mut all = Vec::new();
            for b in branches {
                for t in self.accepted_types(b) {
                    if !all.contains(&t) {
                        all.push(t);
                    }
                }
            }
            return all;
        }
        match schema.get("type") {
            Some(J::String(t)) => vec![t.as_str()],
            Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).collect(),
            _ => match schema.get("const").or_else(|| schema.get("enum")) {
                Some(J::String(_)) => vec!["string"],
                _ => Vec::new(),
            },
        }
    }

    /// Every allowed value when the schema is an enumeration of strings (serde enums).
    fn enum_values(&self, schema: &'s J) -> Option<Vec<&'s str>> {
        let (schema, _) = self.resolve(schema);
        if let Some(values) = schema.get("enum").and_then(J::as_array) {
            return values.iter().map(J::as_str).collect();
        }
        if let Some(c) = schema.get("const") {
            return c.as_str().map(|c| vec![c]);
        }
        let mut all = Vec::new();
        for b in branches(schema)? {
            let (b, _) = self.resolve(b);
            if b.get("type").and_then(J::as_str) == Some("null") {
                continue;
            }
            all.extend(self.enum_values(b)?);
        }
        Some(all)
    }

    /// The one definition an `anyOf` refers to besides null (`Option<Duration>` → Duration).
    fn only_definition(&self, schema: &'s J) -> Option<&'s str> {
        let mut defs = branches(schema)?
            .iter()
            .map(|b| self.resolve(b))
            .filter(|(b, _)| b.get("type").and_then(J::as_str) != Some("null"));
        match (defs.next(), defs.next()) {
            (Some((_, name)), None) => name,
            _ => None,
        }
    }

    fn node(&mut self, schema: &'s J, node: &Node, path: &KeyPath, desc: Option<&'s str>) {
        let desc = schema.get("description").and_then(J::as_str).or(desc);
        let (schema, def) = self.resolve(schema);
        let desc = desc.or_else(|| schema.get("description").and_then(J::as_str));
        let def = def.or_else(|| self.only_definition(schema));

        let types = self.accepted_types(schema);
        let kinds = kinds(node);
        if !types.is_empty() && !types.iter().any(|t| kinds.contains(t)) {
            self.type_error(&types, node, path, def, desc);
            return;
        }
        if matches!(node.value, Value::Null) {
            return;
        }
        if let Some(values) = self.enum_values(schema) {
            self.enumeration(&values, node, path);
            return;
        }
        if let Some(bs) = branches(schema) {
            // Option<T> and the like: check against the branch of the node's own type.
            if let Some(b) = bs
                .iter()
                .find(|b| self.accepted_types(b).iter().any(|t| kinds.contains(t)))
            {
                self.node(b, node, path, desc);
            }
            return;
        }
        match &node.value {
            Value::String(s) => self.string(schema, s, node, path, def, desc),
            Value::Number(n) => self.number(schema, n, node, path),
            Value::Seq(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, it) in items.iter().enumerate() {
                        self.node(item, it, &path.index(i), None);
                    }
                }
            }
            Value::Map(_) => self.mapping(schema, node, path, def),
            Value::Null | Value::Bool(_) => {}
        }
    }

    fn type_error(
        &mut self,
        types: &[&str],
        node: &Node,
        path: &KeyPath,
        def: Option<&str>,
        desc: Option<&str>,
    ) {
        let expected: Vec<&str> = types
            .iter()
            .filter(|t| **t != "null" && !(**t == "number" && types.contains(&"integer")))
            .map(|t| type_words(t))
            .collect();
        let expected = if expected.is_empty() {
            "nothing".to_string()
        } else {
            expected.join(" or ")
        };
        let scalar = matches!(
            node.value,
            Value::Number(_) | Value::Bool(_) | Value::String(_)
        );
        let quoted_number = match &node.value {
            Value::String(s) if s.trim().parse::<f64>().is_ok() => Some(s.trim()),
            _ => None,
        };
        let wants_number = types.contains(&"integer") || types.contains(&"number");
        let text = node.text.as_deref().unwrap_or("");
        let digits = text.trim_start_matches(['-', '+']);
        let whole = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
        if wants_number && whole && matches!(node.value, Value::Number(_)) {
            // A whole number too large for 64 bits arrives as a float.
            self.push(
                path,
                Diagnostic::new(node.pos, path, format!("`{text}` is out of range"))
                    .with_hint(desc.map(first_sentence).unwrap_or_default()),
            );
            return;
        }
        let hint = if path.is_root() {
            "a spec is a mapping: start it with `version: 1` and `name: …`".to_string()
        } else if let (true, Some(n)) = (
            types.contains(&"integer") || types.contains(&"number"),
            quoted_number,
        ) {
            format!("remove the quotes: {n}")
        } else if types.contains(&"string") && scalar {
            let text = node.text.as_deref().unwrap_or("");
            match def {
                Some("Duration") => "write a number and a unit, like `90s` or `10m`".to_string(),
                _ => format!("quote it to make it a string: \"{text}\""),
            }
        } else if types.contains(&"array") {
            "write a list: one `- item` per line, or `[a, b]`".to_string()
        } else if types.contains(&"object") && matches!(node.value, Value::Null) {
            "give it `key: value` pairs indented below it, or remove the key".to_string()
        } else if types.contains(&"object") {
            "write `key: value` pairs indented below it".to_string()
        } else if let Some(d) = desc {
            first_sentence(d)
        } else {
            format!("write {expected} here")
        };
        self.push(
            path,
            Diagnostic::new(
                node.pos,
                path,
                format!("expected {expected}, found {}", node.describe()),
            )
            .with_hint(hint),
        );
    }

    fn enumeration(&mut self, values: &[&str], node: &Node, path: &KeyPath) {
        let Value::String(s) = &node.value else {
            return;
        };
        if values.contains(&s.as_str()) {
            return;
        }
        let hint = match closest(s, values.iter().copied()) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("use one of {}", backticked(values.iter().copied())),
        };
        self.push(
            path,
            Diagnostic::new(
                node.pos,
                path,
                format!("`{s}` is not one of {}", backticked(values.iter().copied())),
            )
            .with_hint(hint),
        );
    }

    fn string(
        &mut self,
        schema: &J,
        s: &str,
        node: &Node,
        path: &KeyPath,
        def: Option<&str>,
        desc: Option<&str>,
    ) {
        let problem = match def {
            Some("Duration") => DurationSpec::parse(s).err().map(|e| (e, None)),
            Some("SecretName") => secret_name_problem(s),
            _ => {
                let min = schema.get("minLength").and_then(J::as_u64).unwrap_or(0);
                if min > 0 && (s.trim().is_empty() || (s.chars().count() as u64) < min) {
                    Some(("must not be empty".to_string(), desc.map(first_sentence)))
                } else {
                    schema
                        .get("pattern")
                        .and_then(J::as_str)
                        .and_then(|p| regex::Regex::new(p).ok())
                        .filter(|re| !re.is_match(s))
                        .map(|_| {
                            (
                                format!("{s:?} is not allowed here"),
                                desc.map(first_sentence),
                            )
                        })
                }
            }
        };
        if let Some((message, hint)) = problem {
            let mut d = Diagnostic::new(node.pos, path, message);
            d.hint = hint;
            self.push(path, d);
        }
    }

    fn number(&mut self, schema: &J, n: &serde_json::Number, node: &Node, path: &KeyPath) {
        let v = n.as_f64().unwrap_or(f64::NAN);
        let min = schema.get("minimum").and_then(J::as_f64);
        let max = schema.get("maximum").and_then(J::as_f64).or_else(|| {
            match schema.get("format").and_then(J::as_str) {
                Some("uint32") => Some(f64::from(u32::MAX)),
                _ => None,
            }
        });
        let below = min.is_some_and(|m| v < m);
        let above = max.is_some_and(|m| v > m);
        if below || above {
            let range = match (min, max) {
                (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => unreachable!("a bound was crossed"),
            };
            let text = node.text.clone().unwrap_or_else(|| n.to_string());
            self.push(
                path,
                Diagnostic::new(
                    node.pos,
                    path,
                    format!("`{text}` is out of range: it must be {range}"),
                ),
            );
        }
    }

    fn mapping(&mut self, schema: &'s J, node: &Node, path: &KeyPath, def: Option<&str>) {
        let Value::Map(entries) = &node.value else {
            return;
        };
        let props = schema.get("properties").and_then(J::as_object);
        let extra = schema.get("additionalProperties");
        let key_pattern = schema
            .pointer("/propertyNames/pattern")
            .and_then(J::as_str)
            .and_then(|p| regex::Regex::new(p).ok());
        for (i, e) in entries.iter().enumerate() {
            let here = path.key(&e.key);
            if let Some(first) = entries[..i].iter().find(|f| f.key == e.key) {
                self.push(
                    &here,
                    Diagnostic::new(
                        e.key_pos,
                        &here,
                        format!("duplicate key (first at line {})", first.key_pos.line),
                    )
                    .with_hint("keep one of them"),
                );
                continue;
            }
            if let Some(sub) = props.and_then(|p| p.get(&e.key)) {
                self.node(sub, &e.value, &here, None);
                continue;
            }
            match extra {
                Some(J::Bool(false)) => {
                    let known: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    self.push(
                        &here,
                        Diagnostic::new(e.key_pos, &here, format!("unknown key `{}`", e.key))
                            .with_hint(unknown_key_hint(&e.key, &known, def)),
                    );
                }
                Some(sub @ J::Object(_)) => {
                    if e.key.is_empty() {
                        self.push(&here, Diagnostic::new(e.key_pos, &here, "the key is empty"));
                    } else if let Some(re) = key_pattern.as_ref().filter(|re| !re.is_match(&e.key))
                    {
                        self.push(
                            &here,
                            Diagnostic::new(
                                e.key_pos,
                                &here,
                                format!("`{}` is not a valid name here", e.key),
                            )
                            .with_hint(format!("names must match `{}`", re.as_str())),
                        );
                    } else {
                        self.node(sub, &e.value, &here, None);
                    }
                }
                _ => {}
            }
        }
        let required = schema.get("required").and_then(J::as_array);
        for key in required.into_iter().flatten().filter_map(J::as_str) {
            if !entries.iter().any(|e| e.key == key) {
                let hint = props
                    .and_then(|p| p.get(key))
                    .and_then(|s| {
                        let (r, _) = self.resolve(s);
                        s.get("description").or_else(|| r.get("description"))
                    })
                    .and_then(J::as_str)
                    .map(|d| format!("add `{key}:` — {}", first_sentence(d)));
                let mut d = Diagnostic::new(node.pos, path, format!("missing key `{key}`"));
                d.hint = hint;
                self.push(&path.key(key), d);
            }
        }
    }
}

fn branches(schema: &J) -> Option<&Vec<J>> {
    schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(J::as_array)
}

fn secret_name_problem(s: &str) -> Option<(String, Option<String>)> {
    let re = regex::Regex::new(SECRET_NAME_PATTERN).expect("a valid pattern");
    if re.is_match(s) {
        return None;
    }
    // The text is not echoed: what does not look like a name may be a pasted token.
    Some((
        "this is not a secret name (upper-case letters, digits and `_`)".to_string(),
        Some(
            "write the NAME of a secret, e.g. `BITBUCKET_API_TOKEN`, never the value itself; \
             add the value with `agentenv secret create`"
                .to_string(),
        ),
    ))
}

fn unknown_key_hint(key: &str, known: &[&str], def: Option<&str>) -> String {
    if key == "<<" {
        return "YAML merge keys (`<<`) are not supported here; write the keys out".into();
    }
    if def == Some("Auth") && key.contains("password") {
        return "Atlassian removed Bitbucket app passwords in 2026; use `type: api-token` with \
                `email` and `token` (Cloud), or `type: access-token` / `http-access-token` with \
                `token`"
            .into();
    }
    match closest(key, known.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None if known.is_empty() => "remove it".into(),
        None => format!("valid keys here: {}", backticked(known.iter().copied())),
    }
}
