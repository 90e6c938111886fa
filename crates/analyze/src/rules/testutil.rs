//! Small builders for rule tests: objects come from `json!` so a test reads like a manifest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::core::v1::{Event, Pod};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::snapshot::Snapshot;

pub const NS: &str = "app";

pub fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object json")
}

pub fn now() -> jiff::Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

/// A time `secs` seconds before [`now`], RFC 3339.
pub fn ago(secs: i64) -> String {
    (now() - jiff::SignedDuration::from_secs(secs)).to_string()
}

pub fn snap() -> Snapshot {
    Snapshot {
        now: Some(now()),
        ..Default::default()
    }
}

/// A pod of Deployment `app` (through ReplicaSet `{app}-rs`), created an hour ago.
pub fn pod(name: &str, app: &str, spec: Value, status: Value) -> Pod {
    obj(json!({
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app},
            "creationTimestamp": ago(3600),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-rs"), "uid": "u", "controller": true}]},
        "spec": spec,
        "status": status,
    }))
}

/// A Deployment `name` with its ReplicaSet `{name}-rs`, both added to the snapshot.
pub fn add_deployment(s: &mut Snapshot, name: &str, replicas: i32, pod_spec: Value) {
    s.deployments.push(obj(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}},
    })));
    s.replicasets.push(obj(json!({
        "metadata": {"name": format!("{name}-rs"), "namespace": NS,
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": "d", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}},
    })));
}

/// A pod of Deployment `app` whose one container `app` runs, ready or not.
pub fn running_pod(name: &str, app: &str, spec: Value, ready: bool) -> Pod {
    let status = pod_status("Running", vec![running("app", ready, 0)]);
    pod(name, app, spec, status)
}

/// A pod of Deployment `app` whose one container `app` runs and is ready.
pub fn ready_pod(name: &str, app: &str, spec: Value) -> Pod {
    running_pod(name, app, spec, true)
}

/// A one-replica Deployment `name` running `spec`, with its ready pod `{name}-0`.
pub fn add_ready_deployment(s: &mut Snapshot, name: &str, spec: Value) {
    add_deployment(s, name, 1, spec.clone());
    s.pods.push(ready_pod(&format!("{name}-0"), name, spec));
}

/// A pod of Deployment `app` whose container `app` crash-loops after `restarts` restarts,
/// `last` its last termination; the waiting message is the kubelet's.
pub fn crash_looping_pod(name: &str, app: &str, restarts: i32, last: Value) -> Pod {
    let message = "back-off 5m0s restarting failed container";
    let app_status = waiting("app", "CrashLoopBackOff", message, restarts, last);
    pod(
        name,
        app,
        app_spec(),
        pod_status("Running", vec![app_status]),
    )
}

pub fn event(kind: &str, name: &str, type_: &str, reason: &str, message: &str) -> Event {
    obj(json!({
        "metadata": {"name": format!("{name}.1"), "namespace": NS},
        "involvedObject": {"kind": kind, "name": name, "namespace": NS},
        "type": type_, "reason": reason, "message": message, "count": 3,
        "lastTimestamp": ago(30),
    }))
}

pub fn container(name: &str, extra: Value) -> Value {
    let mut c = json!({"name": name, "image": "registry.example.com/app:1.0",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}]});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// A pod spec with one plain container, `app`.
pub fn app_spec() -> Value {
    json!({"containers": [container("app", json!({}))]})
}

pub fn running(name: &str, ready: bool, restarts: i32) -> Value {
    json!({"name": name, "ready": ready, "restartCount": restarts, "image": "x", "imageID": "",
        "state": {"running": {"startedAt": ago(600)}}})
}

pub fn waiting(name: &str, reason: &str, message: &str, restarts: i32, last: Value) -> Value {
    json!({"name": name, "ready": false, "restartCount": restarts, "image": "x", "imageID": "",
        "state": {"waiting": {"reason": reason, "message": message}}, "lastState": last})
}

/// Container `name` waiting in CrashLoopBackOff after `restarts` restarts; `last` is its `lastState`.
pub fn crash_loop(name: &str, restarts: i32, last: Value) -> Value {
    waiting(name, "CrashLoopBackOff", "", restarts, last)
}

pub fn terminated(reason: &str, code: i32, finished_secs_ago: i64) -> Value {
    json!({"terminated": {"reason": reason, "exitCode": code,
        "startedAt": ago(finished_secs_ago + 5), "finishedAt": ago(finished_secs_ago)}})
}

pub fn pod_status(phase: &str, containers: Vec<Value>) -> Value {
    let ready = containers.iter().all(|c| c["ready"] == json!(true));
    json!({"phase": phase, "hostIP": "10.0.0.1", "podIP": "10.1.0.5",
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
        "containerStatuses": containers})
}

/// Whether some evidence line of `f` contains `part`.
pub fn evidence_has(f: &crate::Finding, part: &str) -> bool {
    f.evidence.iter().any(|e| e.contains(part))
}

pub fn causes(f: &[crate::Finding]) -> Vec<&str> {
    f.iter().map(|f| f.cause.as_str()).collect()
}
