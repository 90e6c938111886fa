//! The small write trait the pipeline runs against: read an object, dry-run a request,
//! send an approved one. [`kai_cluster::Cluster`] implements it (through its write gate);
//! the pipeline's tests implement it in memory, so every approval path is tested without
//! a cluster as well as against one.

use async_trait::async_trait;
use serde_json::Value;

use kai_cluster::write::{ObjectRef, WriteOp, WriteRequest};
use kai_cluster::{Cluster, ClusterError, WriteError};

/// The API server's answer to a refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    /// The server answered with an error status.
    Api(ApiFailure),
    /// The server could not be asked (unreachable, credentials, ...), already classified.
    Cluster(ClusterError),
    /// The request could not be built, or kai's own write gate refused it.
    Invalid(String),
}

impl StoreError {
    pub fn api(&self) -> Option<&ApiFailure> {
        match self {
            StoreError::Api(a) => Some(a),
            _ => None,
        }
    }
}

/// Where changes go.
#[async_trait]
pub trait Store: Send + Sync {
    /// The object as it is now; `None` when it does not exist.
    async fn read(&self, target: &ObjectRef) -> Result<Option<Value>, StoreError>;
    /// The server's result of `req` without persisting it (`req.dry_run` is true); `None`
    /// for a deletion.
    async fn dry_run(&self, req: &WriteRequest) -> Result<Option<Value>, StoreError>;
    /// Send `req` for real. The pipeline calls this only after the user approved the diff
    /// this exact request produces and the approval is on disk in the audit log.
    async fn write(&self, req: &WriteRequest) -> Result<Option<Value>, StoreError>;
    /// The kube context, for the audit log.
    fn context(&self) -> String;
    /// The kubeconfig user, for the audit log.
    fn user(&self) -> String;
}

fn verb(op: &WriteOp) -> &'static str {
    match op {
        WriteOp::Apply(_) | WriteOp::Patch(..) => "patch",
        WriteOp::Create(_) => "create",
        WriteOp::Delete { .. } => "delete",
    }
}

fn resource(target: &ObjectRef) -> String {
    let r = &target.kind().resource;
    if r.group.is_empty() {
        r.plural.clone()
    } else {
        format!("{}.{}", r.plural, r.group)
    }
}

fn from_write(e: WriteError, verb: &str, resource: &str) -> StoreError {
    if let Some(s) = e.api_status() {
        return StoreError::Api(ApiFailure {
            code: s.code,
            reason: s.reason.clone(),
            message: s.message.clone(),
        });
    }
    match e {
        WriteError::Kube(k) => StoreError::Cluster(ClusterError::from_kube(k, verb, resource)),
        WriteError::Build(b) => StoreError::Invalid(b.to_string()),
        WriteError::Refused(r) => StoreError::Invalid(r.to_string()),
    }
}

#[async_trait]
impl Store for Cluster {
    async fn read(&self, target: &ObjectRef) -> Result<Option<Value>, StoreError> {
        match self.read_target(target).await {
            Ok(o) => Ok(o.and_then(|o| serde_json::to_value(o).ok())),
            Err(e) => Err(from_write(e, "get", &resource(target))),
        }
    }

    async fn dry_run(&self, req: &WriteRequest) -> Result<Option<Value>, StoreError> {
        Cluster::dry_run(self, req)
            .await
            .map_err(|e| from_write(e, verb(&req.op), &resource(&req.target)))
    }

    async fn write(&self, req: &WriteRequest) -> Result<Option<Value>, StoreError> {
        let (v, r) = (verb(&req.op), resource(&req.target));
        let approved = self.approve(req).map_err(|e| from_write(e, v, &r))?;
        self.send_approved(approved)
            .await
            .map_err(|e| from_write(e, v, &r))
    }

    fn context(&self) -> String {
        self.context.clone()
    }

    fn user(&self) -> String {
        self.user.clone().unwrap_or_else(|| "unknown".into())
    }
}
