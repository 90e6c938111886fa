//! The analyzers' only I/O: read the cluster into a [`Snapshot`] (kai-analyze's rules
//! then run on it, pure), and [`scan`]/[`diagnose`]/[`analyze`], the read and the rules
//! together.
//!
//! The lists come from a [`NamespaceView`], so a turn that describes and analyzes reads
//! each kind once. A 403 on one kind is recorded in `Snapshot::forbidden` (the rules turn
//! it into a `forbidden` finding) instead of failing the whole read; a kind this server
//! does not serve is left out with a note in `Snapshot::notes` (CronJobs are read at
//! batch/v1beta1 on servers before 1.21, with a note saying so); anything else (the
//! server unreachable) fails the read, except for the RBAC, policy, autoscaling and
//! ingress-class kinds, whose failure is a note saying which checks were skipped.

use std::collections::{BTreeMap, HashSet};

use futures::stream::{self, StreamExt};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, LogParams};
use kube::Client;

use kai_analyze::finding::ObjectRef;
use kai_analyze::snapshot::{name_of, ns_of, Forbidden, Snapshot, TlsCert};
use kai_analyze::{diagnose_snapshot, scan_snapshot, Finding, TargetError};

use super::view::{Listed, Lists, NamespaceView, ReadError, Res};
use super::{Cluster, ClusterError};

