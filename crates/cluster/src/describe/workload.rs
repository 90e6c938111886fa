//! Rendering a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job): its
//! replica counts, selector, conditions, ReplicaSets, pod template, pods and events.
//! Pure: the object, its pods, ReplicaSets and events were read in [`super::read`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::Metadata;
use kai_analyze::owners::{owned_by, revision_of, REVISION};
use kai_analyze::selector::Selector;
use serde_json::Value;

use super::common::{events_section, events_where, header, or_none};
use super::pod::{container_block, volumes_block};
use super::read::WorkloadRead;
use super::MAX_PODS;
use crate::objects;

/// What a describe shows of any workload kind: its own lines, then the parts every kind
/// has in the same place.
pub(super) struct WorkloadView {
    pub(super) meta: ObjectMeta,
    lines: Vec<String>,
    pub(super) selector: Option<LabelSelector>,
    template: Option<PodTemplateSpec>,
    conditions: Vec<(String, String, Option<String>, Option<String>)>,
}

/// Every workload kind keeps `spec.selector`, `spec.template` and `status.conditions`
/// (type, status, reason, message) under the same names: read once here, not per kind.
fn view_of<T>(obj: &T, lines: Vec<String>) -> WorkloadView
where
    T: Metadata<Ty = ObjectMeta> + serde::Serialize,
{
    let v = serde_json::to_value(obj).unwrap_or_default();
    let conditions = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
            (
                s("type").unwrap_or_default(),
                s("status").unwrap_or_default(),
                s("reason"),
                s("message"),
            )
        })
        .collect();
    WorkloadView {
        meta: obj.metadata().clone(),
        lines,
        selector: at(&v, "/spec/selector"),
        template: at(&v, "/spec/template"),
        conditions,
    }
}

/// "Replicas: 3 desired, 2 ready": a status line of counts, each with what it counts.
fn counts(title: &str, counts: &[(i32, &str)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    format!("{title}: {}", parts.join(", "))
}

fn at<T: serde::de::DeserializeOwned>(v: &Value, path: &str) -> Option<T> {
    v.pointer(path)
        .cloned()
        .and_then(|x| serde_json::from_value(x).ok())
}

pub(super) fn deployment(d: &Deployment) -> WorkloadView {
    let spec = d.spec.clone().unwrap_or_default();
    let st = d.status.clone().unwrap_or_default();
    let strategy = spec
        .strategy
        .as_ref()
        .and_then(|s| s.type_.clone())
        .unwrap_or_else(|| "RollingUpdate".into());
    view_of(
        d,
        vec![
            counts(
                "Replicas",
                &[
                    (spec.replicas.unwrap_or(1), "desired"),
                    (st.updated_replicas.unwrap_or(0), "updated"),
                    (st.replicas.unwrap_or(0), "total"),
                    (st.ready_replicas.unwrap_or(0), "ready"),
                    (st.available_replicas.unwrap_or(0), "available"),
                    (st.unavailable_replicas.unwrap_or(0), "unavailable"),
                ],
            ),
            format!(
                "Strategy: {strategy}{}",
                if spec.paused == Some(true) {
                    " (paused)"
                } else {
                    ""
                }
            ),
            format!(
                "Revision: {}",
                d.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(REVISION))
                    .cloned()
                    .unwrap_or_default()
            ),
        ],
    )
}

