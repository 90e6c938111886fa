//! The agent core: one turn loop, driven through [`protocol`] by every front end.
//!
//! [`spawn`] starts the agent as a task and returns an [`AgentHandle`]: operations go in,
//! events come out. Approval requests from mutating tools become
//! [`Event::ApprovalRequested`] and wait for the matching [`Op::Approval`]; the model has no
//! path to produce an `Op`.

mod gather;
pub mod guard;
pub mod protocol;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::tools::{Approver, CallCtx, Registry, ToolError};
pub use gather::{Gathered, Gatherer};
use guard::RepeatGuard;
use kai_llm::{ChatMessage, ChatRequest, LlmClient, LlmError, Role, ToolCall, ToolSpec, Usage};
use protocol::{ApprovalRequest, Decision, Event, Op, TurnEnd};

/// The system prompt, compiled in from `prompts/` at the top of the repository.
pub const SYSTEM_PROMPT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../prompts/system.md"
));

/// Model steps per turn when nothing else says (`--max-steps`, the config file).
pub const DEFAULT_MAX_STEPS: u32 = 15;

/// Rough token estimate (4 bytes a token) used for budgets; no tokenizer needed for that.
pub use kai_text::budget::estimate_tokens;

/// Tool calls run per model response. More is a model gone wild (or steered by text in
/// a tool result): 200 calls made a 3 MB next request. The rest are dropped, and the
/// model is told so.
pub const MAX_TOOL_CALLS_PER_RESPONSE: usize = 16;

/// What replaces an old tool result that no longer fits.
const ELIDED_TOOL_OUTPUT: &str =
    "[older tool output elided to fit the context window; call the tool again if needed]";
/// What replaces an earlier turn's question or answer that no longer fits.
const ELIDED_MESSAGE: &str = "[earlier message elided to fit the context window]";
/// A tool result is not truncated below this many bytes: a little evidence beats none.
const TRUNCATE_FLOOR_BYTES: usize = 2048;
/// JSON around the messages and tools that is not in our own serialisation of them:
/// model, stream, temperature, tool_choice, stream_options, per-item wrappers.
const REQUEST_OVERHEAD_BYTES: usize = 256;
const MESSAGE_OVERHEAD_BYTES: usize = 16;
/// `"type":"function","function":{...}` around each tool call and declaration.
const WRAPPER_OVERHEAD_BYTES: usize = 40;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub model: String,
    pub max_steps: u32,
    pub system_prompt: String,
    /// Fetch the named workload's context before the first model call (when a
    /// [`gatherer`](AgentConfig::gatherer) is set).
    pub pregather: bool,
    /// What pre-gathers that context: kai-tools' cluster gatherer when a cluster is
    /// connected, `None` otherwise.
    pub gatherer: Option<Arc<dyn Gatherer>>,
    /// The namespace questions are about (`-n`), if given.
    pub namespace: Option<String>,
    /// Refuse the Nth identical tool call in a row.
    pub repeat_limit: u32,
    /// Keep every request (messages and tool declarations) under this many estimated
    /// tokens: old tool results are elided first, then the largest are truncated.
    pub context_budget_tokens: usize,
    pub temperature: Option<f32>,
    /// Tool calls run per model response; see [`MAX_TOOL_CALLS_PER_RESPONSE`].
    pub max_tool_calls_per_response: usize,
}

impl AgentConfig {
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            max_steps: DEFAULT_MAX_STEPS,
            system_prompt: SYSTEM_PROMPT.to_string(),
            pregather: true,
            gatherer: None,
            namespace: None,
            repeat_limit: 3,
            context_budget_tokens: 60_000,
            temperature: Some(0.1),
            max_tool_calls_per_response: MAX_TOOL_CALLS_PER_RESPONSE,
        }
    }
}

/// The front end's side of the protocol.
pub struct AgentHandle {
    pub ops: mpsc::UnboundedSender<Op>,
    pub events: mpsc::UnboundedReceiver<Event>,
    task: tokio::task::JoinHandle<()>,
}

impl AgentHandle {
    pub fn send(&self, op: Op) {
        // The agent only goes away after Shutdown; a send after that has nobody to tell.
        let _ = self.ops.send(op);
    }