/// Errors from the analyzers run against the cluster. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{0}; check that the cluster is reachable and the kube context is the right one (kubectl cluster-info)")]
    Read(ReadError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl AnalyzeError {
    /// The credentials were refused or not allowed.
    pub fn is_auth(&self) -> bool {
        match self {
            AnalyzeError::Read(e) => e.is_auth(),
            AnalyzeError::Cluster(e) => {
                matches!(
                    e,
                    ClusterError::Forbidden { .. } | ClusterError::Unauthorized(_)
                )
            }
            AnalyzeError::Target(_) => false,
        }
    }
}

const LOG_TAIL_LINES: i64 = 50;
const LOG_MAX_BYTES: i64 = 16 * 1024;
const MAX_LOG_FETCHES: usize = 40;
const LOG_CONCURRENCY: usize = 8;
/// A termination this recent still counts as failing now (as in the container rules).
const RECENT_SECS: i64 = 600;

/// Findings, and what the read could not do as asked (for the reader, next to them).
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

/// Read everything the rules look at through `view`, and the log tails the findings
/// quote.
pub async fn snapshot(view: &NamespaceView<'_>) -> Result<Snapshot, AnalyzeError> {
    read_for_rules(view).await;
    let whole_events = view.is_wanted(Res::Events);
    let snap = build(view.lists(), whole_events, view.notes(), view.namespace())?;
    Ok(with_logs(view.cluster(), snap).await)
}

/// [`snapshot`] for a view nobody else reads: its lists move into the snapshot instead
/// of being copied (an all-namespaces scan of a big cluster holds one copy, not two).
async fn snapshot_owned(view: NamespaceView<'_>) -> Result<Snapshot, AnalyzeError> {
    read_for_rules(&view).await;
    let cluster = view.cluster();
    let ns = view.namespace().map(str::to_string);
    let (lists, notes, wanted) = view.into_lists();
    let snap = build(lists, wanted.contains(&Res::Events), notes, ns.as_deref())?;
    Ok(with_logs(cluster, snap).await)
}

/// A snapshot of only `kinds` (no logs): what pre-gathering's target search reads, from
/// the same view the rest of the turn reads.
pub async fn snapshot_of(
    view: &NamespaceView<'_>,
    kinds: &[Res],
) -> Result<Snapshot, AnalyzeError> {
    view.load(kinds).await;
    build(view.lists(), true, view.notes(), view.namespace())
}

/// Every kind the rules read, concurrently.
async fn read_for_rules(view: &NamespaceView<'_>) {
    let kinds: Vec<Res> = Res::ANALYZERS
        .iter()
        .copied()
        .filter(|r| *r != Res::Events)
        .collect();
    tokio::join!(view.load(&kinds), view.load_rule_events());
}

/// The snapshot of what was read. A kind that was not read is empty; a forbidden one is
/// recorded; one the server does not serve is a note; any other failure fails the read.
fn build(
    mut lists: Lists,
    whole_events: bool,
    notes: Vec<String>,
    ns: Option<&str>,
) -> Result<Snapshot, AnalyzeError> {
    let events = lists.take_rule_events(whole_events);
    let mut p = Problems {
        forbidden: Vec::new(),
        notes,
    };
    let mut snap = Snapshot {
        now: Some(jiff::Timestamp::now()),
        namespace: ns.map(str::to_string),
        pods: p.take(lists.pods)?,
        deployments: p.take(lists.deployments)?,
        replicasets: p.take(lists.replicasets)?,
        statefulsets: p.take(lists.statefulsets)?,
        daemonsets: p.take(lists.daemonsets)?,
        jobs: p.take(lists.jobs)?,
        cronjobs: p.take(lists.cronjobs)?,
        services: p.take(lists.services)?,
        endpoints: p.take(lists.endpoints)?,
        ingresses: p.take(lists.ingresses)?,
        pvcs: p.take(lists.pvcs)?,
        events: p.take(events)?,
        configmaps: p.take(lists.configmaps)?,
        secrets: p.take(lists.secrets)?,
        nodes: p.take(lists.nodes)?,
        storageclasses: p.take(lists.storageclasses)?,
        service_accounts: p.take_extra(lists.service_accounts),
        roles: p.take_extra(lists.roles),
        role_bindings: p.take_extra(lists.role_bindings),
        cluster_roles: p.take_extra(lists.cluster_roles),
        cluster_role_bindings: p.take_extra(lists.cluster_role_bindings),
        network_policies: p.take_extra(lists.network_policies),
        hpas: p.take_extra(lists.hpas),
        pdbs: p.take_extra(lists.pdbs),
        resource_quotas: p.take_extra(lists.resource_quotas),
        limit_ranges: p.take_extra(lists.limit_ranges),
        ingress_classes: p.take_extra(lists.ingress_classes),
        ..Default::default()
    };
    snap.forbidden = p.forbidden;
    snap.notes = p.notes;
    Ok(snap)
}

/// What the lists of a snapshot could not be.
struct Problems {
    forbidden: Vec<Forbidden>,
    notes: Vec<String>,
}

impl Problems {
    fn take<T>(&mut self, listed: Option<Listed<T>>) -> Result<Vec<T>, AnalyzeError> {
        match listed {
            None => Ok(Vec::new()),
            Some(Ok(v)) => Ok(v),
            Some(Err(ReadError::Forbidden {
                verb,
                resource,
                namespace,
                ..
            })) => {
                // Namespaced credentials routinely cannot read cluster-scoped kinds, so
                // the rules make no finding of it; the reader still learns what the
                // findings were made without.
                if let Some(skipped) = cluster_scoped_checks(&resource) {
                    let text = format!("could not {verb} {resource} (forbidden): {skipped}");
                    if !self.notes.contains(&text) {
                        self.notes.push(text);
                    }
                }
                self.forbidden.push(Forbidden {
                    verb,
                    resource,
                    namespace,
                });
                Ok(Vec::new())
            }
            Some(Err(e @ ReadError::NotServed { .. })) => {
                let text = e.to_string();
                if !self.notes.contains(&text) {
                    self.notes.push(text);
                }
                Ok(Vec::new())
            }
            Some(Err(e)) => Err(AnalyzeError::Read(e)),
        }
    }

    /// [`Problems::take`] for the kinds of the RBAC, policy, autoscaling and ingress-class
    /// rules: any other failure is a note saying which checks it left out, not a failed
    /// read (the findings on pods and workloads stand without them).
    fn take_extra<T>(&mut self, listed: Option<Listed<T>>) -> Vec<T> {
        match listed {
            Some(Err(e @ ReadError::Failed { .. })) => {
                let text = format!("{e}; the checks that read it were skipped");
                if !self.notes.contains(&text) {
                    self.notes.push(text);
                }
                Vec::new()
            }
            other => self.take(other).unwrap_or_default(),
        }
    }
}

/// The checks a forbidden cluster-scoped kind leaves out, for the note; `None` for the
/// kinds whose forbidden list is a finding of its own.
fn cluster_scoped_checks(resource: &str) -> Option<&'static str> {
    match resource {
        "nodes" => Some("node health and scheduling checks were skipped"),
        "storageclasses" => Some("storage class checks were skipped"),
        _ => None,
    }
}

async fn with_logs(cluster: &Cluster, mut snap: Snapshot) -> Snapshot {
    let ((logs, forbidden, notes), current, tls_certs) = tokio::join!(
        fetch_logs(cluster, &snap),
        fetch_current_logs(&cluster.client, &snap),
        read_tls_certs(&cluster.client, &snap),
    );
    snap.previous_logs = logs;
    snap.current_logs = current;
    snap.forbidden.extend(forbidden);
    snap.notes.extend(notes);
    snap.tls_certs = tls_certs;
    snap
}

