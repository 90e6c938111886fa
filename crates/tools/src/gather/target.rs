//! What pre-gathering fetches for a question: the workload the question names (matched
//! against the namespace's workloads, Pods and Services), its worst pods, and the read
//! calls an SRE would make first. Pure: decided over a [`Snapshot`], nothing read here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::Metadata;
use serde_json::{json, Value};

use super::Part;
use kai_analyze::selector::{workload_selector, SelectorExt};
use kai_analyze::Snapshot;

/// Failing pods described, at most.
const MAX_PODS: usize = 2;

/// What a question names, in the namespace's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub name: String,
}

/// Words that mark a question about something not working.
pub fn is_troubleshooting(tokens: &[String]) -> bool {
    const MARKERS: &[&str] = &[
        "why",
        "wrong",
        "broken",
        "broke",
        "fail",
        "failing",
        "failed",
        "failure",
        "crash",
        "crashing",
        "crashloop",
        "crashlooping",
        "pending",
        "error",
        "errors",
        "down",
        "unhealthy",
        "healthy",
        "health",
        "issue",
        "issues",
        "problem",
        "problems",
        "stuck",
        "restarting",
        "restarts",
        "oom",
        "oomkilled",
        "unavailable",
        "evicted",
        "notready",
        "diagnose",
        "debug",
        "troubleshoot",
    ];
    tokens.iter().any(|t| MARKERS.contains(&t.as_str()))
}

/// Words of the question that could be object names (`backend`, `deployment/backend`).
pub fn tokens(question: &str) -> Vec<String> {
    question
        .split(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | '?' | '!' | '"' | '\'' | '`' | '(' | ')')
        })
        .map(|t| t.trim_matches(|c: char| c == '.' || c == ':'))
        .filter(|t| t.len() >= 2)
        .map(|t| t.to_ascii_lowercase())
        .collect()
}

/// (kind, name) of everything a question may name, workloads first: when a Deployment
/// and its Service share a name, the question is about the Deployment.
fn named(inv: &Snapshot) -> Vec<(&'static str, String)> {
    fn names<K: Metadata<Ty = ObjectMeta>>(v: &[K]) -> impl Iterator<Item = String> + '_ {
        v.iter().filter_map(|o| o.metadata().name.clone())
    }
    let mut out = Vec::new();
    out.extend(names(&inv.deployments).map(|n| ("Deployment", n)));
    out.extend(names(&inv.statefulsets).map(|n| ("StatefulSet", n)));
    out.extend(names(&inv.daemonsets).map(|n| ("DaemonSet", n)));
    out.extend(names(&inv.cronjobs).map(|n| ("CronJob", n)));
    out.extend(names(&inv.jobs).map(|n| ("Job", n)));
    out.extend(names(&inv.pods).map(|n| ("Pod", n)));
    out.extend(names(&inv.services).map(|n| ("Service", n)));
    out
}

fn kind_alias(k: &str) -> Option<&'static str> {
    Some(match k {
        "deployment" | "deployments" | "deploy" => "Deployment",
        "statefulset" | "statefulsets" | "sts" => "StatefulSet",
        "daemonset" | "daemonsets" | "ds" => "DaemonSet",
        "cronjob" | "cronjobs" | "cj" => "CronJob",
        "job" | "jobs" => "Job",
        "pod" | "pods" | "po" => "Pod",
        "service" | "services" | "svc" => "Service",
        _ => return None,
    })
}

