//! SaslHandshake (API 17): picks the SASL mechanism for the exchange that follows.
//! Version 0 means the tokens then come as bare frames; version 1 means they come in
//! SaslAuthenticate requests.

use crate::config::SaslMechanism;
use crate::security::Session;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

pub fn handle(session: &mut Session, request: SaslHandshakeRequest, version: i16) -> SaslHandshakeResponse {
    let listener = &session.listener;
    let mechanisms = listener
        .sasl_mechanisms
        .iter()
        .map(|mechanism| StrBytes::from_static_str(mechanism.name()))
        .collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    if !listener.protocol.uses_sasl() || session.sasl.exchanging() {
        return response.with_error_code(ResponseError::IllegalSaslState.code());
    }
    match SaslMechanism::parse(&request.mechanism)
        .filter(|mechanism| listener.sasl_mechanisms.contains(mechanism))
    {
        Some(mechanism) => {
            session.sasl.handshake(mechanism, version == 0);
            response
        }
        None => {
            tracing::info!(peer = %session.peer, mechanism = %request.mechanism.as_str(), "SASL mechanism not enabled");
            response.with_error_code(ResponseError::UnsupportedSaslMechanism.code())
        }
    }
}
