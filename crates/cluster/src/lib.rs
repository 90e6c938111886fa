//! The cluster: connecting through a kubeconfig, resolving kinds through discovery,
//! and turning API failures into errors a user (or the model) can act on.
//!
//! Reading objects, describe-style summaries, logs and events live in submodules; all of
//! their text output passes through [`kai_text::redact`] before it leaves this module.
//! A turn's reads of a namespace share one [`NamespaceView`]'s lists (each kind listed
//! once), through [`TurnReads`].
//!
//! This is the only crate with a Kubernetes client, and the client is private: the
//! crates above get typed reads ([`Cluster::list_namespaced`], [`Cluster::get_dynamic`],
//! the view) and the gated writes, never the client itself.

pub mod crds;
pub mod describe;
pub mod events;
pub mod fetch;
pub mod gate;
mod kinds;
pub mod listing;
pub mod logs;
pub mod names;
pub mod objects;
pub mod turn;
pub mod view;
pub mod write;

pub use kai_text::budget;
pub use kai_text::suggest::{edit_distance, suggest};
pub use turn::TurnReads;
pub use view::{NamespaceView, ReadError, Res};

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::Client;
use tokio::sync::OnceCell;

use gate::{GateState, WriteGateLayer};
use names::NameError;
use write::{BuildError, WriteRequest};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no kubeconfig found ({0}); set KUBECONFIG or pass --kubeconfig, or try `kai demo` for a local test cluster")]
    NoKubeconfig(String),
    #[error("kube context {0:?} does not exist in the kubeconfig (contexts: {1})")]
    UnknownContext(String, String),
    #[error("cannot reach the Kubernetes API server at {url}: {message}; check the cluster is up and the context is right")]
    Unreachable { url: String, message: String },
    #[error(
        "forbidden: {message} (RBAC: ask for `{verb}` on `{resource}` or use another context)"
    )]
    Forbidden {
        verb: String,
        resource: String,
        message: String,
    },
    #[error("unauthorized: the API server rejected kai's credentials ({0}); refresh your kubeconfig credentials")]
    Unauthorized(String),
    #[error("{kind} {name:?} not found{ns}", ns = .namespace.as_ref().map(|n| format!(" in namespace {n:?}")).unwrap_or_default())]
    NotFound {
        kind: String,
        name: String,
        namespace: Option<String>,
    },
    #[error("unknown kind {kind:?}{hint}", hint = if .suggestions.is_empty() { String::new() } else { format!("; did you mean {}?", .suggestions.join(", ")) })]
    UnknownKind {
        kind: String,
        suggestions: Vec<String>,
    },
    #[error("{0}; nothing was sent to the cluster")]
    InvalidName(#[from] NameError),
    #[error("the API server refused the request: {0}")]
    Api(String),
    #[error("{0}")]
    Other(String),
}

impl ClusterError {
    /// Classify a kube error for the request `verb` on `resource`.
    pub fn from_kube(e: kube::Error, verb: &str, resource: &str) -> Self {
        match e {
            kube::Error::Api(status) => match status.code {
                403 => ClusterError::Forbidden {
                    verb: verb.to_string(),
                    resource: resource.to_string(),
                    message: status.message.clone(),
                },
                401 => ClusterError::Unauthorized(status.message.clone()),
                404 => ClusterError::Api(if status.message.is_empty() {
                    format!("{resource} not found")
                } else {
                    status.message.clone()
                }),
                _ => ClusterError::Api(format!("{} ({})", status.message, status.reason)),
            },
            kube::Error::HyperError(err) => ClusterError::Unreachable {
                url: String::new(),
                message: err.to_string(),
            },
            kube::Error::Service(err) => ClusterError::Unreachable {
                url: String::new(),
                message: err.to_string(),
            },
            other => ClusterError::Other(other.to_string()),
        }
    }

    pub fn is_forbidden(&self) -> bool {
        matches!(self, ClusterError::Forbidden { .. })
    }
}

/// How to connect: all optional, kubectl semantics.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// A resolved kind: what discovery says about it.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub caps: ApiCapabilities,
}

