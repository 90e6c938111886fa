//! Rendering a Node: taints, conditions, capacity, the pods on it and their requests.
//! Pure: the node, its pods (all namespaces) and events were read in [`super::read`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kai_analyze::quantity::parse_quantity;

use super::common::{header, object_events, or_none};
use super::read::NodeRead;
use super::MAX_PODS;
use crate::objects::{self, age};

pub(super) fn render(r: NodeRead, name: &str) -> String {
    let NodeRead { node, pods, evs } = r;
    let mut out = String::new();
    header(&mut out, "Node", &node.metadata);
    let spec = node.spec.clone().unwrap_or_default();
    let st = node.status.clone().unwrap_or_default();
    if spec.unschedulable == Some(true) {
        w!(out, "Unschedulable: true (cordoned)");
    }
    let taints: Vec<String> = spec
        .taints
        .iter()
        .flatten()
        .map(|t| {
            format!(
                "{}={}:{}",
                t.key,
                t.value.clone().unwrap_or_default(),
                t.effect
            )
        })
        .collect();
    w!(out, "Taints: {}", or_none(&taints.join(", ")));
    w!(out, "Conditions:");
    for c in st.conditions.iter().flatten() {
        w!(
            out,
            "  {}={} {}: {} (last heartbeat {})",
            c.type_,
            c.status,
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
            c.last_heartbeat_time
                .as_ref()
                .map(|t| format!("{} ago", age(t.0)))
                .unwrap_or_else(|| "?".into())
        );
    }
    let q = |m: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        m.iter()
            .flatten()
            .filter(|(k, _)| ["cpu", "memory", "pods", "ephemeral-storage"].contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={}", v.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    w!(out, "Capacity: {}", or_none(&q(&st.capacity)));
    w!(out, "Allocatable: {}", or_none(&q(&st.allocatable)));
    if let Some(info) = &st.node_info {
        w!(
            out,
            "Kubelet: {}, OS: {}, runtime: {}",
            info.kubelet_version,
            info.os_image,
            info.container_runtime_version
        );
    }
    let addrs: Vec<String> = st
        .addresses
        .iter()
        .flatten()
        .map(|a| format!("{}={}", a.type_, a.address))
        .collect();
    w!(out, "Addresses: {}", or_none(&addrs.join(", ")));
    match pods {
        Ok(list) => {
            let mut reqs: BTreeMap<&str, f64> = BTreeMap::new();
            for p in &list {
                for c in p.spec.iter().flat_map(|s| s.containers.iter()) {
                    for (k, v) in c.resources.iter().flat_map(|r| r.requests.iter().flatten()) {
                        if let Some(x) = parse_quantity(&v.0) {
                            if k == "cpu" || k == "memory" {
                                *reqs
                                    .entry(if k == "cpu" { "cpu" } else { "memory" })
                                    .or_default() += x;
                            }
                        }
                    }
                }
            }
            w!(
                out,
                "Pods on this node: {} (requests: cpu {:.2} cores, memory {:.0} Mi)",
                list.len(),
                reqs.get("cpu").copied().unwrap_or(0.0),
                reqs.get("memory").copied().unwrap_or(0.0) / (1024.0 * 1024.0)
            );
            let problems: Vec<String> = list
                .iter()
                .filter_map(|p| {
                    let (ready, status, restarts) = objects::pod_summary(p);
                    let healthy = (status == "Running"
                        && ready.split_once('/').is_some_and(|(a, b)| a == b))
                        || status == "Completed"
                        || status == "Succeeded";
                    (!healthy).then(|| {
                        format!(
                            "  {}/{} {ready} {status}, restarts {restarts}",
                            p.metadata.namespace.clone().unwrap_or_default(),
                            p.metadata.name.clone().unwrap_or_default()
                        )
                    })
                })
                .collect();
            if !problems.is_empty() {
                w!(out, "Pods not running and ready ({}):", problems.len());
                for l in problems.iter().take(MAX_PODS) {
                    w!(out, "{l}");
                }
            }
        }
        Err(e) => {
            w!(out, "Pods on this node: could not list ({})", e.short());
        }
    }
    object_events(&mut out, &evs, "Node", name);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        // Node requests are summed with the analyzers' parser (kai-analyze's quantity).
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("2"), Some(2.0));
    }
}
