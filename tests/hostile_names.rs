//! No name the model chooses can turn a dry run into a write or add request parameters.
//!
//! Every tool is called through the registry, as the agent calls it, against the real
//! test apiserver behind a recording proxy, which keeps each request exactly as it
//! arrived (method, path, raw query, body). Arguments are drawn from existing names,
//! valid random names, hostile ones (a valid prefix plus `#`, `?`, `&`, `/`, `%`, `..`,
//! whitespace, NUL, unicode, `%23`, ...) and arbitrary unicode. What kai's own rules
//! (`kai::cluster::names`) say about the arguments decides what may be on the wire:
//!
//! - rejected (a name, namespace, container or API version fails, or the kind is
//!   unknown): nothing but API discovery reaches the server, the approver is never
//!   asked, and the model gets a `ToolError::Model` naming the problem;
//! - accepted: every write targets exactly the object path built from the validated
//!   kind, namespace and name (reads of object tools too), and with an approver that
//!   denies, every write is a dry run (`dryRun=All`, exactly once).
//!
//! For every request: only the query parameters kai legitimately sends, each once, fixed
//! ones with their fixed values, and every path segment in the name alphabet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::Client;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use kai::agent::protocol::{ApprovalRequest, Decision};
use kai::cluster::names::{self, NameRule};
use kai::cluster::write::{check_kind, ObjectRef};
use kai::cluster::{Cluster, ConnectOptions};
use kai::tools::mutate::parse_manifest;
use kai::tools::{Approver, CallCtx, ToolEnv, ToolError};
use kai_test_support::model::MUTATING_TOOLS as MUTATING;
use kai_test_support::{apply as ssa, model_err};
use kai_testcluster::{Recorded, RecordingProxy};

// ------------------------------------------------------------------ what may be sent

/// Every query parameter kai sends, and who sends it: `fieldManager`, `force`, `dryRun`
/// (the write path, `cluster::write`); `limit`, `continue`, `labelSelector`,
/// `fieldSelector` (lists: list_resources, list_events, describe, analyze, not-found
/// suggestions, rollout_undo's ReplicaSets); `container`, `previous`, `tailLines`,
/// `sinceSeconds`, `limitBytes` (pod logs: get_logs and analyze). Nothing else:
/// `propagationPolicy` and delete preconditions travel in the DeleteOptions body, and
/// kai never sends `resourceVersion`, `timestamps`, `follow` or `watch`.
const ALLOWED_PARAMS: &[&str] = &[
    "fieldManager",
    "force",
    "dryRun",
    "limit",
    "continue",
    "labelSelector",
    "fieldSelector",
    "container",
    "previous",
    "tailLines",
    "sinceSeconds",
    "limitBytes",
];

/// Parameters whose value is fixed whenever they are sent.
const FIXED_VALUES: &[(&str, &str)] = &[
    ("fieldManager", "kai"),
    ("force", "true"),
    ("dryRun", "All"),
    ("previous", "true"),
];

// ------------------------------------------------------------------ hostile material

/// Appended to a valid name (sometimes followed by `x`). `:`/`@`/`+`/`_`/`X` are valid
/// in RBAC names (path-segment rule) and invalid everywhere else.
const HOSTILE_SUFFIXES: &[&str] = &[
    "#",
    "#x?dryRun=None",
    "?dryRun=None",
    "?dryRun=All",
    "?x=1",
    "&force=true",
    "&dryRun=All&dryRun=",
    "/",
    "/../settings",
    "/status",
    "/..",
    "%",
    "%23",
    "%2F",
    "%2e%2e",
    "..",
    " ",
    " x",
    "\n",
    "\r\n",
    "\t",
    "\0",
    "é",
    "\u{202e}",
    "\u{200b}",
    "\u{ff03}",
    "X",
    ";",
    ",x=y",
    "=x",
    "\\",
    "'",
    "\"",
    ":x",
    "@x",
    "+x",
    "_x",
    "~",
    "-",
    ".",
];

/// Whole values that are hostile on their own.
const HOSTILE_WHOLE: &[&str] = &[
    "", " ", ".", "..", "/", "#", "?", "&", "%", "%23", "*", "-web", "web-", "a..b", ".web",
    "web.", "WEB", "..%2F..", "a/b", "\u{0}", "\n",
];

fn any_string(max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(any::<char>(), 0..max)
        .prop_map(|v| v.into_iter().collect())
        .boxed()
}

fn dns_name() -> BoxedStrategy<String> {
    proptest::string::string_regex("[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?(\\.[a-z0-9]{1,6})?")
        .unwrap()
        .boxed()
}

fn hostile_from(prefixes: Vec<String>) -> BoxedStrategy<String> {
    (
        prop_oneof![prop::sample::select(prefixes), dns_name()],
        prop::sample::select(HOSTILE_SUFFIXES),
        any::<bool>(),
    )
        .prop_map(|(p, h, more)| {
            if more {
                format!("{p}{h}x")
            } else {
                format!("{p}{h}")
            }
        })
        .boxed()
}

/// An object name: existing, valid random, hostile or arbitrary.
fn name_strat(existing: Vec<String>, valid_only: bool) -> BoxedStrategy<String> {
    if valid_only {
        return prop::sample::select(existing).boxed();
    }
    prop_oneof![
        35 => prop::sample::select(existing.clone()),
        15 => dns_name(),
        35 => hostile_from(existing),
        5 => prop::sample::select(HOSTILE_WHOLE).prop_map(String::from),
        10 => any_string(24),
    ]
    .boxed()
}

/// A namespace argument (`None`: omitted).
fn ns_strat(ns: String, valid_only: bool) -> BoxedStrategy<Option<String>> {
    if valid_only {
        return prop_oneof![Just(None), Just(Some(ns))].boxed();
    }
    prop_oneof![
        30 => Just(None),
        30 => Just(Some(ns.clone())),
        5 => proptest::string::string_regex("nx-[a-z]{3,8}").unwrap().prop_map(Some),
        22 => hostile_from(vec![ns]).prop_map(Some),
        5 => prop::sample::select(HOSTILE_WHOLE).prop_map(|s| Some(s.to_string())),
        8 => any_string(16).prop_map(Some),
    ]
    .boxed()
}

fn kind_strat(primary: &[&str], others: &[&str], valid_only: bool) -> BoxedStrategy<String> {
    let p: Vec<String> = primary.iter().map(|s| s.to_string()).collect();
    if valid_only {
        return prop::sample::select(p).boxed();
    }
    let o: Vec<String> = others.iter().map(|s| s.to_string()).collect();
    prop_oneof![
        70 => prop::sample::select(p.clone()),
        10 => prop::sample::select(o),
        10 => hostile_from(p),
        10 => any_string(12),
    ]
    .boxed()
}

