//! Context pre-gathering before the first model call.
//!
//! From the question alone, find the workload it is about (names the question mentions,
//! matched against the namespace's workloads, Pods and Services), follow it to its
//! failing pods, and fetch what an SRE would look at first — the analyzers' findings,
//! describe of its worst pods (of the workload itself when none fails), previous logs of
//! crashed containers, current logs — all at once. Each result is a real read-tool call,
//! so the agent can show it as a synthetic tool call; the model sees what that call
//! returns, less what [`compose`] leaves out and says it left out: lines the findings
//! already quote, lines an earlier describe showed, routine lines, and what does not fit
//! the part's share of [`CONTEXT_BUDGET`]. Each fact once, findings first.
//!
//! The turn reads the namespace once: one [`NamespaceView`] serves the target search,
//! every describe and the analyzers, each kind listed once and all kinds concurrently.
//! What the search could not read (RBAC, an unreachable server) is not "nothing named":
//! the namespace's analysis is gathered instead, and it says what could not be read.
//! [`ClusterGatherer`] is this, as the agent's [`Gatherer`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::Metadata;
use serde_json::{json, Value};

use crate::ToolEnv;
use kai_analyze::selector::{workload_selector, SelectorExt};
use kai_analyze::Snapshot;
use kai_cluster::budget::chars_for;
use kai_cluster::{describe, fetch, NamespaceView, Res};
pub use kai_core::agent::Gathered;
use kai_core::agent::Gatherer;
use kai_core::tools::{ToolError, TurnId};

/// Pre-gathering as the agent's [`Gatherer`]: [`pregather`] with the session's tools.
pub struct ClusterGatherer {
    env: Arc<ToolEnv>,
}

impl ClusterGatherer {
    pub fn new(env: Arc<ToolEnv>) -> Self {
        Self { env }
    }
}

#[async_trait]
impl Gatherer for ClusterGatherer {
    async fn gather(
        &self,
        turn: Option<TurnId>,
        question: &str,
        namespace: Option<&str>,
    ) -> Vec<Gathered> {
        pregather_in(&self.env, turn, question, namespace).await
    }
}

/// The whole pre-gathered context may use this many per-tool budgets.
pub const TOTAL_BUDGET_FACTOR: usize = 3;
/// Failing pods described, at most.
const MAX_PODS: usize = 2;

/// The parts of the pre-gathered context, in the order the model reads them. The runbook
/// excerpt comes last (the docs gatherer adds it, within [`ContextBudget::runbook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The analyzers' findings: cause, evidence lines, proposed fix.
    Findings,
    /// `describe` of the target and its worst pods, minus what was already shown.
    Describe,
    /// Logs of the worst pod, minus the lines the findings quote.
    Logs,
}

/// How the first request's context budget is split, in bytes of tool output. The first
/// request must fit 8 KB with the system prompt and the tool declarations (about 6 KB
/// of it), so the context gets what is left. What a part does not use flows on to the
/// next, in order (findings, describe, logs): a short finding leaves room for more
/// describe lines, and a huge log cannot take the findings' share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextBudget {
    pub findings: usize,
    pub describe: usize,
    pub logs: usize,
    /// The cause's runbook excerpt, last ([`crate::docs::PREGATHER_RUNBOOK_BYTES`]).
    pub runbook: usize,
}

/// The split every pre-gathering uses.
pub const CONTEXT_BUDGET: ContextBudget = ContextBudget {
    findings: 1050,
    describe: 570,
    logs: 250,
    runbook: 330,
};

impl ContextBudget {
    /// The three cluster parts' total.
    pub fn cluster_total(&self) -> usize {
        self.findings + self.describe + self.logs
    }

    /// This split scaled down (each part in proportion) so the cluster parts fit `cap`
    /// bytes: a session with a small per-tool budget gets a smaller context.
    pub fn within(&self, cap: usize) -> ContextBudget {
        let total = self.cluster_total();
        if total <= cap || total == 0 {
            return *self;
        }
        ContextBudget {
            findings: self.findings * cap / total,
            describe: self.describe * cap / total,
            logs: self.logs * cap / total,
            runbook: self.runbook,
        }
    }

