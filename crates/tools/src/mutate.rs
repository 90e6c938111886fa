//! Mutating cluster tools. Each handler only *describes* a change (a [`Change`]); the
//! dry run, diff, approval, apply and audit all happen in [`kai_changes::run`], so no
//! tool can skip them. No schema has an argument that could approve a change: approval
//! comes only from the person at the keyboard (see [`kai_changes`]).

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::ReplicaSet;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{bind, change_error, cluster_error, run_change, ClusterTool, ToolEnv};
use kai_changes::{
    kubectl_ns, kubectl_ref, shell_quote, Action, Change, ChangeError, PatchType, Step,
};
use kai_cluster::{Cluster, ClusterError, Kind};
use kai_core::tools::{CallCtx, ToolError, ToolHandler};

pub fn handlers(env: &Arc<ToolEnv>) -> Vec<Arc<dyn ToolHandler>> {
    vec![
        bind(env, ApplyManifest),
        bind(env, PatchResource),
        bind(env, Scale),
        bind(env, RolloutRestart),
        bind(env, RolloutUndo),
        bind(env, SetImage),
        bind(env, DeleteResource),
    ]
}

fn req_str<'a>(args: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ToolError::Model(format!("missing required string argument `{key}`")))
}

fn opt_str<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A single-object change of the object `kind/name`.
async fn one(
    env: &ToolEnv,
    args: &Value,
) -> Result<(Arc<Cluster>, Kind, String, Option<String>), ToolError> {
    let cluster = env.cluster()?.clone();
    let kind = cluster
        .resolve(req_str(args, "kind")?)
        .await
        .map_err(cluster_error)?;
    let name = req_str(args, "name")?.to_string();
    // Checked here, before any read the tool makes: both go into request paths.
    Cluster::check_name(&kind, &name).map_err(cluster_error)?;
    let namespace = opt_str(args, "namespace").map(String::from);
    if kind.namespaced() {
        cluster
            .checked_namespace(namespace.as_deref())
            .map_err(cluster_error)?;
    }
    Ok((cluster, kind, name, namespace))
}

/// Whether a kind argument or a manifest names Secrets (case-insensitively, any
/// spelling kubectl accepts); a false positive only hides a value from a progress line.
fn mentions_secret(s: &str) -> bool {
    s.to_ascii_lowercase().contains("secret")
}

// ---------------------------------------------------------------- apply_manifest

pub struct ApplyManifest;

/// The documents of a (multi-document) YAML manifest; `kind: List` is flattened.
pub fn parse_manifest(yaml: &str) -> Result<Vec<Value>, ChangeError> {
    kai_text::bounded::check("manifest", yaml).map_err(|e| ChangeError::Invalid(e.to_string()))?;
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let doc = Value::deserialize(de).map_err(|e| {
            ChangeError::Invalid(format!(
                "the manifest is not valid YAML (document {}): {e}; fix the YAML and try again",
                i + 1
            ))
        })?;
        match doc {
            Value::Null => continue,
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                docs.extend(
                    m.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            other => docs.push(other),
        }
    }
    if docs.is_empty() {
        return Err(ChangeError::Invalid(
            "the manifest contains no objects".into(),
        ));
    }
    for (i, d) in docs.iter().enumerate() {
        let n = i + 1;
        if !d.is_object() {
            return Err(ChangeError::Invalid(format!(
                "document {n} is not a YAML mapping (an object with apiVersion, kind, metadata)"
            )));
        }
        for (ptr, what) in [
            ("/apiVersion", "apiVersion"),
            ("/kind", "kind"),
            ("/metadata/name", "metadata.name"),
        ] {
            if d.pointer(ptr)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ChangeError::Invalid(format!("document {n} has no {what}; every object needs apiVersion, kind and metadata.name")));
            }
        }
    }
    Ok(docs)
}

