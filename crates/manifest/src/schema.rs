//! The schema pass: each object of a built-in kind is deserialized into its k8s-openapi
//! type through a strict deserializer that sees what serde's default would silently drop.
//!
//! The generated types ignore unknown keys, but each asks its deserializer for a struct
//! *with its field names*; [`Strict`] takes that list, reports every key not in it by
//! path with the closest valid names ("did you mean `replicas`?"), and hands the type only
//! the keys it knows. Type errors and missing required fields come from the types
//! themselves; the path is recorded by the innermost value that failed.

use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

use crate::path::Path;

/// One schema problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaIssue {
    pub kind: IssueKind,
    pub path: Path,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    /// A key the type does not have (misspelt, misplaced, or from another version).
    UnknownField,
    /// A wrong type, a missing required field, a bad value.
    Invalid,
    /// A kind kai has no schema for (a CRD, or a kind from another API version).
    UnknownKind,
}

#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

#[derive(Default)]
struct Sink {
    unknown: Vec<(Path, String, Vec<String>)>,
    /// Where the first failure happened (the innermost value sets it first).
    error_at: Option<Path>,
}

struct Strict<'a> {
    value: &'a Value,
    path: Path,
    sink: &'a RefCell<Sink>,
}

impl<'a> Strict<'a> {
    /// `value` (found at `path` below this one) deserialized with `seed`; a failure
    /// notes its path first.
    fn deserialize_child<'de, S: DeserializeSeed<'de>>(
        &self,
        value: &'a Value,
        path: Path,
        seed: S,
    ) -> Result<S::Value, Error> {
        let child = Strict {
            value,
            path,
            sink: self.sink,
        };
        seed.deserialize(&child).inspect_err(|_| child.note_error())
    }

    fn note_error(&self) {
        let mut s = self.sink.borrow_mut();
        if s.error_at.is_none() {
            s.error_at = Some(self.path.clone());
        }
    }
}

struct Seq<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
    parent: &'a Strict<'a>,
}

impl<'de, 'a> SeqAccess<'de> for Seq<'a> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.items
            .next()
            .map(|(i, v)| {
                self.parent
                    .deserialize_child(v, self.parent.path.index(i), seed)
            })
            .transpose()
    }
}

struct Map<'a> {
    entries: std::vec::IntoIter<(&'a String, &'a Value)>,
    pending: Option<(&'a String, &'a Value)>,
    parent: &'a Strict<'a>,
}

impl<'de, 'a> MapAccess<'de> for Map<'a> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((k, v)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((k, v));
        seed.deserialize(k.as_str().into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((k, v)) = self.pending.take() else {
            return Err(Error("a value was asked for before its key".into()));
        };
        self.parent
            .deserialize_child(v, self.parent.path.key(k), seed)
    }
}

