//! The reads of one turn, shared: every [`NamespaceView`] a turn asks for of the same
//! namespace starts from what the turn has read there already, so pre-gathering, the
//! model's `describe` and `analyze` calls, and whatever comes after them in the turn list
//! each kind of a namespace once.
//!
//! A turn is whatever the caller says it is (a number it never reuses); asking with a
//! new turn forgets the old one's reads, and so does [`TurnReads::forget`] (after a
//! change, the next read must see the cluster as it is now). Without a turn, a view is a
//! fresh read, as [`NamespaceView::new`] is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::view::{checked_scope, ViewState};
use crate::{Cluster, ClusterError, NamespaceView};

/// The views of the current turn, by namespace (`None`: all namespaces).
#[derive(Default)]
pub struct TurnReads {
    current: Mutex<Option<Turn>>,
}

struct Turn {
    id: u64,
    views: BTreeMap<Option<String>, Arc<ViewState>>,
}

impl TurnReads {
    /// A view of `ns` (checked; `None` or `*` for all namespaces) for turn `turn`:
    /// sharing the reads made in `ns` earlier in the same turn, or a fresh read when
    /// `turn` is `None`.
    pub fn view<'c>(
        &self,
        cluster: &'c Cluster,
        turn: Option<u64>,
        ns: Option<&str>,
    ) -> Result<NamespaceView<'c>, ClusterError> {
        let Some(id) = turn else {
            return NamespaceView::new(cluster, ns);
        };
        let ns = checked_scope(cluster, ns)?;
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_none_or(|t| t.id != id) {
            // A new turn: the last one's lists are not this one's to trust, nor to keep
            // in memory.
            *current = None;
        }
        let turn = current.get_or_insert_with(|| Turn {
            id,
            views: BTreeMap::new(),
        });
        let state = turn
            .views
            .entry(ns.clone())
            .or_insert_with(|| Arc::new(ViewState::new(ns)))
            .clone();
        Ok(NamespaceView::with_state(cluster, state))
    }

    /// Forget what this turn read: the next view reads again.
    pub fn forget(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
