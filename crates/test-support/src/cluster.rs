//! The shared test cluster (a real kube-apiserver + etcd, started once per test process)
//! and admin-side set-up.

use std::path::PathBuf;

use kai_testcluster::TestCluster;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::Client;
use serde_json::Value;

/// Both rustls crypto back ends end up enabled in a test binary's dependency graph (ring
/// through kube, aws-lc-rs through reqwest), so rustls cannot pick one by itself; choose
/// ring before the first TLS connection.
pub fn crypto() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The shared test cluster, with the crypto provider chosen.
pub fn shared() -> &'static TestCluster {
    crypto();
    kai_testcluster::shared().unwrap()
}

/// The shared cluster's admin kubeconfig.
pub fn kubeconfig() -> PathBuf {
    shared().kubeconfig_path().to_path_buf()
}

/// A client with the cluster's admin credentials, for set-up and checks outside kai.
pub async fn admin() -> Client {
    shared().admin_client().await.unwrap()
}

/// The built-in scenario `name` set up in namespace `ns`; the kubeconfig to reach it.
pub async fn scenario(name: &str, ns: &str) -> PathBuf {
    shared().setup_scenario(name, ns).await.unwrap();
    kubeconfig()
}

/// The API resource of `kind` in `api_version` (`v1`, `apps/v1`, …), its plural as the
/// API server spells it for the kinds tests create.
pub fn api_resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let lower = kind.to_ascii_lowercase();
    let plural = if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    };
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural,
    }
}

/// Server-side apply of `obj` (its `apiVersion`, `kind`, `metadata.name` and, for
/// namespaced objects, `metadata.namespace`) as `client`: test set-up, not through kai.
pub async fn apply(client: &Client, obj: Value) {
    let ar = api_resource(
        obj["apiVersion"].as_str().unwrap(),
        obj["kind"].as_str().unwrap(),
    );
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.patch(
        &name,
        &PatchParams::apply("kai-test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

/// Installs the namespaced CRD of `kind` in `group/v1` (singular and plural: `kind` in
/// lower case, plus `s`) with `schema` as its OpenAPI schema, and waits until discovery
/// lists it: a fresh CRD takes a moment to be served.
pub async fn install_crd(client: &Client, group: &str, kind: &str, schema: Value) {
    let singular = kind.to_ascii_lowercase();
    let plural = format!("{singular}s");
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": plural, "singular": singular, "kind": kind},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": schema}}]
        }
    });
    apply(client, crd).await;
    let group_version = format!("{group}/v1");
    for _ in 0..100 {
        if let Ok(list) = client.list_api_group_resources(&group_version).await {
            if list.resources.iter().any(|r| r.kind == kind) {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the {kind} CRD was never served");
}

/// The object `kind`/`name` in `ns` as JSON, read as the admin; None when it is gone.
pub async fn get(ns: &str, api_version: &str, kind: &str, name: &str) -> Option<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(admin().await, ns, &api_resource(api_version, kind));
    api.get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

/// A scenario written in the test (`spec` as a scenario file, `manifests` as YAML) set
/// up in `ns`; the kubeconfig to reach it.
pub async fn custom_scenario(ns: &str, spec: &str, manifests: &str) -> PathBuf {
    let scenario = kai_testcluster::Scenario {
        name: ns.into(),
        spec: kai_testcluster::ScenarioSpec::parse(ns, spec).unwrap(),
        manifests: manifests.into(),
    };
    shared().setup_custom(&scenario, ns).await.unwrap();
    kubeconfig()
}

/// The names of the pods in `ns` matching the label `selector` (`""`: all), as soon as
/// there are any; empty when none appeared within 30 seconds (a "does not hang" bound).
pub async fn wait_for_pods(client: &Client, ns: &str, selector: &str) -> Vec<String> {
    let pods: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &api_resource("v1", "Pod"));
    let params = ListParams::default().labels(selector);
    for _ in 0..120 {
        let names: Vec<String> = pods
            .list(&params)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        if !names.is_empty() {
            return names;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Vec::new()
}

/// The client configuration of the cluster's admin.
pub async fn admin_config() -> kube::Config {
    shared().admin_config().await.unwrap()
}

/// The client configuration of the restricted user (read-only in its own namespace).
pub async fn restricted_config() -> kube::Config {
    shared().restricted_config().await.unwrap()
}

/// Namespace `name`, for [`apply`].
pub fn namespace(name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// Deployment `web` in `ns` (label `app: web`): one replica of container `app` running
/// `image` on port 80, for [`apply`].
pub fn web_deployment(ns: &str, image: &str) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image,
                    "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}
    })
}

/// Namespace `name` exists and is not being deleted (read as the admin; panics when it
/// is gone altogether).
pub async fn namespace_alive(name: &str) -> bool {
    let api: Api<DynamicObject> = Api::all_with(admin().await, &api_resource("v1", "Namespace"));
    let ns = api.get(name).await.unwrap();
    ns.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_are_the_api_servers() {
        for (api_version, kind, group, plural) in [
            ("v1", "Namespace", "", "namespaces"),
            ("apps/v1", "Deployment", "apps", "deployments"),
            ("v1", "PersistentVolumeClaim", "", "persistentvolumeclaims"),
            (
                "networking.k8s.io/v1",
                "NetworkPolicy",
                "networking.k8s.io",
                "networkpolicies",
            ),
            ("v1", "Endpoints", "", "endpointses"),
        ] {
            let ar = api_resource(api_version, kind);
            assert_eq!((ar.group.as_str(), ar.plural.as_str()), (group, plural));
            assert_eq!(ar.version, "v1");
        }
    }
}
