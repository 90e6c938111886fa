//! Container-level causes: config errors, image pulls, OOM kills, probes, crash loops.
//! Checked most specific first, so a pod has exactly one root cause.

use k8s_openapi::api::core::v1::{
    Container, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod, Probe,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::pods::PodIssue;
use super::{config, format_bytes, log_excerpt, parse_quantity, truncate};
use crate::finding::Cause;
use crate::owners::revision_of;
use crate::snapshot::{controller_of, find_named, name_of, ns_of, Snapshot};

/// A termination within this window still counts as "crashing now".
const RECENT_SECS: i64 = 600;
/// Evidence for a crashing container whose log tail was not read (or was empty).
pub(crate) const NO_PREVIOUS_LOG: &str = "no previous log was available";

/// What a container status says about its state, read once for every check below.
#[derive(Clone, Copy)]
struct Observed<'a> {
    waiting: Option<&'a ContainerStateWaiting>,
    wreason: &'a str,
    wmsg: &'a str,
    term_now: Option<&'a ContainerStateTerminated>,
    last: Option<&'a ContainerStateTerminated>,
    /// The termination that explains the current trouble: the current one if the
    /// container is terminated now, else the previous instance's.
    term: Option<&'a ContainerStateTerminated>,
    /// `term` finished within [`RECENT_SECS`] (or at an unknown time).
    recent: bool,
}

impl<'a> Observed<'a> {
    fn of(snap: &Snapshot, cs: &'a ContainerStatus) -> Self {
        let state = cs.state.as_ref();
        let waiting = state.and_then(|s| s.waiting.as_ref());
        let term_now = state.and_then(|s| s.terminated.as_ref());
        let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        let term = term_now.or(last);
        Observed {
            waiting,
            wreason: waiting
                .and_then(|w| w.reason.as_deref())
                .unwrap_or_default(),
            wmsg: waiting
                .and_then(|w| w.message.as_deref())
                .unwrap_or_default(),
            term_now,
            last,
            term,
            recent: term.is_some_and(|t| {
                snap.age_secs(t.finished_at.as_ref())
                    .is_none_or(|a| a < RECENT_SECS)
            }),
        }
    }

    /// `is in CrashLoopBackOff; ` while the container waits, for evidence lines.
    fn waiting_note(&self) -> String {
        if self.wreason.is_empty() {
            String::new()
        } else {
            format!("is in {}; ", self.wreason)
        }
    }
}

pub(crate) fn container_issue(
    snap: &Snapshot,
    pod: &Pod,
    cs: &ContainerStatus,
    spec: Option<&Container>,
    init: bool,
) -> Option<PodIssue> {
    let seen = Observed::of(snap, cs);
    let Observed {
        wreason,
        wmsg,
        term_now,
        last,
        term,
        recent,
        ..
    } = seen;
    let running = cs.state.as_ref().is_some_and(|s| s.running.is_some());
    let crash_looping = wreason == "CrashLoopBackOff";

    if let Some(issue) = command_not_found(snap, pod, cs, spec, init, &seen) {
        return Some(issue);
    }
    match wreason {
        "CreateContainerConfigError" | "CreateContainerError" => {
            return config::classify_message(snap, pod, &cs.name, wmsg)
                .map(|i| i.ev(format!("container {:?} is waiting: {wreason}", cs.name)));
        }
        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull" => {
            return image_issue(snap, pod, cs, spec, wmsg)
                .map(|i| i.ev(format!("container {:?} is waiting: {wreason}", cs.name)));
        }
        _ => {}
    }

    let failed_now = term_now.is_some_and(|t| t.exit_code != 0);

    if term.and_then(|t| t.reason.as_deref()) == Some("OOMKilled")
        && (crash_looping || failed_now || recent)
    {
        return Some(oom(cs, spec));
    }
    if init {
        let failing = crash_looping || failed_now || (cs.restart_count > 0 && !running && recent);
        if failing && term.is_some_and(|t| t.exit_code != 0) {
            let code = term.map(|t| t.exit_code).unwrap_or_default();
            let mut i = PodIssue::new(
                Cause::InitContainerFailing,
                format!(
                    "init container {:?} fails (exit code {code}); main containers never start",
                    cs.name
                ),
            )
            .ev(format!(
                "init container {:?} {}exited with code {code} ({}), restarted {} times",
                cs.name,
                seen.waiting_note(),
                term.and_then(|t| t.reason.as_deref()).unwrap_or("Error"),
                cs.restart_count
            ));
            for l in logs(snap, pod, &cs.name, 3) {
                i = i.ev(l);
            }
            return Some(i.fix(format!(
                "Fix what init container {:?} waits for or fails on (see its log); the pod starts once it exits 0.",
                cs.name
            )));
        }
        return None;
    }
    // A liveness failure only matters once it restarted the container; checking that first
    // spares the event lookup for the healthy majority of containers.
    if cs.restart_count > 0 || crash_looping {
        if let Some(issue) = probe_issue(snap, pod, cs, spec, ProbeKind::Liveness) {
            return Some(issue);
        }
    }
    let flapping = running && cs.restart_count >= 3 && last.is_some() && recent;
    let never_restarts =
        pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("Never");
    if crash_looping || flapping || (failed_now && never_restarts) {
        return Some(crash(snap, pod, cs, &seen));
    }
    if running && !cs.ready {
        return probe_issue(snap, pod, cs, spec, ProbeKind::Readiness);
    }
    None
}

