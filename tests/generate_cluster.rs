//! `kai generate` end to end: the real binary, a scripted model that records every
//! request, and the real test cluster (server-side dry runs, cluster context). After each
//! test the cluster is read back: nothing generate did may have changed it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Output;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kai_test_support::cluster::api_resource;
use kai_test_support::{admin, assert_exit, both as text, kai, scenario, tool_results};
use kube::api::{Api, DynamicObject, PostParams};
use kube::Client;
use mock_llm::{MockLlm, Reply};
use serde::Deserialize;
use serde_json::{json, Value};
use tempfile::TempDir;

/// One test's namespace (the healthy scenario set up in it), kai's data directory, and
/// what the namespace held at the start (see [`inventory`]).
struct Run {
    ns: &'static str,
    kc: PathBuf,
    client: Client,
    data: TempDir,
    before: Vec<String>,
}

impl Run {
    async fn new(ns: &'static str) -> Run {
        let kc = scenario("healthy", ns).await;
        let client = admin().await;
        let before = inventory(&client, ns).await;
        Run {
            ns,
            kc,
            client,
            data: tempfile::tempdir().unwrap(),
            before,
        }
    }

    /// `kai generate ARGS` in the namespace with the scripted model; it must exit with
    /// `code`.
    fn generate(&self, llm: &MockLlm, args: &[&str], code: i32) -> Output {
        let out = kai!()
            .home(self.data.path())
            .env("KAI_DATA_DIR", self.data.path())
            .cluster(&self.kc, self.ns)
            .model(llm)
            .arg("generate")
            .args(args)
            .output();
        assert_exit(&out, code);
        out
    }

    /// Nothing kai generate did changed the namespace.
    async fn assert_unchanged(&self) {
        let now = inventory(&self.client, self.ns).await;
        assert_eq!(now, self.before, "the cluster changed");
    }
}

fn submit(yaml: &str) -> Reply {
    Reply::tool_call("submit_manifests", json!({ "yaml": yaml }).to_string())
}

/// What kai generate may never change: the Deployments, Services and ConfigMaps of `ns`
/// by name.
async fn inventory(client: &Client, ns: &str) -> Vec<String> {
    let mut names = Vec::new();
    for d in list::<Deployment>(client, ns).await {
        let m = d.metadata;
        names.push(format!(
            "Deployment/{}@{}",
            m.name.unwrap(),
            m.generation.unwrap_or(0)
        ));
    }
    for s in list::<Service>(client, ns).await {
        names.push(format!("Service/{}", s.metadata.name.unwrap()));
    }
    for c in list::<ConfigMap>(client, ns).await {
        let m = c.metadata;
        names.push(format!(
            "ConfigMap/{}@{}",
            m.name.unwrap(),
            m.resource_version.unwrap_or_default()
        ));
    }
    names.sort();
    names
}

/// Every `K` in `ns`.
async fn list<K>(client: &Client, ns: &str) -> Vec<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(client.clone(), ns);
    api.list(&Default::default()).await.unwrap().items
}

const NGINX: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  labels: {app: nginx}
spec:
  replicas: 3
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 101}
      containers:
      - name: nginx
        image: nginxinc/nginx-unprivileged:1.27.2
        ports:
        - {name: http, containerPort: 8080, protocol: TCP}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {memory: 128Mi}
        readinessProbe:
          httpGet: {path: /, port: http}
        livenessProbe:
          httpGet: {path: /, port: http}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
        volumeMounts:
        - {name: tmp, mountPath: /tmp}
      volumes:
      - name: tmp
        emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  selector: {app: nginx}
  ports:
  - {name: http, port: 80, targetPort: http, protocol: TCP}
";

