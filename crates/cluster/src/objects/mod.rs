//! Fetching objects of any kind for `list_resources` and `get_resource` (YAML, cleaned
//! and redacted); the tables' columns are rendered in [`table`].

mod table;

use table::table;
pub use table::{age, age_of, age_str, human_duration, pod_summary};

use kube::api::{DynamicObject, ListParams};
use serde_json::Value;

use super::budget;
use super::view::ReadError;
use super::{Cluster, ClusterError, Kind};
use kai_text::redact;

/// Objects listed at most, across pages; more is never useful to a model.
const MAX_LIST: usize = 5000;
const PAGE: u32 = 500;

/// `pods in namespace "shop"` / `nodes`: the resource named in RBAC terms.
pub fn resource_desc(kind: &Kind, ns: &str) -> String {
    let group = if kind.resource.group.is_empty() {
        String::new()
    } else {
        format!(".{}", kind.resource.group)
    };
    if kind.namespaced() {
        if ns == "*" {
            format!("{}{group} in all namespaces", kind.resource.plural)
        } else {
            format!("{}{group} in namespace {ns:?}", kind.resource.plural)
        }
    } else {
        format!("{}{group}", kind.resource.plural)
    }
}

/// Get one object; a 404 becomes "not found" with similar names from the namespace.
pub async fn get_object(
    cluster: &Cluster,
    kind: &Kind,
    name: &str,
    ns: Option<&str>,
) -> Result<DynamicObject, ClusterError> {
    let ns_name = cluster.checked_namespace(ns)?;
    Cluster::check_name(kind, name)?;
    let api = cluster.api(kind, Some(&ns_name))?;
    match api.get_opt(name).await {
        Ok(Some(o)) => {
            remember_if_secret(kind, std::slice::from_ref(&o));
            Ok(o)
        }
        Ok(None) => Err(not_found(cluster, kind, name, &ns_name).await),
        Err(e) => Err(ClusterError::from_kube(
            e,
            "get",
            &resource_desc(kind, &ns_name),
        )),
    }
}

/// Every Secret read from the cluster has its values remembered before anything else
/// sees it, so a copy anywhere else (a log line, an annotation) is scrubbed too.
fn remember_if_secret(kind: &Kind, objs: &[DynamicObject]) {
    if kind.resource.kind == "Secret" && kind.resource.group.is_empty() {
        for o in objs {
            redact::remember_secret(&o.data);
        }
    }
}

/// "Pod "x" not found in namespace "y"; similar names: …" and what to do next.
pub async fn not_found(cluster: &Cluster, kind: &Kind, name: &str, ns: &str) -> ClusterError {
    let api = match cluster.api(kind, Some(ns)) {
        Ok(api) => api,
        Err(e) => return e,
    };
    let names = api
        .list_metadata(&ListParams::default().limit(PAGE))
        .await
        .map(|list| list.into_iter().filter_map(|o| o.metadata.name).collect())
        .map_err(|e| {
            let what = resource_desc(kind, ns);
            ReadError::from_kube(e, "list", &kind.resource.plural, Some(ns), &what)
        });
    not_found_text(kind, name, ns, names)
}

/// [`not_found`] with the names of what exists already read (`Err`: they could not be,
/// and the hint says so rather than "there are none").
pub fn not_found_text(
    kind: &Kind,
    name: &str,
    ns: &str,
    names: Result<Vec<String>, ReadError>,
) -> ClusterError {
    let where_ = if kind.namespaced() {
        format!(" in namespace {ns:?}")
    } else {
        String::new()
    };
    let names = match names {
        Ok(names) => names,
        Err(e) => {
            return ClusterError::Other(format!(
                "{} {name:?} not found{where_}; the {} that exist could not be listed to suggest one ({})",
                kind.resource.kind,
                kind.resource.plural,
                e.short()
            ))
        }
    };
    let mut similar: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with(name) || name.starts_with(n.as_str()) || n.contains(name))
        .take(5)
        .cloned()
        .collect();
    if similar.is_empty() {
        similar = super::suggest(name, &names);
    }
    let hint = if similar.is_empty() {
        if names.is_empty() {
            format!(
                "; there are no {} here at all — check the namespace",
                kind.resource.plural
            )
        } else {
            format!(
                "; use list_resources kind={} to see the {} that exist",
                kind.resource.kind,
                names.len()
            )
        }
    } else {
        format!("; similar names: {}", similar.join(", "))
    };
    ClusterError::Other(format!(
        "{} {name:?} not found{where_}{hint}",
        kind.resource.kind
    ))
}

