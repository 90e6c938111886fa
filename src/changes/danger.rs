//! Which changes are dangerous: a table, one row per rule, one test per row.
//!
//! A dangerous change is never approved by "all for this session" and, at the terminal,
//! needs the object's name typed rather than a "y". The rules look at what is *sent*
//! (kind, verb, body), never at what the model says about it.

use serde_json::Value;

/// What is about to happen to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Server-side apply (create or update).
    Apply,
    /// Merge, strategic or JSON patch.
    Patch,
    Create,
    Delete,
}

/// The facts a rule may look at.
#[derive(Debug, Clone, Copy)]
pub struct DangerInput<'a> {
    /// API group, "" for the core group.
    pub group: &'a str,
    pub kind: &'a str,
    pub namespaced: bool,
    pub verb: Verb,
    /// The body sent (apply/create object, patch document); `None` for deletes.
    pub body: Option<&'a Value>,
}

type Rule = fn(&DangerInput<'_>) -> Option<String>;

/// The table. Order matters only for which reason is shown when several match.
pub const RULES: &[(&str, Rule)] = &[
    ("delete a namespace", delete_namespace),
    ("delete a cluster-scoped object", delete_cluster_scoped),
    ("scale to zero", scale_to_zero),
    ("RBAC objects", rbac_group),
    ("ServiceAccount objects", service_account),
    ("a pod's service account", pod_service_account),
];

/// Why this change is dangerous, if it is.
pub fn danger(input: &DangerInput<'_>) -> Option<String> {
    RULES.iter().find_map(|(_, rule)| rule(input))
}

fn delete_namespace(i: &DangerInput<'_>) -> Option<String> {
    (i.verb == Verb::Delete && i.group.is_empty() && i.kind == "Namespace")
        .then(|| "deletes a namespace and every object in it".to_string())
}

fn delete_cluster_scoped(i: &DangerInput<'_>) -> Option<String> {
    (i.verb == Verb::Delete && !i.namespaced).then(|| {
        format!(
            "deletes a cluster-scoped {}, which can affect every namespace",
            i.kind
        )
    })
}

fn scale_to_zero(i: &DangerInput<'_>) -> Option<String> {
    if i.verb == Verb::Delete {
        return None;
    }
    let body = i.body?;
    let zero = |v: &Value| v.as_i64() == Some(0) || v.as_str() == Some("0");
    let hit = match body {
        // Merge/strategic patch, apply or create body.
        Value::Object(_) => body.pointer("/spec/replicas").is_some_and(zero),
        // JSON patch: any op writing /spec/replicas = 0.
        Value::Array(ops) => ops.iter().any(|op| {
            op.get("path").and_then(Value::as_str) == Some("/spec/replicas")
                && matches!(
                    op.get("op").and_then(Value::as_str),
                    Some("replace" | "add")
                )
                && op.get("value").is_some_and(zero)
        }),
        _ => false,
    };
    hit.then(|| "scales to zero replicas: the workload stops serving".to_string())
}

fn rbac_group(i: &DangerInput<'_>) -> Option<String> {
    (i.group == "rbac.authorization.k8s.io")
        .then(|| format!("changes RBAC permissions ({})", i.kind))
}

fn service_account(i: &DangerInput<'_>) -> Option<String> {
    (i.group.is_empty() && i.kind == "ServiceAccount")
        .then(|| "changes a ServiceAccount, whose tokens and bindings grant API access".to_string())
}

/// Switching a workload to another service account changes what its pods may do.
fn pod_service_account(i: &DangerInput<'_>) -> Option<String> {
    if i.verb == Verb::Delete {
        return None;
    }
    let body = i.body?;
    mentions_key(body, &["serviceAccountName", "serviceAccount"]).then(|| {
        "changes which ServiceAccount (and so which RBAC permissions) pods run with".to_string()
    })
}

fn mentions_key(v: &Value, keys: &[&str]) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| keys.contains(&k.as_str()) || mentions_key(v, keys)),
        Value::Array(a) => a.iter().any(|v| {
            // JSON patch paths name the key instead of nesting it.
            v.get("path")
                .and_then(Value::as_str)
                .is_some_and(|p| keys.iter().any(|k| p.split('/').any(|seg| seg == *k)))
                || mentions_key(v, keys)
        }),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input<'a>(
        group: &'a str,
        kind: &'a str,
        namespaced: bool,
        verb: Verb,
        body: Option<&'a Value>,
    ) -> DangerInput<'a> {
        DangerInput {
            group,
            kind,
            namespaced,
            verb,
            body,
        }
    }

    #[test]
    fn row_delete_namespace() {
        let r = delete_namespace(&input("", "Namespace", false, Verb::Delete, None)).unwrap();
        assert!(r.contains("namespace"));
        assert!(delete_namespace(&input(
            "",
            "Namespace",
            false,
            Verb::Apply,
            Some(&json!({}))
        ))
        .is_none());
        assert!(delete_namespace(&input("", "ConfigMap", true, Verb::Delete, None)).is_none());
    }

    #[test]
    fn row_delete_cluster_scoped() {
        assert!(delete_cluster_scoped(&input(
            "storage.k8s.io",
            "StorageClass",
            false,
            Verb::Delete,
            None
        ))
        .is_some());
        assert!(delete_cluster_scoped(&input("", "ConfigMap", true, Verb::Delete, None)).is_none());
        assert!(
            delete_cluster_scoped(&input("", "Node", false, Verb::Patch, Some(&json!({}))))
                .is_none()
        );
    }

    #[test]
    fn row_scale_to_zero() {
        let zero = json!({"spec": {"replicas": 0}});
        let two = json!({"spec": {"replicas": 2}});
        let jp = json!([{"op": "replace", "path": "/spec/replicas", "value": 0}]);
        assert!(
            scale_to_zero(&input("apps", "Deployment", true, Verb::Patch, Some(&zero))).is_some()
        );
        assert!(
            scale_to_zero(&input("apps", "Deployment", true, Verb::Apply, Some(&zero))).is_some()
        );
        assert!(
            scale_to_zero(&input("apps", "Deployment", true, Verb::Patch, Some(&jp))).is_some()
        );
        assert!(
            scale_to_zero(&input("apps", "Deployment", true, Verb::Patch, Some(&two))).is_none()
        );
        assert!(scale_to_zero(&input(
            "apps",
            "Deployment",
            true,
            Verb::Patch,
            Some(&json!({"metadata": {}}))
        ))
        .is_none());
    }

    #[test]
    fn row_rbac_group() {
        for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
            assert!(rbac_group(&input(
                "rbac.authorization.k8s.io",
                kind,
                true,
                Verb::Apply,
                Some(&json!({}))
            ))
            .is_some());
        }
        assert!(rbac_group(&input(
            "apps",
            "Deployment",
            true,
            Verb::Apply,
            Some(&json!({}))
        ))
        .is_none());
    }

    #[test]
    fn row_service_account() {
        assert!(service_account(&input(
            "",
            "ServiceAccount",
            true,
            Verb::Patch,
            Some(&json!({}))
        ))
        .is_some());
        assert!(service_account(&input("", "ServiceAccount", true, Verb::Delete, None)).is_some());
        assert!(service_account(&input("", "Service", true, Verb::Delete, None)).is_none());
    }

    #[test]
    fn row_pod_service_account() {
        let b = json!({"spec": {"template": {"spec": {"serviceAccountName": "admin"}}}});
        assert!(
            pod_service_account(&input("apps", "Deployment", true, Verb::Patch, Some(&b)))
                .is_some()
        );
        let jp = json!([{"op": "replace", "path": "/spec/template/spec/serviceAccountName", "value": "admin"}]);
        assert!(
            pod_service_account(&input("apps", "Deployment", true, Verb::Patch, Some(&jp)))
                .is_some()
        );
        let img =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}}});
        assert!(
            pod_service_account(&input("apps", "Deployment", true, Verb::Patch, Some(&img)))
                .is_none()
        );
    }

    #[test]
    fn every_row_has_a_test_and_ordinary_changes_are_safe() {
        assert_eq!(RULES.len(), 6, "add a row test above for each new rule");
        let b = json!({"spec": {"replicas": 3}});
        assert!(danger(&input("apps", "Deployment", true, Verb::Patch, Some(&b))).is_none());
        assert!(danger(&input("", "ConfigMap", true, Verb::Delete, None)).is_none());
        // A namespace delete reports the most specific reason.
        assert!(danger(&input("", "Namespace", false, Verb::Delete, None))
            .unwrap()
            .contains("namespace"));
    }
}
