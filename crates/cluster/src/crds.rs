//! The CRD schemas of a bundle's custom kinds, for kai-manifest's CRD pass
//! ([`kai_manifest::crd`]): discovery gives each kind's plural, the CRD
//! `<plural>.<group>` (apiextensions.k8s.io/v1) gives the served version's
//! `openAPIV3Schema`.
//!
//! Nothing here is an error: a kind whose CRD kai may not read (RBAC), that the cluster
//! does not serve, or whose version has no schema becomes a note in
//! [`CrdSchemas::unchecked`] ("CRD schema not checked: ..."), and the object is checked
//! by its metadata only, as offline.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;

use kai_manifest::crd::{CrdSchemas, Gvk};

use crate::{Cluster, ClusterError};

/// The most kinds looked up for one bundle (each is one GET); the rest get a note.
pub const MAX_KINDS: usize = 32;

const CRD_RESOURCE: &str = "customresourcedefinitions.apiextensions.k8s.io";

impl Cluster {
    /// The `openAPIV3Schema` of each wanted (group, version, kind), or why not.
    pub async fn crd_schemas(&self, wanted: &BTreeSet<Gvk>) -> CrdSchemas {
        let mut out = CrdSchemas::default();
        if wanted.is_empty() {
            return out;
        }
        let discovery = match self.discovery().await {
            Ok(d) => d,
            Err(e) => {
                for gvk in wanted {
                    out.unchecked
                        .insert(gvk.clone(), format!("API discovery failed ({e})"));
                }
                return out;
            }
        };
        // One GET per CRD, shared by the versions a bundle uses.
        let mut fetched: BTreeMap<String, Result<Option<CustomResourceDefinition>, String>> =
            BTreeMap::new();
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for (n, gvk) in wanted.iter().enumerate() {
            let (group, version, kind) = gvk;
            let api_version = format!("{group}/{version}");
            if n >= MAX_KINDS {
                out.unchecked.insert(
                    gvk.clone(),
                    format!("kai looks up at most {MAX_KINDS} custom kinds per check"),
                );
                continue;
            }
            let plural = discovery
                .groups()
                .find(|g| g.name() == group)
                .and_then(|g| {
                    g.versioned_resources(version)
                        .into_iter()
                        .find(|(ar, _)| ar.kind == *kind)
                })
                .map(|(ar, _)| ar.plural);
            let Some(plural) = plural else {
                out.unchecked.insert(
                    gvk.clone(),
                    format!("the cluster serves no {kind} in {api_version} (is its CRD installed, and is the version served?)"),
                );
                continue;
            };
            let name = format!("{plural}.{group}");
            // The name came from discovery, but it goes into a request path: check it.
            if crate::names::check_name(crate::names::NameRule::Subdomain, &name).is_err() {
                out.unchecked
                    .insert(gvk.clone(), format!("{name:?} is not a valid CRD name"));
                continue;
            }
            let got = match fetched.get(&name) {
                Some(r) => r.clone(),
                None => {
                    let r = api.get_opt(&name).await.map_err(|e| {
                        match ClusterError::from_kube(e, "get", CRD_RESOURCE) {
                            ClusterError::Forbidden { .. } => format!(
                                "kai may not read CustomResourceDefinition {name} (RBAC: ask for `get` on `{CRD_RESOURCE}`)"
                            ),
                            other => format!("reading CustomResourceDefinition {name} failed: {other}"),
                        }
                    });
                    fetched.insert(name.clone(), r.clone());
                    r
                }
            };
            let crd = match got {
                Ok(Some(crd)) => crd,
                Ok(None) => {
                    out.unchecked.insert(
                        gvk.clone(),
                        format!("{kind} ({api_version}) is served by the cluster but not through a CustomResourceDefinition (an aggregated API?)"),
                    );
                    continue;
                }
                Err(why) => {
                    out.unchecked.insert(gvk.clone(), why);
                    continue;
                }
            };
            let Some(v) = crd.spec.versions.iter().find(|v| v.name == *version) else {
                out.unchecked.insert(
                    gvk.clone(),
                    format!("CustomResourceDefinition {name} has no version {version}"),
                );
                continue;
            };
            if !v.served {
                out.unchecked.insert(
                    gvk.clone(),
                    format!("CustomResourceDefinition {name} does not serve version {version}"),
                );
                continue;
            }
            let schema = v
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .and_then(|s| serde_json::to_value(s).ok());
            match schema {
                Some(s) => {
                    out.schemas.insert(gvk.clone(), s);
                }
                None => {
                    out.unchecked.insert(
                        gvk.clone(),
                        format!("CustomResourceDefinition {name} has no schema for {version}"),
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
    use serde_json::json;

    /// The schema goes through k8s-openapi's type on its way from the cluster: the
    /// Kubernetes extensions must come out under their wire names, or the validator
    /// would not see them.
    #[test]
    fn the_typed_schema_keeps_the_wire_names_the_validator_reads() {
        let wire = json!({
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "format": "int32", "minimum": 1.0, "exclusiveMinimum": true},
                "port": {"x-kubernetes-int-or-string": true},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                "note": {"type": "string", "nullable": true, "pattern": "^[a-z]*$", "maxLength": 5}
            }
        });
        let typed: JSONSchemaProps = serde_json::from_value(wire.clone()).unwrap();
        let back = serde_json::to_value(&typed).unwrap();
        assert_eq!(back, wire);
        let bad = json!({"sise": 1, "port": true, "extra": {"x": 1}, "labels": {"a": 1},
            "tags": ["c"], "note": "TOO LONG"});
        let issues: Vec<String> = kai_manifest::crd::validate(&back, &bad)
            .iter()
            .map(|i| i.path.to_string())
            .collect();
        assert_eq!(
            issues,
            ["labels.a", "note", "note", "port", "sise", "tags[0]", "size"],
            "{issues:?}"
        );
    }
}
