//! What the fake kubelet reports for one pod: the status (as a JSON merge patch body), the
//! kubelet-style events, and what its log endpoint serves. Pure: no I/O, `now` passed in,
//! so the state table of `docs/scenario-format.md` is unit-tested row by row.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

use crate::scenario::{substitute, ContainerSpec, ContainerState, KubeletRule, SubstVars};

/// One event the kubelet posts about the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    /// `spec.containers{name}` / `spec.initContainers{name}`, or none for pod-level events.
    pub field_path: Option<String>,
}

/// What `GET /containerLogs/...` answers for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLogs {
    /// Current log, or the kubelet's error text (HTTP 400) when there is no log to read.
    pub current: Result<LogText, String>,
    /// `?previous=true`, or the kubelet's "previous terminated container ... not found".
    pub previous: Result<LogText, String>,
}

/// A log text and the time its last line was written (line times are spread before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogText {
    pub text: String,
    pub end: Timestamp,
}

#[derive(Debug, Clone)]
pub struct PodPlay {
    /// Body of a JSON merge patch on the pod's `status` subresource.
    pub status_patch: Value,
    pub events: Vec<PlannedEvent>,
    pub logs: BTreeMap<String, ContainerLogs>,
    pub pod_ip: Option<String>,
}

/// The effective state of one container after defaults and init-container ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eff {
    Running,
    CrashLoop {
        oom: bool,
    },
    Terminated,
    ImagePull {
        unauthorized: bool,
    },
    ConfigError,
    Creating,
    /// Init container that ran to completion (exit 0).
    Completed,
    /// Not started yet because an init container before it has not completed.
    PodInitializing,
}

struct Resolved<'a> {
    name: &'a str,
    image: String,
    init: bool,
    spec: ContainerSpec,
    eff: Eff,
}

impl Resolved<'_> {
    fn field_path(&self) -> String {
        if self.init {
            format!("spec.initContainers{{{}}}", self.name)
        } else {
            format!("spec.containers{{{}}}", self.name)
        }
    }

    fn restarts(&self) -> i32 {
        let default = match self.eff {
            Eff::CrashLoop { .. } => 5,
            _ => 0,
        };
        self.spec.restarts.unwrap_or(default).max(0)
    }

    /// The container ran before and terminated (so `lastState.terminated` and a previous log exist).
    fn has_previous(&self) -> bool {
        matches!(self.eff, Eff::CrashLoop { .. })
            || (matches!(self.eff, Eff::Running | Eff::Terminated | Eff::Completed)
                && self.restarts() > 0)
    }

    fn exit_code(&self) -> i32 {
        match self.eff {
            Eff::CrashLoop { oom: true } => 137,
            Eff::Completed => 0,
            _ => {
                self.spec
                    .exit_code
                    .unwrap_or(if self.spec.reason.as_deref() == Some("OOMKilled") {
                        137
                    } else {
                        1
                    })
            }
        }
    }

    fn ready(&self) -> bool {
        let natural = matches!(self.eff, Eff::Running | Eff::Completed);
        self.spec.ready.unwrap_or(natural)
    }

    /// Counted as "stopped" by the kubelet's phase logic: terminated now, or waiting after
    /// having terminated before.
    fn stopped(&self) -> bool {
        matches!(self.eff, Eff::Terminated | Eff::CrashLoop { .. })
    }
}

fn resolve<'a>(
    containers: &'a [Container],
    init: bool,
    specs: Option<&BTreeMap<String, ContainerSpec>>,
    blocked_before: bool,
) -> (Vec<Resolved<'a>>, bool) {
    // `blocked` becomes true at the first init container that has not completed: every
    // container after it (and every app container) has not started yet.
    let mut blocked = blocked_before;
    let mut out = Vec::new();
    for c in containers {
        let spec = specs
            .and_then(|m| m.get(&c.name))
            .cloned()
            .unwrap_or_default();
        let eff = if blocked && (init || spec.state.is_none()) {
            Eff::PodInitializing
        } else {
            match spec.state {
                None if init => Eff::Completed,
                None | Some(ContainerState::Running) => Eff::Running,
                Some(ContainerState::Crashloop) => Eff::CrashLoop { oom: false },
                Some(ContainerState::Oomkilled) => Eff::CrashLoop { oom: true },
                Some(ContainerState::Terminated) => {
                    if init && spec.exit_code.unwrap_or(1) == 0 {
                        Eff::Completed
                    } else {
                        Eff::Terminated
                    }
                }
                Some(ContainerState::ImagePullNotFound) => Eff::ImagePull {
                    unauthorized: false,
                },
                Some(ContainerState::ImagePullUnauthorized) => {
                    Eff::ImagePull { unauthorized: true }
                }
                Some(ContainerState::CreateConfigError) => Eff::ConfigError,
                Some(ContainerState::Waiting) => Eff::Creating,
            }
        };
        if init && eff != Eff::Completed {
            blocked = true;
        }
        out.push(Resolved {
            name: &c.name,
            image: c.image.clone().unwrap_or_default(),
            init,
            spec,
            eff,
        });
    }
    (out, blocked)
}

