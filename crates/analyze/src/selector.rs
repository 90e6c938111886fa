//! Label selectors, matched as the API server matches them: kai's one matcher, used by
//! the rules, by kai-cluster's describe and view, and by pre-gathering.
//!
//! A workload's [`LabelSelector`] goes through kube's own [`Selector`] (the same type
//! renders the `labelSelector` query kai sends, so a local match and a server-side one
//! agree). Equality selectors (a Service's, a pod's `nodeSelector`) are plain maps and
//! are matched directly: building a `Selector` per pod would allocate in the rules'
//! inner loops for the same answer (the test below holds the two to each other).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NodeSelectorRequirement;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
pub use kube_core::{Expression, Selector, SelectorExt};

/// A workload's selector, or `None` when it selects nothing: empty (the API server
/// refuses an empty workload selector, so one read from anywhere selects no pods) or
/// invalid (an operator the API does not know, `In` without values).
pub fn workload_selector(sel: &LabelSelector) -> Option<Selector> {
    let s = Selector::try_from(sel.clone()).ok()?;
    (!s.selects_all()).then_some(s)
}

/// Whether `labels` satisfy a workload's selector; an empty or invalid one matches
/// nothing (see [`workload_selector`]).
pub fn label_selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    workload_selector(sel).is_some_and(|s| s.matches(labels))
}

/// Whether `labels` satisfy an equality selector (every pair present). An empty one
/// matches everything, as a `nodeSelector` does; callers that treat an empty Service
/// selector as "none" check that first.
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether a node's labels satisfy one requirement of a required node-affinity term:
/// `In`, `NotIn`, `Exists` and `DoesNotExist` are kube's own [`Expression`]s (label
/// selector semantics); `None` for `Gt`/`Lt` and operators kai does not know, which it
/// does not evaluate (a rule must not claim a mismatch it cannot check).
pub fn node_requirement_matches(
    req: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> Option<bool> {
    let values = || req.values.iter().flatten().cloned().collect();
    let expr = match req.operator.as_str() {
        "In" => Expression::In(req.key.clone(), values()),
        "NotIn" => Expression::NotIn(req.key.clone(), values()),
        "Exists" => Expression::Exists(req.key.clone()),
        "DoesNotExist" => Expression::DoesNotExist(req.key.clone()),
        _ => return None,
    };
    Some(expr.matches(labels))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn workload_selectors_match_like_the_api_server() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "backend"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert!(!label_selector_matches(
            &sel,
            &labels(&[("app", "backend")])
        ));
        assert!(label_selector_matches(
            &sel,
            &labels(&[("app", "backend"), ("tier", "api")])
        ));
        assert!(!label_selector_matches(
            &sel,
            &labels(&[("app", "backend"), ("tier", "api"), ("canary", "1")])
        ));
        // The query kai would send for the same selector.
        assert_eq!(
            workload_selector(&sel).unwrap().to_string(),
            "app=backend,tier in (api,web),!canary"
        );
    }

    #[test]
    fn empty_and_invalid_workload_selectors_select_nothing() {
        let any = labels(&[("app", "x")]);
        assert!(!label_selector_matches(&LabelSelector::default(), &any));
        let bad: LabelSelector = serde_json::from_value(
            json!({"matchExpressions": [{"key": "app", "operator": "Like", "values": ["x"]}]}),
        )
        .unwrap();
        assert!(workload_selector(&bad).is_none());
        assert!(!label_selector_matches(&bad, &any));
    }

    #[test]
    fn equality_selectors_agree_with_kubes_selector() {
        let cases = [
            (
                labels(&[("app", "web")]),
                labels(&[("app", "web"), ("x", "y")]),
            ),
            (labels(&[("app", "web")]), labels(&[("app", "db")])),
            (
                labels(&[("app", "web"), ("tier", "a")]),
                labels(&[("app", "web")]),
            ),
            (labels(&[]), labels(&[("app", "web")])),
        ];
        for (sel, l) in cases {
            let kube: Selector = sel.clone().into_iter().collect();
            assert_eq!(
                selector_matches(&sel, &l),
                kube.matches(&l),
                "{sel:?} {l:?}"
            );
        }
    }

    #[test]
    fn node_requirements_match_as_label_selectors_do() {
        let req = |op: &str, values: &[&str]| NodeSelectorRequirement {
            key: "zone".into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        };
        let a = labels(&[("zone", "a")]);
        let none = labels(&[]);
        for (op, values, l, want) in [
            ("In", &["a", "b"][..], &a, Some(true)),
            ("In", &["b"][..], &a, Some(false)),
            ("In", &["a"][..], &none, Some(false)),
            ("NotIn", &["b"][..], &a, Some(true)),
            ("NotIn", &["a"][..], &a, Some(false)),
            ("NotIn", &["a"][..], &none, Some(true)),
            ("Exists", &[][..], &a, Some(true)),
            ("DoesNotExist", &[][..], &a, Some(false)),
            ("Gt", &["1"][..], &a, None),
        ] {
            assert_eq!(
                node_requirement_matches(&req(op, values), l),
                want,
                "{op} {values:?} {l:?}"
            );
        }
    }
}
