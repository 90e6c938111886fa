//! One read of a namespace per turn: a [`NamespaceView`] lists each kind at most once,
//! when first needed, and every reader of the turn — pre-gathering's target search,
//! describe, the analyzers' snapshot, events — takes what it needs from there.
//!
//! A reader asks for what it needs (one object, the pods a selector picks, the events
//! about one object); the view answers from its list of that kind when the turn has
//! said it wants the whole list ([`NamespaceView::want`]) and the list was read, and
//! with a narrow request (a GET, a `labelSelector` or `fieldSelector` list) otherwise.
//! So a single `describe` call costs what it always did, and a pre-gathered turn lists
//! each kind once, all kinds concurrently. A fresh view is a fresh read: build a new one
//! to refresh; the views [`TurnReads`](crate::turn::TurnReads) hands out for one turn
//! share what they read.
//!
//! Nothing a read could not do is turned into an empty answer: a list that failed is
//! kept as its [`ReadError`] (forbidden, not served by this cluster, unreachable), and
//! each reader says what it could not read. A kind this server does not serve at the
//! version kai compiles against (batch/v1 CronJob before Kubernetes 1.21) is read at the
//! older version it does serve, with a note saying so.
//!
//! Adding a kind to what the analyzers read (all additive): a field in kai-analyze's
//! `Snapshot`, a [`Res`] variant (and in [`Res::ANALYZERS`]), a line in the `listable!`
//! table and in `NamespaceView::load_one`, the field in `fetch::build`, and, when 1.20
//! serves the kind only at an older version of its group, a row in `OLDER`. A server
//! that does not serve the kind at all then gets a note, not an error.
//!
//! Every list the view (and so the analyzers) makes goes through one pager ([`pages`]):
//! bounded pages, the continue token, objects trimmed as each page arrives.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Node, PersistentVolumeClaim, Pod, ResourceQuota,
    Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use kai_analyze::selector::Selector;
use kai_analyze::snapshot::KeysOnly;

use super::{Cluster, ClusterError};

mod keep;

use keep::{configmap_keys, secret_keys, trim};

/// Objects per page.
const PAGE: u32 = 500;
/// Pages per kind before giving up: 200 × 500 objects is far past any sane namespace.
const MAX_PAGES: usize = 200;

/// Annotation holding a full copy of the applied manifest: as large as the object itself
/// and read by nobody.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Kinds whose version kai compiles against is newer than the oldest Kubernetes kai
/// supports (1.20; k8s-openapi offers nothing that old), with the older version of the
/// same group such a server serves instead, and whether reading it there gets a note.
/// Only versions whose objects read as the newer type (the newer one only added fields)
/// belong here; a kind not here that a server does not serve is left out of the read,
/// with a note saying so.
const OLDER: &[Older] = &[
    // batch/v1 CronJob is Kubernetes 1.21+.
    Older {
        res: Res::CronJobs,
        version: "v1beta1",
        noted: true,
    },
    // autoscaling/v2 is 1.23+ and policy/v1 1.21+. Their older versions carry every field
    // the rules read, and kai always read them there without a note: one on every scan of
    // a 1.20–1.22 cluster would say nothing the reader can act on.
    Older {
        res: Res::HorizontalPodAutoscalers,
        version: "v2beta2",
        noted: false,
    },
    Older {
        res: Res::PodDisruptionBudgets,
        version: "v1beta1",
        noted: false,
    },
];

/// A row of [`OLDER`].
struct Older {
    res: Res,
    version: &'static str,
    noted: bool,
}

/// The kinds a view lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Res {
    Pods,
    Deployments,
    ReplicaSets,
    StatefulSets,
    DaemonSets,
    Jobs,
    CronJobs,
    Services,
    Endpoints,
    Ingresses,
    PersistentVolumeClaims,
    Events,
    ConfigMaps,
    Secrets,
    Nodes,
    StorageClasses,
    ServiceAccounts,
    Roles,
    RoleBindings,
    ClusterRoles,
    ClusterRoleBindings,
    NetworkPolicies,
    HorizontalPodAutoscalers,
    PodDisruptionBudgets,
    ResourceQuotas,
    LimitRanges,
    IngressClasses,
}

impl Res {
    /// What a question may name (pre-gathering's target search).
    pub const WORKLOADS: &'static [Res] = &[
        Res::Deployments,
        Res::StatefulSets,
        Res::DaemonSets,
        Res::ReplicaSets,
        Res::Pods,
        Res::Services,
        Res::Jobs,
        Res::CronJobs,
    ];

    /// Everything the analyzers read.
    pub const ANALYZERS: &'static [Res] = &[
        Res::Pods,
        Res::Deployments,
        Res::ReplicaSets,
        Res::StatefulSets,
        Res::DaemonSets,
        Res::Jobs,
        Res::CronJobs,
        Res::Services,
        Res::Endpoints,
        Res::Ingresses,
        Res::PersistentVolumeClaims,
        Res::Events,
        Res::ConfigMaps,
        Res::Secrets,
        Res::Nodes,
        Res::StorageClasses,
        Res::ServiceAccounts,
        Res::Roles,
        Res::RoleBindings,
        Res::ClusterRoles,
        Res::ClusterRoleBindings,
        Res::NetworkPolicies,
        Res::HorizontalPodAutoscalers,
        Res::PodDisruptionBudgets,
        Res::ResourceQuotas,
        Res::LimitRanges,
        Res::IngressClasses,
    ];
}

