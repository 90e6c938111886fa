//! Names for a front end to offer (the session's tab completion): metadata-only lists,
//! bounded, and the contexts of a kubeconfig. No object content is read.

use std::path::Path;

use kube::api::ListParams;
use kube::config::Kubeconfig;

use crate::{Cluster, ClusterError};

impl Cluster {
    /// The names of the `kind` objects in `ns` (the session default when `None`; every
    /// one for a cluster-scoped kind), at most `limit`, from one metadata-only list.
    pub async fn object_names(
        &self,
        kind: &str,
        ns: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, ClusterError> {
        let k = self.resolve(kind).await?;
        let api = self.api(&k, ns)?;
        let list = api
            .list_metadata(&ListParams::default().limit(limit))
            .await
            .map_err(|e| ClusterError::from_kube(e, "list", &k.resource.plural))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect())
    }
}

/// The context names of the kubeconfig at `path` (a `KUBECONFIG`-style list), else of the
/// default one; empty when it cannot be read.
pub fn kubeconfig_contexts(path: Option<&Path>) -> Vec<String> {
    let kc = match path {
        Some(p) => std::env::split_paths(p)
            .filter_map(|p| Kubeconfig::read_from(p).ok())
            .reduce(|a, b| a.merge(b).unwrap_or_default()),
        None => Kubeconfig::read().ok(),
    };
    kc.map(|k| k.contexts.into_iter().map(|c| c.name).collect())
        .unwrap_or_default()
}
