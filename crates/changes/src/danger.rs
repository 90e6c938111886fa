//! Which changes are dangerous: a table, one row per rule, one test per row.
//!
//! A dangerous change is never approved by "all for this session" and, at the terminal,
//! needs the object's name typed rather than a "y". The rules judge the *outcome*: the
//! live object and the server's dry-run result of exactly what will be sent, so a JSON
//! patch that ends in `replicas: 0`, a merge patch or a whole manifest are all judged by
//! what they would do, whatever tool or patch produced them. Deletions are judged by
//! what is deleted. Never by what the model says about a change.

use std::collections::BTreeSet;

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
    /// The live object before the change (`None`: it does not exist yet).
    pub before: Option<&'a Value>,
    /// The server's dry-run result (`None`: deleted, or not known).
    pub after: Option<&'a Value>,
}

type Rule = fn(&DangerInput<'_>) -> Option<String>;

/// The table. Order matters only for which reason is shown when several match: the
/// most specific first.
pub const RULES: &[(&str, Rule)] = &[
    ("delete a namespace", delete_namespace),
    ("delete stored data", delete_data),
    ("delete a cluster-scoped object", delete_cluster_scoped),
    ("scale to zero", scale_to_zero),
    ("change a selector", selector_change),
    ("grant node-level power", node_power),
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

/// Deletions that lose data for good: claims and volumes, StatefulSets with volume
/// claim templates, custom resource definitions (every object of that kind goes too).
fn delete_data(i: &DangerInput<'_>) -> Option<String> {
    if i.verb != Verb::Delete {
        return None;
    }
    match (i.group, i.kind) {
        ("", "PersistentVolumeClaim") => Some(
            "deletes a PersistentVolumeClaim: its volume and data may be deleted with it (reclaim policy Delete)".into(),
        ),
        ("", "PersistentVolume") => {
            Some("deletes a PersistentVolume and possibly the data on it".into())
        }
        ("apps", "StatefulSet")
            if i.before
                .and_then(|b| b.pointer("/spec/volumeClaimTemplates"))
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()) =>
        {
            Some("deletes a StatefulSet with volume claims: its pods stop, and its data is one claim deletion from gone".into())
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Some(
            "deletes a CustomResourceDefinition and with it every object of that kind in the cluster".into(),
        ),
        _ => None,
    }
}

fn delete_cluster_scoped(i: &DangerInput<'_>) -> Option<String> {
    (i.verb == Verb::Delete && !i.namespaced).then(|| {
        format!(
            "deletes a cluster-scoped {}, which can affect every namespace",
            i.kind
        )
    })
}

fn replicas(v: Option<&Value>) -> Option<i64> {
    let r = v?.pointer("/spec/replicas")?;
    r.as_i64()
        .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
}

/// The outcome has zero replicas where the live object had some. Without an outcome
/// (a unit input), the request body decides.
fn scale_to_zero(i: &DangerInput<'_>) -> Option<String> {
    if i.verb == Verb::Delete {
        return None;
    }
    let msg = || "scales to zero replicas: the workload stops serving".to_string();
    if i.after.is_some() || i.before.is_some() {
        let stops =
            replicas(i.after) == Some(0) && i.before.is_some() && replicas(i.before) != Some(0);
        return stops.then(msg);
    }
    let body = i.body?;
    let zero = |v: &Value| v.as_i64() == Some(0) || v.as_str() == Some("0");
    let hit = match body {
        Value::Object(_) => body.pointer("/spec/replicas").is_some_and(zero),
        Value::Array(ops) => ops.iter().any(|op| {
            op.get("path").and_then(Value::as_str) == Some("/spec/replicas")
                && op.get("value").is_some_and(zero)
        }),
        _ => false,
    };
    hit.then(msg)
}

/// A selector that changes on a live object: pods are orphaned (workloads) or traffic
/// goes elsewhere (Services).
fn selector_change(i: &DangerInput<'_>) -> Option<String> {
    let (b, a) = (i.before?, i.after?);
    let sel = |v: &Value| v.pointer("/spec/selector").cloned();
    let (sb, sa) = (sel(b), sel(a));
    (sb.is_some() && sb != sa).then(|| {
        format!(
            "changes the {}'s selector: it stops matching the pods it manages or serves",
            i.kind
        )
    })
}

/// Every pod spec inside an object (a Pod, a workload's template, a CronJob's job
/// template, a custom resource embedding one): any object with a `containers` list.
fn pod_specs(v: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(m) => {
                if m.get("containers").is_some_and(Value::is_array) {
                    out.push(v);
                }
                for c in m.values() {
                    walk(c, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// The node-level powers an object's pods hold.
pub fn node_powers(v: &Value) -> BTreeSet<String> {
    let mut p = BTreeSet::new();
    for spec in pod_specs(v) {
        for f in ["hostNetwork", "hostPID", "hostIPC"] {
            if spec.get(f).and_then(Value::as_bool) == Some(true) {
                p.insert(f.to_string());
            }
        }
        for vol in spec
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(path) = vol.pointer("/hostPath/path").and_then(Value::as_str) {
                p.insert(format!("the node's {path} mounted (hostPath)"));
            }
        }
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            for c in spec
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
                let sc = c.get("securityContext");
                if sc
                    .and_then(|s| s.get("privileged"))
                    .and_then(Value::as_bool)
                    == Some(true)
                {
                    p.insert(format!("privileged container {name}"));
                }
                for cap in sc
                    .and_then(|s| s.pointer("/capabilities/add"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    p.insert(format!("capability {cap} added to {name}"));
                }
            }
        }
    }
    p
}

/// The outcome grants its pods node-level power the live object did not have.
fn node_power(i: &DangerInput<'_>) -> Option<String> {
    if i.verb == Verb::Delete {
        return None;
    }
    let after = i.after.or(i.body)?;
    let had = i.before.map(node_powers).unwrap_or_default();
    let new: Vec<String> = node_powers(after).difference(&had).cloned().collect();
    (!new.is_empty()).then(|| {
        format!(
            "grants node-level power (root on the node is one step away): {}",
            new.join(", ")
        )
    })
}

fn rbac_group(i: &DangerInput<'_>) -> Option<String> {
    (i.group == "rbac.authorization.k8s.io")
        .then(|| format!("changes RBAC permissions ({})", i.kind))
}

fn service_account(i: &DangerInput<'_>) -> Option<String> {
    (i.group.is_empty() && i.kind == "ServiceAccount")
        .then(|| "changes a ServiceAccount, whose tokens and bindings grant API access".to_string())
}

fn service_accounts(v: &Value) -> Vec<Option<Value>> {
    pod_specs(v)
        .into_iter()
        .map(|s| {
            s.get("serviceAccountName")
                .or_else(|| s.get("serviceAccount"))
                .cloned()
        })
        .collect()
}

/// Switching a workload to another service account changes what its pods may do.
fn pod_service_account(i: &DangerInput<'_>) -> Option<String> {
    if i.verb == Verb::Delete {
        return None;
    }
    let msg =
        || "changes which ServiceAccount (and so which RBAC permissions) pods run with".to_string();
    if let (Some(b), Some(a)) = (i.before, i.after) {
        return (service_accounts(b) != service_accounts(a)).then(msg);
    }
    let body = i.after.or(i.body)?;
    mentions_key(body, &["serviceAccountName", "serviceAccount"]).then(msg)
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
            before: None,
            after: None,
        }
    }

    /// A body for the verbs that send one, when what it holds does not matter.
    fn any_body() -> Option<&'static Value> {
        static EMPTY: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));
        Some(&EMPTY)
    }

    fn outcome<'a>(
        group: &'a str,
        kind: &'a str,
        before: Option<&'a Value>,
        after: Option<&'a Value>,
    ) -> DangerInput<'a> {
        DangerInput {
            group,
            kind,
            namespaced: true,
            verb: Verb::Patch,
            body: Some(&Value::Null),
            before,
            after,
        }
    }

    fn deploy(replicas: i64, pod: Value) -> Value {
        json!({"kind": "Deployment", "spec": {"replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": pod}}})
    }

    fn plain_pod() -> Value {
        json!({"containers": [{"name": "app", "image": "nginx"}]})
    }

    #[test]
    fn row_delete_namespace() {
        let r = delete_namespace(&input("", "Namespace", false, Verb::Delete, None)).unwrap();
        assert!(r.contains("namespace"));
        assert!(
            delete_namespace(&input("", "Namespace", false, Verb::Apply, any_body())).is_none()
        );
        assert!(delete_namespace(&input("", "ConfigMap", true, Verb::Delete, None)).is_none());
    }

    #[test]
    fn row_delete_data() {
        for (g, k, ns) in [
            ("", "PersistentVolumeClaim", true),
            ("", "PersistentVolume", false),
            ("apiextensions.k8s.io", "CustomResourceDefinition", false),
        ] {
            assert!(
                delete_data(&input(g, k, ns, Verb::Delete, None)).is_some(),
                "{k}"
            );
            assert!(delete_data(&input(g, k, ns, Verb::Patch, any_body())).is_none());
        }
        let sts = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}});
        let mut i = input("apps", "StatefulSet", true, Verb::Delete, None);
        i.before = Some(&sts);
        assert!(delete_data(&i).unwrap().contains("volume claims"));
        let stateless = json!({"spec": {}});
        i.before = Some(&stateless);
        assert!(delete_data(&i).is_none());
        assert!(delete_data(&input("", "ConfigMap", true, Verb::Delete, None)).is_none());
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
            delete_cluster_scoped(&input("", "Node", false, Verb::Patch, any_body())).is_none()
        );
    }

    #[test]
    fn row_scale_to_zero() {
        // Judged by the outcome, whatever the request looked like.
        let live = deploy(3, plain_pod());
        let zero = deploy(0, plain_pod());
        let two = deploy(2, plain_pod());
        assert!(scale_to_zero(&outcome("apps", "Deployment", Some(&live), Some(&zero))).is_some());
        assert!(scale_to_zero(&outcome("apps", "Deployment", Some(&live), Some(&two))).is_none());
        // Already at zero, or created at zero: nothing stops serving.
        assert!(scale_to_zero(&outcome("apps", "Deployment", Some(&zero), Some(&zero))).is_none());
        assert!(scale_to_zero(&outcome("apps", "Deployment", None, Some(&zero))).is_none());
        // Without an outcome, the request decides.
        let jp = json!([{"op": "add", "path": "/spec/replicas", "value": "0"}]);
        assert!(
            scale_to_zero(&input("apps", "Deployment", true, Verb::Patch, Some(&jp))).is_some()
        );
        let body = json!({"spec": {"replicas": 0}});
        assert!(
            scale_to_zero(&input("apps", "Deployment", true, Verb::Apply, Some(&body))).is_some()
        );
    }

    #[test]
    fn row_selector_change() {
        let live = deploy(1, plain_pod());
        let mut moved = live.clone();
        moved["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        assert!(
            selector_change(&outcome("apps", "Deployment", Some(&live), Some(&moved))).is_some()
        );
        assert!(
            selector_change(&outcome("apps", "Deployment", Some(&live), Some(&live))).is_none()
        );
        let svc = json!({"spec": {"selector": {"app": "web"}}});
        let svc2 = json!({"spec": {"selector": {"app": "db"}}});
        assert!(
            selector_change(&outcome("", "Service", Some(&svc), Some(&svc2)))
                .unwrap()
                .contains("Service")
        );
        assert!(selector_change(&outcome("", "Service", None, Some(&svc2))).is_none());
    }

    #[test]
    fn row_node_power() {
        let live = deploy(1, plain_pod());
        let cases = [
            json!({"hostNetwork": true, "containers": [{"name": "app"}]}),
            json!({"hostPID": true, "containers": [{"name": "app"}]}),
            json!({"hostIPC": true, "containers": [{"name": "app"}]}),
            json!({"containers": [{"name": "app"}], "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
            json!({"containers": [{"name": "app", "securityContext": {"privileged": true}}]}),
            json!({"containers": [{"name": "app", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}),
            json!({"containers": [{"name": "app"}], "initContainers": [{"name": "init", "securityContext": {"privileged": true}}]}),
        ];
        for pod in cases {
            let after = deploy(1, pod.clone());
            assert!(
                node_power(&outcome("apps", "Deployment", Some(&live), Some(&after))).is_some(),
                "{pod}"
            );
            // Already there before: not newly granted.
            assert!(
                node_power(&outcome("apps", "Deployment", Some(&after), Some(&after))).is_none(),
                "{pod}"
            );
        }
        // A bare Pod created from a manifest (no live object).
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "x"}],
            "volumes": [{"name": "r", "hostPath": {"path": "/"}}]}});
        let mut i = input("", "Pod", true, Verb::Apply, Some(&pod));
        assert!(node_power(&i).unwrap().contains("the node's / mounted"));
        i.after = Some(&pod);
        assert!(node_power(&i).is_some());
        assert!(node_power(&outcome(
            "apps",
            "Deployment",
            Some(&live),
            Some(&deploy(2, plain_pod()))
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
                any_body()
            ))
            .is_some());
        }
        assert!(rbac_group(&input("apps", "Deployment", true, Verb::Apply, any_body())).is_none());
    }

    #[test]
    fn row_service_account() {
        assert!(
            service_account(&input("", "ServiceAccount", true, Verb::Patch, any_body())).is_some()
        );
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
        // By outcome: a changed account is dangerous, the same account is not.
        let live = deploy(
            1,
            json!({"serviceAccountName": "web", "containers": [{"name": "a"}]}),
        );
        let admin = deploy(
            1,
            json!({"serviceAccountName": "admin", "containers": [{"name": "a"}]}),
        );
        let scaled = deploy(
            2,
            json!({"serviceAccountName": "web", "containers": [{"name": "a"}]}),
        );
        assert!(
            pod_service_account(&outcome("apps", "Deployment", Some(&live), Some(&admin)))
                .is_some()
        );
        assert!(
            pod_service_account(&outcome("apps", "Deployment", Some(&live), Some(&scaled)))
                .is_none()
        );
    }

    #[test]
    fn every_row_has_a_test_and_ordinary_changes_are_safe() {
        assert_eq!(RULES.len(), 9, "add a row test above for each new rule");
        let live = deploy(1, plain_pod());
        let three = deploy(3, plain_pod());
        assert!(danger(&outcome("apps", "Deployment", Some(&live), Some(&three))).is_none());
        let image = deploy(
            1,
            json!({"containers": [{"name": "app", "image": "nginx:2"}]}),
        );
        assert!(danger(&outcome("apps", "Deployment", Some(&live), Some(&image))).is_none());
        assert!(danger(&input("", "ConfigMap", true, Verb::Delete, None)).is_none());
        // A namespace delete reports the most specific reason.
        assert!(danger(&input("", "Namespace", false, Verb::Delete, None))
            .unwrap()
            .contains("namespace"));
        assert!(
            danger(&input("", "PersistentVolume", false, Verb::Delete, None))
                .unwrap()
                .contains("data")
        );
    }
}
