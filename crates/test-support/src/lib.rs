//! What kai's tests share (the integration tests in `tests/*.rs`, and the binary's unit
//! tests), so that each test states only what it checks: the shared test cluster
//! ([`cluster`]), crypto set-up ([`crypto`]), the `kai` binary with an isolated
//! environment ([`kai!`], [`Kai`]), the scripted model's recorded requests ([`model`]),
//! pseudo-terminal runs ([`pty`]) and a writer to capture output in ([`SharedBuf`]).
//!
//! Test code: a failed set-up panics with the reason, which is the test's failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod cmd;
pub mod model;
pub mod pty;

pub use cluster::{
    admin, admin_config, apply, crypto, custom_scenario, kubeconfig, restricted_config, scenario,
    shared, wait_for_pods,
};
pub use cmd::{assert_exit, both, stderr, Kai, TEST_API_KEY};
pub use model::{
    cache_prefix, model_err, tool_call, tool_calls, tool_names, tool_results, user_messages,
};
pub use pty::{exit_code, run_pty, PTY_TIMEOUT_MS};

/// The elements of the JSON array `v` (the test fails if it is not one).
pub fn items(v: &serde_json::Value) -> &[serde_json::Value] {
    v.as_array()
        .unwrap_or_else(|| panic!("not a JSON array: {v}"))
}

/// The strings in the JSON array `v` (the test fails on anything else).
pub fn strs(v: &serde_json::Value) -> Vec<&str> {
    items(v)
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
        .collect()
}

/// Run blocking work (a child process, a pseudo-terminal) off the async test's threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A writer that tests read back (a terminal, a log): clones share one buffer, so the
/// code under test can own one while the test keeps another.
#[derive(Clone, Default)]
pub struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    /// Everything written so far (it must be UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
