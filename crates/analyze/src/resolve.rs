//! From a user's target (`deploy/web`, `web`) to the findings that concern it: resolve
//! the name, then walk the object graph both ways (owners and owned, Service ↔ pods,
//! Ingress → Services, pod → ConfigMaps/Secrets/PVCs/node, PVC → StorageClass).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use super::finding::{rank, Cause, Finding, ObjectRef, Severity};
use super::rules::near_misses;
use super::snapshot::{controller_of, labels_of, name_of, ns_of, selector_matches, Snapshot};
use super::TargetError;

/// Kinds a target may name, with their plural resource name and accepted aliases.
const KINDS: &[(&str, &str, &[&str])] = &[
    (
        "Deployment",
        "deployments",
        &[
            "deploy",
            "deployment",
            "deployments",
            "deployment.apps",
            "deployments.apps",
        ],
    ),
    (
        "StatefulSet",
        "statefulsets",
        &["sts", "statefulset", "statefulsets"],
    ),
    (
        "DaemonSet",
        "daemonsets",
        &["ds", "daemonset", "daemonsets"],
    ),
    (
        "ReplicaSet",
        "replicasets",
        &["rs", "replicaset", "replicasets"],
    ),
    ("Pod", "pods", &["po", "pod", "pods"]),
    ("Service", "services", &["svc", "service", "services"]),
    ("Ingress", "ingresses", &["ing", "ingress", "ingresses"]),
    ("Job", "jobs", &["job", "jobs"]),
    ("CronJob", "cronjobs", &["cj", "cronjob", "cronjobs"]),
    (
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        &[
            "pvc",
            "pvcs",
            "persistentvolumeclaim",
            "persistentvolumeclaims",
        ],
    ),
    ("Node", "nodes", &["no", "node", "nodes"]),
];

/// `kind/name` or `name` → (canonical kind if given, name).
pub fn parse_target(target: &str) -> Result<(Option<&'static str>, String), TargetError> {
    let invalid = |reason: &str| TargetError::InvalidTarget {
        target: target.to_string(),
        reason: reason.to_string(),
    };
    match target.split_once('/') {
        None if target.is_empty() => Err(invalid("it is empty")),
        None => Ok((None, target.to_string())),
        Some((kind, name)) => {
            if name.is_empty() || name.contains('/') {
                return Err(invalid("expected KIND/NAME"));
            }
            let k = kind.to_ascii_lowercase();
            KINDS
                .iter()
                .find(|(canon, _, aliases)| {
                    aliases.contains(&k.as_str()) || canon.eq_ignore_ascii_case(&k)
                })
                .map(|(canon, ..)| (Some(*canon), name.to_string()))
                .ok_or_else(|| invalid(&format!("unknown kind {kind:?}")))
        }
    }
}

fn plural(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, ..)| *k == kind)
        .map(|(_, p, _)| *p)
        .unwrap_or("")
}

/// Every (kind, namespace, name) the snapshot knows, for resolution and near misses.
fn all_objects(snap: &Snapshot) -> Vec<ObjectRef> {
    let mut v = Vec::new();
    macro_rules! add {
        ($list:expr, $kind:expr) => {
            for o in &$list {
                v.push(ObjectRef::new(
                    $kind,
                    Some(ns_of(&o.metadata)),
                    name_of(&o.metadata),
                ));
            }
        };
    }
    add!(snap.deployments, "Deployment");
    add!(snap.statefulsets, "StatefulSet");
    add!(snap.daemonsets, "DaemonSet");
    add!(snap.replicasets, "ReplicaSet");
    add!(snap.pods, "Pod");
    add!(snap.services, "Service");
    add!(snap.ingresses, "Ingress");
    add!(snap.jobs, "Job");
    add!(snap.cronjobs, "CronJob");
    add!(snap.pvcs, "PersistentVolumeClaim");
    for n in &snap.nodes {
        v.push(ObjectRef::new("Node", None, name_of(&n.metadata)));
    }
    v
}

