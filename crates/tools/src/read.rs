//! Read-only cluster tools. Handlers are thin: parse arguments, call kai-cluster,
//! which scrubs and budgets every output; map failures to messages for the model.
//!
//! [`run`] is the same dispatch by name, for pre-gathering: what it returns is exactly
//! what the model would get for the same call.

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{bind, ClusterTool, ToolEnv};
use kai_cluster::budget::chars_for;
use kai_cluster::events::{self, EventArgs};
use kai_cluster::logs::{self, LogArgs};
use kai_cluster::objects::{self, ListArgs};
use kai_cluster::{describe, ClusterError, NamespaceView};
use kai_core::tools::{CallCtx, DenyAll, ToolError, ToolHandler};

pub fn handlers(env: &Arc<ToolEnv>) -> Vec<Arc<dyn ToolHandler>> {
    vec![
        bind(env, ListResources),
        bind(env, GetResource),
        bind(env, Describe),
        bind(env, GetLogs),
        bind(env, ListEvents),
        bind(env, Analyze),
    ]
}

/// Run a read tool by name (pre-gathering, tests).
pub async fn run(env: &ToolEnv, tool: &str, args: Value) -> Result<String, ToolError> {
    // Reads ask nobody.
    let ctx = CallCtx::new(Arc::new(DenyAll));
    match tool {
        "list_resources" => ListResources.call(env, &ctx, args).await,
        "get_resource" => GetResource.call(env, &ctx, args).await,
        "describe" => Describe.call(env, &ctx, args).await,
        "get_logs" => GetLogs.call(env, &ctx, args).await,
        "list_events" => ListEvents.call(env, &ctx, args).await,
        "analyze" => Analyze.call(env, &ctx, args).await,
        other => Err(ToolError::Model(format!("{other} is not a read tool"))),
    }
}

fn parse<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, ToolError> {
    serde_json::from_value(args).map_err(|e| {
        ToolError::Model(format!(
            "invalid arguments for {tool}: {e}; send a JSON object matching the tool's schema"
        ))
    })
}

/// Cluster failures are the model's to handle (wrong name, RBAC): the loop goes on.
fn model_err(e: ClusterError) -> ToolError {
    ToolError::Model(e.to_string())
}

#[derive(serde::Deserialize)]
struct ObjectArgs {
    kind: String,
    name: String,
    namespace: Option<String>,
}

pub struct ListResources;

#[async_trait]
impl ClusterTool for ListResources {
    fn name(&self) -> &'static str {
        "list_resources"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, env: &ToolEnv, _ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let a: ListArgs = parse(self.name(), args)?;
        let cluster = env.cluster()?;
        objects::list_resources(cluster, &a, chars_for(env.budget_tokens))
            .await
            .map_err(model_err)
    }
}

pub struct GetResource;

#[async_trait]
impl ClusterTool for GetResource {
    fn name(&self) -> &'static str {
        "get_resource"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, env: &ToolEnv, _ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let a: ObjectArgs = parse(self.name(), args)?;
        let cluster = env.cluster()?;
        objects::get_resource(
            cluster,
            &a.kind,
            &a.name,
            a.namespace.as_deref(),
            chars_for(env.budget_tokens),
        )
        .await
        .map_err(model_err)
    }
}

pub struct Describe;

#[async_trait]
impl ClusterTool for Describe {
    fn name(&self) -> &'static str {
        "describe"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, env: &ToolEnv, _ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let a: ObjectArgs = parse(self.name(), args)?;
        let cluster = env.cluster()?;
        describe::describe(
            cluster,
            &a.kind,
            &a.name,
            a.namespace.as_deref(),
            chars_for(env.budget_tokens),
        )
        .await
        .map_err(model_err)
    }
}

pub struct GetLogs;

#[async_trait]
impl ClusterTool for GetLogs {
    fn name(&self) -> &'static str {
        "get_logs"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, env: &ToolEnv, _ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let a: LogArgs = parse(self.name(), args)?;
        let cluster = env.cluster()?;
        logs::get_logs(cluster, &a, chars_for(env.budget_tokens))
            .await
            .map_err(model_err)
    }
}

pub struct ListEvents;

#[async_trait]
impl ClusterTool for ListEvents {
    fn name(&self) -> &'static str {
        "list_events"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, env: &ToolEnv, _ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let a: EventArgs = parse(self.name(), args)?;
        let cluster = env.cluster()?;
        events::list_events(cluster, &a, chars_for(env.budget_tokens))
            .await
            .map_err(model_err)
    }
}

#[derive(serde::Deserialize)]
struct AnalyzeArgs {
    target: Option<String>,
    namespace: Option<String>,
}

pub struct Analyze;

#[async_trait]
impl ClusterTool for Analyze {
    fn name(&self) -> &'static str {
        "analyze"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, env: &ToolEnv, _ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let a: AnalyzeArgs = parse(self.name(), args)?;
        let cluster = env.cluster()?;
        let ns = cluster
            .list_namespace(a.namespace.as_deref())
            .map_err(model_err)?;
        let target = a.target.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let view = NamespaceView::new(cluster, Some(&ns)).map_err(model_err)?;
        kai_cluster::fetch::analyze_text(&view, target, chars_for(env.budget_tokens))
            .await
            .map_err(|e| ToolError::Model(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env() -> Arc<ToolEnv> {
        Arc::new(ToolEnv {
            cluster: None,
            budget_tokens: 1000,
            auto_approve: false,
            data_dir: std::env::temp_dir(),
        })
    }

    #[test]
    fn read_tools_are_declared_and_not_mutating() {
        let mut r = kai_core::tools::Registry::new();
        for h in handlers(&env()) {
            assert!(!h.is_mutating(), "{}", h.name());
            crate::register(&mut r, h).unwrap();
        }
    }

    #[tokio::test]
    async fn no_cluster_is_a_model_error() {
        let ctx = env();
        let e = run(
            &ctx,
            "describe",
            serde_json::json!({"kind": "pod", "name": "x"}),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ToolError::Model(_)));
        let e = run(&ctx, "get_logs", serde_json::json!({"pods": "x"}))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("invalid arguments"), "{e}");
    }
}
