//! The agent core: one turn loop, driven through [`protocol`] by every front end.
//!
//! [`spawn`] starts the agent as a task and returns an [`AgentHandle`]: operations go in,
//! events come out. Approval requests from mutating tools become
//! [`Event::ApprovalRequested`] and wait for the matching [`Op::Approval`]; the model has no
//! path to produce an `Op`.

pub mod guard;
pub mod protocol;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::llm::{ChatMessage, ChatRequest, LlmClient, LlmError, Role, ToolCall, Usage};
use crate::tools::{Approver, Registry, ToolCtx, ToolError};
use guard::RepeatGuard;
use protocol::{ApprovalRequest, Decision, Event, Op, TurnEnd};

/// The system prompt, compiled in from `prompts/`.
pub const SYSTEM_PROMPT: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/system.md"));

/// Rough token estimate (4 bytes a token) used for budgets; no tokenizer needed for that.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub model: String,
    pub max_steps: u32,
    pub system_prompt: String,
    /// Fetch the named workload's context before the first model call.
    pub pregather: bool,
    /// The namespace questions are about (`-n`), if given.
    pub namespace: Option<String>,
    /// Refuse the Nth identical tool call in a row.
    pub repeat_limit: u32,
    /// Keep the whole conversation under this many estimated tokens by eliding old
    /// tool results first.
    pub context_budget_tokens: usize,
    pub temperature: Option<f32>,
}

impl AgentConfig {
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            max_steps: crate::config::DEFAULT_MAX_STEPS,
            system_prompt: SYSTEM_PROMPT.to_string(),
            pregather: true,
            namespace: None,
            repeat_limit: 3,
            context_budget_tokens: 60_000,
            temperature: Some(0.1),
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
    mut ctx: ToolCtx,
    cfg: AgentConfig,
) -> AgentHandle {
    let (ops_tx, mut ops_rx) = mpsc::unbounded_channel::<Op>();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel::<Event>();
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    // "Yes for the rest of this session" is remembered here, once per session.
    let notices = ev_tx.clone();
    ctx.approver = Arc::new(crate::changes::SessionApprovals::with_notifier(
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
    pub ctx: ToolCtx,
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
        ctx: ToolCtx,
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
        if self.cfg.pregather && self.ctx.cluster.is_some() {
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
            self.fit_context();
            let request = ChatRequest {
                model: self.cfg.model.clone(),
                messages: self.request_messages(),
                tools: self.registry.specs(),
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

            let calls = normalize_calls(response.tool_calls, steps);
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
        let ns = self.cfg.namespace.clone();
        let gathered = tokio::select! {
            g = crate::gather::pregather(&self.ctx, question, ns.as_deref()) => g,
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

    fn request_messages(&self) -> Vec<ChatMessage> {
        let mut m = Vec::with_capacity(self.history.len() + 1);
        m.push(ChatMessage::system(self.cfg.system_prompt.clone()));
        m.extend(self.history.iter().cloned());
        m
    }

    /// Keep the conversation within the context budget: elide the oldest tool results
    /// (never the latest step's) until it fits.
    fn fit_context(&mut self) {
        let total: usize = self
            .history
            .iter()
            .map(|m| estimate_tokens(m.content.as_deref().unwrap_or("")) + 8)
            .sum::<usize>()
            + estimate_tokens(&self.cfg.system_prompt);
        if total <= self.cfg.context_budget_tokens {
            return;
        }
        let mut excess = total - self.cfg.context_budget_tokens;
        let last_assistant = self
            .history
            .iter()
            .rposition(|m| m.role == Role::Assistant)
            .unwrap_or(0);
        for m in self.history.iter_mut().take(last_assistant) {
            if excess == 0 {
                break;
            }
            if m.role == Role::Tool {
                let len = estimate_tokens(m.content.as_deref().unwrap_or(""));
                if len > 50 {
                    m.content = Some("[older tool output elided to fit the context window; call the tool again if needed]".into());
                    excess = excess.saturating_sub(len - 20);
                }
            }
        }
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

    #[test]
    fn token_estimate_rounds_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
    }
}
