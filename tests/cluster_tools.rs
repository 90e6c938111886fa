//! The read tools and pre-gathering against the real test cluster (kube-apiserver,
//! controller manager, scheduler and the harness's fake kubelet on loopback).
//!
//! Each scenario is set up once per test process in its own namespace; tests only read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use kai::cluster::Cluster;
use kai::gather::{pregather, pregather_in};
use kai::tools::read::run;
use kai::tools::{CallCtx, DenyAll, ToolEnv, ToolError, TurnId};
use kai_testcluster::ScenarioHandle;
use serde_json::{json, Value};

/// What the scenarios plant and kai must never forward.
const PLANTED_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9";
const SECRET_VALUE: &str = "kai-test-secret-value-do-not-leak";

static SETUPS: tokio::sync::Mutex<BTreeMap<String, ScenarioHandle>> =
    tokio::sync::Mutex::const_new(BTreeMap::new());

/// The scenario set up in `ct-<scenario>-<pid>` (once per process).
async fn scenario(name: &str) -> ScenarioHandle {
    let mut done = SETUPS.lock().await;
    if let Some(h) = done.get(name) {
        return h.clone();
    }
    let c = kai_test_support::shared();
    let short: String = name.chars().take(20).collect();
    let ns = format!("ct-{short}-{}", std::process::id());
    let h = c.setup_scenario(name, &ns).await.expect("scenario setup");
    done.insert(name.to_string(), h.clone());
    h
}

async fn ctx_for(ns: &str, restricted: bool) -> ToolEnv {
    let config = if restricted {
        kai_test_support::cluster::restricted_config().await
    } else {
        kai_test_support::cluster::admin_config().await
    };
    ToolEnv {
        cluster: Some(Arc::new(
            Cluster::from_config(config, ns, "test").expect("cluster"),
        )),
        budget_tokens: 2000,
        auto_approve: false,
        data_dir: std::env::temp_dir(),
        reads: Default::default(),
    }
}

async fn call(ctx: &ToolEnv, tool: &str, args: Value) -> String {
    match run(ctx, tool, args.clone()).await {
        Ok(out) => {
            assert_clean(&out);
            out
        }
        Err(e) => panic!("{tool} {args} failed: {e}"),
    }
}

/// `tool` on the object `kind`/`name`, which must succeed.
async fn on(ctx: &ToolEnv, tool: &str, kind: &str, name: &str) -> String {
    call(ctx, tool, json!({"kind": kind, "name": name})).await
}

async fn call_err(ctx: &ToolEnv, tool: &str, args: Value) -> String {
    match run(ctx, tool, args.clone()).await {
        Ok(out) => panic!("{tool} {args} should have failed, got:\n{out}"),
        Err(ToolError::Model(m)) => {
            assert_clean(&m);
            m
        }
        Err(ToolError::Fatal(m)) => panic!("{tool}: expected a model error, got fatal: {m}"),
    }
}

fn assert_clean(text: &str) {
    assert!(
        !text.contains(PLANTED_TOKEN),
        "planted token leaked:\n{text}"
    );
    assert!(!text.contains("eyJzdWIi"), "JWT payload leaked:\n{text}");
    assert!(!text.contains(SECRET_VALUE), "Secret value leaked:\n{text}");
    // The same value base64-encoded, as a Secret's data holds it.
    assert!(
        !text.contains("a2FpLXRlc3Qtc2VjcmV0"),
        "Secret value (base64) leaked:\n{text}"
    );
}

/// The scenario and the tools' environment in its namespace, as the admin.
async fn admin_ctx(name: &str) -> (ScenarioHandle, ToolEnv) {
    let h = scenario(name).await;
    let ctx = ctx_for(&h.namespace, false).await;
    (h, ctx)
}

/// The scenario's pod whose name starts with `prefix`.
fn pod_named(h: &ScenarioHandle, prefix: &str) -> String {
    h.pods
        .iter()
        .find(|p| p.starts_with(prefix))
        .cloned()
        .unwrap_or_else(|| panic!("no {prefix} pod in {:?}", h.pods))
}

