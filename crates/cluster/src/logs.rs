//! Container logs through the API server (`pods/log`), never a shell.
//!
//! The body is read as bytes and decoded lossily (binary output must not fail the
//! call), terminal escapes are stripped, credentials are scrubbed, and the result is fit
//! to the budget with head, tail, folded repeats and rescued error lines.

use std::sync::LazyLock;

use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use regex::Regex;

use super::budget;
use super::{Cluster, ClusterError};
use kai_text::redact;

pub const DEFAULT_TAIL: i64 = 200;
/// What is read from the API at most; the budget keeps far less.
const MAX_BYTES: i64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct LogArgs {
    pub pod: String,
    pub namespace: Option<String>,
    pub container: Option<String>,
    #[serde(default)]
    pub previous: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
}

static ANSI: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07").ok());

/// Bytes to text a model can read: invalid UTF-8 and control characters become `�`,
/// colour escapes are dropped.
pub fn sanitize(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = match ANSI.as_ref() {
        Some(re) => re.replace_all(&text, ""),
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `get_logs`.
pub async fn get_logs(
    cluster: &Cluster,
    args: &LogArgs,
    budget_chars: usize,
) -> Result<String, ClusterError> {
    let ns = cluster.checked_namespace(args.namespace.as_deref())?;
    super::names::check_name(super::names::NameRule::Subdomain, &args.pod)?;
    if let Some(c) = args.container.as_deref().filter(|c| !c.is_empty()) {
        super::names::check_container(c)?;
    }
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let pod = match api.get_opt(&args.pod).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let kind = cluster.resolve("pods").await?;
            return Err(super::objects::not_found(cluster, &kind, &args.pod, &ns).await);
        }
        Err(e) => {
            return Err(ClusterError::from_kube(
                e,
                "get",
                &format!("pods in namespace {ns:?}"),
            ))
        }
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let containers: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
    let inits: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    let list = || {
        let mut s = containers.join(", ");
        if !inits.is_empty() {
            s.push_str(&format!("; init containers: {}", inits.join(", ")));
        }
        s
    };
    let container = match args.container.as_deref().filter(|c| !c.is_empty()) {
        Some(c) if containers.iter().chain(&inits).any(|x| x == c) => c.to_string(),
        Some(c) => {
            return Err(ClusterError::Other(format!(
                "pod {} has no container {c:?}; its containers are: {}",
                args.pod,
                list()
            )))
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ClusterError::Other(format!(
                "pod {} has {} containers, so say which one: call get_logs again with container set to one of: {}",
                args.pod,
                containers.len(),
                list()
            )))
        }
    };
    let status = pod.status.as_ref().and_then(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
            .find(|cs| cs.name == container)
            .cloned()
    });
    if args.previous {
        let has_previous = status.as_ref().is_some_and(|s| {
            s.last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some())
        });
        if !has_previous {
            let restarts = status.as_ref().map_or(0, |s| s.restart_count);
            return Err(ClusterError::Other(format!(
                "container {container:?} of pod {} has no previous (terminated) instance: it has restarted {restarts} times; call get_logs without previous for its current log",
                args.pod
            )));
        }
    }
    let tail = args.tail_lines.filter(|n| *n > 0).unwrap_or(DEFAULT_TAIL);
    let lp = LogParams {
        container: Some(container.clone()),
        previous: args.previous,
        tail_lines: Some(tail),
        since_seconds: args.since_seconds.filter(|s| *s > 0),
        limit_bytes: Some(MAX_BYTES),
        ..Default::default()
    };
    let bytes = read_log(&api, &args.pod, &lp).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 400 && s.message.contains("previous terminated container") => {
            ClusterError::Other(format!(
                "container {container:?} of pod {} has no previous logs (the kubelet kept none); call get_logs without previous",
                args.pod
            ))
        }
        kube::Error::Api(s) if s.code == 400 && s.message.contains("waiting to start") => ClusterError::Other(format!(
            "{}; the container has not started, so there is no current log: try previous=true if it restarted, or describe the pod for the waiting reason",
            s.message
        )),
        e => ClusterError::from_kube(e, "get", &format!("pods/log in namespace {ns:?}")),
    })?;
    let text = sanitize(&bytes);
    let which = if args.previous {
        "previous instance"
    } else {
        "current instance"
    };
    let window = match args.since_seconds {
        Some(s) => format!("last {tail} lines, since {s}s ago"),
        None => format!("last {tail} lines"),
    };
    let head = format!(
        "Logs of pod {}, container {container} ({which}, {window}):\n",
        args.pod
    );
    if text.trim().is_empty() {
        return Ok(format!(
            "{head}(empty: the container wrote no log lines in that window)"
        ));
    }
    let text = redact::scrub(&text);
    let more = if args.previous {
        "ask with a smaller tail_lines to see only the end"
    } else {
        "use tail_lines/since_seconds for another window"
    };
    Ok(format!(
        "{head}{}",
        budget::fit_log(&text, budget_chars.saturating_sub(head.len()), more)
    ))
}

async fn read_log(api: &Api<Pod>, pod: &str, lp: &LogParams) -> Result<Vec<u8>, kube::Error> {
    let mut reader = api.log_stream(pod, lp).await?;
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .await
        .map_err(kube::Error::ReadEvents)?;
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_escapes_are_made_readable() {
        let bytes = b"ok \x1b[31mred\x1b[0m\r\nbin \xff\xfe\x00 end\n";
        assert_eq!(
            sanitize(bytes),
            "ok red\nbin \u{FFFD}\u{FFFD}\u{FFFD} end\n"
        );
    }
}
