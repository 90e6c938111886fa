//! The fake kubelet: in-process tokio tasks that play the kubelet's part for every Node
//! labelled `kai.test/fake-node=true`. It keeps node status and leases fresh, plays pods
//! bound to those nodes (status subresource + kubelet events) as the namespace's scenario
//! says, confirms pod deletions, and serves container logs over HTTPS.
//!
//! Behaviour is looked up from the cluster itself (the namespace's `kai.test/scenario`
//! annotation, or inline rules in `kai.test/kubelet-rules`), so any process can set up a
//! scenario on a cluster whose kubelet runs elsewhere (`kai testcluster up`, or
//! `KAI_TESTCLUSTER_KUBECONFIG`).

pub mod play;
pub mod server;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde_json::json;

use crate::scenario::{KubeletRule, NodeSpec};
use crate::Error;

pub const FAKE_NODE_LABEL: &str = "kai.test/fake-node";
pub const NODE_SPEC_ANNOTATION: &str = "kai.test/node-spec";
pub const SCENARIO_ANNOTATION: &str = "kai.test/scenario";
pub const RULES_ANNOTATION: &str = "kai.test/kubelet-rules";
const MANAGER: &str = "kai-fake-kubelet";
const HEARTBEAT: Duration = Duration::from_secs(10);

struct NodeEntry {
    spec: NodeSpec,
    /// lastTransitionTime of the node's conditions: stable across heartbeats.
    since: Timestamp,
}

#[derive(Default)]
pub(crate) struct KubeletState {
    pub(crate) logs: Mutex<server::PodLogs>,
    played: Mutex<HashSet<String>>,
    deleting: Mutex<HashSet<String>>,
    nodes: Mutex<HashMap<String, NodeEntry>>,
    next_ip: AtomicU32,
    pub(crate) port: AtomicU16,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The Node object for a fake node (labels, the spec annotation, taints).
pub(crate) fn node_object(spec: &NodeSpec) -> Result<Node, Error> {
    let mut labels: BTreeMap<String, String> = BTreeMap::from([
        ("kubernetes.io/hostname".into(), spec.name.clone()),
        ("kubernetes.io/os".into(), "linux".into()),
        ("kubernetes.io/arch".into(), "amd64".into()),
        ("beta.kubernetes.io/os".into(), "linux".into()),
        ("beta.kubernetes.io/arch".into(), "amd64".into()),
        (FAKE_NODE_LABEL.into(), "true".into()),
    ]);
    labels.extend(spec.labels.clone());
    let mut taints: Vec<serde_json::Value> = spec
        .taints
        .iter()
        .map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect}))
        .collect();
    // What the TaintNodesByCondition admission plugin and the node lifecycle controller
    // would add; set up front so the scheduler never sees such a node untainted.
    if !spec.ready {
        taints.push(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}));
    }
    if spec.unschedulable {
        taints.push(json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}));
    }
    for p in &spec.pressure {
        taints.push(
            json!({"key": format!("node.kubernetes.io/{p}-pressure"), "effect": "NoSchedule"}),
        );
    }
    let spec_json = serde_json::to_string(spec).map_err(|e| Error::Other(e.to_string()))?;
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": {
                NODE_SPEC_ANNOTATION: spec_json,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"taints": taints, "unschedulable": spec.unschedulable},
        // Nodes may carry status on create. Without a Ready condition from the start, the
        // node lifecycle controller sees no conditions, strips the not-ready taint above,
        // and the scheduler can place pods on a NotReady node until the first heartbeat.
        "status": {"conditions": [initial_ready_condition(spec.ready)]},
    }))
    .map_err(|e| Error::Other(format!("node object: {e}")))
}

fn initial_ready_condition(ready: bool) -> serde_json::Value {
    let now = ts(Timestamp::now());
    let (status, reason) = if ready {
        ("True", "KubeletReady")
    } else {
        ("False", "KubeletNotReady")
    };
    json!({"type": "Ready", "status": status, "reason": reason, "message": reason,
           "lastHeartbeatTime": now, "lastTransitionTime": now})
}

/// Creates a fake node unless it exists (then it is left as is: the node lifecycle
/// controller may have added taints of its own).
pub(crate) async fn create_node(client: &Client, spec: &NodeSpec) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    match api
        .create(&PostParams::default(), &node_object(spec)?)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::kube(format!("creating node {}", spec.name), e)),
    }
}

pub(crate) struct Kubelet {
    pub(crate) state: Arc<KubeletState>,
}

