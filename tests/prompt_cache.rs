//! Cache-friendly requests (issue 14): the tool declarations and the system prompt are
//! a prefix that stays byte-identical across the steps of a turn and across runs, so a
//! provider's prompt cache can reuse it; and the cached tokens a provider reports are
//! shown in the usage line and in `-o json`. The real `kai` binary against the real test
//! cluster and a scripted model that records every request byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

use kai_test_support::{assert_exit, both as text, cache_prefix, kai, tool_call};
use mock_llm::{MockLlm, Reply, Usage};
use serde_json::{json, Value};

const NS: &str = "cache-prefix";
const QUESTION: &str = "why is backend crashlooping?";

/// One `kai` process answering [`QUESTION`] with a one-tool-call script whose second
/// step reports 1,024 cached prompt tokens; returns the output and the raw request
/// bodies.
fn run(kubeconfig: &Path, data: &Path, extra: &[&str]) -> (Output, Vec<String>) {
    let llm = MockLlm::start(vec![
        tool_call("list_events", json!({"types": ["Warning"]})).with_usage(Usage::new(1200, 40)),
        Reply::text("**Cause:** the database rejects the password.")
            .with_usage(Usage::new(1500, 60).with_cached(1024)),
    ]);
    let out = kai!()
        .data(data)
        .cluster(kubeconfig, NS)
        .model(&llm)
        .args(extra)
        .arg(QUESTION)
        .output();
    (out, llm.raw_chat_requests())
}

/// What differs between runs and must therefore stay out of the cached prefix: the
/// namespace, the API server's address (a random port per test cluster), today's date.
fn per_run_facts(kubeconfig: &Path) -> Vec<String> {
    let config: Value =
        serde_yaml::from_str(&std::fs::read_to_string(kubeconfig).unwrap()).unwrap();
    let server = config["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_string();
    let host_port = server
        .split("://")
        .nth(1)
        .unwrap_or(&server)
        .trim_end_matches('/')
        .to_string();
    assert!(host_port.contains(':'), "{server}");
    vec![
        NS.to_string(),
        host_port,
        jiff::Timestamp::now().strftime("%Y-%m-%d").to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tools_and_system_prompt_are_a_stable_prefix_and_cached_tokens_are_reported() {
    let kubeconfig = kai_test_support::scenario("crashloop-app-error", NS).await;
    let data = tempfile::tempdir().unwrap();

    // Run 1, `-o json`.
    let (out1, reqs1) = run(&kubeconfig, data.path(), &["-o", "json"]);
    assert_exit(&out1, 0);
    let doc: Value =
        serde_json::from_slice(&out1.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out1)));
    assert_eq!(doc["usage"]["prompt_tokens"], 2700, "{doc}");
    assert_eq!(doc["usage"]["cached_tokens"], 1024, "{doc}");
    assert_eq!(doc["usage"]["completion_tokens"], 100, "{doc}");

    // Run 2, a separate process, the same question, text output.
    let (out2, reqs2) = run(&kubeconfig, data.path(), &[]);
    assert_exit(&out2, 0);
    let stderr = String::from_utf8_lossy(&out2.stderr);
    assert!(
        stderr.contains("tokens: 2,700 in (1,024 cached) / 100 out"),
        "{stderr}"
    );

    assert_eq!(reqs1.len(), 2, "one tool round trip: two model calls");
    assert_eq!(reqs2.len(), 2);
    let prefixes: Vec<String> = reqs1
        .iter()
        .chain(&reqs2)
        .map(|r| cache_prefix(r))
        .collect();
    let first = &prefixes[0];
    // The prefix is the real thing: kai's tools and its system prompt.
    assert!(
        first.contains("\"name\":\"get_logs\"") && first.contains("system: {"),
        "{first}"
    );
    assert!(first.len() > 2_000, "{} bytes: {first}", first.len());
    // Changes (the declarations a session may leave out) come after every read-only
    // tool, so leaving them out keeps the rest of the prefix as it was.
    let names = kai_test_support::tool_names(&serde_json::from_str(&reqs1[0]).unwrap());
    let first_change = names
        .iter()
        .position(|n| kai_test_support::model::MUTATING_TOOLS.contains(&n.as_str()))
        .unwrap_or(names.len());
    assert!(
        names[first_change..]
            .iter()
            .all(|n| kai_test_support::model::MUTATING_TOOLS.contains(&n.as_str())),
        "{names:?}"
    );
    // Within a run (first and second step of the tool loop) and across runs: the same
    // bytes.
    for (i, p) in prefixes.iter().enumerate() {
        assert!(
            p == first,
            "request {i}'s cached prefix differs from the first one's:\n{}",
            first_difference(first, p)
        );
    }
    // Nothing that changes between runs is in it; it is in the request, after it.
    let whole = &reqs1[0];
    for fact in per_run_facts(&kubeconfig) {
        assert!(
            !first.contains(&fact),
            "the cached prefix holds the per-run fact {fact:?}:\n{first}"
        );
        if fact == NS {
            assert!(
                whole.contains(&fact),
                "the namespace reaches the model after the prefix"
            );
        }
    }
    // The question itself comes after the prefix.
    assert!(!first.contains(QUESTION));
}

/// Where two prefixes part, with some context, for a readable failure.
fn first_difference(a: &str, b: &str) -> String {
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let around = |s: &str| -> String {
        let lo = at.saturating_sub(80);
        s.char_indices()
            .filter(|(i, _)| *i >= lo && *i < at + 80)
            .map(|(_, c)| c)
            .collect()
    };
    format!(
        "at byte {at}:\n  first: …{}…\n  this:  …{}…",
        around(a),
        around(b)
    )
}