pub(crate) fn diagnose_target(
    snap: &Snapshot,
    findings: Vec<Finding>,
    target: &str,
) -> Result<Vec<Finding>, TargetError> {
    let (kind, name) = parse_target(target)?;
    let objects = all_objects(snap);
    let roots: Vec<ObjectRef> = objects
        .iter()
        .filter(|o| o.name == name && kind.is_none_or(|k| o.kind == k))
        .cloned()
        .collect();
    if roots.is_empty() {
        // Not visible may mean not readable: say so rather than "not found".
        let kinds: Vec<&str> = match kind {
            Some(k) => vec![plural(k)],
            None => KINDS.iter().map(|(_, p, _)| *p).collect(),
        };
        let mut blocked: Vec<Finding> = findings
            .into_iter()
            .filter(|f| f.cause == Cause::Forbidden)
            .collect();
        if snap
            .forbidden
            .iter()
            .any(|f| kinds.contains(&f.resource.as_str()))
            && !blocked.is_empty()
        {
            for f in &mut blocked {
                if kinds.iter().any(|k| f.summary.contains(&format!(" {k} "))) {
                    f.severity = Severity::Critical;
                }
            }
            rank(&mut blocked);
            return Ok(blocked);
        }
        let candidates = objects
            .iter()
            .filter(|o| kind.is_none_or(|k| o.kind == k))
            .map(|o| o.name.as_str());
        let suggestions = near_misses(&name, candidates)
            .into_iter()
            .map(|n| match kind {
                Some(k) => format!("{}/{n}", k.to_ascii_lowercase()),
                None => n,
            })
            .collect();
        return Err(TargetError::NotFound {
            target: match kind {
                Some(k) => format!("{k} {name:?}"),
                None => format!("nothing named {name:?}"),
            },
            namespace: snap.namespace.clone().unwrap_or_else(|| "(all)".into()),
            suggestions,
        });
    }
    let mut related = BTreeSet::new();
    for r in &roots {
        expand(snap, r, &mut related);
    }
    let mut out: Vec<Finding> = findings
        .into_iter()
        .filter(|f| related.contains(&f.object) || f.cause == Cause::Forbidden)
        .collect();
    rank(&mut out);
    Ok(out)
}

fn pods_owned_by<'a>(
    snap: &'a Snapshot,
    ns: &'a str,
    kind: &'a str,
    name: &'a str,
) -> impl Iterator<Item = &'a Pod> + 'a {
    snap.pods.iter().filter(move |p| {
        ns_of(&p.metadata) == ns
            && controller_of(&p.metadata) == Some((kind.to_string(), name.to_string()))
    })
}

/// The target, everything it owns, everything that owns it, and what its pods use.
fn expand(snap: &Snapshot, root: &ObjectRef, out: &mut BTreeSet<ObjectRef>) {
    out.insert(root.clone());
    let ns = root.namespace.as_deref().unwrap_or_default();
    let name = root.name.as_str();
    match root.kind.as_str() {
        "Deployment" => {
            for rs in snap.replicasets.iter().filter(|r| {
                ns_of(&r.metadata) == ns
                    && controller_of(&r.metadata) == Some(("Deployment".into(), name.into()))
            }) {
                let rs_name = name_of(&rs.metadata);
                out.insert(ObjectRef::new("ReplicaSet", Some(ns), rs_name));
                for p in pods_owned_by(snap, ns, "ReplicaSet", rs_name) {
                    pod_closure(snap, p, out);
                }
            }
        }
        "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            for p in pods_owned_by(snap, ns, &root.kind, name) {
                pod_closure(snap, p, out);
            }
            if let Some(owner) = owner_of(snap, root) {
                out.insert(owner);
            }
        }
        "CronJob" => {
            for j in snap.jobs.iter().filter(|j| {
                ns_of(&j.metadata) == ns
                    && controller_of(&j.metadata) == Some(("CronJob".into(), name.into()))
            }) {
                let jn = name_of(&j.metadata);
                out.insert(ObjectRef::new("Job", Some(ns), jn));
                for p in pods_owned_by(snap, ns, "Job", jn) {
                    pod_closure(snap, p, out);
                }
            }
        }
        "Pod" => {
            if let Some(p) = snap
                .pods
                .iter()
                .find(|p| ns_of(&p.metadata) == ns && name_of(&p.metadata) == name)
            {
                pod_closure(snap, p, out);
            }
        }
        "Service" => {
            if let Some(svc) = snap
                .services
                .iter()
                .find(|s| ns_of(&s.metadata) == ns && name_of(&s.metadata) == name)
            {
                if let Some(sel) = svc
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .filter(|s| !s.is_empty())
                {
                    for p in snap.pods_matching(ns, sel) {
                        pod_closure(snap, p, out);
                    }
                }
            }
            out.insert(ObjectRef::new("Endpoints", Some(ns), name));
            for ing in &snap.ingresses {
                if ns_of(&ing.metadata) == ns && ingress_backends(ing).iter().any(|b| b == name) {
                    out.insert(ObjectRef::new("Ingress", Some(ns), name_of(&ing.metadata)));
                }
            }
        }
        "Ingress" => {
            if let Some(ing) = snap
                .ingresses
                .iter()
                .find(|i| ns_of(&i.metadata) == ns && name_of(&i.metadata) == name)
            {
                for b in ingress_backends(ing) {
                    expand(snap, &ObjectRef::new("Service", Some(ns), &b), out);
                }
            }
        }
        "PersistentVolumeClaim" => {
            if let Some(pvc) = snap.pvc(ns, name) {
                if let Some(sc) = pvc
                    .spec
                    .as_ref()
                    .and_then(|s| s.storage_class_name.as_deref())
                {
                    out.insert(ObjectRef::new("StorageClass", None, sc));
                }
            }
            for p in snap
                .pods
                .iter()
                .filter(|p| ns_of(&p.metadata) == ns && uses_pvc(p, name))
            {
                add_pod_and_owners(snap, p, out);
            }
        }
        "Node" => {
            for p in snap
                .pods
                .iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name))
            {
                add_pod_and_owners(snap, p, out);
            }
        }
        _ => {}
    }
}

