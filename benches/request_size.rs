//! The first request kai sends the model, for every scenario in `tests/scenarios`, against
//! the real test cluster and the scripted model: its bytes, its estimated tokens (kai's
//! one estimator), whether every `evidence` string of the scenario is in it, and the raw
//! kubectl text for the same objects.
//!
//!     cargo bench --bench request_size
//!
//! KAI_SCENARIOS=a,b runs only some; KAI_BENCH_DUMP=dir writes each first request there.
//! `--profile dev` reuses the test build (sizes do not depend on the profile).
//!
//! Each scenario is set up in a namespace of its own and given time to settle (until the
//! analyzers see its expected cause and evidence, as tests/analyze_scenarios.rs waits), then the real
//! `kai` binary answers the scenario's `question` once against a scripted model that
//! records the request. "Bytes" is the request body as the model server received it
//! (re-serialised compact JSON, the same length the client sent).
//!
//! "raw kubectl" is what a person (or a peer agent) would read for the same objects with
//! the kubectl on PATH: `describe` of the scenario's target, `describe pods`, `logs
//! --all-containers` and `logs --previous --all-containers` of every pod in the
//! scenario's namespace, and `get events`. Nothing of it is sent anywhere; it is counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use kai::analyze;
use kai::cluster::Cluster;
use kai_testcluster::{Scenario, ScenarioUser};
use mock_llm::{MockLlm, Reply};
use serde_json::Value;

/// Controllers act on their own clock; as in tests/analyze_scenarios.rs.
const SETTLE: Duration = Duration::from_secs(150);
/// The targets of issue 14.
const MEDIAN_TARGET: usize = 8 * 1024;
const MAX_TARGET: usize = 12 * 1024;

struct Row {
    name: String,
    bytes: usize,
    tokens: usize,
    evidence: usize,
    evidence_found: usize,
    missing: Vec<String>,
    raw: usize,
}

fn namespace_for(name: &str) -> String {
    let mut ns = format!("rq-{name}");
    ns.truncate(63);
    ns.trim_end_matches('-').to_string()
}

fn kubectl(kubeconfig: &Path, ns: &str, args: &[&str]) -> String {
    match Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", ns])
        .args(args)
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(_) => String::new(),
    }
}

fn raw_kubectl(kubeconfig: &Path, ns: &str, target: &str) -> usize {
    let mut total = kubectl(kubeconfig, ns, &["describe", target]).len();
    total += kubectl(kubeconfig, ns, &["describe", "pods"]).len();
    let pods = kubectl(kubeconfig, ns, &["get", "pods", "-o", "name"]);
    for pod in pods.lines().filter(|l| !l.is_empty()) {
        total += kubectl(kubeconfig, ns, &["logs", "--all-containers", pod]).len();
        total += kubectl(
            kubeconfig,
            ns,
            &["logs", "--previous", "--all-containers", pod],
        )
        .len();
    }
    total + kubectl(kubeconfig, ns, &["get", "events"]).len()
}

