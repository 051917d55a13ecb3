//! Kernel TLS: after the rustls handshake, the session keys go to the kernel
//! (`setsockopt(TCP_ULP, "tls")`, then `TLS_TX` and `TLS_RX`) and the connection goes on
//! as a plain TCP socket the kernel encrypts and decrypts, so record data keeps
//! leaving by sendfile(2).
//!
//! Two things make the handoff safe:
//! - During the handshake the socket is read through [`RecordBounded`], which never
//!   hands rustls more than the rest of the current TLS record. When the handshake
//!   ends, rustls therefore holds no part of a later record: every byte the client
//!   sent after its Finished is still in the socket, for the kernel to decrypt.
//! - The handoff happens only where the kernel accepted the negotiated version and
//!   cipher in a probe at start-up ([`capabilities`]); anywhere else, and when the
//!   listener turns it off (`ssl.kernel.tls.enable=false`), the connection stays
//!   on rustls (the copying path).
//!
//! Once handed off, a record that is not application data (an alert such as
//! close_notify, or a TLS 1.3 KeyUpdate) makes the kernel fail the read with EIO;
//! the connection then ends, as it would at close_notify.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// TLS record header: content type, version, length.
const RECORD_HEADER: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordState {
    /// `filled` bytes of the next header have been read.
    Header {
        filled: usize,
        header: [u8; RECORD_HEADER],
    },
    /// `remaining` bytes of the current record's body are still to read.
    Body { remaining: usize },
}

/// A socket read at TLS record boundaries while bounded: a read never returns bytes
/// of two records. Writes pass straight through.
pub struct RecordBounded<IO> {
    io: IO,
    bounded: bool,
    state: RecordState,
}

impl<IO> RecordBounded<IO> {
    pub fn new(io: IO) -> Self {
        RecordBounded {
            io,
            bounded: true,
            state: RecordState::Header {
                filled: 0,
                header: [0; RECORD_HEADER],
            },
        }
    }

    /// Whether every record read so far was read whole.
    pub fn at_record_boundary(&self) -> bool {
        matches!(self.state, RecordState::Header { filled: 0, .. })
    }

    /// Reads pass straight through from now on (the connection stays on rustls).
    pub fn unbound(&mut self) {
        self.bounded = false;
    }

    pub fn into_inner(self) -> IO {
        self.io
    }

    fn advance(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        while !bytes.is_empty() {
            match &mut self.state {
                RecordState::Header { filled, header } => {
                    let take = (RECORD_HEADER - *filled).min(bytes.len());
                    header[*filled..*filled + take].copy_from_slice(&bytes[..take]);
                    *filled += take;
                    bytes = &bytes[take..];
                    if *filled == RECORD_HEADER {
                        let length = u16::from_be_bytes([header[3], header[4]]) as usize;
                        self.state = if length == 0 {
                            RecordState::Header {
                                filled: 0,
                                header: [0; RECORD_HEADER],
                            }
                        } else {
                            RecordState::Body { remaining: length }
                        };
                    }
                }
                RecordState::Body { remaining } => {
                    let take = (*remaining).min(bytes.len());
                    *remaining -= take;
                    bytes = &bytes[take..];
                    if *remaining == 0 {
                        self.state = RecordState::Header {
                            filled: 0,
                            header: [0; RECORD_HEADER],
                        };
                    }
                }
            }
        }
    }

