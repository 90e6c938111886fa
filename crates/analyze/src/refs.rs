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
                out.push(ConfigRef {
                    kind: "Secret",
                    name: s.name.clone(),
                    key: Some(s.key.clone()),
                    optional: s.optional == Some(true),
                });
            }
            if let Some(s) = &vf.config_map_key_ref {
                out.push(ConfigRef {
                    kind: "ConfigMap",
                    name: s.name.clone(),
                    key: Some(s.key.clone()),
                    optional: s.optional == Some(true),
                });
            }
        }
        for ef in c.env_from.iter().flatten() {
            if let Some(s) = &ef.secret_ref {
                out.push(ConfigRef {
                    kind: "Secret",
                    name: s.name.clone(),
                    key: None,
                    optional: s.optional == Some(true),
                });
            }
            if let Some(s) = &ef.config_map_ref {
                out.push(ConfigRef {
                    kind: "ConfigMap",
                    name: s.name.clone(),
                    key: None,
                    optional: s.optional == Some(true),
                });
            }
        }
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let optional = s.optional == Some(true);
            out.push(ConfigRef {
                kind: "Secret",
                name: name.clone(),
                key: None,
                optional,
            });
            for it in s.items.iter().flatten() {
                out.push(ConfigRef {
                    kind: "Secret",
                    name: name.clone(),
                    key: Some(it.key.clone()),
                    optional,
                });
            }
        }
        if let Some(s) = &v.config_map {
            let optional = s.optional == Some(true);
            out.push(ConfigRef {
                kind: "ConfigMap",
                name: s.name.clone(),
                key: None,
                optional,
            });
            for it in s.items.iter().flatten() {
                out.push(ConfigRef {
                    kind: "ConfigMap",
                    name: s.name.clone(),
                    key: Some(it.key.clone()),
                    optional,
                });
            }
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(s) = &src.secret {
                out.push(ConfigRef {
                    kind: "Secret",
                    name: s.name.clone(),
                    key: None,
                    optional: s.optional == Some(true),
                });
            }
            if let Some(s) = &src.config_map {
                out.push(ConfigRef {
                    kind: "ConfigMap",
                    name: s.name.clone(),
                    key: None,
                    optional: s.optional == Some(true),
                });
            }
        }
    }
    out.retain(|r| !r.name.is_empty());
    out
}
