//! Custom resources checked against their CustomResourceDefinition's `openAPIV3Schema`
//! (a structural schema), as read from the cluster by the caller: kai-manifest itself
//! never talks to a cluster.
//!
//! Checked: `type` (object, array, string, integer, number, boolean), `properties` with
//! unknown fields reported by path and "did you mean" (unless
//! `x-kubernetes-preserve-unknown-fields: true` or `additionalProperties` allows them),
//! `required`, `items`, `additionalProperties`, `enum`, `x-kubernetes-int-or-string`,
//! `nullable`, `format` int32/int64, `minimum`/`maximum` (and their exclusive flags),
//! `minLength`/`maxLength`, `minItems`/`maxItems` and `pattern`. Not checked: `allOf`,
//! `anyOf`, `oneOf`, `not` and CEL rules (`x-kubernetes-validations`); the server-side
//! dry run of `kai generate` still sees them.
//!
//! Both the schema and the object are hostile input: the walk follows the object (so its
//! depth is the object's, itself bounded by the parser) and stops at [`MAX_DEPTH`]
//! levels and [`MAX_ISSUES`] issues; a pattern is compiled with a size limit and a bad
//! one is skipped (the API server would not have accepted the CRD with it).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::parse::Doc;
use crate::path::Path;
use crate::schema::{nearest, unknown_field_message, IssueKind, SchemaIssue, KNOWN_KINDS};

/// (group, version, kind); the core group is `""`.
pub type Gvk = (String, String, String);

/// How deep the walk goes before it says so and stops.
pub const MAX_DEPTH: usize = 100;
/// How many issues one object may produce (a wrong schema must not flood the model).
pub const MAX_ISSUES: usize = 100;
/// A compiled pattern's size limit (bytes of the regex program).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// The longest quoted value in a message.
const QUOTE_CHARS: usize = 60;

/// The CRD schemas the cluster gave for a bundle's custom kinds, and why the others
/// could not be checked (forbidden, not served, no schema).
#[derive(Debug, Clone, Default)]
pub struct CrdSchemas {
    /// The `openAPIV3Schema` of each (group, version, kind).
    pub schemas: BTreeMap<Gvk, Value>,
    /// Kinds that were looked up and cannot be checked, with the reason.
    pub unchecked: BTreeMap<Gvk, String>,
}

/// Groups the API server itself serves without dots in their name: their kinds are never
/// custom resources.
const BUILTIN_GROUPS: &[&str] = &["", "apps", "batch", "autoscaling", "policy", "extensions"];

/// The (group, version, kind) of an object, when it has apiVersion and kind.
pub fn gvk_of(value: &Value) -> Option<Gvk> {
    let api = value.get("apiVersion")?.as_str()?;
    let kind = value.get("kind")?.as_str()?;
    let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
    if version.is_empty() || kind.is_empty() {
        return None;
    }
    Some((group.to_string(), version.to_string(), kind.to_string()))
}

/// The kinds of `docs` that may be custom resources: no built-in schema, no built-in
/// kind of that name in another version, and not a group the API server serves itself.
pub fn custom_kinds(docs: &[Doc]) -> BTreeSet<Gvk> {
    docs.iter()
        .filter_map(|d| gvk_of(&d.value))
        .filter(|(g, _, k)| {
            !BUILTIN_GROUPS.contains(&g.as_str())
                && !KNOWN_KINDS.iter().any(|(_, known)| known == k)
        })
        .collect()
}

/// [`custom_kinds`] of `(name, text)` files; files that do not parse are skipped (the
/// check reports them).
pub fn custom_kinds_in_files(files: &[(String, String)]) -> BTreeSet<Gvk> {
    let mut out = BTreeSet::new();
    for (name, text) in files {
        if let Ok(docs) = crate::parse(name, text) {
            out.extend(custom_kinds(&docs));
        }
    }
    out
}

