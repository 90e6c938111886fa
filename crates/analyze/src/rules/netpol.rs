//! NetworkPolicies, read statically: a Service's pods isolated for Ingress with no rule
//! admitting the Service's port, and workloads isolated for Egress with no rule for DNS.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use crate::finding::{Cause, Finding, ObjectRef, ProposedChange};
use crate::snapshot::{labels_of, name_of, ns_of, Snapshot};

/// Does a full label selector (matchLabels and matchExpressions) match these labels?
pub(crate) fn label_selector_matches(
    sel: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|e| {
        let v = labels.get(&e.key);
        let vals = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => v.is_some_and(|v| vals.contains(v)),
            "NotIn" => v.is_none_or(|v| !vals.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

fn policy_types(p: &NetworkPolicy) -> (bool, bool) {
    let spec = p.spec.as_ref();
    match spec.and_then(|s| s.policy_types.as_ref()) {
        Some(t) => (
            t.iter().any(|x| x == "Ingress"),
            t.iter().any(|x| x == "Egress"),
        ),
        // The API's default: Ingress always, Egress when there are egress rules.
        None => (true, spec.is_some_and(|s| s.egress.is_some())),
    }
}

fn selects(p: &NetworkPolicy, pod: &Pod) -> bool {
    ns_of(&p.metadata) == ns_of(&pod.metadata)
        && p.spec.as_ref().is_some_and(|s| {
            s.pod_selector
                .as_ref()
                .is_none_or(|sel| label_selector_matches(sel, &labels_of(&pod.metadata)))
        })
}

/// Does a rule's port list admit `port` (a number and the container port's name)?
fn ports_admit(
    ports: Option<&Vec<NetworkPolicyPort>>,
    num: i32,
    name: Option<&str>,
    proto: &str,
) -> bool {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return true;
    };
    ports.iter().any(|p| {
        let proto_ok = p.protocol.as_deref().unwrap_or("TCP") == proto;
        let port_ok = match &p.port {
            None => true,
            Some(IntOrString::Int(n)) => {
                *n == num || p.end_port.is_some_and(|end| num >= *n && num <= end)
            }
            Some(IntOrString::String(s)) => Some(s.as_str()) == name,
        };
        proto_ok && port_ok
    })
}

/// The container port a Service port lands on: (number, name).
fn target_port(
    svc_port: &k8s_openapi::api::core::v1::ServicePort,
    pod: &Pod,
) -> Option<(i32, Option<String>)> {
    let ports: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .collect();
    match svc_port.target_port.as_ref() {
        None => Some((
            svc_port.port,
            ports
                .iter()
                .find(|p| p.container_port == svc_port.port)
                .and_then(|p| p.name.clone()),
        )),
        Some(IntOrString::Int(n)) => Some((
            *n,
            ports
                .iter()
                .find(|p| p.container_port == *n)
                .and_then(|p| p.name.clone()),
        )),
        Some(IntOrString::String(name)) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| (p.container_port, Some(name.clone()))),
    }
}

fn ingress_rules(p: &NetworkPolicy) -> &[NetworkPolicyIngressRule] {
    p.spec
        .as_ref()
        .and_then(|s| s.ingress.as_deref())
        .unwrap_or_default()
}

fn egress_rules(p: &NetworkPolicy) -> &[NetworkPolicyEgressRule] {
    p.spec
        .as_ref()
        .and_then(|s| s.egress.as_deref())
        .unwrap_or_default()
}

fn as_json(rule: &impl serde::Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(rule).ok()
}

fn change_of(p: &NetworkPolicy, field: &str, rule: serde_json::Value) -> ProposedChange {
    let mut rules: Vec<serde_json::Value> = match field {
        "ingress" => ingress_rules(p).iter().filter_map(as_json).collect(),
        _ => egress_rules(p).iter().filter_map(as_json).collect(),
    };
    rules.push(rule);
    // Rules have no merge key: the patch carries the whole list.
    ProposedChange::merge(
        "NetworkPolicy",
        ns_of(&p.metadata),
        name_of(&p.metadata),
        json!({"spec": {field: rules}}),
    )
}

pub fn network_policies(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    if snap.network_policies.is_empty() {
        return out;
    }
    for svc in &snap.services {
        if let Some(f) = service_blocked(snap, svc) {
            out.push(f);
        }
    }
    let mut seen: Vec<ObjectRef> = Vec::new();
    for pod in &snap.pods {
        let owner = snap.top_owner(pod);
        if seen.contains(&owner) {
            continue;
        }
        seen.push(owner.clone());
        let egress: Vec<&NetworkPolicy> = snap
            .network_policies
            .iter()
            .filter(|p| policy_types(p).1 && selects(p, pod))
            .collect();
        let Some(first) = egress.first() else {
            continue;
        };
        let dns_ok = egress.iter().any(|p| {
            egress_rules(p)
                .iter()
                .any(|r| ports_admit(r.ports.as_ref(), 53, None, "UDP"))
        });
        if dns_ok {
            continue;
        }
        let mut f = Finding::new(
            Cause::NetworkPolicyBlocksDns,
            owner,
            "egress is restricted by NetworkPolicy and no rule allows DNS (port 53): name lookups fail",
        );
        for p in &egress {
            let n = egress_rules(p).len();
            f = f.evidence(format!(
                "NetworkPolicy {} restricts egress of these pods ({n} egress rule(s), none to port 53)",
                name_of(&p.metadata)
            ));
        }
        let change = change_of(
            first,
            "egress",
            json!({"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}),
        );
        out.push(f.fix(
            format!("Allow DNS egress in NetworkPolicy {}: a rule to port 53 over UDP and TCP (narrow `to` to the kube-system namespace's DNS pods if you like).", name_of(&first.metadata)),
            Some(change),
        ));
    }
    out
}

fn service_blocked(snap: &Snapshot, svc: &Service) -> Option<Finding> {
    let ns = ns_of(&svc.metadata);
    let sel = svc
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())?;
    let pods: Vec<&Pod> = snap.pods_matching(ns, sel).collect();
    let pod = pods.first()?;
    let ingress: Vec<&NetworkPolicy> = snap
        .network_policies
        .iter()
        .filter(|p| policy_types(p).0 && selects(p, pod))
        .collect();
    let first = *ingress.first()?;
    let mut blocked = Vec::new();
    for sp in svc.spec.as_ref()?.ports.iter().flatten() {
        let Some((num, name)) = target_port(sp, pod) else {
            continue;
        };
        let proto = sp.protocol.as_deref().unwrap_or("TCP");
        let admitted = ingress.iter().any(|p| {
            ingress_rules(p)
                .iter()
                .any(|r| ports_admit(r.ports.as_ref(), num, name.as_deref(), proto))
        });
        if !admitted {
            blocked.push((num, proto.to_string()));
        }
    }
    let (num, proto) = blocked.first().cloned()?;
    let svc_name = name_of(&svc.metadata);
    let mut f = Finding::new(
        Cause::NetworkPolicyBlocksService,
        ObjectRef::new("Service", Some(ns), svc_name),
        format!("NetworkPolicy isolates the pods of Service {svc_name} and admits no traffic to port {num}/{proto}: its clients time out"),
    );
    for p in &ingress {
        let rules = ingress_rules(p);
        let ports: Vec<String> = rules
            .iter()
            .flat_map(|r| r.ports.iter().flatten())
            .map(|p| match &p.port {
                Some(IntOrString::Int(n)) => {
                    format!("{n}/{}", p.protocol.as_deref().unwrap_or("TCP"))
                }
                Some(IntOrString::String(s)) => s.clone(),
                None => "all".into(),
            })
            .collect();
        f = f.evidence(format!(
            "NetworkPolicy {} selects the pods for Ingress and admits {}",
            name_of(&p.metadata),
            if rules.is_empty() {
                "nothing".to_string()
            } else if ports.is_empty() {
                "some sources on all ports".to_string()
            } else {
                format!("only port(s) {}", ports.join(", "))
            }
        ));
    }
    f = f.evidence(format!("Service {svc_name} sends to port {num}/{proto}"));
    let change = change_of(
        first,
        "ingress",
        json!({"from": [{"podSelector": {}}], "ports": [{"port": num, "protocol": proto}]}),
    );
    Some(f.fix(
        format!("Admit the Service's clients on port {num}/{proto} in NetworkPolicy {} (the proposed rule admits every pod of the namespace; add a namespaceSelector for clients elsewhere, such as the ingress controller).", name_of(&first.metadata)),
        Some(change),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rules::testutil::*;

    fn setup() -> Snapshot {
        let mut s = snap();
        let spec = app_spec();
        add_ready_deployment(&mut s, "api", spec);
        s.services
            .push(obj(json!({"metadata": {"name": "api", "namespace": NS},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}})));
        s
    }

    #[test]
    fn ingress_policy_without_the_service_port_blocks_it() {
        let mut s = setup();
        s.network_policies.push(obj(
            json!({"metadata": {"name": "lockdown", "namespace": NS},
            "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"port": 9090}]}]}}),
        ));
        let f = network_policies(&s);
        assert_eq!(causes(&f), ["network-policy-blocks-service"]);
        assert!(evidence_has(&f[0], "only port(s) 9090/TCP"));
        let p = &f[0].fix.change.as_ref().unwrap().patch;
        assert_eq!(p["spec"]["ingress"][1]["ports"][0]["port"], json!(8080));
        // Admitting the port is quiet.
        s.network_policies[0] = obj(json!({"metadata": {"name": "lockdown", "namespace": NS},
            "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 8080}]}]}}));
        assert!(network_policies(&s).is_empty());
    }

    #[test]
    fn egress_without_dns() {
        let mut s = setup();
        s.network_policies
            .push(obj(json!({"metadata": {"name": "egress", "namespace": NS},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"ports": [{"port": 5432}]}]}})));
        let f = network_policies(&s);
        assert_eq!(causes(&f), ["network-policy-blocks-dns"]);
        assert_eq!(f[0].object, ObjectRef::new("Deployment", Some(NS), "api"));
        s.network_policies[0] = obj(json!({"metadata": {"name": "egress", "namespace": NS},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"ports": [{"port": 5432}]}, {"ports": [{"port": 53, "protocol": "UDP"}]}]}}));
        assert!(network_policies(&s).is_empty());
    }
}
