//! The inter-broker client: a broker's own Kafka connection to another broker (replica
//! fetches, transaction markers): size-prefixed frames with Kafka request and response
//! headers, one request at a time. Outgoing connections are bound to this broker's own
//! address first, and secured as the inter-broker listener is (TLS, then a SASL login).

use crate::config::SaslMechanism;
use crate::security::ClientSecurity;
use crate::security::scram::{ScramClient, ScramHash};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A plain or TLS stream to the other broker.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The largest response a follower accepts (a fetch is bounded far below this).
const MAX_RESPONSE: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("{op} {address}: {source}")]
    Io {
        op: &'static str,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("bad response from {address}: {reason}")]
    Protocol { address: SocketAddr, reason: String },
}

pub struct KafkaConnection {
    stream: Box<dyn Stream>,
    address: SocketAddr,
    correlation_id: i32,
    client_id: StrBytes,
}

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl KafkaConnection {
    /// Connects to `address` (whose name is `host`, for TLS), secured as `security` says.
    pub async fn connect(
        address: SocketAddr,
        host: &str,
        local_ip: Option<IpAddr>,
        client_id: String,
        security: Option<&ClientSecurity>,
    ) -> Result<Self, ConnectionError> {
        let io = |op: &'static str| move |source| ConnectionError::Io { op, address, source };
        let socket = if address.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(io("socket for"))?;
        if let Some(ip) = local_ip
            && ip.is_ipv4() == address.is_ipv4()
            && !ip.is_unspecified()
        {
            socket.bind(SocketAddr::new(ip, 0)).map_err(io("bind for"))?;
        }
        // A peer cut off by a partition drops the handshake: give up rather than wait
        // out the kernel's SYN retries, so the fetcher retries soon after healing.
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(address))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
            .and_then(|connected| connected)
            .map_err(io("connect to"))?;
        stream.set_nodelay(true).map_err(io("configure"))?;
        let stream: Box<dyn Stream> = match security.and_then(|security| security.tls.clone()) {
            None => Box::new(stream),
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|error| {
                    ConnectionError::Protocol {
                        address,
                        reason: format!("`{host}` is not a TLS server name: {error}"),
                    }
                })?;
                let connected = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    tokio_rustls::TlsConnector::from(tls).connect(name, stream),
                )
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
                .and_then(|connected| connected)
                .map_err(io("TLS handshake with"))?;
                Box::new(connected)
            }
        };
        let mut connection = KafkaConnection {
            stream,
            address,
            correlation_id: 0,
            client_id: StrBytes::from_string(client_id),
        };
        if let Some((mechanism, user, password)) = security.and_then(|security| security.sasl.as_ref()) {
            connection.login(*mechanism, user, password).await?;
        }
        Ok(connection)
    }

    /// A SASL login (SaslHandshake v1, then SaslAuthenticate).
    async fn login(
        &mut self,
        mechanism: SaslMechanism,
        user: &str,
        password: &str,
    ) -> Result<(), ConnectionError> {
        let address = self.address;
        let refused = |reason: String| ConnectionError::Protocol { address, reason };
        let handshake = self
            .call(
                &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism.name())),
                1,
            )
            .await?;
        if handshake.error_code != 0 {
            return Err(refused(format!(
                "SASL mechanism {} refused (error {})",
                mechanism.name(),
                handshake.error_code
            )));
        }
        match mechanism {
            SaslMechanism::Plain => {
                self.sasl_step(format!("\0{user}\0{password}").into_bytes(), user)
                    .await?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let hash = if mechanism == SaslMechanism::ScramSha256 {
                    ScramHash::Sha256
                } else {
                    ScramHash::Sha512
                };
                let (mut client, first) =
                    ScramClient::start(hash, user, password, &crate::security::server_nonce());
                let server_first = self.sasl_step(first.into_bytes(), user).await?;
                let server_first = String::from_utf8(server_first.to_vec())
                    .map_err(|_| refused("SCRAM message is not UTF-8".into()))?;
                let last = client
                    .respond(&server_first)
                    .map_err(|error| refused(error.to_string()))?;
                let server_final = self.sasl_step(last.into_bytes(), user).await?;
                let server_final = String::from_utf8(server_final.to_vec())
                    .map_err(|_| refused("SCRAM message is not UTF-8".into()))?;
                client
                    .verify(&server_final)
                    .map_err(|error| refused(error.to_string()))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate round: the server's answer bytes, or why it refused.
    async fn sasl_step(&mut self, token: Vec<u8>, user: &str) -> Result<Bytes, ConnectionError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let response = self.call(&request, 1).await?;
        if response.error_code != 0 {
            return Err(ConnectionError::Protocol {
                address: self.address,
                reason: format!(
                    "SASL login as {user} failed: {}",
                    response.error_message.as_deref().unwrap_or("no message")
                ),
            });
        }
        Ok(response.auth_bytes)
    }

    /// Sends one request at `version` and reads its response.
    pub async fn call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ConnectionError> {
        let address = self.address;
        let protocol = |reason: String| ConnectionError::Protocol { address, reason };
        let api_key =
            ApiKey::try_from(R::KEY).map_err(|_| protocol(format!("unknown API key {}", R::KEY)))?;
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0);
        header
            .encode(&mut frame, api_key.request_header_version(version))
            .map_err(|error| protocol(error.to_string()))?;
        request
            .encode(&mut frame, version)
            .map_err(|error| protocol(error.to_string()))?;
        let length = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&length.to_be_bytes());
        let io = |op: &'static str| move |source| ConnectionError::Io { op, address, source };
        self.stream.write_all(&frame).await.map_err(io("send to"))?;
        let size = self.stream.read_i32().await.map_err(io("read from"))?;
        if size < 0 || size as usize > MAX_RESPONSE {
            return Err(protocol(format!("response size {size}")));
        }
        // Read into an uninitialized buffer: no zeroing pass over each fetched megabyte.
        let size = size as usize;
        let mut body = BytesMut::with_capacity(size);
        while body.len() < size {
            let read = (&mut self.stream)
                .take((size - body.len()) as u64)
                .read_buf(&mut body)
                .await
                .map_err(io("read from"))?;
            if read == 0 {
                return Err(ConnectionError::Io {
                    op: "read from",
                    address,
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
        }
        let mut body = body.freeze();
        let response_header = ResponseHeader::decode(&mut body, api_key.response_header_version(version))
            .map_err(|error| protocol(error.to_string()))?;
        if response_header.correlation_id != self.correlation_id {
            return Err(protocol(format!(
                "correlation id {} for request {}",
                response_header.correlation_id, self.correlation_id
            )));
        }
        let response =
            R::Response::decode(&mut body, version).map_err(|error| protocol(error.to_string()))?;
        if body.has_remaining() {
            return Err(protocol(format!("{} bytes after the response", body.remaining())));
        }
        Ok(response)
    }
}
