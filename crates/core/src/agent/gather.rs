//! Pre-gathering, as the agent sees it: before the first model call of a turn, something
//! that knows the cluster fetches the context the question needs. The agent shows each
//! result as a tool call kai made itself; kai-tools implements the gathering.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::tools::TurnId;

/// One pre-gathered tool result.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub tool: String,
    pub args: Value,
    pub output: String,
    pub duration: Duration,
    pub error: Option<String>,
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
