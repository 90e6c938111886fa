//! Describe-style summaries: what `kubectl describe` shows, minus what a diagnosis never
//! needs, plus what it does (owner chain, referenced Secrets/ConfigMaps checked for
//! existence, the pods of a workload summarized), followed by the object's events.
//!
//! Values from Secrets are never rendered: env vars show their reference, referenced
//! Secrets are checked for existence and key names only.
//!
//! Every read goes through a [`NamespaceView`]: a describe on its own makes the narrow
//! requests it always made, and one inside a pre-gathered turn takes the turn's lists.
//! A read that fails is a line saying what could not be read and why, never an empty
//! section.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, Endpoints, Event, Node, PersistentVolumeClaim, Pod, PodSpec,
    PodTemplateSpec, Probe, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::budget;
use super::events;
use super::objects::{self, age, age_of};
use super::view::{Listable, NamespaceView, OwnerLookup, ReadError};
use super::{Cluster, ClusterError, Kind};
use kai_analyze::owners::{chain_text, Found, OwnerWalk};
use kai_analyze::quantity::parse_quantity;
use kai_analyze::selector::{workload_selector, Selector};
use kai_text::redact;

/// Events shown under a describe, at most.
const MAX_EVENTS: usize = 15;
/// Pods of a workload listed one per line, at most.
const MAX_PODS: usize = 10;

