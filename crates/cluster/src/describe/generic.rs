//! Rendering any other kind from its JSON: type, data keys (never values), spec and
//! status as YAML within a budget, conditions, events. Pure: read in [`super::read`].

use std::fmt::Write as _;

use serde_json::Value;

use super::common::{header, indent, object_events};
use super::read::GenericRead;
use crate::budget;
use crate::objects;
use crate::{ClusterError, Kind};

pub(super) fn render(r: GenericRead, kind: &Kind, name: &str) -> Result<String, ClusterError> {
    let GenericRead { obj, chain, evs } = r;
    let mut out = String::new();
    header(
        &mut out,
        &format!("{} ({})", kind.resource.kind, kind.resource.api_version),
        &obj.metadata,
    );
    if !chain.is_empty() {
        w!(out, "Controlled by: {chain}");
    }
    let mut v = serde_json::to_value(&obj).map_err(|e| ClusterError::Other(e.to_string()))?;
    objects::redact_object(kind, &mut v);
    if let Some(t) = v.get("type").and_then(Value::as_str) {
        w!(out, "Type: {t}");
    }
    for field in ["data", "binaryData", "stringData"] {
        if let Some(m) = v.get(field).and_then(Value::as_object) {
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            w!(out, "{field} keys ({}): {}", keys.len(), keys.join(", "));
        }
    }
    if let Some(spec) = v.get("spec") {
        yaml_section(
            &mut out,
            "Spec",
            spec,
            2000,
            "use get_resource for the full spec",
        );
    }
    if let Some(st) = v.get("status") {
        let conditions: Vec<(String, String, String, String)> = st
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let f = |k: &str| {
                    c.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                (f("type"), f("status"), f("reason"), f("message"))
            })
            .collect();
        if !conditions.is_empty() {
            w!(out, "Conditions:");
            for (t, st, reason, message) in &conditions {
                let msg = if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                };
                w!(out, "  {t}={st} {reason}{msg}");
            }
        }
        let mut rest = st.clone();
        if let Some(m) = rest.as_object_mut() {
            m.remove("conditions");
            if !m.is_empty() {
                yaml_section(
                    &mut out,
                    "Status",
                    &rest,
                    1500,
                    "use get_resource for the full status",
                );
            }
        }
    }
    object_events(&mut out, &evs, &kind.resource.kind, name);
    Ok(out)
}

/// `title:` and `value` as indented YAML, cut to `budget` characters with `hint`.
fn yaml_section(out: &mut String, title: &str, value: &Value, budget: usize, hint: &str) {
    let yaml = serde_yaml::to_string(value).unwrap_or_default();
    w!(out, "{title}:");
    w!(
        out,
        "{}",
        indent(&budget::fit_text(&yaml, budget, hint), "  ")
    );
}