fn hex_id(parts: &[&str]) -> String {
    // Deterministic 64-hex ids (container IDs, image digests) so repeated runs look alike.
    let mut out = String::new();
    for salt in 0..4u8 {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        parts.hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn ts(t: Timestamp) -> String {
    // The apiserver stores second precision; RFC 3339 without fractions is what it returns.
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `back-off 40s restarting failed container=...`: the kubelet doubles from 10s up to 5m.
fn backoff_text(restarts: i32) -> String {
    let exp = restarts.saturating_sub(1).clamp(0, 10) as u32;
    let secs = (10u64 << exp).min(300);
    if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

pub struct PlayInput<'a> {
    pub pod: &'a Pod,
    pub rule: Option<&'a KubeletRule>,
    pub node: &'a str,
    /// Address for the pod when its sandbox is up (ignored for hostNetwork pods).
    pub pod_ip: &'a str,
    pub now: Timestamp,
}

/// Computes everything the kubelet reports for this pod.
pub fn play(input: &PlayInput<'_>) -> PodPlay {
    let pod = input.pod;
    let now = input.now;
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let empty = Vec::new();
    let (init_cs, app_cs, restart_policy, host_network) = match &pod.spec {
        Some(s) => (
            s.init_containers.as_ref().unwrap_or(&empty),
            &s.containers,
            s.restart_policy.clone().unwrap_or_else(|| "Always".into()),
            s.host_network.unwrap_or(false),
        ),
        None => (&empty, &empty, "Always".to_string(), false),
    };
    let rule = input.rule;
    let (inits, blocked) = resolve(init_cs, true, rule.map(|r| &r.init_containers), false);
    let (apps, _) = resolve(app_cs, false, rule.map(|r| &r.containers), blocked);

    let sandbox_up = !apps
        .iter()
        .chain(inits.iter())
        .any(|c| c.eff == Eff::Creating);
    let pod_ip = match (sandbox_up, host_network) {
        (false, _) => None,
        (true, true) => Some("127.0.0.1".to_string()),
        (true, false) => Some(input.pod_ip.to_string()),
    };
    let ip_text = pod_ip.clone().unwrap_or_default();
    let vars = |container: &'_ str| -> (String, String, String, String, String) {
        (
            name.to_string(),
            namespace.to_string(),
            input.node.to_string(),
            ip_text.clone(),
            container.to_string(),
        )
    };
    let subst = |text: &str, container: &str| -> String {
        let (p, n, k, ip, c) = vars(container);
        substitute(
            text,
            &SubstVars {
                pod: &p,
                namespace: &n,
                node: &k,
                pod_ip: &ip,
                container: &c,
            },
        )
    };

    // Times: the pod was just created, so everything happened "now"; the previous
    // instance of a restarted container ran for a few seconds just before.
    let started = now;
    let prev_started = now - SignedDuration::from_secs(8);
    let prev_finished = now - SignedDuration::from_secs(2);

    let mut events = Vec::new();
    let mut logs = BTreeMap::new();
    let mut statuses_init = Vec::new();
    let mut statuses_app = Vec::new();

    for c in inits.iter().chain(apps.iter()) {
        let restarts = c.restarts();
        let cid = format!(
            "containerd://{}",
            hex_id(&[uid, c.name, &restarts.to_string()])
        );
        let prev_cid = format!(
            "containerd://{}",
            hex_id(&[uid, c.name, &(restarts - 1).to_string()])
        );
        let image_ref = c.image.split('@').next().unwrap_or_default();
        let repo = match image_ref.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r,
            _ => image_ref,
        };
        let image_id = format!("{repo}@sha256:{}", hex_id(&[&c.image]));
        let message = c.spec.message.as_deref().map(|m| subst(m, c.name));

        let last_state = if c.has_previous() {
            let reason = match c.eff {
                Eff::CrashLoop { oom: true } => "OOMKilled".to_string(),
                _ => c.spec.reason.clone().unwrap_or_else(|| "Error".into()),
            };
            let mut t = json!({
                "exitCode": c.exit_code(),
                "reason": reason,
                "startedAt": ts(prev_started),
                "finishedAt": ts(prev_finished),
                "containerID": prev_cid,
            });
            if let (Eff::CrashLoop { .. }, Some(m)) = (c.eff, &message) {
                t["message"] = json!(m);
            }
            json!({ "terminated": t })
        } else {
            json!({})
        };

        let state = match c.eff {
            Eff::Running => json!({"running": {"startedAt": ts(started)}}),
            Eff::Completed => json!({"terminated": {
                "exitCode": 0, "reason": "Completed",
                "startedAt": ts(started), "finishedAt": ts(started),
                "containerID": cid,
            }}),
            Eff::Terminated => {
                let code = c.exit_code();
                let default_reason = if code == 0 { "Completed" } else { "Error" };
                let mut t = json!({
                    "exitCode": code,
                    "reason": c.spec.reason.clone().unwrap_or_else(|| default_reason.into()),
                    "startedAt": ts(started), "finishedAt": ts(started),
                    "containerID": cid,
                });
                if let Some(m) = &message {
                    t["message"] = json!(m);
                }
                json!({ "terminated": t })
            }
            Eff::CrashLoop { .. } => json!({"waiting": {
                "reason": "CrashLoopBackOff",
                "message": format!(
                    "back-off {} restarting failed container={} pod={}_{}({})",
                    backoff_text(restarts), c.name, name, namespace, uid
                ),
            }}),
            Eff::ImagePull { unauthorized } => {
                let reason = c
                    .spec
                    .reason
                    .clone()
                    .unwrap_or_else(|| "ImagePullBackOff".into());
                let default_msg = if reason == "ErrImagePull" {
                    pull_error(&c.image, unauthorized)
                } else {
                    format!("Back-off pulling image \"{}\"", c.image)
                };
                json!({"waiting": {"reason": reason, "message": message.clone().unwrap_or(default_msg)}})
            }
            Eff::ConfigError => json!({"waiting": {
                "reason": c.spec.reason.clone().unwrap_or_else(|| "CreateContainerConfigError".into()),
                "message": message.clone().unwrap_or_else(|| "CreateContainerConfigError".into()),
            }}),
            Eff::Creating => {
                let mut w = json!({"reason": c.spec.reason.clone().unwrap_or_else(|| "ContainerCreating".into())});
                if let Some(m) = &message {
                    w["message"] = json!(m);
                }
                json!({ "waiting": w })
            }
            Eff::PodInitializing => json!({"waiting": {"reason": "PodInitializing"}}),
        };
        let ran = matches!(
            c.eff,
            Eff::Running | Eff::Completed | Eff::Terminated | Eff::CrashLoop { .. }
        );
        let mut status = json!({
            "name": c.name,
            "image": c.image,
            "imageID": if ran { image_id } else { String::new() },
            "ready": c.ready(),
            "restartCount": restarts,
            "started": c.eff == Eff::Running,
            "state": state,
            "lastState": last_state,
        });
        if matches!(c.eff, Eff::Running | Eff::Completed | Eff::Terminated) {
            status["containerID"] = json!(cid);
        } else if c.has_previous() {
            // A crash-looping container reports the ID of its last run.
            status["containerID"] = json!(prev_cid);
        }
        if c.init {
            statuses_init.push(status);
        } else {
            statuses_app.push(status);
        }

        events.extend(container_events(c));
        logs.insert(
            c.name.to_string(),
            container_logs(c, name, &subst, now, prev_finished),
        );
    }

    // Extra events from the scenario, placeholders substituted.
    if let Some(rule) = rule {
        for e in &rule.events {
            let container = e
                .container
                .clone()
                .or_else(|| app_cs.first().map(|c| c.name.clone()))
                .unwrap_or_default();
            let field_path = e.container.as_ref().map(|c| {
                if init_cs.iter().any(|i| &i.name == c) {
                    format!("spec.initContainers{{{c}}}")
                } else {
                    format!("spec.containers{{{c}}}")
                }
            });
            events.push(PlannedEvent {
                type_: e.type_.clone(),
                reason: e.reason.clone(),
                message: subst(&e.message, &container),
                count: e.count.max(1),
                field_path,
            });
        }
    }

    let phase = rule
        .and_then(|r| r.phase.clone())
        .unwrap_or_else(|| derive_phase(&inits, &apps, blocked, &restart_policy).to_string());
    let terminal = phase == "Succeeded" || phase == "Failed";

    let incomplete: Vec<&str> = inits
        .iter()
        .filter(|c| c.eff != Eff::Completed)
        .map(|c| c.name)
        .collect();
    let unready: Vec<&str> = apps.iter().filter(|c| !c.ready()).map(|c| c.name).collect();
    let cond = |type_: &str, ok: bool, reason: &str, message: String| -> Value {
        let mut c = json!({
            "type": type_, "status": if ok { "True" } else { "False" },
            "lastProbeTime": null, "lastTransitionTime": ts(now),
        });
        if !ok {
            c["reason"] = json!(reason);
            if !message.is_empty() {
                c["message"] = json!(message);
            }
        }
        c
    };
    let initialized = if incomplete.is_empty() {
        cond("Initialized", true, "", String::new())
    } else {
        cond(
            "Initialized",
            false,
            "ContainersNotInitialized",
            format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            ),
        )
    };
    let (ready_ok, ready_reason, ready_msg) = if terminal {
        (false, "PodCompleted", String::new())
    } else if unready.is_empty() && incomplete.is_empty() {
        (true, "", String::new())
    } else {
        (
            false,
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    };
    let scheduled = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| serde_json::to_value(c).ok())
        .unwrap_or_else(|| cond("PodScheduled", true, "", String::new()));
    let conditions = vec![
        initialized,
        cond("Ready", ready_ok, ready_reason, ready_msg.clone()),
        cond("ContainersReady", ready_ok, ready_reason, ready_msg),
        scheduled,
    ];

    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": "127.0.0.1",
        "startTime": ts(now),
        "containerStatuses": statuses_app,
    });
    if !statuses_init.is_empty() {
        status["initContainerStatuses"] = json!(statuses_init);
    }
    match &pod_ip {
        Some(ip) => {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{ "ip": ip }]);
        }
        None => {
            status["podIP"] = Value::Null;
            status["podIPs"] = Value::Null;
        }
    }
    PodPlay {
        status_patch: json!({ "status": status }),
        events,
        logs,
        pod_ip,
    }
}

