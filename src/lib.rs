//! kai: an AI-assisted DevOps agent for Kubernetes.
//!
//! The core is a library: front ends (one-shot CLI, JSON output, the REPL, later MCP)
//! drive one [`agent::Agent`] through operations in and events out, and only render.
//!
//! The layers are crates of their own (`crates/`), so the rules between them are the
//! compiler's: kai-text (redaction, egress, budgets) at the bottom; kai-llm (the model
//! client); kai-core (agent loop, protocol, tool framework, approvals); kai-analyze (pure
//! rules); kai-cluster (the only crate with a Kubernetes client); kai-changes (the change
//! pipeline); kai-tools (the standard tools). This crate holds the front ends (CLI,
//! one-shot, REPL, commands, demo, terminal UI) and re-exports the layers under the paths
//! they always had (`kai::agent`, `kai::cluster`, `kai::tools`, ...).

pub mod analyze;
pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod docs;
pub mod generate;
pub mod lint;
pub mod oneshot;
pub mod repl;
pub mod ui;

pub use kai_cluster as cluster;
pub use kai_core::{agent, exit};
pub use kai_llm as llm;
pub use kai_text::{bounded, egress, redact};
pub use kai_tools::gather;

pub use kai_text::init_crypto;

/// The change pipeline (kai-changes), with the session approvals (kai-core) and the
/// terminal prompt (this crate's `ui::prompt`), under the one path they always had.
pub mod changes {
    pub use crate::ui::prompt::{self, prompt_decision};
    pub use kai_changes::*;
    pub use kai_core::session::{self, SessionApprovals};
}

/// The tool framework (kai-core) and the standard tools (kai-tools).
pub mod tools {
    pub use kai_core::tools::*;
    pub use kai_tools::*;
}
