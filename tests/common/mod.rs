//! Test support: an in-process broker on an ephemeral port and a raw Kafka client.
#![allow(dead_code)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ferrolog::broker::Broker;
use ferrolog::config::BrokerConfig;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
    create_topics_request, produce_request,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct TestBroker {
    pub address: SocketAddr,
    pub broker: Arc<Broker>,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestBroker {
    pub async fn start(settings: &[(&str, &str)]) -> TestBroker {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, settings).await
    }

    pub async fn start_in(dir: tempfile::TempDir, settings: &[(&str, &str)]) -> TestBroker {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let mut explicit = BTreeMap::from([
            ("listeners".to_string(), format!("PLAINTEXT://{address}")),
            ("log.dirs".to_string(), dir.path().display().to_string()),
            ("offsets.topic.replication.factor".to_string(), "1".to_string()),
            ("offsets.topic.num.partitions".to_string(), "5".to_string()),
            (
                "transaction.state.log.replication.factor".to_string(),
                "1".to_string(),
            ),
            ("transaction.state.log.min.isr".to_string(), "1".to_string()),
            (
                "transaction.state.log.num.partitions".to_string(),
                "5".to_string(),
            ),
            (
                "share.coordinator.state.topic.replication.factor".to_string(),
                "1".to_string(),
            ),
            (
                "share.coordinator.state.topic.min.isr".to_string(),
                "1".to_string(),
            ),
            (
                "share.coordinator.state.topic.num.partitions".to_string(),
                "5".to_string(),
            ),
            ("group.initial.rebalance.delay.ms".to_string(), "0".to_string()),
        ]);
        for (key, value) in settings {
            explicit.insert(key.to_string(), value.to_string());
        }
        Self::serve(listener, dir, explicit).await
    }

    /// Starts `n` nodes of one cluster in this process (combined mode: broker and
    /// controller, nodes 1..=n), each on ephemeral client and controller ports.
    /// `{id}` in a setting's value becomes the node's id.
    pub async fn start_cluster(n: i32, settings: &[(&str, &str)]) -> Vec<TestBroker> {
        let mut controller_ports: Vec<u16> = Vec::new();
        while controller_ports.len() < n as usize {
            // A CONTROLLER listener is bound by the broker later, so its port must stay free
            // until then: see `free_port`.
            let port = free_port();
            if !controller_ports.contains(&port) {
                controller_ports.push(port);
            }
        }
        let voters: Vec<String> = (1..=n)
            .zip(&controller_ports)
            .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
            .collect();
        let mut starts = Vec::new();
        for (id, port) in (1..=n).zip(&controller_ports) {
            let dir = tempfile::tempdir().expect("temp dir");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let address = listener.local_addr().expect("address");
            let mut explicit = BTreeMap::from([
                ("node.id".to_string(), id.to_string()),
                (
                    "listeners".to_string(),
                    format!("PLAINTEXT://{address},CONTROLLER://127.0.0.1:{port}"),
                ),
                ("controller.quorum.voters".to_string(), voters.join(",")),
                ("log.dirs".to_string(), dir.path().display().to_string()),
                ("offsets.topic.replication.factor".to_string(), n.to_string()),
                ("offsets.topic.num.partitions".to_string(), "5".to_string()),
                (
                    "transaction.state.log.replication.factor".to_string(),
                    n.to_string(),
                ),
                ("transaction.state.log.min.isr".to_string(), n.min(2).to_string()),
                (
                    "share.coordinator.state.topic.replication.factor".to_string(),
                    n.to_string(),
                ),
                (
                    "share.coordinator.state.topic.min.isr".to_string(),
                    n.min(2).to_string(),
                ),
                (
                    "share.coordinator.state.topic.num.partitions".to_string(),
                    "5".to_string(),
                ),
                (
                    "transaction.state.log.num.partitions".to_string(),
                    "5".to_string(),
                ),
                ("group.initial.rebalance.delay.ms".to_string(), "0".to_string()),
            ]);
            for (key, value) in settings {
                explicit.insert(key.to_string(), value.replace("{id}", &id.to_string()));
            }
            starts.push(Self::serve(listener, dir, explicit));
        }
        futures::future::join_all(starts).await
    }

    async fn serve(
        listener: tokio::net::TcpListener,
        dir: tempfile::TempDir,
        explicit: BTreeMap<String, String>,
    ) -> TestBroker {
        let address = listener.local_addr().expect("address");
        let config = BrokerConfig::from_explicit(explicit).expect("config");
        let broker = Broker::start(config).await.expect("broker starts");
        broker.spawn_background();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(ferrolog::server::run(listener, broker.clone(), async move {
            let _ = stopped.await;
        }));
        TestBroker {
            address,
            broker,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops serving and shuts the broker down cleanly, handing back its data dir.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.broker.shutdown().await.expect("clean shutdown");
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.address).await
    }

    /// A second listener on the same broker, serving with the given options (for
    /// comparing the zero-copy and copying paths). It stops when the test ends.
    pub async fn extra_listener(&self, options: ferrolog::server::ServerOptions) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(ferrolog::server::run_with(
            listener,
            self.broker.clone(),
            options,
            std::future::pending::<()>(),
        ));
        address
    }
}

