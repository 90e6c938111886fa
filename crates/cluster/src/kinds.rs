//! Well-known built-in kinds, resolved from a static table so the common calls (and
//! pre-gathering) skip API discovery, which costs dozens of requests on first use.
//! Anything else (CRDs, kinds whose version differs by cluster) goes through discovery
//! in [`super::Cluster::resolve`].

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    Secret, Service, ServiceAccount,
};
use kube::discovery::{ApiCapabilities, ApiResource, Scope};

use super::Kind;

pub(super) fn builtin(kind: &str) -> Option<Kind> {
    let k = kind.trim().to_ascii_lowercase();
    let k = k
        .strip_suffix(".apps")
        .or_else(|| k.strip_suffix(".batch"))
        .unwrap_or(&k);
    macro_rules! kinds {
        ($($ty:ty, $ns:expr, [$($alias:literal),*];)*) => {
            $(if [$($alias),*].contains(&k) {
                return Some(Kind {
                    resource: ApiResource::erase::<$ty>(&()),
                    caps: ApiCapabilities {
                        scope: if $ns { Scope::Namespaced } else { Scope::Cluster },
                        subresources: Vec::new(),
                        operations: Vec::new(),
                    },
                });
            })*
        };
    }
    kinds! {
        Pod, true, ["pod", "pods", "po"];
        Service, true, ["service", "services", "svc"];
        ConfigMap, true, ["configmap", "configmaps", "cm"];
        Secret, true, ["secret", "secrets"];
        Event, true, ["event", "events", "ev"];
        Endpoints, true, ["endpoints", "ep"];
        PersistentVolumeClaim, true, ["persistentvolumeclaim", "persistentvolumeclaims", "pvc"];
        ServiceAccount, true, ["serviceaccount", "serviceaccounts", "sa"];
        Deployment, true, ["deployment", "deployments", "deploy"];
        StatefulSet, true, ["statefulset", "statefulsets", "sts"];
        DaemonSet, true, ["daemonset", "daemonsets", "ds"];
        ReplicaSet, true, ["replicaset", "replicasets", "rs"];
        Job, true, ["job", "jobs"];
        Namespace, false, ["namespace", "namespaces", "ns"];
        Node, false, ["node", "nodes", "no"];
        PersistentVolume, false, ["persistentvolume", "persistentvolumes", "pv"];
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builtin_kinds_resolve_without_discovery() {
        let k = builtin("deploy").unwrap();
        assert_eq!(k.resource.kind, "Deployment");
        assert_eq!(k.resource.group, "apps");
        assert!(k.namespaced());
        assert!(!builtin("Node").unwrap().namespaced());
        assert!(builtin("pods").is_some());
        assert!(builtin("certificate").is_none());
    }
}
