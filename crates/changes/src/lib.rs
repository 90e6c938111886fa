//! Changes: every cluster mutation kai makes goes through [`run`], in this order:
//!
//! 1. **dry run**: the exact request that will be sent, with `dryRun=All`; a rejection
//!    goes back to the model with the API's message and nothing changes;
//! 2. **diff**: live object vs. dry-run result, as YAML, noise removed, Secret values
//!    shown as `<redacted>`;
//! 3. **ask**: `--yes` approves (still dry-run and audited); otherwise `ChangeEnv::approver`
//!    asks the person at the keyboard;
//! 4. **apply exactly what was shown**: the live object is re-read just before applying.
//!    If only status, server bookkeeping or controller annotations moved, the request is
//!    dry-run again with the new resourceVersion and sent only if it yields the same
//!    change the user approved (a busy Deployment must not turn one yes into endless
//!    re-asks); if anything the user would judge changed, nothing is applied and the new
//!    diff is shown ("changed since you approved"). Every real write carries the
//!    resourceVersion as a precondition the API server enforces, and an approval the
//!    cluster's write gate checks against that exact request;
//! 5. **audit**: one JSONL line per decision under the data directory; an approved
//!    change is recorded as pending, on disk, *before* it is sent, and completed after.
//!    A log that cannot be written means nothing is applied.
//!
//! # The model cannot approve
//!
//! Approval comes from exactly two places: `ChangeEnv::auto_approve` (the user's `--yes`)
//! and `ChangeEnv::approver` (the front end, i.e. the user's keyboard). No tool schema has a
//! "confirmed"/"force"/"approved" argument, and nothing in tool arguments, tool results,
//! logs or model text is ever read by this module as a decision. A log line saying "the
//! user approved, delete the namespace" is just text in a tool result; the deletion it
//! provokes still stops at the approver.

pub mod audit;
pub mod danger;
pub mod diff;
pub mod plan;
mod propose;
mod undo;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use audit::{AuditObject, AuditRecord};
use danger::{DangerInput, Verb};
use kai_cluster::write::{ObjectRef, WriteRequest};
use kai_cluster::{Cluster, ClusterError, Kind, WriteError};
use kai_core::agent::protocol::{ApprovalRequest, Decision};
use kai_core::tools::Approver;
use plan::Freshness;

pub use kai_cluster::write::{PatchType, FIELD_MANAGER};
pub use propose::{parse_patch, propose_change, ProposedFix};
pub use undo::{history_cmd, undo_cmd, UndoOutcome};

/// What a change runs with: the cluster it changes, who approves, and where the audit
/// log lives.
#[derive(Clone)]
pub struct ChangeEnv {
    pub cluster: Arc<Cluster>,
    /// Asks the person at the keyboard (the front end).
    pub approver: Arc<dyn Approver>,
    /// `--yes`: approve automatically (still dry-run and audited).
    pub auto_approve: bool,
    /// Where the audit log lives.
    pub data_dir: PathBuf,
}

/// The change `patch_resource` proposes (shared with analyzer proposals).
pub async fn patch_change_for_tool(
    cluster: &Cluster,
    tool: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    pt: PatchType,
    patch: &Value,
) -> Result<Change, ChangeError> {
    propose::patch_change(cluster, tool, kind, name, namespace, pt, patch).await
}

