//! The one-shot question end to end: the real `kai` binary against the real test cluster
//! and a scripted model on loopback that records every request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Output;

use kai_test_support::{assert_exit, both as text, kai, tool_calls, tool_names, tool_results};
use mock_llm::{MockLlm, Reply, Usage};
use serde_json::{json, Value};

const SECRET_VALUE: &str = "kai-planted-db-password-3f9a";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2VjcmV0c2lnbmF0dXJl";
const FATAL: &str = "FATAL: password authentication failed for user \\\"app\\\"";

/// A scenario in its own namespace, and a data directory for kai.
struct Oneshot {
    kubeconfig: PathBuf,
    ns: &'static str,
    data: tempfile::TempDir,
}

impl Oneshot {
    async fn new(scenario: &str, ns: &'static str) -> Oneshot {
        Oneshot {
            kubeconfig: kai_test_support::scenario(scenario, ns).await,
            ns,
            data: tempfile::tempdir().unwrap(),
        }
    }

    /// `kai [extra] prompt` against the namespace and the scripted model.
    fn ask(&self, llm: &MockLlm, extra: &[&str], prompt: &str) -> Output {
        kai!()
            .data(self.data.path())
            .cluster(&self.kubeconfig, self.ns)
            .model(llm)
            .args(extra)
            .arg(prompt)
            .output()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_question_puts_the_cause_in_front_of_the_model_and_no_secret() {
    let w = Oneshot::new("crashloop-app-error", "oneshot-crash").await;
    // The model also asks for the Secret and the pod's logs itself, to prove those paths
    // are redacted too.
    let llm = MockLlm::start(vec![
        tool_calls(vec![
            (
                "get_resource",
                json!({"kind": "Secret", "name": "db-creds"}),
            ),
            ("list_events", json!({"types": ["Warning"]})),
        ])
        .with_usage(Usage::new(1200, 40)),
        Reply::text("**Cause:** the database rejects the password.")
            .with_usage(Usage::new(1500, 60)),
    ]);
    let out = w.ask(&llm, &[], "why is backend crashlooping?");
    assert_exit(&out, 0);
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
            !body.contains(kai_test_support::TEST_API_KEY),
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

/// Issue 14's acceptance: the first request of a crash-loop diagnosis is at most 8 KB as
/// sent, and still carries the decisive log line and no secret.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_request_of_a_crash_loop_diagnosis_fits_8_kb_with_the_cause() {
    let w = Oneshot::new("crashloop-app-error", "oneshot-small").await;
    let llm = MockLlm::start(vec![Reply::text(
        "**Cause:** the database rejects the password.",
    )]);
    let out = w.ask(&llm, &[], "why is backend crashlooping?");
    assert_exit(&out, 0);
    let recorded = llm.recorded();
    let first = recorded
        .iter()
        .find(|r| r.path.ends_with("/chat/completions"))
        .expect("a chat request");
    // The body as sent: the client serialises compact JSON, which is what this is again.
    let body = first.body.to_string();
    eprintln!("first request: {} bytes", body.len());
    assert!(
        body.len() <= 8192,
        "first request is {} bytes:\n{body}",
        body.len()
    );
    let text = tool_results(&first.body);
    assert!(
        text.contains(FATAL.replace("\\\"", "\"").as_str()),
        "the FATAL line is missing:\n{text}"
    );
    assert!(!body.contains(SECRET_VALUE), "the Secret value leaked");
    assert!(!body.contains(TOKEN), "the planted bearer token leaked");
    // Nothing proposes a change here, so the change tool is not declared.
    let tools = tool_names(&first.body);
    assert!(tools.iter().any(|t| t == "get_logs"), "{tools:?}");
    assert!(!tools.iter().any(|t| t == "propose_change"), "{tools:?}");
    // The diagnosis tool set, search_docs included, as sent: within its 3 KB budget.
    let decls = first.body["tools"].to_string().len();
    assert!(
        decls <= 3072,
        "the read-only declarations are {decls} bytes"
    );
}

/// A finding that proposes a change puts the change tool on the table from the first
/// request: the findings' own fix says so (not a line of their text).
#[tokio::test(flavor = "multi_thread")]
async fn a_finding_with_a_proposed_change_offers_the_change_tool() {
    let w = Oneshot::new("oom-killed", "oneshot-oom").await;
    let llm = MockLlm::start(vec![Reply::text("**Cause:** the worker is OOMKilled.")]);
    let out = w.ask(&llm, &[], "why does report-worker keep restarting?");
    assert_exit(&out, 0);
    let reqs = llm.chat_requests();
    let text = tool_results(&reqs[0]);
    assert!(text.contains("oom-killed"), "{text}");
    assert!(text.contains("proposed change:"), "{text}");
    let tools = tool_names(&reqs[0]);
    assert!(tools.iter().any(|t| t == "propose_change"), "{tools:?}");
    // And the top finding's runbook came with it.
    assert!(
        text.contains("Runbook for cause oom-killed"),
        "the runbook section: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_is_one_document_with_tool_calls_and_usage() {
    let w = Oneshot::new("crashloop-app-error", "oneshot-json").await;
    let llm = MockLlm::start(vec![
        Reply::tool_call("get_logs", json!({"pod": "nope-pod"}).to_string()),
        Reply::text("Done.").with_usage(Usage::new(100, 5)),
    ]);
    let out = w.ask(&llm, &["-o", "json"], "why is backend crashlooping?");
    assert_exit(&out, 0);
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
    let w = Oneshot::new("healthy", "oneshot-modelerr").await;
    // Each script, and what the message must say (500 on every attempt: 1 + 4 retries
    // by default).
    let cases: [(Vec<Reply>, Option<&str>); 3] = [
        (
            (0..5)
                .map(|_| Reply::error(500, "upstream exploded"))
                .collect(),
            Some("HTTP 500"),
        ),
        (
            vec![Reply::error(404, "The model `nope` does not exist")],
            Some("not known"),
        ),
        (
            vec![Reply::Garbage("<html>502 Bad Gateway</html>".into())],
            None,
        ),
    ];
    for (script, says) in cases {
        let llm = MockLlm::start(script);
        let out = w.ask(&llm, &["--no-pregather"], "is web healthy?");
        assert_exit(&out, kai::exit::MODEL_ERROR);
        if let Some(says) = says {
            assert!(text(&out).contains(says), "{}", text(&out));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_steps_is_reported_with_its_exit_code() {
    let w = Oneshot::new("healthy", "oneshot-steps").await;
    let llm = MockLlm::start(vec![
        Reply::tool_call("list_resources", json!({"kind": "pods"}).to_string()),
        Reply::tool_call("list_resources", json!({"kind": "services"}).to_string()),
    ]);
    let out = w.ask(
        &llm,
        &["--max-steps", "2", "--no-pregather"],
        "what runs here?",
    );
    assert_exit(&out, kai::exit::MAX_STEPS);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("--max-steps 2"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_reads_are_told_to_the_model_with_verb_and_resource() {
    let w = Oneshot::new("healthy", "oneshot-forbidden").await;
    let llm = MockLlm::start(vec![
        Reply::tool_call("list_resources", json!({"kind": "pods"}).to_string()),
        Reply::text("You lack permission."),
    ]);
    let out = w.ask(
        &llm,
        &[
            "--context",
            kai_testcluster::RESTRICTED_CONTEXT,
            "--no-pregather",
        ],
        "what runs here?",
    );
    assert_exit(&out, 0);
    let results = tool_results(&llm.requests()[1]);
    assert!(results.contains("forbidden"), "{results}");
    assert!(
        results.contains("list") && results.contains("pods"),
        "{results}"
    );
}
