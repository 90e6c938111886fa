//! The write gate: a layer in every kai client's request stack that sees each request
//! exactly as it leaves for the API server (method, path, query) and refuses any write
//! that is neither a server-side dry run nor carries the one-time approval minted for
//! that exact request after the user said yes.
//!
//! This is defence in depth behind name validation and path encoding: whatever a bug
//! or a hostile name does to a URL (a `#` that drops `dryRun=All`, a `?` that adds
//! parameters), a request that would persist a change without an approval for *that*
//! request never reaches the server.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Method, Request};
use tower::{BoxError, Layer, Service};

/// Attached to an approved write request (an `http::Extensions` entry); the gate takes
/// it, so each approval sends one request at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalToken(u64);

/// What an approval is bound to: the method, the path with its query, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    method: Method,
    path_and_query: String,
    body: u64,
}

/// The approvals minted in this process, shared by the gate layer and the cluster's
/// write path.
#[derive(Debug, Default)]
pub struct GateState {
    approved: Mutex<HashMap<u64, Fingerprint>>,
    hasher: std::collections::hash_map::RandomState,
    /// Every request the gate refused, for tests and the audit of the refusal itself.
    refused: Mutex<Vec<String>>,
}

/// Why the gate refused a request.
#[derive(Debug, thiserror::Error)]
#[error("kai refused to send an unapproved write ({0}); nothing was changed. This is a safety stop: the request would have changed the cluster without the user's yes for that exact request")]
pub struct Refused(pub String);

fn path_and_query<B>(req: &Request<B>) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string())
}

/// A write method: anything but GET, HEAD and OPTIONS can change state.
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// True when the query holds exactly one `dryRun` parameter and it is `All`.
pub fn is_dry_run(query: Option<&str>) -> bool {
    let Some(q) = query else { return false };
    let values: Vec<String> = form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == "dryRun")
        .map(|(_, v)| v.into_owned())
        .collect();
    values.len() == 1 && values[0] == "All"
}

impl GateState {
    fn body_hash(&self, body: &[u8]) -> u64 {
        self.hasher.hash_one(body)
    }

    /// Mint the approval for this exact request. Only the change pipeline calls this,
    /// after the user approved the diff this request produces.
    pub fn approve(&self, req: &Request<Vec<u8>>) -> ApprovalToken {
        let token = loop {
            let t = fastrand::u64(..);
            if t != 0 {
                break t;
            }
        };
        let fp = Fingerprint {
            method: req.method().clone(),
            path_and_query: path_and_query(req),
            body: self.body_hash(req.body()),
        };
        if let Ok(mut m) = self.approved.lock() {
            m.insert(token, fp);
        }
        ApprovalToken(token)
    }

    /// Check a request before it is handed to the client: a write that is not a dry run
    /// must carry a token minted for exactly this method, path, query and body. The
    /// token stays registered for the layer, which consumes it.
    pub fn check_outgoing(&self, req: &Request<Vec<u8>>) -> Result<(), Refused> {
        if !is_write(req.method()) || is_dry_run(req.uri().query()) {
            return Ok(());
        }
        let what = format!("{} {}", req.method(), path_and_query(req));
        let token = req.extensions().get::<ApprovalToken>().copied();
        let ok = token.is_some_and(|t| {
            self.approved.lock().ok().is_some_and(|m| {
                m.get(&t.0).is_some_and(|fp| {
                    fp.method == req.method()
                        && fp.path_and_query == path_and_query(req)
                        && fp.body == self.body_hash(req.body())
                })
            })
        });
        if ok {
            Ok(())
        } else {
            self.refuse(what)
        }
    }

    /// The layer's check on the final request: method and path with query must match
    /// the approval, which is used up.
    fn check_final<B>(&self, req: &Request<B>) -> Result<(), Refused> {
        if !is_write(req.method()) || is_dry_run(req.uri().query()) {
            return Ok(());
        }
        let what = format!("{} {}", req.method(), path_and_query(req));
        let Some(token) = req.extensions().get::<ApprovalToken>().copied() else {
            return self.refuse(what);
        };
        let fp = self
            .approved
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&token.0));
        match fp {
            Some(fp) if fp.method == req.method() && fp.path_and_query == path_and_query(req) => {
                Ok(())
            }
            _ => self.refuse(what),
        }
    }

    fn refuse(&self, what: String) -> Result<(), Refused> {
        tracing::error!("write gate refused {what}");
        if let Ok(mut r) = self.refused.lock() {
            r.push(what.clone());
        }
        Err(Refused(what))
    }

    /// The requests refused so far in this process.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// The tower layer installed in every client kai builds for a cluster.
