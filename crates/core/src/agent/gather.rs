//! Pre-gathering, as the agent sees it: before the first model call of a turn, something
//! that knows the cluster fetches the context the question needs. The agent shows each
//! result as a tool call kai made itself; kai-tools implements the gathering.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::tools::TurnId;

/// One pre-gathered tool result.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub tool: String,
    pub args: Value,
    pub output: String,
    pub duration: Duration,
    pub error: Option<String>,
    /// For an analysis, what its findings say beyond the text.
    pub findings: Option<FindingFacts>,
}

/// What the agent and the runbook lookup take from an analysis's findings themselves,
/// never from their rendered text (which quotes cluster content).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFacts {
    /// The most likely cause's code (its runbook is gathered next).
    pub top_cause: Option<String>,
    /// Whether a finding proposes a change (the change tool is then offered).
    pub proposes_change: bool,
}

/// Fetches the context for a question before the model sees it.
#[async_trait]
pub trait Gatherer: Send + Sync {
    /// Context for `question` in `namespace` (the session default when `None`); empty
    /// when the question names nothing recognisable. `turn`: the turn it is gathered for,
    /// whose later tool calls may read from what gathering read.
    async fn gather(
        &self,
        turn: Option<TurnId>,
        question: &str,
        namespace: Option<&str>,
    ) -> Vec<Gathered>;
}

impl std::fmt::Debug for dyn Gatherer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gatherer")
    }
}
