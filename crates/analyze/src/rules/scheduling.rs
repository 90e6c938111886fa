//! Why a pod stays Pending: resources, node selector / affinity, taints. The scheduler's
//! message is the proof; the node list (when readable) says which reason is the real one
//! (a pod that selects a tainted node is blocked by the taint, not by the selector).

use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use serde_json::json;

use super::pods::PodIssue;
use super::{format_bytes, parse_quantity};
use crate::finding::Cause;
use crate::selector::node_requirement_matches;
use crate::snapshot::{labels_of, name_of, ns_of, selector_matches, Snapshot};

fn sched_message(snap: &Snapshot, pod: &Pod) -> Option<String> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    if cond.reason.as_deref() != Some("Unschedulable") {
        return None;
    }
    cond.message.clone().or_else(|| {
        snap.events_for("Pod", ns_of(&pod.metadata), name_of(&pod.metadata))
            .into_iter()
            .rev()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
            .and_then(|e| e.message.clone())
    })
}

/// The pod waits for a PersistentVolumeClaim to bind (reported on the claim instead).
pub(crate) fn blocked_on_pvc(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.message
                    .as_deref()
                    .is_some_and(|m| m.contains("unbound") && m.contains("PersistentVolumeClaim"))
        })
}

fn node_selected(pod: &Pod, node: &Node) -> bool {
    let labels = labels_of(&node.metadata);
    let spec = pod.spec.as_ref();
    if let Some(sel) = spec.and_then(|s| s.node_selector.as_ref()) {
        if !selector_matches(sel, &labels) {
            return false;
        }
    }
    let terms = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| &r.node_selector_terms);
    match terms {
        Some(terms) if !terms.is_empty() => terms.iter().any(|t| {
            t.match_expressions.iter().flatten().all(|e| {
                // Gt/Lt are rare; do not claim a mismatch we cannot evaluate.
                node_requirement_matches(e, &labels).unwrap_or(true)
            })
        }),
        _ => true,
    }
}

fn untolerated_taints(pod: &Pod, node: &Node) -> Vec<Taint> {
    let tols = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        taints.push(Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
    }
    taints
        .into_iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .filter(|t| {
            !tols.iter().any(|tol| {
                let key_ok = tol
                    .key
                    .as_deref()
                    .is_none_or(|k| k.is_empty() || k == t.key);
                let effect_ok = tol
                    .effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == t.effect);
                let value_ok = tol.operator.as_deref() == Some("Exists")
                    || tol.value.as_deref().unwrap_or_default()
                        == t.value.as_deref().unwrap_or_default();
                key_ok && effect_ok && value_ok
            })
        })
        .collect()
}

/// Sum of a resource's requests over the pod's containers (cores / bytes).
fn requests(pod: &Pod, resource: &str) -> f64 {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(resource))
        .filter_map(|q| parse_quantity(&q.0))
        .sum()
}

fn allocatable(node: &Node, resource: &str) -> Option<f64> {
    node.status
        .as_ref()?
        .allocatable
        .as_ref()?
        .get(resource)
        .and_then(|q| parse_quantity(&q.0))
}

/// Free capacity on a node, after the requests of pods already bound to it.
fn free(snap: &Snapshot, node: &Node, resource: &str) -> Option<f64> {
    let name = name_of(&node.metadata);
    let used: f64 = snap
        .pods
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name))
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .map(|p| requests(p, resource))
        .sum();
    Some(allocatable(node, resource)? - used)
}

