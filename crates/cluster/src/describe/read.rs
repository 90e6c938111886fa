//! Reading what a describe needs, through the [`NamespaceView`]: the object, its owner
//! chain, its pods, ReplicaSets and events, the Secrets/ConfigMaps/PVCs it references.
//! Nothing here renders: each `read` returns a small struct the render modules format.
//! A read that fails is kept as its error (the render says what could not be read);
//! only the object itself failing to read fails the describe.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{
    Endpoints, Event, Node, PersistentVolumeClaim, Pod, PodSpec, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject, ListParams};

use super::workload::{self, WorkloadView};
use crate::events;
use crate::objects;
use crate::view::{Listable, Listed, NamespaceView, OwnerLookup, ReadError};
use crate::{ClusterError, Kind};
use kai_analyze::owners::{chain_text, Found, OwnerWalk};
use kai_analyze::selector::{workload_selector, Selector};

/// What a describe is about: `name` of `kind`, read through `view`.
#[derive(Clone, Copy)]
pub(super) struct Target<'a, 'v> {
    pub(super) view: &'a NamespaceView<'v>,
    pub(super) kind: &'a Kind,
    pub(super) name: &'a str,
}

impl Target<'_, '_> {
    /// The object itself: from the view; a missing one is "not found" with similar names.
    async fn typed<K: Listable>(self) -> Result<K, ClusterError> {
        let Target { view, kind, name } = self;
        match view.get::<K>(name).await? {
            Some(obj) => Ok(obj),
            None => {
                let ns = view.namespace().unwrap_or_default();
                Err(objects::not_found_text(
                    kind,
                    name,
                    ns,
                    view.names::<K>().await,
                ))
            }
        }
    }
}

/// `ReplicaSet/backend-7d9c → Deployment/backend`, following controller references (the
/// walk kai-analyze's rules use too), with what could not be looked up marked.
pub async fn owner_chain(view: &NamespaceView<'_>, meta: &ObjectMeta) -> String {
    let mut walk = OwnerWalk::new(meta);
    while let Some(owner) = walk.next().cloned() {
        match view.owner(&owner).await {
            OwnerLookup::Found(m) => walk.found(Found::Object(&m)),
            OwnerLookup::Gone => walk.found(Found::Gone),
            OwnerLookup::NotLooked => walk.found(Found::NotLooked),
            OwnerLookup::Unreadable(e) => walk.found(Found::Unreadable(e.short())),
        }
    }
    chain_text(walk.hops())
}

/// One object a pod spec needs, and what reading it found.
pub(super) enum RefCheck {
    /// A Secret or ConfigMap: the keys the pod wants, and the keys it has.
    Keys {
        kind: &'static str,
        name: String,
        wanted: BTreeSet<String>,
        found: Result<Option<BTreeSet<String>>, ReadError>,
    },
    Claim {
        name: String,
        found: Result<Option<Box<PersistentVolumeClaim>>, ReadError>,
    },
}

/// Secrets, ConfigMaps and PVCs the pod spec needs, checked: a missing one (or a missing
/// key) is the cause of `CreateContainerConfigError` and stuck `ContainerCreating`.
async fn check_references(view: &NamespaceView<'_>, spec: Option<&PodSpec>) -> Vec<RefCheck> {
    let Some(spec) = spec else { return Vec::new() };
    let mut secrets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut cms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // The automounted service-account token Secret (1.20 and older) is not the app's.
    for r in kai_analyze::refs::config_refs(spec)
        .into_iter()
        .filter(|r| !r.optional && !r.name.starts_with("default-token-"))
    {
        let map = if r.kind == "Secret" {
            &mut secrets
        } else {
            &mut cms
        };
        let keys = map.entry(r.name).or_default();
        if let Some(k) = r.key {
            keys.insert(k);
        }
    }
    let pvcs: BTreeSet<String> = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|p| p.claim_name.clone())
        .collect();
    // Only key names are looked at; a Secret's values are remembered (so copies
    // elsewhere are scrubbed) and dropped by the view.
    let keys_checks = secrets
        .into_iter()
        .map(|(name, keys)| ("Secret", name, keys))
        .chain(
            cms.into_iter()
                .map(|(name, keys)| ("ConfigMap", name, keys)),
        )
        .map(|(kind, name, wanted)| async move {
            let found = view.keys_of(kind == "Secret", &name).await;
            RefCheck::Keys {
                kind,
                name,
                wanted,
                found,
            }
        });
    let pvc_checks = pvcs.into_iter().map(|name| async move {
        let found = view
            .get::<PersistentVolumeClaim>(&name)
            .await
            .map(|p| p.map(Box::new));
        RefCheck::Claim { name, found }
    });
    let (mut a, b) = futures::join!(join_all(keys_checks), join_all(pvc_checks));
    a.extend(b);
    a
}

pub(super) struct PodRead {
    pub(super) pod: Pod,
    pub(super) chain: String,
    pub(super) refs: Vec<RefCheck>,
    pub(super) evs: Listed<Event>,
}

