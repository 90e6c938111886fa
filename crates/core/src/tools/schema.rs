//! A small JSON-schema check for tool arguments: the subset our declarations use
//! (object, properties, required, additionalProperties, type, enum, minimum, maximum,
//! items). Model-written arguments are validated before any handler sees them.

use serde_json::Value;

pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(want: &str, v: &Value) -> bool {
    match want {
        "number" => v.is_number(),
        "integer" => {
            type_name(v) == "integer"
                || v.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        other => type_name(v) == other,
    }
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "the arguments".to_string()
    } else {
        format!("`{path}`")
    }
}

fn check(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    if let Some(t) = schema.get("type") {
        let ok = match t {
            Value::String(s) => type_matches(s, value),
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .any(|s| type_matches(s, value)),
            _ => true,
        };
        if !ok {
            return Err(format!(
                "{} must be of type {}, got {}",
                at(path),
                t,
                type_name(value)
            ));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
            return Err(format!("{} must be one of {}", at(path), list.join(", ")));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                return Err(format!("{} must be at least {min}", at(path)));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                return Err(format!("{} must be at most {max}", at(path)));
            }
        }
    }
    if let Value::Object(obj) = value {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(req)) = schema.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if obj.get(r).is_none_or(Value::is_null) {
                    return Err(format!("missing required field `{}`", join(path, r)));
                }
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(sub) => {
                    // Models often send null for "not given"; treat it as absent.
                    if !v.is_null() {
                        check(sub, v, &join(path, k))?;
                    }
                }
                None => {
                    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                        let known: Vec<&str> = props
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        return Err(format!(
                            "unknown field `{}` (known: {})",
                            join(path, k),
                            known.join(", ")
                        ));
                    }
                }
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "kind": {"type": "string"},
                "tail_lines": {"type": "integer", "minimum": 1},
                "previous": {"type": "boolean"},
                "output": {"type": "string", "enum": ["text", "json"]},
                "types": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["kind"],
            "additionalProperties": false
        })
    }

    #[test]
    fn accepts_valid_arguments() {
        validate(
            &schema(),
            &json!({"kind": "Pod", "tail_lines": 10, "previous": true}),
        )
        .unwrap();
        validate(&schema(), &json!({"kind": "Pod", "previous": null})).unwrap();
        validate(&schema(), &json!({"kind": "Pod", "tail_lines": 10.0})).unwrap();
    }

    #[test]
    fn rejects_each_kind_of_violation_with_a_useful_message() {
        let cases = [
            (json!({}), "missing required field `kind`"),
            (json!({"kind": 3}), "`kind` must be of type \"string\""),
            (json!({"kind": "Pod", "tail_lines": 0}), "at least 1"),
            (
                json!({"kind": "Pod", "tail_lines": 1.5}),
                "`tail_lines` must be of type",
            ),
            (json!({"kind": "Pod", "output": "yaml"}), "must be one of"),
            (
                json!({"kind": "Pod", "colour": "red"}),
                "unknown field `colour`",
            ),
            (json!({"kind": "Pod", "types": ["a", 1]}), "`types[1]`"),
            (json!("Pod"), "the arguments must be of type \"object\""),
        ];
        for (args, want) in cases {
            let err = validate(&schema(), &args).unwrap_err();
            assert!(err.contains(want), "{args}: {err} does not contain {want}");
        }
    }
}
