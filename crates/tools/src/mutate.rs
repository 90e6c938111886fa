//! Mutating cluster tools. Each handler only *describes* a change (a [`Change`]); the
//! dry run, diff, approval, apply and audit all happen in [`kai_changes::run`], so no
//! tool can skip them. No arguments struct has a field that could approve a change
//! (and none accepts unknown fields): approval comes only from the person at the
//! keyboard (see [`kai_changes`]).

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::ReplicaSet;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use crate::{change_error, cluster_error, run_change, ClusterTool, ToolEnv};
use kai_analyze::owners::{owned_by, revision_of, REVISION};
use kai_changes::{
    kubectl_ns, kubectl_ref, shell_quote, Action, Change, ChangeError, PatchType, Step,
};
use kai_cluster::{Cluster, ClusterError, Kind};
use kai_core::tools::{CallCtx, Int, ToolError};

/// `value` when it is not blank: a blank kind or name is as good as none.
fn required<'a>(value: &'a str, key: &str) -> Result<&'a str, ToolError> {
    Some(value)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ToolError::Model(format!("missing required string argument `{key}`")))
}

/// `value` when given and not blank (a blank namespace means the session's).
fn optional(value: Option<&str>) -> Option<&str> {
    value.filter(|s| !s.trim().is_empty())
}

/// A string argument of the model's JSON, for progress lines (before the typed
/// arguments exist).
fn opt_str<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    optional(args.get(key).and_then(Value::as_str))
}

/// A single-object change of the object `kind/name`.
async fn one(
    env: &ToolEnv,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
) -> Result<(Arc<Cluster>, Kind, String, Option<String>), ToolError> {
    let cluster = env.cluster()?.clone();
    let kind = cluster
        .resolve(required(kind, "kind")?)
        .await
        .map_err(cluster_error)?;
    let name = required(name, "name")?.to_string();
    // Checked here, before any read the tool makes: both go into request paths.
    Cluster::check_name(&kind, &name).map_err(cluster_error)?;
    let namespace = optional(namespace).map(String::from);
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

/// `kubectl VERB OBJECT[ -n NS]FLAGS`: the kubectl equivalent of the one-step change
/// `step`.
fn kubectl_line(verb: &str, step: &Step, flags: &str) -> String {
    format!(
        "kubectl {verb} {}{}{flags}",
        kubectl_ref(step),
        kubectl_ns(step)
    )
}

/// Run the change of the tool `tool` that is the one step `step`.
async fn run_step(
    env: &ToolEnv,
    ctx: &CallCtx,
    tool: &str,
    title: String,
    kubectl: String,
    step: Step,
) -> Result<String, ToolError> {
    let steps = vec![step];
    let change = Change {
        tool: tool.into(),
        title,
        kubectl,
        steps,
    };
    run_change(env, ctx, change).await
}

/// The live object `probe` points at; a missing one is the model's to handle.
async fn read_live(cluster: &Cluster, probe: &Step) -> Result<Value, ToolError> {
    let missing = || ClusterError::NotFound {
        kind: probe.kind().resource.kind.clone(),
        name: probe.name().to_string(),
        namespace: probe.namespace().map(String::from),
    };
    kai_changes::read_live(cluster, probe)
        .await
        .map_err(change_error)?
        .ok_or_else(|| cluster_error(missing()))
}

// ---------------------------------------------------------------- apply_manifest

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyManifestArgs {
    pub yaml: String,
}

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

pub(crate) async fn manifest_step(cluster: &Cluster, mut doc: Value) -> Result<Step, ToolError> {
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
    type Args = ApplyManifestArgs;
    named!("apply_manifest", action);

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

    async fn call(
        &self,
        env: &ToolEnv,
        ctx: &CallCtx,
        a: ApplyManifestArgs,
    ) -> Result<String, ToolError> {
        let cluster = env.cluster()?.clone();
        let yaml = required(&a.yaml, "yaml")?;
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
                tool: Self::NAME.into(),
                title,
                kubectl,
                steps,
            },
        )
        .await
    }
}

// ---------------------------------------------------------------- patch_resource

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PatchKind {
    Merge,
    Strategic,
    Json,
}

impl From<PatchKind> for PatchType {
    fn from(k: PatchKind) -> Self {
        match k {
            PatchKind::Merge => PatchType::Merge,
            PatchKind::Strategic => PatchType::Strategic,
            PatchKind::Json => PatchType::Json,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchResourceArgs {
    /// Kind, plural or short name.
    pub kind: String,
    pub name: String,
    /// Omit for the session's.
    pub namespace: Option<String>,
    // An object (merge/strategic) or an array of operations (json); JSON text is
    // accepted too (the tool's description says so).
    #[serde(deserialize_with = "patch_body")]
    #[schemars(schema_with = "patch_body_schema")]
    pub patch: Value,
    /// Defaults to merge.
    pub patch_type: Option<PatchKind>,
}

/// A patch is an object, an array of operations, or either as JSON (or YAML) text.
fn patch_body<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Object(_) | Value::Array(_) | Value::String(_) => Ok(v),
        other => Err(serde::de::Error::custom(format!(
            "invalid type: {other}, expected an object, an array of operations or JSON text"
        ))),
    }
}

fn patch_body_schema(_generator: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["object", "array", "string"]})
}

