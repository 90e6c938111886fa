//! Pod-level rules, aggregated: each pod gets at most one root cause, and pods with the
//! same cause under the same top-level owner become one finding with a count.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::containers::NO_PREVIOUS_LOG;
use super::{config, containers, scheduling, template_patch};
use crate::finding::{push_unique, Cause, Finding, ObjectRef, ProposedChange};
use crate::snapshot::{controller_of, event_line, name_of, ns_of, Snapshot};

/// Pods younger than this that are merely "not ready" are still starting, not broken.
const STARTUP_GRACE_SECS: i64 = 90;
const MAX_EVIDENCE: usize = 8;

/// One pod's root cause, before aggregation.
#[derive(Debug, Clone)]
pub(crate) struct PodIssue {
    pub cause: Cause,
    /// Short, pod-independent description, e.g. `container "app" exits with code 1`.
    pub detail: String,
    pub evidence: Vec<String>,
    pub fix: String,
    /// A strategic-merge patch of the pod spec; wrapped for the owner's template.
    pub pod_spec_patch: Option<Value>,
    /// The evidence quotes the container's log tail.
    pub log_quoted: bool,
}

impl PodIssue {
    pub fn new(cause: Cause, detail: impl Into<String>) -> Self {
        PodIssue {
            cause,
            detail: detail.into(),
            evidence: Vec::new(),
            fix: String::new(),
            pod_spec_patch: None,
            log_quoted: false,
        }
    }

    pub fn ev(mut self, e: impl Into<String>) -> Self {
        push_unique(&mut self.evidence, e.into());
        self
    }

    pub fn fix(mut self, f: impl Into<String>) -> Self {
        self.fix = f.into();
        self
    }
}

pub fn pod_findings(snap: &Snapshot) -> Vec<Finding> {
    let mut totals: BTreeMap<ObjectRef, u32> = BTreeMap::new();
    let mut groups: BTreeMap<(ObjectRef, Cause), (Vec<String>, PodIssue)> = BTreeMap::new();
    for pod in &snap.pods {
        let owner = snap.top_owner(pod);
        *totals.entry(owner.clone()).or_default() += 1;
        let Some(issue) = diagnose_pod(snap, pod) else {
            continue;
        };
        let entry = groups
            .entry((owner, issue.cause))
            .or_insert_with(|| (Vec::new(), issue.clone()));
        entry.0.push(name_of(&pod.metadata).to_string());
        entry.1.log_quoted |= issue.log_quoted;
        for e in issue.evidence {
            if entry.1.evidence.len() < MAX_EVIDENCE {
                push_unique(&mut entry.1.evidence, e);
            }
        }
    }
    for (_, issue) in groups.values_mut() {
        if issue.log_quoted {
            // Logs are read for some pods of a workload only: one pod's quoted log is
            // the evidence, and "no log" from its siblings would only contradict it.
            issue.evidence.retain(|e| e != NO_PREVIOUS_LOG);
        }
    }
    groups
        .into_iter()
        .map(|((owner, cause), (pods, issue))| {
            let total = totals.get(&owner).copied().unwrap_or(1);
            to_finding(owner, cause, pods, total, issue)
        })
        .collect()
}

fn to_finding(
    owner: ObjectRef,
    cause: Cause,
    pods: Vec<String>,
    total: u32,
    issue: PodIssue,
) -> Finding {
    let count = pods.len() as u32;
    let summary = if owner.kind == "Pod" {
        issue.detail.clone()
    } else {
        format!("{count} of {total} pod(s): {}", issue.detail)
    };
    let mut f = Finding::new(cause, owner.clone(), summary);
    if count < total && cause != Cause::Unknown {
        // Some replicas still serve: degraded rather than down.
        f.severity = f.severity.lower();
    }
    f.count = count;
    if owner.kind != "Pod" {
        let mut names = pods.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if pods.len() > 5 {
            names.push_str(&format!(" (+{} more)", pods.len() - 5));
        }
        f.evidence.push(format!("affected pods: {names}"));
    }
    for e in issue.evidence {
        push_unique(&mut f.evidence, e);
    }
    let change = issue.pod_spec_patch.and_then(|p| {
        template_patch(&owner.kind, p).map(|patch| ProposedChange {
            kind: owner.kind.clone(),
            namespace: owner.namespace.clone(),
            name: owner.name.clone(),
            patch_type: "strategic".to_string(),
            patch,
        })
    });
    f.fix(issue.fix, change)
}

