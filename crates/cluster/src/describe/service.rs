//! Rendering a Service: type, ports, selector, the pods it matches and its endpoints.
//! Pure: the Service, its Endpoints and pods were read in [`super::read`].

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::common::{header, kv, object_events, or_none};
use super::read::ServiceRead;
use crate::objects;

pub(super) fn render(r: ServiceRead, name: &str) -> String {
    let ServiceRead { svc, ep, pods, evs } = r;
    let spec = svc.spec.clone().unwrap_or_default();
    let selector = spec.selector.clone().unwrap_or_default();
    let mut out = String::new();
    header(&mut out, "Service", &svc.metadata);
    w!(
        out,
        "Type: {}",
        spec.type_.clone().unwrap_or_else(|| "ClusterIP".into())
    );
    w!(
        out,
        "Cluster IP: {}",
        spec.cluster_ip.clone().unwrap_or_default()
    );
    if let Some(ext) = &spec.external_name {
        w!(out, "External name: {ext}");
    }
    w!(
        out,
        "Selector: {}",
        if selector.is_empty() {
            "<none> (endpoints are managed by hand)".into()
        } else {
            kv(&selector)
        }
    );
    for p in spec.ports.iter().flatten() {
        let target = p
            .target_port
            .as_ref()
            .map(|t| match t {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
            })
            .unwrap_or_else(|| p.port.to_string());
        w!(
            out,
            "Port: {} {}/{} → target {target}{}",
            p.name.clone().unwrap_or_else(|| "<unnamed>".into()),
            p.port,
            p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            p.node_port
                .map(|n| format!(", nodePort {n}"))
                .unwrap_or_default()
        );
    }
    if !selector.is_empty() {
        match &pods {
            Ok(p) if p.is_empty() => {
                w!(out, "Pods matching the selector: NONE (check the selector against the pods' labels)");
            }
            Ok(p) => {
                let ready = p
                    .iter()
                    .filter(|p| {
                        let (r, _, _) = objects::pod_summary(p);
                        r.split_once('/').is_some_and(|(a, b)| a == b && a != "0")
                    })
                    .count();
                w!(
                    out,
                    "Pods matching the selector: {} ({ready} ready)",
                    p.len()
                );
            }
            Err(e) => {
                w!(
                    out,
                    "Pods matching the selector: could not list ({})",
                    e.short()
                );
            }
        }
    }
    match ep {
        Ok(Some(ep)) => {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            let mut ports = BTreeSet::new();
            for s in ep.subsets.iter().flatten() {
                for a in s.addresses.iter().flatten() {
                    ready.push(addr(a));
                }
                for a in s.not_ready_addresses.iter().flatten() {
                    not_ready.push(addr(a));
                }
                for p in s.ports.iter().flatten() {
                    ports.insert(p.port);
                }
            }
            let ports = ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",");
            w!(
                out,
                "Endpoints ready ({}): {}",
                ready.len(),
                or_none(&ready.join(", "))
            );
            w!(
                out,
                "Endpoints not ready ({}): {}",
                not_ready.len(),
                or_none(&not_ready.join(", "))
            );
            if !ports.is_empty() {
                w!(out, "Endpoint ports: {ports}");
            }
        }
        Ok(None) => {
            w!(out, "Endpoints: none (no Endpoints object)");
        }
        Err(e) => {
            w!(out, "Endpoints: could not read ({})", e.short());
        }
    }
    object_events(&mut out, &evs, "Service", name);
    out
}

fn addr(a: &k8s_openapi::api::core::v1::EndpointAddress) -> String {
    match a.target_ref.as_ref().and_then(|t| t.name.clone()) {
        Some(n) => format!("{} ({n})", a.ip),
        None => a.ip.clone(),
    }
}
