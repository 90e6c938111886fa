//! The audit records of one change: built from what the pipeline saw and did.

use serde_json::Value;

use crate::audit::{self, AuditObject, AuditRecord};
use crate::diff;
use crate::error::ChangeError;
use crate::step::Change;
use kai_core::agent::protocol::{ApprovalRequest, Decision};

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(8)
        .collect()
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
pub(crate) struct Recorder<'a> {
    pub data_dir: &'a std::path::Path,
    pub context: String,
    pub user: String,
    pub change: &'a Change,
}

/// What one record says about the objects.
pub(crate) struct Objects<'a> {
    pub lives: &'a [Option<Value>],
    pub afters: &'a [Option<Value>],
    pub applied: &'a [bool],
}

impl<'a> Objects<'a> {
    /// The objects as they were before anything was sent (nothing applied yet).
    pub(crate) fn unapplied(lives: &'a [Option<Value>]) -> Objects<'a> {
        Objects {
            lives,
            afters: &[],
            applied: &[],
        }
    }
}

impl Recorder<'_> {
    pub(crate) fn write(
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
            context: self.context.clone(),
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
        audit::append(self.data_dir, &record)?;
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
