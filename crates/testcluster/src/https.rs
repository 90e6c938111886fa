//! The HTTPS side of the fake servers the apiserver calls (the kubelet, the metrics
//! API): a throw-away self-signed certificate, which the apiserver accepts because it is
//! started without a CA for them, and the accept loop that serves each connection.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::Error;

/// A TLS acceptor with a fresh self-signed certificate for `names` (IP addresses or host
/// names); `what` names the server in errors. With `client_ca` (a CA certificate, DER),
/// only a client showing a certificate that CA signed gets through the handshake.
pub(crate) fn self_signed_acceptor(
    names: Vec<String>,
    what: &str,
    client_ca: Option<Vec<u8>>,
) -> Result<TlsAcceptor, Error> {
    let tls_error = |e: &dyn std::fmt::Display| Error::Other(format!("{what} TLS: {e}"));
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(names)?.self_signed(&key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&e))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(der) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(rustls::pki_types::CertificateDer::from(der))
                .map_err(|e| tls_error(&e))?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| tls_error(&e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(|e| Error::Other(format!("{what} TLS: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves HTTPS on `listener` until the runtime shuts down, each request answered by
/// `handle`. A connection that fails its handshake or breaks off is dropped (logged at
/// debug, `what` naming the server): the next one is served as usual.
pub(crate) fn serve<H, F>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    what: &'static str,
    handle: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let handle = handle.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: Request<Incoming>| {
                    let resp = handle(req);
                    async move { Ok::<_, Infallible>(resp.await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await
                {
                    tracing::debug!("{what} connection: {e}");
                }
            });
        }
    });
}
