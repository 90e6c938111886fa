//! The agent core: one turn loop, driven through [`protocol`] by every front end.
//!
//! [`spawn`] starts the agent as a task and returns an [`AgentHandle`]: operations go in,
//! events come out. Approval requests from mutating tools become
//! [`Event::ApprovalRequested`] and wait for the matching [`Op::Approval`]; the model has no
//! path to produce an `Op`.

pub mod context;
mod gather;
pub mod guard;
pub mod protocol;
pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::tools::{Approver, CallCtx, Registry, ToolError, TurnId};
pub use context::{budget_for_window, ContextReport};
pub use gather::{FindingFacts, Gathered, Gatherer};
use guard::RepeatGuard;
use kai_llm::{ChatMessage, ChatRequest, LlmClient, LlmError, Role, ToolCall, ToolSpec, Usage};
use protocol::{ApprovalRequest, Decision, Event, Op, TurnEnd};
pub use state::{Reconfigure, Snapshot};

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
    /// tokens (see [`context::fit`] for what gives way first). Front ends set it from
    /// the model's context window with [`budget_for_window`].
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
    published: Arc<Mutex<Snapshot>>,
}

impl AgentHandle {
    pub fn send(&self, op: Op) {
        // The agent only goes away after Shutdown; a send after that has nobody to tell.
        let _ = self.ops.send(op);
    }