fn crash_pod(h: &ScenarioHandle) -> String {
    pod_named(h, "backend-")
}

/// `text` contains every one of `needles`.
fn assert_has(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{n:?} missing:\n{text}");
    }
}

#[tokio::test]
async fn list_resources_shows_status_essentials() {
    let (h, ctx) = admin_ctx("crashloop-app-error").await;
    let pods = call(&ctx, "list_resources", json!({"kind": "pods"})).await;
    assert!(pods.contains("NAME") && pods.contains("RESTARTS"), "{pods}");
    assert_has(&pods, &["CrashLoopBackOff", "0/1"]);
    let deploys = call(&ctx, "list_resources", json!({"kind": "deploy"})).await;
    assert!(
        deploys.contains("backend") && deploys.contains("0/1"),
        "{deploys}"
    );
    let svcs = call(&ctx, "list_resources", json!({"kind": "svc"})).await;
    assert!(
        svcs.contains("app=backend") && svcs.contains("80/TCP"),
        "{svcs}"
    );
    let labelled = call(
        &ctx,
        "list_resources",
        json!({"kind": "Pod", "label_selector": "app=nothing"}),
    )
    .await;
    assert!(labelled.starts_with("No pods"), "{labelled}");
    // A kind found only through discovery.
    let leases = call(
        &ctx,
        "list_resources",
        json!({"kind": "leases", "namespace": "kube-system"}),
    )
    .await;
    assert!(!leases.is_empty());
    let all = call(
        &ctx,
        "list_resources",
        json!({"kind": "pods", "namespace": "*"}),
    )
    .await;
    assert!(
        all.contains("NAMESPACE") && all.contains(&h.namespace),
        "{all}"
    );
}

#[tokio::test]
async fn unknown_kinds_and_names_come_with_suggestions() {
    let (h, ctx) = admin_ctx("crashloop-app-error").await;
    let e = call_err(&ctx, "list_resources", json!({"kind": "deploymnts"})).await;
    assert!(e.contains("unknown kind"), "{e}");
    let e = call_err(&ctx, "describe", json!({"kind": "pod", "name": "backend"})).await;
    assert!(e.contains("not found") && e.contains(&crash_pod(&h)), "{e}");
    // One object lives in one namespace: `*` is no namespace for describe (it is for
    // analyze, which reads them all).
    let args = json!({"kind": "deploy", "name": "backend", "namespace": "*"});
    let e = call_err(&ctx, "describe", args).await;
    assert!(e.contains("invalid namespace"), "{e}");
    let e = call_err(&ctx, "get_logs", json!({"pod": "backend"})).await;
    assert!(
        e.contains("not found") && e.contains("similar names"),
        "{e}"
    );
}

#[tokio::test]
async fn get_resource_is_clean_yaml() {
    let (_, ctx) = admin_ctx("crashloop-app-error").await;
    let y = on(&ctx, "get_resource", "deployment", "backend").await;
    assert!(y.contains("kind: Deployment"), "{y}");
    assert!(
        y.contains("image: registry.example.com/shop/backend:1.4.2"),
        "{y}"
    );
    assert!(!y.contains("managedFields"), "{y}");
    assert!(!y.contains("last-applied-configuration"), "{y}");
}

#[tokio::test]
async fn secrets_show_key_names_only() {
    let (h, ctx) = admin_ctx("healthy").await;
    let y = on(&ctx, "get_resource", "secret", "web-secret").await;
    assert!(
        y.contains("API_KEY") && y.contains("<redacted: 33 bytes>"),
        "{y}"
    );
    let d = on(&ctx, "describe", "secret", "web-secret").await;
    assert!(d.contains("API_KEY"), "{d}");
    let pod = pod_named(&h, "web-");
    let d = on(&ctx, "describe", "pod", &pod).await;
    assert!(
        d.contains("Secret web-secret exists (keys: API_KEY)"),
        "{d}"
    );
    let y = on(&ctx, "get_resource", "pod", &pod).await;
    assert!(y.contains("kind: Pod"));
}

