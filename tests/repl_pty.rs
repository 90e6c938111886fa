//! The interactive session in a pseudo-terminal, against the real test cluster and the
//! scripted model: memory across turns, slash commands, /namespace reaching
//! pre-gathering, Ctrl-C during a streamed answer, a change approved inside the session
//! and listed by /history, a saved session resumed, and tab completion of a pod name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kai_test_support::model::messages as texts;
use kai_test_support::{items, kai, kubeconfig, scenario, tool_call, tool_names};
use mock_llm::{MockLlm, Reply, Usage};
use serde_json::json;
use tempfile::TempDir;

/// How the session's prompt ends (`kai [context/namespace]> `).
const PROMPT: &str = "]> ";
const TIMEOUT_MS: u64 = 90_000;

/// `kai` for a session in `ns`, on the shared test cluster and the scripted model.
fn kai(kc: &Path, data: &Path, llm: &MockLlm, term: &str, args: &[&str]) -> Command {
    kai!()
        .data(data)
        .env("NO_COLOR", "1")
        .env("TERM", term)
        .kubeconfig(kc)
        .model(llm)
        .args(args)
        .command()
}

/// The shared cluster with each scenario set up in its namespace; its kubeconfig.
async fn cluster_with(scenarios: &[(&str, &str)]) -> PathBuf {
    for (name, ns) in scenarios {
        scenario(name, ns).await;
    }
    kubeconfig()
}

/// A session in `ns` (the healthy scenario) whose model proposes scaling web to
/// `replicas`, then answers `then`: kai's data directory, the model, the command.
async fn scale_session(ns: &str, replicas: u32, then: &str) -> (TempDir, MockLlm, Command) {
    let kc = cluster_with(&[("healthy", ns)]).await;
    let data = tempfile::tempdir().unwrap();
    let scale =
        json!({"action": "scale", "kind": "Deployment", "name": "web", "replicas": replicas});
    let llm = MockLlm::start(vec![tool_call("propose_change", scale), Reply::text(then)]);
    let cmd = kai(&kc, data.path(), &llm, "dumb", &["-n", ns]);
    (data, llm, cmd)
}

fn exit_status(p: &rexpect::session::PtySession) -> String {
    format!("{:?}", p.process().wait().unwrap())
}

