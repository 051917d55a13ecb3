//! The write side of a connection: a plain TCP socket (which can sendfile) or a TLS
//! stream (which must see every byte).

use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_rustls::server::TlsStream;

pub(super) enum Writer {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
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
