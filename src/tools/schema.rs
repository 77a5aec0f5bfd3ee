//! The JSON Schemas agents and programs see, derived from each tool's `Args` and `Output`, and
//! the one lenient reading of arguments that those schemas announce.
//!
//! Schemas are compact because every client loads `tools/list` into its model's context on
//! every turn: subschemas are inlined, and `$schema`, titles, `null` defaults and non-standard
//! `format`s (schemars writes `uint64` for unsigned integers, which validators such as Ajv warn
//! about) are dropped; `minimum: 0` says the same in standard JSON Schema. Descriptions are
//! one line each.
//!
//! Some clients send every argument as a string (`start_line: "2"`, `patch: "true"`). An
//! integer or boolean argument therefore also accepts the one string that spells it, and its
//! schema says so (`"type": ["integer", "string"], "pattern": "^[0-9]+$"`); [`coerce`] turns
//! such strings into the number or boolean before the arguments are parsed. Nothing else is
//! guessed: `"2.5"`, `"yes"` or `" 2"` are still refused by the type check.

use serde_json::{Map, Value, json};

/// `format`s of JSON Schema 2020-12 that every validator knows.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "uuid",
    "regex",
];

/// A digit string: what an integer argument accepts when given as a string.
const INTEGER_PATTERN: &str = "^[0-9]+$";

/// How one argument is read leniently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lenient {
    Integer,
    Boolean,
}

/// The input schema of `T` as sent, and the arguments read leniently.
pub(crate) fn input<T: schemars::JsonSchema>() -> (Value, Vec<(String, Lenient)>) {
    let mut schema = generate::<T>(false);
    let mut lenient = Vec::new();
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, prop) in props.iter_mut() {
            drop_null(prop);
            if let Some(kind) = widen(prop) {
                lenient.push((name.clone(), kind));
            }
        }
    }
    compact(&mut schema, true);
    if let Some(root) = schema.as_object_mut() {
        // The tool's own description says what the arguments are for.
        root.remove("description");
    }
    (schema, lenient)
}

/// The schema `structuredContent` conforms to: as serialized, so a field skipped when empty
/// is optional. It is not sent in `tools/list`, so it keeps its field descriptions for the
/// programs that read it.
pub(crate) fn output<T: schemars::JsonSchema>() -> Value {
    let mut schema = generate::<T>(true);
    compact(&mut schema, true);
    schema
}

fn generate<T: schemars::JsonSchema>(serialize: bool) -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    if serialize {
        settings = settings.for_serialize();
    }
    let schema = settings.into_generator().into_root_schema_for::<T>();
    serde_json::to_value(schema).expect("a schema serializes")
}

/// Turn the arguments the schema reads leniently from strings into their own type.
pub(crate) fn coerce(args: &mut Value, lenient: &[(String, Lenient)]) {
    let Some(obj) = args.as_object_mut() else {
        return;
    };
    for (name, kind) in lenient {
        let Some(Value::String(s)) = obj.get(name) else {
            continue;
        };
        let typed = match kind {
            Lenient::Integer if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<u64>().ok().map(Value::from)
            }
            Lenient::Boolean if s == "true" => Some(Value::Bool(true)),
            Lenient::Boolean if s == "false" => Some(Value::Bool(false)),
            _ => None,
        };
        if let Some(v) = typed {
            obj.insert(name.clone(), v);
        }
    }
}

