//! A scripted OpenAI-compatible chat-completions server on loopback.
//!
//! Tests hand [`MockLlm::start`] a script of [`Reply`]s; every `POST .../chat/completions`
//! (any path, in fact: the Azure deployment path works too) is recorded and answered with
//! the next reply. Streaming requests (`"stream": true`) get SSE chunks shaped like
//! OpenAI's, deliberately split mid-word and mid-argument so clients must reassemble them;
//! other requests get one JSON completion.
//!
//! `POST .../embeddings` is answered outside the script with deterministic vectors
//! ([`embedding_for`]), and recorded like every request ([`MockLlm::embedding_requests`]).
//!
//! The server runs on its own thread with its own Tokio runtime, so it works from plain
//! `#[test]`s, `#[tokio::test]`s (even current-thread ones that block) and benches alike,
//! and a hanging reply can never starve the test's runtime. Dropping [`MockLlm`] stops it
//! and closes every open connection.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::{Channel, Sender};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// The message of the 500 answered once the script has run out.
pub const EXHAUSTED: &str = "mock-llm script exhausted";

/// The SSE comment [`Reply::KeepAliveOnly`] and [`Reply::KeepAliveAfter`] repeat.
pub const KEEP_ALIVE: &str = ": keep-alive\n\n";
/// How often heartbeats are sent: far below any timeout a test uses.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);

/// Token counts a streamed reply reports in a final `usage` chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Sent as `prompt_tokens_details.cached_tokens`, as OpenAI reports prompt caching;
    /// `None` sends no `prompt_tokens_details` at all, as most compatible servers do.
    pub cached_tokens: Option<u64>,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            cached_tokens: None,
        }
    }
    /// The same counts, `cached` of the prompt tokens reported as read from the cache.
    pub fn with_cached(self, cached: u64) -> Self {
        Self {
            cached_tokens: Some(cached),
            ..self
        }
    }
    fn to_json(self) -> Value {
        let mut v = json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        });
        if let Some(cached) = self.cached_tokens {
            v["prompt_tokens_details"] = json!({"cached_tokens": cached, "audio_tokens": 0});
        }
        v
    }
}

/// A function computing the reply from the request body.
pub type DynamicReply = Box<dyn Fn(&Value) -> Reply + Send + Sync>;

/// One scripted answer.
pub enum Reply {
    /// Streamed as several content chunks, split mid-word, ending with `finish_reason: stop`.
    Text(String),
    /// Tool calls `(name, arguments JSON text)` with ids `call_1`, `call_2`, ... (numbered
    /// across the server's lifetime, so ids stay unique over a conversation). Each call's
    /// id and name come only in its first delta; the arguments are split across several.
    ToolCalls(Vec<(String, String)>),
    /// Some text first, then tool calls, as models often do.
    TextAndToolCalls(String, Vec<(String, String)>),
    /// Text followed by a usage chunk with empty `choices`.
    TextAndUsage(String, Usage),
    /// Any streamed reply with a usage chunk attached at the end.
    WithUsage(Box<Reply>, Usage),
    /// An HTTP error: status, body (sent as JSON when it parses, else as text) and an
    /// optional `Retry-After` header value (seconds or an HTTP date).
    Status(u16, String, Option<String>),
    /// A 200 with a `text/html` body: a proxy's login page, a wrong base URL, ...
    Garbage(String),
    /// A 200 `text/event-stream` whose body is sent exactly as given (quirk tests).
    RawSse(String),
    /// Accepts the request and never answers (timeout tests).
    Hang,
    /// Streams the text's chunks, then keeps the connection open and silent (idle-timeout
    /// tests).
    StallAfter(String),
    /// A 200 event stream that sends nothing but `: keep-alive` comments, every
    /// [`HEARTBEAT_EVERY`], for ever: a server that looks alive and never answers.
    KeepAliveOnly,
    /// Streams the text's chunks, then only `: keep-alive` comments for ever.
    KeepAliveAfter(String),
    /// Streams the text's chunks, then repeats the given raw bytes for ever (every
    /// [`HEARTBEAT_EVERY`]): empty events, whitespace, role-only deltas, ...
    HeartbeatAfter(String, String),
    /// Text whose chunks carry no `finish_reason` key at all, as some servers do.
    NoFinishReason(String),
    /// Waits before answering with the inner reply.
    Delayed(Duration, Box<Reply>),
    /// Streams the inner reply with a pause between SSE events.
    Slow(Duration, Box<Reply>),
    /// Computes the reply from the request body.
    Dynamic(DynamicReply),
}

