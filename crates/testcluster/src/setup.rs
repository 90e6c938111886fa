//! Setting up a scenario: namespace, nodes, manifests (server-side apply as admin), then
//! waiting until the cluster has settled the way a user would find it.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Event, Namespace, Node, Pod, ServiceAccount};
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::discovery::{Discovery, Scope};
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cluster::TestCluster;
use crate::kubelet::{self, RULES_ANNOTATION, SCENARIO_ANNOTATION};
use crate::scenario::{Scenario, ScenarioSpec};
use crate::Error;

const MANAGER: &str = "kai-testcluster";
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A scenario set up in a namespace.
#[derive(Debug, Clone)]
pub struct ScenarioHandle {
    pub name: String,
    pub namespace: String,
    pub spec: ScenarioSpec,
    /// Names of the scenario's pods once it settled.
    pub pods: Vec<String>,
}

impl ScenarioHandle {
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

/// (apiVersion, kind) → resource, from `Discovery::run()` (1.20 has no aggregated discovery).
pub(crate) struct Resolver {
    map: HashMap<(String, String), (ApiResource, bool)>,
}

impl Resolver {
    async fn discover(client: &Client) -> Result<Resolver, Error> {
        let d = Discovery::new(client.clone())
            .run()
            .await
            .map_err(|e| Error::kube("discovering API resources", e))?;
        let mut map = HashMap::new();
        for group in d.groups() {
            for version in group.versions() {
                for (ar, caps) in group.versioned_resources(version) {
                    map.insert(
                        (ar.api_version.clone(), ar.kind.clone()),
                        (ar.clone(), caps.scope == Scope::Namespaced),
                    );
                }
            }
        }
        Ok(Resolver { map })
    }
}

/// Kinds applied first so that what workloads reference exists when their pods come.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" | "CustomResourceDefinition" | "StorageClass" | "PriorityClass" => 0,
        "ServiceAccount" | "Secret" | "ConfigMap" | "PersistentVolume" | "ResourceQuota"
        | "LimitRange" => 1,
        "PersistentVolumeClaim" | "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            2
        }
        "Service" => 3,
        _ => 4,
    }
}

fn parse_manifests(name: &str, text: &str) -> Result<Vec<Value>, Error> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| Error::Scenario {
            name: name.to_string(),
            message: format!("manifests.yaml does not parse: {e}"),
        })?;
        if v.is_object() {
            docs.push(v);
        }
    }
    docs.sort_by_key(|d| kind_rank(d["kind"].as_str().unwrap_or_default()));
    Ok(docs)
}

fn labels_match(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    selector.as_object().is_some_and(|sel| {
        !sel.is_empty()
            && sel
                .iter()
                .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
    })
}

/// How many pods the manifests produce at least (a lower bound; unknown kinds count 0).
fn expected_pods(docs: &[Value]) -> usize {
    let replicas = |d: &Value| d["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
    docs.iter()
        // A workload whose pods are never created (a quota, a LimitRange or a webhook
        // refuses them) says so: `kai.test/expected-pods: "0"`.
        .map(|d| {
            match d["metadata"]["annotations"]["kai.test/expected-pods"]
                .as_str()
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(n) => n,
                None => expected_of(d, replicas(d)),
            }
        })
        .sum()
}

