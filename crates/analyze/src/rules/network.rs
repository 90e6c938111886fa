//! Services that route nowhere and Ingresses that point at missing Services.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::api::networking::v1::IngressServiceBackend;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value};

use super::pods::{diagnose_pod, on_not_ready_node, pod_ready};
use super::scheduling::blocked_on_pvc;
use super::{names, near_misses};
use crate::finding::{push_unique, Cause, Finding, ObjectRef, ProposedChange};
use crate::snapshot::{find_named, in_namespace, name_of, ns_of, with_spec, Snapshot};

fn show_selector(sel: &BTreeMap<String, String>) -> String {
    sel.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn services(snap: &Snapshot) -> Vec<Finding> {
    if snap.is_forbidden("pods") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for svc in &snap.services {
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        // No selector: endpoints are managed by hand (or by another controller).
        let Some(sel) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let ns = ns_of(&svc.metadata);
        let name = name_of(&svc.metadata);
        let obj = ObjectRef::new("Service", Some(ns), name);
        let pods = selected_pods(snap, ns, sel);
        if pods.is_empty() {
            out.push(no_matching_pods(snap, svc, sel, obj));
            continue;
        }
        if let Some(f) = port_mismatch(svc, &pods, obj.clone()) {
            out.push(f);
            continue;
        }
        if !pods.iter().any(|p| pod_ready(p)) {
            let mut f = Finding::new(
                Cause::ServiceNoReadyEndpoints,
                obj,
                format!("selects {} pod(s), none of them ready: the Service has no endpoints to send traffic to", pods.len()),
            )
            .evidence(format!("selector {} matches {} pod(s), 0 ready", show_selector(sel), pods.len()));
            for p in pods.iter().take(3) {
                f = f.evidence(format!("pod {} is not ready", name_of(&p.metadata)));
            }
            out.push(f.affecting(pods.len()).advice("Fix the selected pods (see their own findings); the Service recovers once one is ready."));
        }
    }
    out
}

/// The pods a Service would route to: selected and not finished.
fn selected_pods<'a>(
    snap: &'a Snapshot,
    ns: &'a str,
    sel: &'a BTreeMap<String, String>,
) -> Vec<&'a Pod> {
    snap.pods_matching(ns, sel)
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .collect()
}

/// One finding per root cause: a Service with no ready endpoints is a consequence, not a
/// cause, when every pod it selects already has a finding of its own (the crash-looping
/// Deployment, the NotReady node, the unbound claim). Then the Service finding goes, and
/// each of those findings says which Service it takes down. It stays when some selected
/// pod is unexplained (e.g. still starting, or no rule knows why it is not ready).
pub fn fold_unready_services(snap: &Snapshot, findings: &mut Vec<Finding>) {
    // Decide on the findings as the rules left them, then edit: (Service finding, the
    // findings that explain all its pods).
    let mut plan: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        if f.cause != Cause::ServiceNoReadyEndpoints {
            continue;
        }
        let ns = f.object.namespace.as_deref().unwrap_or_default();
        let Some(sel) = find_named(&snap.services, ns, &f.object.name)
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.selector.as_ref())
        else {
            continue;
        };
        let covering: Option<Vec<usize>> = selected_pods(snap, ns, sel)
            .into_iter()
            .map(|p| covering_finding(snap, p, findings))
            .collect();
        if let Some(mut covering) = covering.filter(|c| !c.is_empty()) {
            covering.sort_unstable();
            covering.dedup();
            plan.push((i, covering));
        }
    }
    for (svc, covering) in &plan {
        let Some(note) = findings
            .get(*svc)
            .map(|f| format!("{} has no ready endpoints because of this", f.object))
        else {
            continue;
        };
        for &c in covering {
            if let Some(f) = findings.get_mut(c) {
                push_unique(&mut f.evidence, note.clone());
            }
        }
    }
    let mut i = 0;
    findings.retain(|_| {
        let keep = !plan.iter().any(|(svc, _)| *svc == i);
        i += 1;
        keep
    });
}

