//! From a user's target (`deploy/web`, `web`) to the findings that concern it: resolve
//! the name, then walk the object graph both ways (owners and owned, Service ↔ pods,
//! Ingress → Services, pod → ConfigMaps/Secrets/PVCs/node, PVC → StorageClass).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::{ClusterResourceScope, Metadata, NamespaceResourceScope, Resource};

use super::finding::{rank, Cause, Finding, ObjectRef, Severity};
use super::rules::{near_misses, uses_pvc};
use super::snapshot::{
    controller_of, find_named, in_namespace, labels_of, name_of, ns_of, selector_matches, Snapshot,
};
use super::TargetError;

/// Kinds a target may name, with their plural resource name and the aliases accepted
/// besides the kind itself and its plural (any case).
const KINDS: &[(&str, &str, &[&str])] = &[
    (
        "Deployment",
        "deployments",
        &["deploy", "deployment.apps", "deployments.apps"],
    ),
    ("StatefulSet", "statefulsets", &["sts"]),
    ("DaemonSet", "daemonsets", &["ds"]),
    ("ReplicaSet", "replicasets", &["rs"]),
    ("Pod", "pods", &["po"]),
    ("Service", "services", &["svc"]),
    ("Ingress", "ingresses", &["ing"]),
    ("Job", "jobs", &[]),
    ("CronJob", "cronjobs", &["cj"]),
    (
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        &["pvc", "pvcs"],
    ),
    ("Node", "nodes", &["no"]),
    ("ServiceAccount", "serviceaccounts", &["sa"]),
    ("Role", "roles", &[]),
    ("RoleBinding", "rolebindings", &[]),
    ("ClusterRole", "clusterroles", &[]),
    ("ClusterRoleBinding", "clusterrolebindings", &[]),
    ("NetworkPolicy", "networkpolicies", &["netpol"]),
    (
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        &["hpa"],
    ),
    ("PodDisruptionBudget", "poddisruptionbudgets", &["pdb"]),
    ("Secret", "secrets", &[]),
];

/// Kinds people name that kai has no rules for: a target of one of these gets a plain
/// "cannot diagnose" rather than "unknown kind".
const UNSUPPORTED: &[&[&str]] = &[
    &["configmap", "configmaps", "cm"],
    &["namespace", "namespaces", "ns"],
    &["endpoints", "ep"],
    &["endpointslice", "endpointslices"],
    &["storageclass", "storageclasses", "sc"],
    &["persistentvolume", "persistentvolumes", "pv"],
    &["event", "events", "ev"],
    &["limitrange", "limitranges", "limits"],
    &["resourcequota", "resourcequotas", "quota"],
    &["ingressclass", "ingressclasses"],
    &[
        "validatingwebhookconfiguration",
        "validatingwebhookconfigurations",
    ],
    &[
        "mutatingwebhookconfiguration",
        "mutatingwebhookconfigurations",
    ],
    &[
        "customresourcedefinition",
        "customresourcedefinitions",
        "crd",
        "crds",
    ],
    &["priorityclass", "priorityclasses"],
    &["lease", "leases"],
    &["replicationcontroller", "replicationcontrollers", "rc"],
];

