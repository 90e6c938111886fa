//! An in-memory [`Store`] for the pipeline's tests: objects by path, resourceVersions
//! that move on every write, preconditions enforced like the API server (409 for a
//! resourceVersion in the body, 422 for a failed JSON-patch `test`, as 1.20 answers),
//! merge and JSON patches applied with the `json-patch` crate, and a log of every call so
//! a test can assert what was read, dry-run and written, in which order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::store::{ApiFailure, Store, StoreError};
use kai_cluster::write::{ObjectRef, PatchType, WriteOp, WriteRequest};

type Hook = Box<dyn Fn(&MemStore) + Send + Sync>;

#[derive(Default)]
pub(crate) struct MemStore {
    objects: Mutex<BTreeMap<String, Value>>,
    rv: AtomicU64,
    /// `read PATH`, `dry PATCH PATH`, `write PATCH PATH`, in order.
    pub log: Mutex<Vec<String>>,
    /// Failures to answer the next real writes with, first in first out.
    pub fail_writes: Mutex<Vec<StoreError>>,
    /// Runs before every real write is applied (after the pipeline decided to send it).
    pub before_write: Mutex<Option<Hook>>,
    /// The bodies of the real writes, in order.
    pub written: Mutex<Vec<WriteOp>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn conflict(message: &str) -> StoreError {
    StoreError::Api(ApiFailure {
        code: 409,
        reason: "Conflict".into(),
        message: message.into(),
    })
}

fn rv_of(v: &Value) -> Option<String> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(String::from)
}

impl MemStore {
    /// Store `obj` at `target`'s path with a fresh resourceVersion.
    pub fn put(&self, target: &ObjectRef, mut obj: Value) {
        self.stamp(&mut obj);
        lock(&self.objects).insert(target.path(), obj);
    }

    pub fn get(&self, target: &ObjectRef) -> Option<Value> {
        lock(&self.objects).get(&target.path()).cloned()
    }

    /// What a controller does all the time: write status and its own annotation.
    pub fn touch_bookkeeping(&self, target: &ObjectRef) {
        let mut objs = lock(&self.objects);
        if let Some(o) = objs.get_mut(&target.path()) {
            let n = self.rv.fetch_add(1, Ordering::SeqCst) + 1;
            o["status"]["observedGeneration"] = json!(n);
            o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                json!(n.to_string());
            o["metadata"]["resourceVersion"] = json!(n.to_string());
        }
    }

    /// What another person does: change the spec at `pointer`.
    pub fn edit(&self, target: &ObjectRef, pointer: &str, value: Value) {
        let mut objs = lock(&self.objects);
        if let Some(o) = objs.get_mut(&target.path()) {
            if let Some(slot) = o.pointer_mut(pointer) {
                *slot = value;
            }
            let n = self.rv.fetch_add(1, Ordering::SeqCst) + 1;
            o["metadata"]["resourceVersion"] = json!(n.to_string());
        }
    }

    pub fn writes(&self) -> usize {
        lock(&self.written).len()
    }

    fn stamp(&self, obj: &mut Value) {
        let n = self.rv.fetch_add(1, Ordering::SeqCst) + 1;
        obj["metadata"]["resourceVersion"] = json!(n.to_string());
    }

    /// The object `req` would leave behind, or why the server would refuse it.
    fn outcome(&self, req: &WriteRequest) -> Result<Option<Value>, StoreError> {
        let current = self.get(&req.target);
        let current_rv = current.as_ref().and_then(rv_of);
        let not_found = || {
            StoreError::Api(ApiFailure {
                code: 404,
                reason: "NotFound".into(),
                message: format!("{} not found", req.target.label()),
            })
        };
        let merged = |body: &Value| -> Result<Value, StoreError> {
            if let Some(want) = rv_of(body) {
                if Some(&want) != current_rv.as_ref() {
                    return Err(conflict("the object has been modified"));
                }
            }
            let mut doc = current.clone().unwrap_or(json!({}));
            json_patch::merge(&mut doc, body);
            Ok(doc)
        };
        match &req.op {
            WriteOp::Apply(b) => merged(b).map(Some),
            WriteOp::Patch(PatchType::Merge | PatchType::Strategic, b) => {
                if current.is_none() {
                    return Err(not_found());
                }
                merged(b).map(Some)
            }
            WriteOp::Patch(PatchType::Json, ops) => {
                let mut doc = current.clone().ok_or_else(not_found)?;
                let ops: json_patch::Patch = serde_json::from_value(ops.clone())
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                json_patch::patch(&mut doc, &ops).map_err(|_| {
                    // Kubernetes 1.20 says no more than this for a failed `test`.
                    StoreError::Api(ApiFailure {
                        code: 422,
                        reason: "Invalid".into(),
                        message: String::new(),
                    })
                })?;
                Ok(Some(doc))
            }
            WriteOp::Create(b) => match current {
                Some(_) => Err(conflict("already exists")),
                None => Ok(Some(b.clone())),
            },
            WriteOp::Delete { resource_version } => {
                if current.is_none() {
                    return Err(not_found());
                }
                if resource_version.is_some() && resource_version != &current_rv {
                    return Err(conflict("precondition failed"));
                }
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl Store for MemStore {
    async fn read(&self, target: &ObjectRef) -> Result<Option<Value>, StoreError> {
        lock(&self.log).push(format!("read {}", target.path()));
        Ok(self.get(target))
    }

    async fn dry_run(&self, req: &WriteRequest) -> Result<Option<Value>, StoreError> {
        assert!(req.dry_run, "dry_run called with a real write");
        lock(&self.log).push(format!("dry {}", req.target.path()));
        self.outcome(req)
    }

    async fn write(&self, req: &WriteRequest) -> Result<Option<Value>, StoreError> {
        assert!(!req.dry_run, "write called with a dry run");
        lock(&self.log).push(format!("write {}", req.target.path()));
        if let Some(h) = lock(&self.before_write).as_ref() {
            h(self);
        }
        {
            let mut fails = lock(&self.fail_writes);
            if !fails.is_empty() {
                return Err(fails.remove(0));
            }
        }
        let after = self.outcome(req)?;
        lock(&self.written).push(req.op.clone());
        let mut objs = lock(&self.objects);
        match after {
            Some(mut obj) => {
                self.stamp(&mut obj);
                objs.insert(req.target.path(), obj.clone());
                Ok(Some(obj))
            }
            None => {
                objs.remove(&req.target.path());
                Ok(None)
            }
        }
    }

    fn context(&self) -> String {
        "memory".into()
    }

    fn user(&self) -> String {
        "tester".into()
    }
}