    pub async fn shutdown(self) {
        let _ = self.ops.send(Op::Shutdown);
        let _ = self.task.await;
    }
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Decision>>>>;

/// Asks through the event channel and waits for the front end's [`Op::Approval`].
struct ChannelApprover {
    events: mpsc::UnboundedSender<Event>,
    pending: Pending,
}

#[async_trait]
impl Approver for ChannelApprover {
    async fn request(&self, request: ApprovalRequest) -> Decision {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(request.id.clone(), tx);
        } else {
            return Decision::Denied;
        }
        if self.events.send(Event::ApprovalRequested(request)).is_err() {
            return Decision::Denied;
        }
        // A front end that goes away without answering has not said yes.
        rx.await.unwrap_or(Decision::Denied)
    }
}

/// Start the agent. `ctx.approver` is replaced by the protocol round trip.
pub fn spawn(
    llm: Arc<dyn LlmClient>,
    registry: Arc<Registry>,
    mut ctx: CallCtx,
    cfg: AgentConfig,
) -> AgentHandle {
    let (ops_tx, mut ops_rx) = mpsc::unbounded_channel::<Op>();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel::<Event>();
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    // "Yes for the rest of this session" is remembered here, once per session.
    let notices = ev_tx.clone();
    ctx.approver = Arc::new(crate::session::SessionApprovals::with_notifier(
        Arc::new(ChannelApprover {
            events: ev_tx.clone(),
            pending: pending.clone(),
        }),
        move |req| {
            let _ = notices.send(Event::Notice {
                message: format!(
                    "applying without asking (you answered \"all\" earlier in this session): {}",
                    req.title
                ),
            });
        },
    ));
    let (turn_tx, mut turn_rx) = mpsc::unbounded_channel::<String>();
    let current: Arc<Mutex<CancellationToken>> = Arc::new(Mutex::new(CancellationToken::new()));

    // Router: approvals and interrupts must reach a turn while it is running.
    let router_current = current.clone();
    let router = tokio::spawn(async move {
        while let Some(op) = ops_rx.recv().await {
            match op {
                Op::UserTurn(text) => {
                    if turn_tx.send(text).is_err() {
                        break;
                    }
                }
                Op::Approval { id, decision } => {
                    let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
                    if let Some(w) = waiter {
                        let _ = w.send(decision);
                    }
                }
                Op::Interrupt => {
                    if let Ok(c) = router_current.lock() {
                        c.cancel();
                    }
                    // Unblock any approval prompt: an interrupted turn approves nothing.
                    if let Ok(mut p) = pending.lock() {
                        for (_, w) in p.drain() {
                            let _ = w.send(Decision::Abort);
                        }
                    }
                }
                Op::Shutdown => break,
            }
        }
    });

    let task = tokio::spawn(async move {
        let mut agent = Agent::new(llm, registry, ctx, cfg);
        loop {
            tokio::select! {
                turn = turn_rx.recv() => {
                    let Some(text) = turn else { break };
                    let token = CancellationToken::new();
                    if let Ok(mut c) = current.lock() {
                        *c = token.clone();
                    }
                    agent.ctx.cancel = token.clone();
                    agent.run_turn(&text, &ev_tx, &token).await;
                }
                _ = ev_tx.closed() => break,
            }
            if router.is_finished() {
                break;
            }
        }
        router.abort();
    });

    AgentHandle {
        ops: ops_tx,
        events: ev_rx,
        task,
    }
}

/// The conversation and the loop. Usable directly (tests) or through [`spawn`].
pub struct Agent {
    llm: Arc<dyn LlmClient>,
    registry: Arc<Registry>,
    pub ctx: CallCtx,
    cfg: AgentConfig,
    history: Vec<ChatMessage>,
    usage: Usage,
    turns: u32,
    /// (tool, arguments) already pre-gathered in this session.
    gathered: std::collections::HashSet<(String, String)>,
}

impl Agent {
    pub fn new(
        llm: Arc<dyn LlmClient>,
        registry: Arc<Registry>,
        ctx: CallCtx,
        cfg: AgentConfig,
    ) -> Self {
        Self {
            llm,
            registry,
            ctx,
            cfg,
            history: Vec::new(),
            usage: Usage::default(),
            turns: 0,
            gathered: Default::default(),
        }
    }

    pub fn history(&self) -> &[ChatMessage] {
        &self.history
    }

