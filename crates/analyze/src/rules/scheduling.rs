//! Why a pod stays Pending: resources, node selector / affinity, taints. The scheduler's
//! message is the proof; the node list (when readable) says which reason is the real one
//! (a pod that selects a tainted node is blocked by the taint, not by the selector).

use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use serde_json::json;

use super::pods::PodIssue;
use super::{format_bytes, parse_quantity};
use crate::finding::Cause;
use crate::selector::node_requirement_matches;
use crate::snapshot::{find_named, labels_of, name_of, ns_of, selector_matches, Snapshot};

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

/// Taints that say something about the node's health. The node lifecycle controller and
/// the kubelet add them; tolerating them is never the fix (the node is), so no proposed
/// change ever adds or copies a toleration for one.
pub(crate) const NODE_HEALTH_TAINTS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/out-of-service",
    "node.cloudprovider.kubernetes.io/uninitialized",
    "node.cloudprovider.kubernetes.io/shutdown",
];

pub(crate) fn is_health_taint(key: &str) -> bool {
    NODE_HEALTH_TAINTS.contains(&key)
}

/// Why the scheduler turned nodes down, by kind of reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SchedReason {
    Resources,
    Taint,
    NodeHealth,
    Selector,
    Other,
}

/// The per-node reasons of a FailedScheduling message, as (node count, kind, text), in the
/// wordings of Kubernetes 1.20–1.33:
/// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had taint {k: v}, that the pod
/// didn't tolerate.` (1.20), `... had untolerated taint {k: v}` (1.25+), `didn't match
/// node selector` / `didn't match Pod's node affinity/selector`, `were unschedulable`,
/// each optionally followed by ` preemption: 0/3 nodes are available: 3 No preemption
/// victims found for incoming pod.` (1.23+), which is about preemption, not placement.
pub(crate) fn parse_sched_message(msg: &str) -> Vec<(u32, SchedReason, String)> {
    let main = msg.split(" preemption:").next().unwrap_or(msg);
    let Some((_, list)) = main.split_once("nodes are available:") else {
        return Vec::new();
    };
    let list = list.trim().trim_end_matches('.');
    // Items are ", "-separated, but a taint's item itself contains ", that the pod didn't
    // tolerate": a piece that does not start with a count belongs to the one before.
    let mut items: Vec<String> = Vec::new();
    for piece in list.split(", ") {
        let starts_with_count = piece
            .split_once(' ')
            .is_some_and(|(n, _)| n.parse::<u32>().is_ok());
        match items.last_mut() {
            Some(last) if !starts_with_count => {
                last.push_str(", ");
                last.push_str(piece);
            }
            _ => items.push(piece.to_string()),
        }
    }
    items
        .into_iter()
        .filter_map(|item| {
            let (n, text) = item.split_once(' ')?;
            let n: u32 = n.parse().ok()?;
            let kind = classify_reason(text);
            Some((n, kind, text.trim().to_string()))
        })
        .collect()
}

fn classify_reason(text: &str) -> SchedReason {
    let t = text.to_ascii_lowercase();
    if t.starts_with("insufficient") || t.contains("too many pods") {
        SchedReason::Resources
    } else if t.contains("taint") {
        let keys = taint_keys(text);
        if !keys.is_empty() && keys.iter().all(|k| is_health_taint(k)) {
            SchedReason::NodeHealth
        } else {
            SchedReason::Taint
        }
    } else if t.contains("were unschedulable") || t.contains("not ready") {
        SchedReason::NodeHealth
    } else if t.contains("node selector") || t.contains("node affinity") {
        SchedReason::Selector
    } else {
        SchedReason::Other
    }
}

/// Taint keys named in a reason: `{node.kubernetes.io/not-ready: }` → the key.
fn taint_keys(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else { break };
        let inner = &after[..j];
        let key = inner.split(':').next().unwrap_or_default().trim();
        if !key.is_empty() {
            out.push(key.to_string());
        }
        rest = &after[j..];
    }
    out
}