macro_rules! w {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

/// `describe`: `kind`/`name` in `ns` (the session default when `None`), read on its own.
pub async fn describe(
    cluster: &Cluster,
    kind: &str,
    name: &str,
    ns: Option<&str>,
    budget_chars: usize,
) -> Result<String, ClusterError> {
    let ns = cluster.checked_namespace(ns)?;
    let view = NamespaceView::new(cluster, Some(&ns))?;
    describe_in(&view, kind, name, budget_chars).await
}

/// `describe` reading through `view` (a turn's view of the object's namespace).
pub async fn describe_in(
    view: &NamespaceView<'_>,
    kind: &str,
    name: &str,
    budget_chars: usize,
) -> Result<String, ClusterError> {
    let cluster = view.cluster();
    let kind = cluster.resolve(kind).await?;
    let ns = match view.namespace() {
        Some(ns) => ns.to_string(),
        None => {
            return Err(ClusterError::Other(
                "describe needs one namespace, not all of them".into(),
            ))
        }
    };
    Cluster::check_name(&kind, name)?;
    let builtin_group = matches!(kind.resource.group.as_str(), "" | "apps" | "batch");
    let text = match (builtin_group, kind.resource.kind.as_str()) {
        (true, "Pod") => describe_pod(view, &kind, name).await?,
        (true, "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job") => {
            describe_workload(view, &kind, name).await?
        }
        (true, "Service") => describe_service(view, &kind, name).await?,
        (true, "Node") => describe_node(view, &kind, name).await?,
        _ => describe_generic(view, &kind, name, &ns).await?,
    };
    let text = redact::scrub(&text);
    Ok(budget::fit_text(
        &text,
        budget_chars,
        "use list_events, get_logs or get_resource for the parts that were cut",
    ))
}

/// The object itself: from the view; a missing one is "not found" with similar names.
async fn typed<K: Listable>(
    view: &NamespaceView<'_>,
    kind: &Kind,
    name: &str,
) -> Result<K, ClusterError> {
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

fn header(out: &mut String, kind: &str, meta: &ObjectMeta) {
    w!(out, "{kind}: {}", meta.name.clone().unwrap_or_default());
    if let Some(ns) = &meta.namespace {
        w!(out, "Namespace: {ns}");
    }
    w!(out, "Age: {}", age_of(meta.creation_timestamp.as_ref()));
    if let Some(l) = meta.labels.as_ref().filter(|l| !l.is_empty()) {
        w!(out, "Labels: {}", kv(l));
    }
    if let Some(t) = &meta.deletion_timestamp {
        w!(
            out,
            "Deleting: since {} ago (finalizers: {})",
            age(t.0),
            meta.finalizers.clone().unwrap_or_default().join(", ")
        );
    }
}

fn kv(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Events about one object, aggregated; `events_all` is the namespace's list when the
/// caller already has it (one request serves a workload and its pods).
fn events_section(
    out: &mut String,
    events_all: &[Event],
    kind: &str,
    names: &BTreeSet<String>,
    with_object: bool,
    title: &str,
) {
    events_where(
        out,
        events_all,
        |e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object
                    .name
                    .as_ref()
                    .is_some_and(|n| names.contains(n))
        },
        with_object,
        title,
    )
}

fn events_where(
    out: &mut String,
    events_all: &[Event],
    keep: impl Fn(&Event) -> bool,
    with_object: bool,
    title: &str,
) {
    let mine: Vec<Event> = events_all.iter().filter(|e| keep(e)).cloned().collect();
    let agg = events::aggregate(&mine);
    if agg.is_empty() {
        w!(out, "{title}: <none>");
        return;
    }
    w!(out, "{title} (newest first):");
    for line in events::render_lines(&agg[..agg.len().min(MAX_EVENTS)], with_object) {
        w!(out, "  {}", line.trim_start());
    }
    if agg.len() > MAX_EVENTS {
        w!(
            out,
            "  … {} older distinct events; use list_events",
            agg.len() - MAX_EVENTS
        );
    }
}

/// Events are context, not the answer: a failure to read them (RBAC) does not fail the
/// describe, but the section says so instead of looking empty.
fn events_or_why(out: &mut String, events: &Result<Vec<Event>, ReadError>, title: &str) -> bool {
    match events {
        Ok(_) => true,
        Err(e) => {
            w!(out, "{title}: could not be read ({e})");
            false
        }
    }
}

/// [`events_section`] for one object, or why its events could not be read.
fn object_events(out: &mut String, evs: &Result<Vec<Event>, ReadError>, kind: &str, name: &str) {
    if let Ok(evs) = evs {
        events_section(
            out,
            evs,
            kind,
            &BTreeSet::from([name.to_string()]),
            false,
            "Events",
        );
    } else {
        events_or_why(out, evs, "Events");
    }
}

// ---------------------------------------------------------------------------------------
// Pods

async fn describe_pod(
    view: &NamespaceView<'_>,
    kind: &Kind,
    name: &str,
) -> Result<String, ClusterError> {
    let pod: Pod = typed(view, kind, name).await?;
    let (chain, refs, evs) = futures::join!(
        owner_chain(view, &pod.metadata),
        check_references(view, pod.spec.as_ref()),
        view.events_about("Pod", name),
    );
    let mut out = String::new();
    header(&mut out, "Pod", &pod.metadata);
    if !chain.is_empty() {
        w!(out, "Controlled by: {chain}");
    }
    pod_body(&mut out, &pod);
    if !refs.is_empty() {
        w!(out, "Referenced objects:");
        for r in refs {
            w!(out, "  {r}");
        }
    }
    object_events(&mut out, &evs, "Pod", name);
    Ok(out)
}

fn pod_body(out: &mut String, pod: &Pod) {
    let status = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let (ready, st, restarts) = objects::pod_summary(pod);
    w!(
        out,
        "Status: {st} (phase {}, ready {ready}, restarts {restarts})",
        status.phase.clone().unwrap_or_default()
    );
    if let Some(r) = &status.reason {
        w!(
            out,
            "Reason: {r}: {}",
            status.message.clone().unwrap_or_default()
        );
    } else if let Some(m) = &status.message {
        w!(out, "Message: {m}");
    }
    w!(
        out,
        "Node: {}",
        spec.node_name
            .clone()
            .unwrap_or_else(|| "<not scheduled>".into())
    );
    if let Some(ip) = &status.pod_ip {
        w!(out, "IP: {ip}");
    }
    if let Some(t) = &status.start_time {
        w!(out, "Started: {} ago", age(t.0));
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| *s != "default")
    {
        w!(out, "Service account: {sa}");
    }
    if let Some(c) = status.conditions.as_ref().filter(|c| !c.is_empty()) {
        // Ready and ContainersReady usually carry the same message: say it once.
        let mut said: Vec<&str> = Vec::new();
        let parts: Vec<String> = c
            .iter()
            .map(|c| {
                let mut s = format!("{}={}", c.type_, c.status);
                if c.status != "True" {
                    if let Some(r) = &c.reason {
                        s.push_str(&format!("({r}"));
                        if let Some(m) = c.message.as_deref().filter(|m| !m.is_empty()) {
                            if !said.contains(&m) {
                                s.push_str(&format!(": {m}"));
                                said.push(m);
                            }
                        }
                        s.push(')');
                    }
                }
                s
            })
            .collect();
        w!(out, "Conditions: {}", parts.join(", "));
    }
    if let Some(inits) = spec.init_containers.as_ref().filter(|i| !i.is_empty()) {
        w!(out, "Init containers:");
        for c in inits {
            let cs = status
                .init_container_statuses
                .iter()
                .flatten()
                .find(|s| s.name == c.name);
            container_block(out, c, cs, "  ");
        }
    }
    w!(out, "Containers:");
    for c in &spec.containers {
        let cs = status
            .container_statuses
            .iter()
            .flatten()
            .find(|s| s.name == c.name);
        container_block(out, c, cs, "  ");
    }
    volumes_block(out, &spec, "");
    if let Some(sel) = spec.node_selector.as_ref().filter(|s| !s.is_empty()) {
        w!(out, "Node selector: {}", kv(sel));
    }
    if let Some(t) = spec.tolerations.as_ref() {
        let custom: Vec<String> = t
            .iter()
            .filter(|t| {
                !t.key
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("node.kubernetes.io/")
            })
            .map(|t| {
                format!(
                    "{}={}:{}",
                    t.key.clone().unwrap_or_default(),
                    t.value.clone().unwrap_or_default(),
                    t.effect.clone().unwrap_or_default()
                )
            })
            .collect();
        if !custom.is_empty() {
            w!(out, "Tolerations: {}", custom.join(", "));
        }
    }
}

fn container_block(out: &mut String, c: &Container, cs: Option<&ContainerStatus>, ind: &str) {
    w!(out, "{ind}{}:", c.name);
    w!(out, "{ind}  Image: {}", c.image.clone().unwrap_or_default());
    if let Some(cmd) = &c.command {
        w!(out, "{ind}  Command: {}", redact::display_args(cmd));
    }
    if let Some(args) = c.args.as_ref().filter(|a| !a.is_empty()) {
        w!(out, "{ind}  Args: {}", redact::display_args(args));
    }
    if let Some(ports) = c.ports.as_ref().filter(|p| !p.is_empty()) {
        let p: Vec<String> = ports
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.container_port,
                    p.protocol.clone().unwrap_or_else(|| "TCP".into())
                )
            })
            .collect();
        w!(out, "{ind}  Ports: {}", p.join(", "));
    }
    if let Some(cs) = cs {
        w!(out, "{ind}  State: {}", state_text(cs.state.as_ref()));
        if let Some(last) = cs
            .last_state
            .as_ref()
            .filter(|l| l.terminated.is_some() || l.waiting.is_some() || l.running.is_some())
        {
            w!(out, "{ind}  Last state: {}", state_text(Some(last)));
        }
        w!(
            out,
            "{ind}  Ready: {}, restarts: {}",
            cs.ready,
            cs.restart_count
        );
    }
    if let Some(r) = &c.resources {
        let fmt = |m: &Option<
            BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >| {
            m.iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.0))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (l, q) = (fmt(&r.limits), fmt(&r.requests));
        if !l.is_empty() || !q.is_empty() {
            w!(
                out,
                "{ind}  Resources: limits {} requests {}",
                or_none(&l),
                or_none(&q)
            );
        }
    }
    for (label, p) in [
        ("Liveness", &c.liveness_probe),
        ("Readiness", &c.readiness_probe),
        ("Startup", &c.startup_probe),
    ] {
        if let Some(p) = p {
            w!(out, "{ind}  {label}: {}", probe_text(p));
        }
    }
    if let Some(env) = c.env.as_ref().filter(|e| !e.is_empty()) {
        w!(out, "{ind}  Env:");
        for e in env {
            w!(out, "{ind}    {}: {}", e.name, redact::env_display(e));
        }
    }
    if let Some(from) = c.env_from.as_ref().filter(|e| !e.is_empty()) {
        let f: Vec<String> = from
            .iter()
            .map(|f| {
                if let Some(s) = &f.secret_ref {
                    format!("secret {}", s.name)
                } else if let Some(c) = &f.config_map_ref {
                    format!("configmap {}", c.name)
                } else {
                    "?".into()
                }
            })
            .collect();
        w!(out, "{ind}  Env from: {}", f.join(", "));
    }
    if let Some(m) = c.volume_mounts.as_ref().filter(|m| !m.is_empty()) {
        let mounts: Vec<String> = m
            .iter()
            .filter(|m| !m.mount_path.starts_with("/var/run/secrets/kubernetes.io"))
            .map(|m| {
                let ro = if m.read_only == Some(true) {
                    " (ro)"
                } else {
                    ""
                };
                format!("{} from {}{ro}", m.mount_path, m.name)
            })
            .collect();
        if !mounts.is_empty() {
            w!(out, "{ind}  Mounts: {}", mounts.join(", "));
        }
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "<none>"
    } else {
        s
    }
}

