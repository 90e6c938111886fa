//! Read-only cluster tools. Handlers are thin: parse arguments, call `crate::cluster`,
//! which scrubs and budgets every output; map failures to messages for the model.
//!
//! [`run`] is the same dispatch by name, for pre-gathering: what it returns is exactly
//! what the model would get for the same call.

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ToolCtx, ToolError, ToolHandler};
use crate::cluster::budget::chars_for;
use crate::cluster::events::{self, EventArgs};
use crate::cluster::logs::{self, LogArgs};
use crate::cluster::objects::{self, ListArgs};
use crate::cluster::{describe, ClusterError};

pub fn handlers() -> Vec<Arc<dyn ToolHandler>> {
    vec![
        Arc::new(ListResources),
        Arc::new(GetResource),
        Arc::new(Describe),
        Arc::new(GetLogs),
        Arc::new(ListEvents),
        Arc::new(Analyze),
    ]
}

/// Run a read tool by name (pre-gathering, tests).
pub async fn run(ctx: &ToolCtx, tool: &str, args: Value) -> Result<String, ToolError> {
    match tool {
        "list_resources" => ListResources.call(ctx, args).await,
        "get_resource" => GetResource.call(ctx, args).await,
        "describe" => Describe.call(ctx, args).await,
        "get_logs" => GetLogs.call(ctx, args).await,
        "list_events" => ListEvents.call(ctx, args).await,
        "analyze" => Analyze.call(ctx, args).await,
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
impl ToolHandler for ListResources {
    fn name(&self) -> &'static str {
        "list_resources"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, ctx: &ToolCtx, args: Value) -> Result<String, ToolError> {
        let a: ListArgs = parse(self.name(), args)?;
        let cluster = ctx.cluster()?;
        objects::list_resources(cluster, &a, chars_for(ctx.budget_tokens))
            .await
            .map_err(model_err)
    }
}

pub struct GetResource;

#[async_trait]
impl ToolHandler for GetResource {
    fn name(&self) -> &'static str {
        "get_resource"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, ctx: &ToolCtx, args: Value) -> Result<String, ToolError> {
        let a: ObjectArgs = parse(self.name(), args)?;
        let cluster = ctx.cluster()?;
        objects::get_resource(
            cluster,
            &a.kind,
            &a.name,
            a.namespace.as_deref(),
            chars_for(ctx.budget_tokens),
        )
        .await
        .map_err(model_err)
    }
}

pub struct Describe;

#[async_trait]
impl ToolHandler for Describe {
    fn name(&self) -> &'static str {
        "describe"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, ctx: &ToolCtx, args: Value) -> Result<String, ToolError> {
        let a: ObjectArgs = parse(self.name(), args)?;
        let cluster = ctx.cluster()?;
        describe::describe(
            cluster,
            &a.kind,
            &a.name,
            a.namespace.as_deref(),
            chars_for(ctx.budget_tokens),
        )
        .await
        .map_err(model_err)
    }
}

pub struct GetLogs;

#[async_trait]
impl ToolHandler for GetLogs {
    fn name(&self) -> &'static str {
        "get_logs"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, ctx: &ToolCtx, args: Value) -> Result<String, ToolError> {
        let a: LogArgs = parse(self.name(), args)?;
        let cluster = ctx.cluster()?;
        logs::get_logs(cluster, &a, chars_for(ctx.budget_tokens))
            .await
            .map_err(model_err)
    }
}

pub struct ListEvents;

#[async_trait]
impl ToolHandler for ListEvents {
    fn name(&self) -> &'static str {
        "list_events"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, ctx: &ToolCtx, args: Value) -> Result<String, ToolError> {
        let a: EventArgs = parse(self.name(), args)?;
        let cluster = ctx.cluster()?;
        events::list_events(cluster, &a, chars_for(ctx.budget_tokens))
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
impl ToolHandler for Analyze {
    fn name(&self) -> &'static str {
        "analyze"
    }
    fn is_mutating(&self) -> bool {
        false
    }
    async fn call(&self, ctx: &ToolCtx, args: Value) -> Result<String, ToolError> {
        let a: AnalyzeArgs = parse(self.name(), args)?;
        let cluster = ctx.cluster()?;
        let ns = cluster
            .list_namespace(a.namespace.as_deref())
            .map_err(model_err)?;
        let target = a.target.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let findings = if ns == "*" {
            crate::analyze::scan(&cluster.client, None).await
        } else {
            crate::analyze::diagnose(&cluster.client, &ns, target).await
        }
        .map_err(|e| ToolError::Model(e.to_string()))?;
        let scope = match (target, ns.as_str()) {
            (_, "*") => "all namespaces".to_string(),
            (Some(t), _) => format!("{t} in namespace {ns}"),
            (None, _) => format!("namespace {ns}"),
        };
        let text = format!(
            "Analyzer findings for {scope} ({} found, most likely cause first):\n{}",
            findings.len(),
            crate::analyze::render_text(&findings, false)
        );
        Ok(crate::cluster::budget::fit_text(
            &crate::redact::scrub(&text),
            chars_for(ctx.budget_tokens),
            "pass a narrower target",
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn read_tools_are_declared_and_not_mutating() {
        let mut r = crate::tools::Registry::new();
        for h in handlers() {
            assert!(!h.is_mutating(), "{}", h.name());
            r.register(h).unwrap();
        }
    }

    #[tokio::test]
    async fn no_cluster_is_a_model_error() {
        let ctx = ToolCtx {
            cluster: None,
            budget_tokens: 1000,
            approver: Arc::new(crate::tools::DenyAll),
            auto_approve: false,
            data_dir: std::env::temp_dir(),
            cancel: Default::default(),
        };
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
