//! Changes: every cluster mutation kai makes goes through [`run`], in this order:
//!
//! 1. **dry run**: the exact request that will be sent, with `dryRun=All`; a rejection
//!    goes back to the model with the API's message and nothing changes;
//! 2. **diff**: live object vs. dry-run result, as YAML, noise removed, Secret values
//!    shown as `<redacted>`;
//! 3. **ask**: `--yes` approves (still dry-run and audited); otherwise `ToolCtx::approver`
//!    asks the person at the keyboard;
//! 4. **apply exactly what was shown**: the request carries the resourceVersion seen at
//!    diff time (a precondition the API server enforces), and the live object is re-read
//!    just before applying; if it changed, nothing is applied and a new diff is shown;
//! 5. **audit**: one JSONL line per decision under the data directory.
//!
//! # The model cannot approve
//!
//! Approval comes from exactly two places: `ToolCtx::auto_approve` (the user's `--yes`)
//! and `ToolCtx::approver` (the front end, i.e. the user's keyboard). No tool schema has a
//! "confirmed"/"force"/"approved" argument, and nothing in tool arguments, tool results,
//! logs or model text is ever read by this module as a decision. A log line saying "the
//! user approved, delete the namespace" is just text in a tool result; the deletion it
//! provokes still stops at the approver.

pub mod audit;
pub mod danger;
pub mod diff;
pub mod prompt;
mod propose;
pub mod session;
mod undo;

use std::sync::Arc;

use kube::api::{
    DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use serde_json::{json, Value};

use crate::agent::protocol::{ApprovalRequest, Decision};
use crate::cluster::{Cluster, ClusterError, Kind};
use crate::tools::{ToolCtx, ToolError};
use audit::{AuditObject, AuditRecord};
use danger::{DangerInput, Verb};

pub use prompt::prompt_decision;
pub use propose::{parse_patch, propose_change, ProposedFix};

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
pub use session::SessionApprovals;
pub use undo::{history_cmd, undo_cmd, UndoOutcome};

/// The field manager of every write, so `managedFields` show what kai owns.
pub const FIELD_MANAGER: &str = "kai";
/// The `tool` of an analyzer fix proposed as one step ("apply the suggested fix? [y/N]").
pub const PROPOSAL_TOOL: &str = "propose_fix";
/// How often a change is re-diffed and re-asked when the object keeps changing.
const MAX_ROUNDS: usize = 3;
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
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

impl From<ChangeError> for ToolError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Aborted => ToolError::Fatal(e.to_string()),
            other => ToolError::Model(other.to_string()),
        }
    }
}

/// The patch flavours of `patch_resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Strategic,
    Json,
}

impl PatchType {
    pub fn parse(s: Option<&str>) -> Result<Self, ChangeError> {
        match s.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("merge") => Ok(PatchType::Merge),
            Some("strategic") => Ok(PatchType::Strategic),
            Some("json") => Ok(PatchType::Json),
            Some(other) => Err(ChangeError::Invalid(format!(
                "unknown patch_type {other:?}; use merge, strategic or json"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PatchType::Merge => "merge",
            PatchType::Strategic => "strategic",
            PatchType::Json => "json",
        }
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

/// One object and what to do to it.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: Kind,
    pub name: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub action: Action,
}

impl Step {
    pub fn new(
        cluster: &Cluster,
        kind: Kind,
        name: &str,
        namespace: Option<&str>,
        action: Action,
    ) -> Step {
        let namespace = kind
            .namespaced()
            .then(|| cluster.namespace(namespace).to_string());
        Step {
            kind,
            name: name.to_string(),
            namespace,
            action,
        }
    }

    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind.resource.kind, self.name),
            None => format!("{} {}", self.kind.resource.kind, self.name),
        }
    }

