//! CronJobs that start nothing (suspended, or missing their start times) and StatefulSets
//! whose ordered rollout is stuck on one pod.

use serde_json::json;

use super::pods::diagnose_pod;
use super::{container_statuses, truncate};
use crate::finding::{Cause, Finding, ObjectRef, ProposedChange};
use crate::snapshot::{controller_of, event_line, name_of, ns_of, with_spec, Snapshot};

/// Pods younger than this are still starting: a StatefulSet waiting on them is not stuck.
const STS_GRACE_SECS: i64 = 30;

pub fn cronjobs(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for cj in &snap.cronjobs {
        let ns = ns_of(&cj.metadata);
        let name = name_of(&cj.metadata);
        let obj = ObjectRef::new("CronJob", Some(ns), name);
        let Some(spec) = cj.spec.as_ref() else {
            continue;
        };
        let last = cj
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.as_ref())
            .map(|t| t.0.to_string());
        if spec.suspend == Some(true) {
            let mut f = Finding::new(
                Cause::CronJobSuspended,
                obj,
                format!(
                    "CronJob {name} is suspended: no Job starts on schedule {:?}",
                    spec.schedule
                ),
            )
            .evidence("spec.suspend: true");
            f = f.evidence(match &last {
                Some(t) => format!("last scheduled: {t}"),
                None => "never scheduled".to_string(),
            });
            out.push(f.fix(
                format!("Resume it if the suspension is not deliberate: kubectl patch cronjob {name} -n {ns} -p '{{\"spec\":{{\"suspend\":false}}}}' (the proposed change)."),
                Some(ProposedChange::merge("CronJob", ns, name, json!({"spec": {"suspend": false}}))),
            ));
            continue;
        }
        // The controller's words: v1 (1.21+) "MissSchedule"/"Missed scheduled time to start
        // a job", v1beta1 (≤1.20) "FailedNeedsStart"/"too many missed start times".
        let missed: Vec<_> = snap
            .events_for("CronJob", ns, name)
            .into_iter()
            .filter(|e| {
                let r = e.reason.as_deref().unwrap_or_default();
                let m = e
                    .message
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                r == "MissSchedule"
                    || r == "FailedNeedsStart"
                    || m.contains("missed start time")
                    || m.contains("missed scheduled time")
            })
            .collect();
        if missed.is_empty() {
            continue;
        }
        let mut f = Finding::new(
            Cause::CronJobMissedDeadline,
            obj,
            format!("CronJob {name} misses its scheduled starts"),
        );
        for e in missed.iter().rev().take(2) {
            f = f.evidence(truncate(&event_line(e), 400));
        }
        f = f.evidence(match spec.starting_deadline_seconds {
            Some(s) => format!("startingDeadlineSeconds: {s}"),
            None => "no startingDeadlineSeconds: after 100 missed starts the controller gives up"
                .to_string(),
        });
        if let Some(t) = &last {
            f = f.evidence(format!("last scheduled: {t}"));
        }
        if spec.concurrency_policy.as_deref() == Some("Forbid") {
            f = f.evidence("concurrencyPolicy: Forbid (a running Job blocks the next start)");
        }
        out.push(f.advice(
            "Set a startingDeadlineSeconds that fits the schedule (e.g. 200), and find why Jobs could not start in time: the controller was down, the clock jumped, or a long Job blocks with concurrencyPolicy Forbid.",
        ));
    }
    out
}

