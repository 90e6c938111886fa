//! The lint rules: stable ids (never renamed; scripts and `kai.dev/ignore` annotations
//! name them), a severity each, documented in docs/lint-rules.md (a test checks every id
//! is there). Error-level rules are the ones that make `kai lint` exit non-zero and that
//! `kai generate` sends back to the model: each is a manifest that will not work as
//! written. Warnings are risky practice; infos are advice.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::parse::Doc;
use crate::path::Path;
use crate::{Finding, Options, Severity};

pub const YAML_PARSE: &str = "yaml-parse";
pub const SCHEMA_UNKNOWN_FIELD: &str = "schema-unknown-field";
pub const SCHEMA_INVALID: &str = "schema-invalid";
pub const SCHEMA_UNKNOWN_KIND: &str = "schema-unknown-kind";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

const fn rule(id: &'static str, severity: Severity, summary: &'static str) -> RuleInfo {
    RuleInfo {
        id,
        severity,
        summary,
    }
}

use Severity::{Error as E, Info as I, Warning as W};

/// Every rule, in the order `kai lint --list-rules` and the docs page show them.
pub const RULES: &[RuleInfo] = &[
    rule(YAML_PARSE, E, "the file is not valid YAML"),
    rule(
        SCHEMA_UNKNOWN_FIELD,
        E,
        "a field the kind does not have (misspelt or misplaced)",
    ),
    rule(
        SCHEMA_INVALID,
        E,
        "a wrong type, a missing required field, or no name",
    ),
    rule(
        SCHEMA_UNKNOWN_KIND,
        I,
        "a kind with no built-in schema (only its metadata was checked)",
    ),
    rule(
        "missing-requests",
        W,
        "a container without CPU and memory requests",
    ),
    rule("missing-limits", W, "a container without a memory limit"),
    rule(
        "requests-exceed-limits",
        E,
        "a request larger than its limit",
    ),
    rule(
        "missing-readiness-probe",
        W,
        "a long-running container without a readiness probe",
    ),
    rule(
        "missing-liveness-probe",
        I,
        "a long-running container without a liveness probe",
    ),
    rule(
        "probe-port-not-exposed",
        E,
        "a probe on a port the container does not declare",
    ),
    rule("image-latest", W, "an image tagged `latest`"),
    rule("image-untagged", W, "an image without a tag or digest"),
    rule(
        "run-as-root",
        W,
        "a container not required to run as non-root",
    ),
    rule(
        "privilege-escalation",
        W,
        "allowPrivilegeEscalation not set to false",
    ),
    rule("privileged", E, "a privileged container"),
    rule(
        "capabilities-added",
        W,
        "Linux capabilities added to a container",
    ),
    rule(
        "writable-root-fs",
        I,
        "a container whose root filesystem is writable",
    ),
    rule("host-network", W, "a pod on the node's network"),
    rule("host-pid", E, "a pod sharing the node's process namespace"),
    rule("host-ipc", E, "a pod sharing the node's IPC namespace"),
    rule("host-path", W, "a hostPath volume"),
    rule(
        "duplicate-env",
        E,
        "an environment variable set twice in one container",
    ),
    rule(
        "env-secret-literal",
        W,
        "a password or token written as a literal env value",
    ),
    rule(
        "duplicate-container-name",
        E,
        "two containers of a pod with the same name",
    ),
    rule(
        "selector-template-mismatch",
        E,
        "a workload selector that does not match its own pod template",
    ),
    rule(
        "missing-app-label",
        I,
        "a pod template without an app label",
    ),
    rule(
        "single-replica",
        I,
        "a Deployment or StatefulSet with one replica",
    ),
    rule(
        "service-selector-no-match",
        W,
        "a Service whose selector matches no pod template",
    ),
    rule(
        "service-target-port",
        E,
        "a Service targetPort that no selected container declares",
    ),
    rule("service-nodeport", I, "a NodePort Service"),
    rule(
        "ingress-backend-missing",
        W,
        "an Ingress backend Service not in the bundle or the cluster",
    ),
    rule(
        "ingress-backend-port",
        E,
        "an Ingress backend port the Service does not have",
    ),
    rule(
        "pdb-blocks-eviction",
        W,
        "a PodDisruptionBudget that allows no disruption of its pods",
    ),
    rule(
        "hpa-target-no-requests",
        E,
        "an HPA on CPU or memory for containers without that request",
    ),
    rule(
        "namespace-mismatch",
        E,
        "metadata.namespace contradicts the namespace asked for (-n)",
    ),
    rule(
        "deprecated-api",
        E,
        "an API version removed from Kubernetes",
    ),
    rule("duplicate-object", E, "the same object twice in the bundle"),
    rule(
        "cronjob-schedule",
        E,
        "a CronJob schedule that is not a valid cron expression",
    ),
];

