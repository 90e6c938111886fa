//! `list_resources` tables: for each kind, kubectl's essential columns from the object's
//! JSON form, and ages kubectl style. Pure rendering: nothing here reads the cluster.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::DynamicObject;
use serde_json::Value;

/// How long ago `ts` was, kubectl style: 45s, 12m, 3h, 5d.
pub fn age(ts: jiff::Timestamp) -> String {
    let secs = jiff::Timestamp::now().as_second() - ts.as_second();
    human_duration(secs.max(0))
}

pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

pub fn age_of(t: Option<&Time>) -> String {
    t.map(|t| age(t.0)).unwrap_or_else(|| "<unknown>".into())
}

/// Age from an RFC 3339 string inside untyped JSON.
pub fn age_str(v: Option<&Value>) -> String {
    v.and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(age)
        .unwrap_or_else(|| "<unknown>".into())
}

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn n(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

/// The elements of the array at `pointer` (none when it is absent or not an array).
fn array_items<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// `ready/desired` replicas of a Deployment or StatefulSet, as kubectl's READY column.
fn replicas_ready(v: &Value) -> String {
    format!(
        "{}/{}",
        n(v.pointer("/status/readyReplicas")),
        n(v.pointer("/spec/replicas"))
    )
}

/// Table headers and rows for `kind`: the status essentials an operator looks at first.
pub(super) fn table(
    kind: &str,
    items: &[DynamicObject],
) -> (&'static [&'static str], Vec<Vec<String>>) {
    let vals: Vec<(String, Value)> = items
        .iter()
        .map(|o| {
            (
                o.metadata.name.clone().unwrap_or_default(),
                serde_json::to_value(o).unwrap_or(Value::Null),
            )
        })
        .collect();
    let age = |v: &Value| age_str(v.pointer("/metadata/creationTimestamp"));
    let rows = |f: &dyn Fn(&Value) -> Vec<String>| -> Vec<Vec<String>> {
        vals.iter()
            .map(|(name, v)| {
                let mut r = vec![name.clone()];
                r.extend(f(v));
                r
            })
            .collect()
    };
    match kind {
        "Pod" => (
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"],
            rows(&|v| {
                let pod: Option<Pod> = serde_json::from_value(v.clone()).ok();
                let (ready, status, restarts) = pod.as_ref().map(pod_summary).unwrap_or_default();
                vec![
                    ready,
                    status,
                    restarts,
                    age(v),
                    s(v.pointer("/spec/nodeName")),
                ]
            }),
        ),
        "Deployment" => (
            &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            rows(&|v| {
                vec![
                    replicas_ready(v),
                    n(v.pointer("/status/updatedReplicas")).to_string(),
                    n(v.pointer("/status/availableReplicas")).to_string(),
                    age(v),
                ]
            }),
        ),
        "StatefulSet" => (
            &["NAME", "READY", "AGE"],
            rows(&|v| vec![replicas_ready(v), age(v)]),
        ),
        "DaemonSet" => (
            &[
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE",
            ],
            rows(&|v| {
                [
                    "desiredNumberScheduled",
                    "currentNumberScheduled",
                    "numberReady",
                    "updatedNumberScheduled",
                    "numberAvailable",
                ]
                .iter()
                .map(|f| n(v.pointer(&format!("/status/{f}"))).to_string())
                .chain([age(v)])
                .collect()
            }),
        ),
        "ReplicaSet" => (
            &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            rows(&|v| {
                vec![
                    n(v.pointer("/spec/replicas")).to_string(),
                    n(v.pointer("/status/replicas")).to_string(),
                    n(v.pointer("/status/readyReplicas")).to_string(),
                    age(v),
                ]
            }),
        ),
        "Service" => (
            &["NAME", "TYPE", "CLUSTER-IP", "PORTS", "SELECTOR", "AGE"],
            rows(&|v| {
                let ports: Vec<String> = array_items(v, "/spec/ports")
                    .map(|p| {
                        let node = p
                            .get("nodePort")
                            .map(|np| format!(":{}", s(Some(np))))
                            .unwrap_or_default();
                        format!("{}{node}/{}", s(p.get("port")), s(p.get("protocol")))
                    })
                    .collect();
                let sel: Vec<String> = v
                    .pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(k, x)| format!("{k}={}", s(Some(x))))
                    .collect();
                vec![
                    s(v.pointer("/spec/type")),
                    s(v.pointer("/spec/clusterIP")),
                    ports.join(","),
                    if sel.is_empty() {
                        "<none>".into()
                    } else {
                        sel.join(",")
                    },
                    age(v),
                ]
            }),
        ),
        "Job" => (
            &["NAME", "COMPLETIONS", "STATUS", "AGE"],
            rows(&|v| {
                vec![
                    format!(
                        "{}/{}",
                        n(v.pointer("/status/succeeded")),
                        v.pointer("/spec/completions")
                            .and_then(Value::as_i64)
                            .unwrap_or(1)
                    ),
                    true_conditions(v).unwrap_or_else(|| {
                        if n(v.pointer("/status/active")) > 0 {
                            "Running".into()
                        } else {
                            String::new()
                        }
                    }),
                    age(v),
                ]
            }),
        ),
        "CronJob" => (
            &[
                "NAME",
                "SCHEDULE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            rows(&|v| {
                vec![
                    s(v.pointer("/spec/schedule")),
                    v.pointer("/spec/suspend")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string(),
                    v.pointer("/status/active")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                        .to_string(),
                    v.pointer("/status/lastScheduleTime")
                        .map(|t| age_str(Some(t)))
                        .unwrap_or_else(|| "<none>".into()),
                    age(v),
                ]
            }),
        ),
        "Node" => (
            &["NAME", "STATUS", "VERSION", "AGE"],
            rows(&|v| {
                let ready = condition(v, "Ready");
                let mut status = match ready.as_deref() {
                    Some("True") => "Ready".to_string(),
                    Some(_) => "NotReady".to_string(),
                    None => "Unknown".to_string(),
                };
                if v.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                    status.push_str(",SchedulingDisabled");
                }
                vec![
                    status,
                    s(v.pointer("/status/nodeInfo/kubeletVersion")),
                    age(v),
                ]
            }),
        ),
        "PersistentVolumeClaim" => (
            &[
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "STORAGECLASS",
                "AGE",
            ],
            rows(&|v| {
                vec![
                    s(v.pointer("/status/phase")),
                    s(v.pointer("/spec/volumeName")),
                    s(v.pointer("/status/capacity/storage")),
                    s(v.pointer("/spec/storageClassName")),
                    age(v),
                ]
            }),
        ),
        "ConfigMap" => (
            &["NAME", "DATA", "AGE"],
            rows(&|v| {
                let count = ["/data", "/binaryData"]
                    .iter()
                    .filter_map(|p| v.pointer(p).and_then(Value::as_object))
                    .map(|m| m.len())
                    .sum::<usize>();
                vec![count.to_string(), age(v)]
            }),
        ),
        "Secret" => (
            &["NAME", "TYPE", "DATA", "AGE"],
            rows(&|v| {
                let count = v
                    .pointer("/data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
                vec![s(v.pointer("/type")), count.to_string(), age(v)]
            }),
        ),
        "Namespace" => (
            &["NAME", "STATUS", "AGE"],
            rows(&|v| vec![s(v.pointer("/status/phase")), age(v)]),
        ),
        "Event" => (
            &["NAME", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            rows(&|v| {
                let last = v
                    .pointer("/lastTimestamp")
                    .filter(|t| !t.is_null())
                    .or_else(|| v.pointer("/eventTime"));
                vec![
                    age_str(last),
                    s(v.pointer("/type")),
                    s(v.pointer("/reason")),
                    format!(
                        "{}/{}",
                        s(v.pointer("/involvedObject/kind")).to_lowercase(),
                        s(v.pointer("/involvedObject/name"))
                    ),
                    s(v.pointer("/message")),
                ]
            }),
        ),
        "Ingress" => (
            &["NAME", "CLASS", "HOSTS", "ADDRESS", "AGE"],
            rows(&|v| {
                let hosts: Vec<String> = array_items(v, "/spec/rules")
                    .map(|r| s(r.get("host")))
                    .filter(|h| !h.is_empty())
                    .collect();
                let addr: Vec<String> = array_items(v, "/status/loadBalancer/ingress")
                    .map(|i| {
                        if i.get("ip").is_some() {
                            s(i.get("ip"))
                        } else {
                            s(i.get("hostname"))
                        }
                    })
                    .collect();
                vec![
                    s(v.pointer("/spec/ingressClassName")),
                    if hosts.is_empty() {
                        "*".into()
                    } else {
                        hosts.join(",")
                    },
                    addr.join(","),
                    age(v),
                ]
            }),
        ),
        _ => (
            &["NAME", "STATUS", "AGE"],
            rows(&|v| {
                let status = true_conditions(v)
                    .or_else(|| v.pointer("/status/phase").map(|p| s(Some(p))))
                    .unwrap_or_default();
                vec![status, age(v)]
            }),
        ),
    }
}