impl Reply {
    /// `Reply::Text` from anything string-like.
    pub fn text(s: impl Into<String>) -> Self {
        Reply::Text(s.into())
    }
    /// One tool call.
    pub fn tool_call(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Reply::ToolCalls(vec![(name.into(), arguments.into())])
    }
    /// An OpenAI-style error body `{"error":{"message":..}}` with the given status.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        let body = json!({"error": {"message": message.into(), "type": "mock_error"}});
        Reply::Status(status, body.to_string(), None)
    }
    /// A 429 with `Retry-After: secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let body = json!({"error": {"message": "Rate limit reached (mock)", "type": "requests"}});
        Reply::Status(429, body.to_string(), Some(retry_after_secs.to_string()))
    }
    /// A reply computed from the request body.
    pub fn dynamic(f: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Self {
        Reply::Dynamic(Box::new(f))
    }
    /// Attach a usage chunk to this (streamed) reply.
    pub fn with_usage(self, usage: Usage) -> Self {
        Reply::WithUsage(Box::new(self), usage)
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Text(t) => f.debug_tuple("Text").field(t).finish(),
            Reply::ToolCalls(c) => f.debug_tuple("ToolCalls").field(c).finish(),
            Reply::TextAndToolCalls(t, c) => {
                f.debug_tuple("TextAndToolCalls").field(t).field(c).finish()
            }
            Reply::TextAndUsage(t, u) => f.debug_tuple("TextAndUsage").field(t).field(u).finish(),
            Reply::WithUsage(r, u) => f.debug_tuple("WithUsage").field(r).field(u).finish(),
            Reply::Status(s, b, r) => f.debug_tuple("Status").field(s).field(b).field(r).finish(),
            Reply::Garbage(b) => f.debug_tuple("Garbage").field(b).finish(),
            Reply::RawSse(b) => f.debug_tuple("RawSse").field(b).finish(),
            Reply::Hang => f.write_str("Hang"),
            Reply::StallAfter(t) => f.debug_tuple("StallAfter").field(t).finish(),
            Reply::KeepAliveOnly => f.write_str("KeepAliveOnly"),
            Reply::KeepAliveAfter(t) => f.debug_tuple("KeepAliveAfter").field(t).finish(),
            Reply::HeartbeatAfter(t, b) => {
                f.debug_tuple("HeartbeatAfter").field(t).field(b).finish()
            }
            Reply::NoFinishReason(t) => f.debug_tuple("NoFinishReason").field(t).finish(),
            Reply::Delayed(d, r) => f.debug_tuple("Delayed").field(d).field(r).finish(),
            Reply::Slow(d, r) => f.debug_tuple("Slow").field(d).field(r).finish(),
            Reply::Dynamic(_) => f.write_str("Dynamic(..)"),
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as JSON, or a JSON string holding the raw text when it is not JSON.
    pub body: Value,
    /// The body exactly as it arrived: `body` forgets key order and spacing, and a
    /// byte-for-byte comparison (the prompt-cache prefix) needs them.
    pub raw: String,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct State {
    /// When set, `/embeddings` answers this HTTP status instead of vectors.
    embeddings_error: Mutex<Option<u16>>,
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    next_call_id: AtomicU64,
    next_completion_id: AtomicU64,
}

/// Poisoning only means another handler panicked; the data is still usable, and a test
/// helper should keep answering rather than cascade the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running mock server; stops when dropped.
pub struct MockLlm {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for MockLlm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockLlm").field("addr", &self.addr).finish()
    }
}

impl MockLlm {
    /// Starts the server on `127.0.0.1` with a random port. Panics (it is a test helper)
    /// only if the loopback socket or the runtime cannot be created.
    pub fn start(script: Vec<Reply>) -> MockLlm {
        let listener = match std::net::TcpListener::bind("127.0.0.1:0") {
            Ok(l) => l,
            Err(e) => panic!("mock-llm: cannot bind 127.0.0.1:0: {e}"),
        };
        if let Err(e) = listener.set_nonblocking(true) {
            panic!("mock-llm: cannot make the listener non-blocking: {e}");
        }
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("mock-llm: no local address: {e}"),
        };
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("mock-llm: cannot build a Tokio runtime: {e}"),
        };
        let state = Arc::new(State {
            embeddings_error: Mutex::new(None),
            script: Mutex::new(script.into()),
            requests: Mutex::new(Vec::new()),
            next_call_id: AtomicU64::new(1),
            next_completion_id: AtomicU64::new(1),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("mock-llm".into())
            .spawn(move || runtime.block_on(serve(listener, thread_state, rx)));
        let thread = match thread {
            Ok(t) => t,
            Err(e) => panic!("mock-llm: cannot spawn the server thread: {e}"),
        };
        MockLlm {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/v1`, what a client takes as its base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT`, for clients (Azure) that add their own path.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request body received, in order.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.state.requests)
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }

    /// The chat requests' bodies exactly as they arrived, in order.
    pub fn raw_chat_requests(&self) -> Vec<String> {
        lock(&self.state.requests)
            .iter()
            .filter(|r| {
                !r.path
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .ends_with("/embeddings")
            })
            .map(|r| r.raw.clone())
            .collect()
    }

    /// Every request with method, path and headers, in order.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// How many requests arrived so far.
    pub fn request_count(&self) -> usize {
        lock(&self.state.requests).len()
    }

    /// How many scripted replies are still unused.
    pub fn remaining(&self) -> usize {
        lock(&self.state.script).len()
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: Reply) {
        lock(&self.state.script).push_back(reply);
    }

    /// The requests to `.../embeddings`, in order.
    pub fn embedding_requests(&self) -> Vec<Value> {
        lock(&self.state.requests)
            .iter()
            .filter(|r| {
                r.path
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .ends_with("/embeddings")
            })
            .map(|r| r.body.clone())
            .collect()
    }

    /// The requests that were not to `.../embeddings` (the chat completions), in order.
    pub fn chat_requests(&self) -> Vec<Value> {
        lock(&self.state.requests)
            .iter()
            .filter(|r| {
                !r.path
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .ends_with("/embeddings")
            })
            .map(|r| r.body.clone())
            .collect()
    }

    /// From now on `/embeddings` answers HTTP `status` (`None`: vectors again).
    pub fn fail_embeddings(&self, status: Option<u16>) {
        *lock(&self.state.embeddings_error) = status;
    }
}

/// Dimension of the mock's embedding vectors.
pub const EMBEDDING_DIM: usize = 64;

/// A deterministic vector for `text`: a bag of its lower-cased words, each hashed (FNV-1a)
/// into one of [`EMBEDDING_DIM`] buckets. Texts sharing words point the same way, so
/// similarity search over these vectors behaves like a crude but real one.
pub fn embedding_for(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; EMBEDDING_DIM];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
    {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in word.to_lowercase().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        v[(h % EMBEDDING_DIM as u64) as usize] += 1.0;
    }
    // An empty text still gets a usable (non-zero) vector, as real models give.
    v[0] += 0.01;
    v
}