/// The finding (by position) that explains why `pod` is not ready, if there is one: its
/// own root cause aggregated on its top-level owner, else its NotReady node, else an
/// unbound claim it waits for.
fn covering_finding(snap: &Snapshot, pod: &Pod, findings: &[Finding]) -> Option<usize> {
    let position = |object: &ObjectRef, cause: Option<Cause>| {
        findings
            .iter()
            .position(|f| &f.object == object && cause.is_none_or(|c| f.cause == c))
    };
    if let Some(issue) = diagnose_pod(snap, pod) {
        return position(&snap.top_owner(pod), Some(issue.cause));
    }
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    if let Some(node) = node.filter(|_| on_not_ready_node(snap, pod)) {
        return position(
            &ObjectRef::new("Node", None, node),
            Some(Cause::NodeNotReady),
        );
    }
    if blocked_on_pvc(pod) {
        let ns = ns_of(&pod.metadata);
        return pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .find_map(|c| {
                position(
                    &ObjectRef::new("PersistentVolumeClaim", Some(ns), &c.claim_name),
                    None,
                )
            });
    }
    None
}

fn no_matching_pods(
    snap: &Snapshot,
    svc: &Service,
    sel: &BTreeMap<String, String>,
    obj: ObjectRef,
) -> Finding {
    let ns = ns_of(&svc.metadata);
    let mut f = Finding::new(
        Cause::ServiceNoMatchingPods,
        obj.clone(),
        format!(
            "selector {} matches no pods, so the Service has no endpoints",
            show_selector(sel)
        ),
    )
    .evidence(format!(
        "selector {} matches no pods in namespace {ns}",
        show_selector(sel)
    ));
    f.count = 0;
    // Workloads whose pod labels have every selector key (with other values) are the
    // likely intended targets.
    let mut candidates: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let templates = snap
        .deployments
        .iter()
        .map(|d| {
            (
                "Deployment",
                &d.metadata,
                d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()),
            )
        })
        .chain(snap.statefulsets.iter().map(|d| {
            (
                "StatefulSet",
                &d.metadata,
                d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()),
            )
        }))
        .chain(snap.daemonsets.iter().map(|d| {
            (
                "DaemonSet",
                &d.metadata,
                d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()),
            )
        }));
    for (kind, meta, tmeta) in templates {
        if ns_of(meta) != ns {
            continue;
        }
        let labels = tmeta.and_then(|m| m.labels.clone()).unwrap_or_default();
        if sel.keys().all(|k| labels.contains_key(k)) {
            let new: BTreeMap<String, String> = sel
                .keys()
                .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            f = f.evidence(format!(
                "pods of {kind} {} have labels {}",
                name_of(meta),
                show_selector(&new)
            ));
            candidates.push((format!("{kind} {}", name_of(meta)), new));
        }
    }
    match candidates.as_slice() {
        [(target, new)] => {
            let patch = json!({"spec": {"selector": new}});
            f.fix(
                format!("Change the Service selector to {} so it selects the pods of {target}.", show_selector(new)),
                Some(ProposedChange::merge("Service", ns, &obj.name, patch)),
            )
        }
        _ => f.advice("Make the Service selector match the labels of the pods it should route to (kubectl get pods --show-labels)."),
    }
}

/// A container port that `target` names or numbers, across the selected pods.
fn target_found(target: &IntOrString, pods: &[&Pod]) -> bool {
    pods.iter()
        .flat_map(|p| p.spec.iter().flat_map(|s| s.containers.iter()))
        .flat_map(|c| c.ports.iter().flatten())
        .any(|cp| match target {
            IntOrString::Int(n) => cp.container_port == *n,
            IntOrString::String(s) => cp.name.as_deref() == Some(s.as_str()),
        })
}

