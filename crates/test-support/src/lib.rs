//! What kai's integration tests (`tests/*.rs`) share, so that each test file states only
//! what it checks: the shared test cluster ([`cluster`]), crypto set-up ([`crypto`]),
//! the `kai` binary with an isolated environment ([`kai!`], [`Kai`]), the scripted
//! model's recorded requests ([`model`]) and pseudo-terminal runs ([`pty`]).
//!
//! Test code: a failed set-up panics with the reason, which is the test's failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod cmd;
pub mod model;
pub mod pty;

pub use cluster::{
    admin, admin_config, apply, crypto, custom_scenario, kubeconfig, restricted_config, scenario,
    shared,
};
pub use cmd::{assert_exit, both, stderr, Kai, TEST_API_KEY};
pub use model::{model_err, tool_call, tool_calls, tool_names, tool_results, user_messages};
pub use pty::{exit_code, run_pty, PTY_TIMEOUT_MS};

/// Run blocking work (a child process, a pseudo-terminal) off the async test's threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}
