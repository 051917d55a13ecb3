//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka serves them: the
//! stored credential (salt, iterations, StoredKey, ServerKey) and the server side of
//! one exchange. Pure: the server nonce is passed in.
//!
//! An unknown user gets the same exchange as a known one, with a made-up salt, and
//! fails at the same step with the same message as a wrong password, so a client cannot
//! tell which half was wrong.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

/// The two SCRAM hash functions; the numbers are Kafka's mechanism codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    /// Kafka's `ScramMechanism` code (1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512).
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(ScramHash::Sha256),
            2 => Some(ScramHash::Sha512),
            _ => None,
        }
    }

    pub fn code(self) -> i8 {
        match self {
            ScramHash::Sha256 => 1,
            ScramHash::Sha512 => 2,
        }
    }

    pub fn mechanism_name(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha256 => hmac::HMAC_SHA256,
            ScramHash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha256 => &digest::SHA256,
            ScramHash::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2_algorithm(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramHash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn output_len(self) -> usize {
        self.digest_algorithm().output_len()
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_algorithm(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), data).as_ref().to_vec()
    }
}

/// Kafka's bounds on SCRAM iterations.
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// A user's stored SCRAM credential for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: i32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// The credential for a salted password (`Hi(password, salt, iterations)`), which is
    /// what AlterUserScramCredentials carries.
    pub fn from_salted_password(
        hash: ScramHash,
        salt: &[u8],
        iterations: i32,
        salted_password: &[u8],
    ) -> Self {
        let client_key = hash.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(salted_password, b"Server Key"),
        }
    }

    /// The credential for a password.
    pub fn from_password(hash: ScramHash, password: &str, salt: &[u8], iterations: i32) -> Self {
        let salted = salted_password(hash, password, salt, iterations);
        Self::from_salted_password(hash, salt, iterations, &salted)
    }
}

