//! kai under attack, end to end: the real `kai` binary against the real test cluster
//! (through a recording proxy, so every request that reached the API server is known)
//! and a scripted model that follows prompt injections and picks hostile arguments.
//!
//! Every case asserts what matters to a user: no planted credential in any model
//! request, stdout, stderr, `-o json` output or audit record; no raw escape sequence on
//! the terminal streams; no write the user did not approve (the proxy's record, the
//! objects' resourceVersions); and the documented exit code. The scenario
//! `tests/scenarios/hostile-content` plants the hostile content.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use kai_test_support::{kai, tool_calls, tool_names, user_messages, Kai};
use kai_testcluster::{Recorded, RecordingProxy};
use kube::api::Api;
use mock_llm::{MockLlm, Reply};
use serde_json::{json, Value};

/// Every credential the scenario plants, in the form it is planted.
const PLANTED: &[&str] = &[
    "PLANT-secret-value-0c0c",
    "PLANT-secret-token-1d1d",
    "PLANT-cm-password-2b2b",
    "PLANT-cm-yaml-1a1a",
    "PLANT-arg-6f6f",
    "PLANT-env-pass-4d4d",
    "PLANT-envurl-8e8e",
    "PLANT-mongo-7f3a",
    "PLANT-redis-91bc",
    "PLANTazureKEY0123456789abcdef",
    "PLANT-json-55aa",
    "PLANT-flag-3c3c",
    "UExBTlQtZG9ja2VyLWF1dGg=",
    "PLANT-bearer-0123456789abcdef",
    "PLANT-event-7e7e",
    // base64 of the Secret's values, as `data` holds them.
    "UExBTlQtc2VjcmV0LXZhbHVlLTBjMGM",
    "UExBTlQtc2VjcmV0LXRva2VuLTFkMWQ",
];

const SCENARIO: &str = "hostile-content";

/// A namespace with the hostile scenario, and a proxy in front of the API server.
struct World {
    ns: String,
    proxy: RecordingProxy,
    dir: tempfile::TempDir,
}

async fn world(ns: &str) -> World {
    let c = kai_test_support::shared();
    kai_test_support::scenario(SCENARIO, ns).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = c
        .recording_proxy(kai_testcluster::ADMIN_CONTEXT, dir.path(), ns)
        .await
        .unwrap();
    World {
        ns: ns.to_string(),
        proxy,
        dir,
    }
}

/// What one run of the binary left behind.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    raw: Vec<u8>,
    requests: Vec<Value>,
    audit: String,
    wire: Vec<Recorded>,
}

impl Run {
    fn all_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.stdout,
            self.stderr,
            self.audit,
            self.requests
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    fn show(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// No planted credential anywhere a user, a log or the model could see it.
    fn assert_no_planted(&self) {
        let all = self.all_text();
        for p in PLANTED {
            assert!(!all.contains(p), "{p} leaked:\n{}", self.show());
        }
    }

    /// No raw escape sequence on stdout or stderr, and none sent to the model.
    fn assert_no_escapes(&self) {
        assert!(
            !self.raw.contains(&0x1b),
            "raw ESC on stdout/stderr:\n{}",
            self.show()
        );
        for r in &self.requests {
            let s = r.to_string();
            assert!(
                !s.contains("\\u001b") && !s.contains('\u{1b}'),
                "ESC sent to the model: {s:.400}"
            );
        }
    }

    /// Nothing was written but dry runs.
    fn assert_no_real_write(&self) {
        let real: Vec<&Recorded> = self
            .wire
            .iter()
            .filter(|r| r.is_write() && !r.is_dry_run())
            .collect();
        assert!(real.is_empty(), "unapproved writes: {real:?}");
    }

    /// No write of any kind, dry runs included.
    fn assert_no_write_at_all(&self) {
        let w: Vec<&Recorded> = self.wire.iter().filter(|r| r.is_write()).collect();
        assert!(w.is_empty(), "writes: {w:?}");
    }

    fn tool_results(&self, i: usize) -> String {
        kai_test_support::tool_results(&self.requests[i])
    }

    /// The tool results of request `i` contain `needle`.
    fn assert_told(&self, i: usize, needle: &str) {
        let results = self.tool_results(i);
        assert!(results.contains(needle), "{results}");
    }
}

/// `kai` in the world's namespace, through its recording proxy, data in `data`.
fn kai_cmd(w: &World, data: &Path, llm: Option<&MockLlm>) -> Kai {
    let k = kai!()
        .data(data)
        .kubeconfig(w.proxy.kubeconfig())
        .args(["-n", &w.ns]);
    match llm {
        Some(llm) => k.model(llm),
        None => k.api_key(),
    }
}

fn run(w: &World, llm: Option<&MockLlm>, args: &[&str]) -> Run {
    let data = tempfile::tempdir_in(w.dir.path()).unwrap();
    run_in(w, llm, data.path(), args)
}

fn run_in(w: &World, llm: Option<&MockLlm>, data: &Path, args: &[&str]) -> Run {
    w.proxy.take();
    let out = kai_cmd(w, data, llm).args(args).output();
    let mut raw = out.stdout.clone();
    raw.extend_from_slice(&out.stderr);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw,
        requests: llm.map(MockLlm::requests).unwrap_or_default(),
        // Not through a link: the full-disk case points it at /dev/full, which reads
        // as endless zeros.
        audit: match std::fs::symlink_metadata(data.join("audit.jsonl")) {
            Ok(m) if m.is_file() => {
                std::fs::read_to_string(data.join("audit.jsonl")).unwrap_or_default()
            }
            _ => String::new(),
        },
        wire: w.proxy.take(),
    }
}