impl Kind {
    pub fn namespaced(&self) -> bool {
        self.caps.scope == Scope::Namespaced
    }
}

/// A connected cluster for one session.
pub struct Cluster {
    /// Private: every request goes through this crate (see the crate docs).
    client: Client,
    /// The namespace used when a tool call names none (`-n`, else the context's).
    pub default_namespace: String,
    pub context: String,
    /// The kubeconfig user of the context, for the audit log (None when unknown).
    pub user: Option<String>,
    pub server_url: String,
    discovery: OnceCell<Discovery>,
    /// `v1.20`, once asked (for "this cluster (v1.20) does not serve ...").
    version: OnceCell<String>,
    /// The approvals the write gate in this cluster's client honours.
    gate: Arc<GateState>,
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Refused(#[from] gate::Refused),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

impl WriteError {
    /// The API server's answer, when the write reached it and it said no.
    pub fn api_status(&self) -> Option<&kube::core::Status> {
        match self {
            WriteError::Kube(e) => api_status(e),
            _ => None,
        }
    }
}

/// What the API server answered to a failed request (code, reason, message); `None`
/// when it did not answer (network, TLS, a client-side failure). Lets the crates above
/// judge an API answer without depending on the Kubernetes client themselves.
pub fn api_status(e: &kube::Error) -> Option<&kube::core::Status> {
    match e {
        kube::Error::Api(s) => Some(s),
        _ => None,
    }
}

/// A real (not dry-run) write the user approved: the exact request, with the approval
/// the gate checks. Only [`Cluster::approve`] makes one; [`Cluster::send_approved`]
/// consumes it.
#[derive(Debug)]
pub struct ApprovedWrite {
    request: http::Request<Vec<u8>>,
}

/// kubectl's short names for built-in kinds (discovery in kube-rs does not expose them).
const ALIASES: &[(&str, &str)] = &[
    ("po", "pods"),
    ("svc", "services"),
    ("deploy", "deployments"),
    ("ds", "daemonsets"),
    ("sts", "statefulsets"),
    ("rs", "replicasets"),
    ("cm", "configmaps"),
    ("ns", "namespaces"),
    ("no", "nodes"),
    ("pvc", "persistentvolumeclaims"),
    ("pv", "persistentvolumes"),
    ("ing", "ingresses"),
    ("sa", "serviceaccounts"),
    ("cj", "cronjobs"),
    ("ep", "endpoints"),
    ("ev", "events"),
    ("hpa", "horizontalpodautoscalers"),
    ("sc", "storageclasses"),
    ("crd", "customresourcedefinitions"),
    ("netpol", "networkpolicies"),
    ("pdb", "poddisruptionbudgets"),
    ("limits", "limitranges"),
    ("quota", "resourcequotas"),
];

impl Cluster {
    /// Connect using kubectl's rules: `--kubeconfig`, else `KUBECONFIG`, else
    /// `~/.kube/config` (resolved by the caller into `opts.kubeconfig`).
    pub async fn connect(opts: &ConnectOptions) -> Result<Cluster, ClusterError> {
        kai_text::init_crypto();
        let kubeconfig = match &opts.kubeconfig {
            Some(path) => {
                // KUBECONFIG may be a list; kube merges them.
                let mut merged: Option<Kubeconfig> = None;
                for p in std::env::split_paths(path) {
                    let kc = Kubeconfig::read_from(&p)
                        .map_err(|e| ClusterError::NoKubeconfig(format!("{}: {e}", p.display())))?;
                    merged = Some(match merged {
                        None => kc,
                        Some(m) => m
                            .merge(kc)
                            .map_err(|e| ClusterError::NoKubeconfig(e.to_string()))?,
                    });
                }
                merged.ok_or_else(|| ClusterError::NoKubeconfig("empty KUBECONFIG".into()))?
            }
            None => Kubeconfig::read().map_err(|e| ClusterError::NoKubeconfig(e.to_string()))?,
        };
        let context = opts
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .ok_or_else(|| {
                ClusterError::NoKubeconfig(
                    "the kubeconfig has no current-context; pass --context".into(),
                )
            })?;
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let names: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
            return Err(ClusterError::UnknownContext(context, names.join(", ")));
        }
        let user = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.user.clone())
            .filter(|u| !u.is_empty());
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| ClusterError::NoKubeconfig(e.to_string()))?;
        let default_namespace = opts
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        // `-n` (or the context's namespace) goes into every request path.
        names::check_namespace(&default_namespace)?;
        let mut cluster = Cluster::from_config(config, &default_namespace, &context)?;
        cluster.user = user;
        Ok(cluster)
    }

    /// A cluster from a client configuration (tests, the demo, benchmarks). Every
    /// client kai builds goes through here, so every one has the write gate.
    pub fn from_config(
        config: kube::Config,
        default_namespace: &str,
        context: &str,
    ) -> Result<Cluster, ClusterError> {
        kai_text::init_crypto();
        let server_url = config.cluster_url.to_string();
        let gate = Arc::new(GateState::default());
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| ClusterError::Unreachable {
                url: server_url.clone(),
                message: e.to_string(),
            })?
            .with_layer(&WriteGateLayer {
                state: gate.clone(),
            })
            .build();
        Ok(Cluster {
            client,
            default_namespace: default_namespace.to_string(),
            context: context.to_string(),
            user: None,
            server_url,
            discovery: OnceCell::new(),
            version: OnceCell::new(),
            gate,
        })
    }

    /// Send a dry-run write (`dryRun=All`); the object the server would store, `None`
    /// for a deletion.
    pub async fn dry_run(&self, req: &WriteRequest) -> Result<Option<Value>, WriteError> {
        if !req.dry_run {
            return Err(gate::Refused(format!(
                "{} was passed as a dry run but is not one",
                req.target.label()
            ))
            .into());
        }
        let http = req.to_http()?;
        self.send_checked(http, matches!(req.op, write::WriteOp::Delete { .. }))
            .await
    }

    /// Mint the approval for this exact (non-dry-run) request. Call only after the user
    /// approved the diff this request produces.
    pub fn approve(&self, req: &WriteRequest) -> Result<ApprovedWrite, WriteError> {
        if req.dry_run {
            return Err(gate::Refused(format!(
                "a dry run of {} needs no approval",
                req.target.label()
            ))
            .into());
        }
        let mut request = req.to_http()?;
        let token = self.gate.approve(&request);
        request.extensions_mut().insert(token);
        Ok(ApprovedWrite { request })
    }

    /// Send an approved write.
    pub async fn send_approved(&self, w: ApprovedWrite) -> Result<Option<Value>, WriteError> {
        let delete = w.request.method() == http::Method::DELETE;
        self.send_checked(w.request, delete).await
    }

    async fn send_checked(
        &self,
        http: http::Request<Vec<u8>>,
        delete: bool,
    ) -> Result<Option<Value>, WriteError> {
        self.gate.check_outgoing(&http)?;
        let v: Value = self.client.request(http).await?;
        Ok(if delete { None } else { Some(v) })
    }

    /// Requests the write gate refused in this process (tests, diagnostics).
    pub fn refused_writes(&self) -> Vec<String> {
        self.gate.refused()
    }

    /// Check the API server answers, so an unreachable cluster is reported up front.
    pub async fn ping(&self) -> Result<String, ClusterError> {
        match self.client.apiserver_version().await {
            Ok(v) => {
                let _ = self.version.set(short_version(&v));
                Ok(v.git_version)
            }
            Err(kube::Error::Api(status)) if status.code == 401 => {
                Err(ClusterError::Unauthorized(status.message.clone()))
            }
            // A 403 on /version still proves the server is there.
            Err(kube::Error::Api(status)) if status.code == 403 => Ok("unknown".into()),
            Err(e) => Err(ClusterError::Unreachable {
                url: self.server_url.clone(),
                message: e.to_string(),
            }),
        }
    }

    /// The server's version as `v1.20` (`an unknown version` when it will not say).
    pub async fn server_version(&self) -> String {
        self.version
            .get_or_init(|| async {
                match self.client.apiserver_version().await {
                    Ok(v) => short_version(&v),
                    Err(_) => "an unknown version".into(),
                }
            })
            .await
            .clone()
    }

    /// The client itself, for tests that must reach the write gate below kai's own
    /// request building. Not in normal builds: only this crate holds a client.
    #[cfg(feature = "test-util")]
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn discovery(&self) -> Result<&Discovery, ClusterError> {
        self.discovery
            .get_or_try_init(|| async {
                // run(), not run_aggregated(): aggregated discovery needs Kubernetes 1.26+.
                Discovery::new(self.client.clone())
                    .run()
                    .await
                    .map_err(|e| ClusterError::from_kube(e, "list", "API discovery"))
            })
            .await
    }

    /// Resolve `kind` the way kubectl does (well-known kinds without discovery): Kind, plural, singular, short name, or
    /// `kind.group`, case-insensitively; core and apps win over same-named CRDs.
    pub async fn resolve(&self, kind: &str) -> Result<Kind, ClusterError> {
        if let Some(k) = kinds::builtin(kind) {
            return Ok(k);
        }
        let discovery = self.discovery().await?;
        let wanted = kind.trim().to_ascii_lowercase();
        let (wanted, group) = match wanted.split_once('.') {
            Some((k, g)) => (k.to_string(), Some(g.to_string())),
            None => (wanted, None),
        };
        let wanted = ALIASES
            .iter()
            .find(|(a, _)| *a == wanted)
            .map(|(_, p)| p.to_string())
            .unwrap_or(wanted);
        let mut best: Option<(u8, Kind)> = None;
        let mut all_kinds = Vec::new();
        for g in discovery.groups() {
            if let Some(want_group) = &group {
                if !g.name().eq_ignore_ascii_case(want_group)
                    && !g.name().starts_with(want_group.as_str())
                {
                    continue;
                }
            }
            // The group's preferred version, then the kinds only an older version has:
            // a 1.20 server prefers batch/v1, which has Jobs, and serves CronJobs at
            // batch/v1beta1 only.
            let mut resources = g.recommended_resources();
            for (ar, caps) in g.resources_by_stability() {
                if !resources.iter().any(|(r, _)| r.kind == ar.kind) {
                    resources.push((ar, caps));
                }
            }
            for (ar, caps) in resources {
                all_kinds.push(ar.kind.clone());
                let singular = ar.kind.to_ascii_lowercase();
                if singular == wanted
                    || ar.plural == wanted
                    || ar.plural.trim_end_matches('s') == wanted
                {
                    // Prefer the core group, then apps, then anything else.
                    let rank = match g.name() {
                        "" => 0,
                        "apps" => 1,
                        // Deprecated copies (Ingress, NetworkPolicy...) of kinds that
                        // networking.k8s.io and apps serve in their current shape.
                        "extensions" => 4,
                        n if n.ends_with(".k8s.io") || !n.contains('.') => 2,
                        _ => 3,
                    };
                    if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                        best = Some((rank, Kind { resource: ar, caps }));
                    }
                }
            }
        }
        match best {
            Some((_, k)) => Ok(k),
            None => {
                all_kinds.sort();
                all_kinds.dedup();
                let suggestions = suggest(&wanted, &all_kinds);
                Err(ClusterError::UnknownKind {
                    kind: kind.to_string(),
                    suggestions,
                })
            }
        }
    }

    /// The namespace a call means: an explicit one, else the session default. Not
    /// checked: use [`Cluster::checked_namespace`] for anything from outside.
    fn namespace<'a>(&'a self, ns: Option<&'a str>) -> &'a str {
        match ns {
            Some(n) if !n.is_empty() => n,
            _ => &self.default_namespace,
        }
    }

    /// The namespace a call means, checked against the naming rules (it goes into
    /// request paths): an explicit one, else the session default.
    pub fn checked_namespace(&self, ns: Option<&str>) -> Result<String, ClusterError> {
        let ns = self.namespace(ns);
        names::check_namespace(ns)?;
        Ok(ns.to_string())
    }

    /// Like [`Cluster::checked_namespace`], but `*` (all namespaces) is allowed: for
    /// lists only.
    pub fn list_namespace(&self, ns: Option<&str>) -> Result<String, ClusterError> {
        match ns {
            Some("*") => Ok("*".into()),
            other => self.checked_namespace(other),
        }
    }

    /// Check an object name under its kind's naming rule before it goes into a path.
    pub fn check_name(kind: &Kind, name: &str) -> Result<(), ClusterError> {
        write::check_kind(kind)?;
        names::check_name(
            names::rule_for(&kind.resource.group, &kind.resource.kind),
            name,
        )?;
        Ok(())
    }

    /// The `K`s in namespace `ns` (checked: it goes into the path): one list request, of
    /// at most `limit` objects when given.
    pub async fn list_namespaced<K>(
        &self,
        ns: &str,
        limit: Option<u32>,
    ) -> Result<Vec<K>, ClusterError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        names::check_namespace(ns)?;
        let mut lp = kube::api::ListParams::default();
        if let Some(n) = limit {
            lp = lp.limit(n);
        }
        Api::<K>::namespaced(self.client.clone(), ns)
            .list(&lp)
            .await
            .map(|l| l.items)
            .map_err(|e| {
                let what = view::describe_resource(&K::plural(&()), &K::group(&()), true, Some(ns));
                ClusterError::from_kube(e, "list", &what)
            })
    }

    /// The cluster-scoped `K`s (StorageClasses, IngressClasses, ...): one list request, of
    /// at most `limit` objects when given.
    pub async fn list_cluster_scoped<K>(&self, limit: Option<u32>) -> Result<Vec<K>, ClusterError>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let mut lp = kube::api::ListParams::default();
        if let Some(n) = limit {
            lp = lp.limit(n);
        }
        Api::<K>::all(self.client.clone())
            .list(&lp)
            .await
            .map(|l| l.items)
            .map_err(|e| {
                let what = view::describe_resource(&K::plural(&()), &K::group(&()), false, None);
                ClusterError::from_kube(e, "list", &what)
            })
    }

    /// One object of any kind by name, `None` when it does not exist. The kind, the
    /// namespace and the name are checked: they go into the path.
    pub async fn get_dynamic(
        &self,
        kind: &Kind,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<DynamicObject>, ClusterError> {
        Cluster::check_name(kind, name)?;
        let api = self.api(kind, ns)?;
        let ns = if kind.namespaced() {
            self.list_namespace(ns)?
        } else {
            String::new()
        };
        api.get_opt(name)
            .await
            .map_err(|e| ClusterError::from_kube(e, "get", &objects::resource_desc(kind, &ns)))
    }

    /// The live object a change is planned against (`None`: it does not exist). The
    /// error keeps the API server's answer ([`WriteError::api_status`]), which the change
    /// pipeline judges the way it judges a write's.
    pub async fn read_target(
        &self,
        target: &write::ObjectRef,
    ) -> Result<Option<DynamicObject>, WriteError> {
        let api = self
            .api(target.kind(), target.namespace())
            .map_err(|e| BuildError {
                target: target.label(),
                message: e.to_string(),
            })?;
        Ok(api.get_opt(target.name()).await?)
    }

    /// A dynamic API handle for `kind` in `ns` (ignored for cluster-scoped kinds);
    /// `ns == Some("*")` means all namespaces.
    /// The kind and the namespace are checked: both end up in request paths.
    pub(crate) fn api(
        &self,
        kind: &Kind,
        ns: Option<&str>,
    ) -> Result<Api<DynamicObject>, ClusterError> {
        write::check_kind(kind)?;
        if !kind.namespaced() {
            return Ok(Api::all_with(self.client.clone(), &kind.resource));
        }
        Ok(match self.list_namespace(ns)?.as_str() {
            "*" => Api::all_with(self.client.clone(), &kind.resource),
            ns => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
        })
    }
}

/// `v1.20` from what `/version` says (`minor` may carry a `+`, as on EKS).
fn short_version(v: &k8s_openapi::apimachinery::pkg::version::Info) -> String {
    let minor: String = v.minor.chars().take_while(char::is_ascii_digit).collect();
    if v.major.is_empty() || minor.is_empty() {
        v.git_version.clone()
    } else {
        format!("v{}.{minor}", v.major)
    }
}
