//! The tool framework: a tool is a typed [`Tool`] (its arguments one struct, see
//! [`args`]), erased into a [`ToolHandler`] that a [`Registry`] holds with the
//! declaration generated from it. The tools themselves (cluster reads and changes) live
//! in kai-tools; this crate knows nothing of clusters.
//!
//! Whether a tool mutates is the handler's answer ([`Tool::is_mutating`], true when in
//! doubt), never the model's claim; the declaration says what the handler says.

pub mod args;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::agent::protocol::{ApprovalRequest, Decision};
use kai_llm::ToolSpec;

pub use args::Int;

/// A tool's declaration as offered to the model, generated from the tool
/// ([`ToolHandler::decl`]): never written by hand, so it cannot disagree with what the
/// handler accepts or does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDecl {
    pub name: String,
    pub description: String,
    /// The JSON schema of the arguments ([`args::parameters`]).
    pub parameters: Value,
    /// The handler's [`Tool::is_mutating`]; not sent to the model.
    pub mutating: bool,
}

impl ToolDecl {
    /// What is sent to the model. The top-level `"additionalProperties": false` stays
    /// out: every request would pay for it (about 30 bytes a tool), and it tells the
    /// model nothing the property list does not; unknown arguments are still refused
    /// when a call is parsed (`deny_unknown_fields`), with an error the model reads.
    pub fn spec(&self) -> ToolSpec {
        let mut parameters = self.parameters.clone();
        if let Some(o) = parameters.as_object_mut() {
            if o.get("additionalProperties") == Some(&Value::Bool(false)) {
                o.remove("additionalProperties");
            }
        }
        ToolSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters,
        }
    }
}

/// A description written for review (one sentence or clause per line, say) as the model
/// reads it: the lines of a paragraph joined with single spaces, paragraphs (separated
/// by a blank line) by a blank line, no surrounding white space.
pub fn prose(text: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join(" "));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join(" "));
    }
    paragraphs.join("\n\n")
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
    /// The user turn the call belongs to: calls of one turn may share what they read
    /// (each kind of a namespace listed once), calls of different turns never do.
    /// `None` outside a turn: every call reads afresh.
    pub turn: Option<TurnId>,
}

impl CallCtx {
    /// A context asking `approver`, with a cancellation token of its own, outside any
    /// turn.
    pub fn new(approver: Arc<dyn Approver>) -> Self {
        Self {
            approver,
            cancel: CancellationToken::new(),
            turn: None,
        }
    }
}

/// One user turn, unique in the process (so two agents' turns never share reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TurnId(u64);

impl TurnId {
    /// A turn no other has been.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TurnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

/// A tool, defined once: its name, its description, its arguments type (from which
/// the schema shown to the model is generated and against which the model's arguments
/// are checked before anything runs) and what it does with them. [`handler`] makes it
/// something a [`Registry`] holds.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The arguments: a struct deriving `Deserialize` and `JsonSchema`, with
    /// `#[serde(deny_unknown_fields)]` and a doc comment per field (see [`args`]).
    type Args: DeserializeOwned + JsonSchema + Send;
    fn name(&self) -> &'static str;
    /// What the model reads about the tool, as [`prose`].
    fn description(&self) -> &'static str;
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
    async fn call(&self, ctx: &CallCtx, args: Self::Args) -> Result<String, ToolError>;
}

/// A tool as a [`Registry`] and the agent hold it: arguments as the model's JSON,
/// checked against the tool's arguments type. Made from a [`Tool`] by [`handler`].
#[async_trait]
pub trait ToolHandler: Send + Sync {
    fn name(&self) -> &'static str;
    /// See [`Tool::is_mutating`].
    fn is_mutating(&self) -> bool;
    /// The declaration offered to the model, generated from the tool.
    fn decl(&self) -> ToolDecl;
    /// Whether `args` are arguments of this tool; `Err` is the reason for the model.
    fn check(&self, args: &Value) -> Result<(), String>;
    /// See [`Tool::shown_args`].
    fn shown_args(&self, args: &Value) -> Value;
    /// See [`Tool::summarize`].
    fn summarize(&self, args: &Value) -> String;
    /// Check `args` as [`ToolHandler::check`] does (a failure is a [`ToolError::Model`]
    /// naming the tool), then run the tool.
    async fn call(&self, ctx: &CallCtx, args: Value) -> Result<String, ToolError>;
}

/// `tool` as a [`ToolHandler`].
pub fn handler<T: Tool>(tool: T) -> Arc<dyn ToolHandler> {
    Arc::new(Typed(tool))
}

