//! A point-in-time copy of the cluster state the rules read. Rules never do I/O: the fetch
//! layer fills a `Snapshot`, tests build one from JSON.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Endpoints, Event, LimitRange, Node, PersistentVolumeClaim, Pod, ResourceQuota, Service,
    ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::finding::ObjectRef;
pub use super::owners::controller_of;
use super::owners::{Found, OwnerWalk};
pub use super::selector::selector_matches;

/// A ConfigMap or Secret reduced to its key names. Secret values never enter a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysOnly {
    pub namespace: String,
    pub name: String,
    pub keys: BTreeSet<String>,
}

/// What the rules need of a `kubernetes.io/tls` Secret's certificate: its validity
/// period and subject, parsed at read time. The certificate itself (and the key) never
/// enter a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCert {
    pub namespace: String,
    pub name: String,
    pub subject: String,
    pub not_before: jiff::Timestamp,
    pub not_after: jiff::Timestamp,
}

/// A list the credentials were not allowed to make (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    pub verb: String,
    /// Plural resource name, e.g. `deployments`.
    pub resource: String,
    /// `None` for cluster-scoped resources or an all-namespaces list.
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When the snapshot was taken; rules compare ages against this, never the clock.
    pub now: Option<jiff::Timestamp>,
    /// The namespace the snapshot was limited to (`None`: all namespaces).
    pub namespace: Option<String>,
    pub pods: Vec<Pod>,
    pub deployments: Vec<Deployment>,
    pub replicasets: Vec<ReplicaSet>,
    pub statefulsets: Vec<StatefulSet>,
    pub daemonsets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
    pub cronjobs: Vec<CronJob>,
    pub services: Vec<Service>,
    pub endpoints: Vec<Endpoints>,
    pub ingresses: Vec<Ingress>,
    pub pvcs: Vec<PersistentVolumeClaim>,
    pub storageclasses: Vec<StorageClass>,
    pub nodes: Vec<Node>,
    pub configmaps: Vec<KeysOnly>,
    pub secrets: Vec<KeysOnly>,
    pub events: Vec<Event>,
    /// Log tail of the last terminated instance of a container, keyed by
    /// (namespace, pod, container): the previous instance for restarted containers, the
    /// current one for containers that are terminated now (Job pods).
    pub previous_logs: BTreeMap<(String, String, String), String>,
    pub forbidden: Vec<Forbidden>,
    pub service_accounts: Vec<ServiceAccount>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub network_policies: Vec<NetworkPolicy>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub pdbs: Vec<PodDisruptionBudget>,
    pub resource_quotas: Vec<ResourceQuota>,
    pub limit_ranges: Vec<LimitRange>,
    pub ingress_classes: Vec<IngressClass>,
    /// Certificates of `kubernetes.io/tls` Secrets (validity and subject only).
    pub tls_certs: Vec<TlsCert>,
    /// Log tail of the current instance of running containers, keyed like
    /// `previous_logs`: one pod per owner and container, for the rules that read what a
    /// healthy-looking container says (API 403s, application errors).
    pub current_logs: BTreeMap<(String, String, String), String>,
    /// What the read could not do as asked, in words, for the reader of the findings: a
    /// kind this server does not serve (and what was read instead), a log tail that
    /// could not be read. Rules do not look at it.
    pub notes: Vec<String>,
    /// `events` by involved object, built on the first [`Snapshot::events_for`]: the pod
    /// rules ask once per pod and container, and a scan over every event each time was
    /// quadratic in cluster size. Public only so that the read in kai-cluster can build
    /// a snapshot field by field (as `Default::default()`); what it holds stays private.
    pub event_index: OnceLock<EventIndex>,
}

/// Positions in `Snapshot::events` by involved object, each list in time order.
#[derive(Debug, Clone, Default)]
pub struct EventIndex {
    /// `events.len()` when built. Rules never change a snapshot, but tests build one up
    /// between calls: if the count moved, the index is stale and lookups fall back to a
    /// scan rather than miss events.
    len: usize,
    /// (kind, involved object's namespace, name); `None` for events without a namespace,
    /// which match the name in any namespace.
    by_object: HashMap<(String, Option<String>, String), Vec<usize>>,
}

