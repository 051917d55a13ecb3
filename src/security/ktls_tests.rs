//! The handoff against a stand-in for the kernel's record layer: the keys and record
//! sequences `hand_off` gives the kernel must decrypt what the client sent after the
//! handshake and encrypt what the client then reads, for every version and cipher.

use super::*;
use crate::config::{ClientAuth, PemSource, TlsSettings};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use std::io::Write;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

const APPLICATION_DATA: u8 = 0x17;

/// What the kernel does with one direction's keys, in user space.
struct RecordCipher {
    version: KernelVersion,
    explicit_nonce: bool,
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl RecordCipher {
    fn new(version: KernelVersion, info: &CryptoInfo) -> Self {
        let (key, salt, iv, seq) = info.parts();
        let algorithm = match info {
            CryptoInfo::AesGcm128(_) => &AES_128_GCM,
            CryptoInfo::AesGcm256(_) => &AES_256_GCM,
            CryptoInfo::Chacha20Poly1305(_) => &CHACHA20_POLY1305,
        };
        let mut full_iv = [0u8; 12];
        full_iv[..salt.len()].copy_from_slice(salt);
        full_iv[salt.len()..].copy_from_slice(iv);
        RecordCipher {
            version,
            // TLS 1.2 AES-GCM records carry the last 8 nonce bytes in the clear.
            explicit_nonce: version == KernelVersion::Tls12 && !salt.is_empty(),
            key: LessSafeKey::new(UnboundKey::new(algorithm, key).expect("key of the cipher's size")),
            iv: full_iv,
            seq,
        }
    }

    fn sequence_nonce(&self) -> [u8; 12] {
        let mut nonce = self.iv;
        for (byte, seq) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *byte ^= seq;
        }
        nonce
    }

    fn tls12_aad(&self, content_type: u8, length: usize) -> Vec<u8> {
        let mut aad = self.seq.to_be_bytes().to_vec();
        aad.extend_from_slice(&[content_type, 3, 3]);
        aad.extend_from_slice(&(length as u16).to_be_bytes());
        aad
    }

    /// Decrypts one record: its content type and data.
    fn open(&mut self, header: [u8; 5], mut body: Vec<u8>) -> (u8, Vec<u8>) {
        let opened = match self.version {
            KernelVersion::Tls13 => {
                let nonce = Nonce::assume_unique_for_key(self.sequence_nonce());
                let inner = self
                    .key
                    .open_in_place(nonce, Aad::from(header), &mut body)
                    .expect("the record decrypts with the handed-off keys")
                    .to_vec();
                let end = inner
                    .iter()
                    .rposition(|byte| *byte != 0)
                    .expect("an inner content type");
                (inner[end], inner[..end].to_vec())
            }
            KernelVersion::Tls12 => {
                let mut nonce = self.iv;
                if self.explicit_nonce {
                    nonce[4..].copy_from_slice(&body[..8]);
                    body.drain(..8);
                } else {
                    nonce = self.sequence_nonce();
                }
                let aad = self.tls12_aad(header[0], body.len() - 16);
                let data = self
                    .key
                    .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
                    .expect("the record decrypts with the handed-off keys")
                    .to_vec();
                (header[0], data)
            }
        };
        self.seq += 1;
        opened
    }

    /// Encrypts `data` as one application-data record, header included.
    fn seal(&mut self, data: &[u8]) -> Vec<u8> {
        let record = match self.version {
            KernelVersion::Tls13 => {
                let mut inner = data.to_vec();
                inner.push(APPLICATION_DATA);
                let length = (inner.len() + 16) as u16;
                let mut header = vec![APPLICATION_DATA, 3, 3];
                header.extend_from_slice(&length.to_be_bytes());
                let nonce = Nonce::assume_unique_for_key(self.sequence_nonce());
                self.key
                    .seal_in_place_append_tag(nonce, Aad::from(&header), &mut inner)
                    .expect("sealed");
                header.extend_from_slice(&inner);
                header
            }
            KernelVersion::Tls12 => {
                let aad = self.tls12_aad(APPLICATION_DATA, data.len());
                let (nonce, explicit) = if self.explicit_nonce {
                    let mut nonce = self.iv;
                    nonce[4..].copy_from_slice(&self.seq.to_be_bytes());
                    (nonce, self.seq.to_be_bytes().to_vec())
                } else {
                    (self.sequence_nonce(), Vec::new())
                };
                let mut sealed = data.to_vec();
                self.key
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        &mut sealed,
                    )
                    .expect("sealed");
                let length = (explicit.len() + sealed.len()) as u16;
                let mut record = vec![APPLICATION_DATA, 3, 3];
                record.extend_from_slice(&length.to_be_bytes());
                record.extend_from_slice(&explicit);
                record.extend_from_slice(&sealed);
                record
            }
        };
        self.seq += 1;
        record
    }
}

