//! The analyzers against the real test cluster: every scenario in `tests/scenarios` is set
//! up in a namespace of its own, and `diagnose(target)` must put the expected cause first,
//! with the scenario's evidence strings somewhere in its findings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use kai::analyze::{self, render_text, to_json, Finding};
use kai::cluster::Cluster;
use kai_testcluster::{Scenario, ScenarioSpec, ScenarioUser};

/// Controllers act on their own clock (a progress deadline, a Job's back-off), so a
/// scenario may need a while after setup before its cause is visible.
const SETTLE: Duration = Duration::from_secs(150);

/// kube and reqwest both bring rustls; the process must pick one provider before any TLS.
fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn namespace_for(name: &str) -> String {
    let mut ns = format!("az-{name}");
    ns.truncate(63);
    ns.trim_end_matches('-').to_string()
}

/// Everything a person reading the findings sees, for the evidence check.
fn text_of(findings: &[Finding]) -> String {
    findings
        .iter()
        .flat_map(|f| std::iter::once(f.summary.clone()).chain(f.evidence.iter().cloned()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn target_of(spec: &ScenarioSpec) -> String {
    format!("{}/{}", spec.target.kind, spec.target.name)
}

/// Ok when the top finding has the expected cause and every evidence string appears.
fn check(spec: &ScenarioSpec, findings: &[Finding]) -> Result<(), String> {
    if spec.expected_cause == "none" {
        return if findings.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "expected no findings, got:\n{}",
                render_text(findings, false)
            ))
        };
    }
    let top = findings
        .first()
        .map(|f| f.cause.as_str())
        .unwrap_or("(nothing)");
    if top != spec.expected_cause {
        return Err(format!(
            "top cause {top}, expected {}:\n{}",
            spec.expected_cause,
            render_text(findings, false)
        ));
    }
    let text = text_of(findings);
    let missing: Vec<&String> = spec
        .evidence
        .iter()
        .filter(|e| !text.contains(e.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "evidence missing: {missing:?}\n{}",
            render_text(findings, false)
        ));
    }
    Ok(())
}

async fn run_scenario(s: Scenario) -> Result<(), String> {
    crypto();
    let cluster = kai_testcluster::shared().map_err(|e| e.to_string())?;
    let ns = namespace_for(&s.name);
    cluster
        .setup_scenario(&s.name, &ns)
        .await
        .map_err(|e| format!("setup failed: {e}"))?;
    let config = match s.spec.user {
        ScenarioUser::Admin => cluster.admin_config().await,
        ScenarioUser::Restricted => cluster.restricted_config().await,
    }
    .map_err(|e| e.to_string())?;
    let client = Cluster::from_config(config, &ns, "test").map_err(|e| e.to_string())?;
    let target = target_of(&s.spec);
    let start = Instant::now();
    loop {
        let result = analyze::diagnose(&client, &ns, Some(&target)).await;
        let verdict = match &result {
            Ok(findings) => {
                // Secret values never reach a finding, whatever the scenario.
                let json = to_json(findings).to_string();
                if json.contains("s3cr3t") {
                    return Err(format!("a Secret value leaked into the findings: {json}"));
                }
                check(&s.spec, findings)
            }
            Err(e) => Err(format!("diagnose failed: {e}")),
        };
        match verdict {
            Ok(()) => break,
            Err(e) if start.elapsed() > SETTLE => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_secs(3)).await,
        }
    }
    if s.spec.expected_cause == "none" {
        let all = analyze::scan(&client, Some(&ns))
            .await
            .map_err(|e| e.to_string())?;
        if !all.is_empty() {
            return Err(format!(
                "scan of a healthy namespace found:\n{}",
                render_text(&all, false)
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_diagnoses_to_its_expected_cause() {
    let scenarios = kai_testcluster::scenarios();
    assert!(
        scenarios.len() >= 20,
        "expected the full scenario suite, found {}",
        scenarios.len()
    );
    let results: Vec<(String, Result<(), String>)> = stream::iter(scenarios)
        .map(|s| async move {
            let name = s.name.clone();
            (name, run_scenario(s).await)
        })
        .buffer_unordered(6)
        .collect()
        .await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("--- {n}: {e}")))
        .collect();
    let passed = results.len() - failures.len();
    eprintln!("scenarios: {passed} passed, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const CRASHLOOP_SCENARIO: &str = r#"
description: three replicas of one Deployment crash on start-up
question: what is wrong in this namespace?
target: {kind: Deployment, name: backend}
expected_cause: crash-loop-app-error
kubelet:
  - match: {app: backend}
    containers:
      app:
        state: crashloop
        restarts: 5
        previous_logs: |
          backend starting
          FATAL: could not connect to redis at cache:6379: connection refused
"#;

const CRASHLOOP_MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
spec:
  replicas: 3
  selector:
    matchLabels: {app: backend}
  template:
    metadata:
      labels: {app: backend}
    spec:
      containers:
        - name: app
          image: registry.example.com/shop/backend:1.0.0
          ports:
            - {containerPort: 8080, protocol: TCP}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_reports_one_finding_for_a_crashing_deployment() {
    crypto();
    let cluster = kai_testcluster::shared().unwrap();
    let scenario = Scenario {
        name: "az-scan-crashloop".into(),
        spec: ScenarioSpec::parse("az-scan-crashloop", CRASHLOOP_SCENARIO).unwrap(),
        manifests: CRASHLOOP_MANIFESTS.into(),
    };
    let ns = "az-scan-crashloop";
    cluster.setup_custom(&scenario, ns).await.unwrap();
    let client = Cluster::from_config(cluster.admin_config().await.unwrap(), ns, "test").unwrap();
    let findings = analyze::scan(&client, Some(ns)).await.unwrap();
    let text = render_text(&findings, false);
    assert_eq!(findings.len(), 1, "{text}");
    let f = &findings[0];
    assert_eq!(f.cause.as_str(), "crash-loop-app-error", "{text}");
    assert_eq!(f.object.kind, "Deployment");
    assert_eq!(f.object.name, "backend");
    assert_eq!(f.count, 3, "{text}");
    assert!(text.contains("FATAL: could not connect to redis"), "{text}");

    // A target that does not exist names the near miss.
    let err = analyze::diagnose(&client, ns, Some("deploy/backnd"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("deployment/backend"), "{err}");
}