/// Everything the model reads in a request: each message's content and the tool calls'
/// arguments, decoded (the evidence strings are plain text, the body is JSON-escaped).
fn readable(body: &Value) -> String {
    let mut out = String::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        if let Some(c) = m["content"].as_str() {
            out.push_str(c);
            out.push('\n');
        }
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            out.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

async fn settle(s: &Scenario, ns: &str) {
    let tc = kai_testcluster::shared().unwrap();
    let config = match s.spec.user {
        ScenarioUser::Admin => tc.admin_config().await,
        ScenarioUser::Restricted => tc.restricted_config().await,
    }
    .unwrap();
    let client = Cluster::from_config(config, ns, "bench").unwrap();
    let target = format!("{}/{}", s.spec.target.kind, s.spec.target.name);
    let start = Instant::now();
    loop {
        let ok = match analyze::diagnose(&client, ns, Some(&target)).await {
            Ok(f) if s.spec.expected_cause == "none" => f.is_empty(),
            // The expected cause on top, and every evidence string in the findings
            // (as tests/analyze_scenarios.rs checks): controllers such as the HPA's
            // report the cause before their status has caught up.
            Ok(f) => {
                let seen: String = f
                    .iter()
                    .flat_map(|f| std::iter::once(f.summary.clone()).chain(f.evidence.clone()))
                    .collect::<Vec<_>>()
                    .join("\n");
                f.first()
                    .is_some_and(|f| f.cause.as_str() == s.spec.expected_cause)
                    && s.spec.evidence.iter().all(|e| seen.contains(e.as_str()))
            }
            Err(_) => false,
        };
        if ok || start.elapsed() > SETTLE {
            if !ok {
                eprintln!("{}: not settled after {SETTLE:?}; measuring anyway", s.name);
            }
            return;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

async fn measure(s: Scenario) -> Row {
    let tc = kai_testcluster::shared().unwrap();
    let ns = namespace_for(&s.name);
    tc.setup_scenario(&s.name, &ns)
        .await
        .unwrap_or_else(|e| panic!("{}: setup failed: {e}", s.name));
    settle(&s, &ns).await;
    let kubeconfig = tc.kubeconfig_path().to_path_buf();
    let question = s.spec.question.clone();
    let restricted = s.spec.user == ScenarioUser::Restricted;
    let (ns2, kc2) = (ns.clone(), kubeconfig.clone());
    let body = tokio::task::spawn_blocking(move || {
        let llm = MockLlm::start(vec![Reply::text("ok")]);
        let data = tempfile::tempdir().unwrap();
        let mut cmd = kai_test_support::kai!()
            .data(data.path())
            .cluster(&kc2, &ns2)
            .model(&llm);
        if restricted {
            cmd = cmd.args(["--context", kai_testcluster::RESTRICTED_CONTEXT]);
        }
        let out = cmd.arg(&question).output();
        let reqs = llm.chat_requests();
        reqs.into_iter().next().unwrap_or_else(|| {
            panic!(
                "kai sent no request: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    })
    .await
    .unwrap();
    let sent = body.to_string();
    let text = readable(&body);
    // KAI_BENCH_DUMP=dir keeps each first request (and what the model reads of it).
    if let Ok(dir) = std::env::var("KAI_BENCH_DUMP") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(format!("{dir}/{}.json", s.name), &sent);
        let _ = std::fs::write(format!("{dir}/{}.txt", s.name), &text);
    }
    let missing: Vec<String> = s
        .spec
        .evidence
        .iter()
        .filter(|e| !text.contains(e.as_str()))
        .cloned()
        .collect();
    let target = format!(
        "{}/{}",
        s.spec.target.kind.to_ascii_lowercase(),
        s.spec.target.name
    );
    let raw = tokio::task::spawn_blocking(move || raw_kubectl(&kubeconfig, &ns, &target))
        .await
        .unwrap();
    Row {
        name: s.name.clone(),
        bytes: sent.len(),
        tokens: kai_text::budget::tokens_for_bytes(sent.len()),
        evidence: s.spec.evidence.len(),
        evidence_found: s.spec.evidence.len() - missing.len(),
        missing,
        raw,
    }
}

fn main() {
    kai_test_support::crypto();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut scenarios = kai_testcluster::scenarios();
    if let Ok(only) = std::env::var("KAI_SCENARIOS") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        scenarios.retain(|s| only.contains(&s.name.as_str()));
    }
    let _ = kai_testcluster::shared().expect("test cluster");
    let mut rows: Vec<Row> = rt.block_on(
        stream::iter(scenarios)
            .map(measure)
            .buffer_unordered(6)
            .collect(),
    );
    rows.sort_by(|a, b| a.name.cmp(&b.name));

    println!("\nfirst request to the model, per scenario\n");
    println!("| scenario | request bytes | ~tokens | evidence | raw kubectl bytes |");
    println!("| --- | ---: | ---: | :---: | ---: |");
    for r in &rows {
        println!(
            "| {} | {} | {} | {}/{}{} | {} |",
            r.name,
            r.bytes,
            r.tokens,
            r.evidence_found,
            r.evidence,
            if r.missing.is_empty() {
                String::new()
            } else {
                format!(" (missing {:?})", r.missing)
            },
            r.raw
        );
    }
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.bytes).collect();
    sizes.sort();
    let median = if sizes.is_empty() {
        0
    } else if sizes.len() % 2 == 1 {
        sizes[sizes.len() / 2]
    } else {
        (sizes[sizes.len() / 2 - 1] + sizes[sizes.len() / 2]) / 2
    };
    let max = sizes.last().copied().unwrap_or(0);
    let complete = rows.iter().filter(|r| r.missing.is_empty()).count();
    let raw_median = {
        let mut raw: Vec<usize> = rows.iter().map(|r| r.raw).collect();
        raw.sort();
        raw.get(raw.len() / 2).copied().unwrap_or(0)
    };
    println!();
    println!(
        "scenarios: {}; median {median} B (target ≤ {MEDIAN_TARGET}), max {max} B (target ≤ {MAX_TARGET}), \
         all evidence present in {complete}/{}; raw kubectl median {raw_median} B",
        rows.len(),
        rows.len()
    );
    println!(
        "targets met: median {}, max {}, evidence {}",
        median <= MEDIAN_TARGET,
        max <= MAX_TARGET,
        complete == rows.len()
    );
}