pub fn severity_of(id: &str) -> Severity {
    RULES
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.severity)
        .unwrap_or(Severity::Error)
}

pub fn info(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id == id)
}

/// The replacement of a removed API version, when `api`/`kind` is one.
pub fn deprecated_replacement(api: &str, kind: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str, &str)] = &[
        ("extensions/v1beta1", "Deployment", "apps/v1"),
        ("extensions/v1beta1", "DaemonSet", "apps/v1"),
        ("extensions/v1beta1", "ReplicaSet", "apps/v1"),
        ("extensions/v1beta1", "Ingress", "networking.k8s.io/v1"),
        (
            "extensions/v1beta1",
            "NetworkPolicy",
            "networking.k8s.io/v1",
        ),
        ("apps/v1beta1", "*", "apps/v1"),
        ("apps/v1beta2", "*", "apps/v1"),
        ("networking.k8s.io/v1beta1", "*", "networking.k8s.io/v1"),
        ("batch/v1beta1", "CronJob", "batch/v1"),
        ("policy/v1beta1", "PodDisruptionBudget", "policy/v1"),
        ("autoscaling/v2beta1", "*", "autoscaling/v2"),
        ("autoscaling/v2beta2", "*", "autoscaling/v2"),
        (
            "rbac.authorization.k8s.io/v1beta1",
            "*",
            "rbac.authorization.k8s.io/v1",
        ),
        (
            "storage.k8s.io/v1beta1",
            "StorageClass",
            "storage.k8s.io/v1",
        ),
    ];
    TABLE
        .iter()
        .find(|(a, k, _)| *a == api && (*k == "*" || *k == kind))
        .map(|(_, _, r)| *r)
}

// ------------------------------------------------------------------ helpers

fn get<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k))
}

fn get_str<'a>(v: &'a Value, dotted: &str) -> Option<&'a str> {
    get(v, dotted).and_then(Value::as_str)
}

fn labels_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn subset(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A pod template in the bundle (or a bare Pod).
struct Template<'a> {
    doc: &'a Doc,
    spec: &'a Value,
    /// Where the pod spec is in the object.
    at: Path,
    labels: BTreeMap<String, String>,
    namespace: String,
    long_running: bool,
}

impl Template<'_> {
    fn containers(&self) -> impl Iterator<Item = (Path, &Value)> {
        self.spec
            .get("containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, c)| (self.at.key("containers").index(i), c))
    }

    /// Regular and init containers, for the security rules.
    fn all_containers(&self) -> impl Iterator<Item = (Path, &Value)> {
        self.containers().chain(
            self.spec
                .get("initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, c)| (self.at.key("initContainers").index(i), c)),
        )
    }

    /// (name, number) of every declared container port.
    fn ports(&self) -> Vec<(Option<String>, i64)> {
        self.containers()
            .flat_map(|(_, c)| container_ports(c))
            .collect()
    }
}

fn container_ports(c: &Value) -> Vec<(Option<String>, i64)> {
    c.get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let n = p.get("containerPort").and_then(Value::as_i64)?;
            Some((p.get("name").and_then(Value::as_str).map(String::from), n))
        })
        .collect()
}

