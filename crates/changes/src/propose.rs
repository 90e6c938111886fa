//! Analyzer findings that carry a concrete fix become one-step proposals.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    kubectl_ns, kubectl_ref, run, shell_quote, Action, Change, ChangeEnv, ChangeError, PatchType,
    Step, PROPOSAL_TOOL,
};
use kai_cluster::Cluster;

/// A fix as analyzers describe it (the fields of `kai_analyze::ProposedChange`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedFix {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// merge | strategic | json (empty: merge).
    pub patch_type: String,
    pub patch: Value,
}

/// Run an analyzer's fix through the whole pipeline as one question
/// ("apply the suggested fix? [y/N]"). The result is the message for the model/user.
pub async fn propose_change(env: &ChangeEnv, fix: &ProposedFix) -> Result<String, ChangeError> {
    let cluster = &env.cluster;
    let pt = super::parse_patch_type(Some(fix.patch_type.as_str()))?;
    let mut change = patch_change(
        cluster,
        PROPOSAL_TOOL,
        &fix.kind,
        &fix.name,
        fix.namespace.as_deref(),
        pt,
        &fix.patch,
    )
    .await?;
    change.title = format!("suggested fix: {}", change.title);
    Ok(run(env, &change).await?.message())
}

/// A patch given as JSON/YAML text or as a value, checked against its patch type.
pub fn parse_patch(patch: &Value, pt: PatchType) -> Result<Value, ChangeError> {
    let value = match patch {
        Value::String(text) => {
            kai_text::bounded::check("patch", text)
                .map_err(|e| ChangeError::Invalid(e.to_string()))?;
            serde_yaml::from_str::<Value>(text).map_err(|e| {
            ChangeError::Invalid(format!("the patch is not valid JSON or YAML ({e}); send it as a JSON object (merge/strategic) or array (json)"))
        })?
        }
        other => other.clone(),
    };
    match (pt, &value) {
        (PatchType::Json, Value::Array(ops)) if !ops.is_empty() => Ok(value),
        (PatchType::Json, _) => Err(ChangeError::Invalid(
            "a json patch must be a non-empty array of operations like [{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":2}]".into(),
        )),
        (_, Value::Object(m)) if !m.is_empty() => Ok(value),
        (pt, _) => Err(ChangeError::Invalid(format!(
            "a {} patch must be a non-empty JSON object like {{\"spec\":{{\"replicas\":2}}}}",
            pt.as_str()
        ))),
    }
}

/// The change for one patch of one object.
pub async fn patch_change(
    cluster: &Cluster,
    tool: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    pt: PatchType,
    patch: &Value,
) -> Result<Change, ChangeError> {
    let body = parse_patch(patch, pt)?;
    let kind = cluster.resolve(kind).await?;
    let step = Step::new(
        cluster,
        kind,
        name,
        namespace,
        Action::Patch(pt, body.clone()),
    )?;
    let shown = if step.is_secret() {
        super::diff::redact_secret_patch(&body)
    } else {
        body.clone()
    };
    let kubectl = format!(
        "kubectl patch {}{} --type {} -p {}",
        kubectl_ref(&step),
        kubectl_ns(&step),
        pt.as_str(),
        shell_quote(&shown.to_string())
    );
    Ok(Change {
        tool: tool.into(),
        title: format!("patch {}", step.label()),
        kubectl,
        steps: vec![step],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patches_are_parsed_and_checked() {
        assert_eq!(
            parse_patch(&json!("{\"spec\": {\"replicas\": 2}}"), PatchType::Merge).unwrap(),
            json!({"spec": {"replicas": 2}})
        );
        assert_eq!(
            parse_patch(&json!("spec:\n  replicas: 2\n"), PatchType::Strategic).unwrap(),
            json!({"spec": {"replicas": 2}})
        );
        assert!(parse_patch(&json!([{"op": "remove", "path": "/x"}]), PatchType::Json).is_ok());
        assert!(parse_patch(&json!({"spec": {}}), PatchType::Json).is_err());
        assert!(parse_patch(&json!([]), PatchType::Merge).is_err());
        assert!(parse_patch(&json!("{not: [valid"), PatchType::Merge)
            .unwrap_err()
            .to_string()
            .contains("not valid JSON or YAML"));
    }
}
