//! Sockets only: the accept loop, size-prefixed framing and one task per connection.
//!
//! Requests on one connection are served one at a time, in order, as Kafka does, so
//! responses always leave in request order. A frame larger than
//! `socket.request.max.bytes`, a negative size or a request that cannot be decoded
//! closes that connection only. `max.connections` caps open connections; one over the
//! cap is closed at once.

use crate::api::{self, Outcome};
use crate::broker::Broker;
use bytes::BytesMut;
use std::future::Future;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// Serves connections until `shutdown` completes, then stops accepting and ends every
/// connection between requests.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(
        broker.config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let (stop_sender, stop_receiver) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "max.connections reached; closing new connection");
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let broker = broker.clone();
        let mut stop = stop_receiver.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = serve_connection(socket, &broker) => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection closed");
                    }
                }
                _ = stop.changed() => {}
            }
            drop(permit);
        });
    }
    let _ = stop_sender.send(true);
}

#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("frame of {size} bytes is outside 0..={max} (socket.request.max.bytes)")]
    FrameSize { size: i32, max: usize },
    #[error("request could not be served")]
    BadRequest,
}

async fn serve_connection(mut socket: TcpStream, broker: &Arc<Broker>) -> Result<(), ConnectionError> {
    let max = broker.config.socket_request_max_bytes;
    loop {
        let size = match socket.read_i32().await {
            Ok(size) => size,
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        if size < 0 || size as usize > max {
            return Err(ConnectionError::FrameSize { size, max });
        }
        let mut frame = BytesMut::zeroed(size as usize);
        socket.read_exact(&mut frame).await?;
        let started = std::time::Instant::now();
        let outcome = api::handle_frame(broker, frame.freeze()).await;
        let handled = started.elapsed();
        match outcome {
            Outcome::Respond(response) => {
                socket.write_all(&response).await?;
                tracing::trace!(?handled, sent = ?started.elapsed(), bytes = response.len(), "request served");
            }
            Outcome::NoResponse => {}
            Outcome::Close(last) => {
                if let Some(last) = last {
                    let _ = socket.write_all(&last).await;
                }
                return Err(ConnectionError::BadRequest);
            }
        }
    }
}