fn namespace_of(doc: &Doc, opts: &Options) -> String {
    doc.namespace()
        .or(opts.namespace.as_deref())
        .unwrap_or("default")
        .to_string()
}

fn template_of<'a>(doc: &'a Doc, opts: &Options) -> Option<Template<'a>> {
    let (spec_at, labels_at, long_running) = match doc.kind() {
        "Pod" => ("spec", "metadata.labels", true),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            ("spec.template.spec", "spec.template.metadata.labels", true)
        }
        "Job" => ("spec.template.spec", "spec.template.metadata.labels", false),
        "CronJob" => (
            "spec.jobTemplate.spec.template.spec",
            "spec.jobTemplate.spec.template.metadata.labels",
            false,
        ),
        _ => return None,
    };
    let spec = get(&doc.value, spec_at).filter(|s| s.is_object())?;
    Some(Template {
        doc,
        spec,
        at: Path::parse(spec_at),
        labels: labels_of(get(&doc.value, labels_at)),
        namespace: namespace_of(doc, opts),
        long_running,
    })
}

struct Ctx<'a> {
    out: Vec<Finding>,
    opts: &'a Options,
}

impl Ctx<'_> {
    fn emit(&mut self, doc: &Doc, rule: &'static str, path: &Path, message: String) {
        self.out.push(Finding {
            rule,
            severity: severity_of(rule),
            file: doc.file.clone(),
            line: doc.line_of(path),
            object: doc.label(),
            path: path.to_string(),
            message,
        });
    }
}

/// Run every lint rule over the bundle.
pub fn run(docs: &[Doc], opts: &Options) -> Vec<Finding> {
    let mut cx = Ctx {
        out: Vec::new(),
        opts,
    };
    let templates: Vec<Template> = docs.iter().filter_map(|d| template_of(d, opts)).collect();
    for t in &templates {
        containers(&mut cx, t);
        pod(&mut cx, t);
    }
    for doc in docs {
        object(&mut cx, doc, docs);
        match doc.kind() {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                workload(&mut cx, doc)
            }
            "Service" => service(&mut cx, doc, &templates),
            "Ingress" => ingress(&mut cx, doc, docs),
            "PodDisruptionBudget" => pdb(&mut cx, doc, docs, &templates),
            "HorizontalPodAutoscaler" => hpa(&mut cx, doc, &templates),
            "CronJob" => cronjob(&mut cx, doc),
            _ => {}
        }
    }
    cx.out
}

// ------------------------------------------------------------------ containers

fn image_rules(cx: &mut Ctx, doc: &Doc, at: &Path, c: &Value) {
    let Some(image) = c.get("image").and_then(Value::as_str) else {
        return;
    };
    let at = at.key("image");
    if image.contains('@') {
        return;
    }
    // The tag is after the last `:` of the last path component (a registry port is not
    // a tag: `registry:5000/app`).
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) => cx.emit(
            doc,
            "image-latest",
            &at,
            format!("image `{image}` uses the `latest` tag: what runs changes under you and rollbacks do not roll back; pin a version"),
        ),
        Some(_) => {}
        None => cx.emit(
            doc,
            "image-untagged",
            &at,
            format!("image `{image}` has no tag, which means `latest`; pin a version (or a digest)"),
        ),
    }
}