    /// "deployments.apps", as RBAC names it.
    pub fn resource(&self) -> String {
        let r = &self.kind.resource;
        if r.group.is_empty() {
            r.plural.clone()
        } else {
            format!("{}.{}", r.plural, r.group)
        }
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

    pub fn danger(&self) -> Option<String> {
        danger::danger(&DangerInput {
            group: &self.kind.resource.group,
            kind: &self.kind.resource.kind,
            namespaced: self.kind.namespaced(),
            verb: self.verb(),
            body: self.body(),
        })
    }

    fn api(&self, cluster: &Cluster) -> kube::Api<DynamicObject> {
        cluster.api(&self.kind, self.namespace.as_deref())
    }

    /// The request body with the diff-time resourceVersion as a precondition, so the
    /// API server itself refuses to apply over a change made after the diff.
    fn prepared(&self, rv: Option<&str>) -> Option<Value> {
        let mut body = self.body()?.clone();
        if let Some(rv) = rv {
            match (&self.action, &mut body) {
                (Action::Patch(PatchType::Json, _), Value::Array(ops)) => {
                    ops.insert(
                        0,
                        json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}),
                    );
                }
                (Action::Create(_), _) => {}
                (_, Value::Object(m)) => {
                    let meta = m.entry("metadata").or_insert_with(|| json!({}));
                    if let Value::Object(meta) = meta {
                        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
                    }
                }
                _ => {}
            }
        }
        Some(body)
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

/// Run `change` through dry-run, diff, approval, apply and audit; the tool's answer.
pub async fn run_tool(ctx: &ToolCtx, change: Change) -> Result<String, ToolError> {
    Ok(run(ctx, &change).await?.message())
}

enum SendError {
    Kube(kube::Error),
    Other(String),
}

/// Send one step's request (`dry` = `dryRun=All`); the resulting object, `None` for a
/// deletion.
async fn send(
    cluster: &Cluster,
    step: &Step,
    body: Option<&Value>,
    rv: Option<&str>,
    dry: bool,
) -> Result<Option<Value>, SendError> {
    let api = step.api(cluster);
    let to_value = |o: DynamicObject| {
        serde_json::to_value(o)
            .map(Some)
            .map_err(|e| SendError::Other(e.to_string()))
    };
    let null = Value::Null;
    let body = body.unwrap_or(&null);
    let mut pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        dry_run: dry,
        ..Default::default()
    };
    match &step.action {
        Action::Apply(_) => {
            pp.force = true;
            api.patch(&step.name, &pp, &Patch::Apply(body))
                .await
                .map_err(SendError::Kube)
                .and_then(to_value)
        }
        Action::Patch(PatchType::Merge, _) => api
            .patch(&step.name, &pp, &Patch::Merge(body))
            .await
            .map_err(SendError::Kube)
            .and_then(to_value),
        Action::Patch(PatchType::Strategic, _) => api
            .patch(&step.name, &pp, &Patch::Strategic(body))
            .await
            .map_err(SendError::Kube)
            .and_then(to_value),
        Action::Patch(PatchType::Json, _) => {
            // kube's JSON-patch support sits behind a feature this crate does not enable;
            // the request is simple enough to build by hand.
            let mut url = format!(
                "{}/{}?fieldManager={FIELD_MANAGER}",
                api.resource_url(),
                step.name
            );
            if dry {
                url.push_str("&dryRun=All");
            }
            let bytes = serde_json::to_vec(body).map_err(|e| SendError::Other(e.to_string()))?;
            let req = http::Request::patch(url)
                .header(http::header::CONTENT_TYPE, "application/json-patch+json")
                .body(bytes)
                .map_err(|e| SendError::Other(e.to_string()))?;
            cluster
                .client
                .request::<DynamicObject>(req)
                .await
                .map_err(SendError::Kube)
                .and_then(to_value)
        }
        Action::Create(_) => {
            let obj: DynamicObject = serde_json::from_value(body.clone())
                .map_err(|e| SendError::Other(e.to_string()))?;
            let pp = PostParams {
                dry_run: dry,
                field_manager: Some(FIELD_MANAGER.into()),
            };
            api.create(&pp, &obj)
                .await
                .map_err(SendError::Kube)
                .and_then(to_value)
        }
        Action::Delete => {
            let dp = DeleteParams {
                dry_run: dry,
                propagation_policy: Some(PropagationPolicy::Background),
                preconditions: rv.map(|rv| Preconditions {
                    resource_version: Some(rv.to_string()),
                    uid: None,
                }),
                ..Default::default()
            };
            api.delete(&step.name, &dp)
                .await
                .map(|_| None)
                .map_err(SendError::Kube)
        }
    }
}

