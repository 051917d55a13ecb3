//! Sockets only: the accept loop, size-prefixed framing and one task per connection.
//!
//! Responses are written chunk by chunk. Record data that lives in segment files is sent
//! with sendfile(2) straight from the page cache (the zero-copy path); with
//! `ServerOptions::zero_copy` off it is read into memory and written (the copying path,
//! also taken by TLS connections that rustls encrypts; a TLS connection handed to the
//! kernel's TLS after its handshake keeps sendfile). A slow reader only ever waits on
//! its own socket: sendfile runs non-blocking and yields until the socket is writable.
//!
//! Requests on one connection are handled one at a time, in order, as Kafka does, and
//! responses always leave in request order. One exception to "one at a time": a
//! produce with acks=all is appended at once but answered only when replicated; while
//! it waits, the connection reads and handles the next requests (up to
//! `MAX_WAITING_ANSWERS`), holding their answers back until the earlier ones are sent.
//! Pipelined producers thus do not wait a replication round trip per request. A frame larger than
//! `socket.request.max.bytes`, a negative size or a request that cannot be decoded
//! closes that connection only. `max.connections` caps open connections; one over the
//! cap is closed at once.

use crate::api::ApiState;
use crate::api::{self, Chunk, Outcome};
use crate::broker::Broker;
use crate::log::segment::FileSlice;
use crate::security::{ListenerContext, Session, ktls};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

mod transport;
use transport::Writer;

/// How responses are written.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Send file-backed record data with sendfile(2) rather than through a buffer.
    pub zero_copy: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { zero_copy: true }
    }
}

/// Serves connections until `shutdown` completes, then stops accepting and ends every
/// connection between requests.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    run_with(listener, broker, ServerOptions::default(), shutdown).await
}

/// A PLAINTEXT listener with these options.
pub async fn run_with(
    listener: TcpListener,
    broker: Arc<Broker>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Shared::new(&broker);
    run_listener(
        listener,
        broker,
        ListenerContext::plaintext(),
        options,
        shared,
        shutdown,
    )
    .await
}

/// What all of a broker's listeners share: the cap on open connections
/// (`max.connections`) and the API layer's state (fetch sessions).
#[derive(Clone)]
pub struct Shared {
    limit: Arc<Semaphore>,
    api: Arc<ApiState>,
}

impl Shared {
    /// Once per broker.
    pub fn new(broker: &Broker) -> Self {
        Shared {
            limit: Arc::new(Semaphore::new(
                broker.config.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            api: ApiState::new(broker),
        }
    }
}

/// Serves one listener (its TLS and SASL as `context` says) until `shutdown`.
pub async fn run_listener(
    listener: TcpListener,
    broker: Arc<Broker>,
    context: Arc<ListenerContext>,
    options: ServerOptions,
    shared: Shared,
    shutdown: impl Future<Output = ()>,
) {
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
        let Ok(permit) = shared.limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "max.connections reached; closing new connection");
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let broker = broker.clone();
        let api = shared.api.clone();
        let context = context.clone();
        let mut stop = stop_receiver.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = accept_connection(socket, peer, &broker, &api, context, options) => {
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

/// How many answers may wait (acks=all produces being replicated) on one connection
/// while it reads on; past this it stops reading until the oldest is sent.
const MAX_WAITING_ANSWERS: usize = 32;

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the listener's TLS handshake, if any, then serves the connection.
async fn accept_connection(
    socket: TcpStream,
    peer: std::net::SocketAddr,
    broker: &Arc<Broker>,
    api: &ApiState,
    context: Arc<ListenerContext>,
    options: ServerOptions,
) -> Result<(), ConnectionError> {
    let Some(tls) = context.tls.clone() else {
        let session = Session::new(context, peer, None);
        let (reader, writer) = socket.into_split();
        return serve_connection(reader, Writer::Plain(writer), session, broker, api, options).await;
    };
    let accepted = tokio::time::timeout(
        TLS_HANDSHAKE_TIMEOUT,
        tokio_rustls::TlsAcceptor::from(tls).accept(ktls::RecordBounded::new(socket)),
    )
    .await;
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::info!(%peer, listener = %context.name, %error, "TLS handshake failed");
            return Ok(());
        }
        Err(_) => {
            tracing::info!(%peer, listener = %context.name, "TLS handshake timed out");
            return Ok(());
        }
    };
    let principal = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|certificate| crate::security::tls::certificate_principal(certificate));
    let kernel_tls = context.kernel_tls;
    let session = Session::new(context, peer, principal);
    match ktls::hand_off(stream, kernel_tls, ktls::capabilities(), ktls::install_in_kernel).await {
        // The kernel encrypts from here: the socket is written (and sendfile'd) as on
        // PLAINTEXT, and read after what rustls had already decrypted.
        Ok(ktls::Handoff::Kernel { socket, received }) => {
            let (reader, writer) = socket.into_split();
            let reader = std::io::Cursor::new(received).chain(reader);
            serve_connection(reader, Writer::Plain(writer), session, broker, api, options).await
        }
        Ok(ktls::Handoff::Userspace(stream)) => {
            let (reader, writer) = tokio::io::split(*stream);
            serve_connection(reader, Writer::Tls(writer), session, broker, api, options).await
        }
        Err(error) => {
            tracing::warn!(%peer, %error, "cannot hand the TLS session to the kernel; closing");
            Ok(())
        }
    }
}

