//! The approval path without a cluster: the pipeline against [`MemStore`], with a
//! scripted approver that can change the store while "the user is deciding".

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use kube::core::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::{json, Value};

use super::run_with;
use crate::audit;
use crate::error::ChangeError;
use crate::memstore::MemStore;
use crate::step::{Action, Change, Outcome, PatchType, Step};
use crate::store::{ApiFailure, StoreError};
use kai_cluster::write::ObjectRef;
use kai_cluster::Kind;
use kai_core::agent::protocol::{ApprovalRequest, Decision};
use kai_core::tools::Approver;

type OnAsk = Box<dyn Fn(&MemStore, usize) + Send + Sync>;

/// Answers from a script (Denied when it runs out), records every request, and runs
/// `on_ask` with the store before answering (the world moving while the user decides).
struct Script {
    store: Arc<MemStore>,
    answers: Mutex<VecDeque<Decision>>,
    seen: Mutex<Vec<ApprovalRequest>>,
    on_ask: Option<OnAsk>,
}

impl Script {
    fn new(store: &Arc<MemStore>, answers: Vec<Decision>) -> Script {
        Script {
            store: store.clone(),
            answers: Mutex::new(answers.into()),
            seen: Mutex::default(),
            on_ask: None,
        }
    }
    fn on_ask(mut self, f: impl Fn(&MemStore, usize) + Send + Sync + 'static) -> Script {
        self.on_ask = Some(Box::new(f));
        self
    }
    fn seen(&self) -> Vec<ApprovalRequest> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Approver for Script {
    async fn request(&self, request: ApprovalRequest) -> Decision {
        let n = {
            let mut s = self.seen.lock().unwrap();
            s.push(request);
            s.len()
        };
        if let Some(f) = &self.on_ask {
            f(&self.store, n);
        }
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Decision::Denied)
    }
}

fn web() -> ObjectRef {
    let kind = Kind {
        resource: ApiResource::erase::<Deployment>(&()),
        caps: ApiCapabilities {
            scope: Scope::Namespaced,
            subresources: vec![],
            operations: vec![],
        },
    };
    ObjectRef::new(kind, Some("shop"), "web").unwrap()
}

fn deployment(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1",
            "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}},
        "status": {"observedGeneration": 1}
    })
}

fn world(replicas: i64) -> (Arc<MemStore>, tempfile::TempDir) {
    let store = Arc::new(MemStore::default());
    store.put(&web(), deployment(replicas));
    (store, tempfile::tempdir().unwrap())
}

fn scale(to: i64) -> Change {
    Change {
        tool: "scale".into(),
        title: format!("scale Deployment shop/web to {to} replicas"),
        kubectl: String::new(),
        steps: vec![Step {
            target: web(),
            action: Action::Patch(PatchType::Merge, json!({"spec": {"replicas": to}})),
        }],
    }
}

fn replicas(store: &MemStore) -> i64 {
    store.get(&web()).unwrap()["spec"]["replicas"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_denied_change_sends_no_write_and_is_audited() {
    let (store, dir) = world(1);
    let script = Script::new(&store, vec![Decision::Denied]);
    let r = run_with(store.as_ref(), &script, false, dir.path(), &scale(3)).await;
    assert!(matches!(r, Err(ChangeError::Denied)), "{r:?}");
    assert_eq!(store.writes(), 0);
    assert_eq!(replicas(&store), 1);
    let log = audit::read_lines(dir.path()).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].decision, "denied");
    assert!(log[0].status.is_none() && !log[0].applied);
    // What the user saw is the diff of exactly this change.
    let seen = script.seen();
    assert!(seen[0].diff.contains("-  replicas: 1") && seen[0].diff.contains("+  replicas: 3"));
}

