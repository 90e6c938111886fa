//! kai: an AI-assisted DevOps agent for Kubernetes.
//!
//! The core is a library: front ends (one-shot CLI, JSON output, the REPL, later MCP)
//! drive one [`agent::Agent`] through operations in and events out, and only render.

pub mod agent;
pub mod analyze;
pub mod app;
pub mod bounded;
pub mod changes;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod demo;
pub mod egress;
pub mod exit;
pub mod gather;
pub mod llm;
pub mod oneshot;
pub mod redact;
pub mod repl;
pub mod tools;
pub mod ui;

/// Choose the process-wide TLS crypto provider (ring, as kube uses) before any TLS
/// connection. Idempotent; safe to call from tests.
pub fn init_crypto() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
