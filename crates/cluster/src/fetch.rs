//! The analyzers' only I/O: read the cluster into a [`Snapshot`] (kai-analyze's rules
//! then run on it, pure), and [`scan`]/[`diagnose`], the read and the rules together.
//!
//! Every kind is listed concurrently, page by page. A 403 on one kind is recorded in
//! `Snapshot::forbidden` (the rules turn it into a `forbidden` finding) instead of
//! failing the whole read; a 404 (a kind this server does not serve, e.g. batch/v1
//! CronJob before 1.21) is an empty list.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Debug;

use futures::stream::{self, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Node, PersistentVolumeClaim, Pod, ResourceQuota,
    Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams, LogParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use kai_analyze::finding::ObjectRef;
use kai_analyze::snapshot::{name_of, ns_of, Forbidden, KeysOnly, Snapshot, TlsCert};
use kai_analyze::{diagnose_snapshot, scan_snapshot, Finding, TargetError};

/// Errors from the analyzers run against the cluster. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("could not {action}: {source}; check that the cluster is reachable and the kube context is the right one (kubectl cluster-info)")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
}

const PAGE: u32 = 500;
/// Pages per kind before giving up: 200 × 500 objects is far past any sane namespace.
const MAX_PAGES: usize = 200;
const LOG_TAIL_LINES: i64 = 50;
const LOG_MAX_BYTES: i64 = 16 * 1024;
const MAX_LOG_FETCHES: usize = 40;
const LOG_CONCURRENCY: usize = 8;
/// A termination this recent still counts as failing now (as in the container rules).
const RECENT_SECS: i64 = 600;

type Listed<T> = Result<(Vec<T>, Option<Forbidden>), AnalyzeError>;

/// Annotation holding a full copy of the applied manifest: as large as the object itself
/// and read by no rule.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drop the metadata no rule reads. `managedFields` alone was about half of the heap on a
/// 2,000-pod cluster, so it goes page by page, before the next page is read.
fn trim<K: Resource>(mut obj: K) -> K {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
    obj
}

/// List every object of a kind (matching `fields`, a field selector, if given), page by
/// page, turning each object into a `T` as its page arrives so that only what the rules
/// need outlives the page.
async fn list_all<K, T>(
    api: Api<K>,
    resource: &str,
    namespace: Option<&str>,
    fields: Option<&str>,
    mut keep: impl FnMut(K) -> T,
) -> Listed<T>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        match api.list(&lp).await {
            Ok(list) => {
                if out.is_empty() {
                    // The first page says how many follow: one allocation instead of a
                    // doubling series whose last step holds two copies of the list.
                    let remaining = list
                        .metadata
                        .remaining_item_count
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(0)
                        .min(PAGE as usize * MAX_PAGES);
                    out.reserve_exact(list.items.len() + remaining);
                }
                out.extend(list.items.into_iter().map(trim).map(&mut keep));
                match list.metadata.continue_ {
                    Some(t) if !t.is_empty() => token = Some(t),
                    _ => break,
                }
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Ok((
                    Vec::new(),
                    Some(Forbidden {
                        verb: "list".into(),
                        resource: resource.into(),
                        namespace: namespace.map(str::to_string),
                    }),
                ));
            }
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok((Vec::new(), None)),
            Err(source) => {
                return Err(AnalyzeError::Kube {
                    action: format!("list {resource}"),
                    source,
                })
            }
        }
    }
    Ok((out, None))
}