#[tokio::test]
async fn an_approved_change_is_on_disk_as_pending_before_it_is_written() {
    let (store, dir) = world(1);
    let data = dir.path().to_path_buf();
    let seen_at_write: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let s = seen_at_write.clone();
    *store.before_write.lock().unwrap() = Some(Box::new(move |_| {
        let lines = audit::read_lines(&data).unwrap();
        s.lock()
            .unwrap()
            .push(lines.last().and_then(|r| r.status.clone()));
    }));
    let script = Script::new(&store, vec![Decision::Approved]);
    let out = run_with(store.as_ref(), &script, false, dir.path(), &scale(3))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Applied { .. }));
    assert_eq!(store.writes(), 1);
    assert_eq!(replicas(&store), 3);
    assert_eq!(
        *seen_at_write.lock().unwrap(),
        vec![Some("pending".to_string())]
    );
    let lines = audit::read_lines(dir.path()).unwrap();
    let status: Vec<Option<&str>> = lines.iter().map(|r| r.status.as_deref()).collect();
    assert_eq!(status, [Some("pending"), Some("completed")]);
    assert_eq!(audit::read_all(dir.path()).unwrap().len(), 1);
    // The write carried the resourceVersion the user's diff was made against.
    let written = store.written.lock().unwrap()[0].clone();
    let kai_cluster::write::WriteOp::Patch(_, body) = written else {
        panic!("{written:?}")
    };
    assert!(
        body.pointer("/metadata/resourceVersion").is_some(),
        "{body}"
    );
}

#[tokio::test]
async fn bookkeeping_that_moves_under_the_approval_does_not_ask_again() {
    let (store, dir) = world(1);
    let script =
        Script::new(&store, vec![Decision::Approved]).on_ask(|s, _| s.touch_bookkeeping(&web()));
    run_with(store.as_ref(), &script, false, dir.path(), &scale(3))
        .await
        .unwrap();
    assert_eq!(script.seen().len(), 1, "one yes is enough");
    assert_eq!(replicas(&store), 3);
    assert_eq!(store.writes(), 1);
    assert_eq!(audit::read_all(dir.path()).unwrap().len(), 1);
}

#[tokio::test]
async fn a_spec_change_under_the_approval_is_shown_again_and_nothing_unshown_is_applied() {
    let (store, dir) = world(1);
    let script = Script::new(&store, vec![Decision::Approved, Decision::Denied]).on_ask(|s, n| {
        if n == 1 {
            s.edit(
                &web(),
                "/spec/template/spec/containers/0/image",
                json!("nginx:1.26"),
            );
        }
    });
    let r = run_with(store.as_ref(), &script, false, dir.path(), &scale(3)).await;
    assert!(matches!(r, Err(ChangeError::Denied)), "{r:?}");
    let seen = script.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].title.contains("changed since you approved"),
        "{}",
        seen[1].title
    );
    assert_eq!(
        store.writes(),
        0,
        "the first yes was for a diff that no longer held"
    );
    assert_eq!(replicas(&store), 1);
    let log = audit::read_all(dir.path()).unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[0].error.as_deref().unwrap_or("").contains("changed"));
}

#[tokio::test]
async fn a_race_lost_at_the_write_is_retried_not_reasked() {
    let (store, dir) = world(1);
    store
        .fail_writes
        .lock()
        .unwrap()
        .push(StoreError::Api(ApiFailure {
            code: 409,
            reason: "Conflict".into(),
            message: "the object has been modified".into(),
        }));
    let script = Script::new(&store, vec![Decision::Approved]);
    run_with(store.as_ref(), &script, false, dir.path(), &scale(2))
        .await
        .unwrap();
    assert_eq!(script.seen().len(), 1);
    assert_eq!(replicas(&store), 2);
    assert_eq!(store.writes(), 1);
}

#[tokio::test]
async fn a_json_patch_whose_precondition_fails_with_a_bare_422_is_retried() {
    let (store, dir) = world(1);
    // The object moves between the re-check and the write, once.
    let once = Arc::new(Mutex::new(true));
    let o = once.clone();
    *store.before_write.lock().unwrap() = Some(Box::new(move |s| {
        if std::mem::take(&mut *o.lock().unwrap()) {
            s.touch_bookkeeping(&web());
        }
    }));
    let mut change = scale(4);
    change.steps[0].action = Action::Patch(
        PatchType::Json,
        json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]),
    );
    let script = Script::new(&store, vec![Decision::Approved]);
    run_with(store.as_ref(), &script, false, dir.path(), &change)
        .await
        .unwrap();
    assert_eq!(replicas(&store), 4);
    assert_eq!(script.seen().len(), 1);
}

