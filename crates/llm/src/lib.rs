//! The model behind a small trait: one streaming chat call with tool calls.
//!
//! The agent only sees [`LlmClient`]; the OpenAI-compatible implementation lives in
//! [`openai`]. Keeping the trait this small is what lets tests script the model.
//!
//! The client is split by concern: `openai` (transport and the retry loop), `wire` (the
//! request and response types), `sse` (event-stream framing), `stream` (chunks into a
//! response), `retry` (the retry policy), `failure` (failures into [`LlmError`]), and
//! [`models`] (prices and context windows, as data).

mod failure;
pub mod models;
pub mod openai;
pub mod pricing;
mod retry;
pub mod settings;
mod sse;
mod stream;
mod wire;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One tool call requested by the model. `arguments` is the raw JSON text the model
/// wrote: it is only parsed (and possibly rejected) by the tool registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn system(text: impl Into<String>) -> Self {
        Self::plain(Role::System, text)
    }
    pub fn user(text: impl Into<String>) -> Self {
        Self::plain(Role::User, text)
    }
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::plain(Role::Assistant, text)
    }
    pub fn assistant_tool_calls(text: Option<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            role: Role::Assistant,
            content: text,
            tool_calls: calls,
            tool_call_id: None,
        }
    }
    pub fn tool_result(call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: Some(text.into()),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
        }
    }
    fn plain(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(text.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool as declared to the model (name, description, JSON schema of its arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Of `prompt_tokens`, how many the provider read from its prompt cache (OpenAI's
    /// `usage.prompt_tokens_details.cached_tokens`): a part of the prompt, not extra
    /// tokens. 0 when the provider does not say (most compatible servers), and in
    /// sessions saved before kai read it.
    #[serde(default)]
    pub cached_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
        self.cached_tokens += other.cached_tokens;
    }
}

/// What one chat call produced once its stream ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatResponse {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    /// `None` when the server sent no usage (many compatible servers don't).
    pub usage: Option<Usage>,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the model endpoint rejected the API key ({0}); check the key in the environment variable named by your provider profile")]
    Auth(String),
    #[error("model {model:?} is not known to the endpoint: {message}; pick another with --model")]
    ModelNotFound { model: String, message: String },
    #[error(
        "the model endpoint is rate limiting (HTTP 429) and {attempts} attempts failed: {message}"
    )]
    RateLimited { attempts: u32, message: String },
    #[error("the model endpoint returned HTTP {status} after {attempts} attempts: {message}")]
    Server {
        status: u16,
        attempts: u32,
        message: String,
    },
    #[error("the model endpoint rejected the request (HTTP {status}): {message}")]
    BadRequest { status: u16, message: String },
    #[error("cannot reach the model endpoint {url} after {attempts} attempts: {message}; is the server running and --base-url right?")]
    Connection {
        url: String,
        attempts: u32,
        message: String,
    },
    #[error("the model endpoint did not answer within {0} seconds; if the model is just slow (loading, or a long prompt on a local server), raise request_timeout_secs in the config file")]
    Timeout(u64),
    /// Content stopped arriving mid-answer; keep-alive comments and empty events do not
    /// count as content.
    #[error("the model endpoint stopped sending its answer: nothing but silence or keep-alives for {0} seconds; if the model is just slow, raise request_timeout_secs in the config file")]
    Stalled(u64),
    #[error(
        "the model's answer was still streaming after {0} seconds, the most one answer may take"
    )]
    TooLong(u64),
    #[error("the model endpoint sent a response kai cannot read: {0}")]
    BadResponse(String),
    #[error("cancelled")]
    Cancelled,
}

/// Streams text deltas to `on_text` as they arrive and returns the whole response.
///
/// Implementations must spell `on_text` exactly as here: `#[async_trait]` gives an elided
/// `&str` inside `FnMut(&str)` a named method lifetime, which would let an implementation
/// pass only strings outliving the call, never its own buffers; the explicit `for<'a>`
/// keeps the callback callable with any `&str`.
#[async_trait]
pub trait LlmClient: Send + Sync {
    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<ChatResponse, LlmError>;
}

/// `url` fit for an error message or a log line: no `user:password@`, no fragment, and
/// the values of credential-looking query parameters (`key=`, `api-key=`, `token=`,
/// `sig=`, ...) replaced by `***`. Works on strings that do not parse as URLs too.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let tail = tail.split('#').next().unwrap_or(tail);
    let mut out = format!("{scheme}{host}");
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) if !v.is_empty() && secret_param(k) => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

/// Every URL inside free text (an error chain: "error sending request for url (...)")
/// passed through [`redact_url`].
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        // Walk back over the scheme.
        let scheme_start = rest[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
            .map_or(0, |i| i + 1);
        let end = rest[pos..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '`')
            })
            .map_or(rest.len(), |i| pos + i);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&redact_url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "code"
        || [
            "key",
            "token",
            "secret",
            "pass",
            "sig",
            "auth",
            "credential",
        ]
        .iter()
        .any(|w| n.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_tokens_add_up_and_old_saved_usage_still_reads() {
        let mut total = Usage::default();
        for cached in [0, 1024, 2048] {
            total.add(&Usage {
                prompt_tokens: 3000,
                completion_tokens: 10,
                total_tokens: 3010,
                cached_tokens: cached,
            });
        }
        assert_eq!((total.prompt_tokens, total.cached_tokens), (9000, 3072));
        // A session saved before kai read cached tokens.
        let old: Usage =
            serde_json::from_str(r#"{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}"#)
                .unwrap_or_default();
        assert_eq!((old.total_tokens, old.cached_tokens), (3, 0));
    }

    #[test]
    fn urls_lose_userinfo_and_secret_query_values() {
        assert_eq!(
            redact_url("http://user:hunter2@127.0.0.1:8080/v1/chat/completions"),
            "http://127.0.0.1:8080/v1/chat/completions"
        );
        assert_eq!(
            redact_url("https://u:p@ss@host/v1?api-version=2024-10-21&key=AIzaSECRET&api-key=x&sig=abc#frag"),
            "https://host/v1?api-version=2024-10-21&key=***&api-key=***&sig=***"
        );
        assert_eq!(redact_url("user:hunter2@host:1/v1"), "host:1/v1");
        assert_eq!(redact_url("http://host/v1/@me"), "http://host/v1/@me");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        assert_eq!(
            redact_urls_in(
                "error sending request for url (http://a:hunter2@h:1/v1?token=t0k): refused"
            ),
            "error sending request for url (http://h:1/v1?token=***): refused"
        );
        assert_eq!(redact_urls_in("no urls here"), "no urls here");
        assert_eq!(
            redact_urls_in("x https://k:v@a/b y ftp://c/d"),
            "x https://a/b y ftp://c/d"
        );
    }
}
