//! Missing Secrets / ConfigMaps and missing keys in them. Only key *names* are ever
//! looked at; values are not in the snapshot.

use k8s_openapi::api::core::v1::Pod;
use regex::Regex;

use super::near_misses;
use super::pods::PodIssue;
use crate::finding::Cause;
use crate::snapshot::{event_line, name_of, ns_of, KeysOnly, Snapshot};

use crate::refs::{config_refs, ConfigRef as Ref};

fn refs(pod: &Pod) -> Vec<Ref> {
    pod.spec.as_ref().map(config_refs).unwrap_or_default()
}

/// Names of Secrets/ConfigMaps a pod references, for the diagnose object graph.
pub(crate) fn referenced(pod: &Pod) -> Vec<(&'static str, String)> {
    let mut v: Vec<_> = refs(pod).into_iter().map(|r| (r.kind, r.name)).collect();
    v.sort();
    v.dedup();
    v
}

fn lookup<'a>(snap: &'a Snapshot, kind: &str, ns: &str, name: &str) -> Option<&'a KeysOnly> {
    if kind == "Secret" {
        snap.secret(ns, name)
    } else {
        snap.configmap(ns, name)
    }
}

fn plural(kind: &str) -> &'static str {
    if kind == "Secret" {
        "secrets"
    } else {
        "configmaps"
    }
}

fn cause(kind: &str, key: bool) -> Cause {
    match (kind, key) {
        ("Secret", false) => Cause::MissingSecret,
        ("Secret", true) => Cause::MissingSecretKey,
        (_, false) => Cause::MissingConfigMap,
        (_, true) => Cause::MissingConfigMapKey,
    }
}

