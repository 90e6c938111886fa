//! Deterministic analyzers: cluster state in, ranked root-cause findings out.
//!
//! Three layers, so each can be tested on its own:
//! - the read (kai-cluster's `fetch`): one concurrent, paginated read of the cluster into
//!   a [`Snapshot`] (Secrets reduced to key names on arrival, 403s recorded instead of
//!   failing);
//! - [`rules`]: pure functions `&Snapshot -> Vec<Finding>`, no I/O;
//! - [`resolve`]: which findings concern a target, by walking the object graph.
//!
//! This crate is the pure part: no Kubernetes client and no async runtime, so a rule
//! cannot do I/O. `kai scan`, `kai diagnose` and the agent's `analyze` tool all sit on
//! [`scan_snapshot`] and [`diagnose_snapshot`]; [`render_text`] and [`to_json`] are their
//! output forms.

pub mod cause;
pub mod finding;
pub mod owners;
pub mod quantity;
pub mod refs;
mod render;
pub mod resolve;
pub mod rules;
pub mod selector;
pub mod snapshot;

pub use cause::{Cause, UnknownCause};
pub use finding::{Finding, Fix, ObjectRef, ProposedChange, Severity};
pub use render::{render_text, render_text_with, to_json};
pub use snapshot::{Forbidden, KeysOnly, Snapshot, TlsCert};

/// A target the analyzers cannot resolve. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{target} not found in namespace {namespace:?}{hint}; run `kai scan -n {namespace}` to see what is there, or pass -n with the right namespace", hint = suggest(.suggestions))]
    NotFound {
        target: String,
        namespace: String,
        suggestions: Vec<String>,
    },
    #[error("cannot understand target {target:?}: {reason}; use NAME or KIND/NAME with KIND one of deploy, sts, ds, rs, pod, svc, ing, job, cronjob, pvc, node, sa, role, rolebinding, clusterrole, clusterrolebinding, netpol, hpa, pdb, secret")]
    InvalidTarget { target: String, reason: String },
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", s.join(", "))
    }
}

/// Every finding in a snapshot, most important first. Cluster-scoped findings (nodes)
/// are kept for a namespaced snapshot only if they affect a pod in it.
pub fn scan_snapshot(snap: &Snapshot) -> Vec<Finding> {
    let findings = rules::run_all(snap);
    if snap.namespace.is_none() {
        return findings;
    }
    findings
        .into_iter()
        .filter(|f| f.object.kind != "Node" || f.count > 0)
        .collect()
}

/// Findings about `target` (`KIND/NAME` or a bare `NAME`) and the objects around it;
/// all findings in the snapshot when `target` is `None`.
pub fn diagnose_snapshot(
    snap: &Snapshot,
    target: Option<&str>,
) -> Result<Vec<Finding>, TargetError> {
    match target.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(scan_snapshot(snap)),
        Some(t) => resolve::diagnose_target(snap, rules::run_all(snap), t),
    }
}
