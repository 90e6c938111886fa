//! Controller-level causes: stuck Deployment rollouts, failed Jobs, ReplicaSets that
//! cannot create pods.

use k8s_openapi::api::batch::v1::Job;

use super::{container_statuses, log_excerpt, truncate};
use crate::finding::{Cause, Finding, ObjectRef};
use crate::snapshot::{controller_of, name_of, ns_of, Snapshot};

pub fn rollout_stuck(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in &snap.deployments {
        let Some(spec) = d.spec.as_ref() else {
            continue;
        };
        if spec.paused == Some(true) {
            continue;
        }
        let status = d.status.clone().unwrap_or_default();
        let want = spec.replicas.unwrap_or(1);
        let updated = status.updated_replicas.unwrap_or(0);
        let available = status.available_replicas.unwrap_or(0);
        let progressing = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Progressing");
        let exceeded = progressing.is_some_and(|c| {
            c.status == "False" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        // Only the controller's own verdict counts: while Progressing is still True the
        // rollout may yet complete, and another finding explains its pods meanwhile.
        let deadline = i64::from(spec.progress_deadline_seconds.unwrap_or(600));
        if !exceeded {
            continue;
        }
        let ns = ns_of(&d.metadata);
        let name = name_of(&d.metadata);
        let mut f = Finding::new(
            Cause::RolloutStuck,
            ObjectRef::new("Deployment", Some(ns), name),
            format!("rollout stopped progressing: {updated}/{want} updated, {available}/{want} available after {deadline}s"),
        );
        if let Some(c) = progressing {
            f = f.evidence(format!(
                "condition Progressing={}: {} {}",
                c.status,
                c.reason.as_deref().unwrap_or_default(),
                c.message.as_deref().unwrap_or_default()
            ));
        }
        f = f.evidence(format!(
            "replicas: {want} desired, {updated} updated, {available} available, {} unavailable",
            status.unavailable_replicas.unwrap_or(0)
        ));
        f.count = u32::try_from(
            status
                .unavailable_replicas
                .unwrap_or(want - available)
                .max(0),
        )
        .unwrap_or(0);
        out.push(f.advice(
            format!("Find why the new pods never become available (see the other findings for this Deployment, or kubectl describe the new ReplicaSet's pods); to restore service meanwhile: kubectl rollout undo deployment/{name} -n {ns}."),
        ));
    }
    out
}

fn job_failed_condition(job: &Job) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

pub fn job_backoff_limit(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for job in &snap.jobs {
        let ns = ns_of(&job.metadata);
        let name = name_of(&job.metadata);
        let status = job.status.clone().unwrap_or_default();
        let limit = job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(6);
        let failed = status.failed.unwrap_or(0);
        let cond = job_failed_condition(job);
        let backoff = match &cond {
            Some((reason, _)) => reason == "BackoffLimitExceeded",
            None => {
                failed > limit
                    && status.active.unwrap_or(0) == 0
                    && status.succeeded.unwrap_or(0) == 0
            }
        };
        if !backoff {
            continue;
        }
        let mut f = Finding::new(
            Cause::JobBackoffLimit,
            ObjectRef::new("Job", Some(ns), name),
            format!("Job failed: {failed} pod(s) failed, backoffLimit is {limit}"),
        );
        if let Some((reason, msg)) = &cond {
            f = f.evidence(format!("condition Failed: {reason}: {msg}"));
        }
        // The failed pods' exit codes and log lines say why each attempt failed.
        for pod in snap.pods.iter().filter(|p| {
            ns_of(&p.metadata) == ns
                && controller_of(&p.metadata) == Some(("Job".to_string(), name.to_string()))
        }) {
            for cs in container_statuses(pod) {
                let term = cs
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .or_else(|| cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()));
                if let Some(t) = term.filter(|t| t.exit_code != 0) {
                    f = f.evidence(format!(
                        "container {:?} exited with code {} ({})",
                        cs.name,
                        t.exit_code,
                        t.reason.as_deref().unwrap_or("Error")
                    ));
                }
                let key = (
                    ns.to_string(),
                    name_of(&pod.metadata).to_string(),
                    cs.name.clone(),
                );
                for l in snap
                    .previous_logs
                    .get(&key)
                    .map(|l| log_excerpt(l, 3))
                    .unwrap_or_default()
                {
                    if f.evidence.len() < 10 {
                        f = f.evidence(l);
                    }
                }
            }
        }
        f.count = u32::try_from(failed.max(0)).unwrap_or(0);
        out.push(f.advice(
            format!("Fix the error the failed pods log, then re-run the Job (its pod template is immutable: kubectl delete job {name} -n {ns} and apply it again); raise backoffLimit only for flaky, retryable failures."),
        ));
    }
    out
}

/// A ReplicaSet/Deployment that cannot create pods at all (quota, admission, PSP).
pub fn replica_failure(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in &snap.deployments {
        for c in d.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
            if c.type_ == "ReplicaFailure"
                && c.status == "True"
                && super::admission::classify_refusal(c.message.as_deref().unwrap_or_default())
                    .is_none()
            {
                let f = Finding::new(
                    Cause::Unknown,
                    ObjectRef::new("Deployment", Some(ns_of(&d.metadata)), name_of(&d.metadata)),
                    "the ReplicaSet cannot create pods",
                )
                .evidence(format!(
                    "condition ReplicaFailure: {} {}",
                    c.reason.as_deref().unwrap_or_default(),
                    truncate(c.message.as_deref().unwrap_or_default(), 400)
                ));
                out.push(f.advice("Read the condition message: usually a ResourceQuota, LimitRange or admission policy rejects the pods."));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::*;
    use serde_json::json;

    fn deploy(cond: serde_json::Value, deadline: i32) -> k8s_openapi::api::apps::v1::Deployment {
        obj(json!({"metadata": {"name": "web", "namespace": NS},
            "spec": {"replicas": 2, "progressDeadlineSeconds": deadline, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container("app", json!({}))]}}},
            "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 0, "unavailableReplicas": 2,
                "conditions": [cond]}}))
    }

    #[test]
    fn deadline_exceeded_condition() {
        let mut s = snap();
        s.deployments.push(deploy(json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"web-5d8f\" has timed out progressing.", "lastUpdateTime": ago(5)}), 10));
        let f = rollout_stuck(&s);
        assert_eq!(causes(&f), ["rollout-stuck"]);
        assert!(evidence_has(&f[0], "has timed out progressing"));
        assert_eq!(f[0].count, 2);
    }

    #[test]
    fn no_rollout_stuck_while_progressing_is_true() {
        // However long ago the last progress was: the controller has not given up.
        let cond = |secs| json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "lastUpdateTime": ago(secs)});
        for secs in [5, 120, 86_400] {
            let mut s = snap();
            s.deployments.push(deploy(cond(secs), 30));
            assert!(rollout_stuck(&s).is_empty(), "{secs}");
        }
    }

    #[test]
    fn job_backoff_with_logs() {
        let mut s = snap();
        s.jobs.push(obj(json!({"metadata": {"name": "migrate", "namespace": NS},
            "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [container("migrate", json!({}))]}}},
            "status": {"failed": 2, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}})));
        let mut p = pod(
            "migrate-abc",
            "migrate",
            json!({"containers": [container("migrate", json!({}))]}),
            json!({"phase": "Failed", "containerStatuses": [{"name": "migrate", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
        );
        p.metadata.owner_references = Some(vec![obj(
            json!({"apiVersion": "batch/v1", "kind": "Job", "name": "migrate", "uid": "j", "controller": true}),
        )]);
        s.pods.push(p);
        s.previous_logs.insert(
            (NS.into(), "migrate-abc".into(), "migrate".into()),
            "applying 0042_add_index\nERROR: relation \"users\" does not exist\n".into(),
        );
        let f = job_backoff_limit(&s);
        assert_eq!(causes(&f), ["job-backoff-limit"]);
        assert!(evidence_has(&f[0], "relation \"users\" does not exist"));
        assert!(evidence_has(&f[0], "BackoffLimitExceeded"));
        // The failed Job pod itself is not reported a second time.
        assert!(crate::rules::run_all(&s)
            .iter()
            .all(|f| f.cause == Cause::JobBackoffLimit));
    }

    #[test]
    fn running_or_succeeded_job_is_fine() {
        let mut s = snap();
        s.jobs.push(obj(json!({"metadata": {"name": "ok", "namespace": NS},
            "spec": {"backoffLimit": 1, "template": {"spec": {"containers": [container("x", json!({}))]}}},
            "status": {"failed": 1, "active": 1}})));
        assert!(job_backoff_limit(&s).is_empty());
    }
}
