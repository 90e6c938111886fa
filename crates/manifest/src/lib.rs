//! kai's manifest checks, shared by `kai lint` and `kai generate`: pure functions over
//! text, no cluster client, no async runtime.
//!
//! 1. [`parse`]: multi-document YAML, bounded (1 MiB, 64 levels), line numbers in errors;
//! 2. [`schema`]: built-in kinds through their k8s-openapi types, strictly: unknown and
//!    misspelt fields by path with "did you mean", wrong types, missing required fields;
//! 3. [`rules`]: best-practice rules with stable ids and a severity, over the whole
//!    bundle (a Service is checked against the pod templates next to it);
//! 4. [`report`]: human, JSON and SARIF 2.1.0 output.
//!
//! Custom resources are checked against their CRD's OpenAPI schema ([`crd`]) when the
//! caller read the schemas from a cluster ([`Options::crds`]); otherwise only their
//! metadata is.
//!
//! A rule is silenced per object by the annotation `kai.dev/ignore: rule-id[,rule-id]`,
//! or everywhere by [`Options::disabled`] (the `[lint] disable` config list).

pub mod crd;
pub mod locate;
pub mod parse;
pub mod path;
pub mod quantity;
pub mod report;
pub mod rules;
pub mod schema;

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

pub use parse::{parse, Doc, ParseError};
pub use path::Path;
pub use rules::{RuleInfo, RULES};

/// The annotation that silences rules on one object.
pub const IGNORE_ANNOTATION: &str = "kai.dev/ignore";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    /// `Deployment/web`.
    pub object: String,
    /// `spec.template.spec.containers[0].image`.
    pub path: String,
    pub message: String,
}

impl Finding {
    /// `path: message`: what the model is told in `kai generate`.
    pub fn for_model(&self) -> String {
        format!(
            "{} {} (line {}), {}: {} [{}]",
            self.severity, self.object, self.line, self.path, self.message, self.rule
        )
    }
}

/// What exists in the cluster, for the rules that look beyond the bundle (`kai generate`
/// fills it unless `--offline`; `kai lint` has none).
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    pub services: Vec<ServiceFact>,
    pub workloads: Vec<WorkloadFact>,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceFact {
    pub namespace: String,
    pub name: String,
    /// (port name, port number).
    pub ports: Vec<(Option<String>, i64)>,
}

#[derive(Debug, Clone, Default)]
pub struct WorkloadFact {
    pub namespace: String,
    /// `Deployment/backend`.
    pub object: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// (port name, container port).
    pub ports: Vec<(Option<String>, i64)>,
}

/// How to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The namespace the objects are meant for (`-n`): a different `metadata.namespace`
    /// is a finding, and objects without one are taken to be in it.
    pub namespace: Option<String>,
    /// Rule ids turned off everywhere.
    pub disabled: BTreeSet<String>,
    pub cluster: Option<ClusterFacts>,
    /// The CRD schemas of the bundle's custom kinds, read from the cluster (`kai lint
    /// --cluster`, `kai generate` unless `--offline`); `None`: only their metadata is
    /// checked.
    pub crds: Option<crd::CrdSchemas>,
}

/// The result of checking a set of files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub files: usize,
    pub objects: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// A file's findings when it does not even parse: one error finding at the line.
pub fn parse_finding(e: &ParseError) -> Finding {
    Finding {
        rule: rules::YAML_PARSE,
        severity: Severity::Error,
        file: e.file.clone(),
        line: e.line,
        object: "-".into(),
        path: "-".into(),
        message: e.message.clone(),
    }
}

/// Schema and lint checks over every document of a bundle (the documents of all files
/// given together: cross-object rules see all of them).
pub fn check(docs: &[Doc], opts: &Options) -> Vec<Finding> {
    let mut findings = Vec::new();
    for doc in docs {
        let mut issues = schema::check(&doc.value);
        if let Some(crds) = &opts.crds {
            issues = crd::resolve(issues, &doc.value, crds);
        }
        for issue in issues {
            let rule = match issue.kind {
                schema::IssueKind::UnknownField => rules::SCHEMA_UNKNOWN_FIELD,
                schema::IssueKind::Invalid => rules::SCHEMA_INVALID,
                schema::IssueKind::UnknownKind => {
                    // A removed API version has its own rule, with the replacement.
                    if rules::deprecated_replacement(doc.api_version(), doc.kind()).is_some() {
                        continue;
                    }
                    rules::SCHEMA_UNKNOWN_KIND
                }
            };
            findings.push(Finding {
                rule,
                severity: rules::severity_of(rule),
                file: doc.file.clone(),
                line: doc.line_of(&issue.path),
                object: doc.label(),
                path: issue.path.to_string(),
                message: issue.message,
            });
        }
    }
    findings.extend(rules::run(docs, opts));
    findings.retain(|f| !opts.disabled.contains(f.rule));
    // Per-object silencing: the annotation of the object the finding is about.
    findings.retain(|f| {
        !docs.iter().any(|d| {
            d.file == f.file && d.label() == f.object && ignored(d).contains(&f.rule.to_string())
        })
    });
    findings
        .sort_by(|a, b| (a.file.as_str(), a.line, a.rule).cmp(&(b.file.as_str(), b.line, b.rule)));
    findings.dedup();
    findings
}

