//! `kai history` and `kai undo`: the audit log read back, and a recorded change reverted
//! through the same dry-run → diff → confirm → apply → audit pipeline.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::audit::{self, AuditObject, AuditRecord};
use super::diff::REDACTED;
use super::{
    kubectl_ns, kubectl_ref, run, shell_quote, Action, Change, ChangeEnv, ChangeError, Outcome,
    PatchType, Step,
};
use kai_cluster::Cluster;
use kai_core::tools::Approver;

/// What `kai undo` did. The CLI exits 0 for `Applied`/`NoChange` and
/// `exit::NOT_APPLIED` for `NotApplied`.
#[derive(Debug, Clone, PartialEq)]
pub enum UndoOutcome {
    /// Reverted; `id` is the audit id of the undo itself (undo it to redo).
    Applied { id: String, undone: String },
    /// The objects are already as they were before the change.
    NoChange { undone: String },
    /// The user declined (or there was nobody to ask).
    NotApplied { undone: String, reason: String },
    /// What the change replaced is not kept (Secret values): nothing was asked.
    CannotUndo { undone: String, reason: String },
}

/// Print the audit log as a table, oldest first.
pub async fn history_cmd(data_dir: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let records = audit::read_all(data_dir)?;
    if records.is_empty() {
        writeln!(
            out,
            "no changes recorded yet (audit log: {})",
            audit::path(data_dir).display()
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<8}  {:<20}  {:<20}  {:<7}  {:<16}  OBJECT",
        "ID", "TIME", "DECISION", "APPLIED", "TOOL"
    )?;
    for r in &records {
        let time: String = r.time.chars().take(19).collect();
        writeln!(
            out,
            "{:<8}  {:<20}  {:<20}  {:<7}  {:<16}  {}",
            r.id,
            time.replace('T', " "),
            r.decision,
            if r.applied { "yes" } else { "no" },
            r.tool,
            r.object
        )?;
    }
    Ok(())
}

/// Pick the record to undo: by id (a unique prefix is enough), else the last applied one.
pub fn select<'a>(
    records: &'a [AuditRecord],
    id: Option<&str>,
) -> Result<&'a AuditRecord, ChangeError> {
    match id {
        Some(id) => {
            let hits: Vec<&AuditRecord> = records.iter().filter(|r| r.id.starts_with(id)).collect();
            match hits.as_slice() {
                [one] if one.applied || one.is_pending() => Ok(one),
                [one] => Err(ChangeError::Invalid(format!(
                    "change {} was not applied (decision: {}), so there is nothing to undo; see `kai history`",
                    one.id, one.decision
                ))),
                [] => Err(ChangeError::Invalid(format!("no change with id {id:?} in the audit log; see `kai history`"))),
                _ => Err(ChangeError::Invalid(format!("{id:?} matches several changes; give more of the id (see `kai history`)"))),
            }
        }
        None => records
            .iter()
            .rev()
            .find(|r| r.applied || r.is_pending())
            .ok_or_else(|| {
                ChangeError::Invalid(
                    "no applied change in the audit log, so there is nothing to undo".into(),
                )
            }),
    }
}

