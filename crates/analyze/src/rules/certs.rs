//! TLS: Secrets whose certificate is outside its validity period, and Ingresses that
//! name an IngressClass or a TLS Secret that does not exist.

use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use super::{names, near_misses};
use crate::finding::{Cause, Finding, ObjectRef, ProposedChange};
use crate::snapshot::{name_of, ns_of, Snapshot};

fn tls_secret_names(ing: &Ingress) -> Vec<(String, Vec<String>)> {
    ing.spec
        .iter()
        .flat_map(|s| s.tls.iter().flatten())
        .filter_map(|t| Some((t.secret_name.clone()?, t.hosts.clone().unwrap_or_default())))
        .collect()
}

pub fn certificates(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(now) = snap.now else {
        return out;
    };
    for c in &snap.tls_certs {
        let expired = c.not_after < now;
        let early = c.not_before > now;
        if !(expired || early) {
            continue;
        }
        let mut f = Finding::new(
            Cause::TlsCertExpired,
            ObjectRef::new("Secret", Some(&c.namespace), &c.name),
            if expired {
                format!(
                    "the certificate in TLS Secret {} expired on {}",
                    c.name, c.not_after
                )
            } else {
                format!(
                    "the certificate in TLS Secret {} is not valid until {}",
                    c.name, c.not_before
                )
            },
        )
        .evidence(format!("subject: {}", c.subject))
        .evidence(format!("notBefore: {}", c.not_before))
        .evidence(format!("notAfter: {}", c.not_after))
        .evidence(if expired {
            format!(
                "expired {} day(s) ago",
                (now.as_second() - c.not_after.as_second()) / 86_400
            )
        } else {
            format!(
                "valid only in {} day(s)",
                (c.not_before.as_second() - now.as_second()) / 86_400 + 1
            )
        });
        for ing in snap
            .ingresses
            .iter()
            .filter(|i| ns_of(&i.metadata) == c.namespace)
        {
            for (secret, hosts) in tls_secret_names(ing) {
                if secret == c.name {
                    f = f.evidence(format!(
                        "served by Ingress {} for {}",
                        name_of(&ing.metadata),
                        if hosts.is_empty() {
                            "its default host".to_string()
                        } else {
                            hosts.join(", ")
                        }
                    ));
                }
            }
        }
        out.push(f.advice(if expired {
            format!("Renew the certificate and update Secret {} (cert-manager: kubectl describe certificate -n {}; otherwise kubectl create secret tls {} --cert=... --key=... --dry-run=client -o yaml | kubectl apply -f -).", c.name, c.namespace, c.name)
        } else {
            "The certificate was issued for a later date, or a clock is wrong: check the issuer's and the nodes' clocks, or re-issue it.".to_string()
        }));
    }
    out
}

pub fn ingress_refs(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    let classes_known = !snap.is_forbidden("ingressclasses");
    let secrets_known = !snap.is_forbidden("secrets");
    let class_names = names(&snap.ingress_classes);
    for ing in &snap.ingresses {
        let ns = ns_of(&ing.metadata);
        let name = name_of(&ing.metadata);
        let obj = ObjectRef::new("Ingress", Some(ns), name);
        if let Some(class) = ing
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_deref())
        {
            if classes_known && !class_names.contains(&class) {
                let f = Finding::new(
                    Cause::IngressClassMissing,
                    obj.clone(),
                    format!("Ingress {name} names IngressClass {class:?}, which does not exist: no controller serves it"),
                )
                .evidence(format!("ingressClassName: {class}, not found"))
                .evidence(if class_names.is_empty() {
                    "no IngressClass exists in the cluster".to_string()
                } else {
                    format!("IngressClasses: {}", class_names.join(", "))
                });
                let change = match class_names.as_slice() {
                    [one] => Some(ProposedChange::merge(
                        "Ingress",
                        ns,
                        name,
                        json!({"spec": {"ingressClassName": one}}),
                    )),
                    _ => None,
                };
                out.push(f.fix(
                    "Name an existing IngressClass in spec.ingressClassName (kubectl get ingressclass), or install the controller that provides this class.",
                    change,
                ));
            }
        }
        if !secrets_known {
            continue;
        }
        for (secret, hosts) in tls_secret_names(ing) {
            if snap.secret(ns, &secret).is_some() {
                continue;
            }
            let mut f = Finding::new(
                Cause::IngressTlsSecretMissing,
                obj.clone(),
                format!("Ingress {name} serves TLS from Secret {secret:?}, which does not exist: the controller falls back to its default certificate"),
            )
            .evidence(format!("tls secretName: {secret}, not found in namespace {ns:?}"));
            if !hosts.is_empty() {
                f = f.evidence(format!("hosts: {}", hosts.join(", ")));
            }
            let near = near_misses(
                &secret,
                snap.secrets
                    .iter()
                    .filter(|s| s.namespace == ns && s.keys.contains("tls.crt"))
                    .map(|s| s.name.as_str()),
            );
            if !near.is_empty() {
                f = f.evidence(format!("did you mean {}?", near.join(", ")));
            }
            out.push(f.advice(
                format!("Create the TLS Secret (kubectl create secret tls {secret} --cert=... --key=... -n {ns}, or let cert-manager issue it) or correct secretName."),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rules::testutil::*;
    use crate::snapshot::{KeysOnly, TlsCert};

    #[test]
    fn expired_and_future_certificates() {
        let mut s = snap();
        let cert = |nb: i64, na: i64| TlsCert {
            namespace: NS.into(),
            name: "shop-tls".into(),
            subject: "CN=shop.example.com".into(),
            not_before: now() - jiff::SignedDuration::from_secs(nb),
            not_after: now() - jiff::SignedDuration::from_secs(na),
        };
        s.tls_certs.push(cert(400 * 86_400, 3 * 86_400));
        let f = certificates(&s);
        assert_eq!(causes(&f), ["tls-certificate-expired"]);
        assert!(f[0].evidence.iter().any(|e| e == "expired 3 day(s) ago"));
        s.tls_certs[0] = cert(-86_400, -400 * 86_400);
        assert!(certificates(&s)[0].summary.contains("not valid until"));
        s.tls_certs[0] = cert(86_400, -86_400);
        assert!(certificates(&s).is_empty());
    }

    #[test]
    fn ingress_missing_class_and_tls_secret() {
        let mut s = snap();
        s.ingress_classes
            .push(obj(json!({"metadata": {"name": "nginx"}})));
        s.secrets.push(KeysOnly {
            namespace: NS.into(),
            name: "shop-tls".into(),
            keys: ["tls.crt".to_string(), "tls.key".to_string()].into(),
        });
        s.ingresses.push(obj(json!({"metadata": {"name": "shop", "namespace": NS},
            "spec": {"ingressClassName": "ngnix", "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tsl"}],
                "rules": []}})));
        let f = ingress_refs(&s);
        assert_eq!(
            causes(&f),
            ["ingress-missing-class", "ingress-missing-tls-secret"]
        );
        assert_eq!(
            f[0].fix.change.as_ref().unwrap().patch,
            json!({"spec": {"ingressClassName": "nginx"}})
        );
        assert!(f[1].evidence.iter().any(|e| e == "did you mean shop-tls?"));
    }
}
