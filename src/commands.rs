//! Subcommands other than the one-shot question: each is a thin edge over a module.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;

use crate::agent::protocol::{ApprovalRequest, Decision};
use crate::analyze::{Analysis, AnalyzeError, Finding};
use crate::app::Exit;
use crate::cli::{Command, DiagnoseArgs, GlobalArgs, Output, ScanArgs};
use crate::config::Settings;
use crate::exit;
use crate::tools::Approver;
use crate::ui::term::{for_terminal, TerminalWriter};

pub async fn dispatch(cmd: Command, settings: &Settings, global: &GlobalArgs) -> Result<i32> {
    match cmd {
        Command::Scan(args) => scan(settings, global, &args).await,
        Command::Diagnose(args) => diagnose(settings, global, &args).await,
        Command::History => {
            // Audit records hold object names and descriptions that came from the model.
            let mut out = TerminalWriter::new(std::io::stdout());
            crate::changes::history_cmd(&settings.data_dir, &mut out).await?;
            std::io::Write::flush(&mut out)?;
            Ok(exit::OK)
        }
        Command::Undo { id } => undo(settings, id).await,
        Command::Sessions => crate::repl::sessions_cmd(settings, global.output),
        Command::Demo(args) => crate::demo::run(settings, global, &args).await,
        Command::Testcluster(cmd) => crate::demo::testcluster(cmd).await,
        Command::Lint(args) => crate::lint::run(settings, global, &args).await,
        Command::Generate(args) => crate::generate::run(settings, global, &args).await,
        Command::Docs(cmd) => crate::docs::dispatch(cmd, settings, global.output).await,
    }
}

/// Asks on the terminal when there is one; otherwise prints the proposal and declines.
/// Used by commands that propose changes outside the agent loop (undo, suggested fixes).
pub struct TerminalApprover;

#[async_trait]
impl Approver for TerminalApprover {
    async fn request(&self, req: ApprovalRequest) -> Decision {
        if !std::io::stdin().is_terminal() {
            crate::oneshot::print_proposal(&req);
            return Decision::Denied;
        }
        let colour = crate::ui::term::colour(std::io::stderr().is_terminal());
        tokio::task::spawn_blocking(move || {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            let mut out = std::io::stderr();
            crate::changes::prompt_decision(&req, &mut input, &mut out, colour)
        })
        .await
        .unwrap_or(Decision::Denied)
    }
}

/// Exit code for an analyzer error.
fn analyze_exit(e: AnalyzeError) -> anyhow::Error {
    let code = match &e {
        AnalyzeError::Target(_) => exit::USAGE,
        e if e.is_auth() => exit::FORBIDDEN,
        _ => exit::CLUSTER_UNREACHABLE,
    };
    Exit::new(code, e.to_string()).into()
}

/// Findings quote object names, event messages and log lines: JSON strings are scrubbed,
/// text is scrubbed and sanitised field by field by the renderer.
pub(crate) fn print_findings(findings: &[Finding], output: Output) {
    match output {
        Output::Json => println!(
            "{}",
            crate::ui::json::pretty(&crate::analyze::to_json(findings))
        ),
        _ => print!(
            "{}",
            crate::analyze::render_text(
                findings,
                crate::ui::term::colour(std::io::stdout().is_terminal()),
            )
        ),
    }
}

/// What the read could not do as asked (a kind this server does not serve, a log that
/// could not be read), on stderr: not findings, but the reader must know the findings
/// were made without it.
pub(crate) fn print_notes(notes: &[String]) {
    for n in notes {
        eprintln!("kai: note: {}", for_terminal(n));
    }
}

/// The analysis's notes on stderr, then its findings (the user's runbooks linked) on
/// stdout; the findings.
async fn report(settings: &Settings, analysis: Analysis, output: Output) -> Vec<Finding> {
    print_notes(&analysis.notes);
    let mut findings = analysis.findings;
    crate::docs::link_user_runbooks(settings, &mut findings).await;
    print_findings(&findings, output);
    findings
}

fn findings_exit(findings: &[Finding]) -> i32 {
    if findings.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS_FOUND
    }
}

