//! RBAC as the workloads meet it: a ServiceAccount refused an API call (the API's 403 in
//! the container's log), bindings to roles that do not exist, and bindings to
//! ServiceAccounts that do not exist.

use std::sync::OnceLock;

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use regex::Regex;
use serde_json::json;

use super::{names, near_misses, truncate};
use crate::finding::{Cause, Finding, ObjectRef, ProposedChange};
use crate::snapshot::{find_named, in_namespace, name_of, ns_of, Snapshot};

/// One refused call, parsed from the API's message:
/// `User "system:serviceaccount:NS:SA" cannot VERB resource "R" in API group "G" in the
/// namespace "N"` (1.20–1.33; `at the cluster scope` for cluster-wide calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub sa_namespace: String,
    pub sa: String,
    pub verb: String,
    pub resource: String,
    pub group: String,
    pub namespace: Option<String>,
    pub line: String,
}

fn refusal_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"[Uu]ser \\?"system:serviceaccount:([a-z0-9.-]+):([a-z0-9.-]+)\\?" cannot ([a-z*]+) resource \\?"([a-z0-9.*/-]+)\\?"(?: in API group \\?"([a-z0-9.-]*)\\?")?(?: in the namespace \\?"([a-z0-9.-]+)\\?")?"#,
        )
        .ok()
    })
    .as_ref()
}

pub(crate) fn parse_refusals(log: &str) -> Vec<Refusal> {
    let Some(re) = refusal_re() else {
        return Vec::new();
    };
    let mut out: Vec<Refusal> = Vec::new();
    for line in log.lines() {
        for c in re.captures_iter(line) {
            let get = |i| c.get(i).map(|m| m.as_str().to_string());
            let r = Refusal {
                sa_namespace: get(1).unwrap_or_default(),
                sa: get(2).unwrap_or_default(),
                verb: get(3).unwrap_or_default(),
                resource: get(4).unwrap_or_default(),
                group: get(5).unwrap_or_default(),
                namespace: get(6),
                line: truncate(line.trim(), 300),
            };
            if !out.iter().any(|o| {
                o.verb == r.verb && o.resource == r.resource && o.group == r.group && o.sa == r.sa
            }) {
                out.push(r);
            }
        }
    }
    out
}

fn rule_grants(rule: &PolicyRule, verb: &str, group: &str, resource: &str) -> bool {
    let any = |v: &Option<Vec<String>>, want: &str| {
        v.as_ref()
            .is_some_and(|v| v.iter().any(|x| x == "*" || x == want))
    };
    rule.verbs.iter().any(|v| v == "*" || v == verb)
        && any(&rule.api_groups, group)
        && any(&rule.resources, resource)
}

fn names_sa(s: &Subject, binding_ns: &str, sa_ns: &str, sa: &str) -> bool {
    s.kind == "ServiceAccount"
        && s.name == sa
        && s.namespace.as_deref().unwrap_or(binding_ns) == sa_ns
}

/// The rules a role reference resolves to (`None`: the role is not in the snapshot).
fn role_rules(snap: &Snapshot, ns: &str, r: &RoleRef) -> Option<Vec<PolicyRule>> {
    match r.kind.as_str() {
        "Role" => find_named(&snap.roles, ns, &r.name).map(|x| x.rules.clone().unwrap_or_default()),
        _ => snap
            .cluster_roles
            .iter()
            .find(|x| name_of(&x.metadata) == r.name)
            .map(|x| x.rules.clone().unwrap_or_default()),
    }
}

/// The ServiceAccount a pod runs as.
fn pod_sa(pod: &k8s_openapi::api::core::v1::Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

pub fn missing_permissions(snap: &Snapshot) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for pod in &snap.pods {
        let ns = ns_of(&pod.metadata);
        let pname = name_of(&pod.metadata);
        let sa = pod_sa(pod);
        let logs = snap
            .current_logs
            .iter()
            .chain(snap.previous_logs.iter())
            .filter(|((n, p, _), _)| n == ns && p == pname);
        let mut refusals: Vec<Refusal> = Vec::new();
        for (_, log) in logs {
            for r in parse_refusals(log) {
                // Only the pod's own identity: a log quoting someone else's 403 is not
                // this workload's missing permission.
                if r.sa == sa && r.sa_namespace == ns && !refusals.contains(&r) {
                    refusals.push(r);
                }
            }
        }
        if refusals.is_empty() {
            continue;
        }
        let owner = snap.top_owner(pod);
        if out
            .iter()
            .any(|f| f.object == owner && f.cause == Cause::RbacMissingPermission)
        {
            continue;
        }
        out.push(refusal_finding(snap, owner, ns, &sa, &refusals));
    }
    out
}

