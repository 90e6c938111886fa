//! The executor: dry run, diff, ask, re-check, record as pending, write, record the
//! outcome. Every decision it makes is a pure function of [`crate::plan`] or
//! [`crate::danger`]; everything it sends goes through a [`Store`], so the whole path is
//! tested in memory (below) as well as against the real cluster (tests/changes.rs).

use std::path::Path;

use serde_json::Value;

use crate::audit;
use crate::diff;
use crate::error::ChangeError;
use crate::plan::{self, Freshness};
use crate::record::{new_id, Objects, Recorder};
use crate::step::{Action, Change, Outcome, PatchType, Step};
use crate::store::{Store, StoreError};
use kai_cluster::ClusterError;
use kai_core::agent::protocol::{ApprovalRequest, Decision};
use kai_core::tools::Approver;

/// How often a change is re-diffed and re-asked when the object keeps changing.
const MAX_ROUNDS: usize = 3;
/// How often a write is retried when only bookkeeping moved under it.
const MAX_BOOKKEEPING_RETRIES: u64 = 6;

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
async fn moved_under(e: &StoreError, store: &dyn Store, step: &Step, rv: Option<&str>) -> bool {
    let Some(s) = e.api() else {
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
    match read_step(store, step).await {
        Ok(now) => rv_of(now.as_ref()).as_deref() != rv,
        Err(_) => false,
    }
}

fn classify(e: StoreError, step: &Step, dry: bool) -> ChangeError {
    match e {
        StoreError::Api(s) if s.code == 403 => ChangeError::Forbidden {
            verb: step.rbac_verb().into(),
            resource: step.resource(),
            message: s.message,
        },
        StoreError::Api(s) if dry && s.code != 401 => {
            ChangeError::DryRunRejected(format!("{} ({} {})", s.message, s.code, s.reason))
        }
        StoreError::Api(s) if s.code == 401 => {
            ChangeError::Cluster(ClusterError::Unauthorized(s.message))
        }
        StoreError::Api(s) if s.code == 404 => {
            ChangeError::Cluster(ClusterError::Api(if s.message.is_empty() {
                format!("{} not found", step.resource())
            } else {
                s.message
            }))
        }
        StoreError::Api(s) => {
            ChangeError::Cluster(ClusterError::Api(format!("{} ({})", s.message, s.reason)))
        }
        StoreError::Cluster(c) => ChangeError::Cluster(c),
        StoreError::Invalid(m) => ChangeError::Invalid(m),
    }
}

/// The live object of a step through `store`; a Secret's values are remembered so they
/// are scrubbed wherever they appear later (a dry run's error message can echo them).
pub async fn read_step(store: &dyn Store, step: &Step) -> Result<Option<Value>, ChangeError> {
    let live = match store.read(&step.target).await {
        Ok(v) => v,
        Err(StoreError::Api(s)) if s.code == 403 => {
            return Err(ChangeError::Forbidden {
                verb: "get".into(),
                resource: step.resource(),
                message: s.message,
            })
        }
        Err(e) => return Err(classify(e, step, false)),
    };
    if step.is_secret() {
        if let Some(v) = &live {
            kai_text::redact::remember_secret(v);
        }
    }
    Ok(live)
}

/// Read the live object and dry-run the request with its resourceVersion. A conflict
/// here only means a controller wrote in between (status updates do all the time): read
/// again, a few times, before giving up.
async fn dry_run_step(store: &dyn Store, step: &Step) -> Result<Prepared, ChangeError> {
    for attempt in 0..5u64 {
        let live = read_step(store, step).await?;
        if live.is_none() && matches!(step.action, Action::Patch(..) | Action::Delete) {
            return Err(ClusterError::NotFound {
                kind: step.kind().resource.kind.clone(),
                name: step.name().to_string(),
                namespace: step.namespace().map(String::from),
            }
            .into());
        }
        let rv = rv_of(live.as_ref());
        match store.dry_run(&step.request(rv.as_deref(), true)).await {
            Ok(result) => {
                // The values a change would write into a Secret are as secret as the
                // ones it replaces: a copy of them elsewhere is scrubbed too.
                if let (true, Some(r)) = (step.is_secret(), &result) {
                    kai_text::redact::remember_secret(r);
                }
                return Ok(Prepared { live, result });
            }
            Err(e) => {
                if !moved_under(&e, store, step, rv.as_deref()).await {
                    return Err(classify(e, step, true));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100 * (attempt + 1))).await;
            }
        }
    }
    Err(ChangeError::KeepsChanging(step.label()))
}