pub(super) async fn pod(t: Target<'_, '_>) -> Result<PodRead, ClusterError> {
    let pod: Pod = t.typed().await?;
    let (chain, refs, evs) = futures::join!(
        owner_chain(t.view, &pod.metadata),
        check_references(t.view, pod.spec.as_ref()),
        t.view.events_about("Pod", t.name),
    );
    Ok(PodRead {
        pod,
        chain,
        refs,
        evs,
    })
}

pub(super) struct WorkloadRead {
    pub(super) view_: WorkloadView,
    pub(super) selector: Option<Selector>,
    pub(super) chain: String,
    /// Every pod the selector matches, whoever owns it.
    pub(super) pods: Vec<Pod>,
    /// The namespace's ReplicaSets the selector matches (a Deployment's only).
    pub(super) rs_list: Listed<ReplicaSet>,
    /// The namespace's events (one request serves the workload and its pods).
    pub(super) evs: Listed<Event>,
}

pub(super) async fn workload(t: Target<'_, '_>) -> Result<WorkloadRead, ClusterError> {
    let view = t.view;
    let k = t.kind.resource.kind.as_str();
    let view_ = match k {
        "Deployment" => workload::deployment(&t.typed().await?),
        "StatefulSet" => workload::stateful_set(&t.typed().await?),
        "DaemonSet" => workload::daemon_set(&t.typed().await?),
        "ReplicaSet" => workload::replica_set(&t.typed().await?),
        _ => workload::job(&t.typed().await?),
    };
    let selector = view_.selector.as_ref().and_then(workload_selector);
    let (pods, evs, chain, rs_list) = futures::join!(
        async {
            match &selector {
                Some(s) => view.selected::<Pod>(s).await,
                None => Ok(Vec::new()),
            }
        },
        async { view.list::<Event>().await.clone() },
        owner_chain(view, &view_.meta),
        async {
            match &selector {
                Some(s) if k == "Deployment" => view.selected::<ReplicaSet>(s).await,
                _ => Ok(Vec::new()),
            }
        },
    );
    Ok(WorkloadRead {
        view_,
        selector,
        chain,
        pods: pods?,
        rs_list,
        evs,
    })
}

pub(super) struct ServiceRead {
    pub(super) svc: Service,
    pub(super) ep: Result<Option<Endpoints>, ReadError>,
    /// The pods the Service's selector matches (none read when it has no selector).
    pub(super) pods: Listed<Pod>,
    pub(super) evs: Listed<Event>,
}

pub(super) async fn service(t: Target<'_, '_>) -> Result<ServiceRead, ClusterError> {
    let Target { view, name, .. } = t;
    let svc: Service = t.typed().await?;
    let selector = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let (ep, pods, evs) = futures::join!(
        view.get::<Endpoints>(name),
        async {
            if selector.is_empty() {
                Ok(Vec::new())
            } else {
                let sel: Selector = selector.clone().into_iter().collect();
                view.selected::<Pod>(&sel).await
            }
        },
        view.events_about("Service", name),
    );
    Ok(ServiceRead { svc, ep, pods, evs })
}

pub(super) struct NodeRead {
    pub(super) node: Node,
    /// The pods scheduled on the node, in every namespace.
    pub(super) pods: Listed<Pod>,
    pub(super) evs: Listed<Event>,
}

/// A node is read across namespaces (its pods, its events), outside the view's one.
pub(super) async fn node(t: Target<'_, '_>) -> Result<NodeRead, ClusterError> {
    let cluster = t.view.cluster();
    let name = t.name;
    let node: Node = t.typed().await?;
    let pods_api: Api<Pod> = Api::all(cluster.client.clone());
    let field = format!("spec.nodeName={name}");
    let ev_field = format!("involvedObject.kind=Node,involvedObject.name={name}");
    let lp = ListParams::default().fields(&field);
    let (pods, evs) = futures::join!(
        pods_api.list(&lp),
        events::fetch_all(cluster, None, Some(&ev_field)),
    );
    let pods = pods.map(|list| list.items).map_err(|e| {
        let what = "pods in all namespaces";
        ReadError::from_kube(e, "list", "pods", None, what)
    });
    Ok(NodeRead { node, pods, evs })
}

pub(super) struct GenericRead {
    pub(super) obj: DynamicObject,
    pub(super) chain: String,
    pub(super) evs: Listed<Event>,
}

pub(super) async fn generic(t: Target<'_, '_>, ns: &str) -> Result<GenericRead, ClusterError> {
    let Target { view, kind, name } = t;
    let cluster = view.cluster();
    let obj = objects::get_object(cluster, kind, name, Some(ns)).await?;
    let (chain, evs) = futures::join!(owner_chain(view, &obj.metadata), async {
        if kind.namespaced() {
            view.events_about(&kind.resource.kind, name).await
        } else {
            // A cluster-scoped object's events are in no namespace of their own.
            let field = format!(
                "involvedObject.kind={},involvedObject.name={name}",
                kind.resource.kind
            );
            events::fetch_all(cluster, None, Some(&field)).await
        }
    });
    Ok(GenericRead { obj, chain, evs })
}
