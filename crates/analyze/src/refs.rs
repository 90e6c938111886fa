//! What a pod spec refers to by name: the Secrets and ConfigMaps it needs.

use k8s_openapi::api::core::v1::PodSpec;

/// A reference from a pod to a Secret or ConfigMap (key `None` = the whole object).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRef {
    pub kind: &'static str,
    pub name: String,
    pub key: Option<String>,
    pub optional: bool,
}

impl ConfigRef {
    /// A reference as the API spells it: `optional` unset means required.
    fn new(kind: &'static str, name: &str, key: Option<&str>, optional: Option<bool>) -> Self {
        ConfigRef {
            kind,
            name: name.to_string(),
            key: key.map(str::to_string),
            optional: optional == Some(true),
        }
    }
}

/// Every Secret and ConfigMap `spec` needs: env (`valueFrom`, `envFrom`), volumes (with
/// their `items` keys) and projected sources, init containers included. Analyzers and
/// `describe` both check these, so they walk the spec in one place.
pub fn config_refs(spec: &PodSpec) -> Vec<ConfigRef> {
    let mut out = Vec::new();
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        for e in c.env.iter().flatten() {
            let Some(vf) = e.value_from.as_ref() else {
                continue;
            };
            if let Some(s) = &vf.secret_key_ref {
                out.push(ConfigRef::new("Secret", &s.name, Some(&s.key), s.optional));
            }
            if let Some(s) = &vf.config_map_key_ref {
                out.push(ConfigRef::new(
                    "ConfigMap",
                    &s.name,
                    Some(&s.key),
                    s.optional,
                ));
            }
        }
        for ef in c.env_from.iter().flatten() {
            if let Some(s) = &ef.secret_ref {
                out.push(ConfigRef::new("Secret", &s.name, None, s.optional));
            }
            if let Some(s) = &ef.config_map_ref {
                out.push(ConfigRef::new("ConfigMap", &s.name, None, s.optional));
            }
        }
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(s) = &v.secret {
            let name = s.secret_name.as_deref().unwrap_or_default();
            out.push(ConfigRef::new("Secret", name, None, s.optional));
            for it in s.items.iter().flatten() {
                out.push(ConfigRef::new("Secret", name, Some(&it.key), s.optional));
            }
        }
        if let Some(s) = &v.config_map {
            out.push(ConfigRef::new("ConfigMap", &s.name, None, s.optional));
            for it in s.items.iter().flatten() {
                out.push(ConfigRef::new(
                    "ConfigMap",
                    &s.name,
                    Some(&it.key),
                    s.optional,
                ));
            }
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(s) = &src.secret {
                out.push(ConfigRef::new("Secret", &s.name, None, s.optional));
            }
            if let Some(s) = &src.config_map {
                out.push(ConfigRef::new("ConfigMap", &s.name, None, s.optional));
            }
        }
    }
    out.retain(|r| !r.name.is_empty());
    out
}
