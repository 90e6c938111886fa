//! The one-shot front end: `kai "question"`. Builds the session, drives one turn through
//! the agent protocol, renders events (human or JSON), answers approval requests from the
//! user's terminal only, and picks the exit code.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;

use crate::agent::protocol::{ApprovalRequest, Decision, Event, Op, TurnEnd};
use crate::agent::{self, AgentConfig};
use crate::app::Exit;
use crate::cli::{GlobalArgs, Output};
use crate::cluster::{Cluster, ConnectOptions};
use crate::config::Settings;
use crate::exit;
use crate::llm::openai::OpenAiClient;
use crate::llm::LlmClient;
use crate::tools::docs::RunbookGatherer;
use crate::tools::{CallCtx, ClusterGatherer, DenyAll, ToolEnv};
use crate::ui::human::HumanSink;
use crate::ui::json::JsonSink;
use crate::ui::term::for_terminal;

/// Connect and check the API server answers; errors carry their exit code.
pub async fn connect_cluster(settings: &Settings) -> Result<Arc<Cluster>, Exit> {
    let opts = ConnectOptions {
        kubeconfig: settings.kubeconfig.clone(),
        context: settings.context.clone(),
        namespace: settings.namespace.clone(),
    };
    let cluster = Cluster::connect(&opts)
        .await
        .map_err(|e| Exit::new(crate::app::cluster_exit(&e), e.to_string()))?;
    cluster
        .ping()
        .await
        .map_err(|e| Exit::new(crate::app::cluster_exit(&e), e.to_string()))?;
    Ok(Arc::new(cluster))
}

/// The model client, after checking a key is there when the endpoint needs one.
pub fn build_llm(settings: &Settings) -> Result<Arc<dyn LlmClient>, Exit> {
    if settings.llm.api_key.is_none() && settings.llm.needs_key() {
        let var = settings
            .llm
            .api_key_env
            .clone()
            .unwrap_or_else(|| "OPENAI_API_KEY".into());
        return Err(Exit::new(
            exit::NO_API_KEY,
            format!(
                "no API key for {}: set {var}, or point kai at a local OpenAI-compatible server with --base-url; \
                 `kai diagnose --no-llm` works without a model",
                crate::llm::redact_url(&settings.llm.base_url)
            ),
        ));
    }
    let client = OpenAiClient::new(&settings.llm)
        .map_err(|e| Exit::new(exit::MODEL_ERROR, e.to_string()))?;
    Ok(Arc::new(client))
}

/// The tools' environment for this session.
pub fn tool_env(settings: &Settings, cluster: Option<Arc<Cluster>>) -> Arc<ToolEnv> {
    Arc::new(ToolEnv {
        cluster,
        budget_tokens: settings.tool_output_tokens,
        auto_approve: settings.yes,
        data_dir: settings.data_dir.clone(),
        reads: Default::default(),
    })
}

/// The agent's side of a session: the standard tools bound to `env`, and the agent
/// configured from the settings (pre-gathering through `env` unless turned off). The
/// agent replaces the approver with its protocol round trip to the front end.
pub fn session(
    settings: &Settings,
    global: &GlobalArgs,
    env: Arc<ToolEnv>,
) -> Result<(Arc<crate::tools::Registry>, CallCtx, AgentConfig), Exit> {
    let mut registry = crate::tools::registry(env.clone(), settings.read_only)
        .map_err(|e| Exit::new(exit::INTERNAL, e.to_string()))?;
    // Runbooks and the user's docs: the `search_docs` tool, and the top finding's runbook
    // section in the pre-gathered context. The index opens on first use.
    let docs = crate::docs::session_docs(settings);
    crate::tools::docs::register(&mut registry, docs.clone())
        .map_err(|e| Exit::new(exit::INTERNAL, e.to_string()))?;
    let registry = Arc::new(registry);
    let mut cfg = AgentConfig::new(settings.llm.model.clone());
    cfg.max_steps = settings.max_steps;
    cfg.context_budget_tokens = settings.context_budget_for(&settings.llm.model);
    cfg.namespace = settings.namespace.clone();
    cfg.pregather = !global.no_pregather;
    cfg.gatherer = env.cluster.is_some().then(|| {
        let cluster = Arc::new(ClusterGatherer::new(env)) as Arc<dyn crate::agent::Gatherer>;
        Arc::new(RunbookGatherer::new(cluster, docs)) as Arc<dyn crate::agent::Gatherer>
    });
    Ok((registry, CallCtx::new(Arc::new(DenyAll)), cfg))
}

