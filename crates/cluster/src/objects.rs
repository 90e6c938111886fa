//! Fetching objects of any kind, `list_resources` tables and `get_resource` YAML.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DynamicObject, ListParams};
use serde_json::Value;

use super::budget;
use super::view::ReadError;
use super::{Cluster, ClusterError, Kind};
use kai_text::redact;

/// Objects listed at most, across pages; more is never useful to a model.
const MAX_LIST: usize = 5000;
const PAGE: u32 = 500;

/// `pods in namespace "shop"` / `nodes`: the resource named in RBAC terms.
pub fn resource_desc(kind: &Kind, ns: &str) -> String {
    let group = if kind.resource.group.is_empty() {
        String::new()
    } else {
        format!(".{}", kind.resource.group)
    };
    if kind.namespaced() {
        if ns == "*" {
            format!("{}{group} in all namespaces", kind.resource.plural)
        } else {
            format!("{}{group} in namespace {ns:?}", kind.resource.plural)
        }
    } else {
        format!("{}{group}", kind.resource.plural)
    }
}

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

/// Get one object; a 404 becomes "not found" with similar names from the namespace.
pub async fn get_object(
    cluster: &Cluster,
    kind: &Kind,
    name: &str,
    ns: Option<&str>,
) -> Result<DynamicObject, ClusterError> {
    let ns_name = cluster.checked_namespace(ns)?;
    Cluster::check_name(kind, name)?;
    let api = cluster.api(kind, Some(&ns_name))?;
    match api.get_opt(name).await {
        Ok(Some(o)) => {
            remember_if_secret(kind, std::slice::from_ref(&o));
            Ok(o)
        }
        Ok(None) => Err(not_found(cluster, kind, name, &ns_name).await),
        Err(e) => Err(ClusterError::from_kube(
            e,
            "get",
            &resource_desc(kind, &ns_name),
        )),
    }
}

/// Every Secret read from the cluster has its values remembered before anything else
/// sees it, so a copy anywhere else (a log line, an annotation) is scrubbed too.
fn remember_if_secret(kind: &Kind, objs: &[DynamicObject]) {
    if kind.resource.kind == "Secret" && kind.resource.group.is_empty() {
        for o in objs {
            redact::remember_secret(&o.data);
        }
    }
}

/// "Pod "x" not found in namespace "y"; similar names: …" and what to do next.
pub async fn not_found(cluster: &Cluster, kind: &Kind, name: &str, ns: &str) -> ClusterError {
    let api = match cluster.api(kind, Some(ns)) {
        Ok(api) => api,
        Err(e) => return e,
    };
    let names = api
        .list_metadata(&ListParams::default().limit(PAGE))
        .await
        .map(|list| list.into_iter().filter_map(|o| o.metadata.name).collect())
        .map_err(|e| {
            let what = resource_desc(kind, ns);
            ReadError::from_kube(e, "list", &kind.resource.plural, Some(ns), &what)
        });
    not_found_text(kind, name, ns, names)
}

/// [`not_found`] with the names of what exists already read (`Err`: they could not be,
/// and the hint says so rather than "there are none").
pub fn not_found_text(
    kind: &Kind,
    name: &str,
    ns: &str,
    names: Result<Vec<String>, ReadError>,
) -> ClusterError {
    let where_ = if kind.namespaced() {
        format!(" in namespace {ns:?}")
    } else {
        String::new()
    };
    let names = match names {
        Ok(names) => names,
        Err(e) => {
            return ClusterError::Other(format!(
                "{} {name:?} not found{where_}; the {} that exist could not be listed to suggest one ({})",
                kind.resource.kind,
                kind.resource.plural,
                e.short()
            ))
        }
    };
    let mut similar: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with(name) || name.starts_with(n.as_str()) || n.contains(name))
        .take(5)
        .cloned()
        .collect();
    if similar.is_empty() {
        similar = super::suggest(name, &names);
    }
    let hint = if similar.is_empty() {
        if names.is_empty() {
            format!(
                "; there are no {} here at all — check the namespace",
                kind.resource.plural
            )
        } else {
            format!(
                "; use list_resources kind={} to see the {} that exist",
                kind.resource.kind,
                names.len()
            )
        }
    } else {
        format!("; similar names: {}", similar.join(", "))
    };
    ClusterError::Other(format!(
        "{} {name:?} not found{where_}{hint}",
        kind.resource.kind
    ))
}