/// List `kind` with pagination (at most [`MAX_LIST`] objects); second value: truncated.
pub async fn list_all(
    cluster: &Cluster,
    kind: &Kind,
    ns: Option<&str>,
    lp: ListParams,
) -> Result<(Vec<DynamicObject>, bool), ClusterError> {
    let ns_name = cluster.list_namespace(ns)?;
    let api = cluster.api(kind, Some(&ns_name))?;
    let mut lp = lp.limit(PAGE);
    let mut items = Vec::new();
    loop {
        let page = api
            .list(&lp)
            .await
            .map_err(|e| ClusterError::from_kube(e, "list", &resource_desc(kind, &ns_name)))?;
        remember_if_secret(kind, &page.items);
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() && items.len() < MAX_LIST => lp.continue_token = Some(c),
            Some(c) if !c.is_empty() => return Ok((items, true)),
            _ => return Ok((items, false)),
        }
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListArgs {
    pub kind: String,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

/// `list_resources`: a compact table, cut to `budget_chars`.
pub async fn list_resources(
    cluster: &Cluster,
    args: &ListArgs,
    budget_chars: usize,
) -> Result<String, ClusterError> {
    let kind = cluster.resolve(&args.kind).await?;
    let mut lp = ListParams::default();
    if let Some(l) = args.label_selector.as_deref().filter(|s| !s.is_empty()) {
        lp = lp.labels(l);
    }
    if let Some(f) = args.field_selector.as_deref().filter(|s| !s.is_empty()) {
        lp = lp.fields(f);
    }
    let ns = cluster.list_namespace(args.namespace.as_deref())?;
    let (mut items, truncated) = list_all(cluster, &kind, Some(&ns), lp).await?;
    items.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    let all_ns = kind.namespaced() && ns == "*";
    let (headers, mut rows) = table(&kind.resource.kind, &items);
    let mut headers: Vec<&str> = headers.to_vec();
    if all_ns {
        headers.insert(0, "NAMESPACE");
        for (row, o) in rows.iter_mut().zip(&items) {
            row.insert(0, o.metadata.namespace.clone().unwrap_or_default());
        }
    }
    let scope = if !kind.namespaced() {
        String::new()
    } else if all_ns {
        " in all namespaces".into()
    } else {
        format!(" in namespace {ns}")
    };
    if rows.is_empty() {
        let filter = match (&args.label_selector, &args.field_selector) {
            (None, None) => String::new(),
            _ => " matching the selectors".into(),
        };
        return Ok(format!("No {}{scope}{filter}.", kind.resource.plural));
    }
    let mut out = format!("{} {}{scope}:\n", rows.len(), kind.resource.plural);
    let text = budget::fit_table(
        &headers,
        &rows,
        budget_chars.saturating_sub(out.len() + 80),
        "narrow with label_selector or field_selector",
    );
    out.push_str(&redact::scrub(&text));
    if truncated {
        out.push_str(&format!(
            "\n(listing stopped after {MAX_LIST} objects; narrow with a selector)"
        ));
    }
    Ok(out)
}

/// Annotations that are noise to a reader (and last-applied may hold Secret data).
const NOISY_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "control-plane.alpha.kubernetes.io/leader",
    "endpoints.kubernetes.io/last-change-trigger-time",
    "deprecated.daemonset.template.generation",
];

/// What `get_resource` and `describe` withhold from any object: a Secret's values and
/// sensitive ConfigMap entries (by kind name alone: a same-named kind from another group
/// is redacted too), credential-named env values and credential flags in command lines.
pub(crate) fn redact_object(kind: &Kind, v: &mut Value) {
    match kind.resource.kind.as_str() {
        "Secret" => redact::redact_secret_value(v),
        "ConfigMap" => redact::redact_configmap(v),
        _ => {}
    }
    redact::redact_env_values(v);
    redact::redact_args(v);
}

/// Strip what a reader never needs from an object's JSON form.
pub fn clean_object(v: &mut Value) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("selfLink");
        if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            ann.retain(|k, _| !NOISY_ANNOTATIONS.contains(&k.as_str()));
            for (_, val) in ann.iter_mut() {
                if let Some(text) = val.as_str() {
                    if text.len() > 500 {
                        *val = Value::String(format!("<{} chars omitted>", text.len()));
                    }
                }
            }
            if ann.is_empty() {
                meta.remove("annotations");
            }
        }
    }
}

/// `get_resource`: YAML without managedFields and noisy annotations; Secret values
/// never leave this function, inline env values of credential-named variables and
/// credential flags in command lines are withheld, ConfigMap entries are judged by key
/// name and content.
pub async fn get_resource(
    cluster: &Cluster,
    kind: &str,
    name: &str,
    ns: Option<&str>,
    budget_chars: usize,
) -> Result<String, ClusterError> {
    let kind = cluster.resolve(kind).await?;
    let obj = get_object(cluster, &kind, name, ns).await?;
    let mut v = serde_json::to_value(&obj).map_err(|e| ClusterError::Other(e.to_string()))?;
    if v.get("apiVersion").is_none() {
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "apiVersion".into(),
                Value::String(kind.resource.api_version.clone()),
            );
            m.insert("kind".into(), Value::String(kind.resource.kind.clone()));
        }
    }
    clean_object(&mut v);
    redact_object(&kind, &mut v);
    let yaml = serde_yaml::to_string(&v).map_err(|e| ClusterError::Other(e.to_string()))?;
    let yaml = redact::scrub(&yaml);
    Ok(budget::fit_text(
        &yaml,
        budget_chars,
        "use describe for a summary, or list_resources to find a smaller object",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn not_found_says_when_names_could_not_be_listed() {
        let kind = crate::kinds::builtin("deploy").unwrap();
        let e = not_found_text(&kind, "web", "shop", Ok(vec!["web-1".into()]));
        assert!(e.to_string().contains("similar names: web-1"), "{e}");
        let e = not_found_text(&kind, "web", "shop", Ok(vec![]));
        assert!(e.to_string().contains("no deployments here at all"), "{e}");
        // As a list call gets it: the apiserver's 403.
        let denied = kube::core::Status::failure("no", "Forbidden").with_code(403);
        let what = "deployments.apps in namespace \"shop\"";
        let forbidden = ReadError::from_kube(
            kube::Error::Api(denied.boxed()),
            "list",
            "deployments",
            Some("shop"),
            what,
        );
        let e = not_found_text(&kind, "web", "shop", Err(forbidden)).to_string();
        assert!(!e.contains("no deployments here"), "{e}");
        assert!(
            e.contains("could not be listed") && e.contains("forbidden"),
            "{e}"
        );
    }

    #[test]
    fn cleaning_drops_noise() {
        let mut v = serde_json::json!({"metadata": {"name": "x", "managedFields": [{}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"}}});
        clean_object(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"metadata": {"name": "x", "annotations": {"keep": "me"}}})
        );
    }
}