    /// The session as of the end of the last turn (or change between turns): what a
    /// front end saves. Read it after `TurnDone`; the agent publishes before sending it.
    pub fn snapshot(&self) -> Snapshot {
        self.published.lock().map(|s| s.clone()).unwrap_or_default()
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
    ctx: CallCtx,
    cfg: AgentConfig,
) -> AgentHandle {
    spawn_resumed(llm, registry, ctx, cfg, Vec::new())
}

/// What the agent task works through, in order: turns, and changes between them.
enum Work {
    Turn(String),
    Reconfigure(Box<Reconfigure>),
}

/// Start the agent on a saved conversation (`history` as a [`Snapshot`] holds it; empty
/// for a new session). Approvals "for this session" are never part of it: a resumed
/// session asks again.
pub fn spawn_resumed(
    llm: Arc<dyn LlmClient>,
    registry: Arc<Registry>,
    mut ctx: CallCtx,
    cfg: AgentConfig,
    history: Vec<ChatMessage>,
) -> AgentHandle {
    let (ops_tx, mut ops_rx) = mpsc::unbounded_channel::<Op>();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel::<Event>();
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    // "Yes for the rest of this session" is remembered here, once per session.
    let notices = ev_tx.clone();
    let approvals = Arc::new(crate::session::SessionApprovals::with_notifier(
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
    ctx.approver = approvals.clone();
    let (work_tx, mut work_rx) = mpsc::unbounded_channel::<Work>();
    let current: Arc<Mutex<CancellationToken>> = Arc::new(Mutex::new(CancellationToken::new()));

    // Router: approvals and interrupts must reach a turn while it is running.
    let router_current = current.clone();
    let router = tokio::spawn(async move {
        while let Some(op) = ops_rx.recv().await {
            match op {
                Op::UserTurn(text) => {
                    if work_tx.send(Work::Turn(text)).is_err() {
                        break;
                    }
                }
                Op::Reconfigure(r) => {
                    if work_tx.send(Work::Reconfigure(r)).is_err() {
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

    let mut agent = Agent::new(llm, registry, ctx, cfg);
    agent.restore(history);
    let published = agent.published.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                work = work_rx.recv() => match work {
                    None => break,
                    Some(Work::Turn(text)) => {
                        let token = CancellationToken::new();
                        if let Ok(mut c) = current.lock() {
                            *c = token.clone();
                        }
                        agent.ctx.cancel = token.clone();
                        agent.run_turn(&text, &ev_tx, &token).await;
                    }
                    Some(Work::Reconfigure(r)) => {
                        if r.forget_approvals {
                            approvals.reset();
                        }
                        agent.reconfigure(*r);
                    }
                },
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
        published,
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
    /// Whether the change tools are declared to the model: from the first turn where a
    /// change is on the table (see [`change_on_the_table`]) to the end of the session, so
    /// the declarations stay one stable prefix once they grew.
    offer_changes: bool,
    /// Size of the last request sent, in bytes (see [`context::fit`]).
    last_request_bytes: usize,
    /// The provider's count of the last request's prompt, when it reported one.
    last_prompt_tokens: Option<u64>,
    /// Provider tokens per estimated token (at least 1): see [`Agent::calibrate`].
    token_ratio: f64,
    /// The state the front end reads between turns ([`AgentHandle::snapshot`]).
    published: Arc<Mutex<Snapshot>>,
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
            offer_changes: false,
            last_request_bytes: 0,
            last_prompt_tokens: None,
            token_ratio: 1.0,
            published: Arc::new(Mutex::new(Snapshot::default())),
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
        // The turn's calls share their reads, never the last turn's.
        self.ctx.turn = Some(TurnId::next());
        let mut turn_usage = Usage::default();
        self.history.push(ChatMessage::user(text));

        // Every turn may name a new workload (the REPL); what was gathered before in this
        // session is not sent again.
        let mut proposed = false;
        if self.cfg.pregather && self.cfg.gatherer.is_some() {
            proposed = self.pregather(text, events, cancel).await;
        }
        self.offer_changes |= proposed || asks_for_change(text);

        let mut guard = RepeatGuard::new(self.cfg.repeat_limit);
        let mut steps = 0u32;
        let (end, answer) = loop {
            if cancel.is_cancelled() {
                break (TurnEnd::Interrupted, String::new());
            }
            if steps >= self.cfg.max_steps {
                let answer = format!(
                    "Stopped after {steps} model steps (--max-steps {}) without a final answer. \
                     The tool results so far are above; ask again with a narrower question or a higher --max-steps.",
                    self.cfg.max_steps
                );
                self.history.push(ChatMessage::assistant(answer.clone()));
                break (TurnEnd::MaxSteps, answer);
            }
            steps += 1;
            let tools = self.offered_specs();
            let messages = match self.request_messages(&tools) {
                Ok(m) => m,
                Err(message) => {
                    emit(Event::Error {
                        message,
                        exit_code: crate::exit::MODEL_ERROR,
                    });
                    break (TurnEnd::Failed, String::new());
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
                    break (TurnEnd::Interrupted, String::new());
                }
                Err(e) => {
                    emit(Event::Error {
                        message: e.to_string(),
                        exit_code: crate::exit::MODEL_ERROR,
                    });
                    break (TurnEnd::Failed, String::new());
                }
            };
            if let Some(u) = &response.usage {
                turn_usage.add(u);
                self.usage.add(u);
                self.calibrate(u.prompt_tokens);
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
                break (TurnEnd::Answered, answer);
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
                // The model asked for a change without it being offered (it read the
                // system prompt): offer the change tools from now on. The call itself
                // goes through the same approval path as any other.
                if self
                    .registry
                    .handler(&call.name)
                    .is_some_and(|h| h.is_mutating())
                {
                    self.offer_changes = true;
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
                break (end, String::new());
            }
        };
        self.end_turn(events, end, answer, turn_usage, steps);
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
    /// Pre-gather this turn's context into the history. True when it holds a finding
    /// with a proposed change.
    async fn pregather(
        &mut self,
        question: &str,
        events: &mpsc::UnboundedSender<Event>,
        cancel: &CancellationToken,
    ) -> bool {
        let Some(gatherer) = self.cfg.gatherer.clone() else {
            return false;
        };
        let ns = self.cfg.namespace.clone();
        let gathered = tokio::select! {
            g = gatherer.gather(self.ctx.turn, question, ns.as_deref()) => g,
            _ = cancel.cancelled() => return false,
        };
        let gathered: Vec<_> = gathered
            .into_iter()
            .filter(|g| self.gathered.insert((g.tool.clone(), g.args.to_string())))
            .collect();
        if gathered.is_empty() {
            return false;
        }
        let proposed = gathered
            .iter()
            .any(|g| g.findings.as_ref().is_some_and(|f| f.proposes_change));
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
            Some("kai gathered this context first.".into()),
            calls.clone(),
        ));
        for (call, g) in calls.iter().zip(gathered) {
            let text = match g.error {
                Some(e) => format!("error: {e}"),
                None => g.output,
            };
            self.history.push(ChatMessage::tool_result(&call.id, text));
        }
        proposed
    }

    /// The declarations of this request: every tool, except the change tools while no
    /// change is on the table (they are most of the declarations' bytes).
    /// In the registry's order: leaving out the changes must not move the other bytes
    /// of the declarations (a provider's prompt cache reuses only an identical prefix).
    fn offered_specs(&self) -> Vec<ToolSpec> {
        let specs = self.registry.specs();
        if self.offer_changes {
            return specs;
        }
        let changes: std::collections::HashSet<&str> = self
            .registry
            .decls()
            .filter(|d| d.mutating)
            .map(|d| d.name.as_str())
            .collect();
        specs
            .into_iter()
            .filter(|s| !changes.contains(s.name.as_str()))
            .collect()
    }

    /// The messages of the next request: the system prompt, then the history as the
    /// model may see it (every message through [`to_model`], the one egress point),
    /// fitted to the context budget ([`context::fit`]: old tool output first, then
    /// earlier turns summarised; the latest question and step are never dropped). `Err`
    /// when even that leaves the request over budget: better a clear error than a
    /// request the endpoint rejects or, worse, silently truncates.
    fn request_messages(&mut self, tools: &[ToolSpec]) -> Result<Vec<ChatMessage>, String> {
        let budget = self.budget_bytes();
        // The system prompt is kai's own constant, so it is not rewritten by egress.
        let system = ChatMessage::system(self.cfg.system_prompt.clone());
        match context::fit(&mut self.history, system, tools, budget, to_model) {
            Ok(fitted) => {
                self.last_request_bytes = fitted.bytes;
                Ok(fitted.messages)
            }
            Err(bytes) => Err(format!(
                "the next request to the model would be about {} tokens, over the context budget of {} tokens, \
                 even with old tool output elided and earlier turns summarised; ask a narrower question or start a new session",
                self.scaled_tokens(bytes),
                self.cfg.context_budget_tokens
            )),
        }
    }

    /// The budget in bytes of request: 4 bytes a token, fewer when the provider's own
    /// counts showed the estimate runs low for this conversation.
    fn budget_bytes(&self) -> usize {
        (kai_text::budget::bytes_for_tokens(self.cfg.context_budget_tokens) as f64
            / self.token_ratio) as usize
    }

    /// Estimated tokens of `bytes` of request, scaled like the budget.
    fn scaled_tokens(&self, bytes: usize) -> usize {
        (kai_text::budget::tokens_for_bytes(bytes) as f64 * self.token_ratio).ceil() as usize
    }

    /// Learn from the provider's count of the request just sent how far off the 4-bytes
    /// estimate is. Only an estimate that runs low matters (it would let a request over
    /// the window through); a wild count is not believed beyond a factor of 2.
    fn calibrate(&mut self, prompt_tokens: u64) {
        self.last_prompt_tokens = Some(prompt_tokens);
        let estimate = kai_text::budget::tokens_for_bytes(self.last_request_bytes);
        if estimate > 0 && prompt_tokens > 0 {
            self.token_ratio = (prompt_tokens as f64 / estimate as f64).clamp(1.0, 2.0);
        }
    }

    /// How full the context is.
    pub fn context_report(&self) -> ContextReport {
        ContextReport {
            budget_tokens: self.cfg.context_budget_tokens,
            last_request_tokens: self.scaled_tokens(self.last_request_bytes),
            last_prompt_tokens: self.last_prompt_tokens,
            ..ContextReport::of_history(&self.history)
        }
    }

    /// The session as the front end may save it.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            history: self.history.iter().map(to_model).collect(),
            usage: self.usage,
            context: self.context_report(),
            turns: self.turns,
        }
    }

    /// Continue a saved conversation: `history` (what the model saw, as a
    /// [`Snapshot`] holds it) replaces this agent's, repaired where it would not be a
    /// valid conversation ([`state::restorable`]).
    pub fn restore(&mut self, history: Vec<ChatMessage>) {
        self.history = state::restorable(history);
        self.turns = self.history.iter().filter(|m| m.role == Role::User).count() as u32;
        self.publish();
    }

    /// Change what later turns run with.
    pub fn reconfigure(&mut self, r: Reconfigure) {
        if let Some(m) = r.model {
            self.cfg.model = m;
        }
        if let Some(b) = r.context_budget_tokens {
            self.cfg.context_budget_tokens = b;
        }
        if let Some(ns) = r.namespace {
            self.cfg.namespace = ns;
            // Another namespace's objects may share names with what was gathered.
            self.gathered.clear();
        }
        if let Some(reg) = r.registry {
            self.registry = reg;
        }
        if let Some(g) = r.gatherer {
            self.cfg.gatherer = g;
            self.gathered.clear();
        }
        self.publish();
    }

    /// Make the current state what [`AgentHandle::snapshot`] returns.
    fn publish(&self) {
        let snap = self.snapshot();
        if let Ok(mut p) = self.published.lock() {
            *p = snap;
        }
    }

    /// End the turn: publish the state, then tell the front end (which may read the
    /// state as soon as it sees `TurnDone`).
    fn end_turn(
        &mut self,
        events: &mpsc::UnboundedSender<Event>,
        end: TurnEnd,
        answer: String,
        usage: Usage,
        steps: u32,
    ) {
        if end == TurnEnd::Interrupted {
            // The next question follows an unanswered one; say why, so the model does
            // not take the silence for an answer.
            self.history.push(ChatMessage::assistant(
                "[the user interrupted this turn before it was answered]",
            ));
        }
        self.publish();
        let _ = events.send(Event::TurnDone {
            end,
            answer,
            usage,
            steps,
        });
    }
}

/// Whether a question asks for a change ("scale web to 3", "roll back payments", "can
/// you fix it?"), not about one ("why does the autoscaler not scale?").
pub fn asks_for_change(question: &str) -> bool {
    const VERBS: &[&str] = &[
        "fix",
        "apply",
        "scale",
        "rollback",
        "roll",
        "undo",
        "revert",
        "restart",
        "patch",
        "delete",
        "remove",
        "set",
        "change",
        "update",
        "increase",
        "raise",
        "bump",
        "lower",
        "decrease",
        "edit",
        "create",
        "add",
        "upgrade",
        "downgrade",
        "redeploy",
        "propose",
    ];
    const ASKING_WHY: &[&str] = &[
        "why", "what", "what's", "whats", "is", "are", "does", "do", "did", "when", "where",
        "which", "who", "how",
    ];
    let words: Vec<String> = question
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    let Some(first) = words.first() else {
        return false;
    };
    !ASKING_WHY.contains(&first.as_str()) && words.iter().any(|w| VERBS.contains(&w.as_str()))
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
        // The earlier step's output became a note naming the call.
        let note = m[3].content.as_deref().unwrap_or_default();
        assert!(note.starts_with(context::ELIDED_PREFIX), "{note}");
        assert!(
            note.contains(": t (≈1,000 tokens); call the tool again if needed]"),
            "{note}"
        );
        assert_eq!(m[5].content.as_deref(), Some("small result"));
        let cut = m[6].content.as_deref().unwrap_or_default();
        assert!(
            cut.starts_with("new new") && cut.contains("bytes cut here"),
            "{cut}"
        );
        // The history keeps the fitting, so the next step starts from it.
        assert_eq!(a.history[2].content.as_deref(), Some(note));
        let r = a.context_report();
        assert_eq!(r.elided_outputs, 1);
        assert!(r.last_request_tokens > 0 && r.last_request_tokens <= 2_000);
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
    fn earlier_turns_are_summarised_before_giving_up_and_giving_up_is_an_error() {
        let mut a = agent(500);
        a.history = vec![
            ChatMessage::user("first question ".repeat(200)),
            ChatMessage::assistant("first answer ".repeat(200)),
            ChatMessage::user("second question"),
        ];
        let m = a.request_messages(&[]).unwrap_or_default();
        assert_eq!(m.len(), 4, "{m:?}");
        let q = m[1].content.as_deref().unwrap_or_default();
        assert!(
            q.starts_with("first question") && q.ends_with('…') && q.len() < 320,
            "{q}"
        );
        let s = m[2].content.as_deref().unwrap_or_default();
        assert!(s.starts_with(context::SUMMARY_MARK), "{s}");
        assert!(s.contains("first answer") && s.len() < 500, "{s}");
        assert_eq!(m[3].content.as_deref(), Some("second question"));

        let mut a = agent(1_000);
        a.history = vec![ChatMessage::user("a question far too long ".repeat(400))];
        let e = a.request_messages(&[]).unwrap_err();
        assert!(e.contains("context budget of 1000 tokens"), "{e}");
    }

    #[test]
    fn the_providers_count_shrinks_the_budget_when_the_estimate_runs_low() {
        let mut a = agent(2_000);
        a.history = vec![
            ChatMessage::user("q"),
            ChatMessage::assistant_tool_calls(None, vec![call("a")]),
            ChatMessage::tool_result("a", "x".repeat(6_000)),
        ];
        let m = a.request_messages(&[]).unwrap();
        let before = sent_bytes(&m);
        assert!(!serde_json::to_string(&m)
            .unwrap_or_default()
            .contains("cut here"));
        // The provider counted twice what 4 bytes a token estimates.
        a.calibrate((kai_text::budget::tokens_for_bytes(a.last_request_bytes) * 2) as u64);
        let m = a.request_messages(&[]).unwrap();
        assert!(
            sent_bytes(&m) <= 2_000 * 4 / 2,
            "{} (was {before})",
            sent_bytes(&m)
        );
        let r = a.context_report();
        assert!(r.last_request_tokens <= 2_000, "{r:?}");
        assert!(r.last_prompt_tokens.is_some());
        // A count below the estimate is not believed to make room.
        a.calibrate(1);
        assert_eq!(a.budget_bytes(), 8_000);
    }

    #[test]
    fn a_restored_history_is_continued_and_reconfiguring_changes_later_requests() {
        let mut a = agent(10_000);
        a.restore(vec![
            ChatMessage::system("stale"),
            ChatMessage::user("earlier question"),
            ChatMessage::assistant("earlier answer"),
        ]);
        assert_eq!(a.turns, 1);
        assert_eq!(a.history().len(), 2);
        a.reconfigure(Reconfigure {
            model: Some("other".into()),
            context_budget_tokens: Some(20_000),
            namespace: Some(Some("shop".into())),
            ..Default::default()
        });
        assert_eq!(a.cfg.model, "other");
        assert_eq!(a.cfg.namespace.as_deref(), Some("shop"));
        let snap = a.published.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(snap.context.budget_tokens, 20_000);
        assert_eq!(snap.history.len(), 2);
    }

    #[test]
    fn token_estimate_rounds_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
    }

    #[test]
    fn a_question_asks_for_a_change_or_about_one() {
        assert!(asks_for_change("scale web to 3 replicas"));
        assert!(asks_for_change("Please roll back payments"));
        assert!(asks_for_change("can you fix it?"));
        assert!(!asks_for_change("why does the feed autoscaler not scale?"));
        assert!(!asks_for_change("why is backend crashlooping?"));
        assert!(!asks_for_change("how do I fix a crash loop?"));
        assert!(!asks_for_change(""));
    }
}