fn refusal_finding(
    snap: &Snapshot,
    owner: ObjectRef,
    ns: &str,
    sa: &str,
    refusals: &[Refusal],
) -> Finding {
    let wants: Vec<String> = refusals
        .iter()
        .map(|r| {
            let g = if r.group.is_empty() {
                String::new()
            } else {
                format!(".{}", r.group)
            };
            format!("{} {}{g}", r.verb, r.resource)
        })
        .collect();
    let mut f = Finding::new(
        Cause::RbacMissingPermission,
        owner,
        format!(
            "ServiceAccount {ns}/{sa} is refused API calls it makes: {}",
            wants.join(", ")
        ),
    );
    for r in refusals.iter().take(3) {
        f = f.evidence(r.line.clone());
    }
    f = f.evidence(format!("pods run as ServiceAccount {sa:?}"));
    if !snap.service_accounts.is_empty()
        && !snap
            .service_accounts
            .iter()
            .any(|s| ns_of(&s.metadata) == ns && name_of(&s.metadata) == sa)
    {
        f = f.evidence(format!("ServiceAccount {sa:?} does not exist in {ns:?}"));
    }
    // Which bindings name the ServiceAccount, and what their roles grant.
    let mut bound_roles: Vec<(String, String)> = Vec::new();
    for b in &snap.role_bindings {
        let bns = ns_of(&b.metadata);
        if !b
            .subjects
            .iter()
            .flatten()
            .any(|s| names_sa(s, bns, ns, sa))
        {
            continue;
        }
        let rr = &b.role_ref;
        match role_rules(snap, bns, rr) {
            None => {
                f = f.evidence(format!(
                    "RoleBinding {} binds {} {:?}, which does not exist",
                    name_of(&b.metadata),
                    rr.kind,
                    rr.name
                ));
            }
            Some(rules) => {
                let missing: Vec<&Refusal> = refusals
                    .iter()
                    .filter(|r| {
                        !rules
                            .iter()
                            .any(|x| rule_grants(x, &r.verb, &r.group, &r.resource))
                    })
                    .collect();
                let granted: Vec<String> = rules
                    .iter()
                    .map(|r| {
                        format!(
                            "{} on {}",
                            r.verbs.join(","),
                            r.resources.clone().unwrap_or_default().join(",")
                        )
                    })
                    .collect();
                if !missing.is_empty() {
                    f = f.evidence(format!(
                        "RoleBinding {} binds {} {:?}, which grants {} but not {}",
                        name_of(&b.metadata),
                        rr.kind,
                        rr.name,
                        if granted.is_empty() {
                            "nothing".to_string()
                        } else {
                            granted.join("; ")
                        },
                        missing
                            .iter()
                            .map(|r| format!("{} on {}", r.verb, r.resource))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                bound_roles.push((rr.kind.clone(), rr.name.clone()));
            }
        }
    }
    for b in &snap.cluster_role_bindings {
        if b.subjects.iter().flatten().any(|s| names_sa(s, "", ns, sa)) {
            f = f.evidence(format!(
                "ClusterRoleBinding {} binds ClusterRole {:?}",
                name_of(&b.metadata),
                b.role_ref.name
            ));
        }
    }
    if bound_roles.is_empty() {
        f = f.evidence(format!(
            "no RoleBinding in {ns:?} binds a role to ServiceAccount {sa:?}"
        ));
    }
    // A concrete change only where it is narrow: a namespaced Role already bound to this
    // ServiceAccount gains exactly the refused verbs on the refused resources.
    let change = bound_roles
        .iter()
        .find(|(k, _)| k == "Role")
        .and_then(|(_, name)| {
            let role = find_named(&snap.roles, ns, name)?;
            let mut rules: Vec<serde_json::Value> = role
                .rules
                .iter()
                .flatten()
                .filter_map(|r| serde_json::to_value(r).ok())
                .collect();
            for r in refusals
                .iter()
                .filter(|r| r.namespace.as_deref() == Some(ns))
            {
                rules.push(
                    json!({"apiGroups": [r.group], "resources": [r.resource], "verbs": [r.verb]}),
                );
            }
            (rules.len() > role.rules.as_ref().map_or(0, Vec::len)).then(|| {
                // Rules have no merge key: a merge patch carries the whole list.
                ProposedChange::merge("Role", ns, name, json!({"rules": rules}))
            })
        });
    let grant = wants.join(", ");
    f.fix(
        format!("Grant ServiceAccount {ns}/{sa} exactly what it uses ({grant}) with a Role and RoleBinding (kubectl create role ... --verb=... --resource=...; kubectl auth can-i --as=system:serviceaccount:{ns}:{sa} ... to check), or stop the app from making the call."),
        change,
    )
}

/// A binding of the apiserver's bootstrap RBAC policy: named `system:...` or marked for
/// reconciliation by the apiserver (`rbac.authorization.kubernetes.io/autoupdate`).
fn is_bootstrap_policy(meta: &ObjectMeta) -> bool {
    meta.name
        .as_deref()
        .is_some_and(|n| n.starts_with("system:"))
        || meta.annotations.as_ref().is_some_and(|a| {
            a.get("rbac.authorization.kubernetes.io/autoupdate")
                .is_some_and(|v| v == "true")
        })
}

pub fn broken_bindings(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    let roles_known = !snap.is_forbidden("roles");
    let cluster_roles_known = !snap.cluster_roles.is_empty() && !snap.is_forbidden("clusterroles");
    let sas_known = !snap.is_forbidden("serviceaccounts");
    for b in &snap.role_bindings {
        let ns = ns_of(&b.metadata);
        let name = name_of(&b.metadata);
        if is_bootstrap_policy(&b.metadata) {
            // The apiserver's own default bindings (system:controller:bootstrap-signer,
            // system:controller:cloud-provider, ...) name ServiceAccounts that exist only
            // when the controller manager runs with per-controller credentials; they are
            // not the user's to fix, so a finding there is noise on most clusters.
            continue;
        }
        let obj = ObjectRef::new("RoleBinding", Some(ns), name);
        let rr = &b.role_ref;
        let known = if rr.kind == "Role" {
            roles_known
        } else {
            cluster_roles_known
        };
        if known && role_rules(snap, ns, rr).is_none() {
            let candidates = if rr.kind == "Role" {
                names(in_namespace(&snap.roles, ns))
            } else {
                names(&snap.cluster_roles)
            };
            let mut f = Finding::new(
                Cause::RbacBindingMissingRole,
                obj.clone(),
                format!(
                    "RoleBinding {name} grants nothing: {} {:?} does not exist",
                    rr.kind, rr.name
                ),
            )
            .evidence(format!("roleRef: {} {:?}, not found", rr.kind, rr.name));
            let near = near_misses(&rr.name, candidates);
            if !near.is_empty() {
                f = f.evidence(format!("did you mean {}?", near.join(", ")));
            }
            for s in b.subjects.iter().flatten() {
                f = f.evidence(format!(
                    "subject {} {:?} gets none of its permissions",
                    s.kind, s.name
                ));
            }
            out.push(f.advice(
                format!("Create {} {:?} with the rules the subjects need, or re-create the RoleBinding with the right roleRef (roleRef cannot be changed in place: kubectl delete rolebinding {name} -n {ns} and apply it again).", rr.kind, rr.name),
            ));
            continue;
        }
        if !sas_known {
            continue;
        }
        let subjects: Vec<Subject> = b.subjects.clone().unwrap_or_default();
        let in_scope = |n: &str| snap.namespace.as_deref().is_none_or(|s| s == n);
        let sa_exists = |n: &str, s: &str| {
            snap.service_accounts
                .iter()
                .any(|x| ns_of(&x.metadata) == n && name_of(&x.metadata) == s)
        };
        let mut fixed = subjects.clone();
        let mut missing = Vec::new();
        for (i, s) in subjects.iter().enumerate() {
            let sns = s.namespace.clone().unwrap_or_else(|| ns.to_string());
            if s.kind != "ServiceAccount" || !in_scope(&sns) || sa_exists(&sns, &s.name) {
                continue;
            }
            let near = near_misses(
                &s.name,
                in_namespace(&snap.service_accounts, &sns).map(|x| name_of(&x.metadata)),
            );
            if let [one] = near.as_slice() {
                fixed[i].name = one.clone();
            }
            missing.push((sns, s.name.clone(), near));
        }
        if missing.is_empty() {
            continue;
        }
        let mut f = Finding::new(
            Cause::RbacBindingMissingSubject,
            obj,
            format!(
                "RoleBinding {name} grants {} {:?} to a ServiceAccount that does not exist",
                rr.kind, rr.name
            ),
        );
        for (sns, s, near) in &missing {
            f = f.evidence(format!("subject ServiceAccount {sns}/{s} does not exist"));
            if !near.is_empty() {
                f = f.evidence(format!("did you mean {}?", near.join(", ")));
            }
        }
        let change = (fixed != subjects)
            .then(|| ProposedChange::merge("RoleBinding", ns, name, json!({"subjects": fixed})));
        out.push(f.fix(
            "Correct the subject's name and namespace to the ServiceAccount the pods run as (kubectl get pods -o jsonpath='{.items[*].spec.serviceAccountName}'), or create that ServiceAccount.",
            change,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rules::testutil::*;

    #[test]
    fn api_403_wordings_parse() {
        let log = r#"E0501 10:00:00 reflector.go:138] Failed to watch *v1.ConfigMap: failed to list *v1.ConfigMap: configmaps is forbidden: User "system:serviceaccount:app:reader" cannot list resource "configmaps" in API group "" in the namespace "app"
{"level":"error","msg":"deployments.apps is forbidden: User \"system:serviceaccount:app:reader\" cannot watch resource \"deployments\" in API group \"apps\" at the cluster scope"}"#;
        let r = parse_refusals(log);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            (
                r[0].verb.as_str(),
                r[0].resource.as_str(),
                r[0].group.as_str()
            ),
            ("list", "configmaps", "")
        );
        assert_eq!(r[0].namespace.as_deref(), Some("app"));
        assert_eq!(
            (
                r[1].verb.as_str(),
                r[1].resource.as_str(),
                r[1].group.as_str()
            ),
            ("watch", "deployments", "apps")
        );
        assert_eq!(r[1].namespace, None);
    }

    #[test]
    fn refused_call_names_the_role_that_lacks_it_and_extends_it() {
        let mut s = snap();
        let spec =
            json!({"serviceAccountName": "reader", "containers": [container("app", json!({}))]});
        add_ready_deployment(&mut s, "web", spec);
        s.current_logs.insert((NS.into(), "web-0".into(), "app".into()),
            "configmaps is forbidden: User \"system:serviceaccount:app:reader\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"app\"\n".into());
        s.service_accounts.push(obj(
            json!({"metadata": {"name": "reader", "namespace": NS}}),
        ));
        s.roles
            .push(obj(json!({"metadata": {"name": "reader", "namespace": NS},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})));
        s.role_bindings
            .push(obj(json!({"metadata": {"name": "reader", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": NS}]})));
        let f = missing_permissions(&s);
        assert_eq!(causes(&f), ["rbac-missing-permission"]);
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e.contains("grants get,list on pods but not list on configmaps")),
            "{:?}",
            f[0].evidence
        );
        let c = f[0].fix.change.as_ref().unwrap();
        assert_eq!(c.kind, "Role");
        assert_eq!(c.patch["rules"][1]["resources"], json!(["configmaps"]));
        assert!(broken_bindings(&s).is_empty());
    }

    #[test]
    fn bindings_to_missing_roles_and_service_accounts() {
        let mut s = snap();
        s.namespace = Some(NS.into());
        s.service_accounts.push(obj(
            json!({"metadata": {"name": "deployer", "namespace": NS}}),
        ));
        s.roles.push(obj(
            json!({"metadata": {"name": "deployer", "namespace": NS}, "rules": []}),
        ));
        s.cluster_roles
            .push(obj(json!({"metadata": {"name": "view"}})));
        s.role_bindings
            .push(obj(json!({"metadata": {"name": "a", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployr"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer"}]})));
        s.role_bindings.push(obj(json!({"metadata": {"name": "b", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployr", "namespace": NS}]})));
        let f = broken_bindings(&s);
        assert_eq!(
            causes(&f),
            ["rbac-binding-missing-role", "rbac-binding-missing-subject"]
        );
        assert!(evidence_has(&f[0], "did you mean deployer?"));
        let c = f[1].fix.change.as_ref().unwrap();
        assert_eq!(c.patch["subjects"][0]["name"], json!("deployer"));
    }

    #[test]
    fn the_apiservers_bootstrap_bindings_are_not_findings() {
        let mut s = snap();
        s.cluster_roles
            .push(obj(json!({"metadata": {"name": "view"}})));
        // As on a cluster whose controller manager shares one credential: the bootstrap
        // bindings name ServiceAccounts that were never created.
        s.role_bindings.push(obj(json!({"metadata": {"name": "system:controller:bootstrap-signer", "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "bootstrap-signer", "namespace": "kube-system"}]})));
        s.role_bindings.push(obj(json!({"metadata": {"name": "reconciled", "namespace": "kube-system",
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "cloud-provider", "namespace": "kube-system"}]})));
        assert!(broken_bindings(&s).is_empty());
        // The same binding under a user's name is reported.
        s.role_bindings.push(obj(json!({"metadata": {"name": "mine", "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "bootstrap-signer", "namespace": "kube-system"}]})));
        assert_eq!(
            causes(&broken_bindings(&s)),
            ["rbac-binding-missing-subject"]
        );
    }
}
