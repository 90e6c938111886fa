//! The only I/O in this module: read the cluster into a [`Snapshot`].
//!
//! Every kind is listed concurrently, page by page. A 403 on one kind is recorded in
//! `Snapshot::forbidden` (the rules turn it into a `forbidden` finding) instead of
//! failing the whole read; a 404 (a kind this server does not serve, e.g. batch/v1
//! CronJob before 1.21) is an empty list.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use futures::stream::{self, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Node, PersistentVolumeClaim, Pod, Secret, Service,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams, LogParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::snapshot::{name_of, ns_of, Forbidden, KeysOnly, Snapshot};
use super::AnalyzeError;

const PAGE: u32 = 500;
/// Pages per kind before giving up: 200 × 500 objects is far past any sane namespace.
const MAX_PAGES: usize = 200;
const LOG_TAIL_LINES: i64 = 50;
const LOG_MAX_BYTES: i64 = 16 * 1024;
const MAX_LOG_FETCHES: usize = 40;
const LOG_CONCURRENCY: usize = 8;

type Listed<K> = Result<(Vec<K>, Option<Forbidden>), AnalyzeError>;

async fn list_all<K>(api: Api<K>, resource: &str, namespace: Option<&str>) -> Listed<K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        match api.list(&lp).await {
            Ok(list) => {
                out.extend(list.items);
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
        list_all(api::<Pod>(client, ns), "pods", ns),
        list_all(api::<Deployment>(client, ns), "deployments", ns),
        list_all(api::<ReplicaSet>(client, ns), "replicasets", ns),
        list_all(api::<StatefulSet>(client, ns), "statefulsets", ns),
        list_all(api::<DaemonSet>(client, ns), "daemonsets", ns),
        list_all(api::<Job>(client, ns), "jobs", ns),
        list_all(api::<CronJob>(client, ns), "cronjobs", ns),
        list_all(api::<Service>(client, ns), "services", ns),
        list_all(api::<Endpoints>(client, ns), "endpoints", ns),
        list_all(api::<Ingress>(client, ns), "ingresses", ns),
        list_all(
            api::<PersistentVolumeClaim>(client, ns),
            "persistentvolumeclaims",
            ns
        ),
        list_all(api::<Event>(client, ns), "events", ns),
        // ConfigMaps and Secrets are reduced to key names as soon as they arrive.
        async {
            list_all(api::<ConfigMap>(client, ns), "configmaps", ns)
                .await
                .map(|(v, f)| {
                    let v = v
                        .into_iter()
                        .map(|c| {
                            let keys = c
                                .data
                                .unwrap_or_default()
                                .into_keys()
                                .chain(c.binary_data.unwrap_or_default().into_keys());
                            keys_only(ns_of(&c.metadata), name_of(&c.metadata), keys)
                        })
                        .collect::<Vec<_>>();
                    (v, f)
                })
        },
        async {
            list_all(api::<Secret>(client, ns), "secrets", ns)
                .await
                .map(|(v, f)| {
                    let v = v
                        .into_iter()
                        .map(|s| {
                            let keys = s
                                .data
                                .unwrap_or_default()
                                .into_keys()
                                .chain(s.string_data.unwrap_or_default().into_keys());
                            keys_only(ns_of(&s.metadata), name_of(&s.metadata), keys)
                        })
                        .collect::<Vec<_>>();
                    (v, f)
                })
        },
        list_all(Api::<Node>::all(client.clone()), "nodes", None),
        list_all(
            Api::<StorageClass>::all(client.clone()),
            "storageclasses",
            None
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
    };
    snap.previous_logs = fetch_logs(client, &snap.pods).await;
    Ok(snap)
}

/// Log tails of terminated container instances: `previous=true` for restarted
/// containers, the current log for containers terminated now (Job pods). Failures to
/// read a log are not errors: the finding then says no log was available.
async fn fetch_logs(client: &Client, pods: &[Pod]) -> BTreeMap<(String, String, String), String> {
    let mut wanted: Vec<(String, String, String, bool)> = Vec::new();
    for p in pods {
        let Some(status) = p.status.as_ref() else {
            continue;
        };
        let all = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for cs in all {
            let now_failed = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0);
            let restarted = cs
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some();
            if now_failed || restarted {
                wanted.push((
                    ns_of(&p.metadata).to_string(),
                    name_of(&p.metadata).to_string(),
                    cs.name.clone(),
                    !now_failed,
                ));
            }
        }
    }
    wanted.truncate(MAX_LOG_FETCHES);
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
                Ok(text) => Some(((ns, pod, container), text)),
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