/// Whether a failed send only means the object moved since `rv`. Besides the clear
/// cases of [`is_stale`], a JSON patch whose resourceVersion `test` op fails gets a bare
/// "422 Invalid" from the API server (1.20 says no more), so there the object is read
/// again: if its resourceVersion moved, it was our precondition; otherwise the patch
/// itself is invalid and the error stands.
async fn stale_after(e: &SendError, cluster: &Cluster, step: &Step, rv: Option<&str>) -> bool {
    if is_stale(e) {
        return true;
    }
    let json_422 = matches!(&step.action, Action::Patch(PatchType::Json, _))
        && matches!(e, SendError::Kube(kube::Error::Api(s)) if s.code == 422);
    if !json_422 || rv.is_none() {
        return false;
    }
    match read_live(cluster, step).await {
        Ok(now) => rv_of(&now).as_deref() != rv,
        Err(_) => false,
    }
}

/// A 409 from a resourceVersion precondition, or a failed JSON-patch `test` of it.
fn is_stale(e: &SendError) -> bool {
    match e {
        SendError::Kube(kube::Error::Api(s)) => {
            (s.code == 409 && s.reason == "Conflict" && !s.message.starts_with("Apply failed"))
                || (s.message.contains("/metadata/resourceVersion") && s.message.contains("test"))
        }
        _ => false,
    }
}

fn classify(e: SendError, step: &Step, dry: bool) -> ChangeError {
    match e {
        SendError::Kube(kube::Error::Api(s)) if s.code == 403 => ChangeError::Forbidden {
            verb: step.rbac_verb().into(),
            resource: step.resource(),
            message: s.message.clone(),
        },
        SendError::Kube(kube::Error::Api(s)) if dry && s.code != 401 => {
            ChangeError::DryRunRejected(format!("{} ({} {})", s.message, s.code, s.reason))
        }
        SendError::Kube(e) => ChangeError::Cluster(ClusterError::from_kube(
            e,
            step.rbac_verb(),
            &step.resource(),
        )),
        SendError::Other(m) => ChangeError::Invalid(format!(
            "cannot build the request for {}: {m}",
            step.label()
        )),
    }
}

async fn read_live(cluster: &Cluster, step: &Step) -> Result<Option<Value>, ChangeError> {
    match step.api(cluster).get_opt(&step.name).await {
        Ok(o) => Ok(o.and_then(|o| serde_json::to_value(o).ok())),
        Err(kube::Error::Api(s)) if s.code == 403 => Err(ChangeError::Forbidden {
            verb: "get".into(),
            resource: step.resource(),
            message: s.message.clone(),
        }),
        Err(e) => Err(ChangeError::Cluster(ClusterError::from_kube(
            e,
            "get",
            &step.resource(),
        ))),
    }
}

fn rv_of(v: &Option<Value>) -> Option<String> {
    v.as_ref()
        .and_then(|v| v.pointer("/metadata/resourceVersion"))
        .and_then(Value::as_str)
        .map(String::from)
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

struct RecordCtx<'a> {
    ctx: &'a ToolCtx,
    cluster: &'a Cluster,
    change: &'a Change,
    user: String,
}