/// An OpenAI-shaped `/embeddings` answer for `{"input": "..." | ["...", ...]}`.
fn embeddings_response(body: &Value) -> Response<Body> {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => {
            let msg = json!({"error": {"message": "'input' is required", "type": "invalid_request_error"}});
            return plain(400, "application/json", msg.to_string(), None);
        }
    };
    // Reversed on the wire: clients must order by `index`, not by position.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embedding_for(t)}))
        .collect();
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-embedding");
    let resp = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()},
    });
    plain(200, "application/json", resp.to_string(), None)
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Joining guarantees the port and every connection are closed when drop returns;
        // the server thread only awaits the shutdown signal, so this is quick.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mock-llm: cannot register the listener: {e}");
            return;
        }
    };
    // Connection tasks live on this runtime; returning from here drops the runtime, which
    // cancels them all, including hanging ones.
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { handle(req, state).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

type Body = Either<Full<Bytes>, Channel<Bytes>>;

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, Infallible> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = match req.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let embeddings = path
        .split('?')
        .next()
        .unwrap_or("")
        .ends_with("/embeddings");
    lock(&state.requests).push(RecordedRequest {
        method,
        path,
        headers,
        body: body.clone(),
        raw: String::from_utf8_lossy(&bytes).into_owned(),
    });
    if embeddings {
        // Embeddings never consume the chat script: a test scripts the conversation and
        // gets deterministic vectors for whatever kai embeds along the way.
        let fail = *lock(&state.embeddings_error);
        return Ok(match fail {
            Some(status) => {
                let msg =
                    json!({"error": {"message": "embeddings failed (mock)", "type": "mock_llm"}});
                plain(status, "application/json", msg.to_string(), None)
            }
            None => embeddings_response(&body),
        });
    }
    let next = lock(&state.script).pop_front();
    let Some(reply) = next else {
        let msg = json!({"error": {"message": format!("{EXHAUSTED}: no reply left for this request"), "type": "mock_llm"}});
        return Ok(plain(500, "application/json", msg.to_string(), None));
    };
    Ok(respond(reply, &body, &state, Duration::ZERO).await)
}