#[tokio::test]
async fn a_secret_read_by_a_tool_is_scrubbed_from_any_later_text() {
    let (_, ctx) = admin_ctx("healthy").await;
    on(&ctx, "get_resource", "secret", "web-secret").await;
    // A copy with nothing around it that a pattern could recognise (an app echoing its
    // key, the key base64-encoded in someone's ConfigMap).
    let text =
        format!("started with {SECRET_VALUE} and a2FpLXRlc3Qtc2VjcmV0LXZhbHVlLWRvLW5vdC1sZWFr");
    let out = kai::redact::scrub(&text);
    assert_clean(&out);
    assert!(
        out.starts_with("started with [REDACTED:secret-value]"),
        "{out}"
    );
}

#[tokio::test]
async fn describe_pod_shows_the_crash_and_owner_chain() {
    let (h, ctx) = admin_ctx("crashloop-app-error").await;
    let d = on(&ctx, "describe", "pod", &crash_pod(&h)).await;
    assert!(d.contains("Waiting (CrashLoopBackOff)"), "{d}");
    assert!(
        d.contains("Last state: Terminated (Error), exit code 1"),
        "{d}"
    );
    assert!(d.contains("restarts: 7"), "{d}");
    assert!(
        d.contains("Controlled by: ReplicaSet/backend-") && d.contains("→ Deployment/backend"),
        "{d}"
    );
    assert_has(&d, &["ConfigMap backend-config exists", "BackOff"]);
}

#[tokio::test]
async fn describe_workload_service_and_node() {
    let (_, ctx) = admin_ctx("crashloop-app-error").await;
    let d = on(&ctx, "describe", "deployment", "backend").await;
    assert_has(
        &d,
        &[
            "Replicas: 1 desired",
            "Pods (1): 1 CrashLoopBackOff",
            "last terminated Error (exit code 1)",
            "Selector: app=backend",
        ],
    );
    let s = on(&ctx, "describe", "service", "backend").await;
    assert!(
        s.contains("Endpoints ready (0)") && s.contains("Endpoints not ready (1)"),
        "{s}"
    );
    let n = on(&ctx, "describe", "node", "kai-node-1").await;
    assert!(n.contains("Ready=True") && n.contains("Allocatable"), "{n}");
}

#[tokio::test]
async fn missing_secret_is_visible_in_describe() {
    let (h, ctx) = admin_ctx("missing-secret").await;
    let pod = pod_named(&h, "api-");
    let d = on(&ctx, "describe", "pod", &pod).await;
    assert!(d.contains("CreateContainerConfigError"), "{d}");
    assert!(
        d.contains("DB_PASSWORD: <from secret db-creds key password>"),
        "{d}"
    );
    assert!(d.contains("Secret db-creds is MISSING"), "{d}");
}

#[tokio::test]
async fn logs_previous_and_current() {
    let (h, ctx) = admin_ctx("crashloop-app-error").await;
    let pod = crash_pod(&h);
    let l = call(&ctx, "get_logs", json!({"pod": pod, "previous": true})).await;
    assert!(
        l.contains("FATAL: password authentication failed for user \"app\""),
        "{l}"
    );
    assert!(l.contains("Authorization: Bearer [REDACTED"), "{l}");
    let (healthy, hctx) = admin_ctx("healthy").await;
    let web = pod_named(&healthy, "web-");
    let cur = call(&hctx, "get_logs", json!({"pod": web})).await;
    assert!(cur.contains("web listening on :8080"), "{cur}");
    let e = call_err(&hctx, "get_logs", json!({"pod": web, "previous": true})).await;
    assert!(e.contains("no previous"), "{e}");
    let e = call_err(&hctx, "get_logs", json!({"pod": web, "container": "nope"})).await;
    assert!(e.contains("its containers are: web"), "{e}");
}