/// Findings for `target` in the view's namespace (all of them when `None`; an
/// all-namespaces view scans), with the notes of the read.
pub async fn analyze(
    view: &NamespaceView<'_>,
    target: Option<&str>,
) -> Result<Analysis, AnalyzeError> {
    let snap = snapshot(view).await?;
    let findings = match view.namespace() {
        None => scan_snapshot(&snap),
        Some(_) => diagnose_snapshot(&snap, target)?,
    };
    Ok(Analysis {
        findings,
        notes: snap.notes,
    })
}

/// The `analyze` tool's answer: [`analyze`] rendered by [`analysis_text`].
pub async fn analyze_text(
    view: &NamespaceView<'_>,
    target: Option<&str>,
    budget_chars: usize,
) -> Result<String, AnalyzeError> {
    let a = analyze(view, target).await?;
    Ok(analysis_text(&a, target, view.namespace(), budget_chars))
}

/// `a` (of `target` in `ns`; `None`: all namespaces) rendered as `kai diagnose` shows
/// it, with the read's notes, scrubbed and cut to `budget_chars`.
pub fn analysis_text(
    a: &Analysis,
    target: Option<&str>,
    ns: Option<&str>,
    budget_chars: usize,
) -> String {
    let scope = match (target, ns) {
        (_, None) => "all namespaces".to_string(),
        (Some(t), Some(ns)) => format!("{t} in namespace {ns}"),
        (None, Some(ns)) => format!("namespace {ns}"),
    };
    let mut text = format!(
        "Analyzer findings for {scope} ({} found, most likely cause first):\n",
        a.findings.len()
    );
    for n in &a.notes {
        text.push_str(&format!("Note: {n}\n"));
    }
    // Rendered for a terminal, as `kai diagnose` shows it.
    text.push_str(&kai_analyze::render_text(
        &a.findings,
        false,
        &kai_text::egress::for_terminal,
    ));
    kai_text::budget::fit_text(
        &kai_text::redact::scrub(&text),
        budget_chars,
        "pass a narrower target",
    )
}

/// Scan a namespace (`None`: all namespaces) for problems, with what the read could not
/// do as asked (the front end shows the notes next to the findings).
pub async fn scan_analysis(
    cluster: &Cluster,
    namespace: Option<&str>,
) -> Result<Analysis, AnalyzeError> {
    let snap = snapshot_owned(NamespaceView::new(cluster, namespace)?).await?;
    Ok(Analysis {
        findings: scan_snapshot(&snap),
        notes: snap.notes,
    })
}

/// Diagnose `target` in `namespace` (or the whole namespace when `target` is `None`),
/// with the notes of the read.
pub async fn diagnose_analysis(
    cluster: &Cluster,
    namespace: &str,
    target: Option<&str>,
) -> Result<Analysis, AnalyzeError> {
    let snap = snapshot_owned(NamespaceView::new(cluster, Some(namespace))?).await?;
    Ok(Analysis {
        findings: diagnose_snapshot(&snap, target)?,
        notes: snap.notes,
    })
}

/// [`scan_analysis`]'s findings; the notes are logged as warnings (stderr).
pub async fn scan(
    cluster: &Cluster,
    namespace: Option<&str>,
) -> Result<Vec<Finding>, AnalyzeError> {
    scan_analysis(cluster, namespace).await.map(warn_notes)
}

/// [`diagnose_analysis`]'s findings; the notes are logged as warnings (stderr).
pub async fn diagnose(
    cluster: &Cluster,
    namespace: &str,
    target: Option<&str>,
) -> Result<Vec<Finding>, AnalyzeError> {
    diagnose_analysis(cluster, namespace, target)
        .await
        .map(warn_notes)
}

fn warn_notes(a: Analysis) -> Vec<Finding> {
    for n in &a.notes {
        tracing::warn!("{n}");
    }
    a.findings
}

/// A log tail to read: (namespace, pod, container, previous instance?).
type LogWanted = (String, String, String, bool);

