//! Diffs a person can judge: live object vs. server-side dry-run result, as YAML, with
//! server-maintained noise removed and Secret values never shown.

use serde_json::{Map, Value};

/// Annotations that change on their own or repeat the object; they hide the real change.
const NOISY_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];
/// Metadata the server maintains; every write changes some of them.
const NOISY_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

pub const REDACTED: &str = "<redacted>";
pub const REDACTED_CHANGED: &str = "<redacted, changed>";

fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
}

/// Replace every Secret value with a marker (for the audit log's before/after).
pub fn redact_secret(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if is_secret(&obj) {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(m)) = obj.get_mut(field) {
                for v in m.values_mut() {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
        strip_last_applied(&mut obj);
    }
    obj
}

/// A patch for a Secret with its values replaced, for the kubectl equivalent (which is
/// shown and audited, so must not carry them).
pub fn redact_secret_patch(patch: &Value) -> Value {
    let mut p = patch.clone();
    match &mut p {
        Value::Object(_) => {
            for field in ["data", "stringData"] {
                if let Some(Value::Object(m)) = p.get_mut(field) {
                    for v in m.values_mut() {
                        *v = Value::String(REDACTED.into());
                    }
                }
            }
            strip_last_applied(&mut p);
        }
        Value::Array(ops) => {
            for op in ops {
                if let Some(Value::Object(o)) = Some(op) {
                    if o.contains_key("value") {
                        o.insert("value".into(), Value::String(REDACTED.into()));
                    }
                }
            }
        }
        _ => p = Value::String(REDACTED.into()),
    }
    p
}

/// The last-applied annotation of a Secret holds its values in clear.
fn strip_last_applied(obj: &mut Value) {
    if let Some(Value::Object(a)) = obj.pointer_mut("/metadata/annotations") {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// The object without server noise and status (a mutation through kai never writes
/// status; the dry-run copy of it is just the old one).
pub fn clean(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Value::Object(m) = &mut obj {
        m.remove("status");
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            for k in NOISY_METADATA {
                meta.remove(*k);
            }
            if let Some(Value::Object(a)) = meta.get_mut("annotations") {
                for k in NOISY_ANNOTATIONS {
                    a.remove(*k);
                }
                if a.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    obj
}

/// Redact a Secret pair for display: unchanged values read `<redacted>`, changed ones
/// `<redacted, changed>`, so a change stays visible without showing any value.
fn redact_pair(before: Option<&Value>, after: Option<&Value>) -> (Option<Value>, Option<Value>) {
    let secret = before.is_some_and(is_secret) || after.is_some_and(is_secret);
    if !secret {
        return (before.cloned(), after.cloned());
    }
    let field_of = |o: Option<&Value>, f: &str| -> Map<String, Value> {
        o.and_then(|o| o.get(f))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let b = before.map(redact_secret);
    let mut a = after.map(redact_secret);
    for field in ["data", "stringData"] {
        let old = field_of(before, field);
        let new = field_of(after, field);
        if let Some(Value::Object(m)) = a.as_mut().and_then(|a| a.get_mut(field)) {
            for (k, v) in m.iter_mut() {
                if old.get(k) != new.get(k) && before.is_some() {
                    *v = Value::String(REDACTED_CHANGED.into());
                }
            }
        }
    }
    (b, a)
}

pub fn to_yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_else(|e| format!("# (cannot render as YAML: {e})\n{v}\n"))
}

/// A unified diff between two states of one object (`None` = absent), labelled with
/// `label` ("Deployment shop/backend").
pub fn object_diff(label: &str, before: Option<&Value>, after: Option<&Value>) -> String {
    let (b, a) = redact_pair(before, after);
    let old = b.map(|v| to_yaml(&clean(&v))).unwrap_or_default();
    let new = a.map(|v| to_yaml(&clean(&v))).unwrap_or_default();
    if old == new {
        return String::new();
    }
    let old_name = if before.is_some() {
        format!("live: {label}")
    } else {
        "/dev/null".to_string()
    };
    let new_name = if after.is_some() {
        format!("after: {label}")
    } else {
        "/dev/null".to_string()
    };
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(4)
        .header(&old_name, &new_name)
        .to_string()
}

/// ANSI colours for a terminal: additions green, removals red, hunks cyan.
pub fn colorize(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() + 64);
    for line in diff.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let code = if body.starts_with("+++") || body.starts_with("---") {
            "1"
        } else if body.starts_with('+') {
            "32"
        } else if body.starts_with('-') {
            "31"
        } else if body.starts_with("@@") {
            "36"
        } else {
            ""
        };
        if code.is_empty() {
            out.push_str(line);
        } else {
            out.push_str(&format!("\x1b[{code}m{body}\x1b[0m{nl}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(replicas: i64, rv: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": rv, "uid": "u1",
                "generation": 3, "creationTimestamp": "2024-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": replicas},
            "status": {"readyReplicas": 1}
        })
    }

    #[test]
    fn diff_shows_the_change_without_noise() {
        let d = object_diff(
            "Deployment shop/web",
            Some(&deploy(1, "10")),
            Some(&deploy(3, "11")),
        );
        assert!(d.contains("-  replicas: 1"), "{d}");
        assert!(d.contains("+  replicas: 3"), "{d}");
        for noise in [
            "resourceVersion",
            "managedFields",
            "uid",
            "generation",
            "creationTimestamp",
            "last-applied",
            "readyReplicas",
        ] {
            assert!(!d.contains(noise), "{noise} in {d}");
        }
    }

    #[test]
    fn identical_objects_have_an_empty_diff() {
        assert_eq!(
            object_diff("x", Some(&deploy(1, "10")), Some(&deploy(1, "11"))),
            ""
        );
    }

    #[test]
    fn deletion_shows_the_whole_object_removed() {
        let d = object_diff("Deployment shop/web", Some(&deploy(1, "10")), None);
        assert!(d.contains("+++ /dev/null"), "{d}");
        assert!(d.contains("-kind: Deployment"), "{d}");
        assert!(
            d.lines()
                .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
                .count()
                == 0
        );
    }

    #[test]
    fn secret_values_never_appear() {
        let s = |v: &str| {
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{{\"data\":{{\"password\":\"{v}\"}}}}")}},
            "data": {"password": v, "user": "YWRtaW4="}})
        };
        let d = object_diff(
            "Secret shop/db",
            Some(&s("c2VjcmV0MQ==")),
            Some(&s("c2VjcmV0Mg==")),
        );
        assert!(!d.contains("c2VjcmV0"), "{d}");
        assert!(!d.contains("YWRtaW4="), "{d}");
        assert!(d.contains(REDACTED_CHANGED), "{d}");
        let del = object_diff("Secret shop/db", Some(&s("c2VjcmV0MQ==")), None);
        assert!(!del.contains("c2VjcmV0") && del.contains(REDACTED), "{del}");
        let p = redact_secret_patch(
            &json!({"stringData": {"password": "x1"}, "metadata": {"labels": {"a": "b"}}}),
        );
        assert_eq!(
            p,
            json!({"stringData": {"password": REDACTED}, "metadata": {"labels": {"a": "b"}}})
        );
        let p = redact_secret_patch(&json!([{"op": "add", "path": "/data/k", "value": "eDE="}]));
        assert!(!p.to_string().contains("eDE="));
        let audit = redact_secret(&s("c2VjcmV0MQ=="));
        assert!(!audit.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn colours_mark_added_and_removed_lines() {
        let c = colorize("--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n same\n");
        assert!(c.contains("\x1b[31m-old\x1b[0m\n"));
        assert!(c.contains("\x1b[32m+new\x1b[0m\n"));
        assert!(c.contains(" same\n"));
    }
}