fn show(resource: &str, v: f64) -> String {
    if resource == "memory" {
        format_bytes(v)
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

pub(crate) fn unschedulable(snap: &Snapshot, pod: &Pod) -> Option<PodIssue> {
    let msg = sched_message(snap, pod)?;
    let nodes_known = !snap.nodes.is_empty() && !snap.is_forbidden("nodes");
    let by_msg = || {
        if msg.contains("Insufficient") {
            "resources"
        } else if msg.contains("taint") {
            "taint"
        } else if msg.contains("selector") || msg.contains("affinity") {
            "selector"
        } else {
            "other"
        }
    };
    let kind = if nodes_known {
        let selected: Vec<&Node> = snap
            .nodes
            .iter()
            .filter(|n| node_selected(pod, n))
            .collect();
        let tolerated: Vec<&Node> = selected
            .iter()
            .copied()
            .filter(|n| untolerated_taints(pod, n).is_empty())
            .collect();
        let fits = |n: &&Node| {
            ["cpu", "memory"].iter().all(|r| {
                let want = requests(pod, r);
                want == 0.0 || free(snap, n, r).is_none_or(|f| f >= want)
            })
        };
        if selected.is_empty() {
            "selector"
        } else if tolerated.is_empty() {
            "taint"
        } else if !tolerated.iter().any(fits) {
            "resources"
        } else {
            by_msg()
        }
    } else {
        by_msg()
    };
    let sel_text = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.as_ref())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        });
    let issue = match kind {
        "resources" => {
            let mut i = PodIssue::new(
                Cause::UnschedulableInsufficientResources,
                "pod stays Pending: no node has enough free CPU/memory for its requests",
            );
            let mut limits = Vec::new();
            for r in ["cpu", "memory"] {
                let want = requests(pod, r);
                if want > 0.0 {
                    let max = snap
                        .nodes
                        .iter()
                        .filter_map(|n| allocatable(n, r))
                        .fold(0.0, f64::max);
                    i = i.ev(format!("pod requests {r} {}", show(r, want)));
                    if nodes_known && want > max {
                        i = i.ev(format!("largest node allocatable {r}: {}", show(r, max)));
                        limits.push(format!("{r} to at most {}", show(r, max)));
                    }
                }
            }
            let fix = if limits.is_empty() {
                "Lower the pod's resource requests, free capacity (scale down other workloads) or add nodes.".to_string()
            } else {
                format!(
                    "Lower the requests ({}) or add a node large enough.",
                    limits.join(", ")
                )
            };
            i.fix(fix)
        }
        "selector" => {
            let mut i = PodIssue::new(
                Cause::UnschedulableNodeSelector,
                "pod stays Pending: no node matches its nodeSelector/affinity",
            );
            if let Some(s) = &sel_text {
                i = i.ev(format!("nodeSelector {s} matches no node"));
            }
            i.fix("Fix the nodeSelector/affinity to match existing node labels (kubectl get nodes --show-labels), or label a node accordingly.")
        }
        "taint" => {
            let mut i = PodIssue::new(
                Cause::UnschedulableTaint,
                "pod stays Pending: the nodes it may use carry taints it does not tolerate",
            );
            let mut new_tols = Vec::new();
            for n in snap.nodes.iter().filter(|n| node_selected(pod, n)) {
                for t in untolerated_taints(pod, n) {
                    let text = format!(
                        "{}={}:{}",
                        t.key,
                        t.value.as_deref().unwrap_or_default(),
                        t.effect
                    );
                    i = i.ev(format!(
                        "node {} has taint {text}, which the pod does not tolerate",
                        name_of(&n.metadata)
                    ));
                    let tol = json!({"key": t.key, "operator": "Equal", "value": t.value.clone().unwrap_or_default(), "effect": t.effect});
                    if !new_tols.contains(&tol) {
                        new_tols.push(tol);
                    }
                }
            }
            if let Some(s) = &sel_text {
                i = i.ev(format!("nodeSelector {s} selects only tainted nodes"));
            }
            if !new_tols.is_empty() && new_tols.len() <= 2 {
                let mut tols: Vec<serde_json::Value> = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.tolerations.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|t| serde_json::to_value(t).ok())
                    .collect();
                tols.extend(new_tols);
                // Tolerations have no merge key: the patch carries the whole list.
                i.pod_spec_patch = Some(json!({"tolerations": tols}));
            }
            i.fix("Add a toleration for the taint to the pod template (if the workload belongs on those nodes), or select untainted nodes.")
        }
        _ => PodIssue::new(
            Cause::Unknown,
            "pod stays Pending: the scheduler cannot place it",
        )
        .fix("Read the scheduler's message in the evidence."),
    };
    Some(issue.ev(msg))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::pods::pod_findings;
    use crate::rules::testutil::*;
    use serde_json::{json, Value};

    fn node(
        name: &str,
        labels: Value,
        taints: Value,
        cpu: &str,
    ) -> k8s_openapi::api::core::v1::Node {
        obj(json!({"metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi"},
                "conditions": [{"type": "Ready", "status": "True"}]}}))
    }

    fn pending(spec: Value, msg: &str) -> k8s_openapi::api::core::v1::Pod {
        pod(
            "web-0",
            "web",
            spec,
            json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}]}),
        )
    }

    #[test]
    fn insufficient_resources() {
        let mut s = snap();
        s.nodes.push(node("n1", json!({}), json!([]), "4"));
        let spec = json!({"containers": [container("app", json!({"resources": {"requests": {"cpu": "64"}}}))]});
        s.pods.push(pending(
            spec,
            "0/1 nodes are available: 1 Insufficient cpu.",
        ));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["unschedulable-insufficient-resources"]);
        assert!(f[0].evidence.iter().any(|e| e.contains("Insufficient cpu")));
        assert!(f[0].evidence.iter().any(|e| e == "pod requests cpu 64"));
    }

    #[test]
    fn taint_beats_selector_when_selected_node_is_tainted() {
        let mut s = snap();
        s.nodes.push(node("n1", json!({}), json!([]), "4"));
        s.nodes.push(node(
            "gpu-1",
            json!({"pool": "gpu"}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            "4",
        ));
        let spec =
            json!({"nodeSelector": {"pool": "gpu"}, "containers": [container("app", json!({}))]});
        s.pods.push(pending(spec, "0/2 nodes are available: 1 node(s) didn't match node selector, 1 node(s) had taint {dedicated: gpu}, that the pod didn't tolerate."));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["unschedulable-taint"]);
        let p = &f[0].fix.change.as_ref().unwrap().patch;
        assert_eq!(
            p["spec"]["template"]["spec"]["tolerations"][0]["key"],
            json!("dedicated")
        );
    }

    #[test]
    fn selector_matching_nothing() {
        let mut s = snap();
        s.nodes
            .push(node("n1", json!({"disk": "hdd"}), json!([]), "4"));
        let spec =
            json!({"nodeSelector": {"disk": "ssd"}, "containers": [container("app", json!({}))]});
        s.pods.push(pending(
            spec,
            "0/1 nodes are available: 1 node(s) didn't match node selector.",
        ));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["unschedulable-node-selector"]);
        assert!(f[0].evidence.iter().any(|e| e.contains("disk=ssd")));
    }

    #[test]
    fn message_only_when_nodes_unreadable() {
        let mut s = snap();
        let spec = json!({"containers": [container("app", json!({}))]});
        s.pods.push(pending(
            spec,
            "0/3 nodes are available: 3 node(s) had taint {x: y}, that the pod didn't tolerate.",
        ));
        assert_eq!(causes(&pod_findings(&s)), ["unschedulable-taint"]);
    }

    #[test]
    fn scheduled_pod_is_not_unschedulable() {
        let mut s = snap();
        let spec = json!({"containers": [container("app", json!({}))]});
        s.pods.push(pod(
            "web-0",
            "web",
            spec,
            pod_status("Running", vec![running("app", true, 0)]),
        ));
        assert!(pod_findings(&s).is_empty());
    }
}