impl<'de, 'a> Deserializer<'de> for &'a Strict<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_str(s),
            Value::Array(a) => visitor.visit_seq(Seq {
                items: a.iter().enumerate(),
                parent: self,
            }),
            Value::Object(m) => visitor.visit_map(Map {
                entries: m.iter().collect::<Vec<_>>().into_iter(),
                pending: None,
                parent: self,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Object(m) = self.value else {
            return self.deserialize_any(visitor);
        };
        let mut known = Vec::with_capacity(m.len());
        for (k, v) in m {
            if fields.contains(&k.as_str()) {
                known.push((k, v));
            } else {
                let near = nearest(k, fields);
                self.sink
                    .borrow_mut()
                    .unknown
                    .push((self.path.key(k), k.clone(), near));
            }
        }
        visitor.visit_map(Map {
            entries: known.into_iter(),
            pending: None,
            parent: self,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map enum identifier
    }
}

/// The field names closest to a misspelt `key` (edit distance, case-insensitive): the
/// best ones only, and only when close enough to be a likely typo.
pub(crate) fn nearest(key: &str, fields: &[&str]) -> Vec<String> {
    let k = key.to_ascii_lowercase();
    let max = (k.chars().count() / 3).clamp(1, 3);
    let scored: Vec<(usize, &str)> = fields
        .iter()
        .map(|f| {
            (
                kai_text::suggest::edit_distance(&k, &f.to_ascii_lowercase()),
                *f,
            )
        })
        .filter(|(d, _)| *d <= max)
        .collect();
    let Some(best) = scored.iter().map(|(d, _)| *d).min() else {
        return Vec::new();
    };
    scored
        .into_iter()
        .filter(|(d, _)| *d == best)
        .take(3)
        .map(|(_, f)| f.to_string())
        .collect()
}

/// Required fields the generated types do not enforce (they default a missing required
/// field): `(kinds, path pattern with [*] for every list item, required keys)`. The API
/// server's own "Required value" errors for the objects kai writes most.
const REQUIRED: &[(&[&str], &str, &[&str])] = &[
    (POD, "{pod}", &["containers"]),
    (POD, "{pod}.containers[*]", &["name", "image"]),
    (POD, "{pod}.initContainers[*]", &["name", "image"]),
    (POD, "{pod}.containers[*].ports[*]", &["containerPort"]),
    (POD, "{pod}.containers[*].env[*]", &["name"]),
    (
        POD,
        "{pod}.containers[*].volumeMounts[*]",
        &["name", "mountPath"],
    ),
    (POD, "{pod}.volumes[*]", &["name"]),
    (
        &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"],
        "spec",
        &["selector", "template"],
    ),
    (&["Job"], "spec", &["template"]),
    (&["CronJob"], "spec", &["schedule", "jobTemplate"]),
    (&["Service"], "spec.ports[*]", &["port"]),
    (&["Ingress"], "spec.rules[*].http", &["paths"]),
    (
        &["Ingress"],
        "spec.rules[*].http.paths[*]",
        &["backend", "pathType"],
    ),
    (
        &["HorizontalPodAutoscaler"],
        "spec",
        &["scaleTargetRef", "maxReplicas"],
    ),
    (
        &["HorizontalPodAutoscaler"],
        "spec.scaleTargetRef",
        &["kind", "name"],
    ),
    (&["PersistentVolumeClaim"], "spec", &["accessModes"]),
    (&["RoleBinding", "ClusterRoleBinding"], "", &["roleRef"]),
];

const POD: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
];

fn pod_prefix(kind: &str) -> &'static str {
    match kind {
        "Pod" => "spec",
        "CronJob" => "spec.jobTemplate.spec.template.spec",
        _ => "spec.template.spec",
    }
}

/// Every (path, value) a pattern like `spec.ports[*]` reaches in `v`.
fn reach<'a>(v: &'a Value, pattern: &str) -> Vec<(Path, &'a Value)> {
    let mut at = vec![(Path::root(), v)];
    for part in pattern.split('.').filter(|p| !p.is_empty()) {
        let (key, all) = match part.strip_suffix("[*]") {
            Some(k) => (k, true),
            None => (part, false),
        };
        let mut next = Vec::new();
        for (p, v) in at {
            let Some(child) = v.get(key) else { continue };
            if all {
                for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                    next.push((p.key(key).index(i), item));
                }
            } else {
                next.push((p.key(key), child));
            }
        }
        at = next;
    }
    at
}

fn required(kind: &str, value: &Value) -> Vec<SchemaIssue> {
    let mut out = Vec::new();
    for (kinds, pattern, keys) in REQUIRED {
        if !kinds.contains(&kind) {
            continue;
        }
        let pattern = pattern.replace("{pod}", pod_prefix(kind));
        for (path, v) in reach(value, &pattern) {
            if !v.is_object() {
                continue;
            }
            for key in *keys {
                let missing = match v.get(*key) {
                    None | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.is_empty(),
                    Some(Value::Array(a)) => *key == "containers" && a.is_empty(),
                    _ => false,
                };
                if missing {
                    out.push(SchemaIssue {
                        kind: IssueKind::Invalid,
                        path: path.key(key),
                        message: format!("missing required field `{key}`"),
                    });
                }
            }
        }
    }
    out
}