#[tokio::test(flavor = "multi_thread")]
async fn valid_on_the_first_try_is_written_to_a_file_the_server_accepts() {
    let ns = "gen-first";
    let run = Run::new(ns).await;
    let llm = MockLlm::start(vec![
        submit(NGINX),
        Reply::text("A 3-replica nginx Deployment and its Service."),
    ]);
    let out_file = run.data.path().join("nginx.yaml");
    let out = run.generate(
        &llm,
        &[
            "create a deployment for nginx with 3 replicas exposing port 80",
            "--out",
            out_file.to_str().unwrap(),
        ],
        0,
    );
    assert!(
        out.stdout.is_empty(),
        "manifests went to the file: {}",
        text(&out)
    );
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(written, NGINX);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("accepted after 1 round(s)"), "{stderr}");
    assert!(stderr.contains("server-side dry run"), "{stderr}");
    assert_eq!(llm.requests().len(), 2);
    // The model was offered exactly one tool, the manifest one.
    let tools = llm.requests()[0]["tools"].as_array().unwrap().clone();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["function"]["name"], "submit_manifests");

    // The written file passes a server-side dry run on its own (what
    // `kubectl apply --dry-run=server -f` does).
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    for de in serde_yaml::Deserializer::from_str(&written) {
        let v = Value::deserialize(de).unwrap();
        let kind = v["kind"].as_str().unwrap();
        assert!(
            ["Deployment", "Service"].contains(&kind),
            "unexpected kind {kind}"
        );
        let ar = api_resource(v["apiVersion"].as_str().unwrap(), kind);
        let obj: DynamicObject = serde_json::from_value(v.clone()).unwrap();
        Api::<DynamicObject>::namespaced_with(run.client.clone(), ns, &ar)
            .create(&dry, &obj)
            .await
            .unwrap();
    }
    run.assert_unchanged().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelt_field_is_sent_back_with_its_path_and_fixed_in_round_two() {
    let ns = "gen-typo";
    let run = Run::new(ns).await;
    let typo = NGINX.replacen("replicas: 3", "replica: 3", 1);
    let llm = MockLlm::start(vec![
        submit(&typo),
        submit(NGINX),
        Reply::text("nginx, 3 replicas."),
    ]);
    let out = run.generate(&llm, &["nginx with 3 replicas on port 80"], 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), NGINX);
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 3);
    let fed_back = tool_results(&reqs[1]);
    assert!(
        fed_back.contains("spec.replica: unknown field `replica`; did you mean `replicas`?"),
        "{fed_back}"
    );
    assert!(fed_back.contains("(line 7)"), "{fed_back}");
    assert!(fed_back.contains("draft 1 of 3"), "{fed_back}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("accepted after 2 round(s)"));
    run.assert_unchanged().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_side_dry_run_rejection_is_fed_back() {
    let ns = "gen-dryrun";
    let run = Run::new(ns).await;
    // Sound to kai's own checks, refused by the API server: a ConfigMap key with a space.
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  \"log level\": debug\n";
    let good =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  log_level: debug\n";
    let llm = MockLlm::start(vec![submit(bad), submit(good), Reply::text("A ConfigMap.")]);
    let out = run.generate(
        &llm,
        &[
            "a configmap named settings with log level debug",
            "-o",
            "json",
        ],
        0,
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["data"]["log_level"], "debug");
    let fed_back = tool_results(&llm.requests()[1]);
    assert!(
        fed_back.contains("the cluster's server-side dry run rejected ConfigMap/settings"),
        "{fed_back}"
    );
    assert!(fed_back.contains("log level"), "{fed_back}");
    run.assert_unchanged().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn it_gives_up_after_three_rounds_with_a_clear_error_and_exit_code() {
    let ns = "gen-giveup";
    let run = Run::new(ns).await;
    let drafts = [
        NGINX.replacen("replicas: 3", "replica: 3", 1),
        NGINX.replacen("replicas: 3", "replicas: three", 1),
        NGINX.replacen(
            "image: nginxinc/nginx-unprivileged:1.27.2",
            "image: nginx:latest\n        privileged: true",
            1,
        ),
    ];
    let llm = MockLlm::start(vec![
        submit(&drafts[0]),
        submit(&drafts[1]),
        submit(&drafts[2]),
        Reply::text("should never be asked"),
    ]);
    let out_file = run.data.path().join("never.yaml");
    let out = run.generate(
        &llm,
        &["nginx", "--out", out_file.to_str().unwrap()],
        kai::exit::GENERATE_FAILED,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gave up after 3 rounds"), "{stderr}");
    assert!(
        stderr.contains("privileged"),
        "the last problems are listed: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(!out_file.exists());
    assert_eq!(llm.requests().len(), 3, "no fourth model call");
    run.assert_unchanged().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expose_backend_uses_the_real_deployment_labels_and_port() {
    let ns = "gen-expose";
    let mut run = Run::new(ns).await;
    // A backend whose labels and port no model could guess.
    let backend: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "backend"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "backend", "team": "payments-7f3"}},
            "template": {
                "metadata": {"labels": {"app": "backend", "team": "payments-7f3"}},
                "spec": {"containers": [{"name": "api", "image": "example/backend:2.0.1",
                    "ports": [{"name": "api", "containerPort": 9376, "protocol": "TCP"}]}]}
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(run.client.clone(), ns)
        .create(&PostParams::default(), &backend)
        .await
        .unwrap();
    run.before = inventory(&run.client, ns).await;
    let service = |target: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: backend-public\nspec:\n  type: ClusterIP\n  selector: {{app: backend, team: payments-7f3}}\n  ports:\n  - {{name: http, port: 80, targetPort: {target}, protocol: TCP}}\n"
        )
    };
    // The first draft guesses the usual port; kai knows better from the cluster.
    let llm = MockLlm::start(vec![
        submit(&service("8080")),
        submit(&service("api")),
        Reply::text("A Service exposing backend on port 80."),
    ]);
    let out = run.generate(&llm, &["expose backend on port 80"], 0);
    let reqs = llm.requests();
    // The context named the real labels and port before the first draft.
    let first = reqs[0].to_string();
    assert!(first.contains("Existing Deployment/backend"), "{first}");
    assert!(first.contains("team: payments-7f3"), "{first}");
    assert!(first.contains("9376 (name api)"), "{first}");
    // A Service on the wrong port is not accepted.
    let fed_back = tool_results(&reqs[1]);
    assert!(fed_back.contains("[service-target-port]"), "{fed_back}");
    assert!(fed_back.contains("9376"), "{fed_back}");
    let printed: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["spec"]["selector"]["team"], "payments-7f3");
    assert_eq!(printed["spec"]["ports"][0]["targetPort"], "api");
    run.assert_unchanged().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_without_a_terminal_or_yes_changes_nothing() {
    let ns = "gen-apply";
    let run = Run::new(ns).await;
    let llm = MockLlm::start(vec![submit(NGINX), Reply::text("nginx.")]);
    let out = run.generate(&llm, &["nginx", "--apply"], kai::exit::NOT_APPLIED);
    // The change pipeline got as far as its diff and the question nobody could answer.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Proposed change (NOT applied"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("Deployment"), "{}", text(&out));
    run.assert_unchanged().await;
}