/// Reads one frame; None at a clean end of stream.
async fn read_frame<R: AsyncRead + Unpin>(
    socket: &mut R,
    max: usize,
) -> Result<Option<Bytes>, ConnectionError> {
    let size = match socket.read_i32().await {
        Ok(size) => size,
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    if size < 0 || size as usize > max {
        return Err(ConnectionError::FrameSize { size, max });
    }
    // Read straight into an uninitialized buffer (no zeroing pass over large frames).
    // Only the first MiB is reserved up front, so a peer that announces a huge frame
    // and sends nothing does not make the broker hold the whole size.
    let size = size as usize;
    let mut frame = BytesMut::with_capacity(size.min(1 << 20));
    let mut body = socket.take(size as u64);
    while frame.len() < size {
        if frame.len() == frame.capacity() {
            frame.reserve(size - frame.len());
        }
        if body.read_buf(&mut frame).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
    Ok(Some(frame.freeze()))
}

/// Sends one answer; Err when the connection must close.
async fn send_outcome(
    writer: &mut Writer,
    outcome: Outcome,
    options: ServerOptions,
    started: std::time::Instant,
) -> Result<(), ConnectionError> {
    match outcome {
        Outcome::Respond(chunks) => {
            let bytes: u64 = chunks.iter().map(Chunk::len).sum();
            write_chunks(writer, chunks, options).await?;
            tracing::trace!(sent = ?started.elapsed(), bytes, "request served");
            Ok(())
        }
        Outcome::NoResponse => Ok(()),
        Outcome::Close(last) => {
            if let Some(last) = last {
                let _ = writer.write_all(&last).await;
            }
            Err(ConnectionError::BadRequest)
        }
        // A deferred answer is awaited before it is sent; it never yields another.
        Outcome::Deferred(_) => Err(ConnectionError::BadRequest),
    }
}

type Waiting = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>;

/// A request being answered: when it arrived, and its API and version (for metrics).
#[derive(Clone, Copy)]
struct Served {
    started: std::time::Instant,
    api: Option<(&'static str, i16)>,
}

impl Served {
    fn new(frame: &[u8]) -> Self {
        let api = (frame.len() >= 4)
            .then(|| {
                let key = i16::from_be_bytes([frame[0], frame[1]]);
                let version = i16::from_be_bytes([frame[2], frame[3]]);
                api::api_name(key).map(|name| (name, version))
            })
            .flatten();
        Served {
            started: std::time::Instant::now(),
            api,
        }
    }
}

/// Sends one answer and counts it.
async fn answer(
    writer: &mut Writer,
    outcome: Outcome,
    options: ServerOptions,
    served: Served,
    broker: &Broker,
) -> Result<(), ConnectionError> {
    let sent = send_outcome(writer, outcome, options, served.started).await;
    if let Some((api, version)) = served.api {
        broker.metrics.request(api, version, served.started.elapsed());
    }
    sent
}

/// Counts a connection open for as long as it lives.
struct OpenConnection<'a>(&'a crate::metrics::Metrics);

impl<'a> OpenConnection<'a> {
    fn new(metrics: &'a crate::metrics::Metrics) -> Self {
        metrics.connection_opened();
        OpenConnection(metrics)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

async fn serve_connection<R: AsyncRead + Unpin + Send + 'static>(
    mut reader: R,
    mut writer: Writer,
    mut session: Session,
    broker: &Arc<Broker>,
    api: &ApiState,
    options: ServerOptions,
) -> Result<(), ConnectionError> {
    let _open = OpenConnection::new(&broker.metrics);
    let max = broker.config.socket_request_max_bytes;
    // Frames are read by their own task, so that reading the next request can wait
    // alongside answers being prepared; the channel holds at most one frame ahead.
    let (frames_tx, mut frames) = tokio::sync::mpsc::channel(1);
    // Raised when the client closes (or breaks) its side: a request still being
    // handled (a long-polling fetch) is then dropped, releasing the connection at once
    // rather than whenever its wait ends, as Kafka drops a disconnected client's work.
    let closed = Arc::new(tokio::sync::Notify::new());
    let reader_closed = closed.clone();
    let read_task = tokio::spawn(async move {
        loop {
            let frame = read_frame(&mut reader, max).await;
            let end = !matches!(frame, Ok(Some(_)));
            if end {
                reader_closed.notify_one();
            }
            if frames_tx.send(frame).await.is_err() || end {
                break;
            }
        }
    });
    let _stop_reading = AbortOnDrop(read_task);
    let mut waiting: VecDeque<(Waiting, Served)> = VecDeque::new();
    loop {
        // A throttled client's next request is not read before its throttle ends.
        let muted = session
            .muted_until
            .filter(|until| *until > std::time::Instant::now());
        if muted.is_none() {
            session.muted_until = None;
        }
        tokio::select! {
            _ = async {
                if let Some(until) = muted {
                    tokio::time::sleep_until(until.into()).await;
                }
            }, if muted.is_some() => {}
            // The oldest waiting answer goes first: answers leave in request order.
            outcome = async {
                match waiting.front_mut() {
                    Some((answer, _)) => answer.await,
                    None => std::future::pending().await,
                }
            }, if !waiting.is_empty() => {
                if let Some((_, served)) = waiting.pop_front() {
                    answer(&mut writer, outcome, options, served, broker).await?;
                }
            }
            frame = frames.recv(), if waiting.len() < MAX_WAITING_ANSWERS && muted.is_none() => {
                let frame = match frame {
                    Some(Ok(Some(frame))) => frame,
                    Some(Err(error)) => return Err(error),
                    Some(Ok(None)) | None => {
                        // The client is done sending: answer what it is owed, then close.
                        while let Some((waited, served)) = waiting.pop_front() {
                            answer(&mut writer, waited.await, options, served, broker).await?;
                        }
                        return Ok(());
                    }
                };
                let served = Served::new(&frame);
                let outcome = tokio::select! {
                    outcome = api::handle_frame(broker, api, frame, &mut session) => outcome,
                    _ = closed.notified() => return Ok(()),
                };
                tracing::trace!(handled = ?served.started.elapsed(), "request handled");
                match outcome {
                    Outcome::Deferred(deferred) => waiting.push_back((deferred, served)),
                    outcome if waiting.is_empty() => answer(&mut writer, outcome, options, served, broker).await?,
                    outcome => waiting.push_back((Box::pin(std::future::ready(outcome)), served)),
                }
            }
        }
    }
}

/// Aborts a task when dropped (the connection's reader ends with the connection).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn write_chunks(
    writer: &mut Writer,
    chunks: Vec<Chunk>,
    options: ServerOptions,
) -> std::io::Result<()> {
    for chunk in chunks {
        match (chunk, &mut *writer) {
            (Chunk::Bytes(bytes), writer) => writer.write_all(&bytes).await?,
            (Chunk::File(slice), Writer::Plain(socket)) if options.zero_copy => {
                send_file(socket.as_ref(), &slice).await?
            }
            (Chunk::File(slice), writer) => {
                let file = slice.clone();
                let bytes = tokio::task::spawn_blocking(move || file.read_to_vec())
                    .await
                    .map_err(std::io::Error::other)??;
                writer.write_all(&bytes).await?;
            }
        }
    }
    Ok(())
}

/// Sends a file range with sendfile(2), waiting for the socket whenever it is full.
/// A range that the file no longer holds ends the connection: the frame size was
/// already promised.
async fn send_file(socket: &TcpStream, slice: &FileSlice) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;
    let socket_fd = socket.as_raw_fd();
    let file_fd = slice.file.as_raw_fd();
    let mut offset = slice.position as libc::off_t;
    let end = (slice.position + slice.len) as libc::off_t;
    while offset < end {
        socket.writable().await?;
        let sent = socket.try_io(Interest::WRITABLE, || {
            let count = (end - offset) as usize;
            // SAFETY: both descriptors are open for the duration of the call (the socket
            // is borrowed, the file is held by `slice`), and `offset` is a valid pointer.
            let sent = unsafe { libc::sendfile(socket_fd, file_fd, &mut offset, count) };
            if sent < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(sent as usize)
            }
        });
        match sent {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