#[tokio::test]
async fn an_object_that_never_holds_still_is_not_written() {
    let (store, dir) = world(1);
    *store.before_write.lock().unwrap() = Some(Box::new(|s| s.touch_bookkeeping(&web())));
    let script = Script::new(&store, vec![Decision::Approved]);
    let r = run_with(store.as_ref(), &script, false, dir.path(), &scale(3)).await;
    assert!(
        matches!(&r, Err(ChangeError::ApplyFailed { message, .. }) if message.contains("kept changing")),
        "{r:?}"
    );
    assert_eq!(store.writes(), 0);
    assert_eq!(replicas(&store), 1);
    // Recorded: pending before the first attempt, then the failure.
    let log = audit::read_all(dir.path()).unwrap();
    assert_eq!(log.len(), 1);
    assert!(!log[0].applied && log[0].error.is_some());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_audit_log_that_refuses_writes_stops_everything_before_the_first_read() {
    let (store, dir) = world(1);
    std::os::unix::fs::symlink("/dev/full", audit::path(dir.path())).unwrap();
    let script = Script::new(&store, vec![]);
    let r = run_with(store.as_ref(), &script, true, dir.path(), &scale(3)).await;
    assert!(matches!(r, Err(ChangeError::Audit(_))), "{r:?}");
    assert!(
        store.log.lock().unwrap().is_empty(),
        "nothing read, nothing sent"
    );
    assert!(script.seen().is_empty());
}

#[tokio::test]
async fn a_dangerous_outcome_asks_for_the_name() {
    let (store, dir) = world(3);
    let script = Script::new(&store, vec![Decision::Denied]);
    let mut change = scale(0);
    // Whatever the request looks like: a JSON patch that ends at zero.
    change.steps[0].action = Action::Patch(
        PatchType::Json,
        json!([{"op": "replace", "path": "/spec/replicas", "value": 1},
               {"op": "replace", "path": "/spec/replicas", "value": 0}]),
    );
    let _ = run_with(store.as_ref(), &script, false, dir.path(), &change).await;
    let seen = script.seen();
    assert!(seen[0].dangerous, "{:?}", seen[0]);
    assert_eq!(seen[0].confirm_name.as_deref(), Some("web"));
    assert!(
        seen[0].title.contains("scales to zero"),
        "{}",
        seen[0].title
    );
}

#[tokio::test]
async fn no_visible_change_asks_nobody() {
    let (store, dir) = world(3);
    let script = Script::new(&store, vec![]);
    let out = run_with(store.as_ref(), &script, false, dir.path(), &scale(3))
        .await
        .unwrap();
    assert_eq!(out, Outcome::NoChange);
    assert!(script.seen().is_empty());
    assert_eq!(store.writes(), 0);
}

#[tokio::test]
async fn yes_approves_without_asking_and_says_so_in_the_log() {
    let (store, dir) = world(1);
    let script = Script::new(&store, vec![]);
    run_with(store.as_ref(), &script, true, dir.path(), &scale(5))
        .await
        .unwrap();
    assert!(script.seen().is_empty());
    assert_eq!(replicas(&store), 5);
    let log = audit::read_all(dir.path()).unwrap();
    assert_eq!(log[0].decision, "auto_approved");
    assert!(log[0].applied);
}

#[tokio::test]
async fn a_patch_of_a_missing_object_is_a_clear_error_without_asking() {
    let store = Arc::new(MemStore::default());
    let dir = tempfile::tempdir().unwrap();
    let script = Script::new(&store, vec![Decision::Approved]);
    let r = run_with(store.as_ref(), &script, false, dir.path(), &scale(2)).await;
    assert!(
        matches!(&r, Err(e) if e.to_string().contains("not found")),
        "{r:?}"
    );
    assert!(script.seen().is_empty());
}