    /// Total usage over the session.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Run one user turn to its end, emitting events. Never panics on model or tool
    /// misbehaviour: every failure becomes an event.
    pub async fn run_turn(
        &mut self,
        text: &str,
        events: &mpsc::UnboundedSender<Event>,
        cancel: &CancellationToken,
    ) {
        let emit = |e: Event| {
            let _ = events.send(e);
        };
        emit(Event::TurnStarted);
        self.turns += 1;
        let mut turn_usage = Usage::default();
        self.history.push(ChatMessage::user(text));

        // Every turn may name a new workload (the REPL); what was gathered before in this
        // session is not sent again.
        if self.cfg.pregather && self.cfg.gatherer.is_some() {
            self.pregather(text, events, cancel).await;
        }

        let mut guard = RepeatGuard::new(self.cfg.repeat_limit);
        let mut steps = 0u32;
        loop {
            if cancel.is_cancelled() {
                emit(Event::TurnDone {
                    end: TurnEnd::Interrupted,
                    answer: String::new(),
                    usage: turn_usage,
                    steps,
                });
                return;
            }
            if steps >= self.cfg.max_steps {
                let answer = format!(
                    "Stopped after {steps} model steps (--max-steps {}) without a final answer. \
                     The tool results so far are above; ask again with a narrower question or a higher --max-steps.",
                    self.cfg.max_steps
                );
                self.history.push(ChatMessage::assistant(answer.clone()));
                emit(Event::TurnDone {
                    end: TurnEnd::MaxSteps,
                    answer,
                    usage: turn_usage,
                    steps,
                });
                return;
            }
            steps += 1;
            let tools = self.registry.specs();
            let messages = match self.request_messages(&tools) {
                Ok(m) => m,
                Err(message) => {
                    emit(Event::Error {
                        message,
                        exit_code: crate::exit::MODEL_ERROR,
                    });
                    emit(Event::TurnDone {
                        end: TurnEnd::Failed,
                        answer: String::new(),
                        usage: turn_usage,
                        steps,
                    });
                    return;
                }
            };
            let request = ChatRequest {
                model: self.cfg.model.clone(),
                messages,
                tools,
                temperature: self.cfg.temperature,
                max_tokens: None,
            };
            let delta_tx = events.clone();
            let mut on_text = move |t: &str| {
                let _ = delta_tx.send(Event::TextDelta {
                    text: t.to_string(),
                });
            };
            let result = tokio::select! {
                r = self.llm.chat(&request, &mut on_text) => r,
                _ = cancel.cancelled() => Err(LlmError::Cancelled),
            };
            let response = match result {
                Ok(r) => r,
                Err(LlmError::Cancelled) => {
                    emit(Event::TurnDone {
                        end: TurnEnd::Interrupted,
                        answer: String::new(),
                        usage: turn_usage,
                        steps,
                    });
                    return;
                }
                Err(e) => {
                    emit(Event::Error {
                        message: e.to_string(),
                        exit_code: crate::exit::MODEL_ERROR,
                    });
                    emit(Event::TurnDone {
                        end: TurnEnd::Failed,
                        answer: String::new(),
                        usage: turn_usage,
                        steps,
                    });
                    return;
                }
            };
            if let Some(u) = &response.usage {
                turn_usage.add(u);
                self.usage.add(u);
                emit(Event::Usage { usage: *u });
            }
            if response.finish_reason.as_deref() == Some("length") {
                emit(Event::Notice {
                    message: if response.tool_calls.is_empty() {
                        "the model stopped at its output token limit (finish_reason \"length\"): the answer is cut off".into()
                    } else {
                        "the model stopped at its output token limit (finish_reason \"length\"): its last tool call may be incomplete".into()
                    },
                });
            }

            if response.tool_calls.is_empty() {
                let answer = response.content.clone();
                self.history.push(ChatMessage::assistant(answer.clone()));
                emit(Event::TurnDone {
                    end: TurnEnd::Answered,
                    answer,
                    usage: turn_usage,
                    steps,
                });
                return;
            }

            let requested = response.tool_calls.len();
            let mut calls = normalize_calls(response.tool_calls, steps);
            // Calls past the limit are neither run nor kept: a call in the history needs
            // a result, and 200 "not run" results would cost what the limit saves.
            let limit = self.cfg.max_tool_calls_per_response.max(1);
            calls.truncate(limit);
            let dropped = requested - calls.len();
            let text = (!response.content.is_empty()).then(|| response.content.clone());
            self.history
                .push(ChatMessage::assistant_tool_calls(text, calls.clone()));
            let mut fatal: Option<(TurnEnd, String)> = None;
            for call in &calls {
                // Every call gets a result, even after a fatal error or an interrupt, so the
                // history stays a valid conversation for the next turn.
                if let Some((_, why)) = &fatal {
                    self.history.push(ChatMessage::tool_result(
                        &call.id,
                        format!("not run: {why}"),
                    ));
                    continue;
                }
                if cancel.is_cancelled() {
                    self.history.push(ChatMessage::tool_result(
                        &call.id,
                        "not run: interrupted by the user",
                    ));
                    continue;
                }
                match self.run_tool(call, &mut guard, events, cancel).await {
                    Ok(output) => self
                        .history
                        .push(ChatMessage::tool_result(&call.id, output)),
                    Err(ToolError::Model(msg)) => self
                        .history
                        .push(ChatMessage::tool_result(&call.id, format!("error: {msg}"))),
                    Err(ToolError::Fatal(msg)) => {
                        self.history
                            .push(ChatMessage::tool_result(&call.id, format!("error: {msg}")));
                        fatal = Some((TurnEnd::Aborted, msg));
                    }
                }
            }
            if dropped > 0 {
                let note = format!(
                    "[kai: your response asked for {requested} tool calls; only the first {} ran (at most {limit} per response). \
                     The other {dropped} were not run: ask again for the ones you still need.]",
                    calls.len()
                );
                if let Some(last) = self.history.last_mut() {
                    let content = last.content.get_or_insert_with(String::new);
                    content.push_str("\n\n");
                    content.push_str(&note);
                }
                emit(Event::Notice {
                    message: format!(
                        "the model asked for {requested} tool calls in one response; only the first {} ran",
                        calls.len()
                    ),
                });
            }
            if let Some((end, msg)) = fatal {
                emit(Event::Notice { message: msg });
                emit(Event::TurnDone {
                    end,
                    answer: String::new(),
                    usage: turn_usage,
                    steps,
                });
                return;
            }
        }
    }

