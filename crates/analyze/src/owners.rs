//! Owner references, walked one way for every reader: the rules over a snapshot
//! ([`crate::Snapshot::top_owner`]), kai-cluster's describe (its "Controlled by" chain,
//! looked up through the cluster) and pre-gathering's target search.
//!
//! The walk is a small state machine so that a synchronous lookup ([`OwnerWalk::run`])
//! and an asynchronous one (ask [`OwnerWalk::next`], answer [`OwnerWalk::found`]) share
//! the rules: which reference is followed, how far, and what a missing owner means.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Hops followed at most. Built-in chains are two deep (Pod → ReplicaSet → Deployment,
/// Pod → Job → CronJob); the bound keeps a reference cycle in cluster content finite.
pub const MAX_HOPS: usize = 4;

/// The owner an object answers to: its controller reference, else its first owner.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let refs = meta.owner_references.as_ref()?;
    refs.iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| refs.first())
}

/// (kind, name) of [`controller_ref`].
pub fn controller_of(meta: &ObjectMeta) -> Option<(String, String)> {
    controller_ref(meta).map(|o| (o.kind.clone(), o.name.clone()))
}

/// Whether any of `meta`'s owner references names the object with `uid` (how a
/// Deployment's ReplicaSets are told from others its selector happens to match).
pub fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|o| o.uid == uid)
}

/// The annotation a Deployment and its ReplicaSets carry their rollout revision in.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// The rollout revision in [`REVISION`], when present and a number.
pub fn revision_of(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

/// What a lookup of an owner found.
#[derive(Debug)]
pub enum Found<'a> {
    /// The owner exists: the walk goes on to its own owner.
    Object(&'a ObjectMeta),
    /// The owner does not exist (any more).
    Gone,
    /// The reader did not look (a kind it does not follow, a name it will not put in
    /// a path): the walk ends here, the hop stays.
    NotLooked,
    /// The lookup failed (forbidden, unreachable): the walk ends, and says why.
    Unreadable(String),
}

/// How one hop of a chain ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopState {
    Found,
    Gone,
    NotLooked,
    Unreadable(String),
}

/// One owner on the way up.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    pub owner: OwnerReference,
    pub state: HopState,
}

impl Hop {
    /// `ReplicaSet/backend-7d9c`, with what went wrong looking it up.
    pub fn label(&self) -> String {
        let base = format!("{}/{}", self.owner.kind, self.owner.name);
        match &self.state {
            HopState::Found | HopState::NotLooked => base,
            HopState::Gone => format!("{base} (gone)"),
            HopState::Unreadable(why) => format!("{base} (could not be read: {why})"),
        }
    }
}

/// A walk up the owner references of one object.
#[derive(Debug, Clone)]
pub struct OwnerWalk {
    next: Option<OwnerReference>,
    hops: Vec<Hop>,
}

impl OwnerWalk {
    pub fn new(meta: &ObjectMeta) -> Self {
        OwnerWalk {
            next: controller_ref(meta).cloned(),
            hops: Vec::new(),
        }
    }

    /// The owner to look up next; `None` when the walk is over.
    pub fn next(&self) -> Option<&OwnerReference> {
        self.next.as_ref()
    }

    /// The answer for [`OwnerWalk::next`].
    pub fn found(&mut self, found: Found<'_>) {
        let Some(owner) = self.next.take() else {
            return;
        };
        let state = match found {
            Found::Object(meta) => {
                if self.hops.len() + 1 < MAX_HOPS {
                    self.next = controller_ref(meta).cloned();
                }
                HopState::Found
            }
            Found::Gone => HopState::Gone,
            Found::NotLooked => HopState::NotLooked,
            Found::Unreadable(why) => HopState::Unreadable(why),
        };
        self.hops.push(Hop { owner, state });
    }

    pub fn hops(&self) -> &[Hop] {
        &self.hops
    }

    pub fn into_hops(self) -> Vec<Hop> {
        self.hops
    }

    /// The whole walk with a synchronous lookup.
    pub fn run<'a>(
        meta: &ObjectMeta,
        mut lookup: impl FnMut(&OwnerReference) -> Found<'a>,
    ) -> Vec<Hop> {
        let mut walk = OwnerWalk::new(meta);
        while let Some(owner) = walk.next().cloned() {
            let found = lookup(&owner);
            walk.found(found);
        }
        walk.into_hops()
    }
}

/// `ReplicaSet/backend-7d9c → Deployment/backend`.
pub fn chain_text(hops: &[Hop]) -> String {
    hops.iter().map(Hop::label).collect::<Vec<_>>().join(" → ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn meta(owners: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(json!({"name": "x", "ownerReferences": owners})).unwrap()
    }

    fn owner(kind: &str, name: &str, controller: bool) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": controller})
    }

    #[test]
    fn the_controller_wins_over_the_first_owner() {
        let m = meta(json!([
            owner("ConfigMap", "a", false),
            owner("ReplicaSet", "rs", true)
        ]));
        assert_eq!(controller_of(&m), Some(("ReplicaSet".into(), "rs".into())));
        let m = meta(json!([owner("ConfigMap", "a", false)]));
        assert_eq!(controller_of(&m), Some(("ConfigMap".into(), "a".into())));
        assert_eq!(controller_of(&ObjectMeta::default()), None);
    }

    #[test]
    fn walks_up_and_marks_what_it_could_not_see() {
        let pod = meta(json!([owner("ReplicaSet", "web-1", true)]));
        let rs = meta(json!([owner("Deployment", "web", true)]));
        let hops = OwnerWalk::run(&pod, |o| match o.kind.as_str() {
            "ReplicaSet" => Found::Object(&rs),
            _ => Found::Unreadable("forbidden".into()),
        });
        assert_eq!(
            chain_text(&hops),
            "ReplicaSet/web-1 → Deployment/web (could not be read: forbidden)"
        );
        let hops = OwnerWalk::run(&pod, |_| Found::Gone);
        assert_eq!(chain_text(&hops), "ReplicaSet/web-1 (gone)");
        assert!(OwnerWalk::run(&ObjectMeta::default(), |_| Found::Gone).is_empty());
    }

    #[test]
    fn a_cycle_in_cluster_content_ends() {
        let a = meta(json!([owner("ReplicaSet", "a", true)]));
        let hops = OwnerWalk::run(&a, |_| Found::Object(&a));
        assert_eq!(hops.len(), MAX_HOPS);
    }
}