/// What a read could not do. Every reader shows it; none turns it into "nothing there".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// HTTP 403.
    Forbidden {
        verb: String,
        /// Plural resource name as RBAC names it (`deployments`, `pods/log`).
        resource: String,
        /// `None` for cluster-scoped kinds and all-namespace reads.
        namespace: Option<String>,
        /// The resource in words: `deployments.apps in namespace "shop"`.
        what: String,
        message: String,
    },
    /// The API path answered 404: this server does not serve the kind at that version.
    NotServed {
        /// `batch/v1 CronJob`
        api: String,
        /// `v1.20`
        server: String,
        /// What kai does instead.
        instead: String,
    },
    /// Anything else: the server unreachable, credentials rejected, a server error.
    Failed {
        verb: String,
        what: String,
        message: String,
        /// The HTTP status when the server answered.
        status: Option<u16>,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotServed {
                api,
                server,
                instead,
            } => write!(f, "this cluster ({server}) does not serve {api}; {instead}"),
            ReadError::Failed {
                verb,
                what,
                message,
                status,
            } => match status {
                None => write!(
                    f,
                    "could not {verb} {what}: cannot reach the Kubernetes API server: {message}"
                ),
                Some(_) => write!(f, "could not {verb} {what}: {message}"),
            },
            // The words every other forbidden answer of kai uses.
            ReadError::Forbidden { .. } => {
                std::fmt::Display::fmt(&ClusterError::from(self.clone()), f)
            }
        }
    }
}

impl std::error::Error for ReadError {}

impl ReadError {
    /// Classify a failed request `verb` on `resource` (plural, RBAC's name) described as
    /// `what`.
    pub(crate) fn from_kube(
        e: kube::Error,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
        what: &str,
    ) -> ReadError {
        match e {
            kube::Error::Api(s) if s.code == 403 => ReadError::Forbidden {
                verb: verb.to_string(),
                resource: resource.to_string(),
                namespace: namespace.map(str::to_string),
                what: what.to_string(),
                message: s.message.clone(),
            },
            kube::Error::Api(s) => ReadError::Failed {
                verb: verb.to_string(),
                what: what.to_string(),
                message: if s.reason.is_empty() {
                    s.message.clone()
                } else {
                    format!("{} ({})", s.message, s.reason)
                },
                status: Some(s.code),
            },
            other => ReadError::Failed {
                verb: verb.to_string(),
                what: what.to_string(),
                message: other.to_string(),
                status: None,
            },
        }
    }

    pub fn is_forbidden(&self) -> bool {
        matches!(self, ReadError::Forbidden { .. })
    }

    /// The credentials were refused (401) or not allowed (403).
    pub fn is_auth(&self) -> bool {
        match self {
            ReadError::Forbidden { .. } => true,
            ReadError::Failed { status, .. } => *status == Some(401),
            ReadError::NotServed { .. } => false,
        }
    }

    /// A few words for a line that names the object already: `forbidden`, or the reason.
    pub fn short(&self) -> String {
        match self {
            ReadError::Forbidden { .. } => "forbidden".into(),
            ReadError::NotServed { api, server, .. } => {
                format!("this cluster ({server}) does not serve {api}")
            }
            ReadError::Failed {
                message, status, ..
            } => match status {
                None => format!("cannot reach the API server: {message}"),
                Some(_) => message.clone(),
            },
        }
    }
}

impl From<ReadError> for ClusterError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Forbidden {
                verb,
                what,
                message,
                ..
            } => ClusterError::Forbidden {
                verb,
                resource: what,
                message,
            },
            ReadError::Failed {
                status: Some(401),
                message,
                ..
            } => ClusterError::Unauthorized(message),
            ReadError::Failed {
                status: None,
                message,
                ..
            } => ClusterError::Unreachable {
                url: String::new(),
                message,
            },
            ReadError::Failed { message, .. } => ClusterError::Api(message),
            not_served @ ReadError::NotServed { .. } => ClusterError::Other(not_served.to_string()),
        }
    }
}

/// A kind's list as the view keeps it.
pub type Listed<T> = Result<Vec<T>, ReadError>;

/// `pods in namespace "shop"`, `deployments.apps in all namespaces`, `nodes`.
pub(crate) fn describe_resource(
    plural: &str,
    group: &str,
    namespaced: bool,
    ns: Option<&str>,
) -> String {
    let group = if group.is_empty() {
        String::new()
    } else {
        format!(".{group}")
    };
    match (namespaced, ns) {
        (false, _) => format!("{plural}{group}"),
        (true, None) => format!("{plural}{group} in all namespaces"),
        (true, Some(ns)) => format!("{plural}{group} in namespace {ns:?}"),
    }
}

/// A kind the view reads.
pub(crate) trait Readable:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    const RES: Res;
    const NAMESPACED: bool;
    fn api(client: &Client, ns: Option<&str>) -> Api<Self>;
}

/// A kind the view keeps as typed objects (ConfigMaps and Secrets it keeps as key names).
pub(crate) trait Listable: Readable {
    fn cell(cells: &Cells) -> &OnceCell<Listed<Self>>;
}