fn expected_of(d: &Value, replicas: usize) -> usize {
    let replicas = |_: &Value| replicas;
    std::iter::once(d)
        .map(|d| match d["kind"].as_str().unwrap_or_default() {
            "Pod" => 1,
            "Deployment" | "ReplicaSet" | "ReplicationController" => replicas(d),
            "StatefulSet" => {
                if d["spec"]["podManagementPolicy"] == "Parallel" {
                    replicas(d)
                } else {
                    // OrderedReady: the next pod only comes once the previous is Ready.
                    replicas(d).min(1)
                }
            }
            "Job" => {
                if d["spec"]["suspend"] == true {
                    0
                } else {
                    d["spec"]["parallelism"].as_u64().unwrap_or(1).min(1) as usize
                }
            }
            _ => 0,
        })
        .sum()
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits, at most `timeout`, until `namespace`'s default ServiceAccount has its token:
/// ServiceAccount admission (1.20) refuses a Pod in the namespace until then. Whether the
/// token came.
pub async fn wait_for_default_token(client: &Client, namespace: &str, timeout: Duration) -> bool {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + timeout;
    loop {
        let ready = sas
            .get_opt("default")
            .await
            .ok()
            .flatten()
            .and_then(|sa| sa.secrets)
            .is_some_and(|s| !s.is_empty());
        if ready {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TestCluster {
    /// Sets up the embedded scenario `name` in `namespace` (created if needed) and waits
    /// until it settled: pods exist and the fake kubelet posted their statuses and events,
    /// unschedulable pods have FailedScheduling, Services' Endpoints and Deployments'
    /// status reflect the pods.
    pub async fn setup_scenario(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<ScenarioHandle, Error> {
        let s = crate::scenario::scenario(name)?;
        self.setup(&s, namespace, false).await
    }

    /// Like [`TestCluster::setup_scenario`] for a scenario that is not embedded (its kubelet
    /// rules travel in a namespace annotation, so keep its logs small).
    pub async fn setup_custom(
        &self,
        scenario: &Scenario,
        namespace: &str,
    ) -> Result<ScenarioHandle, Error> {
        self.setup(scenario, namespace, true).await
    }

    /// Deletes the scenario's namespace (does not wait for it to go).
    pub async fn teardown_scenario(&self, handle: &ScenarioHandle) -> Result<(), Error> {
        let client = self.admin_client().await?;
        let api: Api<Namespace> = Api::all(client);
        match api.delete(&handle.namespace, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::kube(
                format!("deleting namespace {}", handle.namespace),
                e,
            )),
        }
    }

    async fn resolve(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, bool), Error> {
        let key = (api_version.to_string(), kind.to_string());
        let start = Instant::now();
        loop {
            {
                let mut guard = self.inner.discovery.lock().await;
                if guard.is_none() {
                    *guard = Some(Resolver::discover(client).await?);
                }
                if let Some(found) = guard.as_ref().and_then(|r| r.map.get(&key)) {
                    return Ok(found.clone());
                }
                // Maybe a CRD from the same manifests is not served yet: rediscover.
                *guard = None;
            }
            if start.elapsed() > Duration::from_secs(15) {
                return Err(Error::Other(format!(
                    "the cluster does not serve {kind} in {api_version}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn setup(
        &self,
        s: &Scenario,
        namespace: &str,
        inline_rules: bool,
    ) -> Result<ScenarioHandle, Error> {
        let client = self.admin_client().await?;
        let pp = PatchParams::apply(MANAGER).force();

        let mut annotations = json!({ SCENARIO_ANNOTATION: s.name });
        if inline_rules {
            annotations[RULES_ANNOTATION] =
                json!(serde_json::to_string(&s.spec.kubelet)
                    .map_err(|e| Error::Other(e.to_string()))?);
        }
        let ns_obj = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {SCENARIO_ANNOTATION: s.name}, "annotations": annotations},
        });
        Api::<Namespace>::all(client.clone())
            .patch(namespace, &pp, &Patch::Apply(&ns_obj))
            .await
            .map_err(|e| Error::kube(format!("creating namespace {namespace}"), e))?;

        let nodes: Api<Node> = Api::all(client.clone());
        for n in &s.spec.nodes {
            kubelet::create_node(&client, n).await?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for n in &s.spec.nodes {
            loop {
                let posted = nodes
                    .get_opt(&n.name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|n| n.status?.conditions)
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready"));
                if posted {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Timeout {
                        what: format!("the fake kubelet to register node {}", n.name),
                        secs: 30,
                        detail: " (is a kubelet running for this cluster?)".into(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        let docs = parse_manifests(&s.name, &s.manifests)?;
        if docs.iter().any(|d| d["kind"] == "Pod") {
            // Controllers retry a refused Pod, a manifest does not. (If the token never
            // comes, creating the Pod says why.)
            wait_for_default_token(&client, namespace, Duration::from_secs(30)).await;
        }
        for mut doc in docs.clone() {
            let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let (ar, namespaced) = self.resolve(&client, &api_version, &kind).await?;
            let api: Api<DynamicObject> = if namespaced {
                doc["metadata"]["namespace"] = json!(namespace);
                if kind == "Event" {
                    // An event recorded as a controller would (for what the test cluster
                    // cannot produce itself) is about an object in the same namespace.
                    doc["involvedObject"]["namespace"] = json!(namespace);
                }
                Api::namespaced_with(client.clone(), namespace, &ar)
            } else {
                Api::all_with(client.clone(), &ar)
            };
            api.patch(&name, &pp, &Patch::Apply(&doc))
                .await
                .map_err(|e| Error::Scenario {
                    name: s.name.clone(),
                    message: format!("applying {kind} {name}: {e}"),
                })?;
            if kind == "CustomResourceDefinition" {
                *self.inner.discovery.lock().await = None;
            }
        }

        let pods = self.settle(&client, &s.name, namespace, &docs).await?;
        Ok(ScenarioHandle {
            name: s.name.clone(),
            namespace: namespace.to_string(),
            spec: s.spec.clone(),
            pods,
        })
    }

    async fn settle(
        &self,
        client: &Client,
        name: &str,
        namespace: &str,
        docs: &[Value],
    ) -> Result<Vec<String>, Error> {
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let events_api: Api<Event> = Api::namespaced(client.clone(), namespace);
        let eps_api: Api<Endpoints> = Api::namespaced(client.clone(), namespace);
        let deps_api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let expected = expected_pods(docs);
        let start = Instant::now();
        let mut stable = 0;
        loop {
            let mut waiting_for: Vec<String> = Vec::new();
            let pods: Vec<Pod> = match pods_api.list(&ListParams::default()).await {
                Ok(l) => l
                    .items
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect(),
                Err(e) => {
                    waiting_for.push(format!("listing pods: {e}"));
                    Vec::new()
                }
            };
            if pods.len() < expected {
                waiting_for.push(format!("{} of at least {expected} pods exist", pods.len()));
            }
            let mut failed_sched: Option<Vec<String>> = None;
            for p in &pods {
                let pname = p.metadata.name.clone().unwrap_or_default();
                let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                if bound {
                    let played = p.status.as_ref().and_then(|s| s.host_ip.as_ref()).is_some();
                    if !played {
                        waiting_for.push(format!("the fake kubelet to play pod {pname}"));
                    }
                    continue;
                }
                if failed_sched.is_none() {
                    let lp = ListParams::default().fields("reason=FailedScheduling");
                    failed_sched = Some(
                        events_api
                            .list(&lp)
                            .await
                            .map(|l| {
                                l.items
                                    .into_iter()
                                    .filter_map(|e| e.involved_object.uid)
                                    .collect()
                            })
                            .unwrap_or_default(),
                    );
                }
                let has_event = failed_sched
                    .as_ref()
                    .is_some_and(|uids| p.metadata.uid.as_ref().is_some_and(|u| uids.contains(u)));
                if !has_event {
                    waiting_for.push(format!(
                        "pod {pname} to be scheduled or get FailedScheduling"
                    ));
                }
            }
            let labels_of = |p: &Pod| p.metadata.labels.clone().unwrap_or_default();
            for d in docs {
                let kind = d["kind"].as_str().unwrap_or_default();
                let oname = d["metadata"]["name"].as_str().unwrap_or_default();
                if kind == "Service" && d["spec"]["selector"].is_object() {
                    let want = pods
                        .iter()
                        .filter(|p| labels_match(&d["spec"]["selector"], &labels_of(p)))
                        .filter(|p| {
                            pod_ready(p)
                                && p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some()
                        })
                        .count();
                    let have = match eps_api.get_opt(oname).await {
                        Ok(Some(ep)) => Some(
                            ep.subsets
                                .unwrap_or_default()
                                .iter()
                                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                                .sum::<usize>(),
                        ),
                        _ => None,
                    };
                    if have != Some(want) {
                        waiting_for.push(format!(
                            "Endpoints {oname} to list {want} ready addresses (has {have:?})"
                        ));
                    }
                }
                let refused = d["metadata"]["annotations"]["kai.test/expected-pods"].is_string();
                if kind == "Deployment" && !refused {
                    if let Ok(Some(dep)) = deps_api.get_opt(oname).await {
                        let selector = &d["spec"]["selector"]["matchLabels"];
                        let ready = pods
                            .iter()
                            .filter(|p| labels_match(selector, &labels_of(p)) && pod_ready(p))
                            .count() as i32;
                        let spec_replicas = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                        let st = dep.status.unwrap_or_default();
                        let observed = st.observed_generation.unwrap_or(0)
                            >= dep.metadata.generation.unwrap_or(0);
                        if !observed
                            || st.replicas.unwrap_or(0) != spec_replicas
                            || st.ready_replicas.unwrap_or(0) != ready
                        {
                            waiting_for
                                .push(format!("Deployment {oname} status to show {ready} ready"));
                        }
                    }
                }
            }
            if waiting_for.is_empty() {
                stable += 1;
                // Twice in a row, so a pod the controllers are about to create is not missed.
                if stable >= 2 {
                    let mut names: Vec<String> = pods
                        .iter()
                        .filter_map(|p| p.metadata.name.clone())
                        .collect();
                    names.sort();
                    tracing::debug!(
                        "scenario {name} settled in {namespace} after {:.1?}",
                        start.elapsed()
                    );
                    return Ok(names);
                }
            } else {
                stable = 0;
            }
            if start.elapsed() > SETTLE_TIMEOUT {
                return Err(Error::Timeout {
                    what: format!("scenario {name} to settle in namespace {namespace}"),
                    secs: SETTLE_TIMEOUT.as_secs(),
                    detail: format!("; still waiting for: {}", waiting_for.join("; ")),
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn manifests_sorted_and_counted() {
        let docs = parse_manifests(
            "x",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: 2}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n---\n\
             apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec: {}\n",
        )
        .unwrap();
        assert_eq!(docs[0]["kind"], "Secret");
        assert_eq!(expected_pods(&docs), 3);
    }
}
