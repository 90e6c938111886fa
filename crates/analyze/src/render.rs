//! Findings as text for a terminal, or as JSON (`-o json`).
//!
//! Findings quote the cluster: object names, event messages, container log lines. In
//! text every such field passes the caller's `clean` filter before kai adds its own
//! colours: a front end passes its terminal egress (credentials scrubbed, escape
//! sequences made visible), so the renderer stays pure string building. The JSON form is
//! scrubbed where it is printed (the front end's `ui::json::pretty`).

use std::fmt::Write;

use super::finding::{Finding, ObjectRef, Severity};

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
    }
}

/// Grouped by object (in rank order), one line per finding, evidence, fix and runbook
/// beneath. Every field quoted from the cluster passes `clean` first.
pub fn render_text(findings: &[Finding], color: bool, clean: &dyn Fn(&str) -> String) -> String {
    render_text_with(findings, color, clean, &|_| None)
}

/// [`render_text`], with each finding's runbook line also naming the runbook's title,
/// which `runbook_title` looks up by path (`docs/runbooks/<slug>.md`).
pub fn render_text_with(
    findings: &[Finding],
    color: bool,
    clean: &dyn Fn(&str) -> String,
    runbook_title: &dyn Fn(&str) -> Option<String>,
) -> String {
    if findings.is_empty() {
        return "No problems found.\n".to_string();
    }
    let mut order: Vec<&ObjectRef> = Vec::new();
    for f in findings {
        if !order.contains(&&f.object) {
            order.push(&f.object);
        }
    }
    let mut out = String::new();
    for obj in order {
        let _ = writeln!(out, "{}", paint(&clean(&obj.to_string()), "1", color));
        for f in findings.iter().filter(|f| &f.object == obj) {
            let sev = format!("{:<8}", f.severity.as_str().to_uppercase());
            let _ = writeln!(
                out,
                "  {} {}  {}",
                paint(&sev, severity_color(f.severity), color),
                paint(&clean(f.cause.as_str()), "1", color),
                clean(&f.summary)
            );
            for e in &f.evidence {
                // One evidence item may span lines (a log excerpt): keep it under its bar.
                for line in clean(e).lines() {
                    let _ = writeln!(out, "      {} {line}", paint("│", "2", color));
                }
            }
            if !f.fix.description.is_empty() {
                let _ = writeln!(
                    out,
                    "      {} {}",
                    paint("fix:", "32", color),
                    clean(&f.fix.description)
                );
            }
            if let Some(c) = &f.fix.change {
                let target = match &c.namespace {
                    Some(ns) => format!("{} {ns}/{}", c.kind, c.name),
                    None => format!("{} {}", c.kind, c.name),
                };
                let _ = writeln!(
                    out,
                    "      {} {} ({} patch): {}",
                    paint("proposed change:", "32", color),
                    clean(&target),
                    clean(&c.patch_type),
                    clean(&c.patch.to_string())
                );
            }
            if !f.runbook.is_empty() {
                let link = match runbook_title(&f.runbook) {
                    Some(title) => format!("{} ({})", clean(&title), clean(&f.runbook)),
                    None => clean(&f.runbook),
                };
                let _ = writeln!(out, "      {} {link}", paint("runbook:", "36", color));
            }
            // The user's own runbooks for the cause (kai adds them to `docs` when the
            // user has indexed documents); the vocabulary link is not a runbook.
            for d in f
                .docs
                .iter()
                .filter(|d| !d.starts_with(crate::cause::VOCABULARY_PAGE))
            {
                let link = match runbook_title(d) {
                    Some(title) => format!("{} ({})", clean(&title), clean(d)),
                    None => clean(d),
                };
                let _ = writeln!(out, "      {} {link}", paint("runbook:", "36", color));
            }
        }
    }
    let n = findings.len();
    let _ = writeln!(out, "\n{n} problem{} found.", if n == 1 { "" } else { "s" });
    out
}

/// `{"findings": [...]}` for `-o json`.
pub fn to_json(findings: &[Finding]) -> serde_json::Value {
    serde_json::json!({ "findings": findings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Cause;

    fn same(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn empty_says_no_problems() {
        assert_eq!(render_text(&[], true, &same), "No problems found.\n");
        assert_eq!(to_json(&[]), serde_json::json!({"findings": []}));
    }

    #[test]
    fn groups_by_object_with_evidence_and_fix() {
        let o = ObjectRef::new("Deployment", Some("app"), "web");
        let f = vec![
            Finding::new(Cause::OomKilled, o.clone(), "container \"app\" is killed")
                .evidence("memory limit: 128Mi")
                .advice("Raise it"),
            Finding::new(Cause::RolloutStuck, o, "stuck"),
        ];
        let text = render_text(&f, false, &same);
        assert_eq!(text.matches("Deployment app/web").count(), 1);
        assert!(text.contains("CRITICAL oom-killed  container \"app\" is killed"));
        assert!(text.contains("│ memory limit: 128Mi"));
        assert!(text.contains("fix: Raise it"));
        assert!(
            text.contains("      runbook: docs/runbooks/oom-killed.md\n"),
            "{text}"
        );
        let titled = render_text_with(&f, false, &same, &|p| {
            (p == "docs/runbooks/oom-killed.md").then(|| "OOMKilled".to_string())
        });
        assert!(
            titled.contains("      runbook: OOMKilled (docs/runbooks/oom-killed.md)\n"),
            "{titled}"
        );
        assert!(
            titled.contains("runbook: docs/runbooks/rollout-stuck.md"),
            "{titled}"
        );
        // A user runbook added to `docs` is linked too; the vocabulary page is not.
        let mut g = f[0].clone();
        g.docs.push("/srv/team/oom.md".into());
        let text = render_text(&[g], false, &same);
        assert!(text.contains("      runbook: /srv/team/oom.md\n"), "{text}");
        assert!(!text.contains("causes.md"), "{text}");
        assert!(!text.contains('\x1b'));
        assert!(render_text(&f, true, &same).contains('\x1b'));
        let j = to_json(&f);
        assert_eq!(j["findings"][0]["severity"], "critical");
        assert_eq!(j["findings"][0]["object"]["namespace"], "app");
    }
}