pub struct PatchResource;

#[async_trait]
impl ClusterTool for PatchResource {
    type Args = PatchResourceArgs;
    named!("patch_resource", action);

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

    async fn call(
        &self,
        env: &ToolEnv,
        ctx: &CallCtx,
        a: PatchResourceArgs,
    ) -> Result<String, ToolError> {
        let cluster = env.cluster()?.clone();
        let pt = a.patch_type.map_or(PatchType::Merge, PatchType::from);
        let change = kai_changes::patch_change_for_tool(
            &cluster,
            Self::NAME,
            required(&a.kind, "kind")?,
            required(&a.name, "name")?,
            optional(a.namespace.as_deref()),
            pt,
            &a.patch,
        )
        .await
        .map_err(change_error)?;
        run_change(env, ctx, change).await
    }
}

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

// ---------------------------------------------------------------- delete_resource

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteResourceArgs {
    /// Kind, plural or short name.
    pub kind: String,
    pub name: String,
    /// Omit for the session namespace; ignored for cluster-scoped kinds.
    pub namespace: Option<String>,
}

pub struct DeleteResource;

#[async_trait]
impl ClusterTool for DeleteResource {
    type Args = DeleteResourceArgs;
    named!("delete_resource", action);

    async fn call(
        &self,
        env: &ToolEnv,
        ctx: &CallCtx,
        a: DeleteResourceArgs,
    ) -> Result<String, ToolError> {
        let (cluster, kind, name, ns) = one(env, &a.kind, &a.name, a.namespace.as_deref()).await?;
        let step = Step::new(&cluster, kind, &name, ns.as_deref(), Action::Delete)
            .map_err(change_error)?;
        let title = format!("delete {}", step.label());
        let kubectl = kubectl_line("delete", &step, "");
        run_step(env, ctx, Self::NAME, title, kubectl, step).await
    }
}

// ---------------------------------------------------------------- propose_change

/// Every change the model can propose, as one tool: the `action` picks the change, the
/// rest are that change's arguments, checked by its own struct (unknown fields refused
/// per action). The schema the model sees is one object (see
/// [`kai_core::tools::args::parameters`]), far smaller than seven declarations.
#[derive(Debug, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ProposeChangeArgs {
    Patch(PatchResourceArgs),
    Scale(ScaleArgs),
    SetImage(SetImageArgs),
    Restart(RolloutRestartArgs),
    Undo(RolloutUndoArgs),
    Delete(DeleteResourceArgs),
    Apply(ApplyManifestArgs),
}

impl<'de> Deserialize<'de> for ProposeChangeArgs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use kai_core::tools::args::{parse, parse_tagged};
        use ProposeChangeArgs as A;
        let args = serde_json::Map::deserialize(d)?;
        // The names are the derive's `rename_all`; a test ties the two together.
        parse_tagged(args, "action", |action, rest| {
            Some(match action {
                "patch" => parse(rest).map(A::Patch),
                "scale" => parse(rest).map(A::Scale),
                "set_image" => parse(rest).map(A::SetImage),
                "restart" => parse(rest).map(A::Restart),
                "undo" => parse(rest).map(A::Undo),
                "delete" => parse(rest).map(A::Delete),
                "apply" => parse(rest).map(A::Apply),
                _ => return None,
            })
        })
        .map_err(serde::de::Error::custom)
    }
}

pub struct ProposeChange;

/// Each `propose_change` action and the name of the change it makes, as the audit log,
/// the approval prompt and progress lines call it.
pub const ACTIONS: [(&str, &str); 7] = [
    ("patch", PatchResource::NAME),
    ("scale", Scale::NAME),
    ("set_image", SetImage::NAME),
    ("restart", RolloutRestart::NAME),
    ("undo", RolloutUndo::NAME),
    ("delete", DeleteResource::NAME),
    ("apply", ApplyManifest::NAME),
];

/// The `propose_change` call that makes the change named `change` with that change's
/// `args` (`scale`, `{"kind": ...}`): its name and arguments; `None` when `change` is not
/// one of [`ACTIONS`]. Arguments that are not an object are left as they are (and will
/// be refused as such).
pub fn proposal(change: &str, mut args: Value) -> Option<(&'static str, Value)> {
    let action = action_for(change)?;
    if let Value::Object(m) = &mut args {
        m.insert("action".into(), Value::String(action.into()));
    }
    Some((ProposeChange::NAME, args))
}