fn containers(cx: &mut Ctx, t: &Template) {
    let doc = t.doc;
    let pod_sc = t.spec.get("securityContext");
    let mut names = BTreeSet::new();
    for (at, c) in t.all_containers() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
        if !names.insert(name.to_string()) {
            cx.emit(
                doc,
                "duplicate-container-name",
                &at.key("name"),
                format!("container name `{name}` is used twice in this pod"),
            );
        }
        image_rules(cx, doc, &at, c);
        let sc = c.get("securityContext");
        let flag = |key: &str| {
            sc.and_then(|s| s.get(key))
                .and_then(Value::as_bool)
                .or_else(|| pod_sc.and_then(|s| s.get(key)).and_then(Value::as_bool))
        };
        if sc
            .and_then(|s| s.get("privileged"))
            .and_then(Value::as_bool)
            == Some(true)
        {
            cx.emit(
                doc,
                "privileged",
                &at.keys("securityContext.privileged"),
                format!(
                    "container `{name}` is privileged: it has every capability of the node's root"
                ),
            );
        }
        if sc
            .and_then(|s| s.get("allowPrivilegeEscalation"))
            .and_then(Value::as_bool)
            != Some(false)
        {
            cx.emit(
                doc,
                "privilege-escalation",
                &at.key("securityContext"),
                format!("container `{name}` does not set allowPrivilegeEscalation: false"),
            );
        }
        let run_as_user = sc
            .and_then(|s| s.get("runAsUser"))
            .or_else(|| pod_sc.and_then(|s| s.get("runAsUser")))
            .and_then(Value::as_i64);
        if flag("runAsNonRoot") != Some(true) && run_as_user.is_none_or(|u| u <= 0) {
            cx.emit(doc, "run-as-root", &at.key("securityContext"), format!("container `{name}` may run as root: set runAsNonRoot: true (pod or container securityContext)"));
        }
        if sc
            .and_then(|s| s.get("readOnlyRootFilesystem"))
            .and_then(Value::as_bool)
            != Some(true)
        {
            cx.emit(doc, "writable-root-fs", &at.key("securityContext"), format!("container `{name}` has a writable root filesystem; set readOnlyRootFilesystem: true and mount emptyDir where it writes"));
        }
        if let Some(add) = sc
            .and_then(|s| get(s, "capabilities.add"))
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
        {
            let caps: Vec<&str> = add.iter().filter_map(Value::as_str).collect();
            cx.emit(
                doc,
                "capabilities-added",
                &at.keys("securityContext.capabilities.add"),
                format!("container `{name}` adds capabilities {}", caps.join(", ")),
            );
        }
        env_rules(cx, doc, &at, name, c);
    }
    for (at, c) in t.containers() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
        resource_rules(cx, doc, &at, name, c);
        if t.long_running {
            if c.get("readinessProbe").is_none() {
                cx.emit(doc, "missing-readiness-probe", &at, format!("container `{name}` has no readinessProbe: it gets traffic before it can serve"));
            }
            if c.get("livenessProbe").is_none() {
                cx.emit(doc, "missing-liveness-probe", &at, format!("container `{name}` has no livenessProbe: a hung process is never restarted"));
            }
        }
        probe_ports(cx, doc, &at, name, c);
    }
}

fn env_rules(cx: &mut Ctx, doc: &Doc, at: &Path, name: &str, c: &Value) {
    let mut seen = BTreeSet::new();
    for (i, e) in c
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(var) = e.get("name").and_then(Value::as_str) else {
            continue;
        };
        let p = at.key("env").index(i);
        if !seen.insert(var) {
            cx.emit(
                doc,
                "duplicate-env",
                &p.key("name"),
                format!(
                    "env `{var}` is set twice in container `{name}`; only the last value counts"
                ),
            );
        }
        let upper = var.to_ascii_uppercase();
        let secretish = [
            "PASSWORD",
            "PASSWD",
            "SECRET",
            "TOKEN",
            "API_KEY",
            "APIKEY",
            "PRIVATE_KEY",
        ]
        .iter()
        .any(|w| upper.contains(w));
        if secretish
            && e.get("value")
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        {
            cx.emit(doc, "env-secret-literal", &p.key("value"), format!("env `{var}` holds a literal value; read it from a Secret (valueFrom.secretKeyRef)"));
        }
    }
}

