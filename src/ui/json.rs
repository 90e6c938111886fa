//! `-o json`: one JSON document at the end with the answer, every tool call (arguments,
//! duration, output size), proposals that were not applied, and token usage.
//!
//! Every string in a document kai prints passes [`crate::redact::scrub`] on the way out
//! ([`pretty`]); serde_json escapes control characters itself, so the document stays
//! valid JSON and cannot drive a terminal it is printed on.

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
    /// The runbooks and documents the answer cites (`source`, `title`, `heading`).
    pub citations: Vec<crate::tools::docs::Citation>,
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
                r.citations = crate::tools::docs::citations(answer);
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
        pretty(&self.report)
    }
}

/// `value` as pretty JSON with every string scrubbed: the one egress for `-o json`.
pub fn pretty<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(mut v) => {
            scrub_strings(&mut v);
            serde_json::to_string_pretty(&v)
                .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
        }
        Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
    }
}

/// Pass every string value and object key in `v` through [`crate::redact::scrub`]. Keys
/// too: a model-written tool argument can put anything in a key.
pub fn scrub_strings(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = crate::redact::scrub_cow(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_strings),
        Value::Object(map) => {
            let needs_new_keys = map
                .keys()
                .any(|k| matches!(crate::redact::scrub_cow(k), std::borrow::Cow::Owned(_)));
            if needs_new_keys {
                let old = std::mem::take(map);
                for (k, mut val) in old {
                    scrub_strings(&mut val);
                    map.insert(crate::redact::scrub(&k), val);
                }
            } else {
                map.values_mut().for_each(scrub_strings);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::agent::protocol::TurnEnd;
    use serde_json::json;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlc2ln";

    #[test]
    fn every_string_is_scrubbed_and_the_document_stays_valid() {
        let mut v = json!({
            "answer": format!("the token is {JWT}"),
            "n": 3, "ok": true, "none": null,
            "nested": [{"log": "password=hunter22 \u{1b}]0;pwned\u{7}"}, ["Bearer abcdefghijklmnopqrstuvwxyz"]],
            format!("key {JWT}"): "value",
        });
        scrub_strings(&mut v);
        let text = serde_json::to_string_pretty(&v).unwrap();
        assert!(!text.contains("eyJzdWIi"), "{text}");
        assert!(!text.contains("hunter22"), "{text}");
        assert!(!text.contains("abcdefghijklmnop"), "{text}");
        assert!(
            !text.contains('\u{1b}'),
            "control characters are escaped: {text}"
        );
        assert!(text.contains("\\u001b]0;pwned\\u0007"), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["n"], 3);
        assert_eq!(back["ok"], true);
        assert!(back["none"].is_null());
        assert!(back["answer"]
            .as_str()
            .unwrap()
            .starts_with("the token is [REDACTED"));
        assert!(back
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("key [REDACTED")));
    }

    #[test]
    fn the_runbooks_an_answer_cites_are_listed() {
        let mut sink = JsonSink::new("m");
        sink.event(&Event::TurnDone {
            end: TurnEnd::Answered,
            answer: "**Cause:** OOM.\n**Runbook:** docs/runbooks/oom-killed.md § Fix".into(),
            usage: Usage::default(),
            steps: 1,
        });
        let v: Value = serde_json::from_str(&sink.render()).unwrap();
        assert_eq!(v["citations"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v["citations"][0]["source"], "docs/runbooks/oom-killed.md");
        assert_eq!(v["citations"][0]["heading"], "Fix");
        let sink = JsonSink::new("m");
        let v: Value = serde_json::from_str(&sink.render()).unwrap();
        assert_eq!(v["citations"], json!([]));
    }

    #[test]
    fn the_report_is_scrubbed_everywhere() {
        let mut sink = JsonSink::new("m");
        sink.event(&Event::ToolStarted {
            call_id: "c".into(),
            name: "get_resource".into(),
            summary: "s".into(),
            arguments: json!({"name": format!("x {JWT}")}),
            pregathered: false,
        });
        sink.event(&Event::ToolFinished {
            call_id: "c".into(),
            name: "get_resource".into(),
            duration_ms: 1,
            output_bytes: 2,
            error: Some(format!("api_key={}", "k".repeat(30))),
        });
        sink.event(&Event::Notice {
            message: format!("note {JWT}"),
        });
        sink.event(&Event::Error {
            message: format!("err {JWT}"),
            exit_code: 1,
        });
        sink.proposal(
            &ApprovalRequest {
                id: "p".into(),
                tool: "patch_resource".into(),
                title: format!("patch {JWT}"),
                diff: "+  token: ghp_0123456789abcdefghijklmnopqrstuvwxyz\n".into(),
                kubectl: format!("kubectl --token={JWT} patch"),
                dangerous: false,
                confirm_name: None,
            },
            "declined",
        );
        sink.event(&Event::TurnDone {
            end: TurnEnd::Answered,
            answer: format!("answer {JWT}"),
            usage: Default::default(),
            steps: 1,
        });
        let text = sink.render();
        assert!(!text.contains("eyJzdWIi"), "{text}");
        assert!(!text.contains("kkkkkkkkkk"), "{text}");
        assert!(!text.contains("0123456789abcdefghij"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["tool_calls"][0]["duration_ms"], 1);
        assert_eq!(v["proposals"][0]["decision"], "declined");
    }
}