macro_rules! listable {
    ($($ty:ty => $res:ident, $field:ident, $namespaced:tt;)*) => {
        /// One cell per kind: empty until the kind is first listed.
        #[derive(Default)]
        pub(crate) struct Cells {
            $(pub(crate) $field: OnceCell<Listed<$ty>>,)*
            /// Warnings and the claims' events only: the analyzers' events when the turn
            /// does not want the whole list (see [`NamespaceView::load_rule_events`]).
            pub(crate) rule_events: OnceCell<Listed<Event>>,
            pub(crate) configmaps: OnceCell<Listed<KeysOnly>>,
            pub(crate) secrets: OnceCell<Listed<KeysOnly>>,
        }

        /// The lists of a view, taken out for a snapshot (`None`: never read).
        #[derive(Default)]
        pub(crate) struct Lists {
            $(pub(crate) $field: Option<Listed<$ty>>,)*
            pub(crate) rule_events: Option<Listed<Event>>,
            pub(crate) configmaps: Option<Listed<KeysOnly>>,
            pub(crate) secrets: Option<Listed<KeysOnly>>,
        }

        impl Cells {
            fn cloned(&self) -> Lists {
                Lists {
                    $($field: self.$field.get().cloned(),)*
                    rule_events: self.rule_events.get().cloned(),
                    configmaps: self.configmaps.get().cloned(),
                    secrets: self.secrets.get().cloned(),
                }
            }
            fn into_lists(self) -> Lists {
                Lists {
                    $($field: self.$field.into_inner(),)*
                    rule_events: self.rule_events.into_inner(),
                    configmaps: self.configmaps.into_inner(),
                    secrets: self.secrets.into_inner(),
                }
            }
        }

        $(impl Readable for $ty {
            const RES: Res = Res::$res;
            const NAMESPACED: bool = $namespaced;
            listable!(@api $namespaced);
        }
        impl Listable for $ty {
            fn cell(cells: &Cells) -> &OnceCell<Listed<Self>> {
                &cells.$field
            }
        })*
    };
    (@api true) => {
        fn api(client: &Client, ns: Option<&str>) -> Api<Self> {
            match ns {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            }
        }
    };
    (@api false) => {
        fn api(client: &Client, _ns: Option<&str>) -> Api<Self> {
            Api::all(client.clone())
        }
    };
}

listable! {
    Pod => Pods, pods, true;
    Deployment => Deployments, deployments, true;
    ReplicaSet => ReplicaSets, replicasets, true;
    StatefulSet => StatefulSets, statefulsets, true;
    DaemonSet => DaemonSets, daemonsets, true;
    Job => Jobs, jobs, true;
    CronJob => CronJobs, cronjobs, true;
    Service => Services, services, true;
    Endpoints => Endpoints, endpoints, true;
    Ingress => Ingresses, ingresses, true;
    PersistentVolumeClaim => PersistentVolumeClaims, pvcs, true;
    Event => Events, events, true;
    Node => Nodes, nodes, false;
    StorageClass => StorageClasses, storageclasses, false;
    ServiceAccount => ServiceAccounts, service_accounts, true;
    Role => Roles, roles, true;
    RoleBinding => RoleBindings, role_bindings, true;
    ClusterRole => ClusterRoles, cluster_roles, false;
    ClusterRoleBinding => ClusterRoleBindings, cluster_role_bindings, false;
    NetworkPolicy => NetworkPolicies, network_policies, true;
    HorizontalPodAutoscaler => HorizontalPodAutoscalers, hpas, true;
    PodDisruptionBudget => PodDisruptionBudgets, pdbs, true;
    ResourceQuota => ResourceQuotas, resource_quotas, true;
    LimitRange => LimitRanges, limit_ranges, true;
    IngressClass => IngressClasses, ingress_classes, false;
}

impl Readable for ConfigMap {
    const RES: Res = Res::ConfigMaps;
    const NAMESPACED: bool = true;
    listable!(@api true);
}

impl Readable for Secret {
    const RES: Res = Res::Secrets;
    const NAMESPACED: bool = true;
    listable!(@api true);
}

/// The events a rule reads: Warnings, and every event about a PersistentVolumeClaim
/// (the claim rule needs its Normal `WaitForFirstConsumer`).
fn is_rule_event(e: &Event) -> bool {
    e.type_.as_deref() != Some("Normal")
        || e.involved_object.kind.as_deref() == Some("PersistentVolumeClaim")
}

/// A claim the claim rule looks at: Pending, or with no phase yet.
fn is_pending_claim(c: &PersistentVolumeClaim) -> bool {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_none_or(|p| p == "Pending")
}

impl Lists {
    /// The events the analyzers read, after [`NamespaceView::load_rule_events`]: from the
    /// whole list (`whole`), Warnings first and then the claims' Normal events, the order
    /// the two server-filtered lists arrive in; else those two lists.
    pub(crate) fn take_rule_events(&mut self, whole: bool) -> Option<Listed<Event>> {
        if !whole {
            return self.rule_events.take();
        }
        self.events.take().map(|all| {
            let (mut warnings, claims): (Vec<Event>, Vec<Event>) = all?
                .into_iter()
                .filter(is_rule_event)
                .partition(|e| e.type_.as_deref() != Some("Normal"));
            warnings.extend(claims);
            Ok(warnings)
        })
    }
}

/// What the owner walk found through the view.
#[derive(Debug)]
pub(crate) enum OwnerLookup {
    Found(Box<ObjectMeta>),
    Gone,
    /// An owner reference kai will not put into a request path.
    NotLooked,
    Unreadable(ReadError),
}

