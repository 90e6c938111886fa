//! Changes to a workload: `scale`, `rollout_restart`, `rollout_undo`, `set_image`.

use super::*;

// ---------------------------------------------------------------- scale

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleArgs {
    /// Deployment, StatefulSet or ReplicaSet (or a short name).
    pub kind: String,
    pub name: String,
    pub replicas: Int<0>,
    /// Omit for the session namespace.
    pub namespace: Option<String>,
}

pub struct Scale;

fn scalable(kind: &Kind) -> bool {
    kind.caps
        .subresources
        .iter()
        .any(|(r, _)| r.plural.ends_with("scale"))
        || matches!(
            kind.resource.kind.as_str(),
            "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController"
        )
}

#[async_trait]
impl ClusterTool for Scale {
    type Args = ScaleArgs;
    named!("scale", action);

    async fn call(&self, env: &ToolEnv, ctx: &CallCtx, a: ScaleArgs) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &a.kind, &a.name, a.namespace.as_deref()).await?;
        let replicas = a.replicas.get();
        if !scalable(&kind) {
            return Err(ToolError::Model(format!(
                "{} cannot be scaled; scale the Deployment, StatefulSet or ReplicaSet that owns it",
                kind.resource.kind
            )));
        }
        let action = Action::Patch(PatchType::Merge, json!({"spec": {"replicas": replicas}}));
        let step = Step::new(&cluster, kind, &name, ns.as_deref(), action).map_err(change_error)?;
        let title = format!("scale {} to {replicas} replicas", step.label());
        let kubectl = kubectl_line("scale", &step, &format!(" --replicas={replicas}"));
        run_step(env, ctx, Self::NAME, title, kubectl, step).await
    }
}

// ---------------------------------------------------------------- rollout_restart

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRestartArgs {
    /// Deployment, DaemonSet or StatefulSet.
    pub kind: String,
    pub name: String,
    /// Omit for the session namespace.
    pub namespace: Option<String>,
}

pub struct RolloutRestart;

fn require_workload(kind: &Kind, tool: &str, allowed: &[&str]) -> Result<(), ToolError> {
    if kind.resource.group == "apps" && allowed.contains(&kind.resource.kind.as_str()) {
        Ok(())
    } else {
        Err(ToolError::Model(format!(
            "{tool} works on {}; {} is not one (for a single Pod, delete it and let its controller re-create it)",
            allowed.join(", "),
            kind.resource.kind
        )))
    }
}

#[async_trait]
impl ClusterTool for RolloutRestart {
    type Args = RolloutRestartArgs;
    named!("rollout_restart", action);

    async fn call(
        &self,
        env: &ToolEnv,
        ctx: &CallCtx,
        a: RolloutRestartArgs,
    ) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &a.kind, &a.name, a.namespace.as_deref()).await?;
        require_workload(
            &kind,
            Self::NAME,
            &["Deployment", "DaemonSet", "StatefulSet"],
        )?;
        // kubectl's mechanism: a new template annotation makes the controller roll pods.
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
        let action = Action::Patch(PatchType::Strategic, patch);
        let step = Step::new(&cluster, kind, &name, ns.as_deref(), action).map_err(change_error)?;
        let title = format!("restart the pods of {}", step.label());
        let kubectl = kubectl_line("rollout restart", &step, "");
        run_step(env, ctx, Self::NAME, title, kubectl, step).await
    }
}

// ---------------------------------------------------------------- rollout_undo

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutUndoArgs {
    /// Deployment.
    pub kind: String,
    pub name: String,
    /// Omit for the session namespace.
    pub namespace: Option<String>,
    /// Omit for the previous one.
    pub to_revision: Option<Int<1>>,
}

pub struct RolloutUndo;