async fn manifest_step(cluster: &Cluster, mut doc: Value) -> Result<Step, ToolError> {
    let api_version = doc
        .pointer("/apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind_name = doc
        .pointer("/kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    let query = if group.is_empty() {
        kind_name.clone()
    } else {
        format!("{kind_name}.{group}")
    };
    let mut kind = cluster.resolve(&query).await.map_err(cluster_error)?;
    if kind.resource.group != group || kind.resource.kind != kind_name {
        return Err(ToolError::Model(format!(
            "unknown kind {kind_name:?} in API version {api_version:?}: the cluster does not serve it (closest: {}/{}); check apiVersion and kind",
            kind.resource.api_version, kind.resource.kind
        )));
    }
    // Send the version the manifest is written in, not discovery's preferred one. It
    // goes into the request path, so it is held to the version rule first.
    kai_cluster::names::check_version(&version)
        .map_err(ClusterError::from)
        .map_err(cluster_error)?;
    kind.resource.version = version;
    kind.resource.api_version = api_version;
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(String::from);
    if let Some(Value::Object(meta)) = doc.get_mut("metadata") {
        if kind.namespaced() {
            let ns = cluster
                .checked_namespace(namespace.as_deref())
                .map_err(cluster_error)?;
            meta.insert("namespace".into(), Value::String(ns));
        } else {
            meta.remove("namespace");
        }
    }
    Step::new(
        cluster,
        kind,
        &name,
        namespace.as_deref(),
        Action::Apply(doc),
    )
    .map_err(change_error)
}

#[async_trait]
impl ClusterTool for ApplyManifest {
    fn name(&self) -> &'static str {
        "apply_manifest"
    }

    fn summarize(&self, args: &Value) -> String {
        let docs = opt_str(args, "yaml")
            .map(|y| y.matches("kind:").count())
            .unwrap_or(0);
        format!("apply_manifest ({docs} object(s))")
    }

    fn shown_args(&self, args: &Value) -> Value {
        let mut shown = args.clone();
        if opt_str(args, "yaml").is_some_and(mentions_secret) {
            shown["yaml"] =
                Value::String("(a manifest holding a Secret; its values are not shown)".into());
        }
        shown
    }

    async fn call(&self, env: &ToolEnv, ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let cluster = env.cluster()?.clone();
        let yaml = req_str(&args, "yaml")?;
        let docs = parse_manifest(yaml).map_err(change_error)?;
        let mut steps = Vec::new();
        for doc in docs {
            steps.push(manifest_step(&cluster, doc).await?);
        }
        let title = match steps.as_slice() {
            [one] => format!("apply {}", one.label()),
            many => format!(
                "apply {} objects: {}",
                many.len(),
                many.iter().map(Step::label).collect::<Vec<_>>().join(", ")
            ),
        };
        let has_secret = steps.iter().any(Step::is_secret);
        // The kubectl equivalent is shown and audited: never with Secret values in it.
        let kubectl = if has_secret {
            "kubectl apply --server-side --field-manager=kai --force-conflicts -f MANIFEST  # the manifest holds a Secret; its values are not repeated here".to_string()
        } else {
            format!(
                "kubectl apply --server-side --field-manager=kai --force-conflicts -f - <<'EOF'\n{}\nEOF",
                yaml.trim_end()
            )
        };
        run_change(
            env,
            ctx,
            Change {
                tool: self.name().into(),
                title,
                kubectl,
                steps,
            },
        )
        .await
    }
}

// ---------------------------------------------------------------- patch_resource

pub struct PatchResource;

#[async_trait]
impl ClusterTool for PatchResource {
    fn name(&self) -> &'static str {
        "patch_resource"
    }

    fn shown_args(&self, args: &Value) -> Value {
        let mut shown = args.clone();
        if opt_str(args, "kind").is_some_and(mentions_secret) {
            if let Some(p) = args.get("patch") {
                shown["patch"] = match p {
                    Value::String(_) => Value::String(kai_changes::diff::REDACTED.into()),
                    other => kai_changes::diff::redact_secret_patch(other),
                };
            }
        }
        shown
    }

    async fn call(&self, env: &ToolEnv, ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let cluster = env.cluster()?.clone();
        let pt =
            kai_changes::parse_patch_type(opt_str(&args, "patch_type")).map_err(change_error)?;
        let patch = args
            .get("patch")
            .filter(|p| !p.is_null())
            .ok_or_else(|| ToolError::Model("missing required argument `patch`".into()))?;
        let change = kai_changes::patch_change_for_tool(
            &cluster,
            self.name(),
            req_str(&args, "kind")?,
            req_str(&args, "name")?,
            opt_str(&args, "namespace"),
            pt,
            patch,
        )
        .await
        .map_err(change_error)?;
        run_change(env, ctx, change).await
    }
}