pub(super) fn stateful_set(d: &StatefulSet) -> WorkloadView {
    let spec = d.spec.clone().unwrap_or_default();
    let st = d.status.clone().unwrap_or_default();
    view_of(
        d,
        vec![
            counts(
                "Replicas",
                &[
                    (spec.replicas.unwrap_or(1), "desired"),
                    (st.current_replicas.unwrap_or(0), "current"),
                    (st.ready_replicas.unwrap_or(0), "ready"),
                    (st.updated_replicas.unwrap_or(0), "updated"),
                ],
            ),
            format!(
                "Service name: {}",
                spec.service_name.clone().unwrap_or_default()
            ),
            format!(
                "Volume claim templates: {}",
                spec.volume_claim_templates
                    .iter()
                    .flatten()
                    .filter_map(|p| p.metadata.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ],
    )
}

pub(super) fn daemon_set(d: &DaemonSet) -> WorkloadView {
    let st = d.status.clone().unwrap_or_default();
    view_of(
        d,
        vec![counts(
            "Nodes",
            &[
                (st.desired_number_scheduled, "desired"),
                (st.current_number_scheduled, "scheduled"),
                (st.number_ready, "ready"),
                (st.updated_number_scheduled.unwrap_or(0), "up to date"),
                (st.number_available.unwrap_or(0), "available"),
                (st.number_misscheduled, "misscheduled"),
            ],
        )],
    )
}

pub(super) fn replica_set(d: &ReplicaSet) -> WorkloadView {
    let spec = d.spec.clone().unwrap_or_default();
    let st = d.status.clone().unwrap_or_default();
    view_of(
        d,
        vec![counts(
            "Replicas",
            &[
                (spec.replicas.unwrap_or(1), "desired"),
                (st.replicas, "current"),
                (st.ready_replicas.unwrap_or(0), "ready"),
                (st.available_replicas.unwrap_or(0), "available"),
            ],
        )],
    )
}

pub(super) fn job(d: &Job) -> WorkloadView {
    let spec = d.spec.clone().unwrap_or_default();
    let st = d.status.clone().unwrap_or_default();
    view_of(
        d,
        vec![
            format!(
                "Completions: {}/{} succeeded, {} active, {} failed (backoffLimit {})",
                st.succeeded.unwrap_or(0),
                spec.completions.unwrap_or(1),
                st.active.unwrap_or(0),
                st.failed.unwrap_or(0),
                spec.backoff_limit.unwrap_or(6)
            ),
            format!("Parallelism: {}", spec.parallelism.unwrap_or(1)),
        ],
    )
}

pub(super) fn render(r: WorkloadRead, k: &str, name: &str) -> String {
    let WorkloadRead {
        view_,
        selector,
        chain,
        pods,
        rs_list,
        evs,
    } = r;
    let sel = selector
        .as_ref()
        .map(Selector::to_string)
        .unwrap_or_default();
    let uid = view_.meta.uid.clone().unwrap_or_default();
    // Pods matched by the selector but owned by something else are not this workload's.
    // Without the ReplicaSets a Deployment's pods cannot be told from others: all the
    // selector's pods are shown, and the section says why.
    let rs_unread = rs_list.as_ref().err().cloned();
    let rs_list = rs_list.unwrap_or_default();
    let rs_names: BTreeSet<String> = rs_list
        .iter()
        .filter(|rs| owned_by(&rs.metadata, &uid))
        .filter_map(|rs| rs.metadata.name.clone())
        .collect();
    let pods: Vec<Pod> = pods
        .into_iter()
        .filter(|p| {
            let owners = p.metadata.owner_references.as_ref();
            match owners.and_then(|o| o.iter().find(|r| r.controller == Some(true))) {
                Some(_) if k == "Deployment" && rs_unread.is_some() => true,
                Some(o) if k == "Deployment" => rs_names.contains(&o.name),
                Some(o) => o.uid == uid,
                None => true,
            }
        })
        .collect();

    let mut out = String::new();
    header(&mut out, k, &view_.meta);
    if !chain.is_empty() {
        w!(out, "Controlled by: {chain}");
    }
    for l in &view_.lines {
        w!(out, "{l}");
    }
    w!(out, "Selector: {}", or_none(&sel));
    if !view_.conditions.is_empty() {
        w!(out, "Conditions:");
        for (t, s, r, m) in &view_.conditions {
            w!(
                out,
                "  {t}={s} {}{}",
                r.clone().unwrap_or_default(),
                m.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
            );
        }
    }
    if let Some(e) = &rs_unread {
        w!(
            out,
            "ReplicaSets: could not be listed ({e}); the pods below are all those the selector matches"
        );
    }
    if !rs_list.is_empty() {
        let mut owned: Vec<&ReplicaSet> = rs_list
            .iter()
            .filter(|rs| {
                rs.metadata
                    .name
                    .as_ref()
                    .is_some_and(|n| rs_names.contains(n))
            })
            .collect();
        owned.sort_by_key(|rs| std::cmp::Reverse(revision(rs)));
        w!(out, "ReplicaSets (newest first):");
        for rs in owned.iter().take(4) {
            let img = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.clone())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let st = rs.status.clone().unwrap_or_default();
            w!(
                out,
                "  {} (revision {}): {}/{} ready, image {img}",
                rs.metadata.name.clone().unwrap_or_default(),
                revision(rs),
                st.ready_replicas.unwrap_or(0),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
            );
        }
    }
    if let Some(t) = &view_.template {
        w!(out, "Pod template:");
        if let Some(spec) = &t.spec {
            for c in spec.init_containers.iter().flatten() {
                w!(out, "  init container:");
                container_block(&mut out, c, None, "    ");
            }
            for c in &spec.containers {
                container_block(&mut out, c, None, "  ");
            }
            volumes_block(&mut out, spec, "  ");
        }
    }
    pods_section(&mut out, &pods);
    let evs = match evs {
        Ok(evs) => evs,
        Err(e) => {
            w!(out, "Events: could not be read ({e})");
            return out;
        }
    };
    // The workload's own events and its ReplicaSets' (scaling, FailedCreate) together.
    events_where(
        &mut out,
        &evs,
        |e| {
            let (ek, en) = (
                e.involved_object.kind.as_deref(),
                e.involved_object.name.as_deref().unwrap_or(""),
            );
            (ek == Some(k) && en == name) || (ek == Some("ReplicaSet") && rs_names.contains(en))
        },
        true,
        "Events",
    );
    let pod_names: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let warnings: Vec<Event> = evs
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .collect();
    if !pod_names.is_empty() {
        events_section(
            &mut out,
            &warnings,
            "Pod",
            &pod_names,
            true,
            "Warning events of its pods",
        );
    }
    out
}

fn revision(rs: &ReplicaSet) -> i64 {
    revision_of(&rs.metadata).unwrap_or(0)
}

/// Pods by state, then one line per pod (problem pods first).
fn pods_section(out: &mut String, pods: &[Pod]) {
    if pods.is_empty() {
        w!(out, "Pods: none");
        return;
    }
    let mut rows: Vec<(bool, String)> = pods
        .iter()
        .map(|p| {
            let (ready, status, restarts) = objects::pod_summary(p);
            let healthy = status == "Running" && ready.split_once('/').is_some_and(|(a, b)| a == b);
            let last = p
                .status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
                .filter_map(|cs| {
                    let t = cs.last_state.as_ref()?.terminated.as_ref()?;
                    Some(format!(
                        "; {} last terminated {} (exit code {})",
                        cs.name,
                        t.reason.clone().unwrap_or_default(),
                        t.exit_code
                    ))
                })
                .collect::<String>();
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| "<none>".into());
            (
                healthy,
                format!(
                    "  {} {ready} {status}, restarts {restarts}, node {node}{last}",
                    p.metadata.name.clone().unwrap_or_default()
                ),
            )
        })
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in pods {
        *counts.entry(objects::pod_summary(p).1).or_default() += 1;
    }
    w!(
        out,
        "Pods ({}): {}",
        pods.len(),
        counts
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    rows.sort_by_key(|(healthy, _)| *healthy);
    for (_, line) in rows.iter().take(MAX_PODS) {
        w!(out, "{line}");
    }
    if rows.len() > MAX_PODS {
        w!(
            out,
            "  … {} more pods; use list_resources kind=pods with the selector above",
            rows.len() - MAX_PODS
        );
    }
}

// ---------------------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A workload renders from what was read, without a cluster: the kind's own lines,
    /// the selector, template and conditions found by [`view_of`], the pods it owns.
    #[test]
    fn deployment_renders_from_read_data() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "backend", "namespace": "shop", "uid": "u-1",
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 2,
                     "selector": {"matchLabels": {"app": "backend"}},
                     "template": {"metadata": {"labels": {"app": "backend"}},
                                  "spec": {"containers": [{"name": "app", "image": "backend:1.4.2"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1, "conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                 "message": "Deployment does not have minimum availability."},
                {"type": "Progressing", "status": "True"}
            ]}
        }))
        .unwrap();
        let view_ = deployment(&d);
        let stranger: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "other-1", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "other-rs",
                 "uid": "u-9", "controller": true}]}
        }))
        .unwrap();
        let r = WorkloadRead {
            selector: view_
                .selector
                .as_ref()
                .and_then(kai_analyze::selector::workload_selector),
            view_,
            chain: String::new(),
            pods: vec![stranger],
            rs_list: Ok(Vec::new()),
            evs: Ok(Vec::new()),
        };
        let out = render(r, "Deployment", "backend");
        assert!(out.starts_with("Deployment: backend\n"), "{out}");
        // A pod the selector matched but another ReplicaSet controls is not this one's:
        // "Pods: none", and other-1 nowhere.
        for want in [
            "Replicas: 2 desired, 0 updated, 2 total, 1 ready",
            "Revision: 3\n",
            "Selector: app=backend\n",
            "  Available=False MinimumReplicasUnavailable: Deployment does not have minimum availability.\n",
            "  Progressing=True \n",
            "Pod template:\n  app:\n    Image: backend:1.4.2\n",
            "Pods: none\n",
            "Events: <none>",
        ] {
            assert!(out.contains(want), "{want:?} missing from:\n{out}");
        }
        assert!(!out.contains("other-1"), "{out}");
    }
}