fn resource_rules(cx: &mut Ctx, doc: &Doc, at: &Path, name: &str, c: &Value) {
    let res = c.get("resources");
    let requests = res.and_then(|r| r.get("requests"));
    let limits = res.and_then(|r| r.get("limits"));
    let missing: Vec<&str> = ["cpu", "memory"]
        .into_iter()
        .filter(|k| {
            requests.and_then(|r| r.get(*k)).is_none() && limits.and_then(|l| l.get(*k)).is_none()
        })
        .collect();
    if !missing.is_empty() {
        cx.emit(doc, "missing-requests", &at.key("resources"), format!("container `{name}` has no {} request: the scheduler cannot place it well and it is first to be evicted", missing.join(" or ")));
    }
    if limits.and_then(|l| l.get("memory")).is_none() {
        cx.emit(
            doc,
            "missing-limits",
            &at.key("resources"),
            format!("container `{name}` has no memory limit: a leak can take the node's memory"),
        );
    }
    for k in ["cpu", "memory"] {
        let r = requests
            .and_then(|r| r.get(k))
            .and_then(crate::quantity::parse);
        let l = limits
            .and_then(|l| l.get(k))
            .and_then(crate::quantity::parse);
        if let (Some(r), Some(l)) = (r, l) {
            if r > l {
                cx.emit(doc, "requests-exceed-limits", &at.keys(&format!("resources.requests.{k}")), format!("container `{name}` requests more {k} than its limit; the API server rejects this"));
            }
        }
    }
}

fn probe_ports(cx: &mut Ctx, doc: &Doc, at: &Path, name: &str, c: &Value) {
    let ports = container_ports(c);
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        for handler in ["httpGet", "tcpSocket", "grpc"] {
            let Some(port) = c
                .get(probe)
                .and_then(|p| p.get(handler))
                .and_then(|h| h.get("port"))
            else {
                continue;
            };
            let p = at.key(probe).key(handler).key("port");
            match port {
                Value::String(s) if s.parse::<i64>().is_err() => {
                    let known = ports.iter().any(|(n, _)| n.as_deref() == Some(s.as_str()));
                    if !known {
                        cx.emit(doc, "probe-port-not-exposed", &p, format!("the {probe} of `{name}` uses port name `{s}`, which the container does not declare"));
                    }
                }
                other => {
                    let n = other
                        .as_i64()
                        .or_else(|| other.as_str().and_then(|s| s.parse().ok()));
                    if let Some(n) = n {
                        if !ports.is_empty() && !ports.iter().any(|(_, p)| *p == n) {
                            let declared: Vec<String> =
                                ports.iter().map(|(_, p)| p.to_string()).collect();
                            cx.emit(doc, "probe-port-not-exposed", &p, format!("the {probe} of `{name}` checks port {n}, but the container declares {}", declared.join(", ")));
                        }
                    }
                }
            }
        }
    }
}

fn pod(cx: &mut Ctx, t: &Template) {
    let doc = t.doc;
    for (key, rule, why) in [
        (
            "hostNetwork",
            "host-network",
            "it sees and binds the node's network interfaces",
        ),
        ("hostPID", "host-pid", "it sees every process on the node"),
        ("hostIPC", "host-ipc", "it shares the node's IPC namespace"),
    ] {
        if t.spec.get(key).and_then(Value::as_bool) == Some(true) {
            cx.emit(doc, rule, &t.at.key(key), format!("{key}: true: {why}"));
        }
    }
    for (i, v) in t
        .spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(hp) = v.get("hostPath") {
            let path = hp.get("path").and_then(Value::as_str).unwrap_or("?");
            cx.emit(
                doc,
                "host-path",
                &t.at.key("volumes").index(i).key("hostPath"),
                format!("volume mounts the node's `{path}`"),
            );
        }
    }
    if t.long_running
        && !t.labels.contains_key("app")
        && !t.labels.contains_key("app.kubernetes.io/name")
    {
        cx.emit(
            doc,
            "missing-app-label",
            &t.at,
            "the pod template has neither an `app` nor an `app.kubernetes.io/name` label".into(),
        );
    }
}

// ------------------------------------------------------------------ objects

