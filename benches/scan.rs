//! `kai scan -A` on a generated cluster of 10,000 pods, 1,000 Deployments and 1,000
//! Services, against the real test cluster, next to `kubectl get pods -A -o json` in the
//! same run: wall time and peak RSS of each (target for kai: ≤ 3 s and ≤ 250 MB).
//!
//!     cargo bench --bench scan          (KAI_BENCH_RUNS=5 repetitions by default)
//!
//! KAI_BENCH_PODS and KAI_BENCH_DEPLOYMENTS change the size (defaults 10,000 and 1,000;
//! one Service per Deployment). The workload: namespaces of 50 Deployments + 50 Services
//! each, replicas summing to the pod count, created concurrently; the controller manager
//! (ReplicaSets, then pods owned by them), the scheduler and the fake kubelet play them
//! on the two default nodes plus enough large fake nodes (1,000 pods each). Two
//! Deployments per namespace are broken (crash loops, OOM kills, image pulls, an
//! unsatisfiable node selector, failing readiness), and one Service per namespace selects
//! nothing, so the scan has findings.
//!
//! Set KAI_TESTCLUSTER_KUBECONFIG to load into (and measure) a running `kai testcluster up`
//! cluster instead of starting one. Benchmarks report; they fail only when `kai scan`
//! exits with a code other than 0 or 3 or prints invalid JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kai_testcluster::kubelet::RULES_ANNOTATION;
use kai_testcluster::{KubeletRule, NodeSpec, Scenario, ScenarioSpec, TestCluster};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const DEFAULT_PODS: usize = 10_000;
const DEFAULT_DEPLOYMENTS: usize = 1_000;
/// Deployments (and Services) per namespace, at most.
const DEPLOYMENTS_PER_NS: usize = 50;
const BROKEN_REPLICAS: usize = 5;
const BENCH_LABEL: &str = "kai.bench/scan";
const CONCURRENCY: usize = 32;
/// Pod capacity of each extra fake node.
const PODS_PER_NODE: usize = 1_000;
const TARGET_SECS: f64 = 3.0;
const TARGET_MB: f64 = 250.0;
/// Generous: on 2 shared cores the controller manager and scheduler (200 QPS each) take
/// minutes for 10,000 pods.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(1800);

/// The size of the generated workload.
#[derive(Clone, Copy, Debug)]
struct Workload {
    namespaces: usize,
    deps_per_ns: usize,
    pods_per_ns: usize,
}

impl Workload {
    /// From KAI_BENCH_PODS and KAI_BENCH_DEPLOYMENTS, rounded to whole namespaces.
    fn from_env() -> Workload {
        let var = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|s| s.replace(['_', ','], "").parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or(default)
        };
        let pods = var("KAI_BENCH_PODS", DEFAULT_PODS);
        let deployments = var("KAI_BENCH_DEPLOYMENTS", DEFAULT_DEPLOYMENTS).max(3);
        let namespaces = deployments.div_ceil(DEPLOYMENTS_PER_NS);
        let deps_per_ns = deployments / namespaces;
        // Two broken Deployments of BROKEN_REPLICAS pods and at least one pod per healthy one.
        let pods_per_ns = (pods / namespaces).max(2 * BROKEN_REPLICAS + deps_per_ns - 2);
        Workload {
            namespaces,
            deps_per_ns,
            pods_per_ns,
        }
    }

    fn deployments(&self) -> usize {
        self.namespaces * self.deps_per_ns
    }

    fn pods(&self) -> usize {
        self.namespaces * self.pods_per_ns
    }

    /// Replicas of Deployment `j` in a namespace: two broken ones with 5 pods each, the
    /// rest healthy, sharing the namespace's remaining pods evenly.
    fn replicas(&self, j: usize) -> usize {
        let healthy = self.deps_per_ns - 2;
        let healthy_pods = self.pods_per_ns - 2 * BROKEN_REPLICAS;
        match j {
            0 | 1 => BROKEN_REPLICAS,
            _ => {
                let base = healthy_pods / healthy;
                let extra = healthy_pods % healthy;
                base + usize::from(j - 2 < extra)
            }
        }
    }
}

