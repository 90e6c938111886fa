//! Rendering pieces every describe shares: the header, label lists, the events section.
//! Pure: they format what was already read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::MAX_EVENTS;
use crate::events;
use crate::objects::{age, age_of};
use crate::view::ReadError;

pub(super) fn header(out: &mut String, kind: &str, meta: &ObjectMeta) {
    w!(out, "{kind}: {}", meta.name.clone().unwrap_or_default());
    if let Some(ns) = &meta.namespace {
        w!(out, "Namespace: {ns}");
    }
    w!(out, "Age: {}", age_of(meta.creation_timestamp.as_ref()));
    if let Some(l) = meta.labels.as_ref().filter(|l| !l.is_empty()) {
        w!(out, "Labels: {}", kv(l));
    }
    if let Some(t) = &meta.deletion_timestamp {
        w!(
            out,
            "Deleting: since {} ago (finalizers: {})",
            age(t.0),
            meta.finalizers.clone().unwrap_or_default().join(", ")
        );
    }
}

pub(super) fn kv(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Events about one object, aggregated; `events_all` is the namespace's list when the
/// caller already has it (one request serves a workload and its pods).
pub(super) fn events_section(
    out: &mut String,
    events_all: &[Event],
    kind: &str,
    names: &BTreeSet<String>,
    with_object: bool,
    title: &str,
) {
    events_where(
        out,
        events_all,
        |e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object
                    .name
                    .as_ref()
                    .is_some_and(|n| names.contains(n))
        },
        with_object,
        title,
    )
}

pub(super) fn events_where(
    out: &mut String,
    events_all: &[Event],
    keep: impl Fn(&Event) -> bool,
    with_object: bool,
    title: &str,
) {
    let mine: Vec<Event> = events_all.iter().filter(|e| keep(e)).cloned().collect();
    let agg = events::aggregate(&mine);
    if agg.is_empty() {
        w!(out, "{title}: <none>");
        return;
    }
    w!(out, "{title} (newest first):");
    for line in events::render_lines(&agg[..agg.len().min(MAX_EVENTS)], with_object) {
        w!(out, "  {}", line.trim_start());
    }
    if agg.len() > MAX_EVENTS {
        w!(
            out,
            "  … {} older distinct events; use list_events",
            agg.len() - MAX_EVENTS
        );
    }
}

/// Events are context, not the answer: a failure to read them (RBAC) does not fail the
/// describe, but the section says so instead of looking empty.
pub(super) fn events_or_why(
    out: &mut String,
    events: &Result<Vec<Event>, ReadError>,
    title: &str,
) -> bool {
    match events {
        Ok(_) => true,
        Err(e) => {
            w!(out, "{title}: could not be read ({e})");
            false
        }
    }
}

/// [`events_section`] for one object, or why its events could not be read.
pub(super) fn object_events(
    out: &mut String,
    evs: &Result<Vec<Event>, ReadError>,
    kind: &str,
    name: &str,
) {
    if let Ok(evs) = evs {
        events_section(
            out,
            evs,
            kind,
            &BTreeSet::from([name.to_string()]),
            false,
            "Events",
        );
    } else {
        events_or_why(out, evs, "Events");
    }
}

pub(super) fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "<none>"
    } else {
        s
    }
}

pub(super) fn indent(text: &str, ind: &str) -> String {
    text.trim_end()
        .lines()
        .map(|l| format!("{ind}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
