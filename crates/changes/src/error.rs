//! What can go wrong with a change, in words the model and the user can act on.

use kai_cluster::ClusterError;

use crate::audit;
use kai_cluster::write::PatchType;

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
