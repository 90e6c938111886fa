//! Pods that are never created: a controller's `FailedCreate` (or a Deployment's
//! `ReplicaFailure` condition) says why the API refused them. The API's own words decide
//! the cause: an exhausted ResourceQuota, a LimitRange, or an admission webhook that
//! denies or cannot be called.

use serde_json::json;

use super::{parse_quantity, template_patch, truncate};
use crate::finding::{Cause, Finding, ObjectRef, ProposedChange};
use crate::snapshot::{
    controller_of, event_line, find_named, in_namespace, name_of, ns_of, Snapshot,
};

/// What an admission refusal says, as a cause.
pub(crate) fn classify_refusal(msg: &str) -> Option<Cause> {
    let m = msg.to_ascii_lowercase();
    if m.contains("exceeded quota") || (m.contains("must specify") && m.contains("quota")) {
        Some(Cause::ResourceQuotaExceeded)
    } else if m.contains("admission webhook") && m.contains("denied the request") {
        Some(Cause::AdmissionWebhookDenied)
    } else if m.contains("failed calling webhook") || m.contains("failed to call webhook") {
        Some(Cause::AdmissionWebhookUnreachable)
    } else if m.contains("usage per container is")
        || m.contains("usage per pod is")
        || m.contains("limit to request ratio per")
    {
        Some(Cause::LimitRangeRejected)
    } else if m.contains("must specify") && (m.contains("limits") || m.contains("requests")) {
        Some(Cause::ResourceQuotaExceeded)
    } else {
        None
    }
}

/// The object a finding about `kind/name`'s pod creations is about: a ReplicaSet's
/// Deployment, a Job's CronJob, else the object itself.
fn top(snap: &Snapshot, kind: &str, ns: &str, name: &str) -> ObjectRef {
    let owner = match kind {
        "ReplicaSet" => {
            find_named(&snap.replicasets, ns, name).and_then(|r| controller_of(&r.metadata))
        }
        "Job" => find_named(&snap.jobs, ns, name).and_then(|r| controller_of(&r.metadata)),
        _ => None,
    };
    match owner {
        Some((k, n)) if matches!(k.as_str(), "Deployment" | "CronJob") => {
            ObjectRef::new(&k, Some(ns), &n)
        }
        _ => ObjectRef::new(kind, Some(ns), name),
    }
}

/// A quoted name after `prefix` in `msg`: `exceeded quota: compute,` → `compute`.
fn name_after(msg: &str, prefix: &str) -> Option<String> {
    let i = msg.find(prefix)? + prefix.len();
    let rest = msg[i..].trim_start().trim_start_matches('"');
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    (!name.is_empty()).then_some(name)
}

pub fn refused_creations(snap: &Snapshot) -> Vec<Finding> {
    // (object, cause) -> finding; one per owner and cause, the newest message as evidence.
    let mut out: Vec<Finding> = Vec::new();
    let mut add = |obj: ObjectRef, msg: &str, line: String, snap: &Snapshot| {
        let Some(cause) = classify_refusal(msg) else {
            return;
        };
        if let Some(f) = out.iter_mut().find(|f| f.object == obj && f.cause == cause) {
            if f.evidence.len() < 6 {
                crate::finding::push_unique(&mut f.evidence, line);
            }
            return;
        }
        out.push(finding(snap, obj, cause, msg, line));
    };
    for e in &snap.events {
        if e.reason.as_deref() != Some("FailedCreate") {
            continue;
        }
        let o = &e.involved_object;
        let (Some(kind), Some(name)) = (o.kind.as_deref(), o.name.as_deref()) else {
            continue;
        };
        if !matches!(
            kind,
            "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicationController"
        ) {
            continue;
        }
        let ns = o
            .namespace
            .as_deref()
            .or(e.metadata.namespace.as_deref())
            .unwrap_or_default();
        let msg = e.message.as_deref().unwrap_or_default();
        add(top(snap, kind, ns, name), msg, event_line(e), snap);
    }
    for d in &snap.deployments {
        for c in d.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
            if c.type_ == "ReplicaFailure" && c.status == "True" {
                let msg = c.message.as_deref().unwrap_or_default();
                let obj =
                    ObjectRef::new("Deployment", Some(ns_of(&d.metadata)), name_of(&d.metadata));
                add(
                    obj,
                    msg,
                    format!(
                        "condition ReplicaFailure: {} {}",
                        c.reason.as_deref().unwrap_or_default(),
                        truncate(msg, 400)
                    ),
                    snap,
                );
            }
        }
    }
    out
}

