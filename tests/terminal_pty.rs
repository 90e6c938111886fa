//! Hostile text on a real (pseudo-)terminal: escape sequences in a pod's log and in the
//! model's reply and tool arguments reach the screen in a visible, harmless form, while
//! kai's own colours still work. Through the real `kai` binary, the shared test cluster
//! and a scripted model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use kai_test_support::{blocking, exit_code, kai, tool_call, Kai, PTY_TIMEOUT_MS};
use mock_llm::{MockLlm, Reply};
use serde_json::json;

/// Escapes as YAML writes them (`\e` is ESC, `\a` BEL): the pod's previous log retitles
/// the terminal window, clears the screen and overwrites the line with a bare CR.
const SCENARIO: &str = r#"
description: a worker whose crash log carries terminal escape sequences
question: why is worker crashlooping?
target: {kind: Deployment, name: worker}
expected_cause: crash-loop-app-error
kubelet:
  - match: {app: worker}
    containers:
      worker:
        state: crashloop
        restarts: 4
        exit_code: 2
        reason: Error
        previous_logs: "worker starting\nFATAL: queue down \e]0;pwned-by-log\a\e[2J\e[H\rall good, nothing to see\n"
"#;

const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  labels: {app: worker}
spec:
  replicas: 1
  selector:
    matchLabels: {app: worker}
  template:
    metadata:
      labels: {app: worker}
    spec:
      containers:
        - name: worker
          image: registry.example.com/jobs/worker:2.0.1
"#;

async fn setup(ns: &str) -> std::path::PathBuf {
    kai_test_support::custom_scenario(ns, SCENARIO, MANIFESTS).await
}

/// On a colour terminal.
fn kai(kubeconfig: &Path, ns: &str, data: &Path) -> Kai {
    kai!()
        .data(data)
        .api_key()
        .env("TERM", "xterm-256color")
        .cluster(kubeconfig, ns)
}

/// Run to the end in a pseudo-terminal; (exit code, everything it wrote).
async fn run_pty(cmd: Kai) -> (i32, String) {
    let cmd = cmd.command();
    blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(PTY_TIMEOUT_MS)).unwrap();
        let out = p.exp_eof().unwrap();
        (exit_code(&p), out)
    })
    .await
}

/// No escape sequence other than kai's own colours (`ESC [ … m`) and the spinner's line
/// erase (`CR ESC [ 2K`) may reach the terminal.
fn foreign_escapes(out: &str) -> Vec<String> {
    let own = regex::Regex::new(r"\x1b\[[0-9;]*m|\r\x1b\[2K").unwrap();
    let rest = own.replace_all(out, "");
    rest.match_indices('\x1b')
        .map(|(i, _)| rest[i..].chars().take(12).collect())
        .collect()
}

/// Neither a raw window-title sequence nor any escape but kai's own reached the terminal.
fn assert_no_foreign_escapes(out: &str) {
    assert!(
        !out.contains("\x1b]0;"),
        "raw OSC reached the terminal: {out:?}"
    );
    assert!(
        foreign_escapes(out).is_empty(),
        "{:?}\n{out:?}",
        foreign_escapes(out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_log_cannot_drive_the_terminal_in_a_diagnosis() {
    let ns = "pty-escape-log";
    let kc = setup(ns).await;
    let data = tempfile::tempdir().unwrap();
    let cmd = kai(&kc, ns, data.path()).args(["diagnose", "deployment/worker", "--no-llm"]);
    let (code, out) = run_pty(cmd).await;
    assert_eq!(code, kai::exit::PROBLEMS_FOUND, "{out:?}");
    // The log line is quoted as evidence, its escapes shown, not obeyed.
    assert_no_foreign_escapes(&out);
    assert!(!out.contains("\x1b[2J"), "raw clear-screen: {out:?}");
    assert!(
        out.contains("^[]0;pwned-by-log^G^[[2J^[[H^Mall good"),
        "visible form missing: {out:?}"
    );
    // kai's own colours still work on a terminal (the severity, in red).
    assert!(out.contains("\x1b[1;31mCRITICAL"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn model_text_and_tool_arguments_cannot_drive_the_terminal() {
    let ns = "pty-escape-model";
    let kc = setup(ns).await;
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        // A model-chosen name carrying an escape: shown in the tool line and its error.
        tool_call(
            "get_logs",
            json!({"pod": "worker\u{1b}]0;pwned-by-tool\u{7}", "previous": true}),
        ),
        // The answer, streamed in chunks split mid-sequence by the mock.
        Reply::text(
            "**Cause:** the queue is down.\nThe log said \u{1b}]0;pwned-by-model\u{7}\u{1b}[2J\u{1b}[H and \u{9b}31m red.\nFix `QUEUE_URL`.\n",
        ),
    ]);
    let cmd = kai(&kc, ns, data.path())
        .model(&llm)
        .arg("why is worker crashlooping?");
    let (code, out) = run_pty(cmd).await;
    assert_eq!(code, kai::exit::OK, "{out:?}");
    assert_eq!(llm.requests().len(), 2, "{out:?}");
    assert_no_foreign_escapes(&out);
    assert!(
        !out.contains("\x1b[2J") && !out.contains('\u{9b}'),
        "{out:?}"
    );
    // The tool line shows the model's argument, visibly.
    assert!(out.contains("worker^[]0;pwned-by-tool^G"), "{out:?}");
    // The answer: visible escapes inside kai's own Markdown styling.
    assert!(
        out.contains("The log said ^[]0;pwned-by-model^G^[[2J^[[H and \\u{9b}31m red."),
        "{out:?}"
    );
    assert!(
        out.contains("\x1b[1mCause:\x1b[0m the queue is down."),
        "{out:?}"
    );
    assert!(out.contains("\x1b[36mQUEUE_URL\x1b[0m"), "{out:?}");
}

/// `NO_COLOR` (set, not empty): the same terminal output without a single style code,
/// in the findings, the streamed answer and the tool lines; the text is all there.
#[tokio::test(flavor = "multi_thread")]
async fn no_color_means_no_style_codes_on_a_terminal() {
    let ns = "pty-no-color";
    let kc = setup(ns).await;
    let data = tempfile::tempdir().unwrap();
    let style = regex::Regex::new(r"\x1b\[[0-9;]*m").unwrap();
    let llm = MockLlm::start(vec![
        tool_call("get_logs", json!({"pod": "worker", "previous": true})),
        Reply::text("**Cause:** the queue is down.\nFix `QUEUE_URL`.\n"),
    ]);
    let no_color = || kai(&kc, ns, data.path()).env("NO_COLOR", "1");
    let diagnose = ["diagnose", "deployment/worker", "--no-llm"];
    let runs = [
        (
            no_color().args(diagnose),
            kai::exit::PROBLEMS_FOUND,
            "CRITICAL",
        ),
        (
            no_color().model(&llm).arg("why is worker crashlooping?"),
            kai::exit::OK,
            "Cause: the queue is down.",
        ),
    ];
    for (cmd, code, says) in runs {
        let (got, out) = run_pty(cmd).await;
        assert_eq!(got, code, "{out:?}");
        assert!(!style.is_match(&out), "a style code: {out:?}");
        assert!(out.contains(says), "{out:?}");
    }
    // Set but empty is not set (no-color.org): the styles are back.
    let cmd = kai(&kc, ns, data.path()).env("NO_COLOR", "").args(diagnose);
    let (_, out) = run_pty(cmd).await;
    assert!(out.contains("\x1b[1;31mCRITICAL"), "{out:?}");
}