fn owner_of(snap: &Snapshot, obj: &ObjectRef) -> Option<ObjectRef> {
    let ns = obj.namespace.as_deref().unwrap_or_default();
    let meta = snap.owner_meta(&obj.kind, ns, &obj.name)?;
    controller_of(meta).map(|(k, n)| ObjectRef::new(&k, Some(ns), &n))
}

fn add_pod_and_owners(snap: &Snapshot, p: &Pod, out: &mut BTreeSet<ObjectRef>) {
    let ns = ns_of(&p.metadata);
    out.insert(ObjectRef::new("Pod", Some(ns), name_of(&p.metadata)));
    if let Some((k, n)) = controller_of(&p.metadata) {
        let owner = ObjectRef::new(&k, Some(ns), &n);
        if let Some(up) = owner_of(snap, &owner) {
            out.insert(up);
        }
        out.insert(owner);
    }
}

fn uses_pvc(p: &Pod, claim: &str) -> bool {
    p.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == claim)
        })
}

/// A pod, its owners, and what it depends on or is selected by.
fn pod_closure(snap: &Snapshot, p: &Pod, out: &mut BTreeSet<ObjectRef>) {
    let ns = ns_of(&p.metadata);
    add_pod_and_owners(snap, p, out);
    for (kind, name) in super::rules::referenced_config(p) {
        out.insert(ObjectRef::new(kind, Some(ns), &name));
    }
    if let Some(spec) = p.spec.as_ref() {
        for v in spec.volumes.iter().flatten() {
            if let Some(c) = &v.persistent_volume_claim {
                out.insert(ObjectRef::new(
                    "PersistentVolumeClaim",
                    Some(ns),
                    &c.claim_name,
                ));
                if let Some(sc) = snap
                    .pvc(ns, &c.claim_name)
                    .and_then(|c| c.spec.as_ref()?.storage_class_name.clone())
                {
                    out.insert(ObjectRef::new("StorageClass", None, &sc));
                }
            }
        }
        if let Some(sa) = &spec.service_account_name {
            out.insert(ObjectRef::new("ServiceAccount", Some(ns), sa));
        }
        if let Some(node) = &spec.node_name {
            out.insert(ObjectRef::new("Node", None, node));
        }
    }
    let labels = labels_of(&p.metadata);
    for svc in snap.services.iter().filter(|s| ns_of(&s.metadata) == ns) {
        if let Some(sel) = svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .filter(|s| !s.is_empty())
        {
            if selector_matches(sel, &labels) {
                out.insert(ObjectRef::new("Service", Some(ns), name_of(&svc.metadata)));
            }
        }
    }
}

