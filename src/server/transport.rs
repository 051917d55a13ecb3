//! The write side of a connection: a plain TCP socket (which can sendfile; with kernel
//! TLS the kernel encrypts what it sends) or a rustls stream (which must see every
//! byte).

use crate::security::ktls::RecordBounded;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_rustls::server::TlsStream;

pub(super) enum Writer {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<RecordBounded<TcpStream>>>),
}

impl Writer {
    pub(super) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Plain(socket) => socket.write_all(bytes).await,
            Writer::Tls(stream) => {
                stream.write_all(bytes).await?;
                // rustls buffers records; push them out with the answer.
                stream.flush().await
            }
        }
    }
}