    async fn run_tool(
        &self,
        call: &ToolCall,
        guard: &mut RepeatGuard,
        events: &mpsc::UnboundedSender<Event>,
        cancel: &CancellationToken,
    ) -> Result<String, ToolError> {
        let started = Instant::now();
        let prepared = self.registry.prepare(&call.name, &call.arguments);
        let (summary, args_value) = match &prepared {
            Ok((h, args)) => (h.summarize(args), h.shown_args(args)),
            // Arguments that did not validate are not shown: nothing says which of
            // them is a Secret value.
            Err(_) => (format!("{} (invalid call)", call.name), Value::Null),
        };
        let _ = events.send(Event::ToolStarted {
            call_id: call.id.clone(),
            name: call.name.clone(),
            summary,
            arguments: args_value,
            pregathered: false,
        });
        let result = match prepared {
            Err(msg) => Err(ToolError::Model(msg)),
            Ok((handler, args)) => {
                if !guard.admit(&call.name, &args) {
                    Err(ToolError::Model(format!(
                        "refused: this exact {} call was already made {} times in a row; use the earlier result, change the arguments, or answer",
                        call.name,
                        self.cfg.repeat_limit - 1
                    )))
                } else {
                    tokio::select! {
                        r = handler.call(&self.ctx, args) => r,
                        _ = cancel.cancelled() => Err(ToolError::Model("interrupted by the user".into())),
                    }
                }
            }
        };
        let (bytes, error) = match &result {
            Ok(out) => (out.len(), None),
            Err(e) => (0, Some(e.to_string())),
        };
        let _ = events.send(Event::ToolFinished {
            call_id: call.id.clone(),
            name: call.name.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
            output_bytes: bytes,
            error,
        });
        result
    }

