//! The interactive session in a pseudo-terminal: two questions in one session share the
//! conversation (the second request carries the first answer), slash commands work,
//! escape sequences in an answer are shown, not obeyed, and /exit leaves cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kai_test_support::{exit_code, kai, model::messages};
use mock_llm::{MockLlm, Reply, Usage};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_remembers_and_obeys_slash_commands() {
    let ns = "repl-session";
    let kc = kai_test_support::scenario("healthy", ns).await;
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        Reply::text("The web Deployment is healthy: 2/2 ready.").with_usage(Usage::new(900, 20)),
        Reply::text("Its Service has 2 ready endpoints.").with_usage(Usage::new(1100, 15)),
        // An answer that tries to retitle the terminal window.
        Reply::text("Fresh start. \u{1b}]0;pwned\u{7}done").with_usage(Usage::new(300, 5)),
    ]);
    let cmd = kai!()
        .data(data.path())
        .env("TERM", "dumb")
        .cluster(&kc, ns)
        .model(&llm)
        .command();
    let transcript = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
        // (what the session shows, then what is typed, if anything)
        let steps = [
            ("kai> ", Some("is web healthy?")),
            ("2/2 ready.", None),
            ("kai> ", Some("/usage")),
            ("tokens: 900 in / 20 out", Some("/nonsense")),
            (
                "unknown command /nonsense",
                Some("and is web still healthy?"),
            ),
            ("2 ready endpoints.", Some("/reset")),
            ("conversation cleared", Some("hello again")),
            ("Fresh start. ^[]0;pwned^Gdone", Some("/exit")),
        ];
        let mut t = String::new();
        for (shown, typed) in steps {
            t += &p.exp_string(shown).unwrap();
            if let Some(line) = typed {
                p.send_line(line).unwrap();
            }
        }
        t += &p.exp_eof().unwrap();
        (t, exit_code(&p))
    })
    .await
    .unwrap();
    assert_eq!(
        transcript.1, 0,
        "exit status {}: {}",
        transcript.1, transcript.0
    );
    assert!(
        !transcript.0.contains("\x1b]0;"),
        "a raw OSC reached the terminal: {:?}",
        transcript.0
    );
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 3, "{}", transcript.0);
    // Memory: the second request carries the first question and answer.
    let second = reqs[1].to_string();
    assert!(second.contains("is web healthy?"), "{second}");
    assert!(second.contains("2/2 ready."), "{second}");
    assert!(second.contains("and is web still healthy?"), "{second}");
    // The first turn pre-gathered web's context; asking about web again does not send
    // the same context twice.
    let tool_msgs = |r: &serde_json::Value| messages(r, "tool").len();
    assert!(tool_msgs(&reqs[0]) > 0, "the first turn pre-gathered");
    assert_eq!(tool_msgs(&reqs[1]), tool_msgs(&reqs[0]), "{second}");
    // /reset: the third request does not.
    let third = reqs[2].to_string();
    assert!(!third.contains("is web healthy?"), "{third}");
    assert!(third.contains("hello again"), "{third}");
    // The history file is written for the next session.
    let history = std::fs::read_to_string(data.path().join("history.txt")).unwrap();
    assert!(history.contains("and is web still healthy?"), "{history}");
}

#[test]
fn a_question_can_come_on_stdin() {
    use std::io::Write;
    use std::process::Stdio;
    let llm = MockLlm::start(vec![]);
    let mut child = kai!()
        .home(&std::env::temp_dir())
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .args(["--base-url", &llm.base_url()])
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"why is backend crashlooping?\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // The question was taken (no "empty prompt"); it then fails on the missing kubeconfig.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(kai::exit::CLUSTER_UNREACHABLE),
        "{err}"
    );
    assert!(!err.contains("empty prompt"), "{err}");
}