fn plain(
    status: u16,
    content_type: &str,
    body: String,
    retry_after: Option<String>,
) -> Response<Body> {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    if let Some(Ok(v)) = retry_after.map(|r| HeaderValue::from_str(&r)) {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
    resp
}

/// What a streamed (or JSON) completion consists of, before it is put on the wire.
#[derive(Default)]
struct Turn {
    text: String,
    calls: Vec<(String, String)>,
    usage: Option<Usage>,
    omit_finish_reason: bool,
    stall: bool,
    /// Sent every [`HEARTBEAT_EVERY`] after the events, for ever (implies `stall`).
    heartbeat: Option<String>,
}

fn respond<'a>(reply: Reply, body: &'a Value, state: &'a State, pause: Duration) -> BoxFuture<'a> {
    Box::pin(async move {
        let turn = match into_turn(reply) {
            Ok(turn) => turn,
            Err(other) => return respond_other(other, body, state, pause).await,
        };
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("mock-model")
            .to_string();
        let id = format!(
            "chatcmpl-mock-{}",
            state.next_completion_id.fetch_add(1, Ordering::Relaxed)
        );
        let call_ids: Vec<String> = turn
            .calls
            .iter()
            .map(|_| {
                format!(
                    "call_{}",
                    state.next_call_id.fetch_add(1, Ordering::Relaxed)
                )
            })
            .collect();
        let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
        if !streaming {
            return plain(
                200,
                "application/json",
                completion_json(&id, &model, &turn, &call_ids).to_string(),
                None,
            );
        }
        let events = sse_events(&id, &model, &turn, &call_ids);
        let end = match turn.heartbeat {
            Some(beat) => StreamEnd::Heartbeat(beat),
            None if turn.stall => StreamEnd::Stall,
            None => StreamEnd::Close,
        };
        event_stream(events, pause, end)
    })
}

/// A 200 `text/event-stream` response streaming `events` from a task.
fn event_stream(events: Vec<String>, pause: Duration, end: StreamEnd) -> Response<Body> {
    let (tx, channel) = Channel::new(4);
    tokio::spawn(stream_events(tx, events, pause, end));
    let mut resp = Response::new(Either::Right(channel));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    resp
}

/// `Ok` for replies that are a completion, `Err(reply)` for the rest (handed back as is).
fn into_turn(reply: Reply) -> Result<Turn, Reply> {
    let turn = |text: String, calls: Vec<(String, String)>| Turn {
        text,
        calls,
        ..Turn::default()
    };
    match reply {
        Reply::Text(text) => Ok(turn(text, Vec::new())),
        Reply::ToolCalls(calls) => Ok(turn(String::new(), calls)),
        Reply::TextAndToolCalls(text, calls) => Ok(turn(text, calls)),
        Reply::TextAndUsage(text, usage) => Ok(Turn {
            usage: Some(usage),
            ..turn(text, Vec::new())
        }),
        Reply::NoFinishReason(text) => Ok(Turn {
            omit_finish_reason: true,
            ..turn(text, Vec::new())
        }),
        Reply::StallAfter(text) => Ok(Turn {
            stall: true,
            ..turn(text, Vec::new())
        }),
        Reply::KeepAliveAfter(text) => Ok(Turn {
            stall: true,
            heartbeat: Some(KEEP_ALIVE.into()),
            ..turn(text, Vec::new())
        }),
        Reply::HeartbeatAfter(text, beat) => Ok(Turn {
            stall: true,
            heartbeat: Some(beat),
            ..turn(text, Vec::new())
        }),
        Reply::WithUsage(inner, usage) => match into_turn(*inner) {
            Ok(t) => Ok(Turn {
                usage: Some(usage),
                ..t
            }),
            Err(other) => Err(Reply::WithUsage(Box::new(other), usage)),
        },
        other => Err(other),
    }
}

type BoxFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send + 'a>>;

/// Answers the replies that are not a plain completion: errors, raw bodies, hangs and the
/// wrappers, which resolve to another reply and go back through [`respond`].
fn respond_other<'a>(
    reply: Reply,
    body: &'a Value,
    state: &'a State,
    pause: Duration,
) -> BoxFuture<'a> {
    Box::pin(async move {
        match reply {
            Reply::Status(code, text, retry_after) => {
                let ct = if serde_json::from_str::<Value>(&text).is_ok() {
                    "application/json"
                } else {
                    "text/plain"
                };
                plain(code, ct, text, retry_after)
            }
            Reply::Garbage(text) => plain(200, "text/html; charset=utf-8", text, None),
            Reply::RawSse(text) => plain(200, "text/event-stream", text, None),
            Reply::Hang => std::future::pending().await,
            Reply::KeepAliveOnly => {
                event_stream(Vec::new(), pause, StreamEnd::Heartbeat(KEEP_ALIVE.into()))
            }
            Reply::Delayed(d, inner) => {
                tokio::time::sleep(d).await;
                respond(*inner, body, state, pause).await
            }
            Reply::Slow(d, inner) => respond(*inner, body, state, d).await,
            Reply::Dynamic(f) => respond(f(body), body, state, pause).await,
            // Usage wrapped around a wrapper: resolve the wrapper, keep the usage.
            Reply::WithUsage(inner, usage) => match *inner {
                Reply::Dynamic(f) => respond(f(body).with_usage(usage), body, state, pause).await,
                Reply::Delayed(d, r) => {
                    tokio::time::sleep(d).await;
                    respond(r.with_usage(usage), body, state, pause).await
                }
                Reply::Slow(d, r) => respond(r.with_usage(usage), body, state, d).await,
                // Errors and raw bodies have nowhere to put usage.
                other => respond(other, body, state, pause).await,
            },
            // Completions never get here; answering them anyway keeps this total.
            other => respond(other, body, state, pause).await,
        }
    })
}