/// Only the events a rule reads. Normal events are nearly all of a busy cluster's events
/// (97% on the benchmark cluster) and every rule reads Warnings only, except the PVC rule,
/// which needs the claims' Normal `WaitForFirstConsumer`: so list Warnings, and all events
/// about PersistentVolumeClaims, concurrently, and merge the two by uid.
async fn list_events(client: &Client, ns: Option<&str>) -> Listed<Event> {
    let (warnings, claims) = tokio::join!(
        list_all(
            api::<Event>(client, ns),
            "events",
            ns,
            Some("type!=Normal"),
            |e| e
        ),
        list_all(
            api::<Event>(client, ns),
            "events",
            ns,
            Some("involvedObject.kind=PersistentVolumeClaim"),
            |e| e
        ),
    );
    let (mut events, forbidden) = warnings?;
    let (claims, forbidden_claims) = claims?;
    let seen: HashSet<String> = events
        .iter()
        .filter_map(|e| e.metadata.uid.clone())
        .collect();
    events.extend(
        claims
            .into_iter()
            .filter(|e| e.metadata.uid.as_ref().is_none_or(|u| !seen.contains(u))),
    );
    Ok((events, forbidden.or(forbidden_claims)))
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn keys_only(ns: &str, name: &str, keys: impl Iterator<Item = String>) -> KeysOnly {
    KeysOnly {
        namespace: ns.to_string(),
        name: name.to_string(),
        keys: keys.collect::<BTreeSet<_>>(),
    }
}

/// Read everything the rules look at, in `namespace` (`None`: all namespaces).
pub async fn snapshot(client: &Client, namespace: Option<&str>) -> Result<Snapshot, AnalyzeError> {
    let ns = namespace;
    let (
        pods,
        deployments,
        replicasets,
        statefulsets,
        daemonsets,
        jobs,
        cronjobs,
        services,
        endpoints,
        ingresses,
        pvcs,
        events,
        configmaps,
        secrets,
        nodes,
        storageclasses,
    ) = tokio::join!(
        list_all(api::<Pod>(client, ns), "pods", ns, None, |o| o),
        list_all(
            api::<Deployment>(client, ns),
            "deployments",
            ns,
            None,
            |o| o
        ),
        list_all(
            api::<ReplicaSet>(client, ns),
            "replicasets",
            ns,
            None,
            |o| o
        ),
        list_all(
            api::<StatefulSet>(client, ns),
            "statefulsets",
            ns,
            None,
            |o| o
        ),
        list_all(api::<DaemonSet>(client, ns), "daemonsets", ns, None, |o| o),
        list_all(api::<Job>(client, ns), "jobs", ns, None, |o| o),
        list_all(api::<CronJob>(client, ns), "cronjobs", ns, None, |o| o),
        list_all(api::<Service>(client, ns), "services", ns, None, |o| o),
        list_all(api::<Endpoints>(client, ns), "endpoints", ns, None, |o| o),
        list_all(api::<Ingress>(client, ns), "ingresses", ns, None, |o| o),
        list_all(
            api::<PersistentVolumeClaim>(client, ns),
            "persistentvolumeclaims",
            ns,
            None,
            |o| o
        ),
        list_events(client, ns),
        // ConfigMaps and Secrets are reduced to key names page by page, as they arrive:
        // values (Helm release Secrets are large) never accumulate. Secret values are
        // remembered first, so a copy in a log or an event is scrubbed.
        list_all(api::<ConfigMap>(client, ns), "configmaps", ns, None, |c| {
            let keys = c
                .data
                .unwrap_or_default()
                .into_keys()
                .chain(c.binary_data.unwrap_or_default().into_keys());
            keys_only(ns_of(&c.metadata), name_of(&c.metadata), keys)
        }),
        list_all(api::<Secret>(client, ns), "secrets", ns, None, |s| {
            kai_text::redact::remember_k8s_secret(&s);
            let keys = s
                .data
                .unwrap_or_default()
                .into_keys()
                .chain(s.string_data.unwrap_or_default().into_keys());
            keys_only(ns_of(&s.metadata), name_of(&s.metadata), keys)
        }),
        list_all(Api::<Node>::all(client.clone()), "nodes", None, None, |o| o),
        list_all(
            Api::<StorageClass>::all(client.clone()),
            "storageclasses",
            None,
            None,
            |o| o
        ),
    );
    let mut forbidden = Vec::new();
    macro_rules! take {
        ($r:expr) => {{
            let (v, f) = $r?;
            forbidden.extend(f);
            v
        }};
    }
    let mut snap = Snapshot {
        now: Some(jiff::Timestamp::now()),
        namespace: ns.map(str::to_string),
        pods: take!(pods),
        deployments: take!(deployments),
        replicasets: take!(replicasets),
        statefulsets: take!(statefulsets),
        daemonsets: take!(daemonsets),
        jobs: take!(jobs),
        cronjobs: take!(cronjobs),
        services: take!(services),
        endpoints: take!(endpoints),
        ingresses: take!(ingresses),
        pvcs: take!(pvcs),
        events: take!(events),
        configmaps: take!(configmaps),
        secrets: take!(secrets),
        nodes: take!(nodes),
        storageclasses: take!(storageclasses),
        previous_logs: BTreeMap::new(),
        forbidden,
        event_index: Default::default(),
        ..Default::default()
    };
    let (previous_logs, current_logs, extras) = tokio::join!(
        fetch_logs(client, &snap),
        fetch_current_logs(client, &snap),
        read_extras(client, ns),
    );
    snap.previous_logs = previous_logs;
    snap.current_logs = current_logs;
    extras?.apply(&mut snap);
    Ok(snap)
}

/// The kinds the RBAC, policy, autoscaling, network and certificate rules read, listed
/// together (after the core kinds, while the log tails are read).
struct Extras {
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    network_policies: Vec<NetworkPolicy>,
    hpas: Vec<HorizontalPodAutoscaler>,
    pdbs: Vec<PodDisruptionBudget>,
    resource_quotas: Vec<ResourceQuota>,
    limit_ranges: Vec<LimitRange>,
    ingress_classes: Vec<IngressClass>,
    cronjobs_compat: Vec<CronJob>,
    tls_certs: Vec<TlsCert>,
    forbidden: Vec<Forbidden>,
}

impl Extras {
    fn apply(self, snap: &mut Snapshot) {
        snap.service_accounts = self.service_accounts;
        snap.roles = self.roles;
        snap.role_bindings = self.role_bindings;
        snap.cluster_roles = self.cluster_roles;
        snap.cluster_role_bindings = self.cluster_role_bindings;
        snap.network_policies = self.network_policies;
        snap.hpas = self.hpas;
        snap.pdbs = self.pdbs;
        snap.resource_quotas = self.resource_quotas;
        snap.limit_ranges = self.limit_ranges;
        snap.ingress_classes = self.ingress_classes;
        if snap.cronjobs.is_empty() {
            snap.cronjobs = self.cronjobs_compat;
        }
        snap.tls_certs = self.tls_certs;
        snap.forbidden.extend(self.forbidden);
    }
}

/// List a kind in its current version, or, when the server does not serve that version
/// (a 1.20 server has no policy/v1 PodDisruptionBudget, batch/v1 CronJob or autoscaling/v2
/// HorizontalPodAutoscaler), in the older version `old` whose objects read the same,
/// converted field by field.
async fn list_compat<K>(
    client: &Client,
    ns: Option<&str>,
    resource: &str,
    old: (&str, &str, &str),
) -> Listed<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    <K as Resource>::DynamicType: Default,
{
    let (items, forbidden) = list_all(api::<K>(client, ns), resource, ns, None, |o| o).await?;
    if !items.is_empty() || forbidden.is_some() {
        return Ok((items, forbidden));
    }
    let (group, version, kind) = old;
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, resource);
    let dynamic: Api<kube::api::DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let (objs, forbidden) = list_all(dynamic, resource, ns, None, |o| o).await?;
    let items = objs
        .into_iter()
        .filter_map(|o| {
            let mut v = serde_json::to_value(&o).ok()?;
            // The typed object's apiVersion, so that it deserializes as the new version.
            if let Some(m) = v.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            serde_json::from_value::<K>(v).ok()
        })
        .collect();
    Ok((items, forbidden))
}