fn finding(snap: &Snapshot, obj: ObjectRef, cause: Cause, msg: &str, line: String) -> Finding {
    let ns = obj.namespace.clone().unwrap_or_default();
    let what = format!("{} cannot create its pods", obj.kind);
    let mut f = match cause {
        Cause::ResourceQuotaExceeded => Finding::new(
            cause,
            obj.clone(),
            format!("{what}: a ResourceQuota is exhausted"),
        ),
        Cause::LimitRangeRejected => Finding::new(
            cause,
            obj.clone(),
            format!("{what}: a LimitRange rejects their resources"),
        ),
        Cause::AdmissionWebhookDenied => Finding::new(
            cause,
            obj.clone(),
            format!("{what}: an admission webhook denies them"),
        ),
        _ => Finding::new(
            cause,
            obj.clone(),
            format!("{what}: an admission webhook cannot be called (failurePolicy Fail)"),
        ),
    }
    .evidence(truncate(&line, 500));
    match cause {
        Cause::ResourceQuotaExceeded => {
            let named = name_after(msg, "exceeded quota:");
            for q in snap.resource_quotas.iter().filter(|q| {
                ns_of(&q.metadata) == ns
                    && named.as_deref().is_none_or(|n| n == name_of(&q.metadata))
            }) {
                let st = q.status.clone().unwrap_or_default();
                let used = st.used.unwrap_or_default();
                for (r, hard) in st.hard.unwrap_or_default() {
                    let u = used
                        .get(&r)
                        .map(|q| q.0.clone())
                        .unwrap_or_else(|| "0".into());
                    f = f.evidence(format!(
                        "ResourceQuota {}: {r} used {u} of {}",
                        name_of(&q.metadata),
                        hard.0
                    ));
                }
            }
            f.advice(
                format!("Raise the ResourceQuota (kubectl describe resourcequota -n {ns}), lower the pod template's requests/limits, or scale down other workloads in the namespace; with a quota on limits or requests every container must set them."),
            )
        }
        Cause::LimitRangeRejected => {
            for l in in_namespace(&snap.limit_ranges, &ns) {
                f = f.evidence(format!(
                    "LimitRange {} applies in {ns}",
                    name_of(&l.metadata)
                ));
            }
            let change = limit_patch(snap, &obj, msg);
            f.fix(
                "Bring the pod template's requests and limits inside the LimitRange's minimum/maximum (kubectl describe limitrange), or change the LimitRange.",
                change,
            )
        }
        Cause::AdmissionWebhookDenied => {
            if let Some(w) = name_after(msg, "admission webhook") {
                f = f.evidence(format!("webhook: {w}"));
            }
            f.advice(
                "Change the pod template to satisfy the policy the webhook enforces (its message says what), or change the policy; kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations shows who owns it.",
            )
        }
        _ => {
            if let Some(w) = name_after(msg, "failed calling webhook") {
                f = f.evidence(format!("webhook: {w}"));
            }
            f.advice(
                "Restore the webhook's backend (its Service, endpoints and certificate), or, if the webhook is gone for good, delete its ValidatingWebhookConfiguration/MutatingWebhookConfiguration or narrow it with a namespaceSelector; with failurePolicy Fail every matching request fails while it is unreachable.",
            )
        }
    }
}

