//! `kai demo`, the README's first command: a fresh user with no cluster and no API key
//! gets a local cluster, a broken workload, an offline diagnosis and next steps; with a
//! model configured, the agent runs too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use kai_test_support::{assert_exit, both as text, kai};
use mock_llm::{MockLlm, Reply};

/// `kai demo args` as a fresh user: empty home, no key.
fn demo(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    kai!()
        .data(home.path())
        // The cluster binaries are built once and cached under the real cache directory.
        .env("KAI_CACHE_DIR", kai_testcluster::cache_dir())
        .arg("demo")
        .args(args)
        .output()
}

#[test]
fn demo_without_a_model_diagnoses_offline_and_says_what_next() {
    let o = demo(&[]);
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("crash-loop-app-error"), "{}", text(&o));
    assert!(
        out.contains("FATAL: password authentication failed"),
        "{}",
        text(&o)
    );
    assert!(out.contains("No model configured"), "{}", text(&o));
    assert!(out.contains("against your own cluster"), "{}", text(&o));
    assert!(
        !text(&o).contains("kai-planted-db-password"),
        "no Secret value shown"
    );
}

#[test]
fn demo_with_a_model_runs_the_agent_on_the_scenario_question() {
    let llm = MockLlm::start(vec![Reply::text(
        "**Cause:** the image tag does not exist in the registry.",
    )]);
    let o = demo(&[
        "image-tag-not-found",
        "--base-url",
        &llm.base_url(),
        "--model",
        "mock",
    ]);
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("image-pull-not-found"),
        "offline findings first: {out}"
    );
    assert!(out.contains("the image tag does not exist"), "{}", text(&o));
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 1);
    let body = reqs[0].to_string();
    assert!(
        body.contains("ImagePullBackOff") || body.contains("not found"),
        "{body}"
    );
}

#[test]
fn unknown_scenario_is_a_usage_error_listing_how_to_see_them() {
    let o = demo(&["no-such-scenario"]);
    assert_exit(&o, kai::exit::USAGE);
    assert!(text(&o).contains("kai demo --list"), "{}", text(&o));
    let o = demo(&["--list"]);
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    for s in ["crashloop-app-error", "oom-killed", "healthy"] {
        assert!(out.contains(s), "{s} missing from --list");
    }
}