/// How the front end answers approval requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalMode {
    /// Ask on the terminal.
    Ask,
    /// No terminal and no --yes: print the proposal, apply nothing.
    NoTerminal,
}

/// The outcome of a driven turn.
#[derive(Debug, Default)]
pub struct Outcome {
    pub end: Option<TurnEnd>,
    pub usage: crate::llm::Usage,
    pub error_code: Option<i32>,
    pub not_applied: usize,
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self.end {
            Some(TurnEnd::Answered) if self.not_applied > 0 => exit::NOT_APPLIED,
            Some(TurnEnd::Answered) => exit::OK,
            Some(TurnEnd::MaxSteps) => exit::MAX_STEPS,
            Some(TurnEnd::Interrupted) => exit::INTERRUPTED,
            Some(TurnEnd::Aborted) => exit::NOT_APPLIED,
            Some(TurnEnd::Failed) | None => self.error_code.unwrap_or(exit::INTERNAL),
        }
    }
}

/// Ask the user on the terminal; runs on a blocking thread since it reads stdin. When
/// this future is dropped (Ctrl-C at the prompt), the reading thread stops too: in a
/// session it would otherwise stay blocked on the terminal and eat the next line.
async fn ask_terminal(req: ApprovalRequest, color: bool) -> Decision {
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(stop.clone());
    tokio::task::spawn_blocking(move || {
        let mut input = std::io::BufReader::new(StoppableStdin { stop });
        let mut out = std::io::stderr();
        crate::changes::prompt_decision(&req, &mut input, &mut out, color)
    })
    .await
    .unwrap_or(Decision::Denied)
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// File descriptor 0, read until `stop` is set (then reads fail, which the prompt takes
/// as "no"). Reads the descriptor directly: nothing is left in a buffer for the next
/// reader (the line editor reads the descriptor too).
struct StoppableStdin {
    stop: Arc<AtomicBool>,
}

impl std::io::Read for StoppableStdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                // Not `Interrupted`: `read_line` would retry that for ever.
                return Err(std::io::Error::other("the prompt was abandoned"));
            }
            let mut fds = libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            let ready = unsafe { libc::poll(&mut fds, 1, 100) };
            if ready < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if ready == 0 {
                continue;
            }
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            return Ok(n.unsigned_abs());
        }
    }
}

/// The proposal as text, for when nobody can answer: its title, diff and command quote
/// the model and the cluster, so each passes [`for_terminal`].
pub fn proposal_text(req: &ApprovalRequest) -> String {
    format!(
        "\nProposed change (NOT applied: no terminal to confirm it; rerun in a terminal, or with --yes to apply):\n{}\n{}\nEquivalent command:\n  {}\n",
        for_terminal(&req.title),
        for_terminal(req.diff.trim_end()),
        for_terminal(&req.kubectl)
    )
}

pub fn print_proposal(req: &ApprovalRequest) {
    println!("{}", proposal_text(req));
}

pub async fn run(settings: &Settings, global: &GlobalArgs, prompt: &str) -> Result<i32> {
    let llm = build_llm(settings)?;
    let cluster = connect_cluster(settings).await?;
    let (registry, ctx, cfg) = session(settings, global, tool_env(settings, Some(cluster)))?;
    let mode = if std::io::stdin().is_terminal() {
        ApprovalMode::Ask
    } else {
        ApprovalMode::NoTerminal
    };
    let prices = settings
        .llm
        .input_price_per_mtok
        .zip(settings.llm.output_price_per_mtok);
    let mut handle = agent::spawn(llm, registry, ctx, cfg);
    let outcome = drive_turn(
        &mut handle,
        prompt,
        global.output,
        global.verbose > 0,
        mode,
        &settings.llm.model,
        prices,
    )
    .await;
    handle.shutdown().await;
    Ok(outcome.exit_code())
}