struct Typed<T>(T);

/// How a failed check reads in a tool result.
fn invalid(tool: &str, reason: &str) -> String {
    format!("invalid arguments for {tool}: {reason}")
}

#[async_trait]
impl<T: Tool> ToolHandler for Typed<T> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn is_mutating(&self) -> bool {
        self.0.is_mutating()
    }
    fn decl(&self) -> ToolDecl {
        ToolDecl {
            name: self.0.name().to_string(),
            description: prose(self.0.description()),
            parameters: args::parameters::<T::Args>(),
            mutating: self.0.is_mutating(),
        }
    }
    fn check(&self, args: &Value) -> Result<(), String> {
        args::parse::<T::Args>(args).map(drop)
    }
    fn shown_args(&self, args: &Value) -> Value {
        self.0.shown_args(args)
    }
    fn summarize(&self, args: &Value) -> String {
        self.0.summarize(args)
    }
    async fn call(&self, ctx: &CallCtx, args: Value) -> Result<String, ToolError> {
        let typed = args::parse::<T::Args>(&args)
            .map_err(|reason| ToolError::Model(invalid(self.0.name(), &reason)))?;
        self.0.call(ctx, typed).await
    }
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
    #[error("tool {0:?} is registered twice")]
    Duplicate(String),
    #[error("tool {name:?} cannot be offered to a model: {reason}")]
    Parameters { name: String, reason: String },
    #[error("tool {0:?} has no description")]
    NoDescription(String),
}

impl Registry {
    pub fn new() -> Self {
        Self {
            tools: BTreeMap::new(),
        }
    }

    /// Register `handler` (kai's standard set: kai-tools' `registry`) with the
    /// declaration generated from it, which must be one a model can be offered: an
    /// object schema that refuses unknown fields, and a description.
    pub fn register(&mut self, handler: Arc<dyn ToolHandler>) -> Result<(), RegistryError> {
        let decl = handler.decl();
        if self.tools.contains_key(&decl.name) {
            return Err(RegistryError::Duplicate(decl.name));
        }
        if decl.description.is_empty() {
            return Err(RegistryError::NoDescription(decl.name));
        }
        args::check_parameters(&decl.parameters).map_err(|reason| RegistryError::Parameters {
            name: decl.name.clone(),
            reason,
        })?;
        self.tools
            .insert(decl.name.clone(), Entry { decl, handler });
        Ok(())
    }

    /// The declarations as sent to the model: in a fixed order (a provider's prompt
    /// cache reuses only an identical prefix), the read-only tools first, then the ones
    /// that change the cluster, each by name. The changes come last because they are
    /// the ones a session may leave out (`--read-only`) or offer only on some turns:
    /// leaving out the tail keeps the read-only declarations' bytes where they were.
    pub fn specs(&self) -> Vec<ToolSpec> {
        let (read, write): (Vec<&Entry>, Vec<&Entry>) =
            self.tools.values().partition(|e| !e.decl.mutating);
        read.into_iter()
            .chain(write)
            .map(|e| e.decl.spec())
            .collect()
    }

