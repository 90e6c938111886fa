//! Typed tool arguments. A tool's arguments are one Rust struct: the JSON schema the
//! model is shown is generated from it ([`parameters`], schemars), and the model's JSON
//! is checked by deserialising into it ([`parse`], serde), so what is declared and what
//! is accepted cannot drift apart.
//!
//! An arguments struct derives `Deserialize` and `JsonSchema`, has
//! `#[serde(deny_unknown_fields)]` (the registry refuses one without: an unknown field
//! could carry anything, e.g. a claimed approval), and documents each field with a doc
//! comment, which becomes the field's description. Optional fields are `Option`s;
//! integers with a lower bound are [`Int`].

use std::borrow::Cow;
use std::fmt;

use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::prose;

/// The JSON schema of `A` as the model is shown it: inline (no `$ref`/`definitions`),
/// without the meta-schema, the Rust type's title and doc text, and with optional
/// fields simply of their type (a null is read as "not given", see [`parse`]). An
/// internally tagged enum becomes one object ([`flatten_tagged`]).
pub fn parameters<A: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.meta_schema = None;
    settings.inline_subschemas = true;
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<A>()
        .to_value();
    if let Value::Object(root) = &mut schema {
        // The type's name and doc comment are for kai's reviewers; the tool's
        // description is what the model reads about the whole.
        for key in ["$schema", "title", "description"] {
            root.remove(key);
        }
    }
    flatten_tagged(&mut schema);
    compact(&mut schema);
    schema
}

/// An internally tagged enum (`#[serde(tag = "action")]`, one struct per variant) is a
/// `oneOf` of objects, each repeating the fields the variants share; and a function's
/// parameters must be one object. So it is shown as one: the tag an enum of the
/// variants' names, whose description (generated, so it cannot go stale) says which
/// fields each variant needs; the union of the variants' fields, optional; unknown
/// fields refused. Which fields a variant takes is then checked by the variant's own
/// struct when the arguments are parsed (see [`parse_tagged`]). Left as it is (and so
/// refused by [`check_parameters`]) unless every variant is an object with the same
/// tag and the variants agree on the type of every field they share.
fn flatten_tagged(schema: &mut Value) {
    let Some(Value::Array(alternatives)) = schema.get("oneOf") else {
        return;
    };
    let mut tag: Option<String> = None;
    let mut names = Vec::new();
    let mut needs = Vec::new();
    let mut fields = Map::new();
    for alt in alternatives {
        let Some(props) = alt.get("properties").and_then(Value::as_object) else {
            return;
        };
        let Some((key, name)) = props.iter().find_map(|(k, v)| {
            v.get("const")
                .and_then(Value::as_str)
                .map(|c| (k.clone(), c.to_string()))
        }) else {
            return;
        };
        if *tag.get_or_insert_with(|| key.clone()) != key {
            return;
        }
        let required: Vec<&str> = alt
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|r| *r != key)
            .collect();
        needs.push(if required.is_empty() {
            name.clone()
        } else {
            format!("{name}: {}", required.join(", "))
        });
        names.push(Value::String(name));
        for (field, sub) in props.iter().filter(|(k, _)| **k != key) {
            match fields.get(field) {
                None => {
                    fields.insert(field.clone(), sub.clone());
                }
                Some(seen) if seen.get("type") != sub.get("type") => return,
                Some(_) => {}
            }
        }
    }
    let Some(tag) = tag else {
        return;
    };
    let mut properties = Map::new();
    properties.insert(
        tag.clone(),
        serde_json::json!({
            "type": "string",
            "enum": names,
            "description": format!("Fields each {tag} needs: {}.", needs.join("; ")),
        }),
    );
    properties.extend(fields);
    *schema = serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": [tag],
        "additionalProperties": false,
    });
}

/// The arguments of an internally tagged enum (see [`flatten_tagged`]): the tag's value
/// from `args`, and the rest parsed by `variant`, the variant's own struct ([`parse`]),
/// so errors name the field and unknown fields are refused per variant. `tag` is the
/// tag's field name; `variant` returns `None` for a name that is not a variant (the
/// error then lists the variants of `T`'s schema).
pub fn parse_tagged<T: JsonSchema>(
    args: Map<String, Value>,
    tag: &str,
    variant: impl FnOnce(&str, &Value) -> Option<Result<T, String>>,
) -> Result<T, String> {
    let mut rest = args;
    let name = match rest.remove(tag) {
        None | Some(Value::Null) => return Err(format!("missing required field `{tag}`")),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(format!(
                "`{tag}`: invalid type: {}, expected a string",
                type_name(&other)
            ))
        }
    };
    let rest = Value::Object(rest);
    match variant(&name, &rest) {
        Some(r) => r.map_err(|reason| format!("{tag} `{name}`: {reason}")),
        None => Err(format!(
            "`{tag}`: unknown variant `{name}`, expected one of {}",
            backticked(
                parameters::<T>()["properties"][tag]["enum"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
            )
        )),
    }
}

