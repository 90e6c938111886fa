//! The errors a user hits first, through the real binary: each has a clear message and
//! its documented exit code. Most need no cluster and no model; the tests of where flags
//! may go run kai against the shared test cluster and a scripted model, and check what kai
//! actually sent: the question alone, and only the tools the flags allow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use mock_llm::{MockLlm, Reply};
use serde_json::{json, Value};

fn kai(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kai"));
    // A clean environment: no user config, key or kubeconfig leaks into the test.
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_explains_options_providers_and_exit_codes() {
    let o = kai(&["--help"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "--kubeconfig",
        "--context",
        "--namespace",
        "--max-steps",
        "--base-url",
        "--read-only",
        "Ollama",
        "Azure",
        "config.toml",
        "OPENAI_API_KEY",
        "Exit codes",
        "130",
    ] {
        assert!(out.contains(want), "--help lacks {want:?}");
    }
}

#[test]
fn empty_prompt_is_a_usage_error() {
    for args in [&[][..], &[""][..], &["   "][..]] {
        let o = kai(args, &[]);
        assert_eq!(o.status.code(), Some(kai::exit::USAGE), "{args:?}");
        assert!(stderr(&o).contains("empty prompt"), "{}", stderr(&o));
    }
}

#[test]
fn missing_api_key_says_which_variable() {
    let o = kai(&["why is backend crashlooping?"], &[]);
    assert_eq!(o.status.code(), Some(kai::exit::NO_API_KEY));
    let e = stderr(&o);
    assert!(e.contains("OPENAI_API_KEY"), "{e}");
    assert!(e.contains("--no-llm"), "offers the offline path: {e}");
}

#[test]
fn missing_kubeconfig_is_reported_with_next_steps() {
    let o = kai(
        &["why?"],
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
        ],
    );
    assert_eq!(o.status.code(), Some(kai::exit::CLUSTER_UNREACHABLE));
    let e = stderr(&o);
    assert!(e.contains("no kubeconfig"), "{e}");
    assert!(e.contains("kai demo"), "{e}");
    assert!(!e.contains("sk-test"), "the key is never printed");
}

#[test]
fn unreachable_cluster_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kc = dir.path().join("config");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
        ),
    )
    .unwrap();
    let o = kai(
        &["why?"],
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("KUBECONFIG", kc.to_str().unwrap()),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(kai::exit::CLUSTER_UNREACHABLE),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("cannot reach the Kubernetes API server"),
        "{}",
        stderr(&o)
    );

    let o = kai(
        &["--context", "nope", "why?"],
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("KUBECONFIG", kc.to_str().unwrap()),
        ],
    );
    assert_eq!(o.status.code(), Some(kai::exit::CLUSTER_UNREACHABLE));
    assert!(
        stderr(&o).contains("\"nope\" does not exist"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_provider_profile_is_a_usage_error() {
    let o = kai(&["--provider", "nope", "why?"], &[]);
    assert_eq!(o.status.code(), Some(kai::exit::USAGE));
    assert!(stderr(&o).contains("\"nope\""), "{}", stderr(&o));
}

#[test]
fn malformed_config_file_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "default_provider = [oops\n").unwrap();
    let o = kai(&["--config", cfg.to_str().unwrap(), "why?"], &[]);
    assert_eq!(o.status.code(), Some(kai::exit::USAGE));
    assert!(stderr(&o).contains("config.toml"), "{}", stderr(&o));
}