fn object(cx: &mut Ctx, doc: &Doc, docs: &[Doc]) {
    if let (Some(want), Some(ns)) = (cx.opts.namespace.as_deref(), doc.namespace()) {
        if ns != want {
            cx.emit(
                doc,
                "namespace-mismatch",
                &Path::parse("metadata.namespace"),
                format!("metadata.namespace is `{ns}` but the namespace asked for is `{want}`"),
            );
        }
    }
    if let Some(repl) = deprecated_replacement(doc.api_version(), doc.kind()) {
        cx.emit(
            doc,
            "deprecated-api",
            &Path::parse("apiVersion"),
            format!(
                "{} {} was removed from Kubernetes; use apiVersion {repl}",
                doc.api_version(),
                doc.kind()
            ),
        );
    }
    let group = |d: &Doc| {
        d.api_version()
            .rsplit_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default()
    };
    let key = |d: &Doc| {
        (
            group(d),
            d.kind().to_string(),
            namespace_of(d, cx.opts),
            d.name().to_string(),
        )
    };
    let me = key(doc);
    if !doc.name().is_empty() {
        if let Some(first) = docs.iter().find(|d| key(d) == me) {
            if !std::ptr::eq(first, doc) {
                cx.emit(
                    doc,
                    "duplicate-object",
                    &Path::parse("metadata.name"),
                    format!(
                        "{} appears twice ({}:{} too); the second silently replaces the first",
                        doc.label(),
                        first.file,
                        first.first_line
                    ),
                );
            }
        }
    }
}

fn workload(cx: &mut Ctx, doc: &Doc) {
    let spec = &doc.value.get("spec");
    if let Some(ml) = spec.and_then(|s| get(s, "selector.matchLabels")) {
        let sel = labels_of(Some(ml));
        let labels = labels_of(get(&doc.value, "spec.template.metadata.labels"));
        if !sel.is_empty() && !subset(&sel, &labels) {
            cx.emit(doc, "selector-template-mismatch", &Path::parse("spec.selector.matchLabels"), "spec.selector.matchLabels does not match spec.template.metadata.labels; the API server rejects this".into());
        }
    }
    if matches!(doc.kind(), "Deployment" | "StatefulSet") {
        let replicas = spec.and_then(|s| s.get("replicas")).and_then(Value::as_i64);
        if replicas.unwrap_or(1) == 1 {
            let at = if replicas.is_some() {
                Path::parse("spec.replicas")
            } else {
                Path::parse("spec")
            };
            cx.emit(
                doc,
                "single-replica",
                &at,
                format!(
                    "{} runs one replica: any restart or node drain is downtime",
                    doc.label()
                ),
            );
        }
    }
}

/// (namespace, pod labels, declared container ports) of a pod template.
type Candidate = (String, BTreeMap<String, String>, Vec<(Option<String>, i64)>);

/// Pod templates visible to a bundle rule: the bundle's, then the cluster's.
fn candidates<'a>(templates: &'a [Template<'a>], opts: &'a Options) -> Vec<Candidate> {
    let mut out: Vec<_> = templates
        .iter()
        .filter(|t| t.long_running)
        .map(|t| (t.namespace.clone(), t.labels.clone(), t.ports()))
        .collect();
    if let Some(c) = &opts.cluster {
        out.extend(
            c.workloads
                .iter()
                .map(|w| (w.namespace.clone(), w.labels.clone(), w.ports.clone())),
        );
    }
    out
}

