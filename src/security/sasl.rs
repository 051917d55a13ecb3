//! SASL on a connection: which mechanism was chosen, the exchange in progress, who was
//! authenticated and until when (KIP-368). Pure apart from the nonce the caller passes.

use super::scram::{ScramCredential, ScramError, ScramHash, ScramServer};
use crate::config::SaslMechanism;
use std::time::Instant;

/// Where an exchange finds users: PLAIN passwords from the listener's JAAS config,
/// SCRAM credentials from the cluster metadata.
pub trait Credentials {
    fn plain_password(&self, user: &str) -> Option<String>;
    fn scram_credential(&self, user: &str, hash: ScramHash) -> Option<ScramCredential>;
    /// A stable made-up salt for a user without a credential.
    fn decoy_salt(&self, user: &str) -> Vec<u8>;
}

/// Why a SASL exchange ended without a login. The message is the client's (Kafka's
/// wording); a wrong password and an unknown user read the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("SaslAuthenticate before a SaslHandshake")]
    NoHandshake,
    #[error("Invalid SCRAM message: not UTF-8")]
    NotUtf8,
    #[error("{PLAIN_FAILED}")]
    BadCredentials,
    #[error("Invalid SASL/PLAIN response: expected 3 tokens")]
    MalformedPlain,
    #[error("Authentication failed: Client requested an authorization id that is different from username")]
    AuthorizationIdMismatch,
    #[error("{0}")]
    Scram(#[from] ScramError),
    #[error("Cannot change principals during re-authentication from User:{previous} to User:{user}")]
    PrincipalChanged { previous: String, user: String },
}

/// Kafka's message for a failed PLAIN login: the same for an unknown user and a wrong
/// password.
pub const PLAIN_FAILED: &str = "Authentication failed: Invalid username or password";

/// What one SaslAuthenticate token leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge; the exchange goes on.
    Challenge(Vec<u8>),
    /// The user is authenticated; send this last message.
    Authenticated { user: String, reply: Vec<u8> },
}

#[derive(Debug)]
enum Exchange {
    Plain,
    ScramFirst(ScramHash),
    ScramFinal(Box<ScramServer>),
}

/// The SASL state of one connection.
#[derive(Debug, Default)]
pub struct SaslState {
    /// The mechanism chosen by the last SaslHandshake, with the exchange it started.
    exchange: Option<Exchange>,
    /// The handshake was v0: tokens come as bare frames, not SaslAuthenticate.
    pub raw_tokens: bool,
    /// The authenticated user, once a login succeeded.
    pub user: Option<String>,
    /// When the session ends (`connections.max.reauth.ms`); None: never.
    pub expires_at: Option<Instant>,
}

impl SaslState {
    /// SaslHandshake: picks a mechanism for the next exchange.
    pub fn handshake(&mut self, mechanism: SaslMechanism, raw_tokens: bool) {
        self.exchange = Some(match mechanism {
            SaslMechanism::Plain => Exchange::Plain,
            SaslMechanism::ScramSha256 => Exchange::ScramFirst(ScramHash::Sha256),
            SaslMechanism::ScramSha512 => Exchange::ScramFirst(ScramHash::Sha512),
        });
        self.raw_tokens = raw_tokens;
    }

    /// Whether a handshake chose a mechanism whose exchange has not finished.
    pub fn exchanging(&self) -> bool {
        self.exchange.is_some()
    }

    /// The authenticated user whose session has not expired at `now`.
    pub fn live_user(&self, now: Instant) -> Option<&str> {
        match self.expires_at {
            Some(end) if now >= end => None,
            _ => self.user.as_deref(),
        }
    }

