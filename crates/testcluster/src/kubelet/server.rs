//! The fake kubelet's HTTPS endpoint. The apiserver proxies `pods/log` here (it finds the
//! port in the Node's `status.daemonEndpoints.kubeletEndpoint`) and, having no
//! `--kubelet-certificate-authority`, accepts our self-signed certificate.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use jiff::{SignedDuration, Timestamp};

use super::play::LogText;
use super::KubeletState;
use crate::https;
use crate::proxy::{bind_loopback, percent_decode};
use crate::Error;

/// Query parameters of `/containerLogs/{ns}/{pod}/{container}` (as the apiserver sends them).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogQuery {
    pub previous: bool,
    pub tail_lines: Option<usize>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
}

impl LogQuery {
    pub fn parse(query: &str) -> LogQuery {
        let mut q = LogQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            let truthy = v.is_empty() || v == "true" || v == "1";
            match k {
                "previous" => q.previous = truthy,
                "timestamps" => q.timestamps = truthy,
                "tailLines" => q.tail_lines = v.parse().ok(),
                "sinceSeconds" => q.since_seconds = v.parse().ok(),
                "sinceTime" => q.since_time = v.parse().ok(),
                "limitBytes" => q.limit_bytes = v.parse().ok(),
                _ => {}
            }
        }
        q
    }
}

/// Renders a log as the kubelet would: each line gets a time (lines 10 ms apart, the last
/// one at `log.end`), then `sinceSeconds`/`sinceTime`, `tailLines`, `timestamps` and
/// `limitBytes` apply in that order.
pub fn render_log(log: &LogText, q: &LogQuery, now: Timestamp) -> String {
    let lines: Vec<&str> = log.text.split_inclusive('\n').collect();
    let n = lines.len() as i64;
    let step = SignedDuration::from_millis(10);
    let since = match (q.since_time, q.since_seconds) {
        (Some(t), _) => Some(t),
        (None, Some(s)) => Some(now - SignedDuration::from_secs(s)),
        (None, None) => None,
    };
    let mut kept: Vec<(Timestamp, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (log.end - step * (n - 1 - i as i64) as i32, *l))
        .filter(|(t, _)| since.is_none_or(|s| *t >= s))
        .collect();
    if let Some(tail) = q.tail_lines {
        let skip = kept.len().saturating_sub(tail);
        kept.drain(..skip);
    }
    let mut out = String::new();
    for (t, line) in kept {
        if q.timestamps {
            out.push_str(&t.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string());
            out.push(' ');
        }
        out.push_str(line);
    }
    if let Some(limit) = q.limit_bytes {
        if out.len() > limit {
            let mut cut = limit;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
    }
    out
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn handle(state: &KubeletState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let query = LogQuery::parse(req.uri().query().unwrap_or(""));
    if path == "/healthz" {
        return text(StatusCode::OK, "ok".into());
    }
    let Some(rest) = path.strip_prefix("/containerLogs/") else {
        return text(
            StatusCode::NOT_FOUND,
            format!("{path}: not supported by kai's fake kubelet (only container logs are)"),
        );
    };
    let parts: Vec<String> = rest.split('/').map(percent_decode).collect();
    let [ns, pod, container] = parts.as_slice() else {
        return text(StatusCode::BAD_REQUEST, format!("bad log path {path}"));
    };
    let pods = state.logs.lock().unwrap_or_else(|p| p.into_inner());
    let Some(played) = pods.get(&(ns.clone(), pod.clone())) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod \"{pod}\" in namespace \"{ns}\" not found"),
        );
    };
    let Some(logs) = played.get(container) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("container \"{container}\" in pod \"{pod}\" not found"),
        );
    };
    let which = if query.previous {
        &logs.previous
    } else {
        &logs.current
    };
    match which {
        Ok(log) => text(StatusCode::OK, render_log(log, &query, Timestamp::now())),
        Err(msg) => text(StatusCode::BAD_REQUEST, msg.clone()),
    }
}

pub(crate) type PodLogs =
    HashMap<(String, String), std::collections::BTreeMap<String, super::play::ContainerLogs>>;

/// Binds 127.0.0.1 on a free port and serves until the runtime shuts down.
pub(crate) async fn serve(state: Arc<KubeletState>) -> Result<u16, Error> {
    let acceptor = https::self_signed_acceptor(
        vec!["127.0.0.1".to_string(), "localhost".to_string()],
        "kubelet",
        // Loopback only; the apiserver has no kubelet client certificate to show.
        None,
    )?;
    let (listener, port) = bind_loopback("the fake kubelet").await?;
    https::serve(listener, acceptor, "fake kubelet", move |req| {
        let resp = handle(&state, &req);
        async move { resp }
    });
    Ok(port)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn log() -> LogText {
        LogText {
            text: "one\ntwo\nthree\n".into(),
            end: "2024-05-01T10:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn query_parsing() {
        let q = LogQuery::parse(
            "previous=true&tailLines=2&sinceSeconds=30&timestamps=true&limitBytes=100&follow=false",
        );
        assert!(q.previous && q.timestamps);
        assert_eq!(q.tail_lines, Some(2));
        assert_eq!(q.since_seconds, Some(30));
        assert_eq!(q.limit_bytes, Some(100));
        let q = LogQuery::parse("sinceTime=2024-05-01T09%3A59%3A59Z");
        assert_eq!(q.since_time, Some("2024-05-01T09:59:59Z".parse().unwrap()));
    }

    #[test]
    fn rendering() {
        let now: Timestamp = "2024-05-01T10:00:05Z".parse().unwrap();
        let all = render_log(&log(), &LogQuery::default(), now);
        assert_eq!(all, "one\ntwo\nthree\n");
        let tail = LogQuery {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(render_log(&log(), &tail, now), "two\nthree\n");
        let stamped = LogQuery {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(
            render_log(&log(), &stamped, now),
            "2024-05-01T10:00:00.000000000Z three\n"
        );
        let limited = LogQuery {
            limit_bytes: Some(5),
            ..Default::default()
        };
        assert_eq!(render_log(&log(), &limited, now), "one\nt");
        let recent = LogQuery {
            since_seconds: Some(1),
            ..Default::default()
        };
        assert_eq!(render_log(&log(), &recent, now), "");
        let since = LogQuery {
            since_time: Some("2024-05-01T09:59:59.995Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(render_log(&log(), &since, now), "three\n");
    }
}
