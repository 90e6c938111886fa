//! OpenAI-compatible chat client: OpenAI itself, Azure OpenAI, and the many servers that
//! speak the same wire format (Ollama, llama.cpp, vLLM, LM Studio, Gemini's endpoint).
//!
//! Transport is plain reqwest with our own SSE parsing rather than async-openai's client,
//! because we need the HTTP status, `Retry-After` and the raw body to give useful errors,
//! and because compatible servers bend the chunk format in ways a strict parser rejects.
//! Request bodies are still built from async-openai's request types so field names and
//! shapes follow the official API.
//!
//! Parsing is deliberately lenient: unknown fields are ignored, `finish_reason` and
//! `usage` may be missing, `content` may be `null`, tool-call deltas may be split across
//! chunks (keyed by `index`) or arrive whole, and a stream may end without `[DONE]`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionStreamOptions, ChatCompletionTool,
    ChatCompletionToolChoiceOption, ChatCompletionTools, CreateChatCompletionRequest, FunctionCall,
    FunctionObject, ToolChoiceOptions,
};
use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{
    redact_url, redact_urls_in, ChatRequest, ChatResponse, LlmClient, LlmError, Role, ToolCall,
    Usage,
};
use crate::settings::{ApiKey, LlmSettings, ProviderKind};

/// Azure's GA API version used when the profile names none.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// Statuses worth another try: rate limits, gateway trouble, overload (529 is Anthropic's
/// and some proxies' "overloaded").
const RETRYABLE_STATUSES: &[u16] = &[429, 500, 502, 503, 504, 529];
/// A server asking for a longer pause than this is waited for this long only: an
/// interactive user should hear back within a minute, and the retry budget is small.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Cap of the exponential backoff itself, before `Retry-After` is considered.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// However slowly a (local) model streams, one answer may not take longer than this (or
/// the request timeout, if larger). Keep-alives are already bounded by the idle timeout;
/// this bounds a server that trickles one real token just often enough.
const MAX_STREAM: Duration = Duration::from_secs(600);
/// Error bodies are read up to this size; the message is all we need.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A line longer than this without a newline is not SSE.
const MAX_SSE_LINE: usize = 16 * 1024 * 1024;
/// One answer's text plus tool-call arguments may not exceed this: far beyond any real
/// answer, and it keeps a runaway server from filling memory within [`MAX_STREAM`].
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
const EXCERPT_CHARS: usize = 200;

/// The `LlmClient` for every OpenAI-compatible endpoint and Azure OpenAI.
pub struct OpenAiClient {
    http: reqwest::Client,
    kind: ProviderKind,
    /// The base URL without `user:password@` (that becomes `basic_auth`), so no URL kai
    /// holds can leak it. It may still carry a query, which [`redact_url`] masks.
    base_url: String,
    /// `user:password@` from the base URL, sent as HTTP basic auth as reqwest would have.
    basic_auth: Option<(String, Option<String>)>,
    default_model: String,
    azure_api_version: String,
    /// Authorization headers, marked sensitive so reqwest never prints them.
    auth_headers: HeaderMap,
    /// Kept only to scrub it out of any server message we repeat.
    api_key: Option<ApiKey>,
    /// The base URL's password (as written and percent-decoded), scrubbed like the key.
    url_secrets: Vec<String>,
    /// Send `stream_options: {include_usage: true}`. Only OpenAI and Azure get it: several
    /// compatible servers reject unknown request fields.
    include_usage: bool,
    /// Send `max_completion_tokens` (OpenAI's current name, required by its reasoning
    /// models) rather than `max_tokens` (what compatible servers and Azure understand).
    use_max_completion_tokens: bool,
    request_timeout: Duration,
    max_retries: u32,
    retry_base: Duration,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so the key can never reach a log through `{:?}`.
        f.debug_struct("OpenAiClient")
            .field("kind", &self.kind)
            .field("base_url", &redact_url(&self.base_url))
            .field("model", &self.default_model)
            .field("include_usage", &self.include_usage)
            .finish_non_exhaustive()
    }
}

impl OpenAiClient {
    pub fn new(settings: &LlmSettings) -> Result<Self, LlmError> {
        // reqwest is built without a crypto provider of its own; make sure one is chosen.
        kai_text::init_crypto();
        let raw_url = settings.base_url.trim_end_matches('/');
        let mut parsed = reqwest::Url::parse(raw_url).map_err(|e| LlmError::Connection {
            url: redact_url(raw_url),
            attempts: 0,
            message: format!("the base URL is not a valid URL ({e}); it should look like https://api.openai.com/v1"),
        })?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        // Credentials in the URL move to an auth header and out of every URL kai keeps.
        let mut url_secrets = Vec::new();
        let mut basic_auth = None;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            let user = percent_decode(parsed.username());
            let password = parsed.password().map(|p| {
                url_secrets.push(p.to_string());
                percent_decode(p)
            });
            match &password {
                Some(p) => url_secrets.push(p.clone()),
                // `https://TOKEN@host`: a lone user name is the credential.
                None => {
                    url_secrets.push(parsed.username().to_string());
                    url_secrets.push(user.clone());
                }
            }
            url_secrets.retain(|s| s.len() >= 4);
            basic_auth = Some((user, password));
            // Both setters only fail for URLs that cannot have credentials at all.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        let base_url = if basic_auth.is_some() {
            parsed.as_str().trim_end_matches('/').to_string()
        } else {
            raw_url.to_string()
        };
        let is_openai = host == "api.openai.com";
        let is_azure = settings.kind == ProviderKind::Azure;

