//! A recording proxy in front of the test apiserver, for tests that must know exactly
//! what went over the wire: every request's method, path, query and body as the server
//! would have received them (a `#` that a client dropped is not there; a `?` that a
//! client let through is).
//!
//! The proxy listens on plain HTTP on loopback and forwards each request with a kube
//! client of the context it was made for (so the caller's kubeconfig needs no
//! credentials), buffering bodies: it is for request/response calls, not watches.
//!
//! A connection the proxy could not read as HTTP (a request line or header the server
//! would refuse too) is not a [`Recorded`] request, but it is not lost either: it is
//! listed in [`RecordingProxy::errors`], so a test can assert that nothing it sent went
//! unrecorded.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kube::Client;
use tokio::net::TcpListener;

use crate::Error;

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// Whether this request can change state (anything but GET/HEAD/OPTIONS).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }

    /// The query's parameters, decoded.
    pub fn params(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| {
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (percent_decode(k), percent_decode(v))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Exactly one `dryRun` parameter, equal to `All`.
    pub fn is_dry_run(&self) -> bool {
        let d: Vec<String> = self
            .params()
            .into_iter()
            .filter(|(k, _)| k == "dryRun")
            .map(|(_, v)| v)
            .collect();
        d.len() == 1 && d[0] == "All"
    }
}

/// Percent-decoding of a query parameter or path segment (`+` is a space; an invalid
/// escape stays as it is), as the API server and the kubelet read them.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A running proxy; stops when dropped.
pub struct RecordingProxy {
    port: u16,
    log: Arc<Mutex<Vec<Recorded>>>,
    errors: Arc<Mutex<Vec<String>>>,
    kubeconfig: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener on a free loopback port, and the port; `what` names the server in errors.
pub(crate) async fn bind_loopback(what: &str) -> Result<(TcpListener, u16), Error> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::io(format!("binding {what}'s port"), e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io(format!("reading {what}'s port"), e))?
        .port();
    Ok((listener, port))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RecordingProxy {
    /// Start a proxy that forwards with `client`, writing a kubeconfig for it into `dir`
    /// (context `proxied`, default namespace `namespace`).
    pub async fn start(client: Client, dir: &Path, namespace: &str) -> Result<Self, Error> {
        let (listener, port) = bind_loopback("the recording proxy").await?;
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let task_log = log.clone();
        let task_errors = errors.clone();
        let task = tokio::spawn(async move {
            loop {
                let tcp = match listener.accept().await {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        // Out of file descriptors and the like: note it, and do not spin.
                        lock(&task_errors).push(format!("accepting a connection: {e}"));
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let client = client.clone();
                let log = task_log.clone();
                let errors = task_errors.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let client = client.clone();
                        let log = log.clone();
                        async move { Ok::<_, Infallible>(forward(client, log, req).await) }
                    });
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await
                    {
                        lock(&errors).push(e.to_string());
                    }
                });
            }
        });
        let kubeconfig = dir.join("proxied-kubeconfig.yaml");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: proxied\nclusters:\n- name: proxied\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: proxied\n  context:\n    cluster: proxied\n    user: proxied\n    namespace: {namespace}\nusers:\n- name: proxied\n  user: {{}}\n"
        );
        std::fs::write(&kubeconfig, text)
            .map_err(|e| Error::io(format!("writing {}", kubeconfig.display()), e))?;
        Ok(RecordingProxy {
            port,
            log,
            errors,
            kubeconfig,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig whose only context points at the proxy.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client configuration pointing at the proxy.
    pub fn config(&self, namespace: &str) -> Result<kube::Config, Error> {
        let url = self
            .url()
            .parse()
            .map_err(|e| Error::Other(format!("proxy url: {e}")))?;
        let mut c = kube::Config::new(url);
        c.default_namespace = namespace.to_string();
        Ok(c)
    }

    /// Everything recorded so far, and forget it.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *lock(&self.log))
    }

    /// Everything recorded so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        lock(&self.log).clone()
    }

    /// Connections that ended in an error before or while a request was read (a
    /// malformed request line, a body cut short): what a client sent that is not in
    /// [`RecordingProxy::recorded`]. Empty when every byte sent was a well-formed request.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.errors).clone()
    }
}

async fn forward(
    client: Client,
    log: Arc<Mutex<Vec<Recorded>>>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => return plain(502, format!("proxy: reading the request body: {e}")),
    };
    lock(&log).push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(String::from),
        body: body.clone(),
    });
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut out = Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query);
    for (k, v) in &parts.headers {
        if matches!(k.as_str(), "content-type" | "accept") {
            out = out.header(k, v);
        }
    }
    let out = match out.body(kube::client::Body::from(body)) {
        Ok(r) => r,
        Err(e) => return plain(502, format!("proxy: building the request: {e}")),
    };
    match client.send(out).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let bytes = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return plain(502, format!("proxy: reading the response: {e}")),
            };
            let mut r = Response::builder().status(parts.status);
            for (k, v) in &parts.headers {
                if matches!(k.as_str(), "content-type") {
                    r = r.header(k, v);
                }
            }
            r.body(Full::new(bytes))
                .unwrap_or_else(|e| plain(502, format!("proxy: {e}")))
        }
        Err(e) => plain(502, format!("proxy: forwarding: {e}")),
    }
}

fn plain(status: u16, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_and_dry_run_is_exact() {
        let r = Recorded {
            method: "PATCH".into(),
            path: "/x".into(),
            query: Some("fieldManager=kai&dryRun=All&a=%23b+c".into()),
            body: vec![],
        };
        assert!(r.is_write() && r.is_dry_run());
        assert!(r.params().contains(&("a".into(), "#b c".into())));
        let twice = Recorded {
            query: Some("dryRun=All&dryRun=".into()),
            ..r.clone()
        };
        assert!(!twice.is_dry_run());
        let none = Recorded { query: None, ..r };
        assert!(!none.is_dry_run());
    }
}