/// An optional argument is omitted, not sent as `null`: the schema says the type alone.
fn drop_null(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            obj.insert("type".into(), only);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = obj.get_mut(key) {
            alts.retain(|a| a.get("type").is_none_or(|t| t != "null"));
            if alts.len() == 1 {
                let only = alts.remove(0);
                obj.remove(key);
                if let Value::Object(inner) = only {
                    for (k, v) in inner {
                        obj.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
    if obj.get("default") == Some(&Value::Null) {
        obj.remove("default");
    }
}

/// Admit the string spelling of an integer or boolean property; which one it was.
fn widen(prop: &mut Value) -> Option<Lenient> {
    let obj = prop.as_object_mut()?;
    let kind = match obj.get("type")?.as_str()? {
        "integer" => Lenient::Integer,
        "boolean" => Lenient::Boolean,
        _ => return None,
    };
    match kind {
        Lenient::Integer => {
            obj.insert("type".into(), json!(["integer", "string"]));
            obj.insert("pattern".into(), json!(INTEGER_PATTERN));
        }
        Lenient::Boolean => {
            obj.insert("type".into(), json!(["boolean", "string"]));
            obj.insert("enum".into(), json!([true, false, "true", "false"]));
        }
    }
    Some(kind)
}

/// Drop what no client needs, everywhere in a schema.
fn compact(schema: &mut Value, keep_descriptions: bool) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    obj.remove("$schema");
    obj.remove("title");
    if obj.get("default") == Some(&Value::Null) {
        obj.remove("default");
    }
    if obj
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
    {
        obj.remove("format");
    }
    match obj.get_mut("description") {
        Some(_) if !keep_descriptions => {
            obj.remove("description");
        }
        Some(Value::String(d)) => *d = one_line(d),
        _ => {}
    }
    enum_of_consts(obj);
    for key in ["properties", "$defs"] {
        if let Some(Value::Object(children)) = obj.get_mut(key) {
            for child in children.values_mut() {
                compact(child, keep_descriptions);
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child @ Value::Object(_)) = obj.get_mut(key) {
            compact(child, keep_descriptions);
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(children)) = obj.get_mut(key) {
            for child in children {
                compact(child, keep_descriptions);
            }
        }
    }
}

/// `oneOf: [{const: "A", description}, …]` (schemars' form for an enum with documented
/// variants) as `enum: ["A", …]`.
fn enum_of_consts(obj: &mut Map<String, Value>) {
    for key in ["oneOf", "anyOf"] {
        let Some(Value::Array(alts)) = obj.get(key) else {
            continue;
        };
        let consts: Option<Vec<Value>> = alts
            .iter()
            .map(|a| match a {
                Value::Object(o) => o
                    .get("const")
                    .cloned()
                    .or_else(|| match o.get("enum") {
                        Some(Value::Array(e)) if e.len() == 1 => Some(e[0].clone()),
                        _ => None,
                    })
                    .filter(Value::is_string),
                _ => None,
            })
            .collect();
        if let Some(values) = consts {
            obj.remove(key);
            obj.insert("type".into(), json!("string"));
            obj.insert("enum".into(), Value::Array(values));
        }
    }
}

/// A doc comment's wrapped lines as one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_booleans_take_their_string_spelling_only() {
        let lenient = vec![
            ("n".to_string(), Lenient::Integer),
            ("b".to_string(), Lenient::Boolean),
        ];
        let mut args = json!({"n": "2", "b": "true", "q": "3"});
        coerce(&mut args, &lenient);
        assert_eq!(args, json!({"n": 2, "b": true, "q": "3"}));
        for bad in [
            json!({"n": "2.5"}),
            json!({"n": " 2"}),
            json!({"n": "-1"}),
            json!({"b": "yes"}),
            json!({"b": "True"}),
        ] {
            let mut a = bad.clone();
            coerce(&mut a, &lenient);
            assert_eq!(a, bad);
        }
    }

    #[test]
    fn compact_schemas_hold_only_standard_keywords() {
        let mut s = json!({
            "$schema": "x", "title": "T", "description": "a\n b",
            "properties": {
                "n": {"type": "integer", "format": "uint64", "minimum": 0, "default": null, "title": "n"},
                "t": {"type": "string", "format": "date-time"},
                "e": {"oneOf": [{"const": "A", "description": "a"}, {"const": "B"}]},
                "title": {"type": "string", "description": "kept: a property may be called title"}
            }
        });
        compact(&mut s, true);
        assert_eq!(
            s,
            json!({
                "description": "a b",
                "properties": {
                    "n": {"type": "integer", "minimum": 0},
                    "t": {"type": "string", "format": "date-time"},
                    "e": {"type": "string", "enum": ["A", "B"]},
                    "title": {"type": "string", "description": "kept: a property may be called title"}
                }
            })
        );
    }
}