/// "`a`, `b`": names listed the way serde's own messages list them.
fn backticked<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    let quoted: Vec<String> = names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect();
    quoted.join(", ")
}

/// Drop what the model does not need: `null` as an alternative type of optional
/// properties (schemars adds it for `Option`), and the `format` of numbers (`int64`,
/// `uint32`: the schema's minimum says what matters). A field's doc comment, wrapped
/// for the source, becomes one line ([`prose`]).
fn compact(schema: &mut Value) {
    let Value::Object(obj) = schema else {
        return;
    };
    obj.remove("format");
    if let Some(Value::String(d)) = obj.get_mut("description") {
        *d = prose(d);
    }
    let required: Vec<String> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            if !required.contains(name) {
                drop_null(prop);
            }
            compact(prop);
        }
    }
    if let Some(items) = obj.get_mut("items") {
        compact(items);
    }
}

fn drop_null(prop: &mut Value) {
    let Value::Object(p) = prop else {
        return;
    };
    if let Some(Value::Array(types)) = p.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            p.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = p.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

/// Whether `parameters` is a schema kai offers a model: an object that refuses unknown
/// fields, all inline. `Err` says what is wrong; a registry refuses such a tool.
pub fn check_parameters(parameters: &Value) -> Result<(), String> {
    if parameters.get("type") != Some(&Value::String("object".into())) {
        return Err("the arguments must be a struct (a JSON object)".into());
    }
    if parameters.get("additionalProperties") != Some(&Value::Bool(false)) {
        return Err(
            "the arguments struct must refuse unknown fields (#[serde(deny_unknown_fields)])"
                .into(),
        );
    }
    if parameters.to_string().contains("\"$ref\"") {
        return Err(
            "the schema refers to definitions (a recursive type?); arguments must be inline".into(),
        );
    }
    Ok(())
}

/// The model-written `args` as an `A`. `Err` is the reason for the model, naming the
/// field: ``missing required field `kind` ``, ``unknown field `colour`, expected one of
/// ...``, `` `tail_lines`: invalid type: string "ten", expected an integer of at least
/// 1``. A field sent as `null` counts as not given (models often send null for "none").
/// An unknown field also lists the required fields that are missing, so a model that
/// misspelt one learns the right name and what else it must send in one go.
pub fn parse<A: DeserializeOwned + JsonSchema>(args: &Value) -> Result<A, String> {
    let Value::Object(obj) = args else {
        return Err(format!(
            "the arguments must be a JSON object, got {}",
            type_name(args)
        ));
    };
    let given: Map<String, Value> = obj
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let missing = missing_required::<A>(&given);
    serde_path_to_error::deserialize(Value::Object(given)).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.inner().to_string();
        let reason = match reason.strip_prefix("missing field ") {
            Some(field) => format!("missing required field {field}"),
            None => reason,
        };
        if reason.starts_with("unknown field") {
            // serde stops at the unknown field, before it would notice missing ones.
            match missing.as_slice() {
                [] => reason,
                [one] => format!("{reason}; missing required field `{one}`"),
                many => format!("{reason}; missing required fields {}", backticked(many)),
            }
        } else if path.is_empty() || path == "." {
            reason
        } else {
            format!("`{path}`: {reason}")
        }
    })
}