fn service(cx: &mut Ctx, doc: &Doc, templates: &[Template]) {
    let spec = doc.value.get("spec");
    if spec.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("NodePort") {
        cx.emit(doc, "service-nodeport", &Path::parse("spec.type"), "type NodePort opens a port on every node; prefer ClusterIP behind an Ingress or a LoadBalancer".into());
    }
    let selector = labels_of(spec.and_then(|s| s.get("selector")));
    if selector.is_empty() {
        return;
    }
    let ns = namespace_of(doc, cx.opts);
    let pool = candidates(templates, cx.opts);
    // Nothing to compare with: the pods are elsewhere (another file, the cluster).
    if pool.is_empty() {
        return;
    }
    let matched: Vec<_> = pool
        .iter()
        .filter(|(n, l, _)| *n == ns && subset(&selector, l))
        .collect();
    if matched.is_empty() {
        let sel: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        cx.emit(
            doc,
            "service-selector-no-match",
            &Path::parse("spec.selector"),
            format!(
                "selector {} matches no pod template here; the Service will have no endpoints",
                sel.join(",")
            ),
        );
        return;
    }
    let ports: Vec<&(Option<String>, i64)> = matched.iter().flat_map(|(_, _, p)| p).collect();
    for (i, p) in spec
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = Path::parse("spec.ports").index(i);
        let target = p.get("targetPort").or_else(|| p.get("port"));
        match target {
            Some(Value::String(name)) if name.parse::<i64>().is_err() => {
                let known = ports
                    .iter()
                    .any(|(n, _)| n.as_deref() == Some(name.as_str()));
                if !known {
                    cx.emit(
                        doc,
                        "service-target-port",
                        &at.key("targetPort"),
                        format!(
                            "targetPort `{name}` is not a port name of the selected containers"
                        ),
                    );
                }
            }
            Some(t) => {
                let n = t
                    .as_i64()
                    .or_else(|| t.as_str().and_then(|s| s.parse().ok()));
                if let Some(n) = n {
                    if !ports.is_empty() && !ports.iter().any(|(_, p)| *p == n) {
                        let declared: Vec<String> =
                            ports.iter().map(|(_, p)| p.to_string()).collect();
                        let key = if p.get("targetPort").is_some() {
                            "targetPort"
                        } else {
                            "port"
                        };
                        cx.emit(
                            doc,
                            "service-target-port",
                            &at.key(key),
                            format!(
                                "traffic goes to port {n}, but the selected containers declare {}",
                                declared.join(", ")
                            ),
                        );
                    }
                }
            }
            None => {}
        }
    }
}

fn ingress(cx: &mut Ctx, doc: &Doc, docs: &[Doc]) {
    let ns = namespace_of(doc, cx.opts);
    let mut backends: Vec<(Path, &Value)> = Vec::new();
    if let Some(b) = get(&doc.value, "spec.defaultBackend.service") {
        backends.push((Path::parse("spec.defaultBackend.service"), b));
    }
    for (i, r) in get(&doc.value, "spec.rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, p) in get(r, "http.paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(b) = get(p, "backend.service") {
                backends.push((
                    Path::parse("spec.rules")
                        .index(i)
                        .keys("http.paths")
                        .index(j)
                        .keys("backend.service"),
                    b,
                ));
            }
        }
    }
    for (at, b) in backends {
        let Some(name) = b.get("name").and_then(Value::as_str) else {
            continue;
        };
        let port = b.get("port");
        let in_bundle = docs
            .iter()
            .find(|d| d.kind() == "Service" && d.name() == name && namespace_of(d, cx.opts) == ns);
        let svc_ports: Option<Vec<(Option<String>, i64)>> = match in_bundle {
            Some(d) => Some(
                get(&d.value, "spec.ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        Some((
                            p.get("name").and_then(Value::as_str).map(String::from),
                            p.get("port").and_then(Value::as_i64)?,
                        ))
                    })
                    .collect(),
            ),
            None => cx.opts.cluster.as_ref().and_then(|c| {
                c.services
                    .iter()
                    .find(|s| s.name == name && s.namespace == ns)
                    .map(|s| s.ports.clone())
            }),
        };
        let Some(svc_ports) = svc_ports else {
            let where_ = if cx.opts.cluster.is_some() {
                "in these manifests or in the cluster"
            } else {
                "in these manifests"
            };
            cx.emit(
                doc,
                "ingress-backend-missing",
                &at.key("name"),
                format!("backend Service `{name}` is not {where_}"),
            );
            continue;
        };
        let ok = match port.and_then(|p| p.get("number")).and_then(Value::as_i64) {
            Some(n) => svc_ports.iter().any(|(_, p)| *p == n),
            None => match port.and_then(|p| p.get("name")).and_then(Value::as_str) {
                Some(pn) => svc_ports.iter().any(|(n, _)| n.as_deref() == Some(pn)),
                None => true,
            },
        };
        if !ok {
            let have: Vec<String> = svc_ports
                .iter()
                .map(|(n, p)| match n {
                    Some(n) => format!("{p} ({n})"),
                    None => p.to_string(),
                })
                .collect();
            cx.emit(
                doc,
                "ingress-backend-port",
                &at.key("port"),
                format!(
                    "Service `{name}` has no such port; it has {}",
                    have.join(", ")
                ),
            );
        }
    }
}