        let mut auth_headers = HeaderMap::new();
        if let Some(key) = settings.api_key.as_ref().filter(|k| !k.expose().is_empty()) {
            let (name, value) = if is_azure {
                (
                    reqwest::header::HeaderName::from_static("api-key"),
                    key.expose().to_string(),
                )
            } else {
                (AUTHORIZATION, format!("Bearer {}", key.expose()))
            };
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                LlmError::Auth(
                    "the API key contains characters not allowed in an HTTP header (a stray newline?)"
                        .into(),
                )
            })?;
            value.set_sensitive(true);
            auth_headers.insert(name, value);
        }

        let request_timeout = Duration::from_secs(settings.request_timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .user_agent(concat!("kai/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(request_timeout.min(Duration::from_secs(15)))
            .build()
            .map_err(|e| LlmError::Connection {
                url: redact_url(&base_url),
                attempts: 0,
                message: format!("cannot set up the HTTP client: {}", error_chain(&e)),
            })?;

        Ok(Self {
            http,
            kind: settings.kind,
            base_url,
            basic_auth,
            url_secrets,
            default_model: settings.model.clone(),
            azure_api_version: settings
                .api_version
                .clone()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_string()),
            auth_headers,
            api_key: settings.api_key.clone(),
            include_usage: is_openai || is_azure,
            use_max_completion_tokens: is_openai,
            request_timeout,
            max_retries: settings.max_retries,
            retry_base: Duration::from_millis(settings.retry_base_ms),
        })
    }

    /// Whether requests ask for a usage chunk (`stream_options.include_usage`).
    pub fn include_usage(&self) -> bool {
        self.include_usage
    }

    /// The URL a request for `model` is posted to. A query on the base URL (a gateway's
    /// `?key=`) is kept, after the path.
    pub fn endpoint(&self, model: &str) -> String {
        let (base, query) = match self.base_url.split_once('?') {
            Some((b, q)) => (b.trim_end_matches('/'), Some(q)),
            None => (self.base_url.as_str(), None),
        };
        let mut url = match self.kind {
            ProviderKind::Azure => {
                // Accept the resource URL with or without the `/openai` suffix.
                let root = base.trim_end_matches("/openai");
                format!(
                    "{root}/openai/deployments/{model}/chat/completions?api-version={}",
                    self.azure_api_version
                )
            }
            ProviderKind::Openai if base.ends_with("/chat/completions") => {
                // Someone pasted the full endpoint; use it as is.
                base.to_string()
            }
            ProviderKind::Openai => format!("{base}/chat/completions"),
        };
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(q);
        }
        url
    }

    /// The JSON body sent for `request` (public so callers can inspect or size it).
    pub fn request_body(&self, request: &ChatRequest) -> Result<Value, LlmError> {
        let body = self.build_request(request);
        serde_json::to_value(&body).map_err(|e| LlmError::BadRequest {
            status: 0,
            message: format!("cannot encode the request: {e}"),
        })
    }

    // `max_tokens` is deprecated by OpenAI but is the only limit most compatible servers
    // (and Azure's older API versions) understand.
    #[allow(deprecated)]
    fn build_request(&self, request: &ChatRequest) -> CreateChatCompletionRequest {
        let mut body = CreateChatCompletionRequest {
            model: self.model_for(request).to_string(),
            messages: request.messages.iter().map(to_wire_message).collect(),
            stream: Some(true),
            temperature: request.temperature,
            ..Default::default()
        };
        if self.include_usage {
            body.stream_options = Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            });
        }
        if let Some(max) = request.max_tokens {
            if self.use_max_completion_tokens {
                body.max_completion_tokens = Some(max);
            } else {
                body.max_tokens = Some(max);
            }
        }
        if !request.tools.is_empty() {
            body.tools = Some(
                request
                    .tools
                    .iter()
                    .map(|t| {
                        ChatCompletionTools::Function(ChatCompletionTool {
                            function: FunctionObject {
                                name: t.name.clone(),
                                description: Some(t.description.clone()).filter(|d| !d.is_empty()),
                                parameters: Some(t.parameters.clone()),
                                strict: None,
                            },
                        })
                    })
                    .collect(),
            );
            body.tool_choice = Some(ChatCompletionToolChoiceOption::Mode(
                ToolChoiceOptions::Auto,
            ));
        }
        body
    }

    fn model_for<'a>(&'a self, request: &'a ChatRequest) -> &'a str {
        if request.model.is_empty() {
            &self.default_model
        } else {
            &request.model
        }
    }

    /// Replaces the API key and the base URL's password wherever a server (or an error
    /// chain) repeated them, and redacts every URL in the text.
    fn scrub(&self, text: &str) -> String {
        let mut out = redact_urls_in(text);
        if let Some(k) = self.api_key.as_ref().filter(|k| k.expose().len() >= 4) {
            out = out.replace(k.expose(), "***");
        }
        for secret in &self.url_secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }

    /// The pause before retry number `retry` (1-based): exponential with jitter, never
    /// shorter than what the server asked for, never longer than [`MAX_RETRY_AFTER`].
    fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .retry_base
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(MAX_BACKOFF);
        // "Equal jitter": half fixed, half random, so clients that failed together spread
        // out but none retries immediately.
        let jittered = exp.mul_f64(0.5 + fastrand::f64() * 0.5);
        jittered
            .max(retry_after.unwrap_or_default())
            .min(MAX_RETRY_AFTER)
    }

    /// One HTTP exchange. `emitted` turns true once any text went to `on_text`, after
    /// which the caller must not retry (the user has already seen part of an answer).
    async fn attempt<'f>(
        &self,
        url: &str,
        body: &[u8],
        on_text: &mut (dyn for<'a> FnMut(&'a str) + Send + 'f),
        emitted: &mut bool,
    ) -> Result<ChatResponse, Failure> {
        let started = Instant::now();
        let timeout_secs = self.request_timeout.as_secs();
        let mut builder = self.http.post(url);
        if let Some((user, password)) = &self.basic_auth {
            // Set first: a key's `Authorization` below replaces it.
            builder = builder.basic_auth(user, password.as_ref());
        }
        let send = builder
            .headers(self.auth_headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("accept", "text/event-stream, application/json")
            .body(body.to_vec())
            .send();
        let resp = match tokio::time::timeout(self.request_timeout, send).await {
            Err(_) => return Err(Failure::Timeout(timeout_secs)),
            Ok(Err(e)) if e.is_timeout() => return Err(Failure::Timeout(timeout_secs)),
            Ok(Err(e)) => return Err(Failure::Transport(error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();

        if !resp.status().is_success() {
            let retry_after = retry_after_from(resp.headers());
            let text = self.read_limited(resp).await;
            let (message, code) = extract_error(&text, status);
            return Err(Failure::Status {
                status,
                message,
                code,
                retry_after,
            });
        }

        if content_type.contains("text/html") {
            let text = self.read_limited(resp).await;
            return Err(Failure::Bad(format!(
                "expected an event stream but got an HTML page (is the base URL right?): {}",
                excerpt(&text)
            )));
        }
        if content_type.contains("application/json") {
            // Some servers ignore `stream: true` and answer with one completion object.
            let text = match tokio::time::timeout(self.request_timeout, resp.text()).await {
                Err(_) => return Err(Failure::Timeout(timeout_secs)),
                Ok(Err(e)) => return Err(Failure::Stream(error_chain(&e))),
                Ok(Ok(t)) => t,
            };
            let response = parse_completion(&text)?;
            if !response.content.is_empty() {
                on_text(&response.content);
                *emitted = true;
            }
            return Ok(response);
        }

        let mut stream = resp.bytes_stream();
        let mut decoder = SseDecoder::default();
        let mut assembler = Assembler::default();
        let total_limit = self.request_timeout.max(MAX_STREAM);
        // The idle clock: only content (text, tool-call pieces, usage, a finish reason)
        // resets it. Bytes alone do not, or a server sending `: keep-alive` comments, empty
        // events or whitespace could hold kai until MAX_STREAM.
        let mut last_progress = Instant::now();
        'read: loop {
            let idle_left = self.request_timeout.saturating_sub(last_progress.elapsed());
            let total_left = total_limit.saturating_sub(started.elapsed());
            // Checked before waiting: with bytes always ready, a zero timeout would still
            // hand them over and the loop would never end.
            if total_left.is_zero() {
                return Err(Failure::TooLong(total_limit.as_secs()));
            }
            if idle_left.is_zero() {
                return Err(assembler.idle_failure(timeout_secs));
            }
            let bytes = match tokio::time::timeout(idle_left.min(total_left), stream.next()).await {
                Err(_) if total_left <= idle_left => {
                    return Err(Failure::TooLong(total_limit.as_secs()))
                }
                Err(_) => return Err(assembler.idle_failure(timeout_secs)),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(Failure::Stream(error_chain(&e))),
                Ok(Some(Ok(b))) => b,
            };
            let progress = assembler.progress;
            for data in decoder.feed(&bytes)? {
                if let Some(text) = assembler.push_data(&data)? {
                    on_text(&text);
                    *emitted = true;
                }
                if assembler.done {
                    break 'read;
                }
            }
            if assembler.progress != progress {
                last_progress = Instant::now();
            }
        }
        if !assembler.done {
            for data in decoder.finish()? {
                if let Some(text) = assembler.push_data(&data)? {
                    on_text(&text);
                    *emitted = true;
                }
            }
        }
        assembler.finish()
    }

    /// Reads an error or garbage body, bounded in size and time; failures read as "".
    async fn read_limited(&self, resp: reqwest::Response) -> String {
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let deadline = Instant::now() + self.request_timeout;
        while buf.len() < MAX_ERROR_BODY {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.next()).await {
                Ok(Some(Ok(b))) => buf.extend_from_slice(&b),
                _ => break,
            }
        }
        buf.truncate(MAX_ERROR_BODY);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Turns the last failure into the caller's error; every server-provided text passes
    /// through [`Self::scrub`] here.
    fn to_error(&self, failure: Failure, attempts: u32, url: &str, model: &str) -> LlmError {
        match failure {
            Failure::Status {
                status,
                message,
                code,
                ..
            } => {
                let message = self.scrub(&message);
                match status {
                    401 | 403 => LlmError::Auth(format!("HTTP {status}: {message}")),
                    404 => LlmError::ModelNotFound {
                        model: model.to_string(),
                        message: format!(
                            "{message} (HTTP 404 from {}; if the model exists, check that --base-url ends where the API starts, e.g. .../v1)",
                            redact_url(url)
                        ),
                    },
                    429 => LlmError::RateLimited { attempts, message },
                    400..=499 if mentions_missing_model(&message, code.as_deref()) => {
                        LlmError::ModelNotFound {
                            model: model.to_string(),
                            message,
                        }
                    }
                    400..=499 => LlmError::BadRequest { status, message },
                    500..=599 => LlmError::Server {
                        status,
                        attempts,
                        message,
                    },
                    _ => LlmError::BadResponse(format!("unexpected HTTP {status}: {message}")),
                }
            }
            Failure::InStream(message) => LlmError::Server {
                status: 500,
                attempts,
                message: format!(
                    "the server reported an error mid-stream: {}",
                    self.scrub(&message)
                ),
            },
            Failure::Transport(message) => LlmError::Connection {
                url: redact_url(url),
                attempts,
                message: self.scrub(&message),
            },
            Failure::Stream(message) => LlmError::Connection {
                url: redact_url(url),
                attempts,
                message: format!("the connection broke mid-answer: {}", self.scrub(&message)),
            },
            Failure::Timeout(secs) => LlmError::Timeout(secs),
            Failure::Stalled(secs) => LlmError::Stalled(secs),
            Failure::TooLong(secs) => LlmError::TooLong(secs),
            Failure::Bad(message) => LlmError::BadResponse(self.scrub(&message)),
        }
    }
}

#[async_trait]
impl LlmClient for OpenAiClient {
    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<ChatResponse, LlmError> {
        let model = self.model_for(request).to_string();
        let url = self.endpoint(&model);
        let body =
            serde_json::to_vec(&self.build_request(request)).map_err(|e| LlmError::BadRequest {
                status: 0,
                message: format!("cannot encode the request: {e}"),
            })?;
        // Logged URLs go through `redact_url` like every URL in an error.
        tracing::debug!(
            url = %redact_url(&url),
            model = %model,
            bytes = body.len(),
            "posting a chat request"
        );
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut emitted = false;
            let failure = match self.attempt(&url, &body, on_text, &mut emitted).await {
                Ok(response) => return Ok(response),
                Err(f) => f,
            };
            if emitted || attempts > self.max_retries || !failure.retryable() {
                return Err(self.to_error(failure, attempts, &url, &model));
            }
            let delay = self.backoff(attempts, failure.retry_after());
            tracing::warn!(
                attempt = attempts,
                max_attempts = self.max_retries + 1,
                delay_ms = delay.as_millis() as u64,
                "model endpoint failed ({}); retrying",
                failure.summary()
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// Why one attempt failed, before it is known whether it will be retried.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    Status {
        status: u16,
        message: String,
        /// `error.code` or `error.type` from the body, e.g. `insufficient_quota`.
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// No response: refused, reset, DNS, TLS.
    Transport(String),
    /// The body broke off after a 200.
    Stream(String),
    /// An `{"error": ...}` object inside the event stream.
    InStream(String),
    /// No content before the idle timeout.
    Timeout(u64),
    /// Content stopped for the idle timeout after some had arrived.
    Stalled(u64),
    /// The whole answer took longer than [`MAX_STREAM`].
    TooLong(u64),
    Bad(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            // Quota exhaustion comes as a 429 but waiting will not fix it.
            Failure::Status { status, code, .. } => {
                RETRYABLE_STATUSES.contains(status) && code.as_deref() != Some("insufficient_quota")
            }
            Failure::Transport(_) | Failure::Stream(_) | Failure::InStream(_) => true,
            // A hung server is likely to hang again, and each try costs a full timeout.
            Failure::Timeout(_) | Failure::Stalled(_) | Failure::TooLong(_) | Failure::Bad(_) => {
                false
            }
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
    /// For the retry log line: no bodies, so nothing secret or huge gets logged.
    fn summary(&self) -> String {
        match self {
            Failure::Status { status, .. } => format!("HTTP {status}"),
            Failure::Transport(_) => "cannot connect".into(),
            Failure::Stream(_) => "connection broke".into(),
            Failure::InStream(_) => "error event in stream".into(),
            Failure::Timeout(s) => format!("no answer in {s}s"),
            Failure::Stalled(s) => format!("no content for {s}s"),
            Failure::TooLong(s) => format!("answer longer than {s}s"),
            Failure::Bad(_) => "unreadable response".into(),
        }
    }
}

fn to_wire_message(m: &super::ChatMessage) -> ChatCompletionRequestMessage {
    let text = m.content.clone().unwrap_or_default();
    match m.role {
        Role::System => ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
            content: ChatCompletionRequestSystemMessageContent::Text(text),
            name: None,
        }),
        Role::User => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Text(text),
            name: None,
        }),
        Role::Assistant => {
            let tool_calls: Vec<ChatCompletionMessageToolCalls> = m
                .tool_calls
                .iter()
                .map(|c| {
                    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                        id: c.id.clone(),
                        function: FunctionCall {
                            name: c.name.clone(),
                            arguments: c.arguments.clone(),
                        },
                    })
                })
                .collect();
            // An assistant message needs content unless it carries tool calls.
            let content = if tool_calls.is_empty() || !text.is_empty() {
                Some(ChatCompletionRequestAssistantMessageContent::Text(text))
            } else {
                None
            };
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content,
                tool_calls: Some(tool_calls).filter(|c| !c.is_empty()),
                ..Default::default()
            })
        }
        Role::Tool => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::Text(text),
            tool_call_id: m.tool_call_id.clone().unwrap_or_default(),
        }),
    }
}