/// The single most specific explanation for an unhealthy pod, or `None` if it is fine
/// (or another rule owns it).
pub(crate) fn diagnose_pod(snap: &Snapshot, pod: &Pod) -> Option<PodIssue> {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if phase == "Succeeded" {
        return None;
    }
    let owned_by_job = controller_of(&pod.metadata).is_some_and(|(k, _)| k == "Job");
    if phase == "Failed" && owned_by_job {
        // The Job rule reports failed Job pods, with their logs, as one finding.
        return None;
    }
    if on_not_ready_node(snap, pod) {
        // node-not-ready explains every pod on that node.
        return None;
    }
    if scheduling::blocked_on_pvc(pod) {
        // The PVC rule reports it, on the claim, with the claim's own events.
        return None;
    }
    if let Some(issue) = scheduling::unschedulable(snap, pod) {
        return Some(issue);
    }
    // Init containers first: while one fails, the main containers never start.
    let spec = pod.spec.as_ref();
    let groups = [
        (
            true,
            status.and_then(|s| s.init_container_statuses.as_ref()),
            spec.and_then(|s| s.init_containers.as_ref()),
        ),
        (
            false,
            status.and_then(|s| s.container_statuses.as_ref()),
            spec.map(|s| &s.containers),
        ),
    ];
    for (init, statuses, specs) in groups {
        for cs in statuses.into_iter().flatten() {
            let spec = specs.and_then(|v| v.iter().find(|c| c.name == cs.name));
            if let Some(issue) = containers::container_issue(snap, pod, cs, spec, init) {
                return Some(issue);
            }
        }
    }
    if !pod_ready(pod) {
        if let Some(issue) = config::missing_refs(snap, pod) {
            return Some(issue);
        }
        return unknown(snap, pod, phase);
    }
    None
}

pub(crate) fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

pub(crate) fn on_not_ready_node(snap: &Snapshot, pod: &Pod) -> bool {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
        return false;
    };
    snap.node(node)
        .is_some_and(|n| !super::nodes::node_ready(n))
}