/// The kubelet's `getPhase`, plus the documented rule for `terminated` containers: all of
/// them exited 0 → Succeeded, otherwise Failed (whatever the restart policy).
fn derive_phase(
    inits: &[Resolved<'_>],
    apps: &[Resolved<'_>],
    init_blocked: bool,
    restart_policy: &str,
) -> &'static str {
    if init_blocked {
        let init_failed = inits.iter().any(|c| c.eff == Eff::Terminated);
        return if init_failed && restart_policy == "Never" {
            "Failed"
        } else {
            "Pending"
        };
    }
    let waiting = apps.iter().any(|c| {
        matches!(
            c.eff,
            Eff::ImagePull { .. } | Eff::ConfigError | Eff::Creating | Eff::PodInitializing
        )
    });
    if waiting {
        return "Pending";
    }
    if apps.iter().any(|c| c.eff == Eff::Running) {
        return "Running";
    }
    if apps.iter().any(|c| c.stopped()) {
        if apps.iter().any(|c| matches!(c.eff, Eff::CrashLoop { .. })) {
            // Being restarted: the kubelet keeps such a pod Running.
            return "Running";
        }
        return if apps.iter().all(|c| c.exit_code() == 0) {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    "Pending"
}

fn pull_error(image: &str, unauthorized: bool) -> String {
    if unauthorized {
        format!(
            "Failed to pull image \"{image}\": rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized"
        )
    } else {
        format!(
            "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
        )
    }
}

fn container_events(c: &Resolved<'_>) -> Vec<PlannedEvent> {
    let fp = Some(c.field_path());
    let ev = |type_: &str, reason: &str, message: String, count: i32| PlannedEvent {
        type_: type_.to_string(),
        reason: reason.to_string(),
        message,
        count: count.max(1),
        field_path: fp.clone(),
    };
    let img = &c.image;
    let runs = c.restarts() + 1;
    let already = format!("Container image \"{img}\" already present on machine");
    let created = format!("Created container {}", c.name);
    let started = format!("Started container {}", c.name);
    match c.eff {
        Eff::Running | Eff::Completed if c.restarts() == 0 => vec![
            ev("Normal", "Pulling", format!("Pulling image \"{img}\""), 1),
            ev(
                "Normal",
                "Pulled",
                format!("Successfully pulled image \"{img}\" in 1.412s"),
                1,
            ),
            ev("Normal", "Created", created, 1),
            ev("Normal", "Started", started, 1),
        ],
        Eff::Running | Eff::Completed | Eff::Terminated => vec![
            ev("Normal", "Pulled", already, runs),
            ev("Normal", "Created", created, runs),
            ev("Normal", "Started", started, runs),
        ],
        Eff::CrashLoop { .. } => vec![
            ev("Normal", "Pulled", already, runs),
            ev("Normal", "Created", created, runs),
            ev("Normal", "Started", started, runs),
            ev(
                "Warning",
                "BackOff",
                "Back-off restarting failed container".to_string(),
                c.restarts(),
            ),
        ],
        Eff::ImagePull { unauthorized } => vec![
            ev("Normal", "Pulling", format!("Pulling image \"{img}\""), 4),
            ev("Warning", "Failed", pull_error(img, unauthorized), 4),
            ev("Warning", "Failed", "Error: ErrImagePull".to_string(), 4),
            ev(
                "Normal",
                "BackOff",
                format!("Back-off pulling image \"{img}\""),
                6,
            ),
            ev(
                "Warning",
                "Failed",
                "Error: ImagePullBackOff".to_string(),
                6,
            ),
        ],
        Eff::ConfigError => vec![
            ev("Normal", "Pulled", already, 5),
            ev(
                "Warning",
                "Failed",
                format!(
                    "Error: {}",
                    c.spec
                        .message
                        .clone()
                        .unwrap_or_else(|| "CreateContainerConfigError".into())
                ),
                5,
            ),
        ],
        Eff::Creating | Eff::PodInitializing => Vec::new(),
    }
}

fn container_logs(
    c: &Resolved<'_>,
    pod: &str,
    subst: &dyn Fn(&str, &str) -> String,
    now: Timestamp,
    prev_finished: Timestamp,
) -> ContainerLogs {
    let logs = c.spec.logs.as_deref().map(|l| subst(l, c.name));
    let previous_logs = c.spec.previous_logs.as_deref().map(|l| subst(l, c.name));
    let waiting = |why: &str| {
        Err(format!(
            "container \"{}\" in pod \"{pod}\" is waiting to start: {why}",
            c.name
        ))
    };
    let current = match c.eff {
        Eff::Running | Eff::Completed | Eff::Terminated => Ok(LogText {
            text: logs.clone().unwrap_or_default(),
            end: now,
        }),
        // Like the real kubelet: without `previous`, a crash-looping container's log is
        // the one of its last (terminated) run.
        Eff::CrashLoop { .. } => Ok(match &logs {
            Some(l) => LogText {
                text: l.clone(),
                end: now,
            },
            None => LogText {
                text: previous_logs.clone().unwrap_or_default(),
                end: prev_finished,
            },
        }),
        Eff::ImagePull { .. } => {
            if c.spec.reason.as_deref() == Some("ErrImagePull") {
                waiting("image can't be pulled")
            } else {
                waiting("trying and failing to pull image")
            }
        }
        Eff::ConfigError => waiting(
            c.spec
                .reason
                .as_deref()
                .unwrap_or("CreateContainerConfigError"),
        ),
        Eff::Creating => waiting(c.spec.reason.as_deref().unwrap_or("ContainerCreating")),
        Eff::PodInitializing => waiting("PodInitializing"),
    };
    let previous = if c.has_previous() {
        Ok(LogText {
            text: previous_logs.unwrap_or_default(),
            end: prev_finished,
        })
    } else {
        Err(format!(
            "previous terminated container \"{}\" in pod \"{pod}\" not found",
            c.name
        ))
    };
    ContainerLogs { current, previous }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pod(containers: &[&str], inits: &[&str], restart_policy: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "backend-1", "namespace": "ns", "uid": "u-1"},
            "spec": {
                "restartPolicy": restart_policy,
                "nodeName": "kai-node-1",
                "containers": containers.iter().map(|n| json!({"name": n, "image": format!("img/{n}:1")})).collect::<Vec<_>>(),
                "initContainers": inits.iter().map(|n| json!({"name": n, "image": "busybox:1.36"})).collect::<Vec<_>>(),
            },
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}
        }))
        .unwrap()
    }

    fn rule(yaml: &str) -> KubeletRule {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn run(p: &Pod, r: Option<&KubeletRule>) -> PodPlay {
        play(&PlayInput {
            pod: p,
            rule: r,
            node: "kai-node-1",
            pod_ip: "10.244.0.7",
            now: "2024-05-01T10:00:00Z".parse().unwrap(),
        })
    }

    fn status(p: &PodPlay) -> &Value {
        &p.status_patch["status"]
    }

    /// The play of a one-container (`app`) pod under the rule `yaml`.
    fn run_app(yaml: &str) -> PodPlay {
        run(&pod(&["app"], &[], "Always"), Some(&rule(yaml)))
    }

    /// The `waiting` state of the pod's first container.
    fn waiting(p: &PodPlay) -> &Value {
        &status(p)["containerStatuses"][0]["state"]["waiting"]
    }

    #[test]
    fn unmatched_pod_is_healthy() {
        let p = pod(&["app"], &[], "Always");
        let out = run(&p, None);
        let s = status(&out);
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.244.0.7");
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        assert!(s["containerStatuses"][0]["state"]["running"].is_object());
        assert_eq!(s["conditions"][1]["type"], "Ready");
        assert_eq!(s["conditions"][1]["status"], "True");
        let reasons: Vec<_> = out.events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["Pulling", "Pulled", "Created", "Started"]);
        assert_eq!(
            out.events[0].field_path.as_deref(),
            Some("spec.containers{app}")
        );
        assert!(out.logs["app"].previous.is_err());
    }

    #[test]
    fn crashloop() {
        let p = pod(&["app", "sidecar"], &[], "Always");
        let r = rule("containers:\n  app: {state: crashloop, restarts: 7, previous_logs: \"FATAL on {pod}\\n\"}\n");
        let out = run(&p, Some(&r));
        let s = status(&out);
        assert_eq!(s["phase"], "Running");
        let app = &s["containerStatuses"][0];
        assert_eq!(app["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert!(app["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off 5m0s restarting failed container=app pod=backend-1_ns(u-1)"));
        assert_eq!(app["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(app["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(app["restartCount"], 7);
        assert_eq!(app["ready"], false);
        assert_eq!(s["containerStatuses"][1]["ready"], true);
        assert_eq!(s["conditions"][1]["status"], "False");
        assert_eq!(
            s["conditions"][1]["message"],
            "containers with unready status: [app]"
        );
        let backoff = out.events.iter().find(|e| e.reason == "BackOff").unwrap();
        assert_eq!(backoff.type_, "Warning");
        assert_eq!(backoff.count, 7);
        assert_eq!(backoff.message, "Back-off restarting failed container");
        let logs = &out.logs["app"];
        assert_eq!(logs.previous.as_ref().unwrap().text, "FATAL on backend-1\n");
        // Without `previous`, the last terminated run's log (as the real kubelet does).
        assert_eq!(logs.current.as_ref().unwrap().text, "FATAL on backend-1\n");
    }

    #[test]
    fn oomkilled() {
        let s = run_app("containers:\n  app: {state: oomkilled, restarts: 3}\n").status_patch;
        let app = &s["status"]["containerStatuses"][0];
        assert_eq!(app["lastState"]["terminated"]["reason"], "OOMKilled");
        assert_eq!(app["lastState"]["terminated"]["exitCode"], 137);
        assert_eq!(app["state"]["waiting"]["reason"], "CrashLoopBackOff");
    }

    #[test]
    fn terminated_job_pod() {
        let p = pod(&["job"], &[], "Never");
        let r = rule("containers:\n  job: {state: terminated, exit_code: 2, logs: \"boom\\n\"}\n");
        let out = run(&p, Some(&r));
        let s = status(&out);
        assert_eq!(s["phase"], "Failed");
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            2
        );
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Error"
        );
        assert_eq!(s["conditions"][1]["reason"], "PodCompleted");
        assert_eq!(out.logs["job"].current.as_ref().unwrap().text, "boom\n");

        let ok = rule("containers:\n  job: {state: terminated, exit_code: 0}\n");
        let s = run(&p, Some(&ok)).status_patch;
        assert_eq!(s["status"]["phase"], "Succeeded");
        assert_eq!(
            s["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    }

    #[test]
    fn image_pull() {
        let out = run_app("containers:\n  app: {state: image-pull-not-found}\n");
        assert_eq!(status(&out)["phase"], "Pending");
        assert_eq!(waiting(&out)["reason"], "ImagePullBackOff");
        assert_eq!(
            waiting(&out)["message"],
            "Back-off pulling image \"img/app:1\""
        );
        let msgs: Vec<_> = out.events.iter().map(|e| e.message.as_str()).collect();
        assert!(msgs.contains(&"Error: ErrImagePull"));
        assert!(msgs.contains(&"Error: ImagePullBackOff"));
        assert!(msgs.iter().any(|m| m.ends_with("img/app:1: not found")));
        assert!(out.logs["app"]
            .current
            .as_ref()
            .unwrap_err()
            .contains("is waiting to start: trying and failing to pull image"));

        let out = run_app("containers:\n  app: {state: image-pull-unauthorized}\n");
        assert!(out
            .events
            .iter()
            .any(|e| e.message.ends_with("401 Unauthorized")));
    }

    #[test]
    fn create_config_error() {
        let out = run_app("containers:\n  app: {state: create-config-error, message: 'secret \"db-creds\" not found'}\n");
        assert_eq!(status(&out)["phase"], "Pending");
        assert_eq!(waiting(&out)["reason"], "CreateContainerConfigError");
        assert_eq!(waiting(&out)["message"], "secret \"db-creds\" not found");
        assert!(out
            .events
            .iter()
            .any(|e| e.type_ == "Warning" && e.message == "Error: secret \"db-creds\" not found"));
    }

    #[test]
    fn waiting_has_no_ip_and_no_events() {
        let out = run_app("containers:\n  app: {state: waiting}\n");
        assert!(out.events.is_empty());
        assert!(out.pod_ip.is_none());
        assert_eq!(waiting(&out)["reason"], "ContainerCreating");
    }

    #[test]
    fn failing_init_container_blocks_the_pod() {
        let p = pod(&["app"], &["migrate", "wait-db"], "Always");
        let r = rule(
            "init_containers:\n  migrate: {state: crashloop, restarts: 2, previous_logs: x}\n",
        );
        let out = run(&p, Some(&r));
        let s = status(&out);
        assert_eq!(s["phase"], "Pending");
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        assert_eq!(
            s["initContainerStatuses"][1]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
        assert_eq!(s["conditions"][0]["status"], "False");
        assert_eq!(s["conditions"][0]["reason"], "ContainersNotInitialized");
        assert!(out
            .events
            .iter()
            .any(|e| e.field_path.as_deref() == Some("spec.initContainers{migrate}")));

        // Unlisted init containers have completed.
        let out = run(&p, None);
        let s = status(&out);
        assert_eq!(s["phase"], "Running");
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    }

    #[test]
    fn extra_events_and_phase_override() {
        let out = run_app("phase: Unknown\ncontainers:\n  app: {ready: false}\nevents:\n  - {type: Warning, reason: Unhealthy, message: 'probe {pod_ip} {container}', count: 14}\n");
        assert_eq!(status(&out)["phase"], "Unknown");
        let e = out.events.last().unwrap();
        assert_eq!(e.message, "probe 10.244.0.7 app");
        assert_eq!(e.count, 14);
        assert_eq!(e.field_path, None);
        assert_eq!(status(&out)["containerStatuses"][0]["ready"], false);
    }

    #[test]
    fn running_after_restarts_keeps_last_state() {
        let out =
            run_app("containers:\n  app: {restarts: 2, reason: OOMKilled, previous_logs: old}\n");
        let app = &status(&out)["containerStatuses"][0];
        assert_eq!(app["lastState"]["terminated"]["exitCode"], 137);
        assert!(app["state"]["running"].is_object());
        assert_eq!(out.logs["app"].previous.as_ref().unwrap().text, "old");
    }

    #[test]
    fn backoff_text_matches_kubelet() {
        assert_eq!(backoff_text(1), "10s");
        assert_eq!(backoff_text(3), "40s");
        assert_eq!(backoff_text(4), "1m20s");
        assert_eq!(backoff_text(9), "5m0s");
    }
}