/// One thing a test does at the terminal.
enum Step {
    /// Wait for this text.
    Expect(&'static str),
    /// Type this line.
    Line(&'static str),
    /// Press Ctrl-C.
    CtrlC,
}
use Step::{CtrlC, Expect, Line};

/// Run `cmd` in a pseudo-terminal through `steps`, then `/exit` at the next prompt and
/// wait for the end: the transcript (what came before each awaited text) and the exit
/// status.
/// The requests the model got, which must be `n` (`t`, the transcript, shows why not).
fn requests(llm: &MockLlm, n: usize, t: &str) -> Vec<serde_json::Value> {
    let reqs = llm.requests();
    assert_eq!(reqs.len(), n, "{t}");
    reqs
}

async fn converse(cmd: Command, steps: Vec<Step>) -> (String, String) {
    tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).unwrap();
        let mut t = String::new();
        for step in steps {
            match step {
                Expect(text) => t += &p.exp_string(text).unwrap(),
                Line(line) => p.send_line(line).map(drop).unwrap(),
                CtrlC => p.send_control('c').unwrap(),
            }
        }
        t += &p.exp_string(PROMPT).unwrap();
        p.send_line("/exit").unwrap();
        t += &p.exp_eof().unwrap();
        (t, exit_status(&p))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_remembers_and_obeys_slash_commands() {
    let ns = "repl-session";
    let kc = cluster_with(&[("healthy", ns)]).await;
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        Reply::text("The web Deployment is healthy: 2/2 ready.")
            .with_usage(Usage::new(900, 20).with_cached(512)),
        Reply::text("Its Service has 2 ready endpoints.").with_usage(Usage::new(1100, 15)),
        // An answer that tries to retitle the terminal window.
        Reply::text("Fresh start. \u{1b}]0;pwned\u{7}done").with_usage(Usage::new(300, 5)),
    ]);
    let cmd = kai(&kc, data.path(), &llm, "dumb", &["-n", ns]);
    let transcript = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
        let mut t = String::new();
        t += &p.exp_string("[kai-admin/repl-session]> ").unwrap();
        p.send_line("is web healthy?").unwrap();
        t += &p.exp_string("2/2 ready.").unwrap();
        t += &p.exp_string(PROMPT).unwrap();
        p.send_line("/usage").unwrap();
        // The provider's cached share of the prompt, as it reported it.
        t += &p
            .exp_string("tokens: 900 in (512 cached) / 20 out")
            .unwrap();
        // How full the window is: the provider counted 900 tokens of prompt.
        t += &p
            .exp_string("context: last request 900 of 60,000 tokens (1%")
            .unwrap();
        p.send_line("/nonsense").unwrap();
        t += &p.exp_string("unknown command /nonsense").unwrap();
        // Runbook search without a model turn (the request count below stays 3).
        p.send_line("/docs Last State: Terminated Reason: OOMKilled Exit Code: 137")
            .unwrap();
        t += &p.exp_string("(docs/runbooks/oom-killed.md, score").unwrap();
        t += &p.exp_string(PROMPT).unwrap();
        // A trailing backslash continues the question on the next line.
        p.send_line("and is web \\").unwrap();
        t += &p.exp_string("... ").unwrap();
        p.send_line("still healthy?").unwrap();
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
    let reqs = requests(&llm, 3, &transcript.0);
    // Memory: the second request carries the first question and answer.
    let second = reqs[1].to_string();
    assert!(second.contains("is web healthy?"), "{second}");
    assert!(second.contains("2/2 ready."), "{second}");
    assert_eq!(
        texts(&reqs[1], "user"),
        vec!["is web healthy?", "and is web\nstill healthy?"],
        "{second}"
    );
    // The first turn pre-gathered web's context; asking about web again does not send
    // the same context twice.
    let tool_msgs = |r: &serde_json::Value| {
        items(&r["messages"])
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
    assert!(history.contains("still healthy?"), "{history}");
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

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_switch_reaches_pre_gathering() {
    let kc = cluster_with(&[
        ("healthy", "repl-ns-a"),
        ("crashloop-app-error", "repl-ns-b"),
    ])
    .await;
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![Reply::text(
        "The backend cannot log in to its database.",
    )]);
    let cmd = kai(&kc, data.path(), &llm, "dumb", &["-n", "repl-ns-a"]);
    let (t, _) = converse(
        cmd,
        vec![
            Expect("/repl-ns-a]> "),
            Line("/namespace repl-ns-b"),
            Expect("now in context kai-admin, namespace repl-ns-b"),
            Expect("/repl-ns-b]> "),
            Line("/namespace"),
            Expect("namespace repl-ns-b"),
            Line("why is backend crashlooping?"),
            Expect("database."),
        ],
    )
    .await;
    let reqs = requests(&llm, 1, &t);
    // Pre-gathering read backend in the new namespace (it does not exist in the old one).
    let tools = texts(&reqs[0], "tool").join("\n");
    assert!(tools.contains("backend"), "{tools}");
    assert!(tools.contains("repl-ns-b"), "{tools}");
    assert!(!tools.contains("repl-ns-a"), "{tools}");
    let calls = reqs[0].to_string();
    assert!(calls.contains("repl-ns-b"), "{calls}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_a_streaming_answer_and_the_session_goes_on() {
    let kc = cluster_with(&[("healthy", "repl-ctrlc")]).await;
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        // The first answer streams a line, then never ends.
        Reply::KeepAliveAfter("Let me think about that first.\nStill".into()),
        Reply::text("Here I am again."),
    ]);
    let cmd = kai(&kc, data.path(), &llm, "dumb", &["-n", "repl-ctrlc"]);
    let t = converse(
        cmd,
        vec![
            Expect(PROMPT),
            Line("tell me a long story"),
            Expect("Let me think about that first."),
            CtrlC,
            Expect(PROMPT),
            Line("are you still there?"),
            Expect("Here I am again."),
        ],
    )
    .await;
    assert!(t.1.ends_with(", 0)"), "exit {}: {}", t.1, t.0);
    let reqs = requests(&llm, 2, &t.0);
    let users = texts(&reqs[1], "user");
    assert_eq!(
        users,
        vec!["tell me a long story", "are you still there?"],
        "{}",
        reqs[1]
    );
    // The model is told the first question went unanswered.
    assert!(
        texts(&reqs[1], "assistant")
            .iter()
            .any(|a| a.contains("interrupted")),
        "{}",
        reqs[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_approved_in_the_session_is_in_history() {
    let ns = "repl-change";
    let (_data, llm, cmd) = scale_session(ns, 3, "Scaled web to 3 replicas.").await;
    let t = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).unwrap();
        let mut t = p.exp_string(PROMPT).unwrap();
        p.send_line("please scale web to 3").unwrap();
        // The one-shot mode's prompt: the diff, then the question.
        t += &p.exp_string("+  replicas: 3").unwrap();
        t += &p.exp_string("Apply this change?").unwrap();
        p.send_line("y").unwrap();
        t += &p.exp_string("Scaled web to 3 replicas.").unwrap();
        t += &p.exp_string(PROMPT).unwrap();
        p.send_line("/history").unwrap();
        let history = p.exp_string(PROMPT).unwrap();
        t += &history;
        p.send_line("/exit").unwrap();
        t += &p.exp_eof().unwrap();
        (t, history)
    })
    .await
    .unwrap();
    let (t, history) = t;
    let line = history
        .lines()
        .find(|l| l.contains("scale"))
        .unwrap_or_else(|| panic!("no scale line in /history:\n{t}"));
    assert!(line.contains("approved") && line.contains("yes"), "{line}");
    assert!(line.contains(&format!("{ns}/web")), "{line}");
    requests(&llm, 2, &t);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_session_is_listed_and_resumed() {
    let ns = "repl-resume";
    let kc = cluster_with(&[("healthy", ns)]).await;
    let data = tempfile::tempdir().unwrap();
    let token = format!("ghp_{}", "Q".repeat(36));
    let llm = MockLlm::start(vec![
        Reply::text("Noted: the cache is cold after each deploy."),
        Reply::text("As I said, the cache is cold."),
    ]);
    let first = format!("why is the cache slow after deploys? my token is {token}");
    let cmd = kai(&kc, data.path(), &llm, "dumb", &["-n", ns]);
    let q = first.clone();
    tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).unwrap();
        p.exp_string(PROMPT).unwrap();
        p.send_line(&q).unwrap();
        p.exp_string("after each deploy.").unwrap();
        p.exp_string(PROMPT).unwrap();
        p.send_line("/exit").unwrap();
        p.exp_eof().unwrap();
    })
    .await
    .unwrap();

    // Saved: one private file holding what the model saw (the token scrubbed).
    let dir = data.path().join("sessions");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains(&token), "{text}");
    assert!(text.contains("after each deploy."), "{text}");
    let id = files[0].file_stem().unwrap().to_string_lossy().into_owned();

    // Listed.
    let out = kai(&kc, data.path(), &llm, "dumb", &["sessions"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}");
    let row = listing
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(row.contains("kai-admin") && row.contains(ns), "{row}");
    assert!(row.contains("why is the cache slow"), "{row}");
    assert!(!listing.contains(&token), "{listing}");

    // Resumed without -n: the namespace comes from the saved session.
    let cmd = kai(&kc, data.path(), &llm, "dumb", &["--resume"]);
    let (t, _) = converse(
        cmd,
        vec![
            Expect("resumed session"),
            Expect("/repl-resume]> "),
            Line("and what did you say before?"),
            Expect("the cache is cold."),
        ],
    )
    .await;
    let reqs = requests(&llm, 2, &t);
    let users = texts(&reqs[1], "user");
    assert_eq!(users.len(), 2, "{}", reqs[1]);
    assert!(
        users[0].starts_with("why is the cache slow after deploys?"),
        "{users:?}"
    );
    assert!(!users[0].contains(&token), "{users:?}");
    assert_eq!(users[1], "and what did you say before?");
    assert!(
        texts(&reqs[1], "assistant")
            .iter()
            .any(|a| a.contains("the cache is cold after each deploy.")),
        "{}",
        reqs[1]
    );
    // The same session goes on in the same file.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("and what did you say before?"), "{text}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn tab_completes_a_pod_name_and_a_paste_is_one_question() {
    let ns = "repl-complete";
    let kc = cluster_with(&[("healthy", ns)]).await;
    let names = kai_test_support::wait_for_pods(&kai_test_support::admin().await, ns, "").await;
    let pod = names.first().cloned().expect("the scenario has pods");
    // A prefix only this pod has.
    let prefix_len = (1..=pod.len())
        .find(|&n| names.iter().filter(|x| x.starts_with(&pod[..n])).count() == 1)
        .unwrap();
    let typed = pod[..prefix_len].to_string();
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![
        Reply::text("That pod is running."),
        Reply::text("Both pasted lines arrived."),
    ]);
    let cmd = kai(&kc, data.path(), &llm, "xterm", &["-n", ns]);
    let full = pod.clone();
    let t = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).unwrap();
        let mut t = p.exp_string(PROMPT).unwrap();
        // `send` does not flush (the writer flushes on a newline): flush each piece, so
        // the Tab arrives after the prefix and before the rest.
        p.send(&format!("is {typed}")).unwrap();
        p.flush().unwrap();
        p.send("\t").unwrap();
        p.flush().unwrap();
        // The completed name, then the rest of the question.
        t += &p.exp_string(&full).unwrap();
        p.send(" healthy?\r").unwrap();
        p.flush().unwrap();
        t += &p.exp_string("That pod is running.").unwrap();
        t += &p.exp_string(PROMPT).unwrap();
        // A pasted block (bracketed paste) is one question, newlines and all.
        p.send("\x1b[200~first pasted line\nsecond pasted line\x1b[201~")
            .unwrap();
        p.flush().unwrap();
        p.send("\r").unwrap();
        p.flush().unwrap();
        t += &p.exp_string("Both pasted lines arrived.").unwrap();
        t += &p.exp_string(PROMPT).unwrap();
        p.send("/exit\r").unwrap();
        p.flush().unwrap();
        t += &p.exp_eof().unwrap();
        t
    })
    .await
    .unwrap();
    let reqs = requests(&llm, 2, &t);
    let users = texts(&reqs[0], "user");
    assert_eq!(users, vec![format!("is {pod} healthy?")], "{t}");
    assert_eq!(
        texts(&reqs[1], "user").last().map(String::as_str),
        Some("first pasted line\nsecond pasted line"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_at_an_approval_prompt_applies_nothing_and_the_next_line_is_a_question() {
    let ns = "repl-abort";
    let (data, llm, cmd) = scale_session(ns, 5, "Nothing was changed.").await;
    let (t, _) = converse(
        cmd,
        vec![
            Expect(PROMPT),
            Line("scale web to 5"),
            Expect("Apply this change?"),
            CtrlC,
            Expect(PROMPT),
            // The abandoned prompt must not swallow this line.
            Line("what did you change?"),
            Expect("Nothing was changed."),
        ],
    )
    .await;
    let reqs = requests(&llm, 2, &t);
    assert_eq!(
        texts(&reqs[1], "user").last().map(String::as_str),
        Some("what did you change?"),
        "{t}"
    );
    let log = kai::changes::audit::read_all(data.path()).unwrap();
    assert!(log.iter().all(|r| !r.applied), "{log:?}");
}

/// A Deployment the scripted model submits to `/generate`: it passes every check but
/// has no liveness probe, so the lint report has one finding to show.
const GENERATED: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gen-web
  labels: {app: gen-web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: gen-web}
  template:
    metadata:
      labels: {app: gen-web}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 101}
      containers:
      - name: web
        image: nginxinc/nginx-unprivileged:1.27.2
        ports:
        - {name: http, containerPort: 8080, protocol: TCP}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {memory: 128Mi}
        readinessProbe:
          httpGet: {path: /, port: http}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
";

#[tokio::test(flavor = "multi_thread")]
async fn generate_in_the_session_shows_checked_manifests_and_applies_only_after_yes() {
    use k8s_openapi::api::apps::v1::Deployment;
    let ns = "repl-generate";
    let kc = cluster_with(&[("healthy", ns)]).await;
    let client = kai_testcluster::shared()
        .unwrap()
        .admin_client()
        .await
        .unwrap();
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client, ns);
    let data = tempfile::tempdir().unwrap();
    let submit = || {
        Reply::ToolCalls(vec![(
            "submit_manifests".into(),
            json!({ "yaml": GENERATED }).to_string(),
        )])
    };
    // Three /generate runs: shown only, --apply declined, --apply approved.
    let llm = MockLlm::start(vec![
        submit(),
        Reply::text("A 2-replica web Deployment."),
        submit(),
        Reply::text("A 2-replica web Deployment."),
        submit(),
        Reply::text("A 2-replica web Deployment."),
    ]);
    let cmd = kai(&kc, data.path(), &llm, "dumb", &["-n", ns]);
    let rt = tokio::runtime::Handle::current();
    let exists = move |api: &kube::Api<Deployment>| {
        rt.block_on(api.get_opt("gen-web"))
            .unwrap()
            .map(|d| d.spec.unwrap().replicas)
    };
    let (t, checks) = tokio::task::spawn_blocking(move || {
        let mut checks = Vec::new();
        let mut p = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).unwrap();
        let mut t = p.exp_string(PROMPT).unwrap();
        p.send_line("/generate a web deployment with 2 replicas")
            .unwrap();
        // The manifests as submitted, then the checks they passed and the lint report.
        t += &p.exp_string("name: gen-web").unwrap();
        t += &p.exp_string("accepted after 1 round(s)").unwrap();
        t += &p.exp_string("[missing-liveness-probe]").unwrap();
        t += &p.exp_string("0 error(s)").unwrap();
        t += &p.exp_string(PROMPT).unwrap();
        checks.push(("after /generate", exists(&deployments)));

        p.send_line("/generate --apply a web deployment with 2 replicas")
            .unwrap();
        t += &p.exp_string("accepted after 1 round(s)").unwrap();
        // The server-side dry run's diff, then the question.
        t += &p.exp_string("+  replicas: 2").unwrap();
        t += &p.exp_string("Apply this change?").unwrap();
        p.send_line("n").unwrap();
        t += &p.exp_string(PROMPT).unwrap();
        checks.push(("after n", exists(&deployments)));

        p.send_line("/generate --apply a web deployment with 2 replicas")
            .unwrap();
        t += &p.exp_string("+  replicas: 2").unwrap();
        t += &p.exp_string("Apply this change?").unwrap();
        p.send_line("y").unwrap();
        t += &p.exp_string(PROMPT).unwrap();
        checks.push(("after y", exists(&deployments)));
        p.send_line("/exit").unwrap();
        t += &p.exp_eof().unwrap();
        (t, checks)
    })
    .await
    .unwrap();
    assert_eq!(
        checks,
        vec![
            ("after /generate", None),
            ("after n", None),
            ("after y", Some(Some(2))),
        ],
        "{t}"
    );
    // Each /generate offered the model only the manifest tool, and nothing else ran.
    let reqs = requests(&llm, 6, &t);
    for r in &reqs {
        assert_eq!(tool_names(r), ["submit_manifests"]);
    }
    // The "n" was reported as such, the "y" as an applied change with its audit id.
    assert!(
        t.contains("the user did not approve this change; nothing was changed"),
        "{t}"
    );
    assert!(
        t.contains("applied with the user's approval (audit id"),
        "{t}"
    );
}
