//! Context pre-gathering before the first model call.
//! (Placeholder with the agreed API; the cluster-tools engineer replaces the body.)

use std::time::Duration;

use crate::tools::ToolCtx;

#[derive(Debug, Clone)]
pub struct Gathered {
    pub tool: String,
    pub args: serde_json::Value,
    pub output: String,
    pub duration: Duration,
    pub error: Option<String>,
}

pub async fn pregather(_ctx: &ToolCtx, _question: &str, _namespace: Option<&str>) -> Vec<Gathered> {
    Vec::new()
}