/// The object the question is about: `kind/name` first, then an exact name (workloads
/// before pods and services), then a pod whose generated name starts with a token
/// (`backend` → `backend-7d9c-x`), resolved to its owner.
pub fn find_target(tokens: &[String], inv: &Snapshot) -> Option<Target> {
    let named = named(inv);
    for t in tokens {
        if let Some((k, n)) = t.split_once('/') {
            if let Some(kind) = kind_alias(k) {
                if let Some((kind, name)) = named.iter().find(|(nk, nn)| *nk == kind && nn == n) {
                    return Some(Target {
                        kind,
                        name: name.clone(),
                    });
                }
            }
        }
    }
    // A kind word right before or after a name ("deployment backend", "the checkout
    // service") decides ties.
    for w in tokens.windows(2) {
        for (k, n) in [(&w[0], &w[1]), (&w[1], &w[0])] {
            if let Some(kind) = kind_alias(k) {
                if let Some((kind, name)) = named.iter().find(|(nk, nn)| *nk == kind && nn == n) {
                    return Some(Target {
                        kind,
                        name: name.clone(),
                    });
                }
            }
        }
    }
    for (kind, name) in &named {
        if tokens.iter().any(|t| t == name) {
            return Some(Target {
                kind,
                name: name.clone(),
            });
        }
    }
    for t in tokens {
        if t.len() < 3 || kind_alias(t).is_some() {
            continue;
        }
        let prefix = format!("{t}-");
        if let Some(pod) = inv.pods.iter().find(|p| {
            p.metadata
                .name
                .as_ref()
                .is_some_and(|n| n.starts_with(&prefix))
        }) {
            return Some(owner_target(inv, pod));
        }
    }
    None
}

/// The top-level owner of a pod, walked as the analyzers walk it (ReplicaSet →
/// Deployment, Job → CronJob), when it is a kind pre-gathering can follow; else the pod.
fn owner_target(inv: &Snapshot, pod: &Pod) -> Target {
    let top = inv.top_owner(pod);
    let kind = match top.kind.as_str() {
        "Deployment" => "Deployment",
        "StatefulSet" => "StatefulSet",
        "DaemonSet" => "DaemonSet",
        "Job" => "Job",
        "CronJob" => "CronJob",
        _ => {
            return Target {
                kind: "Pod",
                name: pod.metadata.name.clone().unwrap_or_default(),
            }
        }
    };
    Target {
        kind,
        name: top.name,
    }
}

/// How bad a pod looks; 0 is healthy. Crash loops and config errors outrank pending.
pub fn badness(pod: &Pod) -> u32 {
    let Some(st) = pod.status.as_ref() else {
        return 1;
    };
    let mut score = 0;
    if st.phase.as_deref() == Some("Failed") {
        score += 50;
    }
    if st.phase.as_deref() == Some("Pending") {
        score += 20;
    }
    for cs in st
        .container_statuses
        .iter()
        .flatten()
        .chain(st.init_container_statuses.iter().flatten())
    {
        if !cs.ready
            && cs
                .state
                .as_ref()
                .is_none_or(|s| s.terminated.as_ref().is_none_or(|t| t.exit_code != 0))
        {
            score += 10;
        }
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            score += match w.reason.as_deref() {
                Some("CrashLoopBackOff") => 40,
                Some(
                    "CreateContainerConfigError"
                    | "ImagePullBackOff"
                    | "ErrImagePull"
                    | "InvalidImageName",
                ) => 35,
                Some("ContainerCreating" | "PodInitializing") => 5,
                _ => 15,
            };
        }
        if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            if t.exit_code != 0 {
                score += 30;
            }
        }
        score += (cs.restart_count.clamp(0, 20)) as u32;
    }
    score
}

