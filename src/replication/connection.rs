//! A broker's own Kafka client connection to another broker, for replica fetches:
//! size-prefixed frames with Kafka request and response headers, one request at a
//! time. Outgoing connections are bound to this broker's own address first.

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    stream: TcpStream,
    address: SocketAddr,
    correlation_id: i32,
    client_id: StrBytes,
}

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl KafkaConnection {
    pub async fn connect(
        address: SocketAddr,
        local_ip: Option<IpAddr>,
        client_id: String,
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
        Ok(KafkaConnection {
            stream,
            address,
            correlation_id: 0,
            client_id: StrBytes::from_string(client_id),
        })
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