/// Log tails of terminated container instances: `previous=true` for restarted
/// containers, the current log for containers terminated now (Job pods). A log the
/// kubelet kept none of is not an error (the finding then says no log was available);
/// a forbidden one is recorded as such, and any other failure becomes a note.
async fn fetch_logs(
    cluster: &Cluster,
    snap: &Snapshot,
) -> (
    BTreeMap<(String, String, String), String>,
    Vec<Forbidden>,
    Vec<String>,
) {
    let wanted = logs_wanted(snap);
    let results: Vec<_> = stream::iter(wanted)
        .map(|(ns, pod, container, previous)| async move {
            let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
            let lp = LogParams {
                container: Some(container.clone()),
                previous,
                tail_lines: Some(LOG_TAIL_LINES),
                limit_bytes: Some(LOG_MAX_BYTES),
                ..Default::default()
            };
            let res = api.logs(&pod, &lp).await;
            (ns, pod, container, res)
        })
        .buffer_unordered(LOG_CONCURRENCY)
        .collect()
        .await;
    let mut logs = BTreeMap::new();
    let mut forbidden: Vec<Forbidden> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for (ns, pod, container, res) in results {
        match res {
            // Findings quote log lines on stdout, in `-o json` and to the model:
            // credentials go before any rule sees the text. Control sequences stay
            // (each egress makes them harmless its own way: visible on a terminal,
            // escaped in JSON, removed for the model), so the user can see them.
            Ok(text) => {
                logs.insert((ns, pod, container), kai_text::redact::scrub(&text));
            }
            Err(kube::Error::Api(s)) if s.code == 403 => {
                let f = Forbidden {
                    verb: "get".into(),
                    resource: "pods/log".into(),
                    namespace: Some(ns),
                };
                if !forbidden.contains(&f) {
                    forbidden.push(f);
                }
            }
            // No log kept (no previous instance, a container that never started).
            Err(kube::Error::Api(s)) if s.code == 400 || s.code == 404 => {
                tracing::debug!(%ns, %pod, %container, error = %s.message, "no log tail");
            }
            Err(e) => {
                let what = format!("the log of container {container} of pod {ns}/{pod}");
                let note =
                    ReadError::from_kube(e, "read", "pods/log", Some(&ns), &what).to_string();
                notes.push(note);
            }
        }
    }
    (logs, forbidden, notes)
}

/// Which log tails to read, at most [`MAX_LOG_FETCHES`]. Findings group pods by top-level
/// owner, so one log per (namespace, owner, container) gives every finding its evidence;
/// those come first (failing-now containers before ones that merely restarted once), and
/// further pods of the same owner only fill the remaining budget. The first pod of each
/// owner in listing order is the one picked, as that is the pod whose issue a finding is
/// built from.
fn logs_wanted(snap: &Snapshot) -> Vec<LogWanted> {
    // (duplicate of an already wanted owner/container?, not failing now?, the fetch)
    let mut wanted: Vec<(bool, bool, LogWanted)> = Vec::new();
    let mut seen: HashSet<(String, ObjectRef, String)> = HashSet::new();
    for p in &snap.pods {
        let Some(status) = p.status.as_ref() else {
            continue;
        };
        let all = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        let mut owner: Option<ObjectRef> = None;
        for cs in all {
            let now_failed = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0);
            let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            if !(now_failed || last.is_some()) {
                continue;
            }
            // Failing now: terminated, waiting to restart, or restarted recently. A
            // container that restarted once, days ago, is no finding's evidence.
            let active = now_failed
                || cs.state.as_ref().is_some_and(|s| s.waiting.is_some())
                || last.is_some_and(|t| {
                    snap.age_secs(t.finished_at.as_ref())
                        .is_none_or(|a| a < RECENT_SECS)
                });
            let ns = ns_of(&p.metadata).to_string();
            let owner = owner.get_or_insert_with(|| snap.top_owner(p)).clone();
            let first = seen.insert((ns.clone(), owner, cs.name.clone()));
            wanted.push((
                !first,
                !active,
                (
                    ns,
                    name_of(&p.metadata).to_string(),
                    cs.name.clone(),
                    !now_failed,
                ),
            ));
        }
    }
    // Stable: listing order within each tier.
    wanted.sort_by_key(|(dup, idle, _)| (*dup, *idle));
    wanted
        .into_iter()
        .take(MAX_LOG_FETCHES)
        .map(|(_, _, w)| w)
        .collect()
}

// ---------------------------------------------------------------------------------
// The certificates of TLS Secrets and the current log tails of running containers, read
// after the view's lists (the RBAC, policy, autoscaling and ingress-class kinds are
// the view's kinds like the others).