async fn read_extras(client: &Client, ns: Option<&str>) -> Result<Extras, AnalyzeError> {
    let (
        service_accounts,
        roles,
        role_bindings,
        cluster_roles,
        cluster_role_bindings,
        network_policies,
        hpas,
        pdbs,
        resource_quotas,
        limit_ranges,
        ingress_classes,
        cronjobs_compat,
        tls_certs,
    ) = tokio::join!(
        list_all(
            api::<ServiceAccount>(client, ns),
            "serviceaccounts",
            ns,
            None,
            |o| o
        ),
        list_all(api::<Role>(client, ns), "roles", ns, None, |o| o),
        list_all(
            api::<RoleBinding>(client, ns),
            "rolebindings",
            ns,
            None,
            |o| o
        ),
        list_all(
            Api::<ClusterRole>::all(client.clone()),
            "clusterroles",
            None,
            None,
            |o| o
        ),
        list_all(
            Api::<ClusterRoleBinding>::all(client.clone()),
            "clusterrolebindings",
            None,
            None,
            |o| o
        ),
        list_all(
            api::<NetworkPolicy>(client, ns),
            "networkpolicies",
            ns,
            None,
            |o| o
        ),
        list_compat::<HorizontalPodAutoscaler>(
            client,
            ns,
            "horizontalpodautoscalers",
            ("autoscaling", "v2beta2", "HorizontalPodAutoscaler")
        ),
        list_compat::<PodDisruptionBudget>(
            client,
            ns,
            "poddisruptionbudgets",
            ("policy", "v1beta1", "PodDisruptionBudget")
        ),
        list_all(
            api::<ResourceQuota>(client, ns),
            "resourcequotas",
            ns,
            None,
            |o| o
        ),
        list_all(
            api::<LimitRange>(client, ns),
            "limitranges",
            ns,
            None,
            |o| o
        ),
        list_all(
            Api::<IngressClass>::all(client.clone()),
            "ingressclasses",
            None,
            None,
            |o| o
        ),
        list_compat::<CronJob>(client, ns, "cronjobs", ("batch", "v1beta1", "CronJob")),
        // Only TLS Secrets, reduced to their certificate's validity as each page arrives.
        list_all(
            api::<Secret>(client, ns),
            "secrets",
            ns,
            Some("type=kubernetes.io/tls"),
            |s| tls_cert_of(&s)
        ),
    );
    let mut forbidden = Vec::new();
    macro_rules! take {
        ($r:expr) => {{
            let (v, f) = $r?;
            forbidden.extend(f);
            v
        }};
    }
    Ok(Extras {
        service_accounts: take!(service_accounts),
        roles: take!(roles),
        role_bindings: take!(role_bindings),
        cluster_roles: take!(cluster_roles),
        cluster_role_bindings: take!(cluster_role_bindings),
        network_policies: take!(network_policies),
        hpas: take!(hpas),
        pdbs: take!(pdbs),
        resource_quotas: take!(resource_quotas),
        limit_ranges: take!(limit_ranges),
        ingress_classes: take!(ingress_classes),
        // Listed once already with the core kinds: a 403 there is recorded there.
        cronjobs_compat: cronjobs_compat.map(|(v, _)| v)?,
        // Secrets are listed (and recorded when forbidden) with the core kinds.
        tls_certs: tls_certs.map(|(v, _)| v.into_iter().flatten().collect())?,
        forbidden,
    })
}

