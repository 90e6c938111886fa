//! `kai demo` and `kai testcluster`: the local test cluster for newcomers and exploration.
//!
//! The demo starts the same real control plane the tests use (kube-apiserver, etcd,
//! controller manager, scheduler and a fake kubelet on loopback), breaks one workload,
//! diagnoses it with the analyzers (no model needed), runs the agent too when a model is
//! configured, and stops everything again.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::{DemoArgs, GlobalArgs, TestclusterCmd};
use crate::cluster::Cluster;
use crate::config::{Settings, DEFAULT_BASE_URL};
use crate::exit;
use kai_testcluster::{TestCluster, TestClusterOptions};

pub const DEFAULT_SCENARIO: &str = "crashloop-app-error";
const DEMO_NAMESPACE: &str = "demo";

fn list() -> i32 {
    let mut all = kai_testcluster::scenarios();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    for s in all {
        println!("{:<32} {}", s.name, s.spec.description);
    }
    exit::OK
}

/// Whether a model is configured: a key, or an explicit non-OpenAI endpoint.
fn model_configured(settings: &Settings) -> bool {
    settings.llm.api_key.is_some() || settings.llm.base_url != DEFAULT_BASE_URL
}

pub async fn run(settings: &Settings, global: &GlobalArgs, args: &DemoArgs) -> Result<i32> {
    if args.list {
        return Ok(list());
    }
    let name = args.scenario.as_deref().unwrap_or(DEFAULT_SCENARIO);
    let scenario = kai_testcluster::scenario(name).map_err(|e| {
        crate::app::Exit::new(
            exit::USAGE,
            format!("{e}; `kai demo --list` shows the scenarios"),
        )
    })?;
    eprintln!(
        "kai demo: starting a local Kubernetes 1.20 test cluster on loopback \
         (the first run builds its binaries from Debian's sources: about 6 minutes on 2 cores; later runs take seconds)"
    );
    let started = Instant::now();
    let cluster = TestCluster::start(TestClusterOptions::default())
        .await
        .context("starting the local test cluster")?;
    eprintln!(
        "kai demo: cluster ready in {:.1} s; setting up scenario {name:?}: {}",
        started.elapsed().as_secs_f64(),
        scenario.spec.description
    );
    let result = demo_on(&cluster, settings, global, &scenario).await;
    eprintln!("kai demo: stopping the test cluster");
    cluster.stop().await.ok();
    result
}

async fn demo_on(
    cluster: &TestCluster,
    settings: &Settings,
    global: &GlobalArgs,
    scenario: &kai_testcluster::Scenario,
) -> Result<i32> {
    let handle = cluster
        .setup_scenario(&scenario.name, DEMO_NAMESPACE)
        .await
        .context("setting up the demo scenario")?;
    let ns = handle.namespace.clone();
    let target = format!(
        "{}/{}",
        scenario.spec.target.kind.to_ascii_lowercase(),
        scenario.spec.target.name
    );
    let kai_cluster = admin_cluster(cluster, &ns).await?;
    let question = if scenario.spec.question.is_empty() {
        format!("what is wrong with {target}?")
    } else {
        scenario.spec.question.clone()
    };
    println!("\n$ kai diagnose {target} -n {ns} --no-llm    # \"{question}\"\n");
    let findings = crate::analyze::diagnose(&kai_cluster, &ns, Some(&target)).await?;
    print!(
        "{}",
        crate::analyze::render_text(
            &findings,
            crate::ui::term::colour(std::io::stdout().is_terminal()),
        )
    );

    if model_configured(settings) {
        println!("\n$ kai -n {ns} \"{question}\"\n");
        let mut s = settings.clone();
        s.kubeconfig = Some(cluster.kubeconfig_path().to_path_buf());
        s.context = Some(kai_testcluster::ADMIN_CONTEXT.to_string());
        s.namespace = Some(ns.clone());
        let code = crate::oneshot::run(&s, global, &question).await?;
        if code != exit::OK {
            eprintln!("kai demo: the agent run ended with exit code {code}");
        }
    } else {
        println!(
            "\n(No model configured, so that was the offline analyzers only. With OPENAI_API_KEY set, \
             or --base-url pointing at an OpenAI-compatible server such as Ollama, the demo also runs \
             the agent: kai -n {ns} \"{question}\")"
        );
    }
    println!(
        "\nNext:\n  kai demo --list                         other broken workloads\n  \
         kai testcluster up {}     keep this cluster running to explore (prints the KUBECONFIG)\n  \
         kai \"why is my-app crashlooping?\"       against your own cluster (current kube context; --context/-n to choose)",
        scenario.name
    );
    Ok(exit::OK)
}

pub async fn testcluster(cmd: TestclusterCmd) -> Result<i32> {
    match cmd {
        TestclusterCmd::Up { scenarios } => kai_testcluster::cli_up(&scenarios).await?,
        TestclusterCmd::Down => kai_testcluster::cli_down().await?,
        TestclusterCmd::Status => kai_testcluster::cli_status().await?,
        TestclusterCmd::Serve { state_dir } => kai_testcluster::cli_serve(state_dir).await?,
    }
    Ok(exit::OK)
}

/// A [`Cluster`] for the test cluster's admin context (tests and benches).
pub async fn admin_cluster(tc: &TestCluster, namespace: &str) -> Result<Arc<Cluster>> {
    let config = tc.admin_config().await?;
    Ok(Arc::new(Cluster::from_config(
        config,
        namespace,
        kai_testcluster::ADMIN_CONTEXT,
    )?))
}