pub fn statefulsets(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for (sts, ns, name, spec) in with_spec(&snap.statefulsets, |sts| sts.spec.as_ref()) {
        if spec.pod_management_policy.as_deref() == Some("Parallel") {
            continue;
        }
        let want = spec.replicas.unwrap_or(1);
        let status = sts.status.clone().unwrap_or_default();
        let ready = status.ready_replicas.unwrap_or(0);
        if ready >= want {
            continue;
        }
        let pods: Vec<_> = snap
            .pods
            .iter()
            .filter(|p| {
                ns_of(&p.metadata) == ns
                    && controller_of(&p.metadata) == Some(("StatefulSet".into(), name.into()))
            })
            .collect();
        // The lowest ordinal that is not ready blocks every ordinal after it.
        let mut stuck = None;
        for i in 0..want {
            let pname = format!("{name}-{i}");
            match pods.iter().find(|p| name_of(&p.metadata) == pname) {
                Some(p) if super::pods::pod_ready(p) => continue,
                Some(p) => {
                    stuck = Some((i, pname, Some(*p)));
                    break;
                }
                None => {
                    stuck = Some((i, pname, None));
                    break;
                }
            }
        }
        let Some((ordinal, pname, pod)) = stuck else {
            continue;
        };
        let Some(pod) = pod else {
            // Not created yet: the controller is on its way (or another finding says why).
            continue;
        };
        if snap
            .age_secs(pod.metadata.creation_timestamp.as_ref())
            .is_some_and(|a| a < STS_GRACE_SECS)
        {
            continue;
        }
        // A pod with a cause of its own is explained by that finding.
        if diagnose_pod(snap, pod).is_some_and(|i| i.cause != Cause::Unknown) {
            continue;
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        let mut f = Finding::new(
            Cause::StatefulSetStuck,
            ObjectRef::new("StatefulSet", Some(ns), name),
            format!("StatefulSet {name} is stuck at {ready}/{want} ready: pod {pname} never becomes ready, so ordinals after {ordinal} are not started"),
        )
        .evidence(format!("pod {pname} is {phase} and not ready"))
        .evidence(format!(
            "replicas: {want} desired, {} created, {ready} ready",
            status.replicas
        ));
        for c in container_statuses(pod) {
            if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
                f = f.evidence(format!(
                    "container {:?} waiting: {} {}",
                    c.name,
                    w.reason.as_deref().unwrap_or_default(),
                    w.message.as_deref().unwrap_or_default()
                ));
            } else if !c.ready {
                f = f.evidence(format!("container {:?} is running but not ready", c.name));
            }
        }
        for v in pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter_map(|v| v.persistent_volume_claim.as_ref())
        {
            let phase = snap
                .pvc(ns, &v.claim_name)
                .and_then(|c| c.status.as_ref()?.phase.clone())
                .unwrap_or_else(|| "missing".into());
            f = f.evidence(format!("claim {} is {phase}", v.claim_name));
        }
        if status.current_revision.is_some() && status.update_revision != status.current_revision {
            f = f.evidence(format!(
                "rolling update from {} to {} in progress",
                status.current_revision.clone().unwrap_or_default(),
                status.update_revision.clone().unwrap_or_default()
            ));
        }
        out.push(f.advice(
            format!("Find why pod {pname} is not ready (kubectl describe pod {pname} -n {ns}; its claim, its probes); once the template is fixed, delete {pname} so the StatefulSet recreates it from the new revision (OrderedReady does not replace a broken pod by itself)."),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rules::testutil::*;

    #[test]
    fn suspended_and_missed_cronjobs() {
        let mut s = snap();
        s.cronjobs.push(obj(json!({"metadata": {"name": "report", "namespace": NS},
            "spec": {"schedule": "0 * * * *", "suspend": true, "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}})));
        let f = cronjobs(&s);
        assert_eq!(causes(&f), ["cronjob-suspended"]);
        assert_eq!(
            f[0].fix.change.as_ref().unwrap().patch,
            json!({"spec": {"suspend": false}})
        );
        s.cronjobs[0] = obj(json!({"metadata": {"name": "report", "namespace": NS},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}));
        s.events.push(event("CronJob", "report", "Warning", "FailedNeedsStart", "Cannot determine if job needs to be started: too many missed start times (> 100). Set or decrease .spec.startingDeadlineSeconds or check clock skew."));
        assert_eq!(causes(&cronjobs(&s)), ["cronjob-missed-deadline"]);
    }

    #[test]
    fn statefulset_stuck_on_its_first_ordinal() {
        let mut s = snap();
        s.statefulsets.push(obj(json!({"metadata": {"name": "db", "namespace": NS},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [container("db", json!({}))]}}},
            "status": {"replicas": 1, "readyReplicas": 0}})));
        let mut p = pod(
            "db-0",
            "db",
            json!({"containers": [container("db", json!({}))]}),
            pod_status("Running", vec![running("db", false, 0)]),
        );
        p.metadata.owner_references = Some(vec![obj(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u", "controller": true}),
        )]);
        s.pods.push(p);
        let f = statefulsets(&s);
        assert_eq!(causes(&f), ["statefulset-stuck"]);
        assert!(evidence_has(&f[0], "pod db-0 is Running and not ready"));
    }
}