fn state_text(s: Option<&k8s_openapi::api::core::v1::ContainerState>) -> String {
    let Some(s) = s else {
        return "<unknown>".into();
    };
    if let Some(r) = &s.running {
        return format!("Running (started {} ago)", age_of(r.started_at.as_ref()));
    }
    if let Some(wt) = &s.waiting {
        let mut t = format!("Waiting ({})", wt.reason.clone().unwrap_or_default());
        // A back-off's message only restates the reason, the container and the pod
        // ("back-off 5m0s restarting failed container=app pod=..._ns(uid)").
        let boilerplate = wt.reason.as_deref() == Some("CrashLoopBackOff");
        if let Some(m) = wt
            .message
            .as_deref()
            .filter(|m| !m.is_empty() && !boilerplate)
        {
            t.push_str(&format!(": {m}"));
        }
        return t;
    }
    if let Some(t) = &s.terminated {
        let mut x = format!(
            "Terminated ({}), exit code {}",
            t.reason.clone().unwrap_or_default(),
            t.exit_code
        );
        if let Some(sig) = t.signal {
            x.push_str(&format!(", signal {sig}"));
        }
        if let Some(f) = &t.finished_at {
            x.push_str(&format!(", finished {} ago ({})", age(f.0), f.0));
        }
        if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
            x.push_str(&format!(": {m}"));
        }
        return x;
    }
    "<unknown>".into()
}

fn probe_text(p: &Probe) -> String {
    let what = if let Some(h) = &p.http_get {
        let port = match &h.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
        };
        format!("http-get :{port}{}", h.path.clone().unwrap_or_default())
    } else if let Some(t) = &p.tcp_socket {
        format!("tcp-socket :{:?}", t.port)
    } else if let Some(e) = &p.exec {
        format!(
            "exec [{}]",
            redact::display_args(e.command.as_deref().unwrap_or_default())
        )
    } else if p.grpc.is_some() {
        "grpc".into()
    } else {
        "?".into()
    };
    format!(
        "{what} delay={}s timeout={}s period={}s #failure={}",
        p.initial_delay_seconds.unwrap_or(0),
        p.timeout_seconds.unwrap_or(1),
        p.period_seconds.unwrap_or(10),
        p.failure_threshold.unwrap_or(3)
    )
}