/// reqwest's Display stops at the outermost error ("error sending request"); the cause
/// ("Connection refused") is in the source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// `%XX` escapes decoded (URL userinfo is stored encoded); invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(v as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A short single-line excerpt of a body for error messages.
fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "(empty body)".into();
    }
    let mut out: String = one_line.chars().take(EXCERPT_CHARS).collect();
    if one_line.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// The message (and code) of an error body. Handles OpenAI's `{"error":{"message"}}`,
/// `{"error":"text"}` (Ollama, llama.cpp), `{"message"}` and `{"detail"}` (FastAPI-based
/// servers); anything else becomes an excerpt of the body.
fn extract_error(body: &str, status: u16) -> (String, Option<String>) {
    let fallback = || {
        let e = excerpt(body);
        if body.trim().is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            e
        }
    };
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return (fallback(), None);
    };
    let err = v.get("error").unwrap_or(&v);
    let code = ["code", "type"]
        .iter()
        .filter_map(|k| err.get(*k))
        .find_map(|c| match c {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
    let message = match err {
        Value::String(s) => Some(s.clone()),
        _ => ["message", "detail", "msg"]
            .iter()
            .filter_map(|k| err.get(*k))
            .find_map(|m| match m {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            }),
    };
    (message.unwrap_or_else(fallback), code)
}

fn mentions_missing_model(message: &str, code: Option<&str>) -> bool {
    if matches!(code, Some("model_not_found") | Some("DeploymentNotFound")) {
        return true;
    }
    let m = message.to_ascii_lowercase();
    (m.contains("model") || m.contains("deployment"))
        && [
            "does not exist",
            "not found",
            "not exist",
            "unknown model",
            "no such model",
        ]
        .iter()
        .any(|p| m.contains(p))
}

/// `Retry-After` (seconds or HTTP date) or OpenAI's `retry-after-ms`.
fn retry_after_from(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64((ms / 1000.0).min(3600.0)));
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, jiff::Timestamp::now())
}

fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let wait = at.duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Splits a byte stream into SSE `data` payloads. Bytes may be cut anywhere (mid-line,
/// mid-UTF-8 character); only complete lines are decoded.
#[derive(Debug, Default)]
struct SseDecoder {
    buf: Vec<u8>,
    data: Option<String>,
    seen_data: bool,
}

impl SseDecoder {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, Failure> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            self.line(line, &mut out)?;
        }
        if self.buf.len() > MAX_SSE_LINE {
            return Err(Failure::Bad(format!(
                "a line of more than {MAX_SSE_LINE} bytes is not an event stream: {}",
                excerpt(&String::from_utf8_lossy(&self.buf[..EXCERPT_CHARS * 4]))
            )));
        }
        Ok(out)
    }

    /// End of body: a last event need not be followed by a blank line.
    fn finish(&mut self) -> Result<Vec<String>, Failure> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            self.line(line, &mut out)?;
        }
        if let Some(d) = self.data.take() {
            out.push(d);
        }
        Ok(out)
    }

    fn line(&mut self, line: &str, out: &mut Vec<String>) -> Result<(), Failure> {
        if line.is_empty() {
            if let Some(d) = self.data.take() {
                out.push(d);
            }
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.seen_data = true;
                match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
            }
            "event" | "id" | "retry" => {}
            // Before any data, a foreign line means this is not an event stream at all
            // (an HTML page or plain text with a wrong content type); after that, unknown
            // fields are ignored as the SSE spec says.
            _ if !self.seen_data => {
                return Err(Failure::Bad(format!(
                    "expected an event stream but got: {}",
                    excerpt(line)
                )))
            }
            _ => {}
        }
        Ok(())
    }
}