impl Kubelet {
    /// Starts the HTTPS endpoint and the watch loops on the current runtime.
    pub(crate) async fn start(client: Client) -> Result<Kubelet, Error> {
        let state = Arc::new(KubeletState::default());
        let port = server::serve(state.clone()).await?;
        state.port.store(port, Ordering::SeqCst);
        tokio::spawn(watch_nodes(client.clone(), state.clone()));
        tokio::spawn(heartbeat(client.clone(), state.clone()));
        tokio::spawn(watch_pods(client, state.clone()));
        Ok(Kubelet { state })
    }
}

async fn post_node_status(client: &Client, state: &KubeletState, name: &str) {
    let (spec, since) = {
        let nodes = lock(&state.nodes);
        match nodes.get(name) {
            Some(n) => (n.spec.clone(), n.since),
            None => return,
        }
    };
    let now = Timestamp::now();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": ts(now), "lastTransitionTime": ts(since)})
    };
    let ready = if spec.ready {
        cond(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        )
    } else {
        cond(
            "Ready",
            "False",
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
        )
    };
    let pressed = |what: &str| spec.pressure.iter().any(|p| p == what);
    let resources = json!({
        "cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods,
        "ephemeral-storage": "100Gi", "hugepages-2Mi": "0",
    });
    let port = state.port.load(Ordering::SeqCst);
    let patch = json!({"status": {
        "conditions": [
            if pressed("memory") {
                cond("MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
            } else {
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available")
            },
            if pressed("disk") {
                cond("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
            } else {
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure")
            },
            if pressed("pid") {
                cond("PIDPressure", "True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
            } else {
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available")
            },
            ready,
        ],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": spec.name},
        ],
        "capacity": resources,
        "allocatable": resources,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": "kai0000000000000000000000000000",
            "systemUUID": "kai-fake-node",
            "bootID": "kai-fake-boot",
            "kernelVersion": "6.1.0-kai",
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "containerRuntimeVersion": "containerd://1.6.20",
            "kubeletVersion": "v1.20.2",
            "kubeProxyVersion": "v1.20.2",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }});
    let api: Api<Node> = Api::all(client.clone());
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!("fake kubelet: posting status of node {name}: {e}");
    }
    // The node lifecycle controller also watches the node's lease.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                 "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()},
    });
    if let Err(e) = leases
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&lease),
        )
        .await
    {
        tracing::debug!("fake kubelet: renewing lease of node {name}: {e}");
    }
}

async fn watch_nodes(client: Client, state: Arc<KubeletState>) {
    let api: Api<Node> = Api::all(client.clone());
    let cfg = watcher::Config::default().labels(&format!("{FAKE_NODE_LABEL}=true"));
    let mut stream = watcher(api, cfg).default_backoff().boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Apply(node) | watcher::Event::InitApply(node)) => {
                let Some(name) = node.metadata.name.clone() else {
                    continue;
                };
                let spec = node
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(NODE_SPEC_ANNOTATION))
                    .and_then(|s| serde_json::from_str::<NodeSpec>(s).ok())
                    .unwrap_or_else(|| NodeSpec::new(&name));
                let has_status = node
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready"));
                let is_new = {
                    let mut nodes = lock(&state.nodes);
                    let new = !nodes.contains_key(&name);
                    if new {
                        nodes.insert(
                            name.clone(),
                            NodeEntry {
                                spec,
                                since: Timestamp::now(),
                            },
                        );
                    }
                    new
                };
                if is_new || !has_status {
                    post_node_status(&client, &state, &name).await;
                }
            }
            Ok(watcher::Event::Delete(node)) => {
                if let Some(name) = node.metadata.name {
                    lock(&state.nodes).remove(&name);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("fake kubelet: node watch: {e}"),
        }
    }
}

async fn heartbeat(client: Client, state: Arc<KubeletState>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let names: Vec<String> = lock(&state.nodes).keys().cloned().collect();
        for name in names {
            post_node_status(&client, &state, &name).await;
        }
    }
}

async fn is_fake_node(client: &Client, state: &KubeletState, node: &str) -> bool {
    if lock(&state.nodes).contains_key(node) {
        return true;
    }
    // The scheduler may bind to a node before our node watch has seen it.
    let api: Api<Node> = Api::all(client.clone());
    match api.get_opt(node).await {
        Ok(Some(n)) => n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(FAKE_NODE_LABEL))
            .is_some_and(|v| v == "true"),
        _ => false,
    }
}