impl EventIndex {
    fn build(events: &[Event]) -> Self {
        let mut by_object: HashMap<(String, Option<String>, String), Vec<usize>> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let o = &e.involved_object;
            let (Some(kind), Some(name)) = (o.kind.as_ref(), o.name.as_ref()) else {
                continue;
            };
            by_object
                .entry((kind.clone(), o.namespace.clone(), name.clone()))
                .or_default()
                .push(i);
        }
        for v in by_object.values_mut() {
            // (time, position): the order a stable sort of the listing by time gives.
            v.sort_by_key(|&i| (event_time(&events[i]), i));
        }
        EventIndex {
            len: events.len(),
            by_object,
        }
    }
}

pub fn ns_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

pub fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// The objects of `list` in namespace `ns`.
pub fn in_namespace<'a: 'n, 'n, T>(list: &'a [T], ns: &'n str) -> impl Iterator<Item = &'a T> + 'n
where
    T: k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    list.iter().filter(move |o| ns_of(o.metadata()) == ns)
}

/// Each object of `list` that has a spec (`spec` picks it out), with its namespace and
/// name: what most rules loop over.
pub fn with_spec<'a, T, S: 'a>(
    list: &'a [T],
    spec: impl Fn(&'a T) -> Option<&'a S>,
) -> impl Iterator<Item = (&'a T, &'a str, &'a str, &'a S)>
where
    T: k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    list.iter()
        .filter_map(move |o| Some((o, ns_of(o.metadata()), name_of(o.metadata()), spec(o)?)))
}

/// The object of `list` named `name` in namespace `ns`.
pub fn find_named<'a, T>(list: &'a [T], ns: &str, name: &str) -> Option<&'a T>
where
    T: k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    list.iter()
        .find(|o| ns_of(o.metadata()) == ns && name_of(o.metadata()) == name)
}

pub fn labels_of(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

impl Snapshot {
    /// Is listing `resource` (plural) forbidden for these credentials?
    pub fn is_forbidden(&self, resource: &str) -> bool {
        self.forbidden.iter().any(|f| f.resource == resource)
    }

    pub fn secret(&self, ns: &str, name: &str) -> Option<&KeysOnly> {
        self.secrets
            .iter()
            .find(|s| s.namespace == ns && s.name == name)
    }

    pub fn configmap(&self, ns: &str, name: &str) -> Option<&KeysOnly> {
        self.configmaps
            .iter()
            .find(|s| s.namespace == ns && s.name == name)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
    }

    pub fn pvc(&self, ns: &str, name: &str) -> Option<&PersistentVolumeClaim> {
        find_named(&self.pvcs, ns, name)
    }

    /// Events about one object, newest last.
    pub fn events_for(&self, kind: &str, ns: &str, name: &str) -> Vec<&Event> {
        let index = self
            .event_index
            .get_or_init(|| EventIndex::build(&self.events));
        if index.len != self.events.len() {
            return self.events_for_by_scan(kind, ns, name);
        }
        let get = |ns: Option<&str>| {
            index
                .by_object
                .get(&(kind.to_string(), ns.map(str::to_string), name.to_string()))
        };
        let mut pos: Vec<usize> = get(Some(ns)).cloned().unwrap_or_default();
        if let Some(any_ns) = get(None) {
            pos.extend(any_ns);
            pos.sort_by_key(|&i| (event_time(&self.events[i]), i));
        }
        pos.into_iter().filter_map(|i| self.events.get(i)).collect()
    }

    /// [`Snapshot::events_for`] without the index.
    fn events_for_by_scan(&self, kind: &str, ns: &str, name: &str) -> Vec<&Event> {
        let mut v: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some(kind)
                    && e.involved_object.name.as_deref() == Some(name)
                    && (e.involved_object.namespace.as_deref().unwrap_or(ns) == ns)
            })
            .collect();
        v.sort_by_key(|e| event_time(e));
        v
    }

    /// Pods whose labels match `selector` in namespace `ns`.
    pub fn pods_matching<'a>(
        &'a self,
        ns: &'a str,
        selector: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a Pod> + 'a {
        // The pod's own labels, not a copy: the Service rule asks once per Service, and
        // a copy per pod per Service was 4.4 million String clones on the 10,000-pod
        // benchmark cluster.
        static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
        self.pods.iter().filter(move |p| {
            ns_of(&p.metadata) == ns
                && selector_matches(selector, p.metadata.labels.as_ref().unwrap_or(&NO_LABELS))
        })
    }

    /// The top-level owner of a pod: Pod → ReplicaSet → Deployment, Pod → Job → CronJob,
    /// StatefulSet, DaemonSet; the pod itself when it has no (known) controller.
    pub fn top_owner(&self, pod: &Pod) -> ObjectRef {
        let ns = ns_of(&pod.metadata);
        let hops = OwnerWalk::run(&pod.metadata, |o| {
            match self.owner_meta(&o.kind, ns, &o.name) {
                Some(meta) => Found::Object(meta),
                None => Found::NotLooked,
            }
        });
        match hops.last() {
            Some(top) => ObjectRef::new(&top.owner.kind, Some(ns), &top.owner.name),
            None => ObjectRef::new("Pod", Some(ns), name_of(&pod.metadata)),
        }
    }

    /// The metadata of an intermediate owner, for the owner walk: ReplicaSets and Jobs,
    /// the kinds whose own owner groups findings (a Deployment, a CronJob). Other kinds
    /// are where a walk over a snapshot stops.
    pub fn owner_meta(&self, kind: &str, ns: &str, name: &str) -> Option<&ObjectMeta> {
        let is = |m: &ObjectMeta| ns_of(m) == ns && name_of(m) == name;
        match kind {
            "ReplicaSet" => self.replicasets.iter().map(|r| &r.metadata).find(|m| is(m)),
            "Job" => self.jobs.iter().map(|j| &j.metadata).find(|m| is(m)),
            _ => None,
        }
    }

    /// Seconds elapsed since `t`, if both it and `now` are known.
    pub fn age_secs(
        &self,
        t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    ) -> Option<i64> {
        let now = self.now?;
        let t = t?;
        Some(now.as_second() - t.0.as_second())
    }
}

