//! Custom resources checked against their CRD's OpenAPI schema from the real test
//! cluster: `kai lint --cluster`, `kai generate` (a scripted model), and a user who may
//! not read the CRD (a note, not a failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use kai_test_support::{assert_exit, both, kai, tool_results};
use kube::api::{Api, DynamicObject};
use kube::Client;
use mock_llm::{MockLlm, Reply};
use serde_json::json;
use tempfile::TempDir;

/// `widgets.example.com`: a spec with a required integer `size`, an enum `colour` and a
/// nested `settings` object.
async fn widget_crd() -> (PathBuf, Client) {
    let admin = kai_test_support::admin().await;
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "colour": {"type": "string", "enum": ["red", "green", "blue"]},
                    "settings": {"type": "object", "properties": {
                        "replicas": {"type": "integer"},
                        "mode": {"type": "string"}
                    }}
                }
            }
        }
    });
    kai_test_support::cluster::install_crd(&admin, "example.com", "Widget", schema).await;
    (kai_test_support::kubeconfig(), admin)
}

const VALID: &str = "\
apiVersion: example.com/v1
kind: Widget
metadata:
  name: sprocket
spec:
  size: 3
  colour: green
  settings:
    replicas: 2
    mode: fast
";

const BROKEN: &str = "\
apiVersion: example.com/v1
kind: Widget
metadata:
  name: sprocket
spec:
  sise: 3
  colour: purple
  settings:
    replicas: two
";

/// A data folder for `kai lint`, and the kubeconfig of the cluster serving the Widget CRD.
struct Linter {
    dir: TempDir,
    kc: PathBuf,
}

impl Linter {
    async fn new() -> Linter {
        let (kc, _admin) = widget_crd().await;
        let dir = tempfile::tempdir().unwrap();
        Linter { dir, kc }
    }

    /// `text` written to `name` in the data folder.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `kai ARGS FILE` against the test cluster; asserts exit `code` and returns the
    /// output with its stdout as text.
    async fn run(&self, args: &[&str], file: &Path, code: i32) -> (Output, String) {
        let out = kai!()
            .data(self.dir.path())
            .kubeconfig(&self.kc)
            .args(args)
            .arg(file)
            .run()
            .await;
        assert_exit(&out, code);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out, text)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_cluster_checks_custom_resources_against_their_crd() {
    let l = Linter::new().await;
    let broken = l.file("broken.yaml", BROKEN);
    let valid = l.file("valid.yaml", VALID);

    // An error-level rule fired: the same exit code as other schema errors.
    let (out, text) = l.run(&["lint", "--cluster"], &broken, 3).await;
    let f = broken.display().to_string();
    for line in [
        format!("{f}:6: error [schema-unknown-field] Widget/sprocket spec.sise: unknown field `sise`; did you mean `size`?"),
        format!("{f}:5: error [schema-invalid] Widget/sprocket spec.size: missing required field `size`"),
        format!("{f}:7: error [schema-invalid] Widget/sprocket spec.colour: unsupported value \"purple\": must be one of \"red\", \"green\", \"blue\""),
        format!("{f}:9: error [schema-invalid] Widget/sprocket spec.settings.replicas: invalid type: string \"two\", expected integer"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{}", both(&out));
    }
    assert!(!text.contains("schema-unknown-kind"), "{text}");

    // JSON carries the same findings.
    let (out, _) = l
        .run(&["-o", "json", "lint", "--cluster"], &broken, 3)
        .await;
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["errors"], 4, "{j}");

    // A valid Widget passes.
    let (out, text) = l.run(&["lint", "--cluster"], &valid, 0).await;
    assert!(
        text.contains("0 error(s), 0 warning(s), 0 info"),
        "{}",
        both(&out)
    );

    // Without --cluster lint stays offline: only the metadata was checked, and the
    // misspelling goes unnoticed.
    let (_, text) = l.run(&["lint"], &broken, 0).await;
    assert!(text.contains("[schema-unknown-kind]"), "{text}");
    assert!(
        text.contains("only apiVersion, kind and metadata were checked"),
        "{text}"
    );
    assert!(!text.contains("sise"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crd_the_user_may_not_read_is_a_note_not_a_failure() {
    let l = Linter::new().await;
    let broken = l.file("broken.yaml", BROKEN);
    let (out, text) = l
        .run(
            &["--context", "kai-restricted", "lint", "--cluster"],
            &broken,
            0,
        )
        .await;
    assert!(text.contains("info [schema-unknown-kind] Widget/sprocket kind: CRD schema not checked: kai may not read CustomResourceDefinition widgets.example.com (RBAC: ask for `get` on `customresourcedefinitions.apiextensions.k8s.io`); only apiVersion, kind and metadata were checked"), "{}", both(&out));
    assert!(!text.contains("sise"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_cluster_notes_kinds_the_cluster_does_not_serve() {
    let l = Linter::new().await;
    let gadget = l.file(
        "gadget.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\nspec:\n  anything: 1\n",
    );
    let (out, text) = l.run(&["lint", "--cluster"], &gadget, 0).await;
    assert!(
        text.contains("CRD schema not checked: the cluster serves no Gadget in example.com/v1"),
        "{}",
        both(&out)
    );
}

/// No Widget exists where `widgets` lists them.
async fn assert_no_widgets(widgets: &Api<DynamicObject>) {
    let list = widgets.list(&Default::default()).await.unwrap();
    assert!(list.items.is_empty(), "{:?}", list.items);
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_feeds_crd_schema_failures_back_to_the_model() {
    let (kc, admin) = widget_crd().await;
    let ns = "gen-crd";
    kai_test_support::scenario("healthy", ns).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        ns,
        &kai_test_support::cluster::api_resource("example.com/v1", "Widget"),
    );
    assert_no_widgets(&widgets).await;
    let data = tempfile::tempdir().unwrap();
    let typo = VALID.replacen("size: 3", "sise: 3", 1);
    let llm = MockLlm::start(vec![
        kai_test_support::model::tool_call("submit_manifests", json!({"yaml": typo})),
        kai_test_support::model::tool_call("submit_manifests", json!({"yaml": VALID})),
        Reply::text("A Widget of size 3."),
    ]);
    let out = kai!()
        .data(data.path())
        .cluster(&kc, ns)
        .model(&llm)
        .args(["generate", "a green widget of size 3"])
        .run()
        .await;
    assert_exit(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), VALID);
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 3, "{}", both(&out));
    let fed_back = tool_results(&reqs[1]);
    assert!(
        fed_back.contains(
            "Widget/sprocket (line 6), spec.sise: unknown field `sise`; did you mean `size`? [schema-unknown-field]"
        ),
        "{fed_back}"
    );
    assert!(
        fed_back.contains("spec.size: missing required field `size`"),
        "{fed_back}"
    );
    let stderr = kai_test_support::stderr(&out);
    assert!(stderr.contains("accepted after 2 round(s)"), "{stderr}");
    assert!(stderr.contains("server-side dry run"), "{stderr}");
    // Nothing was created: the dry runs stayed dry runs.
    assert_no_widgets(&widgets).await;
}
