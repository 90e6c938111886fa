//! Reports: human lines, JSON, and SARIF 2.1.0 for code-scanning UIs.
//!
//! Findings quote file content (names, images, values): the human form is plain text
//! for the caller to pass through its terminal filter; the JSON forms are escaped by
//! serde.

use serde_json::{json, Value};

use crate::rules::RULES;
use crate::{Report, Severity};

/// Where the rules are documented (SARIF `helpUri`), relative to the repository.
pub const RULES_DOC: &str = "docs/lint-rules.md";

/// `file:line: severity [rule] Kind/name path: message`, one per finding, then a summary.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!(
            "{}:{}: {} [{}] {} {}: {}\n",
            f.file, f.line, f.severity, f.rule, f.object, f.path, f.message
        ));
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

pub fn summary(report: &Report) -> String {
    format!(
        "{} object(s) in {} file(s): {} error(s), {} warning(s), {} info",
        report.objects,
        report.files,
        report.count(Severity::Error),
        report.count(Severity::Warning),
        report.count(Severity::Info)
    )
}

pub fn json(report: &Report) -> Value {
    json!({
        "files": report.files,
        "objects": report.objects,
        "errors": report.count(Severity::Error),
        "warnings": report.count(Severity::Warning),
        "infos": report.count(Severity::Info),
        "findings": report.findings,
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A SARIF 2.1.0 log with one run: every rule in the driver, every finding a result
/// located by file and line.
pub fn sarif(report: &Report, version: &str) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.summary},
                "helpUri": format!("{RULES_DOC}#{}", r.id),
                "defaultConfiguration": {"level": level(r.severity)},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule).unwrap_or(0),
                "level": level(f.severity),
                "message": {"text": format!("{} {}: {}", f.object, f.path, f.message)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.file},
                        "region": {"startLine": f.line.max(1)},
                    },
                    "logicalLocations": [{"name": f.object, "fullyQualifiedName": format!("{}/{}", f.object, f.path)}],
                }],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kai",
                "version": version,
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{check_files, Options};

    fn report() -> Report {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n    securityContext:\n      privileged: true\n";
        check_files(&[("pod.yaml".into(), text.into())], &Options::default())
    }

    #[test]
    fn sarif_has_the_required_shape() {
        let r = report();
        let s = sarif(&r, "0.1.0");
        assert_eq!(s["version"], "2.1.0");
        let run = &s["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "kai");
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            RULES.len()
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), r.findings.len());
        let privileged = results
            .iter()
            .find(|x| x["ruleId"] == "privileged")
            .unwrap();
        assert_eq!(privileged["level"], "error");
        let loc = &privileged["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "pod.yaml");
        assert_eq!(loc["region"]["startLine"], 10);
        let idx = privileged["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], "privileged");
    }

    #[test]
    fn human_and_json_forms() {
        let r = report();
        let h = human(&r);
        assert!(h.contains("pod.yaml:10: error [privileged] Pod/p spec.containers[0].securityContext.privileged:"), "{h}");
        assert!(h.contains("pod.yaml:8: warning [image-untagged]"), "{h}");
        assert!(h.trim_end().ends_with("info"), "{h}");
        let j = json(&r);
        assert_eq!(j["errors"], 1);
        assert_eq!(j["findings"][0]["file"], "pod.yaml");
    }
}
