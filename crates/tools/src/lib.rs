//! kai's standard tools: the cluster reads ([`read`]), the changes ([`mutate`]), and
//! pre-gathering ([`gather`]), bound to the core's tool framework.
//!
//! A tool here is a [`ClusterTool`]: it gets its environment ([`ToolEnv`]: the cluster,
//! the output budget, `--yes`, the audit directory) next to the core's per-call
//! [`CallCtx`]. [`registry`] binds the standard set to one environment; the agent only
//! ever sees the bound handlers.

pub mod decls;
pub mod docs;
pub mod gather;
pub mod mutate;
pub mod read;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use kai_changes::{Change, ChangeEnv, ChangeError};
use kai_cluster::{Cluster, ClusterError};
use kai_core::tools::{summarize_args, CallCtx, Registry, RegistryError, ToolError, ToolHandler};

pub use gather::ClusterGatherer;

/// What the standard tools run with, fixed for a session.
#[derive(Clone)]
pub struct ToolEnv {
    /// `None` when no cluster could be reached: cluster tools then explain that.
    pub cluster: Option<Arc<Cluster>>,
    /// Output budget per tool result, in (estimated) tokens.
    pub budget_tokens: usize,
    /// `--yes`: approve automatically (still dry-run and audited).
    pub auto_approve: bool,
    /// Where the audit log lives.
    pub data_dir: PathBuf,
}

impl ToolEnv {
    pub fn cluster(&self) -> Result<&Arc<Cluster>, ToolError> {
        self.cluster.as_ref().ok_or_else(|| {
            ToolError::Model(
                "no Kubernetes cluster is connected, so cluster tools are unavailable; answer from what you know and say so".into(),
            )
        })
    }
}

/// A tool of the standard set: a [`ToolHandler`] that is also given its [`ToolEnv`].
#[async_trait]
pub trait ClusterTool: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// True when the tool can change anything. Defaults to true: safe when in doubt.
    fn is_mutating(&self) -> bool {
        true
    }
    /// See [`ToolHandler::shown_args`].
    fn shown_args(&self, args: &Value) -> Value {
        args.clone()
    }
    /// See [`ToolHandler::summarize`].
    fn summarize(&self, args: &Value) -> String {
        summarize_args(self.name(), &self.shown_args(args))
    }
    async fn call(&self, env: &ToolEnv, ctx: &CallCtx, args: Value) -> Result<String, ToolError>;
}

/// A [`ClusterTool`] bound to its environment: what a [`Registry`] holds.
pub struct Bound<T> {
    tool: T,
    env: Arc<ToolEnv>,
}

/// `tool` as a handler that runs with `env`.
pub fn bind<T: ClusterTool>(env: &Arc<ToolEnv>, tool: T) -> Arc<dyn ToolHandler> {
    Arc::new(Bound {
        tool,
        env: env.clone(),
    })
}

#[async_trait]
impl<T: ClusterTool> ToolHandler for Bound<T> {
    fn name(&self) -> &'static str {
        self.tool.name()
    }
    fn is_mutating(&self) -> bool {
        self.tool.is_mutating()
    }
    fn shown_args(&self, args: &Value) -> Value {
        self.tool.shown_args(args)
    }
    fn summarize(&self, args: &Value) -> String {
        self.tool.summarize(args)
    }
    async fn call(&self, ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        self.tool.call(&self.env, ctx, args).await
    }
}

/// Register `handler` with its declaration from `tools/` (the mutating cross-check of
/// [`Registry::register_with_decl`] applies).
pub fn register(r: &mut Registry, handler: Arc<dyn ToolHandler>) -> Result<(), RegistryError> {
    let name = handler.name();
    let decl = decls::find(name).ok_or_else(|| RegistryError::NoDecl(name.to_string()))?;
    r.register_with_decl(decl, handler)
}

/// The standard set, bound to `env`. With `read_only`, mutating tools are not registered
/// at all, so they are neither declared to the model nor callable.
pub fn registry(env: Arc<ToolEnv>, read_only: bool) -> Result<Registry, RegistryError> {
    let mut r = Registry::new();
    for h in read::handlers(&env) {
        register(&mut r, h)?;
    }
    if !read_only {
        for h in mutate::handlers(&env) {
            register(&mut r, h)?;
        }
    }
    Ok(r)
}

/// Cluster failures are the model's to handle (wrong name, RBAC): the loop goes on.
pub fn cluster_error(e: ClusterError) -> ToolError {
    ToolError::Model(e.to_string())
}

/// A failed change, as the agent loop takes it.
pub fn change_error(e: ChangeError) -> ToolError {
    match e {
        // The user stopped, or kai cannot record what it would do: the turn ends
        // here rather than letting the model try something else.
        ChangeError::Aborted | ChangeError::Audit(_) => ToolError::Fatal(e.to_string()),
        other => ToolError::Model(other.to_string()),
    }
}

/// Run `change` through dry-run, diff, approval, apply and audit
/// ([`kai_changes::run`]), asking `ctx.approver`; the tool's answer.
pub async fn run_change(env: &ToolEnv, ctx: &CallCtx, change: Change) -> Result<String, ToolError> {
    let change_env = ChangeEnv {
        cluster: env.cluster()?.clone(),
        approver: ctx.approver.clone(),
        auto_approve: env.auto_approve,
        data_dir: env.data_dir.clone(),
    };
    Ok(kai_changes::run(&change_env, &change)
        .await
        .map_err(change_error)?
        .message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_messages_are_what_the_model_is_told() {
        let e = change_error(ChangeError::Denied);
        assert!(
            matches!(&e, ToolError::Model(m) if m.starts_with("the user did not approve this change"))
        );
        let e = change_error(ChangeError::DeniedWithFeedback("use 2 replicas".into()));
        assert!(
            matches!(&e, ToolError::Model(m) if m.contains("the user declined with feedback: use 2 replicas"))
        );
        assert!(matches!(
            change_error(ChangeError::Aborted),
            ToolError::Fatal(_)
        ));
    }
}