/// The target's pods, worst first, at most [`MAX_PODS`], healthy ones left out.
pub fn failing_pods(inv: &Snapshot, target: &Target) -> Vec<Pod> {
    let selector: Option<LabelSelector> = match target.kind {
        "Deployment" => inv
            .deployments
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(&target.name))
            .and_then(|d| d.spec.as_ref())
            .map(|s| s.selector.clone()),
        "StatefulSet" => inv
            .statefulsets
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(&target.name))
            .and_then(|d| d.spec.as_ref())
            .map(|s| s.selector.clone()),
        "DaemonSet" => inv
            .daemonsets
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(&target.name))
            .and_then(|d| d.spec.as_ref())
            .map(|s| s.selector.clone()),
        "Job" => inv
            .jobs
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(&target.name))
            .and_then(|d| d.spec.as_ref())
            .and_then(|s| s.selector.clone()),
        "Service" => inv
            .services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(&target.name))
            .and_then(|s| s.spec.as_ref()?.selector.clone())
            // A Service without a selector selects no pods (its endpoints are by hand).
            .filter(|m| !m.is_empty())
            .map(|m| LabelSelector {
                match_labels: Some(m),
                ..Default::default()
            }),
        _ => None,
    };
    let selector = selector.as_ref().and_then(workload_selector);
    let mut pods: Vec<&Pod> = match target.kind {
        "Pod" => inv
            .pods
            .iter()
            .filter(|p| p.metadata.name.as_deref() == Some(&target.name))
            .collect(),
        "CronJob" => {
            let jobs: Vec<String> = inv
                .jobs
                .iter()
                .filter(|j| {
                    j.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|o| o.kind == "CronJob" && o.name == target.name)
                })
                .filter_map(|j| j.metadata.name.clone())
                .collect();
            inv.pods
                .iter()
                .filter(|p| {
                    p.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|o| o.kind == "Job" && jobs.contains(&o.name))
                })
                .collect()
        }
        _ => match &selector {
            Some(sel) => {
                let empty = BTreeMap::new();
                inv.pods
                    .iter()
                    .filter(|p| sel.matches(p.metadata.labels.as_ref().unwrap_or(&empty)))
                    .collect()
            }
            None => Vec::new(),
        },
    };
    pods.retain(|p| badness(p) > 0 || target.kind == "Pod");
    pods.sort_by_key(|p| std::cmp::Reverse(badness(p)));
    pods.into_iter().take(MAX_PODS).cloned().collect()
}

