//! `kai` with no question on a terminal: an interactive session. Each question is a turn
//! of the same agent (so it remembers the conversation); lines starting with `/` are
//! commands, parsed by one pure function ([`command::parse_line`]).
//!
//! The session is saved after every turn ([`saved`]) and can be resumed (`kai --resume`).
//! Approval prompts are the one-shot mode's ([`oneshot::drive_turn`]); Ctrl-C stops the
//! turn in progress and keeps the session.

pub mod command;
pub mod complete;
pub mod saved;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

pub use command::{parse_line, Input, Slash};

use crate::agent::{self, AgentConfig, AgentHandle, Reconfigure};
use crate::app::Exit;
use crate::cli::{GlobalArgs, Output};
use crate::cluster::Cluster;
use crate::config::Settings;
use crate::exit;
use crate::llm::{ChatMessage, LlmClient, Role, Usage};
use crate::oneshot::{self, ApprovalMode};
use crate::tools::{CallCtx, Registry};
use crate::ui::term::{for_terminal, TerminalWriter};
use complete::{KaiHelper, NameCache};
use saved::SavedSession;

/// The session: the agent, what it is connected to, and what is saved.
struct Session<'a> {
    settings: Settings,
    global: &'a GlobalArgs,
    llm: Arc<dyn LlmClient>,
    cluster: Arc<Cluster>,
    registry: Arc<Registry>,
    ctx: CallCtx,
    /// The agent's configuration as it is now (after `/model`, `/namespace`, ...), for a
    /// new agent after `/reset`.
    cfg: AgentConfig,
    handle: AgentHandle,
    saved: SavedSession,
    /// Usage of the session, carried over from a resumed one.
    total: Usage,
    prices: Option<(f64, f64)>,
    names: Arc<NameCache>,
}

/// Start the session; `resume` continues a saved one (`Some(None)`: the latest).
pub async fn run(
    settings: &Settings,
    global: &GlobalArgs,
    resume: Option<Option<String>>,
) -> Result<i32> {
    if global.output == Output::Json {
        return Err(Exit::new(
            exit::USAGE,
            "-o json needs a question: kai -o json \"why is backend crashlooping?\"",
        )
        .into());
    }
    let mut settings = settings.clone();
    let resumed = match &resume {
        Some(id) => {
            let s = saved::load(&settings.data_dir, id.as_deref())
                .map_err(|e| Exit::new(exit::USAGE, e.to_string()))?;
            // The session continues where it was, unless the command line says otherwise.
            if global.context.is_none() {
                settings.context = Some(s.context.clone());
            }
            if global.namespace.is_none() {
                settings.namespace = Some(s.namespace.clone());
            }
            Some(s)
        }
        None => None,
    };
    let llm = oneshot::build_llm(&settings)?;
    let cluster = oneshot::connect_cluster(&settings).await?;
    let (registry, ctx, mut cfg) = oneshot::session(
        &settings,
        global,
        oneshot::tool_env(&settings, Some(cluster.clone())),
    )?;
    cfg.namespace = Some(cluster.default_namespace.clone());
    let prices = settings
        .llm
        .input_price_per_mtok
        .zip(settings.llm.output_price_per_mtok);
    let (saved, history, total) = match resumed {
        Some(mut s) => {
            let history = std::mem::take(&mut s.history);
            let usage = s.usage;
            s.context = cluster.context.clone();
            s.namespace = cluster.default_namespace.clone();
            (s, history, usage)
        }
        None => (
            SavedSession::new(
                &cluster.context,
                &cluster.default_namespace,
                &settings.llm.model,
            ),
            Vec::new(),
            Usage::default(),
        ),
    };
    let resumed_turns = history.iter().filter(|m| m.role == Role::User).count();
    let handle = agent::spawn_resumed(
        llm.clone(),
        registry.clone(),
        ctx.clone(),
        cfg.clone(),
        history,
    );
    let contexts = crate::cluster::listing::kubeconfig_contexts(settings.kubeconfig.as_deref());
    let names = NameCache::new(cluster.clone(), cluster.default_namespace.clone(), contexts);
    names.prefetch();
    // The context and namespace names come from a kubeconfig file, maybe someone else's.
    eprintln!(
        "kai {} · context {} · namespace {} · model {}",
        env!("CARGO_PKG_VERSION"),
        for_terminal(&cluster.context),
        for_terminal(&cluster.default_namespace),
        for_terminal(&settings.llm.model)
    );
    if resumed_turns > 0 {
        eprintln!(
            "resumed session {} ({resumed_turns} earlier questions; \"yes for this session\" is asked again)",
            for_terminal(&saved.id)
        );
    }
    eprintln!("Ask a question; /help for commands, /exit or Ctrl-D to leave.");

    let mut session = Session {
        settings,
        global,
        llm,
        cluster,
        registry,
        ctx,
        cfg,
        handle,
        saved,
        total,
        prices,
        names,
    };
    session.run_loop().await
}

