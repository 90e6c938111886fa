//! The interactive session in a pseudo-terminal: two questions in one session share the
//! conversation (the second request carries the first answer), slash commands work,
//! escape sequences in an answer are shown, not obeyed, and /exit leaves cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use mock_llm::{MockLlm, Reply, Usage};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_remembers_and_obeys_slash_commands() {
    kai::init_crypto();
    let c = kai_testcluster::shared().unwrap();
    let ns = "repl-session";
    c.setup_scenario("healthy", ns).await.unwrap();
    let kc = c.kubeconfig_path().to_path_buf();
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        Reply::text("The web Deployment is healthy: 2/2 ready.").with_usage(Usage::new(900, 20)),
        Reply::text("Its Service has 2 ready endpoints.").with_usage(Usage::new(1100, 15)),
        // An answer that tries to retitle the terminal window.
        Reply::text("Fresh start. \u{1b}]0;pwned\u{7}done").with_usage(Usage::new(300, 5)),
    ]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kai"));
    cmd.env("KAI_DATA_DIR", data.path())
        .env("XDG_CONFIG_HOME", data.path().join("config"))
        .env("OPENAI_API_KEY", "sk-test-not-real")
        .env("TERM", "dumb")
        .env_remove("KUBECONFIG")
        .args(["--kubeconfig", kc.to_str().unwrap(), "-n", ns])
        .args(["--base-url", &llm.base_url(), "--model", "mock"]);
    let transcript = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
        let mut t = String::new();
        t += &p.exp_string("kai> ").unwrap();
        p.send_line("is web healthy?").unwrap();
        t += &p.exp_string("2/2 ready.").unwrap();
        t += &p.exp_string("kai> ").unwrap();
        p.send_line("/usage").unwrap();
        t += &p.exp_string("tokens: 900 in / 20 out").unwrap();
        p.send_line("/nonsense").unwrap();
        t += &p.exp_string("unknown command /nonsense").unwrap();
        p.send_line("and is web still healthy?").unwrap();
        t += &p.exp_string("2 ready endpoints.").unwrap();
        p.send_line("/reset").unwrap();
        t += &p.exp_string("conversation cleared").unwrap();
        p.send_line("hello again").unwrap();
        t += &p.exp_string("Fresh start. ^[]0;pwned^Gdone").unwrap();
        p.send_line("/exit").unwrap();
        t += &p.exp_eof().unwrap();
        let status = format!("{:?}", p.process().wait().unwrap());
        (t, status)
    })
    .await
    .unwrap();
    assert!(
        transcript.1.ends_with(", 0)"),
        "exit status {}: {}",
        transcript.1,
        transcript.0
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
    let tool_msgs = |r: &serde_json::Value| {
        r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "tool")
            .count()
    };
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_kai"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .args(["--base-url", &llm.base_url()])
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