/// The `propose_change` action that makes the change named `change` (`scale`,
/// `delete_resource`, ...; see [`ACTIONS`]).
pub fn action_for(change: &str) -> Option<&'static str> {
    ACTIONS
        .iter()
        .find(|(_, name)| *name == change)
        .map(|(action, _)| *action)
}

/// The progress line of the action's own tool for `args` (secret values already hidden),
/// `None` for an unknown action.
fn summarize_action(args: &Value) -> Option<String> {
    let action = args.get("action").and_then(Value::as_str)?;
    let mut rest = args.clone();
    if let Value::Object(m) = &mut rest {
        m.remove("action");
    }
    Some(match action {
        "patch" => PatchResource.summarize(&rest),
        "scale" => Scale.summarize(&rest),
        "set_image" => SetImage.summarize(&rest),
        "restart" => RolloutRestart.summarize(&rest),
        "undo" => RolloutUndo.summarize(&rest),
        "delete" => DeleteResource.summarize(&rest),
        "apply" => ApplyManifest.summarize(&rest),
        _ => return None,
    })
}

#[async_trait]
impl ClusterTool for ProposeChange {
    type Args = ProposeChangeArgs;
    named!("propose_change");

    /// Secret values are hidden whatever the action says: the arguments shown may be
    /// ones the check will refuse (a patch sent with `action: scale`), and they are
    /// shown all the same.
    fn shown_args(&self, args: &Value) -> Value {
        ApplyManifest.shown_args(&PatchResource.shown_args(args))
    }

    /// The progress line the action's own tool writes (`scale deployment web
    /// --replicas=3`), so a change reads the same whichever way it was asked for.
    fn summarize(&self, args: &Value) -> String {
        let shown = self.shown_args(args);
        summarize_action(&shown)
            .unwrap_or_else(|| kai_core::tools::summarize_args(Self::NAME, &shown))
    }