#[tokio::test]
async fn events_are_aggregated_newest_first() {
    let (h, ctx) = admin_ctx("crashloop-app-error").await;
    let e = call(&ctx, "list_events", json!({})).await;
    assert!(e.contains("BackOff"), "{e}");
    let w = call(
        &ctx,
        "list_events",
        json!({"kind": "pod", "name": crash_pod(&h), "types": ["Warning"]}),
    )
    .await;
    assert!(w.contains("Warning") && !w.contains("Normal "), "{w}");
}

#[tokio::test]
async fn analyze_runs_on_the_target() {
    let (_, ctx) = admin_ctx("crashloop-app-error").await;
    let a = call(&ctx, "analyze", json!({"target": "deployment/backend"})).await;
    assert!(a.contains("Analyzer findings"), "{a}");
}

#[tokio::test]
async fn forbidden_is_told_to_the_model() {
    let h = scenario("crashloop-app-error").await;
    let ctx = ctx_for(&h.namespace, true).await;
    // (tool, arguments, what the error must name)
    let cases = [
        (
            "list_resources",
            json!({"kind": "pods"}),
            &["forbidden", "list", "pods"][..],
        ),
        (
            "describe",
            json!({"kind": "deployment", "name": "backend"}),
            &["forbidden", "get", "deployments"],
        ),
        (
            "get_logs",
            json!({"pod": crash_pod(&h), "previous": true}),
            &["forbidden"],
        ),
        // Even where it may read, Secrets are off limits for the restricted user.
        (
            "get_resource",
            json!({"kind": "secret", "name": "anything", "namespace": kai_testcluster::RESTRICTED_NAMESPACE}),
            &["forbidden", "secrets"],
        ),
    ];
    for (tool, args, needles) in cases {
        assert_has(&call_err(&ctx, tool, args).await, needles);
    }
}

#[tokio::test]
async fn pregather_finds_the_crash_without_leaking() {
    let (_, ctx) = admin_ctx("crashloop-app-error").await;
    let got = pregather(&ctx, "why is backend crashlooping?", None).await;
    let all: String = got
        .iter()
        .map(|g| format!("== {} {}\n{}\n", g.tool, g.args, g.output))
        .collect();
    assert_clean(&all);
    assert!(got.iter().all(|g| g.error.is_none()), "{all}");
    let prev = got
        .iter()
        .find(|g| g.tool == "get_logs" && g.args["previous"] == true)
        .unwrap_or_else(|| panic!("no previous logs gathered:\n{all}"));
    // The decisive line once: in the findings, which come first, and not again in the
    // log they quote it from.
    assert_eq!(got[0].tool, "analyze", "{all}");
    assert!(
        got[0]
            .output
            .contains("FATAL: password authentication failed"),
        "{all}"
    );
    assert_eq!(
        all.matches("FATAL: password authentication failed").count(),
        1,
        "{all}"
    );
    assert!(
        prev.output.contains("already quoted in the findings"),
        "{all}"
    );
    assert!(
        all.contains("Terminated (Error), exit code 1")
            || all.contains("last exited with code 1 (Error)"),
        "{all}"
    );
    // The failing pod is described, with its owner chain; its Deployment's describe
    // would repeat the pod template.
    let pod = got
        .iter()
        .find(|g| g.tool == "describe" && g.args["kind"] == "Pod")
        .unwrap_or_else(|| panic!("no pod described:\n{all}"));
    assert!(pod.output.contains("Deployment/backend"), "{all}");
    // What the tool returns for the same arguments, less what kai left out and said so.
    let again = run(&ctx, &prev.tool, prev.args.clone()).await.unwrap();
    for line in prev
        .output
        .lines()
        .filter(|l| !l.starts_with("[kai: ") && !l.starts_with("… ["))
    {
        assert!(again.contains(line), "{line:?} is not the tool's:\n{again}");
    }
    // Budget: at most three per-tool budgets in total (plus a little slack for headers).
    let total: usize = got.iter().map(|g| g.output.len()).sum();
    assert!(
        total <= 3 * 4 * ctx.budget_tokens + 1000,
        "{total} bytes:\n{all}"
    );

    let none = pregather(&ctx, "how do I write a helm chart?", None).await;
    assert!(none.is_empty(), "{none:?}");

    // No workload named, but something is wrong: the namespace's findings come first.
    let scan = pregather(&ctx, "what is broken in this namespace?", None).await;
    assert_eq!(scan.len(), 1, "{scan:?}");
    assert_eq!(scan[0].tool, "analyze");
    assert!(
        scan[0].output.contains("crash-loop-app-error"),
        "{}",
        scan[0].output
    );
    assert_clean(&scan[0].output);
}

