//! Certificates and tokens for one cluster: a CA, the apiserver's serving certificate,
//! the service-account signing key pair, the front-proxy CA and the client certificate
//! the apiserver shows the aggregated APIs it calls (the fake metrics API accepts no
//! other caller), and random bearer tokens.

use std::io::Read;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::Error;

pub(crate) struct Pki {
    pub ca_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub sa_key_pem: String,
    pub sa_pub_pem: String,
    /// The CA of the apiserver's front-proxy client certificate (DER and PEM).
    pub front_proxy_ca_der: Vec<u8>,
    pub front_proxy_ca_pem: String,
    pub front_proxy_client_cert_pem: String,
    pub front_proxy_client_key_pem: String,
}

/// The front-proxy client's common name, as `--requestheader-allowed-names` has it.
pub(crate) const FRONT_PROXY_CLIENT: &str = "front-proxy-client";

/// A CA named `name`: its certificate and what signs with it.
fn ca(name: &str) -> Result<(rcgen::Certificate, Issuer<'static, KeyPair>), Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok((cert, Issuer::new(params, key)))
}

pub(crate) fn generate() -> Result<Pki, Error> {
    let (ca_cert, issuer) = ca("kai-testcluster-ca")?;

    let serving_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "10.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let serving = params.signed_by(&serving_key, &issuer)?;

    let (proxy_ca, proxy_issuer) = ca("kai-testcluster-front-proxy-ca")?;
    let client_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, FRONT_PROXY_CLIENT);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &proxy_issuer)?;

    let sa_key = KeyPair::generate()?;
    Ok(Pki {
        front_proxy_ca_der: proxy_ca.der().to_vec(),
        front_proxy_ca_pem: proxy_ca.pem(),
        front_proxy_client_cert_pem: client.pem(),
        front_proxy_client_key_pem: client_key.serialize_pem(),
        ca_pem: ca_cert.pem(),
        serving_cert_pem: serving.pem(),
        serving_key_pem: serving_key.serialize_pem(),
        sa_pub_pem: sa_key.public_key_pem(),
        sa_key_pem: sa_key.serialize_pem(),
    })
}

/// A random 32-hex-digit token (from the kernel's CSPRNG).
pub(crate) fn token() -> Result<String, Error> {
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("reading /dev/urandom", e))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
