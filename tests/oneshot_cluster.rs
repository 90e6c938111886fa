//! The one-shot question end to end: the real `kai` binary against the real test cluster
//! and a scripted model on loopback that records every request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mock_llm::{MockLlm, Reply, Usage};
use serde_json::{json, Value};

const SECRET_VALUE: &str = "kai-planted-db-password-3f9a";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2VjcmV0c2lnbmF0dXJl";
const FATAL: &str = "FATAL: password authentication failed for user \\\"app\\\"";

async fn cluster_ns(ns: &str, scenario: &str) -> PathBuf {
    kai::init_crypto();
    let c = kai_testcluster::shared().unwrap();
    c.setup_scenario(scenario, ns).await.unwrap();
    c.kubeconfig_path().to_path_buf()
}

fn kai(
    kubeconfig: &Path,
    ns: &str,
    llm: &MockLlm,
    data: &Path,
    extra: &[&str],
    prompt: &str,
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kai"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", data)
        .env("KAI_DATA_DIR", data)
        .env("OPENAI_API_KEY", "sk-test-key-not-real")
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-n",
            ns,
            "--base-url",
            &llm.base_url(),
            "--model",
            "mock",
        ])
        .args(extra)
        .arg(prompt)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// All tool results the model saw in request `i`.
fn tool_results(req: &Value) -> String {
    req["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_question_puts_the_cause_in_front_of_the_model_and_no_secret() {
    let ns = "oneshot-crash";
    let kc = cluster_ns(ns, "crashloop-app-error").await;
    let data = tempfile::tempdir().unwrap();
    // The model also asks for the Secret and the pod's logs itself, to prove those paths
    // are redacted too.
    let llm = MockLlm::start(vec![
        Reply::ToolCalls(vec![
            (
                "get_resource".into(),
                json!({"kind": "Secret", "name": "db-creds"}).to_string(),
            ),
            (
                "list_events".into(),
                json!({"types": ["Warning"]}).to_string(),
            ),
        ])
        .with_usage(Usage::new(1200, 40)),
        Reply::text("**Cause:** the database rejects the password.")
            .with_usage(Usage::new(1500, 60)),
    ]);
    let out = kai(
        &kc,
        ns,
        &llm,
        data.path(),
        &[],
        "why is backend crashlooping?",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("the database rejects the password"),
        "{}",
        text(&out)
    );

    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2, "one tool round trip, two model calls");
    // Before the first model call kai already gathered the evidence itself.
    let first = tool_results(&reqs[0]);
    assert!(
        first.contains(FATAL.replace("\\\"", "\"").as_str()),
        "previous log line missing:\n{first}"
    );
    assert!(first.contains("CrashLoopBackOff"), "{first}");
    assert!(
        first.contains("Error") && first.contains("exit code 1")
            || first.contains("exitCode: 1")
            || first.contains("Exit Code: 1"),
        "termination reason and exit code missing:\n{first}"
    );
    // The model's own calls were answered.
    let second = tool_results(&reqs[1]);
    assert!(
        second.contains("password"),
        "the Secret's key name is shown:\n{second}"
    );
    // Nothing secret in any request body, anywhere.
    for (i, r) in reqs.iter().enumerate() {
        let body = r.to_string();
        assert!(
            !body.contains(SECRET_VALUE),
            "request {i} leaks the Secret value"
        );
        assert!(
            !body.contains(TOKEN),
            "request {i} leaks the planted bearer token"
        );
        assert!(
            !body.contains("sk-test-key-not-real"),
            "request {i} contains the API key"
        );
    }
    // Nor in what kai printed.
    assert!(!text(&out).contains(SECRET_VALUE));
    assert!(!text(&out).contains(TOKEN));
    // Usage is reported at the end on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tokens: 2,700 in / 100 out"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_is_one_document_with_tool_calls_and_usage() {
    let ns = "oneshot-json";
    let kc = cluster_ns(ns, "crashloop-app-error").await;
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        Reply::tool_call("get_logs", json!({"pod": "nope-pod"}).to_string()),
        Reply::text("Done.").with_usage(Usage::new(100, 5)),
    ]);
    let out = kai(
        &kc,
        ns,
        &llm,
        data.path(),
        &["-o", "json"],
        "why is backend crashlooping?",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(doc["answer"], "Done.");
    assert_eq!(doc["end"], "answered");
    assert_eq!(doc["usage"]["prompt_tokens"], 100);
    let calls = doc["tool_calls"].as_array().unwrap();
    assert!(calls.iter().any(|c| c["pregathered"] == true), "{doc}");
    let own = calls
        .iter()
        .find(|c| c["name"] == "get_logs" && c["pregathered"] == false)
        .unwrap();
    assert_eq!(own["arguments"]["pod"], "nope-pod");
    assert!(own["error"].as_str().unwrap().contains("nope-pod"), "{own}");
    assert!(calls.iter().all(|c| c["duration_ms"].is_u64()));
}