    fn share(&self, part: Part) -> usize {
        match part {
            Part::Findings => self.findings,
            Part::Describe => self.describe,
            Part::Logs => self.logs,
        }
    }
}

/// One pre-gathered output on its way into the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub part: Part,
    /// Its weight among the pieces of its part when they must share.
    pub weight: usize,
    pub text: String,
}

/// Describe lines shorter than this are structure (`Env:`, `app:`) and stay even when
/// repeated; longer ones are facts, shown once.
const MIN_FACT_CHARS: usize = 12;

/// Describe lines that carry nothing for a diagnosis the arguments or the findings do
/// not already say: the namespace (it is in the call), ages and addresses, and the
/// routine events every healthy start also has.
fn routine(fact: &str) -> bool {
    const FIELDS: &[&str] = &["Namespace: ", "Age: ", "Started: ", "IP: ", "Revision: "];
    const EVENTS: &[&str] = &[
        "Scheduled",
        "Pulled",
        "Created",
        "Started",
        "SuccessfulCreate",
        "ScalingReplicaSet",
    ];
    if FIELDS.iter().any(|f| fact.starts_with(f)) {
        return true;
    }
    // `2s ago  Normal  Created (x8): Created container app`
    let mut words = fact.split_whitespace().skip_while(|w| *w != "Normal");
    words.next().is_some()
        && words
            .next()
            .is_some_and(|reason| EVENTS.iter().any(|e| reason.trim_end_matches(':') == *e))
}

/// The content of a line as a fact: trimmed, without the findings' evidence bar.
fn fact(line: &str) -> &str {
    line.trim().trim_start_matches('│').trim()
}

/// Make `pieces` one context without repetition, within `budget`: every line a finding
/// quotes is left out of the describe and log parts, every describe line shown once (a
/// pod's template lines in its Deployment's describe and its own), then each part is cut
/// to its share plus what earlier parts left, shared among its pieces by weight. Logs
/// are cut as logs (head, tail and error-looking lines kept). What each cut left out is
/// said in the text. Returns the bytes left unused.
pub fn compose(pieces: &mut [Piece], budget: &ContextBudget) -> usize {
    use std::collections::HashSet;
    let quoted: HashSet<String> = pieces
        .iter()
        .filter(|p| p.part == Part::Findings)
        .flat_map(|p| p.text.lines().map(|l| fact(l).to_string()))
        .filter(|l| l.len() >= MIN_FACT_CHARS)
        .collect();
    // "N problems found." repeats the header's count.
    for p in pieces.iter_mut().filter(|p| p.part == Part::Findings) {
        if let Some(i) = p.text.trim_end().rfind('\n') {
            let last = p.text[i..].trim();
            if last.ends_with(" found.") && last.split(' ').count() == 3 {
                p.text = p.text[..i].trim_end().to_string() + "\n";
            }
        }
    }
    let mut shown = quoted.clone();
    for p in pieces.iter_mut().filter(|p| p.part != Part::Findings) {
        let mut kept = Vec::new();
        let mut dropped = 0usize;
        let mut plain = 0usize;
        for (i, line) in p.text.lines().enumerate() {
            let f = fact(line);
            // The first line says what the output is (a log's header): always kept.
            let repeat = i > 0
                && f.len() >= MIN_FACT_CHARS
                && !f.ends_with(':')
                && match p.part {
                    Part::Logs => quoted.contains(f),
                    _ => shown.contains(f),
                };
            if repeat {
                dropped += 1;
                continue;
            }
            if i > 0 && p.part == Part::Describe && routine(f) {
                plain += 1;
                continue;
            }
            if p.part == Part::Describe && f.len() >= MIN_FACT_CHARS {
                shown.insert(f.to_string());
            }
            kept.push(line);
        }
        let mut notes = Vec::new();
        if dropped > 0 {
            let what = if p.part == Part::Logs {
                "quoted in the findings"
            } else {
                "shown above"
            };
            notes.push(format!(
                "{dropped} line{} already {what}",
                if dropped == 1 { "" } else { "s" }
            ));
        }
        if plain > 0 {
            notes.push(format!("{plain} routine (ages, IPs, normal start events)"));
        }
        if !notes.is_empty() {
            p.text = format!("{}\n[kai: left out {}]", kept.join("\n"), notes.join(", "));
        }
    }
    let mut carry = 0usize;
    for part in [Part::Findings, Part::Describe, Part::Logs] {
        let avail = budget.share(part) + carry;
        let idx: Vec<usize> = (0..pieces.len())
            .filter(|&i| pieces[i].part == part)
            .collect();
        let needs: Vec<usize> = idx.iter().map(|&i| pieces[i].text.len()).collect();
        let weights: Vec<usize> = idx.iter().map(|&i| pieces[i].weight).collect();
        let allotted = allot(avail, &needs, &weights);
        let mut used = 0;
        for (&i, max) in idx.iter().zip(allotted) {
            let p = &mut pieces[i];
            if p.text.len() > max {
                p.text = cut(p.part, &p.text, max);
            }
            used += p.text.len();
        }
        carry = avail.saturating_sub(used);
    }
    carry
}

