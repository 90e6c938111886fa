//! `kai lint` as CI runs it: the real binary, no cluster, no model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/manifests");

fn kai_in(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kai"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn kai(args: &[&str], stdin: Option<&str>) -> Output {
    let home = tempfile::tempdir().unwrap();
    kai_in(home.path(), args, stdin)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const CLEAN: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n";
const TYPO: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndatta:\n  k: v\n";

#[test]
fn the_corpus_is_real_world_sized_and_varied() {
    let mut kinds = std::collections::BTreeSet::new();
    let mut files = 0;
    let mut multi = 0;
    for e in std::fs::read_dir(CORPUS).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        files += 1;
        multi += usize::from(text.contains("\n---\n"));
        for l in text.lines() {
            if let Some(k) = l.trim_start_matches(['-', ' ']).strip_prefix("kind: ") {
                kinds.insert(k.trim().to_string());
            }
        }
    }
    assert!(files >= 30, "{files} files");
    assert!(multi >= 5, "{multi} multi-document files");
    for k in [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "Ingress",
        "Service",
    ] {
        assert!(kinds.contains(k), "no {k} in the corpus: {kinds:?}");
    }
}

#[test]
fn the_corpus_fails_with_exit_3_and_findings_by_line_and_path() {
    let o = kai(&["lint", CORPUS], None);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("typo-deployment.yaml:6: error [schema-unknown-field] Deployment/storefront spec.replica: unknown field `replica`; did you mean `replicas`?"), "{out}");
    assert!(
        out.contains("wrong-target-port.yaml:33: error [service-target-port]"),
        "{out}"
    );
    assert!(out.contains("66 object(s) in 38 file(s)"), "{out}");
}

#[test]
fn json_and_sarif_are_machine_readable() {
    let o = kai(&["lint", CORPUS, "-o", "json"], None);
    assert_eq!(o.status.code(), Some(3));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j["errors"].as_u64().unwrap() > 0);
    let n = j["findings"].as_array().unwrap().len();

    let o = kai(&["lint", CORPUS, "-o", "sarif"], None);
    assert_eq!(o.status.code(), Some(3));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let run = &s["runs"][0];
    assert_eq!(run["results"].as_array().unwrap().len(), n);
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for r in run["results"].as_array().unwrap() {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        assert!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"]
                .as_u64()
                .unwrap()
                >= 1
        );
    }
}

#[test]
fn stdin_clean_input_and_usage_errors() {
    let o = kai(&["lint", "-"], Some(CLEAN));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = kai(&["lint", "-"], Some(TYPO));
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("-:5: error [schema-unknown-field] ConfigMap/a datta: unknown field `datta`; did you mean `data`?"), "{}", stdout(&o));
    let o = kai(&["lint", "/nonexistent/kai.yaml"], None);
    assert_eq!(o.status.code(), Some(2));
    let o = kai(&["lint"], None);
    assert_eq!(o.status.code(), Some(2));
    // -o sarif belongs to lint.
    let o = kai(&["scan", "-o", "sarif"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn rules_are_listed_and_can_be_disabled_by_flag_and_config() {
    let o = kai(&["lint", "--list-rules"], None);
    assert_eq!(o.status.code(), Some(0));
    let list = stdout(&o);
    for r in kai_manifest::RULES {
        assert!(list.contains(r.id), "{} not listed", r.id);
    }
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    securityContext: {privileged: true}\n";
    assert_eq!(kai(&["lint", "-"], Some(pod)).status.code(), Some(3));
    let o = kai(&["lint", "-", "--disable", "privileged"], Some(pod));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("config/kai")).unwrap();
    std::fs::write(
        home.path().join("config/kai/config.toml"),
        "[lint]\ndisable = [\"privileged\", \"run-as-root\"]\n",
    )
    .unwrap();
    let o = kai_in(home.path(), &["lint", "-"], Some(pod));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(!stdout(&o).contains("run-as-root"));
    // A misspelt rule id is named, not silently ignored.
    let o = kai(&["lint", "-", "--disable", "privilegd"], Some(pod));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("unknown lint rule privilegd (did you mean privileged?)"),
        "{o:?}"
    );
}

#[test]
fn a_namespace_other_than_n_is_an_error() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: prod\n";
    assert_eq!(kai(&["lint", "-"], Some(cm)).status.code(), Some(0));
    let o = kai(&["-n", "shop", "lint", "-"], Some(cm));
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("[namespace-mismatch]"));
}