/// TLS Secrets to parse, at most this many: found among the listed Secrets by their
/// `tls.crt` key and read one by one (GET), so Secrets are listed once per read.
const MAX_TLS_SECRETS: usize = 20;

async fn read_tls_certs(client: &Client, snap: &Snapshot) -> Vec<TlsCert> {
    let wanted: Vec<(String, String)> = snap
        .secrets
        .iter()
        .filter(|s| s.keys.contains("tls.crt"))
        .take(MAX_TLS_SECRETS)
        .map(|s| (s.namespace.clone(), s.name.clone()))
        .collect();
    stream::iter(wanted)
        .map(|(ns, name)| async move {
            let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
            match api.get_opt(&name).await {
                Ok(Some(s)) => tls_cert_of(&s),
                _ => None,
            }
        })
        .buffer_unordered(LOG_CONCURRENCY)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// The validity period and subject of a TLS Secret's (first) certificate; `None` when it
/// has none or it does not parse. Nothing of the Secret is kept but these.
fn tls_cert_of(s: &Secret) -> Option<TlsCert> {
    let data = s.data.as_ref()?.get("tls.crt")?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&data.0).ok()?;
    let cert = pem.parse_x509().ok()?;
    let validity = cert.validity();
    let ts = |t: &x509_parser::time::ASN1Time| jiff::Timestamp::from_second(t.timestamp()).ok();
    Some(TlsCert {
        namespace: ns_of(&s.metadata).to_string(),
        name: name_of(&s.metadata).to_string(),
        subject: cert.subject().to_string(),
        not_before: ts(&validity.not_before)?,
        not_after: ts(&validity.not_after)?,
    })
}