fn pdb(cx: &mut Ctx, doc: &Doc, docs: &[Doc], templates: &[Template]) {
    let selector = labels_of(get(&doc.value, "spec.selector.matchLabels"));
    if selector.is_empty() {
        return;
    }
    let ns = namespace_of(doc, cx.opts);
    let min = get(&doc.value, "spec.minAvailable");
    let max_unavail = get(&doc.value, "spec.maxUnavailable");
    for t in templates
        .iter()
        .filter(|t| t.namespace == ns && subset(&selector, &t.labels))
    {
        if !matches!(t.doc.kind(), "Deployment" | "StatefulSet") {
            continue;
        }
        let replicas = get(&t.doc.value, "spec.replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let blocks = match (min, max_unavail) {
            (Some(Value::Number(n)), _) => n.as_i64().is_some_and(|m| m >= replicas),
            (Some(Value::String(s)), _) => s == "100%",
            (None, Some(Value::Number(n))) => n.as_i64() == Some(0),
            (None, Some(Value::String(s))) => s == "0%",
            _ => false,
        };
        if blocks {
            let at = if min.is_some() {
                "spec.minAvailable"
            } else {
                "spec.maxUnavailable"
            };
            cx.emit(doc, "pdb-blocks-eviction", &Path::parse(at), format!("{} has {replicas} replica(s) and this budget allows none to be disrupted: node drains will hang", t.doc.label()));
        }
    }
    let _ = docs;
}

fn hpa(cx: &mut Ctx, doc: &Doc, templates: &[Template]) {
    let Some(kind) = get_str(&doc.value, "spec.scaleTargetRef.kind") else {
        return;
    };
    let Some(name) = get_str(&doc.value, "spec.scaleTargetRef.name") else {
        return;
    };
    let ns = namespace_of(doc, cx.opts);
    let Some(t) = templates
        .iter()
        .find(|t| t.doc.kind() == kind && t.doc.name() == name && t.namespace == ns)
    else {
        return;
    };
    for (i, m) in get(&doc.value, "spec.metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(res) = get_str(m, "resource.name") else {
            continue;
        };
        if get_str(m, "resource.target.type") != Some("Utilization") {
            continue;
        }
        for (at, c) in t.containers() {
            let has = get(c, "resources.requests")
                .and_then(|r| r.get(res))
                .is_some()
                || get(c, "resources.limits")
                    .and_then(|r| r.get(res))
                    .is_some();
            if !has {
                let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
                cx.emit(doc, "hpa-target-no-requests", &Path::parse("spec.metrics").index(i).keys("resource.name"), format!("scales {kind}/{name} on {res} utilization, but container `{cname}` has no {res} request ({}); the HPA cannot compute it", at));
            }
        }
    }
}

fn valid_cron_field(f: &str) -> bool {
    !f.is_empty()
        && f.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '/' | ',' | '-' | '?'))
}

fn cronjob(cx: &mut Ctx, doc: &Doc) {
    let Some(s) = get_str(&doc.value, "spec.schedule") else {
        return;
    };
    let s = s.trim();
    let ok = if let Some(m) = s.strip_prefix('@') {
        matches!(
            m,
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly"
        ) || m.starts_with("every ")
    } else {
        let f: Vec<&str> = s.split_whitespace().collect();
        f.len() == 5 && f.iter().all(|x| valid_cron_field(x))
    };
    if !ok {
        cx.emit(doc, "cronjob-schedule", &Path::parse("spec.schedule"), format!("schedule `{s}` is not a cron expression (five fields: minute hour day-of-month month day-of-week, or @hourly/@daily/...)"));
    }
}