    /// The declarations, by name.
    pub fn decls(&self) -> impl Iterator<Item = &ToolDecl> {
        self.tools.values().map(|e| &e.decl)
    }

    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }

    pub fn handler(&self, name: &str) -> Option<Arc<dyn ToolHandler>> {
        self.tools.get(name).map(|e| e.handler.clone())
    }

    /// Parse and check a model-written call against the tool's arguments type, before
    /// anything runs. Every failure is a message for the model.
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
        entry
            .handler
            .check(&args)
            .map_err(|reason| invalid(name, &reason))?;
        Ok((entry.handler.clone(), args))
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod registry_tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct EchoArgs {
        /// What to echo.
        text: String,
        times: Option<Int<1>>,
    }

    /// Counts its calls in `calls`, which a test keeps a clone of.
    #[derive(Default)]
    struct Echo {
        calls: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Tool for Echo {
        type Args = EchoArgs;
        fn name(&self) -> &'static str {
            "echo"
        }
        fn description(&self) -> &'static str {
            "Echo text back.\n  Several times if asked.\n\nNothing else.\n"
        }
        fn is_mutating(&self) -> bool {
            false
        }
        async fn call(&self, _ctx: &CallCtx, args: EchoArgs) -> Result<String, ToolError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(args.text.repeat(args.times.map_or(1, |t| t.get() as usize)))
        }
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct LaxArgs {
        text: String,
    }

    /// A tool `$ty` named `$name` that takes `$args` and does nothing (a mutating one, as
    /// tools are unless they say otherwise).
    macro_rules! idle_tool {
        ($ty:ident, $args:ty, $name:literal, $description:literal) => {
            struct $ty;

            #[async_trait]
            impl Tool for $ty {
                type Args = $args;
                fn name(&self) -> &'static str {
                    $name
                }
                fn description(&self) -> &'static str {
                    $description
                }
                async fn call(&self, _ctx: &CallCtx, _args: $args) -> Result<String, ToolError> {
                    Ok(String::new())
                }
            }
        };
    }

    idle_tool!(Lax, LaxArgs, "lax", "Accepts anything.");

    #[test]
    fn descriptions_are_prose() {
        assert_eq!(
            prose("  One line\n  and its continuation.\n\n\nA second paragraph.\n"),
            "One line and its continuation.\n\nA second paragraph."
        );
        assert_eq!(prose("Single."), "Single.");
    }

    #[test]
    fn the_declaration_is_generated_from_the_tool() {
        let mut r = Registry::new();
        r.register(handler(Echo::default())).unwrap();
        let d = r.decls().next().unwrap();
        assert_eq!(d.name, "echo");
        assert_eq!(
            d.description,
            "Echo text back. Several times if asked.\n\nNothing else."
        );
        assert!(!d.mutating);
        assert_eq!(d.parameters["required"], json!(["text"]));
        assert_eq!(
            d.parameters["properties"]["text"]["description"],
            "What to echo."
        );
        // What is sent leaves out only the top-level additionalProperties; the schema
        // kai checks calls against keeps it.
        assert_eq!(d.parameters["additionalProperties"], false);
        let mut sent = d.parameters.clone();
        sent.as_object_mut().unwrap().remove("additionalProperties");
        assert_eq!(r.specs()[0].parameters, sent);
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct NoArgs {}

    // A mutating tool whose name sorts before `echo`.
    idle_tool!(Alter, NoArgs, "alter", "Changes something.");

    #[test]
    fn declarations_are_sent_read_only_first_then_changes_each_by_name() {
        let mut r = Registry::new();
        r.register(handler(Alter)).unwrap();
        r.register(handler(Echo::default())).unwrap();
        let names: Vec<String> = r.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["echo", "alter"]);
        // The same in whatever order tools were registered.
        let mut r2 = Registry::new();
        r2.register(handler(Echo::default())).unwrap();
        r2.register(handler(Alter)).unwrap();
        assert_eq!(r.specs(), r2.specs());
    }

    #[test]
    fn tools_that_cannot_be_offered_are_refused() {
        let mut r = Registry::new();
        let e = r.register(handler(Lax)).unwrap_err();
        assert!(matches!(e, RegistryError::Parameters { .. }), "{e}");
        r.register(handler(Echo::default())).unwrap();
        let e = r.register(handler(Echo::default())).unwrap_err();
        assert!(matches!(e, RegistryError::Duplicate(_)), "{e}");
    }

    #[tokio::test]
    async fn arguments_are_checked_before_the_tool_runs() {
        let echo = Echo::default();
        let calls = echo.calls.clone();
        let mut r = Registry::new();
        r.register(handler(echo)).unwrap();
        for (raw, want) in [
            (
                r#"{"txt": "x"}"#,
                "invalid arguments for echo: unknown field `txt`",
            ),
            (
                "{}",
                "invalid arguments for echo: missing required field `text`",
            ),
            (
                r#"{"text": "x", "times": 0}"#,
                "`times`: must be at least 1, got 0",
            ),
            (r#"{"text": "#, "not valid JSON"),
        ] {
            let e = r.prepare("echo", raw).err().unwrap();
            assert!(e.contains(want), "{raw}: {e}");
        }
        assert!(r
            .prepare("nope", "{}")
            .err()
            .unwrap()
            .contains("available tools: echo"));
        let ctx = CallCtx::new(Arc::new(DenyAll));
        // The erased call checks too, for callers that skip `prepare`.
        let h = r.handler("echo").unwrap();
        let e = h.call(&ctx, json!({"text": 1})).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid arguments for echo: `text`"),
            "{e}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0, "no call ran");
        let (h, args) = r
            .prepare("echo", r#"{"text": "ab", "times": 2.0}"#)
            .unwrap();
        assert_eq!(h.call(&ctx, args).await.unwrap(), "abab");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