#[test]
fn list_causes_prints_the_vocabulary() {
    let o = kai(&["diagnose", "--list-causes"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for c in [
        "crash-loop-app-error",
        "oom-killed",
        "missing-secret-key",
        "forbidden",
        "unknown",
    ] {
        assert!(out.contains(c), "{c} missing from --list-causes");
    }
}

// ------------------------------------------------------------ where flags may go

const MUTATING: [&str; 8] = [
    "propose_change",
    "apply_manifest",
    "patch_resource",
    "scale",
    "rollout_restart",
    "rollout_undo",
    "set_image",
    "delete_resource",
];

/// The shared test cluster with the `healthy` scenario (Deployment `web`) in `ns`.
async fn healthy_ns(ns: &str) -> PathBuf {
    kai::init_crypto();
    let c = kai_testcluster::shared().unwrap();
    c.setup_scenario("healthy", ns).await.unwrap();
    c.kubeconfig_path().to_path_buf()
}

/// `kai` with a clean environment, its data in `data`, stdin closed; `args` as given,
/// so each test places the flags itself.
async fn run(args: Vec<String>, data: &std::path::Path) -> Output {
    let data = data.to_path_buf();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_kai"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &data)
            .env("KAI_DATA_DIR", &data)
            .env("XDG_CONFIG_HOME", data.join("config"))
            .env("OPENAI_API_KEY", "sk-test-key-not-real")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn both(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The user messages of a recorded request.
fn user_messages(req: &Value) -> Vec<String> {
    req["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn tool_names(req: &Value) -> Vec<String> {
    req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(String::from))
        .collect()
}

/// What the pre-gathered context (and any tool results) told the model.
fn tool_results(req: &Value) -> String {
    req["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_after_the_question_are_obeyed_and_never_sent_as_the_question() {
    let ns = "cli-flags-after";
    let kc = healthy_ns(ns).await;
    let kc = kc.to_str().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (long_eq, short_eq) = (format!("--namespace={ns}"), format!("-n={ns}"));
    // (arguments after --kubeconfig/--base-url/--model, the question the model must get)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["is web healthy?", "-n", ns, "--read-only"],
            "is web healthy?",
        ),
        (
            vec!["is", "web", "healthy?", "--read-only", "-n", ns],
            "is web healthy?",
        ),
        (
            vec!["is", "web", "-n", ns, "healthy?", "--read-only"],
            "is web healthy?",
        ),
        (
            vec!["is web healthy?", &long_eq, "--read-only"],
            "is web healthy?",
        ),
        (
            vec!["--read-only", "is web healthy?", &short_eq],
            "is web healthy?",
        ),
        (
            vec!["-n", ns, "--read-only", "--", "-n web healthy?"],
            "-n web healthy?",
        ),
    ];
    for (args, question) in cases {
        let llm = MockLlm::start(vec![Reply::text("web is healthy: 2/2 ready.")]);
        let mut argv = strings(&[
            "--kubeconfig",
            kc,
            "--base-url",
            &llm.base_url(),
            "--model",
            "mock",
        ]);
        argv.extend(strings(&args));
        let out = run(argv, data.path()).await;
        assert_eq!(
            out.status.code(),
            Some(kai::exit::OK),
            "{args:?}\n{}",
            both(&out)
        );
        let reqs = llm.requests();
        assert_eq!(reqs.len(), 1, "{args:?}");
        assert_eq!(
            user_messages(&reqs[0]),
            vec![question.to_string()],
            "{args:?}"
        );
        // --read-only: no mutating tool is even offered.
        let names = tool_names(&reqs[0]);
        assert!(
            names.iter().any(|n| n == "get_resource"),
            "{args:?}: {names:?}"
        );
        for m in MUTATING {
            assert!(
                !names.iter().any(|n| n == m),
                "{args:?}: {m} offered: {names:?}"
            );
        }
        // -n: the question is about web in `ns`, and that is where kai looked.
        if question.contains("web") && !question.starts_with('-') {
            let ctx = tool_results(&reqs[0]);
            assert!(ctx.contains(ns), "{args:?}: context not from {ns}:\n{ctx}");
            assert!(ctx.contains("nginx:1.25"), "{args:?}:\n{ctx}");
        }
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("web is healthy"),
            "{args:?}\n{}",
            both(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_read_only_the_mutating_tools_are_offered() {
    // The counterpart of the test above, so it can fail: the same run without the flag.
    let ns = "cli-flags-rw";
    let kc = healthy_ns(ns).await;
    let data = tempfile::tempdir().unwrap();
    let llm = MockLlm::start(vec![Reply::text("fine.")]);
    let argv = strings(&[
        "is web healthy?",
        "-n",
        ns,
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--base-url",
        &llm.base_url(),
        "--model",
        "mock",
    ]);
    let out = run(argv, data.path()).await;
    assert_eq!(out.status.code(), Some(kai::exit::OK), "{}", both(&out));
    let names = tool_names(&llm.requests()[0]);
    assert!(names.iter().any(|n| n == "propose_change"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_and_yes_after_the_question_are_obeyed() {
    let ns = "cli-flags-json-yes";
    let kc = healthy_ns(ns).await;
    let kc = kc.to_str().unwrap();
    let data = tempfile::tempdir().unwrap();

    // -o json after the question: stdout is one JSON document.
    let llm = MockLlm::start(vec![Reply::text("web is healthy.")]);
    let mut argv = strings(&["is web healthy?", "-o", "json", "-n", ns]);
    argv.extend(strings(&[
        "--kubeconfig",
        kc,
        "--base-url",
        &llm.base_url(),
        "--model",
        "mock",
    ]));
    let out = run(argv, data.path()).await;
    assert_eq!(out.status.code(), Some(kai::exit::OK), "{}", both(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", both(&out)));
    assert_eq!(doc["answer"], "web is healthy.");
    assert_eq!(user_messages(&llm.requests()[0]), vec!["is web healthy?"]);

    // --yes after the question: with no terminal, the change is applied only because of it.
    let script = |replicas: u32| {
        vec![
            Reply::ToolCalls(vec![(
                "propose_change".into(),
                json!({"action": "scale", "kind": "Deployment", "name": "web", "replicas": replicas})
                    .to_string(),
            )]),
            Reply::text("Scaled web."),
        ]
    };
    let llm = MockLlm::start(script(3));
    let mut argv = strings(&["please", "web", "to", "3"]);
    argv.extend(strings(&[
        "--yes",
        "-n",
        ns,
        "--kubeconfig",
        kc,
        "--base-url",
        &llm.base_url(),
        "--model",
        "mock",
    ]));
    let out = run(argv, data.path()).await;
    assert_eq!(out.status.code(), Some(kai::exit::OK), "{}", both(&out));
    assert_eq!(user_messages(&llm.requests()[0]), vec!["please web to 3"]);
    let audit = std::fs::read_to_string(data.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("auto_approved"), "{audit}");

    // Without --yes (and a change still to make): nothing applied, and the exit code says so.
    let llm = MockLlm::start(script(1));
    let argv = strings(&[
        "please web to 3",
        "-n",
        ns,
        "--kubeconfig",
        kc,
        "--base-url",
        &llm.base_url(),
        "--model",
        "mock",
    ]);
    let out = run(argv, data.path()).await;
    assert_eq!(
        out.status.code(),
        Some(kai::exit::NOT_APPLIED),
        "{}",
        both(&out)
    );
}

#[test]
fn unknown_flags_are_usage_errors_and_nothing_is_sent() {
    let llm = MockLlm::start(vec![Reply::text("should not be asked")]);
    for args in [
        vec!["why is web down?", "--frob"],
        vec!["why", "is", "web", "--readonly", "down?"],
        vec!["why is web down?", "-o", "yaml"],
        vec!["why is web down?", "--read-only", "--yes"],
    ] {
        let mut argv = args.clone();
        let url = llm.base_url();
        argv.extend(["--base-url", url.as_str()]);
        let o = kai(&argv, &[("OPENAI_API_KEY", "sk-test")]);
        assert_eq!(
            o.status.code(),
            Some(kai::exit::USAGE),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("error:"), "{args:?}: {}", stderr(&o));
    }
    assert!(llm.requests().is_empty());
}

#[test]
fn a_question_starting_with_a_command_name_gets_advice() {
    let o = kai(&["scan", "my", "cluster"], &[]);
    assert_eq!(o.status.code(), Some(kai::exit::USAGE));
    let e = stderr(&o);
    assert!(e.contains("unexpected argument 'my'"), "{e}");
    assert!(e.contains("kai \"scan my cluster\""), "{e}");
    assert!(e.contains("kai -- scan my cluster"), "{e}");
}

#[test]
fn context_after_the_question_is_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("config");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\nusers:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n",
    )
    .unwrap();
    let o = kai(
        &["why?", "--context", "nope"],
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("KUBECONFIG", kc.to_str().unwrap()),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(kai::exit::CLUSTER_UNREACHABLE),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("\"nope\" does not exist"),
        "{}",
        stderr(&o)
    );
}