/// The container's command cannot be run: exit code 127 (the shell found no such
/// command) or 126 (found, not executable), or the runtime's start error (containerd:
/// `StartError` / `RunContainerError`, `exec: "x": executable file not found in $PATH`;
/// Docker: `ContainerCannotRun`, `OCI runtime create failed ... no such file or directory`).
fn command_not_found(
    snap: &Snapshot,
    pod: &Pod,
    cs: &ContainerStatus,
    spec: Option<&Container>,
    init: bool,
    seen: &Observed,
) -> Option<PodIssue> {
    let Observed {
        term, recent, wmsg, ..
    } = *seen;
    let failing_now = seen.waiting.is_some() || seen.term_now.is_some();
    let start_error = |m: &str| {
        let m = m.to_ascii_lowercase();
        m.contains("executable file not found")
            || (m.contains("exec") && m.contains("no such file or directory"))
            || (m.contains("exec") && m.contains("permission denied"))
    };
    let tmsg = term.and_then(|t| t.message.as_deref()).unwrap_or_default();
    let code = term.map(|t| t.exit_code);
    let by_code = matches!(code, Some(126 | 127)) && (failing_now || recent);
    let by_message = start_error(wmsg) || (start_error(tmsg) && (failing_now || recent));
    if !(by_code || by_message) {
        return None;
    }
    let what = if code == Some(126)
        || wmsg.contains("permission denied")
        || tmsg.contains("permission denied")
    {
        "is not executable"
    } else {
        "does not exist in the image"
    };
    let command: Vec<String> = spec
        .map(|c| {
            c.command
                .iter()
                .flatten()
                .chain(c.args.iter().flatten().take(2))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let kind = if init { "init container" } else { "container" };
    let mut i = PodIssue::new(
        Cause::CommandNotFound,
        format!("{kind} {:?} cannot start: its command {what}", cs.name),
    );
    if let Some(t) = term {
        i = i.ev(format!(
            "{kind} {:?} exited with code {} ({}), restarted {} times",
            cs.name,
            t.exit_code,
            t.reason.as_deref().unwrap_or("Error"),
            cs.restart_count
        ));
    }
    if !command.is_empty() {
        i = i.ev(format!("command: {}", truncate(&command.join(" "), 200)));
    } else {
        i = i.ev("no command set: the image's ENTRYPOINT/CMD is run");
    }
    for m in [wmsg, tmsg] {
        if !m.is_empty() {
            i = i.ev(truncate(m.trim(), 300));
        }
    }
    for l in logs(snap, pod, &cs.name, 2) {
        i = i.ev(l);
    }
    Some(i.fix(format!(
        "Correct the command/args of {kind} {:?} to a program that exists in the image (check with `docker run --entrypoint sh IMAGE -c 'command -v PROG'`), or use an image that contains it; exit code 126 means the file exists but is not executable.",
        cs.name
    )))
}

/// The last `lines` interesting lines of the container's previous log, if it was read.
fn logs(snap: &Snapshot, pod: &Pod, container: &str, lines: usize) -> Vec<String> {
    let key = (
        ns_of(&pod.metadata).to_string(),
        name_of(&pod.metadata).to_string(),
        container.to_string(),
    );
    snap.previous_logs
        .get(&key)
        .map(|l| log_excerpt(l, lines))
        .unwrap_or_default()
}

fn crash(snap: &Snapshot, pod: &Pod, cs: &ContainerStatus, seen: &Observed) -> PodIssue {
    let term = seen.term;
    let code = term.map(|t| t.exit_code).unwrap_or_default();
    let reason = term.and_then(|t| t.reason.as_deref()).unwrap_or("Error");
    let mut i = PodIssue::new(
        Cause::CrashLoopAppError,
        format!(
            "container {:?} keeps exiting with code {code} ({reason})",
            cs.name
        ),
    )
    .ev(format!(
        "container {:?} {}last exited with code {code} ({reason}), restarted {} times",
        cs.name,
        seen.waiting_note(),
        cs.restart_count
    ));
    if let Some(m) = term.and_then(|t| t.message.as_deref()) {
        i = i.ev(format!("termination message: {}", truncate(m.trim(), 300)));
    }
    let lines = logs(snap, pod, &cs.name, 3);
    if lines.is_empty() {
        i = i.ev(NO_PREVIOUS_LOG);
    }
    i.log_quoted = !lines.is_empty();
    for l in lines {
        i = i.ev(l);
    }
    i.fix(format!(
        "The application in container {:?} exits on its own: fix the error its previous log shows (configuration, a dependency it cannot reach, a bad flag), then restart the rollout.",
        cs.name
    ))
}

fn oom(cs: &ContainerStatus, spec: Option<&Container>) -> PodIssue {
    let limit = spec
        .and_then(|c| c.resources.as_ref())
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map(|q| q.0.clone());
    let mut i = PodIssue::new(
        Cause::OomKilled,
        format!(
            "container {:?} is killed for using more memory than its limit ({})",
            cs.name,
            limit.as_deref().unwrap_or("no limit set")
        ),
    )
    .ev(format!(
        "container {:?} terminated with reason OOMKilled (exit code 137), restarted {} times",
        cs.name, cs.restart_count
    ));
    match limit.as_deref().and_then(parse_quantity) {
        Some(bytes) => {
            let new = format_bytes(bytes * 2.0);
            i = i.ev(format!("memory limit: {}", limit.as_deref().unwrap_or_default()));
            i.pod_spec_patch = Some(json!({"containers": [{"name": cs.name, "resources": {"limits": {"memory": new}}}]}));
            i.fix(format!(
                "Raise the memory limit of container {:?} from {} to {new} (or find the leak / lower the app's heap size).",
                cs.name,
                limit.unwrap_or_default()
            ))
        }
        None => {
            i.fix(format!(
                "Container {:?} has no memory limit, so the node ran out of memory: set requests/limits that fit its real usage.",
                cs.name
            ))
        }
    }
}

/// Words of the registry's refusal, lowercased, as containerd and Docker word it.
const PULL_RATE_LIMITED: &[&str] = &["toomanyrequests", "too many requests", "429", "rate limit"];
const PULL_UNAUTHORIZED: &[&str] = &[
    "401",
    "403",
    "unauthorized",
    "authorize",
    "denied",
    "forbidden",
    "authentication required",
];
const PULL_NOT_FOUND: &[&str] = &[
    "not found",
    "notfound",
    "manifest unknown",
    "does not exist",
    "invalid reference format",
];

fn image_issue(
    snap: &Snapshot,
    pod: &Pod,
    cs: &ContainerStatus,
    spec: Option<&Container>,
    wmsg: &str,
) -> Option<PodIssue> {
    let image = spec
        .and_then(|c| c.image.clone())
        .unwrap_or_else(|| cs.image.clone());
    let events = snap.events_for("Pod", ns_of(&pod.metadata), name_of(&pod.metadata));
    let pull_msgs: Vec<String> = events
        .iter()
        .filter_map(|e| e.message.clone())
        .filter(|m| {
            m.contains("Failed to pull image")
                || m.contains("pull access denied")
                || m.contains("toomanyrequests")
        })
        .filter(|m| m.contains(&image) || !m.contains('"'))
        .collect();
    let text = format!("{wmsg}\n{}", pull_msgs.join("\n")).to_lowercase();
    let mentions = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let rate_limited = mentions(PULL_RATE_LIMITED);
    let unauthorized = mentions(PULL_UNAUTHORIZED);
    let not_found = mentions(PULL_NOT_FOUND);
    let mut issue = if rate_limited {
        PodIssue::new(
            Cause::ImagePullRateLimited,
            format!("the registry refuses to serve image {image:?}: pull rate limit reached"),
        )
        .fix("Authenticate pulls (an imagePullSecret for an account with a higher limit), pull through a mirror or cache, or wait for the limit to reset; the image itself is fine.")
    } else if unauthorized {
        let mut i = PodIssue::new(
            Cause::ImagePullUnauthorized,
            format!("the registry refuses to serve image {image:?} without valid credentials"),
        );
        let ns = ns_of(&pod.metadata);
        let pull_secrets: Vec<String> = pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.as_ref())
            .into_iter()
            .flatten()
            .map(|r| r.name.clone())
            .collect();
        for s in &pull_secrets {
            if snap.secret(ns, s).is_none() && !snap.is_forbidden("secrets") {
                i = i.ev(format!(
                    "imagePullSecret {s:?} does not exist in namespace {ns:?}"
                ));
            }
        }
        if pull_secrets.is_empty() {
            i = i.ev("the pod has no imagePullSecrets");
            // A registry credential already in the namespace is the likely intended one.
            let creds: Vec<&str> = snap
                .secrets
                .iter()
                .filter(|s| s.namespace == ns && s.keys.contains(".dockerconfigjson"))
                .map(|s| s.name.as_str())
                .collect();
            if let [one] = creds.as_slice() {
                i.pod_spec_patch = Some(json!({"imagePullSecrets": [{"name": one}]}));
            }
        }
        i.fix(format!(
            "Create a registry credential (kubectl create secret docker-registry <name> --docker-server=... -n {ns}) and reference it in the pod template's imagePullSecrets."
        ))
    } else if not_found {
        let mut i = PodIssue::new(
            Cause::ImagePullNotFound,
            format!("image {image:?} does not exist in the registry"),
        );
        let previous = previous_image(snap, pod, &cs.name, &image);
        let fix = match &previous {
            Some(prev) => {
                i.pod_spec_patch = Some(json!({"containers": [{"name": cs.name, "image": prev}]}));
                format!("Correct the image reference (tag typo?) or push it; the previous revision ran {prev:?}, which this change restores.")
            }
            None => "Correct the image name/tag in the pod template, or push the missing tag to the registry.".to_string(),
        };
        i.fix(fix)
    } else {
        // Pulling fails for a reason no rule knows (network, rate limit): leave it to `unknown`.
        return None;
    };
    issue = issue.ev(format!("image: {image}"));
    for m in pull_msgs.iter().take(2) {
        issue = issue.ev(super::truncate_middle(m, 400));
    }
    if !wmsg.is_empty() {
        issue = issue.ev(format!("waiting message: {}", truncate(wmsg, 300)));
    }
    Some(issue)
}

/// The image the container had in the Deployment's newest older revision, if different.
fn previous_image(snap: &Snapshot, pod: &Pod, container: &str, bad: &str) -> Option<String> {
    let (kind, rs_name) = controller_of(&pod.metadata)?;
    if kind != "ReplicaSet" {
        return None;
    }
    let ns = ns_of(&pod.metadata);
    let rs = find_named(&snap.replicasets, ns, &rs_name)?;
    let deploy = controller_of(&rs.metadata)?;
    snap.replicasets
        .iter()
        .filter(|r| {
            ns_of(&r.metadata) == ns && controller_of(&r.metadata).as_ref() == Some(&deploy)
        })
        .filter_map(|r| {
            let img = r
                .spec
                .as_ref()?
                .template
                .as_ref()?
                .spec
                .as_ref()?
                .containers
                .iter()
                .find(|c| c.name == container)?
                .image
                .clone()?;
            (img != bad).then(|| (revision_of(&r.metadata).unwrap_or(0), img))
        })
        .max()
        .map(|(_, img)| img)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Liveness,
    Readiness,
}

impl ProbeKind {
    fn word(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
    fn field(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Readiness => "readinessProbe",
        }
    }
    fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
        }
    }
}