/// The kinds a target may name, for messages: `deploy, sts, ...`.
pub fn supported_kinds() -> String {
    KINDS
        .iter()
        .map(|(kind, _, aliases)| match aliases.first() {
            Some(short) => short.to_string(),
            None => kind.to_ascii_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

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
                .find(|(canon, plural, aliases)| {
                    canon.eq_ignore_ascii_case(&k) || *plural == k || aliases.contains(&k.as_str())
                })
                .map(|(canon, ..)| (Some(*canon), name.to_string()))
                .ok_or_else(|| {
                    if UNSUPPORTED.iter().any(|names| names.contains(&k.as_str())) {
                        invalid(&format!(
                            "kai cannot diagnose a {kind} (no rule reasons about that kind); diagnose the workload, Service or Ingress that uses it"
                        ))
                    } else {
                        invalid(&format!("unknown kind {kind:?}"))
                    }
                })
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

/// The pods of namespace `ns` that run as ServiceAccount `sa` (`default` when unset).
fn pods_running_as<'a>(
    snap: &'a Snapshot,
    ns: &'a str,
    sa: &'a str,
) -> impl Iterator<Item = &'a Pod> {
    in_namespace(&snap.pods, ns).filter(move |p| {
        p.spec
            .as_ref()
            .and_then(|s| s.service_account_name.as_deref())
            .unwrap_or("default")
            == sa
    })
}

/// Every (kind, namespace, name) the snapshot knows, for resolution and near misses.
fn all_objects(snap: &Snapshot) -> Vec<ObjectRef> {
    let mut v = Vec::new();
    v.extend(namespaced(&snap.deployments));
    v.extend(namespaced(&snap.statefulsets));
    v.extend(namespaced(&snap.daemonsets));
    v.extend(namespaced(&snap.replicasets));
    v.extend(namespaced(&snap.pods));
    v.extend(namespaced(&snap.services));
    v.extend(namespaced(&snap.ingresses));
    v.extend(namespaced(&snap.jobs));
    v.extend(namespaced(&snap.cronjobs));
    v.extend(namespaced(&snap.pvcs));
    v.extend(cluster_scoped(&snap.nodes));
    v.extend(namespaced(&snap.service_accounts));
    v.extend(namespaced(&snap.roles));
    v.extend(namespaced(&snap.role_bindings));
    v.extend(namespaced(&snap.network_policies));
    v.extend(namespaced(&snap.hpas));
    v.extend(namespaced(&snap.pdbs));
    v.extend(cluster_scoped(&snap.cluster_roles));
    v.extend(cluster_scoped(&snap.cluster_role_bindings));
    for s in &snap.secrets {
        v.push(ObjectRef::new("Secret", Some(&s.namespace), &s.name));
    }
    v
}

/// References to the objects of a namespaced kind; the kind comes from the type.
fn namespaced<K>(list: &[K]) -> impl Iterator<Item = ObjectRef> + '_
where
    K: Resource<Scope = NamespaceResourceScope> + Metadata<Ty = ObjectMeta>,
{
    list.iter()
        .map(|o| ObjectRef::new(K::KIND, Some(ns_of(o.metadata())), name_of(o.metadata())))
}

/// References to the objects of a cluster-scoped kind (no namespace).
fn cluster_scoped<K>(list: &[K]) -> impl Iterator<Item = ObjectRef> + '_
where
    K: Resource<Scope = ClusterResourceScope> + Metadata<Ty = ObjectMeta>,
{
    list.iter()
        .map(|o| ObjectRef::new(K::KIND, None, name_of(o.metadata())))
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

/// The `child_kind` objects (their metadata in `children`) that `root` controls, each
/// with its pods.
fn expand_children<'a>(
    snap: &Snapshot,
    root: &ObjectRef,
    child_kind: &str,
    children: impl Iterator<Item = &'a ObjectMeta>,
    out: &mut BTreeSet<ObjectRef>,
) {
    let ns = root.namespace.as_deref().unwrap_or_default();
    let owner = Some((root.kind.clone(), root.name.clone()));
    for child in children.filter(|m| ns_of(m) == ns && controller_of(m) == owner) {
        let child_name = name_of(child);
        out.insert(ObjectRef::new(child_kind, Some(ns), child_name));
        for p in pods_owned_by(snap, ns, child_kind, child_name) {
            pod_closure(snap, p, out);
        }
    }
}

/// The target, everything it owns, everything that owns it, and what its pods use.
fn expand(snap: &Snapshot, root: &ObjectRef, out: &mut BTreeSet<ObjectRef>) {
    out.insert(root.clone());
    let ns = root.namespace.as_deref().unwrap_or_default();
    let name = root.name.as_str();
    match root.kind.as_str() {
        "Deployment" => {
            let replicasets = snap.replicasets.iter().map(|r| &r.metadata);
            expand_children(snap, root, "ReplicaSet", replicasets, out);
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
            let jobs = snap.jobs.iter().map(|j| &j.metadata);
            expand_children(snap, root, "Job", jobs, out);
        }
        "Pod" => {
            if let Some(p) = find_named(&snap.pods, ns, name) {
                pod_closure(snap, p, out);
            }
        }
        "Service" => {
            if let Some(svc) = find_named(&snap.services, ns, name) {
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
            if let Some(ing) = find_named(&snap.ingresses, ns, name) {
                for b in ingress_backends(ing) {
                    expand(snap, &ObjectRef::new("Service", Some(ns), &b), out);
                }
                for sec in ingress_tls_secrets(ing) {
                    out.insert(ObjectRef::new("Secret", Some(ns), &sec));
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
        "ServiceAccount" => {
            for p in pods_running_as(snap, ns, name) {
                add_pod_and_owners(snap, p, out);
            }
            bindings_of_sa(snap, ns, name, out);
        }
        "Role" | "ClusterRole" => {
            for b in snap.role_bindings.iter().filter(|b| {
                b.role_ref.kind == root.kind
                    && b.role_ref.name == name
                    && (root.kind == "ClusterRole" || ns_of(&b.metadata) == ns)
            }) {
                let r = ObjectRef::new(
                    "RoleBinding",
                    Some(ns_of(&b.metadata)),
                    name_of(&b.metadata),
                );
                if !out.contains(&r) {
                    expand(snap, &r, out);
                }
            }
        }
        "RoleBinding" => {
            if let Some(b) = find_named(&snap.role_bindings, ns, name) {
                let role_ns = (b.role_ref.kind == "Role").then_some(ns);
                out.insert(ObjectRef::new(&b.role_ref.kind, role_ns, &b.role_ref.name));
                for s in b
                    .subjects
                    .iter()
                    .flatten()
                    .filter(|s| s.kind == "ServiceAccount")
                {
                    let sns = s.namespace.as_deref().unwrap_or(ns);
                    out.insert(ObjectRef::new("ServiceAccount", Some(sns), &s.name));
                    for p in pods_running_as(snap, sns, &s.name) {
                        add_pod_and_owners(snap, p, out);
                    }
                }
            }
        }
        "NetworkPolicy" | "PodDisruptionBudget" => {
            let sel = if root.kind == "NetworkPolicy" {
                find_named(&snap.network_policies, ns, name).map(|p| {
                    p.spec
                        .as_ref()
                        .and_then(|s| s.pod_selector.clone())
                        .unwrap_or_default()
                })
            } else {
                find_named(&snap.pdbs, ns, name).and_then(|p| p.spec.as_ref()?.selector.clone())
            };
            if let Some(sel) = sel {
                for p in snap.pods.iter().filter(|p| {
                    ns_of(&p.metadata) == ns
                        && super::rules::label_selector_matches(&sel, &labels_of(&p.metadata))
                }) {
                    pod_closure(snap, p, out);
                }
            }
        }
        "HorizontalPodAutoscaler" => {
            if let Some(h) = find_named(&snap.hpas, ns, name) {
                if let Some(t) = h.spec.as_ref().map(|s| &s.scale_target_ref) {
                    let r = ObjectRef::new(&t.kind, Some(ns), &t.name);
                    if !out.contains(&r) {
                        expand(snap, &r, out);
                    }
                }
            }
        }
        "Secret" => {
            for ing in in_namespace(&snap.ingresses, ns) {
                if ingress_tls_secrets(ing).iter().any(|s| s == name) {
                    out.insert(ObjectRef::new("Ingress", Some(ns), name_of(&ing.metadata)));
                }
            }
        }
        _ => {}
    }
}

fn ingress_tls_secrets(ing: &k8s_openapi::api::networking::v1::Ingress) -> Vec<String> {
    ing.spec
        .iter()
        .flat_map(|s| s.tls.iter().flatten())
        .filter_map(|t| t.secret_name.clone())
        .collect()
}

/// RoleBindings and ClusterRoleBindings naming a ServiceAccount, with their roles.
fn bindings_of_sa(snap: &Snapshot, ns: &str, sa: &str, out: &mut BTreeSet<ObjectRef>) {
    let names = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>, bns: &str| {
        subjects.iter().flatten().any(|s| {
            s.kind == "ServiceAccount"
                && s.name == sa
                && s.namespace.as_deref().unwrap_or(bns) == ns
        })
    };
    for b in &snap.role_bindings {
        let bns = ns_of(&b.metadata);
        if names(&b.subjects, bns) {
            out.insert(ObjectRef::new(
                "RoleBinding",
                Some(bns),
                name_of(&b.metadata),
            ));
            let role_ns = (b.role_ref.kind == "Role").then_some(bns);
            out.insert(ObjectRef::new(&b.role_ref.kind, role_ns, &b.role_ref.name));
        }
    }
    for b in &snap.cluster_role_bindings {
        if names(&b.subjects, "") {
            out.insert(ObjectRef::new(
                "ClusterRoleBinding",
                None,
                name_of(&b.metadata),
            ));
            out.insert(ObjectRef::new("ClusterRole", None, &b.role_ref.name));
        }
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
        let sa = spec.service_account_name.as_deref().unwrap_or("default");
        out.insert(ObjectRef::new("ServiceAccount", Some(ns), sa));
        bindings_of_sa(snap, ns, sa, out);
        if let Some(node) = &spec.node_name {
            out.insert(ObjectRef::new("Node", None, node));
        }
    }
    let labels = labels_of(&p.metadata);
    // Whether a selector selects the pod; `if_none` when there is none.
    let selected = |sel: Option<&LabelSelector>, if_none: bool| {
        sel.map_or(if_none, |sel| {
            super::rules::label_selector_matches(sel, &labels)
        })
    };
    for np in in_namespace(&snap.network_policies, ns) {
        // A NetworkPolicy without a pod selector applies to every pod of its namespace.
        if selected(np.spec.as_ref().and_then(|s| s.pod_selector.as_ref()), true) {
            let name = name_of(&np.metadata);
            out.insert(ObjectRef::new("NetworkPolicy", Some(ns), name));
        }
    }
    for pdb in in_namespace(&snap.pdbs, ns) {
        if selected(pdb.spec.as_ref().and_then(|s| s.selector.as_ref()), false) {
            let name = name_of(&pdb.metadata);
            out.insert(ObjectRef::new("PodDisruptionBudget", Some(ns), name));
        }
    }
    let owners: Vec<ObjectRef> = out
        .iter()
        .filter(|o| matches!(o.kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet"))
        .cloned()
        .collect();
    for h in in_namespace(&snap.hpas, ns) {
        if let Some(t) = h.spec.as_ref().map(|s| &s.scale_target_ref) {
            if owners.contains(&ObjectRef::new(&t.kind, Some(ns), &t.name)) {
                out.insert(ObjectRef::new(
                    "HorizontalPodAutoscaler",
                    Some(ns),
                    name_of(&h.metadata),
                ));
            }
        }
    }
    for svc in in_namespace(&snap.services, ns) {
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
        let mut s = snap();
        s.namespace = Some(NS.into());
        // Two crashing Deployments; only `web` has a Service.
        for name in ["web", "other"] {
            add_deployment(&mut s, name, 1, app_spec());
            let last = terminated("Error", 1, 10);
            s.pods
                .push(crash_looping_pod(&format!("{name}-0"), name, 5, last));
        }
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

    #[test]
    fn new_kinds_parse_and_unsupported_kinds_say_so() {
        for (t, k) in [
            ("sa/x", "ServiceAccount"),
            ("role/x", "Role"),
            ("rolebinding/x", "RoleBinding"),
            ("clusterrole/x", "ClusterRole"),
            ("netpol/x", "NetworkPolicy"),
            ("hpa/x", "HorizontalPodAutoscaler"),
            ("pdb/x", "PodDisruptionBudget"),
            ("cronjob/x", "CronJob"),
            ("sts/x", "StatefulSet"),
            ("ing/x", "Ingress"),
            ("node/x", "Node"),
            ("pvc/x", "PersistentVolumeClaim"),
        ] {
            assert_eq!(parse_target(t).unwrap(), (Some(k), "x".into()), "{t}");
        }
        let msg = parse_target("configmap/x").unwrap_err().to_string();
        assert!(msg.contains("kai cannot diagnose a configmap"), "{msg}");
        assert!(msg.contains("hpa"), "{msg}");
        let msg = parse_target("widget/x").unwrap_err().to_string();
        assert!(msg.contains("unknown kind"), "{msg}");
    }

    #[test]
    fn a_service_account_target_reaches_its_bindings_and_workloads() {
        let mut s = snap();
        s.namespace = Some(NS.into());
        let spec = json!({"serviceAccountName": "ci", "containers": [container("app", json!({}))]});
        add_ready_deployment(&mut s, "runner", spec);
        s.service_accounts
            .push(obj(json!({"metadata": {"name": "ci", "namespace": NS}})));
        s.role_bindings
            .push(obj(json!({"metadata": {"name": "ci", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "missing"},
            "subjects": [{"kind": "ServiceAccount", "name": "ci"}]})));
        let f = diagnose_snapshot(&s, Some("sa/ci")).unwrap();
        assert_eq!(f[0].cause, Cause::RbacBindingMissingRole, "{f:?}");
        // And from the workload that runs as it.
        let f = diagnose_snapshot(&s, Some("deploy/runner")).unwrap();
        assert!(
            f.iter().any(|f| f.cause == Cause::RbacBindingMissingRole),
            "{f:?}"
        );
    }
}