/// `maximum cpu usage per Container is 1, but limit is 2`: when the template has one
/// container and its request fits, lower its limit to the LimitRange's maximum.
fn limit_patch(snap: &Snapshot, obj: &ObjectRef, msg: &str) -> Option<ProposedChange> {
    let i = msg.find("maximum ")?;
    let rest = &msg[i + "maximum ".len()..];
    let resource = rest.split_whitespace().next()?;
    if !matches!(resource, "cpu" | "memory") || !rest.contains("per Container is ") {
        return None;
    }
    let max = rest
        .split("per Container is ")
        .nth(1)?
        .split(',')
        .next()?
        .trim()
        .to_string();
    let ns = obj.namespace.as_deref().unwrap_or_default();
    let template = match obj.kind.as_str() {
        "Deployment" => find_named(&snap.deployments, ns, &obj.name)
            .and_then(|d| d.spec.as_ref()?.template.spec.clone()),
        "StatefulSet" => find_named(&snap.statefulsets, ns, &obj.name)
            .and_then(|d| d.spec.as_ref()?.template.spec.clone()),
        _ => None,
    }?;
    let [c] = template.containers.as_slice() else {
        return None;
    };
    let request = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get(resource))
        .and_then(|q| parse_quantity(&q.0));
    let max_v = parse_quantity(&max)?;
    if request.is_some_and(|r| r > max_v) {
        return None;
    }
    let patch = template_patch(
        &obj.kind,
        json!({"containers": [{"name": c.name, "resources": {"limits": {resource: max}}}]}),
    )?;
    Some(ProposedChange {
        kind: obj.kind.clone(),
        namespace: obj.namespace.clone(),
        name: obj.name.clone(),
        patch_type: "strategic".into(),
        patch,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rules::testutil::*;

    #[test]
    fn refusals_in_the_api_wordings() {
        let c = |m| classify_refusal(m);
        assert_eq!(c("Error creating: pods \"web-6d4-x\" is forbidden: exceeded quota: compute, requested: requests.cpu=2, used: requests.cpu=0, limited: requests.cpu=1"), Some(Cause::ResourceQuotaExceeded));
        assert_eq!(c("Error creating: pods \"web-6d4-x\" is forbidden: failed quota: compute: must specify limits.cpu,limits.memory"), Some(Cause::ResourceQuotaExceeded));
        assert_eq!(c("Error creating: pods \"web-6d4-x\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"), Some(Cause::LimitRangeRejected));
        assert_eq!(c("Error creating: admission webhook \"policy.example.com\" denied the request: images must come from registry.example.com"), Some(Cause::AdmissionWebhookDenied));
        assert_eq!(c("Error creating: Internal error occurred: failed calling webhook \"policy.example.com\": Post \"https://policy.sys.svc:443/validate?timeout=10s\": context deadline exceeded"), Some(Cause::AdmissionWebhookUnreachable));
        assert_eq!(c("Error creating: Internal error occurred: failed calling webhook \"x\": failed to call webhook: Post \"https://x.sys.svc:443/\": service \"x\" not found"), Some(Cause::AdmissionWebhookUnreachable));
        assert_eq!(c("Error creating: pods is forbidden: unable to validate against any pod security policy"), None);
    }

    #[test]
    fn replica_set_failed_create_is_reported_on_its_deployment_with_a_limit_patch() {
        let mut s = snap();
        add_deployment(
            &mut s,
            "web",
            1,
            json!({"containers": [container("app", json!({"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "2"}}}))]}),
        );
        s.events.push(event("ReplicaSet", "web-rs", "Warning", "FailedCreate", "Error creating: pods \"web-rs-abc\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"));
        let f = refused_creations(&s);
        assert_eq!(causes(&f), ["limit-range-rejected"]);
        assert_eq!(f[0].object, ObjectRef::new("Deployment", Some(NS), "web"));
        let p = &f[0].fix.change.as_ref().unwrap().patch;
        assert_eq!(
            p["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            json!("1")
        );
    }
}
