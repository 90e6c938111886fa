//! `kai` with no question on a terminal: an interactive session. Each line is a turn of
//! the same agent (so it remembers the conversation); lines starting with `/` are
//! commands, parsed by a pure function ([`parse_line`]) that is unit-tested.

use anyhow::Result;
use rustyline::error::ReadlineError;

use crate::agent::{self, AgentHandle};
use crate::app::Exit;
use crate::cli::{GlobalArgs, Output};
use crate::config::Settings;
use crate::exit;
use crate::llm::Usage;
use crate::oneshot::{self, ApprovalMode};
use crate::ui::term::for_terminal;

/// What one input line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Empty,
    Question(String),
    Command(Slash),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slash {
    Help,
    Exit,
    /// Forget the conversation (and any "yes for this session").
    Reset,
    /// Tokens used so far in this session.
    Usage,
    Unknown(String),
}

pub const HELP: &str = "\
Ask a question about the cluster, e.g. why is backend crashlooping?
Commands:
  /help    this text
  /reset   forget the conversation so far (and any \"yes for this session\")
  /usage   tokens used in this session
  /exit    leave (also /quit, Ctrl-D)
Ctrl-C stops the answer in progress.";

/// Parse one line. `//text` is a question starting with a slash, not a command.
pub fn parse_line(line: &str) -> Input {
    let t = line.trim();
    if t.is_empty() {
        return Input::Empty;
    }
    if let Some(rest) = t.strip_prefix("//") {
        return Input::Question(format!("/{rest}"));
    }
    let Some(cmd) = t.strip_prefix('/') else {
        return Input::Question(t.to_string());
    };
    let word = cmd
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    Input::Command(match word.as_str() {
        "help" | "h" | "?" => Slash::Help,
        "exit" | "quit" | "q" => Slash::Exit,
        "reset" | "clear" => Slash::Reset,
        "usage" | "tokens" => Slash::Usage,
        _ => Slash::Unknown(word),
    })
}

pub async fn run(settings: &Settings, global: &GlobalArgs) -> Result<i32> {
    if global.output == Output::Json {
        return Err(Exit::new(
            exit::USAGE,
            "-o json needs a question: kai -o json \"why is backend crashlooping?\"",
        )
        .into());
    }
    let llm = oneshot::build_llm(settings)?;
    let cluster = oneshot::connect_cluster(settings).await?;
    let (registry, ctx, cfg) = oneshot::session(
        settings,
        global,
        oneshot::tool_env(settings, Some(cluster.clone())),
    )?;
    let spawn = || agent::spawn(llm.clone(), registry.clone(), ctx.clone(), cfg.clone());
    let prices = settings
        .llm
        .input_price_per_mtok
        .zip(settings.llm.output_price_per_mtok);
    // The context and namespace names come from a kubeconfig file, maybe someone else's.
    eprintln!(
        "kai {} · context {} · namespace {} · model {}\nAsk a question; /help for commands, /exit or Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION"),
        for_terminal(&cluster.context),
        for_terminal(&cluster.default_namespace),
        for_terminal(&settings.llm.model)
    );

    let mut editor = rustyline::DefaultEditor::new()
        .map_err(|e| Exit::new(exit::INTERNAL, format!("cannot start the line editor: {e}")))?;
    let history = settings.data_dir.join("history.txt");
    // A missing history file is normal on the first run.
    let _ = editor.load_history(&history);

    let mut handle: AgentHandle = spawn();
    let mut total = Usage::default();
    loop {
        // The editor blocks on the terminal; let the runtime move other tasks away.
        let line = tokio::task::block_in_place(|| editor.readline("kai> "));
        let line = match line {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                eprintln!("(Ctrl-D or /exit to leave)");
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!(
                    "kai: cannot read the terminal: {}",
                    for_terminal(&e.to_string())
                );
                break;
            }
        };
        match parse_line(&line) {
            Input::Empty => {}
            Input::Command(Slash::Exit) => break,
            Input::Command(Slash::Help) => println!("{HELP}"),
            Input::Command(Slash::Usage) => println!("{}", crate::ui::usage_line(&total, prices)),
            Input::Command(Slash::Reset) => {
                handle.shutdown().await;
                handle = spawn();
                println!("conversation cleared");
            }
            Input::Command(Slash::Unknown(c)) => {
                eprintln!(
                    "kai: unknown command /{}; /help lists the commands",
                    for_terminal(&c)
                )
            }
            Input::Question(q) => {
                let _ = editor.add_history_entry(q.as_str());
                let outcome = oneshot::drive_turn(
                    &mut handle,
                    &q,
                    Output::Text,
                    global.verbose > 0,
                    ApprovalMode::Ask,
                    &settings.llm.model,
                    prices,
                )
                .await;
                total.add(&outcome.usage);
            }
        }
    }
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = editor.save_history(&history);
    handle.shutdown().await;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_questions_and_commands() {
        let cases = [
            ("", Input::Empty),
            ("   ", Input::Empty),
            (
                "why is backend down?",
                Input::Question("why is backend down?".into()),
            ),
            ("  /help ", Input::Command(Slash::Help)),
            ("/?", Input::Command(Slash::Help)),
            ("/EXIT", Input::Command(Slash::Exit)),
            ("/quit", Input::Command(Slash::Exit)),
            ("/reset now", Input::Command(Slash::Reset)),
            ("/usage", Input::Command(Slash::Usage)),
            ("/frob x", Input::Command(Slash::Unknown("frob".into()))),
            ("/", Input::Command(Slash::Unknown(String::new()))),
            (
                "//etc/hosts is missing",
                Input::Question("/etc/hosts is missing".into()),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line), want, "{line:?}");
        }
    }
}