/// How a broken Deployment fails.
#[derive(Clone, Copy, Debug)]
enum Broken {
    CrashLoop,
    OomKilled,
    ImagePull,
    NodeSelector,
    Readiness,
}

fn ns_name(i: usize) -> String {
    format!("scan-bench-{i:02}")
}

/// The two broken Deployments of namespace `i` (Deployment 0 and 1).
fn broken_of(i: usize) -> [Broken; 2] {
    let a = if i.is_multiple_of(2) {
        Broken::CrashLoop
    } else {
        Broken::OomKilled
    };
    let b = match i % 3 {
        0 => Broken::ImagePull,
        1 => Broken::NodeSelector,
        _ => Broken::Readiness,
    };
    [a, b]
}

fn dep_name(j: usize) -> String {
    const WORDS: [&str; 10] = [
        "api", "web", "worker", "cache", "auth", "billing", "search", "cart", "mailer", "report",
    ];
    format!("{}-{j:02}", WORDS[j % WORDS.len()])
}

/// A kubelet rule (as in `scenario.yaml`, spelt in JSON) for the pods of Deployment `app`.
fn rule(app: &str, json_text: &str) -> KubeletRule {
    let mut r: KubeletRule = serde_json::from_str(json_text).expect("kubelet rule");
    r.match_labels = BTreeMap::from([("app".to_string(), app.to_string())]);
    r
}

/// Inline kubelet rules for namespace `i` (unmatched pods are played healthy).
fn rules_for(i: usize) -> Vec<KubeletRule> {
    let mut out = Vec::new();
    for (j, b) in broken_of(i).into_iter().enumerate() {
        let app = dep_name(j);
        let r = match b {
            Broken::CrashLoop => rule(
                &app,
                r#"{"containers": {"app": {"state": "crashloop", "restarts": 6, "exit_code": 1,
                    "previous_logs": "starting {pod}\nconnecting to db:5432\nFATAL: password authentication failed for user \"app\"\n"}}}"#,
            ),
            Broken::OomKilled => rule(
                &app,
                r#"{"containers": {"app": {"state": "oomkilled", "restarts": 4,
                    "previous_logs": "loading cache\n"}}}"#,
            ),
            Broken::ImagePull => rule(
                &app,
                r#"{"containers": {"app": {"state": "image-pull-not-found"}}}"#,
            ),
            Broken::Readiness => rule(
                &app,
                r#"{"containers": {"app": {"ready": false}},
                    "events": [{"type": "Warning", "reason": "Unhealthy", "container": "app",
                        "message": "Readiness probe failed: Get \"http://{pod_ip}:8080/healthz\": dial tcp {pod_ip}:8080: connect: connection refused",
                        "count": 12}]}"#,
            ),
            // Never reaches the kubelet.
            Broken::NodeSelector => continue,
        };
        out.push(r);
    }
    out
}

fn deployment(w: &Workload, i: usize, j: usize) -> Deployment {
    let ns = ns_name(i);
    let name = dep_name(j);
    let image = if j < 2 && matches!(broken_of(i)[j], Broken::ImagePull) {
        format!("registry.example.com/shop/{name}:does-not-exist")
    } else {
        format!("registry.example.com/shop/{name}:1.{}.{}", j % 7, i)
    };
    let mut pod_spec = json!({
        "containers": [{
            "name": "app",
            "image": image,
            "ports": [{"containerPort": 8080, "name": "http"}],
            "env": [{"name": "MODE", "value": "production"}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
        }],
    });
    if j < 2 && matches!(broken_of(i)[j], Broken::NodeSelector) {
        pod_spec["nodeSelector"] = json!({"disktype": "nvme-bench"});
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name, BENCH_LABEL: "true"}},
        "spec": {
            "replicas": w.replicas(j),
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": if j.is_multiple_of(3) { "backend" } else { "frontend" }, BENCH_LABEL: "true"}},
                "spec": pod_spec,
            },
        },
    }))
    .expect("deployment")
}

