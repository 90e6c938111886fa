//! OpenAI-compatible chat client: OpenAI itself, Azure OpenAI, and the many servers that
//! speak the same wire format (Ollama, llama.cpp, vLLM, LM Studio, Gemini's endpoint).
//!
//! This file is the transport: the endpoint and its credentials, one HTTP exchange with
//! its timeouts, and the retry loop around it. The rest is split by concern:
//! [`crate::wire`] (the request and response types), [`crate::sse`] (event-stream
//! framing), [`crate::stream`] (chunks into a response), [`crate::retry`] (what is tried
//! again, and when) and [`crate::failure`] (what a failure tells the caller).
//!
//! Transport is plain reqwest rather than async-openai's client, because we need the
//! HTTP status, `Retry-After` and the raw body to give useful errors, and because
//! compatible servers bend the chunk format in ways a strict parser rejects.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use crate::failure::{error_chain, excerpt, extract_error, Failure};
use crate::retry::{retry_after_from, RetryPolicy};
use crate::settings::{ApiKey, LlmSettings, ProviderKind};
use crate::stream::{parse_completion, Assembler};
use crate::wire::{Dialect, Request};
use crate::{redact_url, redact_urls_in, ChatRequest, ChatResponse, LlmClient, LlmError};

/// Azure's GA API version used when the profile names none.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// However slowly a (local) model streams, one answer may not take longer than this (or
/// the request timeout, if larger). Keep-alives are already bounded by the idle timeout;
/// this bounds a server that trickles one real token just often enough.
const MAX_STREAM: Duration = Duration::from_secs(600);
/// Error bodies are read up to this size; the message is all we need.
const MAX_ERROR_BODY: usize = 64 * 1024;

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
    /// How the request is spelled for this endpoint.
    dialect: Dialect,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so the key can never reach a log through `{:?}`.
        f.debug_struct("OpenAiClient")
            .field("kind", &self.kind)
            .field("base_url", &redact_url(&self.base_url))
            .field("model", &self.default_model)
            .field("include_usage", &self.dialect.include_usage)
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
            dialect: Dialect {
                include_usage: is_openai || is_azure,
                max_completion_tokens: is_openai,
            },
            request_timeout,
            retry: RetryPolicy {
                max_retries: settings.max_retries,
                base: Duration::from_millis(settings.retry_base_ms),
            },
        })
    }

    /// Whether requests ask for a usage chunk (`stream_options.include_usage`).
    pub fn include_usage(&self) -> bool {
        self.dialect.include_usage
    }

    /// The URL a request for `model` is posted to. A query on the base URL (a gateway's
    /// `?key=`) is kept, after the path.
    pub fn endpoint(&self, model: &str) -> String {
        self.operation_url(model, "chat/completions")
    }

    /// The URL of the API operation `op` (`chat/completions`, `embeddings`) for `model`:
    /// `{base}/{op}`, or Azure's deployment path. A pasted full chat endpoint as the base
    /// loses that suffix first; a query on the base URL is kept, after the path.
    pub(crate) fn operation_url(&self, model: &str, op: &str) -> String {
        let (base, query) = match self.base_url.split_once('?') {
            Some((b, q)) => (b.trim_end_matches('/'), Some(q)),
            None => (self.base_url.as_str(), None),
        };
        let mut url = match self.kind {
            ProviderKind::Azure => {
                // Accept the resource URL with or without the `/openai` suffix.
                let root = base.trim_end_matches("/openai");
                format!(
                    "{root}/openai/deployments/{model}/{op}?api-version={}",
                    self.azure_api_version
                )
            }
            ProviderKind::Openai => {
                let base = base.strip_suffix("/chat/completions").unwrap_or(base);
                format!("{base}/{op}")
            }
        };
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(q);
        }
        url
    }

    /// The JSON body sent for `request` (public so callers can inspect or size it).
    pub fn request_body(&self, request: &ChatRequest) -> Result<Value, LlmError> {
        serde_json::to_value(self.wire_request(request)).map_err(encode_error)
    }

    fn wire_request<'a>(&'a self, request: &'a ChatRequest) -> Request<'a> {
        Request::new(request, self.model_for(request), self.dialect)
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

    /// Turns the last failure into the caller's error, scrubbing every server text.
    fn to_error(&self, failure: Failure, attempts: u32, url: &str, model: &str) -> LlmError {
        failure.into_error(attempts, url, model, |text| self.scrub(text))
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
        let resp = self
            .post(url, body, Some("text/event-stream, application/json"))
            .await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();

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

        let mut events = std::pin::pin!(crate::sse::events(resp.bytes_stream()));
        let mut assembler = Assembler::default();
        let total_limit = self.request_timeout.max(MAX_STREAM);
        // The idle clock: only content (text, tool-call pieces, usage, a finish reason)
        // resets it. Bytes alone do not, or a server sending `: keep-alive` comments, empty
        // events or whitespace could hold kai until MAX_STREAM; those produce no event or
        // an event that is no progress.
        let mut last_progress = Instant::now();
        while !assembler.is_done() {
            let idle_left = self.request_timeout.saturating_sub(last_progress.elapsed());
            let total_left = total_limit.saturating_sub(started.elapsed());
            // Checked before waiting: with events always ready, a zero timeout would
            // still hand them over and the loop would never end.
            if total_left.is_zero() {
                return Err(Failure::TooLong(total_limit.as_secs()));
            }
            if idle_left.is_zero() {
                return Err(assembler.idle_failure(timeout_secs));
            }
            let event = match tokio::time::timeout(idle_left.min(total_left), events.next()).await {
                Err(_) if total_left <= idle_left => {
                    return Err(Failure::TooLong(total_limit.as_secs()))
                }
                Err(_) => return Err(assembler.idle_failure(timeout_secs)),
                Ok(None) => break,
                Ok(Some(event)) => event?,
            };
            let progress = assembler.progress();
            if let Some(text) =
                assembler.push_event(event.event.as_deref(), event.data.as_deref())?
            {
                on_text(&text);
                *emitted = true;
            }
            if assembler.progress() != progress {
                last_progress = Instant::now();
            }
        }
        assembler.finish()
    }

    /// POSTs the JSON `body` to `url` with the endpoint's credentials (and `accept`), within
    /// the request timeout; an error status is a failure, its body read for the message.
    pub(crate) async fn post(
        &self,
        url: &str,
        body: &[u8],
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Failure> {
        let timeout_secs = self.request_timeout.as_secs();
        let mut builder = self.http.post(url);
        if let Some((user, password)) = &self.basic_auth {
            // Set first: a key's `Authorization` below replaces it.
            builder = builder.basic_auth(user, password.as_ref());
        }
        builder = builder
            .headers(self.auth_headers.clone())
            .header(CONTENT_TYPE, "application/json");
        if let Some(accept) = accept {
            builder = builder.header("accept", accept);
        }
        let send = builder.body(body.to_vec()).send();
        let resp = match tokio::time::timeout(self.request_timeout, send).await {
            Err(_) => return Err(Failure::Timeout(timeout_secs)),
            Ok(Err(e)) if e.is_timeout() => return Err(Failure::Timeout(timeout_secs)),
            Ok(Err(e)) => return Err(Failure::Transport(error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let retry_after = retry_after_from(resp.headers(), jiff::Timestamp::now());
            let text = self.read_limited(resp).await;
            let (message, code) = extract_error(&text, status);
            return Err(Failure::Status {
                status,
                message,
                code,
                retry_after,
            });
        }
        Ok(resp)
    }

    /// After `failure`, the `attempts`th: how long to wait before trying again, or the
    /// caller's error (for `url` and `model`) when the retry policy gives up. Once any of
    /// the answer was `emitted` to the user, nothing is retried.
    pub(crate) fn retry_after(
        &self,
        failure: Failure,
        attempts: u32,
        emitted: bool,
        url: &str,
        model: &str,
    ) -> Result<Duration, LlmError> {
        let Some(delay) = self
            .retry
            .next_delay(attempts, &failure, emitted, fastrand::f64())
        else {
            return Err(self.to_error(failure, attempts, url, model));
        };
        tracing::warn!(
            attempt = attempts,
            max_attempts = self.retry.max_retries + 1,
            delay_ms = delay.as_millis() as u64,
            "model endpoint failed ({}); retrying",
            failure.summary()
        );
        Ok(delay)
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
        let body = serde_json::to_vec(&self.wire_request(request)).map_err(encode_error)?;
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
            match self.attempt(&url, &body, on_text, &mut emitted).await {
                Ok(response) => return Ok(response),
                Err(f) => {
                    tokio::time::sleep(self.retry_after(f, attempts, emitted, &url, &model)?).await
                }
            }
        }
    }
}

pub(crate) fn encode_error(e: serde_json::Error) -> LlmError {
    LlmError::BadRequest {
        status: 0,
        message: format!("cannot encode the request: {e}"),
    }
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

// Embeddings share this client's credentials and retry loop, so they live beneath it.
#[path = "embeddings.rs"]
pub mod embeddings;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "openai_tests.rs"]
mod tests;