/// "unknown field `replica`; did you mean `replicas`?": the built-in kinds' and the
/// custom resources' unknown-field message.
pub(crate) fn unknown_field_message(key: &str, near: &[String]) -> String {
    let hint = match near {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        many => format!(
            "; did you mean one of {}?",
            many.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("unknown field `{key}`{hint}")
}

/// Check `value` as a `T`: every unknown key, and the first type or required-field error.
fn check_as<T: serde::de::DeserializeOwned>(value: &Value) -> Vec<SchemaIssue> {
    let sink = RefCell::new(Sink::default());
    let root = Strict {
        value,
        path: Path::root(),
        sink: &sink,
    };
    let result = T::deserialize(&root);
    let sink = sink.into_inner();
    let mut issues: Vec<SchemaIssue> = sink
        .unknown
        .into_iter()
        .map(|(path, key, near)| SchemaIssue {
            kind: IssueKind::UnknownField,
            message: unknown_field_message(&key, &near),
            path,
        })
        .collect();
    if let Err(e) = result {
        issues.push(SchemaIssue {
            kind: IssueKind::Invalid,
            path: sink.error_at.unwrap_or_default(),
            message: e.0,
        });
    }
    issues
}

macro_rules! kinds {
    ($($api:literal, $kind:literal => $ty:ty;)*) => {
        /// (apiVersion, kind) of every kind with a built-in schema.
        pub const KNOWN_KINDS: &[(&str, &str)] = &[$(($api, $kind)),*];

        fn check_kind(api: &str, kind: &str, value: &Value) -> Option<Vec<SchemaIssue>> {
            match (api, kind) {
                $(($api, $kind) => Some({
                    let mut issues = check_as::<$ty>(value);
                    // Only where the types parsed: a wrong type already says enough.
                    if issues.iter().all(|i| i.kind == IssueKind::UnknownField) {
                        issues.extend(required(kind, value));
                    }
                    issues
                }),)*
                _ => None,
            }
        }
    };
}

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch, core::v1 as core,
    networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac, storage::v1 as storage,
};

kinds! {
    "v1", "Pod" => core::Pod;
    "v1", "Service" => core::Service;
    "v1", "ConfigMap" => core::ConfigMap;
    "v1", "Secret" => core::Secret;
    "v1", "ServiceAccount" => core::ServiceAccount;
    "v1", "Namespace" => core::Namespace;
    "v1", "PersistentVolumeClaim" => core::PersistentVolumeClaim;
    "v1", "PersistentVolume" => core::PersistentVolume;
    "v1", "LimitRange" => core::LimitRange;
    "v1", "ResourceQuota" => core::ResourceQuota;
    "v1", "Endpoints" => core::Endpoints;
    "apps/v1", "Deployment" => apps::Deployment;
    "apps/v1", "StatefulSet" => apps::StatefulSet;
    "apps/v1", "DaemonSet" => apps::DaemonSet;
    "apps/v1", "ReplicaSet" => apps::ReplicaSet;
    "batch/v1", "Job" => batch::Job;
    "batch/v1", "CronJob" => batch::CronJob;
    "networking.k8s.io/v1", "Ingress" => networking::Ingress;
    "networking.k8s.io/v1", "IngressClass" => networking::IngressClass;
    "networking.k8s.io/v1", "NetworkPolicy" => networking::NetworkPolicy;
    "autoscaling/v2", "HorizontalPodAutoscaler" => autoscaling::HorizontalPodAutoscaler;
    "policy/v1", "PodDisruptionBudget" => policy::PodDisruptionBudget;
    "rbac.authorization.k8s.io/v1", "Role" => rbac::Role;
    "rbac.authorization.k8s.io/v1", "RoleBinding" => rbac::RoleBinding;
    "rbac.authorization.k8s.io/v1", "ClusterRole" => rbac::ClusterRole;
    "rbac.authorization.k8s.io/v1", "ClusterRoleBinding" => rbac::ClusterRoleBinding;
    "storage.k8s.io/v1", "StorageClass" => storage::StorageClass;
}

/// The schema problems of one object. A kind kai has no schema for gives one
/// [`IssueKind::UnknownKind`] issue (the caller decides how much that matters).
pub fn check(value: &Value) -> Vec<SchemaIssue> {
    let api = value.get("apiVersion").and_then(Value::as_str);
    let kind = value.get("kind").and_then(Value::as_str);
    let (Some(api), Some(kind)) = (api, kind) else {
        let missing = if api.is_none() { "apiVersion" } else { "kind" };
        return vec![SchemaIssue {
            kind: IssueKind::Invalid,
            path: Path::parse(missing),
            message: format!("missing `{missing}`: every object needs apiVersion and kind"),
        }];
    };
    let mut issues = match check_kind(api, kind, value) {
        Some(issues) => issues,
        None => {
            let same_kind: Vec<&str> = KNOWN_KINDS
                .iter()
                .filter(|(_, k)| *k == kind)
                .map(|(a, _)| *a)
                .collect();
            let message = if !same_kind.is_empty() {
                format!(
                    "{kind} is not served as {api}; use apiVersion {}",
                    same_kind.join(" or ")
                )
            } else {
                let kinds: Vec<String> = KNOWN_KINDS.iter().map(|(_, k)| k.to_string()).collect();
                match kai_text::suggest::suggest(kind, &kinds).first() {
                    Some(near) if near != kind => {
                        format!("kind {kind} ({api}) has no built-in schema (did you mean {near}?); only apiVersion, kind and metadata were checked")
                    }
                    _ => format!("kind {kind} ({api}) has no built-in schema (a custom resource?); only apiVersion, kind and metadata were checked"),
                }
            };
            vec![SchemaIssue {
                kind: IssueKind::UnknownKind,
                path: Path::parse("kind"),
                message,
            }]
        }
    };
    let name = value.pointer("/metadata/name").and_then(Value::as_str);
    let generate_name = value
        .pointer("/metadata/generateName")
        .and_then(Value::as_str);
    if name.is_none_or(str::is_empty) && generate_name.is_none_or(str::is_empty) {
        issues.push(SchemaIssue {
            kind: IssueKind::Invalid,
            path: Path::parse("metadata.name"),
            message: "missing `metadata.name`".into(),
        });
    }
    issues
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "resources": {"requests": {"cpu": "100m", "memory": 64}}}]}
                }
            }
        })
    }

    #[test]
    fn a_valid_object_has_no_issues() {
        assert_eq!(check(&deployment()), vec![]);
    }

    #[test]
    fn unknown_fields_are_reported_by_path_with_suggestions() {
        let mut d = deployment();
        let spec = d["spec"].as_object_mut().unwrap();
        let r = spec.remove("replicas").unwrap();
        spec.insert("replica".into(), r);
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
        d["spec"]["template"]["spec"]["containers"][0]["frobnicate"] = json!(1);
        let issues = check(&d);
        assert_eq!(issues.len(), 3, "{issues:?}");
        assert!(issues.iter().all(|i| i.kind == IssueKind::UnknownField));
        let msgs: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        assert!(
            msgs.contains(
                &"spec.replica: unknown field `replica`; did you mean `replicas`?".to_string()
            ),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m.starts_with("spec.template.spec.containers[0].imagePullPolicyy: unknown field `imagePullPolicyy`; did you mean `imagePullPolicy`")), "{msgs:?}");
        assert!(
            msgs.contains(
                &"spec.template.spec.containers[0].frobnicate: unknown field `frobnicate`"
                    .to_string()
            ),
            "{msgs:?}"
        );
    }

    #[test]
    fn wrong_types_and_missing_fields_point_at_their_place() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!("three");
        let issues = check(&d);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].kind, IssueKind::Invalid);
        assert_eq!(issues[0].path.to_string(), "spec.replicas");
        assert!(issues[0].message.contains("invalid type"), "{issues:?}");

        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("name");
        let issues = check(&d);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(
            issues[0].path.to_string(),
            "spec.template.spec.containers[0].name"
        );
        assert!(
            issues[0].message.contains("missing required field `name`"),
            "{issues:?}"
        );
    }

    #[test]
    fn unknown_kinds_and_versions_are_said_so() {
        let v = json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "a"}});
        let i = check(&v);
        assert_eq!(i[0].kind, IssueKind::UnknownKind);
        assert!(i[0].message.contains("networking.k8s.io/v1"), "{i:?}");
        let v =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"}});
        assert!(check(&v)[0].message.contains("custom resource"));
        let v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
        assert_eq!(check(&v)[0].path.to_string(), "metadata.name");
    }
}
