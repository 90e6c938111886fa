//! Text in and out of kai, with no knowledge of clusters, models or terminals: what
//! every other kai crate uses to keep credentials and control sequences out of what it
//! sends, to bound what it parses, and to fit what it returns into a budget.

pub mod bounded;
pub mod budget;
pub mod egress;
pub mod redact;
pub mod suggest;

/// Choose the process-wide TLS crypto provider (ring, as kube uses) before any TLS
/// connection. Idempotent; safe to call from tests.
#[cfg(feature = "tls")]
pub fn init_crypto() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