#[derive(Clone)]
pub struct WriteGateLayer {
    pub state: Arc<GateState>,
}

impl<S> Layer<S> for WriteGateLayer {
    type Service = WriteGate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WriteGate {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct WriteGate<S> {
    inner: S,
    state: Arc<GateState>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, B> Service<Request<B>> for WriteGate<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Err(e) = self.state.check_final(&req) {
            return Box::pin(async move { Err(BoxError::from(e)) });
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(method: Method, uri: &str, body: &[u8]) -> Request<Vec<u8>> {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(body.to_vec())
            .unwrap()
    }

    #[test]
    fn reads_and_dry_runs_pass_writes_need_their_own_approval() {
        let g = GateState::default();
        g.check_final(&req(Method::GET, "/api/v1/pods", b""))
            .unwrap();
        g.check_final(&req(
            Method::PATCH,
            "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=kai&dryRun=All",
            b"{}",
        ))
        .unwrap();
        // No dryRun, no token.
        let plain = req(
            Method::PATCH,
            "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=kai",
            b"{}",
        );
        assert!(g.check_outgoing(&plain).is_err());
        assert!(g.check_final(&plain).is_err());
        // dryRun given twice, or not All: not a dry run.
        for q in [
            "dryRun=All&dryRun=",
            "dryRun=all",
            "dryRun=None",
            "xdryRun=All",
        ] {
            let r = req(
                Method::DELETE,
                &format!("/api/v1/namespaces/a/pods/p?{q}"),
                b"",
            );
            assert!(g.check_final(&r).is_err(), "{q}");
        }
        assert_eq!(g.refused().len(), 6);
    }

    #[test]
    fn an_approval_fits_one_request_once() {
        let g = GateState::default();
        let mut r = req(
            Method::PATCH,
            "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=kai",
            b"{\"spec\":{\"replicas\":3}}",
        );
        let t = g.approve(&r);
        r.extensions_mut().insert(t);
        g.check_outgoing(&r).unwrap();
        g.check_final(&r).unwrap();
        // Used up.
        assert!(g.check_final(&r).is_err());

        // Bound to the body, the path and the method.
        let mut other_body = req(
            Method::PATCH,
            "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=kai",
            b"{\"spec\":{\"replicas\":0}}",
        );
        let mut other_path = req(
            Method::PATCH,
            "/apis/apps/v1/namespaces/a/deployments/db?fieldManager=kai",
            b"{\"spec\":{\"replicas\":3}}",
        );
        let mut other_method = req(
            Method::DELETE,
            "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=kai",
            b"{\"spec\":{\"replicas\":3}}",
        );
        let t = g.approve(&req(
            Method::PATCH,
            "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=kai",
            b"{\"spec\":{\"replicas\":3}}",
        ));
        for r in [&mut other_body, &mut other_path, &mut other_method] {
            r.extensions_mut().insert(t);
        }
        assert!(g.check_outgoing(&other_body).is_err());
        assert!(g.check_final(&other_path).is_err());
        assert!(g.check_final(&other_method).is_err());
    }

    #[test]
    fn a_fragment_that_drops_the_dry_run_is_a_refused_write() {
        // What the http crate makes of a name holding '#': the fragment and the query
        // after it are gone, so the request is a plain write.
        let g = GateState::default();
        let uri: http::Uri = "/apis/apps/v1/namespaces/a/deployments/web#x?dryRun=All"
            .parse()
            .unwrap();
        let r = Request::builder()
            .method(Method::PATCH)
            .uri(uri)
            .body(Vec::<u8>::new())
            .unwrap();
        assert!(!is_dry_run(r.uri().query()));
        assert!(g.check_final(&r).is_err());
    }
}
