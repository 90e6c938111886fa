//! Node health and missing read permissions.

use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod};

use crate::finding::{Cause, Finding, ObjectRef, Severity};
use crate::snapshot::{name_of, ns_of, Snapshot};

fn conditions(node: &Node) -> impl Iterator<Item = &NodeCondition> {
    node.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
}

/// `condition Ready=False: reason message`, for evidence.
fn condition_line(c: &NodeCondition) -> String {
    format!(
        "condition {}={}: {} {}",
        c.type_,
        c.status,
        c.reason.as_deref().unwrap_or_default(),
        c.message.as_deref().unwrap_or_default()
    )
}

/// The node's taints whose key passes `keep`, for evidence.
fn taint_lines(node: &Node, keep: impl Fn(&str) -> bool) -> Vec<String> {
    node.spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .filter(|t| keep(&t.key))
        .map(|t| format!("taint {}:{}", t.key, t.effect))
        .collect()
}

fn pods_on<'a>(snap: &'a Snapshot, node: &'a str) -> impl Iterator<Item = &'a Pod> {
    snap.pods
        .iter()
        .filter(move |p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
}

pub(crate) fn node_ready(node: &Node) -> bool {
    conditions(node)
        .find(|c| c.type_ == "Ready")
        // A node that never reported is not known to be broken.
        .is_none_or(|c| c.status == "True")
}

pub fn not_ready(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for n in snap.nodes.iter().filter(|n| !node_ready(n)) {
        let name = name_of(&n.metadata);
        let pods: Vec<String> = pods_on(snap, name)
            .map(|p| format!("{}/{}", ns_of(&p.metadata), name_of(&p.metadata)))
            .collect();
        let mut f = Finding::new(
            Cause::NodeNotReady,
            ObjectRef::new("Node", None, name),
            format!(
                "node {name} is NotReady; {} pod(s) on it are not being run or served",
                pods.len()
            ),
        );
        if let Some(c) = conditions(n).find(|c| c.type_ == "Ready") {
            f = f.evidence(condition_line(c));
        }
        for t in taint_lines(n, |k| k.starts_with("node.kubernetes.io/")) {
            f = f.evidence(t);
        }
        if !pods.is_empty() {
            let mut list = pods.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            if pods.len() > 5 {
                list.push_str(&format!(" (+{} more)", pods.len() - 5));
            }
            f = f.evidence(format!("pods on this node: {list}"));
        }
        out.push(f.affecting(pods.len()).advice(
            format!("Check the node's kubelet and container runtime (journalctl -u kubelet on {name}), its disk/memory pressure and network; pods managed by controllers are rescheduled once it is drained: kubectl drain {name} --ignore-daemonsets."),
        ));
    }
    out
}

/// Nodes reporting MemoryPressure, DiskPressure or PIDPressure (a NotReady node is
/// reported as such instead).
pub fn pressure(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for n in snap.nodes.iter().filter(|n| node_ready(n)) {
        let name = name_of(&n.metadata);
        let conds: Vec<_> = conditions(n)
            .filter(|c| {
                matches!(
                    c.type_.as_str(),
                    "MemoryPressure" | "DiskPressure" | "PIDPressure"
                ) && c.status == "True"
            })
            .collect();
        if conds.is_empty() {
            continue;
        }
        let pods = pods_on(snap, name).count();
        let kinds: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
        let mut f = Finding::new(
            Cause::NodePressure,
            ObjectRef::new("Node", None, name),
            format!(
                "node {name} reports {}: the kubelet evicts pods and new pods avoid it",
                kinds.join(", ")
            ),
        );
        for c in &conds {
            f = f.evidence(condition_line(c));
        }
        for t in taint_lines(n, |k| k.ends_with("-pressure")) {
            f = f.evidence(t);
        }
        out.push(f.affecting(pods).advice(
            format!("Free the resource on {name} (disk: images and logs, kubectl describe node {name} for what is short; memory/PIDs: the pods using them) or add capacity; tolerating the pressure taint is never the fix."),
        ));
    }
    out
}

/// Resources kai could not read. Cluster-scoped kinds are skipped: a namespaced user is
/// not expected to read nodes, and the rules fall back to events without them.
pub fn forbidden(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for fb in &snap.forbidden {
        if matches!(
            fb.resource.as_str(),
            "nodes" | "storageclasses" | "clusterroles" | "clusterrolebindings" | "ingressclasses"
        ) {
            continue;
        }
        let scope = fb
            .namespace
            .as_deref()
            .map(|n| format!("in namespace {n:?}"))
            .unwrap_or_else(|| "cluster-wide".to_string());
        let object = match &fb.namespace {
            Some(ns) => ObjectRef::new("Namespace", None, ns),
            None => ObjectRef::new("Cluster", None, "*"),
        };
        let mut f = Finding::new(
            Cause::Forbidden,
            object,
            format!(
                "cannot {} {} {scope}: findings about them are missing",
                fb.verb, fb.resource
            ),
        )
        .evidence(format!(
            "{} {} {scope}: forbidden (HTTP 403)",
            fb.verb, fb.resource
        ));
        // Secrets, events and the like are routinely withheld; workloads are what a
        // diagnosis cannot do without.
        if !matches!(
            fb.resource.as_str(),
            "pods"
                | "deployments"
                | "statefulsets"
                | "daemonsets"
                | "replicasets"
                | "jobs"
                | "cronjobs"
                | "services"
        ) {
            f.severity = Severity::Low;
        }
        let ns_flag = fb
            .namespace
            .as_deref()
            .map(|n| format!(" -n {n}"))
            .unwrap_or_default();
        out.push(f.advice(
            format!("Ask a cluster admin for `{}` on `{}`{scope} (kubectl auth can-i {} {}{ns_flag}), or use a context with more rights.", fb.verb, fb.resource, fb.verb, fb.resource),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::*;
    use crate::snapshot::Forbidden;
    use serde_json::json;

    fn node(status: &str) -> Node {
        obj(
            json!({"metadata": {"name": "n1"}, "status": {"conditions": [
            {"type": "Ready", "status": status, "reason": "KubeletNotReady", "message": "container runtime is down"}]}}),
        )
    }

    #[test]
    fn not_ready_node_counts_its_pods() {
        let mut s = snap();
        s.nodes.push(node("False"));
        s.pods.push(running_pod(
            "web-0",
            "web",
            json!({"nodeName": "n1", "containers": [container("app", json!({}))]}),
            false,
        ));
        let f = crate::rules::run_all(&s);
        assert_eq!(causes(&f), ["node-not-ready"]);
        assert_eq!(f[0].count, 1);
        assert!(evidence_has(&f[0], "KubeletNotReady"));
    }

    #[test]
    fn ready_node_is_fine() {
        let mut s = snap();
        s.nodes.push(node("True"));
        assert!(not_ready(&s).is_empty());
    }

    #[test]
    fn forbidden_entries_become_findings_except_cluster_scoped() {
        let mut s = snap();
        for r in ["deployments", "nodes", "secrets"] {
            s.forbidden.push(Forbidden {
                verb: "list".into(),
                resource: r.into(),
                namespace: Some(NS.into()),
            });
        }
        let f = forbidden(&s);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].severity, Severity::High);
        assert!(f[0].summary.contains("list deployments"));
        assert_eq!(f[1].severity, Severity::Low);
    }
}