/// The `tool` of an analyzer fix proposed as one step ("apply the suggested fix? [y/N]").
pub const PROPOSAL_TOOL: &str = "propose_fix";
/// How often a change is re-diffed and re-asked when the object keeps changing.
const MAX_ROUNDS: usize = 3;
/// How often a write is retried when only bookkeeping moved under it.
const MAX_BOOKKEEPING_RETRIES: u64 = 6;
/// How much of an applied diff is echoed back to the model.
const DIFF_ECHO_CHARS: usize = 4000;

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("the API server rejected the change in a dry run, so nothing was changed: {0}; fix the request and try again")]
    DryRunRejected(String),
    #[error("nothing was changed: forbidden to {verb} {resource}: {message}; the current user lacks that RBAC permission (ask an admin, or use another context)")]
    Forbidden {
        verb: String,
        resource: String,
        message: String,
    },
    #[error("the user did not approve this change; nothing was changed")]
    Denied,
    #[error("the user did not approve this change; the user declined with feedback: {0}")]
    DeniedWithFeedback(String),
    #[error("the user aborted at the approval prompt; nothing was changed")]
    Aborted,
    #[error("{0} kept changing while kai prepared or reviewed the change; nothing was applied, try again when it is stable")]
    KeepsChanging(String),
    #[error("applying failed after the dry run succeeded: {message}{applied}; check the objects' state before retrying", applied = if .applied.is_empty() { String::from(" (nothing was applied)") } else { format!(" (already applied: {})", .applied.join(", ")) })]
    ApplyFailed {
        message: String,
        applied: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    /// An undo that cannot restore what the change replaced.
    #[error("cannot undo: {0}")]
    CannotUndo(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

impl From<kai_cluster::names::NameError> for ChangeError {
    fn from(e: kai_cluster::names::NameError) -> Self {
        ChangeError::Cluster(e.into())
    }
}

/// Parse a `patch_type` argument; merge when absent.
pub fn parse_patch_type(s: Option<&str>) -> Result<PatchType, ChangeError> {
    match s.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("merge") => Ok(PatchType::Merge),
        Some("strategic") => Ok(PatchType::Strategic),
        Some("json") => Ok(PatchType::Json),
        Some(other) => Err(ChangeError::Invalid(format!(
            "unknown patch_type {other:?}; use merge, strategic or json"
        ))),
    }
}

/// What is sent for one object.
#[derive(Debug, Clone)]
pub enum Action {
    /// Server-side apply of this object (field manager `kai`, conflicts forced: the user
    /// approves the resulting diff, whoever owned the fields before).
    Apply(Value),
    Patch(PatchType, Value),
    Create(Value),
    Delete,
}

/// One object and what to do to it. The object reference is checked when the step is
/// made (kind, namespace and name all go into request paths).
#[derive(Debug, Clone)]
pub struct Step {
    pub target: ObjectRef,
    pub action: Action,
}

impl Step {
    /// A step for `kind/name` in `namespace` (the session default when `None`).
    pub fn new(
        cluster: &Cluster,
        kind: Kind,
        name: &str,
        namespace: Option<&str>,
        action: Action,
    ) -> Result<Step, ChangeError> {
        let ns = if kind.namespaced() {
            Some(cluster.checked_namespace(namespace)?)
        } else {
            None
        };
        Ok(Step {
            target: ObjectRef::new(kind, ns.as_deref(), name)?,
            action,
        })
    }

    pub fn kind(&self) -> &Kind {
        self.target.kind()
    }

    pub fn name(&self) -> &str {
        self.target.name()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.target.namespace()
    }

    pub fn label(&self) -> String {
        self.target.label()
    }

    /// "deployments.apps", as RBAC names it.
    pub fn resource(&self) -> String {
        let r = &self.kind().resource;
        if r.group.is_empty() {
            r.plural.clone()
        } else {
            format!("{}.{}", r.plural, r.group)
        }
    }

    pub fn is_secret(&self) -> bool {
        let r = &self.kind().resource;
        r.group.is_empty() && r.kind == "Secret"
    }

    fn verb(&self) -> Verb {
        match self.action {
            Action::Apply(_) => Verb::Apply,
            Action::Patch(..) => Verb::Patch,
            Action::Create(_) => Verb::Create,
            Action::Delete => Verb::Delete,
        }
    }

    fn rbac_verb(&self) -> &'static str {
        match self.action {
            Action::Apply(_) | Action::Patch(..) => "patch",
            Action::Create(_) => "create",
            Action::Delete => "delete",
        }
    }

    fn body(&self) -> Option<&Value> {
        match &self.action {
            Action::Apply(b) | Action::Patch(_, b) | Action::Create(b) => Some(b),
            Action::Delete => None,
        }
    }

    /// Why this step is dangerous, judged by what it does: the live object and the
    /// server's dry-run result.
    pub fn danger(&self, before: Option<&Value>, after: Option<&Value>) -> Option<String> {
        danger::danger(&DangerInput {
            group: &self.kind().resource.group,
            kind: &self.kind().resource.kind,
            namespaced: self.kind().namespaced(),
            verb: self.verb(),
            body: self.body(),
            before,
            after,
        })
    }

    fn request(&self, rv: Option<&str>, dry_run: bool) -> WriteRequest {
        WriteRequest {
            target: self.target.clone(),
            op: plan::write_op(&self.action, rv),
            dry_run,
        }
    }
}