/// Revert the change `id` (default: the last applied change).
pub async fn undo_cmd(
    cluster: Arc<Cluster>,
    id: Option<String>,
    approver: Arc<dyn Approver>,
    auto_approve: bool,
    data_dir: &Path,
) -> anyhow::Result<UndoOutcome> {
    let records = audit::read_all(data_dir)?;
    let record = select(&records, id.as_deref())?;
    let undone = format!("{} ({})", record.id, record.title);
    let change = match undo_change(&cluster, record).await {
        Ok(c) => c,
        Err(ChangeError::CannotUndo(reason)) => {
            return Ok(UndoOutcome::CannotUndo { undone, reason })
        }
        Err(e) => return Err(e.into()),
    };
    let env = ChangeEnv {
        cluster,
        approver,
        auto_approve,
        data_dir: data_dir.to_path_buf(),
    };
    match run(&env, &change).await {
        Ok(Outcome::Applied { id, .. }) => Ok(UndoOutcome::Applied { id, undone }),
        Ok(Outcome::NoChange) => Ok(UndoOutcome::NoChange { undone }),
        Err(
            e @ (ChangeError::Denied | ChangeError::DeniedWithFeedback(_) | ChangeError::Aborted),
        ) => Ok(UndoOutcome::NotApplied {
            undone,
            reason: e.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The steps that bring every object of `record` back to its `before` state.
async fn undo_change(cluster: &Cluster, record: &AuditRecord) -> Result<Change, ChangeError> {
    let mut steps = Vec::new();
    let mut kubectl = Vec::new();
    // Reverse order: the last object applied is the first reverted.
    // A change kai was killed in the middle of (pending, no completion) may have been
    // applied: every object it names is a candidate, and an object already as it was
    // simply yields no operation.
    let pending = record.is_pending();
    if let Some(secret) = changed_secret_values(record) {
        return Err(ChangeError::CannotUndo(format!(
            "change {} changed the values of {secret}; kai never stores Secret values (not in the audit log, not anywhere), so the previous values are not kept and cannot be restored. Restore them from your source of truth (your secret manager or manifests), e.g. kubectl create secret generic NAME --from-literal=KEY=VALUE --dry-run=client -o yaml | kubectl apply -f -",
            record.id
        )));
    }
    // A recorded state with a scrubbed value (a Secret value copied into an ordinary
    // field) cannot be restored faithfully; putting the marker back would be wrong.
    if let Some(obj) = record.objects.iter().find(|o| {
        o.kind != "Secret"
            && o.before
                .as_ref()
                .is_some_and(|b| b.to_string().contains("[REDACTED"))
    }) {
        return Err(ChangeError::CannotUndo(format!(
            "the state of {} before change {} was recorded with a Secret value removed from it; kai never stores Secret values, so it cannot restore that object exactly. Restore it from your source of truth",
            obj.label(),
            record.id
        )));
    }
    for obj in record.objects.iter().rev().filter(|o| o.applied || pending) {
        let kind = cluster.resolve(&kind_query(obj)).await?;
        let probe = Step::new(
            cluster,
            kind.clone(),
            &obj.name,
            obj.namespace.as_deref(),
            Action::Delete,
        )?;
        let current = super::read_live(cluster, &probe).await?;
        let action = match (&obj.before, &current) {
            // Created by the change: delete it.
            (None, Some(_)) => Action::Delete,
            (None, None) => continue,
            (Some(before), None) => Action::Create(recreate_body(obj, before)?),
            (Some(before), Some(current)) => {
                Action::Patch(PatchType::Json, Value::Array(restore_ops(before, current)))
            }
        };
        let step = Step { action, ..probe };
        if matches!(&step.action, Action::Patch(_, Value::Array(ops)) if ops.is_empty()) {
            continue;
        }
        kubectl.push(match &step.action {
            Action::Delete => format!("kubectl delete {}{}", kubectl_ref(&step), kubectl_ns(&step)),
            Action::Create(_) => format!(
                "kubectl create{} -f <the recorded object>",
                kubectl_ns(&step)
            ),
            Action::Patch(_, p) => format!(
                "kubectl patch {}{} --type json -p {}",
                kubectl_ref(&step),
                kubectl_ns(&step),
                shell_quote(&p.to_string())
            ),
            Action::Apply(_) => String::new(),
        });
        steps.push(step);
    }
    if steps.is_empty() {
        return Err(ChangeError::Invalid(format!(
            "change {} touched nothing that can be reverted",
            record.id
        )));
    }
    Ok(Change {
        tool: "undo".into(),
        title: format!("undo change {}: {}", record.id, record.title),
        kubectl: kubectl.join("\n"),
        steps,
    })
}

/// The Secret whose values a recorded change added, changed or removed, if any: its
/// diff shows them only as redaction markers, so they cannot be put back.
fn changed_secret_values(record: &AuditRecord) -> Option<String> {
    let touched = record.diff.lines().any(|l| {
        (l.starts_with('+') || l.starts_with('-'))
            && !l.starts_with("+++")
            && !l.starts_with("---")
            && l.contains("<redacted")
    });
    if !touched {
        return None;
    }
    record
        .objects
        .iter()
        .find(|o| o.kind == "Secret" && o.api_version == "v1")
        .map(AuditObject::label)
}

fn kind_query(obj: &AuditObject) -> String {
    match obj.api_version.split_once('/') {
        Some((group, _)) => format!("{}.{group}", obj.kind),
        None => obj.kind.clone(),
    }
}

fn is_redacted_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && ["data", "stringData"].iter().any(|f| {
            obj.get(*f)
                .and_then(Value::as_object)
                .is_some_and(|m| m.values().any(|v| v.as_str() == Some(REDACTED)))
        })
}

/// The recorded object, made fit to create again.
fn recreate_body(obj: &AuditObject, before: &Value) -> Result<Value, ChangeError> {
    if is_redacted_secret(before) {
        return Err(ChangeError::Invalid(format!(
            "cannot re-create {}: Secret values are never written to the audit log; restore it from your source of truth",
            obj.label()
        )));
    }
    let mut body = before.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("status");
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            for k in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
                "managedFields",
                "selfLink",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                meta.remove(k);
            }
        }
    }
    Ok(body)
}

// Annotations controllers own; restoring an old value would confuse them.
use super::plan::CONTROLLER_ANNOTATIONS;

