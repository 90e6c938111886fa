//! `kai testcluster up|down|status` (and the hidden `serve` they re-exec): a cluster that
//! outlives the command, for exploring scenarios with kubectl or kai by hand.
//!
//! `up` re-executes the current binary as
//! `<current_exe> testcluster serve --state-dir <dir>` (detached with setsid), which must
//! call [`cli_serve`]. State lives in [`state_dir`]: `serve.pid`, `ready`, `kubeconfig`,
//! `serve.log`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::ListParams;
use kube::Api;

use crate::cluster::{cache_dir, TestCluster, TestClusterOptions};
use crate::kubelet::SCENARIO_ANNOTATION;
use crate::process::pid_alive;

/// `~/.cache/kai/testcluster/run` (honours `KAI_CACHE_DIR`; `KAI_TESTCLUSTER_STATE_DIR`
/// overrides it alone, e.g. for tests that must not touch a user's running cluster).
pub fn state_dir() -> PathBuf {
    match std::env::var_os("KAI_TESTCLUSTER_STATE_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => cache_dir().join("testcluster").join("run"),
    }
}

fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("serve.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    pid_alive(pid).then_some(pid)
}

fn tail(path: &Path, n: usize) -> String {
    crate::process::tail(path, n)
}

/// Starts (or reuses) the background cluster, sets up `scenarios` (each in a namespace of
/// its name), and prints `export KUBECONFIG=...` on stdout.
pub async fn cli_up(scenarios: &[String]) -> anyhow::Result<()> {
    for s in scenarios {
        crate::scenario::scenario(s)?;
    }
    let dir = state_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let kubeconfig = dir.join("kubeconfig");
    if let Some(pid) = running_pid(&dir).filter(|_| dir.join("ready").exists()) {
        eprintln!("kai: test cluster already running (pid {pid})");
    } else {
        let _ = std::fs::remove_file(dir.join("ready"));
        let exe = std::env::current_exe().context("finding the kai binary to re-run")?;
        let log = std::fs::File::create(dir.join("serve.log")).context("creating serve.log")?;
        let log2 = log.try_clone()?;
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["testcluster", "serve", "--state-dir"])
            .arg(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: setsid(2) only, between fork and exec: the server leaves our session so
        // closing this terminal does not take it down.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} testcluster serve", exe.display()))?;
        eprintln!(
            "kai: starting the test cluster (pid {}; log {})",
            child.id(),
            dir.join("serve.log").display()
        );
        let start = Instant::now();
        // The first run builds the binaries (~5 minutes).
        while !dir.join("ready").exists() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the test cluster server exited ({status}) before it was ready; last lines of {}:\n{}",
                    dir.join("serve.log").display(),
                    tail(&dir.join("serve.log"), 30)
                );
            }
            if start.elapsed() > Duration::from_secs(20 * 60) {
                bail!(
                    "the test cluster was not ready after 20 minutes; see {}",
                    dir.join("serve.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("kai: test cluster ready in {:.1?}", start.elapsed());
    }
    let cluster = TestCluster::attach(&kubeconfig)?;
    let setups = scenarios.iter().map(|s| cluster.setup_scenario(s, s));
    for (name, r) in scenarios
        .iter()
        .zip(futures::future::join_all(setups).await)
    {
        let h = r.with_context(|| format!("setting up scenario {name}"))?;
        eprintln!(
            "kai: scenario {name} in namespace {} ({} pods): {}",
            h.namespace,
            h.pods.len(),
            h.spec.question
        );
    }
    eprintln!(
        "kai: contexts kai-admin (current) and kai-restricted; stop with `kai testcluster down`"
    );
    println!("export KUBECONFIG={}", kubeconfig.display());
    Ok(())
}

/// Stops the background cluster started by [`cli_up`].
pub async fn cli_down() -> anyhow::Result<()> {
    let dir = state_dir();
    let Some(pid) = running_pid(&dir) else {
        eprintln!("kai: no test cluster is running");
        for f in ["ready", "serve.pid"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        return Ok(());
    };
    // SAFETY: kill(2) on the pid our own `serve` wrote.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let start = Instant::now();
    while pid_alive(pid) {
        if start.elapsed() > Duration::from_secs(20) {
            // SAFETY: as above. Its children die with it (PDEATHSIG).
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("test cluster server (pid {pid}) does not exit");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for f in ["ready", "serve.pid"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    eprintln!("kai: test cluster stopped");
    Ok(())
}

/// Prints whether the background cluster runs, its nodes and scenario namespaces.
pub async fn cli_status() -> anyhow::Result<()> {
    let dir = state_dir();
    let Some(pid) = running_pid(&dir).filter(|_| dir.join("ready").exists()) else {
        println!("test cluster: not running (start it with `kai testcluster up`)");
        return Ok(());
    };
    let kubeconfig = dir.join("kubeconfig");
    let cluster = TestCluster::attach(&kubeconfig)?;
    println!("test cluster: running (pid {pid})");
    println!("server: {}", cluster.server_url());
    println!("kubeconfig: {}", kubeconfig.display());
    let client = cluster.admin_client().await?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    for n in nodes.items {
        let ready = n
            .status
            .and_then(|s| s.conditions)
            .and_then(|c| c.into_iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status)
            .unwrap_or_else(|| "Unknown".into());
        println!(
            "node {}: Ready={ready}",
            n.metadata.name.unwrap_or_default()
        );
    }
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(SCENARIO_ANNOTATION))
        .await?;
    for ns in namespaces.items {
        let name = ns.metadata.name.unwrap_or_default();
        let scenario = ns
            .metadata
            .labels
            .and_then(|l| l.get(SCENARIO_ANNOTATION).cloned())
            .unwrap_or_default();
        let pods = Api::<Pod>::namespaced(client.clone(), &name)
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        println!("scenario {scenario}: namespace {name}, {pods} pods");
    }
    Ok(())
}

/// Runs a cluster in the foreground until SIGTERM/SIGINT (what `up` re-executes):
/// writes `serve.pid`, the kubeconfig, then `ready`.
pub async fn cli_serve(state_dir: PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    std::fs::write(state_dir.join("serve.pid"), std::process::id().to_string())?;
    let opts = TestClusterOptions {
        kubeconfig_path: Some(state_dir.join("kubeconfig")),
        start_timeout: Duration::from_secs(120),
        ..TestClusterOptions::default()
    };
    let cluster = TestCluster::start(opts).await?;
    std::fs::write(state_dir.join("ready"), cluster.server_url())?;
    eprintln!("kai: test cluster serving at {}", cluster.server_url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("kai: stopping the test cluster");
    let _ = std::fs::remove_file(state_dir.join("ready"));
    cluster.stop().await?;
    let _ = std::fs::remove_file(state_dir.join("serve.pid"));
    Ok(())
}
