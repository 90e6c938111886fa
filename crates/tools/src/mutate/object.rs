//! Changes to any one object: `patch_resource` and `delete_resource`.

use super::*;

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
