//! The chat-completions wire format, both directions, as one small set of types.
//!
//! Our own types rather than async-openai's: its response types are strict where the
//! servers kai talks to are not (they require `id`, `created`, `model` and `object` on
//! every chunk, an `index` on every choice and tool-call delta, and a `finish_reason`
//! from a closed list), while llama.cpp, Ollama, vLLM, LM Studio and Gemini's endpoint
//! send `"choices": null`, `"finish_reason": ""`, tool calls without index or id, and
//! arguments as a JSON object. So responses are read leniently here: unknown fields are
//! ignored, every field may be missing or `null`. Requests are the few fields kai sends,
//! kept next to the responses so the format has one home.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{ChatMessage, ChatRequest, Role};

/// How one endpoint wants the request spelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Dialect {
    /// Send `stream_options: {include_usage: true}`. Only OpenAI and Azure get it:
    /// several compatible servers reject unknown request fields.
    pub include_usage: bool,
    /// Send `max_completion_tokens` (OpenAI's current name, required by its reasoning
    /// models) rather than `max_tokens` (what compatible servers and Azure understand).
    pub max_completion_tokens: bool,
}

/// A streamed chat-completions request.
#[derive(Debug, Serialize)]
pub(crate) struct Request<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(request: &'a ChatRequest, model: &'a str, dialect: Dialect) -> Self {
        let (max_tokens, max_completion_tokens) = match request.max_tokens {
            Some(max) if dialect.max_completion_tokens => (None, Some(max)),
            max => (max, None),
        };
        let tools: Vec<Tool<'a>> = request
            .tools
            .iter()
            .map(|t| Tool {
                kind: "function",
                function: FunctionDecl {
                    name: &t.name,
                    description: Some(t.description.as_str()).filter(|d| !d.is_empty()),
                    parameters: &t.parameters,
                },
            })
            .collect();
        Self {
            model,
            messages: request.messages.iter().map(Message::from).collect(),
            stream: true,
            stream_options: dialect.include_usage.then_some(StreamOptions {
                include_usage: true,
            }),
            temperature: request.temperature,
            max_tokens,
            max_completion_tokens,
            tool_choice: (!tools.is_empty()).then_some("auto"),
            tools,
        }
    }
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum Message<'a> {
    System {
        content: &'a str,
    },
    User {
        content: &'a str,
    },
    Assistant {
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCallOut<'a>>,
    },
    Tool {
        content: &'a str,
        tool_call_id: &'a str,
    },
}

