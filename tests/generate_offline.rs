//! `kai generate --offline`: no cluster at all (the kubeconfig points nowhere), only the
//! scripted model and kai's own checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

use mock_llm::{MockLlm, Reply};
use serde_json::json;

fn kai(llm: &MockLlm, home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kai"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KAI_DATA_DIR", home)
        .env("KUBECONFIG", home.join("no-such-kubeconfig"))
        .env("OPENAI_API_KEY", "sk-test-key-not-real")
        .args([
            "--base-url",
            &llm.base_url(),
            "--model",
            "mock",
            "generate",
            "--offline",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

const CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n";

#[test]
fn offline_drafts_are_checked_without_a_cluster() {
    let home = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        Reply::tool_call(
            "submit_manifests",
            json!({"yaml": CM.replace("data:", "dat:")}).to_string(),
        ),
        Reply::tool_call("submit_manifests", json!({"yaml": CM}).to_string()),
        Reply::text("A ConfigMap."),
    ]);
    let o = kai(
        &llm,
        home.path(),
        &["a configmap named settings", "-n", "shop"],
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), CM);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("offline, so no dry run"), "{stderr}");
    let reqs = llm.requests();
    let first = reqs[0].to_string();
    assert!(first.contains("Target namespace: shop"), "{first}");
    assert!(first.contains("offline"), "{first}");
    assert!(reqs[1].to_string().contains("did you mean `data`?"));
}

#[test]
fn a_model_that_never_submits_is_a_clear_failure() {
    let home = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![Reply::text(
        "apiVersion: v1\nkind: ConfigMap ... (as text)",
    )]);
    let o = kai(&llm, home.path(), &["a configmap"]);
    assert_eq!(o.status.code(), Some(kai::exit::GENERATE_FAILED), "{o:?}");
    assert!(o.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("did not submit manifests"), "{stderr}");
}

#[test]
fn apply_and_offline_do_not_mix() {
    let home = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![]);
    let o = kai(&llm, home.path(), &["x", "--apply"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(llm.requests().len(), 0);
}