fn volumes_block(out: &mut String, spec: &PodSpec, ind: &str) {
    let Some(vols) = spec.volumes.as_ref().filter(|v| !v.is_empty()) else {
        return;
    };
    let lines: Vec<String> = vols
        .iter()
        .filter(|v| {
            !v.name.starts_with("kube-api-access-") && !v.name.starts_with("default-token-")
        })
        .map(|v| {
            let what = if let Some(s) = &v.secret {
                format!("secret {}", s.secret_name.clone().unwrap_or_default())
            } else if let Some(c) = &v.config_map {
                format!("configmap {}", c.name)
            } else if let Some(p) = &v.persistent_volume_claim {
                format!("pvc {}", p.claim_name)
            } else if v.empty_dir.is_some() {
                "emptyDir".into()
            } else if let Some(h) = &v.host_path {
                format!("hostPath {}", h.path)
            } else if v.projected.is_some() {
                "projected".into()
            } else {
                "other".into()
            };
            format!("{}: {what}", v.name)
        })
        .collect();
    if !lines.is_empty() {
        w!(out, "{ind}Volumes: {}", lines.join(", "));
    }
}

/// Secrets, ConfigMaps and PVCs the pod spec needs, checked: a missing one (or a missing
/// key) is the cause of `CreateContainerConfigError` and stuck `ContainerCreating`.
async fn check_references(view: &NamespaceView<'_>, spec: Option<&PodSpec>) -> Vec<String> {
    let Some(spec) = spec else { return Vec::new() };
    let ns = view.namespace().unwrap_or_default();
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
    let secret_checks = secrets.iter().map(|(name, keys)| async move {
        ref_line("Secret", name, keys, view.keys_of(true, name).await)
    });
    let cm_checks = cms.iter().map(|(name, keys)| async move {
        ref_line("ConfigMap", name, keys, view.keys_of(false, name).await)
    });
    let pvc_checks = pvcs.iter().map(|name| async move {
        match view.get::<PersistentVolumeClaim>(name).await {
            Ok(Some(p)) => format!(
                "PersistentVolumeClaim {name} is {}",
                p.status
                    .and_then(|s| s.phase)
                    .unwrap_or_else(|| "unknown phase".into())
            ),
            Ok(None) => {
                format!("PersistentVolumeClaim {name} is MISSING (not found in namespace {ns})")
            }
            Err(e) => format!(
                "PersistentVolumeClaim {name} could not be checked ({})",
                e.short()
            ),
        }
    });
    let (mut a, b, c) = futures::join!(
        join_all(secret_checks),
        join_all(cm_checks),
        join_all(pvc_checks)
    );
    a.extend(b);
    a.extend(c);
    a
}