impl Session<'_> {
    async fn run_loop(&mut self) -> Result<i32> {
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .auto_add_history(false)
            .build();
        let mut editor: Editor<KaiHelper, DefaultHistory> = Editor::with_config(config)
            .map_err(|e| Exit::new(exit::INTERNAL, format!("cannot start the line editor: {e}")))?;
        editor.set_helper(Some(KaiHelper {
            names: self.names.clone(),
        }));
        let history = self.settings.data_dir.join("history.txt");
        // A missing history file is normal on the first run.
        let _ = editor.load_history(&history);

        while let Some(text) = read_input(&mut editor, &self.prompt()) {
            let input = parse_line(&text);
            if !matches!(input, Input::Empty) {
                let _ = editor.add_history_entry(text.trim());
            }
            match input {
                Input::Empty => {}
                Input::Command(Slash::Exit) => break,
                Input::Command(c) => self.command(c).await,
                Input::Question(q) => self.turn(&q).await,
            }
        }
        if let Some(dir) = history.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(&history);
        self.save();
        Ok(exit::OK)
    }

    /// `kai [context/namespace]> `: where the next question goes.
    fn prompt(&self) -> String {
        for_terminal(&format!(
            "kai [{}/{}]> ",
            self.cluster.context, self.cluster.default_namespace
        ))
    }

    async fn turn(&mut self, question: &str) {
        let outcome = oneshot::drive_turn(
            &mut self.handle,
            question,
            Output::Text,
            self.global.verbose > 0,
            ApprovalMode::Ask,
            &self.cfg.model,
            self.prices,
        )
        .await;
        self.total.add(&outcome.usage);
        self.save();
    }

    /// Save the conversation as the model saw it (the agent's snapshot); a session with
    /// no question yet is not saved.
    fn save(&mut self) {
        let snap = self.handle.snapshot();
        if snap.history.is_empty() {
            return;
        }
        self.saved.context = self.cluster.context.clone();
        self.saved.namespace = self.cluster.default_namespace.clone();
        self.saved.model = self.cfg.model.clone();
        self.saved.update(snap.history, self.total);
        if let Err(e) = saved::save(&self.settings.data_dir, &self.saved) {
            eprintln!(
                "kai: the session was not saved: {}",
                for_terminal(&e.to_string())
            );
        }
    }

    async fn command(&mut self, c: Slash) {
        match c {
            Slash::Exit => {}
            Slash::Help => println!("{}", command::help()),
            Slash::Usage => println!("{}", self.usage_text()),
            Slash::Reset => self.reset().await,
            Slash::Namespace(None) => println!(
                "namespace {}",
                for_terminal(&self.cluster.default_namespace)
            ),
            Slash::Namespace(Some(ns)) => {
                let context = self.cluster.context.clone();
                self.reconnect(Some(context), Some(ns), false).await;
            }
            Slash::Context(None) => println!("context {}", for_terminal(&self.cluster.context)),
            // The new context's own namespace, as kubectl does.
            Slash::Context(Some(ctx)) => self.reconnect(Some(ctx), None, true).await,
            Slash::Model(None) => println!("model {}", for_terminal(&self.cfg.model)),
            Slash::Model(Some(m)) => self.switch_model(m),
            Slash::Tools => print!("{}", self.tools_text()),
            Slash::Scan => self.scan().await,
            Slash::Diagnose(target) => self.diagnose(target.as_deref()).await,
            Slash::Docs(q) => self.docs(&q).await,
            Slash::Generate { description, apply } => self.generate(&description, apply).await,
            Slash::History => {
                let mut out = TerminalWriter::new(std::io::stdout());
                if let Err(e) = crate::changes::history_cmd(&self.settings.data_dir, &mut out).await
                {
                    eprintln!("kai: {}", for_terminal(&format!("{e:#}")));
                }
                let _ = out.flush();
            }
            Slash::Undo(id) => {
                if let Err(e) =
                    crate::commands::undo_on(self.cluster.clone(), &self.settings, id).await
                {
                    eprintln!("kai: {}", for_terminal(&format!("{e:#}")));
                }
            }
            Slash::Save(file) => self.export(file),
            Slash::Unknown(c) => eprintln!(
                "kai: unknown command /{}; /help lists the commands",
                for_terminal(&c)
            ),
            Slash::Invalid(msg) => eprintln!("kai: {}", for_terminal(&msg)),
        }
    }

    /// Forget the conversation: a new agent (so no "yes for this session"), a new saved
    /// session.
    async fn reset(&mut self) {
        self.save();
        let fresh = agent::spawn(
            self.llm.clone(),
            self.registry.clone(),
            self.ctx.clone(),
            self.cfg.clone(),
        );
        let old = std::mem::replace(&mut self.handle, fresh);
        old.shutdown().await;
        self.saved = SavedSession::new(
            &self.cluster.context,
            &self.cluster.default_namespace,
            &self.cfg.model,
        );
        self.total = Usage::default();
        println!("conversation cleared");
    }

    /// Connect again (another namespace or context), and point the agent's tools,
    /// pre-gathering and namespace there. On failure the session stays where it was.
    async fn reconnect(
        &mut self,
        context: Option<String>,
        namespace: Option<String>,
        new_cluster: bool,
    ) {
        let mut s = self.settings.clone();
        s.context = context;
        s.namespace = namespace;
        let cluster = match oneshot::connect_cluster(&s).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "kai: staying in {}/{}: {}",
                    for_terminal(&self.cluster.context),
                    for_terminal(&self.cluster.default_namespace),
                    for_terminal(&e.message)
                );
                return;
            }
        };
        let (registry, _, cfg) = match oneshot::session(
            &s,
            self.global,
            oneshot::tool_env(&s, Some(cluster.clone())),
        ) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("kai: {}", for_terminal(&e.message));
                return;
            }
        };
        let ns = cluster.default_namespace.clone();
        self.handle
            .send(agent::protocol::Op::Reconfigure(Box::new(Reconfigure {
                namespace: Some(Some(ns.clone())),
                registry: Some(registry.clone()),
                gatherer: Some(cfg.gatherer.clone()),
                // Another cluster is not what the user said "yes for this session" to.
                forget_approvals: new_cluster,
                ..Default::default()
            })));
        self.cfg.namespace = Some(ns.clone());
        self.cfg.gatherer = cfg.gatherer;
        self.registry = registry;
        self.settings.context = Some(cluster.context.clone());
        self.settings.namespace = Some(ns.clone());
        self.cluster = cluster.clone();
        self.names.switch(cluster.clone(), ns.clone());
        println!(
            "now in context {}, namespace {}",
            for_terminal(&cluster.context),
            for_terminal(&ns)
        );
        self.save();
    }

    fn switch_model(&mut self, model: String) {
        let budget = self.settings.context_budget_for(&model);
        self.handle
            .send(agent::protocol::Op::Reconfigure(Box::new(Reconfigure {
                model: Some(model.clone()),
                context_budget_tokens: Some(budget),
                ..Default::default()
            })));
        // A profile's prices are for its own model; another model has its list price.
        self.prices = crate::llm::models::known_price(&model);
        self.cfg.model = model.clone();
        self.cfg.context_budget_tokens = budget;
        self.settings.llm.model = model.clone();
        let window = self
            .settings
            .context_window_for(&model)
            .map_or_else(|| "unknown".to_string(), group);
        println!(
            "model {} (context window {window} tokens; requests kept under {})",
            for_terminal(&model),
            group(budget as u64)
        );
    }

    fn usage_text(&self) -> String {
        let ctx = self.handle.snapshot().context;
        let window = self
            .settings
            .context_window_for(&self.cfg.model)
            .map_or_else(|| "unknown".to_string(), group);
        let budget = ctx.budget_tokens.max(1);
        // The provider's own count when it reported one; else kai's estimate.
        let last = ctx
            .last_prompt_tokens
            .unwrap_or(ctx.last_request_tokens as u64);
        let mut s = format!(
            "{}\ncontext: last request {} of {} tokens ({}%; model {} window {window})",
            crate::ui::usage_line(&self.total, self.prices),
            group(last),
            group(budget as u64),
            last * 100 / budget as u64,
            for_terminal(&self.cfg.model),
        );
        if ctx.elided_outputs + ctx.summarised_turns > 0 || ctx.dropped_turns {
            s.push_str(&format!(
                "\nto fit: {} old tool outputs elided, {} earlier turns summarised{}",
                ctx.elided_outputs,
                ctx.summarised_turns,
                if ctx.dropped_turns {
                    ", the earliest turns dropped"
                } else {
                    ""
                }
            ));
        }
        s
    }

    fn tools_text(&self) -> String {
        let mut s = String::from("The model may call (* changes the cluster, after your yes):\n");
        for name in self.registry.names() {
            let mutating = self
                .registry
                .handler(&name)
                .is_some_and(|h| h.is_mutating());
            s.push_str(&format!("  {} {name}\n", if mutating { "*" } else { " " }));
        }
        if self.settings.read_only {
            s.push_str("(--read-only: no tool that changes the cluster is offered)\n");
        }
        s
    }

    async fn scan(&self) {
        let ns = self.cluster.default_namespace.clone();
        match crate::analyze::scan_analysis(&self.cluster, Some(&ns))
            .await
            .map(|a| {
                crate::commands::print_notes(&a.notes);
                a.findings
            }) {
            Ok(f) if f.is_empty() => {
                println!("no problems found in namespace {}", for_terminal(&ns))
            }
            Ok(f) => crate::commands::print_findings(&f, Output::Text),
            Err(e) => eprintln!("kai: {}", for_terminal(&e.to_string())),
        }
    }

    async fn diagnose(&self, target: Option<&str>) {
        let ns = self.cluster.default_namespace.clone();
        match crate::analyze::diagnose_analysis(&self.cluster, &ns, target)
            .await
            .map(|a| {
                crate::commands::print_notes(&a.notes);
                a.findings
            }) {
            Ok(f) if f.is_empty() => println!(
                "no problems found for {}",
                for_terminal(target.unwrap_or(&ns))
            ),
            Ok(f) => crate::commands::print_findings(&f, Output::Text),
            Err(e) => eprintln!("kai: {}", for_terminal(&e.to_string())),
        }
    }

    /// `/docs QUERY`: `kai docs search` in the session: kai's runbooks and the user's
    /// indexed folders, without a model turn.
    async fn docs(&self, query: &str) {
        let docs = crate::docs::session_docs(&self.settings);
        print!(
            "{}",
            crate::docs::search_text(&docs, query, crate::docs::DEFAULT_K).await
        );
    }

    /// `/generate [--apply] DESCRIPTION`: `kai generate` in the session's context,
    /// namespace and model; the checked manifests are printed. With `--apply` they are
    /// then offered as a change, as `kai generate --apply` does: the server-side dry-run
    /// diff and the user's answer at this terminal (or `--yes`), never the model's.
    async fn generate(&self, description: &str, apply: bool) {
        let args = crate::generate::GenerateArgs {
            description: vec![description.to_string()],
            out: None,
            apply,
            offline: false,
            disable: Vec::new(),
        };
        if let Err(e) = crate::generate::run(&self.settings, self.global, &args).await {
            eprintln!("kai: {}", for_terminal(&format!("{e:#}")));
        }
    }

    /// `/save [FILE]`: the conversation as the model saw it, as Markdown.
    fn export(&self, file: Option<String>) {
        let snap = self.handle.snapshot();
        let path = file
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("kai-session-{}.md", self.saved.id)));
        let text = transcript(&self.saved, &snap.history);
        match write_private(&path, &text) {
            Ok(()) => println!(
                "saved the conversation to {}",
                for_terminal(&path.display().to_string())
            ),
            Err(e) => eprintln!(
                "kai: cannot write {}: {}",
                for_terminal(&path.display().to_string()),
                for_terminal(&e.to_string())
            ),
        }
    }
}