impl<'a> From<&'a ChatMessage> for Message<'a> {
    fn from(m: &'a ChatMessage) -> Self {
        let content = m.content.as_deref().unwrap_or_default();
        match m.role {
            Role::System => Message::System { content },
            Role::User => Message::User { content },
            Role::Assistant => {
                let tool_calls: Vec<ToolCallOut<'a>> = m
                    .tool_calls
                    .iter()
                    .map(|c| ToolCallOut {
                        id: &c.id,
                        kind: "function",
                        function: FunctionCallOut {
                            name: &c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect();
                // An assistant message needs content unless it carries tool calls.
                let content = (tool_calls.is_empty() || !content.is_empty()).then_some(content);
                Message::Assistant {
                    content,
                    tool_calls,
                }
            }
            Role::Tool => Message::Tool {
                content,
                tool_call_id: m.tool_call_id.as_deref().unwrap_or_default(),
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCallOut<'a>,
}

#[derive(Debug, Serialize)]
struct FunctionCallOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Debug, Serialize)]
struct Tool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionDecl<'a>,
}

#[derive(Debug, Serialize)]
struct FunctionDecl<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
}

/// Deserializes `null` as the default value (servers send `"choices": null` and such).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One streamed chunk, or a whole non-streamed completion (same shape, `message` in
/// place of `delta`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Chunk {
    #[serde(deserialize_with = "nullable")]
    pub choices: Vec<Choice>,
    pub usage: Option<WireUsage>,
    pub error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Choice {
    pub index: Option<u64>,
    /// Streamed chunks carry `delta`; whole completions (and a few servers' chunks)
    /// carry `message`.
    pub delta: Option<Delta>,
    pub message: Option<Delta>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Delta {
    /// Usually a string or null; anything else is ignored rather than fatal.
    pub content: Option<Value>,
    #[serde(deserialize_with = "nullable")]
    pub tool_calls: Vec<ToolCallDelta>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ToolCallDelta {
    pub index: Option<u64>,
    pub id: Option<String>,
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FunctionDelta {
    pub name: Option<String>,
    /// A string fragment normally; some servers send a whole JSON object.
    pub arguments: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireUsage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    /// OpenAI (and Azure) break the prompt down here; others send nothing, `null`, or
    /// an object without the field.
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PromptTokensDetails {
    /// Prompt tokens served from the provider's prompt cache.
    pub cached_tokens: Option<u64>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{ToolCall, ToolSpec};
    use serde_json::json;

    fn body(request: &ChatRequest, dialect: Dialect) -> Value {
        serde_json::to_value(Request::new(request, "m", dialect)).unwrap()
    }

    fn request() -> ChatRequest {
        ChatRequest {
            model: String::new(),
            messages: vec![
                ChatMessage::system("sys"),
                ChatMessage::user("why?"),
                ChatMessage::assistant("plain"),
                ChatMessage::assistant_tool_calls(
                    Some("t".into()),
                    vec![ToolCall {
                        id: "c1".into(),
                        name: "a".into(),
                        arguments: "{\"x\":1}".into(),
                    }],
                ),
                ChatMessage::assistant_tool_calls(
                    None,
                    vec![ToolCall {
                        id: "c2".into(),
                        name: "b".into(),
                        arguments: "{}".into(),
                    }],
                ),
                ChatMessage::assistant_tool_calls(None, vec![]),
                ChatMessage::tool_result("c1", "r"),
                ChatMessage {
                    role: Role::Tool,
                    content: None,
                    tool_calls: vec![],
                    tool_call_id: None,
                },
            ],
            tools: vec![
                ToolSpec {
                    name: "a".into(),
                    description: String::new(),
                    parameters: json!({"type": "object"}),
                },
                ToolSpec {
                    name: "b".into(),
                    description: "d".into(),
                    parameters: json!({"type": "object", "properties": {}}),
                },
            ],
            temperature: Some(0.5),
            max_tokens: Some(7),
        }
    }

    #[test]
    fn request_shape_matches_the_chat_completions_api() {
        let b = body(&request(), Dialect::default());
        assert_eq!(
            b,
            json!({
                "model": "m",
                "stream": true,
                "temperature": 0.5,
                "max_tokens": 7,
                "tool_choice": "auto",
                "tools": [
                    {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
                    {"type": "function", "function": {"name": "b", "description": "d", "parameters": {"type": "object", "properties": {}}}},
                ],
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "why?"},
                    {"role": "assistant", "content": "plain"},
                    {"role": "assistant", "content": "t", "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{\"x\":1}"}}]},
                    {"role": "assistant", "tool_calls": [
                        {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{}"}}]},
                    {"role": "assistant", "content": ""},
                    {"role": "tool", "content": "r", "tool_call_id": "c1"},
                    {"role": "tool", "content": "", "tool_call_id": ""},
                ],
            })
        );
    }

    #[test]
    fn dialect_switches_usage_and_the_token_limit_name() {
        let b = body(
            &request(),
            Dialect {
                include_usage: true,
                max_completion_tokens: true,
            },
        );
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
        assert_eq!(b["max_completion_tokens"], 7);
        assert!(b.get("max_tokens").is_none());

        let mut bare = request();
        bare.tools.clear();
        bare.temperature = None;
        bare.max_tokens = None;
        let b = body(&bare, Dialect::default());
        for absent in [
            "tools",
            "tool_choice",
            "temperature",
            "max_tokens",
            "max_completion_tokens",
            "stream_options",
        ] {
            assert!(b.get(absent).is_none(), "{absent} in {b}");
        }
    }

    #[test]
    fn responses_are_read_leniently() {
        let c: Chunk =
            serde_json::from_str(r#"{"choices":null,"usage":{"prompt_tokens":2},"extra":{"a":1}}"#)
                .unwrap();
        assert!(c.choices.is_empty());
        let u = c.usage.unwrap();
        assert_eq!(u.prompt_tokens, Some(2));
        assert!(u.prompt_tokens_details.is_none());
        let c: Chunk = serde_json::from_str(
            r#"{"usage":{"prompt_tokens":2,"prompt_tokens_details":{"cached_tokens":null,"audio_tokens":0}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.usage
                .unwrap()
                .prompt_tokens_details
                .unwrap()
                .cached_tokens,
            None
        );
        let c: Chunk = serde_json::from_str(
            r#"{"choices":[{"delta":{"content":null,"tool_calls":null},"finish_reason":""}]}"#,
        )
        .unwrap();
        assert_eq!(c.choices[0].index, None);
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some(""));
        let c: Chunk = serde_json::from_str(
            r#"{"choices":[{"delta":{"content":{"odd":true},"tool_calls":[{"function":{"name":"f","arguments":{"x":1}}}]}}]}"#,
        )
        .unwrap();
        let d = c.choices[0].delta.as_ref().unwrap();
        assert_eq!(d.tool_calls[0].index, None);
        assert_eq!(
            d.tool_calls[0].function.as_ref().unwrap().arguments,
            Some(json!({"x": 1}))
        );
    }
}
