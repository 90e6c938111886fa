//! Real-cluster tests: every scenario directory is set up on the shared cluster and read
//! back through the API as kubectl would; RBAC of the restricted user; clean teardown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod, Secret};
use kai_testcluster::{ContainerSpec, ContainerState, ScenarioHandle, TestCluster};
use kube::api::{ListParams, LogParams};
use kube::Api;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kai_testcluster=info".into()),
        )
        .try_init();
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The last non-empty line of a log text without placeholders (those are substituted).
fn probe_line(text: &str) -> Option<&str> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains('{'))
}

fn check_container(
    ctx: &str,
    spec: &ContainerSpec,
    st: &ContainerStatus,
    init: bool,
    errs: &mut Vec<String>,
) {
    let state = st.state.clone().unwrap_or_default();
    let last = st.last_state.as_ref().and_then(|s| s.terminated.clone());
    let waiting = state.waiting.as_ref().and_then(|w| w.reason.clone());
    let mut fail = |m: String| errs.push(format!("{ctx}: {m}"));
    match spec.state {
        None if init => {
            if state.terminated.as_ref().map(|t| t.exit_code) != Some(0) {
                fail(format!("init container should have completed: {state:?}"));
            }
        }
        None | Some(ContainerState::Running) => {
            if state.running.is_none() {
                fail(format!("should be running: {state:?}"));
            }
            if st.restart_count != spec.restarts.unwrap_or(0) {
                fail(format!(
                    "restartCount {} != {:?}",
                    st.restart_count, spec.restarts
                ));
            }
        }
        Some(ContainerState::Crashloop) | Some(ContainerState::Oomkilled) => {
            if waiting.as_deref() != Some("CrashLoopBackOff") {
                fail(format!("should wait in CrashLoopBackOff: {state:?}"));
            }
            let oom = spec.state == Some(ContainerState::Oomkilled);
            let want_code = if oom {
                137
            } else {
                spec.exit_code.unwrap_or(1)
            };
            match &last {
                Some(t) if t.exit_code == want_code => {
                    if oom && t.reason.as_deref() != Some("OOMKilled") {
                        fail(format!("last termination reason {:?}", t.reason));
                    }
                }
                other => fail(format!(
                    "lastState.terminated {other:?}, want exit {want_code}"
                )),
            }
            if st.restart_count != spec.restarts.unwrap_or(5) {
                fail(format!(
                    "restartCount {} != {:?}",
                    st.restart_count, spec.restarts
                ));
            }
            if st.ready {
                fail("crash-looping container is ready".into());
            }
        }
        Some(ContainerState::Terminated) => match &state.terminated {
            Some(t) if t.exit_code == spec.exit_code.unwrap_or(1) => {}
            other => fail(format!(
                "terminated {other:?}, want exit {:?}",
                spec.exit_code
            )),
        },
        Some(ContainerState::ImagePullNotFound) | Some(ContainerState::ImagePullUnauthorized) => {
            let want = spec.reason.as_deref().unwrap_or("ImagePullBackOff");
            if waiting.as_deref() != Some(want) {
                fail(format!("should wait in {want}: {state:?}"));
            }
        }
        Some(ContainerState::CreateConfigError) => {
            if waiting.as_deref() != Some("CreateContainerConfigError") {
                fail(format!(
                    "should wait in CreateContainerConfigError: {state:?}"
                ));
            }
            if let Some(m) = spec.message.as_ref().filter(|m| !m.contains('{')) {
                let have = state.waiting.as_ref().and_then(|w| w.message.clone());
                if have.as_deref() != Some(m.as_str()) {
                    fail(format!("waiting message {have:?} != {m:?}"));
                }
            }
        }
        Some(ContainerState::Waiting) => {
            let want = spec.reason.as_deref().unwrap_or("ContainerCreating");
            if waiting.as_deref() != Some(want) {
                fail(format!("should wait in {want}: {state:?}"));
            }
        }
    }
    if let Some(r) = spec.ready {
        if st.ready != r {
            fail(format!("ready {} != {r}", st.ready));
        }
    }
}

/// The event reason/message a state must have produced (besides the others).
fn expected_event(spec: &ContainerSpec) -> Option<(&'static str, Option<String>)> {
    match spec.state {
        Some(ContainerState::Crashloop) | Some(ContainerState::Oomkilled) => Some((
            "BackOff",
            Some("Back-off restarting failed container".to_string()),
        )),
        Some(ContainerState::ImagePullNotFound) | Some(ContainerState::ImagePullUnauthorized) => {
            Some(("Failed", Some("Error: ErrImagePull".into())))
        }
        Some(ContainerState::CreateConfigError) => Some(("Failed", None)),
        Some(ContainerState::Terminated) | Some(ContainerState::Running) => Some(("Started", None)),
        _ => None,
    }
}

