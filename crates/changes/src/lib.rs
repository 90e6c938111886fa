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

//!
//! # Layout
//!
//! [`plan`] and [`danger`] decide (pure, unit-tested); [`pipeline`] executes against a
//! [`store::Store`] (the cluster, or an in-memory store in tests); [`record`] builds the
//! audit records [`audit`] writes; [`step`] holds what a change is; [`undo`] and
//! [`propose`] build changes from the audit log and from analyzer fixes.

pub mod audit;
pub mod danger;
pub mod diff;
mod error;
#[cfg(test)]
mod memstore;
pub mod pipeline;
pub mod plan;
mod propose;
mod record;
mod step;
pub mod store;
mod undo;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use kai_cluster::Cluster;
use kai_core::tools::Approver;

pub use error::{parse_patch_type, ChangeError};
pub use kai_cluster::write::FIELD_MANAGER;
pub use pipeline::{dry_run_only, read_step, run_with};
pub use propose::{parse_patch, propose_change, ProposedFix};
pub use step::{kubectl_ns, kubectl_ref, shell_quote, Action, Change, Outcome, PatchType, Step};
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

/// Run `change` on the environment's cluster. See [`run_with`].
pub async fn run(env: &ChangeEnv, change: &Change) -> Result<Outcome, ChangeError> {
    run_with(
        env.cluster.as_ref(),
        env.approver.as_ref(),
        env.auto_approve,
        &env.data_dir,
        change,
    )
    .await
}

/// The live object of `step` on `cluster` (tools read it to build a change).
pub async fn read_live(cluster: &Cluster, step: &Step) -> Result<Option<Value>, ChangeError> {
    read_step(cluster, step).await
}

/// The change `patch_resource` proposes (shared with analyzer proposals).
pub use propose::patch_change as patch_change_for_tool;

/// The `tool` of an analyzer fix proposed as one step ("apply the suggested fix? [y/N]").
pub const PROPOSAL_TOOL: &str = "propose_fix";
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