fn service(w: &Workload, i: usize, j: usize) -> Service {
    let name = dep_name(j);
    // The last Service of each namespace selects pods that do not exist.
    let app = if j == w.deps_per_ns - 1 {
        format!("{name}-old")
    } else {
        name.clone()
    };
    // Every Service gets a cluster IP: the harness's service range is a /16.
    let spec = json!({"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080, "name": "http"}]});
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns_name(i), "labels": {BENCH_LABEL: "true"}},
        "spec": spec,
    }))
    .expect("service")
}

fn ignore_conflict<T>(r: Result<T, kube::Error>, what: &str) -> Result<(), String> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(format!("creating {what}: {e}")),
    }
}

/// Large fake nodes (the two default ones take 110 pods each), through the harness.
async fn add_nodes(tc: &TestCluster, w: &Workload) -> Result<(), String> {
    let mut spec = ScenarioSpec::parse("scan-bench-nodes", "target: {kind: Node, name: x}\n")
        .map_err(|e| e.to_string())?;
    spec.description = "extra nodes for the scan benchmark".into();
    // One node's worth of headroom: the scheduler spreads, it does not pack.
    spec.nodes = (1..=w.pods().div_ceil(PODS_PER_NODE) + 1)
        .map(|n| {
            let mut s = NodeSpec::new(format!("kai-bench-node-{n}"));
            s.cpu = "64".into();
            s.memory = "256Gi".into();
            s.pods = PODS_PER_NODE.to_string();
            s
        })
        .collect();
    let scenario = Scenario {
        name: "scan-bench-nodes".into(),
        spec,
        manifests: String::new(),
    };
    tc.setup_custom(&scenario, "scan-bench-nodes")
        .await
        .map_err(|e| format!("adding the benchmark nodes: {e}"))?;
    Ok(())
}