/// The validity period and subject of a TLS Secret's (first) certificate; `None` when it
/// has none or it does not parse. Nothing of the Secret is kept but these.
fn tls_cert_of(s: &Secret) -> Option<TlsCert> {
    let data = s.data.as_ref()?.get("tls.crt")?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&data.0).ok()?;
    let cert = pem.parse_x509().ok()?;
    let validity = cert.validity();
    let ts = |t: &x509_parser::time::ASN1Time| jiff::Timestamp::from_second(t.timestamp()).ok();
    Some(TlsCert {
        namespace: ns_of(&s.metadata).to_string(),
        name: name_of(&s.metadata).to_string(),
        subject: cert.subject().to_string(),
        not_before: ts(&validity.not_before)?,
        not_after: ts(&validity.not_after)?,
    })
}

/// Current log tails of running containers that a rule may read (API 403s, application
/// errors): one pod per (namespace, owner, container), at most [`MAX_CURRENT_LOGS`], and
/// only for a namespaced read: an all-namespaces scan stays a handful of requests.
async fn fetch_current_logs(
    client: &Client,
    snap: &Snapshot,
) -> BTreeMap<(String, String, String), String> {
    if snap.namespace.is_none() {
        return BTreeMap::new();
    }
    let wanted = current_logs_wanted(snap);
    stream::iter(wanted)
        .map(|(ns, pod, container)| async move {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let lp = LogParams {
                container: Some(container.clone()),
                tail_lines: Some(LOG_TAIL_LINES * 4),
                limit_bytes: Some(LOG_MAX_BYTES * 2),
                ..Default::default()
            };
            match api.logs(&pod, &lp).await {
                Ok(text) => Some(((ns, pod, container), kai_text::redact::scrub(&text))),
                Err(e) => {
                    tracing::debug!(%ns, %pod, %container, error = %e, "no current log tail");
                    None
                }
            }
        })
        .buffer_unordered(LOG_CONCURRENCY)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

const MAX_CURRENT_LOGS: usize = 24;

fn current_logs_wanted(snap: &Snapshot) -> Vec<(String, String, String)> {
    let mut seen: HashSet<(String, ObjectRef, String)> = HashSet::new();
    let mut out = Vec::new();
    for p in &snap.pods {
        let Some(status) = p.status.as_ref() else {
            continue;
        };
        let mut owner: Option<ObjectRef> = None;
        for cs in status.container_statuses.iter().flatten() {
            if cs.state.as_ref().is_none_or(|s| s.running.is_none()) {
                continue;
            }
            let ns = ns_of(&p.metadata).to_string();
            let owner = owner.get_or_insert_with(|| snap.top_owner(p)).clone();
            if seen.insert((ns.clone(), owner, cs.name.clone())) {
                out.push((ns, name_of(&p.metadata).to_string(), cs.name.clone()));
            }
        }
        if out.len() >= MAX_CURRENT_LOGS {
            break;
        }
    }
    out.truncate(MAX_CURRENT_LOGS);
    out
}

/// Scan a namespace (`None`: all namespaces) for problems.
pub async fn scan(client: &Client, namespace: Option<&str>) -> Result<Vec<Finding>, AnalyzeError> {
    let snap = snapshot(client, namespace).await?;
    Ok(scan_snapshot(&snap))
}

/// Diagnose `target` in `namespace` (or the whole namespace when `target` is `None`).
pub async fn diagnose(
    client: &Client,
    namespace: &str,
    target: Option<&str>,
) -> Result<Vec<Finding>, AnalyzeError> {
    let snap = snapshot(client, Some(namespace)).await?;
    Ok(diagnose_snapshot(&snap, target)?)
}

/// A log tail to read: (namespace, pod, container, previous instance?).
type LogWanted = (String, String, String, bool);

/// Log tails of terminated container instances: `previous=true` for restarted
/// containers, the current log for containers terminated now (Job pods). Failures to
/// read a log are not errors: the finding then says no log was available.
async fn fetch_logs(
    client: &Client,
    snap: &Snapshot,
) -> BTreeMap<(String, String, String), String> {
    let wanted = logs_wanted(snap);
    stream::iter(wanted)
        .map(|(ns, pod, container, previous)| async move {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let lp = LogParams {
                container: Some(container.clone()),
                previous,
                tail_lines: Some(LOG_TAIL_LINES),
                limit_bytes: Some(LOG_MAX_BYTES),
                ..Default::default()
            };
            match api.logs(&pod, &lp).await {
                // Findings quote log lines on stdout, in `-o json` and to the model:
                // credentials go before any rule sees the text. Control sequences stay
                // (each egress makes them harmless its own way: visible on a terminal,
                // escaped in JSON, removed for the model), so the user can see them.
                Ok(text) => Some(((ns, pod, container), kai_text::redact::scrub(&text))),
                Err(e) => {
                    tracing::debug!(%ns, %pod, %container, error = %e, "no log tail");
                    None
                }
            }
        })
        .buffer_unordered(LOG_CONCURRENCY)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// Which log tails to read, at most [`MAX_LOG_FETCHES`]. Findings group pods by top-level
/// owner, so one log per (namespace, owner, container) gives every finding its evidence;
/// those come first (failing-now containers before ones that merely restarted once), and
/// further pods of the same owner only fill the remaining budget. The first pod of each
/// owner in listing order is the one picked, as that is the pod whose issue a finding is
/// built from.
fn logs_wanted(snap: &Snapshot) -> Vec<LogWanted> {
    // (duplicate of an already wanted owner/container?, not failing now?, the fetch)
    let mut wanted: Vec<(bool, bool, LogWanted)> = Vec::new();
    let mut seen: HashSet<(String, ObjectRef, String)> = HashSet::new();
    for p in &snap.pods {
        let Some(status) = p.status.as_ref() else {
            continue;
        };
        let all = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        let mut owner: Option<ObjectRef> = None;
        for cs in all {
            let now_failed = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0);
            let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            if !(now_failed || last.is_some()) {
                continue;
            }
            // Failing now: terminated, waiting to restart, or restarted recently. A
            // container that restarted once, days ago, is no finding's evidence.
            let active = now_failed
                || cs.state.as_ref().is_some_and(|s| s.waiting.is_some())
                || last.is_some_and(|t| {
                    snap.age_secs(t.finished_at.as_ref())
                        .is_none_or(|a| a < RECENT_SECS)
                });
            let ns = ns_of(&p.metadata).to_string();
            let owner = owner.get_or_insert_with(|| snap.top_owner(p)).clone();
            let first = seen.insert((ns.clone(), owner, cs.name.clone()));
            wanted.push((
                !first,
                !active,
                (
                    ns,
                    name_of(&p.metadata).to_string(),
                    cs.name.clone(),
                    !now_failed,
                ),
            ));
        }
    }
    // Stable: listing order within each tier.
    wanted.sort_by_key(|(dup, idle, _)| (*dup, *idle));
    wanted
        .into_iter()
        .take(MAX_LOG_FETCHES)
        .map(|(_, _, w)| w)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use kai_analyze::rules::testutil::*;
    use serde_json::json;

    fn crashing(name: &str, app: &str, last_finished_secs_ago: i64) -> Pod {
        pod(
            name,
            app,
            json!({"containers": [container("app", json!({}))]}),
            pod_status(
                "Running",
                vec![waiting(
                    "app",
                    "CrashLoopBackOff",
                    "",
                    5,
                    terminated("Error", 1, last_finished_secs_ago),
                )],
            ),
        )
    }

    fn pods_of(w: &[LogWanted]) -> Vec<&str> {
        w.iter().map(|(_, pod, ..)| pod.as_str()).collect()
    }

    #[test]
    fn every_crashing_owner_gets_a_log_before_any_owner_gets_two() {
        let mut s = snap();
        add_deployment(&mut s, "big", 60, json!({}));
        add_deployment(&mut s, "small", 1, json!({}));
        for i in 0..MAX_LOG_FETCHES + 10 {
            s.pods.push(crashing(&format!("big-{i}"), "big", 10));
        }
        s.pods.push(crashing("small-0", "small", 10));
        let w = logs_wanted(&s);
        assert_eq!(w.len(), MAX_LOG_FETCHES);
        assert_eq!(pods_of(&w)[..3], ["big-0", "small-0", "big-1"]);
        // Previous instance: the container is waiting to restart, not terminated now.
        assert!(w
            .iter()
            .all(|(ns, _, c, previous)| ns == NS && c == "app" && *previous));
    }

    #[test]
    fn containers_failing_now_come_before_an_old_restart() {
        let mut s = snap();
        add_deployment(&mut s, "calm", 1, json!({}));
        add_deployment(&mut s, "crash", 1, json!({}));
        // Restarted once, a day ago, running fine since.
        s.pods.push(pod(
            "calm-0",
            "calm",
            json!({"containers": [container("app", json!({}))]}),
            json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true,
                "restartCount": 1, "image": "x", "imageID": "",
                "state": {"running": {"startedAt": ago(86_000)}},
                "lastState": terminated("Error", 1, 86_400)}]}),
        ));
        s.pods.push(crashing("crash-0", "crash", 10));
        // Never restarted, running: no log wanted.
        s.pods.push(pod(
            "fine-0",
            "fine",
            json!({"containers": [container("app", json!({}))]}),
            pod_status("Running", vec![running("app", true, 0)]),
        ));
        assert_eq!(pods_of(&logs_wanted(&s)), ["crash-0", "calm-0"]);
    }
}