/// Current log tails of running containers that a rule may read (API 403s, application
/// errors): one pod per (namespace, owner, container), at most [`MAX_CURRENT_LOGS`], and
/// only for a namespaced read: an all-namespaces scan stays a handful of requests.
async fn fetch_current_logs(
    client: &Client,
    snap: &Snapshot,
) -> BTreeMap<(String, String, String), String> {
    if snap.namespace.is_none() {
        return BTreeMap::new();
    }
    let wanted = current_logs_wanted(snap);
    stream::iter(wanted)
        .map(|(ns, pod, container)| async move {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let lp = LogParams {
                container: Some(container.clone()),
                tail_lines: Some(LOG_TAIL_LINES * 4),
                limit_bytes: Some(LOG_MAX_BYTES * 2),
                ..Default::default()
            };
            match api.logs(&pod, &lp).await {
                Ok(text) => Some(((ns, pod, container), kai_text::redact::scrub(&text))),
                Err(e) => {
                    tracing::debug!(%ns, %pod, %container, error = %e, "no current log tail");
                    None
                }
            }
        })
        .buffer_unordered(LOG_CONCURRENCY)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

const MAX_CURRENT_LOGS: usize = 24;

fn current_logs_wanted(snap: &Snapshot) -> Vec<(String, String, String)> {
    let mut seen: HashSet<(String, ObjectRef, String)> = HashSet::new();
    let mut out = Vec::new();
    for p in &snap.pods {
        let Some(status) = p.status.as_ref() else {
            continue;
        };
        let mut owner: Option<ObjectRef> = None;
        for cs in status.container_statuses.iter().flatten() {
            if cs.state.as_ref().is_none_or(|s| s.running.is_none()) {
                continue;
            }
            let ns = ns_of(&p.metadata).to_string();
            let owner = owner.get_or_insert_with(|| snap.top_owner(p)).clone();
            if seen.insert((ns.clone(), owner, cs.name.clone())) {
                out.push((ns, name_of(&p.metadata).to_string(), cs.name.clone()));
            }
        }
        if out.len() >= MAX_CURRENT_LOGS {
            break;
        }
    }
    out.truncate(MAX_CURRENT_LOGS);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use kai_analyze::rules::testutil::*;
    use serde_json::json;

    fn crashing(name: &str, app: &str, last_finished_secs_ago: i64) -> Pod {
        pod(
            name,
            app,
            json!({"containers": [container("app", json!({}))]}),
            pod_status(
                "Running",
                vec![waiting(
                    "app",
                    "CrashLoopBackOff",
                    "",
                    5,
                    terminated("Error", 1, last_finished_secs_ago),
                )],
            ),
        )
    }

    fn pods_of(w: &[LogWanted]) -> Vec<&str> {
        w.iter().map(|(_, pod, ..)| pod.as_str()).collect()
    }

    #[test]
    fn every_crashing_owner_gets_a_log_before_any_owner_gets_two() {
        let mut s = snap();
        add_deployment(&mut s, "big", 60, json!({}));
        add_deployment(&mut s, "small", 1, json!({}));
        for i in 0..MAX_LOG_FETCHES + 10 {
            s.pods.push(crashing(&format!("big-{i}"), "big", 10));
        }
        s.pods.push(crashing("small-0", "small", 10));
        let w = logs_wanted(&s);
        assert_eq!(w.len(), MAX_LOG_FETCHES);
        assert_eq!(pods_of(&w)[..3], ["big-0", "small-0", "big-1"]);
        // Previous instance: the container is waiting to restart, not terminated now.
        assert!(w
            .iter()
            .all(|(ns, _, c, previous)| ns == NS && c == "app" && *previous));
    }

    #[test]
    fn containers_failing_now_come_before_an_old_restart() {
        let mut s = snap();
        add_deployment(&mut s, "calm", 1, json!({}));
        add_deployment(&mut s, "crash", 1, json!({}));
        // Restarted once, a day ago, running fine since.
        s.pods.push(pod(
            "calm-0",
            "calm",
            json!({"containers": [container("app", json!({}))]}),
            json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true,
                "restartCount": 1, "image": "x", "imageID": "",
                "state": {"running": {"startedAt": ago(86_000)}},
                "lastState": terminated("Error", 1, 86_400)}]}),
        ));
        s.pods.push(crashing("crash-0", "crash", 10));
        // Never restarted, running: no log wanted.
        s.pods.push(pod(
            "fine-0",
            "fine",
            json!({"containers": [container("app", json!({}))]}),
            pod_status("Running", vec![running("app", true, 0)]),
        ));
        assert_eq!(pods_of(&logs_wanted(&s)), ["crash-0", "calm-0"]);
    }

    fn forbidden(resource: &str, ns: Option<&str>) -> ReadError {
        ReadError::Forbidden {
            verb: "list".into(),
            resource: resource.into(),
            namespace: ns.map(str::to_string),
            what: resource.into(),
            message: format!("{resource} is forbidden"),
        }
    }

    /// What a read could not do reaches the snapshot as what it is: a forbidden list is
    /// recorded (the rules make it a finding; for cluster-scoped kinds a note says which
    /// checks it left out), a kind the server does not serve is a note, and any other
    /// failure fails the read. None of them is an empty list that looks like "nothing
    /// there".
    #[test]
    fn failed_lists_are_recorded_noted_or_fail_the_read() {
        let not_served = ReadError::NotServed {
            api: "policy/v1 PodDisruptionBudget".into(),
            server: "v1.20".into(),
            instead: "kai leaves poddisruptionbudgets out of what it reads".into(),
        };
        let lists = Lists {
            pods: Some(Ok(vec![crashing("web-1", "web", 10)])),
            secrets: Some(Err(forbidden("secrets", Some(NS)))),
            nodes: Some(Err(forbidden("nodes", None))),
            cronjobs: Some(Err(not_served.clone())),
            ..Default::default()
        };
        let snap = build(lists, true, Vec::new(), Some(NS)).unwrap();
        assert_eq!(snap.pods.len(), 1);
        assert!(snap.is_forbidden("secrets") && snap.is_forbidden("nodes"));
        // In the order of the snapshot's fields (cronjobs before nodes).
        assert_eq!(
            snap.notes,
            [
                not_served.to_string(),
                "could not list nodes (forbidden): node health and scheduling checks were skipped"
                    .to_string(),
            ]
        );
        assert!(snap.notes[0]
            .starts_with("this cluster (v1.20) does not serve policy/v1 PodDisruptionBudget"));
        let findings = diagnose_snapshot(&snap, None).unwrap();
        assert!(
            findings
                .iter()
                .any(|f| f.summary.contains("cannot list secrets")),
            "{findings:?}"
        );

        let unreachable = ReadError::Failed {
            verb: "list".into(),
            what: "services".into(),
            message: "connection refused".into(),
            status: None,
        };
        let lists = Lists {
            services: Some(Err(unreachable)),
            ..Default::default()
        };
        let e = build(lists, true, Vec::new(), Some(NS)).unwrap_err();
        assert!(matches!(e, AnalyzeError::Read(_)), "{e}");
        assert!(
            e.to_string()
                .contains("cannot reach the Kubernetes API server"),
            "{e}"
        );
    }
}
