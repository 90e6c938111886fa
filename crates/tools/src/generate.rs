//! `submit_manifests`: the one tool of a `kai generate` session. The model hands in a
//! draft; kai checks it (parse, schema, lint errors, and unless offline custom resources
//! against their CRD's schema and a server-side dry
//! run of every object through the change pipeline's dry-run path: never a write) and
//! answers with every problem by path, or accepts it. After the last allowed round a
//! failed draft ends the turn: the front end reports that generation gave up.
//!
//! The tool is not mutating: nothing it does can change the cluster (dry runs carry
//! `dryRun=All`, which the cluster's write gate lets through only as dry runs).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use kai_cluster::Cluster;
use kai_core::tools::{CallCtx, Tool, ToolError};
use kai_manifest::{Finding, Options, Report, Severity};

/// How many drafts the model gets.
pub const MAX_ROUNDS: u32 = 3;

/// The tool's name; registered only in generate sessions.
pub const NAME: &str = "submit_manifests";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitManifestsArgs {
    /// The complete manifest: one or more YAML documents separated by ---.
    pub yaml: String,
}

/// The accepted draft.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// As the model wrote it.
    pub yaml: String,
    pub objects: Vec<Value>,
    /// Its findings (warnings and infos only: errors are never accepted).
    pub report: Report,
    pub dry_run: bool,
}

/// What the front end reads after the turn.
#[derive(Debug, Default)]
pub struct GenState {
    pub rounds: u32,
    pub accepted: Option<Accepted>,
    /// Set when the last allowed round failed.
    pub gave_up: bool,
    /// The problems of the last rejected draft, one per line.
    pub last_problems: Vec<String>,
}

pub struct SubmitManifests {
    pub opts: Options,
    /// `None` with `--offline`: no dry run.
    pub cluster: Option<Arc<Cluster>>,
    pub max_rounds: u32,
    pub state: Arc<Mutex<GenState>>,
}

impl SubmitManifests {
    fn state(&self) -> Result<std::sync::MutexGuard<'_, GenState>, ToolError> {
        self.state
            .lock()
            .map_err(|_| ToolError::Fatal("internal error: generate state poisoned".into()))
    }

    /// Problems of `yaml` as lines for the model, the objects, and the report.
    async fn check(&self, yaml: &str) -> (Vec<String>, Vec<Value>, Report) {
        let docs = match kai_manifest::parse("draft", yaml) {
            Ok(d) => d,
            Err(e) => {
                let f = kai_manifest::parse_finding(&e);
                return (
                    vec![format!("line {}: {}", f.line, f.message)],
                    Vec::new(),
                    Report {
                        files: 1,
                        objects: 0,
                        findings: vec![f],
                    },
                );
            }
        };
        // Custom resources are checked against the cluster's CRD schemas; kinds whose
        // CRD kai may not read keep the "only metadata checked" note.
        let crds = match &self.cluster {
            Some(cluster) => {
                let wanted = kai_manifest::crd::custom_kinds(&docs);
                (!wanted.is_empty()).then_some(cluster.crd_schemas(&wanted).await)
            }
            None => None,
        };
        let findings = match crds {
            Some(crds) => {
                let mut opts = self.opts.clone();
                opts.crds = Some(crds);
                kai_manifest::check(&docs, &opts)
            }
            None => kai_manifest::check(&docs, &self.opts),
        };
        let report = Report {
            files: 1,
            objects: docs.len(),
            findings,
        };
        let objects: Vec<Value> = docs.iter().map(|d| d.value.clone()).collect();
        let mut problems: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(Finding::for_model)
            .collect();
        if objects.is_empty() {
            problems.push("the draft contains no objects".into());
        }
        // The cluster is asked only about drafts kai itself finds sound: its errors
        // come one at a time and are less precise.
        if let (true, Some(cluster)) = (problems.is_empty(), &self.cluster) {
            for (doc, obj) in docs.iter().zip(&objects) {
                let step = match crate::mutate::manifest_step(cluster, obj.clone()).await {
                    Ok(s) => s,
                    Err(e) => {
                        problems.push(format!("{}: {e}", doc.label()));
                        continue;
                    }
                };
                if let Err(e) = kai_changes::dry_run_only(cluster.as_ref(), &step).await {
                    problems.push(format!(
                        "the cluster's server-side dry run rejected {}: {e}",
                        doc.label()
                    ));
                }
            }
        }
        (problems, objects, report)
    }
}

