//! The one protocol every front end speaks: operations in, events out.
//!
//! One-shot, JSON output, the REPL and the MCP server all drive the same agent through
//! these types and never reach into the loop. Approval is a round trip here: the agent
//! asks with [`Event::ApprovalRequested`], only a front end answers with
//! [`Op::Approval`], and nothing the model writes can produce an `Op`.

use serde::{Deserialize, Serialize};

use kai_llm::Usage;

#[derive(Debug, Clone)]
pub enum Op {
    /// A user message starting a turn.
    UserTurn(String),
    /// The user's answer to an [`Event::ApprovalRequested`] with the same id.
    Approval {
        id: String,
        decision: Decision,
    },
    /// Ctrl-C: end the current turn cleanly.
    Interrupt,
    /// Between turns: change what later turns run with (model, namespace, tools). Sent
    /// by a front end, like every `Op`; the model has no path to it.
    Reconfigure(Box<super::state::Reconfigure>),
    Shutdown,
}

/// The user's answer to a proposed change. Anything unreadable counts as `Denied`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision", content = "feedback")]
pub enum Decision {
    Approved,
    /// Approve this and every later change in this session without asking.
    ApprovedForSession,
    Denied,
    /// Denied, with text that is handed back to the model.
    DeniedWithFeedback(String),
    /// Stop the whole turn.
    Abort,
}

impl Decision {
    pub fn is_approved(&self) -> bool {
        matches!(self, Decision::Approved | Decision::ApprovedForSession)
    }
}

/// What the user is asked to approve: exactly the change that will be applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: String,
    /// The tool that proposes the change (`patch_resource`, ...).
    pub tool: String,
    /// One line: "patch Deployment shop/backend".
    pub title: String,
    /// Unified diff live → server-side dry-run result (no colours; the UI adds them).
    pub diff: String,
    /// The equivalent kubectl command, shown when nothing is applied.
    pub kubectl: String,
    /// A dangerous change needs `confirm_name` typed, not just "y".
    pub dangerous: bool,
    pub confirm_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnEnd {
    /// The model answered without asking for tools.
    Answered,
    /// `--max-steps` reached first.
    MaxSteps,
    Interrupted,
    /// The user aborted at an approval prompt.
    Aborted,
    /// A fatal error (model down, ...); see the preceding `Event::Error`.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Event {
    TurnStarted,
    /// Streamed answer text.
    TextDelta {
        text: String,
    },
    ToolStarted {
        call_id: String,
        name: String,
        /// Short human form: `get_logs backend-7d9c --previous`.
        summary: String,
        arguments: serde_json::Value,
        /// True for context kai fetched itself before the first model call.
        pregathered: bool,
    },
    ToolFinished {
        call_id: String,
        name: String,
        duration_ms: u64,
        output_bytes: usize,
        /// The message when the tool failed (it went back to the model as the result).
        error: Option<String>,
    },
    ApprovalRequested(ApprovalRequest),
    /// Something the user should know that is not part of the answer.
    Notice {
        message: String,
    },
    Usage {
        usage: Usage,
    },
    Error {
        message: String,
        exit_code: i32,
    },
    TurnDone {
        end: TurnEnd,
        answer: String,
        usage: Usage,
        steps: u32,
    },
}