/// What a streamed body does after its events.
enum StreamEnd {
    Close,
    /// Stay open and silent.
    Stall,
    /// Stay open, sending these bytes every [`HEARTBEAT_EVERY`].
    Heartbeat(String),
}

async fn stream_events(
    mut tx: Sender<Bytes>,
    events: Vec<String>,
    pause: Duration,
    end: StreamEnd,
) {
    for e in events {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if tx.send_data(Bytes::from(e)).await.is_err() {
            return;
        }
    }
    match end {
        StreamEnd::Close => {}
        // Keep the sender alive so the body never ends.
        StreamEnd::Stall => std::future::pending::<()>().await,
        StreamEnd::Heartbeat(beat) => loop {
            tokio::time::sleep(HEARTBEAT_EVERY).await;
            // The client hung up: stop.
            if tx.send_data(Bytes::from(beat.clone())).await.is_err() {
                return;
            }
        },
    }
}

/// Splits `s` into pieces of a few characters, on char boundaries, so words and JSON
/// tokens are cut in the middle the way real tokenizers cut them.
pub fn split_pieces(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = (chars.len() / 4).clamp(1, 64);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn finish_reason(turn: &Turn) -> &'static str {
    if turn.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    }
}

fn sse_events(id: &str, model: &str, turn: &Turn, call_ids: &[String]) -> Vec<String> {
    let chunk = |delta: Value, finish: Option<&str>| -> String {
        let mut choice = json!({"index": 0, "delta": delta});
        if !turn.omit_finish_reason {
            choice["finish_reason"] = finish.map_or(Value::Null, |f| Value::String(f.into()));
        }
        let v = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [choice],
        });
        format!("data: {v}\n\n")
    };
    let mut out = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for piece in split_pieces(&turn.text) {
        out.push(chunk(json!({"content": piece}), None));
    }
    for (i, ((name, args), call_id)) in turn.calls.iter().zip(call_ids).enumerate() {
        out.push(chunk(
            json!({"tool_calls": [{
                "index": i,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }]}),
            None,
        ));
        for piece in split_pieces(args) {
            out.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                None,
            ));
        }
    }
    if turn.stall {
        return out;
    }
    if !turn.omit_finish_reason {
        out.push(chunk(json!({}), Some(finish_reason(turn))));
    }
    if let Some(u) = turn.usage {
        let v = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": u.to_json(),
        });
        out.push(format!("data: {v}\n\n"));
    }
    out.push("data: [DONE]\n\n".into());
    out
}