/// Free text that is not a name (selectors, targets, images): sometimes hostile.
fn text_strat(plain: &[&str]) -> BoxedStrategy<String> {
    let p: Vec<String> = plain.iter().map(|s| s.to_string()).collect();
    prop_oneof![
        50 => prop::sample::select(p.clone()),
        30 => hostile_from(p),
        20 => any_string(24),
    ]
    .boxed()
}

// ------------------------------------------------------------------ tool arguments

/// The names and namespace a fixture offers the generators.
#[derive(Clone)]
struct Pools {
    ns: String,
    /// Existing objects: web (Deployment), settings (ConfigMap), db (Secret),
    /// fz:reader (Role, an RBAC name with a colon).
    names: Vec<String>,
    pods: Vec<String>,
    /// Property 2 (approved writes): no cluster-scoped kinds, no Namespace manifests.
    approving: bool,
}

fn put(m: &mut serde_json::Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.into(), v);
    }
}

fn obj(pairs: Vec<(&str, Option<Value>)>) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in pairs {
        put(&mut m, k, v);
    }
    Value::Object(m)
}

fn s(v: String) -> Option<Value> {
    Some(Value::String(v))
}

fn ns_v(v: Option<String>) -> Option<Value> {
    v.map(Value::String)
}

/// Kinds by tool: the ones it is for, and others.
fn kinds_for(tool: &str, approving: bool) -> (&'static [&'static str], &'static [&'static str]) {
    let others: &'static [&'static str] = if approving {
        &["statefulset", "service", "job", "pod"]
    } else {
        &["namespace", "node", "ns", "statefulset", "service", "job"]
    };
    let primary: &'static [&'static str] = match tool {
        "scale" => &["deploy", "Deployment", "deployments.apps"],
        "rollout_restart" | "rollout_undo" => &["deploy", "Deployment", "deployments"],
        "set_image" => &["deploy", "Deployment", "pod"],
        "list_resources" => &["pods", "deploy", "configmaps", "secrets", "roles"],
        _ => &[
            "deploy",
            "Deployment",
            "configmap",
            "cm",
            "secret",
            "role",
            "roles.rbac.authorization.k8s.io",
            "pod",
        ],
    };
    (primary, others)
}

/// One manifest document as a model might write it: serialized faithfully, or
/// templated as text (so a hostile name can also break the YAML).
fn manifest_doc(p: &Pools, valid: bool) -> BoxedStrategy<String> {
    let mut kinds: Vec<(&'static str, &'static str)> = vec![
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("rbac.authorization.k8s.io/v1", "Role"),
    ];
    if !p.approving {
        kinds.push(("apps/v1", "Deployment"));
        kinds.push(("v1", "Namespace"));
    }
    let av_mut: BoxedStrategy<Option<String>> = if valid {
        Just(None).boxed()
    } else {
        prop_oneof![
            60 => Just(None),
            25 => prop::sample::select(HOSTILE_SUFFIXES).prop_map(|h| Some(format!("+{h}"))),
            15 => prop_oneof![
                prop::sample::select(&["v2", "apps/v2", "v1beta1", "v1/../v1", "apps#/v1", "/v1"][..])
                    .prop_map(String::from),
                any_string(10),
            ]
            .prop_map(Some),
        ]
        .boxed()
    };
    (
        prop::sample::select(kinds),
        av_mut,
        name_strat(p.names.clone(), valid),
        ns_strat(p.ns.clone(), valid),
        any::<bool>(),
        0u32..1000,
    )
        .prop_map(|((av, kind), m, name, ns, templated, n)| {
            let av = match m {
                None => av.to_string(),
                Some(x) if x.starts_with('+') => format!("{av}{}", &x[1..]),
                Some(x) => x,
            };
            let body = match kind {
                "ConfigMap" | "Secret" => json!({"data": {"fuzz": format!("dmFsdWU{n}")}}),
                "Role" => json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
                "Deployment" => json!({"spec": {
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "app", "image": format!("nginx:1.{n}")}]}}}}),
                _ => json!({}),
            };
            if templated {
                let mut t = format!("apiVersion: {av}\nkind: {kind}\nmetadata:\n  name: {name}\n");
                if let Some(ns) = &ns {
                    t.push_str(&format!("  namespace: {ns}\n"));
                }
                for (k, v) in body.as_object().unwrap() {
                    t.push_str(&format!("{k}: {v}\n"));
                }
                t
            } else {
                let mut doc = json!({"apiVersion": av, "kind": kind, "metadata": {"name": name}});
                if let Some(ns) = ns {
                    doc["metadata"]["namespace"] = Value::String(ns);
                }
                for (k, v) in body.as_object().unwrap() {
                    doc[k] = v.clone();
                }
                serde_yaml::to_string(&doc).unwrap()
            }
        })
        .boxed()
}

/// The objects a tool is for, as (kind, name): what its valid calls name.
fn valid_targets(tool: &str, p: &Pools) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = match tool {
        "scale" | "rollout_restart" | "rollout_undo" | "set_image" => &[
            ("deploy", "web"),
            ("Deployment", "web"),
            ("deployments.apps", "web"),
        ],
        _ => &[
            ("deploy", "web"),
            ("Deployment", "web"),
            ("configmap", "settings"),
            ("cm", "settings"),
            ("secret", "db"),
            ("role", "fz:reader"),
            ("roles.rbac.authorization.k8s.io", "fz:reader"),
        ],
    };
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
    if matches!(tool, "get_resource" | "describe" | "list_events") {
        v.extend(p.pods.iter().map(|n| ("pod".to_string(), n.clone())));
    }
    v
}