/// The tolerations the pod's template declares: the owner's template when it is in the
/// snapshot, else the pod's own minus node-health tolerations (admission adds `not-ready`
/// and `unreachable` tolerations to every pod; they never belong in a template patch).
/// `None` when the template itself tolerates a node-health taint: a patch replacing the
/// list would then have to either drop or repeat them, and kai does neither.
fn template_tolerations(snap: &Snapshot, pod: &Pod) -> Option<Vec<serde_json::Value>> {
    let ns = ns_of(&pod.metadata);
    let from_template = crate::snapshot::controller_of(&pod.metadata).and_then(|(kind, name)| {
        let spec = match kind.as_str() {
            "ReplicaSet" => find_named(&snap.replicasets, ns, &name)
                .and_then(|r| r.spec.as_ref()?.template.as_ref()?.spec.clone()),
            "StatefulSet" => find_named(&snap.statefulsets, ns, &name)
                .and_then(|r| r.spec.as_ref()?.template.spec.clone()),
            "DaemonSet" => find_named(&snap.daemonsets, ns, &name)
                .and_then(|r| r.spec.as_ref()?.template.spec.clone()),
            _ => None,
        }?;
        Some(spec.tolerations.unwrap_or_default())
    });
    let tols = match from_template {
        Some(t) => {
            if t.iter()
                .any(|t| t.key.as_deref().is_some_and(is_health_taint))
            {
                return None;
            }
            t
        }
        None => pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !t.key.as_deref().is_some_and(is_health_taint))
            .collect(),
    };
    Some(
        tols.iter()
            .filter_map(|t| serde_json::to_value(t).ok())
            .collect(),
    )
}

