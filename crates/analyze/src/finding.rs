//! The finding model: what an analyzer reports (the causes themselves are in [`crate::cause`]).

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::cause::Cause;

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

impl ProposedChange {
    /// A JSON merge patch of `kind` `name` in namespace `ns`: what most rules propose.
    pub fn merge(kind: &str, ns: &str, name: &str, patch: serde_json::Value) -> ProposedChange {
        ProposedChange {
            kind: kind.to_string(),
            namespace: Some(ns.to_string()),
            name: name.to_string(),
            patch_type: "merge".to_string(),
            patch,
        }
    }
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
    /// The root cause; serialized as its stable code string.
    pub cause: Cause,
    pub object: ObjectRef,
    pub summary: String,
    /// Quotes of what proves the cause: a log line, an event message, a missing key name.
    pub evidence: Vec<String>,
    pub fix: Fix,
    /// The cause's entry on the vocabulary page (`docs/causes.md#<code>`).
    #[serde(default)]
    pub docs: Vec<String>,
    /// The built-in runbook for the cause (`docs/runbooks/<slug>.md`): how to confirm it,
    /// fix it and prevent it. Added after `docs`, which keeps its meaning.
    #[serde(default)]
    pub runbook: String,
    /// Pods affected (1 for findings on a single non-pod object).
    pub count: u32,
}

impl Finding {
    /// A finding with the cause's default severity and documentation.
    pub fn new(cause: Cause, object: ObjectRef, summary: impl Into<String>) -> Self {
        Finding {
            severity: cause.severity(),
            cause,
            object,
            summary: summary.into(),
            evidence: Vec::new(),
            fix: Fix::default(),
            docs: vec![cause.vocabulary_link().to_string()],
            runbook: cause.runbook().to_string(),
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

    /// A fix that is advice only: done by hand, with no change for kai to propose.
    pub fn advice(self, description: impl Into<String>) -> Self {
        self.fix(description, None)
    }

    /// `pods` pods are affected (saturating at `u32::MAX`).
    pub fn affecting(mut self, pods: usize) -> Self {
        self.count = u32::try_from(pods).unwrap_or(u32::MAX);
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
            .then_with(|| b.cause.specificity().cmp(&a.cause.specificity()))
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

    /// The `-o json` shape of a finding: the fields it always had, with the same values,
    /// plus `runbook` (added when causes became an enum).
    #[test]
    fn finding_json_keeps_its_fields_and_adds_the_runbook() {
        let f = Finding::new(
            Cause::MissingSecretKey,
            ObjectRef::new("Deployment", Some("app"), "api"),
            "key missing",
        )
        .evidence("missing key: password");
        assert_eq!(
            serde_json::to_value(&f).ok(),
            Some(serde_json::json!({
                "severity": "critical",
                "cause": "missing-secret-key",
                "object": {"kind": "Deployment", "namespace": "app", "name": "api"},
                "summary": "key missing",
                "evidence": ["missing key: password"],
                "fix": {"description": ""},
                "docs": ["docs/causes.md#missing-secret-key"],
                "runbook": "docs/runbooks/missing-secret.md",
                "count": 1
            }))
        );
        let back: Finding = serde_json::from_value(serde_json::to_value(&f).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, f);
    }

    /// Today's ranking of a mixed set, pinned before cause codes became an enum: every
    /// code, lowered severities, equal specificities, counts, objects and the code itself
    /// as the last tie-breaker. The expected order is literal so any change shows.
    #[test]
    fn ranking_of_a_mixed_set_is_pinned() {
        let web = ObjectRef::new("Deployment", Some("ns"), "web");
        let api = ObjectRef::new("Deployment", Some("ns"), "api");
        let node = ObjectRef::new("Node", None, "n1");
        // (cause, object, count, lowered severity)
        let input: &[(Cause, &ObjectRef, u32, bool)] = &[
            (Cause::Unknown, &web, 1, false),
            (Cause::Forbidden, &api, 1, true),
            (Cause::ServiceNoReadyEndpoints, &api, 1, false),
            (Cause::RolloutStuck, &web, 1, false),
            (Cause::UnboundPvc, &api, 1, false),
            (Cause::CrashLoopAppError, &web, 3, false),
            (Cause::CrashLoopAppError, &api, 1, true),
            (Cause::JobBackoffLimit, &api, 1, false),
            (Cause::InitContainerFailing, &web, 1, false),
            (Cause::ReadinessProbeFailing, &web, 2, false),
            (Cause::NodeNotReady, &node, 4, false),
            (Cause::UnschedulableInsufficientResources, &api, 1, false),
            (Cause::UnschedulableNodeSelector, &web, 1, false),
            (Cause::OomKilled, &web, 1, true),
            (Cause::ServiceNoMatchingPods, &api, 1, false),
            (Cause::IngressMissingBackend, &web, 1, false),
            (Cause::ServiceTargetPortMismatch, &web, 1, false),
            (Cause::UnschedulableTaint, &api, 1, false),
            (Cause::LivenessProbeFailing, &web, 1, false),
            (Cause::PvcNoStorageClass, &web, 1, false),
            (Cause::ImagePullNotFound, &api, 2, false),
            (Cause::ImagePullUnauthorized, &api, 2, false),
            (Cause::ImagePullNotFound, &web, 2, false),
            (Cause::MissingSecret, &web, 1, false),
            (Cause::MissingConfigMap, &web, 1, false),
            (Cause::MissingSecret, &api, 1, false),
            (Cause::MissingConfigMapKey, &api, 1, false),
            (Cause::MissingSecretKey, &api, 1, false),
            (Cause::Unknown, &api, 5, false),
        ];
        let mut v: Vec<Finding> = input
            .iter()
            .map(|(cause, obj, count, lowered)| {
                let mut f = Finding::new(*cause, (*obj).clone(), "x");
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
            Finding::new(Cause::Unknown, o.clone(), "x"),
            Finding::new(Cause::RolloutStuck, o.clone(), "x"),
            Finding::new(Cause::CrashLoopAppError, o.clone(), "x"),
            Finding::new(Cause::MissingSecretKey, o, "x"),
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
