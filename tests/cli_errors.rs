//! The errors a user hits first, through the real binary: each has a clear message and
//! its documented exit code. Most need no cluster and no model; the tests of where flags
//! may go run kai against the shared test cluster and a scripted model, and check what kai
//! actually sent: the question alone, and only the tools the flags allow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use kai_test_support::{
    assert_exit, both, kai, stderr, tool_call, tool_names, tool_results, user_messages,
};
use mock_llm::{MockLlm, Reply};
use serde_json::{json, Value};

/// `kai args` with a clean environment (no user config, key or kubeconfig leaks into the
/// test) plus `env`.
fn kai(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    kai!().home(home.path()).args(args).envs(env).output()
}

/// `kai args` succeeds and prints each of `wants` on stdout.
fn assert_prints(args: &[&str], wants: &[&str]) {
    let o = kai(args, &[]);
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    for want in wants {
        assert!(
            out.contains(want),
            "`kai {}` lacks {want:?}",
            args.join(" ")
        );
    }
}

/// `kai args` with a (fake) key and `KUBECONFIG` at `kubeconfig`.
fn with_kubeconfig(kubeconfig: &Path, args: &[&str]) -> Output {
    let kc = kubeconfig.to_str().unwrap();
    kai(args, &[("OPENAI_API_KEY", "sk-test"), ("KUBECONFIG", kc)])
}

/// The run ended with the "cluster unreachable" exit code, and its message says `says`.
fn assert_unreachable(o: &Output, says: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(kai::exit::CLUSTER_UNREACHABLE), "{e}");
    assert!(e.contains(says), "{e}");
}

/// A kubeconfig in `dir` with one context `c` whose cluster is `cluster` (its YAML
/// lines: the server and any TLS setting).
fn write_kubeconfig(dir: &Path, cluster: &str) -> PathBuf {
    let kc = dir.join("config");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    {cluster}\nusers:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
        ),
    )
    .unwrap();
    kc
}

#[test]
fn help_explains_options_providers_and_exit_codes() {
    assert_prints(
        &["--help"],
        &[
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
        ],
    );
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
    assert_exit(&o, kai::exit::NO_API_KEY);
    let e = stderr(&o);
    assert!(e.contains("OPENAI_API_KEY"), "{e}");
    assert!(e.contains("--no-llm"), "offers the offline path: {e}");
}

#[test]
fn missing_kubeconfig_is_reported_with_next_steps() {
    let o = with_kubeconfig(Path::new("/nonexistent/kubeconfig"), &["why?"]);
    assert_exit(&o, kai::exit::CLUSTER_UNREACHABLE);
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
    let kc = write_kubeconfig(
        dir.path(),
        &format!("server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true"),
    );
    let o = with_kubeconfig(&kc, &["why?"]);
    assert_unreachable(&o, "cannot reach the Kubernetes API server");

    let o = with_kubeconfig(&kc, &["--context", "nope", "why?"]);
    assert_unreachable(&o, "\"nope\" does not exist");
}

#[test]
fn unknown_provider_profile_is_a_usage_error() {
    let o = kai(&["--provider", "nope", "why?"], &[]);
    assert_exit(&o, kai::exit::USAGE);
    assert!(stderr(&o).contains("\"nope\""), "{}", stderr(&o));
}

#[test]
fn malformed_config_file_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "default_provider = [oops\n").unwrap();
    let o = kai(&["--config", cfg.to_str().unwrap(), "why?"], &[]);
    assert_exit(&o, kai::exit::USAGE);
    assert!(stderr(&o).contains("config.toml"), "{}", stderr(&o));
}

#[test]
fn list_causes_prints_the_vocabulary() {
    assert_prints(
        &["diagnose", "--list-causes"],
        &[
            "crash-loop-app-error",
            "oom-killed",
            "missing-secret-key",
            "forbidden",
            "unknown",
        ],
    );
}

// ------------------------------------------------------------ where flags may go

use kai_test_support::model::MUTATING_TOOLS as MUTATING;

/// The shared test cluster with the `healthy` scenario (Deployment `web`) in `ns`: its
/// kubeconfig, and an empty data directory for kai.
async fn healthy_ns(ns: &str) -> (String, tempfile::TempDir) {
    let kc = kai_test_support::scenario("healthy", ns).await;
    let kc = kc.to_str().unwrap().to_string();
    (kc, tempfile::tempdir().unwrap())
}