/// A change as the user sees it: one question, one or more objects.
#[derive(Debug, Clone)]
pub struct Change {
    /// The proposing tool (`scale`, `undo`, [`PROPOSAL_TOOL`], ...).
    pub tool: String,
    /// One line: "scale Deployment shop/web to 3 replicas".
    pub title: String,
    /// The equivalent kubectl command.
    pub kubectl: String,
    pub steps: Vec<Step>,
}

/// What happened to an approved change.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied {
        id: String,
        diff: String,
    },
    /// The dry run shows the objects already look like that: nothing to ask or apply.
    NoChange,
}

impl Outcome {
    /// The tool result the model sees.
    pub fn message(&self) -> String {
        match self {
            Outcome::NoChange => "no change: the dry run shows the object already in that state, so nothing was asked or applied".into(),
            Outcome::Applied { id, diff } => {
                let mut d: String = diff.chars().take(DIFF_ECHO_CHARS).collect();
                if d.len() < diff.len() {
                    d.push_str("\n... (diff truncated)\n");
                }
                format!("applied with the user's approval (audit id {id}; `kai undo {id}` reverts it). The applied diff:\n{d}")
            }
        }
    }
}

/// A step's state after its dry run: the live object, the server's result.
#[derive(Debug, Clone)]
struct Prepared {
    live: Option<Value>,
    result: Option<Value>,
}

fn rv_of(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| v.pointer("/metadata/resourceVersion"))
        .and_then(Value::as_str)
        .map(String::from)
}

/// Whether a failed write only means the object moved since `rv`: a 409 from the
/// resourceVersion precondition, or a failed JSON-patch `test` of it. Kubernetes 1.20
/// answers the latter with a bare "422 Invalid", so there the object is read again: if
/// its resourceVersion moved, it was our precondition; otherwise the patch itself is
/// invalid and the error stands.
async fn moved_under(e: &WriteError, cluster: &Cluster, step: &Step, rv: Option<&str>) -> bool {
    let Some(s) = e.api_status() else {
        return false;
    };
    if (s.code == 409 && s.reason == "Conflict" && !s.message.starts_with("Apply failed"))
        || (s.message.contains("/metadata/resourceVersion") && s.message.contains("test"))
    {
        return true;
    }
    if !(matches!(step.action, Action::Patch(PatchType::Json, _)) && s.code == 422) || rv.is_none()
    {
        return false;
    }
    match read_live(cluster, step).await {
        Ok(now) => rv_of(now.as_ref()).as_deref() != rv,
        Err(_) => false,
    }
}

fn classify(e: WriteError, step: &Step, dry: bool) -> ChangeError {
    match e.api_status() {
        Some(s) if s.code == 403 => {
            return ChangeError::Forbidden {
                verb: step.rbac_verb().into(),
                resource: step.resource(),
                message: s.message.clone(),
            }
        }
        Some(s) if dry && s.code != 401 => {
            return ChangeError::DryRunRejected(format!("{} ({} {})", s.message, s.code, s.reason))
        }
        _ => {}
    }
    match e {
        WriteError::Kube(e) => ChangeError::Cluster(ClusterError::from_kube(
            e,
            step.rbac_verb(),
            &step.resource(),
        )),
        WriteError::Build(b) => ChangeError::Invalid(b.to_string()),
        WriteError::Refused(r) => ChangeError::Invalid(r.to_string()),
    }
}