/// The server's answer to `step` as a dry run only (`dryRun=All`): what it would store,
/// or why it refuses. Nothing is asked, applied or audited; `kai generate` checks its
/// drafts with this.
pub async fn dry_run_only(store: &dyn Store, step: &Step) -> Result<Option<Value>, ChangeError> {
    dry_run_step(store, step).await.map(|p| p.result)
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
    store: &dyn Store,
    step: &Step,
    approved: &mut Prepared,
    before_send: &mut (dyn FnMut(&Prepared) -> Result<(), ChangeError> + Send),
) -> Result<Option<Value>, ApplyError> {
    for attempt in 0..MAX_BOOKKEEPING_RETRIES {
        let now = read_step(store, step).await.map_err(ApplyError::Change)?;
        match plan::freshness(approved.live.as_ref(), now.as_ref()) {
            Freshness::Changed => return Err(ApplyError::Stale),
            Freshness::OnlyBookkeeping => {
                let rv = rv_of(now.as_ref());
                let result = match store.dry_run(&step.request(rv.as_deref(), true)).await {
                    Ok(r) => r,
                    Err(e) => {
                        if moved_under(&e, store, step, rv.as_deref()).await {
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
        before_send(approved).map_err(ApplyError::Change)?;
        match store.write(&step.request(rv.as_deref(), false)).await {
            Ok(after) => return Ok(after),
            Err(e) => {
                // Lost a race in the instant since the re-read: look again.
                if moved_under(&e, store, step, rv.as_deref()).await {
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

/// The pipeline over any store: see the crate documentation for the order and the
/// guarantees. `auto_approve` is the user's `--yes`.
pub async fn run_with(
    store: &dyn Store,
    approver: &dyn Approver,
    auto_approve: bool,
    data_dir: &Path,
    change: &Change,
) -> Result<Outcome, ChangeError> {
    if change.steps.is_empty() {
        return Err(ChangeError::Invalid(
            "the change has no objects; nothing to do".into(),
        ));
    }
    // Refuse before asking: a change kai cannot record is a change it does not make.
    audit::check_writable(data_dir)?;
    let rec = Recorder {
        data_dir,
        context: store.context(),
        user: store.user(),
        change,
    };

    let mut stale = false;
    'round: for _ in 0..MAX_ROUNDS {
        // (a) read live state and dry-run exactly what will be sent.
        let mut prepared = Vec::with_capacity(change.steps.len());
        for step in &change.steps {
            prepared.push(dry_run_step(store, step).await?);
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
        let auto = auto_approve;
        let decision = if auto {
            Decision::Approved
        } else {
            approver.request(req.clone()).await
        };
        let lives = |p: &[Prepared]| p.iter().map(|p| p.live.clone()).collect::<Vec<_>>();
        // Every audit record of this round is about the same request and decision.
        let record = |objs: Objects<'_>, error: Option<String>, status: Option<&str>| {
            rec.write(&req, &decision, auto, objs, error, status)
        };
        if !decision.is_approved() {
            record(Objects::unapplied(&lives(&prepared)), None, None)?;
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
                record(Objects::unapplied(&l), None, Some(audit::PENDING))?;
                pending_written = true;
                Ok(())
            };
            let mut p = prepared[i].clone();
            let r = apply_step(store, step, &mut p, &mut before_send).await;
            prepared[i] = p;
            match r {
                Ok(after) => {
                    afters.push(after);
                    applied.push(true);
                }
                Err(ApplyError::Stale) if applied.is_empty() => {
                    record(
                        Objects::unapplied(&lives(&prepared)),
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
                    record(
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
        record(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "pipeline_tests.rs"]
mod tests;