/// The `status` of a condition of an untyped object.
fn condition(v: &Value, ty: &str) -> Option<String> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
        .map(|c| s(c.get("status")))
}

/// Conditions in a short form: `Ready` when true, `Ready=False(Reason)` otherwise.
fn true_conditions(v: &Value) -> Option<String> {
    let conds = v.pointer("/status/conditions")?.as_array()?;
    if conds.is_empty() {
        return None;
    }
    Some(
        conds
            .iter()
            .map(|c| {
                let ty = s(c.get("type"));
                match s(c.get("status")).as_str() {
                    "True" => ty,
                    st => {
                        let reason = s(c.get("reason"));
                        if reason.is_empty() {
                            format!("{ty}={st}")
                        } else {
                            format!("{ty}={st}({reason})")
                        }
                    }
                }
            })
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// kubectl's READY, STATUS and RESTARTS columns for a pod.
pub fn pod_summary(pod: &Pod) -> (String, String, String) {
    let status = pod.status.as_ref();
    let cs = status.and_then(|s| s.container_statuses.as_ref());
    let total = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    let ready = cs.map_or(0, |c| c.iter().filter(|c| c.ready).count());
    let restarts: i32 = cs.map_or(0, |c| c.iter().map(|c| c.restart_count).sum());
    let mut phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    if let Some(r) = status.and_then(|s| s.reason.clone()) {
        phase = r;
    }
    // An init container that has not finished decides the status, as in kubectl.
    let init = status.and_then(|s| s.init_container_statuses.as_ref());
    let init_total = init.map_or(0, Vec::len);
    for (i, c) in init.into_iter().flatten().enumerate() {
        let st = c.state.as_ref();
        if let Some(t) = st.and_then(|s| s.terminated.as_ref()) {
            if t.exit_code == 0 {
                continue;
            }
            phase = format!(
                "Init:{}",
                t.reason
                    .clone()
                    .unwrap_or_else(|| format!("ExitCode:{}", t.exit_code))
            );
        } else if let Some(w) = st
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
            .filter(|r| r != "PodInitializing")
        {
            phase = format!("Init:{w}");
        } else {
            phase = format!("Init:{i}/{init_total}");
        }
        let restarts: i32 =
            restarts + init.map_or(0, |v| v.iter().map(|c| c.restart_count).sum::<i32>());
        return (format!("{ready}/{total}"), phase, restarts.to_string());
    }
    for c in cs.into_iter().flatten() {
        let st = c.state.as_ref();
        if let Some(r) = st
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
        {
            phase = r;
        } else if let Some(t) = st.and_then(|s| s.terminated.as_ref()) {
            phase = t
                .reason
                .clone()
                .unwrap_or_else(|| format!("ExitCode:{}", t.exit_code));
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        phase = "Terminating".into();
    }
    let last = cs
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c.last_state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .clone()
        })
        .max_by_key(|t| t.0);
    let restarts = match last {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", age(t.0)),
        _ => restarts.to_string(),
    };
    (format!("{ready}/{total}"), phase, restarts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pod_columns() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app"}, {"name": "side"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 7, "image": "i", "imageID": "",
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                {"name": "side", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
                 "state": {"running": {}}}
            ]}
        }))
        .unwrap();
        let (ready, status, restarts) = pod_summary(&pod);
        assert_eq!(
            (ready.as_str(), status.as_str(), restarts.as_str()),
            ("1/2", "CrashLoopBackOff", "7")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600), "3h");
        assert_eq!(human_duration(5 * 86400), "5d");
    }
}