fn certificate() -> (String, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    (generated.cert.pem(), generated.key_pair.serialize_pem())
}

fn server_config(certificate: &(String, String)) -> Arc<rustls::ServerConfig> {
    crate::security::tls::server_config(&TlsSettings {
        certificate_chain: PemSource::Inline(certificate.0.clone()),
        private_key: PemSource::Inline(certificate.1.clone()),
        truststore: None,
        client_auth: ClientAuth::None,
        tls12: true,
        tls13: true,
        kernel_tls: true,
    })
    .expect("server config")
}

fn client_config(
    certificate: &(String, String),
    version: &'static rustls::SupportedProtocolVersion,
    suite: rustls::SupportedCipherSuite,
) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(certificate.0.as_bytes()).expect("PEM"))
        .expect("root");
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![suite];
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[version])
            .expect("version")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn everything() -> Capabilities {
    let mut supported = Vec::new();
    for version in [KernelVersion::Tls12, KernelVersion::Tls13] {
        for cipher in KernelCipher::ALL {
            supported.push((version, cipher));
        }
    }
    Capabilities {
        supported,
        unavailable: None,
    }
}

/// A blocking rustls client that queues `request` before the handshake ends (so it
/// leaves in the same write as the client's Finished), then reads `expected` bytes.
fn run_client(
    address: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    request: Vec<u8>,
    expected: usize,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        use std::io::Read;
        let mut socket = std::net::TcpStream::connect(address).expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut client = rustls::ClientConnection::new(config, name).expect("client");
        client.writer().write_all(&request).expect("queued");
        let mut stream = rustls::Stream::new(&mut client, &mut socket);
        let mut response = vec![0; expected];
        stream.read_exact(&mut response).expect("response");
        response
    })
}

type ServerStream = tokio_rustls::server::TlsStream<RecordBounded<tokio::net::TcpStream>>;

/// A client (see [`run_client`]) and the server's end of its connection after the
/// handshake, read record by record as the broker reads it.
async fn handshake(
    certificate: &(String, String),
    config: Arc<rustls::ClientConfig>,
    request: Vec<u8>,
    expected: usize,
) -> (std::thread::JoinHandle<Vec<u8>>, ServerStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = run_client(listener.local_addr().expect("address"), config, request, expected);
    let (socket, _) = listener.accept().await.expect("accept");
    let stream = tokio_rustls::TlsAcceptor::from(server_config(certificate))
        .accept(RecordBounded::new(socket))
        .await
        .expect("handshake");
    (client, stream)
}

async fn handoff_round_trip(
    version: &'static rustls::SupportedProtocolVersion,
    suite: rustls::SupportedCipherSuite,
    kernel_version: KernelVersion,
) {
    let certificate = certificate();
    // Larger than one record and than what rustls reads at once: an unbounded
    // handshake read would leave part of a record inside rustls.
    let request: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let response: Vec<u8> = b"handed off".repeat(100);
    let (client, stream) = handshake(
        &certificate,
        client_config(&certificate, version, suite),
        request.clone(),
        response.len(),
    )
    .await;
    let mut keys = None;
    let handoff = hand_off(
        stream,
        true,
        &everything(),
        |_, tx: &CryptoInfo, rx: &CryptoInfo| {
            keys = Some((*tx, *rx));
            Ok(())
        },
    )
    .await
    .expect("handoff");
    let Handoff::Kernel { mut socket, received } = handoff else {
        panic!("{suite:?} stayed in user space");
    };
    let (tx, rx) = keys.expect("keys handed over");
    // The kernel's receive side: whatever rustls had decrypted, then the records
    // still in the socket.
    let mut reader = RecordCipher::new(kernel_version, &rx);
    let mut plain = received;
    // Bytes that rustls swallowed during the handshake never reach the kernel: the
    // wait for them ends the test instead of hanging it.
    let wait = std::time::Duration::from_secs(5);
    while plain.len() < request.len() {
        let mut header = [0u8; 5];
        tokio::time::timeout(wait, socket.read_exact(&mut header))
            .await
            .unwrap_or_else(|_| panic!("{suite:?}: part of the request never reached the kernel"))
            .expect("record header");
        let mut body = vec![0; u16::from_be_bytes([header[3], header[4]]) as usize];
        tokio::time::timeout(wait, socket.read_exact(&mut body))
            .await
            .unwrap_or_else(|_| panic!("{suite:?}: part of the request never reached the kernel"))
            .expect("record body");
        let (content_type, data) = reader.open(header, body);
        assert_eq!(content_type, APPLICATION_DATA, "{suite:?}");
        plain.extend_from_slice(&data);
    }
    assert!(plain == request, "{suite:?}: the request arrived altered");
    // The kernel's send side.
    let mut writer = RecordCipher::new(kernel_version, &tx);
    socket.write_all(&writer.seal(&response)).await.expect("send");
    let answered = tokio::task::spawn_blocking(move || client.join().expect("client thread"))
        .await
        .expect("joined");
    assert_eq!(answered, response, "{suite:?}");
}