/// Deserializes `null` as the default value (servers send `"choices": null` and such).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireChunk {
    #[serde(deserialize_with = "nullable")]
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireChoice {
    index: Option<u64>,
    /// Streamed chunks carry `delta`; whole completions (and a few servers' chunks)
    /// carry `message`.
    delta: Option<WireDelta>,
    message: Option<WireDelta>,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireDelta {
    /// Usually a string or null; anything else is ignored rather than fatal.
    content: Option<Value>,
    #[serde(deserialize_with = "nullable")]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireToolCall {
    index: Option<u64>,
    id: Option<String>,
    function: Option<WireFunction>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireFunction {
    name: Option<String>,
    /// A string fragment normally; some servers send a whole JSON object.
    arguments: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Accumulates chunks into one [`ChatResponse`].
#[derive(Debug, Default)]
struct Assembler {
    content: String,
    calls: Vec<PartialCall>,
    /// Wire `index` → position in `calls`; remapped when a server reuses an index for a
    /// new call (a different id).
    slots: HashMap<u64, usize>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    chunks: usize,
    done: bool,
    /// Counts chunks that carried content: text, a tool-call piece, usage or a finish
    /// reason. What the idle timeout watches.
    progress: u64,
    /// Text and tool-call bytes so far, against [`MAX_RESPONSE_BYTES`].
    bytes: usize,
}

impl Assembler {
    /// Takes one SSE `data` payload; returns the text to hand to `on_text`, if any.
    fn push_data(&mut self, data: &str) -> Result<Option<String>, Failure> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        if data.is_empty() {
            return Ok(None);
        }
        let chunk: WireChunk = serde_json::from_str(data).map_err(|e| {
            Failure::Bad(format!(
                "a stream chunk is not valid JSON ({e}): {}",
                excerpt(data)
            ))
        })?;
        self.push_chunk(chunk)
    }

    fn push_chunk(&mut self, chunk: WireChunk) -> Result<Option<String>, Failure> {
        if let Some(err) = chunk.error.filter(|e| !e.is_null()) {
            let (message, _) = extract_error(&serde_json::json!({ "error": err }).to_string(), 200);
            return Err(Failure::InStream(message));
        }
        self.chunks += 1;
        let mut progressed = false;
        if let Some(u) = chunk.usage {
            progressed = true;
            let prompt = u.prompt_tokens.unwrap_or(0);
            let completion = u.completion_tokens.unwrap_or(0);
            self.usage = Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: u.total_tokens.unwrap_or(prompt + completion),
            });
        }
        let mut text = String::new();
        // We never ask for n > 1; any other choice would be a server bug, ignore it.
        for choice in chunk
            .choices
            .into_iter()
            .filter(|c| c.index.unwrap_or(0) == 0)
        {
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason);
                progressed = true;
            }
            for delta in [choice.delta, choice.message].into_iter().flatten() {
                if let Some(Value::String(s)) = delta.content {
                    text.push_str(&s);
                }
                for (position, call) in delta.tool_calls.into_iter().enumerate() {
                    progressed |= self.push_call(position as u64, call);
                }
            }
        }
        if progressed || !text.is_empty() {
            self.progress += 1;
        }
        self.content.push_str(&text);
        self.bytes += text.len();
        if self.bytes > MAX_RESPONSE_BYTES {
            return Err(Failure::Bad(format!(
                "the answer grew past {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        Ok(Some(text).filter(|t| !t.is_empty()))
    }

    /// The failure when the idle timeout runs out: nothing at all yet reads as "did not
    /// answer", a stop after some content as a stall.
    fn idle_failure(&self, secs: u64) -> Failure {
        if self.progress == 0 {
            Failure::Timeout(secs)
        } else {
            Failure::Stalled(secs)
        }
    }

    /// Returns whether the delta added anything (a new call, a name, argument text).
    fn push_call(&mut self, position: u64, call: WireToolCall) -> bool {
        let id = call.id.filter(|i| !i.is_empty());
        // Without an index, a known id names its call; otherwise the position in this
        // chunk's list does (whole calls in one chunk, non-streamed completions).
        let key = match (call.index, &id) {
            (Some(i), _) => i,
            (None, Some(id)) => match self.calls.iter().position(|c| &c.id == id) {
                Some(slot) => return self.extend_call(slot, None, call.function),
                None => u64::MAX - self.calls.len() as u64,
            },
            (None, None) => position,
        };
        let (slot, opened) = match self.slots.get(&key) {
            Some(&slot)
                if id.is_none()
                    || self.calls[slot].id.is_empty()
                    || Some(&self.calls[slot].id) == id.as_ref() =>
            {
                (slot, false)
            }
            _ => {
                self.calls.push(PartialCall::default());
                let slot = self.calls.len() - 1;
                self.slots.insert(key, slot);
                (slot, true)
            }
        };
        // Opening a call is progress even before its name arrives.
        self.extend_call(slot, id, call.function) || opened
    }

    fn extend_call(
        &mut self,
        slot: usize,
        id: Option<String>,
        function: Option<WireFunction>,
    ) -> bool {
        let Some(c) = self.calls.get_mut(slot) else {
            return false;
        };
        let mut changed = false;
        let mut added = 0;
        if let Some(id) = id {
            if c.id.is_empty() {
                c.id = id;
                changed = true;
            }
        }
        let Some(f) = function else { return changed };
        if let Some(name) = f.name.filter(|n| !n.is_empty()) {
            // Names come whole in the first delta; some servers repeat them in every
            // delta, which must not double them.
            if c.name.is_empty() {
                added += name.len();
                c.name = name;
                changed = true;
            } else if c.name != name {
                added += name.len();
                c.name.push_str(&name);
                changed = true;
            }
        }
        match f.arguments {
            Some(Value::String(s)) if !s.is_empty() => {
                added += s.len();
                c.arguments.push_str(&s);
                changed = true;
            }
            Some(Value::String(_)) | Some(Value::Null) | None => {}
            Some(other) if c.arguments.is_empty() => {
                c.arguments = other.to_string();
                added += c.arguments.len();
                changed = true;
            }
            Some(_) => {}
        }
        self.bytes += added;
        changed
    }

    fn finish(self) -> Result<ChatResponse, Failure> {
        let has_calls = self.calls.iter().any(|c| !c.name.is_empty());
        if !self.done && self.content.is_empty() && !has_calls && self.finish_reason.is_none() {
            return Err(Failure::Bad(if self.chunks == 0 {
                "the response held no stream chunks at all".into()
            } else {
                "the stream ended before the model produced any output".into()
            }));
        }
        // A stream that just stops (no finish reason, no `[DONE]`) is accepted for text,
        // which compatible servers do; but a tool call whose arguments are not yet valid
        // JSON shows the connection was cut mid-call, and running it would be a guess.
        if !self.done && self.finish_reason.is_none() {
            if let Some(c) = self.calls.iter().find(|c| {
                !c.arguments.trim().is_empty()
                    && serde_json::from_str::<serde::de::IgnoredAny>(&c.arguments).is_err()
            }) {
                return Err(Failure::Stream(format!(
                    "the stream ended in the middle of the {} tool call ({} bytes of arguments, not yet complete JSON)",
                    if c.name.is_empty() { "unnamed" } else { c.name.as_str() },
                    c.arguments.len()
                )));
            }
        }
        let mut tool_calls = Vec::new();
        for (i, c) in self.calls.into_iter().enumerate() {
            if c.name.is_empty() {
                // Nothing can run a call without a name; dropping it lets the turn go on.
                tracing::warn!(
                    index = i,
                    "the model sent a tool call without a name; ignored"
                );
                continue;
            }
            tool_calls.push(ToolCall {
                id: if c.id.is_empty() {
                    // The agent pairs results with calls by id, so every call needs one.
                    format!("call_{}", uuid::Uuid::new_v4().simple())
                } else {
                    c.id
                },
                name: c.name,
                // Tools without parameters often come with "", which is not JSON.
                arguments: if c.arguments.trim().is_empty() {
                    "{}".into()
                } else {
                    c.arguments
                },
            });
        }
        Ok(ChatResponse {
            content: self.content,
            tool_calls,
            finish_reason: self.finish_reason,
            usage: self.usage,
        })
    }
}

/// A non-streamed completion (`application/json`), from servers that ignore `stream`.
fn parse_completion(text: &str) -> Result<ChatResponse, Failure> {
    let chunk: WireChunk = serde_json::from_str(text).map_err(|e| {
        Failure::Bad(format!(
            "the JSON response is not a chat completion ({e}): {}",
            excerpt(text)
        ))
    })?;
    let mut a = Assembler::default();
    a.push_chunk(chunk)?;
    a.done = true;
    a.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{ChatMessage, ToolSpec};

    /// Feeds raw body pieces through the decoder and assembler, as `attempt` does.
    fn assemble(pieces: &[&str]) -> (Result<ChatResponse, Failure>, Vec<String>) {
        let mut decoder = SseDecoder::default();
        let mut a = Assembler::default();
        let mut texts = Vec::new();
        let mut run = || -> Result<ChatResponse, Failure> {
            'outer: for p in pieces {
                for d in decoder.feed(p.as_bytes())? {
                    if let Some(t) = a.push_data(&d)? {
                        texts.push(t);
                    }
                    if a.done {
                        break 'outer;
                    }
                }
            }
            if !a.done {
                for d in decoder.finish()? {
                    if let Some(t) = a.push_data(&d)? {
                        texts.push(t);
                    }
                }
            }
            std::mem::take(&mut a).finish()
        };
        let r = run();
        (r, texts)
    }

    fn content_chunk(s: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices":[{"index":0,"delta":{"content":s},"finish_reason":null}]})
        )
    }

    #[test]
    fn text_deltas_are_joined_and_emitted_one_by_one() {
        let body = [
            content_chunk("Hel"),
            content_chunk("lo wor"),
            content_chunk("ld"),
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".into(),
        ]
        .concat();
        // Cut the body at every 7 bytes to exercise lines split across reads.
        let pieces: Vec<&str> = body
            .as_bytes()
            .chunks(7)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let (r, texts) = assemble(&pieces);
        let r = r.unwrap();
        assert_eq!(r.content, "Hello world");
        assert_eq!(texts, vec!["Hel", "lo wor", "ld"]);
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert_eq!(r.usage, None);
        assert!(r.tool_calls.is_empty());
    }

    #[test]
    fn utf8_split_across_reads_survives() {
        let body = content_chunk("héllo ✓");
        let bytes = body.as_bytes();
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for b in bytes.chunks(3) {
            out.extend(decoder.feed(b).unwrap());
        }
        let mut a = Assembler::default();
        for d in out {
            a.push_data(&d).unwrap();
        }
        assert_eq!(a.finish().unwrap().content, "héllo ✓");
    }

    #[test]
    fn tool_call_deltas_assemble_by_index_in_parallel() {
        let body = r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_pod","arguments":""}}]}}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_events","arguments":"{\"ns"}}]}}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"name\":"}}]}}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"web\"}"}}]}}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\":\"prod\"}"}}]}}]}