/// `text` in at most `max` bytes (or, below a useful minimum, as few as say what was cut).
fn cut(part: Part, text: &str, max: usize) -> String {
    match part {
        Part::Logs => {
            let (head, body) = text.split_once('\n').unwrap_or((text, ""));
            let room = max.saturating_sub(head.len() + 1);
            // fit_log's head, rescued lines and footer need room; in less, the end of
            // the log (what the process said last) is what to keep.
            if room >= 1500 {
                let body = kai_text::budget::fit_log(body, room, "call get_logs for more");
                return format!("{head}\n{body}");
            }
            let lines: Vec<&str> = body.lines().collect();
            let mut start = lines.len();
            let mut used = 0;
            let marker = |n: usize| format!("… [{n} earlier lines: call get_logs]\n");
            while start > 0 {
                let l = lines[start - 1];
                if used + l.len() + 1 + marker(start - 1).len() > room {
                    break;
                }
                used += l.len() + 1;
                start -= 1;
            }
            let mut out = format!("{head}\n");
            if start > 0 {
                out.push_str(&marker(start));
            }
            out.push_str(&lines[start..].join("\n"));
            out
        }
        Part::Describe => cut_lines(text, max, "describe"),
        // In rank order, evidence before fix: the evidence is what the model cannot get
        // elsewhere without a call, and a cut finding says how to see the rest.
        Part::Findings => cut_lines(text, max, "analyze"),
    }
}

/// The whole lines of `text` that fit `max` bytes with a last line saying how many were
/// cut and which tool shows them all (shares are small: the marker is all it reserves).
fn cut_lines(text: &str, max: usize, tool: &str) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let lines: Vec<&str> = text.lines().collect();
    let marker = |n: usize| format!("… [{n} more lines: call {tool}]");
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let line = kai_text::budget::cut_line(line, kai_text::budget::MAX_LINE_CHARS);
        if out.len() + line.len() + 1 + marker(lines.len() - i - 1).len() > max {
            out.push_str(&marker(lines.len() - i));
            return out;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `avail` bytes shared among pieces that need `needs` bytes, by `weights`: a piece that
/// needs less than its share gets what it needs and the rest is shared again among the
/// others, so nothing is left unused while a piece still wants more.
pub fn allot(avail: usize, needs: &[usize], weights: &[usize]) -> Vec<usize> {
    let mut out = vec![0usize; needs.len()];
    let mut open: Vec<usize> = (0..needs.len()).collect();
    let mut left = avail;
    while !open.is_empty() {
        let wsum: usize = open.iter().map(|&i| weights[i].max(1)).sum();
        let fits: Vec<usize> = open
            .iter()
            .copied()
            .filter(|&i| needs[i] <= left * weights[i].max(1) / wsum)
            .collect();
        if fits.is_empty() {
            for &i in &open {
                out[i] = left * weights[i].max(1) / wsum;
            }
            break;
        }
        for i in fits {
            out[i] = needs[i];
            left -= needs[i];
            open.retain(|&j| j != i);
        }
    }
    out
}

/// What a question names, in the namespace's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub name: String,
}

/// Gather context for `question` in `namespace` (the session default when `None`), on
/// a read of its own. Nothing recognisable in the question, or no cluster: an empty vec.
pub async fn pregather(env: &ToolEnv, question: &str, namespace: Option<&str>) -> Vec<Gathered> {
    pregather_in(env, None, question, namespace).await
}