    /// One token of the exchange. An error ends the exchange; its message is for the
    /// client. A re-authentication (KIP-368) must be by the same user.
    pub fn step(
        &mut self,
        token: &[u8],
        credentials: &dyn Credentials,
        server_nonce: &str,
    ) -> Result<Step, SaslError> {
        let exchange = self.exchange.take().ok_or(SaslError::NoHandshake)?;
        let step = match exchange {
            Exchange::Plain => plain(token, credentials)?,
            Exchange::ScramFirst(hash) => {
                let message = std::str::from_utf8(token).map_err(|_| SaslError::NotUtf8)?;
                let (server, first) = ScramServer::start(
                    hash,
                    message,
                    server_nonce,
                    |user| credentials.scram_credential(user, hash),
                    |user| credentials.decoy_salt(user),
                )?;
                self.exchange = Some(Exchange::ScramFinal(Box::new(server)));
                return Ok(Step::Challenge(first.into_bytes()));
            }
            Exchange::ScramFinal(server) => {
                let message = std::str::from_utf8(token).map_err(|_| SaslError::NotUtf8)?;
                let (user, last) = server.finish(message)?;
                Step::Authenticated {
                    user,
                    reply: last.into_bytes(),
                }
            }
        };
        if let (Step::Authenticated { user, .. }, Some(previous)) = (&step, &self.user)
            && user != previous
        {
            return Err(SaslError::PrincipalChanged {
                previous: previous.clone(),
                user: user.clone(),
            });
        }
        Ok(step)
    }
}

/// PLAIN (RFC 4616): `[authzid] NUL user NUL password`.
fn plain(token: &[u8], credentials: &dyn Credentials) -> Result<Step, SaslError> {
    let text = std::str::from_utf8(token).map_err(|_| SaslError::BadCredentials)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedPlain);
    };
    if user.is_empty() || password.is_empty() {
        return Err(SaslError::BadCredentials);
    }
    if !authzid.is_empty() && authzid != user {
        return Err(SaslError::AuthorizationIdMismatch);
    }
    let expected = credentials.plain_password(user);
    // Compare against something even for an unknown user, in constant time.
    let reference = expected.as_deref().unwrap_or("\u{0}no such user");
    let matches: bool = subtle::ConstantTimeEq::ct_eq(reference.as_bytes(), password.as_bytes()).into();
    if matches && expected.is_some() {
        Ok(Step::Authenticated {
            user: user.to_string(),
            reply: Vec::new(),
        })
    } else {
        Err(SaslError::BadCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Users;

    impl Credentials for Users {
        fn plain_password(&self, user: &str) -> Option<String> {
            (user == "alice").then(|| "alice-secret".into())
        }
        fn scram_credential(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
            (user == "alice").then(|| ScramCredential::from_password(hash, "alice-secret", b"salt", 4096))
        }
        fn decoy_salt(&self, _user: &str) -> Vec<u8> {
            b"decoy".to_vec()
        }
    }

    fn plain_login(state: &mut SaslState, token: &str) -> Result<Step, SaslError> {
        state.handshake(SaslMechanism::Plain, false);
        state.step(token.as_bytes(), &Users, "nonce")
    }

    #[test]
    fn plain_accepts_the_right_password_only() {
        let mut state = SaslState::default();
        assert_eq!(
            plain_login(&mut state, "\0alice\0alice-secret"),
            Ok(Step::Authenticated {
                user: "alice".into(),
                reply: vec![]
            })
        );
        assert_eq!(
            plain_login(&mut state, "alice\0alice\0alice-secret").map(|_| ()),
            Ok(())
        );
        let wrong = plain_login(&mut state, "\0alice\0guess").unwrap_err();
        let unknown = plain_login(&mut state, "\0mallory\0alice-secret").unwrap_err();
        assert_eq!(wrong, unknown);
        assert_eq!(wrong.to_string(), PLAIN_FAILED);
        assert!(plain_login(&mut state, "\0alice").is_err());
        assert!(plain_login(&mut state, "bob\0alice\0alice-secret").is_err());
        assert!(plain_login(&mut state, "\0\0").is_err());
    }

    #[test]
    fn a_token_without_a_handshake_is_refused() {
        let mut state = SaslState::default();
        assert!(state.step(b"\0alice\0alice-secret", &Users, "n").is_err());
        assert!(!state.exchanging());
    }

    #[test]
    fn reauthentication_must_keep_the_user() {
        let mut state = SaslState {
            user: Some("bob".into()),
            ..SaslState::default()
        };
        let error = plain_login(&mut state, "\0alice\0alice-secret").unwrap_err();
        assert!(error.to_string().contains("Cannot change principals"), "{error}");
    }

    #[test]
    fn sessions_expire() {
        let now = Instant::now();
        let state = SaslState {
            user: Some("alice".into()),
            expires_at: Some(now + std::time::Duration::from_secs(1)),
            ..SaslState::default()
        };
        assert_eq!(state.live_user(now), Some("alice"));
        assert_eq!(state.live_user(now + std::time::Duration::from_secs(2)), None);
    }
}
