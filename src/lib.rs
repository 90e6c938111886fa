//! kai: an AI-assisted DevOps agent for Kubernetes.
//!
//! The core is a library: front ends (one-shot CLI, JSON output, the REPL, later MCP)
//! drive one [`agent::Agent`] through operations in and events out, and only render.

pub mod agent;
pub mod analyze;
pub mod app;
pub mod changes;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod exit;
pub mod gather;
pub mod oneshot;
pub mod repl;
pub mod tools;
pub mod ui;

pub use kai_cluster as cluster;
pub use kai_llm as llm;
pub use kai_text::{bounded, egress, redact};

pub use kai_text::init_crypto;
