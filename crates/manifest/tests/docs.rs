//! docs/lint-rules.md documents every rule (id, severity, why, fix, example), and only
//! rules that exist.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kai_manifest::RULES;

#[test]
fn every_rule_is_documented_and_every_section_is_a_rule() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/lint-rules.md"
    ))
    .unwrap();
    let sections: Vec<&str> = doc.split("\n## ").skip(1).collect();
    for r in RULES {
        let s = sections
            .iter()
            .find(|s| s.lines().next() == Some(r.id))
            .unwrap_or_else(|| panic!("docs/lint-rules.md has no section `## {}`", r.id));
        assert!(
            s.contains(&format!("Severity: **{}**", r.severity)),
            "{}: severity",
            r.id
        );
        for part in [
            "**Why.** ",
            "**Fix.** ",
            "**Example** (fires):\n\n```yaml\n",
        ] {
            assert!(s.contains(part), "{}: no {part:?}", r.id);
        }
    }
    for s in &sections {
        let id = s.lines().next().unwrap();
        assert!(
            RULES.iter().any(|r| r.id == id),
            "documented rule {id} does not exist"
        );
    }
}