/// The rule ids an object's `kai.dev/ignore` annotation names.
pub fn ignored(doc: &Doc) -> Vec<String> {
    doc.value
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(IGNORE_ANNOTATION))
        .and_then(serde_json::Value::as_str)
        .map(|s| {
            s.split(',')
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Parse and check `(name, text)` files as one bundle.
pub fn check_files(files: &[(String, String)], opts: &Options) -> Report {
    let mut docs = Vec::new();
    let mut findings = Vec::new();
    for (name, text) in files {
        match parse(name, text) {
            Ok(d) => docs.extend(d),
            Err(e) => findings.push(parse_finding(&e)),
        }
    }
    findings.extend(check(&docs, opts));
    Report {
        files: files.len(),
        objects: docs.len(),
        findings,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const WEB: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    kai.dev/ignore: image-latest, missing-liveness-probe
spec:
  replica: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:latest
";

    #[test]
    fn schema_findings_have_file_lines_and_annotations_silence_rules() {
        let r = check_files(&[("web.yaml".into(), WEB.into())], &Options::default());
        let unknown = r
            .findings
            .iter()
            .find(|f| f.rule == rules::SCHEMA_UNKNOWN_FIELD)
            .unwrap();
        assert_eq!(unknown.line, 8);
        assert_eq!(unknown.path, "spec.replica");
        assert!(unknown.message.contains("did you mean `replicas`"));
        assert!(r.has_errors());
        assert!(!r.findings.iter().any(|f| f.rule == "image-latest"));
        assert!(!r
            .findings
            .iter()
            .any(|f| f.rule == "missing-liveness-probe"));
        assert!(r
            .findings
            .iter()
            .any(|f| f.rule == "missing-readiness-probe"));
    }

    #[test]
    fn config_disables_rules_everywhere() {
        let opts = Options {
            disabled: ["missing-readiness-probe".to_string()].into(),
            ..Options::default()
        };
        let r = check_files(&[("web.yaml".into(), WEB.into())], &opts);
        assert!(!r
            .findings
            .iter()
            .any(|f| f.rule == "missing-readiness-probe"));
        assert!(r.findings.iter().any(|f| f.rule == "missing-requests"));
    }

    #[test]
    fn custom_resources_are_checked_against_their_crd_schema_with_lines() {
        let text =
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  sise: 3\n";
        let files = [("w.yaml".to_string(), text.to_string())];
        // Without schemas: the note, nothing else.
        let r = check_files(&files, &Options::default());
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        assert_eq!(r.findings[0].rule, rules::SCHEMA_UNKNOWN_KIND);
        assert!(!r.has_errors());

        let mut crds = crd::CrdSchemas::default();
        crds.schemas.insert(
            ("example.com".into(), "v1".into(), "Widget".into()),
            serde_json::json!({"type": "object", "properties": {"spec": {"type": "object",
                "required": ["size"], "properties": {"size": {"type": "integer"}}}}}),
        );
        let opts = Options {
            crds: Some(crds),
            ..Options::default()
        };
        let r = check_files(&files, &opts);
        assert!(r.has_errors());
        assert!(!r
            .findings
            .iter()
            .any(|f| f.rule == rules::SCHEMA_UNKNOWN_KIND));
        let unknown = r
            .findings
            .iter()
            .find(|f| f.rule == rules::SCHEMA_UNKNOWN_FIELD)
            .unwrap();
        assert_eq!((unknown.line, unknown.path.as_str()), (6, "spec.sise"));
        assert_eq!(unknown.object, "Widget/w");
        assert!(unknown.message.contains("did you mean `size`"));
        let missing = r
            .findings
            .iter()
            .find(|f| f.rule == rules::SCHEMA_INVALID)
            .unwrap();
        assert_eq!(missing.path, "spec.size");
        assert_eq!(missing.line, 5);
    }

    #[test]
    fn unparsable_files_are_one_error_at_their_line() {
        let r = check_files(
            &[("bad.yaml".into(), "a: b\nc: [d\n".into())],
            &Options::default(),
        );
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].rule, rules::YAML_PARSE);
        assert!(r.findings[0].line >= 2);
    }
}