data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: [DONE]

"#;
        let (r, texts) = assemble(&[body]);
        let r = r.unwrap();
        assert!(texts.is_empty());
        assert_eq!(
            r.tool_calls,
            vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "get_pod".into(),
                    arguments: r#"{"name":"web"}"#.into()
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "get_events".into(),
                    arguments: r#"{"ns":"prod"}"#.into()
                },
            ]
        );
        assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
    }

    #[test]
    fn whole_tool_calls_in_one_chunk_without_index_or_id() {
        let body = r#"data: {"choices":[{"delta":{"tool_calls":[{"function":{"name":"a","arguments":{"x":1}}},{"function":{"name":"b","arguments":""}}]},"finish_reason":"tool_calls"}]}
"#;
        let (r, _) = assemble(&[body]);
        let r = r.unwrap();
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].name, "a");
        assert_eq!(r.tool_calls[0].arguments, r#"{"x":1}"#);
        assert_eq!(
            r.tool_calls[1].arguments, "{}",
            "empty arguments become {{}}"
        );
        assert!(r.tool_calls[0].id.starts_with("call_"));
        assert_ne!(r.tool_calls[0].id, r.tool_calls[1].id);
    }

    #[test]
    fn reused_index_with_a_new_id_is_a_new_call() {
        let body = r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x1","function":{"name":"a","arguments":"{}"}}]}}]}

data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x2","function":{"name":"b","arguments":"{}"}}]}}]}

data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x2","function":{"name":"b","arguments":""}}]}}]}

"#;
        let (r, _) = assemble(&[body]);
        let r = r.unwrap();
        let names: Vec<_> = r.tool_calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"], "repeated name not doubled");
        assert_eq!(r.tool_calls[1].id, "x2");
    }

    #[test]
    fn quirks_comments_events_no_finish_reason_no_done() {
        let body = ": keep-alive\nevent: message\nid: 1\ndata:{\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"ok\"}}],\"extra\":{\"a\":1}}\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null},\"finish_reason\":\"\"}]}\n\n";
        let (r, texts) = assemble(&[body]);
        let r = r.unwrap();
        assert_eq!(r.content, "ok");
        assert_eq!(texts, ["ok"]);
        assert_eq!(r.finish_reason, None);
    }

    #[test]
    fn final_usage_chunk_with_empty_choices() {
        let body = [
            content_chunk("hi"),
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n".into(),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let (r, _) = assemble(&[&body]);
        assert_eq!(
            r.unwrap().usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 3,
                total_tokens: 15
            })
        );
        // `usage: null` on ordinary chunks (OpenAI with include_usage) is not usage.
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n";
        assert_eq!(assemble(&[body]).0.unwrap().usage, None);
        // A server that sends no total gets one computed.
        let body = "data: {\"choices\":null,\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        assert_eq!(assemble(&[body]).0.unwrap().usage.unwrap().total_tokens, 3);
    }

    #[test]
    fn garbage_is_a_bad_response() {
        let (r, _) = assemble(&["<!DOCTYPE html>\n<html><body>Login</body></html>\n"]);
        assert!(matches!(r, Err(Failure::Bad(m)) if m.contains("DOCTYPE")));
        let (r, _) = assemble(&["data: {not json\n\n"]);
        assert!(matches!(r, Err(Failure::Bad(m)) if m.contains("not valid JSON")));
        let (r, _) = assemble(&[""]);
        assert!(matches!(r, Err(Failure::Bad(_))));
        let (r, _) = assemble(&["data: [DONE]\n\n"]);
        assert_eq!(
            r.unwrap(),
            ChatResponse::default(),
            "an empty but finished answer is fine"
        );
    }

    #[test]
    fn error_event_in_stream() {
        let (r, _) = assemble(&["data: {\"error\":{\"message\":\"overloaded\",\"code\":503}}\n\n"]);
        assert_eq!(r, Err(Failure::InStream("overloaded".into())));
    }

    #[test]
    fn non_streamed_completion_is_accepted() {
        let r = parse_completion(r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"id":"c2","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#).unwrap();
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[1].id, "c2");
        assert_eq!(r.usage.unwrap().total_tokens, 3);
    }

    #[test]
    fn error_messages_are_extracted() {
        let (m, c) = extract_error(
            r#"{"error":{"message":"Invalid model","type":"invalid_request_error","code":"model_not_found"}}"#,
            400,
        );
        assert_eq!(m, "Invalid model");
        assert_eq!(c.as_deref(), Some("model_not_found"));
        assert_eq!(
            extract_error(
                r#"{"error":"model \"x\" not found, try pulling it first"}"#,
                404
            )
            .0,
            "model \"x\" not found, try pulling it first"
        );
        assert_eq!(
            extract_error(r#"{"detail":"Not Found"}"#, 404).0,
            "Not Found"
        );
        assert_eq!(extract_error("", 502).0, "HTTP 502 with an empty body");
        assert_eq!(
            extract_error("<html>  bad\n gateway</html>", 502).0,
            "<html> bad gateway</html>"
        );
        assert!(mentions_missing_model(
            "The model `gpt-9` does not exist",
            None
        ));
        assert!(!mentions_missing_model("context length exceeded", None));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:27:58Z".parse().unwrap();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 2.5 ", now),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    fn settings(base: &str) -> LlmSettings {
        let mut s = LlmSettings::local(base, "m");
        s.retry_base_ms = 100;
        s
    }

    #[test]
    fn backoff_grows_honours_retry_after_and_is_capped() {
        let c = OpenAiClient::new(&settings("http://localhost:1/v1")).unwrap();
        for _ in 0..20 {
            let d1 = c.backoff(1, None);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = c.backoff(3, None);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
        }
        assert_eq!(
            c.backoff(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            c.backoff(1, Some(Duration::from_secs(3600))),
            MAX_RETRY_AFTER
        );
        assert!(c.backoff(40, None) <= MAX_BACKOFF);
    }

    fn request() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![
                ChatMessage::system("sys"),
                ChatMessage::user("why?"),
                ChatMessage::assistant_tool_calls(
                    None,
                    vec![ToolCall {
                        id: "call_1".into(),
                        name: "get_pod".into(),
                        arguments: "{}".into(),
                    }],
                ),
                ChatMessage::tool_result("call_1", "pod is fine"),
            ],
            tools: vec![ToolSpec {
                name: "get_pod".into(),
                description: "Get a pod".into(),
                parameters: serde_json::json!({"type":"object","properties":{}}),
            }],
            temperature: Some(0.2),
            max_tokens: Some(100),
        }
    }

    #[test]
    fn request_body_for_a_compatible_server() {
        let c = OpenAiClient::new(&settings("http://localhost:11434/v1/")).unwrap();
        assert_eq!(
            c.endpoint("m"),
            "http://localhost:11434/v1/chat/completions"
        );
        let b = c.request_body(&request()).unwrap();
        assert_eq!(b["model"], "m");
        assert_eq!(b["stream"], true);
        assert!(
            b.get("stream_options").is_none(),
            "compatible servers may reject it"
        );
        assert_eq!(b["max_tokens"], 100);
        assert_eq!(b["tool_choice"], "auto");
        assert_eq!(b["tools"][0]["type"], "function");
        assert_eq!(b["tools"][0]["function"]["name"], "get_pod");
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][2]["tool_calls"][0]["type"], "function");
        assert_eq!(b["messages"][2]["tool_calls"][0]["id"], "call_1");
        assert!(b["messages"][2].get("content").is_none());
        assert_eq!(b["messages"][3]["role"], "tool");
        assert_eq!(b["messages"][3]["tool_call_id"], "call_1");
        assert_eq!(b["messages"][3]["content"], "pod is fine");

        let mut no_tools = request();
        no_tools.tools.clear();
        let b = c.request_body(&no_tools).unwrap();
        assert!(b.get("tools").is_none() && b.get("tool_choice").is_none());
    }

    #[test]
    fn request_body_and_endpoint_for_openai_and_azure() {
        let mut s = settings("https://api.openai.com/v1");
        s.api_key = Some(ApiKey::new("sk-secret"));
        let c = OpenAiClient::new(&s).unwrap();
        assert!(c.include_usage());
        let b = c.request_body(&request()).unwrap();
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_completion_tokens"], 100);
        assert!(!format!("{c:?}").contains("sk-secret"));

        s.kind = ProviderKind::Azure;
        s.base_url = "https://res.openai.azure.com/".into();
        let c = OpenAiClient::new(&s).unwrap();
        assert!(c.include_usage());
        assert_eq!(
            c.endpoint("gpt-4o"),
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        assert!(c.auth_headers.contains_key("api-key"));
        assert!(!c.auth_headers.contains_key(AUTHORIZATION));
    }

    #[test]
    fn only_content_counts_as_progress() {
        let mut decoder = SseDecoder::default();
        let mut a = Assembler::default();
        let mut feed = |a: &mut Assembler, text: &str| {
            let before = a.progress;
            for d in decoder.feed(text.as_bytes()).unwrap() {
                a.push_data(&d).unwrap();
            }
            a.progress != before
        };
        for idle in [
            ": keep-alive\n\n",
            "\n\n",
            "data: \n\n",
            "event: ping\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":null}],\"usage\":null}\n\n",
            "data: {\"choices\":[]}\n\n",
        ] {
            assert!(!feed(&mut a, idle), "{idle:?} is not progress");
        }
        for content in [
            content_chunk("x"),
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}}]}\n\n".into(),
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n".into(),
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n".into(),
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n".into(),
        ] {
            assert!(feed(&mut a, &content), "{content:?} is progress");
        }
        // The same tool-call piece with nothing new (empty arguments) is not.
        assert!(!feed(
            &mut a,
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\"}}]}}]}\n\n"
        ));
    }

    #[test]
    fn a_tool_call_cut_mid_arguments_is_a_broken_stream() {
        let cut = r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"get_pod","arguments":"{\"name\": \"we"}}]}}]}
