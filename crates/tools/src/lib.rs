//! kai's standard tools: the cluster reads ([`read`]), the changes ([`mutate`]), and
//! pre-gathering ([`gather`]), bound to the core's tool framework.
//!
//! A tool here is a [`ClusterTool`]: an arguments struct (the schema the model sees is
//! generated from it), a description in `tools/<name>.md` at the top of the repository,
//! and a handler that gets its environment ([`ToolEnv`]: the cluster, the output budget,
//! `--yes`, the audit directory) next to the core's per-call [`CallCtx`]. [`handlers`]
//! is the one list of them; [`registry`] binds it to one environment, and the agent only
//! ever sees the bound handlers.

/// `const NAME` and `const DESCRIPTION` of a [`ClusterTool`] impl: the name, and the
/// text of `tools/<name>.md` (compiled in, so the binary is whole).
///
/// `named!("scale", action)` is for a change the model reaches only as an action of
/// `propose_change` ([`mutate::ProposeChange`]): it has no description of its own, and
/// since a [`Registry`] refuses a tool without one, it can never be offered by itself.
/// Its name is what the audit log and the progress lines call the change.
macro_rules! named {
    ($name:literal) => {
        const NAME: &'static str = $name;
        const DESCRIPTION: &'static str = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tools/",
            $name,
            ".md"
        ));
    };
    ($name:literal, action) => {
        const NAME: &'static str = $name;
        const DESCRIPTION: &'static str = "";
    };
}

pub mod decls;
pub mod docs;
pub mod gather;
pub mod generate;
pub mod mutate;
pub mod read;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use kai_changes::{Change, ChangeEnv, ChangeError};
use kai_cluster::{Cluster, ClusterError, NamespaceView, TurnReads};
use kai_core::tools::{
    handler, summarize_args, CallCtx, Registry, RegistryError, Tool, ToolError, ToolHandler, TurnId,
};

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
    /// What the current turn has read (shared by clones of this environment).
    pub reads: Arc<TurnReads>,
}

impl ToolEnv {
    pub fn cluster(&self) -> Result<&Arc<Cluster>, ToolError> {
        self.cluster.as_ref().ok_or_else(|| {
            ToolError::Model(
                "no Kubernetes cluster is connected, so cluster tools are unavailable; answer from what you know and say so".into(),
            )
        })
    }

    /// A view of `ns` (the session default when `None`, `*` for all) sharing what the
    /// call's turn has read there already; outside a turn, a fresh read.
    pub fn view(&self, ctx: &CallCtx, ns: Option<&str>) -> Result<NamespaceView<'_>, ToolError> {
        self.view_of(ctx, ns, true)
    }

    /// [`ToolEnv::view`] of one namespace: `*` is refused as the invalid namespace it is
    /// for a tool that reads one object.
    pub fn view_one(
        &self,
        ctx: &CallCtx,
        ns: Option<&str>,
    ) -> Result<NamespaceView<'_>, ToolError> {
        self.view_of(ctx, ns, false)
    }

    fn view_of(
        &self,
        ctx: &CallCtx,
        ns: Option<&str>,
        all: bool,
    ) -> Result<NamespaceView<'_>, ToolError> {
        let cluster = self.cluster()?;
        let ns = match ns {
            Some("*") if all => None,
            ns => Some(cluster.checked_namespace(ns).map_err(cluster_error)?),
        };
        self.reads
            .view(cluster, ctx.turn.map(TurnId::get), ns.as_deref())
            .map_err(cluster_error)
    }
}

/// A tool of the standard set: a [`Tool`] that is also given its [`ToolEnv`]. Write
/// `named!("my_tool");` in the impl for `NAME` and `DESCRIPTION` (`tools/my_tool.md`).
#[async_trait]
pub trait ClusterTool: Send + Sync + 'static {
    /// See [`Tool::Args`].
    type Args: DeserializeOwned + JsonSchema + Send;
    const NAME: &'static str;
    /// `tools/<NAME>.md`, as [`kai_core::tools::prose`].
    const DESCRIPTION: &'static str;
    /// True when the tool can change anything. Defaults to true: safe when in doubt.
    fn is_mutating(&self) -> bool {
        true
    }
    /// See [`Tool::shown_args`].
    fn shown_args(&self, args: &Value) -> Value {
        args.clone()
    }
    /// See [`Tool::summarize`].
    fn summarize(&self, args: &Value) -> String {
        summarize_args(Self::NAME, &self.shown_args(args))
    }
    async fn call(
        &self,
        env: &ToolEnv,
        ctx: &CallCtx,
        args: Self::Args,
    ) -> Result<String, ToolError>;
}

/// A [`ClusterTool`] bound to its environment: the [`Tool`] a [`Registry`] holds.
pub struct Bound<T> {
    tool: T,
    env: Arc<ToolEnv>,
}

/// `tool` as a handler that runs with `env`.
pub fn bind<T: ClusterTool>(env: &Arc<ToolEnv>, tool: T) -> Arc<dyn ToolHandler> {
    handler(Bound {
        tool,
        env: env.clone(),
    })
}

#[async_trait]
impl<T: ClusterTool> Tool for Bound<T> {
    type Args = T::Args;
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn description(&self) -> &'static str {
        T::DESCRIPTION
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
    async fn call(&self, ctx: &CallCtx, args: T::Args) -> Result<String, ToolError> {
        self.tool.call(&self.env, ctx, args).await
    }
}

/// The standard set, bound to `env`: one entry per tool, and the only list there is
/// (the registry, read-only sessions and pre-gathering's [`read::run`] all take it from
/// here). Whether a tool mutates is its handler's answer.
pub fn handlers(env: &Arc<ToolEnv>) -> Vec<Arc<dyn ToolHandler>> {
    vec![
        bind(env, read::ListResources),
        bind(env, read::GetResource),
        bind(env, read::Describe),
        bind(env, read::GetLogs),
        bind(env, read::ListEvents),
        bind(env, read::Analyze),
        // Every change, as one tool with an `action` (apply, patch, scale, restart,
        // undo, set_image, delete): one compact declaration instead of seven.
        bind(env, mutate::ProposeChange),
    ]
}

/// The standard set, bound to `env`. With `read_only`, mutating tools are not registered
/// at all, so they are neither declared to the model nor callable.
pub fn registry(env: Arc<ToolEnv>, read_only: bool) -> Result<Registry, RegistryError> {
    let mut r = Registry::new();
    for h in handlers(&env) {
        if !(read_only && h.is_mutating()) {
            r.register(h)?;
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
    let done = kai_changes::run(&change_env, &change).await;
    // Whatever happened, the cluster may not be what this turn read before: the next
    // read reads again.
    env.reads.forget();
    Ok(done.map_err(change_error)?.message())
}

/// A session without a cluster, for unit tests.
#[cfg(test)]
pub(crate) fn offline_env() -> Arc<ToolEnv> {
    Arc::new(ToolEnv {
        cluster: None,
        budget_tokens: 1000,
        auto_approve: false,
        data_dir: std::env::temp_dir(),
        reads: Default::default(),
    })
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