/// Arguments for one call of `tool`; `valid`: only valid names of existing objects.
fn tool_args(tool: &'static str, p: &Pools, valid: bool) -> BoxedStrategy<Value> {
    let (primary, others) = kinds_for(tool, p.approving);
    let kind = || kind_strat(primary, others, valid);
    let name = || name_strat(p.names.clone(), valid);
    let kind_name = || {
        if valid {
            prop::sample::select(valid_targets(tool, p)).boxed()
        } else {
            (kind(), name()).boxed()
        }
    };
    let ns = || ns_strat(p.ns.clone(), valid);
    let container = || {
        if valid {
            Just("app".to_string()).boxed()
        } else {
            name_strat(vec!["app".into()], false)
        }
    };
    match tool {
        "list_resources" => (
            kind(),
            ns(),
            proptest::option::of(text_strat(&["app=web", "app!=x,tier in (a,b)", ""])),
            proptest::option::of(text_strat(&["metadata.name=web", "status.phase!=Running"])),
        )
            .prop_map(|(k, n, l, f)| {
                obj(vec![
                    ("kind", s(k)),
                    ("namespace", ns_v(n)),
                    ("label_selector", l.map(Value::String)),
                    ("field_selector", f.map(Value::String)),
                ])
            })
            .boxed(),
        "get_resource" | "describe" | "rollout_restart" | "delete_resource" => (kind_name(), ns())
            .prop_map(|((k, nm), n)| obj(vec![("kind", s(k)), ("name", s(nm)), ("namespace", ns_v(n))]))
            .boxed(),
        "get_logs" => (
            name_strat(p.pods.clone(), valid),
            ns(),
            proptest::option::of(container()),
            any::<bool>(),
            proptest::option::of(1i64..300),
            proptest::option::of(1i64..3600),
        )
            .prop_map(|(pod, n, c, prev, tail, since)| {
                obj(vec![
                    ("pod", s(pod)),
                    ("namespace", ns_v(n)),
                    ("container", c.map(Value::String)),
                    ("previous", prev.then_some(Value::Bool(true))),
                    ("tail_lines", tail.map(Value::from)),
                    ("since_seconds", since.map(Value::from)),
                ])
            })
            .boxed(),
        "list_events" => (
            ns(),
            kind_name(),
            any::<(bool, bool)>(),
            prop::sample::select(vec![
                None,
                Some(vec!["Warning"]),
                Some(vec!["Normal"]),
                Some(vec!["Warning", "Normal"]),
            ]),
        )
            .prop_map(|(n, (k, nm), (with_kind, with_name), t)| {
                obj(vec![
                    ("namespace", ns_v(n)),
                    ("kind", with_kind.then_some(Value::String(k))),
                    ("name", with_name.then_some(Value::String(nm))),
                    ("types", t.map(|t| json!(t))),
                ])
            })
            .boxed(),
        "analyze" => (
            proptest::option::of(text_strat(&["web", "deployment/web", "pod/x", "configmap/settings"])),
            ns(),
        )
            .prop_map(|(t, n)| obj(vec![("target", t.map(Value::String)), ("namespace", ns_v(n))]))
            .boxed(),
        "apply_manifest" => prop::collection::vec(manifest_doc(p, valid), 1..=2)
            .prop_map(|docs| json!({"yaml": docs.join("---\n")}))
            .boxed(),
        "patch_resource" => (
            kind_name(),
            ns(),
            prop::sample::select(vec![None, Some("merge"), Some("strategic"), Some("json")]),
            0u32..1_000_000,
        )
            .prop_map(|((k, nm), n, pt, v)| {
                let patch = if pt == Some("json") {
                    json!([{"op": "add", "path": "/metadata/annotations", "value": {"kai-fuzz": v.to_string()}}])
                } else {
                    json!({"metadata": {"annotations": {"kai-fuzz": v.to_string()}}})
                };
                obj(vec![
                    ("kind", s(k)),
                    ("name", s(nm)),
                    ("namespace", ns_v(n)),
                    ("patch", Some(patch)),
                    ("patch_type", pt.map(|t| Value::String(t.into()))),
                ])
            })
            .boxed(),
        "scale" => (kind_name(), ns(), 0i64..3)
            .prop_map(|((k, nm), n, r)| {
                obj(vec![
                    ("kind", s(k)),
                    ("name", s(nm)),
                    ("namespace", ns_v(n)),
                    ("replicas", Some(Value::from(r))),
                ])
            })
            .boxed(),
        "rollout_undo" => (kind_name(), ns(), proptest::option::of(1i64..4))
            .prop_map(|((k, nm), n, to)| {
                obj(vec![
                    ("kind", s(k)),
                    ("name", s(nm)),
                    ("namespace", ns_v(n)),
                    ("to_revision", to.map(Value::from)),
                ])
            })
            .boxed(),
        "set_image" => (
            kind_name(),
            ns(),
            container(),
            prop_oneof![
                prop::sample::select(&["nginx:1.25", "nginx:1.26", "registry.local/app@sha256:abc"][..])
                    .prop_map(String::from),
                text_strat(&["nginx:1.27"]),
            ],
        )
            .prop_map(|((k, nm), n, c, img)| {
                obj(vec![
                    ("kind", s(k)),
                    ("name", s(nm)),
                    ("namespace", ns_v(n)),
                    ("container", s(c)),
                    ("image", s(img)),
                ])
            })
            .boxed(),
        other => panic!("no generator for {other}"),
    }
}

/// A third of the calls name the tool's own objects validly (so every run exercises the
/// write path); the rest are fuzzed.
fn case_strat(tool: &'static str, p: &Pools) -> BoxedStrategy<Value> {
    prop_oneof![1 => tool_args(tool, p, true), 2 => tool_args(tool, p, false)].boxed()
}

// ------------------------------------------------------------------ fixture

fn web(ns: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}
    })
}

fn fixture_objects(ns: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("web", web(ns, "nginx:1.26")),
        (
            "settings",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": ns}, "data": {"mode": "safe"}}),
        ),
        (
            "db",
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": ns}, "stringData": {"password": "hunter2-very-secret"}}),
        ),
        (
            "fz:reader",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "fz:reader", "namespace": ns},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        ),
    ]
}

/// Answers every approval request the same way and records it.
struct Rec {
    approve: bool,
    seen: Mutex<Vec<ApprovalRequest>>,
}