    /// Fetch the context a diagnosis needs before the first model call, and present it
    /// as tool calls kai made itself, so the model reads it like any tool result.
    async fn pregather(
        &mut self,
        question: &str,
        events: &mpsc::UnboundedSender<Event>,
        cancel: &CancellationToken,
    ) {
        let Some(gatherer) = self.cfg.gatherer.clone() else {
            return;
        };
        let ns = self.cfg.namespace.clone();
        let gathered = tokio::select! {
            g = gatherer.gather(question, ns.as_deref()) => g,
            _ = cancel.cancelled() => return,
        };
        let gathered: Vec<_> = gathered
            .into_iter()
            .filter(|g| self.gathered.insert((g.tool.clone(), g.args.to_string())))
            .collect();
        if gathered.is_empty() {
            return;
        }
        let mut calls = Vec::new();
        for (i, g) in gathered.iter().enumerate() {
            let id = format!("kai_pre_{}_{}", self.turns, i + 1);
            let _ = events.send(Event::ToolStarted {
                call_id: id.clone(),
                name: g.tool.clone(),
                summary: crate::tools::summarize_args(&g.tool, &g.args),
                arguments: g.args.clone(),
                pregathered: true,
            });
            let _ = events.send(Event::ToolFinished {
                call_id: id.clone(),
                name: g.tool.clone(),
                duration_ms: g.duration.as_millis() as u64,
                output_bytes: g.output.len(),
                error: g.error.clone(),
            });
            calls.push(ToolCall {
                id,
                name: g.tool.clone(),
                arguments: g.args.to_string(),
            });
        }
        self.history.push(ChatMessage::assistant_tool_calls(
            Some("Gathering the cluster context for this question first.".into()),
            calls.clone(),
        ));
        for (call, g) in calls.iter().zip(gathered) {
            let text = match g.error {
                Some(e) => format!("error: {e}"),
                None => g.output,
            };
            self.history.push(ChatMessage::tool_result(&call.id, text));
        }
    }

    /// The messages of the next request: the system prompt, then the history as the
    /// model may see it (every message through [`to_model`], the one egress point),
    /// fitted to the context budget. `Err` when even the most eliding leaves the request
    /// over budget: better a clear error than a request the endpoint rejects or, worse,
    /// silently truncates.
    ///
    /// Eliding edits the history itself, so the work is not redone every step: first old
    /// tool results (before the latest assistant message), oldest first; then the
    /// largest remaining tool results are truncated (down to a floor); then earlier
    /// turns' questions and answers, oldest first.
    fn request_messages(&mut self, tools: &[ToolSpec]) -> Result<Vec<ChatMessage>, String> {
        let budget = kai_text::budget::bytes_for_tokens(self.cfg.context_budget_tokens);
        // The system prompt is kai's own constant, so it is not rewritten by egress.
        let system = ChatMessage::system(self.cfg.system_prompt.clone());
        let fixed = wire_bytes(&system)
            + serde_json::to_string(tools).map_or(0, |t| t.len())
            + tools.len() * WRAPPER_OVERHEAD_BYTES
            + REQUEST_OVERHEAD_BYTES;
        let mut fit = Fitting::new(&self.history, fixed);

        // 1. Old tool results, oldest first; the latest step's are what the model is
        //    about to read.
        let last_assistant = self
            .history
            .iter()
            .rposition(|m| m.role == Role::Assistant)
            .unwrap_or(0);
        for i in 0..last_assistant {
            if fit.total <= budget {
                break;
            }
            if self.history[i].role == Role::Tool && fit.sizes[i] > ELIDED_TOOL_OUTPUT.len() * 2 {
                fit.replace(&mut self.history, i, ELIDED_TOOL_OUTPUT.to_string());
            }
        }

        // 2. Truncate the largest tool result, repeatedly, never below the floor.
        let mut at_floor = vec![false; self.history.len()];
        while fit.total > budget {
            let Some(i) = (0..self.history.len())
                .filter(|&i| self.history[i].role == Role::Tool && !at_floor[i])
                .max_by_key(|&i| fit.sizes[i])
            else {
                break;
            };
            // Cut what is sent, not the raw text: a cut through a credential could leave a
            // prefix the scrubber no longer recognises. The cut text is kept as the history,
            // and passing it through egress again changes nothing.
            let content = fit.out[i].content.clone().unwrap_or_default();
            let excess = fit.total - budget;
            // The marker and JSON escaping cost a little; ask for a bit more than the
            // excess so one cut usually suffices.
            let keep = content
                .len()
                .saturating_sub(excess + 128)
                .max(TRUNCATE_FLOOR_BYTES);
            if keep >= content.len() {
                at_floor[i] = true;
                continue;
            }
            let head = &content[..floor_char_boundary(&content, keep)];
            let text = format!(
                "{head}\n[... {} bytes cut here to fit the context window]",
                content.len() - head.len()
            );
            at_floor[i] = head.len() <= TRUNCATE_FLOOR_BYTES;
            fit.replace(&mut self.history, i, text);
        }

        // 3. Earlier turns' questions and answers, oldest first.
        let current_turn = self
            .history
            .iter()
            .rposition(|m| m.role == Role::User)
            .unwrap_or(0);
        for i in 0..current_turn {
            if fit.total <= budget {
                break;
            }
            let m = &self.history[i];
            if matches!(m.role, Role::User | Role::Assistant)
                && m.content
                    .as_deref()
                    .is_some_and(|c| c.len() > ELIDED_MESSAGE.len() * 2)
            {
                fit.replace(&mut self.history, i, ELIDED_MESSAGE.to_string());
            }
        }

        if fit.total > budget {
            return Err(format!(
                "the next request to the model would be about {} tokens, over the context budget of {} tokens, \
                 even with tool output elided; ask a narrower question or start a new session",
                kai_text::budget::tokens_for_bytes(fit.total),
                self.cfg.context_budget_tokens
            ));
        }
        let mut messages = Vec::with_capacity(fit.out.len() + 1);
        messages.push(system);
        messages.extend(fit.out);
        Ok(messages)
    }
}