/// Replace an object's "no built-in schema" issue by what its CRD schema says, or by the
/// reason the CRD could not be checked. Other issues pass through.
pub fn resolve(issues: Vec<SchemaIssue>, value: &Value, crds: &CrdSchemas) -> Vec<SchemaIssue> {
    let Some(gvk) = gvk_of(value) else {
        return issues;
    };
    let mut out = Vec::with_capacity(issues.len());
    for issue in issues {
        if issue.kind != IssueKind::UnknownKind {
            out.push(issue);
            continue;
        }
        if let Some(schema) = crds.schemas.get(&gvk) {
            out.extend(validate(schema, value));
        } else if let Some(why) = crds.unchecked.get(&gvk) {
            out.push(SchemaIssue {
                message: format!(
                    "CRD schema not checked: {why}; only apiVersion, kind and metadata were checked"
                ),
                ..issue
            });
        } else {
            out.push(issue);
        }
    }
    out
}

/// The problems of `object` under the CRD version schema `schema`. The top level's
/// `apiVersion`, `kind` and `metadata` are left to the built-in pass (the API server
/// checks only a custom resource's name there).
pub fn validate(schema: &Value, object: &Value) -> Vec<SchemaIssue> {
    let mut w = Walk {
        issues: Vec::new(),
        patterns: HashMap::new(),
        too_deep: false,
    };
    w.walk(schema, object, &Path::root(), 0);
    w.issues.truncate(MAX_ISSUES);
    w.issues
}

struct Walk<'s> {
    issues: Vec<SchemaIssue>,
    /// Each pattern compiled once per object (`None`: it does not compile).
    patterns: HashMap<&'s str, Option<Regex>>,
    too_deep: bool,
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// `"three"` → `string "three"`, for "invalid type" messages like serde's.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("number `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {}", quote(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

fn quote(s: &str) -> String {
    let cut: String = s.chars().take(QUOTE_CHARS).collect();
    if cut.len() < s.len() {
        format!("\"{cut}...\"")
    } else {
        format!("\"{cut}\"")
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        other => {
            let t = other.to_string();
            let cut: String = t.chars().take(QUOTE_CHARS).collect();
            if cut.len() < t.len() {
                format!("{cut}...")
            } else {
                cut
            }
        }
    }
}

fn is_integer(v: &Value) -> bool {
    v.as_i64().is_some() || v.as_u64().is_some()
}

impl<'s> Walk<'s> {
    fn full(&self) -> bool {
        self.issues.len() >= MAX_ISSUES
    }

    fn invalid(&mut self, path: &Path, message: String) {
        self.issues.push(SchemaIssue {
            kind: IssueKind::Invalid,
            path: path.clone(),
            message,
        });
    }