impl Rec {
    fn new(approve: bool) -> Arc<Rec> {
        Arc::new(Rec {
            approve,
            seen: Mutex::default(),
        })
    }
    fn take(&self) -> Vec<ApprovalRequest> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

#[async_trait]
impl Approver for Rec {
    async fn request(&self, request: ApprovalRequest) -> Decision {
        self.seen.lock().unwrap().push(request);
        if self.approve {
            Decision::Approved
        } else {
            Decision::Denied
        }
    }
}

struct Fx {
    ns: String,
    admin: Client,
    proxy: RecordingProxy,
    /// kai's cluster, through the proxy (with its write gate).
    cluster: Arc<Cluster>,
    /// A second kai cluster straight to the apiserver: the oracle's kind resolution,
    /// so its discovery requests never show in the proxy's record.
    oracle: Cluster,
    data: tempfile::TempDir,
    _dir: tempfile::TempDir,
    pools: Pools,
}

/// What a tool call runs with: the tools' environment and who approves.
struct Ctx {
    env: ToolEnv,
    call: CallCtx,
}

async fn fixture(ns: &str, approving: bool) -> Fx {
    let tc = kai_test_support::shared();
    let admin = kai_test_support::admin().await;
    ssa(&admin, kai_test_support::cluster::namespace(ns)).await;
    for (_, o) in fixture_objects(ns) {
        ssa(&admin, o).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let proxy = tc
        .recording_proxy(kai_testcluster::ADMIN_CONTEXT, dir.path(), ns)
        .await
        .unwrap();
    let cluster = Arc::new(Cluster::from_config(proxy.config(ns).unwrap(), ns, "proxied").unwrap());
    let oracle = Cluster::from_config(tc.admin_config().await.unwrap(), ns, "oracle").unwrap();
    Fx {
        ns: ns.to_string(),
        admin,
        proxy,
        cluster,
        oracle,
        data: tempfile::tempdir().unwrap(),
        _dir: dir,
        pools: Pools {
            ns: ns.to_string(),
            names: fixture_objects(ns)
                .into_iter()
                .map(|(n, _)| n.to_string())
                .collect(),
            pods: vec!["web".into()],
            approving,
        },
    }
}

impl Fx {
    /// Add the Deployment's pod to the pod names (a bounded wait: without it, pod
    /// names are fuzzed from "web" alone).
    async fn load_pods(&mut self) {
        let pods = kai_test_support::wait_for_pods(&self.admin, &self.ns, "app=web").await;
        self.pools.pods.extend(pods);
    }

    /// Give web a second revision (bounded waits), so rollout_undo has one to go back
    /// to: the first ReplicaSet must exist before the template changes, or the
    /// controller only ever sees the second template.
    async fn wait_revisions(&self) {
        let rss: Api<ReplicaSet> = Api::namespaced(self.admin.clone(), &self.ns);
        for (want, image) in [(1, Some("nginx:1.25")), (2, None)] {
            for _ in 0..120 {
                let n = rss
                    .list(&ListParams::default().labels("app=web"))
                    .await
                    .unwrap()
                    .items
                    .len();
                if n >= want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            if let Some(image) = image {
                ssa(&self.admin, web(&self.ns, image)).await;
            }
        }
    }

    /// The one request the proxy recorded since it was last emptied (the test fails if
    /// there were none or more).
    fn only_request(&self) -> Recorded {
        let mut rec = self.proxy.take();
        assert_eq!(rec.len(), 1, "{rec:?}");
        rec.remove(0)
    }

    fn ctx(&self, approver: Arc<dyn Approver>) -> Ctx {
        Ctx {
            env: ToolEnv {
                cluster: Some(self.cluster.clone()),
                budget_tokens: 4000,
                auto_approve: false,
                data_dir: self.data.path().to_path_buf(),
                reads: Default::default(),
            },
            call: CallCtx::new(approver),
        }
    }

    /// Call a tool as the agent does: the registry (the standard tools, bound to the
    /// context's environment) validates the raw arguments first.
    /// A call (with the proxy's record emptied first) that must fail with a model error;
    /// the error.
    async fn refused(&self, approver: Arc<dyn Approver>, tool: &str, args: &Value) -> String {
        self.proxy.take();
        model_err(self.call(&self.ctx(approver), tool, args).await)
    }

    async fn call(&self, ctx: &Ctx, tool: &str, args: &Value) -> Result<String, ToolError> {
        // A change (named as the audit log names it) is asked for as the model asks:
        // propose_change with the change's action.
        let (tool, args) =
            kai::tools::mutate::proposal(tool, args.clone()).unwrap_or((tool, args.clone()));
        let registry = kai::tools::registry(Arc::new(ctx.env.clone()), false).unwrap();
        let (handler, args) = registry
            .prepare(tool, &args.to_string())
            .map_err(ToolError::Model)?;
        handler.call(&ctx.call, args).await
    }

    /// Re-create fixture objects an approved delete removed.
    async fn restore(&self) {
        for (name, o) in fixture_objects(&self.ns) {
            let ar = match o["kind"].as_str().unwrap() {
                "Deployment" => ApiResource::erase::<Deployment>(&()),
                "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
                "Secret" => ApiResource::erase::<Secret>(&()),
                _ => ApiResource::erase::<Role>(&()),
            };
            let api: Api<DynamicObject> = Api::namespaced_with(self.admin.clone(), &self.ns, &ar);
            if api.get_opt(name).await.unwrap().is_none() {
                ssa(&self.admin, o).await;
            }
        }
    }
}

// ------------------------------------------------------------------ the oracle

/// What kai's own rules say about a call's arguments.
#[derive(Debug)]
enum Verdict {
    /// Every name that reaches a path passes. Writes may target only `targets`; GETs
    /// other than discovery only `reads`, when given.
    Accept {
        targets: Vec<String>,
        /// The same targets as (namespace of a namespaced kind, name), checked on the
        /// raw path independently of kai's path builder.
        objects: Vec<(Option<String>, String)>,
        reads: Option<Vec<String>>,
    },
    /// Something fails: nothing but discovery may be sent, and the model's error names
    /// one of `problems`.
    Reject { problems: Vec<&'static str> },
}

fn str_arg<'a>(args: &'a Value, k: &str) -> Option<&'a str> {
    args.get(k).and_then(Value::as_str)
}

async fn verdict(fx: &Fx, tool: &str, args: &Value) -> Verdict {
    if tool == "apply_manifest" {
        return manifest_verdict(fx, str_arg(args, "yaml").unwrap()).await;
    }
    let mutating = MUTATING.contains(&tool);
    // The namespace as the tool resolves it: mutating tools treat a blank one as
    // omitted, read tools an empty one.
    let ns_arg = str_arg(args, "namespace");
    let ns = if mutating {
        ns_arg.filter(|n| !n.trim().is_empty())
    } else {
        ns_arg.filter(|n| !n.is_empty())
    }
    .unwrap_or(&fx.ns)
    .to_string();
    let all_allowed = matches!(tool, "list_resources" | "list_events" | "analyze");
    let ns_ok = (all_allowed && ns == "*") || names::check_namespace(&ns).is_ok();
    let mut problems = Vec::new();
    let done = |problems: Vec<&'static str>, targets, objects, reads| {
        if problems.is_empty() {
            Verdict::Accept {
                targets,
                objects,
                reads,
            }
        } else {
            Verdict::Reject { problems }
        }
    };
    // These tools check the namespace always; the one-object tools (under `_` below)
    // only where it matters.
    let checks_ns = matches!(
        tool,
        "analyze" | "get_logs" | "list_resources" | "list_events"
    );
    if checks_ns && !ns_ok {
        problems.push("invalid namespace");
    }
    match tool {
        "analyze" => done(problems, vec![], vec![], None),
        "get_logs" => {
            let pod = str_arg(args, "pod").unwrap();
            if names::check_name(NameRule::Subdomain, pod).is_err() {
                problems.push("invalid object name");
            }
            if let Some(c) = str_arg(args, "container").filter(|c| !c.is_empty()) {
                if names::check_container(c).is_err() {
                    problems.push("invalid container name");
                }
            }
            let reads = if problems.is_empty() {
                let kind = fx.oracle.resolve("pods").await.unwrap();
                let r = ObjectRef::new(kind, Some(&ns), pod).unwrap();
                vec![r.path(), format!("{}/log", r.path()), r.collection_path()]
            } else {
                vec![]
            };
            done(problems, vec![], vec![], Some(reads))
        }
        "list_resources" => {
            if fx
                .oracle
                .resolve(str_arg(args, "kind").unwrap())
                .await
                .is_err()
            {
                problems.push("unknown kind");
            }
            done(problems, vec![], vec![], None)
        }
        "list_events" => {
            let name = str_arg(args, "name").filter(|n| !n.is_empty());
            if let Some(k) = str_arg(args, "kind").filter(|k| !k.is_empty()) {
                match fx.oracle.resolve(k).await {
                    Ok(kind) => {
                        if name.is_some_and(|n| Cluster::check_name(&kind, n).is_err()) {
                            problems.push("invalid object name");
                        }
                    }
                    Err(_) => problems.push("unknown kind"),
                }
            }
            if name.is_some_and(|n| names::check_name(NameRule::PathSegment, n).is_err()) {
                problems.push("invalid object name");
            }
            done(problems, vec![], vec![], None)
        }
        _ => {
            // One object: get_resource, describe and the single-object mutating tools.
            let kind_arg = str_arg(args, "kind").unwrap();
            let name = str_arg(args, "name").unwrap();
            let kind = if mutating && kind_arg.trim().is_empty() {
                problems.push("missing required string argument `kind`");
                None
            } else {
                match fx.oracle.resolve(kind_arg).await {
                    Ok(k) => Some(k),
                    Err(_) => {
                        problems.push("unknown kind");
                        None
                    }
                }
            };
            if mutating && name.trim().is_empty() {
                problems.push("missing required string argument `name`");
            } else if kind
                .as_ref()
                .is_some_and(|k| Cluster::check_name(k, name).is_err())
            {
                problems.push("invalid object name");
            }
            // Mutating tools ignore the namespace of a cluster-scoped kind (documented
            // in their schemas); read tools check it always.
            let ns_matters = !mutating || kind.as_ref().is_some_and(|k| k.namespaced());
            if ns_matters && !ns_ok {
                problems.push("invalid namespace");
            }
            if !problems.is_empty() {
                return done(problems, vec![], vec![], None);
            }
            let kind = kind.unwrap();
            let object = (kind.namespaced().then(|| ns.clone()), name.to_string());
            let r = ObjectRef::new(kind, Some(&ns), name).unwrap();
            let reads = match tool {
                "describe" => None,
                "rollout_undo" => Some(vec![
                    r.path(),
                    format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
                ]),
                _ => Some(vec![r.path(), r.collection_path()]),
            };
            if mutating {
                done(problems, vec![r.path()], vec![object], reads)
            } else {
                done(problems, vec![], vec![], reads)
            }
        }
    }
}

async fn manifest_verdict(fx: &Fx, yaml: &str) -> Verdict {
    let docs = match parse_manifest(yaml) {
        Ok(d) => d,
        Err(_) => {
            return Verdict::Reject {
                problems: vec!["manifest", "document"],
            }
        }
    };
    let mut problems = Vec::new();
    let mut targets = Vec::new();
    let mut objects = Vec::new();
    for doc in docs {
        let api_version = doc["apiVersion"].as_str().unwrap();
        let kind_name = doc["kind"].as_str().unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let query = if group.is_empty() {
            kind_name.to_string()
        } else {
            format!("{kind_name}.{group}")
        };
        let mut kind = match fx.oracle.resolve(&query).await {
            Ok(k) if k.resource.group == group && k.resource.kind == kind_name => k,
            _ => {
                problems.push("unknown kind");
                continue;
            }
        };
        kind.resource.version = version.to_string();
        kind.resource.api_version = api_version.to_string();
        // Every problem of the document: kai reports whichever it checks first.
        let mut doc_ok = true;
        if check_kind(&kind).is_err() {
            problems.push("invalid API version");
            doc_ok = false;
        }
        let ns = doc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or(&fx.ns);
        if kind.namespaced() && names::check_namespace(ns).is_err() {
            problems.push("invalid namespace");
            doc_ok = false;
        }
        let rule = names::rule_for(&kind.resource.group, &kind.resource.kind);
        if names::check_name(rule, name).is_err() {
            problems.push("invalid object name");
            doc_ok = false;
        }
        if doc_ok {
            let namespaced = kind.namespaced();
            let r = ObjectRef::new(kind, Some(ns), name).unwrap();
            targets.push(r.path());
            objects.push((namespaced.then(|| ns.to_string()), name.to_string()));
        }
    }
    if problems.is_empty() {
        Verdict::Accept {
            targets,
            objects,
            reads: None,
        }
    } else {
        Verdict::Reject { problems }
    }
}

// ------------------------------------------------------------------ the checks

fn segments(path: &str) -> Vec<&str> {
    path.strip_prefix('/').unwrap_or(path).split('/').collect()
}

/// API discovery: `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`, GET, no query.
fn is_discovery(r: &Recorded) -> bool {
    let seg = segments(&r.path);
    r.method == "GET"
        && r.query.as_deref().unwrap_or("").is_empty()
        && matches!((seg[0], seg.len()), ("api", 1 | 2) | ("apis", 1 | 3))
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// What holds for every request of every call.
fn check_request(r: &Recorded, tool: &str, args: &Value) -> Result<(), TestCaseError> {
    // Every segment in the name alphabet: nothing that needed escaping, no dot-segments.
    for seg in segments(&r.path) {
        let ok = !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:@+".contains(c));
        if !ok {
            return Err(fail(format!("segment {seg:?} in {} {}", r.method, r.path)));
        }
    }
    let params = r.params();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, v) in &params {
        if !ALLOWED_PARAMS.contains(&k.as_str()) {
            return Err(fail(format!(
                "parameter {k:?}={v:?} in {} {}?{}",
                r.method,
                r.path,
                r.query.as_deref().unwrap_or("")
            )));
        }
        *count.entry(k.as_str()).or_default() += 1;
        if let Some((_, want)) = FIXED_VALUES.iter().find(|(n, _)| n == k) {
            if v != want {
                return Err(fail(format!("{k}={v:?} in {} {}", r.method, r.path)));
            }
        }
    }
    if let Some((k, _)) = count.iter().find(|(_, n)| **n > 1) {
        return Err(fail(format!(
            "parameter {k} sent twice: {} {}?{}",
            r.method,
            r.path,
            r.query.as_deref().unwrap_or("")
        )));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    // The model's selectors arrive whole, as values: never cut, never split into more
    // parameters.
    if tool == "list_resources" && get("limit").is_some() {
        for (arg, param) in [
            ("label_selector", "labelSelector"),
            ("field_selector", "fieldSelector"),
        ] {
            let want = str_arg(args, arg).filter(|s| !s.is_empty());
            if get(param) != want {
                return Err(fail(format!(
                    "{param} {:?}, the model asked for {want:?}",
                    get(param)
                )));
            }
        }
    }
    Ok(())
}

/// list_events builds its field selector from checked parts only: exactly these terms.
async fn expected_event_selector(fx: &Fx, args: &Value) -> String {
    let mut f = Vec::new();
    if let Some(k) = str_arg(args, "kind").filter(|k| !k.is_empty()) {
        f.push(format!(
            "involvedObject.kind={}",
            fx.oracle.resolve(k).await.unwrap().resource.kind
        ));
    }
    if let Some(n) = str_arg(args, "name").filter(|n| !n.is_empty()) {
        f.push(format!("involvedObject.name={n}"));
    }
    if let Some([t]) = args
        .get("types")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        f.push(format!("type={}", t.as_str().unwrap()));
    }
    f.join(",")
}

fn body_json(r: &Recorded) -> Value {
    let mut v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    // A dry-run delete says so in its DeleteOptions too.
    if let Value::Object(m) = &mut v {
        m.remove("dryRun");
    }
    v
}

#[derive(Debug, Default)]
struct Stats {
    cases: usize,
    accepted: usize,
    rejected: usize,
    dry_runs: usize,
    real_writes: usize,
}

async fn run_case(
    fx: &Fx,
    approver: &Arc<Rec>,
    tool: &str,
    args: Value,
    stats: &Mutex<Stats>,
) -> Result<(), TestCaseError> {
    let v = verdict(fx, tool, &args).await;
    if approver.approve {
        // Approved writes stay inside the test namespace: no cluster-scoped kinds.
        if let Some(k) = str_arg(&args, "kind") {
            if let Ok(kind) = fx.oracle.resolve(k).await {
                if !kind.namespaced() {
                    return Ok(());
                }
            }
        }
    }
    fx.proxy.take();
    approver.take();
    let ctx = fx.ctx(approver.clone());
    let result = tokio::time::timeout(Duration::from_secs(120), fx.call(&ctx, tool, &args))
        .await
        .map_err(|_| fail(format!("{tool} did not return within 120 s")))?;
    let rec = fx.proxy.take();
    let asked = approver.take();
    let errors = fx.proxy.errors();
    prop_assert!(errors.is_empty(), "the proxy could not read: {errors:?}");
    if approver.approve {
        fx.restore().await;
    }

    for r in &rec {
        check_request(r, tool, &args)?;
    }
    if tool == "list_events" && matches!(v, Verdict::Accept { .. }) {
        let want = expected_event_selector(fx, &args).await;
        for r in rec.iter().filter(|r| r.path.ends_with("/events")) {
            let got = r
                .params()
                .into_iter()
                .find(|(k, _)| k == "fieldSelector")
                .map(|(_, v)| v)
                .unwrap_or_default();
            prop_assert_eq!(&got, &want, "list_events field selector");
        }
    }
    if let Err(ToolError::Fatal(m)) = &result {
        return Err(fail(format!("{tool} ended the turn: {m}")));
    }
    let writes: Vec<(usize, &Recorded)> = rec
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_write())
        .collect();
    if !approver.approve {
        for (_, w) in &writes {
            prop_assert!(
                w.is_dry_run(),
                "a write that is not a dry run with a denying approver: {} {}?{}",
                w.method,
                w.path,
                w.query.as_deref().unwrap_or("")
            );
        }
    }
    let mut st = stats.lock().unwrap();
    st.cases += 1;
    st.dry_runs += writes.iter().filter(|(_, w)| w.is_dry_run()).count();
    st.real_writes += writes.iter().filter(|(_, w)| !w.is_dry_run()).count();
    match v {
        Verdict::Reject { problems } => {
            st.rejected += 1;
            drop(st);
            for r in &rec {
                prop_assert!(
                    is_discovery(r),
                    "rejected input ({problems:?}) but sent {} {}?{}",
                    r.method,
                    r.path,
                    r.query.as_deref().unwrap_or("")
                );
            }
            prop_assert!(
                asked.is_empty(),
                "the approver was asked about rejected input"
            );
            match &result {
                Err(ToolError::Model(m)) => {
                    prop_assert!(
                        problems.iter().any(|p| m.contains(p)),
                        "the error does not name the problem ({problems:?}): {m}"
                    );
                    prop_assert!(
                        !m.chars().any(char::is_control),
                        "raw control characters in the error: {m:?}"
                    );
                }
                other => {
                    return Err(fail(format!(
                        "rejected input ({problems:?}) gave {other:?}"
                    )))
                }
            }
        }
        Verdict::Accept {
            targets,
            objects,
            reads,
        } => {
            st.accepted += 1;
            drop(st);
            for (_, w) in &writes {
                prop_assert!(
                    targets.contains(&w.path),
                    "a write to {} {}, expected only {targets:?}",
                    w.method,
                    w.path
                );
            }
            // The raw path ends in the name itself (a valid name needs no escaping) and
            // its namespace segment is the namespace itself.
            for (_, w) in &writes {
                let seg = segments(&w.path);
                let n = seg.len();
                let fits = |(ns, name): &(Option<String>, String)| {
                    seg[n - 1] == name.as_str()
                        && ns.as_ref().is_none_or(|ns| {
                            n >= 4 && seg[n - 4] == "namespaces" && seg[n - 3] == ns.as_str()
                        })
                };
                prop_assert!(
                    objects.iter().any(fits),
                    "a write to {} {} is none of {objects:?}",
                    w.method,
                    w.path
                );
            }
            if let Some(reads) = reads {
                for r in rec.iter().filter(|r| !r.is_write() && !is_discovery(r)) {
                    prop_assert!(
                        reads.contains(&r.path),
                        "a read of {}, expected only {reads:?}",
                        r.path
                    );
                }
            }
            // An approved write is exactly the request whose dry run the user saw:
            // same method, path, parameters (but dryRun) and body.
            for (i, w) in writes.iter().filter(|(_, w)| !w.is_dry_run()) {
                // (A manifest may name one object twice: any earlier dry run of it.)
                let mut wp = w.params();
                wp.sort();
                let same = |d: &&Recorded| {
                    let mut dp: Vec<_> = d
                        .params()
                        .into_iter()
                        .filter(|(k, _)| k != "dryRun")
                        .collect();
                    dp.sort();
                    d.is_write()
                        && d.is_dry_run()
                        && d.method == w.method
                        && d.path == w.path
                        && dp == wp
                        && body_json(d) == body_json(w)
                };
                if !rec[..*i].iter().any(|d| same(&d)) {
                    return Err(fail(format!(
                        "{} {}?{} with body {} was sent without that exact dry run before it; dry runs: {:?}",
                        w.method,
                        w.path,
                        w.query.as_deref().unwrap_or(""),
                        body_json(w),
                        rec[..*i]
                            .iter()
                            .filter(|d| d.is_write())
                            .map(|d| format!("{} {}?{} {}", d.method, d.path, d.query.as_deref().unwrap_or(""), body_json(d)))
                            .collect::<Vec<_>>()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Run `cases` fuzzed calls of `tool` against a fresh namespace.
fn property(tool: &'static str, ns: &str, cases: u32, approving: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fx = rt.block_on(async {
        let mut fx = fixture(ns, approving).await;
        if matches!(
            tool,
            "get_logs" | "describe" | "get_resource" | "list_events"
        ) {
            fx.load_pods().await;
        }
        if tool == "rollout_undo" {
            fx.wait_revisions().await;
        }
        fx
    });
    let approver = Rec::new(approving);
    let stats = Mutex::new(Stats::default());
    // PROPTEST_CASES overrides the count for a longer local run.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let result = runner.run(&case_strat(tool, &fx.pools), |args| {
        rt.block_on(run_case(&fx, &approver, tool, args, &stats))
    });
    let st = stats.lock().unwrap();
    eprintln!(
        "{tool} (approving: {approving}): {st:?} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{tool}: {e}");
    }
    // The run exercised both sides (a quarter of the cases are valid by construction).
    assert!(st.accepted > 0 && st.rejected > 0, "{tool}: {st:?}");
    let writes_expected = MUTATING.contains(&tool);
    if writes_expected {
        assert!(st.dry_runs > 0, "{tool} never reached a dry run: {st:?}");
    } else {
        assert_eq!(st.dry_runs + st.real_writes, 0, "{tool} wrote: {st:?}");
    }
    drop(st);
    drop(fx);
    rt.shutdown_timeout(Duration::from_secs(5));
}

// ------------------------------------------------------------------ property 1: every tool, denied

/// Cases per tool with a denying approver. Rejected input costs no request, accepted
/// input a few; 13 tools × 40 calls run in well under a minute on 2 cores.
const CASES: u32 = 96;
/// Cases per mutating tool with an approving approver (real writes, fixture restores).
const APPROVED_CASES: u32 = 48;

/// One test per tool: `property(tool, namespace, cases, approving)`.
macro_rules! properties {
    ($cases:expr, $approving:expr; $($test:ident: $tool:literal, $ns:literal;)*) => {$(
        #[test]
        fn $test() {
            property($tool, $ns, $cases, $approving);
        }
    )*};
}

properties! {
    CASES, false;
    denied_list_resources: "list_resources", "hn-list-resources";
    denied_get_resource: "get_resource", "hn-get-resource";
    denied_describe: "describe", "hn-describe";
    denied_get_logs: "get_logs", "hn-get-logs";
    denied_list_events: "list_events", "hn-list-events";
    denied_analyze: "analyze", "hn-analyze";
    denied_apply_manifest: "apply_manifest", "hn-apply";
    denied_patch_resource: "patch_resource", "hn-patch";
    denied_scale: "scale", "hn-scale";
    denied_rollout_restart: "rollout_restart", "hn-restart";
    denied_rollout_undo: "rollout_undo", "hn-undo";
    denied_set_image: "set_image", "hn-set-image";
    denied_delete_resource: "delete_resource", "hn-delete";
}

// ------------------------------------------------------------------ property 2: approved writes

properties! {
    APPROVED_CASES, true;
    approved_apply_manifest: "apply_manifest", "hn-ok-apply";
    approved_patch_resource: "patch_resource", "hn-ok-patch";
    approved_scale: "scale", "hn-ok-scale";
    approved_rollout_restart: "rollout_restart", "hn-ok-restart";
    approved_rollout_undo: "rollout_undo", "hn-ok-undo";
    approved_set_image: "set_image", "hn-ok-set-image";
    approved_delete_resource: "delete_resource", "hn-ok-delete";
}

// ------------------------------------------------------------------ regression cases

/// The proxy itself: a kai cluster lists pods through it, and the request is recorded
/// as sent.
#[tokio::test]
async fn the_proxy_records_what_a_kai_cluster_sends() {
    let mut fx = fixture("hn-proxy", false).await;
    fx.load_pods().await;
    let pods: Api<Pod> = Api::namespaced(fx.cluster.client().clone(), &fx.ns);
    let listed = pods.list(&ListParams::default().limit(7)).await.unwrap();
    assert!(
        !listed.items.is_empty(),
        "web's pod is listed through the proxy"
    );
    let rec = fx.only_request();
    assert_eq!(rec.method, "GET");
    assert_eq!(rec.path, "/api/v1/namespaces/hn-proxy/pods");
    assert_eq!(rec.params(), vec![("limit".to_string(), "7".to_string())]);
    assert!(!rec.is_write());
    assert!(fx.proxy.take().is_empty(), "take() forgets");

    // The proxy's kubeconfig is enough for kai's own connect (no credentials in it).
    let via_kubeconfig = Cluster::connect(&ConnectOptions {
        kubeconfig: Some(fx.proxy.kubeconfig().to_path_buf()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(via_kubeconfig.default_namespace, "hn-proxy");
    assert_eq!(via_kubeconfig.context, "proxied");
    let out = fx
        .call(
            &{
                let mut ctx = fx.ctx(Rec::new(false));
                ctx.env.cluster = Some(Arc::new(via_kubeconfig));
                ctx
            },
            "get_resource",
            &json!({"kind": "cm", "name": "settings"}),
        )
        .await
        .unwrap();
    assert!(out.contains("mode: safe"), "{out}");
    let rec = fx.only_request();
    assert_eq!(rec.path, "/api/v1/namespaces/hn-proxy/configmaps/settings");
    assert!(fx.proxy.errors().is_empty());
}

/// The proxy keeps what arrived: a raw request with `#` in its target reaches it (and
/// would reach the apiserver) without the fragment, so a write whose `dryRun=All` came
/// after a `#` is recorded as the real write it would be; an unreadable request line is
/// reported, not lost.
#[tokio::test]
async fn the_proxy_records_raw_requests_as_received() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fx = fixture("hn-proxy-raw", false).await;
    let addr = fx.proxy.url().trim_start_matches("http://").to_string();
    let send = |raw: String| {
        let addr = addr.clone();
        async move {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.write_all(raw.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    // A GET, so nothing changes whatever the server does with it.
    let answer = send(
        "GET /api/v1/namespaces/hn-proxy-raw/configmaps/settings#x?dryRun=All HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let rec = fx.only_request();
    assert_eq!(
        rec.path,
        "/api/v1/namespaces/hn-proxy-raw/configmaps/settings"
    );
    assert_eq!(rec.query, None, "the query after '#' never arrives");
    let as_patch = Recorded {
        method: "PATCH".into(),
        ..rec
    };
    assert!(as_patch.is_write() && !as_patch.is_dry_run());

    let answer = send("GET /a b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".into()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(fx.proxy.take().is_empty());
    assert_eq!(fx.proxy.errors().len(), 1, "{:?}", fx.proxy.errors());
}

async fn deployment_rv(fx: &Fx) -> String {
    let d: Api<Deployment> = Api::namespaced(fx.admin.clone(), &fx.ns);
    d.get("web")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
}

/// The Deployment once its controllers stopped writing to it, so "unchanged" is about
/// kai alone.
async fn settled_rv(fx: &Fx) -> String {
    let mut last = deployment_rv(fx).await;
    let mut stable = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = deployment_rv(fx).await;
        if now == last {
            stable += 1;
            if stable == 3 {
                break;
            }
        } else {
            stable = 0;
        }
        last = now;
    }
    last
}

/// The original bug: `web#x` became `.../deployments/web`, the `dryRun=All` after the
/// `#` was dropped, and the "dry run" scaled the real Deployment.
#[tokio::test]
async fn scale_of_a_name_with_a_hash_changes_nothing() {
    let fx = fixture("hn-reg-scale", false).await;
    let before = settled_rv(&fx).await;
    let approver = Rec::new(true);
    let msg = fx
        .refused(
            approver.clone(),
            "scale",
            &json!({"kind": "deploy", "name": "web#x", "replicas": 5}),
        )
        .await;
    assert!(msg.contains("invalid object name"), "{msg}");
    assert!(msg.contains("'#' is not allowed"), "{msg}");
    assert!(msg.contains("nothing was sent to the cluster"), "{msg}");
    let rec = fx.proxy.take();
    assert!(rec.iter().all(|r| !r.is_write()), "{rec:?}");
    assert!(
        rec.is_empty(),
        "the name is checked before any request: {rec:?}"
    );
    assert!(approver.take().is_empty(), "nothing to approve");
    assert_eq!(
        deployment_rv(&fx).await,
        before,
        "the Deployment is untouched"
    );
    let d: Api<Deployment> = Api::namespaced(fx.admin.clone(), &fx.ns);
    assert_eq!(d.get("web").await.unwrap().spec.unwrap().replicas, Some(1));
}

/// The other half of the bug: a namespace `<ns>#` cut the path to
/// `/api/v1/namespaces/<ns>`, so a "dry run" patch landed on the Namespace object.
#[tokio::test]
async fn patch_with_a_hash_in_the_namespace_sends_no_write() {
    let fx = fixture("hn-reg-patch", false).await;
    let nss: Api<Namespace> = Api::all(fx.admin.clone());
    let before = nss.get(&fx.ns).await.unwrap();
    let approver = Rec::new(true);
    let msg = fx
        .refused(
            approver.clone(),
            "patch_resource",
            &json!({"kind": "ConfigMap", "name": "settings", "namespace": format!("{}#", fx.ns),
                "patch": {"metadata": {"labels": {"owned": "yes"}}}}),
        )
        .await;
    assert!(msg.contains("invalid namespace"), "{msg}");
    let rec = fx.proxy.take();
    assert!(rec.iter().all(|r| !r.is_write()), "{rec:?}");
    assert!(approver.take().is_empty());
    let after = nss.get(&fx.ns).await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert!(!after
        .metadata
        .labels
        .unwrap_or_default()
        .contains_key("owned"));
}

/// A pod name carrying its own query (`follow=true` would hold the call open; a tiny
/// `limitBytes` would hide the log) is refused before any request.
#[tokio::test]
async fn get_logs_with_query_in_the_pod_name_is_refused_before_any_request() {
    let fx = fixture("hn-reg-logs", false).await;
    let msg = fx
        .refused(
            Rec::new(false),
            "get_logs",
            &json!({"pod": "x?follow=true&limitBytes=1"}),
        )
        .await;
    assert!(msg.contains("invalid object name"), "{msg}");
    assert!(msg.contains("'?' is not allowed"), "{msg}");
    assert!(fx.proxy.take().is_empty(), "no request at all");
}

/// The write gate, below every name check: a hand-built request on a kai cluster's own
/// client that would change the cluster without an approval never leaves the process,
/// whatever its URL says; a real dry run passes.
#[tokio::test]
async fn the_write_gate_refuses_unapproved_writes_on_the_wire() {
    let fx = fixture("hn-reg-gate", false).await;
    let before = settled_rv(&fx).await;
    let path = format!("/apis/apps/v1/namespaces/{}/deployments/web", fx.ns);
    let patch = |uri: String| {
        http::Request::builder()
            .method(http::Method::PATCH)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
            .body(br#"{"spec":{"replicas":4}}"#.to_vec())
            .unwrap()
    };
    fx.proxy.take();
    for uri in [
        format!("{path}?fieldManager=kai"),
        // The old bug's shape: the dry run after a fragment is gone on the wire.
        format!("{path}#x?fieldManager=kai&dryRun=All"),
        format!("{path}?dryRun=All&dryRun="),
        format!("{path}?dryRun=None"),
    ] {
        let r = fx
            .cluster
            .client()
            .request::<Value>(patch(uri.clone()))
            .await;
        let e = r.expect_err(&uri).to_string();
        assert!(
            e.contains("refused to send an unapproved write"),
            "{uri}: {e}"
        );
    }
    assert!(fx.proxy.take().is_empty(), "nothing reached the wire");
    assert_eq!(fx.cluster.refused_writes().len(), 4);
    // A dry run is let through (and changes nothing).
    let dry: Value = fx
        .cluster
        .client()
        .request(patch(format!("{path}?fieldManager=kai&dryRun=All")))
        .await
        .unwrap();
    assert_eq!(
        dry["spec"]["replicas"], 4,
        "the server computed the dry run"
    );
    let rec = fx.only_request();
    assert!(rec.is_write() && rec.is_dry_run());
    assert_eq!(deployment_rv(&fx).await, before, "nothing changed");
}

/// Found by the fuzzing above: `apiVersion: /v1` splits into the core group and `v1`,
/// both valid, but kube builds read paths from the apiVersion as given, so kai read
/// `/api//v1/...` (a 404 there makes an existing object look new in the diff).
#[tokio::test]
async fn apply_manifest_with_an_empty_group_api_version_is_refused() {
    let fx = fixture("hn-reg-apiversion", false).await;
    let yaml =
        "apiVersion: /v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n";
    let msg = fx
        .refused(Rec::new(true), "apply_manifest", &json!({ "yaml": yaml }))
        .await;
    assert!(msg.contains("invalid API version \"/v1\""), "{msg}");
    assert!(fx.proxy.take().is_empty(), "no request at all");
    let cms: Api<ConfigMap> = Api::namespaced(fx.admin.clone(), &fx.ns);
    let data = cms.get("settings").await.unwrap().data.unwrap();
    assert_eq!(data["mode"], "safe");
}