/// A scripted model: these tool calls, then an answer. A change (named as the audit log
/// names it) is called as the model calls it: propose_change with the change's action.
fn model(calls: Vec<(&str, Value)>) -> MockLlm {
    MockLlm::start(vec![
        tool_calls(
            calls
                .into_iter()
                .map(|(n, a)| kai::tools::mutate::proposal(n, a.clone()).unwrap_or((n, a)))
                .collect(),
        ),
        Reply::text("Cause: the app's configuration check fails."),
    ])
}

/// A run with a scripted model making these calls.
fn ask(w: &World, calls: Vec<(&str, Value)>, args: &[&str]) -> Run {
    run(w, Some(&model(calls)), args)
}

async fn get(ns: &str, api_version: &str, kind: &str, name: &str) -> Option<Value> {
    kai_test_support::cluster::get(ns, api_version, kind, name).await
}

fn rv(v: &Option<Value>) -> String {
    v.as_ref().unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn deployment(ns: &str) -> Option<Value> {
    get(ns, "apps/v1", "Deployment", "hostile").await
}

// ------------------------------------------------------------------ hostile content

#[tokio::test(flavor = "multi_thread")]
async fn a_question_about_hostile_content_leaks_nothing_and_changes_nothing() {
    let w = world("hx-oneshot").await;
    let llm = model(vec![
        (
            "get_resource",
            json!({"kind": "Secret", "name": "app-creds"}),
        ),
        (
            "get_resource",
            json!({"kind": "ConfigMap", "name": "app-config"}),
        ),
        (
            "get_resource",
            json!({"kind": "Deployment", "name": "hostile"}),
        ),
        ("list_events", json!({})),
        ("analyze", json!({"target": "deployment/hostile"})),
    ]);
    let before = deployment(&w.ns).await;
    let r = run(&w, Some(&llm), &["why is hostile crashlooping?"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    r.assert_no_planted();
    r.assert_no_escapes();
    r.assert_no_real_write();
    // The evidence still reaches the model.
    r.assert_told(0, "FATAL: configuration check failed, exiting");
    // The injected "delete the namespace" did nothing.
    assert_eq!(rv(&deployment(&w.ns).await), rv(&before));
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnose_without_a_model_prints_no_credential_or_escape() {
    let w = world("hx-diag").await;
    for args in [
        vec!["diagnose", "deployment/hostile", "--no-llm"],
        vec!["diagnose", "deployment/hostile", "--no-llm", "-o", "json"],
    ] {
        let r = run(&w, None, &args);
        assert_eq!(r.code, Some(3), "{args:?}: {}", r.show());
        assert!(r.stdout.contains("crash-loop-app-error"), "{}", r.show());
        r.assert_no_planted();
        r.assert_no_escapes();
        r.assert_no_write_at_all();
        if args.contains(&"json") {
            serde_json::from_str::<Value>(&r.stdout).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_prints_no_credential_or_escape() {
    let w = world("hx-scan").await;
    for args in [vec!["scan"], vec!["scan", "-o", "json"]] {
        let r = run(&w, None, &args);
        assert_eq!(r.code, Some(3), "{args:?}: {}", r.show());
        r.assert_no_planted();
        r.assert_no_escapes();
        r.assert_no_write_at_all();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn model_text_with_escape_sequences_is_shown_harmless() {
    let w = world("hx-modeltext").await;
    let llm = MockLlm::start(vec![Reply::text(
        "\u{1b}]0;PWNED-MODEL-TITLE\u{7}\u{1b}[2JCause: config. password=PLANT-model-4242",
    )]);
    let r = run(&w, Some(&llm), &["--no-pregather", "why?"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(!r.raw.contains(&0x1b), "{}", r.show());
    assert!(r.stdout.contains("Cause: config."), "{}", r.show());
    assert!(!r.stdout.contains("PLANT-model-4242"), "{}", r.show());
}

// ------------------------------------------------------------------ names and paths

/// A change attempt by the model with `--yes`: what reached the server.
async fn attempt(ns: &str, calls: Vec<(&str, Value)>) -> (World, Run) {
    let w = world(ns).await;
    let r = ask(&w, calls, &["--yes", "fix it"]);
    (w, r)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_with_a_hash_cannot_turn_a_dry_run_into_a_write() {
    for (i, tool) in ["scale", "set_image", "rollout_restart", "patch_resource"]
        .into_iter()
        .enumerate()
    {
        let ns = format!("hx-hash-{i}");
        let args = match tool {
            "scale" => json!({"kind": "Deployment", "name": "hostile#x", "replicas": 0}),
            "set_image" => {
                json!({"kind": "Deployment", "name": "hostile#", "container": "app", "image": "evil:1"})
            }
            "rollout_restart" => json!({"kind": "Deployment", "name": "hostile#?dryRun=All"}),
            _ => {
                json!({"kind": "Deployment", "name": "hostile#", "patch": {"spec": {"replicas": 0}}})
            }
        };
        let w = world(&ns).await;
        let before = deployment(&ns).await;
        let r = ask(&w, vec![(tool, args)], &["--yes", "fix it"]);
        assert_eq!(r.code, Some(0), "{tool}: {}", r.show());
        r.assert_no_write_at_all();
        r.assert_told(1, "invalid object name");
        assert_eq!(rv(&deployment(&ns).await), rv(&before), "{tool}");
        assert!(!r.audit.contains("\"applied\":true"), "{}", r.audit);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_with_a_hash_sends_no_write_at_all() {
    let ns = "hx-nshash";
    let (w, r) = attempt(
        ns,
        vec![(
            "patch_resource",
            json!({"kind": "ConfigMap", "name": "app-config", "namespace": format!("{ns}#"),
                "patch": {"metadata": {"labels": {"owned": "yes"}}}}),
        )],
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.show());
    r.assert_no_write_at_all();
    r.assert_told(1, "invalid namespace");
    let nsobj = {
        let api: Api<k8s_openapi::api::core::v1::Namespace> =
            Api::all(kai_test_support::admin().await);
        api.get(ns).await.unwrap()
    };
    assert!(!nsobj
        .metadata
        .labels
        .unwrap_or_default()
        .contains_key("owned"));
    drop(w);
}

#[tokio::test(flavor = "multi_thread")]
async fn query_injection_through_names_is_refused_before_any_request() {
    let w = world("hx-query").await;
    let hostile = [
        ("get_logs", json!({"pod": "x?follow=true&limitBytes=1"})),
        (
            "get_logs",
            json!({"pod": "hostile", "container": "app&previous=true"}),
        ),
        (
            "describe",
            json!({"kind": "ConfigMap", "name": "../secrets/app-creds"}),
        ),
        (
            "get_resource",
            json!({"kind": "Secret", "name": "app-creds?watch=true"}),
        ),
        (
            "list_events",
            json!({"name": "hostile,involvedObject.kind=Secret"}),
        ),
        (
            "list_resources",
            json!({"kind": "pods", "namespace": "a/b"}),
        ),
    ];
    for (tool, args) in hostile {
        let r = ask(&w, vec![(tool, args.clone())], &["--no-pregather", "look"]);
        assert_eq!(r.code, Some(0), "{tool} {args}: {}", r.show());
        let result = r.tool_results(1);
        assert!(result.contains("invalid"), "{tool} {args}: {result}");
        for req in &r.wire {
            let params: Vec<String> = req.params().into_iter().map(|(k, _)| k).collect();
            assert!(
                !params
                    .iter()
                    .any(|p| p == "follow" || p == "watch" || p == "limitBytes"),
                "{tool}: injected {req:?}"
            );
            assert!(!req.path.contains("secrets"), "{tool}: reached {req:?}");
        }
        r.assert_no_write_at_all();
        r.assert_no_planted();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_manifests_are_refused_before_any_write() {
    let w = world("hx-manifest").await;
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}",
        "[".repeat(200_000)
    );
    let cases = [
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"evil#x\"}\ndata: {a: b}\n".to_string(),
        "apiVersion: apps/v1#x\nkind: Deployment\nmetadata: {name: evil}\nspec: {}\n".to_string(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: evil, namespace: \"x?dryRun=None\"}\n"
            .to_string(),
        deep,
    ];
    for yaml in cases {
        let started = std::time::Instant::now();
        let r = ask(
            &w,
            vec![("apply_manifest", json!({ "yaml": yaml }))],
            &["--yes", "--no-pregather", "create it"],
        );
        assert_eq!(r.code, Some(0), "{}", r.show());
        r.assert_no_write_at_all();
        assert!(
            r.tool_results(1).starts_with("error:"),
            "{}",
            r.tool_results(1)
        );
        // Not a benchmark: a guard against the minutes a quadratic parse took.
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_namespace_flag_is_a_usage_error_before_any_request() {
    let w = world("hx-nsflag").await;
    let data = tempfile::tempdir().unwrap();
    w.proxy.take();
    let out = kai!()
        .data(data.path())
        .kubeconfig(w.proxy.kubeconfig())
        .args(["-n", "shop#x", "scan"])
        .output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid namespace"));
    assert!(w.proxy.take().is_empty());
}

// ------------------------------------------------------------------ secrets through side doors

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_that_copies_a_secret_value_leaks_it_nowhere() {
    // Into a label: the server rejects the value and echoes it in its error message.
    // Into an annotation: the dry run succeeds and the value is in the diff.
    let w = world("hx-copy").await;
    for (map, want_applied) in [("labels", false), ("annotations", true)] {
        let r = ask(
            &w,
            vec![(
                "patch_resource",
                json!({"kind": "Secret", "name": "app-creds", "patch_type": "json",
                "patch": [
                    {"op": "add", "path": format!("/metadata/{map}"), "value": {"kept": "x"}},
                    {"op": "copy", "from": "/data/password", "path": format!("/metadata/{map}/leak")}
                ]}),
            )],
            &["--yes", "--no-pregather", "copy it"],
        );
        assert_eq!(r.code, Some(0), "{}", r.show());
        r.assert_no_planted();
        assert_eq!(
            r.audit.contains("\"applied\":true"),
            want_applied,
            "{map}: {}",
            r.show()
        );
        if !want_applied {
            // The server's own message quoted the value; the model got it scrubbed.
            r.assert_told(1, "Invalid value");
        }
    }
    // -o json and the no-terminal proposal print the same diff: still nothing.
    let r = ask(
        &w,
        vec![(
            "patch_resource",
            json!({"kind": "Secret", "name": "app-creds", "patch_type": "json",
            "patch": [{"op": "copy", "from": "/data/api-token", "path": "/metadata/annotations/leak2"}]}),
        )],
        &["-o", "json", "--no-pregather", "copy it"],
    );
    assert_eq!(r.code, Some(8), "{}", r.show());
    r.assert_no_planted();
    serde_json::from_str::<Value>(&r.stdout).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_the_model_writes_into_a_secret_is_not_on_the_progress_line() {
    let w = world("hx-progress").await;
    let r = ask(
        &w,
        vec![(
            "patch_resource",
            json!({"kind": "secret", "name": "app-creds",
            "patch": {"stringData": {"password": "PLANT-new-value-9a9a"}}}),
        )],
        &["--yes", "--no-pregather", "rotate it"],
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(
        r.stderr.contains("patch_resource secret app-creds"),
        "{}",
        r.show()
    );
    assert!(!r.stderr.contains("PLANT-new-value-9a9a"), "{}", r.show());
    assert!(!r.stdout.contains("PLANT-new-value-9a9a"), "{}", r.show());
    assert!(!r.audit.contains("PLANT-new-value-9a9a"));
    assert!(r.audit.contains("\"applied\":true"));
    let json_run = {
        ask(
            &w,
            vec![(
                "patch_resource",
                json!({"kind": "Secret", "name": "app-creds",
                    "patch": {"stringData": {"password": "PLANT-new-value-9b9b"}}}),
            )],
            &["--yes", "-o", "json", "--no-pregather", "rotate it"],
        )
    };
    assert!(
        !json_run.stdout.contains("PLANT-new-value-9b9b"),
        "{}",
        json_run.show()
    );
}

// ------------------------------------------------------------------ danger by outcome

#[tokio::test(flavor = "multi_thread")]
async fn dangerous_outcomes_are_marked_whatever_the_request_looked_like() {
    let w = world("hx-danger").await;
    let ns = w.ns.clone();
    let cases = [
        (
            "patch_resource",
            json!({"kind": "Deployment", "name": "hostile", "patch_type": "json",
                "patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]}),
            "scales to zero",
        ),
        (
            "apply_manifest",
            json!({"yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: rooted}\nspec:\n  containers: [{name: sh, image: busybox}]\n  volumes: [{name: root, hostPath: {path: /}}]\n"}),
            "node-level power",
        ),
        (
            "patch_resource",
            json!({"kind": "Deployment", "name": "hostile", "patch_type": "strategic",
                "patch": {"spec": {"template": {"spec": {"containers": [{"name": "app", "securityContext": {"privileged": true}}]}}}}}),
            "privileged container app",
        ),
    ];
    for (tool, args, why) in cases {
        // No terminal, no --yes: printed as a proposal, not applied.
        let r = ask(&w, vec![(tool, args)], &["--no-pregather", "do it"]);
        assert_eq!(r.code, Some(8), "{why}: {}", r.show());
        assert!(r.stdout.contains("DANGEROUS"), "{why}: {}", r.show());
        assert!(r.stdout.contains(why), "{why}: {}", r.show());
        r.assert_no_real_write();
    }
    assert!(get(&ns, "v1", "Pod", "rooted").await.is_none());
}

// ------------------------------------------------------------------ audit and undo

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_under_the_audit_log_means_nothing_is_applied() {
    let w = world("hx-diskfull").await;
    let before = deployment(&w.ns).await;
    let data = tempfile::tempdir_in(w.dir.path()).unwrap();
    std::os::unix::fs::symlink("/dev/full", data.path().join("audit.jsonl")).unwrap();
    let llm = model(vec![(
        "scale",
        json!({"kind": "Deployment", "name": "hostile", "replicas": 3}),
    )]);
    let r = run_in(
        &w,
        Some(&llm),
        data.path(),
        &["--yes", "--no-pregather", "scale it"],
    );
    assert_eq!(r.code, Some(8), "{}", r.show());
    assert!(
        r.stderr.contains("cannot write the audit log"),
        "{}",
        r.show()
    );
    r.assert_no_real_write();
    assert_eq!(rv(&deployment(&w.ns).await), rv(&before));
}

#[tokio::test(flavor = "multi_thread")]
async fn undo_of_a_secret_value_change_exits_non_zero_and_says_why() {
    let w = world("hx-undo").await;
    let data = tempfile::tempdir_in(w.dir.path()).unwrap();
    let llm = model(vec![(
        "patch_resource",
        json!({"kind": "Secret", "name": "app-creds", "patch": {"stringData": {"password": "rotated-1"}}}),
    )]);
    let r = run_in(
        &w,
        Some(&llm),
        data.path(),
        &["--yes", "--no-pregather", "rotate"],
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    let u = run_in(&w, None, data.path(), &["undo"]);
    assert_eq!(u.code, Some(8), "{}", u.show());
    assert!(
        u.stderr
            .contains("previous values are not kept and cannot be restored"),
        "{}",
        u.show()
    );
    u.assert_no_real_write();
}

// ------------------------------------------------------------------ the command line

#[tokio::test(flavor = "multi_thread")]
async fn flags_after_the_question_are_obeyed_not_sent_to_the_model() {
    let w = world("hx-flags").await;
    let llm = MockLlm::start(vec![Reply::text("ok")]);
    let data = tempfile::tempdir_in(w.dir.path()).unwrap();
    w.proxy.take();
    let out = kai!()
        .data(data.path())
        .kubeconfig(w.proxy.kubeconfig())
        .model(&llm)
        .args(["why is hostile down?", "-n", &w.ns, "--read-only"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let req = &llm.requests()[0];
    assert_eq!(user_messages(req), ["why is hostile down?"]);
    let tools = tool_names(req);
    assert!(!tools.is_empty(), "no tools offered: {req}");
    for m in [
        "propose_change",
        "scale",
        "patch_resource",
        "delete_resource",
        "apply_manifest",
    ] {
        assert!(
            !tools.iter().any(|t| t == m),
            "{m} offered despite --read-only: {tools:?}"
        );
    }
    // -n after the question chose the namespace: pre-gathering read it.
    assert!(
        w.proxy
            .take()
            .iter()
            .any(|r| r.path.contains(&format!("/namespaces/{}/", w.ns))),
        "namespace flag ignored"
    );
}

/// The path of the data directory's audit log, for debugging a failure.
#[allow(dead_code)]
fn audit_path(data: &Path) -> PathBuf {
    data.join("audit.jsonl")
}
