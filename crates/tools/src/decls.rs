//! The standard tools' declarations as the model is offered them, generated from the
//! tools themselves ([`crate::handlers`]): the name, the description from
//! `tools/<name>.md`, the JSON schema of the arguments struct, and whether the handler
//! mutates.

use std::sync::Arc;

use kai_core::tools::ToolDecl;

use crate::ToolEnv;

/// Every standard tool's declaration, in the order of [`crate::handlers`].
pub fn all() -> Vec<ToolDecl> {
    // Declarations do not depend on the environment: any will do.
    let env = Arc::new(ToolEnv {
        cluster: None,
        budget_tokens: 0,
        auto_approve: false,
        data_dir: std::path::PathBuf::new(),
        reads: Default::default(),
    });
    crate::handlers(&env).iter().map(|h| h.decl()).collect()
}

/// The declaration of `name`.
pub fn find(name: &str) -> Option<ToolDecl> {
    all().into_iter().find(|d| d.name == name)
}

/// Bytes of `decl` as sent to the model: the JSON of its name, description and
/// parameters (the `{"type":"function","function":...}` wrapper around it is the same
/// for every tool).
pub fn wire_size(decl: &ToolDecl) -> usize {
    serde_json::to_string(&decl.spec()).map_or(0, |s| s.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// (name, mutating, required arguments, all arguments, bytes as sent).
    type Row = (
        &'static str,
        bool,
        &'static [&'static str],
        &'static [&'static str],
        usize,
    );

    /// The sizes are a snapshot: a change to a description or an argument shows here,
    /// and the totals below say what it costs every request.
    const EXPECTED: &[Row] = &[
        (
            "list_resources",
            false,
            &["kind"],
            &["field_selector", "kind", "label_selector", "namespace"],
            535,
        ),
        (
            "get_resource",
            false,
            &["kind", "name"],
            &["kind", "name", "namespace"],
            275,
        ),
        (
            "describe",
            false,
            &["kind", "name"],
            &["kind", "name", "namespace"],
            334,
        ),
        (
            "get_logs",
            false,
            &["pod"],
            &[
                "container",
                "namespace",
                "pod",
                "previous",
                "since_seconds",
                "tail_lines",
            ],
            551,
        ),
        (
            "list_events",
            false,
            &[],
            &["kind", "name", "namespace", "types"],
            373,
        ),
        ("analyze", false, &[], &["namespace", "target"], 376),
        (
            "propose_change",
            true,
            &["action"],
            &[
                "action",
                "container",
                "image",
                "kind",
                "name",
                "namespace",
                "patch",
                "patch_type",
                "replicas",
                "to_revision",
                "yaml",
            ],
            1690,
        ),
    ];
    /// All declarations, and the read-only set's (what `--read-only` sends).
    const TOTAL: usize = 4134;
    const READ_ONLY_TOTAL: usize = 2444;

    #[test]
    fn declarations_match_the_snapshot() {
        let decls = all();
        let got: Vec<_> = decls
            .iter()
            .map(|d| {
                let strs = |v: &Value| -> Vec<String> {
                    let mut s: Vec<String> = match v {
                        Value::Array(a) => {
                            a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
                        }
                        Value::Object(o) => o.keys().cloned().collect(),
                        _ => vec![],
                    };
                    if v.is_object() {
                        s.sort();
                    }
                    s
                };
                (
                    d.name.clone(),
                    d.mutating,
                    strs(&d.parameters["required"]),
                    strs(&d.parameters["properties"]),
                    wire_size(d),
                )
            })
            .collect();
        let want: Vec<_> = EXPECTED
            .iter()
            .map(|(n, m, r, p, s)| {
                let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
                (n.to_string(), *m, v(r), v(p), *s)
            })
            .collect();
        assert_eq!(got, want);
        let total: usize = decls.iter().map(wire_size).sum();
        let read_only: usize = decls.iter().filter(|d| !d.mutating).map(wire_size).sum();
        assert_eq!((total, read_only), (TOTAL, READ_ONLY_TOTAL));
    }

    /// What the declarations cost, bytes as sent: all of them, and the read-only set.
    /// (The hand-written `tools/*.json` they were generated from at first: 8454 and
    /// 3457; with the seven changes as one `propose_change` and tighter descriptions:
    /// 4432 and 2713; without the top-level `additionalProperties` in what is sent and
    /// with shorter texts: these.)
    const BASELINE_TOTAL: usize = 4134;
    const BASELINE_READ_ONLY: usize = 2444;
    /// The diagnosis tool set's budget (issue 14): every request carries it.
    const READ_ONLY_LIMIT: usize = 3000;

    /// Every request carries the declarations, so their size is a budget, not a detail:
    /// a change that grows them by more than a tenth over the baseline fails here,
    /// whatever the snapshot above was updated to.
    #[test]
    fn declarations_stay_within_a_tenth_of_the_baseline() {
        let decls = all();
        let total: usize = decls.iter().map(wire_size).sum();
        let read_only: usize = decls.iter().filter(|d| !d.mutating).map(wire_size).sum();
        assert!(
            total * 10 <= BASELINE_TOTAL * 11,
            "declarations are {total} bytes, more than 10% over {BASELINE_TOTAL}"
        );
        assert!(
            read_only * 10 <= BASELINE_READ_ONLY * 11,
            "read-only declarations are {read_only} bytes, more than 10% over {BASELINE_READ_ONLY}"
        );
        assert!(
            read_only <= READ_ONLY_LIMIT,
            "read-only declarations are {read_only} bytes, over the {READ_ONLY_LIMIT}-byte budget"
        );
    }

    #[test]
    fn every_declaration_reads_its_description_file_and_is_well_formed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools");
        for d in all() {
            let file = dir.join(format!("{}.md", d.name));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(d.description, kai_core::tools::prose(&text), "{}", d.name);
            assert!(!d.description.is_empty(), "{}", d.name);
            assert_eq!(d.parameters["type"], "object", "{}", d.name);
            assert_eq!(d.parameters["additionalProperties"], false, "{}", d.name);
            // Nothing the model does not need.
            let mut keys = Vec::new();
            schema_keys(&d.parameters, &mut keys);
            for noise in [
                "$schema",
                "$ref",
                "definitions",
                "$defs",
                "title",
                "format",
                "default",
            ] {
                assert!(
                    !keys.contains(&noise.to_string()),
                    "{}: {noise} in {}",
                    d.name,
                    d.parameters
                );
            }
            assert!(
                !d.parameters.to_string().contains("\"null\""),
                "{}",
                d.parameters
            );
        }
        // No description file without a tool.
        let names: Vec<String> = all().into_iter().map(|d| d.name).collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                let stem = path.file_stem().unwrap().to_string_lossy().to_string();
                // submit_manifests is kai generate's own tool and search_docs is registered
                // with the session's docs index, so neither is in the standard set.
                assert!(
                    stem == "README"
                        || stem == crate::generate::NAME
                        || stem == crate::docs::TOOL
                        || names.contains(&stem),
                    "{} describes no tool",
                    path.display()
                );
            }
        }
    }

    /// The keywords used anywhere in `schema` (property names excluded).
    fn schema_keys(schema: &Value, out: &mut Vec<String>) {
        if let Value::Object(o) = schema {
            for (k, v) in o {
                out.push(k.clone());
                match (k.as_str(), v) {
                    ("properties", Value::Object(props)) => {
                        props.values().for_each(|p| schema_keys(p, out))
                    }
                    _ => schema_keys(v, out),
                }
            }
        }
    }

    #[test]
    fn find_is_by_name() {
        assert_eq!(find("describe").unwrap().name, "describe");
        assert!(
            find("scale").is_none(),
            "a change is an action of propose_change"
        );
        assert!(find("kubectl").is_none());
    }
}
