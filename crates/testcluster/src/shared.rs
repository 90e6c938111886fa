//! One cluster per test process, started on first use and killed at process exit.

use std::sync::OnceLock;

use crate::cluster::{TestCluster, TestClusterOptions};
use crate::Error;

/// When set (to a kubeconfig path, e.g. the one `kai testcluster up` prints), [`shared`]
/// reuses that running cluster instead of starting one.
pub const KUBECONFIG_ENV: &str = "KAI_TESTCLUSTER_KUBECONFIG";

static SHARED: OnceLock<Result<TestCluster, String>> = OnceLock::new();

/// The process-wide test cluster. The first call starts it (blocking; a few seconds, or
/// ~5 minutes when the binaries must be built first); later calls return the same one.
/// Its processes die with the test process (atexit, and PDEATHSIG if the process is killed).
pub fn shared() -> Result<&'static TestCluster, Error> {
    SHARED
        .get_or_init(|| init().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Other(format!("the shared test cluster is not available: {e}")))
}

extern "C" fn stop_shared_at_exit() {
    if let Some(Ok(c)) = SHARED.get() {
        c.inner.kill_now();
    }
}

fn init() -> Result<TestCluster, Error> {
    if let Some(kc) = std::env::var_os(KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
        return TestCluster::attach(kc);
    }
    // `start` is async but may be called from inside a test's runtime: run it on a
    // throwaway thread with its own runtime (the cluster has its own long-lived thread).
    let started = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("building a tokio runtime", e))?;
        rt.block_on(TestCluster::start(TestClusterOptions::default()))
    })
    .join()
    .map_err(|_| Error::Other("the cluster start-up thread panicked".into()))??;
    // SAFETY: registering a plain `extern "C" fn()` with atexit(3).
    unsafe {
        libc::atexit(stop_shared_at_exit);
    }
    Ok(started)
}