/// (tool, args, the part of the context it belongs to, its weight within the part)
pub(super) type Call = (&'static str, Value, Part, usize);

pub(super) fn plan(ns: &str, target: &Target, pods: &[Pod]) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    let target_is_pod = target.kind == "Pod";
    // Findings first: they name the cause and quote its evidence, so what follows only
    // adds what they do not already say.
    calls.push((
        "analyze",
        json!({"target": format!("{}/{}", target.kind.to_ascii_lowercase(), target.name), "namespace": ns}),
        Part::Findings,
        1,
    ));
    for (i, pod) in pods.iter().enumerate() {
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        // The worst pod's describe (state, last state, its events) says most.
        calls.push((
            "describe",
            json!({"kind": "Pod", "name": name, "namespace": ns}),
            Part::Describe,
            if i == 0 { 4 } else { 1 },
        ));
        // Logs of the worst pod only: its siblings run the same image and config, and
        // their logs would mostly repeat it.
        if i > 0 {
            continue;
        }
        let st = pod.status.clone().unwrap_or_default();
        let statuses: Vec<_> = st
            .init_container_statuses
            .iter()
            .flatten()
            .chain(st.container_statuses.iter().flatten())
            .cloned()
            .collect();
        let multi = statuses.len() > 1;
        for cs in statuses {
            let crashed = cs
                .last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some());
            let running = cs.state.as_ref().is_some_and(|s| s.running.is_some());
            let terminated_now = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0);
            let mut args = json!({"pod": name, "namespace": ns});
            if multi {
                args["container"] = json!(cs.name);
            }
            if crashed {
                let mut a = args.clone();
                a["previous"] = json!(true);
                a["tail_lines"] = json!(100);
                calls.push(("get_logs", a, Part::Logs, 2));
            }
            // A container in back-off has no new log; a running or just-failed one has.
            if (running && (!cs.ready || crashed || target_is_pod)) || terminated_now {
                let mut a = args;
                a["tail_lines"] = json!(50);
                calls.push(("get_logs", a, Part::Logs, 1));
            }
        }
    }
    // The target's own describe only when none of its pods is failing: otherwise the
    // findings summarise it, and its pod template, conditions and events repeat what
    // the failing pod's describe says (which names its owner chain).
    if !target_is_pod && pods.is_empty() {
        calls.push((
            "describe",
            json!({"kind": target.kind, "name": target.name, "namespace": ns}),
            Part::Describe,
            1,
        ));
    }
    // The model reads the parts in order: findings, describe, logs.
    calls.sort_by_key(|c| c.2);
    calls
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_troubleshooting_questions_get_a_namespace_scan() {
        assert!(is_troubleshooting(&tokens(
            "what is broken in this namespace?"
        )));
        assert!(is_troubleshooting(&tokens("Why are the pods pending?")));
        assert!(!is_troubleshooting(&tokens("how do I write a helm chart?")));
        assert!(!is_troubleshooting(&tokens("list the services")));
    }

    fn dep(name: &str, app: &str) -> k8s_openapi::api::apps::v1::Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": app}}, "template": {}}
        }))
        .unwrap()
    }

    fn pod(name: &str, app: &str, crash: bool) -> Pod {
        let state = if crash {
            json!({"waiting": {"reason": "CrashLoopBackOff"}})
        } else {
            json!({"running": {}})
        };
        let last = if crash {
            json!({"terminated": {"exitCode": 1, "reason": "Error"}})
        } else {
            json!({})
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "ready": !crash, "restartCount": if crash { 7 } else { 0 },
                "image": "x", "imageID": "", "state": state, "lastState": last}]}
        }))
        .unwrap()
    }

    fn inv() -> Snapshot {
        Snapshot {
            deployments: vec![dep("backend", "backend"), dep("frontend", "frontend")],
            pods: vec![
                pod("backend-7d9c-aaaaa", "backend", true),
                pod("backend-7d9c-bbbbb", "backend", false),
                pod("frontend-5f5f-ccccc", "frontend", false),
            ],
            services: vec![serde_json::from_value(
                json!({"metadata": {"name": "backend"}, "spec": {"selector": {"app": "backend"}}}),
            )
            .unwrap()],
            ..Default::default()
        }
    }

    #[test]
    fn question_tokens() {
        assert_eq!(
            tokens("Why is backend crashlooping?"),
            vec!["why", "is", "backend", "crashlooping"]
        );
        assert_eq!(
            tokens("check deploy/backend."),
            vec!["check", "deploy/backend"]
        );
    }

    #[test]
    fn finds_the_workload_before_the_service() {
        let inv = inv();
        let t = find_target(&tokens("why is backend crashlooping?"), &inv).unwrap();
        assert_eq!(
            t,
            Target {
                kind: "Deployment",
                name: "backend".into()
            }
        );
        let t = find_target(&tokens("is svc/backend ok"), &inv).unwrap();
        assert_eq!(t.kind, "Service");
        let t = find_target(&tokens("what about service backend"), &inv).unwrap();
        assert_eq!(t.kind, "Service");
        let t = find_target(
            &tokens("why does the backend service have no endpoints"),
            &inv,
        );
        assert_eq!(t.unwrap().kind, "Service");
        assert!(find_target(&tokens("how do I write a helm chart"), &inv).is_none());
    }

    #[test]
    fn failing_pods_are_found_through_the_selector() {
        let inv = inv();
        let pods = failing_pods(
            &inv,
            &Target {
                kind: "Deployment",
                name: "backend".into(),
            },
        );
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].metadata.name.as_deref(), Some("backend-7d9c-aaaaa"));
        assert!(failing_pods(
            &inv,
            &Target {
                kind: "Deployment",
                name: "frontend".into()
            }
        )
        .is_empty());
    }

    #[test]
    fn plan_fetches_previous_logs_of_crashed_containers() {
        let inv = inv();
        let target = Target {
            kind: "Deployment",
            name: "backend".into(),
        };
        let pods = failing_pods(&inv, &target);
        let calls = plan("shop", &target, &pods);
        let tools: Vec<&str> = calls.iter().map(|c| c.0).collect();
        assert_eq!(tools, vec!["analyze", "describe", "get_logs"]);
        assert_eq!(calls[0].1["target"], "deployment/backend");
        assert_eq!(
            calls[1].1["kind"], "Pod",
            "the failing pod, not its owner again"
        );
        assert_eq!(calls[2].1["previous"], true);
        assert_eq!(calls[2].1["pod"], "backend-7d9c-aaaaa");
        // No failing pod: the target itself is described.
        let target = Target {
            kind: "Deployment",
            name: "frontend".into(),
        };
        let calls = plan("shop", &target, &failing_pods(&inv, &target));
        let tools: Vec<&str> = calls.iter().map(|c| c.0).collect();
        assert_eq!(tools, vec!["analyze", "describe"]);
        assert_eq!(calls[1].1["kind"], "Deployment");
    }
}