    async fn call(
        &self,
        env: &ToolEnv,
        ctx: &CallCtx,
        a: ProposeChangeArgs,
    ) -> Result<String, ToolError> {
        match a {
            ProposeChangeArgs::Patch(a) => PatchResource.call(env, ctx, a).await,
            ProposeChangeArgs::Scale(a) => Scale.call(env, ctx, a).await,
            ProposeChangeArgs::SetImage(a) => SetImage.call(env, ctx, a).await,
            ProposeChangeArgs::Restart(a) => RolloutRestart.call(env, ctx, a).await,
            ProposeChangeArgs::Undo(a) => RolloutUndo.call(env, ctx, a).await,
            ProposeChangeArgs::Delete(a) => DeleteResource.call(env, ctx, a).await,
            ProposeChangeArgs::Apply(a) => ApplyManifest.call(env, ctx, a).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::offline_env as env;

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

    /// Arguments of each action that pass the check.
    fn valid_actions() -> Vec<Value> {
        vec![
            json!({"action": "patch", "kind": "cm", "name": "a", "patch": {}}),
            json!({"action": "scale", "kind": "deploy", "name": "a", "replicas": 1}),
            json!({"action": "set_image", "kind": "deploy", "name": "a", "container": "c", "image": "i"}),
            json!({"action": "restart", "kind": "deploy", "name": "a"}),
            json!({"action": "undo", "kind": "deploy", "name": "a", "to_revision": 2}),
            json!({"action": "delete", "kind": "cm", "name": "a"}),
            json!({"action": "apply", "yaml": "kind: ConfigMap"}),
        ]
    }

    #[test]
    fn every_change_is_one_mutating_tool_without_an_approval_argument() {
        let all = crate::registry(env(), false).unwrap();
        let reads = crate::registry(env(), true).unwrap();
        let mutating: Vec<_> = all
            .decls()
            .filter(|d| reads.handler(&d.name).is_none())
            .collect();
        assert_eq!(
            mutating.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["propose_change"]
        );
        let decl = mutating[0];
        let h = all.handler(&decl.name).unwrap();
        assert!(h.is_mutating() && decl.mutating);
        assert_eq!(decl.parameters["additionalProperties"], json!(false));
        let props = decl.parameters["properties"].as_object().unwrap();
        for p in props.keys() {
            for banned in ["confirm", "approve", "force", "yes"] {
                assert!(!p.contains(banned), "{} has argument {p}", decl.name);
            }
        }
        // The schema's actions are exactly the ones the check accepts.
        let actions: Vec<&str> = decl.parameters["properties"]["action"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let valid = valid_actions();
        assert_eq!(
            actions,
            valid
                .iter()
                .map(|v| v["action"].as_str().unwrap())
                .collect::<Vec<_>>()
        );
        assert_eq!(actions, ACTIONS.map(|(a, _)| a));
        assert_eq!(action_for("delete_resource"), Some("delete"));
        assert_eq!(action_for("propose_change"), None);
        assert_eq!(
            proposal("rollout_undo", json!({"kind": "deploy", "name": "a"})),
            Some((
                "propose_change",
                json!({"action": "undo", "kind": "deploy", "name": "a"})
            ))
        );
        assert_eq!(proposal("describe", json!({})), None);
        for args in valid {
            h.check(&args).unwrap_or_else(|e| panic!("{args}: {e}"));
            // An approval smuggled in as an extra field is refused before anything runs,
            // whatever the action.
            for extra in ["confirmed", "approved", "yes", "force"] {
                let mut a = args.clone();
                a[extra] = json!(true);
                let e = h.check(&a).unwrap_err();
                assert!(e.contains(&format!("unknown field `{extra}`")), "{e}");
            }
        }
    }

    #[test]
    fn each_action_takes_only_its_own_fields_and_errors_name_them() {
        let h = crate::bind(&env(), ProposeChange);
        for (args, want) in [
            (
                json!({"kind": "deploy", "name": "a"}),
                "missing required field `action`",
            ),
            (
                json!({"action": "rollout", "kind": "deploy", "name": "a"}),
                "`action`: unknown variant `rollout`, expected one of `patch`, `scale`",
            ),
            (
                json!({"action": "scale", "kind": "deploy", "name": "a"}),
                "action `scale`: missing required field `replicas`",
            ),
            (
                json!({"action": "scale", "kind": "deploy", "name": "a", "replicas": -1}),
                "action `scale`: `replicas`: must be at least 0, got -1",
            ),
            (
                json!({"action": "delete", "kind": "deploy", "name": "a", "replicas": 0}),
                "action `delete`: unknown field `replicas`",
            ),
            (
                json!({"action": "apply", "yaml": 3}),
                "action `apply`: `yaml`: invalid type: integer `3`, expected a string",
            ),
        ] {
            let e = h.check(&args).unwrap_err();
            assert!(e.contains(want), "{args}: {e}");
        }
    }

    #[test]
    fn proposals_show_the_actions_progress_line_and_never_secret_values() {
        let p = ProposeChange;
        let s = p.summarize(
            &json!({"action": "scale", "kind": "deployment", "name": "web", "replicas": 3}),
        );
        assert_eq!(
            s,
            Scale.summarize(&json!({"kind": "deployment", "name": "web", "replicas": 3}))
        );
        assert!(s.starts_with("scale deployment web"), "{s}");
        let s = p.summarize(&json!({"action": "apply", "yaml": "kind: ConfigMap\n"}));
        assert_eq!(s, "apply_manifest (1 object(s))");
        for args in [
            json!({"action": "patch", "kind": "Secret", "name": "db",
                "patch": {"stringData": {"password": "s3cr3t-value-9"}}}),
            // A patch sent with the wrong action is shown (and then refused): masked too.
            json!({"action": "scale", "kind": "secrets", "name": "db",
                "patch": "stringData: {password: s3cr3t-value-9}"}),
            json!({"action": "apply", "yaml": "kind: Secret\nstringData: {a: s3cr3t-value-9}\n"}),
            json!({"action": "nope", "kind": "Secret", "patch": {"data": {"k": "s3cr3t-value-9"}}}),
        ] {
            assert!(
                !p.shown_args(&args).to_string().contains("s3cr3t"),
                "{args}"
            );
            assert!(!p.summarize(&args).contains("s3cr3t"), "{args}");
        }
    }

    #[test]
    fn patches_are_objects_arrays_or_text_and_patch_types_are_known() {
        let h = crate::bind(&env(), ProposeChange);
        for patch in [
            json!({"data": {}}),
            json!([{"op": "remove", "path": "/x"}]),
            json!("{}"),
        ] {
            h.check(&json!({"action": "patch", "kind": "cm", "name": "a", "patch": patch}))
                .unwrap();
        }
        for (args, want) in [
            (
                json!({"action": "patch", "kind": "cm", "name": "a", "patch": 3}),
                "`patch`: invalid type: 3, expected an object",
            ),
            (
                json!({"action": "patch", "kind": "cm", "name": "a", "patch": null}),
                "missing required field `patch`",
            ),
            (
                json!({"action": "patch", "kind": "cm", "name": "a", "patch": {}, "patch_type": "Merge"}),
                "`patch_type`: unknown variant `Merge`",
            ),
            (
                json!({"action": "patch", "kind": "cm", "name": "a", "patch": {}, "patch_type": "apply"}),
                "expected one of `merge`, `strategic`, `json`",
            ),
        ] {
            let e = h.check(&args).unwrap_err();
            assert!(e.contains(want), "{args}: {e}");
        }
    }
}
