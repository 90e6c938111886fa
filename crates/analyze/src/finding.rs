//! The finding model: what an analyzer reports, and the stable cause vocabulary.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered so that `Critical > High > Medium > Low`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// One step less severe; used when only some replicas of a workload are affected.
    pub fn lower(self) -> Severity {
        match self {
            Severity::Critical => Severity::High,
            Severity::High => Severity::Medium,
            Severity::Medium | Severity::Low => Severity::Low,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object a finding is about (after aggregation: the owning workload, not each pod).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A concrete cluster change that would fix the finding. It is only ever a proposal:
/// the `changes` module dry-runs it and asks the user before anything is applied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProposedChange {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// `"merge"` (RFC 7386 JSON merge patch) or `"strategic"` (strategic merge patch).
    pub patch_type: String,
    pub patch: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Fix {
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ProposedChange>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    /// A stable cause code from [`causes()`].
    pub cause: String,
    pub object: ObjectRef,
    pub summary: String,
    /// Quotes of what proves the cause: a log line, an event message, a missing key name.
    pub evidence: Vec<String>,
    pub fix: Fix,
    #[serde(default)]
    pub docs: Vec<String>,
    /// Pods affected (1 for findings on a single non-pod object).
    pub count: u32,
}

/// (code, one-line description, default severity, specificity). Specificity breaks ties
/// between findings of equal severity: a missing key explains more than "rollout stuck".
const CAUSES: &[(&str, &str, Severity, u8)] = &[
    ("crash-loop-app-error", "A container keeps exiting with an error and is restarted in a back-off loop; its previous log says why.", Severity::Critical, 70),
    ("oom-killed", "A container was killed for exceeding its memory limit (OOMKilled, exit code 137).", Severity::Critical, 85),
    ("image-pull-not-found", "The image (or its tag) does not exist in the registry, so the kubelet cannot pull it.", Severity::Critical, 90),
    ("image-pull-unauthorized", "The registry refused to serve the image without (valid) credentials: imagePullSecrets missing or wrong.", Severity::Critical, 90),
    ("missing-secret", "A pod references a Secret that does not exist in its namespace.", Severity::Critical, 92),
    ("missing-secret-key", "A pod references a key that the Secret does not contain.", Severity::Critical, 95),
    ("missing-configmap", "A pod references a ConfigMap that does not exist in its namespace.", Severity::Critical, 92),
    ("missing-configmap-key", "A pod references a key that the ConfigMap does not contain.", Severity::Critical, 95),
    ("unschedulable-insufficient-resources", "No node has enough free CPU or memory for the pod's requests.", Severity::Critical, 82),
    ("unschedulable-node-selector", "No node carries the labels the pod's nodeSelector or node affinity asks for.", Severity::Critical, 84),
    ("unschedulable-taint", "The only nodes the pod may run on carry a taint that the pod does not tolerate.", Severity::Critical, 86),
    ("unbound-pvc", "A PersistentVolumeClaim is still Pending: no volume has been bound or provisioned for it.", Severity::High, 60),
    ("pvc-no-storage-class", "A PersistentVolumeClaim names a StorageClass that does not exist (or none is set and there is no default).", Severity::Critical, 88),
    ("readiness-probe-failing", "A container runs but its readiness probe fails, so it never receives traffic.", Severity::High, 80),
    ("liveness-probe-failing", "A container's liveness probe fails, so the kubelet keeps killing and restarting it.", Severity::Critical, 87),
    ("service-no-matching-pods", "A Service's selector matches no pods, so it has no endpoints.", Severity::High, 85),
    ("service-target-port-mismatch", "A Service's targetPort is not a port that the selected pods' containers expose.", Severity::High, 86),
    ("service-no-ready-endpoints", "A Service selects pods, but none of them is ready.", Severity::High, 40),
    ("ingress-missing-backend", "An Ingress routes to a Service (or Service port) that does not exist.", Severity::High, 85),
    ("rollout-stuck", "A Deployment rollout stopped progressing (ProgressDeadlineExceeded): new pods never became available.", Severity::High, 50),
    ("job-backoff-limit", "A Job failed: its pods failed more often than backoffLimit allows.", Severity::Critical, 72),
    ("init-container-failing", "An init container keeps failing, so the pod's main containers never start.", Severity::Critical, 78),
    ("node-not-ready", "A node is NotReady (its kubelet stopped reporting or is unhealthy); pods on it are not served.", Severity::Critical, 80),
    ("forbidden", "kai's credentials may not read some objects (RBAC), so the diagnosis is incomplete.", Severity::High, 30),
    ("unknown", "An object is unhealthy but no rule explains why; the raw symptoms are given as evidence.", Severity::Medium, 0),
];

/// The cause vocabulary: `(code, description)`, for `kai diagnose --list-causes`.
pub fn causes() -> &'static [(&'static str, &'static str)] {
    static LIST: std::sync::OnceLock<Vec<(&'static str, &'static str)>> =
        std::sync::OnceLock::new();
    LIST.get_or_init(|| CAUSES.iter().map(|(c, d, _, _)| (*c, *d)).collect())
}

/// Default severity of a cause (`Medium` for codes outside the vocabulary).
pub fn default_severity(cause: &str) -> Severity {
    CAUSES
        .iter()
        .find(|(c, ..)| *c == cause)
        .map(|(_, _, s, _)| *s)
        .unwrap_or(Severity::Medium)
}

/// How specific a cause is; higher explains more.
pub fn specificity(cause: &str) -> u8 {
    CAUSES
        .iter()
        .find(|(c, ..)| *c == cause)
        .map(|(_, _, _, s)| *s)
        .unwrap_or(0)
}

/// Runbook link for a cause (the docs corpus names runbooks after cause codes).
pub fn docs_for(cause: &str) -> Vec<String> {
    vec![format!("docs/causes.md#{cause}")]
}

impl Finding {
    /// A finding with the cause's default severity and documentation.
    pub fn new(cause: &str, object: ObjectRef, summary: impl Into<String>) -> Self {
        Finding {
            severity: default_severity(cause),
            cause: cause.to_string(),
            object,
            summary: summary.into(),
            evidence: Vec::new(),
            fix: Fix::default(),
            docs: docs_for(cause),
            count: 1,
        }
    }

    pub fn evidence(mut self, e: impl Into<String>) -> Self {
        push_unique(&mut self.evidence, e.into());
        self
    }

    pub fn fix(mut self, description: impl Into<String>, change: Option<ProposedChange>) -> Self {
        self.fix = Fix {
            description: description.into(),
            change,
        };
        self
    }
}

/// Add `s` unless it is empty or already there (evidence is deduplicated across pods).
pub fn push_unique(v: &mut Vec<String>, s: String) {
    let s = s.trim().to_string();
    if !s.is_empty() && !v.contains(&s) {
        v.push(s);
    }
}

/// Most important first: severity, then cause specificity, then pods affected.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| specificity(&b.cause).cmp(&specificity(&a.cause)))
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.object.cmp(&b.object))
            .then_with(|| a.cause.cmp(&b.cause))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_serializes_lowercase() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Medium > Severity::Low);
        assert_eq!(
            serde_json::to_value(Severity::Critical).ok(),
            Some(serde_json::json!("critical"))
        );
    }

    #[test]
    fn vocabulary_is_complete_and_unique() {
        let codes: Vec<_> = causes().iter().map(|(c, _)| *c).collect();
        assert_eq!(codes.len(), 25);
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len());
        assert!(codes.contains(&"unknown") && codes.contains(&"forbidden"));
    }

    /// Today's ranking of a mixed set, pinned before cause codes became an enum: every
    /// code, lowered severities, equal specificities, counts, objects and the code itself
    /// as the last tie-breaker. The expected order is literal so any change shows.
    #[test]
    fn ranking_of_a_mixed_set_is_pinned() {
        let web = ObjectRef::new("Deployment", Some("ns"), "web");
        let api = ObjectRef::new("Deployment", Some("ns"), "api");
        let node = ObjectRef::new("Node", None, "n1");
        // (code, object, count, lowered severity)
        let input: &[(&str, &ObjectRef, u32, bool)] = &[
            ("unknown", &web, 1, false),
            ("forbidden", &api, 1, true),
            ("service-no-ready-endpoints", &api, 1, false),
            ("rollout-stuck", &web, 1, false),
            ("unbound-pvc", &api, 1, false),
            ("crash-loop-app-error", &web, 3, false),
            ("crash-loop-app-error", &api, 1, true),
            ("job-backoff-limit", &api, 1, false),
            ("init-container-failing", &web, 1, false),
            ("readiness-probe-failing", &web, 2, false),
            ("node-not-ready", &node, 4, false),
            ("unschedulable-insufficient-resources", &api, 1, false),
            ("unschedulable-node-selector", &web, 1, false),
            ("oom-killed", &web, 1, true),
            ("service-no-matching-pods", &api, 1, false),
            ("ingress-missing-backend", &web, 1, false),
            ("service-target-port-mismatch", &web, 1, false),
            ("unschedulable-taint", &api, 1, false),
            ("liveness-probe-failing", &web, 1, false),
            ("pvc-no-storage-class", &web, 1, false),
            ("image-pull-not-found", &api, 2, false),
            ("image-pull-unauthorized", &api, 2, false),
            ("image-pull-not-found", &web, 2, false),
            ("missing-secret", &web, 1, false),
            ("missing-configmap", &web, 1, false),
            ("missing-secret", &api, 1, false),
            ("missing-configmap-key", &api, 1, false),
            ("missing-secret-key", &api, 1, false),
            ("unknown", &api, 5, false),
        ];
        let mut v: Vec<Finding> = input
            .iter()
            .map(|(code, obj, count, lowered)| {
                let mut f = Finding::new(code, (*obj).clone(), "x");
                f.count = *count;
                if *lowered {
                    f.severity = f.severity.lower();
                }
                f
            })
            .collect();
        rank(&mut v);
        let order: Vec<String> = v
            .iter()
            .map(|f| format!("{} {} {}", f.severity, f.cause, f.object.name))
            .collect();
        assert_eq!(
            order,
            [
                "critical missing-configmap-key api",
                "critical missing-secret-key api",
                "critical missing-secret api",
                "critical missing-configmap web",
                "critical missing-secret web",
                "critical image-pull-not-found api",
                "critical image-pull-unauthorized api",
                "critical image-pull-not-found web",
                "critical pvc-no-storage-class web",
                "critical liveness-probe-failing web",
                "critical unschedulable-taint api",
                "critical unschedulable-node-selector web",
                "critical unschedulable-insufficient-resources api",
                "critical node-not-ready n1",
                "critical init-container-failing web",
                "critical job-backoff-limit api",
                "critical crash-loop-app-error web",
                "high service-target-port-mismatch web",
                "high service-no-matching-pods api",
                "high ingress-missing-backend web",
                "high oom-killed web",
                "high readiness-probe-failing web",
                "high crash-loop-app-error api",
                "high unbound-pvc api",
                "high rollout-stuck web",
                "high service-no-ready-endpoints api",
                "medium forbidden api",
                "medium unknown api",
                "medium unknown web",
            ]
        );
    }

    #[test]
    fn ranking_prefers_severity_then_specificity() {
        let o = ObjectRef::new("Deployment", Some("ns"), "web");
        let mut v = vec![
            Finding::new("unknown", o.clone(), "x"),
            Finding::new("rollout-stuck", o.clone(), "x"),
            Finding::new("crash-loop-app-error", o.clone(), "x"),
            Finding::new("missing-secret-key", o, "x"),
        ];
        rank(&mut v);
        let order: Vec<_> = v.iter().map(|f| f.cause.as_str()).collect();
        assert_eq!(
            order,
            [
                "missing-secret-key",
                "crash-loop-app-error",
                "rollout-stuck",
                "unknown"
            ]
        );
    }
}