/// The history as it will be sent, with each message's size, while it is being fitted.
struct Fitting {
    out: Vec<ChatMessage>,
    sizes: Vec<usize>,
    total: usize,
}

impl Fitting {
    fn new(history: &[ChatMessage], fixed: usize) -> Self {
        let out: Vec<ChatMessage> = history.iter().map(to_model).collect();
        let sizes: Vec<usize> = out.iter().map(wire_bytes).collect();
        let total = fixed + sizes.iter().sum::<usize>();
        Self { out, sizes, total }
    }

    /// Replace message `i`'s content in the history and re-measure what is sent for it.
    fn replace(&mut self, history: &mut [ChatMessage], i: usize, text: String) {
        history[i].content = Some(text);
        self.out[i] = to_model(&history[i]);
        let size = wire_bytes(&self.out[i]);
        self.total = self.total - self.sizes[i] + size;
        self.sizes[i] = size;
    }
}

/// The one egress point toward the model: a history message as it may be sent. Every
/// text the model reads (questions, tool results, pre-gathered context, its own earlier
/// answers and tool calls) passes [`kai_text::egress::for_model`] here: no terminal control
/// sequences, no credentials.
fn to_model(m: &ChatMessage) -> ChatMessage {
    ChatMessage {
        role: m.role,
        content: m.content.as_deref().map(kai_text::egress::for_model),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| ToolCall {
                id: kai_text::egress::for_model(&c.id),
                name: kai_text::egress::for_model(&c.name),
                arguments: kai_text::egress::for_model(&c.arguments),
            })
            .collect(),
        tool_call_id: m.tool_call_id.as_deref().map(kai_text::egress::for_model),
    }
}

