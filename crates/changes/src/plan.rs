//! The pure half of the change pipeline: what a request body is with its precondition,
//! which fields a change touches, and whether an object that moved since the user saw
//! the diff still gets exactly the approved change. No I/O here; every decision is
//! unit-tested without a cluster.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::diff;
use super::Action;
use kai_cluster::write::{PatchType, WriteOp};

/// Annotations controllers write on the objects they manage. They move on their own
/// (a rollout bumps the revision, a provisioner binds a claim), say nothing about what
/// the user asked for, and must never turn an approval into a re-ask.
pub const CONTROLLER_ANNOTATIONS: &[&str] = &[
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "endpoints.kubernetes.io/last-change-trigger-time",
    "control-plane.alpha.kubernetes.io/leader",
    "autoscaling.alpha.kubernetes.io/conditions",
    "autoscaling.alpha.kubernetes.io/current-metrics",
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "pv.kubernetes.io/provisioned-by",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/selected-node",
    "node.alpha.kubernetes.io/ttl",
    "volumes.kubernetes.io/controller-managed-attach-detach",
];

/// What a person judges when looking at an object: [`diff::clean`] (no status, no
/// server bookkeeping) without the annotations controllers maintain.
pub fn user_content(obj: &Value) -> Value {
    let mut v = diff::clean(obj);
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            for k in CONTROLLER_ANNOTATIONS {
                a.remove(*k);
            }
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    v
}

/// One changed leaf: its JSON pointer, before and after (`None` = absent).
pub type ChangeSet = BTreeMap<String, (Option<Value>, Option<Value>)>;

/// The fields a change touches, leaf by leaf, over [`user_content`] of both states.
/// Two changes with the same set show the user the same thing, whatever the context
/// lines of their diffs.
pub fn change_set(before: Option<&Value>, after: Option<&Value>) -> ChangeSet {
    let b = before.map(user_content);
    let a = after.map(user_content);
    let mut out = ChangeSet::new();
    walk("", b.as_ref(), a.as_ref(), &mut out);
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn walk(path: &str, b: Option<&Value>, a: Option<&Value>, out: &mut ChangeSet) {
    match (b, a) {
        (Some(Value::Object(bm)), Some(Value::Object(am))) => {
            let keys: std::collections::BTreeSet<&String> = bm.keys().chain(am.keys()).collect();
            for k in keys {
                walk(&format!("{path}/{}", escape(k)), bm.get(k), am.get(k), out);
            }
        }
        (Some(Value::Array(ba)), Some(Value::Array(aa))) => {
            for i in 0..ba.len().max(aa.len()) {
                walk(&format!("{path}/{i}"), ba.get(i), aa.get(i), out);
            }
        }
        (b, a) if b == a => {}
        (b, a) => {
            out.insert(path.to_string(), (b.cloned(), a.cloned()));
        }
    }
}

/// How the object stands when an approved change is about to be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Same resourceVersion as at diff time: apply as approved.
    Unchanged,
    /// Only status, server bookkeeping or controller annotations moved: dry-run again
    /// with the new resourceVersion, and apply if the change set is the same.
    OnlyBookkeeping,
    /// Something the user would judge changed (spec, data, labels, the object appeared
    /// or vanished): show the new diff and ask again.
    Changed,
}

/// Compare the object the user saw with the object now.
pub fn freshness(seen: Option<&Value>, now: Option<&Value>) -> Freshness {
    let rv = |v: Option<&Value>| {
        v.and_then(|v| v.pointer("/metadata/resourceVersion"))
            .and_then(Value::as_str)
            .map(String::from)
    };
    match (seen, now) {
        (None, None) => Freshness::Unchanged,
        (Some(_), None) | (None, Some(_)) => Freshness::Changed,
        (Some(s), Some(n)) if rv(Some(s)) == rv(Some(n)) => Freshness::Unchanged,
        (Some(s), Some(n)) => {
            // A different uid is a different object, even with the same content.
            let uid = |v: &Value| v.pointer("/metadata/uid").cloned();
            if uid(s) != uid(n) || user_content(s) != user_content(n) {
                Freshness::Changed
            } else {
                Freshness::OnlyBookkeeping
            }
        }
    }
}

/// Whether a re-run dry run still yields the change the user approved.
pub fn same_change(
    approved: (Option<&Value>, Option<&Value>),
    now: (Option<&Value>, Option<&Value>),
) -> bool {
    change_set(approved.0, approved.1) == change_set(now.0, now.1)
}

