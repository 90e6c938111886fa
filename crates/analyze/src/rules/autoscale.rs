//! HorizontalPodAutoscalers that cannot scale, and PodDisruptionBudgets that can never
//! allow a disruption.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::netpol::label_selector_matches;
use super::{template_patch, truncate};
use crate::finding::{Cause, Finding, ObjectRef, ProposedChange};
use crate::snapshot::{event_line, labels_of, name_of, ns_of, with_spec, Snapshot};

/// The pod template of a scale target (Deployment, StatefulSet, ReplicaSet).
fn target_template(snap: &Snapshot, ns: &str, kind: &str, name: &str) -> Option<PodSpec> {
    let find = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        ns_of(meta) == ns && name_of(meta) == name
    };
    match kind {
        "Deployment" => snap
            .deployments
            .iter()
            .find(|d| find(&d.metadata))
            .and_then(|d| d.spec.as_ref()?.template.spec.clone()),
        "StatefulSet" => snap
            .statefulsets
            .iter()
            .find(|d| find(&d.metadata))
            .and_then(|d| d.spec.as_ref()?.template.spec.clone()),
        "ReplicaSet" => snap
            .replicasets
            .iter()
            .find(|d| find(&d.metadata))
            .and_then(|d| d.spec.as_ref()?.template.as_ref()?.spec.clone()),
        _ => None,
    }
}