// ---------------------------------------------------------------- scale

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
    fn name(&self) -> &'static str {
        "scale"
    }

    async fn call(&self, env: &ToolEnv, ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &args).await?;
        let replicas = args
            .get("replicas")
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            })
            .ok_or_else(|| ToolError::Model("missing integer argument `replicas`".into()))?;
        if !scalable(&kind) {
            return Err(ToolError::Model(format!(
                "{} cannot be scaled; scale the Deployment, StatefulSet or ReplicaSet that owns it",
                kind.resource.kind
            )));
        }
        let step = Step::new(
            &cluster,
            kind,
            &name,
            ns.as_deref(),
            Action::Patch(PatchType::Merge, json!({"spec": {"replicas": replicas}})),
        )
        .map_err(change_error)?;
        let change = Change {
            tool: self.name().into(),
            title: format!("scale {} to {replicas} replicas", step.label()),
            kubectl: format!(
                "kubectl scale {}{} --replicas={replicas}",
                kubectl_ref(&step),
                kubectl_ns(&step)
            ),
            steps: vec![step],
        };
        run_change(env, ctx, change).await
    }
}

// ---------------------------------------------------------------- rollout_restart

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
    fn name(&self) -> &'static str {
        "rollout_restart"
    }

    async fn call(&self, env: &ToolEnv, ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &args).await?;
        require_workload(
            &kind,
            self.name(),
            &["Deployment", "DaemonSet", "StatefulSet"],
        )?;
        // kubectl's mechanism: a new template annotation makes the controller roll pods.
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
        let step = Step::new(
            &cluster,
            kind,
            &name,
            ns.as_deref(),
            Action::Patch(PatchType::Strategic, patch),
        )
        .map_err(change_error)?;
        let change = Change {
            tool: self.name().into(),
            title: format!("restart the pods of {}", step.label()),
            kubectl: format!(
                "kubectl rollout restart {}{}",
                kubectl_ref(&step),
                kubectl_ns(&step)
            ),
            steps: vec![step],
        };
        run_change(env, ctx, change).await
    }
}

// ---------------------------------------------------------------- rollout_undo

pub struct RolloutUndo;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn revision_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

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
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
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
    fn name(&self) -> &'static str {
        "rollout_undo"
    }

    async fn call(&self, env: &ToolEnv, ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &args).await?;
        if !(kind.resource.group == "apps" && kind.resource.kind == "Deployment") {
            return Err(ToolError::Model(format!(
                "rollout_undo supports Deployments; for a {} use patch_resource to set the template you want",
                kind.resource.kind
            )));
        }
        let to = args.get("to_revision").and_then(Value::as_i64);
        let ns = cluster
            .checked_namespace(ns.as_deref())
            .map_err(cluster_error)?;
        let probe = Step::new(&cluster, kind.clone(), &name, Some(&ns), Action::Delete)
            .map_err(change_error)?;
        let live = kai_changes::read_live(&cluster, &probe)
            .await
            .map_err(change_error)?
            .ok_or_else(|| {
                cluster_error(ClusterError::NotFound {
                    kind: "Deployment".into(),
                    name: name.clone(),
                    namespace: Some(ns.clone()),
                })
            })?;
        let (rev, template) = template_for_revision(&cluster, &ns, &live, to).await?;
        let patch = json!([{"op": "replace", "path": "/spec/template", "value": template}]);
        let step = Step::new(
            &cluster,
            kind,
            &name,
            Some(&ns),
            Action::Patch(PatchType::Json, patch),
        )
        .map_err(change_error)?;
        let change = Change {
            tool: self.name().into(),
            title: format!("roll {} back to revision {rev}", step.label()),
            kubectl: format!(
                "kubectl rollout undo {}{} --to-revision={rev}",
                kubectl_ref(&step),
                kubectl_ns(&step)
            ),
            steps: vec![step],
        };
        run_change(env, ctx, change).await
    }
}

// ---------------------------------------------------------------- set_image

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
    fn name(&self) -> &'static str {
        "set_image"
    }

    async fn call(&self, env: &ToolEnv, ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &args).await?;
        let container = req_str(&args, "container")?;
        let image = req_str(&args, "image")?;
        let probe = Step::new(&cluster, kind.clone(), &name, ns.as_deref(), Action::Delete)
            .map_err(change_error)?;
        let live = kai_changes::read_live(&cluster, &probe)
            .await
            .map_err(change_error)?
            .ok_or_else(|| {
                cluster_error(ClusterError::NotFound {
                    kind: kind.resource.kind.clone(),
                    name: name.clone(),
                    namespace: probe.namespace().map(String::from),
                })
            })?;
        let path = image_path(&live, &kind.resource.kind, container).map_err(ToolError::Model)?;
        let patch = json!([{"op": "replace", "path": path, "value": image}]);
        let step = Step {
            action: Action::Patch(PatchType::Json, patch),
            ..probe
        };
        let change = Change {
            tool: self.name().into(),
            title: format!(
                "set image of container {container:?} in {} to {image}",
                step.label()
            ),
            kubectl: format!(
                "kubectl set image {}{} {}",
                kubectl_ref(&step),
                kubectl_ns(&step),
                shell_quote(&format!("{container}={image}"))
            ),
            steps: vec![step],
        };
        run_change(env, ctx, change).await
    }
}

