//! The tool framework: a handler per tool, bound to its declaration in a [`Registry`].
//! The tools themselves (cluster reads and changes) live in kai-tools; this crate knows
//! nothing of clusters.
//!
//! Whether a tool mutates is the handler's answer ([`ToolHandler::is_mutating`], true
//! when in doubt), never the model's claim; the declaration's `mutating` flag must agree
//! (a test checks every tool).

pub mod schema;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::agent::protocol::{ApprovalRequest, Decision};
use kai_llm::ToolSpec;

/// A tool's declaration (kai's own are `tools/<name>.json`, compiled in by kai-tools).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDecl {
    pub name: String,
    pub description: String,
    pub parameters: Value,
    pub mutating: bool,
}

impl ToolDecl {
    pub fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }
}

/// Two kinds of failure, as in codex: the model is told and the loop goes on, or the
/// turn stops.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Goes back to the model as the tool result.
    #[error("{0}")]
    Model(String),
    /// Ends the turn (e.g. the user aborted at an approval prompt).
    #[error("{0}")]
    Fatal(String),
}

/// Asks the person at the keyboard. Implemented by the agent (a protocol round trip to
/// the front end); tests and policies wrap it.
#[async_trait]
pub trait Approver: Send + Sync {
    async fn request(&self, request: ApprovalRequest) -> Decision;
}

/// An approver that says no to everything: the safe default where no front end listens.
pub struct DenyAll;

#[async_trait]
impl Approver for DenyAll {
    async fn request(&self, _request: ApprovalRequest) -> Decision {
        Decision::Denied
    }
}

/// What a handler gets besides its arguments, per call. What a tool needs beyond this
/// (a cluster, budgets, where the audit log lives) it holds itself, from when it was
/// registered.
#[derive(Clone)]
pub struct CallCtx {
    /// Asks the person at the keyboard; the agent puts its protocol round trip here.
    pub approver: Arc<dyn Approver>,
    /// Cancelled when the user interrupts the turn.
    pub cancel: CancellationToken,
}

impl CallCtx {
    /// A context asking `approver`, with a cancellation token of its own.
    pub fn new(approver: Arc<dyn Approver>) -> Self {
        Self {
            approver,
            cancel: CancellationToken::new(),
        }
    }
}

#[async_trait]
pub trait ToolHandler: Send + Sync {
    fn name(&self) -> &'static str;
    /// True when the tool can change anything. Defaults to true: safe when in doubt.
    fn is_mutating(&self) -> bool {
        true
    }
    /// The arguments as they may be shown on progress lines, in `-o json` and in logs:
    /// values the model writes into a Secret are masked here (they are not the model's
    /// to show, and a terminal's scrollback is not a vault).
    fn shown_args(&self, args: &Value) -> Value {
        args.clone()
    }
    /// A short human-readable form of a call, for `→ get_logs backend --previous`.
    fn summarize(&self, args: &Value) -> String {
        summarize_args(self.name(), &self.shown_args(args))
    }
    async fn call(&self, ctx: &CallCtx, args: Value) -> Result<String, ToolError>;
}

/// Default summary: the tool name, the object it is about, then the other arguments as
/// flags, e.g. `get_logs backend-7d9c --previous --tail-lines=20`.
pub fn summarize_args(name: &str, args: &Value) -> String {
    const POSITIONAL: [&str; 5] = ["kind", "name", "pod", "target", "container"];
    let mut out = name.to_string();
    let Some(obj) = args.as_object() else {
        return out;
    };
    for key in POSITIONAL {
        if let Some(Value::String(s)) = obj.get(key) {
            out.push(' ');
            out.push_str(s);
        }
    }
    for (k, v) in obj {
        if POSITIONAL.contains(&k.as_str()) && v.is_string() {
            continue;
        }
        let flag = k.replace('_', "-");
        match v {
            Value::Bool(true) => out.push_str(&format!(" --{flag}")),
            Value::Bool(false) | Value::Null => {}
            Value::String(s) => {
                // Long values (manifests, patches) are cut: this is a progress line.
                let short: String = s.chars().take(40).collect();
                let more = if s.chars().count() > 40 { "…" } else { "" };
                out.push_str(&format!(" --{flag}={short}{more}"));
            }
            other => {
                let text = other.to_string();
                let short: String = text.chars().take(60).collect();
                let more = if text.chars().count() > 60 { "…" } else { "" };
                out.push_str(&format!(" --{flag}={short}{more}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod summary_tests {
    use super::summarize_args;
    use serde_json::json;

    #[test]
    fn object_first_then_flags() {
        let s = summarize_args(
            "get_logs",
            &json!({"namespace": "shop", "pod": "backend-7d9c", "previous": true, "tail_lines": 20}),
        );
        assert_eq!(
            s,
            "get_logs backend-7d9c --namespace=shop --previous --tail-lines=20"
        );
        let s = summarize_args(
            "describe",
            &json!({"name": "backend", "kind": "Deployment"}),
        );
        assert_eq!(s, "describe Deployment backend");
    }

    #[test]
    fn long_values_are_cut() {
        let s = summarize_args("apply_manifest", &json!({"yaml": "x".repeat(100)}));
        assert!(s.ends_with("…"), "{s}");
        assert!(s.len() < 80, "{s}");
    }
}

struct Entry {
    decl: ToolDecl,
    handler: Arc<dyn ToolHandler>,
}

/// The tools offered to the model in one session.
pub struct Registry {
    tools: BTreeMap<String, Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("tool {0:?} has a handler but no declaration in tools/")]
    NoDecl(String),
    #[error("tool {name:?}: the declaration says mutating={decl} but the handler says {handler}")]
    MutatingMismatch {
        name: String,
        decl: bool,
        handler: bool,
    },
}

impl Registry {
    pub fn new() -> Self {
        Self {
            tools: BTreeMap::new(),
        }
    }

    /// Register a handler with its declaration (kai's standard set: kai-tools'
    /// `registry`). The declaration's `mutating` flag must agree with the handler's.
    pub fn register_with_decl(
        &mut self,
        decl: ToolDecl,
        handler: Arc<dyn ToolHandler>,
    ) -> Result<(), RegistryError> {
        if decl.mutating != handler.is_mutating() {
            return Err(RegistryError::MutatingMismatch {
                name: decl.name.clone(),
                decl: decl.mutating,
                handler: handler.is_mutating(),
            });
        }
        self.tools
            .insert(decl.name.clone(), Entry { decl, handler });
        Ok(())
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|e| e.decl.spec()).collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }

    pub fn handler(&self, name: &str) -> Option<Arc<dyn ToolHandler>> {
        self.tools.get(name).map(|e| e.handler.clone())
    }

    /// Parse and validate a model-written call. Every failure is a message for the model.
    pub fn prepare(
        &self,
        name: &str,
        raw_args: &str,
    ) -> Result<(Arc<dyn ToolHandler>, Value), String> {
        let entry = self.tools.get(name).ok_or_else(|| {
            format!(
                "unknown tool {name:?}; available tools: {}",
                self.names().join(", ")
            )
        })?;
        let trimmed = raw_args.trim();
        kai_text::bounded::check("arguments", trimmed)
            .map_err(|e| format!("the arguments for {name} were not parsed: {e}"))?;
        let args: Value = if trimmed.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(trimmed).map_err(|e| {
                format!("the arguments for {name} are not valid JSON ({e}); send a JSON object matching the tool's schema")
            })?
        };
        schema::validate(&entry.decl.parameters, &args)
            .map_err(|e| format!("invalid arguments for {name}: {e}"))?;
        Ok((entry.handler.clone(), args))
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}
