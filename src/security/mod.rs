//! Who a connection is: listeners' TLS and SASL, the principal of each connection.
//!
//! A connection's principal is `User:ANONYMOUS` on PLAINTEXT, the subject of its client
//! certificate on SSL (or ANONYMOUS without one), and `User:<name>` once a SASL login
//! succeeded. On a SASL listener nothing but ApiVersions, SaslHandshake and
//! SaslAuthenticate is served before that login, or after the session it opened
//! expired (`connections.max.reauth.ms`, KIP-368) unless the client re-authenticates.

pub mod acl;
pub mod ktls;
pub mod sasl;
pub mod scram;
pub mod tls;

use crate::config::{ListenerConfig, SaslMechanism, SecurityProtocol};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The principal of an unauthenticated connection.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// A client listener as the server runs it.
pub struct ListenerContext {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub sasl_mechanisms: Vec<SaslMechanism>,
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms`; 0: sessions never expire.
    pub max_reauth_ms: i64,
    /// `ssl.kernel.tls.enable`: TLS sessions move to the kernel where it can take them.
    pub kernel_tls: bool,
}

impl std::fmt::Debug for ListenerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerContext")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("sasl_mechanisms", &self.sasl_mechanisms)
            .finish_non_exhaustive()
    }
}

impl ListenerContext {
    /// A PLAINTEXT listener (what in-process tests serve).
    pub fn plaintext() -> Arc<Self> {
        Arc::new(ListenerContext {
            name: "PLAINTEXT".into(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl_mechanisms: Vec::new(),
            plain_users: BTreeMap::new(),
            max_reauth_ms: 0,
            kernel_tls: false,
        })
    }

    /// The listener a config describes; fails on unreadable or unusable certificates.
    pub fn from_config(listener: &ListenerConfig) -> anyhow::Result<Arc<Self>> {
        let tls = match &listener.security.tls {
            Some(settings) => Some(
                tls::server_config(settings)
                    .map_err(|error| anyhow::anyhow!("listener {}: {error:#}", listener.name))?,
            ),
            None => None,
        };
        Ok(Arc::new(ListenerContext {
            name: listener.name.clone(),
            protocol: listener.protocol,
            tls,
            sasl_mechanisms: listener.security.sasl_mechanisms.clone(),
            plain_users: listener.security.plain_users.clone(),
            max_reauth_ms: listener.security.max_reauth_ms,
            kernel_tls: listener
                .security
                .tls
                .as_ref()
                .is_some_and(|settings| settings.kernel_tls),
        }))
    }
}

/// How this broker secures its own connections to another broker's listener: TLS
/// (trusting the truststore, presenting the keystore) and a SASL login.
pub struct ClientSecurity {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<(SaslMechanism, String, String)>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.tls.is_some())
            .field(
                "sasl",
                &self.sasl.as_ref().map(|(mechanism, user, _)| (mechanism, user)),
            )
            .finish()
    }
}

impl ClientSecurity {
    /// The security for connecting to `listener` on other brokers, with `mechanism`
    /// (`sasl.mechanism.inter.broker.protocol`); None for a PLAINTEXT listener.
    pub fn for_listener(
        listener: &ListenerConfig,
        mechanism: SaslMechanism,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        if listener.protocol == SecurityProtocol::Plaintext {
            return Ok(None);
        }
        let tls = match &listener.security.tls {
            Some(settings) => Some(tls::client_config(settings)?),
            None => None,
        };
        let sasl = if listener.protocol.uses_sasl() {
            let (user, password) = listener.security.client_login.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "the inter-broker listener {} needs the broker's own login: username and password in listener.name.{}.{}.sasl.jaas.config",
                    listener.name,
                    listener.name.to_ascii_lowercase(),
                    mechanism.name().to_ascii_lowercase()
                )
            })?;
            Some((mechanism, user, password))
        } else {
            None
        };
        Ok(Some(Arc::new(ClientSecurity { tls, sasl })))
    }
}

/// One connection's identity and SASL progress.
#[derive(Debug)]
pub struct Session {
    pub listener: Arc<ListenerContext>,
    pub peer: SocketAddr,
    /// The principal from TLS (a client certificate's subject) or ANONYMOUS; a SASL
    /// login replaces it.
    pub transport_principal: String,
    pub sasl: sasl::SaslState,
    /// A client over a quota: no request is read from it before then (KIP-219).
    pub muted_until: Option<std::time::Instant>,
}

impl Session {
    pub fn new(
        listener: Arc<ListenerContext>,
        peer: SocketAddr,
        transport_principal: Option<String>,
    ) -> Self {
        Session {
            listener,
            peer,
            transport_principal: transport_principal.unwrap_or_else(|| ANONYMOUS.to_string()),
            sasl: sasl::SaslState::default(),
            muted_until: None,
        }
    }

    /// A PLAINTEXT session (tests and tools).
    pub fn plaintext(peer: SocketAddr) -> Self {
        Self::new(ListenerContext::plaintext(), peer, None)
    }

    /// The connection's principal (`User:name`).
    pub fn principal(&self) -> String {
        match &self.sasl.user {
            Some(user) if self.listener.protocol.uses_sasl() => format!("User:{user}"),
            _ => self.transport_principal.clone(),
        }
    }

    /// Whether requests other than the SASL ones may be served now.
    pub fn authenticated(&self, now: std::time::Instant) -> bool {
        !self.listener.protocol.uses_sasl() || self.sasl.live_user(now).is_some()
    }
}

/// A random key of this process, for made-up salts.
fn process_secret() -> &'static [u8; 32] {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    SECRET.get_or_init(|| {
        let mut secret = [0u8; 32];
        // A failing system RNG leaves the key zero: decoy salts are then guessable,
        // which only tells an attacker that a user does not exist.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret);
        secret
    })
}

/// The salt a SCRAM exchange shows for a user without a credential: stable for the
/// process, unpredictable without its key.
pub fn decoy_salt(user: &str) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, process_secret());
    ring::hmac::sign(&key, user.as_bytes()).as_ref()[..16].to_vec()
}

/// A fresh server nonce for a SCRAM exchange (printable, no commas).
pub fn server_nonce() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        // Never reuse a nonce silently: fall back to the clock mixed into the key.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, process_secret());
        bytes.copy_from_slice(&ring::hmac::sign(&key, &now.to_be_bytes()).as_ref()[..18]);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
