//! A real Kubernetes control plane on loopback for kai's tests and `kai demo`.
//!
//! [`TestCluster::start`] runs etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler (1.20.2, built once from Debian's source package and cached) on free
//! loopback ports, plus an in-process fake kubelet that registers Nodes, plays pods as a
//! scenario says and serves their logs. [`TestCluster::setup_scenario`] creates one of the
//! embedded `tests/scenarios/<name>` workloads in a namespace and waits until it settled.
//!
//! In tests, use the one cluster per process from [`shared`]:
//!
//! ```no_run
//! # async fn t() -> Result<(), kai_testcluster::Error> {
//! let c = kai_testcluster::shared()?;
//! let s = c.setup_scenario("crashloop-app-error", "t-crash-1").await?;
//! let client = c.admin_client().await?;
//! # let _ = (s, client); Ok(()) }
//! ```

mod cli;
mod cluster;
mod error;
mod https;
pub mod kubelet;
pub mod metrics;
mod pki;
mod process;
pub mod proxy;
pub mod scenario;
mod setup;
mod shared;

pub use cli::{cli_down, cli_serve, cli_status, cli_up, state_dir};
pub use cluster::{
    bin_dir, cache_dir, ensure_binaries, TestCluster, TestClusterOptions, ADMIN_CONTEXT,
    DEFAULT_NODES, RESTRICTED_CONTEXT, RESTRICTED_NAMESPACE, RESTRICTED_USER,
};
pub use error::Error;
pub use proxy::{Recorded, RecordingProxy};
pub use scenario::{
    scenario, scenario_names, scenarios, ContainerSpec, ContainerState, EventSpec, KubeletRule,
    NodeSpec, Scenario, ScenarioSpec, ScenarioUser, TaintSpec, Target,
};
pub use setup::{wait_for_default_token, ScenarioHandle};
pub use shared::{shared, KUBECONFIG_ENV};