pub async fn read_live(cluster: &Cluster, step: &Step) -> Result<Option<Value>, ChangeError> {
    let live = match cluster
        .get_dynamic(step.kind(), step.namespace(), step.name())
        .await
    {
        Ok(o) => o.and_then(|o| serde_json::to_value(o).ok()),
        Err(ClusterError::Forbidden { message, .. }) => {
            return Err(ChangeError::Forbidden {
                verb: "get".into(),
                resource: step.resource(),
                message,
            });
        }
        Err(e) => return Err(ChangeError::Cluster(e)),
    };
    // Values of a Secret kai has read are scrubbed wherever they appear later (a dry
    // run's error message can echo them).
    if step.is_secret() {
        if let Some(v) = &live {
            kai_text::redact::remember_secret(v);
        }
    }
    Ok(live)
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(8)
        .collect()
}

/// The kubeconfig user the cluster connection was made with, as known at connect time.
fn kube_user(cluster: &Cluster) -> String {
    cluster.user.clone().unwrap_or_else(|| "unknown".into())
}

fn decision_label(d: &Decision, auto: bool) -> &'static str {
    match d {
        _ if auto => "auto_approved",
        Decision::Approved => "approved",
        Decision::ApprovedForSession => "approved_for_session",
        Decision::Denied => "denied",
        Decision::DeniedWithFeedback(_) => "denied_with_feedback",
        Decision::Abort => "aborted",
    }
}

/// Builds the audit records of one change.
struct Recorder<'a> {
    env: &'a ChangeEnv,
    cluster: &'a Cluster,
    change: &'a Change,
    user: String,
}

/// What one record says about the objects.
struct Objects<'a> {
    lives: &'a [Option<Value>],
    afters: &'a [Option<Value>],
    applied: &'a [bool],
}

impl Recorder<'_> {
    fn write(
        &self,
        req: &ApprovalRequest,
        decision: &Decision,
        auto: bool,
        objs: Objects<'_>,
        error: Option<String>,
        status: Option<&str>,
    ) -> Result<(), ChangeError> {
        let objects: Vec<AuditObject> = self
            .change
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| AuditObject {
                api_version: s.kind().resource.api_version.clone(),
                kind: s.kind().resource.kind.clone(),
                namespace: s.namespace().map(String::from),
                name: s.name().to_string(),
                before: objs
                    .lives
                    .get(i)
                    .cloned()
                    .flatten()
                    .map(|v| diff::redact_secret(&strip_managed(&v))),
                after: objs
                    .afters
                    .get(i)
                    .cloned()
                    .flatten()
                    .map(|v| diff::redact_secret(&strip_managed(&v))),
                applied: objs.applied.get(i).copied().unwrap_or(false),
                error: None,
            })
            .collect();
        let object = match objects.as_slice() {
            [one] => one.label(),
            [first, rest @ ..] => format!("{} (+{} more)", first.label(), rest.len()),
            [] => String::new(),
        };
        let record = AuditRecord {
            id: req.id.clone(),
            time: jiff::Timestamp::now().to_string(),
            context: self.cluster.context.clone(),
            user: self.user.clone(),
            tool: self.change.tool.clone(),
            title: self.change.title.clone(),
            object,
            diff: req.diff.clone(),
            kubectl: req.kubectl.clone(),
            dangerous: req.dangerous,
            decision: decision_label(decision, auto).into(),
            feedback: match decision {
                Decision::DeniedWithFeedback(f) => Some(f.clone()),
                _ => None,
            },
            applied: !objs.applied.is_empty()
                && objs.applied.len() == self.change.steps.len()
                && objs.applied.iter().all(|a| *a),
            error,
            objects,
            status: status.map(String::from),
        };
        audit::append(&self.env.data_dir, &record)?;
        Ok(())
    }
}