"#;
        let (r, _) = assemble(&[cut]);
        assert!(
            matches!(&r, Err(Failure::Stream(m)) if m.contains("middle of the get_pod tool call")),
            "{r:?}"
        );
        // With a finish reason the server says it is complete: the agent's argument
        // check reports the bad JSON to the model instead.
        let finished = format!(
            "{cut}\ndata: {{\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"length\"}}]}}\n\n"
        );
        let (r, _) = assemble(&[&finished]);
        assert_eq!(r.unwrap().finish_reason.as_deref(), Some("length"));
    }

    #[test]
    fn runaway_answers_are_cut_off() {
        let mut a = Assembler::default();
        let piece = "x".repeat(1024 * 1024);
        let mut result = Ok(None);
        for _ in 0..(MAX_RESPONSE_BYTES / piece.len() + 1) {
            result = a.push_data(&content_chunk(&piece)["data: ".len()..]);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(Failure::Bad(m)) if m.contains("grew past")));
    }

    #[test]
    fn url_credentials_become_basic_auth_and_leave_every_url() {
        let s = settings("https://kai:s3cr%40t@gw.example/v1/?key=k3y-value");
        let c = OpenAiClient::new(&s).unwrap();
        assert_eq!(
            c.basic_auth,
            Some(("kai".to_string(), Some("s3cr@t".to_string())))
        );
        assert_eq!(
            c.endpoint("m"),
            "https://gw.example/v1/chat/completions?key=k3y-value"
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr") && !dbg.contains("k3y-value"), "{dbg}");
        let e = c.to_error(
            Failure::Transport(format!(
                "error sending request for url ({}): s3cr@t rejected",
                c.endpoint("m")
            )),
            1,
            &c.endpoint("m"),
            "m",
        );
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("s3cr") && !text.contains("k3y-value"),
            "{text}"
        );
        assert!(
            text.contains("gw.example/v1/chat/completions?key=***"),
            "{text}"
        );

        let c = OpenAiClient::new(&settings("https://tok-1234@gw.example/v1")).unwrap();
        assert_eq!(c.basic_auth, Some(("tok-1234".to_string(), None)));
        let e = c.to_error(
            Failure::Status {
                status: 401,
                message: "bad token tok-1234".into(),
                code: None,
                retry_after: None,
            },
            1,
            &c.endpoint("m"),
            "m",
        );
        assert!(!e.to_string().contains("tok-1234"), "{e}");
        assert!(!format!("{c:?}").contains("tok-1234"));

        let mut az = settings("https://res.openai.azure.com?sig=abc");
        az.kind = ProviderKind::Azure;
        assert_eq!(
            OpenAiClient::new(&az).unwrap().endpoint("d"),
            "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21&sig=abc"
        );
    }

    #[test]
    fn key_is_scrubbed_from_server_messages() {
        let mut s = settings("http://localhost:1/v1");
        s.api_key = Some(ApiKey::new("sk-secret-123"));
        let c = OpenAiClient::new(&s).unwrap();
        let e = c.to_error(
            Failure::Status {
                status: 401,
                message: "Incorrect API key provided: sk-secret-123".into(),
                code: None,
                retry_after: None,
            },
            1,
            "http://localhost:1/v1/chat/completions",
            "m",
        );
        assert!(!e.to_string().contains("sk-secret-123"), "{e}");
        assert!(matches!(e, LlmError::Auth(_)));
    }
}
