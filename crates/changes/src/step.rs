//! A change as the user is asked about it: the objects, what is done to each, and the
//! kubectl equivalents shown next to the diff.

use serde_json::Value;

use crate::danger::{self, DangerInput, Verb};
use crate::error::ChangeError;
use crate::plan;
use kai_cluster::write::{ObjectRef, WriteRequest};
use kai_cluster::{Cluster, Kind};

pub use kai_cluster::write::PatchType;

/// How much of an applied diff is echoed back to the model.
const DIFF_ECHO_CHARS: usize = 4000;

/// What is sent for one object.
#[derive(Debug, Clone)]
pub enum Action {
    /// Server-side apply of this object (field manager `kai`, conflicts forced: the user
    /// approves the resulting diff, whoever owned the fields before).
    Apply(Value),
    Patch(PatchType, Value),
    Create(Value),
    Delete,
}

/// One object and what to do to it. The object reference is checked when the step is
/// made (kind, namespace and name all go into request paths).
#[derive(Debug, Clone)]
pub struct Step {
    pub target: ObjectRef,
    pub action: Action,
}

impl Step {
    /// A step for `kind/name` in `namespace` (the session default when `None`).
    pub fn new(
        cluster: &Cluster,
        kind: Kind,
        name: &str,
        namespace: Option<&str>,
        action: Action,
    ) -> Result<Step, ChangeError> {
        let ns = if kind.namespaced() {
            Some(cluster.checked_namespace(namespace)?)
        } else {
            None
        };
        Ok(Step {
            target: ObjectRef::new(kind, ns.as_deref(), name)?,
            action,
        })
    }

    pub fn kind(&self) -> &Kind {
        self.target.kind()
    }

    pub fn name(&self) -> &str {
        self.target.name()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.target.namespace()
    }

    pub fn label(&self) -> String {
        self.target.label()
    }

    /// "deployments.apps", as RBAC names it.
    pub fn resource(&self) -> String {
        let r = &self.kind().resource;
        if r.group.is_empty() {
            r.plural.clone()
        } else {
            format!("{}.{}", r.plural, r.group)
        }
    }

    pub fn is_secret(&self) -> bool {
        let r = &self.kind().resource;
        r.group.is_empty() && r.kind == "Secret"
    }

    pub(crate) fn verb(&self) -> Verb {
        match self.action {
            Action::Apply(_) => Verb::Apply,
            Action::Patch(..) => Verb::Patch,
            Action::Create(_) => Verb::Create,
            Action::Delete => Verb::Delete,
        }
    }

    pub(crate) fn rbac_verb(&self) -> &'static str {
        match self.action {
            Action::Apply(_) | Action::Patch(..) => "patch",
            Action::Create(_) => "create",
            Action::Delete => "delete",
        }
    }

    pub(crate) fn body(&self) -> Option<&Value> {
        match &self.action {
            Action::Apply(b) | Action::Patch(_, b) | Action::Create(b) => Some(b),
            Action::Delete => None,
        }
    }

    /// Why this step is dangerous, judged by what it does: the live object and the
    /// server's dry-run result.
    pub fn danger(&self, before: Option<&Value>, after: Option<&Value>) -> Option<String> {
        danger::danger(&DangerInput {
            group: &self.kind().resource.group,
            kind: &self.kind().resource.kind,
            namespaced: self.kind().namespaced(),
            verb: self.verb(),
            body: self.body(),
            before,
            after,
        })
    }

    pub(crate) fn request(&self, rv: Option<&str>, dry_run: bool) -> WriteRequest {
        WriteRequest {
            target: self.target.clone(),
            op: plan::write_op(&self.action, rv),
            dry_run,
        }
    }
}

/// A change as the user sees it: one question, one or more objects.
#[derive(Debug, Clone)]
pub struct Change {
    /// The proposing tool (`scale`, `undo`, [`crate::PROPOSAL_TOOL`], ...).
    pub tool: String,
    /// One line: "scale Deployment shop/web to 3 replicas".
    pub title: String,
    /// The equivalent kubectl command.
    pub kubectl: String,
    pub steps: Vec<Step>,
}

/// What happened to an approved change.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied {
        id: String,
        diff: String,
    },
    /// The dry run shows the objects already look like that: nothing to ask or apply.
    NoChange,
}

impl Outcome {
    /// The tool result the model sees.
    pub fn message(&self) -> String {
        match self {
            Outcome::NoChange => "no change: the dry run shows the object already in that state, so nothing was asked or applied".into(),
            Outcome::Applied { id, diff } => {
                let mut d: String = diff.chars().take(DIFF_ECHO_CHARS).collect();
                if d.len() < diff.len() {
                    d.push_str("\n... (diff truncated)\n");
                }
                format!("applied with the user's approval (audit id {id}; `kai undo {id}` reverts it). The applied diff:\n{d}")
            }
        }
    }
}

/// Quote for a POSIX shell, for the kubectl equivalents.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `-n shop ` for namespaced steps, nothing otherwise.
pub fn kubectl_ns(step: &Step) -> String {
    step.namespace()
        .map(|n| format!(" -n {}", shell_quote(n)))
        .unwrap_or_default()
}

/// `deployment.apps/web` style reference.
pub fn kubectl_ref(step: &Step) -> String {
    let r = &step.kind().resource;
    let kind = r.kind.to_ascii_lowercase();
    if r.group.is_empty() || r.group == "apps" {
        format!("{kind}/{}", step.name())
    } else {
        format!("{kind}.{}/{}", r.group, step.name())
    }
}