    /// How many bytes the next read may return without crossing a record boundary.
    fn limit(&self) -> usize {
        match self.state {
            RecordState::Header { filled, .. } => RECORD_HEADER - filled,
            RecordState::Body { remaining } => remaining,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for RecordBounded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.bounded {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        // Only the handshake is read this way: a small stack buffer is enough.
        let mut scratch = [0u8; 4096];
        let limit = this.limit().min(buf.remaining()).min(scratch.len());
        if limit == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut bounded = ReadBuf::new(&mut scratch[..limit]);
        ready!(Pin::new(&mut this.io).poll_read(cx, &mut bounded))?;
        let read = bounded.filled();
        buf.put_slice(read);
        let read = read.to_vec();
        this.advance(&read);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for RecordBounded<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The ciphers kernel TLS can take over, as the kernel names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelCipher {
    AesGcm128,
    AesGcm256,
    Chacha20Poly1305,
}

impl KernelCipher {
    const ALL: [KernelCipher; 3] = [
        KernelCipher::AesGcm128,
        KernelCipher::AesGcm256,
        KernelCipher::Chacha20Poly1305,
    ];

    /// The cipher of a negotiated suite; None for one the kernel cannot take.
    pub fn of(suite: rustls::CipherSuite) -> Option<Self> {
        use rustls::CipherSuite as S;
        match suite {
            S::TLS13_AES_128_GCM_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Some(KernelCipher::AesGcm128),
            S::TLS13_AES_256_GCM_SHA384
            | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Some(KernelCipher::AesGcm256),
            S::TLS13_CHACHA20_POLY1305_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some(KernelCipher::Chacha20Poly1305),
            _ => None,
        }
    }
}

/// The TLS versions of the kernel's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelVersion {
    Tls12,
    Tls13,
}

impl KernelVersion {
    fn code(self) -> u16 {
        match self {
            KernelVersion::Tls12 => libc::TLS_1_2_VERSION,
            KernelVersion::Tls13 => libc::TLS_1_3_VERSION,
        }
    }

    pub fn of(version: rustls::ProtocolVersion) -> Option<Self> {
        match version {
            rustls::ProtocolVersion::TLSv1_2 => Some(KernelVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(KernelVersion::Tls13),
            _ => None,
        }
    }
}

/// The key material for one direction, laid out as the kernel takes it.
#[derive(Clone, Copy)]
pub enum CryptoInfo {
    AesGcm128(libc::tls12_crypto_info_aes_gcm_128),
    AesGcm256(libc::tls12_crypto_info_aes_gcm_256),
    Chacha20Poly1305(libc::tls12_crypto_info_chacha20_poly1305),
}

fn bytes<const N: usize>(from: &[u8], what: &str) -> Result<[u8; N], String> {
    from.try_into()
        .map_err(|_| format!("{what} is {} bytes, not {N}", from.len()))
}

impl CryptoInfo {
    /// The kernel's form of one direction's rustls secrets at record sequence `seq`.
    /// For the AES-GCM ciphers the first 4 bytes of the 12-byte IV are the kernel's
    /// salt and the last 8 its IV; ChaCha20-Poly1305 takes all 12 as its IV.
    pub fn new(
        version: KernelVersion,
        seq: u64,
        secrets: &rustls::ConnectionTrafficSecrets,
    ) -> Result<Self, String> {
        use rustls::ConnectionTrafficSecrets as Secrets;
        let (key, iv, cipher) = match secrets {
            // rustls reports TLS 1.2 AES-256-GCM as Aes128Gcm with a 32-byte key:
            // the key length decides.
            Secrets::Aes128Gcm { key, iv } | Secrets::Aes256Gcm { key, iv } => {
                let cipher = match key.as_ref().len() {
                    16 => KernelCipher::AesGcm128,
                    32 => KernelCipher::AesGcm256,
                    other => return Err(format!("an AES-GCM key of {other} bytes")),
                };
                (key.as_ref(), iv.as_ref(), cipher)
            }
            Secrets::Chacha20Poly1305 { key, iv } => {
                (key.as_ref(), iv.as_ref(), KernelCipher::Chacha20Poly1305)
            }
            _ => return Err("a cipher kernel TLS does not take".into()),
        };
        Self::layout(version, cipher, key, iv, seq)
    }

    /// A key and 12-byte IV laid out for `cipher`.
    fn layout(
        version: KernelVersion,
        cipher: KernelCipher,
        key: &[u8],
        iv: &[u8],
        seq: u64,
    ) -> Result<Self, String> {
        if iv.len() != 12 {
            return Err(format!("an IV of {} bytes", iv.len()));
        }
        let info = |cipher_type| libc::tls_crypto_info {
            version: version.code(),
            cipher_type,
        };
        let rec_seq = seq.to_be_bytes();
        let (salt, explicit) = iv.split_at(4);
        Ok(match cipher {
            KernelCipher::AesGcm128 => CryptoInfo::AesGcm128(libc::tls12_crypto_info_aes_gcm_128 {
                info: info(libc::TLS_CIPHER_AES_GCM_128),
                iv: bytes(explicit, "the IV")?,
                key: bytes(key, "the key")?,
                salt: bytes(salt, "the salt")?,
                rec_seq,
            }),
            KernelCipher::AesGcm256 => CryptoInfo::AesGcm256(libc::tls12_crypto_info_aes_gcm_256 {
                info: info(libc::TLS_CIPHER_AES_GCM_256),
                iv: bytes(explicit, "the IV")?,
                key: bytes(key, "the key")?,
                salt: bytes(salt, "the salt")?,
                rec_seq,
            }),
            KernelCipher::Chacha20Poly1305 => {
                CryptoInfo::Chacha20Poly1305(libc::tls12_crypto_info_chacha20_poly1305 {
                    info: info(libc::TLS_CIPHER_CHACHA20_POLY1305),
                    iv: bytes(iv, "the IV")?,
                    key: bytes(key, "the key")?,
                    salt: [],
                    rec_seq,
                })
            }
        })
    }

    /// Key material of the right shape and all zeros, for probing.
    fn zeroed(version: KernelVersion, cipher: KernelCipher) -> Result<Self, String> {
        let key_length = if cipher == KernelCipher::AesGcm128 { 16 } else { 32 };
        Self::layout(version, cipher, &[0; 32][..key_length], &[0; 12], 0)
    }

    /// The key, salt, IV and record sequence, in that order (for tests).
    pub fn parts(&self) -> (&[u8], &[u8], &[u8], u64) {
        match self {
            CryptoInfo::AesGcm128(info) => {
                (&info.key, &info.salt, &info.iv, u64::from_be_bytes(info.rec_seq))
            }
            CryptoInfo::AesGcm256(info) => {
                (&info.key, &info.salt, &info.iv, u64::from_be_bytes(info.rec_seq))
            }
            CryptoInfo::Chacha20Poly1305(info) => {
                (&info.key, &info.salt, &info.iv, u64::from_be_bytes(info.rec_seq))
            }
        }
    }

    /// Hands this direction's keys to the kernel (`TLS_TX` or `TLS_RX`).
    fn install(&self, fd: RawFd, direction: libc::c_int) -> io::Result<()> {
        fn set<T>(fd: RawFd, direction: libc::c_int, value: &T) -> io::Result<()> {
            // SAFETY: `fd` is an open socket for the call, and `value` points to a
            // live struct of the size given.
            let result = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_TLS,
                    direction,
                    (value as *const T).cast(),
                    std::mem::size_of::<T>() as libc::socklen_t,
                )
            };
            if result == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        match self {
            CryptoInfo::AesGcm128(info) => set(fd, direction, info),
            CryptoInfo::AesGcm256(info) => set(fd, direction, info),
            CryptoInfo::Chacha20Poly1305(info) => set(fd, direction, info),
        }
    }
}

/// Turns on the kernel's TLS layer on a connected TCP socket.
fn enable_ulp(fd: RawFd) -> io::Result<()> {
    let name = b"tls";
    // SAFETY: `fd` is an open socket for the call; the option value is a valid buffer
    // of the length given.
    let result = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What this kernel's TLS layer accepts, probed once on loopback sockets.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    /// The (version, cipher) pairs the kernel accepted keys for.
    pub supported: Vec<(KernelVersion, KernelCipher)>,
    /// Why there is no kernel TLS at all, when there is none.
    pub unavailable: Option<String>,
}

impl Capabilities {
    pub fn supports(&self, version: KernelVersion, cipher: KernelCipher) -> bool {
        self.supported.contains(&(version, cipher))
    }

    fn probe() -> Self {
        let mut capabilities = Capabilities::default();
        for version in [KernelVersion::Tls12, KernelVersion::Tls13] {
            for cipher in KernelCipher::ALL {
                match probe_one(version, cipher) {
                    Ok(()) => capabilities.supported.push((version, cipher)),
                    Err(Probe::NoUlp(reason)) => {
                        capabilities.unavailable = Some(reason);
                        return capabilities;
                    }
                    Err(Probe::Refused) => {}
                }
            }
        }
        if capabilities.supported.is_empty() {
            capabilities.unavailable = Some("the kernel accepted no TLS version and cipher".into());
        }
        capabilities
    }
}

enum Probe {
    NoUlp(String),
    Refused,
}

fn probe_one(version: KernelVersion, cipher: KernelCipher) -> Result<(), Probe> {
    let fail = |error: io::Error| Probe::NoUlp(error.to_string());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(fail)?;
    let address = listener.local_addr().map_err(fail)?;
    let client = std::net::TcpStream::connect(address).map_err(fail)?;
    let _server = listener.accept().map_err(fail)?;
    enable_ulp(client.as_raw_fd())
        .map_err(|error| Probe::NoUlp(format!("setsockopt(TCP_ULP, \"tls\"): {error}")))?;
    CryptoInfo::zeroed(version, cipher)
        .map_err(|_| Probe::Refused)?
        .install(client.as_raw_fd(), libc::TLS_TX)
        .map_err(|_| Probe::Refused)
}

/// This kernel's TLS capabilities (probed on first use).
pub fn capabilities() -> &'static Capabilities {
    static CAPABILITIES: OnceLock<Capabilities> = OnceLock::new();
    CAPABILITIES.get_or_init(Capabilities::probe)
}

/// A TLS connection after the handshake.
pub enum Handoff<IO> {
    /// The kernel does the TLS from here: the socket, and application bytes rustls
    /// had already decrypted (to be read before the socket).
    Kernel { socket: IO, received: Vec<u8> },
    /// The connection stays on rustls.
    Userspace(Box<tokio_rustls::server::TlsStream<RecordBounded<IO>>>),
}

/// Why a connection could stay on neither rustls nor the kernel (it must close).
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("cannot take the session keys out of rustls: {0}")]
    Secrets(rustls::Error),
    #[error("the kernel refused the session keys: {0}")]
    Refused(String),
}