async fn watch_pods(client: Client, state: Arc<KubeletState>) {
    let api: Api<Pod> = Api::all(client.clone());
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                handle_pod(&client, &state, pod).await;
            }
            Ok(watcher::Event::Delete(pod)) => {
                let key = (
                    pod.metadata.namespace.clone().unwrap_or_default(),
                    pod.metadata.name.clone().unwrap_or_default(),
                );
                lock(&state.logs).remove(&key);
                if let Some(uid) = &pod.metadata.uid {
                    lock(&state.played).remove(uid);
                    lock(&state.deleting).remove(uid);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("fake kubelet: pod watch: {e}"),
        }
    }
}

async fn handle_pod(client: &Client, state: &Arc<KubeletState>, pod: Pod) {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return;
    };
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    if !is_fake_node(client, state, &node).await {
        return;
    }
    if pod.metadata.deletion_timestamp.is_some() {
        // A real kubelet stops the containers, then confirms with a zero-grace delete;
        // without that, pods stay Terminating and namespaces never go away.
        if lock(&state.deleting).insert(uid.clone()) {
            let client = client.clone();
            tokio::spawn(async move {
                let api: Api<Pod> = Api::namespaced(
                    client,
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                );
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                let name = pod.metadata.name.unwrap_or_default();
                if let Err(e) = api.delete(&name, &dp).await {
                    tracing::debug!("fake kubelet: confirming deletion of {name}: {e}");
                }
            });
        }
        return;
    }
    if lock(&state.played).insert(uid.clone()) {
        let client = client.clone();
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = play_pod(&client, &state, &pod, &node).await {
                tracing::warn!("fake kubelet: {e}");
                // Let a later watch event retry.
                lock(&state.played).remove(&uid);
            }
        });
    }
}

/// The kubelet rules for a namespace: inline rules, else the named embedded scenario's.
async fn rules_for_namespace(client: &Client, ns: &str) -> Vec<KubeletRule> {
    let api: Api<Namespace> = Api::all(client.clone());
    let Ok(Some(n)) = api.get_opt(ns).await else {
        return Vec::new();
    };
    let ann = n.metadata.annotations.unwrap_or_default();
    if let Some(rules) = ann.get(RULES_ANNOTATION) {
        match serde_json::from_str(rules) {
            Ok(r) => return r,
            Err(e) => tracing::warn!("fake kubelet: bad {RULES_ANNOTATION} on {ns}: {e}"),
        }
    }
    match ann.get(SCENARIO_ANNOTATION) {
        Some(name) => match crate::scenario::scenario(name) {
            Ok(s) => s.spec.kubelet,
            Err(e) => {
                tracing::warn!("fake kubelet: namespace {ns}: {e}; playing its pods healthy");
                Vec::new()
            }
        },
        None => Vec::new(),
    }
}

fn next_ip(state: &KubeletState) -> String {
    let n = state.next_ip.fetch_add(1, Ordering::SeqCst);
    format!("10.244.{}.{}", (n / 250) % 256, n % 250 + 2)
}

async fn play_pod(
    client: &Client,
    state: &KubeletState,
    pod: &Pod,
    node: &str,
) -> Result<(), Error> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let rules = rules_for_namespace(client, &ns).await;
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let rule = rules.iter().find(|r| r.matches(&labels));
    let ip = next_ip(state);
    let now = Timestamp::now();
    let plan = play::play(&play::PlayInput {
        pod,
        rule,
        node,
        pod_ip: &ip,
        now,
    });

    // Events first: once the status is visible, its events are too (setup waits on status).
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    for (i, e) in plan.events.iter().enumerate() {
        let mut involved = json!({
            "apiVersion": "v1", "kind": "Pod", "name": name, "namespace": ns,
            "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version,
        });
        if let Some(fp) = &e.field_path {
            involved["fieldPath"] = json!(fp);
        }
        let ev: Event = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {
                "name": format!("{name}.{:x}{:04x}", now.as_nanosecond() as u64, i),
                "namespace": ns,
            },
            "involvedObject": involved,
            "reason": e.reason, "message": e.message, "type": e.type_, "count": e.count,
            "source": {"component": "kubelet", "host": node},
            "firstTimestamp": ts(now), "lastTimestamp": ts(now),
            "reportingComponent": "kubelet", "reportingInstance": node,
        }))
        .map_err(|err| Error::Other(format!("event object: {err}")))?;
        events
            .create(&PostParams::default(), &ev)
            .await
            .map_err(|err| {
                Error::kube(
                    format!("posting event {} on pod {ns}/{name}", e.reason),
                    err,
                )
            })?;
    }
    lock(&state.logs).insert((ns.clone(), name.clone()), plan.logs.clone());

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut last = None;
    for _ in 0..5 {
        match pods
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&plan.status_patch),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    match last {
        Some(e) => Err(Error::kube(format!("posting status of pod {ns}/{name}"), e)),
        None => Ok(()),
    }
}