pub fn hpas(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for (h, ns, name, spec) in with_spec(&snap.hpas, |h| h.spec.as_ref()) {
        let obj = ObjectRef::new("HorizontalPodAutoscaler", Some(ns), name);
        let target = &spec.scale_target_ref;
        let events: Vec<_> = snap
            .events_for("HorizontalPodAutoscaler", ns, name)
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .collect();
        let status = h.status.clone().unwrap_or_default();
        let conds = status.conditions.clone().unwrap_or_default();
        // Utilization targets on resources the target's containers do not request.
        let utilization: Vec<String> = spec
            .metrics
            .iter()
            .flatten()
            .filter_map(|m| m.resource.as_ref())
            .filter(|r| r.target.type_ == "Utilization")
            .map(|r| r.name.clone())
            .collect();
        let template = target_template(snap, ns, &target.kind, &target.name);
        if let Some(t) = &template {
            let missing: Vec<(String, String)> = utilization
                .iter()
                .flat_map(|r| {
                    t.containers
                        .iter()
                        .filter(|c| {
                            c.resources
                                .as_ref()
                                .and_then(|x| x.requests.as_ref())
                                .is_none_or(|q| !q.contains_key(r))
                        })
                        .map(move |c| (c.name.clone(), r.clone()))
                })
                .collect();
            if !missing.is_empty() {
                let mut f = Finding::new(
                    Cause::HpaMissingRequests,
                    obj.clone(),
                    format!(
                        "HPA {name} scales {} {} on utilization, but its containers request none of that resource",
                        target.kind, target.name
                    ),
                );
                for (c, r) in &missing {
                    f = f.evidence(format!(
                        "container {c:?} of {} {} has no {r} request",
                        target.kind, target.name
                    ));
                }
                for e in events.iter().rev().take(2) {
                    f = f.evidence(truncate(&event_line(e), 400));
                }
                let containers: Vec<serde_json::Value> = t
                    .containers
                    .iter()
                    .filter_map(|c| {
                        let rs: serde_json::Map<String, serde_json::Value> = missing
                            .iter()
                            .filter(|(n, _)| *n == c.name)
                            .map(|(_, r)| {
                                let v = if r == "memory" { "128Mi" } else { "100m" };
                                (r.clone(), json!(v))
                            })
                            .collect();
                        (!rs.is_empty())
                            .then(|| json!({"name": c.name, "resources": {"requests": rs}}))
                    })
                    .collect();
                let change =
                    template_patch(&target.kind, json!({"containers": containers})).map(|patch| {
                        ProposedChange {
                            kind: target.kind.clone(),
                            namespace: Some(ns.to_string()),
                            name: target.name.clone(),
                            patch_type: "strategic".into(),
                            patch,
                        }
                    });
                out.push(f.fix(
                    format!("Set {} requests on the containers of {} {} (utilization is a percentage of the request); the proposed values are a modest start, size them from real usage.", missing.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join("/"), target.kind, target.name),
                    change,
                ));
                continue;
            }
        }
        let metric_failures: Vec<String> = events
            .iter()
            .filter(|e| {
                let r = e.reason.as_deref().unwrap_or_default();
                // FailedGetScale is about the target, not metrics.
                (r.starts_with("FailedGet") && r.ends_with("Metric"))
                    || r == "FailedComputeMetricsReplicas"
            })
            .map(|e| truncate(&event_line(e), 400))
            .collect();
        let inactive = conds
            .iter()
            .find(|c| c.type_ == "ScalingActive" && c.status == "False");
        if !metric_failures.is_empty()
            || inactive.is_some_and(|c| c.reason.as_deref() != Some("ScalingDisabled"))
        {
            let mut f = Finding::new(
                Cause::HpaMissingMetrics,
                obj.clone(),
                format!(
                    "HPA {name} cannot read its metrics, so it cannot scale {} {}",
                    target.kind, target.name
                ),
            );
            if let Some(c) = inactive {
                f = f.evidence(format!(
                    "condition ScalingActive=False: {} {}",
                    c.reason.as_deref().unwrap_or_default(),
                    truncate(c.message.as_deref().unwrap_or_default(), 300)
                ));
            }
            for m in metric_failures.iter().rev().take(2) {
                f = f.evidence(m.clone());
            }
            out.push(f.advice(
                "Install or repair the metrics pipeline: metrics-server for cpu/memory (kubectl get apiservice v1beta1.metrics.k8s.io), the custom metrics adapter for others.",
            ));
            continue;
        }
        let limited = conds.iter().find(|c| {
            c.type_ == "ScalingLimited"
                && c.status == "True"
                && c.reason.as_deref() == Some("TooManyReplicas")
        });
        // The controller's own verdict: it wanted more than maxReplicas allows.
        if let Some(c) = limited {
            let max = spec.max_replicas;
            let mut f = Finding::new(
                Cause::HpaAtMaxReplicas,
                obj.clone(),
                format!("HPA {name} is pinned at maxReplicas ({max}) and wants more"),
            )
            .evidence(format!(
                "replicas: {} current, {} desired, max {max}",
                status.current_replicas.unwrap_or(0),
                status.desired_replicas
            ));
            f = f.evidence(format!(
                "condition ScalingLimited=True: TooManyReplicas {}",
                c.message.as_deref().unwrap_or_default()
            ));
            out.push(f.fix(
                "Raise maxReplicas (the proposal doubles it) if the cluster has room, or make each replica handle more load.",
                Some(ProposedChange::merge("HorizontalPodAutoscaler", ns, name, json!({"spec": {"maxReplicas": max.saturating_mul(2)}}))),
            ));
        }
    }
    out
}

fn resolve(v: &IntOrString, total: i32) -> i32 {
    match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            (pct / 100.0 * f64::from(total)).ceil() as i32
        }
    }
}

