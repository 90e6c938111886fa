//! Events: fetched through the core/v1 API (served by every cluster version), newest
//! first, with identical (reason, object, message) repeats folded into one line with
//! the total count and the last-seen age.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};

use super::budget;
use super::objects::{age, human_duration};
use super::view::{describe_resource, ReadError};
use super::{Cluster, ClusterError};
use kai_text::redact;

/// Several events that say the same thing about the same object.
#[derive(Debug, Clone, PartialEq)]
pub struct AggEvent {
    pub type_: String,
    pub reason: String,
    /// `Pod/backend-7d9c-x`
    pub object: String,
    pub message: String,
    pub count: i64,
    pub first_seen: Option<jiff::Timestamp>,
    pub last_seen: Option<jiff::Timestamp>,
}

fn last_seen(e: &Event) -> Option<jiff::Timestamp> {
    [
        e.series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref())
            .map(|t| t.0),
        e.last_timestamp.as_ref().map(|t| t.0),
        e.event_time.as_ref().map(|t| t.0),
        e.first_timestamp.as_ref().map(|t| t.0),
        e.metadata.creation_timestamp.as_ref().map(|t| t.0),
    ]
    .into_iter()
    .flatten()
    .max()
}

fn first_seen(e: &Event) -> Option<jiff::Timestamp> {
    e.first_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Fold events with the same (type, reason, object, message), newest first.
pub fn aggregate(events: &[Event]) -> Vec<AggEvent> {
    let mut by_key: HashMap<(String, String, String, String), AggEvent> = HashMap::new();
    for e in events {
        let obj = &e.involved_object;
        let object = format!(
            "{}/{}",
            obj.kind.clone().unwrap_or_default(),
            obj.name.clone().unwrap_or_default()
        );
        let type_ = e.type_.clone().unwrap_or_else(|| "Normal".into());
        let reason = e.reason.clone().unwrap_or_default();
        let message = e.message.clone().unwrap_or_default().trim().to_string();
        let count = e
            .series
            .as_ref()
            .and_then(|s| s.count)
            .map(i64::from)
            .or(e.count.map(i64::from))
            .unwrap_or(1)
            .max(1);
        let (first, last) = (first_seen(e), last_seen(e));
        let key = (
            type_.clone(),
            reason.clone(),
            object.clone(),
            message.clone(),
        );
        let entry = by_key.entry(key).or_insert_with(|| AggEvent {
            type_,
            reason,
            object,
            message,
            count: 0,
            first_seen: first,
            last_seen: last,
        });
        entry.count += count;
        entry.first_seen = min_opt(entry.first_seen, first);
        entry.last_seen = entry.last_seen.max(last);
    }
    let mut out: Vec<AggEvent> = by_key.into_values().collect();
    out.sort_by(|a, b| {
        b.last_seen
            .cmp(&a.last_seen)
            .then_with(|| a.reason.cmp(&b.reason))
    });
    out
}

fn min_opt(a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>) -> Option<jiff::Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One line per aggregated event: `3m ago  Warning  BackOff  Pod/x  (x14 over 20m)  msg`.
pub fn render_lines(events: &[AggEvent], with_object: bool) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let when = e
                .last_seen
                .map(|t| format!("{} ago", age(t)))
                .unwrap_or_else(|| "?".into());
            let count = if e.count > 1 {
                let over = match (e.first_seen, e.last_seen) {
                    (Some(f), Some(l)) if l > f => {
                        format!(" over {}", human_duration(l.as_second() - f.as_second()))
                    }
                    _ => String::new(),
                };
                format!(" (x{}{over})", e.count)
            } else {
                String::new()
            };
            let object = if with_object {
                format!(" {}", e.object)
            } else {
                String::new()
            };
            let message = e.message.replace('\n', " ");
            redact::scrub(&format!(
                "{when:>8}  {:<7} {}{object}{count}: {message}",
                e.type_, e.reason
            ))
        })
        .collect()
}

/// Events read at most by one request outside a namespace view.
const MAX_EVENTS: u32 = 1000;

/// Events in `ns` (`None` for all namespaces) filtered server-side by `field_selector`:
/// at most [`MAX_EVENTS`], and whether there were more.
pub async fn fetch_page(
    cluster: &Cluster,
    ns: Option<&str>,
    field_selector: Option<&str>,
) -> Result<(Vec<Event>, bool), ReadError> {
    let api: Api<Event> = match ns {
        None => Api::all(cluster.client.clone()),
        Some(ns) => Api::namespaced(cluster.client.clone(), ns),
    };
    let mut lp = ListParams::default().limit(MAX_EVENTS);
    if let Some(f) = field_selector.filter(|f| !f.is_empty()) {
        lp = lp.fields(f);
    }
    let what = describe_resource("events", "", true, ns);
    api.list(&lp)
        .await
        .map(|l| {
            let more = l.metadata.continue_.is_some_and(|c| !c.is_empty());
            (l.items, more)
        })
        .map_err(|e| ReadError::from_kube(e, "list", "events", ns, &what))
}