fn port_mismatch(svc: &Service, pods: &[&Pod], obj: ObjectRef) -> Option<Finding> {
    let spec = svc.spec.as_ref()?;
    let declared: Vec<(i32, Option<String>)> = pods
        .iter()
        .flat_map(|p| p.spec.iter().flat_map(|s| s.containers.iter()))
        .flat_map(|c| c.ports.iter().flatten())
        .map(|cp| (cp.container_port, cp.name.clone()))
        .collect();
    if declared.is_empty() {
        // Containers may listen on undeclared ports: no evidence of a mismatch.
        return None;
    }
    let ports: Vec<ServicePort> = spec.ports.clone().unwrap_or_default();
    let bad: Vec<&ServicePort> = ports
        .iter()
        .filter(|p| {
            !target_found(
                p.target_port.as_ref().unwrap_or(&IntOrString::Int(p.port)),
                pods,
            )
        })
        .collect();
    if bad.is_empty() {
        return None;
    }
    let mut uniq: Vec<i32> = declared.iter().map(|(p, _)| *p).collect();
    uniq.sort_unstable();
    uniq.dedup();
    let shown = declared
        .iter()
        .map(|(p, n)| match n {
            Some(n) => format!("{p} ({n})"),
            None => p.to_string(),
        })
        .collect::<Vec<_>>();
    let mut shown_u = shown.clone();
    shown_u.sort();
    shown_u.dedup();
    let show_target = |p: &ServicePort| match p.target_port.as_ref() {
        Some(IntOrString::Int(n)) => n.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => p.port.to_string(),
    };
    let first = bad[0];
    let mut f = Finding::new(
        Cause::ServiceTargetPortMismatch,
        obj.clone(),
        format!(
            "port {} targets {} but the selected pods expose {}",
            first.port,
            show_target(first),
            shown_u.join(", ")
        ),
    );
    for p in &bad {
        f = f.evidence(format!(
            "Service port {} has targetPort {}, which no selected container exposes",
            p.port,
            show_target(p)
        ));
    }
    f = f.evidence(format!("container ports: {}", shown_u.join(", ")));
    f = f.affecting(pods.len());
    let ns = obj.namespace.clone().unwrap_or_default();
    if let [only] = uniq.as_slice() {
        // The ports list has no merge key under a JSON merge patch: send it whole.
        let fixed: Vec<Value> = ports
            .iter()
            .map(|p| {
                let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                if bad.iter().any(|b| b.port == p.port) {
                    v["targetPort"] = json!(only);
                }
                v
            })
            .collect();
        return Some(f.fix(
            format!("Set targetPort to {only}, the port the containers listen on."),
            Some(ProposedChange::merge(
                "Service",
                &ns,
                &obj.name,
                json!({"spec": {"ports": fixed}}),
            )),
        ));
    }
    Some(f.advice(
        "Set each Service targetPort to a containerPort (number or name) of the selected pods.",
    ))
}

pub fn ingresses(snap: &Snapshot) -> Vec<Finding> {
    if snap.is_forbidden("services") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (ing, ns, name, spec) in with_spec(&snap.ingresses, |ing| ing.spec.as_ref()) {
        let mut backends: Vec<(String, &IngressServiceBackend)> = Vec::new();
        if let Some(b) = spec
            .default_backend
            .as_ref()
            .and_then(|b| b.service.as_ref())
        {
            backends.push(("default backend".to_string(), b));
        }
        for r in spec.rules.iter().flatten() {
            for p in r.http.iter().flat_map(|h| h.paths.iter()) {
                if let Some(b) = p.backend.service.as_ref() {
                    backends.push((
                        format!(
                            "{}{}",
                            r.host.as_deref().unwrap_or("*"),
                            p.path.as_deref().unwrap_or("/")
                        ),
                        b,
                    ));
                }
            }
        }
        let svc_names = names(in_namespace(&snap.services, ns));
        let mut f: Option<Finding> = None;
        let mut renames: BTreeMap<String, String> = BTreeMap::new();
        for (route, b) in backends {
            let svc = find_named(&snap.services, ns, &b.name);
            let problem = match svc {
                None => {
                    let near = near_misses(&b.name, svc_names.iter().copied());
                    if let [one] = near.as_slice() {
                        renames.insert(b.name.clone(), one.clone());
                    }
                    let hint = if near.is_empty() {
                        String::new()
                    } else {
                        format!(" (existing: {})", near.join(", "))
                    };
                    Some(format!("{route} → service \"{}\" not found{hint}", b.name))
                }
                Some(s) => {
                    let ports = s
                        .spec
                        .as_ref()
                        .and_then(|s| s.ports.clone())
                        .unwrap_or_default();
                    let ok = b.port.as_ref().is_none_or(|bp| {
                        ports.iter().any(|p| {
                            Some(p.port) == bp.number || (bp.name.is_some() && p.name == bp.name)
                        })
                    });
                    (!ok).then(|| {
                        let want = b
                            .port
                            .as_ref()
                            .map(|p| {
                                p.number
                                    .map(|n| n.to_string())
                                    .or(p.name.clone())
                                    .unwrap_or_default()
                            })
                            .unwrap_or_default();
                        let have: Vec<String> = ports.iter().map(|p| p.port.to_string()).collect();
                        format!(
                            "{route} → service \"{}\" has no port {want} (ports: {})",
                            b.name,
                            have.join(", ")
                        )
                    })
                }
            };
            if let Some(p) = problem {
                let fnd = f.get_or_insert_with(|| {
                    Finding::new(
                        Cause::IngressMissingBackend,
                        ObjectRef::new("Ingress", Some(ns), name),
                        "routes to a backend that does not exist",
                    )
                });
                fnd.evidence.push(p);
            }
        }
        if let Some(mut fnd) = f {
            if let Some(first) = fnd.evidence.first() {
                fnd.summary = format!("routes to a missing backend: {first}");
            }
            let change = if renames.is_empty() {
                None
            } else {
                rename_backends(ing, &renames)
                    .map(|p| ProposedChange::merge("Ingress", ns, name, p))
            };
            let desc = if renames.is_empty() {
                "Create the missing Service, or point the Ingress backend at an existing Service and port.".to_string()
            } else {
                let r: Vec<String> = renames.iter().map(|(a, b)| format!("{a} → {b}")).collect();
                format!(
                    "Point the Ingress at the existing Service ({}), or create the missing one.",
                    r.join(", ")
                )
            };
            out.push(fnd.fix(desc, change));
        }
    }
    out
}