/// The pod template of the Deployment's revision `to` (default: the one before the
/// current), taken from its ReplicaSet as kubectl does.
async fn template_for_revision(
    cluster: &Cluster,
    ns: &str,
    deploy: &Value,
    to: Option<i64>,
) -> Result<(i64, Value), ToolError> {
    let uid = deploy
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let current: Option<i64> = deploy
        .pointer(&format!(
            "/metadata/annotations/{}",
            REVISION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    let rss = cluster
        .list_namespaced::<ReplicaSet>(ns, None)
        .await
        .map_err(cluster_error)?;
    let mut owned: Vec<(i64, ReplicaSet)> = rss
        .into_iter()
        .filter(|rs| owned_by(&rs.metadata, uid))
        .filter_map(|rs| revision_of(&rs.metadata).map(|r| (r, rs)))
        .collect();
    owned.sort_by_key(|(r, _)| *r);
    // The Deployment's revision annotation lags its newest ReplicaSet for a moment after
    // a rollout starts; the newer of the two is the revision being rolled out.
    let current = current
        .into_iter()
        .chain(owned.last().map(|(r, _)| *r))
        .max()
        .unwrap_or(0);
    let known = owned
        .iter()
        .map(|(r, _)| r.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let found = match to {
        Some(t) if t > 0 => owned.iter().find(|(r, _)| *r == t),
        _ => owned.iter().rev().find(|(r, _)| *r < current),
    };
    let Some((rev, rs)) = found else {
        return Err(ToolError::Model(match to {
            Some(t) if t > 0 => {
                format!("revision {t} not found (known revisions: {known}); use one of those")
            }
            _ => format!(
                "no previous revision to roll back to (known revisions: {})",
                if known.is_empty() { "none" } else { &known }
            ),
        }));
    };
    let mut template = serde_json::to_value(rs.spec.as_ref().and_then(|s| s.template.clone()))
        .map_err(|e| ToolError::Model(format!("cannot read revision {rev}'s template: {e}")))?;
    if let Some(Value::Object(labels)) = template.pointer_mut("/metadata/labels") {
        labels.remove("pod-template-hash");
    }
    Ok((*rev, template))
}

#[async_trait]
impl ClusterTool for RolloutUndo {
    type Args = RolloutUndoArgs;
    named!("rollout_undo", action);

    async fn call(
        &self,
        env: &ToolEnv,
        ctx: &CallCtx,
        a: RolloutUndoArgs,
    ) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &a.kind, &a.name, a.namespace.as_deref()).await?;
        if !(kind.resource.group == "apps" && kind.resource.kind == "Deployment") {
            return Err(ToolError::Model(format!(
                "rollout_undo supports Deployments; for a {} use patch_resource to set the template you want",
                kind.resource.kind
            )));
        }
        let to = a.to_revision.map(Int::get);
        let ns = cluster
            .checked_namespace(ns.as_deref())
            .map_err(cluster_error)?;
        let probe = Step::new(&cluster, kind.clone(), &name, Some(&ns), Action::Delete)
            .map_err(change_error)?;
        let live = read_live(&cluster, &probe).await?;
        let (rev, template) = template_for_revision(&cluster, &ns, &live, to).await?;
        let patch = json!([{"op": "replace", "path": "/spec/template", "value": template}]);
        let step = Step {
            action: Action::Patch(PatchType::Json, patch),
            ..probe
        };
        let title = format!("roll {} back to revision {rev}", step.label());
        let kubectl = kubectl_line("rollout undo", &step, &format!(" --to-revision={rev}"));
        run_step(env, ctx, Self::NAME, title, kubectl, step).await
    }
}

// ---------------------------------------------------------------- set_image

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetImageArgs {
    /// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod.
    pub kind: String,
    pub name: String,
    pub container: String,
    /// e.g. nginx:1.25
    pub image: String,
    /// Omit for the session namespace.
    pub namespace: Option<String>,
}

pub struct SetImage;

/// Where the pod spec sits in an object of `kind`.
fn pod_spec_path(kind: &str) -> &'static str {
    match kind {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    }
}

/// JSON-patch path of `container`'s image, looked up in the live object.
fn image_path(obj: &Value, kind: &str, container: &str) -> Result<String, String> {
    let base = pod_spec_path(kind);
    let mut names = Vec::new();
    for list in ["containers", "initContainers"] {
        let items = obj
            .pointer(&format!("{base}/{list}"))
            .and_then(Value::as_array);
        for (i, c) in items.into_iter().flatten().enumerate() {
            let n = c.get("name").and_then(Value::as_str).unwrap_or_default();
            if n == container {
                return Ok(format!("{base}/{list}/{i}/image"));
            }
            names.push(n.to_string());
        }
    }
    Err(if names.is_empty() {
        format!("this {kind} has no pod template with containers; set_image works on Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and Pods")
    } else {
        format!(
            "no container named {container:?}; its containers are: {}",
            names.join(", ")
        )
    })
}

#[async_trait]
impl ClusterTool for SetImage {
    type Args = SetImageArgs;
    named!("set_image", action);

    async fn call(
        &self,
        env: &ToolEnv,
        ctx: &CallCtx,
        a: SetImageArgs,
    ) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &a.kind, &a.name, a.namespace.as_deref()).await?;
        let container = required(&a.container, "container")?;
        let image = required(&a.image, "image")?;
        let probe = Step::new(&cluster, kind.clone(), &name, ns.as_deref(), Action::Delete)
            .map_err(change_error)?;
        let live = read_live(&cluster, &probe).await?;
        let path = image_path(&live, &kind.resource.kind, container).map_err(ToolError::Model)?;
        let patch = json!([{"op": "replace", "path": path, "value": image}]);
        let step = Step {
            action: Action::Patch(PatchType::Json, patch),
            ..probe
        };
        let title = format!(
            "set image of container {container:?} in {} to {image}",
            step.label()
        );
        let flags = format!(" {}", shell_quote(&format!("{container}={image}")));
        let kubectl = kubectl_line("set image", &step, &flags);
        run_step(env, ctx, Self::NAME, title, kubectl, step).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_follow_the_kind() {
        let d = json!({"spec": {"template": {"spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "app"}, {"name": "side"}]}}}});
        assert_eq!(
            image_path(&d, "Deployment", "side").unwrap(),
            "/spec/template/spec/containers/1/image"
        );
        assert_eq!(
            image_path(&d, "Deployment", "init").unwrap(),
            "/spec/template/spec/initContainers/0/image"
        );
        assert!(image_path(&d, "Deployment", "nope")
            .unwrap_err()
            .contains("app, side"));
        let p = json!({"spec": {"containers": [{"name": "app"}]}});
        assert_eq!(
            image_path(&p, "Pod", "app").unwrap(),
            "/spec/containers/0/image"
        );
    }
}