/// [`fetch_page`] without the "more" flag, for a section of a describe.
pub async fn fetch_all(
    cluster: &Cluster,
    ns: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Vec<Event>, ReadError> {
    fetch_page(cluster, ns, field_selector)
        .await
        .map(|(e, _)| e)
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct EventArgs {
    pub namespace: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub types: Option<Vec<String>>,
}

/// `list_events`: newest first, aggregated, cut to `budget_chars`.
pub async fn list_events(
    cluster: &Cluster,
    args: &EventArgs,
    budget_chars: usize,
) -> Result<String, ClusterError> {
    let ns = cluster.list_namespace(args.namespace.as_deref())?;
    let mut fields = Vec::new();
    // Everything below goes into a field selector, where a comma would add terms: the
    // kind is resolved (never passed through as given) and names are checked.
    if let Some(kind) = args.kind.as_deref().filter(|k| !k.is_empty()) {
        // The field selector wants the Kind (`Pod`), not `pods` or `po`.
        let kind = cluster.resolve(kind).await?;
        if let Some(name) = args.name.as_deref().filter(|n| !n.is_empty()) {
            Cluster::check_name(&kind, name)?;
        }
        fields.push(format!("involvedObject.kind={}", kind.resource.kind));
    }
    if let Some(name) = args.name.as_deref().filter(|n| !n.is_empty()) {
        super::names::check_name(super::names::NameRule::PathSegment, name)?;
        fields.push(format!("involvedObject.name={name}"));
    }
    let types: Vec<String> = args.types.clone().unwrap_or_default();
    if let [only] = types.as_slice() {
        if !matches!(only.as_str(), "Normal" | "Warning") {
            return Err(ClusterError::Other(format!(
                "unknown event type {:?}; use Normal or Warning",
                only.chars().take(40).collect::<String>()
            )));
        }
        fields.push(format!("type={only}"));
    }
    let scope = if ns == "*" { None } else { Some(ns.as_str()) };
    let (events, more) = fetch_page(cluster, scope, Some(&fields.join(",")))
        .await
        .map_err(ClusterError::from)?;
    let events: Vec<Event> = events
        .into_iter()
        .filter(|e| {
            types.is_empty() || types.iter().any(|t| Some(t.as_str()) == e.type_.as_deref())
        })
        .collect();
    let where_ = if ns == "*" {
        "all namespaces".to_string()
    } else {
        format!("namespace {ns}")
    };
    if events.is_empty() {
        return Ok(format!(
            "No events in {where_} for that filter (events expire after about an hour; the object may be older)."
        ));
    }
    let agg = aggregate(&events);
    let lines = render_lines(&agg, true);
    let first = if more {
        format!(" (the first {MAX_EVENTS} the server listed: narrow with kind/name or types)")
    } else {
        String::new()
    };
    let head = format!(
        "{} events ({} distinct) in {where_}{first}, newest first:\n",
        events.len(),
        agg.len()
    );
    let body = budget::fit_text(
        &lines.join("\n"),
        budget_chars.saturating_sub(head.len()),
        "filter with kind/name or types=[Warning]",
    );
    Ok(format!("{head}{body}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ev(reason: &str, name: &str, msg: &str, count: i32, last: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{name}.{reason}.{last}")},
            "involvedObject": {"kind": "Pod", "name": name},
            "reason": reason, "message": msg, "type": "Warning", "count": count,
            "firstTimestamp": "2024-05-01T10:00:00Z", "lastTimestamp": last
        }))
        .unwrap()
    }

    #[test]
    fn identical_events_are_folded_and_sorted_newest_first() {
        let events = vec![
            ev(
                "BackOff",
                "a",
                "Back-off restarting failed container",
                5,
                "2024-05-01T10:05:00Z",
            ),
            ev(
                "BackOff",
                "a",
                "Back-off restarting failed container",
                9,
                "2024-05-01T10:20:00Z",
            ),
            ev(
                "Unhealthy",
                "a",
                "Readiness probe failed",
                1,
                "2024-05-01T10:10:00Z",
            ),
            ev(
                "BackOff",
                "b",
                "Back-off restarting failed container",
                2,
                "2024-05-01T10:01:00Z",
            ),
        ];
        let agg = aggregate(&events);
        assert_eq!(agg.len(), 3);
        assert_eq!(agg[0].reason, "BackOff");
        assert_eq!(agg[0].object, "Pod/a");
        assert_eq!(agg[0].count, 14);
        assert_eq!(agg[1].reason, "Unhealthy");
        let lines = render_lines(&agg, true);
        assert!(
            lines[0].contains("BackOff Pod/a (x14 over 20m): Back-off restarting failed container"),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn event_messages_are_scrubbed() {
        let events = vec![ev(
            "Failed",
            "a",
            "pull with token=abcdef123456",
            1,
            "2024-05-01T10:05:00Z",
        )];
        let lines = render_lines(&aggregate(&events), false);
        assert!(!lines[0].contains("abcdef123456"));
    }
}