/// Custom resources are found through discovery like any built-in kind.
#[tokio::test]
async fn list_and_get_custom_resources() {
    let h = scenario("healthy").await;
    let admin = kai_test_support::admin().await;
    let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    kai_test_support::cluster::install_crd(&admin, "test.kai.dev", "Widget", schema).await;
    let w = json!({"apiVersion": "test.kai.dev/v1", "kind": "Widget",
        "metadata": {"name": "sprocket", "namespace": h.namespace}, "spec": {"size": 3}});
    kai_test_support::apply(&admin, w).await;
    // A fresh context (and discovery) sees the new kind by kind, plural and kind.group.
    let ctx = ctx_for(&h.namespace, false).await;
    for kind in ["Widget", "widgets", "widget.test.kai.dev"] {
        let out = run(&ctx, "list_resources", json!({"kind": kind}))
            .await
            .unwrap();
        assert!(out.contains("sprocket"), "{kind}: {out}");
    }
    let out = run(
        &ctx,
        "get_resource",
        json!({"kind": "widget", "name": "sprocket"}),
    )
    .await
    .unwrap();
    assert!(out.contains("size: 3"), "{out}");
}

// ------------------------------------------------------------------ one read per turn

/// A LIST is a GET of a collection: `/api/v1/namespaces/NS/pods`, `/api/v1/nodes`,
/// `/apis/GROUP/VERSION/namespaces/NS/RESOURCE`, `/apis/GROUP/VERSION/RESOURCE`.
fn is_list(r: &kai_testcluster::Recorded) -> bool {
    let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    let rest = match segs.as_slice() {
        ["api", _v, rest @ ..] => rest,
        ["apis", _g, _v, rest @ ..] => rest,
        _ => return false,
    };
    r.method == "GET" && matches!(rest, [_] | ["namespaces", _, _])
}

/// Tools reading `ns` as `context` through a recording proxy (and the directory the
/// proxy keeps its files in, which must outlive it).
async fn proxied(
    ns: &str,
    context: &str,
) -> (ToolEnv, kai_testcluster::RecordingProxy, tempfile::TempDir) {
    let tc = kai_testcluster::shared().expect("test cluster");
    let dir = tempfile::tempdir().unwrap();
    let proxy = tc.recording_proxy(context, dir.path(), ns).await.unwrap();
    let env = ToolEnv {
        cluster: Some(Arc::new(
            Cluster::from_config(proxy.config(ns).unwrap(), ns, "proxied").unwrap(),
        )),
        budget_tokens: 2000,
        auto_approve: false,
        data_dir: std::env::temp_dir(),
        reads: Default::default(),
    };
    (env, proxy, dir)
}

/// The requests of one pre-gathering of `question` as `context` in `ns`, through the
/// recording proxy.
async fn pregather_requests(
    ns: &str,
    context: &str,
    question: &str,
) -> (Vec<kai::gather::Gathered>, Vec<kai_testcluster::Recorded>) {
    let (env, proxy, _dir) = proxied(ns, context).await;
    proxy.take();
    let got = pregather(&env, question, None).await;
    (got, proxy.take())
}