/// The top-level required fields of `A`'s schema that `given` lacks.
fn missing_required<A: JsonSchema>(given: &Map<String, Value>) -> Vec<String> {
    let schema = parameters::<A>();
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|f| !given.contains_key(*f))
        .map(String::from)
        .collect()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A whole number of at least `MIN`; its schema is `{"type": "integer", "minimum":
/// MIN}`. `3.0` counts as 3 (the schema says integer, and some models write whole
/// numbers with a point); `2.5`, `"3"` and anything below `MIN` are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Int<const MIN: i64>(pub i64);

impl<const MIN: i64> Int<MIN> {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de, const MIN: i64> Deserialize<'de> for Int<MIN> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Whole<const MIN: i64>;

        impl<const MIN: i64> Visitor<'_> for Whole<MIN> {
            type Value = Int<MIN>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an integer of at least {MIN}")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int<MIN>, E> {
                if v < MIN {
                    Err(E::custom(format!("must be at least {MIN}, got {v}")))
                } else {
                    Ok(Int(v))
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int<MIN>, E> {
                match i64::try_from(v) {
                    Ok(v) => self.visit_i64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                }
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int<MIN>, E> {
                // i64::MAX as f64 rounds up to 2^63, which is out of range: `<`, not `<=`.
                let in_range = v >= i64::MIN as f64 && v < i64::MAX as f64;
                if v.fract() == 0.0 && in_range {
                    self.visit_i64(v as i64)
                } else {
                    Err(E::invalid_type(Unexpected::Float(v), &self))
                }
            }
        }

        d.deserialize_any(Whole::<MIN>)
    }
}

impl<const MIN: i64> JsonSchema for Int<MIN> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("IntAtLeast{MIN}").into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": MIN})
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "lowercase")]
    enum Output {
        Text,
        Json,
    }

    /// Rust-side documentation: not shown to the model.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        /// Kind, plural or short name.
        kind: String,
        tail_lines: Option<Int<1>>,
        /// Logs of the previous
        /// instance.
        previous: Option<bool>,
        /// Defaults to text.
        output: Option<Output>,
        types: Option<Vec<String>>,
        replicas: Option<u32>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct ScaleTo {
        /// Kind.
        kind: String,
        replicas: Int<0>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Remove {
        /// Kind, again.
        kind: String,
        name: Option<String>,
    }

    #[derive(Debug, JsonSchema)]
    #[serde(tag = "action", rename_all = "snake_case")]
    enum Change {
        ScaleTo(ScaleTo),
        Remove(Remove),
    }

    impl<'de> Deserialize<'de> for Change {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            parse_tagged(Map::deserialize(d)?, "action", |name, rest| match name {
                "scale_to" => Some(parse(rest).map(Change::ScaleTo)),
                "remove" => Some(parse(rest).map(Change::Remove)),
                _ => None,
            })
            .map_err(de::Error::custom)
        }
    }

    #[test]
    fn a_tagged_enum_is_one_object_whose_tag_says_what_each_variant_needs() {
        let s = parameters::<Change>();
        assert_eq!(
            s,
            json!({
                "type": "object",
                "properties": {
                    "action": {
                        "type": "string",
                        "enum": ["scale_to", "remove"],
                        "description": "Fields each action needs: scale_to: kind, replicas; remove: kind."
                    },
                    "kind": {"type": "string", "description": "Kind."},
                    "replicas": {"type": "integer", "minimum": 0},
                    "name": {"type": "string"}
                },
                "required": ["action"],
                "additionalProperties": false
            })
        );
        check_parameters(&s).unwrap();
        let c: Change = parse(&json!({"action": "scale_to", "kind": "d", "replicas": 2})).unwrap();
        assert!(matches!(
            c,
            Change::ScaleTo(ScaleTo {
                replicas: Int(2),
                ..
            })
        ));
        let c: Change = parse(&json!({"action": "remove", "kind": "d", "replicas": null})).unwrap();
        assert!(matches!(c, Change::Remove(Remove { name: None, .. })));
        for (args, want) in [
            (json!({"kind": "d"}), "missing required field `action`"),
            (
                json!({"action": 1}),
                "`action`: invalid type: a number, expected a string",
            ),
            (
                json!({"action": "scale"}),
                "`action`: unknown variant `scale`, expected one of `scale_to`, `remove`",
            ),
            (
                json!({"action": "scale_to", "kind": "d"}),
                "action `scale_to`: missing required field `replicas`",
            ),
            (
                json!({"action": "scale_to", "kind": "d", "replicas": "2"}),
                "action `scale_to`: `replicas`: invalid type: string \"2\"",
            ),
            (
                json!({"action": "remove", "kind": "d", "replicas": 2}),
                "action `remove`: unknown field `replicas`, expected `kind` or `name`",
            ),
        ] {
            let err = parse::<Change>(&args).unwrap_err();
            assert!(
                err.contains(want),
                "{args}: {err:?} does not contain {want:?}"
            );
        }
    }

    #[test]
    fn variants_that_disagree_on_a_field_type_are_not_flattened() {
        #[derive(Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct A {
            n: String,
        }
        #[derive(Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct B {
            n: i64,
        }
        #[derive(Deserialize, JsonSchema)]
        #[serde(tag = "t")]
        #[allow(dead_code)]
        enum Mixed {
            A(A),
            B(B),
        }
        assert!(check_parameters(&parameters::<Mixed>()).is_err());
    }

    #[test]
    fn the_schema_is_compact_and_says_what_is_accepted() {
        let s = parameters::<Example>();
        assert_eq!(
            s,
            json!({
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "description": "Kind, plural or short name."},
                    "tail_lines": {"type": "integer", "minimum": 1},
                    "previous": {"type": "boolean", "description": "Logs of the previous instance."},
                    "output": {"type": "string", "enum": ["text", "json"], "description": "Defaults to text."},
                    "types": {"type": "array", "items": {"type": "string"}},
                    "replicas": {"type": "integer", "minimum": 0}
                },
                "required": ["kind"],
                "additionalProperties": false
            })
        );
        check_parameters(&s).unwrap();
    }

    #[test]
    fn a_struct_that_accepts_unknown_fields_is_refused() {
        #[derive(Deserialize, JsonSchema)]
        #[allow(dead_code)]
        struct Lax {
            kind: String,
        }
        let e = check_parameters(&parameters::<Lax>()).unwrap_err();
        assert!(e.contains("deny_unknown_fields"), "{e}");
        assert!(check_parameters(&parameters::<String>()).is_err());
    }

    #[test]
    fn accepts_valid_arguments() {
        let a: Example =
            parse(&json!({"kind": "Pod", "tail_lines": 10, "previous": true})).unwrap();
        assert_eq!(a.tail_lines, Some(Int(10)));
        // null is "not given"; a whole float is a whole number.
        let a: Example =
            parse(&json!({"kind": "Pod", "previous": null, "tail_lines": 10.0})).unwrap();
        assert_eq!((a.previous, a.tail_lines), (None, Some(Int(10))));
    }

    #[test]
    fn rejects_each_kind_of_violation_with_a_message_naming_the_field() {
        let cases = [
            (json!({}), "missing required field `kind`"),
            (json!({"kind": null}), "missing required field `kind`"),
            (
                json!({"kind": 3}),
                "`kind`: invalid type: integer `3`, expected a string",
            ),
            (
                json!({"kind": "Pod", "tail_lines": 0}),
                "`tail_lines`: must be at least 1, got 0",
            ),
            (
                json!({"kind": "Pod", "tail_lines": 1.5}),
                "`tail_lines`: invalid type: floating point `1.5`",
            ),
            (
                json!({"kind": "Pod", "tail_lines": "10"}),
                "`tail_lines`: invalid type: string",
            ),
            (
                json!({"kind": "Pod", "tail_lines": 1e300}),
                "`tail_lines`: invalid type",
            ),
            (
                json!({"kind": "Pod", "tail_lines": u64::MAX}),
                "`tail_lines`: invalid value",
            ),
            (
                json!({"kind": "Pod", "previous": "yes"}),
                "`previous`: invalid type: string \"yes\", expected a boolean",
            ),
            (
                json!({"kind": "Pod", "output": "yaml"}),
                "`output`: unknown variant `yaml`, expected `text` or `json`",
            ),
            (
                json!({"kind": "Pod", "colour": "red"}),
                "unknown field `colour`, expected one of `kind`",
            ),
            (
                json!({"knd": "Pod"}),
                "unknown field `knd`, expected one of `kind`, `tail_lines`, `previous`, `output`, `types`, `replicas`; missing required field `kind`",
            ),
            (
                json!({"kind": "Pod", "types": ["a", 1]}),
                "`types[1]`: invalid type: integer `1`",
            ),
            (
                json!({"kind": "Pod", "replicas": -1}),
                "`replicas`: invalid value: integer `-1`",
            ),
            (
                json!("Pod"),
                "the arguments must be a JSON object, got a string",
            ),
            (
                json!([1]),
                "the arguments must be a JSON object, got an array",
            ),
        ];
        for (args, want) in cases {
            let err = parse::<Example>(&args).unwrap_err();
            assert!(
                err.contains(want),
                "{args}: {err:?} does not contain {want:?}"
            );
        }
    }
}
