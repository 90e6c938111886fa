//! `-o json`: one JSON document at the end with the answer, every tool call (arguments,
//! duration, output size), proposals that were not applied, and token usage.

use serde::Serialize;
use serde_json::Value;

use crate::agent::protocol::{ApprovalRequest, Event, TurnEnd};
use crate::llm::Usage;

#[derive(Debug, Clone, Serialize)]
pub struct ToolCallRecord {
    pub id: String,
    pub name: String,
    pub arguments: Value,
    pub pregathered: bool,
    pub duration_ms: u64,
    pub output_bytes: usize,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProposalRecord {
    pub title: String,
    pub diff: String,
    pub kubectl: String,
    pub decision: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub model: String,
    pub answer: String,
    pub end: Option<TurnEnd>,
    pub steps: u32,
    pub tool_calls: Vec<ToolCallRecord>,
    pub proposals: Vec<ProposalRecord>,
    pub errors: Vec<String>,
    pub notices: Vec<String>,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
}

#[derive(Default)]
pub struct JsonSink {
    pub report: Report,
}

impl JsonSink {
    pub fn new(model: &str) -> Self {
        Self {
            report: Report {
                model: model.to_string(),
                ..Default::default()
            },
        }
    }

    pub fn event(&mut self, e: &Event) {
        let r = &mut self.report;
        match e {
            Event::ToolStarted {
                call_id,
                name,
                arguments,
                pregathered,
                ..
            } => r.tool_calls.push(ToolCallRecord {
                id: call_id.clone(),
                name: name.clone(),
                arguments: arguments.clone(),
                pregathered: *pregathered,
                duration_ms: 0,
                output_bytes: 0,
                error: None,
            }),
            Event::ToolFinished {
                call_id,
                duration_ms,
                output_bytes,
                error,
                ..
            } => {
                if let Some(t) = r.tool_calls.iter_mut().rev().find(|t| &t.id == call_id) {
                    t.duration_ms = *duration_ms;
                    t.output_bytes = *output_bytes;
                    t.error = error.clone();
                }
            }
            Event::Error { message, .. } => r.errors.push(message.clone()),
            Event::Notice { message } => r.notices.push(message.clone()),
            Event::TurnDone {
                end,
                answer,
                usage,
                steps,
            } => {
                r.end = Some(*end);
                r.answer = answer.clone();
                r.usage.add(usage);
                r.steps += steps;
            }
            Event::TurnStarted
            | Event::TextDelta { .. }
            | Event::Usage { .. }
            | Event::ApprovalRequested(_) => {}
        }
    }

    pub fn proposal(&mut self, req: &ApprovalRequest, decision: &str) {
        self.report.proposals.push(ProposalRecord {
            title: req.title.clone(),
            diff: req.diff.clone(),
            kubectl: req.kubectl.clone(),
            decision: decision.to_string(),
        });
    }

    pub fn render(&self) -> String {
        serde_json::to_string_pretty(&self.report)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
