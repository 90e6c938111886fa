//! The one way kai writes to a cluster: a [`WriteRequest`] for a validated
//! [`ObjectRef`], built into an HTTP request by a pure function (every path segment
//! encoded, the query assembled by a URL encoder, never by string concatenation), and
//! sent by [`super::Cluster::write`], which holds real writes to an approval minted for
//! that exact request (see [`super::gate`]).

use http::header::CONTENT_TYPE;
use http::{Method, Request};
use serde_json::{json, Value};

use super::names::{self, encode_segment, NameError};
use super::Kind;

/// The field manager of every write, so `managedFields` show what kai owns.
pub const FIELD_MANAGER: &str = "kai";

/// The patch flavours of `patch_resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Strategic,
    Json,
}

impl PatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchType::Merge => "merge",
            PatchType::Strategic => "strategic",
            PatchType::Json => "json",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Json => "application/json-patch+json",
        }
    }
}

/// An object reference whose every part has been checked: the only way to name an
/// object in a write.
#[derive(Debug, Clone)]
pub struct ObjectRef {
    kind: Kind,
    /// `None` for cluster-scoped kinds; always set for namespaced ones.
    namespace: Option<String>,
    name: String,
}

impl ObjectRef {
    /// Check kind, namespace and name. A namespaced kind needs a namespace; a
    /// cluster-scoped one ignores it.
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str) -> Result<ObjectRef, NameError> {
        check_kind(&kind)?;
        names::check_name(
            names::rule_for(&kind.resource.group, &kind.resource.kind),
            name,
        )?;
        let namespace = if kind.namespaced() {
            let ns = namespace.unwrap_or("");
            names::check_namespace(ns)?;
            Some(ns.to_string())
        } else {
            None
        };
        Ok(ObjectRef {
            kind,
            namespace,
            name: name.to_string(),
        })
    }

    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Deployment shop/web`.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind.resource.kind, self.name),
            None => format!("{} {}", self.kind.resource.kind, self.name),
        }
    }

    /// The collection path: `/apis/apps/v1/namespaces/shop/deployments`.
    pub fn collection_path(&self) -> String {
        let r = &self.kind.resource;
        let mut p = if r.group.is_empty() {
            format!("/api/{}", encode_segment(&r.version))
        } else {
            format!(
                "/apis/{}/{}",
                encode_segment(&r.group),
                encode_segment(&r.version)
            )
        };
        if let Some(ns) = &self.namespace {
            p.push_str("/namespaces/");
            p.push_str(&encode_segment(ns));
        }
        p.push('/');
        p.push_str(&encode_segment(&r.plural));
        p
    }

    /// The object path: the collection path and the encoded name.
    pub fn path(&self) -> String {
        format!("{}/{}", self.collection_path(), encode_segment(&self.name))
    }
}

/// A kind's group, version and plural end up in the path too; discovery data comes
/// from the cluster (custom resources) and a manifest's apiVersion from the model.
pub fn check_kind(kind: &Kind) -> Result<(), NameError> {
    let r = &kind.resource;
    names::check_group(&r.group)?;
    names::check_version(&r.version)?;
    // Reads (kube's `Api`) build their paths from `api_version`, not group and version.
    names::check_api_version(&r.api_version, &r.group, &r.version)?;
    names::check_plural(&r.plural)
}

/// What a write does to its object.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Server-side apply, conflicts forced (the user approves the resulting diff,
    /// whoever owned the fields before).
    Apply(Value),
    Patch(PatchType, Value),
    Create(Value),
    /// Delete in the background, only if the object still has this resourceVersion.
    Delete {
        resource_version: Option<String>,
    },
}

/// One write, ready to be built into a request.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub target: ObjectRef,
    pub op: WriteOp,
    pub dry_run: bool,
}

/// Building a request failed (a body that does not serialise).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the request for {target}: {message}")]
pub struct BuildError {
    pub target: String,
    pub message: String,
}

impl WriteRequest {
    /// The HTTP request, path relative to the API server. Pure: unit-tested without a
    /// client.
    pub fn to_http(&self) -> Result<Request<Vec<u8>>, BuildError> {
        let fail = |message: String| BuildError {
            target: self.target.label(),
            message,
        };
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !matches!(self.op, WriteOp::Delete { .. }) {
            q.append_pair("fieldManager", FIELD_MANAGER);
        }
        if matches!(self.op, WriteOp::Apply(_)) {
            q.append_pair("force", "true");
        }
        if self.dry_run {
            q.append_pair("dryRun", "All");
        }
        let query = q.finish();
        let with_query = |path: String| {
            if query.is_empty() {
                path
            } else {
                format!("{path}?{query}")
            }
        };
        let to_bytes = |v: &Value| serde_json::to_vec(v).map_err(|e| fail(e.to_string()));
        let (method, uri, content_type, body) = match &self.op {
            WriteOp::Apply(b) => (
                Method::PATCH,
                with_query(self.target.path()),
                "application/apply-patch+yaml",
                to_bytes(b)?,
            ),
            WriteOp::Patch(pt, b) => (
                Method::PATCH,
                with_query(self.target.path()),
                pt.content_type(),
                to_bytes(b)?,
            ),
            WriteOp::Create(b) => (
                Method::POST,
                with_query(self.target.collection_path()),
                "application/json",
                to_bytes(b)?,
            ),
            WriteOp::Delete { resource_version } => {
                let mut opts = json!({
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "propagationPolicy": "Background",
                });
                if let Some(rv) = resource_version {
                    opts["preconditions"] = json!({ "resourceVersion": rv });
                }
                if self.dry_run {
                    opts["dryRun"] = json!(["All"]);
                }
                (
                    Method::DELETE,
                    with_query(self.target.path()),
                    "application/json",
                    to_bytes(&opts)?,
                )
            }
        };
        Request::builder()
            .method(method)
            .uri(uri)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .map_err(|e| fail(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::discovery::{ApiCapabilities, ApiResource, Scope};

    fn kind<K: kube::Resource<DynamicType = ()>>(namespaced: bool) -> Kind {
        Kind {
            resource: ApiResource::erase::<K>(&()),
            caps: ApiCapabilities {
                scope: if namespaced {
                    Scope::Namespaced
                } else {
                    Scope::Cluster
                },
                subresources: vec![],
                operations: vec![],
            },
        }
    }

    fn web() -> ObjectRef {
        ObjectRef::new(kind::<Deployment>(true), Some("shop"), "web").unwrap()
    }

    #[test]
    fn paths_and_queries() {
        let r = WriteRequest {
            target: web(),
            op: WriteOp::Patch(PatchType::Json, json!([])),
            dry_run: true,
        }
        .to_http()
        .unwrap();
        assert_eq!(r.method(), Method::PATCH);
        assert_eq!(
            r.uri().to_string(),
            "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=kai&dryRun=All"
        );
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json-patch+json");

        let r = WriteRequest {
            target: web(),
            op: WriteOp::Apply(json!({})),
            dry_run: false,
        }
        .to_http()
        .unwrap();
        assert_eq!(
            r.uri().to_string(),
            "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=kai&force=true"
        );

        let r = WriteRequest {
            target: web(),
            op: WriteOp::Create(json!({"kind": "Deployment"})),
            dry_run: true,
        }
        .to_http()
        .unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri().path(), "/apis/apps/v1/namespaces/shop/deployments");

        let ns = ObjectRef::new(kind::<Namespace>(false), Some("ignored"), "shop").unwrap();
        let r = WriteRequest {
            target: ns,
            op: WriteOp::Delete {
                resource_version: Some("42".into()),
            },
            dry_run: true,
        }
        .to_http()
        .unwrap();
        assert_eq!(r.method(), Method::DELETE);
        assert_eq!(r.uri().to_string(), "/api/v1/namespaces/shop?dryRun=All");
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["preconditions"]["resourceVersion"], "42");
        assert_eq!(body["dryRun"], json!(["All"]));
    }

    #[test]
    fn hostile_names_never_make_a_request() {
        for (ns, name) in [
            ("shop", "web#x"),
            ("shop", "web?dryRun=None"),
            ("shop#", "web"),
            ("shop/../kube-system", "web"),
            ("", "web"),
            ("shop", "../../secrets"),
        ] {
            assert!(
                ObjectRef::new(kind::<Deployment>(true), Some(ns), name).is_err(),
                "{ns:?} {name:?}"
            );
        }
        // A hostile apiVersion taken from a manifest.
        let mut k = kind::<Deployment>(true);
        k.resource.version = "v1#".into();
        assert!(ObjectRef::new(k, Some("shop"), "web").is_err());
        // `apiVersion: /v1` on a core kind: group "" and version v1 pass on their own.
        let mut k = kind::<Namespace>(false);
        k.resource.api_version = "/v1".into();
        assert!(ObjectRef::new(k, None, "shop").is_err());
    }
}