/// The kubelet's latest `Unhealthy` message for one probe of one container, and its count.
fn probe_failure(
    snap: &Snapshot,
    pod: &Pod,
    container: &str,
    which: ProbeKind,
) -> Option<(String, i32)> {
    let prefix = format!("{} probe failed", which.word());
    // 1.20–1.33 all start the message so; some versions add "(probe <kind>)" forms.
    let prefix_errored = format!("{} probe errored", which.word());
    let field = format!("spec.containers{{{container}}}");
    let events = snap.events_for("Pod", ns_of(&pod.metadata), name_of(&pod.metadata));
    let e = events
        .iter()
        .filter(|e| {
            e.message
                .as_deref()
                .is_some_and(|m| m.starts_with(&prefix) || m.starts_with(&prefix_errored))
        })
        .rfind(|e| {
            e.involved_object
                .field_path
                .as_deref()
                .is_none_or(|f| f.is_empty() || f == field)
        })?;
    Some((
        e.message.as_deref().unwrap_or_default().trim().to_string(),
        e.count.unwrap_or(1),
    ))
}

/// What a probe checks, as a person reads it: `GET /healthz on port 8080`.
fn probe_target(p: &Probe) -> String {
    let port = |p: &IntOrString| match p {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    if let Some(h) = &p.http_get {
        format!(
            "{} {} on port {}",
            h.scheme.as_deref().unwrap_or("HTTP"),
            h.path.as_deref().unwrap_or("/"),
            port(&h.port)
        )
    } else if let Some(t) = &p.tcp_socket {
        format!("TCP port {}", port(&t.port))
    } else if let Some(e) = &p.exec {
        format!(
            "exec {}",
            truncate(&e.command.clone().unwrap_or_default().join(" "), 120)
        )
    } else if let Some(g) = &p.grpc {
        format!("gRPC port {}", g.port)
    } else {
        "an unknown check".to_string()
    }
}

/// The outcome the kubelet reported: `status code 500`, `connection refused`, `timeout`.
fn probe_outcome(msg: &str) -> String {
    let lower = msg.to_ascii_lowercase();
    if let Some(i) = lower.find("statuscode: ") {
        let code: String = msg[i + 12..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if !code.is_empty() {
            return format!("status code {code}");
        }
    }
    for (needle, say) in [
        ("connection refused", "connection refused"),
        ("context deadline exceeded", "timeout"),
        ("timeout", "timeout"),
        ("timed out", "timeout"),
        ("no route to host", "no route to host"),
        ("connection reset", "connection reset"),
    ] {
        if lower.contains(needle) {
            return say.to_string();
        }
    }
    "failure".to_string()
}

/// Liveness or readiness probe failures, proven by the kubelet's `Unhealthy` events.
/// The finding is about `primary`, and covers every failing probe of the container: each
/// one's target (path, port) and outcome (status code) is evidence, and the fix and patch
/// cover all of them.
fn probe_issue(
    snap: &Snapshot,
    pod: &Pod,
    cs: &ContainerStatus,
    spec: Option<&Container>,
    primary: ProbeKind,
) -> Option<PodIssue> {
    let first = probe_failure(snap, pod, &cs.name, primary)?;
    let mut failing = vec![(primary, first)];
    for other in [ProbeKind::Liveness, ProbeKind::Readiness] {
        if other != primary {
            if let Some(f) = probe_failure(snap, pod, &cs.name, other) {
                failing.push((other, f));
            }
        }
    }
    let (cause, what) = if primary == ProbeKind::Liveness {
        (
            Cause::LivenessProbeFailing,
            "is restarted because its liveness probe fails",
        )
    } else {
        (
            Cause::ReadinessProbeFailing,
            "never becomes ready: its readiness probe fails",
        )
    };
    let mut i = PodIssue::new(cause, format!("container {:?} {what}", cs.name));
    let mut patch = serde_json::Map::new();
    let mut fixes = Vec::new();
    for (which, (msg, count)) in &failing {
        let probe = spec.and_then(|c| which.of(c));
        let target = probe
            .map(probe_target)
            .unwrap_or_else(|| "its probe".into());
        i = i.ev(format!(
            "{} {target} fails: {} ({} probe failed x{count})",
            which.field(),
            probe_outcome(msg),
            which.word()
        ));
        i = i.ev(format!(
            "{}{}",
            truncate(msg, 400),
            if *count > 1 {
                format!(" (x{count})")
            } else {
                String::new()
            }
        ));
        match (probe, spec) {
            (Some(p), Some(c)) => match wrong_probe_port(p, c) {
                Some((port, fixed, patch_probe)) => {
                    i = i.ev(format!(
                        "{} checks port {port}, but the container listens on {fixed}",
                        which.field()
                    ));
                    patch.insert(which.field().to_string(), patch_probe);
                    fixes.push(format!("point its {} at port {fixed}", which.field()));
                }
                None => fixes.push(format!(
                    "make its {} ({target}) match what the app serves, or fix the endpoint it checks",
                    which.field()
                )),
            },
            _ => fixes.push(format!("check its {} against what the app serves", which.field())),
        }
    }
    if primary == ProbeKind::Liveness {
        i = i.ev(format!("restarted {} times", cs.restart_count));
    }
    if !patch.is_empty() {
        patch.insert("name".into(), json!(cs.name));
        i.pod_spec_patch = Some(json!({"containers": [serde_json::Value::Object(patch)]}));
    }
    Some(i.fix(format!("Container {:?}: {}.", cs.name, fixes.join("; "))))
}

/// A probe aimed at a port the container does not declare, when the container declares
/// exactly one: returns (probe port, right port, probe patch).
fn wrong_probe_port(p: &Probe, c: &Container) -> Option<(String, i32, serde_json::Value)> {
    let ports = c.ports.as_ref()?;
    let [only] = ports.as_slice() else {
        return None;
    };
    let matches = |port: &IntOrString| match port {
        IntOrString::Int(n) => ports.iter().any(|cp| cp.container_port == *n),
        IntOrString::String(name) => ports.iter().any(|cp| cp.name.as_deref() == Some(name)),
    };
    let show = |port: &IntOrString| match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    let right = only.container_port;
    if let Some(h) = &p.http_get {
        if !matches(&h.port) {
            return Some((show(&h.port), right, json!({"httpGet": {"port": right}})));
        }
    }
    if let Some(t) = &p.tcp_socket {
        if !matches(&t.port) {
            return Some((show(&t.port), right, json!({"tcpSocket": {"port": right}})));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::pods::pod_findings;
    use crate::rules::testutil::*;
    use serde_json::{json, Value};

    fn one(
        spec: Value,
        statuses: Vec<Value>,
        events: Vec<(&str, &str, &str)>,
    ) -> Vec<crate::Finding> {
        let mut s = snap();
        add_deployment(&mut s, "web", 1, spec.clone());
        s.pods
            .push(pod("web-0", "web", spec, pod_status("Running", statuses)));
        for (t, r, m) in events {
            s.events.push(event("Pod", "web-0", t, r, m));
        }
        pod_findings(&s)
    }

    #[test]
    fn oom_proposes_double_limit() {
        let spec = json!({"containers": [container("app", json!({"resources": {"limits": {"memory": "128Mi"}}}))]});
        let f = one(
            spec,
            vec![crash_loop("app", 4, terminated("OOMKilled", 137, 20))],
            vec![],
        );
        assert_eq!(causes(&f), ["oom-killed"]);
        let change = f[0].fix.change.as_ref().unwrap();
        assert_eq!(change.kind, "Deployment");
        assert_eq!(
            change.patch["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                ["memory"],
            json!("256Mi")
        );
    }

    #[test]
    fn old_oom_on_running_container_is_not_reported() {
        let spec = app_spec();
        let mut st = running("app", true, 1);
        st["lastState"] = terminated("OOMKilled", 137, 86_400);
        assert!(one(spec, vec![st], vec![]).is_empty());
    }

    #[test]
    fn image_not_found_vs_unauthorized() {
        let spec = json!({"containers": [container("app", json!({"image": "registry.example.com/app:9.9"}))]});
        let st = || {
            vec![waiting(
                "app",
                "ImagePullBackOff",
                "Back-off pulling image \"registry.example.com/app:9.9\"",
                0,
                json!({}),
            )]
        };
        let nf = one(spec.clone(), st(), vec![("Warning", "Failed", "Failed to pull image \"registry.example.com/app:9.9\": rpc error: code = NotFound desc = failed to resolve reference \"registry.example.com/app:9.9\": registry.example.com/app:9.9: not found")]);
        assert_eq!(causes(&nf), ["image-pull-not-found"]);
        assert!(evidence_has(&nf[0], "app:9.9: not found"));
        let un = one(spec.clone(), st(), vec![("Warning", "Failed", "Failed to pull image \"registry.example.com/app:9.9\": rpc error: code = Unknown desc = failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized")]);
        assert_eq!(causes(&un), ["image-pull-unauthorized"]);
        // Without any pull error text there is no evidence for either cause.
        assert_eq!(causes(&one(spec, st(), vec![])), ["unknown"]);
    }

    /// The kubelet's pull errors as containerd and Docker word them (1.20–1.33).
    #[test]
    fn image_pull_wordings_of_containerd_and_docker() {
        let spec = json!({"containers": [container("app", json!({"image": "registry.example.com/app:9.9"}))]});
        let st = || vec![waiting("app", "ErrImagePull", "", 0, json!({}))];
        let cause_of = |msg: &str| {
            let f = one(spec.clone(), st(), vec![("Warning", "Failed", msg)]);
            f.first()
                .map(|f| f.cause.as_str().to_string())
                .unwrap_or_default()
        };
        for (msg, want) in [
            // containerd
            ("Failed to pull image \"registry.example.com/app:9.9\": rpc error: code = NotFound desc = failed to pull and unpack image \"registry.example.com/app:9.9\": failed to resolve reference \"registry.example.com/app:9.9\": registry.example.com/app:9.9: not found", "image-pull-not-found"),
            ("Failed to pull image \"registry.example.com/app:9.9\": rpc error: code = Unknown desc = failed to pull and unpack image \"registry.example.com/app:9.9\": failed to resolve reference \"registry.example.com/app:9.9\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed", "image-pull-unauthorized"),
            ("Failed to pull image \"registry.example.com/app:9.9\": rpc error: code = Unknown desc = failed to pull and unpack image \"registry.example.com/app:9.9\": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry.example.com/v2/app/manifests/sha256:0123: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.", "image-pull-rate-limited"),
            // Docker (dockershim, up to 1.23)
            ("Failed to pull image \"registry.example.com/app:9.9\": rpc error: code = Unknown desc = Error response from daemon: manifest for registry.example.com/app:9.9 not found: manifest unknown: manifest unknown", "image-pull-not-found"),
            ("Failed to pull image \"registry.example.com/app:9.9\": rpc error: code = Unknown desc = Error response from daemon: pull access denied for registry.example.com/app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", "image-pull-unauthorized"),
            ("Failed to pull image \"registry.example.com/app:9.9\": rpc error: code = Unknown desc = Error response from daemon: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit", "image-pull-rate-limited"),
        ] {
            assert_eq!(cause_of(msg), want, "{msg}");
        }
    }

    #[test]
    fn readiness_probe_on_wrong_port_gets_port_patch() {
        let spec = json!({"containers": [container("app", json!({"readinessProbe": {"httpGet": {"path": "/healthz", "port": 8081}}}))]});
        let f = one(spec.clone(), vec![running("app", false, 0)], vec![("Warning", "Unhealthy", "Readiness probe failed: Get \"http://10.1.0.5:8081/healthz\": dial tcp 10.1.0.5:8081: connect: connection refused")]);
        assert_eq!(causes(&f), ["readiness-probe-failing"]);
        let patch = &f[0].fix.change.as_ref().unwrap().patch;
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
            json!(8080)
        );
        // Not ready without probe failure events: no evidence for a probe problem.
        let f = one(spec, vec![running("app", false, 0)], vec![]);
        assert_eq!(causes(&f), ["unknown"]);
    }

    #[test]
    fn liveness_failures_beat_crash_loop() {
        let spec = json!({"containers": [container("app", json!({"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}))]});
        let f = one(
            spec.clone(),
            vec![crash_loop("app", 6, terminated("Error", 137, 20))],
            vec![(
                "Warning",
                "Unhealthy",
                "Liveness probe failed: HTTP probe failed with statuscode: 500",
            )],
        );
        assert_eq!(causes(&f), ["liveness-probe-failing"]);
        let f = one(
            spec,
            vec![crash_loop("app", 6, terminated("Error", 1, 20))],
            vec![],
        );
        assert_eq!(causes(&f), ["crash-loop-app-error"]);
    }

    #[test]
    fn init_container_failure() {
        let spec = json!({"initContainers": [container("wait-db", json!({}))], "containers": [container("app", json!({}))]});
        let mut s = snap();
        let mut status = pod_status(
            "Pending",
            vec![waiting("app", "PodInitializing", "", 0, json!({}))],
        );
        status["initContainerStatuses"] =
            json!([crash_loop("wait-db", 5, terminated("Error", 1, 30))]);
        s.pods.push(pod("web-0", "web", spec, status));
        s.previous_logs.insert(
            (NS.into(), "web-0".into(), "wait-db".into()),
            "waiting for db:5432\nerror: db:5432 connection refused\n".into(),
        );
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["init-container-failing"]);
        assert!(evidence_has(&f[0], "connection refused"));
    }
}