fn completion_json(id: &str, model: &str, turn: &Turn, call_ids: &[String]) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": if turn.text.is_empty() && !turn.calls.is_empty() { Value::Null } else { Value::String(turn.text.clone()) },
    });
    if !turn.calls.is_empty() {
        message["tool_calls"] = turn
            .calls
            .iter()
            .zip(call_ids)
            .map(|((name, args), call_id)| {
                json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": args}})
            })
            .collect();
    }
    let mut v = json!({
        "id": id,
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(turn)}],
    });
    if let Some(u) = turn.usage {
        v["usage"] = u.to_json();
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_mid_word_and_rejoin() {
        let p = split_pieces("Hello, wonderful world");
        assert!(p.len() >= 4, "{p:?}");
        assert_eq!(p.concat(), "Hello, wonderful world");
        assert_eq!(split_pieces("é"), vec!["é".to_string()]);
        assert!(split_pieces("").is_empty());
    }

    #[test]
    fn tool_call_events_carry_id_and_name_once() {
        let turn = Turn {
            calls: vec![("get_pod".into(), r#"{"name":"backend-1"}"#.into())],
            ..Turn::default()
        };
        let ev = sse_events("x", "m", &turn, &["call_1".into()]);
        let with_id = ev.iter().filter(|e| e.contains("call_1")).count();
        let with_name = ev.iter().filter(|e| e.contains("get_pod")).count();
        assert_eq!((with_id, with_name), (1, 1));
        assert!(ev.iter().filter(|e| e.contains("arguments")).count() >= 3);
        assert!(ev
            .iter()
            .any(|e| e.contains("\"finish_reason\":\"tool_calls\"")));
        assert_eq!(ev.last().unwrap(), "data: [DONE]\n\n");
    }

    async fn post(url: &str, body: Value) -> (u16, String, Option<String>) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let resp = reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ra = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (status, resp.text().await.unwrap(), ra)
    }

    #[tokio::test]
    async fn embeddings_are_deterministic_recorded_and_leave_the_script_alone() {
        let mock = MockLlm::start(vec![Reply::text("hi")]);
        let url = format!("{}/embeddings", mock.base_url());
        let (s, body, _) = post(
            &url,
            json!({"model": "e", "input": ["pod crash loop", "disk pressure"]}),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        let first = data.iter().find(|d| d["index"] == 0).unwrap();
        let got: Vec<f32> = serde_json::from_value(first["embedding"].clone()).unwrap();
        assert_eq!(got, embedding_for("pod crash loop"));
        assert_ne!(
            embedding_for("pod crash loop"),
            embedding_for("disk pressure")
        );
        assert_eq!(got.len(), EMBEDDING_DIM);
        // A single string input works too; a missing input is a 400.
        let (s, _, _) = post(&url, json!({"model": "e", "input": "x"})).await;
        assert_eq!(s, 200);
        let (s, _, _) = post(&url, json!({"model": "e"})).await;
        assert_eq!(s, 400);
        mock.fail_embeddings(Some(503));
        let (s, _, _) = post(&url, json!({"model": "e", "input": "x"})).await;
        assert_eq!(s, 503);
        assert_eq!(mock.embedding_requests().len(), 4);
        assert!(mock.chat_requests().is_empty());
        assert_eq!(mock.remaining(), 1, "the chat script is untouched");
    }

    #[tokio::test]
    async fn serves_the_script_in_order_then_fails_loudly() {
        let mock = MockLlm::start(vec![
            Reply::text("Hello world"),
            Reply::rate_limited(3),
            Reply::dynamic(|b| Reply::Text(format!("model was {}", b["model"]))),
        ]);
        let url = format!("{}/chat/completions", mock.base_url());
        let (s, body, _) = post(&url, json!({"model": "m", "stream": true})).await;
        assert_eq!(s, 200);
        let text: String = body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .filter_map(|d| {
                let v: Value = serde_json::from_str(d).unwrap();
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from)
            })
            .collect();
        assert_eq!(text, "Hello world");
        let (s, _, ra) = post(&url, json!({"model": "m"})).await;
        assert_eq!((s, ra.as_deref()), (429, Some("3")));
        let (s, body, _) = post(&url, json!({"model": "m2"})).await;
        assert_eq!(s, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "model was \"m2\"");
        let (s, body, _) = post(&url, json!({"model": "m"})).await;
        assert_eq!(s, 500);
        assert!(body.contains(EXHAUSTED), "{body}");
        assert_eq!(mock.request_count(), 4);
        assert_eq!(mock.requests()[2]["model"], "m2");
        assert_eq!(mock.recorded()[0].path, "/v1/chat/completions");
        assert_eq!(mock.remaining(), 0);
    }

    #[tokio::test]
    async fn keep_alive_replies_send_comments_for_ever() {
        let mock = MockLlm::start(vec![
            Reply::KeepAliveOnly,
            Reply::KeepAliveAfter("Partial".into()),
        ]);
        let url = format!("{}/chat/completions", mock.base_url());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        for expect_data in [false, true] {
            let mut resp = client
                .post(&url)
                .json(&json!({"stream": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let mut body = String::new();
            // Several heartbeats, well past the point where a finished reply would end.
            while body.matches(KEEP_ALIVE).count() < 3 {
                let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
                    .await
                    .expect("a heartbeat within 5 s")
                    .unwrap()
                    .expect("the body never ends");
                body.push_str(std::str::from_utf8(&chunk).unwrap());
            }
            assert_eq!(body.contains("data:"), expect_data, "{body}");
            assert!(!body.contains("[DONE]") && !body.contains("finish_reason\":\""));
            if expect_data {
                assert!(body.contains(r#""content":"P""#), "{body}");
            }
        }
    }

    #[tokio::test]
    async fn drop_closes_hanging_connections() {
        let mock = MockLlm::start(vec![Reply::Hang]);
        let url = format!("{}/chat/completions", mock.base_url());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pending = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"stream": true}))
                .send()
                .await
        });
        for _ in 0..1000 {
            if mock.request_count() > 0 || pending.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(mock.request_count(), 1, "the request never arrived");
        drop(mock);
        let res = tokio::time::timeout(Duration::from_secs(5), pending)
            .await
            .expect("the hanging request ends once the mock is dropped")
            .unwrap();
        assert!(res.is_err(), "connection closed without an answer");
    }
}