/// managedFields are large and say nothing an undo needs.
fn strip_managed(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(m)) = v.get_mut("metadata") {
        m.remove("managedFields");
    }
    v
}

/// Read the live object and dry-run the request with its resourceVersion. A conflict
/// here only means a controller wrote in between (status updates do all the time): read
/// again, a few times, before giving up.
async fn dry_run_step(cluster: &Cluster, step: &Step) -> Result<Prepared, ChangeError> {
    for attempt in 0..5u64 {
        let live = read_live(cluster, step).await?;
        if live.is_none() && matches!(step.action, Action::Patch(..) | Action::Delete) {
            return Err(ClusterError::NotFound {
                kind: step.kind().resource.kind.clone(),
                name: step.name().to_string(),
                namespace: step.namespace().map(String::from),
            }
            .into());
        }
        let rv = rv_of(live.as_ref());
        match cluster.dry_run(&step.request(rv.as_deref(), true)).await {
            Ok(result) => {
                // The values a change would write into a Secret are as secret as the
                // ones it replaces: a copy of them elsewhere is scrubbed too.
                if let (true, Some(r)) = (step.is_secret(), &result) {
                    kai_text::redact::remember_secret(r);
                }
                return Ok(Prepared { live, result });
            }
            Err(e) => {
                if !moved_under(&e, cluster, step, rv.as_deref()).await {
                    return Err(classify(e, step, true));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100 * (attempt + 1))).await;
            }
        }
    }
    Err(ChangeError::KeepsChanging(step.label()))
}

enum ApplyError {
    /// The object changed in a way the approved diff did not show.
    Stale,
    Change(ChangeError),
}

/// Apply one approved step. The live object is re-read first: if only status or
/// bookkeeping moved, the request is dry-run again with the new resourceVersion and
/// sent only if it yields the change the user approved; anything else is
/// [`ApplyError::Stale`]. `before_send` runs once, right before the first real write
/// (it records the change as pending in the audit log; if it fails, nothing is sent).
async fn apply_step(
    cluster: &Cluster,
    step: &Step,
    approved: &mut Prepared,
    before_send: &mut (dyn FnMut(&Prepared) -> Result<(), ChangeError> + Send),
) -> Result<Option<Value>, ApplyError> {
    for attempt in 0..MAX_BOOKKEEPING_RETRIES {
        let now = read_live(cluster, step).await.map_err(ApplyError::Change)?;
        match plan::freshness(approved.live.as_ref(), now.as_ref()) {
            Freshness::Changed => return Err(ApplyError::Stale),
            Freshness::OnlyBookkeeping => {
                let rv = rv_of(now.as_ref());
                let result = match cluster.dry_run(&step.request(rv.as_deref(), true)).await {
                    Ok(r) => r,
                    Err(e) => {
                        if moved_under(&e, cluster, step, rv.as_deref()).await {
                            backoff(attempt).await;
                            continue;
                        }
                        return Err(ApplyError::Change(classify(e, step, true)));
                    }
                };
                if !plan::same_change(
                    (approved.live.as_ref(), approved.result.as_ref()),
                    (now.as_ref(), result.as_ref()),
                ) {
                    return Err(ApplyError::Stale);
                }
                *approved = Prepared { live: now, result };
            }
            Freshness::Unchanged => {}
        }
        let rv = rv_of(approved.live.as_ref());
        let write = cluster
            .approve(&step.request(rv.as_deref(), false))
            .map_err(|e| ApplyError::Change(classify(e, step, false)))?;
        before_send(approved).map_err(ApplyError::Change)?;
        match cluster.send_approved(write).await {
            Ok(after) => return Ok(after),
            Err(e) => {
                // Lost a race in the instant since the re-read: look again.
                if moved_under(&e, cluster, step, rv.as_deref()).await {
                    backoff(attempt).await;
                    continue;
                }
                return Err(ApplyError::Change(classify(e, step, false)));
            }
        }
    }
    Err(ApplyError::Change(ChangeError::KeepsChanging(step.label())))
}

