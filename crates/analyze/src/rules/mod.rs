//! The rules: pure functions from a [`Snapshot`] to findings. Each file owns one area;
//! [`run_all`] runs them all and ranks the result.

mod admission;
mod applogs;
mod autoscale;
mod certs;
mod config;
mod containers;
mod controllers;
mod netpol;
mod network;
mod nodes;
mod pods;
mod rbac;
mod scheduling;
mod storage;
mod workloads;

// Builders for rule tests, also used by the snapshot read's tests in kai-cluster.
#[cfg(any(test, feature = "test-util"))]
pub mod testutil;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Metadata;
use regex::Regex;
use serde_json::{json, Value};

use super::finding::{rank, Finding};
use super::snapshot::{name_of, Snapshot};

pub use crate::quantity::{format_bytes, parse_quantity};
pub(crate) use config::referenced as referenced_config;
pub(crate) use netpol::label_selector_matches;
pub(crate) use storage::uses_pvc;

/// Every rule, in no particular order (ranking happens afterwards).
const RULES: &[fn(&Snapshot) -> Vec<Finding>] = &[
    pods::pod_findings,
    workloads::rollout_stuck,
    workloads::job_backoff_limit,
    workloads::replica_failure,
    network::services,
    network::ingresses,
    storage::pvcs,
    nodes::not_ready,
    nodes::pressure,
    nodes::forbidden,
    admission::refused_creations,
    rbac::missing_permissions,
    rbac::broken_bindings,
    applogs::app_errors,
    netpol::network_policies,
    autoscale::hpas,
    autoscale::pdbs,
    controllers::cronjobs,
    controllers::statefulsets,
    certs::certificates,
    certs::ingress_refs,
];

/// Run every rule over the snapshot; most important finding first. A Service left without
/// endpoints by pods that have findings of their own is folded into those findings.
pub fn run_all(snap: &Snapshot) -> Vec<Finding> {
    let mut out: Vec<Finding> = RULES.iter().flat_map(|rule| rule(snap)).collect();
    network::fold_unready_services(snap, &mut out);
    rank(&mut out);
    out
}

/// The lines of a log tail worth quoting: the last few that look like errors, else the
/// last non-empty lines. Long lines are cut so one log cannot swamp the evidence.
pub(crate) fn log_excerpt(log: &str, max: usize) -> Vec<String> {
    static RE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"(?i)(fatal|error|exception|panic|traceback|failed|refused|denied|cannot|could not|unable|no such|not found|timed? ?out|killed|invalid|missing)",
        )
        .ok()
    });
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut picked: Vec<&str> = match re {
        Some(re) => lines.iter().filter(|l| re.is_match(l)).copied().collect(),
        None => Vec::new(),
    };
    if picked.is_empty() {
        picked = lines.clone();
    }
    let start = picked.len().saturating_sub(max);
    picked[start..].iter().map(|l| truncate(l, 300)).collect()
}

/// The names of `objects`, in their order.
pub(crate) fn names<'a, T>(objects: impl IntoIterator<Item = &'a T>) -> Vec<&'a str>
where
    T: Metadata<Ty = ObjectMeta> + 'a,
{
    objects.into_iter().map(|o| name_of(o.metadata())).collect()
}

/// The statuses of a pod's (regular, not init) containers; none before the kubelet reports.
pub(crate) fn container_statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
}

/// Like [`truncate`], but keeps both ends: runtime errors put the cause (`toomanyrequests`,
/// `not found`) at the end of a long message.
pub(crate) fn truncate_middle(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let head = max / 3;
    let tail = max - head;
    let mut t: String = s.chars().take(head).collect();
    t.push('…');
    t.extend(s.chars().skip(n - tail));
    t
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Wrap a pod-spec patch into a patch of the owner's pod template. `None` for kinds whose
/// pod spec cannot be changed in place (bare Pods, Jobs).
pub(crate) fn template_patch(owner_kind: &str, pod_spec_patch: Value) -> Option<Value> {
    match owner_kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            Some(json!({"spec": {"template": {"spec": pod_spec_patch}}}))
        }
        "CronJob" => {
            Some(json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec_patch}}}}}))
        }
        _ => None,
    }
}

/// Levenshtein distance, for near-miss names ("did you mean web-svc?").
pub(crate) use kai_text::suggest::edit_distance;

/// Names among `candidates` close to `name`: small edit distance or one containing the other.
pub(crate) fn near_misses<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut v: Vec<(usize, String)> = candidates
        .into_iter()
        .filter(|c| *c != name)
        .filter_map(|c| {
            // "svc" and "service" are used interchangeably in names.
            let norm = |s: &str| s.replace("service", "svc");
            let d = edit_distance(&norm(name), &norm(c));
            let close = d <= 2.max(name.len() / 4) || c.contains(name) || name.contains(c);
            close.then(|| (d, c.to_string()))
        })
        .collect();
    v.sort();
    v.dedup();
    v.into_iter().map(|(_, c)| c).take(5).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_excerpt_prefers_error_lines() {
        let log = "starting\nlistening on :8080\nFATAL: password authentication failed\nbye\n";
        assert_eq!(
            log_excerpt(log, 3),
            vec!["FATAL: password authentication failed"]
        );
        assert_eq!(log_excerpt("a\nb\nc\n", 2), vec!["b", "c"]);
    }

    #[test]
    fn near_misses_find_typos() {
        assert_eq!(
            near_misses("web-svc", ["web-service", "db", "web-svcs"]),
            vec!["web-service", "web-svcs"]
        );
        assert!(near_misses("api", ["database"]).is_empty());
    }

    #[test]
    fn template_patch_wraps_by_kind() {
        assert!(template_patch("Pod", json!({})).is_none());
        assert_eq!(
            template_patch("Deployment", json!({"a": 1})),
            Some(json!({"spec": {"template": {"spec": {"a": 1}}}}))
        );
    }
}