/// `kai` with a clean environment, its data in `data`, stdin closed; `args` as given,
/// so each test places the flags itself.
async fn run(args: Vec<String>, data: &Path) -> Output {
    kai!().data(data).api_key().args(args).run().await
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The flags that point kai at the cluster and the scripted model.
fn to(kubeconfig: &str, llm: &MockLlm) -> Vec<String> {
    strings(&[
        "--kubeconfig",
        kubeconfig,
        "--base-url",
        &llm.base_url(),
        "--model",
        "mock",
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_after_the_question_are_obeyed_and_never_sent_as_the_question() {
    let ns = "cli-flags-after";
    let (kc, data) = healthy_ns(ns).await;
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
        let mut argv = to(&kc, &llm);
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

/// The tools declared to the model in the first request of a run that asks `question`.
async fn declared_tools(question: &str, ns: &str, kc: &str, data: &Path) -> Vec<String> {
    let llm = MockLlm::start(vec![Reply::text("fine.")]);
    let mut argv = strings(&[question, "-n", ns]);
    argv.extend(to(kc, &llm));
    let out = run(argv, data).await;
    assert_exit(&out, kai::exit::OK);
    tool_names(&llm.requests()[0])
}

#[tokio::test(flavor = "multi_thread")]
async fn without_read_only_the_mutating_tools_are_offered() {
    // The counterpart of the test above, so it can fail: the same run without the flag.
    let ns = "cli-flags-rw";
    let (kc, data) = healthy_ns(ns).await;
    // A question that asks for a change gets the change tool declared...
    let names = declared_tools("scale web to 3 replicas", ns, &kc, data.path()).await;
    assert!(names.iter().any(|n| n == "propose_change"), "{names:?}");
    // ...and one about a healthy workload, with no change on the table, does not pay
    // for its declaration (issue 14: declared only on turns where a change is asked
    // for, proposed by a finding, or called by the model).
    let names = declared_tools("is web healthy?", ns, &kc, data.path()).await;
    assert!(names.iter().any(|n| n == "get_resource"), "{names:?}");
    assert!(!names.iter().any(|n| n == "propose_change"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_and_yes_after_the_question_are_obeyed() {
    let ns = "cli-flags-json-yes";
    let (kc, data) = healthy_ns(ns).await;

    // -o json after the question: stdout is one JSON document.
    let llm = MockLlm::start(vec![Reply::text("web is healthy.")]);
    let mut argv = strings(&["is web healthy?", "-o", "json", "-n", ns]);
    argv.extend(to(&kc, &llm));
    let out = run(argv, data.path()).await;
    assert_exit(&out, kai::exit::OK);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", both(&out)));
    assert_eq!(doc["answer"], "web is healthy.");
    assert_eq!(user_messages(&llm.requests()[0]), vec!["is web healthy?"]);

    // --yes after the question: with no terminal, the change is applied only because of it.
    let script = |replicas: u32| {
        vec![
            tool_call(
                "propose_change",
                json!({"action": "scale", "kind": "Deployment", "name": "web", "replicas": replicas}),
            ),
            Reply::text("Scaled web."),
        ]
    };
    let llm = MockLlm::start(script(3));
    let mut argv = strings(&["please", "web", "to", "3"]);
    argv.extend(strings(&["--yes", "-n", ns]));
    argv.extend(to(&kc, &llm));
    let out = run(argv, data.path()).await;
    assert_exit(&out, kai::exit::OK);
    assert_eq!(user_messages(&llm.requests()[0]), vec!["please web to 3"]);
    let audit = std::fs::read_to_string(data.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("auto_approved"), "{audit}");

    // Without --yes (and a change still to make): nothing applied, and the exit code says so.
    let llm = MockLlm::start(script(1));
    let mut argv = strings(&["please web to 3", "-n", ns]);
    argv.extend(to(&kc, &llm));
    let out = run(argv, data.path()).await;
    assert_exit(&out, kai::exit::NOT_APPLIED);
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
    assert_exit(&o, kai::exit::USAGE);
    let e = stderr(&o);
    assert!(e.contains("unexpected argument 'my'"), "{e}");
    assert!(e.contains("kai \"scan my cluster\""), "{e}");
    assert!(e.contains("kai -- scan my cluster"), "{e}");
}

#[test]
fn context_after_the_question_is_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    let kc = write_kubeconfig(dir.path(), "server: https://127.0.0.1:1");
    let o = with_kubeconfig(&kc, &["why?", "--context", "nope"]);
    assert_unreachable(&o, "\"nope\" does not exist");
}