fn ingress_backends(ing: &k8s_openapi::api::networking::v1::Ingress) -> Vec<String> {
    let Some(spec) = ing.spec.as_ref() else {
        return Vec::new();
    };
    spec.default_backend
        .iter()
        .chain(spec.rules.iter().flatten().flat_map(|r| {
            r.http
                .iter()
                .flat_map(|h| h.paths.iter().map(|p| &p.backend))
        }))
        .filter_map(|b| b.service.as_ref().map(|s| s.name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rules::testutil::*;
    use crate::snapshot::Forbidden;
    use crate::{diagnose_snapshot, TargetError};
    use serde_json::json;

    #[test]
    fn parses_aliases() {
        assert_eq!(
            parse_target("deploy/web").unwrap(),
            (Some("Deployment"), "web".into())
        );
        assert_eq!(
            parse_target("svc/web").unwrap(),
            (Some("Service"), "web".into())
        );
        assert_eq!(
            parse_target("PVC/data").unwrap(),
            (Some("PersistentVolumeClaim"), "data".into())
        );
        assert_eq!(parse_target("web").unwrap(), (None, "web".into()));
        assert!(matches!(
            parse_target("frob/web"),
            Err(TargetError::InvalidTarget { .. })
        ));
    }

    fn broken_world() -> Snapshot {
        let spec = json!({"containers": [container("app", json!({}))]});
        let mut s = snap();
        s.namespace = Some(NS.into());
        add_deployment(&mut s, "web", 1, spec.clone());
        s.pods.push(pod(
            "web-0",
            "web",
            spec.clone(),
            pod_status(
                "Running",
                vec![waiting(
                    "app",
                    "CrashLoopBackOff",
                    "",
                    5,
                    terminated("Error", 1, 10),
                )],
            ),
        ));
        add_deployment(&mut s, "other", 1, spec.clone());
        s.pods.push(pod(
            "other-0",
            "other",
            spec,
            pod_status(
                "Running",
                vec![waiting(
                    "app",
                    "CrashLoopBackOff",
                    "",
                    5,
                    terminated("Error", 1, 10),
                )],
            ),
        ));
        s.services.push(obj(json!({"metadata": {"name": "web", "namespace": NS},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})));
        s
    }

    #[test]
    fn follows_graph_from_service_and_deployment() {
        let s = broken_world();
        for t in ["deploy/web", "svc/web", "pod/web-0", "web"] {
            let f = diagnose_snapshot(&s, Some(t)).unwrap();
            let objs: Vec<_> = f.iter().map(|f| f.object.name.as_str()).collect();
            assert!(objs.contains(&"web"), "{t}: {objs:?}");
            assert!(!objs.contains(&"other"), "{t}: {objs:?}");
            assert_eq!(f[0].cause, Cause::CrashLoopAppError);
        }
        // Service web has no ready endpoints only because of web's crash loop: that is
        // one root cause, reported once, on the Deployment.
        let all = diagnose_snapshot(&s, None).unwrap();
        assert_eq!(all.len(), 2);
        let web = all.iter().find(|f| f.object.name == "web").unwrap();
        assert!(web
            .evidence
            .iter()
            .any(|e| e == "Service app/web has no ready endpoints because of this"));
    }

    #[test]
    fn missing_target_lists_near_misses() {
        let s = broken_world();
        let err = diagnose_snapshot(&s, Some("deploy/webb")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("deployment/web"), "{msg}");
        assert!(msg.contains("kai scan -n app"), "{msg}");
    }

    #[test]
    fn unreadable_target_is_forbidden_not_missing() {
        let mut s = snap();
        s.namespace = Some(NS.into());
        s.forbidden.push(Forbidden {
            verb: "list".into(),
            resource: "deployments".into(),
            namespace: Some(NS.into()),
        });
        s.forbidden.push(Forbidden {
            verb: "list".into(),
            resource: "secrets".into(),
            namespace: Some(NS.into()),
        });
        let f = diagnose_snapshot(&s, Some("deploy/payments")).unwrap();
        assert_eq!(f[0].cause, Cause::Forbidden);
        assert!(f[0].summary.contains("deployments"));
    }
}
