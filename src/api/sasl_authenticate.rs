//! SaslAuthenticate (API 36, KIP-152): one token of the SASL exchange the handshake
//! chose. A failed login is answered with SASL_AUTHENTICATION_FAILED and a message that
//! never says whether the user or the password was wrong, logged with the client's
//! address, and the connection is closed. A successful one sets the connection's
//! principal and, with `connections.max.reauth.ms`, the session lifetime (KIP-368).

use super::{Outcome, respond};
use crate::broker::Broker;
use crate::security::Session;
use crate::security::sasl::{Credentials, SaslError, Step};
use crate::security::scram::{ScramCredential, ScramHash};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

/// Users as this connection's listener and the cluster metadata know them.
struct Known<'a> {
    broker: &'a Broker,
    listener: &'a crate::security::ListenerContext,
}

impl Credentials for Known<'_> {
    fn plain_password(&self, user: &str) -> Option<String> {
        self.listener.plain_users.get(user).cloned()
    }

    fn scram_credential(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
        self.broker.image().scram_credential(user, hash).cloned()
    }

    fn decoy_salt(&self, user: &str) -> Vec<u8> {
        crate::security::decoy_salt(user)
    }
}

/// Runs one step; on success records the login in the session.
fn step(broker: &Broker, session: &mut Session, token: &[u8]) -> Result<Step, SaslError> {
    let nonce = crate::security::server_nonce();
    let listener = session.listener.clone();
    let result = session.sasl.step(
        token,
        &Known {
            broker,
            listener: &listener,
        },
        &nonce,
    );
    match &result {
        Ok(Step::Authenticated { user, .. }) => {
            let lifetime_ms = session.listener.max_reauth_ms;
            session.sasl.expires_at = (lifetime_ms > 0)
                .then(|| std::time::Instant::now() + std::time::Duration::from_millis(lifetime_ms as u64));
            if session.sasl.user.is_none() {
                tracing::debug!(peer = %session.peer, %user, "SASL authentication succeeded");
            }
            session.sasl.user = Some(user.clone());
        }
        Ok(Step::Challenge(_)) => {}
        Err(message) => {
            tracing::warn!(peer = %session.peer, listener = %session.listener.name, %message, "SASL authentication failed");
        }
    }
    result
}

pub fn handle(
    broker: &Arc<Broker>,
    session: &mut Session,
    request: SaslAuthenticateRequest,
    version: i16,
    correlation_id: i32,
) -> Outcome {
    if !session.sasl.exchanging() {
        let response = SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "SaslAuthenticate without a SaslHandshake choosing a mechanism",
            )));
        return close_after(respond(
            ApiKey::SaslAuthenticate,
            version,
            correlation_id,
            &response,
        ));
    }
    match step(broker, session, &request.auth_bytes) {
        Ok(Step::Challenge(challenge)) => respond(
            ApiKey::SaslAuthenticate,
            version,
            correlation_id,
            &SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(challenge)),
        ),
        Ok(Step::Authenticated { reply, .. }) => respond(
            ApiKey::SaslAuthenticate,
            version,
            correlation_id,
            &SaslAuthenticateResponse::default()
                .with_auth_bytes(Bytes::from(reply))
                .with_session_lifetime_ms(session.listener.max_reauth_ms),
        ),
        Err(message) => {
            let response = SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_string(message.to_string())));
            close_after(respond(
                ApiKey::SaslAuthenticate,
                version,
                correlation_id,
                &response,
            ))
        }
    }
}

/// A bare token after a v0 SaslHandshake, answered with a bare token; a failure
/// closes the connection without an answer, as Kafka does.
pub fn handle_raw(broker: &Arc<Broker>, session: &mut Session, token: Bytes) -> Outcome {
    let reply = match step(broker, session, &token) {
        Ok(Step::Challenge(reply)) | Ok(Step::Authenticated { reply, .. }) => reply,
        Err(_) => return Outcome::Close(None),
    };
    let mut frame = BytesMut::with_capacity(4 + reply.len());
    frame.put_i32(reply.len() as i32);
    frame.put_slice(&reply);
    Outcome::Respond(vec![super::Chunk::Bytes(frame.freeze())])
}

/// Sends the answer, then closes the connection.
fn close_after(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Respond(chunks) => {
            let mut frame = BytesMut::new();
            for chunk in chunks {
                if let super::Chunk::Bytes(bytes) = chunk {
                    frame.put_slice(&bytes);
                }
            }
            Outcome::Close(Some(frame))
        }
        other => other,
    }
}