pub(crate) fn unschedulable(snap: &Snapshot, pod: &Pod) -> Option<PodIssue> {
    let msg = sched_message(snap, pod)?;
    let nodes_known = !snap.nodes.is_empty() && !snap.is_forbidden("nodes");
    let reasons = parse_sched_message(&msg);
    let has = |k: SchedReason| reasons.iter().any(|(_, r, _)| *r == k);
    // kai's own view of the nodes, to support (never overrule) the scheduler's reasons.
    let selected: Vec<&Node> = if nodes_known {
        snap.nodes
            .iter()
            .filter(|n| node_selected(pod, n))
            .collect()
    } else {
        Vec::new()
    };
    let user_tainted = |n: &&Node| {
        untolerated_taints(pod, n)
            .iter()
            .any(|t| !is_health_taint(&t.key))
    };
    let unhealthy = |n: &&Node| {
        !super::nodes::node_ready(n)
            || untolerated_taints(pod, n)
                .iter()
                .any(|t| is_health_taint(&t.key))
    };
    let kind = if !reasons.is_empty() {
        // The scheduler's message is the ground truth: its reasons decide, most fixable
        // first. A taint reason only counts when (as far as kai can see) a node the pod
        // selects carries it; a node-health reason likewise.
        if has(SchedReason::Resources) {
            "resources"
        } else if has(SchedReason::Taint) && (!nodes_known || selected.iter().any(user_tainted)) {
            "taint"
        } else if has(SchedReason::NodeHealth) && (!nodes_known || selected.iter().any(unhealthy)) {
            "health"
        } else if has(SchedReason::Selector) {
            "selector"
        } else if has(SchedReason::Taint) {
            "taint"
        } else if has(SchedReason::NodeHealth) {
            "health"
        } else {
            "other"
        }
    } else if msg.contains("Insufficient") {
        "resources"
    } else if msg.contains("selector") || msg.contains("affinity") {
        "selector"
    } else {
        "other"
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
    // Every explanation starts from what the scheduler said.
    let stuck =
        |cause: Cause, summary: &str| PodIssue::new(cause, summary).ev(format!("scheduler: {msg}"));
    let issue = match kind {
        "resources" => {
            let mut i = stuck(
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
                    } else if nodes_known {
                        for n in selected.iter().take(3) {
                            if let Some(f) = free(snap, n, r).filter(|f| *f < want) {
                                i = i.ev(format!(
                                    "node {}: {r} free {} of {}",
                                    name_of(&n.metadata),
                                    show(r, f.max(0.0)),
                                    show(r, allocatable(n, r).unwrap_or_default())
                                ));
                            }
                        }
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
            let mut i = stuck(
                Cause::UnschedulableNodeSelector,
                "pod stays Pending: no node matches its nodeSelector/affinity",
            );
            if let Some(s) = &sel_text {
                i = i.ev(format!("nodeSelector {s} matches no node"));
            }
            i.fix("Fix the nodeSelector/affinity to match existing node labels (kubectl get nodes --show-labels), or label a node accordingly.")
        }
        "health" => {
            let bad: Vec<&&Node> = selected.iter().filter(|n| unhealthy(n)).collect();
            // The taints of the nodes the pod may use (the message also names other
            // nodes' taints); the message's own when the nodes cannot be read.
            let keys: Vec<String> = if nodes_known {
                bad.iter()
                    .flat_map(|n| untolerated_taints(pod, n))
                    .map(|t| t.key)
                    .collect()
            } else {
                taint_keys(&msg)
            };
            let not_ready = bad.iter().any(|n| !super::nodes::node_ready(n))
                || keys.iter().any(|k| {
                    k == "node.kubernetes.io/not-ready" || k == "node.kubernetes.io/unreachable"
                });
            let pressure = keys.iter().any(|k| k.ends_with("-pressure"));
            let cause = if not_ready {
                Cause::NodeNotReady
            } else if pressure {
                Cause::NodePressure
            } else {
                Cause::Unknown
            };
            let mut i = stuck(
                cause,
                "pod stays Pending: the only nodes it may use are unhealthy or cordoned",
            );
            for n in bad.iter().take(3) {
                let name = name_of(&n.metadata);
                if !super::nodes::node_ready(n) {
                    i = i.ev(format!("node {name} is NotReady"));
                }
                for t in untolerated_taints(pod, n) {
                    if is_health_taint(&t.key) {
                        i = i.ev(format!("node {name} has taint {}:{}", t.key, t.effect));
                    }
                }
            }
            i.fix("Repair the node (kubelet, container runtime, disk/memory pressure, network) or uncordon it, or let the pod use other nodes; tolerating a node-health taint is never the fix.")
        }
        "taint" => {
            let mut i = stuck(
                Cause::UnschedulableTaint,
                "pod stays Pending: the nodes it may use carry taints it does not tolerate",
            );
            let mut new_tols = Vec::new();
            for n in snap.nodes.iter().filter(|n| node_selected(pod, n)) {
                for t in untolerated_taints(pod, n) {
                    if is_health_taint(&t.key) {
                        continue;
                    }
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
                if let Some(mut tols) = template_tolerations(snap, pod) {
                    tols.extend(new_tols);
                    // Tolerations have no merge key: the patch carries the template's whole
                    // list (never the admission-added defaults, never a node-health taint).
                    i.pod_spec_patch = Some(json!({"tolerations": tols}));
                }
            }
            i.fix("Add a toleration for the taint to the pod template (if the workload belongs on those nodes), or select untainted nodes.")
        }
        _ => stuck(
            Cause::Unknown,
            "pod stays Pending: the scheduler cannot place it",
        )
        .fix("Read the scheduler's message in the evidence."),
    };
    Some(issue)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::pods::pod_findings;
    use crate::rules::testutil::*;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{json, Value};

    fn node(name: &str, labels: Value, taints: Value, cpu: &str) -> Node {
        obj(json!({"metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi"},
                "conditions": [{"type": "Ready", "status": "True"}]}}))
    }

    /// Node `gpu-1`, labelled `pool=gpu` and tainted `dedicated=gpu:NoSchedule`.
    fn gpu_node() -> Node {
        node(
            "gpu-1",
            json!({"pool": "gpu"}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            "4",
        )
    }

    /// A pod spec selecting `pool=gpu` nodes, without a toleration for their taint.
    fn gpu_pod_spec() -> Value {
        json!({"nodeSelector": {"pool": "gpu"}, "containers": [container("app", json!({}))]})
    }

    fn pending(spec: Value, msg: &str) -> Pod {
        pod(
            "web-0",
            "web",
            spec,
            json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}]}),
        )
    }

    #[test]
    fn taint_beats_selector_when_selected_node_is_tainted() {
        let mut s = snap();
        s.nodes.push(node("n1", json!({}), json!([]), "4"));
        s.nodes.push(gpu_node());
        let spec = gpu_pod_spec();
        s.pods.push(pending(spec, "0/2 nodes are available: 1 node(s) didn't match node selector, 1 node(s) had taint {dedicated: gpu}, that the pod didn't tolerate."));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["unschedulable-taint"]);
        let p = &f[0].fix.change.as_ref().unwrap().patch;
        assert_eq!(
            p["spec"]["template"]["spec"]["tolerations"][0]["key"],
            json!("dedicated")
        );
    }

    /// Pod `web-0` Pending with the scheduler's message, per case: the nodes, the pod
    /// spec, the message, then the one cause and evidence lines (whole) it must yield.
    #[test]
    fn scheduler_message_and_nodes_decide_the_cause() {
        type Case = (
            Vec<Node>,
            Value,
            &'static str,
            &'static str,
            &'static [&'static str],
        );
        let cases: [Case; 3] = [
            (
                vec![node("n1", json!({}), json!([]), "4")],
                json!({"containers": [container("app", json!({"resources": {"requests": {"cpu": "64"}}}))]}),
                "0/1 nodes are available: 1 Insufficient cpu.",
                "unschedulable-insufficient-resources",
                &[
                    "scheduler: 0/1 nodes are available: 1 Insufficient cpu.",
                    "pod requests cpu 64",
                ],
            ),
            (
                vec![node("n1", json!({"disk": "hdd"}), json!([]), "4")],
                json!({"nodeSelector": {"disk": "ssd"}, "containers": [container("app", json!({}))]}),
                "0/1 nodes are available: 1 node(s) didn't match node selector.",
                "unschedulable-node-selector",
                &["nodeSelector disk=ssd matches no node"],
            ),
            // Nodes unreadable: the message alone decides.
            (
                Vec::new(),
                app_spec(),
                "0/3 nodes are available: 3 node(s) had taint {x: y}, that the pod didn't tolerate.",
                "unschedulable-taint",
                &[],
            ),
        ];
        for (nodes, spec, message, cause, evidence) in cases {
            let mut s = snap();
            s.nodes = nodes;
            s.pods.push(pending(spec, message));
            let f = pod_findings(&s);
            assert_eq!(causes(&f), [cause], "{message}");
            for e in evidence {
                assert!(f[0].evidence.iter().any(|l| l == e), "{e:?} missing: {f:?}");
            }
        }
    }

    #[test]
    fn scheduled_pod_is_not_unschedulable() {
        let mut s = snap();
        let spec = app_spec();
        s.pods.push(ready_pod("web-0", "web", spec));
        assert!(pod_findings(&s).is_empty());
    }

    #[test]
    fn scheduler_wordings_of_1_20_to_1_33_parse() {
        use super::{parse_sched_message, SchedReason::*};
        let kinds = |m: &str| {
            parse_sched_message(m)
                .into_iter()
                .map(|(n, k, _)| (n, k))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds("0/1 nodes are available: 1 Insufficient cpu."),
            [(1, Resources)]
        );
        assert_eq!(
            kinds("0/3 nodes are available: 1 node(s) had taint {dedicated: gpu}, that the pod didn't tolerate, 2 node(s) didn't match node selector."),
            [(1, Taint), (2, Selector)]
        );
        assert_eq!(
            kinds("0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."),
            [(1, NodeHealth), (2, Selector)]
        );
        assert_eq!(
            kinds("0/3 nodes are available: 2 Insufficient memory, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."),
            [(2, Resources), (1, NodeHealth)]
        );
        assert_eq!(
            kinds("0/2 nodes are available: 2 Too many pods."),
            [(2, Resources)]
        );
        assert!(kinds("no nodes available to schedule pods").is_empty());
    }

    /// The reported wrong: a node carrying the not-ready taint (as every new node does
    /// until the lifecycle controller removes it) and the scheduler saying "Insufficient
    /// cpu". The scheduler wins, and nothing tolerates the node's health taint.
    #[test]
    fn not_ready_taint_with_insufficient_cpu_is_resources_not_taint() {
        let mut s = snap();
        s.nodes.push(node(
            "n1",
            json!({}),
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]),
            "2",
        ));
        // Admission added the default tolerations to the pod.
        let spec = json!({"tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "containers": [container("app", json!({"resources": {"requests": {"cpu": "8"}}}))]});
        s.pods.push(pending(
            spec,
            "0/1 nodes are available: 1 Insufficient cpu.",
        ));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["unschedulable-insufficient-resources"]);
        assert!(f[0].fix.change.is_none());
        assert!(f[0]
            .evidence
            .iter()
            .any(|e| e == "scheduler: 0/1 nodes are available: 1 Insufficient cpu."));
    }

    #[test]
    fn not_ready_node_with_its_taint_is_the_node_never_a_toleration() {
        let mut s = snap();
        let mut n = node(
            "n1",
            json!({"pool": "old"}),
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]),
            "4",
        );
        n.status.as_mut().unwrap().conditions = Some(vec![obj(
            json!({"type": "Ready", "status": "False", "reason": "KubeletNotReady"}),
        )]);
        s.nodes.push(n);
        s.nodes.push(node("n2", json!({}), json!([]), "4"));
        let spec =
            json!({"nodeSelector": {"pool": "old"}, "containers": [container("app", json!({}))]});
        s.pods.push(pending(spec, "0/2 nodes are available: 1 node(s) didn't match node selector, 1 node(s) had taint {node.kubernetes.io/not-ready: }, that the pod didn't tolerate."));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["node-not-ready"]);
        assert!(f[0].fix.change.is_none());
        assert!(f[0].evidence.iter().any(|e| e == "node n1 is NotReady"));
    }

    #[test]
    fn taint_patch_never_copies_admission_defaults() {
        let mut s = snap();
        s.nodes.push(gpu_node());
        let tpl = gpu_pod_spec();
        add_deployment(&mut s, "web", 1, tpl);
        let spec = json!({"nodeSelector": {"pool": "gpu"}, "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "containers": [container("app", json!({}))]});
        s.pods.push(pending(spec, "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["unschedulable-taint"]);
        let tols =
            &f[0].fix.change.as_ref().unwrap().patch["spec"]["template"]["spec"]["tolerations"];
        assert_eq!(tols.as_array().unwrap().len(), 1, "{tols}");
        assert_eq!(tols[0]["key"], json!("dedicated"));
    }
}