pub fn pdbs(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for (p, ns, name, spec) in with_spec(&snap.pdbs, |p| p.spec.as_ref()) {
        let selected = spec.selector.as_ref().map_or(0, |sel| {
            snap.pods
                .iter()
                .filter(|pod| {
                    ns_of(&pod.metadata) == ns
                        && pod.metadata.deletion_timestamp.is_none()
                        && label_selector_matches(sel, &labels_of(&pod.metadata))
                })
                .count() as i32
        });
        let expected = p
            .status
            .as_ref()
            .map(|s| s.expected_pods)
            .filter(|n| *n > 0)
            .unwrap_or(selected);
        if expected == 0 {
            // Selects nothing: protects nothing, blocks nothing.
            continue;
        }
        let (why, change) = if let Some(mu) = &spec.max_unavailable {
            if resolve(mu, expected) > 0 {
                continue;
            }
            (
                format!("maxUnavailable is {} of {expected} pod(s)", show(mu)),
                json!({"spec": {"maxUnavailable": 1}}),
            )
        } else if let Some(ma) = &spec.min_available {
            // A percentage rounds up: minAvailable 100% of any count blocks.
            if resolve(ma, expected) < expected {
                continue;
            }
            (
                format!(
                    "minAvailable is {} and it selects {expected} pod(s)",
                    show(ma)
                ),
                json!({"spec": {"minAvailable": null, "maxUnavailable": 1}}),
            )
        } else {
            continue;
        };
        let mut f = Finding::new(
            Cause::PdbUnsatisfiable,
            ObjectRef::new("PodDisruptionBudget", Some(ns), name),
            format!("PodDisruptionBudget {name} can never allow a voluntary disruption: node drains block on its pods"),
        )
        .evidence(why);
        if let Some(st) = &p.status {
            f = f.evidence(format!(
                "disruptionsAllowed: {}, currentHealthy: {}, expectedPods: {}",
                st.disruptions_allowed, st.current_healthy, st.expected_pods
            ));
        }
        out.push(f.fix(
            "Allow at least one disruption (maxUnavailable: 1, as proposed), or run more replicas than minAvailable.",
            Some(ProposedChange::merge("PodDisruptionBudget", ns, name, change)),
        ));
    }
    out
}

fn show(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rules::testutil::*;

    #[test]
    fn hpa_on_cpu_without_requests_proposes_them() {
        let mut s = snap();
        add_deployment(&mut s, "web", 1, app_spec());
        s.hpas.push(obj(json!({"metadata": {"name": "web", "namespace": NS},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}})));
        let f = hpas(&s);
        assert_eq!(causes(&f), ["hpa-missing-requests"]);
        let p = &f[0].fix.change.as_ref().unwrap().patch;
        assert_eq!(
            p["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            json!("100m")
        );
    }

    #[test]
    fn hpa_metrics_and_max() {
        let mut s = snap();
        add_deployment(
            &mut s,
            "web",
            1,
            json!({"containers": [container("app", json!({"resources": {"requests": {"cpu": "100m"}}}))]}),
        );
        let hpa = |status: serde_json::Value| -> k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler {
            obj(json!({"metadata": {"name": "web", "namespace": NS},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
            "status": status}))
        };
        s.hpas.push(hpa(json!({"currentReplicas": 4, "desiredReplicas": 4, "conditions": [
            {"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas", "message": "the desired replica count is more than the maximum replica count"}]})));
        assert_eq!(causes(&hpas(&s)), ["hpa-at-max-replicas"]);
        s.events.push(event("HorizontalPodAutoscaler", "web", "Warning", "FailedGetResourceMetric",
            "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"));
        assert_eq!(causes(&hpas(&s)), ["hpa-missing-metrics"]);
    }

    #[test]
    fn pdb_that_never_allows_a_disruption() {
        let mut s = snap();
        let spec = app_spec();
        for i in 0..2 {
            s.pods
                .push(ready_pod(&format!("db-{i}"), "db", spec.clone()));
        }
        let pdb = |spec: serde_json::Value| {
            obj(json!({"metadata": {"name": "db", "namespace": NS}, "spec": spec}))
        };
        s.pdbs.push(pdb(
            json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}),
        ));
        assert_eq!(causes(&pdbs(&s)), ["pdb-unsatisfiable"]);
        s.pdbs[0] =
            pdb(json!({"maxUnavailable": "0%", "selector": {"matchLabels": {"app": "db"}}}));
        assert_eq!(causes(&pdbs(&s)), ["pdb-unsatisfiable"]);
        s.pdbs[0] = pdb(json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}));
        assert!(pdbs(&s).is_empty());
        s.pdbs[0] = pdb(json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "none"}}}));
        assert!(pdbs(&s).is_empty());
    }
}
