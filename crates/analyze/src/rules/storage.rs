//! PersistentVolumeClaims that never bind.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};

use super::{names, truncate};
use crate::finding::{Cause, Finding, ObjectRef};
use crate::snapshot::{event_line, in_namespace, name_of, ns_of, Snapshot};

const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";

/// Whether pod `p` mounts PersistentVolumeClaim `claim` (of its own namespace).
pub(crate) fn uses_pvc(p: &Pod, claim: &str) -> bool {
    p.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == claim)
        })
}

fn pods_using<'a>(snap: &'a Snapshot, pvc: &PersistentVolumeClaim) -> Vec<&'a str> {
    let ns = ns_of(&pvc.metadata);
    let name = name_of(&pvc.metadata);
    in_namespace(&snap.pods, ns)
        .filter(|p| uses_pvc(p, name))
        .map(|p| name_of(&p.metadata))
        .collect()
}

pub fn pvcs(snap: &Snapshot) -> Vec<Finding> {
    let classes_known = !snap.is_forbidden("storageclasses");
    let class_names = names(&snap.storageclasses);
    let has_default = snap.storageclasses.iter().any(|c| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DEFAULT_CLASS))
            .is_some_and(|v| v == "true")
    });
    let mut out = Vec::new();
    for pvc in &snap.pvcs {
        let phase = pvc
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        if phase != "Pending" {
            continue;
        }
        let ns = ns_of(&pvc.metadata);
        let name = name_of(&pvc.metadata);
        let events = snap.events_for("PersistentVolumeClaim", ns, name);
        let ev_text: Vec<String> = events.iter().map(|e| event_line(e)).collect();
        if events
            .iter()
            .any(|e| e.reason.as_deref() == Some("WaitForFirstConsumer"))
            && pods_using(snap, pvc).is_empty()
        {
            // Binding is deferred until a pod uses the claim: that is by design.
            continue;
        }
        let class = pvc
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref());
        let class_missing = match class {
            Some("") => None,
            Some(c) => {
                let by_event = ev_text
                    .iter()
                    .any(|e| e.contains(&format!("storageclass.storage.k8s.io \"{c}\" not found")));
                let by_list = classes_known && !class_names.contains(&c);
                (by_event || by_list).then(|| format!("StorageClass \"{c}\" does not exist"))
            }
            None => {
                let by_event = ev_text
                    .iter()
                    .any(|e| e.contains("no storage class is set"));
                let by_list = classes_known && !has_default;
                (by_event || by_list).then(|| {
                    "no storageClassName is set and the cluster has no default StorageClass"
                        .to_string()
                })
            }
        };
        let pods = pods_using(snap, pvc);
        let mut f = match &class_missing {
            Some(why) => Finding::new(
                Cause::PvcNoStorageClass,
                ObjectRef::new("PersistentVolumeClaim", Some(ns), name),
                format!("claim stays Pending: {why}"),
            )
            .evidence(why.clone()),
            None => Finding::new(
                Cause::UnboundPvc,
                ObjectRef::new("PersistentVolumeClaim", Some(ns), name),
                "claim stays Pending: no volume has been bound or provisioned",
            ),
        };
        for e in ev_text.iter().rev().take(3) {
            f = f.evidence(truncate(e, 400));
        }
        if classes_known && class_missing.is_some() {
            f = f.evidence(format!(
                "existing StorageClasses: {}",
                if class_names.is_empty() {
                    "none".to_string()
                } else {
                    class_names.join(", ")
                }
            ));
        }
        if !pods.is_empty() {
            f = f.evidence(format!("pods waiting for it: {}", pods.join(", ")));
        }
        f = f.affecting(pods.len());
        let fix = if class_missing.is_some() {
            // storageClassName is immutable on a claim: it has to be re-created.
            let suggestion = match class_names.as_slice() {
                [] => "create a StorageClass (or install a provisioner)".to_string(),
                some => format!(
                    "re-create the claim with storageClassName one of: {}",
                    some.join(", ")
                ),
            };
            format!("The claim's class cannot be provisioned: {suggestion}; storageClassName cannot be changed on an existing claim, so delete and re-apply it (data: none yet, it never bound).")
        } else {
            "Check the StorageClass's provisioner is running (kubectl describe pvc shows its events) or create a matching PersistentVolume.".to_string()
        };
        out.push(f.advice(fix));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::*;
    use serde_json::json;

    fn pvc(class: Option<&str>, phase: &str) -> PersistentVolumeClaim {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        if let Some(c) = class {
            spec["storageClassName"] = json!(c);
        }
        obj(
            json!({"metadata": {"name": "data", "namespace": NS}, "spec": spec, "status": {"phase": phase}}),
        )
    }

    fn sc(name: &str, default: bool) -> k8s_openapi::api::storage::v1::StorageClass {
        obj(
            json!({"metadata": {"name": name, "annotations": {DEFAULT_CLASS: default.to_string()}}, "provisioner": "x"}),
        )
    }

    #[test]
    fn missing_class_by_list_and_event() {
        let mut s = snap();
        s.storageclasses.push(sc("standard", true));
        s.pvcs.push(pvc(Some("fast-ssd"), "Pending"));
        let f = pvcs(&s);
        assert_eq!(causes(&f), ["pvc-no-storage-class"]);
        assert!(evidence_has(&f[0], "\"fast-ssd\" does not exist"));
        // Without the class list (namespaced user), the controller's event proves it.
        let mut s = snap();
        s.forbidden.push(crate::snapshot::Forbidden {
            verb: "list".into(),
            resource: "storageclasses".into(),
            namespace: None,
        });
        s.pvcs.push(pvc(Some("fast-ssd"), "Pending"));
        assert_eq!(causes(&pvcs(&s)), ["unbound-pvc"]);
        s.events.push(event(
            "PersistentVolumeClaim",
            "data",
            "Warning",
            "ProvisioningFailed",
            "storageclass.storage.k8s.io \"fast-ssd\" not found",
        ));
        assert_eq!(causes(&pvcs(&s)), ["pvc-no-storage-class"]);
    }

    #[test]
    fn bound_or_existing_class_is_not_missing() {
        let mut s = snap();
        s.storageclasses.push(sc("standard", true));
        s.pvcs.push(pvc(Some("standard"), "Bound"));
        assert!(pvcs(&s).is_empty());
        s.pvcs[0] = pvc(Some("standard"), "Pending");
        assert_eq!(causes(&pvcs(&s)), ["unbound-pvc"]);
        s.pvcs[0] = pvc(None, "Pending");
        assert_eq!(causes(&pvcs(&s)), ["unbound-pvc"]);
        s.storageclasses.clear();
        assert_eq!(causes(&pvcs(&s)), ["pvc-no-storage-class"]);
    }
}
