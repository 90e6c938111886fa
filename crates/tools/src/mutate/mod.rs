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

mod manifest;
mod object;
mod workload;

pub use manifest::*;
pub use object::*;
pub use workload::*;

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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::offline_env as env;

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
