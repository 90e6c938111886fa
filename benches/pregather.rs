//! Pre-gathering on a crash loop with a ~3,000-line previous log, against the real test
//! cluster: how much context kai sends versus the raw kubectl text for the same pod, and
//! how long `pregather` takes.
//!
//!     cargo bench --bench pregather            (KAI_BENCH_RUNS=30 by default)
//!
//! Set KAI_TESTCLUSTER_KUBECONFIG to reuse a running `kai testcluster up` cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kai::cluster::Cluster;
use kai::gather::pregather;
use kai::tools::ToolEnv;

const QUESTION: &str = "why is backend crashlooping?";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2VjcmV0c2lnbmF0dXJl";
const FATAL: &str = "FATAL: password authentication failed for user \"app\"";

/// A noisy start-up log: request lines with varying words, pool warnings, cache debug
/// lines, a planted bearer token, then the errors and the FATAL line near the end.
fn long_log(lines: usize) -> String {
    let paths = [
        "items", "orders", "users", "carts", "prices", "stock", "search",
    ];
    let users = ["alice", "bob", "carol", "dave", "erin"];
    let mut out = String::new();
    out.push_str("2024-05-01 10:00:00.001 INFO  starting backend v1.4.2 (pod {pod})\n");
    out.push_str("2024-05-01 10:00:00.015 INFO  loading configuration from /etc/backend\n");
    for i in 0..lines.saturating_sub(12) {
        let t = format!(
            "2024-05-01 10:{:02}:{:02}.{:03}",
            i / 3600 % 60,
            i / 60 % 60,
            i % 1000
        );
        match i % 11 {
            3 => out.push_str(&format!(
                "{t} WARN  db pool: 0/10 free, waiting (try {i})\n"
            )),
            7 => out.push_str(&format!(
                "{t} DEBUG cache refresh key={}:{i}\n",
                paths[i % 7]
            )),
            _ => out.push_str(&format!(
                "{t} INFO  GET /api/{}/{i} user={} status=200 {}ms\n",
                paths[i % 7],
                users[i % 5],
                i % 97
            )),
        }
        if i == lines / 2 {
            out.push_str(&format!(
                "{t} DEBUG upstream headers: Authorization: Bearer {TOKEN}\n"
            ));
        }
    }
    out.push_str("2024-05-01 11:00:00.031 INFO  connecting to postgres at db:5432 as \"app\"\n");
    out.push_str(
        "2024-05-01 11:00:00.245 ERROR pq: password authentication failed for user \"app\"\n",
    );
    out.push_str(&format!("2024-05-01 11:00:00.246 {FATAL}\n"));
    for i in 0..8 {
        out.push_str(&format!(
            "2024-05-01 11:00:00.25{i} INFO  closing worker {i}\n"
        ));
    }
    out.push_str("2024-05-01 11:00:00.260 INFO  shutting down (exit code 1)\n");
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn kubectl(kubeconfig: &std::path::Path, ns: &str, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", ns])
        .args(args)
        .output()
        .expect("kubectl on PATH");
    if !out.status.success() {
        eprintln!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runs: usize = std::env::var("KAI_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let lines: usize = std::env::var("KAI_BENCH_LOG_LINES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tc = kai_testcluster::shared().expect("test cluster");

    let mut scenario = kai_testcluster::scenario("crashloop-app-error").unwrap();
    let log = long_log(lines);
    for rule in scenario.spec.kubelet.iter_mut() {
        if let Some(c) = rule.containers.get_mut("app") {
            c.previous_logs = Some(log.clone());
        }
    }
    let ns = format!("bench-crash-{}", std::process::id());
    let handle = rt
        .block_on(tc.setup_custom(&scenario, &ns))
        .unwrap_or_else(|e| panic!("setting up the long-log crash loop ({lines} lines): {e}"));
    let pod = handle
        .pods
        .iter()
        .find(|p| p.starts_with("backend-"))
        .cloned()
        .expect("backend pod");

    let ctx = rt.block_on(async {
        let config = tc.admin_config().await.unwrap();
        ToolEnv {
            cluster: Some(Arc::new(
                Cluster::from_config(config, &ns, "bench").unwrap(),
            )),
            budget_tokens: 2000,
            auto_approve: false,
            data_dir: std::env::temp_dir(),
            reads: Default::default(),
        }
    });

    // (a) size: pre-gathered context vs raw kubectl text for the same pod.
    let gathered = rt.block_on(pregather(&ctx, QUESTION, None));
    let text: String = gathered
        .iter()
        .map(|g| format!("{} {}\n{}\n", g.tool, g.args, g.output))
        .collect();
    let kc = tc.kubeconfig_path();
    let describe = kubectl(kc, &ns, &["describe", "pod", &pod]);
    let logs = kubectl(kc, &ns, &["logs", "--previous", &pod]);
    let events = kubectl(kc, &ns, &["get", "events"]);
    let raw = describe.len() + logs.len() + events.len();

    // (b) wall time: warm (one session's client) and cold (a new client each run, as for
    // a fresh `kai` process).
    let mut warm = Vec::with_capacity(runs);
    let mut cold = Vec::with_capacity(runs);
    rt.block_on(async {
        for _ in 0..runs {
            let t = Instant::now();
            let g = pregather(&ctx, QUESTION, None).await;
            warm.push(t.elapsed());
            assert!(!g.is_empty());
        }
        for _ in 0..runs.min(10) {
            let config = tc.admin_config().await.unwrap();
            let fresh = ToolEnv {
                cluster: Some(Arc::new(
                    Cluster::from_config(config, &ns, "bench").unwrap(),
                )),
                ..ctx.clone()
            };
            let t = Instant::now();
            let _ = pregather(&fresh, QUESTION, None).await;
            cold.push(t.elapsed());
        }
    });
    warm.sort();
    cold.sort();

    println!(
        "\npregather on a crash loop ({} previous-log lines, {runs} runs)\n",
        log.lines().count()
    );
    println!("| what | bytes | ~tokens |");
    println!("| --- | ---: | ---: |");
    println!(
        "| kubectl describe pod | {} | {} |",
        describe.len(),
        describe.len() / 4
    );
    println!(
        "| kubectl logs --previous | {} | {} |",
        logs.len(),
        logs.len() / 4
    );
    println!(
        "| kubectl get events | {} | {} |",
        events.len(),
        events.len() / 4
    );
    println!("| **raw kubectl total** | {raw} | {} |", raw / 4);
    for g in &gathered {
        println!(
            "| kai {} {} | {} | {} |",
            g.tool,
            g.args
                .get("kind")
                .or(g.args.get("target"))
                .or(g.args.get("pod"))
                .map(|v| v.to_string())
                .unwrap_or_default()
                + if g.args.get("previous") == Some(&serde_json::Value::Bool(true)) {
                    " --previous"
                } else {
                    ""
                },
            g.output.len(),
            g.output.len() / 4
        );
    }
    println!(
        "| **kai pre-gathered total** | {} | {} ({:.1}% of raw) |",
        text.len(),
        text.len() / 4,
        100.0 * text.len() as f64 / raw.max(1) as f64
    );
    println!();
    println!("| pregather wall time | p50 | p95 | max |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| warm client ({runs} runs) | {:.1} ms | {:.1} ms | {:.1} ms |",
        percentile(&warm, 0.5).as_secs_f64() * 1e3,
        percentile(&warm, 0.95).as_secs_f64() * 1e3,
        warm.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "| new client ({} runs) | {:.1} ms | {:.1} ms | {:.1} ms |",
        cold.len(),
        percentile(&cold, 0.5).as_secs_f64() * 1e3,
        percentile(&cold, 0.95).as_secs_f64() * 1e3,
        cold.last().unwrap().as_secs_f64() * 1e3
    );
    println!();
    println!(
        "FATAL line in the pre-gathered context: {}",
        text.contains(FATAL)
    );
    println!("planted bearer token in it: {}", text.contains("eyJzdWIi"));
    println!(
        "planted bearer token in the raw kubectl text: {}",
        logs.contains("eyJzdWIi")
    );
    let _ = rt.block_on(tc.teardown_scenario(&handle));
}