/// No rule matched, but the pod is not ready: report the raw symptoms, invent nothing.
fn unknown(snap: &Snapshot, pod: &Pod, phase: &str) -> Option<PodIssue> {
    let age = snap.age_secs(pod.metadata.creation_timestamp.as_ref());
    if age.is_some_and(|a| a < STARTUP_GRACE_SECS) && phase != "Failed" {
        return None;
    }
    let status = pod.status.as_ref()?;
    let mut issue = PodIssue::new(Cause::Unknown, format!("pod is {phase} and not ready"));
    issue = issue.ev(format!("phase: {phase}"));
    if let Some(r) = status.reason.as_deref() {
        issue = issue.ev(format!(
            "reason: {r}: {}",
            status.message.as_deref().unwrap_or_default()
        ));
    }
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in all {
        let st = cs.state.as_ref();
        if let Some(w) = st.and_then(|s| s.waiting.as_ref()) {
            issue = issue.ev(format!(
                "container {:?} waiting: {} {}",
                cs.name,
                w.reason.as_deref().unwrap_or_default(),
                w.message.as_deref().unwrap_or_default()
            ));
        } else if let Some(t) = st.and_then(|s| s.terminated.as_ref()) {
            issue = issue.ev(format!(
                "container {:?} terminated: {} (exit code {})",
                cs.name,
                t.reason.as_deref().unwrap_or_default(),
                t.exit_code
            ));
        } else if !cs.ready {
            issue = issue.ev(format!("container {:?} is not ready", cs.name));
        }
    }
    let events = snap.events_for("Pod", ns_of(&pod.metadata), name_of(&pod.metadata));
    for e in events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .rev()
        .take(3)
    {
        issue = issue.ev(event_line(e));
    }
    Some(issue.fix(
        "No rule recognised this failure; read the evidence above (kubectl describe pod, kubectl logs --previous).",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::*;
    use serde_json::json;

    /// A pod of Deployment `owner` running [`app_spec`], in `phase` with these container statuses.
    fn app_pod(name: &str, owner: &str, phase: &str, statuses: Vec<Value>) -> Pod {
        pod(name, owner, app_spec(), pod_status(phase, statuses))
    }

    /// A pod of Deployment `owner` whose container `app` is still being created.
    fn creating_pod(name: &str, owner: &str) -> Pod {
        let creating = waiting("app", "ContainerCreating", "", 0, json!({}));
        app_pod(name, owner, "Pending", vec![creating])
    }

    fn crash_looping_backend(name: &str) -> Pod {
        crash_looping_pod(name, "backend", 7, terminated("Error", 1, 30))
    }

    #[test]
    fn crash_loop_pods_aggregate_on_the_deployment() {
        let mut s = snap();
        add_deployment(&mut s, "backend", 3, app_spec());
        for i in 0..3 {
            let name = format!("backend-{i}");
            s.pods.push(crash_looping_backend(&name));
            s.previous_logs.insert(
                (NS.into(), name, "app".into()),
                "starting\nFATAL: password authentication failed for user \"app\"\n".into(),
            );
        }
        let f = pod_findings(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].cause, Cause::CrashLoopAppError);
        assert_eq!(
            f[0].object,
            ObjectRef::new("Deployment", Some(NS), "backend")
        );
        assert_eq!(f[0].count, 3);
        assert!(f[0].summary.starts_with("3 of 3"));
        assert!(evidence_has(&f[0], "FATAL: password authentication failed"));
    }

    #[test]
    fn one_quoted_log_is_not_contradicted_by_siblings_without_one() {
        let mut s = snap();
        add_deployment(&mut s, "backend", 3, app_spec());
        for i in 0..3 {
            s.pods.push(crash_looping_backend(&format!("backend-{i}")));
        }
        // No log read at all: the finding says so.
        let f = pod_findings(&s);
        assert!(f[0].evidence.iter().any(|e| e == NO_PREVIOUS_LOG), "{f:?}");
        // Only the second pod's log was read (the fetch budget is per workload first).
        s.previous_logs.insert(
            (NS.into(), "backend-1".into(), "app".into()),
            "FATAL: cannot open /etc/backend/config.yaml\n".into(),
        );
        let f = pod_findings(&s);
        assert!(evidence_has(&f[0], "FATAL: cannot open"));
        assert!(f[0].evidence.iter().all(|e| e != NO_PREVIOUS_LOG), "{f:?}");
    }

    #[test]
    fn healthy_and_long_ago_restarted_pods_are_fine() {
        let mut s = snap();
        add_deployment(&mut s, "web", 2, app_spec());
        s.pods.push(ready_pod("web-0", "web", app_spec()));
        let mut old = running("app", true, 1);
        old["lastState"] = terminated("Error", 1, 86_400);
        s.pods.push(app_pod("web-1", "web", "Running", vec![old]));
        assert!(pod_findings(&s).is_empty());
    }

    #[test]
    fn partial_outage_is_less_severe() {
        let mut s = snap();
        add_deployment(&mut s, "web", 2, app_spec());
        s.pods.push(ready_pod("web-0", "web", app_spec()));
        s.pods.push(app_pod(
            "web-1",
            "web",
            "Running",
            vec![crash_loop("app", 5, terminated("Error", 2, 10))],
        ));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["crash-loop-app-error"]);
        assert_eq!(f[0].severity, crate::Severity::High);
        assert_eq!(f[0].count, 1);
    }

    #[test]
    fn unexplained_not_ready_pod_is_unknown_with_symptoms() {
        let mut s = snap();
        s.pods.push(creating_pod("odd-0", "odd"));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["unknown"]);
        assert!(evidence_has(&f[0], "ContainerCreating"));
    }

    #[test]
    fn young_starting_pod_is_not_reported() {
        let mut s = snap();
        let mut p = creating_pod("new-0", "new");
        p.metadata.creation_timestamp = Some(obj(json!(ago(10))));
        s.pods.push(p);
        assert!(pod_findings(&s).is_empty());
    }
}