#[tokio::test]
async fn handed_off_keys_carry_the_session_for_every_kernel_cipher() {
    use rustls::crypto::ring::cipher_suite as suites;
    let tls13 = [
        suites::TLS13_AES_128_GCM_SHA256,
        suites::TLS13_AES_256_GCM_SHA384,
        suites::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    for suite in tls13 {
        handoff_round_trip(&rustls::version::TLS13, suite, KernelVersion::Tls13).await;
    }
    let tls12 = [
        suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    for suite in tls12 {
        handoff_round_trip(&rustls::version::TLS12, suite, KernelVersion::Tls12).await;
    }
}

#[tokio::test]
async fn without_kernel_support_the_connection_stays_on_rustls() {
    use rustls::crypto::ring::cipher_suite as suites;
    let certificate = certificate();
    for (enabled, capabilities) in [(true, Capabilities::default()), (false, everything())] {
        let request = b"still rustls".repeat(5000);
        let config = client_config(
            &certificate,
            &rustls::version::TLS13,
            suites::TLS13_AES_128_GCM_SHA256,
        );
        let (client, stream) = handshake(&certificate, config, request.clone(), 4).await;
        let handoff = hand_off(
            stream,
            enabled,
            &capabilities,
            |_, _: &CryptoInfo, _: &CryptoInfo| panic!("nothing may reach the kernel"),
        )
        .await
        .expect("handoff");
        let Handoff::Userspace(mut stream) = handoff else {
            panic!("handed off without kernel support");
        };
        let mut read = vec![0; request.len()];
        stream.read_exact(&mut read).await.expect("request over rustls");
        assert!(read == request);
        stream.write_all(b"done").await.expect("answer");
        stream.flush().await.expect("flush");
        let answered = tokio::task::spawn_blocking(move || client.join().expect("client thread"))
            .await
            .expect("joined");
        assert_eq!(answered, b"done");
    }
}

#[tokio::test]
async fn record_bounded_reads_never_cross_a_record() {
    // Three records (one empty) in a single write; a reader with room for all of
    // them gets them one record at a time.
    let mut wire = Vec::new();
    for body in [&b"first"[..], b"", b"third record"] {
        wire.extend_from_slice(&[0x16, 3, 3]);
        wire.extend_from_slice(&(body.len() as u16).to_be_bytes());
        wire.extend_from_slice(body);
    }
    let (mut near, far) = tokio::io::duplex(1024);
    near.write_all(&wire).await.expect("write");
    drop(near);
    let mut bounded = RecordBounded::new(far);
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    loop {
        let mut buffer = [0u8; 1024];
        let read = bounded.read(&mut buffer).await.expect("read");
        if read == 0 {
            break;
        }
        all.extend_from_slice(&buffer[..read]);
        sizes.push(read);
    }
    assert_eq!(all, wire);
    assert_eq!(sizes, vec![5, 5, 5, 5, 12]);
    assert!(bounded.at_record_boundary());
    // Unbound, a read takes whatever is there.
    let (mut near, far) = tokio::io::duplex(1024);
    near.write_all(&wire).await.expect("write");
    let mut unbound = RecordBounded::new(far);
    unbound.unbound();
    let mut buffer = [0u8; 1024];
    assert_eq!(unbound.read(&mut buffer).await.expect("read"), wire.len());
}
