//! `apply_manifest`: the documents of a YAML manifest, applied server-side.

use super::*;

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
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
}