pub fn event_time(e: &Event) -> Option<jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// An event as one evidence line: `Warning BackOff: Back-off restarting failed container (x14)`.
pub fn event_line(e: &Event) -> String {
    let count = e.count.unwrap_or(1);
    let mut s = format!(
        "{} {}: {}",
        e.type_.as_deref().unwrap_or("Normal"),
        e.reason.as_deref().unwrap_or_default(),
        e.message.as_deref().unwrap_or_default().trim()
    );
    if count > 1 {
        s.push_str(&format!(" (x{count})"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{ago, event, obj, snap, NS};
    use serde_json::json;

    fn reasons(v: &[&Event]) -> Vec<String> {
        v.iter()
            .map(|e| e.reason.clone().unwrap_or_default())
            .collect()
    }

    fn at(mut e: Event, secs_ago: i64) -> Event {
        e.last_timestamp = Some(obj(json!(ago(secs_ago))));
        e
    }

    #[test]
    fn events_for_uses_the_index_and_matches_a_scan() {
        let mut s = snap();
        s.events
            .push(at(event("Pod", "web-0", "Warning", "Late", "x"), 10));
        s.events
            .push(at(event("Pod", "web-1", "Warning", "Other", "x"), 50));
        s.events
            .push(at(event("Pod", "web-0", "Warning", "Early", "x"), 100));
        s.events
            .push(at(event("Service", "web-0", "Warning", "Kind", "x"), 100));
        let mut elsewhere = at(event("Pod", "web-0", "Warning", "Elsewhere", "x"), 100);
        elsewhere.involved_object.namespace = Some("other".into());
        s.events.push(elsewhere);
        // No namespace on the involved object: matches the name in any namespace.
        let mut anywhere = at(event("Pod", "web-0", "Warning", "Anywhere", "x"), 60);
        anywhere.involved_object.namespace = None;
        s.events.push(anywhere);

        let got = s.events_for("Pod", NS, "web-0");
        assert_eq!(reasons(&got), ["Early", "Anywhere", "Late"]);
        assert_eq!(
            reasons(&got),
            reasons(&s.events_for_by_scan("Pod", NS, "web-0"))
        );
        assert!(s.event_index.get().is_some());
        assert!(s.events_for("Pod", NS, "web-9").is_empty());
        assert_eq!(
            reasons(&s.events_for("Pod", "other", "web-0")),
            ["Elsewhere", "Anywhere"]
        );
    }

    #[test]
    fn events_added_after_the_index_was_built_are_still_found() {
        let mut s = snap();
        s.events
            .push(event("Pod", "web-0", "Warning", "First", "x"));
        assert_eq!(reasons(&s.events_for("Pod", NS, "web-0")), ["First"]);
        s.events
            .push(event("Pod", "web-1", "Warning", "Second", "x"));
        assert_eq!(reasons(&s.events_for("Pod", NS, "web-1")), ["Second"]);
    }
}
