//! Describe-style summaries: what `kubectl describe` shows, minus what a diagnosis never
//! needs, plus what it does (owner chain, referenced Secrets/ConfigMaps checked for
//! existence, the pods of a workload summarized), followed by the object's events.
//!
//! Values from Secrets are never rendered: env vars show their reference, referenced
//! Secrets are checked for existence and key names only.
//!
//! Every read goes through a [`NamespaceView`]: a describe on its own makes the narrow
//! requests it always made, and one inside a pre-gathered turn takes the turn's lists.
//! A read that fails is a line saying what could not be read and why, never an empty
//! section.
//!
//! Reading and rendering are apart: [`read`] gathers what a describe needs (the object,
//! its owners, pods, events, references) into small structs; `pod`, `workload`,
//! `service`, `node` and `generic` turn those into text without touching the cluster,
//! and `common` holds the sections they share.

use super::budget;
use super::{Cluster, ClusterError, NamespaceView};
use kai_text::redact;

/// Events shown under a describe, at most.
const MAX_EVENTS: usize = 15;
/// Pods of a workload listed one per line, at most.
const MAX_PODS: usize = 10;

macro_rules! w {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

mod common;
mod generic;
mod node;
mod pod;
mod read;
mod service;
mod workload;

pub use read::owner_chain;

/// `describe` reading through `view` (a turn's view of the object's namespace).
pub async fn describe_in(
    view: &NamespaceView<'_>,
    kind: &str,
    name: &str,
    budget_chars: usize,
) -> Result<String, ClusterError> {
    let cluster = view.cluster();
    let kind = cluster.resolve(kind).await?;
    let ns = match view.namespace() {
        Some(ns) => ns.to_string(),
        None => {
            return Err(ClusterError::Other(
                "describe needs one namespace, not all of them".into(),
            ))
        }
    };
    Cluster::check_name(&kind, name)?;
    let builtin_group = matches!(kind.resource.group.as_str(), "" | "apps" | "batch");
    let t = read::Target {
        view,
        kind: &kind,
        name,
    };
    let text = match (builtin_group, kind.resource.kind.as_str()) {
        (true, "Pod") => pod::render(read::pod(t).await?, name, &ns),
        (true, "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job") => {
            workload::render(read::workload(t).await?, &kind.resource.kind, name)
        }
        (true, "Service") => service::render(read::service(t).await?, name),
        (true, "Node") => node::render(read::node(t).await?, name),
        _ => generic::render(read::generic(t, &ns).await?, &kind, name)?,
    };
    let text = redact::scrub(&text);
    Ok(budget::fit_text(
        &text,
        budget_chars,
        "use list_events, get_logs or get_resource for the parts that were cut",
    ))
}