/// Bytes `m` takes in the request body (a slight overestimate of the wire form).
fn wire_bytes(m: &ChatMessage) -> usize {
    serde_json::to_string(m).map_or(0, |s| s.len())
        + MESSAGE_OVERHEAD_BYTES
        + m.tool_calls.len() * WRAPPER_OVERHEAD_BYTES
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Give every call a unique id: some compatible servers send none, or reuse one.
fn normalize_calls(calls: Vec<ToolCall>, step: u32) -> Vec<ToolCall> {
    let mut seen = std::collections::HashSet::new();
    calls
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            if c.id.is_empty() || !seen.insert(c.id.clone()) {
                c.id = format!("call_{step}_{}", i + 1);
                seen.insert(c.id.clone());
            }
            c
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_made_unique() {
        let c = |id: &str| ToolCall {
            id: id.into(),
            name: "t".into(),
            arguments: "{}".into(),
        };
        let out = normalize_calls(vec![c(""), c("a"), c("a")], 2);
        let ids: Vec<&str> = out.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec!["call_2_1", "a", "call_2_3"]);
    }

    struct NoModel;

    #[async_trait]
    impl LlmClient for NoModel {
        async fn chat(
            &self,
            _request: &ChatRequest,
            _on_text: &mut (dyn for<'a> FnMut(&'a str) + Send),
        ) -> Result<kai_llm::ChatResponse, LlmError> {
            Err(LlmError::Cancelled)
        }
    }

    fn agent(budget_tokens: usize) -> Agent {
        let ctx = CallCtx::new(Arc::new(crate::tools::DenyAll));
        let mut cfg = AgentConfig::new("m");
        cfg.system_prompt = "sys".into();
        cfg.context_budget_tokens = budget_tokens;
        Agent::new(Arc::new(NoModel), Arc::new(Registry::new()), ctx, cfg)
    }

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "t".into(),
            arguments: "{}".into(),
        }
    }

    fn sent_bytes(messages: &[ChatMessage]) -> usize {
        serde_json::to_string(messages).unwrap_or_default().len()
    }

    #[test]
    fn old_results_go_first_then_the_largest_is_cut_and_all_of_it_is_egressed() {
        let mut a = agent(2_000);
        a.history = vec![
            ChatMessage::user("q \x1b[31mred\x1b[0m"),
            ChatMessage::assistant_tool_calls(None, vec![call("a")]),
            ChatMessage::tool_result("a", "old ".repeat(1000)),
            ChatMessage::assistant_tool_calls(None, vec![call("b"), call("c")]),
            ChatMessage::tool_result("b", "small result"),
            ChatMessage::tool_result("c", "new ".repeat(3000)),
        ];
        let m = a.request_messages(&[]).unwrap_or_default();
        assert!(sent_bytes(&m) <= 2_000 * 4, "{}", sent_bytes(&m));
        assert_eq!(m[0].content.as_deref(), Some("sys"));
        assert_eq!(m[1].content.as_deref(), Some("q red"), "egress on the way");
        assert_eq!(m[3].content.as_deref(), Some(ELIDED_TOOL_OUTPUT));
        assert_eq!(m[5].content.as_deref(), Some("small result"));
        let cut = m[6].content.as_deref().unwrap_or_default();
        assert!(
            cut.starts_with("new new") && cut.contains("bytes cut here"),
            "{cut}"
        );
        // The history keeps the fitting, so the next step starts from it.
        assert_eq!(a.history[2].content.as_deref(), Some(ELIDED_TOOL_OUTPUT));
    }

    #[test]
    fn a_cut_never_leaves_part_of_a_credential() {
        // Tokens back to back: wherever the cut falls, a raw cut would often leave a
        // `ghp_` prefix too short for the scrubber to recognise.
        let tokens = format!("ghp_{} ", "A".repeat(36)).repeat(400);
        for budget in 1_000..1_012 {
            let mut a = agent(budget);
            a.history = vec![
                ChatMessage::user("q"),
                ChatMessage::assistant_tool_calls(None, vec![call("a")]),
                ChatMessage::tool_result("a", tokens.clone()),
            ];
            let m = a.request_messages(&[]).unwrap_or_default();
            let body = serde_json::to_string(&m).unwrap_or_default();
            assert!(body.contains("bytes cut here"), "{budget}");
            assert!(!body.contains("ghp_"), "budget {budget}: {body}");
        }
    }

    #[test]
    fn earlier_turns_go_before_giving_up_and_giving_up_is_an_error() {
        let mut a = agent(500);
        a.history = vec![
            ChatMessage::user("first question ".repeat(200)),
            ChatMessage::assistant("first answer ".repeat(200)),
            ChatMessage::user("second question"),
        ];
        let m = a.request_messages(&[]).unwrap_or_default();
        assert_eq!(m[1].content.as_deref(), Some(ELIDED_MESSAGE));
        assert_eq!(m[2].content.as_deref(), Some(ELIDED_MESSAGE));
        assert_eq!(m[3].content.as_deref(), Some("second question"));

        let mut a = agent(1_000);
        a.history = vec![ChatMessage::user("a question far too long ".repeat(400))];
        let e = a.request_messages(&[]).unwrap_err();
        assert!(e.contains("context budget of 1000 tokens"), "{e}");
    }

    #[test]
    fn token_estimate_rounds_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
    }
}