fn ref_line(
    kind: &str,
    name: &str,
    wanted: &BTreeSet<String>,
    found: Result<Option<BTreeSet<String>>, ReadError>,
) -> String {
    match found {
        Ok(Some(keys)) => {
            let missing: Vec<&String> = wanted.iter().filter(|k| !keys.contains(*k)).collect();
            let keys_txt = keys.iter().cloned().collect::<Vec<_>>().join(", ");
            if missing.is_empty() {
                format!("{kind} {name} exists (keys: {})", or_none(&keys_txt))
            } else {
                format!(
                    "{kind} {name} exists but is MISSING key(s) {} (has: {})",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    or_none(&keys_txt)
                )
            }
        }
        Ok(None) => format!("{kind} {name} is MISSING (not found in this namespace)"),
        Err(e) => format!("{kind} {name} could not be checked ({})", e.short()),
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

// ---------------------------------------------------------------------------------------
// Workloads

struct WorkloadView {
    meta: ObjectMeta,
    lines: Vec<String>,
    selector: Option<LabelSelector>,
    template: Option<PodTemplateSpec>,
    conditions: Vec<(String, String, Option<String>, Option<String>)>,
}

fn conds<T>(
    c: Option<&Vec<T>>,
    f: impl Fn(&T) -> (String, String, Option<String>, Option<String>),
) -> Vec<(String, String, Option<String>, Option<String>)> {
    c.into_iter().flatten().map(f).collect()
}

async fn describe_workload(
    view: &NamespaceView<'_>,
    kind: &Kind,
    name: &str,
) -> Result<String, ClusterError> {
    let k = kind.resource.kind.as_str();
    let view_ = match k {
        "Deployment" => {
            let d: Deployment = typed(view, kind, name).await?;
            let spec = d.spec.clone().unwrap_or_default();
            let st = d.status.clone().unwrap_or_default();
            let strategy = spec
                .strategy
                .as_ref()
                .and_then(|s| s.type_.clone())
                .unwrap_or_else(|| "RollingUpdate".into());
            WorkloadView {
                lines: vec![
                    format!(
                        "Replicas: {} desired, {} updated, {} total, {} ready, {} available, {} unavailable",
                        spec.replicas.unwrap_or(1),
                        st.updated_replicas.unwrap_or(0),
                        st.replicas.unwrap_or(0),
                        st.ready_replicas.unwrap_or(0),
                        st.available_replicas.unwrap_or(0),
                        st.unavailable_replicas.unwrap_or(0)
                    ),
                    format!("Strategy: {strategy}{}", if spec.paused == Some(true) { " (paused)" } else { "" }),
                    format!(
                        "Revision: {}",
                        d.metadata.annotations.as_ref().and_then(|a| a.get("deployment.kubernetes.io/revision")).cloned().unwrap_or_default()
                    ),
                ],
                conditions: conds(st.conditions.as_ref(), |c| (c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone())),
                selector: Some(spec.selector.clone()),
                template: Some(spec.template.clone()),
                meta: d.metadata,
            }
        }
        "StatefulSet" => {
            let d: StatefulSet = typed(view, kind, name).await?;
            let spec = d.spec.clone().unwrap_or_default();
            let st = d.status.clone().unwrap_or_default();
            WorkloadView {
                lines: vec![
                    format!(
                        "Replicas: {} desired, {} current, {} ready, {} updated",
                        spec.replicas.unwrap_or(1),
                        st.current_replicas.unwrap_or(0),
                        st.ready_replicas.unwrap_or(0),
                        st.updated_replicas.unwrap_or(0)
                    ),
                    format!(
                        "Service name: {}",
                        spec.service_name.clone().unwrap_or_default()
                    ),
                    format!(
                        "Volume claim templates: {}",
                        spec.volume_claim_templates
                            .iter()
                            .flatten()
                            .filter_map(|p| p.metadata.name.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ],
                conditions: conds(st.conditions.as_ref(), |c| {
                    (
                        c.type_.clone(),
                        c.status.clone(),
                        c.reason.clone(),
                        c.message.clone(),
                    )
                }),
                selector: Some(spec.selector.clone()),
                template: Some(spec.template.clone()),
                meta: d.metadata,
            }
        }
        "DaemonSet" => {
            let d: DaemonSet = typed(view, kind, name).await?;
            let spec = d.spec.clone().unwrap_or_default();
            let st = d.status.clone().unwrap_or_default();
            WorkloadView {
                lines: vec![format!(
                    "Nodes: {} desired, {} scheduled, {} ready, {} up to date, {} available, {} misscheduled",
                    st.desired_number_scheduled,
                    st.current_number_scheduled,
                    st.number_ready,
                    st.updated_number_scheduled.unwrap_or(0),
                    st.number_available.unwrap_or(0),
                    st.number_misscheduled
                )],
                conditions: conds(st.conditions.as_ref(), |c| (c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone())),
                selector: Some(spec.selector.clone()),
                template: Some(spec.template.clone()),
                meta: d.metadata,
            }
        }
        "ReplicaSet" => {
            let d: ReplicaSet = typed(view, kind, name).await?;
            let spec = d.spec.clone().unwrap_or_default();
            let st = d.status.clone().unwrap_or_default();
            WorkloadView {
                lines: vec![format!(
                    "Replicas: {} desired, {} current, {} ready, {} available",
                    spec.replicas.unwrap_or(1),
                    st.replicas,
                    st.ready_replicas.unwrap_or(0),
                    st.available_replicas.unwrap_or(0)
                )],
                conditions: conds(st.conditions.as_ref(), |c| {
                    (
                        c.type_.clone(),
                        c.status.clone(),
                        c.reason.clone(),
                        c.message.clone(),
                    )
                }),
                selector: Some(spec.selector.clone()),
                template: spec.template.clone(),
                meta: d.metadata,
            }
        }
        _ => {
            let d: Job = typed(view, kind, name).await?;
            let spec = d.spec.clone().unwrap_or_default();
            let st = d.status.clone().unwrap_or_default();
            WorkloadView {
                lines: vec![
                    format!(
                        "Completions: {}/{} succeeded, {} active, {} failed (backoffLimit {})",
                        st.succeeded.unwrap_or(0),
                        spec.completions.unwrap_or(1),
                        st.active.unwrap_or(0),
                        st.failed.unwrap_or(0),
                        spec.backoff_limit.unwrap_or(6)
                    ),
                    format!("Parallelism: {}", spec.parallelism.unwrap_or(1)),
                ],
                conditions: conds(st.conditions.as_ref(), |c| {
                    (
                        c.type_.clone(),
                        c.status.clone(),
                        c.reason.clone(),
                        c.message.clone(),
                    )
                }),
                selector: spec.selector.clone(),
                template: Some(spec.template.clone()),
                meta: d.metadata,
            }
        }
    };

    let selector = view_.selector.as_ref().and_then(workload_selector);
    let sel = selector
        .as_ref()
        .map(Selector::to_string)
        .unwrap_or_default();
    let uid = view_.meta.uid.clone().unwrap_or_default();
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
    let pods = pods?;
    // Pods matched by the selector but owned by something else are not this workload's.
    // Without the ReplicaSets a Deployment's pods cannot be told from others: all the
    // selector's pods are shown, and the section says why.
    let rs_unread = rs_list.as_ref().err().cloned();
    let rs_list = rs_list.unwrap_or_default();
    let rs_names: BTreeSet<String> = rs_list
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .filter_map(|rs| rs.metadata.name.clone())
        .collect();
    let pods: Vec<Pod> = pods
        .into_iter()
        .filter(|p| {
            let owners = p.metadata.owner_references.as_ref();
            match owners.and_then(|o| o.iter().find(|r| r.controller == Some(true))) {
                Some(_) if k == "Deployment" && rs_unread.is_some() => true,
                Some(o) if k == "Deployment" => rs_names.contains(&o.name),
                Some(o) => o.uid == uid,
                None => true,
            }
        })
        .collect();

    let mut out = String::new();
    header(&mut out, k, &view_.meta);
    if !chain.is_empty() {
        w!(out, "Controlled by: {chain}");
    }
    for l in &view_.lines {
        w!(out, "{l}");
    }
    w!(out, "Selector: {}", or_none(&sel));
    if !view_.conditions.is_empty() {
        w!(out, "Conditions:");
        for (t, s, r, m) in &view_.conditions {
            w!(
                out,
                "  {t}={s} {}{}",
                r.clone().unwrap_or_default(),
                m.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
            );
        }
    }
    if let Some(e) = &rs_unread {
        w!(
            out,
            "ReplicaSets: could not be listed ({e}); the pods below are all those the selector matches"
        );
    }
    if !rs_list.is_empty() {
        let mut owned: Vec<&ReplicaSet> = rs_list
            .iter()
            .filter(|rs| {
                rs.metadata
                    .name
                    .as_ref()
                    .is_some_and(|n| rs_names.contains(n))
            })
            .collect();
        owned.sort_by_key(|rs| std::cmp::Reverse(revision(rs)));
        w!(out, "ReplicaSets (newest first):");
        for rs in owned.iter().take(4) {
            let img = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.clone())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let st = rs.status.clone().unwrap_or_default();
            w!(
                out,
                "  {} (revision {}): {}/{} ready, image {img}",
                rs.metadata.name.clone().unwrap_or_default(),
                revision(rs),
                st.ready_replicas.unwrap_or(0),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
            );
        }
    }
    if let Some(t) = &view_.template {
        w!(out, "Pod template:");
        if let Some(spec) = &t.spec {
            for c in spec.init_containers.iter().flatten() {
                w!(out, "  init container:");
                container_block(&mut out, c, None, "    ");
            }
            for c in &spec.containers {
                container_block(&mut out, c, None, "  ");
            }
            volumes_block(&mut out, spec, "  ");
        }
    }
    pods_section(&mut out, &pods);
    let evs = match evs {
        Ok(evs) => evs,
        Err(e) => {
            w!(out, "Events: could not be read ({e})");
            return Ok(out);
        }
    };
    // The workload's own events and its ReplicaSets' (scaling, FailedCreate) together.
    events_where(
        &mut out,
        &evs,
        |e| {
            let (ek, en) = (
                e.involved_object.kind.as_deref(),
                e.involved_object.name.as_deref().unwrap_or(""),
            );
            (ek == Some(k) && en == name) || (ek == Some("ReplicaSet") && rs_names.contains(en))
        },
        true,
        "Events",
    );
    let pod_names: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let warnings: Vec<Event> = evs
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .collect();
    if !pod_names.is_empty() {
        events_section(
            &mut out,
            &warnings,
            "Pod",
            &pod_names,
            true,
            "Warning events of its pods",
        );
    }
    Ok(out)
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Pods by state, then one line per pod (problem pods first).
fn pods_section(out: &mut String, pods: &[Pod]) {
    if pods.is_empty() {
        w!(out, "Pods: none");
        return;
    }
    let mut rows: Vec<(bool, String)> = pods
        .iter()
        .map(|p| {
            let (ready, status, restarts) = objects::pod_summary(p);
            let healthy = status == "Running" && ready.split_once('/').is_some_and(|(a, b)| a == b);
            let last = p
                .status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
                .filter_map(|cs| {
                    let t = cs.last_state.as_ref()?.terminated.as_ref()?;
                    Some(format!(
                        "; {} last terminated {} (exit code {})",
                        cs.name,
                        t.reason.clone().unwrap_or_default(),
                        t.exit_code
                    ))
                })
                .collect::<String>();
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| "<none>".into());
            (
                healthy,
                format!(
                    "  {} {ready} {status}, restarts {restarts}, node {node}{last}",
                    p.metadata.name.clone().unwrap_or_default()
                ),
            )
        })
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in pods {
        *counts.entry(objects::pod_summary(p).1).or_default() += 1;
    }
    w!(
        out,
        "Pods ({}): {}",
        pods.len(),
        counts
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    rows.sort_by_key(|(healthy, _)| *healthy);
    for (_, line) in rows.iter().take(MAX_PODS) {
        w!(out, "{line}");
    }
    if rows.len() > MAX_PODS {
        w!(
            out,
            "  … {} more pods; use list_resources kind=pods with the selector above",
            rows.len() - MAX_PODS
        );
    }
}

// ---------------------------------------------------------------------------------------
// Services

async fn describe_service(
    view: &NamespaceView<'_>,
    kind: &Kind,
    name: &str,
) -> Result<String, ClusterError> {
    let svc: Service = typed(view, kind, name).await?;
    let spec = svc.spec.clone().unwrap_or_default();
    let selector = spec.selector.clone().unwrap_or_default();
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
    let mut out = String::new();
    header(&mut out, "Service", &svc.metadata);
    w!(
        out,
        "Type: {}",
        spec.type_.clone().unwrap_or_else(|| "ClusterIP".into())
    );
    w!(
        out,
        "Cluster IP: {}",
        spec.cluster_ip.clone().unwrap_or_default()
    );
    if let Some(ext) = &spec.external_name {
        w!(out, "External name: {ext}");
    }
    w!(
        out,
        "Selector: {}",
        if selector.is_empty() {
            "<none> (endpoints are managed by hand)".into()
        } else {
            kv(&selector)
        }
    );
    for p in spec.ports.iter().flatten() {
        let target = p
            .target_port
            .as_ref()
            .map(|t| match t {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
            })
            .unwrap_or_else(|| p.port.to_string());
        w!(
            out,
            "Port: {} {}/{} → target {target}{}",
            p.name.clone().unwrap_or_else(|| "<unnamed>".into()),
            p.port,
            p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            p.node_port
                .map(|n| format!(", nodePort {n}"))
                .unwrap_or_default()
        );
    }
    if !selector.is_empty() {
        match &pods {
            Ok(p) if p.is_empty() => {
                w!(out, "Pods matching the selector: NONE (check the selector against the pods' labels)");
            }
            Ok(p) => {
                let ready = p
                    .iter()
                    .filter(|p| {
                        let (r, _, _) = objects::pod_summary(p);
                        r.split_once('/').is_some_and(|(a, b)| a == b && a != "0")
                    })
                    .count();
                w!(
                    out,
                    "Pods matching the selector: {} ({ready} ready)",
                    p.len()
                );
            }
            Err(e) => {
                w!(
                    out,
                    "Pods matching the selector: could not list ({})",
                    e.short()
                );
            }
        }
    }
    match ep {
        Ok(Some(ep)) => {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            let mut ports = BTreeSet::new();
            for s in ep.subsets.iter().flatten() {
                for a in s.addresses.iter().flatten() {
                    ready.push(addr(a));
                }
                for a in s.not_ready_addresses.iter().flatten() {
                    not_ready.push(addr(a));
                }
                for p in s.ports.iter().flatten() {
                    ports.insert(p.port);
                }
            }
            let ports = ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",");
            w!(
                out,
                "Endpoints ready ({}): {}",
                ready.len(),
                or_none(&ready.join(", "))
            );
            w!(
                out,
                "Endpoints not ready ({}): {}",
                not_ready.len(),
                or_none(&not_ready.join(", "))
            );
            if !ports.is_empty() {
                w!(out, "Endpoint ports: {ports}");
            }
        }
        Ok(None) => {
            w!(out, "Endpoints: none (no Endpoints object)");
        }
        Err(e) => {
            w!(out, "Endpoints: could not read ({})", e.short());
        }
    }
    object_events(&mut out, &evs, "Service", name);
    Ok(out)
}

fn addr(a: &k8s_openapi::api::core::v1::EndpointAddress) -> String {
    match a.target_ref.as_ref().and_then(|t| t.name.clone()) {
        Some(n) => format!("{} ({n})", a.ip),
        None => a.ip.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Nodes

/// A node is read across namespaces (its pods, its events), outside the view's one.
async fn describe_node(
    view: &NamespaceView<'_>,
    kind: &Kind,
    name: &str,
) -> Result<String, ClusterError> {
    let cluster = view.cluster();
    let node: Node = typed(view, kind, name).await?;
    let pods_api: Api<Pod> = Api::all(cluster.client.clone());
    let field = format!("spec.nodeName={name}");
    let ev_field = format!("involvedObject.kind=Node,involvedObject.name={name}");
    let lp = ListParams::default().fields(&field);
    let (pods, evs) = futures::join!(
        pods_api.list(&lp),
        events::fetch_all(cluster, None, Some(&ev_field)),
    );
    let mut out = String::new();
    header(&mut out, "Node", &node.metadata);
    let spec = node.spec.clone().unwrap_or_default();
    let st = node.status.clone().unwrap_or_default();
    if spec.unschedulable == Some(true) {
        w!(out, "Unschedulable: true (cordoned)");
    }
    let taints: Vec<String> = spec
        .taints
        .iter()
        .flatten()
        .map(|t| {
            format!(
                "{}={}:{}",
                t.key,
                t.value.clone().unwrap_or_default(),
                t.effect
            )
        })
        .collect();
    w!(out, "Taints: {}", or_none(&taints.join(", ")));
    w!(out, "Conditions:");
    for c in st.conditions.iter().flatten() {
        w!(
            out,
            "  {}={} {}: {} (last heartbeat {})",
            c.type_,
            c.status,
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
            c.last_heartbeat_time
                .as_ref()
                .map(|t| format!("{} ago", age(t.0)))
                .unwrap_or_else(|| "?".into())
        );
    }
    let q = |m: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        m.iter()
            .flatten()
            .filter(|(k, _)| ["cpu", "memory", "pods", "ephemeral-storage"].contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={}", v.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    w!(out, "Capacity: {}", or_none(&q(&st.capacity)));
    w!(out, "Allocatable: {}", or_none(&q(&st.allocatable)));
    if let Some(info) = &st.node_info {
        w!(
            out,
            "Kubelet: {}, OS: {}, runtime: {}",
            info.kubelet_version,
            info.os_image,
            info.container_runtime_version
        );
    }
    let addrs: Vec<String> = st
        .addresses
        .iter()
        .flatten()
        .map(|a| format!("{}={}", a.type_, a.address))
        .collect();
    w!(out, "Addresses: {}", or_none(&addrs.join(", ")));
    match pods {
        Ok(list) => {
            let mut reqs: BTreeMap<&str, f64> = BTreeMap::new();
            for p in &list.items {
                for c in p.spec.iter().flat_map(|s| s.containers.iter()) {
                    for (k, v) in c.resources.iter().flat_map(|r| r.requests.iter().flatten()) {
                        if let Some(x) = parse_quantity(&v.0) {
                            if k == "cpu" || k == "memory" {
                                *reqs
                                    .entry(if k == "cpu" { "cpu" } else { "memory" })
                                    .or_default() += x;
                            }
                        }
                    }
                }
            }
            w!(
                out,
                "Pods on this node: {} (requests: cpu {:.2} cores, memory {:.0} Mi)",
                list.items.len(),
                reqs.get("cpu").copied().unwrap_or(0.0),
                reqs.get("memory").copied().unwrap_or(0.0) / (1024.0 * 1024.0)
            );
            let problems: Vec<String> = list
                .items
                .iter()
                .filter_map(|p| {
                    let (ready, status, restarts) = objects::pod_summary(p);
                    let healthy = (status == "Running"
                        && ready.split_once('/').is_some_and(|(a, b)| a == b))
                        || status == "Completed"
                        || status == "Succeeded";
                    (!healthy).then(|| {
                        format!(
                            "  {}/{} {ready} {status}, restarts {restarts}",
                            p.metadata.namespace.clone().unwrap_or_default(),
                            p.metadata.name.clone().unwrap_or_default()
                        )
                    })
                })
                .collect();
            if !problems.is_empty() {
                w!(out, "Pods not running and ready ({}):", problems.len());
                for l in problems.iter().take(MAX_PODS) {
                    w!(out, "{l}");
                }
            }
        }
        Err(e) => {
            let what = "pods in all namespaces";
            let e = ReadError::from_kube(e, "list", "pods", None, what);
            w!(out, "Pods on this node: could not list ({})", e.short());
        }
    }
    object_events(&mut out, &evs, "Node", name);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Anything else

async fn describe_generic(
    view: &NamespaceView<'_>,
    kind: &Kind,
    name: &str,
    ns: &str,
) -> Result<String, ClusterError> {
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
    let mut out = String::new();
    header(
        &mut out,
        &format!("{} ({})", kind.resource.kind, kind.resource.api_version),
        &obj.metadata,
    );
    if !chain.is_empty() {
        w!(out, "Controlled by: {chain}");
    }
    let mut v = serde_json::to_value(&obj).map_err(|e| ClusterError::Other(e.to_string()))?;
    // By kind name alone: a same-named kind from another group is redacted too.
    match kind.resource.kind.as_str() {
        "Secret" => redact::redact_secret_value(&mut v),
        "ConfigMap" => redact::redact_configmap(&mut v),
        _ => {}
    }
    redact::redact_env_values(&mut v);
    redact::redact_args(&mut v);
    if let Some(t) = v.get("type").and_then(Value::as_str) {
        w!(out, "Type: {t}");
    }
    for field in ["data", "binaryData", "stringData"] {
        if let Some(m) = v.get(field).and_then(Value::as_object) {
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            w!(out, "{field} keys ({}): {}", keys.len(), keys.join(", "));
        }
    }
    if let Some(spec) = v.get("spec") {
        let yaml = serde_yaml::to_string(spec).unwrap_or_default();
        w!(out, "Spec:");
        w!(
            out,
            "{}",
            indent(
                &budget::fit_text(&yaml, 2000, "use get_resource for the full spec"),
                "  "
            )
        );
    }
    if let Some(st) = v.get("status") {
        let conditions: Vec<(String, String, String, String)> = st
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let f = |k: &str| {
                    c.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                (f("type"), f("status"), f("reason"), f("message"))
            })
            .collect();
        if !conditions.is_empty() {
            w!(out, "Conditions:");
            for (t, st, reason, message) in &conditions {
                let msg = if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                };
                w!(out, "  {t}={st} {reason}{msg}");
            }
        }
        let mut rest = st.clone();
        if let Some(m) = rest.as_object_mut() {
            m.remove("conditions");
            if !m.is_empty() {
                let yaml = serde_yaml::to_string(&rest).unwrap_or_default();
                w!(out, "Status:");
                w!(
                    out,
                    "{}",
                    indent(
                        &budget::fit_text(&yaml, 1500, "use get_resource for the full status"),
                        "  "
                    )
                );
            }
        }
    }
    object_events(&mut out, &evs, &kind.resource.kind, name);
    Ok(out)
}

fn indent(text: &str, ind: &str) -> String {
    text.trim_end()
        .lines()
        .map(|l| format!("{ind}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pod_body_shows_references_not_values() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "backend-1", "namespace": "shop"},
            "spec": {"nodeName": "node-1", "containers": [{
                "name": "app", "image": "backend:1.4.2",
                "env": [
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}},
                    {"name": "API_TOKEN", "value": "tok-very-secret-123"},
                    {"name": "LOG_LEVEL", "value": "debug"}
                ]
            }]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 7, "image": "backend:1.4.2", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": "2024-05-01T10:00:00Z"}}
            }]}
        }))
        .unwrap();
        let mut out = String::new();
        pod_body(&mut out, &pod);
        assert!(
            out.contains("DB_PASSWORD: <from secret db-creds key password>"),
            "{out}"
        );
        assert!(!out.contains("tok-very-secret-123"), "{out}");
        assert!(out.contains("LOG_LEVEL: debug"));
        assert!(
            out.contains("Last state: Terminated (Error), exit code 1"),
            "{out}"
        );
        assert!(out.contains("Waiting (CrashLoopBackOff)"));
        assert!(out.contains("Ready: false, restarts: 7"));
    }

    #[test]
    fn quantities() {
        // Node requests are summed with the analyzers' parser (kai-analyze's quantity).
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("2"), Some(2.0));
    }
}