    fn walk(&mut self, schema: &'s Value, v: &Value, path: &Path, depth: usize) {
        if self.full() {
            return;
        }
        if depth > MAX_DEPTH {
            if !self.too_deep {
                self.too_deep = true;
                self.invalid(
                    path,
                    format!("nested deeper than {MAX_DEPTH} levels; kai did not check below here"),
                );
            }
            return;
        }
        // A schema that is not a map (`true`, a hostile scalar) constrains nothing.
        if !schema.is_object() {
            return;
        }
        let ty = schema.get("type").and_then(Value::as_str);
        let int_or_string = flag(schema, "x-kubernetes-int-or-string");
        if v.is_null() {
            // Untyped (preserve-unknown) values may be anything, null included.
            if !flag(schema, "nullable") && (ty.is_some() || int_or_string) {
                self.invalid(
                    path,
                    "null is not allowed here (the schema does not mark it nullable)".into(),
                );
            }
            return;
        }
        if int_or_string {
            if !(is_integer(v) || v.is_string()) {
                self.invalid(
                    path,
                    format!(
                        "invalid type: {}, expected an integer or a string",
                        describe(v)
                    ),
                );
                return;
            }
        } else if let Some(ty) = ty {
            let ok = match ty {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string(),
                "integer" => is_integer(v),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                // An unknown type name: the API server would not serve such a CRD.
                _ => true,
            };
            if !ok {
                let expected = match ty {
                    "object" => "a map",
                    "array" => "a list",
                    other => other,
                };
                self.invalid(
                    path,
                    format!("invalid type: {}, expected {expected}", describe(v)),
                );
                return;
            }
        }
        self.check_enum(schema, v, path);
        self.check_format(schema, v, path);
        self.check_bounds(schema, v, path);
        self.check_pattern(schema, v, path);
        match v {
            Value::Object(map) => self.object(schema, map, path, depth),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        if self.full() {
                            return;
                        }
                        self.walk(item_schema, item, &path.index(i), depth + 1);
                    }
                }
            }
            _ => {}
        }
    }

    fn object(
        &mut self,
        schema: &'s Value,
        map: &serde_json::Map<String, Value>,
        path: &Path,
        depth: usize,
    ) {
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
        // Left to the built-in pass at the top, and part of an embedded object's shape.
        let envelope = path.is_root() || flag(schema, "x-kubernetes-embedded-resource");
        let names: Vec<&str> = props
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for (key, value) in map {
            if self.full() {
                return;
            }
            if envelope && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(sub) = props.and_then(|p| p.get(key)) {
                self.walk(sub, value, &path.key(key), depth + 1);
                continue;
            }
            match additional {
                Some(Value::Bool(true)) => {}
                Some(sub @ Value::Object(_)) => self.walk(sub, value, &path.key(key), depth + 1),
                _ if preserve => {}
                _ => self.issues.push(SchemaIssue {
                    kind: IssueKind::UnknownField,
                    path: path.key(key),
                    message: unknown_field_message(key, &nearest(key, &names)),
                }),
            }
        }
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if self.full() {
                return;
            }
            if map.get(req).is_none_or(Value::is_null) {
                self.invalid(&path.key(req), format!("missing required field `{req}`"));
            }
        }
    }

    fn check_enum(&mut self, schema: &Value, v: &Value, path: &Path) {
        let Some(allowed) = schema.get("enum").and_then(Value::as_array) else {
            return;
        };
        // 1 and 1.0 are the same number to the API server.
        let same = |a: &Value| match (a.as_f64(), v.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == v,
        };
        if allowed.iter().any(same) {
            return;
        }
        let strings: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
        let near = v.as_str().map(|s| nearest(s, &strings)).unwrap_or_default();
        let mut listed: Vec<String> = allowed.iter().take(10).map(short).collect();
        if allowed.len() > 10 {
            listed.push(format!("... ({} in all)", allowed.len()));
        }
        let hint = match near.first() {
            Some(n) => format!("; did you mean \"{n}\"?"),
            None => String::new(),
        };
        self.invalid(
            path,
            format!(
                "unsupported value {}: must be one of {}{hint}",
                short(v),
                listed.join(", ")
            ),
        );
    }

    /// Loosely: only the integer widths, whose overflow the API server rejects.
    fn check_format(&mut self, schema: &Value, v: &Value, path: &Path) {
        let Some(format) = schema.get("format").and_then(Value::as_str) else {
            return;
        };
        if !v.is_number() {
            return;
        }
        let fits = match format {
            "int32" => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            "int64" => v.as_i64().is_some(),
            _ => true,
        };
        if !fits {
            self.invalid(path, format!("{} does not fit in {format}", short(v)));
        }
    }

    fn check_bounds(&mut self, schema: &Value, v: &Value, path: &Path) {
        let num = |k: &str| schema.get(k).and_then(Value::as_f64);
        let count = |k: &str| schema.get(k).and_then(Value::as_u64);
        if let Some(x) = v.as_f64().filter(|_| v.is_number()) {
            if let Some(min) = num("minimum") {
                let exclusive = flag(schema, "exclusiveMinimum");
                if x < min || (exclusive && x == min) {
                    let rel = if exclusive {
                        "greater than"
                    } else {
                        "at least"
                    };
                    self.invalid(path, format!("{} must be {rel} {min}", short(v)));
                }
            }
            if let Some(max) = num("maximum") {
                let exclusive = flag(schema, "exclusiveMaximum");
                if x > max || (exclusive && x == max) {
                    let rel = if exclusive { "less than" } else { "at most" };
                    self.invalid(path, format!("{} must be {rel} {max}", short(v)));
                }
            }
        }
        let (len, unit) = match v {
            Value::String(s) => (s.chars().count() as u64, "character(s)"),
            Value::Array(a) => (a.len() as u64, "item(s)"),
            _ => return,
        };
        let (min_key, max_key) = if v.is_string() {
            ("minLength", "maxLength")
        } else {
            ("minItems", "maxItems")
        };
        if let Some(min) = count(min_key).filter(|m| len < *m) {
            self.invalid(
                path,
                format!("has {len} {unit}; at least {min} required ({min_key})"),
            );
        }
        if let Some(max) = count(max_key).filter(|m| len > *m) {
            self.invalid(
                path,
                format!("has {len} {unit}; at most {max} allowed ({max_key})"),
            );
        }
    }

    fn check_pattern(&mut self, schema: &'s Value, v: &Value, path: &Path) {
        let (Some(pattern), Some(s)) = (schema.get("pattern").and_then(Value::as_str), v.as_str())
        else {
            return;
        };
        let re = self.patterns.entry(pattern).or_insert_with(|| {
            RegexBuilder::new(pattern)
                .size_limit(PATTERN_SIZE_LIMIT)
                .dfa_size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .ok()
        });
        if let Some(re) = re {
            if !re.is_match(s) {
                let shown: String = pattern.chars().take(QUOTE_CHARS * 2).collect();
                self.invalid(
                    path,
                    format!("{} does not match the pattern `{shown}`", quote(s)),
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The test CRD's schema, as `kubectl get crd widgets.example.com -o json` shows it.
    fn widget_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10},
                        "colour": {"type": "string", "enum": ["red", "green", "blue"]},
                        "name": {"type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$"},
                        "port": {"x-kubernetes-int-or-string": true},
                        "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
                        "enabled": {"type": "boolean"},
                        "note": {"type": "string", "nullable": true},
                        "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "nested": {
                            "type": "object",
                            "properties": {"inner": {"type": "object", "properties": {"depth": {"type": "integer"}}}}
                        },
                        "big": {"type": "integer", "format": "int64"}
                    }
                }
            }
        })
    }

    fn widget() -> Value {
        json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "labels": {"app": "w"}},
            "spec": {
                "size": 3, "colour": "red", "name": "abc", "port": 8080, "ratio": 0.5,
                "enabled": true, "note": null, "tags": ["a"], "labels": {"a": "b"},
                "extra": {"anything": [1, {"x": null}]},
                "nested": {"inner": {"depth": 2}}, "big": 5_000_000_000_i64
            }
        })
    }

    /// The issues after setting `pointer` (under spec) to `value`, as `path: message`.
    fn with(key: &str, value: Value) -> Vec<String> {
        let mut w = widget();
        w["spec"][key] = value;
        render(&validate(&widget_schema(), &w))
    }

    fn without(key: &str) -> Vec<String> {
        let mut w = widget();
        w["spec"].as_object_mut().unwrap().remove(key);
        render(&validate(&widget_schema(), &w))
    }

    fn render(issues: &[SchemaIssue]) -> Vec<String> {
        issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect()
    }

    #[test]
    fn a_valid_widget_has_no_issues() {
        assert_eq!(validate(&widget_schema(), &widget()), vec![]);
        // The optional fields may all be left out.
        let minimal = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "spec": {"size": 1}});
        assert_eq!(validate(&widget_schema(), &minimal), vec![]);
    }

    #[test]
    fn unknown_fields_have_paths_and_suggestions() {
        let mut w = widget();
        let spec = w["spec"].as_object_mut().unwrap();
        spec.remove("size");
        spec.insert("sise".into(), json!(3));
        w["spec"]["nested"]["inner"]["dept"] = json!(1);
        w["spec"]["frobnicate"] = json!(1);
        w["status"] = json!({});
        let issues = validate(&widget_schema(), &w);
        let msgs = render(&issues);
        assert!(
            msgs.contains(&"spec.sise: unknown field `sise`; did you mean `size`?".to_string()),
            "{msgs:?}"
        );
        assert!(msgs.contains(
            &"spec.nested.inner.dept: unknown field `dept`; did you mean `depth`?".to_string()
        ));
        assert!(msgs.contains(&"spec.frobnicate: unknown field `frobnicate`".to_string()));
        assert!(msgs.contains(&"status: unknown field `status`".to_string()));
        // The misspelling also leaves the required field missing.
        assert!(msgs.contains(&"spec.size: missing required field `size`".to_string()));
        assert_eq!(
            issues
                .iter()
                .filter(|i| i.kind == IssueKind::UnknownField)
                .count(),
            4
        );
    }

    #[test]
    fn preserve_unknown_fields_and_additional_properties_allow_keys() {
        // Fires: additionalProperties' schema applies to every value.
        assert_eq!(
            with("labels", json!({"a": 1})),
            vec!["spec.labels.a: invalid type: integer `1`, expected string"]
        );
        // Does not: preserved and additional keys are not unknown.
        assert!(with("extra", json!({"whatever": {"deep": true}})).is_empty());
        assert!(with("labels", json!({"any-key": "v"})).is_empty());
        let mut schema = widget_schema();
        schema["properties"]["spec"]["additionalProperties"] = json!(true);
        let mut w = widget();
        w["spec"]["free"] = json!(1);
        assert_eq!(validate(&schema, &w), vec![]);
    }

    #[test]
    fn types_are_checked() {
        assert_eq!(
            with("size", json!("three")),
            vec!["spec.size: invalid type: string \"three\", expected integer"]
        );
        assert_eq!(
            with("size", json!(2.5)),
            vec!["spec.size: invalid type: number `2.5`, expected integer"]
        );
        assert_eq!(
            with("enabled", json!("yes")),
            vec!["spec.enabled: invalid type: string \"yes\", expected boolean"]
        );
        assert_eq!(
            with("ratio", json!("1")),
            vec!["spec.ratio: invalid type: string \"1\", expected number"]
        );
        assert_eq!(
            with("tags", json!("a")),
            vec!["spec.tags: invalid type: string \"a\", expected a list"]
        );
        assert_eq!(
            with("nested", json!([1])),
            vec!["spec.nested: invalid type: a list, expected a map"]
        );
        assert_eq!(
            with("name", json!(5)),
            vec!["spec.name: invalid type: integer `5`, expected string"]
        );
        // Does not fire: an integer is a number.
        assert!(with("ratio", json!(2)).is_empty());
    }

    #[test]
    fn required_fields() {
        assert_eq!(
            without("size"),
            vec!["spec.size: missing required field `size`"]
        );
        assert_eq!(
            with("size", Value::Null),
            vec![
                "spec.size: null is not allowed here (the schema does not mark it nullable)",
                "spec.size: missing required field `size`"
            ]
        );
        assert!(without("colour").is_empty());
    }

    #[test]
    fn items_are_checked_by_index() {
        assert_eq!(
            with("tags", json!(["a", 2])),
            vec!["spec.tags[1]: invalid type: integer `2`, expected string"]
        );
        assert!(with("tags", json!(["a", "b"])).is_empty());
    }

    #[test]
    fn enums() {
        assert_eq!(
            with("colour", json!("gren")),
            vec![
                "spec.colour: unsupported value \"gren\": must be one of \"red\", \"green\", \"blue\"; did you mean \"green\"?"
            ]
        );
        assert!(with("colour", json!("blue")).is_empty());
    }

    #[test]
    fn int_or_string() {
        assert!(with("port", json!("http")).is_empty());
        assert!(with("port", json!(80)).is_empty());
        assert_eq!(
            with("port", json!(true)),
            vec!["spec.port: invalid type: boolean `true`, expected an integer or a string"]
        );
    }

    #[test]
    fn nullable() {
        assert!(with("note", Value::Null).is_empty());
        assert_eq!(
            with("colour", Value::Null),
            vec!["spec.colour: null is not allowed here (the schema does not mark it nullable)"]
        );
    }

    #[test]
    fn integer_formats() {
        assert_eq!(
            with("size", json!(5_000_000_000_i64)),
            vec![
                "spec.size: 5000000000 does not fit in int32",
                "spec.size: 5000000000 must be at most 10"
            ]
        );
        assert_eq!(
            with("big", json!(u64::MAX)),
            vec!["spec.big: 18446744073709551615 does not fit in int64"]
        );
        assert!(with("big", json!(-5)).is_empty());
    }

    #[test]
    fn minimum_and_maximum() {
        assert_eq!(
            with("size", json!(0)),
            vec!["spec.size: 0 must be at least 1"]
        );
        assert_eq!(
            with("size", json!(11)),
            vec!["spec.size: 11 must be at most 10"]
        );
        assert_eq!(
            with("ratio", json!(0)),
            vec!["spec.ratio: 0 must be greater than 0"]
        );
        assert!(with("size", json!(10)).is_empty());
        assert!(with("size", json!(1)).is_empty());
    }

    #[test]
    fn string_lengths() {
        assert_eq!(
            with("name", json!("a")),
            vec!["spec.name: has 1 character(s); at least 2 required (minLength)"]
        );
        assert_eq!(
            with("name", json!("abcdefghi")),
            vec!["spec.name: has 9 character(s); at most 8 allowed (maxLength)"]
        );
        // Characters, not bytes.
        let mut schema = widget_schema();
        schema["properties"]["spec"]["properties"]["name"]
            .as_object_mut()
            .unwrap()
            .remove("pattern");
        let mut w = widget();
        w["spec"]["name"] = json!("ééééé");
        assert_eq!(validate(&schema, &w), vec![]);
    }

    #[test]
    fn list_lengths() {
        assert_eq!(
            with("tags", json!([])),
            vec!["spec.tags: has 0 item(s); at least 1 required (minItems)"]
        );
        assert_eq!(
            with("tags", json!(["a", "b", "c"])),
            vec!["spec.tags: has 3 item(s); at most 2 allowed (maxItems)"]
        );
    }

    #[test]
    fn patterns() {
        assert_eq!(
            with("name", json!("AB")),
            vec!["spec.name: \"AB\" does not match the pattern `^[a-z]+$`"]
        );
        assert!(with("name", json!("ab")).is_empty());
        // A pattern that does not compile is skipped, not an error.
        let mut schema = widget_schema();
        schema["properties"]["spec"]["properties"]["name"]["pattern"] = json!("([a-z");
        assert_eq!(validate(&schema, &widget()), vec![]);
    }

    #[test]
    fn embedded_resources_keep_their_envelope() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object"}}}}}}});
        let ok = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {}}}});
        assert_eq!(validate(&schema, &ok), vec![]);
        let bad = json!({"spec": {"template": {"kinds": "Pod"}}});
        assert_eq!(
            render(&validate(&schema, &bad)),
            vec!["spec.template.kinds: unknown field `kinds`"]
        );
    }

    #[test]
    fn hostile_depth_and_sizes_are_bounded() {
        // A self-similar schema and an object nested far deeper than the parser allows:
        // the walk stops with one issue instead of overflowing the stack.
        let mut schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        for _ in 0..150 {
            schema = json!({"type": "object", "properties": {"a": schema}});
        }
        let mut obj = json!({});
        for _ in 0..150 {
            obj = json!({"a": obj});
        }
        let issues = validate(&schema, &obj);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].message.contains("nested deeper"));
        // Thousands of problems are cut to MAX_ISSUES.
        let schema = json!({"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "string"}}}});
        let obj = json!({"xs": (0..5000).collect::<Vec<i32>>()});
        assert_eq!(validate(&schema, &obj).len(), MAX_ISSUES);
        // A huge pattern is refused by the size limit and skipped.
        let schema = json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "(a{1000}){1000}"}}});
        assert_eq!(validate(&schema, &json!({"s": "b"})), vec![]);
    }

    #[test]
    fn custom_kinds_and_resolution() {
        let docs = crate::parse(
            "b.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {sise: 1}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: i}\n---\napiVersion: apps/v1\nkind: ControllerRevision\nmetadata: {name: c}\n",
        )
        .unwrap();
        let kinds = custom_kinds(&docs);
        let widget: Gvk = ("example.com".into(), "v1".into(), "Widget".into());
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), vec![widget.clone()]);

        let base = crate::schema::check(&docs[0].value);
        assert_eq!(base[0].kind, IssueKind::UnknownKind);
        // Without anything from the cluster the note stays.
        let same = resolve(base.clone(), &docs[0].value, &CrdSchemas::default());
        assert_eq!(same, base);
        let mut crds = CrdSchemas::default();
        crds.unchecked
            .insert(widget.clone(), "forbidden to read it".into());
        let noted = resolve(base.clone(), &docs[0].value, &crds);
        assert_eq!(noted.len(), 1);
        assert!(noted[0]
            .message
            .starts_with("CRD schema not checked: forbidden to read it"));
        crds.schemas.insert(widget, widget_schema());
        let checked = render(&resolve(base, &docs[0].value, &crds));
        assert!(checked.contains(&"spec.sise: unknown field `sise`; did you mean `size`?".into()));
    }
}
