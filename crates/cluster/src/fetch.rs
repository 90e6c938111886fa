//! The analyzers' only I/O: read the cluster into a [`Snapshot`] (kai-analyze's rules
//! then run on it, pure), and [`scan`]/[`diagnose`]/[`analyze`], the read and the rules
//! together.
//!
//! The lists come from a [`NamespaceView`], so a turn that describes and analyzes reads
//! each kind once. A 403 on one kind is recorded in `Snapshot::forbidden` (the rules turn
//! it into a `forbidden` finding) instead of failing the whole read; a kind this server
//! does not serve is left out with a note in `Snapshot::notes` (CronJobs are read at
//! batch/v1beta1 on servers before 1.21, with a note saying so); anything else (the
//! server unreachable) fails the read.

use std::collections::{BTreeMap, HashSet};

use futures::stream::{self, StreamExt};
use std::fmt::Debug;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, Pod, ResourceQuota, Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::{IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, LogParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

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
    let ((logs, forbidden, notes), current, extras, tls_certs) = tokio::join!(
        fetch_logs(cluster, &snap),
        fetch_current_logs(&cluster.client, &snap),
        read_extras(&cluster.client, snap.namespace.as_deref()),
        read_tls_certs(&cluster.client, &snap),
    );
    snap.previous_logs = logs;
    snap.current_logs = current;
    snap.forbidden.extend(forbidden);
    snap.notes.extend(notes);
    match extras {
        Ok(x) => {
            x.apply(&mut snap);
            snap.tls_certs = tls_certs;
        }
        Err(e) => snap.notes.push(format!(
            "could not read RBAC, policy, autoscaling and certificate objects ({e}); their checks were skipped"
        )),
    }
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

/// The `analyze` tool's answer: [`analyze`] rendered as `kai diagnose` shows it, with
/// the read's notes, scrubbed and cut to `budget_chars`.
pub async fn analyze_text(
    view: &NamespaceView<'_>,
    target: Option<&str>,
    budget_chars: usize,
) -> Result<String, AnalyzeError> {
    let a = analyze(view, target).await?;
    let scope = match (target, view.namespace()) {
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
    Ok(kai_text::budget::fit_text(
        &kai_text::redact::scrub(&text),
        budget_chars,
        "pass a narrower target",
    ))
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
// The kinds of the RBAC, admission, NetworkPolicy, autoscaling, disruption-budget and
// certificate rules, and the current log tails of running containers. Read next to the
// view's lists (additively, each kind once per snapshot); moving them into
// `NamespaceView` as `Res` variants is the natural next step.

type ExtraListed<T> = Result<(Vec<T>, Option<Forbidden>), kube::Error>;

const PAGE: u32 = 500;
const MAX_PAGES: usize = 200;

/// Annotation holding a full copy of the applied manifest: as large as the object itself
/// and read by no rule.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drop the metadata no rule reads. `managedFields` alone was about half of the heap on a
/// 2,000-pod cluster, so it goes page by page, before the next page is read.
fn trim<K: Resource>(mut obj: K) -> K {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
    obj
}

/// List every object of a kind (matching `fields`, a field selector, if given), page by
/// page, turning each object into a `T` as its page arrives so that only what the rules
/// need outlives the page.
async fn list_extra<K, T>(
    api: Api<K>,
    resource: &str,
    namespace: Option<&str>,
    fields: Option<&str>,
    mut keep: impl FnMut(K) -> T,
) -> ExtraListed<T>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        match api.list(&lp).await {
            Ok(list) => {
                if out.is_empty() {
                    // The first page says how many follow: one allocation instead of a
                    // doubling series whose last step holds two copies of the list.
                    let remaining = list
                        .metadata
                        .remaining_item_count
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(0)
                        .min(PAGE as usize * MAX_PAGES);
                    out.reserve_exact(list.items.len() + remaining);
                }
                out.extend(list.items.into_iter().map(trim).map(&mut keep));
                match list.metadata.continue_ {
                    Some(t) if !t.is_empty() => token = Some(t),
                    _ => break,
                }
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Ok((
                    Vec::new(),
                    Some(Forbidden {
                        verb: "list".into(),
                        resource: resource.into(),
                        namespace: namespace.map(str::to_string),
                    }),
                ));
            }
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok((Vec::new(), None)),
            Err(source) => return Err(source),
        }
    }
    Ok((out, None))
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The kinds the RBAC, policy, autoscaling, network and certificate rules read, listed
/// together (after the core kinds, while the log tails are read).
struct Extras {
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    network_policies: Vec<NetworkPolicy>,
    hpas: Vec<HorizontalPodAutoscaler>,
    pdbs: Vec<PodDisruptionBudget>,
    resource_quotas: Vec<ResourceQuota>,
    limit_ranges: Vec<LimitRange>,
    ingress_classes: Vec<IngressClass>,
    tls_certs: Vec<TlsCert>,
    forbidden: Vec<Forbidden>,
}

impl Extras {
    fn apply(self, snap: &mut Snapshot) {
        snap.service_accounts = self.service_accounts;
        snap.roles = self.roles;
        snap.role_bindings = self.role_bindings;
        snap.cluster_roles = self.cluster_roles;
        snap.cluster_role_bindings = self.cluster_role_bindings;
        snap.network_policies = self.network_policies;
        snap.hpas = self.hpas;
        snap.pdbs = self.pdbs;
        snap.resource_quotas = self.resource_quotas;
        snap.limit_ranges = self.limit_ranges;
        snap.ingress_classes = self.ingress_classes;
        snap.tls_certs = self.tls_certs;
        snap.forbidden.extend(self.forbidden);
    }
}

/// List a kind in its current version, or, when the server does not serve that version
/// (a 1.20 server has no policy/v1 PodDisruptionBudget, batch/v1 CronJob or autoscaling/v2
/// HorizontalPodAutoscaler), in the older version `old` whose objects read the same,
/// converted field by field.
async fn list_compat<K>(
    client: &Client,
    ns: Option<&str>,
    resource: &str,
    old: (&str, &str, &str),
) -> ExtraListed<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    <K as Resource>::DynamicType: Default,
{
    // Is the current version served? (An empty list of it is an answer; only a 404
    // sends the read to the older version.)
    let probe: Api<K> = api::<K>(client, ns);
    match probe.list(&ListParams::default().limit(1)).await {
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        _ => return list_extra(api::<K>(client, ns), resource, ns, None, |o| o).await,
    }
    let (group, version, kind) = old;
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, resource);
    let dynamic: Api<kube::api::DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let (objs, forbidden) = list_extra(dynamic, resource, ns, None, |o| o).await?;
    let items = objs
        .into_iter()
        .filter_map(|o| {
            let mut v = serde_json::to_value(&o).ok()?;
            // The typed object's apiVersion, so that it deserializes as the new version.
            if let Some(m) = v.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            serde_json::from_value::<K>(v).ok()
        })
        .collect();
    Ok((items, forbidden))
}

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

async fn read_extras(client: &Client, ns: Option<&str>) -> Result<Extras, kube::Error> {
    let (
        service_accounts,
        roles,
        role_bindings,
        cluster_roles,
        cluster_role_bindings,
        network_policies,
        hpas,
        pdbs,
        resource_quotas,
        limit_ranges,
        ingress_classes,
    ) = tokio::join!(
        list_extra(
            api::<ServiceAccount>(client, ns),
            "serviceaccounts",
            ns,
            None,
            |o| o
        ),
        list_extra(api::<Role>(client, ns), "roles", ns, None, |o| o),
        list_extra(
            api::<RoleBinding>(client, ns),
            "rolebindings",
            ns,
            None,
            |o| o
        ),
        list_extra(
            Api::<ClusterRole>::all(client.clone()),
            "clusterroles",
            None,
            None,
            |o| o
        ),
        list_extra(
            Api::<ClusterRoleBinding>::all(client.clone()),
            "clusterrolebindings",
            None,
            None,
            |o| o
        ),
        list_extra(
            api::<NetworkPolicy>(client, ns),
            "networkpolicies",
            ns,
            None,
            |o| o
        ),
        list_compat::<HorizontalPodAutoscaler>(
            client,
            ns,
            "horizontalpodautoscalers",
            ("autoscaling", "v2beta2", "HorizontalPodAutoscaler")
        ),
        list_compat::<PodDisruptionBudget>(
            client,
            ns,
            "poddisruptionbudgets",
            ("policy", "v1beta1", "PodDisruptionBudget")
        ),
        list_extra(
            api::<ResourceQuota>(client, ns),
            "resourcequotas",
            ns,
            None,
            |o| o
        ),
        list_extra(
            api::<LimitRange>(client, ns),
            "limitranges",
            ns,
            None,
            |o| o
        ),
        list_extra(
            Api::<IngressClass>::all(client.clone()),
            "ingressclasses",
            None,
            None,
            |o| o
        ),
    );
    let mut forbidden = Vec::new();
    macro_rules! take {
        ($r:expr) => {{
            let (v, f) = $r?;
            forbidden.extend(f);
            v
        }};
    }
    Ok(Extras {
        service_accounts: take!(service_accounts),
        roles: take!(roles),
        role_bindings: take!(role_bindings),
        cluster_roles: take!(cluster_roles),
        cluster_role_bindings: take!(cluster_role_bindings),
        network_policies: take!(network_policies),
        hpas: take!(hpas),
        pdbs: take!(pdbs),
        resource_quotas: take!(resource_quotas),
        limit_ranges: take!(limit_ranges),
        ingress_classes: take!(ingress_classes),
        tls_certs: Vec::new(),
        forbidden,
    })
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
