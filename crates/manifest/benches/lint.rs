//! Lint the whole manifest corpus (tests/manifests: Deployments, StatefulSets, DaemonSets,
//! Jobs, CronJobs, Ingresses, Services, multi-document files) in process, as `kai lint`
//! does: read once, then parse + schema + rules over every file as one bundle, repeated.
//! Target: the whole corpus in ≤ 50 ms.
//!
//!     cargo bench -p kai-manifest --bench lint        (KAI_BENCH_RUNS=200 by default)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

const TARGET_MS: f64 = 50.0;

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/manifests");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(p).unwrap(),
            )
        })
        .collect();
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let runs: usize = std::env::var("KAI_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let opts = kai_manifest::Options::default();
    // One warm-up run, also the figures printed.
    let report = kai_manifest::check_files(&files, &opts);
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let r = kai_manifest::check_files(&files, &opts);
        times.push(t.elapsed());
        assert_eq!(r.findings.len(), report.findings.len());
    }
    times.sort();
    // Where the time goes: parsing alone, and the schema pass alone.
    let t = Instant::now();
    let mut docs = Vec::new();
    for _ in 0..runs {
        docs.clear();
        for (n, text) in &files {
            docs.extend(kai_manifest::parse(n, text).unwrap_or_default());
        }
    }
    let parse_ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    let t = Instant::now();
    for _ in 0..runs {
        for d in &docs {
            std::hint::black_box(kai_manifest::schema::check(&d.value));
        }
    }
    let schema_ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = ms(times[times.len() / 2]);
    let p95 = ms(times[(times.len() * 95 / 100).min(times.len() - 1)]);
    let max = ms(*times.last().unwrap());
    println!(
        "lint corpus: {} files, {} objects, {} KiB; {} findings ({} errors, {} warnings, {} info)",
        files.len(),
        report.objects,
        bytes / 1024,
        report.findings.len(),
        report.count(kai_manifest::Severity::Error),
        report.count(kai_manifest::Severity::Warning),
        report.count(kai_manifest::Severity::Info),
    );
    println!(
        "{runs} runs: p50 {p50:.2} ms, p95 {p95:.2} ms, max {max:.2} ms (target ≤ {TARGET_MS} ms): {}",
        if p50 <= TARGET_MS { "ok" } else { "OVER TARGET" }
    );
    println!("of which parsing {parse_ms:.2} ms, schema pass {schema_ms:.2} ms (means)");
}