/// Pre-gathering reads the namespace once: describe, the analyzers and the target search
/// share one view of it, so no collection is listed twice in the turn, and the turn makes
/// far fewer requests than when each of them listed on its own.
#[tokio::test]
async fn pregather_lists_each_resource_once() {
    let h = scenario("crashloop-app-error").await;
    let (got, rec) = pregather_requests(
        &h.namespace,
        kai_testcluster::ADMIN_CONTEXT,
        "why is backend crashlooping?",
    )
    .await;
    assert!(
        got.iter().any(|g| g.output.contains("FATAL: password")),
        "{got:?}"
    );
    let summary: Vec<String> = rec
        .iter()
        .map(|r| {
            format!(
                "{} {}?{}",
                r.method,
                r.path,
                r.query.as_deref().unwrap_or("")
            )
        })
        .collect();
    eprintln!("{} requests:\n{}", rec.len(), summary.join("\n"));
    assert!(rec.iter().all(|r| !r.is_write()), "{summary:#?}");
    let mut lists: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rec.iter().filter(|r| is_list(r)) {
        // Later pages of one list are that list.
        if !r.params().iter().any(|(k, _)| k == "continue") {
            *lists.entry(r.path.as_str()).or_default() += 1;
        }
    }
    let twice: Vec<_> = lists.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "listed more than once: {twice:?}\n{summary:#?}"
    );
    // The whole turn: one list per kind the analyzers read (16, CronJobs once more at
    // batch/v1beta1 on this 1.20 server, after asking its version; the 11 RBAC, policy,
    // autoscaling and ingress-class kinds, HorizontalPodAutoscalers and
    // PodDisruptionBudgets probed and read at their 1.20 version), the worst pod and
    // two log tails; no reader lists a kind again.
    assert!(rec.len() <= 40, "{} requests:\n{summary:#?}", rec.len());
}

/// What a turn lists again after pre-gathering: the model's `describe` and `analyze`
/// calls of the same turn read from what pre-gathering read, so they list nothing; a new
/// turn, and the same turn after a change ([`kai::cluster::TurnReads::forget`]), read the
/// namespace again.
#[tokio::test]
async fn later_calls_of_a_turn_list_nothing_again() {
    let h = scenario("crashloop-app-error").await;
    let ns = h.namespace.as_str();
    let (env, proxy, _dir) = proxied(ns, kai_testcluster::ADMIN_CONTEXT).await;
    let env = Arc::new(env);
    let tools = kai::tools::registry(env.clone(), true).unwrap();
    let mut ctx = CallCtx::new(Arc::new(DenyAll));
    ctx.turn = Some(TurnId::next());
    let lists = |rec: &[kai_testcluster::Recorded]| -> Vec<String> {
        rec.iter()
            .filter(|r| is_list(r))
            .map(|r| format!("{}?{}", r.path, r.query.as_deref().unwrap_or("")))
            .collect()
    };
    let call = |ctx: &CallCtx, tool: &'static str, args: Value| {
        let h = tools.handler(tool).unwrap();
        let ctx = ctx.clone();
        async move { h.call(&ctx, args).await.unwrap() }
    };

    proxy.take();
    let got = pregather_in(&env, ctx.turn, "why is backend crashlooping?", None).await;
    assert!(
        got.iter().any(|g| g.output.contains("FATAL: password")),
        "{got:?}"
    );
    let first = lists(&proxy.take());
    assert!(
        first.len() >= 10,
        "pre-gathering lists the namespace: {first:#?}"
    );

    // The model's calls, later in the same turn.
    let mut analyzed = String::new();
    for (tool, args, says) in [
        (
            "describe",
            json!({"kind": "deployment", "name": "backend"}),
            "backend",
        ),
        ("analyze", json!({"target": "deploy/backend"}), "crashloop"),
        ("analyze", json!({}), "crashloop"),
    ] {
        analyzed = call(&ctx, tool, args).await;
        assert!(analyzed.contains(says), "{tool}: {analyzed}");
    }
    let again = lists(&proxy.take());
    assert!(
        again.is_empty(),
        "listed again in the same turn: {again:#?}"
    );

    // The next turn reads afresh.
    ctx.turn = Some(TurnId::next());
    let next = call(&ctx, "analyze", json!({})).await;
    assert_eq!(next, analyzed, "the same namespace, read again");
    let next_lists = lists(&proxy.take());
    assert!(
        next_lists.iter().any(|l| l.contains("/pods")),
        "a new turn lists the pods again: {next_lists:#?}"
    );

    // And within a turn, after a change.
    call(&ctx, "analyze", json!({})).await;
    assert!(lists(&proxy.take()).is_empty());
    env.reads.forget();
    call(&ctx, "analyze", json!({})).await;
    let after_change = lists(&proxy.take());
    assert!(
        after_change.iter().any(|l| l.contains("/pods")),
        "a read after a change lists again: {after_change:#?}"
    );
}