#[tokio::test(flavor = "multi_thread")]
async fn model_errors_end_with_a_clear_message_and_exit_code() {
    let ns = "oneshot-modelerr";
    let kc = cluster_ns(ns, "healthy").await;
    let data = tempfile::tempdir().unwrap();
    // 500 on every attempt (1 + 4 retries by default).
    let llm = MockLlm::start(
        (0..5)
            .map(|_| Reply::error(500, "upstream exploded"))
            .collect(),
    );
    let out = kai(
        &kc,
        ns,
        &llm,
        data.path(),
        &["--no-pregather"],
        "is web healthy?",
    );
    assert_eq!(
        out.status.code(),
        Some(kai::exit::MODEL_ERROR),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("HTTP 500"), "{}", text(&out));

    let llm = MockLlm::start(vec![Reply::error(404, "The model `nope` does not exist")]);
    let out = kai(
        &kc,
        ns,
        &llm,
        data.path(),
        &["--no-pregather"],
        "is web healthy?",
    );
    assert_eq!(
        out.status.code(),
        Some(kai::exit::MODEL_ERROR),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("not known"), "{}", text(&out));

    let llm = MockLlm::start(vec![Reply::Garbage("<html>502 Bad Gateway</html>".into())]);
    let out = kai(
        &kc,
        ns,
        &llm,
        data.path(),
        &["--no-pregather"],
        "is web healthy?",
    );
    assert_eq!(
        out.status.code(),
        Some(kai::exit::MODEL_ERROR),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_steps_is_reported_with_its_exit_code() {
    let ns = "oneshot-steps";
    let kc = cluster_ns(ns, "healthy").await;
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        Reply::tool_call("list_resources", json!({"kind": "pods"}).to_string()),
        Reply::tool_call("list_resources", json!({"kind": "services"}).to_string()),
    ]);
    let out = kai(
        &kc,
        ns,
        &llm,
        data.path(),
        &["--max-steps", "2", "--no-pregather"],
        "what runs here?",
    );
    assert_eq!(
        out.status.code(),
        Some(kai::exit::MAX_STEPS),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("--max-steps 2"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_reads_are_told_to_the_model_with_verb_and_resource() {
    let ns = "oneshot-forbidden";
    let kc = cluster_ns(ns, "healthy").await;
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        Reply::tool_call("list_resources", json!({"kind": "pods"}).to_string()),
        Reply::text("You lack permission."),
    ]);
    let out = kai(
        &kc,
        ns,
        &llm,
        data.path(),
        &[
            "--context",
            kai_testcluster::RESTRICTED_CONTEXT,
            "--no-pregather",
        ],
        "what runs here?",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = tool_results(&llm.requests()[1]);
    assert!(results.contains("forbidden"), "{results}");
    assert!(
        results.contains("list") && results.contains("pods"),
        "{results}"
    );
}
