//! Rendering a pod: status, containers, volumes, the references it needs and whether
//! they exist, its events. Pure: the pod and its references were read in [`super::read`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodSpec, Probe};
use kai_text::redact;

use super::common::{header, kv, object_events, or_none};
use super::read::{PodRead, RefCheck};
use crate::objects::{self, age, age_of};
use crate::view::ReadError;

pub(super) fn render(r: PodRead, name: &str, ns: &str) -> String {
    let PodRead {
        pod,
        chain,
        refs,
        evs,
    } = r;
    let refs: Vec<String> = refs.into_iter().map(|r| ref_text(r, ns)).collect();
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
    out
}

pub(super) fn pod_body(out: &mut String, pod: &Pod) {
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
        containers_block(out, inits, status.init_container_statuses.as_deref());
    }
    w!(out, "Containers:");
    containers_block(out, &spec.containers, status.container_statuses.as_deref());
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

/// Each container with its status (matched by name), as in a running pod.
fn containers_block(out: &mut String, cs: &[Container], statuses: Option<&[ContainerStatus]>) {
    for c in cs {
        let st = statuses.into_iter().flatten().find(|s| s.name == c.name);
        container_block(out, c, st, "  ");
    }
}

pub(super) fn container_block(
    out: &mut String,
    c: &Container,
    cs: Option<&ContainerStatus>,
    ind: &str,
) {
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

pub(super) fn volumes_block(out: &mut String, spec: &PodSpec, ind: &str) {
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

/// One checked reference as a line: a missing object or key is what the reader looks for.
fn ref_text(r: RefCheck, ns: &str) -> String {
    match r {
        RefCheck::Keys {
            kind,
            name,
            wanted,
            found,
        } => ref_line(kind, &name, &wanted, found),
        RefCheck::Claim { name, found } => match found {
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
        },
    }
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
}