async fn scan(settings: &Settings, global: &GlobalArgs, args: &ScanArgs) -> Result<i32> {
    let cluster = crate::oneshot::connect_cluster(settings).await?;
    let ns = if args.all_namespaces {
        None
    } else {
        Some(cluster.default_namespace.as_str())
    };
    let analysis = crate::analyze::scan_analysis(&cluster, ns)
        .await
        .map_err(analyze_exit)?;
    let findings = report(settings, analysis, global.output).await;
    Ok(findings_exit(&findings))
}

async fn diagnose(settings: &Settings, global: &GlobalArgs, args: &DiagnoseArgs) -> Result<i32> {
    if args.list_causes {
        for cause in crate::analyze::Cause::ALL {
            println!("{:<38} {}", cause.as_str(), cause.summary());
        }
        return Ok(exit::OK);
    }
    if !args.no_llm {
        // With a model, diagnosis is a question to the agent: pre-gathering runs the
        // analyzers on the target first, so the model starts from the findings.
        let target = args
            .target
            .clone()
            .unwrap_or_else(|| "the namespace".into());
        let ns_hint = settings
            .namespace
            .as_deref()
            .map(|n| format!(" in namespace {n}"))
            .unwrap_or_default();
        let prompt = format!(
            "Diagnose {target}{ns_hint}: find the root cause, quote the evidence, and propose the fix."
        );
        return crate::oneshot::run(settings, global, &prompt).await;
    }
    let cluster = crate::oneshot::connect_cluster(settings).await?;
    let analysis = crate::analyze::diagnose_analysis(
        &cluster,
        &cluster.default_namespace,
        args.target.as_deref(),
    )
    .await
    .map_err(analyze_exit)?;
    let findings = report(settings, analysis, global.output).await;
    let code = findings_exit(&findings);
    // A concrete fix on the top finding becomes a one-step proposal (text mode, terminal).
    if global.output == Output::Text && !global.read_only && std::io::stdin().is_terminal() {
        if let Some(change) = findings.first().and_then(|f| f.fix.change.clone()) {
            let env = crate::changes::ChangeEnv {
                cluster: cluster.clone(),
                approver: Arc::new(TerminalApprover),
                auto_approve: settings.yes,
                data_dir: settings.data_dir.clone(),
            };
            let fix = crate::changes::ProposedFix {
                kind: change.kind,
                namespace: change.namespace,
                name: change.name,
                patch_type: change.patch_type,
                patch: change.patch,
            };
            match crate::changes::propose_change(&env, &fix).await {
                Ok(msg) => eprintln!("kai: {}", for_terminal(&msg)),
                Err(e) => {
                    eprintln!("kai: {}", for_terminal(&e.to_string()));
                    return Ok(exit::NOT_APPLIED);
                }
            }
        }
    }
    Ok(code)
}

async fn undo(settings: &Settings, id: Option<String>) -> Result<i32> {
    let cluster = crate::oneshot::connect_cluster(settings).await?;
    undo_on(cluster, settings, id).await
}

/// Undo on a connected cluster (`kai undo`, and `/undo` in a session).
pub async fn undo_on(
    cluster: Arc<crate::cluster::Cluster>,
    settings: &Settings,
    id: Option<String>,
) -> Result<i32> {
    let outcome = crate::changes::undo_cmd(
        cluster,
        id,
        Arc::new(TerminalApprover),
        settings.yes,
        &settings.data_dir,
    )
    .await?;
    use crate::changes::UndoOutcome as U;
    Ok(match outcome {
        U::Applied { id, undone } => {
            println!(
                "{}",
                for_terminal(&format!("undid {undone}; this undo is recorded as {id}"))
            );
            exit::OK
        }
        U::NoChange { undone } => {
            println!(
                "{}",
                for_terminal(&format!(
                    "nothing to undo for {undone}: the objects are already as they were"
                ))
            );
            exit::OK
        }
        U::NotApplied { undone, reason } => {
            println!(
                "{}",
                for_terminal(&format!("undo of {undone} not applied: {reason}"))
            );
            exit::NOT_APPLIED
        }
        U::CannotUndo { undone, reason } => {
            eprintln!("kai: cannot undo {undone}: {reason}");
            exit::NOT_APPLIED
        }
    })
}
