//! Scenario files (`tests/scenarios/<name>/{scenario.yaml,manifests.yaml}`), parsed as
//! documented in `docs/scenario-format.md`, and embedded in the crate so `kai demo` and
//! `kai testcluster up` work wherever the binary is.

use std::collections::BTreeMap;

use include_dir::{include_dir, Dir};
use serde::{Deserialize, Serialize};

use crate::Error;

static SCENARIOS_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../tests/scenarios");

/// One embedded scenario: its directory name, parsed `scenario.yaml` and raw `manifests.yaml`.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub spec: ScenarioSpec,
    pub manifests: String,
}

/// `scenario.yaml`. Unknown top-level keys are kept in `extra` (so a scenario author can
/// add metadata without breaking the harness); nested sections reject unknown keys so a
/// typo in the kubelet behaviour fails loudly instead of being played as "healthy".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub question: String,
    pub target: Target,
    #[serde(default = "default_cause")]
    pub expected_cause: String,
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub user: ScenarioUser,
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub kubelet: Vec<KubeletRule>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn default_cause() -> String {
    "none".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioUser {
    #[default]
    Admin,
    Restricted,
}

/// An extra fake Node (names are cluster-global).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub ready: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<TaintSpec>,
    #[serde(default = "default_cpu")]
    pub cpu: String,
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default = "default_pods")]
    pub pods: String,
    #[serde(default)]
    pub unschedulable: bool,
}

impl NodeSpec {
    /// A ready node with the default size (4 CPU, 8Gi, 110 pods).
    pub fn new(name: impl Into<String>) -> Self {
        NodeSpec {
            name: name.into(),
            ready: true,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            cpu: default_cpu(),
            memory: default_memory(),
            pods: default_pods(),
            unschedulable: false,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_cpu() -> String {
    "4".to_string()
}
fn default_memory() -> String {
    "8Gi".to_string()
}
fn default_pods() -> String {
    "110".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaintSpec {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    pub effect: String,
}

/// How the fake kubelet plays the pods matched by `match`.
// Every field may be left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeletRule {
    /// Pod label selector: all labels must match (empty matches every pod).
    #[serde(rename = "match")]
    pub match_labels: BTreeMap<String, String>,
    /// Pod phase override (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: Option<String>,
    pub containers: BTreeMap<String, ContainerSpec>,
    pub init_containers: BTreeMap<String, ContainerSpec>,
    pub events: Vec<EventSpec>,
}

impl KubeletRule {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|have| have == v))
    }
}

// Every field may be left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerSpec {
    /// `None` means the default: `running` for containers, completed (exit 0) for init containers.
    pub state: Option<ContainerState>,
    pub restarts: Option<i32>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub ready: Option<bool>,
    pub logs: Option<String>,
    pub previous_logs: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerState {
    Running,
    Crashloop,
    Oomkilled,
    Terminated,
    ImagePullNotFound,
    ImagePullUnauthorized,
    CreateConfigError,
    Waiting,
}

/// An extra event on the pod (in addition to the automatic kubelet ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    #[serde(default = "normal", rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    #[serde(default = "one")]
    pub count: i32,
    /// Optional container name: sets `involvedObject.fieldPath` to `spec.containers{name}`.
    #[serde(default)]
    pub container: Option<String>,
}

fn normal() -> String {
    "Normal".to_string()
}
fn one() -> i32 {
    1
}

impl ScenarioSpec {
    pub fn parse(name: &str, text: &str) -> Result<Self, Error> {
        serde_yaml::from_str(text).map_err(|e| Error::Scenario {
            name: name.to_string(),
            message: format!("scenario.yaml does not parse: {e}"),
        })
    }

    /// The first kubelet rule whose selector matches these pod labels.
    pub fn rule_for(&self, labels: &BTreeMap<String, String>) -> Option<&KubeletRule> {
        self.kubelet.iter().find(|r| r.matches(labels))
    }
}

/// Every scenario embedded in this build, sorted by name. A scenario whose `scenario.yaml`
/// does not parse is left out with a warning (see [`scenario`] for the error).
pub fn scenarios() -> Vec<Scenario> {
    let mut out = Vec::new();
    for name in scenario_names() {
        match scenario(&name) {
            Ok(s) => out.push(s),
            Err(e) => tracing::warn!("skipping scenario {name}: {e}"),
        }
    }
    out
}

