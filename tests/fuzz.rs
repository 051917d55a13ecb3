//! Hostile input: real client requests (captured by `scripts/fuzz-capture` into
//! `tests/fixtures/fuzz-corpus/`), mutated — bit flips, truncations, length and count
//! fields set to extremes, API key and version swaps, splices, lying length prefixes —
//! and sent to an in-process broker. The broker must answer or close the connection,
//! never panic, keep serving a well-behaved client throughout, stay within bounded
//! memory, and keep every stored batch intact.
//!
//! The test suite runs a fixed seed and case count; `scripts/fuzz --minutes N [--seed S]`
//! runs longer (FERROLOG_FUZZ_MINUTES, FERROLOG_FUZZ_SEED, FERROLOG_FUZZ_CASES).

mod common;

use common::{Client, TestBroker, create_topic, fetch_request, produce_request, record_batch};
use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::records::Compression;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static PANICS: AtomicU64 = AtomicU64::new(0);

/// xorshift64*: small, seedable, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| std::fs::read(path).expect("corpus frame"))
        .collect()
}

const EXTREMES: [u64; 6] = [
    0,
    u64::MAX,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_fffe,
    0x7fff_fffe,
];

/// One mutated frame (without its length prefix) and the length prefix to send.
fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> (Vec<u8>, i32) {
    let mut frame = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(3) {
        match rng.below(8) {
            0 if !frame.is_empty() => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(frame.len());
                    frame[at] ^= 1 << rng.below(8);
                }
            }
            1 => frame.truncate(rng.below(frame.len() + 1)),
            2 | 3 => {
                // A length, count or offset field set to an extreme value.
                let width = [1, 2, 4, 8][rng.below(4)];
                if frame.len() > width {
                    let at = rng.below(frame.len() - width);
                    let value = EXTREMES[rng.below(EXTREMES.len())].to_be_bytes();
                    frame[at..at + width].copy_from_slice(&value[8 - width..]);
                }
            }
            4 if frame.len() >= 4 => {
                // Another API key or version for the same body.
                let key = (rng.below(80) as i16).to_be_bytes();
                let version = (rng.below(20) as i16 - 2).to_be_bytes();
                if rng.below(2) == 0 {
                    frame[..2].copy_from_slice(&key);
                } else {
                    frame[2..4].copy_from_slice(&version);
                }
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(frame.len() + 1);
                let from = rng.below(other.len() + 1);
                frame.truncate(cut);
                frame.extend_from_slice(&other[from..]);
            }
            6 => {
                let at = rng.below(frame.len() + 1);
                let junk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                frame.splice(at..at, junk);
            }
            _ => {
                if !frame.is_empty() {
                    let at = rng.below(frame.len());
                    let end = (at + 1 + rng.below(16)).min(frame.len());
                    frame.drain(at..end);
                }
            }
        }
    }
    let length = match rng.below(40) {
        0 => -1,
        1 => i32::MAX,
        2 => frame.len() as i32 + 1 + rng.below(64) as i32,
        _ => frame.len() as i32,
    };
    (frame, length)
}

#[derive(Default)]
struct Outcomes {
    answered: AtomicU64,
    closed: AtomicU64,
    silent: AtomicU64,
}

/// Sends one frame on a fresh connection; waits briefly for an answer or a close.
async fn one_case(address: std::net::SocketAddr, frame: Vec<u8>, length: i32, outcomes: &Outcomes) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
        return;
    };
    let mut bytes = length.to_be_bytes().to_vec();
    bytes.extend_from_slice(&frame);
    if stream.write_all(&bytes).await.is_err() {
        outcomes.closed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut buf = [0u8; 4096];
    match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => outcomes.closed.fetch_add(1, Ordering::Relaxed),
        Ok(Ok(_)) => outcomes.answered.fetch_add(1, Ordering::Relaxed),
        // Waiting for the rest of a frame, or a long poll the request asked for.
        Err(_) => outcomes.silent.fetch_add(1, Ordering::Relaxed),
    };
}

fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// A well-behaved client still gets answers: ApiVersions, and a produce it reads back.
async fn canary(client: &mut Client, round: i64) {
    let versions = tokio::time::timeout(
        Duration::from_secs(5),
        client.send(ApiVersionsRequest::default(), 3),
    )
    .await
    .expect("the broker kept answering a well-behaved client")
    .expect("ApiVersions");
    assert_eq!(versions.error_code, 0);
    let produced = client
        .send(
            // Current timestamps: ancient ones would roll a segment at every append.
            produce_request(
                "canary",
                0,
                record_batch(1, Compression::None, ferrolog::common::now_ms() + round % 7),
                1,
            ),
            9,
        )
        .await
        .expect("produce");
    let partition = &produced.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 0);
    let fetched = client
        .send(fetch_request("canary", 0, partition.base_offset), 11)
        .await
        .expect("fetch");
    assert!(
        fetched.responses[0].partitions[0]
            .records
            .as_ref()
            .is_some_and(|records| !records.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_client_requests_never_break_the_broker() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse::<u64>().ok())
    };
    let seed = env("FERROLOG_FUZZ_SEED").unwrap_or(1);
    let minutes = env("FERROLOG_FUZZ_MINUTES");
    let cases = env("FERROLOG_FUZZ_CASES").unwrap_or(if minutes.is_some() { u64::MAX } else { 6000 });
    let deadline = Instant::now() + Duration::from_secs(minutes.unwrap_or(60) * 60);

    let broker = TestBroker::start(&[("max.connections", "100000")]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "canary", 1, &[]).await;
    // The topics the captured requests name, so they reach the log, not just the decoder.
    create_topic(&mut client, "corpus", 2, &[]).await;
    create_topic(&mut client, "corpus-kp", 1, &[]).await;
    let corpus = corpus();
    assert!(corpus.len() >= 20, "corpus has {} frames", corpus.len());
    let outcomes = Arc::new(Outcomes::default());
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let started = Instant::now();
    let mut done = 0u64;
    let mut peak_mib = resident_mib();
    while done < cases && Instant::now() < deadline {
        // 32 cases at a time, each on its own connection.
        let batch: Vec<_> = (0..32).map(|_| mutate(&mut rng, &corpus)).collect();
        let tasks: Vec<_> = batch
            .into_iter()
            .map(|(frame, length)| {
                let outcomes = outcomes.clone();
                let address = broker.address;
                tokio::spawn(async move { one_case(address, frame, length, &outcomes).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("case task");
        }
        done += 32;
        if done.is_multiple_of(1024) {
            canary(&mut client, done as i64).await;
            peak_mib = peak_mib.max(resident_mib());
            assert!(peak_mib < 1024, "resident memory grew to {peak_mib} MiB");
            assert_eq!(PANICS.load(Ordering::SeqCst), 0, "the broker panicked");
        }
    }
    canary(&mut client, -1).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "the broker panicked");
    // Whatever was stored is intact: every batch of every partition passes its CRC.
    let mut batches = 0;
    for topic in ["canary", "corpus", "corpus-kp"] {
        for index in 0..2 {
            let Some(partition) = broker
                .broker
                .replicas
                .partition(&ferrolog::log::TopicPartition::new(topic, index))
            else {
                continue;
            };
            partition.with_log(|log| {
                let mut offset = log.log_start_offset();
                while let Some(slice) = log
                    .read(offset, log.log_end_offset(), 1 << 20, true)
                    .expect("read")
                {
                    let bytes = bytes::Bytes::from(slice.read_to_vec().expect("read slice"));
                    let stored = ferrolog::log::batch::split_and_validate(&bytes, usize::MAX)
                        .expect("every stored batch is intact");
                    batches += stored.len();
                    offset = stored.last().expect("a batch").header.last_offset() + 1;
                }
            });
        }
    }
    println!(
        "fuzz: seed {seed}, {done} cases in {:.1} s: {} answered, {} closed, {} silent; {batches} stored batches intact; peak RSS {peak_mib} MiB",
        started.elapsed().as_secs_f64(),
        outcomes.answered.load(Ordering::Relaxed),
        outcomes.closed.load(Ordering::Relaxed),
        outcomes.silent.load(Ordering::Relaxed),
    );
}

/// Found by the fuzzer: a Fetch claiming 2^31-1 topics in a few bytes made the decoder
/// ask for ~88 GB at once and the process aborted. It must cost nothing and the broker
/// must go on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_claiming_two_billion_elements_is_refused_without_harm() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "canary", 1, &[]).await;
    let fetch = corpus()
        .into_iter()
        .find(|frame| frame[..4] == [0, 1, 0, 11])
        .expect("a captured Fetch v11");
    let client_id_len = i16::from_be_bytes([fetch[8], fetch[9]]) as usize;
    // Header (key, version, correlation id, client id), then replica id, max wait, min
    // bytes, max bytes, isolation level, session id and epoch: the topic count follows.
    let count_at = 8 + 2 + client_id_len + 4 + 4 + 4 + 4 + 1 + 4 + 4;
    let mut hostile = fetch[..count_at + 4].to_vec();
    hostile[count_at..].copy_from_slice(&i32::MAX.to_be_bytes());
    let mut stream = tokio::net::TcpStream::connect(broker.address)
        .await
        .expect("connect");
    let mut bytes = (hostile.len() as i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&hostile);
    stream.write_all(&bytes).await.expect("send");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer or a close, at once");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "an undecodable request closes the connection"
    );
    canary(&mut client, 1).await;
    assert!(resident_mib() < 1024);
}

/// Found by the long fuzz run: one mutated CreateTopics asked for thousands of
/// partitions, and the files they opened starved every other partition of descriptors.
/// As in Kafka, one request may add at most 10 000 partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_adds_at_most_ten_thousand_partitions() {
    use kafka_protocol::messages::{
        CreatePartitionsRequest, CreateTopicsRequest, create_partitions_request, create_topics_request,
    };
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    let topic = |name: &str, partitions: i32| {
        create_topics_request::CreatableTopic::default()
            .with_name(common::topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
    };
    let response = client
        .send(
            CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![topic("huge-a", 6000), topic("huge-b", 6000)]),
            5,
        )
        .await
        .expect("CreateTopics");
    for result in &response.topics {
        assert_eq!(
            result.error_code,
            kafka_protocol::ResponseError::PolicyViolation.code()
        );
    }
    assert!(broker.broker.topic("huge-a").is_none() && broker.broker.topic("huge-b").is_none());
    create_topic(&mut client, "grows", 1, &[]).await;
    let response = client
        .send(
            CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(common::topic_name("grows"))
                        .with_count(i32::MAX),
                ]),
            1,
        )
        .await
        .expect("CreatePartitions");
    assert_eq!(
        response.results[0].error_code,
        kafka_protocol::ResponseError::PolicyViolation.code()
    );
    assert_eq!(broker.broker.topic("grows").expect("topic").n_partitions(), 1);
    common::assert_answers(&mut client).await;
}
