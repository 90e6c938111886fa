//! Read-only cluster tools. Handlers are thin: take the typed arguments, call
//! kai-cluster, which scrubs and budgets every output; map failures to messages for the
//! model.
//!
//! [`run`] calls a read tool by name for pre-gathering, through the same list and the
//! same argument check as the model's calls: what it returns is exactly what the model
//! would get for the same call.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::{cluster_error, ClusterTool, ToolEnv};
use kai_cluster::budget::chars_for;
use kai_cluster::describe;
use kai_cluster::events::{self, EventArgs};
use kai_cluster::logs::{self, LogArgs};
use kai_cluster::objects::{self, ListArgs};
use kai_core::tools::{CallCtx, DenyAll, Int, ToolError};

/// Run the read tool `tool` with `env` (pre-gathering, tests). `args` are checked as the
/// model's are; a mutating or unknown tool is refused.
pub async fn run(env: &ToolEnv, tool: &str, args: Value) -> Result<String, ToolError> {
    let env = Arc::new(env.clone());
    let handler = crate::handlers(&env)
        .into_iter()
        .find(|h| h.name() == tool && !h.is_mutating())
        .ok_or_else(|| ToolError::Model(format!("{tool} is not a read tool")))?;
    // Reads ask nobody.
    handler.call(&CallCtx::new(Arc::new(DenyAll)), args).await
}

/// A read tool: the unit struct `$tool`, named `$name`, taking `$args`. Its body runs with
/// `$cluster` (the connected cluster; without one the model is told so), `$a` (the
/// arguments) and `$chars` (the output budget in characters); or, for a tool that reads
/// through the turn's view ([`ToolEnv::view`]), with `$env` and `$ctx` instead of
/// `$cluster`.
macro_rules! read_tool {
    ($tool:ident, $name:literal, $args:ty, |$cluster:ident, $a:ident, $chars:ident| $body:block) => {
        read_tool!($tool, $name, $args, |env, _ctx, $a, $chars| {
            let $cluster = env.cluster()?;
            $body
        });
    };
    ($tool:ident, $name:literal, $args:ty, |$env:ident, $ctx:ident, $a:ident, $chars:ident| $body:block) => {
        pub struct $tool;

        #[async_trait]
        impl ClusterTool for $tool {
            type Args = $args;
            named!($name);
            fn is_mutating(&self) -> bool {
                false
            }
            async fn call(
                &self,
                $env: &ToolEnv,
                $ctx: &CallCtx,
                $a: $args,
            ) -> Result<String, ToolError> {
                let $chars = chars_for($env.budget_tokens);
                $body
            }
        }
    };
}

// ---------------------------------------------------------------- list_resources

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListResourcesArgs {
    /// e.g. pods, deploy, svc, a CRD kind
    pub kind: String,
    /// Omit for the session's; "*" for all.
    pub namespace: Option<String>,
    /// e.g. app=web,tier!=cache
    pub label_selector: Option<String>,
    /// e.g. status.phase!=Running
    pub field_selector: Option<String>,
}

read_tool!(
    ListResources,
    "list_resources",
    ListResourcesArgs,
    |cluster, a, chars| {
        let a = ListArgs {
            kind: a.kind,
            namespace: a.namespace,
            label_selector: a.label_selector,
            field_selector: a.field_selector,
        };
        objects::list_resources(cluster, &a, chars)
            .await
            .map_err(cluster_error)
    }
);

// ---------------------------------------------------------------- get_resource, describe

/// One object: what `get_resource` and `describe` take.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectArgs {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

read_tool!(
    GetResource,
    "get_resource",
    ObjectArgs,
    |cluster, a, chars| {
        objects::get_resource(cluster, &a.kind, &a.name, a.namespace.as_deref(), chars)
            .await
            .map_err(cluster_error)
    }
);

read_tool!(Describe, "describe", ObjectArgs, |env, ctx, a, chars| {
    let view = env.view_one(ctx, a.namespace.as_deref())?;
    describe::describe_in(&view, &a.kind, &a.name, chars)
        .await
        .map_err(cluster_error)
});

// ---------------------------------------------------------------- get_logs

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetLogsArgs {
    pub pod: String,
    pub namespace: Option<String>,
    /// If the pod has several (init containers too).
    pub container: Option<String>,
    pub previous: Option<bool>,
    /// Default 200.
    pub tail_lines: Option<Int<1>>,
    pub since_seconds: Option<Int<1>>,
}

read_tool!(GetLogs, "get_logs", GetLogsArgs, |cluster, a, chars| {
    let a = LogArgs {
        pod: a.pod,
        namespace: a.namespace,
        container: a.container,
        previous: a.previous.unwrap_or(false),
        tail_lines: a.tail_lines.map(Int::get),
        since_seconds: a.since_seconds.map(Int::get),
    };
    logs::get_logs(cluster, &a, chars)
        .await
        .map_err(cluster_error)
});

// ---------------------------------------------------------------- list_events

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum EventType {
    Warning,
    Normal,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Warning => "Warning",
            EventType::Normal => "Normal",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEventsArgs {
    /// "*" for all.
    pub namespace: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub types: Option<Vec<EventType>>,
}

read_tool!(
    ListEvents,
    "list_events",
    ListEventsArgs,
    |cluster, a, chars| {
        let a = EventArgs {
            namespace: a.namespace,
            kind: a.kind,
            name: a.name,
            types: a
                .types
                .map(|ts| ts.into_iter().map(|t| t.as_str().to_string()).collect()),
        };
        events::list_events(cluster, &a, chars)
            .await
            .map_err(cluster_error)
    }
);

// ---------------------------------------------------------------- analyze

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeArgs {
    /// kind/name or name, e.g. deploy/web
    pub target: Option<String>,
    pub namespace: Option<String>,
}

read_tool!(Analyze, "analyze", AnalyzeArgs, |env, ctx, a, chars| {
    let target = a.target.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let view = env.view(ctx, a.namespace.as_deref())?;
    kai_cluster::fetch::analyze_text(&view, target, chars)
        .await
        .map_err(|e| ToolError::Model(e.to_string()))
});

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::offline_env as env;

    #[test]
    fn the_read_only_set_is_the_reads() {
        let r = crate::registry(env(), true).unwrap();
        assert_eq!(
            r.names(),
            [
                "analyze",
                "describe",
                "get_logs",
                "get_resource",
                "list_events",
                "list_resources"
            ]
        );
        assert!(r.decls().all(|d| !d.mutating));
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
        // Checked before the cluster is even looked for.
        let e = run(
            &ctx,
            "get_logs",
            serde_json::json!({"pod": "x", "tail_lines": 0}),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid arguments for get_logs: `tail_lines`: must be at least 1"),
            "{e}"
        );
        let e = run(
            &ctx,
            "scale",
            serde_json::json!({"kind": "deploy", "name": "x", "replicas": 0}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "scale is not a read tool");
    }
}