pub struct Client {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    pub async fn connect(address: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(address).await.expect("connect"),
            correlation_id: 0,
        }
    }

    pub fn encode_request<R: Request>(&mut self, request: &R, version: i16) -> BytesMut {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        let api_key = ApiKey::try_from(R::KEY).expect("key");
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .expect("header");
        if let Err(error) = request.encode(&mut buf, version) {
            panic!("encoding a request (key {}) at v{version}: {error}", R::KEY);
        }
        let length = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&length.to_be_bytes());
        buf
    }

    pub async fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let size = self.stream.read_i32().await?;
        let mut frame = vec![0u8; size as usize];
        self.stream.read_exact(&mut frame).await?;
        Ok(Bytes::from(frame))
    }

    /// Sends one request and decodes its response.
    pub async fn send<R: Request>(&mut self, request: R, version: i16) -> anyhow::Result<R::Response> {
        let frame = self.encode_request(&request, version);
        self.stream.write_all(&frame).await?;
        let mut response = self.read_frame().await?;
        let api_key = ApiKey::try_from(R::KEY).expect("key");
        let header = ResponseHeader::decode(&mut response, api_key.response_header_version(version))?;
        anyhow::ensure!(
            header.correlation_id == self.correlation_id,
            "correlation id mismatch"
        );
        let body = R::Response::decode(&mut response, version)?;
        anyhow::ensure!(
            !response.has_remaining(),
            "{} bytes left after the response",
            response.remaining()
        );
        Ok(body)
    }
}

/// Valid record batches with `count` records `value-<i>` (through the crate's encoder,
/// which writes one batch per record when uncompressed).
/// A free port below the kernel's ephemeral range. A port from binding port 0 lies in
/// that range, where parallel tests' own port-0 binds and outgoing connections draw
/// theirs, so one released to be bound again later may be taken in between.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let top = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
        .max(11000);
    loop {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u8(0);
        let port = 10000 + (hasher.finish() % u64::from(top - 10000)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn record_batch(
    count: usize,
    compression: kafka_protocol::records::Compression,
    timestamp: i64,
) -> Bytes {
    record_batch_with(count, compression, timestamp, |index| {
        Bytes::from(format!("value-{index}"))
    })
}

/// One compressed batch whose values are `value_len` incompressible bytes each.
pub fn large_batch(count: usize, value_len: usize) -> Bytes {
    let mut state: u32 = 12345;
    let now = ferrolog::common::now_ms();
    record_batch_with(count, kafka_protocol::records::Compression::Gzip, now, |_| {
        Bytes::from(
            (0..value_len)
                .map(|_| {
                    state = state.wrapping_mul(1103515245).wrapping_add(12345);
                    (state >> 16) as u8
                })
                .collect::<Vec<u8>>(),
        )
    })
}

/// Splits a records payload into its batches.
pub fn split_batches(records: &Bytes) -> Vec<Bytes> {
    ferrolog::log::batch::split_and_validate(records, usize::MAX)
        .expect("valid batches")
        .into_iter()
        .map(|batch| batch.bytes)
        .collect()
}

fn record_batch_with(
    count: usize,
    compression: kafka_protocol::records::Compression,
    timestamp: i64,
    mut value: impl FnMut(usize) -> Bytes,
) -> Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = (0..count)
        .map(|index| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            sequence: index as i32,
            timestamp: timestamp + index as i64,
            key: Some(Bytes::from(format!("key-{index}"))),
            value: Some(value(index)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

/// A consumer's Fetch of one partition from `offset`, answered at once.
pub fn fetch_request(topic: &str, partition: i32, offset: i64) -> kafka_protocol::messages::FetchRequest {
    kafka_protocol::messages::FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            kafka_protocol::messages::fetch_request::FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![
                    kafka_protocol::messages::fetch_request::FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A Produce request for one partition.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

/// Creates a topic with these configs and checks that it worked.
pub async fn create_topic(client: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let request = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(key, value)| {
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(key.to_string()))
                            .with_value(Some(StrBytes::from_string(value.to_string())))
                    })
                    .collect(),
            ),
    ]);
    let response = client.send(request, 7).await.expect("CreateTopics");
    assert_eq!(
        response.topics[0].error_code, 0,
        "{:?}",
        response.topics[0].error_message
    );
}

/// Rewrites an encoded batch's producer id, epoch and base sequence and fixes its CRC.
pub fn with_producer(batch: &Bytes, producer_id: i64, epoch: i16, base_sequence: i32) -> Bytes {
    let mut bytes = batch.to_vec();
    bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
    bytes[51..53].copy_from_slice(&epoch.to_be_bytes());
    bytes[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

/// A fresh idempotent producer id (InitProducerId without a transactional id).
pub async fn init_producer_id(client: &mut Client) -> i64 {
    let init = client
        .send(
            kafka_protocol::messages::InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                .with_producer_epoch(-1),
            4,
        )
        .await
        .expect("InitProducerId");
    assert_eq!(init.error_code, 0);
    *init.producer_id
}

/// The broker still answers this client: ApiVersions succeeds.
pub async fn assert_answers(client: &mut Client) {
    let versions = client
        .send(kafka_protocol::messages::ApiVersionsRequest::default(), 3)
        .await
        .expect("ApiVersions");
    assert_eq!(versions.error_code, 0);
}