async fn load(tc: &TestCluster, client: &Client, w: &Workload) -> Result<(), String> {
    let t0 = Instant::now();
    add_nodes(tc, w).await?;
    let nss: Api<Namespace> = Api::all(client.clone());
    for i in 0..w.namespaces {
        let rules = serde_json::to_string(&rules_for(i)).map_err(|e| e.to_string())?;
        let ns: Namespace = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns_name(i), "labels": {BENCH_LABEL: "true"},
                         "annotations": {RULES_ANNOTATION: rules}},
        }))
        .map_err(|e| e.to_string())?;
        ignore_conflict(
            nss.create(&PostParams::default(), &ns).await,
            &format!("namespace {}", ns_name(i)),
        )?;
    }
    // Pods are refused until each namespace's default ServiceAccount has its token.
    for i in 0..w.namespaces {
        let ns = ns_name(i);
        if !kai_testcluster::wait_for_default_token(client, &ns, Duration::from_secs(60)).await {
            return Err(format!("no default ServiceAccount token in {ns}"));
        }
    }
    eprintln!(
        "scan bench: nodes and namespaces ready after {:.1?}",
        t0.elapsed()
    );

    // Services first (so Endpoints appear as pods do), then Deployments, 32 in flight.
    let t1 = Instant::now();
    let pairs: Vec<(usize, usize)> = (0..w.namespaces)
        .flat_map(|i| (0..w.deps_per_ns).map(move |j| (i, j)))
        .collect();
    let results: Vec<Result<(), String>> = stream::iter(pairs.clone())
        .map(|(i, j)| {
            let api: Api<Service> = Api::namespaced(client.clone(), &ns_name(i));
            async move {
                ignore_conflict(
                    api.create(&PostParams::default(), &service(w, i, j)).await,
                    &format!("service {}/{}", ns_name(i), dep_name(j)),
                )
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<Result<(), String>>()?;
    let results: Vec<Result<(), String>> = stream::iter(pairs)
        .map(|(i, j)| {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &ns_name(i));
            async move {
                ignore_conflict(
                    api.create(&PostParams::default(), &deployment(w, i, j))
                        .await,
                    &format!("deployment {}/{}", ns_name(i), dep_name(j)),
                )
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<Result<(), String>>()?;
    eprintln!(
        "scan bench: {} Services and {} Deployments created in {:.1?}",
        w.deployments(),
        w.deployments(),
        t1.elapsed()
    );
    settle(client, w).await?;
    eprintln!("scan bench: workload loaded in {:.1?}", t0.elapsed());
    Ok(())
}

/// Waits until every pod exists and is played (or, for the unschedulable ones, stays
/// unbound) and the Deployments' status caught up; twice in a row.
async fn settle(client: &Client, w: &Workload) -> Result<(), String> {
    let total_pods = w.pods();
    let lp = ListParams::default().labels(&format!("{BENCH_LABEL}=true"));
    let pods: Api<Pod> = Api::all(client.clone());
    let deps: Api<Deployment> = Api::all(client.clone());
    let svcs: Api<Service> = Api::all(client.clone());
    let unschedulable: usize = (0..w.namespaces)
        .flat_map(|i| broken_of(i).into_iter().enumerate())
        .filter(|(_, b)| matches!(b, Broken::NodeSelector))
        .map(|(j, _)| w.replicas(j))
        .sum();
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut stable = 0;
    loop {
        let p = pods.list(&lp).await.map_err(|e| e.to_string())?.items;
        let d = deps.list(&lp).await.map_err(|e| e.to_string())?.items;
        let s = svcs.list(&lp).await.map_err(|e| e.to_string())?.items;
        let live: Vec<&Pod> = p
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let bound = live
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count();
        let played = live
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.host_ip.as_ref()).is_some())
            .count();
        let dep_replicas: i32 = d
            .iter()
            .map(|d| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0))
            .sum();
        let done = live.len() == total_pods
            && bound == total_pods - unschedulable
            && played == bound
            && d.len() == w.deployments()
            && s.len() == w.deployments()
            && dep_replicas as usize == total_pods;
        if last_report.elapsed() > Duration::from_secs(10) || done {
            eprintln!(
                "scan bench: {:>5.1}s pods {}/{total_pods}, bound {bound}, played {played}, \
                 deployments {} (status replicas {dep_replicas}), services {}",
                start.elapsed().as_secs_f64(),
                live.len(),
                d.len(),
                s.len()
            );
            last_report = Instant::now();
        }
        if done {
            stable += 1;
            if stable >= 2 {
                return Ok(());
            }
        } else {
            stable = 0;
        }
        if start.elapsed() > SETTLE_TIMEOUT {
            return Err(format!(
                "the workload did not settle in {SETTLE_TIMEOUT:?}: pods {}, bound {bound}, played {played}",
                live.len()
            ));
        }
        // Each round lists every pod: polling faster slows the loading it waits for.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// One run of a child process: wall time, peak RSS of that child alone, exit code.
struct Run {
    wall: Duration,
    max_rss_kb: i64,
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// When set, this binary is not the benchmark but the measuring parent of one command:
/// it runs its arguments as a child, and writes "<wall ns> <peak RSS KiB>" to the file
/// the variable names.
///
/// Why a separate parent: Linux counts the parent's memory in a child's `ru_maxrss`. At
/// exec, the high-water mark of the image being replaced is carried into the process's
/// peak, and a child spawned from this benchmark starts as a copy (or, with vfork, a
/// sharer) of it, after it has listed the whole workload (130-170 MB). Every figure was
/// floored at the benchmark's own size. A parent that is small when it spawns measures
/// the child alone.
const MEASURE_ENV: &str = "KAI_BENCH_MEASURE_REPORT";

/// Run `cmd` (described as `what` in errors) and wait for it with `wait4`:
/// (wall, peak RSS KiB, exit code; minus the signal for a killed child).
fn wait_for(mut cmd: Command, what: &str) -> (Duration, i64, i32) {
    let t = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid out-pointers; `child` is not waited
    // for elsewhere (it is dropped unwaited below, which does not touch the pid).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t.elapsed();
    assert_eq!(r, pid, "wait4({what}): {}", std::io::Error::last_os_error());
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    // Linux reports ru_maxrss in KiB.
    (wall, ru.ru_maxrss, code)
}

/// The measuring parent (see [`MEASURE_ENV`]): the child inherits our stdout and stderr.
fn measure_as_parent(report: &Path) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program, rest) = args.split_first().expect("a program to run");
    let mut cmd = Command::new(program);
    cmd.args(rest).env_remove(MEASURE_ENV);
    let (wall, rss, code) = wait_for(cmd, program);
    std::fs::write(report, format!("{} {rss}", wall.as_nanos())).expect("writing the report");
    // A child killed by a signal exits like a shell reports it: 128 + signal.
    std::process::exit(if code < 0 { 128 - code } else { code });
}

fn measure(program: &str, args: &[&str], dir: &Path) -> Run {
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let report = dir.join("rusage");
    let _ = std::fs::remove_file(&report);
    let out = std::fs::File::create(&out_path).unwrap();
    let err = std::fs::File::create(&err_path).unwrap();
    let me = std::env::current_exe().expect("the benchmark's own path");
    let mut cmd = Command::new(me);
    cmd.arg(program)
        .args(args)
        .env(MEASURE_ENV, &report)
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let (_, _, code) = wait_for(cmd, program);
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no measurement of {program} (exit {code}): {e}"));
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    let (wall_ns, rss_kb) = (it.next().unwrap(), it.next().unwrap());
    Run {
        wall: Duration::from_nanos(wall_ns),
        max_rss_kb: rss_kb as i64,
        code,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

struct Summary {
    median: Duration,
    max: Duration,
    rss_mb: f64,
}

fn summarize(runs: &[Run]) -> Summary {
    let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    walls.sort();
    Summary {
        median: walls[walls.len() / 2],
        max: *walls.last().unwrap(),
        rss_mb: runs.iter().map(|r| r.max_rss_kb).max().unwrap_or(0) as f64 / 1024.0,
    }
}

fn check_scan(run: &Run) -> Result<serde_json::Value, String> {
    if run.code != 0 && run.code != 3 {
        return Err(format!(
            "kai scan -A exited with {} (expected 0 or 3); stderr:\n{}",
            run.code, run.stderr
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).map_err(|e| {
        format!(
            "kai scan -A -o json printed invalid JSON ({e}); first bytes: {:?}",
            String::from_utf8_lossy(&run.stdout[..run.stdout.len().min(300)])
        )
    })?;
    if !v["findings"].is_array() {
        return Err(format!(
            "kai scan -A -o json printed no `findings` array: {:.300}",
            v.to_string()
        ));
    }
    Ok(v)
}

fn bench(kubeconfig: &Path, runs: usize, w: &Workload) -> Result<(), String> {
    let kai = env!("CARGO_BIN_EXE_kai");
    let kc = kubeconfig.display().to_string();
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = scratch.path();
    let kai_args = ["scan", "-A", "-o", "json", "--kubeconfig", kc.as_str()];
    let kubectl_args = [
        "--kubeconfig",
        kc.as_str(),
        "get",
        "pods",
        "-A",
        "-o",
        "json",
    ];

    // What the measuring parent adds on its own: a child's peak is never below it.
    let floor = measure("true", &[], dir);
    // One warm-up each (page cache, apiserver watch caches), not counted.
    check_scan(&measure(kai, &kai_args, dir))?;
    let warm = measure("kubectl", &kubectl_args, dir);
    if warm.code != 0 {
        return Err(format!("kubectl get pods -A failed: {}", warm.stderr));
    }

    let mut kai_runs = Vec::new();
    let mut kubectl_runs = Vec::new();
    let mut last_json = serde_json::Value::Null;
    for _ in 0..runs {
        let r = measure(kai, &kai_args, dir);
        last_json = check_scan(&r)?;
        kai_runs.push(r);
        let r = measure("kubectl", &kubectl_args, dir);
        if r.code != 0 {
            return Err(format!("kubectl get pods -A failed: {}", r.stderr));
        }
        kubectl_runs.push(r);
    }

    let findings = last_json["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut causes: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for f in &findings {
        let e = causes
            .entry(f["cause"].as_str().unwrap_or("?").to_string())
            .or_default();
        e.0 += 1;
        e.1 += f["count"].as_i64().unwrap_or(0);
    }
    let pods_listed = serde_json::from_slice::<serde_json::Value>(&kubectl_runs[0].stdout)
        .ok()
        .and_then(|v| v["items"].as_array().map(Vec::len))
        .unwrap_or(0);

    let k = summarize(&kai_runs);
    let c = summarize(&kubectl_runs);
    let ok = |b: bool| if b { "ok" } else { "OVER" };
    println!();
    println!(
        "kai scan -A on {} pods / {} Deployments / {} Services in {} namespaces, {runs} runs each (+1 warm-up):",
        w.pods(),
        w.deployments(),
        w.deployments(),
        w.namespaces
    );
    println!(
        "{:<32} {:>10} {:>10} {:>12} {:>12}",
        "command", "median", "max", "peak RSS", "stdout"
    );
    for (command, s, runs) in [
        ("kai scan -A -o json", &k, &kai_runs),
        ("kubectl get pods -A -o json", &c, &kubectl_runs),
    ] {
        println!(
            "{command:<32} {:>8.0}ms {:>8.0}ms {:>9.1} MB {:>9.1} KB",
            s.median.as_secs_f64() * 1000.0,
            s.max.as_secs_f64() * 1000.0,
            s.rss_mb,
            runs[0].stdout.len() as f64 / 1024.0
        );
    }
    println!(
        "target for kai scan -A: <= {TARGET_SECS} s ({}: max {:.2} s), <= {TARGET_MB} MB ({}: {:.1} MB)",
        ok(k.max.as_secs_f64() <= TARGET_SECS),
        k.max.as_secs_f64(),
        ok(k.rss_mb <= TARGET_MB),
        k.rss_mb
    );
    println!(
        "(peak RSS of each child alone; the floor, `true` measured the same way, is {:.1} MB)",
        floor.max_rss_kb as f64 / 1024.0
    );
    println!(
        "kai: {} findings (exit {}); kubectl listed {pods_listed} pods",
        findings.len(),
        kai_runs[0].code
    );
    for (cause, (n, count)) in &causes {
        println!("  {cause:<36} {n:>4} findings, {count:>5} objects counted");
    }
    Ok(())
}

fn main() {
    if let Some(report) = std::env::var_os(MEASURE_ENV).filter(|v| !v.is_empty()) {
        measure_as_parent(Path::new(&report));
    }
    kai::init_crypto();
    let runs: usize = std::env::var("KAI_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let w = Workload::from_env();
    eprintln!(
        "scan bench: {} pods, {} Deployments and {} Services in {} namespaces",
        w.pods(),
        w.deployments(),
        w.deployments(),
        w.namespaces
    );
    let t0 = Instant::now();
    let attach: Option<PathBuf> = std::env::var_os(kai_testcluster::KUBECONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let tc = match attach {
        Some(kc) => TestCluster::attach(kc).expect("attaching to the test cluster"),
        None => rt
            .block_on(TestCluster::start(
                kai_testcluster::TestClusterOptions::default(),
            ))
            .expect("starting the test cluster"),
    };
    eprintln!("scan bench: test cluster up in {:.1?}", t0.elapsed());

    // Run in a closure that cannot skip the stop: errors and panics both come back here.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let client = tc.admin_client().await.map_err(|e| e.to_string())?;
            load(&tc, &client, &w).await
        })?;
        bench(tc.kubeconfig_path(), runs, &w)
    }));
    rt.block_on(tc.stop()).ok();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("scan bench failed: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("scan bench panicked (see above)");
            std::process::exit(101);
        }
    }
}