/// The change that applies an accepted draft: the same steps `apply_manifest` builds
/// (server-side apply, field manager kai), for [`kai_changes::run`]'s dry run, diff,
/// confirmation and audit.
pub async fn apply_change(
    cluster: &Cluster,
    yaml: &str,
    objects: &[Value],
) -> Result<kai_changes::Change, ToolError> {
    let mut steps = Vec::new();
    for obj in objects {
        steps.push(crate::mutate::manifest_step(cluster, obj.clone()).await?);
    }
    let title = match steps.as_slice() {
        [one] => format!("apply {}", one.label()),
        many => format!(
            "apply {} generated objects: {}",
            many.len(),
            many.iter()
                .map(kai_changes::Step::label)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let kubectl = if steps.iter().any(kai_changes::Step::is_secret) {
        "kubectl apply --server-side --field-manager=kai --force-conflicts -f MANIFEST  # the manifest holds a Secret; its values are not repeated here".to_string()
    } else {
        format!(
            "kubectl apply --server-side --field-manager=kai --force-conflicts -f - <<'EOF'\n{}\nEOF",
            yaml.trim_end()
        )
    };
    Ok(kai_changes::Change {
        tool: "generate".into(),
        title,
        kubectl,
        steps,
    })
}

#[async_trait]
impl Tool for SubmitManifests {
    type Args = SubmitManifestsArgs;

    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tools/submit_manifests.md"
        ))
    }

    fn is_mutating(&self) -> bool {
        false
    }

    fn summarize(&self, args: &Value) -> String {
        let docs = args
            .get("yaml")
            .and_then(Value::as_str)
            .map(|y| y.matches("kind:").count())
            .unwrap_or(0);
        format!("submit_manifests ({docs} object(s))")
    }

    fn shown_args(&self, args: &Value) -> Value {
        let mut shown = args.clone();
        if args
            .get("yaml")
            .and_then(Value::as_str)
            .is_some_and(|y| y.to_ascii_lowercase().contains("secret"))
        {
            shown["yaml"] =
                Value::String("(a manifest holding a Secret; its values are not shown)".into());
        }
        shown
    }

    async fn call(&self, _ctx: &CallCtx, args: SubmitManifestsArgs) -> Result<String, ToolError> {
        let round = {
            let mut s = self.state()?;
            if s.gave_up {
                return Err(ToolError::Fatal("generation already gave up".into()));
            }
            s.rounds += 1;
            s.rounds
        };
        let yaml = Some(args.yaml.as_str())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ToolError::Model("missing required string argument `yaml`".into()))?;
        let (problems, objects, report) = self.check(yaml).await;
        let mut s = self.state()?;
        if problems.is_empty() {
            let warnings: Vec<String> = report
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Warning)
                .map(Finding::for_model)
                .collect();
            let n = objects.len();
            s.accepted = Some(Accepted {
                yaml: yaml.to_string(),
                objects,
                report,
                dry_run: self.cluster.is_some(),
            });
            s.last_problems.clear();
            let checks = if self.cluster.is_some() {
                "YAML, schema, lint and the cluster's server-side dry run"
            } else {
                "YAML, schema and lint (offline: no dry run)"
            };
            let mut msg = format!("accepted: {n} object(s) passed {checks}.");
            if !warnings.is_empty() {
                msg.push_str(&format!(
                    " Warnings (shown to the user, not blocking):\n- {}\n",
                    warnings.join("\n- ")
                ));
            }
            msg.push_str(" Now answer with one sentence describing what you generated; do not call submit_manifests again.");
            return Ok(msg);
        }
        s.last_problems = problems.clone();
        if round >= self.max_rounds {
            s.gave_up = true;
            return Err(ToolError::Fatal(format!(
                "kai generate gave up after {round} rounds; the last draft still has {} problem(s):\n- {}",
                problems.len(),
                problems.join("\n- ")
            )));
        }
        Err(ToolError::Model(format!(
            "draft {round} of {} was not accepted; {} problem(s):\n- {}\nFix every one and call submit_manifests again with the whole corrected manifest.",
            self.max_rounds,
            problems.len(),
            problems.join("\n- ")
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kai_core::tools::{handler, DenyAll};

    fn args(yaml: &str) -> SubmitManifestsArgs {
        SubmitManifestsArgs { yaml: yaml.into() }
    }

    fn tool() -> SubmitManifests {
        SubmitManifests {
            opts: Options::default(),
            cluster: None,
            max_rounds: 2,
            state: Arc::default(),
        }
    }

    const GOOD: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n";

    #[test]
    fn the_declaration_parses_and_is_not_mutating() {
        let d = handler(tool()).decl();
        assert_eq!(d.name, "submit_manifests");
        assert!(!d.mutating);
        assert!(!tool().is_mutating());
        assert_eq!(d.parameters["required"], serde_json::json!(["yaml"]));
        assert_eq!(d.parameters["additionalProperties"], false);
    }

    #[tokio::test]
    async fn drafts_are_checked_fed_back_and_given_up_on() {
        let t = tool();
        let ctx = CallCtx::new(Arc::new(DenyAll));
        let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndatta:\n  k: v\n";
        let e = t.call(&ctx, args(bad)).await.unwrap_err();
        let ToolError::Model(m) = e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("datta: unknown field `datta`; did you mean `data`?"),
            "{m}"
        );
        assert!(m.contains("(line 5)"), "{m}");
        let e = t.call(&ctx, args(bad)).await.unwrap_err();
        assert!(
            matches!(e, ToolError::Fatal(ref m) if m.contains("gave up after 2 rounds")),
            "{e:?}"
        );
        assert!(t.state.lock().unwrap().gave_up);

        let t = tool();
        let ok = t.call(&ctx, args(GOOD)).await.unwrap();
        assert!(ok.starts_with("accepted: 1 object(s)"), "{ok}");
        let s = t.state.lock().unwrap();
        assert_eq!(s.accepted.as_ref().unwrap().yaml, GOOD);
        assert_eq!(s.rounds, 1);
    }
}