/// Hands a socket's keys to the kernel: the TLS layer on, then transmit and receive
/// keys.
pub fn install_in_kernel(socket: &impl AsRawFd, tx: &CryptoInfo, rx: &CryptoInfo) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    enable_ulp(fd)?;
    tx.install(fd, libc::TLS_TX)?;
    rx.install(fd, libc::TLS_RX)
}

/// Moves a handshaken connection to kernel TLS when `enabled` and the kernel
/// `capabilities` accept its version and cipher; otherwise leaves it on rustls.
/// `install` hands the keys over ([`install_in_kernel`] outside tests).
pub async fn hand_off<IO, Install>(
    mut stream: tokio_rustls::server::TlsStream<RecordBounded<IO>>,
    enabled: bool,
    capabilities: &Capabilities,
    install: Install,
) -> Result<Handoff<IO>, HandoffError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    Install: FnOnce(&IO, &CryptoInfo, &CryptoInfo) -> io::Result<()>,
{
    let connection = stream.get_ref().1;
    let kernel_form = connection.protocol_version().and_then(KernelVersion::of).zip(
        connection
            .negotiated_cipher_suite()
            .and_then(|suite| KernelCipher::of(suite.suite())),
    );
    let Some((version, cipher)) = kernel_form.filter(|(version, cipher)| {
        enabled && capabilities.supports(*version, *cipher) && stream.get_ref().0.at_record_boundary()
    }) else {
        stream.get_mut().0.unbound();
        return Ok(Handoff::Userspace(Box::new(stream)));
    };
    // Whatever rustls still has to send (session tickets) leaves under its keys.
    stream.flush().await?;
    if stream.get_ref().1.wants_write() {
        stream.get_mut().0.unbound();
        return Ok(Handoff::Userspace(Box::new(stream)));
    }
    let (io, mut connection) = stream.into_inner();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match connection.reader().read(&mut chunk) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(read) => received.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error.into()),
        }
    }
    let secrets = connection
        .dangerous_extract_secrets()
        .map_err(HandoffError::Secrets)?;
    let tx = CryptoInfo::new(version, secrets.tx.0, &secrets.tx.1).map_err(HandoffError::Refused)?;
    let rx = CryptoInfo::new(version, secrets.rx.0, &secrets.rx.1).map_err(HandoffError::Refused)?;
    let socket = io.into_inner();
    install(&socket, &tx, &rx)
        .map_err(|error| HandoffError::Refused(format!("{version:?} {cipher:?}: {error}")))?;
    Ok(Handoff::Kernel { socket, received })
}

/// A one-line account of kernel TLS on this machine, for the start-up log.
pub fn describe(capabilities: &Capabilities) -> String {
    match &capabilities.unavailable {
        Some(reason) => format!("kernel TLS is not available ({reason}): TLS listeners copy record data"),
        None => format!(
            "kernel TLS takes over TLS connections after the handshake (sendfile kept) for {:?}",
            capabilities.supported
        ),
    }
}

#[cfg(test)]
#[path = "ktls_tests.rs"]
mod tests;