/// Read one input: a line, continued while it ends in a backslash. `None`: leave.
fn read_input(editor: &mut Editor<KaiHelper, DefaultHistory>, prompt: &str) -> Option<String> {
    let mut text = String::new();
    let mut prompt = prompt.to_string();
    loop {
        // The editor blocks on the terminal; let the runtime move other tasks away.
        let line = tokio::task::block_in_place(|| editor.readline(&prompt));
        match line {
            Ok(l) => match command::continued(&l) {
                Some(body) => {
                    text.push_str(body);
                    text.push('\n');
                    prompt = "... ".into();
                }
                None => {
                    text.push_str(&l);
                    return Some(text);
                }
            },
            Err(ReadlineError::Interrupted) => {
                if text.is_empty() {
                    eprintln!("(Ctrl-D or /exit to leave)");
                } else {
                    text.clear();
                }
                return Some(String::new());
            }
            Err(ReadlineError::Eof) => return None,
            Err(e) => {
                eprintln!(
                    "kai: cannot read the terminal: {}",
                    for_terminal(&e.to_string())
                );
                return None;
            }
        }
    }
}

/// The conversation as Markdown: questions, tool calls (one line each), answers.
fn transcript(s: &SavedSession, history: &[ChatMessage]) -> String {
    let mut out = format!(
        "# kai session {}\n\ncontext {} · namespace {} · model {}\n\n",
        s.id, s.context, s.namespace, s.model
    );
    for m in history {
        let text = m.content.as_deref().unwrap_or("").trim();
        match m.role {
            Role::User => out.push_str(&format!("## Question\n\n{text}\n\n")),
            Role::Assistant => {
                for c in &m.tool_calls {
                    let args: serde_json::Value =
                        serde_json::from_str(&c.arguments).unwrap_or(serde_json::Value::Null);
                    out.push_str(&format!(
                        "- tool: `{}`\n",
                        crate::tools::summarize_args(&c.name, &args)
                    ));
                }
                if !text.is_empty() {
                    out.push_str(&format!("{text}\n\n"));
                }
            }
            Role::Tool | Role::System => {}
        }
    }
    out
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(text.as_bytes())
}