// ------------------------------------------------------------------ no swallowed errors

/// A namespace the restricted user may not read is not "nothing there": pre-gathering
/// says it could not read it (the analyzers' forbidden finding), for any question that
/// names something, where an empty listing used to gather nothing.
#[tokio::test]
async fn pregather_reports_a_forbidden_namespace() {
    let h = scenario("crashloop-app-error").await;
    let ctx = ctx_for(&h.namespace, true).await;
    // Not a troubleshooting question: an empty listing would have gathered nothing.
    for question in [
        "what image does backend run?",
        "why is backend crashlooping?",
    ] {
        let got = pregather(&ctx, question, None).await;
        let all: String = got
            .iter()
            .map(|g| format!("== {} {}\n{}\n", g.tool, g.args, g.output))
            .collect();
        assert!(!got.is_empty(), "nothing gathered for {question:?}");
        let analyze = got
            .iter()
            .find(|g| g.tool == "analyze")
            .unwrap_or_else(|| panic!("no analysis gathered for {question:?}:\n{all}"));
        assert!(
            analyze.output.contains("cannot list deployments")
                && analyze.output.contains("forbidden"),
            "{all}"
        );
        assert!(!analyze.output.contains("(0 found"), "{all}");
    }
}

/// Where the restricted user may read workloads but not Secrets, Nodes or
/// StorageClasses, every reader says what it could not read: describe's reference check
/// says the Secret could not be checked (not that it is missing), and the analysis says
/// which lists were forbidden and which checks that left out.
#[tokio::test]
async fn forbidden_lists_are_reported_where_the_user_may_read_the_rest() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, Patch, PatchParams};
    kai_test_support::crypto();
    let ns = kai_testcluster::RESTRICTED_NAMESPACE;
    let c = kai_testcluster::shared().expect("test cluster");
    let admin = c.admin_client().await.unwrap();
    let name = format!("ct-secret-ref-{}", std::process::id());
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "registry.example.com/app:1",
                "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}]}]
        }
    });
    let pods: Api<Pod> = Api::namespaced(admin, ns);
    // The namespace's ServiceAccount may still be on its way on a fresh cluster.
    let mut tries = 0;
    loop {
        match pods
            .patch(
                &name,
                &PatchParams::apply("kai-test").force(),
                &Patch::Apply(&pod),
            )
            .await
        {
            Ok(_) => break,
            Err(e) if tries < 50 => {
                tries += 1;
                eprintln!("creating the pod: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("creating the pod: {e}"),
        }
    }

    let ctx = ctx_for(ns, true).await;
    let d = call(&ctx, "describe", json!({"kind": "pod", "name": name})).await;
    assert!(
        d.contains("Secret db-creds could not be checked (forbidden)"),
        "{d}"
    );
    assert!(!d.contains("db-creds is MISSING"), "{d}");

    let a = call(&ctx, "analyze", json!({})).await;
    assert!(a.contains("cannot list secrets"), "{a}");
    assert!(
        a.contains(
            "could not list nodes (forbidden): node health and scheduling checks were skipped"
        ),
        "{a}"
    );
    let _ = pods.delete(&name, &Default::default()).await;
}

// ------------------------------------------------------------------ a 1.20 server

const CRON_SCENARIO: &str = r#"
description: a CronJob as a Kubernetes 1.20 server serves it (batch/v1beta1)
question: why is nightly failing?
target: {kind: CronJob, name: nightly}
"#;

const CRON_MANIFESTS: &str = r#"
apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: report
              image: registry.example.com/ops/report:2.0.0
"#;

/// The test cluster is Kubernetes 1.20: it serves CronJobs at batch/v1beta1 only, while
/// kai compiles against batch/v1 (k8s-openapi has nothing older than 1.33). kai reads
/// them at the version the server has and says so — in the analysis the model sees, in
/// `kai scan`'s output — instead of failing or showing no CronJobs.
#[tokio::test]
async fn a_1_20_server_without_batch_v1_cronjobs_is_read_and_noted() {
    kai_test_support::crypto();
    let c = kai_testcluster::shared().expect("test cluster");
    let ns = format!("ct-cron-{}", std::process::id());
    let s = kai_testcluster::Scenario {
        name: "ct-cron".into(),
        spec: kai_testcluster::ScenarioSpec::parse("ct-cron", CRON_SCENARIO).unwrap(),
        manifests: CRON_MANIFESTS.into(),
    };
    c.setup_custom(&s, &ns).await.unwrap();
    const NOTE: &str =
        "this cluster (v1.20) does not serve batch/v1 CronJob; kai read its batch/v1beta1 cronjobs instead";

    let ctx = ctx_for(&ns, false).await;
    let a = call(&ctx, "analyze", json!({})).await;
    assert!(a.contains(&format!("Note: {NOTE}")), "{a}");
    // The kind resolves through discovery at the version the server has (its group's
    // preferred version, batch/v1, has no CronJobs on 1.20).
    let l = call(&ctx, "list_resources", json!({"kind": "cronjobs"})).await;
    assert!(l.contains("nightly"), "{l}");
    let d = call(&ctx, "describe", json!({"kind": "cj", "name": "nightly"})).await;
    assert!(d.contains("0 3 * * *"), "{d}");

    // Pre-gathering finds the CronJob the question names (it is in the turn's read).
    let got = pregather(&ctx, "why is nightly failing?", None).await;
    let all: String = got
        .iter()
        .map(|g| format!("== {} {}\n{}\n", g.tool, g.args, g.output))
        .collect();
    let d = got
        .iter()
        .find(|g| g.tool == "describe" && g.args["kind"] == "CronJob")
        .unwrap_or_else(|| panic!("the CronJob was not found:\n{all}"));
    assert!(d.error.is_none() && d.output.contains("nightly"), "{all}");
    assert!(all.contains(NOTE), "{all}");

    // A kind with no older version to fall back to (policy/v1 PodDisruptionBudget would
    // be one) is left out of the read with a note, and the rest is analyzed as usual.
    let cluster = Cluster::from_config(c.admin_config().await.unwrap(), &ns, "test").unwrap();
    let view = kai::cluster::NamespaceView::new(&cluster, Some(&ns))
        .unwrap()
        .without_older_versions();
    let a = kai::cluster::fetch::analyze_text(&view, None, 8000)
        .await
        .unwrap();
    assert!(
        a.contains(
            "Note: this cluster (v1.20) does not serve batch/v1 CronJob; kai leaves cronjobs out of what it reads"
        ),
        "{a}"
    );
    assert!(a.contains("Analyzer findings for namespace"), "{a}");

    // The library's analysis carries the note; `kai scan` prints it on stderr.
    let analysis = kai::analyze::scan_analysis(&cluster, Some(&ns))
        .await
        .unwrap();
    assert_eq!(analysis.notes, vec![NOTE.to_string()]);
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kai"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", data.path())
        .env("KAI_DATA_DIR", data.path())
        .args([
            "--kubeconfig",
            c.kubeconfig_path().to_str().unwrap(),
            "-n",
            &ns,
            "scan",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("kai: note: {NOTE}")), "{stderr}");
}