/// `ns` checked for a request path; `None` (or `*`) is all namespaces.
pub(crate) fn checked_scope(
    cluster: &Cluster,
    ns: Option<&str>,
) -> Result<Option<String>, ClusterError> {
    match ns {
        None | Some("*") => Ok(None),
        Some(n) => cluster.checked_namespace(Some(n)).map(Some),
    }
}

type Loading<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One namespace (or all of them), read at most once per kind.
pub struct NamespaceView<'c> {
    cluster: &'c Cluster,
    /// What this view has read; the views of one turn share it ([`TurnReads`](crate::turn::TurnReads)).
    state: Arc<ViewState>,
}

/// What a [`NamespaceView`] has read, apart from the cluster it reads: so that a turn's
/// later views of the same namespace ([`TurnReads`](crate::turn::TurnReads)) start from what its first read.
pub(crate) struct ViewState {
    /// `None`: all namespaces.
    ns: Option<String>,
    wanted: Mutex<HashSet<Res>>,
    cells: Cells,
    notes: Mutex<Vec<String>>,
    /// Read kinds at the older versions in [`OLDER`] when the server lacks the newer
    /// one (always, except in tests of the path without such a version).
    older_versions: bool,
}

impl ViewState {
    pub(crate) fn new(ns: Option<String>) -> Self {
        ViewState {
            ns,
            wanted: Mutex::default(),
            cells: Cells::default(),
            notes: Mutex::default(),
            older_versions: true,
        }
    }
}

impl<'c> NamespaceView<'c> {
    /// A view of `ns` (`None` or `*`: all namespaces; the namespace is checked, it goes
    /// into request paths). Nothing is read until a reader asks.
    pub fn new(cluster: &'c Cluster, ns: Option<&str>) -> Result<Self, ClusterError> {
        let ns = checked_scope(cluster, ns)?;
        Ok(NamespaceView {
            cluster,
            state: Arc::new(ViewState::new(ns)),
        })
    }

    /// A view reading into `state` (one a turn shares, see [`TurnReads`](crate::turn::TurnReads)).
    pub(crate) fn with_state(cluster: &'c Cluster, state: Arc<ViewState>) -> Self {
        NamespaceView { cluster, state }
    }