/// The write for an action, with the live object's resourceVersion as a precondition so
/// the API server itself refuses to apply over a change made after the diff.
pub fn write_op(action: &Action, rv: Option<&str>) -> WriteOp {
    match action {
        Action::Delete => WriteOp::Delete {
            resource_version: rv.map(String::from),
        },
        Action::Create(b) => WriteOp::Create(b.clone()),
        Action::Patch(PatchType::Json, Value::Array(ops)) => {
            let mut ops = ops.clone();
            if let Some(rv) = rv {
                ops.insert(
                    0,
                    json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}),
                );
            }
            WriteOp::Patch(PatchType::Json, Value::Array(ops))
        }
        Action::Patch(pt, b) => WriteOp::Patch(*pt, with_rv(b, rv)),
        Action::Apply(b) => WriteOp::Apply(with_rv(b, rv)),
    }
}

fn with_rv(body: &Value, rv: Option<&str>) -> Value {
    let mut body = body.clone();
    if let (Some(rv), Value::Object(m)) = (rv, &mut body) {
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Value::Object(meta) = meta {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
    }
    body
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn deploy(rv: &str, replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": rv,
                "annotations": {"deployment.kubernetes.io/revision": "1", "team": "a"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"observedGeneration": 1}
        })
    }

    #[test]
    fn change_sets_name_the_leaves_that_change() {
        let cs = change_set(
            Some(&deploy("1", 1, "nginx:1")),
            Some(&deploy("2", 3, "nginx:1")),
        );
        assert_eq!(cs.len(), 1, "{cs:?}");
        assert_eq!(cs["/spec/replicas"], (Some(json!(1)), Some(json!(3))));
        let cs = change_set(Some(&deploy("1", 1, "a")), None);
        assert_eq!(cs.len(), 1);
        assert!(cs.contains_key(""));
        let cs = change_set(None, Some(&deploy("1", 1, "a")));
        assert_eq!(cs[""].0, None);
    }

    #[test]
    fn status_and_controller_annotations_are_bookkeeping() {
        let seen = deploy("10", 1, "nginx:1");
        let mut now = deploy("11", 1, "nginx:1");
        now["status"]["observedGeneration"] = json!(7);
        now["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("2");
        assert_eq!(
            freshness(Some(&seen), Some(&now)),
            Freshness::OnlyBookkeeping
        );
        assert_eq!(freshness(Some(&seen), Some(&seen)), Freshness::Unchanged);
    }

    #[test]
    fn spec_labels_and_user_annotations_are_changes() {
        let seen = deploy("10", 1, "nginx:1");
        let image = deploy("11", 1, "nginx:2");
        assert_eq!(freshness(Some(&seen), Some(&image)), Freshness::Changed);
        let mut ann = deploy("11", 1, "nginx:1");
        ann["metadata"]["annotations"]["team"] = json!("b");
        assert_eq!(freshness(Some(&seen), Some(&ann)), Freshness::Changed);
        let mut recreated = deploy("11", 1, "nginx:1");
        recreated["metadata"]["uid"] = json!("u2");
        assert_eq!(freshness(Some(&seen), Some(&recreated)), Freshness::Changed);
        assert_eq!(freshness(Some(&seen), None), Freshness::Changed);
        assert_eq!(freshness(None, Some(&seen)), Freshness::Changed);
    }

    #[test]
    fn the_same_change_on_a_moved_object_is_the_same() {
        let live = deploy("10", 1, "nginx:1");
        let result = deploy("10", 3, "nginx:1");
        let mut live2 = deploy("12", 1, "nginx:1");
        live2["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("5");
        let mut result2 = deploy("12", 3, "nginx:1");
        result2["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("5");
        assert!(same_change(
            (Some(&live), Some(&result)),
            (Some(&live2), Some(&result2))
        ));
        let result3 = deploy("12", 4, "nginx:1");
        assert!(!same_change(
            (Some(&live), Some(&result)),
            (Some(&live2), Some(&result3))
        ));
    }

    #[test]
    fn preconditions_go_into_every_body() {
        let op = write_op(
            &Action::Patch(
                PatchType::Json,
                json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]),
            ),
            Some("42"),
        );
        let WriteOp::Patch(_, Value::Array(ops)) = op else {
            panic!()
        };
        assert_eq!(ops[0]["op"], "test");
        assert_eq!(ops[0]["value"], "42");
        let op = write_op(
            &Action::Patch(PatchType::Merge, json!({"spec": {"replicas": 2}})),
            Some("42"),
        );
        assert_eq!(
            op,
            WriteOp::Patch(
                PatchType::Merge,
                json!({"spec": {"replicas": 2}, "metadata": {"resourceVersion": "42"}})
            )
        );
        assert_eq!(
            write_op(&Action::Delete, Some("7")),
            WriteOp::Delete {
                resource_version: Some("7".into())
            }
        );
        assert_eq!(
            write_op(&Action::Create(json!({"a": 1})), Some("7")),
            WriteOp::Create(json!({"a": 1}))
        );
    }
}
