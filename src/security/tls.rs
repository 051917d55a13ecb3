//! TLS listeners on rustls: the server config from a listener's PEM keystore and
//! truststore, and the principal of a client certificate (its subject, as Kafka's
//! default `ssl.principal.mapping.rules` gives it).

use crate::config::{ClientAuth, TlsSettings};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(pem: &[u8], what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| anyhow::anyhow!("{what}: {error}"))?;
    anyhow::ensure!(!certificates.is_empty(), "{what} holds no certificate");
    Ok(certificates)
}

/// The CAs of a truststore.
pub fn root_store(settings: &TlsSettings) -> anyhow::Result<Option<rustls::RootCertStore>> {
    let Some(source) = &settings.truststore else {
        return Ok(None);
    };
    let pem = source
        .read()
        .map_err(|error| anyhow::anyhow!("cannot read the truststore {source:?}: {error}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates(&pem, "the truststore")? {
        roots
            .add(certificate)
            .map_err(|error| anyhow::anyhow!("truststore certificate: {error}"))?;
    }
    Ok(Some(roots))
}

fn protocol_versions(settings: &TlsSettings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut versions = Vec::new();
    if settings.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if settings.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    versions
}

/// A listener's rustls server config.
pub fn server_config(settings: &TlsSettings) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain_pem = settings
        .certificate_chain
        .read()
        .map_err(|error| anyhow::anyhow!("cannot read the keystore certificate chain: {error}"))?;
    let key_pem = settings
        .private_key
        .read()
        .map_err(|error| anyhow::anyhow!("cannot read the keystore key: {error}"))?;
    let chain = certificates(&chain_pem, "the keystore")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|error| anyhow::anyhow!("the keystore holds no usable private key: {error}"))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&protocol_versions(settings))
        .map_err(|error| anyhow::anyhow!("TLS protocol versions: {error}"))?;
    let builder = match (settings.client_auth, root_store(settings)?) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(roots)) => {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|error| anyhow::anyhow!("client certificate verifier: {error}"))?,
            )
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| anyhow::anyhow!("keystore certificate and key: {error}"))?;
    // Kafka clients expect no ALPN; session keys may be handed to the kernel (kTLS).
    config.enable_secret_extraction = true;
    Ok(Arc::new(config))
}

/// A client config for this broker's own connections to other brokers' TLS
/// listeners: the truststore's CAs, and this listener's certificate when client
/// certificates are asked for.
pub fn client_config(settings: &TlsSettings) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let roots = root_store(settings)?.ok_or_else(|| {
        anyhow::anyhow!("inter-broker TLS needs ssl.truststore.location or ssl.truststore.certificates")
    })?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&protocol_versions(settings))
        .map_err(|error| anyhow::anyhow!("TLS protocol versions: {error}"))?
        .with_root_certificates(roots);
    let chain_pem = settings.certificate_chain.read()?;
    let key_pem = settings.private_key.read()?;
    let chain = certificates(&chain_pem, "the keystore")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|error| anyhow::anyhow!("the keystore holds no usable private key: {error}"))?;
    let config = builder
        .with_client_auth_cert(chain, key)
        .map_err(|error| anyhow::anyhow!("keystore certificate and key: {error}"))?;
    Ok(Arc::new(config))
}

/// The principal of a client certificate: `User:` and its subject in RFC 2253 form
/// (`CN=alice,OU=eng,O=example`), as Kafka's DEFAULT mapping rule gives it.
pub fn certificate_principal(certificate: &[u8]) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let registry = x509_parser::objects::oid_registry();
    let mut parts = Vec::new();
    for rdn in parsed.subject().iter_rdn().collect::<Vec<_>>().into_iter().rev() {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let name = x509_parser::objects::oid2abbrev(attribute.attr_type(), registry)
                    .map(str::to_string)
                    .unwrap_or_else(|_| attribute.attr_type().to_id_string());
                let value = attribute.as_str().unwrap_or_default();
                format!("{name}={}", escape_rfc2253(value))
            })
            .collect();
        parts.push(attributes.join("+"));
    }
    Some(format!("User:{}", parts.join(",")))
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (index, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (index == 0 && (c == '#' || c == ' '))
            || (index + 1 == value.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