/// [`pregather`] for `turn`: the turn's later `describe` and `analyze` calls read from
/// what it read.
pub async fn pregather_in(
    env: &ToolEnv,
    turn: Option<TurnId>,
    question: &str,
    namespace: Option<&str>,
) -> Vec<Gathered> {
    let Ok(cluster) = env.cluster() else {
        return Vec::new();
    };
    // A namespace that breaks the naming rules gathers nothing; the model's own calls
    // then get the validation error.
    let Ok(ns) = cluster.checked_namespace(namespace) else {
        return Vec::new();
    };
    let tokens = tokens(question);
    if tokens.is_empty() {
        return Vec::new();
    }
    let Ok(view) = env.reads.view(cluster, turn.map(TurnId::get), Some(&ns)) else {
        return Vec::new();
    };
    let inv = fetch::snapshot_of(&view, Res::WORKLOADS).await;
    // Whatever is gathered next (describe, the analyzers) reads the rest of the
    // namespace from the same view.
    view.want(Res::ANALYZERS);
    let found = inv.as_ref().ok().and_then(|inv| {
        let target = find_target(&tokens, inv)?;
        let pods = failing_pods(inv, &target);
        Some((target, pods))
    });
    let Some((target, pods)) = found else {
        // No workload named, but a troubleshooting question ("what is broken here?"),
        // or names that could not be read: the namespace's findings are the cheapest
        // useful start (and say what could not be read, and why). A general question
        // ("how do I write a helm chart?") gets nothing.
        let unread = inv.as_ref().map_or(true, |inv| !inv.forbidden.is_empty());
        if is_troubleshooting(&tokens) || unread {
            let args = json!({"namespace": ns});
            return run_calls(env, &view, vec![("analyze", args, Part::Findings, 1)]).await;
        }
        return Vec::new();
    };
    let mut calls = plan(&ns, &target, &pods);
    // The session's own namespace goes without saying: each call is a few bytes shorter.
    if ns == cluster.default_namespace {
        for c in calls.iter_mut() {
            if let Some(m) = c.1.as_object_mut() {
                m.remove("namespace");
            }
        }
    }
    run_calls(env, &view, calls).await
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
type Call = (&'static str, Value, Part, usize);

fn plan(ns: &str, target: &Target, pods: &[Pod]) -> Vec<Call> {
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

/// Run read-tool calls concurrently through the turn's `view`, each with the whole
/// per-tool budget, then fit what they returned into [`CONTEXT_BUDGET`] with
/// [`compose`]: the cut is made once, after the repeats are gone.
async fn run_calls(env: &ToolEnv, view: &NamespaceView<'_>, calls: Vec<Call>) -> Vec<Gathered> {
    let runs = calls
        .into_iter()
        .map(|(tool, args, part, weight)| async move {
            let start = Instant::now();
            let res = run_one(env, view, tool, &args).await;
            let duration = start.elapsed();
            let g = match res {
                Ok(output) => Gathered {
                    tool: tool.to_string(),
                    args,
                    output,
                    duration,
                    error: None,
                },
                Err(ToolError::Model(m) | ToolError::Fatal(m)) => Gathered {
                    tool: tool.to_string(),
                    args,
                    output: m.clone(),
                    duration,
                    error: Some(m),
                },
            };
            (g, part, weight)
        });
    let got = join_all(runs).await;
    let budget = CONTEXT_BUDGET.within(chars_for(env.budget_tokens) * TOTAL_BUDGET_FACTOR);
    let mut items: Vec<Piece> = got
        .iter()
        .map(|(g, part, weight)| Piece {
            part: *part,
            weight: *weight,
            text: g.output.clone(),
        })
        .collect();
    compose(&mut items, &budget);
    got.into_iter()
        .zip(items)
        .map(|((mut g, _, _), piece)| {
            g.output = piece.text;
            g
        })
        .collect()
}

/// One planned call. `describe` and `analyze` of the turn's namespace read through its
/// view: the same functions the tools call (with a view of their own), so the output is
/// what the tool returns for these arguments. The rest are the tools themselves.
async fn run_one(
    env: &ToolEnv,
    view: &NamespaceView<'_>,
    tool: &str,
    args: &Value,
) -> Result<String, ToolError> {
    let arg = |k: &str| args.get(k).and_then(Value::as_str);
    let budget = chars_for(env.budget_tokens);
    match (tool, arg("kind"), arg("name")) {
        ("describe", Some(kind), Some(name)) => describe::describe_in(view, kind, name, budget)
            .await
            .map_err(|e| ToolError::Model(e.to_string())),
        ("analyze", _, _) => fetch::analyze_text(view, arg("target"), budget)
            .await
            .map_err(|e| ToolError::Model(e.to_string())),
        _ => crate::read::run(env, tool, args.clone()).await,
    }
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

    fn piece(part: Part, weight: usize, text: &str) -> Piece {
        Piece {
            part,
            weight,
            text: text.to_string(),
        }
    }

    const FINDINGS: &str = "Analyzer findings for deployment/backend:\n\
Deployment shop/backend\n  CRITICAL crash-loop-app-error  container \"app\" keeps exiting\n\
      │ 10:00:00.245 ERROR pq: password authentication failed\n\
      │ 10:00:00.246 FATAL: password authentication failed for user \"app\"\n\
      fix: fix the error its previous log shows\n";

    fn huge_log() -> String {
        let mut log = String::from("Logs of pod backend-1, container app (previous instance):\n");
        for i in 0..5000 {
            log.push_str(&format!(
                "10:00:{i:05} INFO GET /api/items/{i} status=200\n"
            ));
        }
        log.push_str("10:00:00.245 ERROR pq: password authentication failed\n");
        log.push_str("10:00:00.246 FATAL: password authentication failed for user \"app\"\n");
        log.push_str("10:00:00.247 INFO shutting down\n");
        log
    }

    #[test]
    fn a_huge_log_cannot_starve_the_findings() {
        let mut pieces = vec![
            piece(Part::Findings, 1, FINDINGS),
            piece(Part::Logs, 2, &huge_log()),
        ];
        compose(&mut pieces, &CONTEXT_BUDGET);
        assert_eq!(pieces[0].text, FINDINGS, "findings fit their share whole");
        // The log gets its share plus what the findings and the (absent) describe left.
        let log_max = CONTEXT_BUDGET.cluster_total() - FINDINGS.len();
        assert!(pieces[1].text.len() <= log_max, "{}", pieces[1].text.len());
        assert!(pieces[1].text.starts_with("Logs of pod backend-1"));
        assert!(pieces[1].text.contains("shutting down"), "the tail is kept");
    }

    #[test]
    fn lines_the_findings_quote_are_not_repeated() {
        let describe_pod = "Pod: backend-1\nContainers:\n  app:\n    Image: shop/backend:1.4.2\n    Env:\n      DB_USER: app\n";
        let describe_dep = "Deployment: backend\nPod template:\n  app:\n    Image: shop/backend:1.4.2\n    Env:\n      DB_USER: app\n";
        let log = "Logs of pod backend-1:\n10:00:00.001 INFO starting\n10:00:00.245 ERROR pq: password authentication failed\n10:00:00.246 FATAL: password authentication failed for user \"app\"\n10:00:00.247 INFO shutting down\n";
        let mut pieces = vec![
            piece(Part::Findings, 1, FINDINGS),
            piece(Part::Describe, 3, describe_pod),
            piece(Part::Describe, 2, describe_dep),
            piece(Part::Logs, 2, log),
        ];
        compose(&mut pieces, &CONTEXT_BUDGET);
        let all: String = pieces.iter().map(|p| p.text.clone() + "\n").collect();
        assert_eq!(
            all.matches("FATAL: password authentication").count(),
            1,
            "{all}"
        );
        assert_eq!(all.matches("ERROR pq: password").count(), 1, "{all}");
        assert_eq!(all.matches("Image: shop/backend:1.4.2").count(), 1, "{all}");
        // Short structural lines stay where they are.
        assert_eq!(all.matches("Env:").count(), 2, "{all}");
        assert!(pieces[3].text.contains("starting") && pieces[3].text.contains("shutting down"));
        assert!(pieces[3]
            .text
            .contains("[kai: left out 2 lines already quoted in the findings]"));
        assert!(
            pieces[2].text.contains("already shown above]"),
            "{}",
            pieces[2].text
        );
        assert!(
            pieces[1].text.contains("Image: shop/backend:1.4.2"),
            "the pod keeps its own"
        );
    }

    #[test]
    fn each_part_stays_within_its_share_and_unused_share_flows_on() {
        let big = |head: &str| {
            let mut s = format!("{head}\n");
            for i in 0..400 {
                s.push_str(&format!("  line {i} of something worth {i} bytes\n"));
            }
            s
        };
        // Everything oversized: each part ends within its own share.
        let mut pieces = vec![
            piece(Part::Findings, 1, &big("Analyzer findings")),
            piece(Part::Describe, 1, &big("Pod: a")),
            piece(Part::Logs, 1, &big("Logs of pod a:")),
        ];
        compose(&mut pieces, &CONTEXT_BUDGET);
        assert!(pieces[0].text.len() <= CONTEXT_BUDGET.findings);
        assert!(pieces[1].text.len() <= CONTEXT_BUDGET.describe);
        assert!(pieces[2].text.len() <= CONTEXT_BUDGET.logs);
        assert!(
            pieces[0].text.contains("call analyze"),
            "{}",
            pieces[0].text
        );
        // Short findings: the describe part gets their unused share.
        let short = "Analyzer findings: none\n";
        let mut pieces = vec![
            piece(Part::Findings, 1, short),
            piece(Part::Describe, 1, &big("Pod: a")),
        ];
        let left = compose(&mut pieces, &CONTEXT_BUDGET);
        assert!(pieces[1].text.len() > CONTEXT_BUDGET.describe);
        assert!(
            pieces[1].text.len() <= CONTEXT_BUDGET.describe + CONTEXT_BUDGET.findings - short.len()
        );
        // Nothing for logs here, so their whole share is left.
        assert!(left >= CONTEXT_BUDGET.logs, "{left}");
    }

    #[test]
    fn allot_shares_by_weight_and_passes_on_what_is_not_needed() {
        assert_eq!(
            allot(900, &[100, 5000, 5000], &[1, 1, 1]),
            vec![100, 400, 400]
        );
        assert_eq!(allot(900, &[5000, 5000], &[2, 1]), vec![600, 300]);
        assert_eq!(allot(900, &[100, 200], &[1, 1]), vec![100, 200]);
        assert_eq!(allot(0, &[100], &[1]), vec![0]);
        assert!(allot(10, &[], &[]).is_empty());
    }

    #[test]
    fn a_small_tool_budget_shrinks_the_split() {
        let b = CONTEXT_BUDGET.within(1000);
        assert!(b.cluster_total() <= 1000);
        assert!(b.findings > b.logs, "the proportions stay");
        assert_eq!(CONTEXT_BUDGET.within(1_000_000), CONTEXT_BUDGET);
    }

    #[test]
    fn routine_describe_lines_are_left_out_and_warnings_kept() {
        let pod = "Pod: backend-1\nNamespace: shop\nAge: 2s\nNode: kai-node-1\nIP: 10.0.0.1\n\
Events (newest first):\n  2s ago  Normal  Scheduled: Successfully assigned shop/backend-1\n\
  2s ago  Warning BackOff (x7): Back-off restarting failed container\n\
  2s ago  Normal  Created (x8): Created container app\n\
  2s ago  Normal  Pulling: Pulling image \"shop/backend:1.4.2\"\n";
        let mut pieces = vec![piece(Part::Describe, 1, pod)];
        compose(&mut pieces, &CONTEXT_BUDGET);
        let t = &pieces[0].text;
        for gone in [
            "Namespace: shop",
            "Age: 2s",
            "IP: ",
            "Scheduled",
            "Created container",
        ] {
            assert!(!t.contains(gone), "{gone}: {t}");
        }
        for kept in [
            "Pod: backend-1",
            "Node: kai-node-1",
            "Back-off restarting",
            "Pulling image",
        ] {
            assert!(t.contains(kept), "{kept}: {t}");
        }
        assert!(
            t.ends_with("[kai: left out 5 routine (ages, IPs, normal start events)]"),
            "{t}"
        );
    }
}
