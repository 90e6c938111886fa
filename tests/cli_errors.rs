//! The errors a user hits first, through the real binary: each has a clear message and
//! its documented exit code. No cluster and no model needed for these.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

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