/// JSON-patch operations that replace the current spec/data/labels/annotations (and
/// every other top-level field but status) with the recorded ones. A replace, not a
/// merge: fields added by the change are removed.
fn restore_ops(before: &Value, current: &Value) -> Vec<Value> {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let c = current.as_object().unwrap_or(&empty);
    let secret = is_redacted_secret(before);
    let skip = |k: &str| {
        matches!(k, "apiVersion" | "kind" | "metadata" | "status")
            || (secret && matches!(k, "data" | "stringData"))
    };
    let mut ops = Vec::new();
    for (k, v) in b.iter().filter(|(k, _)| !skip(k)) {
        if c.get(k) != Some(v) {
            ops.push(json!({"op": "add", "path": format!("/{k}"), "value": v}));
        }
    }
    for k in c.keys().filter(|k| !skip(k) && !b.contains_key(*k)) {
        ops.push(json!({"op": "remove", "path": format!("/{k}")}));
    }
    for field in ["labels", "annotations"] {
        let mut want = before.pointer(&format!("/metadata/{field}")).cloned();
        let have = current.pointer(&format!("/metadata/{field}"));
        if field == "annotations" {
            // Keep the controller's own bookkeeping as it is now.
            let mut m = want
                .and_then(|w| w.as_object().cloned())
                .unwrap_or_default();
            for k in CONTROLLER_ANNOTATIONS {
                m.remove(*k);
                if let Some(v) = have.and_then(|h| h.get(*k)) {
                    m.insert((*k).to_string(), v.clone());
                }
            }
            want = (!m.is_empty()).then_some(Value::Object(m));
        }
        match (want, have) {
            (Some(w), h) if h != Some(&w) => {
                ops.push(json!({"op": "add", "path": format!("/metadata/{field}"), "value": w}))
            }
            (None, Some(_)) => {
                ops.push(json!({"op": "remove", "path": format!("/metadata/{field}")}))
            }
            _ => {}
        }
    }
    ops
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(id: &str, applied: bool) -> AuditRecord {
        AuditRecord {
            context: "c".into(),
            user: "u".into(),
            title: "scale Deployment shop/web to 3 replicas".into(),
            decision: if applied { "approved" } else { "denied" }.into(),
            ..crate::audit::tests::record(id, applied)
        }
    }

    #[test]
    fn selects_by_prefix_or_last_applied() {
        let rs = vec![
            rec("aaaa1111", true),
            rec("bbbb2222", true),
            rec("cccc3333", false),
        ];
        assert_eq!(select(&rs, None).unwrap().id, "bbbb2222");
        assert_eq!(select(&rs, Some("aaaa")).unwrap().id, "aaaa1111");
        assert!(select(&rs, Some("cccc"))
            .unwrap_err()
            .to_string()
            .contains("not applied"));
        assert!(select(&rs, Some("zz"))
            .unwrap_err()
            .to_string()
            .contains("no change with id"));
        assert!(select(&rs[2..], None).is_err());
    }

    #[test]
    fn restore_replaces_spec_and_metadata_maps() {
        let before = json!({"kind": "Deployment", "metadata": {"name": "w", "labels": {"a": "1"},
            "annotations": {"deployment.kubernetes.io/revision": "1"}}, "spec": {"replicas": 1}, "status": {"x": 1}});
        let current = json!({"kind": "Deployment", "metadata": {"name": "w", "labels": {"a": "1", "b": "2"},
            "annotations": {"deployment.kubernetes.io/revision": "2", "new": "x"}}, "spec": {"replicas": 3}, "status": {"x": 2}, "extra": true});
        let ops = restore_ops(&before, &current);
        assert!(
            ops.contains(&json!({"op": "add", "path": "/spec", "value": {"replicas": 1}})),
            "{ops:?}"
        );
        assert!(
            ops.contains(&json!({"op": "remove", "path": "/extra"})),
            "{ops:?}"
        );
        assert!(
            ops.contains(&json!({"op": "add", "path": "/metadata/labels", "value": {"a": "1"}})),
            "{ops:?}"
        );
        assert!(ops.contains(&json!({"op": "add", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "2"}})), "{ops:?}");
        assert!(!ops.iter().any(|o| o["path"] == "/status"));
        assert!(restore_ops(&before, &before).is_empty());
    }

    #[test]
    fn redacted_secret_data_is_never_restored() {
        let before = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": REDACTED}});
        let current = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "bmV3"}});
        assert!(restore_ops(&before, &current).is_empty());
        let obj = AuditObject {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("n".into()),
            name: "s".into(),
            before: Some(before.clone()),
            after: None,
            applied: true,
            error: None,
        };
        assert!(recreate_body(&obj, &before)
            .unwrap_err()
            .to_string()
            .contains("never written"));
    }

    #[tokio::test]
    async fn history_lists_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        history_cmd(dir.path(), &mut out).await.unwrap();
        assert!(String::from_utf8_lossy(&out).contains("no changes recorded yet"));
        audit::append(dir.path(), &rec("aaaa1111", true)).unwrap();
        let mut out = Vec::new();
        history_cmd(dir.path(), &mut out).await.unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("aaaa1111")
                && s.contains("approved")
                && s.contains("Deployment shop/web")
                && s.contains("scale"),
            "{s}"
        );
    }
}