/// Drive one turn to its end, rendering events and answering approvals. The handle is
/// the caller's: a session (the REPL) keeps it, and so the memory.
pub async fn drive_turn(
    handle: &mut agent::AgentHandle,
    prompt: &str,
    output: Output,
    verbose: bool,
    mode: ApprovalMode,
    model: &str,
    prices: Option<(f64, f64)>,
) -> Outcome {
    let stdout_tty = std::io::stdout().is_terminal();
    let stderr_tty = std::io::stderr().is_terminal();
    let mut human = HumanSink::new(stdout_tty && output == Output::Text, stderr_tty, verbose);
    let mut json = JsonSink::new(model);
    let mut outcome = Outcome::default();
    handle.send(Op::UserTurn(prompt.to_string()));
    let mut interrupts = 0u32;
    loop {
        let event = tokio::select! {
            e = handle.events.recv() => e,
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts > 1 {
                    eprintln!("\nkai: interrupted");
                    std::process::exit(exit::INTERRUPTED);
                }
                handle.send(Op::Interrupt);
                continue;
            }
        };
        let Some(event) = event else { break };
        match output {
            Output::Json => json.event(&event),
            _ => human.event(&event),
        }
        match &event {
            Event::ApprovalRequested(req) => {
                let decision = match mode {
                    // Ctrl-C at the prompt aborts the turn instead of waiting for Enter.
                    ApprovalMode::Ask => tokio::select! {
                        d = ask_terminal(req.clone(), crate::ui::term::colour(stderr_tty)) => d,
                        _ = tokio::signal::ctrl_c() => {
                            eprintln!();
                            Decision::Abort
                        }
                    },
                    ApprovalMode::NoTerminal => {
                        if output == Output::Text {
                            print_proposal(req);
                        }
                        Decision::Denied
                    }
                };
                if !decision.is_approved() {
                    outcome.not_applied += 1;
                }
                let label = match &decision {
                    Decision::Approved | Decision::ApprovedForSession => "approved",
                    Decision::Denied if mode == ApprovalMode::NoTerminal => {
                        "not applied: no terminal"
                    }
                    Decision::Denied | Decision::DeniedWithFeedback(_) => "declined",
                    Decision::Abort => "aborted",
                };
                json.proposal(req, label);
                handle.send(Op::Approval {
                    id: req.id.clone(),
                    decision,
                });
            }
            Event::Error { exit_code, .. } => outcome.error_code = Some(*exit_code),
            Event::TurnDone { end, usage, .. } => {
                outcome.end = Some(*end);
                outcome.usage = *usage;
                human.finish();
                if output == Output::Json {
                    json.report.cost_usd = prices.map(|(i, o)| {
                        crate::llm::pricing::cost_usd(
                            json.report.usage.prompt_tokens,
                            json.report.usage.completion_tokens,
                            i,
                            o,
                        )
                    });
                    println!("{}", json.render());
                } else if usage.total_tokens > 0 || usage.prompt_tokens > 0 {
                    eprintln!("{}", crate::ui::usage_line(usage, prices));
                }
                break;
            }
            _ => {}
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_proposal_is_cleaned() {
        let req = ApprovalRequest {
            id: "p".into(),
            tool: "scale".into(),
            title: "scale Deployment shop/\x1b]0;pwned\x07web".into(),
            diff: "-  replicas: 1\n+  replicas: 3 \x1b[2J\n".into(),
            kubectl: "kubectl scale --token=abcdefghijklmnopqrstu deployment/web\r".into(),
            dangerous: false,
            confirm_name: None,
        };
        let text = proposal_text(&req);
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
        assert!(text.contains("shop/^[]0;pwned^Gweb"), "{text}");
        assert!(text.contains("+  replicas: 3 ^[[2J"), "{text}");
        assert!(!text.contains("abcdefghijklmnopqrstu"), "{text}");
        assert!(text.contains("deployment/web^M"), "{text}");
    }
}