    /// This view without the older-version fallback: a kind the server does not serve
    /// at kai's version is left out, as one without an entry in [`OLDER`] is. For tests
    /// of that path against a real (1.20) server.
    #[cfg(feature = "test-util")]
    pub fn without_older_versions(mut self) -> Self {
        // A view fresh from `new` is its state's only owner.
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.older_versions = false;
        }
        self
    }

    pub fn cluster(&self) -> &'c Cluster {
        self.cluster
    }

    /// The namespace, `None` for all namespaces.
    pub fn namespace(&self) -> Option<&str> {
        self.state.ns.as_deref()
    }

    /// The turn needs these kinds whole: readers take them from one list each (read on
    /// first use) instead of making narrow requests.
    pub fn want(&self, kinds: &[Res]) {
        lock(&self.state.wanted).extend(kinds.iter().copied());
    }

    /// [`NamespaceView::want`] these kinds and read them now, concurrently.
    pub async fn load(&self, kinds: &[Res]) {
        self.want(kinds);
        let jobs: Vec<Loading<'_>> = kinds.iter().map(|r| self.load_one(*r)).collect();
        futures::future::join_all(jobs).await;
    }

    fn load_one(&self, res: Res) -> Loading<'_> {
        macro_rules! typed {
            ($ty:ty) => {
                Box::pin(async move {
                    self.list::<$ty>().await;
                })
            };
        }
        match res {
            Res::Pods => typed!(Pod),
            Res::Deployments => typed!(Deployment),
            Res::ReplicaSets => typed!(ReplicaSet),
            Res::StatefulSets => typed!(StatefulSet),
            Res::DaemonSets => typed!(DaemonSet),
            Res::Jobs => typed!(Job),
            Res::CronJobs => typed!(CronJob),
            Res::Services => typed!(Service),
            Res::Endpoints => typed!(Endpoints),
            Res::Ingresses => typed!(Ingress),
            Res::PersistentVolumeClaims => typed!(PersistentVolumeClaim),
            Res::Events => typed!(Event),
            Res::Nodes => typed!(Node),
            Res::StorageClasses => typed!(StorageClass),
            Res::ServiceAccounts => typed!(ServiceAccount),
            Res::Roles => typed!(Role),
            Res::RoleBindings => typed!(RoleBinding),
            Res::ClusterRoles => typed!(ClusterRole),
            Res::ClusterRoleBindings => typed!(ClusterRoleBinding),
            Res::NetworkPolicies => typed!(NetworkPolicy),
            Res::HorizontalPodAutoscalers => typed!(HorizontalPodAutoscaler),
            Res::PodDisruptionBudgets => typed!(PodDisruptionBudget),
            Res::ResourceQuotas => typed!(ResourceQuota),
            Res::LimitRanges => typed!(LimitRange),
            Res::IngressClasses => typed!(IngressClass),
            Res::ConfigMaps => Box::pin(async move {
                self.configmaps().await;
            }),
            Res::Secrets => Box::pin(async move {
                self.secrets().await;
            }),
        }
    }

    pub fn is_wanted(&self, res: Res) -> bool {
        lock(&self.state.wanted).contains(&res)
    }

    /// What the reads could not do as asked, in words (a kind read at an older version).
    pub fn notes(&self) -> Vec<String> {
        lock(&self.state.notes).clone()
    }

    fn note(&self, text: String) {
        let mut notes = lock(&self.state.notes);
        if !notes.contains(&text) {
            notes.push(text);
        }
    }

    /// The lists read so far, copied (other readers may still share the view).
    pub(crate) fn lists(&self) -> Lists {
        self.state.cells.cloned()
    }

    /// The lists read so far, moved out: for a view whose only reader is done with it.
    pub(crate) fn into_lists(self) -> (Lists, Vec<String>, HashSet<Res>) {
        match Arc::try_unwrap(self.state) {
            Ok(state) => {
                let notes = state.notes.into_inner().unwrap_or_else(|p| p.into_inner());
                let wanted = state.wanted.into_inner().unwrap_or_else(|p| p.into_inner());
                (state.cells.into_lists(), notes, wanted)
            }
            // Other views of the turn still read it: a copy.
            Err(shared) => (
                shared.cells.cloned(),
                lock(&shared.notes).clone(),
                lock(&shared.wanted).clone(),
            ),
        }
    }

    // ------------------------------------------------------------------ whole lists

    /// Every `K` in the view, read once.
    pub(crate) async fn list<K: Listable>(&self) -> &Listed<K> {
        lock(&self.state.wanted).insert(K::RES);
        K::cell(&self.state.cells)
            .get_or_init(|| async {
                let listed = self.list_pages::<K, K>(None, None, |o| o).await;
                let older = OLDER
                    .iter()
                    .find(|o| o.res == K::RES)
                    .filter(|_| self.state.older_versions);
                match (listed, older) {
                    (Err(ReadError::NotServed { .. }), Some(o)) => {
                        self.older_version::<K>(o.version, o.noted).await
                    }
                    (Err(e @ ReadError::NotServed { .. }), None) => {
                        self.note(e.to_string());
                        Err(e)
                    }
                    (other, _) => other,
                }
            })
            .await
    }

    /// ConfigMaps reduced to key names, page by page.
    pub(crate) async fn configmaps(&self) -> &Listed<KeysOnly> {
        lock(&self.state.wanted).insert(Res::ConfigMaps);
        self.state
            .cells
            .configmaps
            .get_or_init(|| self.list_pages::<ConfigMap, _>(None, None, configmap_keys))
            .await
    }

    /// Secrets reduced to key names as they arrive: values (Helm release Secrets are
    /// large) never accumulate.
    pub(crate) async fn secrets(&self) -> &Listed<KeysOnly> {
        lock(&self.state.wanted).insert(Res::Secrets);
        self.state
            .cells
            .secrets
            .get_or_init(|| self.list_pages::<Secret, _>(None, None, secret_keys))
            .await
    }

    /// Read the events the analyzers look at (see [`Lists::take_rule_events`]): the
    /// whole list when the turn wants it anyway; otherwise only Warnings and the claims'
    /// events, filtered by the server, as Normal events are nearly all of a busy
    /// cluster's (97% on the benchmark cluster).
    ///
    /// Events have no field index: for a field-selected list the apiserver reads every
    /// event from etcd. Paged, it does so in steps of the page size, again for each page
    /// (2.5 s for 1,108 Warnings among 54,000 events on the benchmark cluster); in one
    /// request it reads them once (≈ 1 s). So these lists are one request each: what
    /// arrives is the matching events only, the few a rule reads. The claims' events are
    /// read only when a claim is Pending (the only claims the claim rule looks at), so a
    /// cluster without one pays for one such scan, not two.
    pub(crate) async fn load_rule_events(&self) {
        if self.is_wanted(Res::Events) {
            self.list::<Event>().await;
            return;
        }
        self.state
            .cells
            .rule_events
            .get_or_init(|| async {
                let claims = async {
                    let pending = match self.list::<PersistentVolumeClaim>().await {
                        Ok(claims) => claims.iter().any(is_pending_claim),
                        // Unknown: read their events anyway.
                        Err(_) => true,
                    };
                    if !pending {
                        return Ok(Vec::new());
                    }
                    self.list_paged::<Event, _>(
                        Paging::Whole,
                        Some("involvedObject.kind=PersistentVolumeClaim"),
                        None,
                        |e| e,
                    )
                    .await
                };
                let (warnings, claims) = tokio::join!(
                    self.list_paged::<Event, _>(Paging::Whole, Some("type!=Normal"), None, |e| e),
                    claims,
                );
                let mut events = warnings?;
                let seen: HashSet<String> = events
                    .iter()
                    .filter_map(|e| e.metadata.uid.clone())
                    .collect();
                events.extend(
                    claims?
                        .into_iter()
                        .filter(|e| e.metadata.uid.as_ref().is_none_or(|u| !seen.contains(u))),
                );
                Ok(events)
            })
            .await;
    }

    // ------------------------------------------------------------------ narrow reads

    /// Whether readers should take `K` from the whole list: wanted, and read fine.
    async fn whole<K: Listable>(&self) -> Option<&Vec<K>> {
        if !self.is_wanted(K::RES) {
            return None;
        }
        self.list::<K>().await.as_ref().ok()
    }

    /// One `K` by name: from the list, else a GET.
    pub(crate) async fn get<K: Listable>(&self, name: &str) -> Result<Option<K>, ReadError> {
        if let Some(all) = self.whole::<K>().await {
            return Ok(all
                .iter()
                .find(|o| o.meta().name.as_deref() == Some(name))
                .cloned());
        }
        let ns = self.state.ns.as_deref().filter(|_| K::NAMESPACED);
        K::api(&self.cluster.client, ns)
            .get_opt(name)
            .await
            .map(|o| o.map(trim))
            .map_err(|e| self.error_for::<K>(e, "get"))
    }

    /// Names of every `K` here, for "did you mean" (at most one page when not listed).
    pub(crate) async fn names<K: Listable>(&self) -> Result<Vec<String>, ReadError> {
        if let Some(all) = self.whole::<K>().await {
            return Ok(all.iter().filter_map(|o| o.meta().name.clone()).collect());
        }
        let ns = self.state.ns.as_deref().filter(|_| K::NAMESPACED);
        K::api(&self.cluster.client, ns)
            .list_metadata(&ListParams::default().limit(PAGE))
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|o| o.metadata.name)
                    .collect()
            })
            .map_err(|e| self.error_for::<K>(e, "list"))
    }

    /// The `K`s `selector` picks: filtered from the list, else listed by the server with
    /// the same selector.
    pub(crate) async fn selected<K: Listable>(&self, selector: &Selector) -> Listed<K> {
        use kai_analyze::selector::SelectorExt;
        if let Some(all) = self.whole::<K>().await {
            let none = BTreeMap::new();
            return Ok(all
                .iter()
                .filter(|o| selector.matches(o.meta().labels.as_ref().unwrap_or(&none)))
                .cloned()
                .collect());
        }
        let labels = selector.to_string();
        self.list_pages::<K, K>(None, Some(&labels), |o| o).await
    }

    /// The events about one object: filtered from the list, else listed by the server
    /// with a field selector.
    pub(crate) async fn events_about(&self, kind: &str, name: &str) -> Listed<Event> {
        let about = |e: &Event| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
        };
        if let Some(all) = self.whole::<Event>().await {
            return Ok(all.iter().filter(|e| about(e)).cloned().collect());
        }
        let fields = format!("involvedObject.kind={kind},involvedObject.name={name}");
        self.list_pages::<Event, _>(Some(&fields), None, |e| e)
            .await
    }

    /// Key names of a Secret or ConfigMap (`secret`: which): from the list, else a GET.
    pub(crate) async fn keys_of(
        &self,
        secret: bool,
        name: &str,
    ) -> Result<Option<BTreeSet<String>>, ReadError> {
        let res = if secret {
            Res::Secrets
        } else {
            Res::ConfigMaps
        };
        if self.is_wanted(res) {
            let listed = if secret {
                self.secrets().await
            } else {
                self.configmaps().await
            };
            if let Ok(all) = listed {
                return Ok(all.iter().find(|k| k.name == name).map(|k| k.keys.clone()));
            }
        }
        let ns = self.state.ns.as_deref().unwrap_or_default();
        let client = self.cluster.client.clone();
        if secret {
            Api::<Secret>::namespaced(client, ns)
                .get_opt(name)
                .await
                .map(|o| o.map(|s| secret_keys(s).keys))
                .map_err(|e| self.error_for::<Secret>(e, "get"))
        } else {
            Api::<ConfigMap>::namespaced(client, ns)
                .get_opt(name)
                .await
                .map(|o| o.map(|c| configmap_keys(c).keys))
                .map_err(|e| self.error_for::<ConfigMap>(e, "get"))
        }
    }

    /// The owner an owner reference names, for the owner walk: from a list when the
    /// turn has one of its kind, else a GET of whatever kind it names.
    pub(crate) async fn owner(&self, o: &OwnerReference) -> OwnerLookup {
        let (group, version) = match o.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), o.api_version.clone()),
        };
        macro_rules! from_list {
            ($ty:ty) => {
                if let Some(all) = self.whole::<$ty>().await {
                    return match all
                        .iter()
                        .find(|x| x.metadata.name.as_deref() == Some(&o.name))
                    {
                        Some(x) => OwnerLookup::Found(Box::new(x.metadata.clone())),
                        None => OwnerLookup::Gone,
                    };
                }
            };
        }
        match (group.as_str(), o.kind.as_str()) {
            ("apps", "ReplicaSet") => from_list!(ReplicaSet),
            ("apps", "Deployment") => from_list!(Deployment),
            ("apps", "StatefulSet") => from_list!(StatefulSet),
            ("apps", "DaemonSet") => from_list!(DaemonSet),
            ("batch", "Job") => from_list!(Job),
            ("batch", "CronJob") => from_list!(CronJob),
            _ => {}
        }
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, &version, &o.kind));
        // Owner references are cluster content: checked like any name before they go
        // into a path.
        let kind = super::Kind {
            resource: ar.clone(),
            caps: kube::discovery::ApiCapabilities {
                scope: kube::discovery::Scope::Namespaced,
                subresources: Vec::new(),
                operations: Vec::new(),
            },
        };
        if Cluster::check_name(&kind, &o.name).is_err() {
            return OwnerLookup::NotLooked;
        }
        let ns = self.state.ns.as_deref().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(self.cluster.client.clone(), ns, &ar);
        match api.get_opt(&o.name).await {
            Ok(Some(obj)) => OwnerLookup::Found(Box::new(obj.metadata)),
            Ok(None) => OwnerLookup::Gone,
            Err(e) => {
                let what = describe_resource(&ar.plural, &ar.group, true, Some(ns));
                OwnerLookup::Unreadable(ReadError::from_kube(e, "get", &ar.plural, Some(ns), &what))
            }
        }
    }

    // ------------------------------------------------------------------ the reading

    fn error_for<K: Readable>(&self, e: kube::Error, verb: &str) -> ReadError {
        let ns = self.state.ns.as_deref().filter(|_| K::NAMESPACED);
        let what = describe_resource(&K::plural(&()), &K::group(&()), K::NAMESPACED, ns);
        ReadError::from_kube(e, verb, &K::plural(&()), ns, &what)
    }

    /// List every `K` (matching the selectors, if given) through [`pages`], turning each
    /// object into a `T` as its page arrives so that only what readers need outlives the
    /// page; a 404 is [`ReadError::NotServed`].
    async fn list_pages<K: Readable, T>(
        &self,
        fields: Option<&str>,
        labels: Option<&str>,
        keep: impl FnMut(K) -> T,
    ) -> Listed<T> {
        self.list_paged(Paging::Pages(PAGE), fields, labels, keep)
            .await
    }

    /// [`NamespaceView::list_pages`] with the paging given.
    async fn list_paged<K: Readable, T>(
        &self,
        paging: Paging,
        fields: Option<&str>,
        labels: Option<&str>,
        keep: impl FnMut(K) -> T,
    ) -> Listed<T> {
        let ns = self.state.ns.as_deref().filter(|_| K::NAMESPACED);
        let api = K::api(&self.cluster.client, ns);
        match pages(&api, paging, fields, labels, keep).await {
            Ok(out) => Ok(out),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(ReadError::NotServed {
                api: format!("{} {}", K::api_version(&()), K::kind(&())),
                server: self.cluster.server_version().await,
                instead: format!("kai leaves {} out of what it reads", K::plural(&())),
            }),
            Err(e) => Err(self.error_for::<K>(e, "list")),
        }
    }

    /// `K` from a server that does not serve it at the version kai compiles against, at
    /// the older `version` of its group that the server does serve (see [`OLDER`]), with
    /// a note saying so when `noted`. The objects are read as `K`: the older versions in
    /// [`OLDER`] only lack fields.
    async fn older_version<K: Listable>(&self, version: &str, noted: bool) -> Listed<K> {
        let server = self.cluster.server_version().await;
        let (group, kind) = (K::group(&()).to_string(), K::kind(&()).to_string());
        let (plural, current) = (K::plural(&()).to_string(), K::api_version(&()).to_string());
        let older = format!("{group}/{version}");
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, version, &kind));
        let ns = self.state.ns.as_deref().filter(|_| K::NAMESPACED);
        let api: Api<DynamicObject> = match ns {
            Some(ns) => Api::namespaced_with(self.cluster.client.clone(), ns, &ar),
            None => Api::all_with(self.cluster.client.clone(), &ar),
        };
        let what = describe_resource(&plural, &group, K::NAMESPACED, ns);
        let not_served = |instead: String| ReadError::NotServed {
            api: format!("{current} {kind}"),
            server: server.clone(),
            instead,
        };
        let unreadable = |why: String| ReadError::Failed {
            verb: "read".into(),
            what: format!("{what} ({older})"),
            message: why,
            status: Some(200),
        };
        let as_current = |obj: DynamicObject| -> Result<K, String> {
            let mut v = serde_json::to_value(&obj).map_err(|e| e.to_string())?;
            v["apiVersion"] = current.clone().into();
            v["kind"] = kind.clone().into();
            serde_json::from_value::<K>(v).map_err(|e| e.to_string())
        };
        let out = match pages(&api, Paging::Pages(PAGE), None, None, as_current).await {
            Ok(out) => out,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                let e = not_served(format!(
                    "nor {older}; kai leaves {plural} out of what it reads"
                ));
                self.note(e.to_string());
                return Err(e);
            }
            Err(e) => return Err(ReadError::from_kube(e, "list", &plural, ns, &what)),
        };
        let out = out
            .into_iter()
            .collect::<Result<Vec<K>, String>>()
            .map_err(unreadable)?;
        if noted {
            self.note(not_served(format!("kai read its {older} {plural} instead")).to_string());
        }
        Ok(out)
    }
}