async fn verify(c: &TestCluster, h: &ScenarioHandle) -> Vec<String> {
    let mut errs = Vec::new();
    let client = match c.admin_client().await {
        Ok(cl) => cl,
        Err(e) => return vec![format!("{}: client: {e}", h.name)],
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &h.namespace);
    let events: Api<Event> = Api::namespaced(client.clone(), &h.namespace);
    let pod_list = match pods.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => return vec![format!("{}: listing pods: {e}", h.name)],
    };
    let all_events = events
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    if pod_list.is_empty() && !h.spec.kubelet.is_empty() {
        errs.push(format!("{}: no pods although kubelet rules exist", h.name));
    }
    let mut played_uids = Vec::new();
    for p in &pod_list {
        let pname = p.metadata.name.clone().unwrap_or_default();
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let pod_events: Vec<&Event> = all_events
            .iter()
            .filter(|e| e.involved_object.uid.as_deref() == Some(uid.as_str()))
            .collect();
        let ctx = format!("{}/{pname}", h.name);
        let bound = p.spec.as_ref().and_then(|s| s.node_name.clone());
        if bound.is_none() {
            if !pod_events
                .iter()
                .any(|e| e.reason.as_deref() == Some("FailedScheduling"))
            {
                errs.push(format!("{ctx}: Pending pod without FailedScheduling"));
            }
            continue;
        }
        let labels: BTreeMap<String, String> = p.metadata.labels.clone().unwrap_or_default();
        let Some(rule) = h.spec.rule_for(&labels) else {
            continue;
        };
        played_uids.push(uid.clone());
        let status = p.status.clone().unwrap_or_default();
        if let Some(phase) = &rule.phase {
            if status.phase.as_ref() != Some(phase) {
                errs.push(format!("{ctx}: phase {:?} != {phase}", status.phase));
            }
        }
        for (init, specs, statuses) in [
            (false, &rule.containers, status.container_statuses.clone()),
            (
                true,
                &rule.init_containers,
                status.init_container_statuses.clone(),
            ),
        ] {
            let statuses = statuses.unwrap_or_default();
            for (cname, spec) in specs {
                let cctx = format!("{ctx}/{cname}");
                let Some(st) = statuses.iter().find(|s| &s.name == cname) else {
                    errs.push(format!("{cctx}: no container status"));
                    continue;
                };
                check_container(&cctx, spec, st, init, &mut errs);
                let field = if init {
                    format!("spec.initContainers{{{cname}}}")
                } else {
                    format!("spec.containers{{{cname}}}")
                };
                if let Some((reason, msg)) = expected_event(spec) {
                    let found = pod_events.iter().any(|e| {
                        e.reason.as_deref() == Some(reason)
                            && e.involved_object.field_path.as_deref() == Some(field.as_str())
                            && e.source.as_ref().and_then(|s| s.component.as_deref())
                                == Some("kubelet")
                            && msg.as_ref().is_none_or(|m| e.message.as_ref() == Some(m))
                    });
                    if !found {
                        errs.push(format!("{cctx}: no {reason} event {msg:?} on {field}"));
                    }
                }
                // Logs through the apiserver's pods/log → the fake kubelet.
                let lp = |previous: bool| LogParams {
                    container: Some(cname.clone()),
                    previous,
                    ..LogParams::default()
                };
                if let Some(line) = spec.previous_logs.as_deref().and_then(probe_line) {
                    match pods.logs(&pname, &lp(true)).await {
                        Ok(text) if text.contains(line) => {}
                        Ok(text) => {
                            errs.push(format!("{cctx}: previous log lacks {line:?}: {text:?}"))
                        }
                        Err(e) => errs.push(format!("{cctx}: previous log: {e}")),
                    }
                }
                if let Some(line) = spec.logs.as_deref().and_then(probe_line) {
                    match pods.logs(&pname, &lp(false)).await {
                        Ok(text) if text.contains(line) => {}
                        Ok(text) => errs.push(format!("{cctx}: log lacks {line:?}: {text:?}")),
                        Err(e) => errs.push(format!("{cctx}: log: {e}")),
                    }
                }
            }
        }
    }
    if !played_uids.is_empty() {
        let rules_events = h.spec.kubelet.iter().flat_map(|r| r.events.iter());
        for e in rules_events {
            let found = all_events.iter().any(|ev| {
                ev.reason.as_deref() == Some(e.reason.as_str())
                    && ev.type_.as_deref() == Some(e.type_.as_str())
                    && ev.count == Some(e.count)
            });
            if !found {
                errs.push(format!("{}: extra event {} missing", h.name, e.reason));
            }
        }
    }
    errs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_settles_and_reads_back_like_kubectl() {
    init_tracing();
    let c = kai_testcluster::shared().unwrap();
    let names = kai_testcluster::scenario_names();
    assert!(names.len() >= 3, "scenarios: {names:?}");
    let started = std::time::Instant::now();
    let handles: Vec<_> = futures::stream::iter(names.clone())
        .map(|n| async move {
            let ns = format!("t-{n}");
            (n.clone(), c.setup_scenario(&n, &ns).await)
        })
        .buffer_unordered(6)
        .collect()
        .await;
    eprintln!(
        "{} scenarios set up in {:.1?}",
        names.len(),
        started.elapsed()
    );
    let mut errs = Vec::new();
    for (name, h) in &handles {
        match h {
            Ok(h) => errs.extend(verify(c, h).await),
            Err(e) => errs.push(format!("{name}: setup failed: {e}")),
        }
    }
    assert!(
        errs.is_empty(),
        "{} problems:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

#[tokio::test]
async fn crashloop_logs_honour_parameters_and_match_kubectl() {
    init_tracing();
    let c = kai_testcluster::shared().unwrap();
    let h = c
        .setup_scenario("crashloop-app-error", "t-logs")
        .await
        .unwrap();
    let client = c.admin_client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "t-logs");
    let pod = &h.pods[0];
    let prev = pods
        .logs(
            pod,
            &LogParams {
                previous: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(prev.contains("FATAL: password authentication failed for user \"app\""));
    assert!(prev.contains("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9"));
    assert!(
        prev.contains(&format!("(pod {pod}, node ")),
        "placeholders: {prev}"
    );
    let tail = pods
        .logs(
            pod,
            &LogParams {
                previous: true,
                tail_lines: Some(2),
                timestamps: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 2, "{tail}");
    assert!(lines[0].ends_with("FATAL: password authentication failed for user \"app\""));
    assert!(
        lines[0].split(' ').next().unwrap().ends_with('Z'),
        "timestamp: {tail}"
    );
    let limited = pods
        .logs(
            pod,
            &LogParams {
                previous: true,
                limit_bytes: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(limited.len(), 10);
    // What kubectl shows is the same text.
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(c.kubeconfig_path())
        .args(["-n", "t-logs", "logs", "--previous", pod])
        .output();
    if let Ok(out) = out {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), prev);
    }
    // A container that never ran a previous instance: the kubelet's 400 comes through.
    let h2 = c
        .setup_scenario("missing-secret", "t-logs-2")
        .await
        .unwrap();
    let pods2: Api<Pod> = Api::namespaced(c.admin_client().await.unwrap(), "t-logs-2");
    match pods2.logs(&h2.pods[0], &LogParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 400);
            assert!(
                s.message
                    .contains("is waiting to start: CreateContainerConfigError"),
                "{}",
                s.message
            );
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn restricted_user_reads_only_its_namespace_and_no_secrets() {
    init_tracing();
    let c = kai_testcluster::shared().unwrap();
    let client = c.restricted_client().await.unwrap();
    let forbidden = |r: Result<_, kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) if s.code == 403 && s.reason == "Forbidden" => {}
        other => panic!("{what}: expected Forbidden, got {other:?}"),
    };
    let ok: Api<Pod> = Api::namespaced(client.clone(), kai_testcluster::RESTRICTED_NAMESPACE);
    ok.list(&ListParams::default()).await.unwrap();
    forbidden(
        Api::<Pod>::namespaced(client.clone(), "default")
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "pods in default",
    );
    forbidden(
        Api::<Pod>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "pods in all namespaces",
    );
    forbidden(
        Api::<Secret>::namespaced(client.clone(), kai_testcluster::RESTRICTED_NAMESPACE)
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "secrets in restricted-ok",
    );
    forbidden(
        Api::<Secret>::namespaced(client, kai_testcluster::RESTRICTED_NAMESPACE)
            .get("anything")
            .await
            .map(|_| ()),
        "a secret in restricted-ok",
    );
}

#[tokio::test]
async fn own_cluster_stops_without_leftovers() {
    init_tracing();
    let t = std::time::Instant::now();
    let c = TestCluster::start(Default::default()).await.unwrap();
    eprintln!("own cluster started in {:.1?}", t.elapsed());
    let pids = c.pids().to_vec();
    let ports = c.ports().to_vec();
    let dir = c.work_dir().unwrap().to_path_buf();
    assert_eq!(pids.len(), 4);
    assert!(pids.iter().all(|p| alive(*p)));
    // Watches work (the kubelet uses them too); nodes are there.
    let client = c.admin_client().await.unwrap();
    let nodes: Vec<_> = Api::<k8s_openapi::api::core::v1::Node>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(nodes.len(), 2);
    let t = std::time::Instant::now();
    c.stop().await.unwrap();
    eprintln!("own cluster stopped in {:.1?}", t.elapsed());
    for p in &pids {
        assert!(!alive(*p), "pid {p} still alive");
    }
    for p in &ports {
        assert!(port_free(*p), "port {p} still taken");
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
    // Dropping (without stop) cleans up as well.
    let c = TestCluster::start(Default::default()).await.unwrap();
    let pids = c.pids().to_vec();
    let dir = c.work_dir().unwrap().to_path_buf();
    drop(c);
    for p in &pids {
        assert!(!alive(*p), "pid {p} alive after drop");
    }
    assert!(!dir.exists());
}

#[tokio::test]
async fn cli_up_status_down() {
    init_tracing();
    let state = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_kai-testcluster");
    let run = |args: &[&str]| {
        std::process::Command::new(exe)
            .args(args)
            .env("KAI_TESTCLUSTER_STATE_DIR", state.path())
            .env_remove(kai_testcluster::KUBECONFIG_ENV)
            .output()
            .unwrap()
    };
    let up = run(&["testcluster", "up", "healthy"]);
    let stdout = String::from_utf8_lossy(&up.stdout).to_string();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let kubeconfig = state.path().join("kubeconfig");
    assert_eq!(
        stdout.trim(),
        format!("export KUBECONFIG={}", kubeconfig.display())
    );
    let serve_pid: u32 = std::fs::read_to_string(state.path().join("serve.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Its children (etcd, kube-*).
    let children: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.split_whitespace().nth(1).map(str::to_string))
                })
                .flatten()
                .is_some_and(|ppid| ppid == serve_pid.to_string())
        })
        .collect();
    assert_eq!(children.len(), 4, "children of serve: {children:?}");
    let attached = TestCluster::attach(&kubeconfig).unwrap();
    let port: u16 = attached
        .server_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let pods = Api::<Pod>::namespaced(attached.admin_client().await.unwrap(), "healthy")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 2);
    let status = run(&["testcluster", "status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("running"));
    let down = run(&["testcluster", "down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    for p in children.iter().chain([serve_pid].iter()) {
        assert!(!alive(*p), "pid {p} alive after down");
    }
    assert!(port_free(port));
    let status = run(&["testcluster", "status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("not running"));
}

/// The fake metrics API listens on a non-loopback address, so it answers only the
/// apiserver, which shows its front-proxy client certificate: through the apiserver the
/// metrics are there, straight to its address without a certificate nothing is.
#[tokio::test]
async fn the_metrics_api_answers_only_the_apiserver() {
    init_tracing();
    let c = kai_testcluster::shared().unwrap();
    let admin = c.admin_client().await.unwrap();
    const PATH: &str = "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods";

    let through = admin
        .request_text(http::Request::get(PATH).body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert!(through.contains("PodMetricsList"), "{through}");

    let eps: Api<k8s_openapi::api::core::v1::Endpoints> = Api::namespaced(admin, "kube-system");
    let ep = eps.get("kai-fake-metrics").await.unwrap();
    let subset = &ep.subsets.unwrap()[0];
    let ip = subset.addresses.as_ref().unwrap()[0].ip.clone();
    let port = subset.ports.as_ref().unwrap()[0].port as u16;

    // A client that takes any server certificate (the question is whether the server
    // serves a caller without a client certificate, not whom it claims to be).
    let mut direct = kube::Config::new(format!("https://{ip}:{port}").parse().unwrap());
    direct.accept_invalid_certs = true;
    direct.read_timeout = Some(std::time::Duration::from_secs(30));
    let direct = kube::Client::try_from(direct).unwrap();
    let answer = direct
        .request_text(http::Request::get(PATH).body(Vec::new()).unwrap())
        .await;
    assert!(
        answer.is_err(),
        "served without a client certificate: {answer:?}"
    );
}