/// List `kind` with pagination (at most [`MAX_LIST`] objects); second value: truncated.
pub async fn list_all(
    cluster: &Cluster,
    kind: &Kind,
    ns: Option<&str>,
    lp: ListParams,
) -> Result<(Vec<DynamicObject>, bool), ClusterError> {
    let ns_name = cluster.list_namespace(ns)?;
    let api = cluster.api(kind, Some(&ns_name))?;
    let mut lp = lp.limit(PAGE);
    let mut items = Vec::new();
    loop {
        let page = api
            .list(&lp)
            .await
            .map_err(|e| ClusterError::from_kube(e, "list", &resource_desc(kind, &ns_name)))?;
        remember_if_secret(kind, &page.items);
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() && items.len() < MAX_LIST => lp.continue_token = Some(c),
            Some(c) if !c.is_empty() => return Ok((items, true)),
            _ => return Ok((items, false)),
        }
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListArgs {
    pub kind: String,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

/// `list_resources`: a compact table, cut to `budget_chars`.
pub async fn list_resources(
    cluster: &Cluster,
    args: &ListArgs,
    budget_chars: usize,
) -> Result<String, ClusterError> {
    let kind = cluster.resolve(&args.kind).await?;
    let mut lp = ListParams::default();
    if let Some(l) = args.label_selector.as_deref().filter(|s| !s.is_empty()) {
        lp = lp.labels(l);
    }
    if let Some(f) = args.field_selector.as_deref().filter(|s| !s.is_empty()) {
        lp = lp.fields(f);
    }
    let ns = cluster.list_namespace(args.namespace.as_deref())?;
    let (mut items, truncated) = list_all(cluster, &kind, Some(&ns), lp).await?;
    items.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    let all_ns = kind.namespaced() && ns == "*";
    let (headers, mut rows) = table(&kind.resource.kind, &items);
    let mut headers: Vec<&str> = headers.to_vec();
    if all_ns {
        headers.insert(0, "NAMESPACE");
        for (row, o) in rows.iter_mut().zip(&items) {
            row.insert(0, o.metadata.namespace.clone().unwrap_or_default());
        }
    }
    let scope = if !kind.namespaced() {
        String::new()
    } else if all_ns {
        " in all namespaces".into()
    } else {
        format!(" in namespace {ns}")
    };
    if rows.is_empty() {
        let filter = match (&args.label_selector, &args.field_selector) {
            (None, None) => String::new(),
            _ => " matching the selectors".into(),
        };
        return Ok(format!("No {}{scope}{filter}.", kind.resource.plural));
    }
    let mut out = format!("{} {}{scope}:\n", rows.len(), kind.resource.plural);
    let text = budget::fit_table(
        &headers,
        &rows,
        budget_chars.saturating_sub(out.len() + 80),
        "narrow with label_selector or field_selector",
    );
    out.push_str(&redact::scrub(&text));
    if truncated {
        out.push_str(&format!(
            "\n(listing stopped after {MAX_LIST} objects; narrow with a selector)"
        ));
    }
    Ok(out)
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
fn table(kind: &str, items: &[DynamicObject]) -> (&'static [&'static str], Vec<Vec<String>>) {
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

/// Annotations that are noise to a reader (and last-applied may hold Secret data).
const NOISY_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "control-plane.alpha.kubernetes.io/leader",
    "endpoints.kubernetes.io/last-change-trigger-time",
    "deprecated.daemonset.template.generation",
];

/// What `get_resource` and `describe` withhold from any object: a Secret's values and
/// sensitive ConfigMap entries (by kind name alone: a same-named kind from another group
/// is redacted too), credential-named env values and credential flags in command lines.
pub(crate) fn redact_object(kind: &Kind, v: &mut Value) {
    match kind.resource.kind.as_str() {
        "Secret" => redact::redact_secret_value(v),
        "ConfigMap" => redact::redact_configmap(v),
        _ => {}
    }
    redact::redact_env_values(v);
    redact::redact_args(v);
}

/// Strip what a reader never needs from an object's JSON form.
pub fn clean_object(v: &mut Value) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("selfLink");
        if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            ann.retain(|k, _| !NOISY_ANNOTATIONS.contains(&k.as_str()));
            for (_, val) in ann.iter_mut() {
                if let Some(text) = val.as_str() {
                    if text.len() > 500 {
                        *val = Value::String(format!("<{} chars omitted>", text.len()));
                    }
                }
            }
            if ann.is_empty() {
                meta.remove("annotations");
            }
        }
    }
}

/// `get_resource`: YAML without managedFields and noisy annotations; Secret values
/// never leave this function, inline env values of credential-named variables and
/// credential flags in command lines are withheld, ConfigMap entries are judged by key
/// name and content.
pub async fn get_resource(
    cluster: &Cluster,
    kind: &str,
    name: &str,
    ns: Option<&str>,
    budget_chars: usize,
) -> Result<String, ClusterError> {
    let kind = cluster.resolve(kind).await?;
    let obj = get_object(cluster, &kind, name, ns).await?;
    let mut v = serde_json::to_value(&obj).map_err(|e| ClusterError::Other(e.to_string()))?;
    if v.get("apiVersion").is_none() {
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "apiVersion".into(),
                Value::String(kind.resource.api_version.clone()),
            );
            m.insert("kind".into(), Value::String(kind.resource.kind.clone()));
        }
    }
    clean_object(&mut v);
    redact_object(&kind, &mut v);
    let yaml = serde_yaml::to_string(&v).map_err(|e| ClusterError::Other(e.to_string()))?;
    let yaml = redact::scrub(&yaml);
    Ok(budget::fit_text(
        &yaml,
        budget_chars,
        "use describe for a summary, or list_resources to find a smaller object",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn not_found_says_when_names_could_not_be_listed() {
        let kind = crate::kinds::builtin("deploy").unwrap();
        let e = not_found_text(&kind, "web", "shop", Ok(vec!["web-1".into()]));
        assert!(e.to_string().contains("similar names: web-1"), "{e}");
        let e = not_found_text(&kind, "web", "shop", Ok(vec![]));
        assert!(e.to_string().contains("no deployments here at all"), "{e}");
        // As a list call gets it: the apiserver's 403.
        let denied = kube::core::Status::failure("no", "Forbidden").with_code(403);
        let what = "deployments.apps in namespace \"shop\"";
        let forbidden = ReadError::from_kube(
            kube::Error::Api(denied.boxed()),
            "list",
            "deployments",
            Some("shop"),
            what,
        );
        let e = not_found_text(&kind, "web", "shop", Err(forbidden)).to_string();
        assert!(!e.contains("no deployments here"), "{e}");
        assert!(
            e.contains("could not be listed") && e.contains("forbidden"),
            "{e}"
        );
    }

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
    fn cleaning_drops_noise() {
        let mut v = serde_json::json!({"metadata": {"name": "x", "managedFields": [{}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"}}});
        clean_object(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"metadata": {"name": "x", "annotations": {"keep": "me"}}})
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