/// `Hi(password, salt, iterations)`: PBKDF2 with the mechanism's HMAC.
pub fn salted_password(hash: ScramHash, password: &str, salt: &[u8], iterations: i32) -> Vec<u8> {
    let mut out = vec![0u8; hash.output_len()];
    let rounds = NonZeroU32::new(iterations.max(1) as u32).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        hash.pbkdf2_algorithm(),
        rounds,
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

/// Why an exchange failed: the message the client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {0}")]
    BadCredentials(&'static str),
    #[error("Invalid SCRAM message: {0}")]
    Malformed(String),
}

/// The server's side of one exchange, between the client's first and final messages.
#[derive(Debug, Clone)]
pub struct ScramServer {
    hash: ScramHash,
    user: String,
    /// None for an unknown user: the exchange runs on a made-up credential and fails.
    credential: Option<ScramCredential>,
    decoy: ScramCredential,
    client_first_bare: String,
    server_first: String,
    gs2_header: String,
    nonce: String,
}

impl ScramServer {
    /// Takes the client's first message; returns the exchange and the server's first
    /// message. `lookup` finds a user's credential; `decoy_salt` is the salt shown for
    /// an unknown user (stable per user, so probing twice shows the same salt).
    pub fn start(
        hash: ScramHash,
        client_first: &str,
        server_nonce: &str,
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
        decoy_salt: impl FnOnce(&str) -> Vec<u8>,
    ) -> Result<(ScramServer, String), ScramError> {
        let malformed = |why: &str| ScramError::Malformed(why.to_string());
        // gs2-header: channel binding flag, optional authzid, then the bare message.
        let mut parts = client_first.splitn(3, ',');
        let binding = parts.next().unwrap_or_default();
        let authzid = parts.next().ok_or_else(|| malformed("no gs2 header"))?;
        let bare = parts
            .next()
            .ok_or_else(|| malformed("no client-first-message-bare"))?;
        if !matches!(binding, "n" | "y") {
            return Err(malformed("channel binding is not supported"));
        }
        if !authzid.is_empty() && !authzid.starts_with("a=") {
            return Err(malformed("bad authzid"));
        }
        let mut user = None;
        let mut client_nonce = None;
        for attribute in bare.split(',') {
            match attribute.split_once('=') {
                Some(("n", value)) => user = Some(unescape_name(value)?),
                Some(("r", value)) => client_nonce = Some(value.to_string()),
                Some(("m", _)) => return Err(malformed("mandatory extensions are not supported")),
                Some(("tokenauth", _)) => return Err(malformed("delegation tokens are not supported")),
                Some(_) => {}
                None => return Err(malformed("attribute without a value")),
            }
        }
        let user = user.ok_or_else(|| malformed("no user name"))?;
        let client_nonce = client_nonce
            .filter(|nonce| !nonce.is_empty())
            .ok_or_else(|| malformed("no client nonce"))?;
        if let Some(authzid) = authzid.strip_prefix("a=")
            && unescape_name(authzid)? != user
        {
            return Err(ScramError::BadCredentials(hash.mechanism_name()));
        }
        let credential = lookup(&user);
        let decoy = ScramCredential::from_salted_password(
            hash,
            &decoy_salt(&user),
            MIN_ITERATIONS,
            &vec![0u8; hash.output_len()],
        );
        let shown = credential.as_ref().unwrap_or(&decoy);
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&shown.salt),
            shown.iterations
        );
        let gs2_header = format!("{binding},{authzid},");
        let server = ScramServer {
            hash,
            user,
            credential,
            decoy,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            gs2_header,
            nonce,
        };
        Ok((server, server_first))
    }

    /// Takes the client's final message; returns the authenticated user and the
    /// server's final message.
    pub fn finish(self, client_final: &str) -> Result<(String, String), ScramError> {
        let malformed = |why: &str| ScramError::Malformed(why.to_string());
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or_else(|| malformed("no proof"))?;
        let mut binding = None;
        let mut nonce = None;
        for attribute in without_proof.split(',') {
            match attribute.split_once('=') {
                Some(("c", value)) => binding = Some(value),
                Some(("r", value)) => nonce = Some(value),
                Some(_) => {}
                None => return Err(malformed("attribute without a value")),
            }
        }
        if binding != Some(BASE64.encode(self.gs2_header.as_bytes()).as_str()) {
            return Err(malformed("channel binding does not match"));
        }
        // Kafka accepts a final nonce that ends with the server's (client nonce plus
        // server nonce): librdkafka up to 2.x sends its client nonce once more in front.
        if !nonce.is_some_and(|nonce| nonce.ends_with(&self.nonce)) {
            return Err(malformed("nonce does not match"));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let credential = self.credential.as_ref().unwrap_or(&self.decoy);
        let client_signature = self.hash.hmac(&credential.stored_key, auth_message.as_bytes());
        let failed = ScramError::BadCredentials(self.hash.mechanism_name());
        if proof.len() != client_signature.len() {
            return Err(failed);
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        let matches: bool = subtle::ConstantTimeEq::ct_eq(
            self.hash.hash(&client_key).as_slice(),
            credential.stored_key.as_slice(),
        )
        .into();
        if !matches || self.credential.is_none() {
            return Err(failed);
        }
        let server_signature = self.hash.hmac(&credential.server_key, auth_message.as_bytes());
        Ok((self.user, format!("v={}", BASE64.encode(server_signature))))
    }
}

/// The client's side of one exchange (a broker logging in to another).
#[derive(Debug, Clone)]
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// The exchange and the client's first message.
    pub fn start(hash: ScramHash, user: &str, password: &str, client_nonce: &str) -> (ScramClient, String) {
        let name = user.replace('=', "=3D").replace(',', "=2C");
        let bare = format!("n={name},r={client_nonce}");
        let first = format!("n,,{bare}");
        let client = ScramClient {
            hash,
            password: password.to_string(),
            client_nonce: client_nonce.to_string(),
            client_first_bare: bare,
            server_signature: None,
        };
        (client, first)
    }

    /// Takes the server's first message; returns the client's final message.
    pub fn respond(&mut self, server_first: &str) -> Result<String, ScramError> {
        let malformed = |why: &str| ScramError::Malformed(why.to_string());
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => {
                    salt = Some(
                        BASE64
                            .decode(value)
                            .map_err(|_| malformed("salt is not base64"))?,
                    )
                }
                Some(("i", value)) => iterations = value.parse::<i32>().ok(),
                Some(("m", _)) => return Err(malformed("mandatory extensions are not supported")),
                _ => {}
            }
        }
        let nonce = nonce
            .filter(|nonce| nonce.starts_with(&self.client_nonce) && nonce.len() > self.client_nonce.len())
            .ok_or_else(|| malformed("server nonce does not extend the client's"))?;
        let salt = salt.ok_or_else(|| malformed("no salt"))?;
        let iterations = iterations
            .filter(|count| (1..=MAX_ITERATIONS * 64).contains(count))
            .ok_or_else(|| malformed("bad iteration count"))?;
        let salted = salted_password(self.hash, &self.password, &salt, iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");
        self.server_signature = Some(self.hash.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks the server's final message (its proof that it knows the credential).
    pub fn verify(&self, server_final: &str) -> Result<(), ScramError> {
        let expected = self
            .server_signature
            .as_ref()
            .ok_or_else(|| ScramError::Malformed("no exchange in progress".into()))?;
        match server_final.strip_prefix("v=").map(|value| BASE64.decode(value)) {
            Some(Ok(signature)) if signature == *expected => Ok(()),
            _ => Err(ScramError::Malformed(format!(
                "server signature does not verify: {server_final}"
            ))),
        }
    }
}

/// A SCRAM `saslname`: `=2C` is a comma, `=3D` an equals sign; any other `=` is invalid.
fn unescape_name(value: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(index) = rest.find('=') {
        out.push_str(&rest[..index]);
        let escape = rest.get(index..index + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in user name".into())),
        }
        rest = &rest[index + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn rfc7677_sha256_exchange() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = ScramCredential::from_password(ScramHash::Sha256, "pencil", &salt, 4096);
        let (server, server_first) = ScramServer::start(
            ScramHash::Sha256,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            |user| (user == "user").then(|| credential.clone()),
            |_| vec![1; 16],
        )
        .unwrap();
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let (user, server_final) = server
            .finish(
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(user, "user");
        assert_eq!(server_final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    /// A client computing its proof from a password.
    fn client_final(hash: ScramHash, password: &str, client_first_bare: &str, server_first: &str) -> String {
        client_final_with_prefix(hash, password, client_first_bare, server_first, "")
    }

    /// A final message whose nonce has `prefix` in front of the server's (as
    /// librdkafka 2.0.2 sends it), proof computed over that message.
    fn client_final_with_prefix(
        hash: ScramHash,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        prefix: &str,
    ) -> String {
        let fields: std::collections::BTreeMap<&str, &str> = server_first
            .split(',')
            .filter_map(|attribute| attribute.split_once('='))
            .collect();
        let salt = BASE64.decode(fields["s"]).unwrap();
        let iterations: i32 = fields["i"].parse().unwrap();
        let salted = salted_password(hash, password, &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.hash(&client_key);
        let without_proof = format!("c=biws,r={prefix}{}", fields["r"]);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", BASE64.encode(proof))
    }

    #[test]
    fn client_and_server_agree_and_the_client_checks_the_server() {
        for hash in [ScramHash::Sha256, ScramHash::Sha512] {
            let stored = ScramCredential::from_password(hash, "s3cret", b"salty", 4096);
            let (mut client, first) = ScramClient::start(hash, "bro,ker=1", "s3cret", "cnonce");
            let (server, server_first) = ScramServer::start(
                hash,
                &first,
                "snonce",
                |user| (user == "bro,ker=1").then(|| stored.clone()),
                |_| vec![],
            )
            .unwrap();
            let last = client.respond(&server_first).unwrap();
            let (user, server_final) = server.finish(&last).unwrap();
            assert_eq!(user, "bro,ker=1");
            client.verify(&server_final).unwrap();
            assert!(client.verify("v=AAAA").is_err());
        }
        // A server that does not extend the client's nonce is refused.
        let (mut client, _) = ScramClient::start(ScramHash::Sha256, "u", "p", "cnonce");
        assert!(client.respond("r=other,s=c2FsdA==,i=4096").is_err());
    }

    /// Debian's librdkafka 2.0.2 repeats its client nonce in front of the combined one
    /// in its final message; Kafka accepts that (the nonce must end with the server's).
    #[test]
    fn librdkafka_doubled_client_nonce_is_accepted() {
        let hash = ScramHash::Sha512;
        let stored = ScramCredential::from_password(hash, "pw", b"salt", 4096);
        let bare = "n=u,r=cnonce";
        let (server, server_first) = ScramServer::start(
            hash,
            &format!("n,,{bare}"),
            "snonce",
            |_| Some(stored.clone()),
            |_| vec![],
        )
        .unwrap();
        let final_message = client_final_with_prefix(hash, "pw", bare, &server_first, "cnonce");
        assert!(final_message.contains("r=cnoncecnoncesnonce"));
        assert_eq!(server.finish(&final_message).unwrap().0, "u");
    }

    fn attempt(user: &str, password: &str) -> Result<String, ScramError> {
        let hash = ScramHash::Sha512;
        let stored = ScramCredential::from_password(hash, "alice-secret", b"salt-of-alice", 8192);
        let bare = format!("n={user},r=clientnonce");
        let (server, server_first) = ScramServer::start(
            hash,
            &format!("n,,{bare}"),
            "servernonce",
            |name| (name == "alice").then(|| stored.clone()),
            |name| name.as_bytes().to_vec(),
        )?;
        server
            .finish(&client_final(hash, password, &bare, &server_first))
            .map(|(user, _)| user)
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        assert_eq!(attempt("alice", "alice-secret").unwrap(), "alice");
        let wrong_password = attempt("alice", "guess").unwrap_err();
        let unknown_user = attempt("mallory", "alice-secret").unwrap_err();
        assert_eq!(wrong_password, unknown_user);
        assert_eq!(
            wrong_password.to_string(),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        let lookup = |_: &str| None;
        let salt = |_: &str| vec![0; 8];
        for first in [
            "",
            "n",
            "n,,",
            "p=x,,n=u,r=x",
            "n,,n=u",
            "n,,r=x",
            "n,,n=a=b,r=x",
            "n,,n=u,r=x,m=ext",
        ] {
            assert!(
                ScramServer::start(ScramHash::Sha256, first, "s", lookup, salt).is_err(),
                "{first:?}"
            );
        }
        let stored = ScramCredential::from_password(ScramHash::Sha256, "pw", b"salt", 4096);
        let start = || {
            ScramServer::start(
                ScramHash::Sha256,
                "n,,n=u,r=abc",
                "def",
                |_| Some(stored.clone()),
                salt,
            )
            .unwrap()
            .0
        };
        for last in [
            "",
            "c=biws,r=abcdef",
            "c=biws,r=other,p=AAAA",
            "c=eSws,r=abcdef,p=AAAA",
            "c=biws,r=abcdef,p=!!",
        ] {
            assert!(start().finish(last).is_err(), "{last:?}");
        }
        assert_eq!(unescape_name("a=2Cb=3Dc").unwrap(), "a,b=c");
    }
}