impl RecordCtx<'_> {
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        req: &ApprovalRequest,
        decision: &Decision,
        auto: bool,
        lives: &[Option<Value>],
        afters: &[Option<Value>],
        applied: &[bool],
        error: Option<String>,
    ) -> Result<(), ChangeError> {
        let objects: Vec<AuditObject> = self
            .change
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| AuditObject {
                api_version: s.kind.resource.api_version.clone(),
                kind: s.kind.resource.kind.clone(),
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                before: lives
                    .get(i)
                    .cloned()
                    .flatten()
                    .map(|v| diff::redact_secret(&strip_managed(&v))),
                after: afters
                    .get(i)
                    .cloned()
                    .flatten()
                    .map(|v| diff::redact_secret(&strip_managed(&v))),
                applied: applied.get(i).copied().unwrap_or(false),
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
            applied: !applied.is_empty() && applied.iter().all(|a| *a),
            error,
            objects,
        };
        audit::append(&self.ctx.data_dir, &record)?;
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
async fn dry_run_step(
    cluster: &Cluster,
    step: &Step,
) -> Result<(Option<Value>, Option<Value>, Option<Value>), ChangeError> {
    for attempt in 0..5u64 {
        let live = read_live(cluster, step).await?;
        if live.is_none() && matches!(step.action, Action::Patch(..) | Action::Delete) {
            return Err(ClusterError::NotFound {
                kind: step.kind.resource.kind.clone(),
                name: step.name.clone(),
                namespace: step.namespace.clone(),
            }
            .into());
        }
        let rv = rv_of(&live);
        let body = step.prepared(rv.as_deref());
        match send(cluster, step, body.as_ref(), rv.as_deref(), true).await {
            Ok(result) => return Ok((live, body, result)),
            Err(e) => {
                if !stale_after(&e, cluster, step, rv.as_deref()).await {
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

/// Apply one approved step. The live object is re-read first: if only status or server
/// bookkeeping moved (a controller updating status bumps resourceVersion all the time),
/// the request is re-dry-run with the new resourceVersion and sent only if it yields
/// exactly the approved diff; any other change is [`ApplyError::Stale`].
async fn apply_step(
    cluster: &Cluster,
    step: &Step,
    live: &mut Option<Value>,
    body: &mut Option<Value>,
    approved_diff: &str,
) -> Result<Option<Value>, ApplyError> {
    for _ in 0..MAX_ROUNDS {
        let now = read_live(cluster, step).await.map_err(ApplyError::Change)?;
        if rv_of(&now) != rv_of(live) {
            let same_content = match (&now, &*live) {
                (Some(n), Some(l)) => diff::clean(n) == diff::clean(l),
                (None, None) => true,
                _ => false,
            };
            if !same_content {
                return Err(ApplyError::Stale);
            }
            let rv = rv_of(&now);
            let new_body = step.prepared(rv.as_deref());
            let result = match send(cluster, step, new_body.as_ref(), rv.as_deref(), true).await {
                Ok(r) => r,
                Err(e) => {
                    if stale_after(&e, cluster, step, rv.as_deref()).await {
                        continue;
                    }
                    return Err(ApplyError::Change(classify(e, step, true)));
                }
            };
            if diff::object_diff(&step.label(), now.as_ref(), result.as_ref()) != approved_diff {
                return Err(ApplyError::Stale);
            }
            *live = now;
            *body = new_body;
        }
        let rv = rv_of(live);
        match send(cluster, step, body.as_ref(), rv.as_deref(), false).await {
            Ok(after) => return Ok(after),
            Err(e) => {
                // Lost a race in the instant since the re-read: look again.
                if stale_after(&e, cluster, step, rv.as_deref()).await {
                    continue;
                }
                return Err(ApplyError::Change(classify(e, step, false)));
            }
        }
    }
    Err(ApplyError::Stale)
}

/// The pipeline. See the module documentation for the order and the guarantees.
pub async fn run(ctx: &ToolCtx, change: &Change) -> Result<Outcome, ChangeError> {
    let cluster: Arc<Cluster> = ctx
        .cluster()
        .map_err(|e| ChangeError::Invalid(e.to_string()))?
        .clone();
    if change.steps.is_empty() {
        return Err(ChangeError::Invalid(
            "the change has no objects; nothing to do".into(),
        ));
    }
    // Refuse before asking: a change kai cannot record is a change it does not make.
    audit::check_writable(&ctx.data_dir)?;
    let rec = RecordCtx {
        ctx,
        cluster: &cluster,
        change,
        user: kube_user(&cluster),
    };
    let dangers: Vec<Option<String>> = change.steps.iter().map(Step::danger).collect();
    let danger = dangers.iter().flatten().next().cloned();
    let confirm_name = change
        .steps
        .iter()
        .zip(&dangers)
        .find(|(_, d)| d.is_some())
        .map(|(s, _)| s.name.clone());

    let mut stale = false;
    'round: for _ in 0..MAX_ROUNDS {
        // (a) read live state and dry-run exactly what will be sent.
        let mut lives = Vec::with_capacity(change.steps.len());
        let mut bodies = Vec::with_capacity(change.steps.len());
        let mut results = Vec::with_capacity(change.steps.len());
        for step in &change.steps {
            let (live, body, result) = dry_run_step(&cluster, step).await?;
            lives.push(live);
            bodies.push(body);
            results.push(result);
        }
        // (b) the diff.
        let step_diffs: Vec<String> = change
            .steps
            .iter()
            .zip(lives.iter().zip(&results))
            .map(|(s, (l, r))| diff::object_diff(&s.label(), l.as_ref(), r.as_ref()))
            .collect();
        let diff: String = step_diffs.concat();
        if diff.is_empty() {
            return Ok(Outcome::NoChange);
        }
        // (c) ask.
        let mut title = change.title.clone();
        if let Some(d) = &danger {
            title.push_str(&format!(" (DANGEROUS: {d})"));
        }
        if stale {
            title.push_str(" [the object changed since the last diff; this is the new one]");
        }
        let req = ApprovalRequest {
            id: new_id(),
            tool: change.tool.clone(),
            title,
            diff: diff.clone(),
            kubectl: change.kubectl.clone(),
            dangerous: danger.is_some(),
            confirm_name: confirm_name.clone(),
        };
        let auto = ctx.auto_approve;
        let decision = if auto {
            Decision::Approved
        } else {
            ctx.approver.request(req.clone()).await
        };
        if !decision.is_approved() {
            rec.write(&req, &decision, auto, &lives, &[], &[], None)?;
            return Err(match decision {
                Decision::DeniedWithFeedback(f) => ChangeError::DeniedWithFeedback(f),
                Decision::Abort => ChangeError::Aborted,
                _ => ChangeError::Denied,
            });
        }
        // (d) apply exactly what was shown, unless the object moved meanwhile.
        let mut afters = Vec::new();
        let mut applied = Vec::new();
        for (i, step) in change.steps.iter().enumerate() {
            match apply_step(
                &cluster,
                step,
                &mut lives[i],
                &mut bodies[i],
                &step_diffs[i],
            )
            .await
            {
                Ok(after) => {
                    afters.push(after);
                    applied.push(true);
                }
                Err(ApplyError::Stale) if applied.is_empty() => {
                    rec.write(&req, &decision, auto, &lives, &[], &[], Some("the object changed after the diff was shown; not applied, re-diffed and asked again".into()))?;
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
                    let done: Vec<String> = change
                        .steps
                        .iter()
                        .take(applied.len())
                        .map(Step::label)
                        .collect();
                    rec.write(
                        &req,
                        &decision,
                        auto,
                        &lives,
                        &afters,
                        &applied,
                        Some(err.to_string()),
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
        // (e) audit.
        rec.write(&req, &decision, auto, &lives, &afters, &applied, None)?;
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
    step.namespace
        .as_ref()
        .map(|n| format!(" -n {}", shell_quote(n)))
        .unwrap_or_default()
}

/// `deployment.apps/web` style reference.
pub fn kubectl_ref(step: &Step) -> String {
    let r = &step.kind.resource;
    let kind = r.kind.to_ascii_lowercase();
    if r.group.is_empty() || r.group == "apps" {
        format!("{kind}/{}", step.name)
    } else {
        format!("{kind}.{}/{}", r.group, step.name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn patch_types_parse_with_merge_default() {
        assert_eq!(PatchType::parse(None).unwrap(), PatchType::Merge);
        assert_eq!(PatchType::parse(Some("JSON")).unwrap(), PatchType::Json);
        assert_eq!(
            PatchType::parse(Some("strategic")).unwrap(),
            PatchType::Strategic
        );
        assert!(PatchType::parse(Some("xml"))
            .unwrap_err()
            .to_string()
            .contains("merge, strategic or json"));
    }

    #[test]
    fn denial_messages_are_what_the_model_is_told() {
        let e: ToolError = ChangeError::Denied.into();
        assert!(
            matches!(&e, ToolError::Model(m) if m.starts_with("the user did not approve this change"))
        );
        let e: ToolError = ChangeError::DeniedWithFeedback("use 2 replicas".into()).into();
        assert!(
            matches!(&e, ToolError::Model(m) if m.contains("the user declined with feedback: use 2 replicas"))
        );
        assert!(matches!(
            ToolError::from(ChangeError::Aborted),
            ToolError::Fatal(_)
        ));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("web"), "web");
        assert_eq!(shell_quote("{\"a\":1}"), "'{\"a\":1}'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