/// `kai sessions`: the saved sessions, latest first.
pub fn sessions_cmd(settings: &Settings, output: Output) -> Result<i32> {
    let all =
        saved::list(&settings.data_dir).map_err(|e| Exit::new(exit::INTERNAL, e.to_string()))?;
    match output {
        Output::Json => {
            let rows: Vec<serde_json::Value> = all
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "id": s.id,
                        "started": s.started.to_string(),
                        "updated": s.updated.to_string(),
                        "context": s.context,
                        "namespace": s.namespace,
                        "model": s.model,
                        "first_question": s.first_question,
                    })
                })
                .collect();
            println!(
                "{}",
                crate::ui::json::pretty(&serde_json::Value::Array(rows))
            );
        }
        // (-o yaml and -o sarif are refused for this command by the command line.)
        _ if all.is_empty() => println!(
            "no saved sessions yet ({})",
            for_terminal(&saved::dir(&settings.data_dir).display().to_string())
        ),
        _ => {
            print!("{}", for_terminal(&saved::table(&all)));
            println!("kai --resume ID continues one; kai --resume the latest.");
        }
    }
    Ok(exit::OK)
}

/// 3200 → "3,200".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transcript_shows_questions_calls_and_answers_not_tool_output() {
        let s = SavedSession::new("ctx", "shop", "m");
        let history = vec![
            ChatMessage::user("why is web down?"),
            ChatMessage::assistant_tool_calls(
                None,
                vec![crate::llm::ToolCall {
                    id: "c1".into(),
                    name: "get_logs".into(),
                    arguments: r#"{"name":"web-1"}"#.into(),
                }],
            ),
            ChatMessage::tool_result("c1", "raw log output"),
            ChatMessage::assistant("The image tag does not exist."),
        ];
        let t = transcript(&s, &history);
        assert!(t.contains("## Question\n\nwhy is web down?"), "{t}");
        assert!(t.contains("- tool: `get_logs"), "{t}");
        assert!(t.contains("The image tag does not exist."), "{t}");
        assert!(!t.contains("raw log output"), "{t}");
    }
}