/// Turn the kubelet's CreateContainerConfigError message into a cause.
pub(crate) fn classify_message(
    snap: &Snapshot,
    pod: &Pod,
    container: &str,
    msg: &str,
) -> Option<PodIssue> {
    static RES: std::sync::OnceLock<Option<(Regex, Regex)>> = std::sync::OnceLock::new();
    let (missing_obj, missing_key) = RES
        .get_or_init(|| {
            Some((
                Regex::new(r#"(secret|configmap)s? "([^"]+)" not found"#).ok()?,
                Regex::new(r"couldn't find key (\S+) in (Secret|ConfigMap) ([^/\s]+)/(\S+)")
                    .ok()?,
            ))
        })
        .as_ref()?;
    let ns = ns_of(&pod.metadata);
    if let Some(c) = missing_key.captures(msg) {
        let kind = if &c[2] == "Secret" {
            "Secret"
        } else {
            "ConfigMap"
        };
        return Some(missing(snap, ns, kind, &c[4], Some(&c[1]), msg, container));
    }
    if let Some(c) = missing_obj.captures(msg) {
        let kind = if &c[1] == "secret" {
            "Secret"
        } else {
            "ConfigMap"
        };
        return Some(missing(snap, ns, kind, &c[2], None, msg, container));
    }
    None
}

fn missing(
    snap: &Snapshot,
    ns: &str,
    kind: &'static str,
    name: &str,
    key: Option<&str>,
    msg: &str,
    container: &str,
) -> PodIssue {
    let existing = lookup(snap, kind, ns, name);
    let mut i = match key {
        Some(k) => PodIssue::new(
            cause(kind, true),
            format!("container {container:?} needs key {k:?} of {kind} {name:?}, which does not have it"),
        )
        .ev(format!("missing key: {k}")),
        None => PodIssue::new(
            cause(kind, false),
            format!("container {container:?} needs {kind} {name:?}, which does not exist"),
        )
        .ev(format!("missing {}: {name}", kind.to_lowercase())),
    };
    if !msg.is_empty() {
        i = i.ev(msg.to_string());
    }
    let fix = match (key, existing) {
        (Some(k), Some(obj)) => {
            let keys: Vec<&str> = obj.keys.iter().map(String::as_str).collect();
            i = i.ev(format!("{kind} {name:?} has keys: {}", keys.join(", ")));
            let near = near_misses(k, keys.iter().copied());
            match near.first() {
                Some(n) => format!("Add key {k:?} to {kind} {name:?}, or reference its existing key {n:?} in the pod template if that is the one meant."),
                None => format!("Add key {k:?} to {kind} {name:?} in namespace {ns:?}."),
            }
        }
        (Some(k), None) => format!("Add key {k:?} to {kind} {name:?} in namespace {ns:?}."),
        (None, _) => {
            let same_kind = if kind == "Secret" {
                &snap.secrets
            } else {
                &snap.configmaps
            };
            let near = near_misses(
                name,
                same_kind
                    .iter()
                    .filter(|o| o.namespace == ns)
                    .map(|o| o.name.as_str()),
            );
            let create = if kind == "Secret" {
                format!("kubectl create secret generic {name} -n {ns} --from-literal=<key>=<value>")
            } else {
                format!("kubectl create configmap {name} -n {ns} --from-literal=<key>=<value>")
            };
            match near.first() {
                Some(n) => format!("Create {kind} {name:?} ({create}), or point the pod template at the existing {n:?} if that is the one meant."),
                None => format!("Create {kind} {name:?} in namespace {ns:?} ({create}) with the keys the pod references."),
            }
        }
    };
    i.fix(fix)
}

/// For a pod that is not ready: a non-optional reference to a Secret/ConfigMap (or key)
/// that the snapshot shows does not exist (e.g. a volume that cannot mount).
pub(crate) fn missing_refs(snap: &Snapshot, pod: &Pod) -> Option<PodIssue> {
    let ns = ns_of(&pod.metadata);
    let mounts: Vec<String> = snap
        .events_for("Pod", ns, name_of(&pod.metadata))
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("FailedMount"))
        .map(event_line)
        .collect();
    let container = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map_or("", |c| c.name.as_str());
    for r in refs(pod).into_iter().filter(|r| !r.optional) {
        if snap.is_forbidden(plural(r.kind)) {
            continue;
        }
        let found = lookup(snap, r.kind, ns, &r.name);
        let issue = match (&r.key, found) {
            (_, None) => missing(snap, ns, r.kind, &r.name, None, "", container),
            (Some(k), Some(obj)) if !obj.keys.contains(k) => {
                missing(snap, ns, r.kind, &r.name, Some(k), "", container)
            }
            _ => continue,
        };
        let issue = mounts.iter().fold(issue, |i, m| i.ev(m.clone()));
        return Some(issue);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::pods::pod_findings;
    use crate::rules::testutil::*;
    use crate::snapshot::KeysOnly;
    use serde_json::json;

    fn spec() -> serde_json::Value {
        json!({"containers": [container("app", json!({"env": [{"name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}]}))]})
    }

    /// Pod `web-0` stuck in CreateContainerConfigError with the kubelet's `msg`.
    fn config_error_pod(msg: &str) -> k8s_openapi::api::core::v1::Pod {
        pod(
            "web-0",
            "web",
            spec(),
            pod_status(
                "Pending",
                vec![waiting(
                    "app",
                    "CreateContainerConfigError",
                    msg,
                    0,
                    json!({}),
                )],
            ),
        )
    }

    fn keys(name: &str, keys: &[&str]) -> KeysOnly {
        KeysOnly {
            namespace: NS.into(),
            name: name.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn config_error_message_classifies() {
        for (msg, cause, ev) in [
            (
                "secret \"db-creds\" not found",
                "missing-secret",
                "missing secret: db-creds",
            ),
            (
                "couldn't find key password in Secret app/db-creds",
                "missing-secret-key",
                "missing key: password",
            ),
            (
                "configmap \"app-config\" not found",
                "missing-configmap",
                "missing configmap: app-config",
            ),
            (
                "couldn't find key LOG_LEVEL in ConfigMap app/app-config",
                "missing-configmap-key",
                "missing key: LOG_LEVEL",
            ),
        ] {
            let mut s = snap();
            s.secrets.push(keys("db-creds", &["pasword"]));
            s.pods.push(config_error_pod(msg));
            let f = pod_findings(&s);
            assert_eq!(causes(&f), [cause], "{msg}");
            assert!(
                f[0].evidence.iter().any(|e| e == ev),
                "{msg}: {:?}",
                f[0].evidence
            );
            assert!(f[0].evidence.iter().any(|e| e == msg));
        }
    }

    #[test]
    fn missing_key_suggests_near_miss_and_never_crash_loop() {
        let mut s = snap();
        s.secrets.push(keys("db-creds", &["pasword", "username"]));
        s.pods.push(config_error_pod(
            "couldn't find key password in Secret app/db-creds",
        ));
        let f = pod_findings(&s);
        assert!(f[0].fix.description.contains("\"pasword\""));
        assert!(evidence_has(&f[0], "has keys: pasword, username"));
    }

    #[test]
    fn spec_refs_checked_for_stuck_pods_only() {
        let vol = json!({"containers": [container("app", json!({}))],
            "volumes": [{"name": "cfg", "configMap": {"name": "app-config"}},
                        {"name": "opt", "secret": {"secretName": "maybe", "optional": true}}]});
        let mut s = snap();
        s.pods.push(pod(
            "web-0",
            "web",
            vol.clone(),
            pod_status(
                "Pending",
                vec![waiting("app", "ContainerCreating", "", 0, json!({}))],
            ),
        ));
        s.events.push(event(
            "Pod",
            "web-0",
            "Warning",
            "FailedMount",
            "MountVolume.SetUp failed for volume \"cfg\" : configmap \"app-config\" not found",
        ));
        let f = pod_findings(&s);
        assert_eq!(causes(&f), ["missing-configmap"]);
        assert!(evidence_has(&f[0], "MountVolume.SetUp failed"));
        // Present ConfigMap, optional Secret absent: nothing wrong.
        s.configmaps.push(keys("app-config", &["a"]));
        s.events.clear();
        s.pods[0] = ready_pod("web-0", "web", vol);
        assert!(pod_findings(&s).is_empty());
    }
}