/// Names of every embedded scenario directory (parseable or not), sorted.
pub fn scenario_names() -> Vec<String> {
    let mut names: Vec<String> = SCENARIOS_DIR
        .dirs()
        .filter(|d| d.get_file(d.path().join("scenario.yaml")).is_some())
        .filter_map(|d| d.path().file_name()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// One embedded scenario by name.
pub fn scenario(name: &str) -> Result<Scenario, Error> {
    let dir = SCENARIOS_DIR
        .get_dir(name)
        .ok_or_else(|| Error::UnknownScenario {
            name: name.to_string(),
            known: scenario_names().join(", "),
        })?;
    let text = |file: &str| -> Result<String, Error> {
        let f = dir
            .get_file(dir.path().join(file))
            .ok_or_else(|| Error::Scenario {
                name: name.to_string(),
                message: format!("{file} is missing"),
            })?;
        f.contents_utf8()
            .map(str::to_string)
            .ok_or_else(|| Error::Scenario {
                name: name.to_string(),
                message: format!("{file} is not UTF-8"),
            })
    };
    let spec = ScenarioSpec::parse(name, &text("scenario.yaml")?)?;
    let manifests = text("manifests.yaml").unwrap_or_default();
    Ok(Scenario {
        name: name.to_string(),
        spec,
        manifests,
    })
}

/// Substitutes `{pod}`, `{namespace}`, `{node}`, `{pod_ip}` and `{container}`.
pub fn substitute(text: &str, vars: &SubstVars<'_>) -> String {
    text.replace("{pod}", vars.pod)
        .replace("{namespace}", vars.namespace)
        .replace("{node}", vars.node)
        .replace("{pod_ip}", vars.pod_ip)
        .replace("{container}", vars.container)
}

#[derive(Debug, Clone, Copy)]
pub struct SubstVars<'a> {
    pub pod: &'a str,
    pub namespace: &'a str,
    pub node: &'a str,
    pub pod_ip: &'a str,
    pub container: &'a str,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_example() {
        let text = r#"
description: Backend crashes at start-up because it cannot reach its database.
question: why is backend crashlooping?
target: {kind: Deployment, name: backend}
expected_cause: crash-loop-app-error
evidence:
  - "FATAL: password authentication failed for user \"app\""
user: admin
nodes:
  - name: notready-node-1
    ready: false
    labels: {disk: hdd}
    taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
    cpu: "2"
    memory: 4Gi
    unschedulable: false
kubelet:
  - match: {app: backend}
    phase: Running
    containers:
      app:
        state: crashloop
        restarts: 7
        exit_code: 1
        reason: Error
        message: "..."
        ready: false
        logs: |
          starting backend v1.4.2
        previous_logs: |
          FATAL: password authentication failed for user "app"
    init_containers:
      wait-db: {state: crashloop, exit_code: 1, previous_logs: "..."}
    events:
      - {type: Warning, reason: Unhealthy, message: "Readiness probe failed: {pod_ip}", count: 14}
"#;
        let s = ScenarioSpec::parse("x", text).unwrap();
        assert_eq!(s.nodes[0].cpu, "2");
        assert!(!s.nodes[0].ready);
        assert_eq!(s.kubelet[0].containers["app"].restarts, Some(7));
        assert_eq!(
            s.kubelet[0].init_containers["wait-db"].state,
            Some(ContainerState::Crashloop)
        );
        assert_eq!(s.kubelet[0].events[0].count, 14);
        let labels = BTreeMap::from([("app".to_string(), "backend".to_string())]);
        assert!(s.rule_for(&labels).is_some());
        assert!(s.rule_for(&BTreeMap::new()).is_none());
    }

    #[test]
    fn typo_in_kubelet_section_is_an_error() {
        let text = "target: {kind: Pod, name: x}\nkubelet:\n  - match: {}\n    containers:\n      app: {stat: crashloop}\n";
        assert!(ScenarioSpec::parse("x", text).is_err());
    }

    #[test]
    fn every_embedded_scenario_parses() {
        for name in scenario_names() {
            scenario(&name).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn substitutes_placeholders() {
        let v = SubstVars {
            pod: "p",
            namespace: "n",
            node: "k",
            pod_ip: "10.0.0.1",
            container: "c",
        };
        assert_eq!(
            substitute("{pod}/{namespace}@{node} {pod_ip} {container}", &v),
            "p/n@k 10.0.0.1 c"
        );
    }
}
