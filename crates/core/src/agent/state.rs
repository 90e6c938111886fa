//! What a long session needs from the agent besides turns: changing what later turns
//! run with ([`Reconfigure`]), a view of the conversation to save ([`Snapshot`]), and
//! a saved conversation to continue from ([`restorable`]).

use std::sync::Arc;

use kai_llm::{ChatMessage, Role, Usage};

use super::context::ContextReport;
use super::Gatherer;
use crate::tools::Registry;

/// Between turns, what later turns run with: the REPL's `/model`, `/namespace` and
/// `/context`. Fields left `None` stay as they are. Applied in order with the turns, so
/// a turn asked after it runs with it.
#[derive(Clone, Default)]
pub struct Reconfigure {
    pub model: Option<String>,
    pub context_budget_tokens: Option<usize>,
    /// The namespace questions are about; `Some(None)` means the cluster's default.
    pub namespace: Option<Option<String>>,
    /// The tools, bound to a new environment (another namespace or cluster).
    pub registry: Option<Arc<Registry>>,
    /// What pre-gathers; `Some(None)` turns it off.
    pub gatherer: Option<Option<Arc<dyn Gatherer>>>,
    /// Forget "yes for the rest of this session" (another cluster is not what the user
    /// said yes to).
    pub forget_approvals: bool,
}

impl std::fmt::Debug for Reconfigure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconfigure")
            .field("model", &self.model)
            .field("context_budget_tokens", &self.context_budget_tokens)
            .field("namespace", &self.namespace)
            .field("registry", &self.registry.as_ref().map(|r| r.names()))
            .field("gatherer", &self.gatherer.as_ref().map(|g| g.is_some()))
            .field("forget_approvals", &self.forget_approvals)
            .finish()
    }
}

/// The session as of the end of the last turn (or reconfiguration).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The conversation as the model sees it: every message through the egress (no
    /// control sequences, credentials scrubbed), after fitting. What a saved session
    /// holds, and what a resumed one continues from.
    pub history: Vec<ChatMessage>,
    /// Tokens the provider reported over the session.
    pub usage: Usage,
    /// How full the context is.
    pub context: ContextReport,
    /// Questions asked.
    pub turns: u32,
}

/// `history` (a saved session, so possibly edited by hand or cut short by a crash) as a
/// conversation the model's API accepts: no system messages (kai sends its own), every
/// tool result answering a call just before it, every call answered.
pub fn restorable(history: Vec<ChatMessage>) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(history.len());
    // Calls of the latest assistant message still waiting for their results.
    let mut open: Vec<String> = Vec::new();
    let close = |out: &mut Vec<ChatMessage>, open: &mut Vec<String>| {
        for id in open.drain(..) {
            out.push(ChatMessage::tool_result(
                id,
                "not run: the session ended before this call finished",
            ));
        }
    };
    for m in history {
        match m.role {
            Role::System => {}
            Role::Tool => {
                let id = m.tool_call_id.clone().unwrap_or_default();
                if let Some(at) = open.iter().position(|o| *o == id) {
                    open.remove(at);
                    out.push(m);
                }
            }
            Role::Assistant if !m.tool_calls.is_empty() => {
                close(&mut out, &mut open);
                open = m.tool_calls.iter().map(|c| c.id.clone()).collect();
                out.push(m);
            }
            Role::User | Role::Assistant => {
                close(&mut out, &mut open);
                out.push(m);
            }
        }
    }
    close(&mut out, &mut open);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kai_llm::ToolCall;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "t".into(),
            arguments: "{}".into(),
        }
    }

    #[test]
    fn a_damaged_history_is_made_a_valid_conversation() {
        let saved = vec![
            ChatMessage::system("an old system prompt"),
            ChatMessage::user("q1"),
            ChatMessage::assistant_tool_calls(None, vec![call("a"), call("b")]),
            ChatMessage::tool_result("a", "result a"),
            // "b" never got its result; "x" answers no call.
            ChatMessage::tool_result("x", "stray"),
            ChatMessage::assistant("answer 1"),
            ChatMessage::user("q2"),
            ChatMessage::assistant_tool_calls(None, vec![call("c")]),
        ];
        let out = restorable(saved);
        let shape: Vec<(Role, Option<&str>)> = out
            .iter()
            .map(|m| (m.role, m.tool_call_id.as_deref()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Role::User, None),
                (Role::Assistant, None),
                (Role::Tool, Some("a")),
                (Role::Tool, Some("b")),
                (Role::Assistant, None),
                (Role::User, None),
                (Role::Assistant, None),
                (Role::Tool, Some("c")),
            ]
        );
        assert!(out[3]
            .content
            .as_deref()
            .is_some_and(|c| c.starts_with("not run")));
    }

    #[test]
    fn a_sound_history_is_kept_as_it_is() {
        let saved = vec![
            ChatMessage::user("q1"),
            ChatMessage::assistant_tool_calls(Some("looking".into()), vec![call("a")]),
            ChatMessage::tool_result("a", "result a"),
            ChatMessage::assistant("answer 1"),
        ];
        assert_eq!(restorable(saved.clone()), saved);
    }
}