/// How [`pages`] asks for a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paging {
    /// At most this many objects a request, following the continue token.
    Pages(u32),
    /// One request for the whole list: for field-selected lists whose matches are few
    /// among many objects, where the apiserver (before 1.27 at least) reads etcd in
    /// steps of the page size to fill each page, see [`NamespaceView::load_rule_events`].
    Whole,
}

/// The view's pager: every object of `api` (matching the selectors, if given), page by
/// page, each object trimmed and turned into a `T` as its page arrives, so that only what
/// readers keep outlives the page. At most [`MAX_PAGES`] pages. Logs what each list took
/// at debug level (`RUST_LOG=kai_cluster=debug`), where a slow scan's time goes.
async fn pages<K, T>(
    api: &Api<K>,
    paging: Paging,
    fields: Option<&str>,
    labels: Option<&str>,
    mut keep: impl FnMut(K) -> T,
) -> Result<Vec<T>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug + 'static,
{
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut requests = 0;
    for _ in 0..MAX_PAGES {
        let mut lp = ListParams::default();
        if let Paging::Pages(n) = paging {
            lp = lp.limit(n);
        }
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        if let Some(l) = labels {
            lp = lp.labels(l);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        requests += 1;
        let list = api.list(&lp).await?;
        if out.is_empty() {
            // The first page says how many follow: one allocation instead of a doubling
            // series whose last step holds two copies of the list.
            let remaining = list
                .metadata
                .remaining_item_count
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0)
                .min(PAGE as usize * MAX_PAGES);
            out.reserve_exact(list.items.len() + remaining);
        }
        out.extend(list.items.into_iter().map(trim).map(&mut keep));
        match list.metadata.continue_ {
            Some(t) if !t.is_empty() && paging != Paging::Whole => token = Some(t),
            _ => break,
        }
    }
    tracing::debug!(
        url = api.resource_url(),
        fields,
        labels,
        requests,
        objects = out.len(),
        ms = started.elapsed().as_millis() as u64,
        "listed"
    );
    Ok(out)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn read_errors_say_what_could_not_be_read() {
        let f = ReadError::Forbidden {
            verb: "list".into(),
            resource: "secrets".into(),
            namespace: Some("shop".into()),
            what: "secrets in namespace \"shop\"".into(),
            message: "secrets is forbidden: User \"x\" cannot list".into(),
        };
        let text = f.to_string();
        assert!(
            text.starts_with("forbidden: secrets is forbidden"),
            "{text}"
        );
        assert!(
            text.contains("ask for `list` on `secrets in namespace \"shop\"`"),
            "{text}"
        );
        assert!(f.is_auth() && f.is_forbidden());
        assert_eq!(f.short(), "forbidden");

        let n = ReadError::NotServed {
            api: "batch/v1 CronJob".into(),
            server: "v1.20".into(),
            instead: "kai read its batch/v1beta1 CronJobs instead".into(),
        };
        assert_eq!(
            n.to_string(),
            "this cluster (v1.20) does not serve batch/v1 CronJob; kai read its batch/v1beta1 CronJobs instead"
        );
        let u = ReadError::Failed {
            verb: "list".into(),
            what: "pods in namespace \"shop\"".into(),
            message: "connection refused".into(),
            status: None,
        };
        assert!(u
            .to_string()
            .contains("cannot reach the Kubernetes API server"));
        assert!(matches!(
            ClusterError::from(u),
            ClusterError::Unreachable { .. }
        ));
    }

    #[test]
    fn rule_events_are_warnings_and_claims() {
        let ev = |ty: &str, kind: &str| -> Event {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "e"}, "type": ty,
                "involvedObject": {"kind": kind, "name": "x"}
            }))
            .unwrap()
        };
        assert!(is_rule_event(&ev("Warning", "Pod")));
        assert!(!is_rule_event(&ev("Normal", "Pod")));
        assert!(is_rule_event(&ev("Normal", "PersistentVolumeClaim")));
    }

    /// Trimming a decoded pod gives back the room decoding reserved in its lists (four
    /// slots for the first element of a small type) and changes nothing else.
    #[test]
    fn trim_shrinks_a_pods_lists_and_keeps_its_content() {
        let text = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "shop",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-1", "uid": "u", "controller": true}],
                "managedFields": [{"manager": "kubelet", "operation": "Update"}],
                "annotations": {LAST_APPLIED: "{}", "keep": "me"}},
            "spec": {
                "containers": [{"name": "app", "image": "x",
                    "env": [{"name": "MODE", "value": "production"}],
                    "ports": [{"containerPort": 8080}],
                    "volumeMounts": [{"name": "token", "mountPath": "/var/run/secrets"}]}],
                "volumes": [{"name": "token", "secret": {"secretName": "default-token-x"}}],
                "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                    "image": "x", "imageID": ""}],
                "podIPs": [{"ip": "10.0.0.1"}]}
        })
        .to_string();
        let decoded: Pod = serde_json::from_str(&text).unwrap();
        // What decoding reserved: without this the test would prove nothing.
        let statuses = decoded.status.as_ref().unwrap().container_statuses.as_ref();
        assert!(statuses.unwrap().capacity() > 1);

        let mut expected = decoded.clone();
        expected.metadata.managed_fields = None;
        expected
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(LAST_APPLIED);
        let pod = trim(decoded);
        assert_eq!(pod, expected);

        fn full<T>(v: &Option<Vec<T>>) -> bool {
            v.as_ref().is_none_or(|v| v.len() == v.capacity())
        }
        let spec = pod.spec.as_ref().unwrap();
        let c = &spec.containers[0];
        assert!(full(&c.env) && full(&c.ports) && full(&c.volume_mounts));
        assert!(full(&spec.volumes) && full(&spec.tolerations));
        let status = pod.status.as_ref().unwrap();
        assert!(full(&status.container_statuses) && full(&status.conditions));
        assert!(full(&status.pod_ips) && full(&pod.metadata.owner_references));
    }

    /// The claims' events are read only for claims the claim rule looks at.
    #[test]
    fn pending_claims_are_those_without_a_phase_or_pending() {
        let claim = |status: serde_json::Value| -> PersistentVolumeClaim {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "c"}, "status": status}))
                .unwrap()
        };
        assert!(is_pending_claim(&claim(
            serde_json::json!({"phase": "Pending"})
        )));
        assert!(is_pending_claim(&claim(serde_json::json!({}))));
        assert!(!is_pending_claim(&claim(
            serde_json::json!({"phase": "Bound"})
        )));
        assert!(!is_pending_claim(&claim(
            serde_json::json!({"phase": "Lost"})
        )));
    }
}
