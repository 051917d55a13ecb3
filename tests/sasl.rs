//! SASL on a listener of an in-process broker, over raw TCP: nothing before a login,
//! session lifetimes and re-authentication (KIP-368), refused logins.

mod common;

use bytes::Bytes;
use common::{Client, TestBroker};
use ferrolog::config::{SaslMechanism, SecurityProtocol};
use ferrolog::security::ListenerContext;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const LIFETIME_MS: i64 = 600;

/// A SASL_PLAINTEXT listener (PLAIN users alice and bob, sessions of 600 ms) on the broker.
async fn sasl_listener(broker: &TestBroker) -> SocketAddr {
    let context = Arc::new(ListenerContext {
        name: "SASL_PLAINTEXT".into(),
        protocol: SecurityProtocol::SaslPlaintext,
        tls: None,
        sasl_mechanisms: vec![SaslMechanism::Plain, SaslMechanism::ScramSha512],
        plain_users: BTreeMap::from([
            ("alice".to_string(), "alice-secret".to_string()),
            ("bob".to_string(), "bob-secret".to_string()),
        ]),
        max_reauth_ms: LIFETIME_MS,
        kernel_tls: false,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let shared = ferrolog::server::Shared::new(&broker.broker);
    tokio::spawn(ferrolog::server::run_listener(
        listener,
        broker.broker.clone(),
        context,
        ferrolog::server::ServerOptions::default(),
        shared,
        std::future::pending::<()>(),
    ));
    address
}

async fn login(client: &mut Client, user: &str, password: &str) -> SaslAuthenticateResponse {
    let handshake = client
        .send(
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
            1,
        )
        .await
        .expect("handshake");
    assert_eq!(handshake.error_code, 0);
    assert!(
        handshake
            .mechanisms
            .iter()
            .any(|mechanism| mechanism.as_str() == "PLAIN")
    );
    client
        .send(
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(format!("\0{user}\0{password}"))),
            1,
        )
        .await
        .expect("authenticate")
}

async fn metadata_answered(client: &mut Client) -> bool {
    client.send(MetadataRequest::default(), 12).await.is_ok()
}

#[tokio::test]
async fn nothing_is_served_before_a_login() {
    let broker = TestBroker::start(&[]).await;
    let address = sasl_listener(&broker).await;
    // ApiVersions is allowed (clients ask it first), Metadata is not.
    let mut client = Client::connect(address).await;
    let versions = client
        .send(ApiVersionsRequest::default(), 3)
        .await
        .expect("api versions");
    assert_eq!(versions.error_code, 0);
    assert!(!metadata_answered(&mut client).await);
    // The PLAINTEXT listener of the same broker is unaffected.
    assert!(metadata_answered(&mut broker.client().await).await);
}

#[tokio::test]
async fn refused_logins_get_one_message_and_close() {
    let broker = TestBroker::start(&[]).await;
    let address = sasl_listener(&broker).await;
    let mut messages = Vec::new();
    for (user, password) in [("alice", "guess"), ("mallory", "alice-secret")] {
        let mut client = Client::connect(address).await;
        let response = login(&mut client, user, password).await;
        assert_eq!(response.error_code, 58, "SASL_AUTHENTICATION_FAILED");
        messages.push(response.error_message.map(|message| message.to_string()));
        assert!(!metadata_answered(&mut client).await, "connection closed");
    }
    assert_eq!(messages[0], messages[1]);
    assert!(
        messages[0]
            .as_deref()
            .unwrap_or_default()
            .contains("Authentication failed")
    );
    // An unknown mechanism is refused with the enabled ones listed.
    let mut client = Client::connect(address).await;
    let handshake = client
        .send(
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI")),
            1,
        )
        .await
        .expect("handshake");
    assert_eq!(handshake.error_code, 33, "UNSUPPORTED_SASL_MECHANISM");
    assert_eq!(handshake.mechanisms.len(), 2);
}

#[tokio::test]
async fn sessions_expire_unless_the_client_reauthenticates() {
    let broker = TestBroker::start(&[]).await;
    let address = sasl_listener(&broker).await;

    // A session of 600 ms: served within it, closed at the first request after it.
    let mut client = Client::connect(address).await;
    let response = login(&mut client, "alice", "alice-secret").await;
    assert_eq!(response.error_code, 0);
    assert_eq!(response.session_lifetime_ms, LIFETIME_MS);
    assert!(metadata_answered(&mut client).await);
    tokio::time::sleep(Duration::from_millis(LIFETIME_MS as u64 + 200)).await;
    assert!(
        !metadata_answered(&mut client).await,
        "expired session closes the connection"
    );

    // Re-authenticating before the end starts a new session on the same connection.
    let mut client = Client::connect(address).await;
    assert_eq!(login(&mut client, "alice", "alice-secret").await.error_code, 0);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(LIFETIME_MS as u64 / 2)).await;
        assert_eq!(login(&mut client, "alice", "alice-secret").await.error_code, 0);
        assert!(metadata_answered(&mut client).await);
    }
    // An expired session may still re-authenticate, then is served again.
    tokio::time::sleep(Duration::from_millis(LIFETIME_MS as u64 + 200)).await;
    assert_eq!(login(&mut client, "alice", "alice-secret").await.error_code, 0);
    assert!(metadata_answered(&mut client).await);

    // Re-authentication as someone else is refused and closes the connection.
    let response = login(&mut client, "bob", "bob-secret").await;
    assert_eq!(response.error_code, 58);
    assert!(
        response
            .error_message
            .as_deref()
            .is_some_and(|message| message.contains("Cannot change principals"))
    );
    assert!(!metadata_answered(&mut client).await);
}