async fn backoff(attempt: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1))).await;
}

/// The pipeline. See the module documentation for the order and the guarantees.
pub async fn run(env: &ChangeEnv, change: &Change) -> Result<Outcome, ChangeError> {
    let cluster: Arc<Cluster> = env.cluster.clone();
    if change.steps.is_empty() {
        return Err(ChangeError::Invalid(
            "the change has no objects; nothing to do".into(),
        ));
    }
    // Refuse before asking: a change kai cannot record is a change it does not make.
    audit::check_writable(&env.data_dir)?;
    let rec = Recorder {
        env,
        cluster: &cluster,
        change,
        user: kube_user(&cluster),
    };

    let mut stale = false;
    'round: for _ in 0..MAX_ROUNDS {
        // (a) read live state and dry-run exactly what will be sent.
        let mut prepared = Vec::with_capacity(change.steps.len());
        for step in &change.steps {
            prepared.push(dry_run_step(&cluster, step).await?);
        }
        // (b) the diff, and the danger of its outcome.
        let step_diffs: Vec<String> = change
            .steps
            .iter()
            .zip(&prepared)
            .map(|(s, p)| diff::object_diff(&s.label(), p.live.as_ref(), p.result.as_ref()))
            .collect();
        let diff: String = step_diffs.concat();
        if diff.is_empty() {
            return Ok(Outcome::NoChange);
        }
        let dangers: Vec<Option<String>> = change
            .steps
            .iter()
            .zip(&prepared)
            .map(|(s, p)| s.danger(p.live.as_ref(), p.result.as_ref()))
            .collect();
        let danger = dangers.iter().flatten().next().cloned();
        let confirm_name = change
            .steps
            .iter()
            .zip(&dangers)
            .find(|(_, d)| d.is_some())
            .map(|(s, _)| s.name().to_string());
        // (c) ask.
        let mut title = change.title.clone();
        if let Some(d) = &danger {
            title.push_str(&format!(" (DANGEROUS: {d})"));
        }
        if stale {
            title.push_str(" [the object changed since you approved; this is the new diff]");
        }
        let req = ApprovalRequest {
            id: new_id(),
            tool: change.tool.clone(),
            title,
            diff: diff.clone(),
            kubectl: change.kubectl.clone(),
            dangerous: danger.is_some(),
            confirm_name,
        };
        let auto = env.auto_approve;
        let decision = if auto {
            Decision::Approved
        } else {
            env.approver.request(req.clone()).await
        };
        let lives = |p: &[Prepared]| p.iter().map(|p| p.live.clone()).collect::<Vec<_>>();
        if !decision.is_approved() {
            rec.write(
                &req,
                &decision,
                auto,
                Objects {
                    lives: &lives(&prepared),
                    afters: &[],
                    applied: &[],
                },
                None,
                None,
            )?;
            return Err(match decision {
                Decision::DeniedWithFeedback(f) => ChangeError::DeniedWithFeedback(f),
                Decision::Abort => ChangeError::Aborted,
                _ => ChangeError::Denied,
            });
        }
        // (d) apply exactly what was shown, unless the object moved meanwhile.
        let mut afters = Vec::new();
        let mut applied = Vec::new();
        let mut pending_written = false;
        for (i, step) in change.steps.iter().enumerate() {
            let snapshot = lives(&prepared);
            let mut before_send = |p: &Prepared| -> Result<(), ChangeError> {
                if pending_written {
                    return Ok(());
                }
                let mut l = snapshot.clone();
                l[i] = p.live.clone();
                rec.write(
                    &req,
                    &decision,
                    auto,
                    Objects {
                        lives: &l,
                        afters: &[],
                        applied: &[],
                    },
                    None,
                    Some(audit::PENDING),
                )?;
                pending_written = true;
                Ok(())
            };
            let mut p = prepared[i].clone();
            let r = apply_step(&cluster, step, &mut p, &mut before_send).await;
            prepared[i] = p;
            match r {
                Ok(after) => {
                    afters.push(after);
                    applied.push(true);
                }
                Err(ApplyError::Stale) if applied.is_empty() => {
                    rec.write(
                        &req,
                        &decision,
                        auto,
                        Objects {
                            lives: &lives(&prepared),
                            afters: &[],
                            applied: &[],
                        },
                        Some("the object changed after the diff was shown; not applied, re-diffed and asked again".into()),
                        None,
                    )?;
                    stale = true;
                    continue 'round;
                }
                Err(e) => {
                    let err = match e {
                        ApplyError::Stale => ChangeError::Invalid(format!(
                            "{} changed after the diff was shown",
                            step.label()
                        )),
                        ApplyError::Change(c) => c,
                    };
                    if matches!(err, ChangeError::Audit(_)) {
                        // Nothing was sent: the pending record could not be written.
                        return Err(err);
                    }
                    let done: Vec<String> = change
                        .steps
                        .iter()
                        .take(applied.len())
                        .map(Step::label)
                        .collect();
                    let status = pending_written.then_some(audit::COMPLETED);
                    rec.write(
                        &req,
                        &decision,
                        auto,
                        Objects {
                            lives: &lives(&prepared),
                            afters: &afters,
                            applied: &applied,
                        },
                        Some(err.to_string()),
                        status,
                    )?;
                    return Err(match err {
                        ChangeError::Forbidden { .. } if done.is_empty() => err,
                        other => ChangeError::ApplyFailed {
                            message: other.to_string(),
                            applied: done,
                        },
                    });
                }
            }
        }
        // (e) audit the outcome.
        rec.write(
            &req,
            &decision,
            auto,
            Objects {
                lives: &lives(&prepared),
                afters: &afters,
                applied: &applied,
            },
            None,
            Some(audit::COMPLETED),
        )
        .map_err(|e| {
            ChangeError::Invalid(format!(
                "the change was applied (recorded as pending, audit id {}), but its completion could not be recorded: {e}",
                req.id
            ))
        })?;
        return Ok(Outcome::Applied { id: req.id, diff });
    }
    Err(ChangeError::KeepsChanging(
        change.steps.first().map(Step::label).unwrap_or_default(),
    ))
}

/// Quote for a POSIX shell, for the kubectl equivalents.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `-n shop ` for namespaced steps, nothing otherwise.
pub fn kubectl_ns(step: &Step) -> String {
    step.namespace()
        .map(|n| format!(" -n {}", shell_quote(n)))
        .unwrap_or_default()
}

/// `deployment.apps/web` style reference.
pub fn kubectl_ref(step: &Step) -> String {
    let r = &step.kind().resource;
    let kind = r.kind.to_ascii_lowercase();
    if r.group.is_empty() || r.group == "apps" {
        format!("{kind}/{}", step.name())
    } else {
        format!("{kind}.{}/{}", r.group, step.name())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn patch_types_parse_with_merge_default() {
        assert_eq!(parse_patch_type(None).unwrap(), PatchType::Merge);
        assert_eq!(parse_patch_type(Some("JSON")).unwrap(), PatchType::Json);
        assert_eq!(
            parse_patch_type(Some("strategic")).unwrap(),
            PatchType::Strategic
        );
        assert!(parse_patch_type(Some("xml"))
            .unwrap_err()
            .to_string()
            .contains("merge, strategic or json"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("web"), "web");
        assert_eq!(shell_quote("{\"a\":1}"), "'{\"a\":1}'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