// ---------------------------------------------------------------- delete_resource

pub struct DeleteResource;

#[async_trait]
impl ClusterTool for DeleteResource {
    fn name(&self) -> &'static str {
        "delete_resource"
    }

    async fn call(&self, env: &ToolEnv, ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &args).await?;
        let step = Step::new(&cluster, kind, &name, ns.as_deref(), Action::Delete)
            .map_err(change_error)?;
        let change = Change {
            tool: self.name().into(),
            title: format!("delete {}", step.label()),
            kubectl: format!("kubectl delete {}{}", kubectl_ref(&step), kubectl_ns(&step)),
            steps: vec![step],
        };
        run_change(env, ctx, change).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_multi_doc_and_reject_garbage() {
        let docs = parse_manifest("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(parse_manifest("kind: [unclosed")
            .unwrap_err()
            .to_string()
            .contains("not valid YAML"));
        assert!(parse_manifest("apiVersion: v1\nkind: ConfigMap\n")
            .unwrap_err()
            .to_string()
            .contains("metadata.name"));
        assert!(parse_manifest("- a\n- b\n")
            .unwrap_err()
            .to_string()
            .contains("not a YAML mapping"));
        assert!(parse_manifest("")
            .unwrap_err()
            .to_string()
            .contains("no objects"));
    }

    #[test]
    fn a_deeply_nested_manifest_fails_fast_with_a_clear_error() {
        let t = std::time::Instant::now();
        let e = parse_manifest(&format!(
            "apiVersion: v1\nkind: ConfigMap\ndata: {}",
            "[".repeat(600 * 1024)
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("nests deeper than"), "{e}");
        // Not a benchmark: a guard against the minutes a quadratic parse took.
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn secret_values_never_reach_progress_lines() {
        let args = json!({"kind": "secret", "name": "db",
            "patch": {"stringData": {"password": "s3cr3t-value-9"}}});
        let s = PatchResource.summarize(&args);
        assert!(!s.contains("s3cr3t-value-9"), "{s}");
        assert!(s.contains("patch_resource secret db"), "{s}");
        assert!(!PatchResource
            .shown_args(&args)
            .to_string()
            .contains("s3cr3t"));
        let jp = json!({"kind": "Secrets", "name": "db", "patch_type": "json",
            "patch": [{"op": "add", "path": "/data/k", "value": "czNjcjN0"}]});
        assert!(!PatchResource
            .shown_args(&jp)
            .to_string()
            .contains("czNjcjN0"));
        let text = json!({"kind": "Secret", "name": "db", "patch": "stringData: {password: s3cr3t-value-9}"});
        assert!(!PatchResource.summarize(&text).contains("s3cr3t"));
        // Other kinds show their patch.
        let cm = json!({"kind": "ConfigMap", "name": "c", "patch": {"data": {"mode": "fast"}}});
        assert!(PatchResource.summarize(&cm).contains("fast"));
        let m = json!({"yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {a: s3cr3t-value-9}\n"});
        assert!(!ApplyManifest.shown_args(&m).to_string().contains("s3cr3t"));
    }

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

    #[test]
    fn every_mutating_tool_is_declared_mutating_without_an_approval_argument() {
        let env = Arc::new(ToolEnv {
            cluster: None,
            budget_tokens: 1000,
            auto_approve: false,
            data_dir: std::env::temp_dir(),
        });
        for h in handlers(&env) {
            assert!(h.is_mutating(), "{}", h.name());
            let decl = crate::decls::find(h.name()).unwrap();
            assert!(decl.mutating, "{}", h.name());
            assert_eq!(
                decl.parameters["additionalProperties"],
                json!(false),
                "{}",
                h.name()
            );
            let props = decl.parameters["properties"].as_object().unwrap();
            for p in props.keys() {
                for banned in ["confirm", "approve", "force", "yes"] {
                    assert!(!p.contains(banned), "{} has argument {p}", h.name());
                }
            }
        }
    }
}