/// Merge patch replacing the rules (and default backend) with renamed Service backends.
fn rename_backends(
    ing: &k8s_openapi::api::networking::v1::Ingress,
    renames: &BTreeMap<String, String>,
) -> Option<Value> {
    let mut spec = serde_json::to_value(ing.spec.as_ref()?).ok()?;
    fn walk(v: &mut Value, renames: &BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Object(svc)) = m.get_mut("service") {
                    if let Some(Value::String(n)) = svc.get_mut("name") {
                        if let Some(new) = renames.get(n.as_str()) {
                            *n = new.clone();
                        }
                    }
                }
                for (_, c) in m.iter_mut() {
                    walk(c, renames);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, renames)),
            _ => {}
        }
    }
    walk(&mut spec, renames);
    let mut patch = serde_json::Map::new();
    for key in ["rules", "defaultBackend"] {
        if let Some(v) = spec.get(key) {
            patch.insert(key.to_string(), v.clone());
        }
    }
    Some(json!({"spec": patch}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rules::testutil::*;

    fn svc(name: &str, spec: Value) -> Service {
        obj(json!({"metadata": {"name": name, "namespace": NS}, "spec": spec}))
    }

    fn web_pod(ready: bool) -> Pod {
        running_pod("web-0", "web", app_spec(), ready)
    }

    #[test]
    fn selector_matching_nothing_gets_selector_fix() {
        let mut s = snap();
        add_deployment(&mut s, "web", 1, app_spec());
        s.pods.push(web_pod(true));
        s.services.push(svc("web", json!({"selector": {"app": "web-frontend"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]})));
        let f = services(&s);
        assert_eq!(causes(&f), ["service-no-matching-pods"]);
        assert!(evidence_has(&f[0], "app=web-frontend matches no pods"));
        assert_eq!(
            f[0].fix.change.as_ref().unwrap().patch,
            json!({"spec": {"selector": {"app": "web"}}})
        );
    }

    #[test]
    fn selectorless_and_external_name_services_are_skipped() {
        let mut s = snap();
        s.services.push(svc(
            "manual",
            json!({"ports": [{"port": 80, "protocol": "TCP"}]}),
        ));
        s.services.push(svc("ext", json!({"type": "ExternalName", "externalName": "db.example.com", "selector": {"app": "x"}})));
        assert!(services(&s).is_empty());
    }

    #[test]
    fn target_port_mismatch_and_fix() {
        let mut s = snap();
        s.pods.push(web_pod(true));
        s.services.push(svc("web", json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"}]})));
        let f = services(&s);
        assert_eq!(causes(&f), ["service-target-port-mismatch"]);
        assert!(evidence_has(&f[0], "targetPort 9090"));
        let p = &f[0].fix.change.as_ref().unwrap().patch;
        assert_eq!(p["spec"]["ports"][0]["targetPort"], json!(8080));
        assert_eq!(p["spec"]["ports"][0]["name"], json!("http"));
        // Matching port: fine.
        s.services[0] = svc(
            "web",
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}),
        );
        assert!(services(&s).is_empty());
    }

    #[test]
    fn no_ready_endpoints() {
        let mut s = snap();
        s.pods.push(web_pod(false));
        s.services.push(svc("web", json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]})));
        assert_eq!(causes(&services(&s)), ["service-no-ready-endpoints"]);
    }

    #[test]
    fn ingress_to_missing_service() {
        let mut s = snap();
        s.services.push(svc(
            "web-svc",
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP"}]}),
        ));
        let ing = |svc: &str, port: i32| -> k8s_openapi::api::networking::v1::Ingress {
            obj(
                json!({"metadata": {"name": "web", "namespace": NS}, "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": port}}}}]}}]}}),
            )
        };
        s.ingresses.push(ing("web-service", 80));
        let f = ingresses(&s);
        assert_eq!(causes(&f), ["ingress-missing-backend"]);
        assert!(f[0].evidence[0].contains("service \"web-service\" not found"));
        let p = &f[0].fix.change.as_ref().unwrap().patch;
        assert_eq!(
            p["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            json!("web-svc")
        );
        s.ingresses[0] = ing("web-svc", 8080);
        assert!(ingresses(&s)[0].evidence[0].contains("has no port 8080"));
        s.ingresses[0] = ing("web-svc", 80);
        assert!(ingresses(&s).is_empty());
    }

    fn web_service() -> Service {
        svc(
            "web",
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}),
        )
    }

    fn crashing_pod(name: &str) -> Pod {
        crash_looping_pod(name, "web", 5, terminated("Error", 1, 20))
    }

    /// Deployment `web` of `replicas` pods (`app_spec`), its first pod `web-0` crash-looping.
    fn crashing_web(replicas: i32) -> Snapshot {
        let mut s = snap();
        add_deployment(&mut s, "web", replicas, app_spec());
        s.pods.push(crashing_pod("web-0"));
        s
    }

    #[test]
    fn unready_service_folds_into_the_workload_finding() {
        let mut s = crashing_web(2);
        s.pods.push(crashing_pod("web-1"));
        s.services.push(web_service());
        // The rule alone still sees the Service without endpoints...
        assert_eq!(causes(&services(&s)), ["service-no-ready-endpoints"]);
        // ...but the scan reports the one root cause, naming the Service.
        let f = super::super::run_all(&s);
        assert_eq!(causes(&f), ["crash-loop-app-error"]);
        assert_eq!(f[0].object.name, "web");
        assert!(f[0]
            .evidence
            .contains(&"Service app/web has no ready endpoints because of this".to_string()));
    }

    #[test]
    fn unready_service_folds_into_each_explaining_finding_once() {
        let mut s = crashing_web(1);
        // A second workload behind the same Service, failing its readiness probe.
        add_deployment(&mut s, "web-canary", 1, app_spec());
        let mut canary = running_pod("web-canary-0", "web-canary", app_spec(), false);
        canary.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        s.pods.push(canary);
        s.events.push(event(
            "Pod",
            "web-canary-0",
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
        ));
        s.services.push(web_service());
        // A second Service on the same pods is mentioned too, on its own line.
        s.services.push(svc(
            "web-internal",
            json!({"selector": {"app": "web"}, "ports": [{"port": 8080, "protocol": "TCP"}]}),
        ));
        let f = super::super::run_all(&s);
        let mut c = causes(&f);
        c.sort_unstable();
        assert_eq!(c, ["crash-loop-app-error", "readiness-probe-failing"]);
        for f in &f {
            let notes: Vec<&String> = f
                .evidence
                .iter()
                .filter(|e| e.contains("has no ready endpoints"))
                .collect();
            assert_eq!(
                notes,
                [
                    "Service app/web has no ready endpoints because of this",
                    "Service app/web-internal has no ready endpoints because of this"
                ],
                "{f:?}"
            );
        }
    }

    #[test]
    fn unready_service_stays_when_a_selected_pod_has_no_finding() {
        let mut s = crashing_web(2);
        // Still starting: not ready, but within the start-up grace, so no finding of its own.
        let mut starting = running_pod("web-1", "web", app_spec(), false);
        starting.metadata.creation_timestamp = Some(obj(json!(ago(20))));
        s.pods.push(starting);
        s.services.push(web_service());
        let f = super::super::run_all(&s);
        let mut c = causes(&f);
        c.sort_unstable();
        assert_eq!(c, ["crash-loop-app-error", "service-no-ready-endpoints"]);
        assert!(f
            .iter()
            .all(|f| f.evidence.iter().all(|e| !e.contains("because of this"))));
    }

    #[test]
    fn ready_service_adds_nothing_to_workload_findings() {
        let mut s = crashing_web(2);
        s.pods.push(web_pod(true));
        s.services.push(web_service());
        let f = super::super::run_all(&s);
        assert_eq!(causes(&f), ["crash-loop-app-error"]);
        assert!(f[0]
            .evidence
            .iter()
            .all(|e| !e.contains("no ready endpoints")));
    }
}
